//! BigQuery: the `bigquery` sink. Stream mode appends rows through the Storage
//! Write API (or the legacy `insertAll`); load mode writes archive files to GCS and
//! loads them with load jobs, each file exactly once.

mod append;
pub mod config;
mod count;
pub mod events;
mod insert_all;
mod journal;
mod load;
mod rest;
pub mod rows;
pub mod schema;
mod sink;
mod storage_write;

/// The generated Storage Write API types (protobuf messages and the gRPC client).
pub use googleapis_tonic_google_cloud_bigquery_storage_v1::google::cloud::bigquery::storage::v1 as storage_v1;

use crate::component::{BuildContext, BuildError, Built, ComponentDef, Kind, parse_options};
use crate::metrics::ComponentMetrics;
use crate::retry::Retry;
use config::{Api, BigQueryConfig, Checked, Mode};
use rest::Rest;
use std::sync::Arc;
use std::time::Duration;

/// The `bigquery` sink.
pub const SINK: ComponentDef = ComponentDef {
    kind: Kind::Sink,
    name: "bigquery",
    doc: "Streams rows into BigQuery (Storage Write API or insertAll) or loads archive files with load jobs.",
    build,
    options: || schemars::schema_for!(BigQueryConfig),
    example: include_str!("example.toml"),
    events: events::EVENTS,
    gauges: events::GAUGES,
    commands: &[],
    count: Some(count::count),
    query: None,
};

/// Builds the `bigquery` sink.
fn build(cx: &BuildContext, options: toml::Value) -> Result<Built, BuildError> {
    let config: BigQueryConfig = parse_options(options)?;
    let cfg = Arc::new(config.check()?);
    let credentials = cfg.credentials()?;
    let timeout = Duration::from_secs(cfg.config.request_timeout_secs);
    let rest =
        Rest::new(cfg.rest_base.clone(), credentials.clone(), timeout).map_err(|e| BuildError::key("endpoint", e))?;
    match cfg.config.mode {
        Mode::Stream => {
            let storage = match cfg.config.api {
                Api::StorageWrite => Some(
                    storage_write::StorageWrite::new(&cfg.storage_endpoint, credentials, timeout)
                        .map_err(|e| BuildError::key("storage_endpoint", e))?,
                ),
                Api::InsertAll => None,
            };
            Ok(Built::sink(sink::StreamSink { cfg, rest, storage }).with_outputs(vec!["dropped".into()]))
        }
        Mode::Load => load::build(cx, cfg, rest),
    }
}

/// At start: the table (or, for a templated table, the dataset) exists and can be
/// read. With `healthcheck`, waits (the inputs wait) until BigQuery answers; a
/// missing table is reported, and its events go to `ID.dropped`.
async fn healthcheck(cfg: &Checked, rest: &Rest, metrics: &ComponentMetrics) {
    let c = &cfg.config;
    let mut retry = Retry::new("BigQuery healthchecks");
    let failed = metrics.emitter::<events::RequestFailed>();
    loop {
        let answer = if cfg.table.is_static() {
            rest.get_table(&c.dataset, &c.table).await.map(|t| t.is_some())
        } else {
            rest.dataset_exists(&c.dataset).await
        };
        let what = if cfg.table.is_static() {
            format!("{}.{}.{}", c.project, c.dataset, c.table)
        } else {
            format!("{}.{}", c.project, c.dataset)
        };
        match answer {
            Ok(true) => {
                retry.succeeded(metrics);
                tracing::info!(component = %metrics.id, target = %what, "BigQuery is reachable and the table is there.");
                return;
            }
            Ok(false) if c.create_table && cfg.table.is_static() => return,
            Ok(false) => {
                tracing::error!(component = %metrics.id, target = %what, "The BigQuery table or dataset does not exist; its events go to the dropped output.");
                return;
            }
            Err(e) if !c.healthcheck => {
                tracing::warn!(component = %metrics.id, target = %what, error = %e, "BigQuery healthcheck failed; continuing (healthcheck = false).");
                return;
            }
            Err(e) => retry.wait(&e, &failed, metrics).await,
        }
    }
}
