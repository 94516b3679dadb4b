//! `pipe test`: the tests shipped in every topology under `topologies/` pass; a failing
//! expectation exits 1 with a diff of expected and actual events; a condition is
//! checked on every event unless `match = "any"`; a source's decoding runs on lines;
//! an invalid test exits 78 naming its key; sinks are never built.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

/// Runs `pipe test FILES`: the exit code, standard output and standard error.
fn pipe_test(files: &[&Path]) -> (i32, String, String) {
    let out = Command::new(pipe_bin())
        .arg("test")
        .args(files)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run pipe test");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const TOPOLOGY: &str = r#"
[sources.web]
type = "http"
address = "127.0.0.1:0"
decoding = "json"

[transforms.shape]
type = "remap"
inputs = ["web"]
source = '''
.level = downcase(string(.level) ?? "info")
if .level == "debug" { abort }
'''

[transforms.levels]
type = "route"
inputs = ["shape"]
route.errors = '.level == "error"'

# Never built by `pipe test`: its missing `path` would stop a real run.
[sinks.out]
type = "file"
inputs = ["levels.errors"]
"#;

#[test]
fn every_shipped_topology_passes_its_tests() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies");
    let mut topologies: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    topologies.sort();
    assert!(topologies.len() >= 5, "{topologies:?}");
    for t in &topologies {
        let (code, out, err) = pipe_test(&[t]);
        println!("{}:\n{out}{err}", t.display());
        assert_eq!(code, 0, "{}:\n{out}{err}", t.display());
        assert!(out.contains("... ok") && out.contains(" 0 failed"), "{out}");
    }
}

#[test]
fn passing_tests_exit_0_and_sinks_are_never_built() {
    let dir = tempfile::tempdir().unwrap();
    let topology = write(
        dir.path(),
        "t.toml",
        &format!(
            r#"{TOPOLOGY}
[[tests]]
name = "levels are lower-cased and errors routed"
no_outputs_from = ["web.dropped"]
[[tests.inputs]]
insert_at = "web"
lines = ['{{"level": "ERROR", "msg": "a"}}', '{{"msg": "b"}}', '{{"level": "DEBUG"}}']
[[tests.outputs]]
extract_from = "shape"
count = 2
conditions = ['includes(["error", "info"], .level)']
[[tests.outputs]]
extract_from = "levels.errors"
events = [{{ level = "error", msg = "a" }}]

[[tests]]
name = "the source's JSON decoding refuses what is not JSON"
no_outputs_from = ["shape"]
[[tests.inputs]]
insert_at = "web"
lines = ["not json"]
[[tests.outputs]]
extract_from = "web.dropped"
count = 1
conditions = ['contains(string!(.dropped.reason), "JSON")', '.message == "not json"']
"#
        ),
    );
    let (code, out, err) = pipe_test(&[&topology]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("2 tests: 2 passed, 0 failed"), "{out}");
    // The same topology does not validate: its sink lacks `path`.
    let validate = Command::new(pipe_bin())
        .arg("validate")
        .arg(&topology)
        .output()
        .unwrap();
    assert_eq!(validate.status.code(), Some(78));
}

#[test]
fn a_failing_expectation_exits_1_with_a_diff() {
    let dir = tempfile::tempdir().unwrap();
    let topology = write(dir.path(), "t.toml", TOPOLOGY);
    // Tests may live beside the topology, in a file given with it.
    let tests = write(
        dir.path(),
        "t.tests.toml",
        r#"
[[tests]]
name = "wrong level expected"
[[tests.inputs]]
insert_at = "shape"
events = [{ level = "WARN", msg = "disk 91%" }, { level = "info", msg = "ok" }]
[[tests.outputs]]
extract_from = "shape"
events = [{ level = "WARNING", msg = "disk 91%" }, { level = "info", msg = "ok" }]

[[tests]]
name = "a condition must hold for every event"
[[tests.inputs]]
insert_at = "shape"
events = [{ level = "info" }, { level = "error" }]
[[tests.outputs]]
extract_from = "shape"
conditions = ['.level == "info"']

[[tests]]
name = "unless match is any"
no_outputs_from = ["levels._unmatched"]
[[tests.inputs]]
insert_at = "shape"
events = [{ level = "info" }, { level = "error" }]
[[tests.outputs]]
extract_from = "shape"
match = "any"
conditions = ['.level == "error"']
"#,
    );
    let (code, out, err) = pipe_test(&[&topology, &tests]);
    println!("{out}{err}");
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("test \"wrong level expected\" ... FAILED"), "{out}");
    assert!(
        out.contains("-     \"level\": \"WARNING\""),
        "the expected line is marked: {out}"
    );
    assert!(
        out.contains("+     \"level\": \"warn\""),
        "the actual line is marked: {out}"
    );
    assert!(
        out.contains("    \"msg\": \"disk 91%\""),
        "common lines are shown: {out}"
    );
    assert!(
        out.contains("test \"a condition must hold for every event\" ... FAILED"),
        "{out}"
    );
    assert!(
        out.contains("1 of 2 events fail the conditions") && out.contains("event 2:"),
        "{out}"
    );
    // The third passes its `any` condition but `levels._unmatched` carried the info event.
    assert!(out.contains("test \"unless match is any\" ... FAILED"), "{out}");
    assert!(
        out.contains("`levels._unmatched` must stay empty but carried 1 event"),
        "{out}"
    );
    assert!(out.contains("3 tests: 0 passed, 3 failed"), "{out}");
}

#[test]
fn an_invalid_test_exits_78_naming_its_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let topology = write(
        dir.path(),
        "t.toml",
        &format!(
            r#"{TOPOLOGY}
[[tests]]
name = "typo"
[[tests.inputs]]
insert_at = "shape"
events = [{{ level = "info" }}]
[[tests.outputs]]
extract_from = "levles.errors"
count = 1
"#
        ),
    );
    let (code, out, err) = pipe_test(&[&topology]);
    assert_eq!(code, 78, "{out}{err}");
    let line = TOPOLOGY.lines().count() + 3;
    assert!(
        err.contains(&format!("t.toml:{line}:")) && err.contains("tests.outputs[0].extract_from"),
        "{err}"
    );
    assert!(err.contains("levles.errors"), "{err}");
}
