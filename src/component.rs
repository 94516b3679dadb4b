//! What a component is to the engine: a registry entry ([`ComponentDef`]) that builds a
//! running [`Source`], [`Transform`] or [`Sink`] from its TOML options, and the
//! contexts the engine hands each one when it runs.

use crate::cli::CliCommand;
use crate::event::{Event, EventBatch};
use crate::metrics::{ComponentMetrics, EventSpec, GaugeSpec};
use crate::shutdown::ShutdownSignal;
use crate::tap::TapPoint;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use tokio::sync::mpsc;

/// A boxed future returned by running components.
pub type BoxFuture = Pin<Box<dyn Future<Output = Result<(), crate::error::ComponentError>> + Send>>;

/// The three kinds of component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Source,
    Transform,
    Sink,
}

impl Kind {
    /// The topology table holding this kind (`sources`, `transforms`, `sinks`).
    pub fn table(self) -> &'static str {
        match self {
            Kind::Source => "sources",
            Kind::Transform => "transforms",
            Kind::Sink => "sinks",
        }
    }
    /// The singular name (`source`, `transform`, `sink`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Source => "source",
            Kind::Transform => "transform",
            Kind::Sink => "sink",
        }
    }
}

/// A component type in the registry.
pub struct ComponentDef {
    /// Source, transform or sink.
    pub kind: Kind,
    /// The `type` value naming it in a topology.
    pub name: &'static str,
    /// One line saying what it does (shown by `pipe list`).
    pub doc: &'static str,
    /// Builds the component from its options (the table minus `type` and `inputs`).
    pub build: fn(&BuildContext, toml::Value) -> Result<Built, BuildError>,
    /// The JSON schema of its options (its options struct's `schemars::schema_for!`):
    /// names, types, defaults and doc comments, for the generated docs.
    pub options: fn() -> schemars::Schema,
    /// A minimal topology using it, checked by the registry test.
    pub example: &'static str,
    /// The internal events it emits (its counters, in the generated docs).
    pub events: &'static [&'static EventSpec],
    /// The gauges it sets.
    pub gauges: &'static [&'static GaugeSpec],
    /// Sinks: counts what it delivered per hour, for `pipe reconcile`.
    pub count: Option<crate::reconcile::CountFn>,
    /// Sinks: reads what it wrote back with SQL (the console's SQL view).
    pub query: Option<crate::queryable::QueryDef>,
    /// Subcommands it adds to `pipe` (`pipe query`), usually none.
    pub commands: &'static [CliCommand],
}

/// What the engine knows about a component before it runs.
#[derive(Debug, Clone)]
pub struct BuildContext {
    /// The component id.
    pub id: String,
    /// The topology's name: its file names without extension, joined by `+`.
    pub topology: String,
    /// The topology's data directory; components keep state under `data_dir/<id>/`.
    pub data_dir: PathBuf,
    /// Its counters: register emitters and gauges here while building.
    pub metrics: Arc<ComponentMetrics>,
}

impl Default for BuildContext {
    fn default() -> Self {
        BuildContext {
            id: String::new(),
            topology: String::new(),
            data_dir: PathBuf::new(),
            metrics: ComponentMetrics::unchecked("", "test"),
        }
    }
}

impl BuildContext {
    /// The component's own state directory, `data_dir/<id>`.
    pub fn state_dir(&self) -> PathBuf {
        self.data_dir.join(&self.id)
    }
}

/// Something a component uses exclusively; two components may not claim the same one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Resource {
    /// A file path (or path template) written by the component.
    File(String),
    /// A listening address.
    Port(String),
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Resource::File(p) => write!(f, "file `{p}`"),
            Resource::Port(a) => write!(f, "address `{a}`"),
        }
    }
}

/// A built component, ready to run.
pub struct Built {
    /// Named outputs besides the default one (e.g. `dropped`), used as `id.name`.
    pub outputs: Vec<String>,
    /// What it claims exclusively.
    pub resources: Vec<Resource>,
    /// The runnable part.
    pub body: Body,
    /// Sources: how a raw record becomes events (for `pipe test`); none means one
    /// `{message = line}` per line.
    pub decoder: Option<Decoder>,
    /// Files it read while building (a VRL program's `file`): an edit of one is a
    /// change of the component for a reload, and `--watch` watches them.
    pub files: Vec<PathBuf>,
}

/// How a source turns one raw record into events: the fields of each event in it, or
/// why the source refuses the record (it goes to the source's `dropped` output, or
/// back to the client).
pub type Decoder = Arc<dyn Fn(&[u8]) -> Result<Vec<vrl::value::ObjectMap>, String> + Send + Sync>;

/// The runnable part of a built component.
pub enum Body {
    Source(Box<dyn Source>),
    Transform(Box<dyn Transform>),
    Sink(Box<dyn Sink>),
}

impl Built {
    /// A source with only the default output.
    pub fn source(s: impl Source + 'static) -> Self {
        Built {
            outputs: vec![],
            resources: vec![],
            body: Body::Source(Box::new(s)),
            decoder: None,
            files: vec![],
        }
    }
    /// A transform with the given named outputs.
    pub fn transform(t: impl Transform + 'static, outputs: Vec<String>) -> Self {
        Built {
            outputs,
            resources: vec![],
            body: Body::Transform(Box::new(t)),
            decoder: None,
            files: vec![],
        }
    }
    /// A sink (add named outputs with [`Built::with_outputs`]).
    pub fn sink(s: impl Sink + 'static) -> Self {
        Built {
            outputs: vec![],
            resources: vec![],
            body: Body::Sink(Box::new(s)),
            decoder: None,
            files: vec![],
        }
    }
    /// Declares named outputs.
    pub fn with_outputs(mut self, outputs: Vec<String>) -> Self {
        self.outputs = outputs;
        self
    }
    /// Declares how the source decodes a raw record.
    pub fn with_decoder(mut self, decoder: Decoder) -> Self {
        self.decoder = Some(decoder);
        self
    }
    /// Declares a file the component's configuration reads.
    pub fn reading(mut self, file: PathBuf) -> Self {
        self.files.push(file);
        self
    }
    /// Adds a resource claim.
    pub fn claim(mut self, r: Resource) -> Self {
        self.resources.push(r);
        self
    }
}

/// A configuration problem found while building one component.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct BuildError {
    /// The offending option, when one is to blame.
    pub key: Option<String>,
    /// What is wrong, and what would be right.
    pub message: String,
}

impl BuildError {
    /// An error blaming option `key`.
    pub fn key(key: &str, message: impl Into<String>) -> Self {
        BuildError {
            key: Some(key.to_string()),
            message: message.into(),
        }
    }
}

/// Deserializes a component's options, naming the unknown or mistyped key.
pub fn parse_options<T: DeserializeOwned>(options: toml::Value) -> Result<T, BuildError> {
    T::deserialize(options).map_err(|e| {
        let message = e.message().trim().to_string();
        let key = unknown_field(&message)
            .map(|(k, _)| k)
            .or_else(|| missing_field(&message));
        BuildError { key, message }
    })
}

/// From serde's "unknown field `x`, expected one of `a`, `b`" the key and the
/// expected names.
pub fn unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (name, rest) = rest.split_once('`')?;
    let expected = rest.split('`').skip(1).step_by(2).map(str::to_string).collect();
    Some((name.to_string(), expected))
}

fn missing_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_string())
}

/// The best "did you mean" among `candidates` for a misspelled `word`.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// One consumer of an output: its id and its input channel.
type Consumers = Arc<Vec<(String, mpsc::Sender<EventBatch>)>>;

/// Sends batches to every consumer of one output. A batch goes to each consumer; all
/// but the last get copies sharing the acknowledgement handles. Counts what it sends
/// and offers it to the output's tap. Its clones share one list of consumers, which the
/// engine rewires on a reload through a [`FanoutHandle`].
#[derive(Clone, Default)]
pub struct Fanout {
    consumers: Arc<RwLock<Consumers>>,
    sent: Option<Arc<AtomicU64>>,
    tap: Option<Arc<TapPoint>>,
}

impl Fanout {
    /// Counts sent events in `sent` and offers batches to `tap`.
    pub fn observed(mut self, sent: Arc<AtomicU64>, tap: Arc<TapPoint>) -> Self {
        self.sent = Some(sent);
        self.tap = Some(tap);
        self
    }

    /// Adds (or replaces) the consumer `id`.
    pub fn add(&self, id: &str, tx: mpsc::Sender<EventBatch>) {
        set_consumer(&self.consumers, id, Some(tx));
    }

    /// A handle that rewires this output's consumers without keeping it alive: once
    /// the component owning it is gone, its consumers' inputs close.
    pub fn handle(&self) -> FanoutHandle {
        FanoutHandle(Arc::downgrade(&self.consumers))
    }

    fn current(&self) -> Consumers {
        self.consumers.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// True when nobody consumes this output.
    pub fn is_empty(&self) -> bool {
        self.current().is_empty()
    }

    /// Sends `batch` to every consumer, waiting for room (backpressure). Returns
    /// false when every consumer is gone. With no consumer the events are dropped on
    /// purpose and count as delivered.
    pub async fn send(&self, batch: EventBatch) -> bool {
        if batch.is_empty() {
            return true;
        }
        if let Some(sent) = &self.sent {
            sent.fetch_add(batch.len() as u64, Ordering::Relaxed);
        }
        if let Some(tap) = &self.tap {
            tap.offer(&batch);
        }
        let consumers = self.current();
        let Some(((last_id, last), rest)) = consumers.split_last() else {
            for e in batch {
                e.finalize(crate::ack::BatchStatus::Delivered);
            }
            return true;
        };
        let mut alive = false;
        for (id, tx) in rest {
            let copy: EventBatch = batch.iter().map(Event::duplicate).collect();
            alive |= self.send_to(id, tx, copy).await;
        }
        alive |= self.send_to(last_id, last, batch).await;
        // A consumer stopped by a reload is no reason to stop while others feed on.
        alive || self.current().iter().any(|(_, tx)| !tx.is_closed())
    }

    /// Sends to one consumer; if it is gone because a reload replaced it, to its
    /// successor. False when it is gone for good (the batch is then dropped and its
    /// source hears it errored).
    async fn send_to(&self, id: &str, tx: &mpsc::Sender<EventBatch>, batch: EventBatch) -> bool {
        let mut tx = tx.clone();
        let mut batch = batch;
        loop {
            match tx.send(batch).await {
                Ok(()) => return true,
                Err(mpsc::error::SendError(back)) => {
                    let successor = self
                        .current()
                        .iter()
                        .find(|(c, t)| c == id && !t.same_channel(&tx))
                        .map(|(_, t)| t.clone());
                    let Some(next) = successor else { return false };
                    tx = next;
                    batch = back;
                }
            }
        }
    }
}

fn set_consumer(consumers: &RwLock<Consumers>, id: &str, tx: Option<mpsc::Sender<EventBatch>>) {
    let mut list = consumers.write().unwrap_or_else(|e| e.into_inner());
    let mut next: Vec<_> = list.iter().filter(|(c, _)| c != id).cloned().collect();
    next.extend(tx.map(|tx| (id.to_string(), tx)));
    *list = Arc::new(next);
}

/// Rewires one output from outside (the engine, on a reload).
#[derive(Clone)]
pub struct FanoutHandle(Weak<RwLock<Consumers>>);

impl FanoutHandle {
    /// Sets the whole list of consumers at once; a batch being sent meanwhile still
    /// goes to the consumers it started with. False when the output is gone.
    pub fn set(&self, consumers: Vec<(String, mpsc::Sender<EventBatch>)>) -> bool {
        let Some(shared) = self.0.upgrade() else { return false };
        *shared.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(consumers);
        true
    }
}

/// The outputs of a source or transform: the default one and any named ones.
#[derive(Clone, Default)]
pub struct Outputs {
    /// The default output (`id`).
    pub default: Fanout,
    /// Named outputs (`id.name`), in the order the component declared them.
    pub named: Vec<(String, Fanout)>,
}

impl Outputs {
    /// The named output `name`, if declared.
    pub fn named(&self, name: &str) -> Option<&Fanout> {
        self.named.iter().find(|(n, _)| n == name).map(|(_, f)| f)
    }
}

/// Handed to a running source.
pub struct SourceContext {
    /// The component id.
    pub id: String,
    /// Where its events go.
    pub out: Outputs,
    /// Fires when the source should stop reading.
    pub shutdown: ShutdownSignal,
    /// Its counters.
    pub metrics: Arc<ComponentMetrics>,
}

/// A source: runs until its input ends or shutdown fires, then lets its outputs close
/// and returns once what it emitted is acknowledged.
pub trait Source: Send {
    /// Runs the source.
    fn run(self: Box<Self>, cx: SourceContext) -> BoxFuture;
}

/// Where a transform puts its results for one input batch.
#[derive(Default)]
pub struct TransformOutput {
    /// Events for the default output.
    pub default: EventBatch,
    /// Events for named outputs, indexed like [`Built::outputs`].
    pub named: Vec<EventBatch>,
}

impl TransformOutput {
    /// An empty output for a transform with `named` named outputs.
    pub fn new(named: usize) -> Self {
        TransformOutput {
            default: Vec::new(),
            named: (0..named).map(|_| Vec::new()).collect(),
        }
    }
}

/// A synchronous transform over batches. The engine runs it on every core when
/// [`Transform::clone_box`] gives copies, keeping batch order.
pub trait Transform: Send {
    /// Transforms one batch.
    fn transform(&mut self, batch: EventBatch, out: &mut TransformOutput, metrics: &ComponentMetrics);
    /// A copy for parallel work, if the transform keeps no state across batches.
    fn clone_box(&self) -> Option<Box<dyn Transform>> {
        None
    }
    /// Emits what the transform still holds (open windows) once its input has ended.
    fn flush(&mut self, _out: &mut TransformOutput, _metrics: &ComponentMetrics) {}
}

/// Handed to a running sink.
pub struct SinkContext {
    /// The component id.
    pub id: String,
    /// Batches from every input; closed when all inputs are done.
    pub input: Input,
    /// Its named outputs (e.g. `dropped`, for events it refuses), if it declared any.
    pub out: Outputs,
    /// Its counters.
    pub metrics: Arc<ComponentMetrics>,
}

/// A transform's or sink's input channel. Counts what it receives and the time spent
/// waiting for it (for utilization).
pub struct Input {
    rx: mpsc::Receiver<EventBatch>,
    metrics: Arc<ComponentMetrics>,
}

impl Input {
    /// The input `rx` of the component counted by `metrics`.
    pub fn new(rx: mpsc::Receiver<EventBatch>, metrics: Arc<ComponentMetrics>) -> Self {
        Input { rx, metrics }
    }

    /// The next batch; `None` once every input is done.
    pub async fn recv(&mut self) -> Option<EventBatch> {
        // Counted on drop too: a sink may stop waiting (a timeout) before a batch comes.
        let waiting = Waiting(&self.metrics, std::time::Instant::now());
        let batch = self.rx.recv().await;
        drop(waiting);
        self.count(batch)
    }

    /// The next batch if one is waiting.
    pub fn try_recv(&mut self) -> Result<EventBatch, mpsc::error::TryRecvError> {
        let batch = self.rx.try_recv()?;
        Ok(self.count(Some(batch)).unwrap_or_default())
    }

    fn count(&self, batch: Option<EventBatch>) -> Option<EventBatch> {
        if let Some(b) = &batch {
            self.metrics.received(b.len() as u64, 0);
        }
        batch
    }
}

struct Waiting<'a>(&'a ComponentMetrics, std::time::Instant);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.idle_for(self.1);
    }
}

/// A sink: consumes until its input closes, finalizing every event once durable.
pub trait Sink: Send {
    /// Runs the sink.
    fn run(self: Box<Self>, cx: SinkContext) -> BoxFuture;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_field_message_is_parsed() {
        let (k, exp) = unknown_field("unknown field `incude`, expected one of `include`, `exclude`").unwrap();
        assert_eq!(k, "incude");
        assert_eq!(exp, vec!["include", "exclude"]);
        assert_eq!(did_you_mean("incude", exp.iter().map(String::as_str)), Some("include"));
        assert_eq!(did_you_mean("zzz", ["include"]), None);
    }
}
