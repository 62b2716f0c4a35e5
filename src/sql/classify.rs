//! What a statement is allowed to do. The server is read-only: only queries, EXPLAIN, session
//! settings and no-op transaction control run; every other statement is refused here, before
//! DataFusion sees it (DataFusion would otherwise happily `COPY ... TO` a file or create a
//! table in the shared catalog).
//!
//! Statements are parsed with sqlparser's PostgreSQL dialect, never DataFusion's own parser, so
//! DataFusion-only syntax (`CREATE EXTERNAL TABLE`, `COPY ... TO 'file'`) cannot even be
//! expressed.

use datafusion::sql::sqlparser::ast::{
    CloseCursor, DiscardObject, Expr, ObjectName, Reset, Set, SetSessionAuthorizationParamKind,
    Statement, Value,
};

use super::error::QueryError;

/// A statement, classified.
#[derive(Debug, Clone)]
pub enum Action {
    /// SELECT, WITH, VALUES, TABLE: planned and run.
    Query(Box<Statement>),
    /// EXPLAIN of a query.
    Explain {
        /// The query.
        query: Box<Statement>,
        /// EXPLAIN ANALYZE.
        analyze: bool,
        /// EXPLAIN VERBOSE.
        verbose: bool,
    },
    /// `COPY (query) TO STDOUT` / `COPY table TO STDOUT`: a query whose rows go out as COPY
    /// data.
    CopyOut(Box<crate::pg::copy::CopyOut>),
    /// `SHOW name` (`None` = `SHOW ALL`).
    Show(Option<String>),
    /// `SET name = value`.
    Set {
        /// Setting name as written.
        name: String,
        /// Value as text.
        value: String,
    },
    /// `RESET name` / `RESET ALL`.
    Reset(Option<String>),
    /// Accepted without effect, with this command tag (`SET`, `SAVEPOINT`, `UNLISTEN`, ...).
    NoOp(&'static str),
    /// `BEGIN` / `START TRANSACTION`.
    Begin,
    /// `COMMIT` / `END`.
    Commit,
    /// `ROLLBACK` / `ABORT`.
    Rollback,
    /// `ROLLBACK TO SAVEPOINT`.
    RollbackToSavepoint,
    /// `DISCARD ALL|PLANS|SEQUENCES|TEMP`.
    Discard(&'static str),
    /// `DEALLOCATE name` / `DEALLOCATE ALL` (`None`).
    Deallocate(Option<String>),
    /// `CLOSE cursor` / `CLOSE ALL` (`None`).
    Close(Option<String>),
}

/// Parses a query string into statements (PostgreSQL dialect), bounded and rebalanced by
/// [`super::shape::parse`].
pub fn parse(sql: &str) -> Result<Vec<Statement>, QueryError> {
    super::shape::parse(sql)
}

/// Classifies one statement, refusing anything that is not allowed.
pub fn classify(statement: Statement) -> Result<Action, QueryError> {
    use Statement as S;
    Ok(match statement {
        S::Query(_) => Action::Query(Box::new(statement)),
        S::Explain {
            statement: inner,
            analyze,
            verbose,
            options,
            ..
        } => {
            if !matches!(*inner, S::Query(_)) {
                return Err(QueryError::unsupported(
                    "EXPLAIN is supported for queries only",
                ));
            }
            let mut analyze = analyze;
            let mut verbose = verbose;
            for option in options.iter().flatten() {
                let name = option.name.value.to_lowercase();
                let on = option
                    .arg
                    .as_ref()
                    .map(|a| {
                        !matches!(a.to_string().to_lowercase().as_str(), "false" | "off" | "0")
                    })
                    .unwrap_or(true);
                match name.as_str() {
                    "analyze" => analyze = on,
                    "verbose" => verbose = on,
                    "costs" | "format" | "buffers" | "timing" | "summary" | "settings" | "wal" => {}
                    other => {
                        return Err(QueryError::syntax(format!(
                            "unrecognized EXPLAIN option \"{other}\""
                        )));
                    }
                }
            }
            Action::Explain {
                query: inner,
                analyze,
                verbose,
            }
        }
        S::ShowVariable { variable } => {
            // sqlparser keeps the words of `SHOW a.b` and drops the dot, as it drops the space
            // of `SHOW TIME ZONE`. PostgreSQL's multi-word names are these three; any other
            // several-part name is a dotted (custom) setting such as lakehouse.result_cache.
            let words: Vec<String> = variable.iter().map(|i| i.value.clone()).collect();
            let spaced = words.join(" ");
            let name = if words.len() > 1
                && !matches!(
                    spaced.to_lowercase().as_str(),
                    "time zone" | "transaction isolation level" | "session authorization"
                ) {
                words.join(".")
            } else {
                spaced
            };
            if name.eq_ignore_ascii_case("all") {
                Action::Show(None)
            } else {
                Action::Show(Some(name))
            }
        }
        S::Set(set) => classify_set(set)?,
        S::Reset(reset) => match reset.reset {
            Reset::ALL => Action::Reset(None),
            Reset::ConfigurationParameter(name) => Action::Reset(Some(object_name(&name))),
        },
        S::StartTransaction { .. } => Action::Begin,
        S::Commit { .. } => Action::Commit,
        S::Rollback { savepoint, .. } => {
            if savepoint.is_some() {
                Action::RollbackToSavepoint
            } else {
                Action::Rollback
            }
        }
        S::Savepoint { .. } => Action::NoOp("SAVEPOINT"),
        S::ReleaseSavepoint { .. } => Action::NoOp("RELEASE"),
        S::Discard { object_type } => Action::Discard(match object_type {
            DiscardObject::ALL => "DISCARD ALL",
            DiscardObject::PLANS => "DISCARD PLANS",
            DiscardObject::SEQUENCES => "DISCARD SEQUENCES",
            DiscardObject::TEMP => "DISCARD TEMP",
        }),
        S::Deallocate { name, .. } => {
            if name.value.eq_ignore_ascii_case("all") && name.quote_style.is_none() {
                Action::Deallocate(None)
            } else {
                Action::Deallocate(Some(name.value))
            }
        }
        S::Close { cursor } => match cursor {
            CloseCursor::All => Action::Close(None),
            CloseCursor::Specific { name } => Action::Close(Some(name.value)),
        },
        S::UNLISTEN { .. } => Action::NoOp("UNLISTEN"),
        S::Insert(_)
        | S::Update { .. }
        | S::Delete(_)
        | S::Merge { .. }
        | S::Truncate { .. }
        | S::CreateTable(_)
        | S::CreateView { .. }
        | S::CreateIndex(_)
        | S::CreateSchema { .. }
        | S::CreateDatabase { .. }
        | S::CreateFunction(_)
        | S::CreateSequence { .. }
        | S::CreateType { .. }
        | S::CreateExtension { .. }
        | S::AlterTable { .. }
        | S::AlterView { .. }
        | S::AlterIndex { .. }
        | S::Drop { .. }
        | S::DropFunction { .. }
        | S::Analyze { .. }
        | S::Vacuum { .. } => {
            return Err(QueryError::read_only(&statement_kind(&statement)));
        }
        S::Copy { .. } if crate::pg::copy::is_to_stdout(&statement) => {
            Action::CopyOut(Box::new(crate::pg::copy::classify(statement)?))
        }
        S::Copy { .. } => {
            return Err(QueryError::privilege(
                "COPY is not allowed: this server neither reads nor writes server files",
            )
            .with_hint("use SELECT, or psql's \\copy (SELECT ...) TO 'file' on the client"));
        }
        S::Grant { .. } | S::Revoke { .. } | S::CreateRole { .. } | S::AlterRole { .. } => {
            return Err(QueryError::privilege(
                "privileges are managed in grants/*.yaml, not with SQL",
            ));
        }
        other => {
            return Err(QueryError::unsupported(format!(
                "{} is not supported",
                statement_kind(&other)
            )));
        }
    })
}

fn classify_set(set: Set) -> Result<Action, QueryError> {
    Ok(match set {
        Set::SingleAssignment {
            variable, values, ..
        } => Action::Set {
            name: object_name(&variable),
            value: values.iter().map(value_text).collect::<Vec<_>>().join(", "),
        },
        Set::SetTimeZone { value, .. } => Action::Set {
            name: "TimeZone".to_string(),
            value: value_text(&value),
        },
        Set::SetNames { charset_name, .. } => Action::Set {
            name: "client_encoding".to_string(),
            value: charset_name.value,
        },
        Set::SetSessionAuthorization(param) => match param.kind {
            SetSessionAuthorizationParamKind::Default => Action::NoOp("SET"),
            SetSessionAuthorizationParamKind::User(_) => {
                return Err(QueryError::privilege(
                    "permission denied to set session authorization",
                ));
            }
        },
        Set::SetRole {
            role_name: None, ..
        } => Action::NoOp("SET"),
        Set::SetRole { .. } => {
            return Err(QueryError::privilege(
                "SET ROLE is not supported: roles come from grants/*.yaml",
            ));
        }
        Set::SetTransaction { modes, .. } => {
            let text = modes
                .iter()
                .map(|m| m.to_string().to_uppercase())
                .collect::<Vec<_>>()
                .join(" ");
            if text.contains("READ WRITE") {
                return Err(QueryError::read_only("a read-write transaction"));
            }
            Action::NoOp("SET")
        }
        other => {
            return Err(QueryError::unsupported(format!("{other} is not supported")));
        }
    })
}

/// The text of a SET value: string literals unquoted, identifiers and numbers as written.
fn value_text(expr: &Expr) -> String {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s)
            | Value::DoubleQuotedString(s)
            | Value::EscapedStringLiteral(s)
            | Value::UnicodeStringLiteral(s) => s.clone(),
            other => other.to_string(),
        },
        Expr::Identifier(ident) => ident.value.clone(),
        other => other.to_string(),
    }
}

fn object_name(name: &ObjectName) -> String {
    name.0
        .iter()
        .map(|part| part.to_string().trim_matches('"').to_string())
        .collect::<Vec<_>>()
        .join(".")
}

/// A short description of a statement for messages (`INSERT`, `CREATE TABLE`, ...).
pub fn statement_kind(statement: &Statement) -> String {
    let text = statement.to_string();
    let words: Vec<&str> = text.split_whitespace().take(3).collect();
    match words.as_slice() {
        [first, second, ..]
            if matches!(first.to_uppercase().as_str(), "CREATE" | "DROP" | "ALTER") =>
        {
            format!("{} {}", first.to_uppercase(), second.to_uppercase())
        }
        [first, ..] => first.to_uppercase(),
        [] => "statement".to_string(),
    }
}

/// The command tag of a SELECT-like statement with `n` rows.
pub fn select_tag(n_rows: u64) -> String {
    format!("SELECT {n_rows}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(sql: &str) -> Result<Action, QueryError> {
        let mut statements = parse(sql)?;
        classify(statements.remove(0))
    }

    #[test]
    fn allowed() {
        assert!(matches!(check("select 1").unwrap(), Action::Query(_)));
        assert!(matches!(
            check("with x as (select 1) select * from x").unwrap(),
            Action::Query(_)
        ));
        assert!(matches!(check("values (1)").unwrap(), Action::Query(_)));
        assert!(matches!(
            check("explain select 1").unwrap(),
            Action::Explain { analyze: false, .. }
        ));
        assert!(matches!(
            check("explain (analyze) select 1").unwrap(),
            Action::Explain { analyze: true, .. }
        ));
        assert!(matches!(
            check("show search_path").unwrap(),
            Action::Show(Some(_))
        ));
        assert!(matches!(check("SHOW ALL").unwrap(), Action::Show(None)));
        for (sql, name) in [
            ("show lakehouse.result_cache", "lakehouse.result_cache"),
            ("SHOW TIME ZONE", "TIME ZONE"),
            ("show application_name", "application_name"),
        ] {
            match check(sql).unwrap() {
                Action::Show(Some(got)) => assert_eq!(got, name, "{sql}"),
                other => panic!("{sql}: {other:?}"),
            }
        }
        assert!(matches!(
            check("show transaction isolation level").unwrap(),
            Action::Show(Some(_))
        ));
        match check("set application_name = 'x'").unwrap() {
            Action::Set { name, value } => {
                assert_eq!((name.as_str(), value.as_str()), ("application_name", "x"))
            }
            other => panic!("{other:?}"),
        }
        match check("SET TIME ZONE 'UTC'").unwrap() {
            Action::Set { name, value } => {
                assert_eq!((name.as_str(), value.as_str()), ("TimeZone", "UTC"))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            check("SET SESSION AUTHORIZATION DEFAULT").unwrap(),
            Action::NoOp("SET")
        ));
        assert!(matches!(check("reset all").unwrap(), Action::Reset(None)));
        assert!(matches!(
            check("discard all").unwrap(),
            Action::Discard("DISCARD ALL")
        ));
        assert!(matches!(check("begin").unwrap(), Action::Begin));
        assert!(matches!(
            check("start transaction read only").unwrap(),
            Action::Begin
        ));
        assert!(matches!(check("commit").unwrap(), Action::Commit));
        assert!(matches!(check("rollback").unwrap(), Action::Rollback));
        assert!(matches!(check("close all").unwrap(), Action::Close(None)));
        assert!(matches!(
            check("deallocate all").unwrap(),
            Action::Deallocate(None)
        ));
        assert!(matches!(
            check("unlisten *").unwrap(),
            Action::NoOp("UNLISTEN")
        ));
    }

    #[test]
    fn refused() {
        let cases = [
            ("insert into t values (1)", "25006"),
            ("update t set a = 1", "25006"),
            ("delete from t", "25006"),
            ("create table t (a int)", "25006"),
            ("drop table t", "25006"),
            ("create view v as select 1", "25006"),
            ("copy (select 1) to '/tmp/x'", "42501"),
            ("copy t from '/etc/passwd'", "42501"),
            ("copy t from stdin", "42501"),
            ("copy t to program 'rm -rf /'", "42501"),
            ("grant select on t to u", "42501"),
            ("set datafusion.execution.batch_size = 1", "ok-set"),
            ("set transaction read write", "25006"),
            ("set role postgres", "42501"),
            ("explain insert into t values (1)", "0A000"),
        ];
        for (sql, expected) in cases {
            match check(sql) {
                Ok(Action::Set { .. }) if expected == "ok-set" => {}
                Ok(other) => panic!("{sql} was allowed: {other:?}"),
                Err(err) => assert_eq!(err.code, expected, "{sql}: {err:?}"),
            }
        }
    }

    #[test]
    fn datafusion_only_syntax_is_refused() {
        // sqlparser knows Hive's CREATE EXTERNAL TABLE; it is a write, refused like any other.
        let err = check("CREATE EXTERNAL TABLE x STORED AS PARQUET LOCATION '/etc'").unwrap_err();
        assert_eq!(err.code, "25006");
    }
}
