//! Internal events several components share, emitted under each one's id: events a
//! sink refused for good, and failed attempts that are retried.

/// Events a sink refused for good (bad data): to its `dropped` output, or rejected.
pub struct Refused {
    /// Why, as shown in `dropped.reason`.
    pub reason: String,
    /// Whether something reads the `dropped` output.
    pub to_dropped_output: bool,
}

impl Refused {
    /// The log line every refusal event writes.
    pub fn log_refused(&self, component: &str, suppressed: u64) {
        if self.to_dropped_output {
            tracing::warn!(component, suppressed, reason = %self.reason, "Refused events for good; they go to the dropped output.");
        } else {
            tracing::error!(component, suppressed, reason = %self.reason, "Refused events for good; nothing reads the dropped output, so they are rejected.");
        }
    }
}

/// Declares a refusal event type named `$name` with the user-facing `$doc`.
macro_rules! refusal {
    ($(#[$m:meta])* $ty:ident, $name:literal, $doc:literal) => {
        $(#[$m])*
        pub struct $ty(pub $crate::metrics::common::Refused);

        impl $crate::metrics::InternalEvent for $ty {
            const SPEC: $crate::metrics::EventSpec = $crate::metrics::EventSpec {
                name: $name,
                counts: $crate::metrics::Counts::Discarded { intentional: false },
                doc: $doc,
            };
            fn log(&self, component: &str, suppressed: u64) {
                self.0.log_refused(component, suppressed);
            }
        }
    };
}
pub(crate) use refusal;

/// A failed attempt at sending, retried with backoff; [`crate::retry::Retry`] logs the
/// outage once, so this event writes no line of its own.
macro_rules! retried_failure {
    ($(#[$m:meta])* $ty:ident, $name:literal, $stage:ident, $doc:literal) => {
        $(#[$m])*
        pub struct $ty;

        impl $crate::metrics::InternalEvent for $ty {
            const SPEC: $crate::metrics::EventSpec = $crate::metrics::EventSpec {
                name: $name,
                counts: $crate::metrics::Counts::Error {
                    fault: $crate::error::Fault::External,
                    stage: $crate::metrics::Stage::$stage,
                },
                doc: $doc,
            };
            fn log(&self, _component: &str, _suppressed: u64) {}
        }
    };
}
pub(crate) use retried_failure;
