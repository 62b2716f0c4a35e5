//! Sending a statement's outcome: rows as DataRow with backpressure, or as COPY data
//! (CopyOutResponse, CopyData, CopyDone), under the statement's timeout and cancel.

use super::*;
use crate::pg::codec::encode::{CopyState, Format, RowEncoder};
use crate::pg::types::PgType;
use crate::server::CancelHandle;
use crate::sql::{FieldInfo, Outcome, QueryError};
use bytes::{BufMut, BytesMut};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::data::{DataRow, FieldDescription, RowDescription};
use pgwire::messages::extendedquery::PortalSuspended;
use pgwire::messages::response::CommandComplete;
use pgwire::messages::startup::ParameterStatus;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// A statement's deadline (`statement_timeout`) and the cancel requests it has seen, from the
/// moment the statement arrived.
pub(super) struct Guard {
    cancel: Arc<CancelHandle>,
    seen: u64,
    deadline: Option<Instant>,
}

impl Guard {
    pub(super) fn start(live: &LiveSession) -> Guard {
        Guard {
            cancel: live.cancel.clone(),
            seen: live.cancel.requests.load(Ordering::SeqCst),
            deadline: live
                .query
                .settings()
                .statement_timeout()
                .map(|t| Instant::now() + t),
        }
    }

    /// Resolves with the error to report once the statement is canceled or times out.
    pub(super) async fn interrupted(&self) -> QueryError {
        let canceled = async {
            loop {
                let notified = self.cancel.notify.notified();
                if self.cancel.requests.load(Ordering::SeqCst) != self.seen {
                    return;
                }
                notified.await;
            }
        };
        let timeout = async {
            match self.deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = canceled => QueryError::canceled(),
            _ = timeout => QueryError::timeout(),
        }
    }

    /// Runs `work` until it ends, is canceled or times out; dropping it stops the statement
    /// (planning tasks are aborted, running queries stop at their next batch).
    pub(super) async fn run<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, QueryError>>,
    ) -> Result<T, QueryError> {
        tokio::select! {
            result = work => result,
            err = self.interrupted() => Err(err),
        }
    }
}

pub(super) enum Sent {
    Done,
    Failed,
    Suspended(Box<RunningRows>),
}

/// Sends an outcome's rows (at most `max_rows` when > 0) and its completion.
pub(super) async fn send_outcome(
    conn: &mut Conn,
    live: &mut LiveSession,
    outcome: Outcome,
    formats: &[Format],
    max_rows: usize,
    guard: &Guard,
) -> Result<Sent, Stop> {
    match outcome {
        Outcome::Command {
            tag,
            changed,
            ticket,
        } => {
            for (name, value) in changed {
                conn.send(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(
                    name, value,
                )));
            }
            conn.send(complete(&tag));
            live.query.record(ticket, 0, Ok(()));
            Ok(Sent::Done)
        }
        Outcome::Values {
            fields,
            rows,
            tag,
            ticket,
        } => {
            let encoder =
                RowEncoder::new(fields.iter().map(|f| f.pg_type).collect(), formats.to_vec());
            let n_rows = rows.len() as u64;
            for row in rows {
                let mut data = BytesMut::new();
                for value in &row {
                    match value {
                        None => data.put_i32(-1),
                        Some(v) => {
                            data.put_i32(v.len() as i32);
                            data.put_slice(v.as_bytes());
                        }
                    }
                }
                conn.send(PgWireBackendMessage::DataRow(DataRow::new(
                    data,
                    row.len() as i16,
                )));
            }
            let _ = encoder;
            conn.send(complete(&tag));
            live.query.record(ticket, n_rows, Ok(()));
            Ok(Sent::Done)
        }
        Outcome::Rows {
            stream,
            fields,
            tag,
            ticket,
            copy,
        } => {
            let zone = crate::sql::zone::zone(&live.query.settings().time_zone());
            let (encoder, copy, max_rows) = match copy {
                Some(copy) => {
                    // COPY ignores Execute's row limit, as PostgreSQL does.
                    let copy = CopyState::new(copy);
                    copy.start(&mut conn.write);
                    (copy.encoder().with_zone(zone), Some(copy), 0)
                }
                None => (
                    RowEncoder::new(fields.iter().map(|f| f.pg_type).collect(), formats.to_vec())
                        .with_zone(zone),
                    None,
                    max_rows,
                ),
            };
            let rows = Box::new(RunningRows {
                stream,
                encoder,
                pending: None,
                n_rows: 0,
                tag,
                ticket,
                copy,
            });
            stream_rows(conn, live, rows, max_rows, guard).await
        }
    }
}

/// Streams rows to the client with backpressure, observing cancel and statement timeout.
pub(super) async fn stream_rows(
    conn: &mut Conn,
    live: &mut LiveSession,
    mut rows: Box<RunningRows>,
    max_rows: usize,
    guard: &Guard,
) -> Result<Sent, Stop> {
    let mut sent_now = 0usize;
    loop {
        let (batch, offset) = match rows.pending.take() {
            Some(pending) => pending,
            None => {
                let next = tokio::select! {
                    next = rows.stream.next() => next,
                    err = guard.interrupted() => Some(Err(err)),
                };
                match next {
                    None => {
                        if let Some(copy) = &mut rows.copy {
                            copy.finish(&mut conn.write);
                        }
                        conn.send(complete(&format!("{} {}", rows.tag, rows.n_rows)));
                        live.query.record(rows.ticket, rows.n_rows, Ok(()));
                        return Ok(Sent::Done);
                    }
                    Some(Ok(batch)) => (batch, 0),
                    Some(Err(err)) => {
                        // Dropping the stream stops the query.
                        live.query.record(rows.ticket, rows.n_rows, Err(&err));
                        if err.fatal {
                            return Err(Stop::Client(err));
                        }
                        conn.error(&err);
                        live.query.on_error();
                        return Ok(Sent::Failed);
                    }
                }
            }
        };
        let available = batch.num_rows() - offset;
        let take = if max_rows > 0 {
            available.min(max_rows - sent_now)
        } else {
            available
        };
        let slice = batch.slice(offset, take);
        let before = conn.write.len();
        let encoded = match &mut rows.copy {
            Some(copy) => rows.encoder.encode_copy(&slice, copy, &mut conn.write),
            None => rows.encoder.encode(&slice, &mut conn.write),
        };
        crate::metrics::global()
            .bytes_sent
            .inc_by(conn.write.len().saturating_sub(before) as u64);
        if let Err(message) = encoded {
            let err = QueryError::internal(rows.ticket.query_id(), &message);
            live.query.record(rows.ticket, rows.n_rows, Err(&err));
            conn.error(&err);
            live.query.on_error();
            return Ok(Sent::Failed);
        }
        rows.n_rows += take as u64;
        sent_now += take;
        if offset + take < batch.num_rows() {
            rows.pending = Some((batch, offset + take));
        }
        if conn.write.len() >= FLUSH_AT {
            conn.flush().await?;
        }
        if max_rows > 0 && sent_now >= max_rows {
            // PostgreSQL suspends even when the last row happened to be the last one.
            conn.send(PgWireBackendMessage::PortalSuspended(PortalSuspended::new()));
            return Ok(Sent::Suspended(rows));
        }
    }
}

pub(super) fn complete(tag: &str) -> PgWireBackendMessage {
    PgWireBackendMessage::CommandComplete(CommandComplete::new(tag.to_string()))
}

pub(super) fn row_description(fields: &[FieldInfo], formats: &[Format]) -> PgWireBackendMessage {
    PgWireBackendMessage::RowDescription(RowDescription::new(
        fields
            .iter()
            .enumerate()
            .map(|(idx, f)| field_description(f, formats.get(idx).copied().unwrap_or(Format::Text)))
            .collect(),
    ))
}

pub(super) fn field_description(field: &FieldInfo, format: Format) -> FieldDescription {
    let pg: PgType = field.pg_type;
    FieldDescription::new(
        field.name.clone(),
        0,
        0,
        pg.oid,
        crate::pg::codec::encode::type_size(&pg),
        pg.typmod,
        format.code(),
    )
}

pub(super) fn client_error(err: QueryError) -> Stop {
    Stop::Client(err)
}
