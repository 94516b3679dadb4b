//! Helpers shared by the archive tests: the test venv's Python (DuckDB, pyarrow),
//! `pipe query` as a child process, and topologies that write an archive from stdin.
#![allow(dead_code)]

use super::common::*;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn venv() -> PathBuf {
    std::env::var_os("PIPE_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/pipe/test-venv"))
}

/// Runs a Python snippet in the test venv and returns its standard output.
pub fn python(script: &str) -> String {
    let out = Command::new(venv().join("bin/python"))
        .arg("-c")
        .arg(script)
        .output()
        .expect("the test venv's python (run tests/run.sh)");
    assert!(
        out.status.success(),
        "python failed:\n{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// One DuckDB query over the Parquet files under `dir` (Hive partitions on, the
/// files' columns merged by name as the sink's schema evolution needs), as CSV
/// lines without header.
pub fn duckdb(dir: &Path, sql: &str) -> Vec<String> {
    let script = format!(
        "import duckdb, csv, sys\n\
         con = duckdb.connect()\n\
         con.execute(\"CREATE VIEW logs AS SELECT * FROM read_parquet('{dir}/**/*.parquet', hive_partitioning=true, union_by_name=true)\")\n\
         w = csv.writer(sys.stdout, lineterminator='\\n')\n\
         for row in con.execute({sql:?}).fetchall(): w.writerow(['' if v is None else v for v in row])\n",
        dir = dir.display(),
    );
    python(&script).lines().map(str::to_string).collect()
}

/// `pipe query … --format csv SQL`, as lines without the header.
pub fn pipe_query(args: &[&str], sql: &str) -> Vec<String> {
    let out = pipe_cmd(&[&["query", "--format", "csv"], args, &[sql]].concat());
    assert!(
        out.status.success(),
        "pipe query failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .skip(1)
        .map(str::to_string)
        .collect()
}

pub fn pipe_cmd(args: &[&str]) -> Output {
    Command::new(pipe_bin()).args(args).output().unwrap()
}

/// Runs a topology over `input` on stdin until it exits; returns its log.
pub fn run_with_stdin(dir: &Path, topology: &str, input: &str, env: &[(&str, String)]) -> String {
    let path = dir.join("topology.toml");
    fs::write(&path, topology).unwrap();
    let mut child = Command::new(pipe_bin())
        .arg("-t")
        .arg(&path)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "pipe failed:\n{log}");
    log
}

/// stdin → parse the JSON line (its `ts` becomes the event time) → `sink`.
pub fn stdin_topology(dir: &Path, sink: &str) -> String {
    format!(
        r#"
data_dir = "{data}"

[sources.in]
type = "stdin"

[transforms.parse]
type = "remap"
inputs = ["in"]
source = '''
. = parse_json!(.message)
.timestamp = parse_timestamp!(del(.ts), "%+")
'''

[sinks.archive]
type = "object_store"
inputs = ["parse"]
{sink}
"#,
        data = dir.join("data").display()
    )
}

/// Relative paths of every file under `dir`, sorted.
pub fn relative_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = files_under(dir)
        .iter()
        .map(|p| p.strip_prefix(dir).unwrap().display().to_string())
        .collect();
    v.sort();
    v
}
