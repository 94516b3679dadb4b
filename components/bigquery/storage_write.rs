//! The Storage Write API over gRPC: opening `AppendRows` connections to a write
//! stream (the table's `_default` stream, or a COMMITTED stream the sink creates),
//! with the credentials and routing headers BigQuery wants, and saying of every
//! gRPC status whose fault it is and whether to retry.

use super::storage_v1::big_query_write_client::BigQueryWriteClient;
use super::storage_v1::{AppendRowsRequest, AppendRowsResponse, CreateWriteStreamRequest, WriteStream, write_stream};
use crate::components::object_store::google_auth::GoogleCredentials;
use crate::error::ComponentError;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tonic::Code;
use tonic::codec::Streaming;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

/// The largest message either way (requests stay under 10 MB; answers are small).
const MAX_MESSAGE: usize = 20 << 20;

/// A client of the Storage Write API.
#[derive(Clone)]
pub struct StorageWrite {
    endpoint: Endpoint,
    /// Made on first use, inside the runtime: a channel spawns its worker task when
    /// it is made, and the sink is built before the runtime runs.
    client: Arc<OnceLock<BigQueryWriteClient<Channel>>>,
    credentials: Arc<GoogleCredentials>,
}

/// One open `AppendRows` call: requests go in through `requests`, answers come
/// back in order on `responses`.
pub struct Connection {
    pub requests: mpsc::Sender<AppendRowsRequest>,
    pub responses: Streaming<AppendRowsResponse>,
    /// Reopen by then: the token it was opened with expires soon after.
    pub reopen_at: Option<Instant>,
}

impl Connection {
    /// Sends one request; an error means the call is gone (reopen).
    pub async fn send(
        requests: mpsc::Sender<AppendRowsRequest>,
        request: AppendRowsRequest,
    ) -> Result<(), ComponentError> {
        requests
            .send(request)
            .await
            .map_err(|_| ComponentError::external("the AppendRows call closed".to_string()))
    }
}

/// Why an `AppendRows` call could not be opened, with BigQuery's code when it
/// answered one.
pub struct OpenFailed {
    pub error: ComponentError,
    pub code: Option<Code>,
}

impl From<ComponentError> for OpenFailed {
    fn from(error: ComponentError) -> Self {
        OpenFailed { error, code: None }
    }
}

/// What a gRPC status means for the sink.
pub fn classify(status: &tonic::Status) -> ComponentError {
    let text = format!("BigQuery Storage Write: {:?}: {}", status.code(), status.message());
    match status.code() {
        Code::Unavailable
        | Code::Internal
        | Code::Aborted
        | Code::ResourceExhausted
        | Code::DeadlineExceeded
        | Code::Unauthenticated
        | Code::Unknown
        | Code::Cancelled => ComponentError::external(text),
        Code::InvalidArgument | Code::OutOfRange | Code::FailedPrecondition => ComponentError::data(text),
        _ => ComponentError::config(text),
    }
}

impl StorageWrite {
    /// A client of `endpoint` (`https://…`, or `http://…` in plaintext for
    /// emulators); connects on first use.
    pub fn new(endpoint: &str, credentials: Arc<GoogleCredentials>, timeout: Duration) -> Result<Self, String> {
        let mut e = Endpoint::from_shared(endpoint.to_string())
            .map_err(|e| format!("`{endpoint}` is not a URL: {e}"))?
            .connect_timeout(Duration::from_secs(10))
            .tcp_keepalive(Some(Duration::from_secs(30)))
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(timeout);
        if endpoint.starts_with("https://") {
            e = e
                .tls_config(ClientTlsConfig::new().with_native_roots())
                .map_err(|e| format!("TLS for `{endpoint}`: {e}"))?;
        }
        Ok(StorageWrite {
            endpoint: e,
            client: Arc::new(OnceLock::new()),
            credentials,
        })
    }

    /// The client, sharing one channel (connected on first use).
    fn client(&self) -> BigQueryWriteClient<Channel> {
        self.client
            .get_or_init(|| {
                BigQueryWriteClient::new(self.endpoint.connect_lazy())
                    .max_decoding_message_size(MAX_MESSAGE)
                    .max_encoding_message_size(MAX_MESSAGE)
            })
            .clone()
    }

    /// Adds the token and the routing header to a request for `resource`.
    async fn prepare<T>(
        &self,
        request: &mut tonic::Request<T>,
        param: &str,
        resource: &str,
    ) -> Result<Option<Instant>, ComponentError> {
        let token = self.credentials.token().await.map_err(ComponentError::from)?;
        let routing = format!(
            "{param}={}",
            percent_encoding::utf8_percent_encode(resource, percent_encoding::NON_ALPHANUMERIC)
        );
        let bad = |e| ComponentError::config(format!("a header BigQuery needs cannot be sent: {e}"));
        request
            .metadata_mut()
            .insert("x-goog-request-params", routing.parse().map_err(bad)?);
        let Some(token) = token else { return Ok(None) };
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", token.bearer).parse().map_err(bad)?,
        );
        Ok(Some(token.refresh_at))
    }

    /// Creates a COMMITTED stream on `table` (`projects/P/datasets/D/tables/T`);
    /// returns its name.
    pub async fn create_committed_stream(&self, table: &str) -> Result<String, ComponentError> {
        let mut request = tonic::Request::new(CreateWriteStreamRequest {
            parent: table.to_string(),
            write_stream: Some(WriteStream {
                r#type: write_stream::Type::Committed as i32,
                ..Default::default()
            }),
        });
        self.prepare(&mut request, "parent", table).await?;
        let stream = self
            .client()
            .create_write_stream(request)
            .await
            .map_err(|s| classify(&s))?;
        Ok(stream.into_inner().name)
    }

    /// Opens an `AppendRows` call on `stream` with `first` as its first request
    /// (sent before waiting for the answer headers, which servers send only then).
    pub async fn open(
        &self,
        stream: &str,
        first: AppendRowsRequest,
        timeout: Duration,
    ) -> Result<Connection, OpenFailed> {
        let (tx, rx) = mpsc::channel(64);
        tx.send(first)
            .await
            .map_err(|_| ComponentError::internal("the request channel closed at once".to_string()))?;
        let mut request = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
        let reopen_at = self.prepare(&mut request, "write_stream", stream).await?;
        let mut client = self.client();
        let responses = match tokio::time::timeout(timeout, client.append_rows(request)).await {
            Ok(Ok(r)) => r.into_inner(),
            Ok(Err(status)) => {
                return Err(OpenFailed {
                    error: classify(&status),
                    code: Some(status.code()),
                });
            }
            Err(_) => {
                return Err(ComponentError::external(format!(
                    "BigQuery Storage Write did not answer AppendRows within {} s",
                    timeout.as_secs()
                ))
                .into());
            }
        };
        Ok(Connection {
            requests: tx,
            responses,
            reopen_at,
        })
    }
}
