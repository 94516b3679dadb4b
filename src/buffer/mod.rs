//! A sink's buffer: the `buffer` table of any sink. `memory` (the default) is the
//! input channel itself. `disk` puts a segmented log ([`log`]) between the sink's
//! inputs and the sink, so that a source can let go of data while the sink's
//! downstream is away:
//!
//! - The **writer** takes batches from the inputs, frames each as one record and
//!   appends them, many batches per `fdatasync` (group commit, a few milliseconds at
//!   most). Only once a record is synced are its events acknowledged to their source.
//!   A full buffer (`max_size`) blocks the inputs (`when_full = "block"`) or drops
//!   the batch, acknowledged and counted (`"drop_newest"`). A failed write (a full
//!   disk) is counted, cut back and retried; nothing is acknowledged meanwhile.
//! - The **reader** hands the synced records to the sink in order, each batch with a
//!   new acknowledgement handle. The acknowledged position advances over the records
//!   the sink delivered, without gaps; it is written durably, and a segment is deleted
//!   only once that position is past it. A record the sink rejects for good is
//!   counted `rejected_after_buffer`.
//! - At start the buffer's records past the acknowledged position are read again:
//!   a torn tail is cut off, a damaged record is skipped and counted, a segment that
//!   cannot be read is set aside (`*.unreadable`) and reported. Nothing stops pipe
//!   from starting.

mod codec;
pub mod events;
pub mod log;
#[cfg(test)]
mod tests;

use crate::ack::{self, BatchNotifier, BatchStatus};
use crate::event::{Event, EventBatch};
use crate::metrics::{ComponentMetrics, Emitter, Gauge};
use events::*;
pub use events::{EVENTS_DECLARED, GAUGES};
use log::{RecordMeta, SegmentWriter};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The `buffer` table of a sink.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BufferConfig {
    /// `memory` (default): a few batches in memory; a slow sink pushes back on its
    /// inputs. `disk`: a log under `data_dir/<sink>/buffer/`.
    #[serde(rename = "type", default)]
    pub kind: BufferKind,
    /// Disk: the most bytes the buffer holds (required, at least 1 MiB).
    pub max_size: Option<u64>,
    /// Disk: what happens when it is full. Default `block`.
    #[serde(default)]
    pub when_full: WhenFull,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BufferKind {
    #[default]
    Memory,
    Disk,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// The inputs wait for room (backpressure to the sources).
    #[default]
    Block,
    /// New batches are acknowledged and counted as discarded `buffer_full`.
    DropNewest,
}

impl BufferConfig {
    /// Checks the table; the message names the key.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        match (self.kind, self.max_size) {
            (BufferKind::Disk, None) => Err(("buffer.max_size", "a disk buffer needs `max_size` (bytes)".into())),
            (BufferKind::Disk, Some(n)) if n < 1 << 20 => Err((
                "buffer.max_size",
                format!("{n} bytes is too small; at least 1048576 (1 MiB)"),
            )),
            (BufferKind::Memory, Some(_)) => Err(("buffer.max_size", "is for `type = \"disk\"`".into())),
            _ => Ok(()),
        }
    }
}

/// Why a disk buffer cannot be opened.
#[derive(Debug, thiserror::Error)]
#[error("the disk buffer in {dir}: {error}")]
pub struct OpenError {
    pub dir: PathBuf,
    pub error: std::io::Error,
}

/// A record waiting for the sink.
struct Pending {
    events: u64,
    bytes: u64,
    written_ms: u64,
    errored: bool,
    /// Handed to a sink and not finished with.
    in_flight: bool,
    /// Its segment and place, to read it again.
    place: (u64, RecordMeta),
    /// The reader generation it was handed to (see [`DiskBuffer::reattach`]).
    generation: u64,
}

#[derive(Default)]
struct State {
    /// The next sequence number to write.
    next_seq: u64,
    /// Records written and not yet acknowledged by the sink, by sequence number.
    pending: BTreeMap<u64, Pending>,
    /// Records for the reader: segment first seq and place.
    to_read: VecDeque<(u64, RecordMeta)>,
    /// Segments by first seq, with the last seq written to each.
    segments: BTreeMap<u64, Option<u64>>,
    /// The segment being written.
    active: Option<u64>,
    unacked_bytes: u64,
    unacked_events: u64,
    input_closed: bool,
    reader_done: bool,
    /// Raised by each [`DiskBuffer::reattach`]; records a sink of an older generation
    /// did not deliver are read again.
    generation: u64,
    /// The channel to a reattached sink, for the reader to take up.
    next_output: Option<mpsc::Sender<EventBatch>>,
    max_size: u64,
    when_full: WhenFull,
}

impl State {
    /// Every record below this one was delivered.
    fn acked(&self) -> u64 {
        self.pending.keys().next().copied().unwrap_or(self.next_seq)
    }
}

struct Shared {
    id: String,
    dir: PathBuf,
    /// Holds the directory for this buffer until every thread and handle is gone.
    _claim: DirClaim,
    state: Mutex<State>,
    /// Wakes a reader waiting on a sink that [`DiskBuffer::reattach`] replaced.
    reattached: tokio::sync::Notify,
    changed: Condvar,
    events: Gauge,
    bytes: Gauge,
    oldest: Gauge,
    rejected: Emitter<RejectedAfterBuffer>,
    /// Writes that are made to fail, for tests of a full disk.
    inject_write_errors: AtomicU32,
}

/// The buffer directories open in this process.
static OPEN_DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// A directory taken by one open buffer; released on drop.
struct DirClaim(PathBuf);

impl Drop for DirClaim {
    fn drop(&mut self) {
        OPEN_DIRS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|d| d != &self.0);
    }
}

/// True while a buffer of this process has `dir` open (a sink replaced by a reload
/// that is still draining): its successor waits before it opens the directory.
pub fn in_use(dir: &Path) -> bool {
    OPEN_DIRS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .any(|d| d == dir)
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Shared {
    fn gauges(&self, s: &State) {
        self.events.set(s.unacked_events);
        self.bytes.set(s.unacked_bytes);
        let oldest = s
            .pending
            .values()
            .next()
            .map_or(0, |p| now_ms().saturating_sub(p.written_ms) / 1000);
        self.oldest.set(oldest);
    }

    /// The sink finished with record `seq`.
    fn complete(&self, seq: u64, status: BatchStatus) {
        let mut s = lock(&self.state);
        match status {
            BatchStatus::Errored => {
                let (generation, reader_done) = (s.generation, s.reader_done);
                let Some(p) = s.pending.get_mut(&seq) else { return };
                p.in_flight = false;
                if p.generation < generation && !reader_done {
                    // A sink replaced by a reload let it go: its successor reads it.
                    let place = p.place;
                    let at = s.to_read.partition_point(|(_, m)| m.seq < seq);
                    s.to_read.insert(at, place);
                    tracing::info!(component = %self.id, seq, "A buffered batch the replaced sink did not deliver is read again by its successor.");
                } else {
                    // Lost in flight (a sink stopped at the deadline): kept, so it is
                    // read again at the next start.
                    p.errored = true;
                    tracing::warn!(component = %self.id, seq, "A buffered batch was not delivered; it stays in the buffer and is read again at the next start.");
                }
            }
            status => {
                if let Some(p) = s.pending.remove(&seq) {
                    s.unacked_bytes -= p.bytes;
                    s.unacked_events -= p.events;
                    if status == BatchStatus::Rejected {
                        self.rejected.emit_n(RejectedAfterBuffer, p.events);
                    }
                }
            }
        }
        self.gauges(&s);
        self.changed.notify_all();
    }
}

/// A running disk buffer: await [`DiskBuffer::finish`] after its sink has returned.
pub struct DiskBuffer {
    shared: Arc<Shared>,
    persister: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl DiskBuffer {
    /// Waits (at most `timeout`) until the acknowledged position is written.
    pub async fn finish(&self, timeout: Duration) {
        let handle = self.persister.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(handle) = handle else { return };
        let _ = tokio::time::timeout(timeout, tokio::task::spawn_blocking(move || handle.join())).await;
    }

    /// Hands the buffer to a new sink (a reload replaced its sink): returns what the new
    /// sink reads and its generation. The old sink's input closes; whatever it does
    /// not deliver is read again by the new one. `config` sets the new limits.
    pub fn reattach(&self, config: &BufferConfig) -> (mpsc::Receiver<EventBatch>, u64) {
        let (tx, rx) = mpsc::channel(crate::topology::CHANNEL_BATCHES);
        let mut s = lock(&self.shared.state);
        s.generation += 1;
        s.next_output = Some(tx);
        s.max_size = config.max_size.unwrap_or(u64::MAX);
        s.when_full = config.when_full;
        // What an older sink lost before now is read again too.
        let mut lost: Vec<(u64, RecordMeta)> = Vec::new();
        for p in s.pending.values_mut().filter(|p| p.errored) {
            p.errored = false;
            lost.push(p.place);
        }
        for place in lost {
            let at = s.to_read.partition_point(|(_, m)| m.seq < place.1.seq);
            s.to_read.insert(at, place);
        }
        let generation = s.generation;
        drop(s);
        self.shared.changed.notify_all();
        self.shared.reattached.notify_one();
        (rx, generation)
    }

    /// True while its reader runs (a sink can be attached).
    pub fn is_readable(&self) -> bool {
        !lock(&self.shared.state).reader_done
    }

    /// True while the sink of `generation` is the one reading this buffer.
    pub fn is_read_by(&self, generation: u64) -> bool {
        lock(&self.shared.state).generation == generation
    }

    /// Makes the next `n` writes fail, as a full disk would.
    pub fn inject_write_errors(&self, n: u32) {
        self.shared.inject_write_errors.store(n, Ordering::Relaxed);
    }
}

/// Opens the disk buffer of sink `id` in `dir` and starts it between `input` (what the
/// sink's inputs send) and the returned receiver (what the sink reads).
pub fn open(
    config: &BufferConfig,
    dir: &Path,
    metrics: &Arc<ComponentMetrics>,
    input: mpsc::Receiver<EventBatch>,
) -> Result<(mpsc::Receiver<EventBatch>, DiskBuffer), OpenError> {
    let err = |error| OpenError {
        dir: dir.to_path_buf(),
        error,
    };
    let claim = {
        let mut open = OPEN_DIRS.lock().unwrap_or_else(|p| p.into_inner());
        if open.iter().any(|d| d == dir) {
            let busy = std::io::Error::new(std::io::ErrorKind::ResourceBusy, "another buffer has it open");
            return Err(err(busy));
        }
        open.push(dir.to_path_buf());
        DirClaim(dir.to_path_buf())
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    let shared = Arc::new(Shared {
        id: metrics.id.clone(),
        dir: dir.to_path_buf(),
        _claim: claim,
        state: Mutex::new(State {
            max_size: config.max_size.unwrap_or(u64::MAX),
            when_full: config.when_full,
            ..State::default()
        }),
        reattached: tokio::sync::Notify::new(),
        changed: Condvar::new(),
        events: metrics.gauge(&EVENTS),
        bytes: metrics.gauge(&BYTES),
        oldest: metrics.gauge(&OLDEST_AGE),
        rejected: metrics.emitter(),
        inject_write_errors: AtomicU32::new(0),
    });
    recover(&shared, metrics).map_err(err)?;
    let segment_max = (lock(&shared.state).max_size / 8).clamp(256 << 10, 64 << 20);
    let first = lock(&shared.state).next_seq;
    let writer = SegmentWriter::create(dir, first).map_err(err)?;
    {
        let mut s = lock(&shared.state);
        s.segments.insert(first, None);
        s.active = Some(first);
    }
    let (tx, rx) = mpsc::channel(crate::topology::CHANNEL_BATCHES);
    let runtime = tokio::runtime::Handle::current();
    let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new()
            .name(format!("pipe-buffer-{name}"))
            .spawn(f)
            .map_err(err)
    };
    let (w, w_metrics, w_rt) = (shared.clone(), metrics.clone(), runtime.clone());
    spawn(
        "write",
        Box::new(move || write_loop(&w, &w_metrics, writer, segment_max, input, &w_rt)),
    )?;
    let (r, r_rt) = (shared.clone(), runtime);
    spawn("read", Box::new(move || read_loop(&r, tx, &r_rt)))?;
    let p = shared.clone();
    let persister = std::thread::Builder::new()
        .name("pipe-buffer-ack".into())
        .spawn(move || persist_loop(&p))
        .map_err(err)?;
    Ok((
        rx,
        DiskBuffer {
            shared,
            persister: Mutex::new(Some(persister)),
        },
    ))
}

/// Reads what the buffer holds past its acknowledged position.
fn recover(shared: &Shared, metrics: &ComponentMetrics) -> std::io::Result<()> {
    let dir = &shared.dir;
    let acked = log::read_acked(dir).unwrap_or_else(|e| {
        tracing::error!(component = %shared.id, error = %e, "The disk buffer's acknowledged position cannot be read; everything in it is delivered again.");
        0
    });
    let corrupt: Emitter<CorruptRecords> = metrics.emitter();
    let unreadable: Emitter<UnreadableSegment> = metrics.emitter();
    let segments = log::segments(dir)?;
    let mut s = lock(&shared.state);
    s.next_seq = acked;
    let count = segments.len();
    for (i, (first, path)) in segments.into_iter().enumerate() {
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                unreadable.emit(UnreadableSegment {
                    segment: path.clone(),
                    error: e.to_string(),
                });
                let _ = std::fs::rename(&path, path.with_extension("unreadable"));
                continue;
            }
        };
        let scan = log::scan(&bytes);
        for _ in 0..scan.corrupt {
            corrupt.emit(CorruptRecords { segment: path.clone() });
        }
        if let Some(at) = scan.torn_at {
            if i + 1 == count {
                tracing::warn!(component = %shared.id, segment = %path.display(), offset = at, "The disk buffer's last write was torn by a crash; the unacknowledged tail is cut off.");
                if let Ok(f) = std::fs::OpenOptions::new().write(true).open(&path) {
                    let _ = f.set_len(at).and_then(|()| f.sync_all());
                }
            } else {
                corrupt.emit(CorruptRecords { segment: path.clone() });
            }
        }
        let last = scan.records.last().map(|m| m.seq);
        for m in scan.records.into_iter().filter(|m| m.seq >= acked) {
            s.pending.insert(
                m.seq,
                Pending {
                    events: u64::from(m.events),
                    bytes: m.len,
                    written_ms: m.written_ms,
                    errored: false,
                    in_flight: false,
                    place: (first, m),
                    generation: 0,
                },
            );
            s.unacked_bytes += m.len;
            s.unacked_events += u64::from(m.events);
            s.next_seq = s.next_seq.max(m.seq + 1);
            s.to_read.push_back((first, m));
        }
        match last {
            Some(l) if l < acked => {
                let _ = std::fs::remove_file(&path);
            }
            _ => {
                s.segments.insert(first, last);
            }
        }
    }
    if !s.pending.is_empty() {
        tracing::info!(component = %shared.id, events = s.unacked_events, records = s.pending.len(), "The disk buffer holds undelivered events from before; they are delivered first.");
    }
    shared.gauges(&s);
    Ok(())
}

/// Takes batches from the inputs, writes them durably, acknowledges them.
fn write_loop(
    shared: &Shared,
    metrics: &ComponentMetrics,
    mut segment: SegmentWriter,
    segment_max: u64,
    mut input: mpsc::Receiver<EventBatch>,
    runtime: &tokio::runtime::Handle,
) {
    let failed: Emitter<WriteFailed> = metrics.emitter();
    let full: Emitter<BufferFull> = metrics.emitter();
    let synced: Emitter<Synced> = metrics.emitter();
    /// How long a group waits for more batches before it is synced.
    const GROUP_WAIT: Duration = Duration::from_millis(2);
    const GROUP_BYTES: usize = 4 << 20;
    while let Some(first) = input.blocking_recv() {
        let mut group = vec![first];
        let deadline = Instant::now() + GROUP_WAIT;
        loop {
            match input.try_recv() {
                Ok(b) => group.push(b),
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    match runtime.block_on(async { tokio::time::timeout(left, input.recv()).await }) {
                        Ok(Some(b)) => group.push(b),
                        _ => break,
                    }
                }
            }
            if group.iter().map(Vec::len).sum::<usize>() > 100_000 {
                break;
            }
        }
        // Frame the group's records, waiting for room or dropping when full.
        let mut bytes = Vec::new();
        let mut records: Vec<RecordMeta> = Vec::new();
        let mut accepted: Vec<EventBatch> = Vec::new();
        for batch in group {
            if batch.is_empty() {
                continue;
            }
            let payload = codec::encode(&batch);
            let size = (log::HEADER + payload.len()) as u64;
            let mut s = lock(&shared.state);
            // Room for it beside what is unacknowledged and what this group holds; a
            // batch larger than the whole buffer still goes in when it is empty.
            let fits = |s: &State, reserved: u64| {
                s.unacked_bytes + reserved + size <= s.max_size || (s.pending.is_empty() && reserved == 0)
            };
            if !fits(&s, bytes.len() as u64) {
                if s.when_full == WhenFull::DropNewest {
                    drop(s);
                    full.emit_n(BufferFull, batch.len() as u64);
                    batch.into_iter().for_each(|e| e.finalize(BatchStatus::Delivered));
                    continue;
                }
                if !bytes.is_empty() {
                    // Write what the group has first; this batch waits in the next
                    // group (the loop below syncs, then blocks here again).
                    drop(s);
                    commit(
                        shared,
                        (&failed, &synced),
                        &mut segment,
                        &mut bytes,
                        &mut records,
                        &mut accepted,
                    );
                    s = lock(&shared.state);
                }
                while !fits(&s, 0) && !s.reader_done {
                    s = shared
                        .changed
                        .wait_timeout(s, Duration::from_millis(100))
                        .map(|(g, _)| g)
                        .unwrap_or_else(|p| p.into_inner().0);
                }
                if !fits(&s, 0) {
                    // Full, and no sink reads it any more (it failed, or a reload
                    // removed it): never room again. The batch goes back to its source
                    // undelivered instead of blocking it.
                    drop(s);
                    drop(batch);
                    continue;
                }
            }
            let seq = s.next_seq;
            s.next_seq += 1;
            drop(s);
            if bytes.is_empty() && segment.len >= segment_max {
                roll(shared, &failed, &mut segment, seq);
            }
            let written_ms = now_ms();
            let framed = log::frame(seq, batch.len() as u32, written_ms, &payload);
            records.push(RecordMeta {
                seq,
                events: batch.len() as u32,
                written_ms,
                offset: segment.len + bytes.len() as u64,
                len: framed.len() as u64,
            });
            bytes.extend_from_slice(&framed);
            accepted.push(batch);
            if bytes.len() >= GROUP_BYTES {
                commit(
                    shared,
                    (&failed, &synced),
                    &mut segment,
                    &mut bytes,
                    &mut records,
                    &mut accepted,
                );
            }
        }
        commit(
            shared,
            (&failed, &synced),
            &mut segment,
            &mut bytes,
            &mut records,
            &mut accepted,
        );
    }
    let mut s = lock(&shared.state);
    s.input_closed = true;
    shared.changed.notify_all();
}

/// Starts a new segment at `seq` (the current one is synced already).
fn roll(shared: &Shared, failed: &Emitter<WriteFailed>, segment: &mut SegmentWriter, seq: u64) {
    let mut backoff = Duration::from_millis(50);
    loop {
        match SegmentWriter::create(&shared.dir, seq) {
            Ok(next) => {
                *segment = next;
                let mut s = lock(&shared.state);
                s.segments.insert(seq, None);
                s.active = Some(seq);
                return;
            }
            Err(e) => {
                failed.emit(WriteFailed { error: e.to_string() });
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Writes and syncs the framed `bytes` of `records`, retrying until it succeeds; then
/// hands the records to the reader and acknowledges the batches to their sources.
fn commit(
    shared: &Shared,
    (failed, synced): (&Emitter<WriteFailed>, &Emitter<Synced>),
    segment: &mut SegmentWriter,
    bytes: &mut Vec<u8>,
    records: &mut Vec<RecordMeta>,
    accepted: &mut Vec<EventBatch>,
) {
    if records.is_empty() {
        return;
    }
    let mut backoff = Duration::from_millis(50);
    loop {
        let injected = shared
            .inject_write_errors
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok();
        let result = if injected {
            Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "no space left on device (injected)",
            ))
        } else {
            segment.append_durably(bytes)
        };
        match result {
            Ok(()) => {
                synced.emit(Synced);
                break;
            }
            Err(e) => {
                failed.emit(WriteFailed { error: e.to_string() });
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
    {
        let mut s = lock(&shared.state);
        for (m, batch) in records.iter().zip(accepted.iter()) {
            s.pending.insert(
                m.seq,
                Pending {
                    events: batch.len() as u64,
                    bytes: m.len,
                    written_ms: m.written_ms,
                    errored: false,
                    in_flight: false,
                    place: (segment.first_seq, *m),
                    generation: 0,
                },
            );
            s.unacked_bytes += m.len;
            s.unacked_events += batch.len() as u64;
            s.to_read.push_back((segment.first_seq, *m));
            s.segments.insert(segment.first_seq, Some(m.seq));
        }
        shared.gauges(&s);
        shared.changed.notify_all();
    }
    // Durable: the sources may let go.
    for batch in accepted.drain(..) {
        batch.into_iter().for_each(|e| e.finalize(BatchStatus::Delivered));
    }
    bytes.clear();
    records.clear();
}

/// Hands the durable records to the sink in order, and to its successor after a
/// [`DiskBuffer::reattach`].
fn read_loop(shared: &Arc<Shared>, mut tx: mpsc::Sender<EventBatch>, runtime: &tokio::runtime::Handle) {
    let mut files: HashMap<u64, File> = HashMap::new();
    loop {
        let next = {
            let mut s = lock(&shared.state);
            loop {
                if let Some(next) = s.next_output.take() {
                    tx = next;
                }
                if let Some((first, meta)) = s.to_read.pop_front() {
                    let generation = s.generation;
                    if let Some(p) = s.pending.get_mut(&meta.seq) {
                        p.generation = generation;
                        p.in_flight = true;
                    }
                    break Some((first, meta));
                }
                if s.input_closed || tx.is_closed() {
                    // Decided under the lock: nothing is queued for a reader after this.
                    // A sink gone (failed, or removed by a reload) reads nothing more.
                    s.reader_done = true;
                    break None;
                }
                s = shared
                    .changed
                    .wait_timeout(s, Duration::from_millis(200))
                    .map(|(g, _)| g)
                    .unwrap_or_else(|p| p.into_inner().0);
            }
        };
        let Some((first, meta)) = next else { break };
        files.retain(|k, _| *k >= first);
        let events = read_events(shared, &mut files, first, &meta);
        let Some(events) = events else {
            // Unreadable now: counted as lost, so the position can move past it.
            shared.complete(meta.seq, BatchStatus::Delivered);
            continue;
        };
        let (notifier, done) = BatchNotifier::new();
        let batch: EventBatch = events.into_iter().map(|e| e.with_notifier(&notifier)).collect();
        drop(notifier);
        let waiter = shared.clone();
        runtime.spawn(async move {
            let status = ack::wait(done).await;
            waiter.complete(meta.seq, status);
        });
        // A sink replaced while it pushes back drops this batch: it is read again.
        let sent = runtime.block_on(async {
            let mut send = std::pin::pin!(tx.send(batch));
            loop {
                tokio::select! {
                    sent = &mut send => return sent.is_ok(),
                    () = shared.reattached.notified() => {
                        if lock(&shared.state).next_output.is_some() {
                            return true;
                        }
                    }
                }
            }
        });
        if !sent {
            break;
        }
    }
    lock(&shared.state).reader_done = true;
    shared.changed.notify_all();
}

/// The events of record `meta` in segment `first`, or None (logged) when it is gone.
fn read_events(shared: &Shared, files: &mut HashMap<u64, File>, first: u64, meta: &RecordMeta) -> Option<Vec<Event>> {
    let path = log::segment_path(&shared.dir, first);
    let file = match files.entry(first) {
        std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
        std::collections::hash_map::Entry::Vacant(v) => match File::open(&path) {
            Ok(f) => v.insert(f),
            Err(e) => {
                tracing::error!(component = %shared.id, segment = %path.display(), error = %e, "A disk buffer segment cannot be opened; its record is lost.");
                return None;
            }
        },
    };
    let decoded = log::read_record(file, meta)
        .map_err(|e| e.to_string())
        .and_then(|bytes| {
            let payload = log::payload(&bytes).ok_or("its checksum does not match")?;
            codec::decode(payload, log::MAX_PAYLOAD * 4).map_err(|e| e.to_string())
        });
    match decoded {
        Ok(events) => Some(events),
        Err(e) => {
            tracing::error!(component = %shared.id, segment = %path.display(), seq = meta.seq, error = %e, "A disk buffer record cannot be read back; its events are lost.");
            None
        }
    }
}

/// Writes the acknowledged position when it moves, deletes the segments behind it,
/// and ends once the reader is done and nothing is pending.
fn persist_loop(shared: &Shared) {
    let mut persisted = u64::MAX;
    loop {
        let (acked, finished, behind) = {
            let s = lock(&shared.state);
            let acked = s.acked();
            // What no sink holds stays for the next start.
            let finished = s.reader_done && !s.pending.values().any(|p| p.in_flight);
            // Segments whose every record is below `acked`, except the active one.
            let behind: Vec<u64> = s
                .segments
                .iter()
                .filter(|(first, last)| Some(**first) != s.active && last.is_none_or(|l| l < acked))
                .map(|(first, _)| *first)
                .collect();
            shared.gauges(&s);
            (acked, finished, behind)
        };
        if acked != persisted {
            match log::write_acked(&shared.dir, acked) {
                Ok(()) => {
                    persisted = acked;
                    let mut removed = Vec::new();
                    for first in behind {
                        if std::fs::remove_file(log::segment_path(&shared.dir, first)).is_ok() {
                            removed.push(first);
                        }
                    }
                    if !removed.is_empty() {
                        let _ = log::sync_dir(&shared.dir);
                        let mut s = lock(&shared.state);
                        removed.iter().for_each(|f| {
                            s.segments.remove(f);
                        });
                    }
                }
                Err(e) => {
                    tracing::warn!(component = %shared.id, error = %e, "Cannot write the disk buffer's acknowledged position; it is retried (a restart would deliver some events again).");
                }
            }
        }
        if finished && acked == persisted {
            return;
        }
        let s = lock(&shared.state);
        let _ = shared.changed.wait_timeout(s, Duration::from_millis(50));
    }
}
