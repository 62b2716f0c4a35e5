//! PostgreSQL's type system as our clients see it: OIDs, names, lengths, typmods, and the one
//! mapping from Arrow (what Delta and DataFusion produce) to PostgreSQL types.
//!
//! Both the wire (RowDescription) and the catalog (`pg_attribute`, `information_schema.columns`)
//! ask this module, so a column never has one type in a result and another in the catalog.
//! A leaf module: it imports nothing of the crate and does no I/O.

pub mod builtin;

use datafusion::arrow::datatypes::{DataType, Field, TimeUnit};

/// A row of PostgreSQL's `pg_type` for a built-in type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinType {
    /// `oid`.
    pub oid: u32,
    /// `typname`.
    pub name: &'static str,
    /// `typlen` (-1 variable, -2 C string).
    pub len: i16,
    /// `typtype` (`b` base, `p` pseudo, `r` range, ...).
    pub kind: u8,
    /// `typcategory`.
    pub category: u8,
    /// `typelem` (element type of an array).
    pub elem: u32,
    /// `typarray` (the array type of this type).
    pub array: u32,
    /// `typreceive` (a `pg_proc` OID).
    pub receive: u32,
    /// `typinput`.
    pub input: u32,
    /// `typoutput`.
    pub output: u32,
    /// `typsend`.
    pub send: u32,
    /// `typdelim`.
    pub delim: u8,
    /// `typcollation`.
    pub collation: u32,
    /// `typbyval`.
    pub by_val: bool,
    /// `typalign`.
    pub align: u8,
    /// `typstorage`.
    pub storage: u8,
    /// `pg_range.rngsubtype` for range types, else 0.
    pub range_subtype: u32,
    /// `typispreferred`.
    pub preferred: bool,
}

/// A row of PostgreSQL's `pg_proc` for a type I/O function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinProc {
    /// `oid`.
    pub oid: u32,
    /// `proname`.
    pub name: &'static str,
    /// `pronargs`.
    pub nargs: i16,
    /// `prorettype`.
    pub ret: u32,
    /// `proargtypes` as PostgreSQL prints it (space separated OIDs).
    pub args: &'static str,
}

/// OIDs of the types we refer to by name in code.
#[allow(missing_docs)]
pub mod oid {
    pub const BOOL: u32 = 16;
    pub const BYTEA: u32 = 17;
    pub const CHAR: u32 = 18;
    pub const NAME: u32 = 19;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT2VECTOR: u32 = 22;
    pub const INT4: u32 = 23;
    pub const REGPROC: u32 = 24;
    pub const TEXT: u32 = 25;
    pub const OID: u32 = 26;
    pub const OIDVECTOR: u32 = 30;
    pub const JSON: u32 = 114;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const UNKNOWN: u32 = 705;
    pub const BOOL_ARRAY: u32 = 1000;
    pub const INT2_ARRAY: u32 = 1005;
    pub const INT4_ARRAY: u32 = 1007;
    pub const TEXT_ARRAY: u32 = 1009;
    pub const INT8_ARRAY: u32 = 1016;
    pub const FLOAT4_ARRAY: u32 = 1021;
    pub const FLOAT8_ARRAY: u32 = 1022;
    pub const ACLITEM_ARRAY: u32 = 1034;
    pub const OID_ARRAY: u32 = 1028;
    pub const NAME_ARRAY: u32 = 1003;
    pub const CHAR_ARRAY: u32 = 1002;
    pub const BPCHAR: u32 = 1042;
    pub const VARCHAR: u32 = 1043;
    pub const DATE: u32 = 1082;
    pub const TIME: u32 = 1083;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const INTERVAL: u32 = 1186;
    pub const NUMERIC: u32 = 1700;
    pub const REGCLASS: u32 = 2205;
    pub const REGTYPE: u32 = 2206;
    pub const RECORD: u32 = 2249;
    pub const VOID: u32 = 2278;
    pub const UUID: u32 = 2950;
    pub const JSONB: u32 = 3802;
    pub const REGNAMESPACE: u32 = 4089;
    pub const REGROLE: u32 = 4096;
}

/// `server_version` as reported to clients: PostgreSQL 15 behaviour (clients choose their
/// catalog queries by it), with our name after it as PostgreSQL distributions do.
pub const SERVER_VERSION: &str = "15.20 (lakehouse)";

/// `server_version_num` matching [`SERVER_VERSION`].
pub const SERVER_VERSION_NUM: &str = "150020";

/// Field metadata key that pins the PostgreSQL type of an Arrow field (used by the system
/// catalogs for `name`, `oid`, `"char"`, `regproc`, `int2vector`, ...).
pub const PG_TYPE_METADATA_KEY: &str = "pg_type";

/// Looks a built-in type up by OID.
pub fn by_oid(type_oid: u32) -> Option<&'static BuiltinType> {
    builtin::TYPES
        .binary_search_by_key(&type_oid, |t| t.oid)
        .ok()
        .map(|idx| &builtin::TYPES[idx])
}

/// Looks a built-in type up by `typname`.
pub fn by_name(name: &str) -> Option<&'static BuiltinType> {
    builtin::TYPES.iter().find(|t| t.name == name)
}

/// The PostgreSQL type of one result column or table column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgType {
    /// Type OID.
    pub oid: u32,
    /// `atttypmod` / RowDescription type modifier (-1 when none).
    pub typmod: i32,
}

impl PgType {
    /// A type without modifier.
    pub const fn plain(oid: u32) -> Self {
        PgType { oid, typmod: -1 }
    }

    /// `typlen` of this type (RowDescription's type size).
    // A type's byte length (PostgreSQL's `typlen`), not a collection size: no `is_empty`.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> i16 {
        by_oid(self.oid).map(|t| t.len).unwrap_or(-1)
    }

    /// `typname`.
    pub fn name(&self) -> &'static str {
        by_oid(self.oid).map(|t| t.name).unwrap_or("text")
    }

    /// For arrays, the element type.
    pub fn element(&self) -> Option<PgType> {
        let elem = by_oid(self.oid)?.elem;
        (elem != 0 && by_oid(self.oid)?.category == b'A').then(|| PgType::plain(elem))
    }

    /// `numeric(p,s)` precision and scale, when the typmod says so.
    pub fn numeric_precision_scale(&self) -> Option<(i32, i32)> {
        (self.oid == oid::NUMERIC && self.typmod >= 4).then(|| {
            let t = self.typmod - 4;
            ((t >> 16) & 0xffff, t & 0xffff)
        })
    }

    /// PostgreSQL's `format_type(oid, typmod)`.
    pub fn format(&self) -> String {
        format_type(self.oid, self.typmod)
    }
}

/// The numeric typmod for `numeric(precision, scale)`.
pub fn numeric_typmod(precision: u8, scale: i8) -> i32 {
    ((i32::from(precision) << 16) | (i32::from(scale) & 0xffff)) + 4
}

/// Maps an Arrow field to its PostgreSQL type. Field metadata `pg_type` wins when present.
pub fn pg_type_of_field(field: &Field) -> PgType {
    if let Some(name) = field.metadata().get(PG_TYPE_METADATA_KEY)
        && let Some(t) = by_name(name)
    {
        return PgType::plain(t.oid);
    }
    pg_type_of(field.data_type())
}

/// Maps an Arrow type to its PostgreSQL type (see ARCHITECTURE.md, "Type mapping").
pub fn pg_type_of(data_type: &DataType) -> PgType {
    use DataType::*;
    match data_type {
        Null => PgType::plain(oid::TEXT),
        Boolean => PgType::plain(oid::BOOL),
        Int8 | Int16 | UInt8 => PgType::plain(oid::INT2),
        Int32 | UInt16 => PgType::plain(oid::INT4),
        Int64 | UInt32 => PgType::plain(oid::INT8),
        UInt64 => PgType::plain(oid::NUMERIC),
        Float16 | Float32 => PgType::plain(oid::FLOAT4),
        Float64 => PgType::plain(oid::FLOAT8),
        Decimal32(p, s) | Decimal64(p, s) | Decimal128(p, s) | Decimal256(p, s) => PgType {
            oid: oid::NUMERIC,
            typmod: if *s >= 0 { numeric_typmod(*p, *s) } else { -1 },
        },
        Utf8 | LargeUtf8 | Utf8View => PgType::plain(oid::TEXT),
        Binary | LargeBinary | BinaryView => PgType::plain(oid::BYTEA),
        FixedSizeBinary(16) => PgType::plain(oid::BYTEA),
        FixedSizeBinary(_) => PgType::plain(oid::BYTEA),
        Date32 | Date64 => PgType::plain(oid::DATE),
        Time32(_) | Time64(_) => PgType::plain(oid::TIME),
        Timestamp(unit, tz) => {
            let typmod = match unit {
                TimeUnit::Second => 0,
                TimeUnit::Millisecond => 3,
                TimeUnit::Microsecond | TimeUnit::Nanosecond => -1,
            };
            PgType {
                oid: if tz.is_some() {
                    oid::TIMESTAMPTZ
                } else {
                    oid::TIMESTAMP
                },
                typmod,
            }
        }
        Interval(_) | Duration(_) => PgType::plain(oid::INTERVAL),
        List(field)
        | LargeList(field)
        | FixedSizeList(field, _)
        | ListView(field)
        | LargeListView(field) => {
            let elem = pg_type_of_field(field);
            match by_oid(elem.oid) {
                Some(t) if t.array != 0 => PgType::plain(t.array),
                // Nested arrays and arrays of composites are served as JSON text.
                _ => PgType::plain(oid::JSON),
            }
        }
        Struct(_) | Map(..) | Union(..) | RunEndEncoded(..) => PgType::plain(oid::JSON),
        Dictionary(_, value) => pg_type_of(value),
    }
}

/// PostgreSQL's `format_type()`: the SQL spelling of a type (`integer`, `character varying(20)`).
pub fn format_type(type_oid: u32, typmod: i32) -> String {
    match type_oid {
        oid::BOOL => "boolean".to_string(),
        oid::INT2 => "smallint".to_string(),
        oid::INT4 => "integer".to_string(),
        oid::INT8 => "bigint".to_string(),
        oid::FLOAT4 => "real".to_string(),
        oid::FLOAT8 => "double precision".to_string(),
        oid::CHAR => "\"char\"".to_string(),
        oid::NUMERIC => match (PgType {
            oid: type_oid,
            typmod,
        })
        .numeric_precision_scale()
        {
            Some((p, s)) => format!("numeric({p},{s})"),
            None => "numeric".to_string(),
        },
        oid::VARCHAR => {
            if typmod >= 4 {
                format!("character varying({})", typmod - 4)
            } else {
                "character varying".to_string()
            }
        }
        oid::BPCHAR => {
            if typmod >= 4 {
                format!("character({})", typmod - 4)
            } else {
                "character".to_string()
            }
        }
        oid::TIMESTAMP => with_precision("timestamp", typmod, " without time zone"),
        oid::TIMESTAMPTZ => with_precision("timestamp", typmod, " with time zone"),
        oid::TIME => with_precision("time", typmod, " without time zone"),
        1266 => with_precision("time", typmod, " with time zone"),
        oid::INTERVAL => "interval".to_string(),
        other => match by_oid(other) {
            Some(t) if t.category == b'A' && t.elem != 0 => {
                format!("{}[]", format_type(t.elem, -1))
            }
            Some(t) => t.name.to_string(),
            None => "???".to_string(),
        },
    }
}

fn with_precision(name: &str, typmod: i32, suffix: &str) -> String {
    if typmod >= 0 {
        format!("{name}({typmod}){suffix}")
    } else {
        format!("{name}{suffix}")
    }
}

/// `information_schema.columns.data_type`: like `format_type` without modifiers, `ARRAY` for
/// arrays and `USER-DEFINED` for anything that is not a built-in SQL type.
pub fn information_schema_data_type(type_oid: u32) -> String {
    match by_oid(type_oid) {
        Some(t) if t.category == b'A' && t.elem != 0 && type_oid != oid::INT2VECTOR => {
            "ARRAY".to_string()
        }
        Some(_) => format_type(type_oid, -1),
        None => "USER-DEFINED".to_string(),
    }
}

/// An Arrow type able to carry values of PostgreSQL type `type_oid` (for parameters and casts).
pub fn arrow_type_of(type_oid: u32) -> Option<DataType> {
    Some(match type_oid {
        oid::BOOL => DataType::Boolean,
        oid::INT2 => DataType::Int16,
        oid::INT4 => DataType::Int32,
        oid::INT8 => DataType::Int64,
        oid::OID
        | oid::REGPROC
        | oid::REGCLASS
        | oid::REGTYPE
        | oid::REGNAMESPACE
        | oid::REGROLE => DataType::UInt32,
        oid::FLOAT4 => DataType::Float32,
        oid::FLOAT8 => DataType::Float64,
        oid::NUMERIC => DataType::Decimal128(38, 10),
        oid::TEXT
        | oid::VARCHAR
        | oid::BPCHAR
        | oid::NAME
        | oid::CHAR
        | oid::JSON
        | oid::JSONB
        | oid::UNKNOWN
        | oid::UUID => DataType::Utf8,
        oid::BYTEA => DataType::Binary,
        oid::DATE => DataType::Date32,
        oid::TIME => DataType::Time64(TimeUnit::Microsecond),
        oid::TIMESTAMP => DataType::Timestamp(TimeUnit::Microsecond, None),
        oid::TIMESTAMPTZ => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        oid::INTERVAL => {
            DataType::Interval(datafusion::arrow::datatypes::IntervalUnit::MonthDayNano)
        }
        _ => return None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn delta_types_map_as_documented() {
        let cases: Vec<(DataType, &str)> = vec![
            (DataType::Int64, "bigint"),
            (DataType::Int32, "integer"),
            (DataType::Int16, "smallint"),
            (DataType::Int8, "smallint"),
            (DataType::Float32, "real"),
            (DataType::Float64, "double precision"),
            (DataType::Decimal128(10, 2), "numeric(10,2)"),
            (DataType::Utf8, "text"),
            (DataType::Boolean, "boolean"),
            (DataType::Date32, "date"),
            (
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                "timestamp with time zone",
            ),
            (
                DataType::Timestamp(TimeUnit::Microsecond, None),
                "timestamp without time zone",
            ),
            (DataType::Binary, "bytea"),
            (
                DataType::List(Arc::new(Field::new("element", DataType::Int32, true))),
                "integer[]",
            ),
        ];
        for (data_type, expected) in cases {
            assert_eq!(pg_type_of(&data_type).format(), expected, "{data_type}");
        }
    }

    #[test]
    fn catalog_spellings() {
        assert_eq!(
            information_schema_data_type(oid::VARCHAR),
            "character varying"
        );
        assert_eq!(information_schema_data_type(oid::INT4_ARRAY), "ARRAY");
        assert_eq!(pg_type_of(&DataType::Utf8).name(), "text");
        assert_eq!(PgType::plain(oid::TIMESTAMPTZ).name(), "timestamptz");
        assert_eq!(format_type(oid::VARCHAR, 104), "character varying(100)");
    }

    #[test]
    fn every_type_has_its_receive_proc() {
        // Like PostgreSQL, a few types (aclitem) have no binary receive function.
        for t in builtin::TYPES.iter().filter(|t| t.receive != 0) {
            assert!(
                builtin::PROCS.iter().any(|p| p.oid == t.receive),
                "{} has no receive proc",
                t.name
            );
        }
        let array = by_oid(oid::INT4_ARRAY).unwrap();
        let recv = builtin::PROCS
            .iter()
            .find(|p| p.oid == array.receive)
            .unwrap();
        assert_eq!(recv.name, "array_recv");
    }
}

/// A result column as RowDescription describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldInfo {
    /// Column name.
    pub name: String,
    /// PostgreSQL type.
    pub pg_type: PgType,
}
