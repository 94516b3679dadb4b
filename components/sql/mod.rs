//! SQL over the stream: the `sql` transform (DataFusion), per batch or over
//! event-time windows.

mod engine;
pub mod events;
pub mod transform;
mod window;

use crate::component::{ComponentDef, Kind};
use crate::metrics::InternalEvent;

/// The `sql` transform.
pub const SQL: ComponentDef = ComponentDef {
    kind: Kind::Transform,
    name: "sql",
    doc: "Runs a DataFusion SQL query per batch or over tumbling/hopping event-time windows.",
    build: transform::build,
    options: || schemars::schema_for!(transform::SqlConfig),
    example: include_str!("example.toml"),
    events: &[
        &events::FutureTimestamp::SPEC,
        &events::Late::SPEC,
        &events::WindowEmittedEarly::SPEC,
        &events::QueryFailed::SPEC,
        crate::columnar::EVENTS[0],
        crate::columnar::EVENTS[1],
        crate::columnar::EVENTS[2],
    ],
    gauges: &[&events::BUFFERED_EVENTS],
    commands: &[],
    count: None,
    query: None,
};
