//! Running physical plans off the network runtime, with a memory limit per query, and a stream
//! whose drop stops the query.
//!
//! DataFusion executes on whatever tokio runtime polls it; if that were the runtime serving
//! sockets, one heavy query would stall every other client (and the CancelRequest meant to stop
//! it). So plans run on [`runtime`], a process-wide pool sized to the machine, and send record
//! batches back through a small bounded channel: the client reading slowly slows the query
//! down (memory does not grow with the result), and dropping the [`RowStream`] aborts the task,
//! which drops DataFusion's stream and with it every operator and spawned partition task.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::Session;
use datafusion::common::alias::AliasGenerator;
use datafusion::config::ConfigOptions;
use datafusion::execution::FunctionRegistry;
use datafusion::execution::TaskContext;
use datafusion::execution::context::SessionState;
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::LogicalPlan;
use datafusion::optimizer::OptimizerConfig;
use futures::StreamExt;
use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use super::cache::{CachedAnswer, Filler};
use super::error::QueryError;
use super::memory::{GovernedPool, QueryExtension, QueryMemory};

/// Stack of every thread of the statement runtime. Parsing, planning, optimisation and
/// execution recurse over statements (`sql::shape` bounds how deep they may be), and so do
/// DataFusion's and deltalake's passes over the plans made from them, some of which re-link a
/// long conjunction into a chain as deep as it is long. Only the pages a thread touches are
/// committed; the network runtime keeps tokio's 2 MiB stacks because it never plans.
pub const STATEMENT_STACK: usize = 256 << 20;

/// The process-wide statement runtime: every statement is parsed, planned and executed here,
/// never on the network runtime.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .max(2);
        match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("lakehouse-exec")
            .thread_stack_size(STATEMENT_STACK)
            // Blocking work of a statement (file reads of the object store) gets the same
            // stacks; far fewer threads than tokio's default 512 of them.
            .max_blocking_threads(64)
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(err) => {
                // Without an execution pool the server cannot answer any query.
                tracing::error!(error = %err, "cannot start the execution runtime");
                std::process::abort()
            }
        }
    })
}

/// Aborts a task when dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs a statement's work (parsing, planning) on the statement runtime and waits for it.
/// Dropping the returned future (cancel, statement timeout, client gone) aborts the task at its
/// next await point. A panic is an internal error with a query id, never an answer.
pub async fn off_network<T, F>(work: F) -> Result<T, QueryError>
where
    T: Send + 'static,
    F: std::future::Future<Output = Result<T, QueryError>> + Send + 'static,
{
    let mut task = AbortOnDrop(runtime().spawn(work));
    match (&mut task.0).await {
        Ok(result) => result,
        Err(err) => Err(join_error(err, super::error::detached_query_id())),
    }
}

/// Runs `work` (planning) on the statement runtime's blocking pool, driven to completion
/// there: DataFusion's optimizer passes are synchronous, so a statement abandoned for its
/// timeout or cancel keeps computing until its current pass ends. On a worker thread that
/// would hold up every session's statements (even `RESET`) behind it; on the blocking pool it
/// costs CPU only. Returns when `work` does, or is dropped with the statement (the work then
/// finishes in the background and its result is discarded).
pub async fn off_network_blocking<T, F>(work: F) -> Result<T, QueryError>
where
    T: Send + 'static,
    F: std::future::Future<Output = Result<T, QueryError>> + Send + 'static,
{
    let handle = runtime().handle().clone();
    let task = runtime().spawn_blocking(move || handle.block_on(work));
    match task.await {
        Ok(result) => result,
        Err(err) => Err(join_error(err, super::error::detached_query_id())),
    }
}

/// The error a failed task reports: a panic is logged (with its message, never row values:
/// panics carry no data) and reaches the client as 'internal error (query id N)'.
fn join_error(err: tokio::task::JoinError, query_id: u64) -> QueryError {
    if err.is_panic() {
        let payload = err.into_panic();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_string());
        tracing::error!(query_id, panic = %message, "a statement panicked");
        return QueryError::internal(query_id, &"the statement panicked");
    }
    QueryError::internal(query_id, &"the statement's task was stopped")
}

/// Rows of one executing query.
pub struct RowStream {
    source: Source,
    /// `schema.table.column` read by the optimized plan (filled before the first batch).
    pub columns_read: Arc<Mutex<Vec<String>>>,
}

/// Where a [`RowStream`]'s batches come from.
enum Source {
    /// A query running on the execution runtime, aborted when dropped.
    Running {
        receiver: mpsc::Receiver<Result<RecordBatch, QueryError>>,
        /// Set by the task once it has sent its last batch: a channel that closes without it
        /// means the task died (a panic, or the memory guard), never the end of the answer.
        finished: Arc<std::sync::atomic::AtomicBool>,
        /// `None` once the task's end has been reported.
        task: Option<AbortOnDrop<()>>,
        /// What the query holds; says why it was cancelled for memory.
        memory: Arc<QueryMemory>,
    },
    /// A cached answer, handed out without a task or a channel.
    Cached(std::vec::IntoIter<RecordBatch>),
}

impl std::fmt::Debug for RowStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RowStream")
    }
}

impl RowStream {
    /// The next batch; `None` at the end. Empty batches are skipped.
    pub async fn next(&mut self) -> Option<Result<RecordBatch, QueryError>> {
        match &mut self.source {
            Source::Cached(batches) => batches.find(|b| b.num_rows() > 0).map(Ok),
            Source::Running {
                receiver,
                finished,
                task,
                memory,
            } => loop {
                match receiver.recv().await {
                    Some(Ok(batch)) if batch.num_rows() == 0 => continue,
                    Some(other) => return Some(other),
                    None if finished.load(std::sync::atomic::Ordering::Acquire) => return None,
                    None => {
                        let mut task = task.take()?;
                        let ended = (&mut task.0).await;
                        if let Some(err) = memory.killed() {
                            return Some(Err(err.clone()));
                        }
                        return Some(match ended {
                            Err(err) => Err(join_error(err, memory.query_id)),
                            Ok(()) => Err(QueryError::internal(
                                memory.query_id,
                                &"the query ended without its answer",
                            )),
                        });
                    }
                }
            },
        }
    }
}

/// Starts executing `plan` (already enforced, parameters bound) on the execution runtime.
/// With a `fill`, the answer goes to the result cache once the query has run to its end.
pub fn start(
    state: Arc<SessionState>,
    plan: LogicalPlan,
    options: StartOptions,
    permit: Option<OwnedSemaphorePermit>,
    fill: Option<Filler>,
) -> RowStream {
    let StartOptions {
        query_id,
        memory_limit,
        governed_explain,
    } = options;
    // Two batches in flight: enough to overlap encoding with execution, small enough that a
    // slow client holds the query back instead of the server buffering its result.
    let (sender, receiver) = mpsc::channel(2);
    let columns_read = Arc::new(Mutex::new(Vec::new()));
    let columns = columns_read.clone();
    let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done = finished.clone();
    let memory = QueryMemory::register(query_id);
    let held = memory.clone();
    let task = runtime().spawn(async move {
        let _permit = permit;
        let query = Query {
            state,
            memory_limit,
            memory: held,
            governed_explain,
        };
        let result = run(query, plan, &sender, &columns, fill).await;
        if let Err(err) = result {
            let _ = sender.send(Err(err)).await;
        }
        done.store(true, std::sync::atomic::Ordering::Release);
    });
    memory.set_task(task.abort_handle());
    RowStream {
        source: Source::Running {
            receiver,
            finished,
            task: Some(AbortOnDrop(task)),
            memory,
        },
        columns_read,
    }
}

/// Hands out a cached answer. Its batches are in memory already, so there is nothing to run
/// on the execution runtime: the connection takes them directly (dropping the stream, on
/// cancel or timeout, just stops handing them out).
pub fn replay(answer: CachedAnswer) -> RowStream {
    RowStream {
        source: Source::Cached(
            answer
                .batches
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .into_iter(),
        ),
        columns_read: Arc::new(Mutex::new(answer.columns)),
    }
}

/// The session's optimizer settings with this statement's start time. `now()`,
/// `current_date` and friends are folded to it by the optimizer; without one they stay
/// unfolded and fail when evaluated (or when a Parquet pruning predicate carries them). The
/// session state is shared by its statements, so the time is lent here rather than set there.
struct StatementClock<'a> {
    state: &'a SessionState,
    start: chrono::DateTime<chrono::Utc>,
}

impl OptimizerConfig for StatementClock<'_> {
    fn query_execution_start_time(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        Some(self.start)
    }

    fn alias_generator(&self) -> &Arc<AliasGenerator> {
        OptimizerConfig::alias_generator(self.state)
    }

    fn options(&self) -> Arc<ConfigOptions> {
        self.state.config_options().clone()
    }

    fn function_registry(&self) -> Option<&dyn FunctionRegistry> {
        Some(self.state)
    }
}

/// `SessionState::optimize` with this statement's start time.
fn optimize(state: &SessionState, plan: &LogicalPlan) -> datafusion::error::Result<LogicalPlan> {
    if matches!(plan, LogicalPlan::Explain(_)) {
        // EXPLAIN records every rule's output: DataFusion's own path, on a copy of the state.
        let mut state = state.clone();
        let options = state.config_options().clone();
        state.execution_props_mut().mark_start_execution(options);
        return state.optimize(plan);
    }
    let analyzed =
        state
            .analyzer()
            .execute_and_check(plan.clone(), state.config_options(), |_, _| {})?;
    let clock = StatementClock {
        state,
        start: chrono::Utc::now(),
    };
    state.optimizer().optimize(analyzed, &clock, |_, _| {})
}

/// How a query runs.
#[derive(Debug, Clone, Copy)]
pub struct StartOptions {
    /// The query's id (audit trail, internal errors).
    pub query_id: u64,
    /// Bytes its pool may hold.
    pub memory_limit: u64,
    /// EXPLAIN shows only what a governed user may see (`sql::explain`).
    pub governed_explain: bool,
}

/// What a running query needs besides its plan.
struct Query {
    state: Arc<SessionState>,
    memory_limit: u64,
    memory: Arc<QueryMemory>,
    governed_explain: bool,
}

async fn run(
    query: Query,
    plan: LogicalPlan,
    sender: &mpsc::Sender<Result<RecordBatch, QueryError>>,
    columns: &Mutex<Vec<String>>,
    mut fill: Option<Filler>,
) -> Result<(), QueryError> {
    let query_id = query.memory.query_id;
    let state = query.state.as_ref();
    let df_err = |e| QueryError::from_datafusion(e, query_id);
    let optimized = optimize(state, &plan).map_err(df_err)?;
    *columns.lock() = columns_read(&optimized);
    let physical = state
        .query_planner()
        .create_physical_plan(
            &optimized,
            &StatementSession::new(state, &query.memory, query.governed_explain),
        )
        .await
        .map_err(df_err)?;
    // Physical operators hold their functions already; the task context's registries are
    // only for plan deserialisation, which never happens here. `TaskContext::from(&state)`
    // would copy several hundred registry entries per statement (a visible share of a
    // `select 1`), so the context gets empty ones.
    let context = TaskContext::new(
        None,
        state.session_id().to_string(),
        state.config().clone(),
        HashMap::new(),
        HashMap::new(),
        HashMap::new(),
        HashMap::new(),
        query_runtime(state, query.memory_limit, &query.memory),
    );
    let mut stream =
        datafusion::physical_plan::execute_stream(physical, Arc::new(context)).map_err(df_err)?;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(df_err)?;
        query.memory.note_output(batch.get_array_memory_size());
        if let Some(fill) = fill.as_mut() {
            fill.push(&batch);
        }
        if sender.send(Ok(batch)).await.is_err() {
            // The client went away or the statement was canceled: stop (and cache nothing).
            return Ok(());
        }
    }
    if let Some(fill) = fill {
        fill.finish(columns.lock().clone());
    }
    Ok(())
}

/// The shared runtime environment (object stores, caches, spill files) with a memory pool of
/// its own for this query. When operators that can spill (sorts, aggregations, joins) hit the
/// limit they spill; the others fail with 53200, and the server stays up. The pool's growth
/// also counts against the process budget (`memory`).
fn query_runtime(
    state: &SessionState,
    memory_limit: u64,
    memory: &Arc<QueryMemory>,
) -> Arc<RuntimeEnv> {
    let shared = state.runtime_env();
    let limit = usize::try_from(memory_limit).unwrap_or(usize::MAX);
    let pool = TrackConsumersPool::new(
        FairSpillPool::new(limit),
        std::num::NonZeroUsize::new(3).unwrap_or(std::num::NonZeroUsize::MIN),
    );
    Arc::new(RuntimeEnv {
        memory_pool: Arc::new(GovernedPool::new(Arc::new(pool), memory.clone())),
        disk_manager: shared.disk_manager.clone(),
        cache_manager: shared.cache_manager.clone(),
        object_store_registry: shared.object_store_registry.clone(),
    })
}

/// The session as the physical planner of one statement sees it: the session's state, with
/// execution properties of the statement's own, whose configuration carries the query to the
/// functions it calls ([`QueryExtension`]). The shared state cannot carry it, and a copy of it
/// per statement would copy its function registries.
struct StatementSession<'a> {
    state: &'a SessionState,
    props: datafusion::execution::context::ExecutionProps,
    table_options: datafusion::config::TableOptions,
}

impl<'a> StatementSession<'a> {
    fn new(
        state: &'a SessionState,
        memory: &Arc<QueryMemory>,
        governed_explain: bool,
    ) -> StatementSession<'a> {
        let mut options = state.config_options().as_ref().clone();
        options.extensions.insert(QueryExtension {
            memory: Some(memory.clone()),
            governed_explain,
        });
        let mut props = state.execution_props().clone();
        props.config_options = Some(Arc::new(options));
        StatementSession {
            state,
            props,
            table_options: state.table_options().clone(),
        }
    }
}

#[async_trait::async_trait]
impl Session for StatementSession<'_> {
    fn session_id(&self) -> &str {
        self.state.session_id()
    }

    fn config(&self) -> &datafusion::prelude::SessionConfig {
        self.state.config()
    }

    fn catalog_list(&self) -> Arc<dyn datafusion::catalog::CatalogProviderList> {
        Session::catalog_list(self.state)
    }

    fn query_planner(&self) -> Arc<dyn datafusion::execution::context::QueryPlanner + Send + Sync> {
        self.state.query_planner().clone()
    }

    fn optimize(&self, plan: &LogicalPlan) -> datafusion::error::Result<LogicalPlan> {
        self.state.optimize(plan)
    }

    fn physical_optimizers(
        &self,
    ) -> &[Arc<dyn datafusion::physical_optimizer::PhysicalOptimizerRule + Send + Sync>] {
        Session::physical_optimizers(self.state)
    }

    fn statistics_registry(
        &self,
    ) -> Option<&datafusion::physical_plan::operator_statistics::StatisticsRegistry> {
        Session::statistics_registry(self.state)
    }

    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
    ) -> datafusion::error::Result<Arc<dyn datafusion::physical_plan::ExecutionPlan>> {
        let optimized = self.state.optimize(logical_plan)?;
        self.state
            .query_planner()
            .create_physical_plan(&optimized, self)
            .await
    }

    fn create_physical_expr(
        &self,
        expr: datafusion::logical_expr::Expr,
        df_schema: &datafusion::common::DFSchema,
    ) -> datafusion::error::Result<Arc<dyn datafusion::physical_plan::PhysicalExpr>> {
        Session::create_physical_expr(self.state, expr, df_schema)
    }

    fn scalar_functions(&self) -> &HashMap<String, Arc<datafusion::logical_expr::ScalarUDF>> {
        Session::scalar_functions(self.state)
    }

    fn higher_order_functions(
        &self,
    ) -> &HashMap<String, Arc<datafusion::logical_expr::HigherOrderUDF>> {
        Session::higher_order_functions(self.state)
    }

    fn aggregate_functions(&self) -> &HashMap<String, Arc<datafusion::logical_expr::AggregateUDF>> {
        Session::aggregate_functions(self.state)
    }

    fn window_functions(&self) -> &HashMap<String, Arc<datafusion::logical_expr::WindowUDF>> {
        Session::window_functions(self.state)
    }

    fn extension_type_registry(
        &self,
    ) -> &datafusion::logical_expr::registry::ExtensionTypeRegistryRef {
        Session::extension_type_registry(self.state)
    }

    fn runtime_env(&self) -> &Arc<RuntimeEnv> {
        self.state.runtime_env()
    }

    fn execution_props(&self) -> &datafusion::execution::context::ExecutionProps {
        &self.props
    }

    fn as_any(&self) -> &dyn std::any::Any {
        // Table providers that need the concrete state (deltalake's scan) find the session's:
        // only the functions of this statement's own plan need its properties.
        self.state
    }

    fn table_options(&self) -> &datafusion::config::TableOptions {
        &self.table_options
    }

    fn table_options_mut(&mut self) -> &mut datafusion::config::TableOptions {
        &mut self.table_options
    }

    fn task_ctx(&self) -> Arc<TaskContext> {
        self.state.task_ctx()
    }
}

/// Makes every operator give way to the tokio scheduler.
///
/// DataFusion only makes leaves cooperative (they consume tokio's task budget per batch). An
/// operator that produces batches from memory (a cross join, an unnest, an aggregate emitting
/// its groups) under a filter that discards them never returns `Pending`, so its task cannot be
/// aborted: a canceled or timed-out query would keep burning CPU until it finishes. Wrapping
/// every inner operator in `CooperativeExec` costs one budget check per batch and makes every
/// query stop at its next batch once its stream is dropped.
///
/// The rule descends only through DataFusion's operators and ours. An operator of another
/// crate (deltalake's `DeltaScanExec`) is wrapped from outside but never rewritten inside: its
/// children are its own business, and deltalake's deletion-vector scan refuses any child it did
/// not plan ("DV child contains unsupported node CooperativeExec").
#[derive(Debug, Default)]
pub struct CooperativeEverywhere;

impl CooperativeEverywhere {
    fn cooperate(
        node: Arc<dyn datafusion::physical_plan::ExecutionPlan>,
    ) -> datafusion::common::Result<Arc<dyn datafusion::physical_plan::ExecutionPlan>> {
        use datafusion::physical_plan::coop::CooperativeExec;
        use datafusion::physical_plan::execution_plan::SchedulingType;
        let children = node.children();
        if children.is_empty() {
            return Ok(node);
        }
        let any: &dyn std::any::Any = node.as_ref();
        if any.downcast_ref::<CooperativeExec>().is_some() {
            return Ok(node);
        }
        let node = if owned_operator(node.as_ref()) {
            let children: Vec<_> = children.into_iter().cloned().collect();
            let rewritten = children
                .iter()
                .map(|child| Self::cooperate(Arc::clone(child)))
                .collect::<datafusion::common::Result<Vec<_>>>()?;
            let changed = rewritten
                .iter()
                .zip(&children)
                .any(|(new, old)| !Arc::ptr_eq(new, old));
            if changed {
                use datafusion::physical_plan::execution_plan::{
                    ChildrenPropertiesMode, ReplaceChildrenOptions,
                };
                node.replace_children(
                    rewritten,
                    ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
                )?
            } else {
                node
            }
        } else {
            node
        };
        if node.properties().scheduling_type == SchedulingType::Cooperative {
            return Ok(node);
        }
        Ok(Arc::new(CooperativeExec::new(node)))
    }
}

/// Whether an operator is DataFusion's or ours, so that a rule of ours may rewrite its children.
fn owned_operator(node: &dyn datafusion::physical_plan::ExecutionPlan) -> bool {
    use datafusion::physical_plan::{
        aggregates::AggregateExec, analyze::AnalyzeExec, async_func::AsyncFuncExec,
        buffer::BufferExec, coalesce_partitions::CoalescePartitionsExec, filter::FilterExec,
        joins::CrossJoinExec, joins::HashJoinExec, joins::NestedLoopJoinExec,
        joins::PiecewiseMergeJoinExec, joins::SortMergeJoinExec, joins::SymmetricHashJoinExec,
        limit::GlobalLimitExec, limit::LocalLimitExec, projection::ProjectionExec,
        recursive_query::RecursiveQueryExec, repartition::RepartitionExec,
        scalar_subquery::ScalarSubqueryExec, sorts::partial_sort::PartialSortExec,
        sorts::partitioned_topk::PartitionedTopKExec, sorts::sort::SortExec,
        sorts::sort_preserving_merge::SortPreservingMergeExec, union::InterleaveExec,
        union::UnionExec, unnest::UnnestExec, windows::BoundedWindowAggExec,
        windows::WindowAggExec,
    };
    let any: &dyn std::any::Any = node;
    macro_rules! one_of {
        ($($t:ty),* $(,)?) => { false $(|| any.downcast_ref::<$t>().is_some())* };
    }
    one_of!(
        AggregateExec,
        AnalyzeExec,
        AsyncFuncExec,
        BufferExec,
        CoalescePartitionsExec,
        FilterExec,
        CrossJoinExec,
        HashJoinExec,
        NestedLoopJoinExec,
        PiecewiseMergeJoinExec,
        SortMergeJoinExec,
        SymmetricHashJoinExec,
        GlobalLimitExec,
        LocalLimitExec,
        ProjectionExec,
        RecursiveQueryExec,
        RepartitionExec,
        ScalarSubqueryExec,
        PartialSortExec,
        PartitionedTopKExec,
        SortExec,
        SortPreservingMergeExec,
        InterleaveExec,
        UnionExec,
        UnnestExec,
        BoundedWindowAggExec,
        WindowAggExec,
        super::enforce::SecurityBarrierExec,
        super::explain::GovernedAnalyzeExec,
    )
}

impl datafusion::physical_optimizer::PhysicalOptimizerRule for CooperativeEverywhere {
    fn optimize(
        &self,
        plan: Arc<dyn datafusion::physical_plan::ExecutionPlan>,
        _config: &datafusion::config::ConfigOptions,
    ) -> datafusion::common::Result<Arc<dyn datafusion::physical_plan::ExecutionPlan>> {
        // Recursion bounded by the plan's depth, which `shape` bounds, on a statement stack.
        Self::cooperate(plan)
    }

    fn name(&self) -> &str {
        "cooperative_everywhere"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Above this many groups an ordered aggregation with a limit is planned as a plain
/// aggregation followed by a top-k sort, instead of DataFusion's grouped top-k aggregation.
pub const MAX_TOPK_GROUPS: usize = 65_536;

/// Keeps DataFusion's grouped top-k aggregation to limits it can allocate.
///
/// `TopKAggregation` hands a `GROUP BY ... ORDER BY ... LIMIT n` (and `SELECT DISTINCT`,
/// `UNION`) to a stream that allocates its hash table, heap and index for `n` groups up front,
/// outside the memory pool: `LIMIT 9223372036854775807`, which tools send for "no limit",
/// panics with "Hash table capacity overflow", and a limit of a few hundred million takes
/// gigabytes before the first row is read. Past [`MAX_TOPK_GROUPS`] the plain aggregation
/// (whose groups are counted in the pool) followed by the sort's own top-k, which grows with
/// what it keeps, gives the same answer.
#[derive(Debug, Default)]
pub struct BoundedTopKAggregation;

impl datafusion::physical_optimizer::PhysicalOptimizerRule for BoundedTopKAggregation {
    fn optimize(
        &self,
        plan: Arc<dyn datafusion::physical_plan::ExecutionPlan>,
        _config: &datafusion::config::ConfigOptions,
    ) -> datafusion::common::Result<Arc<dyn datafusion::physical_plan::ExecutionPlan>> {
        use datafusion::common::tree_node::{Transformed, TreeNode};
        use datafusion::physical_plan::aggregates::AggregateExec;
        plan.transform_up(|node| {
            let any: &dyn std::any::Any = node.as_ref();
            let Some(aggregate) = any.downcast_ref::<AggregateExec>() else {
                return Ok(Transformed::no(node));
            };
            match aggregate.limit_options() {
                // Only the ordered form (the grouped top-k stream) allocates by the limit; the
                // unordered one (`LimitedDistinctAggregation`) only stops early.
                Some(options)
                    if options.descending().is_some() && options.limit() > MAX_TOPK_GROUPS =>
                {
                    Ok(Transformed::yes(
                        Arc::new(aggregate.with_new_limit_options(None)) as _,
                    ))
                }
                _ => Ok(Transformed::no(node)),
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "bounded_topk_aggregation"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// The lake columns an optimized plan reads, from the projections of its scans.
fn columns_read(plan: &LogicalPlan) -> Vec<String> {
    use datafusion::common::tree_node::TreeNodeRecursion;
    let mut out = Vec::new();
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && let Ok(provider) = datafusion::datasource::source_as_provider(&scan.source)
            && let Some(table) = super::enforce::PolicyTable::from_provider(provider.as_ref())
        {
            let schema = provider.schema();
            let indices: Vec<usize> = match &scan.projection {
                Some(p) => p.clone(),
                None => (0..schema.fields().len()).collect(),
            };
            for idx in indices {
                if let Some(field) = schema.fields().get(idx) {
                    out.push(format!(
                        "{}.{}.{}",
                        table.entry.schema,
                        table.entry.name,
                        field.name()
                    ));
                }
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::DataType;
    use datafusion::logical_expr::{
        ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
    };

    /// A function that panics, as a bug in a function would.
    #[derive(Debug, PartialEq, Eq, Hash)]
    struct Panics {
        signature: Signature,
    }

    impl ScalarUDFImpl for Panics {
        fn name(&self) -> &str {
            "injected_panic"
        }

        fn signature(&self) -> &Signature {
            &self.signature
        }

        fn return_type(&self, _args: &[DataType]) -> datafusion::error::Result<DataType> {
            Ok(DataType::Int64)
        }

        fn invoke_with_args(
            &self,
            _args: ScalarFunctionArgs,
        ) -> datafusion::error::Result<ColumnarValue> {
            panic!("injected panic")
        }
    }

    fn state() -> Arc<SessionState> {
        let mut state = datafusion::execution::SessionStateBuilder::new()
            .with_default_features()
            .with_physical_optimizer_rule(Arc::new(BoundedTopKAggregation))
            .with_physical_optimizer_rule(Arc::new(CooperativeEverywhere))
            .build();
        datafusion::execution::FunctionRegistry::register_udf(
            &mut state,
            Arc::new(ScalarUDF::new_from_impl(Panics {
                signature: Signature::any(1, Volatility::Volatile),
            })),
        )
        .unwrap();
        Arc::new(state)
    }

    /// `sql` started as query `query_id` over [`state`].
    async fn started(sql: &str, query_id: u64) -> RowStream {
        let state = state();
        let plan = state.create_logical_plan(sql).await.unwrap();
        let options = StartOptions {
            query_id,
            memory_limit: 1 << 30,
            governed_explain: false,
        };
        start(state, plan, options, None, None)
    }

    async fn first_error(sql: &str) -> QueryError {
        let mut stream = started(sql, 42).await;
        loop {
            match stream.next().await {
                Some(Ok(_)) => continue,
                Some(Err(err)) => return err,
                None => panic!("{sql}: ended like an answer"),
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panic_is_an_internal_error_never_an_answer() {
        // In the query's own task, and in the tasks DataFusion spawns for partitions.
        for sql in [
            "select injected_panic(1)",
            "select sum(injected_panic(value)) from generate_series(1, 100000)",
            "select count(*) from (select injected_panic(value) v from generate_series(1, 100000)) t group by v",
        ] {
            let err = first_error(sql).await;
            assert_eq!(err.code, crate::sql::error::code::INTERNAL_ERROR, "{sql}");
            assert!(err.message.contains("query id 42"), "{err}");
        }
        // Planning work off the network runtime, too.
        let err = off_network(async { panic!("injected panic") as Result<(), QueryError> })
            .await
            .unwrap_err();
        assert_eq!(err.code, crate::sql::error::code::INTERNAL_ERROR);
    }

    async fn answer(sql: &str) -> Vec<datafusion::arrow::record_batch::RecordBatch> {
        let mut stream = started(sql, 7).await;
        let mut batches = Vec::new();
        while let Some(batch) = stream.next().await {
            batches.push(batch.unwrap_or_else(|err| panic!("{sql}: {err}")));
        }
        batches
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_limit_meaning_no_limit_is_not_allocated_up_front() {
        // Found by fuzz/ (statements): the grouped top-k aggregation sized its hash table by
        // the limit and panicked with "Hash table capacity overflow".
        for (sql, rows) in [
            (
                "select distinct value % 7 v from generate_series(1, 1000) order by v desc limit 9223372036854775807",
                7,
            ),
            (
                "select value % 5 k, max(value) m from generate_series(1, 1000) group by k order by m desc limit 9223372036854775807",
                5,
            ),
            (
                "select * from ((select 1.5::float8 a) union (select 2.5::float8 a) order by 1 desc limit 9223372036854775807 offset 0) t",
                2,
            ),
            // Small limits keep the top-k aggregation, and answer the same.
            (
                "select distinct value % 7 v from generate_series(1, 1000) order by v desc limit 3",
                3,
            ),
        ] {
            let got: usize = answer(sql).await.iter().map(|b| b.num_rows()).sum();
            assert_eq!(got, rows, "{sql}");
        }
    }
}
