//! Gold: every `sql/gold/*.sql` model materialised as `gold/<domain>/<name>`, in dependency
//! order, by one overwrite commit each.
//!
//! A model is rebuilt only when it or one of its inputs changed: the commit carries
//! `lakehouse.gold` = a hash of the model text and the versions of the tables it read, and a
//! run whose hash matches the table's leaves it alone (no new version for the server to pick
//! up). Overwrites are idempotent, so a crash at any point is repaired by the next run.

use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider};
use datafusion::prelude::SessionContext;
use sha2::{Digest, Sha256};

use super::models::GoldModel;
use super::{Error, LakeLayout, Layer, Result, TableReport, quote_ident};
use crate::lake::table::TableHandle;
use crate::lake::write::{self, StreamMode, WriteOptions};

/// Application id of gold commits; version = hash of the model and its inputs' versions.
pub const GOLD_APP: &str = "lakehouse.gold";

/// Builds the gold models in order; returns one result per model (a failed model does not stop
/// the others, but its dependents then read its previous version).
pub async fn build(
    layout: &LakeLayout,
    models: &[GoldModel],
) -> Result<Vec<(String, Result<TableReport>)>> {
    let ctx = SessionContext::new();
    let catalog = ctx
        .catalog("datafusion")
        .ok_or_else(|| Error::Invalid("no default DataFusion catalog".to_string()))?;
    let silver: Arc<dyn SchemaProvider> = Arc::new(MemorySchemaProvider::new());
    let gold: Arc<dyn SchemaProvider> = Arc::new(MemorySchemaProvider::new());
    catalog.register_schema("silver", silver.clone())?;
    catalog.register_schema("gold", gold.clone())?;
    let mut versions = std::collections::BTreeMap::new();
    for (layer, schema) in [("silver", &silver), ("gold", &gold)] {
        let prefix = layout.location(&format!("{layer}/{}", layout.domain))?;
        for name in crate::lake::discover_tables(&prefix).await? {
            let handle = TableHandle::open(&prefix.join(&name)?).await?;
            handle.register_object_store(&ctx.state())?;
            schema.register_table(name.clone(), handle.provider().await?)?;
            versions.insert((layer.to_string(), name), handle.version());
        }
    }
    let mut results = Vec::new();
    for model in models {
        let path = layout.gold_path(&model.name);
        let result = build_model(layout, &ctx, model, &versions).await;
        if let Ok(report) = &result
            && let Some(version) = report.version
        {
            // Dependents read what was just written.
            let handle = TableHandle::open(&layout.location(&path)?).await?;
            handle.register_object_store(&ctx.state())?;
            gold.deregister_table(&model.name)?;
            gold.register_table(model.name.clone(), handle.provider().await?)?;
            versions.insert(("gold".to_string(), model.name.clone()), version);
        }
        results.push((path, result));
    }
    Ok(results)
}

async fn build_model(
    layout: &LakeLayout,
    ctx: &SessionContext,
    model: &GoldModel,
    versions: &std::collections::BTreeMap<(String, String), u64>,
) -> Result<TableReport> {
    let started = Instant::now();
    let path = layout.gold_path(&model.name);
    let location = layout.location(&path)?;
    let mut hasher = Sha256::new();
    hasher.update(model.sql.as_bytes());
    for input in &model.inputs {
        let version = versions.get(input).ok_or_else(|| {
            Error::Invalid(format!(
                "gold model {}: table \"{}.{}\" is not in the lake",
                model.file.display(),
                input.0,
                input.1
            ))
        })?;
        hasher.update(format!("\n{}.{}@{version}", input.0, input.1).as_bytes());
    }
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let stamp = i64::from_be_bytes(first) & i64::MAX;
    if write::app_transaction_version(&location, GOLD_APP).await? == Some(stamp) {
        return Ok(TableReport {
            layer: Layer::Gold,
            table: path,
            rows: 0,
            elapsed: started.elapsed(),
            version: None,
            mode: "inputs unchanged".to_string(),
        });
    }
    let frame = ctx
        .sql(&model.sql)
        .await
        .map_err(|err| Error::Invalid(format!("gold model {}: {err}", model.file.display())))?;
    // Plain Arrow types for the served tables (Utf8, not the Utf8View DataFusion reads into).
    let casts: Vec<String> = frame
        .schema()
        .fields()
        .iter()
        .map(|f| {
            let name = quote_ident(f.name());
            match f.data_type() {
                DataType::Utf8View | DataType::LargeUtf8 => {
                    format!("CAST({name} AS VARCHAR) AS {name}")
                }
                DataType::BinaryView | DataType::LargeBinary => {
                    format!("CAST({name} AS BYTEA) AS {name}")
                }
                _ => name,
            }
        })
        .collect();
    let frame = frame.select_exprs(&casts.iter().map(String::as_str).collect::<Vec<_>>())?;
    let target_schema = Arc::new(Schema::new(
        frame
            .schema()
            .fields()
            .iter()
            .map(|f| {
                let data_type = match f.data_type() {
                    DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
                    other => other.clone(),
                };
                Field::new(f.name(), data_type, true)
            })
            .collect::<Vec<_>>(),
    ));
    let stream = frame.execute_stream().await?;
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = counter.clone();
    let schema_for_cast = target_schema.clone();
    let stream = futures::StreamExt::map(stream, move |batch| {
        let batch = batch?;
        counted.fetch_add(
            batch.num_rows() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        let columns = batch
            .columns()
            .iter()
            .zip(schema_for_cast.fields())
            .map(|(c, f)| datafusion::arrow::compute::cast(c, f.data_type()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(datafusion::arrow::record_batch::RecordBatch::try_new(
            schema_for_cast.clone(),
            columns,
        )?)
    });
    let stream = Box::pin(
        datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(target_schema, stream),
    );
    let options = WriteOptions {
        partition_columns: Vec::new(),
        app_transaction: Some((GOLD_APP.to_string(), stamp)),
        merge_schema: false,
        commit_metadata: vec![("lakehouse.layer".to_string(), serde_json::json!("gold"))],
    };
    let version =
        write::write_stream(&location, stream, StreamMode::Overwrite, &options, None).await?;
    Ok(TableReport {
        layer: Layer::Gold,
        table: path,
        rows: counter.load(std::sync::atomic::Ordering::Relaxed),
        elapsed: started.elapsed(),
        version: Some(version),
        mode: "rebuild".to_string(),
    })
}
