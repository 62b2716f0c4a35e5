//! Source types to Arrow types, and the decoders that turn source values into Arrow arrays.
//!
//! The mapping keeps values exact: integers keep their width (unsigned ones get the next wider
//! signed type, since Delta has no unsigned types), DECIMAL/NUMERIC become Decimal128 with
//! their precision and scale, dates Date32, DATETIME/`timestamp` a timestamp without time zone
//! and MySQL TIMESTAMP/`timestamptz` a UTC timestamp, both in microseconds. Types Delta cannot
//! hold (TIME, intervals, arrays, enums, uuid, json) become their text form.

use std::sync::Arc;

use chrono::{DateTime, Datelike as _, NaiveDate, NaiveDateTime};
use datafusion::arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int8Builder, Int16Builder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;

use crate::ingest::{Error, Result};
use crate::pg::codec::{PG_EPOCH_DAYS, PG_EPOCH_MICROS};

/// Time zone of zoned timestamps in bronze.
pub const UTC: &str = "UTC";

/// Largest precision of a Delta decimal.
const MAX_DECIMAL_PRECISION: u64 = 38;

/// PostgreSQL types read in binary COPY format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgKind {
    /// bool
    Bool,
    /// int2
    Int2,
    /// int4
    Int4,
    /// int8
    Int8,
    /// float4
    Float4,
    /// float8
    Float8,
    /// numeric
    Numeric,
    /// text and anything selected as `::text`
    Text,
    /// date
    Date,
    /// timestamp
    Timestamp,
    /// timestamptz
    TimestampTz,
    /// uuid (as text)
    Uuid,
    /// json (as text)
    Json,
    /// jsonb (as text)
    Jsonb,
    /// bytea
    Bytea,
}

/// The Arrow type of a MySQL column. `data_type` and `column_type` are those of
/// `information_schema.COLUMNS` (`int`, `int(10) unsigned`).
pub fn mysql_type(
    data_type: &str,
    column_type: &str,
    precision: Option<u64>,
    scale: Option<u64>,
) -> DataType {
    let column_type = column_type.to_ascii_lowercase();
    let unsigned = column_type.contains("unsigned");
    match data_type.to_ascii_lowercase().as_str() {
        "tinyint" if column_type.starts_with("tinyint(1)") && !unsigned => DataType::Boolean,
        "tinyint" if unsigned => DataType::Int16,
        "tinyint" => DataType::Int8,
        "smallint" if unsigned => DataType::Int32,
        "smallint" => DataType::Int16,
        "mediumint" => DataType::Int32,
        "int" | "integer" if unsigned => DataType::Int64,
        "int" | "integer" => DataType::Int32,
        "bigint" if unsigned => DataType::Decimal128(20, 0),
        "bigint" => DataType::Int64,
        "decimal" | "numeric" | "fixed" => decimal_type(precision, scale),
        "float" => DataType::Float32,
        "double" | "real" | "double precision" => DataType::Float64,
        "year" => DataType::Int16,
        "date" => DataType::Date32,
        "datetime" => DataType::Timestamp(TimeUnit::Microsecond, None),
        "timestamp" => DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from(UTC))),
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" | "bit"
        | "geometry" | "point" | "linestring" | "polygon" => DataType::Binary,
        // char, varchar, the texts, enum, set, json, time, and whatever else: their text.
        _ => DataType::Utf8,
    }
}

fn decimal_type(precision: Option<u64>, scale: Option<u64>) -> DataType {
    match (precision, scale) {
        (Some(p), Some(s)) if (1..=MAX_DECIMAL_PRECISION).contains(&p) && s <= p => {
            DataType::Decimal128(u8::try_from(p).unwrap_or(38), i8::try_from(s).unwrap_or(0))
        }
        (Some(p), None) if (1..=MAX_DECIMAL_PRECISION).contains(&p) => {
            DataType::Decimal128(u8::try_from(p).unwrap_or(38), 0)
        }
        // Wider than Delta allows: keep the exact digits as text.
        (Some(_), _) => DataType::Utf8,
        // Unconstrained NUMERIC: a wide decimal; values that do not fit fail loudly.
        (None, _) => DataType::Decimal128(38, 10),
    }
}

/// The Arrow type of a PostgreSQL column, how it is read, and whether the COPY must cast it to
/// text (types without a binary decoder here). `typname` is `pg_type.typname`; precision and
/// scale are those of `information_schema.columns` for numeric.
pub fn postgres_type(
    typname: &str,
    precision: Option<u64>,
    scale: Option<u64>,
) -> (DataType, PgKind, bool) {
    match typname {
        "bool" => (DataType::Boolean, PgKind::Bool, false),
        "int2" => (DataType::Int16, PgKind::Int2, false),
        "int4" => (DataType::Int32, PgKind::Int4, false),
        "int8" => (DataType::Int64, PgKind::Int8, false),
        "float4" => (DataType::Float32, PgKind::Float4, false),
        "float8" => (DataType::Float64, PgKind::Float8, false),
        "numeric" => match decimal_type(precision, scale) {
            DataType::Utf8 => (DataType::Utf8, PgKind::Text, true),
            decimal => (decimal, PgKind::Numeric, false),
        },
        "text" | "varchar" | "bpchar" | "name" => (DataType::Utf8, PgKind::Text, false),
        "date" => (DataType::Date32, PgKind::Date, false),
        "timestamp" => (
            DataType::Timestamp(TimeUnit::Microsecond, None),
            PgKind::Timestamp,
            false,
        ),
        "timestamptz" => (
            DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from(UTC))),
            PgKind::TimestampTz,
            false,
        ),
        "uuid" => (DataType::Utf8, PgKind::Uuid, false),
        "json" => (DataType::Utf8, PgKind::Json, false),
        "jsonb" => (DataType::Utf8, PgKind::Jsonb, false),
        "bytea" => (DataType::Binary, PgKind::Bytea, false),
        _ => (DataType::Utf8, PgKind::Text, true),
    }
}

/// `YYYY-MM-DD` of days since 1970-01-01.
pub fn format_date(days: i32) -> String {
    NaiveDate::from_num_days_from_ce_opt(days + 719_163)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "1970-01-01".to_string())
}

/// `YYYY-MM-DD HH:MM:SS.ffffff` of microseconds since 1970-01-01.
pub fn format_timestamp(micros: i64) -> String {
    DateTime::from_timestamp_micros(micros)
        .map(|t| t.naive_utc().format("%Y-%m-%d %H:%M:%S%.6f").to_string())
        .unwrap_or_else(|| "1970-01-01 00:00:00".to_string())
}

/// Days since 1970-01-01 of `YYYY-MM-DD`; `None` for MySQL's zero date or garbage.
pub fn parse_date(text: &str) -> Option<i32> {
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(date.num_days_from_ce() - 719_163)
}

/// Microseconds since 1970-01-01 of `YYYY-MM-DD HH:MM:SS[.ffffff]`; `None` for zero dates.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let stamp = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").ok()?;
    Some(stamp.and_utc().timestamp_micros())
}

/// The decimal `text` (`-12.5`) as an integer scaled by 10^`scale`; digits beyond the scale are
/// truncated (MySQL and PostgreSQL already give exactly `scale` digits).
pub fn parse_decimal(text: &str, scale: i8) -> Option<i128> {
    let (unscaled, written) = crate::pg::codec::decimal_from_text(text.trim())?;
    let shift = u32::try_from((i32::from(scale) - i32::from(written)).abs()).ok()?;
    let factor = 10i128.checked_pow(shift)?;
    if scale >= written {
        unscaled.checked_mul(factor)
    } else {
        Some(unscaled / factor)
    }
}

/// PostgreSQL's binary numeric as an integer scaled by 10^`scale` (`pg::codec`'s reader).
pub fn pg_numeric(bytes: &[u8], scale: i8) -> Result<i128> {
    crate::pg::codec::numeric_from_binary(bytes, scale).map_err(|e| Error::Decode(e.to_string()))
}

/// An Arrow array under construction for one column.
pub enum ColumnBuilder {
    /// Boolean.
    Bool(BooleanBuilder),
    /// Int8.
    Int8(Int8Builder),
    /// Int16.
    Int16(Int16Builder),
    /// Int32.
    Int32(Int32Builder),
    /// Int64.
    Int64(Int64Builder),
    /// Float32.
    Float32(Float32Builder),
    /// Float64.
    Float64(Float64Builder),
    /// Decimal128 with its precision and scale.
    Decimal(Decimal128Builder, u8, i8),
    /// Utf8.
    Utf8(StringBuilder),
    /// Binary.
    Binary(BinaryBuilder),
    /// Date32.
    Date32(Date32Builder),
    /// Timestamp in microseconds, with its time zone.
    Timestamp(TimestampMicrosecondBuilder, Option<Arc<str>>),
}

impl ColumnBuilder {
    /// A builder for `data_type`; types outside the mapping above are refused.
    pub fn new(data_type: &DataType, capacity: usize) -> Result<ColumnBuilder> {
        Ok(match data_type {
            DataType::Boolean => ColumnBuilder::Bool(BooleanBuilder::with_capacity(capacity)),
            DataType::Int8 => ColumnBuilder::Int8(Int8Builder::with_capacity(capacity)),
            DataType::Int16 => ColumnBuilder::Int16(Int16Builder::with_capacity(capacity)),
            DataType::Int32 => ColumnBuilder::Int32(Int32Builder::with_capacity(capacity)),
            DataType::Int64 => ColumnBuilder::Int64(Int64Builder::with_capacity(capacity)),
            DataType::Float32 => ColumnBuilder::Float32(Float32Builder::with_capacity(capacity)),
            DataType::Float64 => ColumnBuilder::Float64(Float64Builder::with_capacity(capacity)),
            DataType::Decimal128(p, s) => {
                ColumnBuilder::Decimal(Decimal128Builder::with_capacity(capacity), *p, *s)
            }
            DataType::Utf8 => {
                ColumnBuilder::Utf8(StringBuilder::with_capacity(capacity, capacity * 16))
            }
            DataType::Binary => {
                ColumnBuilder::Binary(BinaryBuilder::with_capacity(capacity, capacity * 16))
            }
            DataType::Date32 => ColumnBuilder::Date32(Date32Builder::with_capacity(capacity)),
            DataType::Timestamp(TimeUnit::Microsecond, tz) => ColumnBuilder::Timestamp(
                TimestampMicrosecondBuilder::with_capacity(capacity),
                tz.clone(),
            ),
            other => {
                return Err(Error::Decode(format!("no decoder for Arrow type {other}")));
            }
        })
    }

    /// Appends NULL.
    pub fn append_null(&mut self) {
        match self {
            ColumnBuilder::Bool(b) => b.append_null(),
            ColumnBuilder::Int8(b) => b.append_null(),
            ColumnBuilder::Int16(b) => b.append_null(),
            ColumnBuilder::Int32(b) => b.append_null(),
            ColumnBuilder::Int64(b) => b.append_null(),
            ColumnBuilder::Float32(b) => b.append_null(),
            ColumnBuilder::Float64(b) => b.append_null(),
            ColumnBuilder::Decimal(b, _, _) => b.append_null(),
            ColumnBuilder::Utf8(b) => b.append_null(),
            ColumnBuilder::Binary(b) => b.append_null(),
            ColumnBuilder::Date32(b) => b.append_null(),
            ColumnBuilder::Timestamp(b, _) => b.append_null(),
        }
    }

    /// Appends a value in text form (MySQL's text protocol).
    pub fn append_text(&mut self, bytes: &[u8]) -> Result<()> {
        if let ColumnBuilder::Binary(b) = self {
            b.append_value(bytes);
            return Ok(());
        }
        let text = String::from_utf8_lossy(bytes);
        let text = text.as_ref();
        let invalid = |what: &str| Error::Decode(format!("invalid {what} value from the source"));
        match self {
            ColumnBuilder::Bool(b) => b.append_value(text != "0"),
            ColumnBuilder::Int8(b) => b.append_value(text.parse().map_err(|_| invalid("tinyint"))?),
            ColumnBuilder::Int16(b) => {
                b.append_value(text.parse().map_err(|_| invalid("smallint"))?)
            }
            ColumnBuilder::Int32(b) => b.append_value(text.parse().map_err(|_| invalid("int"))?),
            ColumnBuilder::Int64(b) => b.append_value(text.parse().map_err(|_| invalid("bigint"))?),
            ColumnBuilder::Float32(b) => {
                b.append_value(text.parse().map_err(|_| invalid("float"))?)
            }
            ColumnBuilder::Float64(b) => {
                b.append_value(text.parse().map_err(|_| invalid("double"))?)
            }
            ColumnBuilder::Decimal(b, _, scale) => {
                b.append_value(parse_decimal(text, *scale).ok_or_else(|| invalid("decimal"))?)
            }
            ColumnBuilder::Utf8(b) => b.append_value(text),
            ColumnBuilder::Binary(b) => b.append_value(bytes),
            // MySQL's zero dates have no calendar day: NULL, as MySQL's own
            // zero_date_time_behavior=convertToNull does.
            ColumnBuilder::Date32(b) => b.append_option(parse_date(text)),
            ColumnBuilder::Timestamp(b, _) => b.append_option(parse_timestamp(text)),
        }
        Ok(())
    }

    /// Appends a value of PostgreSQL's binary COPY format.
    pub fn append_pg(&mut self, kind: PgKind, bytes: &[u8]) -> Result<()> {
        let short = || Error::Decode(format!("truncated {kind:?} value in COPY data"));
        fn array<const N: usize>(bytes: &[u8]) -> Option<[u8; N]> {
            bytes.get(..N).and_then(|b| b.try_into().ok())
        }
        match (self, kind) {
            (ColumnBuilder::Bool(b), PgKind::Bool) => {
                b.append_value(bytes.first().ok_or_else(short)? != &0)
            }
            (ColumnBuilder::Int16(b), PgKind::Int2) => {
                b.append_value(i16::from_be_bytes(array(bytes).ok_or_else(short)?))
            }
            (ColumnBuilder::Int32(b), PgKind::Int4) => {
                b.append_value(i32::from_be_bytes(array(bytes).ok_or_else(short)?))
            }
            (ColumnBuilder::Int64(b), PgKind::Int8) => {
                b.append_value(i64::from_be_bytes(array(bytes).ok_or_else(short)?))
            }
            (ColumnBuilder::Float32(b), PgKind::Float4) => {
                b.append_value(f32::from_be_bytes(array(bytes).ok_or_else(short)?))
            }
            (ColumnBuilder::Float64(b), PgKind::Float8) => {
                b.append_value(f64::from_be_bytes(array(bytes).ok_or_else(short)?))
            }
            (ColumnBuilder::Decimal(b, _, scale), PgKind::Numeric) => {
                b.append_value(pg_numeric(bytes, *scale)?)
            }
            (ColumnBuilder::Date32(b), PgKind::Date) => {
                let days = i32::from_be_bytes(array(bytes).ok_or_else(short)?);
                // ±infinity have no calendar day.
                if days == i32::MAX || days == i32::MIN {
                    b.append_null()
                } else {
                    b.append_value(days.saturating_add(PG_EPOCH_DAYS))
                }
            }
            (ColumnBuilder::Timestamp(b, _), PgKind::Timestamp | PgKind::TimestampTz) => {
                let micros = i64::from_be_bytes(array(bytes).ok_or_else(short)?);
                if micros == i64::MAX || micros == i64::MIN {
                    b.append_null()
                } else {
                    b.append_value(micros.saturating_add(PG_EPOCH_MICROS))
                }
            }
            (ColumnBuilder::Utf8(b), PgKind::Uuid) => {
                let uuid = uuid::Uuid::from_slice(bytes).map_err(|_| short())?;
                b.append_value(uuid.hyphenated().to_string())
            }
            (ColumnBuilder::Utf8(b), PgKind::Jsonb) => {
                // Version byte 1, then the JSON text.
                b.append_value(String::from_utf8_lossy(bytes.get(1..).ok_or_else(short)?))
            }
            (ColumnBuilder::Utf8(b), PgKind::Text | PgKind::Json) => {
                b.append_value(String::from_utf8_lossy(bytes))
            }
            (ColumnBuilder::Binary(b), PgKind::Bytea) => b.append_value(bytes),
            (_, kind) => {
                return Err(Error::Decode(format!(
                    "no decoder from PostgreSQL {kind:?} to the column's Arrow type"
                )));
            }
        }
        Ok(())
    }

    /// The finished array.
    pub fn finish(&mut self) -> ArrayRef {
        match self {
            ColumnBuilder::Bool(b) => Arc::new(b.finish()),
            ColumnBuilder::Int8(b) => Arc::new(b.finish()),
            ColumnBuilder::Int16(b) => Arc::new(b.finish()),
            ColumnBuilder::Int32(b) => Arc::new(b.finish()),
            ColumnBuilder::Int64(b) => Arc::new(b.finish()),
            ColumnBuilder::Float32(b) => Arc::new(b.finish()),
            ColumnBuilder::Float64(b) => Arc::new(b.finish()),
            ColumnBuilder::Decimal(b, p, s) => Arc::new(
                b.finish()
                    .with_precision_and_scale(*p, *s)
                    .unwrap_or_else(|_| Decimal128Builder::new().finish()),
            ),
            ColumnBuilder::Utf8(b) => Arc::new(b.finish()),
            ColumnBuilder::Binary(b) => Arc::new(b.finish()),
            ColumnBuilder::Date32(b) => Arc::new(b.finish()),
            ColumnBuilder::Timestamp(b, tz) => Arc::new(b.finish().with_timezone_opt(tz.clone())),
        }
    }
}

/// Builders for every column of a schema, finished together into record batches.
pub struct BatchBuilder {
    schema: SchemaRef,
    columns: Vec<ColumnBuilder>,
    rows: usize,
}

impl BatchBuilder {
    /// Builders for `schema`, sized for `capacity` rows.
    pub fn new(schema: SchemaRef, capacity: usize) -> Result<BatchBuilder> {
        let columns = schema
            .fields()
            .iter()
            .map(|f| ColumnBuilder::new(f.data_type(), capacity))
            .collect::<Result<Vec<_>>>()?;
        Ok(BatchBuilder {
            schema,
            columns,
            rows: 0,
        })
    }

    /// The builder of column `idx`.
    pub fn column(&mut self, idx: usize) -> Option<&mut ColumnBuilder> {
        self.columns.get_mut(idx)
    }

    /// Counts one more complete row.
    pub fn end_row(&mut self) {
        self.rows += 1;
    }

    /// Rows since the last [`BatchBuilder::finish`].
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The rows so far as a record batch; the builders start over.
    pub fn finish(&mut self) -> Result<RecordBatch> {
        let arrays: Vec<ArrayRef> = self.columns.iter_mut().map(|c| c.finish()).collect();
        self.rows = 0;
        Ok(RecordBatch::try_new(self.schema.clone(), arrays)?)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn mysql_types_map_faithfully() {
        assert_eq!(
            mysql_type("int", "int(11)", Some(10), Some(0)),
            DataType::Int32
        );
        assert_eq!(
            mysql_type("int", "int(10) unsigned", None, None),
            DataType::Int64
        );
        assert_eq!(
            mysql_type("bigint", "bigint(20)", None, None),
            DataType::Int64
        );
        assert_eq!(
            mysql_type("tinyint", "tinyint(1)", None, None),
            DataType::Boolean
        );
        assert_eq!(
            mysql_type("tinyint", "tinyint(4)", None, None),
            DataType::Int8
        );
        assert_eq!(
            mysql_type("decimal", "decimal(10,2)", Some(10), Some(2)),
            DataType::Decimal128(10, 2)
        );
        assert_eq!(
            mysql_type("decimal", "decimal(65,2)", Some(65), Some(2)),
            DataType::Utf8
        );
        assert_eq!(
            mysql_type("varchar", "varchar(100)", None, None),
            DataType::Utf8
        );
        assert_eq!(mysql_type("text", "text", None, None), DataType::Utf8);
        assert_eq!(mysql_type("date", "date", None, None), DataType::Date32);
        assert_eq!(
            mysql_type("datetime", "datetime", None, None),
            DataType::Timestamp(TimeUnit::Microsecond, None)
        );
        assert_eq!(
            mysql_type("timestamp", "timestamp(6)", None, None),
            DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC")))
        );
        assert_eq!(mysql_type("blob", "blob", None, None), DataType::Binary);
    }

    #[test]
    fn postgres_types_map_faithfully() {
        assert_eq!(postgres_type("int4", None, None).0, DataType::Int32);
        assert_eq!(postgres_type("int8", None, None).0, DataType::Int64);
        assert_eq!(
            postgres_type("numeric", Some(12), Some(3)).0,
            DataType::Decimal128(12, 3)
        );
        assert_eq!(
            postgres_type("numeric", None, None).0,
            DataType::Decimal128(38, 10)
        );
        assert_eq!(
            postgres_type("varchar", None, None),
            (DataType::Utf8, PgKind::Text, false)
        );
        assert_eq!(
            postgres_type("uuid", None, None),
            (DataType::Utf8, PgKind::Uuid, false)
        );
        assert_eq!(
            postgres_type("jsonb", None, None),
            (DataType::Utf8, PgKind::Jsonb, false)
        );
        assert_eq!(
            postgres_type("interval", None, None),
            (DataType::Utf8, PgKind::Text, true)
        );
        assert_eq!(postgres_type("bool", None, None).0, DataType::Boolean);
        assert_eq!(
            postgres_type("timestamptz", None, None).0,
            DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC")))
        );
    }

    #[test]
    fn text_values_parse() {
        assert_eq!(parse_decimal("-12.5", 2), Some(-1250));
        assert_eq!(parse_decimal("3", 2), Some(300));
        assert_eq!(parse_decimal("0.129", 2), Some(12));
        assert_eq!(parse_decimal("x", 2), None);
        assert_eq!(parse_date("1970-01-02"), Some(1));
        assert_eq!(parse_date("0000-00-00"), None);
        assert_eq!(parse_timestamp("1970-01-01 00:00:01.5"), Some(1_500_000));
        assert_eq!(parse_timestamp("1970-01-01 00:00:01"), Some(1_000_000));
        assert_eq!(format_date(1), "1970-01-02");
        assert_eq!(format_timestamp(1_500_000), "1970-01-01 00:00:01.500000");
    }

    #[test]
    fn pg_binary_numeric() {
        // 1234.5678 = digits [1234, 5678], weight 0, dscale 4.
        let bytes = [0, 2, 0, 0, 0, 0, 0, 4, 0x04, 0xD2, 0x16, 0x2E];
        assert_eq!(pg_numeric(&bytes, 4).unwrap(), 12_345_678);
        assert_eq!(pg_numeric(&bytes, 2).unwrap(), 123_456);
        // -20000 = digits [2], weight 1, negative.
        let bytes = [0, 1, 0, 1, 0x40, 0, 0, 0, 0, 2];
        assert_eq!(pg_numeric(&bytes, 0).unwrap(), -20_000);
        // 0.05 = digits [500], weight -1, dscale 2.
        let bytes = [0, 1, 0xFF, 0xFF, 0, 0, 0, 2, 0x01, 0xF4];
        assert_eq!(pg_numeric(&bytes, 2).unwrap(), 5);
    }

    #[test]
    fn builders_make_arrays() {
        let mut b = ColumnBuilder::new(&DataType::Int32, 4).unwrap();
        b.append_text(b"42").unwrap();
        b.append_null();
        b.append_pg(PgKind::Int4, &7i32.to_be_bytes()).unwrap();
        let array = b.finish();
        assert_eq!(array.len(), 3);
        assert_eq!(array.null_count(), 1);
        let mut d = ColumnBuilder::new(&DataType::Date32, 1).unwrap();
        d.append_pg(PgKind::Date, &0i32.to_be_bytes()).unwrap();
        let dates = d.finish();
        let dates = dates
            .as_any()
            .downcast_ref::<datafusion::arrow::array::Date32Array>()
            .unwrap();
        assert_eq!(dates.value(0), PG_EPOCH_DAYS);
        assert!(
            ColumnBuilder::new(&DataType::Int32, 1)
                .unwrap()
                .append_text(b"x")
                .is_err()
        );
    }
}
