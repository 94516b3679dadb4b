//! The benchmark floor: the least work any tool must do for the file → remap →
//! blackhole benchmark. Reads the file, parses every line with serde_json, adds a
//! field, renames a field, and drops the result, on one core.
//!
//! `floor gen N PATH` writes N lines of about 1 KB of JSON (the benchmark input);
//! `floor run PATH` does the work and prints `events=N bytes=B seconds=S`; `floor serve
//! ADDR` is the HTTP floor of `run.sh http`.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("gen") if args.len() == 4 => generate(args[2].parse().expect("N"), &args[3]),
        Some("run") if args.len() == 3 => run(&args[2]),
        Some("serve") if args.len() == 3 => serve(&args[2]),
        _ => {
            eprintln!("usage: floor gen N PATH | floor run PATH | floor serve ADDR");
            std::process::exit(2);
        }
    }
}

fn generate(n: u64, path: &str) {
    let services = ["api", "web", "auth", "billing", "search"];
    let levels = ["info", "info", "info", "warn", "error"];
    let mut out = BufWriter::new(std::fs::File::create(path).expect("create"));
    let pad = "abcdefghij".repeat(90);
    for i in 0..n {
        let line = serde_json::json!({
            "ts": format!("2026-11-27T10:{:02}:{:02}.{:03}Z", (i / 60_000) % 60, (i / 1000) % 60, i % 1000),
            "service": services[(i % 5) as usize],
            "level": levels[((i / 5) % 5) as usize],
            "msg": format!("request {i} handled"),
            "user_id": i * 7919 % 100_000,
            "path": format!("/api/v1/items/{}", i % 977),
            "latency_ms": i % 1234,
            "payload": &pad[..(780 + (i % 40) as usize)],
        });
        writeln!(out, "{line}").expect("write");
    }
}

fn run(path: &str) {
    let start = Instant::now();
    let mut reader = BufReader::with_capacity(256 * 1024, std::fs::File::open(path).expect("open"));
    let (mut events, mut bytes) = (0u64, 0u64);
    let mut line = String::with_capacity(4096);
    loop {
        line.clear();
        let n = reader.read_line(&mut line).expect("read");
        if n == 0 {
            break;
        }
        bytes += n as u64;
        let mut v: serde_json::Value = serde_json::from_str(&line).expect("json");
        if let Some(obj) = v.as_object_mut() {
            obj.insert("pipeline".into(), serde_json::Value::from("bench"));
            if let Some(msg) = obj.remove("msg") {
                obj.insert("message".into(), msg);
            }
        }
        std::hint::black_box(&v);
        events += 1;
    }
    println!("events={events} bytes={bytes} seconds={:.3}", start.elapsed().as_secs_f64());
}

/// The HTTP floor: an axum handler that reads each request's body whole and answers
/// 200, on both cores, until SIGTERM.
fn serve(addr: &str) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let app = axum::Router::new().route(
            "/",
            axum::routing::post(|body: axum::body::Bytes| async move {
                std::hint::black_box(body.len());
                "ok"
            }),
        );
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal");
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                term.recv().await;
            })
            .await
            .expect("serve");
    });
}
