//! One client connection: negotiation, authentication, then the query loop.
//!
//! Split by protocol phase: `startup` (TLS, the startup packet, cancel requests), `auth`,
//! `simple` and `extended` query protocols, and `results` (rows and COPY data out).

mod auth;
mod extended;
mod results;
mod simple;
mod startup;

use super::{CancelHandle, Server};
use crate::pg::codec::encode::{CopyState, Format, RowEncoder};
use crate::sql::error::code;
use crate::sql::session::Ticket;
use crate::sql::{Prepared, QueryError, QuerySession, TxState};
use auth::*;
use bytes::BytesMut;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use extended::*;
use pgwire::messages::response::{ErrorResponse, ReadyForQuery, TransactionStatus};
use pgwire::messages::startup::{Authentication, BackendKeyData, ParameterStatus, SecretKey};
use pgwire::messages::{
    DecodeContext, PgWireBackendMessage, PgWireFrontendMessage, ProtocolVersion,
};
use results::*;
use simple::*;
use startup::*;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

const SSL_REQUEST: i32 = 80_877_103;
const GSSENC_REQUEST: i32 = 80_877_104;
const CANCEL_REQUEST: i32 = 80_877_102;
/// Largest message we accept after startup (a query text, a bind with its parameters).
const MAX_MESSAGE: usize = 64 * 1024 * 1024;
/// Flush rows to the socket when this much is buffered.
const FLUSH_AT: usize = 64 * 1024;

/// A byte stream, plain or TLS.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Why handling a message stopped early: the connection ends, or (in an extended-protocol
/// batch) the rest of the batch is skipped until Sync.
#[derive(Debug)]
enum Stop {
    /// The client went away or the socket failed: the connection ends.
    Io(std::io::Error),
    /// An error to report: the connection ends after it when the error is fatal (startup,
    /// authentication, protocol violations); otherwise the batch skips to Sync.
    Client(QueryError),
    /// The connection ends quietly (Terminate, end of stream).
    Closed,
    /// A statement error was already sent: the batch skips to Sync.
    Reported,
}

impl From<std::io::Error> for Stop {
    fn from(err: std::io::Error) -> Self {
        Stop::Io(err)
    }
}

struct Conn {
    stream: Box<dyn Stream>,
    read: BytesMut,
    write: BytesMut,
    ctx: DecodeContext,
}

impl Conn {
    fn new(stream: Box<dyn Stream>) -> Conn {
        let mut ctx = DecodeContext::new(ProtocolVersion::PROTOCOL3_0);
        ctx.awaiting_frontend_ssl = false;
        ctx.awaiting_frontend_startup = false;
        Conn {
            stream,
            read: BytesMut::with_capacity(8192),
            write: BytesMut::with_capacity(16 * 1024),
            ctx,
        }
    }

    fn send(&mut self, message: PgWireBackendMessage) {
        if let Err(err) = message.encode(&mut self.write) {
            tracing::error!(error = %err, "cannot encode a message");
        }
    }

    async fn flush(&mut self) -> Result<(), std::io::Error> {
        if !self.write.is_empty() {
            self.stream.write_all(&self.write).await?;
            self.write.clear();
        }
        self.stream.flush().await
    }

    /// Reads the next message; `None` at end of stream.
    async fn next(&mut self) -> Result<Option<PgWireFrontendMessage>, Stop> {
        loop {
            if self.read.len() >= 5 {
                let tag = self.read[0];
                let len32 =
                    u32::from_be_bytes([self.read[1], self.read[2], self.read[3], self.read[4]]);
                let len = len32 as usize;
                if len > MAX_MESSAGE {
                    return Err(Stop::Client(
                        QueryError::new(
                            code::PROTOCOL_VIOLATION,
                            format!(
                                "message of {len} bytes is larger than the limit of {MAX_MESSAGE}"
                            ),
                        )
                        .fatal(),
                    ));
                }
                super::frame::check_frame_header(tag, len32).map_err(protocol_violation)?;
                if self.read.len() < 1 + len {
                    self.read.reserve(1 + len - self.read.len());
                    if self.stream.read_buf(&mut self.read).await? == 0 {
                        return Ok(None);
                    }
                    continue;
                }
                // pgwire's decoders trust the lengths and counts inside a message (a short
                // one panics, a long one eats the next message): the frame is checked first.
                super::frame::check_frontend_frame(tag, &self.read[5..1 + len])
                    .map_err(protocol_violation)?;
                match PgWireFrontendMessage::decode(&mut self.read, &self.ctx) {
                    Ok(Some(message)) => return Ok(Some(message)),
                    Ok(None) => {}
                    Err(err) => {
                        return Err(Stop::Client(QueryError::new(
                            code::PROTOCOL_VIOLATION,
                            format!("invalid message: {err}"),
                        )));
                    }
                }
            }
            if self.read.capacity() - self.read.len() < 4096 {
                self.read.reserve(8192);
            }
            let n = self.stream.read_buf(&mut self.read).await?;
            if n == 0 {
                return Ok(None);
            }
        }
    }

    /// Sends an error and flushes it, for errors that end the connection.
    async fn fatal(&mut self, err: &QueryError) {
        self.error(err);
        let _ = self.flush().await;
    }

    /// Ends the connection before its session starts with a FATAL `code` and `message`.
    async fn refuse(&mut self, code: &'static str, message: &str) {
        self.fatal(&QueryError::new(code, message).fatal()).await
    }

    fn error(&mut self, err: &QueryError) {
        let severity = if err.fatal { "FATAL" } else { "ERROR" };
        let mut fields = vec![
            (b'S', severity.to_string()),
            (b'V', severity.to_string()),
            (b'C', err.code.to_string()),
            (b'M', err.message.clone()),
        ];
        if let Some(detail) = &err.detail {
            fields.push((b'D', detail.clone()));
        }
        if let Some(hint) = &err.hint {
            fields.push((b'H', hint.clone()));
        }
        self.send(PgWireBackendMessage::ErrorResponse(ErrorResponse::new(
            fields,
        )));
    }
}

/// A message that does not add up: the connection ends with 08P01.
fn protocol_violation(message: String) -> Stop {
    Stop::Client(QueryError::new(code::PROTOCOL_VIOLATION, message).fatal())
}

/// Serves one connection: its startup and authentication within one deadline
/// (`authentication_timeout`) and in its startup place (`slot`), then its session within
/// `max_connections`.
pub(super) async fn serve(
    server: Arc<Server>,
    socket: TcpStream,
    peer: SocketAddr,
    shutdown: CancellationToken,
    slot: super::StartupSlot,
) {
    let metrics = crate::metrics::global();
    let _open = metrics.open_connection();
    let deadline = tokio::time::Instant::now() + server.settings.authentication_timeout;
    let evicted = slot.evicted.clone();
    let startup = tokio::select! {
        startup = tokio::time::timeout_at(deadline, negotiate(&server, socket)) => startup,
        _ = evicted.cancelled() => {
            tracing::debug!(%peer, "a connection that had not started gave way to a newer one");
            metrics.connection("refused_startup_slots");
            return;
        }
    };
    let startup = match startup {
        Ok(Ok(startup)) => startup,
        Ok(Err(Stop::Client(err))) => {
            tracing::debug!(%peer, error = %err, "startup refused");
            metrics.connection("protocol_error");
            return;
        }
        Ok(Err(_)) => return metrics.connection("closed_during_startup"),
        Err(_) => return metrics.connection("authentication_timeout"),
    };
    let (stream, parameters, tls) = match startup {
        Startup::Cancel { pid, secret } => {
            server.cancels.cancel(pid, secret);
            metrics.connection("cancel_request");
            return;
        }
        Startup::Session {
            stream,
            parameters,
            tls,
        } => (stream, parameters, tls),
    };
    let mut conn = Conn::new(stream);
    let login = tokio::select! {
        login = tokio::time::timeout_at(deadline, login(&server, &mut conn, &parameters, tls, peer)) => login,
        _ = evicted.cancelled() => Ok(Err(Stop::Client(QueryError::new(
            code::TOO_MANY_CONNECTIONS,
            "too many connections are authenticating; this one waited longest",
        ).fatal()))),
    };
    let session = match login {
        Ok(Ok(session)) => session,
        Ok(Err(Stop::Client(err))) => {
            // Failed passwords are counted where they are audited (`audit_login`).
            if err.code == code::TOO_MANY_CONNECTIONS {
                metrics.connection("refused_startup_slots");
            } else if err.code != code::INVALID_PASSWORD {
                metrics.connection("refused");
            }
            return conn.fatal(&err).await;
        }
        Ok(Err(_)) => return metrics.connection("closed_during_startup"),
        Err(_) => {
            metrics.connection("authentication_timeout");
            return conn
                .refuse(
                    code::INVALID_AUTHORIZATION,
                    "canceling authentication due to timeout",
                )
                .await;
        }
    };
    drop(slot);
    let (pid, cancel) = (session.pid, session.cancel.clone());
    let Ok(_permit) = server.sessions.clone().try_acquire_owned() else {
        server.cancels.remove(pid);
        tracing::warn!(%peer, "connection refused: max_connections reached");
        metrics.connection("refused_max_connections");
        return conn
            .refuse(
                code::TOO_MANY_CONNECTIONS,
                "sorry, too many clients already",
            )
            .await;
    };
    metrics.connection("accepted");
    welcome(&mut conn, &session);
    if let Err(err) = conn.flush().await {
        server.cancels.remove(pid);
        tracing::debug!(session_id = pid, error = %err, "connection lost");
        return;
    }
    tracing::debug!(session_id = pid, user = %session.query.user(), %peer, tls, "session started");
    let result = session_loop(&mut conn, session, shutdown).await;
    server.cancels.remove(pid);
    drop(cancel);
    match result {
        Ok(()) | Err(Stop::Closed) | Err(Stop::Reported) => {}
        Err(Stop::Client(err)) => conn.fatal(&err).await,
        Err(Stop::Io(err)) => tracing::debug!(session_id = pid, error = %err, "connection lost"),
    }
}

/// The end of a successful authentication: AuthenticationOk, the reported settings, the
/// cancel key and the first ReadyForQuery.
fn welcome(conn: &mut Conn, live: &LiveSession) {
    conn.send(PgWireBackendMessage::Authentication(Authentication::Ok));
    for (name, value) in live.query.settings().reported() {
        conn.send(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(
            name, value,
        )));
    }
    conn.send(PgWireBackendMessage::BackendKeyData(BackendKeyData::new(
        live.pid,
        SecretKey::I32(live.cancel.secret),
    )));
    conn.send(ready(TxState::Idle));
}

struct LiveSession {
    query: QuerySession,
    pid: i32,
    cancel: Arc<CancelHandle>,
}

fn ready(tx: TxState) -> PgWireBackendMessage {
    PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(match tx {
        TxState::Idle => TransactionStatus::Idle,
        TxState::InBlock => TransactionStatus::Transaction,
        TxState::Failed => TransactionStatus::Error,
    }))
}

/// A bound portal.
struct Portal {
    prepared: Prepared,
    params: Vec<ScalarValue>,
    formats: Vec<Format>,
    state: PortalState,
}

enum PortalState {
    NotStarted,
    Rows(Box<RunningRows>),
    Done,
}

struct RunningRows {
    stream: crate::sql::exec::RowStream,
    encoder: RowEncoder,
    pending: Option<(RecordBatch, usize)>,
    n_rows: u64,
    tag: &'static str,
    ticket: Ticket,
    /// Set for `COPY ... TO STDOUT`: rows go out as CopyData.
    copy: Option<CopyState>,
}

struct State {
    statements: HashMap<String, Prepared>,
    portals: HashMap<String, Portal>,
    /// After an error in an extended-protocol batch: ignore messages until Sync.
    skipping: bool,
}

async fn session_loop(
    conn: &mut Conn,
    mut live: LiveSession,
    shutdown: CancellationToken,
) -> Result<(), Stop> {
    let mut state = State {
        statements: HashMap::new(),
        portals: HashMap::new(),
        skipping: false,
    };
    loop {
        let message = tokio::select! {
            message = conn.next() => message?,
            _ = shutdown.cancelled() => {
                return Err(Stop::Client(
                    QueryError::new(code::ADMIN_SHUTDOWN, "terminating connection due to administrator command").fatal(),
                ));
            }
        };
        let Some(message) = message else {
            return Ok(());
        };
        match message {
            PgWireFrontendMessage::Query(query) => {
                state.skipping = false;
                state.statements.remove("");
                state.portals.remove("");
                simple_query(conn, &mut live, &query.query).await?;
                if live.query.tx_state() == TxState::Idle {
                    state.portals.clear();
                }
                conn.send(ready(live.query.tx_state()));
                conn.flush().await?;
            }
            PgWireFrontendMessage::Sync(_) => {
                state.skipping = false;
                if live.query.tx_state() == TxState::Idle {
                    // End of the implicit transaction: portals go with it.
                    for (_, portal) in state.portals.drain() {
                        finish_abandoned(&live, portal);
                    }
                }
                conn.send(ready(live.query.tx_state()));
                conn.flush().await?;
            }
            PgWireFrontendMessage::Flush(_) => conn.flush().await?,
            PgWireFrontendMessage::Terminate(_) => return Ok(()),
            message if message.is_extended_query() => {
                if state.skipping {
                    continue;
                }
                if let Err(err) = extended(conn, &mut live, &mut state, message).await {
                    match err {
                        Stop::Client(err) if !err.fatal => {
                            conn.error(&err);
                            live.query.on_error();
                            state.skipping = true;
                        }
                        Stop::Reported => state.skipping = true,
                        other => return Err(other),
                    }
                }
            }
            PgWireFrontendMessage::PasswordMessageFamily(_) => {
                return Err(Stop::Client(
                    QueryError::new(code::PROTOCOL_VIOLATION, "unexpected password message")
                        .fatal(),
                ));
            }
            _ => {
                return Err(Stop::Client(
                    QueryError::new(
                        code::PROTOCOL_VIOLATION,
                        "unexpected message (COPY is not supported)",
                    )
                    .fatal(),
                ));
            }
        }
    }
}

fn finish_abandoned(live: &LiveSession, portal: Portal) {
    if let PortalState::Rows(rows) = portal.state {
        live.query.record(rows.ticket, rows.n_rows, Ok(()));
    }
}
