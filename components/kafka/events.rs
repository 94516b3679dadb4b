//! The internal events of the `kafka` source and sink.

use crate::metrics::common::{refusal, retried_failure};

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
