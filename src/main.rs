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
    }
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
    let config = match lakehouse::check::load_config(&args.config, args.lake.as_deref()) {
        Ok(config) => config,
        Err(diagnostics) => {
            lakehouse::telemetry::init_cli();
            eprintln!("{diagnostics}");
            return ExitCode::from(2);
        }
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
