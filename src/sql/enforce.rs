//! Enforcement of grants, row filters and masks on the resolved logical plan.
//!
//! A user's plan can only reference lake tables through [`GovernedTable`], whose schema holds
//! just the columns the user may read and whose `scan` always fails: a scan that was not
//! rewritten here can never run. This pass replaces every governed scan (in the main plan, in
//! subqueries, CTEs, set operations, everywhere) with
//!
//! ```text
//! SubqueryAlias(<the user's name for the table>)
//!   Projection(allowed columns, masked columns as their mask expression)
//!     SecurityBarrier                      -- only when row filters apply
//!       Filter(row filter AND row filter ...)
//!         TableScan(PolicyTable)
//! ```
//!
//! planned from SQL against the statement's pinned catalog with definer rights (subqueries in
//! row filters read tables unfiltered). Consequences:
//! - masks replace the column at the scan, so every filter, join, grouping or ordering on a
//!   masked column only sees the masked value: no oracle;
//! - the [`SecurityBarrier`] stops the optimizer from moving the user's predicates below the row
//!   filter, so a user's expression never runs on a hidden row (an error raised by `1/0` on a
//!   hidden row would otherwise tell that the row exists);
//! - nothing here looks at statement text.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::{CatalogProvider, SchemaProvider, Session, TableProvider};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchemaRef, DataFusionError, Result, Statistics};
use datafusion::datasource::TableType;
use datafusion::datasource::source_as_provider;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::{QueryPlanner, SessionState, TaskContext};
use datafusion::logical_expr::{
    Expr, Extension, LogicalPlan, SubqueryAlias, TableProviderFilterPushDown,
    UserDefinedLogicalNode, UserDefinedLogicalNodeCore,
};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SendableRecordBatchStream,
};
use datafusion::physical_planner::{DefaultPhysicalPlanner, ExtensionPlanner, PhysicalPlanner};
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use super::error::{QueryError, code};
use crate::catalog::registry::{CatalogState, TableEntry, TableStatus};
use crate::catalog::session::{CATALOG_NAME, DatabaseList, GovernedTable, Pinned, SystemTable};
use crate::policy::{ColumnAccess, MaskFunction, MaskKind, TableAccess};

/// What a statement read, for the audit trail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessReport {
    /// `schema.table` of every lake table read.
    pub tables: BTreeSet<String>,
    /// Tables whose row filters were applied.
    pub row_filters: BTreeSet<String>,
    /// `schema.table.column` of every masked column exposed.
    pub masks: BTreeSet<String>,
    /// Delta version of each table read.
    pub versions: BTreeMap<String, u64>,
    /// Every table read with its version and location (empty for a plan without tables),
    /// when the answer depends on nothing else the catalog knows (only versioned lake tables,
    /// no system tables); `None` keeps the answer out of the result cache.
    pub cache_tag: Option<String>,
    /// A mask reads other tables (a subquery in its expression): EXPLAIN ANALYZE of a governed
    /// user would show what it read.
    pub mask_subqueries: bool,
}

impl AccessReport {
    /// Whether any row filter applies (EXPLAIN ANALYZE is refused then: its row counts would
    /// tell how many rows the filter hid).
    pub fn has_row_filters(&self) -> bool {
        !self.row_filters.is_empty()
    }
}

/// Rewrites every governed scan of `plan` under the policy of `pinned`.
pub async fn enforce(
    plan: LogicalPlan,
    user_state: &SessionState,
    pinned: &Arc<Pinned>,
    query_id: u64,
) -> Result<(LogicalPlan, AccessReport), QueryError> {
    // 1. Find the governed tables the plan reads (scans anywhere, subqueries included), and
    //    refuse any scan of a provider we do not know.
    let mut governed: BTreeMap<(String, String), Arc<TableEntry>> = BTreeMap::new();
    let mut unknown: Option<String> = None;
    let mut reads_system = false;
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            match classify_source(scan) {
                Source::Governed(entry) => {
                    governed.insert((entry.schema.clone(), entry.name.clone()), entry);
                }
                Source::System => reads_system = true,
                Source::Internal => {}
                Source::Unknown(name) => {
                    unknown = Some(name);
                    return Ok(TreeNodeRecursion::Stop);
                }
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .map_err(|e| QueryError::from_datafusion(e, query_id))?;
    if let Some(name) = unknown {
        return Err(QueryError::privilege(format!(
            "relation \"{name}\" cannot be read through this server"
        )));
    }

    // 2. Plan the policy subtree of each table once.
    let mut report = AccessReport::default();
    // A plan without lake tables (`select 1`, a pool's validation query) qualifies too: its
    // answer depends on its expressions only, which `cache::cacheable` checks are immutable.
    let mut cache_tag = (!reads_system).then(String::new);
    let mut templates: HashMap<(String, String), LogicalPlan> = HashMap::new();
    if !governed.is_empty() {
        let policy_state = policy_state(user_state, &pinned.catalog);
        for (key, entry) in &governed {
            let access = pinned.access(entry);
            let template = policy_subplan(&policy_state, entry, &access, query_id).await?;
            if reads_subqueries(&template) {
                report.mask_subqueries = true;
            }
            let name = format!("{}.{}", entry.schema, entry.name);
            if !access.row_filters.is_empty() {
                report.row_filters.insert(name.clone());
            }
            if let TableStatus::Ready(ready) = &entry.status {
                for (field, column) in ready.schema.fields().iter().zip(&access.columns) {
                    if matches!(column, ColumnAccess::Masked(..)) {
                        report.masks.insert(format!("{name}.{}", field.name()));
                    }
                }
                if let Some(version) = ready.version {
                    report.versions.insert(name.clone(), version);
                }
                match (ready.version, cache_tag.as_mut()) {
                    (Some(version), Some(tag)) => {
                        tag.push_str(&format!("{name}@{version}@{}\n", entry.location));
                    }
                    _ => cache_tag = None,
                }
            } else {
                cache_tag = None;
            }
            report.tables.insert(name);
            templates.insert(key.clone(), template);
        }
    }
    report.cache_tag = cache_tag;

    // 3. Substitute, then let every ancestor recompute its schema (masks may make a column
    //    nullable).
    let substituted = plan
        .transform_up_with_subqueries(|node| {
            let LogicalPlan::TableScan(scan) = &node else {
                return Ok(Transformed::no(node));
            };
            let Source::Governed(entry) = classify_source(scan) else {
                return Ok(Transformed::no(node));
            };
            let template = templates
                .get(&(entry.schema.clone(), entry.name.clone()))
                .cloned()
                .ok_or_else(|| DataFusionError::Internal("missing policy plan".to_string()))?;
            if !scan.filters.is_empty() || scan.fetch.is_some() {
                return Err(DataFusionError::Internal(
                    "governed scan was optimized before enforcement".to_string(),
                ));
            }
            let mut replacement = template;
            if let Some(projection) = &scan.projection {
                let schema = replacement.schema().clone();
                let exprs: Vec<Expr> = projection
                    .iter()
                    .map(|idx| {
                        Expr::Column(datafusion::common::Column::from(
                            schema.qualified_field(*idx),
                        ))
                    })
                    .collect();
                replacement = datafusion::logical_expr::LogicalPlanBuilder::from(replacement)
                    .project(exprs)?
                    .build()?;
            }
            let aliased = SubqueryAlias::try_new(Arc::new(replacement), scan.table_name.clone())?;
            Ok(Transformed::yes(LogicalPlan::SubqueryAlias(aliased)))
        })
        .map_err(|e| QueryError::from_datafusion(e, query_id))?
        .data;
    let plan = substituted
        .transform_up_with_subqueries(|node| Ok(Transformed::yes(node.recompute_schema()?)))
        .map_err(|e| QueryError::from_datafusion(e, query_id))?
        .data;

    // 4. Belt and braces: no governed scan may remain.
    let mut leftover = false;
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && matches!(classify_source(scan), Source::Governed(_))
        {
            leftover = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .map_err(|e| QueryError::from_datafusion(e, query_id))?;
    if leftover {
        return Err(QueryError::internal(
            query_id,
            &"a governed scan escaped enforcement",
        ));
    }
    Ok((plan, report))
}

/// Whether the top projection of a policy subplan (its masks) holds a subquery.
fn reads_subqueries(template: &LogicalPlan) -> bool {
    let LogicalPlan::Projection(projection) = template else {
        return false;
    };
    projection.expr.iter().any(|expr| {
        expr.exists(|e| {
            Ok(matches!(
                e,
                Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_)
            ))
        })
        .unwrap_or(true)
    })
}

enum Source {
    Governed(Arc<TableEntry>),
    System,
    Internal,
    Unknown(String),
}

fn classify_source(scan: &datafusion::logical_expr::TableScan) -> Source {
    let Ok(provider) = source_as_provider(&scan.source) else {
        // Sources that are not providers are DataFusion's own (CTE work tables, ...).
        return Source::Internal;
    };
    if let Some(governed) = GovernedTable::from_provider(provider.as_ref()) {
        return Source::Governed(governed.entry.clone());
    }
    if SystemTable::from_provider(provider.as_ref()).is_some() {
        return Source::System;
    }
    if PolicyTable::from_provider(provider.as_ref()).is_some() {
        return Source::Internal;
    }
    let any: &dyn Any = provider.as_ref();
    // DataFusion's own relations that read no data: CTE work tables, empty tables, and
    // generate_series/range (which produce values lazily, so they cannot exhaust memory).
    if any
        .downcast_ref::<datafusion::datasource::cte_worktable::CteWorkTable>()
        .is_some()
        || any
            .downcast_ref::<datafusion::datasource::empty::EmptyTable>()
            .is_some()
        || any
            .downcast_ref::<datafusion::functions_table::generate_series::GenerateSeriesTable>()
            .is_some()
    {
        return Source::Internal;
    }
    Source::Unknown(scan.table_name.to_string())
}

/// The session state policy subplans are planned with: the user's functions and settings, but
/// a catalog that resolves every table of the pinned state without visibility filtering.
pub fn policy_state(user_state: &SessionState, catalog: &Arc<CatalogState>) -> SessionState {
    let mut state = SessionStateBuilder::new_from_existing(user_state.clone())
        .with_catalog_list(Arc::new(DatabaseList::of(Arc::new(PolicyCatalog(
            catalog.clone(),
        )))))
        .build();
    state.config_mut().options_mut().catalog.default_schema = "dbo".to_string();
    state
}

/// Plans `SELECT <visible columns, masked> FROM <table> WHERE <row filters>` for one table and
/// puts the security barrier above the filter.
pub async fn policy_subplan(
    policy_state: &SessionState,
    entry: &TableEntry,
    access: &TableAccess,
    query_id: u64,
) -> Result<LogicalPlan, QueryError> {
    let TableStatus::Ready(ready) = &entry.status else {
        return Err(QueryError::new(
            code::OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!("table \"{}.{}\" is not available", entry.schema, entry.name),
        ));
    };
    // Instants labelled with a non-UTC session zone, as `catalog::session` declares them
    // (`sql::zone`): the cast changes no value.
    let zone = policy_state
        .config()
        .options()
        .execution
        .time_zone
        .clone()
        .filter(|zone| zone != super::zone::UTC);
    let mut select = Vec::new();
    for (field, column) in ready.schema.fields().iter().zip(&access.columns) {
        let name = quote_ident(field.name());
        match column {
            ColumnAccess::Allowed => match &zone {
                Some(zone) if matches!(field.data_type(), DataType::Timestamp(_, Some(_))) => {
                    let target = super::zone::relabel(field.data_type(), zone);
                    select.push(format!(
                        "arrow_cast({name}, '{}') AS {name}",
                        target.to_string().replace('\'', "''")
                    ));
                }
                _ => select.push(name),
            },
            ColumnAccess::Denied => {}
            ColumnAccess::Masked(kind, origin) => {
                let expr = mask_sql(kind, &name, field.data_type())
                    .map_err(|message| policy_error(&format!("{origin}: {message}")))?;
                select.push(format!("{expr} AS {name}"));
            }
        }
    }
    if select.is_empty() {
        return Err(QueryError::undefined_table(&entry.name));
    }
    let mut sql = format!(
        "SELECT {} FROM {}.{}.{}",
        select.join(", "),
        quote_ident(CATALOG_NAME),
        quote_ident(&entry.schema),
        quote_ident(&entry.name)
    );
    if !access.row_filters.is_empty() {
        let mut filters = Vec::new();
        for (filter, origin) in &access.row_filters {
            let parsed = Parser::new(&PostgreSqlDialect {})
                .try_with_sql(filter)
                .and_then(|mut p| p.parse_expr())
                .map_err(|err| policy_error(&format!("{origin}: invalid row filter: {err}")))?;
            // Re-serialised from the parsed expression: the text is one expression, whatever
            // was written.
            filters.push(format!("({parsed})"));
        }
        sql.push_str(" WHERE ");
        sql.push_str(&filters.join(" AND "));
    }
    let statement = Parser::new(&PostgreSqlDialect {})
        .try_with_sql(&sql)
        .and_then(|mut p| p.parse_statement())
        .map_err(|err| policy_error(&format!("invalid mask or row filter: {err}")))?;
    let plan = policy_state
        .statement_to_plan(DFStatement::Statement(Box::new(statement)))
        .await
        .map_err(|err| {
            policy_error(&format!(
                "the policy of \"{}.{}\" does not plan: {}",
                entry.schema,
                entry.name,
                QueryError::from_datafusion(err, query_id).message
            ))
        })?;
    if access.row_filters.is_empty() {
        return Ok(plan);
    }
    // Insert the barrier between the projection (masks) and the filter (row filters).
    let LogicalPlan::Projection(projection) = plan else {
        return Err(QueryError::internal(
            query_id,
            &"policy plan is not a projection",
        ));
    };
    let barrier = LogicalPlan::Extension(Extension {
        node: Arc::new(SecurityBarrier {
            input: projection.input.as_ref().clone(),
        }),
    });
    let projection =
        datafusion::logical_expr::Projection::try_new(projection.expr, Arc::new(barrier))
            .map_err(|e| QueryError::from_datafusion(e, query_id))?;
    Ok(LogicalPlan::Projection(projection))
}

/// A policy problem is the DBA's, not the user's: the user sees a privilege error, the log
/// the detail.
fn policy_error(detail: &str) -> QueryError {
    tracing::error!(detail, "policy cannot be applied");
    QueryError::privilege("the access policy for this table cannot be applied")
        .with_hint("ask the administrator to run `lakehouse check`")
}

/// Quotes an identifier for SQL.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn is_text(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

/// The SQL of a mask over `column` (already quoted), keeping the column's type.
pub fn mask_sql(kind: &MaskKind, column: &str, data_type: &DataType) -> Result<String, String> {
    let cast = |expr: String| format!("arrow_cast({expr}, '{data_type}')");
    Ok(match kind {
        MaskKind::Builtin {
            function,
            keep_first,
            keep_last,
        } => match function {
            MaskFunction::Null => cast("NULL".to_string()),
            MaskFunction::Redact => {
                if is_text(data_type) {
                    cast(format!(
                        "CASE WHEN {column} IS NULL THEN NULL ELSE '****' END"
                    ))
                } else {
                    cast("NULL".to_string())
                }
            }
            MaskFunction::Partial => {
                if !is_text(data_type) {
                    return Err(format!(
                        "mask `partial` applies to text columns, not {data_type}"
                    ));
                }
                let kept = keep_first + keep_last;
                cast(format!(
                    "CASE WHEN {column} IS NULL THEN NULL \
                     WHEN character_length({column}) <= {kept} THEN repeat('*', character_length({column})) \
                     ELSE concat(left({column}, {keep_first}), repeat('*', character_length({column}) - {kept}), \
                     CASE WHEN {keep_last} = 0 THEN '' ELSE right({column}, {keep_last}) END) END"
                ))
            }
            MaskFunction::Hash => {
                if !is_text(data_type) {
                    return Err(format!(
                        "mask `hash` applies to text columns, not {data_type}"
                    ));
                }
                cast(format!("encode(sha256({column}), 'hex')"))
            }
            MaskFunction::YearOnly => match data_type {
                DataType::Date32 | DataType::Date64 | DataType::Timestamp(..) => {
                    cast(format!("date_trunc('year', {column})"))
                }
                other => {
                    return Err(format!(
                        "mask `year_only` applies to date and timestamp columns, not {other}"
                    ));
                }
            },
        },
        MaskKind::Expression(expression) => {
            let parsed = Parser::new(&PostgreSqlDialect {})
                .try_with_sql(expression)
                .and_then(|mut p| p.parse_expr())
                .map_err(|err| format!("invalid mask expression: {err}"))?;
            cast(format!("({parsed})"))
        }
    })
}

/// Optimization barrier above a row filter: filters cannot be pushed through it, logically or
/// physically, so no user expression is evaluated on rows the filter removes. Projections and
/// limits still pass.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd)]
pub struct SecurityBarrier {
    input: LogicalPlan,
}

impl UserDefinedLogicalNodeCore for SecurityBarrier {
    fn name(&self) -> &str {
        "SecurityBarrier"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        self.input.schema()
    }

    fn expressions(&self) -> Vec<Expr> {
        Vec::new()
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "SecurityBarrier")
    }

    fn with_exprs_and_inputs(
        &self,
        _exprs: Vec<Expr>,
        mut inputs: Vec<LogicalPlan>,
    ) -> Result<Self> {
        let input = inputs
            .pop()
            .ok_or_else(|| DataFusionError::Internal("barrier needs one input".to_string()))?;
        Ok(SecurityBarrier { input })
    }

    fn necessary_children_exprs(&self, output_columns: &[usize]) -> Option<Vec<Vec<usize>>> {
        // The barrier passes columns through unchanged, so unused columns can be pruned below.
        Some(vec![output_columns.to_vec()])
    }

    fn supports_limit_pushdown(&self) -> bool {
        true
    }
}

/// Physical side of [`SecurityBarrier`]: passes batches through and accepts no filter pushdown
/// (the default of `ExecutionPlan`).
#[derive(Debug)]
pub struct SecurityBarrierExec {
    input: Arc<dyn ExecutionPlan>,
}

impl DisplayAs for SecurityBarrierExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "SecurityBarrierExec")
    }
}

impl ExecutionPlan for SecurityBarrierExec {
    fn name(&self) -> &str {
        "SecurityBarrierExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = children
            .pop()
            .ok_or_else(|| DataFusionError::Internal("barrier needs one child".to_string()))?;
        Ok(Arc::new(SecurityBarrierExec { input }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.input.execute(partition, context)
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(
            &Arc<dyn datafusion::physical_expr::PhysicalExpr>,
        ) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }
}

struct BarrierPlanner;

#[async_trait]
impl ExtensionPlanner for BarrierPlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        _session_state: &dyn Session,
        _planning_ctx: &datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        if node.as_any().downcast_ref::<SecurityBarrier>().is_none() {
            return Ok(None);
        }
        let input = physical_inputs
            .first()
            .cloned()
            .ok_or_else(|| DataFusionError::Internal("barrier needs one input".to_string()))?;
        Ok(Some(Arc::new(SecurityBarrierExec { input })))
    }
}

/// The physical planner of every session: DataFusion's, plus the security barrier, and EXPLAIN
/// for governed users (`sql::explain`).
#[derive(Debug, Default)]
pub struct LakehouseQueryPlanner;

#[async_trait]
impl QueryPlanner for LakehouseQueryPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session_state: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let planner =
            DefaultPhysicalPlanner::with_extension_planners(vec![Arc::new(BarrierPlanner)]);
        if super::explain::governed(session_state) {
            match logical_plan {
                LogicalPlan::Explain(explain) => {
                    let physical = planner.create_physical_plan(&explain.plan, session_state);
                    return super::explain::explain(explain, physical).await;
                }
                LogicalPlan::Analyze(analyze) => {
                    let input = planner
                        .create_physical_plan(&analyze.input, session_state)
                        .await?;
                    return Ok(super::explain::analyze(analyze, input));
                }
                _ => {}
            }
        }
        planner
            .create_physical_plan(logical_plan, session_state)
            .await
    }
}

/// The unrestricted catalog policy subplans resolve tables in.
#[derive(Debug)]
struct PolicyCatalog(Arc<CatalogState>);

impl CatalogProvider for PolicyCatalog {
    fn schema_names(&self) -> Vec<String> {
        self.0.schemas.iter().cloned().collect()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        self.0
            .schemas
            .contains(name)
            .then(|| Arc::new(PolicySchema(self.0.clone(), name.to_string())) as _)
    }
}

#[derive(Debug)]
struct PolicySchema(Arc<CatalogState>, String);

#[async_trait]
impl SchemaProvider for PolicySchema {
    fn table_names(&self) -> Vec<String> {
        self.0.tables_in(&self.1).map(|e| e.name.clone()).collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let Some(entry) = self.0.table(&self.1, name) else {
            return Ok(None);
        };
        match &entry.status {
            TableStatus::Ready(ready) => Ok(Some(Arc::new(PolicyTable {
                entry: entry.clone(),
                inner: ready.provider.clone(),
            }))),
            TableStatus::Broken(reason) => Err(DataFusionError::External(Box::new(
                crate::catalog::session::TableUnavailable {
                    table: format!("{}.{}", entry.schema, entry.name),
                    reason: reason.clone(),
                },
            ))),
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        self.0.table(&self.1, name).is_some()
    }
}

/// A lake table read on the policy's behalf (inside a policy subplan). Scans for real.
#[derive(Debug)]
pub struct PolicyTable {
    /// The catalog entry.
    pub entry: Arc<TableEntry>,
    inner: Arc<dyn TableProvider>,
}

impl PolicyTable {
    /// Finds the policy table behind a provider, if it is one.
    pub fn from_provider(provider: &dyn TableProvider) -> Option<&PolicyTable> {
        let any: &dyn Any = provider;
        any.downcast_ref::<PolicyTable>()
    }
}

#[async_trait]
impl TableProvider for PolicyTable {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.inner.scan(state, projection, filters, limit).await
    }

    async fn scan_with_args<'a>(
        &self,
        state: &dyn Session,
        args: datafusion::catalog::ScanArgs<'a>,
    ) -> Result<datafusion::catalog::ScanResult> {
        self.inner.scan_with_args(state, args).await
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        self.inner.supports_filters_pushdown(filters)
    }

    fn statistics(&self) -> Option<Statistics> {
        self.inner.statistics()
    }
}
