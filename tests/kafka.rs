//! Kafka end to end, with the real binaries as separate processes: an edge
//! (`topologies/edge.toml`: files → kafka, lz4) and aggregators
//! (`topologies/aggregator.toml`: kafka → files) around a Kafka-protocol broker.
//!
//! The broker is librdkafka's mock cluster hosted by `pipe kafka-mock` (a real
//! implementation of the Kafka wire protocol: consumer groups, commits, lz4 record
//! batches, brokers taken down and up). With `PIPE_TEST_KAFKA_BOOTSTRAP` set, the same
//! tests run against that cluster instead (the broker-outage test needs the mock).
//! `kcat` (librdkafka 2.0, another client) produces the poison record and reads what
//! the sink wrote, and a hand-written Fetch request reads the record batches' codec.

mod common;

use common::*;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// The broker the tests talk to.
struct Broker {
    bootstrap: String,
    mock: Option<(Child, ChildStdin, BufReader<ChildStdout>)>,
}

impl Broker {
    fn start() -> Broker {
        if let Ok(bootstrap) = std::env::var("PIPE_TEST_KAFKA_BOOTSTRAP") {
            return Broker { bootstrap, mock: None };
        }
        let mut child = Command::new(pipe_bin())
            .arg("kafka-mock")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start pipe kafka-mock");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut bootstrap = String::new();
        stdout.read_line(&mut bootstrap).unwrap();
        Broker {
            bootstrap: bootstrap.trim().to_string(),
            mock: Some((child, stdin, stdout)),
        }
    }

    /// Sends a fault-injection command to the mock; false against a real cluster.
    fn command(&mut self, cmd: &str) -> bool {
        let Some((_, stdin, stdout)) = &mut self.mock else {
            return false;
        };
        writeln!(stdin, "{cmd}").unwrap();
        let mut answer = String::new();
        stdout.read_line(&mut answer).unwrap();
        assert_eq!(answer.trim(), "ok", "mock answered {answer:?} to {cmd:?}");
        true
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some((child, _, _)) = &mut self.mock {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One test's world: a folder, a topic and a group of its own.
struct World {
    dir: tempfile::TempDir,
    topic: String,
    group: String,
    broker: Broker,
}

impl World {
    fn new(name: &str) -> World {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        World {
            dir: tempfile::tempdir().unwrap(),
            topic: format!("logs-{name}-{stamp}"),
            group: format!("aggregators-{name}-{stamp}"),
            broker: Broker::start(),
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn input(&self) -> PathBuf {
        let p = self.path("in");
        fs::create_dir_all(&p).unwrap();
        p
    }

    /// Starts the edge topology on `in/*.log`.
    fn edge(&self) -> Pipe {
        let env = [
            ("PIPE_DATA_DIR", self.path("edge-data").display().to_string()),
            ("PIPE_EDGE_LOGS", self.input().display().to_string()),
            ("PIPE_EDGE_HTTP", format!("127.0.0.1:{}", free_port())),
            ("PIPE_EDGE_REJECTED", self.path("edge-rejected").display().to_string()),
            ("KAFKA_BOOTSTRAP", self.broker.bootstrap.clone()),
            ("PIPE_KAFKA_TOPIC", self.topic.clone()),
            // Several pipes on one host: each API on a port of its own.
            ("PIPE_API_ADDRESS", "127.0.0.1:0".into()),
        ];
        Pipe::start_env(&topology("edge.toml"), &self.path("edge.log"), &env)
    }

    /// Starts aggregator `name`, writing under `out-NAME/`.
    fn aggregator(&self, name: &str) -> Pipe {
        let env = [
            (
                "PIPE_DATA_DIR",
                self.path(&format!("data-{name}")).display().to_string(),
            ),
            (
                "PIPE_AGGREGATOR_OUT",
                self.path(&format!("out-{name}")).display().to_string(),
            ),
            (
                "PIPE_AGGREGATOR_DEAD_LETTERS",
                self.path(&format!("dead-{name}")).display().to_string(),
            ),
            ("KAFKA_BOOTSTRAP", self.broker.bootstrap.clone()),
            ("PIPE_KAFKA_TOPIC", self.topic.clone()),
            ("PIPE_KAFKA_GROUP", self.group.clone()),
            ("PIPE_KAFKA_SESSION_TIMEOUT_MS", "6000".into()),
            (
                "PIPE_AGGREGATOR_RATES",
                self.path(&format!("rates-{name}")).display().to_string(),
            ),
            (
                "PIPE_ARCHIVE_URL",
                self.path(&format!("archive-{name}")).display().to_string(),
            ),
            // Offsets also wait for the archive's file to be complete.
            ("PIPE_ARCHIVE_MAX_AGE_SECS", "1".into()),
            // Short windows: offsets wait for the error-rate window to be written.
            ("PIPE_ERROR_RATE_WINDOW", "1s".into()),
            ("PIPE_ERROR_RATE_LATENESS", "0s".into()),
            ("PIPE_API_ADDRESS", "127.0.0.1:0".into()),
        ];
        Pipe::start_env(
            &topology("aggregator.toml"),
            &self.path(&format!("aggregator-{name}.log")),
            &env,
        )
    }

    /// Waits until aggregator `name` holds partitions.
    fn wait_assigned(&self, name: &str) {
        let log = self.path(&format!("aggregator-{name}.log"));
        assert!(
            wait_for(60, || !log_lines_with(&log, "Partitions assigned").is_empty()),
            "aggregator {name} gets partitions\n{}",
            self.logs()
        );
    }

    /// Every message the aggregators wrote, over all their output folders.
    fn delivered(&self) -> Vec<String> {
        let mut all = Vec::new();
        for entry in fs::read_dir(self.dir.path()).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with("out-") {
                all.extend(messages(&entry.path()).0);
            }
        }
        all
    }

    /// Waits until every line `0..total` arrived at least once.
    fn wait_all(&self, total: u64, secs: u64) -> (Vec<u64>, u64) {
        let mut result = (vec![], 0);
        wait_for(secs, || {
            result = missing_and_duplicates(&tally(&self.delivered()), total);
            result.0.is_empty()
        });
        result
    }

    fn logs(&self) -> String {
        let mut s = String::new();
        for f in files_under(self.dir.path()) {
            if f.extension().is_some_and(|e| e == "log") && f.parent() == Some(self.dir.path()) {
                s.push_str(&format!("--- {}\n{}\n", f.display(), tail(&f, 15)));
            }
        }
        s
    }
}

fn topology(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies").join(name)
}

/// Writes numbered lines `from..to` to `in/app.log`, appending.
fn write_lines(input: &Path, from: u64, to: u64) {
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(input.join("app.log"))
        .unwrap();
    let mut chunk = String::with_capacity(1 << 20);
    for n in from..to {
        chunk.push_str(&line(n));
        if chunk.len() > (1 << 20) {
            f.write_all(chunk.as_bytes()).unwrap();
            chunk.clear();
        }
    }
    f.write_all(chunk.as_bytes()).unwrap();
}

/// Writes `total` lines over about `secs` seconds in a thread.
fn write_lines_over(input: PathBuf, total: u64, secs: f64) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let start = Instant::now();
        let mut n = 0;
        while n < total {
            let due = (((start.elapsed().as_secs_f64() / secs) * total as f64) as u64 + 1000).min(total);
            write_lines(&input, n, due);
            n = due;
            std::thread::sleep(Duration::from_millis(20));
        }
    })
}

#[test]
fn topologies_validate() {
    for name in ["edge.toml", "aggregator.toml", "kafka-duplicates.toml"] {
        let out = Command::new(pipe_bin())
            .arg("validate")
            .arg(topology(name))
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = fs::read_to_string(topology("edge.toml")).unwrap();
    assert!(
        text.contains("${KAFKA_BOOTSTRAP:-"),
        "addresses come from the environment"
    );
}

/// (a) 500,000 lines from the edge through the broker to an aggregator, every one
/// exactly once, in lz4 record batches.
#[test]
fn edge_to_aggregator_500k_lines_exactly_once_lz4() {
    const N: u64 = 500_000;
    let mut w = World::new("a");
    // The mock keeps 5 MB of record batches per partition (its retention): enough
    // partitions, and an aggregator ready before the edge starts, keep every record.
    w.broker.command(&format!("create {} 16", w.topic));
    write_lines(&w.input(), 0, N);
    let aggregator = w.aggregator("1");
    w.wait_assigned("1");
    let edge = w.edge();
    let started = Instant::now();
    let (missing, dups) = w.wait_all(N, 240);
    let elapsed = started.elapsed();
    assert!(missing.is_empty(), "missing {:?}\n{}", ranges(&missing), w.logs());
    assert_eq!(dups, 0, "no crash, so no duplicates\n{}", w.logs());
    eprintln!("500,000 lines edge → broker → aggregator in {elapsed:.1?}");
    assert_eq!(edge.stop(60), 0, "{}", w.logs());
    assert_eq!(aggregator.stop(60), 0, "{}", w.logs());
    // The aggregator's Parquet archive holds every line once as well.
    let archive = w.path("archive-1");
    let sql = "SELECT count(*), count(DISTINCT message) FROM logs";
    let out = Command::new(pipe_bin())
        .args(["query", "--format", "csv", "--archive", archive.to_str().unwrap(), sql])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().nth(1),
        Some(format!("{N},{N}").as_str()),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let counters = log_lines_with(&w.path("aggregator-1.log"), "component=kafka_in kind=\"source\"");
    assert!(
        counters
            .iter()
            .any(|l| l.contains("pipe_kafka_consumer_lag_messages{") && l.contains("pipe_kafka_committed_offset{")),
        "consumer lag and committed offsets are counted per partition: {counters:?}"
    );
    let codecs = record_batch_codecs(&w.broker.bootstrap, &w.topic);
    if std::env::var("PIPE_TEST_KAFKA_BOOTSTRAP").is_ok() && codecs.is_empty() {
        eprintln!("the bootstrap broker leads no partition of the topic; codec not checked");
    } else {
        assert!(!codecs.is_empty(), "no record batch fetched");
        assert!(
            codecs.iter().all(|c| *c == 3),
            "record batch codecs {codecs:?}, want 3 (lz4)"
        );
    }
}

/// (b) kill -9 of the aggregator mid-run, then a restart: nothing missing.
#[test]
fn aggregator_killed_mid_run_loses_nothing() {
    const N: u64 = 300_000;
    let w = World::new("b");
    let writer = write_lines_over(w.input(), N, 15.0);
    let _edge = w.edge();
    let aggregator = w.aggregator("1");
    assert!(
        wait_for(120, || w.delivered().len() > 50_000),
        "no progress\n{}",
        w.logs()
    );
    // Past a few error-rate windows and commit intervals, so part of what was
    // delivered is committed.
    std::thread::sleep(Duration::from_secs(3));
    aggregator.kill9();
    let seen_at_kill = w.delivered().len() as u64;
    let restarted = w.aggregator("1");
    writer.join().unwrap();
    let (missing, dups) = w.wait_all(N, 240);
    assert!(missing.is_empty(), "missing {:?}\n{}", ranges(&missing), w.logs());
    eprintln!("kill -9 after {seen_at_kill} lines: 0 missing, {dups} duplicates of {N}");
    assert!(seen_at_kill < N, "killed mid-run");
    assert!(dups < seen_at_kill, "offsets were committed before the kill");
    assert_eq!(restarted.stop(60), 0, "{}", w.logs());
}

/// (c) two aggregators in one group split the partitions between them.
#[test]
fn two_aggregators_share_the_partitions() {
    const N: u64 = 200_000;
    let mut w = World::new("c");
    if w.broker.command(&format!("create {} 4", w.topic)) {
        eprintln!("created {} with 4 partitions", w.topic);
    }
    let one = w.aggregator("1");
    let two = w.aggregator("2");
    w.wait_assigned("1");
    w.wait_assigned("2");
    write_lines(&w.input(), 0, N);
    let _edge = w.edge();
    let (missing, dups) = w.wait_all(N, 240);
    assert!(missing.is_empty(), "missing {:?}\n{}", ranges(&missing), w.logs());
    let by_one = messages(&w.path("out-1")).0.len();
    let by_two = messages(&w.path("out-2")).0.len();
    eprintln!("aggregator 1: {by_one} lines, aggregator 2: {by_two} lines, {dups} duplicates");
    assert!(
        by_one > 0 && by_two > 0,
        "both members consumed: {by_one} / {by_two}\n{}",
        w.logs()
    );
    assert_eq!(one.stop(60), 0);
    assert_eq!(two.stop(60), 0);
}

/// (d) the broker goes down for 10 s mid-run and comes back: nothing missing on
/// either side, and the outage is logged once per state change, not per record.
#[test]
fn broker_down_for_10s_loses_nothing() {
    const N: u64 = 200_000;
    let mut w = World::new("d");
    if w.broker.mock.is_none() {
        eprintln!("PIPE_TEST_KAFKA_BOOTSTRAP is set: the outage needs the mock cluster; skipped");
        return;
    }
    let writer = write_lines_over(w.input(), N, 15.0);
    let edge = w.edge();
    let aggregator = w.aggregator("1");
    assert!(
        wait_for(120, || w.delivered().len() > 20_000),
        "no progress\n{}",
        w.logs()
    );
    std::thread::sleep(Duration::from_secs(2));
    w.broker.command("down");
    let during = w.delivered().len();
    std::thread::sleep(Duration::from_secs(10));
    w.broker.command("up");
    writer.join().unwrap();
    let (missing, dups) = w.wait_all(N, 240);
    assert!(missing.is_empty(), "missing {:?}\n{}", ranges(&missing), w.logs());
    eprintln!("broker down at {during} lines for 10 s: 0 missing, {dups} duplicates");
    let edge_log = w.path("edge.log");
    let down = log_lines_with(&edge_log, "brokers are unreachable").len();
    let back = log_lines_with(&edge_log, "reachable again").len();
    assert!(
        (1..=3).contains(&down) && back >= 1,
        "state changes logged once each: down {down}, back {back}\n{}",
        w.logs()
    );
    assert_eq!(edge.stop(60), 0, "{}", w.logs());
    assert_eq!(aggregator.stop(60), 0, "{}", w.logs());
}

/// (e) a record that is not JSON is counted and goes to the dead letters with the
/// reason; every other record flows.
#[test]
fn poison_record_is_routed_and_the_rest_flows() {
    const N: u64 = 20_000;
    let w = World::new("e");
    write_lines(&w.input(), 0, N / 2);
    let edge = w.edge();
    let aggregator = w.aggregator("1");
    assert!(
        wait_for(120, || w.delivered().len() >= (N / 2) as usize),
        "{}",
        w.logs()
    );
    kcat_produce(&w.broker.bootstrap, &w.topic, "this is {not json\n");
    write_lines(&w.input(), N / 2, N);
    let (missing, _) = w.wait_all(N, 120);
    assert!(missing.is_empty(), "missing {:?}\n{}", ranges(&missing), w.logs());
    let dead = w.path("dead-1");
    assert!(wait_for(30, || count_lines(&dead) == 1), "{}", w.logs());
    let text = fs::read_to_string(&files_under(&dead)[0]).unwrap();
    let record: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(record["message"], "this is {not json");
    assert!(record["dropped"]["reason"].as_str().unwrap().contains("not JSON"));
    assert_eq!(record["kafka"]["topic"], w.topic.as_str());
    assert_eq!(aggregator.stop(60), 0);
    let counters = log_lines_with(&w.path("aggregator-1.log"), "component=kafka_in kind=\"source\"");
    assert!(
        counters.iter().any(|l| l.contains("\"undecodable\": 1")),
        "counted: {counters:?}"
    );
    assert_eq!(edge.stop(60), 0);
}

/// The sink: a record larger than the producer allows goes to `ID.dropped` with the
/// reason; the others are produced with key and headers, as kcat reads them.
#[test]
fn sink_routes_a_too_large_record_and_keeps_keys_and_headers() {
    let w = World::new("sink");
    let input = w.input();
    let mut text = String::new();
    for n in 0..100 {
        text.push_str(&format!("{{\"n\":{n},\"user\":\"u{}\"}}\n", n % 7));
    }
    text.push_str(&format!(
        "{{\"n\":100,\"user\":\"big\",\"blob\":\"{}\"}}\n",
        "x".repeat(20_000)
    ));
    fs::write(input.join("app.log"), text).unwrap();
    let topo = w.path("sink.toml");
    fs::write(
        &topo,
        format!(
            r#"
data_dir = "{data}"
[sources.files]
type = "file"
include = ["{input}/*.log"]
[transforms.parse]
type = "remap"
inputs = ["files"]
source = '. = parse_json!(.message)'
[sinks.out]
type = "kafka"
inputs = ["parse"]
bootstrap_servers = "{bootstrap}"
topic = "{topic}"
key_field = "user"
headers = {{ "x-n" = "{{{{ n }}}}" }}
librdkafka_options = {{ "message.max.bytes" = "10000" }}
[sinks.refused]
type = "file"
inputs = ["out.dropped"]
path = "{refused}"
"#,
            data = w.path("data").display(),
            input = input.display(),
            bootstrap = w.broker.bootstrap,
            topic = w.topic,
            refused = w.path("refused/out.log").display(),
        ),
    )
    .unwrap();
    let pipe = Pipe::start(&topo, &w.path("pipe.log"));
    assert!(
        wait_for(60, || count_lines(&w.path("refused")) == 1),
        "{}",
        tail(&w.path("pipe.log"), 20)
    );
    let refused: serde_json::Value =
        serde_json::from_str(fs::read_to_string(w.path("refused/out.log")).unwrap().trim()).unwrap();
    assert_eq!(refused["user"], "big");
    let reason = refused["dropped"]["reason"].as_str().unwrap();
    assert!(reason.to_lowercase().contains("too large"), "{reason}");
    let mut records = Vec::new();
    wait_for(30, || {
        records = kcat_consume(&w.broker.bootstrap, &w.topic, 100);
        records.len() == 100
    });
    assert_eq!(records.len(), 100, "{records:?}");
    for r in &records {
        let (meta, value) = r.split_once('\t').unwrap();
        let v: serde_json::Value = serde_json::from_str(value).unwrap();
        let n = v["n"].as_i64().unwrap();
        assert_eq!(meta, format!("key={} x-n={n}", v["user"].as_str().unwrap()), "{r}");
    }
    assert_eq!(pipe.stop(30), 0);
    let counters = log_lines_with(&w.path("pipe.log"), "component=out kind=\"sink\"");
    assert!(counters.iter().any(|l| l.contains("rejected_by_kafka")), "{counters:?}");
}

/// `count` records read from the start of `topic` as `key=K HEADERS\tVALUE`.
fn kcat_consume(bootstrap: &str, topic: &str, count: usize) -> Vec<String> {
    let out = kcat()
        .args(["-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q"])
        .args(["-c", &count.to_string(), "-f", "key=%k %h\t%s\n"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The compression codec (attributes & 7) of the record batches at the start of each
/// partition of `topic`, read with a hand-made Fetch v4 request to the bootstrap
/// broker: what is on the wire, whatever a client library reports.
fn record_batch_codecs(bootstrap: &str, topic: &str) -> Vec<i16> {
    let mut codecs = Vec::new();
    let addr = bootstrap.split(',').next().unwrap();
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for partition in 0..4i32 {
        let mut body = Vec::new();
        body.extend_from_slice(&1i16.to_be_bytes()); // Fetch
        body.extend_from_slice(&4i16.to_be_bytes()); // version 4
        body.extend_from_slice(&partition.to_be_bytes()); // correlation id
        body.extend_from_slice(&(4i16).to_be_bytes());
        body.extend_from_slice(b"test");
        body.extend_from_slice(&(-1i32).to_be_bytes()); // replica id
        body.extend_from_slice(&100i32.to_be_bytes()); // max wait
        body.extend_from_slice(&1i32.to_be_bytes()); // min bytes
        body.extend_from_slice(&(1i32 << 20).to_be_bytes()); // max bytes
        body.push(0); // isolation level
        body.extend_from_slice(&1i32.to_be_bytes()); // one topic
        body.extend_from_slice(&(topic.len() as i16).to_be_bytes());
        body.extend_from_slice(topic.as_bytes());
        body.extend_from_slice(&1i32.to_be_bytes()); // one partition
        body.extend_from_slice(&partition.to_be_bytes());
        body.extend_from_slice(&0i64.to_be_bytes()); // fetch offset
        body.extend_from_slice(&(1i32 << 20).to_be_bytes()); // partition max bytes
        conn.write_all(&(body.len() as i32).to_be_bytes()).unwrap();
        conn.write_all(&body).unwrap();
        let mut len = [0u8; 4];
        conn.read_exact(&mut len).unwrap();
        let mut resp = vec![0u8; i32::from_be_bytes(len) as usize];
        conn.read_exact(&mut resp).unwrap();
        let mut r = Reader(&resp);
        r.skip(4 + 4); // correlation id, throttle time
        for _ in 0..r.i32() {
            let name_len = r.i16() as usize;
            r.skip(name_len);
            for _ in 0..r.i32() {
                r.skip(4); // partition
                let error = r.i16();
                r.skip(8 + 8); // high watermark, last stable offset
                let aborted = r.i32();
                r.skip(aborted.max(0) as usize * 16);
                let size = r.i32();
                if error != 0 || size <= 0 {
                    r.skip(size.max(0) as usize);
                    continue;
                }
                let records = r.take(size as usize);
                let mut batches = Reader(records);
                // Each batch: base offset (8), length (4), leader epoch (4), magic
                // (1), crc (4), attributes (2), ...; a trailing partial batch is cut.
                while batches.0.len() >= 23 {
                    batches.skip(8);
                    let length = batches.i32() as usize;
                    if batches.0.len() < length {
                        break;
                    }
                    let batch = batches.take(length);
                    assert_eq!(batch[4], 2, "record batch magic");
                    codecs.push(i16::from_be_bytes([batch[9], batch[10]]) & 7);
                }
            }
        }
    }
    codecs
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
    fn skip(&mut self, n: usize) {
        self.take(n);
    }
    fn i16(&mut self) -> i16 {
        i16::from_be_bytes(self.take(2).try_into().unwrap())
    }
    fn i32(&mut self) -> i32 {
        i32::from_be_bytes(self.take(4).try_into().unwrap())
    }
}

/// `topologies/kafka-duplicates.toml`: a key produced four times (by kcat) is reported
/// with its four copies; keys produced once are not.
#[test]
fn duplicate_detector_finds_the_key_produced_four_times() {
    let w = World::new("dup");
    let records = "a:one\nb:two\na:one\nc:three\na:one\na:one\n";
    let mut child = kcat()
        .args(["-P", "-b", &w.broker.bootstrap, "-t", &w.topic, "-K", ":"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(records.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
    let stdout = w.path("report.jsonl");
    let log = w.path("dup.log");
    let mut pipe = Command::new(pipe_bin())
        .arg("-t")
        .arg(topology("kafka-duplicates.toml"))
        .env("PIPE_DATA_DIR", w.path("dup-data"))
        .env("KAFKA_BOOTSTRAP", &w.broker.bootstrap)
        .env("PIPE_KAFKA_TOPIC", &w.topic)
        .env("PIPE_KAFKA_GROUP", &w.group)
        .stdout(fs::File::create(&stdout).unwrap())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let consumed = || {
        log_lines_with(&log, "Partitions assigned").len() == 1
            && fs::read_to_string(&log).is_ok_and(|l| !l.contains("error"))
    };
    assert!(wait_for(30, consumed), "{}", tail(&log, 20));
    std::thread::sleep(Duration::from_secs(3));
    // The 5-minute window closes when the input ends: at shutdown.
    let _ = Command::new("kill").arg("-TERM").arg(pipe.id().to_string()).status();
    assert_eq!(wait_exit(&mut pipe, 30), 0, "{}", tail(&log, 20));
    let rows: Vec<serde_json::Value> = fs::read_to_string(&stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["key"], "a");
    assert_eq!(rows[0]["copies"], 4);
}

/// The sum over partitions of the gauges
/// `pipe_kafka_committed_offset{topic="TOPIC",partition="P"}` in the exit counters of
/// `component` (printed with their quotes escaped, in a debug-formatted map).
fn committed_at_exit(log: &Path, component: &str, topic: &str) -> Option<u64> {
    let lines = log_lines_with(log, &format!("component={component} kind=\"source\""));
    let line = lines.iter().find(|l| l.contains("Component counters at exit"))?;
    let needle = format!("pipe_kafka_committed_offset{{topic=\\\"{topic}\\\",partition=");
    let mut sum = 0;
    for part in line.split(&needle).skip(1) {
        let value = part.split_once("}\": ")?.1;
        let digits: String = value.chars().take_while(char::is_ascii_digit).collect();
        sum += digits.parse::<u64>().ok()?;
    }
    Some(sum)
}

/// (f) a batch errored once downstream (a test hook in the blackhole) is read again
/// without a restart: the committed offsets move past it to the end of the topic, and
/// every record reaches the file sink at least once.
#[test]
fn an_errored_batch_is_read_again_and_offsets_move_on() {
    const N: u64 = 3_000;
    let mut w = World::new("rewind");
    w.broker.command(&format!("create {} 2", w.topic));
    let mut text = String::new();
    for n in 0..N {
        text.push_str(&line(n));
    }
    kcat_produce(&w.broker.bootstrap, &w.topic, &text);
    let topo = w.path("rewind.toml");
    fs::write(
        &topo,
        format!(
            r#"
data_dir = "{data}"
[sources.kafka_in]
type = "kafka"
bootstrap_servers = "{bootstrap}"
group_id = "{group}"
topics = ["{topic}"]
decoding = "text"
max_batch_events = 200
commit_interval_ms = 200
[sinks.flaky]
type = "blackhole"
inputs = ["kafka_in"]
test_only_fail_first_batches = 2
[sinks.out]
type = "file"
inputs = ["kafka_in"]
path = "{out}/out.log"
"#,
            data = w.path("data").display(),
            bootstrap = w.broker.bootstrap,
            group = w.group,
            topic = w.topic,
            out = w.path("out-1").display(),
        ),
    )
    .unwrap();
    let log = w.path("pipe.log");
    let pipe = Pipe::start_env(&topo, &log, &[("PIPE_TEST_HOOKS", "1".into())]);
    let (missing, dups) = w.wait_all(N, 120);
    assert!(missing.is_empty(), "missing {:?}\n{}", ranges(&missing), tail(&log, 30));
    assert!(
        wait_for(60, || !log_lines_with(&log, "Redeliveries work again").is_empty()),
        "the rewound partitions are acknowledged again\n{}",
        tail(&log, 30)
    );
    eprintln!("two errored batches: 0 missing, {dups} duplicates of {N}");
    assert!(
        !log_lines_with(&log, "Test hook: the batch is finalized as errored").is_empty(),
        "the hook fired"
    );
    assert_eq!(pipe.stop(60), 0, "{}", tail(&log, 30));
    assert_eq!(
        committed_at_exit(&log, "kafka_in", &w.topic),
        Some(N),
        "committed past the errored batches, to the end of both partitions\n{}",
        tail(&log, 10)
    );
    let counters = log_lines_with(&log, "component=kafka_in kind=\"source\"");
    assert!(
        counters.iter().any(|l| l.contains("\"redelivery\"")),
        "counted: {counters:?}"
    );
    // Two errored batches make one outage, or two when the second comes after the
    // first was read again: one line each, not one per record or retry.
    let outages = log_lines_with(&log, "Redeliveries fail").len();
    assert!((1..=2).contains(&outages), "{outages} outage lines\n{}", tail(&log, 30));
}

/// SASL credentials never reach the logs, even at debug level with librdkafka's own
/// security logs on; SASL without TLS is warned about at load.
#[test]
fn the_sasl_password_never_reaches_the_logs() {
    const SECRET: &str = "pipe-test-sasl-secret-7f3a";
    let w = World::new("sasl");
    let topo = w.path("sasl.toml");
    fs::write(
        &topo,
        format!(
            r#"
data_dir = "{data}"
[sources.kafka_in]
type = "kafka"
bootstrap_servers = "{bootstrap}"
group_id = "{group}"
topics = ["{topic}"]
sasl = {{ mechanism = "PLAIN", username = "pipe", password = "{SECRET}" }}
librdkafka_options = {{ debug = "security,broker,conf" }}
[sinks.out]
type = "kafka"
inputs = ["kafka_in"]
bootstrap_servers = "{bootstrap}"
topic = "{topic}-copy"
sasl = {{ mechanism = "SCRAM-SHA-256", username = "pipe", password = "{SECRET}" }}
"#,
            data = w.path("data").display(),
            bootstrap = w.broker.bootstrap,
            group = w.group,
            topic = w.topic,
        ),
    )
    .unwrap();
    let out = Command::new(pipe_bin()).arg("validate").arg(&topo).output().unwrap();
    let validate_err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{validate_err}");
    assert!(
        validate_err.contains("SASL without TLS"),
        "warned at load: {validate_err}"
    );
    let log = w.path("pipe.log");
    let pipe = Pipe::start_env(&topo, &log, &[("PIPE_LOG", "debug".into())]);
    // Long enough for connections, SASL handshakes and their failures to be logged.
    assert!(
        wait_for(30, || log_lines_with(&log, "librdkafka").len() > 20),
        "{}",
        tail(&log, 20)
    );
    std::thread::sleep(Duration::from_secs(2));
    let _ = pipe.stop(60);
    let text = fs::read_to_string(&log).unwrap();
    assert!(text.contains("SASL without TLS"), "{}", tail(&log, 20));
    assert!(!text.contains(SECRET), "the password is in the logs");
    assert!(!validate_err.contains(SECRET), "the password is in validate's output");
}
