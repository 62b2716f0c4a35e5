//! `ingest:` of `lakehouse.yaml`: which source databases feed bronze, and how often.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{DurationSpec, EnvString};

/// `ingest:` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSpec {
    /// When set, `lakehouse serve` runs the ingest on this schedule (e.g. `5m`).
    pub every: Option<DurationSpec>,
    /// Tables copied at once.
    pub parallelism: Option<usize>,
    /// Source databases.
    pub sources: Vec<SourceSpec>,
}

/// One source database.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// Name used in the lake layout: `bronze/<name>/<database>/<table>`.
    pub name: String,
    /// `mysql` or `postgres`.
    pub kind: SourceKind,
    /// Connection URL (use `${ENV}`; it holds a password).
    pub url: EnvString,
    /// Database to copy (`ikhospital`).
    #[serde(default = "default_database")]
    pub database: String,
    /// PostgreSQL schemas to copy; default all non-system schemas.
    #[serde(default)]
    pub schemas: Vec<String>,
    /// Per-table settings, keyed by table name.
    #[serde(default)]
    pub tables: BTreeMap<String, SourceTableSpec>,
}

/// Kind of source database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// MySQL or MariaDB.
    Mysql,
    /// PostgreSQL.
    Postgres,
}

/// Per-table ingest settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceTableSpec {
    /// Monotonic column for incremental loads; inferred for append-only tables when omitted.
    pub watermark: Option<String>,
    /// Business key columns for the silver merge.
    pub key: Vec<String>,
    /// Skip this table.
    pub skip: bool,
}

fn default_database() -> String {
    "ikhospital".to_string()
}
