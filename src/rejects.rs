//! Where a sink puts the events it refuses for good (a [`Fault::Data`] failure): to
//! its `dropped` output when something consumes it, each event carrying
//! `dropped.reason` and `dropped.component`; otherwise they are acknowledged as
//! rejected. Either way they are counted and logged (throttled) through the sink's own
//! internal event, and never hold up the other events.
//!
//! [`Fault::Data`]: crate::error::Fault::Data

use crate::ack::BatchStatus;
use crate::component::{Fanout, SinkContext};
use crate::event::Event;
use crate::metrics::common::Refused;
use crate::metrics::{ComponentMetrics, Emitter, InternalEvent};
use std::sync::Arc;
use vrl::value::{ObjectMap, Value};

/// A sink's way out for refused events.
#[derive(Clone)]
pub struct Rejects {
    dropped: Fanout,
    metrics: Arc<ComponentMetrics>,
}

impl Rejects {
    /// The rejects of the sink running in `cx` (its `dropped` output, if declared).
    pub fn new(cx: &SinkContext) -> Self {
        Rejects {
            dropped: cx.out.named("dropped").cloned().unwrap_or_default(),
            metrics: cx.metrics.clone(),
        }
    }

    /// Attaches why `event` is refused, for the `dropped` output.
    pub fn mark(&self, mut event: Event, reason: &str) -> Event {
        let mut why = ObjectMap::new();
        why.insert("reason".into(), Value::from(reason));
        why.insert("component".into(), Value::from(self.metrics.id.as_str()));
        event.insert("dropped", Value::Object(why));
        event
    }

    /// True when something consumes the `dropped` output (for the event's log line).
    pub fn consumed(&self) -> bool {
        !self.dropped.is_empty()
    }

    /// Refuses events already marked with [`Rejects::mark`], counted and logged by
    /// `counter` as the event `make` builds.
    pub async fn send<E: InternalEvent>(&self, events: Vec<Event>, counter: &Emitter<E>, make: fn(Refused) -> E) {
        if events.is_empty() {
            return;
        }
        let reason = events
            .first()
            .and_then(|e| e.get_path("dropped.reason"))
            .map(crate::event::value_to_string)
            .unwrap_or_default();
        let refused = Refused {
            reason,
            to_dropped_output: self.consumed(),
        };
        counter.emit_n(make(refused), events.len() as u64);
        if self.consumed() {
            self.dropped.send(events).await;
        } else {
            for e in events {
                e.finalize(BatchStatus::Rejected);
            }
        }
    }

    /// Refuses `events` for one `reason`, counted and logged like [`Rejects::send`].
    pub async fn reject<E: InternalEvent>(
        &self,
        events: Vec<Event>,
        reason: &str,
        counter: &Emitter<E>,
        make: fn(Refused) -> E,
    ) {
        let marked = events.into_iter().map(|e| self.mark(e, reason)).collect();
        self.send(marked, counter, make).await;
    }

    /// Refuses acknowledgements of events no longer at hand (e.g. rows already in a
    /// file that cannot be placed), counted and logged like [`Rejects::send`].
    pub fn reject_finalizers<E: InternalEvent>(
        &self,
        mut finalizers: crate::ack::Finalizers,
        events: u64,
        reason: &str,
        counter: &Emitter<E>,
        make: fn(Refused) -> E,
    ) {
        let refused = Refused {
            reason: reason.to_string(),
            to_dropped_output: false,
        };
        counter.emit_n(make(refused), events);
        finalizers.finalize(BatchStatus::Rejected);
    }
}
