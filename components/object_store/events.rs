//! The internal events of the `object_store` sink.

use crate::error::Fault;
use crate::metrics::common::{refusal, retried_failure};
use crate::metrics::{Counts, EventSpec, GaugeSpec, InternalEvent, Stage};

refusal!(
    /// Events whose object key would be too long.
    KeyTooLong,
    "key_too_long",
    "Events whose rendered object key exceeds the store's limit; they went to the `dropped` output, or were rejected."
);

refusal!(
    /// A finished file the store refused for good.
    UnplaceableFile,
    "unplaceable_file",
    "Events in a finished file the store refused for good (permissions, an invalid key); they were rejected."
);

retried_failure!(
    /// An upload failed and is retried.
    UploadFailed,
    "upload",
    Sending,
    "Uploading a finished file failed (store unreachable, 5xx, timeout); it is retried with backoff."
);

/// `max_open_files` files were open, so the least recently written one was completed
/// early to make room for another partition's.
pub struct MaxOpenFiles {
    pub max_open_files: usize,
}

impl InternalEvent for MaxOpenFiles {
    const SPEC: EventSpec = EventSpec {
        name: "max_open_files",
        counts: Counts::Counter {
            metric: "pipe_object_store_files_completed_at_limit_total",
        },
        doc: "Files completed early because `max_open_files` files were open and an event came for another partition (the least recently written one is completed).",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::debug!(
            component,
            suppressed,
            max_open_files = self.max_open_files,
            "Every file slot is taken; completing the least recently written file."
        );
    }
}

/// What was being done to a staged file when it failed.
#[derive(Debug, Clone, Copy)]
pub enum StagingStep {
    Create,
    Write,
    Finish,
}

/// A staged file could not be created, written or finished on the local disk; its
/// events are not acknowledged and come again from the sources after a restart.
pub struct StagingFailed {
    pub step: StagingStep,
    pub error: String,
}

impl InternalEvent for StagingFailed {
    const SPEC: EventSpec = EventSpec {
        name: "io",
        counts: Counts::Error {
            fault: Fault::External,
            stage: Stage::Processing,
        },
        doc: "A file could not be created, written or finished in the sink's staging directory (disk full, permissions); its events were not acknowledged and come again from the sources.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        let error = &self.error;
        match self.step {
            StagingStep::Create => {
                tracing::error!(component, suppressed, error = %error, "Cannot create a staged file; the event is not acknowledged and comes again after a restart.")
            }
            StagingStep::Write => {
                tracing::error!(component, suppressed, error = %error, "Cannot write a staged file; its events are not acknowledged and come again after a restart.")
            }
            StagingStep::Finish => {
                tracing::error!(component, suppressed, error = %error, "Cannot finish a staged file; its events are not acknowledged and come again after a restart.")
            }
        }
    }
}

/// Files open for writing.
pub static OPEN_FILES: GaugeSpec = GaugeSpec {
    metric: "pipe_object_store_open_files",
    labels: &[],
    doc: "Files open for writing in the staging directory (at most `max_open_files`).",
};

/// Every event the `object_store` sink emits (its own and columnar encoding's), for
/// its registry entry.
pub const EVENTS: &[&EventSpec] = &[
    &KeyTooLong::SPEC,
    &UnplaceableFile::SPEC,
    &UploadFailed::SPEC,
    &MaxOpenFiles::SPEC,
    &StagingFailed::SPEC,
    crate::columnar::EVENTS[0],
    crate::columnar::EVENTS[1],
    crate::columnar::EVENTS[2],
];

/// Every gauge the `object_store` sink sets.
pub const GAUGES: &[&GaugeSpec] = &[&OPEN_FILES, &crate::retry::RETRYING];
