//! `lakehouse bench`: serving speed against PostgreSQL and DuckDB, on the same rows, in one run.
//!
//! - [`data`]: gold tables built by the ingest's code at a scale, exported to Parquet, loaded
//!   into PostgreSQL (schema `bench`) with primary keys, join-key and date indexes.
//! - [`server`]: our server as a child `lakehouse serve` on `127.0.0.1:0` (its own VmHWM).
//! - [`engine`]: the engines behind one set of measurements.
//! - [`duckdb`]: DuckDB in a Python process (the `duckdb` wheel, no C++ build).
//! - [`queries`]: the dashboard in Power BI's folded shapes, Import reads, small queries.
//! - [`hardening`]: what hostile and extreme input costs (large IN lists, wide selects,
//!   logins beside idle connections, memory under a budget).
//! - [`report`]: figures, ratios, targets; JSON and markdown.
//!
//! The harness only reads the lake it built; it never binds a port itself and never touches
//! PostgreSQL outside schema `bench`.

pub mod data;
pub mod duckdb;
pub mod engine;
pub mod hardening;
pub mod queries;
pub mod report;
pub mod server;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use rand::SeedableRng;
use rand::seq::SliceRandom;

use self::engine::{EngineKind, Target};
use self::report::{Better, Figure, Report, median, percentile};

/// A workload of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// The hospital overview visuals, cold and hot.
    Dashboard,
    /// Full binary reads of each gold table.
    Import,
    /// Many clients on the dashboard mix.
    Concurrency,
    /// `select 1` and a point lookup; pgbench when installed.
    Small,
    /// Large IN lists and OR chains, wide selects, logins beside idle connections, memory
    /// under a budget.
    Hardening,
}

impl Workload {
    /// Every workload.
    pub const ALL: [Workload; 5] = [
        Workload::Dashboard,
        Workload::Import,
        Workload::Concurrency,
        Workload::Small,
        Workload::Hardening,
    ];
}

impl std::str::FromStr for Workload {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "dashboard" => Ok(Workload::Dashboard),
            "import" => Ok(Workload::Import),
            "concurrency" => Ok(Workload::Concurrency),
            "small" => Ok(Workload::Small),
            "hardening" => Ok(Workload::Hardening),
            other => Err(format!(
                "unknown workload \"{other}\": expected dashboard, import, concurrency, small or hardening"
            )),
        }
    }
}

/// How a benchmark run goes.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// 1 = 100,000 patients and 10,000,000 visits; fractions for smaller runs.
    pub scale: f64,
    /// Runs per figure (hot figures are the median of these; one cold run comes first).
    pub runs: usize,
    /// Data directory (lake, Parquet export, server configuration); reused across runs.
    pub dir: PathBuf,
    /// Workloads to run.
    pub workloads: Vec<Workload>,
    /// Client counts of the concurrency workload.
    pub clients: Vec<usize>,
    /// Seconds per concurrency level and per small-query loop.
    pub seconds: f64,
    /// Where the report goes.
    pub out: PathBuf,
    /// PostgreSQL to compare with.
    pub pg_url: String,
    /// The `lakehouse` binary to run as the server.
    pub server_exe: PathBuf,
    /// Python with the `duckdb` package.
    pub python: String,
    /// Generator seed.
    pub seed: u64,
}

impl BenchOptions {
    /// Defaults for everything but the server binary.
    pub fn new(server_exe: PathBuf) -> BenchOptions {
        BenchOptions {
            scale: 0.01,
            runs: 5,
            dir: PathBuf::from("bench-data"),
            workloads: Workload::ALL.to_vec(),
            clients: vec![1, 8, 32, 128],
            seconds: 10.0,
            out: PathBuf::from("bench-results"),
            pg_url: "postgresql://postgres@127.0.0.1:5432/postgres".to_string(),
            server_exe,
            python: "python3".to_string(),
            seed: 1,
        }
    }

    fn runs(&self, workload: Workload) -> bool {
        self.workloads.contains(&workload)
    }
}

/// Runs the benchmark and returns its report (also see [`write_report`]).
pub async fn run(options: &BenchOptions) -> anyhow::Result<Report> {
    let started_at = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let seconds = Duration::from_secs_f64(options.seconds.max(0.05));
    let runs = options.runs.max(1);
    let mut notes = Vec::new();

    eprintln!("bench: gold tables at scale {}", options.scale);
    let data = data::prepare(&options.dir, options.scale, options.seed).await?;
    eprintln!("bench: PostgreSQL schema bench");
    let pg_load = data::load_postgres(&options.pg_url, &data).await?;
    let dir = crate::config::absolute(&options.dir);
    eprintln!("bench: starting the lakehouse server");
    let server = server::ChildServer::start(&options.server_exe, &dir, &data.lake).await?;
    let pg_config: tokio_postgres::Config = options
        .pg_url
        .parse()
        .with_context(|| format!("invalid PostgreSQL URL {}", options.pg_url))?;
    let views: Vec<(String, &Path)> = data
        .tables
        .iter()
        .map(|t| (format!("dbo.{}", t.name), t.parquet.as_path()))
        .collect();
    let duck = duckdb::DuckDb::start(&options.python, &views).await?;
    let mut versions = BTreeMap::new();
    versions.insert("duckdb".to_string(), duck.version.clone());
    if !duck.arrow {
        notes.push(
            "pyarrow is not installed: DuckDB's import figures convert rows to Python tuples"
                .to_string(),
        );
    }
    let mut targets = vec![
        Target::wire(EngineKind::Lakehouse, server.client_config()).await?,
        Target::wire(EngineKind::LakehouseUncached, {
            let mut config = server.client_config();
            config.options("-c lakehouse.result_cache=off");
            config
        })
        .await?,
        Target::wire(EngineKind::Postgres, pg_config.clone()).await?,
        Target::Duck(duck),
        Target::Floor(data::floor_context(&data.lake).await?),
    ];
    let pg_client = engine::connect(&pg_config).await?;
    let pg_version: String = pg_client.query_one("select version()", &[]).await?.get(0);
    versions.insert("postgres".to_string(), pg_version);
    versions.insert(
        "lakehouse".to_string(),
        env!("CARGO_PKG_VERSION").to_string(),
    );

    let mut figures = Vec::new();
    if options.runs(Workload::Dashboard) {
        eprintln!("bench: dashboard");
        for target in &mut targets {
            figures.extend(dashboard(target, runs).await?);
        }
    }
    let (answers_agree, answer_rows) = match compare_answers(&mut targets).await {
        Ok(rows) => (true, rows),
        Err(err) => {
            notes.push(format!("answers differ: {err:#}"));
            (false, BTreeMap::new())
        }
    };
    if options.runs(Workload::Import) {
        eprintln!("bench: import");
        for target in &mut targets {
            figures.extend(import(target, &data, runs).await?);
        }
    }
    if options.runs(Workload::Concurrency) {
        eprintln!("bench: concurrency");
        let pg_room = postgres_room(&pg_client).await?;
        for &clients in &options.clients {
            for target in &mut targets {
                let kind = target.kind();
                let effective = if kind == EngineKind::Postgres && clients > pg_room {
                    notes.push(format!(
                        "PostgreSQL ran {pg_room} clients instead of {clients}: its max_connections leaves no more"
                    ));
                    pg_room
                } else {
                    clients
                };
                let sqls: Vec<String> = queries::DASHBOARD
                    .iter()
                    .map(|v| queries::for_schema(v.sql, kind.schema()))
                    .collect();
                let load = target.concurrent(&sqls, effective, seconds).await?;
                let qps = load.latencies_ms.len() as f64 / load.elapsed_s.max(1e-9);
                figures.push(
                    Figure::new(
                        "concurrency",
                        &format!("{clients} clients"),
                        "qps",
                        kind,
                        qps,
                        Better::Higher,
                    )
                    .detail("clients", effective as f64)
                    .detail("queries", load.latencies_ms.len() as f64)
                    .detail("p50_ms", percentile(&load.latencies_ms, 50.0))
                    .detail("p95_ms", percentile(&load.latencies_ms, 95.0))
                    .detail("p99_ms", percentile(&load.latencies_ms, 99.0)),
                );
            }
        }
    }
    if options.runs(Workload::Small) {
        eprintln!("bench: small queries");
        let ids = patient_ids(&data, options.seed).await?;
        for target in &mut targets {
            figures.extend(small(target, &ids, seconds).await?);
        }
        match pgbench(options, &dir, &server, &pg_config, &data).await {
            Ok(mut found) => figures.append(&mut found),
            Err(err) => notes.push(format!("pgbench: {err:#}")),
        }
    }
    if options.runs(Workload::Hardening) {
        eprintln!("bench: hardening");
        let memory_yaml = hardening::memory_server_yaml();
        let memory_server = server::ChildServer::start_with(
            &options.server_exe,
            &dir,
            &data.lake,
            "server-memory",
            &memory_yaml,
        );
        figures.extend(hardening::run(&server, &pg_config, memory_server, runs, seconds).await?);
    }
    let server_peak_rss_bytes = server.peak_rss();
    server.stop().await;
    for target in targets {
        target.close().await?;
    }
    if options.scale < 1.0 {
        notes.push(format!(
            "scale {} is below the targets' scale 1: the targets are stated for 10M visits",
            options.scale
        ));
    }
    if cfg!(debug_assertions) {
        notes.push(
            "debug build: the lakehouse and DataFusion figures are not the product's".to_string(),
        );
    }
    notes.push(
        "cold is the first run after the engine started (a new lakehouse server process, a new \
         DuckDB process, a new DataFusion context, a new PostgreSQL connection); the operating \
         system's page cache, and PostgreSQL's shared buffers, are warm from the load"
            .to_string(),
    );
    notes.push(format!(
        "concurrency figures are over {} s of closed-loop load per level; small-query figures over {} s of back-to-back statements",
        options.seconds, options.seconds
    ));
    let mut report = Report {
        scale: options.scale,
        patients: data.stamp.patients,
        events: data.stamp.events,
        runs,
        seconds: options.seconds,
        build: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
        .to_string(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        started_at,
        versions,
        tables: data.tables.clone(),
        gold_build_seconds: data.build_seconds,
        postgres_load_seconds: pg_load.seconds,
        figures,
        answers_agree,
        answer_rows,
        server_peak_rss_bytes,
        targets: Vec::new(),
        notes,
    };
    report.fill_ratios();
    report.check_targets();
    Ok(report)
}

/// A client of a server on this machine at `addr` (plaintext over loopback; SCRAM still
/// applies): the bench's, the integration tests' and the fuzz targets' connections.
pub fn client_config(
    addr: std::net::SocketAddr,
    user: &str,
    password: &str,
) -> tokio_postgres::Config {
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(addr.port())
        .user(user)
        .password(password)
        .dbname(crate::config::DATABASE_NAME);
    config
}

/// Writes `report.json` and `report.md` into `out`; returns their paths.
pub fn write_report(report: &Report, out: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let json = out.join("report.json");
    let markdown = out.join("report.md");
    std::fs::write(&json, serde_json::to_vec_pretty(report)?)?;
    std::fs::write(&markdown, report.markdown())?;
    Ok((json, markdown))
}

async fn dashboard(target: &mut Target, runs: usize) -> anyhow::Result<Vec<Figure>> {
    let kind = target.kind();
    let mut figures = Vec::new();
    let (mut cold_total, mut hot_total) = (0.0, 0.0);
    for visual in queries::DASHBOARD {
        let sql = queries::for_schema(visual.sql, kind.schema());
        // The first run after start is the cold one; the hot figure is the median of the rest.
        let measured = target
            .repeat(&sql, runs + 1)
            .await
            .with_context(|| format!("{} on {}", visual.name, kind.name()))?;
        let cold = measured.ms.first().copied().unwrap_or(0.0);
        let hot = median(measured.ms.get(1..).unwrap_or(&[]));
        cold_total += cold;
        hot_total += hot;
        figures.push(
            Figure::new(
                "dashboard",
                visual.name,
                "hot_p50_ms",
                kind,
                hot,
                Better::Lower,
            )
            .rows(measured.rows)
            .detail("cold_ms", cold),
        );
    }
    figures.push(
        Figure::new(
            "dashboard",
            "all_visuals",
            "hot_p50_ms",
            kind,
            hot_total,
            Better::Lower,
        )
        .detail("cold_ms", cold_total),
    );
    Ok(figures)
}

/// Runs every visual's text result on every engine and fails unless they agree; returns the
/// row counts.
async fn compare_answers(
    targets: &mut [Target],
) -> anyhow::Result<BTreeMap<String, BTreeMap<String, u64>>> {
    let mut counts = BTreeMap::new();
    for visual in queries::DASHBOARD {
        let mut answers = Vec::new();
        for target in targets.iter_mut() {
            let kind = target.kind();
            let sql = queries::for_schema(visual.sql, kind.schema());
            let rows = target
                .answer(&sql)
                .await
                .with_context(|| format!("{} on {}", visual.name, kind.name()))?;
            counts
                .entry(visual.name.to_string())
                .or_insert_with(BTreeMap::new)
                .insert(kind.name().to_string(), rows.len() as u64);
            answers.push((kind, rows));
        }
        engine::same_answers(visual.name, &answers)?;
    }
    Ok(counts)
}

async fn import(
    target: &mut Target,
    data: &data::Dataset,
    runs: usize,
) -> anyhow::Result<Vec<Figure>> {
    let kind = target.kind();
    let mut figures = Vec::new();
    let (mut all_rows, mut all_bytes, mut all_seconds) = (0u64, 0u64, 0.0);
    for table in &data.tables {
        let sql = queries::import_sql(kind.schema(), &table.name, &table.columns);
        let measured = target
            .import(&sql, runs)
            .await
            .with_context(|| format!("reading {} on {}", table.name, kind.name()))?;
        let secs = median(&measured.ms) / 1000.0;
        let rows_per_s = measured.rows as f64 / secs.max(1e-9);
        all_rows += measured.rows;
        all_bytes += measured.bytes;
        all_seconds += secs;
        figures.push(
            Figure::new(
                "import",
                &table.name,
                "rows_per_s",
                kind,
                rows_per_s,
                Better::Higher,
            )
            .rows(measured.rows)
            .detail("median_s", secs)
            .detail("mb_per_s", measured.bytes as f64 / 1e6 / secs.max(1e-9)),
        );
    }
    figures.push(
        Figure::new(
            "import",
            "all_tables",
            "rows_per_s",
            kind,
            all_rows as f64 / all_seconds.max(1e-9),
            Better::Higher,
        )
        .rows(all_rows)
        .detail("median_s", all_seconds)
        .detail("mb_per_s", all_bytes as f64 / 1e6 / all_seconds.max(1e-9)),
    );
    Ok(figures)
}

async fn small(
    target: &mut Target,
    ids: &[i32],
    duration: Duration,
) -> anyhow::Result<Vec<Figure>> {
    let kind = target.kind();
    let mut figures = Vec::new();
    let lookup = queries::for_schema(queries::POINT_LOOKUP, kind.schema());
    for (name, sql, params) in [
        ("select_1", queries::SELECT_ONE.to_string(), &[][..]),
        ("point_lookup", lookup, ids),
    ] {
        let load = target
            .small(&sql, params, duration, 1_000_000)
            .await
            .with_context(|| format!("{name} on {}", kind.name()))?;
        let qps = load.latencies_ms.len() as f64 / load.elapsed_s.max(1e-9);
        figures.push(
            Figure::new("small", name, "qps", kind, qps, Better::Higher)
                .detail("queries", load.latencies_ms.len() as f64)
                .detail("p50_ms", percentile(&load.latencies_ms, 50.0))
                .detail("p99_ms", percentile(&load.latencies_ms, 99.0)),
        );
    }
    Ok(figures)
}

/// Patient ids for the point lookups, shuffled with the seed.
async fn patient_ids(data: &data::Dataset, seed: u64) -> anyhow::Result<Vec<i32>> {
    let ctx = data::floor_context(&data.lake).await?;
    let batches = ctx
        .sql("select id_patient from dbo.dim_patient")
        .await?
        .collect()
        .await?;
    let mut ids = Vec::new();
    for batch in batches {
        let column = batch
            .column(0)
            .as_any()
            .downcast_ref::<datafusion::arrow::array::Int32Array>()
            .context("id_patient is not an integer column")?;
        ids.extend(column.iter().flatten());
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    ids.shuffle(&mut rng);
    ids.truncate(10_000);
    anyhow::ensure!(!ids.is_empty(), "dim_patient is empty");
    Ok(ids)
}

/// Connections PostgreSQL can still take, keeping a few for others.
async fn postgres_room(client: &tokio_postgres::Client) -> anyhow::Result<usize> {
    let row = client
        .query_one(
            "select current_setting('max_connections')::int - \
             current_setting('superuser_reserved_connections')::int - \
             (select count(*)::int from pg_stat_activity)",
            &[],
        )
        .await?;
    let free: i32 = row.get(0);
    // One for the harness's own connections, a few for whoever else uses this server.
    Ok(usize::try_from(free - 5).unwrap_or(1).max(1))
}

/// pgbench with the same script file against both servers, over the simple and the extended
/// protocol. Table names are unqualified: our server resolves them in `dbo`, PostgreSQL gets
/// `search_path=bench` through PGOPTIONS.
async fn pgbench(
    options: &BenchOptions,
    dir: &Path,
    server: &server::ChildServer,
    pg: &tokio_postgres::Config,
    data: &data::Dataset,
) -> anyhow::Result<Vec<Figure>> {
    let found = tokio::process::Command::new("pgbench")
        .arg("--version")
        .output()
        .await;
    if !found.is_ok_and(|o| o.status.success()) {
        anyhow::bail!("not installed (Debian: postgresql-contrib or postgresql-15): skipped");
    }
    let scripts_dir = dir.join("pgbench");
    std::fs::create_dir_all(&scripts_dir)?;
    let patients = data.table("dim_patient").map_or(1, |t| t.rows.max(1));
    let scripts = [
        ("select_1", "select 1;\n".to_string()),
        (
            "point_lookup",
            format!(
                "\\set id random(1, {patients})\n\
                 select id_patient, sex, age, country from dim_patient where id_patient = :id;\n"
            ),
        ),
    ];
    let secs = options.seconds.ceil().max(1.0) as u64;
    let pg_host = match pg.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        _ => "127.0.0.1".to_string(),
    };
    let pg_port = pg.get_ports().first().copied().unwrap_or(5432);
    let pg_user = pg.get_user().unwrap_or("postgres").to_string();
    let pg_db = pg.get_dbname().unwrap_or("postgres").to_string();
    let pg_password = pg
        .get_password()
        .map(|p| String::from_utf8_lossy(p).to_string());
    let mut figures = Vec::new();
    for (name, text) in &scripts {
        let path = scripts_dir.join(format!("{name}.sql"));
        std::fs::write(&path, text)?;
        for protocol in ["simple", "extended"] {
            for clients in [1usize, 8] {
                for kind in [EngineKind::Lakehouse, EngineKind::Postgres] {
                    let mut command = tokio::process::Command::new("pgbench");
                    command
                        .arg("-n")
                        .arg("-f")
                        .arg(&path)
                        .arg("-M")
                        .arg(protocol)
                        .arg("-c")
                        .arg(clients.to_string())
                        .arg("-j")
                        .arg(clients.min(2).to_string())
                        .arg("-T")
                        .arg(secs.to_string())
                        .env("PGSSLMODE", "disable")
                        .env_remove("PGOPTIONS")
                        .env_remove("PGPASSWORD");
                    match kind {
                        EngineKind::Lakehouse => {
                            command
                                .args(["-h", "127.0.0.1", "-p"])
                                .arg(server.addr.port().to_string())
                                .args(["-U", server::USER, "IKHOSPITAL_DW"])
                                .env("PGPASSWORD", server::PASSWORD);
                        }
                        _ => {
                            command
                                .args(["-h", pg_host.as_str(), "-p"])
                                .arg(pg_port.to_string())
                                .args(["-U", pg_user.as_str(), pg_db.as_str()])
                                .env("PGOPTIONS", "-c search_path=bench");
                            if let Some(password) = &pg_password {
                                command.env("PGPASSWORD", password);
                            }
                        }
                    }
                    let output = command.output().await.context("running pgbench")?;
                    let stdout = String::from_utf8_lossy(&output.stdout);
                    let tps = stdout
                        .lines()
                        .find(|l| l.starts_with("tps = "))
                        .and_then(|l| l.split_whitespace().nth(2))
                        .and_then(|v| v.parse::<f64>().ok());
                    let failed = stdout
                        .lines()
                        .find_map(|l| l.strip_prefix("number of failed transactions: "))
                        .and_then(|v| v.split_whitespace().next())
                        .and_then(|v| v.parse::<f64>().ok())
                        .unwrap_or(0.0);
                    let Some(tps) = tps.filter(|_| output.status.success()) else {
                        anyhow::bail!(
                            "{name} {protocol} on {}: {}",
                            kind.name(),
                            String::from_utf8_lossy(&output.stderr)
                                .lines()
                                .last()
                                .unwrap_or("no tps reported")
                        );
                    };
                    figures.push(
                        Figure::new(
                            "pgbench",
                            &format!("{name} {protocol} {clients}c"),
                            "tps",
                            kind,
                            tps,
                            Better::Higher,
                        )
                        .detail("clients", clients as f64)
                        .detail("failed", failed),
                    );
                }
            }
        }
    }
    Ok(figures)
}
