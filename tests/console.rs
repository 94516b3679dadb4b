//! The web console in a real browser: Debian's Chromium driven by playwright-core
//! (npm, pinned by console/package-lock.json, installed by tests/run.sh into
//! `PIPE_TEST_NODE_CONSOLE`, default ~/.cache/pipe/node-console), against a running
//! pipe: a generator → remap → archive + blackhole topology, and a `kafka` source on
//! librdkafka's mock cluster. Also runs the console's own unit tests (node's test
//! runner) and checks that the embedded bundle is the one its sources build.
//! Screenshots go to each test's temp dir; their paths are printed.

mod common;
use common::http::*;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn node_modules() -> PathBuf {
    std::env::var_os("PIPE_TEST_NODE_CONSOLE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/pipe/node-console"))
        .join("node_modules")
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `node args…` with the console's packages; panics with its output on failure.
fn node(args: &[&str]) -> String {
    let out = Command::new("node")
        .args(args)
        .env("NODE_PATH", node_modules())
        .current_dir(repo())
        .output()
        .expect("run node (tests/run.sh installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "node {args:?} failed:\n{text}");
    println!("{text}");
    text
}

/// The generator → remap → blackhole pipeline the console tests watch.
const PIPELINE: &str = r#"
[sources.gen]
type = "generator"
format = "json"
rate = 4000
batch_size = 20

[transforms.shape]
type = "remap"
inputs = ["gen"]
source = '. = parse_json!(.message)'

[sinks.out]
type = "blackhole"
inputs = ["shape"]
"#;

/// A pipe running `components` with the API on a free port (and `token`, if given);
/// returns it, the API's port and the console's URL.
fn start(dir: &Path, token: Option<&str>, components: &str) -> (Pipe, u16, String) {
    let api = free_port();
    let token = token.map(|t| format!("token = \"{t}\"\n")).unwrap_or_default();
    let topology = dir.join("topology.toml");
    std::fs::write(
        &topology,
        format!(
            "data_dir = \"{data}\"\n[api]\nenabled = true\naddress = \"127.0.0.1:{api}\"\n{token}\n{components}",
            data = dir.join("data").display(),
        ),
    )
    .unwrap();
    let log = dir.join("pipe.log");
    let pipe = Pipe::start(&topology, &log);
    wait_api(api, &log);
    (pipe, api, format!("http://127.0.0.1:{api}/"))
}

#[test]
fn console_unit_tests_pass() {
    let dir = tempfile::tempdir().unwrap();
    let build = dir.path().join("tests");
    let build = build.to_str().unwrap();
    node(&["console/build.js", "--tests", build]);
    let out = node(&["--test", build]);
    assert!(out.contains("# fail 0"), "{out}");
}

#[test]
fn embedded_bundle_is_built_from_the_sources() {
    let dir = tempfile::tempdir().unwrap();
    node(&["console/build.js", dir.path().to_str().unwrap()]);
    for asset in ["app.js", "app.css", "index.html"] {
        let built = std::fs::read(dir.path().join(asset)).unwrap();
        let committed = std::fs::read(repo().join("console/dist").join(asset)).unwrap();
        assert!(
            built == committed,
            "console/dist/{asset} is not what console/src builds: run `node console/build.js` and commit it"
        );
    }
}

/// The topology view shows every component and an edge rate that rises; the tap view
/// shows events of the chosen output, stops when paused, and keeps at most 1,000 rows
/// after 5,000 events.
#[test]
fn console_shows_the_topology_and_taps_an_output() {
    let dir = tempfile::tempdir().unwrap();
    let (pipe, _, url) = start(dir.path(), None, PIPELINE);
    let shots = dir.keep();
    node(&[
        "tests/console/browser.js",
        "pipeline",
        &url,
        shots.to_str().unwrap(),
        "gen",
        "shape",
        "out",
    ]);
    assert_eq!(pipe.stop(30), 0);
}

/// With a token set, the console without it shows the prompt and no data; a wrong
/// token is refused; the right one shows the topology.
#[test]
fn console_asks_for_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let (pipe, _, url) = start(dir.path(), Some("s3cret-console"), PIPELINE);
    let shots = dir.keep();
    node(&[
        "tests/console/browser.js",
        "token",
        &url,
        shots.to_str().unwrap(),
        "s3cret-console",
        "gen",
        "shape",
        "out",
    ]);
    assert_eq!(pipe.stop(30), 0);
}

/// A `SELECT service, count(*) … GROUP BY 1` in the SQL view shows the rows `pipe
/// query` prints for the same archive, and draws them as a chart. The archived
/// generator stops after 3,000 events so both read the same files; a second one keeps
/// the pipe running.
#[test]
fn sql_view_answers_like_pipe_query() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let components = format!(
        r#"
[sources.gen]
type = "generator"
format = "json"
rate = 3000
count = 3000

[transforms.shape]
type = "remap"
inputs = ["gen"]
source = '. = parse_json!(.message)'

[sinks.archive]
type = "object_store"
inputs = ["shape"]
url = "{archive}"
max_age_secs = 1

[sinks.out]
type = "blackhole"
inputs = ["shape", "keepalive"]

[sources.keepalive]
type = "generator"
rate = 10
"#,
        archive = archive.display()
    );
    let (pipe, api, url) = start(dir.path(), None, &components);
    let archived = || {
        json(api, "/api/v1/components/archive")["counters"]["sent_events"]
            .as_u64()
            .unwrap_or(0)
    };
    assert!(
        wait_for(60, || archived() >= 3000),
        "the archive has {} events",
        archived()
    );

    let sql = "SELECT service, count(*) AS events FROM logs GROUP BY 1 ORDER BY 1";
    let out = std::process::Command::new(pipe_bin())
        .args(["query", "--archive", archive.to_str().unwrap(), "--format", "csv", sql])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: Vec<Vec<String>> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    assert!(rows.len() > 1, "pipe query found {rows:?}");
    let total: u64 = rows.iter().map(|r| r[1].parse::<u64>().unwrap()).sum();
    assert_eq!(total, 3000);

    // The endpoint itself: the same rows, numbers as numbers; a write is refused.
    let (status, body) = post_json(api, "/api/v1/query", &serde_json::json!({ "sql": sql })).unwrap();
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value =
        serde_json::from_str(&body[body.find('{').unwrap()..=body.rfind('}').unwrap()]).unwrap();
    assert_eq!(answer["columns"][1]["name"], "events");
    assert_eq!(
        answer["rows"][0][1].as_u64().map(|n| n.to_string()).as_ref(),
        Some(&rows[0][1])
    );
    let (status, body) = post_json(api, "/api/v1/query", &serde_json::json!({ "sql": "DROP TABLE logs" })).unwrap();
    assert_eq!(status, 400, "{body}");

    let shots = dir.keep();
    node(&[
        "tests/console/browser.js",
        "sql",
        &url,
        shots.to_str().unwrap(),
        sql,
        &serde_json::to_string(&rows).unwrap(),
    ]);
    assert_eq!(pipe.stop(30), 0);
}

/// With a `kafka` source on the mock cluster whose sink cannot deliver (an
/// Elasticsearch address nothing listens on), the lag stays put: the Kafka view shows
/// per partition the lag `pipe_kafka_consumer_lag_messages` reports.
#[test]
fn kafka_view_shows_the_lag_of_each_partition() {
    let dir = tempfile::tempdir().unwrap();
    let (mut mock, bootstrap) = kafka_mock("console-logs:2");
    // 400 records, the first 100 consumed and committed by the group.
    let produce = |count: u64, name: &str| {
        let topology = dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &topology,
            format!(
                "data_dir = \"{data}\"\n[sources.gen]\ntype = \"generator\"\ncount = {count}\nrate = 2000\n\
                 [sinks.k]\ntype = \"kafka\"\ninputs = [\"gen\"]\nbootstrap_servers = \"{bootstrap}\"\ntopic = \"console-logs\"\n",
                data = dir.path().join(name).display()
            ),
        )
        .unwrap();
        let mut p = Pipe::start(&topology, &dir.path().join(format!("{name}.log")));
        assert!(wait_for(60, || !p.running()), "the producer did not finish");
    };
    produce(100, "first");
    let consumer = |sink: &str| {
        format!(
            r#"
[sources.from_kafka]
type = "kafka"
bootstrap_servers = "{bootstrap}"
group_id = "console"
topics = ["console-logs"]
statistics_interval_ms = 500
commit_interval_ms = 200

{sink}
"#
        )
    };
    let committed = |api: u16| -> f64 {
        let text = get(api, "/metrics", None).map(|x| x.1).unwrap_or_default();
        ["0", "1"]
            .iter()
            .filter_map(|p| sample(&text, "pipe_kafka_committed_offset", &[&format!("partition=\"{p}\"")]))
            .sum()
    };
    let sub = tempfile::tempdir().unwrap();
    let (pipe, api, _) = start(
        sub.path(),
        None,
        &consumer("[sinks.bh]\ntype = \"blackhole\"\ninputs = [\"from_kafka\"]\n"),
    );
    assert!(
        wait_for(60, || committed(api) >= 100.0),
        "the group committed {}",
        committed(api)
    );
    assert_eq!(pipe.stop(30), 0);
    produce(300, "second");

    let closed = free_port();
    let (pipe, api, url) = start(
        dir.path(),
        None,
        &consumer(&format!(
            "[sinks.es]\ntype = \"elasticsearch\"\ninputs = [\"from_kafka\"]\nendpoints = [\"http://127.0.0.1:{closed}\"]\nindex = \"logs\"\nhealthcheck = false\n"
        )),
    );
    let lags = || -> serde_json::Map<String, serde_json::Value> {
        let text = get(api, "/metrics", None).map(|x| x.1).unwrap_or_default();
        ["0", "1"]
            .iter()
            .filter_map(|p| {
                let lag = sample(
                    &text,
                    "pipe_kafka_consumer_lag_messages",
                    &[&format!("partition=\"{p}\"")],
                )?;
                Some((format!("console-logs/{p}"), serde_json::json!(lag as u64)))
            })
            .collect()
    };
    // Settled: both partitions reported, 300 records behind in all.
    let mut settled = serde_json::Map::new();
    let ok = wait_for(60, || {
        settled = lags();
        settled.len() == 2 && settled.values().map(|v| v.as_u64().unwrap()).sum::<u64>() == 300
    });
    assert!(ok, "the lag did not settle at 300: {settled:?}");
    let shots = dir.keep();
    node(&[
        "tests/console/browser.js",
        "kafka",
        &url,
        shots.to_str().unwrap(),
        &serde_json::Value::Object(settled.clone()).to_string(),
    ]);
    assert_eq!(lags(), settled, "the lag moved while the view was read");
    // Its sink cannot deliver, so a graceful stop would wait out the shutdown timeout.
    pipe.kill9();
    let _ = mock.kill();
    let _ = mock.wait();
}
