//! The system catalogs clients introspect: `pg_catalog`, `information_schema` and our `sys`.
//!
//! Every table is generated at scan time from the statement's pinned catalog state and policy,
//! so it always agrees with what the same statement can query, and shows only what the user may
//! select. Nothing here is keyed on query text: clients get real relations they can join,
//! filter and aggregate like any other.
//!
//! - [`rows`]: a small typed row builder (PostgreSQL column types on Arrow arrays).
//! - [`pg_catalog`]: `pg_class`, `pg_attribute`, `pg_type`, `pg_proc`, `pg_namespace`, ...
//! - [`information_schema`]: `tables`, `columns`, `schemata`, `character_sets`, ...
//! - [`sys`]: `sys.audit_log` and friends.

pub mod information_schema;
pub mod pg_catalog;
pub mod rows;
pub mod sys;

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::default_table_source::source_as_provider;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::logical_expr::{EmptyRelation, Expr, LogicalPlan};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};
use datafusion::physical_plan::ExecutionPlan;

use super::session::SessionCatalog;
pub use sys::{AuditLog, AuditRecord, SYS_TABLES};

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

/// Process-wide facts the system tables show.
#[derive(Debug)]
pub struct SystemContext {
    /// The audit log kept in memory.
    pub audit: Arc<AuditLog>,
    /// `server_version` reported to clients.
    pub server_version: String,
    /// When the server started (Unix microseconds).
    pub started_at: i64,
}

impl SystemContext {
    /// A context with an empty audit log.
    pub fn new(audit: Arc<AuditLog>) -> SystemContext {
        SystemContext {
            audit,
            server_version: crate::pg::types::SERVER_VERSION.to_string(),
            started_at: chrono::Utc::now().timestamp_micros(),
        }
    }
}

/// Which system schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemKind {
    /// `pg_catalog`.
    PgCatalog,
    /// `information_schema`.
    InformationSchema,
    /// `sys`.
    Sys,
}

/// A generated table: its schema and the function that builds its rows for a session.
pub struct SystemTableDef {
    /// Table name.
    pub name: &'static str,
    /// Arrow schema (with `pg_type` field metadata where PostgreSQL's type is not Arrow's).
    pub schema: fn() -> SchemaRef,
    /// Builds the rows.
    pub rows: fn(&SessionCatalog) -> Result<RecordBatch>,
}

/// A system schema of one session.
#[derive(Debug)]
pub struct SystemSchema {
    kind: SystemKind,
    session: Arc<SessionCatalog>,
}

impl SystemSchema {
    /// `pg_catalog` for a session.
    pub fn pg_catalog(session: Arc<SessionCatalog>) -> SystemSchema {
        SystemSchema {
            kind: SystemKind::PgCatalog,
            session,
        }
    }

    /// `information_schema` for a session.
    pub fn information_schema(session: Arc<SessionCatalog>) -> SystemSchema {
        SystemSchema {
            kind: SystemKind::InformationSchema,
            session,
        }
    }

    /// `sys` for a session.
    pub fn sys(session: Arc<SessionCatalog>) -> SystemSchema {
        SystemSchema {
            kind: SystemKind::Sys,
            session,
        }
    }

    fn defs(&self) -> &'static [SystemTableDef] {
        defs_of(self.kind)
    }

    fn visible(&self, name: &str) -> bool {
        match self.kind {
            SystemKind::Sys => {
                let pinned = self.session.pinned();
                SYS_TABLES.iter().any(|(table, columns)| {
                    *table == name
                        && pinned
                            .policy
                            .policy
                            .table_access(
                                &pinned.principal,
                                crate::policy::SYSTEM_SCHEMA,
                                table,
                                &columns.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
                            )
                            .visible()
                })
            }
            _ => true,
        }
    }
}

/// The table definitions of a system schema.
pub fn defs_of(kind: SystemKind) -> &'static [SystemTableDef] {
    match kind {
        SystemKind::PgCatalog => pg_catalog::TABLES,
        SystemKind::InformationSchema => information_schema::TABLES,
        SystemKind::Sys => sys::TABLES,
    }
}

#[async_trait]
impl datafusion::catalog::SchemaProvider for SystemSchema {
    fn table_names(&self) -> Vec<String> {
        self.defs()
            .iter()
            .filter(|def| self.visible(def.name))
            .map(|def| def.name.to_string())
            .collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        Ok(self
            .defs()
            .iter()
            .find(|def| def.name == name && self.visible(def.name))
            .map(|def| {
                Arc::new(SystemTable {
                    kind: self.kind,
                    name: def.name,
                    schema: (def.schema)(),
                    rows: def.rows,
                    session: self.session.clone(),
                }) as Arc<dyn TableProvider>
            }))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.defs()
            .iter()
            .any(|def| def.name == name && self.visible(def.name))
    }
}

/// A system table bound to a session; rows are built when the scan is planned.
pub struct SystemTable {
    /// Which schema it belongs to.
    pub kind: SystemKind,
    /// Its name.
    pub name: &'static str,
    schema: SchemaRef,
    rows: fn(&SessionCatalog) -> Result<RecordBatch>,
    session: Arc<SessionCatalog>,
}

impl std::fmt::Debug for SystemTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SystemTable({:?}.{})", self.kind, self.name)
    }
}

impl SystemTable {
    /// Finds the system table behind a provider, if it is one.
    pub fn from_provider(provider: &dyn TableProvider) -> Option<&SystemTable> {
        let any: &dyn std::any::Any = provider;
        any.downcast_ref::<SystemTable>()
    }
}

impl SystemTable {
    /// Whether this relation has no rows by construction: it describes things this server
    /// does not have (constraints, indexes, triggers, rules, policies, publications).
    pub fn empty_by_construction(&self) -> bool {
        match self.kind {
            SystemKind::PgCatalog => pg_catalog::EMPTY.contains(&self.name),
            SystemKind::InformationSchema => information_schema::EMPTY.contains(&self.name),
            SystemKind::Sys => false,
        }
    }
}

/// Replaces scans of relations that are empty by construction with an empty relation, so that
/// the optimizer drops what is planned on top of them. psql's `\d+` joins `pg_policy` and
/// `pg_publication_rel` with correlated subqueries DataFusion cannot execute (`ARRAY(... WHERE
/// oid = ANY(pol.polroles))`, `generate_series(0, array_upper(pr.prattrs, 1))`); over no rows
/// there is nothing to execute, as in PostgreSQL.
#[derive(Debug, Default)]
pub struct EmptySystemRelations;

impl OptimizerRule for EmptySystemRelations {
    fn name(&self) -> &str {
        "lakehouse_empty_system_relations"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::TableScan(scan) = &plan else {
            return Ok(Transformed::no(plan));
        };
        let empty = source_as_provider(&scan.source)
            .ok()
            .is_some_and(|provider| {
                SystemTable::from_provider(provider.as_ref())
                    .is_some_and(SystemTable::empty_by_construction)
            });
        if !empty {
            return Ok(Transformed::no(plan));
        }
        Ok(Transformed::yes(LogicalPlan::EmptyRelation(
            EmptyRelation {
                produce_one_row: false,
                schema: scan.projected_schema.clone(),
            },
        )))
    }
}

#[async_trait]
impl TableProvider for SystemTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let batch = (self.rows)(&self.session)?;
        if batch.schema().fields() != self.schema.fields() {
            return Err(DataFusionError::Internal(format!(
                "system table {} built rows of the wrong shape",
                self.name
            )));
        }
        let exec = MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            self.schema.clone(),
            projection.cloned(),
        )?;
        Ok(exec)
    }
}
