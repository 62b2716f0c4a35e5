#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The single integration test binary (one link, shared helpers); one module per area.

mod ingest; // ingest from the real MariaDB and PostgreSQL into bronze, silver and gold
mod ingest_support; // helpers of the ingest tests: throw-away source databases, lake queries
