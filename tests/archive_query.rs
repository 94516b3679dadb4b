//! `pipe query` and `pipe archive ddl` against hostile input: SQL that would write or
//! read outside the archive, field names that break quoting, and every partition
//! layout the `object_store` sink writes, each checked against DuckDB
//! (`read_parquet(…, hive_partitioning = true)`) on the same files.

mod archive_helpers;
mod common;

use archive_helpers::*;
use std::fs;
use std::path::Path;

/// Writes `input` (JSON lines with `ts`) through the stdin topology into `archive`
/// with the given `partition` template.
fn archive_with(dir: &Path, archive: &Path, partition: &str, input: &str) {
    let sink = format!(
        "url = \"{}\"\npartition = \"{}\"\nmax_events = 700",
        archive.display(),
        partition.replace('"', "\\\"")
    );
    run_with_stdin(dir, &stdin_topology(dir, &sink), input, &[]);
}

/// `n` events over two days and three hours, with `service` among three values.
fn service_events(n: u64) -> String {
    let services = ["api", "web", "auth"];
    (0..n)
        .map(|i| {
            format!(
                "{{\"ts\":\"2026-11-{}T{:02}:{:02}:00Z\",\"seq\":{i},\"service\":\"{}\",\"latency_ms\":{}}}\n",
                25 + i % 2,
                (i / 2) % 3,
                i % 60,
                services[(i % 3) as usize],
                (i * 7) % 500
            )
        })
        .collect()
}

/// `pipe query` with CSV output: status, standard output lines without the header,
/// standard error.
fn try_query(archive: &Path, sql: &str) -> (bool, Vec<String>, String) {
    let out = pipe_cmd(&["query", "--format", "csv", "--archive", archive.to_str().unwrap(), sql]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    (
        out.status.success(),
        stdout.lines().skip(1).map(str::to_string).collect(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ddl(archive: &Path, dialect: &str) -> (bool, String, String) {
    let out = pipe_cmd(&[
        "archive",
        "ddl",
        "--archive",
        archive.to_str().unwrap(),
        "--dialect",
        dialect,
    ]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `pipe query` runs only queries: COPY, CREATE EXTERNAL TABLE, INSERT, SET and
/// friends are refused with a message, exit non-zero, and write or read nothing.
#[test]
fn query_is_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    archive_with(dir.path(), &archive, "dt=%Y-%m-%d", &service_events(200));
    let before = relative_files(&archive);
    let secret = dir.path().join("secret.csv");
    fs::write(&secret, "line\nTOP-SECRET-VALUE\n").unwrap();
    let copied = dir.path().join("copied.csv");
    let copied_parquet = dir.path().join("copied.parquet");
    let a = archive.display();

    let refused = [
        (
            format!("COPY (SELECT 1 AS x) TO '{}'", copied.display()),
            "`COPY` is refused",
        ),
        (
            format!("COPY logs TO '{}' STORED AS PARQUET", copied_parquet.display()),
            "`COPY` is refused",
        ),
        (
            format!("COPY (SELECT * FROM logs) TO '{a}/dt=2026-11-25/injected.parquet'"),
            "`COPY` is refused",
        ),
        (
            format!("EXPLAIN ANALYZE COPY (SELECT 1 AS x) TO '{}'", copied.display()),
            "`COPY` is refused",
        ),
        (
            format!(
                "CREATE EXTERNAL TABLE p (line TEXT) STORED AS CSV LOCATION '{}'",
                secret.display()
            ),
            "`CREATE EXTERNAL TABLE` is refused",
        ),
        (
            format!(
                "CREATE EXTERNAL TABLE p (line TEXT) STORED AS CSV LOCATION '{}'; SELECT * FROM p",
                secret.display()
            ),
            "expected exactly one statement, found 2",
        ),
        (
            "INSERT INTO logs SELECT * FROM logs".to_string(),
            "`INSERT INTO` is refused",
        ),
        (
            "SET datafusion.execution.batch_size = 1".to_string(),
            "`SET` is refused",
        ),
        (
            "CREATE TABLE t AS SELECT * FROM logs".to_string(),
            "`CREATE TABLE` is refused",
        ),
        ("SELECT * INTO t FROM logs".to_string(), "`SELECT … INTO` is refused"),
        ("DROP TABLE logs".to_string(), "`DROP TABLE` is refused"),
    ];
    for (sql, message) in &refused {
        let (ok, stdout, stderr) = try_query(&archive, sql);
        assert!(!ok, "{sql} ran: {stdout:?}");
        assert!(stderr.contains(message), "{sql}: {stderr}");
        assert!(
            stderr.contains("queries are read-only") || message.contains("statement"),
            "{stderr}"
        );
        assert!(!stdout.join("\n").contains("TOP-SECRET"), "{sql} read the file");
    }
    assert!(!copied.exists() && !copied_parquet.exists(), "COPY wrote a file");
    assert_eq!(relative_files(&archive), before, "the archive is untouched");

    // Refused before the --output file is even created.
    let out = dir.path().join("out.csv");
    let o = pipe_cmd(&[
        "query",
        "--archive",
        archive.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        &refused[0].0,
    ]);
    assert!(!o.status.success());
    assert!(!out.exists() && !copied.exists());

    // Queries, EXPLAIN and DESCRIBE still run.
    assert_eq!(try_query(&archive, "SELECT count(*) FROM logs").1, vec!["200"]);
    let (ok, _, stderr) = try_query(&archive, "EXPLAIN SELECT count(*) FROM logs WHERE dt = '2026-11-25'");
    assert!(ok, "{stderr}");
    let (ok, cols, stderr) = try_query(&archive, "DESCRIBE logs");
    assert!(
        ok && cols.iter().any(|c| c.starts_with("dt,Date32")),
        "{cols:?} {stderr}"
    );
}

/// Field names that break naive quoting: every dialect's DDL quotes them by its own
/// rule or refuses with a message; DuckDB reads Trino's quoting back to the same
/// names the Parquet files hold.
#[test]
fn ddl_quotes_hostile_field_names() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let input: String = (0..20)
        .map(|i| format!("{{\"ts\":\"2026-11-25T10:00:{i:02}Z\",\"a\\\"b`c\":{i},\"with space\":\"v{i}\"}}\n"))
        .collect();
    archive_with(dir.path(), &archive, "dt=%Y-%m-%d", &input);
    let names = python(&format!(
        "import pyarrow.parquet as pq, glob\n\
         print('\\n'.join(pq.read_schema(glob.glob('{}/**/*.parquet', recursive=True)[0]).names))\n",
        archive.display()
    ));
    let names: Vec<&str> = names.lines().collect();
    assert!(names.contains(&"a\"b`c") && names.contains(&"with space"), "{names:?}");

    let (ok, hive, err) = ddl(&archive, "hive");
    assert!(ok, "{err}");
    assert!(hive.contains("\n  `a\"b``c` BIGINT,"), "backtick doubled: {hive}");
    assert!(hive.contains("\n  `with space` STRING"), "{hive}");

    let (ok, trino, err) = ddl(&archive, "trino");
    assert!(ok, "{err}");
    assert!(
        trino.contains("\n  \"a\"\"b`c\" bigint,"),
        "double quote doubled: {trino}"
    );
    // An independent parser: DuckDB takes the standard double-quote rule.
    let columns: Vec<&str> = trino
        .lines()
        .skip_while(|l| !l.starts_with("CREATE TABLE"))
        .skip(1)
        .take_while(|l| *l != ")")
        .collect();
    let create = format!("CREATE TABLE t (\n{}\n)", columns.join("\n"))
        .replace(" timestamp(6)", " TIMESTAMP")
        .replace(" varchar", " VARCHAR");
    let parsed = python(&format!(
        "import duckdb\ncon = duckdb.connect()\ncon.execute({create:?})\n\
         print('\\n'.join(r[0] for r in con.execute('DESCRIBE t').fetchall()))\n"
    ));
    let mut expected: Vec<String> = names.iter().filter(|n| **n != "dt").map(|n| n.to_string()).collect();
    expected.push("dt".into());
    assert_eq!(parsed.lines().collect::<Vec<_>>(), expected, "{trino}");

    let (ok, out, err) = ddl(&archive, "bigquery");
    assert!(!ok, "BigQuery cannot name a column with \" or `: {out}");
    assert!(err.contains("BigQuery cannot name the column \"a\\\"b`c\""), "{err}");
    assert!(out.is_empty());

    // pipe query names the same columns.
    let (ok, rows, err) = try_query(&archive, "SELECT sum(\"a\"\"b`c\"), count(\"with space\") FROM logs");
    assert!(ok, "{err}");
    assert_eq!(rows, vec!["190,20"]);
}

/// Every partition layout the sink writes answers in `pipe query` exactly as in
/// DuckDB, and `pipe archive ddl` names the same partition columns.
#[test]
fn partition_layouts_answer_as_duckdb_does() {
    let dir = tempfile::tempdir().unwrap();
    let layouts: [(&str, &[&str], &[&str]); 4] = [
        // A partition key that is also a field: the docs' own example.
        (
            "service={{ service }}/dt=%Y-%m-%d",
            &["service", "dt"],
            &[
                "SELECT service, count(*), sum(seq) FROM logs GROUP BY service ORDER BY service",
                "SELECT dt, count(*) FROM logs WHERE service = 'api' GROUP BY dt ORDER BY dt",
                "SELECT count(*), sum(latency_ms) FROM logs WHERE dt = '2026-11-25' AND service = 'web'",
            ],
        ),
        (
            "dt=%Y-%m-%d/hour=%-H",
            &["dt", "hour"],
            &[
                "SELECT dt, hour, count(*) FROM logs GROUP BY dt, hour ORDER BY dt, hour",
                "SELECT count(*), sum(seq) FROM logs WHERE dt = '2026-11-26' AND hour = 2",
            ],
        ),
        (
            "dt=%Y-%m-%d/{{ service }}",
            &["dt"],
            &["SELECT dt, service, count(*) FROM logs GROUP BY dt, service ORDER BY dt, service"],
        ),
        // No Hive level at all: DataFusion alone would skip every file below a plain
        // directory.
        (
            "{{ service }}/%Y/%m",
            &[],
            &["SELECT service, count(*) FROM logs GROUP BY service ORDER BY service"],
        ),
    ];
    let input = service_events(3000);
    for (i, (template, partitions, queries)) in layouts.iter().enumerate() {
        let archive = dir.path().join(format!("archive{i}"));
        let data = dir.path().join("data");
        let _ = fs::remove_dir_all(&data);
        archive_with(dir.path(), &archive, template, &input);
        let always = ["SELECT count(*), count(DISTINCT seq), sum(seq) FROM logs"];
        for sql in always.iter().chain(queries.iter()) {
            let (ok, ours, err) = try_query(&archive, sql);
            assert!(ok, "{template}: {sql}: {err}");
            assert_eq!(ours, duckdb(&archive, sql), "{template}: {sql}");
        }
        assert_eq!(
            try_query(&archive, always[0]).1,
            vec!["3000,3000,4498500"],
            "{template}"
        );
        let (ok, trino, err) = ddl(&archive, "trino");
        assert!(ok, "{template}: {err}");
        let names: Vec<String> = partitions.iter().map(|p| format!("'{p}'")).collect();
        if partitions.is_empty() {
            assert!(!trino.contains("partitioned_by"), "{trino}");
        } else {
            assert!(
                trino.contains(&format!("partitioned_by = ARRAY[{}]", names.join(", "))),
                "{template}: {trino}"
            );
        }
        for p in *partitions {
            assert_eq!(
                trino.matches(&format!("\"{p}\" ")).count(),
                1,
                "{p} is one column: {trino}"
            );
        }
        // DuckDB's partition columns are the same.
        let described = duckdb(
            &archive,
            "SELECT column_name FROM (DESCRIBE SELECT * FROM logs) WHERE column_name IN ('service', 'dt', 'hour') ORDER BY 1",
        );
        let (_, ours, _) = try_query(
            &archive,
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'logs' AND column_name IN ('service', 'dt', 'hour') ORDER BY 1",
        );
        assert_eq!(ours, described, "{template}");
    }
}

/// Missing and empty partition values are written as `__HIVE_DEFAULT_PARTITION__`;
/// every engine reads them as NULL, and they do not change the column's type.
/// Values with `/` and `%` are percent-encoded in the path and read back decoded.
#[test]
fn hive_null_partitions_are_null_as_in_duckdb() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let input: String = (0..600u64)
        .map(|i| {
            let a = match i % 4 {
                0 => String::new(),
                1 => ",\"a\":\"\"".to_string(),
                n => format!(",\"a\":{n}"),
            };
            let b = if i % 5 == 0 {
                String::new()
            } else {
                // Percent-encoded in the path (`a%2Fb`, `x y%25z`), decoded by every reader.
                format!(",\"b\":\"{}\"", ["host-0", "a/b", "x y%z"][(i % 3) as usize])
            };
            // `v` changes type half-way: earlier files hold integers, later strings.
            let v = if i < 300 { format!("{i}") } else { format!("\"s{i}\"") };
            format!("{{\"ts\":\"2026-11-25T10:00:00Z\",\"seq\":{i},\"v\":{v}{a}{b}}}\n")
        })
        .collect();
    archive_with(dir.path(), &archive, "a={{ a }}/b={{ b }}", &input);
    let files = relative_files(&archive);
    assert!(
        files
            .iter()
            .any(|f| f.starts_with("a=__HIVE_DEFAULT_PARTITION__/b=__HIVE_DEFAULT_PARTITION__/")),
        "{files:?}"
    );
    for sql in [
        "SELECT count(*), sum(seq) FROM logs",
        "SELECT a, b, count(*), sum(seq) FROM logs GROUP BY a, b ORDER BY a NULLS FIRST, b NULLS FIRST",
        "SELECT count(*) FROM logs WHERE a IS NULL",
        "SELECT count(*), sum(a) FROM logs WHERE a = 2",
        "SELECT count(*) FROM logs WHERE a > 2 AND b = 'a/b'",
        "SELECT count(*) FROM logs WHERE b = 'x y%z'",
        "SELECT count(*) FROM logs WHERE b IS NULL",
        "SELECT count(v), count(DISTINCT v) FROM logs",
        "SELECT seq, v FROM logs WHERE seq IN (5, 299, 300, 599) ORDER BY seq",
    ] {
        let (ok, ours, err) = try_query(&archive, sql);
        assert!(ok, "{sql}: {err}");
        assert_eq!(ours, duckdb(&archive, sql), "{sql}");
    }
    assert_eq!(
        try_query(&archive, "SELECT count(*) FROM logs WHERE a IS NULL").1,
        vec!["300"]
    );
    let (ok, trino, err) = ddl(&archive, "trino");
    assert!(ok, "{err}");
    assert!(trino.contains("\n  \"a\" bigint,\n  \"b\" varchar\n)"), "{trino}");
    assert!(trino.contains("partitioned_by = ARRAY['a', 'b']"), "{trino}");
}

/// A file outside the archive's partition layout is an error naming it, never a
/// silent skip (DataFusion alone would answer without it).
#[test]
fn a_stray_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    archive_with(dir.path(), &archive, "dt=%Y-%m-%d/hour=%-H", &service_events(1000));
    assert_eq!(try_query(&archive, "SELECT count(*) FROM logs").1, vec!["1000"]);
    let first = archive.join(&relative_files(&archive)[0]);
    for stray in [
        "stray.parquet",
        "dt=2026-11-25/old.parquet",
        "backup/dt=2026-11-25/hour=1/x.parquet",
    ] {
        let path = archive.join(stray);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::copy(&first, &path).unwrap();
        let (ok, rows, err) = try_query(&archive, "SELECT count(*) FROM logs");
        assert!(!ok, "{stray}: answered {rows:?}");
        assert!(err.contains(&format!("`{stray}`")), "{stray}: {err}");
        let (ok, _, err) = ddl(&archive, "hive");
        assert!(!ok && err.contains(&format!("`{stray}`")), "{stray}: {err}");
        fs::remove_file(&path).unwrap();
    }
    assert_eq!(try_query(&archive, "SELECT count(*) FROM logs").1, vec!["1000"]);
}
