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
//!
//! Hostile values: field values are rendered as one path segment each (no `/`, `..`
//! or NUL can get through, see [`Template::render_path`]), so a file never leaves
//! the template's fixed prefix; a segment longer than 255 bytes is cut to 200 bytes
//! plus 16 hex digits of its SHA-256; files are opened without following symlinks.
//! An event whose file still cannot be opened (the name is refused, a symlink or a
//! directory is in the way) is refused alone, to the `dropped` output; a full disk or
//! a permission problem is retried with backoff while the inputs wait. At most
//! `max_open_files` files are open; the least recently written one is closed first.

use super::events::{OPEN_FILES, PathNotOpened, PathNotRendered, UnwritablePath, WriteFailed};
use crate::ack::{BatchStatus, Finalizers};
use crate::component::{BoxFuture, BuildContext, BuildError, Built, Resource, Sink, SinkContext, parse_options};
use crate::compression::{Compression, gzip};
use crate::encoding::{Encoding, encode_line};
use crate::error::{ComponentError, Fault};
use crate::event::Event;
use crate::metrics::{ComponentMetrics, Emitter, Gauge};
use crate::rejects::Rejects;
use crate::retry::Retry;
use crate::template::Template;
use serde::Deserialize;
use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Options of the `file` sink.
#[derive(Debug, Deserialize, Clone, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileSinkConfig {
    /// Path template, e.g. `/logs/{{ service }}-%Y-%m-%d:%H.log`: strftime on the
    /// event time, `{{ field }}` values (each one path segment: `/` and `..` in a
    /// value are percent-encoded). A new file is started whenever the rendered path
    /// changes. Directories are created.
    pub path: String,
    /// How events become lines.
    #[serde(default)]
    pub encoding: Encoding,
    /// `gzip`: every flush appends a complete gzip member (a valid multi-member
    /// `.gz`; `zcat` reads it).
    #[serde(default)]
    pub compression: Compression,
    /// Files not written for this many seconds are closed (checked every second, also
    /// while events flow).
    #[serde(default = "default_idle_timeout_secs")]
    pub idle_timeout_secs: u64,
    /// Most files open at once; to open another, the least recently written one is
    /// closed.
    #[serde(default = "default_max_open_files")]
    pub max_open_files: usize,
    /// The field whose time formats the strftime parts of `path`; the current time
    /// when absent.
    #[serde(default = "default_time_field")]
    pub time_field: String,
}

fn default_idle_timeout_secs() -> u64 {
    30
}
fn default_max_open_files() -> usize {
    256
}
fn default_time_field() -> String {
    "timestamp".into()
}

/// The longest path segment written as it is; longer ones are shortened.
const MAX_SEGMENT: usize = 255;
/// Events taken into one group commit.
const MAX_COMMIT_EVENTS: usize = 50_000;

/// Builds the `file` sink.
pub fn build(_cx: &BuildContext, options: toml::Value) -> Result<Built, BuildError> {
    let config: FileSinkConfig = parse_options(options)?;
    let template =
        Template::parse(&config.path, &config.time_field).map_err(|e| BuildError::key("path", e.to_string()))?;
    if config.max_open_files == 0 {
        return Err(BuildError::key("max_open_files", "must be at least 1"));
    }
    let claim = Resource::File(config.path.clone());
    Ok(Built::sink(FileSink { config, template })
        .with_outputs(vec!["dropped".into()])
        .claim(claim))
}

struct FileSink {
    config: FileSinkConfig,
    template: Template,
}

struct OpenFile {
    file: File,
    last_write: Instant,
}

/// One file's share of a group commit, not yet durable.
#[derive(Default)]
struct Staged {
    data: Vec<u8>,
    events: u64,
    finalizers: Finalizers,
}

/// What became of one event offered to [`Writer::stage`].
enum Stage {
    /// Encoded into its file's share.
    Done,
    /// Refused for good, marked with the reason.
    Refused(Event),
    /// Its file cannot be opened now: more distinct files than `max_open_files` are
    /// waiting to be written, or a transient failure.
    Later(Event, Option<ComponentError>),
}

/// The sink's open files and the group commit being built.
struct Writer<'a> {
    sink: &'a FileSink,
    files: HashMap<PathBuf, OpenFile>,
    staged: HashMap<PathBuf, Staged>,
    metrics: &'a ComponentMetrics,
    events: SinkEvents,
    rejects: &'a Rejects,
}

/// The events and gauges of the sink.
struct SinkEvents {
    not_rendered: Emitter<PathNotRendered>,
    not_opened: Emitter<PathNotOpened>,
    unwritable: Emitter<UnwritablePath>,
    write_failed: Emitter<WriteFailed>,
    open_files: Gauge,
}

impl SinkEvents {
    fn new(metrics: &ComponentMetrics) -> Self {
        SinkEvents {
            not_rendered: metrics.emitter(),
            not_opened: metrics.emitter(),
            unwritable: metrics.emitter(),
            write_failed: metrics.emitter(),
            open_files: metrics.gauge(&OPEN_FILES),
        }
    }
}

impl Sink for FileSink {
    fn run(self: Box<Self>, mut cx: SinkContext) -> BoxFuture {
        Box::pin(async move {
            let rejects = Rejects::new(&cx);
            let mut w = Writer {
                sink: &self,
                files: HashMap::new(),
                staged: HashMap::new(),
                metrics: &cx.metrics,
                events: SinkEvents::new(&cx.metrics),
                rejects: &rejects,
            };
            let mut pending: VecDeque<Event> = VecDeque::new();
            let mut open_retry = Retry::new("file opens");
            let mut write_retry = Retry::new("file writes");
            let mut last_sweep = Instant::now();
            let mut closed = false;
            while !closed || !pending.is_empty() {
                if pending.is_empty() {
                    match tokio::time::timeout(Duration::from_secs(1), cx.input.recv()).await {
                        Ok(Some(b)) => pending.extend(b),
                        Ok(None) => closed = true,
                        Err(_) => {}
                    }
                    // Group commit: everything already waiting goes into one flush.
                    while pending.len() < MAX_COMMIT_EVENTS {
                        match cx.input.try_recv() {
                            Ok(b) => pending.extend(b),
                            Err(_) => break,
                        }
                    }
                }
                let (refused, wait) = tokio::task::block_in_place(|| {
                    let mut refused = Vec::new();
                    while let Some(event) = pending.pop_front() {
                        match w.stage(event) {
                            Stage::Done => {}
                            Stage::Refused(e) => refused.push(e),
                            Stage::Later(e, error) => {
                                pending.push_front(e);
                                return (refused, error);
                            }
                        }
                    }
                    (refused, None)
                });
                w.write_staged(&mut write_retry).await;
                rejects.send(refused, &w.events.unwritable, UnwritablePath).await;
                match wait {
                    Some(error) => open_retry.wait(&error, &w.events.write_failed, w.metrics).await,
                    None => open_retry.succeeded(w.metrics),
                }
                if last_sweep.elapsed() >= Duration::from_secs(1) {
                    last_sweep = Instant::now();
                    let idle = Duration::from_secs(self.config.idle_timeout_secs);
                    w.files.retain(|_, f| f.last_write.elapsed() < idle);
                }
                w.events.open_files.set(w.files.len() as u64);
            }
            Ok(())
        })
    }
}

impl Writer<'_> {
    /// Encodes `event` into the share of its file, opening the file if needed.
    fn stage(&mut self, mut event: Event) -> Stage {
        let path = match self.sink.template.render_path(&event, None) {
            Ok(p) => PathBuf::from(shorten_segments(&p).into_owned()),
            Err(e) => {
                let reason = format!("cannot render the path: {e}");
                let marked = self.rejects.mark(event, &reason);
                self.events.not_rendered.emit(PathNotRendered { reason });
                return Stage::Refused(marked);
            }
        };
        if !self.files.contains_key(&path) {
            if self.files.len() >= self.sink.config.max_open_files && !self.close_least_recent() {
                return Stage::Later(event, None);
            }
            match self.sink.open(&path) {
                Ok(file) => {
                    let last_write = Instant::now();
                    self.files.insert(path.clone(), OpenFile { file, last_write });
                }
                Err(e) if e.fault == Fault::Data => {
                    let marked = self.rejects.mark(event, &e.message);
                    self.events.not_opened.emit(PathNotOpened { reason: e.message });
                    return Stage::Refused(marked);
                }
                Err(e) => return Stage::Later(event, Some(e)),
            }
        }
        let share = self.staged.entry(path).or_default();
        encode_line(&event, self.sink.config.encoding, &mut share.data);
        share.events += 1;
        event.take_finalizer(&mut share.finalizers);
        Stage::Done
    }

    /// Closes the least recently written file that has nothing waiting; false when
    /// every open file has.
    fn close_least_recent(&mut self) -> bool {
        let victim = self
            .files
            .iter()
            .filter(|(p, _)| !self.staged.contains_key(*p))
            .min_by_key(|(_, f)| f.last_write)
            .map(|(p, _)| p.clone());
        victim.is_some_and(|p| self.files.remove(&p).is_some())
    }

    /// Writes and syncs every file's share, then acknowledges its events; failures
    /// are retried with backoff while the inputs wait.
    async fn write_staged(&mut self, retry: &mut Retry) {
        while !self.staged.is_empty() {
            let paths: Vec<PathBuf> = self.staged.keys().cloned().collect();
            let mut failure = None;
            for path in paths {
                // A file's share leaves `staged` only once written and synced (or
                // refused), so a retry writes again exactly what is not yet durable.
                let result = tokio::task::block_in_place(|| self.write_one(&path));
                match result {
                    Ok(()) => {
                        if let Some(mut share) = self.staged.remove(&path) {
                            share.finalizers.finalize(BatchStatus::Delivered);
                        }
                    }
                    Err(e) if e.fault == Fault::Data => {
                        self.files.remove(&path);
                        if let Some(share) = self.staged.remove(&path) {
                            self.rejects.reject_finalizers(
                                share.finalizers,
                                share.events,
                                &e.message,
                                &self.events.unwritable,
                                UnwritablePath,
                            );
                        }
                    }
                    Err(e) => {
                        self.files.remove(&path);
                        failure = Some(e);
                    }
                }
            }
            match failure {
                Some(e) => retry.wait(&e, &self.events.write_failed, self.metrics).await,
                None => retry.succeeded(self.metrics),
            }
        }
    }

    /// Writes and syncs the share of `path`.
    fn write_one(&mut self, path: &Path) -> Result<(), ComponentError> {
        if !self.files.contains_key(path) {
            let file = self.sink.open(path)?;
            let last_write = Instant::now();
            self.files.insert(path.to_path_buf(), OpenFile { file, last_write });
        }
        let (Some(f), Some(share)) = (self.files.get_mut(path), self.staged.get(path)) else {
            return Ok(());
        };
        let body = match self.sink.config.compression {
            Compression::None => None,
            Compression::Gzip => Some(gzip(&share.data).map_err(|e| ComponentError::internal(format!("gzip: {e}")))?),
        };
        let body = body.as_deref().unwrap_or(&share.data);
        f.file
            .write_all(body)
            .and_then(|_| f.file.sync_data())
            .map_err(|e| ComponentError::io(path.display(), &e))?;
        f.last_write = Instant::now();
        self.metrics.sent(share.events, body.len() as u64);
        Ok(())
    }
}

impl FileSink {
    /// Opens `path` for appending (never through a symlink), creating directories,
    /// and repairs a torn tail.
    fn open(&self, path: &Path) -> Result<File, ComponentError> {
        let ctx = |e: std::io::Error| ComponentError::io(path.display(), &e);
        // The template's fixed directories are the operator's: a file in their way
        // is retried until fixed. Below them, directories come from field values,
        // and a file in the way is that event's problem.
        let fixed = Path::new(self.template.fixed_dir());
        if !fixed.as_os_str().is_empty() {
            std::fs::create_dir_all(fixed).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotADirectory | std::io::ErrorKind::AlreadyExists => {
                    ComponentError::config(format!("{}: {e}", fixed.display()))
                }
                _ => ComponentError::io(fixed.display(), &e),
            })?;
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| ComponentError::io(dir.display(), &e))?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .custom_flags(libc::O_NOFOLLOW)
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

/// `path` with every segment longer than [`MAX_SEGMENT`] bytes cut to 200 bytes
/// (on a character boundary) plus 16 hex digits of the whole segment's SHA-256, so
/// distinct long values stay distinct files; a file name keeps its extension
/// (`.log.gz`), so tools still recognise it.
fn shorten_segments(path: &str) -> std::borrow::Cow<'_, str> {
    if !path.split('/').any(|s| s.len() > MAX_SEGMENT) {
        return path.into();
    }
    let segments: Vec<String> = path
        .split('/')
        .map(|s| {
            if s.len() <= MAX_SEGMENT {
                return s.to_string();
            }
            let mut cut = 200;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            use sha2::Digest;
            let digest = sha2::Sha256::digest(s.as_bytes());
            let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
            format!("{}{hex}{}", &s[..cut], extension(s))
        })
        .collect();
    segments.join("/").into()
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

/// The extension of a file name (`.log.gz`): the end of `name` from a `.` within
/// its last 24 bytes, made only of ASCII letters, digits and dots.
fn extension(name: &str) -> &str {
    let from = name.len().saturating_sub(24);
    name.char_indices()
        .filter(|&(i, c)| i >= from && c == '.')
        .map(|(i, _)| i)
        .find(|&i| name[i..].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.'))
        .map_or("", |i| &name[i..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn long_segments_are_shortened_and_stay_distinct() {
        let a = format!("/logs/{}.log.gz", "a".repeat(300));
        let b = format!("/logs/{}b.log.gz", "a".repeat(299));
        let (sa, sb) = (shorten_segments(&a), shorten_segments(&b));
        assert_ne!(sa, sb);
        for s in [&sa, &sb] {
            let last = s.rsplit('/').next().unwrap();
            assert_eq!(last.len(), 216 + ".log.gz".len(), "{last}");
            assert!(s.starts_with("/logs/aaaa") && s.ends_with(".log.gz"));
        }
        assert_eq!(shorten_segments("/logs/x.log"), "/logs/x.log");
        // A cut never splits a character.
        let c = format!("/{}", "é".repeat(200));
        assert!(shorten_segments(&c).len() < c.len());
    }

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
