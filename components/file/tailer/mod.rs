//! The reading loop of the `file` source: a blocking thread that follows every known
//! file, turns lines into batches, sends them (waiting when the pipeline pushes back,
//! while still discovering new files) and hands each batch's acknowledgement to the
//! checkpointer. Which file is which lives in [`discovery`].

mod discovery;

use discovery::glob_root;

use super::checkpoint::{Entry, Message};
use super::events::{
    BYTES_BEHIND, FILES_WATCHED, FileTruncated, InvalidUtf8, LineDropped, LineTruncated, OpenFailed, ReadFailed,
    UndecodableLines,
};
use super::fingerprint::Fingerprint;
use super::lines::{LineReader, Oversize};
use super::source::{FileSource, FileSourceConfig, Rule};
use crate::ack::BatchNotifier;
use crate::component::{Fanout, Outputs};
use crate::decoding;
use crate::event::{Event, EventBatch};
use crate::metrics::{ComponentMetrics, Emitter, Gauge};
use crate::shutdown::ShutdownSignal;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use vrl::value::{KeyString, Value};

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
    /// Its size when last checked (for the bytes-behind gauge).
    size: u64,
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

/// The events and gauges of the reading loop.
struct TailEvents {
    open_failed: Emitter<OpenFailed>,
    read_failed: Emitter<ReadFailed>,
    truncated: Emitter<FileTruncated>,
    oversize: OversizeEvent,
    invalid_utf8: Emitter<InvalidUtf8>,
    undecodable: Emitter<UndecodableLines>,
    files_watched: Gauge,
    bytes_behind: Gauge,
}

/// The event of overlong lines, by what `oversize_lines` does with them.
enum OversizeEvent {
    Truncated(Emitter<LineTruncated>),
    Dropped(Emitter<LineDropped>),
}

impl TailEvents {
    fn new(metrics: &ComponentMetrics, oversize: Oversize) -> Self {
        TailEvents {
            open_failed: metrics.emitter(),
            read_failed: metrics.emitter(),
            truncated: metrics.emitter(),
            oversize: match oversize {
                Oversize::Truncate => OversizeEvent::Truncated(metrics.emitter()),
                Oversize::Drop => OversizeEvent::Dropped(metrics.emitter()),
            },
            invalid_utf8: metrics.emitter(),
            undecodable: metrics.emitter(),
            files_watched: metrics.gauge(&FILES_WATCHED),
            bytes_behind: metrics.gauge(&BYTES_BEHIND),
        }
    }

    /// Counts and logs `lines` overlong lines of `path`.
    fn oversize(&self, path: &Path, lines: u64, max_line_bytes: usize) {
        let path = path.to_path_buf();
        match &self.oversize {
            OversizeEvent::Truncated(e) => e.emit_n(
                LineTruncated {
                    path,
                    lines,
                    max_line_bytes,
                },
                lines,
            ),
            OversizeEvent::Dropped(e) => e.emit_n(
                LineDropped {
                    path,
                    lines,
                    max_line_bytes,
                },
                lines,
            ),
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

pub(super) struct Tailer {
    config: FileSourceConfig,
    multiline: Option<(Rule, Duration)>,
    id: String,
    out: Fanout,
    /// Lines that cannot be decoded.
    dropped: Fanout,
    shutdown: ShutdownSignal,
    metrics: Arc<ComponentMetrics>,
    events: TailEvents,
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
    pub(super) fn new(
        src: FileSource,
        id: String,
        out: Outputs,
        shutdown: ShutdownSignal,
        metrics: Arc<ComponentMetrics>,
        ck: mpsc::UnboundedSender<Message>,
        rt: tokio::runtime::Handle,
    ) -> Self {
        let host = crate::event::interned(&gethostname::gethostname().to_string_lossy());
        let events = TailEvents::new(&metrics, src.config.oversize_lines);
        let mut t = Tailer {
            config: src.config,
            multiline: src.multiline,
            id,
            dropped: out.named("dropped").cloned().unwrap_or_default(),
            out: out.default,
            shutdown,
            metrics,
            events,
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

    pub(super) fn restore(&mut self, entries: Vec<Entry>) {
        for entry in entries {
            self.track(entry, None);
        }
    }

    fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub(super) fn run(&mut self) {
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
            let watched = self.files.iter().filter(|f| f.file.is_some()).count();
            self.events.files_watched.set(watched as u64);
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

    /// Reads a batch from every open file; true when anything was read. Measures
    /// how far reading is behind the files' ends.
    fn read_all(&mut self) -> bool {
        let mut progressed = false;
        let mut behind = 0u64;
        for i in 0..self.files.len() {
            if self.stopped || self.shutdown.is_triggered() {
                // Not every file was measured: the gauge keeps its last value.
                self.stopped = true;
                return progressed;
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
            let t = &self.files[i];
            behind += t.size.saturating_sub(t.reader.read_pos());
        }
        self.events.bytes_behind.set(behind);
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
        let decoding = self.config.decoding;
        let component = &self.id;
        let mut bad: EventBatch = Vec::new();
        let mut undecodable: Option<(u64, String)> = None;
        let mut make = |message: &[u8], offset: u64| {
            bytes_in += message.len() as u64 + 1;
            let (mut m, good) = match decoding::line_fields(decoding, message, &mut invalid_utf8) {
                Ok(m) => (m, true),
                Err(reason) => {
                    let count = undecodable.get_or_insert((0, reason.clone()));
                    count.0 += 1;
                    (decoding::undecodable(message, reason, component), false)
                }
            };
            m.entry(KeyString::from("file")).or_insert_with(|| path_value.clone());
            m.entry(KeyString::from("host")).or_insert_with(|| host.clone());
            m.entry(KeyString::from("timestamp")).or_insert(Value::Timestamp(now));
            m.entry(KeyString::from("offset"))
                .or_insert(Value::Integer(offset as i64));
            let event = Event::from_map(m).with_notifier(&notifier);
            if good { batch.push(event) } else { bad.push(event) }
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
            Err(error) => {
                self.events.read_failed.emit(ReadFailed {
                    path: t.path.clone(),
                    error,
                    first_bytes: false,
                });
                return false;
            }
        };
        t.at_eof = stats.eof;
        if stats.bytes > 0 {
            t.last_data = Instant::now();
        }
        if stats.oversize > 0 {
            self.events.oversize(&t.path, stats.oversize, max_line);
        }
        if let Some((lines, reason)) = undecodable {
            self.events.undecodable.emit_n(
                UndecodableLines {
                    path: t.path.clone(),
                    lines,
                    reason,
                },
                lines,
            );
        }
        if invalid_utf8 > 0 {
            self.events.invalid_utf8.emit_n(
                InvalidUtf8 {
                    path: t.path.clone(),
                    lines: invalid_utf8,
                },
                invalid_utf8,
            );
        }
        let end = match &t.pending {
            Some(p) => p.offset.min(t.reader.safe_pos()),
            None => t.reader.safe_pos(),
        };
        let id = t.id;
        let progressed = stats.bytes > 0 || !batch.is_empty() || !bad.is_empty();
        self.emit(id, (batch, bad), end, notifier, ack, bytes_in);
        progressed
    }

    /// Sends a batch and hands its acknowledgement to the checkpointer.
    /// `batch` goes to the default output, `bad` (undecodable lines) to `dropped`.
    fn emit(
        &mut self,
        id: u64,
        (batch, bad): (EventBatch, EventBatch),
        end: u64,
        notifier: Arc<BatchNotifier>,
        ack: crate::ack::BatchReceiver,
        bytes: u64,
    ) {
        drop(notifier);
        let Some(t) = self.files.iter_mut().find(|t| t.id == id) else {
            return;
        };
        if end <= t.sent_end && batch.is_empty() && bad.is_empty() {
            return;
        }
        t.sent_end = t.sent_end.max(end);
        let events = (batch.len() + bad.len()) as u64;
        let _ = self.ck.send(Message::Batch { id, end, events, ack });
        if events == 0 {
            return;
        }
        self.metrics.received(events, bytes);
        if !bad.is_empty() {
            let dropped = self.dropped.clone();
            if !self.send_while_watching(&dropped, bad) {
                self.stopped = true;
            }
        }
        let out = self.out.clone();
        if !batch.is_empty() && !self.send_while_watching(&out, batch) {
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
    fn send_while_watching(&mut self, out: &Fanout, batch: EventBatch) -> bool {
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
        let bytes = p.message.len() as u64;
        let mut invalid_utf8 = 0;
        let decoded = decoding::line_fields(self.config.decoding, &p.message, &mut invalid_utf8);
        let good = decoded.is_ok();
        let mut m = decoded.unwrap_or_else(|reason| {
            self.events.undecodable.emit(UndecodableLines {
                path: t.path.clone(),
                lines: 1,
                reason: reason.clone(),
            });
            decoding::undecodable(&p.message, reason, &self.id)
        });
        m.entry(KeyString::from("file")).or_insert_with(|| t.path_value.clone());
        m.entry(KeyString::from("host")).or_insert_with(|| self.host.clone());
        m.entry(KeyString::from("timestamp"))
            .or_insert(Value::Timestamp(chrono::Utc::now()));
        m.entry(KeyString::from("offset"))
            .or_insert(Value::Integer(p.offset as i64));
        let event = Event::from_map(m).with_notifier(&notifier);
        let (id, end) = (t.id, t.reader.safe_pos());
        let batches = if good {
            (vec![event], vec![])
        } else {
            (vec![], vec![event])
        };
        self.emit(id, batches, end, notifier, ack, bytes);
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
