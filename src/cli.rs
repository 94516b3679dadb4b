//! Subcommands that components add to `pipe` (`pipe query`, `pipe kafka-mock`). A
//! registry entry lists its own in [`ComponentDef::commands`]; the binary adds each to
//! its command line and, when the user picks one, hands it its matches and the global
//! flags. The binary names no component.
//!
//! [`ComponentDef::commands`]: crate::component::ComponentDef::commands

use crate::config::Overrides;
use std::path::PathBuf;
use std::process::ExitCode;

/// One subcommand of `pipe`, contributed by a component.
pub struct CliCommand {
    /// Its name on the command line: the name of the command [`CliCommand::command`]
    /// returns.
    pub name: &'static str,
    /// Its arguments, help text and nested subcommands (a clap derive's
    /// `CommandFactory::command`).
    pub command: fn() -> clap::Command,
    /// Runs it with its own matches and the global flags; returns the exit code.
    pub run: fn(&clap::ArgMatches, &CliGlobals) -> ExitCode,
}

/// What a component's subcommand gets from `pipe`'s global flags.
#[derive(Debug, Clone, Default)]
pub struct CliGlobals {
    /// The `-t/--topology` files, in the order given.
    pub topology: Vec<PathBuf>,
    /// What the command line overrides in a topology (`--data-dir`, `PIPE_DATA_DIR`).
    pub overrides: Overrides,
}

/// The subcommand's arguments as its clap derive type. The matches come from that
/// type's own command, so this fails only on a bug; clap prints why and exits.
pub fn args<T: clap::FromArgMatches>(matches: &clap::ArgMatches) -> T {
    T::from_arg_matches(matches).unwrap_or_else(|e| e.exit())
}

/// A multi-threaded runtime for a subcommand; when it cannot start, says so on
/// standard error and gives the exit code.
pub fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("cannot start the runtime: {e}");
            ExitCode::FAILURE
        })
}
