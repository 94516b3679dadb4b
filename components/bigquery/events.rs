//! The internal events of the `bigquery` sink.

use crate::components::object_store::events as archive;
use crate::metrics::common::{refusal, retried_failure};
use crate::metrics::{Counts, EventSpec, GaugeSpec, InternalEvent};

refusal!(
    /// Rows BigQuery refused for good (`row_errors`, an invalid `insertAll` row, a
    /// failed load job).
    RejectedByBigQuery,
    "rejected_by_bigquery",
    "Rows BigQuery refused for good (a row error of an append, an invalid insertAll row, a load job that failed on bad data); they went to the `dropped` output, or were rejected."
);

refusal!(
    /// Events that cannot be a row of their table (a REQUIRED column missing, a field
    /// that is no column, a table name that is not one).
    InvalidRow,
    "invalid_row",
    "Events that cannot be a row of their table: a REQUIRED column missing or unfit, a field that is no column (with `ignore_unknown_values = false`), or a `table` template rendering no valid table name. They went to the `dropped` output, or were rejected."
);

refusal!(
    /// Events for a table that does not exist (and `create_table` is off).
    TableNotFound,
    "table_not_found",
    "Events for a table that does not exist while `create_table` is off; they went to the `dropped` output, or were rejected."
);

retried_failure!(
    /// A request failed as a whole and is retried.
    RequestFailed,
    "request_failed",
    Sending,
    "An append, insertAll request or load job call failed as a whole (connection lost, UNAVAILABLE, 5xx, a timeout); it is retried with backoff while the inputs wait."
);

/// BigQuery refused a whole append as invalid without naming the row; it is sent
/// again in halves until the row at fault is alone.
pub struct AppendSplit {
    pub rows: usize,
    pub error: String,
}

impl InternalEvent for AppendSplit {
    const SPEC: EventSpec = EventSpec {
        name: "append_split",
        counts: Counts::Counter {
            metric: "pipe_bigquery_append_splits_total",
        },
        doc: "BigQuery refused a whole append as invalid without naming a row; it was sent again in halves, down to the one row at fault.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::debug!(component, suppressed, rows = self.rows, error = %self.error, "BigQuery refused a whole append; sending it in halves.");
    }
}

/// A load job finished.
pub struct LoadJobDone {
    pub job_id: String,
    pub files: usize,
    pub table: String,
}

impl InternalEvent for LoadJobDone {
    const SPEC: EventSpec = EventSpec {
        name: "load_job_done",
        counts: Counts::Counter {
            metric: "pipe_bigquery_load_jobs_total",
        },
        doc: "A load job finished without errors; the events of its files were acknowledged.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::info!(component, suppressed, job_id = %self.job_id, files = self.files, table = %self.table, "A BigQuery load job is done.");
    }
}

/// Every event the `bigquery` sink emits, for its registry entry: its own, and in
/// load mode the archive's (staging, uploads, columnar encoding).
pub const EVENTS: &[&EventSpec] = &[
    &RejectedByBigQuery::SPEC,
    &InvalidRow::SPEC,
    &TableNotFound::SPEC,
    &RequestFailed::SPEC,
    &AppendSplit::SPEC,
    &LoadJobDone::SPEC,
    archive::EVENTS[0],
    archive::EVENTS[1],
    archive::EVENTS[2],
    archive::EVENTS[3],
    archive::EVENTS[4],
    archive::EVENTS[5],
    archive::EVENTS[6],
    archive::EVENTS[7],
];

/// Every gauge: the archive's (load mode) and the retrying gauge.
pub const GAUGES: &[&GaugeSpec] = archive::GAUGES;
