//! PostgreSQL functions clients call, registered in every session.
//!
//! Most of them answer from the session: `current_user` is the logged-in user,
//! `has_table_privilege` asks the same policy that enforces queries, `pg_table_is_visible`
//! follows the session's `search_path`. None is a constant "true".

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::execution::{FunctionRegistry, SessionState};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

use crate::catalog::registry::TableStatus;
use crate::catalog::session::SessionCatalog;
use crate::pg::catalog::pg_catalog::{
    database_oid, namespace_oid, relations, role_oid, system_relation_oid,
};
use crate::pg::catalog::{OWNER_NAME, OWNER_OID};
use crate::pg::types as pgtype;
use crate::sql::error::{QueryError, code};

type RowFn = dyn Fn(&[ScalarValue]) -> Result<ScalarValue> + Send + Sync;

/// A function evaluated row by row on `ScalarValue`s: plenty for catalog functions, which run
/// over catalog-sized inputs.
struct RowUdf {
    name: String,
    aliases: Vec<String>,
    signature: Signature,
    return_type: DataType,
    min_args: usize,
    max_args: usize,
    f: Arc<RowFn>,
    /// The PostgreSQL type of the result when it is not the Arrow type's own (`json`).
    pg_type: Option<&'static str>,
}

impl std::fmt::Debug for RowUdf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RowUdf({})", self.name)
    }
}

impl PartialEq for RowUdf {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && Arc::ptr_eq(&self.f, &other.f)
    }
}

impl Eq for RowUdf {}

impl Hash for RowUdf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for RowUdf {
    fn name(&self) -> &str {
        &self.name
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        if arg_types.len() < self.min_args || arg_types.len() > self.max_args {
            return Err(DataFusionError::Plan(format!(
                "Invalid function '{}' with {} argument(s)",
                self.name,
                arg_types.len()
            )));
        }
        Ok(self.return_type.clone())
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        let field = Field::new(self.name(), self.return_type(&types)?, true);
        Ok(Arc::new(match self.pg_type {
            Some(pg) => field.with_metadata(
                [(pgtype::PG_TYPE_METADATA_KEY.to_string(), pg.to_string())]
                    .into_iter()
                    .collect(),
            ),
            None => field,
        }))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let all_scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        if all_scalar {
            let values: Vec<ScalarValue> = args
                .args
                .iter()
                .map(|a| match a {
                    ColumnarValue::Scalar(s) => s.clone(),
                    ColumnarValue::Array(_) => ScalarValue::Null,
                })
                .collect();
            let out = (self.f)(&values)?;
            return Ok(ColumnarValue::Scalar(coerce_out(out, &self.return_type)?));
        }
        let n = args.number_rows;
        let arrays: Vec<ArrayRef> = args
            .args
            .iter()
            .map(|a| a.to_array(n))
            .collect::<Result<_>>()?;
        let mut out = Vec::with_capacity(n);
        for row in 0..n {
            let values: Vec<ScalarValue> = arrays
                .iter()
                .map(|a| ScalarValue::try_from_array(a.as_ref(), row))
                .collect::<Result<_>>()?;
            out.push(coerce_out((self.f)(&values)?, &self.return_type)?);
        }
        if out.is_empty() {
            return Ok(ColumnarValue::Array(
                datafusion::arrow::array::new_empty_array(&self.return_type),
            ));
        }
        Ok(ColumnarValue::Array(ScalarValue::iter_to_array(out)?))
    }
}

fn coerce_out(value: ScalarValue, data_type: &DataType) -> Result<ScalarValue> {
    if value.data_type() == *data_type {
        Ok(value)
    } else if value.is_null() {
        ScalarValue::try_from(data_type)
    } else {
        value.cast_to(data_type)
    }
}

fn udf(
    name: &str,
    aliases: &[&str],
    args: std::ops::RangeInclusive<usize>,
    return_type: DataType,
    volatility: Volatility,
    f: impl Fn(&[ScalarValue]) -> Result<ScalarValue> + Send + Sync + 'static,
) -> ScalarUDF {
    let signature = if *args.end() == 0 {
        Signature::nullary(volatility)
    } else {
        Signature::variadic_any(volatility)
    };
    ScalarUDF::new_from_impl(RowUdf {
        name: name.to_string(),
        aliases: aliases.iter().map(|a| a.to_string()).collect(),
        signature,
        return_type,
        min_args: *args.start(),
        max_args: *args.end(),
        f: Arc::new(f),
        pg_type: None,
    })
}

/// PostgreSQL's `json` output of a value (`pg::codec`'s JSON of a value; numbers as PostgreSQL's
/// `to_json` writes them).
fn json_value(value: &ScalarValue, out: &mut String) {
    match value {
        ScalarValue::Decimal128(Some(_), ..) => out.push_str(&value.to_string()),
        // PostgreSQL's float8 text (`1`, not JSON's `1.0`).
        ScalarValue::Float32(Some(f)) if f.is_finite() => out.push_str(&f.to_string()),
        ScalarValue::Float64(Some(f)) if f.is_finite() => out.push_str(&f.to_string()),
        other => out.push_str(&crate::pg::codec::encode::scalar_json(other).to_string()),
    }
}

fn json_string(s: &str, out: &mut String) {
    out.push_str(&serde_json::Value::String(s.to_string()).to_string());
}

/// `json_build_object(k1, v1, ...)` as PostgreSQL prints it (`{"a" : 1, "b" : "x"}`).
fn json_build_object(args: &[ScalarValue]) -> Result<ScalarValue> {
    if !args.len().is_multiple_of(2) {
        return Err(query_error(
            QueryError::new(
                code::INVALID_PARAMETER_VALUE,
                "argument list must have even number of elements",
            )
            .with_hint(
                "The arguments of json_build_object() must consist of alternating keys and values.",
            ),
        ));
    }
    let mut out = String::from("{");
    for (idx, pair) in args.chunks(2).enumerate() {
        let Some(key) = text(&pair[0]) else {
            return Err(query_error(QueryError::new(
                code::INVALID_PARAMETER_VALUE,
                format!("argument {} cannot be null", idx * 2 + 1),
            )));
        };
        if idx > 0 {
            out.push_str(", ");
        }
        json_string(&key, &mut out);
        out.push_str(" : ");
        json_value(&pair[1], &mut out);
    }
    out.push('}');
    Ok(utf8(Some(out)))
}

/// `json_build_array(v1, ...)` as PostgreSQL prints it (`[1, "x"]`).
fn json_build_array(args: &[ScalarValue]) -> Result<ScalarValue> {
    let mut out = String::from("[");
    for (idx, value) in args.iter().enumerate() {
        if idx > 0 {
            out.push_str(", ");
        }
        json_value(value, &mut out);
    }
    out.push(']');
    Ok(utf8(Some(out)))
}

/// A LIKE pattern written with another escape character, respelled with backslashes (the only
/// escape DataFusion's LIKE knows); `pg::syntax` calls it for patterns that are not literals.
pub const LIKE_ESCAPE_FUNCTION: &str = "__lh_like_escape";

fn like_escape(args: &[ScalarValue]) -> Result<ScalarValue> {
    let (Some(pattern), Some(escape)) = (text(&args[0]), text(&args[1])) else {
        return Ok(utf8(None));
    };
    match super::syntax::backslash_pattern(&pattern, &escape) {
        Some(respelled) => Ok(utf8(Some(respelled))),
        None => Err(query_error(
            QueryError::new(code::INVALID_ESCAPE_SEQUENCE, "invalid escape string")
                .with_hint("Escape string must be empty or one character."),
        )),
    }
}

fn text(value: &ScalarValue) -> Option<String> {
    match value {
        ScalarValue::Utf8(s) | ScalarValue::LargeUtf8(s) | ScalarValue::Utf8View(s) => s.clone(),
        v if v.is_null() => None,
        other => Some(other.to_string()),
    }
}

fn int(value: &ScalarValue) -> Option<i64> {
    match value {
        ScalarValue::Int8(v) => v.map(i64::from),
        ScalarValue::Int16(v) => v.map(i64::from),
        ScalarValue::Int32(v) => v.map(i64::from),
        ScalarValue::Int64(v) => *v,
        ScalarValue::UInt8(v) => v.map(i64::from),
        ScalarValue::UInt16(v) => v.map(i64::from),
        ScalarValue::UInt32(v) => v.map(i64::from),
        ScalarValue::UInt64(v) => v.and_then(|v| i64::try_from(v).ok()),
        ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => s.trim().parse().ok(),
        _ => None,
    }
}

fn boolean(value: &ScalarValue) -> Option<bool> {
    match value {
        ScalarValue::Boolean(b) => *b,
        other => text(other)
            .map(|t| matches!(t.to_lowercase().as_str(), "t" | "true" | "on" | "1" | "yes")),
    }
}

fn utf8(value: Option<String>) -> ScalarValue {
    ScalarValue::Utf8(value)
}

fn query_error(err: QueryError) -> DataFusionError {
    DataFusionError::External(Box::new(err))
}

/// `version()` as clients parse it: PostgreSQL's format, our name in the build part.
pub fn version_string() -> String {
    format!(
        "PostgreSQL {} on {}-unknown-linux-gnu, compiled by rustc, 64-bit (lakehouse {})",
        pgtype::SERVER_VERSION.split(' ').next().unwrap_or("15"),
        std::env::consts::ARCH,
        env!("CARGO_PKG_VERSION")
    )
}

/// Looks a relation up by (possibly qualified) name as the session sees it; `None` when it does
/// not exist or is not visible.
fn relation_oid(session: &SessionCatalog, name: &str) -> Option<u32> {
    let parts = split_qualified(name);
    let (schema, table) = match parts.as_slice() {
        [table] => (None, table.clone()),
        [schema, table] => (Some(schema.clone()), table.clone()),
        [_, schema, table] => (Some(schema.clone()), table.clone()),
        _ => return None,
    };
    let rels = relations(session);
    let search: Vec<String> = match schema {
        Some(s) => vec![s],
        None => {
            let mut path = vec!["pg_catalog".to_string()];
            path.extend(session.effective_search_path());
            path
        }
    };
    for schema in search {
        if let Some(rel) = rels.iter().find(|r| r.schema == schema && r.name == table) {
            return Some(rel.oid);
        }
    }
    None
}

/// Splits `a.b."C"` into identifiers, folding unquoted ones to lowercase.
pub fn split_qualified(name: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut was_quoted = false;
    let mut chars = name.trim().chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                current.push('"');
                chars.next();
            }
            '"' => {
                quoted = !quoted;
                was_quoted = true;
            }
            '.' if !quoted => {
                parts.push(if was_quoted {
                    current.clone()
                } else {
                    current.to_lowercase()
                });
                current.clear();
                was_quoted = false;
            }
            c => current.push(c),
        }
    }
    parts.push(if was_quoted {
        current
    } else {
        current.to_lowercase()
    });
    parts
}

/// Whether the user holds any of the privileges in `privileges` (`SELECT`, `SELECT,USAGE`...).
fn wants_select(privileges: &str) -> bool {
    privileges.split(',').any(|p| {
        let p = p.trim().to_uppercase();
        let p = p.trim_end_matches(" WITH GRANT OPTION");
        matches!(p, "SELECT" | "USAGE" | "CONNECT" | "TEMP" | "TEMPORARY")
    })
}

/// Registers every function into `state`, bound to `session`.
pub fn register(state: &mut SessionState, session: &Arc<SessionCatalog>, pid: i32) -> Result<()> {
    let mut add = |f: ScalarUDF| -> Result<()> {
        state.register_udf(Arc::new(f))?;
        Ok(())
    };
    let user = session.user().to_string();
    let version = version_string();
    for (name, f) in [
        (
            "json_build_object",
            json_build_object as fn(&[ScalarValue]) -> Result<ScalarValue>,
        ),
        ("json_build_array", json_build_array),
    ] {
        add(ScalarUDF::new_from_impl(RowUdf {
            name: name.to_string(),
            aliases: Vec::new(),
            signature: Signature::variadic_any(Volatility::Immutable),
            return_type: DataType::Utf8,
            min_args: 0,
            max_args: 100,
            f: Arc::new(f),
            pg_type: Some("json"),
        }))?;
    }
    add(crate::pg::arrays::expandarray())?;
    add(udf(
        LIKE_ESCAPE_FUNCTION,
        &[],
        2..=2,
        DataType::Utf8,
        Volatility::Immutable,
        like_escape,
    ))?;
    add(udf(
        "version",
        &[],
        0..=0,
        DataType::Utf8,
        Volatility::Immutable,
        move |_| Ok(utf8(Some(version.clone()))),
    ))?;
    add(udf(
        "current_database",
        &["current_catalog"],
        0..=0,
        DataType::Utf8,
        Volatility::Stable,
        |_| Ok(utf8(Some(crate::config::DATABASE_NAME.to_string()))),
    ))?;
    {
        let session = session.clone();
        add(udf(
            "current_user",
            &["session_user", "user", "current_role", "getpgusername"],
            0..=0,
            DataType::Utf8,
            Volatility::Stable,
            move |_| Ok(utf8(Some(session.pinned().principal.user.clone()))),
        ))?;
    }
    {
        let session = session.clone();
        add(udf(
            "current_schema",
            &[],
            0..=0,
            DataType::Utf8,
            Volatility::Stable,
            move |_| Ok(utf8(session.effective_search_path().into_iter().next())),
        ))?;
    }
    {
        let session = session.clone();
        add(udf(
            "current_schemas",
            &[],
            1..=1,
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            Volatility::Stable,
            move |args| {
                let mut schemas = Vec::new();
                if boolean(&args[0]).unwrap_or(false) {
                    schemas.push("pg_catalog".to_string());
                }
                schemas.extend(session.effective_search_path());
                let values: Vec<ScalarValue> = schemas.into_iter().map(|s| utf8(Some(s))).collect();
                Ok(ScalarValue::List(ScalarValue::new_list_nullable(
                    &values,
                    &DataType::Utf8,
                )))
            },
        ))?;
    }
    add(udf(
        "pg_backend_pid",
        &[],
        0..=0,
        DataType::Int32,
        Volatility::Stable,
        move |_| Ok(ScalarValue::Int32(Some(pid))),
    ))?;
    {
        let session = session.clone();
        add(udf(
            "pg_get_userbyid",
            &[],
            1..=1,
            DataType::Utf8,
            Volatility::Stable,
            move |args| {
                let Some(oid) = int(&args[0]) else {
                    return Ok(utf8(None));
                };
                let pinned = session.pinned();
                let mut names = vec![OWNER_NAME.to_string(), pinned.principal.user.clone()];
                names.extend(pinned.principal.memberships.iter().cloned());
                let found = names.into_iter().find(|n| i64::from(role_oid(n)) == oid);
                Ok(utf8(Some(
                    found.unwrap_or_else(|| format!("unknown (OID={oid})")),
                )))
            },
        ))?;
    }
    {
        let session = session.clone();
        add(udf(
            "pg_table_is_visible",
            &[],
            1..=1,
            DataType::Boolean,
            Volatility::Stable,
            move |args| {
                let Some(oid) = int(&args[0]) else {
                    return Ok(ScalarValue::Boolean(None));
                };
                let mut path = vec!["pg_catalog".to_string()];
                path.extend(session.effective_search_path());
                let rels = relations(&session);
                let Some(rel) = rels.iter().find(|r| i64::from(r.oid) == oid) else {
                    return Ok(ScalarValue::Boolean(None));
                };
                // Visible when its schema is on the path and no earlier schema hides its name.
                let visible = path
                    .iter()
                    .find(|s| rels.iter().any(|r| &r.schema == *s && r.name == rel.name))
                    .is_some_and(|s| *s == rel.schema);
                Ok(ScalarValue::Boolean(Some(visible)))
            },
        ))?;
    }
    for name in [
        "pg_type_is_visible",
        "pg_function_is_visible",
        "pg_collation_is_visible",
    ] {
        add(udf(
            name,
            &[],
            1..=1,
            DataType::Boolean,
            Volatility::Stable,
            |args| Ok(ScalarValue::Boolean(int(&args[0]).map(|_| true))),
        ))?;
    }
    add(udf(
        "format_type",
        &[],
        2..=2,
        DataType::Utf8,
        Volatility::Stable,
        |args| {
            let Some(oid) = int(&args[0]) else {
                return Ok(utf8(None));
            };
            let typmod = int(&args[1]).unwrap_or(-1) as i32;
            Ok(utf8(Some(pgtype::format_type(oid as u32, typmod))))
        },
    ))?;
    for (name, range) in [
        ("pg_get_expr", 2..=3),
        ("pg_get_indexdef", 1..=3),
        ("pg_get_constraintdef", 1..=2),
        ("pg_get_viewdef", 1..=2),
        ("pg_get_triggerdef", 1..=2),
        ("pg_get_ruledef", 1..=2),
        ("pg_get_statisticsobjdef_columns", 1..=1),
        ("pg_get_partkeydef", 1..=1),
        ("pg_get_function_arguments", 1..=1),
        ("pg_get_function_result", 1..=1),
        ("pg_get_function_identity_arguments", 1..=1),
        ("pg_get_serial_sequence", 2..=2),
        ("obj_description", 1..=2),
        ("col_description", 2..=2),
        ("shobj_description", 2..=2),
    ] {
        // We have no expressions, indexes, constraints, views or comments to describe.
        add(udf(
            name,
            &[],
            range,
            DataType::Utf8,
            Volatility::Stable,
            |_| Ok(utf8(None)),
        ))?;
    }
    add(udf(
        "pg_encoding_to_char",
        &[],
        1..=1,
        DataType::Utf8,
        Volatility::Immutable,
        |args| {
            Ok(utf8(int(&args[0]).map(|e| match e {
                0 => "SQL_ASCII".to_string(),
                6 => "UTF8".to_string(),
                _ => String::new(),
            })))
        },
    ))?;
    add(udf(
        "pg_char_to_encoding",
        &[],
        1..=1,
        DataType::Int32,
        Volatility::Immutable,
        |args| {
            Ok(ScalarValue::Int32(text(&args[0]).map(|e| {
                if e.eq_ignore_ascii_case("UTF8") {
                    6
                } else if e.eq_ignore_ascii_case("SQL_ASCII") {
                    0
                } else {
                    -1
                }
            })))
        },
    ))?;
    {
        let session = session.clone();
        add(udf(
            "pg_total_relation_size",
            &["pg_relation_size", "pg_table_size"],
            1..=2,
            DataType::Int64,
            Volatility::Volatile,
            move |args| {
                let Some(oid) = int(&args[0]) else {
                    return Ok(ScalarValue::Int64(None));
                };
                let rels = relations(&session);
                Ok(ScalarValue::Int64(
                    rels.iter().find(|r| i64::from(r.oid) == oid).map(|r| {
                        match r.lake.as_ref().map(|e| &e.status) {
                            Some(TableStatus::Ready(ready)) => ready.n_files as i64 * 8192,
                            _ => 0,
                        }
                    }),
                ))
            },
        ))?;
    }
    add(udf(
        "pg_indexes_size",
        &[],
        1..=1,
        DataType::Int64,
        Volatility::Volatile,
        |_| Ok(ScalarValue::Int64(Some(0))),
    ))?;
    add(udf(
        "pg_size_pretty",
        &[],
        1..=1,
        DataType::Utf8,
        Volatility::Immutable,
        |args| Ok(utf8(int(&args[0]).map(size_pretty))),
    ))?;
    for name in ["pg_is_in_recovery", "pg_relation_is_publishable"] {
        add(udf(
            name,
            &[],
            0..=1,
            DataType::Boolean,
            Volatility::Stable,
            |_| Ok(ScalarValue::Boolean(Some(false))),
        ))?;
    }
    add(udf(
        "pg_advisory_unlock_all",
        &[],
        0..=0,
        DataType::Null,
        Volatility::Volatile,
        |_| Ok(ScalarValue::Null),
    ))?;
    add(udf(
        "quote_ident",
        &[],
        1..=1,
        DataType::Utf8,
        Volatility::Immutable,
        |args| {
            Ok(utf8(text(&args[0]).map(|t| {
                let plain = t
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
                    && t.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                if plain {
                    t
                } else {
                    format!("\"{}\"", t.replace('"', "\"\""))
                }
            })))
        },
    ))?;
    add(udf(
        "quote_literal",
        &[],
        1..=1,
        DataType::Utf8,
        Volatility::Immutable,
        |args| {
            Ok(utf8(text(&args[0]).map(|t| {
                if t.contains('\\') {
                    format!("E'{}'", t.replace('\\', "\\\\").replace('\'', "''"))
                } else {
                    format!("'{}'", t.replace('\'', "''"))
                }
            })))
        },
    ))?;
    for (name, upper) in [("array_lower", false), ("array_upper", true)] {
        add(udf(
            name,
            &[],
            2..=2,
            DataType::Int32,
            Volatility::Immutable,
            move |args| {
                let len = match &args[0] {
                    ScalarValue::List(list) if !list.is_null(0) => Some(list.value(0).len()),
                    ScalarValue::LargeList(list) if !list.is_null(0) => Some(list.value(0).len()),
                    ScalarValue::FixedSizeList(list) if !list.is_null(0) => {
                        Some(list.value(0).len())
                    }
                    _ => None,
                };
                let dim = int(&args[1]);
                Ok(ScalarValue::Int32(match (len, dim) {
                    (Some(len), Some(1)) if len > 0 => Some(if upper { len as i32 } else { 1 }),
                    _ => None,
                }))
            },
        ))?;
    }
    {
        let session = session.clone();
        add(udf(
            "current_setting",
            &[],
            1..=2,
            DataType::Utf8,
            Volatility::Stable,
            move |args| {
                let name = text(&args[0]).unwrap_or_default().to_lowercase();
                let missing_ok = args.get(1).and_then(boolean).unwrap_or(false);
                let settings = session.settings();
                match settings
                    .values
                    .iter()
                    .find(|(k, _)| k.to_lowercase() == name)
                {
                    Some((_, v)) => Ok(utf8(Some(v.clone()))),
                    None if missing_ok => Ok(utf8(None)),
                    None => Err(query_error(QueryError::new(
                        code::UNDEFINED_OBJECT,
                        format!("unrecognized configuration parameter \"{name}\""),
                    ))),
                }
            },
        ))?;
    }
    {
        let started = session.system().started_at;
        add(udf(
            "pg_postmaster_start_time",
            &[],
            0..=0,
            DataType::Timestamp(
                datafusion::arrow::datatypes::TimeUnit::Microsecond,
                Some("UTC".into()),
            ),
            Volatility::Stable,
            move |_| {
                Ok(ScalarValue::TimestampMicrosecond(
                    Some(started),
                    Some("UTC".into()),
                ))
            },
        ))?;
    }
    add(ScalarUDF::new_from_impl(MoreThanOneRow::new()))?;
    register_privilege_functions(&mut add, session, &user)?;
    register_reg_casts(&mut add, session)?;
    Ok(())
}

/// The error a scalar subquery raises when it yields more than one row (see
/// `syntax::MORE_THAN_ONE_ROW_FUNCTION`): evaluated only for the rows where that happened.
#[derive(Debug, PartialEq, Eq, Hash)]
struct MoreThanOneRow {
    signature: Signature,
}

impl MoreThanOneRow {
    fn new() -> Self {
        MoreThanOneRow {
            signature: Signature::nullary(Volatility::Volatile),
        }
    }
}

impl ScalarUDFImpl for MoreThanOneRow {
    fn name(&self) -> &str {
        super::syntax::MORE_THAN_ONE_ROW_FUNCTION
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Null)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if args.number_rows == 0 {
            return Ok(ColumnarValue::Scalar(ScalarValue::Null));
        }
        Err(query_error(QueryError::new(
            code::CARDINALITY_VIOLATION,
            "more than one row returned by a subquery used as an expression",
        )))
    }
}

fn size_pretty(bytes: i64) -> String {
    let units = ["bytes", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value.abs() >= 10.0 * 1024.0 && unit < units.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{} {}", value.round() as i64, units[unit])
}

/// `has_*_privilege`: asks the enforcing policy. The user argument, when given, must be the
/// session's user (others get NULL: we do not answer questions about other users' rights).
fn register_privilege_functions(
    add: &mut impl FnMut(ScalarUDF) -> Result<()>,
    session: &Arc<SessionCatalog>,
    user: &str,
) -> Result<()> {
    let is_self = {
        let user = user.to_lowercase();
        move |v: &ScalarValue| match v {
            v if v.is_null() => false,
            other => match int(other) {
                Some(oid) if !matches!(other, ScalarValue::Utf8(_) | ScalarValue::Utf8View(_)) => {
                    i64::from(role_oid(&user)) == oid
                }
                _ => text(other).is_some_and(|t| t.to_lowercase() == user),
            },
        }
    };
    // (args without user, args with user)
    let table_fn = {
        let session = session.clone();
        let is_self = is_self.clone();
        move |args: &[ScalarValue], column: bool| -> Result<ScalarValue> {
            let base = if column { 3 } else { 2 };
            let args = if args.len() > base {
                if !is_self(&args[0]) {
                    return Ok(ScalarValue::Boolean(None));
                }
                &args[1..]
            } else {
                args
            };
            let privilege = text(&args[args.len() - 1]).unwrap_or_default();
            if !wants_select(&privilege) {
                return Ok(ScalarValue::Boolean(Some(false)));
            }
            let oid = match &args[0] {
                ScalarValue::Utf8(Some(name)) | ScalarValue::Utf8View(Some(name)) => {
                    match relation_oid(&session, name) {
                        Some(oid) => oid,
                        None => {
                            return Err(query_error(QueryError::undefined_table(name)));
                        }
                    }
                }
                other => match int(other) {
                    Some(oid) => oid as u32,
                    None => return Ok(ScalarValue::Boolean(None)),
                },
            };
            let rels = relations(&session);
            let Some(rel) = rels.iter().find(|r| r.oid == oid) else {
                return Ok(ScalarValue::Boolean(None));
            };
            if column {
                let column = text(&args[1]).unwrap_or_default();
                return Ok(ScalarValue::Boolean(Some(
                    rel.columns
                        .iter()
                        .any(|(name, ..)| *name == column.to_lowercase()),
                )));
            }
            // `relations` lists only what the user may read.
            Ok(ScalarValue::Boolean(Some(true)))
        }
    };
    {
        let f = table_fn.clone();
        add(udf(
            "has_table_privilege",
            &[],
            2..=3,
            DataType::Boolean,
            Volatility::Stable,
            move |args| f(args, false),
        ))?;
    }
    {
        let f = table_fn.clone();
        add(udf(
            "has_any_column_privilege",
            &[],
            2..=3,
            DataType::Boolean,
            Volatility::Stable,
            move |args| f(args, false),
        ))?;
    }
    {
        let f = table_fn;
        add(udf(
            "has_column_privilege",
            &[],
            3..=4,
            DataType::Boolean,
            Volatility::Stable,
            move |args| f(args, true),
        ))?;
    }
    {
        let session = session.clone();
        let is_self = is_self.clone();
        add(udf(
            "has_schema_privilege",
            &[],
            2..=3,
            DataType::Boolean,
            Volatility::Stable,
            move |args| {
                let args = if args.len() == 3 {
                    if !is_self(&args[0]) {
                        return Ok(ScalarValue::Boolean(None));
                    }
                    &args[1..]
                } else {
                    args
                };
                if !wants_select(&text(&args[1]).unwrap_or_default()) {
                    return Ok(ScalarValue::Boolean(Some(false)));
                }
                let schema = match &args[0] {
                    ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => {
                        Some(s.to_lowercase())
                    }
                    other => int(other).and_then(|oid| {
                        crate::pg::catalog::pg_catalog::namespaces(&session)
                            .into_iter()
                            .find(|(o, _)| i64::from(*o) == oid)
                            .map(|(_, name)| name)
                    }),
                };
                Ok(ScalarValue::Boolean(
                    schema.map(|s| session.schema_visible(&s)),
                ))
            },
        ))?;
    }
    // Functions and types are PUBLIC in PostgreSQL (EXECUTE, USAGE): psqlODBC's SQLProcedures
    // filters pg_proc with has_function_privilege(p.oid, 'EXECUTE').
    for (name, granted) in [
        ("has_function_privilege", "execute"),
        ("has_type_privilege", "usage"),
    ] {
        let is_self = is_self.clone();
        add(udf(
            name,
            &[],
            2..=3,
            DataType::Boolean,
            Volatility::Stable,
            move |args| {
                let args = if args.len() == 3 {
                    if !is_self(&args[0]) {
                        return Ok(ScalarValue::Boolean(None));
                    }
                    &args[1..]
                } else {
                    args
                };
                let privilege = text(&args[1]).unwrap_or_default().to_lowercase();
                Ok(ScalarValue::Boolean(Some(
                    privilege
                        .split(',')
                        .map(|p| p.trim().trim_end_matches(" with grant option"))
                        .all(|p| p == granted),
                )))
            },
        ))?;
    }
    {
        let session = session.clone();
        add(udf(
            "has_database_privilege",
            &[],
            2..=3,
            DataType::Boolean,
            Volatility::Stable,
            move |args| {
                let args = if args.len() == 3 {
                    if !is_self(&args[0]) {
                        return Ok(ScalarValue::Boolean(None));
                    }
                    &args[1..]
                } else {
                    args
                };
                let database_matches = match &args[0] {
                    ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => {
                        s.eq_ignore_ascii_case(crate::config::DATABASE_NAME)
                    }
                    other => int(other) == Some(i64::from(database_oid())),
                };
                if !database_matches {
                    return Err(query_error(QueryError::new(
                        code::INVALID_CATALOG_NAME,
                        "database does not exist",
                    )));
                }
                let pinned = session.pinned();
                Ok(ScalarValue::Boolean(Some(
                    wants_select(&text(&args[1]).unwrap_or_default())
                        && pinned.policy.policy.database_granted(&pinned.principal),
                )))
            },
        ))?;
    }
    Ok(())
}

/// Functions behind `::regclass`, `::regtype`, `::regnamespace`, `::regrole`, `::regproc` and
/// `to_regclass`/`to_regtype` (the `syntax` rewrite turns the casts into these calls).
fn register_reg_casts(
    add: &mut impl FnMut(ScalarUDF) -> Result<()>,
    session: &Arc<SessionCatalog>,
) -> Result<()> {
    let oid_type = DataType::UInt32;
    for (name, strict) in [("__lh_regclass", true), ("to_regclass", false)] {
        let session = session.clone();
        add(udf(
            name,
            &[],
            1..=1,
            oid_type.clone(),
            Volatility::Stable,
            move |args| match &args[0] {
                ScalarValue::Utf8(Some(n)) | ScalarValue::Utf8View(Some(n)) => {
                    if let Ok(oid) = n.trim().parse::<u32>() {
                        return Ok(ScalarValue::UInt32(Some(oid)));
                    }
                    match relation_oid(&session, n) {
                        Some(oid) => Ok(ScalarValue::UInt32(Some(oid))),
                        None if strict => Err(query_error(QueryError::undefined_table(n))),
                        None => Ok(ScalarValue::UInt32(None)),
                    }
                }
                other => Ok(ScalarValue::UInt32(int(other).map(|v| v as u32))),
            },
        ))?;
    }
    for (name, strict) in [("__lh_regtype", true), ("to_regtype", false)] {
        add(udf(
            name,
            &[],
            1..=1,
            oid_type.clone(),
            Volatility::Stable,
            move |args| match &args[0] {
                ScalarValue::Utf8(Some(n)) | ScalarValue::Utf8View(Some(n)) => {
                    let lookup = type_oid_by_sql_name(n);
                    match lookup {
                        Some(oid) => Ok(ScalarValue::UInt32(Some(oid))),
                        None if strict => Err(query_error(QueryError::new(
                            code::UNDEFINED_OBJECT,
                            format!("type \"{n}\" does not exist"),
                        ))),
                        None => Ok(ScalarValue::UInt32(None)),
                    }
                }
                other => Ok(ScalarValue::UInt32(int(other).map(|v| v as u32))),
            },
        ))?;
    }
    {
        let session = session.clone();
        add(udf(
            "__lh_regnamespace",
            &[],
            1..=1,
            oid_type.clone(),
            Volatility::Stable,
            move |args| match &args[0] {
                ScalarValue::Utf8(Some(n)) | ScalarValue::Utf8View(Some(n)) => {
                    let name = split_qualified(n).pop().unwrap_or_default();
                    let found = crate::pg::catalog::pg_catalog::namespaces(&session)
                        .into_iter()
                        .find(|(_, s)| *s == name)
                        .map(|(oid, _)| oid);
                    match found {
                        Some(oid) => Ok(ScalarValue::UInt32(Some(oid))),
                        None => Err(query_error(QueryError::new(
                            code::UNDEFINED_OBJECT,
                            format!("schema \"{name}\" does not exist"),
                        ))),
                    }
                }
                other => Ok(ScalarValue::UInt32(int(other).map(|v| v as u32))),
            },
        ))?;
    }
    {
        let session = session.clone();
        add(udf(
            "__lh_regrole",
            &[],
            1..=1,
            oid_type.clone(),
            Volatility::Stable,
            move |args| match &args[0] {
                ScalarValue::Utf8(Some(n)) | ScalarValue::Utf8View(Some(n)) => {
                    let pinned = session.pinned();
                    let name = n.to_lowercase();
                    let known = name == OWNER_NAME
                        || name == pinned.principal.user.to_lowercase()
                        || pinned.principal.memberships.contains(&name);
                    if known {
                        Ok(ScalarValue::UInt32(Some(if name == OWNER_NAME {
                            OWNER_OID
                        } else {
                            role_oid(&name)
                        })))
                    } else {
                        Err(query_error(QueryError::new(
                            code::UNDEFINED_OBJECT,
                            format!("role \"{n}\" does not exist"),
                        )))
                    }
                }
                other => Ok(ScalarValue::UInt32(int(other).map(|v| v as u32))),
            },
        ))?;
    }
    add(udf(
        "__lh_regproc",
        &[],
        1..=1,
        oid_type,
        Volatility::Stable,
        |args| match &args[0] {
            ScalarValue::Utf8(Some(n)) | ScalarValue::Utf8View(Some(n)) => {
                let name = split_qualified(n).pop().unwrap_or_default();
                Ok(ScalarValue::UInt32(
                    pgtype::builtin::PROCS
                        .iter()
                        .find(|p| p.name == name)
                        .map(|p| p.oid),
                ))
            }
            other => Ok(ScalarValue::UInt32(int(other).map(|v| v as u32))),
        },
    ))?;
    let _ = (
        namespace_oid("x"),
        system_relation_oid("pg_catalog", "pg_class"),
    );
    Ok(())
}

/// The OID of a type named as in SQL (`int4`, `integer`, `character varying`, `text[]`).
pub fn type_oid_by_sql_name(name: &str) -> Option<u32> {
    let name = name.trim().trim_start_matches("pg_catalog.").to_lowercase();
    if let Some(elem) = name.strip_suffix("[]") {
        let elem = type_oid_by_sql_name(elem)?;
        return pgtype::by_oid(elem).map(|t| t.array).filter(|a| *a != 0);
    }
    let alias = match name.as_str() {
        "integer" | "int" => "int4",
        "bigint" => "int8",
        "smallint" => "int2",
        "real" => "float4",
        "double precision" | "float" => "float8",
        "boolean" => "bool",
        "character varying" => "varchar",
        "character" => "bpchar",
        "\"char\"" => "char",
        "timestamp without time zone" | "timestamp" => "timestamp",
        "timestamp with time zone" => "timestamptz",
        "time without time zone" | "time" => "time",
        "decimal" => "numeric",
        other => other,
    };
    pgtype::by_name(alias).map(|t| t.oid)
}

/// A `ScalarValue` for a `&dyn Array` element, used by tests.
#[cfg(test)]
pub fn first_value(array: &dyn Array) -> ScalarValue {
    ScalarValue::try_from_array(array, 0).unwrap_or(ScalarValue::Null)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn qualified_names() {
        assert_eq!(
            split_qualified("dbo.Dim_Patient"),
            vec!["dbo", "dim_patient"]
        );
        assert_eq!(split_qualified("\"Odd.Name\""), vec!["Odd.Name"]);
        assert_eq!(
            split_qualified("pg_catalog.\"pg_class\""),
            vec!["pg_catalog", "pg_class"]
        );
    }

    #[test]
    fn sql_type_names() {
        assert_eq!(type_oid_by_sql_name("integer"), Some(23));
        assert_eq!(type_oid_by_sql_name("pg_catalog.text"), Some(25));
        assert_eq!(type_oid_by_sql_name("int4[]"), Some(1007));
        assert_eq!(type_oid_by_sql_name("nope"), None);
    }

    #[test]
    fn sizes() {
        assert_eq!(size_pretty(100), "100 bytes");
        assert_eq!(size_pretty(20 * 1024 * 1024), "20 MB");
    }

    #[test]
    fn version_parses_like_postgres() {
        assert!(version_string().starts_with("PostgreSQL 15.20 on "));
    }
}
