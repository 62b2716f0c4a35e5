//! The PostgreSQL system catalogs clients introspect: `pg_catalog` and `information_schema`.
//!
//! Both are generated schemas ([`GeneratedSchema`]) handed to the catalog when the server is
//! assembled; their rows are built from the session's pinned, policy-filtered view
//! ([`SessionCatalog`](crate::catalog::session::SessionCatalog)), so an invisible table is
//! invisible to every metadata query too.
//!
//! - [`pg_catalog`]: `pg_class`, `pg_attribute`, `pg_type`, `pg_proc`, `pg_namespace`, ...
//! - [`information_schema`]: `tables`, `columns`, `schemata`, `character_sets`, ...

pub mod information_schema;
pub mod pg_catalog;

use crate::catalog::session::GeneratedSchema;

/// Namespace OID of `pg_catalog` (PostgreSQL's).
pub const PG_CATALOG_OID: u32 = 11;
/// Namespace OID of `information_schema`.
pub const INFORMATION_SCHEMA_OID: u32 = 13000;
/// OID of the role that owns every object (PostgreSQL's bootstrap superuser OID).
pub const OWNER_OID: u32 = 10;
/// Name of that role.
pub const OWNER_NAME: &str = "lakehouse";
/// `pg_am` OID of `heap`.
pub const HEAP_AM_OID: u32 = 2;

/// `pg_catalog`: searched before `search_path`, as in PostgreSQL.
pub static PG_CATALOG: GeneratedSchema = GeneratedSchema {
    name: "pg_catalog",
    tables: pg_catalog::TABLES,
    empty: pg_catalog::EMPTY,
    searched_first: true,
    governed: false,
};

/// `information_schema`.
pub static INFORMATION_SCHEMA: GeneratedSchema = GeneratedSchema {
    name: "information_schema",
    tables: information_schema::TABLES,
    empty: information_schema::EMPTY,
    searched_first: false,
    governed: false,
};

/// The schemas this emulation adds to every session.
pub fn schemas() -> [&'static GeneratedSchema; 2] {
    [&PG_CATALOG, &INFORMATION_SCHEMA]
}
