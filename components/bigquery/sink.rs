//! The `bigquery` sink's stream mode: batches from the inputs are routed to their
//! table (the `table` template), checked and encoded against its schema, and handed
//! to that table's writer task (Storage Write appends or `insertAll` requests),
//! which acknowledges each event once BigQuery has it. Load mode is in
//! [`super::load`].
//!
//! Events that cannot be rows (see [`super::rows`]) and events for a table that
//! does not exist go to `ID.dropped` with the reason. The schema comes from the
//! topology, else from the table (`tables.get`, once per table); a missing table is
//! created when `create_table` is set, and asked about again after a minute
//! otherwise.

use super::append::{Pending, TableAppender};
use super::config::{Api, Checked, WriteMode};
use super::events::{AppendSplit, InvalidRow, RejectedByBigQuery, RequestFailed, TableNotFound};
use super::insert_all::{InsertAllWriter, Request};
use super::rest::Rest;
use super::rows::RowEncoder;
use super::storage_write::StorageWrite;
use crate::columnar::CastFailed;
use crate::component::{BoxFuture, SinkContext};
use crate::event::Event;
use crate::metrics::{ComponentMetrics, Emitter};
use crate::rejects::Rejects;
use crate::retry::Retry;
use bytes::BytesMut;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// How long a missing table is believed missing before asking again.
const MISSING_TABLE_RECHECK: Duration = Duration::from_secs(60);
/// A table's writer task ends after this long without rows (templated tables).
const IDLE_WRITER: Duration = Duration::from_secs(600);

/// What the writer tasks share.
pub struct Shared {
    pub metrics: Arc<ComponentMetrics>,
    pub rejects: Rejects,
    pub ev: SinkEvents,
    pub max_in_flight: usize,
    /// Longest wait for one answer.
    pub timeout: Duration,
}

/// The emitters of a running sink, taken once when it starts.
pub struct SinkEvents {
    pub rejected: Emitter<RejectedByBigQuery>,
    pub invalid: Emitter<InvalidRow>,
    pub missing: Emitter<TableNotFound>,
    pub request_failed: Emitter<RequestFailed>,
    pub append_split: Emitter<AppendSplit>,
    pub cast_failed: Emitter<CastFailed>,
}

impl SinkEvents {
    pub fn new(metrics: &ComponentMetrics) -> Self {
        SinkEvents {
            rejected: metrics.emitter(),
            invalid: metrics.emitter(),
            missing: metrics.emitter(),
            request_failed: metrics.emitter(),
            append_split: metrics.emitter(),
            cast_failed: metrics.emitter(),
        }
    }
}

/// The sink in stream mode.
pub struct StreamSink {
    pub cfg: Arc<Checked>,
    pub rest: Rest,
    /// The Storage Write client (`api = "storage_write"`).
    pub storage: Option<StorageWrite>,
}

/// What a table resolved to.
enum Resolved {
    Ready(Arc<RowEncoder>),
    Missing { since: Instant, reason: String },
}

/// A table's writer task.
struct Writer {
    tx: WriterTx,
    last_used: Instant,
}

enum WriterTx {
    Append(mpsc::Sender<Pending>),
    InsertAll(mpsc::Sender<Request>),
}

/// The loop's state.
struct Router {
    sink: Arc<StreamSink>,
    shared: Arc<Shared>,
    tables: HashMap<String, Resolved>,
    writers: HashMap<String, Writer>,
    tasks: JoinSet<()>,
    retry: Retry,
}

impl crate::component::Sink for StreamSink {
    fn run(self: Box<Self>, mut cx: SinkContext) -> BoxFuture {
        Box::pin(async move {
            let sink: Arc<StreamSink> = Arc::from(self);
            let shared = Arc::new(Shared {
                metrics: cx.metrics.clone(),
                rejects: Rejects::new(&cx),
                ev: SinkEvents::new(&cx.metrics),
                max_in_flight: sink.cfg.config.max_in_flight,
                timeout: Duration::from_secs(sink.cfg.config.request_timeout_secs),
            });
            let mut r = Router {
                sink: sink.clone(),
                shared,
                tables: HashMap::new(),
                writers: HashMap::new(),
                tasks: JoinSet::new(),
                retry: Retry::new("BigQuery table lookups"),
            };
            super::healthcheck(&sink.cfg, &sink.rest, &cx.metrics).await;
            loop {
                let (events, closed) = collect(&mut cx, &sink.cfg).await;
                if !events.is_empty() {
                    r.route(events).await;
                }
                r.retire_idle();
                if closed {
                    break;
                }
            }
            r.writers.clear();
            while r.tasks.join_next().await.is_some() {}
            Ok(())
        })
    }
}

/// Waits for input and gathers a batch: up to `batch_max_events`, or what arrived
/// within the batch timeout. True when the input is closed.
async fn collect(cx: &mut SinkContext, cfg: &Checked) -> (Vec<Event>, bool) {
    let mut events: Vec<Event> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(cfg.config.batch_timeout_ms);
    while events.len() < cfg.config.batch_max_events {
        let next = if events.is_empty() {
            match tokio::time::timeout(IDLE_WRITER / 10, cx.input.recv()).await {
                Ok(b) => b,
                Err(_) => return (events, false),
            }
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

/// True when `name` can be a BigQuery table id (letters, digits, `_`, `-`, and a
/// `$` partition decorator).
pub fn valid_table_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 1024
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$')
}

impl Router {
    /// Routes a batch to its tables.
    async fn route(&mut self, events: Vec<Event>) {
        let mut by_table: HashMap<String, Vec<Event>> = HashMap::new();
        let mut invalid = Vec::new();
        for event in events {
            match self.sink.cfg.table.render(&event) {
                Ok(t) if valid_table_name(&t) => by_table.entry(t).or_default().push(event),
                Ok(t) => invalid.push((event, format!("`{t}` is not a BigQuery table name"))),
                Err(e) => invalid.push((event, format!("the table template cannot be rendered: {e}"))),
            }
        }
        for (event, reason) in invalid {
            self.refuse(vec![event], &reason).await;
        }
        for (table, events) in by_table {
            self.write(table, events).await;
        }
    }

    async fn refuse(&self, events: Vec<Event>, reason: &str) {
        let s = &self.shared;
        s.rejects.reject(events, reason, &s.ev.invalid, InvalidRow).await;
    }

    /// Encodes `events` for `table` and hands them to its writer.
    async fn write(&mut self, table: String, events: Vec<Event>) {
        let encoder = match self.resolve(&table).await {
            Ok(e) => e,
            Err(reason) => {
                let s = &self.shared;
                s.rejects.reject(events, &reason, &s.ev.missing, TableNotFound).await;
                return;
            }
        };
        let sink = self.sink.clone();
        let cfg = &sink.cfg.config;
        match cfg.api {
            Api::StorageWrite => {
                let mut buf = BytesMut::new();
                let (mut batch_events, mut rows, mut bytes) = (Vec::new(), Vec::new(), 0usize);
                let mut scratch = Vec::new();
                for event in events {
                    scratch.clear();
                    match encoder.encode_proto(&event.value, &mut scratch) {
                        Ok(done) => {
                            self.shared.ev.cast_failed.emit_n(
                                CastFailed {
                                    values: done.cast_failed,
                                },
                                done.cast_failed,
                            );
                            if !rows.is_empty() && bytes + scratch.len() + 16 > cfg.batch_max_bytes {
                                let p = Pending::new(std::mem::take(&mut batch_events), std::mem::take(&mut rows));
                                self.send_append(&table, &encoder, p).await;
                                bytes = 0;
                            }
                            buf.extend_from_slice(&scratch);
                            rows.push(buf.split().freeze());
                            bytes += scratch.len() + 16;
                            batch_events.push(event);
                        }
                        Err(reason) => self.refuse(vec![event], &reason).await,
                    }
                }
                if !rows.is_empty() {
                    self.send_append(&table, &encoder, Pending::new(batch_events, rows))
                        .await;
                }
            }
            Api::InsertAll => {
                let mut request = Request::default();
                for event in events {
                    match encoder.encode_json(&event.value) {
                        Ok((row, done)) => {
                            self.shared.ev.cast_failed.emit_n(
                                CastFailed {
                                    values: done.cast_failed,
                                },
                                done.cast_failed,
                            );
                            let id = cfg
                                .id_field
                                .as_deref()
                                .and_then(|f| event.get_path(f))
                                .map(crate::event::value_to_string);
                            let json = serde_json::json!({"insertId": id, "json": row});
                            let size = json.to_string().len();
                            if !request.rows.is_empty() && request.bytes + size > cfg.batch_max_bytes {
                                self.send_insert(&table, std::mem::take(&mut request)).await;
                            }
                            request.push(event, json, size);
                        }
                        Err(reason) => self.refuse(vec![event], &reason).await,
                    }
                }
                if !request.rows.is_empty() {
                    self.send_insert(&table, request).await;
                }
            }
        }
    }

    /// The encoder for `table`, creating the table or reading its schema if need be;
    /// `Err` with the reason when it does not exist.
    async fn resolve(&mut self, table: &str) -> Result<Arc<RowEncoder>, String> {
        match self.tables.get(table) {
            Some(Resolved::Ready(e)) => return Ok(e.clone()),
            Some(Resolved::Missing { since, reason }) if since.elapsed() < MISSING_TABLE_RECHECK => {
                return Err(reason.clone());
            }
            _ => {}
        }
        let cfg = &self.sink.cfg;
        let dataset = &cfg.config.dataset;
        let found = loop {
            match self.sink.rest.get_table(dataset, table).await {
                Ok(found) => break found,
                Err(e) => {
                    self.retry
                        .wait(&e, &self.shared.ev.request_failed, &self.shared.metrics)
                        .await
                }
            }
        };
        let schema = match (found, &cfg.schema) {
            (Some(_), Some(declared)) => declared.clone(),
            (Some(actual), None) => actual,
            (None, Some(declared)) if cfg.config.create_table => {
                loop {
                    match self.sink.rest.create_table(dataset, table, declared).await {
                        Ok(()) => break,
                        Err(e) => {
                            self.retry
                                .wait(&e, &self.shared.ev.request_failed, &self.shared.metrics)
                                .await
                        }
                    }
                }
                tracing::info!(component = %self.shared.metrics.id, table = %format!("{dataset}.{table}"), "Created the BigQuery table from the declared schema.");
                declared.clone()
            }
            (None, _) => {
                let reason = format!(
                    "table {}.{dataset}.{table} does not exist (set create_table = true and a schema to create it)",
                    cfg.config.project
                );
                self.tables.insert(
                    table.to_string(),
                    Resolved::Missing {
                        since: Instant::now(),
                        reason: reason.clone(),
                    },
                );
                return Err(reason);
            }
        };
        self.retry.succeeded(&self.shared.metrics);
        let encoder = Arc::new(RowEncoder::new(
            schema,
            &cfg.config.rejected_column,
            cfg.config.ignore_unknown_values,
        ));
        self.tables.insert(table.to_string(), Resolved::Ready(encoder.clone()));
        Ok(encoder)
    }

    /// The writer of `table`, started on first use.
    fn writer(&mut self, table: &str, encoder: &RowEncoder) -> &mut Writer {
        if !self.writers.contains_key(table) {
            let cfg = &self.sink.cfg;
            let full = format!("{}.{}.{table}", cfg.config.project, cfg.config.dataset);
            let tx = match (cfg.config.api, &self.sink.storage) {
                (Api::StorageWrite, Some(api)) => {
                    let (tx, rx) = mpsc::channel(1);
                    let task = TableAppender {
                        table: full,
                        path: format!(
                            "projects/{}/datasets/{}/tables/{table}",
                            cfg.config.project, cfg.config.dataset
                        ),
                        committed: cfg.config.write_mode == WriteMode::Committed,
                        descriptor: encoder.descriptor(),
                        api: api.clone(),
                        shared: self.shared.clone(),
                    };
                    self.tasks.spawn(task.run(rx));
                    WriterTx::Append(tx)
                }
                _ => {
                    let (tx, rx) = mpsc::channel(1);
                    let task = InsertAllWriter {
                        table: table.to_string(),
                        rest: self.sink.rest.clone(),
                        cfg: cfg.clone(),
                        shared: self.shared.clone(),
                    };
                    self.tasks.spawn(task.run(rx));
                    WriterTx::InsertAll(tx)
                }
            };
            self.writers.insert(
                table.to_string(),
                Writer {
                    tx,
                    last_used: Instant::now(),
                },
            );
        }
        let w = self.writers.get_mut(table).expect("inserted above");
        w.last_used = Instant::now();
        w
    }

    async fn send_append(&mut self, table: &str, encoder: &RowEncoder, p: Pending) {
        if let WriterTx::Append(tx) = &self.writer(table, encoder).tx
            && let Err(mpsc::error::SendError(p)) = tx.send(p).await
        {
            tracing::error!(component = %self.shared.metrics.id, table, "A BigQuery append task ended early; its events are not acknowledged.");
            drop(p);
        }
    }

    async fn send_insert(&mut self, table: &str, request: Request) {
        let encoder = match self.tables.get(table) {
            Some(Resolved::Ready(e)) => e.clone(),
            _ => return,
        };
        if let WriterTx::InsertAll(tx) = &self.writer(table, &encoder).tx
            && tx.send(request).await.is_err()
        {
            tracing::error!(component = %self.shared.metrics.id, table, "A BigQuery insertAll task ended early; its events are not acknowledged.");
        }
    }

    /// Ends the writers of tables that got no rows for a while.
    fn retire_idle(&mut self) {
        self.writers.retain(|_, w| w.last_used.elapsed() < IDLE_WRITER);
        while self.tasks.try_join_next().is_some() {}
    }
}
