//! The `sql` transform through the real binary.
//!
//! Golden files: each folder of `tests/sql/` holds a `topology.toml` fragment with a
//! transform `q`, an `input.jsonl`, and the expected output: `expected.jsonl` (rows of
//! `q`) and, for windowed queries, `expected_late.jsonl` (events of `q.late`). The
//! input goes through stdin → `parse_json` → `q` → files; lines are compared as JSON,
//! in any order. `PIPE_REGENERATE_GOLDEN=1` rewrites the expected files from what pipe
//! produces (review the diff before committing).
//!
//! End to end: the file source's checkpoint does not move past events whose window is
//! still open, and after `kill -9` mid-window the restarted pipe recomputes the window
//! from the re-read events.

mod common;

use common::*;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sql")
}

/// Lines of a JSON-lines file as sorted canonical JSON strings.
fn canonical(path: &Path) -> Vec<String> {
    let text = fs::read_to_string(path).unwrap_or_default();
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .expect("JSON line")
                .to_string()
        })
        .collect();
    lines.sort();
    lines
}

fn run_case(case: &Path) -> Result<(), String> {
    let tmp = tempfile::tempdir().unwrap();
    let fragment = fs::read_to_string(case.join("topology.toml")).unwrap();
    let windowed = fragment.contains("window");
    let out = tmp.path().join("out");
    let mut harness = format!(
        r#"
data_dir = "{data}"
[sources.in]
type = "stdin"
[transforms.parse]
type = "remap"
inputs = ["in"]
source = '. = parse_json!(.message)'
[sinks.out]
type = "file"
inputs = ["q"]
path = "{out}/expected.jsonl"
"#,
        data = tmp.path().join("data").display(),
        out = out.display(),
    );
    if windowed {
        harness.push_str(&format!(
            "[sinks.late]\ntype = \"file\"\ninputs = [\"q.late\"]\npath = \"{}/expected_late.jsonl\"\n",
            out.display()
        ));
    }
    let harness_path = tmp.path().join("harness.toml");
    fs::write(&harness_path, harness).unwrap();
    let log = tmp.path().join("pipe.log");
    let mut child = Command::new(pipe_bin())
        .args(["-t"])
        .arg(&harness_path)
        .arg("-t")
        .arg(case.join("topology.toml"))
        .env("PIPE_GOLDEN_DIR", case)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&fs::read(case.join("input.jsonl")).unwrap())
        .unwrap();
    let code = wait_exit(&mut child, 60);
    if code != 0 {
        return Err(format!("pipe exited {code}: {}", tail(&log, 20)));
    }
    let mut names = vec!["expected.jsonl"];
    if windowed {
        names.push("expected_late.jsonl");
    }
    for name in names {
        let got = out.join(name);
        let want = case.join(name);
        if std::env::var("PIPE_REGENERATE_GOLDEN").is_ok() {
            fs::write(&want, fs::read(&got).unwrap_or_default()).unwrap();
            continue;
        }
        if canonical(&got) != canonical(&want) {
            return Err(format!(
                "{name} differs\n got: {:#?}\nwant: {:#?}\nlog: {}",
                canonical(&got),
                canonical(&want),
                tail(&log, 10)
            ));
        }
    }
    Ok(())
}

#[test]
fn golden_files() {
    let mut cases: Vec<PathBuf> = fs::read_dir(golden_dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("topology.toml").is_file())
        .collect();
    cases.sort();
    assert!(cases.len() >= 6, "the golden cases are there");
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| run_case(c).err().map(|e| format!("{}: {e}", c.display())))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn mistakes_in_the_query_are_caught_at_validate_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.toml");
    let topology = |query: &str| {
        format!(
            r#"
[sources.in]
type = "stdin"
[transforms.q]
type = "sql"
inputs = ["in"]
query = "{query}"
schema = {{ service = "string", n = "int" }}
[sinks.out]
type = "console"
inputs = ["q"]
"#
        )
    };
    fs::write(&path, topology("SELEC service FROM input")).unwrap();
    let out = Command::new(pipe_bin()).arg("validate").arg(&path).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(
        err.contains("transforms.q") && err.contains("query") && err.contains("SELEC"),
        "{err}"
    );

    fs::write(&path, topology("SELECT servce FROM input")).unwrap();
    let out = Command::new(pipe_bin()).arg("validate").arg(&path).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(
        err.contains("servce") && err.contains("the columns of `input` are: service, n"),
        "{err}"
    );
}

/// File source → sql (1-hour tumbling windows) → file: nothing is checkpointed while
/// the window is open; `kill -9` then loses nothing, and the window emitted after the
/// restart counts every event.
#[test]
fn open_windows_hold_the_checkpoint_and_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    fs::create_dir_all(&input).unwrap();
    let out = dir.path().join("out");
    let topology = dir.path().join("t.toml");
    fs::write(
        &topology,
        format!(
            r#"
data_dir = "{data}"
[sources.logs]
type = "file"
include = ["{input}/*.log"]
[transforms.parse]
type = "remap"
inputs = ["logs"]
source = '. = parse_json!(.message)'
[transforms.q]
type = "sql"
inputs = ["parse"]
query = "SELECT count(*) AS n FROM input"
schema = {{ timestamp = "timestamp" }}
window = {{ type = "tumbling", size = "1h" }}
[sinks.out]
type = "file"
inputs = ["q"]
path = "{out}/counts.jsonl"
"#,
            data = dir.path().join("data").display(),
            input = input.display(),
            out = out.display(),
        ),
    )
    .unwrap();
    let mut lines = String::new();
    for i in 0..500 {
        lines.push_str(&format!(
            "{{\"timestamp\":\"2026-11-27T10:{:02}:{:02}Z\",\"i\":{i}}}\n",
            i / 60 % 60,
            i % 60
        ));
    }
    fs::write(input.join("app.log"), &lines).unwrap();
    let log = dir.path().join("pipe.log");
    let pipe = Pipe::start(&topology, &log);
    wait_started(&log);
    let checkpoint = dir.path().join("data/logs/checkpoints.json");
    let offset = || -> u64 {
        let text = fs::read_to_string(&checkpoint).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        v["files"]
            .as_array()
            .map(|f| f.iter().filter_map(|e| e["offset"].as_u64()).max().unwrap_or(0))
            .unwrap_or(0)
    };
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(offset(), 0, "the window is open: nothing may be checkpointed");
    pipe.kill9();
    assert_eq!(count_lines(&out), 0, "nothing emitted before the window closed");

    // Restart; once the 500 events are read again, an event two hours later closes
    // the window.
    let pipe = Pipe::start(&topology, &log);
    std::thread::sleep(std::time::Duration::from_secs(2));
    let mut f = fs::OpenOptions::new().append(true).open(input.join("app.log")).unwrap();
    f.write_all(b"{\"timestamp\":\"2026-11-27T12:00:00Z\",\"i\":-1}\n")
        .unwrap();
    assert!(wait_for(30, || count_lines(&out) == 1), "{}", tail(&log, 20));
    let row: serde_json::Value =
        serde_json::from_str(fs::read_to_string(out.join("counts.jsonl")).unwrap().trim()).unwrap();
    assert_eq!(row["n"], 500, "every event of the window, re-read after the crash");
    assert_eq!(row["window_start"], "2026-11-27T10:00:00Z");
    assert!(
        wait_for(10, || offset() >= lines.len() as u64),
        "the window's events are acknowledged once its row is written"
    );
    assert_eq!(pipe.stop(30), 0);
}

/// One event stamped 2099 among 10,000 stamped now: the watermark stays at the wall
/// clock, so the 2099 event is windowed now (counted) and none of the others is late.
#[test]
fn an_event_from_2099_makes_no_later_event_late() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let topology = dir.path().join("t.toml");
    fs::write(
        &topology,
        format!(
            r#"
data_dir = "{data}"
[sources.in]
type = "stdin"
[transforms.parse]
type = "remap"
inputs = ["in"]
source = '. = parse_json!(.message)'
[transforms.q]
type = "sql"
inputs = ["parse"]
query = "SELECT count(*) AS n FROM input"
schema = {{ timestamp = "timestamp" }}
window = {{ type = "tumbling", size = "1m" }}
# The events are stamped when the test starts; the lateness covers a minute turning
# before pipe reads them.
allowed_lateness = "1m"
[sinks.out]
type = "file"
inputs = ["q"]
path = "{out}/counts.jsonl"
[sinks.late]
type = "file"
inputs = ["q.late"]
path = "{out}/late.jsonl"
"#,
            data = dir.path().join("data").display(),
            out = out.display(),
        ),
    )
    .unwrap();
    let now = chrono::Utc::now().to_rfc3339();
    let mut input = String::new();
    for i in 0..10_000 {
        if i == 100 {
            input.push_str("{\"timestamp\":\"2099-01-01T00:00:00Z\",\"i\":-1}\n");
        }
        input.push_str(&format!("{{\"timestamp\":\"{now}\",\"i\":{i}}}\n"));
    }
    let log = dir.path().join("pipe.log");
    let mut child = Command::new(pipe_bin())
        .arg("-t")
        .arg(&topology)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    assert_eq!(wait_exit(&mut child, 60), 0, "{}", tail(&log, 20));
    let counts = fs::read_to_string(out.join("counts.jsonl")).unwrap_or_default();
    let total: i64 = counts
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["n"]
                .as_i64()
                .unwrap()
        })
        .sum();
    assert_eq!(total, 10_001, "every event counted, the 2099 one now: {counts}");
    assert!(!counts.contains("2099"), "no window in 2099: {counts}");
    assert_eq!(
        fs::read_to_string(out.join("late.jsonl"))
            .unwrap_or_default()
            .lines()
            .count(),
        0,
        "no event is late"
    );
    let counters = log_lines_with(&log, "component=q kind=\"transform\"");
    assert!(
        counters.iter().any(|l| l.contains("\"future_timestamp\": 1")),
        "counted: {counters:?}"
    );
}

#[test]
fn a_hopping_window_in_too_many_slides_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.toml");
    fs::write(
        &path,
        r#"
[sources.in]
type = "stdin"
[transforms.q]
type = "sql"
inputs = ["in"]
query = "SELECT count(*) AS n FROM input"
window = { type = "hopping", size = "1d", slide = "1s" }
[sinks.out]
type = "console"
inputs = ["q"]
"#,
    )
    .unwrap();
    let out = Command::new(pipe_bin()).arg("validate").arg(&path).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(
        err.contains("transforms.q") && err.contains("window.slide") && err.contains("86400"),
        "{err}"
    );
    // 1000 windows per event is still fine.
    fs::write(
        &path,
        fs::read_to_string(&path)
            .unwrap()
            .replace("size = \"1d\"", "size = \"1000s\""),
    )
    .unwrap();
    let out = Command::new(pipe_bin()).arg("validate").arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
