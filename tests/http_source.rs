//! The `http` source through the real binary, driven by curl (an independent client):
//! every body kind, the Kafka REST v2 and v3 produce APIs and their replies, auth, 413, 400, 503 under a
//! stalled sink, and acknowledgements (200 only once delivered).

mod common;

use common::*;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Command;

/// Starts pipe with an http source on a free port writing JSON lines to `dir/out/`.
fn start(dir: &Path, extra: &str) -> (Pipe, String) {
    let port = free_port();
    let topology = dir.join("t.toml");
    fs::write(
        &topology,
        format!(
            r#"data_dir = "{data}"
[sources.web]
type = "http"
address = "127.0.0.1:{port}"
{extra}
[sinks.out]
type = "file"
inputs = ["web"]
path = "{out}/out.log"
"#,
            data = dir.join("data").display(),
            out = dir.join("out").display()
        ),
    )
    .unwrap();
    let log = dir.join("pipe.log");
    let pipe = Pipe::start(&topology, &log);
    let url = format!("http://127.0.0.1:{port}");
    assert!(
        wait_for(30, || curl(&url, "/health", &[], None).0 == 200),
        "{}",
        tail(&log, 20)
    );
    (pipe, url)
}

/// POSTs (or GETs when `body` is None) and returns the status, headers and body.
fn curl(url: &str, path: &str, args: &[&str], body: Option<&[u8]>) -> (u16, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-i", "--max-time", "20"]).args(args);
    if let Some(body) = body {
        let file = dir.path().join("body");
        fs::write(&file, body).unwrap();
        cmd.arg("--data-binary").arg(format!("@{}", file.display()));
    }
    let out = cmd.arg(format!("{url}{path}")).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text)
}

fn out_events(dir: &Path) -> Vec<serde_json::Value> {
    let text = fs::read_to_string(dir.join("out/out.log")).unwrap_or_default();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn every_body_kind_and_the_kafka_rest_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let (pipe, url) = start(dir.path(), "");
    let json = ["-H", "Content-Type: application/json"];
    assert_eq!(curl(&url, "/app", &json, Some(br#"{"n":1}"#)).0, 200);
    assert_eq!(curl(&url, "/app", &json, Some(br#"[{"n":2},{"n":3}]"#)).0, 200);
    let nd = ["-H", "Content-Type: application/x-ndjson"];
    assert_eq!(curl(&url, "/app", &nd, Some(b"{\"n\":4}\n{\"n\":5}\n")).0, 200);
    let text = ["-H", "Content-Type: text/plain"];
    assert_eq!(curl(&url, "/lines", &text, Some(b"plain six\nplain seven\n")).0, 200);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"{\"n\":8}\n{\"n\":9}\n").unwrap();
    let gz = gz.finish().unwrap();
    assert_eq!(curl(&url, "/app", &["-H", "Content-Encoding: gzip"], Some(&gz)).0, 200);
    let zst = zstd::encode_all(&br#"{"n":10}"#[..], 3).unwrap();
    assert_eq!(
        curl(
            &url,
            "/app",
            &["-H", "Content-Encoding: zstd", "-H", "Content-Type: application/json"],
            Some(&zst)
        )
        .0,
        200
    );

    let rest = ["-H", "Content-Type: application/vnd.kafka.json.v2+json"];
    let (status, reply) = curl(
        &url,
        "/topics/web-logs",
        &rest,
        Some(br#"{"records":[{"key":"k1","value":{"n":11}},{"value":{"n":12}}]}"#),
    );
    assert_eq!(status, 200, "{reply}");
    assert!(reply.contains("application/vnd.kafka.v2+json"), "{reply}");
    let body: serde_json::Value = serde_json::from_str(reply.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["offsets"].as_array().unwrap().len(), 2);
    assert!(body["offsets"][0]["offset"].is_null() && body["key_schema_id"].is_null());

    // Answered 200 means delivered: the events are already in the file.
    let events = out_events(dir.path());
    assert_eq!(pipe.stop(30), 0);
    let mut ns: Vec<i64> = events.iter().filter_map(|e| e["n"].as_i64()).collect();
    ns.sort();
    assert_eq!(ns, (1..=12).filter(|n| *n != 6 && *n != 7).collect::<Vec<_>>());
    assert!(
        events
            .iter()
            .any(|e| e["message"] == "plain six" && e["path"] == "/lines")
    );
    let k1 = events.iter().find(|e| e["n"] == 11).unwrap();
    assert_eq!(
        (k1["topic"].as_str(), k1["key"].as_str()),
        (Some("web-logs"), Some("k1"))
    );
}

/// The body of an answer.
fn body_of(reply: &str) -> &str {
    reply.split("\r\n\r\n").nth(1).unwrap_or("")
}

/// The Kafka REST Proxy's other produce APIs with the request bodies of Confluent's
/// API reference: v2 binary (base64 keys and values arrive decoded), v3 (one record,
/// and a stream answered report by report), `GET /topics[/{t}]` from `topics`, and
/// the error codes clients check (40401, 42201, 415).
#[test]
fn kafka_rest_v2_binary_v3_and_topic_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let (pipe, url) = start(dir.path(), r#"topics = ["test", "topic-1"]"#);
    let (status, reply) = curl(&url, "/topics", &[], None);
    assert_eq!((status, body_of(&reply)), (200, r#"["test","topic-1"]"#), "{reply}");
    let (status, reply) = curl(&url, "/topics/test", &[], None);
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(body_of(&reply)).unwrap()["name"],
        "test"
    );
    let (status, reply) = curl(&url, "/topics/nope", &[], None);
    assert_eq!(status, 404, "{reply}");
    assert!(body_of(&reply).contains(r#""error_code":40401"#), "{reply}");

    let binary = ["-H", "Content-Type: application/vnd.kafka.binary.v2+json"];
    let (status, reply) = curl(
        &url,
        "/topics/test",
        &binary,
        Some(br#"{"records":[{"key":"a2V5","value":"Y29uZmx1ZW50"},{"value":"a2Fma2E=","partition":1},{"value":"bG9ncw=="}]}"#),
    );
    assert_eq!(status, 200, "{reply}");
    let body: serde_json::Value = serde_json::from_str(body_of(&reply)).unwrap();
    assert_eq!(body["offsets"].as_array().unwrap().len(), 3);
    let (status, reply) = curl(
        &url,
        "/topics/nope",
        &binary,
        Some(br#"{"records":[{"value":"bG9ncw=="}]}"#),
    );
    assert_eq!(status, 404, "{reply}");
    assert!(body_of(&reply).contains(r#""error_code":40401"#), "{reply}");
    let (status, reply) = curl(
        &url,
        "/topics/test",
        &binary,
        Some(br#"{"records":[{"value":"not base64!"}]}"#),
    );
    assert_eq!(status, 422, "{reply}");
    assert!(body_of(&reply).contains(r#""error_code":42201"#), "{reply}");
    let avro = ["-H", "Content-Type: application/vnd.kafka.avro.v2+json"];
    let (status, reply) = curl(
        &url,
        "/topics/test",
        &avro,
        Some(br#"{"value_schema_id":1,"records":[{"value":{}}]}"#),
    );
    assert_eq!(status, 415, "{reply}");
    assert!(body_of(&reply).contains(r#""error_code":415"#), "{reply}");

    let v3 = ["-H", "Content-Type: application/json"];
    let one = br#"{"partition_id": 1, "headers": [{"name": "Header-1", "value": "SGVhZGVyLTE="}], "key": {"type": "JSON", "data": "Hello"}, "value": {"type": "JSON", "data": "World"}, "timestamp": "2021-02-05T19:14:42Z"}"#;
    let (status, reply) = curl(&url, "/v3/clusters/cluster-1/topics/topic-1/records", &v3, Some(one));
    assert_eq!(status, 200, "{reply}");
    let report: serde_json::Value = serde_json::from_str(body_of(&reply).trim()).unwrap();
    assert_eq!(report["error_code"], 200);
    assert_eq!(
        (report["cluster_id"].as_str(), report["topic_name"].as_str()),
        (Some("cluster-1"), Some("topic-1"))
    );
    assert_eq!(report["value"], serde_json::json!({"type": "JSON", "size": 7}));
    let stream = b"{\"value\": {\"type\": \"STRING\", \"data\": \"v3-a\"}}\n{\"value\": {\"type\": \"AVRO\", \"data\": 1}}\n{\"value\": {\"type\": \"BINARY\", \"data\": \"djMtYg==\"}}";
    let (status, reply) = curl(&url, "/v3/clusters/c/topics/topic-1/records", &v3, Some(stream));
    assert_eq!(status, 200, "{reply}");
    let codes: Vec<i64> = body_of(&reply)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["error_code"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(codes, vec![200, 400, 200], "{reply}");
    let (status, reply) = curl(&url, "/v3/clusters/c/topics/nope/records", &v3, Some(one));
    assert_eq!(status, 404, "{reply}");

    let events = out_events(dir.path());
    assert_eq!(pipe.stop(30), 0);
    let messages: Vec<&str> = events.iter().filter_map(|e| e["message"].as_str()).collect();
    for m in ["confluent", "kafka", "logs", "World", "v3-a", "v3-b"] {
        assert!(messages.contains(&m), "`{m}` missing from {messages:?}");
    }
    let confluent = events.iter().find(|e| e["message"] == "confluent").unwrap();
    assert_eq!(
        (confluent["key"].as_str(), confluent["topic"].as_str()),
        (Some("key"), Some("test"))
    );
    let world = events.iter().find(|e| e["message"] == "World").unwrap();
    assert_eq!(world["headers"]["Header-1"], "Header-1");
    assert_eq!(world["timestamp"], "2021-02-05T19:14:42Z");
    assert_eq!(events.len(), 6, "the refused records are not delivered: {events:?}");
}

#[test]
fn auth_size_and_malformed_bodies_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let (pipe, url) = start(
        dir.path(),
        "max_body_bytes = 1024\n[sources.web.auth]\nbearer_tokens = [\"tok\"]\n",
    );
    let ok = ["-H", "Authorization: Bearer tok"];
    let (status, reply) = curl(&url, "/", &["-H", "Authorization: Bearer nope"], Some(b"x"));
    assert_eq!(status, 401);
    assert!(reply.to_ascii_lowercase().contains("www-authenticate: bearer"));
    assert_eq!(curl(&url, "/", &[], Some(b"x")).0, 401);
    assert_eq!(curl(&url, "/", &ok, Some(&vec![b'a'; 4096])).0, 413);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![b'a'; 100_000]).unwrap();
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 1024);
    assert_eq!(
        curl(&url, "/", &[ok[0], ok[1], "-H", "Content-Encoding: gzip"], Some(&bomb)).0,
        413,
        "decompressed size is capped too"
    );
    let (status, reply) = curl(
        &url,
        "/",
        &[ok[0], ok[1], "-H", "Content-Type: application/x-ndjson"],
        Some(b"{\"a\":1}\n{\"a\":\n"),
    );
    assert_eq!(status, 400);
    assert!(reply.contains("line 2"), "{reply}");
    assert_eq!(curl(&url, "/", &ok, Some(b"fine\n")).0, 200);
    assert_eq!(pipe.stop(30), 0);
    assert_eq!(out_events(dir.path()).len(), 1, "refused requests deliver nothing");
    let counters = log_lines_with(
        &dir.path().join("pipe.log"),
        "Component counters at exit. component=web",
    )
    .join("");
    assert!(
        counters.contains("unauthorized") && counters.contains("too_large") && counters.contains("bad_request"),
        "{counters}"
    );
}

/// Fault test: the sink cannot write (a plain file stands where its directory should
/// be). Requests get 503 (not delivered in time, then backpressure with Retry-After);
/// once the sink recovers, a client that retries every 5xx ends with every event
/// delivered at least once.
#[test]
fn stalled_sink_gives_503_and_retries_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("out"), "in the way").unwrap();
    let (pipe, url) = start(dir.path(), "ack_timeout_secs = 1\nbackpressure_timeout_ms = 200");
    let json = ["-H", "Content-Type: application/json"];
    let (status, _) = curl(&url, "/", &json, Some(br#"{"n":0}"#));
    assert_eq!(status, 503, "not delivered in time must not be a 200");
    let mut saw_retry_after = false;
    for n in 1..40 {
        let (status, reply) = curl(&url, "/", &json, Some(format!(r#"{{"n":{n}}}"#).as_bytes()));
        assert_eq!(status, 503);
        saw_retry_after |= reply.to_ascii_lowercase().contains("retry-after: 1");
    }
    assert!(saw_retry_after);
    // A Kafka REST client is told to retry with the code it checks.
    let rest = ["-H", "Content-Type: application/vnd.kafka.json.v2+json"];
    let (status, reply) = curl(&url, "/topics/t", &rest, Some(br#"{"records":[{"value":{"n":0}}]}"#));
    assert_eq!(status, 503, "{reply}");
    assert!(reply.contains(r#""error_code":50003"#), "{reply}");
    fs::remove_file(dir.path().join("out")).unwrap();
    for n in 0..40 {
        let body = format!(r#"{{"n":{n}}}"#);
        assert!(
            wait_for(60, || curl(&url, "/", &json, Some(body.as_bytes())).0 == 200),
            "event {n} never accepted"
        );
    }
    assert_eq!(pipe.stop(30), 0);
    let got: std::collections::HashSet<i64> = out_events(dir.path()).iter().filter_map(|e| e["n"].as_i64()).collect();
    assert_eq!(got.len(), 40);
}

#[test]
fn https_with_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (crt, key) = self_signed(dir.path());
    let port = free_port();
    let topology = dir.path().join("t.toml");
    fs::write(
        &topology,
        format!(
            "data_dir = \"{data}\"\n[sources.web]\ntype = \"http\"\naddress = \"127.0.0.1:{port}\"\n[sources.web.tls]\ncrt_file = \"{crt}\"\nkey_file = \"{key}\"\n[sinks.out]\ntype = \"file\"\ninputs = [\"web\"]\npath = \"{out}/out.log\"\n",
            data = dir.path().join("data").display(),
            crt = crt.display(),
            key = key.display(),
            out = dir.path().join("out").display()
        ),
    )
    .unwrap();
    let log = dir.path().join("pipe.log");
    let pipe = Pipe::start(&topology, &log);
    let url = format!("https://127.0.0.1:{port}");
    let ca = ["--cacert", crt.to_str().unwrap()];
    assert!(
        wait_for(30, || curl(&url, "/health", &ca, None).0 == 200),
        "{}",
        tail(&log, 20)
    );
    assert_eq!(
        curl(
            &url,
            "/",
            &[ca[0], ca[1], "-H", "Content-Type: application/json"],
            Some(br#"{"n":1}"#)
        )
        .0,
        200
    );
    assert_eq!(
        curl(&url, "/health", &[], None).0,
        0,
        "an unknown certificate is refused by the client"
    );
    assert_eq!(
        curl(&format!("http://127.0.0.1:{port}"), "/health", &[], None).0,
        0,
        "no plain HTTP on a TLS port"
    );
    assert_eq!(pipe.stop(30), 0);
    assert_eq!(out_events(dir.path()).len(), 1);
}
