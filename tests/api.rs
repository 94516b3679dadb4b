//! The API of a running pipe: Prometheus metrics scraped by a real Prometheus (Debian's
//! `prometheus` package, installed by tests/run.sh) and checked by `promtool`, health
//! through a downstream outage, `pipe tap` with a subscriber that never reads, `pipe
//! top --once --format json`, the bearer token, and a taken port.

mod common;

use common::http::*;
use common::*;
use std::fs;
use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn write_topology(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("topology.toml");
    fs::write(&path, text).unwrap();
    path
}

/// A real Prometheus scrapes the API every second: the sink's sent counter rises, the
/// Kafka consumer's lag series is there, and promtool accepts the exposition.
#[test]
fn prometheus_scrapes_sink_counters_and_kafka_lag() {
    let dir = tempfile::tempdir().unwrap();
    let (mut mock, bootstrap) = kafka_mock("api-logs:2");
    let api = free_port();
    let topology = write_topology(
        dir.path(),
        &format!(
            r#"
data_dir = "{data}"
[api]
enabled = true
address = "127.0.0.1:{api}"

[sources.gen]
type = "generator"
rate = 300.0

[sinks.to_kafka]
type = "kafka"
inputs = ["gen"]
bootstrap_servers = "{bootstrap}"
topic = "api-logs"

[sources.from_kafka]
type = "kafka"
bootstrap_servers = "{bootstrap}"
group_id = "api-test"
topics = ["api-logs"]
statistics_interval_ms = 500

[sinks.bh]
type = "blackhole"
inputs = ["from_kafka"]
"#,
            data = dir.path().join("data").display(),
        ),
    );
    let log = dir.path().join("pipe.log");
    let pipe = Pipe::start(&topology, &log);
    wait_api(api, &log);

    // promtool accepts the exposition.
    assert!(
        wait_for(20, || get(api, "/metrics", None)
            .is_some_and(|(_, b)| b.contains("pipe_kafka_consumer_lag_messages"))),
        "no lag series: {}",
        get(api, "/metrics", None).map(|x| x.1).unwrap_or_default()
    );
    let (_, exposition) = get(api, "/metrics", None).unwrap();
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed by tests/run.sh");
    promtool.stdin.take().unwrap().write_all(exposition.as_bytes()).unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}\n{exposition}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // A real Prometheus scrapes it.
    let prom_port = free_port();
    let config = dir.path().join("prometheus.yml");
    fs::write(
        &config,
        format!("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: pipe\n    static_configs:\n      - targets: ['127.0.0.1:{api}']\n"),
    )
    .unwrap();
    let mut prometheus = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        .stdout(Stdio::null())
        .stderr(fs::File::create(dir.path().join("prometheus.log")).unwrap())
        .spawn()
        .expect("prometheus is installed by tests/run.sh");
    let query = |q: &str| -> Vec<serde_json::Value> {
        let path = format!("/api/v1/query?query={}", url_encode(q));
        get(prom_port, &path, None)
            .and_then(|(_, body)| {
                let start = body.find('{')?;
                let end = body.rfind('}')? + 1;
                serde_json::from_str::<serde_json::Value>(&body[start..end]).ok()
            })
            .and_then(|v| v["data"]["result"].as_array().cloned())
            .unwrap_or_default()
    };
    let value = |r: &serde_json::Value| {
        r["value"][1]
            .as_str()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(-1.0)
    };
    let sent = r#"pipe_component_sent_events_total{component_id="to_kafka"}"#;
    let mut seen = Vec::new();
    let rising = wait_for(60, || {
        if let Some(r) = query(sent).first() {
            seen.push(value(r));
        }
        seen.len() >= 2 && seen[seen.len() - 1] > seen[0] && seen[0] >= 0.0
    });
    let lag = query(r#"pipe_kafka_consumer_lag_messages{component_id="from_kafka",topic="api-logs"}"#);
    let _ = prometheus.kill();
    let _ = prometheus.wait();
    assert_eq!(pipe.stop(30), 0);
    let _ = mock.kill();
    let _ = mock.wait();
    assert!(
        rising,
        "Prometheus did not see the sink's counter rise: {seen:?}\n{}",
        fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default()
    );
    assert!(!lag.is_empty(), "Prometheus has no lag series for the consumer");
    assert!(lag.iter().all(|r| value(r) >= 0.0), "{lag:?}");
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `pipe tap` prints events of the named output; a subscriber that never reads loses
/// samples (reported) while every event still reaches the sink and the file
/// checkpoint reaches the end of the file.
#[test]
fn a_tap_that_never_reads_holds_nothing_up() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    fs::create_dir_all(&input).unwrap();
    const LINES: u64 = 40_000;
    let pad = "p".repeat(1000);
    let mut text = String::new();
    for n in 0..LINES {
        text.push_str(&format!("{} {pad}\n", line(n)));
    }
    let api = free_port();
    let topology = write_topology(
        dir.path(),
        &format!(
            r#"
data_dir = "{data}"
[api]
enabled = true
address = "127.0.0.1:{api}"

[sources.logs]
type = "file"
include = ["{input}/*.log"]

[transforms.shape]
type = "remap"
inputs = ["logs"]
source = '.tapped = true'

[sinks.out]
type = "file"
inputs = ["shape"]
path = "{out}/out.log"
"#,
            data = dir.path().join("data").display(),
            input = input.display(),
            out = dir.path().join("out").display(),
        ),
    );
    let log = dir.path().join("pipe.log");
    let pipe = Pipe::start(&topology, &log);
    wait_api(api, &log);

    // A subscriber that asks for everything and never reads.
    let mut stuck = TcpStream::connect(("127.0.0.1", api)).unwrap();
    write!(
        stuck,
        "GET /api/v1/tap?outputs_of=shape&limit=10000&interval_ms=10 HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    .unwrap();
    // `pipe tap` shows events of the output, with the remap's field.
    let tap = Command::new(pipe_bin())
        .args([
            "tap",
            "--api",
            &format!("127.0.0.1:{api}"),
            "--outputs-of",
            "shape",
            "--limit",
            "3",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    fs::write(input.join("app.log"), &text).unwrap();
    let tap = tap.wait_with_output().unwrap();
    assert!(tap.status.success(), "{}", String::from_utf8_lossy(&tap.stderr));
    let samples: Vec<serde_json::Value> = String::from_utf8_lossy(&tap.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(samples.len(), 3, "{samples:?}");
    assert!(
        samples
            .iter()
            .all(|s| s["output"] == "shape" && s["event"]["tapped"] == true),
        "{samples:?}"
    );

    assert!(
        wait_for(120, || count_lines(&dir.path().join("out")) as u64 >= LINES),
        "the sink got {} of {LINES} lines",
        count_lines(&dir.path().join("out"))
    );
    let behind = || {
        get(api, "/metrics", None)
            .and_then(|(_, m)| sample(&m, "pipe_file_source_bytes_behind", &["component_id=\"logs\""]))
    };
    assert!(
        wait_for(30, || behind() == Some(0.0)),
        "checkpoint not at the end: {:?}",
        behind()
    );
    let (_, metrics) = get(api, "/metrics", None).unwrap();
    let lost = sample(&metrics, "pipe_tap_lost_samples_total", &[]).unwrap_or(0.0);
    assert!(lost > 0.0, "the stuck tap lost nothing?\n{metrics}");
    drop(stuck);
    assert_eq!(pipe.stop(30), 0);
    let (messages, _) = messages(&dir.path().join("out"));
    let (missing, _) = missing_and_duplicates(&tally(&messages), LINES);
    assert!(missing.is_empty(), "missing {:?}", ranges(&missing));
}

/// `pipe top --once --format json` reports totals and rates that match the counters.
#[test]
fn top_once_json_matches_the_counters() {
    let dir = tempfile::tempdir().unwrap();
    let api = free_port();
    let topology = write_topology(
        dir.path(),
        &format!(
            r#"
data_dir = "{data}"
[api]
enabled = true
address = "127.0.0.1:{api}"
[sources.gen]
type = "generator"
rate = 500.0
[sinks.bh]
type = "blackhole"
inputs = ["gen"]
"#,
            data = dir.path().join("data").display(),
        ),
    );
    let log = dir.path().join("pipe.log");
    let pipe = Pipe::start(&topology, &log);
    wait_api(api, &log);
    std::thread::sleep(Duration::from_secs(4));
    let before = json(api, "/api/v1/components/bh")["counters"]["received_events"]
        .as_u64()
        .unwrap();
    let out = Command::new(pipe_bin())
        .args([
            "top",
            "--api",
            &format!("127.0.0.1:{api}"),
            "--once",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let after = json(api, "/api/v1/components/bh")["counters"]["received_events"]
        .as_u64()
        .unwrap();
    assert_eq!(pipe.stop(30), 0);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let top: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let bh = top["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "bh")
        .unwrap()
        .clone();
    let total = bh["received_events_total"].as_u64().unwrap();
    assert!(before <= total && total <= after, "{before} <= {total} <= {after}");
    let rate = bh["received_events_per_sec"].as_f64().unwrap();
    assert!((300.0..=700.0).contains(&rate), "rate {rate} for a 500/s generator");
    let gen_rate = top["components"][0]["sent_events_per_sec"].as_f64().unwrap();
    assert!((300.0..=700.0).contains(&gen_rate), "{top}");
}

/// A sink whose server is down makes `/health` degraded; liveness stays 200; with
/// `sink_stall_secs`, readiness turns 503 while it writes nothing.
#[test]
fn a_sink_with_its_server_down_is_degraded_but_live() {
    let dir = tempfile::tempdir().unwrap();
    let api = free_port();
    let dead = free_port();
    let topology = write_topology(
        dir.path(),
        &format!(
            r#"
data_dir = "{data}"
shutdown_timeout_secs = 2
[api]
enabled = true
address = "127.0.0.1:{api}"
sink_stall_secs = 2
[sources.gen]
type = "generator"
rate = 100.0
[sinks.es]
type = "elasticsearch"
inputs = ["gen"]
endpoints = ["http://127.0.0.1:{dead}"]
index = "logs"
healthcheck = false
"#,
            data = dir.path().join("data").display(),
        ),
    );
    let log = dir.path().join("pipe.log");
    let pipe = Pipe::start(&topology, &log);
    wait_api(api, &log);
    let degraded = wait_for(30, || {
        get(api, "/health", None).is_some_and(|(_, b)| b.contains("\"degraded\""))
    });
    let health = get(api, "/health", None).unwrap();
    let live = get(api, "/health/live", None).unwrap();
    let not_ready = wait_for(20, || get(api, "/health/ready", None).is_some_and(|(s, _)| s == 503));
    let ready = get(api, "/health/ready", None).unwrap();
    let metrics = get(api, "/metrics", None).unwrap().1;
    pipe.signal("KILL");
    assert!(degraded, "{health:?}");
    assert!(
        health.1.contains("\"es\":{") && health.1.contains("retrying"),
        "{health:?}"
    );
    assert_eq!(live.0, 200);
    assert!(not_ready, "{ready:?}");
    assert!(ready.1.contains("sink `es`"), "{ready:?}");
    assert_eq!(
        sample(&metrics, "pipe_component_retrying", &["component_id=\"es\""]),
        Some(1.0),
        "{metrics}"
    );
}

/// With a token, everything but health needs it; a taken port is a configuration error.
#[test]
fn the_token_guards_the_api_and_a_taken_port_exits_78() {
    let dir = tempfile::tempdir().unwrap();
    let api = free_port();
    let topology = write_topology(
        dir.path(),
        &format!(
            r#"
data_dir = "{data}"
[api]
enabled = true
address = "127.0.0.1:{api}"
token = "s3cret"
[sources.gen]
type = "generator"
rate = 10.0
[sinks.bh]
type = "blackhole"
inputs = ["gen"]
"#,
            data = dir.path().join("data").display(),
        ),
    );
    let log = dir.path().join("pipe.log");
    let pipe = Pipe::start(&topology, &log);
    wait_api(api, &log);
    let anonymous = get(api, "/metrics", None).unwrap();
    let wrong = get(api, "/api/v1/topology", Some("nope")).unwrap();
    let right = get(api, "/api/v1/topology", Some("s3cret")).unwrap();
    let ready = get(api, "/health/ready", None).unwrap();

    // A second pipe on the same address.
    let second = Command::new(pipe_bin())
        .args([
            "-t",
            topology.to_str().unwrap(),
            "--data-dir",
            dir.path().join("d2").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    // With --api off it runs beside the first.
    let mut off = Command::new(pipe_bin())
        .args([
            "-t",
            topology.to_str().unwrap(),
            "--api",
            "off",
            "--data-dir",
            dir.path().join("d3").to_str().unwrap(),
        ])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let off_running = off.try_wait().unwrap().is_none();
    let _ = off.kill();
    let _ = off.wait();
    assert_eq!(pipe.stop(30), 0);
    assert_eq!(anonymous.0, 401, "{anonymous:?}");
    assert_eq!(wrong.0, 401);
    assert_eq!(right.0, 200, "{right:?}");
    assert!(
        right.1.contains("\"from\":\"gen\"") && right.1.contains("\"to\":\"bh\""),
        "{right:?}"
    );
    assert_eq!(ready.0, 200);
    assert_eq!(
        second.status.code(),
        Some(78),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("api.address") && err.contains(&api.to_string()), "{err}");
    assert!(off_running, "pipe --api off did not run beside the first");
}
