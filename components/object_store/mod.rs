//! The `object_store` sink: the archive. Events become complete, compressed files
//! (Parquet, or JSON/text lines) on local disk, S3 or GCS, laid out in Hive partitions
//! (`dt=2026-11-25/hour=13/…`) that Hive, Trino/Presto, BigQuery, DuckDB and
//! `pipe query` read as they are.
//!
//! Everything about the archive lives here:
//! - where it lives: [`store`] (a directory, `s3://` or `gs://`, opened as one store)
//!   and [`google_auth`] (the Google credentials GCS and BigQuery share);
//! - writing it: [`config`] (the sink's options), [`encoder`] (one staged file),
//!   [`upload`] (placing a finished file whole), `sink` (the loop that routes events
//!   to files, rolls them over and uploads them);
//! - reading it: [`table`] (its files and partitions as one DataFusion table),
//!   [`query`] (`pipe query` and the API's SQL, guarded by [`read_only`]) and [`ddl`] (`pipe archive
//!   ddl`); `cli` puts those two on the command line.
//!
//! The re-exports below are what other sinks writing the same kind of files (a
//! BigQuery loader) reuse: the store, the checked options, the staged-file encoder
//! and the upload.

mod cli;
pub mod config;
mod count;
pub mod ddl;
pub mod encoder;
pub mod events;
mod gcs;
pub mod google_auth;
pub mod query;
pub mod read_only;
mod sink;
pub mod store;
pub mod table;
pub mod upload;

pub use config::{ArchiveConfig, Checked, FileCompression, FileEncoding};
pub use encoder::{EncodeError, Provenance, StagedFile};
pub use read_only::{ReadOnlyError, check_read_only};
pub use sink::{AfterPlace, ArchiveSink, PlacedFile};
pub use store::{GcsTarget, Store, StoreError, StoreOptions};
pub use upload::{Finished, UploadError, place};

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
    commands: cli::COMMANDS,
    count: Some(count::count),
    query: Some(query::QUERY),
};
