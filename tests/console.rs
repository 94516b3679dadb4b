//! The web console in a real browser: Debian's Chromium driven by playwright-core
//! (npm, pinned by console/package-lock.json, installed by tests/run.sh into
//! `PIPE_TEST_NODE_CONSOLE`, default ~/.cache/pipe/node-console), against a running
//! pipe with a generator → remap → blackhole topology. Also runs the console's own unit
//! tests (node's test runner) and checks that the embedded bundle is the one its
//! sources build. Screenshots go to each test's temp dir; their paths are printed.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn node_modules() -> PathBuf {
    std::env::var_os("PIPE_TEST_NODE_CONSOLE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/pipe/node-console"))
        .join("node_modules")
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `node args…` with the console's packages; panics with its output on failure.
fn node(args: &[&str]) -> String {
    let out = Command::new("node")
        .args(args)
        .env("NODE_PATH", node_modules())
        .current_dir(repo())
        .output()
        .expect("run node (tests/run.sh installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "node {args:?} failed:\n{text}");
    println!("{text}");
    text
}

/// A pipe with the API on a free port (and `token`, if given); returns it and the URL.
fn start(dir: &Path, token: Option<&str>) -> (Pipe, String) {
    let api = free_port();
    let token = token.map(|t| format!("token = \"{t}\"\n")).unwrap_or_default();
    let topology = dir.join("topology.toml");
    std::fs::write(
        &topology,
        format!(
            r#"
data_dir = "{data}"
[api]
enabled = true
address = "127.0.0.1:{api}"
{token}
[sources.gen]
type = "generator"
format = "json"
rate = 4000
batch_size = 20

[transforms.shape]
type = "remap"
inputs = ["gen"]
source = '. = parse_json!(.message)'

[sinks.out]
type = "blackhole"
inputs = ["shape"]
"#,
            data = dir.join("data").display(),
        ),
    )
    .unwrap();
    let log = dir.join("pipe.log");
    let pipe = Pipe::start(&topology, &log);
    let url = format!("http://127.0.0.1:{api}/");
    assert!(
        wait_for(30, || std::net::TcpStream::connect(("127.0.0.1", api)).is_ok()),
        "the API did not come up: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    (pipe, url)
}

#[test]
fn console_unit_tests_pass() {
    let dir = tempfile::tempdir().unwrap();
    let build = dir.path().join("tests");
    let build = build.to_str().unwrap();
    node(&["console/build.js", "--tests", build]);
    let out = node(&["--test", build]);
    assert!(out.contains("# fail 0"), "{out}");
}

#[test]
fn embedded_bundle_is_built_from_the_sources() {
    let dir = tempfile::tempdir().unwrap();
    node(&["console/build.js", dir.path().to_str().unwrap()]);
    for asset in ["app.js", "app.css", "index.html"] {
        let built = std::fs::read(dir.path().join(asset)).unwrap();
        let committed = std::fs::read(repo().join("console/dist").join(asset)).unwrap();
        assert!(
            built == committed,
            "console/dist/{asset} is not what console/src builds: run `node console/build.js` and commit it"
        );
    }
}

/// The topology view shows every component and an edge rate that rises; the tap view
/// shows events of the chosen output, stops when paused, and keeps at most 1,000 rows
/// after 5,000 events.
#[test]
fn console_shows_the_topology_and_taps_an_output() {
    let dir = tempfile::tempdir().unwrap();
    let (pipe, url) = start(dir.path(), None);
    let shots = dir.keep();
    node(&[
        "tests/console/browser.js",
        "pipeline",
        &url,
        shots.to_str().unwrap(),
        "gen",
        "shape",
        "out",
    ]);
    assert_eq!(pipe.stop(30), 0);
}

/// With a token set, the console without it shows the prompt and no data; a wrong
/// token is refused; the right one shows the topology.
#[test]
fn console_asks_for_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let (pipe, url) = start(dir.path(), Some("s3cret-console"));
    let shots = dir.keep();
    node(&[
        "tests/console/browser.js",
        "token",
        &url,
        shots.to_str().unwrap(),
        "s3cret-console",
        "gen",
        "shape",
        "out",
    ]);
    assert_eq!(pipe.stop(30), 0);
}
