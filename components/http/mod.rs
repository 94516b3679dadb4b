//! HTTP ingest: the `http` source (JSON, NDJSON, text, and the Kafka REST Proxy's
//! v2 and v3 produce APIs).

pub mod decode;
pub mod events;
pub mod kafka_rest;
pub mod limits;
pub mod source;

use crate::component::{ComponentDef, Kind};

/// The `http` source.
pub const SOURCE: ComponentDef = ComponentDef {
    kind: Kind::Source,
    name: "http",
    doc: "Receives events over HTTP (JSON, NDJSON, text, Kafka REST v2 and v3); replies 200 once they are delivered.",
    build: source::build,
    options: || schemars::schema_for!(source::HttpSourceConfig),
    example: include_str!("example.toml"),
    events: events::EVENTS,
    gauges: &[],
    commands: &[],
    count: None,
    query: None,
};
