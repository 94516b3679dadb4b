//! Reading one plugin's options while keeping count of which were used, so that
//! every option the mapping did not use is reported as a TODO, and the shared
//! state of one conversion ([`Cx`]): the TODOs so far, the ids handed out, the
//! environment variables the topology reads.

use super::ast::{Attr, Plugin, Pos, Value};
use super::sprintf::{self, Part};
use super::topology::{Ids, Opt, Todo};
use std::cell::RefCell;
use std::collections::{BTreeSet, HashSet};

/// The state of one conversion.
#[derive(Default)]
pub struct Cx {
    pub todos: Vec<Todo>,
    pub ids: Ids,
    /// Environment variables the topology's options read.
    pub env: BTreeSet<String>,
    /// Events may carry `@metadata` (a `beats` or decorated `kafka` input, or the
    /// config names it).
    pub metadata: bool,
}

impl Cx {
    /// Records a TODO at `pos`; returns its comment line.
    pub fn todo(&mut self, pos: &Pos, message: impl Into<String>) -> String {
        let todo = Todo::new(pos, message);
        let line = todo.comment();
        self.todos.push(todo);
        line
    }
}

/// One plugin's options.
pub struct Opts<'a> {
    pub plugin: &'a Plugin,
    /// `input`, `filter` or `output`, for messages.
    pub section: &'static str,
    used: RefCell<HashSet<String>>,
}

impl<'a> Opts<'a> {
    pub fn new(plugin: &'a Plugin, section: &'static str) -> Self {
        let opts = Opts {
            plugin,
            section,
            used: RefCell::new(HashSet::new()),
        };
        // Options every plugin has, with nothing to map: the id names the component.
        opts.used
            .borrow_mut()
            .extend(["id".to_string(), "enable_metric".to_string()]);
        opts
    }

    /// The option's value, marking it used (repeats merged as Logstash does).
    pub fn get(&self, name: &str) -> Option<Value> {
        let v = self.plugin.merged(name);
        if v.is_some() {
            self.used.borrow_mut().insert(name.to_string());
        }
        v
    }

    /// Marks options as used without reading them (handled elsewhere, or
    /// deliberately without effect).
    pub fn consume(&self, names: &[&str]) {
        self.used.borrow_mut().extend(names.iter().map(|s| s.to_string()));
    }

    /// The option as one string.
    pub fn str(&self, name: &str) -> Option<String> {
        self.get(name).and_then(|v| v.as_str().map(str::to_string))
    }

    /// The option as strings.
    pub fn list(&self, name: &str) -> Option<Vec<String>> {
        self.get(name)
            .and_then(|v| v.as_list().map(|l| l.into_iter().map(str::to_string).collect()))
    }

    pub fn bool(&self, name: &str) -> Option<bool> {
        self.get(name).and_then(|v| v.as_bool())
    }

    pub fn int(&self, name: &str) -> Option<i64> {
        self.get(name).and_then(|v| v.as_int())
    }

    /// Where the option is written.
    pub fn pos(&self, name: &str) -> &Pos {
        self.plugin.pos_of(name)
    }

    /// The plugin's `id`, if set.
    pub fn id(&self) -> Option<String> {
        self.plugin.get("id").and_then(|v| v.as_str()).map(str::to_string)
    }

    /// A string option as a topology string (variables kept for pipe to replace);
    /// a TODO when it reads event fields.
    pub fn text(&self, name: &str, cx: &mut Cx, comments: &mut Vec<String>) -> Option<Opt> {
        let raw = self.str(name)?;
        text_opt(&raw, self.pos(name), cx, comments, &format!("`{name}`"))
    }

    /// The options nobody used, as TODO comment lines.
    pub fn leftovers(&self, cx: &mut Cx, what: &str) -> Vec<String> {
        let used = self.used.borrow();
        let mut seen = HashSet::new();
        let unused: Vec<&Attr> = self
            .plugin
            .options
            .iter()
            .filter(|a| !used.contains(&a.name) && seen.insert(a.name.clone()))
            .collect();
        unused
            .into_iter()
            .map(|a| {
                cx.todo(
                    &a.pos,
                    format!("option `{}` of {what} has no pipe equivalent; it is left out", a.name),
                )
            })
            .collect()
    }
}

/// `raw` as a topology string option; a TODO (and `None`) when it reads fields.
pub fn text_opt(raw: &str, pos: &Pos, cx: &mut Cx, comments: &mut Vec<String>, what: &str) -> Option<Opt> {
    let parts = sprintf::parse(raw);
    match sprintf::to_option(&parts) {
        Ok(s) => {
            cx.env.extend(sprintf::env_names(&parts));
            Some(Opt::Str(s))
        }
        Err(e) => {
            comments.push(cx.todo(pos, format!("{what}: {e}; pipe takes a constant here")));
            None
        }
    }
}

/// `raw` as a pipe template (`{{ field }}`, strftime); a TODO when it cannot be.
pub fn template_opt(raw: &str, pos: &Pos, cx: &mut Cx, comments: &mut Vec<String>, what: &str) -> Option<(Opt, bool)> {
    let parts = sprintf::parse(raw);
    if parts
        .iter()
        .any(|p| matches!(p, Part::Field(f) if f.first().is_some_and(|s| s == "@metadata")))
    {
        cx.metadata = true;
    }
    match sprintf::to_template(&parts) {
        Ok((s, time)) => {
            cx.env.extend(sprintf::env_names(&parts));
            Some((Opt::Str(s), time))
        }
        Err(e) => {
            comments.push(cx.todo(pos, format!("{what}: {e}")));
            None
        }
    }
}

/// A file the option names, which pipe opens when it loads the topology: kept when
/// the file is on this host; else a TODO with the line to add once it is (so that
/// the topology still validates).
pub fn file_opt(raw: &str, pos: &Pos, cx: &mut Cx, comments: &mut Vec<String>, key: &str) -> Option<Opt> {
    let parts = sprintf::parse(raw);
    let plain = sprintf::is_constant(&parts) && sprintf::env_names(&parts).is_empty();
    if plain && std::path::Path::new(raw).exists() {
        return Some(Opt::Str(raw.replace('$', "$$")));
    }
    comments.push(cx.todo(
        pos,
        format!("`{key} = {raw:?}` is left out: pipe reads that file when it starts, and it is not on this host; add the line once it is"),
    ));
    None
}
