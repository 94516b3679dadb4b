//! The disk buffer in-process: acknowledged at sync, read again after a restart from
//! the acknowledged position, a full disk that holds the acknowledgement back, a full
//! buffer that drops and counts, a damaged record skipped and counted.

use super::*;
use crate::ack::BatchReceiver;
use crate::metrics::ComponentMetrics;
use std::path::Path;

fn config(max_size: u64, when_full: WhenFull) -> BufferConfig {
    BufferConfig {
        kind: BufferKind::Disk,
        max_size: Some(max_size),
        when_full,
    }
}

/// A batch of `n` events numbered from `first`, tied to a source notifier.
fn batch(first: u64, n: u64, pad: usize) -> (EventBatch, BatchReceiver) {
    let (notifier, rx) = BatchNotifier::new();
    let events = (first..first + n)
        .map(|i| {
            let mut e = Event::new(vrl::value::Value::Object(Default::default()));
            e.insert("n", i as i64);
            e.insert("pad", "x".repeat(pad));
            e.with_notifier(&notifier)
        })
        .collect();
    (events, rx)
}

fn numbers(b: &EventBatch) -> Vec<i64> {
    b.iter()
        .map(|e| match e.get("n") {
            Some(vrl::value::Value::Integer(i)) => *i,
            other => panic!("no n: {other:?}"),
        })
        .collect()
}

struct Running {
    input: mpsc::Sender<EventBatch>,
    output: mpsc::Receiver<EventBatch>,
    buffer: DiskBuffer,
    metrics: Arc<ComponentMetrics>,
}

/// Opens the buffer in `dir`, once a buffer closed before has let go of it (as a
/// restarted process would).
fn start(dir: &Path, config: &BufferConfig) -> Running {
    let deadline = Instant::now() + Duration::from_secs(10);
    while in_use(dir) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let metrics = ComponentMetrics::new("sink", "sink", "test", &[], &[]);
    let (input, rx) = mpsc::channel(4);
    let (output, buffer) = open(config, dir, &metrics, rx).unwrap();
    Running {
        input,
        output,
        buffer,
        metrics,
    }
}

async fn status(rx: BatchReceiver) -> BatchStatus {
    tokio::time::timeout(Duration::from_secs(10), ack::wait(rx))
        .await
        .expect("the source is acknowledged")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_are_acknowledged_at_sync_and_a_restart_reads_what_the_sink_did_not_deliver() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(64 << 20, WhenFull::Block);
    let mut r = start(dir.path(), &cfg);
    let mut acks = Vec::new();
    for i in 0..3 {
        let (b, ack) = batch(i * 10, 10, 10);
        r.input.send(b).await.unwrap();
        acks.push(ack);
    }
    // Acknowledged before the sink has read anything.
    for ack in acks {
        assert_eq!(status(ack).await, BatchStatus::Delivered);
    }
    assert_eq!(r.metrics.snapshot().gauges.get("pipe_buffer_events"), Some(&30));
    let first = r.output.recv().await.unwrap();
    assert_eq!(numbers(&first), (0..10).collect::<Vec<_>>());
    first.into_iter().for_each(|e| e.finalize(BatchStatus::Delivered));
    let second = r.output.recv().await.unwrap();
    assert_eq!(numbers(&second)[0], 10);
    // The process stops here: the second batch was never delivered, the third never read.
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(r.input);
    drop(second);
    drop(r.output);
    r.buffer.finish(Duration::from_secs(5)).await;
    drop(r.buffer);

    let mut again = start(dir.path(), &cfg);
    assert_eq!(again.metrics.snapshot().gauges.get("pipe_buffer_events"), Some(&20));
    let b = again.output.recv().await.unwrap();
    assert_eq!(numbers(&b)[0], 10, "delivery resumes at the first undelivered batch");
    b.into_iter().for_each(|e| e.finalize(BatchStatus::Delivered));
    let b = again.output.recv().await.unwrap();
    assert_eq!(numbers(&b)[0], 20);
    b.into_iter().for_each(|e| e.finalize(BatchStatus::Delivered));
    drop(again.input);
    assert!(again.output.recv().await.is_none(), "the buffer ends after its input");
    again.buffer.finish(Duration::from_secs(5)).await;
    assert_eq!(again.metrics.snapshot().gauges.get("pipe_buffer_events"), Some(&0));
    drop(again.buffer);
    // Everything delivered: a third start has nothing to give.
    let mut third = start(dir.path(), &cfg);
    drop(third.input);
    assert!(third.output.recv().await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_holds_the_acknowledgement_until_the_write_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = start(dir.path(), &config(64 << 20, WhenFull::Block));
    r.buffer.inject_write_errors(3);
    let (b, mut ack) = batch(0, 5, 10);
    r.input.send(b).await.unwrap();
    // Three failed writes back off 50 + 100 + 200 ms: nothing is acknowledged meanwhile.
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert!(ack.try_recv().is_err(), "acknowledged before the write succeeded");
    assert_eq!(status(ack).await, BatchStatus::Delivered);
    assert_eq!(r.metrics.snapshot().errors.get("buffer_write_failed"), Some(&3));
    let got = r.output.recv().await.unwrap();
    assert_eq!(numbers(&got), vec![0, 1, 2, 3, 4]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_buffer_drops_newest_acknowledged_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    // 1 MiB and a sink that never reads; each batch is about 100 KB before LZ4, and
    // random-looking so it does not compress away.
    let r = start(dir.path(), &config(1 << 20, WhenFull::DropNewest));
    let mut dropped_seen = false;
    for i in 0..60u64 {
        let (mut b, ack) = batch(i * 10, 10, 0);
        for (j, e) in b.iter_mut().enumerate() {
            let noise: String = (0..10_000u64)
                .map(|k| char::from(b'a' + ((k * 7919 + i * 104_729 + j as u64 * 31) % 26) as u8))
                .collect();
            e.insert("pad", noise);
        }
        r.input.send(b).await.unwrap();
        assert_eq!(status(ack).await, BatchStatus::Delivered, "batch {i}");
        dropped_seen |= r.metrics.snapshot().discarded.contains_key("buffer_full");
    }
    assert!(dropped_seen, "nothing was dropped: {:?}", r.metrics.snapshot());
    let bytes = r
        .metrics
        .snapshot()
        .gauges
        .get("pipe_buffer_bytes")
        .copied()
        .unwrap_or(0);
    assert!(bytes <= 1 << 20, "the buffer holds {bytes} bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_record_is_skipped_and_counted_and_the_rest_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(64 << 20, WhenFull::Block);
    let r = start(dir.path(), &cfg);
    for i in 0..5 {
        let (b, ack) = batch(i * 10, 10, 100);
        r.input.send(b).await.unwrap();
        // One batch per record: wait for each.
        assert_eq!(status(ack).await, BatchStatus::Delivered);
    }
    drop(r.input);
    drop(r.output);
    r.buffer.finish(Duration::from_secs(5)).await;
    drop(r.buffer);
    let (_, seg) = log::segments(dir.path()).unwrap().pop().unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    let scan = log::scan(&bytes);
    assert_eq!(scan.records.len(), 5);
    let third = scan.records[2];
    bytes[(third.offset + third.len / 2) as usize] ^= 0xff;
    std::fs::write(&seg, bytes).unwrap();

    let mut again = start(dir.path(), &cfg);
    assert_eq!(again.metrics.snapshot().errors.get("buffer_corrupt_record"), Some(&1));
    let mut firsts = Vec::new();
    drop(again.input);
    while let Some(b) = again.output.recv().await {
        firsts.push(numbers(&b)[0]);
        b.into_iter().for_each(|e| e.finalize(BatchStatus::Delivered));
    }
    assert_eq!(firsts, vec![0, 10, 30, 40]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejection_after_the_buffer_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = start(dir.path(), &config(64 << 20, WhenFull::Block));
    let (b, ack) = batch(0, 4, 1);
    r.input.send(b).await.unwrap();
    assert_eq!(status(ack).await, BatchStatus::Delivered);
    let got = r.output.recv().await.unwrap();
    got.into_iter().for_each(|e| e.finalize(BatchStatus::Rejected));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(r.metrics.snapshot().discarded.get("rejected_after_buffer"), Some(&4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reattached_sink_reads_what_the_replaced_sink_did_not_deliver() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(64 << 20, WhenFull::Block);
    let mut r = start(dir.path(), &cfg);
    for i in 0..8 {
        let (b, ack) = batch(i * 10, 10, 10);
        r.input.send(b).await.unwrap();
        assert_eq!(status(ack).await, BatchStatus::Delivered);
    }
    // The first sink delivers one batch, holds the next, and is replaced while the
    // reader waits on its full channel.
    let first = r.output.recv().await.unwrap();
    first.into_iter().for_each(|e| e.finalize(BatchStatus::Delivered));
    let held = r.output.recv().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (mut successor, generation) = r.buffer.reattach(&cfg);
    assert!(r.buffer.is_read_by(generation));
    drop(held);
    // The replaced sink's input closes; what was queued for it is dropped undelivered.
    while let Some(b) = r.output.recv().await {
        drop(b);
    }
    let mut seen = Vec::new();
    while seen.len() < 70 {
        let b = tokio::time::timeout(Duration::from_secs(10), successor.recv())
            .await
            .expect("the successor is fed")
            .expect("the buffer is open");
        seen.extend(numbers(&b));
        b.into_iter().for_each(|e| e.finalize(BatchStatus::Delivered));
    }
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(
        seen,
        (10..80).collect::<Vec<_>>(),
        "every batch but the delivered one reaches the successor"
    );
    drop(r.input);
    assert!(
        tokio::time::timeout(Duration::from_secs(10), successor.recv())
            .await
            .unwrap()
            .is_none()
    );
    r.buffer.finish(Duration::from_secs(5)).await;
    assert_eq!(r.metrics.snapshot().gauges.get("pipe_buffer_events"), Some(&0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_buffer_whose_sink_is_gone_sends_new_batches_back_undelivered() {
    let dir = tempfile::tempdir().unwrap();
    // One record fills it: the next waits for room.
    let r = start(dir.path(), &config(1, WhenFull::Block));
    let (a, ack) = batch(0, 10, 10);
    r.input.send(a).await.unwrap();
    assert_eq!(status(ack).await, BatchStatus::Delivered);
    let mut output = r.output;
    let held = output.recv().await.unwrap();
    // The sink fails: what it held and its input are gone.
    drop(held);
    drop(output);
    let (b, ack) = batch(10, 10, 10);
    r.input.send(b).await.unwrap();
    assert_eq!(
        status(ack).await,
        BatchStatus::Errored,
        "no room will come: the batch goes back to its source instead of blocking it"
    );
    drop(r.input);
    r.buffer.finish(Duration::from_secs(5)).await;
}
