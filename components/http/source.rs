//! The `http` source: web and app clients POST events; a Kafka-REST-compatible
//! `POST /topics/{topic}` lets clients written for a Kafka REST proxy send here
//! unchanged.
//!
//! How it keeps the at-least-once promise: with `acknowledgements` on (the default)
//! a request is answered 200 only once every sink its events reach has them durably;
//! otherwise the client gets a 5xx and retries, so an acknowledged request is never
//! lost (a retried one may arrive twice). Under backpressure the server answers 503
//! with `Retry-After` instead of queueing without bound.

use super::decode::{self, BodyError, Decoding};
use crate::ack::{self, BatchNotifier, BatchStatus};
use crate::component::{
    BoxFuture, BuildContext, BuildError, Built, Fanout, Resource, Source, SourceContext, parse_options,
};
use crate::event::Event;
use crate::metrics::ComponentMetrics;
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use vrl::value::{KeyString, Value};

/// Options of the `http` source.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct HttpSourceConfig {
    /// Address to listen on, e.g. `0.0.0.0:8080`. Required.
    pub address: String,
    /// Body format: `auto` (from Content-Type, default), `json`, `ndjson` or `text`.
    #[serde(default)]
    pub decoding: Decoding,
    /// Largest request body, before and after decompression, in bytes (default
    /// 10485760). Larger bodies get 413.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Answer 200 only once the events are delivered by every sink (default true).
    #[serde(default = "yes")]
    pub acknowledgements: bool,
    /// How long a request waits for delivery before getting 503 (default 30).
    #[serde(default = "default_ack_timeout_secs")]
    pub ack_timeout_secs: u64,
    /// How long a request waits for room downstream before getting 503 (default 1000).
    #[serde(default = "default_backpressure_timeout_ms")]
    pub backpressure_timeout_ms: u64,
    /// Field that receives the request path (default `path`; empty to leave it out).
    #[serde(default = "default_path_key")]
    pub path_key: String,
    /// Accepted credentials; without this table, requests need none.
    pub auth: Option<AuthConfig>,
    /// Serve HTTPS with this certificate and key.
    pub tls: Option<TlsConfig>,
}

/// HTTPS settings.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain. Required.
    pub crt_file: std::path::PathBuf,
    /// PEM private key. Required.
    pub key_file: std::path::PathBuf,
}

/// Credentials a request may present.
#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Accepted `Authorization: Bearer TOKEN` tokens.
    #[serde(default)]
    pub bearer_tokens: Vec<String>,
    /// Accepted HTTP basic users: name → password.
    #[serde(default)]
    pub basic: BTreeMap<String, String>,
}

fn default_max_body_bytes() -> usize {
    10 * 1024 * 1024
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
    if let Some(tls) = &config.tls {
        for (key, path) in [("crt_file", &tls.crt_file), ("key_file", &tls.key_file)] {
            std::fs::metadata(path)
                .map_err(|e| BuildError::key(key, format!("cannot read {}: {e}", path.display())))?;
        }
    }
    Ok(Built::source(HttpSource { config, address }).claim(Resource::Port(address.to_string())))
}

struct HttpSource {
    config: HttpSourceConfig,
    address: SocketAddr,
}

struct Shared {
    config: HttpSourceConfig,
    out: Fanout,
    metrics: Arc<ComponentMetrics>,
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
            let shared = Arc::new(Shared {
                config: self.config,
                out: out.default,
                metrics,
            });
            let app = Router::new()
                .route(
                    "/health",
                    get(|| async { axum::Json(serde_json::json!({ "status": "ok" })) }),
                )
                .route("/topics/{topic}", post(rest_produce))
                .fallback(generic)
                .with_state(shared);
            let Some(tls) = tls else {
                let listener = tokio::net::TcpListener::bind(self.address)
                    .await
                    .map_err(|e| format!("cannot listen on {}: {e}", self.address))?;
                tracing::info!(component = %id, address = %self.address, "HTTP source listening.");
                return axum::serve(listener, app)
                    .with_graceful_shutdown(async move { shutdown.wait().await })
                    .await
                    .map_err(|e| format!("HTTP server failed: {e}").into());
            };
            let rustls = axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.crt_file, &tls.key_file)
                .await
                .map_err(|e| format!("cannot load the TLS certificate or key: {e}"))?;
            let handle = axum_server::Handle::new();
            let stopper = handle.clone();
            tokio::spawn(async move {
                shutdown.wait().await;
                stopper.graceful_shutdown(Some(Duration::from_secs(30)));
            });
            tracing::info!(component = %id, address = %self.address, "HTTPS source listening.");
            axum_server::bind_rustls(self.address, rustls)
                .handle(handle)
                .serve(app.into_make_service())
                .await
                .map_err(|e| format!("HTTPS server failed on {}: {e}", self.address).into())
        })
    }
}

/// What kind of endpoint a request came to, which shapes the replies.
#[derive(Clone, Copy, PartialEq)]
enum Endpoint {
    Generic,
    KafkaRest,
}

async fn generic(State(s): State<Arc<Shared>>, req: Request) -> Response {
    if req.method() != Method::POST && req.method() != Method::PUT {
        return reply_error(
            Endpoint::Generic,
            StatusCode::METHOD_NOT_ALLOWED,
            "use POST (or GET /health)".into(),
        );
    }
    ingest(&s, req, None).await
}

async fn rest_produce(State(s): State<Arc<Shared>>, Path(topic): Path<String>, req: Request) -> Response {
    ingest(&s, req, Some(topic)).await
}

async fn ingest(s: &Shared, req: Request, topic: Option<String>) -> Response {
    let endpoint = if topic.is_some() {
        Endpoint::KafkaRest
    } else {
        Endpoint::Generic
    };
    let fail = |status: StatusCode, kind: &str, message: String| {
        s.metrics.error(kind, 1);
        reply_error(endpoint, status, message)
    };
    if let Err(challenge) = authorize(s.config.auth.as_ref(), req.headers()) {
        s.metrics.error("unauthorized", 1);
        let mut r = reply_error(
            endpoint,
            StatusCode::UNAUTHORIZED,
            "missing or wrong credentials".into(),
        );
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        return r;
    }
    let max = s.config.max_body_bytes;
    let (parts, body) = req.into_parts();
    let text_header = |name| {
        parts
            .headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .map(str::to_string)
    };
    let raw = match axum::body::to_bytes(body, max).await {
        Ok(b) => b,
        Err(_) => {
            return fail(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                BodyError::TooLarge(max).to_string(),
            );
        }
    };
    let decoded =
        decode::decompress(&raw, text_header(header::CONTENT_ENCODING).as_deref(), max).and_then(|body| match &topic {
            Some(t) => decode::rest_records(&body, t),
            None => decode::events(&body, s.config.decoding, text_header(header::CONTENT_TYPE).as_deref()),
        });
    let records = match decoded {
        Ok(r) => r,
        Err(e @ BodyError::TooLarge(_)) => return fail(StatusCode::PAYLOAD_TOO_LARGE, "too_large", e.to_string()),
        Err(e @ BodyError::UnsupportedEncoding(_)) => {
            return fail(StatusCode::UNSUPPORTED_MEDIA_TYPE, "bad_request", e.to_string());
        }
        Err(e @ BodyError::Malformed(_)) => return fail(StatusCode::BAD_REQUEST, "bad_request", e.to_string()),
    };
    let count = records.len();
    s.metrics.received(count as u64, raw.len() as u64);
    let now = Value::Timestamp(chrono::Utc::now());
    let path = Value::from(parts.uri.path().to_string());
    let (notifier, ack_rx) = BatchNotifier::new();
    let batch: Vec<Event> = records
        .into_iter()
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
    drop(notifier);
    let wait = Duration::from_millis(s.config.backpressure_timeout_ms);
    match tokio::time::timeout(wait, s.out.send(batch)).await {
        Ok(true) => s.metrics.sent(count as u64, raw.len() as u64),
        Ok(false) => {
            return fail(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "pipe is shutting down".into(),
            );
        }
        Err(_) => {
            let mut r = fail(
                StatusCode::SERVICE_UNAVAILABLE,
                "backpressure",
                "pipe is busy; retry later".into(),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return r;
        }
    }
    if s.config.acknowledgements {
        let timeout = Duration::from_secs(s.config.ack_timeout_secs);
        match tokio::time::timeout(timeout, ack::wait(ack_rx)).await {
            Ok(BatchStatus::Delivered) => {}
            Ok(BatchStatus::Rejected) => {
                return fail(
                    StatusCode::BAD_REQUEST,
                    "rejected",
                    "a sink rejected these events".into(),
                );
            }
            Ok(BatchStatus::Errored) | Err(_) => {
                let mut r = fail(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not_delivered",
                    "not delivered yet; retry".into(),
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return r;
            }
        }
    }
    reply_ok(endpoint, count)
}

fn reply_ok(endpoint: Endpoint, count: usize) -> Response {
    match endpoint {
        Endpoint::Generic => (StatusCode::OK, axum::Json(serde_json::json!({ "events": count }))).into_response(),
        Endpoint::KafkaRest => {
            let offsets: Vec<_> = (0..count)
                .map(|_| serde_json::json!({ "partition": null, "offset": null, "error_code": null, "error": null }))
                .collect();
            let body = serde_json::json!({ "offsets": offsets, "key_schema_id": null, "value_schema_id": null });
            (
                [(header::CONTENT_TYPE, "application/vnd.kafka.v2+json")],
                body.to_string(),
            )
                .into_response()
        }
    }
}

fn reply_error(endpoint: Endpoint, status: StatusCode, message: String) -> Response {
    match endpoint {
        Endpoint::Generic => (status, axum::Json(serde_json::json!({ "error": message }))).into_response(),
        Endpoint::KafkaRest => {
            let body = serde_json::json!({ "error_code": status.as_u16() as u32 * 100 + 1, "message": message });
            (
                status,
                [(header::CONTENT_TYPE, "application/vnd.kafka.v2+json")],
                body.to_string(),
            )
                .into_response()
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
            ok | constant_time_eq(token.trim().as_bytes(), t.as_bytes())
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
            ok | (constant_time_eq(user, u.as_bytes()) & constant_time_eq(pass, p.as_bytes()))
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
            bearer_tokens: vec!["s3cret".into()],
            basic: [("app".to_string(), "pw".to_string())].into_iter().collect(),
        };
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            h
        };
        assert!(authorize(Some(&auth), &with("Bearer s3cret")).is_ok());
        assert!(authorize(Some(&auth), &with("Bearer s3cre")).is_err());
        let basic = base64::engine::general_purpose::STANDARD.encode("app:pw");
        assert!(authorize(Some(&auth), &with(&format!("Basic {basic}"))).is_ok());
        let wrong = base64::engine::general_purpose::STANDARD.encode("app:px");
        assert!(authorize(Some(&auth), &with(&format!("Basic {wrong}"))).is_err());
        assert!(authorize(Some(&auth), &HeaderMap::new()).is_err());
        assert!(authorize(None, &HeaderMap::new()).is_ok());
    }
}
