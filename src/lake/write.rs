//! Writing Delta tables: the operations ingest and stream need. Never used by serving.
//!
//! Every write can carry an application transaction (`txn` action: app id + version) in the same
//! commit as the data. A writer that records its source position (a watermark, a batch number,
//! a broker offset) this way can never advance one without the other, which is what makes
//! ingest and stream exactly-once across crashes.

use datafusion::arrow::record_batch::RecordBatch;
use deltalake::DeltaTable;
use deltalake::kernel::Transaction;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::logstore::LogStore as _;
use deltalake::protocol::SaveMode;

use super::table::TableHandle;
use super::{Result, StorageLocation};

/// How a write is committed.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// Partition columns when the write creates the table.
    pub partition_columns: Vec<String>,
    /// Application transaction recorded in the same commit: `(app_id, version)`.
    pub app_transaction: Option<(String, i64)>,
    /// Add columns that are new in the batches to the table schema instead of failing.
    pub merge_schema: bool,
    /// Free-form commit metadata (shown by `DESCRIBE HISTORY` in Spark).
    pub commit_metadata: Vec<(String, serde_json::Value)>,
}

impl WriteOptions {
    fn commit_properties(&self) -> CommitProperties {
        let mut props = CommitProperties::default();
        if let Some((app_id, version)) = &self.app_transaction {
            props = props.with_application_transaction(Transaction::new(app_id, *version));
        }
        if !self.commit_metadata.is_empty() {
            props = props.with_metadata(self.commit_metadata.clone());
        }
        props
    }
}

/// Opens the table at `location` for writing; the table may not exist yet.
pub async fn open_for_write(location: &StorageLocation) -> Result<DeltaTable> {
    if let Some(path) = location.local_path() {
        std::fs::create_dir_all(&path)?;
    }
    let mut table = deltalake::DeltaTableBuilder::from_url(location.url().clone())?
        .with_storage_options(location.options())
        .build()?;
    // Loading a location without a log makes deltalake log an ERROR ("No files in log
    // segment") although a first write there is expected: look for the log first.
    if table.log_store().is_delta_table_location().await? {
        table.load().await?;
    }
    Ok(table)
}

/// Appends `batches`, creating the table if needed. Returns the new version.
pub async fn append(
    location: &StorageLocation,
    batches: Vec<RecordBatch>,
    options: &WriteOptions,
) -> Result<u64> {
    let table = open_for_write(location).await?;
    let mut builder = table
        .write(batches)
        .with_save_mode(SaveMode::Append)
        .with_commit_properties(options.commit_properties());
    if !options.partition_columns.is_empty() {
        builder = builder.with_partition_columns(options.partition_columns.clone());
    }
    if options.merge_schema {
        builder = builder.with_schema_mode(deltalake::operations::write::SchemaMode::Merge);
    }
    let table = builder.await?;
    Ok(table.version().unwrap_or(0))
}

/// How [`merge`] reconciles a batch of source rows with the table.
#[derive(Debug, Clone, Default)]
pub struct MergeOptions {
    /// Business key columns: one row per key in the table.
    pub keys: Vec<String>,
    /// The source is a full snapshot: delete table rows whose key is absent from it.
    pub delete_missing: bool,
    /// Commit options (application transaction, schema evolution, metadata).
    pub write: WriteOptions,
}

/// Upserts `batches` (all with `schema`) into the table at `location` by `options.keys`:
/// matched rows are updated, new keys inserted, and with `delete_missing` keys absent from the
/// source deleted. Creates the table when it does not exist. Columns new in the source are added
/// to the table (schema evolution). Returns the new version.
pub async fn merge(
    location: &StorageLocation,
    schema: datafusion::arrow::datatypes::SchemaRef,
    batches: Vec<RecordBatch>,
    options: &MergeOptions,
) -> Result<u64> {
    let ctx = datafusion::prelude::SessionContext::new();
    let source = if batches.is_empty() {
        ctx.read_batch(RecordBatch::new_empty(schema))?
    } else {
        ctx.read_batches(batches)?
    };
    merge_frame(location, source, options).await
}

/// Quotes an identifier for deltalake's SQL expressions when it is not a plain lowercase name.
fn quote(name: &str) -> String {
    let plain = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// The last version recorded for `app_id` in the table at `location`; `None` when the table or
/// the app id does not exist yet.
pub async fn app_transaction_version(
    location: &StorageLocation,
    app_id: &str,
) -> Result<Option<i64>> {
    match TableHandle::open(location).await {
        Ok(handle) => handle.app_transaction_version(app_id).await,
        Err(super::Error::NotATable { .. }) => Ok(None),
        Err(err) => Err(err),
    }
}

/// Whether [`write_stream`] adds to the table or replaces its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamMode {
    /// Add the rows (new columns are added to the table when `merge_schema` is set).
    Append,
    /// Replace the content and the schema.
    Overwrite,
}

/// Writes every batch of `stream` in one commit, creating the table if needed, and returns the
/// new version. Unlike [`append`], the input is never held in memory as a
/// whole: batches flow from the stream into Parquet files, and the commit (with the options'
/// application transaction) happens only after the stream ends without error. A stream that
/// fails, or a process that dies, leaves the table as it was.
///
/// `description` becomes the table's description when the write creates the table (ingest
/// records there what silver needs to know about the source table).
pub async fn write_stream(
    location: &StorageLocation,
    stream: datafusion::physical_plan::SendableRecordBatchStream,
    mode: StreamMode,
    options: &WriteOptions,
    description: Option<&str>,
) -> Result<u64> {
    use datafusion::catalog::streaming::StreamingTable;
    use datafusion::datasource::provider_as_source;
    use datafusion::logical_expr::LogicalPlanBuilder;

    let table = open_for_write(location).await?;
    let schema = stream.schema();
    let partition = OneShotPartition {
        schema: schema.clone(),
        stream: parking_lot::Mutex::new(Some(stream)),
    };
    let provider = StreamingTable::try_new(schema, vec![std::sync::Arc::new(partition)])?;
    let plan = LogicalPlanBuilder::scan(
        "source",
        provider_as_source(std::sync::Arc::new(provider)),
        None,
    )?
    .build()?;
    let save_mode = match mode {
        StreamMode::Append => SaveMode::Append,
        StreamMode::Overwrite => SaveMode::Overwrite,
    };
    let mut builder = table
        .write(Vec::new())
        .with_input_plan(plan)
        .with_save_mode(save_mode)
        .with_commit_properties(options.commit_properties());
    if let Some(description) = description {
        builder = builder.with_description(description);
    }
    if !options.partition_columns.is_empty() {
        builder = builder.with_partition_columns(options.partition_columns.clone());
    }
    if mode == StreamMode::Overwrite {
        builder = builder.with_schema_mode(deltalake::operations::write::SchemaMode::Overwrite);
    } else if options.merge_schema {
        builder = builder.with_schema_mode(deltalake::operations::write::SchemaMode::Merge);
    }
    let table = builder.await?;
    Ok(table.version().unwrap_or(0))
}

/// A partition whose stream can be taken once: the plan [`write_stream`] hands deltalake.
struct OneShotPartition {
    schema: datafusion::arrow::datatypes::SchemaRef,
    stream: parking_lot::Mutex<Option<datafusion::physical_plan::SendableRecordBatchStream>>,
}

impl std::fmt::Debug for OneShotPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OneShotPartition")
    }
}

impl datafusion::physical_plan::streaming::PartitionStream for OneShotPartition {
    fn schema(&self) -> &datafusion::arrow::datatypes::SchemaRef {
        &self.schema
    }

    fn execute(
        &self,
        _ctx: std::sync::Arc<datafusion::execution::TaskContext>,
    ) -> datafusion::physical_plan::SendableRecordBatchStream {
        use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
        match self.stream.lock().take() {
            Some(stream) => stream,
            // A second execution would silently write nothing; make it an error instead.
            None => Box::pin(RecordBatchStreamAdapter::new(
                self.schema.clone(),
                futures::stream::once(async {
                    Err(datafusion::error::DataFusionError::Execution(
                        "the input stream of a write was already consumed".to_string(),
                    ))
                }),
            )),
        }
    }
}

/// Like [`merge`], with the source rows given as a DataFusion `DataFrame` that is planned and
/// executed in its own session (so it can read other Delta tables registered there) instead of
/// batches in memory. Creates the table from the frame when it does not exist.
pub async fn merge_frame(
    location: &StorageLocation,
    source: datafusion::prelude::DataFrame,
    options: &MergeOptions,
) -> Result<u64> {
    let table = open_for_write(location).await?;
    if table.version().is_none() {
        let mut write_options = options.write.clone();
        write_options.merge_schema = false;
        let stream = source.execute_stream().await?;
        return write_stream(location, stream, StreamMode::Append, &write_options, None).await;
    }
    merge_into_table(table, location, source, options).await
}

/// The MERGE of [`merge_frame`] once the table exists: match on the keys,
/// update every source column, insert new keys, and with `delete_missing` delete the rest. The
/// source frame is planned in its own session, which deltalake runs the merge in.
async fn merge_into_table(
    table: DeltaTable,
    location: &StorageLocation,
    source: datafusion::prelude::DataFrame,
    options: &MergeOptions,
) -> Result<u64> {
    if options.keys.is_empty() {
        return Err(super::Error::InvalidLocation {
            location: location.display(),
            reason: "merge needs at least one key column".to_string(),
        });
    }
    let columns: Vec<String> = source
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let (state, plan) = source.into_parts();
    let source = datafusion::prelude::DataFrame::new(state.clone(), plan);
    let predicate = options
        .keys
        .iter()
        .map(|k| format!("target.{q} = source.{q}", q = quote(k)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let mut builder = table
        .merge(source, predicate)
        .with_session_state(std::sync::Arc::new(state))
        .with_source_alias("source")
        .with_target_alias("target")
        .with_merge_schema(options.write.merge_schema)
        .with_commit_properties(options.write.commit_properties());
    let update_columns = columns.clone();
    builder = builder.when_matched_update(|update| {
        update_columns.iter().fold(update, |u, c| {
            u.update(c.as_str(), format!("source.{}", quote(c)))
        })
    })?;
    builder = builder.when_not_matched_insert(|insert| {
        columns.iter().fold(insert, |i, c| {
            i.set(c.as_str(), format!("source.{}", quote(c)))
        })
    })?;
    if options.delete_missing {
        builder = builder.when_not_matched_by_source_delete(|delete| delete)?;
    }
    let (table, _metrics) = builder.await?;
    Ok(table.version().unwrap_or(0))
}

/// The description of the table at `location`; `None` when there is no table or description.
pub async fn table_description(location: &StorageLocation) -> Result<Option<String>> {
    if let Some(path) = location.local_path()
        && !path.join("_delta_log").is_dir()
    {
        return Ok(None);
    }
    let table = match deltalake::open_table_with_storage_options(
        location.url().clone(),
        location.options(),
    )
    .await
    {
        Ok(table) => table,
        Err(deltalake::DeltaTableError::NotATable(_)) => return Ok(None),
        Err(err) => return Err(err.into()),
    };
    Ok(table
        .snapshot()?
        .metadata()
        .description()
        .map(str::to_string))
}
