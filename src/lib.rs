//! `lakehouse`: serves a hospital's Delta lakehouse (the `IKHOSPITAL_DW` database) over the
//! PostgreSQL wire protocol, with users, grants, row filters and masks from YAML, and keeps the
//! lake fresh from the source databases and the pharmacy device stream.
//!
//! Layout (ARCHITECTURE.md has the full code map and its invariants):
//! - [`config`]: `lakehouse.yaml` and the strict YAML loader (`file:line:col` errors).
//! - [`pg`]: PostgreSQL emulation: types, value codecs, catalogs, functions, syntax, settings,
//!   COPY.
//! - [`lake`]: Delta tables on any object store; the only user of `deltalake`.
//! - [`catalog`]: the served tables, their versions, and the system catalogs.
//! - [`policy`]: users, roles, grants, row filters, masks; pure decisions.
//! - [`auth`]: SCRAM-SHA-256 and argon2id.
//! - [`audit`]: the per-statement audit trail.
//! - [`metrics`]: Prometheus metrics on `metrics.listen`.
//! - [`sql`]: classify, plan, enforce and execute statements.
//! - [`check`]: validation shared by `lakehouse check`, startup and reload.
//! - [`ingest`]: the batch ingest of the source databases into bronze, silver and gold.
//! - [`demo`]: `lakehouse demo`, the whole lakehouse on one machine.
//! - [`stream`]: pharmacy device events (HTTP, MQTT, NATS) into bronze and two live gold tables.
//! - [`bench`](mod@bench): `lakehouse bench`, serving speed against PostgreSQL and DuckDB.

pub mod app;
pub mod audit;
pub mod auth;
pub mod bench;
pub mod catalog;
pub mod check;
pub mod config;
pub mod demo;
pub mod ingest;
pub mod lake;
pub mod metrics;
pub mod periodic;
pub mod pg;
pub mod policy;
pub mod server;
pub mod sql;
pub mod stream;
pub mod telemetry;
