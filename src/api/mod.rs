//! The API server: one loopback address (by default) serving Prometheus metrics,
//! health checks, the topology and its counters as JSON, and taps as server-sent
//! events, SQL over the topology's archives, and the web console at `/`. Configured by the `[api]` table or `--api ADDR|off`; off unless enabled, so
//! two pipes on one host never collide by default.

pub mod client;
mod console;
mod health;
mod query;
mod routes;
mod tap;

use crate::metrics::Registry;
use crate::secret::Secret;
use crate::tap::Taps;
use serde::Deserialize;
use std::sync::Arc;

/// The default address, Vector's.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:8686";

/// The `[api]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Serve the API. Default false.
    pub enabled: bool,
    /// Address to listen on, `HOST:PORT`; port 0 picks a free one (logged). Default
    /// `127.0.0.1:8686`.
    pub address: String,
    /// A bearer token every request but the health checks must present. Default none.
    pub token: Option<Secret>,
    /// Not ready (`/health/ready` 503) while a sink has written nothing for this many
    /// seconds with input waiting; 0 turns the check off. Default 0.
    pub sink_stall_secs: u64,
    /// An archive URL (a directory, `s3://…`, `gs://…`) to query besides the
    /// topology's `object_store` sinks. Default none.
    pub archive: Option<String>,
    /// Queries that may run at once; more are refused with 429. Default 1.
    pub max_queries: usize,
    /// Rows a query returns at most; the answer says `truncated` beyond. Default 10000.
    pub max_rows: usize,
    /// A query running longer is cancelled (504). Default 30.
    pub query_timeout_secs: u64,
    /// The query engine's memory pool, in MiB; a query needing more fails (sorts and
    /// aggregations spill to temporary files first). Default 512.
    pub query_memory_mib: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            enabled: false,
            address: DEFAULT_ADDRESS.to_string(),
            token: None,
            sink_stall_secs: 0,
            archive: None,
            max_queries: 1,
            max_rows: 10_000,
            query_timeout_secs: 30,
            query_memory_mib: 512,
        }
    }
}

/// The API's listening socket, bound before the topology starts.
pub struct Bound {
    listener: std::net::TcpListener,
    config: ApiConfig,
}

impl Bound {
    /// The address it listens on.
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        self.listener.local_addr().ok()
    }
}

/// Binds the API's address when it is enabled; a taken or invalid address is a
/// configuration error naming `api.address`.
pub fn bind(config: &ApiConfig) -> Result<Option<Bound>, String> {
    if !config.enabled {
        return Ok(None);
    }
    let listener = std::net::TcpListener::bind(&config.address)
        .and_then(|l| l.set_nonblocking(true).map(|_| l))
        .map_err(|e| {
            format!(
                "api.address: cannot listen on `{}`: {e} (set [api].address or --api to another address, or --api off)",
                config.address
            )
        })?;
    Ok(Some(Bound {
        listener,
        config: config.clone(),
    }))
}

/// What the handlers share.
#[derive(Clone)]
pub(crate) struct ApiState {
    registry: Arc<Registry>,
    taps: Arc<Taps>,
    config: Arc<ApiConfig>,
    archives: Arc<Vec<query::Archive>>,
    queries: Arc<tokio::sync::Semaphore>,
}

/// The archives the API served on `bound` can query: those of `nodes` and
/// `[api].archive`.
pub(crate) fn archives(bound: &Bound, nodes: &[crate::config::Node]) -> Vec<query::Archive> {
    query::archives(nodes, bound.config.archive.as_deref())
}

/// Serves the API on `bound` until the returned task is aborted.
pub(crate) fn serve(
    bound: Bound,
    registry: Arc<Registry>,
    taps: Arc<Taps>,
    archives: Vec<query::Archive>,
) -> tokio::task::JoinHandle<()> {
    let addr = bound.local_addr();
    let state = ApiState {
        registry,
        taps,
        archives: Arc::new(archives),
        queries: Arc::new(tokio::sync::Semaphore::new(bound.config.max_queries)),
        config: Arc::new(bound.config),
    };
    let app = routes::router(state);
    tokio::spawn(async move {
        let listener = match tokio::net::TcpListener::from_std(bound.listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "The API cannot use its socket; it is not served.");
                return;
            }
        };
        if let Some(addr) = addr {
            tracing::info!(address = %addr, url = %format!("http://{addr}/"), "API listening.");
        }
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "The API server stopped.");
        }
    })
}
