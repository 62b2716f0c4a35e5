//! The benchmark's rows: gold tables built by the ingest's own code from generated data, the
//! same rows exported to Parquet for DuckDB and loaded into PostgreSQL with a DBA's indexes.
//!
//! A directory built once at a scale is reused by later runs at the same scale and seed (a
//! `bench-data.json` stamp records what is there), so repeated benchmarks skip the build.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider};
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::SinkExt;
use serde::{Deserialize, Serialize};

use crate::lake::StorageLocation;
use crate::lake::table::TableHandle;

/// Patients at scale 1.
pub const PATIENTS_AT_SCALE_1: f64 = 100_000.0;
/// Visits at scale 1.
pub const EVENTS_AT_SCALE_1: f64 = 10_000_000.0;

/// The gold tables the benchmark reads, with the primary key and the secondary indexes a DBA
/// would give each in PostgreSQL (join keys and dates).
pub const TABLES: &[(&str, &str, &[&str])] = &[
    ("dim_patient", "id_patient", &[]),
    ("dim_doctors", "id_doctor", &[]),
    ("dim_date", "date", &[]),
    ("dim_medicine", "id", &[]),
    (
        "fact_events",
        "id",
        &["id_patient", "id_doctor", "date_of_service"],
    ),
];

/// What a data directory holds, as recorded in its stamp.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stamp {
    /// Patients generated.
    pub patients: u64,
    /// Visits generated.
    pub events: u64,
    /// Generator seed.
    pub seed: u64,
    /// A fresh id per build: PostgreSQL is reloaded when it holds another build's rows.
    pub build_id: String,
}

/// One gold table as the benchmark knows it.
#[derive(Debug, Clone, Serialize)]
pub struct TableInfo {
    /// Table name (`fact_events`).
    pub name: String,
    /// Rows.
    pub rows: u64,
    /// Column names in order.
    pub columns: Vec<String>,
    /// The exported Parquet file DuckDB reads.
    pub parquet: PathBuf,
}

/// The prepared data set.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The lake root (holds `gold/ikhospital/...`).
    pub lake: PathBuf,
    /// What was generated.
    pub stamp: Stamp,
    /// The gold tables.
    pub tables: Vec<TableInfo>,
    /// Seconds spent building gold in this run (0 when reused).
    pub build_seconds: f64,
}

impl Dataset {
    /// The table named `name`.
    pub fn table(&self, name: &str) -> Option<&TableInfo> {
        self.tables.iter().find(|t| t.name == name)
    }
}

/// Patients and visits at a scale (at least one of each).
pub fn sizes(scale: f64) -> (u64, u64) {
    let patients = (PATIENTS_AT_SCALE_1 * scale).round().max(1.0) as u64;
    let events = (EVENTS_AT_SCALE_1 * scale).round().max(1.0) as u64;
    (patients, events)
}

/// Builds (or reuses) gold at `scale` under `dir/lake` and exports it to `dir/parquet`.
pub async fn prepare(dir: &Path, scale: f64, seed: u64) -> anyhow::Result<Dataset> {
    let (patients, events) = sizes(scale);
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = crate::config::absolute(dir);
    let lake = dir.join("lake");
    let parquet = dir.join("parquet");
    let stamp_path = dir.join("bench-data.json");
    let existing: Option<Stamp> = std::fs::read(&stamp_path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    let reusable = existing
        .as_ref()
        .is_some_and(|s| s.patients == patients && s.events == events && s.seed == seed)
        && TABLES
            .iter()
            .all(|(t, _, _)| parquet.join(format!("{t}.parquet")).is_file());
    let started = Instant::now();
    let stamp = match (reusable, existing) {
        (true, Some(stamp)) => stamp,
        _ => {
            // Only the directories this harness owns are replaced.
            for sub in [&lake, &parquet] {
                if sub.exists() {
                    std::fs::remove_dir_all(sub)
                        .with_context(|| format!("cannot remove {}", sub.display()))?;
                }
            }
            let _ = std::fs::remove_file(&stamp_path);
            std::fs::create_dir_all(&lake)?;
            std::fs::create_dir_all(&parquet)?;
            build_gold(&lake, patients, events, seed).await?;
            let ctx = floor_context(&lake).await?;
            for (table, _, _) in TABLES {
                let path = parquet.join(format!("{table}.parquet"));
                ctx.table(format!("dbo.{table}"))
                    .await?
                    .write_parquet(
                        &path.to_string_lossy(),
                        DataFrameWriteOptions::new().with_single_file_output(true),
                        None,
                    )
                    .await
                    .with_context(|| format!("exporting {table} to Parquet"))?;
            }
            let stamp = Stamp {
                patients,
                events,
                seed,
                build_id: uuid::Uuid::new_v4().to_string(),
            };
            std::fs::write(&stamp_path, serde_json::to_vec_pretty(&stamp)?)?;
            stamp
        }
    };
    let build_seconds = if reusable {
        0.0
    } else {
        started.elapsed().as_secs_f64()
    };
    let ctx = floor_context(&lake).await?;
    let mut tables = Vec::new();
    for (table, _, _) in TABLES {
        let df = ctx.table(format!("dbo.{table}")).await?;
        let columns = df
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let rows = df.count().await? as u64;
        tables.push(TableInfo {
            name: table.to_string(),
            rows,
            columns,
            parquet: parquet.join(format!("{table}.parquet")),
        });
    }
    Ok(Dataset {
        lake,
        stamp,
        tables,
        build_seconds,
    })
}

async fn build_gold(lake: &Path, patients: u64, events: u64, seed: u64) -> anyhow::Result<()> {
    let location = StorageLocation::parse(&lake.to_string_lossy(), BTreeMap::new())?;
    let report = crate::ingest::run_embedded(
        &location,
        None,
        &crate::ingest::EmbeddedOptions {
            patients,
            events,
            seed,
        },
        &crate::ingest::IngestOptions::default(),
    )
    .await
    .context("building the gold tables")?;
    report
        .into_result()
        .map_err(|err| anyhow::anyhow!("building the gold tables: {err}"))?;
    Ok(())
}

/// Bare DataFusion over the gold Delta tables (schema `dbo`): the same providers the server
/// scans, without the wire, the catalog tree or the policy. This is the benchmark's floor.
pub async fn floor_context(lake: &Path) -> anyhow::Result<SessionContext> {
    let mut config = SessionConfig::new().with_information_schema(false);
    config.options_mut().sql_parser.dialect = datafusion::config::Dialect::PostgreSQL;
    let ctx = SessionContext::new_with_config(config);
    let catalog = ctx
        .catalog("datafusion")
        .context("DataFusion has no default catalog")?;
    let dbo: Arc<dyn SchemaProvider> = Arc::new(MemorySchemaProvider::new());
    catalog.register_schema("dbo", dbo.clone())?;
    let root = StorageLocation::parse(&lake.to_string_lossy(), BTreeMap::new())?;
    for (table, _, _) in TABLES {
        let location = root.join(&format!("gold/ikhospital/{table}"))?;
        let handle = TableHandle::open(&location)
            .await
            .with_context(|| format!("opening gold table {table}"))?;
        handle.register_object_store(&ctx.state())?;
        dbo.register_table(table.to_string(), handle.provider().await?)?;
    }
    Ok(ctx)
}

/// The PostgreSQL type of an Arrow column.
fn pg_type(data_type: &DataType) -> &'static str {
    match data_type {
        DataType::Int8 | DataType::Int16 => "smallint",
        DataType::Int32 => "integer",
        DataType::Int64 => "bigint",
        DataType::Float32 => "real",
        DataType::Float64 => "double precision",
        DataType::Boolean => "boolean",
        DataType::Date32 | DataType::Date64 => "date",
        DataType::Timestamp(_, Some(_)) => "timestamptz",
        DataType::Timestamp(_, None) => "timestamp",
        _ => "text",
    }
}

fn is_text(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

/// Appends one batch as PostgreSQL CSV: text always quoted (so an empty string stays one), NULL
/// as nothing.
fn batch_csv(batch: &RecordBatch, out: &mut Vec<u8>) -> anyhow::Result<()> {
    let options = FormatOptions::default();
    let formatters = batch
        .columns()
        .iter()
        .map(|col| ArrayFormatter::try_new(col.as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()?;
    for row in 0..batch.num_rows() {
        for (idx, col) in batch.columns().iter().enumerate() {
            if idx > 0 {
                out.push(b',');
            }
            if col.is_null(row) {
                continue;
            }
            let text = match (is_text(col.data_type()), formatters.get(idx)) {
                (_, None) => continue,
                (true, _) => string_value(col.as_ref(), row),
                (false, Some(f)) => f.value(row).to_string(),
            };
            if is_text(col.data_type()) {
                out.push(b'"');
                out.extend_from_slice(text.replace('"', "\"\"").as_bytes());
                out.push(b'"');
            } else {
                out.extend_from_slice(text.as_bytes());
            }
        }
        out.push(b'\n');
    }
    Ok(())
}

fn string_value(col: &dyn Array, row: usize) -> String {
    match col.data_type() {
        DataType::Utf8 => col.as_string::<i32>().value(row).to_string(),
        DataType::LargeUtf8 => col.as_string::<i64>().value(row).to_string(),
        DataType::Utf8View => col.as_string_view().value(row).to_string(),
        _ => String::new(),
    }
}

/// What [`load_postgres`] did.
#[derive(Debug, Clone, Serialize)]
pub struct PgLoad {
    /// False when schema `bench` already held this build's rows.
    pub loaded: bool,
    /// Seconds spent loading, indexing and analysing.
    pub seconds: f64,
}

/// Loads the gold rows into schema `bench` of the PostgreSQL at `url`, with primary keys,
/// join-key and date indexes, then ANALYZE. Skipped when `bench` already holds this build.
pub async fn load_postgres(url: &str, data: &Dataset) -> anyhow::Result<PgLoad> {
    let started = Instant::now();
    let client = crate::bench::engine::connect_url(url).await?;
    let current: Option<String> = client
        .query_opt(
            "select build_id from bench.bench_stamp where to_regclass('bench.bench_stamp') is not null",
            &[],
        )
        .await
        .ok()
        .flatten()
        .map(|row| row.get(0));
    if current.as_deref() == Some(data.stamp.build_id.as_str()) {
        return Ok(PgLoad {
            loaded: false,
            seconds: 0.0,
        });
    }
    client
        .batch_execute("drop schema if exists bench cascade; create schema bench")
        .await
        .context("creating schema bench in PostgreSQL")?;
    let ctx = floor_context(&data.lake).await?;
    for (table, primary_key, indexes) in TABLES {
        let df = ctx.table(format!("dbo.{table}")).await?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let columns: Vec<String> = schema
            .fields()
            .iter()
            .map(|f| format!("\"{}\" {}", f.name(), pg_type(f.data_type())))
            .collect();
        client
            .batch_execute(&format!(
                "create table bench.\"{table}\" ({})",
                columns.join(", ")
            ))
            .await
            .with_context(|| format!("creating bench.{table}"))?;
        let sink = client
            .copy_in(&format!("copy bench.\"{table}\" from stdin (format csv)"))
            .await?;
        futures::pin_mut!(sink);
        let mut stream = df.execute_stream().await?;
        let mut buffer = Vec::with_capacity(1 << 20);
        while let Some(batch) = futures::StreamExt::next(&mut stream).await {
            batch_csv(&batch?, &mut buffer)?;
            if buffer.len() >= 1 << 20 {
                sink.send(bytes::Bytes::from(std::mem::take(&mut buffer)))
                    .await?;
            }
        }
        if !buffer.is_empty() {
            sink.send(bytes::Bytes::from(buffer)).await?;
        }
        sink.finish()
            .await
            .with_context(|| format!("copying rows into bench.{table}"))?;
        client
            .batch_execute(&format!(
                "alter table bench.\"{table}\" add primary key (\"{primary_key}\")"
            ))
            .await
            .with_context(|| format!("primary key of bench.{table}"))?;
        for column in *indexes {
            client
                .batch_execute(&format!("create index on bench.\"{table}\" (\"{column}\")"))
                .await?;
        }
        client
            .batch_execute(&format!("analyze bench.\"{table}\""))
            .await?;
    }
    client
        .batch_execute(&format!(
            "create table bench.bench_stamp (build_id text); \
             insert into bench.bench_stamp values ('{}')",
            data.stamp.build_id.replace('\'', "''")
        ))
        .await?;
    let expected: u64 = data.tables.iter().map(|t| t.rows).sum();
    let mut loaded = 0u64;
    for (table, _, _) in TABLES {
        let row = client
            .query_one(&format!("select count(*) from bench.\"{table}\""), &[])
            .await?;
        loaded += row.get::<_, i64>(0) as u64;
    }
    if loaded != expected {
        bail!("PostgreSQL holds {loaded} rows after the load, the lake {expected}");
    }
    Ok(PgLoad {
        loaded: true,
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Date32Array, Int32Array, StringArray};
    use datafusion::arrow::datatypes::{Field, Schema};

    #[test]
    fn csv_keeps_empty_strings_apart_from_nulls() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int32, true),
            Field::new("name", DataType::Utf8, true),
            Field::new("day", DataType::Date32, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int32Array::from(vec![Some(1), None])),
                Arc::new(StringArray::from(vec![Some("O\"Brien, A"), Some("")])),
                Arc::new(Date32Array::from(vec![Some(19358), None])),
            ],
        )
        .unwrap();
        let mut out = Vec::new();
        batch_csv(&batch, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "1,\"O\"\"Brien, A\",2023-01-01\n,\"\",\n"
        );
    }

    #[test]
    fn scale_one_is_the_issue_size() {
        assert_eq!(sizes(1.0), (100_000, 10_000_000));
        assert_eq!(sizes(0.0005), (50, 5_000));
    }
}
