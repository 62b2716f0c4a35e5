//! PostgreSQL syntax DataFusion does not speak, translated on the syntax tree.
//!
//! Every rule here is structural (an operator, a cast target, a literal kind, a qualified
//! function name); none looks at the text of a query or recognises a particular client's
//! statement. Clients' catalog queries then run against the real catalogs in
//! `catalog::system`.

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::Result;
use datafusion::logical_expr::planner::TypePlanner;
use datafusion::sql::sqlparser::ast::{
    self, BinaryOperator, CastKind, Expr, Function, FunctionArg, FunctionArgExpr,
    FunctionArgumentList, FunctionArguments, Ident, ObjectName, ObjectNamePart, Statement, Value,
    ValueWithSpan, visit_expressions_mut,
};

use crate::pgtype::{self, PG_TYPE_METADATA_KEY};

/// Rewrites `statement` in place.
pub fn rewrite(statement: &mut Statement) {
    let _ = visit_expressions_mut(statement, |expr| {
        rewrite_expr(expr);
        ControlFlow::<()>::Continue(())
    });
}

fn rewrite_expr(expr: &mut Expr) {
    match expr {
        // U&'...' literals (Power BI quotes strings with control characters this way): the
        // tokenizer already decoded the escapes.
        Expr::Value(ValueWithSpan {
            value: value @ Value::UnicodeStringLiteral(_),
            ..
        }) => {
            if let Value::UnicodeStringLiteral(s) = value {
                *value = Value::SingleQuotedString(std::mem::take(s));
            }
        }
        // OPERATOR(pg_catalog.~) and friends, as psql writes them.
        Expr::BinaryOp { op, .. } => {
            if let BinaryOperator::PGCustomBinaryOperator(parts) = op
                && let Some(symbol) = parts.last()
                && let Some(plain) = plain_operator(symbol)
            {
                *op = plain;
            }
        }
        // COLLATE "C" / COLLATE pg_catalog.default: one collation here (byte order).
        Expr::Collate { expr: inner, .. } => {
            *expr = std::mem::replace(inner.as_mut(), Expr::value(Value::Null));
        }
        // 'pg_class'::regclass and the other object-identifier casts need a catalog lookup.
        Expr::Cast {
            kind,
            expr: inner,
            data_type,
            ..
        } if matches!(kind, CastKind::Cast | CastKind::DoubleColon) => {
            if let Some(function) = reg_cast_function(data_type) {
                let arg = std::mem::replace(inner.as_mut(), Expr::value(Value::Null));
                *expr = call(function, vec![arg]);
            }
        }
        // pg_catalog.format_type(...) is format_type(...).
        Expr::Function(Function { name, .. }) => {
            if name.0.len() == 2
                && let Some(ObjectNamePart::Identifier(schema)) = name.0.first()
                && matches!(schema.value.to_lowercase().as_str(), "pg_catalog" | "information_schema")
                && let Some(last) = name.0.pop()
            {
                name.0 = vec![last];
            }
        }
        _ => {}
    }
}

fn plain_operator(symbol: &str) -> Option<BinaryOperator> {
    Some(match symbol {
        "~" => BinaryOperator::PGRegexMatch,
        "~*" => BinaryOperator::PGRegexIMatch,
        "!~" => BinaryOperator::PGRegexNotMatch,
        "!~*" => BinaryOperator::PGRegexNotIMatch,
        "=" => BinaryOperator::Eq,
        "<>" | "!=" => BinaryOperator::NotEq,
        "<" => BinaryOperator::Lt,
        "<=" => BinaryOperator::LtEq,
        ">" => BinaryOperator::Gt,
        ">=" => BinaryOperator::GtEq,
        "||" => BinaryOperator::StringConcat,
        "+" => BinaryOperator::Plus,
        "-" => BinaryOperator::Minus,
        "*" => BinaryOperator::Multiply,
        "/" => BinaryOperator::Divide,
        "~~" => BinaryOperator::PGLikeMatch,
        "~~*" => BinaryOperator::PGILikeMatch,
        "!~~" => BinaryOperator::PGNotLikeMatch,
        "!~~*" => BinaryOperator::PGNotILikeMatch,
        _ => return None,
    })
}

fn type_name_parts(data_type: &ast::DataType) -> Option<Vec<String>> {
    match data_type {
        ast::DataType::Custom(name, _) => Some(
            name.0
                .iter()
                .map(|p| match p {
                    ObjectNamePart::Identifier(i) => i.value.to_lowercase(),
                    other => other.to_string().to_lowercase(),
                })
                .collect(),
        ),
        ast::DataType::Regclass => Some(vec!["regclass".to_string()]),
        _ => None,
    }
}

fn reg_cast_function(data_type: &ast::DataType) -> Option<&'static str> {
    let parts = type_name_parts(data_type)?;
    let last = parts.last()?;
    let schema_ok = parts.len() == 1 || parts.first().is_some_and(|s| s == "pg_catalog");
    if !schema_ok {
        return None;
    }
    Some(match last.as_str() {
        "regclass" => "__lh_regclass",
        "regtype" => "__lh_regtype",
        "regnamespace" => "__lh_regnamespace",
        "regrole" => "__lh_regrole",
        "regproc" | "regprocedure" => "__lh_regproc",
        _ => return None,
    })
}

fn call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(Function {
        name: ObjectName(vec![ObjectNamePart::Identifier(Ident::new(name))]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|a| FunctionArg::Unnamed(FunctionArgExpr::Expr(a)))
                .collect(),
            clauses: Vec::new(),
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: Vec::new(),
    })
}

/// Wraps every `$n` placeholder whose type the client declared in a cast to that type, so that
/// DataFusion plans it with the declared type.
pub fn declare_parameter_types(statement: &mut Statement, declared: &[u32]) {
    if declared.iter().all(|oid| *oid == 0) {
        return;
    }
    let _ = visit_expressions_mut(statement, |expr| {
        if let Expr::Value(ValueWithSpan {
            value: Value::Placeholder(name),
            ..
        }) = expr
            && let Some(index) = name
                .strip_prefix('$')
                .and_then(|n| n.parse::<usize>().ok())
            && let Some(oid) = declared.get(index.wrapping_sub(1))
            && let Some(sql_type) = sql_type_of(*oid)
        {
            let placeholder = std::mem::replace(expr, Expr::value(Value::Null));
            *expr = Expr::Cast {
                kind: CastKind::Cast,
                expr: Box::new(placeholder),
                data_type: sql_type,
                array: false,
                format: None,
            };
        }
        ControlFlow::<()>::Continue(())
    });
}

fn sql_type_of(oid: u32) -> Option<ast::DataType> {
    use ast::DataType as D;
    Some(match oid {
        pgtype::oid::BOOL => D::Boolean,
        pgtype::oid::INT2 => D::SmallInt(None),
        pgtype::oid::INT4 => D::Int(None),
        pgtype::oid::INT8 => D::BigInt(None),
        pgtype::oid::FLOAT4 => D::Real,
        pgtype::oid::FLOAT8 => D::DoublePrecision,
        pgtype::oid::NUMERIC => D::Numeric(ast::ExactNumberInfo::None),
        pgtype::oid::TEXT | pgtype::oid::VARCHAR | pgtype::oid::BPCHAR | pgtype::oid::NAME => {
            D::Text
        }
        pgtype::oid::DATE => D::Date,
        pgtype::oid::TIMESTAMP => D::Timestamp(None, ast::TimezoneInfo::None),
        pgtype::oid::TIMESTAMPTZ => D::Timestamp(None, ast::TimezoneInfo::WithTimeZone),
        pgtype::oid::BYTEA => D::Bytea,
        pgtype::oid::OID => D::Custom(
            ObjectName(vec![ObjectNamePart::Identifier(Ident::new("oid"))]),
            Vec::new(),
        ),
        // json, uuid, interval, ...: let DataFusion infer from context.
        _ => return None,
    })
}

/// PostgreSQL type names DataFusion does not know: `oid`, `name`, `"char"`, `regclass`,
/// `pg_catalog.text`, `information_schema.sql_identifier`, `json`, `uuid`, ...
#[derive(Debug, Default)]
pub struct PgTypePlanner;

fn with_pg_type(data_type: DataType, pg: &str) -> FieldRef {
    Arc::new(
        Field::new("", data_type, true).with_metadata(
            [(PG_TYPE_METADATA_KEY.to_string(), pg.to_string())]
                .into_iter()
                .collect(),
        ),
    )
}

impl TypePlanner for PgTypePlanner {
    fn plan_type_field(&self, sql_type: &ast::DataType) -> Result<Option<FieldRef>> {
        use ast::DataType as D;
        let field = match sql_type {
            D::JSON | D::JSONB => with_pg_type(DataType::Utf8, "json"),
            D::Uuid => with_pg_type(DataType::Utf8, "uuid"),
            D::Regclass => with_pg_type(DataType::UInt32, "regclass"),
            D::Custom(..) => {
                let parts = type_name_parts(sql_type).unwrap_or_default();
                let (schema, name) = match parts.as_slice() {
                    [name] => (None, name.as_str()),
                    [schema, name] => (Some(schema.as_str()), name.as_str()),
                    _ => return Ok(None),
                };
                if schema.is_some_and(|s| s != "pg_catalog" && s != "information_schema") {
                    return Ok(None);
                }
                match name {
                    "oid" | "xid" | "cid" | "regclass" | "regtype" | "regproc"
                    | "regprocedure" | "regnamespace" | "regrole" => {
                        with_pg_type(DataType::UInt32, name)
                    }
                    "name" | "sql_identifier" => with_pg_type(DataType::Utf8, "name"),
                    "char" => with_pg_type(DataType::Utf8, "char"),
                    "character_data" | "yes_or_no" => with_pg_type(DataType::Utf8, "varchar"),
                    "cardinal_number" => Arc::new(Field::new("", DataType::Int32, true)),
                    "int2vector" => with_pg_type(
                        DataType::List(Arc::new(Field::new("item", DataType::Int16, true))),
                        "int2vector",
                    ),
                    "oidvector" => with_pg_type(
                        DataType::List(Arc::new(Field::new("item", DataType::UInt32, true))),
                        "oidvector",
                    ),
                    "json" | "jsonb" | "uuid" | "pg_node_tree" => with_pg_type(DataType::Utf8, name),
                    other => match pgtype::by_name(other).and_then(|t| {
                        pgtype::arrow_type_of(t.oid).map(|a| (t, a))
                    }) {
                        Some((_, arrow)) => Arc::new(Field::new("", arrow, true)),
                        None => return Ok(None),
                    },
                }
            }
            _ => return Ok(None),
        };
        Ok(Some(field))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::classify::parse;

    fn rewritten(sql: &str) -> String {
        let mut statement = parse(sql).unwrap().remove(0);
        rewrite(&mut statement);
        statement.to_string()
    }

    #[test]
    fn rewrites() {
        assert_eq!(
            rewritten("select 1 where n.nspname OPERATOR(pg_catalog.~) '^(x)$' COLLATE pg_catalog.default"),
            "SELECT 1 WHERE n.nspname ~ '^(x)$'"
        );
        assert_eq!(
            rewritten("select 'pg_class'::regclass, c.oid::pg_catalog.regclass"),
            "SELECT __lh_regclass('pg_class'), __lh_regclass(c.oid)"
        );
        assert_eq!(
            rewritten("select pg_catalog.format_type(1, 2)"),
            "SELECT format_type(1, 2)"
        );
        assert_eq!(rewritten("select U&'O''Brien\\0009x'"), "SELECT 'O''Brien\tx'");
    }

    #[test]
    fn declared_parameters_become_casts() {
        let mut statement = parse("select $1, $2").unwrap().remove(0);
        declare_parameter_types(&mut statement, &[pgtype::oid::INT8, 0]);
        assert_eq!(statement.to_string(), "SELECT CAST($1 AS BIGINT), $2");
    }
}
