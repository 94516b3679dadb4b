//! Every component type, registered in one table.
//!
//! A component lives in its own folder (config, implementation, tests, an
//! `example.toml`) and becomes available by adding one line to [`REGISTRY`].

pub mod basic;
pub mod beats;
pub mod bigquery;
pub mod elasticsearch;
pub mod file;
pub mod http;
pub mod kafka;
pub mod logstash;
pub mod object_store;
pub mod remap;
pub mod sql;

use crate::cli::CliCommand;
use crate::component::{ComponentDef, Kind};

/// Every component type pipe knows.
pub static REGISTRY: &[ComponentDef] = &[
    file::SOURCE,
    http::SOURCE,
    beats::SOURCE,
    kafka::SOURCE,
    basic::STDIN,
    basic::GENERATOR,
    remap::REMAP,
    remap::FILTER,
    remap::ROUTE,
    sql::SQL,
    file::SINK,
    elasticsearch::SINK,
    kafka::SINK,
    object_store::SINK,
    bigquery::SINK,
    basic::CONSOLE,
    basic::BLACKHOLE,
];

/// Subcommands of tools that are no component (`pipe convert logstash`), after
/// those the registry's entries contribute.
pub static TOOLS: &[&[CliCommand]] = &[logstash::COMMANDS];

/// Every contributed subcommand: the registry's, then the tools'.
pub fn commands() -> impl Iterator<Item = &'static CliCommand> {
    REGISTRY
        .iter()
        .flat_map(|d| d.commands)
        .chain(TOOLS.iter().flat_map(|t| t.iter()))
}

/// The component type `name` of `kind`.
pub fn find(kind: Kind, name: &str) -> Option<&'static ComponentDef> {
    REGISTRY.iter().find(|d| d.kind == kind && d.name == name)
}

/// The names of every type of `kind`.
pub fn names(kind: Kind) -> Vec<&'static str> {
    REGISTRY.iter().filter(|d| d.kind == kind).map(|d| d.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Names are unique per kind, every entry has docs, and every example topology
    /// parses, validates and builds.
    #[test]
    fn registry_is_consistent_and_examples_validate() {
        let mut seen = HashSet::new();
        for def in REGISTRY {
            assert!(
                seen.insert((def.kind.name(), def.name)),
                "duplicate {} {}",
                def.kind.name(),
                def.name
            );
            assert!(
                !def.doc.is_empty() && def.doc.ends_with('.'),
                "{} needs a one-line doc",
                def.name
            );
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("example.toml");
            std::fs::write(&path, def.example).unwrap();
            let overrides = crate::config::Overrides {
                data_dir: Some(dir.path().to_path_buf()),
                ..Default::default()
            };
            if let Err(e) = crate::config::load(&[path], &overrides) {
                panic!("example of {} {} does not validate:\n{e}", def.kind.name(), def.name);
            }
            assert!(
                def.example.contains(&format!("type = \"{}\"", def.name)),
                "example of {} does not use it",
                def.name
            );
        }
    }

    /// The subcommands entries and tools contribute have unique names, each the
    /// name of its clap command, and clap accepts their definitions.
    #[test]
    fn contributed_subcommands_are_unique_and_well_formed() {
        let mut seen = HashSet::new();
        for c in commands() {
            assert!(seen.insert(c.name), "subcommand `{}` is contributed twice", c.name);
            let command = (c.command)();
            assert_eq!(command.get_name(), c.name);
            assert!(command.get_about().is_some(), "`pipe {}` needs a help line", c.name);
            command.debug_assert();
        }
        for name in ["query", "archive", "kafka-mock", "convert"] {
            assert!(seen.contains(name), "`pipe {name}` is not contributed");
        }
    }
}
