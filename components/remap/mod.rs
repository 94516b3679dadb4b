//! VRL transforms: `remap` (reshape events), `filter` (keep events matching a
//! condition) and `route` (send events to named outputs by condition).

pub mod events;
mod filter;
mod route;
mod vrl_remap;

use crate::component::{ComponentDef, Kind};
use crate::metrics::InternalEvent;

/// The `remap` transform.
pub const REMAP: ComponentDef = ComponentDef {
    kind: Kind::Transform,
    name: "remap",
    doc: "Reshapes events with a VRL program; failures are counted and can go to output `ID.dropped`.",
    build: vrl_remap::build,
    options: || schemars::schema_for!(vrl_remap::RemapConfig),
    example: include_str!("example.toml"),
    events: &[
        &events::VrlRuntime::SPEC,
        &events::VrlAbort::SPEC,
        &events::DroppedOnError::SPEC,
        &events::DroppedOnAbort::SPEC,
    ],
    gauges: &[],
    commands: &[],
    count: None,
    query: None,
};

/// The `filter` transform.
pub const FILTER: ComponentDef = ComponentDef {
    kind: Kind::Transform,
    name: "filter",
    doc: "Keeps the events for which a VRL condition is true.",
    build: filter::build,
    options: || schemars::schema_for!(filter::FilterConfig),
    example: include_str!("example.toml"),
    events: &[
        &events::ConditionNotBoolean::SPEC,
        &events::ConditionFailed::SPEC,
        &events::Filtered::SPEC,
    ],
    gauges: &[],
    commands: &[],
    count: None,
    query: None,
};

/// The `route` transform.
pub const ROUTE: ComponentDef = ComponentDef {
    kind: Kind::Transform,
    name: "route",
    doc: "Sends events to outputs `ID.NAME` by VRL conditions; the rest to `ID._unmatched`.",
    build: route::build,
    options: || schemars::schema_for!(route::RouteConfig),
    example: include_str!("example.toml"),
    events: &[&events::ConditionNotBoolean::SPEC, &events::ConditionFailed::SPEC],
    gauges: &[],
    commands: &[],
    count: None,
    query: None,
};
