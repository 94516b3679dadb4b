//! Taps: copies of the events crossing an output, for `GET /api/v1/tap` and `pipe tap`.
//!
//! Every output has a [`TapPoint`]. With no subscriber, offering a batch costs one
//! relaxed atomic load. A subscriber receives copies *without* acknowledgement handles
//! (a held sample never holds up a checkpoint), at most `limit` per `interval` per
//! output, through a bounded channel it must keep up with: when the channel is full the
//! samples are lost (counted, and reported to the subscriber); the pipeline never
//! waits for a tap.

use crate::event::EventBatch;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use vrl::value::Value;

/// Batches of samples a subscriber's channel holds before samples are lost.
const SUBSCRIBER_BATCHES: usize = 64;
/// Subscriptions open at once; more are refused (each one costs the pipeline copies).
pub const MAX_SUBSCRIPTIONS: usize = 16;

/// One sampled event.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The output it crossed (`id` or `id.name`).
    pub output: Arc<str>,
    /// The event's fields.
    pub value: Value,
    /// Its metadata (`%` paths).
    pub metadata: Value,
}

struct Subscriber {
    key: u64,
    tx: mpsc::Sender<Vec<Sample>>,
    limit: usize,
    interval: Duration,
    window_start: Instant,
    taken: usize,
    lost: Arc<AtomicU64>,
}

/// The tap of one output.
pub struct TapPoint {
    output: Arc<str>,
    active: AtomicUsize,
    subscribers: Mutex<Vec<Subscriber>>,
    lost_total: AtomicU64,
}

impl TapPoint {
    /// The tap of output `output` (`id` or `id.name`).
    pub fn new(output: &str) -> Arc<Self> {
        Arc::new(TapPoint {
            output: Arc::from(output),
            active: AtomicUsize::new(0),
            subscribers: Mutex::default(),
            lost_total: AtomicU64::new(0),
        })
    }

    /// Offers a batch crossing the output to the subscribers, if there are any.
    #[inline]
    pub fn offer(&self, batch: &EventBatch) {
        if self.active.load(Ordering::Relaxed) == 0 {
            return;
        }
        self.offer_to_subscribers(batch);
    }

    #[cold]
    fn offer_to_subscribers(&self, batch: &EventBatch) {
        let now = Instant::now();
        let mut subs = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        for s in subs.iter_mut() {
            if now.duration_since(s.window_start) >= s.interval {
                s.window_start = now;
                s.taken = 0;
            }
            let n = s.limit.saturating_sub(s.taken).min(batch.len());
            if n == 0 {
                continue;
            }
            s.taken += n;
            let samples: Vec<Sample> = batch[..n]
                .iter()
                .map(|e| Sample {
                    output: self.output.clone(),
                    value: e.value.clone(),
                    metadata: e.metadata.clone(),
                })
                .collect();
            if s.tx.try_send(samples).is_err() {
                s.lost.fetch_add(n as u64, Ordering::Relaxed);
                self.lost_total.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
    }

    /// Samples lost by every subscriber so far.
    pub fn lost_total(&self) -> u64 {
        self.lost_total.load(Ordering::Relaxed)
    }

    /// The output's name.
    pub fn output(&self) -> &str {
        &self.output
    }

    fn remove(&self, key: u64) {
        let mut subs = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        let before = subs.len();
        subs.retain(|s| s.key != key);
        self.active.fetch_sub(before - subs.len(), Ordering::Relaxed);
    }
}

/// Every tap point of a topology, and which outputs feed which component.
pub struct Taps {
    graph: std::sync::RwLock<TapGraph>,
    next_key: AtomicU64,
    open: Arc<AtomicUsize>,
}

/// The tap points and the inputs of the running topology, replaced on a reload.
struct TapGraph {
    points: Vec<Arc<TapPoint>>,
    /// Component id → the outputs it reads.
    inputs: Vec<(String, Vec<String>)>,
}

/// What to tap: outputs whose names match `outputs_of`, and the inputs of components
/// whose ids match `inputs_of` (glob patterns).
#[derive(Debug, Clone, Default)]
pub struct TapRequest {
    pub outputs_of: Option<glob::Pattern>,
    pub inputs_of: Option<glob::Pattern>,
    /// Samples per output per interval.
    pub limit: usize,
    pub interval: Duration,
}

/// A live subscription; dropping it unsubscribes.
pub struct Subscription {
    /// Samples, in batches.
    pub rx: mpsc::Receiver<Vec<Sample>>,
    /// Samples lost because the channel was full.
    pub lost: Arc<AtomicU64>,
    /// The outputs tapped.
    pub outputs: Vec<String>,
    points: Vec<Arc<TapPoint>>,
    key: u64,
    open: Arc<AtomicUsize>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        for p in &self.points {
            p.remove(self.key);
        }
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Taps {
    /// Taps for these points; `inputs` maps each component id to the outputs it reads.
    pub fn new(points: Vec<Arc<TapPoint>>, inputs: Vec<(String, Vec<String>)>) -> Self {
        Taps {
            graph: std::sync::RwLock::new(TapGraph { points, inputs }),
            next_key: AtomicU64::new(1),
            open: Arc::default(),
        }
    }

    /// After a reload: the points of the new topology (the kept outputs' points are
    /// the same, so their subscribers go on) and its inputs.
    pub fn replace(&self, points: Vec<Arc<TapPoint>>, inputs: Vec<(String, Vec<String>)>) {
        *self.graph.write().unwrap_or_else(|e| e.into_inner()) = TapGraph { points, inputs };
    }

    /// Samples lost by every subscriber of every output.
    pub fn lost_total(&self) -> u64 {
        let graph = self.graph.read().unwrap_or_else(|e| e.into_inner());
        graph.points.iter().map(|p| p.lost_total()).sum()
    }

    /// The outputs a request selects.
    pub fn select(&self, req: &TapRequest) -> Vec<Arc<TapPoint>> {
        let graph = self.graph.read().unwrap_or_else(|e| e.into_inner());
        let TapGraph { points, inputs } = &*graph;
        let mut wanted: Vec<&str> = Vec::new();
        if let Some(p) = &req.outputs_of {
            for point in points {
                // `id` also selects the component's named outputs `id.name`.
                let component = point.output().split('.').next().unwrap_or_default();
                if p.matches(point.output()) || p.matches(component) {
                    wanted.push(point.output());
                }
            }
        }
        if let Some(p) = &req.inputs_of {
            for (id, inputs) in inputs {
                if p.matches(id) {
                    wanted.extend(inputs.iter().map(String::as_str));
                }
            }
        }
        points
            .iter()
            .filter(|p| wanted.contains(&p.output()))
            .cloned()
            .collect()
    }

    /// Subscribes to the outputs a request selects (possibly none); `None` when
    /// [`MAX_SUBSCRIPTIONS`] are open already.
    pub fn subscribe(&self, req: &TapRequest) -> Option<Subscription> {
        if self
            .open
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < MAX_SUBSCRIPTIONS).then_some(n + 1)
            })
            .is_err()
        {
            return None;
        }
        let points = self.select(req);
        let (tx, rx) = mpsc::channel(SUBSCRIBER_BATCHES);
        let lost = Arc::new(AtomicU64::new(0));
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        for p in &points {
            p.subscribers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Subscriber {
                    key,
                    tx: tx.clone(),
                    limit: req.limit.max(1),
                    interval: req.interval,
                    window_start: Instant::now(),
                    taken: 0,
                    lost: lost.clone(),
                });
            p.active.fetch_add(1, Ordering::Relaxed);
        }
        Some(Subscription {
            rx,
            lost,
            outputs: points.iter().map(|p| p.output().to_string()).collect(),
            points,
            key,
            open: self.open.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;

    fn batch(n: usize) -> EventBatch {
        (0..n).map(|i| Event::new(Value::from(i as i64))).collect()
    }

    #[tokio::test]
    async fn samples_are_limited_per_interval_and_lost_when_not_read() {
        let point = TapPoint::new("parse");
        let taps = Taps::new(vec![point.clone()], vec![("out".into(), vec!["parse".into()])]);
        point.offer(&batch(3)); // nobody listens: nothing happens
        let req = TapRequest {
            inputs_of: Some(glob::Pattern::new("o*").unwrap()),
            limit: 2,
            interval: Duration::from_secs(3600),
            ..Default::default()
        };
        let mut sub = taps.subscribe(&req).unwrap();
        assert_eq!(sub.outputs, vec!["parse"]);
        point.offer(&batch(5));
        point.offer(&batch(5));
        let got = sub.rx.recv().await.unwrap();
        assert_eq!(got.len(), 2, "limited to 2 per interval");
        assert!(sub.rx.try_recv().is_err());

        let req = TapRequest {
            outputs_of: Some(glob::Pattern::new("parse").unwrap()),
            limit: 1000,
            interval: Duration::from_millis(0),
            ..Default::default()
        };
        let slow = taps.subscribe(&req).unwrap();
        for _ in 0..(SUBSCRIBER_BATCHES + 10) {
            point.offer(&batch(1));
        }
        assert_eq!(slow.lost.load(Ordering::Relaxed), 10);
        assert_eq!(point.lost_total(), 10);
        drop(slow);
        drop(sub);
        assert_eq!(point.active.load(Ordering::Relaxed), 0);
        let all: Vec<_> = (0..MAX_SUBSCRIPTIONS).map(|_| taps.subscribe(&req)).collect();
        assert!(all.iter().all(Option::is_some));
        assert!(taps.subscribe(&req).is_none(), "one too many");
        drop(all);
        assert!(taps.subscribe(&req).is_some());
    }
}
