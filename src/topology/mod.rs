//! Running a topology: wiring outputs to inputs over bounded channels, spawning every
//! component, and shutting down gracefully.
//!
//! Each transform and sink owns one input channel holding at most
//! [`CHANNEL_BATCHES`] batches; every upstream output feeds it through a
//! [`crate::component::Fanout`]. A full channel makes the sender wait, so a slow sink slows the
//! sources instead of growing memory. On SIGINT/SIGTERM the sources stop reading; as
//! their outputs close, every downstream component drains, flushes and finishes, and
//! the sources write their last checkpoints from the acknowledgements that come back.
//!
//! A reload ([`reload`]) replaces only the components whose configuration changed,
//! rewiring the outputs of the others ([`running`]).

mod reload;
mod running;
mod transform;
pub mod watch;

use crate::config::Topology;
use crate::metrics::{Registry, Snapshot};
use crate::tap::Taps;
use running::{Ended, Running};
use std::collections::HashSet;
use std::sync::Arc;

pub use reload::ReloadFrom;

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
/// `api`, serves the API on it meanwhile. With `reload`, SIGHUP (and with `watch`, an
/// edit of its files) reloads it from there.
pub async fn run(topology: Topology, api: Option<crate::api::Bound>, reload: Option<ReloadFrom>) -> Report {
    let Topology {
        shutdown_timeout,
        reload_timeout,
        nodes,
        data_dir,
        files,
        ..
    } = topology;
    let api = api.map(|bound| {
        let archives = crate::api::archives(&bound, &nodes);
        (bound, archives)
    });
    let mut running = Running::new(data_dir);
    running.apply(nodes, &HashSet::new(), tokio::time::Instant::now());
    let (node_info, metrics, tap_points) = running.graph();
    let inputs = node_info.iter().map(|n| (n.id.clone(), n.inputs.clone())).collect();
    let registry = Registry::new(node_info, metrics);
    let taps = Arc::new(Taps::new(tap_points, inputs));
    registry.spawn_sampler(std::time::Duration::from_secs(1));
    let api_task = api.map(|(bound, archives)| crate::api::serve(bound, registry.clone(), taps.clone(), archives));
    registry.set_running();
    tracing::info!(components = running.components.len(), "Topology started.");
    let mut reloader = reload.map(|from| reload::Reloader::new(from, &files, reload_timeout));

    // Phase 1: run until the sources finish by themselves, a signal arrives, or a
    // transform or sink fails (its events would pile up as errors: stop instead).
    let mut signalled = false;
    let mut signals = Signals::new();
    while running.sources_running() {
        let deadline = running.next_deadline();
        tokio::select! {
            ended = running.join_next() => if let Some(Ended::Failed) = ended {
                tracing::error!("A transform or sink failed; shutting the topology down.");
                break;
            },
            () = sleep_until(deadline) => running.abort_overdue(),
            name = signals.next() => {
                tracing::info!(signal = name, "Shutting down: stopping sources, draining and flushing.");
                signalled = true;
                break;
            }
            why = reload::requested(&mut reloader) => {
                if let Some(r) = &mut reloader
                    && r.reload(why, &mut running, &registry, &taps).await
                {
                    tracing::error!("A transform or sink failed; shutting the topology down.");
                    break;
                }
            }
        }
    }
    running.stop_sources();
    registry.set_draining();

    // Phase 2: let everything drain, within the deadline.
    let deadline = tokio::time::sleep(shutdown_timeout);
    tokio::pin!(deadline);
    let mut timed_out = false;
    while running.busy() {
        let retiring = running.next_deadline();
        tokio::select! {
            _ = running.join_next() => {},
            () = sleep_until(retiring) => running.abort_overdue(),
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
        metrics: running.components.iter().map(|c| c.metrics.snapshot()).collect(),
        timed_out,
        failures: std::mem::take(&mut running.failures),
    }
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
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
