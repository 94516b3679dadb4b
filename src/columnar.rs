//! Events ↔ Arrow record batches: the one place that converts, for the `sql`
//! transform (and the Parquet archive).
//!
//! Columns come from a declared schema (column → type) or are inferred from the events
//! seen so far, in a stable order (first seen first; the new fields of one event by
//! name) with stable types: a column's
//! type only widens (integer → float), and a field whose type varies becomes a string
//! column for good (counted as `type_conflict`). Nested objects and arrays become JSON
//! strings. A missing field is a null; a value that does not fit its declared column
//! is cast where that is lossless, otherwise stored as null and counted
//! (`cast_failed`); with a rejected column (the archive's `_rejected`) such values are
//! also kept there, as one JSON object per row.
//!
//! Inferred columns are bounded ([`DEFAULT_MAX_COLUMNS`], or
//! [`Columns::with_max_columns`]): once that many exist, the fields of later new
//! names go, per row, into one JSON string column ([`OVERFLOW_COLUMN`]) and are
//! counted (`too_many_columns`), so random keys from a client cannot grow the schema
//! without end.

use crate::error::Fault;
use crate::event::value_to_string;
use crate::metrics::{ComponentMetrics, Counts, EventSpec, InternalEvent, Stage};

/// The internal events of columnar encoding, for the registry entries of components
/// that encode columns (they are emitted in their name).
pub const EVENTS: [&EventSpec; 3] = [&TypeConflict::SPEC, &TooManyColumns::SPEC, &CastFailed::SPEC];

/// A field's type differed between events; its column became a string.
pub struct TypeConflict {
    field: String,
}

impl InternalEvent for TypeConflict {
    const SPEC: EventSpec = EventSpec {
        name: "type_conflict",
        counts: Counts::Error {
            fault: Fault::Data,
            stage: Stage::Processing,
        },
        doc: "A field's type differed between events (say a number, then an object); its column became a string for the rest of the file.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::warn!(component, suppressed, field = %self.field, "A field's type varies between events; its column becomes a string.");
    }
}

/// Rows had fields beyond the column limit; those went to the overflow column.
pub struct TooManyColumns;

impl InternalEvent for TooManyColumns {
    const SPEC: EventSpec = EventSpec {
        name: "too_many_columns",
        counts: Counts::Error {
            fault: Fault::Data,
            stage: Stage::Processing,
        },
        doc: "Rows had more distinct fields than `max_columns`; the extra fields were kept as JSON in the `_overflow` column.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::warn!(
            component,
            suppressed,
            "Events carry more distinct fields than the column limit; the rest go to the _overflow column as JSON."
        );
    }
}

/// Values did not fit their declared column type.
pub struct CastFailed {
    pub values: u64,
}

impl InternalEvent for CastFailed {
    const SPEC: EventSpec = EventSpec {
        name: "cast_failed",
        counts: Counts::Error {
            fault: Fault::Data,
            stage: Stage::Processing,
        },
        doc: "Values did not fit the column type declared in `schema`; they were stored as null.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::warn!(
            component,
            suppressed,
            values = self.values,
            "Values did not fit their declared column type; stored as null."
        );
    }
}
use arrow::array::{
    Array, ArrayRef, BooleanArray, BooleanBuilder, Float64Builder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder, TimestampMillisecondBuilder, TimestampNanosecondBuilder, TimestampSecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use std::sync::Arc;
use vrl::value::{KeyString, ObjectMap, Value};

/// The type of one column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Boolean,
    Int64,
    Float64,
    Utf8,
    /// UTC timestamps in this unit.
    Timestamp(TimeUnit),
}

impl ColumnType {
    /// Parses a declared type: `string`, `int`, `float`, `bool`, `timestamp` (µs), or
    /// `timestamp(s|ms|us|ns)`; SQL spellings (`varchar`, `bigint`, `double`,
    /// `boolean`) too.
    pub fn parse(s: &str) -> Result<ColumnType, String> {
        let t = s.trim().to_ascii_lowercase();
        Ok(match t.as_str() {
            "string" | "utf8" | "varchar" | "text" | "json" => ColumnType::Utf8,
            "int" | "int64" | "bigint" | "integer" | "long" => ColumnType::Int64,
            "float" | "float64" | "double" => ColumnType::Float64,
            "bool" | "boolean" => ColumnType::Boolean,
            "timestamp" | "timestamp(us)" => ColumnType::Timestamp(TimeUnit::Microsecond),
            "timestamp(s)" => ColumnType::Timestamp(TimeUnit::Second),
            "timestamp(ms)" => ColumnType::Timestamp(TimeUnit::Millisecond),
            "timestamp(ns)" => ColumnType::Timestamp(TimeUnit::Nanosecond),
            _ => {
                return Err(format!(
                    "unknown column type `{s}` (use string, int, float, bool, timestamp, timestamp(s|ms|us|ns))"
                ));
            }
        })
    }

    /// The Arrow type.
    pub fn data_type(self) -> DataType {
        match self {
            ColumnType::Boolean => DataType::Boolean,
            ColumnType::Int64 => DataType::Int64,
            ColumnType::Float64 => DataType::Float64,
            ColumnType::Utf8 => DataType::Utf8,
            ColumnType::Timestamp(unit) => DataType::Timestamp(unit, Some("UTC".into())),
        }
    }

    /// The natural column type of a value; `None` for null.
    fn of(value: &Value) -> Option<ColumnType> {
        Some(match value {
            Value::Null => return None,
            Value::Boolean(_) => ColumnType::Boolean,
            Value::Integer(_) => ColumnType::Int64,
            Value::Float(_) => ColumnType::Float64,
            Value::Timestamp(_) => ColumnType::Timestamp(TimeUnit::Microsecond),
            _ => ColumnType::Utf8,
        })
    }
}

/// How many columns an inferred schema grows to by default.
pub const DEFAULT_MAX_COLUMNS: usize = 1000;
/// The JSON column holding the fields that found no column of their own.
pub const OVERFLOW_COLUMN: &str = "_overflow";

/// The columns events are converted to: declared, or inferred and growing.
#[derive(Debug, Clone)]
pub struct Columns {
    columns: IndexMap<String, Column>,
    declared: bool,
    /// Inferred schemas only: the most columns they grow to.
    max_columns: usize,
    /// True once a field found no column: the overflow column exists.
    overflowing: bool,
    /// Declared schemas only: the string column keeping values that did not fit.
    rejected: Option<String>,
    schema: SchemaRef,
    /// The columns' names with their positions, sorted by name: an event's fields
    /// (sorted too) are matched to columns in one walk (see [`walk_fields`]).
    by_name: Vec<(String, usize)>,
}

#[derive(Debug, Clone)]
struct Column {
    /// `None` while only nulls were seen (a nullable string column meanwhile).
    ty: Option<ColumnType>,
}

impl Columns {
    /// Fixed columns, in the order given.
    pub fn declared(columns: &[(String, ColumnType)]) -> Columns {
        let mut c = Columns {
            columns: columns
                .iter()
                .map(|(name, ty)| (name.clone(), Column { ty: Some(*ty) }))
                .collect(),
            declared: true,
            max_columns: usize::MAX,
            overflowing: false,
            rejected: None,
            schema: Arc::new(Schema::empty()),
            by_name: Vec::new(),
        };
        c.rebuild();
        c
    }

    /// Keeps values that do not fit their declared column in the string column
    /// `name`, as a JSON object per row (null when every value fit).
    pub fn with_rejected_column(mut self, name: &str) -> Columns {
        if self.declared && !name.is_empty() {
            self.rejected = Some(name.to_string());
            self.rebuild();
        }
        self
    }

    /// Columns inferred from the events passed to [`Columns::observe`].
    pub fn inferred() -> Columns {
        Columns {
            columns: IndexMap::new(),
            declared: false,
            max_columns: DEFAULT_MAX_COLUMNS,
            overflowing: false,
            rejected: None,
            schema: Arc::new(Schema::empty()),
            by_name: Vec::new(),
        }
    }

    /// Bounds an inferred schema to `max` columns (besides [`OVERFLOW_COLUMN`]).
    pub fn with_max_columns(mut self, max: usize) -> Columns {
        self.max_columns = max;
        self
    }

    /// The current Arrow schema.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The column names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.columns.keys().map(String::as_str).collect()
    }

    /// Widens the inferred columns to hold `events`; true when the schema changed.
    /// Declared columns never change.
    pub fn observe<'a>(&mut self, events: impl IntoIterator<Item = &'a Value>, metrics: &ComponentMetrics) -> bool {
        if self.declared {
            return false;
        }
        let mut changed = false;
        let mut new_fields: Vec<(&KeyString, Option<ColumnType>)> = Vec::new();
        for event in events {
            let Value::Object(map) = event else { continue };
            walk_fields(
                &self.by_name,
                map,
                |index, value| {
                    let Some((key, col)) = self.columns.get_index_mut(index) else {
                        return;
                    };
                    let merged = match (col.ty, ColumnType::of(value)) {
                        (a, None) => a,
                        (None, b) => b,
                        (Some(a), Some(b)) if a == b => Some(a),
                        (Some(ColumnType::Int64), Some(ColumnType::Float64))
                        | (Some(ColumnType::Float64), Some(ColumnType::Int64)) => Some(ColumnType::Float64),
                        (Some(ColumnType::Utf8), Some(_)) => Some(ColumnType::Utf8),
                        (Some(_), Some(_)) => {
                            metrics
                                .emitter::<TypeConflict>()
                                .emit(TypeConflict { field: key.clone() });
                            Some(ColumnType::Utf8)
                        }
                    };
                    if merged != col.ty {
                        col.ty = merged;
                        changed = true;
                    }
                },
                |key, value| new_fields.push((key, ColumnType::of(value))),
            );
            for (key, seen) in new_fields.drain(..) {
                if self.columns.len() < self.max_columns {
                    self.columns.insert(key.to_string(), Column { ty: seen });
                    changed = true;
                } else if !self.overflowing {
                    self.overflowing = true;
                    changed = true;
                    tracing::warn!(component = %metrics.id, max_columns = self.max_columns, field = %key, "The inferred schema reached its column limit; fields of new names go to the `_overflow` JSON column.");
                }
            }
            if self.by_name.len() != self.columns.len() {
                self.index_names();
            }
        }
        if changed {
            self.rebuild();
        }
        changed
    }

    /// Adds an inferred column that no event has had yet (nulls until one has it);
    /// false for declared columns or a name already there.
    pub fn add_null_column(&mut self, name: &str) -> bool {
        if self.declared || self.columns.contains_key(name) || self.columns.len() >= self.max_columns {
            return false;
        }
        self.columns.insert(name.to_string(), Column { ty: None });
        self.rebuild();
        true
    }

    fn index_names(&mut self) {
        self.by_name = self.columns.keys().enumerate().map(|(i, k)| (k.clone(), i)).collect();
        self.by_name.sort_unstable();
    }

    fn rebuild(&mut self) {
        self.index_names();
        let mut fields: Vec<Field> = self
            .columns
            .iter()
            .map(|(name, c)| Field::new(name, c.ty.unwrap_or(ColumnType::Utf8).data_type(), true))
            .collect();
        if self.overflowing {
            fields.push(Field::new(OVERFLOW_COLUMN, DataType::Utf8, true));
        }
        if let Some(r) = &self.rejected {
            fields.push(Field::new(r, DataType::Utf8, true));
        }
        self.schema = Arc::new(Schema::new(fields));
    }

    /// The events as one record batch of the current schema. Values are looked up
    /// by column name at the top level of each event.
    pub fn to_batch<'a>(
        &self,
        events: impl ExactSizeIterator<Item = &'a Value>,
        metrics: &ComponentMetrics,
    ) -> Result<RecordBatch, arrow::error::ArrowError> {
        let n = events.len();
        let width = self.columns.len();
        // Row-major: the value of column `c` in row `r` is `cells[r * width + c]`.
        let mut cells: Vec<Option<&'a Value>> = vec![None; n * width];
        let mut overflow: Vec<ObjectMap> = Vec::new();
        if self.overflowing {
            overflow.resize_with(n, ObjectMap::new);
        }
        for (row, event) in events.enumerate() {
            let Value::Object(map) = event else { continue };
            let cells = &mut cells[row * width..(row + 1) * width];
            walk_fields(
                &self.by_name,
                map,
                |column, value| cells[column] = Some(value),
                |key, value| {
                    if let Some(extra) = overflow.get_mut(row) {
                        extra.insert(key.clone(), value.clone());
                    }
                },
            );
        }
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(width + 2);
        let mut failed = 0u64;
        let mut rejected: Vec<Option<ObjectMap>> = Vec::new();
        let mut failed_rows = Vec::new();
        for (column, (name, col)) in self.columns.iter().enumerate() {
            let values = cells.iter().skip(column).step_by(width.max(1)).copied();
            let ty = col.ty.unwrap_or(ColumnType::Utf8);
            failed_rows.clear();
            arrays.push(build_array(ty, values, n, &mut failed_rows));
            failed += failed_rows.len() as u64;
            if self.rejected.is_some() && !failed_rows.is_empty() {
                rejected.resize(n, None);
                for &row in &failed_rows {
                    if let Some(v) = cells[row * width + column] {
                        rejected[row]
                            .get_or_insert_with(ObjectMap::new)
                            .insert(KeyString::from(name.as_str()), v.clone());
                    }
                }
            }
        }
        if self.overflowing {
            let rows = overflow.iter().filter(|extra| !extra.is_empty()).count() as u64;
            arrays.push(json_objects(
                overflow.iter().map(|extra| Some(extra).filter(|e| !e.is_empty())),
            ));
            if rows > 0 {
                metrics.emitter::<TooManyColumns>().emit_n(TooManyColumns, rows);
            }
        }
        if self.rejected.is_some() {
            rejected.resize(n, None);
            arrays.push(json_objects(rejected.iter().map(Option::as_ref)));
        }
        if failed > 0 {
            metrics
                .emitter::<CastFailed>()
                .emit_n(CastFailed { values: failed }, failed);
        }
        if arrays.is_empty() {
            return RecordBatch::try_new_with_options(
                self.schema.clone(),
                arrays,
                &arrow::array::RecordBatchOptions::new().with_row_count(Some(n)),
            );
        }
        RecordBatch::try_new(self.schema.clone(), arrays)
    }
}

/// Matches the fields of `map` to the columns of `by_name` (both sorted by name) in
/// one walk: `found(position, value)` for a field with a column, `other(key, value)`
/// for one without.
fn walk_fields<'a>(
    by_name: &[(String, usize)],
    map: &'a ObjectMap,
    mut found: impl FnMut(usize, &'a Value),
    mut other: impl FnMut(&'a KeyString, &'a Value),
) {
    let mut next = 0;
    for (key, value) in map {
        while by_name.get(next).is_some_and(|(name, _)| name.as_str() < key.as_str()) {
            next += 1;
        }
        match by_name.get(next) {
            Some((name, position)) if name.as_str() == key.as_str() => {
                found(*position, value);
                next += 1;
            }
            _ => other(key, value),
        }
    }
}

/// A string column of JSON objects (null where there is none).
fn json_objects<'a>(objects: impl Iterator<Item = Option<&'a ObjectMap>>) -> ArrayRef {
    let mut b = StringBuilder::new();
    for object in objects {
        match object {
            Some(m) => b.append_value(serde_json::to_string(m).unwrap_or_default()),
            None => b.append_null(),
        }
    }
    Arc::new(b.finish())
}

fn build_array<'a>(
    ty: ColumnType,
    values: impl Iterator<Item = Option<&'a Value>>,
    n: usize,
    failed_rows: &mut Vec<usize>,
) -> ArrayRef {
    macro_rules! fill {
        ($builder:expr, $convert:expr) => {{
            let mut b = $builder;
            for (row, v) in values.enumerate() {
                match v {
                    None | Some(Value::Null) => b.append_null(),
                    Some(v) => match $convert(v) {
                        Some(x) => b.append_value(x),
                        None => {
                            failed_rows.push(row);
                            b.append_null()
                        }
                    },
                }
            }
            Arc::new(b.finish()) as ArrayRef
        }};
    }
    let utc = || -> Arc<str> { "UTC".into() };
    match ty {
        ColumnType::Boolean => fill!(BooleanBuilder::with_capacity(n), |v: &Value| match v {
            Value::Boolean(b) => Some(*b),
            _ => None,
        }),
        ColumnType::Int64 => fill!(Int64Builder::with_capacity(n), |v: &Value| match v {
            Value::Integer(i) => Some(*i),
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(f.into_inner() as i64),
            _ => None,
        }),
        ColumnType::Float64 => fill!(Float64Builder::with_capacity(n), |v: &Value| match v {
            Value::Float(f) => Some(f.into_inner()),
            Value::Integer(i) if i.abs() < (1 << 53) => Some(*i as f64),
            _ => None,
        }),
        ColumnType::Utf8 => {
            let values: Vec<Option<&Value>> = values.collect();
            let bytes = values
                .iter()
                .map(|v| match v {
                    Some(Value::Bytes(b)) => b.len(),
                    Some(Value::Null) | None => 0,
                    Some(_) => 16,
                })
                .sum();
            let mut b = StringBuilder::with_capacity(n, bytes);
            for v in values {
                match v {
                    None | Some(Value::Null) => b.append_null(),
                    Some(Value::Bytes(bytes)) => match simdutf8::basic::from_utf8(bytes) {
                        Ok(text) => b.append_value(text),
                        Err(_) => b.append_value(String::from_utf8_lossy(bytes)),
                    },
                    Some(v) => b.append_value(value_to_string(v)),
                }
            }
            Arc::new(b.finish())
        }
        ColumnType::Timestamp(unit) => {
            let ts = |v: &Value| crate::template::time_of(v);
            match unit {
                TimeUnit::Second => fill!(TimestampSecondBuilder::with_capacity(n).with_timezone(utc()), |v| ts(v)
                    .map(|t: DateTime<Utc>| t.timestamp())),
                TimeUnit::Millisecond => {
                    fill!(
                        TimestampMillisecondBuilder::with_capacity(n).with_timezone(utc()),
                        |v| ts(v).map(|t: DateTime<Utc>| t.timestamp_millis())
                    )
                }
                TimeUnit::Microsecond => {
                    fill!(
                        TimestampMicrosecondBuilder::with_capacity(n).with_timezone(utc()),
                        |v| ts(v).map(|t: DateTime<Utc>| t.timestamp_micros())
                    )
                }
                TimeUnit::Nanosecond => fill!(TimestampNanosecondBuilder::with_capacity(n).with_timezone(utc()), |v| {
                    ts(v).and_then(|t: DateTime<Utc>| t.timestamp_nanos_opt())
                }),
            }
        }
    }
}

/// The rows of `batch` as event fields (nulls included as null).
pub fn to_events(batch: &RecordBatch) -> Vec<ObjectMap> {
    let schema = batch.schema();
    let mut rows: Vec<ObjectMap> = (0..batch.num_rows()).map(|_| ObjectMap::new()).collect();
    for (i, field) in schema.fields().iter().enumerate() {
        let column = batch.column(i);
        let name = KeyString::from(field.name().as_str());
        for (row, map) in rows.iter_mut().enumerate() {
            map.insert(name.clone(), cell(column.as_ref(), row));
        }
    }
    rows
}

/// One cell as a value.
fn cell(array: &dyn Array, row: usize) -> Value {
    use arrow::array::AsArray;
    use arrow::datatypes::*;
    if array.is_null(row) {
        return Value::Null;
    }
    let int = |i: i64| Value::Integer(i);
    let float = |f: f64| Value::from_f64_or_zero(f);
    let time = |t: Option<DateTime<Utc>>| t.map_or(Value::Null, Value::Timestamp);
    match array.data_type() {
        DataType::Boolean => Value::Boolean(
            array
                .as_any()
                .downcast_ref::<BooleanArray>()
                .is_some_and(|a| a.value(row)),
        ),
        DataType::Int8 => int(array.as_primitive::<Int8Type>().value(row).into()),
        DataType::Int16 => int(array.as_primitive::<Int16Type>().value(row).into()),
        DataType::Int32 => int(array.as_primitive::<Int32Type>().value(row).into()),
        DataType::Int64 => int(array.as_primitive::<Int64Type>().value(row)),
        DataType::UInt8 => int(array.as_primitive::<UInt8Type>().value(row).into()),
        DataType::UInt16 => int(array.as_primitive::<UInt16Type>().value(row).into()),
        DataType::UInt32 => int(array.as_primitive::<UInt32Type>().value(row).into()),
        DataType::UInt64 => int(array.as_primitive::<UInt64Type>().value(row) as i64),
        DataType::Float32 => float(array.as_primitive::<Float32Type>().value(row).into()),
        DataType::Float64 => float(array.as_primitive::<Float64Type>().value(row)),
        DataType::Utf8 => Value::from(array.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => Value::from(array.as_string::<i64>().value(row)),
        DataType::Utf8View => Value::from(array.as_string_view().value(row)),
        DataType::Timestamp(TimeUnit::Second, _) => time(DateTime::from_timestamp(
            array.as_primitive::<TimestampSecondType>().value(row),
            0,
        )),
        DataType::Timestamp(TimeUnit::Millisecond, _) => time(DateTime::from_timestamp_millis(
            array.as_primitive::<TimestampMillisecondType>().value(row),
        )),
        DataType::Timestamp(TimeUnit::Microsecond, _) => time(DateTime::from_timestamp_micros(
            array.as_primitive::<TimestampMicrosecondType>().value(row),
        )),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => time(Some(DateTime::from_timestamp_nanos(
            array.as_primitive::<TimestampNanosecondType>().value(row),
        ))),
        _ => {
            let options = arrow::util::display::FormatOptions::default();
            match arrow::util::display::ArrayFormatter::try_new(array, &options) {
                Ok(f) => Value::from(f.value(row).to_string()),
                Err(_) => Value::Null,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(pairs: &[(&str, Value)]) -> Value {
        Value::Object(pairs.iter().map(|(k, v)| (KeyString::from(*k), v.clone())).collect())
    }

    #[test]
    fn inferred_columns_stop_at_the_limit_and_overflow_into_json() {
        let m = ComponentMetrics::unchecked("t", "sink");
        let mut c = Columns::inferred().with_max_columns(2);
        let a = obj(&[("a", Value::Integer(1)), ("b", Value::Integer(2))]);
        let b = obj(&[
            ("a", Value::Integer(3)),
            ("x1", Value::from("u")),
            ("x2", Value::Integer(9)),
        ]);
        assert!(c.observe([&a, &b], &m));
        assert_eq!(c.names(), ["a", "b"]);
        let batch = c.to_batch([&a, &b].into_iter(), &m).unwrap();
        assert_eq!(batch.schema().field(2).name(), OVERFLOW_COLUMN);
        let extra = batch
            .column(2)
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .unwrap();
        assert!(extra.is_null(0));
        assert_eq!(extra.value(1), r#"{"x1":"u","x2":9}"#);
        assert_eq!(m.snapshot().errors["too_many_columns"], 1);
    }

    #[test]
    fn inferred_columns_keep_order_widen_and_fall_back_to_strings() {
        let m = ComponentMetrics::unchecked("t", "transform");
        let mut c = Columns::inferred();
        let a = obj(&[
            ("n", Value::Integer(1)),
            ("s", Value::from("x")),
            ("nested", obj(&[("a", Value::Integer(1))])),
        ]);
        let b = obj(&[("n", Value::from_f64_or_zero(1.5)), ("late", Value::Null)]);
        assert!(c.observe([&a, &b], &m));
        assert_eq!(
            c.names(),
            ["n", "nested", "s", "late"],
            "first seen first; one event's fields by name"
        );
        assert_eq!(c.schema().field(0).data_type(), &DataType::Float64);
        let conflict = obj(&[("n", Value::from("oops"))]);
        assert!(c.observe([&conflict], &m));
        assert_eq!(c.schema().field(0).data_type(), &DataType::Utf8);
        assert_eq!(m.snapshot().errors["type_conflict"], 1);
        assert!(!c.observe([&a], &m), "a string column stays a string");

        let batch = c.to_batch([&a, &b, &conflict].into_iter(), &m).unwrap();
        let rows = to_events(&batch);
        assert_eq!(rows[0]["n"], Value::from("1"));
        assert_eq!(rows[0]["nested"], Value::from(r#"{"a":1}"#));
        assert_eq!(rows[1]["s"], Value::Null, "a missing field is null");
        assert_eq!(rows[2]["n"], Value::from("oops"));
    }

    #[test]
    fn declared_columns_cast_losslessly_or_count() {
        let m = ComponentMetrics::unchecked("t", "transform");
        let ts: DateTime<Utc> = "2026-11-27T10:00:00.123Z".parse().unwrap();
        let c = Columns::declared(&[
            ("n".into(), ColumnType::parse("bigint").unwrap()),
            ("f".into(), ColumnType::parse("double").unwrap()),
            ("t".into(), ColumnType::parse("timestamp(ms)").unwrap()),
        ])
        .with_rejected_column("_rejected");
        let good = obj(&[
            ("n", Value::from_f64_or_zero(3.0)),
            ("f", Value::Integer(2)),
            ("t", Value::from("2026-11-27T10:00:00.123Z")),
        ]);
        let bad = obj(&[("n", Value::from("x")), ("t", Value::Timestamp(ts))]);
        let batch = c.to_batch([&good, &bad].into_iter(), &m).unwrap();
        let rows = to_events(&batch);
        assert_eq!(rows[0]["n"], Value::Integer(3));
        assert_eq!(rows[0]["f"], Value::from_f64_or_zero(2.0));
        assert_eq!(rows[0]["t"], Value::Timestamp(ts));
        assert_eq!(rows[1]["n"], Value::Null);
        assert_eq!(rows[1]["t"], Value::Timestamp(ts));
        assert_eq!(rows[0]["_rejected"], Value::Null);
        assert_eq!(rows[1]["_rejected"], Value::from(r#"{"n":"x"}"#), "kept, not lost");
        assert_eq!(m.snapshot().errors["cast_failed"], 1);
        assert!(ColumnType::parse("decimal").is_err());
    }
}
