//! The `object_store` sink: the archive. Events become complete, compressed files
//! (Parquet, or JSON/text lines) on local disk, S3 or GCS, laid out in Hive partitions
//! (`dt=2026-11-25/hour=13/…`) that Hive, Trino/Presto, BigQuery, DuckDB and
//! `pipe query` read as they are.

pub mod config;
mod encoder;
pub mod events;
mod gcs;
pub mod google_auth;
mod sink;
mod upload;

use crate::component::{ComponentDef, Kind};

/// The `object_store` sink.
pub const SINK: ComponentDef = ComponentDef {
    kind: Kind::Sink,
    name: "object_store",
    doc: "Archives events as Parquet or compressed JSON lines in Hive partitions on disk, S3 or GCS.",
    build: sink::build,
    options: || schemars::schema_for!(config::ArchiveConfig),
    example: include_str!("example.toml"),
    events: events::EVENTS,
    gauges: events::GAUGES,
};
