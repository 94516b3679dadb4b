//! Option and counter docs generated from the code. For one [`ComponentDef`],
//! [`options_table`] renders its options as a Markdown table from the JSON schema of
//! its options struct (names, types, defaults and doc comments, nested tables as
//! dotted names), and [`counters_table`] renders the internal events and gauges it
//! declares ([`EventSpec`], [`GaugeSpec`]).
//!
//! `docs/configuration.md` holds both tables of every registry entry between marker
//! comments, `<!-- generated:options:sources.file -->` … `<!-- /generated -->` (and
//! `generated:counters:…`); [`regenerate`] rewrites what is between them, and a test
//! fails when the file differs from what the code says. `pipe list TYPE` prints the
//! same tables.

use crate::component::ComponentDef;
use crate::metrics::{Counts, EventSpec, GaugeSpec};
use serde_json::{Map, Value};

/// What a marked region of a document holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    /// The options table.
    Options,
    /// The counters and gauges table.
    Counters,
}

impl Region {
    fn name(self) -> &'static str {
        match self {
            Region::Options => "options",
            Region::Counters => "counters",
        }
    }
}

/// The closing marker of a generated region.
pub const END_MARKER: &str = "<!-- /generated -->";

/// The id naming `def` in markers: its topology table and type, `sources.file`.
pub fn section_id(def: &ComponentDef) -> String {
    format!("{}.{}", def.kind.table(), def.name)
}

/// The opening marker of `def`'s `region`.
pub fn start_marker(def: &ComponentDef, region: Region) -> String {
    format!("<!-- generated:{}:{} -->", region.name(), section_id(def))
}

/// The generated text of `def`'s `region`.
pub fn render(def: &ComponentDef, region: Region) -> String {
    match region {
        Region::Options => options_table(def),
        Region::Counters => counters_table(def),
    }
}

/// A problem with the markers of a document.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DocsError {
    /// An opening marker without its `<!-- /generated -->`.
    #[error("line {line}: `{marker}` has no closing `{END_MARKER}`")]
    Unclosed { line: usize, marker: String },
    /// A marker naming no registry entry, or no kind of region.
    #[error(
        "line {line}: `{marker}` names no component type (markers look like `<!-- generated:options:sources.file -->`)"
    )]
    Unknown { line: usize, marker: String },
    /// The same region marked twice.
    #[error("line {line}: `{marker}` appears a second time")]
    Duplicate { line: usize, marker: String },
    /// A registry entry whose region is not in the document.
    #[error("no `{marker}` … `{END_MARKER}` region: every component type needs its options and counters in the docs")]
    Missing { marker: String },
}

/// `doc` with every generated region rewritten from `defs`. Fails on a marker naming
/// no entry, an unclosed or repeated region, and an entry of `defs` without both of
/// its regions.
pub fn regenerate(doc: &str, defs: &[ComponentDef]) -> Result<String, DocsError> {
    let mut out = String::with_capacity(doc.len());
    let mut seen = Vec::new();
    let mut lines = doc.split_inclusive('\n').enumerate();
    while let Some((i, line)) = lines.next() {
        out.push_str(line);
        let marker = line.trim();
        let Some(spec) = marker
            .strip_prefix("<!-- generated:")
            .and_then(|m| m.strip_suffix("-->"))
        else {
            continue;
        };
        let unknown = || DocsError::Unknown {
            line: i + 1,
            marker: marker.to_string(),
        };
        let (region, id) = spec.trim().split_once(':').ok_or_else(unknown)?;
        let region = match region {
            "options" => Region::Options,
            "counters" => Region::Counters,
            _ => return Err(unknown()),
        };
        let def = defs.iter().find(|d| section_id(d) == id).ok_or_else(unknown)?;
        if seen.contains(&(region, id.to_string())) {
            return Err(DocsError::Duplicate {
                line: i + 1,
                marker: marker.to_string(),
            });
        }
        seen.push((region, id.to_string()));
        let closed = lines.by_ref().find(|(_, l)| l.trim() == END_MARKER);
        let Some((_, end)) = closed else {
            return Err(DocsError::Unclosed {
                line: i + 1,
                marker: marker.to_string(),
            });
        };
        if !line.ends_with('\n') {
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&render(def, region));
        out.push('\n');
        out.push_str(end);
    }
    for def in defs {
        for region in [Region::Options, Region::Counters] {
            if !seen.contains(&(region, section_id(def))) {
                return Err(DocsError::Missing {
                    marker: start_marker(def, region),
                });
            }
        }
    }
    Ok(out)
}

/// One row of the options table.
struct OptionRow {
    name: String,
    ty: String,
    default: String,
    description: String,
}

/// The options table of `def`: option (dotted for nested tables), type, default
/// (`required` when it must be set; `—` when unset means off or derived), and the
/// doc comment.
pub fn options_table(def: &ComponentDef) -> String {
    let schema = (def.options)();
    let root = schema.as_value();
    let mut rows = Vec::new();
    option_rows(root, root, "", &mut rows);
    if rows.is_empty() {
        return "It has no options.\n".to_string();
    }
    let mut out = String::from("| option | type | default | description |\n|---|---|---|---|\n");
    for r in rows {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            r.name,
            cell(&r.ty),
            cell(&r.default),
            cell(&r.description)
        ));
    }
    out
}

/// Adds a row per property of the object `schema` (and of nested tables, after it).
fn option_rows(root: &Value, schema: &Value, prefix: &str, rows: &mut Vec<OptionRow>) {
    let schema = resolve(root, schema);
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    // Required options first; each group in the schema's (alphabetical) order.
    let mut props: Vec<(&String, &Value)> = props.iter().collect();
    props.sort_by_key(|(name, _)| !required.contains(&name.as_str()));
    for (name, prop) in props {
        let full = format!("{prefix}{name}");
        let inner = resolve(root, non_null(root, prop));
        let mut description = text(prop.get("description"))
            .or_else(|| text(inner.get("description")))
            .unwrap_or_default();
        let variants = variant_docs(root, inner);
        if !variants.is_empty() {
            if !description.is_empty() {
                description.push(' ');
            }
            description.push_str(&variants.join(" "));
        }
        let default = if required.contains(&name.as_str()) {
            "required".to_string()
        } else {
            match prop.get("default") {
                Some(Value::Null) | None => "—".to_string(),
                Some(v) => format!("`{}`", toml_value(v)),
            }
        };
        let nested = inner.get("properties").is_some();
        rows.push(OptionRow {
            name: full.clone(),
            ty: type_name(root, inner),
            default,
            description,
        });
        if nested {
            option_rows(root, inner, &format!("{full}."), rows);
        }
    }
}

/// `schema` with a `$ref` followed (to its definition in `root`).
fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    let mut s = schema;
    for _ in 0..16 {
        match s.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix('#')) {
            Some(pointer) => match root.pointer(pointer) {
                Some(target) => s = target,
                None => break,
            },
            None => break,
        }
    }
    s
}

/// The one alternative of `anyOf`/`oneOf` that is not `null` (an `Option<T>`), or
/// `schema` itself.
fn non_null<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    for key in ["anyOf", "oneOf"] {
        if let Some(alts) = schema.get(key).and_then(Value::as_array) {
            let mut rest = alts.iter().filter(|a| !is_null(resolve(root, a)));
            if let (Some(one), None) = (rest.next(), rest.next())
                && alts.len() == 2
            {
                return one;
            }
        }
    }
    schema
}

fn is_null(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("null") || schema.get("const") == Some(&Value::Null)
}

/// The values an enumeration schema allows, if it is one.
fn enum_values(root: &Value, schema: &Value) -> Option<Vec<Value>> {
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return Some(values.iter().filter(|v| !v.is_null()).cloned().collect());
    }
    if let Some(c) = schema.get("const") {
        return Some(vec![c.clone()]);
    }
    let alts = schema.get("oneOf").or_else(|| schema.get("anyOf"))?.as_array()?;
    let mut values = Vec::new();
    for a in alts {
        let a = resolve(root, a);
        if is_null(a) {
            continue;
        }
        values.extend(enum_values(root, a)?);
    }
    Some(values)
}

/// `` `"value"`: doc `` for each documented alternative of an enumeration.
fn variant_docs(root: &Value, schema: &Value) -> Vec<String> {
    let Some(alts) = schema.get("oneOf").and_then(Value::as_array) else {
        return Vec::new();
    };
    if enum_values(root, schema).is_none() {
        return Vec::new();
    }
    alts.iter()
        .filter_map(|a| {
            let a = resolve(root, a);
            let doc = text(a.get("description"))?;
            let values = enum_values(root, a)?;
            let names: Vec<String> = values.iter().map(|v| format!("`{}`", toml_value(v))).collect();
            Some(format!("{}: {doc}", names.join(", ")))
        })
        .collect()
}

/// The type cell for `schema`: the allowed values (`` `"json"` or `"text"` ``), or
/// a short name in backticks (`string`, `[string]`, `{ name = string }`, `table`).
fn type_name(root: &Value, schema: &Value) -> String {
    let schema = resolve(root, non_null(root, schema));
    match enum_values(root, schema) {
        Some(values) => {
            let names: Vec<String> = values.iter().map(|v| format!("`{}`", toml_value(v))).collect();
            match names.split_last() {
                Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
                _ => names.join(""),
            }
        }
        None => format!("`{}`", raw_type(root, schema)),
    }
}

/// A short name of the type `schema` describes: `string`, `integer`, `[string]`,
/// `{ name = string }`, `table`, or the allowed values (`"a" | "b"`).
fn raw_type(root: &Value, schema: &Value) -> String {
    let schema = resolve(root, non_null(root, schema));
    if let Some(values) = enum_values(root, schema) {
        return values.iter().map(toml_value).collect::<Vec<_>>().join(" | ");
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).filter(|t| *t != "null").collect(),
        _ => vec![],
    };
    match types.as_slice() {
        ["string"] if schema.get("writeOnly") == Some(&Value::Bool(true)) => "string (secret)".to_string(),
        ["string"] => "string".to_string(),
        ["integer"] => "integer".to_string(),
        ["number"] => "number".to_string(),
        ["boolean"] => "bool".to_string(),
        ["array"] => match schema.get("items") {
            Some(items) => format!("[{}]", raw_type(root, items)),
            None => "array".to_string(),
        },
        ["object"] if schema.get("properties").is_some() => "table".to_string(),
        ["object"] => match schema.get("additionalProperties") {
            Some(v @ Value::Object(_)) => format!("{{ name = {} }}", raw_type(root, v)),
            _ => "table".to_string(),
        },
        _ if schema.get("properties").is_some() => "table".to_string(),
        _ => "any".to_string(),
    }
}

/// A JSON value written as TOML (`"json"`, `1000`, `[]`, `{ a = "b" }`).
fn toml_value(v: &Value) -> String {
    match v {
        Value::Array(items) => format!("[{}]", items.iter().map(toml_value).collect::<Vec<_>>().join(", ")),
        Value::Object(map) if map.is_empty() => "{}".to_string(),
        Value::Object(map) => format!("{{ {} }}", toml_pairs(map)),
        other => other.to_string(),
    }
}

fn toml_pairs(map: &Map<String, Value>) -> String {
    map.iter()
        .map(|(k, v)| format!("{} = {}", Value::String(k.clone()), toml_value(v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A doc comment on one line: lines and paragraphs joined by single spaces.
fn text(v: Option<&Value>) -> Option<String> {
    let s = v?.as_str()?.split_whitespace().collect::<Vec<_>>().join(" ");
    (!s.is_empty()).then_some(s)
}

/// `s` safe inside a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// The counters table of `def`: each internal event with the series it adds to and
/// its doc, then each gauge with its labels and doc.
pub fn counters_table(def: &ComponentDef) -> String {
    if def.events.is_empty() && def.gauges.is_empty() {
        return "It counts nothing beyond what every component counts.\n".to_string();
    }
    let mut out = String::new();
    if !def.events.is_empty() {
        out.push_str("| counter | counted in | description |\n|---|---|---|\n");
        for e in def.events {
            out.push_str(&format!(
                "| `{}` | `{}` | {} |\n",
                e.name,
                cell(&series(e)),
                cell(&one_line(e.doc))
            ));
        }
    }
    if !def.gauges.is_empty() {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str("| gauge | labels | description |\n|---|---|---|\n");
        for g in def.gauges {
            out.push_str(&format!(
                "| `{}` | {} | {} |\n",
                g.metric,
                labels(g),
                cell(&one_line(g.doc))
            ));
        }
    }
    out
}

/// The Prometheus series an event adds to, with the labels it sets.
fn series(e: &EventSpec) -> String {
    match e.counts {
        Counts::Error { fault, stage } => format!(
            "{}{{error_code=\"{}\", error_type=\"{}\", stage=\"{}\"}}",
            e.metric(),
            e.name,
            fault.as_str(),
            stage.as_str()
        ),
        Counts::Discarded { intentional } => {
            format!("{}{{reason=\"{}\", intentional=\"{intentional}\"}}", e.metric(), e.name)
        }
        Counts::Counter { metric } => metric.to_string(),
    }
}

fn labels(g: &GaugeSpec) -> String {
    if g.labels.is_empty() {
        "—".to_string()
    } else {
        g.labels.iter().map(|l| format!("`{l}`")).collect::<Vec<_>>().join(", ")
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The lines that differ between `old` and `new`, `-` and `+`, with their line
/// numbers in `old` (for a test's failure message).
pub fn line_diff(old: &str, new: &str) -> String {
    use crate::line_diff::Line;
    let (mut out, mut last) = (String::new(), None);
    for line in crate::line_diff::lines(old, new) {
        let (at, mark, text) = match line {
            Line::Same(_) => continue,
            Line::Removed(n, t) => (n, '-', t),
            Line::Added(n, t) => (n, '+', t),
        };
        // A hunk header where a run of changes starts (`at - 1`: the 0-based line).
        if last != Some(at - 1) {
            out.push_str(&format!("@@ line {at}\n"));
        }
        out.push_str(&format!("{mark}{text}\n"));
        last = Some(if mark == '-' { at } else { at - 1 });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::component::{BuildContext, BuildError, Built, Kind};
    use crate::error::Fault;
    use crate::metrics::Stage;
    use std::collections::BTreeMap;

    /// Options of a made-up component.
    #[allow(dead_code)] // Only its schema is used.
    #[derive(serde::Deserialize, schemars::JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct FakeConfig {
        /// Where to go. Two lines
        /// of doc.
        address: String,
        /// Required too, listed before the optional ones.
        zone: String,
        /// How many | at most.
        #[serde(default = "ten")]
        count: u64,
        /// How to read.
        #[serde(default)]
        mode: FakeMode,
        /// Plain values.
        #[serde(default)]
        level: FakeLevel,
        /// Headers.
        #[serde(default)]
        headers: BTreeMap<String, String>,
        /// Names.
        names: Option<Vec<String>>,
        /// TLS.
        tls: Option<FakeTls>,
    }

    fn ten() -> u64 {
        10
    }

    #[derive(Default, serde::Deserialize, serde::Serialize, schemars::JsonSchema)]
    #[serde(rename_all = "snake_case")]
    enum FakeMode {
        /// Guess.
        #[default]
        Auto,
        /// As JSON.
        Json,
    }

    #[derive(Default, serde::Deserialize, serde::Serialize, schemars::JsonSchema)]
    #[serde(rename_all = "snake_case")]
    enum FakeLevel {
        Low,
        #[default]
        High,
    }

    #[allow(dead_code)] // Only its schema is used.
    #[derive(serde::Deserialize, schemars::JsonSchema)]
    struct FakeTls {
        /// The key.
        key_file: std::path::PathBuf,
        /// Cipher suites.
        #[serde(default)]
        ciphers: Vec<FakeLevel>,
        /// Its password.
        password: Option<crate::secret::Secret>,
        /// Check names.
        #[serde(default = "yes")]
        verify: bool,
    }

    fn yes() -> bool {
        true
    }

    fn no_build(_: &BuildContext, _: toml::Value) -> Result<Built, BuildError> {
        Err(BuildError::key("x", "not buildable"))
    }

    static FAILED: EventSpec = EventSpec {
        name: "write_failed",
        counts: Counts::Error {
            fault: Fault::External,
            stage: Stage::Sending,
        },
        doc: "A write failed;\n  it is retried.",
    };
    static REFUSED: EventSpec = EventSpec {
        name: "refused",
        counts: Counts::Discarded { intentional: false },
        doc: "Refused for good.",
    };
    static RETRIED: EventSpec = EventSpec {
        name: "retried",
        counts: Counts::Counter {
            metric: "pipe_fake_retries_total",
        },
        doc: "Items sent again.",
    };
    static LAG: GaugeSpec = GaugeSpec {
        metric: "pipe_fake_lag_messages",
        labels: &["topic", "partition"],
        doc: "Lag.",
    };

    const FAKE: ComponentDef = ComponentDef {
        kind: Kind::Sink,
        name: "fake",
        doc: "A fake.",
        build: no_build,
        options: || schemars::schema_for!(FakeConfig),
        example: "",
        events: &[&FAILED, &REFUSED, &RETRIED],
        gauges: &[&LAG],
        commands: &[],
        count: None,
        query: None,
    };

    const BARE: ComponentDef = ComponentDef {
        kind: Kind::Source,
        name: "bare",
        events: &[],
        gauges: &[],
        ..FAKE
    };

    #[test]
    fn options_table_has_types_defaults_docs_and_nested_tables() {
        let table = options_table(&FAKE);
        let rows: Vec<&str> = table.lines().collect();
        let expected = [
            "| option | type | default | description |",
            "|---|---|---|---|",
            "| `address` | `string` | required | Where to go. Two lines of doc. |",
            "| `zone` | `string` | required | Required too, listed before the optional ones. |",
            "| `count` | `integer` | `10` | How many \\| at most. |",
            "| `headers` | `{ name = string }` | `{}` | Headers. |",
            "| `level` | `\"low\"` or `\"high\"` | `\"high\"` | Plain values. |",
            "| `mode` | `\"auto\"` or `\"json\"` | `\"auto\"` | How to read. `\"auto\"`: Guess. `\"json\"`: As JSON. |",
            "| `names` | `[string]` | — | Names. |",
            "| `tls` | `table` | — | TLS. |",
            "| `tls.key_file` | `string` | required | The key. |",
            "| `tls.ciphers` | `[\"low\" \\| \"high\"]` | `[]` | Cipher suites. |",
            "| `tls.password` | `string (secret)` | — | Its password. |",
            "| `tls.verify` | `bool` | `true` | Check names. |",
        ];
        assert_eq!(rows, expected, "got:\n{table}");
    }

    #[test]
    fn counters_table_names_series_and_gauges() {
        let table = counters_table(&FAKE);
        assert!(
            table.contains(
                "| `write_failed` | `pipe_component_errors_total{error_code=\"write_failed\", error_type=\"external\", stage=\"sending\"}` | A write failed; it is retried. |"
            ),
            "{table}"
        );
        assert!(table.contains(
            "| `refused` | `pipe_component_discarded_events_total{reason=\"refused\", intentional=\"false\"}` | Refused for good. |"
        ));
        assert!(table.contains("| `retried` | `pipe_fake_retries_total` | Items sent again. |"));
        assert!(table.contains("| `pipe_fake_lag_messages` | `topic`, `partition` | Lag. |"));
        assert_eq!(
            counters_table(&BARE),
            "It counts nothing beyond what every component counts.\n"
        );
    }

    #[test]
    fn regenerate_rewrites_only_marked_regions() {
        let doc = "# T\n\n<!-- generated:options:sinks.fake -->\nstale\n<!-- /generated -->\n\nprose\n\
                   <!-- generated:counters:sinks.fake -->\n<!-- /generated -->\nend\n";
        let fresh = regenerate(doc, &[FAKE]).unwrap();
        assert!(fresh.starts_with("# T\n\n<!-- generated:options:sinks.fake -->\n\n| option |"));
        assert!(!fresh.contains("stale"));
        assert!(fresh.contains("<!-- /generated -->\n\nprose\n<!-- generated:counters:sinks.fake -->\n\n| counter |"));
        assert!(fresh.ends_with("<!-- /generated -->\nend\n"));
        assert_eq!(regenerate(&fresh, &[FAKE]).unwrap(), fresh, "regenerating is stable");
    }

    #[test]
    fn regenerate_refuses_bad_or_missing_markers() {
        let both = "<!-- generated:options:sinks.fake -->\n<!-- /generated -->\n\
                    <!-- generated:counters:sinks.fake -->\n<!-- /generated -->\n";
        assert_eq!(
            regenerate(both, &[FAKE, BARE]),
            Err(DocsError::Missing {
                marker: "<!-- generated:options:sources.bare -->".into()
            })
        );
        assert!(matches!(
            regenerate("<!-- generated:options:sinks.nope -->\n<!-- /generated -->\n", &[FAKE]),
            Err(DocsError::Unknown { line: 1, .. })
        ));
        assert!(matches!(
            regenerate("x\n<!-- generated:options:sinks.fake -->\nno end\n", &[FAKE]),
            Err(DocsError::Unclosed { line: 2, .. })
        ));
        let twice = format!("{both}{both}");
        assert!(matches!(
            regenerate(&twice, &[FAKE]),
            Err(DocsError::Duplicate { line: 5, .. })
        ));
    }

    #[test]
    fn line_diff_shows_changed_lines() {
        assert_eq!(line_diff("a\nb\nc\n", "a\nb\nc\n"), "");
        assert_eq!(line_diff("a\nb\nc\n", "a\nB\nc\n"), "@@ line 2\n-b\n+B\n");
    }

    /// docs/configuration.md holds the generated tables of every registry entry, as
    /// the code renders them now. `PIPE_REGENERATE_GOLDEN=1` rewrites the file.
    #[test]
    fn registry_docs_match_configuration_md() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md");
        let current = std::fs::read_to_string(&path).unwrap();
        let fresh =
            regenerate(&current, crate::components::REGISTRY).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if std::env::var("PIPE_REGENERATE_GOLDEN").is_ok() {
            std::fs::write(&path, &fresh).unwrap();
            return;
        }
        assert!(
            fresh == current,
            "{} is out of date with the options structs and internal events; rewrite it with\n  \
             PIPE_REGENERATE_GOLDEN=1 cargo test --release --locked --lib registry_docs\n\
             and review the change. Differences (- in the file, + generated):\n{}",
            path.display(),
            line_diff(&current, &fresh)
        );
    }
}
