//! bqemulator for the BigQuery tests: a real server of BigQuery's REST API and of
//! the Storage Write API over gRPC (DuckDB inside), installed into the test venv by
//! `tests/run.sh` (`PIPE_TEST_VENV`) and started here on free loopback ports.
//!
//! [`Emulator::start`] waits until `/readyz` answers *and* the gRPC port takes a
//! connection (its gRPC server comes up a few ms after REST). Tables are made and
//! read through REST with `curl`; [`Emulator::query`] checks `errors` in every answer,
//! because the emulator answers 200 to bad SQL. `--persistent --data-dir` keeps the
//! rows across [`Emulator::kill`] / [`Emulator::restart`] on the same ports. What it
//! cannot show (row errors, transient codes, REQUIRED checks, tokens) is in
//! `bigquery_fake.rs`.
#![allow(dead_code)]

use crate::common::{free_port, wait_for};
use serde_json::{Value as Json, json};
use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The project every test uses.
pub const PROJECT: &str = "test-proj";
/// DuckDB's version in the venv (`tests/run.sh` pins it); names the extension folder.
const DUCKDB_VERSION: &str = "v1.5.5";

/// The test venv (see `tests/run.sh`).
pub fn venv() -> PathBuf {
    std::env::var_os("PIPE_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/pipe/test-venv"))
}

/// A running bqemulator, killed on drop.
pub struct Emulator {
    child: Option<Child>,
    pub rest_port: u16,
    pub grpc_port: u16,
    /// Its HOME, log and (when persistent) data directory live here.
    dir: PathBuf,
    persistent: bool,
}

impl Emulator {
    /// An emulator keeping its tables in memory (gone when it stops).
    pub fn start(dir: &Path) -> Emulator {
        Self::launch(dir, false)
    }

    /// An emulator keeping its tables in `dir/data`, so they survive a kill and
    /// [`Emulator::restart`].
    pub fn start_persistent(dir: &Path) -> Emulator {
        Self::launch(dir, true)
    }

    fn launch(dir: &Path, persistent: bool) -> Emulator {
        let dir = dir.join("bqemulator");
        let bin = venv().join("bin/bqemulator");
        assert!(
            bin.exists(),
            "{} is missing: run tests/run.sh, which installs it",
            bin.display()
        );
        // The spatial extension from PyPI, where DuckDB looks for it, so that the
        // emulator does not try to download it.
        let ext_dir = dir.join(format!("home/.duckdb/extensions/{DUCKDB_VERSION}/linux_amd64"));
        fs::create_dir_all(&ext_dir).unwrap();
        fs::create_dir_all(dir.join("gcs")).unwrap();
        let link = ext_dir.join("spatial.duckdb_extension");
        if !link.exists() {
            let site = fs::read_dir(venv().join("lib"))
                .unwrap()
                .flatten()
                .map(|e| e.path().join("site-packages"))
                .find(|p| p.is_dir())
                .expect("the venv's site-packages");
            let ext = site.join(format!(
                "duckdb_extension_spatial/extensions/{DUCKDB_VERSION}/spatial.duckdb_extension"
            ));
            assert!(ext.exists(), "{} is missing: run tests/run.sh", ext.display());
            std::os::unix::fs::symlink(&ext, &link).unwrap();
        }
        let mut e = Emulator {
            child: None,
            rest_port: free_port(),
            grpc_port: free_port(),
            dir,
            persistent,
        };
        e.spawn();
        e
    }

    /// Starts the process on the chosen ports and waits until both answer.
    fn spawn(&mut self) {
        assert!(self.child.is_none(), "the emulator is running");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("emulator.log"))
            .unwrap();
        let mut cmd = Command::new(venv().join("bin/bqemulator"));
        cmd.arg("start")
            .args(["--rest-host", "127.0.0.1", "--rest-port", &self.rest_port.to_string()])
            .args(["--grpc-host", "127.0.0.1", "--grpc-port", &self.grpc_port.to_string()])
            .args(["--project", PROJECT, "--log-level", "warning"])
            .env("HOME", self.dir.join("home"))
            .env("BQEMU_GCS_LOCAL_ROOT", self.dir.join("gcs"))
            // Skips the download of the Avro extension (only Avro loads need it).
            .env("BQEMU_ENABLE_FORMAT_EXTENSIONS", "false")
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        if self.persistent {
            let data = self.dir.join("data");
            fs::create_dir_all(&data).unwrap();
            cmd.arg("--persistent").arg("--data-dir").arg(data);
        }
        let started = Instant::now();
        self.child = Some(cmd.spawn().expect("start bqemulator"));
        let ready = wait_for(60, || {
            if self
                .child
                .as_mut()
                .is_some_and(|c| c.try_wait().ok().flatten().is_some())
            {
                return true;
            }
            curl(&["-sf", &format!("{}/readyz", self.rest())]).is_some()
                && TcpStream::connect(("127.0.0.1", self.grpc_port)).is_ok()
        });
        let exited = self.child.as_mut().unwrap().try_wait().ok().flatten();
        assert!(
            ready && exited.is_none(),
            "bqemulator did not become ready (exit {exited:?}): {}",
            fs::read_to_string(self.dir.join("emulator.log")).unwrap_or_default()
        );
        eprintln!(
            "bqemulator ready on REST {} / gRPC {} in {:.1} s",
            self.rest_port,
            self.grpc_port,
            started.elapsed().as_secs_f64()
        );
    }

    /// The REST base URL (the sink's `endpoint`).
    pub fn rest(&self) -> String {
        format!("http://127.0.0.1:{}", self.rest_port)
    }

    /// The folder its load jobs read `gs://BUCKET/PATH` from (`BUCKET/PATH` under it).
    pub fn gcs_root(&self) -> PathBuf {
        self.dir.join("gcs")
    }

    /// The gRPC URL (the sink's `storage_endpoint`).
    pub fn grpc(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, and waits for the exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same ports (and data directory).
    pub fn restart(&mut self) {
        self.spawn();
    }

    fn api(&self, path: &str) -> String {
        format!("{}/bigquery/v2/projects/{PROJECT}/{path}", self.rest())
    }

    /// POSTs `body` to `path` (under the project); the answer, which must not be an
    /// error.
    pub fn post(&self, path: &str, body: &Json) -> Json {
        let out = curl(&[
            "-s",
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "--data-binary",
            &body.to_string(),
            &self.api(path),
        ])
        .unwrap_or_else(|| {
            panic!(
                "POST {path} {body}: the emulator did not answer; its log:\n{}",
                self.log()
            )
        });
        let answer: Json = serde_json::from_str(&out).unwrap_or_else(|e| panic!("POST {path}: {e}: {out}"));
        assert!(answer.get("error").is_none(), "POST {path}: {answer}");
        answer
    }

    pub fn create_dataset(&self, dataset: &str) {
        self.post(
            "datasets",
            &json!({"datasetReference": {"projectId": PROJECT, "datasetId": dataset}}),
        );
    }

    /// Creates `dataset.table` with `fields` (BigQuery JSON schema fields).
    pub fn create_table(&self, dataset: &str, table: &str, fields: Json) {
        self.post(
            &format!("datasets/{dataset}/tables"),
            &json!({
                "tableReference": {"projectId": PROJECT, "datasetId": dataset, "tableId": table},
                "schema": {"fields": fields},
            }),
        );
    }

    /// Runs `sql` (standard SQL); the rows, each a list of cells (`None` for NULL).
    ///
    /// A query that meets appends at the same moment sometimes fails inside the
    /// emulator ("… unsuccessful or closed pending query result": its DuckDB
    /// connection is shared by its REST and gRPC threads); such a query is asked
    /// again, a few times.
    pub fn query(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let body = json!({"query": sql, "useLegacySql": false, "timeoutMs": 60000});
        let mut attempts = 0;
        let answer = loop {
            attempts += 1;
            let answer = self.post("queries", &body);
            let errors = answer["errors"].as_array().cloned().unwrap_or_default();
            let concurrent = errors.iter().any(|e| {
                e["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("unsuccessful or closed pending query result"))
            });
            if concurrent && attempts < 10 {
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
            assert!(errors.is_empty(), "query {sql}: {}", answer["errors"]);
            break answer;
        };
        assert_eq!(answer["jobComplete"], true, "query {sql}: {answer}");
        let rows: Vec<Vec<Option<String>>> = answer["rows"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .map(|r| {
                        r["f"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|c| match &c["v"] {
                                Json::Null => None,
                                Json::String(s) => Some(s.clone()),
                                other => Some(other.to_string()),
                            })
                            .collect()
                    })
                    .collect()
            })
            .unwrap_or_default();
        let total: usize = answer["totalRows"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .unwrap_or(rows.len());
        assert_eq!(rows.len(), total, "query {sql}: the answer is paged");
        rows
    }

    /// One number from `sql` (its first cell).
    pub fn number(&self, sql: &str) -> i64 {
        let rows = self.query(sql);
        rows[0][0].as_deref().unwrap().parse().unwrap()
    }

    /// `COUNT(*)` of `dataset.table`.
    pub fn count(&self, table: &str) -> i64 {
        self.number(&format!("SELECT COUNT(*) FROM `{PROJECT}.{table}`"))
    }

    /// The emulator's log so far (for failure messages).
    pub fn log(&self) -> String {
        crate::common::tail(&self.dir.join("emulator.log"), 30)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `curl args…`; its standard output, `None` when it failed.
fn curl(args: &[&str]) -> Option<String> {
    let out = Command::new("curl")
        .args(["--max-time", "30"])
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}
