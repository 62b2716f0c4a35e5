//! Arrow record batches to PostgreSQL DataRow messages, in text or binary per column, written
//! straight into the output buffer (no per-row allocation).
//!
//! Text output follows PostgreSQL's output functions (`t`/`f`, shortest round-trip floats with
//! PostgreSQL's exponent style, `YYYY-MM-DD HH:MM:SS[.ffffff][+00]`, `\x` bytea, `{a,b}` arrays);
//! binary output follows the `*send` functions (big-endian integers, numeric in base 10000,
//! dates and timestamps from 2000-01-01).

use std::fmt::Write as _;
use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float16Array, Int8Array, Int16Array, Int32Array, Int64Array,
    IntervalDayTimeArray, IntervalMonthDayNanoArray, IntervalYearMonthArray,
    Time32MillisecondArray, Time32SecondArray, Time64MicrosecondArray, Time64NanosecondArray,
    TimestampMicrosecondArray, TimestampMillisecondArray, TimestampNanosecondArray,
    TimestampSecondArray, UInt8Array, UInt16Array, UInt32Array, UInt64Array,
};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Date64Type, Decimal32Type, Decimal64Type, Decimal128Type, Decimal256Type,
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, IntervalUnit, TimeUnit,
    UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use datafusion::arrow::record_batch::RecordBatch;

use crate::pg::copy::{self, CopyFormat, CopyRows};
use crate::pg::types::{self as pgtype, PgType, oid};

use super::{PG_EPOCH_DAYS, PG_EPOCH_MICROS};

/// Wire format of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Text (format code 0).
    Text,
    /// Binary (format code 1).
    Binary,
}

impl Format {
    /// The format code.
    pub fn code(self) -> i16 {
        match self {
            Format::Text => 0,
            Format::Binary => 1,
        }
    }

    /// The formats of `n` columns from Bind's result-format codes (none = all text, one = all
    /// columns, else one per column).
    pub fn from_codes(codes: &[i16], n: usize) -> Result<Vec<Format>, String> {
        let one = |c: i16| match c {
            0 => Ok(Format::Text),
            1 => Ok(Format::Binary),
            other => Err(format!("unsupported format code: {other}")),
        };
        match codes.len() {
            0 => Ok(vec![Format::Text; n]),
            1 => Ok(vec![one(codes[0])?; n]),
            m if m == n => codes.iter().map(|c| one(*c)).collect(),
            m => Err(format!(
                "bind message has {m} result formats but query has {n} columns"
            )),
        }
    }
}

/// Encodes the rows of record batches for one result.
#[derive(Debug, Clone)]
pub struct RowEncoder {
    columns: Vec<(PgType, Format)>,
    /// The session time zone `timestamptz` text is shown in; `None` is UTC.
    zone: Option<chrono_tz::Tz>,
}

impl RowEncoder {
    /// An encoder for columns of these types in these formats.
    pub fn new(types: Vec<PgType>, formats: Vec<Format>) -> RowEncoder {
        RowEncoder {
            columns: types.into_iter().zip(formats).collect(),
            zone: None,
        }
    }

    /// Shows `timestamptz` text in this session time zone (`sql::zone::zone` of its name).
    pub fn with_zone(mut self, zone: Option<chrono_tz::Tz>) -> RowEncoder {
        self.zone = zone;
        self
    }

    /// The batch's columns, unpacked for the writers, as many as the description has.
    fn columns_of(&self, batch: &RecordBatch) -> Result<Vec<ArrayRef>, String> {
        let arrays: Vec<ArrayRef> = batch
            .columns()
            .iter()
            .map(|a| normalize(a.clone()))
            .collect::<Result<_, _>>()?;
        if arrays.len() != self.columns.len() {
            return Err(format!(
                "result has {} columns, description has {}",
                arrays.len(),
                self.columns.len()
            ));
        }
        Ok(arrays)
    }

    /// Appends one DataRow message per row of `batch` to `out`.
    pub fn encode(&self, batch: &RecordBatch, out: &mut BytesMut) -> Result<(), String> {
        let arrays = self.columns_of(batch)?;
        let mut text = String::new();
        for row in 0..batch.num_rows() {
            out.put_u8(b'D');
            let start = out.len();
            out.put_i32(0);
            out.put_i16(arrays.len() as i16);
            for (array, (pg_type, format)) in arrays.iter().zip(&self.columns) {
                // A NullArray has no validity buffer: `is_null` says false for its rows.
                if array.is_null(row) || array.data_type() == &DataType::Null {
                    out.put_i32(-1);
                    continue;
                }
                let len_pos = out.len();
                out.put_i32(0);
                match format {
                    Format::Text => {
                        text.clear();
                        write_text(array.as_ref(), row, pg_type, self.zone.as_ref(), &mut text)?;
                        out.put_slice(text.as_bytes());
                    }
                    Format::Binary => write_binary(array.as_ref(), row, pg_type, out)?,
                }
                let len = (out.len() - len_pos - 4) as i32;
                out[len_pos..len_pos + 4].copy_from_slice(&len.to_be_bytes());
            }
            let len = (out.len() - start) as i32;
            out[start..start + 4].copy_from_slice(&len.to_be_bytes());
        }
        Ok(())
    }
}

/// Where a `COPY ... TO STDOUT` stands: the binary signature goes out with the first message.
#[derive(Debug, Clone)]
pub struct CopyState {
    /// The COPY's columns and options.
    pub rows: Box<CopyRows>,
    /// The binary signature is still to be sent.
    signature_pending: bool,
}

impl CopyState {
    /// The state of a COPY about to start.
    pub fn new(rows: Box<CopyRows>) -> CopyState {
        CopyState {
            signature_pending: rows.options.format == CopyFormat::Binary,
            rows,
        }
    }

    /// An encoder for the COPY's columns in its format.
    pub fn encoder(&self) -> RowEncoder {
        let format = match self.rows.options.format {
            CopyFormat::Binary => Format::Binary,
            _ => Format::Text,
        };
        RowEncoder::new(
            self.rows.fields.iter().map(|f| f.pg_type).collect(),
            vec![format; self.rows.fields.len()],
        )
    }

    /// Appends CopyOutResponse and, when asked for, the header line.
    pub fn start(&self, out: &mut BytesMut) {
        let options = &self.rows.options;
        let n = self.rows.fields.len();
        out.put_u8(b'H');
        out.put_i32(4 + 1 + 2 + 2 * n as i32);
        out.put_i8(options.format.code());
        out.put_i16(n as i16);
        for _ in 0..n {
            out.put_i16(i16::from(options.format.code()));
        }
        if options.header && options.format != CopyFormat::Binary {
            let mut line = Vec::new();
            for (idx, field) in self.rows.fields.iter().enumerate() {
                if idx > 0 {
                    line.push(options.delimiter);
                }
                match options.format {
                    CopyFormat::Csv => {
                        copy::csv_value(&field.name, options, false, n == 1, &mut line)
                    }
                    _ => copy::text_value(&field.name, options.delimiter, &mut line),
                }
            }
            line.push(b'\n');
            copy_data(out, &line);
        }
    }

    /// Appends the binary trailer (with the signature if no row carried it) and CopyDone.
    pub fn finish(&mut self, out: &mut BytesMut) {
        if self.rows.options.format == CopyFormat::Binary {
            let mut last = Vec::new();
            if std::mem::take(&mut self.signature_pending) {
                last.extend_from_slice(copy::BINARY_HEADER);
            }
            last.extend_from_slice(&(-1i16).to_be_bytes());
            copy_data(out, &last);
        }
        out.put_u8(b'c');
        out.put_i32(4);
    }
}

fn copy_data(out: &mut BytesMut, payload: &[u8]) {
    out.put_u8(b'd');
    out.put_i32(4 + payload.len() as i32);
    out.put_slice(payload);
}

impl RowEncoder {
    /// Appends one CopyData message per row of `batch`, as PostgreSQL sends them.
    pub fn encode_copy(
        &self,
        batch: &RecordBatch,
        copy: &mut CopyState,
        out: &mut BytesMut,
    ) -> Result<(), String> {
        let arrays = self.columns_of(batch)?;
        let options = &copy.rows.options;
        let single = arrays.len() == 1;
        let mut text = String::new();
        let mut line = Vec::new();
        for row in 0..batch.num_rows() {
            out.put_u8(b'd');
            let start = out.len();
            out.put_i32(0);
            if options.format == CopyFormat::Binary {
                if std::mem::take(&mut copy.signature_pending) {
                    out.put_slice(copy::BINARY_HEADER);
                }
                out.put_i16(arrays.len() as i16);
                for (array, (pg_type, _)) in arrays.iter().zip(&self.columns) {
                    if array.is_null(row) || array.data_type() == &DataType::Null {
                        out.put_i32(-1);
                        continue;
                    }
                    let len_pos = out.len();
                    out.put_i32(0);
                    write_binary(array.as_ref(), row, pg_type, out)?;
                    let len = (out.len() - len_pos - 4) as i32;
                    out[len_pos..len_pos + 4].copy_from_slice(&len.to_be_bytes());
                }
            } else {
                line.clear();
                for (idx, (array, (pg_type, _))) in arrays.iter().zip(&self.columns).enumerate() {
                    if idx > 0 {
                        line.push(options.delimiter);
                    }
                    if array.is_null(row) || array.data_type() == &DataType::Null {
                        line.extend_from_slice(options.null.as_bytes());
                        continue;
                    }
                    text.clear();
                    write_text(array.as_ref(), row, pg_type, self.zone.as_ref(), &mut text)?;
                    match options.format {
                        CopyFormat::Csv => copy::csv_value(
                            &text,
                            options,
                            copy.rows.force_quote.get(idx).copied().unwrap_or(false),
                            single,
                            &mut line,
                        ),
                        _ => copy::text_value(&text, options.delimiter, &mut line),
                    }
                }
                line.push(b'\n');
                out.put_slice(&line);
            }
            let len = (out.len() - start) as i32;
            out[start..start + 4].copy_from_slice(&len.to_be_bytes());
        }
        Ok(())
    }
}

/// Unpacks dictionaries and views so the writers see plain arrays.
fn normalize(array: ArrayRef) -> Result<ArrayRef, String> {
    match array.data_type() {
        DataType::Dictionary(_, value) => {
            datafusion::arrow::compute::cast(&array, value).map_err(|e| e.to_string())
        }
        DataType::RunEndEncoded(_, values) => {
            datafusion::arrow::compute::cast(&array, values.data_type()).map_err(|e| e.to_string())
        }
        _ => Ok(array),
    }
}

fn write_text(
    array: &dyn Array,
    row: usize,
    pg_type: &PgType,
    zone: Option<&chrono_tz::Tz>,
    out: &mut String,
) -> Result<(), String> {
    macro_rules! prim {
        ($t:ty) => {{
            let _ = write!(
                out,
                "{}",
                array
                    .as_any()
                    .downcast_ref::<$t>()
                    .map(|a| a.value(row))
                    .unwrap_or_default()
            );
        }};
    }
    if pg_type.oid == oid::REGPROC
        && let Some(oids) = array.as_any().downcast_ref::<UInt32Array>()
    {
        out.push_str(&crate::pg::regproc::name(oids.value(row)));
        return Ok(());
    }
    match array.data_type() {
        DataType::Boolean => {
            let v = array.as_boolean().value(row);
            out.push(if v { 't' } else { 'f' });
        }
        DataType::Int8 => prim!(Int8Array),
        DataType::Int16 => prim!(Int16Array),
        DataType::Int32 => prim!(Int32Array),
        DataType::Int64 => prim!(Int64Array),
        DataType::UInt8 => prim!(UInt8Array),
        DataType::UInt16 => prim!(UInt16Array),
        DataType::UInt32 => prim!(UInt32Array),
        DataType::UInt64 => prim!(UInt64Array),
        DataType::Float16 => {
            let v = array
                .as_any()
                .downcast_ref::<Float16Array>()
                .map(|a| a.value(row).to_f32())
                .unwrap_or_default();
            float_text(f64::from(v), 6, out);
        }
        DataType::Float32 => float32_text(array.as_primitive::<Float32Type>().value(row), out),
        DataType::Float64 => float_text(array.as_primitive::<Float64Type>().value(row), 15, out),
        DataType::Decimal128(_, scale) => decimal_text(
            array.as_primitive::<Decimal128Type>().value(row),
            *scale,
            out,
        ),
        DataType::Decimal256(_, scale) => {
            let digits = array
                .as_primitive::<Decimal256Type>()
                .value(row)
                .to_string();
            decimal_string_text(&digits, *scale, out);
        }
        DataType::Decimal32(_, scale) => {
            let v = array.as_primitive::<Decimal32Type>().value(row);
            decimal_text(i128::from(v), *scale, out);
        }
        DataType::Decimal64(_, scale) => {
            let v = array.as_primitive::<Decimal64Type>().value(row);
            decimal_text(i128::from(v), *scale, out);
        }
        DataType::Utf8 => out.push_str(array.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => out.push_str(array.as_string::<i64>().value(row)),
        DataType::Utf8View => out.push_str(array.as_string_view().value(row)),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => {
            let bytes = binary_value(array, row);
            out.push_str("\\x");
            for b in bytes {
                let _ = write!(out, "{b:02x}");
            }
        }
        DataType::Date32 => date_text(array.as_primitive::<Date32Type>().value(row), out),
        DataType::Date64 => {
            let ms = array.as_primitive::<Date64Type>().value(row);
            date_text(ms.div_euclid(86_400_000) as i32, out);
        }
        DataType::Timestamp(unit, tz) => {
            let micros = timestamp_micros(array, row, *unit);
            if tz.is_some() {
                // An instant: its wall-clock time in the session zone, and that zone's offset.
                let mut offset = String::new();
                let shift = crate::sql::zone::format_offset(zone, micros, &mut offset);
                timestamp_text(micros.saturating_add(shift), &offset, out);
            } else {
                timestamp_text(micros, "", out);
            }
        }
        DataType::Time32(_) | DataType::Time64(_) => {
            let micros = time_micros(array, row);
            time_text(micros, out);
        }
        DataType::Interval(_) | DataType::Duration(_) => {
            let (months, days, micros) = interval_parts(array, row);
            interval_text(months, days, micros, out);
        }
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(_, _) => {
            if pg_type.oid == oid::JSON {
                json_text(array, row, out)?;
            } else {
                let values = list_value(array, row);
                array_text(values.as_ref(), pg_type, zone, out)?;
            }
        }
        DataType::Struct(_) | DataType::Map(_, _) => json_text(array, row, out)?,
        DataType::Null => {}
        other => return Err(format!("cannot encode values of type {other}")),
    }
    Ok(())
}

fn binary_value(array: &dyn Array, row: usize) -> &[u8] {
    match array.data_type() {
        DataType::Binary => array.as_binary::<i32>().value(row),
        DataType::LargeBinary => array.as_binary::<i64>().value(row),
        DataType::BinaryView => array.as_binary_view().value(row),
        DataType::FixedSizeBinary(_) => array.as_fixed_size_binary().value(row),
        _ => &[],
    }
}

fn list_value(array: &dyn Array, row: usize) -> ArrayRef {
    match array.data_type() {
        DataType::List(_) => array.as_list::<i32>().value(row),
        DataType::LargeList(_) => array.as_list::<i64>().value(row),
        DataType::FixedSizeList(_, _) => array.as_fixed_size_list().value(row),
        _ => Arc::new(datafusion::arrow::array::NullArray::new(0)),
    }
}

/// PostgreSQL's array output: `{1,2,NULL,"a b"}`.
fn array_text(
    values: &dyn Array,
    pg_type: &PgType,
    zone: Option<&chrono_tz::Tz>,
    out: &mut String,
) -> Result<(), String> {
    let element = pg_type.element().unwrap_or(PgType::plain(oid::TEXT));
    out.push('{');
    let mut item = String::new();
    for idx in 0..values.len() {
        if idx > 0 {
            out.push(',');
        }
        if values.is_null(idx) {
            out.push_str("NULL");
            continue;
        }
        item.clear();
        write_text(values, idx, &element, zone, &mut item)?;
        let needs_quotes = item.is_empty()
            || item.eq_ignore_ascii_case("null")
            || item
                .chars()
                .any(|c| matches!(c, '{' | '}' | ',' | '"' | '\\') || c.is_whitespace());
        if needs_quotes {
            out.push('"');
            for c in item.chars() {
                if c == '"' || c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
        } else {
            out.push_str(&item);
        }
    }
    out.push('}');
    Ok(())
}

/// Nested values (structs, maps, nested lists) as JSON text.
fn json_text(array: &dyn Array, row: usize, out: &mut String) -> Result<(), String> {
    let value =
        datafusion::common::ScalarValue::try_from_array(array, row).map_err(|e| e.to_string())?;
    let json = scalar_json(&value);
    out.push_str(&json.to_string());
    Ok(())
}

/// A value as JSON: numbers and booleans bare, lists as arrays, structs as objects, anything
/// else as its PostgreSQL text in a string.
pub fn scalar_json(value: &datafusion::common::ScalarValue) -> serde_json::Value {
    use datafusion::common::ScalarValue as S;
    use serde_json::Value as J;
    if value.is_null() {
        return J::Null;
    }
    match value {
        S::Boolean(Some(b)) => J::Bool(*b),
        S::Int8(Some(v)) => J::from(*v),
        S::Int16(Some(v)) => J::from(*v),
        S::Int32(Some(v)) => J::from(*v),
        S::Int64(Some(v)) => J::from(*v),
        S::UInt8(Some(v)) => J::from(*v),
        S::UInt16(Some(v)) => J::from(*v),
        S::UInt32(Some(v)) => J::from(*v),
        S::UInt64(Some(v)) => J::from(*v),
        S::Float32(Some(v)) => serde_json::Number::from_f64(f64::from(*v))
            .map(J::Number)
            .unwrap_or(J::Null),
        S::Float64(Some(v)) => serde_json::Number::from_f64(*v)
            .map(J::Number)
            .unwrap_or(J::Null),
        S::Utf8(Some(s)) | S::LargeUtf8(Some(s)) | S::Utf8View(Some(s)) => J::String(s.clone()),
        S::Struct(array) => {
            let mut map = serde_json::Map::new();
            for (field, column) in array.fields().iter().zip(array.columns()) {
                let v = datafusion::common::ScalarValue::try_from_array(column.as_ref(), 0)
                    .map(|s| scalar_json(&s))
                    .unwrap_or(J::Null);
                map.insert(field.name().clone(), v);
            }
            J::Object(map)
        }
        S::List(array) => list_json(array.value(0).as_ref()),
        S::LargeList(array) => list_json(array.value(0).as_ref()),
        S::FixedSizeList(array) => list_json(array.value(0).as_ref()),
        other => {
            let mut text = String::new();
            match other.to_array() {
                Ok(array) => {
                    if write_text(
                        array.as_ref(),
                        0,
                        &pgtype::pg_type_of(array.data_type()),
                        None,
                        &mut text,
                    )
                    .is_ok()
                    {
                        J::String(text)
                    } else {
                        J::String(other.to_string())
                    }
                }
                Err(_) => J::String(other.to_string()),
            }
        }
    }
}

fn list_json(values: &dyn Array) -> serde_json::Value {
    serde_json::Value::Array(
        (0..values.len())
            .map(|i| {
                datafusion::common::ScalarValue::try_from_array(values, i)
                    .map(|s| scalar_json(&s))
                    .unwrap_or(serde_json::Value::Null)
            })
            .collect(),
    )
}

/// PostgreSQL's `float8out` with `extra_float_digits` >= 1: the shortest text that reads back
/// to the same value, in fixed notation for exponents in [-4, `max_fixed`), else `1e+21`.
fn float_text(v: f64, max_fixed: i32, out: &mut String) {
    if v.is_nan() {
        out.push_str("NaN");
        return;
    }
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "Infinity" } else { "-Infinity" });
        return;
    }
    if v == 0.0 {
        out.push_str(if v.is_sign_negative() { "-0" } else { "0" });
        return;
    }
    // Rust's `{:e}` prints the shortest round-trip digits: "1.2345e-5".
    let sci = format!("{v:e}");
    shortest_to_pg(&sci, max_fixed, out);
}

fn float32_text(v: f32, out: &mut String) {
    if v.is_nan() {
        out.push_str("NaN");
        return;
    }
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "Infinity" } else { "-Infinity" });
        return;
    }
    if v == 0.0 {
        out.push_str(if v.is_sign_negative() { "-0" } else { "0" });
        return;
    }
    let sci = format!("{v:e}");
    shortest_to_pg(&sci, 6, out);
}

fn shortest_to_pg(sci: &str, max_fixed: i32, out: &mut String) {
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    if negative {
        out.push('-');
    }
    if exponent < -4 || exponent >= max_fixed {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let sign = if exponent < 0 { '-' } else { '+' };
        let _ = write!(out, "e{sign}{:02}", exponent.abs());
    } else if exponent < 0 {
        out.push_str("0.");
        for _ in 0..(-exponent - 1) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let int_len = (exponent + 1) as usize;
        if digits.len() <= int_len {
            out.push_str(&digits);
            for _ in digits.len()..int_len {
                out.push('0');
            }
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    }
}

fn decimal_text(value: i128, scale: i8, out: &mut String) {
    decimal_string_text(&value.to_string(), scale, out);
}

fn decimal_string_text(digits: &str, scale: i8, out: &mut String) {
    let (negative, digits) = match digits.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, digits),
    };
    if negative {
        out.push('-');
    }
    if scale <= 0 {
        out.push_str(digits);
        for _ in 0..(-i32::from(scale)) {
            out.push('0');
        }
        return;
    }
    let scale = scale as usize;
    if digits.len() <= scale {
        out.push_str("0.");
        for _ in digits.len()..scale {
            out.push('0');
        }
        out.push_str(digits);
    } else {
        let (int_part, frac) = digits.split_at(digits.len() - scale);
        out.push_str(int_part);
        out.push('.');
        out.push_str(frac);
    }
}

fn date_text(days: i32, out: &mut String) {
    match chrono::NaiveDate::from_num_days_from_ce_opt(days + 719_163) {
        Some(date) => {
            use chrono::Datelike;
            let year = date.year();
            if year <= 0 {
                let _ = write!(
                    out,
                    "{:04}-{:02}-{:02} BC",
                    1 - year,
                    date.month(),
                    date.day()
                );
            } else {
                let _ = write!(out, "{:04}-{:02}-{:02}", year, date.month(), date.day());
            }
        }
        None => out.push_str("infinity"),
    }
}

fn timestamp_micros(array: &dyn Array, row: usize, unit: TimeUnit) -> i64 {
    let any = array.as_any();
    match unit {
        TimeUnit::Second => any
            .downcast_ref::<TimestampSecondArray>()
            .map(|a| a.value(row).saturating_mul(1_000_000)),
        TimeUnit::Millisecond => any
            .downcast_ref::<TimestampMillisecondArray>()
            .map(|a| a.value(row).saturating_mul(1000)),
        TimeUnit::Microsecond => any
            .downcast_ref::<TimestampMicrosecondArray>()
            .map(|a| a.value(row)),
        TimeUnit::Nanosecond => any
            .downcast_ref::<TimestampNanosecondArray>()
            .map(|a| a.value(row).div_euclid(1000)),
    }
    .unwrap_or_default()
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]`, then `offset` (empty for a `timestamp`), then ` BC`.
fn timestamp_text(micros: i64, offset: &str, out: &mut String) {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    match chrono::DateTime::from_timestamp(secs, 0) {
        Some(t) => {
            use chrono::{Datelike, Timelike};
            let year = t.year();
            if year <= 0 {
                let _ = write!(
                    out,
                    "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                    1 - year,
                    t.month(),
                    t.day(),
                    t.hour(),
                    t.minute(),
                    t.second()
                );
            } else {
                let _ = write!(
                    out,
                    "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                    year,
                    t.month(),
                    t.day(),
                    t.hour(),
                    t.minute(),
                    t.second()
                );
            }
            fraction(frac, out);
            out.push_str(offset);
            if year <= 0 {
                out.push_str(" BC");
            }
        }
        None => out.push_str(if micros > 0 { "infinity" } else { "-infinity" }),
    }
}

fn fraction(micros: i64, out: &mut String) {
    if micros == 0 {
        return;
    }
    let text = format!("{micros:06}");
    out.push('.');
    out.push_str(text.trim_end_matches('0'));
}

fn time_micros(array: &dyn Array, row: usize) -> i64 {
    let any = array.as_any();
    if let Some(a) = any.downcast_ref::<Time32SecondArray>() {
        return i64::from(a.value(row)) * 1_000_000;
    }
    if let Some(a) = any.downcast_ref::<Time32MillisecondArray>() {
        return i64::from(a.value(row)) * 1000;
    }
    if let Some(a) = any.downcast_ref::<Time64MicrosecondArray>() {
        return a.value(row);
    }
    if let Some(a) = any.downcast_ref::<Time64NanosecondArray>() {
        return a.value(row) / 1000;
    }
    0
}

fn time_text(micros: i64, out: &mut String) {
    let secs = micros.div_euclid(1_000_000);
    let _ = write!(
        out,
        "{:02}:{:02}:{:02}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    );
    fraction(micros.rem_euclid(1_000_000), out);
}

fn interval_parts(array: &dyn Array, row: usize) -> (i32, i32, i64) {
    let any = array.as_any();
    match array.data_type() {
        DataType::Interval(IntervalUnit::MonthDayNano) => any
            .downcast_ref::<IntervalMonthDayNanoArray>()
            .map(|a| {
                let v = a.value(row);
                (v.months, v.days, v.nanoseconds / 1000)
            })
            .unwrap_or_default(),
        DataType::Interval(IntervalUnit::DayTime) => any
            .downcast_ref::<IntervalDayTimeArray>()
            .map(|a| {
                let v = a.value(row);
                (0, v.days, i64::from(v.milliseconds) * 1000)
            })
            .unwrap_or_default(),
        DataType::Interval(IntervalUnit::YearMonth) => any
            .downcast_ref::<IntervalYearMonthArray>()
            .map(|a| (a.value(row), 0, 0))
            .unwrap_or_default(),
        DataType::Duration(unit) => {
            let v = match unit {
                TimeUnit::Second => {
                    array
                        .as_primitive::<datafusion::arrow::datatypes::DurationSecondType>()
                        .value(row)
                        * 1_000_000
                }
                TimeUnit::Millisecond => {
                    array
                        .as_primitive::<datafusion::arrow::datatypes::DurationMillisecondType>()
                        .value(row)
                        * 1000
                }
                TimeUnit::Microsecond => array
                    .as_primitive::<datafusion::arrow::datatypes::DurationMicrosecondType>()
                    .value(row),
                TimeUnit::Nanosecond => {
                    array
                        .as_primitive::<datafusion::arrow::datatypes::DurationNanosecondType>()
                        .value(row)
                        / 1000
                }
            };
            (0, 0, v)
        }
        _ => (0, 0, 0),
    }
}

/// PostgreSQL's `postgres` interval style: `1 year 2 mons 3 days 04:05:06.5`.
fn interval_text(months: i32, days: i32, micros: i64, out: &mut String) {
    let mut parts: Vec<String> = Vec::new();
    let years = months / 12;
    let mons = months % 12;
    let plural = |n: i64, unit: &str| -> String {
        if n == 1 || n == -1 {
            format!("{n} {unit}")
        } else {
            format!("{n} {unit}s")
        }
    };
    if years != 0 {
        parts.push(plural(i64::from(years), "year"));
    }
    if mons != 0 {
        parts.push(if mons.abs() == 1 {
            format!("{mons} mon")
        } else {
            format!("{mons} mons")
        });
    }
    if days != 0 {
        parts.push(plural(i64::from(days), "day"));
    }
    if micros != 0 || parts.is_empty() {
        let negative = micros < 0;
        let abs = micros.unsigned_abs();
        let secs = abs / 1_000_000;
        let mut text = format!(
            "{}{:02}:{:02}:{:02}",
            if negative { "-" } else { "" },
            secs / 3600,
            (secs / 60) % 60,
            secs % 60
        );
        fraction((abs % 1_000_000) as i64, &mut text);
        parts.push(text);
    }
    out.push_str(&parts.join(" "));
}

fn write_binary(
    array: &dyn Array,
    row: usize,
    pg_type: &PgType,
    out: &mut BytesMut,
) -> Result<(), String> {
    let any = array.as_any();
    match array.data_type() {
        DataType::Boolean => out.put_u8(u8::from(array.as_boolean().value(row))),
        DataType::Int8 => out.put_i16(i16::from(array.as_primitive::<Int8Type>().value(row))),
        DataType::UInt8 => out.put_i16(i16::from(array.as_primitive::<UInt8Type>().value(row))),
        DataType::Int16 => out.put_i16(array.as_primitive::<Int16Type>().value(row)),
        DataType::UInt16 => out.put_i32(i32::from(array.as_primitive::<UInt16Type>().value(row))),
        DataType::Int32 => out.put_i32(array.as_primitive::<Int32Type>().value(row)),
        DataType::UInt32 => {
            let v = array.as_primitive::<UInt32Type>().value(row);
            if pg_type.len() == 4 {
                // oid, regproc, regclass...: an unsigned 4-byte value.
                out.put_u32(v);
            } else {
                out.put_i64(i64::from(v));
            }
        }
        DataType::Int64 => out.put_i64(array.as_primitive::<Int64Type>().value(row)),
        DataType::UInt64 => {
            let v = array.as_primitive::<UInt64Type>().value(row);
            numeric_binary(&v.to_string(), 0, out);
        }
        DataType::Float16 => out.put_f32(
            any.downcast_ref::<Float16Array>()
                .map(|a| a.value(row).to_f32())
                .unwrap_or_default(),
        ),
        DataType::Float32 => out.put_f32(array.as_primitive::<Float32Type>().value(row)),
        DataType::Float64 => out.put_f64(array.as_primitive::<Float64Type>().value(row)),
        DataType::Decimal32(_, scale)
        | DataType::Decimal64(_, scale)
        | DataType::Decimal128(_, scale)
        | DataType::Decimal256(_, scale) => {
            let digits = match array.data_type() {
                DataType::Decimal32(..) => {
                    array.as_primitive::<Decimal32Type>().value(row).to_string()
                }
                DataType::Decimal64(..) => {
                    array.as_primitive::<Decimal64Type>().value(row).to_string()
                }
                DataType::Decimal128(..) => array
                    .as_primitive::<Decimal128Type>()
                    .value(row)
                    .to_string(),
                _ => array
                    .as_primitive::<Decimal256Type>()
                    .value(row)
                    .to_string(),
            };
            numeric_binary(&digits, *scale, out);
        }
        DataType::Utf8 => text_binary(array.as_string::<i32>().value(row), pg_type, out),
        DataType::LargeUtf8 => text_binary(array.as_string::<i64>().value(row), pg_type, out),
        DataType::Utf8View => text_binary(array.as_string_view().value(row), pg_type, out),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => {
            out.put_slice(binary_value(array, row));
        }
        DataType::Date32 => {
            let days = array.as_primitive::<Date32Type>().value(row);
            out.put_i32(days - PG_EPOCH_DAYS);
        }
        DataType::Date64 => {
            let ms = array.as_primitive::<Date64Type>().value(row);
            out.put_i32(ms.div_euclid(86_400_000) as i32 - PG_EPOCH_DAYS);
        }
        DataType::Timestamp(unit, _) => {
            out.put_i64(timestamp_micros(array, row, *unit) - PG_EPOCH_MICROS)
        }
        DataType::Time32(_) | DataType::Time64(_) => out.put_i64(time_micros(array, row)),
        DataType::Interval(_) | DataType::Duration(_) => {
            let (months, days, micros) = interval_parts(array, row);
            out.put_i64(micros);
            out.put_i32(days);
            out.put_i32(months);
        }
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(_, _)
            if pg_type.oid != oid::JSON =>
        {
            let values = list_value(array, row);
            let element = pg_type.element().unwrap_or(PgType::plain(oid::TEXT));
            out.put_i32(1);
            out.put_i32(i32::from(values.null_count() > 0));
            out.put_u32(element.oid);
            out.put_i32(values.len() as i32);
            // int2vector and oidvector are 0-based; arrays 1-based.
            out.put_i32(if matches!(pg_type.oid, oid::INT2VECTOR | oid::OIDVECTOR) {
                0
            } else {
                1
            });
            for idx in 0..values.len() {
                if values.is_null(idx) {
                    out.put_i32(-1);
                    continue;
                }
                let len_pos = out.len();
                out.put_i32(0);
                write_binary(values.as_ref(), idx, &element, out)?;
                let len = (out.len() - len_pos - 4) as i32;
                out[len_pos..len_pos + 4].copy_from_slice(&len.to_be_bytes());
            }
        }
        DataType::List(_)
        | DataType::LargeList(_)
        | DataType::FixedSizeList(_, _)
        | DataType::Struct(_)
        | DataType::Map(_, _) => {
            // json's binary form is its text.
            let mut text = String::new();
            json_text(array, row, &mut text)?;
            out.put_slice(text.as_bytes());
        }
        other => return Err(format!("cannot encode values of type {other} in binary")),
    }
    Ok(())
}

fn text_binary(value: &str, pg_type: &PgType, out: &mut BytesMut) {
    if pg_type.oid == oid::CHAR {
        // "char" is one byte.
        out.put_u8(value.as_bytes().first().copied().unwrap_or(0));
    } else if pg_type.oid == oid::UUID {
        match uuid::Uuid::parse_str(value) {
            Ok(u) => out.put_slice(u.as_bytes()),
            Err(_) => out.put_slice(value.as_bytes()),
        }
    } else {
        out.put_slice(value.as_bytes());
    }
}

/// PostgreSQL's `numeric_send` for a decimal given as digits and a scale.
fn numeric_binary(digits: &str, scale: i8, out: &mut BytesMut) {
    let (negative, digits) = match digits.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, digits),
    };
    let digits = digits.trim_start_matches('0');
    let dscale = i16::from(scale.max(0));
    // Split into integer and fractional digit strings.
    let (int_part, frac_part): (String, String) = if scale <= 0 {
        let mut s = digits.to_string();
        for _ in 0..(-i32::from(scale)) {
            s.push('0');
        }
        (s, String::new())
    } else {
        let scale = scale as usize;
        if digits.len() <= scale {
            (
                String::new(),
                format!("{}{digits}", "0".repeat(scale - digits.len())),
            )
        } else {
            let (i, f) = digits.split_at(digits.len() - scale);
            (i.to_string(), f.to_string())
        }
    };
    // Group into base-10000 digits: integer part from the right, fraction from the left.
    let int_pad = (4 - int_part.len() % 4) % 4;
    let int_padded = format!("{}{}", "0".repeat(int_pad), int_part);
    let frac_pad = (4 - frac_part.len() % 4) % 4;
    let frac_padded = format!("{}{}", frac_part, "0".repeat(frac_pad));
    let mut groups: Vec<i16> = Vec::new();
    for chunk in int_padded.as_bytes().chunks(4) {
        groups.push(
            std::str::from_utf8(chunk)
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
        );
    }
    let int_groups = groups.len() as i16;
    for chunk in frac_padded.as_bytes().chunks(4) {
        groups.push(
            std::str::from_utf8(chunk)
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
        );
    }
    let mut weight = int_groups - 1;
    // Strip leading and trailing zero groups.
    while groups.first() == Some(&0) {
        groups.remove(0);
        weight -= 1;
    }
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        out.put_i16(0);
        out.put_i16(0);
        out.put_u16(0x0000);
        out.put_i16(dscale);
        return;
    }
    out.put_i16(groups.len() as i16);
    out.put_i16(weight);
    out.put_u16(if negative { 0x4000 } else { 0x0000 });
    out.put_i16(dscale);
    for g in groups {
        out.put_i16(g);
    }
}

/// RowDescription's type size for a type.
pub fn type_size(pg_type: &PgType) -> i16 {
    pgtype::by_oid(pg_type.oid).map(|t| t.len).unwrap_or(-1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(v: f64) -> String {
        let mut s = String::new();
        float_text(v, 15, &mut s);
        s
    }

    #[test]
    fn floats_like_postgres() {
        assert_eq!(text_of(0.1), "0.1");
        assert_eq!(text_of(1.0), "1");
        assert_eq!(text_of(-2.5), "-2.5");
        assert_eq!(text_of(1e21), "1e+21");
        assert_eq!(text_of(1e-5), "1e-05");
        assert_eq!(text_of(0.0001), "0.0001");
        assert_eq!(text_of(123456789012345.0), "123456789012345");
        assert_eq!(text_of(1234567890123456.0), "1.234567890123456e+15");
        assert_eq!(text_of(f64::NAN), "NaN");
        let mut s = String::new();
        float32_text(0.1, &mut s);
        assert_eq!(s, "0.1");
    }

    #[test]
    fn decimals_and_times() {
        let mut s = String::new();
        decimal_text(-1250, 2, &mut s);
        assert_eq!(s, "-12.50");
        s.clear();
        decimal_text(5, 3, &mut s);
        assert_eq!(s, "0.005");
        s.clear();
        timestamp_text(1_700_000_000_123_400, "", &mut s);
        assert_eq!(s, "2023-11-14 22:13:20.1234");
        s.clear();
        date_text(0, &mut s);
        assert_eq!(s, "1970-01-01");
        s.clear();
        interval_text(
            14,
            3,
            4 * 3_600_000_000 + 5 * 60_000_000 + 6_500_000,
            &mut s,
        );
        assert_eq!(s, "1 year 2 mons 3 days 04:05:06.5");
    }

    #[test]
    fn numeric_binary_matches_postgres() {
        // numeric_send of 12345.678 : ndigits 3, weight 1, sign 0, dscale 3, digits 1 2345 6780
        let mut out = BytesMut::new();
        numeric_binary("12345678", 3, &mut out);
        assert_eq!(
            out.as_ref(),
            &[0, 3, 0, 1, 0, 0, 0, 3, 0, 1, 0x09, 0x29, 0x1a, 0x7c]
        );
        let mut out = BytesMut::new();
        numeric_binary("-5", 2, &mut out);
        // -0.05: ndigits 1, weight -1, sign 0x4000, dscale 2, digit 500
        assert_eq!(out.as_ref(), &[0, 1, 0xff, 0xff, 0x40, 0, 0, 2, 0x01, 0xf4]);
        let mut out = BytesMut::new();
        numeric_binary("0", 2, &mut out);
        assert_eq!(out.as_ref(), &[0, 0, 0, 0, 0, 0, 0, 2]);
        // Checked against PostgreSQL 15's numeric_send(10000) and numeric_send(1.50).
        let mut out = BytesMut::new();
        numeric_binary("10000", 0, &mut out);
        assert_eq!(out.as_ref(), &[0, 1, 0, 1, 0, 0, 0, 0, 0, 1]);
        let mut out = BytesMut::new();
        numeric_binary("150", 2, &mut out);
        assert_eq!(out.as_ref(), &[0, 2, 0, 0, 0, 0, 0, 2, 0, 1, 0x13, 0x88]);
    }

    #[test]
    fn formats_from_codes() {
        assert_eq!(
            Format::from_codes(&[], 2).unwrap(),
            vec![Format::Text, Format::Text]
        );
        assert_eq!(
            Format::from_codes(&[1], 2).unwrap(),
            vec![Format::Binary, Format::Binary]
        );
        assert!(Format::from_codes(&[0, 1, 0], 2).is_err());
    }
}
