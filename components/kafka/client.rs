//! What the Kafka source and sink share: connection options (brokers, SASL, TLS,
//! librdkafka passthrough) turned into an rdkafka `ClientConfig`, and the client
//! context that turns librdkafka's callbacks into one log line per state change and
//! into counters.
//!
//! Secrets (the SASL password, the TLS key password, passthrough properties such as
//! `sasl.password`) never print: they are [`Secret`]s or redacted in `Debug`, and
//! SASL without TLS is warned about when the component is built.

use super::events::{BrokerTransport, BrokersDown, KafkaClient, Side};
use crate::component::BuildError;
use crate::metrics::{ComponentMetrics, Emitter, GaugeFamily};
use crate::secret::Secret;
use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::statistics::Statistics;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// SASL credentials.
#[derive(Debug, Deserialize, Clone, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sasl {
    /// `"PLAIN"`, `"SCRAM-SHA-256"` or `"SCRAM-SHA-512"`.
    #[serde(default = "default_mechanism")]
    pub mechanism: String,
    /// The user name.
    pub username: String,
    /// The password; never logged.
    pub password: Secret,
}

fn default_mechanism() -> String {
    "PLAIN".into()
}

/// TLS to the brokers.
#[derive(Debug, Deserialize, Clone, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// PEM CA certificates to trust (default: the system's).
    pub ca_file: Option<PathBuf>,
    /// Client certificate, PEM, for mutual TLS.
    pub crt_file: Option<PathBuf>,
    /// Client key, PEM.
    pub key_file: Option<PathBuf>,
    /// Password of the client key; never logged.
    pub key_password: Option<Secret>,
    /// Check the broker certificate's host name.
    #[serde(default = "yes")]
    pub verify_hostname: bool,
}

fn yes() -> bool {
    true
}

impl Default for Tls {
    fn default() -> Self {
        Tls {
            ca_file: None,
            crt_file: None,
            key_file: None,
            key_password: None,
            verify_hostname: true,
        }
    }
}

/// `librdkafka_options`: any librdkafka property, applied last. `Debug` hides the
/// values of properties that hold secrets (`sasl.password`, `ssl.key.password`, …).
#[derive(Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
pub struct LibrdkafkaOptions(pub BTreeMap<String, String>);

impl LibrdkafkaOptions {
    /// True for a property whose value must not be shown.
    pub fn is_secret(key: &str) -> bool {
        let key = key.to_ascii_lowercase();
        ["password", "secret", "jaas", "oauthbearer.config", "key.pem", "token"]
            .iter()
            .any(|s| key.contains(s))
    }
}

impl std::fmt::Debug for LibrdkafkaOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(
                self.0
                    .iter()
                    .map(|(k, v)| (k, if Self::is_secret(k) { "***" } else { v.as_str() })),
            )
            .finish()
    }
}

/// The connection options both components take.
pub struct Connection<'a> {
    /// The component, for the warnings.
    pub id: &'a str,
    pub bootstrap_servers: &'a str,
    pub sasl: Option<&'a Sasl>,
    pub tls: Option<&'a Tls>,
    pub librdkafka_options: &'a LibrdkafkaOptions,
}

impl Connection<'_> {
    /// A client config with pipe's `defaults`, then the connection settings, then the
    /// user's `librdkafka_options` (which win).
    pub fn client_config(&self, defaults: &[(&str, &str)]) -> Result<ClientConfig, BuildError> {
        if self.bootstrap_servers.trim().is_empty() {
            return Err(BuildError::key(
                "bootstrap_servers",
                "must name at least one broker, e.g. `127.0.0.1:9092`",
            ));
        }
        let mut c = ClientConfig::new();
        for (k, v) in defaults {
            c.set(*k, *v);
        }
        c.set("bootstrap.servers", self.bootstrap_servers);
        let protocol = match (self.sasl.is_some(), self.tls.is_some()) {
            (false, false) => "plaintext",
            (false, true) => "ssl",
            (true, false) => "sasl_plaintext",
            (true, true) => "sasl_ssl",
        };
        c.set("security.protocol", protocol);
        if let Some(sasl) = self.sasl {
            let mechanism = sasl.mechanism.to_ascii_uppercase();
            if !["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"].contains(&mechanism.as_str()) {
                return Err(BuildError::key(
                    "sasl.mechanism",
                    format!(
                        "unknown SASL mechanism `{}` (use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)",
                        sasl.mechanism
                    ),
                ));
            }
            c.set("sasl.mechanism", mechanism);
            c.set("sasl.username", &sasl.username);
            c.set("sasl.password", sasl.password.expose());
        }
        if let Some(tls) = self.tls {
            let mut file = |key: &str, option: &str, path: &Option<PathBuf>| -> Result<(), BuildError> {
                if let Some(p) = path {
                    if !p.is_file() {
                        return Err(BuildError::key(option, format!("no such file: {}", p.display())));
                    }
                    c.set(key, p.display().to_string());
                }
                Ok(())
            };
            file("ssl.ca.location", "tls.ca_file", &tls.ca_file)?;
            file("ssl.certificate.location", "tls.crt_file", &tls.crt_file)?;
            file("ssl.key.location", "tls.key_file", &tls.key_file)?;
            if let Some(p) = &tls.key_password {
                c.set("ssl.key.password", p.expose());
            }
            c.set(
                "ssl.endpoint.identification.algorithm",
                if tls.verify_hostname { "https" } else { "none" },
            );
        }
        for (k, v) in &self.librdkafka_options.0 {
            c.set(k, v);
        }
        let effective = c.get("security.protocol").unwrap_or_default().to_ascii_lowercase();
        if effective == "sasl_plaintext" {
            let mechanism = c.get("sasl.mechanism").unwrap_or("PLAIN").to_string();
            tracing::warn!(component = %self.id, security_protocol = "SASL_PLAINTEXT", sasl_mechanism = %mechanism, "SASL without TLS: the records, and with PLAIN the password, cross the network readable by anyone on the path; add a `tls` table to encrypt.");
        }
        Ok(c)
    }
}

/// librdkafka's callbacks for one component (the consumer or the producer, `S`):
/// client errors counted and logged once per state change (brokers down, brokers
/// back), consumer lag and end offsets from statistics.
pub struct Callbacks<S: Side> {
    pub id: String,
    pub metrics: Arc<ComponentMetrics>,
    brokers_down: AtomicBool,
    broker_transport_errors: Emitter<BrokerTransport<S>>,
    brokers_down_errors: Emitter<BrokersDown<S>>,
    client_errors: Emitter<KafkaClient<S>>,
    /// The consumer lag and end offset per partition, for consumers.
    partitions: Option<[GaugeFamily; 2]>,
}

impl<S: Side> Callbacks<S> {
    pub fn new(id: &str, metrics: Arc<ComponentMetrics>) -> Self {
        Callbacks {
            id: id.to_string(),
            broker_transport_errors: metrics.emitter(),
            brokers_down_errors: metrics.emitter(),
            client_errors: metrics.emitter(),
            metrics,
            brokers_down: AtomicBool::new(false),
            partitions: None,
        }
    }

    /// Sets the consumer lag and the end offset (high watermark) per partition in
    /// `lag` and `end_offsets` from librdkafka's statistics.
    pub fn with_lag(mut self, lag: GaugeFamily, end_offsets: GaugeFamily) -> Self {
        self.partitions = Some([lag, end_offsets]);
        self
    }

    /// The per-partition gauges (lag, end offset), if kept.
    pub fn partition_gauges(&self) -> impl Iterator<Item = &GaugeFamily> {
        self.partitions.iter().flatten()
    }

    /// Called when records flow again; logs once that the brokers are back.
    pub fn reachable(&self) {
        if self.brokers_down.load(Ordering::Relaxed) && self.brokers_down.swap(false, Ordering::Relaxed) {
            tracing::info!(component = %self.id, "Kafka brokers are reachable again.");
        }
    }
}

impl<S: Side> ClientContext for Callbacks<S> {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        // librdkafka repeats connection failures on every retry; the state changes
        // are logged once from `error` and `reachable`, the details at debug level.
        tracing::debug!(component = %self.id, level = ?level, facility = fac, "librdkafka: {message}");
    }

    fn stats(&self, statistics: Statistics) {
        let Some([lag, end_offsets]) = &self.partitions else {
            return;
        };
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                // Partition -1 is librdkafka's internal one; -1 is unknown, and only
                // partitions this consumer reads are reported.
                if *partition < 0 || p.consumer_lag < 0 {
                    continue;
                }
                let labels = [topic.as_str(), &partition.to_string()];
                lag.set(&labels, p.consumer_lag as u64);
                if p.hi_offset >= 0 {
                    end_offsets.set(&labels, p.hi_offset as u64);
                }
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::BrokerTransportFailure) {
            // One broker connection dropped: librdkafka reconnects by itself; all of
            // them gone is the state change worth a line (below).
            self.broker_transport_errors.count(1);
            tracing::debug!(component = %self.id, reason, "A Kafka broker connection failed; reconnecting.");
            return;
        }
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.brokers_down_errors.count(1);
            if !self.brokers_down.swap(true, Ordering::Relaxed) {
                tracing::warn!(component = %self.id, reason, "All Kafka brokers are unreachable; records wait and are retried until they come back.");
            }
            return;
        }
        self.client_errors
            .emit(KafkaClient::new(error.to_string(), reason.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(sasl: Option<&Sasl>, tls: Option<&Tls>, extra: &LibrdkafkaOptions) -> ClientConfig {
        Connection {
            id: "k",
            bootstrap_servers: "k1:9092,k2:9092",
            sasl,
            tls,
            librdkafka_options: extra,
        }
        .client_config(&[("acks", "all"), ("linger.ms", "5")])
        .unwrap()
    }

    #[test]
    fn security_protocol_follows_the_tables_and_passthrough_wins() {
        let none = LibrdkafkaOptions::default();
        assert_eq!(config(None, None, &none).get("security.protocol"), Some("plaintext"));
        let sasl = Sasl {
            mechanism: "scram-sha-512".into(),
            username: "u".into(),
            password: "p".into(),
        };
        let c = config(Some(&sasl), Some(&Tls::default()), &none);
        assert_eq!(c.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(c.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!(c.get("ssl.endpoint.identification.algorithm"), Some("https"));
        let extra = LibrdkafkaOptions(BTreeMap::from([("linger.ms".to_string(), "50".to_string())]));
        assert_eq!(config(None, None, &extra).get("linger.ms"), Some("50"));
    }

    #[test]
    fn mistakes_name_the_key() {
        let none = LibrdkafkaOptions::default();
        let bad = Sasl {
            mechanism: "GSSAPI".into(),
            username: "u".into(),
            password: "p".into(),
        };
        let c = Connection {
            id: "k",
            bootstrap_servers: "k:9092",
            sasl: Some(&bad),
            tls: None,
            librdkafka_options: &none,
        };
        assert_eq!(c.client_config(&[]).unwrap_err().key.as_deref(), Some("sasl.mechanism"));
        let tls = Tls {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..Tls::default()
        };
        let c = Connection {
            id: "k",
            bootstrap_servers: "k:9092",
            sasl: None,
            tls: Some(&tls),
            librdkafka_options: &none,
        };
        assert_eq!(c.client_config(&[]).unwrap_err().key.as_deref(), Some("tls.ca_file"));
    }

    #[test]
    fn secrets_do_not_print() {
        let sasl = Sasl {
            mechanism: "PLAIN".into(),
            username: "u".into(),
            password: "sasl-hunter2".into(),
        };
        let tls = Tls {
            key_password: Some("key-hunter2".into()),
            ..Tls::default()
        };
        let extra = LibrdkafkaOptions(BTreeMap::from([
            ("sasl.password".to_string(), "opt-hunter2".to_string()),
            ("linger.ms".to_string(), "50".to_string()),
        ]));
        let shown = format!("{sasl:?} {tls:?} {extra:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("linger.ms") && shown.contains("50"), "{shown}");
        let c = config(Some(&sasl), None, &LibrdkafkaOptions::default());
        assert_eq!(
            c.get("sasl.password"),
            Some("sasl-hunter2"),
            "librdkafka gets the real value"
        );
        assert_eq!(c.get("security.protocol"), Some("sasl_plaintext"));
    }
}
