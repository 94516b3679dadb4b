//! The `http` source under hostile clients, through the real binary: a gzip body of
//! millions of tiny events (413, bounded memory), hundreds of slow clients over HTTP
//! and HTTPS (dropped at the header and body timeouts while a normal client is
//! served), the in-flight request and byte limits (503 + `Retry-After`), the
//! connection limit, and the exact `max_events_per_request` boundary. Loopback only.

mod common;

use common::*;
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Starts pipe with an http source (`source` holds extra source options, `tail` any
/// further tables) writing JSON lines to `dir/out/out.log`. Returns the port too.
fn start(dir: &Path, source: &str, tail: &str) -> (Pipe, String, u16) {
    let port = free_port();
    let topology = dir.join("t.toml");
    fs::write(
        &topology,
        format!(
            r#"data_dir = "{data}"
[sources.web]
type = "http"
address = "127.0.0.1:{port}"
{source}
{tail}
[sinks.out]
type = "file"
inputs = ["web"]
path = "{out}/out.log"
"#,
            data = dir.join("data").display(),
            out = dir.join("out").display()
        ),
    )
    .unwrap();
    let log = dir.join("pipe.log");
    let pipe = Pipe::start(&topology, &log);
    let scheme = if tail.contains("[sources.web.tls]") {
        "https"
    } else {
        "http"
    };
    let url = format!("{scheme}://127.0.0.1:{port}");
    let ca = dir.join("crt.pem");
    let args: Vec<&str> = if scheme == "https" {
        vec!["--cacert", ca.to_str().unwrap()]
    } else {
        vec![]
    };
    assert!(
        wait_for(30, || curl(&url, "/health", &args, None, 20).0 == 200),
        "{}",
        tail_of(&log)
    );
    (pipe, url, port)
}

fn tail_of(log: &Path) -> String {
    tail(log, 20)
}

/// POSTs (or GETs when `body` is None) with curl; returns the status and the whole
/// reply (headers and body).
fn curl(url: &str, path: &str, args: &[&str], body: Option<&[u8]>, max_secs: u64) -> (u16, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-i", "--max-time", &max_secs.to_string()]).args(args);
    if let Some(body) = body {
        let file = dir.path().join("body");
        fs::write(&file, body).unwrap();
        cmd.arg("--data-binary").arg(format!("@{}", file.display()));
    }
    let out = cmd.arg(format!("{url}{path}")).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    // With `Expect: 100-continue` the first status line is the interim 100.
    let status = text
        .split("\r\n")
        .filter(|l| l.starts_with("HTTP/"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u16>().ok())
        .filter(|s| *s != 100)
        .last()
        .unwrap_or(0);
    (status, text)
}

fn out_events(dir: &Path) -> Vec<serde_json::Value> {
    let text = fs::read_to_string(dir.join("out/out.log")).unwrap_or_default();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn exit_counters(dir: &Path) -> String {
    log_lines_with(&dir.join("pipe.log"), "Component counters at exit. component=web").join("")
}

/// The peak resident memory of process `pid`, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

#[test]
fn a_small_gzip_body_of_millions_of_events_gets_413_and_memory_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    // Both bodies decompress to 9 MB, within the default max_body_bytes (10 MiB), so
    // the event limit (default 100000) is what refuses them.
    let (pipe, url, _) = start(dir.path(), "", "");
    let events = 3_000_000;
    let mut array = Vec::with_capacity(events * 3 + 1);
    array.push(b'[');
    for i in 0..events {
        array.extend_from_slice(if i + 1 < events { b"{}," } else { b"{}]" });
    }
    let ndjson = b"{}\n".repeat(events);
    for (body, content_type) in [(array, "application/json"), (ndjson, "application/x-ndjson")] {
        assert!(body.len() < 10 * 1024 * 1024);
        let gz = gzip(&body);
        assert!(gz.len() < 20_000, "a ~10 KB request: {} bytes", gz.len());
        let ct = format!("Content-Type: {content_type}");
        let (status, reply) = curl(
            &url,
            "/bomb",
            &["-H", "Content-Encoding: gzip", "-H", &ct],
            Some(&gz),
            60,
        );
        assert_eq!(status, 413, "{content_type}: {reply}");
        assert!(reply.contains("max_events_per_request (100000)"), "{reply}");
    }
    let peak = peak_rss_kib(pipe.child.id());
    eprintln!("pipe peak RSS after the two bombs: {} MiB", peak / 1024);
    assert!(peak < 150 * 1024, "peak RSS {peak} KiB");
    let json = ["-H", "Content-Type: application/json"];
    assert_eq!(curl(&url, "/", &json, Some(br#"{"n":1}"#), 20).0, 200);
    assert_eq!(pipe.stop(30), 0);
    assert_eq!(out_events(dir.path()).len(), 1, "nothing of a refused request arrives");
    assert!(exit_counters(dir.path()).contains("too_many_events"));
}

/// A raw client that sends its request one byte per tick and notes when the server
/// closed the connection, and what the server said.
struct Slow {
    stream: TcpStream,
    pending: Vec<u8>,
    closed: Option<Duration>,
    reply: Vec<u8>,
}

impl Slow {
    fn connect(port: u16, first: &[u8], rest: &[u8]) -> Slow {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.write_all(first).unwrap();
        stream.set_nonblocking(true).unwrap();
        Slow {
            stream,
            pending: rest.to_vec(),
            closed: None,
            reply: Vec::new(),
        }
    }

    /// Reads what is there; notes the close (EOF or reset).
    fn poll(&mut self, since: Instant) {
        if self.closed.is_some() {
            return;
        }
        let mut buf = [0u8; 1024];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => break self.closed = Some(since.elapsed()),
                Ok(n) => self.reply.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => break self.closed = Some(since.elapsed()),
            }
        }
    }

    /// Sends the next byte.
    fn dribble(&mut self) {
        if self.closed.is_none() && !self.pending.is_empty() {
            let b = self.pending.remove(0);
            let _ = self.stream.write(&[b]);
        }
    }
}

/// Drives `clients` (one byte per second each) until every one is closed or `secs`
/// pass, calling `meanwhile` once after a second.
fn drive(clients: &mut [Slow], since: Instant, secs: u64, mut meanwhile: impl FnMut()) {
    let mut last_dribble = Instant::now();
    let mut called = false;
    while since.elapsed() < Duration::from_secs(secs) {
        for c in clients.iter_mut() {
            c.poll(since);
        }
        if clients.iter().all(|c| c.closed.is_some()) {
            break;
        }
        if last_dribble.elapsed() >= Duration::from_secs(1) {
            last_dribble = Instant::now();
            for c in clients.iter_mut() {
                c.dribble();
            }
            if !called {
                called = true;
                meanwhile();
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn slow_clients_are_dropped_at_the_timeouts_while_a_normal_client_is_served() {
    // 500 clients hold 500 sockets here and 500 in pipe: far below this machine's
    // file-descriptor limit (the test asserts it rather than raising it).
    let limit = Command::new("sh").args(["-c", "ulimit -n"]).output().unwrap();
    let limit: u64 = String::from_utf8_lossy(&limit.stdout)
        .trim()
        .parse()
        .unwrap_or(u64::MAX);
    assert!(
        limit >= 1100,
        "ulimit -n is {limit}; this test needs about 1100 descriptors"
    );

    let dir = tempfile::tempdir().unwrap();
    let (pipe, url, port) = start(dir.path(), "header_timeout_secs = 2\nbody_timeout_secs = 2", "");
    let since = Instant::now();
    let mut clients: Vec<Slow> = Vec::new();
    // 300 send a request head one byte per second, never finishing it.
    for _ in 0..300 {
        clients.push(Slow::connect(
            port,
            b"P",
            b"OST /slow HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
        ));
    }
    // 200 send their head at once, then their body one byte per second.
    for _ in 0..200 {
        clients.push(Slow::connect(
            port,
            b"POST /slow HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n",
            &[b'x'; 100],
        ));
    }
    let mut served = (0, String::new());
    let (connected, timeout) = (since.elapsed(), Duration::from_secs(2));
    drive(&mut clients, since, 20, || {
        served = curl(
            &url,
            "/normal",
            &["-H", "Content-Type: text/plain"],
            Some(b"normal one\n"),
            10,
        );
    });
    assert_eq!(served.0, 200, "a normal client is served meanwhile: {}", served.1);
    for (i, c) in clients.iter().enumerate() {
        let closed = c.closed.unwrap_or_else(|| panic!("client {i} still open after 20 s"));
        // Closed at the timeout: not before it, and well within its margin.
        assert!(
            closed + Duration::from_millis(200) >= timeout,
            "client {i} closed after {closed:?}"
        );
        assert!(
            closed <= connected + timeout + Duration::from_secs(8),
            "client {i} closed after {closed:?}"
        );
        if i >= 300 {
            let reply = String::from_utf8_lossy(&c.reply);
            assert!(reply.starts_with("HTTP/1.1 408"), "slow body {i}: {reply}");
        }
    }
    assert_eq!(pipe.stop(30), 0);
    let events = out_events(dir.path());
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["message"], "normal one");
    let counters = exit_counters(dir.path());
    assert!(
        counters.contains("header_timeout") && counters.contains("body_timeout"),
        "{counters}"
    );
}

#[test]
fn https_clients_slow_in_the_handshake_or_the_head_are_dropped_at_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let (crt, key) = self_signed(dir.path());
    let tls = format!(
        "[sources.web.tls]\ncrt_file = \"{}\"\nkey_file = \"{}\"\n",
        crt.display(),
        key.display()
    );
    let (pipe, url, port) = start(dir.path(), "header_timeout_secs = 2", &tls);
    let since = Instant::now();
    // Half a TLS record header, then nothing: stuck in the handshake.
    let mut raw = vec![Slow::connect(port, &[0x16, 0x03], &[0x01; 30])];
    // A whole handshake, then a request line and half a header.
    let mut s_client = Command::new("openssl")
        .args(["s_client", "-quiet", "-connect", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the openssl command");
    let mut stdin = s_client.stdin.take().unwrap();
    stdin.write_all(b"POST / HTTP/1.1\r\nHost: local").unwrap();
    stdin.flush().unwrap();
    let mut served = 0;
    let ca = ["--cacert", crt.to_str().unwrap(), "-H", "Content-Type: text/plain"];
    drive(&mut raw, since, 20, || {
        served = curl(&url, "/", &ca, Some(b"over tls\n"), 10).0;
    });
    assert_eq!(served, 200, "a normal HTTPS client is served meanwhile");
    let closed = raw[0].closed.expect("the half-handshake client is closed");
    // Within header_timeout_secs (2) and a margin, well before rustls' own 10 s.
    assert!(closed <= Duration::from_secs(8), "closed after {closed:?}");
    let deadline = Instant::now() + Duration::from_secs(8);
    let exited = loop {
        if let Some(status) = s_client.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if exited.is_none() {
        let _ = s_client.kill();
    }
    assert!(
        exited.is_some(),
        "the TLS client with a half-sent head was not disconnected"
    );
    drop(stdin);
    assert_eq!(pipe.stop(30), 0);
    assert_eq!(out_events(dir.path()).len(), 1);
    assert!(exit_counters(dir.path()).contains("header_timeout"));
}

/// Sends `body` in the background and returns its thread (status, reply).
fn background(url: &str, body: Vec<u8>) -> std::thread::JoinHandle<(u16, String)> {
    let url = url.to_string();
    std::thread::spawn(move || curl(&url, "/", &["-H", "Content-Type: text/plain"], Some(&body), 30))
}

/// Fault test: the sink cannot write (a plain file stands where its directory should
/// be), so requests stay in flight until their acknowledgement times out.
#[test]
fn requests_past_the_in_flight_limits_get_503_with_retry_after() {
    for (options, hold, probe, says) in [
        (
            "max_in_flight_requests = 2",
            vec![b"held a\n".to_vec(), b"held b\n".to_vec()],
            b"probe\n".to_vec(),
            "max_in_flight_requests",
        ),
        (
            "max_in_flight_bytes = 1000\nmax_body_bytes = 1000",
            vec![b"x\n".repeat(400)],
            b"y\n".repeat(150),
            "max_in_flight_bytes",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("out"), "in the way").unwrap();
        let (pipe, url, _) = start(
            dir.path(),
            &format!("ack_timeout_secs = 20\nbackpressure_timeout_ms = 20000\n{options}"),
            "",
        );
        let held: Vec<_> = hold.into_iter().map(|b| background(&url, b)).collect();
        // Let the held requests arrive first (a probe that came first would be held
        // itself and the refusal would only come later).
        std::thread::sleep(Duration::from_secs(1));
        let mut refused = String::new();
        let text = ["-H", "Content-Type: text/plain"];
        assert!(
            wait_for(15, || {
                let (status, reply) = curl(&url, "/", &text, Some(&probe), 3);
                refused = reply;
                status == 503 && refused.contains(says)
            }),
            "{options}: {refused}"
        );
        assert!(refused.to_ascii_lowercase().contains("retry-after: 1"), "{refused}");
        pipe.kill9();
        for h in held {
            let _ = h.join();
        }
    }
}

#[test]
fn connections_past_max_connections_wait_in_the_backlog_until_one_closes() {
    let dir = tempfile::tempdir().unwrap();
    let (pipe, url, port) = start(dir.path(), "max_connections = 2\nheader_timeout_secs = 2", "");
    // The health probe's connection may still be closing: the limit is reached once
    // the two silent clients hold both slots.
    std::thread::sleep(Duration::from_millis(500));
    let silent: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // This one waits in the backlog until the header timeout frees a slot.
    let (status, reply) = curl(
        &url,
        "/",
        &["-H", "Content-Type: text/plain"],
        Some(b"after the wait\n"),
        20,
    );
    assert_eq!(status, 200, "{reply}");
    drop(silent);
    assert_eq!(pipe.stop(30), 0);
    assert_eq!(out_events(dir.path()).len(), 1);
    let counters = exit_counters(dir.path());
    assert!(
        counters.contains("connection_limit") && counters.contains("header_timeout"),
        "{counters}"
    );
}

#[test]
fn max_events_per_request_is_an_exact_boundary_and_big_requests_are_acknowledged_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (pipe, url, _) = start(dir.path(), "max_events_per_request = 3\nmax_batch_events = 2", "");
    let json = ["-H", "Content-Type: application/json"];
    assert_eq!(curl(&url, "/", &json, Some(br#"[{"n":1},{"n":2},{"n":3}]"#), 20).0, 200);
    let (status, reply) = curl(&url, "/", &json, Some(br#"[{"n":4},{"n":5},{"n":6},{"n":7}]"#), 20);
    assert_eq!(status, 413, "{reply}");
    assert!(reply.contains("max_events_per_request (3)"), "{reply}");
    let rest = ["-H", "Content-Type: application/vnd.kafka.json.v2+json"];
    let ok = br#"{"records":[{"value":{"n":8}},{"value":{"n":9}},{"value":{"n":10}}]}"#;
    assert_eq!(curl(&url, "/topics/t", &rest, Some(ok), 20).0, 200);
    let over = br#"{"records":[{"value":{"n":11}},{"value":{"n":12}},{"value":{"n":13}},{"value":{"n":14}}]}"#;
    assert_eq!(curl(&url, "/topics/t", &rest, Some(over), 20).0, 413);
    // Three events go as two batches (2 + 1); the 200 covers both.
    let events = out_events(dir.path());
    assert_eq!(pipe.stop(30), 0);
    let mut ns: Vec<i64> = events.iter().filter_map(|e| e["n"].as_i64()).collect();
    ns.sort();
    assert_eq!(ns, vec![1, 2, 3, 8, 9, 10]);
    let counters = exit_counters(dir.path());
    assert!(counters.contains(r#""too_many_events": 2"#), "{counters}");
}
