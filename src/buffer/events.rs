//! What a disk buffer reports under its sink's id: its gauges, its errors (damaged
//! records, unreadable segments, failed writes), its discards (full, rejected after
//! the buffer) and its syncs. Declared for every sink, since any sink may have one.

use crate::error::Fault;
use crate::metrics::{Counts, EventSpec, GaugeSpec, InternalEvent, Stage};
use std::path::PathBuf;

/// Events in the buffer the sink has not acknowledged.
pub static EVENTS: GaugeSpec = GaugeSpec {
    metric: "pipe_buffer_events",
    labels: &[],
    doc: "Events in the sink's disk buffer that the sink has not acknowledged yet.",
};
/// Their bytes on disk.
pub static BYTES: GaugeSpec = GaugeSpec {
    metric: "pipe_buffer_bytes",
    labels: &[],
    doc: "Bytes of the records in the sink's disk buffer not acknowledged yet (compressed, with headers).",
};
/// How long the oldest of them has waited.
pub static OLDEST_AGE: GaugeSpec = GaugeSpec {
    metric: "pipe_buffer_oldest_event_age_seconds",
    labels: &[],
    doc: "Seconds since the oldest unacknowledged record of the sink's disk buffer was written.",
};

/// The gauges every sink may set (through its buffer).
pub const GAUGES: &[&GaugeSpec] = &[&EVENTS, &BYTES, &OLDEST_AGE];

/// Records found damaged at start, skipped.
pub struct CorruptRecords {
    pub segment: PathBuf,
}
impl InternalEvent for CorruptRecords {
    const SPEC: EventSpec = EventSpec {
        name: "buffer_corrupt_record",
        counts: Counts::Error {
            fault: Fault::External,
            stage: Stage::Receiving,
        },
        doc: "A damaged stretch of a disk buffer segment (one or more records) was skipped at start; the records in it are lost.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::error!(component, suppressed, segment = %self.segment.display(), "A damaged record in the disk buffer was skipped; its events are lost.");
    }
}

/// A segment that cannot be read, set aside.
pub struct UnreadableSegment {
    pub segment: PathBuf,
    pub error: String,
}
impl InternalEvent for UnreadableSegment {
    const SPEC: EventSpec = EventSpec {
        name: "buffer_unreadable_segment",
        counts: Counts::Error {
            fault: Fault::External,
            stage: Stage::Receiving,
        },
        doc: "A disk buffer segment could not be read at start; it was renamed `*.unreadable` and left for an operator.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::error!(component, suppressed, segment = %self.segment.display(), error = %self.error, "A disk buffer segment cannot be read; it is set aside as *.unreadable.");
    }
}

/// A failed write or sync of the buffer (a full disk), retried.
pub struct WriteFailed {
    pub error: String,
}
impl InternalEvent for WriteFailed {
    const SPEC: EventSpec = EventSpec {
        name: "buffer_write_failed",
        counts: Counts::Error {
            fault: Fault::External,
            stage: Stage::Receiving,
        },
        doc: "Writing or syncing the disk buffer failed (e.g. the disk is full); the batches wait, unacknowledged, and the write is retried.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::error!(component, suppressed, error = %self.error, "Cannot write the disk buffer; its inputs wait and the write is retried.");
    }
}

/// Batches dropped because the buffer was full (`when_full = "drop_newest"`).
pub struct BufferFull;
impl InternalEvent for BufferFull {
    const SPEC: EventSpec = EventSpec {
        name: "buffer_full",
        counts: Counts::Discarded { intentional: true },
        doc: "The disk buffer was full and `when_full = \"drop_newest\"`: the events were acknowledged and dropped.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::warn!(
            component,
            suppressed,
            "The disk buffer is full; new events are dropped (when_full = drop_newest)."
        );
    }
}

/// Events the sink rejected after the buffer had let their source go.
pub struct RejectedAfterBuffer;
impl InternalEvent for RejectedAfterBuffer {
    const SPEC: EventSpec = EventSpec {
        name: "rejected_after_buffer",
        counts: Counts::Discarded { intentional: false },
        doc: "The sink refused buffered events for good and nothing read its `dropped` output; their source had already been acknowledged.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::error!(
            component,
            suppressed,
            "The sink refused buffered events for good; their source was already acknowledged, so they are gone."
        );
    }
}

/// One group of batches written and synced.
pub struct Synced;
impl InternalEvent for Synced {
    const SPEC: EventSpec = EventSpec {
        name: "buffer_synced",
        counts: Counts::Counter {
            metric: "pipe_buffer_syncs_total",
        },
        doc: "A group of batches was written to the disk buffer and synced (one `fdatasync`); their sources were acknowledged.",
    };
    fn log(&self, _component: &str, _suppressed: u64) {}
}

/// The events of the buffer, declared for every sink.
pub const EVENTS_DECLARED: &[&EventSpec] = &[
    &Synced::SPEC,
    &CorruptRecords::SPEC,
    &UnreadableSegment::SPEC,
    &WriteFailed::SPEC,
    &BufferFull::SPEC,
    &RejectedAfterBuffer::SPEC,
];
