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

use super::checkpoint::{self, Checkpointer, Entry, Message};
use super::fingerprint::{self, Fingerprint};
use super::lines::{LineReader, Oversize};
use crate::ack::BatchNotifier;
use crate::component::{BoxFuture, BuildContext, BuildError, Built, Fanout, Source, SourceContext, parse_options};
use crate::event::{Event, EventBatch};
use crate::metrics::ComponentMetrics;
use crate::shutdown::ShutdownSignal;
use bytes::Bytes;
use serde::Deserialize;
use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use vrl::value::{KeyString, ObjectMap, Value};

/// Options of the `file` source.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct FileSourceConfig {
    /// Glob patterns of files to read (`/var/log/app/*.log`). Required.
    pub include: Vec<String>,
    /// Glob patterns of files to skip, even when included.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Where to start in a file seen for the first time when pipe starts:
    /// `beginning` or `end`. Files that appear later are always read from the start.
    #[serde(default)]
    pub read_from: ReadFrom,
    /// Longest line kept, in bytes (default 102400).
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
    /// What to do with a longer line: `truncate` (default) or `drop`. Counted either way.
    #[serde(default)]
    pub oversize_lines: Oversize,
    /// How many leading bytes identify a file (default 256).
    #[serde(default = "default_fingerprint_bytes")]
    pub fingerprint_bytes: usize,
    /// How often the globs are expanded again to find new files, in ms (default 1000).
    #[serde(default = "default_glob_interval_ms")]
    pub glob_interval_ms: u64,
    /// How often files are checked for new data without a filesystem notification,
    /// in ms (default 250).
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// How often acknowledged offsets are written to disk, in ms (default 25). Lower
    /// means fewer lines read again after a crash.
    #[serde(default = "default_checkpoint_interval_ms")]
    pub checkpoint_interval_ms: u64,
    /// How long a file that left the globs (renamed away, deleted) is kept open after
    /// its last data, in ms (default 5000).
    #[serde(default = "default_rotate_wait_ms")]
    pub rotate_wait_ms: u64,
    /// Most events in one batch (default 1000).
    #[serde(default = "default_max_batch_events")]
    pub max_batch_events: usize,
    /// Joins lines into one event (stack traces).
    pub multiline: Option<MultilineConfig>,
}

/// Multiline grouping: set exactly one of `start_pattern` or `continuation_pattern`.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct MultilineConfig {
    /// A line matching this regex starts a new event; other lines join the previous.
    pub start_pattern: Option<String>,
    /// A line matching this regex joins the previous event; other lines start one.
    pub continuation_pattern: Option<String>,
    /// An event waiting for more lines is emitted after this many ms (default 1000).
    #[serde(default = "default_multiline_timeout_ms")]
    pub timeout_ms: u64,
}

/// Where to start in files seen for the first time at startup.
#[derive(Debug, Deserialize, Clone, Copy, Default, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum ReadFrom {
    #[default]
    Beginning,
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
    Ok(Built::source(FileSource {
        config,
        multiline,
        state_dir: cx.state_dir(),
    }))
}

#[derive(Debug, Clone)]
enum Rule {
    Start(regex::bytes::Regex),
    Continuation(regex::bytes::Regex),
}

impl Rule {
    fn starts_event(&self, line: &[u8]) -> bool {
        match self {
            Rule::Start(r) => r.is_match(line),
            Rule::Continuation(r) => !r.is_match(line),
        }
    }
}

struct FileSource {
    config: FileSourceConfig,
    multiline: Option<(Rule, Duration)>,
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
                let mut t = Tailer::new(*self, id, out.default, shutdown, metrics, ck_tx, handle);
                t.restore(loaded);
                t.run();
            });
            tailer.await.map_err(|e| format!("file reader stopped: {e}"))?;
            ck_task.await.map_err(|e| format!("checkpointer stopped: {e}"))?;
            Ok(())
        })
    }
}

/// A group of lines waiting for the end of a multiline event.
struct Pending {
    message: Vec<u8>,
    offset: u64,
    last_line: Instant,
}

/// One known file.
struct Tracked {
    id: u64,
    fp: Fingerprint,
    dev: u64,
    ino: u64,
    path: PathBuf,
    path_value: Value,
    file: Option<File>,
    reader: LineReader,
    pending: Option<Pending>,
    /// Seen at a path matching the globs in the last scan.
    in_glob: bool,
    last_seen: Instant,
    last_data: Instant,
    at_eof: bool,
    /// Offset already covered by a batch sent to the checkpointer.
    sent_end: u64,
}

impl Tracked {
    fn entry(&self) -> Entry {
        Entry {
            fingerprint: self.fp,
            dev: self.dev,
            ino: self.ino,
            path: self.path.clone(),
            offset: self.sent_end,
        }
    }
}

/// Filesystem notifications: a wake-up channel for new data, and a flag for files
/// created, renamed or removed (kept apart so a flood of writes never hides a rename).
struct Wake {
    _watcher: notify::RecommendedWatcher,
    data: std_mpsc::Receiver<()>,
    structural: Arc<AtomicBool>,
}

struct Tailer {
    config: FileSourceConfig,
    multiline: Option<(Rule, Duration)>,
    id: String,
    out: Fanout,
    shutdown: ShutdownSignal,
    metrics: Arc<ComponentMetrics>,
    ck: mpsc::UnboundedSender<Message>,
    rt: tokio::runtime::Handle,
    files: Vec<Tracked>,
    next_id: u64,
    host: Value,
    wake: Option<Wake>,
    last_scan: Instant,
    stopped: bool,
}

impl Tailer {
    fn new(
        src: FileSource,
        id: String,
        out: Fanout,
        shutdown: ShutdownSignal,
        metrics: Arc<ComponentMetrics>,
        ck: mpsc::UnboundedSender<Message>,
        rt: tokio::runtime::Handle,
    ) -> Self {
        let host = crate::event::interned(&gethostname::gethostname().to_string_lossy());
        let mut t = Tailer {
            config: src.config,
            multiline: src.multiline,
            id,
            out,
            shutdown,
            metrics,
            ck,
            rt,
            files: Vec::new(),
            next_id: 1,
            host,
            wake: None,
            last_scan: Instant::now(),
            stopped: false,
        };
        t.wake = t.watch();
        t
    }

    /// Watches the directories the globs start from; without it, polling alone.
    fn watch(&self) -> Option<Wake> {
        use notify::{EventKind, RecursiveMode, Watcher};
        let (tx, data) = std_mpsc::sync_channel::<()>(1);
        let structural = Arc::new(AtomicBool::new(false));
        let flag = structural.clone();
        let handler = move |res: notify::Result<notify::Event>| {
            if let Ok(ev) = res {
                if matches!(
                    ev.kind,
                    EventKind::Create(_) | EventKind::Remove(_) | EventKind::Modify(notify::event::ModifyKind::Name(_))
                ) {
                    flag.store(true, Ordering::Release);
                }
                let _ = tx.try_send(());
            }
        };
        let mut watcher = match notify::recommended_watcher(handler) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(component = %self.id, error = %e, "Filesystem notifications unavailable; polling instead.");
                return None;
            }
        };
        for pattern in &self.config.include {
            let (dir, recursive) = glob_root(pattern);
            let mode = if recursive {
                RecursiveMode::Recursive
            } else {
                RecursiveMode::NonRecursive
            };
            if let Err(e) = watcher.watch(&dir, mode) {
                tracing::debug!(component = %self.id, dir = %dir.display(), error = %e, "Cannot watch directory; polling it.");
            }
        }
        Some(Wake {
            _watcher: watcher,
            data,
            structural,
        })
    }

    fn restore(&mut self, entries: Vec<Entry>) {
        for entry in entries {
            self.track(entry, None);
        }
    }

    fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn run(&mut self) {
        let glob_interval = Duration::from_millis(self.config.glob_interval_ms);
        let poll = Duration::from_millis(self.config.poll_interval_ms);
        self.scan(true);
        while !self.stopped && !self.shutdown.is_triggered() {
            if self.scan_if_due() {
                self.forget_stale();
            }
            let progressed = self.read_all();
            self.flush_timeouts();
            self.close_rotated();
            if !progressed && !self.stopped {
                let wait = poll.min(glob_interval.saturating_sub(self.last_scan.elapsed()));
                match &self.wake {
                    Some(w) => {
                        let _ = w.data.recv_timeout(wait);
                    }
                    None => std::thread::sleep(wait),
                }
            }
        }
        tracing::info!(component = %self.id, files = self.files.iter().filter(|f| f.file.is_some()).count(), "File source stopping; waiting for acknowledgements of what it read.");
    }

    /// Expands the globs and matches what is found to known files.
    fn scan(&mut self, startup: bool) {
        self.last_scan = Instant::now();
        let paths = self.discover();
        let now = Instant::now();
        for t in &mut self.files {
            t.in_glob = false;
        }
        let mut fresh = Vec::new();
        for path in paths {
            let Ok(meta) = std::fs::metadata(&path) else { continue };
            if !meta.is_file() {
                continue;
            }
            match self
                .files
                .iter()
                .position(|t| t.file.is_some() && t.dev == meta.dev() && t.ino == meta.ino())
            {
                Some(i) => {
                    if self.same_content(i) {
                        let t = &mut self.files[i];
                        if t.path != path {
                            tracing::info!(component = %self.id, from = %t.path.display(), to = %path.display(), "File was renamed; following it.");
                            t.path_value = path_value(&path);
                            t.path = path;
                            let _ = self.ck.send(Message::Track {
                                id: t.id,
                                entry: t.entry(),
                            });
                        }
                        let t = &mut self.files[i];
                        t.in_glob = true;
                        t.last_seen = now;
                    } else {
                        self.truncated(i);
                    }
                }
                None => fresh.push((path, meta)),
            }
        }
        for (path, meta) in fresh {
            let file = match File::open(&path) {
                Ok(f) => f,
                Err(e) => {
                    if self.metrics.log_due() {
                        tracing::warn!(component = %self.id, path = %path.display(), error = %e, "Cannot open file; will retry.");
                    }
                    self.metrics.error("open", 1);
                    continue;
                }
            };
            let prefix = match fingerprint::read_prefix(&file, self.config.fingerprint_bytes) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(component = %self.id, path = %path.display(), error = %e, "Cannot read file; will retry.");
                    self.metrics.error("read", 1);
                    continue;
                }
            };
            let (dev, ino) = (meta.dev(), meta.ino());
            let full = self.config.fingerprint_bytes as u32;
            let same = |t: &Tracked| t.fp.matches(&prefix) && (t.fp.len >= full || (t.dev, t.ino) == (dev, ino));
            if let Some(i) = self.files.iter().position(|t| t.file.is_none() && same(t)) {
                let t = &mut self.files[i];
                tracing::info!(component = %self.id, path = %path.display(), offset = t.reader.read_pos(), "Resuming file.");
                t.file = Some(file);
                (t.dev, t.ino) = (dev, ino);
                t.path_value = path_value(&path);
                t.path = path;
                t.in_glob = true;
                t.last_seen = now;
                t.at_eof = false;
                if prefix.len() > t.fp.len as usize {
                    t.fp = Fingerprint::of(&prefix);
                }
                let _ = self.ck.send(Message::Track {
                    id: t.id,
                    entry: t.entry(),
                });
            } else if self.files.iter().any(|t| t.file.is_some() && same(t)) {
                tracing::debug!(component = %self.id, path = %path.display(), "File holds the same first bytes as a file being read; treating it as a copy.");
            } else {
                let offset = if startup && self.config.read_from == ReadFrom::End {
                    meta.len()
                } else {
                    0
                };
                let offset = if offset > 0 {
                    line_start_before(&file, offset)
                } else {
                    0
                };
                tracing::info!(component = %self.id, path = %path.display(), offset, "Found new file.");
                let entry = Entry {
                    fingerprint: Fingerprint::of(&prefix),
                    dev,
                    ino,
                    path,
                    offset,
                };
                self.track(entry, Some(file));
            }
        }
    }

    /// Forgets files gone from the globs for an hour (their checkpoints too).
    fn forget_stale(&mut self) {
        let now = Instant::now();
        let ck = &self.ck;
        self.files.retain(|t| {
            let keep = t.file.is_some() || now.duration_since(t.last_seen) < Duration::from_secs(3600);
            if !keep {
                let _ = ck.send(Message::Forget { id: t.id });
            }
            keep
        });
    }

    /// Starts tracking a file identity at `entry.offset`, open (`file`) or not yet
    /// found (restored from a checkpoint), and tells the checkpointer.
    fn track(&mut self, entry: Entry, file: Option<File>) {
        let now = Instant::now();
        let id = self.new_id();
        let t = Tracked {
            id,
            fp: entry.fingerprint,
            dev: entry.dev,
            ino: entry.ino,
            path_value: path_value(&entry.path),
            path: entry.path,
            in_glob: file.is_some(),
            file,
            reader: LineReader::new(entry.offset),
            pending: None,
            last_seen: now,
            last_data: now,
            at_eof: false,
            sent_end: entry.offset,
        };
        let _ = self.ck.send(Message::Track { id, entry: t.entry() });
        self.files.push(t);
    }

    fn discover(&self) -> Vec<PathBuf> {
        let excludes: Vec<glob::Pattern> = self
            .config
            .exclude
            .iter()
            .filter_map(|p| glob::Pattern::new(p).ok())
            .collect();
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for pattern in &self.config.include {
            let Ok(paths) = glob::glob(pattern) else { continue };
            for p in paths.flatten() {
                if excludes.iter().any(|x| x.matches_path(&p)) || !seen.insert(p.clone()) {
                    continue;
                }
                out.push(p);
            }
        }
        out
    }

    /// True when file `i` (open) still holds the content its fingerprint names and is
    /// not shorter than what was read. Grows a short fingerprint.
    fn same_content(&mut self, i: usize) -> bool {
        let full = self.config.fingerprint_bytes;
        let t = &mut self.files[i];
        let Some(file) = &t.file else { return true };
        let Ok(meta) = file.metadata() else { return true };
        if meta.len() < t.reader.read_pos() {
            return false;
        }
        let Ok(prefix) = fingerprint::read_prefix(file, full) else {
            return true;
        };
        if !t.fp.matches(&prefix) {
            return false;
        }
        if prefix.len() > t.fp.len as usize {
            t.fp = Fingerprint::of(&prefix);
            let _ = self.ck.send(Message::Track {
                id: t.id,
                entry: t.entry(),
            });
        }
        true
    }

    /// File `i` was truncated or rewritten in place: report it, keep the old identity
    /// (its copy may show up under another name) and read the file again from the
    /// start as a new one.
    fn truncated(&mut self, i: usize) {
        let t = &mut self.files[i];
        tracing::warn!(component = %self.id, path = %t.path.display(), read_up_to = t.reader.read_pos(), "File was truncated or rewritten in place (copytruncate?); reading it again from the start.");
        self.metrics.error("file_truncated", 1);
        let Some(file) = t.file.take() else { return };
        t.in_glob = false;
        let prefix = fingerprint::read_prefix(&file, self.config.fingerprint_bytes).unwrap_or_default();
        let entry = Entry {
            fingerprint: Fingerprint::of(&prefix),
            dev: t.dev,
            ino: t.ino,
            path: t.path.clone(),
            offset: 0,
        };
        self.track(entry, Some(file));
    }

    /// Reads a batch from every open file; true when anything was read.
    fn read_all(&mut self) -> bool {
        let mut progressed = false;
        for i in 0..self.files.len() {
            if self.stopped || self.shutdown.is_triggered() {
                self.stopped = true;
                break;
            }
            if self.files[i].file.is_none() {
                continue;
            }
            // Checked before every read (an fstat and a read of the first bytes): a
            // file truncated and refilled while we were busy must not be read on from
            // the old offset.
            if !self.same_content(i) {
                self.truncated(i);
                continue;
            }
            progressed |= self.read_one(i);
            if (self.files[i].fp.len as usize) < self.config.fingerprint_bytes {
                // Grow a short fingerprint over what was just read, so a rewrite of
                // those bytes is recognised.
                self.same_content(i);
            }
        }
        progressed
    }

    fn read_one(&mut self, i: usize) -> bool {
        let max_events = self.config.max_batch_events;
        let max_line = self.config.max_line_bytes;
        let oversize = self.config.oversize_lines;
        let now = chrono::Utc::now();
        let (notifier, ack) = BatchNotifier::new();
        let mut batch: EventBatch = Vec::new();
        let mut invalid_utf8 = 0u64;
        let mut bytes_in = 0u64;
        let t = &mut self.files[i];
        let Some(file) = &t.file else { return false };
        let host = &self.host;
        let multiline = &self.multiline;
        let pending = &mut t.pending;
        let path_value = &t.path_value;
        let mut make = |message: &[u8], offset: u64| {
            bytes_in += message.len() as u64 + 1;
            let text = match simdutf8::basic::from_utf8(message) {
                Ok(s) => Bytes::copy_from_slice(s.as_bytes()),
                Err(_) => {
                    invalid_utf8 += 1;
                    Bytes::from(String::from_utf8_lossy(message).into_owned())
                }
            };
            let mut m = ObjectMap::new();
            m.insert(KeyString::from("message"), Value::Bytes(text));
            m.insert(KeyString::from("file"), path_value.clone());
            m.insert(KeyString::from("host"), host.clone());
            m.insert(KeyString::from("timestamp"), Value::Timestamp(now));
            m.insert(KeyString::from("offset"), Value::Integer(offset as i64));
            batch.push(Event::from_map(m).with_notifier(&notifier));
        };
        let result = t
            .reader
            .read(file, max_events, max_line, oversize, |line| match multiline {
                None => make(line.bytes, line.offset),
                Some((rule, _)) => {
                    if rule.starts_event(line.bytes) || pending.is_none() {
                        if let Some(p) = pending.take() {
                            make(&p.message, p.offset);
                        }
                        *pending = Some(Pending {
                            message: line.bytes.to_vec(),
                            offset: line.offset,
                            last_line: Instant::now(),
                        });
                    } else if let Some(p) = pending.as_mut() {
                        if p.message.len() < max_line {
                            p.message.push(b'\n');
                            p.message.extend_from_slice(
                                &line.bytes[..line.bytes.len().min(max_line - p.message.len().min(max_line))],
                            );
                        }
                        p.last_line = Instant::now();
                    }
                }
            });
        let stats = match result {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(component = %self.id, path = %t.path.display(), error = %e, "Read failed; will retry.");
                self.metrics.error("read", 1);
                return false;
            }
        };
        t.at_eof = stats.eof;
        if stats.bytes > 0 {
            t.last_data = Instant::now();
        }
        if stats.oversize > 0 {
            tracing::warn!(component = %self.id, path = %t.path.display(), lines = stats.oversize, max_line_bytes = max_line, action = ?oversize, "Lines longer than max_line_bytes.");
            self.metrics.discarded("line_too_long", stats.oversize);
        }
        if invalid_utf8 > 0 {
            tracing::warn!(component = %self.id, path = %t.path.display(), lines = invalid_utf8, "Invalid UTF-8 replaced with U+FFFD.");
            self.metrics.error("invalid_utf8", invalid_utf8);
        }
        let end = match &t.pending {
            Some(p) => p.offset.min(t.reader.safe_pos()),
            None => t.reader.safe_pos(),
        };
        let id = t.id;
        let progressed = stats.bytes > 0 || !batch.is_empty();
        self.emit(id, batch, end, notifier, ack, bytes_in);
        progressed
    }

    /// Sends a batch and hands its acknowledgement to the checkpointer.
    fn emit(
        &mut self,
        id: u64,
        batch: EventBatch,
        end: u64,
        notifier: Arc<BatchNotifier>,
        ack: crate::ack::BatchReceiver,
        bytes: u64,
    ) {
        drop(notifier);
        let Some(t) = self.files.iter_mut().find(|t| t.id == id) else {
            return;
        };
        if end <= t.sent_end && batch.is_empty() {
            return;
        }
        t.sent_end = t.sent_end.max(end);
        let n = batch.len() as u64;
        let _ = self.ck.send(Message::Batch { id, end, ack });
        if batch.is_empty() {
            return;
        }
        let sent = self.send_while_watching(batch);
        if sent {
            self.metrics.sent(n, bytes);
        } else {
            self.stopped = true;
        }
    }

    /// Scans when a notification says a file was created, renamed or removed, or
    /// when the glob interval has passed; true when it scanned.
    fn scan_if_due(&mut self) -> bool {
        let notified = self
            .wake
            .as_ref()
            .is_some_and(|w| w.structural.swap(false, Ordering::AcqRel));
        if notified || self.last_scan.elapsed() >= Duration::from_millis(self.config.glob_interval_ms) {
            self.scan(false);
            return true;
        }
        false
    }

    /// Sends a batch, waiting for room downstream; while it waits, keeps discovering
    /// and opening new files, so a file rotated away and deleted during a long
    /// backpressure stall is still held open and read later. False on shutdown.
    fn send_while_watching(&mut self, batch: EventBatch) -> bool {
        let out = self.out.clone();
        let mut shutdown = self.shutdown.clone();
        let rt = self.rt.clone();
        let mut send = Box::pin(out.send(batch));
        loop {
            let done = rt.block_on(async {
                tokio::select! {
                    biased;
                    alive = &mut send => Some(alive),
                    _ = shutdown.wait() => Some(false),
                    _ = tokio::time::sleep(Duration::from_millis(50)) => None,
                }
            });
            self.scan_if_due();
            if let Some(alive) = done {
                return alive;
            }
        }
    }

    /// Emits multiline groups that waited longer than the timeout.
    fn flush_timeouts(&mut self) {
        let Some((_, timeout)) = &self.multiline else { return };
        let timeout = *timeout;
        for i in 0..self.files.len() {
            let due = self.files[i]
                .pending
                .as_ref()
                .is_some_and(|p| p.last_line.elapsed() >= timeout);
            if due {
                self.emit_pending(i);
            }
        }
    }

    fn emit_pending(&mut self, i: usize) {
        let Some(p) = self.files[i].pending.take() else { return };
        let (notifier, ack) = BatchNotifier::new();
        let t = &self.files[i];
        let mut m = ObjectMap::new();
        let bytes = p.message.len() as u64;
        m.insert(
            KeyString::from("message"),
            Value::from(String::from_utf8_lossy(&p.message).into_owned()),
        );
        m.insert(KeyString::from("file"), t.path_value.clone());
        m.insert(KeyString::from("host"), self.host.clone());
        m.insert(KeyString::from("timestamp"), Value::Timestamp(chrono::Utc::now()));
        m.insert(KeyString::from("offset"), Value::Integer(p.offset as i64));
        let event = Event::from_map(m).with_notifier(&notifier);
        let (id, end) = (t.id, t.reader.safe_pos());
        self.emit(id, vec![event], end, notifier, ack, bytes);
    }

    /// Closes files that left the globs once they are read to the end and idle,
    /// emitting an unterminated last line first.
    fn close_rotated(&mut self) {
        let wait = Duration::from_millis(self.config.rotate_wait_ms);
        for i in 0..self.files.len() {
            let t = &self.files[i];
            if t.file.is_none() || t.in_glob || !t.at_eof || t.last_data.elapsed() < wait {
                continue;
            }
            self.emit_pending(i);
            let t = &mut self.files[i];
            if !t.reader.partial().is_empty() {
                let line = t.reader.partial().to_vec();
                let offset = t.reader.safe_pos();
                t.reader.consume_partial();
                t.pending = Some(Pending {
                    message: line,
                    offset,
                    last_line: Instant::now(),
                });
                self.emit_pending(i);
            }
            let t = &mut self.files[i];
            tracing::info!(component = %self.id, path = %t.path.display(), "Finished a file that left the include globs; closing it.");
            t.file = None;
        }
    }
}

fn path_value(path: &Path) -> Value {
    crate::event::interned(&path.to_string_lossy())
}

/// The directory a glob starts from, and whether it may descend (`**`).
fn glob_root(pattern: &str) -> (PathBuf, bool) {
    let mut root = PathBuf::new();
    for part in Path::new(pattern).components() {
        let s = part.as_os_str().to_string_lossy();
        if s.contains(['*', '?', '[']) {
            return (
                if root.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    root
                },
                pattern.contains("**"),
            );
        }
        root.push(part);
    }
    (
        root.parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(".")),
        false,
    )
}

/// The start of the line holding byte `offset - 1`, for starting at a file's end
/// without cutting a line.
fn line_start_before(file: &File, offset: u64) -> u64 {
    use std::os::unix::fs::FileExt;
    let from = offset.saturating_sub(64 * 1024);
    let mut buf = vec![0u8; (offset - from) as usize];
    if file.read_exact_at(&mut buf, from).is_err() {
        return offset;
    }
    match memchr::memrchr(b'\n', &buf) {
        Some(i) => from + i as u64 + 1,
        None if from == 0 => 0,
        None => offset,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_roots() {
        assert_eq!(glob_root("/var/log/app/*.log"), (PathBuf::from("/var/log/app"), false));
        assert_eq!(glob_root("/var/log/**/x.log"), (PathBuf::from("/var/log"), true));
        assert_eq!(glob_root("/var/log/app.log"), (PathBuf::from("/var/log"), false));
        assert_eq!(glob_root("*.log"), (PathBuf::from("."), false));
    }

    #[test]
    fn rules() {
        let r = Rule::Start(regex::bytes::Regex::new(r"^\d").unwrap());
        assert!(r.starts_event(b"2026 x"));
        assert!(!r.starts_event(b"  at foo"));
        let r = Rule::Continuation(regex::bytes::Regex::new(r"^\s").unwrap());
        assert!(!r.starts_event(b"  at foo"));
    }
}
