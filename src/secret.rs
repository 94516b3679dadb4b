//! A configuration value that must never reach a log: passwords, tokens, key
//! passphrases. It deserializes like the plain string it wraps, but `Debug` and
//! `Display` print `***`, so a `{:?}` of a config struct holding one, or an error
//! message quoting it, gives nothing away. The value is read with
//! [`Secret::expose`], where it is handed to the client that needs it.

use serde::Deserialize;
use std::fmt;

/// A string kept out of logs.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for the client that sends it; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret::new(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Login {
        user: String,
        password: Secret,
    }

    #[test]
    fn deserializes_as_a_string_and_never_prints() {
        let login: Login = toml::from_str("user = \"u\"\npassword = \"hunter2\"").unwrap();
        assert_eq!(login.password.expose(), "hunter2");
        assert_eq!(login.user, "u");
        let shown = format!("{login:?} {}", login.password);
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
    }
}
