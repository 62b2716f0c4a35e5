//! EXPLAIN for users who may not see everything.
//!
//! DataFusion's EXPLAIN prints what a governed user must not see: `EXPLAIN VERBOSE` adds the
//! statistics of every scan (row counts including rows a row filter hides, min/max of columns a
//! mask hides), file scans list their files (lake paths, and with Hive-style partitions the
//! partition values), and `EXPLAIN ANALYZE VERBOSE` labels metrics with file names. No setting
//! turns those off, so for users without `schema: sys` the physical planner renders EXPLAIN
//! here instead:
//!
//! - the logical plans, as DataFusion prints them (operators, expressions, projections; the
//!   policy's masks and row filters appear as the expressions they are, as PostgreSQL shows
//!   row-level security conditions);
//! - the physical plan, one operator per line in DataFusion's default format, except file
//!   scans, which show their file type, columns, limit and predicate but no files; an operator
//!   not on the list of known ones shows its name only, so a new kind of scan cannot print
//!   paths; never any statistics;
//! - for ANALYZE, each operator's metrics summed over partitions (no per-file labels), and the
//!   operator lines as they were before the query ran (dynamic filters fill in with values from
//!   the data while it runs). ANALYZE stays refused where row filters apply, and where a mask
//!   reads other tables (`sql::session`).
//!
//! Admins (and every user granted `schema: sys`) get DataFusion's EXPLAIN unchanged.

use std::fmt::{self, Write as _};
use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::display::{PlanType, StringifiedPlan, ToStringifiedPlan};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Analyze, Explain};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::explain::ExplainExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PhysicalExpr, PlanProperties,
    SendableRecordBatchStream,
};
use futures::StreamExt;

/// Operators whose default display shows only operators, expressions and columns.
const KNOWN: &[&str] = &[
    "AggregateExec",
    "BoundedWindowAggExec",
    "CoalesceBatchesExec",
    "CoalescePartitionsExec",
    "CooperativeExec",
    "CrossJoinExec",
    "DeltaScanExec",
    "DeltaScanMetaExec",
    "EmptyExec",
    "FilterExec",
    "GlobalLimitExec",
    "HashJoinExec",
    "InterleaveExec",
    "LazyMemoryExec",
    "LocalLimitExec",
    "NestedLoopJoinExec",
    "PartialSortExec",
    "PlaceholderRowExec",
    "ProjectionExec",
    "RecursiveQueryExec",
    "RepartitionExec",
    "SecurityBarrierExec",
    "SortExec",
    "SortMergeJoinExec",
    "SortPreservingMergeExec",
    "SymmetricHashJoinExec",
    "UnionExec",
    "UnnestExec",
    "WindowAggExec",
    "WorkTableExec",
];

/// `EXPLAIN [VERBOSE]` of an optimized plan, rendered for a governed user.
pub async fn explain(
    explain: &Explain,
    physical: impl std::future::Future<Output = Result<Arc<dyn ExecutionPlan>>>,
) -> Result<Arc<dyn ExecutionPlan>> {
    let mut plans: Vec<StringifiedPlan> = explain.stringified_plans.clone();
    if !explain.logical_optimization_succeeded {
        return Ok(Arc::new(ExplainExec::new(
            Arc::clone(explain.schema.inner()),
            plans,
            explain.verbose,
        )));
    }
    plans.push(explain.plan.to_stringified(PlanType::FinalLogicalPlan));
    match physical.await {
        Ok(physical) => {
            plans.push(StringifiedPlan::new(
                PlanType::FinalPhysicalPlan,
                render(&physical, &Show::default(), None),
            ));
            if explain.verbose {
                plans.push(StringifiedPlan::new(
                    PlanType::FinalPhysicalPlanWithSchema,
                    render(
                        &physical,
                        &Show {
                            schema: true,
                            ..Show::default()
                        },
                        None,
                    ),
                ));
            }
        }
        Err(err) => {
            // The error's text may name files; the statement's own errors reach the client
            // when it runs.
            tracing::debug!(error = %err, "EXPLAIN: the physical plan failed");
            plans.push(StringifiedPlan::new(
                PlanType::PhysicalPlanError,
                "the physical plan could not be made".to_string(),
            ));
        }
    }
    Ok(Arc::new(ExplainExec::new(
        Arc::clone(explain.schema.inner()),
        plans,
        explain.verbose,
    )))
}

/// `EXPLAIN ANALYZE [VERBOSE]`, rendered for a governed user: runs the plan, then shows it with
/// its metrics.
pub fn analyze(analyze: &Analyze, input: Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan> {
    let schema = Arc::clone(analyze.schema.inner());
    Arc::new(GovernedAnalyzeExec {
        properties: Arc::new(PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Final,
            Boundedness::Bounded,
        )),
        verbose: analyze.verbose,
        input,
        schema,
    })
}

/// What a rendering shows besides the operators.
#[derive(Default)]
struct Show {
    schema: bool,
    metrics: bool,
}

/// The operators of a plan in display order, with their depth.
fn operators(plan: &Arc<dyn ExecutionPlan>) -> Vec<(Arc<dyn ExecutionPlan>, usize)> {
    let mut out = Vec::new();
    let mut stack: Vec<(Arc<dyn ExecutionPlan>, usize)> = vec![(Arc::clone(plan), 0)];
    while let Some((node, depth)) = stack.pop() {
        for child in node.children().into_iter().rev() {
            stack.push((Arc::clone(child), depth + 1));
        }
        out.push((node, depth));
    }
    out
}

/// The physical plan as text, one operator per line, indented by depth. `lines` replaces the
/// operators' own descriptions (in display order).
fn render(plan: &Arc<dyn ExecutionPlan>, show: &Show, lines: Option<&[String]>) -> String {
    let mut out = String::new();
    for (idx, (node, depth)) in operators(plan).into_iter().enumerate() {
        let line = match lines.and_then(|l| l.get(idx)) {
            Some(line) => line.clone(),
            None => describe(node.as_ref()),
        };
        let _ = write!(out, "{}{}", "  ".repeat(depth), line.replace('\n', " "));
        if show.metrics
            && let Some(metrics) = node.metrics()
        {
            let metrics = metrics
                .aggregate_by_name()
                .sorted_for_display()
                .timestamps_removed();
            let _ = write!(out, ", metrics=[{metrics}]");
        }
        if show.schema {
            let fields: Vec<String> = node
                .schema()
                .fields()
                .iter()
                .map(|f| format!("{}:{}", f.name(), f.data_type()))
                .collect();
            let _ = write!(out, ", schema=[{}]", fields.join(", "));
        }
        out.push('\n');
    }
    out
}

/// One operator's line.
fn describe(node: &dyn ExecutionPlan) -> String {
    let any: &dyn std::any::Any = node;
    if let Some(source) = any.downcast_ref::<DataSourceExec>() {
        let inner: &dyn std::any::Any = source.data_source().as_ref();
        return match inner.downcast_ref::<FileScanConfig>() {
            Some(files) => describe_files(files),
            None => format!("DataSourceExec: {}", node.name()),
        };
    }
    if KNOWN.contains(&node.name()) {
        return Default(node).to_string();
    }
    node.name().to_string()
}

/// A file scan without its files.
fn describe_files(files: &FileScanConfig) -> String {
    let mut line = format!(
        "DataSourceExec: file_type={}",
        files.file_source().file_type()
    );
    if let Ok(schema) = files.projected_schema() {
        let columns: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let _ = write!(line, ", projection=[{}]", columns.join(", "));
    }
    if let Some(limit) = files.limit {
        let _ = write!(line, ", limit={limit}");
    }
    if let Some(predicate) = files.file_source().filter() {
        let _ = write!(line, ", predicate={}", ExprText(&predicate));
    }
    line
}

struct ExprText<'a>(&'a Arc<dyn PhysicalExpr>);

impl fmt::Display for ExprText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An operator in DataFusion's default one-line format.
struct Default<'a>(&'a dyn ExecutionPlan);

impl fmt::Display for Default<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt_as(DisplayFormatType::Default, f)
    }
}

/// Runs its input to the end, then answers one row: the plan with metrics.
#[derive(Debug)]
pub(crate) struct GovernedAnalyzeExec {
    properties: Arc<PlanProperties>,
    verbose: bool,
    input: Arc<dyn ExecutionPlan>,
    schema: SchemaRef,
}

impl DisplayAs for GovernedAnalyzeExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "AnalyzeExec")
    }
}

impl ExecutionPlan for GovernedAnalyzeExec {
    fn name(&self) -> &str {
        "GovernedAnalyzeExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    // A leaf: the physical optimizer has optimized the input already, and no rule may rewrite
    // inside the plan being measured.
    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "EXPLAIN ANALYZE has one partition, not {partition}"
            )));
        }
        let input = Arc::clone(&self.input);
        let schema = Arc::clone(&self.schema);
        let verbose = self.verbose;
        // The lines as planned, before dynamic filters fill in with values of the data.
        let before: Vec<String> = operators(&input)
            .iter()
            .map(|(node, _)| describe(node.as_ref()))
            .collect();
        let answer = async move {
            let started = std::time::Instant::now();
            let mut stream =
                datafusion::physical_plan::execute_stream(Arc::clone(&input), context)?;
            let mut rows = 0usize;
            while let Some(batch) = stream.next().await {
                rows += batch?.num_rows();
            }
            let text = render(
                &input,
                &Show {
                    metrics: true,
                    schema: false,
                },
                Some(&before),
            );
            let mut types = vec!["Plan with Metrics".to_string()];
            let mut plans = vec![text];
            if verbose {
                types.push("Output Rows".to_string());
                plans.push(rows.to_string());
                types.push("Duration".to_string());
                plans.push(format!("{:?}", started.elapsed()));
            }
            RecordBatch::try_new(
                schema,
                vec![
                    Arc::new(StringArray::from(types)),
                    Arc::new(StringArray::from(plans)),
                ],
            )
            .map_err(DataFusionError::from)
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            futures::stream::once(answer),
        )))
    }
}

/// Whether a session's statement is to be explained for a governed user.
pub fn governed(session: &dyn Session) -> bool {
    session
        .execution_props()
        .config_options
        .as_ref()
        .and_then(|c| c.extensions.get::<super::memory::QueryExtension>())
        .is_some_and(|e| e.governed_explain)
}
