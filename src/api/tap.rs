//! `GET /api/v1/tap?outputs_of=GLOB&inputs_of=GLOB&limit=N&interval_ms=M&filter=VRL`:
//! samples of the events crossing the selected outputs, as server-sent events. Each
//! `sample` event is `{"output": …, "event": {…}, "metadata": {…}}`; a `lost` event
//! `{"lost": N}` tells the subscriber how many samples it missed by not keeping up.
//! The filter, a VRL condition, runs here, so `limit` counts matching samples.

use super::ApiState;
use crate::event::Event;
use crate::tap::{Subscription, TapRequest};
use crate::vrl_program::VrlProgram;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::{self, Stream};
use serde::Deserialize;
use serde_json::json;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::time::Duration;
use vrl::value::Value;

/// Samples per output per interval when the request names no limit.
const DEFAULT_LIMIT: usize = 100;
/// The most a request may ask for.
const MAX_LIMIT: usize = 10_000;
/// With a filter, candidates taken per interval for each wanted match.
const FILTER_OVERSAMPLING: usize = 10;

#[derive(Debug, Deserialize)]
pub(super) struct TapParams {
    outputs_of: Option<String>,
    inputs_of: Option<String>,
    limit: Option<usize>,
    interval_ms: Option<u64>,
    filter: Option<String>,
}

fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, axum::Json(json!({"error": message}))).into_response()
}

pub(super) async fn tap(State(state): State<ApiState>, Query(p): Query<TapParams>) -> Response {
    let pattern = |name: &str, v: &Option<String>| match v {
        None => Ok(None),
        Some(s) => glob::Pattern::new(s)
            .map(Some)
            .map_err(|e| format!("{name}: `{s}` is not a glob pattern: {e}")),
    };
    let (outputs_of, inputs_of) = match (pattern("outputs_of", &p.outputs_of), pattern("inputs_of", &p.inputs_of)) {
        (Ok(o), Ok(i)) => (o, i),
        (Err(e), _) | (_, Err(e)) => return bad_request(e),
    };
    if outputs_of.is_none() && inputs_of.is_none() {
        return bad_request("name what to tap with outputs_of=GLOB and/or inputs_of=GLOB".into());
    }
    let filter = match &p.filter {
        None => None,
        Some(src) => match VrlProgram::compile(src) {
            Ok(f) => Some(f),
            Err(d) => return bad_request(format!("filter: the VRL condition does not compile:\n{d}")),
        },
    };
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let request = TapRequest {
        outputs_of,
        inputs_of,
        limit: if filter.is_some() {
            limit * FILTER_OVERSAMPLING
        } else {
            limit
        },
        interval: Duration::from_millis(p.interval_ms.unwrap_or(500).max(10)),
    };
    let Some(sub) = state.taps.subscribe(&request) else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"error": format!("{} taps are open already; close one", crate::tap::MAX_SUBSCRIPTIONS)})),
        )
            .into_response();
    };
    if sub.outputs.is_empty() {
        return bad_request(format!(
            "no output matches (outputs_of={:?}, inputs_of={:?}); see GET /api/v1/topology",
            p.outputs_of, p.inputs_of
        ));
    }
    tracing::info!(outputs = ?sub.outputs, "Tap subscribed.");
    Sse::new(samples(sub, filter))
        .keep_alive(KeepAlive::default())
        .into_response()
}

struct TapStream {
    sub: Subscription,
    filter: Option<VrlProgram>,
    pending: VecDeque<SseEvent>,
    lost_reported: u64,
}

fn samples(sub: Subscription, filter: Option<VrlProgram>) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    let first = SseEvent::default()
        .event("subscribed")
        .data(json!({"outputs": sub.outputs}).to_string());
    let state = TapStream {
        sub,
        filter,
        pending: VecDeque::from([first]),
        lost_reported: 0,
    };
    stream::unfold(state, |mut s| async move {
        loop {
            if let Some(e) = s.pending.pop_front() {
                return Some((Ok(e), s));
            }
            let lost = s.sub.lost.load(Ordering::Relaxed);
            if lost > s.lost_reported {
                s.lost_reported = lost;
                let e = SseEvent::default()
                    .event("lost")
                    .data(json!({"lost": lost}).to_string());
                return Some((Ok(e), s));
            }
            let batch = s.sub.rx.recv().await?;
            for sample in batch {
                if let Some(f) = &mut s.filter {
                    let mut event = Event::new(sample.value.clone());
                    event.metadata = sample.metadata.clone();
                    if !matches!(f.run(&mut event), Ok(Value::Boolean(true))) {
                        continue;
                    }
                }
                let data = json!({"output": &*sample.output, "event": sample.value, "metadata": sample.metadata});
                s.pending
                    .push_back(SseEvent::default().event("sample").data(data.to_string()));
            }
        }
    })
}
