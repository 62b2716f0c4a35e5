//! `information_schema`, with PostgreSQL's spellings (`BASE TABLE`, `character varying`,
//! `YES`/`NO`) and domain types (`sql_identifier` is `name`, `cardinal_number` is `int4`,
//! `character_data` and `yes_or_no` are `varchar`) so that Power BI's navigator maps every
//! column to the right M type.

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::Result;

use super::OWNER_NAME;
use super::pg_catalog::{Relation, namespaces, relations};
use crate::catalog::session::{SessionCatalog, SystemTableDef};
use crate::catalog::system::rows::{Col, V, build, schema};
use crate::config::DATABASE_NAME;
use crate::pg::types::{self as pgtype, PgType, oid};

/// Every `information_schema` relation we serve.
pub static TABLES: &[SystemTableDef] = &[
    SystemTableDef {
        name: "character_sets",
        schema: character_sets_schema,
        rows: character_sets,
    },
    SystemTableDef {
        name: "columns",
        schema: columns_schema,
        rows: columns,
    },
    SystemTableDef {
        name: "key_column_usage",
        schema: key_column_usage_schema,
        rows: key_column_usage,
    },
    SystemTableDef {
        name: "referential_constraints",
        schema: referential_constraints_schema,
        rows: referential_constraints,
    },
    SystemTableDef {
        name: "schemata",
        schema: schemata_schema,
        rows: schemata,
    },
    SystemTableDef {
        name: "table_constraints",
        schema: table_constraints_schema,
        rows: table_constraints,
    },
    SystemTableDef {
        name: "table_privileges",
        schema: table_privileges_schema,
        rows: table_privileges,
    },
    SystemTableDef {
        name: "tables",
        schema: tables_schema,
        rows: tables,
    },
    SystemTableDef {
        name: "views",
        schema: views_schema,
        rows: views,
    },
];

/// Relations with no rows by construction: Delta tables declare no keys, and we serve no views.
pub const EMPTY: &[&str] = &[
    "key_column_usage",
    "referential_constraints",
    "table_constraints",
    "views",
];

macro_rules! cols {
    ($schema_fn:ident, [$(($col:literal, $ty:ident)),* $(,)?]) => {
        fn $schema_fn() -> SchemaRef {
            schema(&[$(($col, Col::$ty)),*])
        }
    };
}

fn yes_no(b: bool) -> V {
    V::from(if b { "YES" } else { "NO" })
}

cols!(
    schemata_schema,
    [
        ("catalog_name", Name),
        ("schema_name", Name),
        ("schema_owner", Name),
        ("default_character_set_catalog", Name),
        ("default_character_set_schema", Name),
        ("default_character_set_name", Name),
        ("sql_path", Varchar),
    ]
);
fn schemata(session: &SessionCatalog) -> Result<RecordBatch> {
    let rows: Vec<Vec<V>> = namespaces(session)
        .into_iter()
        .map(|(_, name)| {
            vec![
                DATABASE_NAME.into(),
                name.into(),
                OWNER_NAME.into(),
                V::Null,
                V::Null,
                V::Null,
                V::Null,
            ]
        })
        .collect();
    build(&schemata_schema(), &rows)
}

cols!(
    tables_schema,
    [
        ("table_catalog", Name),
        ("table_schema", Name),
        ("table_name", Name),
        ("table_type", Varchar),
        ("self_referencing_column_name", Name),
        ("reference_generation", Varchar),
        ("user_defined_type_catalog", Name),
        ("user_defined_type_schema", Name),
        ("user_defined_type_name", Name),
        ("is_insertable_into", Varchar),
        ("is_typed", Varchar),
        ("commit_action", Varchar),
    ]
);
fn table_type(rel: &Relation) -> &'static str {
    if rel.kind == 'v' {
        "VIEW"
    } else {
        "BASE TABLE"
    }
}
fn tables(session: &SessionCatalog) -> Result<RecordBatch> {
    let rows: Vec<Vec<V>> = relations(session)
        .into_iter()
        .map(|rel| {
            vec![
                DATABASE_NAME.into(),
                rel.schema.clone().into(),
                rel.name.clone().into(),
                table_type(&rel).into(),
                V::Null,
                V::Null,
                V::Null,
                V::Null,
                V::Null,
                yes_no(false),
                yes_no(false),
                V::Null,
            ]
        })
        .collect();
    build(&tables_schema(), &rows)
}

cols!(
    columns_schema,
    [
        ("table_catalog", Name),
        ("table_schema", Name),
        ("table_name", Name),
        ("column_name", Name),
        ("ordinal_position", Int4),
        ("column_default", Varchar),
        ("is_nullable", Varchar),
        ("data_type", Varchar),
        ("character_maximum_length", Int4),
        ("character_octet_length", Int4),
        ("numeric_precision", Int4),
        ("numeric_precision_radix", Int4),
        ("numeric_scale", Int4),
        ("datetime_precision", Int4),
        ("interval_type", Varchar),
        ("interval_precision", Int4),
        ("character_set_catalog", Name),
        ("character_set_schema", Name),
        ("character_set_name", Name),
        ("collation_catalog", Name),
        ("collation_schema", Name),
        ("collation_name", Name),
        ("domain_catalog", Name),
        ("domain_schema", Name),
        ("domain_name", Name),
        ("udt_catalog", Name),
        ("udt_schema", Name),
        ("udt_name", Name),
        ("scope_catalog", Name),
        ("scope_schema", Name),
        ("scope_name", Name),
        ("maximum_cardinality", Int4),
        ("dtd_identifier", Name),
        ("is_self_referencing", Varchar),
        ("is_identity", Varchar),
        ("identity_generation", Varchar),
        ("identity_start", Varchar),
        ("identity_increment", Varchar),
        ("identity_maximum", Varchar),
        ("identity_minimum", Varchar),
        ("identity_cycle", Varchar),
        ("is_generated", Varchar),
        ("generation_expression", Varchar),
        ("is_updatable", Varchar),
    ]
);

/// `numeric_precision`, `numeric_precision_radix`, `numeric_scale` as PostgreSQL reports them.
fn numeric_facts(pg_type: &PgType) -> (V, V, V) {
    match pg_type.oid {
        oid::INT2 => (16i32.into(), 2i32.into(), 0i32.into()),
        oid::INT4 => (32i32.into(), 2i32.into(), 0i32.into()),
        oid::INT8 => (64i32.into(), 2i32.into(), 0i32.into()),
        oid::FLOAT4 => (24i32.into(), 2i32.into(), V::Null),
        oid::FLOAT8 => (53i32.into(), 2i32.into(), V::Null),
        oid::NUMERIC => match pg_type.numeric_precision_scale() {
            Some((p, s)) => (p.into(), 10i32.into(), s.into()),
            None => (V::Null, 10i32.into(), V::Null),
        },
        _ => (V::Null, V::Null, V::Null),
    }
}

fn datetime_precision(pg_type: &PgType) -> V {
    match pg_type.oid {
        oid::DATE => 0i32.into(),
        oid::TIME | oid::TIMESTAMP | oid::TIMESTAMPTZ | oid::INTERVAL => (if pg_type.typmod >= 0 {
            pg_type.typmod
        } else {
            6
        })
        .into(),
        _ => V::Null,
    }
}

fn columns(session: &SessionCatalog) -> Result<RecordBatch> {
    let mut rows = Vec::new();
    for rel in relations(session) {
        for (name, pg_type, not_null, attnum) in &rel.columns {
            let (precision, radix, scale) = numeric_facts(pg_type);
            let is_text = matches!(pg_type.oid, oid::TEXT | oid::VARCHAR | oid::BPCHAR);
            let udt_name = pgtype::by_oid(pg_type.oid)
                .map(|t| t.name)
                .unwrap_or("text");
            rows.push(vec![
                DATABASE_NAME.into(),
                rel.schema.clone().into(),
                rel.name.clone().into(),
                name.clone().into(),
                i32::from(*attnum).into(),
                V::Null,
                yes_no(!not_null),
                pgtype::information_schema_data_type(pg_type.oid).into(),
                V::Null,
                (if is_text {
                    V::I(1_073_741_824)
                } else {
                    V::Null
                }),
                precision,
                radix,
                scale,
                datetime_precision(pg_type),
                V::Null,
                V::Null,
                V::Null,
                V::Null,
                V::Null,
                V::Null,
                V::Null,
                V::Null,
                V::Null,
                V::Null,
                V::Null,
                DATABASE_NAME.into(),
                "pg_catalog".into(),
                udt_name.into(),
                V::Null,
                V::Null,
                V::Null,
                V::Null,
                attnum.to_string().into(),
                yes_no(false),
                yes_no(false),
                V::Null,
                V::Null,
                V::Null,
                V::Null,
                V::Null,
                yes_no(false),
                "NEVER".into(),
                V::Null,
                yes_no(false),
            ]);
        }
    }
    build(&columns_schema(), &rows)
}

cols!(
    character_sets_schema,
    [
        ("character_set_catalog", Name),
        ("character_set_schema", Name),
        ("character_set_name", Name),
        ("character_repertoire", Name),
        ("form_of_use", Name),
        ("default_collate_catalog", Name),
        ("default_collate_schema", Name),
        ("default_collate_name", Name),
    ]
);
fn character_sets(_session: &SessionCatalog) -> Result<RecordBatch> {
    let rows = vec![vec![
        V::Null,
        V::Null,
        "UTF8".into(),
        "UCS".into(),
        "UTF8".into(),
        DATABASE_NAME.into(),
        "pg_catalog".into(),
        "C.UTF-8".into(),
    ]];
    build(&character_sets_schema(), &rows)
}

cols!(
    table_constraints_schema,
    [
        ("constraint_catalog", Name),
        ("constraint_schema", Name),
        ("constraint_name", Name),
        ("table_catalog", Name),
        ("table_schema", Name),
        ("table_name", Name),
        ("constraint_type", Varchar),
        ("is_deferrable", Varchar),
        ("initially_deferred", Varchar),
        ("enforced", Varchar),
        ("nulls_distinct", Varchar),
    ]
);
fn table_constraints(_session: &SessionCatalog) -> Result<RecordBatch> {
    // Delta tables declare no keys; Power BI treats an empty result as "no relationships".
    build(&table_constraints_schema(), &[])
}

cols!(
    key_column_usage_schema,
    [
        ("constraint_catalog", Name),
        ("constraint_schema", Name),
        ("constraint_name", Name),
        ("table_catalog", Name),
        ("table_schema", Name),
        ("table_name", Name),
        ("column_name", Name),
        ("ordinal_position", Int4),
        ("position_in_unique_constraint", Int4),
    ]
);
fn key_column_usage(_session: &SessionCatalog) -> Result<RecordBatch> {
    build(&key_column_usage_schema(), &[])
}

cols!(
    referential_constraints_schema,
    [
        ("constraint_catalog", Name),
        ("constraint_schema", Name),
        ("constraint_name", Name),
        ("unique_constraint_catalog", Name),
        ("unique_constraint_schema", Name),
        ("unique_constraint_name", Name),
        ("match_option", Varchar),
        ("update_rule", Varchar),
        ("delete_rule", Varchar),
    ]
);
fn referential_constraints(_session: &SessionCatalog) -> Result<RecordBatch> {
    build(&referential_constraints_schema(), &[])
}

cols!(
    views_schema,
    [
        ("table_catalog", Name),
        ("table_schema", Name),
        ("table_name", Name),
        ("view_definition", Varchar),
        ("check_option", Varchar),
        ("is_updatable", Varchar),
        ("is_insertable_into", Varchar),
        ("is_trigger_updatable", Varchar),
        ("is_trigger_deletable", Varchar),
        ("is_trigger_insertable_into", Varchar),
    ]
);
fn views(_session: &SessionCatalog) -> Result<RecordBatch> {
    build(&views_schema(), &[])
}

cols!(
    table_privileges_schema,
    [
        ("grantor", Name),
        ("grantee", Name),
        ("table_catalog", Name),
        ("table_schema", Name),
        ("table_name", Name),
        ("privilege_type", Varchar),
        ("is_grantable", Varchar),
        ("with_hierarchy", Varchar),
    ]
);
fn table_privileges(session: &SessionCatalog) -> Result<RecordBatch> {
    let user = session.pinned().principal.user.clone();
    let rows: Vec<Vec<V>> = relations(session)
        .into_iter()
        .filter(|rel| rel.lake.is_some())
        .map(|rel| {
            vec![
                OWNER_NAME.into(),
                user.clone().into(),
                DATABASE_NAME.into(),
                rel.schema.into(),
                rel.name.into(),
                "SELECT".into(),
                yes_no(false),
                yes_no(true),
            ]
        })
        .collect();
    build(&table_privileges_schema(), &rows)
}
