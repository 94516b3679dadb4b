//! The `file` source: tails files matched by globs, one event per line (or per
//! multiline group), and never loses a line across renames, restarts or `kill -9`.
//!
//! How it keeps that promise: files are known by a [`Fingerprint`] of their first
//! bytes, so a renamed file keeps its identity and is read to its end through the
//! descriptor already open; a file whose content no longer matches its fingerprint
//! (copytruncate) is reported and read again from the start under a new identity,
//! while the old identity can still be found in the copy. Every batch carries an
//! acknowledgement; the [`Checkpointer`] stores a file's offset only when every
//! batch before it is delivered by every sink. After a crash, reading resumes at the
//! stored offsets, so lines are repeated (at most what was in flight), never lost.

use super::checkpoint::{self, CheckpointEvents, Checkpointer};
use super::lines::Oversize;
use super::tailer::Tailer;
use crate::component::{BoxFuture, BuildContext, BuildError, Built, Source, SourceContext, parse_options};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc;

/// Options of the `file` source.
#[derive(Debug, Deserialize, Clone, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileSourceConfig {
    /// Glob patterns of files to read, e.g. `["/var/log/app/*.log*"]`. `**` descends
    /// into directories.
    pub include: Vec<String>,
    /// `text`: the line in `message`. `json`: the line's JSON object fields are the
    /// event's fields (`file`, `host`, `timestamp`, `offset` added when absent); a line
    /// that is not JSON goes to `ID.dropped`.
    #[serde(default)]
    pub decoding: crate::decoding::LineDecoding,
    /// Glob patterns of files to skip, even when included.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Where to start in a file with no checkpoint found when pipe starts. Files that
    /// appear later are always read from the beginning.
    #[serde(default)]
    pub read_from: ReadFrom,
    /// Longest line kept, in bytes. Longer lines are never buffered whole and never
    /// stall the file.
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
    /// What to do with a longer line; counted either way, with a warning.
    #[serde(default)]
    pub oversize_lines: Oversize,
    /// How many leading bytes identify a file (see below).
    #[serde(default = "default_fingerprint_bytes")]
    pub fingerprint_bytes: usize,
    /// How often the globs are expanded again without a filesystem notification, in
    /// ms.
    #[serde(default = "default_glob_interval_ms")]
    pub glob_interval_ms: u64,
    /// How often files are checked for new data without a filesystem notification,
    /// in ms.
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// How often acknowledged offsets are written to disk (only when they changed), in
    /// ms. Lower means fewer lines read twice after a crash.
    #[serde(default = "default_checkpoint_interval_ms")]
    pub checkpoint_interval_ms: u64,
    /// A file that left the globs (renamed away, deleted) is read to its end and
    /// closed once idle this long, in ms.
    #[serde(default = "default_rotate_wait_ms")]
    pub rotate_wait_ms: u64,
    /// Most lines in one batch.
    #[serde(default = "default_max_batch_events")]
    pub max_batch_events: usize,
    /// Joins lines into one event (stack traces).
    pub multiline: Option<MultilineConfig>,
    /// Read a matching path that is a symlink from the file it points to (Kubernetes'
    /// `/var/log/containers/*.log` are symlinks). With `false`, symlinks are skipped
    /// and files are opened with `O_NOFOLLOW`, so a link planted among the logs cannot
    /// make pipe read another file.
    #[serde(default = "yes")]
    pub follow_symlinks: bool,
}

fn yes() -> bool {
    true
}

/// Multiline grouping: set exactly one of `start_pattern` or `continuation_pattern`.
#[derive(Debug, Deserialize, Clone, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MultilineConfig {
    /// Regex: a line matching it starts a new event; other lines join the previous
    /// event (joined with `\n`).
    pub start_pattern: Option<String>,
    /// Regex: a line matching it joins the previous event; other lines start one. Set
    /// exactly one of the two.
    pub continuation_pattern: Option<String>,
    /// An event waiting for more lines is emitted after this long, in ms.
    #[serde(default = "default_multiline_timeout_ms")]
    pub timeout_ms: u64,
}

/// Where to start in files seen for the first time at startup.
#[derive(Debug, Deserialize, serde::Serialize, schemars::JsonSchema, Clone, Copy, Default, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum ReadFrom {
    /// Read the whole file.
    #[default]
    Beginning,
    /// Read only what is written from now on.
    End,
}

fn default_max_line_bytes() -> usize {
    100 * 1024
}
fn default_fingerprint_bytes() -> usize {
    256
}
fn default_glob_interval_ms() -> u64 {
    1000
}
fn default_poll_interval_ms() -> u64 {
    250
}
fn default_checkpoint_interval_ms() -> u64 {
    25
}
fn default_rotate_wait_ms() -> u64 {
    5000
}
fn default_max_batch_events() -> usize {
    1000
}
fn default_multiline_timeout_ms() -> u64 {
    1000
}

/// Builds the `file` source.
pub fn build(cx: &BuildContext, options: toml::Value) -> Result<Built, BuildError> {
    let config: FileSourceConfig = parse_options(options)?;
    if config.include.is_empty() {
        return Err(BuildError::key("include", "needs at least one glob pattern"));
    }
    for (key, list) in [("include", &config.include), ("exclude", &config.exclude)] {
        for p in list {
            glob::Pattern::new(p).map_err(|e| BuildError::key(key, format!("`{p}` is not a valid glob: {e}")))?;
        }
    }
    if config.max_line_bytes == 0 || config.max_batch_events == 0 || config.fingerprint_bytes == 0 {
        return Err(BuildError::key(
            "max_line_bytes",
            "max_line_bytes, max_batch_events and fingerprint_bytes must be positive",
        ));
    }
    let multiline = match &config.multiline {
        None => None,
        Some(m) => {
            let compile = |key: &str, p: &String| {
                regex::bytes::Regex::new(p).map_err(|e| BuildError::key(key, format!("invalid regex: {e}")))
            };
            let rule = match (&m.start_pattern, &m.continuation_pattern) {
                (Some(p), None) => Rule::Start(compile("start_pattern", p)?),
                (None, Some(p)) => Rule::Continuation(compile("continuation_pattern", p)?),
                _ => {
                    return Err(BuildError::key(
                        "multiline",
                        "set exactly one of `start_pattern` or `continuation_pattern`",
                    ));
                }
            };
            Some((rule, Duration::from_millis(m.timeout_ms)))
        }
    };
    let decoding = config.decoding;
    let built = Built::source(FileSource {
        config,
        multiline,
        state_dir: cx.state_dir(),
    });
    Ok(match decoding {
        crate::decoding::LineDecoding::Text => built,
        crate::decoding::LineDecoding::Json => {
            built
                .with_outputs(vec!["dropped".into()])
                .with_decoder(std::sync::Arc::new(|line| {
                    crate::decoding::json_fields(line).map(|f| vec![f])
                }))
        }
    })
}

#[derive(Debug, Clone)]
pub(super) enum Rule {
    Start(regex::bytes::Regex),
    Continuation(regex::bytes::Regex),
}

impl Rule {
    pub(super) fn starts_event(&self, line: &[u8]) -> bool {
        match self {
            Rule::Start(r) => r.is_match(line),
            Rule::Continuation(r) => !r.is_match(line),
        }
    }
}

pub(super) struct FileSource {
    pub(super) config: FileSourceConfig,
    pub(super) multiline: Option<(Rule, Duration)>,
    state_dir: PathBuf,
}

impl Source for FileSource {
    fn run(self: Box<Self>, cx: SourceContext) -> BoxFuture {
        Box::pin(async move {
            let ck_path = self.state_dir.join("checkpoints.json");
            let loaded = checkpoint::load(&ck_path)?;
            let (ck_tx, ck_rx) = mpsc::unbounded_channel();
            let checkpointer = Checkpointer {
                path: ck_path,
                interval: Duration::from_millis(self.config.checkpoint_interval_ms),
                events: CheckpointEvents::new(&cx.metrics),
                metrics: cx.metrics.clone(),
            };
            let ck_task = tokio::spawn(checkpointer.run(ck_rx));
            let handle = tokio::runtime::Handle::current();
            let SourceContext {
                id,
                out,
                shutdown,
                metrics,
            } = cx;
            let tailer = tokio::task::spawn_blocking(move || {
                let mut t = Tailer::new(*self, id, out, shutdown, metrics, ck_tx, handle);
                t.restore(loaded);
                t.run();
            });
            tailer.await.map_err(|e| format!("file reader stopped: {e}"))?;
            ck_task.await.map_err(|e| format!("checkpointer stopped: {e}"))?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        let r = Rule::Start(regex::bytes::Regex::new(r"^\d").unwrap());
        assert!(r.starts_event(b"2026 x"));
        assert!(!r.starts_event(b"  at foo"));
        let r = Rule::Continuation(regex::bytes::Regex::new(r"^\s").unwrap());
        assert!(!r.starts_event(b"  at foo"));
    }
}
