//! The engines the benchmark compares, behind one set of measurements: lakehouse (with and
//! without its result cache) and PostgreSQL through tokio-postgres (binary results, the
//! extended protocol), DuckDB in its own Python process, and bare DataFusion in this process.
//!
//! In-process engines are timed around their own calls; wire engines are timed by the client,
//! so their figures include the protocol, exactly what a dashboard or an import would see.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use datafusion::arrow::array::Array;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use tokio_postgres::types::{FromSql, Type};

use super::duckdb::DuckDb;

/// Which engine a figure belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EngineKind {
    /// Our server over pgwire, as `PBI_Reader` (policy with masks applies).
    Lakehouse,
    /// The same server and user with the result cache off for the session
    /// (`options=-c lakehouse.result_cache=off`): every answer computed.
    LakehouseUncached,
    /// The local PostgreSQL, schema `bench`.
    Postgres,
    /// DuckDB in process over the exported Parquet files.
    Duckdb,
    /// Bare DataFusion in process over the same Delta tables: the floor.
    Datafusion,
}

impl EngineKind {
    /// Every engine, in report order.
    pub const ALL: [EngineKind; 5] = [
        EngineKind::Lakehouse,
        EngineKind::LakehouseUncached,
        EngineKind::Postgres,
        EngineKind::Duckdb,
        EngineKind::Datafusion,
    ];

    /// The name in reports.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Lakehouse => "lakehouse",
            EngineKind::LakehouseUncached => "lakehouse_uncached",
            EngineKind::Postgres => "postgres",
            EngineKind::Duckdb => "duckdb",
            EngineKind::Datafusion => "datafusion",
        }
    }

    /// The schema holding the gold tables on this engine.
    pub fn schema(self) -> &'static str {
        match self {
            EngineKind::Postgres => "bench",
            _ => "dbo",
        }
    }
}

/// Times of repeated runs of one statement, and its row count.
#[derive(Debug, Clone)]
pub struct Runs {
    /// Milliseconds of each run, the first being the cold one.
    pub ms: Vec<f64>,
    /// Rows of the result.
    pub rows: u64,
    /// Bytes of the result: DataRow payload on the wire, Arrow buffers in process.
    pub bytes: u64,
}

/// Latencies of a closed-loop load.
#[derive(Debug, Clone)]
pub struct Load {
    /// Milliseconds of every completed statement.
    pub latencies_ms: Vec<f64>,
    /// Wall time of the whole load.
    pub elapsed_s: f64,
}

/// Connects to a PostgreSQL URL (no TLS: both servers are on loopback).
pub async fn connect_url(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let config: tokio_postgres::Config = url
        .parse()
        .with_context(|| format!("invalid PostgreSQL URL {url}"))?;
    connect(&config).await
}

/// Connects with a tokio-postgres configuration and drives the connection in the background.
pub async fn connect(config: &tokio_postgres::Config) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .context("connecting")?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// The size of one binary value as it travels, without decoding it.
struct WireLen(usize);

impl<'a> FromSql<'a> for WireLen {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(WireLen(raw.len()))
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(WireLen(0))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// An engine ready to measure.
pub enum Target {
    /// A PostgreSQL-protocol server (lakehouse or PostgreSQL).
    Wire {
        /// Which one.
        kind: EngineKind,
        /// How to open more connections.
        config: tokio_postgres::Config,
        /// The connection used by the sequential workloads.
        client: tokio_postgres::Client,
    },
    /// Bare DataFusion.
    Floor(SessionContext),
    /// DuckDB in its Python process.
    Duck(DuckDb),
}

impl Target {
    /// Which engine this is.
    pub fn kind(&self) -> EngineKind {
        match self {
            Target::Wire { kind, .. } => *kind,
            Target::Floor(_) => EngineKind::Datafusion,
            Target::Duck(_) => EngineKind::Duckdb,
        }
    }

    /// A wire target with one open connection.
    pub async fn wire(kind: EngineKind, config: tokio_postgres::Config) -> anyhow::Result<Target> {
        let client = connect(&config)
            .await
            .with_context(|| format!("connecting to {}", kind.name()))?;
        Ok(Target::Wire {
            kind,
            config,
            client,
        })
    }

    /// Runs `sql` `runs` times (the first is the cold run) and returns each run's time.
    pub async fn repeat(&mut self, sql: &str, runs: usize) -> anyhow::Result<Runs> {
        let runs = runs.max(1);
        match self {
            Target::Wire { client, .. } => {
                let mut ms = Vec::with_capacity(runs);
                let mut rows = 0;
                let mut bytes = 0;
                for _ in 0..runs {
                    let started = Instant::now();
                    let (n_rows, n_bytes) = wire_read(client, sql).await?;
                    ms.push(millis(started));
                    rows = n_rows;
                    bytes = n_bytes;
                }
                Ok(Runs { ms, rows, bytes })
            }
            Target::Floor(ctx) => {
                let mut ms = Vec::with_capacity(runs);
                let mut rows = 0;
                let mut bytes = 0;
                for _ in 0..runs {
                    let started = Instant::now();
                    let batches = ctx.sql(sql).await?.collect().await?;
                    ms.push(millis(started));
                    rows = batches.iter().map(|b| b.num_rows() as u64).sum();
                    bytes = batches
                        .iter()
                        .map(|b| b.get_array_memory_size() as u64)
                        .sum();
                }
                Ok(Runs { ms, rows, bytes })
            }
            Target::Duck(duck) => duck.repeat(sql, runs, false).await,
        }
    }

    /// A full read of a table (Power BI Import): like [`Target::repeat`], but DuckDB hands
    /// Arrow tables over instead of Python tuples, so in-process engines both count Arrow bytes.
    pub async fn import(&mut self, sql: &str, runs: usize) -> anyhow::Result<Runs> {
        match self {
            Target::Duck(duck) => duck.repeat(sql, runs.max(1), true).await,
            _ => self.repeat(sql, runs).await,
        }
    }

    /// The result of `sql` as PostgreSQL text values, to compare answers across engines.
    pub async fn answer(&mut self, sql: &str) -> anyhow::Result<Vec<Vec<Option<String>>>> {
        match self {
            Target::Wire { client, .. } => Ok(text_rows(client.simple_query(sql).await?)),
            Target::Floor(ctx) => {
                let batches = ctx.sql(sql).await?.collect().await?;
                let options = FormatOptions::default();
                let mut out = Vec::new();
                for batch in &batches {
                    let formatters = batch
                        .columns()
                        .iter()
                        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
                        .collect::<Result<Vec<_>, _>>()?;
                    for row in 0..batch.num_rows() {
                        out.push(
                            batch
                                .columns()
                                .iter()
                                .zip(&formatters)
                                .map(|(col, f)| {
                                    (!col.is_null(row)).then(|| f.value(row).to_string())
                                })
                                .collect(),
                        );
                    }
                }
                Ok(out)
            }
            Target::Duck(duck) => duck.answer(sql).await,
        }
    }

    /// `clients` concurrent clients, each running `sqls` round robin (starting at its own
    /// offset) for `duration`. Connections are opened before the clock starts.
    pub async fn concurrent(
        &mut self,
        sqls: &[String],
        clients: usize,
        duration: Duration,
    ) -> anyhow::Result<Load> {
        let clients = clients.max(1);
        match self {
            Target::Wire { config, .. } => {
                let mut connections = Vec::with_capacity(clients);
                for _ in 0..clients {
                    connections.push(connect(config).await?);
                }
                closed_loop(connections, sqls, duration, |client, sqls, k| async move {
                    wire_read(&client, &sqls[k]).await.map(|_| ())
                })
                .await
            }
            Target::Floor(ctx) => {
                closed_loop(
                    vec![ctx.clone(); clients],
                    sqls,
                    duration,
                    |ctx, sqls, k| async move {
                        ctx.sql(&sqls[k]).await?.collect().await?;
                        Ok(())
                    },
                )
                .await
            }
            Target::Duck(duck) => duck.concurrent(sqls, clients, duration).await,
        }
    }

    /// One client sending `sql` back to back for `duration` (at most `max` times). With `ids`,
    /// `sql` takes `$1` and the run cycles through them. Wire engines prepare it once.
    pub async fn small(
        &mut self,
        sql: &str,
        ids: &[i32],
        duration: Duration,
        max: usize,
    ) -> anyhow::Result<Load> {
        let mut latencies_ms = Vec::new();
        let started = Instant::now();
        let deadline = started + duration;
        match self {
            Target::Wire { client, .. } => {
                let types: &[Type] = if ids.is_empty() { &[] } else { &[Type::INT4] };
                let statement = client.prepare_typed(sql, types).await?;
                let mut k = 0;
                while Instant::now() < deadline && k < max {
                    let t = Instant::now();
                    if ids.is_empty() {
                        client.query(&statement, &[]).await?;
                    } else {
                        let id = ids[k % ids.len()];
                        client.query(&statement, &[&id]).await?;
                    }
                    latencies_ms.push(millis(t));
                    k += 1;
                }
            }
            Target::Floor(ctx) => {
                let mut k = 0;
                while Instant::now() < deadline && k < max {
                    let t = Instant::now();
                    // DataFusion has no prepared-plan cache: each lookup plans its literal.
                    let text = match ids.get(k % ids.len().max(1)) {
                        Some(id) => sql.replace("$1", &id.to_string()),
                        None => sql.to_string(),
                    };
                    ctx.sql(&text).await?.collect().await?;
                    latencies_ms.push(millis(t));
                    k += 1;
                }
            }
            Target::Duck(duck) => return duck.small(sql, ids, duration, max).await,
        }
        Ok(Load {
            latencies_ms,
            elapsed_s: started.elapsed().as_secs_f64(),
        })
    }

    /// Stops what the target runs (DuckDB's process).
    pub async fn close(self) -> anyhow::Result<()> {
        if let Target::Duck(duck) = self {
            duck.close().await?;
        }
        Ok(())
    }
}

/// Reads a whole result in binary format; returns rows and DataRow payload bytes.
async fn wire_read(client: &tokio_postgres::Client, sql: &str) -> anyhow::Result<(u64, u64)> {
    let stream = client
        .query_raw(sql, Vec::<String>::new())
        .await
        .with_context(|| format!("running {}", first_line(sql)))?;
    futures::pin_mut!(stream);
    let mut rows = 0u64;
    let mut bytes = 0u64;
    while let Some(row) = stream.next().await {
        let row = row?;
        // Message header (type, length, column count) plus a length word per value.
        let mut size = 7u64;
        for idx in 0..row.len() {
            size += 4 + row.try_get::<_, WireLen>(idx)?.0 as u64;
        }
        rows += 1;
        bytes += size;
    }
    Ok((rows, bytes))
}

fn first_line(sql: &str) -> &str {
    sql.lines().next().unwrap_or(sql)
}

/// One task per client, each running `sqls` round robin from its own offset until `duration`
/// has passed; `run(client, sqls, k)` runs statement `k` once.
async fn closed_loop<C, F, Fut>(
    clients: Vec<C>,
    sqls: &[String],
    duration: Duration,
    run: F,
) -> anyhow::Result<Load>
where
    C: Send + Sync + 'static,
    F: Fn(Arc<C>, Arc<Vec<String>>, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let sqls = Arc::new(sqls.to_vec());
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(offset, client)| {
            let (client, sqls, run) = (Arc::new(client), sqls.clone(), run.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut k = offset;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    run(client.clone(), sqls.clone(), k % sqls.len()).await?;
                    latencies.push(millis(t));
                    k += 1;
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut latencies_ms = Vec::new();
    for task in tasks {
        latencies_ms.extend(task.await??);
    }
    Ok(Load {
        latencies_ms,
        elapsed_s: started.elapsed().as_secs_f64(),
    })
}

/// Milliseconds since `started`.
pub fn millis(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1000.0
}

/// Fails unless every engine's answer to every visual has the same rows, in any order.
pub fn same_answers(
    visual: &str,
    answers: &[(EngineKind, Vec<Vec<Option<String>>>)],
) -> anyhow::Result<()> {
    let mut canonical: Vec<(EngineKind, Vec<Vec<Option<String>>>)> = answers
        .iter()
        .map(|(kind, rows)| {
            let mut rows = rows.clone();
            rows.sort();
            (*kind, rows)
        })
        .collect();
    let Some((first_kind, first)) = canonical.pop() else {
        return Ok(());
    };
    for (kind, rows) in &canonical {
        if rows != &first {
            bail!(
                "{visual}: {} and {} disagree ({} rows vs {}; first difference {:?} vs {:?})",
                kind.name(),
                first_kind.name(),
                rows.len(),
                first.len(),
                rows.iter()
                    .zip(&first)
                    .find(|(a, b)| a != b)
                    .map(|(a, _)| a),
                rows.iter()
                    .zip(&first)
                    .find(|(a, b)| a != b)
                    .map(|(_, b)| b),
            );
        }
    }
    Ok(())
}

/// The rows of a simple-protocol answer as text (`None` for NULL).
pub fn text_rows(messages: Vec<tokio_postgres::SimpleQueryMessage>) -> Vec<Vec<Option<String>>> {
    messages
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_string))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rows(values: &[&[Option<&str>]]) -> Vec<Vec<Option<String>>> {
        values
            .iter()
            .map(|r| r.iter().map(|v| v.map(str::to_string)).collect())
            .collect()
    }

    #[test]
    fn answers_compare_in_any_order_and_differences_are_named() {
        let a = rows(&[&[Some("x"), Some("1")], &[None, Some("2")]]);
        let b = rows(&[&[None, Some("2")], &[Some("x"), Some("1")]]);
        same_answers(
            "v",
            &[(EngineKind::Postgres, a.clone()), (EngineKind::Duckdb, b)],
        )
        .unwrap();
        let c = rows(&[&[Some("x"), Some("1")], &[None, Some("3")]]);
        let err = same_answers(
            "v",
            &[(EngineKind::Postgres, a), (EngineKind::Lakehouse, c)],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("lakehouse") && err.contains("postgres"),
            "{err}"
        );
    }
}
