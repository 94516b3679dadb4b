//! The internal events of the `kafka` source and sink.

use crate::error::Fault;
use crate::metrics::common::{refusal, retried_failure};
use crate::metrics::{Counts, EventSpec, GaugeSpec, InternalEvent, Stage};
use std::marker::PhantomData;

refusal!(
    /// Records Kafka refused for good (too large, an invalid topic).
    RejectedByKafka,
    "rejected_by_kafka",
    "Records Kafka refused for good (larger than the broker accepts, an invalid topic); they went to the `dropped` output, or were rejected."
);

retried_failure!(
    /// A record was not delivered and is produced again.
    DeliveryRetry,
    "delivery_retry",
    Sending,
    "A record was not delivered (brokers down, timeout); it is produced again after its backoff."
);

retried_failure!(
    /// A consumed batch was not delivered downstream; it is read again.
    Redelivery,
    "redelivery",
    Receiving,
    "A consumed batch was not delivered downstream; its partition is rewound and read again after a backoff."
);

/// Which side of Kafka a client is, for the stage of its client-level errors.
pub trait Side: Send + Sync + 'static {
    /// `receiving` for the consumer, `sending` for the producer.
    const STAGE: Stage;
}

/// The `kafka` source's consumer.
pub enum Consumer {}
impl Side for Consumer {
    const STAGE: Stage = Stage::Receiving;
}

/// The `kafka` sink's producer.
pub enum Producer {}
impl Side for Producer {
    const STAGE: Stage = Stage::Sending;
}

/// One broker connection failed; librdkafka reconnects by itself (counted, logged at
/// debug level by the client callbacks).
pub struct BrokerTransport<S>(PhantomData<S>);

impl<S: Side> InternalEvent for BrokerTransport<S> {
    const SPEC: EventSpec = EventSpec {
        name: "broker_transport",
        counts: Counts::Error {
            fault: Fault::External,
            stage: S::STAGE,
        },
        doc: "A connection to one broker failed; librdkafka reconnects by itself.",
    };
    fn log(&self, _component: &str, _suppressed: u64) {}
}

/// Every broker is unreachable; counted each time librdkafka reports it, logged once
/// per outage by the client callbacks.
pub struct BrokersDown<S>(PhantomData<S>);

impl<S: Side> InternalEvent for BrokersDown<S> {
    const SPEC: EventSpec = EventSpec {
        name: "brokers_down",
        counts: Counts::Error {
            fault: Fault::External,
            stage: S::STAGE,
        },
        doc: "Every broker was unreachable; records wait and are retried until one comes back.",
    };
    fn log(&self, _component: &str, _suppressed: u64) {}
}

/// Any other error librdkafka reports for the client.
pub struct KafkaClient<S> {
    pub error: String,
    pub reason: String,
    side: PhantomData<S>,
}

impl<S> KafkaClient<S> {
    pub fn new(error: String, reason: String) -> Self {
        KafkaClient {
            error,
            reason,
            side: PhantomData,
        }
    }
}

impl<S: Side> InternalEvent for KafkaClient<S> {
    const SPEC: EventSpec = EventSpec {
        name: "kafka_client",
        counts: Counts::Error {
            fault: Fault::External,
            stage: S::STAGE,
        },
        doc: "librdkafka reported another client error (authentication, a resolver failure, a broker-side error).",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::warn!(component, suppressed, error = %self.error, reason = %self.reason, "Kafka client error.");
    }
}

/// This consumer got a new partition assignment from a group rebalance.
pub struct Rebalanced;

impl InternalEvent for Rebalanced {
    const SPEC: EventSpec = EventSpec {
        name: "rebalance",
        counts: Counts::Counter {
            metric: "pipe_kafka_rebalances_total",
        },
        doc: "Group rebalances that gave this consumer its partitions (each assignment, possibly empty, counts once).",
    };
    // Assignments and revocations are logged, unthrottled, by the consumer callbacks.
    fn log(&self, _component: &str, _suppressed: u64) {}
}

/// A group rebalance failed.
pub struct RebalanceFailed {
    pub error: String,
}

impl InternalEvent for RebalanceFailed {
    const SPEC: EventSpec = EventSpec {
        name: "rebalance_failed",
        counts: Counts::Error {
            fault: Fault::External,
            stage: Stage::Receiving,
        },
        doc: "A group rebalance failed; librdkafka tries again.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::warn!(component, suppressed, error = %self.error, "Rebalance failed.");
    }
}

/// Committing acknowledged offsets failed.
pub struct CommitFailed {
    pub error: String,
}

impl InternalEvent for CommitFailed {
    const SPEC: EventSpec = EventSpec {
        name: "commit",
        counts: Counts::Error {
            fault: Fault::External,
            stage: Stage::Receiving,
        },
        doc: "Committing acknowledged offsets failed (a broker away, a rebalance under way); the next commit carries them.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::warn!(component, suppressed, error = %self.error, "Offset commit failed; it is retried with the next one.");
    }
}

/// Seeking a rewound partition back to its first unacknowledged offset failed.
pub struct SeekFailed {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub error: String,
}

impl InternalEvent for SeekFailed {
    const SPEC: EventSpec = EventSpec {
        name: "seek",
        counts: Counts::Error {
            fault: Fault::External,
            stage: Stage::Receiving,
        },
        doc: "Seeking a rewound partition back to its first unacknowledged offset failed; it is tried again after a backoff.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::warn!(component, suppressed, topic = %self.topic, partition = self.partition, offset = self.offset, error = %self.error, "Cannot seek the partition back; trying again.");
    }
}

/// Fetching records failed (other than every broker being down).
pub struct ConsumeFailed {
    pub error: String,
}

impl InternalEvent for ConsumeFailed {
    const SPEC: EventSpec = EventSpec {
        name: "consume",
        counts: Counts::Error {
            fault: Fault::External,
            stage: Stage::Receiving,
        },
        doc: "Fetching records failed (a broker-side error, an unknown topic); the consumer goes on.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::warn!(component, suppressed, error = %self.error, "Kafka consume error.");
    }
}

/// A record whose value cannot be decoded; it goes to the `dropped` output.
pub struct Undecodable {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub reason: String,
}

impl InternalEvent for Undecodable {
    const SPEC: EventSpec = EventSpec {
        name: "undecodable",
        counts: Counts::Discarded { intentional: false },
        doc: "Records whose value cannot be decoded as `decoding` says (not JSON, not UTF-8); they went to the `dropped` output with the value as `message`.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::warn!(component, suppressed, topic = %self.topic, partition = self.partition, offset = self.offset, reason = %self.reason, "A record cannot be decoded; it goes to the dropped output.");
    }
}

/// The consumer's lag per assigned partition.
pub static CONSUMER_LAG: GaugeSpec = GaugeSpec {
    metric: "pipe_kafka_consumer_lag_messages",
    labels: &["topic", "partition"],
    doc: "Records between the consumer's position and the end of each assigned partition, from librdkafka's statistics every `statistics_interval_ms`.",
};

/// The end offset (high watermark) per assigned partition.
pub static END_OFFSET: GaugeSpec = GaugeSpec {
    metric: "pipe_kafka_end_offset",
    labels: &["topic", "partition"],
    doc: "The offset the next record of each assigned partition will get (its high watermark), from librdkafka's statistics every `statistics_interval_ms`.",
};

/// The last committed offset per assigned partition.
pub static COMMITTED_OFFSET: GaugeSpec = GaugeSpec {
    metric: "pipe_kafka_committed_offset",
    labels: &["topic", "partition"],
    doc: "The offset last committed for each assigned partition (the next record to read).",
};

/// Every event the `kafka` source emits, for its registry entry.
pub const SOURCE_EVENTS: &[&EventSpec] = &[
    &Rebalanced::SPEC,
    &RebalanceFailed::SPEC,
    &CommitFailed::SPEC,
    &SeekFailed::SPEC,
    &ConsumeFailed::SPEC,
    &Undecodable::SPEC,
    &Redelivery::SPEC,
    &BrokerTransport::<Consumer>::SPEC,
    &BrokersDown::<Consumer>::SPEC,
    &KafkaClient::<Consumer>::SPEC,
];

/// Every gauge the `kafka` source sets.
pub const SOURCE_GAUGES: &[&GaugeSpec] = &[&CONSUMER_LAG, &END_OFFSET, &COMMITTED_OFFSET, &crate::retry::RETRYING];

/// Every event the `kafka` sink emits, for its registry entry.
pub const SINK_EVENTS: &[&EventSpec] = &[
    &RejectedByKafka::SPEC,
    &DeliveryRetry::SPEC,
    &BrokerTransport::<Producer>::SPEC,
    &BrokersDown::<Producer>::SPEC,
    &KafkaClient::<Producer>::SPEC,
];

/// Every gauge the `kafka` sink sets.
pub const SINK_GAUGES: &[&GaugeSpec] = &[&crate::retry::RETRYING];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ComponentMetrics;

    #[test]
    fn client_errors_take_the_stage_of_their_side() {
        let stage = |c: Counts| match c {
            Counts::Error { stage, .. } => stage,
            _ => panic!("not an error"),
        };
        assert_eq!(stage(BrokersDown::<Consumer>::SPEC.counts), Stage::Receiving);
        assert_eq!(stage(BrokersDown::<Producer>::SPEC.counts), Stage::Sending);
        let sink = ComponentMetrics::new("out", "sink", "kafka", SINK_EVENTS, SINK_GAUGES);
        sink.emitter::<BrokersDown<Producer>>().count(2);
        assert_eq!(sink.snapshot().errors["brokers_down"], 2);
    }

    #[test]
    #[should_panic(expected = "does not declare")]
    fn the_sink_does_not_emit_consumer_events() {
        let sink = ComponentMetrics::new("out", "sink", "kafka", SINK_EVENTS, SINK_GAUGES);
        sink.emitter::<BrokersDown<Consumer>>();
    }
}
