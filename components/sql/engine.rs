//! The DataFusion side of the `sql` transform: a session whose table `input` reads the
//! rows put in its slot, static tables from CSV or Parquet files, and the query
//! planned once per input schema and run again on each new set of rows.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::common::SchemaError;
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::execution_plan::reset_plan_states;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::physical_plan::{ExecutionPlan, SendableRecordBatchStream, collect};
use datafusion::prelude::{CsvReadOptions, ParquetReadOptions, SessionConfig, SessionContext};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Why the query cannot be planned.
#[derive(Debug)]
pub struct PlanError {
    /// DataFusion's message, with the columns of `input`.
    pub message: String,
    /// The column of `input` the query names but the schema lacks, if that is why.
    pub missing_column: Option<String>,
}

impl PlanError {
    fn other(e: impl std::fmt::Display) -> Self {
        PlanError {
            message: e.to_string(),
            missing_column: None,
        }
    }
}

/// A prepared query over table `input`.
pub struct Engine {
    ctx: SessionContext,
    query: String,
    rows: Arc<Mutex<Vec<RecordBatch>>>,
    prepared: Option<(SchemaRef, Arc<dyn ExecutionPlan>)>,
}

/// The `input` table's one partition: hands out the rows of the current run.
#[derive(Debug)]
struct Slot {
    schema: SchemaRef,
    rows: Arc<Mutex<Vec<RecordBatch>>>,
}

impl PartitionStream for Slot {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }
    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let rows = std::mem::take(&mut *self.rows.lock().unwrap_or_else(|e| e.into_inner()));
        Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            futures::stream::iter(rows.into_iter().map(Ok)),
        ))
    }
}

/// Checks the query's syntax, with the position of a mistake.
pub fn check_syntax(query: &str) -> Result<(), String> {
    let statements = datafusion::sql::parser::DFParser::parse_sql(query).map_err(|e| e.to_string())?;
    if statements.len() != 1 {
        return Err(format!("expected one SELECT statement, found {}", statements.len()));
    }
    Ok(())
}

impl Engine {
    /// A session with the static `tables` (name → CSV or Parquet file) registered.
    pub async fn new(query: &str, tables: &[(String, String)]) -> Result<Engine, String> {
        // One partition: small batches gain nothing from repartitioning, and the plan
        // is run again and again, which dynamic filters do not allow.
        let mut config = SessionConfig::new().with_target_partitions(1);
        let options = config.options_mut();
        options.optimizer.enable_dynamic_filter_pushdown = false;
        let ctx = SessionContext::new_with_config(config);
        for (name, path) in tables {
            if !Path::new(path).is_file() {
                return Err(format!("tables.{name}: no such file: {path}"));
            }
            let registered = if path.ends_with(".parquet") {
                ctx.register_parquet(name.as_str(), path, ParquetReadOptions::default())
                    .await
            } else if path.ends_with(".csv") {
                ctx.register_csv(name.as_str(), path, CsvReadOptions::new()).await
            } else {
                return Err(format!("tables.{name}: `{path}` is neither .csv nor .parquet"));
            };
            registered.map_err(|e| format!("tables.{name}: cannot read {path}: {e}"))?;
        }
        Ok(Engine {
            ctx,
            query: query.to_string(),
            rows: Arc::default(),
            prepared: None,
        })
    }

    /// Plans the query for an `input` of `schema` (once per schema).
    pub async fn prepare(&mut self, schema: SchemaRef) -> Result<(), PlanError> {
        if self.prepared.as_ref().is_some_and(|(s, _)| *s == schema) {
            return Ok(());
        }
        let slot = Arc::new(Slot {
            schema: schema.clone(),
            rows: self.rows.clone(),
        });
        let table = StreamingTable::try_new(schema.clone(), vec![slot]).map_err(PlanError::other)?;
        let _ = self.ctx.deregister_table("input");
        self.ctx
            .register_table("input", Arc::new(table))
            .map_err(PlanError::other)?;
        let columns: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let explain = |e: DataFusionError| {
            let missing_column = match e.find_root() {
                DataFusionError::SchemaError(err, _) => match err.as_ref() {
                    SchemaError::FieldNotFound { field, .. } => Some(field.name.clone()),
                    _ => None,
                },
                _ => None,
            };
            PlanError {
                message: format!("{e} (the columns of `input` are: {})", columns.join(", ")),
                missing_column,
            }
        };
        let df = self.ctx.sql(&self.query).await.map_err(explain)?;
        let plan = df.create_physical_plan().await.map_err(explain)?;
        self.prepared = Some((schema, plan));
        Ok(())
    }

    /// Runs the prepared query over `rows`.
    pub async fn run(&mut self, rows: RecordBatch) -> Result<Vec<RecordBatch>, String> {
        let Some((schema, plan)) = &self.prepared else {
            return Err("the query is not prepared".into());
        };
        if rows.schema() != *schema {
            return Err("rows do not match the prepared schema".into());
        }
        *self.rows.lock().unwrap_or_else(|e| e.into_inner()) = vec![rows];
        let plan = reset_plan_states(plan.clone()).map_err(|e| e.to_string())?;
        collect(plan, self.ctx.task_ctx()).await.map_err(|e| e.to_string())
    }
}
