//! Reload through the real binary, on SIGHUP and with `--watch`: a remap edited under
//! a client that posts all along (nothing refused, nothing lost, the new program from
//! some point on); an invalid edit that changes nothing; a changed file sink that
//! drains into its old file while its successor writes the new one; an Elasticsearch
//! sink that cannot drain, stopped at `reload_timeout_secs`, whose events its
//! successor reads again from the disk buffer; an `http` source replaced on the same
//! port; a Kafka source on librdkafka's mock cluster that keeps its group membership
//! while a sink beside it changes. Elasticsearch is the fake in `tests/common/es.rs`
//! (no Elasticsearch server can run on these machines).

mod common;
#[path = "common/es.rs"]
mod es;

use common::http::*;
use common::*;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

fn ndjson(first: u64, n: u64) -> String {
    (first..first + n).map(|i| format!("{{\"seq\":{i}}}\n")).collect()
}

/// An `http` source → remap (`program`) → file sink at `out` topology.
fn http_remap_file(dir: &Path, http: u16, api: u16, program: &str, out: &str) -> String {
    format!(
        r#"data_dir = "{data}"
shutdown_timeout_secs = 10
reload_timeout_secs = 5
[api]
enabled = true
address = "127.0.0.1:{api}"

[sources.web]
type = "http"
address = "127.0.0.1:{http}"
decoding = "ndjson"

[transforms.tag]
type = "remap"
inputs = ["web"]
{program}

[sinks.out]
type = "file"
inputs = ["tag"]
path = "{out}"
encoding = "json"
"#,
        data = dir.join("data").display(),
        out = dir.join(out).display(),
    )
}

/// A running http → remap → file pipe (see [`http_remap_file`]).
struct HttpRemapFile {
    dir: tempfile::TempDir,
    http: u16,
    api: u16,
    topology: PathBuf,
    log: PathBuf,
    pipe: Pipe,
    /// The file the sink writes now.
    out: String,
}

impl HttpRemapFile {
    /// Starts it with `program` (`{dir}` is the test's directory, where a `tag.vrl`
    /// holding `.version = 1` is written) and `pipe ARGS…`.
    fn start(program: &str, out: &str, args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("tag.vrl"), ".version = 1\n");
        let program = program.replace("{dir}", &dir.path().display().to_string());
        let (http, api) = (free_port(), free_port());
        let topology = dir.path().join("t.toml");
        write(&topology, &http_remap_file(dir.path(), http, api, &program, out));
        let log = dir.path().join("pipe.log");
        let pipe = Pipe::start_args(&topology, &log, args);
        wait_api(api, &log);
        HttpRemapFile {
            dir,
            http,
            api,
            topology,
            log,
            pipe,
            out: out.to_string(),
        }
    }

    /// Stops it (exit 0); returns its directory (which holds the log), the log and the
    /// events of its (last) `out`.
    fn stop(self) -> (tempfile::TempDir, PathBuf, Vec<serde_json::Value>) {
        assert_eq!(self.pipe.stop(30), 0, "{}", tail(&self.log, 20));
        let out = json_lines(&self.dir.path().join(&self.out));
        (self.dir, self.log, out)
    }

    /// Rewrites the topology with `program` and `out` and sends SIGHUP.
    fn edit(&mut self, program: &str, out: &str) {
        self.out = out.to_string();
        write(
            &self.topology,
            &http_remap_file(self.dir.path(), self.http, self.api, program, out),
        );
        self.pipe.signal("HUP");
    }

    fn post(&self, first: u64, n: u64) -> Option<u16> {
        post(self.http, "/", "application/x-ndjson", &ndjson(first, n)).map(|r| r.0)
    }
}

fn seqs(events: &[serde_json::Value]) -> HashSet<u64> {
    events.iter().map(|e| e["seq"].as_u64().unwrap()).collect()
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

fn reloads(api: u16, result: &str) -> Option<f64> {
    let (_, text) = get(api, "/metrics", None)?;
    sample(&text, "pipe_reloads_total", &[&format!(r#"result="{result}""#)])
}

fn wait_logged(log: &Path, needle: &str, times: usize) {
    assert!(
        wait_for(30, || log_lines_with(log, needle).len() >= times),
        "`{needle}` is not logged {times} times: {}",
        tail(log, 30)
    );
}

/// Posts requests of 50 events in order, each once, until `stop`; counts the refused.
fn client(http: u16, posted: Arc<AtomicU64>, refused: Arc<AtomicU64>, stop: Arc<AtomicU64>) {
    while stop.load(Ordering::SeqCst) == 0 {
        let first = posted.load(Ordering::SeqCst);
        match post(http, "/", "application/x-ndjson", &ndjson(first, 50)) {
            Some((200, _)) => {}
            other => {
                eprintln!("request at {first}: {other:?}");
                refused.fetch_add(1, Ordering::SeqCst);
            }
        }
        posted.fetch_add(50, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_remap_edit_applies_while_a_client_posts_and_nothing_is_refused_or_lost() {
    let mut t = HttpRemapFile::start("source = '.version = 1'", "out.ndjson", &[]);
    let (posted, refused, stop) = (Arc::default(), Arc::<AtomicU64>::default(), Arc::<AtomicU64>::default());
    let c = {
        let (p, r, s, http) = (Arc::clone(&posted), refused.clone(), stop.clone(), t.http);
        std::thread::spawn(move || client(http, p, r, s))
    };
    assert!(wait_for(10, || posted.load(Ordering::SeqCst) >= 2_000));
    t.edit("source = '.version = 2'", "out.ndjson");
    wait_logged(&t.log, "Reloaded the topology.", 1);
    let after_reload = posted.load(Ordering::SeqCst) + 50;
    assert!(wait_for(10, || posted.load(Ordering::SeqCst) >= after_reload + 2_000));
    stop.store(1, Ordering::SeqCst);
    c.join().unwrap();
    let total = posted.load(Ordering::SeqCst);
    assert_eq!(reloads(t.api, "ok"), Some(1.0));
    let (_dir, log, out) = t.stop();

    assert_eq!(refused.load(Ordering::SeqCst), 0, "{}", tail(&log, 20));
    let missing: Vec<u64> = (0..total).filter(|s| !seqs(&out).contains(s)).collect();
    assert!(
        missing.is_empty(),
        "{} of {total} lost: {:?}",
        missing.len(),
        ranges(&missing)
    );
    let version = |e: &serde_json::Value| e["version"].as_u64().unwrap();
    assert!(out.iter().any(|e| version(e) == 1), "the old program ran first");
    let late_old: Vec<u64> = out
        .iter()
        .filter(|e| version(e) == 1 && e["seq"].as_u64().unwrap() >= after_reload)
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert!(
        late_old.is_empty(),
        "the old program ran after the reload: {late_old:?}"
    );
    assert!(out.iter().filter(|e| version(e) == 2).count() >= 2_000);
    assert_eq!(
        log_lines_with(&log, "Topology started.").len(),
        1,
        "the process was not restarted"
    );
}

#[test]
fn an_invalid_edit_changes_nothing() {
    let mut t = HttpRemapFile::start("source = '.version = 1'", "out.ndjson", &[]);
    t.edit("source = '.version = '", "out.ndjson");
    wait_logged(&t.log, "The new topology is invalid", 1);
    let complaint = log_lines_with(&t.log, "The new topology is invalid").join("\n");
    assert!(
        complaint.contains("transforms.tag"),
        "the error names the component: {complaint}"
    );
    assert!(t.pipe.running());
    assert_eq!(reloads(t.api, "failed"), Some(1.0));
    assert_eq!(t.post(0, 10), Some(200));
    let (_dir, _, out) = t.stop();
    assert_eq!(out.len(), 10);
    assert!(out.iter().all(|e| e["version"] == 1), "the old program goes on");
}

#[test]
fn a_changed_sink_drains_into_its_old_file_and_its_successor_writes_the_rest() {
    let mut t = HttpRemapFile::start("source = '.v = 1'", "a.ndjson", &[]);
    for r in 0..10 {
        assert_eq!(t.post(r * 50, 50), Some(200));
    }
    let before = metric(t.api, "pipe_component_received_events_total", "out");
    t.edit("source = '.v = 1'", "b.ndjson");
    wait_logged(&t.log, "Reloaded the topology.", 1);
    let reloaded = log_lines_with(&t.log, "Reloaded the topology.").join("\n");
    assert!(
        reloaded.contains(r#"changed=["out"]"#),
        "only the sink is replaced: {reloaded}"
    );
    for r in 10..20 {
        assert_eq!(t.post(r * 50, 50), Some(200));
    }
    assert_eq!(
        metric(t.api, "pipe_component_received_events_total", "out"),
        before.map(|b| b + 500.0),
        "the rebuilt sink keeps its counters"
    );
    let (dir, _, b) = t.stop();
    let a = seqs(&json_lines(&dir.path().join("a.ndjson")));
    assert_eq!(
        a,
        (0..500).collect(),
        "what was acknowledged before the reload is in the old file"
    );
    assert_eq!(seqs(&b), (500..1000).collect());
}

fn metric(api: u16, name: &str, component: &str) -> Option<f64> {
    let (_, text) = get(api, "/metrics", None)?;
    sample(&text, name, &[&format!(r#"component_id="{component}""#)])
}

fn http_es(dir: &Path, http: u16, es: u16, api: u16) -> String {
    format!(
        r#"data_dir = "{data}"
shutdown_timeout_secs = 10
reload_timeout_secs = 2
[api]
enabled = true
address = "127.0.0.1:{api}"

[sources.web]
type = "http"
address = "127.0.0.1:{http}"
decoding = "ndjson"

[sinks.es]
type = "elasticsearch"
inputs = ["web"]
endpoints = ["http://127.0.0.1:{es}"]
index = "logs"
id_field = "seq"
healthcheck = false
buffer = {{ type = "disk", max_size = 268435456 }}
"#,
        data = dir.join("data").display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_that_cannot_drain_is_stopped_and_its_successor_reads_its_events_again() {
    let dir = tempfile::tempdir().unwrap();
    let (http, down, up, api) = (free_port(), free_port(), free_port(), free_port());
    let topology = dir.path().join("t.toml");
    write(&topology, &http_es(dir.path(), http, down, api));
    let log = dir.path().join("pipe.log");
    let pipe = Pipe::start(&topology, &log);
    tokio::task::spawn_blocking({
        let log = log.clone();
        move || wait_api(api, &log)
    })
    .await
    .unwrap();
    // Nothing listens on `down`: the sink retries and holds its batches.
    for r in 0..10u64 {
        let status = tokio::task::spawn_blocking(move || {
            post(http, "/", "application/x-ndjson", &ndjson(r * 100, 100)).map(|(s, _)| s)
        })
        .await
        .unwrap();
        assert_eq!(status, Some(200));
    }
    let fake = es::FakeEs::default();
    let server = fake.serve(up).await;
    write(&topology, &http_es(dir.path(), http, up, api));
    pipe.signal("HUP");
    let delivered = tokio::task::spawn_blocking({
        let fake = fake.clone();
        move || wait_for(60, || fake.ids().len() == 1000)
    })
    .await
    .unwrap();
    assert!(
        delivered,
        "Elasticsearch has {} of 1000: {}",
        fake.ids().len(),
        tail(&log, 30)
    );
    assert_eq!(fake.ids(), (0..1000).collect::<Vec<u64>>());
    let stopped = log_lines_with(&log, "did not drain within reload_timeout_secs");
    assert_eq!(
        stopped.len(),
        1,
        "the old sink was stopped at the deadline: {}",
        tail(&log, 30)
    );
    assert_eq!(tokio::task::spawn_blocking(move || pipe.stop(30)).await.unwrap(), 0);
    server.abort();
}

#[test]
fn a_changed_http_source_is_replaced_on_the_same_port() {
    let t = HttpRemapFile::start("source = '.v = 1'", "out.ndjson", &[]);
    assert_eq!(t.post(0, 10), Some(200));
    // The same port, now with a token.
    let text = std::fs::read_to_string(&t.topology).unwrap();
    let with_auth = text.replace(
        "decoding = \"ndjson\"\n",
        "decoding = \"ndjson\"\nauth = { bearer_tokens = [\"s3cret\"] }\n",
    );
    write(&t.topology, &with_auth);
    t.pipe.signal("HUP");
    wait_logged(&t.log, "Reloaded the topology.", 1);
    let reloaded = log_lines_with(&t.log, "Reloaded the topology.").join("\n");
    assert!(reloaded.contains(r#"changed=["web"]"#), "{reloaded}");
    assert_eq!(t.post(10, 10), Some(401), "the new source answers on the port");
    let with_token = post_as(t.http, "/", "application/x-ndjson", &ndjson(10, 10), Some("s3cret"));
    assert_eq!(with_token.map(|r| r.0), Some(200), "{}", tail(&t.log, 10));
    let (_dir, _, out) = t.stop();
    assert_eq!(
        seqs(&out),
        (0..20).collect(),
        "the kept transform and sink take the new source's events"
    );
}

fn file_es(dir: &Path, es: u16) -> String {
    format!(
        r#"data_dir = "{data}"
shutdown_timeout_secs = 10
reload_timeout_secs = 2

[sources.app]
type = "file"
include = ["{dir}/in/*.log"]
decoding = "json"
max_batch_events = 50

[sinks.es]
type = "elasticsearch"
inputs = ["app"]
endpoints = ["http://127.0.0.1:{es}"]
index = "logs"
id_field = "seq"
healthcheck = false
"#,
        data = dir.join("data").display(),
        dir = dir.display(),
    )
}

/// A kept file source goes on when the sink it waits on is stopped at the deadline:
/// new lines reach the successor at once, and the lines the stopped sink held are
/// read again at the next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_source_outlives_its_stopped_sink_and_reads_what_it_held_again_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("in")).unwrap();
    let app = dir.path().join("in/app.log");
    write(&app, &ndjson(0, 300));
    let (down, up) = (free_port(), free_port());
    let topology = dir.path().join("t.toml");
    write(&topology, &file_es(dir.path(), down));
    let log = dir.path().join("pipe.log");
    let mut pipe = Pipe::start(&topology, &log);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let fake = es::FakeEs::default();
    let server = fake.serve(up).await;
    write(&topology, &file_es(dir.path(), up));
    pipe.signal("HUP");
    let l = log.clone();
    tokio::task::spawn_blocking(move || wait_logged(&l, "did not drain within reload_timeout_secs", 1))
        .await
        .unwrap();
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&app).unwrap();
        f.write_all(ndjson(300, 300).as_bytes()).unwrap();
    }
    let fresh = tokio::task::spawn_blocking({
        let fake = fake.clone();
        move || wait_for(30, || (300..600).all(|i| fake.ids().binary_search(&i).is_ok()))
    })
    .await
    .unwrap();
    assert!(
        fresh,
        "the new lines reach the new sink: {} documents; {}",
        fake.ids().len(),
        tail(&log, 20)
    );
    assert!(pipe.running(), "the source did not stop with the sink");
    assert_eq!(tokio::task::spawn_blocking(move || pipe.stop(30)).await.unwrap(), 0);
    // The next start reads what the stopped sink held.
    let again = Pipe::start(&topology, &log);
    let all = tokio::task::spawn_blocking({
        let fake = fake.clone();
        move || wait_for(30, || fake.ids().len() == 600)
    })
    .await
    .unwrap();
    assert!(all, "{} of 600 after the restart", fake.ids().len());
    assert_eq!(fake.ids(), (0..600).collect::<Vec<u64>>());
    assert_eq!(tokio::task::spawn_blocking(move || again.stop(30)).await.unwrap(), 0);
    server.abort();
}

fn kafka_file(dir: &Path, bootstrap: &str, api: u16, out: &str) -> String {
    format!(
        r#"data_dir = "{data}"
[api]
enabled = true
address = "127.0.0.1:{api}"

[sources.k]
type = "kafka"
bootstrap_servers = "{bootstrap}"
topics = ["logs"]
group_id = "reload"
decoding = "json"
auto_offset_reset = "earliest"

[sinks.out]
type = "file"
inputs = ["k"]
path = "{out}"
encoding = "json"
"#,
        data = dir.join("data").display(),
        out = dir.join(out).display(),
    )
}

#[test]
fn an_unchanged_kafka_source_keeps_its_group_membership() {
    let dir = tempfile::tempdir().unwrap();
    let (mut mock, bootstrap) = kafka_mock("logs:2");
    let api = free_port();
    let topology: PathBuf = dir.path().join("t.toml");
    write(&topology, &kafka_file(dir.path(), &bootstrap, api, "a.ndjson"));
    let log = dir.path().join("pipe.log");
    let pipe = Pipe::start(&topology, &log);
    wait_api(api, &log);
    kcat_produce(&bootstrap, "logs", &ndjson(0, 100));
    let a = dir.path().join("a.ndjson");
    assert!(wait_for(30, || json_lines(&a).len() >= 100), "{}", tail(&log, 20));
    let rebalances = metric(api, "pipe_kafka_rebalances_total", "k");
    assert!(rebalances.is_some_and(|r| r >= 1.0), "{rebalances:?}");
    write(&topology, &kafka_file(dir.path(), &bootstrap, api, "b.ndjson"));
    pipe.signal("HUP");
    wait_logged(&log, "Reloaded the topology.", 1);
    kcat_produce(&bootstrap, "logs", &ndjson(100, 100));
    let b = dir.path().join("b.ndjson");
    assert!(wait_for(30, || json_lines(&b).len() >= 100), "{}", tail(&log, 20));
    assert_eq!(
        metric(api, "pipe_kafka_rebalances_total", "k"),
        rebalances,
        "the consumer did not rejoin its group"
    );
    assert_eq!(pipe.stop(30), 0);
    let mut all = seqs(&json_lines(&a));
    all.extend(seqs(&json_lines(&b)));
    assert_eq!(all, (0..200).collect());
    let _ = mock.kill();
}

#[test]
fn watch_picks_up_an_edit_of_a_program_file() {
    let t = HttpRemapFile::start("file = \"{dir}/tag.vrl\"", "out.ndjson", &["--watch"]);
    let program = t.dir.path().join("tag.vrl");
    assert_eq!(t.post(0, 10), Some(200));
    // Saved again unchanged: no reload.
    write(&program, ".version = 1\n");
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        log_lines_with(&t.log, "Reloading the topology.").is_empty(),
        "{}",
        tail(&t.log, 10)
    );
    write(&program, ".version = 2\n");
    wait_logged(&t.log, "Reloaded the topology.", 1);
    assert_eq!(t.post(10, 10), Some(200));
    let (_dir, _, out) = t.stop();
    let version_of = |seq: u64| out.iter().find(|e| e["seq"] == seq).map(|e| e["version"].clone());
    assert_eq!(version_of(0), Some(1.into()));
    assert_eq!(version_of(10), Some(2.into()));
}
