//! The file source's checkpoints: for every known file (by fingerprint, device and
//! inode) the offset up to which its lines are acknowledged by every sink.
//!
//! The [`Checkpointer`] task receives, in the order the reader emitted them, the
//! identity of each file and one acknowledgement receiver per batch. It advances a
//! file's offset only when that batch (and so every earlier one of the same file) is
//! delivered, and writes the whole set atomically (temp file, fsync, rename, fsync of
//! the directory) at most every `interval`, and once more when the source stops. A
//! batch that comes back errored freezes its file's checkpoint, so a restart reads
//! those lines again.

use super::events::{CheckpointWriteFailed, RejectedBySink, UndeliveredBatch};
use super::fingerprint::Fingerprint;
use crate::ack::{self, BatchReceiver, BatchStatus};
use crate::metrics::{ComponentMetrics, Emitter};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// One file's checkpoint as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub fingerprint: Fingerprint,
    pub dev: u64,
    pub ino: u64,
    /// The path it was last seen at (informational).
    pub path: PathBuf,
    /// Lines before this offset are acknowledged.
    pub offset: u64,
}

#[derive(Serialize, Deserialize)]
struct StoredFile {
    version: u32,
    files: Vec<Entry>,
}

/// Loads the checkpoints at `path`; a missing file means none.
pub fn load(path: &Path) -> Result<Vec<Entry>, String> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice::<StoredFile>(&bytes)
            .map(|s| s.files)
            .map_err(|e| format!("checkpoint file {} is unreadable: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("cannot read checkpoint file {}: {e}", path.display())),
    }
}

/// Writes `entries` to `path` atomically.
pub fn store(path: &Path, entries: &[&Entry]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("json.tmp");
    let body = serde_json::to_vec(&serde_json::json!({ "version": 1, "files": entries }))?;
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&body)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// What the reader tells the checkpointer.
pub enum Message {
    /// A file's identity (new, renamed, or with a longer fingerprint).
    Track { id: u64, entry: Entry },
    /// The reader no longer knows this file.
    Forget { id: u64 },
    /// A batch of `events` of `id`'s lines ending at `end`; resolves when delivered.
    Batch {
        id: u64,
        end: u64,
        events: u64,
        ack: BatchReceiver,
    },
}

/// Applies acknowledgements in order and persists them.
pub struct Checkpointer {
    pub path: PathBuf,
    pub interval: Duration,
    pub metrics: Arc<ComponentMetrics>,
    pub events: CheckpointEvents,
}

/// The events the checkpointer emits.
pub struct CheckpointEvents {
    undelivered: Emitter<UndeliveredBatch>,
    rejected: Emitter<RejectedBySink>,
    write_failed: Emitter<CheckpointWriteFailed>,
}

impl CheckpointEvents {
    /// The emitters of the component counted by `metrics`.
    pub fn new(metrics: &ComponentMetrics) -> Self {
        CheckpointEvents {
            undelivered: metrics.emitter(),
            rejected: metrics.emitter(),
            write_failed: metrics.emitter(),
        }
    }
}

impl Checkpointer {
    /// Runs until the reader hangs up and every batch is resolved.
    pub async fn run(self, mut rx: mpsc::UnboundedReceiver<Message>) {
        let mut entries: BTreeMap<u64, Entry> = BTreeMap::new();
        let mut frozen: BTreeMap<u64, ()> = BTreeMap::new();
        let mut dirty = false;
        let mut last_write = Instant::now();
        loop {
            let wait = if dirty {
                self.interval.saturating_sub(last_write.elapsed())
            } else {
                self.interval
            };
            let msg = match tokio::time::timeout(wait, rx.recv()).await {
                Ok(Some(m)) => Some(m),
                Ok(None) => break,
                Err(_) => None,
            };
            match msg {
                Some(Message::Track { id, entry }) => {
                    // Only acknowledgements move a known file's offset; a new identity
                    // starts where the reader starts it.
                    let offset = entries.get(&id).map_or(entry.offset, |e| e.offset);
                    entries.insert(id, Entry { offset, ..entry });
                    dirty = true;
                }
                Some(Message::Forget { id }) => {
                    dirty |= entries.remove(&id).is_some();
                    frozen.remove(&id);
                }
                Some(Message::Batch { id, end, events, ack }) => {
                    let status = ack::wait(ack).await;
                    self.metrics.acknowledged(status, events);
                    if status == BatchStatus::Errored {
                        if frozen.insert(id, ()).is_none() {
                            self.events.undelivered.emit(UndeliveredBatch { file_id: id });
                        }
                    } else if !frozen.contains_key(&id) {
                        if status == BatchStatus::Rejected {
                            self.events.rejected.emit(RejectedBySink { file_id: id });
                        }
                        if let Some(e) = entries.get_mut(&id)
                            && end > e.offset
                        {
                            e.offset = end;
                            dirty = true;
                        }
                    }
                }
                None => {}
            }
            if dirty && last_write.elapsed() >= self.interval {
                // A failed write stays dirty: it is tried again after the interval.
                dirty = !self.write(&entries);
                last_write = Instant::now();
            }
        }
        self.write(&entries);
    }

    /// Stores `entries`; false when that failed (counted and logged).
    fn write(&self, entries: &BTreeMap<u64, Entry>) -> bool {
        let list: Vec<&Entry> = entries.values().collect();
        match store(&self.path, &list) {
            Ok(()) => true,
            Err(error) => {
                self.events.write_failed.emit(CheckpointWriteFailed {
                    path: self.path.clone(),
                    error,
                });
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ack::BatchNotifier;

    fn entry(offset: u64) -> Entry {
        Entry {
            fingerprint: Fingerprint::of(b"x"),
            dev: 1,
            ino: 2,
            path: "a.log".into(),
            offset,
        }
    }

    #[tokio::test]
    async fn advances_in_order_and_freezes_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoints.json");
        let (tx, rx) = mpsc::unbounded_channel();
        let metrics = ComponentMetrics::unchecked("f", "source");
        let cp = Checkpointer {
            path: path.clone(),
            interval: Duration::from_millis(10),
            events: CheckpointEvents::new(&metrics),
            metrics: metrics.clone(),
        };
        let task = tokio::spawn(cp.run(rx));
        tx.send(Message::Track { id: 1, entry: entry(0) }).unwrap();
        let (n1, r1) = BatchNotifier::new();
        let (n2, r2) = BatchNotifier::new();
        let (n3, r3) = BatchNotifier::new();
        tx.send(Message::Batch {
            id: 1,
            end: 10,
            events: 3,
            ack: r1,
        })
        .unwrap();
        tx.send(Message::Batch {
            id: 1,
            end: 20,
            events: 4,
            ack: r2,
        })
        .unwrap();
        tx.send(Message::Batch {
            id: 1,
            end: 30,
            events: 5,
            ack: r3,
        })
        .unwrap();
        // The second batch is acknowledged first: nothing may move past the first.
        drop(n2);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(load(&path).unwrap().iter().all(|e| e.offset == 0));
        drop(n1);
        n3.update(BatchStatus::Errored);
        drop(n3);
        drop(tx);
        task.await.unwrap();
        assert_eq!(load(&path).unwrap(), vec![entry(20)]);
        let s = metrics.snapshot();
        assert_eq!(
            (s.acknowledged["delivered"], s.acknowledged["errored"]),
            (7, 5),
            "acknowledgements are counted by events"
        );
        assert_eq!(s.errors["undelivered_batch"], 1);
    }

    #[tokio::test]
    async fn a_failed_write_is_counted_and_tried_again() {
        let dir = tempfile::tempdir().unwrap();
        // A file where the state directory should be: every write fails.
        std::fs::write(dir.path().join("state"), b"").unwrap();
        let path = dir.path().join("state").join("checkpoints.json");
        let (tx, rx) = mpsc::unbounded_channel();
        let metrics = ComponentMetrics::unchecked("f", "source");
        let cp = Checkpointer {
            path,
            interval: Duration::from_millis(10),
            events: CheckpointEvents::new(&metrics),
            metrics: metrics.clone(),
        };
        let task = tokio::spawn(cp.run(rx));
        tx.send(Message::Track { id: 1, entry: entry(0) }).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(tx);
        task.await.unwrap();
        // Retried while dirty, and once more at the end.
        assert!(metrics.snapshot().errors["checkpoint_write"] >= 3);
    }
}
