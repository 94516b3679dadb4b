//! Reloading a running topology on SIGHUP or, with `--watch`, on an edit of its files.
//!
//! The new topology is loaded and checked in full first; if it is invalid, the
//! running one goes on and the errors are logged. Otherwise only the components whose
//! configuration changed (type, inputs, options, buffer, the files they read) are
//! replaced: a replaced source stops (and its port is free) before its successor
//! starts; a replaced transform or sink drains what it still has within
//! `reload_timeout_secs` while its successor already takes the new events, and is
//! stopped after that (what it held unacknowledged is read again by its source, or by
//! the successor from the sink's disk buffer). The others keep running untouched: a
//! Kafka consumer keeps its group membership, a file source its positions, a sink
//! its connections. A rebuilt component keeps its counters.

use super::running::{Ended, Running};
use super::watch::FileWatcher;
use crate::config::{self, Overrides};
use crate::metrics::Registry;
use crate::tap::Taps;
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

/// Where a running topology reloads itself from.
#[derive(Debug, Clone)]
pub struct ReloadFrom {
    /// The topology files, as given at the start.
    pub files: Vec<PathBuf>,
    /// The settings from outside the files.
    pub overrides: Overrides,
    /// Also reload when a file changes (`--watch`).
    pub watch: bool,
}

/// What asked for a reload.
pub(super) enum Why {
    Signal,
    Edit,
}

/// Listens for reload requests and carries them out.
pub(super) struct Reloader {
    from: ReloadFrom,
    timeout: Duration,
    hangup: Option<tokio::signal::unix::Signal>,
    watcher: Option<FileWatcher>,
}

/// Resolves when a reload is asked for; never without a reloader.
pub(super) async fn requested(reloader: &mut Option<Reloader>) -> Why {
    let Some(r) = reloader else {
        return std::future::pending().await;
    };
    let hangup = async {
        match &mut r.hangup {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    let edit = async {
        match &mut r.watcher {
            Some(w) => w.changed().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = hangup => Why::Signal,
        () = edit => Why::Edit,
    }
}

impl Reloader {
    /// Listens for SIGHUP and, with `from.watch`, for edits of `files`.
    pub fn new(from: ReloadFrom, files: &[PathBuf], timeout: Duration) -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        let hangup = signal(SignalKind::hangup())
            .inspect_err(|e| tracing::warn!(error = %e, "Cannot listen for SIGHUP; reload with --watch instead."))
            .ok();
        let watcher = if from.watch {
            FileWatcher::new(files)
                .inspect_err(
                    |e| tracing::warn!(error = %e, "Cannot watch the topology files; reload with SIGHUP instead."),
                )
                .ok()
        } else {
            None
        };
        Reloader {
            from,
            timeout,
            hangup,
            watcher,
        }
    }

    /// Loads the topology again and applies what changed. True when a transform or
    /// sink failed meanwhile (the topology should stop).
    pub async fn reload(&mut self, why: Why, running: &mut Running, registry: &Registry, taps: &Taps) -> bool {
        let why = match why {
            Why::Signal => "SIGHUP",
            Why::Edit => "a file changed",
        };
        tracing::info!(cause = why, "Reloading the topology.");
        let previous: Vec<_> = running.components.iter().map(|c| c.metrics.clone()).collect();
        let new = match config::load_reusing(&self.from.files, &self.from.overrides, &previous) {
            Ok(t) => t,
            Err(errors) => {
                tracing::error!(errors = %errors, "The new topology is invalid; the running one goes on unchanged.");
                registry.reloaded(false);
                return false;
            }
        };
        if new.data_dir != running.data_dir {
            tracing::error!(data_dir = %new.data_dir.display(), "A reload cannot move data_dir; the running topology goes on unchanged. Restart pipe to move it.");
            registry.reloaded(false);
            return false;
        }
        let unchanged = |id: &str, fingerprint: u64| running.get(id).is_some_and(|c| c.fingerprint == fingerprint);
        let keep: HashSet<String> = new
            .nodes
            .iter()
            .filter(|n| unchanged(&n.id, n.fingerprint))
            .map(|n| n.id.clone())
            .collect();
        let ids = |pick: &dyn Fn(&str) -> bool| -> Vec<String> {
            new.nodes.iter().map(|n| n.id.clone()).filter(|id| pick(id)).collect()
        };
        let changed = ids(&|id| !keep.contains(id) && running.get(id).is_some());
        let added = ids(&|id| running.get(id).is_none());
        let removed: Vec<String> = running
            .components
            .iter()
            .map(|c| c.info.id.clone())
            .filter(|id| !new.nodes.iter().any(|n| &n.id == id))
            .collect();
        self.timeout = new.reload_timeout;
        if let Some(w) = &mut self.watcher {
            w.set_files(&new.files);
        }
        registry.reloaded(true);
        if changed.is_empty() && added.is_empty() && removed.is_empty() {
            tracing::info!("Reloaded: nothing changed.");
            return false;
        }
        // Replaced sources stop first, so that their successors can take their ports.
        let stopping: Vec<String> = running
            .components
            .iter()
            .filter(|c| c.kind == crate::component::Kind::Source && !keep.contains(&c.info.id))
            .map(|c| c.info.id.clone())
            .collect();
        // Their consumers' inputs stay open meanwhile, for the successors to feed.
        let held = running.hold_inputs();
        let outcomes = running.stop_and_wait(&stopping, self.timeout).await;
        let failed = outcomes.iter().any(|o| matches!(o, Ended::Failed));
        running.apply(new.nodes, &keep, tokio::time::Instant::now() + self.timeout);
        drop(held);
        let (nodes, metrics, points) = running.graph();
        taps.replace(points, nodes.iter().map(|n| (n.id.clone(), n.inputs.clone())).collect());
        registry.replace(nodes, metrics);
        tracing::info!(changed = ?changed, added = ?added, removed = ?removed, kept = keep.len(), "Reloaded the topology.");
        failed
    }
}
