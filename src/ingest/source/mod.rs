//! Sources of bronze: a database (or the demo's in-memory generator) whose tables are
//! discovered and read as a stream of Arrow record batches.
//!
//! [`Source`] is the seam: [`mysql::MysqlSource`] and [`postgres::PostgresSource`] read real
//! databases (the only code that talks to their drivers for ingest), and
//! [`embedded::EmbeddedSource`] produces the generator's tables in memory so that the demo runs
//! the same bronze/silver/gold code with no database at all.
//!
//! The type mapping lives in [`types`]: every source type becomes the Arrow type that keeps its
//! values exactly (or text when Delta has no such type).

pub mod embedded;
pub mod mysql;
pub mod postgres;
pub mod types;

use std::pin::Pin;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use futures::Stream;
use std::sync::Arc;

use super::Result;

/// A stream of record batches read from a source table.
pub type BatchStream = Pin<Box<dyn Stream<Item = Result<RecordBatch>> + Send>>;

/// How a column's values arrive from the source, when that is not implied by its Arrow type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// MySQL text protocol: every value is text, parsed by the Arrow type.
    MysqlText,
    /// PostgreSQL binary COPY of the given type.
    Pg(types::PgKind),
    /// Already Arrow (the embedded source).
    Arrow,
}

/// One column of a source table.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnInfo {
    /// Name as in the source.
    pub name: String,
    /// Type as the source spells it (`tinyint(1)`, `numeric(10,2)`), for messages and docs.
    pub source_type: String,
    /// Arrow type of the bronze column.
    pub data_type: DataType,
    /// May hold NULL.
    pub nullable: bool,
    /// How values are decoded.
    pub wire: Wire,
}

/// A discovered source table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableInfo {
    /// Schema (PostgreSQL) or database (MySQL) in the source.
    pub schema: String,
    /// Table name in the source.
    pub name: String,
    /// Folder name in the lake (lowercase; `<schema>_<table>` when two schemas clash).
    pub lake_name: String,
    /// Columns in source order.
    pub columns: Vec<ColumnInfo>,
    /// Primary key columns.
    pub primary_key: Vec<String>,
    /// The auto-increment (serial, identity) column, if any.
    pub auto_increment: Option<String>,
    /// The table's comment (`append-only` marks tables loaded by their auto-increment key).
    pub comment: String,
}

impl TableInfo {
    /// Arrow schema of the rows the source yields.
    pub fn arrow_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(&c.name, c.data_type.clone(), true))
                .collect::<Vec<_>>(),
        ))
    }

    /// The column called `name`, ignoring case.
    pub fn column(&self, name: &str) -> Option<&ColumnInfo> {
        self.columns
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }
}

/// The last value loaded of a watermark column; rows greater than it are new.
#[derive(Debug, Clone, PartialEq)]
pub enum Watermark {
    /// An integer column.
    Int(i64),
    /// A date, days since 1970-01-01.
    Date(i32),
    /// A timestamp, microseconds since 1970-01-01 (UTC for zoned columns).
    Timestamp(i64),
    /// A text column.
    Text(String),
}

impl Watermark {
    /// The value as a SQL literal (the sources take no parameters in COPY or text queries).
    pub fn sql_literal(&self) -> String {
        match self {
            Watermark::Int(v) => v.to_string(),
            Watermark::Date(days) => format!("'{}'", types::format_date(*days)),
            Watermark::Timestamp(micros) => format!("'{}'", types::format_timestamp(*micros)),
            Watermark::Text(text) => {
                format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
            }
        }
    }

    /// For messages and commit metadata.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Watermark::Int(v) => serde_json::json!(v),
            Watermark::Date(days) => serde_json::json!(types::format_date(*days)),
            Watermark::Timestamp(micros) => serde_json::json!(types::format_timestamp(*micros)),
            Watermark::Text(_) => serde_json::json!("<text>"),
        }
    }
}

/// Rows to read: everything, or the rows past a watermark.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadScope {
    /// The whole table.
    All,
    /// Rows whose `column` is greater than `after` (all non-null rows when `after` is `None`),
    /// in ascending order of `column`.
    After {
        /// Watermark column, as named in the source.
        column: String,
        /// Last value already loaded.
        after: Option<Watermark>,
    },
}

/// A database (or generator) whose tables land in bronze.
#[async_trait]
pub trait Source: Send + Sync {
    /// Name in the lake layout (`mysql`, `postgres`).
    fn name(&self) -> &str;

    /// Every table to copy.
    async fn discover(&self) -> Result<Vec<TableInfo>>;

    /// Streams the rows of `table` in `scope`, in record batches of about `batch_rows` rows.
    /// The stream holds at most a few batches at a time, whatever the table's size.
    async fn read(
        &self,
        table: &TableInfo,
        scope: &ReadScope,
        batch_rows: usize,
    ) -> Result<BatchStream>;

    /// Number of rows of `table` (for reports and checks).
    async fn count(&self, table: &TableInfo) -> Result<u64>;
}

/// Gives clashing table names of different schemas distinct lake names (`<schema>_<table>`).
pub fn assign_lake_names(tables: &mut [TableInfo]) {
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for table in tables.iter() {
        *counts.entry(table.name.to_lowercase()).or_default() += 1;
    }
    for table in tables.iter_mut() {
        let lower = table.name.to_lowercase();
        table.lake_name = if counts.get(&lower).copied().unwrap_or(0) > 1 {
            format!("{}_{}", table.schema.to_lowercase(), lower)
        } else {
            lower
        };
    }
}

/// A stream of the batches a reader task sends; the bounded channel is the backpressure that
/// keeps at most a few batches in memory.
pub fn receiver_stream(rx: tokio::sync::mpsc::Receiver<Result<RecordBatch>>) -> BatchStream {
    Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}
