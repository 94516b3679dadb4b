//! Where an archive lives: a local directory, `s3://bucket/prefix` or
//! `gs://bucket/prefix`, opened as an [`ObjectStore`] rooted at the bucket plus the
//! key prefix inside it. Shared by the `object_store` sink and `pipe query`.
//!
//! Credentials come from the usual places. S3: the `AWS_*` environment variables,
//! then the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE` or
//! `~/.aws/credentials`, profile `AWS_PROFILE` or `default`), then web identity,
//! container and instance metadata. GCS: [`super::google_auth`]
//! (`GOOGLE_APPLICATION_CREDENTIALS`, application default credentials, then the
//! metadata server), shared with BigQuery.

use ::object_store::ObjectStore;
use ::object_store::aws::AmazonS3Builder;
use ::object_store::gcp::GoogleCloudStorageBuilder;
use ::object_store::local::LocalFileSystem;
use ::object_store::path::Path as ObjectPath;
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;

/// How to reach the store, besides the URL (the `object_store` sink's options of the
/// same names).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StoreOptions {
    /// Endpoint override for S3-compatible servers (MinIO, Ceph) or a GCS emulator.
    pub endpoint: Option<String>,
    /// S3 region (default from `AWS_REGION`, else `us-east-1`).
    pub region: Option<String>,
    /// Allow plain-HTTP endpoints (local test servers). Default false.
    #[serde(default)]
    pub allow_http: bool,
}

/// An opened archive location.
#[derive(Debug, Clone)]
pub struct Store {
    /// The store, rooted at the bucket (or `/` for local disk).
    pub store: Arc<dyn ObjectStore>,
    /// The key prefix of the archive inside the store.
    pub prefix: ObjectPath,
    /// The URL as written, for messages.
    pub url: String,
    /// For local archives, the directory (files are synced and renamed there).
    pub local_root: Option<PathBuf>,
    /// For GCS, what writers need to upload through the JSON API.
    pub gcs: Option<GcsTarget>,
}

/// A GCS bucket as the JSON API sees it. Uploads go through the JSON API (media and
/// resumable uploads), which GCS and its emulators serve alike; object_store's
/// XML-API writes are not served by fake-gcs-server. Its `Debug` leaves the
/// credentials out.
#[derive(Clone)]
pub struct GcsTarget {
    pub bucket: String,
    /// `https://storage.googleapis.com`, or the `endpoint`.
    pub base_url: String,
    pub credentials: ::object_store::gcp::GcpCredentialProvider,
    pub client: reqwest::Client,
}

impl std::fmt::Debug for GcsTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcsTarget")
            .field("bucket", &self.bucket)
            .field("base_url", &self.base_url)
            .field("credentials", &"***")
            .finish_non_exhaustive()
    }
}

/// Why a location cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("`{0}` is not a local path, s3://bucket/prefix or gs://bucket/prefix")]
    BadUrl(String),
    #[error("cannot open `{url}`: {source}")]
    Open {
        url: String,
        #[source]
        source: ::object_store::Error,
    },
    #[error("cannot create the local archive directory {0}: {1}")]
    LocalDir(String, std::io::Error),
}

impl Store {
    /// Opens `url`. With `create`, a local directory is created when missing.
    pub fn open(url: &str, options: &StoreOptions, create: bool) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            url: url.to_string(),
            source,
        };
        if let Some(rest) = url.strip_prefix("s3://").or_else(|| url.strip_prefix("s3a://")) {
            let (bucket, prefix) = split_bucket(url, rest)?;
            let mut b = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_retry(short_retries());
            if std::env::var_os("AWS_ACCESS_KEY_ID").is_none()
                && let Some(c) = shared_aws_credentials()
            {
                b = b.with_access_key_id(c.key).with_secret_access_key(c.secret);
                if let Some(t) = c.token {
                    b = b.with_token(t);
                }
            }
            if let Some(e) = &options.endpoint {
                b = b.with_endpoint(e).with_virtual_hosted_style_request(false);
            }
            if let Some(r) = &options.region {
                b = b.with_region(r);
            } else if std::env::var_os("AWS_REGION").is_none() && std::env::var_os("AWS_DEFAULT_REGION").is_none() {
                b = b.with_region("us-east-1");
            }
            if options.allow_http {
                b = b.with_allow_http(true);
            }
            let store = b.build().map_err(open_err)?;
            return Ok(Store {
                store: Arc::new(store),
                prefix: key_prefix(url, prefix)?,
                url: url.to_string(),
                local_root: None,
                gcs: None,
            });
        }
        if let Some(rest) = url.strip_prefix("gs://") {
            let (bucket, prefix) = split_bucket(url, rest)?;
            let mut b = GoogleCloudStorageBuilder::from_env()
                .with_bucket_name(bucket)
                .with_retry(short_retries());
            if options.endpoint.is_none() {
                // The same credentials as BigQuery's, one auth stack for Google.
                let credentials = super::google_auth::GoogleCredentials::load(None).map_err(|e| {
                    open_err(::object_store::Error::Generic {
                        store: "GCS",
                        source: Box::new(e),
                    })
                })?;
                b = b.with_credentials(credentials);
            }
            if let Some(e) = &options.endpoint {
                // An emulator (fake-gcs-server) or private endpoint: object_store's
                // documented way is a service account naming the base URL, no OAuth.
                let key = serde_json::json!({
                    "gcs_base_url": e, "disable_oauth": true, "client_email": "", "private_key": "", "private_key_id": ""
                });
                b = b.with_service_account_key(key.to_string());
            }
            if options.allow_http {
                b = b.with_client_options(::object_store::ClientOptions::new().with_allow_http(true));
            }
            let store = b.build().map_err(open_err)?;
            let client = reqwest::Client::builder().build().map_err(|e| {
                open_err(::object_store::Error::Generic {
                    store: "GCS",
                    source: Box::new(e),
                })
            })?;
            let gcs = GcsTarget {
                bucket: bucket.to_string(),
                base_url: options
                    .endpoint
                    .clone()
                    .unwrap_or_else(|| "https://storage.googleapis.com".into())
                    .trim_end_matches('/')
                    .to_string(),
                credentials: store.credentials().clone(),
                client,
            };
            return Ok(Store {
                store: Arc::new(store),
                prefix: key_prefix(url, prefix)?,
                url: url.to_string(),
                local_root: None,
                gcs: Some(gcs),
            });
        }
        if url.contains("://") && !url.starts_with("file://") {
            return Err(StoreError::BadUrl(url.to_string()));
        }
        let path = PathBuf::from(url.strip_prefix("file://").unwrap_or(url));
        if create {
            std::fs::create_dir_all(&path).map_err(|e| StoreError::LocalDir(path.display().to_string(), e))?;
        }
        let root = std::path::absolute(&path).map_err(|e| StoreError::LocalDir(path.display().to_string(), e))?;
        let store = LocalFileSystem::new();
        let prefix = ObjectPath::from_absolute_path(&root).map_err(|e| open_err(e.into()))?;
        Ok(Store {
            store: Arc::new(store),
            prefix,
            url: url.to_string(),
            local_root: Some(root),
            gcs: None,
        })
    }

    /// The key of `relative` (a `/`-separated path) inside the archive.
    pub fn key(&self, relative: &str) -> Result<ObjectPath, ::object_store::path::Error> {
        let mut parts: Vec<String> = self.prefix.parts().map(|p| p.as_ref().to_string()).collect();
        for p in relative.split('/').filter(|p| !p.is_empty()) {
            parts.push(p.to_string());
        }
        ObjectPath::parse(parts.join("/"))
    }

    /// The URL DataFusion registers this store under (`s3://bucket`, `file://`).
    pub fn root_url(&self) -> String {
        match self.url.split_once("://") {
            Some((scheme, rest)) if scheme != "file" => {
                let bucket = rest.split('/').next().unwrap_or_default();
                let scheme = if scheme == "s3a" { "s3" } else { scheme };
                format!("{scheme}://{bucket}")
            }
            _ => "file://".to_string(),
        }
    }

    /// The archive's URL as DataFusion sees it (a directory, ending in `/`).
    pub fn table_url(&self) -> String {
        let root = self.root_url();
        let prefix = self.prefix.as_ref();
        if root == "file://" {
            format!("file:///{prefix}/")
        } else if prefix.is_empty() {
            format!("{root}/")
        } else {
            format!("{root}/{prefix}/")
        }
    }
}

/// object_store's own retries are kept short (a few attempts within 15 s): the
/// archive sink retries a failed upload without end itself, logging each outage, and
/// `pipe query` should fail fast against a store that is down.
fn short_retries() -> ::object_store::RetryConfig {
    ::object_store::RetryConfig {
        backoff: ::object_store::BackoffConfig::default(),
        max_retries: 3,
        retry_timeout: std::time::Duration::from_secs(15),
    }
}

fn split_bucket<'a>(url: &str, rest: &'a str) -> Result<(&'a str, &'a str), StoreError> {
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(StoreError::BadUrl(url.to_string()));
    }
    Ok((bucket, prefix))
}

fn key_prefix(url: &str, prefix: &str) -> Result<ObjectPath, StoreError> {
    ObjectPath::parse(prefix.trim_matches('/')).map_err(|_| StoreError::BadUrl(url.to_string()))
}

struct AwsCredentials {
    key: String,
    secret: String,
    token: Option<String>,
}

/// The profile's keys from the shared credentials file, if there is one.
fn shared_aws_credentials() -> Option<AwsCredentials> {
    let file = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".aws/credentials")))?;
    let text = std::fs::read_to_string(file).ok()?;
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into());
    parse_shared_credentials(&text, &profile)
}

fn parse_shared_credentials(text: &str, profile: &str) -> Option<AwsCredentials> {
    let mut in_profile = false;
    let (mut key, mut secret, mut token) = (None, None, None);
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_profile = name.trim() == profile;
            continue;
        }
        let Some((k, v)) = line.split_once('=') else { continue };
        if !in_profile {
            continue;
        }
        let v = v.trim().to_string();
        match k.trim() {
            "aws_access_key_id" => key = Some(v),
            "aws_secret_access_key" => secret = Some(v),
            "aws_session_token" => token = Some(v),
            _ => {}
        }
    }
    Some(AwsCredentials {
        key: key?,
        secret: secret?,
        token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_credentials_profile_is_read() {
        let text = "[default]\naws_access_key_id = A\naws_secret_access_key = B\n[ops]\naws_access_key_id=C\naws_secret_access_key=D\naws_session_token=T\n";
        let c = parse_shared_credentials(text, "ops").unwrap();
        assert_eq!(
            (c.key.as_str(), c.secret.as_str(), c.token.as_deref()),
            ("C", "D", Some("T"))
        );
        assert_eq!(parse_shared_credentials(text, "default").unwrap().key, "A");
        assert!(parse_shared_credentials(text, "none").is_none());
    }

    #[test]
    fn urls_split_into_root_and_prefix() {
        let o = StoreOptions {
            endpoint: Some("http://127.0.0.1:9".into()),
            allow_http: true,
            ..Default::default()
        };
        let s = Store::open("s3://logs/app/raw/", &o, false).unwrap();
        assert_eq!(s.prefix.as_ref(), "app/raw");
        assert_eq!(s.table_url(), "s3://logs/app/raw/");
        assert_eq!(
            s.key("dt=2026-11-25/a.parquet").unwrap().as_ref(),
            "app/raw/dt=2026-11-25/a.parquet"
        );
        let g = Store::open("gs://b", &o, false).unwrap();
        assert_eq!(g.table_url(), "gs://b/");
        assert!(matches!(
            Store::open("ftp://x/y", &o, false),
            Err(StoreError::BadUrl(_))
        ));
        let dir = tempfile::tempdir().unwrap();
        let l = Store::open(dir.path().join("a").to_str().unwrap(), &o, true).unwrap();
        assert!(l.table_url().starts_with("file:///") && l.table_url().ends_with("/a/"));
    }
}
