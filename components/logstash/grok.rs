//! The `grok` filter as VRL `parse_grok` (the Logstash pattern library VRL ships,
//! the legacy field names: `clientip`, `verb`, `response`, …). Patterns are tried
//! in order until one matches; captures are set as Logstash sets them: empty ones
//! left out, `[a][b]` names nested, `:int`/`:float` converted, and `message`,
//! `host`, `path` or `type` turned into an array of the old and the new value
//! unless `overwrite` names them (other fields are replaced).
//! `pattern_definitions` are written into the patterns.

use super::filters::{common, failure_tags, field_path, indent, todo_line};
use super::opts::{Cx, Opts};
use super::sprintf;
use super::vrl;
use std::collections::BTreeMap;

/// A capture the pattern names itself (not one inside a library pattern).
#[derive(Debug, Clone, PartialEq)]
struct Capture {
    /// The key `parse_grok` returns.
    key: String,
    /// The field it goes to.
    field: Vec<String>,
    convert: Option<&'static str>,
}

pub fn filter(o: &Opts, cx: &mut Cx, out: &mut Vec<String>) {
    let Some(m) = o.get("match") else {
        out.push(todo_line(
            cx,
            &o.plugin.pos,
            "the `grok` filter has no `match`; it is left out",
        ));
        return;
    };
    let Some(pairs) = m.as_pairs() else {
        out.push(todo_line(
            cx,
            o.pos("match"),
            "`match` is neither a hash nor pairs of field and pattern",
        ));
        return;
    };
    if o.get("patterns_dir").is_some() {
        out.push(todo_line(
            cx,
            o.pos("patterns_dir"),
            "`patterns_dir`: copy the custom patterns into `pattern_definitions` (pipe reads no pattern files); patterns using them are left out",
        ));
    }
    if let Some(ecs) = o.str("ecs_compatibility")
        && ecs != "disabled"
    {
        out.push(todo_line(cx, o.pos("ecs_compatibility"), format!("`ecs_compatibility => {ecs}`: VRL's grok library names captures as Logstash did without ECS (`clientip`, not `[source][address]`)")));
    }
    if o.bool("named_captures_only") == Some(false) {
        out.push(todo_line(
            cx,
            o.pos("named_captures_only"),
            "`named_captures_only => false`: only named captures are kept",
        ));
    }
    let definitions: BTreeMap<String, String> = match o.get("pattern_definitions") {
        Some(v) => v
            .as_pairs()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_string())))
            .collect(),
        None => BTreeMap::new(),
    };
    let overwrite: Vec<String> = o.list("overwrite").unwrap_or_default();
    let break_on_match = o.bool("break_on_match").unwrap_or(true);
    let keep_empty = o.bool("keep_empty_captures").unwrap_or(false);
    o.consume(&["timeout_millis", "timeout_scope", "tag_on_timeout"]);

    // (source path, pattern, captures) for each pattern, in order.
    let mut attempts = Vec::new();
    for (field, patterns) in pairs {
        let Some(src) = field_path(&field, o.pos("match"), cx, out) else {
            continue;
        };
        for pattern in patterns.as_list().unwrap_or_default() {
            let mut counter = 0;
            let (expanded, mut captures) = expand(pattern, &definitions, &mut counter, 0);
            let (expanded, renamed) = rename_fields(&expanded, &mut counter);
            captures.extend(renamed);
            captures.extend(named_captures(&expanded));
            if let Err(e) = vrl::check(&format!("x, e = parse_grok(\"\", {})", vrl::string(&expanded))) {
                let why = e
                    .lines()
                    .find(|l| l.contains("grok pattern error"))
                    .unwrap_or("it does not compile")
                    .trim();
                out.push(todo_line(
                    cx,
                    o.pos("match"),
                    format!("grok pattern `{pattern}`: {why}; it is left out"),
                ));
                continue;
            }
            attempts.push((src.clone(), expanded, captures));
        }
    }
    if attempts.is_empty() {
        return;
    }
    let mut ok = Vec::new();
    common(o, cx, &mut ok);
    let mut failed = Vec::new();
    failure_tags(o, "_grokparsefailure", cx, &mut failed);

    if break_on_match || attempts.len() == 1 {
        for (i, (src, pattern, _)) in attempts.iter().enumerate() {
            let call = format!("parsed, err = parse_grok({src}, {})", vrl::string(pattern));
            if i == 0 {
                out.push(call);
            } else {
                out.push(format!("if err != null {{ {call} }}"));
            }
        }
        let mut all: Vec<Capture> = Vec::new();
        for (_, _, caps) in &attempts {
            for c in caps {
                if !all.contains(c) {
                    all.push(c.clone());
                }
            }
        }
        out.push("if err == null {".into());
        out.extend(indent(apply(&all, &overwrite, keep_empty)));
        out.extend(indent(ok));
        out.push("} else {".into());
        out.extend(indent(failed));
        out.push("}".into());
    } else {
        out.push("matched = false".into());
        for (src, pattern, caps) in &attempts {
            out.push(format!("parsed, err = parse_grok({src}, {})", vrl::string(pattern)));
            out.push("if err == null {".into());
            out.push("  matched = true".into());
            out.extend(indent(apply(caps, &overwrite, keep_empty)));
            out.push("}".into());
        }
        out.push("if matched {".into());
        out.extend(indent(ok));
        out.push("} else {".into());
        out.extend(indent(failed));
        out.push("}".into());
    }
}

/// Fields Logstash inputs give every event.
const PREEXISTING: &[&str] = &["message", "host", "path", "type", "tags", "@version", "@timestamp"];

/// Lines setting `parsed`'s captures on the event.
fn apply(captures: &[Capture], overwrite: &[String], keep_empty: bool) -> Vec<String> {
    let mut lines = Vec::new();
    if !keep_empty {
        lines.push("parsed = compact(parsed)".to_string());
    }
    for c in captures {
        let key = vrl::var_path("parsed", &c.key);
        if let Some(conv) = c.convert {
            lines.push(format!("if exists({key}) {{ {key} = {conv}({key}) ?? {key} }}"));
        }
        let field = vrl::path(&c.field);
        let named = sprintf::display_path(&c.field);
        // Logstash makes an array of a field that already holds a string; of the
        // fields events carry before any filter ran, so does this.
        let preexisting = c.field.len() == 1 && PREEXISTING.contains(&c.field[0].as_str());
        if preexisting
            && !overwrite
                .iter()
                .any(|w| w == &named || sprintf::field_ref(w).as_deref() == Some(&c.field[..]))
        {
            lines.push(format!(
                "if exists({key}) && (is_string({field}) || is_array({field})) {{ {key} = push(array({field}) ?? [{field}], {key}) }}"
            ));
        }
        let simple = c.field.len() == 1 && c.field[0] == c.key;
        if !simple {
            lines.push(format!("if exists({key}) {{ {field} = del({key}) }}"));
        }
    }
    lines.push(". = merge(., parsed)".to_string());
    lines
}

/// Gives captures named with a field reference (`%{IP:[client][ip]}`), which
/// VRL's grok does not take as names, a plain name that maps back to the field.
fn rename_fields(pattern: &str, counter: &mut usize) -> (String, Vec<Capture>) {
    let re = regex::Regex::new(r"%\{([A-Za-z0-9_]+):([^:}]+)(:(?:int|float))?\}").expect("valid regex");
    let mut captures = Vec::new();
    let out = re.replace_all(pattern, |m: &regex::Captures| {
        let name = &m[2];
        if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return m[0].to_string();
        }
        let Some(field) = sprintf::field_ref(name) else {
            return m[0].to_string();
        };
        let key = format!("ls_field_{}", *counter);
        *counter += 1;
        let convert = m
            .get(3)
            .map(|t| if t.as_str() == ":int" { "to_int" } else { "to_float" });
        captures.push(Capture {
            key: key.clone(),
            field,
            convert,
        });
        format!("%{{{}:{key}{}}}", &m[1], m.get(3).map_or("", |t| t.as_str()))
    });
    (out.into_owned(), captures)
}

/// `%{NAME:field:type}` captures written in `pattern` (not inside library
/// patterns).
fn named_captures(pattern: &str) -> Vec<Capture> {
    let re = regex::Regex::new(r"%\{([A-Za-z0-9_]+)(?::([^:}]+))?(?::(int|float))?\}").expect("valid regex");
    let mut out = Vec::new();
    for m in re.captures_iter(pattern) {
        let Some(name) = m.get(2).map(|g| g.as_str().to_string()) else {
            continue;
        };
        if name.starts_with("ls_field_") {
            continue;
        }
        let Some(field) = sprintf::field_ref(&name) else {
            continue;
        };
        let convert = m
            .get(3)
            .map(|t| if t.as_str() == "int" { "to_int" } else { "to_float" });
        out.push(Capture {
            key: name,
            field,
            convert,
        });
    }
    // Raw `(?<name>…)` groups.
    let raw = regex::Regex::new(r"\(\?<([A-Za-z_][A-Za-z0-9_]*)>").expect("valid regex");
    for m in raw.captures_iter(pattern) {
        let name = m[1].to_string();
        if name.starts_with("ls_custom_") {
            continue;
        }
        out.push(Capture {
            key: name.clone(),
            field: vec![name],
            convert: None,
        });
    }
    out
}

/// Writes `pattern_definitions` into the pattern: `%{NAME}` becomes `(?:DEF)`,
/// `%{NAME:field}` a named group whose key maps back to `field`.
fn expand(pattern: &str, defs: &BTreeMap<String, String>, counter: &mut usize, depth: usize) -> (String, Vec<Capture>) {
    if defs.is_empty() || depth > 16 {
        return (pattern.to_string(), Vec::new());
    }
    let re = regex::Regex::new(r"%\{([A-Za-z0-9_]+)(?::([^:}]+))?(?::(int|float))?\}").expect("valid regex");
    let mut captures = Vec::new();
    let mut out = String::new();
    let mut last = 0;
    for m in re.captures_iter(pattern) {
        let whole = m.get(0).expect("match");
        let Some(def) = defs.get(&m[1]) else { continue };
        out.push_str(&pattern[last..whole.start()]);
        let (inner, inner_caps) = expand(def, defs, counter, depth + 1);
        captures.extend(inner_caps);
        captures.extend(named_captures(&inner));
        match m
            .get(2)
            .and_then(|n| sprintf::field_ref(n.as_str()).map(|f| (n.as_str().to_string(), f)))
        {
            Some((_, field)) => {
                let key = format!("ls_custom_{}", *counter);
                *counter += 1;
                out.push_str(&format!("(?<{key}>{inner})"));
                let convert = m
                    .get(3)
                    .map(|t| if t.as_str() == "int" { "to_int" } else { "to_float" });
                captures.push(Capture { key, field, convert });
            }
            None => out.push_str(&format!("(?:{inner})")),
        }
        last = whole.end();
    }
    out.push_str(&pattern[last..]);
    (out, captures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_are_written_into_the_pattern() {
        let mut defs = BTreeMap::new();
        defs.insert("GREEDYMULTILINE".to_string(), "(.|\\n)*".to_string());
        let mut n = 0;
        let (p, caps) = expand(
            "%{SYSLOGHOST:[s][host]} %{GREEDYMULTILINE:[s][message]}",
            &defs,
            &mut n,
            0,
        );
        assert_eq!(p, "%{SYSLOGHOST:[s][host]} (?<ls_custom_0>(.|\\n)*)");
        assert_eq!(caps[0].field, vec!["s".to_string(), "message".to_string()]);
        let (p, renamed) = rename_fields(&p, &mut n);
        assert_eq!(p, "%{SYSLOGHOST:ls_field_1} (?<ls_custom_0>(.|\\n)*)");
        assert_eq!(renamed[0].field, vec!["s".to_string(), "host".to_string()]);
        assert!(named_captures(&p).is_empty());
    }
}
