//! The internal events of the `file` source and sink.

use crate::metrics::common::{refusal, retried_failure};

refusal!(
    /// Events whose rendered path cannot be written.
    UnwritablePath,
    "unwritable_path",
    "Events whose rendered path cannot be written (a directory in the way, a name too long); they went to the `dropped` output, or were rejected."
);

retried_failure!(
    /// Opening or writing a file failed and is retried.
    WriteFailed,
    "io",
    Sending,
    "Opening or writing an output file failed (disk full, permissions); it is retried with backoff."
);
