//! Generated tables: relations whose rows are built, at scan time, from the statement's pinned
//! catalog state and policy, so they always agree with what the same statement can query and
//! show only what the user may select. Nothing here is keyed on query text: clients get real
//! relations they can join, filter and aggregate like any other.
//!
//! The providers are `session`'s ([`super::session::SystemSchema`]); this module holds the row
//! builder, our own `sys` schema and the optimizer rule for empty relations. The PostgreSQL system catalogs
//! (`pg_catalog`, `information_schema`) are defined in `pg::catalog` and handed to the catalog
//! through [`super::session::SystemContext`], so that `catalog` never depends on the emulation.
//!
//! - [`rows`]: a small typed row builder (PostgreSQL column types on Arrow arrays).
//! - [`sys`]: `sys.audit_log` and friends.

pub mod rows;
pub mod sys;

use datafusion::catalog::default_table_source::source_as_provider;
use datafusion::common::Result;
use datafusion::common::tree_node::Transformed;
use datafusion::logical_expr::{EmptyRelation, LogicalPlan};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

use super::session::SystemTable;
pub use sys::{AuditLog, AuditRecord};

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
