//! The lake: Delta tables on any `object_store` location. The only module that imports
//! `deltalake`.
//!
//! - [`StorageLocation`]: a URL plus the storage options of its credential.
//! - [`features`]: the Delta reader profile, which table features are served and why the
//!   others are refused (also `sys.delta_features` and the README's table).
//! - [`maintain`]: compaction, checkpoints and VACUUM of the tables lakehouse writes.
//! - [`table`]: open a table, check that we can read it correctly, refresh it to a newer
//!   version, and hand DataFusion a provider pinned to one snapshot.
//! - [`write`](mod@write): the writes that ingest and stream need (append, overwrite, merge), each able to
//!   carry an application transaction id so that data and checkpoint advance in one commit.
//!
//! Serving statements never calls [`write`](mod@write) nor [`maintain`]; ARCHITECTURE.md states that
//! invariant.

pub mod features;
pub mod maintain;
pub mod table;
pub mod write;

use std::collections::{BTreeMap, HashMap};
use std::sync::Once;

use url::Url;

pub use deltalake::DeltaTable;

/// Errors of lake operations.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The location is not a valid URL or path.
    #[error("invalid storage location {location:?}: {reason}")]
    InvalidLocation {
        /// The location as written.
        location: String,
        /// Why it is invalid.
        reason: String,
    },
    /// No Delta table at the location.
    #[error("no Delta table at {location}")]
    NotATable {
        /// Redacted location.
        location: String,
    },
    /// The table uses a Delta feature we cannot read correctly.
    #[error("table at {location} needs Delta reader features we do not support: {features}")]
    UnsupportedFeatures {
        /// Redacted location.
        location: String,
        /// The unsupported features.
        features: String,
    },
    /// An error from deltalake.
    #[error("{0}")]
    Delta(#[from] deltalake::DeltaTableError),
    /// An error from the object store.
    #[error("{0}")]
    ObjectStore(#[from] object_store::Error),
    /// An invalid object store path.
    #[error("{0}")]
    ObjectStorePath(#[from] object_store::path::Error),
    /// An error from DataFusion while reading or writing.
    #[error("{0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    /// Local I/O.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Result of lake operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A place in storage: a URL (always ending in `/` for directories) and the options of its
/// credential. Debug output never shows the options.
#[derive(Clone, PartialEq, Eq)]
pub struct StorageLocation {
    url: Url,
    options: BTreeMap<String, String>,
}

impl std::fmt::Debug for StorageLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StorageLocation({})", self.display())
    }
}

impl StorageLocation {
    /// Parses a URL (`abfss://`, `az://`, `s3://`, `file://`) or an absolute local path.
    pub fn parse(location: &str, options: BTreeMap<String, String>) -> Result<Self> {
        register_handlers();
        let location = location.trim();
        let url = if location.contains("://") {
            Url::parse(location).map_err(|err| Error::InvalidLocation {
                location: location.to_string(),
                reason: err.to_string(),
            })?
        } else {
            let path = std::path::Path::new(location);
            if !path.is_absolute() {
                return Err(Error::InvalidLocation {
                    location: location.to_string(),
                    reason: "a local path must be absolute".to_string(),
                });
            }
            Url::from_directory_path(path).map_err(|()| Error::InvalidLocation {
                location: location.to_string(),
                reason: "not a valid directory path".to_string(),
            })?
        };
        Ok(StorageLocation {
            url: with_trailing_slash(url),
            options,
        })
    }

    /// The location `relative` below this one (`gold/ikhospital/dim_patient`).
    pub fn join(&self, relative: &str) -> Result<Self> {
        let relative = relative.trim_matches('/');
        if relative.split('/').any(|part| part == "..") {
            return Err(Error::InvalidLocation {
                location: relative.to_string(),
                reason: "\"..\" is not allowed in a relative location".to_string(),
            });
        }
        let url = self
            .url
            .join(&format!("{relative}/"))
            .map_err(|err| Error::InvalidLocation {
                location: relative.to_string(),
                reason: err.to_string(),
            })?;
        Ok(StorageLocation {
            url,
            options: self.options.clone(),
        })
    }

    /// The URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Storage options for deltalake/object_store.
    pub fn options(&self) -> HashMap<String, String> {
        self.options
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// True for `file://` locations.
    pub fn is_local(&self) -> bool {
        self.url.scheme() == "file"
    }

    /// The local path for `file://` locations.
    pub fn local_path(&self) -> Option<std::path::PathBuf> {
        self.is_local()
            .then(|| self.url.to_file_path().ok())
            .flatten()
    }

    /// The URL without user info or query string (which may hold a SAS token), for messages.
    pub fn display(&self) -> String {
        let mut url = self.url.clone();
        let _ = url.set_password(None);
        let _ = url.set_username("");
        url.set_query(None);
        if url.scheme() == "file" {
            return url
                .to_file_path()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| url.to_string());
        }
        url.to_string()
    }

    /// An object store rooted at this location's bucket/container (paths are relative to it).
    pub fn object_store(
        &self,
    ) -> Result<(
        std::sync::Arc<dyn object_store::ObjectStore>,
        object_store::path::Path,
    )> {
        if self.is_local() {
            let store = object_store::local::LocalFileSystem::new();
            let path = object_store::path::Path::from_url_path(self.url.path())?;
            return Ok((std::sync::Arc::new(store), path));
        }
        let (store, path) = object_store::parse_url_opts(&self.url, self.options.iter())?;
        Ok((std::sync::Arc::from(store), path))
    }
}

fn with_trailing_slash(mut url: Url) -> Url {
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}

/// Registers the cloud storage handlers of deltalake exactly once.
pub fn register_handlers() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        deltalake::azure::register_handlers(None);
    });
}

/// Lists the Delta tables directly below `location` (one level of folders), by name.
///
/// A folder is a table when it has a `_delta_log/`. Used for catalog discovery, so that
/// `gold/ikhospital/*` becomes the tables of schema `dbo` without listing them by hand.
pub async fn discover_tables(location: &StorageLocation) -> Result<Vec<String>> {
    let mut names: Vec<String> = subfolders(location)
        .await?
        .into_iter()
        .filter_map(|(name, is_table)| is_table.then_some(name))
        .collect();
    names.sort();
    Ok(names)
}

/// The sub-folders of `location` (not `_`- or `.`-prefixed ones: Delta's and hidden), each
/// with whether it is a Delta table. A missing location has none.
pub(crate) async fn subfolders(location: &StorageLocation) -> Result<Vec<(String, bool)>> {
    if let Some(path) = location.local_path() {
        // Local listing with std::fs: object_store's local listing errors on a missing prefix.
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(&path) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(err) => return Err(err.into()),
        };
        for entry in entries {
            let entry = entry?;
            if entry.file_type()?.is_dir()
                && let Some(name) = entry.file_name().to_str()
                && !name.starts_with('_')
                && !name.starts_with('.')
            {
                out.push((name.to_string(), entry.path().join("_delta_log").is_dir()));
            }
        }
        return Ok(out);
    }
    let (store, prefix) = location.object_store()?;
    let listing = store.list_with_delimiter(Some(&prefix)).await?;
    let mut out = Vec::new();
    for folder in listing.common_prefixes {
        let Some(name) = folder.filename().map(str::to_string) else {
            continue;
        };
        if name.starts_with('_') || name.starts_with('.') {
            continue;
        }
        let log = folder.clone().join("_delta_log");
        let is_table = !store
            .list_with_delimiter(Some(&log))
            .await?
            .objects
            .is_empty();
        out.push((name, is_table));
    }
    Ok(out)
}
