//! The process lifecycle through the real binary: graceful shutdown writes the
//! checkpoint so a restart reads nothing twice; `read_from = "end"`; a stdin topology
//! works as a batch job and exits 0 when its input ends.

mod common;

use common::*;
use std::fs;
use std::io::Write;
use std::process::{Command, Stdio};

#[test]
fn sigterm_then_restart_reads_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    fs::create_dir_all(&input).unwrap();
    let body: String = (0..5000).map(line).collect();
    fs::write(input.join("a.log"), body).unwrap();
    let topology = tail_topology(dir.path(), &format!("{}/*.log", input.display()), "");
    let log = dir.path().join("pipe.log");
    let out = dir.path().join("out");

    let pipe = Pipe::start(&topology, &log);
    assert!(wait_for(30, || count_lines(&out) >= 5000));
    assert_eq!(pipe.stop(30), 0);

    let more: String = (5000..6000).map(line).collect();
    fs::OpenOptions::new()
        .append(true)
        .open(input.join("a.log"))
        .unwrap()
        .write_all(more.as_bytes())
        .unwrap();
    let pipe = Pipe::start(&topology, &log);
    assert!(wait_for(30, || count_lines(&out) >= 6000));
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(pipe.stop(30), 0);
    let (msgs, _) = messages(&out);
    let (missing, dups) = missing_and_duplicates(&tally(&msgs), 6000);
    assert!(missing.is_empty(), "missing {}", missing.len());
    assert_eq!(dups, 0, "a graceful stop must checkpoint everything delivered");
}

#[test]
fn read_from_end_skips_existing_lines_but_not_new_files() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    fs::create_dir_all(&input).unwrap();
    fs::write(input.join("old.log"), (0..100).map(line).collect::<String>()).unwrap();
    let topology = tail_topology(dir.path(), &format!("{}/*.log", input.display()), "read_from = \"end\"");
    let log = dir.path().join("pipe.log");
    let out = dir.path().join("out");
    let pipe = Pipe::start(&topology, &log);
    wait_started(&log);
    std::thread::sleep(std::time::Duration::from_millis(500));
    fs::OpenOptions::new()
        .append(true)
        .open(input.join("old.log"))
        .unwrap()
        .write_all(line(100).as_bytes())
        .unwrap();
    fs::write(input.join("new.log"), (200..210).map(line).collect::<String>()).unwrap();
    assert!(wait_for(30, || count_lines(&out) >= 11));
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(pipe.stop(30), 0);
    let mut got: Vec<u64> = tally(&messages(&out).0).keys().copied().collect();
    got.sort();
    let mut want = vec![100];
    want.extend(200..210);
    assert_eq!(got, want);
}

#[test]
fn stdin_batch_job_exits_zero_when_input_ends() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.log");
    let topology = dir.path().join("t.toml");
    fs::write(
        &topology,
        format!(
            "data_dir = \"{}\"\n[sources.in]\ntype = \"stdin\"\n[transforms.up]\ntype = \"remap\"\ninputs = [\"in\"]\nsource = '.message = upcase(string!(.message))'\n[sinks.out]\ntype = \"file\"\ninputs = [\"up\"]\npath = \"{}\"\nencoding = \"text\"\n",
            dir.path().join("data").display(),
            out.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(pipe_bin())
        .arg("-t")
        .arg(&topology)
        .arg("-q")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input: String = (0..20_000).map(|n| format!("hello {n}\n")).collect();
    stdin.write_all(input.as_bytes()).unwrap();
    stdin.write_all(b"last line without newline").unwrap();
    drop(stdin);
    assert_eq!(wait_exit(&mut child, 30), 0);
    let text = fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 20_001);
    assert_eq!(lines[0], "HELLO 0");
    assert_eq!(lines[20_000], "LAST LINE WITHOUT NEWLINE");
}

#[test]
fn multiline_groups_stack_traces() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    fs::create_dir_all(&input).unwrap();
    let topology = tail_topology(
        dir.path(),
        &format!("{}/*.log", input.display()),
        "[sources.logs.multiline]\nstart_pattern = '^\\d{4}-'\ntimeout_ms = 300",
    );
    let log = dir.path().join("pipe.log");
    let out = dir.path().join("out");
    let text = "2026-11-27 10:00:00 ERROR boom\n  at a.b(C.java:1)\n  at d.e(F.java:2)\n2026-11-27 10:00:01 INFO fine\n2026-11-27 10:00:02 ERROR again\nCaused by: x\n";
    fs::write(input.join("app.log"), text).unwrap();
    let pipe = Pipe::start(&topology, &log);
    assert!(wait_for(30, || count_lines(&out) >= 3), "{}", tail(&log, 20));
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(pipe.stop(30), 0);
    let (msgs, _) = messages(&out);
    assert_eq!(
        msgs,
        vec![
            "2026-11-27 10:00:00 ERROR boom\n  at a.b(C.java:1)\n  at d.e(F.java:2)".to_string(),
            "2026-11-27 10:00:01 INFO fine".to_string(),
            "2026-11-27 10:00:02 ERROR again\nCaused by: x".to_string(),
        ]
    );
}

#[test]
fn generator_to_templated_gzip_files_then_exit() {
    let dir = tempfile::tempdir().unwrap();
    let topology = dir.path().join("t.toml");
    let out = dir.path().join("out");
    fs::write(
        &topology,
        format!(
            r#"data_dir = "{data}"
[sources.gen]
type = "generator"
count = 10000
[transforms.parse]
type = "remap"
inputs = ["gen"]
source = '. = merge(., object!(parse_json!(.message)))'
[sinks.out]
type = "file"
inputs = ["parse"]
path = "{out}/{{{{ service }}}}/%Y/{{{{ level }}}}.log.gz"
compression = "gzip"
"#,
            data = dir.path().join("data").display(),
            out = out.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(pipe_bin())
        .arg("-t")
        .arg(&topology)
        .arg("-q")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert_eq!(
        wait_exit(&mut child, 30),
        0,
        "a topology whose sources all finish exits by itself"
    );
    let files = files_under(&out);
    assert_eq!(files.len(), 4 * 3, "4 services x 3 levels: {files:?}");
    let mut total = 0;
    for f in &files {
        let service = f
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::MultiGzDecoder::new(fs::File::open(f).unwrap()),
            &mut text,
        )
        .unwrap();
        for l in text.lines() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["service"], service.as_str());
            total += 1;
        }
    }
    assert_eq!(total, 10_000);
}

/// Fault test for the file sink: its output directory cannot be created (a plain file
/// stands in the way, which stops root too). Writes are retried with backoff, the
/// source's checkpoint does not move, and once the obstacle is gone every line lands.
#[test]
fn sink_write_failure_backs_off_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    fs::create_dir_all(&input).unwrap();
    fs::write(input.join("a.log"), (0..3000).map(line).collect::<String>()).unwrap();
    let topology = tail_topology(dir.path(), &format!("{}/*.log", input.display()), "");
    let blocker = dir.path().join("out");
    fs::write(&blocker, "not a directory").unwrap();
    let log = dir.path().join("pipe.log");
    let pipe = Pipe::start(&topology, &log);
    assert!(
        wait_for(30, || !log_lines_with(&log, "File opens fail; retrying").is_empty()),
        "{}",
        tail(&log, 20)
    );
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let ckpt = fs::read_to_string(dir.path().join("data/logs/checkpoints.json")).unwrap_or_default();
    assert!(
        !ckpt.contains("\"offset\":3"),
        "checkpoint moved while nothing was written: {ckpt}"
    );
    fs::remove_file(&blocker).unwrap();
    assert!(wait_for(60, || count_lines(&blocker) >= 3000), "{}", tail(&log, 20));
    assert!(!log_lines_with(&log, "File opens work again").is_empty());
    assert_eq!(pipe.stop(30), 0);
    let (missing, _) = missing_and_duplicates(&tally(&messages(&blocker).0), 3000);
    assert!(missing.is_empty(), "missing {}", missing.len());
}
