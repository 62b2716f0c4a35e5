//! One connection's SQL session: classify, plan, enforce, bind, execute; session settings,
//! transaction state and the audit record of every statement.
//!
//! Knows nothing about the wire: the server hands it statements and parameter values and gets
//! back result descriptions, row streams and command tags.

use std::sync::Arc;
use std::time::Instant;

use datafusion::common::ScalarValue;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::execution::SessionState;
use datafusion::execution::SessionStateBuilder;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{Expr, Ident, SelectItem, SetExpr, Statement};

use super::Engine;
use super::cache::Filler;
use super::classify::{self, Action};
use super::enforce::{self, AccessReport};
use super::error::{QueryError, code};
use super::exec::{self, RowStream};
use crate::audit::AuditRecord;
use crate::catalog::session::{DatabaseList, Pinned, SessionCatalog};
use crate::pg::settings::{Changed, Settings};
use crate::pg::types::{self as pgtype, PgType};

/// Who is connected, for the audit trail and session functions.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// Connection id (BackendKeyData process id).
    pub pid: i32,
    /// User name as sent by the client.
    pub user: String,
    /// Client address.
    pub client_addr: String,
}

pub use crate::pg::copy::CopyRows;
pub use crate::pg::types::FieldInfo;

/// Transaction block state, as ReadyForQuery reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxState {
    /// Not in a transaction block (`I`).
    Idle,
    /// In a transaction block (`T`).
    InBlock,
    /// In a failed transaction block (`E`): only ROLLBACK/COMMIT run.
    Failed,
}

/// A statement ready to run (the extended protocol's prepared statement).
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Statement text, for the audit trail.
    pub text: String,
    /// The empty query string.
    empty: bool,
    action: Action,
    declared: Vec<u32>,
    /// Parameter type OIDs (declared by the client, or inferred).
    pub param_types: Vec<u32>,
    /// Result columns; `None` when the statement returns no rows (COPY's rows are COPY data,
    /// not a result: PostgreSQL describes it as NoData).
    pub fields: Option<Vec<FieldInfo>>,
    planned: Option<Planned>,
    /// A `COPY ... TO STDOUT`: its columns and how to write them.
    copy: Option<CopyRows>,
}

#[derive(Debug, Clone)]
struct Planned {
    plan: LogicalPlan,
    access: AccessReport,
    catalog_generation: u64,
    policy_generation: u64,
    /// The session time zone it was planned in (it labels `timestamptz` values and casts).
    time_zone: String,
    /// An EXPLAIN of a user without `schema: sys`: rendered by `sql::explain`.
    governed_explain: bool,
    /// The tables and the plan as the result-cache key spells them, for a cacheable plan
    /// without parameters: made while planning, off the network runtime (a plan with a large
    /// IN list prints to megabytes).
    cache_body: Option<String>,
}

/// The outcome of executing a statement.
pub enum Outcome {
    /// Rows to send, then `SELECT n` (or the tag given).
    Rows {
        /// The running query.
        stream: RowStream,
        /// Result columns.
        fields: Vec<FieldInfo>,
        /// Command tag prefix (`SELECT`, `SHOW`, `EXPLAIN`, `COPY`).
        tag: &'static str,
        /// For the audit record.
        ticket: Ticket,
        /// Set for `COPY ... TO STDOUT`: the rows go out as COPY data.
        copy: Option<Box<CopyRows>>,
    },
    /// Rows computed already (SHOW).
    Values {
        /// Result columns.
        fields: Vec<FieldInfo>,
        /// Rows as text values.
        rows: Vec<Vec<Option<String>>>,
        /// Command tag.
        tag: String,
        /// For the audit record.
        ticket: Ticket,
    },
    /// A command without rows.
    Command {
        /// Command tag.
        tag: String,
        /// Reported settings that changed (ParameterStatus).
        changed: Changed,
        /// For the audit record.
        ticket: Ticket,
    },
}

/// What the audit record of a running statement needs; completed by [`QuerySession::record`].
#[derive(Debug)]
pub struct Ticket {
    started: Instant,
    started_at: chrono::DateTime<chrono::Utc>,
    query_id: u64,
    kind: String,
    text: String,
    access: AccessReport,
    columns: Option<Arc<parking_lot::Mutex<Vec<String>>>>,
    result_cache: &'static str,
}

impl Ticket {
    /// The statement's query id (what its audit record and any internal error carry).
    pub fn query_id(&self) -> u64 {
        self.query_id
    }
}

/// One connection's session.
pub struct QuerySession {
    engine: Arc<Engine>,
    catalog: Arc<SessionCatalog>,
    /// Never changes after the session starts; shared with every query it runs, because a
    /// clone copies DataFusion's function registries (hundreds of entries) per statement.
    state: Arc<SessionState>,
    settings: Settings,
    tx: TxState,
    info: SessionInfo,
}

impl std::fmt::Debug for QuerySession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "QuerySession(pid={}, user={})",
            self.info.pid, self.info.user
        )
    }
}

impl QuerySession {
    /// A session for an authenticated user.
    pub fn new(engine: Arc<Engine>, info: SessionInfo) -> Result<QuerySession, QueryError> {
        let catalog = SessionCatalog::new(
            engine.registry.clone(),
            engine.policies.clone(),
            &info.user,
            engine.system.clone(),
        )
        .map_err(|err| QueryError::new(code::INVALID_AUTHORIZATION, err.to_string()).fatal())?;
        let mut state = SessionStateBuilder::new_from_existing(engine.base_state())
            .with_catalog_list(Arc::new(DatabaseList::session(catalog.clone())))
            .build();
        crate::pg::functions::register(&mut state, &catalog, info.pid)
            .map_err(|e| QueryError::from_datafusion(e, super::error::detached_query_id()))?;
        let user = catalog.pinned().principal.user.clone();
        let settings = Settings::new(&user, engine.limits.statement_timeout);
        let mut session = QuerySession {
            engine,
            catalog,
            state: Arc::new(state),
            settings,
            tx: TxState::Idle,
            info,
        };
        session.sync_catalog_settings();
        Ok(session)
    }

    /// The user as named in the policy.
    pub fn user(&self) -> String {
        self.catalog.pinned().principal.user.clone()
    }

    /// Transaction state for ReadyForQuery.
    pub fn tx_state(&self) -> TxState {
        self.tx
    }

    /// Session settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Applies startup parameters.
    pub fn apply_startup(
        &mut self,
        parameters: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), QueryError> {
        self.settings.apply_startup(parameters)?;
        self.sync_catalog_settings();
        Ok(())
    }

    fn sync_catalog_settings(&mut self) {
        self.catalog.set_search_path(self.settings.search_path());
        self.catalog.set_values(self.settings.all().clone());
        // DataFusion reads the session time zone from its configuration (`sql::zone`).
        let zone = self.settings.time_zone();
        if self.state.config().options().execution.time_zone.as_deref() != Some(zone.as_str()) {
            let mut state = self.state.as_ref().clone();
            state.config_mut().options_mut().execution.time_zone = Some(zone);
            self.state = Arc::new(state);
        }
    }

    /// Splits a query string into statements, on the statement runtime (the syntax tree of a
    /// wide statement is deep until `shape` has rebalanced it).
    pub async fn parse(&self, sql: &str) -> Result<Vec<Statement>, QueryError> {
        let sql = sql.to_string();
        exec::off_network(async move { classify::parse(&sql) }).await
    }

    /// Classifies and (for queries) plans and enforces a statement. `declared` are the
    /// parameter types the client gave (0 = infer).
    pub async fn prepare(
        &mut self,
        text: &str,
        statement: Statement,
        declared: &[u32],
    ) -> Result<Prepared, QueryError> {
        let action = classify::classify(statement)?;
        let mut prepared = Prepared {
            text: text.to_string(),
            empty: false,
            action,
            declared: declared.to_vec(),
            param_types: declared.to_vec(),
            fields: None,
            planned: None,
            copy: None,
        };
        self.plan_prepared(&mut prepared).await?;
        Ok(prepared)
    }

    /// A prepared statement for an empty query string.
    pub fn prepare_empty(&self) -> Prepared {
        Prepared {
            text: String::new(),
            empty: true,
            action: Action::NoOp(""),
            declared: Vec::new(),
            param_types: Vec::new(),
            fields: None,
            planned: None,
            copy: None,
        }
    }

    /// Whether a prepared statement is the empty query.
    pub fn is_empty(prepared: &Prepared) -> bool {
        prepared.empty
    }

    async fn plan_prepared(&mut self, prepared: &mut Prepared) -> Result<(), QueryError> {
        let (query, explain) = match &prepared.action {
            Action::Query(statement) => (statement.as_ref().clone(), None),
            Action::CopyOut(copy) => (copy.query.as_ref().clone(), None),
            Action::Explain {
                query,
                analyze,
                verbose,
            } => (query.as_ref().clone(), Some((*analyze, *verbose))),
            Action::Show(name) => {
                let column = match name {
                    Some(name) => self.settings.get(name)?.0,
                    None => "setting".to_string(),
                };
                prepared.fields = Some(match name {
                    Some(_) => vec![text_field(&column)],
                    None => vec![
                        text_field("name"),
                        text_field("setting"),
                        text_field("description"),
                    ],
                });
                return Ok(());
            }
            _ => return Ok(()),
        };
        let planner = Planner {
            // Planning has its own id: an internal error while planning is logged under it.
            query_id: self.engine.next_query_id(),
            engine: self.engine.clone(),
            catalog: self.catalog.clone(),
            state: self.state.clone(),
        };
        let declared = prepared.declared.clone();
        let (fields, param_types, planned) =
            exec::off_network_blocking(
                async move { planner.plan(query, &declared, explain).await },
            )
            .await?;
        if let Action::CopyOut(copy) = &prepared.action {
            let names: Vec<String> = fields.iter().map(|f| f.name.clone()).collect();
            prepared.copy = Some(CopyRows {
                force_quote: copy.options.force_quoted(&names)?,
                options: copy.options.clone(),
                fields,
            });
        } else {
            prepared.fields = Some(fields);
        }
        prepared.param_types = param_types;
        prepared.planned = Some(planned);
        Ok(())
    }

    /// Re-plans a prepared statement if the catalog or the policy changed since it was planned,
    /// so a long-lived prepared statement sees new Delta versions and policy changes.
    async fn refresh(&mut self, prepared: &mut Prepared) -> Result<(), QueryError> {
        let Some(planned) = &prepared.planned else {
            return Ok(());
        };
        let catalog_generation = self.engine.registry.snapshot().generation;
        let policy_generation = self.engine.policies.load().generation;
        if planned.catalog_generation == catalog_generation
            && planned.policy_generation == policy_generation
            && planned.time_zone == self.settings.time_zone()
        {
            // Still the pinned state of the plan: make the session's view match it.
            self.catalog.pin().map_err(|err| {
                QueryError::new(code::INVALID_AUTHORIZATION, err.to_string()).fatal()
            })?;
            return Ok(());
        }
        let before = prepared.fields.clone();
        self.plan_prepared(prepared).await?;
        if before.as_ref().map(|f| f.len()) != prepared.fields.as_ref().map(|f| f.len()) {
            return Err(QueryError::unsupported(
                "cached plan must not change result type",
            ));
        }
        Ok(())
    }

    /// Runs a prepared statement with bound parameter values.
    pub async fn execute(
        &mut self,
        prepared: &mut Prepared,
        params: Vec<ScalarValue>,
    ) -> Result<Outcome, QueryError> {
        let query_id = self.engine.next_query_id();
        let mut ticket = Ticket {
            started: Instant::now(),
            started_at: chrono::Utc::now(),
            query_id,
            kind: kind_of(&prepared.action).to_string(),
            text: prepared.text.clone(),
            access: AccessReport::default(),
            columns: None,
            result_cache: "",
        };
        if self.tx == TxState::Failed
            && !matches!(
                prepared.action,
                Action::Rollback | Action::Commit | Action::RollbackToSavepoint
            )
        {
            return Err(QueryError::in_failed_transaction());
        }
        let result = self.execute_action(prepared, params, &mut ticket).await;
        match result {
            Ok(outcome) => Ok(outcome),
            Err(err) => {
                self.record(ticket, 0, Err(&err));
                Err(err)
            }
        }
    }

    async fn execute_action(
        &mut self,
        prepared: &mut Prepared,
        params: Vec<ScalarValue>,
        ticket: &mut Ticket,
    ) -> Result<Outcome, QueryError> {
        let command = |tag: &str, changed: Changed, ticket: &mut Ticket| Outcome::Command {
            tag: tag.to_string(),
            changed,
            ticket: take_ticket(ticket),
        };
        match prepared.action.clone() {
            Action::Query(_) | Action::Explain { .. } | Action::CopyOut(_) => {
                self.refresh(prepared).await?;
                let planned = prepared.planned.as_ref().ok_or_else(|| {
                    QueryError::internal(ticket.query_id, &"statement was not planned")
                })?;
                if params.len() != prepared.param_types.len() {
                    return Err(QueryError::new(
                        code::PROTOCOL_VIOLATION,
                        format!(
                            "bind message supplies {} parameters, but prepared statement requires {}",
                            params.len(),
                            prepared.param_types.len()
                        ),
                    ));
                }
                let bound = !params.is_empty();
                let plan = if params.is_empty() {
                    planned.plan.clone()
                } else {
                    planned
                        .plan
                        .clone()
                        .with_param_values(params)
                        .map_err(|e| QueryError::from_datafusion(e, ticket.query_id))?
                };
                ticket.access = planned.access.clone();
                let tag = match prepared.action {
                    Action::Explain { .. } => "EXPLAIN",
                    Action::CopyOut(_) => "COPY",
                    _ => "SELECT",
                };
                // A COPY's rows are its query's: the cache answers both.
                let cache_key = match prepared.action {
                    Action::Query(_) | Action::CopyOut(_) => self.cache_key(planned, &plan, bound),
                    _ => None,
                };
                let copy = prepared.copy.clone().map(Box::new);
                let fields = match &copy {
                    Some(copy) => copy.fields.clone(),
                    None => prepared.fields.clone().unwrap_or_default(),
                };
                if let Some(key) = &cache_key
                    && let Some(answer) = self.engine.cache.get(key)
                {
                    let stream = exec::replay(answer);
                    ticket.result_cache = "hit";
                    ticket.columns = Some(stream.columns_read.clone());
                    return Ok(Outcome::Rows {
                        stream,
                        fields,
                        tag,
                        ticket: take_ticket(ticket),
                        copy,
                    });
                }
                if cache_key.is_some() {
                    ticket.result_cache = "miss";
                }
                let fill = cache_key.map(|key| {
                    Filler::new(self.engine.cache.clone(), key, planned.policy_generation)
                });
                let permit = self.engine.query_slot().await;
                let stream = exec::start(
                    self.state.clone(),
                    plan,
                    exec::StartOptions {
                        query_id: ticket.query_id,
                        memory_limit: self.engine.limits.query_memory_limit,
                        governed_explain: planned.governed_explain,
                    },
                    Some(permit),
                    fill,
                );
                ticket.columns = Some(stream.columns_read.clone());
                Ok(Outcome::Rows {
                    stream,
                    fields,
                    tag,
                    ticket: take_ticket(ticket),
                    copy,
                })
            }
            Action::Show(name) => {
                let rows = match name {
                    Some(name) => vec![vec![Some(self.settings.get(&name)?.1)]],
                    None => self
                        .settings
                        .all()
                        .iter()
                        .map(|(k, v)| vec![Some(k.clone()), Some(v.clone()), None])
                        .collect(),
                };
                Ok(Outcome::Values {
                    fields: prepared.fields.clone().unwrap_or_default(),
                    rows,
                    tag: "SHOW".to_string(),
                    ticket: take_ticket(ticket),
                })
            }
            Action::Set { name, value } => {
                let changed = self.settings.set(&name, &value)?;
                self.sync_catalog_settings();
                Ok(command("SET", changed, ticket))
            }
            Action::Reset(name) => {
                let changed = self.settings.reset(name.as_deref())?;
                self.sync_catalog_settings();
                Ok(command("RESET", changed, ticket))
            }
            Action::NoOp(tag) => Ok(command(tag, Vec::new(), ticket)),
            Action::Begin => {
                if self.tx == TxState::InBlock {
                    tracing::debug!("BEGIN inside a transaction block");
                }
                self.tx = TxState::InBlock;
                Ok(command("BEGIN", Vec::new(), ticket))
            }
            Action::Commit => {
                // COMMIT of a failed block is a ROLLBACK, as in PostgreSQL.
                let tag = if self.tx == TxState::Failed {
                    "ROLLBACK"
                } else {
                    "COMMIT"
                };
                self.tx = TxState::Idle;
                Ok(command(tag, Vec::new(), ticket))
            }
            Action::Rollback => {
                self.tx = TxState::Idle;
                Ok(command("ROLLBACK", Vec::new(), ticket))
            }
            Action::RollbackToSavepoint => {
                if self.tx == TxState::Failed {
                    self.tx = TxState::InBlock;
                }
                Ok(command("ROLLBACK", Vec::new(), ticket))
            }
            Action::Discard(tag) => {
                if tag == "DISCARD ALL" {
                    let changed = self.settings.reset(None)?;
                    self.sync_catalog_settings();
                    self.tx = TxState::Idle;
                    return Ok(command(tag, changed, ticket));
                }
                Ok(command(tag, Vec::new(), ticket))
            }
            Action::Deallocate(None) => Ok(command("DEALLOCATE ALL", Vec::new(), ticket)),
            Action::Deallocate(Some(_)) => Ok(command("DEALLOCATE", Vec::new(), ticket)),
            Action::Close(None) => Ok(command("CLOSE CURSOR ALL", Vec::new(), ticket)),
            Action::Close(Some(name)) => Err(QueryError::new(
                code::INVALID_CURSOR_NAME,
                format!("cursor \"{name}\" does not exist"),
            )),
        }
    }

    /// The result-cache key of a query's bound plan, or `None` when its answer must be
    /// computed (cache off, a table without a version, a system table, a volatile function).
    /// Everything the answer depends on is in the key, in full: see [`super::cache`].
    fn cache_key(&self, planned: &Planned, plan: &LogicalPlan, bound: bool) -> Option<String> {
        if !self.engine.cache.enabled() || !self.settings.result_cache() {
            return None;
        }
        let body = if bound {
            cache_body(&self.engine, &planned.access, plan)?
        } else {
            planned.cache_body.clone()?
        };
        Some(format!(
            "user {}\npolicy {}\nsearch_path {:?}\ntimezone {:?}\n{body}",
            self.user(),
            planned.policy_generation,
            self.settings.search_path(),
            self.settings.all().get("TimeZone"),
        ))
    }

    /// Marks the transaction block failed after an error (no effect outside a block).
    pub fn on_error(&mut self) {
        if self.tx == TxState::InBlock {
            self.tx = TxState::Failed;
        }
    }

    /// Records the audit record of a finished statement.
    pub fn record(&self, ticket: Ticket, n_rows: u64, result: Result<(), &QueryError>) {
        let (outcome, sqlstate) = match result {
            Ok(()) => ("ok".to_string(), code::SUCCESSFUL.to_string()),
            Err(err) if err.code == code::QUERY_CANCELED => {
                ("canceled".to_string(), err.code.to_string())
            }
            Err(err) => ("error".to_string(), err.code.to_string()),
        };
        let kind = ticket.kind.clone();
        let record = AuditRecord {
            time: ticket
                .started_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            time_micros: ticket.started_at.timestamp_micros(),
            session_id: self.info.pid,
            // An internal error was logged under its own id (planning has one): the record
            // keeps that id, so the audit trail leads to the log line.
            query_id: result
                .err()
                .and_then(|err| err.query_id)
                .unwrap_or(ticket.query_id),
            user: self.user(),
            client_addr: self.info.client_addr.clone(),
            application_name: self
                .settings
                .get("application_name")
                .map(|(_, v)| v)
                .unwrap_or_default(),
            kind,
            statement: ticket.text,
            tables: ticket.access.tables.into_iter().collect(),
            columns: ticket.columns.map(|c| c.lock().clone()).unwrap_or_default(),
            row_filters: ticket.access.row_filters.into_iter().collect(),
            masks: ticket.access.masks.into_iter().collect(),
            versions: ticket
                .access
                .versions
                .into_iter()
                .map(|(t, v)| format!("{t}@{v}"))
                .collect(),
            rows: n_rows,
            duration_ms: ticket.started.elapsed().as_secs_f64() * 1000.0,
            result_cache: ticket.result_cache.to_string(),
            outcome,
            sqlstate,
        };
        // Debug, not info: the audit trail is the record of statements, and a line per
        // statement on stderr costs more than a small query itself at high rates.
        tracing::debug!(
            session_id = record.session_id,
            query_id = record.query_id,
            user = %record.user,
            kind = %record.kind,
            n_rows = record.rows,
            elapsed_ms = record.duration_ms,
            sqlstate = %record.sqlstate,
            "statement"
        );
        self.engine.system.audit.record(record);
    }

    /// Records a statement refused before it could be prepared (syntax, classification).
    pub fn record_refused(&self, text: &str, err: &QueryError) {
        let ticket = Ticket {
            started: Instant::now(),
            started_at: chrono::Utc::now(),
            query_id: self.engine.next_query_id(),
            kind: "refused".to_string(),
            text: text.to_string(),
            access: AccessReport::default(),
            columns: None,
            result_cache: "",
        };
        self.record(ticket, 0, Err(err));
    }

    /// The pinned view of the current statement (for tests and diagnostics).
    pub fn pinned(&self) -> Arc<Pinned> {
        self.catalog.pinned()
    }
}

/// What planning a statement needs, taken out of the session so that planning runs on the
/// statement runtime.
struct Planner {
    query_id: u64,
    engine: Arc<Engine>,
    catalog: Arc<SessionCatalog>,
    state: Arc<SessionState>,
}

impl Planner {
    /// Plans and enforces a query (wrapped in EXPLAIN when `explain` is `(analyze, verbose)`):
    /// its result columns, its parameter types and the plan.
    async fn plan(
        self,
        query: Statement,
        declared: &[u32],
        explain: Option<(bool, bool)>,
    ) -> Result<(Vec<FieldInfo>, Vec<u32>, Planned), QueryError> {
        let query_id = self.query_id;
        let pinned = self
            .catalog
            .pin()
            .map_err(|err| QueryError::new(code::INVALID_AUTHORIZATION, err.to_string()).fatal())?;
        let mut statement = query;
        // Names first: they come from the statement as the client wrote it (`x::regclass` is
        // named `x`, before `pg::syntax` turns the cast into a function call).
        let names = postgres_column_names(&mut statement);
        crate::pg::syntax::rewrite(&mut statement);
        crate::pg::syntax::declare_parameter_types(&mut statement, declared);
        let plan = self
            .state
            .statement_to_plan(DFStatement::Statement(Box::new(statement)))
            .await
            .map_err(|e| QueryError::from_datafusion(e, query_id))?;
        let plan =
            crate::pg::semantics(plan).map_err(|e| QueryError::from_datafusion(e, query_id))?;
        let (plan, access) = enforce::enforce(plan, &self.state, &pinned, query_id).await?;
        let param_types = parameter_types(&plan, declared, query_id)?;
        // Admins, and whoever may read the audit trail, see DataFusion's EXPLAIN as it is.
        let privileged = pinned
            .policy
            .policy
            .schema_granted(&pinned.principal, crate::policy::SYSTEM_SCHEMA);
        let plan = match explain {
            Some((analyze, verbose)) => {
                if analyze && access.has_row_filters() {
                    return Err(QueryError::privilege(
                        "EXPLAIN ANALYZE is not allowed on tables with row filters",
                    )
                    .with_detail("its row counts would show how many rows the filter hides"));
                }
                if analyze && access.mask_subqueries && !privileged {
                    return Err(QueryError::privilege(
                        "EXPLAIN ANALYZE is not allowed on tables whose masks read other tables",
                    )
                    .with_detail("its metrics would show what the masks read"));
                }
                LogicalPlanBuilder::from(plan)
                    .explain(verbose, analyze)
                    .and_then(|b| b.build())
                    .map_err(|e| QueryError::from_datafusion(e, query_id))?
            }
            None => plan,
        };
        let fields = plan
            .schema()
            .fields()
            .iter()
            .enumerate()
            .map(|(idx, field)| FieldInfo {
                // The query's output names are not EXPLAIN's: its columns are its own.
                name: names
                    .as_ref()
                    .filter(|_| explain.is_none())
                    .and_then(|n| n.get(idx).cloned().flatten())
                    .unwrap_or_else(|| field.name().clone()),
                pg_type: pgtype::pg_type_of_field(field),
            })
            .collect();
        let cache_body = match explain {
            None if param_types.is_empty() => cache_body(&self.engine, &access, &plan),
            _ => None,
        };
        let planned = Planned {
            plan,
            access,
            catalog_generation: pinned.catalog.generation,
            policy_generation: pinned.policy.generation,
            time_zone: self
                .state
                .config()
                .options()
                .execution
                .time_zone
                .clone()
                .unwrap_or_default(),
            governed_explain: explain.is_some() && !privileged,
            cache_body,
        };
        Ok((fields, param_types, planned))
    }
}

/// The part of a result-cache key that depends on the plan: every table read with its version
/// and location, and the plan; `None` when the answer must be computed (see [`super::cache`]).
fn cache_body(engine: &Engine, access: &AccessReport, plan: &LogicalPlan) -> Option<String> {
    if !engine.cache.enabled() {
        return None;
    }
    let tables = access.cache_tag.as_ref()?;
    if !super::cache::cacheable(plan, &access.versions) {
        return None;
    }
    Some(format!("{tables}{}", plan.display_indent_schema()))
}

fn take_ticket(ticket: &mut Ticket) -> Ticket {
    Ticket {
        started: ticket.started,
        started_at: ticket.started_at,
        query_id: ticket.query_id,
        kind: std::mem::take(&mut ticket.kind),
        text: std::mem::take(&mut ticket.text),
        access: std::mem::take(&mut ticket.access),
        columns: ticket.columns.take(),
        result_cache: ticket.result_cache,
    }
}

fn text_field(name: &str) -> FieldInfo {
    FieldInfo {
        name: name.to_string(),
        pg_type: PgType::plain(pgtype::oid::TEXT),
    }
}

fn kind_of(action: &Action) -> &'static str {
    match action {
        Action::Query(_) => "select",
        Action::CopyOut(_) => "copy",
        Action::Explain { .. } => "explain",
        Action::Show(_) => "show",
        Action::Set { .. } | Action::Reset(_) => "set",
        Action::Begin | Action::Commit | Action::Rollback | Action::RollbackToSavepoint => {
            "transaction"
        }
        Action::Discard(_) | Action::Deallocate(_) | Action::Close(_) => "session",
        Action::NoOp(_) => "session",
    }
}

/// Parameter types: declared ones win; others come from DataFusion's inference; `text` when
/// nothing says otherwise (the client then sends text and the plan casts it).
fn parameter_types(
    plan: &LogicalPlan,
    declared: &[u32],
    query_id: u64,
) -> Result<Vec<u32>, QueryError> {
    let inferred = plan
        .get_parameter_types()
        .map_err(|e| QueryError::from_datafusion(e, query_id))?;
    let mut max_index = declared.len();
    let mut found = false;
    plan.apply_with_subqueries(|node| {
        node.apply_expressions(|expr| {
            expr.apply(|e| {
                if let datafusion::logical_expr::Expr::Placeholder(p) = e
                    && let Some(n) = p.id.strip_prefix('$').and_then(|n| n.parse::<usize>().ok())
                {
                    max_index = max_index.max(n);
                    found = true;
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    })
    .map_err(|e| QueryError::from_datafusion(e, query_id))?;
    Ok((1..=max_index)
        .map(|n| {
            let declared_oid = declared.get(n - 1).copied().unwrap_or(0);
            if declared_oid != 0 {
                return declared_oid;
            }
            inferred
                .get(&format!("${n}"))
                .and_then(|t| t.as_ref())
                .map(|t| pgtype::pg_type_of(t).oid)
                .unwrap_or(pgtype::oid::TEXT)
        })
        .collect())
}

/// Gives unnamed items of the outermost select list PostgreSQL's column names (`count`,
/// `lower`, `?column?`) as aliases, and returns the names to report (duplicates allowed, as in
/// PostgreSQL; the aliases themselves are made unique for DataFusion).
fn postgres_column_names(statement: &mut Statement) -> Option<Vec<Option<String>>> {
    let Statement::Query(query) = statement else {
        return None;
    };
    let mut body = query.body.as_mut();
    loop {
        match body {
            SetExpr::SetOperation { left, .. } => body = left.as_mut(),
            SetExpr::Query(q) => body = q.body.as_mut(),
            _ => break,
        }
    }
    let SetExpr::Select(select) = body else {
        return None;
    };
    let mut names = Vec::new();
    // Every output name DataFusion sees must be unique; PostgreSQL reports duplicates as they
    // are. `next` remembers the last suffix tried per name, so that a list of twenty thousand
    // `count(*)` is named in linear time.
    let mut used = std::collections::HashSet::new();
    let mut next: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut unique = |name: &str, used: &mut std::collections::HashSet<String>| -> String {
        if used.insert(name.to_string()) {
            return name.to_string();
        }
        let n = next.entry(name.to_string()).or_insert(1);
        loop {
            let alias = format!("{name}_{n}");
            *n += 1;
            if used.insert(alias.clone()) {
                return alias;
            }
        }
    };
    for item in &mut select.projection {
        match item {
            SelectItem::UnnamedExpr(expr) => {
                let name = figure_column_name(expr);
                let is_plain_column =
                    matches!(expr, Expr::Identifier(_) | Expr::CompoundIdentifier(_));
                let alias = unique(&name, &mut used);
                if !(is_plain_column && alias == name) {
                    *item = SelectItem::ExprWithAlias {
                        expr: expr.clone(),
                        alias: Ident::with_quote('"', alias),
                    };
                }
                names.push(Some(name));
            }
            SelectItem::ExprWithAlias { expr, alias } => {
                let name = identifier_name(alias);
                let unique_alias = unique(&name, &mut used);
                if unique_alias != name {
                    *item = SelectItem::ExprWithAlias {
                        expr: expr.clone(),
                        alias: Ident::with_quote('"', unique_alias),
                    };
                }
                names.push(Some(name));
            }
            // Wildcards expand to a number of columns only the planner knows: give up on
            // renaming and use DataFusion's names (plain column names) for the whole list.
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => return None,
            _ => return None,
        }
    }
    Some(names)
}

/// The `typname` PostgreSQL uses for a cast target written as `data_type`.
fn type_column_name(data_type: &str) -> String {
    crate::pg::functions::type_oid_by_sql_name(data_type)
        .and_then(pgtype::by_oid)
        .map(|t| t.name.to_string())
        .unwrap_or_else(|| {
            let lower = data_type.to_lowercase();
            lower
                .split(['(', ' '])
                .next()
                .unwrap_or("?column?")
                .to_string()
        })
}

/// An identifier as PostgreSQL names it: unquoted ones fold to lower case (`ii.COLUMN_NAME`
/// is the column `column_name`; Power BI's navigator looks its columns up by those names).
fn identifier_name(ident: &Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_lowercase()
    }
}

/// PostgreSQL's FigureColname: the name a select item gets without an alias.
fn figure_column_name(expr: &Expr) -> String {
    match expr {
        Expr::Identifier(ident) => identifier_name(ident),
        Expr::CompoundIdentifier(parts) => parts.last().map(identifier_name).unwrap_or_default(),
        Expr::Function(f) => f
            .name
            .0
            .last()
            .map(|p| match p {
                datafusion::sql::sqlparser::ast::ObjectNamePart::Identifier(i) => {
                    i.value.to_lowercase()
                }
                other => other.to_string(),
            })
            .unwrap_or_else(|| "?column?".to_string()),
        // A cast names the column after its argument when that has a name, else after the
        // target type (`1.5::float8` is "float8", `date '...'` is "date").
        Expr::Cast {
            expr, data_type, ..
        } => match figure_column_name(expr).as_str() {
            "?column?" => type_column_name(&data_type.to_string()),
            name => name.to_string(),
        },
        Expr::TypedString(typed) => type_column_name(&typed.data_type.to_string()),
        Expr::Value(v) if matches!(v.value, datafusion::sql::sqlparser::ast::Value::Boolean(_)) => {
            "bool".to_string()
        }
        Expr::Nested(inner) => figure_column_name(inner),
        Expr::Case { .. } => "case".to_string(),
        Expr::Exists { .. } => "exists".to_string(),
        Expr::Array(_) => "array".to_string(),
        Expr::Subquery(q) => match q.body.as_ref() {
            SetExpr::Select(s) if s.projection.len() == 1 => match &s.projection[0] {
                SelectItem::UnnamedExpr(e) => figure_column_name(e),
                SelectItem::ExprWithAlias { alias, .. } => identifier_name(alias),
                _ => "?column?".to_string(),
            },
            _ => "?column?".to_string(),
        },
        Expr::Extract { .. } => "extract".to_string(),
        Expr::Interval(_) => "interval".to_string(),
        Expr::Substring { .. } => "substring".to_string(),
        Expr::Trim { .. } => "btrim".to_string(),
        Expr::Position { .. } => "position".to_string(),
        Expr::Ceil { .. } => "ceil".to_string(),
        Expr::Floor { .. } => "floor".to_string(),
        _ => "?column?".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(sql: &str) -> Option<Vec<Option<String>>> {
        let mut statement = classify::parse(sql).unwrap().remove(0);
        postgres_column_names(&mut statement)
    }

    #[test]
    fn column_names_like_postgres() {
        let got = names("select count(*), count(*), 1, a.b, lower(x), x::int, case when true then 1 end, y as z from t a").unwrap();
        let got: Vec<String> = got.into_iter().map(|n| n.unwrap()).collect();
        assert_eq!(
            got,
            ["count", "count", "?column?", "b", "lower", "x", "case", "z"]
        );
        let got = names("select ii.COLUMN_NAME, X AS DATA_TYPE, \"Quoted\", c.oid::pg_catalog.regclass from t ii").unwrap();
        let got: Vec<String> = got.into_iter().map(|n| n.unwrap()).collect();
        assert_eq!(got, ["column_name", "data_type", "Quoted", "oid"]);
        assert!(names("select * from t").is_none());
    }

    #[test]
    fn duplicate_names_get_unique_aliases_in_linear_time() {
        let sql = format!(
            "select id, id, a.id, x as id, {} from t a",
            vec!["count(*)"; 1_600].join(", ")
        );
        let mut statement = classify::parse(&sql).unwrap().remove(0);
        let names = postgres_column_names(&mut statement).unwrap();
        assert_eq!(names.len(), 1_604);
        assert!(names[..4].iter().all(|n| n.as_deref() == Some("id")));
        assert!(names[4..].iter().all(|n| n.as_deref() == Some("count")));
        let text = statement.to_string();
        assert!(text.starts_with("SELECT id, id AS \"id_1\", a.id AS \"id_2\", x AS \"id_3\", count(*) AS \"count\", count(*) AS \"count_1\""), "{}", &text[..200]);
    }
}
