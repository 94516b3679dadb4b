//! The internal events of the `elasticsearch` sink.

use crate::metrics::common::{refusal, retried_failure};
use crate::metrics::{Counts, EventSpec, InternalEvent};

refusal!(
    /// Documents Elasticsearch refused for good (a mapping error, a 4xx item).
    RejectedByElasticsearch,
    "rejected_by_elasticsearch",
    "Documents Elasticsearch refused for good (a mapping conflict, a 400 item); they went to the `dropped` output, or were rejected."
);

retried_failure!(
    /// A bulk request failed as a whole and is retried.
    RequestFailed,
    "request_failed",
    Sending,
    "A bulk request failed as a whole (connection refused, 5xx, timeout); it is retried with backoff."
);

/// Elasticsearch refused a whole bulk (413, or 400 for a document it cannot parse);
/// it is sent again in halves.
pub struct BulkSplit {
    pub documents: usize,
    pub error: String,
}

impl InternalEvent for BulkSplit {
    const SPEC: EventSpec = EventSpec {
        name: "bulk_split",
        counts: Counts::Counter {
            metric: "pipe_elasticsearch_bulk_splits_total",
        },
        doc: "Elasticsearch refused a whole bulk request (413 too large, or 400 for a document it cannot parse); it was sent again in halves, down to the one document at fault.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::debug!(component, suppressed, documents = self.documents, error = %self.error, "Elasticsearch refused a whole bulk; sending it in halves.");
    }
}

/// Documents Elasticsearch refused for now (429, 5xx item); they are sent again alone.
pub struct ItemRetried;

impl InternalEvent for ItemRetried {
    const SPEC: EventSpec = EventSpec {
        name: "item_retried",
        counts: Counts::Counter {
            metric: "pipe_elasticsearch_items_retried_total",
        },
        doc: "Documents of a bulk that Elasticsearch refused for now (429, a 5xx item); they were sent again, alone, after a backoff.",
    };
    fn log(&self, component: &str, suppressed: u64) {
        tracing::debug!(
            component,
            suppressed,
            "Elasticsearch refused documents for now; sending them again after a backoff."
        );
    }
}

/// Every event the `elasticsearch` sink emits, for its registry entry.
pub const EVENTS: &[&EventSpec] = &[
    &RejectedByElasticsearch::SPEC,
    &RequestFailed::SPEC,
    &BulkSplit::SPEC,
    &ItemRetried::SPEC,
];
