//! Helpers for integration tests that run the real `pipe` binary as a child process.
#![allow(dead_code)]

pub mod http;

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub fn pipe_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pipe"))
}

/// A running pipe process whose standard error is collected in a file.
pub struct Pipe {
    pub child: Child,
    pub stderr_path: PathBuf,
}

impl Pipe {
    /// Starts `pipe -t topology` with its logs going to `log`.
    pub fn start(topology: &Path, log: &Path) -> Pipe {
        Pipe::start_env(topology, log, &[])
    }

    /// Starts `pipe -t topology` with extra environment variables.
    pub fn start_env(topology: &Path, log: &Path, env: &[(&str, String)]) -> Pipe {
        Pipe::spawn(topology, log, env, &[])
    }

    /// Starts `pipe -t topology ARGS…`.
    pub fn start_args(topology: &Path, log: &Path, args: &[&str]) -> Pipe {
        Pipe::spawn(topology, log, &[], args)
    }

    fn spawn(topology: &Path, log: &Path, env: &[(&str, String)], args: &[&str]) -> Pipe {
        let stderr = fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        let child = Command::new(pipe_bin())
            .arg("-t")
            .arg(topology)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start pipe");
        Pipe {
            child,
            stderr_path: log.to_path_buf(),
        }
    }

    /// Sends `signal` (e.g. libc SIGTERM = "TERM", "KILL").
    pub fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status();
    }

    /// SIGTERM, then waits for the exit code (panics after `secs`).
    pub fn stop(mut self, secs: u64) -> i32 {
        self.signal("TERM");
        wait_exit(&mut self.child, secs)
    }

    /// True while the process runs.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_none()
    }

    /// SIGKILL and reap.
    pub fn kill9(mut self) {
        self.signal("KILL");
        let _ = self.child.wait();
    }
}

impl Drop for Pipe {
    /// A test that fails midway leaves no process behind.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for `child` to exit within `secs`; returns its code.
pub fn wait_exit(child: &mut Child, secs: u64) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("pipe did not exit within {secs}s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Counts newline characters in every file under `dir` (recursively).
pub fn count_lines(dir: &Path) -> usize {
    files_under(dir)
        .iter()
        .map(|f| {
            fs::read(f)
                .map(|b| b.iter().filter(|c| **c == b'\n').count())
                .unwrap_or(0)
        })
        .sum()
}

/// Every regular file under `dir`.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else { return out };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Waits until `check` is true or `secs` pass; returns whether it became true.
pub fn wait_for(secs: u64, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    check()
}

/// The `message` field of every JSON line in every file under `dir`, with the number
/// of lines that were not JSON (torn by a crash).
pub fn messages(dir: &Path) -> (Vec<String>, usize) {
    let mut out = Vec::new();
    let mut torn = 0;
    for f in files_under(dir) {
        let mut text = String::new();
        let file = fs::File::open(&f).unwrap();
        let reader: Box<dyn Read> = if f.extension().is_some_and(|e| e == "gz") {
            Box::new(flate2::read::MultiGzDecoder::new(file))
        } else {
            Box::new(file)
        };
        BufReader::new(reader).read_to_string(&mut text).unwrap();
        for line in text.lines() {
            match serde_json::from_str::<serde_json::Value>(line) {
                Ok(v) => out.push(v["message"].as_str().unwrap_or_default().to_string()),
                Err(_) => torn += 1,
            }
        }
    }
    (out, torn)
}

/// How often each numbered line (`line-0000042 ...`) arrived.
pub fn tally(messages: &[String]) -> HashMap<u64, u32> {
    let mut counts = HashMap::new();
    for m in messages {
        if let Some(n) = m
            .strip_prefix("line-")
            .and_then(|r| r.get(..7))
            .and_then(|d| d.parse::<u64>().ok())
        {
            *counts.entry(n).or_insert(0) += 1;
        }
    }
    counts
}

/// Missing and duplicated line numbers among `0..total`.
pub fn missing_and_duplicates(counts: &HashMap<u64, u32>, total: u64) -> (Vec<u64>, u64) {
    let missing: Vec<u64> = (0..total).filter(|n| !counts.contains_key(n)).collect();
    let dups = counts.values().map(|c| (*c as u64).saturating_sub(1)).sum();
    (missing, dups)
}

/// The numbered test line `n`, padded to about 100 bytes.
pub fn line(n: u64) -> String {
    format!("line-{n:07} {}\n", "x".repeat(88))
}

/// Lines of the log file that contain `needle`.
pub fn log_lines_with(log: &Path, needle: &str) -> Vec<String> {
    let Ok(f) = fs::File::open(log) else { return vec![] };
    BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .filter(|l| l.contains(needle))
        .collect()
}

/// The value of counter `name` (an error, a discard or another counter, as in
/// `"name": 3`) in the exit summary of `component`; `None` when it is not there.
pub fn exit_counter(log: &Path, component: &str, name: &str) -> Option<u64> {
    let line = log_lines_with(log, &format!("Component counters at exit. component={component} ")).pop()?;
    let key = format!("\"{name}\": ");
    let at = line.find(&key)? + key.len();
    let digits: String = line[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// A file-to-file topology: tails `include`, a small VRL remap, JSON lines out.
pub fn tail_topology(dir: &Path, include: &str, extra_source: &str) -> PathBuf {
    let text = format!(
        r#"
data_dir = "{data}"
shutdown_timeout_secs = 20

[sources.logs]
type = "file"
include = ["{include}"]
{extra_source}

[transforms.shape]
type = "remap"
inputs = ["logs"]
source = '''
.seen_by = "pipe"
'''

[sinks.out]
type = "file"
inputs = ["shape"]
path = "{out}/out.log"
"#,
        data = dir.join("data").display(),
        out = dir.join("out").display(),
    );
    let path = dir.join("topology.toml");
    fs::write(&path, text).unwrap();
    path
}

/// Waits until the log file says the topology started.
pub fn wait_started(log: &Path) {
    assert!(
        wait_for(30, || !log_lines_with(log, "Topology started").is_empty()),
        "pipe did not start: {}",
        fs::read_to_string(log).unwrap_or_default()
    );
}

/// The last `n` lines of a file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Consecutive numbers grouped as (first, last) ranges, at most 20.
pub fn ranges(numbers: &[u64]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &n in numbers {
        match out.last_mut() {
            Some((_, last)) if *last + 1 == n => *last = n,
            _ => out.push((n, n)),
        }
    }
    out.truncate(20);
    out
}

/// A self-signed certificate for `localhost` and `127.0.0.1`, made with the openssl
/// command: (certificate path, key path).
pub fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let (crt, key) = (dir.join("crt.pem"), dir.join("key.pem"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        // An end-entity certificate (rustls refuses a CA certificate used as one).
        .args([
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-addext",
            "extendedKeyUsage=serverAuth",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("the openssl command");
    assert!(status.success());
    (crt, key)
}

/// A TCP port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// librdkafka's mock cluster in a `pipe kafka-mock --topic SPEC` child; returns it and
/// its bootstrap address. Kill the child to stop it.
pub fn kafka_mock(topic: &str) -> (Child, String) {
    let mut mock = Command::new(pipe_bin())
        .args(["kafka-mock", "--topic", topic])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start pipe kafka-mock");
    let mut bootstrap = String::new();
    BufReader::new(mock.stdout.take().expect("piped stdout"))
        .read_line(&mut bootstrap)
        .expect("read the bootstrap address");
    (mock, bootstrap.trim().to_string())
}

/// The `kcat` command (an independent Kafka client; `.ci/run` installs it).
pub fn kcat() -> Command {
    let which = Command::new("kcat").arg("-V").output();
    assert!(
        which.is_ok_and(|o| o.status.success()),
        "kcat is needed (apt-get install kcat; .ci/run installs it)"
    );
    Command::new("kcat")
}

/// Produces `text`, one record per line, to `topic` with kcat.
pub fn kcat_produce(bootstrap: &str, topic: &str, text: &str) {
    use std::io::Write;
    let mut child = kcat()
        .args(["-P", "-b", bootstrap, "-t", topic])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
}

/// The JSON lines of `path` (none when it does not exist yet).
pub fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
