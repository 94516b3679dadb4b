//! A BigQuery table's schema as the sink needs it: declared in the topology
//! (`schema`, the archive's name → type syntax, or BigQuery's own type names), read
//! from a BigQuery JSON schema file (`schema_file`), or from the table itself
//! (`tables.get`), and checked against each other offline.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// A column's type, as BigQuery names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Bool,
    Int64,
    Float64,
    String,
    Bytes,
    Timestamp,
    Date,
    Datetime,
    Time,
    Numeric,
    BigNumeric,
    Json,
    Geography,
    Record,
}

impl FieldType {
    /// Parses BigQuery's names (legacy and standard SQL) and the archive's
    /// `schema` spellings (`string`, `int`, `float`, `bool`, `timestamp`, …).
    pub fn parse(s: &str) -> Result<FieldType, String> {
        let t = s.trim().to_ascii_uppercase();
        Ok(match t.as_str() {
            "BOOL" | "BOOLEAN" => FieldType::Bool,
            "INT" | "INT64" | "INTEGER" | "BIGINT" | "LONG" => FieldType::Int64,
            "FLOAT" | "FLOAT64" | "DOUBLE" => FieldType::Float64,
            "STRING" | "UTF8" | "VARCHAR" | "TEXT" => FieldType::String,
            "BYTES" => FieldType::Bytes,
            "TIMESTAMP" | "TIMESTAMP(US)" | "TIMESTAMP(MS)" | "TIMESTAMP(S)" | "TIMESTAMP(NS)" => FieldType::Timestamp,
            "DATE" => FieldType::Date,
            "DATETIME" => FieldType::Datetime,
            "TIME" => FieldType::Time,
            "NUMERIC" | "DECIMAL" => FieldType::Numeric,
            "BIGNUMERIC" | "BIGDECIMAL" => FieldType::BigNumeric,
            "JSON" => FieldType::Json,
            "GEOGRAPHY" => FieldType::Geography,
            "RECORD" | "STRUCT" => FieldType::Record,
            _ => {
                return Err(format!(
                    "unknown column type `{s}` (use string, int, float, bool, timestamp, or a BigQuery type such as JSON, DATE, NUMERIC)"
                ));
            }
        })
    }

    /// BigQuery's standard name.
    pub fn name(self) -> &'static str {
        match self {
            FieldType::Bool => "BOOLEAN",
            FieldType::Int64 => "INTEGER",
            FieldType::Float64 => "FLOAT",
            FieldType::String => "STRING",
            FieldType::Bytes => "BYTES",
            FieldType::Timestamp => "TIMESTAMP",
            FieldType::Date => "DATE",
            FieldType::Datetime => "DATETIME",
            FieldType::Time => "TIME",
            FieldType::Numeric => "NUMERIC",
            FieldType::BigNumeric => "BIGNUMERIC",
            FieldType::Json => "JSON",
            FieldType::Geography => "GEOGRAPHY",
            FieldType::Record => "RECORD",
        }
    }
}

/// NULLABLE, REQUIRED or REPEATED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Nullable,
    Required,
    Repeated,
}

/// One column.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub ty: FieldType,
    pub mode: Mode,
    /// The fields of a RECORD.
    pub fields: Vec<Field>,
}

/// The columns of a table.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TableSchema {
    pub fields: Vec<Field>,
}

/// A field in BigQuery's JSON form (`schema_file`, `tables.get`, `tables.insert`).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct JsonField {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<JsonField>,
}

/// A schema file is `[fields…]` (what `bq show --schema` prints) or `{"fields": […]}`.
#[derive(Deserialize)]
#[serde(untagged)]
enum SchemaFile {
    Fields(Vec<JsonField>),
    Object { fields: Vec<JsonField> },
}

impl TableSchema {
    /// From the topology's `schema` table (column → type, in order).
    pub fn declared(columns: &IndexMap<String, String>) -> Result<TableSchema, String> {
        let mut fields = Vec::with_capacity(columns.len());
        for (name, ty) in columns {
            let ty = FieldType::parse(ty).map_err(|e| format!("column `{name}`: {e}"))?;
            if ty == FieldType::Record {
                return Err(format!(
                    "column `{name}`: RECORD columns need their fields; declare them in `schema_file`"
                ));
            }
            fields.push(Field {
                name: name.clone(),
                ty,
                mode: Mode::Nullable,
                fields: Vec::new(),
            });
        }
        Ok(TableSchema { fields })
    }

    /// From the text of a BigQuery JSON schema file.
    pub fn from_json_file(text: &str) -> Result<TableSchema, String> {
        let fields = match serde_json::from_str::<SchemaFile>(text).map_err(|e| e.to_string())? {
            SchemaFile::Fields(f) | SchemaFile::Object { fields: f } => f,
        };
        Self::from_json(&fields)
    }

    /// From BigQuery's JSON fields.
    pub fn from_json(fields: &[JsonField]) -> Result<TableSchema, String> {
        fn convert(f: &JsonField) -> Result<Field, String> {
            let ty = FieldType::parse(&f.ty).map_err(|e| format!("column `{}`: {e}", f.name))?;
            let mode = match f.mode.as_deref().map(str::to_ascii_uppercase).as_deref() {
                None | Some("NULLABLE") | Some("") => Mode::Nullable,
                Some("REQUIRED") => Mode::Required,
                Some("REPEATED") => Mode::Repeated,
                Some(other) => return Err(format!("column `{}`: unknown mode `{other}`", f.name)),
            };
            let fields = f.fields.iter().map(convert).collect::<Result<Vec<_>, _>>()?;
            if ty == FieldType::Record && fields.is_empty() {
                return Err(format!("column `{}`: a RECORD needs `fields`", f.name));
            }
            Ok(Field {
                name: f.name.clone(),
                ty,
                mode,
                fields,
            })
        }
        let fields = fields.iter().map(convert).collect::<Result<Vec<_>, _>>()?;
        if fields.is_empty() {
            return Err("the schema has no columns".into());
        }
        Ok(TableSchema { fields })
    }

    /// BigQuery's JSON form, for `tables.insert`.
    pub fn to_json(&self) -> Vec<JsonField> {
        fn convert(f: &Field) -> JsonField {
            JsonField {
                name: f.name.clone(),
                ty: f.ty.name().to_string(),
                mode: Some(
                    match f.mode {
                        Mode::Nullable => "NULLABLE",
                        Mode::Required => "REQUIRED",
                        Mode::Repeated => "REPEATED",
                    }
                    .to_string(),
                ),
                fields: f.fields.iter().map(convert).collect(),
            }
        }
        self.fields.iter().map(convert).collect()
    }

    /// The column `name`.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Checks the topology's `schema` against the table's (a `schema_file`): every
    /// declared column exists there with the same type. Offline (`pipe validate`).
    pub fn check_declared_against(&self, declared: &TableSchema) -> Result<(), String> {
        for d in &declared.fields {
            match self.field(&d.name) {
                None => return Err(format!("column `{}` of `schema` is not in `schema_file`", d.name)),
                Some(f) if f.ty != d.ty => {
                    return Err(format!(
                        "column `{}` is {} in `schema` but {} in `schema_file`",
                        d.name,
                        d.ty.name(),
                        f.ty.name()
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schema_file_with_records_and_modes_parses() {
        let s = TableSchema::from_json_file(
            r#"[{"name":"ts","type":"TIMESTAMP","mode":"REQUIRED"},
                {"name":"tags","type":"STRING","mode":"REPEATED"},
                {"name":"http","type":"RECORD","fields":[{"name":"status","type":"INT64"}]}]"#,
        )
        .unwrap();
        assert_eq!(s.fields[0].mode, Mode::Required);
        assert_eq!(s.fields[1].mode, Mode::Repeated);
        assert_eq!(s.fields[2].fields[0].ty, FieldType::Int64);
        let object = TableSchema::from_json_file(r#"{"fields":[{"name":"a","type":"bool"}]}"#).unwrap();
        assert_eq!(object.fields[0].ty, FieldType::Bool);
    }

    #[test]
    fn declared_columns_are_checked_against_the_file() {
        let file =
            TableSchema::from_json_file(r#"[{"name":"a","type":"INTEGER"},{"name":"b","type":"STRING"}]"#).unwrap();
        let mut declared = IndexMap::new();
        declared.insert("a".to_string(), "bigint".to_string());
        assert!(
            file.check_declared_against(&TableSchema::declared(&declared).unwrap())
                .is_ok()
        );
        declared.insert("b".to_string(), "float".to_string());
        let e = file
            .check_declared_against(&TableSchema::declared(&declared).unwrap())
            .unwrap_err();
        assert!(e.contains("`b`") && e.contains("FLOAT") && e.contains("STRING"), "{e}");
        declared.insert("c".to_string(), "string".to_string());
        declared.shift_remove("b");
        let e = file
            .check_declared_against(&TableSchema::declared(&declared).unwrap())
            .unwrap_err();
        assert!(e.contains("`c`"), "{e}");
    }

    #[test]
    fn unknown_types_and_modes_are_named() {
        let e = TableSchema::from_json_file(r#"[{"name":"x","type":"BLOB"}]"#).unwrap_err();
        assert!(e.contains("`x`") && e.contains("BLOB"), "{e}");
        let e = TableSchema::from_json_file(r#"[{"name":"x","type":"INT64","mode":"OPTIONAL"}]"#).unwrap_err();
        assert!(e.contains("OPTIONAL"), "{e}");
    }
}
