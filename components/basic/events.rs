//! The internal events of the `stdin` source and the `console` sink.

use crate::error::Fault;
use crate::metrics::{Counts, EventSpec, InternalEvent, Stage};

/// Lines of standard input longer than `max_line_bytes` were cut.
pub struct LineTruncated {
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
        doc: "Lines longer than `max_line_bytes` were cut to that length.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::warn!(
            component,
            suppressed,
            lines = self.lines,
            max_line_bytes = self.max_line_bytes,
            "Lines longer than max_line_bytes were truncated."
        );
    }
}

/// Writing to standard output failed.
pub struct StdoutFailed {
    pub error: std::io::Error,
}

impl InternalEvent for StdoutFailed {
    const SPEC: EventSpec = EventSpec {
        name: "io",
        counts: Counts::Error {
            fault: Fault::External,
            stage: Stage::Sending,
        },
        doc: "Writing a batch to standard output failed (a closed pipe); its events are acknowledged as errored.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::error!(component, suppressed, error = %self.error, "Cannot write to standard output.");
    }
}

/// A line of standard input is not what `decoding` says.
pub struct UndecodableLine {
    pub line: u64,
    pub reason: String,
}

impl InternalEvent for UndecodableLine {
    const SPEC: EventSpec = EventSpec {
        name: "undecodable",
        counts: Counts::Discarded { intentional: false },
        doc: "Lines that cannot be decoded as `decoding` says (not JSON); they went to the `dropped` output with the line as `message`.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::warn!(component, suppressed, line = self.line, reason = %self.reason, "A line of standard input cannot be decoded; it goes to the dropped output.");
    }
}
