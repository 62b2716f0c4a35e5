//! Bind parameters from the wire to Arrow scalars, by declared type and format.

use bytes::Bytes;
use datafusion::common::ScalarValue;

use crate::pg::types::oid;
use crate::sql::QueryError;
use crate::sql::error::code;

/// Decodes one parameter value (`None` = SQL NULL) of type `type_oid` in `format` (0 text,
/// 1 binary). `zone` is the session time zone (`None`: UTC), in which a `timestamptz` written
/// without an offset is read.
pub fn decode(
    value: Option<&Bytes>,
    type_oid: u32,
    format: i16,
    zone: Option<&chrono_tz::Tz>,
) -> Result<ScalarValue, QueryError> {
    let Some(bytes) = value else {
        return Ok(null_of(type_oid));
    };
    if format == 1 {
        return decode_binary(bytes, type_oid);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| {
        QueryError::new(
            code::CHARACTER_NOT_IN_REPERTOIRE,
            "invalid byte sequence for encoding \"UTF8\"",
        )
    })?;
    decode_text(text, type_oid, zone)
}

fn null_of(type_oid: u32) -> ScalarValue {
    crate::pg::types::arrow_type_of(type_oid)
        .and_then(|t| ScalarValue::try_from(&t).ok())
        .unwrap_or(ScalarValue::Utf8(None))
}

fn invalid(type_name: &str, text: &str) -> QueryError {
    QueryError::new(
        code::INVALID_TEXT_REPRESENTATION,
        format!("invalid input syntax for type {type_name}: \"{text}\""),
    )
}

fn decode_text(
    text: &str,
    type_oid: u32,
    zone: Option<&chrono_tz::Tz>,
) -> Result<ScalarValue, QueryError> {
    let t = text.trim();
    Ok(match type_oid {
        oid::BOOL => ScalarValue::Boolean(Some(match t.to_lowercase().as_str() {
            "t" | "true" | "yes" | "y" | "on" | "1" => true,
            "f" | "false" | "no" | "n" | "off" | "0" => false,
            _ => return Err(invalid("boolean", text)),
        })),
        oid::INT2 => ScalarValue::Int16(Some(t.parse().map_err(|_| invalid("smallint", text))?)),
        oid::INT4 => ScalarValue::Int32(Some(t.parse().map_err(|_| invalid("integer", text))?)),
        oid::INT8 => ScalarValue::Int64(Some(t.parse().map_err(|_| invalid("bigint", text))?)),
        oid::OID => ScalarValue::UInt32(Some(t.parse().map_err(|_| invalid("oid", text))?)),
        oid::FLOAT4 => ScalarValue::Float32(Some(
            parse_float(t).ok_or_else(|| invalid("real", text))? as f32,
        )),
        oid::FLOAT8 => ScalarValue::Float64(Some(
            parse_float(t).ok_or_else(|| invalid("double precision", text))?,
        )),
        oid::NUMERIC => decimal_from_text(t).ok_or_else(|| invalid("numeric", text))?,
        oid::DATE => {
            let date = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d")
                .map_err(|_| invalid("date", text))?;
            ScalarValue::Date32(Some(date.signed_duration_since(epoch()).num_days() as i32))
        }
        oid::TIMESTAMP => ScalarValue::TimestampMicrosecond(
            Some(parse_timestamp(t).ok_or_else(|| invalid("timestamp", text))?),
            None,
        ),
        oid::TIMESTAMPTZ => ScalarValue::TimestampMicrosecond(
            Some(
                parse_timestamptz(t, zone)
                    .ok_or_else(|| invalid("timestamp with time zone", text))?,
            ),
            Some("UTC".into()),
        ),
        oid::BYTEA => {
            ScalarValue::Binary(Some(parse_bytea(t).ok_or_else(|| invalid("bytea", text))?))
        }
        _ => ScalarValue::Utf8(Some(text.to_string())),
    })
}

fn epoch() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()
}

fn parse_float(t: &str) -> Option<f64> {
    match t.to_lowercase().as_str() {
        "nan" => Some(f64::NAN),
        "infinity" | "inf" | "+infinity" => Some(f64::INFINITY),
        "-infinity" | "-inf" => Some(f64::NEG_INFINITY),
        other => other.parse().ok(),
    }
}

/// `123.45` as a Decimal128 with the scale written.
fn decimal_from_text(t: &str) -> Option<ScalarValue> {
    let (unscaled, scale) = super::decimal_from_text(t)?;
    let digits = unscaled
        .unsigned_abs()
        .checked_ilog10()
        .map_or(1, |d| d + 1) as u8;
    let precision = digits.max(scale as u8).clamp(1, 38);
    Some(ScalarValue::Decimal128(Some(unscaled), precision, scale))
}

fn parse_timestamp(t: &str) -> Option<i64> {
    for format in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d",
    ] {
        if let Ok(ts) = chrono::NaiveDateTime::parse_from_str(t, format) {
            return Some(ts.and_utc().timestamp_micros());
        }
        if format == "%Y-%m-%d"
            && let Ok(d) = chrono::NaiveDate::parse_from_str(t, format)
        {
            return d
                .and_hms_opt(0, 0, 0)
                .map(|ts| ts.and_utc().timestamp_micros());
        }
    }
    None
}

fn parse_timestamptz(t: &str, zone: Option<&chrono_tz::Tz>) -> Option<i64> {
    if let Ok(ts) = chrono::DateTime::parse_from_rfc3339(t) {
        return Some(ts.timestamp_micros());
    }
    for format in [
        "%Y-%m-%d %H:%M:%S%.f%#z",
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%#z",
    ] {
        if let Ok(ts) = chrono::DateTime::parse_from_str(t, format) {
            return Some(ts.timestamp_micros());
        }
    }
    // No offset: a wall-clock time in the session time zone (the earlier of two in the hour
    // a clock goes back; a time a clock skips is read as if it had not).
    let local = parse_timestamp(t)?;
    let Some(zone) = zone else {
        return Some(local);
    };
    use chrono::{Offset, TimeZone};
    let naive = chrono::DateTime::from_timestamp_micros(local)?.naive_utc();
    let offset = match zone.offset_from_local_datetime(&naive) {
        chrono::LocalResult::Single(o) | chrono::LocalResult::Ambiguous(o, _) => o.fix(),
        chrono::LocalResult::None => zone.offset_from_utc_datetime(&naive).fix(),
    };
    local.checked_sub(i64::from(offset.local_minus_utc()) * 1_000_000)
}

fn parse_bytea(t: &str) -> Option<Vec<u8>> {
    match t.strip_prefix("\\x") {
        Some(hex) => hex::decode(hex).ok(),
        None => Some(t.as_bytes().to_vec()),
    }
}

fn decode_binary(bytes: &Bytes, type_oid: u32) -> Result<ScalarValue, QueryError> {
    let wrong = || {
        QueryError::new(
            code::INVALID_BINARY_REPRESENTATION,
            format!("incorrect binary data format in bind parameter of type {type_oid}"),
        )
    };
    let b = bytes.as_ref();
    // A fixed-width value: exactly N bytes, or the type's binary format was not followed.
    fn fixed<const N: usize>(b: &[u8]) -> Option<[u8; N]> {
        b.try_into().ok()
    }
    Ok(match type_oid {
        oid::BOOL => ScalarValue::Boolean(Some(fixed::<1>(b).ok_or_else(wrong)?[0] != 0)),
        oid::INT2 => ScalarValue::Int16(Some(i16::from_be_bytes(fixed(b).ok_or_else(wrong)?))),
        oid::INT4 => ScalarValue::Int32(Some(i32::from_be_bytes(fixed(b).ok_or_else(wrong)?))),
        oid::INT8 => ScalarValue::Int64(Some(i64::from_be_bytes(fixed(b).ok_or_else(wrong)?))),
        oid::OID => ScalarValue::UInt32(Some(u32::from_be_bytes(fixed(b).ok_or_else(wrong)?))),
        oid::FLOAT4 => ScalarValue::Float32(Some(f32::from_be_bytes(fixed(b).ok_or_else(wrong)?))),
        oid::FLOAT8 => ScalarValue::Float64(Some(f64::from_be_bytes(fixed(b).ok_or_else(wrong)?))),
        oid::DATE => ScalarValue::Date32(Some(
            i32::from_be_bytes(fixed(b).ok_or_else(wrong)?) + super::PG_EPOCH_DAYS,
        )),
        oid::TIMESTAMP | oid::TIMESTAMPTZ => {
            let micros = i64::from_be_bytes(fixed(b).ok_or_else(wrong)?) + super::PG_EPOCH_MICROS;
            ScalarValue::TimestampMicrosecond(
                Some(micros),
                (type_oid == oid::TIMESTAMPTZ).then(|| "UTC".into()),
            )
        }
        oid::BYTEA => ScalarValue::Binary(Some(b.to_vec())),
        oid::UUID => {
            let u = uuid::Uuid::from_slice(b).map_err(|_| wrong())?;
            ScalarValue::Utf8(Some(u.to_string()))
        }
        oid::NUMERIC => numeric_from_binary(b).ok_or_else(wrong)?,
        _ => ScalarValue::Utf8(Some(String::from_utf8(b.to_vec()).map_err(|_| {
            QueryError::new(
                code::CHARACTER_NOT_IN_REPERTOIRE,
                "invalid byte sequence for encoding \"UTF8\"",
            )
        })?)),
    })
}

/// PostgreSQL's numeric binary form to a Decimal128 at its display scale.
fn numeric_from_binary(b: &[u8]) -> Option<ScalarValue> {
    let dscale = super::numeric_display_scale(b).ok()?;
    if !(0..=38).contains(&dscale) {
        return None;
    }
    let value = super::numeric_from_binary(b, dscale as i8).ok()?;
    Some(ScalarValue::Decimal128(Some(value), 38, dscale as i8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_binary() {
        assert_eq!(
            decode(Some(&Bytes::from("42")), oid::INT8, 0, None).unwrap(),
            ScalarValue::Int64(Some(42))
        );
        assert_eq!(
            decode(Some(&Bytes::from(vec![0, 0, 0, 7])), oid::INT4, 1, None).unwrap(),
            ScalarValue::Int32(Some(7))
        );
        assert_eq!(
            decode(None, oid::INT4, 0, None).unwrap(),
            ScalarValue::Int32(None)
        );
        assert_eq!(
            decode(Some(&Bytes::from("x")), oid::INT4, 0, None)
                .unwrap_err()
                .code,
            "22P02"
        );
        assert_eq!(
            decode(Some(&Bytes::from("2024-02-29")), oid::DATE, 0, None).unwrap(),
            ScalarValue::Date32(Some(19782))
        );
        assert_eq!(
            decode(Some(&Bytes::from("12.50")), oid::NUMERIC, 0, None).unwrap(),
            ScalarValue::Decimal128(Some(1250), 4, 2)
        );
        // numeric_send(12345.678)
        let bytes = Bytes::from(vec![0, 3, 0, 1, 0, 0, 0, 3, 0, 1, 0x09, 0x29, 0x1a, 0x7c]);
        assert_eq!(
            decode(Some(&bytes), oid::NUMERIC, 1, None).unwrap(),
            ScalarValue::Decimal128(Some(12345678), 38, 3)
        );
    }

    #[test]
    fn timestamptz_text_without_offset_is_read_in_the_session_zone() {
        let lisbon = crate::sql::zone::zone("Europe/Lisbon");
        let value = |text: &str, zone: Option<&chrono_tz::Tz>| match decode(
            Some(&Bytes::from(text.to_string())),
            oid::TIMESTAMPTZ,
            0,
            zone,
        ) {
            Ok(ScalarValue::TimestampMicrosecond(Some(v), _)) => v,
            other => panic!("{other:?}"),
        };
        // 2024-06-01 10:00 in Lisbon (summer, +01) is 09:00 UTC.
        assert_eq!(
            value("2024-06-01 10:00:00", lisbon.as_ref()),
            1_717_232_400_000_000
        );
        assert_eq!(value("2024-06-01 10:00:00", None), 1_717_236_000_000_000);
        // An explicit offset wins over the zone.
        assert_eq!(
            value("2024-06-01 10:00:00+00", lisbon.as_ref()),
            1_717_236_000_000_000
        );
    }
}
