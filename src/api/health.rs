//! Health: `/health/live` says the process runs (a downstream outage never fails it,
//! so an orchestrator does not restart pipe into replaying data), `/health/ready` that
//! the topology started and is not draining (and, with `sink_stall_secs`, that no sink
//! is stalled), and `/health` each component's state with the reason.

use super::ApiState;
use crate::metrics::Snapshot;
use crate::metrics::event::now_secs;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use serde::Serialize;
use serde_json::json;

/// A component's health.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(super) struct Health {
    /// `ok`, `degraded` or `failing`.
    status: &'static str,
    /// Why, when not ok.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// The gauge a component sets to 1 while an operation fails and is retried.
const RETRYING: &str = crate::retry::RETRYING.metric;

pub(super) fn component_health(state: &ApiState, s: &Snapshot) -> Health {
    if let Some(f) = &s.failure {
        return Health {
            status: "failing",
            reason: Some(f.clone()),
        };
    }
    if s.gauges.get(RETRYING).copied().unwrap_or(0) > 0 {
        return Health {
            status: "degraded",
            reason: Some("retrying a failing operation with backoff (see the logs)".into()),
        };
    }
    if let Some(secs) = stalled_for(state, s) {
        return Health {
            status: "degraded",
            reason: Some(format!("wrote nothing for {secs} s with input waiting")),
        };
    }
    Health {
        status: "ok",
        reason: None,
    }
}

/// For a sink with input waiting: how long it has written nothing, when that is at
/// least `sink_stall_secs` (and the check is on).
fn stalled_for(state: &ApiState, s: &Snapshot) -> Option<u64> {
    let limit = state.config.sink_stall_secs;
    if limit == 0 || s.kind != "sink" || s.input_queue_batches == 0 {
        return None;
    }
    let started = now_secs().saturating_sub(state.registry.started.elapsed().as_secs());
    let since = now_secs().saturating_sub(s.last_sent_secs.max(started));
    (since >= limit).then_some(since)
}

pub(super) async fn live() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

pub(super) async fn ready(State(state): State<ApiState>) -> Response {
    let registry = &state.registry;
    let problem = if registry.is_draining() {
        Some("shutting down".to_string())
    } else if !registry.is_running() {
        Some("starting".to_string())
    } else {
        registry.components().iter().find_map(|c| {
            let s = c.snapshot();
            stalled_for(&state, &s).map(|secs| format!("sink `{}` wrote nothing for {secs} s with input waiting", s.id))
        })
    };
    match problem {
        None => Json(json!({"status": "ready"})).into_response(),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not_ready", "reason": reason})),
        )
            .into_response(),
    }
}

pub(super) async fn health(State(state): State<ApiState>) -> Response {
    let mut worst = "ok";
    let mut components = serde_json::Map::new();
    for c in state.registry.components().iter() {
        let h = component_health(&state, &c.snapshot());
        worst = match (worst, h.status) {
            (_, "failing") | ("failing", _) => "failing",
            (_, "degraded") | ("degraded", _) => "degraded",
            _ => "ok",
        };
        components.insert(c.id.clone(), json!(h));
    }
    let status = if state.registry.is_draining() {
        "draining"
    } else {
        worst
    };
    // 200 unless something failed for good: a degraded sink retries by itself.
    let code = if worst == "failing" {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, Json(json!({"status": status, "components": components}))).into_response()
}
