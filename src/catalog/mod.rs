//! The `IKHOSPITAL_DW` catalog: which tables exist, where they live, at which Delta version, and
//! what one session may see of them.
//!
//! - [`spec`]: `catalog/*.yaml` (credentials, data sources, external tables, discovery).
//! - [`registry`]: the live table set, refreshed in the background, published as immutable
//!   snapshots.
//! - [`session`]: the per-connection DataFusion catalog tree, filtered by the user's privileges,
//!   with the generated schemas it is given (`sys`, and `pg::catalog`'s).
//! - [`system`]: `sys`, the row builder of generated tables, and the rule that drops scans of
//!   relations empty by construction.
//!
//! Knows nothing about the wire protocol and never writes to the lake.

pub mod registry;
pub mod session;
pub mod spec;
pub mod system;
