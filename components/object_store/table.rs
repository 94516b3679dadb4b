//! An archive as a DataFusion table: its Parquet files, its Hive partition columns
//! and the merged schema of the files, read as DuckDB (`hive_partitioning = true`),
//! Hive, Trino and BigQuery read the same files.
//!
//! - Every `key=value` directory level is a partition column, however many levels
//!   there are, also when `key` is a field of the events too
//!   (`service={{ service }}/dt=%Y-%m-%d`): the directory's value wins and the
//!   files' column of that name is not read, as in DuckDB, and the DDL names it once,
//!   as a partition column.
//! - Partition values are typed by their values as DuckDB types them: integers
//!   written without leading zeros → BIGINT, all `YYYY-MM-DD` → DATE, else string
//!   (`hour=07` stays a string, which is why the sink's default is `hour=%-H`).
//!   `__HIVE_DEFAULT_PARTITION__` (a missing field) is NULL and does not count for
//!   the type.
//! - Every file must sit in the same layout: the same partition keys in the same
//!   order, then the same number of plain directories. A file that does not (a
//!   stray file at the top, a directory from an older template) is an error naming
//!   it, never skipped: DataFusion would skip it and answer as if it did not exist.
//!
//! Filters on partition columns let DataFusion skip whole directories.

use super::store::Store;
use ::object_store::ObjectMeta;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::datasource::{ViewTable, provider_as_source};
use datafusion::logical_expr::LogicalPlanBuilder;
use datafusion::prelude::{Expr, SessionConfig, SessionContext, cast, ident, lit, nullif};
use futures::{StreamExt, TryStreamExt};
use std::collections::HashMap;
use std::sync::Arc;

/// The value Hive (and the `object_store` sink) writes for a missing partition value.
pub const HIVE_DEFAULT_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// Why an archive cannot be read as a table.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("the archive `{0}` does not exist")]
    Missing(String),
    #[error("the archive `{url}` holds no Parquet files{others}")]
    Empty { url: String, others: String },
    #[error("cannot list the archive `{0}`: {1}")]
    List(String, ::object_store::Error),
    /// Files in different layouts: which layout most files have, and the others.
    #[error(
        "the archive `{url}` mixes partition layouts: {count} of {total} Parquet files are not in `{layout}` \
         (the layout of the other {rest}), so no answer would count them all: {files}. \
         Move or delete them, or query each layout on its own with --archive URL/PREFIX"
    )]
    Layout {
        url: String,
        layout: String,
        count: usize,
        total: usize,
        rest: usize,
        files: String,
    },
    /// A layout pipe query cannot read (DataFusion wants partition directories first).
    #[error(
        "`{file}` in the archive `{url}` has the partition directory `{dir}` below the plain directory `{plain}`: \
         pipe query reads `key=value` directories only as the leading levels; query below the plain \
         directories with --archive URL/PREFIX"
    )]
    Unsupported {
        url: String,
        file: String,
        dir: String,
        plain: String,
    },
    #[error("{0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    #[error("{0}")]
    Url(String),
}

/// An archive found and described.
#[derive(Debug, Clone)]
pub struct ArchiveTable {
    /// Columns stored in the files (merged over every file), without the partition
    /// columns: a field that is also a partition key is a partition column only.
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

/// The session settings [`register`] relies on: DataFusion reads files below plain
/// (non-`key=value`) directories too, as the layout check expects, instead of
/// skipping them.
pub fn session_config() -> SessionConfig {
    let mut config = SessionConfig::new().with_information_schema(true);
    config.options_mut().execution.listing_table_ignore_subdirectory = false;
    config
}

/// Lists `store` and registers it in `ctx` (made with [`session_config`]) as table
/// `name`.
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
    // Exactly the files DataFusion reads: every `.parquet` object below the root.
    let (parquet, others): (Vec<_>, Vec<_>) = listed
        .into_iter()
        .partition(|m| m.location.as_ref().ends_with(".parquet"));
    if parquet.is_empty() {
        let others = others
            .iter()
            .filter(|m| {
                !m.location
                    .filename()
                    .is_some_and(|f| f.starts_with('.') || f.starts_with('_'))
            })
            .count();
        let others = if others == 0 {
            " (it is empty)".to_string()
        } else {
            format!(" ({others} other files; pipe query reads Parquet archives)")
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
    let layout = layout(&store.url, &relative)?;

    let format = Arc::new(ParquetFormat::default());
    let mut readable: Vec<ObjectMeta> = parquet.iter().filter(|m| m.size > 0).cloned().collect();
    readable.sort_by(|a, b| a.location.cmp(&b.location));
    let state = ctx.state();
    // The futures are made before awaiting, so no closure is held across the await
    // (which would keep the future from being provably `Send`).
    let inferring: Vec<_> = readable
        .chunks(1)
        .map(|one| format.infer_schema(&state, &store.store, one))
        .collect();
    let schemas: Vec<SchemaRef> = futures::stream::iter(inferring).buffered(16).try_collect().await?;
    // A field that is also a partition key is read from the directory, as DuckDB does.
    let is_partition = |name: &str| layout.columns.iter().any(|c| c.name == name);
    let file_schema = merge_schemas(&schemas, is_partition);
    // Columns holding the Hive null are listed as strings and converted in a view.
    let listed_cols: Vec<(String, DataType)> = layout
        .columns
        .iter()
        .map(|c| {
            let t = if c.has_default {
                DataType::Utf8
            } else {
                c.data_type.clone()
            };
            (c.name.clone(), t)
        })
        .collect();
    let options = ListingOptions::new(format)
        .with_file_extension(".parquet")
        .with_table_partition_cols(listed_cols);
    let table_url = ListingTableUrl::parse(store.table_url())?;
    let config = ListingTableConfig::new(table_url)
        .with_listing_options(options)
        .with_schema(file_schema.clone());
    let listing: Arc<dyn TableProvider> = Arc::new(ListingTable::try_new(config)?);
    if layout.columns.iter().any(|c| c.has_default) {
        let mut columns: Vec<Expr> = file_schema.fields().iter().map(|f| ident(f.name())).collect();
        columns.extend(layout.columns.iter().map(|c| {
            if c.has_default {
                let value = nullif(ident(&c.name), lit(HIVE_DEFAULT_PARTITION));
                let value = if c.data_type == DataType::Utf8 {
                    value
                } else {
                    cast(value, c.data_type.clone())
                };
                value.alias(&c.name)
            } else {
                ident(&c.name)
            }
        }));
        let plan = LogicalPlanBuilder::scan(name, provider_as_source(listing), None)?
            .project(columns)?
            .build()?;
        ctx.register_table(name, Arc::new(ViewTable::new(plan, None)))?;
    } else {
        ctx.register_table(name, listing)?;
    }
    Ok(ArchiveTable {
        file_schema,
        partitions: layout.columns.into_iter().map(|c| (c.name, c.data_type)).collect(),
        files: parquet.len(),
    })
}

/// The files' columns by name, first seen first, leaving out partition keys. A
/// column whose type differs between files (the sink widens integers to floats,
/// and turns a field whose type varies into a string column from then on) gets a
/// type every file's values cast to, as DuckDB's `union_by_name` does: integers →
/// BIGINT, integers and floats → DOUBLE, anything else → string.
fn merge_schemas(schemas: &[SchemaRef], skip: impl Fn(&str) -> bool) -> SchemaRef {
    let mut fields: Vec<(String, DataType)> = Vec::new();
    for schema in schemas {
        for f in schema.fields() {
            if skip(f.name()) {
                continue;
            }
            match fields.iter_mut().find(|(n, _)| n == f.name()) {
                Some((_, t)) => *t = common_type(t, f.data_type()),
                None => fields.push((f.name().clone(), f.data_type().clone())),
            }
        }
    }
    Arc::new(Schema::new(
        fields
            .into_iter()
            .map(|(n, t)| Field::new(n, t, true))
            .collect::<Vec<_>>(),
    ))
}

fn common_type(a: &DataType, b: &DataType) -> DataType {
    match (a, b) {
        _ if a == b => a.clone(),
        (DataType::Null, t) | (t, DataType::Null) => t.clone(),
        _ if a.is_integer() && b.is_integer() => DataType::Int64,
        _ if a.is_numeric() && b.is_numeric() => DataType::Float64,
        _ => DataType::Utf8,
    }
}

/// A partition column found in the paths.
#[derive(Debug, Clone, PartialEq)]
struct PartitionColumn {
    name: String,
    /// The type of its values, `__HIVE_DEFAULT_PARTITION__` left out.
    data_type: DataType,
    /// Whether some directory holds `__HIVE_DEFAULT_PARTITION__` (NULL).
    has_default: bool,
}

/// The layout every file shares.
#[derive(Debug, Clone, PartialEq)]
struct Layout {
    columns: Vec<PartitionColumn>,
}

/// Where one file sits: its `key=value` levels, then how many plain directories.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Shape {
    keys: Vec<String>,
    plain: usize,
}

impl Shape {
    fn describe(&self) -> String {
        let mut s: String = self.keys.iter().map(|k| format!("{k}=…/")).collect();
        s += &"…/".repeat(self.plain);
        s + "FILE.parquet"
    }
}

/// Checks that every file (its path relative to the archive, in parts) sits in the
/// same layout, and types the partition columns.
fn layout(url: &str, files: &[Vec<String>]) -> Result<Layout, TableError> {
    let mut shapes: Vec<Shape> = Vec::with_capacity(files.len());
    for parts in files {
        let dirs = &parts[..parts.len().saturating_sub(1)];
        let mut shape = Shape { keys: vec![], plain: 0 };
        for (i, d) in dirs.iter().enumerate() {
            match d.split_once('=').filter(|(k, _)| !k.is_empty()) {
                Some((k, _)) if shape.plain > 0 => {
                    return Err(TableError::Unsupported {
                        url: url.to_string(),
                        file: parts.join("/"),
                        dir: format!("{k}=…"),
                        plain: dirs[i - 1].clone(),
                    });
                }
                Some((k, _)) => shape.keys.push(k.to_string()),
                None => shape.plain += 1,
            }
        }
        shapes.push(shape);
    }
    let mut counts: HashMap<&Shape, usize> = HashMap::new();
    for s in &shapes {
        *counts.entry(s).or_default() += 1;
    }
    // The layout of most files; ties go to the one seen first.
    let most = counts.values().copied().max().unwrap_or(0);
    let main = shapes
        .iter()
        .find(|s| counts[s] == most)
        .cloned()
        .unwrap_or(Shape { keys: vec![], plain: 0 });
    let odd: Vec<String> = files
        .iter()
        .zip(&shapes)
        .filter(|(_, s)| **s != main)
        .map(|(f, _)| format!("`{}`", f.join("/")))
        .collect();
    if !odd.is_empty() {
        let shown: Vec<String> = odd.iter().take(5).cloned().collect();
        let more = if odd.len() > shown.len() {
            format!(" and {} more", odd.len() - shown.len())
        } else {
            String::new()
        };
        return Err(TableError::Layout {
            url: url.to_string(),
            layout: main.describe(),
            count: odd.len(),
            total: files.len(),
            rest: files.len() - odd.len(),
            files: shown.join(", ") + &more,
        });
    }
    if let Some(k) = main
        .keys
        .iter()
        .enumerate()
        .find_map(|(i, k)| main.keys[..i].contains(k).then_some(k))
    {
        return Err(TableError::Layout {
            url: url.to_string(),
            layout: main.describe(),
            count: files.len(),
            total: files.len(),
            rest: 0,
            files: format!("the partition key `{k}` appears twice in every path"),
        });
    }
    let columns = main
        .keys
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let values = files.iter().filter_map(|f| f[i].split_once('=').map(|(_, v)| v));
            let has_default = values.clone().any(|v| v == HIVE_DEFAULT_PARTITION);
            PartitionColumn {
                name: name.clone(),
                data_type: value_type(values.filter(|v| *v != HIVE_DEFAULT_PARTITION)),
                has_default,
            }
        })
        .collect();
    Ok(Layout { columns })
}

/// Integers as written (no leading zero) → BIGINT, all `YYYY-MM-DD` → DATE, else
/// string; no value at all (only Hive nulls) → string. Leading zeros stay strings:
/// DataFusion lists `hour = 7` under `hour=7/`, never `hour=07/`.
fn value_type<'a>(values: impl Iterator<Item = &'a str> + Clone) -> DataType {
    let int = |v: &str| v.parse::<i64>().is_ok_and(|n| n.to_string() == v);
    let date = |v: &str| chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").is_ok() && v.len() == 10;
    if values.clone().next().is_none() {
        DataType::Utf8
    } else if values.clone().all(int) {
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

    fn files(paths: &[&str]) -> Vec<Vec<String>> {
        paths.iter().map(|p| parts(p)).collect()
    }

    fn column(name: &str, data_type: DataType, has_default: bool) -> PartitionColumn {
        PartitionColumn {
            name: name.into(),
            data_type,
            has_default,
        }
    }

    #[test]
    fn every_level_is_a_typed_partition_column() {
        let l = layout(
            "a",
            &files(&[
                "dt=2026-11-25/hour=13/n=7/service=api/a.parquet",
                "dt=2026-11-26/hour=02/n=0/service=web/b.parquet",
            ]),
        )
        .unwrap();
        assert_eq!(
            l.columns,
            vec![
                column("dt", DataType::Date32, false),
                column("hour", DataType::Utf8, false),
                column("n", DataType::Int64, false),
                column("service", DataType::Utf8, false),
            ]
        );
    }

    #[test]
    fn the_hive_null_is_null_and_does_not_type_the_column() {
        let l = layout(
            "a",
            &files(&[
                "a=1/b=__HIVE_DEFAULT_PARTITION__/x.parquet",
                "a=__HIVE_DEFAULT_PARTITION__/b=__HIVE_DEFAULT_PARTITION__/y.parquet",
                "a=2/b=__HIVE_DEFAULT_PARTITION__/z.parquet",
            ]),
        )
        .unwrap();
        assert_eq!(
            l.columns,
            vec![column("a", DataType::Int64, true), column("b", DataType::Utf8, true)]
        );
    }

    #[test]
    fn plain_directories_below_partitions_are_a_layout_too() {
        let l = layout(
            "a",
            &files(&["dt=2026-11-25/api/x.parquet", "dt=2026-11-26/web/y.parquet"]),
        )
        .unwrap();
        assert_eq!(l.columns, vec![column("dt", DataType::Date32, false)]);
        let l = layout("a", &files(&["nginx/2026/11/x.parquet", "app/2026/12/y.parquet"])).unwrap();
        assert!(l.columns.is_empty());
        assert!(matches!(
            layout("a", &files(&["nginx/dt=2026-11-25/x.parquet"])),
            Err(TableError::Unsupported { .. })
        ));
    }

    #[test]
    fn a_file_out_of_the_layout_is_an_error_naming_it() {
        let err = layout(
            "/arch",
            &files(&[
                "dt=2026-11-25/hour=1/a.parquet",
                "dt=2026-11-25/hour=2/b.parquet",
                "stray.parquet",
                "dt=2026-11-26/c.parquet",
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("2 of 4 Parquet files are not in `dt=…/hour=…/FILE.parquet`"),
            "{err}"
        );
        assert!(
            err.contains("`stray.parquet`") && err.contains("`dt=2026-11-26/c.parquet`"),
            "{err}"
        );
        // Plain directories count too: DataFusion would read both, DuckDB too, but a
        // level less is a different template.
        assert!(layout("a", &files(&["x/a.parquet", "b.parquet", "y/c.parquet"])).is_err());
        assert!(layout("a", &files(&["a=1/a=2/f.parquet"])).is_err());
    }

    #[test]
    fn schemas_merge_by_name_to_a_type_every_file_casts_to() {
        let schema = |fields: &[(&str, DataType)]| -> SchemaRef {
            Arc::new(Schema::new(
                fields
                    .iter()
                    .map(|(n, t)| Field::new(*n, t.clone(), true))
                    .collect::<Vec<_>>(),
            ))
        };
        let merged = merge_schemas(
            &[
                schema(&[("n", DataType::Int64), ("a", DataType::Int64), ("x", DataType::Int64)]),
                schema(&[("x", DataType::Float64), ("n", DataType::Int32), ("a", DataType::Utf8)]),
                schema(&[("y", DataType::Boolean), ("n", DataType::Utf8)]),
            ],
            |name| name == "a",
        );
        assert_eq!(
            merged,
            schema(&[
                ("n", DataType::Utf8),
                ("x", DataType::Float64),
                ("y", DataType::Boolean)
            ])
        );
    }

    #[test]
    fn value_types() {
        assert_eq!(value_type(["1", "23"].into_iter()), DataType::Int64);
        assert_eq!(value_type(["1", "07"].into_iter()), DataType::Utf8);
        assert_eq!(value_type(["2026-11-25"].into_iter()), DataType::Date32);
        assert_eq!(value_type([].into_iter()), DataType::Utf8);
    }
}
