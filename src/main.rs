//! The `lakehouse` command line: parses flags, sets up logging, and hands over to the library.
//! Exit codes: 0 success, 1 runtime failure, 2 bad input (configuration, arguments).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "lakehouse",
    version,
    about = "Serves the IKHOSPITAL_DW lakehouse over the PostgreSQL wire protocol"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve IKHOSPITAL_DW over the PostgreSQL wire protocol.
    Serve(ServeArgs),
    /// Validate lakehouse.yaml, catalog/, grants/ and sql/; exit 2 on any error.
    Check(CheckArgs),
    /// Print a SCRAM-SHA-256 verifier and an argon2id hash for a user's password.
    Passwd(PasswdArgs),
    /// Create the ikhospital source databases from sql/sources and fill them with generated data.
    Generate(GenerateArgs),
    /// Copy the sources into bronze, merge silver and build gold (once or on a schedule).
    Ingest(IngestArgs),
    /// Run a whole hospital lakehouse on this machine: generated data, ingest, stream, server.
    Demo(DemoArgs),
    /// Probe a running server (for container health checks): exit 0 when it answers.
    Health(HealthArgs),
    /// Benchmark serving against PostgreSQL, DuckDB and bare DataFusion on the same rows.
    Bench(BenchArgs),
    /// Consume pharmacy device events from the sources under `stream:` until interrupted.
    Stream(StreamArgs),
    /// Pharmacy devices sending events over HTTP, MQTT or NATS; measures the stream.
    Simulate(SimulateArgs),
    /// Compact the small files of the tables ingest and stream write, then checkpoint them.
    Optimize(MaintainArgs),
    /// Remove the files of those tables that no version within the retention needs.
    Vacuum(MaintainArgs),
}

#[derive(clap::Args)]
struct MaintainArgs {
    /// Configuration file.
    #[arg(long, default_value = "lakehouse.yaml")]
    config: PathBuf,
    /// Lake root (local directory or URL) instead of the configured one.
    #[arg(long)]
    lake: Option<String>,
    /// Tables, as paths below the lake root (`bronze/stream/pharmacy/distribution`); default
    /// every Delta table under bronze/, silver/ and gold/.
    tables: Vec<String>,
    /// Say what would be done, change nothing.
    #[arg(long)]
    dry_run: bool,
    /// vacuum: keep what versions younger than this need (default: each table's
    /// `delta.deletedFileRetentionDuration`, 7 days unless set; never less than the longest
    /// statement plus the refresh interval).
    #[arg(long)]
    retention: Option<String>,
    /// optimize: size of the files compaction writes.
    #[arg(long, default_value = "128MiB")]
    target_size: String,
}

#[derive(clap::Args)]
struct DemoArgs {
    /// Demo directory: the lake root, its configuration, grants and certificate (reused).
    #[arg(long, default_value = "demo-lake")]
    dir: PathBuf,
    /// pgwire address.
    #[arg(long, default_value = "127.0.0.1:5433")]
    listen: std::net::SocketAddr,
    /// Address of the pharmacy devices' HTTP endpoint.
    #[arg(long, default_value = "127.0.0.1:8088")]
    stream_listen: std::net::SocketAddr,
    /// Patients generated on the first run.
    #[arg(long, default_value_t = 1500)]
    patients: u64,
    /// Visits generated on the first run.
    #[arg(long, default_value_t = 6000)]
    events: u64,
    /// Seed of the generator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Events per second sent by the simulated pharmacy device (0 turns it off).
    #[arg(long, default_value_t = 2.0)]
    event_rate: f64,
}

#[derive(clap::Args)]
struct StreamArgs {
    /// Configuration file.
    #[arg(long, default_value = "lakehouse.yaml")]
    config: PathBuf,
    /// Lake root (local directory or URL) instead of the configured one.
    #[arg(long)]
    lake: Option<String>,
}

#[derive(clap::Args)]
struct SimulateArgs {
    /// Where to send: http://host:port, mqtt://host:port or nats://host:port.
    #[arg(long)]
    to: String,
    /// Events per second in total (0: as fast as the stream takes them).
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Stop after this many events.
    #[arg(long)]
    events: Option<u64>,
    /// Stop after this long (e.g. 30s); without --events or --duration, runs until Ctrl-C.
    #[arg(long)]
    duration: Option<String>,
    /// Number of simulated devices.
    #[arg(long, default_value_t = 10)]
    devices: usize,
    /// Device id of every event (HTTP: the device of the token).
    #[arg(long)]
    device_id: Option<String>,
    /// Percent of events sent twice (same event_id).
    #[arg(long, default_value_t = 0.0)]
    duplicates: f64,
    /// Percent of bad events (malformed, out of range, unknown NDC, missing field).
    #[arg(long, default_value_t = 0.0)]
    bad: f64,
    /// HTTP bearer token of the device (or LAKEHOUSE_DEVICE_TOKEN).
    #[arg(long, env = "LAKEHOUSE_DEVICE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Events per request or message.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// HTTP requests in flight at once.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// MQTT topic prefix (<prefix>/<device>/events) or NATS subject prefix
    /// (<prefix>.<device>.events).
    #[arg(long)]
    topic_prefix: Option<String>,
    /// NATS: the JetStream stream to create if missing (over <prefix>.*.events).
    #[arg(long, default_value = "PHARMACY")]
    nats_stream: String,
    /// Lake root to poll for freshness (sent to visible in gold): the benchmark.
    #[arg(long)]
    measure_lake: Option<String>,
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Data size: 1 is 100,000 patients and 10,000,000 visits; fractions for smaller runs.
    #[arg(long, default_value_t = 0.01)]
    scale: f64,
    /// Runs per figure; figures are medians (the dashboard adds one cold run first).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Data directory (gold lake, Parquet export, server configuration), reused at the same scale.
    #[arg(long, default_value = "bench-data")]
    dir: PathBuf,
    /// Workloads, comma-separated: dashboard, import, concurrency, small, hardening.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "dashboard,import,concurrency,small,hardening"
    )]
    workloads: Vec<lakehouse::bench::Workload>,
    /// Client counts of the concurrency workload, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32,128")]
    clients: Vec<usize>,
    /// Seconds per concurrency level and per small-query loop.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Directory of report.json and report.md.
    #[arg(long, default_value = "bench-results")]
    out: PathBuf,
    /// PostgreSQL to compare with (schema bench is dropped and reloaded there).
    #[arg(long, default_value = "postgresql://postgres@127.0.0.1:5432/postgres")]
    pg: String,
    /// Python interpreter with the duckdb package.
    #[arg(long, default_value = "python3")]
    python: String,
    /// Seed of the data generator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(clap::Args)]
struct HealthArgs {
    /// The server's pgwire address.
    #[arg(long, default_value = "127.0.0.1:5433")]
    address: std::net::SocketAddr,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 3)]
    timeout: u64,
}

#[derive(clap::Args)]
struct GenerateArgs {
    /// MySQL/MariaDB server URL; its path names the database (default ikhospital).
    #[arg(long)]
    mysql: Option<String>,
    /// PostgreSQL server URL; its path names the database (default ikhospital).
    #[arg(long)]
    postgres: Option<String>,
    /// Patients to add.
    #[arg(long, default_value_t = lakehouse::ingest::generate::DEFAULT_PATIENTS)]
    patients: u64,
    /// Visits to add.
    #[arg(long, default_value_t = lakehouse::ingest::generate::DEFAULT_EVENTS)]
    events: u64,
    /// Seed of the random generator (same seed, same rows).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Add to what is there instead of starting afresh.
    #[arg(long)]
    append: bool,
}

#[derive(clap::Args)]
struct IngestArgs {
    /// Configuration file.
    #[arg(long, default_value = "lakehouse.yaml")]
    config: PathBuf,
    /// Lake root (local directory or URL) instead of the configured one.
    #[arg(long)]
    lake: Option<String>,
    /// Run once and exit (the default unless --every or ingest.every is set).
    #[arg(long, conflicts_with = "every")]
    once: bool,
    /// Run now and then at this interval (e.g. 5m) until interrupted.
    #[arg(long)]
    every: Option<String>,
    /// Only this layer: bronze, silver or gold.
    #[arg(long)]
    layer: Option<String>,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Configuration file.
    #[arg(long, default_value = "lakehouse.yaml")]
    config: PathBuf,
    /// Address to listen on (host:port), instead of server.listen.
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Lake root (local directory or URL) holding bronze/, silver/ and gold/.
    #[arg(long)]
    lake: Option<String>,
}

#[derive(clap::Args)]
struct CheckArgs {
    /// Configuration file.
    #[arg(long, default_value = "lakehouse.yaml")]
    config: PathBuf,
    /// Lake root (local directory or URL) instead of the configured one.
    #[arg(long)]
    lake: Option<String>,
}

#[derive(clap::Args)]
struct PasswdArgs {
    /// The user the password is for (printed in the YAML snippet).
    user: String,
    /// Read the password from standard input instead of prompting.
    #[arg(long)]
    password_stdin: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => run_serve(args),
        Command::Check(args) => run_check(args),
        Command::Passwd(args) => run_passwd(args),
        Command::Generate(args) => run_generate(args),
        Command::Ingest(args) => run_ingest(args),
        Command::Demo(args) => run_demo(args),
        Command::Health(args) => run_health(args),
        Command::Bench(args) => run_bench(args),
        Command::Stream(args) => run_stream(args),
        Command::Simulate(args) => run_simulate(args),
        Command::Optimize(args) => run_maintain(args, false),
        Command::Vacuum(args) => run_maintain(args, true),
    }
}

/// `lakehouse optimize` and `lakehouse vacuum`: one line per table; exit 1 if any failed.
fn run_maintain(args: MaintainArgs, vacuum: bool) -> ExitCode {
    use lakehouse::lake::maintain::{self, CompactReport, VacuumReport};
    let config = match load_config(&args.config, args.lake.as_deref()) {
        Ok(config) => config,
        Err(code) => return code,
    };
    init_quiet_log();
    // A file may be gone only once no statement can still read a version that needs it.
    let floor =
        config.server.statement_timeout.unwrap_or_default() + config.server.refresh_interval;
    let retention = match &args.retention {
        Some(text) => match text.parse::<lakehouse::config::DurationSpec>() {
            Ok(d) if d.0 >= floor => Some(d.0),
            Ok(_) => {
                eprintln!(
                    "error: --retention {text} is shorter than the longest statement plus the refresh interval ({} s)",
                    floor.as_secs()
                );
                return ExitCode::from(2);
            }
            Err(_) => {
                eprintln!("error: invalid --retention {text:?}: expected a duration such as 7d");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let target = match lakehouse::config::parse_byte_size(&args.target_size) {
        Ok(bytes) => bytes,
        Err(_) => {
            eprintln!(
                "error: invalid --target-size {:?}: expected a size such as 128MiB",
                args.target_size
            );
            return ExitCode::from(2);
        }
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async move {
        let root = match lakehouse::catalog::spec::lake_location(&config) {
            Ok(root) => root,
            Err(err) => {
                eprintln!("error: {err}");
                return ExitCode::from(2);
            }
        };
        let named = !args.tables.is_empty();
        let tables = if args.tables.is_empty() {
            match maintain::tables(&root).await {
                Ok(tables) => tables,
                Err(err) => {
                    eprintln!("error: cannot list the lake: {err}");
                    return ExitCode::from(1);
                }
            }
        } else {
            args.tables.clone()
        };
        let mut failed = false;
        for table in &tables {
            let location = match root.join(table) {
                Ok(location) => location,
                Err(err) => {
                    eprintln!("{table}: {err}");
                    failed = true;
                    continue;
                }
            };
            let dry = if args.dry_run { " (dry run)" } else { "" };
            if vacuum {
                // Each table's own retention, unless another was asked for.
                match maintain::vacuum(&location, retention, args.dry_run, named).await {
                    Ok(VacuumReport {
                        skipped: Some(reason),
                        ..
                    }) => println!("{table}: {reason}"),
                    Ok(report) => println!(
                        "{table}: {} file(s) {}{dry}",
                        report.files.len(),
                        if args.dry_run { "to remove" } else { "removed" }
                    ),
                    Err(err) => {
                        eprintln!("{table}: {err}");
                        failed = true;
                    }
                }
            } else {
                match maintain::compact(&location, target, args.dry_run, named).await {
                    Ok(CompactReport {
                        skipped: Some(reason),
                        ..
                    }) => println!("{table}: {reason}"),
                    Ok(report) if args.dry_run => println!(
                        "{table}: {} file(s), {} small{dry}",
                        report.files_before, report.small_files
                    ),
                    Ok(report) => println!(
                        "{table}: {} file(s) compacted into {} (version {})",
                        report.files_removed,
                        report.files_added,
                        report
                            .version
                            .map_or("unchanged".to_string(), |v| v.to_string())
                    ),
                    Err(err) => {
                        eprintln!("{table}: {err}");
                        failed = true;
                    }
                }
            }
        }
        if failed {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        }
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|err| {
            eprintln!("error: cannot start the async runtime: {err}");
            ExitCode::from(1)
        })
}

fn run_serve(args: ServeArgs) -> ExitCode {
    let config = match load_config(&args.config, args.lake.as_deref()) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let config = match args.listen {
        Some(listen) => config.with_listen(listen),
        None => config,
    };
    lakehouse::telemetry::init_with(&config.log);
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async move {
        let app = match lakehouse::app::App::build(config).await {
            Ok(app) => app,
            Err(err) => {
                eprintln!("error: {err:#}");
                return ExitCode::from(2);
            }
        };
        let shutdown = tokio_util::sync::CancellationToken::new();
        let signal = shutdown.clone();
        tokio::spawn(async move {
            lakehouse::app::shutdown_signal().await;
            tracing::info!("shutting down");
            signal.cancel();
        });
        match app.run(shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("error: {err:#}");
                ExitCode::from(1)
            }
        }
    })
}

fn run_check(args: CheckArgs) -> ExitCode {
    lakehouse::telemetry::init_cli();
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async move {
        match lakehouse::check::run(&args.config, args.lake.as_deref()).await {
            Ok(report) => {
                for warning in &report.warnings {
                    eprintln!("warning: {warning}");
                }
                for table in &report.tables {
                    println!("{table}");
                }
                println!("{}", report.summary);
                ExitCode::SUCCESS
            }
            Err(diagnostics) => {
                eprintln!("{diagnostics}");
                ExitCode::from(2)
            }
        }
    })
}

fn run_passwd(args: PasswdArgs) -> ExitCode {
    let password = if args.password_stdin {
        let mut line = String::new();
        if let Err(err) = std::io::stdin().read_line(&mut line) {
            eprintln!("error: cannot read the password: {err}");
            return ExitCode::from(1);
        }
        line.trim_end_matches(['\r', '\n']).to_string()
    } else {
        match read_password_twice() {
            Ok(p) => p,
            Err(message) => {
                eprintln!("error: {message}");
                return ExitCode::from(2);
            }
        }
    };
    if password.is_empty() {
        eprintln!("error: empty password");
        return ExitCode::from(2);
    }
    let scram =
        lakehouse::auth::ScramVerifier::generate(&password, lakehouse::auth::DEFAULT_ITERATIONS);
    let hash = lakehouse::auth::hash_password(&password);
    println!("# paste into grants/*.yaml under users:");
    println!("  - name: {}", args.user);
    println!("    scram: \"{scram}\"");
    println!("    password_hash: \"{hash}\"");
    ExitCode::SUCCESS
}

fn read_password_twice() -> Result<String, String> {
    let first = rpassword::prompt_password("password: ").map_err(|e| e.to_string())?;
    let second = rpassword::prompt_password("again: ").map_err(|e| e.to_string())?;
    if first != second {
        return Err("the passwords do not match".to_string());
    }
    Ok(first)
}

fn run_generate(args: GenerateArgs) -> ExitCode {
    lakehouse::telemetry::init_cli();
    if args.mysql.is_none() && args.postgres.is_none() {
        eprintln!("error: give --mysql URL and/or --postgres URL");
        return ExitCode::from(2);
    }
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let options = lakehouse::ingest::generate::GenerateOptions {
        mysql_url: args.mysql,
        postgres_url: args.postgres,
        patients: args.patients,
        events: args.events,
        seed: args.seed,
        append: args.append,
        progress: true,
    };
    match rt.block_on(lakehouse::ingest::generate::generate(&options)) {
        Ok(report) => {
            println!(
                "generated {} patients, {} visits, {} medicines in {:.1}s",
                report.patients,
                report.events,
                report.medicines,
                report.elapsed.as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(err) => ingest_failed(&err),
    }
}

fn run_ingest(args: IngestArgs) -> ExitCode {
    let config = match load_config(&args.config, args.lake.as_deref()) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let mut options = lakehouse::ingest::IngestOptions::from_spec(config.ingest.as_ref());
    if let Some(layer) = &args.layer {
        match layer.parse() {
            Ok(layer) => options.layer = Some(layer),
            Err(message) => {
                eprintln!("error: {message}");
                return ExitCode::from(2);
            }
        }
    }
    let every = match (&args.every, args.once) {
        (Some(text), _) => match text.parse::<lakehouse::config::DurationSpec>() {
            Ok(d) if !d.0.is_zero() => Some(d.0),
            _ => {
                eprintln!("error: invalid --every {text:?}: expected a duration such as 5m");
                return ExitCode::from(2);
            }
        },
        (None, true) => None,
        (None, false) => config
            .ingest
            .as_ref()
            .and_then(|spec| spec.every)
            .map(|d| d.0),
    };
    if every.is_some() {
        lakehouse::telemetry::init_with(&config.log);
    } else {
        init_quiet_log();
    }
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async move {
        match every {
            None => match lakehouse::ingest::run_once(&config, &options).await {
                Ok(report) => {
                    println!("{}", report.render());
                    if report.failures.is_empty() {
                        ExitCode::SUCCESS
                    } else {
                        eprintln!(
                            "error: {}",
                            lakehouse::ingest::Error::Failed(report.failures)
                        );
                        ExitCode::from(1)
                    }
                }
                Err(err) => ingest_failed(&err),
            },
            Some(every) => {
                let cancel = tokio_util::sync::CancellationToken::new();
                let on_signal = cancel.clone();
                tokio::spawn(async move {
                    let _ = tokio::signal::ctrl_c().await;
                    on_signal.cancel();
                });
                if let Err(code) = serve_metrics(&config, cancel.clone()).await {
                    return code;
                }
                let result =
                    lakehouse::ingest::run_loop(&config, &options, every, cancel, |report| {
                        match report {
                            Ok(report) => {
                                println!("{}", report.render());
                                if !report.failures.is_empty() {
                                    eprintln!(
                                        "error: {}",
                                        lakehouse::ingest::Error::Failed(report.failures)
                                    );
                                }
                            }
                            Err(err) => eprintln!("error: {err}"),
                        }
                    })
                    .await;
                match result {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(err) => ingest_failed(&err),
                }
            }
        }
    })
}

fn run_demo(args: DemoArgs) -> ExitCode {
    // The demo prints its own instructions.
    init_quiet_log();
    if !(args.event_rate.is_finite() && args.event_rate >= 0.0) {
        eprintln!("error: --event-rate must be a number of events per second, 0 or more");
        return ExitCode::from(2);
    }
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let options = lakehouse::demo::DemoOptions {
        dir: args.dir,
        listen: args.listen,
        stream_listen: args.stream_listen,
        patients: args.patients,
        events: args.events,
        seed: args.seed,
        event_rate: args.event_rate,
    };
    rt.block_on(async move {
        let shutdown = tokio_util::sync::CancellationToken::new();
        let demo = match lakehouse::demo::start(&options, shutdown.clone()).await {
            Ok(demo) => demo,
            Err(err) => {
                eprintln!("error: {err:#}");
                return ExitCode::from(1);
            }
        };
        demo.print_instructions();
        let signal = shutdown.clone();
        tokio::spawn(async move {
            lakehouse::app::shutdown_signal().await;
            signal.cancel();
        });
        match demo.run(shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("error: {err:#}");
                ExitCode::from(1)
            }
        }
    })
}

fn run_health(args: HealthArgs) -> ExitCode {
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let timeout = std::time::Duration::from_secs(args.timeout.max(1));
    match rt.block_on(lakehouse::server::probe(args.address, timeout)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("unhealthy: {err}");
            ExitCode::from(1)
        }
    }
}

/// `metrics.listen` of the long-running commands without a server (`stream`, `ingest --every`).
async fn serve_metrics(
    config: &lakehouse::config::Config,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<(), ExitCode> {
    let Some(listen) = config.metrics_listen else {
        return Ok(());
    };
    match lakehouse::metrics::bind(listen).await {
        Ok(listener) => {
            lakehouse::metrics::serve(listener, Default::default(), shutdown);
            Ok(())
        }
        Err(err) => {
            eprintln!("error: cannot serve metrics on {listen}: {err}");
            Err(ExitCode::from(1))
        }
    }
}

fn run_stream(args: StreamArgs) -> ExitCode {
    let config = match load_config(&args.config, args.lake.as_deref()) {
        Ok(config) => config,
        Err(code) => return code,
    };
    lakehouse::telemetry::init_with(&config.log);
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async move {
        let shutdown = tokio_util::sync::CancellationToken::new();
        if let Err(code) = serve_metrics(&config, shutdown.clone()).await {
            return code;
        }
        let running = match lakehouse::stream::run(&config, None, shutdown.clone()).await {
            Ok(running) => running,
            Err(err @ lakehouse::stream::Error::Config(_)) => {
                eprintln!("error: {err}");
                return ExitCode::from(2);
            }
            Err(err) => {
                eprintln!("error: {err}");
                return ExitCode::from(1);
            }
        };
        tracing::info!("stream running");
        lakehouse::app::shutdown_signal().await;
        tracing::info!("shutting down: committing what was received");
        shutdown.cancel();
        running.wait().await;
        ExitCode::SUCCESS
    })
}

fn run_simulate(args: SimulateArgs) -> ExitCode {
    lakehouse::telemetry::init_cli();
    let duration = match &args.duration {
        Some(text) => match text.parse::<lakehouse::config::DurationSpec>() {
            Ok(d) => Some(d.0),
            Err(_) => {
                eprintln!("error: invalid --duration {text:?}: expected a duration such as 30s");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let measure_lake = match &args.measure_lake {
        Some(root) => {
            let root = if root.contains("://") {
                root.clone()
            } else {
                lakehouse::config::absolute(std::path::Path::new(root))
                    .display()
                    .to_string()
            };
            match lakehouse::lake::StorageLocation::parse(&root, Default::default()) {
                Ok(location) => Some(location),
                Err(err) => {
                    eprintln!("error: invalid --measure-lake: {err}");
                    return ExitCode::from(2);
                }
            }
        }
        None => None,
    };
    let options = lakehouse::stream::simulate::SimulateOptions {
        to: args.to,
        rate: args.rate,
        events: args.events,
        duration,
        devices: args.devices,
        device_id: args.device_id,
        duplicates_pct: args.duplicates,
        bad_pct: args.bad,
        token: args.token,
        batch: args.batch,
        connections: args.connections,
        topic_prefix: args.topic_prefix,
        nats_stream: Some(args.nats_stream),
        measure_lake,
        quiet: false,
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async move {
        let shutdown = tokio_util::sync::CancellationToken::new();
        let signal = shutdown.clone();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            signal.cancel();
        });
        match lakehouse::stream::simulate::run(&options, shutdown).await {
            Ok(report) => {
                println!("{}", report.render());
                ExitCode::SUCCESS
            }
            Err(err @ lakehouse::stream::Error::Config(_)) => {
                eprintln!("error: {err}");
                ExitCode::from(2)
            }
            Err(err) => {
                eprintln!("error: {err}");
                ExitCode::from(1)
            }
        }
    })
}

fn run_bench(args: BenchArgs) -> ExitCode {
    init_quiet_log();
    if args.scale.is_nan() || args.scale <= 0.0 || args.runs == 0 || args.clients.contains(&0) {
        eprintln!("error: --scale must be above 0, --runs and every --clients at least 1");
        return ExitCode::from(2);
    }
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(err) => {
            eprintln!("error: cannot find the lakehouse binary to serve: {err}");
            return ExitCode::from(1);
        }
    };
    let mut options = lakehouse::bench::BenchOptions::new(exe);
    options.scale = args.scale;
    options.runs = args.runs;
    options.dir = args.dir;
    options.workloads = args.workloads;
    options.clients = args.clients;
    options.seconds = args.seconds;
    options.out = args.out;
    options.pg_url = args.pg;
    options.python = args.python;
    options.seed = args.seed;
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async move {
        let report = match lakehouse::bench::run(&options).await {
            Ok(report) => report,
            Err(err) => {
                eprintln!("error: {err:#}");
                return ExitCode::from(1);
            }
        };
        match lakehouse::bench::write_report(&report, &options.out) {
            Ok((json, markdown)) => {
                println!("{}", report.markdown());
                println!("report: {} and {}", markdown.display(), json.display());
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("error: cannot write the report: {err:#}");
                ExitCode::from(1)
            }
        }
    })
}

/// Logging for the commands that print their own report: warnings only, and without
/// deltalake's ERROR for every table a first run looks for before creating it (real failures
/// come back as results and are printed).
fn init_quiet_log() {
    lakehouse::telemetry::init_with(&lakehouse::config::LogSpec {
        format: Some(lakehouse::config::LogFormat::Text),
        level: Some("warn,deltalake_core=off,buoyant_kernel=off".to_string()),
    });
}

/// Loads `lakehouse.yaml` (with `--lake`), or prints its diagnostics and gives exit code 2.
fn load_config(
    path: &std::path::Path,
    lake: Option<&str>,
) -> Result<lakehouse::config::Config, ExitCode> {
    lakehouse::check::load_config(path, lake).map_err(|diagnostics| {
        lakehouse::telemetry::init_cli();
        eprintln!("{diagnostics}");
        ExitCode::from(2)
    })
}

/// Prints an ingest error; exit code 2 for bad input (configuration, arguments), else 1.
fn ingest_failed(err: &lakehouse::ingest::Error) -> ExitCode {
    eprintln!("error: {err}");
    match err {
        lakehouse::ingest::Error::Invalid(_) => ExitCode::from(2),
        _ => ExitCode::from(1),
    }
}
