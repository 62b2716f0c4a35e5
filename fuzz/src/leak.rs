//! The leak oracle of the `statements` target.
//!
//! Every patient name of the fixture (the column masked for `bob`) starts with [`MARKER_CASED`].
//! Nothing else in the lake holds the letters `zq` next to each other, the SQL generator
//! never writes a `z` or a `q`, and no function the generator uses can make one out of other
//! characters. So an answer in which `zq8` (any case) or its reverse `8qz` appears carries a
//! masked value, or part of one, whatever was done to it on the way: `lower`, `upper`,
//! `reverse`, `substr`, concatenation, aggregation, casts, EXPLAIN output.

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

/// How the names start, as written to the lake.
pub const MARKER_CASED: &str = "Zq8";

/// Lower-case needles: the marker and the marker reversed.
const NEEDLES: [&[u8]; 2] = [b"zq8", b"8qz"];

/// Whether `bytes` hold a masked value (ASCII case-insensitive).
pub fn contains_marker(bytes: &[u8]) -> bool {
    bytes.windows(3).any(|w| {
        let lower = [
            w[0].to_ascii_lowercase(),
            w[1].to_ascii_lowercase(),
            w[2].to_ascii_lowercase(),
        ];
        NEEDLES.iter().any(|n| *n == lower)
    })
}

/// Whether a SQL text may mention the marker's letters or build characters from codes, in
/// which case an answer holding the marker proves nothing (raw-SQL inputs only: the grammar
/// never writes any of these).
pub fn sql_can_forge_marker(sql: &str) -> bool {
    let lower = sql.to_ascii_lowercase();
    lower.contains('z')
        || lower.contains('q')
        || lower.contains('\\')
        || !sql.is_ascii()
        || [
            "chr",
            "char",
            "decode",
            "hex",
            "e'",
            "u&",
            "x'",
            "b'",
            "convert",
            "encode",
            "ascii",
            "arrow_cast",
            "from_",
            "unicode",
            "translate",
            "overlay",
            "to_char",
            "format",
        ]
        .iter()
        .any(|f| lower.contains(f))
}

/// A leak found in an answer.
#[derive(Debug)]
pub struct Leak {
    /// Where: a column, an error message, EXPLAIN output.
    pub place: String,
    /// The value that holds the marker.
    pub value: String,
}

/// Checks every value of a batch, as arrow renders it, and the raw bytes of binary columns.
pub fn check_batch(batch: &RecordBatch) -> Result<(), Leak> {
    let options = FormatOptions::default().with_null("NULL");
    for (index, column) in batch.columns().iter().enumerate() {
        let field = batch.schema().field(index).clone();
        let place = format!("column {index} ({})", field.name());
        if contains_marker(field.name().as_bytes()) {
            return Err(Leak {
                place: format!("name of {place}"),
                value: field.name().clone(),
            });
        }
        match column.data_type() {
            DataType::Binary => binary(column.as_binary::<i32>().iter(), &place)?,
            DataType::LargeBinary => binary(column.as_binary::<i64>().iter(), &place)?,
            DataType::BinaryView => binary(column.as_binary_view().iter(), &place)?,
            DataType::FixedSizeBinary(_) => binary(column.as_fixed_size_binary().iter(), &place)?,
            _ => {}
        }
        let formatter = match ArrayFormatter::try_new(column.as_ref(), &options) {
            Ok(f) => f,
            Err(_) => continue,
        };
        for row in 0..column.len() {
            let text = formatter.value(row).to_string();
            if contains_marker(text.as_bytes()) {
                return Err(Leak {
                    place: format!("{place}, row {row}"),
                    value: text,
                });
            }
        }
    }
    Ok(())
}

fn binary<'a>(values: impl Iterator<Item = Option<&'a [u8]>>, place: &str) -> Result<(), Leak> {
    for (row, value) in values.enumerate() {
        if let Some(bytes) = value
            && contains_marker(bytes)
        {
            return Err(Leak {
                place: format!("{place}, row {row} (bytes)"),
                value: String::from_utf8_lossy(bytes).into_owned(),
            });
        }
    }
    Ok(())
}

/// Checks a text (an error message, a DataRow buffer, a SHOW value).
pub fn check_text(place: &str, bytes: &[u8]) -> Result<(), Leak> {
    if contains_marker(bytes) {
        return Err(Leak {
            place: place.to_string(),
            value: String::from_utf8_lossy(bytes).into_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_marker_in_any_case_and_reversed() {
        assert!(contains_marker(b"Zq8 Patient 17"));
        assert!(contains_marker(b"x zQ8 y"));
        assert!(contains_marker(b"71 tneitaP 8qZ"));
        assert!(!contains_marker(b"**** Patient 17"));
        assert!(!contains_marker(b"query 8"));
    }
}
