//! Engine tests with purpose-built components: backpressure bounds what is in flight,
//! and a fanned-out batch is acknowledged only when every branch delivered it.

use super::*;
use crate::ack::{self, BatchNotifier, BatchStatus};
use crate::component::{BoxFuture, Built, Kind, Sink, SinkContext, Source, SourceContext};
use crate::config::{Node, Topology};
use crate::event::Event;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use vrl::value::Value;

const BATCH: u64 = 100;
const BATCHES: u64 = 60;

#[derive(Default)]
struct Shared {
    sent: AtomicU64,
    received: AtomicU64,
    max_in_flight: AtomicU64,
    statuses: Mutex<Vec<(BatchStatus, Instant)>>,
    finalized_at: Mutex<Vec<Instant>>,
}

/// Emits `BATCHES` batches of `BATCH` events, noting how far ahead of the sinks it
/// gets, then waits for every acknowledgement.
struct CountingSource(Arc<Shared>);

impl Source for CountingSource {
    fn run(self: Box<Self>, cx: SourceContext) -> BoxFuture {
        Box::pin(async move {
            let mut acks = Vec::new();
            for _ in 0..BATCHES {
                let (n, rx) = BatchNotifier::new();
                let batch = (0..BATCH)
                    .map(|i| Event::new(Value::from(i as i64)).with_notifier(&n))
                    .collect();
                drop(n);
                acks.push(rx);
                let ahead = self.0.sent.load(Ordering::SeqCst) - self.0.received.load(Ordering::SeqCst);
                self.0.max_in_flight.fetch_max(ahead, Ordering::SeqCst);
                cx.out.default.send(batch).await;
                self.0.sent.fetch_add(BATCH, Ordering::SeqCst);
            }
            drop(cx.out);
            for rx in acks {
                let status = ack::wait(rx).await;
                self.0.statuses.lock().unwrap().push((status, Instant::now()));
            }
            Ok(())
        })
    }
}

/// Takes `delay` per batch before finalizing it as delivered.
struct SlowSink(Arc<Shared>, Duration);

impl Sink for SlowSink {
    fn run(self: Box<Self>, mut cx: SinkContext) -> BoxFuture {
        Box::pin(async move {
            while let Some(batch) = cx.input.recv().await {
                tokio::time::sleep(self.1).await;
                self.0.received.fetch_add(batch.len() as u64, Ordering::SeqCst);
                self.0.finalized_at.lock().unwrap().push(Instant::now());
                for e in batch {
                    e.finalize(BatchStatus::Delivered);
                }
            }
            Ok(())
        })
    }
}

fn node(id: &str, kind: Kind, inputs: &[&str], built: Built) -> Node {
    Node {
        buffer: Default::default(),
        id: id.into(),
        kind,
        type_name: "test".into(),
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        options: toml::Table::new(),
        built,
        metrics: crate::metrics::ComponentMetrics::unchecked(id, kind.name()),
        fingerprint: 0,
    }
}

fn topology(nodes: Vec<Node>) -> Topology {
    Topology {
        data_dir: std::env::temp_dir(),
        shutdown_timeout: Duration::from_secs(10),
        reload_timeout: Duration::from_secs(10),
        files: Vec::new(),
        nodes,
        api: Default::default(),
        tests: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_sink_bounds_what_the_source_has_in_flight() {
    let shared = Arc::new(Shared::default());
    let report = run(
        topology(vec![
            node("src", Kind::Source, &[], Built::source(CountingSource(shared.clone()))),
            node(
                "slow",
                Kind::Sink,
                &["src"],
                Built::sink(SlowSink(shared.clone(), Duration::from_millis(2))),
            ),
        ]),
        None,
        None,
    )
    .await;
    assert!(!report.timed_out && report.failures.is_empty());
    assert_eq!(shared.received.load(Ordering::SeqCst), BATCH * BATCHES);
    // The channel holds CHANNEL_BATCHES batches, the sink one more, the send one more.
    let bound = (CHANNEL_BATCHES as u64 + 2) * BATCH;
    let max = shared.max_in_flight.load(Ordering::SeqCst);
    assert!(max <= bound, "source ran {max} events ahead of the sink; bound {bound}");
    assert!(max >= BATCH * 2, "the sink should have fallen behind a little: {max}");
    assert!(
        shared
            .statuses
            .lock()
            .unwrap()
            .iter()
            .all(|(s, _)| *s == BatchStatus::Delivered)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_acknowledges_after_the_slowest_branch() {
    let fast = Arc::new(Shared::default());
    let slow = Arc::new(Shared::default());
    let report = run(
        topology(vec![
            node("src", Kind::Source, &[], Built::source(CountingSource(fast.clone()))),
            node(
                "fast",
                Kind::Sink,
                &["src"],
                Built::sink(SlowSink(fast.clone(), Duration::ZERO)),
            ),
            node(
                "slow",
                Kind::Sink,
                &["src"],
                Built::sink(SlowSink(slow.clone(), Duration::from_millis(5))),
            ),
        ]),
        None,
        None,
    )
    .await;
    assert!(!report.timed_out && report.failures.is_empty());
    assert_eq!(fast.received.load(Ordering::SeqCst), BATCH * BATCHES);
    assert_eq!(slow.received.load(Ordering::SeqCst), BATCH * BATCHES);
    let statuses = fast.statuses.lock().unwrap();
    let slow_done = slow.finalized_at.lock().unwrap();
    for (i, (status, acked_at)) in statuses.iter().enumerate() {
        assert_eq!(*status, BatchStatus::Delivered);
        assert!(
            *acked_at >= slow_done[i],
            "batch {i} acknowledged before the slow branch delivered it"
        );
    }
}
