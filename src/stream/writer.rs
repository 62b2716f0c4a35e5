//! The single writer: micro-batches what the sources submit, and per batch validates,
//! deduplicates, and commits bronze, the two gold tables and the dead letters, each commit
//! carrying the application transaction `(APP_ID, batch id)`. Sources acknowledge only after
//! [`Outcome`] comes back, that is after every commit of the batch.
//!
//! Exactly once: a batch id is committed to bronze together with its rows, and the gold tables
//! record the last batch id they applied. On start (and after any failed batch) the writer
//! replays the bronze rows of batches gold has not applied yet, so a crash between two commits
//! never loses gold rows; redelivered events find their `event_id` in bronze and are dropped, so
//! a crash between commit and acknowledgement never duplicates them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use datafusion::arrow::array::{
    ArrayRef, Date32Array, Int32Array, Int64Array, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::event::{Event, Record, validate};
use super::{Error, Result, Tables};
use crate::catalog::registry::Registry;
use crate::lake::StorageLocation;
use crate::lake::write::{self, MergeOptions, WriteOptions};

/// The application id of every commit the stream makes (the version is the batch id).
pub const APP_ID: &str = "lakehouse-stream";

/// Days of event ids the writer keeps in memory for deduplication: events of the last
/// `DEDUP_DAYS` days before today (and any later day). A redelivered event of an older day is
/// checked against that day's bronze partition, loaded for the batch and then dropped, so the
/// memory holds a few days of ids however long the stream runs.
pub const DEDUP_DAYS: i32 = 2;

/// Today, in days since 1970-01-01 (UTC), as `date_distribution` counts them.
fn today() -> i32 {
    (chrono::Utc::now().timestamp().div_euclid(86_400)) as i32
}

/// `DATE 'YYYY-MM-DD'` of a day count, for partition filters.
fn date_literal(day: i32) -> String {
    let date = chrono::DateTime::from_timestamp(i64::from(day) * 86_400, 0)
        .map(|d| d.date_naive().to_string())
        .unwrap_or_else(|| "1970-01-01".to_string());
    format!("DATE '{date}'")
}

/// What a batch did with one submission's records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Outcome {
    /// New valid events, now in bronze and gold.
    pub accepted: usize,
    /// Events whose `event_id` was already in the table or earlier in the batch.
    pub duplicates: usize,
    /// Invalid records, now in the dead-letter table.
    pub dead_lettered: usize,
    /// The batch that committed them.
    pub batch_id: i64,
}

/// Running totals of the writer (for reports and the benchmark).
#[derive(Debug, Default)]
pub struct Stats {
    /// Events committed to bronze and gold.
    pub accepted: AtomicU64,
    /// Duplicates dropped.
    pub duplicates: AtomicU64,
    /// Records sent to the dead-letter table.
    pub dead_lettered: AtomicU64,
    /// Batches committed.
    pub batches: AtomicU64,
    /// Batches that failed (their sources were not acknowledged).
    pub failed_batches: AtomicU64,
}

/// The reply a source waits for before acknowledging.
pub type Reply = oneshot::Receiver<std::result::Result<Outcome, String>>;

/// Records handed to the writer, with the queue capacity they hold until their batch is done.
struct Submission {
    records: Vec<Record>,
    reply: oneshot::Sender<std::result::Result<Outcome, String>>,
    _permit: OwnedSemaphorePermit,
}

/// Why a submission was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitError {
    /// The queue is full: the lake is behind. Retry later.
    Busy,
    /// The writer has stopped.
    Closed,
}

/// The sources' side of the writer's bounded queue. The bound is in events (a semaphore), so a
/// slow lake makes sources wait or refuse instead of buffering without limit.
#[derive(Debug, Clone)]
pub struct Ingress {
    tx: mpsc::Sender<Submission>,
    permits: Arc<Semaphore>,
    capacity: usize,
}

impl Ingress {
    fn permits_for(&self, records: &[Record]) -> u32 {
        // A submission larger than the whole queue would never fit: it takes all of it.
        records.len().clamp(1, self.capacity) as u32
    }

    /// Queues `records` if there is room now (HTTP: refuse with 503 otherwise).
    pub fn try_submit(&self, records: Vec<Record>) -> std::result::Result<Reply, SubmitError> {
        let permit = self
            .permits
            .clone()
            .try_acquire_many_owned(self.permits_for(&records))
            .map_err(|err| match err {
                tokio::sync::TryAcquireError::Closed => SubmitError::Closed,
                tokio::sync::TryAcquireError::NoPermits => SubmitError::Busy,
            })?;
        let (reply, rx) = oneshot::channel();
        self.tx
            .try_send(Submission {
                records,
                reply,
                _permit: permit,
            })
            .map_err(|err| match err {
                mpsc::error::TrySendError::Full(_) => SubmitError::Busy,
                mpsc::error::TrySendError::Closed(_) => SubmitError::Closed,
            })?;
        Ok(rx)
    }

    /// Queues `records`, waiting for room (brokers: the wait is their flow control).
    pub async fn submit(&self, records: Vec<Record>) -> std::result::Result<Reply, SubmitError> {
        let permit = self
            .permits
            .clone()
            .acquire_many_owned(self.permits_for(&records))
            .await
            .map_err(|_| SubmitError::Closed)?;
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Submission {
                records,
                reply,
                _permit: permit,
            })
            .await
            .map_err(|_| SubmitError::Closed)?;
        Ok(rx)
    }
}

/// Batch sizes and the queue bound.
#[derive(Debug, Clone)]
pub struct BatchSettings {
    /// A batch is committed when it holds this many records...
    pub max_batch_events: usize,
    /// ...or when its first record has waited this long.
    pub max_batch_delay: Duration,
    /// Records queued or in the batch being committed, at most.
    pub max_queued_events: usize,
}

impl Default for BatchSettings {
    fn default() -> Self {
        BatchSettings {
            max_batch_events: 20_000,
            max_batch_delay: Duration::from_millis(250),
            max_queued_events: 80_000,
        }
    }
}

/// One row of `medicine_distribution_daily`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct DailyRow {
    total_qty: i64,
    n_events: i64,
    last_event_at: i64,
}

/// The writer's state: tables, the valid NDCs, the event ids in bronze, and the daily totals
/// (both loaded from the lake on start, so they always equal what is committed).
pub struct Writer {
    tables: Tables,
    known_ndcs: HashSet<String>,
    registry: Option<Arc<Registry>>,
    stats: Arc<Stats>,
    /// Event ids in bronze, by `date_distribution` day: the recent days (see [`DEDUP_DAYS`]).
    seen: HashMap<i32, HashSet<u128>>,
    daily: HashMap<(String, i32), DailyRow>,
    next_batch: i64,
    ready: bool,
}

impl Writer {
    /// A writer over `tables`, accepting the NDCs of `known_ndcs`.
    pub fn new(
        tables: Tables,
        known_ndcs: HashSet<String>,
        registry: Option<Arc<Registry>>,
        stats: Arc<Stats>,
    ) -> Writer {
        Writer {
            tables,
            known_ndcs,
            registry,
            stats,
            seen: HashMap::new(),
            daily: HashMap::new(),
            next_batch: 1,
            ready: false,
        }
    }

    /// Loads the state from the lake and brings gold up to bronze (after a crash between the
    /// commits of one batch).
    pub async fn recover(&mut self) -> Result<()> {
        let version = |loc: StorageLocation| async move {
            Ok::<i64, Error>(
                write::app_transaction_version(&loc, APP_ID)
                    .await?
                    .unwrap_or(0),
            )
        };
        let bronze_v = version(self.tables.bronze.clone()).await?;
        let fact_v = version(self.tables.fact.clone()).await?;
        let daily_v = version(self.tables.daily.clone()).await?;
        let dead_v = version(self.tables.dead_letter.clone()).await?;

        self.seen.clear();
        let sql = format!(
            "SELECT event_id, date_distribution FROM t WHERE date_distribution >= {}",
            date_literal(today() - DEDUP_DAYS)
        );
        for batch in query(&self.tables.bronze, &sql).await? {
            let days = integers(&batch, 1)?;
            for (id, day) in strings(&batch, 0)?.into_iter().zip(days) {
                if let Ok(uuid) = uuid::Uuid::parse_str(&id) {
                    self.seen
                        .entry(day as i32)
                        .or_default()
                        .insert(uuid.as_u128());
                }
            }
        }
        self.daily = load_daily(&self.tables.daily).await?;

        if fact_v < bronze_v {
            let events = bronze_events_after(&self.tables.bronze, fact_v).await?;
            tracing::warn!(
                from_batch = fact_v + 1,
                to_batch = bronze_v,
                events = events.len(),
                "replaying bronze batches into fact_medicine_distribution"
            );
            let refs: Vec<&Event> = events.iter().collect();
            self.write_fact(&refs, bronze_v).await?;
        }
        if daily_v < bronze_v {
            let events = bronze_events_after(&self.tables.bronze, daily_v).await?;
            tracing::warn!(
                from_batch = daily_v + 1,
                to_batch = bronze_v,
                events = events.len(),
                "replaying bronze batches into medicine_distribution_daily"
            );
            let refs: Vec<&Event> = events.iter().collect();
            self.write_daily(&refs, bronze_v).await?;
        }
        // The gold tables exist (empty) from the start, so that queries and reports over them
        // work before the first event arrives.
        if fact_v == 0 && bronze_v == 0 && !exists(&self.tables.fact).await? {
            self.write_fact(&[], 0).await?;
        }
        if daily_v == 0 && bronze_v == 0 && !exists(&self.tables.daily).await? {
            merge_daily(&self.tables.daily, &[], 0).await?;
        }
        self.next_batch = bronze_v.max(fact_v).max(daily_v).max(dead_v) + 1;
        self.ready = true;
        self.notify().await;
        tracing::info!(
            next_batch = self.next_batch,
            events = self.seen.values().map(HashSet::len).sum::<usize>(),
            "stream writer ready"
        );
        Ok(())
    }

    async fn process(&mut self, submissions: Vec<Submission>) {
        if !self.ready
            && let Err(err) = self.recover().await
        {
            tracing::error!(error = %err, "stream writer cannot recover; the batch is refused");
            self.stats.failed_batches.fetch_add(1, Ordering::Relaxed);
            for sub in submissions {
                let _ = sub.reply.send(Err("the lake is not available".to_string()));
            }
            return;
        }
        let started = Instant::now();
        let batch_id = self.next_batch;
        self.next_batch += 1;
        let mut outcomes = vec![
            Outcome {
                batch_id,
                ..Outcome::default()
            };
            submissions.len()
        ];
        let validated: Vec<Vec<std::result::Result<Event, String>>> = submissions
            .iter()
            .map(|sub| {
                sub.records
                    .iter()
                    .map(|r| validate(&r.payload, r.device.as_deref(), &self.known_ndcs))
                    .collect()
            })
            .collect();
        // Days older than the ones kept in memory: their ids come from bronze, for this batch.
        let floor = today() - DEDUP_DAYS;
        let old_days: std::collections::BTreeSet<i32> = validated
            .iter()
            .flatten()
            .filter_map(|v| v.as_ref().ok())
            .map(|e| e.date_distribution)
            .filter(|day| *day < floor && !self.seen.contains_key(day))
            .collect();
        for day in old_days {
            if let Err(err) = self.load_day(day).await {
                tracing::error!(error = %err, day, "cannot read bronze to deduplicate; the batch is refused");
                self.stats.failed_batches.fetch_add(1, Ordering::Relaxed);
                for sub in submissions {
                    let _ = sub.reply.send(Err("the lake is not available".to_string()));
                }
                return;
            }
        }
        let mut new_events: Vec<(Event, &Record)> = Vec::new();
        let mut dead: Vec<(String, &Record)> = Vec::new();
        let mut in_batch: HashSet<u128> = HashSet::new();
        let mut oldest = started;
        // Per source and outcome, for the metrics once the batch is committed.
        let mut by_source: HashMap<(&'static str, &'static str), u64> = HashMap::new();
        for ((sub, outcome), results) in submissions.iter().zip(outcomes.iter_mut()).zip(validated)
        {
            for (record, result) in sub.records.iter().zip(results) {
                oldest = oldest.min(record.received_at);
                let what = match result {
                    Ok(event) => {
                        let known = self
                            .seen
                            .get(&event.date_distribution)
                            .is_some_and(|ids| ids.contains(&event.id));
                        if known || !in_batch.insert(event.id) {
                            outcome.duplicates += 1;
                            "duplicate"
                        } else {
                            outcome.accepted += 1;
                            new_events.push((event, record));
                            "accepted"
                        }
                    }
                    Err(reason) => {
                        outcome.dead_lettered += 1;
                        dead.push((reason, record));
                        "dead_lettered"
                    }
                };
                *by_source.entry((record.source, what)).or_default() += 1;
            }
        }
        match self.commit(batch_id, &new_events, &dead).await {
            Ok(()) => {
                for (event, _) in &new_events {
                    self.seen
                        .entry(event.date_distribution)
                        .or_default()
                        .insert(event.id);
                }
                // Older days (loaded for this batch, or left behind by the calendar) go.
                self.seen.retain(|day, _| *day >= floor);
                let metrics = crate::metrics::global();
                metrics
                    .stream_commit_duration
                    .observe(started.elapsed().as_secs_f64());
                crate::metrics::status().stream_batch(&by_source);
                for ((source, what), n) in by_source {
                    metrics.stream_events(source, what, n);
                }
                let total: Outcome = outcomes.iter().fold(Outcome::default(), |a, o| Outcome {
                    accepted: a.accepted + o.accepted,
                    duplicates: a.duplicates + o.duplicates,
                    dead_lettered: a.dead_lettered + o.dead_lettered,
                    batch_id,
                });
                self.stats
                    .accepted
                    .fetch_add(total.accepted as u64, Ordering::Relaxed);
                self.stats
                    .duplicates
                    .fetch_add(total.duplicates as u64, Ordering::Relaxed);
                self.stats
                    .dead_lettered
                    .fetch_add(total.dead_lettered as u64, Ordering::Relaxed);
                self.stats.batches.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    batch_id,
                    accepted = total.accepted,
                    duplicates = total.duplicates,
                    dead_lettered = total.dead_lettered,
                    commit_ms = started.elapsed().as_millis() as u64,
                    oldest_ms = oldest.elapsed().as_millis() as u64,
                    "batch committed"
                );
                for (sub, outcome) in submissions.into_iter().zip(outcomes) {
                    let _ = sub.reply.send(Ok(outcome));
                }
            }
            Err(err) => {
                // Some commits of the batch may have happened: rebuild the state from the lake
                // before the next batch. The sources do not acknowledge, so the events come back.
                self.ready = false;
                self.stats.failed_batches.fetch_add(1, Ordering::Relaxed);
                tracing::error!(batch_id, error = %err, "batch failed; its events are not acknowledged");
                for sub in submissions {
                    let _ = sub
                        .reply
                        .send(Err("the batch could not be committed".to_string()));
                }
            }
        }
    }

    async fn commit(
        &mut self,
        batch_id: i64,
        new_events: &[(Event, &Record)],
        dead: &[(String, &Record)],
    ) -> Result<()> {
        if !new_events.is_empty() {
            write::append(
                &self.tables.bronze,
                vec![bronze_batch(new_events, batch_id)?],
                &WriteOptions {
                    partition_columns: vec!["date_distribution".to_string()],
                    app_transaction: Some((APP_ID.to_string(), batch_id)),
                    ..WriteOptions::default()
                },
            )
            .await?;
        }
        // Once bronze holds the batch, the other tables are independent: commit them together.
        let events: Vec<&Event> = new_events.iter().map(|(e, _)| e).collect();
        let rows = self.daily_changes(&events);
        let (fact, daily, dead_letters) = tokio::join!(
            async {
                if events.is_empty() {
                    Ok(())
                } else {
                    append_fact(&self.tables.fact, &events, batch_id).await
                }
            },
            async {
                if rows.is_empty() {
                    Ok(())
                } else {
                    merge_daily(&self.tables.daily, &rows, batch_id).await
                }
            },
            async {
                if dead.is_empty() {
                    Ok(())
                } else {
                    append_dead_letters(&self.tables.dead_letter, dead, batch_id).await
                }
            },
        );
        if daily.is_ok() {
            self.daily.extend(rows);
        }
        fact?;
        daily?;
        dead_letters?;
        if !new_events.is_empty() {
            self.notify().await;
        }
        Ok(())
    }

    async fn write_fact(&self, events: &[&Event], batch_id: i64) -> Result<()> {
        append_fact(&self.tables.fact, events, batch_id).await
    }

    /// The daily rows the events change, with their new totals (the in-memory totals move only
    /// once the merge committed).
    fn daily_changes(&self, events: &[&Event]) -> Vec<((String, i32), DailyRow)> {
        let mut changed: HashMap<(String, i32), DailyRow> = HashMap::new();
        for event in events {
            let key = (event.ndc.clone(), event.date_distribution);
            let row = changed
                .entry(key.clone())
                .or_insert_with(|| self.daily.get(&key).copied().unwrap_or_default());
            row.total_qty += i64::from(event.qty);
            row.n_events += 1;
            row.last_event_at = row.last_event_at.max(event.event_time_us);
        }
        let mut rows: Vec<_> = changed.into_iter().collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        rows
    }

    /// Adds the events' per-(ndc, day) totals to the daily table.
    async fn write_daily(&mut self, events: &[&Event], batch_id: i64) -> Result<()> {
        let rows = self.daily_changes(events);
        merge_daily(&self.tables.daily, &rows, batch_id).await?;
        self.daily.extend(rows);
        Ok(())
    }

    /// Hands the new gold versions to the serving catalog (when running inside `serve`).
    async fn notify(&self) {
        if let Some(registry) = &self.registry {
            registry.notify_commit(&self.tables.fact).await;
            registry.notify_commit(&self.tables.daily).await;
        }
    }
}

/// Starts the writer task; returns the sources' queue handle and the task.
pub fn spawn(
    writer: Writer,
    settings: BatchSettings,
    shutdown: CancellationToken,
) -> (Ingress, tokio::task::JoinHandle<()>) {
    let capacity = settings.max_queued_events.max(1);
    let (tx, rx) = mpsc::channel(capacity.min(65_536));
    let ingress = Ingress {
        tx,
        permits: Arc::new(Semaphore::new(capacity)),
        capacity,
    };
    crate::metrics::global().watch_stream_queue(ingress.permits.clone(), capacity);
    let handle = tokio::spawn(writer_loop(writer, rx, settings, shutdown));
    (ingress, handle)
}

async fn writer_loop(
    mut writer: Writer,
    mut rx: mpsc::Receiver<Submission>,
    settings: BatchSettings,
    shutdown: CancellationToken,
) {
    if let Err(err) = writer.recover().await {
        // Not fatal: the next batch retries, and its sources get an error until the lake is back.
        tracing::error!(error = %err, "stream writer cannot load its state from the lake");
    }
    loop {
        let first = tokio::select! {
            sub = rx.recv() => match sub {
                Some(sub) => sub,
                None => break,
            },
            () = shutdown.cancelled() => break,
        };
        let deadline = tokio::time::Instant::now() + settings.max_batch_delay;
        let mut n = first.records.len();
        let mut batch = vec![first];
        while n < settings.max_batch_events {
            tokio::select! {
                sub = rx.recv() => match sub {
                    Some(sub) => {
                        n += sub.records.len();
                        batch.push(sub);
                    }
                    None => break,
                },
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        writer.process(batch).await;
    }
    // Commit what was already queued: those sources are waiting for their acknowledgement.
    rx.close();
    let mut rest = Vec::new();
    while let Ok(sub) = rx.try_recv() {
        rest.push(sub);
    }
    if !rest.is_empty() {
        writer.process(rest).await;
    }
    tracing::info!("stream writer stopped");
}

/// Merges the changed daily rows (only those) into the daily table, by (ndc, day).
async fn merge_daily(
    location: &StorageLocation,
    rows: &[((String, i32), DailyRow)],
    batch_id: i64,
) -> Result<()> {
    let schema = daily_schema();
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|((ndc, _), _)| ndc.as_str()),
            )) as ArrayRef,
            Arc::new(Date32Array::from_iter_values(
                rows.iter().map(|((_, day), _)| *day),
            )),
            Arc::new(Int64Array::from_iter_values(
                rows.iter().map(|(_, r)| r.total_qty),
            )),
            Arc::new(Int64Array::from_iter_values(
                rows.iter().map(|(_, r)| r.n_events),
            )),
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(
                    rows.iter().map(|(_, r)| r.last_event_at),
                )
                .with_timezone("UTC"),
            ),
        ],
    )?;
    write::merge(
        location,
        schema,
        vec![batch],
        &MergeOptions {
            keys: vec!["ndc".to_string(), "day".to_string()],
            delete_missing: false,
            write: WriteOptions {
                app_transaction: Some((APP_ID.to_string(), batch_id)),
                ..WriteOptions::default()
            },
        },
    )
    .await?;
    Ok(())
}

/// Whether there is a Delta table at `location`.
async fn exists(location: &StorageLocation) -> Result<bool> {
    match crate::lake::table::TableHandle::open(location).await {
        Ok(_) => Ok(true),
        Err(crate::lake::Error::NotATable { .. }) => Ok(false),
        Err(err) => Err(err.into()),
    }
}

/// Appends the events to the fact table.
async fn append_fact(location: &StorageLocation, events: &[&Event], batch_id: i64) -> Result<()> {
    write::append(
        location,
        vec![fact_batch(events)?],
        &WriteOptions {
            app_transaction: Some((APP_ID.to_string(), batch_id)),
            ..WriteOptions::default()
        },
    )
    .await?;
    Ok(())
}

/// Appends the dead letters.
async fn append_dead_letters(
    location: &StorageLocation,
    dead: &[(String, &Record)],
    batch_id: i64,
) -> Result<()> {
    write::append(
        location,
        vec![dead_letter_batch(dead, batch_id)?],
        &WriteOptions {
            app_transaction: Some((APP_ID.to_string(), batch_id)),
            ..WriteOptions::default()
        },
    )
    .await?;
    Ok(())
}

fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// The columns of `fact_medicine_distribution` (also the first columns of bronze).
fn fact_fields() -> Vec<Field> {
    vec![
        Field::new("event_id", DataType::Utf8, false),
        Field::new("device_id", DataType::Utf8, false),
        Field::new("event_time", timestamp_type(), false),
        Field::new("id_patient", DataType::Int64, false),
        Field::new("ndc", DataType::Utf8, false),
        Field::new("qty", DataType::Int32, false),
        Field::new("date_distribution", DataType::Date32, false),
    ]
}

fn fact_columns(events: &[&Event]) -> Vec<ArrayRef> {
    vec![
        Arc::new(StringArray::from_iter_values(
            events.iter().map(|e| e.event_id.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            events.iter().map(|e| e.device_id.as_str()),
        )),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(events.iter().map(|e| e.event_time_us))
                .with_timezone("UTC"),
        ),
        Arc::new(Int64Array::from_iter_values(
            events.iter().map(|e| e.id_patient),
        )),
        Arc::new(StringArray::from_iter_values(
            events.iter().map(|e| e.ndc.as_str()),
        )),
        Arc::new(Int32Array::from_iter_values(events.iter().map(|e| e.qty))),
        Arc::new(Date32Array::from_iter_values(
            events.iter().map(|e| e.date_distribution),
        )),
    ]
}

fn fact_batch(events: &[&Event]) -> Result<RecordBatch> {
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fact_fields())),
        fact_columns(events),
    )?)
}

fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

fn bronze_batch(events: &[(Event, &Record)], batch_id: i64) -> Result<RecordBatch> {
    let mut fields = fact_fields();
    fields.extend([
        Field::new("_ingested_at", timestamp_type(), false),
        Field::new("_source", DataType::Utf8, false),
        Field::new("_source_offset", DataType::Utf8, false),
        Field::new("_batch_id", DataType::Int64, false),
    ]);
    let refs: Vec<&Event> = events.iter().map(|(e, _)| e).collect();
    let mut columns = fact_columns(&refs);
    let n = events.len();
    columns.extend([
        Arc::new(TimestampMicrosecondArray::from(vec![now_micros(); n]).with_timezone("UTC"))
            as ArrayRef,
        Arc::new(StringArray::from_iter_values(
            events.iter().map(|(_, r)| r.source),
        )),
        Arc::new(StringArray::from_iter_values(
            events.iter().map(|(_, r)| r.offset.as_str()),
        )),
        Arc::new(Int64Array::from(vec![batch_id; n])),
    ]);
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

fn dead_letter_batch(dead: &[(String, &Record)], batch_id: i64) -> Result<RecordBatch> {
    let schema = Schema::new(vec![
        Field::new("received_at", timestamp_type(), false),
        Field::new("source", DataType::Utf8, false),
        Field::new("source_offset", DataType::Utf8, false),
        Field::new("device", DataType::Utf8, true),
        Field::new("reason", DataType::Utf8, false),
        Field::new("payload", DataType::Utf8, false),
        Field::new("_batch_id", DataType::Int64, false),
    ]);
    let n = dead.len();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(TimestampMicrosecondArray::from(vec![now_micros(); n]).with_timezone("UTC")),
        Arc::new(StringArray::from_iter_values(
            dead.iter().map(|(_, r)| r.source),
        )),
        Arc::new(StringArray::from_iter_values(
            dead.iter().map(|(_, r)| r.offset.as_str()),
        )),
        Arc::new(StringArray::from_iter(
            dead.iter().map(|(_, r)| r.device.as_deref()),
        )),
        Arc::new(StringArray::from_iter_values(
            dead.iter().map(|(reason, _)| reason.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            dead.iter()
                .map(|(_, r)| String::from_utf8_lossy(&r.payload).into_owned()),
        )),
        Arc::new(Int64Array::from(vec![batch_id; n])),
    ];
    Ok(RecordBatch::try_new(Arc::new(schema), columns)?)
}

fn daily_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("ndc", DataType::Utf8, false),
        Field::new("day", DataType::Date32, false),
        Field::new("total_qty", DataType::Int64, false),
        Field::new("n_events", DataType::Int64, false),
        Field::new("last_event_at", timestamp_type(), false),
    ]))
}

/// Runs `sql` over the table at `location` registered as `t`; no rows when there is no table.
pub async fn query(location: &StorageLocation, sql: &str) -> Result<Vec<RecordBatch>> {
    let handle = match crate::lake::table::TableHandle::open(location).await {
        Ok(handle) => handle,
        Err(crate::lake::Error::NotATable { .. }) => return Ok(Vec::new()),
        Err(err) => return Err(err.into()),
    };
    let ctx = datafusion::prelude::SessionContext::new();
    ctx.register_table("t", handle.provider().await?)?;
    Ok(ctx.sql(sql).await?.collect().await?)
}

/// Column `index` of `batch` as strings (whatever string type the scan produced).
pub(crate) fn strings(batch: &RecordBatch, index: usize) -> Result<Vec<String>> {
    let array = cast(batch.column(index), &DataType::Utf8)?;
    let array = array
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| Error::Data("a string column has an unexpected type".to_string()))?;
    Ok(array
        .iter()
        .map(|v| v.unwrap_or_default().to_string())
        .collect())
}

/// Column `index` of `batch` as i64 (integers, dates and timestamps alike).
pub(crate) fn integers(batch: &RecordBatch, index: usize) -> Result<Vec<i64>> {
    let column = batch.column(index);
    let column = match column.data_type() {
        DataType::Timestamp(_, _) => {
            cast(column, &DataType::Timestamp(TimeUnit::Microsecond, None))?
        }
        DataType::Date32 => cast(column, &DataType::Int32)?,
        _ => column.clone(),
    };
    let array = cast(&column, &DataType::Int64)?;
    let array = array
        .as_any()
        .downcast_ref::<Int64Array>()
        .ok_or_else(|| Error::Data("an integer column has an unexpected type".to_string()))?;
    Ok(array.iter().map(|v| v.unwrap_or_default()).collect())
}

impl Writer {
    /// Loads the event ids of one bronze day (a partition) into memory.
    async fn load_day(&mut self, day: i32) -> Result<()> {
        let sql = format!(
            "SELECT event_id FROM t WHERE date_distribution = {}",
            date_literal(day)
        );
        // Complete or not at all: a partly loaded day would pass its duplicates.
        let mut ids = HashSet::new();
        for batch in query(&self.tables.bronze, &sql).await? {
            for id in strings(&batch, 0)? {
                if let Ok(uuid) = uuid::Uuid::parse_str(&id) {
                    ids.insert(uuid.as_u128());
                }
            }
        }
        self.seen.insert(day, ids);
        Ok(())
    }
}

async fn load_daily(location: &StorageLocation) -> Result<HashMap<(String, i32), DailyRow>> {
    let mut out = HashMap::new();
    let sql = "SELECT ndc, day, total_qty, n_events, last_event_at FROM t";
    for batch in query(location, sql).await? {
        let ndc = strings(&batch, 0)?;
        let day = integers(&batch, 1)?;
        let total = integers(&batch, 2)?;
        let n = integers(&batch, 3)?;
        let last = integers(&batch, 4)?;
        for i in 0..batch.num_rows() {
            out.insert(
                (ndc[i].clone(), day[i] as i32),
                DailyRow {
                    total_qty: total[i],
                    n_events: n[i],
                    last_event_at: last[i],
                },
            );
        }
    }
    Ok(out)
}

/// The bronze events of the batches after `batch_id`.
async fn bronze_events_after(location: &StorageLocation, batch_id: i64) -> Result<Vec<Event>> {
    let sql = format!(
        "SELECT event_id, device_id, event_time, id_patient, ndc, qty, date_distribution \
         FROM t WHERE _batch_id > {batch_id} ORDER BY _batch_id"
    );
    let mut events = Vec::new();
    for batch in query(location, &sql).await? {
        let ids = strings(&batch, 0)?;
        let devices = strings(&batch, 1)?;
        let times = integers(&batch, 2)?;
        let patients = integers(&batch, 3)?;
        let ndcs = strings(&batch, 4)?;
        let qtys = integers(&batch, 5)?;
        let days = integers(&batch, 6)?;
        for i in 0..batch.num_rows() {
            let id = uuid::Uuid::parse_str(&ids[i])
                .map(|u| u.as_u128())
                .unwrap_or_default();
            events.push(Event {
                id,
                event_id: ids[i].clone(),
                device_id: devices[i].clone(),
                event_time_us: times[i],
                id_patient: patients[i],
                ndc: ndcs[i].clone(),
                qty: qtys[i] as i32,
                date_distribution: days[i] as i32,
            });
        }
    }
    Ok(events)
}
