//! `pipe archive ddl`: the statements that make Hive, Trino/Presto or BigQuery read
//! an archive where it is, with the columns and partition columns its files have.

use super::table::ArchiveTable;
use arrow::datatypes::{DataType, TimeUnit};

/// Which engine the statements are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Hive,
    Trino,
    BigQuery,
}

/// The CREATE statement for `table` (named `name`) at `location`, followed by the
/// statement that discovers its partitions.
pub fn ddl(dialect: Dialect, name: &str, location: &str, table: &ArchiveTable) -> String {
    let location = location.trim_end_matches('/');
    let column = |n: &str, t: &DataType| format!("  {} {}", quote(dialect, n), type_name(dialect, t));
    let files: Vec<String> = table
        .file_schema
        .fields()
        .iter()
        .map(|f| column(f.name(), f.data_type()))
        .collect();
    let parts: Vec<String> = table.partitions.iter().map(|(n, t)| column(n, t)).collect();
    let part_names: Vec<String> = table.partitions.iter().map(|(n, _)| format!("'{n}'")).collect();
    match dialect {
        Dialect::Hive => {
            // Open-source Hive reaches S3 through the s3a:// filesystem.
            let location = location.replacen("s3://", "s3a://", 1);
            let mut s = format!(
                "CREATE EXTERNAL TABLE IF NOT EXISTS {} (\n{}\n)",
                quote(dialect, name),
                files.join(",\n")
            );
            if !parts.is_empty() {
                s += &format!("\nPARTITIONED BY (\n{}\n)", parts.join(",\n"));
            }
            s += &format!("\nSTORED AS PARQUET\nLOCATION '{location}/';\n");
            if !parts.is_empty() {
                s += &format!("MSCK REPAIR TABLE {};\n", quote(dialect, name));
            }
            s
        }
        Dialect::Trino => {
            // The Hive connector wants partition columns last, named in partitioned_by.
            let all: Vec<String> = files.iter().chain(&parts).cloned().collect();
            let mut with = vec![
                format!("  external_location = '{location}/'"),
                "  format = 'PARQUET'".into(),
            ];
            if !parts.is_empty() {
                with.push(format!("  partitioned_by = ARRAY[{}]", part_names.join(", ")));
            }
            let mut s = format!(
                "CREATE TABLE IF NOT EXISTS {} (\n{}\n)\nWITH (\n{}\n);\n",
                quote(dialect, name),
                all.join(",\n"),
                with.join(",\n")
            );
            if !parts.is_empty() {
                let (schema, table) = name.rsplit_once('.').unwrap_or(("default", name));
                let schema = schema.rsplit('.').next().unwrap_or(schema);
                s += &format!("CALL system.sync_partition_metadata('{schema}', '{table}', 'ADD');\n");
            }
            s
        }
        Dialect::BigQuery => {
            let mut s = format!(
                "CREATE EXTERNAL TABLE IF NOT EXISTS {} (\n{}\n)",
                quote(dialect, name),
                files.join(",\n")
            );
            if !parts.is_empty() {
                s += &format!("\nWITH PARTITION COLUMNS (\n{}\n)", parts.join(",\n"));
            }
            let mut options = vec!["  format = 'PARQUET'".to_string(), format!("  uris = ['{location}/*']")];
            if !parts.is_empty() {
                options.push(format!("  hive_partition_uri_prefix = '{location}/'"));
            }
            s += &format!("\nOPTIONS (\n{}\n);\n", options.join(",\n"));
            s += "-- BigQuery finds new partitions at query time; no discovery statement is needed.\n";
            if !location.starts_with("gs://") {
                s += "-- BigQuery reads gs:// locations (S3 only through BigQuery Omni).\n";
            }
            s
        }
    }
}

fn quote(dialect: Dialect, name: &str) -> String {
    match dialect {
        Dialect::Hive | Dialect::BigQuery => name.split('.').map(|p| format!("`{p}`")).collect::<Vec<_>>().join("."),
        Dialect::Trino => name
            .split('.')
            .map(|p| format!("\"{p}\""))
            .collect::<Vec<_>>()
            .join("."),
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
        let hive = ddl(Dialect::Hive, "logs", "s3://b/app/", &table());
        assert!(hive.contains("`timestamp` TIMESTAMP,\n  `service` STRING,"), "{hive}");
        assert!(
            hive.contains("PARTITIONED BY (\n  `dt` DATE,\n  `hour` BIGINT\n)"),
            "{hive}"
        );
        assert!(
            hive.contains("LOCATION 's3a://b/app/';\nMSCK REPAIR TABLE `logs`;"),
            "{hive}"
        );
        let trino = ddl(Dialect::Trino, "hive.web.logs", "s3://b/app", &table());
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
        let bq = ddl(Dialect::BigQuery, "ds.logs", "gs://b/app", &table());
        assert!(
            bq.contains("WITH PARTITION COLUMNS (\n  `dt` DATE,\n  `hour` INT64\n)"),
            "{bq}"
        );
        assert!(bq.contains("uris = ['gs://b/app/*']"), "{bq}");
        assert!(bq.contains("hive_partition_uri_prefix = 'gs://b/app/'"), "{bq}");
    }
}
