//! The `filter` transform: keeps events for which a VRL condition is true. Events it
//! drops are acknowledged as delivered (dropped on purpose) and counted; a condition
//! that fails or is not a boolean counts as false and as an error.

use crate::ack::BatchStatus;
use crate::component::{BuildContext, BuildError, Built, Transform, TransformOutput, parse_options};
use crate::event::EventBatch;
use crate::metrics::ComponentMetrics;
use crate::vrl_program::VrlProgram;
use serde::Deserialize;
use vrl::value::Value;

/// Options of the `filter` transform.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct FilterConfig {
    /// A VRL expression, e.g. `.level != "debug"`; events for which it is `true`
    /// pass. Others are dropped (acknowledged, counted). A condition that fails or is
    /// not a boolean counts as false and as an error.
    condition: String,
}

pub fn build(cx: &BuildContext, options: toml::Value) -> Result<Built, BuildError> {
    let config: FilterConfig = parse_options(options)?;
    let condition = VrlProgram::compile(&config.condition)
        .map_err(|d| BuildError::key("condition", format!("VRL condition does not compile:\n{d}")))?;
    Ok(Built::transform(
        Filter {
            condition,
            id: cx.id.clone(),
        },
        vec![],
    ))
}

#[derive(Clone)]
pub(super) struct Filter {
    condition: VrlProgram,
    id: String,
}

/// Runs `condition` on `event`; errors and non-booleans count as false.
pub(super) fn check(
    condition: &mut VrlProgram,
    event: &mut crate::event::Event,
    id: &str,
    metrics: &ComponentMetrics,
) -> bool {
    match condition.run(event) {
        Ok(Value::Boolean(b)) => b,
        Ok(other) => {
            metrics.error("condition_not_boolean", 1);
            if metrics.log_due() {
                tracing::warn!(component = %id, value = %other, "Condition returned a non-boolean; treating it as false.");
            }
            false
        }
        Err(e) => {
            metrics.error("condition_failed", 1);
            if metrics.log_due() {
                tracing::warn!(component = %id, error = ?e, "Condition failed; treating it as false.");
            }
            false
        }
    }
}

impl Transform for Filter {
    fn transform(&mut self, batch: EventBatch, out: &mut TransformOutput, metrics: &ComponentMetrics) {
        let mut dropped = 0;
        for mut event in batch {
            if check(&mut self.condition, &mut event, &self.id, metrics) {
                out.default.push(event);
            } else {
                dropped += 1;
                event.finalize(BatchStatus::Delivered);
            }
        }
        if dropped > 0 {
            metrics.discarded("filtered", dropped);
        }
    }

    fn clone_box(&self) -> Option<Box<dyn Transform>> {
        Some(Box::new(self.clone()))
    }
}
