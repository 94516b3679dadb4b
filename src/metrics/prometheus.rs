//! The Prometheus text exposition (format 0.0.4) of a running topology. Names follow
//! Vector's with a `pipe_` prefix and the unit in the name; every component series
//! carries `component_id`, `component_kind` and `component_type`. No label takes
//! unbounded values: error codes and reasons are the static names of internal events,
//! outputs are declared, and Kafka partitions are bounded by the assignment.

use super::{Counts, Registry, status_name};
use crate::ack::BatchStatus;
use std::collections::BTreeMap;
use std::fmt::Write;

/// One metric family being written: its samples, kept until every component was seen.
#[derive(Default)]
struct Family {
    help: &'static str,
    kind: &'static str,
    samples: Vec<(String, f64)>,
}

#[derive(Default)]
struct Exposition {
    families: BTreeMap<&'static str, Family>,
}

impl Exposition {
    fn add(&mut self, name: &'static str, kind: &'static str, help: &'static str, labels: String, value: f64) {
        let f = self.families.entry(name).or_insert_with(|| Family {
            help,
            kind,
            samples: Vec::new(),
        });
        f.samples.push((labels, value));
    }

    fn render(self) -> String {
        let mut out = String::new();
        for (name, f) in self.families {
            let _ = writeln!(out, "# HELP {name} {}", f.help);
            let _ = writeln!(out, "# TYPE {name} {}", f.kind);
            for (labels, v) in f.samples {
                if labels.is_empty() {
                    let _ = writeln!(out, "{name} {v}");
                } else {
                    let _ = writeln!(out, "{name}{{{labels}}} {v}");
                }
            }
        }
        out
    }
}

/// Escapes a label value.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// `base` plus `extra` label pairs.
fn labels(base: &str, extra: &[(&str, &str)]) -> String {
    let mut s = base.to_string();
    for (k, v) in extra {
        if !s.is_empty() {
            s.push(',');
        }
        let _ = write!(s, "{k}=\"{}\"", escape(v));
    }
    s
}

/// The exposition of every component's counters and gauges.
pub fn render(registry: &Registry) -> String {
    let mut e = Exposition::default();
    e.add(
        "pipe_build_info",
        "gauge",
        "The pipe version running.",
        labels("", &[("version", env!("CARGO_PKG_VERSION"))]),
        1.0,
    );
    e.add(
        "pipe_uptime_seconds",
        "gauge",
        "Seconds since the topology started.",
        String::new(),
        registry.started.elapsed().as_secs_f64(),
    );
    for (result, n) in ["ok", "failed"].iter().zip(&registry.reloads) {
        e.add(
            "pipe_reloads_total",
            "counter",
            "Reloads of the topology, applied (`ok`) or refused because the new one is invalid (`failed`).",
            labels("", &[("result", result)]),
            n.load(std::sync::atomic::Ordering::Relaxed) as f64,
        );
    }
    for c in registry.components().iter() {
        let base = labels(
            "",
            &[
                ("component_id", &c.id),
                ("component_kind", c.kind),
                ("component_type", &c.type_name),
            ],
        );
        let s = c.snapshot();
        let counter = |e: &mut Exposition, name, help, extra: &[(&str, &str)], v: u64| {
            e.add(name, "counter", help, labels(&base, extra), v as f64)
        };
        counter(
            &mut e,
            "pipe_component_received_events_total",
            "Events the component took in.",
            &[],
            s.received_events,
        );
        if c.kind == "source" {
            counter(
                &mut e,
                "pipe_component_received_bytes_total",
                "Raw bytes a source took in.",
                &[],
                s.received_bytes,
            );
            for status in [BatchStatus::Delivered, BatchStatus::Rejected, BatchStatus::Errored] {
                let name = status_name(status);
                counter(
                    &mut e,
                    "pipe_source_acknowledged_events_total",
                    "Events of finished source batches by final status.",
                    &[("status", name)],
                    s.acknowledged[name],
                );
            }
        }
        if c.kind == "sink" {
            counter(
                &mut e,
                "pipe_component_sent_events_total",
                "Events sent on or written.",
                &[("output", "_default")],
                s.sent_events - s.outputs.values().sum::<u64>(),
            );
            counter(
                &mut e,
                "pipe_component_sent_bytes_total",
                "Bytes a sink wrote or sent.",
                &[],
                s.sent_bytes,
            );
        }
        for (output, n) in &s.outputs {
            counter(
                &mut e,
                "pipe_component_sent_events_total",
                "Events sent on or written.",
                &[("output", output)],
                *n,
            );
        }
        for (spec, n) in c.event_totals() {
            match spec.counts {
                Counts::Error { fault, stage } => counter(
                    &mut e,
                    "pipe_component_errors_total",
                    "Errors by code, type (who is at fault) and stage.",
                    &[
                        ("error_code", spec.name),
                        ("error_type", fault.as_str()),
                        ("stage", stage.as_str()),
                    ],
                    n,
                ),
                Counts::Discarded { intentional } => counter(
                    &mut e,
                    "pipe_component_discarded_events_total",
                    "Events that went no further, by reason.",
                    &[
                        ("reason", spec.name),
                        ("intentional", if intentional { "true" } else { "false" }),
                    ],
                    n,
                ),
                Counts::Counter { metric } => counter(&mut e, metric, spec.doc, &[], n),
            }
        }
        if c.kind != "source" {
            e.add(
                "pipe_component_input_queue_batches",
                "gauge",
                "Batches waiting in the component's input channel.",
                base.clone(),
                s.input_queue_batches as f64,
            );
            e.add(
                "pipe_component_utilization_ratio",
                "gauge",
                "Share of time not spent waiting for input, smoothed over about 5 s.",
                base.clone(),
                registry.rates(&c.id).utilization,
            );
        }
        for (spec, values, v) in c.gauge_values() {
            let extra: Vec<(&str, &str)> = spec
                .labels
                .iter()
                .copied()
                .zip(values.iter().map(String::as_str))
                .collect();
            e.add(spec.metric, "gauge", spec.doc, labels(&base, &extra), v as f64);
        }
    }
    e.render()
}
