//! The internal events of the `object_store` sink.

use crate::metrics::common::{refusal, retried_failure};

refusal!(
    /// Events whose object key would be too long.
    KeyTooLong,
    "key_too_long",
    "Events whose rendered object key exceeds the store's limit; they went to the `dropped` output, or were rejected."
);

refusal!(
    /// A finished file the store refused for good.
    UnplaceableFile,
    "unplaceable_file",
    "Events in a finished file the store refused for good (permissions, an invalid key); they were rejected."
);

retried_failure!(
    /// An upload failed and is retried.
    UploadFailed,
    "upload",
    Sending,
    "Uploading a finished file failed (store unreachable, 5xx, timeout); it is retried with backoff."
);
