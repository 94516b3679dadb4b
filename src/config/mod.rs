//! Topology configuration: TOML files → a validated, built [`Topology`].
//!
//! [`load`] reads one or more files (they merge), replaces `${VAR}`s, checks the
//! top-level keys, builds every component from the registry (which checks its
//! options, compiles its VRL, parses its templates), resolves `inputs` and rejects
//! cycles and conflicting resources. Every problem found is reported, each naming its
//! file, line, component and key; the CLI exits with [`EXIT_CONFIG`] (78) on any.

mod graph;
pub mod interpolate;
pub mod locate;

use crate::component::{BuildContext, Built, Kind, did_you_mean, unknown_field};
use crate::components;
use crate::metrics::ComponentMetrics;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The exit code for configuration errors (EX_CONFIG from sysexits.h).
pub const EXIT_CONFIG: u8 = 78;

/// Top-level keys a topology may set.
const GLOBAL_KEYS: &[&str] = &[
    "data_dir",
    "shutdown_timeout_secs",
    "reload_timeout_secs",
    "api",
    "sources",
    "transforms",
    "sinks",
    "tests",
];

/// One configuration problem.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// The file it is in.
    pub file: Option<PathBuf>,
    /// The 1-based line.
    pub line: Option<usize>,
    /// The component (`sources.logs`).
    pub component: Option<String>,
    /// The key to blame.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, "{}:{line}: ", file.display())?,
            (Some(file), None) => write!(f, "{}: ", file.display())?,
            _ => {}
        }
        if let Some(c) = &self.component {
            write!(f, "component `{c}`")?;
            if let Some(k) = &self.key {
                write!(f, ", key `{k}`")?;
            }
            f.write_str(": ")?;
        } else if let Some(k) = &self.key {
            write!(f, "key `{k}`: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in a topology.
#[derive(Debug, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Settings from outside the files (CLI flags and environment).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--data-dir` or `PIPE_DATA_DIR`, which win over the files' `data_dir`.
    pub data_dir: Option<PathBuf>,
    /// Leave the sinks out: nothing of them is built (`pipe test`).
    pub without_sinks: bool,
}

/// One component, built and with its inputs resolved to output names.
pub struct Node {
    /// The id.
    pub id: String,
    /// Source, transform or sink.
    pub kind: Kind,
    /// Its `type`.
    pub type_name: String,
    /// Resolved inputs: `id` (default output) or `id.name` (named output).
    pub inputs: Vec<String>,
    /// Its options as written (environment variables substituted), for tools that
    /// read a component's settings (`pipe query --sink`).
    pub options: toml::Table,
    /// Sinks: the `buffer` table (default memory).
    pub buffer: crate::buffer::BufferConfig,
    /// The built component.
    pub built: Built,
    /// Its counters, registered while it was built.
    pub metrics: Arc<ComponentMetrics>,
    /// Its configuration as a reload compares it: type, inputs, options, buffer and
    /// the content of the files it read.
    pub fingerprint: u64,
}

/// A validated topology, ready to run.
pub struct Topology {
    /// Where components keep state (checkpoints, buffers).
    pub data_dir: PathBuf,
    /// How long a graceful shutdown may take before pipe gives up waiting.
    pub shutdown_timeout: Duration,
    /// How long a reload waits for a replaced component to drain before stopping it.
    pub reload_timeout: Duration,
    /// The files it was loaded from and the files its components read (what
    /// `--watch` watches).
    pub files: Vec<PathBuf>,
    /// Every component, sources first.
    pub nodes: Vec<Node>,
    /// The `[api]` table.
    pub api: crate::api::ApiConfig,
    /// The `[[tests]]` tables (run by `pipe test`), with their file and line.
    pub tests: Vec<(PathBuf, usize, crate::testing::TestSpec)>,
}

/// The default data directory when neither the files nor the CLI name one.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/pipe";
const DEFAULT_SHUTDOWN_SECS: u64 = 30;
const DEFAULT_RELOAD_SECS: u64 = 30;

/// A component as written, before it is built.
struct RawComponent {
    id: String,
    kind: Kind,
    type_name: String,
    inputs: Vec<String>,
    buffer: crate::buffer::BufferConfig,
    options: toml::Table,
    file: PathBuf,
    text: std::sync::Arc<String>,
}

struct Collector {
    errors: Vec<ConfigError>,
}

impl Collector {
    fn push(
        &mut self,
        file: &Path,
        text: &str,
        component: Option<&str>,
        key: Option<&str>,
        message: impl Into<String>,
    ) {
        let line = match component {
            Some(c) => locate::find_line(text, c, key),
            None => key.and_then(|k| text.lines().position(|l| l.trim_start().starts_with(k)).map(|n| n + 1)),
        };
        self.errors.push(ConfigError {
            file: Some(file.to_path_buf()),
            line,
            component: component.map(str::to_string),
            key: key.map(str::to_string),
            message: message.into(),
        });
    }
}

/// Loads, merges, builds and validates the topology in `files`.
pub fn load(files: &[PathBuf], overrides: &Overrides) -> Result<Topology, ConfigErrors> {
    load_reusing(files, overrides, &[])
}

/// [`load`] for a reload: a component keeps the counters in `previous` of the one
/// with its id and type.
pub fn load_reusing(
    files: &[PathBuf],
    overrides: &Overrides,
    previous: &[Arc<ComponentMetrics>],
) -> Result<Topology, ConfigErrors> {
    let texts = files.iter().map(|f| (f.clone(), std::fs::read_to_string(f))).collect();
    load_texts(texts, overrides, previous)
}

/// [`load`] for one topology already in memory; `file` names it in errors.
pub fn load_str(file: &Path, text: &str, overrides: &Overrides) -> Result<Topology, ConfigErrors> {
    load_texts(vec![(file.to_path_buf(), Ok(text.to_string()))], overrides, &[])
}

/// Loads the topology from each file's name and text (or the error reading it).
fn load_texts(
    files: Vec<(PathBuf, std::io::Result<String>)>,
    overrides: &Overrides,
    previous: &[Arc<ComponentMetrics>],
) -> Result<Topology, ConfigErrors> {
    let mut c = Collector { errors: Vec::new() };
    let mut raw: Vec<RawComponent> = Vec::new();
    let mut data_dir: Option<PathBuf> = None;
    let mut shutdown_secs: Option<u64> = None;
    let mut reload_secs: Option<u64> = None;
    let mut api = crate::api::ApiConfig::default();
    let mut tests = Vec::new();
    if files.is_empty() {
        c.errors.push(ConfigError {
            file: None,
            line: None,
            component: None,
            key: None,
            message: "no topology file given (use --topology FILE)".into(),
        });
    }
    for (file, text) in &files {
        let text = match text {
            Ok(t) => t,
            Err(e) => {
                c.errors.push(ConfigError {
                    file: Some(file.clone()),
                    line: None,
                    component: None,
                    key: None,
                    message: format!("cannot read the topology file: {e}"),
                });
                continue;
            }
        };
        let text = match interpolate::interpolate(text, |name| std::env::var(name).ok()) {
            Ok(t) => std::sync::Arc::new(t),
            Err(missing) => {
                for m in missing {
                    c.errors.push(ConfigError {
                        file: Some(file.clone()),
                        line: Some(m.line),
                        component: None,
                        key: None,
                        message: match m.problem {
                            None => format!(
                                "environment variable `{}` is not set and has no default (write ${{{}:-default}})",
                                m.name, m.name
                            ),
                            Some(problem) => format!("environment variable `{}` cannot be put here: {problem}", m.name),
                        },
                    });
                }
                continue;
            }
        };
        let table: toml::Table = match toml::from_str(&text) {
            Ok(t) => t,
            Err(e) => {
                let line = e.span().map(|s| locate::line_of_offset(&text, s.start));
                c.errors.push(ConfigError {
                    file: Some(file.clone()),
                    line,
                    component: None,
                    key: None,
                    message: format!("invalid TOML: {}", e.message()),
                });
                continue;
            }
        };
        for (key, value) in table {
            match key.as_str() {
                "data_dir" => match value.as_str() {
                    Some(s) => data_dir = Some(PathBuf::from(s)),
                    None => c.push(
                        file,
                        &text,
                        None,
                        Some("data_dir"),
                        "must be a string (a directory path)",
                    ),
                },
                "shutdown_timeout_secs" => match value.as_integer() {
                    Some(n) if n > 0 => shutdown_secs = Some(n as u64),
                    _ => c.push(
                        file,
                        &text,
                        None,
                        Some("shutdown_timeout_secs"),
                        "must be a positive integer (seconds)",
                    ),
                },
                "reload_timeout_secs" => match value.as_integer() {
                    Some(n) if n > 0 => reload_secs = Some(n as u64),
                    _ => c.push(
                        file,
                        &text,
                        None,
                        Some("reload_timeout_secs"),
                        "must be a positive integer (seconds)",
                    ),
                },
                "api" => match crate::component::parse_options::<crate::api::ApiConfig>(value) {
                    Ok(a) => api = a,
                    Err(e) => c.push(file, &text, Some("api"), e.key.as_deref(), e.message),
                },
                "tests" => match crate::testing::spec::parse(file, &text, value) {
                    Ok(t) => tests.extend(t),
                    Err(e) => c.errors.push(e),
                },
                "sinks" if overrides.without_sinks => {}
                "sources" | "transforms" | "sinks" => {
                    let kind = match key.as_str() {
                        "sources" => Kind::Source,
                        "transforms" => Kind::Transform,
                        _ => Kind::Sink,
                    };
                    let Some(components) = value.as_table() else {
                        c.push(
                            file,
                            &text,
                            None,
                            Some(&key),
                            "must be a table of components, e.g. [sources.ID]",
                        );
                        continue;
                    };
                    for (id, spec) in components {
                        match parse_component(file, &text, kind, id, spec) {
                            Ok(r) => raw.push(r),
                            Err((key, message)) => {
                                c.push(file, &text, Some(&format!("{}.{id}", kind.table())), key, message)
                            }
                        }
                    }
                }
                other => {
                    let hint = did_you_mean(other, GLOBAL_KEYS.iter().copied())
                        .map(|s| format!("; did you mean `{s}`?"))
                        .unwrap_or_default();
                    c.push(
                        file,
                        &text,
                        None,
                        Some(other),
                        format!("unknown top-level key{hint} (known: {})", GLOBAL_KEYS.join(", ")),
                    );
                }
            }
        }
    }
    // Duplicate ids, across kinds and files.
    for (i, a) in raw.iter().enumerate() {
        if let Some(b) = raw[..i].iter().find(|b| b.id == a.id) {
            let section = format!("{}.{}", a.kind.table(), a.id);
            c.push(
                &a.file,
                &a.text,
                Some(&section),
                None,
                format!(
                    "duplicate component id `{}` (also defined as {}.{} in {})",
                    a.id,
                    b.kind.table(),
                    b.id,
                    b.file.display()
                ),
            );
        }
    }
    let data_dir = overrides
        .data_dir
        .clone()
        .or(data_dir)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    let topology_name = files
        .iter()
        .map(|(f, _)| f.file_stem().unwrap_or_default().to_string_lossy())
        .collect::<Vec<_>>()
        .join("+");
    let mut nodes = Vec::new();
    let mut origins = Vec::new();
    for r in raw {
        let section = format!("{}.{}", r.kind.table(), r.id);
        let def = components::find(r.kind, &r.type_name).expect("checked in parse_component");
        let metrics = previous
            .iter()
            .find(|m| m.id == r.id && m.kind == r.kind.name() && m.type_name == r.type_name)
            .cloned()
            .unwrap_or_else(|| ComponentMetrics::new(&r.id, r.kind.name(), &r.type_name, def.events, def.gauges));
        let cx = BuildContext {
            id: r.id.clone(),
            topology: topology_name.clone(),
            data_dir: data_dir.clone(),
            metrics: metrics.clone(),
        };
        match (def.build)(&cx, toml::Value::Table(r.options.clone())) {
            Ok(built) => {
                origins.push((r.file.clone(), r.text.clone(), section));
                let fingerprint = fingerprint(&r, &built.files);
                nodes.push(Node {
                    fingerprint,
                    id: r.id,
                    kind: r.kind,
                    type_name: r.type_name,
                    inputs: r.inputs,
                    options: r.options,
                    buffer: r.buffer,
                    built,
                    metrics,
                });
            }
            Err(e) => {
                let message = match unknown_field(&e.message) {
                    Some((k, expected)) => {
                        let hint = did_you_mean(&k, expected.iter().map(String::as_str))
                            .map(|s| format!("; did you mean `{s}`?"))
                            .unwrap_or_default();
                        format!(
                            "unknown key for a `{}` {}{hint} (known: {})",
                            r.type_name,
                            r.kind.name(),
                            expected.join(", ")
                        )
                    }
                    None => e.message.clone(),
                };
                c.push(&r.file, &r.text, Some(&section), e.key.as_deref(), message);
            }
        }
    }
    if c.errors.is_empty() {
        for e in graph::check(&mut nodes) {
            let (file, text, section) = &origins[e.node];
            c.push(file, text, Some(section), e.key, e.message);
        }
        c.errors.extend(crate::testing::spec::check(&tests, &nodes));
    }
    if !c.errors.is_empty() {
        return Err(ConfigErrors(c.errors));
    }
    nodes.sort_by_key(|n| match n.kind {
        Kind::Source => 0,
        Kind::Transform => 1,
        Kind::Sink => 2,
    });
    let mut watched: Vec<PathBuf> = files.into_iter().map(|(f, _)| f).collect();
    watched.extend(nodes.iter().flat_map(|n| n.built.files.iter().cloned()));
    Ok(Topology {
        data_dir,
        shutdown_timeout: Duration::from_secs(shutdown_secs.unwrap_or(DEFAULT_SHUTDOWN_SECS)),
        reload_timeout: Duration::from_secs(reload_secs.unwrap_or(DEFAULT_RELOAD_SECS)),
        files: watched,
        nodes,
        api,
        tests,
    })
}

/// What a reload compares to decide whether a component changed.
fn fingerprint(r: &RawComponent, files: &[PathBuf]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    (r.kind.name(), &r.type_name, &r.inputs).hash(&mut h);
    r.options.to_string().hash(&mut h);
    format!("{:?}", r.buffer).hash(&mut h);
    for f in files {
        std::fs::read(f).ok().hash(&mut h);
    }
    h.finish()
}

fn parse_component(
    file: &Path,
    text: &std::sync::Arc<String>,
    kind: Kind,
    id: &str,
    spec: &toml::Value,
) -> Result<RawComponent, (Option<&'static str>, String)> {
    if id.is_empty() || id.contains(['.', '*', '?', '[', ']', ' ']) {
        return Err((
            None,
            "component ids may not be empty or contain `.`, spaces or glob characters".into(),
        ));
    }
    let mut options = spec
        .as_table()
        .ok_or((None, "must be a table with at least `type`".to_string()))?
        .clone();
    let known = components::names(kind);
    let type_name = match options.remove("type") {
        Some(toml::Value::String(s)) => s,
        Some(_) => return Err((Some("type"), "must be a string".into())),
        None => return Err((Some("type"), format!("missing `type` (one of: {})", known.join(", ")))),
    };
    if components::find(kind, &type_name).is_none() {
        let hint = did_you_mean(&type_name, known.iter().copied())
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_default();
        let message = format!(
            "unknown {} type `{type_name}`{hint} (known: {})",
            kind.name(),
            known.join(", ")
        );
        return Err((Some("type"), message));
    }
    let inputs = match (kind, options.remove("inputs")) {
        (Kind::Source, Some(_)) => return Err((Some("inputs"), "sources take no `inputs`".into())),
        (Kind::Source, None) => Vec::new(),
        (_, None) => {
            let message = format!(
                "a {} needs `inputs` (ids of sources or transforms, e.g. inputs = [\"logs\"])",
                kind.name()
            );
            return Err((Some("inputs"), message));
        }
        (_, Some(value)) => {
            let names: Option<Vec<String>> = value
                .as_array()
                .and_then(|items| items.iter().map(|v| v.as_str().map(str::to_string)).collect());
            match names {
                Some(n) if !n.is_empty() => n,
                Some(_) => {
                    return Err((
                        Some("inputs"),
                        "`inputs` is empty; name at least one source or transform".into(),
                    ));
                }
                None => return Err((Some("inputs"), "`inputs` must be a list of strings".into())),
            }
        }
    };
    let buffer = match (kind, options.remove("buffer")) {
        (_, None) => crate::buffer::BufferConfig::default(),
        (Kind::Sink, Some(value)) => {
            let config: crate::buffer::BufferConfig = crate::component::parse_options(value).map_err(|e| {
                let message = format!("buffer: {}", e.message);
                (Some("buffer"), message)
            })?;
            config.check().map_err(|(key, message)| (Some(key), message))?;
            config
        }
        (_, Some(_)) => return Err((Some("buffer"), "only sinks take a `buffer`".into())),
    };
    Ok(RawComponent {
        id: id.to_string(),
        kind,
        type_name,
        inputs,
        buffer,
        options,
        file: file.to_path_buf(),
        text: text.clone(),
    })
}
