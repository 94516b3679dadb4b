//! The `elasticsearch` sink through the real binary against a fake Elasticsearch.
//!
//! No Elasticsearch server can run on these machines: the fake in
//! `tests/common/es.rs` stands in for it (see its doc).

mod common;
#[path = "common/es.rs"]
mod es;

use common::*;
use es::*;
use std::fs;
use std::path::Path;
use std::time::Duration;

fn topology(dir: &Path, es_port: u16, generator: &str, remap: &str, es: &str) -> std::path::PathBuf {
    let path = dir.join("t.toml");
    fs::write(
        &path,
        format!(
            r#"data_dir = "{data}"
shutdown_timeout_secs = 120
[sources.gen]
type = "generator"
{generator}
[transforms.shape]
type = "remap"
inputs = ["gen"]
source = '''
. = merge(., object!(parse_json!(.message)))
.id = .seq
{remap}
'''
[sinks.es]
type = "elasticsearch"
inputs = ["shape"]
endpoints = ["http://127.0.0.1:{es_port}"]
action = "create"
id_field = "id"
batch_max_events = 500
batch_timeout_ms = 200
{es}
[sinks.dead]
type = "file"
inputs = ["es.dropped"]
path = "{dead}"
"#,
            data = dir.join("data").display(),
            dead = dir.join("dead.log").display(),
        ),
    )
    .unwrap();
    path
}

/// The exit code, or -1 (after killing it) when pipe has not exited within `secs`.
async fn exit_code(mut pipe: Pipe, secs: u64) -> i32 {
    for _ in 0..secs * 10 {
        if let Some(status) = pipe.child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    -1
}

fn start_pipe(topology: &Path, log: &Path) -> Pipe {
    Pipe::start(topology, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_failing_429_are_retried_alone_until_all_are_indexed_once() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeEs::with_429_rate(50);
    let port = free_port();
    let _server = fake.serve(port).await;
    let t = topology(
        dir.path(),
        port,
        "count = 100000",
        "",
        "index = \"app-%Y.%m.%d\"\ncompression = \"gzip\"",
    );
    let log = dir.path().join("pipe.log");
    assert_eq!(exit_code(start_pipe(&t, &log), 300).await, 0, "{}", tail(&log, 20));
    let s = fake.0.lock().unwrap();
    eprintln!(
        "100k docs: {} items sent, {} answered 429",
        s.items_received, s.injected_429
    );
    assert_eq!(s.docs.len(), 100_000);
    assert!(
        s.injected_429 > 3000,
        "about 5% of items should have been refused: {}",
        s.injected_429
    );
    assert_eq!(
        s.items_received,
        100_000 + s.injected_429,
        "only failed items are sent again, never a whole bulk"
    );
    assert!(s.gzip_requests > 0);
    let today = chrono::Utc::now().format("app-%Y.%m.%d").to_string();
    assert!(s.docs.keys().all(|(index, _)| *index == today));
    drop(s);
    assert_eq!(fake.ids(), (0..100_000).collect::<Vec<u64>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapping_errors_go_to_the_dead_letter_output_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeEs::with_429_rate(0);
    let port = free_port();
    let _server = fake.serve(port).await;
    let remap = "if mod(to_int!(.seq), 10) == 0 { .bad_mapping = true }";
    let t = topology(
        dir.path(),
        port,
        "count = 1000",
        remap,
        "index = \"logs-{{ service }}\"",
    );
    let log = dir.path().join("pipe.log");
    assert_eq!(exit_code(start_pipe(&t, &log), 120).await, 0, "{}", tail(&log, 20));
    assert_eq!(fake.0.lock().unwrap().docs.len(), 900);
    let indices: std::collections::BTreeSet<String> =
        fake.0.lock().unwrap().docs.keys().map(|(i, _)| i.clone()).collect();
    assert_eq!(
        indices.into_iter().collect::<Vec<_>>(),
        ["logs-api", "logs-auth", "logs-billing", "logs-web"]
    );
    let dead = fs::read_to_string(dir.path().join("dead.log")).unwrap();
    let dead: Vec<serde_json::Value> = dead.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(dead.len(), 100);
    assert!(dead.iter().all(|e| e["seq"].as_i64().unwrap() % 10 == 0));
    let reason = dead[0]["dropped"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("400 mapper_parsing_exception") && reason.contains("For input string"),
        "{reason}"
    );
    let counters = log_lines_with(&log, "Component counters at exit. component=es").join("");
    assert!(counters.contains("\"rejected_by_elasticsearch\": 100"), "{counters}");
}

/// Fault test: Elasticsearch goes away for 10 s in the middle of the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elasticsearch_down_for_ten_seconds_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeEs::with_429_rate(0);
    let port = free_port();
    let server = fake.serve(port).await;
    let t = topology(dir.path(), port, "count = 6000\nrate = 500.0", "", "");
    let log = dir.path().join("pipe.log");
    let child = start_pipe(&t, &log);
    tokio::time::sleep(Duration::from_secs(3)).await;
    server.abort();
    let _ = server.await;
    let before = fake.0.lock().unwrap().docs.len();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(
        fake.0.lock().unwrap().docs.len(),
        before,
        "nothing can be indexed while the server is down"
    );
    let _server = fake.serve(port).await;
    assert_eq!(exit_code(child, 120).await, 0, "{}", tail(&log, 20));
    assert!(before > 0 && before < 6000, "the outage should fall mid-run: {before}");
    assert_eq!(fake.ids(), (0..6000).collect::<Vec<u64>>());
    assert!(!log_lines_with(&log, "Bulk requests fail; retrying").is_empty());
    assert!(!log_lines_with(&log, "Bulk requests work again").is_empty());
}

/// Two endpoints, one of them dead: documents go round-robin and skip the dead one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_endpoint_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeEs::with_429_rate(0);
    let port = free_port();
    let dead = free_port();
    let _server = fake.serve(port).await;
    let t = topology(dir.path(), port, "count = 3000", "", "");
    let text = fs::read_to_string(&t).unwrap().replace(
        &format!("endpoints = [\"http://127.0.0.1:{port}\"]"),
        &format!("endpoints = [\"http://127.0.0.1:{dead}\", \"http://127.0.0.1:{port}\"]"),
    );
    fs::write(&t, text).unwrap();
    let log = dir.path().join("pipe.log");
    assert_eq!(exit_code(start_pipe(&t, &log), 120).await, 0, "{}", tail(&log, 20));
    assert_eq!(fake.ids(), (0..3000).collect::<Vec<u64>>());
}

/// HTTP in, Elasticsearch out, with acknowledgements: a client whose first attempt
/// times out (Elasticsearch is not there yet) retries after the 503; with `id_field`
/// the retry cannot duplicate, so exactly one copy is indexed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_client_retrying_after_503_ends_with_exactly_one_copy() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeEs::with_429_rate(0);
    let (es_port, http_port) = (free_port(), free_port());
    let t = dir.path().join("t.toml");
    fs::write(
        &t,
        format!(
            r#"data_dir = "{data}"
[sources.web]
type = "http"
address = "127.0.0.1:{http_port}"
ack_timeout_secs = 1
[sinks.es]
type = "elasticsearch"
inputs = ["web"]
endpoints = ["http://127.0.0.1:{es_port}"]
action = "create"
id_field = "request_id"
healthcheck = false
batch_timeout_ms = 50
"#,
            data = dir.path().join("data").display()
        ),
    )
    .unwrap();
    let log = dir.path().join("pipe.log");
    let mut pipe = Pipe::start(&t, &log);
    let url = format!("http://127.0.0.1:{http_port}/");
    let post = |url: String| {
        tokio::task::spawn_blocking(move || {
            let out = std::process::Command::new("curl")
                .args([
                    "-s",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    "--max-time",
                    "10",
                    "-H",
                    "Content-Type: application/json",
                ])
                .args(["--data-binary", r#"{"request_id":"req-1","msg":"pay"}"#, &url])
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).to_string()
        })
    };
    let mut first = String::new();
    for _ in 0..50 {
        first = post(url.clone()).await.unwrap();
        if first != "000" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(first, "503", "not delivered in time: the client must be told to retry");
    let _server = fake.serve(es_port).await;
    let mut status = String::new();
    for _ in 0..30 {
        status = post(url.clone()).await.unwrap();
        if status == "200" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(status, "200");
    tokio::time::sleep(Duration::from_millis(500)).await;
    pipe.signal("TERM");
    assert_eq!(
        tokio::task::spawn_blocking(move || wait_exit(&mut pipe.child, 30))
            .await
            .unwrap(),
        0
    );
    let s = fake.0.lock().unwrap();
    assert_eq!(s.docs.len(), 1, "exactly one copy");
    assert!(
        s.items_received >= 2,
        "both attempts reached Elasticsearch: {}",
        s.items_received
    );
}

/// An `https://` endpoint whose certificate is trusted through `tls.ca_file`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_endpoint_with_a_custom_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (crt, key) = self_signed(dir.path());
    let fake = FakeEs::with_429_rate(0);
    let port = free_port();
    let _server = fake.serve_tls(port, &crt, &key).await;
    let t = topology(
        dir.path(),
        port,
        "count = 500",
        "",
        &format!("[sinks.es.tls]\nca_file = \"{}\"", crt.display()),
    );
    let text = fs::read_to_string(&t)
        .unwrap()
        .replace("http://127.0.0.1", "https://127.0.0.1");
    fs::write(&t, text).unwrap();
    let log = dir.path().join("pipe.log");
    assert_eq!(exit_code(start_pipe(&t, &log), 60).await, 0, "{}", tail(&log, 20));
    assert_eq!(fake.ids(), (0..500).collect::<Vec<u64>>());
}

/// `mode = "data_stream"`: `create` actions into the stream, `@timestamp` added.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_stream_mode_creates_with_a_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeEs::with_429_rate(0);
    let port = free_port();
    let _server = fake.serve(port).await;
    let t = topology(
        dir.path(),
        port,
        "count = 100",
        "",
        "mode = \"data_stream\"\nindex = \"logs-app-default\"",
    );
    let text = fs::read_to_string(&t).unwrap().replace("action = \"create\"\n", "");
    fs::write(&t, text).unwrap();
    let log = dir.path().join("pipe.log");
    assert_eq!(exit_code(start_pipe(&t, &log), 60).await, 0, "{}", tail(&log, 20));
    let s = fake.0.lock().unwrap();
    assert_eq!(s.docs.len(), 100);
    assert!(
        s.docs
            .iter()
            .all(|((index, _), doc)| index == "logs-app-default" && doc["@timestamp"].is_string())
    );
}

/// Credentials refused for 5 s (401 to every bulk, as while a password is rotated),
/// then accepted: a misconfiguration, not bad data, so nothing is rejected: the sink
/// reports itself failing, retries, and delivers every document once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_refused_for_five_seconds_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeEs::with_429_rate(0);
    fake.0.lock().unwrap().unauthorized_until = Some(std::time::Instant::now() + Duration::from_secs(5));
    let port = free_port();
    let _server = fake.serve(port).await;
    let t = topology(dir.path(), port, "count = 3000\nrate = 500.0", "", "");
    let log = dir.path().join("pipe.log");
    assert_eq!(exit_code(start_pipe(&t, &log), 120).await, 0, "{}", tail(&log, 20));
    assert!(fake.0.lock().unwrap().answered_401 > 0);
    assert_eq!(fake.ids(), (0..3000).collect::<Vec<u64>>());
    assert!(
        !dir.path().join("dead.log").exists(),
        "nothing may be rejected for a 401"
    );
    let failing = log_lines_with(&log, "Bulk requests fail; retrying").join("");
    assert!(failing.contains("fault=config") && failing.contains("401"), "{failing}");
    assert!(!log_lines_with(&log, "Bulk requests work again").is_empty());
}

/// A bulk answered 413 is halved until it fits; the one document too large on its
/// own is refused alone, to the dead-letter output with the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_answered_413_is_split_and_only_the_oversized_document_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeEs::with_429_rate(0);
    fake.0.lock().unwrap().max_body = 40_000;
    let port = free_port();
    let _server = fake.serve(port).await;
    let remap = "if .seq == 150 { .pad = encode_base64(random_bytes(60000)) }";
    let t = topology(dir.path(), port, "count = 300", remap, "");
    let log = dir.path().join("pipe.log");
    assert_eq!(exit_code(start_pipe(&t, &log), 120).await, 0, "{}", tail(&log, 20));
    let ids = fake.ids();
    assert_eq!(ids.len(), 299, "{}", tail(&log, 20));
    assert!(!ids.contains(&150));
    assert!(fake.0.lock().unwrap().answered_413 > 0);
    let dead = fs::read_to_string(dir.path().join("dead.log")).unwrap();
    let dead: Vec<serde_json::Value> = dead.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["seq"], 150);
    assert!(
        dead[0]["dropped"]["reason"].as_str().unwrap().contains("413"),
        "{:?}",
        dead[0]
    );
}

/// A password in the endpoint URL, and one from `${VAR}` holding `"` and `\\`: both
/// reach Elasticsearch intact as basic auth, and neither appears in the logs, even
/// at debug level and while the cluster refuses the credentials for a while.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_reach_elasticsearch_intact_and_never_reach_the_logs() {
    use base64::Engine;
    for (url_password, auth) in [("s3cr3t-url-pw", false), ("", true)] {
        let dir = tempfile::tempdir().unwrap();
        let fake = FakeEs::with_429_rate(0);
        let (user, password) = if auth {
            ("elastic", "s3cr3t\"quote\\back")
        } else {
            ("elastic", url_password)
        };
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        fake.0.lock().unwrap().required_auth = Some(expected);
        fake.0.lock().unwrap().unauthorized_until = Some(std::time::Instant::now() + Duration::from_secs(2));
        let port = free_port();
        let _server = fake.serve(port).await;
        let es = if auth {
            "auth = { user = \"elastic\", password = \"${ES_PASSWORD}\" }"
        } else {
            ""
        };
        let t = topology(dir.path(), port, "count = 500\nrate = 250.0", "", es);
        if !auth {
            let text = fs::read_to_string(&t).unwrap().replace(
                &format!("http://127.0.0.1:{port}"),
                &format!("http://elastic:{url_password}@127.0.0.1:{port}"),
            );
            fs::write(&t, text).unwrap();
        }
        let log = dir.path().join("pipe.log");
        let env = [
            ("ES_PASSWORD", password.to_string()),
            ("RUST_LOG", "debug".to_string()),
            ("PIPE_LOG", "debug".to_string()),
        ];
        let pipe = Pipe::start_env(&t, &log, &env);
        assert_eq!(exit_code(pipe, 120).await, 0, "{}", tail(&log, 20));
        assert_eq!(fake.ids(), (0..500).collect::<Vec<u64>>(), "{}", tail(&log, 20));
        let text = fs::read_to_string(&log).unwrap();
        assert!(text.contains("401"), "the refusals are logged");
        assert!(!text.contains("s3cr3t"), "a password reached the logs:\n{text}");
    }
}
