//! Elasticsearch: the `elasticsearch` sink (`_bulk`, per-item results, dead letters).

mod bulk;
mod count;
pub mod events;
pub mod sink;

use crate::component::{ComponentDef, Kind};

/// The `elasticsearch` sink.
pub const SINK: ComponentDef = ComponentDef {
    kind: Kind::Sink,
    name: "elasticsearch",
    doc: "Indexes events with _bulk; retries failed items alone, refused ones go to output `ID.dropped`.",
    build: sink::build,
    options: || schemars::schema_for!(sink::ElasticsearchConfig),
    example: include_str!("example.toml"),
    events: events::EVENTS,
    gauges: &[&crate::retry::RETRYING],
    commands: &[],
    count: Some(count::count),
    query: None,
};
