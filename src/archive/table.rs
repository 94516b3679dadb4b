//! An archive as a DataFusion table: its Parquet files, its Hive partition columns
//! (`dt=2026-11-25/hour=13/…`, typed by their values as DuckDB types them:
//! integers written without leading zeros → BIGINT, all `YYYY-MM-DD` → DATE, else
//! string; `hour=07` stays a string, which is why the sink's default is `hour=%-H`) and the merged schema of the
//! files. Partition columns let DataFusion skip whole directories.

use super::store::Store;
use ::object_store::ObjectMeta;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;
use std::sync::Arc;

/// Why an archive cannot be read as a table.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("the archive `{0}` does not exist")]
    Missing(String),
    #[error("the archive `{url}` holds no Parquet files{others}")]
    Empty { url: String, others: String },
    #[error("cannot list the archive `{0}`: {1}")]
    List(String, ::object_store::Error),
    #[error("{0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    #[error("{0}")]
    Url(String),
}

/// An archive found and described.
#[derive(Debug, Clone)]
pub struct ArchiveTable {
    /// Columns stored in the files (merged over every file).
    pub file_schema: SchemaRef,
    /// Hive partition columns, outermost first.
    pub partitions: Vec<(String, DataType)>,
    /// How many Parquet files it has.
    pub files: usize,
}

impl ArchiveTable {
    /// Every column: file columns, then partition columns.
    pub fn schema(&self) -> Schema {
        let mut fields: Vec<Field> = self.file_schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.extend(self.partitions.iter().map(|(n, t)| Field::new(n, t.clone(), true)));
        Schema::new(fields)
    }

    /// `name type, …` for messages.
    pub fn describe_columns(&self) -> String {
        let mut cols: Vec<String> = self
            .file_schema
            .fields()
            .iter()
            .map(|f| format!("{} {}", f.name(), f.data_type()))
            .collect();
        cols.extend(self.partitions.iter().map(|(n, t)| format!("{n} {t} (partition)")));
        cols.join(", ")
    }
}

/// Lists `store` and registers it in `ctx` as table `name`.
pub async fn register(ctx: &SessionContext, store: &Store, name: &str) -> Result<ArchiveTable, TableError> {
    let url = ::url::Url::parse(&store.root_url()).map_err(|e| TableError::Url(e.to_string()))?;
    ctx.register_object_store(&url, store.store.clone());
    if let Some(root) = &store.local_root
        && !root.is_dir()
    {
        return Err(TableError::Missing(store.url.clone()));
    }
    let listed: Vec<ObjectMeta> = store
        .store
        .list(Some(&store.prefix))
        .try_collect()
        .await
        .map_err(|e| TableError::List(store.url.clone(), e))?;
    let (parquet, others): (Vec<_>, Vec<_>) = listed
        .into_iter()
        .filter(|m| {
            !m.location
                .filename()
                .is_some_and(|f| f.starts_with('.') || f.starts_with('_'))
        })
        .partition(|m| m.location.as_ref().ends_with(".parquet"));
    if parquet.is_empty() {
        let others = if others.is_empty() {
            " (it is empty)".to_string()
        } else {
            format!(" ({} other files; pipe query reads Parquet archives)", others.len())
        };
        return Err(TableError::Empty {
            url: store.url.clone(),
            others,
        });
    }
    let prefix_len = store.prefix.parts().count();
    let relative: Vec<Vec<String>> = parquet
        .iter()
        .map(|m| {
            m.location
                .parts()
                .skip(prefix_len)
                .map(|p| p.as_ref().to_string())
                .collect()
        })
        .collect();
    let table_url = ListingTableUrl::parse(store.table_url())?;
    let options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let file_schema = options.infer_schema(&ctx.state(), &table_url).await?;
    let partitions: Vec<(String, DataType)> = partition_columns(&relative)
        .into_iter()
        .filter(|(n, _)| file_schema.field_with_name(n).is_err())
        .collect();
    let options = options.with_table_partition_cols(partitions.clone());
    let config = ListingTableConfig::new(table_url)
        .with_listing_options(options)
        .with_schema(file_schema.clone());
    ctx.register_table(name, Arc::new(ListingTable::try_new(config)?))?;
    Ok(ArchiveTable {
        file_schema,
        partitions,
        files: parquet.len(),
    })
}

/// The `key=value` directories every file shares, in order, with their types.
fn partition_columns(files: &[Vec<String>]) -> Vec<(String, DataType)> {
    let keys = |parts: &Vec<String>| -> Vec<String> {
        let dirs = &parts[..parts.len().saturating_sub(1)];
        dirs.iter()
            .map_while(|d| d.split_once('=').map(|(k, _)| k.to_string()))
            .collect()
    };
    let Some(first) = files.first().map(keys) else {
        return vec![];
    };
    let common = files.iter().map(keys).fold(first, |acc, k| {
        acc.iter()
            .zip(&k)
            .take_while(|(a, b)| a == b)
            .map(|(a, _)| a.clone())
            .collect()
    });
    common
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let values = files.iter().filter_map(|f| f[i].split_once('=').map(|(_, v)| v));
            (name.clone(), value_type(values))
        })
        .collect()
}

/// Integers as written (no leading zero) → BIGINT, all `YYYY-MM-DD` → DATE. Leading
/// zeros stay strings: DataFusion lists `hour = 7` under `hour=7/`, never `hour=07/`.
fn value_type<'a>(values: impl Iterator<Item = &'a str> + Clone) -> DataType {
    let int = |v: &str| v.parse::<i64>().is_ok_and(|n| n.to_string() == v);
    let date = |v: &str| chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").is_ok() && v.len() == 10;
    if values.clone().all(int) {
        DataType::Int64
    } else if values.clone().all(date) {
        DataType::Date32
    } else {
        DataType::Utf8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(p: &str) -> Vec<String> {
        p.split('/').map(str::to_string).collect()
    }

    #[test]
    fn partition_columns_are_shared_and_typed() {
        let files = [
            parts("dt=2026-11-25/hour=13/n=7/service=api/a.parquet"),
            parts("dt=2026-11-26/hour=02/n=0/service=web/b.parquet"),
        ];
        assert_eq!(
            partition_columns(&files),
            vec![
                ("dt".into(), DataType::Date32),
                ("hour".into(), DataType::Utf8),
                ("n".into(), DataType::Int64),
                ("service".into(), DataType::Utf8)
            ]
        );
        let ragged = [parts("dt=2026-11-25/a.parquet"), parts("x/b.parquet")];
        assert!(partition_columns(&ragged).is_empty());
        assert_eq!(
            value_type(["__HIVE_DEFAULT_PARTITION__", "1"].into_iter()),
            DataType::Utf8
        );
    }
}
