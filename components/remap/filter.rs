//! The `filter` transform: keeps events for which a VRL condition is true. Events it
//! drops are acknowledged as delivered (dropped on purpose) and counted; a condition
//! that fails or is not a boolean counts as false and as an error.

use super::events::{ConditionEvents, ConditionFailed, ConditionNotBoolean, Filtered};
use crate::ack::BatchStatus;
use crate::component::{BuildContext, BuildError, Built, Transform, TransformOutput, parse_options};
use crate::event::EventBatch;
use crate::metrics::{ComponentMetrics, Emitter};
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
            events: ConditionEvents::new(&cx.metrics),
            filtered: cx.metrics.emitter(),
        },
        vec![],
    ))
}

#[derive(Clone)]
pub(super) struct Filter {
    condition: VrlProgram,
    events: ConditionEvents,
    filtered: Emitter<Filtered>,
}

/// Runs `condition` on `event`; errors and non-booleans count as false.
pub(super) fn check(condition: &mut VrlProgram, event: &mut crate::event::Event, events: &ConditionEvents) -> bool {
    match condition.run(event) {
        Ok(Value::Boolean(b)) => b,
        Ok(value) => {
            events.not_boolean.emit(ConditionNotBoolean { value });
            false
        }
        Err(error) => {
            events.failed.emit(ConditionFailed { error });
            false
        }
    }
}

impl Transform for Filter {
    fn transform(&mut self, batch: EventBatch, out: &mut TransformOutput, _metrics: &ComponentMetrics) {
        let mut dropped = 0;
        for mut event in batch {
            if check(&mut self.condition, &mut event, &self.events) {
                out.default.push(event);
            } else {
                dropped += 1;
                event.finalize(BatchStatus::Delivered);
            }
        }
        self.filtered.emit_n(Filtered, dropped);
    }

    fn clone_box(&self) -> Option<Box<dyn Transform>> {
        Some(Box::new(self.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use vrl::value::ObjectMap;

    #[test]
    fn drops_are_counted_as_intended_and_failures_as_errors() {
        let metrics = ComponentMetrics::new("f", "transform", "filter", super::super::FILTER.events, &[]);
        let cx = BuildContext {
            id: "f".into(),
            metrics: metrics.clone(),
            ..Default::default()
        };
        let built = build(
            &cx,
            toml::from_str("condition = 'if .n == 3 { \"x\" } else { int!(.n) > 1 }'").unwrap(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let crate::component::Body::Transform(mut t) = built.body else {
            panic!()
        };
        let batch = (0..5i64)
            .map(|n| {
                let mut e = Event::new(Value::Object(ObjectMap::new()));
                e.insert("n", Value::Integer(n));
                e
            })
            .collect();
        let mut out = TransformOutput::new(0);
        t.transform(batch, &mut out, &metrics);
        assert_eq!(out.default.len(), 2, "4 and 2 pass");
        let s = metrics.snapshot();
        assert_eq!(s.discarded["filtered"], 3);
        assert_eq!(s.errors["condition_not_boolean"], 1);
        assert_eq!(s.errors["condition_failed"], 0);
    }
}
