//! The internal events of the `remap`, `filter` and `route` transforms, and the
//! emitters each transform takes when it is built.

use crate::error::Fault;
use crate::metrics::{ComponentMetrics, Counts, Emitter, EventSpec, InternalEvent, Stage};
use crate::vrl_program::RunError;
use vrl::value::Value;

/// A condition returned something other than a boolean.
pub struct ConditionNotBoolean {
    pub value: Value,
}

impl InternalEvent for ConditionNotBoolean {
    const SPEC: EventSpec = EventSpec {
        name: "condition_not_boolean",
        counts: Counts::Error {
            fault: Fault::Data,
            stage: Stage::Processing,
        },
        doc: "A condition returned something other than a boolean for an event; it counted as false.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::warn!(component, suppressed, value = %self.value, "Condition returned a non-boolean; treating it as false.");
    }
}

/// A condition failed at run time.
pub struct ConditionFailed {
    pub error: RunError,
}

impl InternalEvent for ConditionFailed {
    const SPEC: EventSpec = EventSpec {
        name: "condition_failed",
        counts: Counts::Error {
            fault: Fault::Data,
            stage: Stage::Processing,
        },
        doc: "A condition failed at run time on an event (or called `abort`); it counted as false.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::warn!(component, suppressed, error = ?self.error, "Condition failed; treating it as false.");
    }
}

/// Events a `filter` condition did not keep.
pub struct Filtered;

impl InternalEvent for Filtered {
    const SPEC: EventSpec = EventSpec {
        name: "filtered",
        counts: Counts::Discarded { intentional: true },
        doc: "Events for which the condition was not true; dropped on purpose and acknowledged as delivered.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::debug!(
            component,
            suppressed,
            "Events did not pass the condition; they are dropped."
        );
    }
}

/// The VRL program failed on an event.
pub struct VrlRuntime {
    pub message: String,
    pub rerouted: bool,
}

impl InternalEvent for VrlRuntime {
    const SPEC: EventSpec = EventSpec {
        name: "vrl_runtime",
        counts: Counts::Error {
            fault: Fault::Data,
            stage: Stage::Processing,
        },
        doc: "The VRL program failed on an event (a fallible function erred); the event went to the `dropped` output (`reroute_dropped = true`) or was dropped (`error`).",
    };
    fn log(&self, component: &str, suppressed: u64) {
        log_failure(component, suppressed, "error", &self.message, self.rerouted);
    }
}

/// The VRL program called `abort` on an event.
pub struct VrlAbort {
    pub message: String,
    pub rerouted: bool,
}

impl InternalEvent for VrlAbort {
    const SPEC: EventSpec = EventSpec {
        name: "vrl_abort",
        counts: Counts::Error {
            fault: Fault::Data,
            stage: Stage::Processing,
        },
        doc: "The VRL program called `abort` on an event (with `drop_on_abort = true`); the event went to the `dropped` output (`reroute_dropped = true`) or was dropped (`abort`).",
    };
    fn log(&self, component: &str, suppressed: u64) {
        log_failure(component, suppressed, "abort", &self.message, self.rerouted);
    }
}

fn log_failure(component: &str, suppressed: u64, reason: &str, message: &str, rerouted: bool) {
    tracing::warn!(component, suppressed, reason, error = %message, "VRL program failed on an event; it is dropped{}.", if rerouted { " to the dropped output" } else { "" });
}

/// Events dropped because the program failed on them (`vrl_runtime` logs them).
pub struct DroppedOnError;

impl InternalEvent for DroppedOnError {
    const SPEC: EventSpec = EventSpec {
        name: "error",
        counts: Counts::Discarded { intentional: false },
        doc: "Events dropped because the VRL program failed on them (without `reroute_dropped`); acknowledged as delivered.",
    };
    fn log(&self, _component: &str, _suppressed: u64) {}
}

/// Events dropped because the program called `abort` (`vrl_abort` logs them).
pub struct DroppedOnAbort;

impl InternalEvent for DroppedOnAbort {
    const SPEC: EventSpec = EventSpec {
        name: "abort",
        counts: Counts::Discarded { intentional: true },
        doc: "Events dropped because the VRL program called `abort` (with `drop_on_abort = true`, without `reroute_dropped`); acknowledged as delivered.",
    };
    fn log(&self, _component: &str, _suppressed: u64) {}
}

/// The emitters of a transform running conditions (`filter`, `route`).
#[derive(Clone)]
pub struct ConditionEvents {
    pub not_boolean: Emitter<ConditionNotBoolean>,
    pub failed: Emitter<ConditionFailed>,
}

impl ConditionEvents {
    /// The emitters of the component counted by `metrics`.
    pub fn new(metrics: &ComponentMetrics) -> Self {
        ConditionEvents {
            not_boolean: metrics.emitter(),
            failed: metrics.emitter(),
        }
    }
}

/// The emitters of a `remap` transform.
#[derive(Clone)]
pub struct RemapEvents {
    pub runtime: Emitter<VrlRuntime>,
    pub abort: Emitter<VrlAbort>,
    pub dropped_on_error: Emitter<DroppedOnError>,
    pub dropped_on_abort: Emitter<DroppedOnAbort>,
}

impl RemapEvents {
    /// The emitters of the component counted by `metrics`.
    pub fn new(metrics: &ComponentMetrics) -> Self {
        RemapEvents {
            runtime: metrics.emitter(),
            abort: metrics.emitter(),
            dropped_on_error: metrics.emitter(),
            dropped_on_abort: metrics.emitter(),
        }
    }
}
