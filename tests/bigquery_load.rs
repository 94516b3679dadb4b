//! The `bigquery` sink's load mode against bqemulator (a real BigQuery REST server
//! whose load jobs read `gs://bucket/…` from a local folder): archive files are
//! loaded by load jobs, each file exactly once, across a `kill` at every step
//! (`PIPE_TEST_ABORT_AT`, the test-only hook) — what replaces the field report's
//! hourly cron script of batch loads.
//!
//! The emulator re-runs a job whose id is reused (BigQuery answers 409), so a sink
//! that inserted a job twice would load its file twice here: the table's count
//! equal to the archive's rows proves it never does.

mod common;
#[path = "common/bigquery.rs"]
mod emulator;

use common::{Pipe, exit_counter, line, wait_exit, wait_for};
use emulator::{Emulator, PROJECT};
use serde_json::json;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const LINES: u64 = 300;

/// A file source → the line number and text → bigquery in load mode.
fn topology(dir: &Path, emu: &Emulator, table: &str, extra: &str) -> PathBuf {
    let text = format!(
        r#"
data_dir = "{data}"
shutdown_timeout_secs = 60

[sources.logs]
type = "file"
include = ["{input}"]

[transforms.shape]
type = "remap"
inputs = ["logs"]
source = '''
. = {{"n": to_int!(slice!(.message, 5, 12)), "msg": .message}}
'''

[sinks.bq]
type = "bigquery"
inputs = ["shape"]
project = "{PROJECT}"
dataset = "d"
table = "{table}"
mode = "load"
endpoint = "{rest}"
url = "{gcs}/bucket/arch"
load_uri_prefix = "gs://bucket/arch"
partition = "%Y%m%d"
max_age_secs = 1
load_interval_secs = 60
{extra}

[sinks.bq.schema]
n = "int"
msg = "string"
"#,
        data = dir.join("data").display(),
        input = dir.join("in.log").display(),
        rest = emu.rest(),
        gcs = emu.gcs_root().display(),
    );
    let path = dir.join(format!("{table}.toml"));
    fs::write(&path, text).unwrap();
    path
}

/// Rows in every Parquet file of the archive, read by DuckDB.
fn archive_rows(root: &Path) -> i64 {
    let py = emulator::venv().join("bin/python");
    let out = Command::new(py)
        .arg("-c")
        .arg(format!(
            "import duckdb; print(duckdb.sql(\"select count(*) from read_parquet('{}/**/*.parquet')\").fetchone()[0])",
            root.display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn write_input(dir: &Path) {
    let text: String = (0..LINES).map(line).collect();
    fs::write(dir.join("in.log"), text).unwrap();
}

/// A kill after the upload, after the job insert and before the acknowledgement,
/// each followed by a restart: every line lands, the table holds exactly the
/// archive's rows (no file loaded twice), and the journal has no open work left.
#[test]
fn a_crash_at_every_step_loads_every_file_exactly_once() {
    let base = tempfile::tempdir().unwrap();
    let emu = Emulator::start(&base.path().join("emu"));
    emu.create_dataset("d");
    for step in ["after_upload", "after_insert", "before_ack"] {
        let dir = base.path().join(step);
        fs::create_dir_all(&dir).unwrap();
        write_input(&dir);
        let table = format!("t_{step}");
        emu.create_table(
            "d",
            &table,
            json!([{"name": "n", "type": "INT64"}, {"name": "msg", "type": "STRING"}]),
        );
        let topo = topology(&dir, &emu, &table, "");
        let log = dir.join("pipe.log");
        let arch = emu.gcs_root().join("bucket/arch").join(&table);

        // Run 1: dies at the step. Files are loaded when the loader's interval is
        // up or when pipe stops; stop it once a file is placed.
        let mut first = Pipe::start_env(&topo, &log, &[("PIPE_TEST_ABORT_AT", step.to_string())]);
        assert!(
            wait_for(30, || arch.exists() && archive_rows(&arch) > 0 || !first.running()),
            "no archive file: {}",
            common::tail(&log, 30)
        );
        if first.running() {
            first.signal("TERM");
        }
        let code = wait_exit(&mut first.child, 60);
        assert_ne!(code, 0, "run 1 was to abort at {step}: {}", common::tail(&log, 30));
        assert!(
            !common::log_lines_with(&log, &format!("PIPE_TEST_ABORT_AT={step}")).is_empty(),
            "run 1 did not reach {step}: {}",
            common::tail(&log, 30)
        );

        // Run 2: finishes the open work, reads the unacknowledged lines again.
        let second = Pipe::start(&topo, &log);
        common::wait_started(&log);
        assert!(
            wait_for(30, || archive_rows(&arch) >= 2 * LINES as i64),
            "the lines were not written again: {}",
            common::tail(&log, 30)
        );
        assert_eq!(second.stop(60), 0, "{}", common::tail(&log, 30));

        let in_table = emu.count(&format!("d.{table}"));
        let in_archive = archive_rows(&arch);
        let distinct = emu.number(&format!("SELECT COUNT(DISTINCT n) FROM `{PROJECT}.d.{table}`"));
        println!("{step}: table {in_table} rows, archive {in_archive} rows, {distinct} distinct lines");
        assert_eq!(distinct, LINES as i64, "{step}: a line is missing");
        assert_eq!(
            in_table, in_archive,
            "{step}: the table and the archive disagree (a file loaded twice or not at all)"
        );
        let journal = fs::read_to_string(dir.join("data/bq/load-journal.jsonl")).unwrap_or_default();
        let (_, open) = replay_open(&journal);
        assert_eq!(open, 0, "{step}: open work left in the journal:\n{journal}");
    }
}

/// Jobs recorded without `done` in journal text: (jobs, open jobs).
fn replay_open(journal: &str) -> (usize, usize) {
    let entries: Vec<serde_json::Value> = journal.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let jobs: Vec<&str> = entries
        .iter()
        .filter(|e| e["op"] == "job")
        .filter_map(|e| e["id"].as_str())
        .collect();
    let done: Vec<&str> = entries
        .iter()
        .filter(|e| e["op"] == "done")
        .filter_map(|e| e["id"].as_str())
        .collect();
    (jobs.len(), jobs.iter().filter(|j| !done.contains(j)).count())
}

/// A load job that fails (its table does not exist, `create_table` is off)
/// rejects the events of its files with BigQuery's error, counted; pipe does not
/// retry it without end, and exits cleanly.
#[test]
fn a_failed_load_job_rejects_its_events_with_the_error() {
    let base = tempfile::tempdir().unwrap();
    let emu = Emulator::start(&base.path().join("emu"));
    emu.create_dataset("d");
    let dir = base.path().join("run");
    fs::create_dir_all(&dir).unwrap();
    write_input(&dir);
    let topo = topology(&dir, &emu, "missing", "healthcheck = false");
    let log = dir.join("pipe.log");
    let pipe = Pipe::start(&topo, &log);
    let arch = emu.gcs_root().join("bucket/arch/missing");
    assert!(
        wait_for(30, || arch.exists() && archive_rows(&arch) == LINES as i64),
        "{}",
        common::tail(&log, 30)
    );
    assert_eq!(pipe.stop(60), 0, "{}", common::tail(&log, 30));
    assert_eq!(
        exit_counter(&log, "bq", "rejected_by_bigquery"),
        Some(LINES),
        "{}",
        common::tail(&log, 30)
    );
    assert!(
        !common::log_lines_with(&log, "A BigQuery load job failed").is_empty(),
        "{}",
        common::tail(&log, 30)
    );
}
