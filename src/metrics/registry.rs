//! Everything a running topology exposes to the API: each component's counters, the
//! graph (kinds, types, inputs, named outputs), lifecycle (started, draining) and the
//! per-second rates and utilization a sampler derives from the counters.

use super::{ComponentMetrics, Snapshot};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// One component as the graph sees it.
#[derive(Debug, Clone, Serialize)]
pub struct NodeInfo {
    pub id: String,
    pub kind: &'static str,
    #[serde(rename = "type")]
    pub type_name: String,
    /// What it reads: `id` (a default output) or `id.name` (a named output).
    pub inputs: Vec<String>,
    /// Its named outputs besides the default one.
    pub outputs: Vec<String>,
}

/// Rates over the last sampling interval.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Rates {
    pub received_events_per_sec: f64,
    pub sent_events_per_sec: f64,
    /// Share of time not spent waiting for input, smoothed (transforms and sinks).
    pub utilization: f64,
}

struct Sample {
    at: Instant,
    received: u64,
    sent: u64,
    idle_nanos: u64,
    rates: Rates,
}

/// The components of the running topology and their counters, replaced as a whole on
/// a reload.
struct Graph {
    nodes: Arc<Vec<NodeInfo>>,
    components: Arc<Vec<Arc<ComponentMetrics>>>,
}

/// The running topology, for the API.
pub struct Registry {
    graph: RwLock<Graph>,
    /// Reloads applied and refused since the start.
    pub reloads: [AtomicU64; 2],
    pub started: Instant,
    running: AtomicBool,
    draining: AtomicBool,
    samples: Mutex<HashMap<String, Sample>>,
}

impl Registry {
    /// A registry of these components (in the same order as `nodes`).
    pub fn new(nodes: Vec<NodeInfo>, components: Vec<Arc<ComponentMetrics>>) -> Arc<Self> {
        Arc::new(Registry {
            graph: RwLock::new(Graph {
                nodes: Arc::new(nodes),
                components: Arc::new(components),
            }),
            reloads: Default::default(),
            started: Instant::now(),
            running: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            samples: Mutex::default(),
        })
    }

    /// Marks every component started.
    pub fn set_running(&self) {
        self.running.store(true, Ordering::Relaxed);
    }
    /// Marks the topology shutting down.
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }
    /// Started and not shutting down.
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Relaxed) && !self.draining.load(Ordering::Relaxed)
    }
    /// Shutting down.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// The graph: every component with its inputs and named outputs.
    pub fn nodes(&self) -> Arc<Vec<NodeInfo>> {
        self.graph.read().unwrap_or_else(|e| e.into_inner()).nodes.clone()
    }

    /// Every component's counters, in the order of [`Registry::nodes`].
    pub fn components(&self) -> Arc<Vec<Arc<ComponentMetrics>>> {
        self.graph.read().unwrap_or_else(|e| e.into_inner()).components.clone()
    }

    /// Replaces the graph after a reload; the rates of components kept go on.
    pub fn replace(&self, nodes: Vec<NodeInfo>, components: Vec<Arc<ComponentMetrics>>) {
        *self.graph.write().unwrap_or_else(|e| e.into_inner()) = Graph {
            nodes: Arc::new(nodes),
            components: Arc::new(components),
        };
    }

    /// Counts a reload: applied (`ok`) or refused.
    pub fn reloaded(&self, ok: bool) {
        self.reloads[usize::from(!ok)].fetch_add(1, Ordering::Relaxed);
    }

    /// The component `id`.
    pub fn component(&self, id: &str) -> Option<Arc<ComponentMetrics>> {
        self.components().iter().find(|c| c.id == id).cloned()
    }

    /// Updates every component's rates from its counters; call about once a second.
    pub fn sample(&self) {
        let now = Instant::now();
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        for c in self.components().iter() {
            let s: Snapshot = c.snapshot();
            let entry = samples.entry(c.id.clone()).or_insert(Sample {
                at: self.started,
                received: 0,
                sent: 0,
                idle_nanos: 0,
                rates: Rates::default(),
            });
            let secs = now.duration_since(entry.at).as_secs_f64().max(1e-3);
            let wall = now.duration_since(entry.at).as_nanos() as f64;
            let idle = s.idle_nanos.saturating_sub(entry.idle_nanos) as f64;
            let busy = if c.kind == "source" {
                0.0
            } else {
                (1.0 - idle / wall.max(1.0)).clamp(0.0, 1.0)
            };
            // Exponentially weighted, like Vector's: about a 5 s memory at 1 s samples.
            let utilization = if entry.at == self.started {
                busy
            } else {
                0.8 * entry.rates.utilization + 0.2 * busy
            };
            entry.rates = Rates {
                received_events_per_sec: s.received_events.saturating_sub(entry.received) as f64 / secs,
                sent_events_per_sec: s.sent_events.saturating_sub(entry.sent) as f64 / secs,
                utilization,
            };
            entry.at = now;
            entry.received = s.received_events;
            entry.sent = s.sent_events;
            entry.idle_nanos = s.idle_nanos;
        }
    }

    /// The last sampled rates of component `id`.
    pub fn rates(&self, id: &str) -> Rates {
        self.samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .map(|s| s.rates)
            .unwrap_or_default()
    }

    /// Samples every `every` until the process ends.
    pub fn spawn_sampler(self: &Arc<Self>, every: Duration) {
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                tick.tick().await;
                match me.upgrade() {
                    Some(r) => r.sample(),
                    None => return,
                }
            }
        });
    }
}
