//! PostgreSQL's array set-returning functions that catalog queries use, as DataFusion list
//! functions under `unnest` (`pg::syntax` rewrites the calls):
//! `information_schema._pg_expandarray(a)` (pgJDBC's primary and foreign keys) is
//! `unnest(__lh_pg_expandarray(a))`, a list of `(x, n)` records.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, GenericListArray, Int32Builder, OffsetSizeTrait, StructArray,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// The function `_pg_expandarray` becomes (under `unnest`).
pub const EXPANDARRAY_FUNCTION: &str = "__lh_pg_expandarray";

#[derive(Debug, PartialEq, Eq, Hash)]
struct ExpandArray {
    signature: Signature,
}

fn element_type(list: &DataType) -> Option<&DataType> {
    match list {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            Some(f.data_type())
        }
        _ => None,
    }
}

fn record_fields(element: &DataType) -> Fields {
    Fields::from(vec![
        Field::new("x", element.clone(), true),
        Field::new("n", DataType::Int32, false),
    ])
}

impl ScalarUDFImpl for ExpandArray {
    fn name(&self) -> &str {
        EXPANDARRAY_FUNCTION
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        let Some(element) = args.first().and_then(element_type) else {
            return exec_err!("_pg_expandarray expects an array");
        };
        Ok(DataType::new_list(
            DataType::Struct(record_fields(element)),
            true,
        ))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let array = args.args[0].to_array(args.number_rows)?;
        let array = match array.data_type() {
            DataType::FixedSizeList(f, _) => {
                datafusion::arrow::compute::cast(&array, &DataType::List(f.clone()))?
            }
            _ => array,
        };
        let out = match array.data_type() {
            DataType::List(_) => expand(array.as_list::<i32>())?,
            DataType::LargeList(_) => expand(array.as_list::<i64>())?,
            other => return exec_err!("_pg_expandarray expects an array, not {other}"),
        };
        if scalar {
            return Ok(ColumnarValue::Scalar(
                datafusion::common::ScalarValue::try_from_array(&out, 0)?,
            ));
        }
        Ok(ColumnarValue::Array(out))
    }
}

/// Each list `[a, b]` as `[{x: a, n: 1}, {x: b, n: 2}]`.
fn expand<O: OffsetSizeTrait>(list: &GenericListArray<O>) -> Result<ArrayRef> {
    let values = list.values();
    let mut positions = Int32Builder::with_capacity(values.len());
    let offsets = list.value_offsets();
    let mut lengths = Vec::with_capacity(list.len());
    let mut taken = Vec::with_capacity(values.len());
    for row in 0..list.len() {
        let (start, end) = (offsets[row].as_usize(), offsets[row + 1].as_usize());
        let n = if list.is_null(row) { 0 } else { end - start };
        for (idx, value) in (start..start + n).enumerate() {
            positions.append_value(idx as i32 + 1);
            taken.push(value as u32);
        }
        lengths.push(n);
    }
    let indices = datafusion::arrow::array::UInt32Array::from(taken);
    let xs = datafusion::arrow::compute::take(values.as_ref(), &indices, None)?;
    let fields = record_fields(values.data_type());
    let records = StructArray::new(fields.clone(), vec![xs, Arc::new(positions.finish())], None);
    Ok(Arc::new(GenericListArray::<i32>::new(
        Arc::new(Field::new_list_field(DataType::Struct(fields), true)),
        OffsetBuffer::from_lengths(lengths),
        Arc::new(records),
        list.nulls().cloned(),
    )))
}

/// The `__lh_pg_expandarray` function.
pub fn expandarray() -> ScalarUDF {
    ScalarUDF::new_from_impl(ExpandArray {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::ListArray;
    use datafusion::arrow::datatypes::Int16Type;

    #[test]
    fn arrays_expand_to_records_numbered_from_one() {
        let list = ListArray::from_iter_primitive::<Int16Type, _, _>(vec![
            Some(vec![Some(3), Some(1)]),
            None,
            Some(vec![Some(7)]),
        ]);
        let out = expand(&list).unwrap();
        let out = out.as_list::<i32>();
        assert_eq!(out.value_length(0), 2);
        assert!(out.is_null(1));
        let first = out.value(0);
        let records = first.as_struct();
        let n = records
            .column(1)
            .as_primitive::<datafusion::arrow::datatypes::Int32Type>();
        assert_eq!((n.value(0), n.value(1)), (1, 2));
    }
}
