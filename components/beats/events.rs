//! The internal events of the `beats` source.
//!
//! Classified like the `http` source's: what is wrong with the bytes a client sent
//! (frames that are not Lumberjack, too large, JSON that is not JSON, events a sink
//! refused) is [`Fault::Data`]; a client, the network or the pipeline being slow or
//! busy (timeouts, the connection and in-flight limits, a failed TLS handshake, events
//! not delivered) is [`Fault::External`]. The connection limit and the header timeout
//! are counted by the listener shared with the `http` source
//! ([`crate::components::http::limits`]); they are declared here under the same names
//! with this source's wording.

use crate::components::http::events::{ConnectionLimit, HeaderTimeout};
use crate::error::Fault;
use crate::metrics::{ComponentMetrics, Counts, Emitter, EventSpec, GaugeSpec, InternalEvent, Stage};
use std::net::SocketAddr;

const fn error(fault: Fault, stage: Stage) -> Counts {
    Counts::Error { fault, stage }
}

/// `connection_limit`, counted by the shared listener.
pub const CONNECTION_LIMIT: EventSpec = EventSpec {
    name: ConnectionLimit::SPEC.name,
    counts: ConnectionLimit::SPEC.counts,
    doc: "`max_connections` connections were open when another came; it waited in the accept backlog until one closed.",
};

/// `header_timeout`, counted by the shared listener's connections.
pub const HEADER_TIMEOUT: EventSpec = EventSpec {
    name: HeaderTimeout::SPEC.name,
    counts: HeaderTimeout::SPEC.counts,
    doc: "A frame (or a TLS handshake) begun was not received whole within `header_timeout_secs`; its connection was closed without an ACK for the window in progress.",
};

/// Connections open now.
pub static CONNECTIONS: GaugeSpec = GaugeSpec {
    metric: "pipe_beats_connections",
    labels: &[],
    doc: "Client connections open (at most `max_connections`).",
};

/// A TLS handshake failed or a connection could not be accepted.
pub struct AcceptFailed {
    pub peer: Option<SocketAddr>,
    pub error: String,
}

impl InternalEvent for AcceptFailed {
    const SPEC: EventSpec = EventSpec {
        name: "accept_failed",
        counts: error(Fault::External, Stage::Receiving),
        doc: "A connection could not be accepted or its TLS handshake failed (no client certificate, or one not signed by `tls.client_ca_file`); it was closed.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::warn!(component, suppressed, peer = ?self.peer, error = %self.error, "Could not accept or set up a Beats connection.");
    }
}

/// A client sent bytes that are not Lumberjack frames.
pub struct MalformedFrame {
    pub peer: SocketAddr,
    pub error: String,
}

impl InternalEvent for MalformedFrame {
    const SPEC: EventSpec = EventSpec {
        name: "malformed_frame",
        counts: error(Fault::Data, Stage::Receiving),
        doc: "A client sent bytes that are not Lumberjack frames (an unknown version or frame type, a broken zlib stream, a compressed frame ending mid-frame, an ACK); its connection was closed without an ACK for the window in progress.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::warn!(component, suppressed, peer = %self.peer, error = %self.error, "Closing a Beats connection that sent a malformed frame.");
    }
}

/// A frame, or what a compressed frame inflates to, is larger than allowed.
pub struct FrameTooLarge {
    pub peer: SocketAddr,
    pub error: String,
}

impl InternalEvent for FrameTooLarge {
    const SPEC: EventSpec = EventSpec {
        name: "frame_too_large",
        counts: error(Fault::Data, Stage::Receiving),
        doc: "A frame was larger than `max_frame_bytes`, or a compressed frame inflated past it; its connection was closed without an ACK for the window in progress.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::warn!(component, suppressed, peer = %self.peer, error = %self.error, "Closing a Beats connection that sent a frame larger than max_frame_bytes.");
    }
}

/// A JSON data frame whose payload is not JSON.
pub struct InvalidJson {
    pub peer: SocketAddr,
}

impl InternalEvent for InvalidJson {
    const SPEC: EventSpec = EventSpec {
        name: "invalid_json",
        counts: error(Fault::Data, Stage::Receiving),
        doc: "A JSON data frame's payload was not valid JSON; the event was kept with the payload as text in `message`.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::warn!(component, suppressed, peer = %self.peer, "A Beats event is not valid JSON; keeping its payload as text in `message`.");
    }
}

/// A connection would have held more than `max_in_flight_bytes`.
pub struct InFlightLimit {
    pub peer: SocketAddr,
    pub max_in_flight_bytes: usize,
}

impl InternalEvent for InFlightLimit {
    const SPEC: EventSpec = EventSpec {
        name: "in_flight_limit",
        counts: error(Fault::External, Stage::Receiving),
        doc: "Reading a connection's frames would have held more than `max_in_flight_bytes` over all connections; it was closed without an ACK for the window in progress (the client sends it again).",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::warn!(
            component,
            suppressed,
            peer = %self.peer,
            max_in_flight_bytes = self.max_in_flight_bytes,
            "Closing a Beats connection: taking its frames would pass max_in_flight_bytes; the client will send them again."
        );
    }
}

/// A sink refused a batch's events for good.
pub struct Rejected {
    pub peer: SocketAddr,
}

impl InternalEvent for Rejected {
    const SPEC: EventSpec = EventSpec {
        name: "rejected",
        counts: error(Fault::Data, Stage::Sending),
        doc: "A sink refused some of a batch's events for good (they went to its `dropped` output or were counted there); the batch was acknowledged to the client, which must not send it again.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::debug!(component, suppressed, peer = %self.peer, "A sink rejected Beats events for good; acknowledging them so the client does not resend.");
    }
}

/// A batch's events were lost in flight.
pub struct NotDelivered {
    pub peer: SocketAddr,
}

impl InternalEvent for NotDelivered {
    const SPEC: EventSpec = EventSpec {
        name: "not_delivered",
        counts: error(Fault::External, Stage::Sending),
        doc: "A batch's events were lost in flight (a sink failed them, or pipe stopped before they were delivered); the connection was closed without an ACK, so the client sends them again.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::warn!(component, suppressed, peer = %self.peer, "Beats events were not delivered; closing the connection without an ACK so the client sends them again.");
    }
}

/// Every event the `beats` source emits, for its registry entry.
pub const EVENTS: &[&EventSpec] = &[
    &CONNECTION_LIMIT,
    &AcceptFailed::SPEC,
    &HEADER_TIMEOUT,
    &MalformedFrame::SPEC,
    &FrameTooLarge::SPEC,
    &InvalidJson::SPEC,
    &InFlightLimit::SPEC,
    &Rejected::SPEC,
    &NotDelivered::SPEC,
];

/// The emitters of a running `beats` source, taken once when it starts.
#[derive(Clone)]
pub struct BeatsEvents {
    pub accept_failed: Emitter<AcceptFailed>,
    pub malformed_frame: Emitter<MalformedFrame>,
    pub frame_too_large: Emitter<FrameTooLarge>,
    pub invalid_json: Emitter<InvalidJson>,
    pub in_flight_limit: Emitter<InFlightLimit>,
    pub rejected: Emitter<Rejected>,
    pub not_delivered: Emitter<NotDelivered>,
}

impl BeatsEvents {
    /// The emitters of the component counted by `metrics`.
    pub fn new(metrics: &ComponentMetrics) -> Self {
        BeatsEvents {
            accept_failed: metrics.emitter(),
            malformed_frame: metrics.emitter(),
            frame_too_large: metrics.emitter(),
            invalid_json: metrics.emitter(),
            in_flight_limit: metrics.emitter(),
            rejected: metrics.emitter(),
            not_delivered: metrics.emitter(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_entry_declares_every_emitter_including_the_shared_listeners() {
        let m = ComponentMetrics::new(
            "beats",
            "source",
            "beats",
            super::super::SOURCE.events,
            super::super::SOURCE.gauges,
        );
        let ev = BeatsEvents::new(&m);
        m.emitter::<ConnectionLimit>();
        m.emitter::<HeaderTimeout>();
        m.gauge(&CONNECTIONS).add(1);
        ev.malformed_frame.emit(MalformedFrame {
            peer: "127.0.0.1:1".parse().unwrap(),
            error: "x".into(),
        });
        let s = m.snapshot();
        assert_eq!(s.errors["malformed_frame"], 1);
        assert_eq!(s.gauges["pipe_beats_connections"], 1);
    }
}
