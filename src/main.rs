//! The `pipe` command line: run a topology, validate topology files, list component
//! types. Configuration errors exit with code 78.

use clap::{Parser, Subcommand, ValueEnum};
use pipe::component::Kind;
use pipe::config::{self, EXIT_CONFIG, Overrides};
use std::path::PathBuf;
use std::process::ExitCode;

// Events are allocated on one thread and freed on another, many small maps each:
// mimalloc does this several times cheaper than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EXAMPLES: &str = "\
Examples:
  pipe --topology topologies/all-in-one.toml       run a topology
  pipe -t base.toml -t sinks.toml                  files merge into one topology
  cat app.log | pipe -t batch.toml                 stdin source: exits when input ends
  pipe validate topologies/*.toml                  check files, exit 78 on mistakes
  pipe list                                        component types and what they do
  pipe kafka-mock                                  an in-memory Kafka for trying edge/aggregator";

/// One binary for log pipelines: tail files, reshape with VRL, ship and archive.
#[derive(Parser, Debug)]
#[command(name = "pipe", version, about, after_help = EXAMPLES)]
struct Cli {
    /// Topology file to run (repeatable; the files merge).
    #[arg(short = 't', long = "topology", value_name = "FILE", global = true)]
    topology: Vec<PathBuf>,
    /// Directory for checkpoints and buffers; wins over the topology's `data_dir`.
    #[arg(long, env = "PIPE_DATA_DIR", value_name = "DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// Log format on standard error.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    /// More logging (-v debug, -vv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Less logging (-q warnings and errors, -qq errors only).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    quiet: u8,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check topology files without running them (exit 78 on any mistake).
    Validate {
        /// Files to check; together they form one topology. Several files merge.
        files: Vec<PathBuf>,
    },
    /// List component types with a line about each.
    List,
    /// Run an in-memory Kafka-protocol cluster for trying and testing (librdkafka's
    /// mock cluster): prints its bootstrap address, then takes `down [N]`, `up [N]`
    /// and `create TOPIC PARTITIONS` on stdin until end of input.
    KafkaMock {
        /// Number of brokers.
        #[arg(long, default_value_t = 1)]
        brokers: i32,
        /// Topic to create, as NAME:PARTITIONS (repeatable; others are created on
        /// first use with 4 partitions).
        #[arg(long = "topic", value_name = "NAME:PARTITIONS")]
        topics: Vec<String>,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn init_logging(cli: &Cli) {
    let level = match cli.verbose as i8 - cli.quiet as i8 {
        i8::MIN..=-2 => "error",
        -1 => "warn",
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("PIPE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    match &cli.command {
        Some(Command::List) => list(),
        Some(Command::Validate { files }) => {
            let mut files = files.clone();
            files.extend(cli.topology.iter().cloned());
            validate(&files, &cli)
        }
        Some(Command::KafkaMock { brokers, topics }) => kafka_mock(*brokers, topics),
        None => run(&cli),
    }
}

fn kafka_mock(brokers: i32, topics: &[String]) -> ExitCode {
    let mut parsed = Vec::new();
    for t in topics {
        match t.rsplit_once(':').map(|(name, n)| (name, n.parse::<i32>())) {
            Some((name, Ok(n))) if !name.is_empty() && n > 0 => parsed.push((name.to_string(), n)),
            _ => {
                eprintln!("pipe kafka-mock: --topic `{t}` is not NAME:PARTITIONS");
                return ExitCode::from(EXIT_CONFIG);
            }
        }
    }
    match pipe::components::kafka::mock::run(brokers, &parsed) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pipe kafka-mock: {e}");
            ExitCode::FAILURE
        }
    }
}

fn overrides(cli: &Cli) -> Overrides {
    Overrides {
        data_dir: cli.data_dir.clone(),
    }
}

fn list() -> ExitCode {
    for kind in [Kind::Source, Kind::Transform, Kind::Sink] {
        println!("{}:", kind.table());
        for def in pipe::components::REGISTRY.iter().filter(|d| d.kind == kind) {
            println!("  {:<12} {}", def.name, def.doc);
        }
    }
    ExitCode::SUCCESS
}

fn validate(files: &[PathBuf], cli: &Cli) -> ExitCode {
    match config::load(files, &overrides(cli)) {
        Ok(t) => {
            let count = |k: Kind| t.nodes.iter().filter(|n| n.kind == k).count();
            println!(
                "ok: {} ({} sources, {} transforms, {} sinks)",
                files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" + "),
                count(Kind::Source),
                count(Kind::Transform),
                count(Kind::Sink)
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

fn run(cli: &Cli) -> ExitCode {
    let topology = match config::load(&cli.topology, &overrides(cli)) {
        Ok(t) => t,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Err(e) = std::fs::create_dir_all(&topology.data_dir) {
        eprintln!(
            "data_dir {}: cannot create it: {e} (set data_dir in the topology, --data-dir or PIPE_DATA_DIR)",
            topology.data_dir.display()
        );
        return ExitCode::from(EXIT_CONFIG);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let report = runtime.block_on(pipe::topology::run(topology));
    for m in &report.metrics {
        tracing::info!(component = %m.id, kind = m.kind, events_in = m.events_in, events_out = m.events_out, bytes_out = m.bytes_out, errors = ?m.errors, discarded = ?m.discarded, gauges = ?m.gauges, "Component counters at exit.");
    }
    // Blocking threads (a stdin reader) must not hold the exit.
    runtime.shutdown_background();
    if report.timed_out || !report.failures.is_empty() {
        return ExitCode::FAILURE;
    }
    tracing::info!("Stopped cleanly.");
    ExitCode::SUCCESS
}
