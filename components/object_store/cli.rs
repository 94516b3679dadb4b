//! `pipe query` and `pipe archive ddl` on the command line: their arguments, where
//! the archive is (a URL, or the `object_store` sink of a topology), and running
//! [`super::query`] and [`super::ddl`]. Contributed to `pipe` through the sink's
//! registry entry.

use super::ddl::{Dialect, ddl};
use super::query::{self, OutputFormat, Query};
use super::{ArchiveConfig, StoreOptions};
use crate::cli::{self, CliCommand, CliGlobals};
use crate::component::Kind;
use crate::config::{self, EXIT_CONFIG};
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The subcommands the `object_store` registry entry adds.
pub const COMMANDS: &[CliCommand] = &[
    CliCommand {
        name: "query",
        command: QueryCommand::command,
        run: run_query,
    },
    CliCommand {
        name: "archive",
        command: ArchiveCommand::command,
        run: run_archive,
    },
];

/// Run SQL over an archive written by an `object_store` sink; it is table `logs`
/// with its Hive partition columns (dt, hour, …), which prune directories.
#[derive(Parser, Debug)]
#[command(name = "query")]
struct QueryCommand {
    /// The SQL statement.
    sql: String,
    #[command(flatten)]
    archive: ArchiveArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Write the result to this file instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
    /// The query engine's memory, in MiB; a query needing more fails with
    /// "Resources exhausted" (sorts and aggregations spill to temporary files first).
    #[arg(long, value_name = "MIB", default_value_t = 4096)]
    memory_mib: usize,
}

/// Tools for archives written by an `object_store` sink.
#[derive(Parser, Debug)]
#[command(name = "archive")]
struct ArchiveCommand {
    #[command(subcommand)]
    command: ArchiveSubcommand,
}

#[derive(Subcommand, Debug)]
enum ArchiveSubcommand {
    /// Print the CREATE EXTERNAL TABLE statement (and partition discovery) that lets
    /// Hive, Trino/Presto or BigQuery read the archive where it is.
    Ddl {
        #[command(flatten)]
        archive: ArchiveArgs,
        /// The engine.
        #[arg(long, value_enum)]
        dialect: DialectArg,
    },
}

/// Which archive: a URL, or the `object_store` sink of a topology (`-t FILE`).
#[derive(clap::Args, Debug)]
struct ArchiveArgs {
    /// Archive location: a directory, s3://bucket/prefix or gs://bucket/prefix.
    #[arg(long, value_name = "URL", conflicts_with = "sink")]
    archive: Option<String>,
    /// The id of the `object_store` sink in the topology given with -t.
    #[arg(long, value_name = "ID")]
    sink: Option<String>,
    /// Table name to query (or to create in the DDL).
    #[arg(long, default_value = "logs")]
    table: String,
    /// Endpoint override (S3-compatible server, GCS emulator).
    #[arg(long, value_name = "URL")]
    endpoint: Option<String>,
    /// S3 region.
    #[arg(long)]
    region: Option<String>,
    /// Allow plain-HTTP endpoints.
    #[arg(long)]
    allow_http: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    Table,
    Csv,
    Json,
    Parquet,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum DialectArg {
    Hive,
    Trino,
    #[value(name = "bigquery")]
    BigQuery,
}

/// The archive location and store options named on the command line, or read from
/// the topology's sink; exits 78 when neither is usable.
fn archive_location(globals: &CliGlobals, args: &ArchiveArgs) -> Result<(String, StoreOptions), ExitCode> {
    let from_cli = StoreOptions {
        endpoint: args.endpoint.clone(),
        region: args.region.clone(),
        allow_http: args.allow_http,
    };
    if let Some(url) = &args.archive {
        return Ok((url.clone(), from_cli));
    }
    let Some(id) = &args.sink else {
        eprintln!("pipe: name the archive with --archive URL, or with -t TOPOLOGY --sink ID");
        return Err(ExitCode::from(EXIT_CONFIG));
    };
    let topology = match config::load(&globals.topology, &globals.overrides) {
        Ok(t) => t,
        Err(errors) => {
            eprintln!("{errors}");
            return Err(ExitCode::from(EXIT_CONFIG));
        }
    };
    let Some(node) = topology
        .nodes
        .iter()
        .find(|n| n.kind == Kind::Sink && &n.id == id && n.type_name == "object_store")
    else {
        let sinks: Vec<&str> = topology
            .nodes
            .iter()
            .filter(|n| n.type_name == "object_store")
            .map(|n| n.id.as_str())
            .collect();
        eprintln!(
            "pipe: the topology has no object_store sink `{id}` (it has: {})",
            sinks.join(", ")
        );
        return Err(ExitCode::from(EXIT_CONFIG));
    };
    let parsed = crate::component::parse_options::<ArchiveConfig>(toml::Value::Table(node.options.clone()))
        .and_then(ArchiveConfig::check);
    match parsed {
        Ok(c) => Ok((
            c.config.url,
            StoreOptions {
                endpoint: from_cli.endpoint.or(c.store.endpoint),
                region: from_cli.region.or(c.store.region),
                allow_http: from_cli.allow_http || c.store.allow_http,
            },
        )),
        Err(e) => {
            eprintln!("pipe: sinks.{id}: {e}");
            Err(ExitCode::from(EXIT_CONFIG))
        }
    }
}

fn run_query(matches: &clap::ArgMatches, globals: &CliGlobals) -> ExitCode {
    let QueryCommand {
        sql,
        archive: args,
        format,
        output,
        memory_mib,
    } = cli::args(matches);
    let (url, store) = match archive_location(globals, &args) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let q = Query {
        url,
        store,
        table: args.table,
        sql,
        format: match format {
            Format::Table => OutputFormat::Table,
            Format::Csv => OutputFormat::Csv,
            Format::Json => OutputFormat::Json,
            Format::Parquet => OutputFormat::Parquet,
        },
        memory_bytes: Some(memory_mib.saturating_mul(1 << 20)),
    };
    // Refused before anything is opened or created, the --output file included.
    if let Err(e) = query::check_read_only(&q.sql) {
        eprintln!("pipe query: {e}");
        return ExitCode::FAILURE;
    }
    let output: Option<&Path> = output.as_deref();
    if matches!(format, Format::Parquet) && output.is_none() && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        eprintln!("pipe query: Parquet is binary; write it with --output FILE or redirect standard output");
        return ExitCode::from(EXIT_CONFIG);
    }
    let mut out: Box<dyn std::io::Write + Send> = match output {
        Some(path) => match std::fs::File::create(path) {
            Ok(f) => Box::new(std::io::BufWriter::new(f)),
            Err(e) => {
                eprintln!("pipe query: cannot create {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        },
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    let runtime = match cli::runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    match runtime.block_on(query::run(&q, &mut *out)) {
        Ok(rows) => {
            if output.is_some() {
                eprintln!("{rows} rows written");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pipe query: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_archive(matches: &clap::ArgMatches, globals: &CliGlobals) -> ExitCode {
    let ArchiveCommand {
        command: ArchiveSubcommand::Ddl { archive, dialect },
    } = cli::args(matches);
    archive_ddl(globals, &archive, dialect)
}

fn archive_ddl(globals: &CliGlobals, args: &ArchiveArgs, dialect: DialectArg) -> ExitCode {
    let (url, store) = match archive_location(globals, args) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let runtime = match cli::runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let dialect = match dialect {
        DialectArg::Hive => Dialect::Hive,
        DialectArg::Trino => Dialect::Trino,
        DialectArg::BigQuery => Dialect::BigQuery,
    };
    match runtime.block_on(query::session(&url, &store, &args.table, None)) {
        Ok((_, table)) => match ddl(dialect, &args.table, &url, &table) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("pipe archive ddl: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("pipe archive ddl: {e}");
            ExitCode::FAILURE
        }
    }
}
