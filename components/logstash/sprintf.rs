//! Logstash strings as the converter writes them elsewhere: `${VAR}` and
//! `${VAR:default}` (replaced from the environment when Logstash loads its config)
//! and the sprintf format (`%{field}`, `%{[a][b]}`, `%{+YYYY.MM.dd}`,
//! `%{{yyyy.MM.dd}}`) that plugins expand per event. They become pipe's
//! `${VAR:-default}` and templates (`{{ a.b }}`, `%Y.%m.%d`), or VRL expressions.

use super::joda::{self, Mode};
use super::vrl;

/// A part of a Logstash string.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    /// Text, taken as it is.
    Text(String),
    /// `%{field}` / `%{[a][b]}`: the field's path.
    Field(Vec<String>),
    /// `%{+FORMAT}` (Joda) or `%{{FORMAT}}` (java.time): `@timestamp` formatted.
    Time(String),
    /// `${NAME}` or `${NAME:default}`.
    Env { name: String, default: Option<String> },
}

/// Splits `s` into its parts.
pub fn parse(s: &str) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("${")
            && let Some(end) = after.find('}')
            && let Some((name, default)) = env_ref(&after[..end])
        {
            flush(&mut parts, &mut text);
            parts.push(Part::Env { name, default });
            rest = &after[end + 1..];
            continue;
        }
        if let Some(after) = rest.strip_prefix("%{{")
            && let Some(end) = after.find("}}")
        {
            flush(&mut parts, &mut text);
            parts.push(Part::Time(after[..end].to_string()));
            rest = &after[end + 2..];
            continue;
        }
        if let Some(after) = rest.strip_prefix("%{")
            && let Some(end) = after.find('}')
        {
            let inner = &after[..end];
            if let Some(fmt) = inner.strip_prefix('+') {
                flush(&mut parts, &mut text);
                parts.push(Part::Time(fmt.to_string()));
                rest = &after[end + 1..];
                continue;
            }
            if let Some(path) = field_ref(inner) {
                flush(&mut parts, &mut text);
                parts.push(Part::Field(path));
                rest = &after[end + 1..];
                continue;
            }
        }
        text.push(c);
        rest = &rest[c.len_utf8()..];
    }
    flush(&mut parts, &mut text);
    parts
}

fn flush(parts: &mut Vec<Part>, text: &mut String) {
    if !text.is_empty() {
        parts.push(Part::Text(std::mem::take(text)));
    }
}

fn env_ref(inner: &str) -> Option<(String, Option<String>)> {
    let (name, default) = match inner.split_once(':') {
        Some((n, d)) => (n, Some(d.to_string())),
        None => (inner, None),
    };
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then(|| (name.to_string(), default))
}

/// A field reference as Logstash writes it in options: `[a][b]`, `[a]` or `a`.
pub fn field_ref(s: &str) -> Option<Vec<String>> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if !s.starts_with('[') {
        return (!s.contains(['[', ']'])).then(|| vec![s.to_string()]);
    }
    let mut segments = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[')?;
        let end = inner.find(']')?;
        let seg = &inner[..end];
        if seg.is_empty() || seg.contains('[') {
            return None;
        }
        segments.push(seg.to_string());
        rest = &inner[end + 1..];
    }
    Some(segments)
}

/// True when `parts` read no event field or time (a constant, save the
/// environment).
pub fn is_constant(parts: &[Part]) -> bool {
    parts.iter().all(|p| matches!(p, Part::Text(_) | Part::Env { .. }))
}

/// Names of the environment variables `parts` read.
pub fn env_names(parts: &[Part]) -> Vec<String> {
    parts
        .iter()
        .filter_map(|p| match p {
            Part::Env { name, .. } => Some(name.clone()),
            _ => None,
        })
        .collect()
}

/// Escapes text for a topology file, where `${` and `$$` would be read as a
/// variable or a `$`.
pub fn escape_dollars(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let chars: Vec<char> = s.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        out.push(*c);
        if *c == '$' && matches!(chars.get(i + 1), Some('{' | '$')) {
            out.push('$');
        }
    }
    out
}

/// The string for a topology option: text with every `$` doubled, variables as pipe's
/// `${NAME}` / `${NAME:-default}`. Fails on sprintf parts, which options that are
/// no template cannot hold.
pub fn to_option(parts: &[Part]) -> Result<String, String> {
    let mut out = String::new();
    for p in parts {
        match p {
            Part::Text(t) => out.push_str(&t.replace('$', "$$")),
            Part::Env { name, default: None } => out.push_str(&format!("${{{name}}}")),
            Part::Env { name, default: Some(d) } => out.push_str(&format!("${{{name}:-{}}}", d.replace('$', "$$"))),
            Part::Field(path) => return Err(format!("`%{{{}}}` reads an event field here", display_path(path))),
            Part::Time(f) => return Err(format!("`%{{+{f}}}` reads the event time here")),
        }
    }
    Ok(out)
}

/// A pipe template (`{{ a.b }}`, strftime on the event time) for a Logstash sprintf
/// string; text's `%` is doubled. Returns the template and whether it reads the
/// event time.
pub fn to_template(parts: &[Part]) -> Result<(String, bool), String> {
    let mut out = String::new();
    let mut time = false;
    for p in parts {
        match p {
            Part::Text(t) => {
                if t.contains("{{") {
                    return Err(format!(
                        "the text `{t}` holds `{{{{`, which a pipe template reads as a field"
                    ));
                }
                out.push_str(&t.replace('%', "%%").replace('$', "$$"));
            }
            Part::Env { .. } => out.push_str(&to_option(std::slice::from_ref(p))?),
            Part::Field(path) => {
                if let Some(bad) = path
                    .iter()
                    .find(|s| s.contains(['.', '{', '}']) || s.trim() != s.as_str())
                {
                    return Err(format!("the field name `{bad}` cannot be written in a pipe template"));
                }
                out.push_str(&format!("{{{{ {} }}}}", path.join(".")));
            }
            Part::Time(f) => {
                out.push_str(&joda::to_strftime(f, Mode::Format)?.replace('$', "$$"));
                time = true;
            }
        }
    }
    Ok((out, time))
}

/// A VRL expression evaluating to the string Logstash's sprintf gives: text,
/// fields as text (JSON for objects and arrays; a missing field gives empty text),
/// `@timestamp` with milliseconds, times formatted in UTC, variables from the
/// environment.
pub fn to_vrl(parts: &[Part]) -> Result<String, String> {
    if parts.is_empty() {
        return Ok("\"\"".to_string());
    }
    let mut terms = Vec::new();
    for p in parts {
        terms.push(match p {
            Part::Text(t) => vrl::string(t),
            Part::Field(path) => field_text(path),
            Part::Time(f) => format!(
                "(format_timestamp(.\"@timestamp\", {}, timezone: \"UTC\") ?? \"\")",
                vrl::string(&joda::to_strftime(f, Mode::Format)?)
            ),
            Part::Env { name, default } => format!(
                "(get_env_var({}) ?? {})",
                vrl::string(name),
                vrl::string(default.as_deref().unwrap_or(""))
            ),
        });
    }
    Ok(terms.join(" + "))
}

/// A field's value as sprintf text, in VRL.
pub fn field_text(path: &[String]) -> String {
    let p = vrl::path(path);
    if path.len() == 1 && path[0] == "@timestamp" {
        format!("(format_timestamp({p}, \"%Y-%m-%dT%H:%M:%S%.3fZ\", timezone: \"UTC\") ?? to_string({p}) ?? \"\")")
    } else {
        format!("(to_string({p}) ?? encode_json({p}))")
    }
}

/// A path as Logstash writes it, `[a][b]`.
pub fn display_path(path: &[String]) -> String {
    if path.len() == 1 {
        path[0].clone()
    } else {
        path.iter().map(|s| format!("[{s}]")).collect()
    }
}

/// The single field `parts` consist of, if that is all they are (`%{host}`).
pub fn only_field(parts: &[Part]) -> Option<&[String]> {
    match parts {
        [Part::Field(path)] => Some(path),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_of_a_string() {
        assert_eq!(
            parse("logs-%{[@metadata][beat]}-%{+YYYY.MM.dd}${X:y}%{type}%{{HH}}%{"),
            vec![
                Part::Text("logs-".into()),
                Part::Field(vec!["@metadata".into(), "beat".into()]),
                Part::Text("-".into()),
                Part::Time("YYYY.MM.dd".into()),
                Part::Env {
                    name: "X".into(),
                    default: Some("y".into())
                },
                Part::Field(vec!["type".into()]),
                Part::Time("HH".into()),
                Part::Text("%{".into()),
            ]
        );
    }

    #[test]
    fn templates_and_options() {
        let (t, time) = to_template(&parse("%{[@metadata][beat]}-%{+YYYY.MM.dd}-50%")).unwrap();
        assert_eq!(t, "{{ @metadata.beat }}-%Y.%m.%d-50%%");
        assert!(time);
        assert_eq!(
            to_option(&parse("http://${ES_HOST:localhost}:9200/$${x}")).unwrap(),
            "http://${ES_HOST:-localhost}:9200/$$${x}"
        );
        assert!(to_option(&parse("%{host}")).is_err());
        assert!(to_template(&parse("%{[a.b]}")).is_err());
    }

    #[test]
    fn field_references() {
        assert_eq!(field_ref("[a][b]"), Some(vec!["a".to_string(), "b".to_string()]));
        assert_eq!(field_ref("@timestamp"), Some(vec!["@timestamp".to_string()]));
        assert_eq!(field_ref("[a]b"), None);
        assert_eq!(field_ref(""), None);
    }
}
