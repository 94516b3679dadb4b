//! Every component type, registered in one table.
//!
//! A component lives in its own folder (config, implementation, tests, an
//! `example.toml`) and becomes available by adding one line to [`REGISTRY`].

pub mod basic;
pub mod file;
pub mod remap;

use crate::component::{ComponentDef, Kind};

/// Every component type pipe knows.
pub static REGISTRY: &[ComponentDef] = &[
    file::SOURCE,
    basic::STDIN,
    basic::GENERATOR,
    remap::REMAP,
    remap::FILTER,
    remap::ROUTE,
    file::SINK,
    basic::CONSOLE,
    basic::BLACKHOLE,
];

/// The component type `name` of `kind`.
pub fn find(kind: Kind, name: &str) -> Option<&'static ComponentDef> {
    REGISTRY.iter().find(|d| d.kind == kind && d.name == name)
}

/// The names of every type of `kind`.
pub fn names(kind: Kind) -> Vec<&'static str> {
    REGISTRY.iter().filter(|d| d.kind == kind).map(|d| d.name).collect()
}
