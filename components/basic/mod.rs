//! Small local components: `stdin` and `generator` sources, `console` and
//! `blackhole` sinks.

mod blackhole;
mod console;
pub mod events;
mod generator;
mod stdin;

use crate::component::{ComponentDef, Kind};
use crate::metrics::InternalEvent;

/// The `stdin` source.
pub const STDIN: ComponentDef = ComponentDef {
    kind: Kind::Source,
    name: "stdin",
    doc: "Reads lines from standard input; when it closes, pipe drains and exits (batch jobs).",
    build: stdin::build,
    options: || schemars::schema_for!(stdin::StdinConfig),
    example: include_str!("example.toml"),
    events: &[&events::LineTruncated::SPEC, &events::UndecodableLine::SPEC],
    gauges: &[],
    commands: &[],
    count: None,
    query: None,
};

/// The `generator` source.
pub const GENERATOR: ComponentDef = ComponentDef {
    kind: Kind::Source,
    name: "generator",
    doc: "Emits synthetic log lines or JSON events, at a rate or as fast as possible, a count or forever.",
    build: generator::build,
    options: || schemars::schema_for!(generator::GeneratorConfig),
    example: include_str!("example.toml"),
    events: &[],
    gauges: &[],
    commands: &[],
    count: None,
    query: None,
};

/// The `console` sink.
pub const CONSOLE: ComponentDef = ComponentDef {
    kind: Kind::Sink,
    name: "console",
    doc: "Prints events to standard output as JSON lines or text.",
    build: console::build,
    options: || schemars::schema_for!(console::ConsoleConfig),
    example: include_str!("example.toml"),
    events: &[&events::StdoutFailed::SPEC],
    gauges: &[],
    commands: &[],
    count: None,
    query: None,
};

/// The `blackhole` sink.
pub const BLACKHOLE: ComponentDef = ComponentDef {
    kind: Kind::Sink,
    name: "blackhole",
    doc: "Discards events (acknowledging them); for tests and benchmarks.",
    build: blackhole::build,
    options: || schemars::schema_for!(blackhole::BlackholeConfig),
    example: include_str!("example.toml"),
    events: &[],
    gauges: &[],
    commands: &[],
    count: None,
    query: None,
};
