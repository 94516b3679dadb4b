//! Running a topology: wiring outputs to inputs over bounded channels, spawning every
//! component, and shutting down gracefully.
//!
//! Each transform and sink owns one input channel holding at most
//! [`CHANNEL_BATCHES`] batches; every upstream output feeds it through a
//! [`Fanout`]. A full channel makes the sender wait, so a slow sink slows the
//! sources instead of growing memory. On SIGINT/SIGTERM the sources stop reading; as
//! their outputs close, every downstream component drains, flushes and finishes, and
//! the sources write their last checkpoints from the acknowledgements that come back.

mod transform;

use crate::component::{Body, Fanout, Input, Kind, Outputs, SinkContext, SourceContext};
use crate::config::Topology;
use crate::metrics::registry::NodeInfo;
use crate::metrics::{ComponentMetrics, Registry, Snapshot};
use crate::shutdown;
use crate::tap::{TapPoint, Taps};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Batches a component's input channel holds before senders wait.
pub const CHANNEL_BATCHES: usize = 4;

/// How a run ended.
#[derive(Debug)]
pub struct Report {
    /// Every component's counters at the end.
    pub metrics: Vec<Snapshot>,
    /// True when the shutdown deadline passed before every component finished.
    pub timed_out: bool,
    /// Components that failed, with their error.
    pub failures: Vec<(String, String)>,
}

/// Runs `topology` until every source has finished (and everything drained) or a
/// shutdown signal arrives; then waits up to its shutdown timeout for the drain. With
/// `api`, serves the API on it meanwhile.
pub async fn run(topology: Topology, api: Option<crate::api::Bound>) -> Report {
    let Topology {
        shutdown_timeout,
        nodes,
        data_dir,
        ..
    } = topology;
    let (trigger, signal) = shutdown::channel();

    // One input channel per consumer, fed by the fan-outs of the outputs it names.
    let mut fanouts: HashMap<String, Fanout> = HashMap::new();
    let mut receivers: HashMap<String, mpsc::Receiver<crate::event::EventBatch>> = HashMap::new();
    for n in &nodes {
        if n.kind == Kind::Source {
            continue;
        }
        let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
        n.metrics.watch_input(&tx);
        for input in &n.inputs {
            fanouts.entry(input.clone()).or_default().add(tx.clone());
        }
        receivers.insert(n.id.clone(), rx);
    }
    // Every output is counted and has a tap, consumed or not.
    let mut tap_points = Vec::new();
    // A sink's default output is what it writes, counted by the sink itself.
    let mut outputs_of = |id: &str, named: &[String], metrics: &ComponentMetrics, counted_default: bool| {
        let mut observed = |name: Option<&str>| {
            let output = name.map_or(id.to_string(), |n| format!("{id}.{n}"));
            let tap = TapPoint::new(&output);
            tap_points.push(tap.clone());
            fanouts
                .remove(&output)
                .unwrap_or_default()
                .observed(metrics.output_counter(name), tap)
        };
        Outputs {
            default: if counted_default {
                observed(None)
            } else {
                Fanout::default()
            },
            named: named.iter().map(|o| (o.clone(), observed(Some(o)))).collect(),
        }
    };

    let api = api.map(|bound| {
        let archives = crate::api::archives(&bound, &nodes);
        (bound, archives)
    });
    let node_info: Vec<NodeInfo> = nodes
        .iter()
        .map(|n| NodeInfo {
            id: n.id.clone(),
            kind: n.kind.name(),
            type_name: n.type_name.clone(),
            inputs: n.inputs.clone(),
            outputs: n.built.outputs.clone(),
        })
        .collect();
    let mut all_metrics: Vec<Arc<ComponentMetrics>> = Vec::new();
    let mut sources = JoinSet::new();
    let mut others = JoinSet::new();
    for n in nodes {
        let metrics = n.metrics.clone();
        all_metrics.push(metrics.clone());
        let id = n.id.clone();
        match n.built.body {
            Body::Source(s) => {
                let out = outputs_of(&n.id, &n.built.outputs, &metrics, true);
                if out.default.is_empty() && out.named.iter().all(|(_, f)| f.is_empty()) {
                    tracing::warn!(component = %id, "Source feeds no component; its events are discarded.");
                }
                let cx = SourceContext {
                    id: id.clone(),
                    out,
                    shutdown: signal.clone(),
                    metrics,
                };
                sources.spawn(async move { (id, s.run(cx).await.map_err(|e| e.to_string())) });
            }
            Body::Transform(t) => {
                let out = outputs_of(&n.id, &n.built.outputs, &metrics, true);
                let rx = receivers.remove(&n.id).expect("every transform has an input channel");
                let input = Input::new(rx, metrics.clone());
                others.spawn(async move { (id, transform::run(t, input, out, metrics).await) });
            }
            Body::Sink(s) => {
                let rx = receivers.remove(&n.id).expect("every sink has an input channel");
                let out = outputs_of(&n.id, &n.built.outputs, &metrics, false);
                // A disk buffer sits between the inputs and the sink.
                let (rx, buffer) = match n.buffer.kind {
                    crate::buffer::BufferKind::Memory => (rx, None),
                    crate::buffer::BufferKind::Disk => {
                        let dir = data_dir.join(&n.id).join("buffer");
                        match crate::buffer::open(&n.buffer, &dir, &metrics, rx) {
                            Ok((rx, buffer)) => (rx, Some(buffer)),
                            Err(e) => {
                                others.spawn(async move { (id, Err(e.to_string())) });
                                continue;
                            }
                        }
                    }
                };
                let input = Input::new(rx, metrics.clone());
                let cx = SinkContext {
                    id: id.clone(),
                    input,
                    out,
                    metrics,
                };
                others.spawn(async move {
                    let result = s.run(cx).await.map_err(|e| e.to_string());
                    if let Some(buffer) = buffer {
                        buffer.finish(std::time::Duration::from_secs(5)).await;
                    }
                    (id, result)
                });
            }
        }
    }
    drop(fanouts);
    let inputs = node_info.iter().map(|n| (n.id.clone(), n.inputs.clone())).collect();
    let registry = Registry::new(node_info, all_metrics.clone());
    let taps = Arc::new(Taps::new(tap_points, inputs));
    registry.spawn_sampler(std::time::Duration::from_secs(1));
    let api_task = api.map(|(bound, archives)| crate::api::serve(bound, registry.clone(), taps, archives));
    registry.set_running();
    tracing::info!(components = all_metrics.len(), "Topology started.");

    let mut failures = Vec::new();
    // Notes how a component task ended; true when it failed.
    let mut record = |res: Result<(String, Result<(), String>), tokio::task::JoinError>| {
        let failure = match res {
            Ok((_, Ok(()))) => return false,
            Ok((id, Err(e))) => (id, e),
            Err(e) => ("?".into(), format!("task panicked or was cancelled: {e}")),
        };
        tracing::error!(component = %failure.0, error = %failure.1, "Component failed.");
        if let Some(c) = registry.component(&failure.0) {
            c.failed(&failure.1);
        }
        failures.push(failure);
        true
    };

    // Phase 1: run until the sources finish by themselves, a signal arrives, or a
    // transform or sink fails (its events would pile up as errors: stop instead).
    let mut signalled = false;
    let mut signals = Signals::new();
    while !sources.is_empty() {
        tokio::select! {
            res = sources.join_next() => if let Some(res) = res { record(res); },
            res = others.join_next(), if !others.is_empty() => if let Some(res) = res
                && record(res) {
                    tracing::error!("A transform or sink failed; shutting the topology down.");
                    break;
                },
            name = signals.next() => {
                tracing::info!(signal = name, "Shutting down: stopping sources, draining and flushing.");
                signalled = true;
                break;
            }
        }
    }
    trigger.trigger();
    registry.set_draining();

    // Phase 2: let everything drain, within the deadline.
    let deadline = tokio::time::sleep(shutdown_timeout);
    tokio::pin!(deadline);
    let mut timed_out = false;
    while !sources.is_empty() || !others.is_empty() {
        tokio::select! {
            res = sources.join_next(), if !sources.is_empty() => if let Some(res) = res { record(res); },
            res = others.join_next(), if !others.is_empty() => if let Some(res) = res { record(res); },
            _ = &mut deadline => { timed_out = true; break; }
            name = signals.next(), if signalled => {
                tracing::warn!(signal = name, "Second signal: exiting without waiting for the drain.");
                timed_out = true;
                break;
            }
        }
    }
    if timed_out {
        tracing::error!(
            timeout_secs = shutdown_timeout.as_secs(),
            "Shutdown did not finish in time; unacknowledged events will be read again on the next start."
        );
    }
    if let Some(task) = api_task {
        task.abort();
    }
    Report {
        metrics: all_metrics.iter().map(|m| m.snapshot()).collect(),
        timed_out,
        failures,
    }
}

/// SIGINT and SIGTERM as a stream of names.
struct Signals {
    int: Option<tokio::signal::unix::Signal>,
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        Signals {
            int: signal(SignalKind::interrupt()).ok(),
            term: signal(SignalKind::terminate()).ok(),
        }
    }

    async fn next(&mut self) -> &'static str {
        async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
            match s {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            _ = recv(&mut self.int) => "SIGINT",
            _ = recv(&mut self.term) => "SIGTERM",
        }
    }
}

#[cfg(test)]
mod tests;
