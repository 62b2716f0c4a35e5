//! `regproc`: an `oid` that prints as a function name.
//!
//! `pg_type.typreceive` and its siblings are `regproc`. Npgsql joins them to `pg_proc.oid` as
//! numbers; the ADBC driver (polars, pandas) reads `typreceive` as text and maps types by the
//! receive function's name (`int4recv`), skipping `typreceive::TEXT = 'array_recv'`. So the
//! columns stay numbers, and both of PostgreSQL's text forms are names: the text output
//! (`sql`'s encoder calls [`name`]) and the cast to text ([`text_casts`]).

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::datatypes::{DataType, UInt32Type};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, Result, ScalarValue};
use datafusion::logical_expr::expr::{Cast, ScalarFunction};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, LogicalPlan, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility,
};

use crate::pg::types::{PG_TYPE_METADATA_KEY, builtin};

/// The text of a `regproc`: the function's name, `-` for none (0), the number when unknown.
pub fn name(oid: u32) -> std::borrow::Cow<'static, str> {
    if oid == 0 {
        return "-".into();
    }
    // PROCS is ordered by OID (generated so, as PostgreSQL lists them).
    match builtin::PROCS.binary_search_by_key(&oid, |p| p.oid) {
        Ok(idx) => builtin::PROCS[idx].name.into(),
        Err(_) => oid.to_string().into(),
    }
}

/// `regprocout`: a `regproc` column cast to text.
#[derive(Debug, PartialEq, Eq, Hash)]
struct RegprocOut {
    signature: Signature,
}

impl ScalarUDFImpl for RegprocOut {
    fn name(&self) -> &str {
        "regprocout"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let array = args.args[0].to_array(args.number_rows)?;
        let array: ArrayRef = datafusion::arrow::compute::cast(&array, &DataType::UInt32)?;
        let oids = array.as_primitive::<UInt32Type>();
        let mut out = StringBuilder::with_capacity(oids.len(), oids.len() * 8);
        for idx in 0..oids.len() {
            if oids.is_null(idx) {
                out.append_null();
            } else {
                out.append_value(name(oids.value(idx)));
            }
        }
        let out: ArrayRef = Arc::new(out.finish());
        if args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)))
        {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?));
        }
        Ok(ColumnarValue::Array(out))
    }
}

static REGPROC_OUT: LazyLock<Arc<ScalarUDF>> = LazyLock::new(|| {
    Arc::new(ScalarUDF::new_from_impl(RegprocOut {
        signature: Signature::exact(vec![DataType::UInt32], Volatility::Immutable),
    }))
});

/// Rewrites every cast of a `regproc` value to text into `regprocout(value)`.
pub fn text_casts(plan: LogicalPlan) -> Result<LogicalPlan> {
    plan.transform_up_with_subqueries(|node| {
        let inputs = node.inputs();
        if inputs.is_empty() {
            return Ok(Transformed::no(node));
        }
        let schema = datafusion::logical_expr::utils::merge_schema(&inputs);
        node.map_expressions(|expr| expr.transform_up(|e| rewrite(e, &schema)))
    })
    .map(|t| t.data)
}

fn rewrite(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let Expr::Cast(Cast { expr: inner, field }) = &expr else {
        return Ok(Transformed::no(expr));
    };
    if !matches!(
        field.data_type(),
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
    ) {
        return Ok(Transformed::no(expr));
    }
    let regproc = inner
        .to_field(schema)
        .map(|(_, f)| f.metadata().get(PG_TYPE_METADATA_KEY).map(String::as_str) == Some("regproc"))
        .unwrap_or(false);
    if !regproc {
        return Ok(Transformed::no(expr));
    }
    let call = Expr::ScalarFunction(ScalarFunction::new_udf(
        REGPROC_OUT.clone(),
        vec![inner.as_ref().clone()],
    ));
    Ok(Transformed::yes(Expr::Cast(Cast::new(
        Box::new(call),
        field.data_type().clone(),
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_postgresql_function_names() {
        assert_eq!(name(0), "-");
        let int4 = builtin::TYPES.iter().find(|t| t.name == "int4").unwrap();
        assert_eq!(name(int4.receive), "int4recv");
        assert_eq!(name(4_000_000_000), "4000000000");
    }
}
