//! Delta maintenance of the tables lakehouse writes (bronze, silver, gold of the lake root):
//! compaction of small files, a checkpoint with log cleanup, and VACUUM of files no version
//! within the retention needs. `lakehouse optimize` and `lakehouse vacuum` run it.
//!
//! Safe beside readers and writers by construction: compaction commits a rewrite with
//! `dataChange: false` through Delta's optimistic concurrency (a conflicting concurrent commit
//! makes it fail and leaves the table as it was; appends do not conflict), so every version a
//! query pinned stays readable; VACUUM keeps every file a version younger than the retention
//! needs, and the retention is never shorter than the table's own
//! `delta.deletedFileRetentionDuration` (deltalake refuses) nor than the caller's minimum (the
//! longest statement plus the refresh interval).

use std::time::Duration;

use super::{Result, StorageLocation};

/// The layers lakehouse writes, below the lake root.
pub const LAYERS: [&str; 3] = ["bronze", "silver", "gold"];

/// Every Delta table below `root`'s bronze, silver and gold (`bronze/mysql/ikhospital/events`,
/// `bronze/stream/pharmacy/distribution`, `gold/ikhospital/dim_patient`, ...), sorted.
pub async fn tables(root: &StorageLocation) -> Result<Vec<String>> {
    let mut found = Vec::new();
    for layer in LAYERS {
        let mut pending = vec![layer.to_string()];
        // bronze/<source>/<database>/<table> is the deepest layout: four levels.
        for _ in 0..4 {
            let mut next = Vec::new();
            for dir in pending {
                let location = root.join(&dir)?;
                for (name, is_table) in super::subfolders(&location).await? {
                    let path = format!("{dir}/{name}");
                    if is_table {
                        found.push(path);
                    } else {
                        next.push(path);
                    }
                }
            }
            pending = next;
        }
    }
    found.sort();
    Ok(found)
}

/// What compaction did (or, dry, would do) to one table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// Data files before.
    pub files_before: usize,
    /// Files smaller than half the target: what compaction rewrites.
    pub small_files: usize,
    /// Files removed by the rewrite (0 when dry).
    pub files_removed: u64,
    /// Files added by the rewrite (0 when dry).
    pub files_added: u64,
    /// The version committed, if any.
    pub version: Option<u64>,
    /// Why the table was left alone, if it was (it needs reader features of another engine).
    pub skipped: Option<String>,
}

/// Reader features lakehouse's own writes may carry (deltalake marks `timestamp_ntz` columns).
const OWN_READER_FEATURES: [&str; 1] = ["timestampNtz"];

/// Why a table looks written by another engine (Databricks, Fabric, Spark): it needs reader
/// features lakehouse's writer never uses. Such tables are maintained only when named.
fn foreign(table: &deltalake::DeltaTable) -> Option<String> {
    let others: Vec<String> = super::features::listed(&super::table::protocol(table))
        .into_iter()
        .filter(|f| !OWN_READER_FEATURES.contains(&f.as_str()))
        .collect();
    (!others.is_empty()).then(|| {
        format!(
            "written with {} by another engine: left alone unless named",
            others.join(", ")
        )
    })
}

/// Bin-packs the small files of the table at `location` into files of about `target_bytes`,
/// then writes a checkpoint. `dry_run` only counts. A table of another engine (reader features
/// lakehouse never writes) is left alone unless `named`.
pub async fn compact(
    location: &StorageLocation,
    target_bytes: u64,
    dry_run: bool,
    named: bool,
) -> Result<CompactReport> {
    let table = super::write::open_for_write(location).await?;
    if !named && let Some(reason) = foreign(&table) {
        return Ok(CompactReport {
            skipped: Some(reason),
            ..CompactReport::default()
        });
    }
    let sizes: Vec<u64> = {
        let snapshot = table.snapshot()?;
        snapshot
            .log_data()
            .iter()
            .map(|file| u64::try_from(file.size()).unwrap_or(0))
            .collect()
    };
    let mut report = CompactReport {
        files_before: sizes.len(),
        small_files: sizes.iter().filter(|s| **s < target_bytes / 2).count(),
        ..CompactReport::default()
    };
    if dry_run || report.small_files < 2 {
        return Ok(report);
    }
    let target = std::num::NonZeroU64::new(target_bytes.max(1 << 20)).unwrap_or(NON_ZERO_MIB);
    let (table, metrics) = table.optimize().with_target_size(target).await?;
    report.files_removed = metrics.num_files_removed;
    report.files_added = metrics.num_files_added;
    report.version = table.version();
    deltalake::checkpoints::create_checkpoint(&table, None).await?;
    Ok(report)
}

const NON_ZERO_MIB: std::num::NonZeroU64 = match std::num::NonZeroU64::new(1 << 20) {
    Some(n) => n,
    None => std::num::NonZeroU64::MIN,
};

/// What VACUUM removed (or, dry, would remove) from one table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VacuumReport {
    /// Files no version within the retention needs, relative to the table.
    pub files: Vec<String>,
    /// Why the table was left alone, if it was (it needs reader features of another engine).
    pub skipped: Option<String>,
}

/// Removes the files of the table at `location` that no version younger than `retention`
/// needs; `None` is the table's own `delta.deletedFileRetentionDuration` (7 days unless set),
/// and a shorter one is refused by deltalake. `dry_run` only lists them. A table of another
/// engine (reader features lakehouse never writes) is left alone unless `named`.
pub async fn vacuum(
    location: &StorageLocation,
    retention: Option<Duration>,
    dry_run: bool,
    named: bool,
) -> Result<VacuumReport> {
    let table = super::write::open_for_write(location).await?;
    if !named && let Some(reason) = foreign(&table) {
        return Ok(VacuumReport {
            files: Vec::new(),
            skipped: Some(reason),
        });
    }
    let mut builder = table
        .vacuum()
        .with_enforce_retention_duration(true)
        .with_dry_run(dry_run);
    if let Some(retention) = retention {
        builder = builder.with_retention_period(
            chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX),
        );
    }
    let (_, metrics) = builder.await?;
    let mut files = metrics.files_deleted;
    files.sort();
    Ok(VacuumReport {
        files,
        skipped: None,
    })
}
