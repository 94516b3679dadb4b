//! The components of a running topology: each one's task, its input channel and the
//! handles of its outputs, so that a reload can stop, start and rewire components one
//! by one while the others keep running.
//!
//! The engine holds only weak references to the channels and fan-outs: a component's
//! input closes once every upstream output feeding it is gone or rewired, so a
//! shutdown drains front to back and a replaced component drains what it still has.

use super::transform;
use crate::buffer::{BufferConfig, BufferKind, DiskBuffer};
use crate::component::{Body, Fanout, FanoutHandle, Input, Kind, Outputs, SinkContext, SourceContext};
use crate::config::Node;
use crate::event::EventBatch;
use crate::metrics::ComponentMetrics;
use crate::metrics::registry::NodeInfo;
use crate::shutdown::{self, ShutdownTrigger};
use crate::tap::TapPoint;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;

/// The turn of a sink task waiting for buffer directory `dir` and opening it: one at
/// a time per directory.
fn opening_turn(dir: &std::path::Path) -> Arc<tokio::sync::Mutex<()>> {
    static TURNS: std::sync::LazyLock<std::sync::Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>> =
        std::sync::LazyLock::new(Default::default);
    let mut turns = TURNS.lock().unwrap_or_else(|e| e.into_inner());
    turns.entry(dir.to_path_buf()).or_default().clone()
}

/// One running component.
pub(super) struct Component {
    pub info: NodeInfo,
    pub kind: Kind,
    pub fingerprint: u64,
    buffer: BufferConfig,
    pub metrics: Arc<ComponentMetrics>,
    /// Each output (`id`, `id.name`) with the handle that rewires it and its tap.
    outputs: Vec<(String, FanoutHandle, Arc<TapPoint>)>,
    /// Transforms and sinks: their input (a disk buffer's writer, if they have one).
    input: Option<mpsc::WeakSender<EventBatch>>,
    /// Sources: stops it.
    stop: Option<ShutdownTrigger>,
    /// A sink's disk buffer, kept across a reload of the sink.
    disk: Option<Arc<DiskBuffer>>,
    /// The disk buffer its task is opening.
    opening: Option<tokio::sync::oneshot::Receiver<Arc<DiskBuffer>>>,
    task: u64,
}

/// A component task that has not ended.
struct Task {
    id: String,
    kind: Kind,
    abort: AbortHandle,
    /// Set once a reload replaced or removed it: it is stopped at this deadline.
    retiring: Option<Instant>,
}

/// How a component task ended.
pub(super) struct TaskEnd {
    key: u64,
    id: String,
    result: Result<(), String>,
}

/// What the end of a task means for the topology.
pub(super) enum Ended {
    /// Nothing to do.
    Fine,
    /// A current transform or sink failed: the topology should stop.
    Failed,
}

/// The running components and their tasks.
pub(super) struct Running {
    pub data_dir: PathBuf,
    /// In topology order (sources, transforms, sinks).
    pub components: Vec<Component>,
    tasks: JoinSet<TaskEnd>,
    alive: HashMap<u64, Task>,
    next_key: u64,
    /// Components that failed, with their error.
    pub failures: Vec<(String, String)>,
}

impl Running {
    pub fn new(data_dir: PathBuf) -> Self {
        Running {
            data_dir,
            components: Vec::new(),
            tasks: JoinSet::new(),
            alive: HashMap::new(),
            next_key: 0,
            failures: Vec::new(),
        }
    }

    pub fn get(&self, id: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.info.id == id)
    }

    /// True while a current (not retiring) source runs.
    pub fn sources_running(&self) -> bool {
        self.alive
            .values()
            .any(|t| t.kind == Kind::Source && t.retiring.is_none())
    }

    /// True while any task runs.
    pub fn busy(&self) -> bool {
        !self.alive.is_empty()
    }

    /// The earliest deadline of a retiring task.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.alive.values().filter_map(|t| t.retiring).min()
    }

    /// Stops the retiring tasks whose deadline passed; what they held unacknowledged is
    /// read again by their sources (or their disk buffer).
    pub fn abort_overdue(&mut self) {
        let now = Instant::now();
        for t in self.alive.values_mut() {
            if t.retiring.is_some_and(|d| d <= now) {
                tracing::warn!(component = %t.id, "A replaced component did not drain within reload_timeout_secs; stopping it. What it held unacknowledged is read again.");
                t.abort.abort();
                t.retiring = None;
            }
        }
    }

    /// Waits for the next task to end; `None` when none runs.
    pub async fn join_next(&mut self) -> Option<Ended> {
        let res = self.tasks.join_next().await?;
        Some(self.ended(res))
    }

    fn ended(&mut self, res: Result<TaskEnd, tokio::task::JoinError>) -> Ended {
        let (key, id, result) = match res {
            Ok(TaskEnd { key, id, result }) => (key, id, result),
            Err(e) => {
                let key = self.alive.iter().find(|(_, t)| t.abort.id() == e.id()).map(|(k, _)| *k);
                let id = key
                    .and_then(|k| self.alive.get(&k))
                    .map_or("?".into(), |t| t.id.clone());
                let result = if e.is_cancelled() {
                    Ok(())
                } else {
                    Err(format!("task panicked: {e}"))
                };
                (key.unwrap_or(u64::MAX), id, result)
            }
        };
        let current = self.components.iter().any(|c| c.task == key);
        let task = self.alive.remove(&key);
        let Err(error) = result else { return Ended::Fine };
        if !current {
            tracing::warn!(component = %id, error = %error, "A replaced component failed while it drained.");
            return Ended::Fine;
        }
        tracing::error!(component = %id, error = %error, "Component failed.");
        if let Some(c) = self.get(&id) {
            c.metrics.failed(&error);
        }
        self.failures.push((id, error));
        match task.map(|t| t.kind) {
            Some(Kind::Source) | None => Ended::Fine,
            Some(_) => Ended::Failed,
        }
    }

    /// Strong handles on every current input, so that none closes while the sources
    /// feeding it are replaced; drop them once the successors are wired.
    pub fn hold_inputs(&self) -> Vec<mpsc::Sender<EventBatch>> {
        self.components
            .iter()
            .filter_map(|c| c.input.as_ref()?.upgrade())
            .collect()
    }

    /// Asks every current source to stop reading.
    pub fn stop_sources(&self) {
        for c in &self.components {
            if let Some(stop) = &c.stop {
                stop.trigger();
            }
        }
    }

    /// Stops the sources `ids` and waits until they are done (at most `timeout`,
    /// then they are aborted), so that their replacements can take their ports.
    pub async fn stop_and_wait(&mut self, ids: &[String], timeout: Duration) -> Vec<Ended> {
        let mut keys: HashSet<u64> = HashSet::new();
        for c in self.components.iter().filter(|c| ids.contains(&c.info.id)) {
            if let Some(stop) = &c.stop {
                stop.trigger();
            }
            keys.insert(c.task);
        }
        let deadline = Instant::now() + timeout;
        let mut outcomes = Vec::new();
        while keys.iter().any(|k| self.alive.contains_key(k)) {
            tokio::select! {
                res = self.tasks.join_next() => match res {
                    Some(res) => outcomes.push(self.ended(res)),
                    None => break,
                },
                () = tokio::time::sleep_until(deadline) => {
                    for k in &keys {
                        if let Some(t) = self.alive.get(k) {
                            tracing::warn!(component = %t.id, "A replaced source did not stop within reload_timeout_secs; aborting it.");
                            t.abort.abort();
                        }
                    }
                    break;
                }
            }
        }
        // Aborted tasks end at their next await; collect them so the ports are free.
        while keys.iter().any(|k| self.alive.contains_key(k)) {
            match self.tasks.join_next().await {
                Some(res) => outcomes.push(self.ended(res)),
                None => break,
            }
        }
        outcomes
    }

    /// Makes `nodes` the running topology: components in `keep` go on as they are,
    /// every other node is started, components no longer current drain and end (by
    /// `retire_by` at the latest), and every output is rewired to its consumers in the
    /// new graph. Sources to replace must have been stopped before.
    pub fn apply(&mut self, nodes: Vec<Node>, keep: &HashSet<String>, retire_by: Instant) {
        for c in &mut self.components {
            if let Some(Ok(disk)) = c.opening.as_mut().map(|o| o.try_recv()) {
                c.disk = Some(disk);
                c.opening = None;
            }
        }
        // Inputs of the new components; a sink keeping its disk buffer keeps its input.
        let mut new_inputs: HashMap<String, (mpsc::Sender<EventBatch>, Option<mpsc::Receiver<EventBatch>>)> =
            HashMap::new();
        let mut reattach: HashMap<String, Arc<DiskBuffer>> = HashMap::new();
        for n in nodes.iter().filter(|n| n.kind != Kind::Source && !keep.contains(&n.id)) {
            let old = self.get(&n.id);
            let kept_buffer = old
                .filter(|o| {
                    n.kind == Kind::Sink && n.buffer.kind == BufferKind::Disk && o.buffer.kind == BufferKind::Disk
                })
                .and_then(|o| Some((o.disk.clone()?, o.input.as_ref()?.upgrade()?)))
                // A buffer whose reader is gone (its sink failed) is not handed on.
                .filter(|(disk, _)| disk.is_readable());
            if let Some((disk, tx)) = kept_buffer {
                reattach.insert(n.id.clone(), disk);
                new_inputs.insert(n.id.clone(), (tx, None));
                continue;
            }
            let (tx, rx) = mpsc::channel(super::CHANNEL_BATCHES);
            new_inputs.insert(n.id.clone(), (tx, Some(rx)));
        }
        // Each output's consumers in the new graph.
        let mut consumers_of: HashMap<String, Vec<(String, mpsc::Sender<EventBatch>)>> = HashMap::new();
        for n in nodes.iter().filter(|n| n.kind != Kind::Source) {
            let tx = match new_inputs.get(&n.id) {
                Some((tx, _)) => Some(tx.clone()),
                None => self.get(&n.id).and_then(|c| c.input.as_ref()?.upgrade()),
            };
            let Some(tx) = tx else { continue };
            for input in &n.inputs {
                consumers_of
                    .entry(input.clone())
                    .or_default()
                    .push((n.id.clone(), tx.clone()));
            }
        }
        // Kept components feed the new graph from now on; a batch on its way still
        // reaches the consumer it started to.
        for c in self.components.iter().filter(|c| keep.contains(&c.info.id)) {
            for (output, handle, _) in &c.outputs {
                handle.set(consumers_of.get(output).cloned().unwrap_or_default());
            }
        }
        // The replaced and removed drain into what they fed, then end.
        let current: HashSet<&str> = keep.iter().map(String::as_str).collect();
        for c in self.components.iter().filter(|c| !current.contains(c.info.id.as_str())) {
            if let Some(t) = self.alive.get_mut(&c.task)
                && t.kind != Kind::Source
            {
                t.retiring = Some(retire_by);
            }
        }
        let mut old: HashMap<String, Component> = self.components.drain(..).map(|c| (c.info.id.clone(), c)).collect();
        // Consumers first, so that nothing is sent before its consumer runs.
        let mut order: Vec<Node> = nodes;
        order.sort_by_key(|n| match n.kind {
            Kind::Sink => 0,
            Kind::Transform => 1,
            Kind::Source => 2,
        });
        let mut started = Vec::new();
        for n in order {
            if keep.contains(&n.id)
                && let Some(mut c) = old.remove(&n.id)
            {
                // The same `inputs` may resolve to other outputs (a glob).
                c.info.inputs = n.inputs;
                started.push(c);
                continue;
            }
            let taps = old.get(&n.id).map(|c| c.outputs.clone()).unwrap_or_default();
            let input = new_inputs.remove(&n.id);
            let disk = reattach.remove(&n.id);
            started.push(self.start(n, input, disk, &consumers_of, &taps));
        }
        let rank = |k: Kind| match k {
            Kind::Source => 0,
            Kind::Transform => 1,
            Kind::Sink => 2,
        };
        started.sort_by_key(|c| rank(c.kind));
        self.components = started;
    }

    /// Starts one component.
    fn start(
        &mut self,
        n: Node,
        input: Option<(mpsc::Sender<EventBatch>, Option<mpsc::Receiver<EventBatch>>)>,
        reattach: Option<Arc<DiskBuffer>>,
        consumers_of: &HashMap<String, Vec<(String, mpsc::Sender<EventBatch>)>>,
        old_taps: &[(String, FanoutHandle, Arc<TapPoint>)],
    ) -> Component {
        let key = self.next_key;
        self.next_key += 1;
        let metrics = n.metrics.clone();
        let id = n.id.clone();
        let mut handles = Vec::new();
        // A sink's default output is what it writes, counted by the sink itself.
        let counted_default = n.kind != Kind::Sink;
        let mut output = |name: Option<&str>| {
            let full = name.map_or(id.clone(), |o| format!("{id}.{o}"));
            let fanout = Fanout::default();
            for (consumer, tx) in consumers_of.get(&full).into_iter().flatten() {
                fanout.add(consumer, tx.clone());
            }
            // The tap of a replaced component's output goes on, with its subscribers.
            let tap = old_taps
                .iter()
                .find(|(o, _, _)| *o == full)
                .map_or_else(|| TapPoint::new(&full), |(_, _, t)| t.clone());
            handles.push((full, fanout.handle(), tap.clone()));
            fanout.observed(metrics.output_counter(name), tap)
        };
        let default = if counted_default {
            output(None)
        } else {
            Fanout::default()
        };
        let named = n.built.outputs.iter().map(|o| (o.clone(), output(Some(o)))).collect();
        let out = Outputs { default, named };
        let info = NodeInfo {
            id: n.id.clone(),
            kind: n.kind.name(),
            type_name: n.type_name.clone(),
            inputs: n.inputs.clone(),
            outputs: n.built.outputs.clone(),
        };
        let mut component = Component {
            info,
            kind: n.kind,
            fingerprint: n.fingerprint,
            buffer: n.buffer.clone(),
            metrics: metrics.clone(),
            outputs: handles,
            input: input.as_ref().map(|(tx, _)| tx.downgrade()),
            stop: None,
            disk: None,
            opening: None,
            task: key,
        };
        let abort = match n.built.body {
            Body::Source(s) => {
                if consumers_of
                    .keys()
                    .all(|o| o != &id && !o.starts_with(&format!("{id}.")))
                {
                    tracing::warn!(component = %id, "Source feeds no component; its events are discarded.");
                }
                let (trigger, signal) = shutdown::channel();
                component.stop = Some(trigger);
                let cx = SourceContext {
                    id: id.clone(),
                    out,
                    shutdown: signal,
                    metrics,
                };
                self.tasks.spawn(async move {
                    let result = s.run(cx).await.map_err(|e| e.to_string());
                    TaskEnd { key, id, result }
                })
            }
            Body::Transform(t) => {
                let (tx, rx) = input.expect("a transform has an input");
                metrics.watch_input(&tx);
                let rx = rx.expect("a transform's input is its own");
                let input = Input::new(rx, metrics.clone());
                self.tasks.spawn(async move {
                    let result = transform::run(t, input, out, metrics).await;
                    TaskEnd { key, id, result }
                })
            }
            Body::Sink(s) => {
                let (tx, rx) = input.expect("a sink has an input");
                metrics.watch_input(&tx);
                // A disk buffer sits between the inputs and the sink; a sink replaced
                // by a reload may still have it open, then this one waits.
                enum Reads {
                    Reattached(mpsc::Receiver<EventBatch>, Arc<DiskBuffer>, u64),
                    Opens(mpsc::Receiver<EventBatch>, PathBuf),
                    Channel(mpsc::Receiver<EventBatch>),
                }
                let reads = match (reattach, rx) {
                    (Some(disk), _) => {
                        let (rx, generation) = disk.reattach(&n.buffer);
                        component.disk = Some(disk.clone());
                        Some(Reads::Reattached(rx, disk, generation))
                    }
                    (None, Some(rx)) if n.buffer.kind == BufferKind::Disk => {
                        Some(Reads::Opens(rx, self.data_dir.join(&n.id).join("buffer")))
                    }
                    (None, Some(rx)) => Some(Reads::Channel(rx)),
                    (None, None) => None,
                };
                let buffer = n.buffer.clone();
                let (disk_tx, disk_rx) = tokio::sync::oneshot::channel();
                let task = self.tasks.spawn(async move {
                    let opened = match reads {
                        None => Err("a sink without its input".to_string()),
                        Some(Reads::Channel(rx)) => Ok((rx, None)),
                        Some(Reads::Reattached(rx, disk, generation)) => Ok((rx, Some((disk, generation)))),
                        Some(Reads::Opens(rx, dir)) => {
                            let turn = opening_turn(&dir);
                            let _turn = turn.lock().await;
                            if crate::buffer::in_use(&dir) {
                                tracing::info!(component = %id, "Waiting for the replaced sink to close its disk buffer.");
                            }
                            while crate::buffer::in_use(&dir) {
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                            let m = metrics.clone();
                            // Recovery reads the segments: off the runtime's workers.
                            let opened = tokio::task::spawn_blocking(move || crate::buffer::open(&buffer, &dir, &m, rx)).await;
                            match opened {
                                Ok(Ok((rx, disk))) => {
                                    let disk = Arc::new(disk);
                                    let _ = disk_tx.send(disk.clone());
                                    Ok((rx, Some((disk, 0))))
                                }
                                Ok(Err(e)) => Err(e.to_string()),
                                Err(e) => Err(format!("opening the disk buffer failed: {e}")),
                            }
                        }
                    };
                    let (rx, disk) = match opened {
                        Ok(o) => o,
                        Err(e) => return TaskEnd { key, id, result: Err(e) },
                    };
                    let cx = SinkContext {
                        id: id.clone(),
                        input: Input::new(rx, metrics.clone()),
                        out,
                        metrics,
                    };
                    let result = s.run(cx).await.map_err(|e| e.to_string());
                    // The last sink reading a buffer writes its position.
                    if let Some((disk, generation)) = disk
                        && disk.is_read_by(generation)
                    {
                        disk.finish(Duration::from_secs(5)).await;
                    }
                    TaskEnd { key, id, result }
                });
                component.opening = Some(disk_rx);
                task
            }
        };
        self.alive.insert(
            key,
            Task {
                id: component.info.id.clone(),
                kind: n.kind,
                abort,
                retiring: None,
            },
        );
        component
    }

    /// The graph as the API shows it, and every output's tap.
    pub fn graph(&self) -> (Vec<NodeInfo>, Vec<Arc<ComponentMetrics>>, Vec<Arc<TapPoint>>) {
        let nodes = self.components.iter().map(|c| c.info.clone()).collect();
        let metrics = self.components.iter().map(|c| c.metrics.clone()).collect();
        let taps = self
            .components
            .iter()
            .flat_map(|c| c.outputs.iter().map(|(_, _, t)| t.clone()))
            .collect();
        (nodes, metrics, taps)
    }
}
