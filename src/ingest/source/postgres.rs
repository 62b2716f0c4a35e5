//! PostgreSQL as a source: tables from `pg_catalog`, rows from `COPY (SELECT ...) TO STDOUT
//! (FORMAT binary)` decoded straight into Arrow builders as the bytes arrive.

use async_trait::async_trait;
use bytes::{Buf, BytesMut};
use futures::StreamExt;
use tokio_postgres::Config;

use super::types::{BatchBuilder, PgKind, postgres_type};
use super::{BatchStream, ColumnInfo, ReadScope, Source, TableInfo, Wire};
use crate::ingest::generate::postgres::connect;
use crate::ingest::{Error, Result};

/// A PostgreSQL database whose tables land in bronze.
pub struct PostgresSource {
    name: String,
    config: Config,
    schemas: Vec<String>,
}

impl PostgresSource {
    /// A source named `name` reading database `database` on the server of `url`, limited to
    /// `schemas` (all non-system schemas when empty).
    pub fn new(
        name: &str,
        url: &str,
        database: &str,
        schemas: &[String],
    ) -> Result<PostgresSource> {
        let mut config: Config = url.parse().map_err(|err| {
            Error::Invalid(format!("source \"{name}\": invalid PostgreSQL URL: {err}"))
        })?;
        config.dbname(database);
        // Timestamps without zone and watermark literals are taken as UTC.
        config.options("-c TimeZone=UTC");
        Ok(PostgresSource {
            name: name.to_string(),
            config,
            schemas: schemas.to_vec(),
        })
    }
}

/// `name` as a PostgreSQL identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

const DISCOVER: &str = "
SELECT n.nspname, c.relname, coalesce(obj_description(c.oid, 'pg_class'), ''),
       a.attname, t.typname, a.atttypmod, NOT a.attnotnull,
       (a.attidentity <> '' OR coalesce(pg_get_expr(d.adbin, d.adrelid), '') LIKE 'nextval(%'),
       coalesce(a.attnum = ANY (i.indkey::int2[]), false)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
  AND (cardinality($1::text[]) = 0 OR n.nspname = ANY ($1::text[]))
ORDER BY n.nspname, c.relname, a.attnum";

/// Precision and scale of a `numeric(p,s)` type modifier.
fn numeric_modifier(typmod: i32) -> (Option<u64>, Option<u64>) {
    if typmod < 4 {
        return (None, None);
    }
    let value = typmod - 4;
    let precision = u64::try_from((value >> 16) & 0xFFFF).ok();
    let scale = u64::try_from(value & 0xFFFF).ok();
    (precision, scale)
}

#[async_trait]
impl Source for PostgresSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn discover(&self) -> Result<Vec<TableInfo>> {
        let client = connect(self.config.clone()).await?;
        let rows = client.query(DISCOVER, &[&self.schemas]).await?;
        let mut out: Vec<TableInfo> = Vec::new();
        for row in rows {
            let schema: String = row.get(0);
            let table: String = row.get(1);
            let comment: String = row.get(2);
            let column: String = row.get(3);
            let typname: String = row.get(4);
            let typmod: i32 = row.get(5);
            let nullable: bool = row.get(6);
            let auto_increment: bool = row.get(7);
            let primary: bool = row.get(8);
            let is_same = out
                .last()
                .is_some_and(|t| t.schema == schema && t.name == table);
            if !is_same {
                out.push(TableInfo {
                    schema: schema.clone(),
                    name: table.clone(),
                    lake_name: table.to_lowercase(),
                    columns: Vec::new(),
                    primary_key: Vec::new(),
                    auto_increment: None,
                    comment,
                });
            }
            let Some(info) = out.last_mut() else {
                continue;
            };
            let (precision, scale) = if typname == "numeric" {
                numeric_modifier(typmod)
            } else {
                (None, None)
            };
            let (data_type, kind, cast) = postgres_type(&typname, precision, scale);
            let source_type = match (precision, scale) {
                (Some(p), Some(s)) => format!("{typname}({p},{s})"),
                _ => typname.clone(),
            };
            if primary {
                info.primary_key.push(column.clone());
            }
            if auto_increment {
                info.auto_increment = Some(column.clone());
            }
            info.columns.push(ColumnInfo {
                name: column,
                // A cast to text is remembered as the wire kind Text with a "::text" type.
                source_type: if cast {
                    format!("{source_type}::text")
                } else {
                    source_type
                },
                data_type,
                nullable,
                wire: Wire::Pg(kind),
            });
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
            .map(|c| {
                if c.source_type.ends_with("::text") {
                    format!("{}::text", ident(&c.name))
                } else {
                    ident(&c.name)
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let from = format!("{}.{}", ident(&table.schema), ident(&table.name));
        let query = match scope {
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
        let kinds: Vec<PgKind> = table
            .columns
            .iter()
            .map(|c| match c.wire {
                Wire::Pg(kind) => kind,
                _ => PgKind::Text,
            })
            .collect();
        let client = connect(self.config.clone()).await?;
        let copy = client
            .copy_out(&format!("COPY ({query}) TO STDOUT (FORMAT binary)"))
            .await?;
        let schema = table.arrow_schema();
        let batch_rows = batch_rows.max(1);
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        tokio::spawn(async move {
            // The client must live as long as the COPY stream.
            let _client = client;
            let result: Result<()> = async {
                let mut decoder = CopyDecoder::new(kinds);
                let mut builder = BatchBuilder::new(schema, batch_rows)?;
                futures::pin_mut!(copy);
                while let Some(chunk) = copy.next().await {
                    decoder.buffer.extend_from_slice(&chunk?);
                    while decoder.next_row(&mut builder)? {
                        if builder.rows() >= batch_rows {
                            let batch = builder.finish()?;
                            if tx.send(Ok(batch)).await.is_err() {
                                return Ok(());
                            }
                        }
                    }
                }
                if !decoder.finished {
                    return Err(Error::Decode(
                        "COPY data ended without its trailer".to_string(),
                    ));
                }
                if builder.rows() > 0 {
                    let batch = builder.finish()?;
                    let _ = tx.send(Ok(batch)).await;
                }
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
        let client = connect(self.config.clone()).await?;
        let row = client
            .query_one(
                &format!(
                    "SELECT count(*) FROM {}.{}",
                    ident(&table.schema),
                    ident(&table.name)
                ),
                &[],
            )
            .await?;
        let n: i64 = row.get(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

/// Incremental decoder of PostgreSQL's binary COPY format.
struct CopyDecoder {
    kinds: Vec<PgKind>,
    buffer: BytesMut,
    header_done: bool,
    finished: bool,
}

/// Signature that opens binary COPY data.
const COPY_SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

impl CopyDecoder {
    fn new(kinds: Vec<PgKind>) -> CopyDecoder {
        CopyDecoder {
            kinds,
            buffer: BytesMut::new(),
            header_done: false,
            finished: false,
        }
    }

    /// Decodes one complete row from the buffer into `builder`; false when more bytes are
    /// needed (or the trailer was reached).
    fn next_row(&mut self, builder: &mut BatchBuilder) -> Result<bool> {
        if self.finished {
            return Ok(false);
        }
        if !self.header_done {
            // Signature, flags (4 bytes), header extension length (4 bytes) and extension.
            if self.buffer.len() < COPY_SIGNATURE.len() + 8 {
                return Ok(false);
            }
            if &self.buffer[..COPY_SIGNATURE.len()] != COPY_SIGNATURE {
                return Err(Error::Decode("not binary COPY data".to_string()));
            }
            let ext_at = COPY_SIGNATURE.len() + 4;
            let ext_len = read_i32(&self.buffer[ext_at..ext_at + 4]);
            let total = ext_at + 4 + usize::try_from(ext_len).unwrap_or(0);
            if self.buffer.len() < total {
                return Ok(false);
            }
            self.buffer.advance(total);
            self.header_done = true;
        }
        // Find the whole row before decoding any of it.
        if self.buffer.len() < 2 {
            return Ok(false);
        }
        let n_fields = i16::from_be_bytes([self.buffer[0], self.buffer[1]]);
        if n_fields == -1 {
            self.finished = true;
            self.buffer.advance(2);
            return Ok(false);
        }
        if usize::try_from(n_fields).ok() != Some(self.kinds.len()) {
            return Err(Error::Decode(format!(
                "COPY row has {n_fields} fields, expected {}",
                self.kinds.len()
            )));
        }
        let mut offset = 2;
        for _ in 0..self.kinds.len() {
            if self.buffer.len() < offset + 4 {
                return Ok(false);
            }
            let len = read_i32(&self.buffer[offset..offset + 4]);
            offset += 4;
            if len > 0 {
                offset += usize::try_from(len).unwrap_or(0);
            }
        }
        if self.buffer.len() < offset {
            return Ok(false);
        }
        let row = self.buffer.split_to(offset);
        let mut at = 2;
        for (idx, kind) in self.kinds.iter().enumerate() {
            let len = read_i32(&row[at..at + 4]);
            at += 4;
            let column = builder
                .column(idx)
                .ok_or_else(|| Error::Decode("COPY row wider than the table".to_string()))?;
            if len < 0 {
                column.append_null();
            } else {
                let end = at + usize::try_from(len).unwrap_or(0);
                column.append_pg(*kind, &row[at..end])?;
                at = end;
            }
        }
        builder.end_row();
        Ok(true)
    }
}

fn read_i32(bytes: &[u8]) -> i32 {
    match bytes {
        [a, b, c, d, ..] => i32::from_be_bytes([*a, *b, *c, *d]),
        _ => 0,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    #[test]
    fn numeric_modifiers() {
        assert_eq!(numeric_modifier(-1), (None, None));
        assert_eq!(numeric_modifier(((10 << 16) | 2) + 4), (Some(10), Some(2)));
    }

    #[test]
    fn decodes_rows_split_across_chunks() {
        let mut data = Vec::new();
        data.extend_from_slice(COPY_SIGNATURE);
        data.extend_from_slice(&0i32.to_be_bytes());
        data.extend_from_slice(&0i32.to_be_bytes());
        for (id, name) in [(1i32, Some("a")), (2, None)] {
            data.extend_from_slice(&2i16.to_be_bytes());
            data.extend_from_slice(&4i32.to_be_bytes());
            data.extend_from_slice(&id.to_be_bytes());
            match name {
                Some(n) => {
                    data.extend_from_slice(&i32::try_from(n.len()).unwrap().to_be_bytes());
                    data.extend_from_slice(n.as_bytes());
                }
                None => data.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        data.extend_from_slice(&(-1i16).to_be_bytes());
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int32, true),
            Field::new("name", DataType::Utf8, true),
        ]));
        let mut builder = BatchBuilder::new(schema, 4).unwrap();
        let mut decoder = CopyDecoder::new(vec![PgKind::Int4, PgKind::Text]);
        for byte in data {
            decoder.buffer.extend_from_slice(&[byte]);
            while decoder.next_row(&mut builder).unwrap() {}
        }
        assert!(decoder.finished);
        let batch = builder.finish().unwrap();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.column(1).null_count(), 1);
    }
}
