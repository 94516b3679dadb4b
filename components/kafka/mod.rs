//! Kafka both ways: the `kafka` source (a consumer-group member that commits only
//! what is delivered) and the `kafka` sink (an idempotent producer acknowledging from
//! delivery reports). `pipe kafka-mock` ([`mock`], on the command line through
//! `cli`) hosts an in-memory cluster to try them against.

mod cli;
mod client;
mod count;
pub mod events;
pub mod mock;
pub mod sink;
pub mod source;
mod watermark;

use crate::component::{ComponentDef, Kind};

/// The `kafka` source.
pub const SOURCE: ComponentDef = ComponentDef {
    kind: Kind::Source,
    name: "kafka",
    doc: "Consumes topics in a consumer group; commits offsets only once every sink has the records.",
    build: source::build,
    options: || schemars::schema_for!(source::KafkaSourceConfig),
    example: include_str!("example.toml"),
    events: events::SOURCE_EVENTS,
    gauges: events::SOURCE_GAUGES,
    // `pipe kafka-mock` serves the source and the sink alike; it is listed once.
    commands: cli::COMMANDS,
    count: None,
    query: None,
};

/// The `kafka` sink.
pub const SINK: ComponentDef = ComponentDef {
    kind: Kind::Sink,
    name: "kafka",
    doc: "Produces events to templated topics (idempotent, acks=all, lz4); acknowledges from delivery reports.",
    build: sink::build,
    options: || schemars::schema_for!(sink::KafkaSinkConfig),
    example: include_str!("example.toml"),
    events: events::SINK_EVENTS,
    gauges: events::SINK_GAUGES,
    commands: &[],
    count: Some(count::count),
    query: None,
};
