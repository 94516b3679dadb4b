//! `pipe convert logstash` through the real binary, on Logstash pipeline configs
//! published by Elastic (tests/logstash/*.conf, each citing its source):
//! - every one converts (exit 0), its TODOs are the expected ones, on standard
//!   error and as `# TODO (file:line)` lines, the output is the same on every run
//!   and equals the committed `NAME.toml`, and `pipe validate` takes it (exit 0);
//! - those with a `file` or `stdin` input run on sample lines from the same docs,
//!   their sinks swapped for `file` sinks, against golden events derived from the
//!   plugins' documented behaviour (`NAME.expected.jsonl`);
//! - syntax errors name the file, line and column.
//!
//! `PIPE_UPDATE_GOLDEN=1` rewrites the committed files from what the binary writes.

mod common;

use common::pipe_bin;
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/logstash")
}

fn update() -> bool {
    std::env::var_os("PIPE_UPDATE_GOLDEN").is_some()
}

/// Each config and the TODOs its conversion must report (a piece of each).
const CONFIGS: &[(&str, &[&str])] = &[
    ("logstash-simple.conf", &[]),
    ("logstash-filter.conf", &[]),
    ("logstash-apache.conf", &[]),
    ("logstash-conditionals.conf", &[]),
    (
        "logstash-syslog.conf",
        &[
            ":4): the `tcp` input has no pipe source",
            ":8): the `udp` input has no pipe source",
            "no input could be mapped: a `stdin` source stands in",
        ],
    ),
    ("logstash-syslog-stdin.conf", &[]),
    ("metadata-output.conf", &[]),
    ("metadata-date.conf", &[]),
    (
        "first-pipeline.conf",
        &[":14): the `geoip` filter has no pipe equivalent"],
    ),
    (
        "second-pipeline.conf",
        &[
            ":4): the `twitter` input has no pipe source",
            "`IP Address 1:port1` in `hosts` is no host name or URL",
            "`IP Address 2:port2` in `hosts` is no host name or URL",
        ],
    ),
    (
        "filebeat-apache2-access.conf",
        &[
            ":25): the `useragent` filter has no pipe equivalent",
            ":30): the `geoip` filter has no pipe equivalent",
        ],
    ),
    (
        "filebeat-system-syslog.conf",
        &[":10): the `multiline` codec on the `beats` input has no pipe equivalent"],
    ),
    (
        "kafka-filebeat-es.conf",
        &[
            ":17): `pipeline => \"%{[@metadata][pipeline]}\"`: pipe sends no ingest pipeline",
            "this sink's options read `@metadata`",
        ],
    ),
    (
        "google-bigquery.conf",
        &[
            "no input could be mapped",
            ":10): `credentials_path = \"/path/to/key.json\"` is left out",
            ":11): `error_directory => \"/tmp/bigquery-errors\"`: route `google_bigquery.dropped`",
        ],
    ),
    (
        "google-cloud-storage.conf",
        &[
            "no input could be mapped",
            ":8): `json_key_file => \"/path/to/privatekey.json\"`: set `GOOGLE_APPLICATION_CREDENTIALS",
        ],
    ),
    (
        "s3-output.conf",
        &[
            "no input could be mapped",
            ":7): S3 credentials: set `AWS_ACCESS_KEY_ID`",
            ":14): `canned_acl`: set it on the bucket",
            "the `plain` codec writes `@timestamp host message`",
        ],
    ),
    ("kafka-output.conf", &["no input could be mapped"]),
    (
        "pipeline-distributor.conf",
        &[
            ":7): the `pipeline` output has no pipe sink",
            ":9): the `pipeline` output has no pipe sink",
            ":11): the `pipeline` output has no pipe sink",
            "no output could be mapped: a `blackhole` sink stands in",
        ],
    ),
    (
        "grok-basics.conf",
        &["no output could be mapped: a `blackhole` sink stands in"],
    ),
    (
        "kv-query-string.conf",
        &["no input could be mapped", "no output could be mapped"],
    ),
    (
        "env-vars.conf",
        &[":5): the `tcp` input has no pipe source", "no output could be mapped"],
    ),
];

/// Configs whose TODOs depend on whether this build has a `beats` source.
const BEATS: &[&str] = &[
    "second-pipeline.conf",
    "filebeat-apache2-access.conf",
    "filebeat-system-syslog.conf",
    "pipeline-distributor.conf",
];

fn has_beats() -> bool {
    let out = Command::new(pipe_bin())
        .args(["list", "beats", "--kind", "source"])
        .output()
        .unwrap();
    out.status.success()
}

fn convert(name: &str, out: &Path) -> (String, String) {
    let o = Command::new(pipe_bin())
        .args(["convert", "logstash", name, "-o"])
        .arg(out)
        .current_dir(dir())
        .env("ENV_TAG", "tag2")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "{name}: exit {:?}\n{stderr}", o.status);
    (fs::read_to_string(out).unwrap(), stderr)
}

#[test]
fn published_configs_convert_and_validate() {
    let tmp = tempfile::tempdir().unwrap();
    let beats = has_beats();
    let mut on_disk: Vec<String> = fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".conf"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = CONFIGS.iter().map(|(n, _)| n.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "every config in tests/logstash is listed in CONFIGS");
    assert!(CONFIGS.len() >= 10);

    for (name, todos) in CONFIGS {
        let text = fs::read_to_string(dir().join(name)).unwrap();
        assert!(
            text.starts_with("# Source: ") && text.contains("https://"),
            "{name} cites its source"
        );
        let out = tmp.path().join(name.replace(".conf", ".toml"));
        let (toml, stderr) = convert(name, &out);
        for t in *todos {
            // `:LINE): text` pins the line; other pieces may be on any TODO line.
            let (in_toml, on_stderr) = match t.strip_prefix(':').and_then(|r| r.split_once("): ")) {
                Some((line, rest)) => (
                    format!("# TODO ({name}:{line}): {rest}"),
                    format!("{name}:{line}: TODO: {rest}"),
                ),
                None => (t.to_string(), t.to_string()),
            };
            assert!(
                stderr.contains(&on_stderr),
                "{name}: `{on_stderr}` not on stderr:\n{stderr}"
            );
            assert!(
                toml.lines().any(|l| l.contains("# TODO (") && l.contains(&in_toml)),
                "{name}: no TODO line with `{in_toml}` in:\n{toml}"
            );
        }
        let n_todo = toml.lines().filter(|l| l.trim_start().starts_with("# TODO (")).count();
        let n_err = stderr.lines().filter(|l| l.contains(": TODO: ")).count();
        assert_eq!(
            n_todo, n_err,
            "{name}: each TODO is on standard error and in the output"
        );
        if todos.is_empty() && !(BEATS.contains(name) && !beats) {
            assert_eq!(n_todo, 0, "{name}: unexpected TODOs:\n{stderr}");
        }
        if beats || !BEATS.contains(name) {
            assert!(!stderr.contains("which this build lacks"), "{name}: {stderr}");
        }
        // Deterministic.
        let again = tmp.path().join("again.toml");
        let (toml2, _) = convert(name, &again);
        assert_eq!(toml, toml2, "{name}: two conversions differ");
        // The committed topology (for the configs with a `beats` input, only once a
        // build with the `beats` source wrote it).
        let golden = dir().join(name.replace(".conf", ".toml"));
        if update() && (beats || !BEATS.contains(name)) {
            fs::write(&golden, &toml).unwrap();
        } else if !BEATS.contains(name) || (beats && golden.exists()) {
            let want = fs::read_to_string(&golden).unwrap_or_default();
            assert_eq!(
                toml,
                want,
                "{name}: differs from {} (PIPE_UPDATE_GOLDEN=1 rewrites it)",
                golden.display()
            );
        }
        // And `pipe validate` takes it.
        let v = Command::new(pipe_bin())
            .arg("validate")
            .arg(&out)
            .env("ENV_TAG", "tag2")
            .env_remove("PIPE_DATA_DIR")
            .output()
            .unwrap();
        assert!(
            v.status.success(),
            "{name}: pipe validate failed:\n{}\n{toml}",
            String::from_utf8_lossy(&v.stderr)
        );
    }
}

#[test]
fn syntax_errors_name_file_line_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    for (text, want) in [
        (
            "input {\n  stdin {\n    codec => \n  }\n}\n",
            "bad.conf:4:3: expected a value",
        ),
        (
            "filter {\n  if [type] = \"x\" { drop {} }\n}\n",
            "bad.conf:2:13: expected `{` after the condition, found `=`",
        ),
        (
            "output {\n  stdout { codec => \"json }\n}\n",
            "bad.conf:2:21: this string is never closed",
        ),
        (
            "filter {\n  mutate { add_field => { \"a\" => \"b\" }\n",
            "bad.conf:2:3: the plugin `mutate` is never closed",
        ),
    ] {
        let f = tmp.path().join("bad.conf");
        fs::write(&f, text).unwrap();
        let o = Command::new(pipe_bin())
            .args(["convert", "logstash", "bad.conf"])
            .current_dir(tmp.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(78), "{text}: {stderr}");
        assert!(stderr.contains(want), "{text}: expected `{want}` in {stderr}");
    }
}

/// Sample input of a run: lines on stdin, or files (name, lines) in the directory
/// a `file` input reads.
enum Sample {
    Stdin(&'static [&'static str]),
    Files(&'static [(&'static str, &'static [&'static str])]),
}

const APACHE_FILTER: &str = r#"127.0.0.1 - - [11/Dec/2013:00:01:45 -0800] "GET /xampp/status.php HTTP/1.1" 200 3891 "http://cadenza/xampp/navi.php" "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.9; rv:25.0) Gecko/20100101 Firefox/25.0""#;
const APACHE_ACCESS: &[&str] = &[
    r#"71.141.244.242 - kurt [18/May/2011:01:48:10 -0700] "GET /admin HTTP/1.1" 301 566 "-" "Mozilla/5.0 (Windows; U; Windows NT 5.1; en-US; rv:1.9.2.3) Gecko/20100401 Firefox/3.6.3""#,
    r#"134.39.72.245 - - [18/May/2011:12:40:18 -0700] "GET /favicon.ico HTTP/1.1" 200 1189 "-" "Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 5.1; Trident/4.0; .NET CLR 2.0.50727; .NET CLR 3.0.4506.2152; .NET CLR 3.5.30729; InfoPath.2; .NET4.0C; .NET4.0E)""#,
    r#"98.83.179.51 - - [18/May/2011:19:35:08 -0700] "GET /css/main.css HTTP/1.1" 200 1837 "http://www.safesand.com/information.htm" "Mozilla/5.0 (Windows NT 6.0; WOW64; rv:2.0.1) Gecko/20100101 Firefox/4.0.1""#,
];
const SYSLOG: &[&str] = &[
    "Dec 23 12:11:43 louis postfix/smtpd[31499]: connect from unknown[95.75.93.154]",
    "Dec 23 14:42:56 louis named[16000]: client 199.48.164.7#64817: query (cache) 'amsterdamboothuren.com/MX/IN' denied",
    "Dec 23 14:30:01 louis CRON[619]: (www-data) CMD (php /usr/share/cacti/site/poller.php >/dev/null 2>/var/log/cacti/poller-error.log)",
    "Dec 22 18:28:06 louis rsyslogd: [origin software=\"rsyslogd\" swVersion=\"4.2.0\" x-pid=\"2253\" x-info=\"http://www.rsyslog.com\"] rsyslogd was HUPed, type 'lightweight'.",
];
const TUTORIAL: &[&str] = &[
    r#"83.149.9.216 - - [04/Jan/2015:05:13:45 +0000] "GET /presentations/logstash-monitorama-2013/images/frontend-response-codes.png HTTP/1.1" 200 52878 "http://semicomplete.com/presentations/logstash-monitorama-2013/" "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_1) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/32.0.1700.77 Safari/537.36""#,
];

const RUNS: &[(&str, Sample)] = &[
    ("logstash-simple.conf", Sample::Stdin(&["hello world"])),
    ("logstash-filter.conf", Sample::Stdin(&[APACHE_FILTER])),
    ("logstash-apache.conf", Sample::Files(&[("access_log", APACHE_ACCESS)])),
    (
        "logstash-conditionals.conf",
        Sample::Files(&[
            ("access_log", &[APACHE_ACCESS[0]]),
            (
                "error_log",
                &[
                    "[Wed Oct 11 14:32:52 2000] [error] [client 127.0.0.1] client denied by server configuration: /export/home/live/ap/htdocs/test",
                ],
            ),
            ("other_log", &["something else"]),
        ]),
    ),
    ("logstash-syslog-stdin.conf", Sample::Stdin(SYSLOG)),
    ("metadata-output.conf", Sample::Stdin(&["asdf"])),
    ("metadata-date.conf", Sample::Stdin(&["02/Mar/2014:15:36:43 +0100"])),
    ("first-pipeline.conf", Sample::Files(&[("access.log", TUTORIAL)])),
    (
        "grok-basics.conf",
        Sample::Files(&[("http.log", &["55.3.244.1 GET /index.html 15824 0.043"])]),
    ),
    (
        "kv-query-string.conf",
        Sample::Stdin(&["pin=12345~0&d=123&e=foo@bar.com&oq=bobo&ss=12345"]),
    ),
    ("env-vars.conf", Sample::Stdin(&["env"])),
];

#[test]
fn converted_topologies_run_on_sample_input() {
    for (name, sample) in RUNS {
        let got = run(name, sample);
        let golden = dir().join(name.replace(".conf", ".expected.jsonl"));
        let year = syslog_year();
        if update() {
            let text: String = got
                .iter()
                .map(|v| format!("{}\n", v.replace(&format!("\"{year}-"), "\"%YEAR%-")))
                .collect();
            fs::write(&golden, text).unwrap();
            continue;
        }
        let want: Vec<String> = fs::read_to_string(&golden)
            .unwrap_or_else(|e| panic!("{}: {e}", golden.display()))
            .lines()
            .map(|l| canonical(&serde_json::from_str(&l.replace("%YEAR%", &year.to_string())).unwrap()))
            .collect();
        assert_eq!(got, want, "{name}: events differ from {}", golden.display());
    }
}

/// The year the date filter gives `Dec 23`: this one, or the last one when that
/// would be more than a day ahead.
fn syslog_year() -> i32 {
    use chrono::{Datelike, TimeZone};
    let now = chrono::Utc::now();
    let this = chrono::Utc.with_ymd_and_hms(now.year(), 12, 23, 14, 42, 56).unwrap();
    if this > now + chrono::Duration::days(1) {
        now.year() - 1
    } else {
        now.year()
    }
}

/// Converts `name`, swaps its sinks for `file` sinks (and points `file` sources at
/// the sample files), runs it, and returns every sink's events, normalized.
fn run(name: &str, sample: &Sample) -> Vec<String> {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("converted.toml");
    let (text, _) = convert(name, &out);
    let mut topo: toml::Table = toml::from_str(&text).unwrap();
    topo.insert("data_dir".into(), tmp.path().join("data").display().to_string().into());
    let input_dir = tmp.path().join("in");
    fs::create_dir_all(&input_dir).unwrap();
    let mut original_dirs = Vec::new();
    if let Some(sources) = topo.get_mut("sources").and_then(|s| s.as_table_mut()) {
        for (_, s) in sources.iter_mut() {
            let s = s.as_table_mut().unwrap();
            if s.get("type").and_then(|t| t.as_str()) == Some("file") {
                let include: Vec<toml::Value> = s["include"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| {
                        let p = Path::new(p.as_str().unwrap());
                        original_dirs.push(p.parent().unwrap().display().to_string());
                        input_dir.join(p.file_name().unwrap()).display().to_string().into()
                    })
                    .collect();
                s.insert("include".into(), include.into());
                // The samples are written before pipe starts.
                s.insert("read_from".into(), "beginning".into());
            }
        }
    }
    let mut outputs = Vec::new();
    if let Some(sinks) = topo.get_mut("sinks").and_then(|s| s.as_table_mut()) {
        for (id, s) in sinks.iter_mut() {
            let inputs = s["inputs"].clone();
            let path = tmp.path().join(format!("out-{id}.jsonl"));
            let mut t = toml::Table::new();
            t.insert("type".into(), "file".into());
            t.insert("inputs".into(), inputs);
            t.insert("path".into(), path.display().to_string().into());
            *s = t.into();
            outputs.push(path);
        }
    }
    let topo_path = tmp.path().join("run.toml");
    fs::write(&topo_path, toml::to_string(&topo).unwrap()).unwrap();
    let mut expected_lines = 0;
    let stdin_lines: &[&str] = match sample {
        Sample::Stdin(lines) => {
            expected_lines = lines.len();
            lines
        }
        Sample::Files(files) => {
            for (f, lines) in *files {
                let mut body = lines.join("\n");
                body.push('\n');
                fs::write(input_dir.join(f), body).unwrap();
                expected_lines += lines.len();
            }
            &[]
        }
    };
    let log = fs::File::create(tmp.path().join("pipe.log")).unwrap();
    let mut child = Command::new(pipe_bin())
        .arg("-t")
        .arg(&topo_path)
        .env("TZ", "UTC")
        .env("ENV_TAG", "tag2")
        .env("HOME", "/path")
        .env_remove("PIPE_DATA_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    {
        let mut stdin = child.stdin.take().unwrap();
        for l in stdin_lines {
            writeln!(stdin, "{l}").unwrap();
        }
    }
    let start = Instant::now();
    let count = |outputs: &[PathBuf]| -> usize {
        outputs
            .iter()
            .map(|p| fs::read_to_string(p).map(|t| t.lines().count()).unwrap_or(0))
            .min()
            .unwrap_or(0)
    };
    loop {
        if matches!(sample, Sample::Stdin(_)) {
            if child.try_wait().unwrap().is_some() {
                break;
            }
        } else if count(&outputs) >= expected_lines {
            // Let a straggler show, then stop.
            std::thread::sleep(Duration::from_millis(300));
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
            child.wait().unwrap();
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{name}: pipe did not finish:\n{}",
            fs::read_to_string(tmp.path().join("pipe.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let in_dir = input_dir.display().to_string();
    let mut events = Vec::new();
    for p in &outputs {
        let text = fs::read_to_string(p).unwrap_or_default();
        let mut these: Vec<String> = text
            .lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                normalize(
                    &mut v,
                    &in_dir,
                    original_dirs.first().map(String::as_str).unwrap_or("/tmp"),
                );
                canonical(&v)
            })
            .collect();
        these.sort();
        events.extend(these);
    }
    events
}

/// Replaces what differs between runs: the host name, read times, the sample
/// directory.
fn normalize(v: &mut serde_json::Value, in_dir: &str, original_dir: &str) {
    let now = chrono::Utc::now();
    if let serde_json::Value::Object(m) = v {
        for (k, val) in m.iter_mut() {
            match val {
                serde_json::Value::String(s) => {
                    if k == "host" || *s == hostname() {
                        *s = "example.com".into();
                    } else if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s)
                        && (now - t.with_timezone(&chrono::Utc)).num_seconds().abs() < 3600
                    {
                        *s = "NOW".into();
                    } else if s.starts_with(in_dir) {
                        *s = s.replacen(in_dir, original_dir, 1);
                    }
                }
                other => normalize(other, in_dir, original_dir),
            }
        }
    }
}

/// This machine's name, as the `stdin` and `file` sources put it in `host`.
fn hostname() -> String {
    let out = Command::new("hostname").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// JSON with sorted keys.
fn canonical(v: &serde_json::Value) -> String {
    fn sorted(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                let b: BTreeMap<String, serde_json::Value> = m.iter().map(|(k, v)| (k.clone(), sorted(v))).collect();
                serde_json::to_value(b).unwrap()
            }
            serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    let s = sorted(v);
    let mut out = String::new();
    write_sorted(&s, &mut out);
    out
}

fn write_sorted(v: &serde_json::Value, out: &mut String) {
    match v {
        serde_json::Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k).unwrap());
                out.push(':');
                write_sorted(&m[*k], out);
            }
            out.push('}');
        }
        serde_json::Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_sorted(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&serde_json::to_string(other).unwrap()),
    }
}
