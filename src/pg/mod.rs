//! PostgreSQL emulation: what makes the lake look like a PostgreSQL database to its clients.
//!
//! - [`arrays`]: array set-returning functions of catalog queries (`_pg_expandarray`).
//! - [`copy`]: `COPY ... TO STDOUT`, its options and its text, CSV and binary formats.
//! - [`numeric`]: PostgreSQL's `numeric` result scales (`avg`).
//! - [`regproc`]: `regproc` values that print as function names.

pub mod arrays;
pub mod copy;
pub mod numeric;
pub mod regproc;

use datafusion::common::Result;
use datafusion::logical_expr::LogicalPlan;

/// PostgreSQL's semantics where DataFusion's plan differs, applied to a freshly planned
/// statement (before type coercion, before the policy is enforced on it).
pub fn semantics(plan: LogicalPlan) -> Result<LogicalPlan> {
    let plan = numeric::average_scales(plan)?;
    regproc::text_casts(plan)
}
