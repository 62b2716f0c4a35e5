//! What one connected user sees: a DataFusion catalog tree filtered by that user's privileges
//! and pinned, statement by statement, to one catalog state and one policy.
//!
//! Tables the user may not select do not exist here (planning fails with "relation does not
//! exist", 42P01), in `information_schema` and `pg_catalog` alike. Visibility is the first line;
//! the plan-level enforcement in `sql` is the second and decides columns, filters and masks.

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{
    CatalogProvider, CatalogProviderList, SchemaProvider, Session, TableProvider,
};
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use parking_lot::RwLock;

use super::registry::{CatalogState, Registry, TableEntry, TableStatus};
use crate::audit::AuditLog;
use crate::policy::{PolicySnapshot, PolicyStore, Principal, TableAccess};

/// Lowercase name under which DataFusion sees the database.
pub const CATALOG_NAME: &str = "ikhospital_dw";

/// Name of the virtual schema that resolves unqualified table names through `search_path`.
/// It is the session's default schema and is never listed.
pub const SEARCH_PATH_SCHEMA: &str = "$search_path";

/// Everything a statement reads about the catalog and the policy, captured once at its start.
#[derive(Debug, Clone)]
pub struct Pinned {
    /// The catalog state.
    pub catalog: Arc<CatalogState>,
    /// The policy.
    pub policy: Arc<PolicySnapshot>,
    /// The user with their roles under that policy.
    pub principal: Principal,
}

impl Pinned {
    /// What the principal may read of a table.
    pub fn access(&self, entry: &TableEntry) -> TableAccess {
        self.policy.policy.table_access(
            &self.principal,
            &entry.schema,
            &entry.name,
            &entry.column_names(),
        )
    }

    /// Whether the principal can see the table at all.
    pub fn table_visible(&self, entry: &TableEntry) -> bool {
        match &entry.status {
            TableStatus::Ready(_) => self.access(entry).visible(),
            // A broken table has no known columns: show it if the table itself is granted, so
            // the user gets the real error rather than "does not exist".
            TableStatus::Broken(_) => self
                .policy
                .policy
                .table_access(
                    &self.principal,
                    &entry.schema,
                    &entry.name,
                    &["*".to_string()],
                )
                .visible(),
        }
    }

    /// Whether the principal can see a schema of lake tables.
    pub fn schema_visible(&self, schema: &str) -> bool {
        self.catalog.schemas.contains(schema)
            && (self.policy.policy.schema_granted(&self.principal, schema)
                || self
                    .catalog
                    .tables_in(schema)
                    .any(|entry| self.table_visible(entry)))
    }

    /// Whether the principal can see a generated table: always, unless its schema is governed
    /// (`sys`), where the policy must grant it.
    pub fn generated_table_visible(&self, schema: &GeneratedSchema, def: &SystemTableDef) -> bool {
        if !schema.governed {
            return true;
        }
        let columns: Vec<String> = (def.schema)()
            .fields()
            .iter()
            .map(|field| field.name().clone())
            .collect();
        self.policy
            .policy
            .table_access(&self.principal, schema.name, def.name, &columns)
            .visible()
    }

    /// Whether the principal can see a generated schema (a governed one needs a visible table).
    pub fn generated_visible(&self, schema: &GeneratedSchema) -> bool {
        !schema.governed
            || schema
                .tables
                .iter()
                .any(|def| self.generated_table_visible(schema, def))
    }
}

/// Session settings the catalogs depend on.
#[derive(Debug, Clone)]
pub struct CatalogSettings {
    /// Schemas searched for unqualified names, in order (`pg_catalog` is always searched first).
    pub search_path: Vec<String>,
    /// Every session setting by name (what `SHOW` and `pg_settings` report).
    pub values: std::collections::BTreeMap<String, String>,
}

impl Default for CatalogSettings {
    fn default() -> Self {
        CatalogSettings {
            search_path: vec!["dbo".to_string()],
            values: Default::default(),
        }
    }
}

/// The per-connection catalog: registry + policy + user, pinned per statement.
#[derive(Debug)]
pub struct SessionCatalog {
    registry: Arc<Registry>,
    policies: Arc<PolicyStore>,
    user: String,
    pinned: RwLock<Arc<Pinned>>,
    settings: RwLock<CatalogSettings>,
    /// Shared system state (audit log, server facts) for the system tables.
    system: Arc<SystemContext>,
}

/// The user of a session is no longer allowed to log in (removed, disabled or expired).
#[derive(Debug, thiserror::Error)]
#[error("user \"{0}\" no longer exists or is not allowed to log in")]
pub struct LoginRevoked(pub String);

impl SessionCatalog {
    /// A catalog for `user`, pinned to the current state.
    pub fn new(
        registry: Arc<Registry>,
        policies: Arc<PolicyStore>,
        user: &str,
        system: Arc<SystemContext>,
    ) -> std::result::Result<Arc<SessionCatalog>, LoginRevoked> {
        let pinned = pin(&registry, &policies, user)?;
        Ok(Arc::new(SessionCatalog {
            registry,
            policies,
            user: user.to_string(),
            pinned: RwLock::new(Arc::new(pinned)),
            settings: RwLock::new(CatalogSettings::default()),
            system,
        }))
    }

    /// Captures the current catalog state and policy for the next statement.
    pub fn pin(&self) -> std::result::Result<Arc<Pinned>, LoginRevoked> {
        let pinned = Arc::new(pin(&self.registry, &self.policies, &self.user)?);
        *self.pinned.write() = pinned.clone();
        Ok(pinned)
    }

    /// What the current statement sees.
    pub fn pinned(&self) -> Arc<Pinned> {
        self.pinned.read().clone()
    }

    /// The session's user as named in the policy.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The registry.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Shared system state.
    pub fn system(&self) -> &Arc<SystemContext> {
        &self.system
    }

    /// Whether this user can see the schema called `name` (lake or generated).
    pub fn schema_visible(&self, name: &str) -> bool {
        let pinned = self.pinned();
        match self.system.schema(name) {
            Some(generated) => pinned.generated_visible(generated),
            None => pinned.schema_visible(name),
        }
    }

    /// The generated schemas this user can see, in order.
    pub fn visible_generated(&self) -> Vec<&'static GeneratedSchema> {
        let pinned = self.pinned();
        (self.system.schemas.iter().copied())
            .filter(|schema| pinned.generated_visible(schema))
            .collect()
    }

    /// Current settings.
    pub fn settings(&self) -> CatalogSettings {
        self.settings.read().clone()
    }

    /// Sets `search_path` (lowercase schema names; `$user` is kept as written).
    pub fn set_search_path(&self, search_path: Vec<String>) {
        self.settings.write().search_path = search_path;
    }

    /// Replaces the setting values shown by `pg_settings`.
    pub fn set_values(&self, values: std::collections::BTreeMap<String, String>) {
        self.settings.write().values = values;
    }

    /// Schemas of `search_path` that exist and are visible, in order (`current_schemas(false)`).
    pub fn effective_search_path(&self) -> Vec<String> {
        let user = self.user.to_lowercase();
        self.settings
            .read()
            .search_path
            .iter()
            .map(|s| {
                if s == "$user" {
                    user.clone()
                } else {
                    s.clone()
                }
            })
            .filter(|s| self.schema_visible(s))
            .collect()
    }

    /// The provider for `schema.table` as this user sees it right now.
    pub fn lake_table(&self, schema: &str, table: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let pinned = self.pinned();
        let Some(entry) = pinned.catalog.table(schema, table) else {
            return Ok(None);
        };
        if !pinned.table_visible(entry) {
            return Ok(None);
        }
        match &entry.status {
            TableStatus::Ready(ready) => {
                // Only the columns the user may read exist for them: `SELECT *` expands to
                // those, and naming another column is "column does not exist".
                let access = pinned.access(entry);
                // Instants enter a query labelled with the session time zone (`sql::zone`);
                // the policy plan that replaces this table casts them the same way.
                let zone = (self.settings.read().values.get("TimeZone").cloned())
                    .filter(|zone| zone != crate::sql::zone::UTC);
                let fields: Vec<_> =
                    ready
                        .schema
                        .fields()
                        .iter()
                        .zip(access.columns.iter())
                        .filter(|(_, access)| **access != crate::policy::ColumnAccess::Denied)
                        .map(|(field, access)| {
                            if matches!(access, crate::policy::ColumnAccess::Masked(..)) {
                                // A mask may produce NULL for a NOT NULL column.
                                Arc::new(field.as_ref().clone().with_nullable(true))
                            } else if let Some(zone) = &zone
                                && matches!(field.data_type(), DataType::Timestamp(_, Some(_)))
                            {
                                Arc::new(field.as_ref().clone().with_data_type(
                                    crate::sql::zone::relabel(field.data_type(), zone),
                                ))
                            } else {
                                field.clone()
                            }
                        })
                        .collect();
                Ok(Some(Arc::new(GovernedTable {
                    entry: entry.clone(),
                    schema: Arc::new(datafusion::arrow::datatypes::Schema::new(fields)),
                })))
            }
            TableStatus::Broken(reason) => {
                Err(DataFusionError::External(Box::new(TableUnavailable {
                    table: format!("{}.{}", entry.schema, entry.name),
                    reason: reason.clone(),
                })))
            }
        }
    }
}

fn pin(
    registry: &Registry,
    policies: &PolicyStore,
    user: &str,
) -> std::result::Result<Pinned, LoginRevoked> {
    let policy = policies.load();
    let now = chrono::Utc::now().timestamp_micros();
    // Demo passwords are checked at login; here only existence, enabled and expiry matter.
    let (_, principal) = policy
        .policy
        .check_login(user, now, true)
        .map_err(|_| LoginRevoked(user.to_string()))?;
    Ok(Pinned {
        catalog: registry.snapshot(),
        policy,
        principal,
    })
}

/// A table that exists but cannot be read right now.
#[derive(Debug, thiserror::Error)]
#[error("table \"{table}\" is not available: {reason}")]
pub struct TableUnavailable {
    /// `schema.table`.
    pub table: String,
    /// Why.
    pub reason: String,
}

/// A catalog tree holding one catalog, the database, under [`CATALOG_NAME`]; read-only.
#[derive(Debug, Clone)]
pub struct DatabaseList(Arc<dyn CatalogProvider>);

impl DatabaseList {
    /// The catalog tree DataFusion plans a session's statements against.
    pub fn session(session: Arc<SessionCatalog>) -> DatabaseList {
        DatabaseList(Arc::new(DatabaseCatalog(session)))
    }

    /// A tree around another view of the database (the policy's unrestricted one).
    pub fn of(database: Arc<dyn CatalogProvider>) -> DatabaseList {
        DatabaseList(database)
    }
}

impl CatalogProviderList for DatabaseList {
    fn register_catalog(
        &self,
        _name: String,
        _catalog: Arc<dyn CatalogProvider>,
    ) -> Option<Arc<dyn CatalogProvider>> {
        // Read-only server: the catalog tree is not changed by sessions.
        None
    }

    fn catalog_names(&self) -> Vec<String> {
        vec![CATALOG_NAME.to_string()]
    }

    fn catalog(&self, name: &str) -> Option<Arc<dyn CatalogProvider>> {
        name.eq_ignore_ascii_case(CATALOG_NAME)
            .then(|| self.0.clone())
    }
}

/// The `IKHOSPITAL_DW` database.
#[derive(Debug)]
struct DatabaseCatalog(Arc<SessionCatalog>);

impl CatalogProvider for DatabaseCatalog {
    fn schema_names(&self) -> Vec<String> {
        let pinned = self.0.pinned();
        let mut names: Vec<String> = pinned
            .catalog
            .schemas
            .iter()
            .filter(|s| pinned.schema_visible(s))
            .cloned()
            .collect();
        names.extend((self.0.visible_generated().iter()).map(|schema| schema.name.to_string()));
        names.sort();
        names
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        let session = self.0.clone();
        if let Some(generated) = session.system.schema(name) {
            return Some(Arc::new(SystemSchema::new(generated, session)));
        }
        match name {
            SEARCH_PATH_SCHEMA => Some(Arc::new(SearchPathSchema(session))),
            other => {
                let pinned = session.pinned();
                pinned
                    .catalog
                    .schemas
                    .contains(other)
                    .then(|| Arc::new(LakeSchema(session, other.to_string())) as _)
            }
        }
    }

    fn register_schema(
        &self,
        _name: &str,
        _schema: Arc<dyn SchemaProvider>,
    ) -> Result<Option<Arc<dyn SchemaProvider>>> {
        Err(DataFusionError::Plan(
            "cannot create schemas: the server is read-only".to_string(),
        ))
    }
}

/// A schema of lake tables (`dbo`).
#[derive(Debug)]
struct LakeSchema(Arc<SessionCatalog>, String);

#[async_trait]
impl SchemaProvider for LakeSchema {
    fn table_names(&self) -> Vec<String> {
        let pinned = self.0.pinned();
        pinned
            .catalog
            .tables_in(&self.1)
            .filter(|entry| pinned.table_visible(entry))
            .map(|entry| entry.name.clone())
            .collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        self.0.lake_table(&self.1, name)
    }

    fn table_exist(&self, name: &str) -> bool {
        let pinned = self.0.pinned();
        pinned
            .catalog
            .table(&self.1, name)
            .is_some_and(|entry| pinned.table_visible(entry))
    }

    fn register_table(
        &self,
        _name: String,
        _table: Arc<dyn TableProvider>,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        Err(DataFusionError::Plan(
            "cannot create tables: the server is read-only".to_string(),
        ))
    }
}

/// Resolves unqualified names: `pg_catalog` first, as PostgreSQL does, then `search_path`.
#[derive(Debug)]
struct SearchPathSchema(Arc<SessionCatalog>);

#[async_trait]
impl SchemaProvider for SearchPathSchema {
    fn table_names(&self) -> Vec<String> {
        Vec::new()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let system = &self.0.system;
        for generated in system.schemas.iter().filter(|schema| schema.searched_first) {
            let schema = SystemSchema::new(generated, self.0.clone());
            if let Some(table) = schema.table(name).await? {
                return Ok(Some(table));
            }
        }
        for schema in self.0.effective_search_path() {
            if let Some(generated) = system.schema(&schema) {
                let schema = SystemSchema::new(generated, self.0.clone());
                if let Some(table) = schema.table(name).await? {
                    return Ok(Some(table));
                }
                continue;
            }
            if let Some(table) = self.0.lake_table(&schema, name)? {
                return Ok(Some(table));
            }
        }
        Ok(None)
    }

    fn table_exist(&self, _name: &str) -> bool {
        false
    }
}

/// A lake table as a user sees it: the columns they may read, and the catalog entry (with the
/// pinned version) it stands for. It cannot be scanned: `sql::enforce` replaces every scan of it
/// with the policy's plan, and a scan that escaped that rewrite fails instead of reading data.
#[derive(Debug)]
pub struct GovernedTable {
    /// Catalog entry (schema, name, OID, version).
    pub entry: Arc<TableEntry>,
    schema: SchemaRef,
}

impl GovernedTable {
    /// Finds the governed table behind a provider, if it is one.
    pub fn from_provider(provider: &dyn TableProvider) -> Option<&GovernedTable> {
        let any: &dyn Any = provider;
        any.downcast_ref::<GovernedTable>()
    }

    /// The Delta version this table is pinned to.
    pub fn version(&self) -> Option<u64> {
        match &self.entry.status {
            TableStatus::Ready(ready) => ready.version,
            TableStatus::Broken(_) => None,
        }
    }
}

#[async_trait]
impl TableProvider for GovernedTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        _projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // Fail closed: reaching this means the policy rewrite did not run on this scan.
        Err(DataFusionError::Internal(format!(
            "unenforced scan of {}.{}",
            self.entry.schema, self.entry.name
        )))
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![
            TableProviderFilterPushDown::Unsupported;
            filters.len()
        ])
    }

    async fn insert_into(
        &self,
        _state: &dyn Session,
        _input: Arc<dyn ExecutionPlan>,
        _insert_op: InsertOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Err(DataFusionError::Plan(
            "cannot write: the server is read-only".to_string(),
        ))
    }
}

/// Process-wide facts the generated tables show, and the generated schemas every session
/// serves besides the lake's: our `sys`, and what a front end emulates (`pg_catalog` and
/// `information_schema` for the PostgreSQL wire). Given by whoever assembles the server, so the
/// catalog depends on neither.
#[derive(Debug)]
pub struct SystemContext {
    /// The audit log kept in memory.
    pub audit: Arc<AuditLog>,
    /// `server_version` reported to clients.
    pub server_version: String,
    /// When the server started (Unix microseconds).
    pub started_at: i64,
    /// The generated schemas, in the order they are listed.
    pub schemas: Vec<&'static GeneratedSchema>,
}

impl SystemContext {
    /// A context with an empty audit log, serving `schemas`.
    pub fn new(
        audit: Arc<AuditLog>,
        server_version: &str,
        schemas: Vec<&'static GeneratedSchema>,
    ) -> SystemContext {
        SystemContext {
            audit,
            server_version: server_version.to_string(),
            started_at: chrono::Utc::now().timestamp_micros(),
            schemas,
        }
    }

    /// The generated schema called `name`.
    pub fn schema(&self, name: &str) -> Option<&'static GeneratedSchema> {
        self.schemas
            .iter()
            .copied()
            .find(|schema| schema.name == name)
    }
}

/// A schema of generated tables.
pub struct GeneratedSchema {
    /// Schema name.
    pub name: &'static str,
    /// Its tables.
    pub tables: &'static [SystemTableDef],
    /// Tables with no rows by construction (see [`EmptySystemRelations`](crate::catalog::system::EmptySystemRelations)).
    pub empty: &'static [&'static str],
    /// Whether unqualified names resolve here before `search_path` (PostgreSQL's `pg_catalog`).
    pub searched_first: bool,
    /// Whether a table is visible only when the policy grants it (`sys`); otherwise every
    /// session sees every table, whose rows are filtered by what the session may see.
    pub governed: bool,
}

impl std::fmt::Debug for GeneratedSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GeneratedSchema({})", self.name)
    }
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

/// A generated schema of one session.
#[derive(Debug)]
pub struct SystemSchema {
    defs: &'static GeneratedSchema,
    session: Arc<SessionCatalog>,
}

impl SystemSchema {
    /// `defs` for a session.
    pub fn new(defs: &'static GeneratedSchema, session: Arc<SessionCatalog>) -> SystemSchema {
        SystemSchema { defs, session }
    }

    fn defs(&self) -> &'static [SystemTableDef] {
        self.defs.tables
    }

    fn visible(&self, name: &str) -> bool {
        let pinned = self.session.pinned();
        self.defs
            .tables
            .iter()
            .any(|def| def.name == name && pinned.generated_table_visible(self.defs, def))
    }
}

#[async_trait]
impl SchemaProvider for SystemSchema {
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
                    defs: self.defs,
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
    /// The schema it belongs to.
    defs: &'static GeneratedSchema,
    /// Its name.
    pub name: &'static str,
    schema: SchemaRef,
    rows: fn(&SessionCatalog) -> Result<RecordBatch>,
    session: Arc<SessionCatalog>,
}

impl std::fmt::Debug for SystemTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SystemTable({}.{})", self.defs.name, self.name)
    }
}

impl SystemTable {
    /// Finds the system table behind a provider, if it is one.
    pub fn from_provider(provider: &dyn TableProvider) -> Option<&SystemTable> {
        let any: &dyn Any = provider;
        any.downcast_ref::<SystemTable>()
    }
}

impl SystemTable {
    /// Whether this relation has no rows by construction: it describes things this server
    /// does not have (constraints, indexes, triggers, rules, policies, publications).
    pub fn empty_by_construction(&self) -> bool {
        self.defs.empty.contains(&self.name)
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
