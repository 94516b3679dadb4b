//! SQL over the stream: the `sql` transform (DataFusion), per batch or over
//! event-time windows.

mod engine;
pub mod transform;
mod window;

use crate::component::{ComponentDef, Kind};

/// The `sql` transform.
pub const SQL: ComponentDef = ComponentDef {
    kind: Kind::Transform,
    name: "sql",
    doc: "Runs a DataFusion SQL query per batch or over tumbling/hopping event-time windows.",
    build: transform::build,
    options: || schemars::schema_for!(transform::SqlConfig),
    example: include_str!("example.toml"),
    events: &[],
    gauges: &[],
};
