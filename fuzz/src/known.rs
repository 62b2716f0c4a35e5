//! Findings of the fuzzers that are now bounded in lakehouse, and how far the generator goes
//! past those bounds (so every run checks the refusals stay fast).
//!
//! 1. Nested function calls parse in time exponential in their depth: sqlparser 0.62's
//!    `Parser::parse_function_args` with `PostgreSqlDialect` (whose
//!    `supports_named_fn_args_with_expr_name` is true) first tries to parse each argument as
//!    `expr => value` with `maybe_parse`, which parses the whole nested argument, fails on the
//!    missing `=>`, and parses it again: 2^depth (22 calls: 7 s). `shape::scan` now refuses
//!    more than `MAX_CALL_NESTING` (16) levels before parsing (54001).
//! 2. Nested scalar subqueries plan in time exponential in their depth (DataFusion's
//!    `assert_valid_extension_nodes` via `LogicalPlan::apply_with_subqueries`): 20 levels take
//!    15 s. `shape` now refuses more than `MAX_SUBQUERY_NESTING` (12) levels (54001).
//!
//! Both ran synchronously on a statement-runtime thread without an await point, so neither
//! `statement_timeout` nor a CancelRequest stopped them. `fuzz/regressions/statements/known-*`
//! are the inputs that found them.

/// Deepest tower of function calls the generator writes (past the limit of 16).
pub fn call_tower_cap() -> usize {
    40
}

/// Deepest tower of scalar subqueries the generator writes (past the limit of 12).
pub fn subquery_tower_cap() -> i64 {
    30
}

/// Deepest parenthesis nesting of a raw-SQL input that is run.
pub fn raw_nesting_cap() -> usize {
    usize::MAX
}

/// The deepest parenthesis nesting of a text (quotes not considered: an over-estimate).
pub fn nesting(sql: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    for b in sql.bytes() {
        match b {
            b'(' => {
                depth += 1;
                max = max.max(depth);
            }
            b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}
