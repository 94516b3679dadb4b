//! The API's routes, and the bearer-token check on everything but health.

use super::ApiState;
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde_json::json;

pub(super) fn router(state: ApiState) -> Router {
    let guarded = Router::new()
        .route("/metrics", get(metrics))
        .route("/api/v1/topology", get(topology))
        .route("/api/v1/components", get(components))
        .route("/api/v1/components/{id}", get(component))
        .route("/api/v1/tap", get(super::tap::tap))
        .route("/api/v1/archives", get(super::query::list))
        .route("/api/v1/query", post(super::query::query))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/health/live", get(super::health::live))
        .route("/health/ready", get(super::health::ready))
        .route("/health", get(super::health::health))
        .route("/", get(super::console::index))
        .route("/console/app.js", get(super::console::app_js))
        .route("/console/app.css", get(super::console::app_css))
        .merge(guarded)
        .with_state(state)
}

async fn require_token(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    if let Some(token) = &state.config.token {
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !presented.is_some_and(|p| constant_time_eq(p.as_bytes(), token.expose().as_bytes())) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "a bearer token is required (Authorization: Bearer TOKEN, or --token)\n",
            )
                .into_response();
        }
    }
    next.run(request).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn metrics(State(state): State<ApiState>) -> Response {
    let mut text = crate::metrics::prometheus::render(&state.registry);
    text.push_str(
        "# HELP pipe_tap_lost_samples_total Tap samples lost because a subscriber did not keep up.\n\
         # TYPE pipe_tap_lost_samples_total counter\n",
    );
    text.push_str(&format!("pipe_tap_lost_samples_total {}\n", state.taps.lost_total()));
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
        .into_response()
}

async fn topology(State(state): State<ApiState>) -> Json<serde_json::Value> {
    let nodes = state.registry.nodes();
    let edges: Vec<serde_json::Value> = nodes
        .iter()
        .flat_map(|n| n.inputs.iter().map(move |i| json!({"from": i, "to": n.id})))
        .collect();
    Json(json!({"components": *nodes, "edges": edges}))
}

/// One component's counters, rates and health as JSON.
fn component_json(state: &ApiState, c: &crate::metrics::ComponentMetrics) -> serde_json::Value {
    let snapshot = c.snapshot();
    let rates = state.registry.rates(&c.id);
    let health = super::health::component_health(state, &snapshot);
    json!({
        "id": c.id,
        "kind": c.kind,
        "type": c.type_name,
        "counters": snapshot,
        "rates": rates,
        "health": health,
    })
}

async fn components(State(state): State<ApiState>) -> Json<serde_json::Value> {
    let list: Vec<_> = state
        .registry
        .components()
        .iter()
        .map(|c| component_json(&state, c))
        .collect();
    Json(json!({
        "uptime_seconds": state.registry.started.elapsed().as_secs_f64(),
        "components": list,
    }))
}

async fn component(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    match state.registry.component(&id) {
        Some(c) => Json(component_json(&state, &c)).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("no component `{id}`")})),
        )
            .into_response(),
    }
}
