//! Events → BigQuery rows, checked against the table's schema: as protocol buffer
//! messages for the Storage Write API (the message descriptor is built from the
//! schema at run time, see [`descriptor`]) or as JSON objects for `insertAll`.
//!
//! Casts are the archive's: lossless only (an integral float into INTEGER, an integer
//! below 2^53 into FLOAT, any value into STRING as text or JSON, RFC 3339 strings into
//! TIMESTAMP). A value that does not fit its column becomes null and is kept, with
//! the others of its row, as a JSON object in `rejected_column` when the table has
//! that column (counted `cast_failed` either way). A row that cannot be written at
//! all (a REQUIRED column missing or unfit, a field that is no column while
//! `ignore_unknown_values` is off, an event that is not an object) is refused with
//! the reason.

use super::schema::{Field, FieldType, Mode, TableSchema};
use crate::event::value_to_string;
use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, Utc};
use prost::encoding::{WireType, encode_key, encode_varint};
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FieldDescriptorProto};
use std::borrow::Cow;
use vrl::value::{KeyString, ObjectMap, Value};

/// What one row became.
#[derive(Debug)]
pub struct Encoded {
    /// Values that did not fit their column (nulls now).
    pub cast_failed: u64,
}

/// The name of the row message in the descriptor.
const ROW_MESSAGE: &str = "PipeRow";

/// Converts events to rows of one table.
#[derive(Debug, Clone)]
pub struct RowEncoder {
    schema: TableSchema,
    /// The index in `schema.fields` of the column that keeps unfit values.
    rejected: Option<usize>,
    ignore_unknown: bool,
}

/// A value converted to its column's type.
enum Cell<'a> {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(Cow<'a, str>),
    Bytes(&'a [u8]),
    /// TIMESTAMP, microseconds since the epoch.
    Micros(i64),
    /// DATE, days since the epoch.
    Days(i32),
    Record(&'a ObjectMap),
}

/// How a row is written out.
trait RowWriter {
    fn cell(&mut self, number: u32, field: &Field, cell: Cell<'_>, encoder: &RowEncoder) -> Result<(), String>;
}

impl RowEncoder {
    /// An encoder for `schema`; `rejected_column` is used when the table has it as a
    /// STRING or JSON column.
    pub fn new(schema: TableSchema, rejected_column: &str, ignore_unknown: bool) -> RowEncoder {
        let rejected = schema.fields.iter().position(|f| {
            !rejected_column.is_empty()
                && f.name == rejected_column
                && matches!(f.ty, FieldType::String | FieldType::Json)
                && f.mode != Mode::Repeated
        });
        RowEncoder {
            schema,
            rejected,
            ignore_unknown,
        }
    }

    pub fn schema(&self) -> &TableSchema {
        &self.schema
    }

    /// The protocol buffer descriptor of a row: one field per column, numbered from
    /// 1 in schema order; RECORD columns as nested messages.
    pub fn descriptor(&self) -> DescriptorProto {
        descriptor(ROW_MESSAGE, &self.schema.fields)
    }

    /// Appends `value` as one serialized row message to `out`.
    pub fn encode_proto(&self, value: &Value, out: &mut Vec<u8>) -> Result<Encoded, String> {
        let mut w = ProtoWriter { out };
        self.row(value, &mut w)
    }

    /// `value` as an `insertAll` JSON row.
    pub fn encode_json(&self, value: &Value) -> Result<(serde_json::Map<String, serde_json::Value>, Encoded), String> {
        let mut w = JsonWriter {
            row: serde_json::Map::new(),
        };
        let encoded = self.row(value, &mut w)?;
        Ok((w.row, encoded))
    }

    fn row(&self, value: &Value, w: &mut dyn RowWriter) -> Result<Encoded, String> {
        let Value::Object(map) = value else {
            return Err("the event is not an object of fields".into());
        };
        let mut rejected: Option<ObjectMap> = None;
        let cast_failed = self.fields(&self.schema.fields, map, w, &mut rejected, "")?;
        if let (Some(values), Some(i)) = (rejected, self.rejected) {
            let text = serde_json::to_string(&values).unwrap_or_default();
            w.cell(i as u32 + 1, &self.schema.fields[i], Cell::Text(text.into()), self)?;
        }
        Ok(Encoded { cast_failed })
    }

    /// Writes the fields of `map` for `fields` (a row, or a RECORD at `path`).
    fn fields(
        &self,
        fields: &[Field],
        map: &ObjectMap,
        w: &mut dyn RowWriter,
        rejected: &mut Option<ObjectMap>,
        path: &str,
    ) -> Result<u64, String> {
        let top = path.is_empty();
        if !self.ignore_unknown
            && let Some((key, _)) = map.iter().find(|(k, _)| !fields.iter().any(|f| f.name == k.as_str()))
        {
            return Err(format!("field `{path}{key}` is not a column of the table"));
        }
        let mut failed = 0;
        for (i, field) in fields.iter().enumerate() {
            if top && self.rejected == Some(i) {
                continue;
            }
            let number = i as u32 + 1;
            let value = map.get(field.name.as_str()).filter(|v| !matches!(v, Value::Null));
            let Some(value) = value else {
                if field.mode == Mode::Required {
                    return Err(format!("REQUIRED column `{path}{}` is missing", field.name));
                }
                continue;
            };
            if field.mode == Mode::Repeated {
                let items: &[Value] = match value {
                    Value::Array(items) => items,
                    single => std::slice::from_ref(single),
                };
                for item in items.iter().filter(|v| !matches!(v, Value::Null)) {
                    match self.cell(field, item) {
                        Some(cell) => w.cell(number, field, cell, self)?,
                        None => failed += 1,
                    }
                }
                continue;
            }
            match self.cell(field, value) {
                Some(cell) => w.cell(number, field, cell, self)?,
                None if field.mode == Mode::Required => {
                    return Err(format!(
                        "REQUIRED column `{path}{}` is {} and holds {}",
                        field.name,
                        field.ty.name(),
                        kind_of(value)
                    ));
                }
                None => {
                    failed += 1;
                    if top {
                        rejected
                            .get_or_insert_with(ObjectMap::new)
                            .insert(KeyString::from(field.name.as_str()), value.clone());
                    }
                }
            }
        }
        Ok(failed)
    }

    /// `value` converted to `field`'s type; `None` when it does not fit.
    fn cell<'a>(&self, field: &Field, value: &'a Value) -> Option<Cell<'a>> {
        match (field.ty, value) {
            (FieldType::Bool, Value::Boolean(b)) => Some(Cell::Bool(*b)),
            (FieldType::Int64, Value::Integer(i)) => Some(Cell::Int(*i)),
            (FieldType::Int64, Value::Float(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
                Some(Cell::Int(f.into_inner() as i64))
            }
            (FieldType::Float64, Value::Float(f)) => Some(Cell::Float(f.into_inner())),
            (FieldType::Float64, Value::Integer(i)) if i.abs() < (1 << 53) => Some(Cell::Float(*i as f64)),
            (FieldType::Timestamp, v) => crate::template::time_of(v).map(|t| Cell::Micros(t.timestamp_micros())),
            (FieldType::Date, v) => date_of(v).map(Cell::Days),
            (FieldType::Bytes, Value::Bytes(b)) => Some(Cell::Bytes(b)),
            (FieldType::Json, v) => Some(Cell::Text(serde_json::to_string(v).unwrap_or_default().into())),
            (FieldType::Record, Value::Object(m)) => Some(Cell::Record(m)),
            (FieldType::Record, _) => None,
            (
                FieldType::String
                | FieldType::Datetime
                | FieldType::Time
                | FieldType::Numeric
                | FieldType::BigNumeric
                | FieldType::Geography,
                v,
            ) => Some(Cell::Text(match v {
                Value::Bytes(b) => String::from_utf8_lossy(b),
                other => Cow::Owned(value_to_string(other)),
            })),
            _ => None,
        }
    }
}

/// What kind of value `v` is, for messages.
fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Bytes(_) | Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Timestamp(_) => "a timestamp",
        Value::Object(_) => "an object",
        Value::Array(_) => "an array",
        _ => "a value",
    }
}

/// Days since the epoch of a `YYYY-MM-DD` string or a timestamp's UTC date.
fn date_of(v: &Value) -> Option<i32> {
    let date = match v {
        Value::Timestamp(t) => t.date_naive(),
        Value::Bytes(b) => {
            let s = std::str::from_utf8(b).ok()?;
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .or_else(|| crate::template::time_of(v).map(|t| t.date_naive()))?
        }
        _ => return None,
    };
    Some(date.num_days_from_ce() - 719_163)
}

fn descriptor(name: &str, fields: &[Field]) -> DescriptorProto {
    let mut message = DescriptorProto {
        name: Some(name.to_string()),
        ..Default::default()
    };
    for (i, f) in fields.iter().enumerate() {
        let ty = match f.ty {
            FieldType::Bool => Type::Bool,
            FieldType::Int64 | FieldType::Timestamp => Type::Int64,
            FieldType::Date => Type::Int32,
            FieldType::Float64 => Type::Double,
            FieldType::Bytes => Type::Bytes,
            FieldType::Record => Type::Message,
            _ => Type::String,
        };
        let label = match f.mode {
            Mode::Nullable => Label::Optional,
            Mode::Required => Label::Required,
            Mode::Repeated => Label::Repeated,
        };
        let nested = format!("{}_{}", name, i + 1);
        if f.ty == FieldType::Record {
            message.nested_type.push(descriptor(&nested, &f.fields));
        }
        message.field.push(FieldDescriptorProto {
            name: Some(f.name.clone()),
            number: Some(i as i32 + 1),
            label: Some(label as i32),
            r#type: Some(ty as i32),
            type_name: (f.ty == FieldType::Record).then_some(nested),
            ..Default::default()
        });
    }
    message
}

/// Writes protocol buffer wire format.
struct ProtoWriter<'o> {
    out: &'o mut Vec<u8>,
}

impl RowWriter for ProtoWriter<'_> {
    fn cell(&mut self, number: u32, field: &Field, cell: Cell<'_>, encoder: &RowEncoder) -> Result<(), String> {
        let out = &mut *self.out;
        match cell {
            Cell::Bool(b) => {
                encode_key(number, WireType::Varint, out);
                encode_varint(b as u64, out);
            }
            Cell::Int(i) | Cell::Micros(i) => {
                encode_key(number, WireType::Varint, out);
                encode_varint(i as u64, out);
            }
            Cell::Days(d) => {
                encode_key(number, WireType::Varint, out);
                encode_varint(d as i64 as u64, out);
            }
            Cell::Float(f) => {
                encode_key(number, WireType::SixtyFourBit, out);
                out.extend_from_slice(&f.to_le_bytes());
            }
            Cell::Text(s) => {
                encode_key(number, WireType::LengthDelimited, out);
                encode_varint(s.len() as u64, out);
                out.extend_from_slice(s.as_bytes());
            }
            Cell::Bytes(b) => {
                encode_key(number, WireType::LengthDelimited, out);
                encode_varint(b.len() as u64, out);
                out.extend_from_slice(b);
            }
            Cell::Record(map) => {
                let mut inner = Vec::new();
                let mut nested = ProtoWriter { out: &mut inner };
                encoder.fields(&field.fields, map, &mut nested, &mut None, &format!("{}.", field.name))?;
                encode_key(number, WireType::LengthDelimited, out);
                encode_varint(inner.len() as u64, out);
                out.extend_from_slice(&inner);
            }
        }
        Ok(())
    }
}

/// Builds an `insertAll` JSON row.
struct JsonWriter {
    row: serde_json::Map<String, serde_json::Value>,
}

impl RowWriter for JsonWriter {
    fn cell(&mut self, _number: u32, field: &Field, cell: Cell<'_>, encoder: &RowEncoder) -> Result<(), String> {
        use serde_json::Value as J;
        let value = match cell {
            Cell::Bool(b) => J::Bool(b),
            Cell::Int(i) => J::from(i),
            Cell::Float(f) => serde_json::Number::from_f64(f).map(J::Number).unwrap_or(J::Null),
            Cell::Text(s) => J::String(s.into_owned()),
            Cell::Bytes(b) => {
                use base64::Engine;
                J::String(base64::engine::general_purpose::STANDARD.encode(b))
            }
            Cell::Micros(us) => J::String(
                DateTime::<Utc>::from_timestamp_micros(us)
                    .map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, true))
                    .unwrap_or_default(),
            ),
            Cell::Days(d) => J::String(
                NaiveDate::from_num_days_from_ce_opt(d + 719_163)
                    .map(|d| d.format("%Y-%m-%d").to_string())
                    .unwrap_or_default(),
            ),
            Cell::Record(map) => {
                let mut nested = JsonWriter {
                    row: serde_json::Map::new(),
                };
                encoder.fields(&field.fields, map, &mut nested, &mut None, &format!("{}.", field.name))?;
                J::Object(nested.row)
            }
        };
        if field.mode == Mode::Repeated {
            match self
                .row
                .entry(field.name.clone())
                .or_insert_with(|| J::Array(Vec::new()))
            {
                J::Array(items) => items.push(value),
                _ => unreachable!("a repeated column is an array"),
            }
        } else {
            self.row.insert(field.name.clone(), value);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn schema() -> TableSchema {
        TableSchema::from_json_file(
            r#"[{"name":"ok","type":"BOOL"},{"name":"n","type":"INT64"},{"name":"x","type":"FLOAT64"},
                {"name":"msg","type":"STRING","mode":"REQUIRED"},{"name":"ts","type":"TIMESTAMP"},
                {"name":"tags","type":"STRING","mode":"REPEATED"},
                {"name":"http","type":"RECORD","fields":[{"name":"status","type":"INT64"}]},
                {"name":"_rejected","type":"STRING"}]"#,
        )
        .unwrap()
    }

    fn event(json: &str) -> Value {
        serde_json::from_str(json).unwrap()
    }

    /// The row as prost decodes it with a message type written by hand for the
    /// descriptor's field numbers: proves the wire format, not our own reading of it.
    #[derive(Clone, PartialEq, prost::Message)]
    struct Row {
        #[prost(bool, optional, tag = "1")]
        ok: Option<bool>,
        #[prost(int64, optional, tag = "2")]
        n: Option<i64>,
        #[prost(double, optional, tag = "3")]
        x: Option<f64>,
        #[prost(string, optional, tag = "4")]
        msg: Option<String>,
        #[prost(int64, optional, tag = "5")]
        ts: Option<i64>,
        #[prost(string, repeated, tag = "6")]
        tags: Vec<String>,
        #[prost(message, optional, tag = "7")]
        http: Option<Http>,
        #[prost(string, optional, tag = "8")]
        rejected: Option<String>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct Http {
        #[prost(int64, optional, tag = "1")]
        status: Option<i64>,
    }

    #[test]
    fn rows_decode_as_the_descriptor_says() {
        let enc = RowEncoder::new(schema(), "_rejected", false);
        let mut out = Vec::new();
        let e = event(
            r#"{"ok":true,"n":-7,"x":2,"msg":"hi","ts":"2026-12-02T10:00:00.5Z","tags":["a","b"],"http":{"status":503}}"#,
        );
        let r = enc.encode_proto(&e, &mut out).unwrap();
        assert_eq!(r.cast_failed, 0);
        let row = Row::decode(out.as_slice()).unwrap();
        assert_eq!(row.ok, Some(true));
        assert_eq!(row.n, Some(-7));
        assert_eq!(row.x, Some(2.0));
        assert_eq!(row.msg.as_deref(), Some("hi"));
        assert_eq!(row.ts, Some(1_796_205_600_500_000));
        assert_eq!(row.tags, vec!["a", "b"]);
        assert_eq!(row.http.unwrap().status, Some(503));
        assert_eq!(row.rejected, None);
        let d = enc.descriptor();
        assert_eq!(d.field.len(), 8);
        assert_eq!(d.field[6].type_name.as_deref(), Some("PipeRow_7"));
        assert_eq!(d.nested_type[0].field[0].name.as_deref(), Some("status"));
    }

    #[test]
    fn unfit_values_go_to_the_rejected_column_and_bad_rows_are_refused() {
        let enc = RowEncoder::new(schema(), "_rejected", false);
        let mut out = Vec::new();
        let r = enc
            .encode_proto(&event(r#"{"msg":"m","n":"seven","x":1.5}"#), &mut out)
            .unwrap();
        assert_eq!(r.cast_failed, 1);
        let row = Row::decode(out.as_slice()).unwrap();
        assert_eq!(row.n, None);
        assert_eq!(row.rejected.as_deref(), Some(r#"{"n":"seven"}"#));
        let e = enc.encode_proto(&event(r#"{"n":1}"#), &mut Vec::new()).unwrap_err();
        assert!(e.contains("REQUIRED column `msg`"), "{e}");
        let e = enc
            .encode_proto(&event(r#"{"msg":"m","color":"red"}"#), &mut Vec::new())
            .unwrap_err();
        assert!(e.contains("`color`"), "{e}");
        let lenient = RowEncoder::new(schema(), "_rejected", true);
        assert!(
            lenient
                .encode_proto(&event(r#"{"msg":"m","color":"red"}"#), &mut Vec::new())
                .is_ok()
        );
    }

    #[test]
    fn json_rows_carry_rfc3339_timestamps_and_nested_records() {
        let enc = RowEncoder::new(schema(), "", false);
        let (row, _) = enc
            .encode_json(&event(
                r#"{"msg":"m","ts":"2026-12-02T10:00:00Z","http":{"status":200},"tags":"one"}"#,
            ))
            .unwrap();
        assert_eq!(row["ts"], "2026-12-02T10:00:00.000000Z");
        assert_eq!(row["http"]["status"], 200);
        assert_eq!(row["tags"], serde_json::json!(["one"]));
    }
}
