//! The internal events and gauges of the `sql` transform, and the emitters it takes
//! when it is built.

use crate::error::Fault;
use crate::metrics::{ComponentMetrics, Counts, Emitter, EventSpec, Gauge, GaugeSpec, InternalEvent, Stage};

/// Events held in open windows.
pub static BUFFERED_EVENTS: GaugeSpec = GaugeSpec {
    metric: "pipe_sql_buffered_events",
    labels: &[],
    doc: "Events held in open windows (an event in several hopping windows counts once per window); at most `max_buffered_events`.",
};

/// An event time too far ahead of the clock.
pub struct FutureTimestamp {
    pub time_field: String,
    pub event_time: Option<String>,
    pub max_future_skew_secs: i64,
}

impl InternalEvent for FutureTimestamp {
    const SPEC: EventSpec = EventSpec {
        name: "future_timestamp",
        counts: Counts::Error {
            fault: Fault::Data,
            stage: Stage::Processing,
        },
        doc: "An event time was further ahead of the clock than `max_future_skew`; the event was windowed as arriving now, its fields unchanged.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::warn!(component, suppressed, time_field = %self.time_field, event_time = ?self.event_time, max_future_skew_secs = self.max_future_skew_secs, "An event time is further ahead of the clock than max_future_skew allows; the event is windowed as arriving now, its fields unchanged.");
    }
}

/// An event too late for any open window.
pub struct Late;

impl InternalEvent for Late {
    const SPEC: EventSpec = EventSpec {
        name: "late",
        counts: Counts::Discarded { intentional: false },
        doc: "Events whose windows had all closed (older than `allowed_lateness` allows); they are counted in no window and go to output `ID.late`.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::debug!(
            component,
            suppressed,
            "Events arrived after their windows closed; they go to the late output."
        );
    }
}

/// Open windows held too much; the oldest was emitted before its end.
pub struct WindowEmittedEarly {
    pub max_buffered_events: usize,
    pub max_buffered_bytes: usize,
}

impl InternalEvent for WindowEmittedEarly {
    const SPEC: EventSpec = EventSpec {
        name: "window_emitted_early",
        counts: Counts::Error {
            fault: Fault::Config,
            stage: Stage::Processing,
        },
        doc: "Open windows held more than `max_buffered_events` or `max_buffered_bytes`; the oldest window was emitted before its end, with what it had so far.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::warn!(
            component,
            suppressed,
            max_buffered_events = self.max_buffered_events,
            max_buffered_bytes = self.max_buffered_bytes,
            "Open windows hold too much; the oldest is emitted before its end."
        );
    }
}

/// The query failed on a batch or window.
pub struct QueryFailed {
    pub error: String,
}

impl InternalEvent for QueryFailed {
    const SPEC: EventSpec = EventSpec {
        name: "query_failed",
        counts: Counts::Error {
            fault: Fault::Data,
            stage: Stage::Processing,
        },
        doc: "The query failed on a batch or window (a cast that does not hold, a column of the wrong type); its input events are acknowledged as rejected.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::error!(component, suppressed, error = %self.error, "The query failed; its input events are reported as rejected.");
    }
}

/// The emitters and gauges of a `sql` transform.
pub struct SqlEvents {
    pub future_timestamp: Emitter<FutureTimestamp>,
    pub late: Emitter<Late>,
    pub emitted_early: Emitter<WindowEmittedEarly>,
    pub query_failed: Emitter<QueryFailed>,
    pub buffered_events: Gauge,
}

impl SqlEvents {
    /// The emitters of the component counted by `metrics`.
    pub fn new(metrics: &ComponentMetrics) -> Self {
        SqlEvents {
            future_timestamp: metrics.emitter(),
            late: metrics.emitter(),
            emitted_early: metrics.emitter(),
            query_failed: metrics.emitter(),
            buffered_events: metrics.gauge(&BUFFERED_EVENTS),
        }
    }
}
