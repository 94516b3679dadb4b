//! Beats in: the `beats` source, a Lumberjack v2 server (Filebeat's and the other
//! Beats' `output.logstash`, Logstash's `lumberjack` output; v1 logstash-forwarder
//! frames too) that ACKs a window only once every sink has its events.

pub mod config;
pub mod events;
pub mod frame;
pub mod payload;
pub mod server;

use crate::component::{BuildContext, BuildError, Built, ComponentDef, Kind, Resource, parse_options};

/// The `beats` source.
pub const SOURCE: ComponentDef = ComponentDef {
    kind: Kind::Source,
    name: "beats",
    doc: "Receives events from Beats and Logstash over Lumberjack (TLS optional); ACKs a window once it is delivered.",
    build,
    options: || schemars::schema_for!(config::BeatsSourceConfig),
    example: include_str!("example.toml"),
    events: events::EVENTS,
    gauges: &[&events::CONNECTIONS],
    commands: &[],
    count: None,
    query: None,
};

/// Builds the `beats` source (loading its TLS certificate and key, if any).
fn build(_cx: &BuildContext, options: toml::Value) -> Result<Built, BuildError> {
    let config: config::BeatsSourceConfig = parse_options(options)?;
    let address = config.validate()?;
    let tls = config.tls.as_ref().map(config::TlsConfig::server_config).transpose()?;
    // A renewed certificate is a change: a reload (or --watch) picks it up.
    let files: Vec<_> = config
        .tls
        .iter()
        .flat_map(|t| {
            [
                Some(t.crt_file.clone()),
                Some(t.key_file.clone()),
                t.client_ca_file.clone(),
            ]
        })
        .flatten()
        .collect();
    let built = Built::source(server::BeatsSource { config, address, tls }).claim(Resource::Port(address.to_string()));
    Ok(files.into_iter().fold(built, Built::reading))
}
