//! The `hardening` workload: what hostile and extreme input costs.
//!
//! - `IN` lists and `OR` chains of the sizes Power BI's slicers send, against PostgreSQL with
//!   the same lists (and the largest of each the server answers);
//! - preparing a 1,664-column select (PostgreSQL's limit) and a 20,000-column one (refused by
//!   both, with 54011);
//! - logins per second, and logins per second while 500 connections idle without ever
//!   authenticating (PostgreSQL's figure is without them: they would take its backends);
//! - the peak resident memory of a server with `max_memory: 1GiB` while four memory-hungry
//!   queries run at once, and how many were cancelled.

use std::time::{Duration, Instant};

use anyhow::Context;

use super::engine::{self, EngineKind};
use super::report::{Better, Figure, median};
use super::server::ChildServer;

/// The budget of the memory measurement's server.
const MAX_MEMORY: u64 = 1 << 30;

/// A query holding a few hundred megabytes (an aggregate that cannot spill).
const HUNGRY: &str = "select cardinality(array_agg(value)) from generate_series(1, 25000000)";

/// Runs the workload against our server (as `PBI_Reader`, result cache off) and PostgreSQL.
pub async fn run(
    server: &ChildServer,
    pg: &tokio_postgres::Config,
    start_server: impl std::future::Future<Output = anyhow::Result<ChildServer>>,
    runs: usize,
    seconds: Duration,
) -> anyhow::Result<Vec<Figure>> {
    let mut lakehouse = server.client_config();
    lakehouse.options("-c lakehouse.result_cache=off");
    let ours = engine::connect(&lakehouse).await?;
    let theirs = engine::connect(pg).await?;
    let mut figures = Vec::new();

    for n in [1_000usize, 10_000, 100_000] {
        let list: Vec<String> = (0..n).map(|i| (i * 7 % 100_000).to_string()).collect();
        let sql = format!(
            "select count(*) from {{s}}.fact_events where id_patient in ({})",
            list.join(",")
        );
        figures.extend(latency(&ours, &theirs, &sql, &format!("IN list of {n}"), runs).await?);
    }
    for n in [1_000usize, 10_000] {
        let terms: Vec<String> = (0..n)
            .map(|i| format!("id_patient = {}", i * 7 % 100_000))
            .collect();
        let sql = format!(
            "select count(*) from {{s}}.fact_events where {}",
            terms.join(" or ")
        );
        figures.extend(latency(&ours, &theirs, &sql, &format!("OR chain of {n}"), runs).await?);
    }
    for (what, build) in [
        ("IN list", in_list as fn(usize) -> String),
        ("OR chain", or_chain as fn(usize) -> String),
    ] {
        let (largest, ms) = largest_answered(&ours, build).await;
        figures.push(
            Figure::new(
                "hardening",
                &format!("largest {what} answered"),
                "values",
                EngineKind::LakehouseUncached,
                largest as f64,
                Better::Higher,
            )
            .detail("ms", ms),
        );
    }
    for columns in [1_664usize, 20_000] {
        let list: Vec<String> = (0..columns).map(|i| format!("id as c{i}")).collect();
        let sql = format!("select {} from {{s}}.fact_events", list.join(", "));
        for (kind, client, schema) in [
            (EngineKind::LakehouseUncached, &ours, "dbo"),
            (EngineKind::Postgres, &theirs, "bench"),
        ] {
            let sql = sql.replace("{s}", schema);
            let mut times = Vec::new();
            let mut refused = false;
            for _ in 0..runs {
                let started = Instant::now();
                refused = client.prepare(&sql).await.is_err();
                times.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            figures.push(
                Figure::new(
                    "hardening",
                    &format!("prepare a {columns}-column select"),
                    "ms",
                    kind,
                    median(&times),
                    Better::Lower,
                )
                .detail("refused", if refused { 1.0 } else { 0.0 }),
            );
        }
    }

    let (address, user, password) = server_login(server);
    figures.push(
        Figure::new(
            "hardening",
            "logins",
            "per s",
            EngineKind::LakehouseUncached,
            logins_per_second(address, &user, &password, seconds, false).await?,
            Better::Higher,
        )
        .detail("idle_unauthenticated", 0.0),
    );
    figures.push(
        Figure::new(
            "hardening",
            "logins while 500 connections idle unauthenticated",
            "per s",
            EngineKind::LakehouseUncached,
            logins_per_second(address, &user, &password, seconds, true).await?,
            Better::Higher,
        )
        .detail("idle_unauthenticated", 500.0),
    );
    figures.push(Figure::new(
        "hardening",
        "logins",
        "per s",
        EngineKind::Postgres,
        pg_logins_per_second(pg, seconds).await?,
        Better::Higher,
    ));

    figures.push(memory(start_server).await?);
    Ok(figures)
}

fn in_list(n: usize) -> String {
    let list: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    format!(
        "select count(*) from dbo.fact_events where id_patient in ({})",
        list.join(",")
    )
}

fn or_chain(n: usize) -> String {
    let terms: Vec<String> = (0..n).map(|i| format!("id_patient = {i}")).collect();
    format!(
        "select count(*) from dbo.fact_events where {}",
        terms.join(" or ")
    )
}

/// The median time of a statement on our server and PostgreSQL.
async fn latency(
    ours: &tokio_postgres::Client,
    theirs: &tokio_postgres::Client,
    sql: &str,
    item: &str,
    runs: usize,
) -> anyhow::Result<Vec<Figure>> {
    let mut figures = Vec::new();
    for (kind, client, schema) in [
        (EngineKind::LakehouseUncached, ours, "dbo"),
        (EngineKind::Postgres, theirs, "bench"),
    ] {
        let sql = sql.replace("{s}", schema);
        let mut times = Vec::new();
        for _ in 0..runs {
            let started = Instant::now();
            client
                .simple_query(&sql)
                .await
                .with_context(|| format!("{} on {}", item, kind.name()))?;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        figures.push(Figure::new(
            "hardening",
            item,
            "ms",
            kind,
            median(&times),
            Better::Lower,
        ));
    }
    Ok(figures)
}

/// Doubles a statement's size from 100,000 terms until the server refuses it: the largest
/// answered, and how long it took.
async fn largest_answered(
    client: &tokio_postgres::Client,
    build: fn(usize) -> String,
) -> (usize, f64) {
    let mut best = (0, 0.0);
    let mut n = 100_000;
    while n <= 1_600_000 {
        let started = Instant::now();
        if client.simple_query(&build(n)).await.is_err() {
            break;
        }
        best = (n, started.elapsed().as_secs_f64() * 1000.0);
        n *= 2;
    }
    best
}

fn server_login(server: &ChildServer) -> (std::net::SocketAddr, String, String) {
    (
        server.addr,
        super::server::USER.to_string(),
        super::server::PASSWORD.to_string(),
    )
}

/// Logins (SCRAM, then `select 1`) one after the other for `seconds`, optionally while 500
/// connections that never authenticate are open.
async fn logins_per_second(
    address: std::net::SocketAddr,
    user: &str,
    password: &str,
    seconds: Duration,
    with_idle: bool,
) -> anyhow::Result<f64> {
    let mut idle = Vec::new();
    if with_idle {
        for _ in 0..500 {
            idle.push(tokio::net::TcpStream::connect(address).await?);
        }
    }
    let mut config = super::client_config(address, user, password);
    config.connect_timeout(Duration::from_secs(10));
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < seconds || n == 0 {
        let client = engine::connect(&config).await?;
        client.simple_query("select 1").await?;
        n += 1;
    }
    drop(idle);
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

async fn pg_logins_per_second(
    pg: &tokio_postgres::Config,
    seconds: Duration,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < seconds || n == 0 {
        let client = engine::connect(pg).await?;
        client.simple_query("select 1").await?;
        n += 1;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// Four memory-hungry queries at once on a server with `max_memory: 1GiB`: its peak resident
/// memory (VmHWM), against the budget.
async fn memory(
    start_server: impl std::future::Future<Output = anyhow::Result<ChildServer>>,
) -> anyhow::Result<Figure> {
    let server = start_server.await?;
    let baseline = server.peak_rss().unwrap_or(0);
    let mut running = Vec::new();
    for _ in 0..4 {
        let client = engine::connect(&server.client_config()).await?;
        running.push(tokio::spawn(async move {
            client.simple_query(HUNGRY).await.map_err(|e| {
                e.code()
                    .map(|c| c.code().to_string())
                    .unwrap_or_else(|| e.to_string())
            })
        }));
    }
    let mut cancelled = 0;
    let mut other_errors = Vec::new();
    for task in running {
        match task.await? {
            Ok(_) => {}
            Err(code) if code == "53200" => cancelled += 1,
            Err(other) => other_errors.push(other),
        }
    }
    anyhow::ensure!(
        other_errors.is_empty(),
        "memory-hungry queries failed: {other_errors:?}"
    );
    let peak = server.peak_rss().unwrap_or(0);
    server.stop().await;
    Ok(Figure::new(
        "hardening",
        "peak RSS, 4 memory-hungry queries, max_memory 1 GiB",
        "MB",
        EngineKind::LakehouseUncached,
        (peak >> 20) as f64,
        Better::Lower,
    )
    .detail("max_memory_mb", (MAX_MEMORY >> 20) as f64)
    .detail("baseline_mb", (baseline >> 20) as f64)
    .detail("cancelled", f64::from(cancelled)))
}

/// The `server:` lines of the memory measurement's server.
pub fn memory_server_yaml() -> String {
    format!("  max_memory: {MAX_MEMORY}\n")
}
