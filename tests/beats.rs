//! The `beats` source through the real binary, against Lumberjack clients nobody here
//! wrote:
//! - `pylogbeat` (PyPI 2.1.0, Lumberjack v2: a window frame, the window's JSON frames
//!   in one zlib frame, then it waits for the ACK of the window's last sequence
//!   number), driven by `tests/beats/pylogbeat_send.py`, which like a Beat keeps each
//!   window until it is ACKed and sends it again on a new connection when a send
//!   fails;
//! - `lumberjack-client` (npm 1.0.3, Lumberjack v2 with zlib compression; it reads no
//!   ACKs, its driver `tests/beats/lumberjack_client_send.js` watches them);
//! - `lumberjack-protocol` (npm 1.0.7, logstash-forwarder's v1 over TLS: `D` frames of
//!   key/value pairs, and it parses the server's v1 ACKs), driven by
//!   `tests/beats/lumberjack_protocol_send.js`.
//!
//! `tests/run.sh` installs pylogbeat into the test venv (`PIPE_TEST_VENV`) and the npm
//! packages, pinned by `tests/beats/package-lock.json`, into `PIPE_TEST_NODE_BEATS`
//! (`~/.cache/pipe/node-beats`). The malformed frames are written by hand here, as no
//! client sends them. Loopback only.

mod common;

use common::*;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The test venv's python, with pylogbeat.
fn python() -> PathBuf {
    std::env::var_os("PIPE_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/pipe/test-venv"))
        .join("bin/python")
}

/// Where `tests/run.sh` installed the npm clients.
fn node_modules() -> PathBuf {
    std::env::var_os("PIPE_TEST_NODE_BEATS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/pipe/node-beats"))
        .join("node_modules")
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/beats").join(name)
}

/// `pylogbeat_send.py` with `args`.
fn pylogbeat(args: &[String]) -> Command {
    let mut cmd = Command::new(python());
    cmd.arg(script("pylogbeat_send.py")).args(args);
    cmd
}

/// A node script of `tests/beats` with `args`.
fn node(name: &str, args: &[String]) -> Output {
    Command::new("node")
        .arg(script(name))
        .args(args)
        .env("NODE_PATH", node_modules())
        .output()
        .expect("node (run tests/run.sh)")
}

/// Runs `cmd`, asserting it succeeds; its standard output as JSON.
fn run_json(mut cmd: Command) -> serde_json::Value {
    let out = cmd.output().expect("the client (run tests/run.sh)");
    json_of(out)
}

fn json_of(out: Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "the client failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().unwrap_or_default()).expect("the client's summary line")
}

fn args(list: &[&dyn std::fmt::Display]) -> Vec<String> {
    list.iter().map(|a| a.to_string()).collect()
}

/// Writes a beats → file topology listening on `port` (`source` holds further
/// options and tables of the source) and starts pipe; returns once it listens.
fn start(dir: &Path, port: u16, source: &str) -> Pipe {
    start_with(dir, port, source, "out.log")
}

/// [`start`] with the file sink writing `dir/out/<path>` (a template).
fn start_with(dir: &Path, port: u16, source: &str, path: &str) -> Pipe {
    let topology = dir.join("t.toml");
    fs::write(
        &topology,
        format!(
            r#"data_dir = "{data}"
shutdown_timeout_secs = 20

[sinks.out]
type = "file"
inputs = ["beats"]
path = "{out}/{path}"

[sources.beats]
type = "beats"
address = "127.0.0.1:{port}"
{source}
"#,
            data = dir.join("data").display(),
            out = dir.join("out").display()
        ),
    )
    .unwrap();
    let log = dir.join("pipe.log");
    let before = log_lines_with(&log, "Beats source listening").len();
    let pipe = Pipe::start(&topology, &log);
    assert!(
        wait_for(30, || log_lines_with(&log, "Beats source listening").len() > before),
        "pipe did not start listening:\n{}",
        tail(&log, 30)
    );
    pipe
}

/// How often each event number arrived in the file sink's output.
fn arrived(dir: &Path) -> (std::collections::HashMap<u64, u32>, usize) {
    let (msgs, torn) = messages(&dir.join("out"));
    (tally(&msgs), torn)
}

/// 100,000 events from pylogbeat in windows of 2,500 (each more than
/// `max_batch_events`, so it goes downstream as two batches and gets a partial ACK
/// first): every event in the file exactly once, its fields as the client sent them,
/// and every window ACKed (the client returns only then).
#[test]
fn pylogbeat_sends_100000_events_in_windows_and_every_one_arrives_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let pipe = start(dir.path(), port, "");
    let started = Instant::now();
    let summary = run_json(pylogbeat(&args(&[
        &"--port",
        &port,
        &"--total",
        &100_000,
        &"--window",
        &2500,
    ])));
    let took = started.elapsed();
    assert_eq!(summary["resent_windows"], 0, "{summary}");
    assert_eq!(pipe.stop(30), 0);
    let (counts, torn) = arrived(dir.path());
    let (missing, dups) = missing_and_duplicates(&counts, 100_000);
    println!(
        "pylogbeat: 100000 events in {:.2}s, {} missing, {dups} duplicates",
        took.as_secs_f64(),
        missing.len()
    );
    assert!(missing.is_empty(), "missing: {:?}", ranges(&missing));
    assert_eq!((dups, torn), (0, 0));

    let first = fs::read_to_string(dir.path().join("out/out.log")).unwrap();
    let first: serde_json::Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    let n = first["n"].as_u64().unwrap();
    assert_eq!(
        first,
        serde_json::json!({
            "@timestamp": "2026-03-04T05:06:07.000Z",
            "@metadata": {"beat": "pylogbeat", "type": "_doc", "version": "2.1.0"},
            "message": format!("line-{n:07} {}", "x".repeat(60)),
            "host": {"name": "test-host"},
            "log": {"offset": n},
            "n": n,
        }),
        "the event is the JSON the client sent, nothing added"
    );
    let log = dir.path().join("pipe.log");
    assert_eq!(
        exit_counter(&log, "beats", "delivered"),
        Some(100_000),
        "{}",
        tail(&log, 5)
    );
}

/// The npm `lumberjack-client` (v2, zlib): 20 connections, each one compressed window
/// of 1,000 events, each ACKed with its last sequence number; all 20,000 arrive.
#[test]
fn npm_lumberjack_client_sends_compressed_v2_windows_and_gets_their_acks() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let pipe = start(dir.path(), port, "");
    let summary = json_of(node("lumberjack_client_send.js", &args(&[&port, &20, &1000])));
    assert_eq!(summary["last_ack"], 1000, "{summary}");
    assert!(summary["acks"].as_u64().unwrap() >= 20, "{summary}");
    assert_eq!(pipe.stop(30), 0);
    let (counts, _) = arrived(dir.path());
    let (missing, dups) = missing_and_duplicates(&counts, 20_000);
    assert!(missing.is_empty(), "missing: {:?}", ranges(&missing));
    assert_eq!(dups, 0);
    let line = fs::read_to_string(dir.path().join("out/out.log")).unwrap();
    let first: serde_json::Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
    assert_eq!(first["@metadata"]["beat"], "lumberjack-client");
    assert_eq!(first["host"]["hostname"], "node-host");
}

/// `kill -9` of pipe while pylogbeat streams 30,000 events in windows of 500: the
/// client sends every window that was not ACKed again once pipe is back on the same
/// port; nothing is lost (repeats allowed, counted and printed).
#[test]
fn kill_9_mid_stream_loses_nothing_as_the_client_resends_unacked_windows() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let total = 30_000;
    let pipe = start(dir.path(), port, "");
    let mut client = pylogbeat(&args(&[
        &"--port",
        &port,
        &"--total",
        &total,
        &"--window",
        &500,
        &"--pause",
        &0.01,
        &"--retry-secs",
        &60,
    ]))
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let out = dir.path().join("out");
    assert!(wait_for(30, || count_lines(&out) >= 6_000), "no progress");
    pipe.kill9();
    let at_kill = count_lines(&out);
    std::thread::sleep(Duration::from_millis(1500));
    let pipe = start(dir.path(), port, "");
    let deadline = Instant::now() + Duration::from_secs(60);
    while client.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the client did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut stdout = String::new();
    let mut stderr = String::new();
    client.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    client.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(client.wait().unwrap().success(), "{stdout}\n{stderr}");
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(pipe.stop(30), 0);
    let (counts, torn) = arrived(dir.path());
    let (missing, dups) = missing_and_duplicates(&counts, total);
    println!(
        "kill -9 after {at_kill} lines: {} missing, {dups} duplicates, {torn} torn lines, {} windows sent again",
        missing.len(),
        summary["resent_windows"]
    );
    assert!(missing.is_empty(), "missing: {:?}", ranges(&missing));
    assert!(summary["resent_windows"].as_u64().unwrap() >= 1, "{summary}");
}

/// Writes `bytes` on a new connection; true when pipe then closes it (and sent no
/// ACK) within a few seconds.
fn closed_after(port: u16, bytes: &[u8]) -> bool {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(bytes);
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => true,
        Ok(n) => panic!("an answer to a malformed frame: {:?}", &buf[..n]),
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

fn frame_u32(version: u8, kind: u8, n: u32) -> Vec<u8> {
    let mut f = vec![version, kind];
    f.extend_from_slice(&n.to_be_bytes());
    f
}

fn json_frame(seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = frame_u32(b'2', b'J', seq);
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn compressed_frame(inner: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(inner).unwrap();
    let z = z.finish().unwrap();
    let mut f = frame_u32(b'2', b'C', z.len() as u32);
    f.extend_from_slice(&z);
    f
}

/// Reads one ACK frame: its sequence number (keepalives skipped).
fn read_ack(s: &mut TcpStream) -> u32 {
    loop {
        let mut ack = [0u8; 6];
        s.read_exact(&mut ack).unwrap();
        assert_eq!(&ack[..2], b"2A");
        let seq = u32::from_be_bytes([ack[2], ack[3], ack[4], ack[5]]);
        if seq != 0 {
            return seq;
        }
    }
}

/// Garbage, a frame declaring more than `max_frame_bytes`, a broken zlib stream and a
/// zlib bomb (a 40 KB frame of 40 MB of zeros) each close their own connection,
/// counted by kind, while a connection opened before them goes on being served, and
/// pylogbeat's events still flow afterwards. A JSON frame that is not JSON is kept
/// as text.
#[test]
fn malformed_frames_close_their_connection_with_a_counted_error_and_others_flow() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let pipe = start(dir.path(), port, "max_frame_bytes = 65536");

    let mut good = TcpStream::connect(("127.0.0.1", port)).unwrap();
    good.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut window = frame_u32(b'2', b'W', 1);
    window.extend(json_frame(1, br#"{"message":"line-9000000 before"}"#));
    good.write_all(&window).unwrap();
    assert_eq!(read_ack(&mut good), 1);

    assert!(closed_after(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), "garbage");
    let mut oversized = frame_u32(b'2', b'W', 1);
    oversized.extend(frame_u32(b'2', b'J', 1));
    oversized.extend_from_slice(&1_000_000u32.to_be_bytes());
    assert!(closed_after(port, &oversized), "oversized frame");
    let mut bad_zlib = frame_u32(b'2', b'W', 1);
    bad_zlib.extend(frame_u32(b'2', b'C', 8));
    bad_zlib.extend_from_slice(b"notzlib!");
    assert!(closed_after(port, &bad_zlib), "bad zlib");
    let mut bomb = frame_u32(b'2', b'W', 1);
    let zeros = compressed_frame(&vec![0u8; 40 << 20]);
    assert!(zeros.len() < 65536, "the bomb itself is a small frame: {}", zeros.len());
    bomb.extend(zeros);
    assert!(closed_after(port, &bomb), "zlib bomb");

    // The connection opened before still works: a window of a JSON frame that is not
    // JSON and a good one, ACKed with its last sequence number.
    let mut window = frame_u32(b'2', b'W', 2);
    window.extend(json_frame(2, b"line-9000001 {not json"));
    window.extend(json_frame(3, br#"{"message":"line-9000002 after"}"#));
    good.write_all(&window).unwrap();
    assert_eq!(read_ack(&mut good), 3);
    drop(good);
    let summary = run_json(pylogbeat(&args(&[
        &"--port",
        &port,
        &"--total",
        &2000,
        &"--window",
        &200,
    ])));
    assert_eq!(summary["resent_windows"], 0);

    assert_eq!(pipe.stop(30), 0);
    let log = dir.path().join("pipe.log");
    let counter = |name| exit_counter(&log, "beats", name);
    assert_eq!(counter("malformed_frame"), Some(2), "{}", tail(&log, 10));
    assert_eq!(counter("frame_too_large"), Some(2));
    assert_eq!(counter("invalid_json"), Some(1));
    let (counts, _) = arrived(dir.path());
    let (missing, dups) = missing_and_duplicates(&counts, 2000);
    assert!(missing.is_empty() && dups == 0, "{:?} {dups}", ranges(&missing));
    for n in [9_000_000, 9_000_001, 9_000_002] {
        assert_eq!(counts.get(&n), Some(&1), "event {n}");
    }
}

/// Makes a CA, a client certificate it signed, and a self-signed "rogue" client
/// certificate, with the openssl command: (ca, client crt, client key, rogue crt,
/// rogue key).
fn client_certs(dir: &Path) -> [PathBuf; 5] {
    let p = |name: &str| dir.join(name);
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ext = p("client.ext");
    fs::write(&ext, "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n").unwrap();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=pipe-test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=beats-client",
        "-keyout",
        "client.key",
        "-out",
        "client.csr",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "client.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-out",
        "client.pem",
        "-extfile",
        "client.ext",
    ]);
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=rogue",
        "-keyout",
        "rogue.key",
        "-out",
        "rogue.pem",
        "-addext",
        "basicConstraints=critical,CA:FALSE",
        "-addext",
        "extendedKeyUsage=clientAuth",
    ]);
    [
        p("ca.pem"),
        p("client.pem"),
        p("client.key"),
        p("rogue.pem"),
        p("rogue.key"),
    ]
}

/// TLS with client certificates required: pylogbeat (v2) and lumberjack-protocol
/// (v1, which checks the ACKs are v1 frames) with a certificate the CA signed are
/// served; pylogbeat without a certificate, or with one the CA did not sign, is
/// refused at the handshake (counted) and delivers nothing.
#[test]
fn tls_with_required_client_certificates_serves_signed_clients_and_refuses_others() {
    let dir = tempfile::tempdir().unwrap();
    let (crt, key) = self_signed(dir.path());
    let [ca, client_crt, client_key, rogue_crt, rogue_key] = client_certs(dir.path());
    let port = free_port();
    let tls = format!(
        "[sources.beats.tls]\ncrt_file = \"{}\"\nkey_file = \"{}\"\nclient_ca_file = \"{}\"",
        crt.display(),
        key.display(),
        ca.display()
    );
    let pipe = start(dir.path(), port, &tls);
    let path = |p: &PathBuf| p.display().to_string();
    let tls_args = |cert: &PathBuf, key: &PathBuf, start: u64| {
        let mut a = args(&[
            &"--port",
            &port,
            &"--total",
            &1000,
            &"--window",
            &250,
            &"--start",
            &start,
        ]);
        a.extend([
            "--ca".into(),
            path(&crt),
            "--cert".into(),
            path(cert),
            "--key".into(),
            path(key),
        ]);
        a
    };
    let t = Instant::now();
    let summary = run_json(pylogbeat(&tls_args(&client_crt, &client_key, 0)));
    assert_eq!(summary["sent"], 1000);
    println!("signed v2 client: {:?}", t.elapsed());

    let mut no_cert = args(&[&"--port", &port, &"--total", &10, &"--start", &5000]);
    no_cert.extend(["--ca".into(), path(&crt)]);
    let refused = pylogbeat(&no_cert).output().unwrap();
    assert!(!refused.status.success(), "served without a client certificate");
    let rogue = pylogbeat(&tls_args(&rogue_crt, &rogue_key, 6000)).output().unwrap();
    assert!(!rogue.status.success(), "served with a certificate the CA did not sign");
    println!("refused clients: {:?}", t.elapsed());

    let v1 = json_of(node(
        "lumberjack_protocol_send.js",
        &args(&[&port, &1000, &100, &path(&crt), &path(&client_crt), &path(&client_key)]),
    ));
    assert_eq!(v1["last_ack"], 1000, "{v1}");
    println!("v1 client: {:?}", t.elapsed());

    assert_eq!(pipe.stop(30), 0);
    let log = dir.path().join("pipe.log");
    assert!(
        exit_counter(&log, "beats", "accept_failed").unwrap_or(0) >= 2,
        "{}",
        tail(&log, 10)
    );
    let lines = fs::read_to_string(dir.path().join("out/out.log")).unwrap();
    let events: Vec<serde_json::Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let text = |e: &serde_json::Value, key: &str| e[key].as_str().map(str::to_string);
    let v2: Vec<String> = events.iter().filter_map(|e| text(e, "message")).collect();
    let (missing, dups) = missing_and_duplicates(&tally(&v2), 1000);
    assert!(missing.is_empty() && dups == 0, "{:?}", ranges(&missing));
    assert_eq!(v2.len(), 1000, "nothing from the refused clients");
    // v1 events are the client's key/value pairs, as strings.
    let v1: Vec<&serde_json::Value> = events.iter().filter(|e| e.get("line").is_some()).collect();
    assert_eq!(v1.len(), 1000);
    assert_eq!(v1[0]["host"], "v1-host");
    assert!(v1[0]["n"].is_string());
}

/// A sink refusing every event for good (its path template names a field the events
/// lack, and nothing reads its `dropped` output): each window is still ACKed, as the
/// `http` source answers 400 — sending it again would fail the same way — so the
/// client moves on; the batches count as rejected.
#[test]
fn events_a_sink_rejects_for_good_are_acked_and_counted_not_resent() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let pipe = start_with(dir.path(), port, "", "{{ no_such_field }}.log");
    let summary = run_json(pylogbeat(&args(&[
        &"--port",
        &port,
        &"--total",
        &1000,
        &"--window",
        &100,
    ])));
    assert_eq!(summary["resent_windows"], 0, "{summary}");
    assert_eq!(pipe.stop(30), 0);
    let log = dir.path().join("pipe.log");
    assert_eq!(exit_counter(&log, "beats", "rejected"), Some(10), "{}", tail(&log, 10));
    let line = log_lines_with(&log, "Component counters at exit. component=beats ")
        .pop()
        .unwrap();
    assert!(line.contains(r#""rejected": 1000"#), "{line}");
    assert_eq!(count_lines(&dir.path().join("out")), 0);
}
