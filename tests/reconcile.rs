//! `pipe reconcile` over the places one topology delivered to: the Parquet archive
//! (read through `pipe query`'s SQL), a file sink's JSON lines, a Kafka topic on
//! librdkafka's mock cluster (`pipe kafka-mock`, consumed by record timestamp) and
//! Elasticsearch. No Elasticsearch server can run here: the test serves a small fake
//! of its wire protocol (`_bulk`, `_count` with a range query, `_search` with a
//! `terms` aggregation), keeping documents in memory.

mod common;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::{get, post};
use common::*;
use serde_json::{Value as Json, json};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

/// Documents the fake Elasticsearch holds.
#[derive(Clone, Default)]
struct FakeEs(Arc<Mutex<Vec<Json>>>);

async fn bulk(State(es): State<FakeEs>, body: Bytes) -> axum::Json<Json> {
    let text = String::from_utf8_lossy(&body).to_string();
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let mut items = Vec::new();
    while let (Some(action), Some(doc)) = (lines.next(), lines.next()) {
        let action: Json = serde_json::from_str(action).unwrap();
        let name = action.as_object().unwrap().keys().next().unwrap().clone();
        es.0.lock().unwrap().push(serde_json::from_str(doc).unwrap());
        items.push(json!({ name: {"status": 201, "result": "created"} }));
    }
    axum::Json(json!({"took": 1, "errors": false, "items": items}))
}

/// The documents whose `timestamp` falls in the query's range.
fn in_range(docs: &[Json], query: &Json) -> Vec<Json> {
    let range = query["query"]["range"]["timestamp"].clone();
    let time = |v: &Json| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or("")).ok();
    let (gte, lt) = (time(&range["gte"]).unwrap(), time(&range["lt"]).unwrap());
    docs.iter()
        .filter(|d| time(&d["timestamp"]).is_some_and(|t| t >= gte && t < lt))
        .cloned()
        .collect()
}

async fn count(State(es): State<FakeEs>, body: Bytes) -> axum::Json<Json> {
    let query: Json = serde_json::from_slice(&body).unwrap();
    let n = in_range(&es.0.lock().unwrap(), &query).len();
    axum::Json(json!({"count": n, "_shards": {"total": 1, "successful": 1, "failed": 0}}))
}

async fn search(State(es): State<FakeEs>, body: Bytes) -> axum::Json<Json> {
    let query: Json = serde_json::from_slice(&body).unwrap();
    let field = query["aggs"]["k"]["terms"]["field"].as_str().unwrap().to_string();
    let mut buckets: std::collections::BTreeMap<String, u64> = Default::default();
    for d in in_range(&es.0.lock().unwrap(), &query) {
        *buckets
            .entry(d[&field].as_str().unwrap_or("(none)").to_string())
            .or_default() += 1;
    }
    let buckets: Vec<Json> = buckets
        .into_iter()
        .map(|(k, n)| json!({"key": k, "doc_count": n}))
        .collect();
    axum::Json(json!({"hits": {"total": {"value": 0}}, "aggregations": {"k": {"buckets": buckets}}}))
}

fn serve_fake_es(runtime: &tokio::runtime::Runtime, es: &FakeEs) -> u16 {
    let port = free_port();
    let app = Router::new()
        .route(
            "/",
            get(|| async { axum::Json(json!({"version": {"number": "8.15.0"}})) }),
        )
        .route("/_bulk", post(bulk))
        .route("/{index}/_count", post(count))
        .route("/{index}/_search", post(search))
        .with_state(es.clone());
    runtime.spawn(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        axum::serve(listener, app).await.unwrap();
    });
    port
}

/// Three hours of events, 40 an hour, for two services.
fn write_input(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    for hour in 10..13 {
        for i in 0..40 {
            let service = if i % 4 == 0 { "web" } else { "api" };
            writeln!(
                f,
                r#"{{"timestamp":"2026-12-02T{hour}:{:02}:{:02}Z","service":"{service}","n":{i}}}"#,
                i,
                i % 60
            )
            .unwrap();
        }
    }
}

/// The cells after `start` of the table row that begins with it (cells split on
/// whitespace).
fn row(text: &str, start: &str) -> Vec<String> {
    let words: Vec<&str> = start.split_whitespace().collect();
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.starts_with(&words))
        .map(|cells| cells[words.len()..].iter().map(|c| c.to_string()).collect())
        .unwrap_or_default()
}

fn reconcile(topology: &Path, by: Option<&str>) -> (i32, String) {
    let mut cmd = Command::new(pipe_bin());
    cmd.args(["reconcile", "-t"])
        .arg(topology)
        .args(["--from", "2026-12-02T10", "--to", "2026-12-02T13"]);
    if let Some(b) = by {
        cmd.args(["--by", b]);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// 120 events reach all four places and every hour agrees; then 5 events of 11:00
/// go missing from the file sink's output, and reconcile names that hour and that
/// place, per service too, and exits 1.
#[test]
fn reconcile_names_the_hour_and_place_that_lost_events() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let es = FakeEs::default();
    let es_port = serve_fake_es(&runtime, &es);
    let mut mock = Command::new(pipe_bin())
        .arg("kafka-mock")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut bootstrap = String::new();
    BufReader::new(mock.stdout.take().unwrap())
        .read_line(&mut bootstrap)
        .unwrap();
    let input = dir.path().join("in.log");
    write_input(&input);
    let topology = dir.path().join("t.toml");
    std::fs::write(
        &topology,
        format!(
            r#"
data_dir = "{data}"

[sources.app]
type = "file"
include = ["{input}"]

[transforms.parse]
type = "remap"
inputs = ["app"]
source = '''
. = parse_json!(.message)
.timestamp = parse_timestamp!(.timestamp, "%+")
'''

[sinks.archive]
type = "object_store"
inputs = ["parse"]
url = "{archive}"

[sinks.out]
type = "file"
inputs = ["parse"]
path = "{out}/%Y%m%d-%H.log"

[sinks.topic]
type = "kafka"
inputs = ["parse"]
bootstrap_servers = "{bootstrap}"
topic = "logs"

[sinks.es]
type = "elasticsearch"
inputs = ["parse"]
endpoints = ["http://127.0.0.1:{es_port}"]
"#,
            data = dir.path().join("data").display(),
            input = input.display(),
            archive = dir.path().join("archive").display(),
            out = dir.path().join("out").display(),
            bootstrap = bootstrap.trim(),
        ),
    )
    .unwrap();
    let log = dir.path().join("pipe.log");
    let pipe = Pipe::start(&topology, &log);
    assert!(
        wait_for(60, || count_lines(&dir.path().join("out")) == 120
            && es.0.lock().unwrap().len() == 120),
        "not delivered: {}",
        tail(&log, 30)
    );
    assert_eq!(pipe.stop(60), 0, "{}", tail(&log, 30));

    let (code, text) = reconcile(&topology, None);
    assert_eq!(code, 0, "{text}");
    for place in [
        "archive (object_store)",
        "out (file)",
        "topic (kafka)",
        "es (elasticsearch)",
    ] {
        assert!(text.contains(place), "{place} missing:\n{text}");
    }
    assert_eq!(row(&text, "2026-12-02T11:00"), ["40", "40", "40", "40", "0"], "{text}");

    // Five events of 11:00 go missing from the file sink's output.
    let file = dir.path().join("out/20261202-11.log");
    let kept: Vec<String> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .skip(5)
        .map(String::from)
        .collect();
    std::fs::write(&file, kept.join("\n") + "\n").unwrap();

    let (code, text) = reconcile(&topology, None);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("differs: 2026-12-02T11:00: out has 35 (5 fewer) of 40"),
        "{text}"
    );
    assert!(
        !text.contains("differs: 2026-12-02T10:00") && !text.contains("differs: 2026-12-02T12:00"),
        "{text}"
    );

    let (code, text) = reconcile(&topology, Some("service"));
    assert_eq!(code, 1, "{text}");
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("differs:")).collect();
    assert!(
        !lines.is_empty()
            && lines
                .iter()
                .all(|l| l.contains("2026-12-02T11:00 service=") && l.contains("out has")),
        "{text}"
    );
    assert_eq!(
        row(&text, "2026-12-02T10:00  api"),
        ["30", "30", "30", "30", "0"],
        "{text}"
    );
    let _ = mock.kill();
    let _ = mock.wait();
}
