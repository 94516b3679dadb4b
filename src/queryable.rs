//! What a sink whose output can be read back with SQL offers the engine, for the API's
//! `POST /api/v1/query` and the console's SQL view: a request with its limits, and an
//! answer as named, typed columns and JSON rows (numbers as numbers, times as ISO
//! strings). The engine finds such sinks by their registry entry's `query`; it never
//! names them.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, Int64Type, UInt64Type};
use futures::future::BoxFuture;
use serde::Serialize;

/// A registry entry's SQL hook.
#[derive(Debug, Clone, Copy)]
pub struct QueryDef {
    /// Where a sink with these options keeps its data and the table it is queried as;
    /// `Err` says why these options name no readable archive.
    pub describe: fn(&toml::Table) -> Result<ArchiveInfo, String>,
    /// Runs one read-only statement over the data of a sink with `request.options`.
    pub run: fn(QueryRequest) -> BoxFuture<'static, Result<QueryAnswer, QueryFailure>>,
    /// The options meaning "the archive at this URL" (`[api].archive = URL`).
    pub options_for_url: fn(&str) -> toml::Table,
}

/// An archive as the API lists it.
#[derive(Debug, Clone, Serialize)]
pub struct ArchiveInfo {
    /// Its location (a directory, `s3://…`, `gs://…`).
    pub url: String,
    /// The table name SQL reads it as.
    pub table: String,
}

/// One statement to answer.
#[derive(Debug, Clone)]
pub struct QueryRequest {
    /// The sink's options as written in the topology.
    pub options: toml::Table,
    /// The statement.
    pub sql: String,
    /// At most this many rows are returned; more sets `truncated`.
    pub max_rows: usize,
    /// The query engine's memory pool, in bytes; a query that needs more fails.
    pub memory_bytes: usize,
}

/// A column of an answer: its name and its type as Arrow displays it (`Int64`,
/// `Utf8`, `Timestamp(Microsecond, Some("UTC"))`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
}

/// A query's answer.
#[derive(Debug, Clone, Serialize, Default)]
pub struct QueryAnswer {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<serde_json::Value>>,
    /// More rows matched than were returned.
    pub truncated: bool,
}

/// Why a statement has no answer.
#[derive(Debug, thiserror::Error)]
pub enum QueryFailure {
    /// The caller's fault: not one read-only statement, or SQL that does not plan or
    /// run (DataFusion's message, with the line). Do not retry as is.
    #[error("{0}")]
    Refused(String),
    /// The archive could not be read (the store is down or refuses us); may be retried.
    #[error("{0}")]
    Unavailable(String),
}

impl QueryAnswer {
    /// An empty answer with the columns of `schema`.
    pub fn new(schema: &arrow::datatypes::Schema) -> Self {
        QueryAnswer {
            columns: schema
                .fields()
                .iter()
                .map(|f| Column {
                    name: f.name().clone(),
                    data_type: f.data_type().to_string(),
                })
                .collect(),
            rows: Vec::new(),
            truncated: false,
        }
    }

    /// Appends the rows of `batch` up to `max_rows` in all; true when rows were left
    /// out (the answer is then `truncated`).
    pub fn push(&mut self, batch: &RecordBatch, max_rows: usize) -> Result<bool, arrow::error::ArrowError> {
        let room = max_rows.saturating_sub(self.rows.len());
        let take = batch.num_rows().min(room);
        let columns: Vec<Vec<serde_json::Value>> = batch
            .columns()
            .iter()
            .map(|c| json_cells(&c.slice(0, take)))
            .collect::<Result<_, _>>()?;
        for r in 0..take {
            self.rows.push(columns.iter().map(|c| c[r].clone()).collect());
        }
        if take < batch.num_rows() {
            self.truncated = true;
        }
        Ok(self.truncated)
    }
}

/// The cells of one column: numbers and booleans as JSON numbers and booleans, nulls
/// as null, everything else (strings, times, lists) as Arrow displays it.
fn json_cells(array: &dyn Array) -> Result<Vec<serde_json::Value>, arrow::error::ArrowError> {
    use serde_json::Value;
    let t = array.data_type();
    let cast = |to: &DataType| arrow::compute::cast(array, to);
    let cells = if t.is_signed_integer() {
        let a = cast(&DataType::Int64)?;
        a.as_primitive::<Int64Type>()
            .iter()
            .map(|v| v.map_or(Value::Null, Value::from))
            .collect()
    } else if t.is_unsigned_integer() {
        let a = cast(&DataType::UInt64)?;
        a.as_primitive::<UInt64Type>()
            .iter()
            .map(|v| v.map_or(Value::Null, Value::from))
            .collect()
    } else if t.is_floating() || matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..)) {
        let a = cast(&DataType::Float64)?;
        a.as_primitive::<Float64Type>()
            .iter()
            .map(|v| {
                v.and_then(serde_json::Number::from_f64)
                    .map_or(Value::Null, Value::Number)
            })
            .collect()
    } else if *t == DataType::Boolean {
        array
            .as_boolean()
            .iter()
            .map(|v| v.map_or(Value::Null, Value::Bool))
            .collect()
    } else {
        let options = arrow::util::display::FormatOptions::default().with_null("");
        let f = arrow::util::display::ArrayFormatter::try_new(array, &options)?;
        (0..array.len())
            .map(|i| {
                if array.is_null(i) {
                    Value::Null
                } else {
                    Value::String(f.value(i).to_string())
                }
            })
            .collect()
    };
    Ok(cells)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, BooleanArray, Float32Array, StringArray, TimestampMicrosecondArray, UInt8Array};
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        let columns: Vec<(&str, ArrayRef)> = vec![
            ("n", Arc::new(UInt8Array::from(vec![Some(1), None, Some(3)]))),
            ("x", Arc::new(Float32Array::from(vec![0.5, f32::NAN, 2.0]))),
            ("s", Arc::new(StringArray::from(vec![Some("a"), Some(""), None]))),
            ("b", Arc::new(BooleanArray::from(vec![true, false, true]))),
            (
                "t",
                Arc::new(TimestampMicrosecondArray::from(vec![0, 1_000_000, 2_000_000]).with_timezone("UTC")),
            ),
        ];
        RecordBatch::try_from_iter(columns).unwrap()
    }

    #[test]
    fn cells_keep_their_json_types_and_times_are_iso() {
        let b = batch();
        let mut answer = QueryAnswer::new(&b.schema());
        assert!(!answer.push(&b, 10).unwrap());
        assert_eq!(answer.columns[0].data_type, "UInt8");
        assert_eq!(
            answer.rows[0],
            serde_json::json!([1, 0.5, "a", true, "1970-01-01T00:00:00Z"])
                .as_array()
                .unwrap()
                .clone()
        );
        // NaN has no JSON form; an empty string stays a string, a null stays null.
        assert_eq!(answer.rows[1][1], serde_json::Value::Null);
        assert_eq!(answer.rows[1][2], serde_json::json!(""));
        assert_eq!(answer.rows[2][2], serde_json::Value::Null);
        assert_eq!(answer.rows[1][0], serde_json::Value::Null);
    }

    #[test]
    fn rows_beyond_the_limit_are_left_out_and_flagged() {
        let b = batch();
        let mut answer = QueryAnswer::new(&b.schema());
        assert!(!answer.push(&b, 4).unwrap());
        assert!(answer.push(&b, 4).unwrap());
        assert_eq!(answer.rows.len(), 4);
        assert!(answer.truncated);
    }
}
