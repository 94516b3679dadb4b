//! Templates that render per event: `{{ field }}` (a dotted path into the event)
//! and strftime specifiers (`%Y-%m-%d`) applied to the event's time, e.g.
//! `/logs/{{ service }}-%Y-%m-%d:%H.log`. Used for file paths, and later topics,
//! index names and archive partitions.

use crate::event::{Event, value_to_string};
use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, Utc};
use vrl::value::Value;

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
    time_field: String,
}

#[derive(Debug, Clone)]
enum Part {
    /// Literal text, possibly holding strftime specifiers (parsed once, in `items`).
    Text {
        text: String,
        has_time: bool,
        items: Vec<Item<'static>>,
    },
    /// A field path.
    Field(String),
}

/// Why a template cannot be parsed or rendered.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TemplateError {
    #[error("unclosed `{{{{` in template {0:?}")]
    Unclosed(String),
    #[error("invalid strftime specifier in {0:?}")]
    BadTime(String),
    #[error("the event has no field `{0}` that the template needs")]
    MissingField(String),
    #[error("the field `{0}` is empty, and an empty path segment would change the path's shape")]
    EmptyField(String),
}

impl Template {
    /// Parses `source`; event time comes from `time_field` (falling back to now).
    pub fn parse(source: &str, time_field: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = source;
        while let Some(start) = rest.find("{{") {
            push_text(&mut parts, &rest[..start])?;
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| TemplateError::Unclosed(source.to_string()))?;
            parts.push(Part::Field(after[..end].trim().to_string()));
            rest = &after[end + 2..];
        }
        push_text(&mut parts, rest)?;
        Ok(Template {
            source: source.to_string(),
            parts,
            time_field: time_field.to_string(),
        })
    }

    /// The directories every rendering shares: the template's text up to the last
    /// `/` before the first field or time specifier (`/logs/` of
    /// `/logs/{{ service }}/%H.log`).
    pub fn fixed_dir(&self) -> &str {
        let end = match self.parts.first() {
            Some(Part::Text {
                text, has_time: false, ..
            }) => text.len(),
            Some(Part::Text {
                text, has_time: true, ..
            }) => text.find('%').unwrap_or(0),
            _ => 0,
        };
        let fixed = &self.source[..end.min(self.source.len())];
        &fixed[..fixed.rfind('/').map_or(0, |i| i + 1)]
    }

    /// A pattern matching every rendering: each field and strftime specifier becomes
    /// `*`, the literal text goes through `literal` (to escape a glob's own
    /// characters). For tools that look for what a sink wrote (`pipe reconcile`).
    pub fn wildcard(&self, literal: impl Fn(&str) -> String) -> String {
        let mut out = String::new();
        let star = |out: &mut String| {
            if !out.ends_with('*') {
                out.push('*');
            }
        };
        for part in &self.parts {
            match part {
                Part::Field(_) => star(&mut out),
                Part::Text {
                    text, has_time: false, ..
                } => out.push_str(&literal(text)),
                Part::Text {
                    text, has_time: true, ..
                } => {
                    let mut chars = text.chars().peekable();
                    let mut run = String::new();
                    while let Some(c) = chars.next() {
                        if c != '%' {
                            run.push(c);
                            continue;
                        }
                        out.push_str(&literal(&run));
                        run.clear();
                        while chars
                            .peek()
                            .is_some_and(|c| matches!(c, '-' | '_' | '0' | '.' | '3' | '6' | '9' | ':'))
                        {
                            chars.next();
                        }
                        chars.next();
                        star(&mut out);
                    }
                    out.push_str(&literal(&run));
                }
            }
        }
        out
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// True when the template renders the same for every event.
    pub fn is_static(&self) -> bool {
        self.parts
            .iter()
            .all(|p| matches!(p, Part::Text { has_time: false, .. }))
    }

    /// Renders the template for `event`.
    pub fn render(&self, event: &Event) -> Result<String, TemplateError> {
        self.render_inner(event, None, false)
    }

    /// Renders the template as a path inside a directory tree (file sink paths,
    /// archive partitions and file names): a field value can add no directory level
    /// nor climb out of the template's fixed prefix: `/`, `\\`, control characters
    /// (NUL among them) and `%` are percent-encoded, and `.`/`..` become
    /// `%2E`/`%2E%2E`. `missing` stands in for a field the event lacks or has empty
    /// (Hive's `__HIVE_DEFAULT_PARTITION__`); without it such an event is an error
    /// (an empty segment would move the rest of the path up a level).
    pub fn render_path(&self, event: &Event, missing: Option<&str>) -> Result<String, TemplateError> {
        self.render_inner(event, missing, true)
    }

    fn render_inner(&self, event: &Event, missing: Option<&str>, path: bool) -> Result<String, TemplateError> {
        let mut out = String::new();
        let mut time: Option<DateTime<Utc>> = None;
        for part in &self.parts {
            match part {
                Part::Text {
                    text, has_time: false, ..
                } => out.push_str(text),
                Part::Text {
                    items, has_time: true, ..
                } => {
                    let t = *time.get_or_insert_with(|| {
                        event
                            .get_path(&self.time_field)
                            .and_then(time_of)
                            .unwrap_or_else(Utc::now)
                    });
                    use std::fmt::Write;
                    let _ = write!(out, "{}", t.format_with_items(items.iter()));
                }
                Part::Field(field) => {
                    let text = event
                        .get_path(field)
                        .filter(|v| !matches!(v, Value::Null))
                        .map(value_to_string);
                    match (text, missing) {
                        (Some(text), _) if !path => out.push_str(&text),
                        (Some(text), _) if !text.is_empty() => push_path_safe(&mut out, &text),
                        (Some(_), None) => return Err(TemplateError::EmptyField(field.clone())),
                        (_, Some(m)) => out.push_str(m),
                        (None, None) => return Err(TemplateError::MissingField(field.clone())),
                    }
                }
            }
        }
        Ok(out)
    }
}

/// The time a value holds: a timestamp, or an RFC 3339 string (what a timestamp
/// becomes after a trip through JSON, e.g. over Kafka).
pub fn time_of(value: &Value) -> Option<DateTime<Utc>> {
    match value {
        Value::Timestamp(t) => Some(*t),
        Value::Bytes(b) => std::str::from_utf8(b).ok().and_then(parse_rfc3339),
        Value::String(s) => parse_rfc3339(s),
        _ => None,
    }
}

fn parse_rfc3339(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

/// Appends `value` so that it stays one path segment.
fn push_path_safe(out: &mut String, value: &str) {
    use std::fmt::Write;
    match value {
        "." => out.push_str("%2E"),
        ".." => out.push_str("%2E%2E"),
        _ => {
            for c in value.chars() {
                if matches!(c, '/' | '\\' | '%') || c.is_control() {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        let _ = write!(out, "%{b:02X}");
                    }
                } else {
                    out.push(c);
                }
            }
        }
    }
}

fn push_text(parts: &mut Vec<Part>, text: &str) -> Result<(), TemplateError> {
    if text.is_empty() {
        return Ok(());
    }
    let items: Vec<Item> = StrftimeItems::new(text).collect();
    if items.iter().any(|i| matches!(i, Item::Error)) {
        return Err(TemplateError::BadTime(text.to_string()));
    }
    let has_time = items.iter().any(|i| !matches!(i, Item::Literal(_) | Item::Space(_)));
    let items = items.into_iter().map(Item::to_owned).collect();
    parts.push(Part::Text {
        text: text.to_string(),
        has_time,
        items,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use vrl::value::ObjectMap;

    fn event(service: &str, ts: &str) -> Event {
        let mut m = ObjectMap::new();
        m.insert("service".into(), Value::from(service));
        m.insert("timestamp".into(), Value::Timestamp(ts.parse().unwrap()));
        Event::from_map(m)
    }

    #[test]
    fn renders_fields_and_time() {
        let t = Template::parse("/logs/{{ service }}-%Y-%m-%d:%H.log", "timestamp").unwrap();
        let e = event("api", "2026-11-25T13:04:05Z");
        assert_eq!(t.render(&e).unwrap(), "/logs/api-2026-11-25:13.log");
        assert!(!t.is_static());
    }

    #[test]
    fn time_from_an_rfc3339_string() {
        let t = Template::parse("%Y-%m-%d:%H", "timestamp").unwrap();
        let mut e = event("api", "2026-11-25T13:04:05Z");
        e.insert("timestamp", Value::from("2026-11-24T23:59:59+09:00"));
        assert_eq!(t.render(&e).unwrap(), "2026-11-24:14");
    }

    #[test]
    fn field_values_are_not_strftime() {
        let t = Template::parse("{{ service }}", "timestamp").unwrap();
        assert_eq!(t.render(&event("a%Yb", "2026-11-25T13:04:05Z")).unwrap(), "a%Yb");
    }

    #[test]
    fn path_rendering_keeps_field_values_in_one_segment() {
        let t = Template::parse("service={{ service }}/%Y", "timestamp").unwrap();
        let r = |s: &str| {
            t.render_path(&event(s, "2026-11-25T13:04:05Z"), Some("__NULL__"))
                .unwrap()
        };
        assert_eq!(r("api"), "service=api/2026");
        assert_eq!(r("../../etc"), "service=..%2F..%2Fetc/2026");
        assert_eq!(r(".."), "service=%2E%2E/2026");
        assert_eq!(r("a\\b%c\n"), "service=a%5Cb%25c%0A/2026");
        assert_eq!(r("/etc/x\0"), "service=%2Fetc%2Fx%00/2026");
        assert_eq!(r(""), "service=__NULL__/2026");
    }

    #[test]
    fn errors() {
        assert!(matches!(Template::parse("{{ x", "t"), Err(TemplateError::Unclosed(_))));
        assert!(matches!(Template::parse("%Q%", "t"), Err(TemplateError::BadTime(_))));
        let t = Template::parse("{{ nope }}", "timestamp").unwrap();
        assert_eq!(
            t.render(&event("a", "2026-11-25T13:04:05Z")),
            Err(TemplateError::MissingField("nope".into()))
        );
        assert_eq!(
            t.render_path(&event("a", "2026-11-25T13:04:05Z"), Some("-")).unwrap(),
            "-"
        );
        assert!(t.render_path(&event("a", "2026-11-25T13:04:05Z"), None).is_err());
        let s = Template::parse("{{ service }}/x", "timestamp").unwrap();
        assert_eq!(
            s.render_path(&event("", "2026-11-25T13:04:05Z"), None),
            Err(TemplateError::EmptyField("service".into()))
        );
        assert!(Template::parse("/a/b.log", "t").unwrap().is_static());
        assert_eq!(
            Template::parse("/logs/{{ s }}/%H.log", "t").unwrap().fixed_dir(),
            "/logs/"
        );
        assert_eq!(Template::parse("/logs/a-%Y/x.log", "t").unwrap().fixed_dir(), "/logs/");
        assert_eq!(Template::parse("/logs/out.log", "t").unwrap().fixed_dir(), "/logs/");
        assert_eq!(Template::parse("{{ s }}.log", "t").unwrap().fixed_dir(), "");
    }
}
