//! The command line through the real binary: every shipped topology validates, each
//! kind of configuration mistake exits 78 naming the file, line, component and key,
//! `pipe list` (and `pipe list TYPE`, the generated tables) and `--version` work.

mod common;

use common::pipe_bin;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

fn pipe(args: &[&str], dir: &Path) -> Output {
    Command::new(pipe_bin())
        .args(args)
        .current_dir(dir)
        .env_remove("PIPE_DATA_DIR")
        .output()
        .unwrap()
}

#[test]
fn every_shipped_topology_validates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for entry in fs::read_dir(root.join("topologies")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let out = pipe(&["validate", path.to_str().unwrap()], root);
            assert!(
                out.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            checked += 1;
        }
    }
    assert!(checked >= 1);
}

/// Writes `files` into a temp dir, validates them, and checks exit 78 and that the
/// message holds every one of `expected`.
fn mistake(files: &[(&str, &str)], expected: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["validate".to_string()];
    for (name, text) in files {
        fs::write(dir.path().join(name), text).unwrap();
        args.push(name.to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = pipe(&args, dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(78),
        "expected exit 78 for {files:?}, got {:?}: {stderr}",
        out.status
    );
    for e in expected {
        assert!(stderr.contains(e), "expected {e:?} in:\n{stderr}");
    }
}

const SOURCE: &str = "[sources.logs]\ntype = \"generator\"\ncount = 1\n";

#[test]
fn unknown_type_gets_did_you_mean() {
    mistake(
        &[("t.toml", "[sources.logs]\ntype = \"fiel\"\n")],
        &[
            "t.toml:2:",
            "sources.logs",
            "key `type`",
            "unknown source type `fiel`",
            "did you mean `file`",
        ],
    );
}

#[test]
fn unknown_key_gets_did_you_mean_and_line() {
    mistake(
        &[(
            "t.toml",
            "data_dir = \"/tmp/x\"\n[sources.logs]\ntype = \"file\"\nincude = [\"/tmp/*.log\"]\n",
        )],
        &["t.toml:4:", "sources.logs", "key `incude`", "did you mean `include`"],
    );
}

#[test]
fn unknown_top_level_key() {
    mistake(
        &[("t.toml", &format!("data_dri = \"/tmp\"\n{SOURCE}"))],
        &["t.toml:1:", "data_dri", "did you mean `data_dir`"],
    );
}

#[test]
fn missing_input() {
    mistake(
        &[(
            "t.toml",
            &format!("{SOURCE}[sinks.out]\ntype = \"console\"\ninputs = [\"lgos\"]\n"),
        )],
        &[
            "t.toml:6:",
            "sinks.out",
            "key `inputs`",
            "`lgos` names no source or transform",
            "did you mean `logs`",
        ],
    );
}

#[test]
fn unknown_named_output() {
    let t = format!(
        "{SOURCE}[transforms.parse]\ntype = \"remap\"\ninputs = [\"logs\"]\nsource = \".a = 1\"\nreroute_dropped = true\n[sinks.out]\ntype = \"console\"\ninputs = [\"parse.drop\"]\n"
    );
    mistake(
        &[("t.toml", &t)],
        &["sinks.out", "component `parse` has no output `drop`", "it has: dropped"],
    );
}

#[test]
fn glob_input_matching_nothing() {
    mistake(
        &[(
            "t.toml",
            &format!("{SOURCE}[sinks.out]\ntype = \"console\"\ninputs = [\"app_*\"]\n"),
        )],
        &["sinks.out", "`app_*` matches no source or transform"],
    );
}

#[test]
fn cycle() {
    let t = format!(
        "{SOURCE}[transforms.a]\ntype = \"remap\"\ninputs = [\"logs\", \"b\"]\nsource = \".x = 1\"\n[transforms.b]\ntype = \"remap\"\ninputs = [\"a\"]\nsource = \".y = 1\"\n[sinks.out]\ntype = \"console\"\ninputs = [\"b\"]\n"
    );
    mistake(&[("t.toml", &t)], &["cycle:", "b -> a -> b"]);
}

#[test]
fn sink_without_inputs() {
    mistake(
        &[("t.toml", &format!("{SOURCE}[sinks.out]\ntype = \"console\"\n"))],
        &["t.toml:4:", "sinks.out", "key `inputs`", "needs `inputs`"],
    );
}

#[test]
fn duplicate_id_across_files() {
    let second = "[sources.logs]\ntype = \"stdin\"\n[sinks.out]\ntype = \"blackhole\"\ninputs = [\"logs\"]\n";
    mistake(
        &[("a.toml", SOURCE), ("b.toml", second)],
        &["b.toml:1:", "duplicate component id `logs`", "a.toml"],
    );
}

#[test]
fn two_sinks_claiming_one_path() {
    let t = format!(
        "{SOURCE}[sinks.a]\ntype = \"file\"\ninputs = [\"logs\"]\npath = \"/tmp/same.log\"\n[sinks.b]\ntype = \"file\"\ninputs = [\"logs\"]\npath = \"/tmp/same.log\"\n"
    );
    mistake(
        &[("t.toml", &t)],
        &["sinks.b", "/tmp/same.log", "also claimed by component `a`"],
    );
}

#[test]
fn vrl_compile_error_shows_vrl_diagnostic() {
    let t = format!(
        "{SOURCE}[transforms.parse]\ntype = \"remap\"\ninputs = [\"logs\"]\nsource = '. = parse_jsn!(.message)'\n[sinks.out]\ntype = \"console\"\ninputs = [\"parse\"]\n"
    );
    mistake(
        &[("t.toml", &t)],
        &[
            "t.toml:7:",
            "transforms.parse",
            "key `source`",
            "parse_jsn",
            "error[E105]",
        ],
    );
}

#[test]
fn unset_variable_without_default() {
    mistake(
        &[("t.toml", "data_dir = \"${PIPE_TEST_SURELY_UNSET}\"\n")],
        &["t.toml:1:", "PIPE_TEST_SURELY_UNSET", "not set"],
    );
}

#[test]
fn invalid_toml() {
    mistake(
        &[("t.toml", "[sources.logs\ntype = \"file\"\n")],
        &["t.toml:1:", "invalid TOML"],
    );
}

#[test]
fn bad_option_value() {
    mistake(
        &[(
            "t.toml",
            "[sources.logs]\ntype = \"file\"\ninclude = [\"/tmp/*.log\"]\nread_from = \"middle\"\n",
        )],
        &["sources.logs", "middle", "beginning"],
    );
}

#[test]
fn variables_with_defaults_validate() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("t.toml"), "data_dir = \"${PIPE_TEST_SURELY_UNSET:-/tmp/pipe-x}\"\n[sources.logs]\ntype = \"generator\"\ncount = ${PIPE_TEST_COUNT:-5}\n[sinks.out]\ntype = \"blackhole\"\ninputs = [\"logs\"]\n").unwrap();
    let out = pipe(&["validate", "t.toml"], dir.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 sources, 0 transforms, 1 sinks"));
}

#[test]
fn run_with_a_bad_topology_exits_78_too() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("t.toml"), "[sources.logs]\ntype = \"nope\"\n").unwrap();
    let out = pipe(&["-t", "t.toml"], dir.path());
    assert_eq!(out.status.code(), Some(78));
}

#[test]
fn list_and_version() {
    let dir = tempfile::tempdir().unwrap();
    let out = pipe(&["list"], dir.path());
    let text = String::from_utf8_lossy(&out.stdout);
    for name in [
        "file",
        "stdin",
        "generator",
        "remap",
        "filter",
        "route",
        "console",
        "blackhole",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    let out = pipe(&["--version"], dir.path());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("pipe "));
    let out = pipe(&["--help"], dir.path());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Examples:"));
}

/// The generated region `marker` of docs/configuration.md, without blank lines around.
fn doc_region(marker: &str) -> String {
    let doc = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md")).unwrap();
    let start = doc.find(marker).unwrap_or_else(|| panic!("{marker} not in the docs")) + marker.len();
    let len = doc[start..].find("<!-- /generated -->").unwrap();
    doc[start..start + len].trim().to_string()
}

#[test]
fn list_type_prints_its_options_and_counters() {
    let dir = tempfile::tempdir().unwrap();
    let out = pipe(&["list", "http"], dir.path());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.starts_with("source http: Receives events over HTTP"), "{text}");
    for region in ["options", "counters"] {
        let table = doc_region(&format!("<!-- generated:{region}:sources.http -->"));
        assert!(text.contains(&table), "the {region} of the docs are not in:\n{text}");
    }
    assert!(text.contains("| `max_body_bytes` | `integer` | `10485760` |"), "{text}");

    // `file` is a source and a sink; --kind picks one.
    let both = String::from_utf8_lossy(&pipe(&["list", "file"], dir.path()).stdout).into_owned();
    assert!(both.contains("source file:") && both.contains("sink file:"), "{both}");
    let out = pipe(&["list", "file", "--kind", "sink"], dir.path());
    let sink = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(sink.contains("sink file:") && !sink.contains("source file:"), "{sink}");
    assert!(
        sink.contains("| `path` | `string` | required |") && !sink.contains("`include`"),
        "{sink}"
    );
}

#[test]
fn list_unknown_type_exits_78() {
    let dir = tempfile::tempdir().unwrap();
    let out = pipe(&["list", "fiel"], dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains("no component type `fiel`") && stderr.contains("Did you mean `file`?"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    let out = pipe(&["list", "remap", "--kind", "sink"], dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("no sink component type `remap`"), "{stderr}");
}
