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

/// The process-wide execution runtime.
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
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
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
        _task: AbortOnDrop,
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
            Source::Running { receiver, .. } => loop {
                match receiver.recv().await {
                    Some(Ok(batch)) if batch.num_rows() == 0 => continue,
                    other => return other,
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
    memory_limit: u64,
    permit: Option<OwnedSemaphorePermit>,
    query_id: u64,
    fill: Option<Filler>,
) -> RowStream {
    // Two batches in flight: enough to overlap encoding with execution, small enough that a
    // slow client holds the query back instead of the server buffering its result.
    let (sender, receiver) = mpsc::channel(2);
    let columns_read = Arc::new(Mutex::new(Vec::new()));
    let columns = columns_read.clone();
    let task = runtime().spawn(async move {
        let _permit = permit;
        let result = run(state, plan, memory_limit, query_id, &sender, &columns, fill).await;
        if let Err(err) = result {
            let _ = sender.send(Err(err)).await;
        }
    });
    RowStream {
        source: Source::Running {
            receiver,
            _task: AbortOnDrop(task),
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

async fn run(
    state: Arc<SessionState>,
    plan: LogicalPlan,
    memory_limit: u64,
    query_id: u64,
    sender: &mpsc::Sender<Result<RecordBatch, QueryError>>,
    columns: &Mutex<Vec<String>>,
    mut fill: Option<Filler>,
) -> Result<(), QueryError> {
    let df_err = |e| QueryError::from_datafusion(e, query_id);
    let optimized = optimize(&state, &plan).map_err(df_err)?;
    *columns.lock() = columns_read(&optimized);
    let physical = state
        .query_planner()
        .create_physical_plan(&optimized, state.as_ref())
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
        query_runtime(&state, memory_limit),
    );
    let mut stream =
        datafusion::physical_plan::execute_stream(physical, Arc::new(context)).map_err(df_err)?;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(df_err)?;
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
/// limit they spill; the others fail with 53200, and the server stays up.
fn query_runtime(state: &SessionState, memory_limit: u64) -> Arc<RuntimeEnv> {
    let shared = state.runtime_env();
    let limit = usize::try_from(memory_limit).unwrap_or(usize::MAX);
    let pool = TrackConsumersPool::new(
        FairSpillPool::new(limit),
        std::num::NonZeroUsize::new(3).unwrap_or(std::num::NonZeroUsize::MIN),
    );
    Arc::new(RuntimeEnv {
        memory_pool: Arc::new(pool),
        disk_manager: shared.disk_manager.clone(),
        cache_manager: shared.cache_manager.clone(),
        object_store_registry: shared.object_store_registry.clone(),
    })
}

/// Makes every operator give way to the tokio scheduler.
///
/// DataFusion only makes leaves cooperative (they consume tokio's task budget per batch). An
/// operator that produces batches from memory (a cross join, an unnest, an aggregate emitting
/// its groups) under a filter that discards them never returns `Pending`, so its task cannot be
/// aborted: a canceled or timed-out query would keep burning CPU until it finishes. Wrapping
/// every inner operator in `CooperativeExec` costs one budget check per batch and makes every
/// query stop at its next batch once its stream is dropped.
#[derive(Debug, Default)]
pub struct CooperativeEverywhere;

impl datafusion::physical_optimizer::PhysicalOptimizerRule for CooperativeEverywhere {
    fn optimize(
        &self,
        plan: Arc<dyn datafusion::physical_plan::ExecutionPlan>,
        _config: &datafusion::config::ConfigOptions,
    ) -> datafusion::common::Result<Arc<dyn datafusion::physical_plan::ExecutionPlan>> {
        use datafusion::common::tree_node::{Transformed, TreeNode};
        use datafusion::physical_plan::coop::CooperativeExec;
        use datafusion::physical_plan::execution_plan::SchedulingType;
        plan.transform_up(|node| {
            let any: &dyn std::any::Any = node.as_ref();
            let skip = node.children().is_empty()
                || any.downcast_ref::<CooperativeExec>().is_some()
                || node.properties().scheduling_type == SchedulingType::Cooperative;
            if skip {
                Ok(Transformed::no(node))
            } else {
                Ok(Transformed::yes(Arc::new(CooperativeExec::new(node)) as _))
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "cooperative_everywhere"
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
