//! The live catalog: every served table with its current Delta version, behind an atomically
//! swapped immutable [`CatalogState`].
//!
//! A statement pins one `CatalogState` for its whole life, so every table it reads is read at
//! one version. A background task ([`Registry::refresh`], every `refresh_interval`) probes each
//! Delta log for a newer version (one listing of `_delta_log`), applies only the new commits of
//! tables that moved, re-runs discovery, and publishes a new state. Tables that cannot be
//! opened stay in the catalog as broken: queries touching them fail with a clear error and the
//! rest keep serving.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::SessionState;
use futures::StreamExt;
use tokio::sync::Mutex;

use super::spec::{CatalogDef, TableDef, TableFormat};
use crate::lake::table::TableHandle;
use crate::lake::{self, StorageLocation};

/// `(schema, table)`, lowercase.
pub type TableKey = (String, String);

/// One served table as of one catalog state.
#[derive(Debug, Clone)]
pub struct TableEntry {
    /// Lowercase schema.
    pub schema: String,
    /// Lowercase name.
    pub name: String,
    /// Stable OID (same name, same OID, across restarts).
    pub oid: u32,
    /// Location for messages (no secrets).
    pub location: String,
    /// Storage format.
    pub format: TableFormat,
    /// Readable or not.
    pub status: TableStatus,
}

/// Whether a table can be read.
#[derive(Debug, Clone)]
pub enum TableStatus {
    /// Readable at a version.
    Ready(ReadyTable),
    /// Not readable; queries touching it fail with this reason.
    Broken(String),
}

/// A readable table pinned to one version.
#[derive(Clone)]
pub struct ReadyTable {
    /// Delta version (`None` for plain Parquet folders).
    pub version: Option<u64>,
    /// DataFusion provider pinned to that version.
    pub provider: Arc<dyn TableProvider>,
    /// Arrow schema.
    pub schema: SchemaRef,
    /// Data files in this version.
    pub n_files: usize,
    /// Partition columns.
    pub partition_columns: Vec<String>,
    /// When the served version was committed (Unix milliseconds: the commit file's time), if
    /// its commit file is still in the log.
    pub committed_at_ms: Option<i64>,
    /// The Delta reader features the served version needs (see `lake::features`).
    pub reader_features: Vec<String>,
}

impl std::fmt::Debug for ReadyTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadyTable")
            .field("version", &self.version)
            .field("n_files", &self.n_files)
            .finish()
    }
}

impl TableEntry {
    /// The readable table, or the reason it is not readable.
    pub fn ready(&self) -> Result<&ReadyTable, &str> {
        match &self.status {
            TableStatus::Ready(table) => Ok(table),
            TableStatus::Broken(reason) => Err(reason),
        }
    }

    /// Lowercase column names (empty for broken tables).
    pub fn column_names(&self) -> Vec<String> {
        match &self.status {
            TableStatus::Ready(table) => table
                .schema
                .fields()
                .iter()
                .map(|f| f.name().to_lowercase())
                .collect(),
            TableStatus::Broken(_) => Vec::new(),
        }
    }
}

/// An immutable view of the whole catalog.
#[derive(Debug, Clone, Default)]
pub struct CatalogState {
    /// Increases whenever any table, version or schema changes.
    pub generation: u64,
    /// Tables by `(schema, name)`.
    pub tables: BTreeMap<TableKey, Arc<TableEntry>>,
    /// Every schema: those holding tables and discovery targets (which may be empty).
    pub schemas: BTreeSet<String>,
    /// Schemas filled by discovery.
    pub discovered_schemas: BTreeSet<String>,
}

impl CatalogState {
    /// Looks a table up (names lowercase).
    pub fn table(&self, schema: &str, name: &str) -> Option<&Arc<TableEntry>> {
        self.tables.get(&(schema.to_string(), name.to_string()))
    }

    /// Tables of one schema.
    pub fn tables_in<'a>(&'a self, schema: &'a str) -> impl Iterator<Item = &'a Arc<TableEntry>> {
        self.tables
            .iter()
            .filter(move |((s, _), _)| s == schema)
            .map(|(_, entry)| entry)
    }

    /// Delta versions of every ready table, for cache keys and audit.
    pub fn versions(&self) -> Vec<(TableKey, Option<u64>)> {
        self.tables
            .iter()
            .filter_map(|(key, entry)| match &entry.status {
                TableStatus::Ready(table) => Some((key.clone(), table.version)),
                TableStatus::Broken(_) => None,
            })
            .collect()
    }
}

impl crate::policy::CatalogInfo for CatalogState {
    fn schema_exists(&self, schema: &str) -> bool {
        self.schemas.contains(schema)
    }

    fn table_columns(&self, schema: &str, table: &str) -> Option<Vec<String>> {
        let entry = self.table(schema, table)?;
        match entry.status {
            TableStatus::Ready(_) => Some(entry.column_names()),
            // A broken table's columns are unknown: do not report its grants as wrong.
            TableStatus::Broken(_) => None,
        }
    }

    fn schema_is_discovered(&self, schema: &str) -> bool {
        self.discovered_schemas.contains(schema) || self.schemas.contains(schema)
    }
}

/// The mutable side of a table, kept only by the registry.
enum Slot {
    Delta(TableHandle),
    Parquet(ReadyTable),
    Broken(String),
}

struct Inner {
    def: CatalogDef,
    slots: BTreeMap<TableKey, (TableDef, Slot)>,
}

/// What a refresh changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RefreshReport {
    /// Tables that moved to a new version.
    pub updated: Vec<String>,
    /// Tables that appeared.
    pub added: Vec<String>,
    /// Tables that disappeared.
    pub removed: Vec<String>,
    /// Tables that failed to refresh (they keep serving their last good version).
    pub failed: Vec<String>,
}

impl RefreshReport {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.updated.is_empty() && self.added.is_empty() && self.removed.is_empty()
    }
}

/// Owner of the live catalog.
pub struct Registry {
    state: ArcSwap<CatalogState>,
    inner: Mutex<Inner>,
    /// A DataFusion session whose runtime receives each table's object store.
    session: SessionState,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Registry(generation={})", self.state.load().generation)
    }
}

/// Tables opened or refreshed at once.
const PARALLELISM: usize = 8;

impl Registry {
    /// Opens every table of `def`. Never fails: unreadable tables are served as broken and
    /// logged as warnings.
    pub async fn open(def: CatalogDef, session: SessionState) -> Arc<Registry> {
        let registry = Arc::new(Registry {
            state: ArcSwap::from_pointee(CatalogState::default()),
            inner: Mutex::new(Inner {
                def,
                slots: BTreeMap::new(),
            }),
            session,
        });
        let report = registry.refresh().await;
        let state = registry.snapshot();
        for entry in state.tables.values() {
            if let TableStatus::Broken(reason) = &entry.status {
                tracing::warn!(table = %format!("{}.{}", entry.schema, entry.name), %reason, "table is not readable; queries that touch it will fail");
            }
        }
        tracing::info!(
            n_tables = state.tables.len(),
            n_added = report.added.len(),
            "catalog loaded"
        );
        registry
    }

    /// The current state; hold it for the duration of one statement.
    pub fn snapshot(&self) -> Arc<CatalogState> {
        self.state.load_full()
    }

    /// Replaces the catalog definition (after `catalog/` changed) and refreshes.
    pub async fn reload(&self, def: CatalogDef) -> RefreshReport {
        {
            let mut inner = self.inner.lock().await;
            inner.def = def;
        }
        self.refresh().await
    }

    /// Re-reads the table at `location` now: used when this process just committed to it (the
    /// stream hands each commit over so that freshness does not wait for the interval).
    pub async fn notify_commit(&self, location: &StorageLocation) {
        let mut inner = self.inner.lock().await;
        let mut changed = false;
        let known = inner
            .slots
            .values()
            .any(|(def, _)| def.location.url() == location.url());
        if !known {
            // A table this process just created: discovery finds it now rather than at the
            // next interval.
            drop(inner);
            self.refresh().await;
            return;
        }
        for (_, (def, slot)) in inner.slots.iter_mut() {
            if def.location.url() != location.url() {
                continue;
            }
            match slot {
                Slot::Delta(handle) => match handle.refresh().await {
                    Ok(moved) => changed |= moved,
                    Err(err) => tracing::warn!(error = %err, "refresh after commit failed"),
                },
                Slot::Broken(_) => {
                    *slot = open_slot(def, &self.session).await;
                    changed = true;
                }
                Slot::Parquet(_) => {}
            }
        }
        if changed {
            self.publish(&inner);
        }
    }

    /// Probes every table for new versions, re-runs discovery, and publishes the result.
    pub async fn refresh(&self) -> RefreshReport {
        let started = std::time::Instant::now();
        let mut inner = self.inner.lock().await;
        let mut report = RefreshReport::default();

        // The wanted set: explicit tables plus whatever discovery finds now.
        let mut wanted: BTreeMap<TableKey, TableDef> = BTreeMap::new();
        for table in &inner.def.tables {
            wanted.insert((table.schema.clone(), table.name.clone()), table.clone());
        }
        for discovery in &inner.def.discoveries {
            match lake::discover_tables(&discovery.location).await {
                Ok(names) => {
                    for name in names {
                        let lower = name.to_lowercase();
                        let key = (discovery.schema.clone(), lower.clone());
                        if wanted.contains_key(&key) || !super::spec::is_identifier(&lower) {
                            continue;
                        }
                        match discovery.location.join(&name) {
                            Ok(location) => {
                                wanted.insert(
                                    key,
                                    TableDef {
                                        schema: discovery.schema.clone(),
                                        name: lower,
                                        location,
                                        format: TableFormat::Delta,
                                    },
                                );
                            }
                            Err(err) => tracing::warn!(error = %err, "skipping discovered table"),
                        }
                    }
                }
                Err(err) => {
                    // Keep what was discovered before: a listing glitch must not drop tables.
                    tracing::warn!(location = %discovery.location.display(), error = %err, "discovery failed");
                    for (key, (def, _)) in &inner.slots {
                        if key.0 == discovery.schema && !wanted.contains_key(key) {
                            wanted.insert(key.clone(), def.clone());
                        }
                    }
                }
            }
        }

        let removed: Vec<TableKey> = inner
            .slots
            .keys()
            .filter(|key| !wanted.contains_key(*key))
            .cloned()
            .collect();
        for key in removed {
            inner.slots.remove(&key);
            report.removed.push(format!("{}.{}", key.0, key.1));
        }

        // Open new tables and refresh known ones, several at a time.
        let session = &self.session;
        let mut slots = std::mem::take(&mut inner.slots);
        let work: Vec<(TableKey, TableDef, Option<Slot>)> = wanted
            .into_iter()
            .map(|(key, def)| {
                let slot = slots.remove(&key).and_then(|(old_def, slot)| {
                    // A changed location or format means a different table.
                    (old_def.location == def.location && old_def.format == def.format)
                        .then_some(slot)
                });
                (key, def, slot)
            })
            .collect();
        let results: Vec<(TableKey, TableDef, Slot, Outcome)> = futures::stream::iter(work)
            .map(|(key, def, slot)| async move {
                let (slot, outcome) = match slot {
                    None => {
                        let slot = open_slot(&def, session).await;
                        (slot, Outcome::Added)
                    }
                    Some(Slot::Delta(mut handle)) => match handle.refresh().await {
                        Ok(true) => (Slot::Delta(handle), Outcome::Updated),
                        Ok(false) => (Slot::Delta(handle), Outcome::Unchanged),
                        Err(err) => {
                            tracing::warn!(table = %format!("{}.{}", key.0, key.1), error = %err, "refresh failed; serving the last good version");
                            (Slot::Delta(handle), Outcome::Failed)
                        }
                    },
                    Some(Slot::Broken(_)) => {
                        let slot = open_slot(&def, session).await;
                        let outcome = match slot {
                            Slot::Broken(_) => Outcome::Unchanged,
                            _ => Outcome::Updated,
                        };
                        (slot, outcome)
                    }
                    Some(Slot::Parquet(table)) => match open_parquet(&def, session).await {
                        Ok(fresh) if fresh.n_files != table.n_files => {
                            (Slot::Parquet(fresh), Outcome::Updated)
                        }
                        Ok(_) => (Slot::Parquet(table), Outcome::Unchanged),
                        Err(_) => (Slot::Parquet(table), Outcome::Failed),
                    },
                };
                (key, def, slot, outcome)
            })
            .buffer_unordered(PARALLELISM)
            .collect()
            .await;
        for (key, def, slot, outcome) in results {
            let name = format!("{}.{}", key.0, key.1);
            match outcome {
                Outcome::Added => report.added.push(name),
                Outcome::Updated => report.updated.push(name),
                Outcome::Failed => report.failed.push(name),
                Outcome::Unchanged => {}
            }
            slots.insert(key, (def, slot));
        }
        inner.slots = slots;
        report.added.sort();
        report.updated.sort();
        if !report.is_empty() || self.state.load().generation == 0 {
            self.publish(&inner);
        }
        let metrics = crate::metrics::global();
        metrics
            .refresh_duration
            .observe(started.elapsed().as_secs_f64());
        metrics.refresh_failures.inc_by(report.failed.len() as u64);
        report
    }

    /// Builds and swaps in a new state from the slots.
    fn publish(&self, inner: &Inner) {
        let previous = self.state.load();
        let mut tables = BTreeMap::new();
        let mut used_oids = BTreeSet::new();
        for (key, (def, slot)) in &inner.slots {
            let status = match slot {
                Slot::Delta(handle) => ready_from_handle(handle),
                Slot::Parquet(table) => TableStatus::Ready(table.clone()),
                Slot::Broken(reason) => TableStatus::Broken(reason.clone()),
            };
            let oid = unique_oid(&format!("table:{}.{}", key.0, key.1), &mut used_oids);
            tables.insert(
                key.clone(),
                Arc::new(TableEntry {
                    schema: key.0.clone(),
                    name: key.1.clone(),
                    oid,
                    location: def.location.display(),
                    format: def.format,
                    status,
                }),
            );
        }
        let discovered_schemas: BTreeSet<String> = inner
            .def
            .discoveries
            .iter()
            .map(|d| d.schema.clone())
            .collect();
        let mut schemas: BTreeSet<String> = tables.keys().map(|(s, _)| s.clone()).collect();
        schemas.extend(discovered_schemas.iter().cloned());
        self.state.store(Arc::new(CatalogState {
            generation: previous.generation + 1,
            tables,
            schemas,
            discovered_schemas,
        }));
    }

    /// Runs [`Registry::refresh`] every `interval` until `shutdown` resolves.
    pub async fn refresh_loop(
        self: Arc<Self>,
        interval: Duration,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        let mut period = crate::periodic::Periodic::new(interval, shutdown);
        while period.next().await {
            let started = SystemTime::now();
            let report = self.refresh().await;
            if !report.is_empty() {
                tracing::info!(
                    updated = ?report.updated,
                    added = ?report.added,
                    removed = ?report.removed,
                    elapsed_ms = started.elapsed().map(|d| d.as_millis()).unwrap_or(0) as u64,
                    "catalog refreshed"
                );
            }
        }
    }
}

enum Outcome {
    Added,
    Updated,
    Unchanged,
    Failed,
}

fn ready_from_handle(handle: &TableHandle) -> TableStatus {
    // The provider is built eagerly at refresh, not per query: building it is cheap but the
    // per-query path should do no work for unchanged tables.
    match handle.cached_provider() {
        Some(provider) => match handle.schema() {
            Ok(schema) => TableStatus::Ready(ReadyTable {
                version: Some(handle.version()),
                provider,
                schema,
                n_files: handle.n_files(),
                partition_columns: handle.partition_columns().unwrap_or_default(),
                committed_at_ms: handle.committed_at_ms(),
                reader_features: handle.reader_features(),
            }),
            Err(err) => TableStatus::Broken(err.to_string()),
        },
        None => TableStatus::Broken("table provider not built".to_string()),
    }
}

async fn open_slot(def: &TableDef, session: &SessionState) -> Slot {
    match def.format {
        TableFormat::Delta => match TableHandle::open(&def.location).await {
            Ok(mut handle) => {
                if let Err(err) = handle.register_object_store(session) {
                    return Slot::Broken(err.to_string());
                }
                match handle.build_provider().await {
                    Ok(()) => Slot::Delta(handle),
                    Err(err) => Slot::Broken(err.to_string()),
                }
            }
            Err(err) => Slot::Broken(err.to_string()),
        },
        TableFormat::Parquet => match open_parquet(def, session).await {
            Ok(table) => Slot::Parquet(table),
            Err(err) => Slot::Broken(err),
        },
    }
}

async fn open_parquet(def: &TableDef, session: &SessionState) -> Result<ReadyTable, String> {
    let url = ListingTableUrl::parse(def.location.url().as_str()).map_err(|e| e.to_string())?;
    if !def.location.is_local() {
        let (store, _) = def.location.object_store().map_err(|e| e.to_string())?;
        session
            .runtime_env()
            .register_object_store(url.object_store().as_ref(), store);
    }
    let options =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let schema = options
        .infer_schema(session, &url)
        .await
        .map_err(|e| format!("cannot read Parquet folder {}: {e}", def.location.display()))?;
    let config = ListingTableConfig::new(url.clone())
        .with_listing_options(options)
        .with_schema(schema.clone());
    let table = ListingTable::try_new(config).map_err(|e| e.to_string())?;
    let n_files = table
        .list_files_for_scan(session, &[], None)
        .await
        .map(|files| files.file_groups.iter().map(|g| g.len()).sum())
        .unwrap_or(0);
    Ok(ReadyTable {
        version: None,
        provider: Arc::new(table),
        schema,
        n_files,
        partition_columns: Vec::new(),
        committed_at_ms: None,
        reader_features: Vec::new(),
    })
}

/// A stable OID for `name` in PostgreSQL's range for user objects (>= 16384), unique within
/// `used` (collisions probe forward deterministically, in the caller's sorted order).
pub fn unique_oid(name: &str, used: &mut BTreeSet<u32>) -> u32 {
    let mut oid = stable_oid(name);
    while !used.insert(oid) {
        oid = if oid >= 0x7fff_fffe { 16384 } else { oid + 1 };
    }
    oid
}

/// FNV-1a of `name`, folded into 16384..2^31.
pub fn stable_oid(name: &str) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    16384 + (hash % (0x7fff_ffff - 16384)) as u32
}
