//! What every component counts, and how it is read: the engine's own counters (events
//! and bytes in and out, acknowledgements, time spent waiting for input) and the
//! [internal events](event) and [gauges](gauge) each component type declares.
//!
//! Handles are registered when a component is built and are plain atomics, so the hot
//! path takes no lock and does no lookup. The exit summary, `/metrics`,
//! `/api/v1/components` and `pipe top` all read the same values through
//! [`ComponentMetrics::snapshot`] and [`prometheus`].

pub mod common;
pub mod event;
pub mod gauge;
pub mod prometheus;
pub mod registry;

pub use event::{Counts, Emitter, EventSpec, InternalEvent, Stage};
pub use gauge::{Gauge, GaugeFamily, GaugeSpec};
pub use registry::Registry;

use crate::ack::BatchStatus;
use crate::event::EventBatch;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::mpsc;

/// The counters of one component.
#[derive(Debug)]
pub struct ComponentMetrics {
    /// The component id.
    pub id: String,
    /// `source`, `transform` or `sink`.
    pub kind: &'static str,
    /// Its `type`.
    pub type_name: String,
    id_shared: Arc<str>,
    declared_events: &'static [&'static EventSpec],
    declared_gauges: &'static [&'static GaugeSpec],
    received_events: AtomicU64,
    received_bytes: AtomicU64,
    sent_events: AtomicU64,
    sent_bytes: AtomicU64,
    outputs: Mutex<Vec<(String, Arc<AtomicU64>)>>,
    events: Mutex<Vec<(&'static EventSpec, Arc<event::Slot>)>>,
    gauges: Mutex<Vec<(&'static GaugeSpec, GaugeValue)>>,
    acknowledged: [AtomicU64; 3],
    idle_nanos: AtomicU64,
    last_sent_secs: AtomicU64,
    input: Mutex<Option<mpsc::WeakSender<EventBatch>>>,
    failure: Mutex<Option<String>>,
}

#[derive(Debug, Clone)]
enum GaugeValue {
    One(Gauge),
    Family(GaugeFamily),
}

/// A point-in-time copy of one component's counters.
#[derive(Debug, Serialize, Clone, PartialEq)]
pub struct Snapshot {
    pub id: String,
    pub kind: &'static str,
    #[serde(rename = "type")]
    pub type_name: String,
    pub received_events: u64,
    pub received_bytes: u64,
    /// Events sent on, over every output (sources, transforms) or written (sinks).
    pub sent_events: u64,
    pub sent_bytes: u64,
    /// Events sent per output (`_default` or the output's name).
    pub outputs: BTreeMap<String, u64>,
    /// Errors by event name.
    pub errors: BTreeMap<String, u64>,
    /// Discarded events by reason.
    pub discarded: BTreeMap<String, u64>,
    /// Other counters by event name.
    pub counters: BTreeMap<String, u64>,
    /// Gauges: `metric` or `metric{label="value",…}` for a family.
    pub gauges: BTreeMap<String, u64>,
    /// Source batches' events by final status (`delivered`, `rejected`, `errored`).
    pub acknowledged: BTreeMap<&'static str, u64>,
    /// Batches waiting in its input channel.
    pub input_queue_batches: u64,
    /// Nanoseconds spent waiting for input.
    pub idle_nanos: u64,
    /// Seconds since the epoch when it last sent or wrote events (0 = never).
    pub last_sent_secs: u64,
    /// Why it stopped, if it failed.
    pub failure: Option<String>,
}

const DEFAULT_OUTPUT: &str = "_default";
/// The type name of counters that accept undeclared events.
const UNCHECKED: &str = "(unchecked)";

impl ComponentMetrics {
    /// Counters for component `id` of `kind` and `type_name`, which emits the
    /// declared events and gauges.
    pub fn new(
        id: &str,
        kind: &'static str,
        type_name: &str,
        declared_events: &'static [&'static EventSpec],
        declared_gauges: &'static [&'static GaugeSpec],
    ) -> Arc<Self> {
        Arc::new(ComponentMetrics {
            id: id.to_string(),
            kind,
            type_name: type_name.to_string(),
            id_shared: Arc::from(id),
            declared_events,
            declared_gauges,
            received_events: AtomicU64::new(0),
            received_bytes: AtomicU64::new(0),
            sent_events: AtomicU64::new(0),
            sent_bytes: AtomicU64::new(0),
            outputs: Mutex::default(),
            events: Mutex::default(),
            gauges: Mutex::default(),
            acknowledged: Default::default(),
            idle_nanos: AtomicU64::new(0),
            last_sent_secs: AtomicU64::new(0),
            input: Mutex::default(),
            failure: Mutex::default(),
        })
    }

    /// Counters for tests and tools: any event and gauge may be registered.
    pub fn unchecked(id: &str, kind: &'static str) -> Arc<Self> {
        Self::new(id, kind, UNCHECKED, &[], &[])
    }

    /// The emitter of events of type `E` (emitters of one type share their counter and
    /// log throttle; still, take one when building, not per event). Panics when the component type's registry
    /// entry does not declare `E` (a bug found as soon as the component is built).
    pub fn emitter<E: InternalEvent>(&self) -> Emitter<E> {
        let spec: &'static EventSpec = &const { E::SPEC };
        // A sink's buffer emits its own events under the sink's id.
        let of_buffer = self.kind == "sink" && crate::buffer::EVENTS_DECLARED.contains(&spec);
        self.check_declared(
            of_buffer
                || self
                    .declared_events
                    .iter()
                    .any(|s| s.name == spec.name && s.counts == spec.counts),
            spec.name,
        );
        let mut events = lock(&self.events);
        let slot = match events
            .iter()
            .find(|(s, _)| s.name == spec.name && s.counts == spec.counts)
        {
            Some((_, slot)) => slot.clone(),
            None => {
                let slot = Arc::default();
                events.push((spec, Arc::clone(&slot)));
                slot
            }
        };
        Emitter::new(slot, self.id_shared.clone())
    }

    /// The single gauge `spec` (declared in the registry entry).
    pub fn gauge(&self, spec: &'static GaugeSpec) -> Gauge {
        match self.gauge_value(spec, || GaugeValue::One(Gauge::default())) {
            GaugeValue::One(g) => g,
            GaugeValue::Family(_) => panic!("gauge {} has labels; use gauge_family", spec.metric),
        }
    }

    /// The gauge family `spec` (declared in the registry entry).
    pub fn gauge_family(&self, spec: &'static GaugeSpec) -> GaugeFamily {
        match self.gauge_value(spec, || GaugeValue::Family(GaugeFamily::default())) {
            GaugeValue::Family(g) => g,
            GaugeValue::One(_) => panic!("gauge {} has no labels; use gauge", spec.metric),
        }
    }

    fn gauge_value(&self, spec: &'static GaugeSpec, new: impl FnOnce() -> GaugeValue) -> GaugeValue {
        let of_buffer = self.kind == "sink" && crate::buffer::GAUGES.contains(&spec);
        self.check_declared(
            of_buffer || self.declared_gauges.iter().any(|s| *s == spec),
            spec.metric,
        );
        let mut gauges = lock(&self.gauges);
        if let Some((_, g)) = gauges.iter().find(|(s, _)| *s == spec) {
            return g.clone();
        }
        let g = new();
        gauges.push((spec, g.clone()));
        g
    }

    fn check_declared(&self, declared: bool, name: &str) {
        // Counters made by `unchecked` (unit tests, tools) accept anything.
        let open = self.type_name == UNCHECKED;
        assert!(
            declared || open,
            "component type `{}` emits `{name}`, which its registry entry does not declare",
            self.type_name
        );
    }

    /// Counts events (and their raw bytes) a source took in.
    pub fn received(&self, events: u64, bytes: u64) {
        self.received_events.fetch_add(events, Ordering::Relaxed);
        self.received_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts events (and bytes) a sink wrote durably.
    pub fn sent(&self, events: u64, bytes: u64) {
        self.sent_events.fetch_add(events, Ordering::Relaxed);
        self.sent_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.last_sent_secs.store(event::now_secs(), Ordering::Relaxed);
    }

    /// The counter of events sent on output `name` (`None`: the default output).
    pub fn output_counter(&self, name: Option<&str>) -> Arc<AtomicU64> {
        let name = name.unwrap_or(DEFAULT_OUTPUT);
        let mut outputs = lock(&self.outputs);
        if let Some((_, c)) = outputs.iter().find(|(n, _)| n == name) {
            return c.clone();
        }
        let c = Arc::new(AtomicU64::new(0));
        outputs.push((name.to_string(), c.clone()));
        c
    }

    /// Counts the events of a finished source batch by their final status.
    pub fn acknowledged(&self, status: BatchStatus, events: u64) {
        self.acknowledged[status as usize].fetch_add(events, Ordering::Relaxed);
    }

    /// Adds time spent waiting for input.
    pub(crate) fn idle_for(&self, since: Instant) {
        self.idle_nanos
            .fetch_add(since.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }

    /// Lets the input queue be measured through a weak sender (which does not keep the
    /// channel open).
    pub(crate) fn watch_input(&self, tx: &mpsc::Sender<EventBatch>) {
        *lock(&self.input) = Some(tx.downgrade());
    }

    /// Records that the component failed.
    pub fn failed(&self, reason: &str) {
        *lock(&self.failure) = Some(reason.to_string());
    }

    /// Batches waiting in the input channel.
    pub fn input_queue(&self) -> u64 {
        lock(&self.input)
            .as_ref()
            .and_then(|w| w.upgrade())
            .map(|tx| (tx.max_capacity() - tx.capacity()) as u64)
            .unwrap_or(0)
    }

    /// Every registered event with its total.
    pub fn event_totals(&self) -> Vec<(&'static EventSpec, u64)> {
        lock(&self.events)
            .iter()
            .map(|(s, slot)| (*s, slot.counter.load(Ordering::Relaxed)))
            .collect()
    }

    /// Every registered gauge series: spec, label values, value.
    pub fn gauge_values(&self) -> Vec<(&'static GaugeSpec, Vec<String>, u64)> {
        let mut out = Vec::new();
        for (spec, g) in lock(&self.gauges).iter() {
            match g {
                GaugeValue::One(g) => out.push((*spec, vec![], g.get())),
                GaugeValue::Family(f) => {
                    for (labels, v) in f.series() {
                        out.push((*spec, labels, v));
                    }
                }
            }
        }
        out
    }

    /// A copy of every counter.
    pub fn snapshot(&self) -> Snapshot {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut s = Snapshot {
            id: self.id.clone(),
            kind: self.kind,
            type_name: self.type_name.clone(),
            received_events: load(&self.received_events),
            received_bytes: load(&self.received_bytes),
            sent_events: load(&self.sent_events),
            sent_bytes: load(&self.sent_bytes),
            outputs: BTreeMap::new(),
            errors: BTreeMap::new(),
            discarded: BTreeMap::new(),
            counters: BTreeMap::new(),
            gauges: BTreeMap::new(),
            acknowledged: BTreeMap::new(),
            input_queue_batches: self.input_queue(),
            idle_nanos: load(&self.idle_nanos),
            last_sent_secs: load(&self.last_sent_secs),
            failure: lock(&self.failure).clone(),
        };
        for (name, c) in lock(&self.outputs).iter() {
            let n = load(c);
            s.outputs.insert(name.clone(), n);
            s.sent_events += n;
        }
        for (spec, n) in self.event_totals() {
            let map = match spec.counts {
                Counts::Error { .. } => &mut s.errors,
                Counts::Discarded { .. } => &mut s.discarded,
                Counts::Counter { .. } => &mut s.counters,
            };
            *map.entry(spec.name.to_string()).or_default() += n;
        }
        for (spec, labels, v) in self.gauge_values() {
            s.gauges.insert(series_name(spec, &labels), v);
        }
        for status in [BatchStatus::Delivered, BatchStatus::Rejected, BatchStatus::Errored] {
            s.acknowledged
                .insert(status_name(status), load(&self.acknowledged[status as usize]));
        }
        s
    }
}

/// `metric` or `metric{label="value",…}`.
pub fn series_name(spec: &GaugeSpec, labels: &[String]) -> String {
    if labels.is_empty() {
        return spec.metric.to_string();
    }
    let pairs: Vec<String> = spec
        .labels
        .iter()
        .zip(labels)
        .map(|(k, v)| format!("{k}=\"{v}\""))
        .collect();
    format!("{}{{{}}}", spec.metric, pairs.join(","))
}

/// The label value of an acknowledgement status.
pub fn status_name(status: BatchStatus) -> &'static str {
    match status {
        BatchStatus::Delivered => "delivered",
        BatchStatus::Rejected => "rejected",
        BatchStatus::Errored => "errored",
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Oops;
    impl InternalEvent for Oops {
        const SPEC: EventSpec = EventSpec {
            name: "oops",
            counts: Counts::Error {
                fault: crate::error::Fault::Data,
                stage: Stage::Processing,
            },
            doc: "Something went wrong.",
        };
        fn log(&self, _: &str, _: u64) {}
    }
    static DECLARED: &[&EventSpec] = &[&Oops::SPEC];
    static LAG: GaugeSpec = GaugeSpec {
        metric: "pipe_test_lag",
        labels: &["partition"],
        doc: "Lag.",
    };
    static GAUGES: &[&GaugeSpec] = &[&LAG];

    #[test]
    fn events_and_gauges_accumulate() {
        let m = ComponentMetrics::new("x", "source", "t", DECLARED, GAUGES);
        m.received(2, 10);
        let oops = m.emitter::<Oops>();
        oops.emit(Oops);
        oops.emit_n(Oops, 2);
        m.emitter::<Oops>().emit(Oops);
        m.gauge_family(&LAG).set(&["0"], 5);
        let s = m.snapshot();
        assert_eq!((s.received_events, s.received_bytes), (2, 10));
        assert_eq!(s.errors["oops"], 4);
        assert_eq!(s.gauges["pipe_test_lag{partition=\"0\"}"], 5);
    }

    #[test]
    #[should_panic(expected = "does not declare")]
    fn undeclared_events_are_refused() {
        let m = ComponentMetrics::new("x", "source", "t", &[], GAUGES);
        m.emitter::<Oops>();
    }
}
