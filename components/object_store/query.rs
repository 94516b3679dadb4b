//! `pipe query`: one read-only SQL statement over an archive, printed as an aligned
//! table, CSV, JSON lines or Parquet. The read-only check ([`check_read_only`], from
//! [`super::read_only`]) runs before the archive is opened.

pub use super::read_only::{ReadOnlyError, check_read_only};
use super::store::{Store, StoreOptions};
use super::table::{self, ArchiveTable, TableError};
use arrow::array::RecordBatch;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use std::io::Write;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// An aligned text table (default).
    Table,
    /// CSV with a header row.
    Csv,
    /// One JSON object per row.
    Json,
    /// A Parquet file (zstd).
    Parquet,
}

/// A query to run.
#[derive(Debug, Clone)]
pub struct Query {
    pub url: String,
    pub store: StoreOptions,
    pub table: String,
    pub sql: String,
    pub format: OutputFormat,
}

/// Why a query gave no result.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// Not one read-only statement; nothing was run.
    #[error("{0}")]
    ReadOnly(#[from] ReadOnlyError),
    #[error("{0}")]
    Store(#[from] super::store::StoreError),
    #[error("{0}")]
    Table(#[from] TableError),
    #[error("{message}\ncolumns of `{table}`: {columns}")]
    Sql {
        message: String,
        table: String,
        columns: String,
    },
    #[error("{0}")]
    Execution(datafusion::error::DataFusionError),
    #[error("cannot write the result: {0}")]
    Output(String),
}

impl From<std::io::Error> for QueryError {
    fn from(e: std::io::Error) -> Self {
        QueryError::Output(e.to_string())
    }
}

/// A session over the archive `url`, registered as table `name`.
pub async fn session(
    url: &str,
    store: &StoreOptions,
    name: &str,
) -> Result<(SessionContext, ArchiveTable), QueryError> {
    let store = Store::open(url, store, false)?;
    let ctx = SessionContext::new_with_config(table::session_config());
    let described = table::register(&ctx, &store, name).await?;
    Ok((ctx, described))
}

/// Runs `q` and writes its result to `out`; returns the number of rows. SQL that is
/// not one read-only statement is refused before the archive is opened.
pub async fn run(q: &Query, out: &mut (dyn Write + Send)) -> Result<u64, QueryError> {
    check_read_only(&q.sql)?;
    let (ctx, described) = session(&q.url, &q.store, &q.table).await?;
    let sql_error = |e: datafusion::error::DataFusionError| QueryError::Sql {
        message: e.strip_backtrace(),
        table: q.table.clone(),
        columns: described.describe_columns(),
    };
    let plan = ctx.state().create_logical_plan(&q.sql).await.map_err(sql_error)?;
    super::read_only::verify_plan(&plan)?;
    let df = ctx.execute_logical_plan(plan).await.map_err(sql_error)?;
    let schema = df.schema().inner().clone();
    let mut stream = df.execute_stream().await.map_err(sql_error)?;
    let mut rows = 0u64;
    match q.format {
        OutputFormat::Table => {
            let mut batches: Vec<RecordBatch> = Vec::new();
            while let Some(b) = stream.next().await {
                let b = b.map_err(QueryError::Execution)?;
                rows += b.num_rows() as u64;
                batches.push(b);
            }
            let text =
                arrow::util::pretty::pretty_format_batches(&batches).map_err(|e| QueryError::Output(e.to_string()))?;
            writeln!(out, "{text}")?;
            writeln!(out, "{rows} row{}", if rows == 1 { "" } else { "s" })?;
        }
        OutputFormat::Csv => {
            let mut w = arrow::csv::WriterBuilder::new().with_header(true).build(&mut *out);
            let mut wrote_any = false;
            while let Some(b) = stream.next().await {
                let b = b.map_err(QueryError::Execution)?;
                rows += b.num_rows() as u64;
                w.write(&b).map_err(|e| QueryError::Output(e.to_string()))?;
                wrote_any = true;
            }
            if !wrote_any {
                w.write(&RecordBatch::new_empty(schema))
                    .map_err(|e| QueryError::Output(e.to_string()))?;
            }
        }
        OutputFormat::Json => {
            let mut w = arrow::json::LineDelimitedWriter::new(&mut *out);
            while let Some(b) = stream.next().await {
                let b = b.map_err(QueryError::Execution)?;
                rows += b.num_rows() as u64;
                w.write(&b).map_err(|e| QueryError::Output(e.to_string()))?;
            }
            w.finish().map_err(|e| QueryError::Output(e.to_string()))?;
        }
        OutputFormat::Parquet => {
            let props = parquet::file::properties::WriterProperties::builder()
                .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
                .build();
            let mut w = parquet::arrow::ArrowWriter::try_new(&mut *out, schema, Some(props))
                .map_err(|e| QueryError::Output(e.to_string()))?;
            while let Some(b) = stream.next().await {
                let b = b.map_err(QueryError::Execution)?;
                rows += b.num_rows() as u64;
                w.write(&b).map_err(|e| QueryError::Output(e.to_string()))?;
            }
            w.close().map_err(|e| QueryError::Output(e.to_string()))?;
        }
    }
    out.flush()?;
    Ok(rows)
}
