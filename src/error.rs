//! The runtime error of a component: who is at fault and whether trying again can
//! help. Sinks classify every failure with it, and the classification alone decides
//! what happens to the events concerned:
//!
//! | fault | retried? | the events |
//! |---|---|---|
//! | [`Fault::Data`] (the event: a name no filesystem takes, a document too large) | no | rejected: to the sink's `dropped` output, else counted and acknowledged as rejected |
//! | [`Fault::Config`] (credentials refused, a missing bucket) | yes, with backoff; the sink is marked failing | wait |
//! | [`Fault::External`] (a server down or overloaded, a full disk) | yes, with backoff | wait |
//! | [`Fault::Internal`] (a bug in pipe) | no | errored: never acknowledged, they come again after a restart |

use std::fmt;

/// Who is to blame for a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The event or its content; the same event fails the same way every time.
    Data,
    /// The operator's configuration: credentials, permissions, a missing bucket.
    Config,
    /// A system pipe talks to: network, a server, the disk.
    External,
    /// pipe itself.
    Internal,
}

impl Fault {
    /// A short name for logs and counters.
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::Data => "data",
            Fault::Config => "config",
            Fault::External => "external",
            Fault::Internal => "internal",
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure of a running component.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ComponentError {
    /// Who is at fault.
    pub fault: Fault,
    /// What happened, naming the file, key or request concerned.
    pub message: String,
}

impl ComponentError {
    /// A failure caused by the event itself; retrying cannot help.
    pub fn data(message: impl Into<String>) -> Self {
        ComponentError {
            fault: Fault::Data,
            message: message.into(),
        }
    }
    /// A failure caused by the configuration (e.g. credentials refused); retried.
    pub fn config(message: impl Into<String>) -> Self {
        ComponentError {
            fault: Fault::Config,
            message: message.into(),
        }
    }
    /// A failure of another system; retried.
    pub fn external(message: impl Into<String>) -> Self {
        ComponentError {
            fault: Fault::External,
            message: message.into(),
        }
    }
    /// A bug in pipe.
    pub fn internal(message: impl Into<String>) -> Self {
        ComponentError {
            fault: Fault::Internal,
            message: message.into(),
        }
    }

    /// True when trying again later can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self.fault, Fault::Config | Fault::External)
    }

    /// Classifies a filesystem error on `what` (a path): names the filesystem refuses
    /// are the event's fault, permissions the operator's, the rest the disk's.
    pub fn io(what: impl fmt::Display, e: &std::io::Error) -> Self {
        use std::io::ErrorKind::*;
        let message = format!("{what}: {e}");
        match e.kind() {
            InvalidFilename | InvalidInput | NotADirectory | IsADirectory | AlreadyExists => {
                ComponentError::data(message)
            }
            PermissionDenied | ReadOnlyFilesystem => ComponentError::config(message),
            _ => match e.raw_os_error() {
                // ELOOP (O_NOFOLLOW met a symlink), EILSEQ (bytes the filesystem refuses).
                Some(40 | 84) => ComponentError::data(message),
                _ => ComponentError::external(message),
            },
        }
    }
}

/// A component's run result when it stops for good.
impl From<String> for ComponentError {
    fn from(message: String) -> Self {
        ComponentError::internal(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Error, ErrorKind};

    #[test]
    fn io_errors_are_classified() {
        let c = |e: Error| ComponentError::io("/x", &e).fault;
        assert_eq!(c(Error::from(ErrorKind::InvalidFilename)), Fault::Data);
        assert_eq!(c(Error::from_raw_os_error(40)), Fault::Data);
        assert_eq!(c(Error::from(ErrorKind::PermissionDenied)), Fault::Config);
        assert_eq!(c(Error::from(ErrorKind::StorageFull)), Fault::External);
        assert!(ComponentError::external("x").is_retryable());
        assert!(!ComponentError::data("x").is_retryable());
    }
}
