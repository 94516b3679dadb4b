//! An in-process fake of BigQuery for what bqemulator cannot show: it never sends
//! `row_errors`, never fails an append with a transient code, never hangs, takes any
//! token or none, and stores rows missing REQUIRED fields. This fake answers like
//! BigQuery does in those cases, and can be scripted to:
//!
//! - refuse rows whose field X equals V with `row_errors` (FIELDS_ERROR and a
//!   message, the whole append refused: BigQuery appends nothing of it), and rows
//!   missing a REQUIRED column the same way;
//! - refuse a whole append holding such a row with INVALID_ARGUMENT and no row
//!   errors;
//! - answer append number N with a gRPC code, inline (`AppendRowsResponse.error`, the
//!   call stays open) or as the status that ends the call, before or *after*
//!   appending its rows (then the answer is lost), or never answer it (a hang);
//! - refuse every append for a while;
//! - require `authorization: Bearer <token>` on REST and gRPC, where the token must
//!   be one the fake token server ([`TokenServer`]) issued and not expired, counting
//!   every request that came with an expired one.
//!
//! What it serves: the Storage Write API over gRPC (`AppendRows` on `_default` and on
//! COMMITTED streams with BigQuery's offset rules — ALREADY_EXISTS for an offset
//! already written, OUT_OF_RANGE for one beyond the end — and `CreateWriteStream`),
//! implemented by hand on tonic's server machinery (the Storage Write crate has only
//! the client), and the REST calls the sink makes (`datasets.get`, `tables.get`,
//! `tables.insert`, `tabledata.insertAll` with `insertId` de-duplication). Rows are
//! decoded with the append's `writer_schema` (prost-reflect), checked against the
//! table's schema, and kept per table.
#![allow(dead_code)]

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use pipe::components::bigquery::storage_v1::append_rows_request::Rows;
use pipe::components::bigquery::storage_v1::append_rows_response::{AppendResult, Response as Answer};
use pipe::components::bigquery::storage_v1::row_error::RowErrorCode;
use pipe::components::bigquery::storage_v1::{
    AppendRowsRequest, AppendRowsResponse, CreateWriteStreamRequest, RowError, WriteStream, write_stream,
};
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, ReflectMessage, Value as Proto};
use serde_json::{Map, Value as Json, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codec::{ProstCodec, Streaming};
use tonic::codegen::{BoxFuture, Service, http};
use tonic::server::{Grpc, NamedService, StreamingService, UnaryService};
use tonic::{Code, Status};

const SERVICE: &str = "google.cloud.bigquery.storage.v1.BigQueryWrite";

/// What to do to one append (by its number, counting every AppendRows request the
/// fake received, from 1).
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with an inline `error` of this code; nothing appended, the call stays.
    Inline(Code),
    /// End the call with this status; nothing appended.
    EndCall(Code),
    /// Append the rows, then end the call with this status: the answer is lost.
    AppendThenEndCall(Code),
    /// Never answer it, nor anything after it on its call.
    Hang,
}

/// How the fake misbehaves; change it with [`FakeBigQuery::script`].
#[derive(Debug, Default)]
pub struct Script {
    pub faults: HashMap<u64, Fault>,
    /// Rows whose field equals the value are refused with `row_errors` and the
    /// message.
    pub refuse_rows: Vec<(String, Json, String)>,
    /// An append holding a row whose field equals the value is refused with
    /// INVALID_ARGUMENT and no row errors.
    pub invalid_rows: Vec<(String, Json)>,
    /// While set, every append is answered with an inline error of this code.
    pub refuse_all: Option<Code>,
}

/// What the fake saw and answered.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub calls: u64,
    pub appends: u64,
    pub appended_rows: u64,
    /// Appends ignored on a call that hangs.
    pub ignored: u64,
    pub faults: u64,
    pub refused_all: u64,
    /// Rows named in `row_errors`.
    pub row_errors: u64,
    /// Appends refused INVALID_ARGUMENT without row errors.
    pub invalid_argument: u64,
    pub already_exists: u64,
    pub out_of_range: u64,
    pub required_missing: u64,
    pub streams_created: u64,
    /// Requests (REST or gRPC) with a token that had expired.
    pub expired_tokens: u64,
    /// Requests without a token, or with one the token server never issued.
    pub bad_tokens: u64,
    /// Requests that carried a current token.
    pub good_tokens: u64,
    pub rest_requests: u64,
    pub insert_all_rows: u64,
    pub insert_all_rows_without_id: u64,
    pub duplicate_insert_ids: u64,
}

/// A table of the fake.
struct Table {
    /// BigQuery JSON schema fields.
    fields: Vec<Json>,
    rows: Vec<Map<String, Json>>,
    /// COMMITTED streams: name → next offset.
    streams: HashMap<String, i64>,
    insert_ids: HashSet<String>,
}

impl Table {
    fn column(&self, name: &str) -> Option<&Json> {
        self.fields.iter().find(|f| f["name"] == name)
    }

    fn required(&self) -> Vec<String> {
        self.fields
            .iter()
            .filter(|f| f["mode"] == "REQUIRED")
            .filter_map(|f| f["name"].as_str().map(str::to_string))
            .collect()
    }
}

struct FakeState {
    tables: BTreeMap<String, Table>,
    script: Script,
    stats: Stats,
}

struct Inner {
    project: String,
    dataset: String,
    state: Mutex<FakeState>,
    tokens: Option<TokenServer>,
}

/// The fake BigQuery (REST and gRPC on their own loopback ports), stopped on drop.
pub struct FakeBigQuery {
    inner: Arc<Inner>,
    pub rest_port: u16,
    pub grpc_port: u16,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl FakeBigQuery {
    /// Serves `project.dataset` with `tables` (name, JSON schema fields). With
    /// `tokens`, every request must carry a current token of that server.
    pub async fn start(project: &str, dataset: &str, tables: &[(&str, Json)], tokens: Option<&TokenServer>) -> Self {
        let tables = tables
            .iter()
            .map(|(name, fields)| {
                let table = Table {
                    fields: fields.as_array().expect("schema fields").clone(),
                    rows: Vec::new(),
                    streams: HashMap::new(),
                    insert_ids: HashSet::new(),
                };
                (name.to_string(), table)
            })
            .collect();
        let inner = Arc::new(Inner {
            project: project.to_string(),
            dataset: dataset.to_string(),
            state: Mutex::new(FakeState {
                tables,
                script: Script::default(),
                stats: Stats::default(),
            }),
            tokens: tokens.cloned(),
        });
        let rest = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (rest_port, grpc_port) = (rest.local_addr().unwrap().port(), grpc.local_addr().unwrap().port());
        let app = rest_router(inner.clone());
        let mut tasks = vec![tokio::spawn(async move {
            let _ = axum::serve(rest, app).await;
        })];
        let service = WriteService(inner.clone());
        tasks.push(tokio::spawn(async move {
            let incoming = tonic::transport::server::TcpIncoming::from(grpc);
            let _ = tonic::transport::Server::builder()
                .serve_with_incoming(service, incoming)
                .await;
        }));
        FakeBigQuery {
            inner,
            rest_port,
            grpc_port,
            tasks,
        }
    }

    /// The sink's `endpoint`.
    pub fn rest(&self) -> String {
        format!("http://127.0.0.1:{}", self.rest_port)
    }

    /// The sink's `storage_endpoint`.
    pub fn grpc(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }

    /// Changes the script.
    pub fn script(&self, change: impl FnOnce(&mut Script)) {
        change(&mut self.inner.state.lock().unwrap().script);
    }

    /// Scripts `fault` for the `k`-th append from now (1: the next one).
    pub fn fault_in(&self, k: u64, fault: Fault) {
        let mut s = self.inner.state.lock().unwrap();
        let number = s.stats.appends + k;
        s.script.faults.insert(number, fault);
    }

    pub fn stats(&self) -> Stats {
        self.inner.state.lock().unwrap().stats.clone()
    }

    /// The rows of `table`, in the order they were appended.
    pub fn rows(&self, table: &str) -> Vec<Map<String, Json>> {
        self.inner.state.lock().unwrap().tables[table].rows.clone()
    }

    /// The integer `field` of every row of `table`, sorted.
    pub fn ints(&self, table: &str, field: &str) -> Vec<i64> {
        let mut v: Vec<i64> = self.rows(table).iter().filter_map(|r| r.get(field)?.as_i64()).collect();
        v.sort_unstable();
        v
    }
}

impl Drop for FakeBigQuery {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Whether a request may pass.
enum Auth {
    Pass,
    Refuse(String),
}

impl Inner {
    /// Checks `bearer` when tokens are required, counting what came.
    fn auth(&self, state: &mut FakeState, bearer: Option<&str>) -> Auth {
        let Some(tokens) = &self.tokens else { return Auth::Pass };
        match bearer.map(|b| tokens.state(b)) {
            Some(TokenState::Current) => {
                state.stats.good_tokens += 1;
                Auth::Pass
            }
            Some(TokenState::Expired) => {
                state.stats.expired_tokens += 1;
                Auth::Refuse("Request had invalid authentication credentials: the access token expired.".into())
            }
            _ => {
                state.stats.bad_tokens += 1;
                Auth::Refuse("Request is missing required authentication credential.".into())
            }
        }
    }
}

/// The bearer token of an `authorization` header value.
fn bearer(value: Option<&str>) -> Option<String> {
    value.and_then(|v| v.strip_prefix("Bearer ")).map(str::to_string)
}

// ---- gRPC --------------------------------------------------------------------

#[derive(Clone)]
struct WriteService(Arc<Inner>);

impl NamedService for WriteService {
    const NAME: &'static str = SERVICE;
}

impl Service<http::Request<tonic::body::Body>> for WriteService {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let inner = self.0.clone();
        Box::pin(async move {
            let path = request.uri().path().to_string();
            let response = match path.strip_prefix(&format!("/{SERVICE}/")) {
                Some("AppendRows") => {
                    let mut grpc = Grpc::new(ProstCodec::<AppendRowsResponse, AppendRowsRequest>::default())
                        .max_decoding_message_size(20 << 20);
                    grpc.streaming(AppendRowsCall(inner), request).await
                }
                Some("CreateWriteStream") => {
                    let mut grpc = Grpc::new(ProstCodec::<WriteStream, CreateWriteStreamRequest>::default());
                    grpc.unary(CreateStream(inner), request).await
                }
                _ => Status::unimplemented(format!("the fake does not serve {path}")).into_http(),
            };
            Ok(response)
        })
    }
}

struct CreateStream(Arc<Inner>);

impl UnaryService<CreateWriteStreamRequest> for CreateStream {
    type Response = WriteStream;
    type Future = BoxFuture<tonic::Response<WriteStream>, Status>;

    fn call(&mut self, request: tonic::Request<CreateWriteStreamRequest>) -> Self::Future {
        let inner = self.0.clone();
        Box::pin(async move {
            let token = bearer(request.metadata().get("authorization").and_then(|v| v.to_str().ok()));
            let mut s = inner.state.lock().unwrap();
            if let Auth::Refuse(why) = inner.auth(&mut s, token.as_deref()) {
                return Err(Status::unauthenticated(why));
            }
            let r = request.into_inner();
            let kind = r.write_stream.as_ref().map(|w| w.r#type).unwrap_or_default();
            if kind != write_stream::Type::Committed as i32 {
                return Err(Status::unimplemented("the fake makes COMMITTED streams only"));
            }
            let table = table_of(&inner, &r.parent).ok_or_else(|| Status::invalid_argument("Invalid parent"))?;
            s.stats.streams_created += 1;
            let name = format!("{}/streams/fake{}", r.parent, s.stats.streams_created);
            let Some(t) = s.tables.get_mut(&table) else {
                return Err(Status::not_found(format!(
                    "Requested entity was not found. Entity: {}",
                    r.parent
                )));
            };
            t.streams.insert(name.clone(), 0);
            Ok(tonic::Response::new(WriteStream {
                name,
                r#type: kind,
                ..Default::default()
            }))
        })
    }
}

/// `projects/P/datasets/D/tables/T` → T, when P and D are the fake's.
fn table_of(inner: &Inner, path: &str) -> Option<String> {
    let rest = path.strip_prefix(&format!(
        "projects/{}/datasets/{}/tables/",
        inner.project, inner.dataset
    ))?;
    (!rest.is_empty() && !rest.contains('/')).then(|| rest.to_string())
}

struct AppendRowsCall(Arc<Inner>);

impl StreamingService<AppendRowsRequest> for AppendRowsCall {
    type Response = AppendRowsResponse;
    type ResponseStream = ReceiverStream<Result<AppendRowsResponse, Status>>;
    type Future = BoxFuture<tonic::Response<Self::ResponseStream>, Status>;

    fn call(&mut self, request: tonic::Request<Streaming<AppendRowsRequest>>) -> Self::Future {
        let inner = self.0.clone();
        Box::pin(async move {
            let token = bearer(request.metadata().get("authorization").and_then(|v| v.to_str().ok()));
            {
                let mut s = inner.state.lock().unwrap();
                s.stats.calls += 1;
                if let Auth::Refuse(why) = inner.auth(&mut s, token.as_deref()) {
                    return Err(Status::unauthenticated(why));
                }
            }
            let (tx, rx) = mpsc::channel(64);
            let call = Call {
                token,
                descriptor: None,
                hung: false,
            };
            tokio::spawn(serve_call(inner, call, request.into_inner(), tx));
            Ok(tonic::Response::new(ReceiverStream::new(rx)))
        })
    }
}

/// One AppendRows call's state.
struct Call {
    /// The token it was opened with (BigQuery authenticates the call, not each
    /// message; the fake checks it again on every append to see it expire).
    token: Option<String>,
    descriptor: Option<MessageDescriptor>,
    hung: bool,
}

/// What to do with one append.
enum Action {
    Answer(AppendRowsResponse),
    End(Status),
    Silent,
}

async fn serve_call(
    inner: Arc<Inner>,
    mut call: Call,
    mut requests: Streaming<AppendRowsRequest>,
    tx: mpsc::Sender<Result<AppendRowsResponse, Status>>,
) {
    while let Ok(Some(request)) = requests.message().await {
        match append(&inner, &mut call, request) {
            Action::Answer(a) => {
                if tx.send(Ok(a)).await.is_err() {
                    return;
                }
            }
            Action::End(status) => {
                let _ = tx.send(Err(status)).await;
                return;
            }
            Action::Silent => {}
        }
    }
}

/// An answer carrying an inline error.
fn error_answer(code: Code, message: impl Into<String>, stream: &str) -> AppendRowsResponse {
    let mut response = Answer::Error(Default::default());
    if let Answer::Error(status) = &mut response {
        status.code = code as i32;
        status.message = message.into();
    }
    AppendRowsResponse {
        response: Some(response),
        write_stream: stream.to_string(),
        ..Default::default()
    }
}

fn append(inner: &Inner, call: &mut Call, request: AppendRowsRequest) -> Action {
    let mut guard = inner.state.lock().unwrap();
    let s = &mut *guard;
    if call.hung {
        s.stats.ignored += 1;
        return Action::Silent;
    }
    if let Auth::Refuse(why) = inner.auth(s, call.token.as_deref()) {
        return Action::End(Status::unauthenticated(why));
    }
    s.stats.appends += 1;
    let number = s.stats.appends;
    let stream = request.write_stream.clone();
    let mut after = None;
    if let Some(fault) = s.script.faults.remove(&number) {
        s.stats.faults += 1;
        match fault {
            Fault::Inline(code) => {
                return Action::Answer(error_answer(code, format!("fake: {code:?} (injected)"), &stream));
            }
            Fault::EndCall(code) => return Action::End(Status::new(code, format!("fake: {code:?} (injected)"))),
            Fault::Hang => {
                call.hung = true;
                return Action::Silent;
            }
            Fault::AppendThenEndCall(code) => after = Some(code),
        }
    }
    if let Some(code) = s.script.refuse_all {
        s.stats.refused_all += 1;
        return Action::Answer(error_answer(code, "fake: refusing every append for now", &stream));
    }
    // Like BigQuery: a stream name on the first request of a call (the sink sends it
    // on every one, as the emulator needs).
    if stream.is_empty() {
        return Action::End(Status::invalid_argument(
            "write_stream is required on the first request",
        ));
    }
    let Some((table_path, stream_id)) = stream.split_once("/streams/") else {
        return Action::End(Status::invalid_argument(format!("Invalid stream name: {stream}")));
    };
    let Some(table_name) = table_of(inner, table_path) else {
        return Action::End(Status::invalid_argument(format!("Invalid stream name: {stream}")));
    };
    let Some(table) = s.tables.get_mut(&table_name) else {
        return Action::End(Status::not_found(format!(
            "Requested entity was not found. Entity: {stream}"
        )));
    };
    let Some(Rows::ProtoRows(data)) = request.rows else {
        return Action::Answer(error_answer(Code::InvalidArgument, "proto_rows are required", &stream));
    };
    if let Some(schema) = data.writer_schema.and_then(|s| s.proto_descriptor) {
        match message_descriptor(schema) {
            Ok(d) => call.descriptor = Some(d),
            Err(e) => {
                return Action::Answer(error_answer(
                    Code::InvalidArgument,
                    format!("Invalid proto schema: {e}"),
                    &stream,
                ));
            }
        }
    }
    let Some(descriptor) = call.descriptor.clone() else {
        return Action::Answer(error_answer(
            Code::InvalidArgument,
            "the first append of a connection needs writer_schema",
            &stream,
        ));
    };
    if let Some(extra) = descriptor.fields().find(|f| table.column(f.name()).is_none()) {
        return Action::Answer(error_answer(
            Code::InvalidArgument,
            format!(
                "Input schema has more fields than BigQuery schema, extra fields: '{}'",
                extra.name()
            ),
            &stream,
        ));
    }
    let mut rows = Vec::new();
    for (i, bytes) in data
        .rows
        .map(|r| r.serialized_rows)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        match DynamicMessage::decode(descriptor.clone(), bytes.as_ref()) {
            Ok(m) => rows.push(to_json(&m)),
            Err(e) => {
                return Action::Answer(error_answer(
                    Code::InvalidArgument,
                    format!("Invalid proto row at index {i}: {e}"),
                    &stream,
                ));
            }
        }
    }
    let required = table.required();
    let mut row_errors = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        for column in &required {
            if !row.contains_key(column) {
                s.stats.required_missing += 1;
                row_errors.push(row_error(i, format!("Missing required field: {column}.")));
            }
        }
        for (field, value, message) in &s.script.refuse_rows {
            if row.get(field) == Some(value) {
                row_errors.push(row_error(i, message.clone()));
            }
        }
    }
    if !row_errors.is_empty() {
        s.stats.row_errors += row_errors.len() as u64;
        let mut answer = error_answer(
            Code::InvalidArgument,
            format!(
                "Errors found while processing rows. Please refer to the row_errors field for details. Entity: {stream}"
            ),
            &stream,
        );
        answer.row_errors = row_errors;
        return Action::Answer(answer);
    }
    let invalid = rows
        .iter()
        .any(|r| s.script.invalid_rows.iter().any(|(f, v)| r.get(f) == Some(v)));
    if invalid {
        s.stats.invalid_argument += 1;
        return Action::Answer(error_answer(
            Code::InvalidArgument,
            "fake: the append holds an invalid row",
            &stream,
        ));
    }
    let start = if stream_id == "_default" {
        if request.offset.is_some() {
            return Action::Answer(error_answer(
                Code::InvalidArgument,
                "The default stream takes no offsets",
                &stream,
            ));
        }
        table.rows.len() as i64
    } else {
        let Some(next) = table.streams.get_mut(&stream) else {
            return Action::End(Status::not_found(format!("Stream not found: {stream}")));
        };
        match request.offset {
            Some(o) if o < *next => {
                s.stats.already_exists += 1;
                return Action::Answer(error_answer(
                    Code::AlreadyExists,
                    format!("The offset is within stream, expected offset {next}, received {o}"),
                    &stream,
                ));
            }
            Some(o) if o > *next => {
                s.stats.out_of_range += 1;
                return Action::Answer(error_answer(
                    Code::OutOfRange,
                    format!("The offset is beyond stream, expected offset {next}, received {o}"),
                    &stream,
                ));
            }
            _ => {
                let start = *next;
                *next += rows.len() as i64;
                start
            }
        }
    };
    s.stats.appended_rows += rows.len() as u64;
    table.rows.extend(rows);
    if let Some(code) = after {
        return Action::End(Status::new(code, format!("fake: {code:?} after the append (injected)")));
    }
    Action::Answer(AppendRowsResponse {
        response: Some(Answer::AppendResult(AppendResult { offset: Some(start) })),
        write_stream: stream,
        ..Default::default()
    })
}

fn row_error(index: usize, message: String) -> RowError {
    RowError {
        index: index as i64,
        code: RowErrorCode::FieldsError as i32,
        message,
    }
}

/// The message described by a writer schema (a lone DescriptorProto, as BigQuery
/// takes it).
fn message_descriptor(d: prost_types::DescriptorProto) -> Result<MessageDescriptor, String> {
    let name = d.name().to_string();
    let file = prost_types::FileDescriptorProto {
        name: Some("writer_schema.proto".into()),
        message_type: vec![d],
        syntax: Some("proto2".into()),
        ..Default::default()
    };
    let pool = DescriptorPool::from_file_descriptor_set(prost_types::FileDescriptorSet { file: vec![file] })
        .map_err(|e| e.to_string())?;
    pool.get_message_by_name(&name)
        .ok_or_else(|| format!("no message {name}"))
}

/// The set fields of a row as JSON.
fn to_json(m: &DynamicMessage) -> Map<String, Json> {
    let mut out = Map::new();
    for field in m.descriptor().fields() {
        if m.has_field(&field) {
            out.insert(field.name().to_string(), proto_json(&m.get_field(&field)));
        }
    }
    out
}

fn proto_json(v: &Proto) -> Json {
    match v {
        Proto::Bool(b) => json!(b),
        Proto::I32(i) => json!(i),
        Proto::I64(i) => json!(i),
        Proto::U32(i) => json!(i),
        Proto::U64(i) => json!(i),
        Proto::F32(f) => json!(f),
        Proto::F64(f) => json!(f),
        Proto::String(s) => json!(s),
        Proto::Bytes(b) => json!(b.to_vec()),
        Proto::EnumNumber(n) => json!(n),
        Proto::Message(m) => Json::Object(to_json(m)),
        Proto::List(items) => Json::Array(items.iter().map(proto_json).collect()),
        Proto::Map(_) => Json::Null,
    }
}

// ---- REST --------------------------------------------------------------------

fn rest_router(inner: Arc<Inner>) -> Router {
    let base = "/bigquery/v2/projects/{project}/datasets/{dataset}";
    Router::new()
        .route(base, get(get_dataset))
        .route(&format!("{base}/tables"), post(create_table))
        .route(&format!("{base}/tables/{{table}}"), get(get_table))
        .route(&format!("{base}/tables/{{table}}/insertAll"), post(insert_all))
        .with_state(inner)
}

/// BigQuery's error body.
fn google_error(code: StatusCode, status: &str, reason: &str, message: String) -> Response {
    let body = json!({"error": {
        "code": code.as_u16(), "message": message, "status": status,
        "errors": [{"domain": "global", "reason": reason, "message": message}],
    }});
    (code, axum::Json(body)).into_response()
}

/// Counts the request and checks its token; `Err` is the answer to send instead.
fn rest_gate(inner: &Inner, headers: &HeaderMap, project: &str, dataset: &str) -> Result<(), Response> {
    let mut s = inner.state.lock().unwrap();
    s.stats.rest_requests += 1;
    let token = bearer(headers.get("authorization").and_then(|v| v.to_str().ok()));
    if let Auth::Refuse(why) = inner.auth(&mut s, token.as_deref()) {
        return Err(google_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "authError",
            why,
        ));
    }
    if project != inner.project || dataset != inner.dataset {
        return Err(google_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "notFound",
            format!("Not found: Dataset {project}:{dataset}"),
        ));
    }
    Ok(())
}

async fn get_dataset(
    State(inner): State<Arc<Inner>>,
    UrlPath((project, dataset)): UrlPath<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = rest_gate(&inner, &headers, &project, &dataset) {
        return r;
    }
    axum::Json(json!({"kind": "bigquery#dataset", "datasetReference": {"projectId": project, "datasetId": dataset}}))
        .into_response()
}

async fn get_table(
    State(inner): State<Arc<Inner>>,
    UrlPath((project, dataset, table)): UrlPath<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = rest_gate(&inner, &headers, &project, &dataset) {
        return r;
    }
    let s = inner.state.lock().unwrap();
    match s.tables.get(&table) {
        Some(t) => axum::Json(json!({
            "kind": "bigquery#table",
            "tableReference": {"projectId": project, "datasetId": dataset, "tableId": table},
            "schema": {"fields": t.fields},
            "numRows": t.rows.len().to_string(),
        }))
        .into_response(),
        None => google_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "notFound",
            format!("Not found: Table {project}:{dataset}.{table}"),
        ),
    }
}

async fn create_table(
    State(inner): State<Arc<Inner>>,
    UrlPath((project, dataset)): UrlPath<(String, String)>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Json>,
) -> Response {
    if let Err(r) = rest_gate(&inner, &headers, &project, &dataset) {
        return r;
    }
    let Some(name) = body["tableReference"]["tableId"].as_str().map(str::to_string) else {
        return google_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "invalid",
            "no tableId".into(),
        );
    };
    let mut s = inner.state.lock().unwrap();
    if s.tables.contains_key(&name) {
        return google_error(
            StatusCode::CONFLICT,
            "ALREADY_EXISTS",
            "duplicate",
            format!("Already Exists: Table {project}:{dataset}.{name}"),
        );
    }
    let fields = body["schema"]["fields"].as_array().cloned().unwrap_or_default();
    s.tables.insert(
        name,
        Table {
            fields,
            rows: Vec::new(),
            streams: HashMap::new(),
            insert_ids: HashSet::new(),
        },
    );
    axum::Json(body).into_response()
}

/// `tabledata.insertAll`: rows missing a REQUIRED column, with a field that is no
/// column (unless `ignoreUnknownValues`) or matching `refuse_rows` are invalid;
/// without `skipInvalidRows` one invalid row stops the whole request (the others
/// answered `stopped`). A row whose `insertId` was seen is dropped silently.
async fn insert_all(
    State(inner): State<Arc<Inner>>,
    UrlPath((project, dataset, table)): UrlPath<(String, String, String)>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Json>,
) -> Response {
    if let Err(r) = rest_gate(&inner, &headers, &project, &dataset) {
        return r;
    }
    let mut guard = inner.state.lock().unwrap();
    let s = &mut *guard;
    let Some(t) = s.tables.get_mut(&table) else {
        return google_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "notFound",
            format!("Not found: Table {project}:{dataset}.{table}"),
        );
    };
    let skip = body["skipInvalidRows"] == true;
    let ignore_unknown = body["ignoreUnknownValues"] == true;
    let rows = body["rows"].as_array().cloned().unwrap_or_default();
    let required = t.required();
    let mut errors: Vec<Option<Json>> = Vec::new();
    for row in &rows {
        let json = row["json"].as_object().cloned().unwrap_or_default();
        let mut why = required
            .iter()
            .find(|c| !json.contains_key(c.as_str()))
            .map(|c| (c.clone(), format!("Missing required field: {c}.")));
        if why.is_none() && !ignore_unknown {
            why = json
                .keys()
                .find(|k| t.column(k).is_none())
                .map(|k| (k.clone(), format!("no such field: {k}.")));
        }
        if why.is_none() {
            why = s
                .script
                .refuse_rows
                .iter()
                .find(|(f, v, _)| json.get(f) == Some(v))
                .map(|(f, _, m)| (f.clone(), m.clone()));
        }
        errors.push(
            why.map(|(location, message)| json!({"reason": "invalid", "location": location, "message": message})),
        );
    }
    let any_invalid = errors.iter().any(Option::is_some);
    let mut insert_errors = Vec::new();
    for (i, (row, error)) in rows.iter().zip(&errors).enumerate() {
        match error {
            Some(e) => insert_errors.push(json!({"index": i, "errors": [e]})),
            None if any_invalid && !skip => insert_errors
                .push(json!({"index": i, "errors": [{"reason": "stopped", "location": "", "message": ""}]})),
            None => {
                match row["insertId"].as_str() {
                    Some(id) if !t.insert_ids.insert(id.to_string()) => {
                        s.stats.duplicate_insert_ids += 1;
                        continue;
                    }
                    Some(_) => {}
                    None => s.stats.insert_all_rows_without_id += 1,
                }
                s.stats.insert_all_rows += 1;
                t.rows.push(row["json"].as_object().cloned().unwrap_or_default());
            }
        }
    }
    let mut answer = json!({"kind": "bigquery#tableDataInsertAllResponse"});
    if !insert_errors.is_empty() {
        answer["insertErrors"] = Json::Array(insert_errors);
    }
    axum::Json(answer).into_response()
}

// ---- OAuth -------------------------------------------------------------------

/// One token the token server issued.
#[derive(Debug, Clone)]
pub struct Issued {
    pub token: String,
    pub at: Instant,
    pub lifetime: Duration,
    /// The JWT assertion's signature verified with the service account's public key,
    /// and its claims were right (issuer, audience, scope, expiry).
    pub assertion_ok: bool,
}

enum TokenState {
    Current,
    Expired,
    Unknown,
}

struct TokenInner {
    lifetime: Duration,
    /// The service account's public key (PKCS #1 DER) and e-mail.
    public_key: Vec<u8>,
    email: String,
    issued: Mutex<Vec<Issued>>,
    port: u16,
}

/// A fake OAuth token endpoint (`token_uri` of a service account key): takes the
/// JWT-bearer grant, checks the assertion's signature and claims, and issues tokens
/// `tok-1`, `tok-2`, … that expire after a short `expires_in`, recording each.
#[derive(Clone)]
pub struct TokenServer {
    inner: Arc<TokenInner>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl TokenServer {
    /// Serves on a free loopback port; tokens live `lifetime` (whole seconds).
    pub async fn start(lifetime: Duration, email: &str, public_key_der: Vec<u8>) -> TokenServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let inner = Arc::new(TokenInner {
            lifetime,
            public_key: public_key_der,
            email: email.to_string(),
            issued: Mutex::new(Vec::new()),
            port: listener.local_addr().unwrap().port(),
        });
        let app = Router::new().route("/token", post(issue)).with_state(inner.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TokenServer {
            inner,
            task: Arc::new(task),
        }
    }

    /// The `token_uri`.
    pub fn uri(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.inner.port)
    }

    pub fn issued(&self) -> Vec<Issued> {
        self.inner.issued.lock().unwrap().clone()
    }

    fn state(&self, token: &str) -> TokenState {
        let issued = self.inner.issued.lock().unwrap();
        match issued.iter().find(|i| i.token == token) {
            Some(i) if i.at.elapsed() < i.lifetime => TokenState::Current,
            Some(_) => TokenState::Expired,
            None => TokenState::Unknown,
        }
    }
}

async fn issue(
    State(inner): State<Arc<TokenInner>>,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    if form.get("grant_type").map(String::as_str) != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "unsupported_grant_type"})),
        )
            .into_response();
    }
    let uri = format!("http://127.0.0.1:{}/token", inner.port);
    let assertion_ok = form
        .get("assertion")
        .is_some_and(|a| assertion_ok(a, &inner.public_key, &inner.email, &uri));
    let mut issued = inner.issued.lock().unwrap();
    let token = format!("tok-{}", issued.len() + 1);
    issued.push(Issued {
        token: token.clone(),
        at: Instant::now(),
        lifetime: inner.lifetime,
        assertion_ok,
    });
    axum::Json(json!({"access_token": token, "expires_in": inner.lifetime.as_secs(), "token_type": "Bearer"}))
        .into_response()
}

/// True when `jwt` is signed RS256 by `public_key` and claims what a service account
/// must: its e-mail as issuer, the token URI as audience, a scope, a future expiry.
fn assertion_ok(jwt: &str, public_key: &[u8], email: &str, audience: &str) -> bool {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let Some((message, signature)) = jwt.rsplit_once('.') else {
        return false;
    };
    let Ok(signature) = b64.decode(signature) else {
        return false;
    };
    let key = ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, public_key);
    if key.verify(message.as_bytes(), &signature).is_err() {
        return false;
    }
    let Some(claims) = message
        .split_once('.')
        .and_then(|(_, c)| b64.decode(c).ok())
        .and_then(|c| serde_json::from_slice::<Json>(&c).ok())
    else {
        return false;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    claims["iss"] == email
        && claims["aud"] == audience
        && claims["scope"].as_str().is_some_and(|s| !s.is_empty())
        && claims["exp"].as_u64().is_some_and(|e| e > now)
}
