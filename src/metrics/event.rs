//! Internal events: one type per thing that can happen inside a component (a request
//! refused, a line truncated, a bulk item retried), each with a static [`EventSpec`]
//! saying what it counts as. A component gets an [`Emitter`] for each of its event
//! types when it is built; `emit` bumps the counter (one relaxed atomic add) and writes
//! the event's log line, throttled to once a second per event type and component,
//! telling how many were not logged in between.
//!
//! The registry entry of every component type lists the specs of the events it emits,
//! so the counter tables of the documentation are generated from these types and
//! cannot drift; asking for an emitter of an undeclared event is a bug caught when the
//! component is built.

use crate::error::Fault;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Where in a component an error happened (the `stage` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Taking data in: reading a file, a request, a broker message.
    Receiving,
    /// Transforming or encoding.
    Processing,
    /// Writing or delivering it.
    Sending,
}

impl Stage {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Receiving => "receiving",
            Stage::Processing => "processing",
            Stage::Sending => "sending",
        }
    }
}

/// What an internal event is counted as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counts {
    /// `pipe_component_errors_total{error_code = name, error_type = fault, stage}`.
    Error { fault: Fault, stage: Stage },
    /// `pipe_component_discarded_events_total{reason = name, intentional}`: events
    /// that go no further.
    Discarded { intentional: bool },
    /// A counter of its own, `metric` (a full Prometheus name ending in `_total`),
    /// for things that are neither errors nor discards (a rebalance, a retried item).
    Counter { metric: &'static str },
}

/// The static description of one internal event type.
#[derive(Debug, PartialEq, Eq)]
pub struct EventSpec {
    /// Its name: the `error_code` or `reason` label, and its key in the exit summary.
    pub name: &'static str,
    /// What it counts as.
    pub counts: Counts,
    /// What happened, for the generated docs (one or two sentences).
    pub doc: &'static str,
}

impl EventSpec {
    /// The Prometheus metric this event adds to.
    pub fn metric(&self) -> &'static str {
        match self.counts {
            Counts::Error { .. } => "pipe_component_errors_total",
            Counts::Discarded { .. } => "pipe_component_discarded_events_total",
            Counts::Counter { metric } => metric,
        }
    }
}

/// One kind of thing that happens in a component.
pub trait InternalEvent {
    /// What it is and what it counts as.
    const SPEC: EventSpec;
    /// Writes the log line for this occurrence. `component` is the component id;
    /// `suppressed` how many occurrences were not logged since the last line.
    fn log(&self, component: &str, suppressed: u64);
}

/// The counter and log throttle of one event type in one component, shared by all
/// its emitters.
#[derive(Debug, Default)]
pub(super) struct Slot {
    pub(super) counter: AtomicU64,
    throttle: Throttle,
}

/// Counts and logs events of type `E` for one component.
pub struct Emitter<E> {
    slot: Arc<Slot>,
    component: Arc<str>,
    _event: PhantomData<fn(E)>,
}

impl<E> Clone for Emitter<E> {
    fn clone(&self) -> Self {
        Emitter {
            slot: self.slot.clone(),
            component: self.component.clone(),
            _event: PhantomData,
        }
    }
}

impl<E: InternalEvent> Emitter<E> {
    pub(super) fn new(slot: Arc<Slot>, component: Arc<str>) -> Self {
        Emitter {
            slot,
            component,
            _event: PhantomData,
        }
    }

    /// Counts one occurrence and logs it (throttled).
    pub fn emit(&self, event: E) {
        self.emit_n(event, 1);
    }

    /// Counts `n` occurrences (e.g. events in a refused batch) and logs (throttled).
    pub fn emit_n(&self, event: E, n: u64) {
        if n == 0 {
            return;
        }
        self.slot.counter.fetch_add(n, Ordering::Relaxed);
        if let Some(suppressed) = self.slot.throttle.due(n) {
            event.log(&self.component, suppressed);
        }
    }

    /// Counts `n` occurrences without a log line (for events logged elsewhere, e.g.
    /// once per outage by [`crate::retry::Retry`]).
    pub fn count(&self, n: u64) {
        self.slot.counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The total so far.
    pub fn total(&self) -> u64 {
        self.slot.counter.load(Ordering::Relaxed)
    }
}

/// Lets one log line through per second; counts what it held back.
#[derive(Debug, Default)]
struct Throttle {
    last_sec: AtomicU64,
    held: AtomicU64,
}

impl Throttle {
    /// `Some(held back since the last line)` when a line may be written now.
    fn due(&self, n: u64) -> Option<u64> {
        let now = now_secs();
        if self.last_sec.swap(now, Ordering::Relaxed) != now {
            Some(self.held.swap(0, Ordering::Relaxed))
        } else {
            self.held.fetch_add(n, Ordering::Relaxed);
            None
        }
    }
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
