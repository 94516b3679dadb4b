//! Bad input through the real binary: invalid UTF-8, NUL bytes, a 20 MB line and
//! empty lines. Pipe keeps running, every good line arrives, and the bad ones are
//! counted.

mod common;

use common::*;
use std::fs;
use std::io::Write;

#[test]
fn garbage_never_blocks_good_lines() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    fs::create_dir_all(&input).unwrap();
    let topology = tail_topology(dir.path(), &format!("{}/*.log", input.display()), "");
    let log = dir.path().join("pipe.log");
    let pipe = Pipe::start(&topology, &log);
    wait_started(&log);

    let mut f = fs::File::create(input.join("bad.log")).unwrap();
    let mut good = 0u64;
    let mut write_good = |f: &mut fs::File| {
        f.write_all(line(good).as_bytes()).unwrap();
        good += 1;
    };
    write_good(&mut f);
    f.write_all(b"invalid \xff\xfe utf-8 \xc3\x28 here\n").unwrap();
    write_good(&mut f);
    f.write_all(b"nul \0 bytes \0\0 inside\n").unwrap();
    f.write_all(b"\n\n\n").unwrap();
    write_good(&mut f);
    let huge = vec![b'z'; 20 * 1024 * 1024];
    f.write_all(&huge).unwrap();
    f.write_all(b"\n").unwrap();
    for _ in 0..1000 {
        write_good(&mut f);
    }
    f.flush().unwrap();
    drop(f);

    let out = dir.path().join("out");
    let total = good;
    let arrived = wait_for(60, || tally(&messages(&out).0).len() as u64 >= total);
    // Still alive and still reading: append more after the garbage.
    let mut f = fs::OpenOptions::new().append(true).open(input.join("bad.log")).unwrap();
    f.write_all(line(total).as_bytes()).unwrap();
    let more = wait_for(30, || tally(&messages(&out).0).contains_key(&total));
    assert_eq!(pipe.stop(30), 0);
    assert!(arrived && more, "good lines missing:\n{}", tail(&log, 20));

    let (msgs, _) = messages(&out);
    let counts = tally(&msgs);
    let (missing, dups) = missing_and_duplicates(&counts, total + 1);
    assert!(
        missing.is_empty() && dups == 0,
        "missing {missing:?}, {dups} duplicates"
    );
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("invalid \u{fffd}\u{fffd} utf-8 \u{fffd}( here")),
        "invalid UTF-8 is replaced, not dropped"
    );
    assert!(msgs.iter().any(|m| m == "nul \0 bytes \0\0 inside"));
    assert_eq!(
        msgs.iter().filter(|m| m.is_empty()).count(),
        3,
        "empty lines are events too"
    );
    let cut = msgs
        .iter()
        .find(|m| m.starts_with('z'))
        .expect("the 20 MB line is truncated, not lost");
    assert_eq!(cut.len(), 100 * 1024);
    let counters = log_lines_with(&log, "Component counters at exit. component=logs").join("\n");
    assert!(
        counters.contains("invalid_utf8: 1") || counters.contains("\"invalid_utf8\": 1"),
        "{counters}"
    );
    assert!(counters.contains("\"line_too_long\": 1"), "{counters}");
    // Every line (the good ones, the 6 bad ones and the one appended) was taken in,
    // sent on (counted by the engine) and acknowledged.
    let received = total + 7;
    assert!(
        counters.contains(&format!("received_events={received} sent_events={received}")),
        "{counters}"
    );
    assert!(counters.contains(&format!("\"delivered\": {received}")), "{counters}");
    // One file followed, read to its end.
    assert!(
        counters.contains("\"pipe_file_source_files_watched\": 1")
            && counters.contains("\"pipe_file_source_bytes_behind\": 0"),
        "{counters}"
    );
}

/// `follow_symlinks = false`: a symlink planted among the logs (pointing at a file
/// outside them) is not read; the real log is. With the default the link is read.
#[test]
fn symlinks_are_skipped_when_not_followed() {
    for follow in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in");
        fs::create_dir_all(&input).unwrap();
        let secret = dir.path().join("secret.txt");
        fs::write(&secret, "not a log line\n").unwrap();
        std::os::unix::fs::symlink(&secret, input.join("planted.log")).unwrap();
        fs::write(input.join("app.log"), line(0)).unwrap();
        let extra = format!("follow_symlinks = {follow}");
        let topology = tail_topology(dir.path(), &format!("{}/*.log", input.display()), &extra);
        let log = dir.path().join("pipe.log");
        let pipe = Pipe::start(&topology, &log);
        wait_started(&log);
        let out = dir.path().join("out");
        let expected = if follow { 2 } else { 1 };
        wait_for(20, || messages(&out).0.len() >= expected);
        // Time for a wrongly followed link to be read too.
        std::thread::sleep(std::time::Duration::from_secs(2));
        assert_eq!(pipe.stop(30), 0);
        let (msgs, _) = messages(&out);
        assert_eq!(
            msgs.iter().any(|m| m == "not a log line"),
            follow,
            "follow_symlinks = {follow}: {msgs:?}"
        );
        assert!(tally(&msgs).contains_key(&0), "{msgs:?}");
    }
}

/// `decoding = "json"` on stdin: objects become the event's fields, another JSON value
/// goes to `message`, a line that is not JSON goes to `in.dropped` with the reason and
/// is counted; the good lines around it all arrive.
#[test]
fn json_lines_on_stdin_become_fields_and_the_rest_goes_to_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, log) = pipe_on_stdin(
        dir.path(),
        &format!(
            r#"[sources.in]
type = "stdin"
decoding = "json"
[sinks.out]
type = "file"
inputs = ["in"]
path = "{dir}/out.ndjson"
[sinks.bad]
type = "file"
inputs = ["in.dropped"]
path = "{dir}/bad.ndjson"
"#,
            dir = dir.path().display()
        ),
    );
    let input = "{\"n\":1,\"user\":{\"id\":7}}\n{\"n\":2, broken\n42\n{\"n\":3,\"host\":\"mine\"}\n";
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    assert_eq!(wait_exit(&mut child, 30), 0, "{}", tail(&log, 20));
    let read = |name: &str| json_lines(&dir.path().join(name));
    let out = read("out.ndjson");
    assert_eq!(out.len(), 3, "{out:?}");
    assert_eq!(out[0]["user"]["id"], 7);
    assert!(out[0]["message"].is_null(), "no message string is built: {}", out[0]);
    assert!(out[0]["host"].is_string() && out[0]["timestamp"].is_string());
    assert_eq!(out[1]["message"], 42);
    assert_eq!(out[2]["host"], "mine", "the line's own fields win");
    let bad = read("bad.ndjson");
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert_eq!(bad[0]["message"], "{\"n\":2, broken");
    assert!(
        bad[0]["dropped"]["reason"].as_str().unwrap().starts_with("not JSON"),
        "{}",
        bad[0]
    );
    assert_eq!(bad[0]["dropped"]["component"], "in");
    assert_eq!(exit_counter(&log, "in", "undecodable"), Some(1), "{}", tail(&log, 5));
}

/// `decoding = "json"` on a file source: the same, with the line's place in the file
/// kept; the checkpoint moves past the bad line once both outputs have their events.
#[test]
fn json_lines_in_a_file_become_fields_and_the_rest_goes_to_dropped() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("in")).unwrap();
    fs::write(
        dir.path().join("in/app.log"),
        "{\"n\":1,\"level\":\"info\"}\nnot json at all\n{\"n\":2,\"offset\":\"mine\"}\n",
    )
    .unwrap();
    let topology = dir.path().join("t.toml");
    fs::write(
        &topology,
        format!(
            r#"data_dir = "{dir}/data"
[sources.in]
type = "file"
include = ["{dir}/in/*.log"]
decoding = "json"
[sinks.out]
type = "file"
inputs = ["in"]
path = "{dir}/out.ndjson"
[sinks.bad]
type = "file"
inputs = ["in.dropped"]
path = "{dir}/bad.ndjson"
"#,
            dir = dir.path().display()
        ),
    )
    .unwrap();
    let log = dir.path().join("pipe.log");
    let pipe = Pipe::start(&topology, &log);
    let read = |name: &str| json_lines(&dir.path().join(name));
    assert!(
        wait_for(20, || read("out.ndjson").len() == 2 && read("bad.ndjson").len() == 1),
        "{}",
        tail(&log, 20)
    );
    assert_eq!(pipe.stop(30), 0);
    let out = read("out.ndjson");
    assert_eq!(out[0]["level"], "info");
    assert_eq!(out[0]["offset"], 0);
    assert!(out[0]["file"].as_str().unwrap().ends_with("app.log"));
    assert_eq!(out[1]["offset"], "mine", "the line's own fields win");
    let bad = read("bad.ndjson");
    assert_eq!(bad[0]["message"], "not json at all");
    assert_eq!(bad[0]["offset"], 23);
    assert_eq!(bad[0]["dropped"]["component"], "in");
    assert_eq!(exit_counter(&log, "in", "undecodable"), Some(1));
    let checkpoint = fs::read_to_string(dir.path().join("data/in/checkpoints.json")).unwrap();
    assert!(
        checkpoint.contains("\"offset\":63") || checkpoint.contains("\"offset\": 63"),
        "{checkpoint}"
    );
}

/// A line without end on stdin is sent truncated at `max_line_bytes` as soon as it
/// is that long, and the rest of it is skipped: pipe's memory stays bounded while the
/// line goes on (400 MB here), and the lines after it arrive whole.
#[test]
fn an_endless_line_on_stdin_is_truncated_without_growing_memory() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, log) = pipe_on_stdin(
        dir.path(),
        &format!(
            "[sources.in]\ntype = \"stdin\"\nmax_line_bytes = 1000\n\
             [sinks.out]\ntype = \"file\"\ninputs = [\"in\"]\npath = \"{dir}/out.ndjson\"\n",
            dir = dir.path().display()
        ),
    );
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"first\n").unwrap();
    let block = vec![b'x'; 1 << 20];
    for _ in 0..400 {
        stdin.write_all(&block).unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let status = fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    stdin.write_all(b"yyy\nlast\n").unwrap();
    drop(stdin);
    assert_eq!(wait_exit(&mut child, 30), 0, "{}", tail(&log, 20));
    assert!(
        peak_kib < 200 * 1024,
        "peak RSS {peak_kib} KiB while a 400 MB line was read"
    );
    let out = json_lines(&dir.path().join("out.ndjson"));
    let messages: Vec<&str> = out.iter().map(|e| e["message"].as_str().unwrap()).collect();
    assert_eq!(
        messages.len(),
        3,
        "{:?}",
        messages.iter().map(|m| m.len()).collect::<Vec<_>>()
    );
    assert_eq!(messages[0], "first");
    assert_eq!(messages[1], "x".repeat(1000), "the long line, truncated");
    assert_eq!(messages[2], "last", "the tail of the long line (`yyy`) is skipped");
    assert_eq!(exit_counter(&log, "in", "line_too_long"), Some(1), "{}", tail(&log, 5));
}

/// Starts pipe on `topology` (its `data_dir` under `dir`) with a pipe for stdin;
/// returns the process and its log.
fn pipe_on_stdin(dir: &std::path::Path, topology: &str) -> (std::process::Child, std::path::PathBuf) {
    use std::process::{Command, Stdio};
    let path = dir.join("t.toml");
    fs::write(
        &path,
        format!("data_dir = \"{}\"\n{topology}", dir.join("data").display()),
    )
    .unwrap();
    let log = dir.join("pipe.log");
    let child = Command::new(pipe_bin())
        .arg("-t")
        .arg(&path)
        .stdin(Stdio::piped())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    (child, log)
}
