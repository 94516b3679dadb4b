//! Appending one table's rows through the Storage Write API: a task per table that
//! keeps one `AppendRows` call open, up to `max_in_flight` appends on it, and
//! matches the answers to the appends in order.
//!
//! How it keeps the at-least-once promise: an event is acknowledged only when the
//! append holding it is answered with a result (or, on a COMMITTED stream, with
//! ALREADY_EXISTS: that offset holds it already). A lost call, a retryable code
//! (UNAVAILABLE, INTERNAL, ABORTED, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED,
//! UNAUTHENTICATED) or no answer within `request_timeout_secs` reopens the call
//! after a jittered backoff and sends every unanswered append again, in order; the
//! inputs wait meanwhile. A retryable code answered for one append on the
//! `_default` stream sends only that append again, on the same call. On the `_default` stream that may duplicate the appends
//! that had landed unanswered (at-least-once); on a COMMITTED stream the offsets
//! make BigQuery answer ALREADY_EXISTS for those, so retries within a run never
//! duplicate. A COMMITTED stream BigQuery answers NOT_FOUND for (it was lost) is
//! replaced by a new one, and the unanswered appends go there (those that had
//! landed unanswered on the old one are then duplicated). Rows named by
//! `row_errors` go to `ID.dropped` with BigQuery's message
//! and the rest of their append is sent again; an append refused as invalid
//! without row errors is halved until the row at fault is alone. The call is
//! reopened, between appends, before the token it was opened with expires.

use super::events::{AppendSplit, RejectedByBigQuery};
use super::sink::Shared;
use super::storage_v1::append_rows_request::{ProtoData, Rows};
use super::storage_v1::append_rows_response::Response;
use super::storage_v1::{AppendRowsRequest, AppendRowsResponse, ProtoRows, ProtoSchema};
use super::storage_write::{Connection, StorageWrite, classify};
use crate::ack::BatchStatus;
use crate::error::ComponentError;
use crate::event::Event;
use crate::retry::Retry;
use bytes::Bytes;
use prost_types::DescriptorProto;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

/// Rows for one append, and the events they came from (one each, in order).
pub struct Pending {
    pub events: Vec<Event>,
    pub rows: Vec<Bytes>,
    /// The rows' bytes.
    pub bytes: usize,
    /// On a COMMITTED stream, the offset of the first row.
    offset: i64,
}

impl Pending {
    pub fn new(events: Vec<Event>, rows: Vec<Bytes>) -> Pending {
        let bytes = rows.iter().map(Bytes::len).sum();
        Pending {
            events,
            rows,
            bytes,
            offset: 0,
        }
    }

    /// Splits off the rows from `at` on.
    fn split_off(&mut self, at: usize) -> Pending {
        let rest = Pending::new(self.events.split_off(at), self.rows.split_off(at));
        self.bytes -= rest.bytes;
        rest
    }
}

/// The task appending to one table.
pub struct TableAppender {
    /// `project.dataset.table`, for messages.
    pub table: String,
    /// `projects/P/datasets/D/tables/T`.
    pub path: String,
    pub committed: bool,
    pub descriptor: DescriptorProto,
    pub api: StorageWrite,
    pub shared: Arc<Shared>,
}

/// Its state while it runs.
struct Appender {
    cfg: TableAppender,
    /// The write stream: `…/streams/_default`, or the COMMITTED stream created.
    stream: String,
    conn: Option<Connection>,
    /// Appends sent and not answered yet, oldest first.
    in_flight: VecDeque<Pending>,
    /// COMMITTED: the offset after every row BigQuery has confirmed.
    confirmed: i64,
    retry: Retry,
    /// COMMITTED: BigQuery answered NOT_FOUND for the stream (it forgot it, e.g. an
    /// emulator restarted); a new one is created before the appends are sent again.
    stream_gone: bool,
}

impl TableAppender {
    /// Appends what comes on `rx` until it closes and every append is answered.
    pub async fn run(self, mut rx: mpsc::Receiver<Pending>) {
        let max = self.shared.max_in_flight;
        let mut a = Appender {
            stream: format!("{}/streams/_default", self.path),
            cfg: self,
            conn: None,
            in_flight: VecDeque::new(),
            confirmed: 0,
            retry: Retry::new("BigQuery appends"),
            stream_gone: false,
        };
        if a.cfg.committed {
            a.create_stream().await;
        }
        loop {
            a.reopen_if_due();
            let accepting = a.in_flight.len() < max && !a.reopen_due();
            tokio::select! {
                biased;
                answer = a.answer(), if !a.in_flight.is_empty() => a.on_answer(answer).await,
                next = rx.recv(), if accepting => match next {
                    Some(p) => a.push(p).await,
                    None => break,
                },
            }
        }
        while !a.in_flight.is_empty() {
            let answer = a.answer().await;
            a.on_answer(answer).await;
        }
    }
}

/// What came back for the oldest append.
enum Answer {
    Response(AppendRowsResponse),
    Lost(ComponentError),
}

impl Appender {
    /// Creates the COMMITTED stream, retrying until it exists.
    async fn create_stream(&mut self) {
        loop {
            match self.cfg.api.create_committed_stream(&self.cfg.path).await {
                Ok(name) => {
                    tracing::info!(component = %self.cfg.shared.metrics.id, table = %self.cfg.table, stream = %name, "Created a COMMITTED write stream.");
                    self.stream = name;
                    self.confirmed = 0;
                    self.retry.succeeded(&self.cfg.shared.metrics);
                    return;
                }
                Err(e) => {
                    let s = &self.cfg.shared;
                    self.retry.wait(&e, &s.ev.request_failed, &s.metrics).await;
                }
            }
        }
    }

    /// The answer to the oldest append in flight, or why none will come.
    async fn answer(&mut self) -> Answer {
        let Some(conn) = self.conn.as_mut() else {
            return Answer::Lost(ComponentError::external("the AppendRows call is closed".to_string()));
        };
        let timeout = self.cfg.shared.timeout;
        match tokio::time::timeout(timeout, conn.responses.message()).await {
            Ok(Ok(Some(r))) => Answer::Response(r),
            Ok(Ok(None)) => Answer::Lost(ComponentError::external(
                "BigQuery closed the AppendRows call".to_string(),
            )),
            Ok(Err(status)) => {
                self.note_stream_gone(status.code());
                Answer::Lost(classify(&status))
            }
            Err(_) => Answer::Lost(ComponentError::external(format!(
                "BigQuery did not answer an append within {} s",
                timeout.as_secs()
            ))),
        }
    }

    /// True when the call should be reopened: the token it was opened with expires
    /// soon.
    fn reopen_due(&self) -> bool {
        self.conn
            .as_ref()
            .and_then(|c| c.reopen_at)
            .is_some_and(|t| Instant::now() >= t)
    }

    /// Closes the call when it is due and nothing is in flight on it (the next
    /// append opens a new one with a fresh token).
    fn reopen_if_due(&mut self) {
        if self.in_flight.is_empty() && self.reopen_due() {
            tracing::debug!(component = %self.cfg.shared.metrics.id, table = %self.cfg.table, "Reopening the AppendRows call before its token expires.");
            self.conn = None;
        }
    }

    /// Queues `p` and sends it.
    async fn push(&mut self, mut p: Pending) {
        // The call may have idled past its time while the loop waited for `p`.
        self.reopen_if_due();
        p.offset = self.next_offset();
        self.in_flight.push_back(p);
        let last = self.in_flight.len() - 1;
        if let Err(e) = self.transmit(last).await {
            self.recover(e).await;
        }
    }

    /// The offset after every row in flight.
    fn next_offset(&self) -> i64 {
        self.confirmed + self.in_flight.iter().map(|p| p.rows.len() as i64).sum::<i64>()
    }

    /// Sends the append at `index` of `in_flight`, opening the call if needed.
    async fn transmit(&mut self, index: usize) -> Result<(), ComponentError> {
        let p = &self.in_flight[index];
        let request = AppendRowsRequest {
            write_stream: self.stream.clone(),
            offset: self.cfg.committed.then_some(p.offset),
            rows: Some(Rows::ProtoRows(ProtoData {
                // On every append: BigQuery forgets the schema of a refused one.
                writer_schema: Some(ProtoSchema {
                    proto_descriptor: Some(self.cfg.descriptor.clone()),
                }),
                rows: Some(ProtoRows {
                    serialized_rows: p.rows.clone(),
                }),
            })),
            ..Default::default()
        };
        match &self.conn {
            Some(conn) => Connection::send(conn.requests.clone(), request).await,
            None => match self.cfg.api.open(&self.stream, request, self.cfg.shared.timeout).await {
                Ok(conn) => {
                    self.conn = Some(conn);
                    Ok(())
                }
                Err(failed) => {
                    if let Some(code) = failed.code {
                        self.note_stream_gone(code);
                    }
                    Err(failed.error)
                }
            },
        }
    }

    /// The call is lost: waits a backoff, reopens it and sends every append in
    /// flight again, in order, until that works.
    async fn recover(&mut self, mut error: ComponentError) {
        loop {
            self.conn = None;
            let s = self.cfg.shared.clone();
            self.retry.wait(&error, &s.ev.request_failed, &s.metrics).await;
            if std::mem::take(&mut self.stream_gone) {
                tracing::warn!(component = %s.metrics.id, table = %self.cfg.table, stream = %self.stream, "BigQuery no longer knows the COMMITTED write stream; creating another and sending the unanswered appends to it.");
                self.create_stream().await;
            }
            match self.resend().await {
                Ok(()) => return,
                Err(e) => error = e,
            }
        }
    }

    /// Notes a COMMITTED stream BigQuery does not know (any more).
    fn note_stream_gone(&mut self, code: tonic::Code) {
        if self.cfg.committed && code == tonic::Code::NotFound {
            self.stream_gone = true;
        }
    }

    /// Sends every append in flight again on a new call, offsets recomputed from
    /// the confirmed end.
    async fn resend(&mut self) -> Result<(), ComponentError> {
        self.conn = None;
        let mut offset = self.confirmed;
        for p in &mut self.in_flight {
            p.offset = offset;
            offset += p.rows.len() as i64;
        }
        for i in 0..self.in_flight.len() {
            self.transmit(i).await?;
        }
        Ok(())
    }

    async fn on_answer(&mut self, answer: Answer) {
        let response = match answer {
            Answer::Response(r) => r,
            Answer::Lost(e) => return self.recover(e).await,
        };
        let Some(mut p) = self.in_flight.pop_front() else {
            return;
        };
        if !response.row_errors.is_empty() {
            let rest = self.refuse_rows(p, &response).await;
            return self.again(rest).await;
        }
        match response.response {
            Some(Response::AppendResult(_)) => self.delivered(p),
            Some(Response::Error(status)) => {
                let code = tonic::Code::from(status.code);
                match code {
                    tonic::Code::AlreadyExists if self.cfg.committed => self.delivered(p),
                    tonic::Code::InvalidArgument if p.rows.len() > 1 => {
                        self.cfg.shared.ev.append_split.emit(AppendSplit {
                            rows: p.rows.len(),
                            error: status.message.clone(),
                        });
                        let rest = p.split_off(p.rows.len() / 2);
                        self.again(vec![p, rest]).await;
                    }
                    tonic::Code::InvalidArgument => {
                        let reason = format!("BigQuery refused the row: {}", status.message);
                        self.reject(p.events, &reason).await;
                        self.again(Vec::new()).await;
                    }
                    _ => {
                        let e = classify(&tonic::Status::new(code, status.message));
                        if !self.cfg.committed && e.is_retryable() {
                            // The call stays open and the appends behind this one
                            // stand: only this one goes again, after a backoff.
                            let s = self.cfg.shared.clone();
                            self.retry.wait(&e, &s.ev.request_failed, &s.metrics).await;
                            return self.again(vec![p]).await;
                        }
                        self.in_flight.push_front(p);
                        self.note_stream_gone(code);
                        self.recover(e).await;
                    }
                }
            }
            None => {
                self.in_flight.push_front(p);
                let e = ComponentError::external(
                    "BigQuery answered an append with neither a result nor an error".to_string(),
                );
                self.recover(e).await;
            }
        }
    }

    /// Sends `fresh` (what is left of a refused append) again. On a COMMITTED
    /// stream nothing behind the refused append landed (its offsets were ahead), so
    /// `fresh` goes first and everything in flight again on a new call; on the
    /// `_default` stream the appends behind it stand, and `fresh` goes after them.
    async fn again(&mut self, fresh: Vec<Pending>) {
        let result = if self.cfg.committed {
            for p in fresh.into_iter().rev() {
                self.in_flight.push_front(p);
            }
            self.resend().await
        } else {
            let mut sent = Ok(());
            for p in fresh {
                self.in_flight.push_back(p);
                if sent.is_ok() {
                    sent = self.transmit(self.in_flight.len() - 1).await;
                }
            }
            sent
        };
        if let Err(e) = result {
            self.recover(e).await;
        }
    }

    /// Refuses the rows named by `row_errors`; returns the rest of the append.
    async fn refuse_rows(&mut self, p: Pending, response: &AppendRowsResponse) -> Vec<Pending> {
        let mut reasons: Vec<Option<String>> = vec![None; p.rows.len()];
        for e in &response.row_errors {
            if let Some(slot) = usize::try_from(e.index).ok().and_then(|i| reasons.get_mut(i)) {
                *slot = Some(format!("BigQuery refused the row: {}", e.message));
            }
        }
        let (mut keep_events, mut keep_rows) = (Vec::new(), Vec::new());
        for ((event, row), reason) in p.events.into_iter().zip(p.rows).zip(reasons) {
            match reason {
                Some(reason) => self.reject(vec![event], &reason).await,
                None => {
                    keep_events.push(event);
                    keep_rows.push(row);
                }
            }
        }
        if keep_rows.is_empty() {
            return Vec::new();
        }
        vec![Pending::new(keep_events, keep_rows)]
    }

    fn delivered(&mut self, p: Pending) {
        self.retry.succeeded(&self.cfg.shared.metrics);
        self.confirmed += p.rows.len() as i64;
        self.cfg.shared.metrics.sent(p.events.len() as u64, p.bytes as u64);
        for e in p.events {
            e.finalize(BatchStatus::Delivered);
        }
    }

    async fn reject(&mut self, events: Vec<Event>, reason: &str) {
        let s = &self.cfg.shared;
        s.rejects
            .reject(events, reason, &s.ev.rejected, RejectedByBigQuery)
            .await;
    }
}
