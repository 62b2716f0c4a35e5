//! Prometheus metrics: one process-wide set ([`global`]), updated where things happen (the
//! audit record of every statement, the connection gate, the catalog refresh, the stream's
//! commits, the ingest's tables, the policy reload), and served in Prometheus's text format on
//! `metrics.listen` by [`serve`] in every long-running command.
//!
//! Names follow Prometheus's conventions (`_total` counters, `_seconds` and `_bytes` units);
//! labels never carry row values, user names or statement text: only kinds, outcomes,
//! SQLSTATEs, table names and stream source names, so the series stay few.

use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};

use prometheus::{
    Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry,
};
use tokio_util::sync::CancellationToken;

/// Every metric of the process.
pub struct Metrics {
    registry: Registry,
    /// Client connections open now (authenticated or not).
    pub connections_open: IntGauge,
    /// Connections by `outcome`: `accepted`, `refused_startup_slots`,
    /// `refused_max_connections`, `refused`, `authentication_failed`, `throttled`,
    /// `authentication_timeout`, `protocol_error`, `closed_during_startup`, `cancel_request`.
    pub connections: IntCounterVec,
    /// Statements by `kind`, `outcome` and `sqlstate`.
    pub statements: IntCounterVec,
    /// Statement wall time by `kind`.
    pub statement_duration: HistogramVec,
    /// Rows sent to clients.
    pub rows_sent: IntCounter,
    /// Bytes of DataRow messages sent to clients.
    pub bytes_sent: IntCounter,
    /// Result-cache lookups by `outcome` (`hit`, `miss`).
    pub result_cache: IntCounterVec,
    /// Bytes the result cache holds.
    pub result_cache_bytes: IntGauge,
    /// Served Delta version per `table`.
    pub table_version: IntGaugeVec,
    /// Seconds since the served version was committed, per `table`.
    pub table_snapshot_age: GaugeVec,
    /// 1 for each `table` that cannot be served now.
    pub table_unavailable: IntGaugeVec,
    /// Catalog refresh wall time.
    pub refresh_duration: Histogram,
    /// Table refreshes that failed (the table keeps serving its last good version).
    pub refresh_failures: IntCounter,
    /// Stream events by `source` and `outcome` (`accepted`, `duplicate`, `dead_lettered`).
    pub stream_events: IntCounterVec,
    /// Stream micro-batch commit wall time.
    pub stream_commit_duration: Histogram,
    /// Stream events waiting to be committed (read at scrape from the queue's semaphore).
    pub stream_queue_depth: IntGauge,
    stream_queue: parking_lot::Mutex<Option<(Arc<tokio::sync::Semaphore>, usize)>>,
    /// Rows the ingest wrote, per `table`.
    pub ingest_rows: IntCounterVec,
    /// Ingest wall time per `table`.
    pub ingest_duration: HistogramVec,
    /// Unix time of the last successful ingest of each `table`.
    pub ingest_last_success: IntGaugeVec,
    /// Ingest failures per `table` (what failed).
    pub ingest_failures: IntCounterVec,
    /// Reloads of `grants/` and `catalog/` by `outcome` (`ok`, `rejected`).
    pub policy_reloads: IntCounterVec,
    /// Resident memory of the process.
    pub process_resident_memory: IntGauge,
    /// Open file descriptors of the process.
    pub process_open_fds: IntGauge,
    /// Seconds since the process started, as a Unix time.
    pub process_start_time: Gauge,
}

/// Registers a metric and hands it back.
fn reg<M: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: prometheus::Result<M>,
) -> prometheus::Result<M> {
    let metric = metric?;
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

fn buckets(start: f64) -> prometheus::Result<Vec<f64>> {
    prometheus::exponential_buckets(start, 2.0, 17)
}

impl Metrics {
    fn new() -> Metrics {
        match Metrics::build() {
            Ok(metrics) => metrics,
            Err(err) => {
                // The names and labels are constants, checked by a unit test: unreachable.
                tracing::error!(error = %err, "cannot build the metrics");
                std::process::abort()
            }
        }
    }

    fn build() -> prometheus::Result<Metrics> {
        let r = Registry::new();
        let opts = |name: &str, help: &str| Opts::new(name, help);
        // 1 ms to ~65 s for statements; 10 ms to ~11 min for commits, refreshes, ingest runs.
        let fast = buckets(0.001)?;
        let slow = buckets(0.01)?;
        Ok(Metrics {
            connections_open: reg(
                &r,
                IntGauge::new("lakehouse_connections_open", "Client connections open now"),
            )?,
            connections: reg(
                &r,
                IntCounterVec::new(
                    opts(
                        "lakehouse_connections_total",
                        "Client connections by outcome",
                    ),
                    &["outcome"],
                ),
            )?,
            statements: reg(
                &r,
                IntCounterVec::new(
                    opts(
                        "lakehouse_statements_total",
                        "Statements by kind, outcome and SQLSTATE",
                    ),
                    &["kind", "outcome", "sqlstate"],
                ),
            )?,
            statement_duration: reg(
                &r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "lakehouse_statement_duration_seconds",
                        "Statement wall time by kind",
                    )
                    .buckets(fast),
                    &["kind"],
                ),
            )?,
            rows_sent: reg(
                &r,
                IntCounter::new("lakehouse_rows_sent_total", "Rows sent to clients"),
            )?,
            bytes_sent: reg(
                &r,
                IntCounter::new(
                    "lakehouse_sent_bytes_total",
                    "DataRow bytes sent to clients",
                ),
            )?,
            result_cache: reg(
                &r,
                IntCounterVec::new(
                    opts(
                        "lakehouse_result_cache_lookups_total",
                        "Result-cache lookups by outcome",
                    ),
                    &["outcome"],
                ),
            )?,
            result_cache_bytes: reg(
                &r,
                IntGauge::new(
                    "lakehouse_result_cache_bytes",
                    "Bytes held by the result cache",
                ),
            )?,
            table_version: reg(
                &r,
                IntGaugeVec::new(
                    opts("lakehouse_table_version", "Served Delta version per table"),
                    &["table"],
                ),
            )?,
            table_snapshot_age: reg(
                &r,
                GaugeVec::new(
                    opts(
                        "lakehouse_table_snapshot_age_seconds",
                        "Seconds since the served version of each table was committed",
                    ),
                    &["table"],
                ),
            )?,
            table_unavailable: reg(
                &r,
                IntGaugeVec::new(
                    opts(
                        "lakehouse_table_unavailable",
                        "1 for each table that cannot be served now",
                    ),
                    &["table"],
                ),
            )?,
            refresh_duration: reg(
                &r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "lakehouse_refresh_duration_seconds",
                        "Catalog refresh wall time",
                    )
                    .buckets(slow.clone()),
                ),
            )?,
            refresh_failures: reg(
                &r,
                IntCounter::new(
                    "lakehouse_refresh_failures_total",
                    "Table refreshes that failed",
                ),
            )?,
            stream_events: reg(
                &r,
                IntCounterVec::new(
                    opts(
                        "lakehouse_stream_events_total",
                        "Stream events by source and outcome",
                    ),
                    &["source", "outcome"],
                ),
            )?,
            stream_commit_duration: reg(
                &r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "lakehouse_stream_commit_duration_seconds",
                        "Stream micro-batch commit wall time",
                    )
                    .buckets(slow.clone()),
                ),
            )?,
            stream_queue_depth: reg(
                &r,
                IntGauge::new(
                    "lakehouse_stream_queue_depth",
                    "Stream events waiting to be committed",
                ),
            )?,
            stream_queue: parking_lot::Mutex::new(None),
            ingest_rows: reg(
                &r,
                IntCounterVec::new(
                    opts(
                        "lakehouse_ingest_rows_total",
                        "Rows written by the ingest per table",
                    ),
                    &["table"],
                ),
            )?,
            ingest_duration: reg(
                &r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "lakehouse_ingest_duration_seconds",
                        "Ingest wall time per table",
                    )
                    .buckets(slow),
                    &["table"],
                ),
            )?,
            ingest_last_success: reg(
                &r,
                IntGaugeVec::new(
                    opts(
                        "lakehouse_ingest_last_success_timestamp_seconds",
                        "Unix time of the last successful ingest per table",
                    ),
                    &["table"],
                ),
            )?,
            ingest_failures: reg(
                &r,
                IntCounterVec::new(
                    opts(
                        "lakehouse_ingest_failures_total",
                        "Ingest failures per table",
                    ),
                    &["table"],
                ),
            )?,
            policy_reloads: reg(
                &r,
                IntCounterVec::new(
                    opts(
                        "lakehouse_policy_reloads_total",
                        "Reloads of grants/ and catalog/ by outcome",
                    ),
                    &["outcome"],
                ),
            )?,
            // The process metrics keep the names every Prometheus client uses.
            process_resident_memory: reg(
                &r,
                IntGauge::new("process_resident_memory_bytes", "Resident memory size"),
            )?,
            process_open_fds: reg(
                &r,
                IntGauge::new("process_open_fds", "Open file descriptors"),
            )?,
            process_start_time: reg(
                &r,
                Gauge::new(
                    "process_start_time_seconds",
                    "Start time of the process since the Unix epoch",
                ),
            )?,
            registry: r,
        })
        .inspect(|m| {
            // The metrics are built when the command starts (the catalog's first refresh, or
            // the metrics endpoint's bind, touch them).
            m.process_start_time
                .set(chrono::Utc::now().timestamp() as f64);
        })
    }

    /// Counts one statement from its audit record (failed logins are audited too; they are
    /// counted as connections where they happen).
    pub fn statement(&self, record: &crate::audit::AuditRecord) {
        if record.kind == "login" {
            return;
        }
        self.statements
            .with_label_values(&[&record.kind, &record.outcome, &record.sqlstate])
            .inc();
        self.statement_duration
            .with_label_values(&[&record.kind])
            .observe(record.duration_ms / 1000.0);
        self.rows_sent.inc_by(record.rows);
        if !record.result_cache.is_empty() {
            self.result_cache
                .with_label_values(&[&record.result_cache])
                .inc();
        }
    }

    /// Counts an open connection until the guard is dropped.
    pub fn open_connection(&'static self) -> OpenConnection {
        self.connections_open.inc();
        OpenConnection(self)
    }

    /// Counts a connection outcome.
    pub fn connection(&self, outcome: &str) {
        self.connections.with_label_values(&[outcome]).inc();
    }

    /// Counts a reload of `grants/` or `catalog/` (`ok` or `rejected`).
    pub fn policy_reload(&self, outcome: &str) {
        self.policy_reloads.with_label_values(&[outcome]).inc();
    }

    /// Records an ingest run: rows, wall time and success time per table, failures by what
    /// failed.
    pub fn ingest(&self, report: &crate::ingest::IngestReport) {
        status().ingest(report);
        let now = chrono::Utc::now().timestamp();
        for table in &report.tables {
            let label = [table.table.as_str()];
            self.ingest_rows
                .with_label_values(&label)
                .inc_by(table.rows);
            self.ingest_duration
                .with_label_values(&label)
                .observe(table.elapsed.as_secs_f64());
            self.ingest_last_success.with_label_values(&label).set(now);
        }
        for failure in &report.failures {
            let what = failure.split(": ").next().unwrap_or(failure);
            self.ingest_failures.with_label_values(&[what]).inc();
        }
    }

    /// Counts stream events of a source.
    pub fn stream_events(&self, source: &str, outcome: &str, n: u64) {
        if n > 0 {
            self.stream_events
                .with_label_values(&[source, outcome])
                .inc_by(n);
        }
    }

    /// The stream writer's queue: `capacity` events, as permits of `permits`.
    pub fn watch_stream_queue(&self, permits: Arc<tokio::sync::Semaphore>, capacity: usize) {
        *self.stream_queue.lock() = Some((permits, capacity));
    }

    /// Sets the per-table gauges from the catalog as it is now.
    pub fn observe_catalog(&self, catalog: &crate::catalog::registry::CatalogState) {
        use crate::catalog::registry::TableStatus;
        self.table_version.reset();
        self.table_snapshot_age.reset();
        self.table_unavailable.reset();
        let now_ms = chrono::Utc::now().timestamp_millis();
        for entry in catalog.tables.values() {
            let name = format!("{}.{}", entry.schema, entry.name);
            let label = [name.as_str()];
            match &entry.status {
                TableStatus::Ready(ready) => {
                    if let Some(version) = ready.version {
                        self.table_version
                            .with_label_values(&label)
                            .set(i64::try_from(version).unwrap_or(i64::MAX));
                    }
                    if let Some(ms) = ready.committed_at_ms {
                        self.table_snapshot_age
                            .with_label_values(&label)
                            .set((now_ms - ms) as f64 / 1000.0);
                    }
                }
                TableStatus::Broken(_) => {
                    self.table_unavailable.with_label_values(&label).set(1);
                }
            }
        }
    }

    /// Events queued for the stream writer now (0 without a stream).
    pub fn stream_queued(&self) -> i64 {
        self.stream_queue
            .lock()
            .as_ref()
            .map_or(0, |(permits, capacity)| {
                let queued = capacity.saturating_sub(permits.available_permits());
                i64::try_from(queued).unwrap_or(i64::MAX)
            })
    }

    /// Reads the process's resident memory and open descriptors, and the stream queue's depth.
    pub fn observe_process(&self) {
        self.stream_queue_depth.set(self.stream_queued());
        if let Some(resident) = crate::sql::memory::read_resident() {
            self.process_resident_memory
                .set(i64::try_from(resident).unwrap_or(i64::MAX));
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            self.process_open_fds.set(dir.count() as i64);
        }
    }

    /// The Prometheus text exposition (format 0.0.4) of every metric.
    pub fn encode(&self) -> String {
        use prometheus::Encoder;
        let mut out = Vec::new();
        if prometheus::TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .is_err()
        {
            out.clear();
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The stream's sources and the ingest's tables as `sys.stream_sources` and `sys.ingest_runs`
/// show them: the state of this process (the stream and the ingest that run inside `serve`).
#[derive(Debug, Default)]
pub struct Status {
    sources: parking_lot::Mutex<std::collections::BTreeMap<String, SourceStatus>>,
    runs: parking_lot::Mutex<std::collections::BTreeMap<String, IngestRun>>,
}

/// One stream source.
#[derive(Debug, Clone, Default)]
pub struct SourceStatus {
    /// When its last committed event was committed, Unix milliseconds.
    pub last_commit_ms: Option<i64>,
    /// Events committed to bronze and gold.
    pub accepted: u64,
    /// Duplicates dropped.
    pub duplicates: u64,
    /// Records sent to the dead-letter table.
    pub dead_lettered: u64,
    /// (Unix milliseconds, events) of each commit of the last minute.
    recent: std::collections::VecDeque<(i64, u64)>,
}

impl SourceStatus {
    /// Events per second over the last minute.
    pub fn events_per_second(&self, now_ms: i64) -> f64 {
        let n: u64 = self
            .recent
            .iter()
            .filter(|(ms, _)| now_ms - ms <= 60_000)
            .map(|(_, n)| n)
            .sum();
        n as f64 / 60.0
    }
}

/// The last ingest of one table.
#[derive(Debug, Clone)]
pub struct IngestRun {
    /// `bronze`, `silver` or `gold` (empty for a source that failed as a whole).
    pub layer: String,
    /// When the run finished, Unix milliseconds.
    pub finished_ms: i64,
    /// Rows read.
    pub rows: u64,
    /// Wall time in seconds.
    pub seconds: f64,
    /// `ok` or `failed`.
    pub outcome: String,
    /// How it was loaded, or why it failed.
    pub detail: String,
    /// The Delta version committed, if any.
    pub version: Option<u64>,
}

impl Status {
    /// Records a committed stream batch: `(source, outcome) -> events`.
    pub fn stream_batch(
        &self,
        counts: &std::collections::HashMap<(&'static str, &'static str), u64>,
    ) {
        let now = chrono::Utc::now().timestamp_millis();
        let mut sources = self.sources.lock();
        for ((source, outcome), n) in counts {
            let s = sources.entry((*source).to_string()).or_default();
            match *outcome {
                "accepted" => s.accepted += n,
                "duplicate" => s.duplicates += n,
                _ => s.dead_lettered += n,
            }
            s.last_commit_ms = Some(now);
            s.recent.push_back((now, *n));
            while s.recent.front().is_some_and(|(ms, _)| now - ms > 60_000) {
                s.recent.pop_front();
            }
        }
    }

    /// The stream sources, by name.
    pub fn sources(&self) -> Vec<(String, SourceStatus)> {
        self.sources
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The last run of every table the ingest touched, by path.
    pub fn ingest_runs(&self) -> Vec<(String, IngestRun)> {
        self.runs
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn ingest(&self, report: &crate::ingest::IngestReport) {
        let now = chrono::Utc::now().timestamp_millis();
        let mut runs = self.runs.lock();
        for table in &report.tables {
            runs.insert(
                table.table.clone(),
                IngestRun {
                    layer: table.layer.to_string(),
                    finished_ms: now,
                    rows: table.rows,
                    seconds: table.elapsed.as_secs_f64(),
                    outcome: "ok".to_string(),
                    detail: table.mode.clone(),
                    version: table.version,
                },
            );
        }
        for failure in &report.failures {
            let (what, why) = failure.split_once(": ").unwrap_or((failure, ""));
            let layer = runs.get(what).map(|r| r.layer.clone()).unwrap_or_default();
            runs.insert(
                what.to_string(),
                IngestRun {
                    layer,
                    finished_ms: now,
                    rows: 0,
                    seconds: 0.0,
                    outcome: "failed".to_string(),
                    detail: why.to_string(),
                    version: None,
                },
            );
        }
    }
}

static STATUS: LazyLock<Status> = LazyLock::new(Status::default);

/// The process's stream and ingest status.
pub fn status() -> &'static Status {
    &STATUS
}

/// An open connection, counted in `lakehouse_connections_open` while it lives.
pub struct OpenConnection(&'static Metrics);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.connections_open.dec();
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn global() -> &'static Metrics {
    &METRICS
}

/// What a scrape refreshes before encoding: the catalog and the result cache of `serve`, when
/// the command has them.
#[derive(Clone, Default)]
pub struct Sources {
    /// The served catalog.
    pub registry: Option<Arc<crate::catalog::registry::Registry>>,
    /// The query engine (its result cache).
    pub engine: Option<Arc<crate::sql::Engine>>,
}

/// Binds the metrics endpoint (port 0 picks one), so that a taken address stops the command
/// at start.
pub async fn bind(listen: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    global();
    tokio::net::TcpListener::bind(listen).await
}

/// Serves `GET /metrics` on `listener` until `shutdown`, in a task of its own.
pub fn serve(listener: tokio::net::TcpListener, sources: Sources, shutdown: CancellationToken) {
    use axum::routing::get;
    let addr = listener.local_addr().ok();
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let sources = sources.clone();
            async move {
                let metrics = global();
                metrics.observe_process();
                if let Some(registry) = &sources.registry {
                    metrics.observe_catalog(&registry.snapshot());
                }
                if let Some(engine) = &sources.engine {
                    metrics
                        .result_cache_bytes
                        .set(i64::try_from(engine.cache.stats().bytes).unwrap_or(i64::MAX));
                }
                (
                    [(axum::http::header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
                    metrics.encode(),
                )
            }
        }),
    );
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(err) = served {
            tracing::error!(error = %err, "metrics endpoint stopped");
        }
    });
    tracing::info!(addr = ?addr, "metrics at /metrics");
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_metric_builds_and_encodes() {
        let metrics = super::Metrics::build();
        assert!(metrics.is_ok(), "{:?}", metrics.err());
        if let Ok(metrics) = metrics {
            metrics.connection("accepted");
            metrics.observe_process();
            let text = metrics.encode();
            assert!(text.contains("lakehouse_connections_total{outcome=\"accepted\"} 1"));
            assert!(text.contains("# TYPE process_resident_memory_bytes gauge"));
        }
    }
}
