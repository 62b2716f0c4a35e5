//! The session time zone (`SET TIME ZONE`, `TimeZone` in the startup packet), with
//! PostgreSQL's semantics: a `timestamptz` is an instant, shown, truncated, extracted and cast
//! to `timestamp` or `date` in the session's zone; a `timestamp` (Delta `timestamp_ntz`) is a
//! wall-clock time the zone never touches.
//!
//! How it is done, given that DataFusion labels each timestamp type with a zone:
//! - DataFusion's `execution.time_zone` is the session zone, so `now()`, `timestamptz`
//!   literals and casts from text are instants labelled with it (text without an offset is read
//!   in it).
//! - Lake columns of type `timestamp` (with time zone) are labelled with the session zone where
//!   they enter a query (`catalog::session` declares them so, `enforce::policy_subplan` casts
//!   them): relabelling changes no value, and makes DataFusion's `date_trunc`, `date_part` and
//!   comparisons work in the session zone.
//! - [`SessionZoneCasts`] rewrites the three casts that arrow does in UTC whatever the label:
//!   `timestamptz → timestamp` and `timestamptz → date` take the local time, `date →
//!   timestamptz` is local midnight.
//! - `pg::codec::encode` renders every `timestamptz` in the session zone with its offset
//!   ([`format_offset`]); binary values are UTC microseconds, as in PostgreSQL.
//!
//! A UTC session (the default) takes none of these detours beyond the label.

use std::sync::Arc;

use chrono::{Offset, TimeZone};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, Result};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::expr::{Cast, ScalarFunction, TryCast};
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan};
use datafusion::optimizer::AnalyzerRule;

/// The name every spelling of UTC is stored as.
pub const UTC: &str = "UTC";

/// The canonical name of a `TimeZone` value: `UTC` for its aliases, the IANA name (as the tz
/// database spells it) for any IANA zone, case-insensitively. `None` for anything else
/// (PostgreSQL's POSIX-style offsets like `+02`, whose sign is inverted, are not accepted:
/// an IANA name says what is meant).
pub fn canonical(value: &str) -> Option<String> {
    let trimmed = value.trim();
    let upper = trimmed.to_uppercase();
    if matches!(
        upper.as_str(),
        "UTC"
            | "GMT"
            | "ETC/UTC"
            | "ETC/GMT"
            | "Z"
            | "ZULU"
            | "UCT"
            | "+00"
            | "+00:00"
            | "0"
            | "DEFAULT"
            | "LOCAL"
            | "UNIVERSAL"
            | "GREENWICH"
    ) {
        return Some(UTC.to_string());
    }
    chrono_tz::TZ_VARIANTS
        .iter()
        .find(|tz| tz.name().eq_ignore_ascii_case(trimmed))
        .map(|tz| tz.name().to_string())
}

/// The zone of a canonical name; `None` for UTC (no conversion needed).
pub fn zone(name: &str) -> Option<chrono_tz::Tz> {
    if name == UTC {
        return None;
    }
    name.parse().ok()
}

/// Writes the UTC offset of `zone` at the instant `utc_micros` as PostgreSQL prints it:
/// `+01`, `-03`, `+05:30`, `-00:36:45`. Returns the offset in microseconds.
pub fn format_offset(zone: Option<&chrono_tz::Tz>, utc_micros: i64, out: &mut String) -> i64 {
    let seconds = match zone {
        None => 0,
        Some(zone) => {
            match chrono::DateTime::from_timestamp_micros(utc_micros) {
                Some(instant) => zone
                    .offset_from_utc_datetime(&instant.naive_utc())
                    .fix()
                    .local_minus_utc(),
                // Beyond chrono's range (infinity): no offset to speak of.
                None => 0,
            }
        }
    };
    let sign = if seconds < 0 { '-' } else { '+' };
    let abs = seconds.unsigned_abs();
    let (h, m, s) = (abs / 3600, abs / 60 % 60, abs % 60);
    out.push(sign);
    out.push_str(&format!("{h:02}"));
    if m != 0 || s != 0 {
        out.push_str(&format!(":{m:02}"));
    }
    if s != 0 {
        out.push_str(&format!(":{s:02}"));
    }
    i64::from(seconds) * 1_000_000
}

/// `data_type` with a timestamp's zone label replaced by `zone` (timestamps with a zone only).
pub fn relabel(data_type: &DataType, zone: &str) -> DataType {
    match data_type {
        DataType::Timestamp(unit, Some(_)) => DataType::Timestamp(*unit, Some(zone.into())),
        other => other.clone(),
    }
}

/// PostgreSQL's casts between `timestamptz`, `timestamp` and `date` in a non-UTC session zone
/// (see the module documentation). Runs after DataFusion's type coercion, so implicit casts
/// (comparing a `timestamptz` column with a date) are rewritten too.
#[derive(Debug, Default)]
pub struct SessionZoneCasts;

impl AnalyzerRule for SessionZoneCasts {
    fn analyze(&self, plan: LogicalPlan, config: &ConfigOptions) -> Result<LogicalPlan> {
        let Some(name) = config.execution.time_zone.clone() else {
            return Ok(plan);
        };
        if zone(&name).is_none() {
            // UTC, or a label arrow reads itself: arrow's casts are PostgreSQL's in UTC.
            return Ok(plan);
        }
        plan.transform_up_with_subqueries(|node| {
            let inputs = node.inputs();
            if inputs.is_empty() {
                return Ok(Transformed::no(node));
            }
            let schema = datafusion::logical_expr::utils::merge_schema(&inputs);
            node.map_expressions(|expr| expr.transform_up(|e| rewrite_cast(e, &schema, &name)))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "lakehouse_session_zone_casts"
    }
}

fn rewrite_cast(expr: Expr, schema: &DFSchema, zone: &str) -> Result<Transformed<Expr>> {
    let (inner, target, try_cast) = match &expr {
        Expr::Cast(Cast { expr, field }) => (expr.as_ref(), field.data_type().clone(), false),
        Expr::TryCast(TryCast { expr, field }) => (expr.as_ref(), field.data_type().clone(), true),
        _ => return Ok(Transformed::no(expr)),
    };
    let Ok(source) = inner.get_type(schema) else {
        return Ok(Transformed::no(expr));
    };
    let cast = |e: Expr, t: DataType| {
        if try_cast {
            Expr::TryCast(TryCast::new(Box::new(e), t))
        } else {
            Expr::Cast(Cast::new(Box::new(e), t))
        }
    };
    let local = |e: Expr, source: &DataType| {
        // The instant labelled with the session zone, then its wall-clock time there.
        let labelled = Expr::Cast(Cast::new(Box::new(e), relabel(source, zone)));
        Expr::ScalarFunction(ScalarFunction::new_udf(
            datafusion::functions::datetime::to_local_time(),
            vec![labelled],
        ))
    };
    let rewritten = match (&source, &target) {
        (DataType::Timestamp(_, Some(_)), DataType::Timestamp(_, None)) => {
            cast(local(inner.clone(), &source), target.clone())
        }
        (DataType::Timestamp(_, Some(_)), DataType::Date32 | DataType::Date64) => {
            cast(local(inner.clone(), &source), target.clone())
        }
        (DataType::Date32 | DataType::Date64, DataType::Timestamp(unit, Some(_))) => {
            // Midnight as a wall-clock time, then read in the zone (arrow adjusts there).
            let midnight = Expr::Cast(Cast::new(
                Box::new(inner.clone()),
                DataType::Timestamp(*unit, None),
            ));
            cast(midnight, relabel(&target, zone))
        }
        _ => return Ok(Transformed::no(expr)),
    };
    Ok(Transformed::yes(rewritten))
}

/// An Arc'd rule for the session state builder.
pub fn rule() -> Arc<dyn AnalyzerRule + Send + Sync> {
    Arc::new(SessionZoneCasts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_canonical() {
        assert_eq!(canonical("utc").as_deref(), Some("UTC"));
        assert_eq!(canonical("Etc/UTC").as_deref(), Some("UTC"));
        assert_eq!(
            canonical(" europe/lisbon ").as_deref(),
            Some("Europe/Lisbon")
        );
        assert_eq!(
            canonical("America/Sao_Paulo").as_deref(),
            Some("America/Sao_Paulo")
        );
        assert_eq!(canonical("Mars/Olympus_Mons"), None);
        assert_eq!(canonical("+02"), None);
    }

    #[test]
    fn offsets_print_as_postgres_does() {
        let lisbon = zone("Europe/Lisbon");
        let kolkata = zone("Asia/Kolkata");
        let summer = 1_717_236_000_000_000; // 2024-06-01 10:00:00 UTC
        let winter = 1_704_103_200_000_000; // 2024-01-01 10:00:00 UTC
        let mut out = String::new();
        assert_eq!(
            format_offset(lisbon.as_ref(), summer, &mut out),
            3_600_000_000
        );
        assert_eq!(out, "+01");
        out.clear();
        format_offset(lisbon.as_ref(), winter, &mut out);
        assert_eq!(out, "+00");
        out.clear();
        format_offset(kolkata.as_ref(), summer, &mut out);
        assert_eq!(out, "+05:30");
        out.clear();
        format_offset(zone("America/Sao_Paulo").as_ref(), summer, &mut out);
        assert_eq!(out, "-03");
        out.clear();
        // Lisbon's local mean time before 1912: -00:36:45.
        format_offset(lisbon.as_ref(), -2_000_000_000_000_000, &mut out);
        assert_eq!(out, "-00:36:45");
        out.clear();
        format_offset(None, summer, &mut out);
        assert_eq!(out, "+00");
    }
}
