//! How wide and how deep a statement may be, and the rewrites that keep wide statements shallow.
//!
//! Every pass over a syntax tree or a plan recurses: sqlparser's visitors, `Clone`, `Drop` and
//! `Display` of the syntax tree, DataFusion's planner, optimizer and physical expressions,
//! deltalake's predicate conversion. A chain such as `a OR b OR c ...` parses into a tree as
//! deep as it is long, so one statement of a few hundred kilobytes could overflow any stack and
//! take the whole process down. [`parse`] is the only way client text becomes a statement, and
//! before anything recursive sees it:
//!
//! 1. it counts the tokens of the text with a flat scan ([`MAX_TOKENS`]), before sqlparser
//!    allocates a token per word, and measures how deep function calls nest in each other's
//!    arguments ([`MAX_CALL_NESTING`]: sqlparser parses those in time exponential in depth);
//! 2. it parses with a recursion limit for nested constructs (parentheses, subqueries, function
//!    arguments: [`MAX_NESTING`]); a left-associative chain is parsed by a loop, not recursion;
//! 3. it takes associative chains apart without recursion and rebuilds them balanced: runs of
//!    `AND`, of `OR`, of one set operation (`UNION ALL` of many branches); equalities of one
//!    column with literals of one kind in an `OR` chain become one `IN` list, and inequalities in
//!    an `AND` chain one `NOT IN` list, which is what Power BI's slicers send and what
//!    DataFusion evaluates with one hash lookup;
//! 4. it refuses, with 54001 "statement too complex", what is still deeper than [`MAX_DEPTH`],
//!    an `OR` chain of more than [`MAX_CHAIN`] terms or an `AND` chain of more than
//!    [`MAX_CONJUNCTION`] that did not fold into a list, more than
//!    [`MAX_RELATIONS`] table references or more than [`MAX_SET_OPERATIONS`] set operations,
//!    or subqueries nested more than [`MAX_SUBQUERY_NESTING`] deep in expressions (DataFusion
//!    plans those in time exponential in depth);
//!    and, as PostgreSQL does (54011), a select list of more than [`MAX_TARGET_LIST`] entries.
//!
//! The limits are far below what the statement runtime's stacks hold
//! (`sql::exec::STATEMENT_STACK`), which is where parsing, planning and execution run.

use std::collections::HashMap;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, Query, Select, SetExpr, SetOperator, SetQuantifier, Statement,
    TableFactor, Value, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;

use super::error::{QueryError, code};

/// Tokens one query string may have (about 240,000 values in one `IN` list).
pub const MAX_TOKENS: usize = 500_000;
/// Nesting of parentheses, subqueries and function calls the parser follows.
pub const MAX_NESTING: usize = 200;
/// Function calls nested in each other's arguments: sqlparser parses each argument twice (as a
/// named argument first), so parsing takes time doubling with every level (20 levels: seconds).
pub const MAX_CALL_NESTING: usize = 16;
/// Subqueries nested in expressions (`(SELECT (SELECT ...))`): DataFusion's analyzer visits
/// each level twice, so planning takes time doubling with every level.
pub const MAX_SUBQUERY_NESTING: usize = 12;
/// Depth of expressions and queries after rebalancing.
pub const MAX_DEPTH: usize = 1_000;
/// Terms of one `OR` chain that did not fold into an `IN` list.
pub const MAX_CHAIN: usize = 10_000;
/// Terms of one `AND` chain that did not fold into a `NOT IN` list: DataFusion's optimizer
/// re-links a conjunction into a chain as deep as it is long, and its physical planning takes
/// time quadratic in that depth (2,000 terms: 20 s in a debug build).
pub const MAX_CONJUNCTION: usize = 1_000;
/// Table references in one statement.
pub const MAX_RELATIONS: usize = 1_000;
/// Entries of one select list: PostgreSQL's own limit (`MaxTupleAttributeNumber`), refused
/// with its error. (DataFusion's SQL planner de-duplicates select lists in quadratic time: a
/// list of twenty thousand entries would plan for minutes.)
pub const MAX_TARGET_LIST: usize = 1_664;
/// UNION, INTERSECT and EXCEPT operations in one statement (DataFusion's physical optimizer
/// takes time quadratic in the branches of one union).
pub const MAX_SET_OPERATIONS: usize = 2_000;
/// Chains shorter than this are left as written.
const REBALANCE_AT: usize = 16;

/// 54001, as PostgreSQL's "stack depth limit exceeded".
pub fn too_complex(detail: impl Into<String>) -> QueryError {
    QueryError::new(code::STATEMENT_TOO_COMPLEX, "statement too complex")
        .with_detail(detail)
        .with_hint("split the statement, or use an IN list instead of a chain of OR terms")
}

/// Parses a query string into statements (PostgreSQL dialect) that are safe for every
/// recursive pass: see the module documentation.
pub fn parse(sql: &str) -> Result<Vec<Statement>, QueryError> {
    let Scan {
        tokens,
        call_nesting,
    } = scan(sql);
    if tokens > MAX_TOKENS {
        return Err(too_complex(format!(
            "the statement has about {tokens} tokens; the limit is {MAX_TOKENS}"
        )));
    }
    if call_nesting > MAX_CALL_NESTING {
        return Err(too_complex(format!(
            "function calls are nested more than {MAX_CALL_NESTING} deep in each other's arguments"
        )));
    }
    let dialect = PostgreSqlDialect {};
    let statements = Parser::new(&dialect)
        .with_recursion_limit(MAX_NESTING)
        .try_with_sql(sql)
        .and_then(|mut p| parse_statements(&mut p))
        .map_err(|err| match err {
            ParserError::RecursionLimitExceeded => too_complex(format!(
                "it nests parentheses, subqueries or function calls more than {MAX_NESTING} deep"
            )),
            other => QueryError::syntax(
                other
                    .to_string()
                    .trim_start_matches("sql parser error: ")
                    .to_string(),
            ),
        })?;
    statements.into_iter().map(normalize).collect()
}

/// sqlparser's `parse_statements`, except that `COPY` is parsed by [`crate::pg::copy::parse`]
/// (sqlparser's COPY grammar lacks PostgreSQL's generic option list).
fn parse_statements(parser: &mut Parser) -> Result<Vec<Statement>, ParserError> {
    let mut statements = Vec::new();
    let mut expecting_delimiter = false;
    loop {
        while parser.consume_token(&Token::SemiColon) {
            expecting_delimiter = false;
        }
        match parser.peek_token().token {
            Token::EOF => break,
            Token::Word(word) if expecting_delimiter && word.keyword == Keyword::END => break,
            _ => {}
        }
        if expecting_delimiter {
            return parser.expected("end of statement", parser.peek_token());
        }
        let statement = if parser.parse_keyword(Keyword::COPY) {
            crate::pg::copy::parse(parser)?
        } else {
            parser.parse_statement()?
        };
        statements.push(statement);
        expecting_delimiter = true;
    }
    Ok(statements)
}

/// The statements of a query string with the text each is prepared and audited under: the
/// string as sent when it holds one statement (the client's spelling), else each statement's
/// own SQL.
pub fn with_texts(sql: &str, statements: Vec<Statement>) -> Vec<(String, Statement)> {
    let single = statements.len() == 1;
    statements
        .into_iter()
        .map(|statement| {
            let text = if single {
                sql.to_string()
            } else {
                statement.to_string()
            };
            (text, statement)
        })
        .collect()
}

/// Rebalances and checks one freshly parsed statement.
pub fn normalize(mut statement: Statement) -> Result<Statement, QueryError> {
    let mut shaper = Shaper::default();
    if VisitMut::visit(&mut statement, &mut shaper).is_break() {
        let err = shaper
            .error
            .take()
            .unwrap_or_else(|| too_complex("the statement is too deep"));
        // The unvisited rest may still hold a chain as long as the text allows; it is dropped
        // here, on the statement runtime's stack, which is sized for `MAX_TOKENS`.
        drop(statement);
        return Err(err);
    }
    Ok(statement)
}

/// What a flat scan of a query string finds before it is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan {
    /// Tokens: words and numbers are one token, quoted strings, quoted identifiers and
    /// dollar-quoted strings one token, comments none, any other character one token (so `<=`
    /// counts two: an over-estimate is fine for a limit).
    pub tokens: usize,
    /// How deep function calls nest in each other's arguments: the deepest run of `(`
    /// that each follow a word other than a keyword of special syntax (`IN (`, `EXISTS (`,
    /// `CAST (` ...).
    pub call_nesting: usize,
}

/// Words before `(` that do not start a function's argument list.
const NOT_CALLS: &[&str] = &[
    "all",
    "and",
    "any",
    "array",
    "as",
    "between",
    "by",
    "case",
    "cast",
    "else",
    "except",
    "exists",
    "extract",
    "filter",
    "from",
    "having",
    "ilike",
    "in",
    "intersect",
    "interval",
    "is",
    "join",
    "lateral",
    "like",
    "not",
    "on",
    "or",
    "over",
    "overlay",
    "position",
    "row",
    "select",
    "similar",
    "some",
    "substring",
    "then",
    "trim",
    "try_cast",
    "union",
    "using",
    "values",
    "when",
    "where",
    "with",
    "within",
];

/// Scans a query string without parsing it.
pub fn scan(sql: &str) -> Scan {
    let bytes = sql.as_bytes();
    let mut i = 0;
    let mut count = 0;
    // For each open parenthesis: whether it opened a function's arguments.
    let mut open: Vec<bool> = Vec::new();
    let mut calls = 0usize;
    let mut call_nesting = 0usize;
    // The word just before the current position, if the last token was one.
    let mut last_word: Option<(usize, usize)> = None;
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' => {
                i += 1;
                continue;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let mut depth = 0usize;
                while i < bytes.len() {
                    if bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'*') {
                        depth += 1;
                        i += 2;
                    } else if bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                continue;
            }
            _ => {}
        }
        count += 1;
        let word = last_word.take();
        match b {
            b'\'' | b'"' => {
                // E'...' strings escape with a backslash; the E was counted as a word.
                let escapes = b == b'\''
                    && i > 0
                    && matches!(bytes[i - 1], b'e' | b'E')
                    && (i < 2 || !is_word(bytes[i - 2]));
                i += 1;
                while i < bytes.len() {
                    if escapes && bytes[i] == b'\\' {
                        i += 2;
                    } else if bytes[i] == b {
                        i += 1;
                        if bytes.get(i) == Some(&b) {
                            i += 1;
                        } else {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                // A quoted identifier can name a function too.
                if b == b'"' {
                    last_word = Some((0, 0));
                }
            }
            b'$' => {
                // `$tag$ ... $tag$`, or a parameter `$1`.
                let start = i;
                let mut j = i + 1;
                while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_') {
                    j += 1;
                }
                let tag_is_name = bytes.get(i + 1).is_none_or(|c| !c.is_ascii_digit());
                if bytes.get(j) == Some(&b'$') && tag_is_name {
                    let tag = &bytes[start..=j];
                    i = j + 1;
                    match find(&bytes[i..], tag) {
                        Some(end) => i += end + tag.len(),
                        None => i = bytes.len(),
                    }
                } else {
                    i = j;
                }
            }
            b'(' => {
                let call = word.is_some_and(|(start, end)| {
                    let text = &sql[start..end];
                    !NOT_CALLS.iter().any(|k| k.eq_ignore_ascii_case(text))
                });
                if call {
                    calls += 1;
                    call_nesting = call_nesting.max(calls);
                }
                open.push(call);
                i += 1;
            }
            b')' => {
                if open.pop() == Some(true) {
                    calls -= 1;
                }
                i += 1;
            }
            b if is_word(b) => {
                let start = i;
                while i < bytes.len() && is_word(bytes[i]) {
                    i += 1;
                }
                // A number is not a function name.
                if !b.is_ascii_digit() {
                    last_word = Some((start, i));
                }
            }
            _ => i += 1,
        }
    }
    Scan {
        tokens: count,
        call_nesting,
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[derive(Default)]
struct Shaper {
    depth: usize,
    subqueries: usize,
    relations: usize,
    set_operations: usize,
    error: Option<QueryError>,
}

impl Shaper {
    fn enter(&mut self) -> ControlFlow<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            self.error = Some(too_complex(format!(
                "expressions or subqueries are nested more than {MAX_DEPTH} deep"
            )));
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    fn fail(&mut self, err: QueryError) -> ControlFlow<()> {
        self.error = Some(err);
        ControlFlow::Break(())
    }
}

impl VisitorMut for Shaper {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        self.enter()?;
        if is_subquery(expr) {
            self.subqueries += 1;
            if self.subqueries > MAX_SUBQUERY_NESTING {
                return self.fail(too_complex(format!(
                    "subqueries are nested more than {MAX_SUBQUERY_NESTING} deep in expressions"
                )));
            }
        }
        // Before the visitor descends: what it then sees is balanced.
        if let Err(err) = rebalance_logical(expr) {
            return self.fail(err);
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        self.depth -= 1;
        if is_subquery(expr) {
            self.subqueries -= 1;
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        self.enter()?;
        match rebalance_set_operations(&mut query.body) {
            Ok(branches) => {
                self.set_operations += branches;
                if self.set_operations > MAX_SET_OPERATIONS {
                    return self.fail(too_complex(format!(
                        "the statement has more than {MAX_SET_OPERATIONS} UNION, INTERSECT or EXCEPT operations"
                    )));
                }
            }
            Err(err) => return self.fail(err),
        }
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &mut Query) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
        if select.projection.len() > MAX_TARGET_LIST {
            return self.fail(QueryError::new(
                code::TOO_MANY_COLUMNS,
                format!("target lists can have at most {MAX_TARGET_LIST} entries"),
            ));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, _factor: &mut TableFactor) -> ControlFlow<()> {
        self.relations += 1;
        if self.relations > MAX_RELATIONS {
            return self.fail(too_complex(format!(
                "the statement references more than {MAX_RELATIONS} tables"
            )));
        }
        ControlFlow::Continue(())
    }
}

fn is_subquery(expr: &Expr) -> bool {
    matches!(
        expr,
        Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. }
    )
}

/// A placeholder for a node being taken apart (never left in a tree).
fn placeholder() -> Expr {
    Expr::Value(Value::Null.into())
}

/// Rebalances a left-deep run of `AND` or of `OR` rooted at `expr`, folding comparisons into
/// lists on the way.
fn rebalance_logical(expr: &mut Expr) -> Result<(), QueryError> {
    let op = match expr {
        Expr::BinaryOp {
            op: op @ (BinaryOperator::And | BinaryOperator::Or),
            ..
        } => op.clone(),
        _ => return Ok(()),
    };
    // The run along the left spine; a balanced tree's spine is short, so a visited subtree is
    // not taken apart again.
    let mut run = 0;
    let mut node = &*expr;
    while let Expr::BinaryOp { left, op: o, .. } = node
        && *o == op
    {
        run += 1;
        node = left;
    }
    if run < REBALANCE_AT {
        return Ok(());
    }
    // Take the chain apart without recursion: each node's box is freed as its left operand
    // is moved out.
    let mut terms = Vec::with_capacity(run + 1);
    let mut node = std::mem::replace(expr, placeholder());
    loop {
        match node {
            Expr::BinaryOp { left, op: o, right } if o == op => {
                terms.push(*right);
                node = *left;
            }
            other => {
                terms.push(other);
                break;
            }
        }
    }
    terms.reverse();
    let terms = fold_into_lists(terms, &op);
    let limit = match op {
        BinaryOperator::And => MAX_CONJUNCTION,
        _ => MAX_CHAIN,
    };
    if terms.len() > limit {
        let n = terms.len();
        // Put the terms back so that the statement drops like any other.
        *expr = balanced(terms, |l, r| binary(l, op.clone(), r));
        return Err(too_complex(format!(
            "a chain of {n} {op} terms; the limit is {limit} (comparisons of one column \
             with constants fold into an IN list and do not count)"
        )));
    }
    *expr = balanced(terms, |l, r| binary(l, op.clone(), r));
    Ok(())
}

fn binary(left: Expr, op: BinaryOperator, right: Expr) -> Expr {
    Expr::BinaryOp {
        left: Box::new(left),
        op,
        right: Box::new(right),
    }
}

/// Builds a balanced tree over `items`, keeping their order.
fn balanced<T>(mut items: Vec<T>, combine: impl Fn(T, T) -> T) -> T
where
    T: Placeholder,
{
    while items.len() > 1 {
        let mut next = Vec::with_capacity(items.len().div_ceil(2));
        let mut iter = items.into_iter();
        while let Some(left) = iter.next() {
            match iter.next() {
                Some(right) => next.push(combine(left, right)),
                None => next.push(left),
            }
        }
        items = next;
    }
    items.pop().unwrap_or_else(T::placeholder)
}

trait Placeholder {
    fn placeholder() -> Self;
}

impl Placeholder for Expr {
    fn placeholder() -> Self {
        placeholder()
    }
}

impl Placeholder for SetExpr {
    fn placeholder() -> Self {
        SetExpr::Values(datafusion::sql::sqlparser::ast::Values {
            explicit_row: false,
            value_keyword: false,
            rows: Vec::new(),
        })
    }
}

/// In an `OR` chain, `c = k1 OR c = k2 ...` becomes `c IN (k1, k2, ...)`; in an `AND` chain,
/// `c <> k1 AND c <> k2 ...` becomes `c NOT IN (k1, k2, ...)`. Both are the same predicate,
/// NULLs included. Only a plain column compared with literals of one kind folds (a number and
/// a string in one list would be coerced together, unlike separate comparisons). The list
/// takes the place of the first comparison it absorbed.
fn fold_into_lists(terms: Vec<Expr>, op: &BinaryOperator) -> Vec<Expr> {
    let (comparison, negated) = match op {
        BinaryOperator::Or => (BinaryOperator::Eq, false),
        _ => (BinaryOperator::NotEq, true),
    };
    let mut out: Vec<Expr> = Vec::with_capacity(terms.len());
    // (column, literal kind) -> index in `out` of its list.
    let mut lists: HashMap<(Expr, std::mem::Discriminant<Value>), usize> = HashMap::new();
    for term in terms {
        let Some((column, value)) = column_literal(&term, &comparison) else {
            out.push(term);
            continue;
        };
        let key = (column.clone(), std::mem::discriminant(&value.value));
        match lists.get(&key) {
            Some(&idx) => {
                if let Expr::InList { list, .. } = &mut out[idx] {
                    list.push(Expr::Value(value.clone()));
                }
            }
            None => {
                lists.insert(key, out.len());
                out.push(Expr::InList {
                    expr: Box::new(column.clone()),
                    list: vec![Expr::Value(value.clone())],
                    negated,
                });
            }
        }
    }
    out.into_iter().map(unfold_single).collect()
}

/// A one-element list goes back to the comparison it came from.
fn unfold_single(expr: Expr) -> Expr {
    match expr {
        Expr::InList {
            expr,
            mut list,
            negated,
        } if list.len() == 1 => {
            let value = list.pop().unwrap_or_else(placeholder);
            binary(
                *expr,
                if negated {
                    BinaryOperator::NotEq
                } else {
                    BinaryOperator::Eq
                },
                value,
            )
        }
        other => other,
    }
}

/// `column op literal` or `literal op column`, for a plain (possibly qualified) column.
fn column_literal<'a>(
    term: &'a Expr,
    comparison: &BinaryOperator,
) -> Option<(&'a Expr, &'a datafusion::sql::sqlparser::ast::ValueWithSpan)> {
    let Expr::BinaryOp { left, op, right } = term else {
        return None;
    };
    if op != comparison {
        return None;
    }
    let is_column = |e: &Expr| matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_));
    match (left.as_ref(), right.as_ref()) {
        (column, Expr::Value(value)) if is_column(column) => Some((column, value)),
        (Expr::Value(value), column) if is_column(column) => Some((column, value)),
        _ => None,
    }
}

/// Rebalances runs of one associative set operation along the left spine of a query body
/// (`UNION ALL`, `UNION`, `INTERSECT`, `INTERSECT ALL`; never `EXCEPT`), and refuses a spine
/// that stays deeper than [`MAX_DEPTH`]. Returns the number of set operations on the spine.
fn rebalance_set_operations(body: &mut SetExpr) -> Result<usize, QueryError> {
    let mut spine = 0;
    let mut node = &*body;
    while let SetExpr::SetOperation { left, .. } = node {
        spine += 1;
        node = left;
    }
    if spine < REBALANCE_AT {
        return Ok(spine);
    }
    // Take the spine apart: the leftmost operand, then (operator, quantifier, right) in order.
    let mut steps = Vec::with_capacity(spine);
    let mut node = std::mem::replace(body, SetExpr::placeholder());
    let leftmost = loop {
        match node {
            SetExpr::SetOperation {
                left,
                op,
                set_quantifier,
                right,
            } => {
                steps.push((op, set_quantifier, *right));
                node = *left;
            }
            other => break other,
        }
    };
    steps.reverse();
    let mut acc = leftmost;
    let mut steps = steps.into_iter().peekable();
    let mut depth = 0usize;
    while let Some((op, quantifier, right)) = steps.next() {
        let mut run = vec![acc, right];
        if associative(&op, &quantifier) {
            while let Some((next_op, next_q, _)) = steps.peek() {
                if *next_op != op || *next_q != quantifier {
                    break;
                }
                if let Some((_, _, r)) = steps.next() {
                    run.push(r);
                }
            }
        }
        depth += (usize::BITS - run.len().leading_zeros()) as usize;
        acc = balanced(run, |l, r| SetExpr::SetOperation {
            left: Box::new(l),
            op,
            set_quantifier: quantifier,
            right: Box::new(r),
        });
    }
    *body = acc;
    if depth > MAX_DEPTH {
        return Err(too_complex(format!(
            "set operations are chained more than {MAX_DEPTH} deep"
        )));
    }
    Ok(spine)
}

fn associative(op: &SetOperator, quantifier: &SetQuantifier) -> bool {
    matches!(op, SetOperator::Union | SetOperator::Intersect)
        && matches!(
            quantifier,
            SetQuantifier::All | SetQuantifier::Distinct | SetQuantifier::None
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth_of(expr: &Expr) -> usize {
        match expr {
            Expr::BinaryOp { left, right, .. } => 1 + depth_of(left).max(depth_of(right)),
            _ => 1,
        }
    }

    fn where_clause(statement: &Statement) -> &Expr {
        let Statement::Query(query) = statement else {
            panic!("not a query")
        };
        let SetExpr::Select(select) = query.body.as_ref() else {
            panic!("not a select")
        };
        select.selection.as_ref().expect("a WHERE clause")
    }

    #[test]
    fn or_chains_of_one_column_become_in_lists() {
        let terms: Vec<String> = (0..1000).map(|i| format!("x = {i}")).collect();
        let sql = format!("select * from t where {}", terms.join(" or "));
        let statement = parse(&sql).unwrap().remove(0);
        let Expr::InList { list, negated, .. } = where_clause(&statement) else {
            panic!("expected an IN list, got {}", where_clause(&statement))
        };
        assert_eq!(list.len(), 1000);
        assert!(!negated);
        // A string among numbers stays a comparison of its own.
        let sql = format!("select * from t where {} or x = 'a'", terms.join(" or "));
        let statement = parse(&sql).unwrap().remove(0);
        let text = where_clause(&statement).to_string();
        assert!(text.ends_with("OR x = 'a'"), "{text}");
    }

    #[test]
    fn and_chains_of_inequalities_become_not_in() {
        let terms: Vec<String> = (0..100).map(|i| format!("t.x <> '{i}'")).collect();
        let sql = format!("select * from t where y > 1 and {}", terms.join(" and "));
        let statement = parse(&sql).unwrap().remove(0);
        assert_eq!(
            where_clause(&statement).to_string(),
            format!(
                "y > 1 AND t.x NOT IN ({})",
                (0..100)
                    .map(|i| format!("'{i}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        );
    }

    #[test]
    fn other_chains_are_balanced_in_order() {
        let terms: Vec<String> = (0..5000).map(|i| format!("f(x{i})")).collect();
        let sql = format!("select * from t where {}", terms.join(" or "));
        let statement = parse(&sql).unwrap().remove(0);
        let selection = where_clause(&statement);
        assert!(depth_of(selection) <= 14, "{}", depth_of(selection));
        // Same terms, same order.
        assert_eq!(selection.to_string(), terms.join(" OR "));
    }

    #[test]
    fn too_long_chains_and_deep_nesting_are_refused_with_54001() {
        let terms: Vec<String> = (0..MAX_CHAIN + 1).map(|i| format!("f(x{i})")).collect();
        let err = parse(&format!("select 1 where {}", terms.join(" or "))).unwrap_err();
        assert_eq!(err.code, code::STATEMENT_TOO_COMPLEX);
        let err = parse(&format!(
            "select 1 where {}",
            terms[..MAX_CONJUNCTION + 1].join(" and ")
        ))
        .unwrap_err();
        assert_eq!(err.code, code::STATEMENT_TOO_COMPLEX);
        parse(&format!(
            "select 1 where {}",
            terms[..MAX_CONJUNCTION].join(" and ")
        ))
        .unwrap();

        let sql = format!("select {}", vec!["1"; MAX_DEPTH + 10].join(" + "));
        let err = parse(&sql).unwrap_err();
        assert_eq!(err.code, code::STATEMENT_TOO_COMPLEX, "{err}");
        let sql = format!("select {}", vec!["1"; MAX_DEPTH - 10].join(" + "));
        parse(&sql).unwrap();

        let sql = format!("select {}1{}", "(".repeat(300), ")".repeat(300));
        let err = parse(&sql).unwrap_err();
        assert_eq!(err.code, code::STATEMENT_TOO_COMPLEX, "{err}");
    }

    #[test]
    fn wide_select_lists_are_refused_like_postgres() {
        let columns = vec!["1"; MAX_TARGET_LIST + 1].join(", ");
        let err = parse(&format!("select {columns}")).unwrap_err();
        assert_eq!(err.code, code::TOO_MANY_COLUMNS);
        assert_eq!(err.message, "target lists can have at most 1664 entries");
        let columns = vec!["1"; MAX_TARGET_LIST].join(", ");
        parse(&format!("select {columns}")).unwrap();
    }

    #[test]
    fn union_all_of_many_branches_is_balanced() {
        let branches: Vec<String> = (0..=MAX_SET_OPERATIONS)
            .map(|i| format!("select {i}"))
            .collect();
        let statement = parse(&branches.join(" union all ")).unwrap().remove(0);
        assert_eq!(
            statement.to_string(),
            branches.join(" UNION ALL ").replace("select", "SELECT")
        );
        let err = parse(&format!(
            "{} union all select 0",
            branches.join(" union all ")
        ))
        .unwrap_err();
        assert_eq!(err.code, code::STATEMENT_TOO_COMPLEX);
        // EXCEPT is not associative: kept as written, refused when too deep.
        let branches: Vec<String> = (0..MAX_DEPTH + 5).map(|i| format!("select {i}")).collect();
        let err = parse(&branches.join(" except ")).unwrap_err();
        assert_eq!(err.code, code::STATEMENT_TOO_COMPLEX);
    }

    fn scan_tokens(sql: &str) -> usize {
        scan(sql).tokens
    }

    #[test]
    fn nested_calls_and_subqueries_are_bounded() {
        let calls = |n: usize| format!("select {}1{}", "abs(".repeat(n), ")".repeat(n));
        assert_eq!(scan(&calls(7)).call_nesting, 7);
        parse(&calls(MAX_CALL_NESTING)).unwrap();
        let err = parse(&calls(MAX_CALL_NESTING + 1)).unwrap_err();
        assert_eq!(err.code, code::STATEMENT_TOO_COMPLEX);
        // Parentheses of special syntax, strings and comments do not count.
        let sql = "select f(x) from t where a in (select g(\"h(\" ) from u where exists (select 1)) -- k(l(m(";
        assert_eq!(scan(sql).call_nesting, 1);
        assert_eq!(scan("select cast(f(g('x(')) as int)").call_nesting, 2);
        let subqueries = |n: usize| {
            let mut sql = "select 1".to_string();
            for _ in 0..n {
                sql = format!("select ({sql})");
            }
            sql
        };
        parse(&subqueries(MAX_SUBQUERY_NESTING)).unwrap();
        let err = parse(&subqueries(MAX_SUBQUERY_NESTING + 1)).unwrap_err();
        assert_eq!(err.code, code::STATEMENT_TOO_COMPLEX);
    }

    #[test]
    fn token_count_skips_strings_and_comments() {
        let long = "x".repeat(MAX_TOKENS + 10);
        assert_eq!(scan_tokens(&format!("select '{long}'")), 2);
        assert_eq!(scan_tokens(&format!("select $a${long}$a$ -- {long}")), 2);
        assert_eq!(scan_tokens(&format!("select /* {long} /* */ */ 1")), 2);
        assert_eq!(scan_tokens(&format!("select \"{long}\", E'\\'{long}'")), 5);
        let many = "1,".repeat(MAX_TOKENS);
        assert!(scan_tokens(&many) >= MAX_TOKENS * 2);
        assert_eq!(
            parse(&format!("select {many}1")).unwrap_err().code,
            code::STATEMENT_TOO_COMPLEX
        );
    }
}
