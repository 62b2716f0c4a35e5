//! MySQL/MariaDB as a source: tables from `information_schema`, rows from a streaming result
//! set (text protocol) decoded straight into Arrow builders.

use async_trait::async_trait;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Value};

use super::types::{BatchBuilder, mysql_type};
use super::{BatchStream, ColumnInfo, ReadScope, Source, TableInfo, Wire};
use crate::ingest::{Error, Result};

/// A MySQL database whose tables land in bronze.
pub struct MysqlSource {
    name: String,
    opts: Opts,
    database: String,
}

impl MysqlSource {
    /// A source named `name` (the lake path segment) reading `database` on the server of `url`.
    pub fn new(name: &str, url: &str, database: &str) -> Result<MysqlSource> {
        let opts = Opts::from_url(url).map_err(|err| {
            Error::Invalid(format!("source \"{name}\": invalid MySQL URL: {err}"))
        })?;
        let opts = OptsBuilder::from_opts(opts)
            .db_name(Some(database.to_string()))
            .into();
        Ok(MysqlSource {
            name: name.to_string(),
            opts,
            database: database.to_string(),
        })
    }

    async fn connect(&self) -> Result<Conn> {
        let mut conn = Conn::new(self.opts.clone()).await?;
        // TIMESTAMP values and watermark literals in UTC; a slow consumer (backpressure from
        // the Delta writer) must not make the server drop a long result set.
        conn.query_drop("SET time_zone = '+00:00', net_write_timeout = 3600")
            .await?;
        Ok(conn)
    }
}

/// `name` as a MySQL identifier.
fn ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// `value` as a MySQL string literal.
fn literal(value: &str) -> String {
    crate::ingest::generate::mysql::quote(value)
}

type ColumnRow = (
    String,
    String,
    String,
    String,
    Option<u64>,
    Option<u64>,
    String,
    String,
    String,
);

#[async_trait]
impl Source for MysqlSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn discover(&self) -> Result<Vec<TableInfo>> {
        let mut conn = self.connect().await?;
        let db = literal(&self.database);
        let tables: Vec<(String, String)> = conn
            .query(format!(
                "SELECT TABLE_NAME, TABLE_COMMENT FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = {db} AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME"
            ))
            .await?;
        let columns: Vec<ColumnRow> = conn
            .query(format!(
                "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, NUMERIC_PRECISION, \
                 NUMERIC_SCALE, IS_NULLABLE, COLUMN_KEY, EXTRA FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = {db} ORDER BY TABLE_NAME, ORDINAL_POSITION"
            ))
            .await?;
        conn.disconnect().await?;
        let mut out = Vec::new();
        for (table, comment) in tables {
            let mut info = TableInfo {
                schema: self.database.clone(),
                name: table.clone(),
                lake_name: table.to_lowercase(),
                columns: Vec::new(),
                primary_key: Vec::new(),
                auto_increment: None,
                comment,
            };
            for (t, name, data_type, column_type, precision, scale, nullable, key, extra) in
                &columns
            {
                if *t != table {
                    continue;
                }
                if key == "PRI" {
                    info.primary_key.push(name.clone());
                }
                if extra.to_ascii_lowercase().contains("auto_increment") {
                    info.auto_increment = Some(name.clone());
                }
                info.columns.push(ColumnInfo {
                    name: name.clone(),
                    source_type: column_type.clone(),
                    data_type: mysql_type(data_type, column_type, *precision, *scale),
                    nullable: nullable == "YES",
                    wire: Wire::MysqlText,
                });
            }
            out.push(info);
        }
        super::assign_lake_names(&mut out);
        Ok(out)
    }

    async fn read(
        &self,
        table: &TableInfo,
        scope: &ReadScope,
        batch_rows: usize,
    ) -> Result<BatchStream> {
        let select = table
            .columns
            .iter()
            .map(|c| ident(&c.name))
            .collect::<Vec<_>>()
            .join(", ");
        let from = format!("{}.{}", ident(&table.schema), ident(&table.name));
        let sql = match scope {
            ReadScope::All => format!("SELECT {select} FROM {from}"),
            ReadScope::After { column, after } => {
                let filter = match after {
                    Some(w) => format!("{} > {}", ident(column), w.sql_literal()),
                    None => format!("{} IS NOT NULL", ident(column)),
                };
                format!(
                    "SELECT {select} FROM {from} WHERE {filter} ORDER BY {}",
                    ident(column)
                )
            }
        };
        let conn = self.connect().await?;
        let schema = table.arrow_schema();
        let batch_rows = batch_rows.max(1);
        let (tx, rx) =
            tokio::sync::mpsc::channel::<Result<datafusion::arrow::record_batch::RecordBatch>>(2);
        tokio::spawn(async move {
            let result: Result<()> = async {
                let mut conn = conn;
                let mut builder = BatchBuilder::new(schema, batch_rows)?;
                {
                    let mut result = conn.query_iter(sql).await?;
                    while let Some(row) = result.next().await? {
                        for (idx, value) in row.unwrap().into_iter().enumerate() {
                            let column = builder.column(idx).ok_or_else(|| {
                                Error::Decode(
                                    "the source returned more columns than discovered".to_string(),
                                )
                            })?;
                            match value {
                                Value::NULL => column.append_null(),
                                Value::Bytes(bytes) => column.append_text(&bytes)?,
                                other => column.append_text(other.as_sql(true).as_bytes())?,
                            }
                        }
                        builder.end_row();
                        if builder.rows() >= batch_rows {
                            let batch = builder.finish()?;
                            if tx.send(Ok(batch)).await.is_err() {
                                // The reader went away (a failed write): stop reading.
                                return Ok(());
                            }
                        }
                    }
                }
                if builder.rows() > 0 {
                    let batch = builder.finish()?;
                    let _ = tx.send(Ok(batch)).await;
                }
                conn.disconnect().await?;
                Ok(())
            }
            .await;
            if let Err(err) = result {
                let _ = tx.send(Err(err)).await;
            }
        });
        Ok(super::receiver_stream(rx))
    }

    async fn count(&self, table: &TableInfo) -> Result<u64> {
        let mut conn = self.connect().await?;
        let n: Option<u64> = conn
            .query_first(format!(
                "SELECT COUNT(*) FROM {}.{}",
                ident(&table.schema),
                ident(&table.name)
            ))
            .await?;
        conn.disconnect().await?;
        Ok(n.unwrap_or(0))
    }
}
