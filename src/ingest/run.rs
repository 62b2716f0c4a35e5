//! Running the ingest: once, on a schedule, or from the embedded generator for the demo.
//!
//! A run discovers every source (retrying with backoff), loads bronze and merges silver for
//! several tables at once, then builds gold. A source or table that still fails after its
//! retries is reported in [`IngestReport::failures`] while the others proceed.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::models::Models;
use super::plan::{TablePlan, plan_table};
use super::source::Source;
use super::source::embedded::{EmbeddedDatabase, EmbeddedSource};
use super::source::mysql::MysqlSource;
use super::source::postgres::PostgresSource;
use super::{Error, IngestOptions, IngestReport, LakeLayout, Layer, Result, TableReport};
use crate::config::Config;
use crate::config::ingest::{IngestSpec, SourceKind, SourceTableSpec};
use crate::lake::StorageLocation;

/// A source with its per-table settings.
pub struct SourceEntry {
    /// The source.
    pub source: Arc<dyn Source>,
    /// Settings by source table name.
    pub tables: BTreeMap<String, SourceTableSpec>,
}

/// Builds the sources of the `ingest:` section.
pub fn sources_from_spec(spec: &IngestSpec) -> Result<Vec<SourceEntry>> {
    spec.sources
        .iter()
        .map(|s| {
            let source: Arc<dyn Source> = match s.kind {
                SourceKind::Mysql => {
                    Arc::new(MysqlSource::new(&s.name, s.url.as_str(), &s.database)?)
                }
                SourceKind::Postgres => Arc::new(PostgresSource::new(
                    &s.name,
                    s.url.as_str(),
                    &s.database,
                    &s.schemas,
                )?),
            };
            Ok(SourceEntry {
                source,
                tables: s.tables.clone(),
            })
        })
        .collect()
}

/// One run over the configured sources and lake: bronze, silver and gold (or `options.layer`).
/// `Err` only for bad configuration; failed tables are in the report's `failures`.
pub async fn run_once(config: &Config, options: &IngestOptions) -> Result<IngestReport> {
    let spec = config.ingest.clone().unwrap_or_default();
    if spec.sources.is_empty() && options.runs(Layer::Bronze) {
        return Err(Error::Invalid(
            "no ingest sources: add ingest.sources to the configuration".to_string(),
        ));
    }
    let root = crate::catalog::spec::lake_location(config)?;
    let models = Models::load(&config.sql_dir).map_err(|d| Error::Invalid(d.to_string()))?;
    let sources = sources_from_spec(&spec)?;
    let report = run_with(root, sources, &models, options).await?;
    crate::metrics::global().ingest(&report);
    Ok(report)
}

/// Runs [`run_once`] now and then every `every` until `cancel` fires; each report goes to
/// `on_report`. A run in progress finishes before the loop returns.
pub async fn run_loop<F>(
    config: &Config,
    options: &IngestOptions,
    every: Duration,
    cancel: CancellationToken,
    mut on_report: F,
) -> Result<()>
where
    F: FnMut(Result<IngestReport>),
{
    loop {
        let report = run_once(config, options).await;
        if let Err(Error::Invalid(message)) = &report {
            // Configuration errors do not fix themselves: stop instead of repeating them.
            let message = message.clone();
            on_report(report);
            return Err(Error::Invalid(message));
        }
        on_report(report);
        tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// One bronze table with its retries. A named function rather than a closure so that the
/// run's future is `Send` for any lifetime (a closure over `Arc<dyn Source>` is not, and
/// `serve` spawns the scheduled ingest as a task).
async fn bronze_job(
    source: Arc<dyn Source>,
    plan: TablePlan,
    layout: LakeLayout,
    options: &IngestOptions,
) -> (String, Result<TableReport>) {
    let path = layout.bronze_path(source.name(), &plan.info.lake_name);
    let result = with_retries(&path, options.retries, options.backoff, || {
        super::bronze::load_table(source.as_ref(), &plan, &layout, options)
    })
    .await;
    (path, result)
}

/// Options of the demo's embedded ingest.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// Patients generated.
    pub patients: u64,
    /// Visits generated.
    pub events: u64,
    /// Generator seed.
    pub seed: u64,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        EmbeddedOptions {
            patients: super::generate::DEFAULT_PATIENTS,
            events: super::generate::DEFAULT_EVENTS,
            seed: 1,
        }
    }
}

/// The demo's ingest: the generator acts as the `mysql` and `postgres` sources, in memory, and
/// bronze, silver and gold are built under `lake_root` by the same code as for real databases.
/// Models come from `sql_dir` when it has them, else the built-in ones.
pub async fn run_embedded(
    lake_root: &StorageLocation,
    sql_dir: Option<&std::path::Path>,
    embedded: &EmbeddedOptions,
    options: &IngestOptions,
) -> Result<IngestReport> {
    let today = super::generate::today();
    let sources = [
        ("mysql", EmbeddedDatabase::Mysql),
        ("postgres", EmbeddedDatabase::Postgres),
    ]
    .into_iter()
    .map(|(name, database)| SourceEntry {
        source: Arc::new(EmbeddedSource::new(
            name,
            database,
            embedded.patients,
            embedded.events,
            embedded.seed,
            today,
        )) as Arc<dyn Source>,
        tables: BTreeMap::new(),
    })
    .collect();
    let models = match sql_dir {
        Some(dir) => Models::load(dir),
        None => Models::builtin(),
    }
    .map_err(|d| Error::Invalid(d.to_string()))?;
    run_with(lake_root.clone(), sources, &models, options).await
}

/// Retries `attempt` up to `retries` more times, doubling the wait from `backoff`.
async fn with_retries<T, F, Fut>(
    what: &str,
    retries: u32,
    backoff: Duration,
    mut attempt: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut wait = backoff;
    let mut tries = 0;
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            // Bad configuration or models fail the same way every time.
            Err(err @ Error::Invalid(_)) => return Err(err),
            Err(err) if tries < retries => {
                tries += 1;
                tracing::warn!(table = what, attempt = tries, error = %err, "retrying after failure");
                tokio::time::sleep(wait).await;
                wait = wait.saturating_mul(2);
            }
            Err(err) => return Err(err),
        }
    }
}

/// The run proper, over any sources.
pub async fn run_with(
    root: StorageLocation,
    sources: Vec<SourceEntry>,
    models: &Models,
    options: &IngestOptions,
) -> Result<IngestReport> {
    let started = Instant::now();
    let layout = LakeLayout {
        root,
        domain: options.domain.clone(),
    };
    let mut report = IngestReport::default();
    let source_names: Vec<String> = sources
        .iter()
        .map(|s| s.source.name().to_string())
        .collect();

    if options.runs(Layer::Bronze) {
        // Discover every source at once; a source that stays down is reported, the others go on.
        let discovered = futures::future::join_all(sources.iter().map(|entry| async move {
            let name = entry.source.name().to_string();
            let tables = with_retries(&name, options.retries, options.backoff, || {
                entry.source.discover()
            })
            .await;
            (entry, name, tables)
        }))
        .await;
        let mut plans: Vec<(Arc<dyn Source>, TablePlan)> = Vec::new();
        for (entry, name, tables) in discovered {
            match tables {
                Ok(tables) => {
                    for table in tables {
                        match plan_table(&table, entry.tables.get(&table.name)) {
                            Ok(Some(plan)) => plans.push((entry.source.clone(), plan)),
                            Ok(None) => {}
                            Err(err) => report.failures.push(format!(
                                "bronze/{name}/{}/{}: {err}",
                                layout.domain, table.lake_name
                            )),
                        }
                    }
                }
                Err(err) => report.failures.push(format!("source \"{name}\": {err}")),
            }
        }
        // The futures are built before the first await, so no closure over `dyn Source` lives
        // in this future's state (rustc cannot prove such a closure `Send` for every lifetime).
        let mut jobs = Vec::with_capacity(plans.len());
        for (source, plan) in plans {
            jobs.push(bronze_job(source, plan, layout.clone(), options));
        }
        let results: Vec<(String, Result<TableReport>)> = futures::stream::iter(jobs)
            .buffer_unordered(options.parallelism.max(1))
            .collect()
            .await;
        collect(&mut report, results);
    }

    if options.runs(Layer::Silver) {
        match super::silver::jobs(&layout, &source_names, models).await {
            Ok(jobs) => {
                let results: Vec<(String, Result<TableReport>)> =
                    futures::stream::iter(jobs.into_iter().map(|job| {
                        let layout = layout.clone();
                        async move {
                            let path = layout.silver_path(&job.model.name);
                            let result =
                                with_retries(&path, options.retries, options.backoff, || {
                                    super::silver::merge_table(&layout, &job)
                                })
                                .await;
                            (path, result)
                        }
                    }))
                    .buffer_unordered(options.parallelism.max(1))
                    .collect()
                    .await;
                collect(&mut report, results);
            }
            Err(err) => report.failures.push(format!("silver: {err}")),
        }
    }

    if options.runs(Layer::Gold) {
        match with_retries("gold", options.retries, options.backoff, || {
            super::gold::build(&layout, &models.gold)
        })
        .await
        {
            Ok(results) => collect(&mut report, results),
            Err(err) => report.failures.push(format!("gold: {err}")),
        }
    }
    report.elapsed = started.elapsed();
    for table in &report.tables {
        tracing::info!(
            table = %table.table,
            n_rows = table.rows,
            elapsed_ms = u64::try_from(table.elapsed.as_millis()).unwrap_or(u64::MAX),
            version = ?table.version,
            mode = %table.mode,
            "ingested"
        );
    }
    Ok(report)
}

fn collect(report: &mut IngestReport, results: Vec<(String, Result<TableReport>)>) {
    for (path, result) in results {
        match result {
            Ok(table) => report.tables.push(table),
            Err(err) => {
                tracing::error!(table = %path, error = %err, "ingest failed");
                report.failures.push(format!("{path}: {err}"));
            }
        }
    }
}
