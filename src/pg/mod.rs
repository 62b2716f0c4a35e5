//! PostgreSQL emulation: what makes the lake look like a PostgreSQL database to its clients.
//!
//! - [`arrays`]: array set-returning functions of catalog queries (`_pg_expandarray`).
//! - [`catalog`]: `pg_catalog` and `information_schema`, generated from the session's view.
//! - [`codec`]: text and binary value codecs (results, parameters, COPY, the ingest's reads).
//! - [`copy`]: `COPY ... TO STDOUT`, its options and its text, CSV and binary formats.
//! - [`functions`]: PostgreSQL's catalog and session functions.
//! - [`numeric`]: PostgreSQL's `numeric` result scales (`avg`).
//! - [`types`]: PostgreSQL's types and the one Arrow to PostgreSQL mapping.
//! - [`regproc`]: `regproc` values that print as function names.
//! - [`settings`]: SET, SHOW, RESET and the startup parameters.
//! - [`syntax`]: PostgreSQL syntax DataFusion does not speak, translated on the syntax tree.

pub mod arrays;
pub mod catalog;
pub mod codec;
pub mod copy;
pub mod functions;
pub mod numeric;
pub mod regproc;
pub mod settings;
pub mod syntax;
pub mod types;

use datafusion::common::Result;
use datafusion::logical_expr::LogicalPlan;

/// PostgreSQL's semantics where DataFusion's plan differs, applied to a freshly planned
/// statement (before type coercion, before the policy is enforced on it).
pub fn semantics(plan: LogicalPlan) -> Result<LogicalPlan> {
    let plan = numeric::average_scales(plan)?;
    regproc::text_casts(plan)
}
