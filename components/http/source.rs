//! The `http` source: web and app clients POST events; the Kafka REST Proxy's
//! produce APIs (v2 `POST /topics/{topic}`, v3 `POST /v3/clusters/…/records`, see
//! [`super::kafka_rest`]) let clients written for a Kafka REST proxy send here
//! unchanged.
//!
//! How it keeps the at-least-once promise: with `acknowledgements` on (the default)
//! a request is answered 200 only once every sink its events reach has them durably;
//! otherwise the client gets a 5xx and retries, so an acknowledged request is never
//! lost (a retried one may arrive twice). Under backpressure the server answers 503
//! with `Retry-After` instead of queueing without bound.
//!
//! Against hostile clients (see [`super::limits`]): connections, requests and bytes in
//! flight are capped, slow clients are dropped by the header, body and idle
//! timeouts, a request holds at most `max_events_per_request` events, and its events
//! go downstream in batches of at most `max_batch_events` / `max_batch_bytes`, all
//! under one acknowledgement. HTTP and HTTPS share the same server and limits.

use super::decode::{self, BodyError, Decoding};
use super::events::{
    AcceptFailed, Backpressure, BadRequest, BodyTimeout, InFlightLimit, NotDelivered, Rejected, RequestEvents,
    ShuttingDown, TooLarge, TooManyEvents, Unauthorized,
};
use super::kafka_rest;
use super::limits::{self, ConnectionTimeouts, InFlight, LimitedListener, Peer, Refused, Reservation};
use crate::ack::{self, BatchNotifier, BatchStatus};
use crate::component::{
    BoxFuture, BuildContext, BuildError, Built, Fanout, Resource, Source, SourceContext, parse_options,
};
use crate::error::ComponentError;
use crate::event::Event;
use crate::metrics::ComponentMetrics;
use crate::secret::Secret;
use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use vrl::value::{KeyString, Value};

/// Options of the `http` source.
#[derive(Debug, Deserialize, Clone, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpSourceConfig {
    /// Address to listen on, e.g. `0.0.0.0:8080`. Two components may not claim the
    /// same one.
    pub address: String,
    /// How a request body is read.
    #[serde(default)]
    pub decoding: Decoding,
    /// Largest request body, before and after decompression (a small gzip bomb is
    /// refused too), in bytes. Larger bodies get `413`.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Most events in one request (counted while decoding, which stops there). More
    /// get `413`.
    #[serde(default = "default_max_events_per_request")]
    pub max_events_per_request: usize,
    /// Most events in one batch sent downstream; a larger request becomes several
    /// batches under one acknowledgement.
    #[serde(default = "default_max_batch_events")]
    pub max_batch_events: usize,
    /// About this many bytes of decoded body per batch sent downstream (at least one
    /// event per batch).
    #[serde(default = "default_max_batch_bytes")]
    pub max_batch_bytes: usize,
    /// Requests handled at once (reading, decoding or awaiting delivery). Past it:
    /// `503` + `Retry-After: 1`.
    #[serde(default = "limits::default_max_in_flight_requests")]
    pub max_in_flight_requests: usize,
    /// Body bytes held by the requests in flight: a request holds its body as it
    /// arrives (its `Content-Length` from the start), then its decompressed size,
    /// until it is answered. A request that would pass it: `503` + `Retry-After: 1`.
    /// Must be at least `max_body_bytes`.
    #[serde(default = "limits::default_max_in_flight_bytes")]
    pub max_in_flight_bytes: usize,
    /// Open connections. Past it new connections are not accepted: they wait in the
    /// kernel's accept backlog (and past that the kernel refuses them) until one
    /// closes.
    #[serde(default = "limits::default_max_connections")]
    pub max_connections: usize,
    /// Seconds from a connection's opening, or the first byte of a further request on
    /// it, until its request line and headers are complete (for HTTPS the TLS
    /// handshake counts too). Past it the connection is closed without a reply.
    #[serde(default = "limits::default_header_timeout_secs")]
    pub header_timeout_secs: u64,
    /// The whole body must arrive within this many seconds from the end of the
    /// headers: else `408` and the connection is closed.
    #[serde(default = "limits::default_body_timeout_secs")]
    pub body_timeout_secs: u64,
    /// A keep-alive connection with no request for this many seconds is closed (so is
    /// one whose client stops reading a reply).
    #[serde(default = "limits::default_idle_timeout_secs")]
    pub idle_timeout_secs: u64,
    /// Reply `200` only once delivered; `503` + `Retry-After: 1` when not delivered
    /// within `ack_timeout_secs`; `400` when a sink rejected the events for good.
    /// With `false`, `200` once the events are queued.
    #[serde(default = "yes")]
    pub acknowledgements: bool,
    /// How long a request waits for delivery, in seconds (see `acknowledgements`).
    #[serde(default = "default_ack_timeout_secs")]
    pub ack_timeout_secs: u64,
    /// When the pipeline has no room for this many ms: `503` + `Retry-After: 1`.
    #[serde(default = "default_backpressure_timeout_ms")]
    pub backpressure_timeout_ms: u64,
    /// Field receiving the request path (`""`: none).
    #[serde(default = "default_path_key")]
    pub path_key: String,
    /// Accepted credentials; without this table no credentials are needed.
    /// Comparison is constant-time; credentials are never logged. Failure: `401` with
    /// `WWW-Authenticate`.
    pub auth: Option<AuthConfig>,
    /// Serve HTTPS (rustls) with this certificate and key.
    pub tls: Option<TlsConfig>,
    /// Kafka REST: the topics accepted, and listed by `GET /topics`. Empty: any topic
    /// is accepted. Others get `404` with error code 40401.
    #[serde(default)]
    pub topics: Vec<String>,
}

/// HTTPS settings.
#[derive(Debug, Deserialize, Clone, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub crt_file: std::path::PathBuf,
    /// PEM private key.
    pub key_file: std::path::PathBuf,
}

/// Credentials a request may present.
#[derive(Debug, Deserialize, Clone, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Accepted `Authorization: Bearer …` tokens.
    #[serde(default)]
    pub bearer_tokens: Vec<Secret>,
    /// Accepted basic-auth users, `{ name = "password" }`.
    #[serde(default)]
    pub basic: BTreeMap<String, Secret>,
}

fn default_max_body_bytes() -> usize {
    10 * 1024 * 1024
}
fn default_max_events_per_request() -> usize {
    100_000
}
fn default_max_batch_events() -> usize {
    1000
}
fn default_max_batch_bytes() -> usize {
    1024 * 1024
}
fn yes() -> bool {
    true
}
fn default_ack_timeout_secs() -> u64 {
    30
}
fn default_backpressure_timeout_ms() -> u64 {
    1000
}
fn default_path_key() -> String {
    "path".into()
}

/// Builds the `http` source.
pub fn build(_cx: &BuildContext, options: toml::Value) -> Result<Built, BuildError> {
    let config: HttpSourceConfig = parse_options(options)?;
    let address: SocketAddr = config.address.parse().map_err(|e| {
        BuildError::key(
            "address",
            format!("`{}` is not an address like 0.0.0.0:8080: {e}", config.address),
        )
    })?;
    if let Some(auth) = &config.auth
        && auth.bearer_tokens.is_empty()
        && auth.basic.is_empty()
    {
        return Err(BuildError::key(
            "auth",
            "set `bearer_tokens` or `basic` users, or remove the table",
        ));
    }
    for (key, value) in [
        ("max_body_bytes", config.max_body_bytes as u64),
        ("max_events_per_request", config.max_events_per_request as u64),
        ("max_batch_events", config.max_batch_events as u64),
        ("max_batch_bytes", config.max_batch_bytes as u64),
        ("max_in_flight_requests", config.max_in_flight_requests as u64),
        ("max_connections", config.max_connections as u64),
        ("header_timeout_secs", config.header_timeout_secs),
        ("body_timeout_secs", config.body_timeout_secs),
        ("idle_timeout_secs", config.idle_timeout_secs),
    ] {
        if value == 0 {
            return Err(BuildError::key(key, "must be at least 1"));
        }
    }
    if config.max_in_flight_bytes < config.max_body_bytes {
        return Err(BuildError::key(
            "max_in_flight_bytes",
            format!(
                "must be at least max_body_bytes ({}), or a largest request could never be taken",
                config.max_body_bytes
            ),
        ));
    }
    if let Some(tls) = &config.tls {
        for (key, path) in [("crt_file", &tls.crt_file), ("key_file", &tls.key_file)] {
            std::fs::metadata(path)
                .map_err(|e| BuildError::key(key, format!("cannot read {}: {e}", path.display())))?;
        }
    }
    let (decoding, max_events) = (config.decoding, config.max_events_per_request);
    // A renewed certificate is a change: a reload (or --watch) picks it up.
    let files: Vec<_> = config
        .tls
        .iter()
        .flat_map(|t| [t.crt_file.clone(), t.key_file.clone()])
        .collect();
    let built = Built::source(HttpSource { config, address })
        .claim(Resource::Port(address.to_string()))
        .with_decoder(std::sync::Arc::new(move |body| {
            decode::events(body, decoding, None, max_events).map_err(|e| e.to_string())
        }));
    Ok(files.into_iter().fold(built, Built::reading))
}

struct HttpSource {
    config: HttpSourceConfig,
    address: SocketAddr,
}

struct Shared {
    config: HttpSourceConfig,
    out: Fanout,
    metrics: Arc<ComponentMetrics>,
    events: RequestEvents,
    in_flight: InFlight,
    /// The next Kafka REST v3 offset reported (a sequence of this source).
    next_offset: std::sync::atomic::AtomicU64,
}

/// Each request's connection info is the connection's [`Peer`], through which the
/// request tells the connection it is being handled.
impl Connected<Peer> for Peer {
    fn connect_info(peer: Peer) -> Self {
        peer
    }
}

/// Marks the connection busy while a request is handled: no header or idle deadline
/// runs then (the body and acknowledgement timeouts bound it instead).
async fn track(ConnectInfo(peer): ConnectInfo<Peer>, req: Request, next: Next) -> Response {
    let _busy = peer.activity.begin();
    next.run(req).await
}

impl Source for HttpSource {
    fn run(self: Box<Self>, cx: SourceContext) -> BoxFuture {
        Box::pin(async move {
            let SourceContext {
                id,
                out,
                mut shutdown,
                metrics,
            } = cx;
            let tls = self.config.tls.clone();
            let timeouts = ConnectionTimeouts {
                header: Duration::from_secs(self.config.header_timeout_secs),
                idle: Duration::from_secs(self.config.idle_timeout_secs),
            };
            let max_connections = self.config.max_connections;
            let shared = Arc::new(Shared {
                in_flight: InFlight::new(self.config.max_in_flight_requests, self.config.max_in_flight_bytes),
                config: self.config,
                out: out.default,
                metrics: metrics.clone(),
                events: RequestEvents::new(&metrics),
                next_offset: std::sync::atomic::AtomicU64::new(0),
            });
            let accept_failed = shared.events.accept_failed.clone();
            let app = Router::new()
                .route(
                    "/health",
                    get(|| async { axum::Json(serde_json::json!({ "status": "ok" })) }),
                )
                .route("/topics", get(rest_topics))
                .route("/topics/{topic}", post(rest_produce).get(rest_topic))
                .route("/v3/clusters/{cluster}/topics/{topic}/records", post(rest_v3_produce))
                .route(
                    "/kafka/v3/clusters/{cluster}/topics/{topic}/records",
                    post(rest_v3_produce),
                )
                .fallback(generic)
                .with_state(shared)
                .layer(middleware::from_fn(track))
                .into_make_service_with_connect_info::<Peer>();
            let rustls = match &tls {
                Some(tls) => Some(
                    axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.crt_file, &tls.key_file)
                        .await
                        .map_err(|e| format!("cannot load the TLS certificate or key: {e}"))?,
                ),
                None => None,
            };
            let listener = LimitedListener::bind(self.address, max_connections, timeouts, &metrics)
                .await
                .map_err(|e| format!("cannot listen on {}: {e}", self.address))?;
            let handle = axum_server::Handle::<Peer>::new();
            let stopper = handle.clone();
            tokio::spawn(async move {
                shutdown.wait().await;
                stopper.graceful_shutdown(Some(Duration::from_secs(30)));
            });
            let server = axum_server::Server::<Peer>::from_listener(listener)
                .handle(handle)
                .accept_error_handler(move |peer, e| {
                    accept_failed.emit(AcceptFailed {
                        peer: peer.map(|p| p.addr),
                        error: e.to_string(),
                    });
                });
            let Some(rustls) = rustls else {
                tracing::info!(component = %id, address = %self.address, "HTTP source listening.");
                return server
                    .serve(app)
                    .await
                    .map_err(|e| ComponentError::external(format!("HTTP server failed on {}: {e}", self.address)));
            };
            tracing::info!(component = %id, address = %self.address, "HTTPS source listening.");
            server
                .acceptor(axum_server::tls_rustls::RustlsAcceptor::new(rustls).handshake_timeout(timeouts.header))
                .serve(app)
                .await
                .map_err(|e| ComponentError::external(format!("HTTPS server failed on {}: {e}", self.address)))
        })
    }
}

/// What kind of endpoint a request came to, which shapes the replies.
#[derive(Clone, Copy, PartialEq)]
enum Endpoint {
    Generic,
    KafkaRest,
    KafkaRestV3,
}

/// Where a request came: the generic endpoint, or a Kafka REST produce endpoint.
enum Route {
    Generic,
    V2 { topic: String },
    V3 { cluster: String, topic: String },
}

impl Route {
    fn endpoint(&self) -> Endpoint {
        match self {
            Route::Generic => Endpoint::Generic,
            Route::V2 { .. } => Endpoint::KafkaRest,
            Route::V3 { .. } => Endpoint::KafkaRestV3,
        }
    }
    fn topic(&self) -> Option<&str> {
        match self {
            Route::Generic => None,
            Route::V2 { topic } | Route::V3 { topic, .. } => Some(topic),
        }
    }
}

async fn generic(State(s): State<Arc<Shared>>, req: Request) -> Response {
    if req.method() != Method::POST && req.method() != Method::PUT {
        return reply_error(
            Endpoint::Generic,
            StatusCode::METHOD_NOT_ALLOWED,
            "use POST (or GET /health)".into(),
        );
    }
    ingest(&s, req, Route::Generic).await
}

async fn rest_produce(State(s): State<Arc<Shared>>, Path(topic): Path<String>, req: Request) -> Response {
    ingest(&s, req, Route::V2 { topic }).await
}

async fn rest_v3_produce(
    State(s): State<Arc<Shared>>,
    Path((cluster, topic)): Path<(String, String)>,
    req: Request,
) -> Response {
    ingest(&s, req, Route::V3 { cluster, topic }).await
}

/// False when `topics` is set and `topic` is not in it.
fn topic_accepted(s: &Shared, topic: &str) -> bool {
    s.config.topics.is_empty() || s.config.topics.iter().any(|t| t == topic)
}

async fn rest_topics(State(s): State<Arc<Shared>>) -> Response {
    kafka_json(StatusCode::OK, kafka_rest::topic_list(&s.config.topics).to_string())
}

async fn rest_topic(State(s): State<Arc<Shared>>, Path(topic): Path<String>) -> Response {
    if !topic_accepted(&s, &topic) {
        return reply_error(
            Endpoint::KafkaRest,
            StatusCode::NOT_FOUND,
            format!("Topic {topic} not found."),
        );
    }
    kafka_json(StatusCode::OK, kafka_rest::topic_info(&topic).to_string())
}

fn kafka_json(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/vnd.kafka.v2+json")], body).into_response()
}

async fn ingest(s: &Shared, req: Request, route: Route) -> Response {
    let endpoint = route.endpoint();
    let topic = route.topic();
    let ev = &s.events;
    let unavailable = |message: &str| {
        let mut r = reply_error(endpoint, StatusCode::SERVICE_UNAVAILABLE, message.into());
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        r
    };
    if let Err(challenge) = authorize(s.config.auth.as_ref(), req.headers()) {
        ev.unauthorized.emit(Unauthorized);
        let mut r = reply_error(
            endpoint,
            StatusCode::UNAUTHORIZED,
            "missing or wrong credentials".into(),
        );
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        return r;
    }
    if let Some(t) = topic
        && !topic_accepted(s, t)
    {
        let message = match endpoint {
            Endpoint::KafkaRestV3 => "This server does not host this topic-partition.".to_string(),
            _ => format!("Topic {t} not found."),
        };
        ev.bad_request.emit(BadRequest {
            reason: format!("unknown topic `{t}`"),
        });
        return reply_error(endpoint, StatusCode::NOT_FOUND, message);
    }
    let _slot = match s.in_flight.try_request() {
        Ok(slot) => slot,
        Err(refused) => return over_limit(s, endpoint, refused),
    };
    let max = s.config.max_body_bytes;
    let (parts, body) = req.into_parts();
    let text_header = |name| {
        parts
            .headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .map(str::to_string)
    };
    let declared = text_header(header::CONTENT_LENGTH).and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return refuse_body(s, endpoint, BodyError::TooLarge(max));
    }
    let mut held = match s.in_flight.try_bytes(declared.unwrap_or(0) as usize) {
        Ok(r) => r,
        Err(refused) => return over_limit(s, endpoint, refused),
    };
    let body_timeout = Duration::from_secs(s.config.body_timeout_secs);
    let raw = match tokio::time::timeout(body_timeout, read_body(body, max, &mut held)).await {
        Ok(Ok(b)) => b,
        Ok(Err(ReadError::TooLarge)) => return refuse_body(s, endpoint, BodyError::TooLarge(max)),
        Ok(Err(ReadError::Over(refused))) => return over_limit(s, endpoint, refused),
        Ok(Err(ReadError::Broken(e))) => {
            let message = format!("cannot read the body: {e}");
            ev.bad_request.emit(BadRequest {
                reason: message.clone(),
            });
            return reply_error(endpoint, StatusCode::BAD_REQUEST, message);
        }
        Err(_) => {
            ev.body_timeout.emit(BodyTimeout {
                timeout_secs: s.config.body_timeout_secs,
            });
            let mut r = reply_error(
                endpoint,
                StatusCode::REQUEST_TIMEOUT,
                format!("the body did not arrive within {} s", s.config.body_timeout_secs),
            );
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return r;
        }
    };
    let raw_len = raw.len();
    // The compressed body is freed once decompressed, and the decompressed one once
    // decoded; the budget then holds its size until the request is answered.
    let body = match decode::decompress(raw, text_header(header::CONTENT_ENCODING).as_deref(), max) {
        Ok(body) => body,
        Err(e) => return refuse_body(s, endpoint, e),
    };
    if let Err(refused) = held.resize(body.len()) {
        return over_limit(s, endpoint, refused);
    }
    let body_len = body.len();
    let max_events = s.config.max_events_per_request;
    let content_type = text_header(header::CONTENT_TYPE);
    let mut reports = Vec::new();
    let decoded = match &route {
        Route::V2 { topic } => kafka_rest::embedded(content_type.as_deref())
            .and_then(|embedded| kafka_rest::v2_records(&body, topic, embedded, max_events)),
        Route::V3 { topic, .. } => kafka_rest::v3_records(&body, topic, max_events).map(|(events, r)| {
            reports = r;
            events
        }),
        Route::Generic => decode::events(&body, s.config.decoding, content_type.as_deref(), max_events),
    };
    drop(body);
    let records = match decoded {
        Ok(r) => r,
        Err(e) => return refuse_body(s, endpoint, e),
    };
    if let [kafka_rest::Report::Refused(why)] = reports.as_slice() {
        // One v3 record, refused: the request's own status says so.
        return refuse_body(s, endpoint, BodyError::Malformed(why.clone()));
    }
    let count = records.len();
    s.metrics.received(count as u64, raw_len as u64);
    let now = Value::Timestamp(chrono::Utc::now());
    let path = Value::from(parts.uri.path().to_string());
    let (notifier, ack_rx) = BatchNotifier::new();
    let per_batch = batch_len(count, body_len, s.config.max_batch_events, s.config.max_batch_bytes);
    let mut records = records.into_iter();
    let wait = Duration::from_millis(s.config.backpressure_timeout_ms);
    loop {
        let batch: Vec<Event> = records
            .by_ref()
            .take(per_batch)
            .map(|mut m| {
                m.entry(KeyString::from("timestamp")).or_insert_with(|| now.clone());
                if !s.config.path_key.is_empty() && topic.is_none() {
                    m.insert(KeyString::from(s.config.path_key.as_str()), path.clone());
                }
                let e = Event::from_map(m);
                if s.config.acknowledgements {
                    e.with_notifier(&notifier)
                } else {
                    e
                }
            })
            .collect();
        if batch.is_empty() {
            break;
        }
        match tokio::time::timeout(wait, s.out.send(batch)).await {
            Ok(true) => {}
            Ok(false) => {
                ev.shutting_down.emit(ShuttingDown);
                return reply_error(
                    endpoint,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "pipe is shutting down".into(),
                );
            }
            Err(_) => {
                ev.backpressure.emit(Backpressure);
                return unavailable("pipe is busy; retry later");
            }
        }
    }
    drop(notifier);
    if s.config.acknowledgements {
        let timeout = Duration::from_secs(s.config.ack_timeout_secs);
        let status = tokio::time::timeout(timeout, ack::wait(ack_rx)).await;
        if let Ok(status) = &status {
            s.metrics.acknowledged(*status, count as u64);
        }
        match status {
            Ok(BatchStatus::Delivered) => {}
            Ok(BatchStatus::Rejected) => {
                ev.rejected.emit(Rejected);
                return reply_error(endpoint, StatusCode::BAD_REQUEST, "a sink rejected these events".into());
            }
            Ok(BatchStatus::Errored) | Err(_) => {
                ev.not_delivered.emit(NotDelivered);
                return unavailable("not delivered yet; retry");
            }
        }
    }
    match &route {
        Route::V3 { cluster, topic } => {
            let next = || s.next_offset.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            kafka_json(StatusCode::OK, kafka_rest::v3_reply(&reports, cluster, topic, next))
        }
        _ => reply_ok(endpoint, count),
    }
}

/// Why reading a body stopped.
enum ReadError {
    /// Past `max_body_bytes`.
    TooLarge,
    /// Past the in-flight byte budget.
    Over(Refused),
    /// The client broke off or sent a malformed chunked body.
    Broken(axum::Error),
}

/// Reads the whole body, holding its bytes in `held` as they arrive.
async fn read_body(body: Body, max: usize, held: &mut Reservation) -> Result<Bytes, ReadError> {
    let mut stream = body.into_data_stream();
    let mut buf = BytesMut::with_capacity(held.held().min(max));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(ReadError::Broken)?;
        let len = buf.len() + chunk.len();
        if len > max {
            return Err(ReadError::TooLarge);
        }
        held.resize(held.held().max(len)).map_err(ReadError::Over)?;
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// The reply to a body that cannot be taken: 413, 415 or 400.
fn refuse_body(s: &Shared, endpoint: Endpoint, e: BodyError) -> Response {
    let ev = &s.events;
    let status = match &e {
        BodyError::TooLarge(max) => {
            ev.too_large.emit(TooLarge { max_body_bytes: *max });
            StatusCode::PAYLOAD_TOO_LARGE
        }
        BodyError::TooManyEvents(max) => {
            ev.too_many_events.emit(TooManyEvents {
                max_events_per_request: *max,
            });
            StatusCode::PAYLOAD_TOO_LARGE
        }
        BodyError::UnsupportedEncoding(_)
        | BodyError::UnsupportedContentType(_)
        | BodyError::Malformed(_)
        | BodyError::InvalidRecords(_) => {
            ev.bad_request.emit(BadRequest { reason: e.to_string() });
            match e {
                BodyError::UnsupportedEncoding(_) | BodyError::UnsupportedContentType(_) => {
                    StatusCode::UNSUPPORTED_MEDIA_TYPE
                }
                BodyError::InvalidRecords(_) => StatusCode::UNPROCESSABLE_ENTITY,
                _ => StatusCode::BAD_REQUEST,
            }
        }
    };
    reply_error(endpoint, status, e.to_string())
}

/// Events per downstream batch for `count` events decoded from `bytes` bytes: at
/// most `max_events`, and about `max_bytes` of body, never less than one.
fn batch_len(count: usize, bytes: usize, max_events: usize, max_bytes: usize) -> usize {
    let per_event = bytes.div_ceil(count.max(1)).max(1);
    (max_bytes / per_event).clamp(1, max_events.max(1))
}

/// 503 + `Retry-After` past `max_in_flight_requests` or `max_in_flight_bytes`.
fn over_limit(s: &Shared, endpoint: Endpoint, refused: Refused) -> Response {
    s.events.in_flight_limit.emit(InFlightLimit { refused });
    let mut r = reply_error(endpoint, StatusCode::SERVICE_UNAVAILABLE, refused.to_string());
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

fn reply_ok(endpoint: Endpoint, count: usize) -> Response {
    match endpoint {
        Endpoint::Generic => (StatusCode::OK, axum::Json(serde_json::json!({ "events": count }))).into_response(),
        Endpoint::KafkaRest | Endpoint::KafkaRestV3 => {
            kafka_json(StatusCode::OK, kafka_rest::v2_reply(count).to_string())
        }
    }
}

fn reply_error(endpoint: Endpoint, status: StatusCode, message: String) -> Response {
    match endpoint {
        Endpoint::Generic => (status, axum::Json(serde_json::json!({ "error": message }))).into_response(),
        Endpoint::KafkaRest => {
            let body = serde_json::json!({ "error_code": kafka_rest::v2_error_code(status), "message": message });
            kafka_json(status, body.to_string())
        }
        Endpoint::KafkaRestV3 => {
            let body = serde_json::json!({ "error_code": status.as_u16(), "message": message });
            kafka_json(status, body.to_string())
        }
    }
}

/// Checks the Authorization header against the configured credentials, in constant
/// time per candidate; on failure, the challenge to send back.
fn authorize(auth: Option<&AuthConfig>, headers: &HeaderMap) -> Result<(), &'static str> {
    let Some(auth) = auth else { return Ok(()) };
    let challenge = if auth.bearer_tokens.is_empty() {
        "Basic realm=\"pipe\""
    } else {
        "Bearer"
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let ok = if let Some(token) = given.strip_prefix("Bearer ") {
        auth.bearer_tokens.iter().fold(false, |ok, t| {
            ok | constant_time_eq(token.trim().as_bytes(), t.expose().as_bytes())
        })
    } else if let Some(encoded) = given.strip_prefix("Basic ") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .unwrap_or_default();
        let (user, pass) = match decoded.iter().position(|b| *b == b':') {
            Some(i) => (&decoded[..i], &decoded[i + 1..]),
            None => (&decoded[..], &b""[..]),
        };
        auth.basic.iter().fold(false, |ok, (u, p)| {
            ok | (constant_time_eq(user, u.as_bytes()) & constant_time_eq(pass, p.expose().as_bytes()))
        })
    } else {
        false
    };
    if ok { Ok(()) } else { Err(challenge) }
}

/// Compares without returning early on the first difference.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        diff |= (a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0)) as usize;
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_checks_bearer_and_basic() {
        let auth = AuthConfig {
            bearer_tokens: vec![Secret::new("s3cret")],
            basic: [("app".to_string(), Secret::new("pw-xyz"))].into_iter().collect(),
        };
        let printed = format!("{auth:?}");
        assert!(!printed.contains("s3cret") && !printed.contains("pw-xyz"), "{printed}");
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            h
        };
        assert!(authorize(Some(&auth), &with("Bearer s3cret")).is_ok());
        assert!(authorize(Some(&auth), &with("Bearer s3cre")).is_err());
        let basic = base64::engine::general_purpose::STANDARD.encode("app:pw-xyz");
        assert!(authorize(Some(&auth), &with(&format!("Basic {basic}"))).is_ok());
        let wrong = base64::engine::general_purpose::STANDARD.encode("app:px");
        assert!(authorize(Some(&auth), &with(&format!("Basic {wrong}"))).is_err());
        assert!(authorize(Some(&auth), &HeaderMap::new()).is_err());
        assert!(authorize(None, &HeaderMap::new()).is_ok());
    }

    #[test]
    fn a_request_is_split_into_batches_bounded_by_events_and_bytes() {
        assert_eq!(batch_len(2500, 2500 * 10, 1000, 1 << 20), 1000, "bounded by events");
        assert_eq!(batch_len(100, 100 << 20, 1000, 1 << 20), 1, "a 1 MiB event goes alone");
        assert_eq!(batch_len(1000, 1000 * 4096, 1000, 1 << 20), 256, "bounded by bytes");
        assert_eq!(batch_len(0, 0, 1000, 1 << 20), 1000);
    }
}
