//! The internal events of the `elasticsearch` sink.

use crate::metrics::common::{refusal, retried_failure};

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
