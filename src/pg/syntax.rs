//! PostgreSQL syntax DataFusion does not speak, translated on the syntax tree.
//!
//! Every rule here is structural (an operator, a cast target, a literal kind, a qualified
//! function name); none looks at the text of a query or recognises a particular client's
//! statement. Clients' catalog queries then run against the real catalogs in
//! `pg::catalog`.

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{DFSchema, DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::ExprSchemable;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr, TypePlanner};
use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
use datafusion::sql::sqlparser::ast::{
    self, BinaryOperator, CaseWhen, CastKind, Expr, Function, FunctionArg, FunctionArgExpr,
    FunctionArgumentClause, FunctionArgumentList, FunctionArguments, GroupByExpr, Ident,
    LimitClause, ObjectName, ObjectNamePart, OrderBy, OrderByExpr, OrderByKind, Query, Select,
    SelectItem, SetExpr, Statement, TableFactor, Value, ValueWithSpan, Visit, VisitMut, Visitor,
    VisitorMut, visit_expressions_mut,
};

use crate::pg::types::{self as pgtype, PG_TYPE_METADATA_KEY};

/// The function a non-aggregated scalar subquery calls when it finds more than one row
/// (registered in `functions`): PostgreSQL's error 21000.
pub const MORE_THAN_ONE_ROW_FUNCTION: &str = "__lh_more_than_one_row";

/// Rewrites `statement` in place.
pub fn rewrite(statement: &mut Statement) {
    let _ = VisitMut::visit(statement, &mut Rewriter::default());
}

/// Applies the expression rules after each expression's children (so a rewritten child is
/// seen by its parent) and unqualifies `pg_catalog.` table functions.
#[derive(Default)]
struct Rewriter {
    /// Inside `FROM UNNEST(...)` (or a set-returning function there): its arguments are lists
    /// already, not set-returning calls of a select list.
    in_unnest: usize,
}

impl VisitorMut for Rewriter {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        // FROM pg_catalog.generate_series(...) is the built-in table function; tables keep
        // their schema (pg_catalog.pg_class is a relation of schema pg_catalog).
        if let TableFactor::Table {
            name,
            args: Some(_),
            ..
        } = factor
        {
            unqualify_builtin(name);
        }
        // FROM generate_series(a, b) s with arguments that are not constants (psql and
        // psqlODBC write `generate_series(array_lower(conkey, 1), array_upper(conkey, 1))`):
        // DataFusion's table function wants literals, its array function does not.
        if let TableFactor::Table {
            name,
            args: Some(args),
            alias,
            ..
        } = factor
            && is_named(name, "generate_series")
            && args.settings.is_none()
            && args.args.iter().any(
                |a| !matches!(a, FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) if is_constant(e)),
            )
        {
            let series = Expr::Function(Function {
                name: name.clone(),
                uses_odbc_syntax: false,
                parameters: FunctionArguments::None,
                args: FunctionArguments::List(FunctionArgumentList {
                    duplicate_treatment: None,
                    args: args.args.clone(),
                    clauses: Vec::new(),
                }),
                filter: None,
                null_treatment: None,
                over: None,
                within_group: Vec::new(),
            });
            *factor = TableFactor::UNNEST {
                alias: alias.take(),
                array_exprs: vec![series],
                with_offset: false,
                with_offset_alias: None,
                with_ordinality: false,
            };
        }
        // FROM unnest(array) x: DataFusion's UNNEST relation; as in PostgreSQL, the column of
        // a one-column function is named after the alias.
        if let TableFactor::Table {
            name,
            args: Some(args),
            alias,
            ..
        } = factor
            && is_named(name, "unnest")
            && args.settings.is_none()
        {
            let array_exprs: Option<Vec<Expr>> = args
                .args
                .iter()
                .map(|a| match a {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
                    _ => None,
                })
                .collect();
            if let Some(array_exprs) = array_exprs {
                *factor = TableFactor::UNNEST {
                    alias: alias.take(),
                    array_exprs,
                    with_offset: false,
                    with_offset_alias: None,
                    with_ordinality: false,
                };
            }
        }
        if let TableFactor::UNNEST {
            alias: Some(alias),
            array_exprs,
            ..
        } = factor
            && alias.columns.is_empty()
            && array_exprs.len() == 1
        {
            let mut column = ast::TableAliasColumnDef::from_name(alias.name.value.clone());
            column.name.quote_style = alias.name.quote_style;
            alias.columns = vec![column];
        }
        if matches!(factor, TableFactor::UNNEST { .. }) {
            self.in_unnest += 1;
        }
        ControlFlow::Continue(())
    }

    fn post_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if matches!(factor, TableFactor::UNNEST { .. }) {
            self.in_unnest = self.in_unnest.saturating_sub(1);
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        rewrite_expr(expr, self.in_unnest == 0);
        ControlFlow::Continue(())
    }
}

/// `pg_catalog.f` and `information_schema.f` are our built-in `f`.
fn unqualify_builtin(name: &mut ObjectName) {
    if name.0.len() == 2
        && let Some(ObjectNamePart::Identifier(schema)) = name.0.first()
        && matches!(
            schema.value.to_lowercase().as_str(),
            "pg_catalog" | "information_schema"
        )
        && let Some(last) = name.0.pop()
    {
        name.0 = vec![last];
    }
}

/// The last part of a function's name, lower-cased, when it has no more than two parts.
fn function_name(name: &ObjectName) -> Option<String> {
    match name.0.as_slice() {
        [ObjectNamePart::Identifier(i)] | [_, ObjectNamePart::Identifier(i)] => {
            Some(i.value.to_lowercase())
        }
        _ => None,
    }
}

/// The unnamed plain arguments of a call.
fn plain_args(function: &Function) -> Option<Vec<Expr>> {
    let FunctionArguments::List(list) = &function.args else {
        return None;
    };
    list.args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// PostgreSQL's set-returning array functions in a select list, as DataFusion's `unnest` of a
/// list (several in one select list run in step, as PostgreSQL's do):
/// `generate_series(a, b[, s])` is `unnest(generate_series(a, b[, s]))` (DataFusion's is the
/// list), `generate_subscripts(a, d)` `unnest(generate_series(1, array_length(a, d)))` and
/// `information_schema._pg_expandarray(a)` `unnest(__lh_pg_expandarray(a))`.
fn set_returning(function: &Function) -> Option<Expr> {
    let name = function_name(&function.name)?;
    let args = plain_args(function)?;
    let list = match (name.as_str(), args.as_slice()) {
        ("generate_series", [_, _] | [_, _, _]) => Expr::Function(function.clone()),
        ("generate_subscripts", [array, dim]) => call(
            "generate_series",
            vec![
                Expr::value(Value::Number("1".to_string(), false)),
                call("array_length", vec![array.clone(), dim.clone()]),
            ],
        ),
        ("_pg_expandarray", [array]) => {
            call(crate::pg::arrays::EXPANDARRAY_FUNCTION, vec![array.clone()])
        }
        _ => return None,
    };
    Some(call("unnest", vec![list]))
}

fn rewrite_expr(expr: &mut Expr, select_context: bool) {
    if select_context
        && let Expr::Function(function) = expr
        && let Some(unnested) = set_returning(function)
    {
        *expr = unnested;
        return;
    }
    match expr {
        // (composite).field, as pgJDBC reads `(information_schema._pg_expandarray(k)).n`:
        // DataFusion's dot access wants a column, get_field takes any struct.
        Expr::CompoundFieldAccess { root, access_chain }
            if !matches!(
                root.as_ref(),
                Expr::Identifier(_) | Expr::CompoundIdentifier(_)
            ) && !access_chain.is_empty()
                && access_chain
                    .iter()
                    .all(|a| matches!(a, ast::AccessExpr::Dot(Expr::Identifier(_)))) =>
        {
            let mut value = std::mem::replace(root.as_mut(), Expr::value(Value::Null));
            if let Expr::Nested(inner) = value {
                value = *inner;
            }
            for access in std::mem::take(access_chain) {
                if let ast::AccessExpr::Dot(Expr::Identifier(field)) = access {
                    value = call(
                        "get_field",
                        vec![
                            value,
                            Expr::value(Value::SingleQuotedString(identifier_key(&field))),
                        ],
                    );
                }
            }
            *expr = value;
        }
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
            kind: CastKind::Cast | CastKind::DoubleColon,
            expr: inner,
            data_type,
            ..
        } => {
            if let Some(function) = reg_cast_function(data_type) {
                let arg = std::mem::replace(inner.as_mut(), Expr::value(Value::Null));
                *expr = call(function, vec![arg]);
            }
        }
        // ARRAY(SELECT x FROM ...): the array of the subquery's rows.
        Expr::Function(Function {
            name,
            args: FunctionArguments::Subquery(query),
            ..
        }) if is_named(name, "array") => {
            if let Some(array) = array_subquery(query) {
                *expr = array;
            }
        }
        // interval '1 02:03:04' day to second (Power BI's duration literals): the same
        // interval spelled with units, which DataFusion reads.
        Expr::Interval(interval) => {
            if interval.last_field.is_some()
                && let Expr::Value(ValueWithSpan {
                    value: Value::SingleQuotedString(text),
                    ..
                }) = interval.value.as_ref()
                && let Some(spelled) = spell_interval(text, interval.leading_field.as_ref())
            {
                *interval.value = Expr::value(Value::SingleQuotedString(spelled));
                interval.leading_field = None;
                interval.leading_precision = None;
                interval.last_field = None;
                interval.fractional_seconds_precision = None;
            }
        }
        // LIKE ... ESCAPE '/' (SQLAlchemy's reflection): DataFusion escapes with backslash
        // only, so a literal pattern is respelled with backslash escapes.
        Expr::Like {
            pattern,
            escape_char,
            ..
        }
        | Expr::ILike {
            pattern,
            escape_char,
            ..
        } => {
            if let Some(ValueWithSpan {
                value: Value::SingleQuotedString(escape),
                ..
            }) = escape_char
                && escape != "\\"
            {
                match pattern.as_mut() {
                    Expr::Value(ValueWithSpan {
                        value: Value::SingleQuotedString(text),
                        ..
                    }) => match backslash_pattern(text, escape) {
                        Some(respelled) => *text = respelled,
                        // Left for DataFusion to refuse.
                        None => return,
                    },
                    other => {
                        // SQLAlchemy writes `$1::VARCHAR || '%' ESCAPE '/'`: respelled as it runs.
                        let escape = Expr::value(Value::SingleQuotedString(escape.clone()));
                        let original = std::mem::replace(other, Expr::value(Value::Null));
                        *other = call(
                            super::functions::LIKE_ESCAPE_FUNCTION,
                            vec![original, escape],
                        );
                    }
                }
                *escape_char = None;
            }
        }
        // pg_catalog.format_type(...) is format_type(...).
        Expr::Function(Function { name, .. }) => unqualify_builtin(name),
        // A scalar subquery returns at most one row: PostgreSQL checks that when it runs;
        // DataFusion wants the proof in the plan (an aggregate), so give it one that keeps
        // PostgreSQL's behaviour.
        Expr::Subquery(query) => {
            if let Some(replacement) = aggregate_scalar_subquery(query) {
                *expr = replacement;
            }
        }
        _ => {}
    }
}

/// A LIKE pattern written with escape character `escape` (`''`: none), spelled with backslash
/// escapes; `None` for an escape of more than one character (PostgreSQL refuses it too).
pub fn backslash_pattern(pattern: &str, escape: &str) -> Option<String> {
    let mut chars = escape.chars();
    let escape = match (chars.next(), chars.next()) {
        (None, _) => None,
        (Some(c), None) => Some(c),
        _ => return None,
    };
    let mut out = String::with_capacity(pattern.len());
    let mut pending = false;
    for c in pattern.chars() {
        if pending {
            if matches!(c, '%' | '_' | '\\') {
                out.push('\\');
            }
            out.push(c);
            pending = false;
        } else if Some(c) == escape {
            pending = true;
        } else if c == '\\' {
            out.push_str("\\\\");
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// `'[D] [H:M[:S]]'` of a `DAY TO SECOND`-style interval as `'D days H hours M minutes S
/// seconds'`; a lone number counts in the leading field's unit.
fn spell_interval(text: &str, leading: Option<&ast::DateTimeField>) -> Option<String> {
    let mut parts = Vec::new();
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let (days, time) = match tokens.as_slice() {
        [days, time] => (Some(*days), Some(*time)),
        [one] if one.contains(':') => (None, Some(*one)),
        [one] => {
            let unit = match leading? {
                ast::DateTimeField::Day => "days",
                ast::DateTimeField::Hour => "hours",
                ast::DateTimeField::Minute => "minutes",
                ast::DateTimeField::Second => "seconds",
                _ => return None,
            };
            one.parse::<f64>().ok()?;
            return Some(format!("{one} {unit}"));
        }
        _ => return None,
    };
    if let Some(days) = days {
        days.parse::<i64>().ok()?;
        parts.push(format!("{days} days"));
    }
    if let Some(time) = time {
        let negative = time.starts_with('-');
        let fields: Vec<&str> = time.trim_start_matches(['-', '+']).split(':').collect();
        let units: &[&str] = match (fields.len(), leading) {
            (2, Some(ast::DateTimeField::Minute)) => &["minutes", "seconds"],
            (2, _) => &["hours", "minutes"],
            (3, _) => &["hours", "minutes", "seconds"],
            _ => return None,
        };
        for (value, unit) in fields.iter().zip(units) {
            value.parse::<f64>().ok()?;
            parts.push(format!("{}{value} {unit}", if negative { "-" } else { "" }));
        }
    }
    Some(parts.join(" "))
}

/// A literal, possibly signed or cast.
fn is_constant(expr: &Expr) -> bool {
    match expr {
        Expr::Value(_) => true,
        Expr::UnaryOp { expr, .. } | Expr::Nested(expr) | Expr::Cast { expr, .. } => {
            is_constant(expr)
        }
        _ => false,
    }
}

fn is_named(name: &ObjectName, wanted: &str) -> bool {
    matches!(name.0.as_slice(), [ObjectNamePart::Identifier(i)] if i.quote_style.is_none() && i.value.eq_ignore_ascii_case(wanted))
}

/// Aggregate functions (by name) that make a select list aggregated.
const AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "array_agg",
    "string_agg",
    "bool_and",
    "bool_or",
    "every",
    "bit_and",
    "bit_or",
    "bit_xor",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "variance",
    "var_pop",
    "var_samp",
    "corr",
    "covar_pop",
    "covar_samp",
    "first_value",
    "last_value",
    "json_agg",
    "jsonb_agg",
    "json_object_agg",
    "median",
    "approx_distinct",
    "approx_percentile_cont",
    "percentile_cont",
    "percentile_disc",
    "mode",
    "regr_slope",
    "regr_intercept",
    "regr_count",
    "regr_r2",
    "regr_avgx",
    "regr_avgy",
    "regr_sxx",
    "regr_syy",
    "regr_sxy",
    "nth_value",
    "grouping",
];

/// Whether an expression aggregates at its own level (subqueries inside it do not count).
fn aggregates(expr: &Expr) -> bool {
    struct Finder {
        depth: usize,
    }
    impl Visitor for Finder {
        type Break = ();
        fn pre_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.depth += 1;
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.depth = self.depth.saturating_sub(1);
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            if self.depth == 0
                && let Expr::Function(f) = expr
            {
                let is_aggregate = f.over.is_some()
                    || matches!(f.name.0.last(), Some(ObjectNamePart::Identifier(i))
                        if AGGREGATES.contains(&i.value.to_lowercase().as_str()));
                if is_aggregate {
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        }
    }
    Visit::visit(expr, &mut Finder { depth: 0 }).is_break()
}

/// The plain `SELECT` of a query without set operations, CTEs, grouping, `DISTINCT`, `FETCH`.
fn plain_select(query: &mut Query) -> Option<&mut Select> {
    if query.with.is_some() || query.fetch.is_some() {
        return None;
    }
    let SetExpr::Select(select) = query.body.as_mut() else {
        return None;
    };
    let ungrouped =
        matches!(&select.group_by, GroupByExpr::Expressions(e, m) if e.is_empty() && m.is_empty());
    if !ungrouped
        || select.having.is_some()
        || select.distinct.is_some()
        || select.projection.len() != 1
    {
        return None;
    }
    Some(select)
}

fn single_item(select: &mut Select) -> Option<&mut Expr> {
    match select.projection.first_mut()? {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => Some(e),
        _ => None,
    }
}

/// `ORDER BY` of a query as a list (positions `1` resolved to the select item).
fn take_order_by(query: &mut Query, item: &Expr) -> Option<Vec<OrderByExpr>> {
    match query.order_by.take() {
        None => Some(Vec::new()),
        Some(OrderBy {
            kind: OrderByKind::Expressions(mut exprs),
            interpolate: None,
        }) => {
            for order in &mut exprs {
                if let Expr::Value(ValueWithSpan {
                    value: Value::Number(n, _),
                    ..
                }) = &order.expr
                {
                    if n == "1" {
                        order.expr = item.clone();
                    } else {
                        return None;
                    }
                }
            }
            Some(exprs)
        }
        Some(other) => {
            query.order_by = Some(other);
            None
        }
    }
}

fn is_limit_one(limit: &LimitClause) -> bool {
    matches!(limit, LimitClause::LimitOffset { limit: Some(Expr::Value(ValueWithSpan { value: Value::Number(n, _), .. })), offset: None, limit_by } if n == "1" && limit_by.is_empty())
}

/// `(SELECT x FROM ... [ORDER BY o] [LIMIT 1])` without aggregates becomes
/// `(SELECT CASE WHEN count(*) > 1 THEN <error 21000> ELSE first_value(x ORDER BY o) END FROM ...)`
/// (with `LIMIT 1`, just `first_value(x ORDER BY o)`): the same value, the same error.
///
/// DataFusion joins a correlated subquery to its outer query only through equalities between
/// an inner column and an outer expression. The other conjuncts of its `WHERE` move out:
/// - one that reads only outer columns (psql's `AND a.atthasdef`) becomes a guard:
///   `CASE WHEN a.atthasdef THEN (SELECT ...) END` (no row and a false guard both give NULL);
/// - one that mixes inner and outer columns in anything but `inner = outer`
///   (`a.attcollation <> t.typcollation`) is checked outside too, its inner columns read by
///   the same subquery without it. That is PostgreSQL's result whenever the rest of the
///   `WHERE` finds at most one row (psql's catalog lookups by OID); when it finds several, we
///   report error 21000 where PostgreSQL might have found one matching row.
fn aggregate_scalar_subquery(original: &Query) -> Option<Expr> {
    let mut query = original.clone();
    let limit_one = match &query.limit_clause {
        None => false,
        Some(limit) if is_limit_one(limit) => true,
        Some(_) => return None,
    };
    let select = plain_select(&mut query)?;
    let item = single_item(select)?;
    if aggregates(item) {
        return None;
    }
    let item_expr = item.clone();
    let inner = inner_relations(select);
    let mut kept = Vec::new();
    let mut guards = Vec::new();
    let mut late = Vec::new();
    if let Some(selection) = select.selection.take() {
        for conjunct in conjuncts(selection) {
            match correlation(&conjunct, &inner) {
                Correlation::Local | Correlation::EquiJoin => kept.push(conjunct),
                Correlation::OuterOnly => guards.push(conjunct),
                Correlation::Mixed => late.push(conjunct),
            }
        }
    }
    select.selection = conjunction(kept);
    let is_inner = |r: &Option<String>| r.as_ref().is_none_or(|q| inner.contains(q));
    if column_refs(&item_expr).is_some_and(|refs| refs.iter().any(|r| !is_inner(r))) {
        return outer_item_subquery(query, item_expr, &inner, limit_one, guards, late);
    }
    let order_by = take_order_by(&mut query, &item_expr)?;
    query.limit_clause = None;
    let value = call_ordered("first_value", vec![item_expr], order_by);
    let main = with_item(
        &query,
        if limit_one {
            value
        } else {
            at_most_one_row(value)
        },
    )?;
    for predicate in late {
        guards.push(read_inner_columns(predicate, &inner, &query)?);
    }
    let main = Expr::Subquery(Box::new(main));
    Some(match conjunction(guards) {
        None => main,
        Some(guard) => Expr::Case {
            case_token: AttachedToken::empty(),
            end_token: AttachedToken::empty(),
            operand: None,
            conditions: vec![CaseWhen {
                condition: guard,
                result: main,
            }],
            else_result: None,
        },
    })
}

/// A scalar subquery whose value reads outer columns (SQLAlchemy's
/// `(SELECT json_build_object('always', a.attidentity = 'a', 'start', s.seqstart, ...) FROM
/// pg_sequence s WHERE ...)`), which DataFusion cannot decorrelate: the value is computed
/// outside, each inner column read by its own `(SELECT first_value(column) ...)`, under a
/// guard that the subquery finds exactly one row (error 21000 past one, without `LIMIT 1`).
fn outer_item_subquery(
    mut query: Query,
    item: Expr,
    inner: &[String],
    limit_one: bool,
    mut guards: Vec<Expr>,
    late: Vec<Expr>,
) -> Option<Expr> {
    if query.order_by.is_some() {
        return None;
    }
    query.limit_clause = None;
    let value = read_inner_columns(item, inner, &query)?;
    let rows = if limit_one {
        count_star()
    } else {
        at_most_one_row(count_star())
    };
    guards.push(Expr::BinaryOp {
        left: Box::new(Expr::Subquery(Box::new(with_item(&query, rows)?))),
        op: BinaryOperator::Gt,
        right: Box::new(Expr::value(Value::Number("0".to_string(), false))),
    });
    for predicate in late {
        guards.push(read_inner_columns(predicate, inner, &query)?);
    }
    Some(Expr::Case {
        case_token: AttachedToken::empty(),
        end_token: AttachedToken::empty(),
        operand: None,
        conditions: vec![CaseWhen {
            condition: conjunction(guards)?,
            result: value,
        }],
        else_result: None,
    })
}

/// `CASE WHEN count(*) > 1 THEN <error 21000> ELSE value END`: a scalar subquery's value, or
/// PostgreSQL's error when it found more than one row.
fn at_most_one_row(value: Expr) -> Expr {
    Expr::Case {
        case_token: AttachedToken::empty(),
        end_token: AttachedToken::empty(),
        operand: None,
        conditions: vec![CaseWhen {
            condition: Expr::BinaryOp {
                left: Box::new(count_star()),
                op: BinaryOperator::Gt,
                right: Box::new(Expr::value(Value::Number("1".to_string(), false))),
            },
            result: call(MORE_THAN_ONE_ROW_FUNCTION, Vec::new()),
        }],
        else_result: Some(Box::new(value)),
    }
}

/// `query` with its single select item replaced.
fn with_item(query: &Query, item: Expr) -> Option<Query> {
    let mut query = query.clone();
    *single_item(plain_select(&mut query)?)? = item;
    Some(query)
}

/// How a conjunct of a subquery's `WHERE` relates to the outer query.
enum Correlation {
    /// Inner columns only (or none).
    Local,
    /// `inner_column = outer_expression`: DataFusion's join key.
    EquiJoin,
    /// Outer columns only.
    OuterOnly,
    /// Anything else that reads outer columns.
    Mixed,
}

/// The names the subquery's `FROM` brings into scope (aliases, else table names).
fn inner_relations(select: &Select) -> Vec<String> {
    fn name_of(factor: &TableFactor) -> Option<String> {
        let alias = match factor {
            TableFactor::Table { alias, name, .. } => {
                return Some(match alias {
                    Some(alias) => identifier_key(&alias.name),
                    None => match name.0.last() {
                        Some(ObjectNamePart::Identifier(i)) => identifier_key(i),
                        _ => return None,
                    },
                });
            }
            TableFactor::Derived { alias, .. }
            | TableFactor::UNNEST { alias, .. }
            | TableFactor::Function { alias, .. }
            | TableFactor::TableFunction { alias, .. } => alias,
            _ => return None,
        };
        alias.as_ref().map(|a| identifier_key(&a.name))
    }
    let mut names = Vec::new();
    for table in &select.from {
        names.extend(name_of(&table.relation));
        for join in &table.joins {
            names.extend(name_of(&join.relation));
        }
    }
    names
}

fn identifier_key(ident: &Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_lowercase()
    }
}

/// Column references of an expression outside its own subqueries: (qualifier or `None`).
fn column_refs(expr: &Expr) -> Option<Vec<Option<String>>> {
    struct Refs {
        depth: usize,
        found: Vec<Option<String>>,
        has_subquery: bool,
    }
    impl Visitor for Refs {
        type Break = ();
        fn pre_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.depth += 1;
            self.has_subquery = true;
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.depth = self.depth.saturating_sub(1);
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            if self.depth == 0 {
                match expr {
                    Expr::Identifier(_) => self.found.push(None),
                    Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
                        self.found
                            .push(Some(identifier_key(&parts[parts.len() - 2])));
                    }
                    _ => {}
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut refs = Refs {
        depth: 0,
        found: Vec::new(),
        has_subquery: false,
    };
    let _ = Visit::visit(expr, &mut refs);
    // Subqueries inside a conjunct may correlate in ways we do not track: keep it as it is.
    (!refs.has_subquery).then_some(refs.found)
}

fn correlation(conjunct: &Expr, inner: &[String]) -> Correlation {
    let is_inner = |r: &Option<String>| r.as_ref().is_none_or(|q| inner.contains(q));
    let Some(refs) = column_refs(conjunct) else {
        return Correlation::Local;
    };
    let has_outer = refs.iter().any(|r| !is_inner(r));
    let has_inner = refs.iter().any(is_inner);
    if !has_outer {
        return Correlation::Local;
    }
    if !has_inner {
        return Correlation::OuterOnly;
    }
    if let Expr::BinaryOp {
        left,
        op: BinaryOperator::Eq,
        right,
    } = conjunct
    {
        let side = |e: &Expr| column_refs(e).unwrap_or_default();
        let plain_inner_column = |e: &Expr| {
            matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_))
                && side(e).iter().all(is_inner)
        };
        let outer_only = |e: &Expr| {
            let refs = side(e);
            !refs.is_empty() && refs.iter().all(|r| !is_inner(r))
        };
        if (plain_inner_column(left) && outer_only(right))
            || (plain_inner_column(right) && outer_only(left))
        {
            return Correlation::EquiJoin;
        }
    }
    Correlation::Mixed
}

fn conjuncts(expr: Expr) -> Vec<Expr> {
    match expr {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            let mut out = conjuncts(*left);
            out.extend(conjuncts(*right));
            out
        }
        Expr::Nested(inner)
            if matches!(
                inner.as_ref(),
                Expr::BinaryOp {
                    op: BinaryOperator::And,
                    ..
                }
            ) =>
        {
            conjuncts(*inner)
        }
        other => vec![other],
    }
}

fn conjunction(exprs: Vec<Expr>) -> Option<Expr> {
    exprs.into_iter().reduce(|left, right| Expr::BinaryOp {
        left: Box::new(left),
        op: BinaryOperator::And,
        right: Box::new(right),
    })
}

/// A mixed conjunct with each inner column replaced by `(SELECT first_value(column) FROM ...)`
/// over the subquery without its outer-only and mixed conjuncts.
fn read_inner_columns(predicate: Expr, inner: &[String], base: &Query) -> Option<Expr> {
    struct Replace<'a> {
        inner: &'a [String],
        base: &'a Query,
        failed: bool,
    }
    impl VisitorMut for Replace<'_> {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            let qualifier = match expr {
                Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
                    Some(identifier_key(&parts[parts.len() - 2]))
                }
                Expr::Identifier(_) => None,
                _ => return ControlFlow::Continue(()),
            };
            if qualifier.as_ref().is_none_or(|q| self.inner.contains(q)) {
                match with_item(self.base, call("first_value", vec![expr.clone()])) {
                    Some(query) => *expr = Expr::Subquery(Box::new(query)),
                    None => self.failed = true,
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut predicate = predicate;
    let mut replace = Replace {
        inner,
        base,
        failed: false,
    };
    let _ = VisitMut::visit(&mut predicate, &mut replace);
    (!replace.failed).then_some(predicate)
}

/// `ARRAY(SELECT x FROM ... [ORDER BY o])` as `(SELECT array_agg(x ORDER BY o) FROM ...)`.
/// (PostgreSQL gives `{}` for no rows where `array_agg` gives NULL.)
fn array_subquery(query: &Query) -> Option<Expr> {
    let mut query = query.clone();
    if query.limit_clause.is_some() {
        return None;
    }
    let item = single_item(plain_select(&mut query)?)?.clone();
    if aggregates(&item) {
        return None;
    }
    if let Some(mapped) = array_map(&mut query, &item) {
        return Some(mapped);
    }
    let order_by = take_order_by(&mut query, &item)?;
    let aggregated = call_ordered("array_agg", vec![item], order_by);
    *single_item(plain_select(&mut query)?)? = aggregated;
    Some(Expr::Subquery(Box::new(query)))
}

/// `ARRAY(SELECT f(x) FROM unnest(a) x)` (nothing else in the query) maps `a` element by
/// element: `array_transform(a, x -> f(x))`, which needs no decorrelation when `a` is an outer
/// column (psql's `array(select 'toast.' || x from unnest(tc.reloptions) x)`).
fn array_map(query: &mut Query, item: &Expr) -> Option<Expr> {
    if query.order_by.is_some() {
        return None;
    }
    let select = plain_select(query)?;
    if select.selection.is_some() || select.from.len() != 1 || !select.from[0].joins.is_empty() {
        return None;
    }
    let TableFactor::UNNEST {
        alias: Some(alias),
        array_exprs,
        with_offset: false,
        with_ordinality: false,
        ..
    } = &select.from[0].relation
    else {
        return None;
    };
    let [array] = array_exprs.as_slice() else {
        return None;
    };
    let param = match alias.columns.as_slice() {
        [column] => column.name.clone(),
        [] => alias.name.clone(),
        _ => return None,
    };
    let mapped = if matches!(item, Expr::Identifier(i) if identifier_key(i) == identifier_key(&param))
    {
        array.clone()
    } else {
        call(
            "array_transform",
            vec![
                array.clone(),
                Expr::Lambda(ast::LambdaFunction {
                    params: ast::OneOrManyWithParens::One(ast::LambdaFunctionParameter {
                        name: param,
                        data_type: None,
                    }),
                    body: Box::new(item.clone()),
                    syntax: ast::LambdaSyntax::Arrow,
                }),
            ],
        )
    };
    Some(mapped)
}

fn count_star() -> Expr {
    Expr::Function(Function {
        name: ObjectName(vec![ObjectNamePart::Identifier(Ident::new("count"))]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: vec![FunctionArg::Unnamed(FunctionArgExpr::Wildcard)],
            clauses: Vec::new(),
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: Vec::new(),
    })
}

fn call_ordered(name: &str, args: Vec<Expr>, order_by: Vec<OrderByExpr>) -> Expr {
    let mut expr = call(name, args);
    if let Expr::Function(Function {
        args: FunctionArguments::List(list),
        ..
    }) = &mut expr
        && !order_by.is_empty()
    {
        list.clauses.push(FunctionArgumentClause::OrderBy(order_by));
    }
    expr
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
            && let Some(index) = name.strip_prefix('$').and_then(|n| n.parse::<usize>().ok())
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

/// PostgreSQL's resolution of untyped literals in comparisons: `indisprimary = 't'`,
/// `polroles = '{0}'`. A quoted literal has type `unknown` in PostgreSQL and takes the type of
/// the other operand; DataFusion gives it `text` and then finds no common type with `bool` or
/// arrays. Numbers, dates and timestamps already coerce from text in DataFusion, so only the
/// types it cannot compare with text are handled here, by the other operand's type.
#[derive(Debug, Default)]
pub struct PgLiteralPlanner;

impl ExprPlanner for PgLiteralPlanner {
    fn plan_binary_op(
        &self,
        expr: RawBinaryExpr,
        schema: &DFSchema,
    ) -> Result<PlannerResult<RawBinaryExpr>> {
        let RawBinaryExpr { op, left, right } = expr;
        let comparison = matches!(
            op,
            BinaryOperator::Eq
                | BinaryOperator::NotEq
                | BinaryOperator::Lt
                | BinaryOperator::LtEq
                | BinaryOperator::Gt
                | BinaryOperator::GtEq
        );
        if !comparison {
            return Ok(PlannerResult::Original(RawBinaryExpr { op, left, right }));
        }
        let (left, right) = match (untyped_text(&left), untyped_text(&right)) {
            (None, Some(text)) => {
                let typed = typed_literal(text, &left.get_type(schema)?)?;
                (left, typed.unwrap_or(right))
            }
            (Some(text), None) => {
                let typed = typed_literal(text, &right.get_type(schema)?)?;
                (typed.unwrap_or(left), right)
            }
            _ => (left, right),
        };
        Ok(PlannerResult::Original(RawBinaryExpr { op, left, right }))
    }
}

/// The text of a bare string literal (what PostgreSQL types `unknown`).
fn untyped_text(expr: &datafusion::logical_expr::Expr) -> Option<&str> {
    match expr {
        datafusion::logical_expr::Expr::Literal(ScalarValue::Utf8(Some(text)), None) => {
            Some(text.as_str())
        }
        _ => None,
    }
}

/// `text` read as a value of `target` with PostgreSQL's input syntax, for the types DataFusion
/// cannot compare with text; `None` to leave the literal alone.
fn typed_literal(text: &str, target: &DataType) -> Result<Option<datafusion::logical_expr::Expr>> {
    let value = match target {
        DataType::Boolean => ScalarValue::Boolean(Some(parse_bool(text)?)),
        DataType::List(field) => {
            let items = parse_array(text).ok_or_else(|| invalid_input("array", text))?;
            let values = items
                .into_iter()
                .map(|item| match item {
                    None => ScalarValue::try_from(field.data_type()),
                    Some(item) => ScalarValue::Utf8(Some(item)).cast_to(field.data_type()),
                })
                .collect::<Result<Vec<_>>>()?;
            ScalarValue::List(ScalarValue::new_list(
                &values,
                field.data_type(),
                field.is_nullable(),
            ))
        }
        _ => return Ok(None),
    };
    Ok(Some(datafusion::logical_expr::Expr::Literal(value, None)))
}

fn invalid_input(type_name: &str, text: &str) -> DataFusionError {
    DataFusionError::External(Box::new(crate::sql::error::QueryError::new(
        crate::sql::error::code::INVALID_TEXT_REPRESENTATION,
        format!("invalid input syntax for type {type_name}: \"{text}\""),
    )))
}

/// PostgreSQL's `boolin`: `t`, `true`, `yes`, `on`, `1` and their opposites, any case, any
/// unambiguous prefix.
fn parse_bool(text: &str) -> Result<bool> {
    let t = text.trim().to_lowercase();
    let matches = |word: &str, min: usize| t.len() >= min && word.starts_with(t.as_str());
    if matches("true", 1) || matches("yes", 1) || t == "on" || t == "1" {
        Ok(true)
    } else if matches("false", 1) || matches("no", 1) || matches("off", 2) || t == "0" {
        Ok(false)
    } else {
        Err(invalid_input("boolean", text))
    }
}

/// A one-dimensional PostgreSQL array literal (`{1,2}`, `{"a b",NULL}`, `{}`).
fn parse_array(text: &str) -> Option<Vec<Option<String>>> {
    let inner = text.trim().strip_prefix('{')?.strip_suffix('}')?;
    let mut items = Vec::new();
    if inner.trim().is_empty() {
        return Some(items);
    }
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut item = String::new();
        let mut quoted = false;
        if chars.peek() == Some(&'"') {
            quoted = true;
            chars.next();
            loop {
                match chars.next()? {
                    '\\' => item.push(chars.next()?),
                    '"' => break,
                    c => item.push(c),
                }
            }
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                if c == '{' || c == '"' {
                    return None;
                }
                if c == '\\' {
                    chars.next();
                    item.push(chars.next()?);
                    continue;
                }
                item.push(c);
                chars.next();
            }
            item = item.trim_end().to_string();
        }
        if !quoted && item.eq_ignore_ascii_case("null") {
            items.push(None);
        } else {
            items.push(Some(item));
        }
        match chars.next() {
            None => return Some(items),
            Some(',') => {}
            Some(_) => return None,
        }
    }
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
            // Power BI casts to character varying(n) and char(n) (n = 256 by default). The
            // value is served as is (PostgreSQL would cut it at n characters).
            D::CharacterVarying(Some(_)) | D::Varchar(Some(_)) => {
                with_pg_type(DataType::Utf8, "varchar")
            }
            D::Character(Some(_)) | D::Char(Some(_)) => with_pg_type(DataType::Utf8, "bpchar"),
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
                    "oid" | "xid" | "cid" | "regclass" | "regtype" | "regproc" | "regprocedure"
                    | "regnamespace" | "regrole" => with_pg_type(DataType::UInt32, name),
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
                    "json" | "jsonb" | "uuid" | "pg_node_tree" => {
                        with_pg_type(DataType::Utf8, name)
                    }
                    // money: a fixed-point amount with two decimals (served as numeric).
                    "money" => Arc::new(Field::new("", DataType::Decimal128(19, 2), true)),
                    other => match pgtype::by_name(other)
                        .and_then(|t| pgtype::arrow_type_of(t.oid).map(|a| (t, a)))
                    {
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
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::sql::classify::parse;

    fn rewritten(sql: &str) -> String {
        let mut statement = parse(sql).unwrap().remove(0);
        rewrite(&mut statement);
        statement.to_string()
    }

    #[test]
    fn like_escape_characters_become_backslashes() {
        assert_eq!(backslash_pattern("pg/_%", "/").unwrap(), "pg\\_%");
        assert_eq!(backslash_pattern("a\\b//", "/").unwrap(), "a\\\\b/");
        assert_eq!(backslash_pattern("a\\b", "").unwrap(), "a\\\\b");
        assert!(backslash_pattern("x", "ab").is_none());
        assert_eq!(
            rewritten("select 1 where 'pg_x' not like 'pg/_%' escape '/'"),
            "SELECT 1 WHERE 'pg_x' NOT LIKE 'pg\\_%'"
        );
    }

    #[test]
    fn rewrites() {
        assert_eq!(
            rewritten(
                "select 1 where n.nspname OPERATOR(pg_catalog.~) '^(x)$' COLLATE pg_catalog.default"
            ),
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
        assert_eq!(
            rewritten("select U&'O''Brien\\0009x'"),
            "SELECT 'O''Brien\tx'"
        );
    }

    #[test]
    fn scalar_subqueries_are_aggregated() {
        assert_eq!(
            rewritten("select (select x from t where t.a = o.a) from o"),
            "SELECT (SELECT CASE WHEN count(*) > 1 THEN __lh_more_than_one_row() ELSE first_value(x) END FROM t WHERE t.a = o.a) FROM o"
        );
        assert_eq!(
            rewritten("select (select x from t order by y desc limit 1) from o"),
            "SELECT (SELECT first_value(x ORDER BY y DESC) FROM t) FROM o"
        );
        // Already aggregated: left alone.
        assert_eq!(
            rewritten("select (select max(x) from t) from o"),
            "SELECT (SELECT max(x) FROM t) FROM o"
        );
        assert_eq!(
            rewritten(
                "select array(select rolname from r where oid = any(p.roles) order by 1) from p"
            ),
            "SELECT (SELECT array_agg(rolname ORDER BY rolname) FROM r WHERE oid = ANY(p.roles)) FROM p"
        );
        assert_eq!(
            rewritten(
                "select a || array(select 'toast.' || x from pg_catalog.unnest(t.o) x) from t"
            ),
            "SELECT a || array_transform(t.o, x -> 'toast.' || x) FROM t"
        );
        assert_eq!(
            rewritten("select x from unnest(a) x"),
            "SELECT x FROM UNNEST(a) x (x)"
        );
        assert_eq!(
            rewritten(
                "select s from generate_series(0, array_upper(p.a, 1)) s, generate_series(1, 3) t"
            ),
            "SELECT s FROM UNNEST(generate_series(0, array_upper(p.a, 1))) s (s), generate_series(1, 3) t"
        );
        assert_eq!(
            rewritten("select s from pg_catalog.generate_series(1, 2) s, pg_catalog.pg_class"),
            "SELECT s FROM generate_series(1, 2) s, pg_catalog.pg_class"
        );
    }

    #[test]
    fn correlations_leave_the_subquery() {
        assert_eq!(
            rewritten("select (select d.x from d where d.r = a.r and a.has) from a"),
            "SELECT CASE WHEN a.has THEN (SELECT CASE WHEN count(*) > 1 THEN __lh_more_than_one_row() ELSE first_value(d.x) END FROM d WHERE d.r = a.r) END FROM a"
        );
        assert_eq!(
            rewritten(
                "select (select c.n from c, t where c.oid = a.c and t.oid = a.t and a.c <> t.c) from a"
            ),
            "SELECT CASE WHEN a.c <> (SELECT first_value(t.c) FROM c, t WHERE c.oid = a.c AND t.oid = a.t) THEN (SELECT CASE WHEN count(*) > 1 THEN __lh_more_than_one_row() ELSE first_value(c.n) END FROM c, t WHERE c.oid = a.c AND t.oid = a.t) END FROM a"
        );
    }

    #[test]
    fn interval_fields() {
        assert_eq!(
            rewritten("select interval '1 02:03:04.5' day to second, interval '2' day"),
            "SELECT INTERVAL '1 days 02 hours 03 minutes 04.5 seconds', INTERVAL '2' DAY"
        );
    }

    #[test]
    fn untyped_literals() {
        assert_eq!(parse_array("{0}"), Some(vec![Some("0".to_string())]));
        assert_eq!(
            parse_array("{a, \"b c\",NULL,\"NULL\"}"),
            Some(vec![
                Some("a".into()),
                Some("b c".into()),
                None,
                Some("NULL".into())
            ])
        );
        assert_eq!(parse_array("{}"), Some(vec![]));
        assert_eq!(parse_array("0"), None);
        assert!(parse_bool("t").unwrap());
        assert!(!parse_bool("Off").unwrap());
        assert!(parse_bool("maybe").is_err());
    }

    #[test]
    fn declared_parameters_become_casts() {
        let mut statement = parse("select $1, $2").unwrap().remove(0);
        declare_parameter_types(&mut statement, &[pgtype::oid::INT8, 0]);
        assert_eq!(statement.to_string(), "SELECT CAST($1 AS BIGINT), $2");
    }
}
