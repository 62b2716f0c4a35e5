//! Query errors and their SQLSTATEs: the one place where an error gets its code.
//!
//! Messages follow PostgreSQL's style (lowercase, identifiers in double quotes). Internal errors
//! never reach the client with their details: the client gets "internal error" and the query id,
//! the log gets the rest.

use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;

/// A failed statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    /// SQLSTATE.
    pub code: &'static str,
    /// Primary message.
    pub message: String,
    /// Optional detail.
    pub detail: Option<String>,
    /// Optional hint: what the user can do.
    pub hint: Option<String>,
    /// Severity: `ERROR`, or `FATAL` when the session must end.
    pub fatal: bool,
    /// The query id an internal error was logged under (the audit record uses the same).
    pub query_id: Option<u64>,
}

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for QueryError {}

/// SQLSTATE codes we use, by name.
#[allow(missing_docs)]
pub mod code {
    pub const SUCCESSFUL: &str = "00000";
    pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
    pub const INVALID_PARAMETER_VALUE: &str = "22023";
    pub const DATA_EXCEPTION: &str = "22000";
    pub const DIVISION_BY_ZERO: &str = "22012";
    pub const CARDINALITY_VIOLATION: &str = "21000";
    pub const NUMERIC_VALUE_OUT_OF_RANGE: &str = "22003";
    pub const INVALID_TEXT_REPRESENTATION: &str = "22P02";
    pub const INVALID_BINARY_REPRESENTATION: &str = "22P03";
    pub const CHARACTER_NOT_IN_REPERTOIRE: &str = "22021";
    pub const INVALID_ESCAPE_SEQUENCE: &str = "22025";
    pub const CANT_CHANGE_RUNTIME_PARAM: &str = "55P02";
    pub const INVALID_DATETIME_FORMAT: &str = "22007";
    pub const PROTOCOL_VIOLATION: &str = "08P01";
    pub const READ_ONLY_SQL_TRANSACTION: &str = "25006";
    pub const IN_FAILED_SQL_TRANSACTION: &str = "25P02";
    pub const INVALID_SQL_STATEMENT_NAME: &str = "26000";
    pub const INVALID_CURSOR_NAME: &str = "34000";
    pub const INVALID_AUTHORIZATION: &str = "28000";
    pub const INVALID_PASSWORD: &str = "28P01";
    pub const INVALID_CATALOG_NAME: &str = "3D000";
    pub const SYNTAX_ERROR: &str = "42601";
    pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
    pub const UNDEFINED_COLUMN: &str = "42703";
    pub const INVALID_COLUMN_REFERENCE: &str = "42P10";
    pub const UNDEFINED_TABLE: &str = "42P01";
    pub const UNDEFINED_FUNCTION: &str = "42883";
    pub const UNDEFINED_OBJECT: &str = "42704";
    pub const UNDEFINED_PARAMETER: &str = "42P02";
    pub const DUPLICATE_PREPARED_STATEMENT: &str = "42P05";
    pub const DUPLICATE_CURSOR: &str = "42P03";
    pub const DATATYPE_MISMATCH: &str = "42804";
    pub const AMBIGUOUS_COLUMN: &str = "42702";
    pub const GROUPING_ERROR: &str = "42803";
    pub const INDETERMINATE_DATATYPE: &str = "42P18";
    pub const SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION: &str = "42000";
    pub const OBJECT_NOT_IN_PREREQUISITE_STATE: &str = "55000";
    pub const QUERY_CANCELED: &str = "57014";
    pub const ADMIN_SHUTDOWN: &str = "57P01";
    pub const TOO_MANY_CONNECTIONS: &str = "53300";
    pub const OUT_OF_MEMORY: &str = "53200";
    pub const CONFIGURATION_LIMIT_EXCEEDED: &str = "53400";
    pub const PROGRAM_LIMIT_EXCEEDED: &str = "54000";
    pub const STATEMENT_TOO_COMPLEX: &str = "54001";
    pub const TOO_MANY_COLUMNS: &str = "54011";
    pub const INTERNAL_ERROR: &str = "XX000";
}

impl QueryError {
    /// An error with a code and message.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        QueryError {
            code,
            message: message.into(),
            detail: None,
            hint: None,
            fatal: false,
            query_id: None,
        }
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Adds a detail.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Marks the error fatal: the connection ends after it is sent.
    pub fn fatal(mut self) -> Self {
        self.fatal = true;
        self
    }

    /// 42601.
    pub fn syntax(message: impl Into<String>) -> Self {
        Self::new(code::SYNTAX_ERROR, message)
    }

    /// 0A000.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(code::FEATURE_NOT_SUPPORTED, message)
    }

    /// 25006: the server is read-only.
    pub fn read_only(what: &str) -> Self {
        Self::new(
            code::READ_ONLY_SQL_TRANSACTION,
            format!("cannot execute {what} in a read-only server"),
        )
        .with_hint("this server only reads the lake; the ingest and stream modules write it")
    }

    /// 42501.
    pub fn privilege(message: impl Into<String>) -> Self {
        Self::new(code::INSUFFICIENT_PRIVILEGE, message)
    }

    /// 42P01 for a relation as the user wrote it.
    pub fn undefined_table(name: &str) -> Self {
        Self::new(
            code::UNDEFINED_TABLE,
            format!("relation \"{name}\" does not exist"),
        )
    }

    /// 57014 for a CancelRequest.
    pub fn canceled() -> Self {
        Self::new(
            code::QUERY_CANCELED,
            "canceling statement due to user request",
        )
    }

    /// 57014 for `statement_timeout`.
    pub fn timeout() -> Self {
        Self::new(
            code::QUERY_CANCELED,
            "canceling statement due to statement timeout",
        )
    }

    /// 25P02.
    pub fn in_failed_transaction() -> Self {
        Self::new(
            code::IN_FAILED_SQL_TRANSACTION,
            "current transaction is aborted, commands ignored until end of transaction block",
        )
    }

    /// XX000 with an id; details go to the log only.
    pub fn internal(query_id: u64, detail: &dyn std::fmt::Display) -> Self {
        tracing::error!(query_id, error = %detail, "internal error");
        let mut err = Self::new(
            code::INTERNAL_ERROR,
            format!("internal error (query id {query_id})"),
        )
        .with_hint("the server log has the details under this query id");
        err.query_id = Some(query_id);
        err
    }

    /// Maps a DataFusion error. `query_id` identifies internal errors in the log.
    pub fn from_datafusion(err: DataFusionError, query_id: u64) -> Self {
        let err = err.find_root().clone_without_context();
        classify(err, query_id)
    }
}

trait CloneWithoutContext {
    fn clone_without_context(&self) -> DataFusionError;
}

impl CloneWithoutContext for DataFusionError {
    fn clone_without_context(&self) -> DataFusionError {
        match self {
            DataFusionError::Plan(m) => DataFusionError::Plan(m.clone()),
            DataFusionError::Execution(m) => DataFusionError::Execution(m.clone()),
            DataFusionError::NotImplemented(m) => DataFusionError::NotImplemented(m.clone()),
            DataFusionError::Internal(m) => DataFusionError::Internal(m.clone()),
            DataFusionError::ResourcesExhausted(m) => {
                DataFusionError::ResourcesExhausted(m.clone())
            }
            DataFusionError::Configuration(m) => DataFusionError::Configuration(m.clone()),
            DataFusionError::SQL(e, _) => DataFusionError::Plan(format!("__sql__{e}")),
            DataFusionError::SchemaError(e, _) => DataFusionError::Plan(format!("__schema__{e}")),
            DataFusionError::ArrowError(e, _) => {
                DataFusionError::Execution(format!("__arrow__{}", arrow_tag(e)))
            }
            // A task that panicked (one DataFusion spawned for a partition): a bug, never
            // a data error.
            DataFusionError::ExecutionJoin(e) => DataFusionError::Internal(e.to_string()),
            DataFusionError::External(e)
                if e.downcast_ref::<tokio::task::JoinError>().is_some()
                    || e.downcast_ref::<std::sync::Arc<tokio::task::JoinError>>()
                        .is_some() =>
            {
                DataFusionError::Internal(e.to_string())
            }
            DataFusionError::External(e) => {
                if let Some(q) = e.downcast_ref::<QueryError>() {
                    return DataFusionError::External(Box::new(q.clone()));
                }
                if let Some(u) = e.downcast_ref::<crate::catalog::session::TableUnavailable>() {
                    return DataFusionError::External(Box::new(QueryError::new(
                        code::OBJECT_NOT_IN_PREREQUISITE_STATE,
                        u.to_string(),
                    )));
                }
                DataFusionError::Execution(e.to_string())
            }
            other => DataFusionError::Internal(other.to_string()),
        }
    }
}

fn arrow_tag(err: &ArrowError) -> String {
    match err {
        ArrowError::DivideByZero => "div0".to_string(),
        ArrowError::CastError(m) => format!("cast:{m}"),
        ArrowError::ParseError(m) => format!("cast:{m}"),
        ArrowError::ArithmeticOverflow(m) => format!("overflow:{m}"),
        ArrowError::ComputeError(m) if m.contains("overflow") => format!("overflow:{m}"),
        other => format!("other:{other}"),
    }
}

/// A query id for an internal error outside any statement's (a task that died before it had one,
/// a policy checked by `lakehouse check`): from a range statements never reach.
pub fn detached_query_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1 << 48);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn classify(err: DataFusionError, query_id: u64) -> QueryError {
    match err {
        DataFusionError::External(e) => match e.downcast::<QueryError>() {
            Ok(q) => *q,
            Err(e) => QueryError::internal(query_id, &e),
        },
        DataFusionError::Plan(message) => plan_error(&message),
        DataFusionError::NotImplemented(message) => QueryError::unsupported(clean(&message)),
        DataFusionError::ResourcesExhausted(message) => QueryError::new(
            code::OUT_OF_MEMORY,
            "out of memory: the query needs more than its memory limit",
        )
        .with_detail(clean(&message))
        .with_hint("narrow the query or ask the administrator to raise server.query_memory_limit"),
        DataFusionError::Execution(message) => execution_error(&message, query_id),
        DataFusionError::Configuration(message) => {
            QueryError::new(code::INVALID_PARAMETER_VALUE, clean(&message))
        }
        other => QueryError::internal(query_id, &other),
    }
}

fn plan_error(message: &str) -> QueryError {
    if let Some(sql) = message.strip_prefix("__sql__") {
        return QueryError::syntax(sql.trim_start_matches("sql parser error: ").to_string());
    }
    let message = message.strip_prefix("__schema__").unwrap_or(message);
    let lower = message.to_lowercase();
    if let Some(name) = between(message, "table '", "' not found") {
        // Names come back fully qualified with our internal search-path schema; show what the
        // user could have written.
        let name = name
            .trim_start_matches("ikhospital_dw.")
            .trim_start_matches("$search_path.");
        return QueryError::undefined_table(name);
    }
    if lower.contains("no field named") || lower.contains("field not found") {
        let column = between(message, "No field named ", ".")
            .or_else(|| between(message, "No field named ", " "))
            .unwrap_or("")
            .trim_matches('"')
            .to_string();
        let shown = column
            .rsplit('.')
            .next()
            .unwrap_or(&column)
            .trim_matches('"');
        return QueryError::new(
            code::UNDEFINED_COLUMN,
            format!("column \"{shown}\" does not exist"),
        );
    }
    if lower.contains("ambiguous reference") {
        return QueryError::new(code::AMBIGUOUS_COLUMN, clean(message));
    }
    if lower.contains("invalid function") || lower.contains("no function matches") {
        let name = between(message, "Invalid function '", "'").unwrap_or("");
        return QueryError::new(
            code::UNDEFINED_FUNCTION,
            if name.is_empty() {
                clean(message)
            } else {
                format!("function {name} does not exist")
            },
        );
    }
    if lower.contains("cannot coerce")
        || lower.contains("cannot infer common")
        || lower.contains("does not support")
        || lower.contains("type coercion")
        || lower.contains("cannot be cast")
    {
        return QueryError::new(code::DATATYPE_MISMATCH, clean(message));
    }
    if lower.contains("must appear in the group by")
        || lower.contains("projection references non-aggregate")
    {
        return QueryError::new(code::GROUPING_ERROR, clean(message));
    }
    if lower.contains("placeholder") && lower.contains("type") {
        return QueryError::new(code::INDETERMINATE_DATATYPE, clean(message));
    }
    QueryError::new(code::SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION, clean(message))
}

fn execution_error(message: &str, query_id: u64) -> QueryError {
    if let Some(tag) = message.strip_prefix("__arrow__") {
        if tag == "div0" {
            return QueryError::new(code::DIVISION_BY_ZERO, "division by zero");
        }
        if let Some(m) = tag.strip_prefix("cast:") {
            return QueryError::new(code::INVALID_TEXT_REPRESENTATION, clean(m));
        }
        if let Some(m) = tag.strip_prefix("overflow:") {
            return QueryError::new(code::NUMERIC_VALUE_OUT_OF_RANGE, clean(m));
        }
        return QueryError::internal(query_id, &tag.trim_start_matches("other:"));
    }
    let lower = message.to_lowercase();
    if lower.contains("divide by zero") || lower.contains("division by zero") {
        return QueryError::new(code::DIVISION_BY_ZERO, "division by zero");
    }
    if lower.contains("cast") || lower.contains("cannot parse") || lower.contains("parser error") {
        return QueryError::new(code::INVALID_TEXT_REPRESENTATION, clean(message));
    }
    if lower.contains("overflow") || lower.contains("out of range") {
        return QueryError::new(code::NUMERIC_VALUE_OUT_OF_RANGE, clean(message));
    }
    QueryError::new(code::DATA_EXCEPTION, clean(message))
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(&text[from..to])
}

/// Strips DataFusion's prefixes ("Error during planning: ") and lowercases the first letter, in
/// PostgreSQL's style.
fn clean(message: &str) -> String {
    let mut text = message.trim();
    for prefix in [
        "Error during planning: ",
        "Execution error: ",
        "This feature is not implemented: ",
        "Optimizer rule",
        "External error: ",
        "Schema error: ",
        "Invalid argument error: ",
        "Cast error: ",
        "Arrow error: ",
    ] {
        if let Some(rest) = text.strip_prefix(prefix) {
            text = rest;
        }
    }
    let text = text.lines().next().unwrap_or(text).trim_end_matches('.');
    let mut chars = text.chars();
    match chars.next() {
        Some(first)
            if first.is_uppercase() && !chars.clone().next().is_some_and(|c| c.is_uppercase()) =>
        {
            first.to_lowercase().chain(chars).collect()
        }
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    /// ARCHITECTURE.md: a SQLSTATE is spelled once, as a `code` constant; errors elsewhere name
    /// the constant, so the set of codes we send is this file's list.
    #[test]
    fn sqlstates_are_named_only_here() {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    out.push(path);
                }
            }
        }
        let mut files = Vec::new();
        walk(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut files,
        );
        let mut offenders = Vec::new();
        for file in files.iter().filter(|f| !f.ends_with("sql/error.rs")) {
            let text = std::fs::read_to_string(file).unwrap();
            for (at, _) in text.match_indices("QueryError::new(") {
                let rest = text[at + "QueryError::new(".len()..].trim_start();
                if rest.starts_with('"') {
                    offenders.push(format!(
                        "{}: {}",
                        file.display(),
                        &rest[..rest.len().min(12)]
                    ));
                }
            }
        }
        assert!(files.len() > 50, "the walk found the sources");
        assert!(offenders.is_empty(), "literal SQLSTATEs: {offenders:?}");
    }

    use super::*;

    fn check(err: DataFusionError, expect_code: &str, expect_message: &str) {
        let q = QueryError::from_datafusion(err, 1);
        assert_eq!(q.code, expect_code, "{q:?}");
        assert!(q.message.contains(expect_message), "{q:?}");
    }

    #[test]
    fn mapping() {
        check(
            DataFusionError::Plan("table 'ikhospital_dw.$search_path.nope' not found".into()),
            code::UNDEFINED_TABLE,
            "relation \"nope\" does not exist",
        );
        check(
            DataFusionError::ArrowError(Box::new(ArrowError::DivideByZero), None),
            code::DIVISION_BY_ZERO,
            "division by zero",
        );
        check(
            DataFusionError::ResourcesExhausted("Failed to allocate".into()),
            code::OUT_OF_MEMORY,
            "out of memory",
        );
        check(
            DataFusionError::Plan("Invalid function 'frobnicate'.\nDid you mean 'floor'?".into()),
            code::UNDEFINED_FUNCTION,
            "function frobnicate does not exist",
        );
        check(
            DataFusionError::External(Box::new(QueryError::privilege("permission denied"))),
            code::INSUFFICIENT_PRIVILEGE,
            "permission denied",
        );
        let internal =
            QueryError::from_datafusion(DataFusionError::Internal("secret path /x".into()), 7);
        assert_eq!(internal.code, code::INTERNAL_ERROR);
        assert!(!internal.message.contains("secret"));
    }
}
