//! SQL over the archives of the running topology, for the console's SQL view:
//! `GET /api/v1/archives` lists what can be queried (every sink whose registry entry
//! has a `query` hook, and `[api].archive`), `POST /api/v1/query` answers one read-only
//! statement. Queries run on their own one-thread runtime, so a heavy one never slows
//! the data path; at most `[api].max_queries` run at once (429 beyond), each within
//! `query_timeout_secs` (then cancelled, 504), a memory pool of `query_memory_mib`, and
//! `max_rows` returned rows.

use super::ApiState;
use crate::config::Node;
use crate::queryable::{ArchiveInfo, QueryDef, QueryFailure, QueryRequest};
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use serde::Deserialize;
use serde_json::json;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The longest statement accepted, in bytes.
const MAX_SQL_BYTES: usize = 64 * 1024;

/// One archive the API can query.
#[derive(Clone)]
pub(crate) struct Archive {
    /// The sink's id, or `api.archive`.
    id: String,
    info: ArchiveInfo,
    options: toml::Table,
    def: QueryDef,
}

/// The archives of `nodes` (their sinks with a `query` hook) and, with `url`, the
/// archive there (read by the first registry entry that can).
pub(crate) fn archives(nodes: &[Node], url: Option<&str>) -> Vec<Archive> {
    let mut found: Vec<Archive> = nodes
        .iter()
        .filter_map(|n| {
            let def = crate::components::find(n.kind, &n.type_name)?.query?;
            match (def.describe)(&n.options) {
                Ok(info) => Some(Archive {
                    id: n.id.clone(),
                    info,
                    options: n.options.clone(),
                    def,
                }),
                Err(e) => {
                    tracing::warn!(component = %n.id, error = %e, "The archive of this sink cannot be queried.");
                    None
                }
            }
        })
        .collect();
    let by_url = crate::components::REGISTRY.iter().find_map(|d| d.query);
    if let (Some(url), Some(def)) = (url, by_url) {
        let options = (def.options_for_url)(url);
        match (def.describe)(&options) {
            Ok(info) => found.push(Archive {
                id: "api.archive".into(),
                info,
                options,
                def,
            }),
            Err(e) => tracing::warn!(url, error = %e, "api.archive cannot be queried."),
        }
    }
    found
}

/// The runtime queries run on: one worker thread beside the topology's.
fn query_runtime() -> Result<&'static tokio::runtime::Runtime, String> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("pipe-query")
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the query runtime: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

pub(super) async fn list(State(state): State<ApiState>) -> Response {
    if state.archives.is_empty() {
        return error(
            StatusCode::NOT_FOUND,
            "no archive to query: the topology has no object_store sink and [api].archive is not set",
        );
    }
    let list: Vec<_> = state
        .archives
        .iter()
        .map(|a| json!({"id": a.id, "url": a.info.url, "table": a.info.table}))
        .collect();
    Json(json!({"archives": list})).into_response()
}

/// The body of `POST /api/v1/query`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct QueryBody {
    sql: String,
    /// The archive's id; default the first.
    archive: Option<String>,
}

pub(super) async fn query(State(state): State<ApiState>, body: Result<Json<QueryBody>, JsonRejection>) -> Response {
    let Json(body) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("the body must be {{\"sql\": …}}: {e}")),
    };
    if body.sql.len() > MAX_SQL_BYTES {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the statement is longer than {MAX_SQL_BYTES} bytes"),
        );
    }
    let archive = match &body.archive {
        None => state.archives.first(),
        Some(id) => state.archives.iter().find(|a| &a.id == id),
    };
    let Some(archive) = archive else {
        return match &body.archive {
            Some(id) => error(StatusCode::NOT_FOUND, format!("no archive `{id}`")),
            None => error(StatusCode::NOT_FOUND, "no archive to query"),
        };
    };
    let config = &state.config;
    let Ok(permit) = state.queries.clone().try_acquire_owned() else {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "1")],
            Json(json!({"error": format!(
                "{} quer{} already running (api.max_queries); try again when it is done",
                config.max_queries,
                if config.max_queries == 1 { "y is" } else { "ies are" }
            )})),
        )
            .into_response();
    };
    let runtime = match query_runtime() {
        Ok(r) => r,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    let request = QueryRequest {
        options: archive.options.clone(),
        sql: body.sql,
        max_rows: config.max_rows,
        memory_bytes: config.query_memory_mib.saturating_mul(1 << 20),
    };
    let run = archive.def.run;
    let started = Instant::now();
    // The permit is held until the query's task ends, cancelled or not.
    let mut task = runtime.spawn(async move {
        let _permit = permit;
        run(request).await
    });
    let timeout = Duration::from_secs(config.query_timeout_secs);
    let outcome = tokio::time::timeout(timeout, &mut task).await;
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let answer = match outcome {
        Err(_) => {
            task.abort();
            tracing::warn!(archive = %archive.id, timeout_secs = config.query_timeout_secs, "A query ran too long and was cancelled.");
            return error(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "the query ran longer than {} s (api.query_timeout_secs) and was cancelled",
                    config.query_timeout_secs
                ),
            );
        }
        Ok(Err(e)) => return error(StatusCode::INTERNAL_SERVER_ERROR, format!("the query failed: {e}")),
        Ok(Ok(Err(QueryFailure::Refused(m)))) => return error(StatusCode::BAD_REQUEST, m),
        Ok(Ok(Err(QueryFailure::Unavailable(m)))) => return error(StatusCode::BAD_GATEWAY, m),
        Ok(Ok(Ok(a))) => a,
    };
    tracing::info!(archive = %archive.id, rows = answer.rows.len(), truncated = answer.truncated, elapsed_ms, "Query answered.");
    Json(json!({
        "columns": answer.columns,
        "rows": answer.rows,
        "truncated": answer.truncated,
        "elapsed_ms": elapsed_ms,
    }))
    .into_response()
}
