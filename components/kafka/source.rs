//! The `kafka` source: a consumer-group member that turns records into events, with
//! each record's topic, partition, offset, key, timestamp and headers kept.
//!
//! How it keeps the at-least-once promise: automatic commits are off. Every batch it
//! emits carries one acknowledgement handle; a partition's offset is committed only
//! up to the contiguous run of acknowledged records (see [`super::watermark`]),
//! every `commit_interval_ms`, when partitions are revoked, and at shutdown. On
//! revocation the acknowledged part is committed synchronously and acknowledgements
//! still in flight for the revoked partitions are ignored (the next owner reads them
//! again: duplicates, never gaps).
//!
//! A batch that comes back errored (a sink lost it in flight) holds its partition's
//! offset and rewinds the partition: it is paused, what is in flight for it is
//! forgotten, and after a backoff (0.1 s doubling to 30 s per partition, jittered) it
//! is sought back to its first unacknowledged offset and resumed, so progress resumes
//! without a restart. Rewinds never give up — skipping the records would lose them —
//! but each outage is logged once (and once a minute while it lasts), counted as
//! `errors.redelivery`, and shown by the `failing` gauge.

use super::client::{Callbacks, Connection, LibrdkafkaOptions, Sasl, Tls};
use super::events::{
    COMMITTED_OFFSET, CONSUMER_LAG, CommitFailed, ConsumeFailed, Consumer as ConsumerSide, END_OFFSET, RebalanceFailed,
    Rebalanced, Redelivery, SeekFailed, Undecodable,
};
use super::watermark::{PartitionKey, Watermarks};
use crate::ack::{self, BatchNotifier, BatchStatus};
use crate::component::{BoxFuture, BuildContext, BuildError, Built, Source, SourceContext, parse_options};
use crate::error::ComponentError;
use crate::event::{Event, EventBatch};
use crate::metrics::{ComponentMetrics, Emitter, GaugeFamily};
use crate::retry::{Backoff, Retry};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use vrl::value::{KeyString, ObjectMap, Value};

/// Options of the `kafka` source.
#[derive(Debug, Deserialize, Clone, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KafkaSourceConfig {
    /// Brokers to start from, `host:port,host:port`.
    pub bootstrap_servers: String,
    /// Consumer group; members share the partitions.
    pub group_id: String,
    /// Topic names, or regular expressions starting with `^` (`"^logs-.*"`).
    pub topics: Vec<String>,
    /// Where a group without a committed offset starts: `"earliest"` or `"latest"`.
    #[serde(default = "default_offset_reset")]
    pub auto_offset_reset: String,
    /// How the record value becomes the event.
    #[serde(default)]
    pub decoding: Decoding,
    /// Field receiving the record's metadata (topic, partition, offset, key,
    /// timestamp, headers); `""` leaves it out.
    #[serde(default = "default_metadata_key")]
    pub metadata_key: String,
    /// Most records per batch sent downstream (one acknowledgement each).
    #[serde(default = "default_max_batch_events")]
    pub max_batch_events: usize,
    /// How often acknowledged offsets are committed, in ms.
    #[serde(default = "default_commit_interval_ms")]
    pub commit_interval_ms: u64,
    /// Group session timeout, in ms: how soon a dead member's partitions go to the
    /// others.
    #[serde(default = "default_session_timeout_ms")]
    pub session_timeout_ms: u64,
    /// How often consumer lag is refreshed, in ms.
    #[serde(default = "default_statistics_interval_ms")]
    pub statistics_interval_ms: u64,
    /// SASL credentials.
    pub sasl: Option<Sasl>,
    /// TLS to the brokers. A `tls` table (even empty) turns TLS on.
    pub tls: Option<Tls>,
    /// Any librdkafka consumer property (`{ "fetch.max.bytes" = "10485760" }`),
    /// applied last. Unknown properties fail validation.
    #[serde(default)]
    pub librdkafka_options: LibrdkafkaOptions,
}

/// How a record value becomes an event.
#[derive(Debug, Deserialize, serde::Serialize, schemars::JsonSchema, Clone, Copy, Default, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Decoding {
    /// An object's fields become the event's fields; anything else goes to `message`.
    #[default]
    Json,
    /// The UTF-8 value in `message`.
    Text,
    /// The value in `message`, unchanged.
    Bytes,
}

fn default_offset_reset() -> String {
    "earliest".into()
}
fn default_metadata_key() -> String {
    "kafka".into()
}
fn default_max_batch_events() -> usize {
    1000
}
fn default_commit_interval_ms() -> u64 {
    1000
}
fn default_session_timeout_ms() -> u64 {
    10_000
}
fn default_statistics_interval_ms() -> u64 {
    5000
}

/// Builds the `kafka` source.
pub fn build(cx: &BuildContext, options: toml::Value) -> Result<Built, BuildError> {
    let config: KafkaSourceConfig = parse_options(options)?;
    if config.group_id.trim().is_empty() {
        return Err(BuildError::key("group_id", "must not be empty"));
    }
    if config.topics.is_empty() {
        return Err(BuildError::key("topics", "name at least one topic (or a `^regex`)"));
    }
    for t in config.topics.iter().filter(|t| t.starts_with('^')) {
        regex::Regex::new(t).map_err(|e| BuildError::key("topics", format!("`{t}` is not a valid regex: {e}")))?;
    }
    let reset = match config.auto_offset_reset.as_str() {
        "earliest" | "smallest" | "beginning" => "earliest",
        "latest" | "largest" | "end" => "latest",
        other => {
            return Err(BuildError::key(
                "auto_offset_reset",
                format!("`{other}` is not `earliest` or `latest`"),
            ));
        }
    };
    if config.max_batch_events == 0 {
        return Err(BuildError::key("max_batch_events", "must be at least 1"));
    }
    let session = config.session_timeout_ms.to_string();
    let stats = config.statistics_interval_ms.to_string();
    let client = Connection {
        id: &cx.id,
        bootstrap_servers: &config.bootstrap_servers,
        sasl: config.sasl.as_ref(),
        tls: config.tls.as_ref(),
        librdkafka_options: &config.librdkafka_options,
    }
    .client_config(&[
        ("group.id", &config.group_id),
        ("client.id", &cx.id),
        ("enable.auto.commit", "false"),
        ("enable.auto.offset.store", "false"),
        ("enable.partition.eof", "false"),
        ("auto.offset.reset", reset),
        ("session.timeout.ms", &session),
        ("statistics.interval.ms", &stats),
    ])?;
    client
        .create_native_config()
        .map_err(|e| BuildError::key("librdkafka_options", format!("librdkafka refuses the settings: {e}")))?;
    let decoding = config.decoding;
    Ok(Built::source(KafkaSource {
        id: cx.id.clone(),
        client,
        config,
    })
    .with_outputs(vec!["dropped".into()])
    .with_decoder(std::sync::Arc::new(move |payload| match decode(payload, decoding) {
        (fields, None) => Ok(vec![fields]),
        (_, Some(reason)) => Err(reason),
    })))
}

struct KafkaSource {
    id: String,
    client: ClientConfig,
    config: KafkaSourceConfig,
}

/// The consumer's callbacks: commits on revocation, lag from statistics.
struct ConsumerCallbacks {
    client: Callbacks<ConsumerSide>,
    watermarks: Arc<Mutex<Watermarks>>,
    events: SourceEvents,
    /// Set once the source stops: the last gauges stay for the exit summary.
    stopping: AtomicBool,
}

/// The emitters and gauges of a running `kafka` source, taken once when it starts.
struct SourceEvents {
    commit: Emitter<CommitFailed>,
    rebalanced: Emitter<Rebalanced>,
    rebalance_failed: Emitter<RebalanceFailed>,
    seek: Emitter<SeekFailed>,
    consume: Emitter<ConsumeFailed>,
    undecodable: Emitter<Undecodable>,
    redelivery: Emitter<Redelivery>,
    /// `pipe_kafka_committed_offset{topic, partition}`.
    committed: GaugeFamily,
}

impl SourceEvents {
    fn new(metrics: &ComponentMetrics) -> Self {
        SourceEvents {
            commit: metrics.emitter(),
            rebalanced: metrics.emitter(),
            rebalance_failed: metrics.emitter(),
            seek: metrics.emitter(),
            consume: metrics.emitter(),
            undecodable: metrics.emitter(),
            redelivery: metrics.emitter(),
            committed: metrics.gauge_family(&COMMITTED_OFFSET),
        }
    }
}

/// True when the gauge series `labels` (`[topic, partition]`) is of one of `partitions`.
fn is_of(labels: &[String], partitions: &[PartitionKey]) -> bool {
    partitions
        .iter()
        .any(|(t, p)| labels.first() == Some(t) && labels.get(1).is_some_and(|l| *l == p.to_string()))
}

fn lock(w: &Mutex<Watermarks>) -> MutexGuard<'_, Watermarks> {
    w.lock().unwrap_or_else(|e| e.into_inner())
}

impl ClientContext for ConsumerCallbacks {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        self.client.log(level, fac, message)
    }
    fn stats(&self, statistics: Statistics) {
        self.client.stats(statistics)
    }
    fn error(&self, error: KafkaError, reason: &str) {
        self.client.error(error, reason)
    }
}

impl ConsumerContext for ConsumerCallbacks {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            let revoked: Vec<PartitionKey> = list
                .elements()
                .iter()
                .map(|e| (e.topic().to_string(), e.partition()))
                .collect();
            let mut w = lock(&self.watermarks);
            let offsets: Vec<_> = w.to_commit().into_iter().filter(|(k, _)| revoked.contains(k)).collect();
            commit(
                consumer,
                &offsets,
                CommitMode::Sync,
                &self.client.id,
                &self.events.commit,
            );
            let in_flight = w.in_flight();
            w.revoke(&revoked);
            if !self.stopping.load(Ordering::Relaxed) {
                self.events.committed.retain(|l| !is_of(l, &revoked));
                for gauges in self.client.partition_gauges() {
                    gauges.retain(|l| !is_of(l, &revoked));
                }
            }
            tracing::info!(component = %self.client.id, partitions = ?revoked, committed = offsets.len(), in_flight_batches = in_flight, "Partitions revoked; their acknowledged offsets are committed.");
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(list) => {
                let assigned: Vec<String> = list
                    .elements()
                    .iter()
                    .map(|e| format!("{}[{}]", e.topic(), e.partition()))
                    .collect();
                self.events.rebalanced.count(1);
                tracing::info!(component = %self.client.id, partitions = ?assigned, "Partitions assigned.");
            }
            Rebalance::Error(e) => {
                self.events
                    .rebalance_failed
                    .emit(RebalanceFailed { error: e.to_string() });
            }
            Rebalance::Revoke(_) => {}
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        tracing::debug!(component = %self.client.id, result = ?result, offsets = ?offsets, "Offsets committed.");
        if let Err(e) = result {
            self.events.commit.emit(CommitFailed { error: e.to_string() });
        }
    }
}

/// Commits `offsets` (next offset to read, per partition).
fn commit<C: ConsumerContext>(
    consumer: &impl Consumer<C>,
    offsets: &[(PartitionKey, i64)],
    mode: CommitMode,
    id: &str,
    failed: &Emitter<CommitFailed>,
) {
    if offsets.is_empty() {
        return;
    }
    let mut list = TopicPartitionList::new();
    for ((topic, partition), offset) in offsets {
        if let Err(e) = list.add_partition_offset(topic, *partition, Offset::Offset(*offset)) {
            tracing::warn!(component = %id, topic, partition, error = %e, "Cannot list an offset to commit.");
        }
    }
    if let Err(e) = consumer.commit(&list, mode) {
        failed.emit(CommitFailed { error: e.to_string() });
    }
}

type KafkaConsumer = StreamConsumer<ConsumerCallbacks>;

impl Source for KafkaSource {
    fn run(self: Box<Self>, mut cx: SourceContext) -> BoxFuture {
        Box::pin(async move {
            let watermarks = Arc::new(Mutex::new(Watermarks::default()));
            let callbacks = ConsumerCallbacks {
                client: Callbacks::new(&self.id, cx.metrics.clone()).with_lag(
                    cx.metrics.gauge_family(&CONSUMER_LAG),
                    cx.metrics.gauge_family(&END_OFFSET),
                ),
                watermarks: watermarks.clone(),
                events: SourceEvents::new(&cx.metrics),
                stopping: AtomicBool::new(false),
            };
            let consumer: KafkaConsumer = self
                .client
                .create_with_context(callbacks)
                .map_err(|e| format!("cannot create the Kafka consumer: {e}"))?;
            let topics: Vec<&str> = self.config.topics.iter().map(String::as_str).collect();
            consumer
                .subscribe(&topics)
                .map_err(|e| format!("cannot subscribe to {topics:?}: {e}"))?;
            tracing::info!(component = %self.id, topics = ?topics, group = %self.config.group_id, "Kafka consumer started.");
            let dropped_out = cx.out.named("dropped").cloned().unwrap_or_default();
            let mut commit_tick = tokio::time::interval(Duration::from_millis(self.config.commit_interval_ms.max(10)));
            commit_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let (errored_tx, mut errored_rx) = mpsc::unbounded_channel();
            let mut rewinds = Rewinds::default();
            loop {
                let next_rewind = rewinds.next_due();
                let first = tokio::select! {
                    _ = cx.shutdown.wait() => break,
                    _ = commit_tick.tick() => {
                        self.commit_acknowledged(&consumer, &watermarks, CommitMode::Async);
                        rewinds.check_recovered(&watermarks, &cx.metrics);
                        continue;
                    }
                    Some(key) = errored_rx.recv() => {
                        rewinds.schedule(key, &consumer, &watermarks, &cx.metrics);
                        continue;
                    }
                    _ = tokio::time::sleep_until(next_rewind.unwrap_or_else(far_future)), if next_rewind.is_some() => {
                        rewinds.run_due(&consumer, &watermarks, &cx.metrics);
                        continue;
                    }
                    m = consumer.recv() => m,
                };
                let mut batch = Batch::default();
                self.take(first, &mut batch, consumer.context(), &rewinds);
                while batch.len() < self.config.max_batch_events {
                    match tokio::time::timeout(Duration::ZERO, consumer.recv()).await {
                        Ok(m) => self.take(m, &mut batch, consumer.context(), &rewinds),
                        Err(_) => break,
                    }
                }
                self.emit(batch, &watermarks, &cx, &dropped_out, &errored_tx).await;
            }
            // Stop reading, let the outputs close, and commit what gets acknowledged.
            drop(cx.out);
            drop(dropped_out);
            let mut waited = 0u32;
            while lock(&watermarks).in_flight() > 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                waited += 1;
                if waited.is_multiple_of(20) {
                    // Progress made while draining survives a deadline abort.
                    self.commit_acknowledged(&consumer, &watermarks, CommitMode::Async);
                }
            }
            self.commit_acknowledged(&consumer, &watermarks, CommitMode::Sync);
            consumer.context().stopping.store(true, Ordering::Relaxed);
            consumer.unsubscribe();
            tracing::info!(component = %self.id, "Kafka consumer stopped; acknowledged offsets are committed.");
            Ok(())
        })
    }
}

/// Records received since the last emit, and the first and last offset per partition.
#[derive(Default)]
struct Batch {
    events: EventBatch,
    dropped: EventBatch,
    /// Few partitions per batch: a list, searched without building a key per record.
    offsets: Vec<(PartitionKey, i64, i64)>,
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(3600)
}

/// A partition waiting to be read again from `offset`.
struct Rewind {
    key: PartitionKey,
    offset: i64,
    /// The generation the partition was rewound into; another one means it was
    /// revoked meanwhile, and its new owner reads from the committed offset.
    generation: u64,
    due: Instant,
}

/// Partitions paused after an errored batch, each until its backoff has passed.
struct Rewinds {
    waiting: Vec<Rewind>,
    backoffs: HashMap<PartitionKey, Backoff>,
    retry: Retry,
}

impl Default for Rewinds {
    fn default() -> Self {
        Rewinds {
            waiting: Vec::new(),
            backoffs: HashMap::new(),
            retry: Retry::new("redeliveries"),
        }
    }
}

fn partition_list(key: &PartitionKey) -> TopicPartitionList {
    let mut list = TopicPartitionList::new();
    list.add_partition(&key.0, key.1);
    list
}

impl Rewinds {
    fn next_due(&self) -> Option<Instant> {
        self.waiting.iter().map(|r| r.due).min()
    }

    /// True while `topic[partition]` waits to be read again: its records are skipped.
    fn holds(&self, topic: &str, partition: i32) -> bool {
        !self.waiting.is_empty() && self.waiting.iter().any(|r| r.key.1 == partition && r.key.0 == topic)
    }

    /// A batch of `key` came back errored: pause the partition, forget what is in
    /// flight for it and plan reading it again after its backoff.
    fn schedule(
        &mut self,
        key: PartitionKey,
        consumer: &KafkaConsumer,
        watermarks: &Mutex<Watermarks>,
        metrics: &ComponentMetrics,
    ) {
        let Some((offset, generation)) = lock(watermarks).rewind(&key) else {
            return;
        };
        if let Err(e) = consumer.pause(&partition_list(&key)) {
            tracing::debug!(component = %metrics.id, topic = %key.0, partition = key.1, error = %e, "Cannot pause the partition; its records are skipped until it is read again.");
        }
        let error = ComponentError::external(format!(
            "a batch of {}[{}] was not delivered downstream; it is read again from offset {offset}",
            key.0, key.1
        ));
        self.retry
            .failed(&error, &consumer.context().events.redelivery, metrics);
        let delay = self
            .backoffs
            .entry(key.clone())
            .or_insert_with(Backoff::standard)
            .next_delay();
        tracing::debug!(component = %metrics.id, topic = %key.0, partition = key.1, offset, delay_ms = delay.as_millis() as u64, "Partition rewound after an errored batch.");
        self.waiting.retain(|r| r.key != key);
        self.waiting.push(Rewind {
            key,
            offset,
            generation,
            due: Instant::now() + delay,
        });
    }

    /// Seeks every partition whose backoff has passed back to its offset, and resumes it.
    fn run_due(&mut self, consumer: &KafkaConsumer, watermarks: &Mutex<Watermarks>, metrics: &ComponentMetrics) {
        let now = Instant::now();
        let (due, later): (Vec<Rewind>, Vec<Rewind>) = self.waiting.drain(..).partition(|r| r.due <= now);
        self.waiting = later;
        for mut r in due {
            let list = partition_list(&r.key);
            if lock(watermarks).generation_of(&r.key) != Some(r.generation) {
                // Revoked meanwhile: the new owner reads from the committed offset.
                let _ = consumer.resume(&list);
                continue;
            }
            match consumer.seek(&r.key.0, r.key.1, Offset::Offset(r.offset), Duration::from_secs(5)) {
                Ok(()) => {
                    if let Err(e) = consumer.resume(&list) {
                        tracing::warn!(component = %metrics.id, topic = %r.key.0, partition = r.key.1, error = %e, "Cannot resume the partition after rewinding it.");
                    }
                    tracing::debug!(component = %metrics.id, topic = %r.key.0, partition = r.key.1, offset = r.offset, "Reading the partition again from its first unacknowledged offset.");
                }
                Err(e) => {
                    consumer.context().events.seek.emit(SeekFailed {
                        topic: r.key.0.clone(),
                        partition: r.key.1,
                        offset: r.offset,
                        error: e.to_string(),
                    });
                    let delay = self
                        .backoffs
                        .entry(r.key.clone())
                        .or_insert_with(Backoff::standard)
                        .next_delay();
                    r.due = now + delay;
                    self.waiting.push(r);
                }
            }
        }
    }

    /// Ends the outage once every rewound partition has been acknowledged again.
    fn check_recovered(&mut self, watermarks: &Mutex<Watermarks>, metrics: &ComponentMetrics) {
        if self.retry.is_failing() && self.waiting.is_empty() && !lock(watermarks).recovering() {
            self.retry.succeeded(metrics);
            self.backoffs.clear();
        }
    }
}

impl Batch {
    fn len(&self) -> usize {
        self.events.len() + self.dropped.len()
    }
}

impl KafkaSource {
    fn commit_acknowledged(&self, consumer: &KafkaConsumer, watermarks: &Mutex<Watermarks>, mode: CommitMode) {
        let offsets = lock(watermarks).to_commit();
        let callbacks = consumer.context();
        for ((topic, partition), offset) in &offsets {
            if let Ok(offset) = u64::try_from(*offset) {
                callbacks.events.committed.set(&[topic, &partition.to_string()], offset);
            }
        }
        commit(consumer, &offsets, mode, &self.id, &callbacks.events.commit);
    }

    /// Turns one received record into an event of the batch (or of its dropped part).
    fn take(
        &self,
        received: KafkaResult<BorrowedMessage<'_>>,
        batch: &mut Batch,
        callbacks: &ConsumerCallbacks,
        rewinds: &Rewinds,
    ) {
        let client = &callbacks.client;
        let metrics = &client.metrics;
        let message = match received {
            Ok(m) => m,
            // Brokers going away is logged once, as a state change, by the callbacks.
            Err(e) if e.rdkafka_error_code() == Some(rdkafka::error::RDKafkaErrorCode::AllBrokersDown) => return,
            Err(e) => {
                callbacks.events.consume.emit(ConsumeFailed { error: e.to_string() });
                return;
            }
        };
        client.reachable();
        let (topic, partition) = (message.topic(), message.partition());
        if rewinds.holds(topic, partition) {
            // Fetched before the pause; it is read again after the rewind.
            return;
        }
        let payload = message.payload().unwrap_or_default();
        metrics.received(1, payload.len() as u64);
        match batch
            .offsets
            .iter_mut()
            .find(|((t, p), _, _)| *p == partition && t == topic)
        {
            Some((_, _, last)) => *last = message.offset(),
            None => batch
                .offsets
                .push(((topic.to_string(), partition), message.offset(), message.offset())),
        }
        let (mut fields, error) = decode(payload, self.config.decoding);
        if !fields.contains_key("timestamp") {
            let ts = message
                .timestamp()
                .to_millis()
                .and_then(chrono::DateTime::from_timestamp_millis)
                .unwrap_or_else(chrono::Utc::now);
            fields.insert(KeyString::from("timestamp"), Value::Timestamp(ts));
        }
        if !self.config.metadata_key.is_empty() {
            fields.insert(KeyString::from(self.config.metadata_key.as_str()), metadata(&message));
        }
        match error {
            None => batch.events.push(Event::from_map(fields)),
            Some(reason) => {
                callbacks.events.undecodable.emit(Undecodable {
                    topic: message.topic().to_string(),
                    partition: message.partition(),
                    offset: message.offset(),
                    reason: reason.clone(),
                });
                let mut why = ObjectMap::new();
                why.insert("reason".into(), Value::from(reason));
                why.insert("component".into(), Value::from(self.id.as_str()));
                fields.insert("dropped".into(), Value::Object(why));
                batch.dropped.push(Event::from_map(fields));
            }
        }
    }

    /// Sends a batch under one acknowledgement handle and tracks its offsets.
    async fn emit(
        &self,
        batch: Batch,
        watermarks: &Arc<Mutex<Watermarks>>,
        cx: &SourceContext,
        dropped_out: &crate::component::Fanout,
        errored: &mpsc::UnboundedSender<PartitionKey>,
    ) {
        if batch.offsets.is_empty() {
            return;
        }
        let records = batch.len() as u64;
        let (notifier, ack_rx) = BatchNotifier::new();
        let tracked: Vec<(PartitionKey, u64, i64)> = {
            let mut w = lock(watermarks);
            batch
                .offsets
                .into_iter()
                .map(|(k, first, last)| {
                    let generation = w.track(&k, first, last);
                    (k, generation, last)
                })
                .collect()
        };
        let w = watermarks.clone();
        let errored = errored.clone();
        let metrics = cx.metrics.clone();
        tokio::spawn(async move {
            let status = ack::wait(ack_rx).await;
            metrics.acknowledged(status, records);
            let ok = status != BatchStatus::Errored;
            let rewind: Vec<PartitionKey> = {
                let mut w = lock(&w);
                tracked
                    .into_iter()
                    .filter(|(k, generation, last)| w.ack(k, *generation, *last, ok))
                    .map(|(k, _, _)| k)
                    .collect()
            };
            for key in rewind {
                // The source is gone when this fails: nothing left to rewind.
                let _ = errored.send(key);
            }
        });
        let events: EventBatch = batch.events.into_iter().map(|e| e.with_notifier(&notifier)).collect();
        let dropped: EventBatch = batch.dropped.into_iter().map(|e| e.with_notifier(&notifier)).collect();
        drop(notifier);
        if !dropped.is_empty() {
            dropped_out.send(dropped).await;
        }
        cx.out.default.send(events).await;
    }
}

/// The event fields of a record value, and why it could not be decoded (then the
/// value is kept as `message`, lossily as text).
fn decode(payload: &[u8], decoding: Decoding) -> (ObjectMap, Option<String>) {
    let mut fields = ObjectMap::new();
    let raw = || Value::Bytes(bytes::Bytes::copy_from_slice(payload));
    let error = match decoding {
        Decoding::Bytes => {
            fields.insert(KeyString::from("message"), raw());
            None
        }
        Decoding::Text => {
            let error = simdutf8::basic::from_utf8(payload)
                .err()
                .map(|_| "the value is not valid UTF-8".to_string());
            fields.insert(KeyString::from("message"), raw());
            error
        }
        Decoding::Json => match crate::decoding::json_fields(payload) {
            Ok(map) => return (map, None),
            Err(e) => {
                fields.insert(
                    KeyString::from("message"),
                    Value::from(String::from_utf8_lossy(payload).into_owned()),
                );
                Some(format!("the value is {e}"))
            }
        },
    };
    (fields, error)
}

/// The record's topic, partition, offset, key, timestamp and headers.
fn metadata(message: &BorrowedMessage<'_>) -> Value {
    let mut m = ObjectMap::new();
    m.insert("topic".into(), crate::event::interned(message.topic()));
    m.insert("partition".into(), Value::Integer(i64::from(message.partition())));
    m.insert("offset".into(), Value::Integer(message.offset()));
    m.insert(
        "key".into(),
        message
            .key()
            .map_or(Value::Null, |k| Value::Bytes(bytes::Bytes::copy_from_slice(k))),
    );
    m.insert(
        "timestamp".into(),
        message
            .timestamp()
            .to_millis()
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map_or(Value::Null, Value::Timestamp),
    );
    let mut headers = ObjectMap::new();
    if let Some(h) = message.headers() {
        for header in h.iter() {
            let value = header
                .value
                .map_or(Value::Null, |v| Value::Bytes(bytes::Bytes::copy_from_slice(v)));
            headers.insert(header.key.into(), value);
        }
    }
    m.insert("headers".into(), Value::Object(headers));
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_prints_no_secret() {
        let config: KafkaSourceConfig = toml::from_str(
            r#"
bootstrap_servers = "k:9092"
group_id = "g"
topics = ["t"]
sasl = { username = "u", password = "hunter2-sasl" }
tls = { key_password = "hunter2-key" }
librdkafka_options = { "sasl.password" = "hunter2-opt", "fetch.max.bytes" = "1000" }
"#,
        )
        .unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("fetch.max.bytes") && shown.contains("\"u\""), "{shown}");
        assert_eq!(config.sasl.unwrap().password.expose(), "hunter2-sasl");
    }

    #[test]
    fn the_registry_entry_declares_every_emitter_and_gauge() {
        let m = ComponentMetrics::new(
            "in",
            "source",
            "kafka",
            super::super::SOURCE.events,
            super::super::SOURCE.gauges,
        );
        let ev = SourceEvents::new(&m);
        let client = Callbacks::<ConsumerSide>::new("in", m.clone())
            .with_lag(m.gauge_family(&CONSUMER_LAG), m.gauge_family(&END_OFFSET));
        m.gauge(&crate::retry::RETRYING);
        ev.committed.set(&["t", "0"], 5);
        ev.committed.set(&["t", "1"], 7);
        client.partition_gauges().for_each(|g| g.set(&["t", "1"], 3));
        let revoked = vec![("t".to_string(), 1)];
        ev.committed.retain(|l| !is_of(l, &revoked));
        client
            .partition_gauges()
            .for_each(|g| g.retain(|l| !is_of(l, &revoked)));
        let gauges = m.snapshot().gauges;
        assert_eq!(
            gauges.get(r#"pipe_kafka_committed_offset{topic="t",partition="0"}"#),
            Some(&5)
        );
        assert!(
            !gauges.keys().any(|k| k.contains(r#"partition="1""#)),
            "revoked partitions' series are gone: {gauges:?}"
        );
    }

    #[test]
    fn decodings() {
        let (f, e) = decode(br#"{"a":1}"#, Decoding::Json);
        assert_eq!((f.get("a"), e), (Some(&Value::Integer(1)), None));
        let (f, e) = decode(b"[1]", Decoding::Json);
        assert!(e.is_none() && f.contains_key("message"));
        let (f, e) = decode(b"not json", Decoding::Json);
        assert!(e.unwrap().contains("not JSON"));
        assert_eq!(f.get("message"), Some(&Value::from("not json")));
        let (_, e) = decode(b"\xff\xfe", Decoding::Text);
        assert!(e.unwrap().contains("UTF-8"));
        let (f, e) = decode(b"\xff\xfe", Decoding::Bytes);
        assert!(e.is_none());
        assert_eq!(
            f.get("message"),
            Some(&Value::Bytes(bytes::Bytes::from_static(b"\xff\xfe")))
        );
    }
}
