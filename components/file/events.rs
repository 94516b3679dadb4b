//! The internal events and gauges of the `file` source and sink.

use crate::error::Fault;
use crate::metrics::common::{refusal, retried_failure};
use crate::metrics::{Counts, EventSpec, GaugeSpec, InternalEvent, Stage};
use std::path::PathBuf;

// ----- The `file` source -----

/// Files the source currently holds open and follows.
pub static FILES_WATCHED: GaugeSpec = GaugeSpec {
    metric: "pipe_file_source_files_watched",
    labels: &[],
    doc: "Files the source currently holds open and follows (including rotated files not yet read to their end).",
};

/// How far reading is behind the files' ends.
pub static BYTES_BEHIND: GaugeSpec = GaugeSpec {
    metric: "pipe_file_source_bytes_behind",
    labels: &[],
    doc: "Bytes not read yet, summed over the followed files (each file's size minus the offset read up to); measured as the files are polled.",
};

/// A file matched by the globs cannot be opened.
pub struct OpenFailed {
    pub path: PathBuf,
    pub error: std::io::Error,
}

impl InternalEvent for OpenFailed {
    const SPEC: EventSpec = EventSpec {
        name: "open",
        counts: Counts::Error {
            fault: Fault::External,
            stage: Stage::Receiving,
        },
        doc: "A file matched by the globs cannot be opened (permissions, removed meanwhile); it is tried again at the next scan.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::warn!(component, suppressed, path = %self.path.display(), error = %self.error, "Cannot open file; will retry.");
    }
}

/// Reading a file failed.
pub struct ReadFailed {
    pub path: PathBuf,
    pub error: std::io::Error,
    /// True when reading its first bytes (the fingerprint) of a file just opened.
    pub first_bytes: bool,
}

impl InternalEvent for ReadFailed {
    const SPEC: EventSpec = EventSpec {
        name: "read",
        counts: Counts::Error {
            fault: Fault::External,
            stage: Stage::Receiving,
        },
        doc: "Reading a file failed (an I/O error); it is read again from the same offset.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        if self.first_bytes {
            tracing::warn!(component, suppressed, path = %self.path.display(), error = %self.error, "Cannot read file; will retry.");
        } else {
            tracing::warn!(component, suppressed, path = %self.path.display(), error = %self.error, "Read failed; will retry.");
        }
    }
}

/// A file was truncated or rewritten in place.
pub struct FileTruncated {
    pub path: PathBuf,
    pub read_up_to: u64,
}

impl InternalEvent for FileTruncated {
    const SPEC: EventSpec = EventSpec {
        name: "file_truncated",
        counts: Counts::Error {
            fault: Fault::External,
            stage: Stage::Receiving,
        },
        doc: "A file became shorter than what was read, or its first bytes changed (copytruncate); it is read again from the start. Lines written between the last read and the truncation are lost.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::warn!(component, suppressed, path = %self.path.display(), read_up_to = self.read_up_to, "File was truncated or rewritten in place (copytruncate?); reading it again from the start.");
    }
}

/// Lines longer than `max_line_bytes` were cut (`oversize_lines = "truncate"`).
pub struct LineTruncated {
    pub path: PathBuf,
    pub lines: u64,
    pub max_line_bytes: usize,
}

impl InternalEvent for LineTruncated {
    const SPEC: EventSpec = EventSpec {
        name: "line_too_long",
        counts: Counts::Error {
            fault: Fault::Data,
            stage: Stage::Receiving,
        },
        doc: "Lines longer than `max_line_bytes` were cut to that length (`oversize_lines = \"truncate\"`); the rest of each was skipped.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::warn!(component, suppressed, path = %self.path.display(), lines = self.lines, max_line_bytes = self.max_line_bytes, action = ?super::lines::Oversize::Truncate, "Lines longer than max_line_bytes.");
    }
}

/// Lines longer than `max_line_bytes` were dropped (`oversize_lines = "drop"`).
pub struct LineDropped {
    pub path: PathBuf,
    pub lines: u64,
    pub max_line_bytes: usize,
}

impl InternalEvent for LineDropped {
    const SPEC: EventSpec = EventSpec {
        name: "line_too_long",
        counts: Counts::Discarded { intentional: false },
        doc: "Lines longer than `max_line_bytes` were dropped (`oversize_lines = \"drop\"`).",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::warn!(component, suppressed, path = %self.path.display(), lines = self.lines, max_line_bytes = self.max_line_bytes, action = ?super::lines::Oversize::Drop, "Lines longer than max_line_bytes.");
    }
}

/// Lines held bytes that are not UTF-8.
pub struct InvalidUtf8 {
    pub path: PathBuf,
    pub lines: u64,
}

impl InternalEvent for InvalidUtf8 {
    const SPEC: EventSpec = EventSpec {
        name: "invalid_utf8",
        counts: Counts::Error {
            fault: Fault::Data,
            stage: Stage::Receiving,
        },
        doc: "Lines held bytes that are not UTF-8; each such byte sequence was replaced with U+FFFD.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::warn!(component, suppressed, path = %self.path.display(), lines = self.lines, "Invalid UTF-8 replaced with U+FFFD.");
    }
}

/// Lines that are not what `decoding` says went to the `dropped` output.
pub struct UndecodableLines {
    pub path: PathBuf,
    pub lines: u64,
    pub reason: String,
}

impl InternalEvent for UndecodableLines {
    const SPEC: EventSpec = EventSpec {
        name: "undecodable",
        counts: Counts::Discarded { intentional: false },
        doc: "Lines that cannot be decoded as `decoding` says (not JSON); they went to the `dropped` output with the line as `message`.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::warn!(component, suppressed, path = %self.path.display(), lines = self.lines, reason = %self.reason, "Lines cannot be decoded; they go to the dropped output.");
    }
}

/// A batch came back errored: its file's checkpoint stays put.
pub struct UndeliveredBatch {
    pub file_id: u64,
}

impl InternalEvent for UndeliveredBatch {
    const SPEC: EventSpec = EventSpec {
        name: "undelivered_batch",
        counts: Counts::Error {
            fault: Fault::External,
            stage: Stage::Sending,
        },
        doc: "A batch was not delivered by a sink; the file's checkpoint stays where it is, so a restart reads those lines again. Counted once per file until the source restarts.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::error!(
            component,
            suppressed,
            file_id = self.file_id,
            "A batch was not delivered; this file's checkpoint stays where it is so a restart reads those lines again."
        );
    }
}

/// A batch came back rejected: a sink refused its events for good.
pub struct RejectedBySink {
    pub file_id: u64,
}

impl InternalEvent for RejectedBySink {
    const SPEC: EventSpec = EventSpec {
        name: "rejected_by_sink",
        counts: Counts::Error {
            fault: Fault::Data,
            stage: Stage::Sending,
        },
        doc: "A batch was refused for good by a sink (the sink counts and logs why); the checkpoint moves past it.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::debug!(
            component,
            suppressed,
            file_id = self.file_id,
            "A batch was rejected by a sink; its lines are not read again."
        );
    }
}

/// The checkpoint file cannot be written.
pub struct CheckpointWriteFailed {
    pub path: PathBuf,
    pub error: std::io::Error,
}

impl InternalEvent for CheckpointWriteFailed {
    const SPEC: EventSpec = EventSpec {
        name: "checkpoint_write",
        counts: Counts::Error {
            fault: Fault::External,
            stage: Stage::Receiving,
        },
        doc: "The checkpoint file cannot be written (disk full, permissions); it is written again at the next interval. Until then a restart reads more lines again.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::error!(component, suppressed, path = %self.path.display(), error = %self.error, "Cannot write checkpoints; will retry.");
    }
}

// ----- The `file` sink -----

/// Files the sink holds open.
pub static OPEN_FILES: GaugeSpec = GaugeSpec {
    metric: "pipe_file_sink_open_files",
    labels: &[],
    doc: "Files the sink holds open (at most `max_open_files`).",
};

/// An event's path template cannot be rendered.
pub struct PathNotRendered {
    pub reason: String,
}

impl InternalEvent for PathNotRendered {
    const SPEC: EventSpec = EventSpec {
        name: "template",
        counts: Counts::Error {
            fault: Fault::Data,
            stage: Stage::Processing,
        },
        doc: "An event's path cannot be rendered from the template (a field missing, a value that makes an empty segment); the event is refused (`unwritable_path`).",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::debug!(component, suppressed, reason = %self.reason, "Cannot render an event's path; the event is refused.");
    }
}

/// The file an event's path names cannot be opened because of the path itself.
pub struct PathNotOpened {
    pub reason: String,
}

impl InternalEvent for PathNotOpened {
    const SPEC: EventSpec = EventSpec {
        name: "open",
        counts: Counts::Error {
            fault: Fault::Data,
            stage: Stage::Sending,
        },
        doc: "The file an event's rendered path names cannot be opened (a directory or symlink in the way, a name refused); the event is refused (`unwritable_path`).",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::debug!(component, suppressed, reason = %self.reason, "Cannot open the file of an event's path; the event is refused.");
    }
}

refusal!(
    /// Events whose rendered path cannot be written.
    UnwritablePath,
    "unwritable_path",
    "Events whose rendered path cannot be written (a directory in the way, a name too long); they went to the `dropped` output, or were rejected."
);

retried_failure!(
    /// Opening or writing a file failed and is retried.
    WriteFailed,
    "io",
    Sending,
    "Opening or writing an output file failed (disk full, permissions); it is retried with backoff."
);
