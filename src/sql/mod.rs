//! SQL: classify a statement, plan it against the session's catalog, enforce the policy on the
//! plan, execute it off the network runtime.
//!
//! - [`classify`]: the read-only allowlist.
//! - [`cache`]: the result cache (keyed by user, policy, table versions and the enforced plan).
//! - [`enforce`]: grants, row filters and masks on the resolved logical plan.
//! - [`explain`]: EXPLAIN rendered for users who may not see everything.
//! - [`shape`]: how wide and deep a statement may be; rebalancing of long chains.
//! - [`session`]: one connection's session.
//! - [`exec`]: the statement runtime, memory limits, cancellation by drop.
//! - [`memory`]: caps on the values functions make; the process-wide memory budget.
//! - [`error`]: errors and their SQLSTATEs.
//!
//! PostgreSQL's syntax, functions and settings are `pg`'s; this is the security and execution
//! core. Never imports `pgwire`: everything here is testable without a socket.

pub mod cache;
pub mod classify;
pub mod enforce;
pub mod error;
pub mod exec;
pub mod explain;
pub mod memory;
pub mod policy_check;
pub mod session;
pub mod shape;
pub mod zone;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::SessionState;
use datafusion::prelude::SessionConfig;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub use error::QueryError;
pub use session::{FieldInfo, Outcome, Prepared, QuerySession, SessionInfo, TxState};

use crate::catalog::registry::Registry;
use crate::catalog::session::SystemContext;
use crate::catalog::session::{CATALOG_NAME, SEARCH_PATH_SCHEMA};
use crate::policy::PolicyStore;

/// Server-wide query limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Default `statement_timeout`.
    pub statement_timeout: Option<Duration>,
    /// Memory one query may use.
    pub query_memory_limit: u64,
    /// Queries executing at once.
    pub max_concurrent_queries: usize,
    /// Bytes of answers the result cache may hold (0 disables it).
    pub result_cache_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            statement_timeout: None,
            query_memory_limit: 2 * 1024 * 1024 * 1024,
            max_concurrent_queries: 16,
            result_cache_bytes: 256 * 1024 * 1024,
        }
    }
}

/// What every session shares: the catalog, the policy, the system state and DataFusion's base
/// configuration.
pub struct Engine {
    /// The live catalog.
    pub registry: Arc<Registry>,
    /// The current policy.
    pub policies: Arc<PolicyStore>,
    /// Audit log and server facts.
    pub system: Arc<SystemContext>,
    /// Limits.
    pub limits: Limits,
    /// Answers of repeated queries.
    pub cache: Arc<cache::ResultCache>,
    base_state: SessionState,
    query_slots: Arc<Semaphore>,
    next_query_id: AtomicU64,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Engine")
    }
}

impl Engine {
    /// An engine over a registry and a policy store. `base_state` must come from
    /// [`base_state`] (the registry registers object stores in its runtime).
    pub fn new(
        registry: Arc<Registry>,
        policies: Arc<PolicyStore>,
        system: Arc<SystemContext>,
        limits: Limits,
        base_state: SessionState,
    ) -> Arc<Engine> {
        Arc::new(Engine {
            query_slots: Arc::new(Semaphore::new(limits.max_concurrent_queries.max(1))),
            cache: Arc::new(cache::ResultCache::new(limits.result_cache_bytes)),
            registry,
            policies,
            system,
            limits,
            base_state,
            next_query_id: AtomicU64::new(1),
        })
    }

    /// A copy of the base DataFusion state.
    pub fn base_state(&self) -> SessionState {
        self.base_state.clone()
    }

    /// A fresh query id.
    pub fn next_query_id(&self) -> u64 {
        self.next_query_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Waits for an execution slot.
    pub async fn query_slot(&self) -> OwnedSemaphorePermit {
        match self.query_slots.clone().acquire_owned().await {
            Ok(permit) => permit,
            // The semaphore is never closed.
            Err(_) => std::process::abort(),
        }
    }
}

/// DataFusion's configuration for every session: PostgreSQL-flavoured, no DataFusion
/// `information_schema` (we serve PostgreSQL's), our catalog as default, the security barrier
/// in the physical planner, PostgreSQL type names in the SQL planner.
pub fn base_state() -> SessionState {
    let mut config = SessionConfig::new()
        .with_information_schema(false)
        .with_default_catalog_and_schema(CATALOG_NAME, SEARCH_PATH_SCHEMA)
        .with_create_default_catalog_and_schema(false);
    let options = config.options_mut();
    options.sql_parser.dialect = datafusion::config::Dialect::PostgreSQL;
    options.explain.show_statistics = false;
    // Parquet statistics and page indexes prune files and pages of Delta tables.
    options.execution.parquet.pushdown_filters = false;
    // The session time zone (UTC until a session sets another): `now()` and `timestamptz`
    // literals are instants (`sql::zone`).
    options.execution.time_zone = Some(zone::UTC.to_string());
    let mut builder = SessionStateBuilder::new()
        .with_config(config)
        .with_default_features()
        .with_query_planner(Arc::new(enforce::LakehouseQueryPlanner))
        .with_physical_optimizer_rule(Arc::new(exec::BoundedTopKAggregation))
        .with_physical_optimizer_rule(Arc::new(exec::CooperativeEverywhere))
        .with_type_planner(Arc::new(crate::pg::syntax::PgTypePlanner))
        .with_optimizer_rule(Arc::new(crate::catalog::system::EmptySystemRelations))
        .with_analyzer_rule(zone::rule());
    // Untyped literals take the other operand's type, as in PostgreSQL (`indisprimary = 't'`).
    builder
        .expr_planners()
        .get_or_insert_with(Vec::new)
        .insert(0, Arc::new(crate::pg::syntax::PgLiteralPlanner));
    let mut state = builder.build();
    if let Err(err) = memory::cap_functions(&mut state) {
        // Registering into the state's own maps does not fail in practice; say so if it does.
        tracing::error!(error = %err, "cannot cap the functions that make large values");
    }
    state
}
