//! Limits for a network source facing clients it does not trust: how many connections
//! are open at once, how long a connection may stay silent or half-sent, and how many
//! requests and bytes are being handled at once. Nothing here parses HTTP, so another
//! TCP source (a later `beats` source) can use the same pieces under the same option
//! names (`max_connections`, `header_timeout_secs`, `idle_timeout_secs`,
//! `max_in_flight_requests`, `max_in_flight_bytes`):
//!
//! - [`LimitedListener`]: accepts at most `max_connections` connections at once. Past
//!   it, new connections are not accepted: they wait in the kernel's accept backlog
//!   (and past that the kernel refuses them) until an open one closes.
//! - [`GuardedStream`]: each accepted connection. It closes the connection when a
//!   request has begun but is not handed over within `header` (bytes of a request
//!   line and headers, or a TLS handshake, trickling in), and when no request comes
//!   for `idle` after the last one. While a request is being handled there is no
//!   deadline: the protocol code bounds that (body timeout, acknowledgement timeout).
//! - [`Activity`]: how the protocol code tells a connection's stream that a request
//!   is being handled ([`Activity::begin`]).
//! - [`InFlight`]: request slots and a byte budget shared by every connection of a
//!   source; past either the caller refuses (HTTP: 503 + `Retry-After`) rather than
//!   waits, so memory stays bounded whatever clients do.

use super::events::{ConnectionLimit, HeaderTimeout};
use crate::metrics::{ComponentMetrics, Emitter};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// Default of `max_connections`.
pub fn default_max_connections() -> usize {
    1024
}
/// Default of `header_timeout_secs`.
pub fn default_header_timeout_secs() -> u64 {
    10
}
/// Default of `body_timeout_secs`.
pub fn default_body_timeout_secs() -> u64 {
    30
}
/// Default of `idle_timeout_secs`.
pub fn default_idle_timeout_secs() -> u64 {
    60
}
/// Default of `max_in_flight_requests`.
pub fn default_max_in_flight_requests() -> usize {
    256
}
/// Default of `max_in_flight_bytes`.
pub fn default_max_in_flight_bytes() -> usize {
    256 * 1024 * 1024
}

/// The most permits a tokio semaphore holds; larger limits are clamped to it.
const MAX_PERMITS: usize = Semaphore::MAX_PERMITS;

/// The two deadlines a connection lives under between requests.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionTimeouts {
    /// From the first byte of a request (or of the connection) until the request is
    /// handed over.
    pub header: Duration,
    /// From the end of one request until the first byte of the next.
    pub idle: Duration,
}

/// What the request handling tells a connection's stream.
#[derive(Debug, Default)]
pub struct Activity {
    started: AtomicU64,
    busy: AtomicU64,
}

impl Activity {
    /// A request was handed over; the connection has no deadline until the returned
    /// guard drops (then the idle timeout starts).
    pub fn begin(self: &Arc<Self>) -> Busy {
        self.started.fetch_add(1, Ordering::Relaxed);
        self.busy.fetch_add(1, Ordering::Relaxed);
        Busy(self.clone())
    }
}

/// A request being handled on a connection; see [`Activity::begin`].
#[derive(Debug)]
pub struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A client as the server sees it: its address and its connection's [`Activity`].
#[derive(Debug, Clone)]
pub struct Peer {
    /// The client's address.
    pub addr: SocketAddr,
    /// What the request handling reports about this connection.
    pub activity: Arc<Activity>,
}

/// A TCP listener that holds at most `max_connections` connections open at once.
pub struct LimitedListener {
    inner: TcpListener,
    permits: Arc<Semaphore>,
    max: usize,
    timeouts: ConnectionTimeouts,
    component: Arc<str>,
    connection_limit: Emitter<ConnectionLimit>,
    header_timeout: Emitter<HeaderTimeout>,
}

impl LimitedListener {
    /// Listens on `address`, counting in `metrics`.
    pub async fn bind(
        address: SocketAddr,
        max_connections: usize,
        timeouts: ConnectionTimeouts,
        metrics: &ComponentMetrics,
    ) -> io::Result<Self> {
        let max = max_connections.clamp(1, MAX_PERMITS);
        Ok(LimitedListener {
            inner: TcpListener::bind(address).await?,
            permits: Arc::new(Semaphore::new(max)),
            max,
            timeouts,
            component: Arc::from(metrics.id.as_str()),
            connection_limit: metrics.emitter(),
            header_timeout: metrics.emitter(),
        })
    }

    /// The next connection, once fewer than `max_connections` are open. Until then
    /// new connections stay in the kernel's accept backlog.
    pub async fn accept(&self) -> io::Result<(GuardedStream<TcpStream>, Peer)> {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                self.connection_limit.emit(ConnectionLimit {
                    max_connections: self.max,
                });
                self.permits
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| io::Error::other("connection limiter closed"))?
            }
        };
        let (stream, addr) = self.inner.accept().await?;
        let activity = Arc::new(Activity::default());
        let peer = Peer {
            addr,
            activity: activity.clone(),
        };
        let stream = GuardedStream::new(
            stream,
            activity,
            self.timeouts,
            addr,
            self.component.clone(),
            self.header_timeout.clone(),
            permit,
        );
        Ok((stream, peer))
    }

    /// The address listened on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

impl axum_server::Address for Peer {
    type Stream = GuardedStream<TcpStream>;
    type Listener = LimitedListener;
}

impl axum_server::AddrListener<GuardedStream<TcpStream>, Peer> for LimitedListener {
    async fn bind_to(_addr: Peer) -> io::Result<Self> {
        Err(io::Error::other(
            "a LimitedListener is made with LimitedListener::bind and given to Server::from_listener",
        ))
    }

    async fn accept_stream(&self) -> io::Result<(GuardedStream<TcpStream>, Peer)> {
        self.accept().await
    }

    fn get_local_addr(&self) -> io::Result<Peer> {
        Ok(Peer {
            addr: self.local_addr()?,
            activity: Arc::default(),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// A request (or the connection) has begun; it must be handed over by the deadline.
    Header,
    /// Between requests; the next must begin by the deadline.
    Idle,
    /// A request is being handled: no deadline here.
    Busy,
}

/// A connection that closes itself when a client is too slow between requests (see
/// the module doc). Holds its connection slot until dropped.
pub struct GuardedStream<S> {
    inner: S,
    activity: Arc<Activity>,
    timeouts: ConnectionTimeouts,
    phase: Phase,
    seen_started: u64,
    deadline: Instant,
    sleep: Pin<Box<Sleep>>,
    expired: bool,
    peer: SocketAddr,
    component: Arc<str>,
    header_timeout: Emitter<HeaderTimeout>,
    _slot: OwnedSemaphorePermit,
}

impl<S> GuardedStream<S> {
    fn new(
        inner: S,
        activity: Arc<Activity>,
        timeouts: ConnectionTimeouts,
        peer: SocketAddr,
        component: Arc<str>,
        header_timeout: Emitter<HeaderTimeout>,
        slot: OwnedSemaphorePermit,
    ) -> Self {
        let deadline = Instant::now() + timeouts.header;
        GuardedStream {
            inner,
            activity,
            timeouts,
            phase: Phase::Header,
            seen_started: 0,
            deadline,
            sleep: Box::pin(tokio::time::sleep_until(deadline)),
            expired: false,
            peer,
            component,
            header_timeout,
            _slot: slot,
        }
    }

    /// Moves between phases from what the request handling reported and whether
    /// bytes just arrived.
    fn update(&mut self, got_bytes: bool) {
        let busy = self.activity.busy.load(Ordering::Relaxed) > 0;
        let started = self.activity.started.load(Ordering::Relaxed);
        if busy {
            self.phase = Phase::Busy;
            self.seen_started = started;
            return;
        }
        if self.phase == Phase::Busy || started != self.seen_started {
            // A request ended since the last look. (Bytes of the next request that
            // were read while this one was handled then count as idle time: still
            // bounded, by the idle timeout.)
            self.seen_started = started;
            self.phase = Phase::Idle;
            self.deadline = Instant::now() + self.timeouts.idle;
        }
        if got_bytes && self.phase == Phase::Idle {
            self.phase = Phase::Header;
            self.deadline = Instant::now() + self.timeouts.header;
        }
    }

    /// Pending while the deadline of the current phase lies ahead; once it passed,
    /// marks the connection expired and says so.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.phase == Phase::Busy {
            return Poll::Pending;
        }
        if self.sleep.deadline() != self.deadline {
            self.sleep.as_mut().reset(self.deadline);
        }
        ready!(self.sleep.as_mut().poll(cx));
        self.expired = true;
        if self.phase == Phase::Header {
            self.header_timeout.emit(HeaderTimeout {
                peer: self.peer,
                timeout_secs: self.timeouts.header.as_secs_f64(),
            });
        } else {
            tracing::debug!(component = %self.component, peer = %self.peer, "Closing a connection idle for idle_timeout_secs.");
        }
        Poll::Ready(())
    }

    fn timed_out(&self) -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, "the client was too slow; connection closed")
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for GuardedStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.expired {
            return Poll::Ready(Err(this.timed_out()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                this.update(buf.filled().len() > before);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                this.update(false);
                ready!(this.poll_deadline(cx));
                if this.phase == Phase::Idle {
                    // Nothing half-sent: end the connection like a client closing it.
                    Poll::Ready(Ok(()))
                } else {
                    Poll::Ready(Err(this.timed_out()))
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> GuardedStream<S> {
    /// A write that cannot proceed is bounded by the deadline too: a client that
    /// stops reading its responses does not hold the connection forever.
    fn pending_write<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        self.update(false);
        ready!(self.poll_deadline(cx));
        Poll::Ready(Err(self.timed_out()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for GuardedStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.expired {
            return Poll::Ready(Err(this.timed_out()));
        }
        match Pin::new(&mut this.inner).poll_write(cx, data) {
            Poll::Pending => this.pending_write(cx),
            done => done,
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.expired {
            return Poll::Ready(Err(this.timed_out()));
        }
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Pending => this.pending_write(cx),
            done => done,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Pending => this.pending_write(cx),
            done => done,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Why [`InFlight`] refused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Refused {
    /// `max_in_flight_requests` requests are being handled.
    Requests(usize),
    /// Taking more would put more than `max_in_flight_bytes` in memory.
    Bytes(usize),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Requests(n) => write!(f, "max_in_flight_requests ({n}) requests are in flight; retry later"),
            Refused::Bytes(n) => write!(
                f,
                "the requests in flight would hold more than max_in_flight_bytes ({n} bytes); retry later"
            ),
        }
    }
}

/// Request slots and a byte budget shared by every connection of one source.
#[derive(Debug)]
pub struct InFlight {
    requests: Arc<Semaphore>,
    max_requests: usize,
    bytes: Arc<ByteBudget>,
}

impl InFlight {
    /// At most `max_requests` requests holding at most `max_bytes` bytes together.
    pub fn new(max_requests: usize, max_bytes: usize) -> Self {
        let max_requests = max_requests.clamp(1, MAX_PERMITS);
        InFlight {
            requests: Arc::new(Semaphore::new(max_requests)),
            max_requests,
            bytes: Arc::new(ByteBudget {
                used: AtomicUsize::new(0),
                max: max_bytes,
            }),
        }
    }

    /// A request slot, held until dropped; never waits.
    pub fn try_request(&self) -> Result<OwnedSemaphorePermit, Refused> {
        self.requests
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refused::Requests(self.max_requests))
    }

    /// `n` bytes of the budget, held until the reservation drops; never waits.
    pub fn try_bytes(&self, n: usize) -> Result<Reservation, Refused> {
        let mut r = Reservation {
            budget: self.bytes.clone(),
            held: 0,
        };
        r.resize(n)?;
        Ok(r)
    }
}

#[derive(Debug)]
struct ByteBudget {
    used: AtomicUsize,
    max: usize,
}

/// Bytes taken from an [`InFlight`] budget; given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<ByteBudget>,
    held: usize,
}

impl Reservation {
    /// Holds exactly `n` bytes from now on: shrinking always works, growing only
    /// within the budget (else nothing changes).
    pub fn resize(&mut self, n: usize) -> Result<(), Refused> {
        if n <= self.held {
            self.budget.used.fetch_sub(self.held - n, Ordering::Relaxed);
            self.held = n;
            return Ok(());
        }
        let more = n - self.held;
        let max = self.budget.max;
        self.budget
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(more).filter(|total| *total <= max)
            })
            .map_err(|_| Refused::Bytes(max))?;
        self.held = n;
        Ok(())
    }

    /// The bytes held.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Moves `n` of the bytes held (all of them when fewer are held) into a
    /// reservation of their own, for a part that lives on separately (a batch
    /// awaiting its acknowledgement); the budget is not touched.
    pub fn split(&mut self, n: usize) -> Reservation {
        let n = n.min(self.held);
        self.held -= n;
        Reservation {
            budget: self.budget.clone(),
            held: n,
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.held, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_slots_and_byte_budget_refuse_past_their_limit() {
        let f = InFlight::new(2, 100);
        let a = f.try_request().unwrap();
        let _b = f.try_request().unwrap();
        assert_eq!(f.try_request().unwrap_err(), Refused::Requests(2));
        drop(a);
        assert!(f.try_request().is_ok());

        let mut r = f.try_bytes(60).unwrap();
        assert_eq!(f.try_bytes(41).unwrap_err(), Refused::Bytes(100));
        let s = f.try_bytes(40).unwrap();
        assert!(r.resize(61).is_err(), "growing past the budget is refused");
        assert_eq!(r.held(), 60, "a refused growth changes nothing");
        r.resize(10).unwrap();
        assert!(f.try_bytes(50).is_ok());
        drop((r, s));
        assert!(f.try_bytes(100).is_ok(), "dropped reservations give their bytes back");

        let mut whole = f.try_bytes(80).unwrap();
        let part = whole.split(30);
        assert_eq!((whole.held(), part.held()), (50, 30));
        assert!(f.try_bytes(21).is_err(), "splitting takes nothing more from the budget");
        drop(whole);
        assert!(f.try_bytes(70).is_ok(), "each part gives back its own bytes");
        assert_eq!(part.held(), 30);
    }

    #[tokio::test]
    async fn a_silent_connection_is_closed_after_the_header_timeout_and_an_idle_one_after_the_idle_timeout() {
        use tokio::io::AsyncReadExt;
        let metrics = ComponentMetrics::unchecked("t", "source");
        let timeouts = ConnectionTimeouts {
            header: Duration::from_millis(300),
            idle: Duration::from_millis(600),
        };
        let listener = LimitedListener::bind("127.0.0.1:0".parse().unwrap(), 4, timeouts, &metrics)
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = TcpStream::connect(addr).await.unwrap();
        let (mut stream, _peer) = listener.accept().await.unwrap();
        let mut buf = [0u8; 16];
        let started = Instant::now();
        let err = stream.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= timeouts.header);
        assert_eq!(metrics.snapshot().errors["header_timeout"], 1);

        // While a request is handled there is no deadline; once it ends, the idle
        // timeout applies and ends the connection like a client closing it.
        let _client = TcpStream::connect(addr).await.unwrap();
        let (mut stream, peer) = listener.accept().await.unwrap();
        let busy = peer.activity.begin();
        let read = tokio::time::timeout(Duration::from_millis(1500), stream.read(&mut buf)).await;
        assert!(read.is_err(), "no deadline while a request is handled");
        drop(busy);
        let started = Instant::now();
        assert_eq!(stream.read(&mut buf).await.unwrap(), 0);
        assert!(started.elapsed() >= timeouts.idle);
        assert_eq!(
            metrics.snapshot().errors["header_timeout"],
            1,
            "idle closing is no error"
        );
    }
}
