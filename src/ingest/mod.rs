//! Batch ingest: the ikhospital source databases into bronze, silver and gold, exactly once.
//!
//! - [`source`]: discovering and streaming source tables as Arrow batches (MySQL, PostgreSQL,
//!   and the demo's in-memory generator); the only code that uses the database drivers to read.
//! - [`bronze`]: one Delta commit per table and run, carrying the batch number as a Delta
//!   application transaction; the watermark is the maximum of the watermark column in the data
//!   committed, so data and watermark cannot disagree.
//! - [`silver`]: `sql/silver/*.sql` over the bronze rows not merged yet, upserted by business
//!   key; the bronze batch merged is recorded in the same commit.
//! - [`gold`]: `sql/gold/*.sql` over silver, materialised in dependency order; rebuilt only when
//!   an input's version or the model changed.
//! - [`models`]: loading and validating `sql/silver` and `sql/gold` (also for `lakehouse check`).
//! - [`generate`]: `lakehouse generate`, the synthetic source data.
//!
//! This module never serves queries and writes the lake only through [`crate::lake::write`].

pub mod bronze;
pub mod generate;
pub mod gold;
pub mod models;
pub mod plan;
pub mod run;
pub mod silver;
pub mod source;

use std::time::Duration;

pub use run::{EmbeddedOptions, run_embedded, run_loop, run_once};

/// Errors of ingest.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input: configuration, arguments, models.
    #[error("{0}")]
    Invalid(String),
    /// A value from a source could not be decoded.
    #[error("{0}")]
    Decode(String),
    /// MySQL or MariaDB.
    #[error("mysql: {0}")]
    Mysql(#[from] mysql_async::Error),
    /// PostgreSQL.
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// The lake.
    #[error("{0}")]
    Lake(#[from] crate::lake::Error),
    /// DataFusion while transforming.
    #[error("{0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    /// Arrow while building batches.
    #[error("{0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    /// Some tables or sources failed; the others were ingested.
    #[error("ingest failed for {}", .0.join(", "))]
    Failed(Vec<String>),
}

/// Result of ingest operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A layer of the lake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Layer {
    /// Sources as they are.
    Bronze,
    /// Cleaned, one row per business key.
    Silver,
    /// The served models.
    Gold,
}

impl std::fmt::Display for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Layer::Bronze => "bronze",
            Layer::Silver => "silver",
            Layer::Gold => "gold",
        })
    }
}

impl std::str::FromStr for Layer {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_lowercase().as_str() {
            "bronze" => Ok(Layer::Bronze),
            "silver" => Ok(Layer::Silver),
            "gold" => Ok(Layer::Gold),
            other => Err(format!(
                "unknown layer \"{other}\": expected bronze, silver or gold"
            )),
        }
    }
}

/// How a run goes.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Only this layer; all three in order when `None`.
    pub layer: Option<Layer>,
    /// Tables processed at once.
    pub parallelism: usize,
    /// Attempts after the first failure of a table or source.
    pub retries: u32,
    /// First backoff; doubled at each attempt.
    pub backoff: Duration,
    /// Rows per record batch read from a source.
    pub batch_rows: usize,
    /// Lake path segment (`ikhospital`).
    pub domain: String,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            layer: None,
            parallelism: 4,
            retries: 3,
            backoff: Duration::from_secs(1),
            batch_rows: 65_536,
            domain: "ikhospital".to_string(),
        }
    }
}

impl IngestOptions {
    /// Options from the `ingest:` section (parallelism, retries, domain), defaults elsewhere.
    pub fn from_spec(spec: Option<&crate::config::ingest::IngestSpec>) -> IngestOptions {
        let mut options = IngestOptions::default();
        if let Some(spec) = spec {
            if let Some(parallelism) = spec.parallelism {
                options.parallelism = parallelism.max(1);
            }
            if let Some(retries) = spec.retries {
                options.retries = retries;
            }
            if let Some(domain) = &spec.domain {
                options.domain = domain.clone();
            }
        }
        options
    }

    /// True when `layer` runs.
    pub fn runs(&self, layer: Layer) -> bool {
        self.layer.is_none_or(|only| only == layer)
    }
}

/// What happened to one table in one layer.
#[derive(Debug, Clone)]
pub struct TableReport {
    /// The layer.
    pub layer: Layer,
    /// Path below the lake root (`bronze/mysql/ikhospital/events`).
    pub table: String,
    /// Rows read from the input (source rows for bronze, bronze rows for silver, result rows
    /// for gold).
    pub rows: u64,
    /// Wall time of the table.
    pub elapsed: Duration,
    /// The Delta version committed; `None` when nothing changed.
    pub version: Option<u64>,
    /// How it was loaded (`snapshot`, `incremental by ID after 6000`, `merge`, `rebuild`, ...).
    pub mode: String,
}

impl TableReport {
    /// Rows per second of wall time.
    pub fn rows_per_second(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.rows as f64 / secs
        } else {
            0.0
        }
    }
}

/// What a run did: one entry per table and layer, and what failed.
#[derive(Debug, Clone, Default)]
pub struct IngestReport {
    /// Tables processed, in completion order.
    pub tables: Vec<TableReport>,
    /// `what: why` of every table or source that failed after its retries.
    pub failures: Vec<String>,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl IngestReport {
    /// Total rows of a layer.
    pub fn rows(&self, layer: Layer) -> u64 {
        self.tables
            .iter()
            .filter(|t| t.layer == layer)
            .map(|t| t.rows)
            .sum()
    }

    /// The report of one table (`silver/ikhospital/events`).
    pub fn table(&self, path: &str) -> Option<&TableReport> {
        self.tables.iter().find(|t| t.table == path)
    }

    /// `Err(Error::Failed)` naming what failed, when anything did.
    pub fn into_result(self) -> Result<IngestReport> {
        if self.failures.is_empty() {
            Ok(self)
        } else {
            Err(Error::Failed(self.failures))
        }
    }

    /// A human-readable table of the run, one line per table.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for t in &self.tables {
            let version = t
                .version
                .map_or_else(|| "unchanged".to_string(), |v| format!("v{v}"));
            out.push_str(&format!(
                "{:<40} {:>10} rows {:>8.2}s {:>12.0} rows/s  {:<10} {}\n",
                t.table,
                t.rows,
                t.elapsed.as_secs_f64(),
                t.rows_per_second(),
                version,
                t.mode
            ));
        }
        for failure in &self.failures {
            out.push_str(&format!("FAILED {failure}\n"));
        }
        out.push_str(&format!(
            "bronze {} rows, silver {} rows, gold {} rows in {:.2}s",
            self.rows(Layer::Bronze),
            self.rows(Layer::Silver),
            self.rows(Layer::Gold),
            self.elapsed.as_secs_f64()
        ));
        out
    }
}

/// Lake paths of the three layers.
#[derive(Debug, Clone)]
pub struct LakeLayout {
    /// The lake root.
    pub root: crate::lake::StorageLocation,
    /// The data set's path segment (`ikhospital`).
    pub domain: String,
}

impl LakeLayout {
    /// `bronze/<source>/<domain>/<table>`.
    pub fn bronze_path(&self, source: &str, table: &str) -> String {
        format!("bronze/{source}/{}/{table}", self.domain)
    }

    /// `silver/<domain>/<table>`.
    pub fn silver_path(&self, table: &str) -> String {
        format!("silver/{}/{table}", self.domain)
    }

    /// `gold/<domain>/<table>`.
    pub fn gold_path(&self, table: &str) -> String {
        format!("gold/{}/{table}", self.domain)
    }

    /// The location of a path below the root.
    pub fn location(&self, path: &str) -> Result<crate::lake::StorageLocation> {
        Ok(self.root.join(path)?)
    }
}

/// `ID_PATIENT` → `id_patient`, `dateOfService` → `date_of_service`, `Brand Name` →
/// `brand_name`: the silver and gold column names.
pub fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let chars: Vec<char> = name.chars().collect();
    for (idx, &c) in chars.iter().enumerate() {
        if c.is_alphanumeric() {
            let prev = idx.checked_sub(1).and_then(|i| chars.get(i)).copied();
            let next = chars.get(idx + 1).copied();
            let boundary = c.is_uppercase()
                && prev.is_some_and(|p| {
                    p.is_lowercase()
                        || p.is_ascii_digit()
                        || (p.is_uppercase() && next.is_some_and(|n| n.is_lowercase()))
                });
            if boundary && !out.ends_with('_') && !out.is_empty() {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    let trimmed = out.trim_end_matches('_');
    if trimmed.is_empty() {
        "column".to_string()
    } else {
        trimmed.to_string()
    }
}

/// Quotes an identifier for DataFusion SQL.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_names() {
        assert_eq!(snake_case("ID_PATIENT"), "id_patient");
        assert_eq!(snake_case("DATE_OF_SERVICE"), "date_of_service");
        assert_eq!(snake_case("brand_name"), "brand_name");
        assert_eq!(snake_case("dateOfService"), "date_of_service");
        assert_eq!(snake_case("HTTPServer"), "http_server");
        assert_eq!(snake_case("Brand Name"), "brand_name");
        assert_eq!(snake_case("ID"), "id");
        assert_eq!(snake_case("UPDATED_AT"), "updated_at");
    }

    #[test]
    fn layers_parse() {
        assert_eq!("Silver".parse::<Layer>().unwrap(), Layer::Silver);
        assert!("platinum".parse::<Layer>().is_err());
        let options = IngestOptions {
            layer: Some(Layer::Gold),
            ..IngestOptions::default()
        };
        assert!(options.runs(Layer::Gold) && !options.runs(Layer::Bronze));
    }
}
