//! The `file` sink: writes events to files named by a template
//! (`/logs/{{ service }}-%Y-%m-%d:%H.log`), as JSON lines or plain text, optionally
//! gzip-compressed.
//!
//! How it keeps the at-least-once promise: it takes every batch that is waiting,
//! writes each file's share with one `write` call, then flushes and `fsync`s every
//! file it touched, and only then acknowledges those events. After a crash the file
//! may end with events that were written but not acknowledged (they are read and
//! written again: duplicates, never gaps). A torn last line is ended with a newline on
//! reopen; with gzip, every flush writes a complete gzip member and a torn member is
//! cut off on reopen, so the file always decompresses.

use crate::ack::{BatchStatus, Finalizers};
use crate::component::{BoxFuture, BuildContext, BuildError, Built, Resource, Sink, SinkContext, parse_options};
use crate::compression::{Compression, gzip};
use crate::encoding::{Encoding, encode_line};
use crate::metrics::ComponentMetrics;
use crate::template::Template;
use serde::Deserialize;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Options of the `file` sink.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct FileSinkConfig {
    /// Path template: strftime on the event's `timestamp`, `{{ field }}` values. Required.
    pub path: String,
    /// `json` (one object per line, default) or `text` (the `message` field).
    #[serde(default)]
    pub encoding: Encoding,
    /// `none` (default) or `gzip`.
    #[serde(default)]
    pub compression: Compression,
    /// Files not written for this many seconds are closed (default 30).
    #[serde(default = "default_idle_timeout_secs")]
    pub idle_timeout_secs: u64,
    /// Field holding the event time for the path template (default `timestamp`).
    #[serde(default = "default_time_field")]
    pub time_field: String,
}

fn default_idle_timeout_secs() -> u64 {
    30
}
fn default_time_field() -> String {
    "timestamp".into()
}

/// Builds the `file` sink.
pub fn build(_cx: &BuildContext, options: toml::Value) -> Result<Built, BuildError> {
    let config: FileSinkConfig = parse_options(options)?;
    let template =
        Template::parse(&config.path, &config.time_field).map_err(|e| BuildError::key("path", e.to_string()))?;
    let claim = Resource::File(config.path.clone());
    Ok(Built::sink(FileSink { config, template }).claim(claim))
}

struct FileSink {
    config: FileSinkConfig,
    template: Template,
}

struct OpenFile {
    file: File,
    last_write: Instant,
}

impl Sink for FileSink {
    fn run(self: Box<Self>, mut cx: SinkContext) -> BoxFuture {
        Box::pin(async move {
            let idle = Duration::from_secs(self.config.idle_timeout_secs);
            let mut files: HashMap<PathBuf, OpenFile> = HashMap::new();
            let mut staged: HashMap<PathBuf, Vec<u8>> = HashMap::new();
            let mut finalizers = Finalizers::default();
            loop {
                let first = match tokio::time::timeout(Duration::from_secs(1), cx.input.recv()).await {
                    Ok(Some(b)) => b,
                    Ok(None) => break,
                    Err(_) => {
                        files.retain(|_, f| f.last_write.elapsed() < idle);
                        continue;
                    }
                };
                // Group commit: everything already waiting goes into one flush.
                let mut batch = first;
                let mut events = 0usize;
                loop {
                    events += batch.len();
                    for mut e in batch {
                        match self.template.render(&e) {
                            Ok(p) => {
                                encode_line(&e, self.config.encoding, staged.entry(PathBuf::from(p)).or_default());
                                e.take_finalizer(&mut finalizers);
                            }
                            Err(err) => {
                                if cx.metrics.log_due() {
                                    tracing::error!(component = %cx.id, error = %err, "Cannot render the path for an event; it is rejected.");
                                }
                                cx.metrics.error("template", 1);
                                e.finalize(BatchStatus::Rejected);
                            }
                        }
                    }
                    if events >= 50_000 {
                        break;
                    }
                    match cx.input.try_recv() {
                        Ok(b) => batch = b,
                        Err(_) => break,
                    }
                }
                cx.metrics.received(events as u64, 0);
                // A failed write (disk full, permissions) is retried with backoff while
                // the input waits: backpressure, never a dropped event.
                let mut backoff = Duration::from_millis(100);
                let mut failing = false;
                loop {
                    let sink = &self;
                    match tokio::task::block_in_place(|| sink.write_all(&mut files, &mut staged, &cx.metrics)) {
                        Ok(()) => break,
                        Err(e) => {
                            if !failing {
                                tracing::error!(component = %cx.id, error = %e, "Write failed; retrying with backoff, inputs wait meanwhile.");
                                failing = true;
                            }
                            cx.metrics.error("io", 1);
                            files.clear();
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(Duration::from_secs(10));
                        }
                    }
                }
                if failing {
                    tracing::info!(component = %cx.id, "Writes work again.");
                }
                finalizers.finalize(BatchStatus::Delivered);
            }
            Ok(())
        })
    }
}

impl FileSink {
    /// Writes and syncs every staged file's data.
    fn write_all(
        &self,
        files: &mut HashMap<PathBuf, OpenFile>,
        staged: &mut HashMap<PathBuf, Vec<u8>>,
        metrics: &ComponentMetrics,
    ) -> Result<(), String> {
        // A file's data leaves `staged` only once written and synced, so a retry after
        // an error writes again exactly what is not yet durable.
        let paths: Vec<PathBuf> = staged.keys().cloned().collect();
        for path in paths {
            if !files.contains_key(&path) {
                let file = self.open(&path)?;
                files.insert(
                    path.clone(),
                    OpenFile {
                        file,
                        last_write: Instant::now(),
                    },
                );
            }
            let f = files.get_mut(&path).expect("inserted above");
            let data = &staged[&path];
            let body = match self.config.compression {
                Compression::None => None,
                Compression::Gzip => Some(gzip(data).map_err(|e| format!("gzip: {e}"))?),
            };
            let body = body.as_deref().unwrap_or(data);
            f.file
                .write_all(body)
                .and_then(|_| f.file.sync_data())
                .map_err(|e| format!("{}: {e}", path.display()))?;
            f.last_write = Instant::now();
            metrics.sent(memchr::memchr_iter(b'\n', data).count() as u64, body.len() as u64);
            staged.remove(&path);
        }
        Ok(())
    }

    /// Opens `path` for appending, creating directories, and repairs a torn tail.
    fn open(&self, path: &Path) -> Result<File, String> {
        let ctx = |e: std::io::Error| format!("{}: {e}", path.display());
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(ctx)?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(ctx)?;
        let len = file.metadata().map_err(ctx)?.len();
        if len > 0 {
            match self.config.compression {
                Compression::None => {
                    let mut last = [0u8; 1];
                    file.seek(SeekFrom::Start(len - 1))
                        .and_then(|_| file.read_exact(&mut last))
                        .map_err(ctx)?;
                    if last[0] != b'\n' {
                        tracing::warn!(path = %path.display(), "File ended with a torn line (an earlier crash); ending it before appending.");
                        file.write_all(b"\n").map_err(ctx)?;
                    }
                }
                Compression::Gzip => {
                    let good = complete_gzip_prefix(&mut file).map_err(ctx)?;
                    if good < len {
                        tracing::warn!(path = %path.display(), cut_bytes = len - good, "File ended with a torn gzip member (an earlier crash); cutting it off.");
                        file.set_len(good).map_err(ctx)?;
                    }
                }
            }
        }
        Ok(file)
    }
}

/// The length of the longest prefix of `file` made of complete gzip members.
fn complete_gzip_prefix(file: &mut File) -> std::io::Result<u64> {
    let mut data = Vec::new();
    file.seek(SeekFrom::Start(0))?;
    file.read_to_end(&mut data)?;
    let mut rest: &[u8] = &data;
    let mut good = 0u64;
    while !rest.is_empty() {
        let mut dec = flate2::bufread::GzDecoder::new(rest);
        if std::io::copy(&mut dec, &mut std::io::sink()).is_err() {
            break;
        }
        let remaining = dec.into_inner();
        good = (data.len() - remaining.len()) as u64;
        rest = remaining;
    }
    Ok(good)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn torn_gzip_member_is_found() {
        let mut all = Vec::new();
        for part in [&b"a\n"[..], b"b\n"] {
            all.extend(gzip(part).unwrap());
        }
        let whole = all.len() as u64;
        all.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0]);
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&all).unwrap();
        assert_eq!(complete_gzip_prefix(&mut f).unwrap(), whole);
    }
}
