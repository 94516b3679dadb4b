//! The `sql` transform: a DataFusion query over the stream, per batch or over
//! event-time windows; its result rows become events.
//!
//! How it keeps the at-least-once promise: the result rows of a batch (or a window)
//! carry one acknowledgement handle linked to every input event they were computed
//! from; the sources hear "delivered" only when every result row is delivered. Input
//! events that produce no row (filtered out, or an empty window) count as delivered.
//! Events still in open windows are unacknowledged, so after `kill -9` the sources
//! read them again and the windows are recomputed (a window's count can then be
//! higher than the truth, never lower).

use super::engine::{Engine, check_syntax};
use super::events::{FutureTimestamp, Late, QueryFailed, SqlEvents, WindowEmittedEarly};
use super::window::{Panes, WindowSpec, parse_duration};
use crate::ack::{BatchNotifier, BatchStatus, Finalizers};
use crate::columnar::{ColumnType, Columns, to_events};
use crate::component::{BuildContext, BuildError, Built, Transform, TransformOutput, parse_options};
use crate::event::{Event, EventBatch};
use crate::metrics::ComponentMetrics;
use indexmap::IndexMap;
use serde::Deserialize;
use std::future::Future;
use vrl::value::{KeyString, Value};

/// Options of the `sql` transform.
#[derive(Debug, Deserialize, Clone, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlConfig {
    /// The SQL; the input is the table `input`.
    pub query: String,
    /// Column → type: `string`, `int`, `float`, `bool`, `timestamp` (µs, UTC),
    /// `timestamp(s|ms|us|ns)`. Without it, columns are inferred from the events.
    #[serde(default)]
    pub schema: IndexMap<String, String>,
    /// Static tables for joins: name → a `.csv` file (with a header) or a `.parquet`
    /// file, read once at start.
    #[serde(default)]
    pub tables: IndexMap<String, String>,
    /// Event-time windows; without it the query runs on each batch. Durations like
    /// `500ms`, `30s`, `1m`, `2h`, `1d`.
    pub window: Option<WindowConfig>,
    /// Field holding the event time; events without it use their arrival time.
    #[serde(default = "default_time_field")]
    pub time_field: String,
    /// How far behind the latest event time an event may be and still count in its
    /// window.
    #[serde(default = "default_lateness")]
    pub allowed_lateness: String,
    /// How far ahead of the wall clock an event time may be; a later one is windowed
    /// at the current time (counted `future_timestamp`).
    #[serde(default = "default_max_future_skew")]
    pub max_future_skew: String,
    /// Most events held in open windows (an event in several hopping windows counts
    /// once per window). Beyond it, the oldest window is emitted before its end, so
    /// memory stays bounded.
    #[serde(default = "default_max_buffered_events")]
    pub max_buffered_events: usize,
    /// The same bound in (estimated) bytes.
    #[serde(default = "default_max_buffered_bytes")]
    pub max_buffered_bytes: usize,
}

/// `{ type = "tumbling", size = "1m" }` or `{ type = "hopping", size = "5m", slide = "1m" }`.
#[derive(Debug, Deserialize, Clone, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowConfig {
    /// The kind of window.
    #[serde(rename = "type")]
    pub kind: WindowKind,
    /// How long a window lasts.
    pub size: String,
    /// Hopping: how often a window starts. `size` is at most 1000 × `slide` (each
    /// event is copied into `size / slide` windows).
    pub slide: Option<String>,
}

/// Tumbling or hopping windows.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WindowKind {
    /// Back to back, each event in one window.
    Tumbling,
    /// Overlapping, one starting every `slide`.
    Hopping,
}

fn default_time_field() -> String {
    "timestamp".into()
}
fn default_lateness() -> String {
    "0s".into()
}
fn default_max_future_skew() -> String {
    "5m".into()
}
fn default_max_buffered_events() -> usize {
    100_000
}
fn default_max_buffered_bytes() -> usize {
    64 << 20
}

/// Most windows one event may fall in (hopping `size / slide`): each costs a copy of
/// the event and a loop per event.
const MAX_WINDOWS_PER_EVENT: i64 = 1000;

/// Runs a future to completion from synchronous transform code.
fn block_on<F: Future + Send>(f: F) -> F::Output
where
    F::Output: Send,
{
    use tokio::runtime::{Builder, Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(|| h.block_on(f)),
        _ => std::thread::scope(|s| {
            s.spawn(|| match Builder::new_current_thread().enable_all().build() {
                Ok(rt) => Some(rt.block_on(f)),
                Err(_) => None,
            })
            .join()
            .ok()
            .flatten()
            .expect("a tokio runtime for the sql transform")
        }),
    }
}

/// Builds the `sql` transform.
pub fn build(cx: &BuildContext, options: toml::Value) -> Result<Built, BuildError> {
    let config: SqlConfig = parse_options(options)?;
    check_syntax(&config.query).map_err(|e| BuildError::key("query", e))?;
    let declared = config
        .schema
        .iter()
        .map(|(name, ty)| {
            ColumnType::parse(ty)
                .map(|t| (name.clone(), t))
                .map_err(|e| BuildError::key(&format!("schema.{name}"), e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let columns = if declared.is_empty() {
        Columns::inferred()
    } else {
        Columns::declared(&declared)
    };
    let tables: Vec<(String, String)> = config.tables.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let schema = (!declared.is_empty()).then(|| columns.schema());
    let query = config.query.clone();
    let engine = block_on(async move {
        let mut engine = Engine::new(&query, &tables)
            .await
            .map_err(|e| BuildError::key("tables", e))?;
        if let Some(schema) = schema {
            // With declared columns the query is planned now: mistakes show at
            // validate time.
            engine
                .prepare(schema)
                .await
                .map_err(|e| BuildError::key("query", e.message))?;
        }
        Ok::<_, BuildError>(engine)
    })?;
    let max_future_skew = parse_duration(&config.max_future_skew).map_err(|e| BuildError::key("max_future_skew", e))?;
    let windows = match &config.window {
        None => None,
        Some(w) => {
            let size = parse_duration(&w.size).map_err(|e| BuildError::key("window.size", e))?;
            let slide = match (w.kind, &w.slide) {
                (WindowKind::Tumbling, None) => size,
                (WindowKind::Tumbling, Some(_)) => {
                    return Err(BuildError::key(
                        "window.slide",
                        "a tumbling window has no slide; use type = \"hopping\"",
                    ));
                }
                (WindowKind::Hopping, None) => {
                    return Err(BuildError::key("window.slide", "a hopping window needs a slide"));
                }
                (WindowKind::Hopping, Some(s)) => parse_duration(s).map_err(|e| BuildError::key("window.slide", e))?,
            };
            if size <= 0 || slide <= 0 || slide > size {
                return Err(BuildError::key(
                    "window",
                    "size and slide must be positive, slide at most size",
                ));
            }
            if size / slide > MAX_WINDOWS_PER_EVENT {
                return Err(BuildError::key(
                    "window.slide",
                    format!(
                        "`{}` over a size of `{}` puts every event in {} windows; at most {MAX_WINDOWS_PER_EVENT} (use a longer slide)",
                        w.slide.as_deref().unwrap_or_default(),
                        w.size,
                        size / slide
                    ),
                ));
            }
            let lateness =
                parse_duration(&config.allowed_lateness).map_err(|e| BuildError::key("allowed_lateness", e))?;
            Some(Panes::new(WindowSpec { size, slide }, lateness, max_future_skew))
        }
    };
    let outputs = if windows.is_some() {
        vec!["late".to_string()]
    } else {
        vec![]
    };
    Ok(Built::transform(
        SqlTransform {
            events: SqlEvents::new(&cx.metrics),
            engine,
            columns,
            windows,
            time_field: config.time_field.clone(),
            max_events: config.max_buffered_events,
            max_bytes: config.max_buffered_bytes,
            buffered: (0, 0),
        },
        outputs,
    ))
}

/// The rows of one window (or batch), and the acknowledgements they hold.
#[derive(Default, Debug)]
pub struct Pane {
    rows: Vec<Value>,
    finalizers: Finalizers,
    bytes: usize,
}

struct SqlTransform {
    events: SqlEvents,
    engine: Engine,
    columns: Columns,
    windows: Option<Panes<Pane>>,
    time_field: String,
    max_events: usize,
    max_bytes: usize,
    /// Events and estimated bytes in open windows.
    buffered: (usize, usize),
}

/// The index of output `late`.
const LATE: usize = 0;

impl Transform for SqlTransform {
    fn transform(&mut self, batch: EventBatch, out: &mut TransformOutput, metrics: &ComponentMetrics) {
        if self.windows.is_none() {
            let mut pane = Pane::default();
            for mut e in batch {
                e.take_finalizer(&mut pane.finalizers);
                pane.rows.push(std::mem::replace(&mut e.value, Value::Null));
            }
            self.emit(pane, None, out, metrics);
            return;
        }
        let now = chrono::Utc::now().timestamp_micros();
        let Some(windows) = self.windows.as_mut() else { return };
        for mut event in batch {
            let stamped = event
                .get_path(&self.time_field)
                .and_then(crate::template::time_of)
                .map_or(now, |t| t.timestamp_micros());
            let (t, future) = windows.event_time(stamped, now);
            if future {
                self.events.future_timestamp.emit(FutureTimestamp {
                    time_field: self.time_field.clone(),
                    event_time: chrono::DateTime::from_timestamp_micros(stamped).map(|d| d.to_rfc3339()),
                    max_future_skew_secs: windows.max_future_skew / 1_000_000,
                });
            }
            let panes = windows.assign(t);
            if panes.is_empty() {
                self.events.late.emit(Late);
                out.named[LATE].push(event);
                continue;
            }
            let notifier = event.take_notifier();
            let bytes = estimate_bytes(&event.value);
            let n = panes.len();
            for pane in panes {
                if let Some(nt) = &notifier {
                    pane.finalizers.push(nt.clone());
                }
                pane.rows.push(event.value.clone());
                pane.bytes += bytes;
            }
            self.buffered.0 += n;
            self.buffered.1 += bytes * n;
        }
        let done = self.windows.as_mut().map(|w| w.complete()).unwrap_or_default();
        for (start, pane) in done {
            self.close(start, pane, out, metrics);
        }
        while self.buffered.0 > self.max_events || self.buffered.1 > self.max_bytes {
            let Some((start, pane)) = self.windows.as_mut().and_then(|w| w.pop_oldest()) else {
                break;
            };
            self.events.emitted_early.emit(WindowEmittedEarly {
                max_buffered_events: self.max_events,
                max_buffered_bytes: self.max_bytes,
            });
            self.close(start, pane, out, metrics);
        }
        self.events.buffered_events.set(self.buffered.0 as u64);
    }

    fn flush(&mut self, out: &mut TransformOutput, metrics: &ComponentMetrics) {
        while let Some((start, pane)) = self.windows.as_mut().and_then(|w| w.pop_oldest()) {
            self.close(start, pane, out, metrics);
        }
        self.events.buffered_events.set(self.buffered.0 as u64);
    }
}

impl SqlTransform {
    fn close(&mut self, start: i64, pane: Pane, out: &mut TransformOutput, metrics: &ComponentMetrics) {
        self.buffered.0 -= pane.rows.len();
        self.buffered.1 -= pane.bytes;
        let size = self.windows.as_ref().map_or(0, |w| w.spec.size);
        self.emit(pane, Some((start, start + size)), out, metrics);
    }

    /// Runs the query over a pane's rows and emits the result rows, linked to the
    /// pane's acknowledgements.
    fn emit(
        &mut self,
        mut pane: Pane,
        window: Option<(i64, i64)>,
        out: &mut TransformOutput,
        metrics: &ComponentMetrics,
    ) {
        let rows = match self.query(&pane.rows, metrics) {
            Ok(rows) => rows,
            Err(error) => {
                self.events.query_failed.emit(QueryFailed { error });
                pane.finalizers.finalize(BatchStatus::Rejected);
                return;
            }
        };
        if rows.is_empty() {
            pane.finalizers.finalize(BatchStatus::Delivered);
            return;
        }
        let notifier = BatchNotifier::linked(pane.finalizers);
        for mut row in rows {
            if let Some((start, end)) = window {
                let time = |us| chrono::DateTime::from_timestamp_micros(us).map_or(Value::Null, Value::Timestamp);
                row.insert(KeyString::from("window_start"), time(start));
                row.insert(KeyString::from("window_end"), time(end));
            }
            out.default.push(Event::from_map(row).with_notifier(&notifier));
        }
    }

    fn query(&mut self, rows: &[Value], metrics: &ComponentMetrics) -> Result<Vec<vrl::value::ObjectMap>, String> {
        self.columns.observe(rows, metrics);
        // With inferred columns, a column the query names that no event has had yet
        // is a column of nulls, as it would be once some event has it.
        loop {
            let schema = self.columns.schema();
            match block_on(self.engine.prepare(schema)) {
                Ok(()) => break,
                Err(e) => match e.missing_column {
                    Some(name) if self.columns.add_null_column(&name) => continue,
                    _ => return Err(e.message),
                },
            }
        }
        let batch = self.columns.to_batch(rows.iter(), metrics).map_err(|e| e.to_string())?;
        let results = block_on(self.engine.run(batch))?;
        Ok(results.iter().flat_map(to_events).collect())
    }
}

/// A rough size of a value in memory, for `max_buffered_bytes`.
fn estimate_bytes(value: &Value) -> usize {
    match value {
        Value::Bytes(b) => 24 + b.len(),
        Value::Object(m) => 48 + m.iter().map(|(k, v)| k.len() + estimate_bytes(v)).sum::<usize>(),
        Value::Array(a) => 24 + a.iter().map(estimate_bytes).sum::<usize>(),
        _ => 16,
    }
}
