//! `api = "insert_all"`: the legacy `tabledata.insertAll`, over HTTPS only, for
//! Logstash parity and sites that allow nothing else. A task per table keeps up to
//! `max_in_flight` requests going.
//!
//! How it keeps the at-least-once promise: a row is acknowledged once a request
//! holding it was answered without an `insertErrors` entry for it. Rows BigQuery
//! refused as invalid go to `ID.dropped` with its reasons; rows it only stopped
//! (because another row of the request was invalid, without `skip_invalid_rows`) or
//! refused for now are sent again; a request that failed as a whole (unreachable,
//! 5xx, 429) is retried with backoff while the inputs wait. `insertId` (from
//! `id_field`) lets BigQuery drop the duplicates of those retries, best-effort.

use super::config::Checked;
use super::events::RejectedByBigQuery;
use super::rest::Rest;
use super::sink::Shared;
use crate::ack::BatchStatus;
use crate::event::Event;
use crate::retry::Retry;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde_json::Value as Json;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Rows for one request and their events (one each, in order).
#[derive(Default)]
pub struct Request {
    pub events: Vec<Event>,
    pub rows: Vec<Json>,
    /// Each row's size as JSON.
    sizes: Vec<usize>,
    pub bytes: usize,
}

impl Request {
    pub fn push(&mut self, event: Event, row: Json, size: usize) {
        self.events.push(event);
        self.rows.push(row);
        self.sizes.push(size);
        self.bytes += size;
    }
}

/// The task inserting into one table.
pub struct InsertAllWriter {
    pub table: String,
    pub rest: Rest,
    pub cfg: Arc<Checked>,
    pub shared: Arc<Shared>,
}

impl InsertAllWriter {
    /// Inserts what comes on `rx` until it closes and every request is done.
    pub async fn run(self, mut rx: mpsc::Receiver<Request>) {
        let me = Arc::new(self);
        let mut in_flight = FuturesUnordered::new();
        loop {
            tokio::select! {
                Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
                next = rx.recv(), if in_flight.len() < me.shared.max_in_flight => match next {
                    Some(r) => in_flight.push(me.clone().deliver(r)),
                    None => break,
                },
            }
        }
        while in_flight.next().await.is_some() {}
    }

    /// Sends `request` until every row is in or refused.
    async fn deliver(self: Arc<Self>, mut request: Request) {
        let s = &self.shared;
        let mut retry = Retry::new("BigQuery insertAll requests");
        while !request.rows.is_empty() {
            let result = self
                .rest
                .insert_all(
                    &self.cfg.config.dataset,
                    &self.table,
                    request.rows.clone(),
                    self.cfg.config.skip_invalid_rows,
                    self.cfg.config.ignore_unknown_values,
                )
                .await;
            let refused = match result {
                Ok(refused) => refused,
                Err(e) => {
                    retry.wait(&e, &s.ev.request_failed, &s.metrics).await;
                    continue;
                }
            };
            retry.succeeded(&s.metrics);
            let mut verdict: Vec<Option<(bool, String)>> = vec![None; request.rows.len()];
            for e in refused {
                if let Some(slot) = verdict.get_mut(e.index) {
                    *slot = Some((e.retry, e.reason));
                }
            }
            let mut again = Request::default();
            let (mut delivered, mut bytes) = (0u64, 0u64);
            let rows = request
                .events
                .drain(..)
                .zip(request.rows.drain(..))
                .zip(request.sizes.drain(..));
            for (((event, row), size), verdict) in rows.zip(verdict) {
                match verdict {
                    None => {
                        delivered += 1;
                        bytes += size as u64;
                        event.finalize(BatchStatus::Delivered);
                    }
                    Some((true, _)) => again.push(event, row, size),
                    Some((false, reason)) => {
                        let reason = format!("BigQuery refused the row: {reason}");
                        s.rejects
                            .reject(vec![event], &reason, &s.ev.rejected, RejectedByBigQuery)
                            .await;
                    }
                }
            }
            s.metrics.sent(delivered, bytes);
            request = again;
        }
    }
}
