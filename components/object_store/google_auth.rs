//! Google credentials: the one place pipe gets OAuth tokens for Google APIs (GCS
//! uploads and reads of the archive, BigQuery).
//!
//! Where they come from, first match wins: a `credentials_path` option, the file in
//! `GOOGLE_APPLICATION_CREDENTIALS`, gcloud's application-default credentials
//! (`~/.config/gcloud/application_default_credentials.json`), then the metadata
//! server (`GCE_METADATA_HOST` overrides its address). A credentials file is a
//! service account key (a JWT signed with its key is exchanged at its `token_uri`)
//! or an `authorized_user` (its refresh token is exchanged at its `token_uri`).
//!
//! Tokens are cached and fetched again before they expire: a token is reused while
//! more than five minutes (or half its lifetime, if shorter) remain, so a caller that
//! takes [`GoogleCredentials::token`] before each request never sends an expired one.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::Mutex;

/// The scope asked for: covers Cloud Storage and BigQuery.
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
const DEFAULT_METADATA_HOST: &str = "metadata.google.internal";
/// A token is fetched again when less than this (or half its lifetime) remains.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// Why no token could be had.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot read the Google credentials file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the Google credentials file {path} is not a service account key or authorized_user file: {reason}")]
    Parse { path: String, reason: String },
    #[error("the private key of the service account in {path} cannot be used: {reason}")]
    Key { path: String, reason: String },
    /// The token endpoint or metadata server could not be reached (retry).
    #[error("cannot reach {url} for a Google access token: {reason}")]
    Unreachable { url: String, reason: String },
    /// The token endpoint answered, and refused (the credentials are wrong).
    #[error("{url} refused to issue a Google access token ({status}): {body}")]
    Refused { url: String, status: u16, body: String },
}

impl AuthError {
    /// True when trying again later may succeed (the endpoint was unreachable or
    /// answered 5xx/429); false when the credentials themselves are at fault.
    pub fn is_retryable(&self) -> bool {
        match self {
            AuthError::Unreachable { .. } => true,
            AuthError::Refused { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

/// For callers: an unreachable token endpoint is retried, refused credentials are
/// the configuration's fault.
impl From<AuthError> for crate::error::ComponentError {
    fn from(e: AuthError) -> Self {
        if e.is_retryable() {
            crate::error::ComponentError::external(e.to_string())
        } else {
            crate::error::ComponentError::config(e.to_string())
        }
    }
}

/// An access token and when it stops working.
#[derive(Debug, Clone)]
pub struct Token {
    pub bearer: String,
    pub expires_at: Instant,
    /// When to fetch the next one.
    pub refresh_at: Instant,
}

/// Where tokens come from.
enum Source {
    /// No credentials (emulators): requests go without `Authorization`.
    Anonymous,
    ServiceAccount {
        email: String,
        key: Arc<ring::signature::RsaKeyPair>,
        key_id: String,
        token_uri: String,
    },
    AuthorizedUser {
        client_id: String,
        client_secret: String,
        refresh_token: String,
        token_uri: String,
    },
    Metadata {
        host: String,
    },
}

/// A source of Google access tokens, cached until shortly before they expire.
pub struct GoogleCredentials {
    source: Source,
    cached: Mutex<Option<Token>>,
    client: reqwest::Client,
}

impl std::fmt::Debug for GoogleCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.describe())
    }
}

/// The fields of a credentials file pipe reads.
#[derive(Deserialize)]
struct CredentialsFile {
    #[serde(rename = "type")]
    kind: Option<String>,
    client_email: Option<String>,
    private_key: Option<String>,
    private_key_id: Option<String>,
    token_uri: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    refresh_token: Option<String>,
}

impl GoogleCredentials {
    /// No credentials: for emulators, which take requests without a token.
    pub fn anonymous() -> Arc<Self> {
        Self::new(Source::Anonymous)
    }

    /// From `path` when given, else the application-default chain (see the module
    /// doc). Reads and checks a credentials file now, so a bad one fails at start.
    pub fn load(path: Option<&Path>) -> Result<Arc<Self>, AuthError> {
        if let Some(p) = path {
            return Self::from_file(p);
        }
        if let Some(p) = std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS").filter(|p| !p.is_empty()) {
            return Self::from_file(Path::new(&p));
        }
        if let Some(home) = std::env::var_os("HOME") {
            let adc = PathBuf::from(home).join(".config/gcloud/application_default_credentials.json");
            if adc.is_file() {
                return Self::from_file(&adc);
            }
        }
        let host = std::env::var("GCE_METADATA_HOST").unwrap_or_else(|_| DEFAULT_METADATA_HOST.to_string());
        Ok(Self::new(Source::Metadata { host }))
    }

    fn from_file(path: &Path) -> Result<Arc<Self>, AuthError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| AuthError::Read {
            path: shown.clone(),
            source,
        })?;
        let parse = |reason: String| AuthError::Parse {
            path: shown.clone(),
            reason,
        };
        let file: CredentialsFile = serde_json::from_str(&text).map_err(|e| parse(e.to_string()))?;
        let token_uri = file.token_uri.unwrap_or_else(|| DEFAULT_TOKEN_URI.to_string());
        let source = match file.kind.as_deref() {
            Some("service_account") => {
                let (Some(email), Some(pem)) = (file.client_email, file.private_key) else {
                    return Err(parse("`client_email` and `private_key` are required".into()));
                };
                let key = rsa_key(&pem).map_err(|reason| AuthError::Key {
                    path: shown.clone(),
                    reason,
                })?;
                Source::ServiceAccount {
                    email,
                    key: Arc::new(key),
                    key_id: file.private_key_id.unwrap_or_default(),
                    token_uri,
                }
            }
            Some("authorized_user") => {
                let (Some(client_id), Some(client_secret), Some(refresh_token)) =
                    (file.client_id, file.client_secret, file.refresh_token)
                else {
                    return Err(parse(
                        "`client_id`, `client_secret` and `refresh_token` are required".into(),
                    ));
                };
                Source::AuthorizedUser {
                    client_id,
                    client_secret,
                    refresh_token,
                    token_uri,
                }
            }
            other => {
                return Err(parse(format!(
                    "`type` is {other:?}; expected \"service_account\" or \"authorized_user\""
                )));
            }
        };
        Ok(Self::new(source))
    }

    fn new(source: Source) -> Arc<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Arc::new(GoogleCredentials {
            source,
            cached: Mutex::new(None),
            client,
        })
    }

    /// What the tokens come from, for logs (never a secret).
    pub fn describe(&self) -> &'static str {
        match self.source {
            Source::Anonymous => "no credentials",
            Source::ServiceAccount { .. } => "a service account key",
            Source::AuthorizedUser { .. } => "an authorized_user refresh token",
            Source::Metadata { .. } => "the metadata server",
        }
    }

    /// A token that stays valid for a while yet, or `None` without credentials.
    pub async fn token(&self) -> Result<Option<Token>, AuthError> {
        if matches!(self.source, Source::Anonymous) {
            return Ok(None);
        }
        let mut cached = self.cached.lock().await;
        if let Some(t) = cached.as_ref().filter(|t| Instant::now() < t.refresh_at) {
            return Ok(Some(t.clone()));
        }
        let fresh = self.fetch().await?;
        *cached = Some(fresh.clone());
        Ok(Some(fresh))
    }

    async fn fetch(&self) -> Result<Token, AuthError> {
        let (url, request) = match &self.source {
            Source::Anonymous => unreachable!("anonymous credentials fetch no token"),
            Source::ServiceAccount {
                email,
                key,
                key_id,
                token_uri,
            } => {
                let assertion = signed_jwt(email, key_id, key, token_uri).map_err(|reason| AuthError::Key {
                    path: email.clone(),
                    reason,
                })?;
                let form = [
                    ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                    ("assertion", assertion.as_str()),
                ];
                (token_uri.clone(), self.client.post(token_uri).form(&form))
            }
            Source::AuthorizedUser {
                client_id,
                client_secret,
                refresh_token,
                token_uri,
            } => {
                let form = [
                    ("grant_type", "refresh_token"),
                    ("client_id", client_id.as_str()),
                    ("client_secret", client_secret.as_str()),
                    ("refresh_token", refresh_token.as_str()),
                ];
                (token_uri.clone(), self.client.post(token_uri).form(&form))
            }
            Source::Metadata { host } => {
                let url = format!("http://{host}/computeMetadata/v1/instance/service-accounts/default/token");
                let req = self.client.get(&url).header("Metadata-Flavor", "Google");
                (url, req)
            }
        };
        let unreachable = |reason: String| AuthError::Unreachable {
            url: url.clone(),
            reason,
        };
        let response = request
            .send()
            .await
            .map_err(|e| unreachable(e.without_url().to_string()))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| unreachable(e.to_string()))?;
        if !status.is_success() {
            return Err(AuthError::Refused {
                url,
                status: status.as_u16(),
                body: body.chars().take(500).collect(),
            });
        }
        #[derive(Deserialize)]
        struct Answer {
            access_token: String,
            expires_in: Option<u64>,
        }
        let answer: Answer = serde_json::from_str(&body).map_err(|e| AuthError::Refused {
            url: url.clone(),
            status: status.as_u16(),
            body: format!("not a token response: {e}"),
        })?;
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(3600));
        let now = Instant::now();
        Ok(Token {
            bearer: answer.access_token,
            expires_at: now + lifetime,
            refresh_at: now + lifetime - REFRESH_MARGIN.min(lifetime / 2),
        })
    }
}

/// `object_store`'s GCS client takes its tokens from here too, so the archive and
/// BigQuery share one auth stack.
#[async_trait::async_trait]
impl object_store::CredentialProvider for GoogleCredentials {
    type Credential = object_store::gcp::GcpCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<Self::Credential>> {
        let token = self.token().await.map_err(|e| object_store::Error::Generic {
            store: "GCS",
            source: Box::new(e),
        })?;
        Ok(Arc::new(object_store::gcp::GcpCredential {
            bearer: token.map(|t| t.bearer).unwrap_or_default(),
        }))
    }
}

/// The RSA key of a PEM `PRIVATE KEY` (PKCS #8) block.
fn rsa_key(pem: &str) -> Result<ring::signature::RsaKeyPair, String> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----") && !l.is_empty())
        .collect();
    let der = STANDARD.decode(body).map_err(|e| format!("not PEM: {e}"))?;
    ring::signature::RsaKeyPair::from_pkcs8(&der).map_err(|e| format!("not a PKCS #8 RSA key: {e}"))
}

/// The JWT a service account exchanges for a token (RFC 7523), valid for an hour.
fn signed_jwt(email: &str, key_id: &str, key: &ring::signature::RsaKeyPair, audience: &str) -> Result<String, String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": key_id});
    let claims = serde_json::json!({
        "iss": email, "scope": SCOPE, "aud": audience, "iat": now, "exp": now + 3600,
    });
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        message.as_bytes(),
        &mut signature,
    )
    .map_err(|e| format!("cannot sign: {e}"))?;
    Ok(format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_of_an_unknown_type_names_the_file_and_the_type() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("creds.json");
        std::fs::write(&path, r#"{"type": "external_account"}"#).unwrap();
        let e = GoogleCredentials::load(Some(&path)).unwrap_err().to_string();
        assert!(e.contains("creds.json") && e.contains("external_account"), "{e}");
    }

    #[test]
    fn a_service_account_with_a_bad_key_fails_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sa.json");
        std::fs::write(
            &path,
            r#"{"type": "service_account", "client_email": "a@b", "private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}"#,
        )
        .unwrap();
        let e = GoogleCredentials::load(Some(&path)).unwrap_err();
        assert!(matches!(e, AuthError::Key { .. }), "{e}");
    }

    #[tokio::test]
    async fn anonymous_credentials_send_no_token() {
        assert!(GoogleCredentials::anonymous().token().await.unwrap().is_none());
    }
}
