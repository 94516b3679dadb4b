//! The `bigquery` sink's stream mode through the real binary.
//!
//! Two counterparts: bqemulator (`common/bigquery.rs`, a real server of the REST API
//! and of the Storage Write API over gRPC, from the venv `tests/run.sh` prepares) for
//! what it does like BigQuery — rows stored and queried back, persistence across a
//! kill — and the in-process fake (`common/bigquery_fake.rs`) for what the emulator
//! cannot show: row errors, transient codes, a hang, COMMITTED offsets after a lost
//! answer, REQUIRED checks, tokens that expire. Each test says which it uses.

mod common;
#[path = "common/bigquery.rs"]
mod emulator;
#[path = "common/bigquery_fake.rs"]
mod fake;

use common::*;
use emulator::{Emulator, PROJECT};
use fake::{FakeBigQuery, Fault, TokenServer};
use serde_json::{Value as Json, json};
use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tonic::Code;

const DATASET: &str = "d1";

/// The columns of the tables fed from files: `seq` (REQUIRED) and `s`.
fn seq_schema() -> Json {
    json!([{"name": "seq", "type": "INT64", "mode": "REQUIRED"}, {"name": "s", "type": "STRING"}])
}

/// A topology: `source` (which must define the `shape` transform or source the sink
/// reads) → the `bq` sink (on `rest` / `grpc`, plus `extra` options), its dropped
/// events into `dir/dropped.log`.
fn topology(dir: &Path, source: &str, rest: &str, grpc: &str, extra: &str) -> PathBuf {
    let text = format!(
        r#"data_dir = "{data}"
shutdown_timeout_secs = 60
{source}
[sinks.bq]
type = "bigquery"
inputs = ["shape"]
project = "{PROJECT}"
dataset = "{DATASET}"
table = "t"
endpoint = "{rest}"
storage_endpoint = "{grpc}"
batch_timeout_ms = 100
{extra}
[sinks.dead]
type = "file"
inputs = ["bq.dropped"]
path = "{dead}"
"#,
        data = dir.join("data").display(),
        dead = dir.join("dropped.log").display(),
    );
    let path = dir.join("topology.toml");
    fs::write(&path, text).unwrap();
    path
}

/// `count` generator events shaped into `{seq, s}`, `extra` more VRL after that.
fn generated(count: u64, generator: &str, extra_vrl: &str) -> String {
    format!(
        r#"[sources.gen]
type = "generator"
count = {count}
batch_size = 100
{generator}
[transforms.shape]
type = "remap"
inputs = ["gen"]
source = '''
n = to_int!(.seq)
. = {{"seq": n, "s": "event " + to_string(n)}}
{extra_vrl}
'''
"#
    )
}

/// Tails `dir/in/*.log` (JSON lines `{seq, s}`) as source `in`.
fn tailed(dir: &Path) -> String {
    fs::create_dir_all(dir.join("in")).unwrap();
    format!(
        r#"[sources.in]
type = "file"
include = ["{}/in/*.log"]
[transforms.shape]
type = "remap"
inputs = ["in"]
source = '''
. = object!(parse_json!(.message))
'''
"#,
        dir.display()
    )
}

/// The JSON line for `seq`, about 100 bytes.
fn json_line(seq: u64) -> String {
    format!("{{\"seq\":{seq},\"s\":\"line-{seq:07} {}\"}}\n", "x".repeat(60))
}

/// Appends the lines `range` to `dir/in/app.log`.
fn write_lines(dir: &Path, range: std::ops::Range<u64>) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("in/app.log"))
        .unwrap();
    let text: String = range.map(json_line).collect();
    f.write_all(text.as_bytes()).unwrap();
}

/// The acknowledged offset of `dir/in/app.log` in source `in`'s checkpoints (0 when
/// there is none yet).
fn checkpoint(dir: &Path) -> u64 {
    let text = fs::read_to_string(dir.join("data/in/checkpoints.json")).unwrap_or_default();
    let Ok(json) = serde_json::from_str::<Json>(&text) else {
        return 0;
    };
    let app = dir.join("in/app.log");
    json["files"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["path"].as_str() == Some(app.to_str().unwrap()))
        .and_then(|f| f["offset"].as_u64())
        .unwrap_or(0)
}

fn file_len(dir: &Path) -> u64 {
    fs::metadata(dir.join("in/app.log")).map(|m| m.len()).unwrap_or(0)
}

/// The events of `dir/dropped.log`.
fn dropped(dir: &Path) -> Vec<Json> {
    fs::read_to_string(dir.join("dropped.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// (rows, distinct seq) of the emulator's table `d1.t`.
fn count_and_distinct(emu: &Emulator) -> (i64, i64) {
    let rows = emu.query(&format!(
        "SELECT COUNT(*), COUNT(DISTINCT seq) FROM `{PROJECT}.{DATASET}.t`"
    ));
    let cell = |i: usize| rows[0][i].as_deref().unwrap().parse().unwrap();
    (cell(0), cell(1))
}

/// How often each seq is in `seqs`: (missing among 0..total, duplicates).
fn missing_and_dups(seqs: &[i64], total: u64) -> (Vec<u64>, u64) {
    let mut counts: HashMap<u64, u32> = HashMap::new();
    for s in seqs {
        *counts.entry(*s as u64).or_default() += 1;
    }
    missing_and_duplicates(&counts, total)
}

/// A fresh emulator with dataset `d1` and table `t` of `fields`.
fn emulator_with_table(dir: &Path, persistent: bool, fields: Json) -> Emulator {
    let emu = if persistent {
        Emulator::start_persistent(dir)
    } else {
        Emulator::start(dir)
    };
    emu.create_dataset(DATASET);
    emu.create_table(DATASET, "t", fields);
    emu
}

/// The exit code, or -1 when pipe has not exited within `secs` (the caller prints
/// its log; drop kills it).
fn exit_within(pipe: &mut Pipe, secs: u64) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if let Some(status) = pipe.child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    -1
}

/// Waits (without blocking the runtime) until `check` is true or `secs` pass.
async fn until(secs: u64, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check()
}

/// The exit code, or -1 (after killing it) when pipe has not exited within `secs`.
async fn exit_code(mut pipe: Pipe, secs: u64) -> i32 {
    for _ in 0..secs * 20 {
        if let Some(status) = pipe.child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    -1
}

/// Emulator: 10,000 generated events through the Storage Write API's `_default`
/// stream: `SELECT COUNT(*)` is 10,000, each seq once, and every BOOL, INT64,
/// FLOAT64, STRING (unicode, quotes, backslash; NULL when the field is absent) and
/// TIMESTAMP (µs) value reads back exactly as sent.
#[test]
fn emulator_ten_thousand_events_arrive_once_with_exact_values() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator_with_table(
        dir.path(),
        false,
        json!([
            {"name": "seq", "type": "INT64", "mode": "REQUIRED"},
            {"name": "b", "type": "BOOL"},
            {"name": "i", "type": "INT64"},
            {"name": "f", "type": "FLOAT64"},
            {"name": "s", "type": "STRING"},
            {"name": "ts", "type": "TIMESTAMP"},
        ]),
    );
    let vrl = r#"
. = {"seq": n, "b": mod(n, 3) == 0, "i": n * 1000003 - 4611686018427387904, "f": (n - 5000) / 3,
     "s": "événement " + to_string(n) + " \"q\" \\ 日本",
     "ts": from_unix_timestamp!(1796216645123456 + n * 1001, unit: "microseconds")}
if mod(n, 7) == 0 { del(.s) }
"#;
    let t = topology(
        dir.path(),
        &generated(10_000, "", vrl),
        &emu.rest(),
        &emu.grpc(),
        "batch_max_events = 1000",
    );
    let log = dir.path().join("pipe.log");
    let started = Instant::now();
    let mut pipe = Pipe::start(&t, &log);
    assert_eq!(exit_within(&mut pipe, 120), 0, "{}", tail(&log, 30));
    eprintln!("10,000 events streamed in {:.1} s", started.elapsed().as_secs_f64());
    assert_eq!(emu.count(&format!("{DATASET}.t")), 10_000);
    assert_eq!(count_and_distinct(&emu), (10_000, 10_000));
    assert!(dropped(dir.path()).is_empty(), "{:?}", dropped(dir.path()));

    let rows = emu.query(&format!(
        "SELECT seq, b, i, f, s, UNIX_MICROS(ts) FROM `{PROJECT}.{DATASET}.t` ORDER BY seq"
    ));
    assert_eq!(rows.len(), 10_000);
    for (n, row) in rows.iter().enumerate() {
        let n = n as i64;
        let cell = |i: usize| {
            row[i]
                .as_deref()
                .unwrap_or_else(|| panic!("seq {n}: column {i} is NULL"))
        };
        assert_eq!(cell(0).parse::<i64>().unwrap(), n);
        assert_eq!(cell(1), if n % 3 == 0 { "true" } else { "false" }, "seq {n}");
        assert_eq!(
            cell(2).parse::<i64>().unwrap(),
            n * 1_000_003 - 4_611_686_018_427_387_904,
            "seq {n}"
        );
        assert_eq!(cell(3).parse::<f64>().unwrap(), (n - 5000) as f64 / 3.0, "seq {n}");
        let s = (n % 7 != 0).then(|| format!("événement {n} \"q\" \\ 日本"));
        assert_eq!(row[4], s, "seq {n}");
        assert_eq!(
            cell(5).parse::<i64>().unwrap(),
            1_796_216_645_123_456 + n * 1001,
            "seq {n}"
        );
    }
}

/// Emulator: the file source's checkpoint moves only once BigQuery has the rows.
/// With the emulator down when pipe starts, the lines are read but the checkpoint
/// stays at 0; once the emulator is back (same ports, its persistent table), every
/// line lands and the checkpoint reaches the end of the file.
#[test]
fn emulator_checkpoint_moves_only_after_the_appends_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let mut emu = emulator_with_table(dir.path(), true, seq_schema());
    emu.stop();
    let t = topology(dir.path(), &tailed(dir.path()), &emu.rest(), &emu.grpc(), "");
    write_lines(dir.path(), 0..500);
    let log = dir.path().join("pipe.log");
    let pipe = Pipe::start(&t, &log);
    wait_started(&log);
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(checkpoint(dir.path()), 0, "nothing is delivered while BigQuery is down");
    assert!(
        !log_lines_with(&log, "fail; retrying with backoff").is_empty(),
        "{}",
        tail(&log, 20)
    );

    emu.restart();
    let len = file_len(dir.path());
    assert!(
        wait_for(60, || checkpoint(dir.path()) == len),
        "checkpoint {} of {len}: {}",
        checkpoint(dir.path()),
        tail(&log, 20)
    );
    assert_eq!(pipe.stop(30), 0);
    let (rows, distinct) = count_and_distinct(&emu);
    eprintln!("checkpoint test: {rows} rows, {distinct} distinct");
    assert_eq!(distinct, 500);
}

/// Emulator: `kill -9` of pipe several times while a file grows, then a restart:
/// not one line is missing; the duplicates (appended before a crash, not yet
/// checkpointed) are counted and printed.
#[test]
fn emulator_kill_9_mid_stream_loses_nothing() {
    const LINES: u64 = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator_with_table(dir.path(), false, seq_schema());
    let t = topology(dir.path(), &tailed(dir.path()), &emu.rest(), &emu.grpc(), "");
    let log = dir.path().join("pipe.log");

    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (dir, done) = (dir.path().to_path_buf(), done.clone());
        std::thread::spawn(move || {
            let start = Instant::now();
            let mut n = 0;
            while n < LINES {
                let due = ((start.elapsed().as_secs_f64() / 6.0) * LINES as f64) as u64 + 50;
                let upto = due.min(LINES);
                write_lines(&dir, n..upto);
                n = upto;
                std::thread::sleep(Duration::from_millis(10));
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    let mut kills = 0;
    while !done.load(Ordering::SeqCst) {
        let pipe = Pipe::start(&t, &log);
        std::thread::sleep(Duration::from_millis(900 + (kills * 211) % 600));
        pipe.kill9();
        kills += 1;
    }
    writer.join().unwrap();

    // Queried once pipe is done: the emulator's queries can fail while appends run.
    let log = dir.path().join("pipe-last.log");
    let pipe = Pipe::start(&t, &log);
    wait_started(&log);
    let len = file_len(dir.path());
    let complete = wait_for(90, || checkpoint(dir.path()) == len);
    assert_eq!(pipe.stop(30), 0, "{}", tail(&log, 20));
    let (rows, distinct) = count_and_distinct(&emu);
    let range = emu.query(&format!("SELECT MIN(seq), MAX(seq) FROM `{PROJECT}.{DATASET}.t`"));
    let in_range = range[0][0].as_deref() == Some("0") && range[0][1] == Some((LINES - 1).to_string());
    let missing = LINES as i64 - distinct;
    let dups = rows - distinct;
    eprintln!(
        "kill -9 x{kills}: {rows} rows, {missing} missing, {dups} duplicates ({:.2}%)",
        dups as f64 * 100.0 / LINES as f64
    );
    assert!(kills >= 3, "expected several kills, got {kills}");
    assert!(
        complete && in_range && missing == 0,
        "{missing} missing, seq range {range:?}: {}",
        tail(&log, 20)
    );
}

/// Emulator: BigQuery goes away (`kill -9` of the emulator) for 10 s mid-stream and
/// comes back on the same ports with its persistent table: not one event is lost;
/// the appends are retried while the inputs wait. (pipe is paused with SIGSTOP for
/// a moment to count what landed before the outage: the emulator's queries can
/// fail or hang while appends run.)
#[test]
fn emulator_down_for_ten_seconds_loses_nothing() {
    const EVENTS: u64 = 6000;
    let dir = tempfile::tempdir().unwrap();
    let mut emu = emulator_with_table(dir.path(), true, seq_schema());
    let t = topology(
        dir.path(),
        &generated(EVENTS, "rate = 400.0", ""),
        &emu.rest(),
        &emu.grpc(),
        "request_timeout_secs = 5",
    );
    let log = dir.path().join("pipe.log");
    let mut pipe = Pipe::start(&t, &log);
    wait_started(&log);
    std::thread::sleep(Duration::from_secs(3));
    // Counted with pipe paused: the emulator's queries can fail while appends run.
    pipe.signal("STOP");
    std::thread::sleep(Duration::from_millis(300));
    let before = count_and_distinct(&emu).1;
    emu.kill();
    pipe.signal("CONT");
    let down = Instant::now();
    std::thread::sleep(Duration::from_secs(10));
    assert!(pipe.running(), "pipe waits for BigQuery: {}", tail(&log, 20));
    emu.restart();
    eprintln!(
        "BigQuery down for {:.1} s; {before} events were in before",
        down.elapsed().as_secs_f64()
    );
    assert_eq!(exit_within(&mut pipe, 120), 0, "{}", tail(&log, 30));
    let (rows, distinct) = count_and_distinct(&emu);
    eprintln!(
        "outage: {rows} rows, {distinct} distinct, {} duplicates",
        rows - distinct
    );
    assert!(
        before > 0 && (before as u64) < EVENTS,
        "the outage should fall mid-run: {before}"
    );
    assert_eq!(distinct, EVENTS as i64, "{}", tail(&log, 30));
    assert!(
        !log_lines_with(&log, "BigQuery appends fail; retrying").is_empty(),
        "{}",
        tail(&log, 30)
    );
    assert!(
        !log_lines_with(&log, "BigQuery appends work again").is_empty(),
        "{}",
        tail(&log, 30)
    );
}

/// Emulator: `write_mode = "committed"`: the sink's own COMMITTED stream
/// (`CreateWriteStream`) with offsets on every append, which the emulator checks
/// strictly: every event lands once.
#[test]
fn emulator_committed_stream_lands_every_event_once() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator_with_table(dir.path(), false, seq_schema());
    let t = topology(
        dir.path(),
        &generated(3000, "", ""),
        &emu.rest(),
        &emu.grpc(),
        "write_mode = \"committed\"\nbatch_max_events = 250",
    );
    let log = dir.path().join("pipe.log");
    let mut pipe = Pipe::start(&t, &log);
    assert_eq!(exit_within(&mut pipe, 120), 0, "{}", tail(&log, 30));
    assert_eq!(count_and_distinct(&emu), (3000, 3000));
    assert!(!log_lines_with(&log, "Created a COMMITTED write stream").is_empty());
    assert!(log_lines_with(&log, "fail; retrying").is_empty(), "{}", tail(&log, 20));
}

/// Emulator: `write_mode = "committed"` across a restart of the emulator, which
/// forgets its write streams (BigQuery too answers NOT_FOUND for a stream that is
/// gone): the sink creates a new stream and sends what was unanswered again; every
/// event lands.
#[test]
fn emulator_committed_stream_is_replaced_when_bigquery_forgets_it() {
    const EVENTS: u64 = 3000;
    let dir = tempfile::tempdir().unwrap();
    let mut emu = emulator_with_table(dir.path(), true, seq_schema());
    let t = topology(
        dir.path(),
        &generated(EVENTS, "rate = 500.0", ""),
        &emu.rest(),
        &emu.grpc(),
        "write_mode = \"committed\"\nrequest_timeout_secs = 5",
    );
    let log = dir.path().join("pipe.log");
    let mut pipe = Pipe::start(&t, &log);
    wait_started(&log);
    std::thread::sleep(Duration::from_secs(2));
    pipe.signal("STOP");
    std::thread::sleep(Duration::from_millis(300));
    let before = count_and_distinct(&emu).1;
    emu.kill();
    pipe.signal("CONT");
    std::thread::sleep(Duration::from_secs(2));
    emu.restart();
    assert_eq!(exit_within(&mut pipe, 60), 0, "{}", tail(&log, 30));
    let (rows, distinct) = count_and_distinct(&emu);
    eprintln!("committed across a restart: {before} before, {rows} rows, {distinct} distinct");
    assert!(
        before > 0 && (before as u64) < EVENTS,
        "the restart should fall mid-run: {before}"
    );
    assert_eq!(distinct, EVENTS as i64, "{}", tail(&log, 30));
    assert!(
        log_lines_with(&log, "Created a COMMITTED write stream").len() >= 2,
        "{}",
        tail(&log, 30)
    );
}

/// Emulator: `api = "insert_all"` with `id_field`: every event lands once.
#[test]
fn emulator_insert_all_lands_every_event() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator_with_table(dir.path(), false, seq_schema());
    let t = topology(
        dir.path(),
        &generated(3000, "", ""),
        &emu.rest(),
        &emu.grpc(),
        "api = \"insert_all\"\nid_field = \"seq\"\nbatch_max_events = 500",
    );
    let log = dir.path().join("pipe.log");
    let mut pipe = Pipe::start(&t, &log);
    assert_eq!(exit_within(&mut pipe, 120), 0, "{}", tail(&log, 30));
    assert_eq!(count_and_distinct(&emu), (3000, 3000));
    let s = emu.query(&format!("SELECT s FROM `{PROJECT}.{DATASET}.t` WHERE seq = 2999"));
    assert_eq!(s[0][0].as_deref(), Some("event 2999"));
}

/// Fake (the emulator never sends row errors nor checks REQUIRED): rows the fake
/// refuses with `row_errors` go to `bq.dropped` carrying the fake's message, the rest
/// of their append is sent again and lands; an append refused INVALID_ARGUMENT
/// without row errors is halved down to the one bad row; an event missing a REQUIRED
/// column is refused by pipe itself and never sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_row_errors_go_to_dropped_and_the_rest_land() {
    let dir = tempfile::tempdir().unwrap();
    let schema = json!([
        {"name": "seq", "type": "INTEGER", "mode": "REQUIRED"},
        {"name": "n", "type": "INTEGER"},
        {"name": "s", "type": "STRING"},
    ]);
    let bq = FakeBigQuery::start(PROJECT, DATASET, &[("t", schema)], None).await;
    bq.script(|s| {
        s.refuse_rows
            .push(("seq".into(), json!(7), "fake: seq 7 is not allowed".into()));
        s.refuse_rows
            .push(("seq".into(), json!(512), "fake: seq 512 is not allowed".into()));
        s.invalid_rows.push(("seq".into(), json!(300)));
    });
    let vrl = ".n = n\nif n == 9 { del(.seq) }";
    let t = topology(
        dir.path(),
        &generated(1000, "", vrl),
        &bq.rest(),
        &bq.grpc(),
        "batch_max_events = 100",
    );
    let log = dir.path().join("pipe.log");
    assert_eq!(exit_code(Pipe::start(&t, &log), 60).await, 0, "{}", tail(&log, 30));

    let expected: Vec<i64> = (0..1000).filter(|n| ![7, 9, 300, 512].contains(n)).collect();
    assert_eq!(bq.ints("t", "n"), expected, "each other row once");
    let mut dead = dropped(dir.path());
    dead.sort_by_key(|e| e["n"].as_i64());
    let reasons: Vec<(i64, String)> = dead
        .iter()
        .map(|e| {
            (
                e["n"].as_i64().unwrap(),
                e["dropped"]["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert_eq!(reasons[0].0, 7);
    assert!(reasons[0].1.contains("fake: seq 7 is not allowed"), "{reasons:?}");
    assert_eq!(reasons[1].0, 9);
    assert!(reasons[1].1.contains("REQUIRED column `seq` is missing"), "{reasons:?}");
    assert_eq!(reasons[2].0, 300);
    assert!(
        reasons[2].1.contains("fake: the append holds an invalid row"),
        "{reasons:?}"
    );
    assert_eq!(reasons[3].0, 512);
    assert!(reasons[3].1.contains("fake: seq 512 is not allowed"), "{reasons:?}");
    assert!(dead.iter().all(|e| e["dropped"]["component"] == "bq"));
    let stats = bq.stats();
    eprintln!("row errors: {stats:?}");
    assert_eq!(stats.row_errors, 2);
    assert_eq!(
        stats.required_missing, 0,
        "pipe never sends a row missing a REQUIRED column"
    );
    // 100 rows halved down to one: 7 refusals on the way (100, 50, 25, 13, 7, 4, 2, 1).
    assert!(stats.invalid_argument >= 7, "{stats:?}");
    assert_eq!(
        exit_counter(&log, "bq", "rejected_by_bigquery"),
        Some(3),
        "{}",
        tail(&log, 5)
    );
    assert_eq!(exit_counter(&log, "bq", "invalid_row"), Some(1));
}

/// Fake (the emulator never fails an append with a transient code, nor hangs): while
/// every append is answered UNAVAILABLE, lines are read but their checkpoint does not
/// move; then UNAVAILABLE inline and as the call's end, INTERNAL, ABORTED,
/// RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED and a hang (no answer within
/// `request_timeout_secs`) are all retried: every line lands, none is dropped, and the
/// checkpoint reaches the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_transient_codes_and_a_hang_are_retried() {
    let dir = tempfile::tempdir().unwrap();
    let bq = FakeBigQuery::start(PROJECT, DATASET, &[("t", seq_schema())], None).await;
    bq.script(|s| s.refuse_all = Some(Code::Unavailable));
    let t = topology(
        dir.path(),
        &tailed(dir.path()),
        &bq.rest(),
        &bq.grpc(),
        "batch_max_events = 50\nrequest_timeout_secs = 2",
    );
    write_lines(dir.path(), 0..500);
    let log = dir.path().join("pipe.log");
    let pipe = Pipe::start(&t, &log);
    assert!(until(20, || bq.stats().refused_all >= 3).await, "{}", tail(&log, 20));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        checkpoint(dir.path()),
        0,
        "nothing is acknowledged while every append fails"
    );
    assert!(bq.rows("t").is_empty());

    bq.script(|s| s.refuse_all = None);
    for (k, fault) in [
        (1, Fault::Inline(Code::Unavailable)),
        (3, Fault::EndCall(Code::Unavailable)),
        (5, Fault::Hang),
        (7, Fault::Inline(Code::Internal)),
        (9, Fault::EndCall(Code::Aborted)),
        (11, Fault::Inline(Code::ResourceExhausted)),
        (13, Fault::Inline(Code::DeadlineExceeded)),
    ] {
        bq.fault_in(k, fault);
    }
    for chunk in 0..20 {
        write_lines(dir.path(), 500 + chunk * 75..500 + (chunk + 1) * 75);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let total = 2000;
    let complete = until(60, || {
        let mut v = bq.ints("t", "seq");
        v.dedup();
        v.len() == total
    })
    .await;
    let len = file_len(dir.path());
    assert!(
        until(20, || checkpoint(dir.path()) == len).await,
        "checkpoint {} of {len}",
        checkpoint(dir.path())
    );
    assert_eq!(exit_code_of(pipe).await, 0, "{}", tail(&log, 20));
    let stats = bq.stats();
    let (missing, dups) = missing_and_dups(&bq.ints("t", "seq"), total as u64);
    eprintln!(
        "transient faults: {} missing, {dups} duplicates; {stats:?}",
        missing.len()
    );
    assert!(
        complete && missing.is_empty(),
        "missing {:?}: {}",
        ranges(&missing),
        tail(&log, 30)
    );
    assert_eq!(stats.faults, 7, "every scripted fault was met: {stats:?}");
    assert!(dropped(dir.path()).is_empty(), "{:?}", dropped(dir.path()));
    assert!(!log_lines_with(&log, "BigQuery appends work again").is_empty());
}

/// SIGTERM, then the exit code (-1 after 30 s).
async fn exit_code_of(pipe: Pipe) -> i32 {
    pipe.signal("TERM");
    exit_code(pipe, 30).await
}

/// Fake (the emulator cannot lose an answer): `write_mode = "committed"`. The call
/// ends UNAVAILABLE right after the fake appended an append, so its answer never
/// arrives; pipe sends it again at the same offset, the fake answers ALREADY_EXISTS,
/// and the table holds each event exactly once. An inline UNAVAILABLE later (the
/// appends behind it then meet OUT_OF_RANGE on the old call) is resent the same way,
/// and so is what remains of appends refused for a row error or halved for an
/// INVALID_ARGUMENT: the offsets stay contiguous.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_committed_stream_never_duplicates_a_resent_append() {
    let dir = tempfile::tempdir().unwrap();
    let bq = FakeBigQuery::start(PROJECT, DATASET, &[("t", seq_schema())], None).await;
    bq.fault_in(3, Fault::AppendThenEndCall(Code::Unavailable));
    bq.fault_in(12, Fault::Inline(Code::Unavailable));
    bq.script(|s| {
        s.refuse_rows
            .push(("seq".into(), json!(777), "fake: seq 777 is not allowed".into()));
        s.invalid_rows.push(("seq".into(), json!(1500)));
    });
    let t = topology(
        dir.path(),
        &generated(2000, "", ""),
        &bq.rest(),
        &bq.grpc(),
        "write_mode = \"committed\"\nbatch_max_events = 100",
    );
    let log = dir.path().join("pipe.log");
    assert_eq!(exit_code(Pipe::start(&t, &log), 60).await, 0, "{}", tail(&log, 30));
    let stats = bq.stats();
    eprintln!("committed: {stats:?}");
    let expected: Vec<i64> = (0..2000).filter(|n| *n != 777 && *n != 1500).collect();
    assert_eq!(bq.ints("t", "seq"), expected, "each event exactly once");
    assert_eq!(stats.faults, 2);
    assert!(
        stats.already_exists >= 1,
        "the resent append met ALREADY_EXISTS: {stats:?}"
    );
    assert_eq!(stats.streams_created, 1);
    let dead: Vec<i64> = dropped(dir.path()).iter().filter_map(|e| e["seq"].as_i64()).collect();
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert!(dead.contains(&777) && dead.contains(&1500), "{dead:?}");
}

/// A fresh 2048-bit RSA key made with openssl: (PKCS #8 PEM, public key as PKCS #1
/// DER to check signatures with).
fn rsa_key(dir: &Path) -> (String, Vec<u8>) {
    let pem = dir.join("key.pem");
    let der = dir.join("pub.der");
    let ok = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&pem)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok, "openssl genpkey");
    let ok = Command::new("openssl")
        .args(["rsa", "-RSAPublicKey_out", "-outform", "DER", "-in"])
        .arg(&pem)
        .arg("-out")
        .arg(&der)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok, "openssl rsa");
    (fs::read_to_string(&pem).unwrap(), fs::read(&der).unwrap())
}

/// Fake and fake token server (the emulator takes any token or none): with a
/// service account key whose `token_uri` is the fake token server, every REST and
/// gRPC request carries a bearer token the server issued (from a JWT signed with the
/// key); tokens live 4 s, and across a 6 s pause between two bursts of lines pipe
/// fetches a new one before the old expires and reopens its AppendRows call: the fake
/// never sees an expired token, and every line lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_service_account_tokens_are_sent_and_refreshed_before_they_expire() {
    let dir = tempfile::tempdir().unwrap();
    let email = "pipe-test@test-proj.iam.gserviceaccount.com";
    let (pem, public) = rsa_key(dir.path());
    let tokens = TokenServer::start(Duration::from_secs(4), email, public).await;
    let key_path = dir.path().join("sa.json");
    let key = json!({
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": email,
        "client_id": "1",
        "token_uri": tokens.uri(),
    });
    fs::write(&key_path, key.to_string()).unwrap();

    let bq = FakeBigQuery::start(PROJECT, DATASET, &[("t", seq_schema())], Some(&tokens)).await;
    let t = topology(
        dir.path(),
        &tailed(dir.path()),
        &bq.rest(),
        &bq.grpc(),
        &format!("credentials_path = \"{}\"", key_path.display()),
    );
    let log = dir.path().join("pipe.log");
    write_lines(dir.path(), 0..200);
    let pipe = Pipe::start(&t, &log);
    assert!(
        until(30, || bq.rows("t").len() >= 200).await,
        "{:?}: {}",
        bq.stats(),
        tail(&log, 20)
    );
    tokio::time::sleep(Duration::from_secs(6)).await;
    write_lines(dir.path(), 200..400);
    assert!(
        until(30, || bq.rows("t").len() >= 400).await,
        "{:?}: {}",
        bq.stats(),
        tail(&log, 20)
    );
    assert_eq!(exit_code_of(pipe).await, 0, "{}", tail(&log, 20));

    let stats = bq.stats();
    let issued = tokens.issued();
    eprintln!("tokens issued: {}; {stats:?}", issued.len());
    assert!(issued.len() >= 2, "a new token after the first expired: {issued:?}");
    assert!(
        issued.iter().all(|i| i.assertion_ok),
        "every JWT was signed with the key: {issued:?}"
    );
    assert_eq!(
        stats.expired_tokens,
        0,
        "no request came with an expired token: {}",
        tail(&log, 20)
    );
    assert_eq!(stats.bad_tokens, 0, "every request carried a token: {stats:?}");
    assert!(stats.rest_requests >= 1 && stats.calls >= 2, "{stats:?}");
    assert_eq!(bq.ints("t", "seq"), (0..400).collect::<Vec<i64>>());
}

/// Fake (the emulator ignores insertId and stores rows BigQuery refuses):
/// `api = "insert_all"` with `id_field`: the row the fake refuses goes to
/// `bq.dropped` with its message; the rows BigQuery only `stopped` because of it
/// are sent again and land, each once; every row carries its insertId.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_insert_all_refused_rows_are_dropped_and_stopped_ones_resent() {
    let dir = tempfile::tempdir().unwrap();
    let bq = FakeBigQuery::start(PROJECT, DATASET, &[("t", seq_schema())], None).await;
    bq.script(|s| {
        s.refuse_rows
            .push(("seq".into(), json!(5), "fake: seq 5 is invalid".into()))
    });
    let t = topology(
        dir.path(),
        &generated(300, "", ""),
        &bq.rest(),
        &bq.grpc(),
        "api = \"insert_all\"\nid_field = \"seq\"\nbatch_max_events = 100",
    );
    let log = dir.path().join("pipe.log");
    assert_eq!(exit_code(Pipe::start(&t, &log), 60).await, 0, "{}", tail(&log, 30));
    let expected: Vec<i64> = (0..300).filter(|n| *n != 5).collect();
    assert_eq!(bq.ints("t", "seq"), expected);
    let dead = dropped(dir.path());
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["seq"], 5);
    let reason = dead[0]["dropped"]["reason"].as_str().unwrap();
    assert!(reason.contains("fake: seq 5 is invalid"), "{reason}");
    let stats = bq.stats();
    assert_eq!(stats.insert_all_rows_without_id, 0, "{stats:?}");
    assert_eq!(stats.duplicate_insert_ids, 0, "{stats:?}");
}

/// Fake: a templated `table` (`{{ kind }}`). Without `create_table`, the events for
/// a table that does not exist go to `bq.dropped` with the reason and the others
/// land; with `create_table` and a declared `schema`, the missing table is created
/// from it (`tables.insert`) and gets its rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_templated_tables_missing_ones_are_dropped_or_created() {
    let vrl = r#".kind = if mod(n, 3) == 0 { "u" } else { "t" }"#;
    for create in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let bq = FakeBigQuery::start(PROJECT, DATASET, &[("t", seq_schema())], None).await;
        let mut extra = String::from("ignore_unknown_values = true\n");
        if create {
            extra += "create_table = true\n[sinks.bq.schema]\nseq = \"int\"\ns = \"string\"\n";
        }
        let t = topology(dir.path(), &generated(300, "", vrl), &bq.rest(), &bq.grpc(), &extra);
        let text = fs::read_to_string(&t)
            .unwrap()
            .replace("table = \"t\"", "table = \"{{ kind }}\"");
        fs::write(&t, text).unwrap();
        let log = dir.path().join("pipe.log");
        assert_eq!(exit_code(Pipe::start(&t, &log), 60).await, 0, "{}", tail(&log, 30));
        assert_eq!(
            bq.ints("t", "seq"),
            (0..300).filter(|n| n % 3 != 0).collect::<Vec<i64>>()
        );
        let dead = dropped(dir.path());
        if create {
            assert!(dead.is_empty(), "{dead:?}");
            assert_eq!(
                bq.ints("u", "seq"),
                (0..300).filter(|n| n % 3 == 0).collect::<Vec<i64>>()
            );
        } else {
            assert_eq!(dead.len(), 100, "{}", tail(&log, 20));
            let reason = dead[0]["dropped"]["reason"].as_str().unwrap();
            assert!(reason.contains("test-proj.d1.u does not exist"), "{reason}");
            assert_eq!(exit_counter(&log, "bq", "table_not_found"), Some(100));
        }
    }
}

/// `pipe validate` (offline): a `schema` that contradicts `schema_file` exits 78
/// naming the key and the column; one that agrees validates (building the Storage
/// Write client outside the runtime once panicked here).
#[test]
fn validate_refuses_a_schema_that_contradicts_the_schema_file() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("schema.json"),
        r#"[{"name": "seq", "type": "INTEGER", "mode": "REQUIRED"}, {"name": "s", "type": "STRING"}]"#,
    )
    .unwrap();
    let text = format!(
        r#"[sources.gen]
type = "generator"
count = 1
[sinks.bq]
type = "bigquery"
inputs = ["gen"]
project = "p"
dataset = "d"
table = "t"
schema_file = "{}"
[sinks.bq.schema]
seq = "string"
"#,
        dir.path().join("schema.json").display()
    );
    fs::write(dir.path().join("t.toml"), &text).unwrap();
    let out = Command::new(pipe_bin())
        .args(["validate", "t.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    for needle in ["sinks.bq", "key `schema`", "`seq`", "schema_file"] {
        assert!(stderr.contains(needle), "expected {needle:?} in:\n{stderr}");
    }
    let agreeing = text.replace("seq = \"string\"", "seq = \"int\"");
    fs::write(dir.path().join("t.toml"), agreeing).unwrap();
    let out = Command::new(pipe_bin())
        .args(["validate", "t.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}
