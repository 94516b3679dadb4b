//! The `remap` transform: runs a VRL program on every event.
//!
//! An event whose program fails at run time (or calls `abort`) is counted and
//! dropped, acknowledged as delivered since it was dropped on purpose; with
//! `reroute_dropped = true` it goes, unchanged and with a `dropped` field saying why,
//! to output `ID.dropped` instead. A program that sets `.` to an array emits one
//! event per element.

use super::events::{RemapEvents, VrlAbort, VrlRuntime};
use crate::ack::BatchStatus;
use crate::component::{BuildContext, BuildError, Built, Transform, TransformOutput, parse_options};
use crate::event::{Event, EventBatch};
use crate::metrics::ComponentMetrics;
use crate::vrl_program::{RunError, VrlProgram};
use serde::Deserialize;
use vrl::value::{ObjectMap, Value};

/// Options of the `remap` transform.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RemapConfig {
    /// The program. Set `source` or `file`.
    source: Option<String>,
    /// A file holding the program.
    file: Option<std::path::PathBuf>,
    /// Send events whose program fails (or aborts) to output `ID.dropped`, unchanged,
    /// with a field `dropped = { reason, message, component }`. Otherwise they are
    /// dropped. Either way they are counted and a warning is logged at most once a
    /// second.
    #[serde(default)]
    reroute_dropped: bool,
    /// Drop events whose program calls `abort`; when `false` they pass on unchanged.
    #[serde(default = "yes")]
    drop_on_abort: bool,
}

fn yes() -> bool {
    true
}

pub fn build(cx: &BuildContext, options: toml::Value) -> Result<Built, BuildError> {
    let config: RemapConfig = parse_options(options)?;
    let source = match (&config.source, &config.file) {
        (Some(s), None) => s.clone(),
        (None, Some(f)) => std::fs::read_to_string(f)
            .map_err(|e| BuildError::key("file", format!("cannot read {}: {e}", f.display())))?,
        _ => {
            return Err(BuildError::key(
                "source",
                "set exactly one of `source` (a VRL program) or `file`",
            ));
        }
    };
    let program = VrlProgram::compile(&source)
        .map_err(|d| BuildError::key("source", format!("VRL program does not compile:\n{d}")))?;
    let outputs = if config.reroute_dropped {
        vec!["dropped".to_string()]
    } else {
        vec![]
    };
    let built = Built::transform(
        Remap {
            program,
            reroute: config.reroute_dropped,
            drop_on_abort: config.drop_on_abort,
            id: cx.id.clone(),
            events: RemapEvents::new(&cx.metrics),
        },
        outputs,
    );
    Ok(match config.file {
        Some(f) => built.reading(f),
        None => built,
    })
}

#[derive(Clone)]
struct Remap {
    program: VrlProgram,
    reroute: bool,
    drop_on_abort: bool,
    id: String,
    events: RemapEvents,
}

/// Why the program did not produce an event.
#[derive(Clone, Copy, PartialEq)]
enum Failure {
    /// It called `abort`.
    Abort,
    /// A runtime error.
    Error,
}

impl Failure {
    /// The `dropped.reason` value and the name its events are discarded under.
    fn reason(self) -> &'static str {
        match self {
            Failure::Abort => "abort",
            Failure::Error => "error",
        }
    }
}

impl Remap {
    fn fail(
        &self,
        original: Option<Event>,
        event: Event,
        failure: Failure,
        message: String,
        out: &mut TransformOutput,
    ) {
        let reason = failure.reason();
        let rerouted = original.is_some();
        match failure {
            Failure::Abort => self.events.abort.emit(VrlAbort {
                message: message.clone(),
                rerouted,
            }),
            Failure::Error => self.events.runtime.emit(VrlRuntime {
                message: message.clone(),
                rerouted,
            }),
        }
        match original {
            Some(mut original) => {
                event.finalize(BatchStatus::Delivered);
                let mut why = ObjectMap::new();
                why.insert("reason".into(), Value::from(reason));
                why.insert("message".into(), Value::from(message));
                why.insert("component".into(), Value::from(self.id.as_str()));
                original.insert("dropped", Value::Object(why));
                out.named[0].push(original);
            }
            None => {
                // Logged by the error event above.
                match failure {
                    Failure::Abort => self.events.dropped_on_abort.count(1),
                    Failure::Error => self.events.dropped_on_error.count(1),
                }
                event.finalize(BatchStatus::Delivered);
            }
        }
    }
}

impl Transform for Remap {
    fn transform(&mut self, batch: EventBatch, out: &mut TransformOutput, _metrics: &ComponentMetrics) {
        out.default.reserve(batch.len());
        for mut event in batch {
            let original = self.reroute.then(|| event.duplicate());
            match self.program.run(&mut event) {
                Ok(_) => {
                    if let Some(o) = original {
                        o.finalize(BatchStatus::Delivered);
                    }
                    match std::mem::replace(&mut event.value, Value::Null) {
                        Value::Array(items) => {
                            for item in items {
                                out.default.push(event.derive(item));
                            }
                            event.finalize(BatchStatus::Delivered);
                        }
                        value => {
                            event.value = value;
                            out.default.push(event);
                        }
                    }
                }
                Err(RunError::Abort(_)) if !self.drop_on_abort => {
                    if let Some(o) = original {
                        out.default.push(o);
                        event.finalize(BatchStatus::Delivered);
                    } else {
                        out.default.push(event);
                    }
                }
                Err(RunError::Abort(m)) => self.fail(original, event, Failure::Abort, m, out),
                Err(RunError::Error(m)) => self.fail(original, event, Failure::Error, m, out),
            }
        }
    }

    fn clone_box(&self) -> Option<Box<dyn Transform>> {
        Some(Box::new(self.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ack::{self, BatchNotifier};

    fn run(config: &str, events: Vec<&str>) -> (TransformOutput, crate::metrics::Snapshot) {
        let cx = BuildContext {
            id: "r".into(),
            data_dir: "/tmp".into(),
            metrics: ComponentMetrics::new("r", "transform", "remap", super::super::REMAP.events, &[]),
            ..Default::default()
        };
        let built = build(&cx, toml::from_str(config).unwrap()).unwrap_or_else(|e| panic!("{e}"));
        let crate::component::Body::Transform(mut t) = built.body else {
            panic!()
        };
        let mut out = TransformOutput::new(built.outputs.len());
        let batch = events.into_iter().map(|m| {
            let mut e = Event::new(Value::Object(ObjectMap::new()));
            e.insert("message", m);
            e
        });
        t.transform(batch.collect(), &mut out, &cx.metrics);
        (out, cx.metrics.snapshot())
    }

    #[test]
    fn reshapes_and_drops_failures() {
        let (out, counted) = run(
            "source = '''. = parse_json!(.message)\n.added = true'''",
            vec![r#"{"a":1}"#, "not json"],
        );
        assert_eq!(out.default.len(), 1);
        assert_eq!(out.default[0].get("added"), Some(&Value::Boolean(true)));
        assert_eq!(counted.errors["vrl_runtime"], 1);
        assert_eq!(counted.discarded["error"], 1);
        assert_eq!(counted.discarded["abort"], 0);
    }

    #[test]
    fn aborts_are_counted_apart_from_errors() {
        let (out, counted) = run("source = 'abort'", vec!["a", "b"]);
        assert!(out.default.is_empty());
        assert_eq!((counted.errors["vrl_abort"], counted.errors["vrl_runtime"]), (2, 0));
        assert_eq!(counted.discarded["abort"], 2);
        let (out, counted) = run("source = 'abort'\ndrop_on_abort = false", vec!["a"]);
        assert_eq!(out.default.len(), 1, "passed on unchanged");
        assert_eq!((counted.errors["vrl_abort"], counted.discarded["abort"]), (0, 0));
    }

    #[test]
    fn reroutes_failures_with_the_reason() {
        let (out, counted) = run(
            "source = '. = parse_json!(.message)'\nreroute_dropped = true",
            vec!["not json"],
        );
        assert!(out.default.is_empty());
        let d = &out.named[0][0];
        assert_eq!(d.get("message"), Some(&Value::from("not json")));
        assert_eq!(d.get_path("dropped.reason"), Some(&Value::from("error")));
        assert_eq!(counted.errors["vrl_runtime"], 1);
        assert_eq!(counted.discarded["error"], 0, "rerouted, not discarded");
    }

    #[test]
    fn arrays_become_events_and_acks_flow() {
        let (out, _) = run("source = '. = [{\"n\": 1}, {\"n\": 2}]'", vec!["x"]);
        assert_eq!(out.default.len(), 2);
    }

    #[tokio::test]
    async fn dropped_events_count_as_delivered() {
        let cx = BuildContext {
            id: "r".into(),
            data_dir: "/tmp".into(),
            ..Default::default()
        };
        let built = build(&cx, toml::from_str("source = 'abort'").unwrap()).unwrap();
        let crate::component::Body::Transform(mut t) = built.body else {
            panic!()
        };
        let (n, rx) = BatchNotifier::new();
        let e = Event::new(Value::Object(ObjectMap::new())).with_notifier(&n);
        drop(n);
        let mut out = TransformOutput::new(0);
        t.transform(vec![e], &mut out, &ComponentMetrics::unchecked("r", "transform"));
        assert_eq!(ack::wait(rx).await, BatchStatus::Delivered);
    }

    #[test]
    fn compile_errors_carry_vrl_diagnostics() {
        let cx = BuildContext {
            id: "r".into(),
            data_dir: "/tmp".into(),
            ..Default::default()
        };
        let err = build(&cx, toml::from_str("source = '.a = nope(1)'").unwrap())
            .err()
            .unwrap();
        assert!(err.message.contains("nope"), "{}", err.message);
        assert_eq!(err.key.as_deref(), Some("source"));
    }
}
