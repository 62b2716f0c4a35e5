//! The pharmacy device stream: events from HTTP, MQTT and NATS JetStream into
//! `bronze/stream/pharmacy/distribution`, and two gold tables kept current per micro-batch,
//! `fact_medicine_distribution` and `medicine_distribution_daily`.
//!
//! - [`event`]: the event contract, splitting bodies into records, validation.
//! - [`writer`]: the single writer: micro-batches, deduplication, the commits (each carrying the
//!   application transaction that makes the stream exactly-once), dead letters, and the bounded
//!   queue the sources submit to.
//! - [`http`], [`mqtt`], [`nats`]: the sources; each acknowledges only after the commit.
//! - [`simulate`]: pharmacy devices sending events, and the benchmark.
//!
//! One writer per lake: two writers over the same tables would each believe their own view of
//! the event ids. The writer holds every event id of bronze in memory (16 bytes each, about
//! 40 bytes with the set's overhead), loaded once on start.

pub mod event;
pub mod http;
pub mod mqtt;
pub mod nats;
pub mod simulate;
pub mod writer;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::catalog::registry::Registry;
use crate::config::Config;
use crate::config::stream::{DeviceSpec, HttpSourceSpec, StreamSpec};
use crate::lake::StorageLocation;

pub use writer::{Outcome, Stats};

/// Bearer token of the demo's pharmacy device (`lakehouse demo`).
pub const DEMO_DEVICE_TOKEN: &str = "demo-device-token";

/// Device id of the demo's pharmacy device.
pub const DEMO_DEVICE_ID: &str = "demo-pharmacy-01";

/// Bronze table of the raw events (below the lake root).
pub const BRONZE_PATH: &str = "bronze/stream/pharmacy/distribution";
/// Dead-letter table: invalid records with the reason and the raw payload.
pub const DEAD_LETTER_PATH: &str = "bronze/stream/pharmacy/dead_letter";
/// Gold fact table of the events.
pub const FACT_PATH: &str = "gold/ikhospital/fact_medicine_distribution";
/// Gold daily totals per medicine.
pub const DAILY_PATH: &str = "gold/ikhospital/medicine_distribution_daily";

/// Errors of the stream.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A lake operation failed.
    #[error("{0}")]
    Lake(#[from] crate::lake::Error),
    /// A query over a lake table failed.
    #[error("{0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    /// Building a batch failed.
    #[error("{0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    /// A lake table holds something unexpected.
    #[error("{0}")]
    Data(String),
    /// The `stream:` configuration is invalid.
    #[error("invalid stream configuration: {0}")]
    Config(String),
    /// A source (listener, broker) failed.
    #[error("{0}")]
    Source(String),
    /// Local I/O.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Result of stream operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The tables the stream writes.
#[derive(Debug, Clone)]
pub struct Tables {
    /// `bronze/stream/pharmacy/distribution`.
    pub bronze: StorageLocation,
    /// `bronze/stream/pharmacy/dead_letter`.
    pub dead_letter: StorageLocation,
    /// `gold/ikhospital/fact_medicine_distribution`.
    pub fact: StorageLocation,
    /// `gold/ikhospital/medicine_distribution_daily`.
    pub daily: StorageLocation,
}

impl Tables {
    /// The stream's tables below the lake root.
    pub fn new(lake: &StorageLocation) -> Result<Tables> {
        Ok(Tables {
            bronze: lake.join(BRONZE_PATH)?,
            dead_letter: lake.join(DEAD_LETTER_PATH)?,
            fact: lake.join(FACT_PATH)?,
            daily: lake.join(DAILY_PATH)?,
        })
    }
}

/// The running sources and writer.
#[derive(Debug)]
pub struct RunningStream {
    /// Where `POST /v1/pharmacy/events` listens, when the HTTP source runs.
    pub http_addr: Option<SocketAddr>,
    /// The writer's running totals.
    pub stats: Arc<Stats>,
    sources: Vec<tokio::task::JoinHandle<()>>,
    writer: tokio::task::JoinHandle<()>,
}

impl RunningStream {
    /// Waits until the sources and the writer have stopped (after the shutdown token fired).
    pub async fn wait(self) {
        for source in self.sources {
            let _ = source.await;
        }
        let _ = self.writer.await;
    }
}

/// Starts every source configured under `stream:` and the writer. `registry`, when the stream
/// runs inside `serve`, receives each gold commit at once.
pub async fn run(
    config: &Config,
    registry: Option<Arc<Registry>>,
    shutdown: CancellationToken,
) -> Result<RunningStream> {
    let spec = config
        .stream
        .as_ref()
        .ok_or_else(|| Error::Config("lakehouse.yaml has no stream: section".to_string()))?;
    let lake = crate::catalog::spec::lake_location(config)?;
    start(lake, spec, registry, shutdown).await
}

/// Everything `start` would refuse in `spec` before connecting to anything: no source, batch
/// settings, the HTTP source's address and tokens, the brokers' URLs (`lakehouse check`).
pub fn validate(spec: &StreamSpec) -> Result<()> {
    if spec.http.is_none() && spec.mqtt.is_none() && spec.nats.is_none() {
        return Err(Error::Config(
            "stream: needs at least one source (http, mqtt or nats)".to_string(),
        ));
    }
    batch_settings(spec)?;
    if let Some(http) = &spec.http {
        http::validate(http)?;
    }
    if let Some(mqtt) = &spec.mqtt {
        mqtt::options(mqtt.url.as_str(), "lakehouse-check", false)?;
    }
    if let Some(nats) = &spec.nats {
        let url = url::Url::parse(nats.url.as_str())
            .map_err(|err| Error::Config(format!("invalid NATS url: {err}")))?;
        if !matches!(url.scheme(), "nats" | "tls" | "ws" | "wss") || url.host_str().is_none() {
            return Err(Error::Config(format!(
                "the NATS url must be nats://host:port (or tls://, ws://, wss://), not {:?}",
                url.scheme()
            )));
        }
    }
    Ok(())
}

/// Starts the sources of `spec` writing below `lake`.
pub async fn start(
    lake: StorageLocation,
    spec: &StreamSpec,
    registry: Option<Arc<Registry>>,
    shutdown: CancellationToken,
) -> Result<RunningStream> {
    validate(spec)?;
    let settings = batch_settings(spec)?;
    let tables = Tables::new(&lake)?;
    let known_ndcs = known_ndcs(&lake).await;
    let stats = Arc::new(Stats::default());
    let writer = writer::Writer::new(tables, known_ndcs, registry, stats.clone());
    // The writer outlives the sources: it commits what they queued before it stops.
    let writer_stop = CancellationToken::new();
    let (ingress, writer_task) = writer::spawn(writer, settings.clone(), writer_stop.clone());
    let mut sources = Vec::new();
    let mut http_addr = None;
    if let Some(http) = &spec.http {
        let (addr, task) = http::start(http, ingress.clone(), shutdown.clone()).await?;
        http_addr = Some(addr);
        sources.push(task);
    }
    if let Some(mqtt) = &spec.mqtt {
        sources.push(tokio::spawn(mqtt::run(
            mqtt.clone(),
            ingress.clone(),
            shutdown.clone(),
        )));
    }
    if let Some(nats) = &spec.nats {
        sources.push(tokio::spawn(nats::run(
            nats.clone(),
            ingress.clone(),
            settings.clone(),
            shutdown.clone(),
        )));
    }
    drop(ingress);
    let stop = shutdown.clone();
    let writer = tokio::spawn(async move {
        stop.cancelled().await;
        // Give the sources a moment to hand over what they hold, then stop the writer.
        tokio::time::sleep(Duration::from_millis(200)).await;
        writer_stop.cancel();
        let _ = writer_task.await;
    });
    Ok(RunningStream {
        http_addr,
        stats,
        sources,
        writer,
    })
}

/// The demo's stream: the HTTP source on `listen` with the demo device and its bearer `token`
/// ([`DEMO_DEVICE_TOKEN`] on loopback), and a simulated device posting `event_rate` events per
/// second to it over real HTTP.
pub async fn start_demo(
    lake: StorageLocation,
    listen: SocketAddr,
    token: &str,
    event_rate: f64,
    registry: Option<Arc<Registry>>,
    shutdown: CancellationToken,
) -> Result<RunningStream> {
    let spec = StreamSpec {
        max_batch_events: None,
        max_batch_delay: Some(crate::config::DurationSpec(Duration::from_millis(250))),
        max_queued_events: None,
        http: Some(HttpSourceSpec {
            listen: listen.to_string(),
            devices: vec![DeviceSpec {
                id: DEMO_DEVICE_ID.to_string(),
                token: crate::config::EnvString::new(token),
            }],
            max_body_bytes: None,
        }),
        mqtt: None,
        nats: None,
    };
    let mut running = start(lake, &spec, registry, shutdown.clone()).await?;
    if let Some(addr) = running.http_addr
        && event_rate > 0.0
    {
        let options = simulate::SimulateOptions {
            to: format!("http://{addr}"),
            rate: event_rate,
            events: None,
            duration: None,
            devices: 1,
            device_id: Some(DEMO_DEVICE_ID.to_string()),
            duplicates_pct: 0.0,
            bad_pct: 0.0,
            token: Some(token.to_string()),
            batch: 1,
            connections: 1,
            topic_prefix: None,
            nats_stream: None,
            measure_lake: None,
            quiet: true,
        };
        running.sources.push(tokio::spawn(async move {
            if let Err(err) = simulate::run(&options, shutdown).await {
                tracing::warn!(error = %err, "the demo's simulated device stopped");
            }
        }));
    }
    Ok(running)
}

fn batch_settings(spec: &StreamSpec) -> Result<writer::BatchSettings> {
    let defaults = writer::BatchSettings::default();
    let max_batch_events = spec.max_batch_events.unwrap_or(defaults.max_batch_events);
    if max_batch_events == 0 {
        return Err(Error::Config(
            "max_batch_events must be at least 1".to_string(),
        ));
    }
    let max_batch_delay = spec
        .max_batch_delay
        .map(|d| d.0)
        .unwrap_or(defaults.max_batch_delay);
    // A queue smaller than a batch is allowed: batches are then simply smaller.
    let max_queued_events = spec
        .max_queued_events
        .unwrap_or(max_batch_events.saturating_mul(4))
        .max(1);
    Ok(writer::BatchSettings {
        max_batch_events,
        max_batch_delay,
        max_queued_events,
    })
}

/// The NDCs events may name: gold `dim_medicine` when the lake has it, else the built-in list of
/// the 100 openFDA medicines the generator uses.
pub async fn known_ndcs(lake: &StorageLocation) -> HashSet<String> {
    let mut out = HashSet::new();
    if let Ok(location) = lake.join("gold/ikhospital/dim_medicine") {
        match writer::query(&location, "SELECT product_ndc FROM t").await {
            Ok(batches) => {
                for batch in batches {
                    if let Ok(values) = writer::strings(&batch, 0) {
                        out.extend(values.into_iter().filter(|v| !v.is_empty()));
                    }
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot read dim_medicine; using the built-in medicines")
            }
        }
    }
    if out.is_empty() {
        out = builtin_ndcs().into_iter().collect();
    }
    out
}

/// The `product_ndc` of the built-in medicines.
pub fn builtin_ndcs() -> Vec<String> {
    crate::ingest::generate::medicines()
        .into_iter()
        .filter_map(|row| row.get(3).cloned().flatten())
        .collect()
}
