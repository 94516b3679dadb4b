//! What the converter writes: components with their options, in order, with the
//! comment lines (TODOs among them) that go above each; and the TOML text for them,
//! written by hand so that comments stay where they belong and the output is the
//! same byte for byte on every run.

use super::ast::Pos;
use crate::component::Kind;
use std::collections::HashSet;

/// Something the converter could not map: said on standard error and left in the
/// output as `# TODO (file:line): message`.
#[derive(Debug, Clone, PartialEq)]
pub struct Todo {
    pub file: String,
    pub line: u32,
    pub message: String,
}

impl Todo {
    pub fn new(pos: &Pos, message: impl Into<String>) -> Self {
        Todo {
            file: pos.file.to_string(),
            line: pos.line,
            message: message.into().replace('\n', " "),
        }
    }

    /// The comment line (without `# `).
    pub fn comment(&self) -> String {
        format!("TODO ({}:{}): {}", self.file, self.line, self.message)
    }
}

impl std::fmt::Display for Todo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// An option value.
#[derive(Debug, Clone, PartialEq)]
pub enum Opt {
    /// A string, already escaped for the topology's `${…}` interpolation
    /// ([`super::sprintf::to_option`]).
    Str(String),
    Int(i64),
    Bool(bool),
    List(Vec<Opt>),
    /// An inline table.
    Table(Vec<(String, Opt)>),
    /// A VRL program, written as a multi-line string.
    Program(String),
}

/// One component of the topology.
#[derive(Debug, Clone)]
pub struct Component {
    pub kind: Kind,
    pub id: String,
    pub type_name: &'static str,
    pub inputs: Vec<String>,
    pub options: Vec<(String, Opt)>,
    /// Comment lines above the table.
    pub comments: Vec<String>,
}

impl Component {
    pub fn new(kind: Kind, id: String, type_name: &'static str) -> Self {
        Component {
            kind,
            id,
            type_name,
            inputs: Vec::new(),
            options: Vec::new(),
            comments: Vec::new(),
        }
    }

    /// Sets option `key` (replacing an earlier value).
    pub fn set(&mut self, key: &str, value: Opt) {
        if let Some(slot) = self.options.iter_mut().find(|(k, _)| k == key) {
            slot.1 = value;
        } else {
            self.options.push((key.to_string(), value));
        }
    }

    /// True when option `key` is set.
    pub fn has(&self, key: &str) -> bool {
        self.options.iter().any(|(k, _)| k == key)
    }
}

/// Hands out component ids: Logstash's `id` option when it is a valid pipe id,
/// else the plugin's name, with `_2`, `_3`, … for repeats; unique across kinds.
#[derive(Default)]
pub struct Ids {
    taken: HashSet<String>,
}

impl Ids {
    pub fn take(&mut self, wanted: &str) -> String {
        let base: String = wanted
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let base = if base.is_empty() { "component".to_string() } else { base };
        let mut id = base.clone();
        let mut n = 2;
        while !self.taken.insert(id.clone()) {
            id = format!("{base}_{n}");
            n += 1;
        }
        id
    }
}

/// The whole topology as TOML: `header` comment lines, then each component.
pub fn render(header: &[String], components: &[Component]) -> String {
    let mut out = String::new();
    for line in header {
        comment(&mut out, line);
    }
    for c in components {
        out.push('\n');
        for line in &c.comments {
            comment(&mut out, line);
        }
        out.push_str(&format!("[{}.{}]\n", c.kind.table(), key(&c.id)));
        out.push_str(&format!("type = {}\n", basic(c.type_name)));
        if c.kind != Kind::Source {
            let inputs: Vec<String> = c.inputs.iter().map(|i| basic(i)).collect();
            out.push_str(&format!("inputs = [{}]\n", inputs.join(", ")));
        }
        for (k, v) in &c.options {
            out.push_str(&format!("{} = {}\n", key(k), value(v)));
        }
    }
    out
}

fn comment(out: &mut String, line: &str) {
    if line.is_empty() {
        out.push_str("#\n");
    } else {
        out.push_str(&format!("# {line}\n"));
    }
}

/// A TOML key, bare when it can be.
fn key(k: &str) -> String {
    if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        k.to_string()
    } else {
        basic(k)
    }
}

/// A TOML basic string.
fn basic(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn value(v: &Opt) -> String {
    match v {
        Opt::Str(s) => basic(s),
        Opt::Int(n) => n.to_string(),
        Opt::Bool(b) => b.to_string(),
        Opt::List(items) => format!("[{}]", items.iter().map(value).collect::<Vec<_>>().join(", ")),
        Opt::Table(entries) => {
            if entries.is_empty() {
                "{}".to_string()
            } else {
                let inner: Vec<String> = entries
                    .iter()
                    .map(|(k, v)| format!("{} = {}", key(k), value(v)))
                    .collect();
                format!("{{ {} }}", inner.join(", "))
            }
        }
        Opt::Program(p) => {
            let p = super::sprintf::escape_dollars(p);
            // A literal string keeps the program as written; it cannot hold `'''`
            // or control characters other than tabs.
            if !p.contains("'''") && !p.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
                format!("'''\n{p}'''")
            } else {
                let mut out = String::from("\"\"\"\n");
                for c in p.chars() {
                    match c {
                        '"' => out.push_str("\\\""),
                        '\\' => out.push_str("\\\\"),
                        '\n' => out.push('\n'),
                        '\t' => out.push_str("\\t"),
                        c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
                        c => out.push(c),
                    }
                }
                out.push_str("\"\"\"");
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_tables_in_order_with_comments() {
        let mut c = Component::new(Kind::Sink, "es".into(), "elasticsearch");
        c.inputs = vec!["filters".into()];
        c.comments = vec!["TODO (a.conf:3): x".into()];
        c.set("endpoints", Opt::List(vec![Opt::Str("http://localhost:9200".into())]));
        c.set("auth", Opt::Table(vec![("user".into(), Opt::Str("el\"astic".into()))]));
        let mut r = Component::new(Kind::Transform, "filters".into(), "remap");
        r.inputs = vec!["in".into()];
        r.set("source", Opt::Program("a = \"x\"\nb = r'$${x}'\n".into()));
        let text = render(&["head".into()], &[r, c]);
        assert_eq!(
            text,
            "# head\n\n[transforms.filters]\ntype = \"remap\"\ninputs = [\"in\"]\nsource = '''\na = \"x\"\nb = r'$$$${x}'\n'''\n\n# TODO (a.conf:3): x\n[sinks.es]\ntype = \"elasticsearch\"\ninputs = [\"filters\"]\nendpoints = [\"http://localhost:9200\"]\nauth = { user = \"el\\\"astic\" }\n"
        );
    }

    #[test]
    fn ids_are_unique() {
        let mut ids = Ids::default();
        assert_eq!(ids.take("file"), "file");
        assert_eq!(ids.take("file"), "file_2");
        assert_eq!(ids.take("my id"), "my_id");
    }
}
