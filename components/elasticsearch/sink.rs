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

use super::bulk::{self, Action, Doc, Outcome};
use crate::ack::BatchStatus;
use crate::component::{BoxFuture, BuildContext, BuildError, Built, Sink, SinkContext, parse_options};
use crate::compression::{Compression, gzip};
use crate::event::{Event, value_to_string};
use crate::metrics::ComponentMetrics;
use crate::template::Template;
use serde::Deserialize;
use std::time::{Duration, Instant};
use vrl::value::{KeyString, ObjectMap, Value};

/// Options of the `elasticsearch` sink.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ElasticsearchConfig {
    /// Base URLs, e.g. `["http://es1:9200", "http://es2:9200"]`; used round-robin,
    /// skipping one that just failed. Required.
    pub endpoints: Vec<String>,
    /// Index (or data stream) template: strftime on the event time, `{{ field }}`
    /// (default `logs-%Y.%m.%d`).
    #[serde(default = "default_index")]
    pub index: String,
    /// `bulk` (default) or `data_stream` (action `create`, `@timestamp` added from
    /// `timestamp` when missing).
    #[serde(default)]
    pub mode: Mode,
    /// `index` (default) or `create`.
    #[serde(default)]
    pub action: Action,
    /// Field whose value becomes the document `_id`, so retries never duplicate.
    pub id_field: Option<String>,
    /// Field holding the event time for the index template (default `timestamp`).
    #[serde(default = "default_time_field")]
    pub time_field: String,
    /// Most documents per bulk request (default 1000).
    #[serde(default = "default_max_events")]
    pub batch_max_events: usize,
    /// Most bytes per bulk request, before compression (default 10485760).
    #[serde(default = "default_max_bytes")]
    pub batch_max_bytes: usize,
    /// Longest wait to fill a batch, in ms (default 1000).
    #[serde(default = "default_batch_timeout_ms")]
    pub batch_timeout_ms: u64,
    /// `none` (default) or `gzip` request bodies.
    #[serde(default)]
    pub compression: Compression,
    /// Timeout of one request, in seconds (default 60).
    #[serde(default = "default_request_timeout_secs")]
    pub request_timeout_secs: u64,
    /// Check the cluster at start and wait until it answers (default true); with
    /// false, a failed check only warns.
    #[serde(default = "yes")]
    pub healthcheck: bool,
    /// Credentials.
    pub auth: Option<Auth>,
    /// TLS settings for `https://` endpoints.
    pub tls: Option<Tls>,
}

/// Where documents go.
#[derive(Debug, Deserialize, Clone, Copy, Default, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Bulk,
    DataStream,
}

/// Basic (`user` + `password`) or API-key (`api_key`, the base64 `id:key`) credentials.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    pub user: Option<String>,
    pub password: Option<String>,
    pub api_key: Option<String>,
}

/// TLS options.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// A PEM file of CA certificates to trust (besides the system's).
    pub ca_file: Option<std::path::PathBuf>,
    /// Verify the server's certificate (default true).
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
    let config: ElasticsearchConfig = parse_options(options)?;
    if config.endpoints.is_empty() {
        return Err(BuildError::key(
            "endpoints",
            "needs at least one URL, e.g. [\"http://127.0.0.1:9200\"]",
        ));
    }
    for e in &config.endpoints {
        reqwest::Url::parse(e).map_err(|err| BuildError::key("endpoints", format!("`{e}` is not a URL: {err}")))?;
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
        client = client.danger_accept_invalid_certs(!tls.verify_certificate);
    }
    if let Some(a) = &config.auth {
        let basic = a.user.is_some() || a.password.is_some();
        if basic == a.api_key.is_some() || (basic && (a.user.is_none() || a.password.is_none())) {
            return Err(BuildError::key("auth", "set `user` and `password`, or `api_key`"));
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

/// An error with its causes, `a: b: c` (reqwest's own text omits them).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Exponential backoff with jitter: 100 ms doubling to 10 s, each wait ×0.5–1.5.
struct Backoff(u32);

impl Backoff {
    fn next(&mut self) -> Duration {
        let base = 100u64.saturating_mul(1 << self.0.min(7)).min(10_000);
        self.0 += 1;
        let jitter = std::collections::hash_map::RandomState::new();
        let r = std::hash::BuildHasher::hash_one(&jitter, self.0) % 1000;
        Duration::from_millis(base / 2 + base * r / 1000)
    }
}

impl Sink for Elasticsearch {
    fn run(self: Box<Self>, mut cx: SinkContext) -> BoxFuture {
        Box::pin(async move {
            let mut endpoints = Endpoints {
                down_until: vec![None; self.config.endpoints.len()],
                urls: self.config.endpoints.clone(),
                next: 0,
            };
            self.healthcheck(&mut endpoints).await;
            let dropped_out = cx.out.named("dropped").cloned().unwrap_or_default();
            loop {
                let (events, closed) = self.collect(&mut cx).await;
                if !events.is_empty() {
                    let dropped = self.deliver(events, &mut endpoints, &cx.metrics).await;
                    if !dropped.is_empty() {
                        if dropped_out.is_empty() {
                            for e in dropped {
                                e.finalize(BatchStatus::Rejected);
                            }
                        } else {
                            dropped_out.send(dropped).await;
                        }
                    }
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
            cx.metrics.received(batch.len() as u64, 0);
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
            {
                Ok(r) => {
                    let body = r.bytes().await.unwrap_or_default();
                    let info: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                    let version = info["version"]["number"].as_str().unwrap_or("unknown").to_string();
                    tracing::info!(component = %self.id, endpoint = %url, version, "Elasticsearch is reachable.");
                    return;
                }
                Err(e) if !self.config.healthcheck => {
                    tracing::warn!(component = %self.id, endpoint = %url, error = %chain(&e), "Elasticsearch healthcheck failed; continuing (healthcheck = false).");
                    return;
                }
                Err(e) => {
                    if !logged {
                        tracing::error!(component = %self.id, endpoint = %url, error = %chain(&e), "Elasticsearch healthcheck failed; waiting for the cluster before sending (inputs wait).");
                        logged = true;
                    }
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        }
    }

    fn request(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.config.auth {
            Some(Auth { api_key: Some(key), .. }) => req.header("Authorization", format!("ApiKey {key}")),
            Some(Auth {
                user: Some(u),
                password,
                ..
            }) => req.basic_auth(u, password.as_deref()),
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

    /// Sends `events` until each is stored or refused; returns the refused ones with
    /// their reason attached.
    async fn deliver(&self, events: Vec<Event>, endpoints: &mut Endpoints, metrics: &ComponentMetrics) -> Vec<Event> {
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
                Err(reason) => dropped.push(self.refuse(e, reason, metrics)),
            }
        }
        let mut backoff = Backoff(0);
        let mut failing = false;
        while !pending.is_empty() {
            // One request's worth (byte limit), the rest in later rounds.
            let mut size = 0;
            let take = pending
                .iter()
                .take_while(|(_, d)| {
                    size += d.source.len() + 64;
                    size <= self.config.batch_max_bytes
                })
                .count()
                .max(1);
            let docs: Vec<&Doc> = pending[..take].iter().map(|(_, d)| d).collect();
            match self.send(&docs, action, endpoints).await {
                Err(e) => {
                    if !failing {
                        tracing::error!(component = %self.id, error = %e, "Bulk request failed; retrying with backoff (inputs wait).");
                        failing = true;
                    }
                    metrics.error("request_failed", 1);
                    tokio::time::sleep(backoff.next()).await;
                }
                Ok(results) => {
                    if failing {
                        tracing::info!(component = %self.id, "Elasticsearch accepts requests again.");
                        failing = false;
                    }
                    let sent: Vec<(Event, Doc)> = pending.drain(..take).collect();
                    let mut retry = Vec::new();
                    let mut done = 0u64;
                    for ((event, doc), outcome) in sent.into_iter().zip(results) {
                        match outcome {
                            Outcome::Done => {
                                done += 1;
                                event.finalize(BatchStatus::Delivered);
                            }
                            Outcome::Retry(_) => retry.push((event, doc)),
                            Outcome::Reject(reason) => dropped.push(self.refuse(event, reason, metrics)),
                        }
                    }
                    metrics.sent(done, 0);
                    if !retry.is_empty() {
                        metrics.error("item_retried", retry.len() as u64);
                        retry.append(&mut pending);
                        pending = retry;
                        tokio::time::sleep(backoff.next()).await;
                    } else {
                        backoff = Backoff(0);
                    }
                }
            }
        }
        dropped
    }

    async fn send(&self, docs: &[&Doc], action: Action, endpoints: &mut Endpoints) -> Result<Vec<Outcome>, String> {
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
                .body(gzip(&body).map_err(|e| e.to_string())?),
        };
        let response = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                endpoints.failed(i);
                return Err(format!("{url}: {}", chain(&e)));
            }
        };
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| format!("{url}: reading the response: {e}"))?;
        if !status.is_success() {
            if status.is_server_error() {
                endpoints.failed(i);
            }
            return Err(format!(
                "{url}: HTTP {status}: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
            ));
        }
        bulk::outcomes(&bytes, docs, action)
    }

    /// Counts a refused event and attaches why, for the `dropped` output.
    fn refuse(&self, mut event: Event, reason: String, metrics: &ComponentMetrics) -> Event {
        metrics.discarded("rejected_by_elasticsearch", 1);
        if metrics.log_due() {
            tracing::warn!(component = %self.id, reason = %reason, "Elasticsearch refused a document; it goes to the dropped output.");
        }
        let mut why = ObjectMap::new();
        why.insert("reason".into(), Value::from(reason));
        why.insert("component".into(), Value::from(self.id.as_str()));
        event.insert("dropped", Value::Object(why));
        event
    }
}
