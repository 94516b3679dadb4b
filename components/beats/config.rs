//! The options of the `beats` source, their defaults and checks, and the TLS server
//! configuration they make (loaded when the topology is built, so `pipe validate`
//! catches an unreadable certificate).

use crate::component::BuildError;
use crate::components::http::limits;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::rustls;

/// Options of the `beats` source.
#[derive(Debug, Deserialize, Clone, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BeatsSourceConfig {
    /// Address to listen on, e.g. `0.0.0.0:5044` (the port Beats and Logstash use).
    /// Two components may not claim the same one.
    pub address: String,
    /// Largest frame, in bytes: a data frame's payload, a compressed frame's zlib
    /// bytes, and what a compressed frame inflates to (a small zlib bomb is refused
    /// too). A larger frame closes the connection.
    #[serde(default = "default_max_frame_bytes")]
    pub max_frame_bytes: usize,
    /// Most events in one batch sent downstream; a larger window becomes several
    /// batches, each acknowledged to the client as it is delivered.
    #[serde(default = "default_max_batch_events")]
    pub max_batch_events: usize,
    /// About this many bytes of event payload per batch sent downstream (at least one
    /// event per batch).
    #[serde(default = "default_max_batch_bytes")]
    pub max_batch_bytes: usize,
    /// Bytes held by every connection together: frames being read, compressed frames
    /// being inflated, and the payload of events not yet acknowledged. A connection
    /// that would pass it is closed without an ACK for its window (the client sends it
    /// again). Must be at least 3 × `max_frame_bytes` (a largest compressed frame, what
    /// it inflates to, and its events).
    #[serde(default = "limits::default_max_in_flight_bytes")]
    pub max_in_flight_bytes: usize,
    /// Open connections. Past it new connections are not accepted: they wait in the
    /// kernel's accept backlog (and past that the kernel refuses them) until one
    /// closes.
    #[serde(default = "limits::default_max_connections")]
    pub max_connections: usize,
    /// A frame begun (or a TLS handshake) must be received whole within this many
    /// seconds; past it the connection is closed without an ACK for the window in
    /// progress.
    #[serde(default = "default_header_timeout_secs")]
    pub header_timeout_secs: u64,
    /// A connection that sends nothing for this many seconds while no window of it
    /// is awaiting delivery is closed (Beats reconnect when they have events again);
    /// so is one whose client stops reading ACKs.
    #[serde(default = "limits::default_idle_timeout_secs")]
    pub idle_timeout_secs: u64,
    /// While a window awaits delivery, send the client a keepalive ACK (sequence 0,
    /// or the last event already acknowledged in that window) this often, in
    /// seconds, so it does not time out and resend; `0`: never. Protocol v2 only.
    #[serde(default = "default_keepalive_secs")]
    pub keepalive_secs: u64,
    /// ACK a window only once every sink has its events durably. With `false`, ACK
    /// once the events are queued.
    #[serde(default = "yes")]
    pub acknowledgements: bool,
    /// Speak TLS (rustls) with this certificate and key.
    pub tls: Option<TlsConfig>,
}

/// TLS settings.
#[derive(Debug, Deserialize, Clone, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub crt_file: PathBuf,
    /// PEM private key.
    pub key_file: PathBuf,
    /// PEM certificates of the authorities client certificates must chain to. When
    /// set, every client must present such a certificate; the handshake fails
    /// otherwise.
    pub client_ca_file: Option<PathBuf>,
}

fn default_max_frame_bytes() -> usize {
    10 * 1024 * 1024
}
fn default_max_batch_events() -> usize {
    2048
}
fn default_max_batch_bytes() -> usize {
    1024 * 1024
}
fn default_header_timeout_secs() -> u64 {
    30
}
fn default_keepalive_secs() -> u64 {
    5
}
fn yes() -> bool {
    true
}

impl BeatsSourceConfig {
    /// The address, after checking every option.
    pub fn validate(&self) -> Result<SocketAddr, BuildError> {
        let address: SocketAddr = self.address.parse().map_err(|e| {
            BuildError::key(
                "address",
                format!("`{}` is not an address like 0.0.0.0:5044: {e}", self.address),
            )
        })?;
        for (key, value) in [
            ("max_frame_bytes", self.max_frame_bytes as u64),
            ("max_batch_events", self.max_batch_events as u64),
            ("max_batch_bytes", self.max_batch_bytes as u64),
            ("max_connections", self.max_connections as u64),
            ("header_timeout_secs", self.header_timeout_secs),
            ("idle_timeout_secs", self.idle_timeout_secs),
        ] {
            if value == 0 {
                return Err(BuildError::key(key, "must be at least 1"));
            }
        }
        if self.max_frame_bytes > u32::MAX as usize {
            return Err(BuildError::key(
                "max_frame_bytes",
                "must fit the protocol's 32-bit lengths (at most 4294967295)",
            ));
        }
        if (self.max_in_flight_bytes as u128) < 3 * self.max_frame_bytes as u128 {
            return Err(BuildError::key(
                "max_in_flight_bytes",
                format!(
                    "must be at least 3 × max_frame_bytes ({}), or a largest compressed frame could never be taken",
                    3 * self.max_frame_bytes as u128
                ),
            ));
        }
        Ok(address)
    }
}

impl TlsConfig {
    /// The rustls server configuration: this certificate and key, and client
    /// certificates required when `client_ca_file` is set.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, BuildError> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs = |key: &str, path: &Path| -> Result<Vec<CertificateDer<'static>>, BuildError> {
            let unreadable = |e: &dyn std::fmt::Display| {
                BuildError::key(key, format!("cannot read certificates from {}: {e}", path.display()))
            };
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| unreadable(&e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| unreadable(&e))?;
            if certs.is_empty() {
                return Err(unreadable(&"no PEM certificate in it"));
            }
            Ok(certs)
        };
        let chain = certs("tls.crt_file", &self.crt_file)?;
        let key = PrivateKeyDer::from_pem_file(&self.key_file).map_err(|e| {
            BuildError::key(
                "tls.key_file",
                format!("cannot read a PEM private key from {}: {e}", self.key_file.display()),
            )
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| BuildError::key("tls", format!("no TLS version to offer: {e}")))?;
        let builder = match &self.client_ca_file {
            None => builder.with_no_client_auth(),
            Some(path) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in certs("tls.client_ca_file", path)? {
                    roots.add(cert).map_err(|e| {
                        BuildError::key(
                            "tls.client_ca_file",
                            format!("{} holds a certificate rustls refuses: {e}", path.display()),
                        )
                    })?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .map_err(|e| BuildError::key("tls.client_ca_file", e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder
            .with_single_cert(chain, key)
            .map_err(|e| BuildError::key("tls", format!("the certificate and key do not make a server: {e}")))?;
        Ok(Arc::new(config))
    }
}
