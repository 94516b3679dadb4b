//! End-to-end acknowledgements.
//!
//! A source that wants to know when a batch it emitted is durable creates a
//! [`BatchNotifier`] with [`BatchNotifier::new`] and attaches it to every event of the
//! batch. Every copy of every event derived from the batch holds an `Arc` to the
//! notifier. A sink calls [`crate::event::Event::finalize`] once the event is durable
//! (or rejected); a transform that drops an event on purpose finalizes it as
//! delivered. An event dropped without being finalized (a task aborted at the
//! shutdown deadline, a closed channel) marks its batch as errored, so its source
//! never checkpoints past it. When the last copy is gone the source receives the
//! worst status seen for the batch.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use tokio::sync::oneshot;

/// What finally happened to a batch, ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum BatchStatus {
    /// Every event reached every sink durably, or was dropped on purpose.
    Delivered = 0,
    /// A sink refused at least one event for good (bad data); retrying will not help.
    Rejected = 1,
    /// At least one event was lost in flight (not delivered); the source should keep
    /// it for a later retry, e.g. by not advancing its checkpoint.
    Errored = 2,
}

impl BatchStatus {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => BatchStatus::Delivered,
            1 => BatchStatus::Rejected,
            _ => BatchStatus::Errored,
        }
    }
}

/// Shared by every event of one source batch; reports the batch's status on drop.
#[derive(Debug)]
pub struct BatchNotifier {
    status: AtomicU8,
    tx: Option<oneshot::Sender<BatchStatus>>,
    /// Notifiers of the events this batch was computed from (e.g. the rows of a SQL
    /// window): they hear this batch's status when it completes.
    parents: Finalizers,
}

/// The receiving side of a batch's acknowledgement.
pub type BatchReceiver = oneshot::Receiver<BatchStatus>;

impl BatchNotifier {
    /// A new notifier and the receiver that resolves when every event is finalized.
    pub fn new() -> (Arc<Self>, BatchReceiver) {
        let (tx, rx) = oneshot::channel();
        let notifier = Arc::new(BatchNotifier {
            status: AtomicU8::new(0),
            tx: Some(tx),
            parents: Finalizers::default(),
        });
        (notifier, rx)
    }

    /// A notifier for events computed from others: when every event holding it is
    /// finalized, its status goes to all of `parents`.
    pub fn linked(parents: Finalizers) -> Arc<Self> {
        Arc::new(BatchNotifier {
            status: AtomicU8::new(0),
            tx: None,
            parents,
        })
    }

    /// Records a status for one event; the batch keeps the worst one.
    pub fn update(&self, status: BatchStatus) {
        self.status.fetch_max(status as u8, Ordering::AcqRel);
    }
}

impl Drop for BatchNotifier {
    fn drop(&mut self) {
        let status = BatchStatus::from_u8(self.status.load(Ordering::Acquire));
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(status);
        }
        self.parents.finalize(status);
    }
}

/// Awaits a batch receiver; a notifier that vanished without a status counts as errored.
pub async fn wait(rx: BatchReceiver) -> BatchStatus {
    rx.await.unwrap_or(BatchStatus::Errored)
}

/// The notifiers of many events, deduplicated, so a sink can acknowledge after a flush.
#[derive(Default, Debug)]
pub struct Finalizers(Vec<Arc<BatchNotifier>>);

impl Finalizers {
    /// Keeps a notifier, skipping it when it is the same as the last one kept.
    pub fn push(&mut self, n: Arc<BatchNotifier>) {
        if let Some(last) = self.0.last()
            && Arc::ptr_eq(last, &n)
        {
            return;
        }
        self.0.push(n);
    }

    /// Reports `status` for every kept notifier and releases them.
    pub fn finalize(&mut self, status: BatchStatus) {
        for n in self.0.drain(..) {
            n.update(status);
        }
    }

    /// Moves every notifier of `other` into this set.
    pub fn extend(&mut self, mut other: Finalizers) {
        for n in other.0.drain(..) {
            self.push(n);
        }
    }

    /// True when no notifier is kept.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Drop for Finalizers {
    fn drop(&mut self) {
        self.finalize(BatchStatus::Errored);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn last_drop_reports_worst_status() {
        let (n, rx) = BatchNotifier::new();
        let a = n.clone();
        let b = n.clone();
        drop(n);
        a.update(BatchStatus::Rejected);
        drop(a);
        b.update(BatchStatus::Delivered);
        drop(b);
        assert_eq!(wait(rx).await, BatchStatus::Rejected);
    }

    #[tokio::test]
    async fn a_linked_notifier_reports_to_every_parent() {
        let (a, mut rx_a) = BatchNotifier::new();
        let (b, rx_b) = BatchNotifier::new();
        let mut parents = Finalizers::default();
        parents.push(a);
        parents.push(b);
        let child = BatchNotifier::linked(parents);
        let copy = child.clone();
        child.update(BatchStatus::Delivered);
        drop(child);
        assert!(
            rx_a.try_recv().is_err(),
            "a copy of the derived event is still in flight"
        );
        copy.update(BatchStatus::Rejected);
        drop(copy);
        assert_eq!(wait(rx_a).await, BatchStatus::Rejected);
        assert_eq!(wait(rx_b).await, BatchStatus::Rejected);
    }

    #[tokio::test]
    async fn finalizers_dropped_unfinalized_are_errored() {
        let (n, rx) = BatchNotifier::new();
        let mut f = Finalizers::default();
        f.push(n.clone());
        f.push(n);
        assert_eq!(f.0.len(), 1);
        drop(f);
        assert_eq!(wait(rx).await, BatchStatus::Errored);
    }
}
