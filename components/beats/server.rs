//! The `beats` server: accepts connections (optionally TLS), and on each one reads
//! windows of frames, sends their events downstream in batches under one
//! acknowledgement each, and writes the client an ACK for a batch only once every
//! sink has its events durably.
//!
//! Each connection runs two halves joined together: the reader decodes frames and
//! hands every batch both downstream and to the acker, in order; the acker waits for
//! the batches one after another and writes their ACKs, so a client that sends its
//! next window before the last one is acknowledged (Filebeat's `pipelining`) gets its
//! ACKs in order. A batch ends where a window ends, at `max_batch_events` /
//! `max_batch_bytes`, or where the client pauses in the middle of a window (all its
//! bytes so far are decoded); every batch is ACKed with the sequence number of its
//! last event, and a batch that ends a window too with that window's last one.
//!
//! What each outcome means for the client:
//! - delivered: ACK.
//! - rejected by a sink for good (bad data; counted by the sink, to its `dropped`
//!   output when something reads it): ACK too, as the `http` source answers 400 —
//!   sending the same events again would fail the same way.
//! - lost in flight (errored): the connection is closed without an ACK for it or
//!   anything after it; the client sends those windows again.
//! - a malformed or oversized frame, a timeout, the in-flight budget: the connection
//!   is closed; batches already handed downstream are still ACKed first when
//!   delivered, the window in progress is not, and the client sends it again.
//!
//! While a batch awaits delivery the acker sends a keepalive ACK every
//! `keepalive_secs` (v2): sequence 0 (which acknowledges nothing), or the last event
//! already acknowledged in the unfinished window, never more.

use super::config::BeatsSourceConfig;
use super::events::{
    AcceptFailed, BeatsEvents, CONNECTIONS, FrameTooLarge, InFlightLimit, InvalidJson, MalformedFrame, NotDelivered,
    Rejected,
};
use super::frame::{self, FrameError, Item, Version, encode};
use super::payload;
use crate::ack::{BatchNotifier, BatchReceiver, BatchStatus};
use crate::component::{BoxFuture, Fanout, Source, SourceContext};
use crate::components::http::limits::{
    Activity, Busy, ConnectionTimeouts, InFlight, LimitedListener, Peer, Reservation,
};
use crate::event::Event;
use crate::metrics::{ComponentMetrics, Gauge};
use crate::shutdown::ShutdownSignal;
use bytes::{Buf, BytesMut};
use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_rustls::rustls;
use vrl::value::Value;

/// How much more the read buffer may take in one read.
const READ_CHUNK: usize = 64 * 1024;
/// Batches of one connection handed downstream and not yet ACKed; past it the reader
/// waits (and so, through TCP, does the client).
const PIPELINED_BATCHES: usize = 8;

/// The `beats` source, built.
pub struct BeatsSource {
    pub config: BeatsSourceConfig,
    pub address: SocketAddr,
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// What every connection of one source shares.
struct Shared {
    config: BeatsSourceConfig,
    out: Fanout,
    metrics: Arc<ComponentMetrics>,
    events: BeatsEvents,
    in_flight: InFlight,
    connections: Gauge,
}

impl Source for BeatsSource {
    fn run(self: Box<Self>, cx: SourceContext) -> BoxFuture {
        Box::pin(async move {
            let SourceContext {
                id,
                out,
                mut shutdown,
                metrics,
            } = cx;
            let timeouts = ConnectionTimeouts {
                header: Duration::from_secs(self.config.header_timeout_secs),
                idle: Duration::from_secs(self.config.idle_timeout_secs),
            };
            let listener = LimitedListener::bind(self.address, self.config.max_connections, timeouts, &metrics)
                .await
                .map_err(|e| format!("cannot listen on {}: {e}", self.address))?;
            let shared = Arc::new(Shared {
                // Only the byte budget is used: a connection is not a request.
                in_flight: InFlight::new(usize::MAX, self.config.max_in_flight_bytes),
                config: self.config,
                out: out.default,
                events: BeatsEvents::new(&metrics),
                connections: metrics.gauge(&CONNECTIONS),
                metrics,
            });
            let tls = self.tls.map(tokio_rustls::TlsAcceptor::from);
            tracing::info!(component = %id, address = %self.address, tls = tls.is_some(), "Beats source listening.");
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((stream, peer)) => {
                            let (shared, tls, shutdown) = (shared.clone(), tls.clone(), shutdown.clone());
                            connections.spawn(async move {
                                // Between windows from the start: a client may connect
                                // before it has anything to send.
                                drop(peer.activity.begin());
                                match tls {
                                    None => serve(stream, peer, shared, shutdown).await,
                                    Some(tls) => match tls.accept(stream).await {
                                        Ok(stream) => {
                                            drop(peer.activity.begin());
                                            serve(stream, peer, shared, shutdown).await
                                        }
                                        // A handshake past header_timeout_secs is
                                        // counted as that, by the listener.
                                        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                                        Err(e) => shared.events.accept_failed.emit(AcceptFailed {
                                            peer: Some(peer.addr),
                                            error: e.to_string(),
                                        }),
                                    },
                                }
                            });
                        }
                        Err(e) => {
                            shared.events.accept_failed.emit(AcceptFailed { peer: None, error: e.to_string() });
                            // Out of file descriptors, say: do not spin.
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    },
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                    _ = shutdown.wait() => break,
                }
            }
            drop(listener);
            tracing::debug!(component = %id, open = connections.len(), "Beats source stopped accepting; finishing open connections.");
            while connections.join_next().await.is_some() {}
            Ok(())
        })
    }
}

/// One connection: the reader and the acker, until both are done.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    peer: Peer,
    shared: Arc<Shared>,
    shutdown: ShutdownSignal,
) {
    shared.connections.add(1);
    tracing::debug!(component = %shared.metrics.id, peer = %peer.addr, "Beats client connected.");
    let (rd, wr) = tokio::io::split(stream);
    let (tx, rx) = mpsc::channel(PIPELINED_BATCHES);
    let reader = Reader {
        shared: &shared,
        peer: peer.addr,
        activity: peer.activity.clone(),
        window: 0,
        in_window: 0,
        pending: Vec::new(),
        pending_bytes: 0,
        held: match shared.in_flight.try_bytes(0) {
            Ok(r) => r,
            Err(_) => unreachable!("an empty reservation always fits"),
        },
        tx,
    };
    let read = async {
        let end = reader.run(rd, shutdown).await;
        report(&shared, peer.addr, end);
    };
    tokio::join!(read, ack_loop(wr, rx, &shared, peer.addr));
    shared.connections.sub(1);
}

/// Counts and logs why a connection's reader stopped (the acker may still be writing
/// the ACKs of batches taken before).
fn report(shared: &Shared, peer: SocketAddr, end: End) {
    let ev = &shared.events;
    match end {
        End::Closed => tracing::debug!(component = %shared.metrics.id, %peer, "Beats client closed its connection."),
        End::Malformed(e) if e.is_too_large() => ev.frame_too_large.emit(FrameTooLarge {
            peer,
            error: e.to_string(),
        }),
        End::Malformed(FrameError::OverBudget) | End::OverBudget => ev.in_flight_limit.emit(InFlightLimit {
            peer,
            max_in_flight_bytes: shared.config.max_in_flight_bytes,
        }),
        End::Malformed(e) => ev.malformed_frame.emit(MalformedFrame {
            peer,
            error: e.to_string(),
        }),
        End::Broken(e) => tracing::debug!(
            component = %shared.metrics.id,
            %peer,
            error = %e,
            "A Beats connection broke off; the client sends its unacknowledged windows again."
        ),
        End::Stopped => tracing::debug!(
            component = %shared.metrics.id,
            %peer,
            "Closed a Beats connection: pipe is stopping, or a batch was not delivered."
        ),
    }
}

/// Why a connection's reader stopped.
enum End {
    /// The client closed the connection between frames.
    Closed,
    /// The client sent something that is not a frame pipe takes.
    Malformed(FrameError),
    /// Taking more would pass `max_in_flight_bytes`.
    OverBudget,
    /// A read failed, the connection timed out (counted by the listener) or ended
    /// in the middle of a frame.
    Broken(String),
    /// pipe is stopping, or the acker closed the connection.
    Stopped,
}

/// One decoded event waiting to be sent downstream.
struct Decoded {
    value: Value,
    seq: u32,
    version: Version,
    /// The last event of its window.
    ends_window: bool,
    bytes: usize,
}

/// An ACK to send once its batch is safe.
#[derive(Debug, Clone, Copy)]
struct AckPoint {
    version: Version,
    seq: u32,
    ends_window: bool,
}

/// A batch handed downstream, awaiting its acknowledgement.
struct Pending {
    ack: BatchReceiver,
    points: Vec<AckPoint>,
    events: u64,
    version: Version,
    /// No read deadline on the connection while this waits (the client waits too).
    _busy: Busy,
    /// Its events' share of `max_in_flight_bytes`, until it is ACKed.
    _held: Reservation,
}

struct Reader<'s> {
    shared: &'s Shared,
    peer: SocketAddr,
    activity: Arc<Activity>,
    /// The size of the current window (0: the client declared none).
    window: u32,
    /// Event frames read in the current window.
    in_window: u32,
    pending: Vec<Decoded>,
    pending_bytes: usize,
    /// The bytes this connection holds: its read buffer and its pending events.
    held: Reservation,
    tx: mpsc::Sender<Pending>,
}

impl Reader<'_> {
    async fn run<R: AsyncRead + Unpin>(mut self, mut rd: R, mut shutdown: ShutdownSignal) -> End {
        let max = self.shared.config.max_frame_bytes;
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        loop {
            let mut used = 0;
            loop {
                let frame = match frame::parse(&buf[used..], max) {
                    Ok(Some((frame, n))) => {
                        used += n;
                        frame
                    }
                    Ok(None) => break,
                    Err(e) => return End::Malformed(e),
                };
                if let Err(e) = self.take(frame, buf.capacity()) {
                    return End::Malformed(e);
                }
                while self.full() {
                    if let Err(end) = self.flush().await {
                        return end;
                    }
                }
            }
            buf.advance(used);
            // Everything received is decoded: what is pending goes now, whether or
            // not its window is complete.
            while !self.pending.is_empty() {
                if let Err(end) = self.flush().await {
                    return end;
                }
            }
            buf.reserve(READ_CHUNK);
            if self.held.resize(buf.capacity()).is_err() {
                return End::OverBudget;
            }
            let read = tokio::select! {
                biased;
                _ = shutdown.wait() => return End::Stopped,
                _ = self.tx.closed() => return End::Stopped,
                read = rd.read_buf(&mut buf) => read,
            };
            match read {
                Ok(0) if buf.is_empty() => return End::Closed,
                Ok(0) => {
                    return End::Broken(format!(
                        "the connection ended inside a frame ({} bytes of it read)",
                        buf.len()
                    ));
                }
                Ok(n) => self.shared.metrics.received(0, n as u64),
                Err(e) => return End::Broken(e.to_string()),
            }
        }
    }

    /// Decodes one frame into pending events; `base` is what the read buffer holds.
    fn take(&mut self, frame: frame::Frame<'_>, base: usize) -> Result<(), FrameError> {
        let Reader {
            shared,
            peer,
            window,
            in_window,
            pending,
            held,
            ..
        } = self;
        let max = shared.config.max_frame_bytes;
        let pending_bytes = Cell::new(self.pending_bytes);
        let mut admit = |inflating: usize| held.resize(base + pending_bytes.get() + inflating).is_ok();
        let mut each = |item: Item<'_>| match item {
            Item::Window { size, .. } => {
                *window = size;
                *in_window = 0;
            }
            Item::Event { version, seq, body } => {
                let value = payload::fields(&body).unwrap_or_else(|kept| {
                    shared.events.invalid_json.emit(InvalidJson { peer: *peer });
                    kept
                });
                *in_window = in_window.saturating_add(1);
                let ends_window = *window > 0 && *in_window >= *window;
                if ends_window {
                    *in_window = 0;
                }
                let bytes = body.len();
                pending_bytes.set(pending_bytes.get() + bytes);
                pending.push(Decoded {
                    value,
                    seq,
                    version,
                    ends_window,
                    bytes,
                });
            }
        };
        let opened = frame::open(frame, max, &mut admit, &mut each);
        self.pending_bytes = pending_bytes.get();
        opened?;
        self.held
            .resize(base + self.pending_bytes)
            .map_err(|_| FrameError::OverBudget)
    }

    /// True when the pending events fill a batch.
    fn full(&self) -> bool {
        let c = &self.shared.config;
        self.pending.len() >= c.max_batch_events || self.pending_bytes >= c.max_batch_bytes
    }

    /// Sends one batch from the front of the pending events downstream, and hands it
    /// to the acker.
    async fn flush(&mut self) -> Result<(), End> {
        let c = &self.shared.config;
        let mut count = 0;
        let mut bytes = 0;
        for d in &self.pending {
            if count > 0 && (count == c.max_batch_events || bytes + d.bytes > c.max_batch_bytes) {
                break;
            }
            count += 1;
            bytes += d.bytes;
        }
        let (notifier, ack) = BatchNotifier::new();
        let points = ack_points(&self.pending[..count]);
        let batch: Vec<Event> = self
            .pending
            .drain(..count)
            .map(|d| {
                let event = Event::new(d.value);
                if c.acknowledgements {
                    event.with_notifier(&notifier)
                } else {
                    event
                }
            })
            .collect();
        self.pending_bytes -= bytes;
        self.shared.metrics.received(count as u64, 0);
        let pending = Pending {
            ack,
            version: points[0].version,
            points,
            events: count as u64,
            _busy: self.activity.begin(),
            _held: self.held.split(bytes),
        };
        if self.tx.send(pending).await.is_err() {
            return Err(End::Stopped);
        }
        if !self.shared.out.send(batch).await {
            return Err(End::Stopped);
        }
        drop(notifier);
        Ok(())
    }
}

/// The ACKs a batch earns, in order: the last event of every window it ends, and
/// its own last event (a partial ACK when that one ends no window).
fn ack_points(batch: &[Decoded]) -> Vec<AckPoint> {
    batch
        .iter()
        .enumerate()
        .filter(|(i, d)| d.ends_window || i + 1 == batch.len())
        .map(|(_, d)| AckPoint {
            version: d.version,
            seq: d.seq,
            ends_window: d.ends_window,
        })
        .collect()
}

/// Writes the ACKs of a connection's batches in order as each is acknowledged
/// downstream, keepalives while one waits; stops at the first batch not delivered.
async fn ack_loop<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut rx: mpsc::Receiver<Pending>,
    shared: &Shared,
    peer: SocketAddr,
) {
    let keepalive = (shared.config.keepalive_secs > 0).then(|| Duration::from_secs(shared.config.keepalive_secs));
    // The last ACK sent, when it left its window unfinished.
    let mut partial: Option<u32> = None;
    while let Some(mut p) = rx.recv().await {
        let status = loop {
            let tick = async {
                match keepalive {
                    Some(d) if p.version == Version::V2 => tokio::time::sleep(d).await,
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                status = &mut p.ack => break status.unwrap_or(BatchStatus::Errored),
                () = tick => {
                    let frame = encode::ack(Version::V2, partial.unwrap_or(0));
                    if write(&mut wr, &frame).await.is_err() {
                        return;
                    }
                }
            }
        };
        if shared.config.acknowledgements {
            shared.metrics.acknowledged(status, p.events);
        }
        match status {
            BatchStatus::Delivered => {}
            BatchStatus::Rejected => shared.events.rejected.emit(Rejected { peer }),
            BatchStatus::Errored => {
                shared.events.not_delivered.emit(NotDelivered { peer });
                return;
            }
        }
        let mut frames = Vec::with_capacity(6 * p.points.len());
        for point in &p.points {
            frames.extend_from_slice(&encode::ack(point.version, point.seq));
            partial = (!point.ends_window).then_some(point.seq);
        }
        if write(&mut wr, &frames).await.is_err() {
            return;
        }
    }
    let _ = wr.shutdown().await;
}

async fn write<W: AsyncWrite + Unpin>(wr: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    wr.write_all(bytes).await?;
    wr.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    fn shared(keepalive_secs: u64) -> Shared {
        let config: BeatsSourceConfig = crate::component::parse_options(
            toml::from_str(&format!("address = \"127.0.0.1:0\"\nkeepalive_secs = {keepalive_secs}")).unwrap(),
        )
        .unwrap();
        let metrics = ComponentMetrics::unchecked("beats", "source");
        Shared {
            in_flight: InFlight::new(usize::MAX, config.max_in_flight_bytes),
            config,
            out: Fanout::default(),
            events: BeatsEvents::new(&metrics),
            connections: metrics.gauge(&CONNECTIONS),
            metrics,
        }
    }

    fn pending(s: &Shared, points: Vec<AckPoint>) -> (Pending, Arc<BatchNotifier>) {
        let (notifier, ack) = BatchNotifier::new();
        let p = Pending {
            ack,
            version: points[0].version,
            points,
            events: 1,
            _busy: Arc::new(Activity::default()).begin(),
            _held: s.in_flight.try_bytes(0).unwrap(),
        };
        (p, notifier)
    }

    async fn read_acks(client: &mut tokio::io::DuplexStream, n: usize) -> Vec<(u8, u32)> {
        let mut out = Vec::new();
        for _ in 0..n {
            let mut f = [0u8; 6];
            client.read_exact(&mut f).await.unwrap();
            assert_eq!(f[1], b'A');
            out.push((f[0], u32::from_be_bytes([f[2], f[3], f[4], f[5]])));
        }
        out
    }

    /// While a batch waits the client hears keepalives that acknowledge nothing new
    /// (0, then the partial ACK already sent in that window); then the batch's ACKs
    /// in order; a batch lost in flight ends the connection without its ACK.
    #[tokio::test]
    async fn acks_come_in_order_after_delivery_with_keepalives_meanwhile() {
        let s = shared(1);
        let (mut client, server) = tokio::io::duplex(1024);
        let (tx, rx) = mpsc::channel(8);
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let acker = async { ack_loop(server, rx, &s, peer).await };
        let driver = async {
            let point = |seq, ends_window| AckPoint {
                version: Version::V2,
                seq,
                ends_window,
            };
            let (first, n1) = pending(&s, vec![point(4, false)]);
            let (second, n2) = pending(&s, vec![point(6, true), point(2, false)]);
            let (third, n3) = pending(&s, vec![point(3, false)]);
            tx.send(first).await.unwrap();
            tx.send(second).await.unwrap();
            assert_eq!(
                read_acks(&mut client, 1).await,
                vec![(b'2', 0)],
                "a keepalive while the first waits"
            );
            n2.update(BatchStatus::Delivered);
            drop(n2);
            drop(n1);
            assert_eq!(read_acks(&mut client, 3).await, vec![(b'2', 4), (b'2', 6), (b'2', 2)]);
            tx.send(third).await.unwrap();
            assert_eq!(
                read_acks(&mut client, 1).await,
                vec![(b'2', 2)],
                "the keepalive repeats the partial ACK of the unfinished window"
            );
            n3.update(BatchStatus::Errored);
            drop(n3);
            let mut rest = Vec::new();
            client.read_to_end(&mut rest).await.unwrap();
            assert!(rest.is_empty(), "no ACK for a batch lost in flight: {rest:?}");
        };
        tokio::join!(acker, driver);
        assert_eq!(s.metrics.snapshot().errors["not_delivered"], 1);
    }

    fn decoded(seq: u32, ends_window: bool) -> Decoded {
        Decoded {
            value: Value::Null,
            seq,
            version: Version::V2,
            ends_window,
            bytes: 1,
        }
    }

    #[test]
    fn a_batch_acks_each_window_it_ends_and_its_last_event() {
        let seqs = |batch: Vec<Decoded>| {
            ack_points(&batch)
                .iter()
                .map(|p| (p.seq, p.ends_window))
                .collect::<Vec<_>>()
        };
        let d = decoded;
        assert_eq!(
            seqs(vec![d(1, false), d(2, true), d(1, false), d(2, true)]),
            vec![(2, true), (2, true)]
        );
        assert_eq!(
            seqs(vec![d(7, true), d(8, false), d(9, false)]),
            vec![(7, true), (9, false)]
        );
        assert_eq!(seqs(vec![d(4, false)]), vec![(4, false)]);
    }
}
