//! Disk buffers through the real binary: an `http` source answers 200 while its
//! Elasticsearch sink is down, because the events are synced in the sink's disk
//! buffer, and they are delivered once it is back; and `kill -9` at 50 moments while
//! 200,000 events are posted, Elasticsearch down for part of the run, loses no event
//! that was answered 200. Elasticsearch is the fake in `tests/common/es.rs` (no
//! Elasticsearch server can run on these machines).

mod common;
#[path = "common/es.rs"]
mod es;

use common::http::*;
use common::*;
use es::*;
use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

fn ndjson(first: u64, n: u64) -> String {
    (first..first + n)
        .map(|i| format!("{{\"seq\":{i},\"message\":\"event {i} {}\"}}\n", "x".repeat(60)))
        .collect()
}

fn topology(dir: &Path, http: u16, es: u16, api: u16) -> std::path::PathBuf {
    let path = dir.join("t.toml");
    std::fs::write(
        &path,
        format!(
            r#"data_dir = "{data}"
shutdown_timeout_secs = 5
[api]
enabled = true
address = "127.0.0.1:{api}"

[sources.web]
type = "http"
address = "127.0.0.1:{http}"
decoding = "ndjson"

[sinks.es]
type = "elasticsearch"
inputs = ["web"]
endpoints = ["http://127.0.0.1:{es}"]
index = "logs"
id_field = "seq"
healthcheck = false
buffer = {{ type = "disk", max_size = 268435456 }}
"#,
            data = dir.join("data").display()
        ),
    )
    .unwrap();
    path
}

fn buffered(api: u16) -> Option<f64> {
    let (_, text) = get(api, "/metrics", None)?;
    sample(&text, "pipe_buffer_events", &[r#"component_id="es""#])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_while_the_sink_is_down_and_delivered_when_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let (http, es, api) = (free_port(), free_port(), free_port());
    let topology = topology(dir.path(), http, es, api);
    let log = dir.path().join("pipe.log");
    let pipe = Pipe::start(&topology, &log);
    wait_api(api, &log);
    // Elasticsearch is not there: every request is still answered 200.
    for r in 0..10 {
        let status = tokio::task::spawn_blocking(move || {
            post(http, "/", "application/x-ndjson", &ndjson(r * 100, 100)).map(|(s, _)| s)
        })
        .await
        .unwrap();
        assert_eq!(status, Some(200), "request {r}: {}", tail(&log, 20));
    }
    assert!(
        wait_for(10, || buffered(api) == Some(1000.0)),
        "pipe_buffer_events: {:?}",
        buffered(api)
    );
    let fake = FakeEs::default();
    let server = fake.serve(es).await;
    let delivered = tokio::task::spawn_blocking({
        let fake = fake.clone();
        move || wait_for(60, || fake.ids().len() == 1000)
    })
    .await
    .unwrap();
    assert!(delivered, "Elasticsearch has {} of 1000", fake.ids().len());
    assert!(wait_for(10, || buffered(api) == Some(0.0)), "{:?}", buffered(api));
    assert_eq!(fake.ids(), (0..1000).collect::<Vec<u64>>());
    assert_eq!(tokio::task::spawn_blocking(move || pipe.stop(30)).await.unwrap(), 0);
    server.abort();
}

const EVENTS: u64 = 200_000;
const PER_REQUEST: u64 = 500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_fifty_times_loses_no_event_that_was_answered_200() {
    let dir = tempfile::tempdir().unwrap();
    let (http, es, api) = (free_port(), free_port(), free_port());
    let topology = topology(dir.path(), http, es, api);
    let log = dir.path().join("pipe.log");
    let fake = FakeEs::default();
    let mut server = Some(fake.serve(es).await);

    // The client posts the requests in order, each until it is answered 200.
    let client = tokio::task::spawn_blocking(move || {
        let mut acknowledged = Vec::new();
        let mut first = 0;
        while first < EVENTS {
            match post(http, "/", "application/x-ndjson", &ndjson(first, PER_REQUEST)).map(|(s, _)| s) {
                Some(200) => {
                    acknowledged.push(first);
                    first += PER_REQUEST;
                    // Paced over about 40 s, so that the 50 kills fall inside the run.
                    std::thread::sleep(Duration::from_millis(100));
                }
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        acknowledged
    });
    let mut kills = 0u64;
    while !client.is_finished() && kills < 50 {
        let pipe = Pipe::start(&topology, &log);
        // Elasticsearch is down from the 10th to the 30th run.
        if kills == 10 {
            if let Some(s) = server.take() {
                s.abort();
            }
        }
        if kills == 30 {
            server = Some(fake.serve(es).await);
        }
        tokio::time::sleep(Duration::from_millis(300 + (kills * 97) % 700)).await;
        pipe.kill9();
        kills += 1;
    }
    if server.is_none() {
        server = Some(fake.serve(es).await);
    }
    let pipe = Pipe::start(&topology, &log);
    let acknowledged = client.await.unwrap();
    assert_eq!(acknowledged.len() as u64, EVENTS / PER_REQUEST);
    let all = tokio::task::spawn_blocking({
        let fake = fake.clone();
        move || wait_for(180, || fake.ids().len() as u64 >= EVENTS)
    })
    .await
    .unwrap();
    let ids: HashSet<u64> = fake.ids().into_iter().collect();
    let missing: Vec<u64> = (0..EVENTS).filter(|i| !ids.contains(i)).collect();
    println!(
        "{kills} kills; {} of {EVENTS} events in Elasticsearch, {} items sent in all",
        ids.len(),
        fake.0.lock().unwrap().items_received
    );
    assert!(
        all && missing.is_empty(),
        "{} answered-200 events never reached Elasticsearch, first {:?}\n{}",
        missing.len(),
        &missing[..missing.len().min(10)],
        tail(&log, 30)
    );
    assert_eq!(kills, 50, "the client finished before the 50th kill");
    let _ = tokio::task::spawn_blocking(move || pipe.stop(30)).await;
    if let Some(s) = server {
        s.abort();
    }
}
