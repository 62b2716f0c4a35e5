//! Reading Delta tables: open, verify, refresh, and hand out snapshot-pinned providers.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use deltalake::DeltaTable;

use super::{Error, Result, StorageLocation};

/// An open Delta table whose state can move forward with [`TableHandle::refresh`].
///
/// Each [`TableHandle::provider`] is pinned to the version loaded at that moment, so a query
/// that holds a provider sees one consistent snapshot however many commits follow.
#[derive(Clone)]
pub struct TableHandle {
    location: StorageLocation,
    table: DeltaTable,
    /// Provider for the loaded version, built by [`TableHandle::build_provider`].
    provider: Option<Arc<dyn TableProvider>>,
}

impl std::fmt::Debug for TableHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableHandle")
            .field("location", &self.location)
            .field("version", &self.version())
            .finish()
    }
}

impl TableHandle {
    /// Opens the latest version of the table at `location` and checks that it can be read.
    pub async fn open(location: &StorageLocation) -> Result<TableHandle> {
        if let Some(path) = location.local_path()
            && !path.join("_delta_log").is_dir()
        {
            return Err(Error::NotATable {
                location: location.display(),
            });
        }
        let table =
            deltalake::open_table_with_storage_options(location.url().clone(), location.options())
                .await
                .map_err(|err| match err {
                    deltalake::DeltaTableError::NotATable(_) => Error::NotATable {
                        location: location.display(),
                    },
                    // The kernel refuses a catalog-managed table before any protocol check of
                    // ours can run; say it in the profile's words.
                    other if other.to_string().contains("catalog-managed") => {
                        Error::UnsupportedFeatures {
                            location: location.display(),
                            features: super::features::describe("catalogManaged"),
                        }
                    }
                    other => Error::Delta(other),
                })?;
        check_readable(&table, location)?;
        Ok(TableHandle {
            location: location.clone(),
            table,
            provider: None,
        })
    }

    /// The location of the table.
    pub fn location(&self) -> &StorageLocation {
        &self.location
    }

    /// The loaded version.
    pub fn version(&self) -> u64 {
        self.table.version().unwrap_or(0)
    }

    /// The reader features the loaded version's protocol names (`deletionVectors`, ...; none
    /// for legacy protocols), sorted.
    pub fn reader_features(&self) -> Vec<String> {
        super::features::listed(&protocol(&self.table))
    }

    /// When the loaded version was committed: its commit file's modification time, Unix
    /// milliseconds (`None` once log cleanup removed the file).
    pub fn committed_at_ms(&self) -> Option<i64> {
        self.table
            .snapshot()
            .ok()?
            .version_timestamp(self.version())
    }

    /// The newest version in the log, without loading it (one listing of `_delta_log`).
    pub async fn latest_version(&self) -> Result<u64> {
        Ok(self.table.get_latest_version().await?)
    }

    /// Applies newer commits; returns true when the version moved. Re-checks the protocol,
    /// since a writer may have enabled a feature we cannot read.
    pub async fn refresh(&mut self) -> Result<bool> {
        let before = self.version();
        let latest = self.latest_version().await?;
        if latest <= before {
            return Ok(false);
        }
        let mut next = self.table.clone();
        next.update_incremental(None).await?;
        check_readable(&next, &self.location)?;
        let had_provider = self.provider.is_some();
        self.table = next;
        self.provider = None;
        if had_provider {
            self.build_provider().await?;
        }
        Ok(self.version() != before)
    }

    /// Loads exactly `version` (time travel) into a new handle.
    pub async fn at_version(&self, version: u64) -> Result<TableHandle> {
        let mut table = self.table.clone();
        table.load_version(version).await?;
        check_readable(&table, &self.location)?;
        Ok(TableHandle {
            location: self.location.clone(),
            table,
            provider: None,
        })
    }

    /// The Arrow schema of the loaded version.
    pub fn schema(&self) -> Result<SchemaRef> {
        Ok(self.table.snapshot()?.snapshot().arrow_schema())
    }

    /// Partition columns of the loaded version.
    pub fn partition_columns(&self) -> Result<Vec<String>> {
        Ok(self
            .table
            .snapshot()?
            .metadata()
            .partition_columns()
            .to_vec())
    }

    /// Number of data files in the loaded version.
    pub fn n_files(&self) -> usize {
        self.table
            .snapshot()
            .ok()
            .and_then(|s| s.snapshot().try_log_data().ok().map(|d| d.num_files()))
            .unwrap_or(0)
    }

    /// A DataFusion provider pinned to the loaded version (partition pruning, file statistics
    /// skipping and deletion vectors are deltalake's).
    pub async fn provider(&self) -> Result<Arc<dyn TableProvider>> {
        Ok(self.table.table_provider().await?)
    }

    /// Builds and keeps the provider of the loaded version; [`TableHandle::refresh`] rebuilds it.
    pub async fn build_provider(&mut self) -> Result<()> {
        self.provider = Some(self.provider().await?);
        Ok(())
    }

    /// The provider built by [`TableHandle::build_provider`] for the loaded version.
    pub fn cached_provider(&self) -> Option<Arc<dyn TableProvider>> {
        self.provider.clone()
    }

    /// Registers the table's object store with a DataFusion session, so scans can read files.
    pub fn register_object_store(&self, session: &dyn Session) -> Result<()> {
        Ok(self.table.update_datafusion_session(session)?)
    }

    /// The highest version recorded for an application transaction id, if any.
    pub async fn app_transaction_version(&self, app_id: &str) -> Result<Option<i64>> {
        let snapshot = self.table.snapshot()?;
        Ok(snapshot
            .transaction_version(self.table.log_store().as_ref(), app_id)
            .await?)
    }
}

/// The loaded version's protocol action as JSON (what `lake::features` reads); `null` when the
/// table has no snapshot.
pub(crate) fn protocol(table: &DeltaTable) -> serde_json::Value {
    table
        .snapshot()
        .ok()
        .and_then(|s| serde_json::to_value(s.protocol()).ok())
        .unwrap_or_default()
}

/// Refuses tables whose reader features we do not implement: wrong results are worse than none.
/// Our own reader profile ([`super::features`]) decides and says why; deltalake's checker runs
/// after it, so a feature we list as served but deltalake cannot read is still refused.
fn check_readable(table: &DeltaTable, location: &StorageLocation) -> Result<()> {
    let snapshot = table.snapshot()?;
    let refused = super::features::refused(&protocol(table));
    if !refused.is_empty() {
        return Err(Error::UnsupportedFeatures {
            location: location.display(),
            features: refused
                .iter()
                .map(|(name, why)| format!("{name} ({why})"))
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    deltalake::kernel::transaction::PROTOCOL
        .can_read_from_protocol(snapshot.protocol())
        .map_err(|err| Error::UnsupportedFeatures {
            location: location.display(),
            features: match err {
                deltalake::kernel::transaction::TransactionError::UnsupportedTableFeatures(
                    features,
                ) => {
                    let mut names: Vec<String> = features.iter().map(|f| f.to_string()).collect();
                    names.sort();
                    names.join(", ")
                }
                other => other.to_string(),
            },
        })
}
