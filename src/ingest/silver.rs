//! Silver: bronze rows not merged yet, one per business key, cleaned by the table's model and
//! upserted with Delta MERGE.
//!
//! Exactly once: the silver commit carries `lakehouse.silver` = the last bronze batch it
//! merged. The next run reads only bronze rows of later batches. When bronze holds a snapshot
//! newer than that, the whole bronze table is merged and keys absent from it are deleted
//! (deletes at the source). MERGE is idempotent, so a retry after a crash changes nothing twice.

use std::time::Instant;

use datafusion::prelude::SessionContext;

use super::bronze::{self, METADATA_COLUMNS};
use super::models::SilverModel;
use super::{Error, LakeLayout, Layer, Result, TableReport, quote_ident, snake_case};
use crate::lake::table::TableHandle;
use crate::lake::write::{self, MergeOptions, WriteOptions};

/// Application id of silver commits; version = last bronze batch merged.
pub const SILVER_APP: &str = "lakehouse.silver";

/// What silver does with one bronze table.
#[derive(Debug, Clone)]
pub struct SilverJob {
    /// Source name (`mysql`).
    pub source: String,
    /// Bronze table name (`events`).
    pub table: String,
    /// The model (the default `SELECT * FROM source` when the table has none).
    pub model: SilverModel,
}

/// The silver jobs for the bronze tables of `sources` present in the lake: one per bronze table,
/// with its model or the default one.
pub async fn jobs(
    layout: &LakeLayout,
    sources: &[String],
    models: &super::models::Models,
) -> Result<Vec<SilverJob>> {
    let mut jobs = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for source in sources {
        let prefix = layout.location(&format!("bronze/{source}/{}", layout.domain))?;
        for table in crate::lake::discover_tables(&prefix).await? {
            let model = match models.silver_for(source, &table) {
                Some(model) => model.clone(),
                None => SilverModel {
                    name: table.clone(),
                    source: (source.clone(), table.clone()),
                    key: Vec::new(),
                    sql: "SELECT * FROM source".to_string(),
                    file: std::path::PathBuf::from("<default>"),
                },
            };
            jobs.push(SilverJob {
                source: source.clone(),
                table,
                model,
            });
        }
    }
    // Two bronze tables without models may share a name across sources: prefix the later ones.
    for job in &mut jobs {
        if !names.insert(job.model.name.clone()) {
            job.model.name = format!("{}_{}", job.source, job.model.name);
            names.insert(job.model.name.clone());
        }
    }
    Ok(jobs)
}

/// Merges the new bronze rows of one table into silver.
pub async fn merge_table(layout: &LakeLayout, job: &SilverJob) -> Result<TableReport> {
    let started = Instant::now();
    let bronze_location = layout.location(&layout.bronze_path(&job.source, &job.table))?;
    let path = layout.silver_path(&job.model.name);
    let location = layout.location(&path)?;
    // One pinned bronze snapshot: its rows and its batch ids agree.
    let handle = TableHandle::open(&bronze_location).await?;
    let (latest, snapshot) = {
        let append = handle
            .app_transaction_version(bronze::APPEND_APP)
            .await?
            .unwrap_or(0);
        let snap = handle
            .app_transaction_version(bronze::SNAPSHOT_APP)
            .await?
            .unwrap_or(0);
        (append.max(snap), snap)
    };
    let merged = write::app_transaction_version(&location, SILVER_APP)
        .await?
        .unwrap_or(0);
    let exists = merged > 0 || TableHandle::open(&location).await.is_ok();
    if latest <= merged && exists {
        return Ok(TableReport {
            layer: Layer::Silver,
            table: path,
            rows: 0,
            elapsed: started.elapsed(),
            version: None,
            mode: format!("up to date with bronze batch {merged}"),
        });
    }
    // A snapshot newer than what silver holds: bronze is the complete table.
    let full = snapshot > merged;
    let (key, primary_key) = resolve_key(&job.model, &bronze_location).await?;
    // Rows of one bronze batch are unique by the source's primary key; only several batches,
    // or a key other than the primary key, need the latest row per key picked.
    let one_batch = if full {
        snapshot == latest
    } else {
        latest == merged + 1
    };
    let needs_dedupe = !(one_batch && !primary_key.is_empty() && primary_key == key);

    let ctx = SessionContext::new();
    handle.register_object_store(&ctx.state())?;
    ctx.register_table("bronze", handle.provider().await?)?;
    let schema = handle.schema()?;
    let data_columns: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .filter(|name| !METADATA_COLUMNS.contains(&name.as_str()))
        .collect();
    let renamed = data_columns
        .iter()
        .map(|c| format!("{} AS {}", quote_ident(c), quote_ident(&snake_case(c))))
        .collect::<Vec<_>>()
        .join(", ");
    let partition = key
        .iter()
        .map(|k| {
            data_columns
                .iter()
                .find(|c| snake_case(c) == *k)
                .map(|c| quote_ident(c))
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "silver model \"{}\": key column \"{k}\" is not in bronze table \"{}/{}\"",
                        job.model.name, job.source, job.table
                    ))
                })
        })
        .collect::<Result<Vec<_>>>()?
        .join(", ");
    let filter = if full {
        String::new()
    } else {
        format!("WHERE _batch_id > {merged}")
    };
    // The latest version of each key: a later batch wins.
    let source_sql = if !needs_dedupe {
        format!("SELECT {renamed} FROM bronze {filter}")
    } else {
        format!(
            "SELECT {renamed} FROM (\
           SELECT *, row_number() OVER (PARTITION BY {partition} ORDER BY _batch_id DESC) AS __lakehouse_rank \
           FROM bronze {filter}) AS ranked \
         WHERE __lakehouse_rank = 1"
        )
    };
    let n_rows = count(&ctx, &format!("SELECT count(*) FROM bronze {filter}")).await?;
    ctx.register_table("source", ctx.sql(&source_sql).await?.into_view())?;
    let frame = ctx.sql(&job.model.sql).await.map_err(|err| {
        Error::Invalid(format!("silver model {}: {err}", job.model.file.display()))
    })?;
    for k in &key {
        if frame.schema().field_with_unqualified_name(k).is_err() {
            return Err(Error::Invalid(format!(
                "silver model {}: its result has no key column \"{k}\"",
                job.model.file.display()
            )));
        }
    }
    let options = MergeOptions {
        keys: key.clone(),
        delete_missing: full,
        write: WriteOptions {
            partition_columns: Vec::new(),
            app_transaction: Some((SILVER_APP.to_string(), latest)),
            merge_schema: true,
            commit_metadata: vec![
                ("lakehouse.layer".to_string(), serde_json::json!("silver")),
                (
                    "lakehouse.bronzeBatch".to_string(),
                    serde_json::json!(latest),
                ),
            ],
        },
    };
    let version = write::merge_frame(&location, frame, &options).await?;
    Ok(TableReport {
        layer: Layer::Silver,
        table: path,
        rows: n_rows,
        elapsed: started.elapsed(),
        version: Some(version),
        mode: if full {
            format!("merge of snapshot batch {snapshot} by {}", key.join(","))
        } else {
            format!(
                "merge of batches {}..={latest} by {}",
                merged + 1,
                key.join(",")
            )
        },
    })
}

/// The silver key (the model's, else the one bronze recorded: configured or the source's
/// primary key), and the source's primary key.
async fn resolve_key(
    model: &SilverModel,
    bronze_location: &crate::lake::StorageLocation,
) -> Result<(Vec<String>, Vec<String>)> {
    let description = write::table_description(bronze_location).await?;
    let (recorded, primary) = description
        .as_deref()
        .map(bronze::keys_from_description)
        .unwrap_or_default();
    let key = if model.key.is_empty() {
        recorded
    } else {
        model.key.clone()
    };
    if key.is_empty() {
        return Err(Error::Invalid(format!(
            "silver table \"{}\" has no key: the source table has no primary key; add a model with \"-- key:\" or configure key:",
            model.name
        )));
    }
    Ok((key, primary))
}

async fn count(ctx: &SessionContext, sql: &str) -> Result<u64> {
    let batches = ctx.sql(sql).await?.collect().await?;
    let value = batches
        .first()
        .filter(|b| b.num_rows() > 0)
        .map(|b| datafusion::common::ScalarValue::try_from_array(b.column(0), 0))
        .transpose()?;
    Ok(match value {
        Some(datafusion::common::ScalarValue::Int64(Some(n))) => u64::try_from(n).unwrap_or(0),
        _ => 0,
    })
}
