//! The `file` sink under hostile field values, through the real binary: an `http`
//! source (driven by curl) feeds `path = ".../{{ service }}.log"`, the pattern of the
//! shipped aggregator and all-in-one topologies. Values that try to climb out
//! (`../../x`, `/etc/x`), a 300-byte value and a NUL byte stay inside the sink's
//! directory; events whose file cannot be opened (a symlink or a directory in the
//! way) or whose value is empty (the path would lose a level) go to the `dropped`
//! output with the reason; good events sent after them all arrive.

mod common;

use common::*;
use std::fs;
use std::path::Path;
use std::process::Command;

fn post(url: &str, body: &str) -> u16 {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "20"])
        .args(["-H", "Content-Type: application/x-ndjson", "--data-binary", body, url])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).parse().unwrap_or(0)
}

fn all_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = files_under(dir).iter().map(|p| p.display().to_string()).collect();
    v.sort();
    v
}

#[test]
fn hostile_values_stay_inside_the_sink_directory_and_never_hold_up_good_events() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let logs = root.join("logs");
    fs::create_dir_all(&logs).unwrap();
    // Things in the way: a symlink where a file would go, and a directory.
    let outside = dir.path().join("outside.log");
    std::os::unix::fs::symlink(&outside, logs.join("linked.log")).unwrap();
    fs::create_dir_all(logs.join("adir.log")).unwrap();
    let port = free_port();
    let topology = dir.path().join("t.toml");
    fs::write(
        &topology,
        format!(
            r#"data_dir = "{data}"
[sources.web]
type = "http"
address = "127.0.0.1:{port}"
[sinks.out]
type = "file"
inputs = ["web"]
path = "{logs}/{{{{ service }}}}.log"
[sinks.dead]
type = "file"
inputs = ["out.dropped"]
path = "{dead}"
"#,
            data = dir.path().join("data").display(),
            logs = logs.display(),
            dead = dir.path().join("dead.log").display(),
        ),
    )
    .unwrap();
    let log = dir.path().join("pipe.log");
    let pipe = Pipe::start(&topology, &log);
    let url = format!("http://127.0.0.1:{port}/");
    let health = format!("{url}health");
    let ready = || {
        Command::new("curl")
            .args(["-sf", "-o", "/dev/null", &health])
            .status()
            .is_ok_and(|s| s.success())
    };
    assert!(wait_for(30, ready), "{}", tail(&log, 20));

    let long = "y".repeat(300);
    let hostile = [
        r#"{"service":"../../x","n":1}"#.to_string(),
        r#"{"service":"/etc/x","n":2}"#.to_string(),
        format!(r#"{{"service":"{long}","n":3}}"#),
        r#"{"service":"nul\u0000byte","n":4}"#.to_string(),
        r#"{"service":"linked","n":5}"#.to_string(),
        r#"{"service":"adir","n":6}"#.to_string(),
        // Empty: the file would move up a level (to `logs/.log`).
        r#"{"service":"","n":7}"#.to_string(),
    ];
    for h in &hostile {
        assert_eq!(post(&url, h), 200, "{h}: {}", tail(&log, 20));
    }
    let started = std::time::Instant::now();
    let good: String = (0..200)
        .map(|i| format!("{{\"service\":\"good\",\"n\":{i}}}\n"))
        .collect();
    assert_eq!(post(&url, &good), 200, "{}", tail(&log, 20));
    assert!(
        started.elapsed().as_secs() < 10,
        "the good events took {:?}",
        started.elapsed()
    );
    assert_eq!(pipe.stop(30), 0, "{}", tail(&log, 30));

    // Nothing outside the sink's directory (but the dead-letter file and pipe's own).
    assert!(!outside.exists(), "the symlink was followed");
    assert!(!dir.path().join("x.log").exists() && !root.join("x.log").exists());
    assert!(!Path::new("/etc/x.log").exists());
    let written = all_files(&root);
    assert!(
        written.iter().all(|f| f.starts_with(&logs.display().to_string())),
        "{written:?}"
    );
    let names: Vec<String> = fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for expected in ["..%2F..%2Fx.log", "%2Fetc%2Fx.log", "nul%00byte.log", "good.log"] {
        assert!(names.iter().any(|n| n == expected), "{expected} not in {names:?}");
    }
    let hashed: Vec<&String> = names.iter().filter(|n| n.starts_with("yyyy")).collect();
    assert_eq!(hashed.len(), 1, "{names:?}");
    assert_eq!(hashed[0].len(), 200 + 16 + ".log".len(), "{}", hashed[0]);
    let good_lines = fs::read_to_string(logs.join("good.log")).unwrap();
    assert_eq!(good_lines.lines().count(), 200);

    // The two that cannot be opened went to `dropped`, with the reason.
    let dead = fs::read_to_string(dir.path().join("dead.log")).unwrap_or_default();
    let dead: Vec<serde_json::Value> = dead.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let mut refused: Vec<i64> = dead.iter().map(|e| e["n"].as_i64().unwrap()).collect();
    refused.sort();
    assert_eq!(refused, [5, 6, 7], "{dead:?}");
    for e in &dead {
        let reason = e["dropped"]["reason"].as_str().unwrap();
        let expected = if e["n"] == 7 { "is empty" } else { "logs/" };
        assert!(reason.contains(expected), "the reason names the problem: {reason}");
        assert_eq!(e["dropped"]["component"], "out");
    }
    let counters = log_lines_with(&log, "Component counters at exit. component=out").join("");
    assert!(counters.contains("\"unwritable_path\": 3"), "{counters}");
    // Why: one path could not be rendered, two files could not be opened.
    assert!(
        counters.contains("\"template\": 1") && counters.contains("\"open\": 2"),
        "{counters}"
    );
}
