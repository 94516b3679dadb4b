//! The `pipe` command line: run a topology, validate topology files, list component
//! types, talk to a running pipe's API; the subcommands components contribute
//! (`pipe query`) come from the registry. Configuration errors exit with code 78.

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use pipe::cli::{CliCommand, CliGlobals};
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
  pipe list kafka --kind sink                      one type's options and counters
  pipe query --archive /var/lib/logs \"SELECT service, count(*) FROM logs GROUP BY 1\"
  pipe query -t aggregator.toml --sink parquet --format csv \"SELECT …\"
  pipe archive ddl --archive s3://logs/app --dialect trino
  pipe convert logstash app.conf -o app.toml       a topology from a Logstash pipeline
  pipe kafka-mock                                  an in-memory Kafka for trying edge/aggregator
  pipe --api 127.0.0.1:8686 -t all-in-one.toml     serve /metrics, /health, the tap
  pipe tap --outputs-of parse --limit 5            samples of a running pipe's output
  pipe top                                         rates, errors, queues and lag per component
  pipe reconcile -t t.toml --from 2026-12-02T00 --to 2026-12-03T00 --by service
                                                   count per hour in every sink's destination";

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
    /// The API's address (metrics, health, tap), or `off`; wins over `[api]`. For
    /// `pipe tap` and `pipe top`, the API to talk to.
    #[arg(long, env = "PIPE_API", value_name = "ADDR|off", global = true)]
    api: Option<String>,
    /// Reload the topology when its files (or the files its components read) change,
    /// as on SIGHUP.
    #[arg(long)]
    watch: bool,
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
    /// Run the `[[tests]]` of a topology: inputs through its sources' decoding and its
    /// transforms (sinks are never built), checked against expected outputs. Exit 1
    /// when a test fails, 78 when the topology or a test is invalid.
    Test {
        /// The topology's files and files of tests beside them; together they form one
        /// topology.
        files: Vec<PathBuf>,
    },
    /// List component types with a line about each, or one type's options and
    /// counters (the tables of docs/configuration.md).
    List {
        /// A component type: print its options and counters.
        #[arg(value_name = "TYPE")]
        name: Option<String>,
        /// Only the type of this kind (`file` and `kafka` are a source and a sink).
        #[arg(long, value_enum)]
        kind: Option<KindArg>,
    },
    /// Print samples of the events crossing outputs of a running pipe, as JSON lines
    /// (its API must be on: `[api] enabled = true` or `--api ADDR`).
    Tap {
        /// Outputs to tap: a glob over output names (`parse`, `route.*`, `*`).
        #[arg(long, value_name = "GLOB")]
        outputs_of: Option<String>,
        /// Tap what flows into these components (a glob over ids).
        #[arg(long, value_name = "GLOB")]
        inputs_of: Option<String>,
        /// Stop after this many samples (0: until interrupted).
        #[arg(long, default_value_t = 0)]
        limit: u64,
        /// The server samples at most `limit` events per output per interval.
        #[arg(long, default_value_t = 500, value_name = "MS")]
        interval_ms: u64,
        /// A VRL condition; only matching events are printed (and counted by --limit).
        #[arg(long, value_name = "VRL")]
        filter: Option<String>,
        /// The API's bearer token.
        #[arg(long, env = "PIPE_API_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Show each component's rates, totals, errors, queue, utilization and Kafka lag.
    Top {
        /// Print once and exit.
        #[arg(long)]
        once: bool,
        /// Output format (json implies --once).
        #[arg(long, value_enum, default_value_t = TopFormat::Table)]
        format: TopFormat,
        /// Seconds between refreshes.
        #[arg(long, default_value_t = 1.0)]
        interval: f64,
        /// The API's bearer token.
        #[arg(long, env = "PIPE_API_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Count the events per hour in every place the topology's sinks delivered to
    /// (archive, files, Elasticsearch, Kafka, BigQuery) and show the differences;
    /// exit 1 when any hour differs by more than --tolerance.
    Reconcile {
        /// The first hour, UTC: `2026-12-02T10` (inclusive).
        #[arg(long)]
        from: String,
        /// The hour after the last one counted (exclusive).
        #[arg(long)]
        to: String,
        /// Count per this field's value too (e.g. `service`).
        #[arg(long)]
        by: Option<String>,
        /// Only these sinks (repeatable); every sink that can be counted by default.
        #[arg(long = "sink", value_name = "ID")]
        sinks: Vec<String>,
        /// A difference up to this many events per hour still agrees.
        #[arg(long, default_value_t = 0)]
        tolerance: u64,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum KindArg {
    Source,
    Transform,
    Sink,
}

impl From<KindArg> for Kind {
    fn from(k: KindArg) -> Kind {
        match k {
            KindArg::Source => Kind::Source,
            KindArg::Transform => Kind::Transform,
            KindArg::Sink => Kind::Sink,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum TopFormat {
    Table,
    Json,
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
    let mut command = Cli::command();
    for c in component_commands() {
        // A programming error in the registry, caught by any run of the binary.
        assert!(
            command.find_subcommand(c.name).is_none(),
            "the subcommand `{}` is contributed twice, or is one of pipe's own",
            c.name
        );
        command = command.subcommand((c.command)());
    }
    let matches = command.get_matches_mut();
    // A component's subcommand is not a `Command`: `cli.command` is None for it.
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut command).exit());
    init_logging(&cli);
    if let Some((name, sub)) = matches.subcommand()
        && let Some(c) = component_commands().find(|c| c.name == name)
    {
        let globals = CliGlobals {
            topology: cli.topology.clone(),
            overrides: overrides(&cli),
        };
        return (c.run)(sub, &globals);
    }
    match &cli.command {
        Some(Command::List { name: None, kind }) => list(kind.map(Kind::from)),
        Some(Command::List { name: Some(name), kind }) => describe(name, kind.map(Kind::from)),
        Some(Command::Validate { files }) => {
            let mut files = files.clone();
            files.extend(cli.topology.iter().cloned());
            validate(&files, &cli)
        }
        Some(Command::Test { files }) => {
            let mut files = files.clone();
            files.extend(cli.topology.iter().cloned());
            ExitCode::from(pipe::testing::run(&files, &overrides(&cli), &mut std::io::stdout()))
        }
        Some(Command::Tap {
            outputs_of,
            inputs_of,
            limit,
            interval_ms,
            filter,
            token,
        }) => {
            let args = pipe::api::client::TapArgs {
                outputs_of: outputs_of.clone(),
                inputs_of: inputs_of.clone(),
                limit: *limit,
                interval_ms: *interval_ms,
                filter: filter.clone(),
            };
            if args.outputs_of.is_none() && args.inputs_of.is_none() {
                eprintln!("pipe tap: name what to tap with --outputs-of GLOB and/or --inputs-of GLOB");
                return ExitCode::from(EXIT_CONFIG);
            }
            let endpoint = api_endpoint(&cli, token);
            client_run("pipe tap", async move {
                let mut out = std::io::stdout();
                pipe::api::client::tap(&endpoint, &args, &mut out).await.map(|_| ())
            })
        }
        Some(Command::Top {
            once,
            format,
            interval,
            token,
        }) => {
            let endpoint = api_endpoint(&cli, token);
            let json = matches!(format, TopFormat::Json);
            let every = std::time::Duration::from_secs_f64(interval.clamp(0.1, 3600.0));
            client_run("pipe top", async move {
                pipe::api::client::top(&endpoint, *once || json, json, every).await
            })
        }
        Some(Command::Reconcile {
            from,
            to,
            by,
            sinks,
            tolerance,
        }) => reconcile(&cli, from, to, by.clone(), sinks, *tolerance),
        None => run(&cli),
    }
}

/// `pipe reconcile`: exit 0 when every place agrees, 1 when not, 78 on a mistake
/// in the topology or the arguments.
fn reconcile(cli: &Cli, from: &str, to: &str, by: Option<String>, sinks: &[String], tolerance: u64) -> ExitCode {
    use pipe::reconcile;
    let (from, to) = match (reconcile::parse_hour(from), reconcile::parse_hour(to)) {
        (Ok(f), Ok(t)) if f < t => (f, t),
        (Ok(_), Ok(_)) => {
            eprintln!("pipe reconcile: --from must be before --to");
            return ExitCode::from(EXIT_CONFIG);
        }
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("pipe reconcile: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if cli.topology.is_empty() {
        eprintln!("pipe reconcile: name the topology with -t FILE");
        return ExitCode::from(EXIT_CONFIG);
    }
    let topology = match config::load(&cli.topology, &overrides(cli)) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let runtime = match pipe::cli::runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let places = match runtime.block_on(reconcile::count_all(&topology, sinks, from, to, by.clone())) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("pipe reconcile: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let rows = reconcile::compare(&places, from, to);
    let (text, agree) = reconcile::report(&places, &rows, by.as_deref(), tolerance);
    print!("{text}");
    if agree { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

/// Every subcommand the registry's entries contribute, in registry order, then
/// the tools' (`pipe convert`).
fn component_commands() -> impl Iterator<Item = &'static CliCommand> {
    pipe::components::commands()
}

/// The API `pipe tap` and `pipe top` talk to: `--api`, else the default address.
fn api_endpoint(cli: &Cli, token: &Option<String>) -> pipe::api::client::Endpoint {
    pipe::api::client::Endpoint {
        address: cli
            .api
            .clone()
            .filter(|a| a != "off")
            .unwrap_or_else(|| pipe::api::DEFAULT_ADDRESS.to_string()),
        token: token.clone(),
    }
}

/// Runs an API client to completion; its errors exit 1 with the tool's name.
fn client_run(
    name: &str,
    work: impl std::future::Future<Output = Result<(), pipe::api::client::ClientError>>,
) -> ExitCode {
    let runtime = match pipe::cli::runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    match runtime.block_on(work) {
        Ok(()) => ExitCode::SUCCESS,
        Err(pipe::api::client::ClientError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn overrides(cli: &Cli) -> Overrides {
    Overrides {
        data_dir: cli.data_dir.clone(),
        without_sinks: false,
    }
}

fn list(only: Option<Kind>) -> ExitCode {
    for kind in [Kind::Source, Kind::Transform, Kind::Sink] {
        if only.is_some_and(|k| k != kind) {
            continue;
        }
        println!("{}:", kind.table());
        for def in pipe::components::REGISTRY.iter().filter(|d| d.kind == kind) {
            println!("  {:<12} {}", def.name, def.doc);
        }
    }
    ExitCode::SUCCESS
}

/// `pipe list TYPE`: the doc line, options and counters of every type named `name`
/// (of `kind`, if given); exits 78 when there is none.
fn describe(name: &str, kind: Option<Kind>) -> ExitCode {
    let registry = pipe::components::REGISTRY;
    let defs: Vec<_> = registry
        .iter()
        .filter(|d| d.name == name && kind.is_none_or(|k| d.kind == k))
        .collect();
    if defs.is_empty() {
        let of_kind = kind.map(|k| format!(" {}", k.name())).unwrap_or_default();
        let candidates = registry.iter().filter(|d| kind.is_none_or(|k| d.kind == k));
        let hint = pipe::component::did_you_mean(name, candidates.clone().map(|d| d.name))
            .map(|n| format!(" Did you mean `{n}`?"))
            .unwrap_or_default();
        let mut known: Vec<&str> = candidates.map(|d| d.name).collect();
        known.sort_unstable();
        known.dedup();
        eprintln!(
            "error: no{of_kind} component type `{name}`.{hint} Types: {}. `pipe list` tells what each does.",
            known.join(", ")
        );
        return ExitCode::from(EXIT_CONFIG);
    }
    for (i, def) in defs.iter().enumerate() {
        if i > 0 {
            println!();
        }
        println!("{} {}: {}", def.kind.name(), def.name, def.doc);
        println!("\nOptions ([{}.ID] with type = \"{}\"):\n", def.kind.table(), def.name);
        print!("{}", pipe::docs::options_table(def));
        println!("\nCounters:\n");
        print!("{}", pipe::docs::counters_table(def));
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
    let mut api = topology.api.clone();
    match cli.api.as_deref() {
        Some("off") => api.enabled = false,
        Some(addr) => {
            api.enabled = true;
            api.address = addr.to_string();
        }
        None => {}
    }
    let bound = match pipe::api::bind(&api) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let reload = pipe::topology::ReloadFrom {
        files: cli.topology.clone(),
        overrides: overrides(cli),
        watch: cli.watch,
    };
    let report = runtime.block_on(async move {
        // Inside the runtime: the API's socket registers with its reactor.
        pipe::topology::run(topology, bound, Some(reload)).await
    });
    for m in &report.metrics {
        tracing::info!(component = %m.id, kind = m.kind, received_events = m.received_events, sent_events = m.sent_events, sent_bytes = m.sent_bytes, errors = ?m.errors, discarded = ?m.discarded, counters = ?m.counters, gauges = ?m.gauges, acknowledged = ?m.acknowledged, "Component counters at exit.");
    }
    // Blocking threads (a stdin reader) must not hold the exit.
    runtime.shutdown_background();
    if report.timed_out || !report.failures.is_empty() {
        return ExitCode::FAILURE;
    }
    tracing::info!("Stopped cleanly.");
    ExitCode::SUCCESS
}
