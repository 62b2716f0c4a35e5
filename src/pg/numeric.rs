//! PostgreSQL's `numeric` result scales where DataFusion's differ.
//!
//! DataFusion gives `avg` of a `decimal(p, s)` the type `decimal(p + 4, s + 4)` and truncates
//! (Spark's rule): TPC-H q01's `avg(l_quantity)` over `numeric(15,2)` reads `25.522005`.
//! PostgreSQL divides to at least 16 significant fractional digits and rounds:
//! `25.5220058532573370`. [`average_scales`] rewrites each `avg` of a decimal, right after the
//! SQL planner and before type coercion, to average at one more digit than PostgreSQL shows
//! and round to `max(16, s)` fractional digits (truncating one digit past the target, then
//! rounding half away from zero, rounds exactly as dividing to the target would).
//!
//! PostgreSQL's scale also shrinks as the average's magnitude grows (12 digits from 10,000
//! up); a column has one scale here, so averages of 10,000 and more show four zeros more
//! than PostgreSQL prints. The values are equal.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, Result};
use datafusion::logical_expr::expr::{AggregateFunction, Alias};
use datafusion::logical_expr::{Aggregate, Expr, ExprSchemable, LogicalPlan, Projection, cast};

/// The fractional digits PostgreSQL gives a quotient of magnitude 1 to 9,999.
const MIN_SCALE: i8 = 16;
/// Decimal128's largest precision.
const MAX_PRECISION: u8 = 38;

/// Rewrites every `avg(decimal)` of `plan` (subqueries included) to PostgreSQL's scale.
pub fn average_scales(plan: LogicalPlan) -> Result<LogicalPlan> {
    let rewritten = plan.transform_up_with_subqueries(|node| match node {
        LogicalPlan::Aggregate(aggregate) => rewrite_aggregate(aggregate),
        other => Ok(Transformed::no(other)),
    })?;
    if !rewritten.transformed {
        return Ok(rewritten.data);
    }
    // The averages' types changed under their names: every node above them recomputes its
    // schema (type coercion has not run yet, so no cast was fixed to the old types).
    rewritten
        .data
        .transform_up_with_subqueries(|node| node.recompute_schema().map(Transformed::yes))
        .map(|t| t.data)
}

/// The `(scale averaged at, scale shown)` of the average of a `decimal(_, scale)`.
fn scales(scale: i8) -> Option<(i8, i8)> {
    if scale < 0 {
        return None;
    }
    let shown = scale.max(MIN_SCALE);
    let averaged = scale.max(shown - 3);
    // DataFusion averages at `averaged + 4` digits.
    (averaged + 4 <= MAX_PRECISION as i8).then_some((averaged, shown))
}

fn rewrite_aggregate(aggregate: Aggregate) -> Result<Transformed<LogicalPlan>> {
    let input_schema = aggregate.input.schema().clone();
    let mut shown = Vec::with_capacity(aggregate.aggr_expr.len());
    let mut aggr_expr = Vec::with_capacity(aggregate.aggr_expr.len());
    let mut changed = false;
    for expr in &aggregate.aggr_expr {
        let (inner, name) = match expr {
            Expr::Alias(Alias { expr, name, .. }) => (expr.as_ref(), name.clone()),
            other => (other, other.schema_name().to_string()),
        };
        // `avg(decimal)`, not DISTINCT: the function, its parameters and the two scales.
        let rewrite = match inner {
            Expr::AggregateFunction(AggregateFunction { func, params })
                if func.name() == "avg" && !params.distinct && params.args.len() == 1 =>
            {
                match params.args[0].get_type(&input_schema) {
                    Ok(DataType::Decimal128(_, scale)) => {
                        scales(scale).map(|scales| (func, params, scales))
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        let Some((func, params, (averaged, target))) = rewrite else {
            aggr_expr.push(expr.clone());
            shown.push(None);
            continue;
        };
        let mut params = params.clone();
        params.args[0] = cast(
            params.args[0].clone(),
            DataType::Decimal128(MAX_PRECISION, averaged),
        );
        aggr_expr.push(
            Expr::AggregateFunction(AggregateFunction {
                func: func.clone(),
                params,
            })
            .alias(name),
        );
        shown.push(Some(target));
        changed = true;
    }
    if !changed {
        return Ok(Transformed::no(LogicalPlan::Aggregate(aggregate)));
    }
    let n_groups = aggregate.schema.fields().len() - aggregate.aggr_expr.len();
    let rewritten = Aggregate::try_new(aggregate.input, aggregate.group_expr, aggr_expr)?;
    let columns = rewritten
        .schema
        .iter()
        .enumerate()
        .map(|(idx, (qualifier, field))| {
            let column = Expr::Column(Column::new(qualifier.cloned(), field.name()));
            match idx.checked_sub(n_groups).and_then(|a| shown[a]) {
                Some(scale) => cast(column, DataType::Decimal128(MAX_PRECISION, scale))
                    .alias_qualified(qualifier.cloned(), field.name()),
                None => column,
            }
        })
        .collect();
    let projection = Projection::try_new(
        columns,
        std::sync::Arc::new(LogicalPlan::Aggregate(rewritten)),
    )?;
    Ok(Transformed::yes(LogicalPlan::Projection(projection)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_follow_postgresql() {
        assert_eq!(scales(2), Some((13, 16)));
        assert_eq!(scales(0), Some((13, 16)));
        assert_eq!(scales(20), Some((20, 20)));
        assert_eq!(scales(36), None);
        assert_eq!(scales(-2), None);
    }
}
