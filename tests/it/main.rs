//! The single integration test binary: real servers on 127.0.0.1:0, real Delta tables, real
//! clients (tokio-postgres, psql, psycopg), real MariaDB/PostgreSQL/Mosquitto/NATS.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// Shared helpers: test servers, fixtures, clients.
mod support;

/// Serving basics: protocol, TLS, auth, read-only refusals, limits, refresh.
mod serve;

/// Grants, masks, row filters on every path; catalogs; reload; audit.
mod governance;

/// Hostile and extreme input: wide and deep statements, huge values, EXPLAIN as governed
/// users, idle and malformed connections, password guessing, the memory budget.
mod hardening;

/// Delta tables as Databricks, Fabric and Spark write them (hand-written from the protocol):
/// deletion vectors, column mapping, v2 checkpoints, table features served or refused by name.
mod delta_interop;

/// Prometheus metrics scraped by a real Prometheus.
mod metrics;

/// `lakehouse optimize` and `vacuum` beside readers and writers.
mod maintenance;

/// Power BI as Npgsql 4.0.17 drives the wire: TLS 1.2, SCRAM, type batch, navigator, folding.
mod clients_npgsql;

/// psql 15 running its backslash commands.
mod clients_psql;

/// pgJDBC and psqlODBC listing tables and columns.
mod clients_drivers;

/// psycopg 3 and 2, asyncpg, SQLAlchemy, pandas and polars: queries, metadata, COPY.
mod clients_python;

/// node-postgres with pg-cursor.
mod clients_node;

/// The server binary as a process: memory bounds, CPU after cancel, SIGTERM.
mod process;

/// ADLS Gen2 data sources against Azurite: account key and SAS.
mod azure;

/// Ingest from the real MariaDB and PostgreSQL into bronze, silver and gold.
mod ingest;

/// Helpers of the ingest tests: throw-away source databases, lake queries.
mod ingest_support;

/// `lakehouse demo` end to end: one command, psql runs the overview report; health probe.
mod demo;

/// The pharmacy device stream over real HTTP, Mosquitto and NATS JetStream.
mod stream;

/// `lakehouse bench` at a tiny scale: every workload on every engine, same answers.
mod bench;
