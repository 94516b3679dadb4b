//! The `[[tests]]` tables of a topology, as written, and their check against the
//! topology they test: every `insert_at` a source or transform, every `extract_from`
//! an output of one, every condition valid VRL.

use crate::component::Kind;
use crate::config::{ConfigError, Node};
use crate::vrl_program::VrlProgram;
use serde::Deserialize;
use std::path::Path;

/// One `[[tests]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestSpec {
    /// Shown in the report.
    pub name: String,
    /// What goes in.
    #[serde(default)]
    pub inputs: Vec<InputSpec>,
    /// What must come out.
    #[serde(default)]
    pub outputs: Vec<OutputSpec>,
    /// Outputs that must stay empty (`parse.dropped`).
    #[serde(default)]
    pub no_outputs_from: Vec<String>,
}

/// `[[tests.inputs]]`: events put in at one component.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// A source (its decoding runs on `lines`) or a transform (it receives them).
    pub insert_at: String,
    /// Raw records: decoded by the source, or `{message = line}` at a transform.
    #[serde(default)]
    pub lines: Vec<String>,
    /// Events given as their fields.
    #[serde(default)]
    pub events: Vec<toml::Table>,
}

/// Whether a condition must hold for every extracted event or for one.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Match {
    #[default]
    All,
    Any,
}

/// `[[tests.outputs]]`: what one output must carry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// An output: `id` or `id.name`.
    pub extract_from: String,
    /// VRL expressions that must be `true` for every extracted event (`match = "any"`:
    /// for at least one).
    #[serde(default)]
    pub conditions: Vec<String>,
    #[serde(default, rename = "match")]
    pub match_: Match,
    /// Exactly this many events.
    pub count: Option<usize>,
    /// Exactly these events, in order (as JSON: times are RFC 3339 strings).
    pub events: Option<Vec<toml::Table>>,
}

/// The 1-based line of the test named `name` in `text`, for errors.
pub fn line_of(text: &str, name: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            l.starts_with("name") && (l.contains(&format!("\"{name}\"")) || l.contains(&format!("'{name}'")))
        })
        .map(|i| i + 1)
}

/// The problems of `tests` (read from `file`) against the topology's `nodes`.
pub fn check(tests: &[(std::path::PathBuf, usize, TestSpec)], nodes: &[Node]) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let outputs = |output: &str| -> bool {
        let (id, name) = match output.split_once('.') {
            Some((id, name)) => (id, Some(name)),
            None => (output, None),
        };
        // A source's `dropped` is where `pipe test` puts the lines it refuses.
        nodes.iter().any(|n| {
            n.id == id
                && n.kind != Kind::Sink
                && name.is_none_or(|name| {
                    n.built.outputs.iter().any(|o| o == name) || (n.kind == Kind::Source && name == "dropped")
                })
        })
    };
    for (file, line, t) in tests {
        let mut push = |key: String, message: String| {
            errors.push(ConfigError {
                file: Some(file.clone()),
                line: Some(*line),
                component: None,
                key: Some(key),
                message: format!("test \"{}\": {message}", t.name),
            })
        };
        if t.inputs.is_empty() {
            push("tests.inputs".into(), "has no inputs".into());
        }
        for (i, input) in t.inputs.iter().enumerate() {
            let key = format!("tests.inputs[{i}].insert_at");
            match nodes.iter().find(|n| n.id == input.insert_at) {
                None => push(key, format!("no component `{}`", input.insert_at)),
                Some(n) if n.kind == Kind::Sink => {
                    push(key, format!("`{}` is a sink; sinks are not run by tests", n.id))
                }
                Some(_) => {}
            }
            if input.lines.is_empty() && input.events.is_empty() {
                push(
                    format!("tests.inputs[{i}]"),
                    "gives neither `lines` nor `events`".into(),
                );
            }
        }
        if t.outputs.is_empty() && t.no_outputs_from.is_empty() {
            push(
                "tests.outputs".into(),
                "expects nothing (no outputs, no no_outputs_from)".into(),
            );
        }
        for (i, o) in t.outputs.iter().enumerate() {
            if !outputs(&o.extract_from) {
                push(
                    format!("tests.outputs[{i}].extract_from"),
                    format!("no source or transform output `{}`", o.extract_from),
                );
            }
            for (j, c) in o.conditions.iter().enumerate() {
                if let Err(e) = VrlProgram::compile(c) {
                    push(
                        format!("tests.outputs[{i}].conditions[{j}]"),
                        format!("invalid VRL:\n{e}"),
                    );
                }
            }
            if o.conditions.is_empty() && o.count.is_none() && o.events.is_none() {
                push(
                    format!("tests.outputs[{i}]"),
                    "checks nothing: give `conditions`, `count` or `events`".into(),
                );
            }
        }
        for (i, o) in t.no_outputs_from.iter().enumerate() {
            if !outputs(o) {
                push(
                    format!("tests.no_outputs_from[{i}]"),
                    format!("no source or transform output `{o}`"),
                );
            }
        }
    }
    errors
}

/// Reads the `[[tests]]` of one file's table (`tests` removed by the caller).
pub fn parse(
    file: &Path,
    text: &str,
    value: toml::Value,
) -> Result<Vec<(std::path::PathBuf, usize, TestSpec)>, ConfigError> {
    let specs: Vec<TestSpec> = crate::component::parse_options(value).map_err(|e| ConfigError {
        file: Some(file.to_path_buf()),
        line: None,
        component: None,
        key: Some(e.key.map_or("tests".into(), |k| format!("tests.{k}"))),
        message: if e.message.contains("`no_outputs_from`") {
            format!(
                "{}: write `no_outputs_from` right after the test's `name`; keys after a [[tests.outputs]] header belong to that output",
                e.message
            )
        } else {
            format!("{} (tests are [[tests]] tables: name, [[tests.inputs]], [[tests.outputs]])", e.message)
        },
    })?;
    Ok(specs
        .into_iter()
        .map(|t| (file.to_path_buf(), line_of(text, &t.name).unwrap_or(1), t))
        .collect())
}
