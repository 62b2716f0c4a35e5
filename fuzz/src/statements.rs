//! The `statements` target: parse -> classify -> rewrite -> plan -> enforce -> execute ->
//! encode, through `QuerySession` as `bob` (the masked reader), with the leak oracle on every
//! answer: rows (as arrow renders them and as the server encodes them in text and binary),
//! EXPLAIN output, SHOW values, column names and error messages.
//!
//! Input: grammar mode (the bytes drive [`crate::sqlgen`]), or raw mode when the input starts
//! with `--sql\n` (the rest is the SQL text; the leak oracle applies only when the text cannot
//! forge the marker, see [`crate::leak::sql_can_forge_marker`]).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use arbitrary::Unstructured;
use bytes::BytesMut;
use lakehouse::pg::codec::encode::{CopyState, Format, RowEncoder};
use lakehouse::sql::{Outcome, QueryError, QuerySession, SessionInfo};

use crate::leak::{self, Leak};
use crate::{Stats, world};

/// Prefix of raw-SQL inputs.
pub const RAW_PREFIX: &[u8] = b"--sql\n";
/// Time one statement may take, from parsing to its last row (the server's own
/// `statement_timeout` is enforced by the connection, which this target does not use).
/// `LAKEHOUSE_FUZZ_TIMEOUT_MS` changes it (to see how long a slow statement really takes).
pub static STATEMENT_TIMEOUT: std::sync::LazyLock<Duration> = std::sync::LazyLock::new(|| {
    std::env::var("LAKEHOUSE_FUZZ_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(Duration::from_secs(2))
});
/// Rows read of one answer; the rest is dropped (which stops the query).
pub const MAX_ROWS: usize = 5_000;

static STATS: Stats = Stats::new();

/// Builds the world and checks that the oracle sees what it must: the names in clear for
/// `alice`, masked for `bob`.
pub fn init() {
    let w = world();
    w.rt.block_on(async {
        let sql = "SELECT name FROM dbo.dim_patient ORDER BY id_patient";
        let clear = run_sql("alice", sql, true).await;
        assert!(
            matches!(clear, Err(Finding::Leak(_))),
            "self-check: the oracle must see alice's clear names, got {clear:?}"
        );
        let masked = run_sql("bob", sql, true).await;
        assert!(
            matches!(masked, Ok(())),
            "self-check: bob must see masked names, got {masked:?}"
        );
    });
    eprintln!("lakehouse-fuzz statements: fixture ready, leak oracle self-check passed");
}

/// One input.
pub fn run(data: &[u8]) {
    let (sqls, checked) = if let Some(raw) = data.strip_prefix(RAW_PREFIX) {
        let Ok(text) = std::str::from_utf8(raw) else {
            return;
        };
        if text.len() > 200_000 || crate::known::nesting(text) > crate::known::raw_nesting_cap() {
            return;
        }
        (vec![text.to_string()], !leak::sql_can_forge_marker(text))
    } else {
        let mut u = Unstructured::new(data);
        (crate::sqlgen::statements(&mut u), true)
    };
    let w = world();
    for sql in &sqls {
        if std::env::var_os("LAKEHOUSE_FUZZ_ECHO").is_some() {
            eprintln!("-- statement ({} bytes):\n{sql};", sql.len());
        }
        let started = std::time::Instant::now();
        let result = w.rt.block_on(run_sql("bob", sql, checked));
        if std::env::var_os("LAKEHOUSE_FUZZ_TIMING").is_some() {
            let head: String = sql.chars().take(100).collect();
            eprintln!(
                "-- {:>6} ms, {:>7} bytes: {}",
                started.elapsed().as_millis(),
                sql.len(),
                head.replace('\n', " ")
            );
        }
        if let Err(Finding::Leak(leak)) = result {
            panic!(
                "LEAK: bob's answer holds a masked value of dim_patient.name\n  where: {}\n  value: {:?}\n  statement: {sql}",
                leak.place, leak.value
            );
        }
    }
    STATS.tick("statements", 1000);
}

/// What a statement run found.
#[derive(Debug)]
pub enum Finding {
    /// A masked value in an answer.
    Leak(Leak),
}

/// How long the statement runtime may take to become idle after a statement timed out
/// (`LAKEHOUSE_FUZZ_SETTLE_MS`).
static SETTLE: std::sync::LazyLock<Duration> = std::sync::LazyLock::new(|| {
    std::env::var("LAKEHOUSE_FUZZ_SETTLE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(Duration::from_secs(10))
});

/// After a statement was stopped by its timeout (its future dropped, as the server does on
/// `statement_timeout` and CancelRequest), its work must stop too: the statement runtime
/// must have no task left within [`SETTLE`]. A task still running is work no timeout can
/// stop, which holds a statement thread (there is one per core) for as long as it likes.
async fn check_stopped(sql: &str) {
    let metrics = lakehouse::sql::exec::runtime().metrics();
    let started = std::time::Instant::now();
    loop {
        let alive = metrics.num_alive_tasks();
        if alive == 0 {
            return;
        }
        if started.elapsed() > *SETTLE {
            panic!(
                "UNSTOPPABLE: {alive} statement task(s) still running {:?} after the statement timed out ({:?}); statement: {sql}",
                *SETTLE, *STATEMENT_TIMEOUT
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs a query string as `user` in a fresh session, every statement of it, each within
/// [`STATEMENT_TIMEOUT`].
pub async fn run_sql(user: &str, sql: &str, checked: bool) -> Result<(), Finding> {
    let w = world();
    let info = SessionInfo {
        pid: 4242,
        user: user.to_string(),
        client_addr: "127.0.0.1".to_string(),
    };
    let mut session = match QuerySession::new(Arc::clone(&w.engine), info) {
        Ok(s) => s,
        Err(err) => panic!("cannot open a session for {user}: {err}"),
    };
    let parsed = tokio::time::timeout(*STATEMENT_TIMEOUT, session.parse(sql)).await;
    let statements = match parsed {
        Err(_) => {
            STATS.timeouts.fetch_add(1, Ordering::Relaxed);
            check_stopped(sql).await;
            return Ok(());
        }
        Ok(Err(err)) => {
            session.record_refused(sql, &err);
            return error(&err, checked);
        }
        Ok(Ok(statements)) => statements,
    };
    for (text, statement) in lakehouse::sql::shape::with_texts(sql, statements) {
        let work = async {
            let mut prepared = session.prepare(&text, statement, &[]).await?;
            if let Some(fields) = &prepared.fields {
                for field in fields {
                    if checked {
                        leak::check_text("column name", field.name.as_bytes())
                            .map_err(Finding::Leak)
                            .map_err(Fail::Finding)?;
                    }
                }
            }
            let outcome = session.execute(&mut prepared, Vec::new()).await?;
            answer(&mut session, outcome, checked).await
        };
        match tokio::time::timeout(*STATEMENT_TIMEOUT, work).await {
            Err(_) => {
                STATS.timeouts.fetch_add(1, Ordering::Relaxed);
                session.on_error();
                check_stopped(sql).await;
            }
            Ok(Ok(())) => {
                STATS.ok.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Err(Fail::Query(err))) => {
                session.on_error();
                error(&err, checked)?;
            }
            Ok(Err(Fail::Finding(finding))) => return Err(finding),
        }
    }
    Ok(())
}

/// Why a statement stopped.
enum Fail {
    Query(QueryError),
    Finding(Finding),
}

impl From<QueryError> for Fail {
    fn from(err: QueryError) -> Self {
        Fail::Query(err)
    }
}

fn error(err: &QueryError, checked: bool) -> Result<(), Finding> {
    STATS.errors.fetch_add(1, Ordering::Relaxed);
    if err.code == "XX000" {
        STATS.internal.fetch_add(1, Ordering::Relaxed);
    }
    if checked {
        for (place, text) in [
            ("error message", Some(&err.message)),
            ("error detail", err.detail.as_ref()),
            ("error hint", err.hint.as_ref()),
        ] {
            if let Some(text) = text {
                leak::check_text(place, text.as_bytes()).map_err(Finding::Leak)?;
            }
        }
    }
    Ok(())
}

/// Reads an outcome as the server would send it, checking every value.
async fn answer(session: &mut QuerySession, outcome: Outcome, checked: bool) -> Result<(), Fail> {
    match outcome {
        Outcome::Command { tag, ticket, .. } => {
            if checked {
                leak::check_text("command tag", tag.as_bytes())
                    .map_err(|l| Fail::Finding(Finding::Leak(l)))?;
            }
            session.record(ticket, 0, Ok(()));
            Ok(())
        }
        Outcome::Values { rows, ticket, .. } => {
            if checked {
                for value in rows.iter().flatten().flatten() {
                    leak::check_text("SHOW value", value.as_bytes())
                        .map_err(|l| Fail::Finding(Finding::Leak(l)))?;
                }
            }
            session.record(ticket, rows.len() as u64, Ok(()));
            Ok(())
        }
        Outcome::Rows {
            mut stream,
            fields: row_fields,
            ticket,
            copy,
            ..
        } => {
            // A COPY's rows are also written as COPY data, checked like DataRow values.
            let mut copy = copy.map(CopyState::new);
            let types: Vec<_> = row_fields.iter().map(|f| f.pg_type).collect();
            let text = RowEncoder::new(types.clone(), vec![Format::Text; types.len()]);
            let binary = RowEncoder::new(types.clone(), vec![Format::Binary; types.len()]);
            let mut n_rows = 0u64;
            let mut result = Ok(());
            while let Some(batch) = stream.next().await {
                let batch = match batch {
                    Ok(b) => b,
                    Err(err) => {
                        result = Err(err);
                        break;
                    }
                };
                n_rows += batch.num_rows() as u64;
                if checked {
                    leak::check_batch(&batch).map_err(|l| Fail::Finding(Finding::Leak(l)))?;
                }
                let mut out = BytesMut::new();
                match text.encode(&batch, &mut out) {
                    Ok(()) => {
                        if checked {
                            for value in crate::wire::data_row_values(&out) {
                                leak::check_text("DataRow value (text format)", value)
                                    .map_err(|l| Fail::Finding(Finding::Leak(l)))?;
                            }
                        }
                    }
                    Err(message) => {
                        result = Err(QueryError::new("XX000", message));
                        break;
                    }
                }
                out.clear();
                let _ = binary.encode(&batch, &mut out);
                if let Some(copy) = &mut copy {
                    out.clear();
                    let encoder = copy.encoder();
                    if encoder.encode_copy(&batch, copy, &mut out).is_ok() && checked {
                        leak::check_text("COPY data", &out)
                            .map_err(|l| Fail::Finding(Finding::Leak(l)))?;
                    }
                }
                if n_rows as usize >= MAX_ROWS {
                    break;
                }
            }
            drop(stream);
            match result {
                Ok(()) => {
                    session.record(ticket, n_rows, Ok(()));
                    Ok(())
                }
                Err(err) => {
                    session.record(ticket, n_rows, Err(&err));
                    Err(Fail::Query(err))
                }
            }
        }
    }
}
