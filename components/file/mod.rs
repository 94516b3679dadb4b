//! Local files: the `file` source (tail with checkpoints) and the `file` sink.

mod checkpoint;
mod count;
pub mod events;
mod fingerprint;
pub mod lines;
pub mod sink;
pub mod source;
mod tailer;

use crate::component::{ComponentDef, Kind};
use crate::metrics::InternalEvent;

/// The `file` source.
pub const SOURCE: ComponentDef = ComponentDef {
    kind: Kind::Source,
    name: "file",
    doc: "Tails files matched by globs; survives rotation, restarts and kill -9 without losing a line.",
    build: source::build,
    options: || schemars::schema_for!(source::FileSourceConfig),
    example: include_str!("example.toml"),
    events: &[
        &events::OpenFailed::SPEC,
        &events::ReadFailed::SPEC,
        &events::FileTruncated::SPEC,
        &events::LineTruncated::SPEC,
        &events::LineDropped::SPEC,
        &events::InvalidUtf8::SPEC,
        &events::UndecodableLines::SPEC,
        &events::UndeliveredBatch::SPEC,
        &events::RejectedBySink::SPEC,
        &events::CheckpointWriteFailed::SPEC,
    ],
    gauges: &[&events::FILES_WATCHED, &events::BYTES_BEHIND],
    commands: &[],
    count: None,
    query: None,
};

/// The `file` sink.
pub const SINK: ComponentDef = ComponentDef {
    kind: Kind::Sink,
    name: "file",
    doc: "Writes JSON lines or text to files named by a template, optionally gzip; acknowledges after fsync.",
    build: sink::build,
    options: || schemars::schema_for!(sink::FileSinkConfig),
    example: include_str!("example.toml"),
    events: &[
        &events::PathNotRendered::SPEC,
        &events::PathNotOpened::SPEC,
        &events::UnwritablePath::SPEC,
        &events::WriteFailed::SPEC,
    ],
    gauges: &[&events::OPEN_FILES, &crate::retry::RETRYING],
    commands: &[],
    count: Some(count::count),
    query: None,
};
