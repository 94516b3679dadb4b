//! The `kafka` sink: produces every event as one record to a templated topic, with an
//! idempotent, `acks=all`, lz4-compressed producer by default.
//!
//! How it keeps the at-least-once promise: an event's acknowledgement handle travels
//! with its record through librdkafka and is settled only from the record's delivery
//! report. Every failure is classified ([`classify`]):
//!
//! - [`Fault::Data`] (too large, invalid, an unknown topic rendered from the
//!   template, an event that cannot become a record): the event goes to output
//!   `ID.dropped` with the reason, or is rejected when nothing reads it
//!   ([`Rejects`]), so it never stalls the stream;
//! - [`Fault::Config`] (authentication or authorization refused) and
//!   [`Fault::External`] (timeouts, brokers gone): the record is produced again,
//!   without end, after its own backoff (0.2 s doubling to 5 s, jittered). Records
//!   waiting for their retry sit in a delay queue polled by the sink's loop, so one
//!   record's wait never holds up the others; librdkafka's queue and the delay queue
//!   are both bounded by `queue_max_events`, so while the brokers are away the inputs
//!   wait (backpressure) and nothing is lost.
//!
//! [`Fault::Data`]: crate::error::Fault::Data
//! [`Fault::Config`]: crate::error::Fault::Config
//! [`Fault::External`]: crate::error::Fault::External

use super::client::{Callbacks, Connection, LibrdkafkaOptions, Sasl, Tls};
use super::events::{DeliveryRetry, Producer as ProducerSide, RejectedByKafka};
use crate::ack::{BatchNotifier, BatchStatus};
use crate::component::{BoxFuture, BuildContext, BuildError, Built, Sink, SinkContext, parse_options};
use crate::encoding::{self, Encoding};
use crate::error::{ComponentError, Fault};
use crate::event::{Event, value_to_string};
use crate::metrics::{ComponentMetrics, Emitter};
use crate::rejects::Rejects;
use crate::retry::{Backoff, Retry};
use crate::template::Template;
use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use serde::Deserialize;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use vrl::value::{ObjectMap, Value};

/// Options of the `kafka` sink.
#[derive(Debug, Deserialize, Clone, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KafkaSinkConfig {
    /// Brokers to start from, `host:port,host:port`.
    pub bootstrap_servers: String,
    /// Topic template: `logs`, `logs-{{ service }}`.
    pub topic: String,
    /// Field whose value becomes the record key (a missing field: no key).
    pub key_field: Option<String>,
    /// Key template, `{{ host }}-{{ service }}` (instead of `key_field`). Without a
    /// key, records spread over the partitions.
    pub key: Option<String>,
    /// Record headers, name → template: `{ "x-service" = "{{ service }}" }`. A
    /// template that cannot render leaves its header out.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Object field whose entries become headers (`kafka.headers`, to pass a consumed
    /// record's headers on).
    pub headers_field: Option<String>,
    /// How an event becomes a record value.
    #[serde(default)]
    pub encoding: SinkEncoding,
    /// Record batch compression.
    #[serde(default)]
    pub compression: KafkaCompression,
    /// `"all"`, `"1"` or `"0"`; anything but `"all"` needs `idempotent = false`.
    #[serde(default = "default_acks")]
    pub acks: String,
    /// Idempotent producer: the broker drops librdkafka's retried duplicates and keeps
    /// order per partition.
    #[serde(default = "yes")]
    pub idempotent: bool,
    /// How long librdkafka waits to fill a batch, in ms.
    #[serde(default = "default_linger_ms")]
    pub linger_ms: u64,
    /// Most records per batch.
    #[serde(default = "default_batch_max_events")]
    pub batch_max_events: u64,
    /// Most bytes per batch.
    #[serde(default = "default_batch_max_bytes")]
    pub batch_max_bytes: u64,
    /// Most records waiting in the producer (and, separately, for a retry); beyond,
    /// the inputs wait.
    #[serde(default = "default_queue_max_events")]
    pub queue_max_events: u64,
    /// How long librdkafka tries a record before handing it back (pipe then produces
    /// it again), in ms.
    #[serde(default = "default_message_timeout_ms")]
    pub message_timeout_ms: u64,
    /// Event time for the record timestamp and the strftime parts of `topic`.
    #[serde(default = "default_time_field")]
    pub time_field: String,
    /// SASL credentials, as for the `kafka` source.
    pub sasl: Option<Sasl>,
    /// TLS to the brokers, as for the `kafka` source.
    pub tls: Option<Tls>,
    /// Any librdkafka producer property, applied last; unknown properties fail
    /// validation.
    #[serde(default)]
    pub librdkafka_options: LibrdkafkaOptions,
}

/// How an event becomes a record value.
#[derive(Debug, Deserialize, serde::Serialize, schemars::JsonSchema, Clone, Copy, Default, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum SinkEncoding {
    /// The whole event as JSON.
    #[default]
    Json,
    /// The `message` field; the whole event as JSON without one.
    Text,
    /// The bytes of `message`, unchanged.
    Raw,
}

/// Record batch compression.
#[derive(Debug, Deserialize, serde::Serialize, schemars::JsonSchema, Clone, Copy, Default, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum KafkaCompression {
    None,
    Gzip,
    Snappy,
    #[default]
    Lz4,
    Zstd,
}

impl KafkaCompression {
    fn codec(self) -> &'static str {
        match self {
            KafkaCompression::None => "none",
            KafkaCompression::Gzip => "gzip",
            KafkaCompression::Snappy => "snappy",
            KafkaCompression::Lz4 => "lz4",
            KafkaCompression::Zstd => "zstd",
        }
    }
}

fn default_acks() -> String {
    "all".into()
}
fn yes() -> bool {
    true
}
fn default_linger_ms() -> u64 {
    5
}
fn default_batch_max_events() -> u64 {
    10_000
}
fn default_batch_max_bytes() -> u64 {
    1_000_000
}
fn default_queue_max_events() -> u64 {
    100_000
}
fn default_message_timeout_ms() -> u64 {
    300_000
}
fn default_time_field() -> String {
    "timestamp".into()
}

/// Builds the `kafka` sink.
pub fn build(cx: &BuildContext, options: toml::Value) -> Result<Built, BuildError> {
    let config: KafkaSinkConfig = parse_options(options)?;
    let template = |key: &str, source: &str| {
        Template::parse(source, &config.time_field).map_err(|e| BuildError::key(key, e.to_string()))
    };
    let topic = template("topic", &config.topic)?;
    let key = match (&config.key_field, &config.key) {
        (Some(_), Some(_)) => return Err(BuildError::key("key", "set either `key_field` or `key`, not both")),
        (Some(field), None) => Some(Key::Field(field.clone())),
        (None, Some(t)) => Some(Key::Template(template("key", t)?)),
        (None, None) => None,
    };
    let headers = config
        .headers
        .iter()
        .map(|(name, t)| Ok((name.clone(), template(&format!("headers.{name}"), t)?)))
        .collect::<Result<Vec<_>, BuildError>>()?;
    let acks = match config.acks.as_str() {
        "all" | "-1" => "all",
        "1" => "1",
        "0" => "0",
        other => return Err(BuildError::key("acks", format!("`{other}` is not `all`, `1` or `0`"))),
    };
    if config.idempotent && acks != "all" {
        return Err(BuildError::key(
            "acks",
            "an idempotent producer needs `acks = \"all\"`; set `idempotent = false` to use fewer acks",
        ));
    }
    let numbers = [
        ("linger.ms", config.linger_ms.to_string()),
        ("batch.num.messages", config.batch_max_events.to_string()),
        ("batch.size", config.batch_max_bytes.to_string()),
        ("queue.buffering.max.messages", config.queue_max_events.to_string()),
        ("message.timeout.ms", config.message_timeout_ms.to_string()),
    ];
    let mut defaults: Vec<(&str, &str)> = vec![
        ("compression.codec", config.compression.codec()),
        ("acks", acks),
        ("enable.idempotence", if config.idempotent { "true" } else { "false" }),
        ("client.id", &cx.id),
    ];
    defaults.extend(numbers.iter().map(|(k, v)| (*k, v.as_str())));
    let client = Connection {
        id: &cx.id,
        bootstrap_servers: &config.bootstrap_servers,
        sasl: config.sasl.as_ref(),
        tls: config.tls.as_ref(),
        librdkafka_options: &config.librdkafka_options,
    }
    .client_config(&defaults)?;
    client
        .create_native_config()
        .map_err(|e| BuildError::key("librdkafka_options", format!("librdkafka refuses the settings: {e}")))?;
    Ok(Built::sink(KafkaSink {
        id: cx.id.clone(),
        client,
        static_topic: topic.is_static().then(|| topic.source().to_string()),
        topic,
        key,
        headers,
        headers_field: config.headers_field.clone(),
        encoding: config.encoding,
        time_field: config.time_field.clone(),
        max_delayed: config.queue_max_events.max(1) as usize,
    })
    .with_outputs(vec!["dropped".into()]))
}

enum Key {
    Field(String),
    Template(Template),
}

struct KafkaSink {
    id: String,
    client: ClientConfig,
    topic: Template,
    /// The topic when the template is the same for every event (rendered once).
    static_topic: Option<String>,
    key: Option<Key>,
    headers: Vec<(String, Template)>,
    headers_field: Option<String>,
    encoding: SinkEncoding,
    time_field: String,
    /// Most records waiting in the delay queue before the inputs wait.
    max_delayed: usize,
}

/// What travels with a record through librdkafka.
struct Inflight {
    notifier: Option<Arc<BatchNotifier>>,
    attempts: u32,
    /// The record's own wait before each retry.
    backoff: Backoff,
}

impl Inflight {
    fn new(notifier: Option<Arc<BatchNotifier>>) -> Box<Self> {
        Box::new(Inflight {
            notifier,
            attempts: 0,
            backoff: Backoff::new(Duration::from_millis(200), Duration::from_secs(5)),
        })
    }
}

/// A record waiting for its retry, due at `at`.
struct Delayed {
    at: Instant,
    seq: u64,
    message: OwnedMessage,
    inflight: Box<Inflight>,
}

impl PartialEq for Delayed {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Delayed {}
impl PartialOrd for Delayed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Delayed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// Records waiting for their retry, earliest first: the sink's loop produces them
/// again when due, and keeps taking input and delivery reports meanwhile.
#[derive(Default)]
struct DelayQueue {
    heap: BinaryHeap<Reverse<Delayed>>,
    seq: u64,
}

impl DelayQueue {
    fn push(&mut self, at: Instant, message: OwnedMessage, inflight: Box<Inflight>) {
        self.seq += 1;
        self.heap.push(Reverse(Delayed {
            at,
            seq: self.seq,
            message,
            inflight,
        }));
    }

    fn next_due(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(d)| d.at)
    }

    /// Takes the next record due by `now`.
    fn pop_due(&mut self, now: Instant) -> Option<Delayed> {
        if self.next_due()? <= now {
            self.heap.pop().map(|Reverse(d)| d)
        } else {
            None
        }
    }

    fn len(&self) -> usize {
        self.heap.len()
    }

    fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(3600)
}

/// A record librdkafka handed back undelivered.
struct Returned {
    message: OwnedMessage,
    inflight: Box<Inflight>,
    error: KafkaError,
}

/// The producer's callbacks: delivery reports settle acknowledgements.
struct ProducerCallbacks {
    client: Callbacks<ProducerSide>,
    in_flight: AtomicUsize,
    /// Records delivered so far (to tell when failing deliveries work again).
    delivered: AtomicU64,
    returned: mpsc::UnboundedSender<Returned>,
}

impl ClientContext for ProducerCallbacks {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        self.client.log(level, fac, message)
    }
    fn error(&self, error: KafkaError, reason: &str) {
        self.client.error(error, reason)
    }
}

impl ProducerContext for ProducerCallbacks {
    type DeliveryOpaque = Box<Inflight>;

    fn delivery(&self, result: &DeliveryResult<'_>, mut inflight: Box<Inflight>) {
        match result {
            Ok(message) => {
                if let Some(n) = inflight.notifier.take() {
                    n.update(BatchStatus::Delivered);
                }
                let bytes = message.payload_len() + message.key().map_or(0, <[u8]>::len);
                self.client.metrics.sent(1, bytes as u64);
                self.client.reachable();
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((error, message)) => {
                // The sink task decides: produce again, or the dropped output.
                let returned = Returned {
                    message: message.detach(),
                    inflight,
                    error: error.clone(),
                };
                if let Err(mpsc::error::SendError(r)) = self.returned.send(returned) {
                    // The sink is gone (shutdown deadline): the event stays unacknowledged.
                    if let Some(n) = &r.inflight.notifier {
                        n.update(BatchStatus::Errored);
                    }
                }
            }
        }
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Who is at fault for a record librdkafka handed back: the record itself (producing
/// it again cannot help), the credentials or permissions (retried: an operator can
/// fix them while the records wait), or the brokers (retried).
fn classify(error: &KafkaError) -> ComponentError {
    use RDKafkaErrorCode::*;
    let message = error.to_string();
    match error.rdkafka_error_code() {
        Some(
            MessageSizeTooLarge
            | InvalidMessageSize
            | InvalidMessage
            | InvalidRecord
            | InvalidTopic
            | UnknownTopic
            | UnknownTopicOrPartition
            | InvalidArgument,
        ) => ComponentError::data(message),
        Some(
            TopicAuthorizationFailed
            | ClusterAuthorizationFailed
            | TransactionalIdAuthorizationFailed
            | SaslAuthenticationFailed
            | Authentication,
        ) => ComponentError::config(message),
        _ => ComponentError::external(message),
    }
}

type KafkaProducer = ThreadedProducer<ProducerCallbacks>;

impl Sink for KafkaSink {
    fn run(self: Box<Self>, mut cx: SinkContext) -> BoxFuture {
        Box::pin(async move {
            let (returned_tx, mut returned_rx) = mpsc::unbounded_channel();
            let callbacks = ProducerCallbacks {
                client: Callbacks::new(&self.id, cx.metrics.clone()),
                in_flight: AtomicUsize::new(0),
                delivered: AtomicU64::new(0),
                returned: returned_tx,
            };
            let producer: KafkaProducer = self
                .client
                .create_with_context(callbacks)
                .map_err(|e| format!("cannot create the Kafka producer: {e}"))?;
            let mut retries = Retries {
                rejects: Rejects::new(&cx),
                rejected: cx.metrics.emitter(),
                delivery_retry: cx.metrics.emitter(),
                delayed: DelayQueue::default(),
                retry: Retry::new("deliveries"),
                delivered_at_failure: 0,
            };
            let mut buf = Vec::with_capacity(4096);
            loop {
                let next_retry = retries.delayed.next_due();
                tokio::select! {
                    biased;
                    Some(r) = returned_rx.recv() => self.handle_returned(&producer, r, &mut retries, &cx.metrics).await,
                    _ = tokio::time::sleep_until(next_retry.unwrap_or_else(far_future)), if next_retry.is_some() => {
                        self.produce_due(&producer, &mut retries.delayed).await;
                    }
                    batch = cx.input.recv(), if retries.delayed.len() < self.max_delayed => {
                        let Some(batch) = batch else { break };
                        let mut refused = Vec::new();
                        for event in batch {
                            if let Err((event, reason)) = self.produce(&producer, event, &mut buf).await {
                                refused.push(retries.rejects.mark(event, &reason));
                            }
                        }
                        retries.rejects.send(refused, &retries.rejected, RejectedByKafka).await;
                    }
                }
                retries.check_recovered(&producer, &cx.metrics);
                fatal(&producer)?;
            }
            // Drain: every record produced so far is delivered, refused or produced
            // again until it is.
            while producer.context().in_flight.load(Ordering::Acquire) > 0
                || !returned_rx.is_empty()
                || !retries.delayed.is_empty()
            {
                fatal(&producer)?;
                match tokio::time::timeout(Duration::from_millis(50), returned_rx.recv()).await {
                    Ok(Some(r)) => self.handle_returned(&producer, r, &mut retries, &cx.metrics).await,
                    Ok(None) => break,
                    Err(_) => {}
                }
                self.produce_due(&producer, &mut retries.delayed).await;
                retries.check_recovered(&producer, &cx.metrics);
            }
            Ok(())
        })
    }
}

/// Fails the sink when the idempotent producer hit a fatal error (it cannot go on);
/// what it holds stays unacknowledged and is read again after a restart.
fn fatal(producer: &KafkaProducer) -> Result<(), String> {
    match producer.client().fatal_error() {
        Some((code, reason)) => Err(format!("the Kafka producer failed for good ({code:?}): {reason}")),
        None => Ok(()),
    }
}

/// What the sink does with failed records: refuse them, or retry them later.
struct Retries {
    rejects: Rejects,
    /// Counts and logs what `rejects` refuses.
    rejected: Emitter<RejectedByKafka>,
    /// Counts records produced again.
    delivery_retry: Emitter<DeliveryRetry>,
    delayed: DelayQueue,
    /// One "failing" / "work again" log pair per outage, the `failing` gauge.
    retry: Retry,
    /// Records delivered when the last retry was planned.
    delivered_at_failure: u64,
}

impl Retries {
    /// Ends the outage once a record is delivered after the last failure.
    fn check_recovered(&mut self, producer: &KafkaProducer, metrics: &ComponentMetrics) {
        if self.retry.is_failing() && producer.context().delivered.load(Ordering::Relaxed) > self.delivered_at_failure {
            self.retry.succeeded(metrics);
        }
    }
}

impl KafkaSink {
    /// Hands one event to librdkafka, waiting while its queue is full. An event that
    /// cannot become a record comes back with the reason.
    async fn produce(
        &self,
        producer: &KafkaProducer,
        mut event: Event,
        buf: &mut Vec<u8>,
    ) -> Result<(), (Event, String)> {
        let topic = match &self.static_topic {
            Some(t) => std::borrow::Cow::Borrowed(t.as_str()),
            None => match self.topic.render(&event) {
                Ok(t) if !t.is_empty() => std::borrow::Cow::Owned(t),
                Ok(_) => return Err((event, "the topic template renders empty".into())),
                Err(e) => return Err((event, format!("topic: {e}"))),
            },
        };
        let key = match &self.key {
            None => None,
            Some(Key::Field(f)) => event.get_path(f).map(|v| match v {
                Value::Bytes(b) => b.to_vec(),
                other => value_to_string(other).into_bytes(),
            }),
            Some(Key::Template(t)) => t.render(&event).ok().map(String::into_bytes),
        };
        buf.clear();
        match self.encoding {
            SinkEncoding::Json => encoding::encode(&event, Encoding::Json, buf),
            SinkEncoding::Text => encoding::encode(&event, Encoding::Text, buf),
            SinkEncoding::Raw => match event.get("message") {
                Some(Value::Bytes(b)) => buf.extend_from_slice(b),
                _ => return Err((event, "encoding `raw` needs a `message` field holding bytes".into())),
            },
        }
        let headers = self.headers(&event);
        let timestamp = match event.get_path(&self.time_field) {
            Some(Value::Timestamp(t)) => Some(t.timestamp_millis()),
            _ => None,
        };
        let inflight = Inflight::new(event.take_notifier());
        let mut record = BaseRecord::with_opaque_to(&topic, inflight).payload(buf.as_slice());
        if let Some(k) = &key {
            record = record.key(k.as_slice());
        }
        if let Some(h) = headers {
            record = record.headers(h);
        }
        if let Some(ts) = timestamp {
            record = record.timestamp(ts);
        }
        send(producer, record).await;
        Ok(())
    }

    /// The record's headers; `None` (and no allocation in librdkafka) when it has none.
    fn headers(&self, event: &Event) -> Option<OwnedHeaders> {
        let mut headers: Option<OwnedHeaders> = None;
        let mut add = |key: &str, value: &str| {
            let h = headers.take().unwrap_or_default();
            headers = Some(h.insert(Header {
                key,
                value: Some(value.as_bytes()),
            }));
        };
        if let Some(Value::Object(map)) = self.headers_field.as_deref().and_then(|f| event.get_path(f)) {
            for (name, v) in map {
                add(name.as_str(), &value_to_string(v));
            }
        }
        for (name, t) in &self.headers {
            if let Ok(value) = t.render(event) {
                add(name, &value);
            }
        }
        headers
    }

    /// Refuses a returned record (its own fault) or plans its retry.
    async fn handle_returned(
        &self,
        producer: &KafkaProducer,
        r: Returned,
        retries: &mut Retries,
        metrics: &ComponentMetrics,
    ) {
        let Returned {
            message,
            mut inflight,
            error,
        } = r;
        let failure = classify(&error);
        if failure.fault == Fault::Data {
            let reason = format!("the broker refused the record: {error}");
            let mut value = match (self.encoding, message.payload()) {
                (SinkEncoding::Json, Some(p)) => serde_json::from_slice::<Value>(p).unwrap_or(Value::Null),
                _ => Value::Null,
            };
            if !matches!(value, Value::Object(_)) {
                let mut m = ObjectMap::new();
                let payload = message.payload().map(|p| p.to_vec()).unwrap_or_default();
                m.insert("message".into(), Value::Bytes(payload.into()));
                value = Value::Object(m);
            }
            let mut event = Event::new(value);
            if let Some(n) = inflight.notifier.take() {
                event = event.with_notifier(&n);
            }
            retries
                .rejects
                .reject(vec![event], &reason, &retries.rejected, RejectedByKafka)
                .await;
            return;
        }
        inflight.attempts += 1;
        retries.retry.failed(&failure, &retries.delivery_retry, metrics);
        retries.delivered_at_failure = producer.context().delivered.load(Ordering::Relaxed);
        tracing::debug!(component = %self.id, topic = message.topic(), fault = %failure.fault, error = %error, attempts = inflight.attempts, "A record was not delivered; it is produced again after its backoff.");
        let delay = inflight.backoff.next_delay();
        retries.delayed.push(Instant::now() + delay, message, inflight);
    }

    /// Produces again every delayed record that is due.
    async fn produce_due(&self, producer: &KafkaProducer, delayed: &mut DelayQueue) {
        let now = Instant::now();
        while let Some(d) = delayed.pop_due(now) {
            let Delayed { message, inflight, .. } = d;
            let mut record = BaseRecord::with_opaque_to(message.topic(), inflight);
            if let Some(p) = message.payload() {
                record = record.payload(p);
            }
            if let Some(k) = message.key() {
                record = record.key(k);
            }
            if let Some(ts) = message.timestamp().to_millis() {
                record = record.timestamp(ts);
            }
            if let Some(h) = message.headers() {
                record = record.headers(h.clone());
            }
            send(producer, record).await;
        }
    }
}

/// Enqueues a record, waiting while librdkafka's queue is full (backpressure).
async fn send(producer: &KafkaProducer, mut record: BaseRecord<'_, [u8], [u8], Box<Inflight>>) {
    producer.context().in_flight.fetch_add(1, Ordering::AcqRel);
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err((error, r)) => {
                // Refused before reaching librdkafka's queue (e.g. larger than
                // message.max.bytes): report it like a failed delivery.
                producer.context().in_flight.fetch_sub(1, Ordering::AcqRel);
                let message = OwnedMessage::new(
                    r.payload.map(<[u8]>::to_vec),
                    r.key.map(<[u8]>::to_vec),
                    r.topic.to_string(),
                    r.timestamp
                        .map_or(rdkafka::Timestamp::NotAvailable, rdkafka::Timestamp::CreateTime),
                    -1,
                    -1,
                    r.headers,
                );
                let _ = producer.context().returned.send(Returned {
                    message,
                    inflight: r.delivery_opaque,
                    error,
                });
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_classified() {
        let fault = |code| classify(&KafkaError::MessageProduction(code)).fault;
        assert_eq!(fault(RDKafkaErrorCode::MessageSizeTooLarge), Fault::Data);
        assert_eq!(fault(RDKafkaErrorCode::InvalidTopic), Fault::Data);
        assert_eq!(fault(RDKafkaErrorCode::UnknownTopicOrPartition), Fault::Data);
        assert_eq!(fault(RDKafkaErrorCode::SaslAuthenticationFailed), Fault::Config);
        assert_eq!(fault(RDKafkaErrorCode::TopicAuthorizationFailed), Fault::Config);
        assert_eq!(fault(RDKafkaErrorCode::MessageTimedOut), Fault::External);
        assert_eq!(fault(RDKafkaErrorCode::AllBrokersDown), Fault::External);
    }

    #[test]
    fn the_delay_queue_gives_records_back_when_due_earliest_first() {
        let message = |n: &str| {
            OwnedMessage::new(
                Some(n.as_bytes().to_vec()),
                None,
                "t".into(),
                rdkafka::Timestamp::NotAvailable,
                0,
                0,
                None,
            )
        };
        let now = Instant::now();
        let mut q = DelayQueue::default();
        q.push(now + Duration::from_secs(2), message("late"), Inflight::new(None));
        q.push(now + Duration::from_secs(1), message("early"), Inflight::new(None));
        q.push(now + Duration::from_secs(1), message("early-too"), Inflight::new(None));
        assert!(q.pop_due(now).is_none(), "nothing due yet");
        assert_eq!(q.next_due(), Some(now + Duration::from_secs(1)));
        let due: Vec<String> = std::iter::from_fn(|| q.pop_due(now + Duration::from_secs(1)))
            .map(|d| String::from_utf8(d.message.payload().unwrap().to_vec()).unwrap())
            .collect();
        assert_eq!(due, vec!["early", "early-too"], "in order, the later one waits");
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn the_registry_entry_declares_every_emitter_and_gauge() {
        let m = ComponentMetrics::new(
            "out",
            "sink",
            "kafka",
            super::super::SINK.events,
            super::super::SINK.gauges,
        );
        let _client = Callbacks::<ProducerSide>::new("out", m.clone());
        m.emitter::<RejectedByKafka>();
        m.emitter::<DeliveryRetry>();
        m.gauge(&crate::retry::RETRYING);
    }

    #[test]
    fn debug_prints_no_secret() {
        let config: KafkaSinkConfig = toml::from_str(
            r#"
bootstrap_servers = "k:9092"
topic = "t"
sasl = { mechanism = "SCRAM-SHA-512", username = "u", password = "hunter2-sasl" }
librdkafka_options = { "ssl.key.password" = "hunter2-opt" }
"#,
        )
        .unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
