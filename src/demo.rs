//! `lakehouse demo`: a working hospital lakehouse on one machine, with no external service.
//!
//! The demo directory is the lake root and holds everything the demo needs, written on the
//! first run and kept afterwards (edit its `grants/` to try hot reload): `lakehouse.yaml`,
//! `grants/` and `catalog/` (copies of the shipped ones), the bronze/silver/gold tables built
//! by the ingest's own code from generated data, the self-signed certificate under `tls/`, and
//! the audit trail. The device stream runs in the same process with a simulated pharmacy
//! device.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::config::Config;

/// The shipped grants, copied into a new demo directory.
const GRANTS: &[(&str, &str)] = &[
    ("users.yaml", include_str!("../grants/users.yaml")),
    ("roles.yaml", include_str!("../grants/roles.yaml")),
    ("policies.yaml", include_str!("../grants/policies.yaml")),
];

/// The shipped catalog.
const CATALOG: &str = include_str!("../catalog/ikhospital_dw.yaml");

/// The demo directory's own configuration.
const CONFIG: &str = "\
# Written by `lakehouse demo` for this demo directory, which is also the lake root.
# Edit freely: the demo keeps this file, grants/ and catalog/ across runs.
server:
  listen: 127.0.0.1:5433        # --listen overrides
  refresh_interval: 1s
  tls:
    # The demo accepts unencrypted connections too (Power BI with encryption off);
    # passwords are never sent in clear (SCRAM). Use `require` for real deployments.
    mode: prefer
    self_signed_dir: tls
lake:
  root: .
paths:
  catalog: catalog
  grants: grants
  sql: sql
audit:
  path: audit.jsonl
";

/// Demo settings (the `demo` subcommand's flags).
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Demo directory (the lake root).
    pub dir: PathBuf,
    /// pgwire listen address.
    pub listen: SocketAddr,
    /// HTTP address of the pharmacy device endpoint.
    pub stream_listen: SocketAddr,
    /// Patients to generate on the first run.
    pub patients: u64,
    /// Visits to generate on the first run.
    pub events: u64,
    /// Generator seed.
    pub seed: u64,
    /// Events per second of the simulated device.
    pub event_rate: f64,
}

/// What is running, for the caller and the printed instructions.
#[derive(Debug)]
pub struct Demo {
    /// The built server, ready to run.
    pub app: App,
    /// Absolute demo directory.
    pub dir: PathBuf,
    /// Passwords replacing the demo ones (only when listening beyond loopback).
    pub rotated_passwords: Vec<(String, String)>,
    /// The running device stream.
    pub stream: crate::stream::RunningStream,
    /// Bearer token of the demo device (random when the endpoint listens beyond loopback).
    pub device_token: String,
    /// Seconds from start to ready.
    pub ready_after: f64,
}

/// Prepares the demo directory, builds the lake if needed, starts the stream and binds the
/// server. Call [`Demo::print_instructions`], then `demo.app.run(shutdown)`.
pub async fn start(options: &DemoOptions, shutdown: CancellationToken) -> anyhow::Result<Demo> {
    let started = Instant::now();
    let dir = crate::config::absolute(&options.dir);
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the demo directory {}", dir.display()))?;
    write_if_missing(&dir.join("lakehouse.yaml"), CONFIG)?;
    for (name, text) in GRANTS {
        write_if_missing(&dir.join("grants").join(name), text)?;
    }
    write_if_missing(&dir.join("catalog").join("ikhospital_dw.yaml"), CATALOG)?;
    let rotated_passwords = if options.listen.ip().is_loopback() {
        Vec::new()
    } else {
        rotate_demo_passwords(&dir.join("grants").join("users.yaml"))?
    };

    let config = Config::load(&dir.join("lakehouse.yaml"))
        .map_err(|d| anyhow::anyhow!("{d}"))?
        .with_listen(options.listen);
    let lake = crate::catalog::spec::lake_location(&config)?;
    if !dir.join("gold/ikhospital/fact_events/_delta_log").is_dir() {
        let report = crate::ingest::run_embedded(
            &lake,
            None,
            &crate::ingest::EmbeddedOptions {
                patients: options.patients,
                events: options.events,
                seed: options.seed,
            },
            &crate::ingest::IngestOptions::default(),
        )
        .await
        .context("building the demo lake")?;
        report
            .into_result()
            .map_err(|err| anyhow::anyhow!("building the demo lake: {err}"))?;
    }
    let app = App::build(config).await?;
    // The shipped device token is public: beyond loopback anyone could post events with it.
    let device_token = if options.stream_listen.ip().is_loopback() {
        crate::stream::DEMO_DEVICE_TOKEN.to_string()
    } else {
        random_secret()
    };
    let stream = crate::stream::start_demo(
        lake,
        options.stream_listen,
        &device_token,
        options.event_rate,
        Some(app.registry()),
        shutdown,
    )
    .await
    .context("starting the device stream")?;
    Ok(Demo {
        app,
        stream,
        device_token,
        dir,
        rotated_passwords,
        ready_after: started.elapsed().as_secs_f64(),
    })
}

impl Demo {
    /// Serves until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let result = self.app.run(shutdown).await;
        // The stream shares the shutdown token: wait for its last batch to commit.
        self.stream.wait().await;
        result
    }

    /// Prints how to connect: psql, Power BI, and the device endpoint.
    pub fn print_instructions(&self) {
        let addr = self.app.local_addr();
        let port = addr.port();
        let host = if addr.ip().is_loopback() || addr.ip().is_unspecified() {
            "localhost".to_string()
        } else {
            addr.ip().to_string()
        };
        let password = |user: &str, demo: &str| -> String {
            self.rotated_passwords
                .iter()
                .find(|(u, _)| u == user)
                .map(|(_, p)| p.clone())
                .unwrap_or_else(|| demo.to_string())
        };
        let catalog = self.app.registry().snapshot();
        let cert = self.dir.join("tls").join("server.crt");
        let fingerprint = self
            .app
            .tls
            .as_ref()
            .map(|t| t.fingerprint.clone())
            .unwrap_or_default();
        let pbi = password("PBI_Reader", "pbi-reader-demo");
        println!();
        println!(
            "IKHOSPITAL_DW is ready in {:.1} s, serving {} gold tables from {}",
            self.ready_after,
            catalog.tables.len(),
            self.dir.display()
        );
        println!();
        println!("psql:");
        println!(
            "  PGPASSWORD={pbi} psql \"host={host} port={port} dbname=IKHOSPITAL_DW user=PBI_Reader sslmode=require\""
        );
        println!("  then:  \\i sql/reports/hospital_overview.sql");
        println!();
        println!("Power BI Desktop: Get data > PostgreSQL database");
        println!("  Server:        {host}:{port}");
        println!("  Database:      IKHOSPITAL_DW");
        println!("  Mode:          Import (tables) or DirectQuery (live queries)");
        println!("  Credentials:   Database > user PBI_Reader, password {pbi}");
        println!(
            "  Encryption:    keep \"Encrypt connection\" on and trust the demo certificate once:"
        );
        println!(
            "                 import {} into \"Trusted Root Certification Authorities\"",
            cert.display()
        );
        println!("                 (certmgr.msc), SHA-256 fingerprint {fingerprint}.");
        println!("                 With encryption off the demo also accepts the connection.");
        println!();
        println!(
            "Users: PBI_Reader / {pbi} (patient PII masked), lakehouse_admin / {} (everything, sys.audit_log),",
            password("lakehouse_admin", "admin-demo")
        );
        println!(
            "       analyst_pt / {} (Portuguese patients and their visits only)",
            password("analyst_pt", "analyst-pt-demo")
        );
        if let Some(stream_addr) = self.stream.http_addr {
            println!();
            println!(
                "Pharmacy devices post to http://{stream_addr}/v1/pharmacy/events (a simulated device already does):"
            );
            println!(
                "  curl -H 'Authorization: Bearer {}' -d '{{\"event_id\":\"...\",\"device_id\":\"{}\",...}}' http://{stream_addr}/v1/pharmacy/events",
                self.device_token,
                crate::stream::DEMO_DEVICE_ID
            );
        }
        println!();
        println!(
            "Grants live in {}: edit them and they apply within seconds.",
            self.dir.join("grants").display()
        );
        println!(
            "Stop with Ctrl-C; the next run reuses {}.",
            self.dir.display()
        );
        println!();
    }
}

fn write_if_missing(path: &Path, text: &str) -> anyhow::Result<()> {
    if path.exists() {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// 20 random letters and digits: a password or device token printed once.
fn random_secret() -> String {
    use rand::Rng;
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(20)
        .map(char::from)
        .collect()
}

/// Beyond loopback the shipped demo passwords are refused; give the demo users random ones
/// (written as verifiers, printed once) so the demo still works in a container.
fn rotate_demo_passwords(users_file: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(users_file)?;
    let mut out = Vec::new();
    let mut new_text = String::new();
    let mut current_user: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some(name) = trimmed.strip_prefix("- name: ") {
            current_user = Some(name.trim().to_string());
        }
        let indent = &line[..line.len() - trimmed.len()];
        match (trimmed.split_once(':'), &current_user) {
            (Some(("demo", _)), Some(_)) => {
                // The rotated passwords are not the shipped ones: no longer demo passwords.
                new_text.push_str(&format!("{indent}demo: false\n"));
            }
            (Some(("scram", _)), Some(user)) => {
                let password = random_secret();
                let verifier = crate::auth::ScramVerifier::generate(
                    &password,
                    crate::auth::DEFAULT_ITERATIONS,
                );
                new_text.push_str(&format!("{indent}scram: \"{verifier}\"\n"));
                new_text.push_str(&format!(
                    "{indent}password_hash: \"{}\"\n",
                    crate::auth::hash_password(&password)
                ));
                out.push((user.clone(), password));
            }
            (Some(("password_hash", _)), Some(_)) => {}
            _ => {
                new_text.push_str(line);
                new_text.push('\n');
            }
        }
    }
    if !out.is_empty() {
        std::fs::write(users_file, new_text)?;
        tracing::warn!(
            "listening beyond loopback: the demo users got new random passwords (printed below)"
        );
    }
    Ok(out)
}
