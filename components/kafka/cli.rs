//! `pipe kafka-mock` on the command line: its arguments and what it runs
//! ([`super::mock`]), contributed to `pipe` through the `kafka` source's registry
//! entry.

use crate::cli::{self, CliCommand, CliGlobals};
use crate::config::EXIT_CONFIG;
use clap::{CommandFactory, Parser};
use std::process::ExitCode;

/// The subcommands the `kafka` registry entry adds.
pub const COMMANDS: &[CliCommand] = &[CliCommand {
    name: "kafka-mock",
    command: KafkaMockCommand::command,
    run,
}];

/// Run an in-memory Kafka-protocol cluster for trying and testing (librdkafka's
/// mock cluster): prints its bootstrap address, then takes `down [N]`, `up [N]`
/// and `create TOPIC PARTITIONS` on stdin until end of input.
#[derive(Parser, Debug)]
#[command(name = "kafka-mock")]
struct KafkaMockCommand {
    /// Number of brokers.
    #[arg(long, default_value_t = 1)]
    brokers: i32,
    /// Topic to create, as NAME:PARTITIONS (repeatable; others are created on
    /// first use with 4 partitions).
    #[arg(long = "topic", value_name = "NAME:PARTITIONS")]
    topics: Vec<String>,
}

fn run(matches: &clap::ArgMatches, _: &CliGlobals) -> ExitCode {
    let args: KafkaMockCommand = cli::args(matches);
    let mut parsed = Vec::new();
    for t in &args.topics {
        match t.rsplit_once(':').map(|(name, n)| (name, n.parse::<i32>())) {
            Some((name, Ok(n))) if !name.is_empty() && n > 0 => parsed.push((name.to_string(), n)),
            _ => {
                eprintln!("pipe kafka-mock: --topic `{t}` is not NAME:PARTITIONS");
                return ExitCode::from(EXIT_CONFIG);
            }
        }
    }
    match super::mock::run(args.brokers, &parsed) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pipe kafka-mock: {e}");
            ExitCode::FAILURE
        }
    }
}
