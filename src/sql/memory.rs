//! Memory: how large one value may be, and how much all running queries together may hold.
//!
//! DataFusion bounds what its operators reserve (sorts, aggregations, joins: each query has its
//! own pool of `query_memory_limit`), but not what a scalar function makes: one
//! `repeat('x', 1000000000)` is a gigabyte that no pool sees, and sixteen queries each within
//! their own limit can still exhaust the machine. So:
//!
//! - **Values are capped.** The functions whose output can be far larger than their input
//!   (`repeat`, `lpad`, `rpad`, `replace`, `regexp_replace`, `array_repeat`, `array_resize`,
//!   `range`, `generate_series`, `array_to_string`) compute the size of their result before
//!   making it, and refuse (54000) a value over [`MAX_VALUE_BYTES`] or one call's result over
//!   [`MAX_CALL_BYTES`]. See [`cap_functions`].
//! - **The process has a budget** (`server.max_memory`), a promise about its resident memory.
//!   A watchdog reads every 10 ms what the process uses: its resident memory less the pages
//!   jemalloc (the global allocator) holds free, which it gives back to the system within a
//!   tenth of a second and reuses first (so a query cancelled a moment ago does not count
//!   against the next ones). Past [`SOFT_LIMIT_PERCENT`] of the budget it cancels, with 53200, the query
//!   that holds the most (its pool reservations and what its functions and result made
//!   lately); and no reservation or capped function may take the process past
//!   [`HARD_LIMIT_PERCENT`] of it: that query fails with 53200 at once.
//!
//! A cancelled query's task is aborted; its client gets the 53200 error, never a short answer.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::config::{ConfigEntry, ConfigExtension, ExtensionOptions};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::execution::FunctionRegistry;
use datafusion::execution::memory_pool::{
    MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation,
};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl};
use parking_lot::Mutex;

use super::error::{QueryError, code};

/// The allocator of the process: it knows which of its resident pages are free, gives them
/// back to the system from background threads (`.cargo/config.toml` sets a 100 ms decay),
/// and holds fragmentation down in a server that runs for months.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Largest value a function may make (PostgreSQL allows 1 GB; nothing a hospital's reports
/// need comes near this).
pub const MAX_VALUE_BYTES: u64 = 64 << 20;
/// Largest result of one call of a capped function (one batch of rows).
pub const MAX_CALL_BYTES: u64 = 256 << 20;
/// Share of `server.max_memory` beyond which the biggest query is cancelled.
pub const SOFT_LIMIT_PERCENT: u64 = 75;
/// Share of `server.max_memory` no reservation or capped function may pass: the rest is the
/// margin for what grows between two readings of the watchdog.
pub const HARD_LIMIT_PERCENT: u64 = 90;

/// Bytes the process used at the watchdog's last reading (0 before the first one): its
/// resident memory less the free pages jemalloc holds.
pub fn used_bytes() -> u64 {
    USED.load(Ordering::Relaxed)
}

static USED: AtomicU64 = AtomicU64::new(0);

/// Reads the resident memory of the process (`VmRSS` of `/proc/self/status`).
pub fn read_resident() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Reads what the process uses: resident memory less the free pages jemalloc holds (pages
/// it keeps resident that hold no allocation, nor its own metadata).
pub fn read_used() -> Option<u64> {
    use tikv_jemalloc_ctl::{epoch, stats};
    epoch::advance().ok()?;
    let resident = stats::resident::read().ok()? as u64;
    let active = stats::active::read().ok()? as u64;
    let metadata = stats::metadata::read().ok()? as u64;
    let free_pages = resident.saturating_sub(active + metadata);
    Some(read_resident()?.saturating_sub(free_pages))
}

/// The process-wide budget and the queries that hold memory.
struct Governor {
    /// `server.max_memory` (0 until configured: no budget).
    limit: AtomicU64,
    queries: Mutex<HashMap<u64, Weak<QueryMemory>>>,
}

fn governor() -> &'static Governor {
    static GOVERNOR: OnceLock<Governor> = OnceLock::new();
    GOVERNOR.get_or_init(|| Governor {
        limit: AtomicU64::new(0),
        queries: Mutex::new(HashMap::new()),
    })
}

/// A budget for a machine: 80% of its memory, or of the cgroup's limit when the process runs in
/// a container with one.
pub fn default_max_memory() -> u64 {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemTotal:"))?.to_string();
            line.trim_start_matches("MemTotal:")
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kb| kb * 1024);
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok());
    let machine = match (total, cgroup) {
        (Some(t), Some(c)) => t.min(c),
        (Some(t), None) => t,
        (None, Some(c)) => c,
        (None, None) => 8 << 30,
    };
    machine / 10 * 8
}

/// Sets the process budget (`server.max_memory`) and starts the watchdog (once).
pub fn configure(max_memory: u64) {
    governor().limit.store(max_memory, Ordering::Relaxed);
    static WATCHDOG: OnceLock<()> = OnceLock::new();
    WATCHDOG.get_or_init(|| {
        // Freed memory goes back to the system from jemalloc's own threads, not only when a
        // thread that freed it allocates again.
        if let Err(err) = tikv_jemalloc_ctl::background_thread::write(true) {
            tracing::warn!(error = %err, "jemalloc background threads are not available");
        }
        let spawned = std::thread::Builder::new()
            .name("lakehouse-memory".to_string())
            .spawn(watchdog);
        if let Err(err) = spawned {
            tracing::error!(error = %err, "cannot start the memory watchdog");
        }
    });
}

/// The configured budget, if any.
pub fn max_memory() -> Option<u64> {
    Some(governor().limit.load(Ordering::Relaxed)).filter(|l| *l > 0)
}

/// Whether allocating `additional` more bytes would pass the budget.
fn over_budget(additional: u64) -> Option<QueryError> {
    let limit = max_memory()?;
    let heap = used_bytes();
    (heap.saturating_add(additional) > limit / 100 * HARD_LIMIT_PERCENT).then(|| {
        QueryError::new(
            code::OUT_OF_MEMORY,
            "out of memory: the server's memory limit is reached",
        )
        .with_detail(format!(
            "the server holds {} MB of server.max_memory {} MB; this query asked for {} MB more",
            heap >> 20,
            limit >> 20,
            additional >> 20
        ))
        .with_hint("try again when other queries have finished, or narrow the query")
    })
}

fn watchdog() {
    let mut last_kill: Option<(Instant, Weak<QueryMemory>)> = None;
    let mut last_decay = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(10));
        let Some(used) = read_used() else {
            tracing::warn!(
                "the memory the process uses is unknown: server.max_memory is not enforced"
            );
            return;
        };
        USED.store(used, Ordering::Relaxed);
        let Some(limit) = max_memory() else {
            continue;
        };
        let queries: Vec<Arc<QueryMemory>> = {
            let mut map = governor().queries.lock();
            map.retain(|_, q| q.strong_count() > 0);
            map.values().filter_map(Weak::upgrade).collect()
        };
        if last_decay.elapsed() >= Duration::from_millis(100) {
            tracing::trace!(
                used_mb = used >> 20,
                resident_mb = read_resident().unwrap_or(0) >> 20,
                queries = queries.len(),
                "memory"
            );
            // What functions made a while ago has been consumed by now.
            for q in &queries {
                let v = q.recent_bytes.load(Ordering::Relaxed);
                q.recent_bytes.store(v / 2, Ordering::Relaxed);
            }
            last_decay = Instant::now();
        }
        let heap = used;
        if heap <= limit / 100 * SOFT_LIMIT_PERCENT {
            continue;
        }
        // Give the last victim time to let go of its memory before choosing another.
        if let Some((at, victim)) = &last_kill
            && at.elapsed() < Duration::from_millis(500)
            && victim.strong_count() > 0
        {
            continue;
        }
        let Some(victim) = queries
            .iter()
            .filter(|q| q.killed.get().is_none())
            .max_by_key(|q| (q.estimate(), q.query_id))
            // A query that holds next to nothing is not what fills the memory: cancelling it
            // would not help.
            .filter(|q| q.estimate() >= limit / 100)
        else {
            continue;
        };
        tracing::warn!(
            query_id = victim.query_id,
            used_mb = heap >> 20,
            max_memory_mb = limit >> 20,
            query_mb = victim.estimate() >> 20,
            "memory limit near: cancelling the query that holds the most"
        );
        victim.kill(
            QueryError::new(
                code::OUT_OF_MEMORY,
                "canceling statement: the server is running out of memory",
            )
            .with_detail(format!(
                "the server held {} MB of server.max_memory {} MB; this query held the most",
                heap >> 20,
                limit >> 20
            )),
        );
        last_kill = Some((Instant::now(), Arc::downgrade(victim)));
    }
}

/// What one running query holds, as far as the process budget is concerned.
#[derive(Debug)]
pub struct QueryMemory {
    /// The query.
    pub query_id: u64,
    /// Bytes reserved in the query's pool by its operators.
    reserved: AtomicU64,
    /// Bytes the query's capped functions and its result made lately (halved every 100 ms).
    recent_bytes: AtomicU64,
    /// Why the query was cancelled, once it was.
    killed: OnceLock<QueryError>,
    /// Stops the query's task.
    abort: Mutex<Option<tokio::task::AbortHandle>>,
}

impl QueryMemory {
    /// Registers a running query with the process budget.
    pub fn register(query_id: u64) -> Arc<QueryMemory> {
        let memory = Arc::new(QueryMemory {
            query_id,
            reserved: AtomicU64::new(0),
            recent_bytes: AtomicU64::new(0),
            killed: OnceLock::new(),
            abort: Mutex::new(None),
        });
        governor()
            .queries
            .lock()
            .insert(query_id, Arc::downgrade(&memory));
        memory
    }

    /// The task to abort when the query is cancelled for memory.
    pub fn set_task(&self, abort: tokio::task::AbortHandle) {
        if self.killed.get().is_some() {
            abort.abort();
        }
        *self.abort.lock() = Some(abort);
    }

    /// The error of a query cancelled for memory.
    pub fn killed(&self) -> Option<&QueryError> {
        self.killed.get()
    }

    /// Counts a batch of the query's result.
    pub fn note_output(&self, bytes: usize) {
        self.recent_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    fn estimate(&self) -> u64 {
        self.reserved.load(Ordering::Relaxed) + self.recent_bytes.load(Ordering::Relaxed)
    }

    fn kill(&self, err: QueryError) {
        if self.killed.set(err).is_ok()
            && let Some(abort) = self.abort.lock().as_ref()
        {
            abort.abort();
        }
    }
}

impl Drop for QueryMemory {
    fn drop(&mut self) {
        governor().queries.lock().remove(&self.query_id);
    }
}

/// A query's memory pool: DataFusion's own (a per-query limit), whose growth also counts
/// against the process budget.
#[derive(Debug)]
pub struct GovernedPool {
    inner: Arc<dyn MemoryPool>,
    query: Arc<QueryMemory>,
}

impl GovernedPool {
    /// Wraps a query's pool.
    pub fn new(inner: Arc<dyn MemoryPool>, query: Arc<QueryMemory>) -> GovernedPool {
        GovernedPool { inner, query }
    }

    fn sync(&self) {
        self.query
            .reserved
            .store(self.inner.reserved() as u64, Ordering::Relaxed);
    }
}

impl std::fmt::Display for GovernedPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "governed({})", self.inner)
    }
}

impl MemoryPool for GovernedPool {
    fn name(&self) -> &str {
        "governed"
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.inner.register(consumer)
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.inner.unregister(consumer);
        self.sync();
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.inner.grow(reservation, additional);
        self.sync();
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.inner.shrink(reservation, shrink);
        self.sync();
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        if let Some(err) = self.query.killed() {
            return Err(DataFusionError::External(Box::new(err.clone())));
        }
        if let Some(err) = over_budget(additional as u64) {
            return Err(DataFusionError::External(Box::new(err)));
        }
        self.inner.try_grow(reservation, additional)?;
        self.sync();
        Ok(())
    }

    fn reserved(&self) -> usize {
        self.inner.reserved()
    }

    fn memory_limit(&self) -> MemoryLimit {
        self.inner.memory_limit()
    }
}

/// The running query, as the configuration of its physical plan carries it to the planner
/// and to functions.
#[derive(Debug, Clone, Default)]
pub struct QueryExtension {
    /// The query's memory (absent while the optimizer folds constants).
    pub memory: Option<Arc<QueryMemory>>,
    /// EXPLAIN is rendered for a user who may not see everything (`sql::explain`).
    pub governed_explain: bool,
}

impl ConfigExtension for QueryExtension {
    const PREFIX: &'static str = "lakehouse_query";
}

impl ExtensionOptions for QueryExtension {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn cloned(&self) -> Box<dyn ExtensionOptions> {
        Box::new(self.clone())
    }

    fn set(&mut self, key: &str, _value: &str) -> Result<()> {
        Err(DataFusionError::Configuration(format!(
            "{key} cannot be set"
        )))
    }

    fn entries(&self) -> Vec<ConfigEntry> {
        Vec::new()
    }
}

/// How a capped function's result size follows from its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Growth {
    /// `repeat(text, n)`.
    Repeat,
    /// `lpad/rpad(text, n [, fill])`: n characters of at most 4 bytes.
    Pad,
    /// `replace(text, from, to)`.
    Replace,
    /// `regexp_replace(text, pattern, replacement [, flags])`.
    RegexpReplace,
    /// `array_repeat(element, n)`, `array_resize(array, n [, fill])`: n elements.
    Elements,
    /// `range`/`generate_series(start, stop [, step])` as scalar functions.
    Series,
    /// `array_to_string(array, separator [, null])`.
    Join,
}

/// The functions whose results can be far larger than their arguments.
const CAPPED: &[(&str, Growth)] = &[
    ("repeat", Growth::Repeat),
    ("lpad", Growth::Pad),
    ("rpad", Growth::Pad),
    ("replace", Growth::Replace),
    ("regexp_replace", Growth::RegexpReplace),
    ("array_repeat", Growth::Elements),
    ("array_resize", Growth::Elements),
    ("range", Growth::Series),
    ("generate_series", Growth::Series),
    ("array_to_string", Growth::Join),
];

/// Replaces the registered functions that can make huge values with capped ones.
pub fn cap_functions(state: &mut datafusion::execution::SessionState) -> Result<()> {
    for (name, growth) in CAPPED {
        let Some(inner) = state.scalar_functions().get(*name).cloned() else {
            continue;
        };
        let capped = ScalarUDF::new_from_impl(Capped {
            inner: inner.inner().clone().into(),
            growth: *growth,
        });
        state.register_udf(Arc::new(capped))?;
    }
    Ok(())
}

/// A function whose result is sized before it is made.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Capped {
    inner: datafusion::logical_expr::udf_eq::UdfEq<Arc<dyn ScalarUDFImpl>>,
    growth: Growth,
}

impl Capped {
    fn check(&self, args: &ScalarFunctionArgs) -> Result<()> {
        let (largest, total) = result_size(self.growth, &args.args)?;
        let name = self.inner.name();
        let refuse = |what: String| {
            Err(DataFusionError::External(Box::new(
                QueryError::new(code::PROGRAM_LIMIT_EXCEEDED, what)
                    .with_hint("functions may make values of up to 64 MB"),
            )))
        };
        if largest > MAX_VALUE_BYTES {
            return refuse(format!(
                "result of {name}() would be {largest} bytes, larger than the limit of {} MB",
                MAX_VALUE_BYTES >> 20
            ));
        }
        if total > MAX_CALL_BYTES {
            return refuse(format!(
                "results of {name}() for {} rows would be {total} bytes, larger than the limit of {} MB per batch",
                args.number_rows,
                MAX_CALL_BYTES >> 20
            ));
        }
        let query = args
            .config_options
            .extensions
            .get::<QueryExtension>()
            .and_then(|e| e.memory.clone());
        if let Some(query) = &query {
            if let Some(err) = query.killed() {
                return Err(DataFusionError::External(Box::new(err.clone())));
            }
            query.recent_bytes.fetch_add(total, Ordering::Relaxed);
        }
        if let Some(err) = over_budget(total) {
            return Err(DataFusionError::External(Box::new(err)));
        }
        Ok(())
    }
}

#[warn(clippy::missing_trait_methods)]
impl ScalarUDFImpl for Capped {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn display_name(&self, args: &[datafusion::logical_expr::Expr]) -> Result<String> {
        #[expect(deprecated)]
        self.inner.display_name(args)
    }

    fn schema_name(&self, args: &[datafusion::logical_expr::Expr]) -> Result<String> {
        self.inner.schema_name(args)
    }

    fn signature(&self) -> &datafusion::logical_expr::Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(
        &self,
        args: datafusion::logical_expr::ReturnFieldArgs,
    ) -> Result<datafusion::arrow::datatypes::FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn is_nullable(
        &self,
        args: &[datafusion::logical_expr::Expr],
        schema: &dyn datafusion::common::ExprSchema,
    ) -> bool {
        #[expect(deprecated)]
        self.inner.is_nullable(args, schema)
    }

    fn is_strict(&self) -> bool {
        self.inner.is_strict()
    }

    fn invoke_with_args(&self, mut args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        self.check(&args)?;
        if matches!(self.growth, Growth::Pad)
            && let Some(length) = args.args.get_mut(1)
        {
            // DataFusion 55's lpad/rpad size their buffer from the lengths cast to usize, so a
            // negative length overflows the allocation (found by fuzz/, statements). PostgreSQL
            // pads to '' for any length <= 0, which 0 also gives.
            *length = match std::mem::replace(length, ColumnarValue::Scalar(ScalarValue::Null)) {
                ColumnarValue::Scalar(ScalarValue::Int64(Some(n))) => {
                    ColumnarValue::Scalar(ScalarValue::Int64(Some(n.max(0))))
                }
                ColumnarValue::Array(a) if a.data_type() == &DataType::Int64 => {
                    let n: datafusion::arrow::array::Int64Array =
                        datafusion::arrow::compute::kernels::arity::unary(
                            a.as_primitive::<Int64Type>(),
                            |n: i64| n.max(0),
                        );
                    ColumnarValue::Array(Arc::new(n))
                }
                other => other,
            };
        }
        self.inner.invoke_with_args(args)
    }

    fn with_updated_config(&self, config: &datafusion::config::ConfigOptions) -> Option<ScalarUDF> {
        let updated = self.inner.with_updated_config(config)?;
        Some(ScalarUDF::new_from_impl(Capped {
            inner: updated.inner().clone().into(),
            growth: self.growth,
        }))
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn simplify(
        &self,
        args: Vec<datafusion::logical_expr::Expr>,
        info: &datafusion::logical_expr::simplify::SimplifyContext,
    ) -> Result<datafusion::logical_expr::simplify::ExprSimplifyResult> {
        self.inner.simplify(args, info)
    }

    fn preimage(
        &self,
        args: &[datafusion::logical_expr::Expr],
        lit_expr: &datafusion::logical_expr::Expr,
        info: &datafusion::logical_expr::simplify::SimplifyContext,
    ) -> Result<datafusion::logical_expr::preimage::PreimageResult> {
        self.inner.preimage(args, lit_expr, info)
    }

    fn conditional_arguments<'a>(
        &self,
        args: &'a [datafusion::logical_expr::Expr],
    ) -> Option<(
        Vec<&'a datafusion::logical_expr::Expr>,
        Vec<&'a datafusion::logical_expr::Expr>,
    )> {
        self.inner.conditional_arguments(args)
    }

    fn short_circuits(&self) -> bool {
        self.inner.short_circuits()
    }

    fn evaluate_bounds(
        &self,
        input: &[&datafusion::logical_expr::interval_arithmetic::Interval],
    ) -> Result<datafusion::logical_expr::interval_arithmetic::Interval> {
        self.inner.evaluate_bounds(input)
    }

    fn propagate_constraints(
        &self,
        interval: &datafusion::logical_expr::interval_arithmetic::Interval,
        inputs: &[&datafusion::logical_expr::interval_arithmetic::Interval],
    ) -> Result<Option<Vec<datafusion::logical_expr::interval_arithmetic::Interval>>> {
        self.inner.propagate_constraints(interval, inputs)
    }

    fn struct_field_mapping(
        &self,
        literal_args: &[Option<ScalarValue>],
    ) -> Option<datafusion::logical_expr::StructFieldMapping> {
        self.inner.struct_field_mapping(literal_args)
    }

    fn output_ordering(
        &self,
        inputs: &[datafusion::logical_expr::sort_properties::ExprProperties],
    ) -> Result<datafusion::logical_expr::sort_properties::SortProperties> {
        self.inner.output_ordering(inputs)
    }

    fn preserves_lex_ordering(
        &self,
        inputs: &[datafusion::logical_expr::sort_properties::ExprProperties],
    ) -> Result<bool> {
        self.inner.preserves_lex_ordering(inputs)
    }

    fn strictly_order_preserving(
        &self,
        inputs: &[datafusion::logical_expr::sort_properties::ExprProperties],
    ) -> Result<bool> {
        self.inner.strictly_order_preserving(inputs)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn documentation(&self) -> Option<&datafusion::logical_expr::Documentation> {
        self.inner.documentation()
    }

    fn placement(
        &self,
        args: &[datafusion::logical_expr::ExpressionPlacement],
    ) -> datafusion::logical_expr::ExpressionPlacement {
        self.inner.placement(args)
    }
}

/// One argument of a call, row by row.
enum Arg<'a> {
    Scalar(&'a ScalarValue),
    Array(&'a ArrayRef),
}

impl<'a> Arg<'a> {
    fn of(value: &'a ColumnarValue) -> Arg<'a> {
        match value {
            ColumnarValue::Scalar(s) => Arg::Scalar(s),
            ColumnarValue::Array(a) => Arg::Array(a),
        }
    }
}

/// Byte lengths of a text or binary argument (0 for NULL).
fn byte_lengths(arg: Option<&ColumnarValue>, rows: usize) -> Result<Vec<u64>> {
    let Some(arg) = arg else {
        return Ok(vec![0; rows]);
    };
    Ok(match Arg::of(arg) {
        Arg::Scalar(s) => {
            let len = match s {
                ScalarValue::Utf8(Some(v))
                | ScalarValue::LargeUtf8(Some(v))
                | ScalarValue::Utf8View(Some(v)) => v.len() as u64,
                ScalarValue::Binary(Some(v))
                | ScalarValue::LargeBinary(Some(v))
                | ScalarValue::BinaryView(Some(v)) => v.len() as u64,
                other => other.size() as u64,
            };
            vec![len; rows]
        }
        Arg::Array(a) => {
            match a.data_type() {
                DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Utf8View
                | DataType::Binary
                | DataType::LargeBinary
                | DataType::BinaryView => {
                    // Bytes per value; NULL takes none.
                    let lengths = datafusion::arrow::compute::kernels::length::length(a.as_ref())?;
                    let lengths = datafusion::arrow::compute::cast(&lengths, &DataType::Int64)?;
                    let lengths = lengths.as_primitive::<Int64Type>();
                    lengths
                        .iter()
                        .map(|l| l.unwrap_or(0).max(0) as u64)
                        .collect()
                }
                // Anything else: its average size per row.
                _ => {
                    let each = (a.get_array_memory_size() / a.len().max(1)) as u64;
                    vec![each; a.len()]
                }
            }
        }
    })
}

/// Integer values of a count argument (NULL and negative are 0).
fn counts(arg: Option<&ColumnarValue>, rows: usize) -> Result<Vec<u64>> {
    let Some(arg) = arg else {
        return Ok(vec![0; rows]);
    };
    let array = arg.to_array(match arg {
        ColumnarValue::Scalar(_) => 1,
        ColumnarValue::Array(a) => a.len(),
    })?;
    let ints = datafusion::arrow::compute::cast(&array, &DataType::Int64)?;
    let ints = ints.as_primitive::<Int64Type>();
    let values: Vec<u64> = (0..ints.len())
        .map(|i| {
            if ints.is_null(i) {
                0
            } else {
                ints.value(i).max(0) as u64
            }
        })
        .collect();
    Ok(match arg {
        ColumnarValue::Scalar(_) => vec![values.first().copied().unwrap_or(0); rows],
        ColumnarValue::Array(_) => values,
    })
}

/// Start, stop and step of a series as numbers of one unit (integers, or nanoseconds for
/// dates, timestamps and intervals), per row.
fn series_counts(args: &[ColumnarValue], rows: usize) -> Result<Vec<u64>> {
    let as_i128 = |arg: &ColumnarValue| -> Result<Vec<Option<i128>>> {
        let array = arg.to_array(match arg {
            ColumnarValue::Scalar(_) => 1,
            ColumnarValue::Array(a) => a.len(),
        })?;
        let values: Vec<Option<i128>> = match array.data_type() {
            DataType::Interval(_) => {
                let nanos = datafusion::arrow::compute::cast(
                    &array,
                    &DataType::Interval(datafusion::arrow::datatypes::IntervalUnit::MonthDayNano),
                )?;
                let nanos =
                    nanos.as_primitive::<datafusion::arrow::datatypes::IntervalMonthDayNanoType>();
                (0..nanos.len())
                    .map(|i| {
                        (!nanos.is_null(i)).then(|| {
                            let v = nanos.value(i);
                            (i128::from(v.months) * 30 + i128::from(v.days)) * 86_400_000_000_000
                                + i128::from(v.nanoseconds)
                        })
                    })
                    .collect()
            }
            DataType::Date32 | DataType::Date64 | DataType::Timestamp(..) => {
                let ts = datafusion::arrow::compute::cast(
                    &array,
                    &DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Nanosecond, None),
                )?;
                let ts = datafusion::arrow::compute::cast(&ts, &DataType::Int64)?;
                let ts = ts.as_primitive::<Int64Type>();
                (0..ts.len())
                    .map(|i| (!ts.is_null(i)).then(|| i128::from(ts.value(i))))
                    .collect()
            }
            _ => {
                let ints = datafusion::arrow::compute::cast(&array, &DataType::Int64)?;
                let ints = ints.as_primitive::<Int64Type>();
                (0..ints.len())
                    .map(|i| (!ints.is_null(i)).then(|| i128::from(ints.value(i))))
                    .collect()
            }
        };
        Ok(match arg {
            ColumnarValue::Scalar(_) => vec![values.first().copied().flatten(); rows],
            ColumnarValue::Array(_) => values,
        })
    };
    let (start, stop, step) = match args {
        [stop] => (vec![Some(0); rows], as_i128(stop)?, vec![Some(1); rows]),
        [start, stop] => (as_i128(start)?, as_i128(stop)?, vec![Some(1); rows]),
        [start, stop, step, ..] => (as_i128(start)?, as_i128(stop)?, as_i128(step)?),
        [] => return Ok(vec![0; rows]),
    };
    Ok((0..rows)
        .map(|i| match (start[i], stop[i], step[i]) {
            (Some(a), Some(b), Some(s)) if s != 0 => {
                let n = (b - a) / s + 1;
                u64::try_from(n.max(0)).unwrap_or(u64::MAX)
            }
            _ => 0,
        })
        .collect())
}

/// The largest value and the total bytes a call would make.
fn result_size(growth: Growth, args: &[ColumnarValue]) -> Result<(u64, u64)> {
    // All-scalar calls make one value.
    let rows = args
        .iter()
        .find_map(|a| match a {
            ColumnarValue::Array(a) => Some(a.len()),
            ColumnarValue::Scalar(_) => None,
        })
        .unwrap_or(1);
    let sizes: Vec<u64> = match growth {
        Growth::Repeat => {
            let text = byte_lengths(args.first(), rows)?;
            let n = counts(args.get(1), rows)?;
            text.iter()
                .zip(&n)
                .map(|(t, n)| t.saturating_mul(*n))
                .collect()
        }
        Growth::Pad => counts(args.get(1), rows)?
            .into_iter()
            .map(|n| n.saturating_mul(4))
            .collect(),
        Growth::Replace => {
            let text = byte_lengths(args.first(), rows)?;
            let from = byte_lengths(args.get(1), rows)?;
            let to = byte_lengths(args.get(2), rows)?;
            (0..rows)
                .map(|i| {
                    let matches = text[i] / from[i].max(1) + 1;
                    text[i].saturating_add(matches.saturating_mul(to[i]))
                })
                .collect()
        }
        Growth::RegexpReplace => {
            let text = byte_lengths(args.first(), rows)?;
            let replacement = byte_lengths(args.get(2), rows)?;
            // A group reference in the replacement expands to text of the match; matches do
            // not overlap, so all expansions of one reference add up to the text at most.
            let references = match args.get(2) {
                Some(ColumnarValue::Scalar(
                    ScalarValue::Utf8(Some(r))
                    | ScalarValue::LargeUtf8(Some(r))
                    | ScalarValue::Utf8View(Some(r)),
                )) => r.chars().filter(|c| matches!(c, '\\' | '$')).count() as u64,
                _ => replacement.iter().copied().max().unwrap_or(0),
            };
            (0..rows)
                .map(|i| {
                    text[i]
                        .saturating_add((text[i] + 1).saturating_mul(replacement[i]))
                        .saturating_add(references.saturating_mul(text[i]))
                })
                .collect()
        }
        Growth::Elements => {
            let element = byte_lengths(args.first(), rows)?;
            let n = counts(args.get(1), rows)?;
            // array_resize's first argument is the whole array: an element is at most that.
            (0..rows)
                .map(|i| n[i].saturating_mul(element[i].max(8) + 8))
                .collect()
        }
        Growth::Series => series_counts(args, rows)?
            .into_iter()
            .map(|n| n.saturating_mul(16))
            .collect(),
        Growth::Join => {
            let (elements, values) = match args.first() {
                Some(ColumnarValue::Array(a)) => {
                    let elements = match a.data_type() {
                        DataType::List(_) => a.as_list::<i32>().values().len(),
                        DataType::LargeList(_) => a.as_list::<i64>().values().len(),
                        _ => a.len(),
                    };
                    (elements as u64, a.get_array_memory_size() as u64)
                }
                Some(ColumnarValue::Scalar(s)) => {
                    let elements = match s {
                        ScalarValue::List(l) => l.values().len(),
                        ScalarValue::LargeList(l) => l.values().len(),
                        _ => 1,
                    };
                    (
                        (elements as u64).saturating_mul(rows as u64),
                        (s.size() as u64).saturating_mul(rows as u64),
                    )
                }
                None => (0, 0),
            };
            let separator = byte_lengths(args.get(1), rows)?;
            let null = byte_lengths(args.get(2), rows)?;
            let per_element = separator.iter().copied().max().unwrap_or(0)
                + null.iter().copied().max().unwrap_or(0);
            // The array's total, as one "value": a joined row is never larger than all rows.
            vec![values.saturating_add(elements.saturating_mul(per_element))]
        }
    };
    let largest = sizes.iter().copied().max().unwrap_or(0);
    let total = sizes.iter().fold(0u64, |a, b| a.saturating_add(*b));
    Ok((largest, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(v: ScalarValue) -> ColumnarValue {
        ColumnarValue::Scalar(v)
    }

    #[tokio::test]
    async fn negative_pad_lengths_pad_to_nothing() {
        // Found by fuzz/ (statements): DataFusion's lpad sized its buffer from -1 as usize.
        let mut state = datafusion::execution::SessionStateBuilder::new()
            .with_default_features()
            .build();
        cap_functions(&mut state).unwrap();
        let ctx = datafusion::prelude::SessionContext::new_with_state(state);
        let sql = "select lpad(x, n, '*') l, rpad(x, n) r \
                   from (values ('ab', -1), ('ab', 0), ('ab', 4)) t(x, n) order by n";
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let column = |i: usize| -> Vec<String> {
            let array = datafusion::arrow::compute::cast(batches[0].column(i), &DataType::Utf8);
            let array = array.unwrap();
            let strings = array.as_string::<i32>();
            strings
                .iter()
                .map(|v| v.unwrap_or("NULL").to_string())
                .collect()
        };
        assert_eq!(column(0), ["", "", "**ab"]);
        assert_eq!(column(1), ["", "", "ab  "]);
    }

    #[test]
    fn sizes_of_growing_functions() {
        let text = scalar(ScalarValue::Utf8(Some("ab".to_string())));
        let n = scalar(ScalarValue::Int64(Some(1_000_000_000)));
        assert_eq!(
            result_size(Growth::Repeat, &[text.clone(), n.clone()]).unwrap(),
            (2_000_000_000, 2_000_000_000)
        );
        let (largest, _) = result_size(Growth::Pad, &[text.clone(), n]).unwrap();
        assert!(largest > MAX_VALUE_BYTES);
        let series = [
            scalar(ScalarValue::Int64(Some(1))),
            scalar(ScalarValue::Int64(Some(100_000_000))),
        ];
        let (largest, _) = result_size(Growth::Series, &series).unwrap();
        assert!(largest > MAX_VALUE_BYTES);
        let small = [
            scalar(ScalarValue::Int64(Some(1))),
            scalar(ScalarValue::Int64(Some(1000))),
        ];
        let (largest, _) = result_size(Growth::Series, &small).unwrap();
        assert!(largest < 1 << 20);
    }
}
