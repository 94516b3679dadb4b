//! Secrets in configurations: [`Secret`] holds a password or token and prints as
//! `***` in `Debug` and `Display`, so a config dumped in a log or an error message
//! quoting it never shows it (read it with [`Secret::expose`] where it is sent), and
//! [`redact_url`] / [`strip_userinfo`] keep `user:pass@` in a URL out of logs.

use serde::{Deserialize, Deserializer};
use std::fmt;

/// A secret string option (password, token, key).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret::new(value)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// A string in the option schemas, marked `writeOnly`: the generated docs call it a
/// secret.
impl schemars::JsonSchema for Secret {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Secret".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "writeOnly": true })
    }
}

/// `url` with the password of its `user:pass@` part replaced by `***`.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(_) => url.to_string(),
        // Not a URL: keep what precedes a `@` out, in case it is credentials.
        Err(_) => match url.rsplit_once('@') {
            Some((_, host)) => format!("***@{host}"),
            None => url.to_string(),
        },
    }
}

/// Splits `user:pass@` off `url`: the URL without it and the (percent-decoded)
/// user and password, if it had them.
pub fn strip_userinfo(url: &str) -> Result<(String, Option<(String, Secret)>), url::ParseError> {
    let mut u = url::Url::parse(url)?;
    if u.username().is_empty() && u.password().is_none() {
        return Ok((url.to_string(), None));
    }
    let user = percent_decode(u.username());
    let password = Secret(percent_decode(u.password().unwrap_or_default()));
    let _ = u.set_username("");
    let _ = u.set_password(None);
    Ok((u.to_string(), Some((user, password))))
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Login {
        password: Secret,
    }

    #[test]
    fn deserializes_as_a_string_and_never_prints() {
        let login: Login = toml::from_str("password = \"hunter2\"").unwrap();
        assert_eq!(login.password.expose(), "hunter2");
        let shown = format!("{login:?} {}", login.password);
        assert!(!shown.contains("hunter2") && shown.contains("***"), "{shown}");
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "\"***\"");
        assert_eq!(s.expose(), "hunter2");
        assert_eq!(redact_url("http://u:hunter2@es:9200/"), "http://u:***@es:9200/");
        assert_eq!(redact_url("http://es:9200/"), "http://es:9200/");
    }

    #[test]
    fn userinfo_is_split_off() {
        let (url, creds) = strip_userinfo("https://elastic:p%40ss%22@es:9200/").unwrap();
        assert_eq!(url, "https://es:9200/");
        let (user, pass) = creds.unwrap();
        assert_eq!((user.as_str(), pass.expose()), ("elastic", "p@ss\""));
        assert_eq!(strip_userinfo("http://es:9200").unwrap().1, None);
    }
}
