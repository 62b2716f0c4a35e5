//! The pharmacy device event: splitting a payload into records, and validating one record.
//!
//! Validation never fails the stream: a record is either a typed [`Event`] or a reason that sends
//! it, with its raw payload, to the dead-letter table.

use std::collections::HashSet;

use bytes::Bytes;
use chrono::{DateTime, NaiveDate};
use serde_json::Value;

/// Smallest and largest quantity a device may hand out at once.
pub const QTY_RANGE: std::ops::RangeInclusive<i64> = 1..=10;

/// One payload as a source received it: the unit that is validated, deduplicated or dead-lettered.
#[derive(Debug, Clone)]
pub struct Record {
    /// The JSON text of one event as sent (or whatever the device sent instead).
    pub payload: Bytes,
    /// `http`, `mqtt` or `nats`.
    pub source: &'static str,
    /// Where the record came from in its source (topic and packet id, stream sequence, device
    /// and request), for lineage.
    pub offset: String,
    /// The device the source authenticated or addressed (HTTP bearer token, MQTT topic); the
    /// event's `device_id` must match it.
    pub device: Option<String>,
    /// When the source received it (freshness is measured from here).
    pub received_at: std::time::Instant,
}

/// A valid event, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The UUID, as 128 bits (the deduplication key).
    pub id: u128,
    /// The UUID in its canonical lowercase hyphenated form.
    pub event_id: String,
    /// The device that handed out the medicine.
    pub device_id: String,
    /// When, in microseconds since the epoch (UTC).
    pub event_time_us: i64,
    /// The patient.
    pub id_patient: i64,
    /// The medicine's `product_ndc`.
    pub ndc: String,
    /// Units handed out, 1..=10.
    pub qty: i32,
    /// The day of distribution, in days since 1970-01-01.
    pub date_distribution: i32,
}

/// Splits a body into one payload per event: a JSON array gives its elements, NDJSON its lines,
/// anything else is one payload (valid or not, which validation decides).
pub fn split_payloads(body: &Bytes) -> Vec<Bytes> {
    let text = body.trim_ascii();
    if text.is_empty() {
        return Vec::new();
    }
    if text.starts_with(b"[") {
        return match serde_json::from_slice::<Vec<Value>>(text) {
            Ok(items) => items
                .iter()
                .map(|item| Bytes::from(item.to_string()))
                .collect(),
            Err(_) => vec![body.slice_ref(text)],
        };
    }
    let lines: Vec<&[u8]> = text
        .split(|b| *b == b'\n')
        .map(|line| line.trim_ascii())
        .filter(|line| !line.is_empty())
        .collect();
    // A single pretty-printed object spans lines too: only split when the whole is not one value.
    if lines.len() > 1 && serde_json::from_slice::<Value>(text).is_err() {
        return lines.into_iter().map(|line| body.slice_ref(line)).collect();
    }
    vec![body.slice_ref(text)]
}

/// Validates one payload against the event contract. `known_ndcs` is the set of medicines; an
/// event for any other NDC is refused.
pub fn validate(
    payload: &[u8],
    device: Option<&str>,
    known_ndcs: &HashSet<String>,
) -> Result<Event, String> {
    let value: Value =
        serde_json::from_slice(payload).map_err(|err| format!("malformed JSON: {err}"))?;
    let Value::Object(object) = value else {
        return Err("an event must be a JSON object".to_string());
    };
    let text = |name: &str| -> Result<&str, String> {
        match object.get(name) {
            None | Some(Value::Null) => Err(format!("missing field {name}")),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.as_str()),
            Some(Value::String(_)) => Err(format!("empty field {name}")),
            Some(_) => Err(format!("field {name} must be a string")),
        }
    };
    let integer = |name: &str| -> Result<i64, String> {
        match object.get(name) {
            None | Some(Value::Null) => Err(format!("missing field {name}")),
            Some(Value::Number(n)) => n
                .as_i64()
                .ok_or_else(|| format!("field {name} must be an integer")),
            Some(_) => Err(format!("field {name} must be an integer")),
        }
    };

    let event_id = text("event_id")?;
    let uuid =
        uuid::Uuid::parse_str(event_id).map_err(|_| "field event_id must be a UUID".to_string())?;
    let device_id = text("device_id")?;
    if device_id.len() > 128 {
        return Err("field device_id is longer than 128 characters".to_string());
    }
    if let Some(device) = device
        && device != device_id
    {
        return Err("device_id does not match the authenticated device".to_string());
    }
    let event_time = DateTime::parse_from_rfc3339(text("event_time")?)
        .map_err(|_| "field event_time must be an RFC 3339 timestamp".to_string())?;
    let id_patient = integer("id_patient")?;
    if id_patient <= 0 {
        return Err("field id_patient must be positive".to_string());
    }
    let ndc = text("ndc")?;
    if !known_ndcs.contains(ndc) {
        return Err("unknown ndc".to_string());
    }
    let qty = integer("qty")?;
    if !QTY_RANGE.contains(&qty) {
        return Err(format!(
            "field qty must be between {} and {}",
            QTY_RANGE.start(),
            QTY_RANGE.end()
        ));
    }
    let day_text = text("date_distribution")?;
    let day = (day_text.len() == 10)
        .then(|| NaiveDate::parse_from_str(day_text, "%Y-%m-%d").ok())
        .flatten()
        .ok_or_else(|| "field date_distribution must be a date YYYY-MM-DD".to_string())?;
    Ok(Event {
        id: uuid.as_u128(),
        event_id: uuid.hyphenated().to_string(),
        device_id: device_id.to_string(),
        event_time_us: event_time.timestamp_micros(),
        id_patient,
        ndc: ndc.to_string(),
        qty: qty as i32,
        date_distribution: days_since_epoch(day),
    })
}

/// Days since 1970-01-01 (Arrow's `Date32`).
pub fn days_since_epoch(day: NaiveDate) -> i32 {
    (day - NaiveDate::default()).num_days() as i32
}

/// The day `days` after 1970-01-01.
pub fn day_from_epoch(days: i32) -> NaiveDate {
    NaiveDate::default() + chrono::Duration::days(i64::from(days))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ndcs() -> HashSet<String> {
        ["15631-0404".to_string()].into_iter().collect()
    }

    fn good() -> serde_json::Value {
        serde_json::json!({
            "event_id": "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
            "device_id": "pharmacy-01",
            "event_time": "2026-11-24T06:59:00Z",
            "id_patient": 17,
            "ndc": "15631-0404",
            "qty": 3,
            "date_distribution": "2026-11-24"
        })
    }

    #[test]
    fn valid_event_is_typed() {
        let event = validate(good().to_string().as_bytes(), None, &ndcs()).unwrap();
        assert_eq!(event.qty, 3);
        assert_eq!(event.id_patient, 17);
        assert_eq!(
            day_from_epoch(event.date_distribution).to_string(),
            "2026-11-24"
        );
    }

    #[test]
    fn bad_events_have_reasons() {
        let cases: Vec<(&str, serde_json::Value, &str)> = vec![
            ("qty", serde_json::json!(11), "qty must be between"),
            ("qty", serde_json::json!("3"), "qty must be an integer"),
            ("ndc", serde_json::json!("0000-0000"), "unknown ndc"),
            ("event_id", serde_json::json!("nope"), "UUID"),
            (
                "date_distribution",
                serde_json::json!("2026-13-01"),
                "YYYY-MM-DD",
            ),
            ("event_time", serde_json::json!("yesterday"), "RFC 3339"),
            (
                "id_patient",
                serde_json::Value::Null,
                "missing field id_patient",
            ),
        ];
        for (field, value, reason) in cases {
            let mut event = good();
            event[field] = value;
            let err = validate(event.to_string().as_bytes(), None, &ndcs()).unwrap_err();
            assert!(err.contains(reason), "{field}: {err}");
        }
        let err = validate(b"{not json", None, &ndcs()).unwrap_err();
        assert!(err.starts_with("malformed JSON"));
        let err = validate(good().to_string().as_bytes(), Some("other"), &ndcs()).unwrap_err();
        assert!(err.contains("authenticated device"));
    }

    #[test]
    fn bodies_split_into_payloads() {
        let one = good().to_string();
        assert_eq!(split_payloads(&Bytes::from(one.clone())).len(), 1);
        let array = format!("[{one},{one},3]");
        assert_eq!(split_payloads(&Bytes::from(array)).len(), 3);
        let ndjson = format!("{one}\n{{broken\n\n{one}\n");
        assert_eq!(split_payloads(&Bytes::from(ndjson)).len(), 3);
        let pretty = serde_json::to_string_pretty(&good()).unwrap();
        assert_eq!(split_payloads(&Bytes::from(pretty)).len(), 1);
        assert!(split_payloads(&Bytes::from_static(b"  \n")).is_empty());
    }
}
