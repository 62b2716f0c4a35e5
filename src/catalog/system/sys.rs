//! `sys`: the server's own tables, visible only with an explicit grant on schema `sys` (a
//! database-wide grant does not cover it).

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::Result;

use super::rows::{Col, V, build, schema};
pub use crate::audit::{AuditLog, AuditRecord};
use crate::catalog::registry::TableStatus;
use crate::catalog::session::{GeneratedSchema, SessionCatalog, SystemTableDef};

/// The `sys` schema: governed, so each table is visible only where the policy grants it.
pub static SCHEMA: GeneratedSchema = GeneratedSchema {
    name: crate::policy::SYSTEM_SCHEMA,
    tables: TABLES,
    empty: &[],
    searched_first: false,
    governed: true,
};

/// The `sys` tables.
pub static TABLES: &[SystemTableDef] = &[
    SystemTableDef {
        name: "audit_log",
        schema: audit_log_schema,
        rows: audit_log,
    },
    SystemTableDef {
        name: "lake_tables",
        schema: lake_tables_schema,
        rows: lake_tables,
    },
    SystemTableDef {
        name: "delta_features",
        schema: delta_features_schema,
        rows: delta_features,
    },
    SystemTableDef {
        name: "stream_sources",
        schema: stream_sources_schema,
        rows: stream_sources,
    },
    SystemTableDef {
        name: "ingest_runs",
        schema: ingest_runs_schema,
        rows: ingest_runs,
    },
];

fn audit_log_schema() -> SchemaRef {
    schema(&[
        ("time", Col::TimestampTz),
        ("session_id", Col::Int4),
        ("query_id", Col::Int8),
        ("user", Col::Text),
        ("client_addr", Col::Text),
        ("application_name", Col::Text),
        ("kind", Col::Text),
        ("statement", Col::Text),
        ("tables", Col::TextArray),
        ("columns", Col::TextArray),
        ("row_filters", Col::TextArray),
        ("masks", Col::TextArray),
        ("versions", Col::TextArray),
        ("rows", Col::Int8),
        ("duration_ms", Col::Float4),
        ("result_cache", Col::Text),
        ("outcome", Col::Text),
        ("sqlstate", Col::Text),
    ])
}

fn audit_log(session: &SessionCatalog) -> Result<RecordBatch> {
    let rows: Vec<Vec<V>> = session
        .system()
        .audit
        .recent()
        .into_iter()
        .map(|r| {
            vec![
                r.time_micros.into(),
                r.session_id.into(),
                (r.query_id as i64).into(),
                r.user.into(),
                r.client_addr.into(),
                r.application_name.into(),
                r.kind.into(),
                r.statement.into(),
                V::SL(r.tables),
                V::SL(r.columns),
                V::SL(r.row_filters),
                V::SL(r.masks),
                V::SL(r.versions),
                (r.rows as i64).into(),
                V::F(r.duration_ms),
                r.result_cache.into(),
                r.outcome.into(),
                r.sqlstate.into(),
            ]
        })
        .collect();
    build(&audit_log_schema(), &rows)
}

fn lake_tables_schema() -> SchemaRef {
    schema(&[
        ("schema_name", Col::Name),
        ("table_name", Col::Name),
        ("location", Col::Text),
        ("format", Col::Text),
        ("version", Col::Int8),
        ("n_files", Col::Int8),
        ("status", Col::Text),
        ("committed_at", Col::TimestampTz),
        ("age_seconds", Col::Float8),
        ("reader_features", Col::TextArray),
    ])
}

fn lake_tables(session: &SessionCatalog) -> Result<RecordBatch> {
    let pinned = session.pinned();
    let now_ms = chrono::Utc::now().timestamp_millis();
    let rows: Vec<Vec<V>> = pinned
        .catalog
        .tables
        .values()
        .map(|entry| {
            let (version, n_files, status, committed, features) = match &entry.status {
                TableStatus::Ready(ready) => (
                    ready.version.map(|v| v as i64).into(),
                    (ready.n_files as i64).into(),
                    "ready".to_string(),
                    ready.committed_at_ms,
                    V::SL(ready.reader_features.clone()),
                ),
                TableStatus::Broken(reason) => {
                    (V::Null, V::Null, format!("broken: {reason}"), None, V::Null)
                }
            };
            vec![
                entry.schema.clone().into(),
                entry.name.clone().into(),
                entry.location.clone().into(),
                format!("{:?}", entry.format).to_lowercase().into(),
                version,
                n_files,
                status.into(),
                committed.map_or(V::Null, |ms| V::I(ms * 1000)),
                committed.map_or(V::Null, |ms| V::F((now_ms - ms) as f64 / 1000.0)),
                features,
            ]
        })
        .collect();
    build(&lake_tables_schema(), &rows)
}

fn delta_features_schema() -> SchemaRef {
    schema(&[
        ("feature", Col::Text),
        ("kind", Col::Text),
        ("reading", Col::Text),
        ("reason", Col::Text),
    ])
}

/// The Delta reader profile ([`crate::lake::features::PROFILE`]): per table feature, whether a
/// table that needs it is served.
fn delta_features(_session: &SessionCatalog) -> Result<RecordBatch> {
    let rows: Vec<Vec<V>> = crate::lake::features::PROFILE
        .iter()
        .map(|f| {
            vec![
                f.name.to_string().into(),
                f.kind.to_string().into(),
                f.reading.to_string().into(),
                f.why.to_string().into(),
            ]
        })
        .collect();
    build(&delta_features_schema(), &rows)
}

fn stream_sources_schema() -> SchemaRef {
    schema(&[
        ("source", Col::Text),
        ("last_commit", Col::TimestampTz),
        ("events_per_second", Col::Float8),
        ("accepted", Col::Int8),
        ("duplicates", Col::Int8),
        ("dead_lettered", Col::Int8),
        ("queued", Col::Int8),
    ])
}

/// The stream's sources in this process ([`crate::metrics::status`]): when each last committed
/// events, its rate over the last minute, its totals, and the writer's queue (shared by all).
fn stream_sources(_session: &SessionCatalog) -> Result<RecordBatch> {
    let queued = crate::metrics::global().stream_queued();
    let now_ms = chrono::Utc::now().timestamp_millis();
    let rows: Vec<Vec<V>> = crate::metrics::status()
        .sources()
        .into_iter()
        .map(|(source, s)| {
            vec![
                source.into(),
                s.last_commit_ms.map_or(V::Null, |ms| V::I(ms * 1000)),
                V::F(s.events_per_second(now_ms)),
                V::I(s.accepted as i64),
                V::I(s.duplicates as i64),
                V::I(s.dead_lettered as i64),
                V::I(queued),
            ]
        })
        .collect();
    build(&stream_sources_schema(), &rows)
}

fn ingest_runs_schema() -> SchemaRef {
    schema(&[
        ("table_path", Col::Text),
        ("layer", Col::Text),
        ("finished_at", Col::TimestampTz),
        ("rows", Col::Int8),
        ("duration_seconds", Col::Float8),
        ("outcome", Col::Text),
        ("detail", Col::Text),
        ("version", Col::Int8),
    ])
}

/// The last ingest of every table in this process ([`crate::metrics::status`]).
fn ingest_runs(_session: &SessionCatalog) -> Result<RecordBatch> {
    let rows: Vec<Vec<V>> = crate::metrics::status()
        .ingest_runs()
        .into_iter()
        .map(|(path, run)| {
            vec![
                path.into(),
                run.layer.into(),
                V::I(run.finished_ms * 1000),
                V::I(run.rows as i64),
                V::F(run.seconds),
                run.outcome.into(),
                run.detail.into(),
                run.version.map_or(V::Null, |v| V::I(v as i64)),
            ]
        })
        .collect();
    build(&ingest_runs_schema(), &rows)
}
