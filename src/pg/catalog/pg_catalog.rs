//! `pg_catalog`, generated from the live catalog for one session.
//!
//! Column lists follow PostgreSQL 15. Relations that describe things we do not have (indexes,
//! constraints, triggers, rules, policies, publications) exist with their real columns and no
//! rows, so clients that join them keep working. System relations keep PostgreSQL's OIDs
//! (`pg_class` is 1259, ...) because clients write `'pg_class'::regclass`.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::Result;

use super::{HEAP_AM_OID, INFORMATION_SCHEMA_OID, OWNER_NAME, OWNER_OID, PG_CATALOG_OID};
use crate::catalog::registry::{TableEntry, TableStatus, stable_oid};
use crate::catalog::session::{GeneratedSchema, SessionCatalog, SystemTableDef};
use crate::catalog::system::rows::{Col, V, build, schema};
use crate::pg::types::{self as pgtype, PgType};
use crate::policy::ColumnAccess;

macro_rules! table {
    ($name:literal, $schema_fn:ident, $rows_fn:path, [$(($col:literal, $ty:ident)),* $(,)?]) => {
        fn $schema_fn() -> SchemaRef {
            schema(&[$(($col, Col::$ty)),*])
        }
    };
}

/// Every `pg_catalog` relation we serve.
pub static TABLES: &[SystemTableDef] = &[
    SystemTableDef {
        name: "pg_am",
        schema: pg_am_schema,
        rows: pg_am,
    },
    SystemTableDef {
        name: "pg_attrdef",
        schema: pg_attrdef_schema,
        rows: empty_pg_attrdef,
    },
    SystemTableDef {
        name: "pg_attribute",
        schema: pg_attribute_schema,
        rows: pg_attribute,
    },
    SystemTableDef {
        name: "pg_auth_members",
        schema: pg_auth_members_schema,
        rows: pg_auth_members,
    },
    SystemTableDef {
        name: "pg_class",
        schema: pg_class_schema,
        rows: pg_class,
    },
    SystemTableDef {
        name: "pg_collation",
        schema: pg_collation_schema,
        rows: pg_collation,
    },
    SystemTableDef {
        name: "pg_constraint",
        schema: pg_constraint_schema,
        rows: empty_pg_constraint,
    },
    SystemTableDef {
        name: "pg_database",
        schema: pg_database_schema,
        rows: pg_database,
    },
    SystemTableDef {
        name: "pg_description",
        schema: pg_description_schema,
        rows: empty_pg_description,
    },
    SystemTableDef {
        name: "pg_enum",
        schema: pg_enum_schema,
        rows: empty_pg_enum,
    },
    SystemTableDef {
        name: "pg_extension",
        schema: pg_extension_schema,
        rows: empty_pg_extension,
    },
    SystemTableDef {
        name: "pg_foreign_table",
        schema: pg_foreign_table_schema,
        rows: empty_pg_foreign_table,
    },
    SystemTableDef {
        name: "pg_index",
        schema: pg_index_schema,
        rows: empty_pg_index,
    },
    SystemTableDef {
        name: "pg_inherits",
        schema: pg_inherits_schema,
        rows: empty_pg_inherits,
    },
    SystemTableDef {
        name: "pg_matviews",
        schema: pg_matviews_schema,
        rows: empty_pg_matviews,
    },
    SystemTableDef {
        name: "pg_namespace",
        schema: pg_namespace_schema,
        rows: pg_namespace,
    },
    SystemTableDef {
        name: "pg_opclass",
        schema: pg_opclass_schema,
        rows: empty_pg_opclass,
    },
    SystemTableDef {
        name: "pg_policy",
        schema: pg_policy_schema,
        rows: empty_pg_policy,
    },
    SystemTableDef {
        name: "pg_proc",
        schema: pg_proc_schema,
        rows: pg_proc,
    },
    SystemTableDef {
        name: "pg_publication",
        schema: pg_publication_schema,
        rows: empty_pg_publication,
    },
    SystemTableDef {
        name: "pg_publication_namespace",
        schema: pg_publication_namespace_schema,
        rows: empty_pg_publication_namespace,
    },
    SystemTableDef {
        name: "pg_publication_rel",
        schema: pg_publication_rel_schema,
        rows: empty_pg_publication_rel,
    },
    SystemTableDef {
        name: "pg_range",
        schema: pg_range_schema,
        rows: pg_range,
    },
    SystemTableDef {
        name: "pg_rewrite",
        schema: pg_rewrite_schema,
        rows: empty_pg_rewrite,
    },
    SystemTableDef {
        name: "pg_roles",
        schema: pg_roles_schema,
        rows: pg_roles,
    },
    SystemTableDef {
        name: "pg_sequence",
        schema: pg_sequence_schema,
        rows: empty_pg_sequence,
    },
    SystemTableDef {
        name: "pg_settings",
        schema: pg_settings_schema,
        rows: pg_settings,
    },
    SystemTableDef {
        name: "pg_statistic_ext",
        schema: pg_statistic_ext_schema,
        rows: empty_pg_statistic_ext,
    },
    SystemTableDef {
        name: "pg_tables",
        schema: pg_tables_schema,
        rows: pg_tables,
    },
    SystemTableDef {
        name: "pg_tablespace",
        schema: pg_tablespace_schema,
        rows: pg_tablespace,
    },
    SystemTableDef {
        name: "pg_trigger",
        schema: pg_trigger_schema,
        rows: empty_pg_trigger,
    },
    SystemTableDef {
        name: "pg_type",
        schema: pg_type_schema,
        rows: pg_type,
    },
    SystemTableDef {
        name: "pg_user",
        schema: pg_user_schema,
        rows: pg_user,
    },
    SystemTableDef {
        name: "pg_views",
        schema: pg_views_schema,
        rows: empty_pg_views,
    },
];

/// Relations with no rows by construction (see `EmptySystemRelations`).
pub const EMPTY: &[&str] = &[
    "pg_attrdef",
    "pg_constraint",
    "pg_description",
    "pg_enum",
    "pg_extension",
    "pg_foreign_table",
    "pg_index",
    "pg_inherits",
    "pg_matviews",
    "pg_opclass",
    "pg_policy",
    "pg_publication",
    "pg_publication_namespace",
    "pg_publication_rel",
    "pg_rewrite",
    "pg_sequence",
    "pg_statistic_ext",
    "pg_trigger",
    "pg_views",
];

/// PostgreSQL's OIDs for the system relations clients name with `::regclass`.
const RELATION_OIDS: &[(&str, u32)] = &[
    ("pg_type", 1247),
    ("pg_attribute", 1249),
    ("pg_proc", 1255),
    ("pg_class", 1259),
    ("pg_authid", 1260),
    ("pg_database", 1262),
    ("pg_tablespace", 1213),
    ("pg_attrdef", 2604),
    ("pg_constraint", 2606),
    ("pg_inherits", 2611),
    ("pg_index", 2610),
    ("pg_description", 2609),
    ("pg_am", 2601),
    ("pg_rewrite", 2618),
    ("pg_trigger", 2620),
    ("pg_namespace", 2615),
    ("pg_policy", 3256),
    ("pg_collation", 3456),
    ("pg_enum", 3501),
    ("pg_range", 3541),
    ("pg_extension", 3079),
    ("pg_foreign_table", 3118),
    ("pg_statistic_ext", 3381),
    ("pg_publication", 6104),
    ("pg_publication_rel", 6106),
    ("pg_publication_namespace", 6237),
    ("pg_auth_members", 1261),
    ("pg_sequence", 2224),
    ("pg_opclass", 2616),
];

/// The OID of a relation of a system schema.
pub fn system_relation_oid(schema: &str, name: &str) -> u32 {
    if schema == "pg_catalog"
        && let Some((_, oid)) = RELATION_OIDS.iter().find(|(n, _)| *n == name)
    {
        return *oid;
    }
    stable_oid(&format!("table:{schema}.{name}"))
}

/// The OID of a namespace.
pub fn namespace_oid(name: &str) -> u32 {
    match name {
        "pg_catalog" => PG_CATALOG_OID,
        "information_schema" => INFORMATION_SCHEMA_OID,
        other => stable_oid(&format!("schema:{other}")),
    }
}

/// The OID of the database.
pub fn database_oid() -> u32 {
    stable_oid("database:ikhospital_dw")
}

/// The OID of a user or role (lowercase name).
pub fn role_oid(name: &str) -> u32 {
    if name == OWNER_NAME {
        return OWNER_OID;
    }
    stable_oid(&format!("role:{}", name.to_lowercase()))
}

/// A relation as the catalogs show it.
pub struct Relation {
    /// OID.
    pub oid: u32,
    /// Schema name.
    pub schema: String,
    /// Relation name.
    pub name: String,
    /// `r` table, `v` view.
    pub kind: char,
    /// Visible columns: (name, PostgreSQL type, not null, attnum).
    pub columns: Vec<(String, PgType, bool, i16)>,
    /// Delta version, for lake tables.
    pub lake: Option<Arc<TableEntry>>,
}

/// Every relation the session may see: lake tables (visible columns only) and system tables.
pub fn relations(session: &SessionCatalog) -> Vec<Relation> {
    let pinned = session.pinned();
    let mut out = Vec::new();
    for entry in pinned.catalog.tables.values() {
        let TableStatus::Ready(ready) = &entry.status else {
            if pinned.table_visible(entry) {
                out.push(Relation {
                    oid: entry.oid,
                    schema: entry.schema.clone(),
                    name: entry.name.clone(),
                    kind: 'r',
                    columns: Vec::new(),
                    lake: Some(entry.clone()),
                });
            }
            continue;
        };
        let access = pinned.access(entry);
        if !access.visible() {
            continue;
        }
        let columns = ready
            .schema
            .fields()
            .iter()
            .zip(access.columns.iter())
            .enumerate()
            .filter(|(_, (_, access))| **access != ColumnAccess::Denied)
            .map(|(idx, (field, _))| {
                (
                    field.name().to_lowercase(),
                    pgtype::pg_type_of_field(field),
                    !field.is_nullable(),
                    // attnum keeps the table's own numbering, gaps where columns are hidden.
                    (idx + 1) as i16,
                )
            })
            .collect();
        out.push(Relation {
            oid: entry.oid,
            schema: entry.schema.clone(),
            name: entry.name.clone(),
            kind: 'r',
            columns,
            lake: Some(entry.clone()),
        });
    }
    for generated in &session.system().schemas {
        // PostgreSQL's catalogs are tables; information_schema's and ours are views.
        let relkind = if generated.name == "pg_catalog" {
            'r'
        } else {
            'v'
        };
        for def in generated.tables {
            if pinned.generated_table_visible(generated, def) {
                out.push(system_relation(generated.name, def, relkind));
            }
        }
    }
    out
}

fn system_relation(schema_name: &str, def: &SystemTableDef, kind: char) -> Relation {
    let table_schema = (def.schema)();
    Relation {
        oid: system_relation_oid(schema_name, def.name),
        schema: schema_name.to_string(),
        name: def.name.to_string(),
        kind,
        columns: table_schema
            .fields()
            .iter()
            .enumerate()
            .map(|(idx, f)| {
                (
                    f.name().clone(),
                    pgtype::pg_type_of_field(f),
                    false,
                    (idx + 1) as i16,
                )
            })
            .collect(),
        lake: None,
    }
}

/// Visible namespaces: (oid, name).
pub fn namespaces(session: &SessionCatalog) -> Vec<(u32, String)> {
    let pinned = session.pinned();
    let generated = session.visible_generated();
    // PostgreSQL's own namespaces first, then the lake's, then ours (`sys`).
    let (builtin, others): (Vec<&GeneratedSchema>, Vec<&GeneratedSchema>) =
        generated.into_iter().partition(|schema| {
            [PG_CATALOG_OID, INFORMATION_SCHEMA_OID].contains(&namespace_oid(schema.name))
        });
    let mut out: Vec<(u32, String)> = (builtin.iter())
        .map(|schema| (namespace_oid(schema.name), schema.name.to_string()))
        .collect();
    for schema in &pinned.catalog.schemas {
        if pinned.schema_visible(schema) {
            out.push((namespace_oid(schema), schema.clone()));
        }
    }
    out.extend((others.iter()).map(|schema| (namespace_oid(schema.name), schema.name.to_string())));
    out
}

fn owner_name() -> V {
    V::from(OWNER_NAME)
}

table!(
    "pg_namespace",
    pg_namespace_schema,
    pg_namespace,
    [
        ("oid", Oid),
        ("nspname", Name),
        ("nspowner", Oid),
        ("nspacl", AclArray),
    ]
);
fn pg_namespace(session: &SessionCatalog) -> Result<RecordBatch> {
    let rows: Vec<Vec<V>> = namespaces(session)
        .into_iter()
        .map(|(oid, name)| vec![oid.into(), name.into(), OWNER_OID.into(), V::Null])
        .collect();
    build(&pg_namespace_schema(), &rows)
}

table!(
    "pg_class",
    pg_class_schema,
    pg_class,
    [
        ("oid", Oid),
        ("relname", Name),
        ("relnamespace", Oid),
        ("reltype", Oid),
        ("reloftype", Oid),
        ("relowner", Oid),
        ("relam", Oid),
        ("relfilenode", Oid),
        ("reltablespace", Oid),
        ("relpages", Int4),
        ("reltuples", Float4),
        ("relallvisible", Int4),
        ("reltoastrelid", Oid),
        ("relhasindex", Bool),
        ("relisshared", Bool),
        ("relpersistence", Char),
        ("relkind", Char),
        ("relnatts", Int2),
        ("relchecks", Int2),
        ("relhasrules", Bool),
        ("relhastriggers", Bool),
        ("relhassubclass", Bool),
        ("relrowsecurity", Bool),
        ("relforcerowsecurity", Bool),
        ("relispopulated", Bool),
        ("relreplident", Char),
        ("relispartition", Bool),
        ("relrewrite", Oid),
        ("relfrozenxid", Int4),
        ("relminmxid", Int4),
        ("relacl", AclArray),
        ("reloptions", TextArray),
        ("relpartbound", NodeTree),
    ]
);
/// A role name as an `aclitem` spells it (quoted unless plain lower case).
fn acl_role(name: &str) -> String {
    if name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

fn pg_class(session: &SessionCatalog) -> Result<RecordBatch> {
    let owner = acl_role(OWNER_NAME);
    let user = acl_role(&session.pinned().principal.user);
    let rows: Vec<Vec<V>> = relations(session)
        .into_iter()
        .map(|rel| {
            let is_table = rel.kind == 'r';
            // SELECT only, for the owner too: the server writes nothing. System relations are
            // readable by PUBLIC; a lake table by the user who sees it (pgJDBC's
            // getTablePrivileges reads this, and a NULL would mean the owner's defaults, all
            // privileges).
            let reader = if matches!(rel.schema.as_str(), "pg_catalog" | "information_schema") {
                String::new()
            } else {
                user.clone()
            };
            let acl = V::SL(vec![
                format!("{owner}=r/{owner}"),
                format!("{reader}=r/{owner}"),
            ]);
            vec![
                rel.oid.into(),
                rel.name.into(),
                namespace_oid(&rel.schema).into(),
                0u32.into(),
                0u32.into(),
                OWNER_OID.into(),
                (if is_table { HEAP_AM_OID } else { 0 }).into(),
                (if is_table { rel.oid } else { 0 }).into(),
                0u32.into(),
                0i32.into(),
                V::F(-1.0),
                0i32.into(),
                0u32.into(),
                false.into(),
                false.into(),
                "p".into(),
                rel.kind.to_string().into(),
                (rel.columns.len() as i16).into(),
                0i16.into(),
                false.into(),
                false.into(),
                false.into(),
                false.into(),
                false.into(),
                true.into(),
                "d".into(),
                false.into(),
                0u32.into(),
                0i32.into(),
                0i32.into(),
                acl,
                V::Null,
                V::Null,
            ]
        })
        .collect();
    build(&pg_class_schema(), &rows)
}

table!(
    "pg_attribute",
    pg_attribute_schema,
    pg_attribute,
    [
        ("attrelid", Oid),
        ("attname", Name),
        ("atttypid", Oid),
        ("attstattarget", Int4),
        ("attlen", Int2),
        ("attnum", Int2),
        ("attndims", Int4),
        ("attcacheoff", Int4),
        ("atttypmod", Int4),
        ("attbyval", Bool),
        ("attalign", Char),
        ("attstorage", Char),
        ("attcompression", Char),
        ("attnotnull", Bool),
        ("atthasdef", Bool),
        ("atthasmissing", Bool),
        ("attidentity", Char),
        ("attgenerated", Char),
        ("attisdropped", Bool),
        ("attislocal", Bool),
        ("attinhcount", Int4),
        ("attcollation", Oid),
        ("attacl", AclArray),
        ("attoptions", TextArray),
        ("attfdwoptions", TextArray),
        ("attmissingval", TextArray),
    ]
);
fn pg_attribute(session: &SessionCatalog) -> Result<RecordBatch> {
    let mut rows = Vec::new();
    for rel in relations(session) {
        for (name, pg_type, not_null, attnum) in &rel.columns {
            let builtin = pgtype::by_oid(pg_type.oid);
            rows.push(vec![
                rel.oid.into(),
                name.clone().into(),
                pg_type.oid.into(),
                (-1i32).into(),
                pg_type.len().into(),
                (*attnum).into(),
                (if pg_type.element().is_some() { 1i32 } else { 0 }).into(),
                (-1i32).into(),
                pg_type.typmod.into(),
                builtin.map(|t| t.by_val).unwrap_or(false).into(),
                builtin
                    .map(|t| (t.align as char).to_string())
                    .unwrap_or_else(|| "i".to_string())
                    .into(),
                builtin
                    .map(|t| (t.storage as char).to_string())
                    .unwrap_or_else(|| "x".to_string())
                    .into(),
                "".into(),
                (*not_null).into(),
                false.into(),
                false.into(),
                "".into(),
                "".into(),
                false.into(),
                true.into(),
                0i32.into(),
                builtin.map(|t| t.collation).unwrap_or(0).into(),
                V::Null,
                V::Null,
                V::Null,
                V::Null,
            ]);
        }
    }
    build(&pg_attribute_schema(), &rows)
}

table!(
    "pg_type",
    pg_type_schema,
    pg_type,
    [
        ("oid", Oid),
        ("typname", Name),
        ("typnamespace", Oid),
        ("typowner", Oid),
        ("typlen", Int2),
        ("typbyval", Bool),
        ("typtype", Char),
        ("typcategory", Char),
        ("typispreferred", Bool),
        ("typisdefined", Bool),
        ("typdelim", Char),
        ("typrelid", Oid),
        ("typsubscript", RegProc),
        ("typelem", Oid),
        ("typarray", Oid),
        ("typinput", RegProc),
        ("typoutput", RegProc),
        ("typreceive", RegProc),
        ("typsend", RegProc),
        ("typmodin", RegProc),
        ("typmodout", RegProc),
        ("typanalyze", RegProc),
        ("typalign", Char),
        ("typstorage", Char),
        ("typnotnull", Bool),
        ("typbasetype", Oid),
        ("typtypmod", Int4),
        ("typndims", Int4),
        ("typcollation", Oid),
        ("typdefaultbin", NodeTree),
        ("typdefault", Text),
        ("typacl", AclArray),
    ]
);
fn pg_type(_session: &SessionCatalog) -> Result<RecordBatch> {
    let rows: Vec<Vec<V>> = pgtype::builtin::TYPES
        .iter()
        .map(|t| {
            vec![
                t.oid.into(),
                t.name.into(),
                PG_CATALOG_OID.into(),
                OWNER_OID.into(),
                t.len.into(),
                t.by_val.into(),
                (t.kind as char).to_string().into(),
                (t.category as char).to_string().into(),
                t.preferred.into(),
                true.into(),
                (t.delim as char).to_string().into(),
                0u32.into(),
                0u32.into(),
                t.elem.into(),
                t.array.into(),
                t.input.into(),
                t.output.into(),
                t.receive.into(),
                t.send.into(),
                0u32.into(),
                0u32.into(),
                0u32.into(),
                (t.align as char).to_string().into(),
                (t.storage as char).to_string().into(),
                false.into(),
                0u32.into(),
                (-1i32).into(),
                0i32.into(),
                t.collation.into(),
                V::Null,
                V::Null,
                V::Null,
            ]
        })
        .collect();
    build(&pg_type_schema(), &rows)
}

table!(
    "pg_proc",
    pg_proc_schema,
    pg_proc,
    [
        ("oid", Oid),
        ("proname", Name),
        ("pronamespace", Oid),
        ("proowner", Oid),
        ("prolang", Oid),
        ("procost", Float4),
        ("prorows", Float4),
        ("provariadic", Oid),
        ("prosupport", RegProc),
        ("prokind", Char),
        ("prosecdef", Bool),
        ("proleakproof", Bool),
        ("proisstrict", Bool),
        ("proretset", Bool),
        ("provolatile", Char),
        ("proparallel", Char),
        ("pronargs", Int2),
        ("pronargdefaults", Int2),
        ("prorettype", Oid),
        ("proargtypes", OidVector),
        ("proallargtypes", OidArray),
        ("proargmodes", TextArray),
        ("proargnames", TextArray),
        ("proargdefaults", NodeTree),
        ("protrftypes", OidArray),
        ("prosrc", Text),
        ("probin", Text),
        ("prosqlbody", NodeTree),
        ("proconfig", TextArray),
        ("proacl", AclArray),
    ]
);
fn pg_proc(_session: &SessionCatalog) -> Result<RecordBatch> {
    let rows: Vec<Vec<V>> = pgtype::builtin::PROCS
        .iter()
        .map(|p| {
            let args: Vec<i64> = p
                .args
                .split_whitespace()
                .filter_map(|a| a.parse().ok())
                .collect();
            vec![
                p.oid.into(),
                p.name.into(),
                PG_CATALOG_OID.into(),
                OWNER_OID.into(),
                12u32.into(),
                V::F(1.0),
                V::F(0.0),
                0u32.into(),
                0u32.into(),
                "f".into(),
                false.into(),
                false.into(),
                true.into(),
                false.into(),
                "i".into(),
                "s".into(),
                p.nargs.into(),
                0i16.into(),
                p.ret.into(),
                V::IL(args),
                V::Null,
                V::Null,
                V::Null,
                V::Null,
                V::Null,
                p.name.into(),
                V::Null,
                V::Null,
                V::Null,
                V::Null,
            ]
        })
        .collect();
    build(&pg_proc_schema(), &rows)
}

table!(
    "pg_range",
    pg_range_schema,
    pg_range,
    [
        ("rngtypid", Oid),
        ("rngsubtype", Oid),
        ("rngmultitypid", Oid),
        ("rngcollation", Oid),
        ("rngsubopc", Oid),
        ("rngcanonical", RegProc),
        ("rngsubdiff", RegProc),
    ]
);
fn pg_range(_session: &SessionCatalog) -> Result<RecordBatch> {
    let rows: Vec<Vec<V>> = pgtype::builtin::TYPES
        .iter()
        .filter(|t| t.range_subtype != 0)
        .map(|t| {
            vec![
                t.oid.into(),
                t.range_subtype.into(),
                0u32.into(),
                0u32.into(),
                0u32.into(),
                0u32.into(),
                0u32.into(),
            ]
        })
        .collect();
    build(&pg_range_schema(), &rows)
}

table!(
    "pg_database",
    pg_database_schema,
    pg_database,
    [
        ("oid", Oid),
        ("datname", Name),
        ("datdba", Oid),
        ("encoding", Int4),
        ("datlocprovider", Char),
        ("datistemplate", Bool),
        ("datallowconn", Bool),
        ("datconnlimit", Int4),
        ("datfrozenxid", Int4),
        ("datminmxid", Int4),
        ("dattablespace", Oid),
        ("datcollate", Text),
        ("datctype", Text),
        ("daticulocale", Text),
        ("datcollversion", Text),
        ("datacl", AclArray),
    ]
);
fn pg_database(_session: &SessionCatalog) -> Result<RecordBatch> {
    let rows = vec![vec![
        database_oid().into(),
        crate::config::DATABASE_NAME.into(),
        OWNER_OID.into(),
        6i32.into(),
        "c".into(),
        false.into(),
        true.into(),
        (-1i32).into(),
        0i32.into(),
        0i32.into(),
        1663u32.into(),
        "C.UTF-8".into(),
        "C.UTF-8".into(),
        V::Null,
        V::Null,
        V::Null,
    ]];
    build(&pg_database_schema(), &rows)
}

table!(
    "pg_am",
    pg_am_schema,
    pg_am,
    [
        ("oid", Oid),
        ("amname", Name),
        ("amhandler", RegProc),
        ("amtype", Char),
    ]
);
fn pg_am(_session: &SessionCatalog) -> Result<RecordBatch> {
    let rows = vec![
        vec![HEAP_AM_OID.into(), "heap".into(), 3u32.into(), "t".into()],
        vec![403u32.into(), "btree".into(), 330u32.into(), "i".into()],
    ];
    build(&pg_am_schema(), &rows)
}

table!(
    "pg_collation",
    pg_collation_schema,
    pg_collation,
    [
        ("oid", Oid),
        ("collname", Name),
        ("collnamespace", Oid),
        ("collowner", Oid),
        ("collprovider", Char),
        ("collisdeterministic", Bool),
        ("collencoding", Int4),
        ("collcollate", Text),
        ("collctype", Text),
        ("colliculocale", Text),
        ("collversion", Text),
    ]
);
fn pg_collation(_session: &SessionCatalog) -> Result<RecordBatch> {
    let row = |oid: u32, name: &str, provider: &str, locale: Option<&str>| {
        vec![
            oid.into(),
            name.into(),
            PG_CATALOG_OID.into(),
            OWNER_OID.into(),
            provider.into(),
            true.into(),
            (-1i32).into(),
            locale.into(),
            locale.into(),
            V::Null,
            V::Null,
        ]
    };
    let rows = vec![
        row(100, "default", "d", None),
        row(950, "C", "c", Some("C")),
        row(951, "POSIX", "c", Some("POSIX")),
    ];
    build(&pg_collation_schema(), &rows)
}

table!(
    "pg_roles",
    pg_roles_schema,
    pg_roles,
    [
        ("rolname", Name),
        ("rolsuper", Bool),
        ("rolinherit", Bool),
        ("rolcreaterole", Bool),
        ("rolcreatedb", Bool),
        ("rolcanlogin", Bool),
        ("rolreplication", Bool),
        ("rolconnlimit", Int4),
        ("rolpassword", Text),
        ("rolvaliduntil", TimestampTz),
        ("rolbypassrls", Bool),
        ("rolconfig", TextArray),
        ("oid", Oid),
    ]
);
/// Roles the session may know about: the owner, the user and the user's roles.
fn visible_roles(session: &SessionCatalog) -> Vec<(String, bool, Option<i64>)> {
    let pinned = session.pinned();
    let mut out = vec![(OWNER_NAME.to_string(), false, None)];
    let user_key = pinned.principal.user.to_lowercase();
    let valid_until = pinned
        .policy
        .policy
        .user(&user_key)
        .and_then(|u| u.valid_until);
    out.push((pinned.principal.user.clone(), true, valid_until));
    for role in &pinned.principal.memberships {
        if *role != user_key {
            out.push((role.clone(), false, None));
        }
    }
    out
}
fn pg_roles(session: &SessionCatalog) -> Result<RecordBatch> {
    let rows: Vec<Vec<V>> = visible_roles(session)
        .into_iter()
        .map(|(name, can_login, valid_until)| {
            let oid = role_oid(&name);
            vec![
                name.into(),
                (oid == OWNER_OID).into(),
                true.into(),
                false.into(),
                false.into(),
                can_login.into(),
                false.into(),
                (-1i32).into(),
                "********".into(),
                valid_until.into(),
                false.into(),
                V::Null,
                oid.into(),
            ]
        })
        .collect();
    build(&pg_roles_schema(), &rows)
}

table!(
    "pg_user",
    pg_user_schema,
    pg_user,
    [
        ("usename", Name),
        ("usesysid", Oid),
        ("usecreatedb", Bool),
        ("usesuper", Bool),
        ("userepl", Bool),
        ("usebypassrls", Bool),
        ("passwd", Text),
        ("valuntil", TimestampTz),
        ("useconfig", TextArray),
    ]
);
fn pg_user(session: &SessionCatalog) -> Result<RecordBatch> {
    let rows: Vec<Vec<V>> = visible_roles(session)
        .into_iter()
        .filter(|(_, can_login, _)| *can_login)
        .map(|(name, _, valid_until)| {
            let oid = role_oid(&name);
            vec![
                name.into(),
                oid.into(),
                false.into(),
                false.into(),
                false.into(),
                false.into(),
                "********".into(),
                valid_until.into(),
                V::Null,
            ]
        })
        .collect();
    build(&pg_user_schema(), &rows)
}

table!(
    "pg_auth_members",
    pg_auth_members_schema,
    pg_auth_members,
    [
        ("roleid", Oid),
        ("member", Oid),
        ("grantor", Oid),
        ("admin_option", Bool),
    ]
);
fn pg_auth_members(session: &SessionCatalog) -> Result<RecordBatch> {
    let pinned = session.pinned();
    let user_key = pinned.principal.user.to_lowercase();
    let rows: Vec<Vec<V>> = pinned
        .principal
        .memberships
        .iter()
        .filter(|r| **r != user_key)
        .map(|role| {
            vec![
                role_oid(role).into(),
                role_oid(&user_key).into(),
                OWNER_OID.into(),
                false.into(),
            ]
        })
        .collect();
    build(&pg_auth_members_schema(), &rows)
}

table!(
    "pg_settings",
    pg_settings_schema,
    pg_settings,
    [
        ("name", Text),
        ("setting", Text),
        ("unit", Text),
        ("category", Text),
        ("short_desc", Text),
        ("extra_desc", Text),
        ("context", Text),
        ("vartype", Text),
        ("source", Text),
        ("min_val", Text),
        ("max_val", Text),
        ("enumvals", TextArray),
        ("boot_val", Text),
        ("reset_val", Text),
        ("sourcefile", Text),
        ("sourceline", Int4),
        ("pending_restart", Bool),
    ]
);
fn pg_settings(session: &SessionCatalog) -> Result<RecordBatch> {
    let rows: Vec<Vec<V>> = session
        .settings()
        .values
        .into_iter()
        .map(|(name, value)| {
            vec![
                name.into(),
                value.clone().into(),
                V::Null,
                "Client Connection Defaults".into(),
                V::Null,
                V::Null,
                "user".into(),
                "string".into(),
                "session".into(),
                V::Null,
                V::Null,
                V::Null,
                value.clone().into(),
                value.into(),
                V::Null,
                V::Null,
                false.into(),
            ]
        })
        .collect();
    build(&pg_settings_schema(), &rows)
}

table!(
    "pg_tables",
    pg_tables_schema,
    pg_tables,
    [
        ("schemaname", Name),
        ("tablename", Name),
        ("tableowner", Name),
        ("tablespace", Name),
        ("hasindexes", Bool),
        ("hasrules", Bool),
        ("hastriggers", Bool),
        ("rowsecurity", Bool),
    ]
);
fn pg_tables(session: &SessionCatalog) -> Result<RecordBatch> {
    let rows: Vec<Vec<V>> = relations(session)
        .into_iter()
        .filter(|rel| rel.kind == 'r')
        .map(|rel| {
            vec![
                rel.schema.into(),
                rel.name.into(),
                owner_name(),
                V::Null,
                false.into(),
                false.into(),
                false.into(),
                false.into(),
            ]
        })
        .collect();
    build(&pg_tables_schema(), &rows)
}

table!(
    "pg_tablespace",
    pg_tablespace_schema,
    pg_tablespace,
    [
        ("oid", Oid),
        ("spcname", Name),
        ("spcowner", Oid),
        ("spcacl", AclArray),
        ("spcoptions", TextArray),
    ]
);
fn pg_tablespace(_session: &SessionCatalog) -> Result<RecordBatch> {
    let rows = vec![
        vec![
            1663u32.into(),
            "pg_default".into(),
            OWNER_OID.into(),
            V::Null,
            V::Null,
        ],
        vec![
            1664u32.into(),
            "pg_global".into(),
            OWNER_OID.into(),
            V::Null,
            V::Null,
        ],
    ];
    build(&pg_tablespace_schema(), &rows)
}

macro_rules! empty_table {
    ($rows_fn:ident, $schema_fn:ident, [$(($col:literal, $ty:ident)),* $(,)?]) => {
        fn $schema_fn() -> SchemaRef {
            schema(&[$(($col, Col::$ty)),*])
        }
        fn $rows_fn(_session: &SessionCatalog) -> Result<RecordBatch> {
            build(&$schema_fn(), &[])
        }
    };
}

empty_table!(
    empty_pg_attrdef,
    pg_attrdef_schema,
    [
        ("oid", Oid),
        ("adrelid", Oid),
        ("adnum", Int2),
        ("adbin", NodeTree),
    ]
);
empty_table!(
    empty_pg_constraint,
    pg_constraint_schema,
    [
        ("oid", Oid),
        ("conname", Name),
        ("connamespace", Oid),
        ("contype", Char),
        ("condeferrable", Bool),
        ("condeferred", Bool),
        ("convalidated", Bool),
        ("conrelid", Oid),
        ("contypid", Oid),
        ("conindid", Oid),
        ("conparentid", Oid),
        ("confrelid", Oid),
        ("confupdtype", Char),
        ("confdeltype", Char),
        ("confmatchtype", Char),
        ("conislocal", Bool),
        ("coninhcount", Int4),
        ("connoinherit", Bool),
        ("conkey", Int2Array),
        ("confkey", Int2Array),
        ("conpfeqop", OidArray),
        ("conppeqop", OidArray),
        ("conffeqop", OidArray),
        ("confdelsetcols", Int2Array),
        ("conexclop", OidArray),
        ("conbin", NodeTree),
    ]
);
empty_table!(
    empty_pg_description,
    pg_description_schema,
    [
        ("objoid", Oid),
        ("classoid", Oid),
        ("objsubid", Int4),
        ("description", Text),
    ]
);
empty_table!(
    empty_pg_enum,
    pg_enum_schema,
    [
        ("oid", Oid),
        ("enumtypid", Oid),
        ("enumsortorder", Float4),
        ("enumlabel", Name),
    ]
);
empty_table!(
    empty_pg_extension,
    pg_extension_schema,
    [
        ("oid", Oid),
        ("extname", Name),
        ("extowner", Oid),
        ("extnamespace", Oid),
        ("extrelocatable", Bool),
        ("extversion", Text),
        ("extconfig", OidArray),
        ("extcondition", TextArray),
    ]
);
empty_table!(
    empty_pg_foreign_table,
    pg_foreign_table_schema,
    [
        ("ftrelid", Oid),
        ("ftserver", Oid),
        ("ftoptions", TextArray),
    ]
);
empty_table!(
    empty_pg_index,
    pg_index_schema,
    [
        ("indexrelid", Oid),
        ("indrelid", Oid),
        ("indnatts", Int2),
        ("indnkeyatts", Int2),
        ("indisunique", Bool),
        ("indnullsnotdistinct", Bool),
        ("indisprimary", Bool),
        ("indisexclusion", Bool),
        ("indimmediate", Bool),
        ("indisclustered", Bool),
        ("indisvalid", Bool),
        ("indcheckxmin", Bool),
        ("indisready", Bool),
        ("indislive", Bool),
        ("indisreplident", Bool),
        ("indkey", Int2Vector),
        ("indcollation", OidVector),
        ("indclass", OidVector),
        ("indoption", Int2Vector),
        ("indexprs", NodeTree),
        ("indpred", NodeTree),
    ]
);
empty_table!(
    empty_pg_inherits,
    pg_inherits_schema,
    [
        ("inhrelid", Oid),
        ("inhparent", Oid),
        ("inhseqno", Int4),
        ("inhdetachpending", Bool),
    ]
);
empty_table!(
    empty_pg_matviews,
    pg_matviews_schema,
    [
        ("schemaname", Name),
        ("matviewname", Name),
        ("matviewowner", Name),
        ("tablespace", Name),
        ("hasindexes", Bool),
        ("ispopulated", Bool),
        ("definition", Text),
    ]
);
empty_table!(
    empty_pg_policy,
    pg_policy_schema,
    [
        ("oid", Oid),
        ("polname", Name),
        ("polrelid", Oid),
        ("polcmd", Char),
        ("polpermissive", Bool),
        ("polroles", OidArray),
        ("polqual", NodeTree),
        ("polwithcheck", NodeTree),
    ]
);
empty_table!(
    empty_pg_publication,
    pg_publication_schema,
    [
        ("oid", Oid),
        ("pubname", Name),
        ("pubowner", Oid),
        ("puballtables", Bool),
        ("pubinsert", Bool),
        ("pubupdate", Bool),
        ("pubdelete", Bool),
        ("pubtruncate", Bool),
        ("pubviaroot", Bool),
    ]
);
empty_table!(
    empty_pg_publication_namespace,
    pg_publication_namespace_schema,
    [("oid", Oid), ("pnpubid", Oid), ("pnnspid", Oid),]
);
empty_table!(
    empty_pg_publication_rel,
    pg_publication_rel_schema,
    [
        ("oid", Oid),
        ("prpubid", Oid),
        ("prrelid", Oid),
        ("prqual", NodeTree),
        ("prattrs", Int2Vector),
    ]
);
empty_table!(
    empty_pg_rewrite,
    pg_rewrite_schema,
    [
        ("oid", Oid),
        ("rulename", Name),
        ("ev_class", Oid),
        ("ev_type", Char),
        ("ev_enabled", Char),
        ("is_instead", Bool),
        ("ev_qual", NodeTree),
        ("ev_action", NodeTree),
    ]
);
empty_table!(
    empty_pg_statistic_ext,
    pg_statistic_ext_schema,
    [
        ("oid", Oid),
        ("stxrelid", Oid),
        ("stxname", Name),
        ("stxnamespace", Oid),
        ("stxowner", Oid),
        ("stxstattarget", Int4),
        ("stxkeys", Int2Vector),
        ("stxkind", TextArray),
        ("stxexprs", NodeTree),
    ]
);
empty_table!(
    empty_pg_trigger,
    pg_trigger_schema,
    [
        ("oid", Oid),
        ("tgrelid", Oid),
        ("tgparentid", Oid),
        ("tgname", Name),
        ("tgfoid", Oid),
        ("tgtype", Int2),
        ("tgenabled", Char),
        ("tgisinternal", Bool),
        ("tgconstrrelid", Oid),
        ("tgconstrindid", Oid),
        ("tgconstraint", Oid),
        ("tgdeferrable", Bool),
        ("tginitdeferred", Bool),
        ("tgnargs", Int2),
        ("tgattr", Int2Vector),
        ("tgargs", Text),
        ("tgqual", NodeTree),
        ("tgoldtable", Name),
        ("tgnewtable", Name),
    ]
);
empty_table!(
    empty_pg_views,
    pg_views_schema,
    [
        ("schemaname", Name),
        ("viewname", Name),
        ("viewowner", Name),
        ("definition", Text),
    ]
);
empty_table!(
    empty_pg_sequence,
    pg_sequence_schema,
    [
        ("seqrelid", Oid),
        ("seqtypid", Oid),
        ("seqstart", Int8),
        ("seqincrement", Int8),
        ("seqmax", Int8),
        ("seqmin", Int8),
        ("seqcache", Int8),
        ("seqcycle", Bool),
    ]
);
empty_table!(
    empty_pg_opclass,
    pg_opclass_schema,
    [
        ("oid", Oid),
        ("opcmethod", Oid),
        ("opcname", Name),
        ("opcnamespace", Oid),
        ("opcowner", Oid),
        ("opcfamily", Oid),
        ("opcintype", Oid),
        ("opcdefault", Bool),
        ("opckeytype", Oid),
    ]
);
