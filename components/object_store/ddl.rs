//! `pipe archive ddl`: the statements that make Hive, Trino/Presto or BigQuery read
//! an archive where it is, with the columns and partition columns its files have.
//!
//! Column names come from event fields, so they are quoted by each engine's rules,
//! or refused with a message when the engine cannot name them at all:
//! - Hive: backticks, a backtick doubled; `.` and `:` are refused (Hive 1.2+ rejects
//!   them in column names).
//! - Trino/Presto: double quotes, a double quote doubled.
//! - BigQuery: backticks; only what BigQuery's flexible column names allow (letters,
//!   digits, `_`, `-`, space and `& % = + : ' < > # |`), at most 300 characters.
//!
//! Control characters and empty names are refused everywhere. String literals
//! (locations, partition names) are escaped as each dialect writes them.

use super::table::ArchiveTable;
use arrow::datatypes::{DataType, TimeUnit};

/// Which engine the statements are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Hive,
    Trino,
    BigQuery,
}

impl Dialect {
    fn name(self) -> &'static str {
        match self {
            Dialect::Hive => "Hive",
            Dialect::Trino => "Trino",
            Dialect::BigQuery => "BigQuery",
        }
    }
}

/// A name the engine cannot take. The archive's fields (or `--table`) are at fault:
/// rename the field (a `remap` transform) or pick another table name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{dialect} cannot name the {what} {name:?}: {reason}")]
pub struct DdlError {
    pub dialect: &'static str,
    /// `column` or `table`.
    pub what: &'static str,
    pub name: String,
    pub reason: String,
}

/// The CREATE statement for `table` (named `name`) at `location`, followed by the
/// statement that discovers its partitions.
pub fn ddl(dialect: Dialect, name: &str, location: &str, table: &ArchiveTable) -> Result<String, DdlError> {
    let location = location.trim_end_matches('/');
    let column = |n: &str, t: &DataType| -> Result<String, DdlError> {
        Ok(format!("  {} {}", quote_column(dialect, n)?, type_name(dialect, t)))
    };
    let files: Vec<String> = table
        .file_schema
        .fields()
        .iter()
        .map(|f| column(f.name(), f.data_type()))
        .collect::<Result<_, _>>()?;
    let parts: Vec<String> = table
        .partitions
        .iter()
        .map(|(n, t)| column(n, t))
        .collect::<Result<_, _>>()?;
    let table_name = quote_table(dialect, name)?;
    let lit = |s: &str| literal(dialect, s);
    match dialect {
        Dialect::Hive => {
            // Open-source Hive reaches S3 through the s3a:// filesystem.
            let location = location.replacen("s3://", "s3a://", 1);
            let mut s = format!(
                "CREATE EXTERNAL TABLE IF NOT EXISTS {table_name} (\n{}\n)",
                files.join(",\n")
            );
            if !parts.is_empty() {
                s += &format!("\nPARTITIONED BY (\n{}\n)", parts.join(",\n"));
            }
            s += &format!("\nSTORED AS PARQUET\nLOCATION {};\n", lit(&format!("{location}/")));
            if !parts.is_empty() {
                s += &format!("MSCK REPAIR TABLE {table_name};\n");
            }
            Ok(s)
        }
        Dialect::Trino => {
            // The Hive connector wants partition columns last, named in partitioned_by.
            let all: Vec<String> = files.iter().chain(&parts).cloned().collect();
            let mut with = vec![
                format!("  external_location = {}", lit(&format!("{location}/"))),
                "  format = 'PARQUET'".into(),
            ];
            if !parts.is_empty() {
                let names: Vec<String> = table.partitions.iter().map(|(n, _)| lit(n)).collect();
                with.push(format!("  partitioned_by = ARRAY[{}]", names.join(", ")));
            }
            let mut s = format!(
                "CREATE TABLE IF NOT EXISTS {table_name} (\n{}\n)\nWITH (\n{}\n);\n",
                all.join(",\n"),
                with.join(",\n")
            );
            if !parts.is_empty() {
                let (schema, table) = name.rsplit_once('.').unwrap_or(("default", name));
                let schema = schema.rsplit('.').next().unwrap_or(schema);
                s += &format!(
                    "CALL system.sync_partition_metadata({}, {}, 'ADD');\n",
                    lit(schema),
                    lit(table)
                );
            }
            Ok(s)
        }
        Dialect::BigQuery => {
            let mut s = format!(
                "CREATE EXTERNAL TABLE IF NOT EXISTS {table_name} (\n{}\n)",
                files.join(",\n")
            );
            if !parts.is_empty() {
                s += &format!("\nWITH PARTITION COLUMNS (\n{}\n)", parts.join(",\n"));
            }
            let mut options = vec![
                "  format = 'PARQUET'".to_string(),
                format!("  uris = [{}]", lit(&format!("{location}/*"))),
            ];
            if !parts.is_empty() {
                options.push(format!(
                    "  hive_partition_uri_prefix = {}",
                    lit(&format!("{location}/"))
                ));
            }
            s += &format!("\nOPTIONS (\n{}\n);\n", options.join(",\n"));
            s += "-- BigQuery finds new partitions at query time; no discovery statement is needed.\n";
            if !location.starts_with("gs://") {
                s += "-- BigQuery reads gs:// locations (S3 only through BigQuery Omni).\n";
            }
            Ok(s)
        }
    }
}

/// A column name, quoted for `dialect`, or why it cannot be one.
pub fn quote_column(dialect: Dialect, name: &str) -> Result<String, DdlError> {
    let refuse = |reason: &str| DdlError {
        dialect: dialect.name(),
        what: "column",
        name: name.to_string(),
        reason: reason.to_string(),
    };
    if name.is_empty() {
        return Err(refuse("the name is empty"));
    }
    if name.chars().any(char::is_control) {
        return Err(refuse("it holds a control character"));
    }
    match dialect {
        Dialect::Hive => {
            if let Some(c) = name.chars().find(|c| matches!(c, '.' | ':')) {
                return Err(refuse(&format!("Hive refuses `{c}` in column names")));
            }
            Ok(format!("`{}`", name.replace('`', "``")))
        }
        Dialect::Trino => Ok(format!("\"{}\"", name.replace('"', "\"\""))),
        Dialect::BigQuery => {
            if let Some(c) = name.chars().find(|c| !bigquery_column_char(*c)) {
                return Err(refuse(&format!(
                    "BigQuery column names cannot hold `{c}` (letters, digits, `_`, `-`, space and & % = + : ' < > # | only)"
                )));
            }
            if name.chars().count() > 300 {
                return Err(refuse("BigQuery column names have at most 300 characters"));
            }
            Ok(format!("`{name}`"))
        }
    }
}

/// What BigQuery's flexible column names allow, read conservatively: letters,
/// digits, `_`, `-`, space and the listed symbols.
fn bigquery_column_char(c: char) -> bool {
    c.is_alphanumeric()
        || matches!(
            c,
            '_' | '-' | ' ' | '&' | '%' | '=' | '+' | ':' | '\'' | '<' | '>' | '#' | '|'
        )
}

/// A dotted table name (`catalog.schema.table`), each part quoted for `dialect`.
fn quote_table(dialect: Dialect, name: &str) -> Result<String, DdlError> {
    let refuse = |reason: &str| DdlError {
        dialect: dialect.name(),
        what: "table",
        name: name.to_string(),
        reason: reason.to_string(),
    };
    let mut quoted = Vec::new();
    for part in name.split('.') {
        if part.is_empty() {
            return Err(refuse("a part of the dotted name is empty"));
        }
        if part.chars().any(char::is_control) {
            return Err(refuse("it holds a control character"));
        }
        quoted.push(match dialect {
            Dialect::Hive => format!("`{}`", part.replace('`', "``")),
            Dialect::Trino => format!("\"{}\"", part.replace('"', "\"\"")),
            Dialect::BigQuery => {
                if part.contains(['`', '\\']) {
                    return Err(refuse("BigQuery names cannot hold ` or \\"));
                }
                format!("`{part}`")
            }
        });
    }
    Ok(quoted.join("."))
}

/// A string literal: Trino doubles `'`; Hive and BigQuery escape `'` and `\` with `\`.
fn literal(dialect: Dialect, s: &str) -> String {
    match dialect {
        Dialect::Trino => format!("'{}'", s.replace('\'', "''")),
        Dialect::Hive | Dialect::BigQuery => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
    }
}

fn type_name(dialect: Dialect, t: &DataType) -> String {
    use Dialect::*;
    match (dialect, t) {
        (Hive, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) => "STRING".into(),
        (Trino, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) => "varchar".into(),
        (BigQuery, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) => "STRING".into(),
        (Hive, DataType::Int64) => "BIGINT".into(),
        (Trino, DataType::Int64) => "bigint".into(),
        (BigQuery, DataType::Int64 | DataType::Int32) => "INT64".into(),
        (Hive, DataType::Int32) => "INT".into(),
        (Trino, DataType::Int32) => "integer".into(),
        (Hive, DataType::Float64) => "DOUBLE".into(),
        (Trino, DataType::Float64) => "double".into(),
        (BigQuery, DataType::Float64 | DataType::Float32) => "FLOAT64".into(),
        (Hive, DataType::Float32) => "FLOAT".into(),
        (Trino, DataType::Float32) => "real".into(),
        (Hive, DataType::Boolean) => "BOOLEAN".into(),
        (Trino, DataType::Boolean) => "boolean".into(),
        (BigQuery, DataType::Boolean) => "BOOL".into(),
        (Hive, DataType::Date32) => "DATE".into(),
        (Trino, DataType::Date32) => "date".into(),
        (BigQuery, DataType::Date32) => "DATE".into(),
        (Hive, DataType::Timestamp(..)) => "TIMESTAMP".into(),
        (Trino, DataType::Timestamp(unit, _)) => {
            let p = match unit {
                TimeUnit::Second => 0,
                TimeUnit::Millisecond => 3,
                TimeUnit::Microsecond => 6,
                TimeUnit::Nanosecond => 9,
            };
            format!("timestamp({p})")
        }
        (BigQuery, DataType::Timestamp(..)) => "TIMESTAMP".into(),
        // Anything else the archive does not write; strings read every Parquet type.
        (Trino, _) => "varchar".into(),
        _ => "STRING".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{Field, Schema};
    use std::sync::Arc;

    fn table() -> ArchiveTable {
        ArchiveTable {
            file_schema: Arc::new(Schema::new(vec![
                Field::new(
                    "timestamp",
                    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                    true,
                ),
                Field::new("service", DataType::Utf8, true),
                Field::new("latency_ms", DataType::Int64, true),
            ])),
            partitions: vec![("dt".into(), DataType::Date32), ("hour".into(), DataType::Int64)],
            files: 1,
        }
    }

    #[test]
    fn dialects() {
        let hive = ddl(Dialect::Hive, "logs", "s3://b/app/", &table()).unwrap();
        assert!(hive.contains("`timestamp` TIMESTAMP,\n  `service` STRING,"), "{hive}");
        assert!(
            hive.contains("PARTITIONED BY (\n  `dt` DATE,\n  `hour` BIGINT\n)"),
            "{hive}"
        );
        assert!(
            hive.contains("LOCATION 's3a://b/app/';\nMSCK REPAIR TABLE `logs`;"),
            "{hive}"
        );
        let trino = ddl(Dialect::Trino, "hive.web.logs", "s3://b/app", &table()).unwrap();
        assert!(trino.contains("\"timestamp\" timestamp(6)"), "{trino}");
        assert!(
            trino.contains("\"latency_ms\" bigint,\n  \"dt\" date,\n  \"hour\" bigint\n)"),
            "{trino}"
        );
        assert!(trino.contains("partitioned_by = ARRAY['dt', 'hour']"), "{trino}");
        assert!(
            trino.contains("sync_partition_metadata('web', 'logs', 'ADD')"),
            "{trino}"
        );
        let bq = ddl(Dialect::BigQuery, "ds.logs", "gs://b/app", &table()).unwrap();
        assert!(
            bq.contains("WITH PARTITION COLUMNS (\n  `dt` DATE,\n  `hour` INT64\n)"),
            "{bq}"
        );
        assert!(bq.contains("uris = ['gs://b/app/*']"), "{bq}");
        assert!(bq.contains("hive_partition_uri_prefix = 'gs://b/app/'"), "{bq}");
    }

    fn with_columns(names: &[&str]) -> ArchiveTable {
        ArchiveTable {
            file_schema: Arc::new(Schema::new(
                names
                    .iter()
                    .map(|n| Field::new(*n, DataType::Utf8, true))
                    .collect::<Vec<_>>(),
            )),
            partitions: vec![("dt".into(), DataType::Date32)],
            files: 1,
        }
    }

    #[test]
    fn hostile_column_names_are_escaped_or_refused() {
        let t = with_columns(&["a\"b`c", "with space"]);
        let hive = ddl(Dialect::Hive, "logs", "/x", &t).unwrap();
        assert!(hive.contains("  `a\"b``c` STRING,\n  `with space` STRING\n)"), "{hive}");
        let trino = ddl(Dialect::Trino, "logs", "/x", &t).unwrap();
        assert!(
            trino.contains("  \"a\"\"b`c\" varchar,\n  \"with space\" varchar,"),
            "{trino}"
        );
        let err = ddl(Dialect::BigQuery, "logs", "/x", &t).unwrap_err();
        assert_eq!(err.name, "a\"b`c");
        assert!(err.to_string().contains("BigQuery cannot name the column"), "{err}");
        let bq = ddl(Dialect::BigQuery, "logs", "/x", &with_columns(&["with space"])).unwrap();
        assert!(bq.contains("  `with space` STRING\n)"), "{bq}");

        // A dotted field is one column, never split into a qualified name.
        assert_eq!(quote_column(Dialect::Trino, "a.b").unwrap(), "\"a.b\"");
        assert!(quote_column(Dialect::Hive, "a.b").is_err());
        assert!(quote_column(Dialect::Hive, "x:y").is_err());
        for d in [Dialect::Hive, Dialect::Trino, Dialect::BigQuery] {
            assert!(quote_column(d, "a\n);DROP TABLE x").is_err());
            assert!(quote_column(d, "").is_err());
        }
    }

    #[test]
    fn literals_and_table_names_are_escaped() {
        let t = with_columns(&["x"]);
        let trino = ddl(Dialect::Trino, "c.s'.t\"", "s3://b/it's", &t).unwrap();
        assert!(
            trino.contains("CREATE TABLE IF NOT EXISTS \"c\".\"s'\".\"t\"\"\""),
            "{trino}"
        );
        assert!(trino.contains("external_location = 's3://b/it''s/'"), "{trino}");
        assert!(
            trino.contains("sync_partition_metadata('s''', 't\"', 'ADD')"),
            "{trino}"
        );
        let hive = ddl(Dialect::Hive, "t`x", "s3://b/it's", &t).unwrap();
        assert!(
            hive.contains("`t``x`") && hive.contains("LOCATION 's3a://b/it\\'s/'"),
            "{hive}"
        );
        assert!(ddl(Dialect::BigQuery, "d.t`", "gs://b", &t).is_err());
        assert!(ddl(Dialect::Hive, "a..b", "/x", &t).is_err());
    }
}
