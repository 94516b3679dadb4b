//! `pipe convert logstash` on the command line: reads the files, converts them,
//! writes the topology to standard output or `-o FILE`, lists every TODO on
//! standard error, and checks the result the way `pipe validate` does.

use super::convert::{Options, convert};
use crate::cli::{self, CliCommand, CliGlobals};
use crate::config::{self, EXIT_CONFIG};
use clap::{CommandFactory, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// The subcommands the converter adds.
pub const COMMANDS: &[CliCommand] = &[CliCommand {
    name: "convert",
    command: ConvertCommand::command,
    run,
}];

/// Write a pipe topology from another tool's configuration.
#[derive(Parser, Debug)]
#[command(name = "convert")]
struct ConvertCommand {
    #[command(subcommand)]
    from: From,
}

#[derive(Subcommand, Debug)]
enum From {
    /// A Logstash pipeline config (input/filter/output sections; several files form
    /// one pipeline, as with `logstash -f dir/`). What has no pipe equivalent is
    /// listed on standard error and left in the output as `# TODO (file:line): …`.
    Logstash {
        /// The config files, in order.
        #[arg(required = true, value_name = "FILE.conf")]
        files: Vec<PathBuf>,
        /// Write the topology here instead of standard output.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
        /// Read `\n`, `\t`, `\"`, … in quoted strings as escapes (Logstash's
        /// `config.support_escapes: true`); by default they stay as written.
        #[arg(long)]
        support_escapes: bool,
    },
}

fn run(matches: &clap::ArgMatches, _: &CliGlobals) -> ExitCode {
    let args: ConvertCommand = cli::args(matches);
    let From::Logstash {
        files,
        output,
        support_escapes,
    } = args.from;
    let mut texts = Vec::new();
    for f in &files {
        match std::fs::read_to_string(f) {
            Ok(t) => texts.push((f.display().to_string(), t)),
            Err(e) => {
                eprintln!("pipe convert logstash: cannot read {}: {e}", f.display());
                return ExitCode::from(EXIT_CONFIG);
            }
        }
    }
    let conversion = match convert(&texts, &Options { support_escapes }) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    for t in &conversion.todos {
        eprintln!("{}:{}: TODO: {}", t.file, t.line, t.message);
    }
    let written = match &output {
        Some(path) => std::fs::write(path, &conversion.toml),
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            out.write_all(conversion.toml.as_bytes()).and_then(|_| out.flush())
        }
    };
    if let Err(e) = written {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("pipe convert logstash: cannot write the topology: {e}");
            return ExitCode::FAILURE;
        }
    }
    eprintln!(
        "Converted {} file{}: {} TODO{}.",
        files.len(),
        if files.len() == 1 { "" } else { "s" },
        conversion.todos.len(),
        if conversion.todos.len() == 1 { "" } else { "s" }
    );
    // The same check as `pipe validate`, when the variables it reads are set.
    let missing: Vec<&String> = conversion
        .env
        .iter()
        .filter(|v| std::env::var_os(v).is_none())
        .collect();
    if missing.is_empty() {
        let dir = std::env::temp_dir();
        let overrides = config::Overrides {
            data_dir: Some(dir),
            ..Default::default()
        };
        let name = output.clone().unwrap_or_else(|| PathBuf::from("converted.toml"));
        if let Err(errors) = config::load_str(&name, &conversion.toml, &overrides) {
            eprintln!(
                "pipe convert logstash: the topology written does not validate (a bug of the converter):\n{errors}"
            );
            return ExitCode::FAILURE;
        }
    } else {
        eprintln!(
            "Set {} before `pipe validate`: the topology reads {} as the Logstash config did.",
            missing.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", "),
            if missing.len() == 1 { "it" } else { "them" }
        );
    }
    ExitCode::SUCCESS
}
