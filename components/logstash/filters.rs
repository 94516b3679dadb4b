//! The filter section as one VRL program, in Logstash's order (it runs the filters
//! in order on each event): conditionals become `if / else if / else`, and each
//! plugin becomes VRL under a comment naming it. Mapped: `grok`, `date`, `json`,
//! `kv`, `mutate`, `drop`, with the options every filter has (`add_field`,
//! `add_tag`, `remove_field`, `remove_tag`) applied as Logstash does, after the
//! filter succeeded. Other plugins are left as TODO comments.

use super::ast::{Plugin, Pos, Statement, Value};
use super::grok;
use super::opts::{Cx, Opts};
use super::sprintf::{self, Part};
use super::vrl;

/// VRL lines being written, indented by block.
pub struct Emit {
    pub lines: Vec<String>,
    depth: usize,
    /// Statements written in each open block, so an empty one gets a `null`.
    counts: Vec<usize>,
}

impl Default for Emit {
    fn default() -> Self {
        Emit {
            lines: Vec::new(),
            depth: 0,
            counts: vec![0],
        }
    }
}

impl Emit {
    /// A statement (or a line of one).
    pub fn line(&mut self, s: impl AsRef<str>) {
        self.lines.push(format!("{}{}", "  ".repeat(self.depth), s.as_ref()));
        if let Some(c) = self.counts.last_mut() {
            *c += 1;
        }
    }

    pub fn comment(&mut self, s: impl AsRef<str>) {
        self.lines.push(format!("{}# {}", "  ".repeat(self.depth), s.as_ref()));
    }

    /// `header {` and a new block.
    pub fn open(&mut self, header: impl AsRef<str>) {
        let h = header.as_ref();
        self.line(if h.contains('{') {
            h.to_string()
        } else {
            format!("{h} {{")
        });
        self.depth += 1;
        self.counts.push(0);
    }

    /// Ends a block with `closer` (`}` or `} else {`); an empty block gets `null`.
    pub fn close_with(&mut self, closer: &str) {
        if self.counts.pop() == Some(0) {
            self.line("null");
        }
        self.depth -= 1;
        self.lines.push(format!("{}{}", "  ".repeat(self.depth), closer));
    }

    /// `} else … {`: ends one block and opens the next.
    pub fn reopen(&mut self, header: impl AsRef<str>) {
        self.close_with(&format!("}} {}", header.as_ref()));
        self.depth += 1;
        self.counts.push(0);
    }

    pub fn close(&mut self) {
        self.close_with("}");
    }

    /// The program text.
    pub fn text(&self) -> String {
        let mut s = self.lines.join("\n");
        s.push('\n');
        s
    }
}

/// The filter section's statements as VRL.
pub fn program(stmts: &[Statement], cx: &mut Cx, e: &mut Emit) {
    for s in stmts {
        match s {
            Statement::Plugin(p) => plugin(p, cx, e),
            Statement::Branch(b) => {
                for (i, arm) in b.arms.iter().enumerate() {
                    let cond = match vrl::condition(&arm.condition) {
                        Ok(c) => c,
                        Err(why) => {
                            let t = cx.todo(&arm.pos, format!("`if {}`: {why}; taken as false", arm.text));
                            e.comment(t);
                            "false".to_string()
                        }
                    };
                    let text = arm.text.replace('\n', " ");
                    if i == 0 {
                        e.open(format!("if {cond} {{ # if {text}"));
                    } else {
                        e.reopen(format!("else if {cond} {{ # else if {text}"));
                    }
                    program(&arm.body, cx, e);
                }
                if let Some(body) = &b.otherwise {
                    e.reopen("else {");
                    program(body, cx, e);
                }
                e.close();
            }
        }
    }
}

fn plugin(p: &Plugin, cx: &mut Cx, e: &mut Emit) {
    let o = Opts::new(p, "filter");
    e.comment(format!("{} ({})", p.name, p.pos));
    let mut out = Vec::new();
    let known = match p.name.as_str() {
        "grok" => {
            grok::filter(&o, cx, &mut out);
            true
        }
        "date" => {
            date(&o, cx, &mut out);
            true
        }
        "json" => {
            json(&o, cx, &mut out);
            true
        }
        "kv" => {
            kv(&o, cx, &mut out);
            true
        }
        "mutate" => {
            mutate(&o, cx, &mut out);
            true
        }
        "drop" => {
            drop(&o, &mut out);
            true
        }
        _ => false,
    };
    if !known {
        let t = cx.todo(
            &p.pos,
            format!("the `{}` filter has no pipe equivalent; it is left out", p.name),
        );
        e.comment(t);
        return;
    }
    let left = o.leftovers(cx, &format!("the `{}` filter", p.name));
    for l in left {
        e.comment(l);
    }
    let statements = out.iter().any(|l| !l.trim_start().starts_with('#'));
    if !statements {
        for l in out {
            e.comment(l.trim_start().trim_start_matches("# "));
        }
        return;
    }
    // Each filter in a block of its own: what one sets is only "maybe set" for the
    // next, so VRL checks each filter's types as if it ran alone.
    let block = format!("if true {{\n{}\n}}", indent(out.clone()).join("\n"));
    if let Err(err) = vrl::check(&block) {
        let first = err
            .lines()
            .find(|l| l.contains("error"))
            .unwrap_or("it does not compile")
            .trim()
            .to_string();
        let t = cx.todo(
            &p.pos,
            format!(
                "the VRL written for this `{}` does not compile ({first}); it is kept as comments",
                p.name
            ),
        );
        e.comment(t);
        for l in out {
            e.comment(l);
        }
        return;
    }
    e.open("if true");
    for l in out {
        let trimmed = l.trim_start();
        let indent = (l.len() - trimmed.len()) / 2;
        e.lines.push(format!("{}{}", "  ".repeat(e.depth + indent), trimmed));
        if !trimmed.starts_with('#')
            && let Some(c) = e.counts.last_mut()
        {
            *c += 1;
        }
    }
    e.close();
}

/// A TODO as a VRL comment line.
pub fn todo_line(cx: &mut Cx, pos: &Pos, message: impl Into<String>) -> String {
    format!("# {}", cx.todo(pos, message))
}

/// Indents lines by one level.
pub fn indent(lines: Vec<String>) -> Vec<String> {
    lines.into_iter().map(|l| format!("  {l}")).collect()
}

/// The path of a field reference option; a TODO when it is none.
pub fn field_path(raw: &str, pos: &Pos, cx: &mut Cx, out: &mut Vec<String>) -> Option<String> {
    if raw.contains("%{") {
        out.push(todo_line(
            cx,
            pos,
            format!("the field name `{raw}` is made per event; pipe cannot map it"),
        ));
        return None;
    }
    match sprintf::field_ref(raw) {
        Some(p) => Some(vrl::path(&p)),
        None => {
            out.push(todo_line(cx, pos, format!("`{raw}` is no field reference")));
            None
        }
    }
}

/// A sprintf string as a VRL expression; a TODO when it cannot be.
pub fn value_expr(raw: &str, pos: &Pos, cx: &mut Cx, out: &mut Vec<String>) -> Option<String> {
    match sprintf::to_vrl(&sprintf::parse(raw)) {
        Ok(v) => Some(v),
        Err(e) => {
            out.push(todo_line(cx, pos, e));
            None
        }
    }
}

/// `add_field`: sets each field, or appends to what it holds (Logstash turns an
/// existing value into an array).
pub fn add_fields(v: &Value, pos: &Pos, cx: &mut Cx, out: &mut Vec<String>, comments: &mut Vec<String>) {
    let Some(pairs) = v.as_pairs() else {
        comments.push(cx.todo(pos, "`add_field` is neither a hash nor pairs of strings"));
        return;
    };
    for (k, val) in pairs {
        let values: Vec<String> = match val.as_list() {
            Some(l) => l.into_iter().map(str::to_string).collect(),
            None => {
                comments.push(cx.todo(pos, format!("the value of `add_field` `{k}` is not a string")));
                continue;
            }
        };
        let mut lines = Vec::new();
        let Some(p) = field_path(&k, pos, cx, &mut lines) else {
            comments.extend(lines.iter().map(|l| l.trim_start_matches("# ").to_string()));
            continue;
        };
        for raw in values {
            let Some(value) = value_expr(&raw, pos, cx, &mut lines) else {
                continue;
            };
            out.push(format!("value = {value}"));
            out.push(format!(
                "if {p} == null {{ {p} = value }} else {{ {p} = flatten([{p}, value]) }}"
            ));
        }
        comments.extend(
            lines
                .iter()
                .filter(|l| l.starts_with('#'))
                .map(|l| l.trim_start_matches("# ").to_string()),
        );
    }
}

/// `add_tag` / the inputs' `tags`: appends each tag once.
pub fn add_tags(v: &Value, pos: &Pos, cx: &mut Cx, out: &mut Vec<String>, comments: &mut Vec<String>) {
    let mut values = Vec::new();
    for raw in v.as_list().unwrap_or_default() {
        let mut lines = Vec::new();
        if let Some(value) = value_expr(raw, pos, cx, &mut lines) {
            values.push(value);
        }
        comments.extend(lines.iter().map(|l| l.trim_start_matches("# ").to_string()));
    }
    if !values.is_empty() {
        out.push(tags_line(&values));
    }
}

/// Appends tags once each, whatever `.tags` holds (written so that VRL's type
/// checks never find it needless: no `??` on a field whose type is known).
pub fn tags_line(values: &[String]) -> String {
    format!(".tags = unique(compact(flatten([.tags, {}])))", values.join(", "))
}

/// The options every filter has, run when it succeeded: `add_field`,
/// `remove_field`, `add_tag`, `remove_tag`, in Logstash's order.
pub fn common(o: &Opts, cx: &mut Cx, out: &mut Vec<String>) {
    if let Some(v) = o.get("add_field") {
        let mut comments = Vec::new();
        add_fields(&v, o.pos("add_field"), cx, out, &mut comments);
        out.extend(comments.into_iter().map(|c| format!("# {c}")));
    }
    if let Some(fields) = o.list("remove_field") {
        for f in fields {
            if let Some(p) = field_path(&f, o.pos("remove_field"), cx, out) {
                out.push(format!("del({p})"));
            }
        }
    }
    if let Some(v) = o.get("add_tag") {
        let mut comments = Vec::new();
        add_tags(&v, o.pos("add_tag"), cx, out, &mut comments);
        out.extend(comments.into_iter().map(|c| format!("# {c}")));
    }
    if let Some(tags) = o.list("remove_tag") {
        let mut exprs = Vec::new();
        for t in tags {
            if let Some(v) = value_expr(&t, o.pos("remove_tag"), cx, out) {
                exprs.push(v);
            }
        }
        if !exprs.is_empty() {
            out.push(format!(
                "if exists(.tags) {{ .tags = filter(flatten([.tags])) -> |_i, tag| {{ !includes([{}], tag) }} }}",
                exprs.join(", ")
            ));
        }
    }
    o.consume(&["periodic_flush"]);
}

/// `tag_on_failure` (default `default`) as the failure branch's lines.
pub fn failure_tags(o: &Opts, default: &str, cx: &mut Cx, out: &mut Vec<String>) {
    let tags = o.list("tag_on_failure").unwrap_or_else(|| vec![default.to_string()]);
    let mut values = Vec::new();
    for t in tags {
        if let Some(v) = value_expr(&t, o.pos("tag_on_failure"), cx, out) {
            values.push(v);
        }
    }
    if !values.is_empty() {
        out.push(tags_line(&values));
    }
}

fn json(o: &Opts, cx: &mut Cx, out: &mut Vec<String>) {
    let source = o.str("source").unwrap_or_else(|| "message".into());
    let Some(src) = field_path(&source, o.pos("source"), cx, out) else {
        return;
    };
    let target = match o.str("target") {
        Some(t) => match field_path(&t, o.pos("target"), cx, out) {
            Some(p) => Some(p),
            None => return,
        },
        None => None,
    };
    let skip = o.bool("skip_on_invalid_json").unwrap_or(false);
    let mut ok = Vec::new();
    match &target {
        Some(t) => ok.push(format!("{t} = parsed")),
        None => {
            ok.push("if is_object(parsed) {".into());
            ok.push("  . = merge(., object!(parsed))".into());
            ok.push("  if is_string(.\"@timestamp\") { .\"@timestamp\" = parse_timestamp(.\"@timestamp\", \"%+\") ?? .\"@timestamp\" }".into());
            ok.push("}".into());
        }
    }
    common(o, cx, &mut ok);
    let mut failed = Vec::new();
    if !skip {
        failure_tags(o, "_jsonparsefailure", cx, &mut failed);
    }
    out.push(format!("if exists({src}) {{"));
    out.push(format!("  parsed, err = parse_json({src})"));
    out.push("  if err == null {".into());
    out.extend(indent(indent(ok)));
    if failed.is_empty() {
        out.push("  }".into());
    } else {
        out.push("  } else {".into());
        out.extend(indent(indent(failed)));
        out.push("  }".into());
    }
    out.push("}".into());
}

/// ISO8601 as Logstash reads it: with or without an offset, `T` or a space, a
/// fraction with `.` or `,`.
const ISO8601: &[&str] = &[
    "%+",
    "%Y-%m-%dT%H:%M:%S%.f%z",
    "%Y-%m-%d %H:%M:%S%.f%:z",
    "%Y-%m-%d %H:%M:%S%.f%z",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S,%f",
    "%Y-%m-%d %H:%M:%S,%f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d",
];

fn date(o: &Opts, cx: &mut Cx, out: &mut Vec<String>) {
    let Some(m) = o.list("match").filter(|m| !m.is_empty()) else {
        out.push(todo_line(
            cx,
            &o.plugin.pos,
            "the `date` filter has no `match`; it is left out",
        ));
        return;
    };
    let Some(src) = field_path(&m[0], o.pos("match"), cx, out) else {
        return;
    };
    let target = o.str("target").unwrap_or_else(|| "@timestamp".into());
    let Some(target) = field_path(&target, o.pos("target"), cx, out) else {
        return;
    };
    let tz = o.str("timezone");
    if let Some(tz) = &tz
        && tz.contains("%{")
    {
        out.push(todo_line(
            cx,
            o.pos("timezone"),
            format!("the time zone `{tz}` is read per event; pipe takes a constant"),
        ));
        return;
    }
    if let Some(locale) = o.str("locale")
        && !locale.to_lowercase().starts_with("en")
    {
        out.push(todo_line(
            cx,
            o.pos("locale"),
            format!("locale `{locale}`: pipe reads month and day names in English only"),
        ));
    }
    let tz_arg = tz
        .map(|t| format!(", timezone: {}", vrl::string(&t)))
        .unwrap_or_default();
    // Each attempt sets `t` and `err`.
    let mut attempts: Vec<Vec<String>> = Vec::new();
    for f in &m[1..] {
        match f.as_str() {
            "ISO8601" => {
                for iso in ISO8601 {
                    attempts.push(vec![format!(
                        "t, err = parse_timestamp(value, {}{tz_arg})",
                        vrl::string(iso)
                    )]);
                }
            }
            "UNIX" | "UNIX_MS" => {
                let unit = if f == "UNIX" { "1000.0" } else { "1.0" };
                attempts.push(vec![
                    "n, err = to_float(value)".to_string(),
                    format!(
                        "if err == null {{ t, err = from_unix_timestamp(to_int(n * {unit}), unit: \"milliseconds\") }}"
                    ),
                ]);
            }
            "TAI64N" => out.push(todo_line(
                cx,
                o.pos("match"),
                "the `TAI64N` date format has no pipe equivalent",
            )),
            joda_pattern => match super::joda::to_strftime(joda_pattern, super::joda::Mode::Parse) {
                Ok(fmt) if super::joda::has_year(joda_pattern) => {
                    attempts.push(vec![format!(
                        "t, err = parse_timestamp(value, {}{tz_arg})",
                        vrl::string(&fmt)
                    )]);
                }
                Ok(fmt) => {
                    // No year: this year, or the last one when that would put the
                    // date more than a day ahead (December's lines read in January).
                    let fmt = vrl::string(&format!("%Y {fmt}"));
                    attempts.push(vec![
                        "year = to_int(format_timestamp!(now(), \"%Y\", timezone: \"UTC\")) ?? 1970".to_string(),
                        format!("t, err = parse_timestamp(to_string(year) + \" \" + (to_string(value) ?? \"\"), {fmt}{tz_arg})"),
                        format!("if err == null && to_unix_timestamp(t) > to_unix_timestamp(now()) + 86400 {{ t, err = parse_timestamp(to_string(year - 1) + \" \" + (to_string(value) ?? \"\"), {fmt}{tz_arg}) }}"),
                    ]);
                }
                Err(e) => out.push(todo_line(cx, o.pos("match"), e)),
            },
        }
    }
    if attempts.is_empty() {
        return;
    }
    let mut ok = vec![format!("{target} = t")];
    common(o, cx, &mut ok);
    let mut failed = Vec::new();
    failure_tags(o, "_dateparsefailure", cx, &mut failed);
    out.push(format!("if exists({src}) {{"));
    out.push(format!("  value = {src}"));
    out.push("  if is_array(value) { value = array!(value)[0] }".into());
    out.push("  t = now()".into());
    for (i, a) in attempts.into_iter().enumerate() {
        if i == 0 {
            out.extend(indent(a));
        } else {
            out.push("  if err != null {".into());
            out.extend(indent(indent(a)));
            out.push("  }".into());
        }
    }
    out.push("  if err == null {".into());
    out.extend(indent(indent(ok)));
    out.push("  } else {".into());
    out.extend(indent(indent(failed)));
    out.push("  }".into());
    out.push("}".into());
}

fn kv(o: &Opts, cx: &mut Cx, out: &mut Vec<String>) {
    let source = o.str("source").unwrap_or_else(|| "message".into());
    let Some(src) = field_path(&source, o.pos("source"), cx, out) else {
        return;
    };
    let target = match o.str("target") {
        Some(t) => match field_path(&t, o.pos("target"), cx, out) {
            Some(p) => Some(p),
            None => return,
        },
        None => None,
    };
    let mut body = vec![format!("text = to_string({src}) ?? encode_json({src})")];
    // Logstash splits on any one of `field_split`'s characters (or a pattern);
    // VRL on one delimiter string, so the others become it first.
    let field_delim = match (o.str("field_split_pattern"), o.str("field_split")) {
        (Some(p), _) => match vrl::regex(&p) {
            Ok(re) => {
                body.push(format!("text = replace(text, {re}, \"\\u{{1f}}\")"));
                "\\u{1f}".to_string()
            }
            Err(e) => {
                out.push(todo_line(cx, o.pos("field_split_pattern"), e));
                return;
            }
        },
        (None, Some(chars)) if chars.chars().count() > 1 => {
            let class: String = chars.chars().map(|c| regex::escape(&c.to_string())).collect();
            body.push(format!(
                "text = replace(text, r'[{}]', \"\\u{{1f}}\")",
                class.replace('\'', "\\'")
            ));
            "\\u{1f}".to_string()
        }
        (None, Some(one)) => vrl::string(&one).trim_matches('"').to_string(),
        (None, None) => " ".to_string(),
    };
    let value_delim = match (o.str("value_split_pattern"), o.str("value_split")) {
        (Some(p), _) => {
            out.push(todo_line(
                cx,
                o.pos("value_split_pattern"),
                format!("`value_split_pattern => \"{p}\"`: VRL splits keys from values on one string"),
            ));
            return;
        }
        (None, Some(chars)) if chars.chars().count() > 1 => {
            let class: String = chars.chars().map(|c| regex::escape(&c.to_string())).collect();
            body.push(format!(
                "text = replace(text, r'[{}]', \"\\u{{1e}}\")",
                class.replace('\'', "\\'")
            ));
            "\\u{1e}".to_string()
        }
        (None, Some(one)) => vrl::string(&one).trim_matches('"').to_string(),
        (None, None) => "=".to_string(),
    };
    body.push(format!(
        "parsed = parse_key_value(text, key_value_delimiter: \"{value_delim}\", field_delimiter: \"{field_delim}\") ?? {{}}"
    ));
    if let Some(keys) = o.list("include_keys") {
        let list: Vec<String> = keys.iter().map(|k| vrl::string(k)).collect();
        body.push(format!(
            "parsed = filter(parsed) -> |key, _v| {{ includes([{}], key) }}",
            list.join(", ")
        ));
    }
    if let Some(keys) = o.list("exclude_keys") {
        let list: Vec<String> = keys.iter().map(|k| vrl::string(k)).collect();
        body.push(format!(
            "parsed = filter(parsed) -> |key, _v| {{ !includes([{}], key) }}",
            list.join(", ")
        ));
    }
    for (opt, what) in [("transform_key", "key"), ("transform_value", "value")] {
        if let Some(t) = o.str(opt) {
            let f = match t.as_str() {
                "lowercase" => "downcase",
                "uppercase" => "upcase",
                other => {
                    out.push(todo_line(
                        cx,
                        o.pos(opt),
                        format!("`{opt} => {other}` has no VRL equivalent here"),
                    ));
                    continue;
                }
            };
            if what == "key" {
                body.push(format!("parsed = map_keys(parsed) -> |key| {{ {f}(key) }}"));
            } else {
                body.push(format!(
                    "parsed = map_values(parsed) -> |v| {{ if is_string(v) {{ {f}(string!(v)) }} else {{ v }} }}"
                ));
            }
        }
    }
    if let Some(prefix) = o.str("prefix") {
        body.push(format!(
            "parsed = map_keys(parsed) -> |key| {{ {} + key }}",
            vrl::string(&prefix)
        ));
    }
    if let Some(Value::Hash(defaults)) = o.get("default_keys") {
        for (k, v) in defaults {
            let v = v.as_str().unwrap_or_default();
            body.push(format!(
                "if !exists({}) {{ {} = {} }}",
                vrl::var_path("parsed", &k),
                vrl::var_path("parsed", &k),
                vrl::string(v)
            ));
        }
    }
    for opt in ["trim_value", "trim_key", "remove_char_value", "remove_char_key"] {
        if let Some(chars) = o.str(opt) {
            let class: String = chars.chars().map(|c| regex::escape(&c.to_string())).collect();
            let re = format!(
                "r'{}'",
                if opt.starts_with("trim") {
                    format!("^[{class}]+|[{class}]+$")
                } else {
                    format!("[{class}]")
                }
                .replace('\'', "\\'")
            );
            if opt.ends_with("value") {
                body.push(format!("parsed = map_values(parsed) -> |v| {{ if is_string(v) {{ replace(string!(v), {re}, \"\") }} else {{ v }} }}"));
            } else {
                body.push(format!(
                    "parsed = map_keys(parsed) -> |key| {{ replace(key, {re}, \"\") }}"
                ));
            }
        }
    }
    o.consume(&[
        "allow_duplicate_values",
        "include_brackets",
        "recursive",
        "whitespace",
        "timeout_millis",
        "tag_on_timeout",
    ]);
    match target {
        Some(t) => body.push(format!("{t} = parsed")),
        None => body.push(". = merge(., parsed)".into()),
    }
    common(o, cx, &mut body);
    failure_tags_none(o);
    out.push(format!("if exists({src}) {{"));
    out.extend(indent(body));
    out.push("}".into());
}

/// `kv` tags only on exceptions pipe cannot have.
fn failure_tags_none(o: &Opts) {
    o.consume(&["tag_on_failure"]);
}

/// Reads mutate's `{ "a" => "b" }` (or `["a", "b"]`) options.
fn pairs(o: &Opts, name: &str, cx: &mut Cx, out: &mut Vec<String>) -> Vec<(String, String)> {
    let Some(v) = o.get(name) else { return Vec::new() };
    match v.as_pairs() {
        Some(p) => p
            .into_iter()
            .filter_map(|(k, v)| match v.as_str() {
                Some(s) => Some((k, s.to_string())),
                None => {
                    out.push(todo_line(cx, o.pos(name), format!("`{name}` `{k}` is not a string")));
                    None
                }
            })
            .collect(),
        None => {
            out.push(todo_line(
                cx,
                o.pos(name),
                format!("`{name}` is neither a hash nor pairs of strings"),
            ));
            Vec::new()
        }
    }
}

fn mutate(o: &Opts, cx: &mut Cx, out: &mut Vec<String>) {
    let pos = |n: &str| o.pos(n).clone();
    // Logstash's documented order: coerce, rename, update, replace, convert, gsub,
    // uppercase, capitalize, lowercase, strip, split, join, merge, copy.
    for (f, v) in pairs(o, "coerce", cx, out) {
        if let (Some(p), Some(v)) = (
            field_path(&f, &pos("coerce"), cx, out),
            value_expr(&v, &pos("coerce"), cx, out),
        ) {
            out.push(format!("if exists({p}) && {p} == null {{ {p} = {v} }}"));
        }
    }
    for (from, to) in pairs(o, "rename", cx, out) {
        if let (Some(a), Some(b)) = (
            field_path(&from, &pos("rename"), cx, out),
            field_path(&to, &pos("rename"), cx, out),
        ) {
            out.push(format!("if exists({a}) {{ {b} = del({a}) }}"));
        }
    }
    for (f, v) in pairs(o, "update", cx, out) {
        if let (Some(p), Some(v)) = (
            field_path(&f, &pos("update"), cx, out),
            value_expr(&v, &pos("update"), cx, out),
        ) {
            out.push(format!("if exists({p}) {{ {p} = {v} }}"));
        }
    }
    for (f, v) in pairs(o, "replace", cx, out) {
        if let (Some(p), Some(v)) = (
            field_path(&f, &pos("replace"), cx, out),
            value_expr(&v, &pos("replace"), cx, out),
        ) {
            out.push(format!("{p} = {v}"));
        }
    }
    for (f, ty) in pairs(o, "convert", cx, out) {
        let Some(p) = field_path(&f, &pos("convert"), cx, out) else {
            continue;
        };
        let conv = match ty.as_str() {
            "integer" => format!("to_int({p}) ?? to_int(to_float({p}) ?? {p}) ?? {p}"),
            "float" => format!("to_float({p}) ?? {p}"),
            "string" => format!("to_string({p}) ?? encode_json({p})"),
            "boolean" => format!("to_bool({p}) ?? {p}"),
            other => {
                out.push(todo_line(
                    cx,
                    &pos("convert"),
                    format!("`convert` to `{other}` has no VRL equivalent here"),
                ));
                continue;
            }
        };
        out.push(format!("if {p} != null {{ {p} = {conv} }}"));
    }
    if let Some(v) = o.get("gsub") {
        let items = v.as_list().unwrap_or_default();
        if items.len() % 3 != 0 {
            out.push(todo_line(
                cx,
                &pos("gsub"),
                "`gsub` wants triples of field, regex, replacement",
            ));
        } else {
            for t in items.chunks(3) {
                let Some(p) = field_path(t[0], &pos("gsub"), cx, out) else {
                    continue;
                };
                let re = match vrl::regex(t[1]) {
                    Ok(re) => re,
                    Err(e) => {
                        out.push(todo_line(cx, &pos("gsub"), e));
                        continue;
                    }
                };
                let repl = ruby_replacement(t[2]);
                out.push(format!(
                    "if is_string({p}) {{ {p} = replace(string!({p}), {re}, {}) }}",
                    vrl::string(&repl)
                ));
            }
        }
    }
    let fields = |name: &str| o.list(name).unwrap_or_default();
    for f in fields("uppercase") {
        if let Some(p) = field_path(&f, &pos("uppercase"), cx, out) {
            out.push(format!("if is_string({p}) {{ {p} = upcase(string!({p})) }}"));
        }
    }
    for f in fields("capitalize") {
        if let Some(p) = field_path(&f, &pos("capitalize"), cx, out) {
            out.push(format!(
                "if is_string({p}) && length(string!({p})) > 0 {{ {p} = upcase(slice!(string!({p}), 0, 1)) + downcase(slice!(string!({p}), 1)) }}"
            ));
        }
    }
    for f in fields("lowercase") {
        if let Some(p) = field_path(&f, &pos("lowercase"), cx, out) {
            out.push(format!("if is_string({p}) {{ {p} = downcase(string!({p})) }}"));
        }
    }
    for f in fields("strip") {
        if let Some(p) = field_path(&f, &pos("strip"), cx, out) {
            out.push(format!("if is_string({p}) {{ {p} = strip_whitespace(string!({p})) }}"));
        }
    }
    for (f, sep) in pairs(o, "split", cx, out) {
        if let Some(p) = field_path(&f, &pos("split"), cx, out) {
            out.push(format!(
                "if is_string({p}) {{ {p} = split(string!({p}), {}) }}",
                vrl::string(&sep)
            ));
        }
    }
    for (f, sep) in pairs(o, "join", cx, out) {
        if let Some(p) = field_path(&f, &pos("join"), cx, out) {
            out.push(format!(
                "if is_array({p}) {{ {p} = join(array!({p}), {}) ?? {p} }}",
                vrl::string(&sep)
            ));
        }
    }
    if o.get("merge").is_some() {
        out.push(todo_line(
            cx,
            &pos("merge"),
            "mutate `merge` has no VRL equivalent here; use `push`/`merge` by hand",
        ));
    }
    for (from, to) in pairs(o, "copy", cx, out) {
        if let (Some(a), Some(b)) = (
            field_path(&from, &pos("copy"), cx, out),
            field_path(&to, &pos("copy"), cx, out),
        ) {
            out.push(format!("if exists({a}) {{ {b} = {a} }}"));
        }
    }
    o.consume(&["tag_on_failure"]);
    common(o, cx, out);
}

/// A Ruby `gsub` replacement (`\1` for a group) as a VRL/Rust one (`${1}`).
fn ruby_replacement(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.peek() {
                Some(d) if d.is_ascii_digit() => {
                    out.push_str(&format!("${{{d}}}"));
                    chars.next();
                }
                Some('\\') => {
                    out.push('\\');
                    chars.next();
                }
                _ => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out
}

fn drop(o: &Opts, out: &mut Vec<String>) {
    match o.get("percentage").and_then(|v| v.as_float()) {
        Some(p) if p < 100.0 => out.push(format!("if random_float(0.0, 100.0) < {p:.1} {{ abort }}")),
        _ => out.push("abort".into()),
    }
    // `drop` never runs the common options: the event is gone.
    o.consume(&["add_field", "add_tag", "remove_field", "remove_tag", "periodic_flush"]);
}

/// True when the string reads `@metadata`.
pub fn reads_metadata(parts: &[Part]) -> bool {
    parts
        .iter()
        .any(|p| matches!(p, Part::Field(f) if f.first().is_some_and(|s| s == "@metadata")))
}
