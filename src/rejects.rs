//! Where a sink puts the events it refuses for good (a [`Fault::Data`] failure): to
//! its `dropped` output when something consumes it, each event carrying
//! `dropped.reason` and `dropped.component`; otherwise they are acknowledged as
//! rejected. Either way they are counted and logged (throttled), and never hold up
//! the other events.
//!
//! [`Fault::Data`]: crate::error::Fault::Data

use crate::ack::BatchStatus;
use crate::component::{Fanout, SinkContext};
use crate::event::Event;
use crate::metrics::ComponentMetrics;
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

    /// Refuses events already marked with [`Rejects::mark`], counted as `counter`.
    pub async fn send(&self, events: Vec<Event>, counter: &str) {
        if events.is_empty() {
            return;
        }
        let n = events.len() as u64;
        self.metrics.discarded(counter, n);
        let consumed = !self.dropped.is_empty();
        if self.metrics.log_due() {
            let reason = events
                .first()
                .and_then(|e| e.get_path("dropped.reason"))
                .map(crate::event::value_to_string)
                .unwrap_or_default();
            if consumed {
                tracing::warn!(component = %self.metrics.id, events = n, reason = %reason, "Refused events for good; they go to the dropped output.");
            } else {
                tracing::error!(component = %self.metrics.id, events = n, reason = %reason, "Refused events for good; nothing reads the dropped output, so they are rejected.");
            }
        }
        if consumed {
            self.dropped.send(events).await;
        } else {
            for e in events {
                e.finalize(BatchStatus::Rejected);
            }
        }
    }

    /// Refuses `events` for one `reason`, counted as `counter`.
    pub async fn reject(&self, events: Vec<Event>, reason: &str, counter: &str) {
        let marked = events.into_iter().map(|e| self.mark(e, reason)).collect();
        self.send(marked, counter).await;
    }

    /// Refuses acknowledgements of events no longer at hand (e.g. rows already in a
    /// file that cannot be placed), counted as `counter`.
    pub fn reject_finalizers(&self, mut finalizers: crate::ack::Finalizers, events: u64, reason: &str, counter: &str) {
        self.metrics.discarded(counter, events);
        tracing::error!(component = %self.metrics.id, events, reason, "Refused events for good; they were rejected.");
        finalizers.finalize(BatchStatus::Rejected);
    }
}
