//! PostgreSQL's value codecs, one set for the whole crate: text and binary output of Arrow
//! values ([`encode`]), Bind parameters in text and binary ([`params`]), and the binary pieces
//! the ingest reads from PostgreSQL's `COPY ... (FORMAT binary)`: the 2000-01-01 epoch and
//! `numeric`'s base-10000 form ([`numeric_from_binary`]); and decimal text ([`decimal_from_text`])
//! for text parameters and the ingest's text columns.

pub mod encode;
pub mod params;

/// PostgreSQL's epoch (2000-01-01) after the Unix epoch, in days.
pub const PG_EPOCH_DAYS: i32 = 10_957;
/// The same in microseconds.
pub const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// A decimal's text (`-12.5`, `+3`, `.5`, `7.`) as its digits (an unscaled integer) and its
/// scale (the number of digits after the point); `None` when it is not a finite decimal or has
/// more digits than an `i128` holds.
pub fn decimal_from_text(text: &str) -> Option<(i128, i8)> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (int_part, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int_part.is_empty() && frac.is_empty() {
        return None;
    }
    let mut unscaled: i128 = 0;
    for c in int_part.chars().chain(frac.chars()) {
        let digit = i128::from(c.to_digit(10)?);
        unscaled = unscaled.checked_mul(10)?.checked_add(digit)?;
    }
    let scale = i8::try_from(frac.len()).ok()?;
    Some((if negative { -unscaled } else { unscaled }, scale))
}

/// Why a binary `numeric` cannot be read as a decimal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumericError {
    /// Not `numeric_send`'s layout.
    Malformed,
    /// NaN or ±Infinity: no decimal holds them.
    NotFinite,
    /// More digits than the decimal holds.
    Overflow,
}

impl std::fmt::Display for NumericError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NumericError::Malformed => "malformed numeric value",
            NumericError::NotFinite => "NaN or infinite numeric cannot be stored as a decimal",
            NumericError::Overflow => "numeric value does not fit the decimal",
        })
    }
}

/// The display scale (`dscale`) of a binary `numeric`.
pub fn numeric_display_scale(bytes: &[u8]) -> Result<i16, NumericError> {
    numeric_header(bytes).map(|(_, _, _, dscale)| dscale)
}

/// `(ndigits, weight, sign, dscale)`, checked against the length.
fn numeric_header(bytes: &[u8]) -> Result<(usize, i32, u16, i16), NumericError> {
    if bytes.len() < 8 {
        return Err(NumericError::Malformed);
    }
    let ndigits = usize::from(u16::from_be_bytes([bytes[0], bytes[1]]));
    let weight = i32::from(i16::from_be_bytes([bytes[2], bytes[3]]));
    let sign = u16::from_be_bytes([bytes[4], bytes[5]]);
    let dscale = i16::from_be_bytes([bytes[6], bytes[7]]);
    if matches!(sign, 0xC000 | 0xD000 | 0xF000) {
        return Err(NumericError::NotFinite);
    }
    if !matches!(sign, 0x0000 | 0x4000) || bytes.len() != 8 + 2 * ndigits {
        return Err(NumericError::Malformed);
    }
    Ok((ndigits, weight, sign, dscale))
}

/// PostgreSQL's binary `numeric` (`numeric_send`) as an integer scaled by 10^`scale`; digits
/// below the scale are dropped.
pub fn numeric_from_binary(bytes: &[u8], scale: i8) -> Result<i128, NumericError> {
    let (ndigits, weight, sign, _) = numeric_header(bytes)?;
    let scale = i32::from(scale);
    let mut value: i128 = 0;
    for idx in 0..ndigits {
        let offset = 8 + 2 * idx;
        let digit = i128::from(u16::from_be_bytes([bytes[offset], bytes[offset + 1]]));
        // This base-10000 digit is worth digit * 10^(4 * (weight - idx)); scaled by 10^scale.
        let exponent = 4 * (weight - idx as i32) + scale;
        let term = if exponent >= 0 {
            let power = 10i128
                .checked_pow(exponent as u32)
                .ok_or(NumericError::Overflow)?;
            digit.checked_mul(power).ok_or(NumericError::Overflow)?
        } else if exponent > -4 {
            digit / 10i128.pow((-exponent) as u32)
        } else {
            0
        };
        value = value.checked_add(term).ok_or(NumericError::Overflow)?;
    }
    Ok(if sign == 0x4000 { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_numeric_reads_at_any_scale() {
        // numeric_send(-1234.5678): 2 digits, weight 0, negative, dscale 4.
        let bytes = [0, 2, 0, 0, 0x40, 0, 0, 4, 0x04, 0xD2, 0x16, 0x2E];
        assert_eq!(numeric_display_scale(&bytes), Ok(4));
        assert_eq!(numeric_from_binary(&bytes, 4), Ok(-12_345_678));
        assert_eq!(numeric_from_binary(&bytes, 2), Ok(-123_456));
        assert_eq!(
            numeric_from_binary(&bytes[..10], 4),
            Err(NumericError::Malformed)
        );
        let nan = [0, 0, 0, 0, 0xC0, 0, 0, 0];
        assert_eq!(numeric_from_binary(&nan, 0), Err(NumericError::NotFinite));
    }
}
