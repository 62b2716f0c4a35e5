//! Bronze: each source table copied as it is into `bronze/<source>/<domain>/<table>`, with
//! `_ingested_at`, `_source` and `_batch_id`.
//!
//! Exactly once: a table gets at most one commit per run, and that commit carries the batch
//! number as a Delta application transaction (`lakehouse.bronze.append` or
//! `lakehouse.bronze.snapshot`, version = batch id). The watermark of an incremental table is
//! the highest value of its watermark column in the committed data itself, so data and
//! watermark move together by construction: a crash before the commit leaves only unreferenced
//! files, a crash after it leaves the new version, and the next run continues from whichever
//! is there.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;

use super::plan::{LoadMode, TablePlan};
use super::source::{ReadScope, Source, Watermark};
use super::{
    Error, IngestOptions, LakeLayout, Layer, Result, TableReport, quote_ident, snake_case,
};
use crate::lake::StorageLocation;
use crate::lake::write::{self, StreamMode, WriteOptions};

/// Application id of incremental bronze commits; version = batch id.
pub const APPEND_APP: &str = "lakehouse.bronze.append";
/// Application id of snapshot bronze commits; version = batch id.
pub const SNAPSHOT_APP: &str = "lakehouse.bronze.snapshot";
/// Prefix of the bronze table description that records the silver key (configured, else the
/// source primary key; comma-separated), for silver runs that do not see the source. Delta
/// refuses unknown table properties, so the description carries it.
pub const KEY_DESCRIPTION_PREFIX: &str = "lakehouse key: ";
/// Separates the silver key from the source's primary key in the description.
pub const PRIMARY_KEY_SEPARATOR: &str = "; primary key: ";

/// The (silver key, source primary key) recorded in a bronze table's description.
pub fn keys_from_description(description: &str) -> (Vec<String>, Vec<String>) {
    let split = |text: &str| -> Vec<String> {
        text.split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(snake_case)
            .collect()
    };
    let Some(rest) = description.strip_prefix(KEY_DESCRIPTION_PREFIX) else {
        return (Vec::new(), Vec::new());
    };
    match rest.split_once(PRIMARY_KEY_SEPARATOR) {
        Some((key, primary)) => (split(key), split(primary)),
        None => (split(rest), Vec::new()),
    }
}

/// Ingestion metadata columns, in order.
pub const METADATA_COLUMNS: [&str; 3] = ["_ingested_at", "_source", "_batch_id"];

/// The last batch ids of a bronze table: (latest of any kind, latest snapshot).
pub async fn batch_ids(location: &StorageLocation) -> Result<(i64, i64)> {
    let append = write::app_transaction_version(location, APPEND_APP)
        .await?
        .unwrap_or(0);
    let snapshot = write::app_transaction_version(location, SNAPSHOT_APP)
        .await?
        .unwrap_or(0);
    Ok((append.max(snapshot), snapshot))
}

/// Copies one table into bronze: all of it (snapshot) or the rows past the watermark.
pub async fn load_table(
    source: &dyn Source,
    plan: &TablePlan,
    layout: &LakeLayout,
    options: &IngestOptions,
) -> Result<TableReport> {
    let started = Instant::now();
    let path = layout.bronze_path(source.name(), &plan.info.lake_name);
    let location = layout.location(&path)?;
    let (last_batch, _) = batch_ids(&location).await?;
    let batch_id = last_batch + 1;
    let (scope, mode_text) = match &plan.mode {
        LoadMode::Snapshot => (ReadScope::All, "snapshot".to_string()),
        LoadMode::Incremental { column } => {
            let after = max_watermark(&location, column).await?;
            let text = match &after {
                Some(w) => format!("incremental by {column} after {}", w.to_json()),
                None => format!("incremental by {column} (first load)"),
            };
            (
                ReadScope::After {
                    column: column.clone(),
                    after,
                },
                text,
            )
        }
    };
    let mut stream = source.read(&plan.info, &scope, options.batch_rows).await?;
    // An incremental load with no new row commits nothing: the table keeps its version.
    let first = loop {
        match stream.next().await.transpose()? {
            Some(batch) if batch.num_rows() == 0 => continue,
            other => break other,
        }
    };
    // (A first load still creates the table, empty, so that silver and gold find it.)
    if first.is_none() && plan.mode != LoadMode::Snapshot && last_batch > 0 {
        return Ok(TableReport {
            layer: Layer::Bronze,
            table: path,
            rows: 0,
            elapsed: started.elapsed(),
            version: None,
            mode: mode_text,
        });
    }
    let source_schema = plan.info.arrow_schema();
    let schema = with_metadata_schema(&source_schema);
    let source_label = format!("{}:{}.{}", source.name(), plan.info.schema, plan.info.name);
    let ingested_at = chrono::Utc::now().timestamp_micros();
    let n_rows = Arc::new(AtomicU64::new(0));
    let counter = n_rows.clone();
    let out_schema = schema.clone();
    let batches = futures::stream::iter(first.map(Ok))
        .chain(stream)
        .map(move |batch| {
            let batch = batch?;
            counter.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
            add_metadata(&out_schema, &batch, ingested_at, &source_label, batch_id)
        })
        .map(|r| r.map_err(|err| datafusion::error::DataFusionError::External(Box::new(err))));
    let stream = Box::pin(RecordBatchStreamAdapter::new(schema, batches));
    let (app, stream_mode) = match plan.mode {
        LoadMode::Snapshot => (SNAPSHOT_APP, StreamMode::Overwrite),
        LoadMode::Incremental { .. } => (APPEND_APP, StreamMode::Append),
    };
    let write_options = WriteOptions {
        partition_columns: Vec::new(),
        app_transaction: Some((app.to_string(), batch_id)),
        merge_schema: true,
        commit_metadata: vec![
            ("lakehouse.layer".to_string(), serde_json::json!("bronze")),
            ("lakehouse.batchId".to_string(), serde_json::json!(batch_id)),
            ("lakehouse.mode".to_string(), serde_json::json!(mode_text)),
        ],
    };
    let primary_key: Vec<String> = plan
        .info
        .primary_key
        .iter()
        .map(|k| snake_case(k))
        .collect();
    let description = format!(
        "{KEY_DESCRIPTION_PREFIX}{}{PRIMARY_KEY_SEPARATOR}{}",
        plan.key.join(","),
        primary_key.join(",")
    );
    let version = write::write_stream(
        &location,
        stream,
        stream_mode,
        &write_options,
        Some(&description),
    )
    .await?;
    Ok(TableReport {
        layer: Layer::Bronze,
        table: path,
        rows: n_rows.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
        version: Some(version),
        mode: mode_text,
    })
}

/// The source schema followed by the three metadata columns.
pub fn with_metadata_schema(source: &SchemaRef) -> SchemaRef {
    let mut fields: Vec<Field> = source.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(
        METADATA_COLUMNS[0],
        DataType::Timestamp(
            TimeUnit::Microsecond,
            Some(Arc::from(super::source::types::UTC)),
        ),
        true,
    ));
    fields.push(Field::new(METADATA_COLUMNS[1], DataType::Utf8, true));
    fields.push(Field::new(METADATA_COLUMNS[2], DataType::Int64, true));
    Arc::new(Schema::new(fields))
}

fn add_metadata(
    schema: &SchemaRef,
    batch: &RecordBatch,
    ingested_at: i64,
    source: &str,
    batch_id: i64,
) -> Result<RecordBatch> {
    let n = batch.num_rows();
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    columns.push(Arc::new(
        TimestampMicrosecondArray::from(vec![ingested_at; n])
            .with_timezone(super::source::types::UTC),
    ));
    columns.push(Arc::new(StringArray::from(vec![source; n])));
    columns.push(Arc::new(Int64Array::from(vec![batch_id; n])));
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// The highest value of `column` in the bronze table; `None` when there is no table or row.
pub async fn max_watermark(location: &StorageLocation, column: &str) -> Result<Option<Watermark>> {
    let handle = match crate::lake::table::TableHandle::open(location).await {
        Ok(handle) => handle,
        Err(crate::lake::Error::NotATable { .. }) => return Ok(None),
        Err(err) => return Err(err.into()),
    };
    let ctx = datafusion::prelude::SessionContext::new();
    handle.register_object_store(&ctx.state())?;
    ctx.register_table("bronze", handle.provider().await?)?;
    let batches = ctx
        .sql(&format!("SELECT max({}) FROM bronze", quote_ident(column)))
        .await?
        .collect()
        .await?;
    let Some(batch) = batches.first() else {
        return Ok(None);
    };
    if batch.num_rows() == 0 {
        return Ok(None);
    }
    let value = ScalarValue::try_from_array(batch.column(0), 0)?;
    Ok(match value {
        ScalarValue::Int8(Some(v)) => Some(Watermark::Int(i64::from(v))),
        ScalarValue::Int16(Some(v)) => Some(Watermark::Int(i64::from(v))),
        ScalarValue::Int32(Some(v)) => Some(Watermark::Int(i64::from(v))),
        ScalarValue::Int64(Some(v)) => Some(Watermark::Int(v)),
        ScalarValue::Date32(Some(v)) => Some(Watermark::Date(v)),
        ScalarValue::TimestampMicrosecond(Some(v), _) => Some(Watermark::Timestamp(v)),
        ScalarValue::Utf8(Some(v))
        | ScalarValue::Utf8View(Some(v))
        | ScalarValue::LargeUtf8(Some(v)) => Some(Watermark::Text(v)),
        value if value.is_null() => None,
        other => {
            return Err(Error::Invalid(format!(
                "watermark column \"{column}\" has unsupported type {}",
                other.data_type()
            )));
        }
    })
}
