//! The `elasticsearch` sink: `_bulk` requests to one or more endpoints, daily or
//! per-field indices (or data streams), per-item results.
//!
//! How it keeps the at-least-once promise without silently dropping a document:
//! every event is acknowledged from its own item result. 429 and 5xx items are sent
//! again alone, with backoff and jitter (never the whole bulk); 409 on `create` with an
//! id counts as already delivered, so retries and replays never duplicate when
//! `id_field` is set; mapping and parse errors (other 4xx) go to output `ID.dropped`
//! with Elasticsearch's reason (or are reported as rejected when nothing reads that
//! output). An unreachable cluster is retried without end: the inputs wait
//! (backpressure), nothing is lost.
//!
//! Whole-bulk answers: 401/403 (credentials refused) and other 4xx are the
//! configuration's fault: retried with backoff, the sink marked failing, never a
//! rejection; 429 and 5xx are retried likewise. 413 (too large) and 400 (a document
//! the server cannot even parse) halve the bulk until it passes, down to one
//! document, which is then refused alone with the server's answer. Credentials in an
//! endpoint URL (`https://user:pass@host`) are taken out of it at start, so no URL
//! that is logged holds them.

use super::bulk::{self, Action, Doc, Outcome};
use super::events::{BulkSplit, ItemRetried, RejectedByElasticsearch, RequestFailed};
use crate::ack::BatchStatus;
use crate::component::{BoxFuture, BuildContext, BuildError, Built, Sink, SinkContext, parse_options};
use crate::compression::{Compression, gzip};
use crate::error::ComponentError;
use crate::event::{Event, value_to_string};
use crate::metrics::{ComponentMetrics, Emitter};
use crate::rejects::Rejects;
use crate::retry::{Backoff, Retry};
use crate::secret::{Secret, redact_url, strip_userinfo};
use crate::template::Template;
use serde::Deserialize;
use std::time::{Duration, Instant};
use vrl::value::{KeyString, Value};

/// Options of the `elasticsearch` sink.
#[derive(Debug, Deserialize, Clone, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ElasticsearchConfig {
    /// Base URLs, e.g. `["http://es1:9200", "http://es2:9200"]`, used round-robin; an
    /// endpoint that fails is skipped for 5 s. `user:pass@` in a URL is taken as
    /// basic auth.
    pub endpoints: Vec<Endpoint>,
    /// Index or data stream template (`app-%Y.%m.%d`, `logs-{{ service }}`). An event
    /// the template cannot render goes to `ID.dropped`.
    #[serde(default = "default_index")]
    pub index: String,
    /// Where documents go.
    #[serde(default)]
    pub mode: Mode,
    /// The bulk action per document.
    #[serde(default)]
    pub action: Action,
    /// Field whose value becomes `_id`, so retries never duplicate. An event without
    /// it goes to `ID.dropped`.
    pub id_field: Option<String>,
    /// The event time for the strftime parts of `index`.
    #[serde(default = "default_time_field")]
    pub time_field: String,
    /// Most documents per request.
    #[serde(default = "default_max_events")]
    pub batch_max_events: usize,
    /// Most bytes per request (before compression).
    #[serde(default = "default_max_bytes")]
    pub batch_max_bytes: usize,
    /// Longest wait to fill a batch, in ms.
    #[serde(default = "default_batch_timeout_ms")]
    pub batch_timeout_ms: u64,
    /// Request body compression.
    #[serde(default)]
    pub compression: Compression,
    /// Timeout of one request, in seconds.
    #[serde(default = "default_request_timeout_secs")]
    pub request_timeout_secs: u64,
    /// At start, `GET /` until the cluster answers (logs its version); the inputs wait
    /// meanwhile. With `false`, one try and a warning.
    #[serde(default = "yes")]
    pub healthcheck: bool,
    /// Credentials: basic (`user`, `password`) or an API key, not both.
    pub auth: Option<Auth>,
    /// TLS settings for `https://` endpoints.
    pub tls: Option<Tls>,
}

/// Where documents go.
#[derive(Debug, Deserialize, serde::Serialize, schemars::JsonSchema, Clone, Copy, Default, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Into the index named by `index`, with `action`.
    #[default]
    Bulk,
    /// Into a data stream: action `create`, and `@timestamp` is added from
    /// `time_field` when missing.
    DataStream,
}

/// An endpoint URL; its `Debug` hides a password in it.
#[derive(Deserialize, Clone, schemars::JsonSchema)]
#[serde(transparent)]
pub struct Endpoint(pub String);

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", redact_url(&self.0))
    }
}

/// Basic (`user` + `password`) or API-key (`api_key`, the base64 `id:key`) credentials.
#[derive(Debug, Deserialize, Clone, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    /// Basic auth user.
    pub user: Option<String>,
    /// Basic auth password.
    pub password: Option<Secret>,
    /// `Authorization: ApiKey …` (the base64 `id:key`).
    pub api_key: Option<Secret>,
}

/// TLS options.
#[derive(Debug, Deserialize, Clone, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// PEM CA certificates to trust (besides the system's).
    pub ca_file: Option<std::path::PathBuf>,
    /// `false` accepts any certificate (tests only).
    #[serde(default = "yes")]
    pub verify_certificate: bool,
}

fn default_index() -> String {
    "logs-%Y.%m.%d".into()
}
fn default_time_field() -> String {
    "timestamp".into()
}
fn default_max_events() -> usize {
    1000
}
fn default_max_bytes() -> usize {
    10 * 1024 * 1024
}
fn default_batch_timeout_ms() -> u64 {
    1000
}
fn default_request_timeout_secs() -> u64 {
    60
}
fn yes() -> bool {
    true
}

/// Builds the `elasticsearch` sink.
pub fn build(cx: &BuildContext, options: toml::Value) -> Result<Built, BuildError> {
    let mut config: ElasticsearchConfig = parse_options(options)?;
    if config.endpoints.is_empty() {
        return Err(BuildError::key(
            "endpoints",
            "needs at least one URL, e.g. [\"http://127.0.0.1:9200\"]",
        ));
    }
    let mut url_auth = None;
    for e in &mut config.endpoints {
        let (url, creds) = strip_userinfo(&e.0)
            .map_err(|err| BuildError::key("endpoints", format!("`{}` is not a URL: {err}", redact_url(&e.0))))?;
        e.0 = url;
        if let Some((user, password)) = creds {
            url_auth = Some(Auth {
                user: Some(user),
                password: Some(password),
                api_key: None,
            });
        }
    }
    match (&config.auth, url_auth) {
        (Some(_), Some(_)) => {
            return Err(BuildError::key(
                "endpoints",
                "holds `user:pass@` and `auth` is set too; keep the credentials in `auth`",
            ));
        }
        (None, Some(a)) => config.auth = Some(a),
        _ => {}
    }
    let index =
        Template::parse(&config.index, &config.time_field).map_err(|e| BuildError::key("index", e.to_string()))?;
    if config.batch_max_events == 0 || config.batch_max_bytes == 0 {
        return Err(BuildError::key("batch_max_events", "batch limits must be positive"));
    }
    let mut client = reqwest::Client::builder().timeout(Duration::from_secs(config.request_timeout_secs));
    if let Some(tls) = &config.tls {
        if let Some(ca) = &tls.ca_file {
            let pem = std::fs::read(ca)
                .map_err(|e| BuildError::key("ca_file", format!("cannot read {}: {e}", ca.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| BuildError::key("ca_file", format!("not PEM certificates: {e}")))?;
            for c in certs {
                client = client.add_root_certificate(c);
            }
        }
        if !tls.verify_certificate {
            tracing::warn!(component = %cx.id, "tls.verify_certificate = false: any server can pose as Elasticsearch and read the documents and credentials.");
        }
        client = client.danger_accept_invalid_certs(!tls.verify_certificate);
    }
    if let Some(a) = &config.auth {
        let basic = a.user.is_some() || a.password.is_some();
        if basic == a.api_key.is_some() || (basic && (a.user.is_none() || a.password.is_none())) {
            return Err(BuildError::key("auth", "set `user` and `password`, or `api_key`"));
        }
        if let Some(plain) = config.endpoints.iter().find(|e| e.0.starts_with("http://")) {
            tracing::warn!(component = %cx.id, endpoint = %plain.0, "Credentials are sent over plain HTTP; anyone on the path can read them. Use https://.");
        }
    }
    let client = client
        .build()
        .map_err(|e| BuildError::key("tls", format!("cannot build the HTTP client: {e}")))?;
    let id = cx.id.clone();
    Ok(Built::sink(Elasticsearch {
        config,
        index,
        client,
        id,
    })
    .with_outputs(vec!["dropped".into()]))
}

struct Elasticsearch {
    config: ElasticsearchConfig,
    index: Template,
    client: reqwest::Client,
    id: String,
}

/// The emitters of a running sink, taken once when it starts.
struct SinkEvents {
    rejected: Emitter<RejectedByElasticsearch>,
    request_failed: Emitter<RequestFailed>,
    bulk_split: Emitter<BulkSplit>,
    item_retried: Emitter<ItemRetried>,
}

impl SinkEvents {
    fn new(metrics: &ComponentMetrics) -> Self {
        SinkEvents {
            rejected: metrics.emitter(),
            request_failed: metrics.emitter(),
            bulk_split: metrics.emitter(),
            item_retried: metrics.emitter(),
        }
    }
}

/// Round-robin over endpoints, skipping one for a while after it failed.
struct Endpoints {
    urls: Vec<String>,
    next: usize,
    down_until: Vec<Option<Instant>>,
}

impl Endpoints {
    fn pick(&mut self) -> (usize, &str) {
        let n = self.urls.len();
        let now = Instant::now();
        let start = self.next;
        let mut chosen = start % n;
        for k in 0..n {
            let i = (start + k) % n;
            if self.down_until[i].is_none_or(|t| t <= now) {
                chosen = i;
                break;
            }
        }
        self.next = chosen + 1;
        (chosen, self.urls[chosen].trim_end_matches('/'))
    }
    fn failed(&mut self, i: usize) {
        self.down_until[i] = Some(Instant::now() + Duration::from_secs(5));
    }
}

/// True when a whole-bulk 400 is Elasticsearch saying it cannot parse a document
/// (then halving finds the one), not something in front of it refusing the request
/// (a proxy's "plain HTTP sent to an HTTPS port": retried as the configuration's).
fn is_parse_error(body: &[u8]) -> bool {
    let answer: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    matches!(
        answer["error"]["type"].as_str(),
        Some(
            "x_content_parse_exception"
                | "parse_exception"
                | "json_parse_exception"
                | "mapper_parsing_exception"
                | "illegal_argument_exception"
                | "action_request_validation_exception"
        )
    )
}

/// A reqwest error with its causes, `a: b: c` (reqwest's own text omits them),
/// without the URL.
fn chain(e: reqwest::Error) -> String {
    error_chain(&e.without_url())
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Why a bulk request as a whole failed.
struct BulkFailed {
    error: ComponentError,
    /// The bulk is too large (413) or holds a document the server cannot parse
    /// (400): send it in halves.
    split: bool,
}

impl BulkFailed {
    fn new(error: ComponentError) -> Self {
        BulkFailed { error, split: false }
    }
}

impl Sink for Elasticsearch {
    fn run(self: Box<Self>, mut cx: SinkContext) -> BoxFuture {
        Box::pin(async move {
            let mut endpoints = Endpoints {
                down_until: vec![None; self.config.endpoints.len()],
                urls: self.config.endpoints.iter().map(|e| e.0.clone()).collect(),
                next: 0,
            };
            self.healthcheck(&mut endpoints).await;
            let rejects = Rejects::new(&cx);
            let ev = SinkEvents::new(&cx.metrics);
            let mut retry = Retry::new("bulk requests");
            loop {
                let (events, closed) = self.collect(&mut cx).await;
                if !events.is_empty() {
                    let dropped = self
                        .deliver(events, &mut endpoints, &cx.metrics, &rejects, &mut retry, &ev)
                        .await;
                    rejects.send(dropped, &ev.rejected, RejectedByElasticsearch).await;
                }
                if closed {
                    return Ok(());
                }
            }
        })
    }
}

impl Elasticsearch {
    /// Waits for input and gathers a batch: up to the event and byte limits, or what
    /// arrived within the batch timeout. True when the input is closed.
    async fn collect(&self, cx: &mut SinkContext) -> (Vec<Event>, bool) {
        let mut events: Vec<Event> = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(self.config.batch_timeout_ms);
        while events.len() < self.config.batch_max_events {
            let next = if events.is_empty() {
                cx.input.recv().await
            } else {
                match tokio::time::timeout_at(deadline, cx.input.recv()).await {
                    Ok(b) => b,
                    Err(_) => break,
                }
            };
            let Some(batch) = next else { return (events, true) };
            events.extend(batch);
        }
        (events, false)
    }

    async fn healthcheck(&self, endpoints: &mut Endpoints) {
        let mut logged = false;
        loop {
            let (_, url) = endpoints.pick();
            let url = url.to_string();
            match self
                .request(self.client.get(&url))
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .map_err(chain)
            {
                Ok(r) => {
                    let body = r.bytes().await.unwrap_or_default();
                    let info: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                    let version = info["version"]["number"].as_str().unwrap_or("unknown").to_string();
                    tracing::info!(component = %self.id, endpoint = %url, version, "Elasticsearch is reachable.");
                    return;
                }
                Err(e) if !self.config.healthcheck => {
                    tracing::warn!(component = %self.id, endpoint = %url, error = %e, "Elasticsearch healthcheck failed; continuing (healthcheck = false).");
                    return;
                }
                Err(e) => {
                    if !logged {
                        tracing::error!(component = %self.id, endpoint = %url, error = %e, "Elasticsearch healthcheck failed; waiting for the cluster before sending (inputs wait).");
                        logged = true;
                    }
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        }
    }

    fn request(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.config.auth {
            Some(Auth { api_key: Some(key), .. }) => req.header("Authorization", format!("ApiKey {}", key.expose())),
            Some(Auth {
                user: Some(u),
                password,
                ..
            }) => req.basic_auth(u, password.as_ref().map(Secret::expose)),
            _ => req,
        }
    }

    /// The document for `event`, or why it cannot be made.
    fn doc(&self, event: &Event) -> Result<Doc, String> {
        let index = self.index.render(event).map_err(|e| format!("index template: {e}"))?;
        let id = match &self.config.id_field {
            Some(f) => match event.get_path(f) {
                Some(v) if !matches!(v, Value::Null) => Some(value_to_string(v)),
                _ => return Err(format!("the event has no `{f}` for id_field")),
            },
            None => None,
        };
        let source = if self.config.mode == Mode::DataStream && event.get("@timestamp").is_none() {
            let mut copy = event.value.clone();
            if let (Value::Object(map), Some(t)) = (&mut copy, event.get_path(&self.config.time_field)) {
                map.insert(KeyString::from("@timestamp"), t.clone());
            }
            serde_json::to_vec(&copy)
        } else {
            serde_json::to_vec(&event.value)
        }
        .map_err(|e| format!("cannot encode the event as JSON: {e}"))?;
        Ok(Doc { index, id, source })
    }

    /// Sends `events` until each is stored or refused; returns the refused ones,
    /// marked with their reason.
    async fn deliver(
        &self,
        events: Vec<Event>,
        endpoints: &mut Endpoints,
        metrics: &ComponentMetrics,
        rejects: &Rejects,
        retry: &mut Retry,
        ev: &SinkEvents,
    ) -> Vec<Event> {
        let action = if self.config.mode == Mode::DataStream {
            Action::Create
        } else {
            self.config.action
        };
        let mut dropped = Vec::new();
        let mut pending: Vec<(Event, Doc)> = Vec::with_capacity(events.len());
        for e in events {
            match self.doc(&e) {
                Ok(d) => pending.push((e, d)),
                Err(reason) => dropped.push(rejects.mark(e, &reason)),
            }
        }
        let mut item_backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        // After a 413 or a 400 for a whole bulk: the most documents per request.
        let mut most = usize::MAX;
        while !pending.is_empty() {
            // One request's worth (byte limit), the rest in later rounds.
            let mut size = 0;
            let take = pending
                .iter()
                .take(most)
                .take_while(|(_, d)| {
                    size += d.source.len() + 64;
                    size <= self.config.batch_max_bytes
                })
                .count()
                .max(1);
            let docs: Vec<&Doc> = pending[..take].iter().map(|(_, d)| d).collect();
            match self.send(&docs, action, endpoints).await {
                Err(BulkFailed { error, split: true }) if take == 1 => {
                    retry.succeeded(metrics);
                    let (event, _) = pending.remove(0);
                    dropped.push(rejects.mark(event, &error.message));
                    most = usize::MAX;
                }
                Err(BulkFailed { error, split: true }) => {
                    retry.succeeded(metrics);
                    ev.bulk_split.emit(BulkSplit {
                        documents: take,
                        error: error.to_string(),
                    });
                    most = take.div_ceil(2);
                }
                Err(BulkFailed { error, split: false }) => retry.wait(&error, &ev.request_failed, metrics).await,
                Ok(results) => {
                    retry.succeeded(metrics);
                    let sent: Vec<(Event, Doc)> = pending.drain(..take).collect();
                    let mut again = Vec::new();
                    let mut done = 0u64;
                    for ((event, doc), outcome) in sent.into_iter().zip(results) {
                        match outcome {
                            Outcome::Done => {
                                done += 1;
                                event.finalize(BatchStatus::Delivered);
                            }
                            Outcome::Retry(_) => again.push((event, doc)),
                            Outcome::Reject(reason) => dropped.push(rejects.mark(event, &reason)),
                        }
                    }
                    metrics.sent(done, 0);
                    if !again.is_empty() {
                        ev.item_retried.emit_n(ItemRetried, again.len() as u64);
                        again.append(&mut pending);
                        pending = again;
                        tokio::time::sleep(item_backoff.next_delay()).await;
                    } else {
                        item_backoff.reset();
                    }
                }
            }
        }
        dropped
    }

    async fn send(&self, docs: &[&Doc], action: Action, endpoints: &mut Endpoints) -> Result<Vec<Outcome>, BulkFailed> {
        let body = bulk::encode(docs, action);
        let (i, url) = endpoints.pick();
        let url = url.to_string();
        let mut req = self
            .request(self.client.post(format!("{url}/_bulk")))
            .header("Content-Type", "application/x-ndjson");
        req = match self.config.compression {
            Compression::None => req.body(body),
            Compression::Gzip => req
                .header("Content-Encoding", "gzip")
                .body(gzip(&body).map_err(|e| BulkFailed::new(ComponentError::internal(format!("gzip: {e}"))))?),
        };
        let response = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                endpoints.failed(i);
                return Err(BulkFailed::new(ComponentError::external(format!(
                    "{url}: {}",
                    chain(e)
                ))));
            }
        };
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| {
            BulkFailed::new(ComponentError::external(format!(
                "{url}: reading the response: {}",
                chain(e)
            )))
        })?;
        if !status.is_success() {
            let message = format!(
                "{url}: HTTP {status}: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
            );
            return Err(match status.as_u16() {
                413 => BulkFailed {
                    error: ComponentError::data(message),
                    split: true,
                },
                400 if is_parse_error(&bytes) => BulkFailed {
                    error: ComponentError::data(message),
                    split: true,
                },
                429 => BulkFailed::new(ComponentError::external(message)),
                _ if status.is_server_error() => {
                    endpoints.failed(i);
                    BulkFailed::new(ComponentError::external(message))
                }
                // 401/403 (credentials refused), 404 (a wrong path in the URL): the
                // configuration's fault, retried until fixed.
                _ => BulkFailed::new(ComponentError::config(message)),
            });
        }
        bulk::outcomes(&bytes, docs, action).map_err(|e| BulkFailed::new(ComponentError::external(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_entry_declares_every_emitter_and_gauge() {
        let def = &super::super::SINK;
        let m = ComponentMetrics::new("es", "sink", "elasticsearch", def.events, def.gauges);
        let ev = SinkEvents::new(&m);
        m.gauge(&crate::retry::RETRYING);
        ev.item_retried.emit_n(ItemRetried, 3);
        assert_eq!(m.snapshot().counters["item_retried"], 3);
    }

    #[test]
    fn debug_of_the_config_shows_no_secret() {
        let toml = r#"
endpoints = ["https://elastic:url-pw-1@es:9200"]
auth = { user = "u", password = "auth-pw-2" }
"#;
        let config: ElasticsearchConfig = parse_options(toml::from_str(toml).unwrap()).unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("url-pw-1") && !shown.contains("auth-pw-2"), "{shown}");
        assert!(shown.contains("es:9200"), "{shown}");
        let api: Auth = toml::from_str("api_key = \"key-3\"").unwrap();
        assert!(!format!("{api:?}").contains("key-3"));
    }

    #[test]
    fn only_elasticsearch_parse_errors_split_a_bulk() {
        assert!(is_parse_error(
            br#"{"error":{"type":"x_content_parse_exception","reason":"x"},"status":400}"#
        ));
        assert!(!is_parse_error(
            b"<html>400 The plain HTTP request was sent to HTTPS port</html>"
        ));
        assert!(!is_parse_error(br#"{"error":{"type":"security_exception"}}"#));
    }
}
