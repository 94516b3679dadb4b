//! The internal events of the `http` source (and of the connection limits in
//! [`super::limits`]).
//!
//! How they are classified: what is wrong with a request itself, so that sending it
//! again fails the same way (a malformed or oversized body, missing credentials, events
//! a sink refused), is [`Fault::Data`]; a client, the network or the pipeline being too
//! slow or too busy at the moment (timeouts, connection and in-flight limits,
//! backpressure, events not delivered in time), where a retry may well succeed, is
//! [`Fault::External`]. Failures before the events are handed downstream are at stage
//! `receiving`, those after at `sending`. A request refused because pipe is stopping is
//! no failure of anyone: a counter of its own.

use super::limits::Refused;
use crate::error::Fault;
use crate::metrics::{Counts, Emitter, EventSpec, InternalEvent, Stage};
use std::net::SocketAddr;

const fn error(fault: Fault, stage: Stage) -> Counts {
    Counts::Error { fault, stage }
}

/// Every connection slot was taken when a new connection came.
pub struct ConnectionLimit {
    pub max_connections: usize,
}

impl InternalEvent for ConnectionLimit {
    const SPEC: EventSpec = EventSpec {
        name: "connection_limit",
        counts: error(Fault::External, Stage::Receiving),
        doc: "`max_connections` connections were open when another came; it waited in the accept backlog until one closed.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::warn!(
            component,
            suppressed,
            max_connections = self.max_connections,
            "Every connection slot is taken; new connections wait in the accept backlog until one closes."
        );
    }
}

/// A connection could not be accepted or set up (e.g. a failed TLS handshake).
pub struct AcceptFailed {
    pub peer: Option<SocketAddr>,
    pub error: String,
}

impl InternalEvent for AcceptFailed {
    const SPEC: EventSpec = EventSpec {
        name: "accept_failed",
        counts: error(Fault::External, Stage::Receiving),
        doc: "A connection could not be accepted or set up (a failed TLS handshake, a client gone at once); it was closed.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::warn!(component, suppressed, peer = ?self.peer, error = %self.error, "Could not accept or set up a connection.");
    }
}

/// A client did not send a whole request head in time.
pub struct HeaderTimeout {
    pub peer: SocketAddr,
    pub timeout_secs: f64,
}

impl InternalEvent for HeaderTimeout {
    const SPEC: EventSpec = EventSpec {
        name: "header_timeout",
        counts: error(Fault::External, Stage::Receiving),
        doc: "A client did not send a whole request line and headers (or TLS handshake) within `header_timeout_secs`; its connection was closed.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::warn!(
            component,
            suppressed,
            peer = %self.peer,
            timeout_secs = self.timeout_secs,
            "A client did not send a whole request head within header_timeout_secs; closing its connection."
        );
    }
}

/// A client did not send its whole body in time.
pub struct BodyTimeout {
    pub timeout_secs: u64,
}

impl InternalEvent for BodyTimeout {
    const SPEC: EventSpec = EventSpec {
        name: "body_timeout",
        counts: error(Fault::External, Stage::Receiving),
        doc: "A request body did not arrive whole within `body_timeout_secs`; the request got 408 and its connection was closed.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::warn!(
            component,
            suppressed,
            timeout_secs = self.timeout_secs,
            "A client did not send its whole body within body_timeout_secs; answering 408 and closing the connection."
        );
    }
}

/// A request without accepted credentials.
pub struct Unauthorized;

impl InternalEvent for Unauthorized {
    const SPEC: EventSpec = EventSpec {
        name: "unauthorized",
        counts: error(Fault::Data, Stage::Receiving),
        doc: "A request had missing or wrong credentials (the client's, not pipe's, to fix); it got 401.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::debug!(
            component,
            suppressed,
            "Refusing a request with 401: missing or wrong credentials."
        );
    }
}

/// A request refused because too many requests or bytes were in flight.
pub struct InFlightLimit {
    pub refused: Refused,
}

impl InternalEvent for InFlightLimit {
    const SPEC: EventSpec = EventSpec {
        name: "in_flight_limit",
        counts: error(Fault::External, Stage::Receiving),
        doc: "A request came while `max_in_flight_requests` requests or `max_in_flight_bytes` bytes were being handled; it got 503 with `Retry-After`.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::warn!(component, suppressed, reason = %self.refused, "Refusing a request with 503: too much is in flight.");
    }
}

/// A request body larger than `max_body_bytes`.
pub struct TooLarge {
    pub max_body_bytes: usize,
}

impl InternalEvent for TooLarge {
    const SPEC: EventSpec = EventSpec {
        name: "too_large",
        counts: error(Fault::Data, Stage::Receiving),
        doc: "A request body was larger than `max_body_bytes`, before or after decompression; it got 413.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::debug!(
            component,
            suppressed,
            max_body_bytes = self.max_body_bytes,
            "Refusing a request with 413: its body is larger than max_body_bytes."
        );
    }
}

/// A request holding more than `max_events_per_request` events.
pub struct TooManyEvents {
    pub max_events_per_request: usize,
}

impl InternalEvent for TooManyEvents {
    const SPEC: EventSpec = EventSpec {
        name: "too_many_events",
        counts: error(Fault::Data, Stage::Receiving),
        doc: "A request held more than `max_events_per_request` events; it got 413.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::warn!(
            component,
            suppressed,
            max_events_per_request = self.max_events_per_request,
            "A request held more than max_events_per_request events; answering 413."
        );
    }
}

/// A request whose body cannot be read or decoded.
pub struct BadRequest {
    pub reason: String,
}

impl InternalEvent for BadRequest {
    const SPEC: EventSpec = EventSpec {
        name: "bad_request",
        counts: error(Fault::Data, Stage::Receiving),
        doc: "A request body could not be read or decoded (malformed JSON, not UTF-8, an unsupported Content-Encoding, a broken chunked body); it got 400 or 415.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::debug!(component, suppressed, reason = %self.reason, "Refusing a request whose body cannot be decoded.");
    }
}

/// The pipeline had no room for a request's events in time.
pub struct Backpressure;

impl InternalEvent for Backpressure {
    const SPEC: EventSpec = EventSpec {
        name: "backpressure",
        counts: error(Fault::External, Stage::Sending),
        doc: "The pipeline had no room for a request's events within `backpressure_timeout_ms`; it got 503 with `Retry-After`.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::debug!(component, suppressed, "Refusing a request with 503: pipe is busy.");
    }
}

/// A request came while pipe was stopping.
pub struct ShuttingDown;

impl InternalEvent for ShuttingDown {
    const SPEC: EventSpec = EventSpec {
        name: "shutting_down",
        counts: Counts::Counter {
            metric: "pipe_http_requests_refused_shutting_down_total",
        },
        doc: "Requests that got 503 because pipe was shutting down (the client sends them again, to this or another instance).",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::debug!(
            component,
            suppressed,
            "Refusing a request with 503: pipe is shutting down."
        );
    }
}

/// A sink refused a request's events for good.
pub struct Rejected;

impl InternalEvent for Rejected {
    const SPEC: EventSpec = EventSpec {
        name: "rejected",
        counts: error(Fault::Data, Stage::Sending),
        doc: "A sink refused a request's events for good; the request got 400.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::debug!(
            component,
            suppressed,
            "Answering 400: a sink rejected the request's events."
        );
    }
}

/// A request's events were not delivered in time, or a sink lost them.
pub struct NotDelivered;

impl InternalEvent for NotDelivered {
    const SPEC: EventSpec = EventSpec {
        name: "not_delivered",
        counts: error(Fault::External, Stage::Sending),
        doc: "A request's events were not delivered within `ack_timeout_secs`, or a sink failed them; it got 503 with `Retry-After`.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::debug!(
            component,
            suppressed,
            "Answering 503: the request's events are not delivered yet."
        );
    }
}

/// Every event the `http` source emits, for its registry entry.
pub const EVENTS: &[&EventSpec] = &[
    &ConnectionLimit::SPEC,
    &AcceptFailed::SPEC,
    &HeaderTimeout::SPEC,
    &BodyTimeout::SPEC,
    &Unauthorized::SPEC,
    &InFlightLimit::SPEC,
    &TooLarge::SPEC,
    &TooManyEvents::SPEC,
    &BadRequest::SPEC,
    &Backpressure::SPEC,
    &ShuttingDown::SPEC,
    &Rejected::SPEC,
    &NotDelivered::SPEC,
];

/// The emitters of a running `http` source, taken once when it starts.
#[derive(Clone)]
pub struct RequestEvents {
    pub accept_failed: Emitter<AcceptFailed>,
    pub body_timeout: Emitter<BodyTimeout>,
    pub unauthorized: Emitter<Unauthorized>,
    pub in_flight_limit: Emitter<InFlightLimit>,
    pub too_large: Emitter<TooLarge>,
    pub too_many_events: Emitter<TooManyEvents>,
    pub bad_request: Emitter<BadRequest>,
    pub backpressure: Emitter<Backpressure>,
    pub shutting_down: Emitter<ShuttingDown>,
    pub rejected: Emitter<Rejected>,
    pub not_delivered: Emitter<NotDelivered>,
}

impl RequestEvents {
    /// The emitters of the component counted by `metrics`.
    pub fn new(metrics: &crate::metrics::ComponentMetrics) -> Self {
        RequestEvents {
            accept_failed: metrics.emitter(),
            body_timeout: metrics.emitter(),
            unauthorized: metrics.emitter(),
            in_flight_limit: metrics.emitter(),
            too_large: metrics.emitter(),
            too_many_events: metrics.emitter(),
            bad_request: metrics.emitter(),
            backpressure: metrics.emitter(),
            shutting_down: metrics.emitter(),
            rejected: metrics.emitter(),
            not_delivered: metrics.emitter(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ComponentMetrics;

    #[test]
    fn the_registry_entry_declares_every_emitter() {
        let m = ComponentMetrics::new(
            "web",
            "source",
            "http",
            super::super::SOURCE.events,
            super::super::SOURCE.gauges,
        );
        let ev = RequestEvents::new(&m);
        m.emitter::<ConnectionLimit>();
        m.emitter::<HeaderTimeout>();
        ev.bad_request.emit(BadRequest { reason: "x".into() });
        ev.shutting_down.emit(ShuttingDown);
        let s = m.snapshot();
        assert_eq!((s.errors["bad_request"], s.counters["shutting_down"]), (1, 1));
    }
}
