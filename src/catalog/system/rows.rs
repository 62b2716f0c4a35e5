//! Building system-table rows with PostgreSQL column types.
//!
//! A column is declared with its PostgreSQL type ([`Col`]); the Arrow field carries the
//! `pg_type` metadata so that RowDescription and `pg_attribute` report `name`, `oid`, `"char"`,
//! `regproc`, `int2vector` exactly as PostgreSQL does.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, ListArray, ListBuilder, StringArray,
    StringBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{DataFusionError, Result};

use crate::pg::types::PG_TYPE_METADATA_KEY;

/// PostgreSQL column types used by the system tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Col {
    /// `oid`.
    Oid,
    /// `regproc` (an OID that prints as a function name in PostgreSQL; we print the OID).
    RegProc,
    /// `name`.
    Name,
    /// `text`.
    Text,
    /// `character varying` (information_schema's `character_data`, `yes_or_no`).
    Varchar,
    /// `"char"`.
    Char,
    /// `bool`.
    Bool,
    /// `int2`.
    Int2,
    /// `int4` (information_schema's `cardinal_number`).
    Int4,
    /// `int8`.
    Int8,
    /// `float4`.
    Float4,
    /// `float8`.
    Float8,
    /// `timestamptz`.
    TimestampTz,
    /// `int2vector` (subscriptable from 0, like PostgreSQL's).
    Int2Vector,
    /// `oidvector`.
    OidVector,
    /// `int2[]`.
    Int2Array,
    /// `oid[]`.
    OidArray,
    /// `text[]`.
    TextArray,
    /// `aclitem[]` (always NULL here; served as `text[]`).
    AclArray,
    /// `pg_node_tree` (expressions; served as text).
    NodeTree,
}

impl Col {
    fn field(self, name: &str) -> Field {
        let (data_type, pg) = match self {
            Col::Oid => (DataType::UInt32, Some("oid")),
            Col::RegProc => (DataType::UInt32, Some("regproc")),
            Col::Name => (DataType::Utf8, Some("name")),
            Col::Text => (DataType::Utf8, None),
            Col::Varchar => (DataType::Utf8, Some("varchar")),
            Col::Char => (DataType::Utf8, Some("char")),
            Col::Bool => (DataType::Boolean, None),
            Col::Int2 => (DataType::Int16, None),
            Col::Int4 => (DataType::Int32, None),
            Col::Int8 => (DataType::Int64, None),
            Col::Float4 => (DataType::Float32, None),
            Col::Float8 => (DataType::Float64, None),
            Col::TimestampTz => (
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                None,
            ),
            Col::Int2Vector => (list_of(DataType::Int16), Some("int2vector")),
            Col::OidVector => (list_of(DataType::UInt32), Some("oidvector")),
            Col::Int2Array => (list_of(DataType::Int16), None),
            Col::OidArray => (list_of(DataType::UInt32), Some("_oid")),
            Col::TextArray => (list_of(DataType::Utf8), None),
            Col::AclArray => (list_of(DataType::Utf8), None),
            Col::NodeTree => (DataType::Utf8, Some("pg_node_tree")),
        };
        let field = Field::new(name, data_type, true);
        match pg {
            Some(pg) => field.with_metadata(
                [(PG_TYPE_METADATA_KEY.to_string(), pg.to_string())]
                    .into_iter()
                    .collect(),
            ),
            None => field,
        }
    }
}

fn list_of(item: DataType) -> DataType {
    DataType::List(Arc::new(Field::new("item", item, true)))
}

/// Declares a table schema.
pub fn schema(columns: &[(&str, Col)]) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|(name, col)| col.field(name))
            .collect::<Vec<_>>(),
    ))
}

/// One cell.
#[derive(Debug, Clone, PartialEq)]
pub enum V {
    /// NULL.
    Null,
    /// A boolean.
    B(bool),
    /// An integer (any integer column; range-checked when built).
    I(i64),
    /// A float.
    F(f64),
    /// A string (text, name, "char", varchar, timestamps as Unix microseconds go in `I`).
    S(String),
    /// An array or vector of integers.
    IL(Vec<i64>),
    /// An array of strings.
    SL(Vec<String>),
}

impl From<&str> for V {
    fn from(s: &str) -> V {
        V::S(s.to_string())
    }
}
impl From<String> for V {
    fn from(s: String) -> V {
        V::S(s)
    }
}
impl From<bool> for V {
    fn from(b: bool) -> V {
        V::B(b)
    }
}
impl From<i64> for V {
    fn from(i: i64) -> V {
        V::I(i)
    }
}
impl From<i32> for V {
    fn from(i: i32) -> V {
        V::I(i64::from(i))
    }
}
impl From<i16> for V {
    fn from(i: i16) -> V {
        V::I(i64::from(i))
    }
}
impl From<u32> for V {
    fn from(i: u32) -> V {
        V::I(i64::from(i))
    }
}
impl<T: Into<V>> From<Option<T>> for V {
    fn from(o: Option<T>) -> V {
        o.map(Into::into).unwrap_or(V::Null)
    }
}

/// Builds a batch from rows of cells, each row in schema order.
pub fn build(schema: &SchemaRef, rows: &[Vec<V>]) -> Result<RecordBatch> {
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for (idx, field) in schema.fields().iter().enumerate() {
        let array: ArrayRef = match field.data_type() {
            // Integers and instants are built as int8, range-checked, and cast to the
            // column's type by `align`; floats as float8.
            DataType::UInt32
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Timestamp(TimeUnit::Microsecond, _) => {
                Arc::new(Int64Array::from(cells(rows, idx, field, |v| match v {
                    V::I(i) if fits(field.data_type(), *i) => Some(*i),
                    _ => None,
                })?))
            }
            DataType::Float32 | DataType::Float64 => {
                Arc::new(Float64Array::from(cells(rows, idx, field, |v| match v {
                    V::F(f) => Some(*f),
                    V::I(i) => Some(*i as f64),
                    _ => None,
                })?))
            }
            DataType::Boolean => {
                Arc::new(BooleanArray::from(cells(rows, idx, field, |v| match v {
                    V::B(b) => Some(*b),
                    _ => None,
                })?))
            }
            DataType::Utf8 => Arc::new(StringArray::from(cells(rows, idx, field, |v| match v {
                V::S(s) => Some(s.clone()),
                _ => None,
            })?)),
            DataType::List(item) => match item.data_type() {
                // Built as int8 lists, range-checked, then cast to the item type by `align`.
                item_type @ (DataType::Int16 | DataType::UInt32) => {
                    let lists = cells(rows, idx, field, |v| match v {
                        V::IL(l) if l.iter().all(|i| fits(item_type, *i)) => Some(l.clone()),
                        _ => None,
                    })?;
                    Arc::new(ListArray::from_iter_primitive::<Int64Type, _, _>(
                        lists
                            .into_iter()
                            .map(|l| l.map(|l| l.into_iter().map(Some))),
                    ))
                }
                DataType::Utf8 => {
                    let lists = cells(rows, idx, field, |v| match v {
                        V::SL(l) => Some(l.clone()),
                        _ => None,
                    })?;
                    let mut b = ListBuilder::new(StringBuilder::new());
                    for list in lists {
                        match list {
                            Some(values) => {
                                b.values().extend(values.into_iter().map(Some));
                                b.append(true);
                            }
                            None => b.append_null(),
                        }
                    }
                    Arc::new(b.finish())
                }
                other => {
                    return Err(DataFusionError::Internal(format!(
                        "unsupported system list type {other}"
                    )));
                }
            },
            other => {
                return Err(DataFusionError::Internal(format!(
                    "unsupported system column type {other}"
                )));
            }
        };
        // Lists built above use an `item` field that is nullable; align with the schema.
        columns.push(align(array, field.data_type())?);
    }
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// The cells of column `idx`: `get` reads a non-NULL cell (`None`: not this column's kind).
fn cells<T>(
    rows: &[Vec<V>],
    idx: usize,
    field: &Field,
    get: impl Fn(&V) -> Option<T>,
) -> Result<Vec<Option<T>>> {
    rows.iter()
        .map(|row| match row.get(idx).unwrap_or(&V::Null) {
            V::Null => Ok(None),
            v => get(v).map(Some).ok_or_else(|| {
                DataFusionError::Internal(format!("system table column {} got {v:?}", field.name()))
            }),
        })
        .collect()
}

/// Whether an integer fits a column of `data_type` (checked before `align` casts to it).
fn fits(data_type: &DataType, v: i64) -> bool {
    match data_type {
        DataType::Int16 => i16::try_from(v).is_ok(),
        DataType::Int32 => i32::try_from(v).is_ok(),
        DataType::UInt32 => u32::try_from(v).is_ok(),
        _ => true,
    }
}

fn align(array: ArrayRef, data_type: &DataType) -> Result<ArrayRef> {
    if array.data_type() == data_type {
        Ok(array)
    } else {
        Ok(datafusion::arrow::compute::cast(&array, data_type)?)
    }
}
