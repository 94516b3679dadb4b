//! A fake Elasticsearch for the tests. No Elasticsearch server can run on these
//! machines, so `FakeEs` is a faithful
//! fake of the parts of its HTTP API the sink uses: `GET /` (cluster info with a
//! version) and `POST /_bulk` (NDJSON action/source pairs, optionally gzip; per-item
//! results with Elasticsearch's statuses and error bodies: 201 created, 409
//! `version_conflict_engine_exception` for `create` on an existing id, 429
//! `es_rejected_execution_exception` injected at random, 400
//! `mapper_parsing_exception` for documents with `"bad_mapping": true`). It stores
//! documents per index and id, and counts every item it was sent. Like Elasticsearch
//! it can refuse a whole bulk: 401 `security_exception` without the credentials it
//! expects (or for a while, as when a password is being rotated), and 413 for a body
//! over `http.max_content_length`.
#![allow(dead_code)]

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct FakeState {
    /// (index, id) → document.
    pub docs: HashMap<(String, String), serde_json::Value>,
    pub items_received: u64,
    pub injected_429: u64,
    pub rejected_400: u64,
    pub gzip_requests: u64,
    /// Items per thousand answered 429.
    pub fail_per_mille: u64,
    pub rng: u64,
    /// Every bulk is answered 401 until then.
    pub unauthorized_until: Option<std::time::Instant>,
    /// The `Authorization` header a bulk must carry, if any.
    pub required_auth: Option<String>,
    /// Bodies longer than this are answered 413 (0: any length).
    pub max_body: usize,
    pub answered_401: u64,
    pub answered_413: u64,
}

#[derive(Clone, Default)]
pub struct FakeEs(pub Arc<Mutex<FakeState>>);

impl FakeEs {
    pub fn with_429_rate(per_mille: u64) -> Self {
        let fake = FakeEs::default();
        let mut s = fake.0.lock().unwrap();
        s.fail_per_mille = per_mille;
        s.rng = 0x9E37_79B9_7F4A_7C15;
        drop(s);
        fake
    }

    /// Serves on `port` until the returned handle is aborted.
    pub async fn serve(&self, port: u16) -> tokio::task::JoinHandle<()> {
        let app = Router::new()
            .route(
                "/",
                get(|| async {
                    axum::Json(serde_json::json!({ "cluster_name": "fake", "version": { "number": "8.15.0" } }))
                }),
            )
            .route("/_bulk", post(bulk))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        })
    }

    /// Serves HTTPS with `crt`/`key` on `port`.
    pub async fn serve_tls(&self, port: u16, crt: &Path, key: &Path) -> tokio::task::JoinHandle<()> {
        let app = Router::new()
            .route(
                "/",
                get(|| async { axum::Json(serde_json::json!({ "version": { "number": "8.15.0" } })) }),
            )
            .route("/_bulk", post(bulk))
            .with_state(self.clone());
        let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(crt, key)
            .await
            .unwrap();
        let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
        let server = axum_server::bind_rustls(addr, config);
        tokio::spawn(async move {
            let _ = server.serve(app.into_make_service()).await;
        })
    }

    pub fn ids(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self
            .0
            .lock()
            .unwrap()
            .docs
            .keys()
            .map(|(_, id)| id.parse().unwrap())
            .collect();
        ids.sort();
        ids
    }
}

pub async fn bulk(State(fake): State<FakeEs>, headers: HeaderMap, body: Bytes) -> axum::response::Response {
    use axum::response::IntoResponse;
    {
        let mut s = fake.0.lock().unwrap();
        let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
        let refused = s.unauthorized_until.is_some_and(|t| std::time::Instant::now() < t)
            || s.required_auth.as_deref().is_some_and(|want| auth != Some(want));
        if refused {
            s.answered_401 += 1;
            let body = serde_json::json!({ "error": { "type": "security_exception", "reason": "unable to authenticate user" }, "status": 401 });
            return (axum::http::StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
        }
        if s.max_body > 0 && body.len() > s.max_body {
            s.answered_413 += 1;
            return (axum::http::StatusCode::PAYLOAD_TOO_LARGE, "").into_response();
        }
    }
    let gzip = headers.get("content-encoding").is_some_and(|v| v == "gzip");
    let mut text = String::new();
    if gzip {
        flate2::read::GzDecoder::new(&body[..])
            .read_to_string(&mut text)
            .unwrap();
    } else {
        text = String::from_utf8(body.to_vec()).unwrap();
    }
    let mut s = fake.0.lock().unwrap();
    s.gzip_requests += gzip as u64;
    let mut items = Vec::new();
    let mut errors = false;
    let mut lines = text.lines().filter(|l| !l.is_empty());
    while let Some(action_line) = lines.next() {
        let action: serde_json::Value = serde_json::from_str(action_line).unwrap();
        let (name, meta) = action.as_object().unwrap().iter().next().unwrap();
        let source: serde_json::Value = serde_json::from_str(lines.next().expect("source line")).unwrap();
        let index = meta["_index"].as_str().unwrap().to_string();
        let id = meta["_id"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("auto-{}", s.docs.len()));
        s.items_received += 1;
        s.rng ^= s.rng << 13;
        s.rng ^= s.rng >> 7;
        s.rng ^= s.rng << 17;
        let (status, error) = if source["bad_mapping"] == true {
            s.rejected_400 += 1;
            (
                400,
                Some(
                    serde_json::json!({ "type": "mapper_parsing_exception", "reason": "failed to parse field [bad_mapping] of type [long]", "caused_by": { "type": "illegal_argument_exception", "reason": "For input string: \"true\"" } }),
                ),
            )
        } else if s.rng % 1000 < s.fail_per_mille {
            s.injected_429 += 1;
            (
                429,
                Some(
                    serde_json::json!({ "type": "es_rejected_execution_exception", "reason": "rejected execution of coordinating operation" }),
                ),
            )
        } else if name == "create" && s.docs.contains_key(&(index.clone(), id.clone())) {
            (
                409,
                Some(
                    serde_json::json!({ "type": "version_conflict_engine_exception", "reason": format!("[{id}]: version conflict, document already exists") }),
                ),
            )
        } else {
            s.docs.insert((index.clone(), id.clone()), source);
            (201, None)
        };
        errors |= error.is_some();
        let mut item = serde_json::json!({ "_index": index, "_id": id, "status": status });
        if let Some(e) = error {
            item["error"] = e;
        }
        items.push(serde_json::json!({ name.as_str(): item }));
    }
    axum::Json(serde_json::json!({ "took": 1, "errors": errors, "items": items })).into_response()
}
