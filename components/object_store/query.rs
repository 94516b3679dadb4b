//! One read-only SQL statement over an archive: printed as an aligned table, CSV, JSON
//! lines or Parquet by `pipe query` ([`run`]), or answered as JSON rows to the API's
//! `POST /api/v1/query` ([`QUERY`]). The read-only check ([`check_read_only`], from
//! [`super::read_only`]) runs before the archive is opened; the plan is checked again
//! before it runs.

pub use super::read_only::{ReadOnlyError, check_read_only};
use super::store::{Store, StoreOptions};
use super::table::{self, ArchiveTable, TableError};
use crate::queryable::{ArchiveInfo, QueryAnswer, QueryDef, QueryFailure, QueryRequest};
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use std::io::Write;
use std::sync::Arc;

/// The table name an archive is queried as.
pub const TABLE: &str = "logs";

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
    /// The query engine's memory pool in bytes; a query needing more fails. None: unbounded.
    pub memory_bytes: Option<usize>,
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

/// A session over the archive `url`, registered as table `name`, with a memory pool of
/// `memory_bytes` when given.
pub async fn session(
    url: &str,
    store: &StoreOptions,
    name: &str,
    memory_bytes: Option<usize>,
) -> Result<(SessionContext, ArchiveTable), QueryError> {
    let store = Store::open(url, store, false)?;
    let mut runtime = RuntimeEnvBuilder::new();
    if let Some(bytes) = memory_bytes {
        runtime = runtime.with_memory_pool(Arc::new(FairSpillPool::new(bytes)));
    }
    let runtime = runtime.build_arc().map_err(QueryError::Execution)?;
    let ctx = SessionContext::new_with_config_rt(table::session_config(), runtime);
    let described = table::register(&ctx, &store, name).await?;
    Ok((ctx, described))
}

/// Plans `q.sql` over the archive, checks the plan is read-only, and starts it.
async fn execute(q: &Query) -> Result<(SchemaRef, SendableRecordBatchStream), QueryError> {
    check_read_only(&q.sql)?;
    let (ctx, described) = session(&q.url, &q.store, &q.table, q.memory_bytes).await?;
    let sql_error = |e: datafusion::error::DataFusionError| QueryError::Sql {
        message: e.strip_backtrace(),
        table: q.table.clone(),
        columns: described.describe_columns(),
    };
    let plan = ctx.state().create_logical_plan(&q.sql).await.map_err(sql_error)?;
    super::read_only::verify_plan(&plan)?;
    let df = ctx.execute_logical_plan(plan).await.map_err(sql_error)?;
    let schema = df.schema().inner().clone();
    let stream = df.execute_stream().await.map_err(sql_error)?;
    Ok((schema, stream))
}

/// Runs `q` and writes its result to `out`; returns the number of rows. SQL that is
/// not one read-only statement is refused before the archive is opened.
pub async fn run(q: &Query, out: &mut (dyn Write + Send)) -> Result<u64, QueryError> {
    let (schema, mut stream) = execute(q).await?;
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

/// The `object_store` sink's SQL hook: its archive, read back as table `logs`.
pub const QUERY: QueryDef = QueryDef {
    describe,
    run: |request| Box::pin(answer(request)),
    options_for_url: |url| toml::Table::from_iter([("url".to_string(), toml::Value::String(url.to_string()))]),
};

/// Where the sink with `options` archives to, and its store options.
fn location(options: &toml::Table) -> Result<(String, StoreOptions), String> {
    let checked = crate::component::parse_options::<super::ArchiveConfig>(toml::Value::Table(options.clone()))
        .and_then(super::ArchiveConfig::check)
        .map_err(|e| e.to_string())?;
    Ok((checked.config.url, checked.store))
}

fn describe(options: &toml::Table) -> Result<ArchiveInfo, String> {
    let (url, _) = location(options)?;
    Ok(ArchiveInfo {
        url,
        table: TABLE.to_string(),
    })
}

/// Answers `request` with at most `max_rows` rows, in a memory pool of `memory_bytes`.
async fn answer(request: QueryRequest) -> Result<QueryAnswer, QueryFailure> {
    let (url, store) = location(&request.options).map_err(QueryFailure::Unavailable)?;
    let q = Query {
        url,
        store,
        table: TABLE.to_string(),
        sql: request.sql,
        format: OutputFormat::Json,
        memory_bytes: Some(request.memory_bytes),
    };
    let failure = |e: QueryError| match e {
        QueryError::Store(_) | QueryError::Table(_) => QueryFailure::Unavailable(e.to_string()),
        _ => QueryFailure::Refused(e.to_string()),
    };
    let (schema, mut stream) = execute(&q).await.map_err(failure)?;
    let mut result = QueryAnswer::new(&schema);
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| QueryFailure::Refused(e.strip_backtrace()))?;
        if result
            .push(&batch, request.max_rows)
            .map_err(|e| QueryFailure::Refused(e.to_string()))?
        {
            break;
        }
    }
    Ok(result)
}
