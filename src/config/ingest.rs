//! `ingest:` of `lakehouse.yaml`: which source databases feed bronze, and how often.
//!
//! ```yaml
//! ingest:
//!   every: 5m              # `lakehouse serve` (and `lakehouse ingest` without --once) schedule
//!   parallelism: 4         # tables copied at once
//!   retries: 3             # attempts after the first failure of a table, with backoff
//!   domain: ikhospital     # lake path segment: bronze/<source>/<domain>/<table>, silver/<domain>/...
//!   sources:
//!     - name: mysql        # bronze/mysql/ikhospital/<table>
//!       kind: mysql
//!       url: ${IKHOSPITAL_MYSQL_URL}
//!       database: ikhospital
//!       tables:
//!         events: { append_only: true }       # watermark: the auto-increment ID
//!         patient: { watermark: UPDATED_AT }  # new and changed rows
//!         doctors: { snapshot: true }         # full copy, deletes detected
//!     - name: postgres
//!       kind: postgres
//!       url: ${IKHOSPITAL_POSTGRES_URL}
//!       schemas: [pharmacy]                   # default: every non-system schema
//! ```
//!
//! Without per-table settings the load mode is inferred from the source: a timestamp column
//! named `UPDATED_AT` is a watermark; a table whose comment says `append-only` is loaded by its
//! auto-increment key; every other table is copied as a full snapshot.

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
    /// Attempts after the first failure of a table (or a source), with exponential backoff.
    pub retries: Option<u32>,
    /// Lake path segment of the data set (`ikhospital`).
    pub domain: Option<String>,
    /// Source databases.
    pub sources: Vec<SourceSpec>,
}

/// One source database.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// Name used in the lake layout: `bronze/<name>/<domain>/<table>`.
    pub name: String,
    /// `mysql` or `postgres`.
    pub kind: SourceKind,
    /// Connection URL (use `${ENV}`; it holds a password).
    pub url: EnvString,
    /// Database to copy (`ikhospital`); overrides the database of the URL.
    #[serde(default = "default_database")]
    pub database: String,
    /// PostgreSQL schemas to copy; default all non-system schemas.
    #[serde(default)]
    pub schemas: Vec<String>,
    /// Per-table settings, keyed by table name (as in the source).
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
    /// Monotonic column for incremental loads (new rows, and changed rows when it is an
    /// updated-at timestamp).
    pub watermark: Option<String>,
    /// Rows are only ever inserted: load incrementally by the auto-increment key.
    pub append_only: bool,
    /// Copy the whole table every run (catches updates and deletes).
    pub snapshot: bool,
    /// Business key columns for the silver merge (source or snake_case names).
    pub key: Vec<String>,
    /// Skip this table.
    pub skip: bool,
}

fn default_database() -> String {
    "ikhospital".to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let text = "every: 5m\nparallelism: 2\nretries: 1\nsources:\n  - name: mysql\n    kind: mysql\n    url: mysql://root@127.0.0.1/ikhospital\n    tables:\n      events: { append_only: true }\n      patient: { watermark: UPDATED_AT, key: [ID_PATIENT] }\n";
        let spec: IngestSpec = serde_norway::from_str(text).unwrap();
        assert_eq!(spec.sources.len(), 1);
        assert_eq!(spec.sources[0].database, "ikhospital");
        assert!(spec.sources[0].tables["events"].append_only);
        assert_eq!(
            spec.sources[0].tables["patient"].watermark.as_deref(),
            Some("UPDATED_AT")
        );
    }

    #[test]
    fn unknown_table_key_is_rejected() {
        let text = "sources:\n  - name: m\n    kind: mysql\n    url: x\n    tables:\n      events: { watermrk: ID }\n";
        assert!(serde_norway::from_str::<IngestSpec>(text).is_err());
    }
}
