//! The `pipe` engine: topology configuration, events and their acknowledgements, the
//! running graph, and the component registry.
//!
//! The engine in `src/` knows no component by name. Components live in
//! `components/` (one folder per family) and reach the engine through the
//! [`components::REGISTRY`] table; the engine builds whatever the topology names from
//! that table. Entry points: [`config::load`] turns TOML files into a validated
//! [`config::Topology`], and [`topology::run`] runs it until its sources finish or a
//! shutdown signal arrives.

pub mod ack;
pub mod api;
pub mod buffer;
pub mod cli;
pub mod columnar;
pub mod component;
pub mod compression;
pub mod config;
pub mod decoding;
pub mod docs;
pub mod encoding;
pub mod error;
pub mod event;
#[doc(hidden)]
pub mod fuzz_entry;
pub mod line_diff;
pub mod metrics;
pub mod queryable;
pub mod reconcile;
pub mod rejects;
pub mod retry;
pub mod secret;
pub mod shutdown;
pub mod tap;
pub mod template;
pub mod testing;
pub mod topology;
pub mod vrl_program;

#[path = "../components/mod.rs"]
pub mod components;
