//! One client connection: negotiation, authentication, then the query loop.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::{BufMut, BytesMut};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use pgwire::messages::data::{
    DataRow, FieldDescription, NoData, ParameterDescription, RowDescription,
};
use pgwire::messages::extendedquery::{
    BindComplete, CloseComplete, ParseComplete, PortalSuspended,
};
use pgwire::messages::response::{
    CommandComplete, EmptyQueryResponse, ErrorResponse, ReadyForQuery, TransactionStatus,
};
use pgwire::messages::startup::{
    Authentication, BackendKeyData, NegotiateProtocolVersion, ParameterStatus,
    PasswordMessageFamily, SecretKey,
};
use pgwire::messages::{
    DecodeContext, PgWireBackendMessage, PgWireFrontendMessage, ProtocolVersion,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::{CancelHandle, Server};
use crate::auth::{ScramExchange, ScramVerifier};
use crate::config::TlsMode;
use crate::pg::codec::encode::{CopyState, Format, RowEncoder};
use crate::pg::types::PgType;
use crate::policy::LoginRefusal;
use crate::sql::error::code;
use crate::sql::session::Ticket;
use crate::sql::{FieldInfo, Outcome, Prepared, QueryError, QuerySession, SessionInfo, TxState};

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

/// Errors that end a connection.
#[derive(Debug)]
enum Fatal {
    /// The client went away or the socket failed.
    Io(std::io::Error),
    /// An error to report to the client before closing.
    Client(QueryError),
    /// Close quietly.
    Closed,
    /// A statement error was already sent; skip to Sync.
    Reported,
}

impl From<std::io::Error> for Fatal {
    fn from(err: std::io::Error) -> Self {
        Fatal::Io(err)
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
    async fn next(&mut self) -> Result<Option<PgWireFrontendMessage>, Fatal> {
        loop {
            if self.read.len() >= 5 {
                let tag = self.read[0];
                let len32 =
                    u32::from_be_bytes([self.read[1], self.read[2], self.read[3], self.read[4]]);
                let len = len32 as usize;
                if len > MAX_MESSAGE {
                    return Err(Fatal::Client(
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
                        return Err(Fatal::Client(QueryError::new(
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
fn protocol_violation(message: String) -> Fatal {
    Fatal::Client(QueryError::new(code::PROTOCOL_VIOLATION, message).fatal())
}

/// What the startup phase produced.
enum Startup {
    Session {
        stream: Box<dyn Stream>,
        parameters: BTreeMap<String, String>,
        tls: bool,
    },
    Cancel {
        pid: i32,
        secret: i32,
    },
}

/// Reads one length-prefixed startup-phase packet: (code, body after the code).
async fn read_startup_packet<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<(i32, Vec<u8>), Fatal> {
    let mut len = [0u8; 4];
    match stream.read_exact(&mut len).await {
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => return Err(Fatal::Closed),
        Err(err) => return Err(Fatal::Io(err)),
    }
    let len = i32::from_be_bytes(len);
    if !(8..=10_000).contains(&len) {
        return Err(Fatal::Client(QueryError::new(
            code::PROTOCOL_VIOLATION,
            "invalid length of startup packet",
        )));
    }
    let mut body = vec![0u8; len as usize - 4];
    stream.read_exact(&mut body).await?;
    let code = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
    Ok((code, body[4..].to_vec()))
}

fn parse_parameters(body: &[u8]) -> Result<BTreeMap<String, String>, Fatal> {
    let invalid = || {
        Fatal::Client(QueryError::new(
            code::PROTOCOL_VIOLATION,
            "invalid startup packet layout",
        ))
    };
    let mut parameters = BTreeMap::new();
    let mut parts = body.split(|b| *b == 0);
    loop {
        let Some(key) = parts.next() else {
            return Err(invalid());
        };
        if key.is_empty() {
            break;
        }
        let value = parts.next().ok_or_else(invalid)?;
        let key = String::from_utf8(key.to_vec()).map_err(|_| invalid())?;
        let value = String::from_utf8(value.to_vec()).map_err(|_| invalid())?;
        parameters.insert(key, value);
    }
    Ok(parameters)
}

/// Negotiates TLS and reads the startup message (or a CancelRequest).
async fn negotiate(server: &Server, mut socket: TcpStream) -> Result<Startup, Fatal> {
    let tls = server
        .settings
        .tls
        .as_ref()
        .filter(|_| server.settings.tls_mode != TlsMode::Disable);
    // PostgreSQL 17's direct TLS: a TLS ClientHello instead of SSLRequest.
    let mut first = [0u8; 1];
    if socket.peek(&mut first).await? == 1 && first[0] == 0x16 {
        let Some(tls) = tls else {
            return Err(Fatal::Closed);
        };
        let mut stream = tls.acceptor.accept(socket).await?;
        let alpn_ok = stream.get_ref().1.alpn_protocol() == Some(b"postgresql".as_slice());
        if !alpn_ok {
            return Err(Fatal::Closed);
        }
        let (code, body) = read_startup_packet(&mut stream).await?;
        return startup_or_cancel(Box::new(stream), true, code, &body).await;
    }
    let (mut code, mut body) = read_startup_packet(&mut socket).await?;
    if code == GSSENC_REQUEST {
        socket.write_all(b"N").await?;
        (code, body) = read_startup_packet(&mut socket).await?;
    }
    if code == SSL_REQUEST {
        match tls {
            Some(tls) => {
                socket.write_all(b"S").await?;
                let mut stream = tls.acceptor.accept(socket).await?;
                let (code, body) = read_startup_packet(&mut stream).await?;
                if code == SSL_REQUEST || code == GSSENC_REQUEST {
                    return Err(Fatal::Client(QueryError::new(
                        code::PROTOCOL_VIOLATION,
                        "SSL negotiation inside TLS",
                    )));
                }
                return startup_or_cancel(Box::new(stream), true, code, &body).await;
            }
            None => {
                socket.write_all(b"N").await?;
                (code, body) = read_startup_packet(&mut socket).await?;
            }
        }
    }
    startup_or_cancel(Box::new(socket), false, code, &body).await
}

async fn startup_or_cancel(
    mut stream: Box<dyn Stream>,
    tls: bool,
    code: i32,
    body: &[u8],
) -> Result<Startup, Fatal> {
    if code == CANCEL_REQUEST {
        if body.len() < 8 {
            return Err(Fatal::Closed);
        }
        let pid = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        let secret = i32::from_be_bytes([body[4], body[5], body[6], body[7]]);
        return Ok(Startup::Cancel { pid, secret });
    }
    let major = (code >> 16) as u16;
    let minor = (code & 0xffff) as u16;
    if major != 3 {
        return Err(Fatal::Client(QueryError::new(
            code::PROTOCOL_VIOLATION,
            format!("unsupported frontend protocol {major}.{minor}: server supports 3.0"),
        )));
    }
    let parameters = parse_parameters(body)?;
    // We speak 3.0. A newer minor version, or `_pq_.` options, get NegotiateProtocolVersion.
    let unsupported: Vec<String> = parameters
        .keys()
        .filter(|k| k.starts_with("_pq_."))
        .cloned()
        .collect();
    if minor > 0 || !unsupported.is_empty() {
        let mut buffer = BytesMut::new();
        let message = PgWireBackendMessage::NegotiateProtocolVersion(
            NegotiateProtocolVersion::new(0, unsupported),
        );
        if message.encode(&mut buffer).is_ok() {
            stream.write_all(&buffer).await?;
        }
    }
    let parameters = parameters
        .into_iter()
        .filter(|(k, _)| !k.starts_with("_pq_."))
        .collect();
    Ok(Startup::Session {
        stream,
        parameters,
        tls,
    })
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
        Ok(Err(Fatal::Client(err))) => {
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
        _ = evicted.cancelled() => Ok(Err(Fatal::Client(QueryError::new(
            code::TOO_MANY_CONNECTIONS,
            "too many connections are authenticating; this one waited longest",
        ).fatal()))),
    };
    let session = match login {
        Ok(Ok(session)) => session,
        Ok(Err(Fatal::Client(err))) => {
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
            let err = QueryError::new(
                code::INVALID_AUTHORIZATION,
                "canceling authentication due to timeout",
            )
            .fatal();
            return conn.fatal(&err).await;
        }
    };
    drop(slot);
    let (pid, cancel) = (session.pid, session.cancel.clone());
    let Ok(_permit) = server.sessions.clone().try_acquire_owned() else {
        server.cancels.remove(pid);
        tracing::warn!(%peer, "connection refused: max_connections reached");
        metrics.connection("refused_max_connections");
        let err = QueryError::new(
            code::TOO_MANY_CONNECTIONS,
            "sorry, too many clients already",
        )
        .fatal();
        return conn.fatal(&err).await;
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
        Ok(()) | Err(Fatal::Closed) | Err(Fatal::Reported) => {}
        Err(Fatal::Client(err)) => conn.fatal(&err).await,
        Err(Fatal::Io(err)) => tracing::debug!(session_id = pid, error = %err, "connection lost"),
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

/// Authenticates the user and builds the session.
async fn login(
    server: &Server,
    conn: &mut Conn,
    parameters: &BTreeMap<String, String>,
    tls: bool,
    peer: SocketAddr,
) -> Result<LiveSession, Fatal> {
    if server.settings.tls_mode == TlsMode::Require && !tls {
        return Err(Fatal::Client(
            QueryError::new(
                code::INVALID_AUTHORIZATION,
                "this server requires TLS (use sslmode=require)",
            )
            .fatal(),
        ));
    }
    let Some(user) = parameters.get("user").filter(|u| !u.is_empty()) else {
        return Err(Fatal::Client(
            QueryError::new(
                code::INVALID_AUTHORIZATION,
                "no PostgreSQL user name specified in startup packet",
            )
            .fatal(),
        ));
    };
    let failed = || {
        Fatal::Client(
            QueryError::new(
                code::INVALID_PASSWORD,
                format!("password authentication failed for user \"{user}\""),
            )
            .fatal(),
        )
    };
    let policy = server.engine.policies.load();
    let known = policy.policy.user(user).cloned();
    // The same exchange for unknown users, against a verifier that never matches, so that the
    // messages and timing do not tell which names exist.
    let use_cleartext = known
        .as_ref()
        .is_some_and(|u| u.scram.is_none() && u.password_hash.is_some());
    // Guessing is slowed down per name and per address, known names or not.
    let admission = server.throttle.admit(user, peer.ip());
    if admission.refused {
        audit_login(server, user, peer, admission);
        let err = QueryError::new(
            code::INVALID_PASSWORD,
            format!("password authentication failed for user \"{user}\""),
        )
        .with_hint(
            "too many failed attempts for this user or from this address: wait a few seconds",
        )
        .fatal();
        return Err(Fatal::Client(err));
    }
    if !admission.delay.is_zero() {
        tokio::time::sleep(admission.delay).await;
    }
    let authenticated = if use_cleartext {
        if !tls && !super::is_loopback(&peer) {
            return Err(Fatal::Client(
                QueryError::new(
                    code::INVALID_AUTHORIZATION,
                    "cleartext password authentication needs TLS (use sslmode=require)",
                )
                .fatal(),
            ));
        }
        conn.send(PgWireBackendMessage::Authentication(
            Authentication::CleartextPassword,
        ));
        conn.flush().await?;
        let password = match conn.next().await? {
            Some(PgWireFrontendMessage::PasswordMessageFamily(p)) => {
                if let PasswordMessageFamily::Raw(raw) = &p {
                    super::frame::check_password(raw).map_err(protocol_violation)?;
                }
                p.into_password().map_err(|_| failed())?.password
            }
            _ => return Err(Fatal::Closed),
        };
        let hash = known
            .as_ref()
            .and_then(|u| u.password_hash.clone())
            .unwrap_or_default();
        let _hashing = server.password_hashing.acquire().await;
        tokio::task::spawn_blocking(move || crate::auth::verify_password(&password, &hash))
            .await
            .unwrap_or(false)
    } else {
        let verifier = known
            .as_ref()
            .and_then(|u| u.scram.as_deref())
            .and_then(|s| ScramVerifier::parse(s).ok())
            .unwrap_or_else(|| ScramVerifier::mock(user, &server_secret()));
        scram(conn, verifier, &failed).await?
    };
    let now = chrono::Utc::now().timestamp_micros();
    let login = policy
        .policy
        .check_login(user, now, server.settings.loopback_only);
    if !authenticated || known.is_none() {
        tracing::info!(%peer, user = %user, "authentication failed");
        login_failed(server, user, peer, admission);
        return Err(failed());
    }
    if let Err(refusal) = login {
        match refusal {
            LoginRefusal::DemoPasswordOffLoopback => tracing::warn!(
                %peer, user = %user,
                "refused a demo password: demo users work only while the server listens on loopback"
            ),
            other => tracing::info!(%peer, user = %user, reason = ?other, "login refused"),
        }
        login_failed(server, user, peer, admission);
        return Err(failed());
    }
    server.throttle.succeeded(user);
    let database = parameters
        .get("database")
        .cloned()
        .unwrap_or_else(|| user.clone());
    if !database.eq_ignore_ascii_case(crate::config::DATABASE_NAME) {
        return Err(Fatal::Client(
            QueryError::new(
                code::INVALID_CATALOG_NAME,
                format!("database \"{database}\" does not exist"),
            )
            .with_hint(format!(
                "this server serves \"{}\"",
                crate::config::DATABASE_NAME
            ))
            .fatal(),
        ));
    }
    let (pid, cancel) = server.cancels.register();
    let info = SessionInfo {
        pid,
        user: user.clone(),
        client_addr: peer.ip().to_string(),
    };
    let mut query = match QuerySession::new(server.engine.clone(), info) {
        Ok(q) => q,
        Err(err) => {
            server.cancels.remove(pid);
            return Err(Fatal::Client(err));
        }
    };
    if let Err(err) = query.apply_startup(parameters) {
        server.cancels.remove(pid);
        return Err(Fatal::Client(err.fatal()));
    }
    Ok(LiveSession { query, pid, cancel })
}

/// Counts a failed login against its name and address, and puts it in the audit trail (with
/// how long it was held back: guessing shows there).
fn login_failed(
    server: &Server,
    user: &str,
    peer: SocketAddr,
    admission: super::throttle::Admission,
) {
    server.throttle.failed(user, peer.ip());
    audit_login(server, user, peer, admission);
}

/// Puts a failed or refused login in the audit trail.
fn audit_login(
    server: &Server,
    user: &str,
    peer: SocketAddr,
    admission: super::throttle::Admission,
) {
    crate::metrics::global().connection(if admission.refused {
        "throttled"
    } else {
        "authentication_failed"
    });
    let now = chrono::Utc::now();
    let statement = if admission.refused {
        format!(
            "authentication refused unchecked after {} failed attempts",
            admission.failures
        )
    } else if admission.delay.is_zero() {
        "authentication failed".to_string()
    } else {
        format!(
            "authentication failed (held back {} ms after {} failed attempts)",
            admission.delay.as_millis(),
            admission.failures
        )
    };
    server
        .engine
        .system
        .audit
        .record(crate::audit::AuditRecord {
            time: now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            time_micros: now.timestamp_micros(),
            session_id: 0,
            query_id: server.engine.next_query_id(),
            user: user.to_string(),
            client_addr: peer.ip().to_string(),
            application_name: String::new(),
            kind: "login".to_string(),
            statement,
            tables: Vec::new(),
            columns: Vec::new(),
            row_filters: Vec::new(),
            masks: Vec::new(),
            versions: Vec::new(),
            rows: 0,
            duration_ms: admission.delay.as_secs_f64() * 1000.0,
            result_cache: String::new(),
            outcome: "error".to_string(),
            sqlstate: code::INVALID_PASSWORD.to_string(),
        });
}

/// A secret that lives as long as the process, for mock SCRAM verifiers.
fn server_secret() -> [u8; 32] {
    static SECRET: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    *SECRET.get_or_init(crate::auth::random_secret)
}

async fn scram(
    conn: &mut Conn,
    verifier: ScramVerifier,
    failed: &(dyn Fn() -> Fatal + Sync),
) -> Result<bool, Fatal> {
    conn.send(PgWireBackendMessage::Authentication(Authentication::SASL(
        vec!["SCRAM-SHA-256".to_string()],
    )));
    conn.flush().await?;
    let initial = match conn.next().await? {
        Some(PgWireFrontendMessage::PasswordMessageFamily(p)) => {
            if let PasswordMessageFamily::Raw(raw) = &p {
                super::frame::check_sasl_initial_response(raw).map_err(protocol_violation)?;
            }
            p.into_sasl_initial_response().map_err(|_| failed())?
        }
        _ => return Err(Fatal::Closed),
    };
    if initial.auth_method != "SCRAM-SHA-256" {
        return Err(Fatal::Client(
            QueryError::new(
                code::INVALID_AUTHORIZATION,
                "only SCRAM-SHA-256 is supported",
            )
            .fatal(),
        ));
    }
    let mut exchange = ScramExchange::new(verifier);
    let server_first = exchange
        .client_first(initial.data.as_deref().unwrap_or_default())
        .map_err(|_| failed())?;
    conn.send(PgWireBackendMessage::Authentication(
        Authentication::SASLContinue(server_first.into()),
    ));
    conn.flush().await?;
    let response = match conn.next().await? {
        Some(PgWireFrontendMessage::PasswordMessageFamily(p)) => {
            p.into_sasl_response().map_err(|_| failed())?
        }
        _ => return Err(Fatal::Closed),
    };
    match exchange.client_final(&response.data) {
        Ok(server_final) => {
            conn.send(PgWireBackendMessage::Authentication(
                Authentication::SASLFinal(server_final.into()),
            ));
            Ok(true)
        }
        Err(_) => Ok(false),
    }
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
) -> Result<(), Fatal> {
    let mut state = State {
        statements: HashMap::new(),
        portals: HashMap::new(),
        skipping: false,
    };
    loop {
        let message = tokio::select! {
            message = conn.next() => message?,
            _ = shutdown.cancelled() => {
                return Err(Fatal::Client(
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
                        Fatal::Client(err) if !err.fatal => {
                            conn.error(&err);
                            live.query.on_error();
                            state.skipping = true;
                        }
                        Fatal::Reported => state.skipping = true,
                        other => return Err(other),
                    }
                }
            }
            PgWireFrontendMessage::PasswordMessageFamily(_) => {
                return Err(Fatal::Client(
                    QueryError::new(code::PROTOCOL_VIOLATION, "unexpected password message")
                        .fatal(),
                ));
            }
            _ => {
                return Err(Fatal::Client(
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

/// The simple query protocol: every statement of the string in order, text results; the first
/// error stops the rest.
async fn simple_query(conn: &mut Conn, live: &mut LiveSession, sql: &str) -> Result<(), Fatal> {
    let parsed = {
        let guard = Guard::start(live);
        guard.run(live.query.parse(sql)).await
    };
    let statements = match parsed {
        Ok(s) => s,
        Err(err) => {
            live.query.record_refused(sql, &err);
            conn.error(&err);
            live.query.on_error();
            return Ok(());
        }
    };
    if statements.is_empty() {
        conn.send(PgWireBackendMessage::EmptyQueryResponse(
            EmptyQueryResponse::new(),
        ));
        return Ok(());
    }
    let single = statements.len() == 1;
    for statement in statements {
        let text = if single {
            sql.to_string()
        } else {
            statement.to_string()
        };
        // One statement timeout from planning to the last row, as PostgreSQL times each
        // statement of a query string.
        let guard = Guard::start(live);
        // Execution audits its own outcome; a statement that never got that far (refused,
        // unknown table, timed out while planning) is audited here, as the extended protocol's
        // Parse does.
        let mut planned = false;
        let result = guard
            .run(async {
                let mut prepared = live.query.prepare(&text, statement, &[]).await?;
                planned = true;
                let outcome = live.query.execute(&mut prepared, Vec::new()).await?;
                Ok::<_, QueryError>((prepared, outcome))
            })
            .await;
        let (prepared, outcome) = match result {
            Ok(ok) => ok,
            Err(err) => {
                if !planned {
                    live.query.record_refused(&text, &err);
                }
                if err.fatal {
                    return Err(Fatal::Client(err));
                }
                conn.error(&err);
                live.query.on_error();
                return Ok(());
            }
        };
        let formats = vec![Format::Text; prepared.fields.as_ref().map(|f| f.len()).unwrap_or(0)];
        if let Some(fields) = &prepared.fields {
            conn.send(row_description(fields, &formats));
        }
        match send_outcome(conn, live, outcome, &formats, 0, &guard).await? {
            Sent::Done => {}
            Sent::Failed => return Ok(()),
            Sent::Suspended(_) => {}
        }
    }
    Ok(())
}

/// A statement's deadline (`statement_timeout`) and the cancel requests it has seen, from the
/// moment the statement arrived.
struct Guard {
    cancel: Arc<CancelHandle>,
    seen: u64,
    deadline: Option<Instant>,
}

impl Guard {
    fn start(live: &LiveSession) -> Guard {
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
    async fn interrupted(&self) -> QueryError {
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
    async fn run<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, QueryError>>,
    ) -> Result<T, QueryError> {
        tokio::select! {
            result = work => result,
            err = self.interrupted() => Err(err),
        }
    }
}

enum Sent {
    Done,
    Failed,
    Suspended(Box<RunningRows>),
}

/// Sends an outcome's rows (at most `max_rows` when > 0) and its completion.
async fn send_outcome(
    conn: &mut Conn,
    live: &mut LiveSession,
    outcome: Outcome,
    formats: &[Format],
    max_rows: usize,
    guard: &Guard,
) -> Result<Sent, Fatal> {
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
async fn stream_rows(
    conn: &mut Conn,
    live: &mut LiveSession,
    mut rows: Box<RunningRows>,
    max_rows: usize,
    guard: &Guard,
) -> Result<Sent, Fatal> {
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
                            return Err(Fatal::Client(err));
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
            let err = QueryError::internal(0, &message);
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

fn complete(tag: &str) -> PgWireBackendMessage {
    PgWireBackendMessage::CommandComplete(CommandComplete::new(tag.to_string()))
}

fn row_description(fields: &[FieldInfo], formats: &[Format]) -> PgWireBackendMessage {
    PgWireBackendMessage::RowDescription(RowDescription::new(
        fields
            .iter()
            .enumerate()
            .map(|(idx, f)| field_description(f, formats.get(idx).copied().unwrap_or(Format::Text)))
            .collect(),
    ))
}

fn field_description(field: &FieldInfo, format: Format) -> FieldDescription {
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

fn client_error(err: QueryError) -> Fatal {
    Fatal::Client(err)
}

/// One extended-protocol message.
async fn extended(
    conn: &mut Conn,
    live: &mut LiveSession,
    state: &mut State,
    message: PgWireFrontendMessage,
) -> Result<(), Fatal> {
    match message {
        PgWireFrontendMessage::Parse(parse) => {
            let name = parse.name.clone().unwrap_or_default();
            if !name.is_empty() && state.statements.contains_key(&name) {
                return Err(client_error(QueryError::new(
                    code::DUPLICATE_PREPARED_STATEMENT,
                    format!("prepared statement \"{name}\" already exists"),
                )));
            }
            // Parse and plan count toward statement_timeout and can be canceled.
            let guard = Guard::start(live);
            let prepared = guard
                .run(async {
                    let mut statements = live.query.parse(&parse.query).await?;
                    match statements.len() {
                        0 => Ok(live.query.prepare_empty()),
                        1 => {
                            let statement = statements.remove(0);
                            live.query
                                .prepare(&parse.query, statement, &parse.type_oids)
                                .await
                        }
                        _ => Err(QueryError::syntax(
                            "cannot insert multiple commands into a prepared statement",
                        )),
                    }
                })
                .await
                .map_err(|err| {
                    live.query.record_refused(&parse.query, &err);
                    client_error(err)
                })?;
            state.statements.insert(name, prepared);
            conn.send(PgWireBackendMessage::ParseComplete(ParseComplete::new()));
        }
        PgWireFrontendMessage::Bind(bind) => {
            let statement_name = bind.statement_name.clone().unwrap_or_default();
            let portal_name = bind.portal_name.clone().unwrap_or_default();
            let prepared = state
                .statements
                .get(&statement_name)
                .cloned()
                .ok_or_else(|| {
                    client_error(QueryError::new(
                        code::INVALID_SQL_STATEMENT_NAME,
                        format!("prepared statement \"{statement_name}\" does not exist"),
                    ))
                })?;
            if !portal_name.is_empty() && state.portals.contains_key(&portal_name) {
                return Err(client_error(QueryError::new(
                    code::DUPLICATE_CURSOR,
                    format!("portal \"{portal_name}\" already exists"),
                )));
            }
            let n_params = prepared.param_types.len();
            if bind.parameters.len() != n_params {
                return Err(client_error(QueryError::new(
                    code::PROTOCOL_VIOLATION,
                    format!(
                        "bind message supplies {} parameters, but prepared statement \"{statement_name}\" requires {n_params}",
                        bind.parameters.len()
                    ),
                )));
            }
            let param_formats: Vec<i16> = match bind.parameter_format_codes.len() {
                0 => vec![0; n_params],
                1 => vec![bind.parameter_format_codes[0]; n_params],
                n if n == n_params => bind.parameter_format_codes.clone(),
                n => {
                    return Err(client_error(QueryError::new(
                        code::PROTOCOL_VIOLATION,
                        format!("bind message has {n} parameter formats but {n_params} parameters"),
                    )));
                }
            };
            let mut params = Vec::with_capacity(n_params);
            let zone = crate::sql::zone::zone(&live.query.settings().time_zone());
            for (idx, value) in bind.parameters.iter().enumerate() {
                params.push(
                    crate::pg::codec::params::decode(
                        value.as_ref(),
                        prepared.param_types[idx],
                        param_formats[idx],
                        zone.as_ref(),
                    )
                    .map_err(client_error)?,
                );
            }
            let n_fields = prepared.fields.as_ref().map(|f| f.len()).unwrap_or(0);
            let formats = Format::from_codes(&bind.result_column_format_codes, n_fields)
                .map_err(|m| client_error(QueryError::new(code::PROTOCOL_VIOLATION, m)))?;
            if let Some(old) = state.portals.remove(&portal_name) {
                finish_abandoned(live, old);
            }
            state.portals.insert(
                portal_name,
                Portal {
                    prepared,
                    params,
                    formats,
                    state: PortalState::NotStarted,
                },
            );
            conn.send(PgWireBackendMessage::BindComplete(BindComplete::new()));
        }
        PgWireFrontendMessage::Describe(describe) => {
            let name = describe.name.clone().unwrap_or_default();
            if describe.target_type == b'S' {
                let prepared = state.statements.get(&name).ok_or_else(|| {
                    client_error(QueryError::new(
                        code::INVALID_SQL_STATEMENT_NAME,
                        format!("prepared statement \"{name}\" does not exist"),
                    ))
                })?;
                conn.send(PgWireBackendMessage::ParameterDescription(
                    ParameterDescription::new(prepared.param_types.clone()),
                ));
                match &prepared.fields {
                    Some(fields) => {
                        let formats = vec![Format::Text; fields.len()];
                        conn.send(row_description(fields, &formats));
                    }
                    None => conn.send(PgWireBackendMessage::NoData(NoData::new())),
                }
            } else {
                let portal = state.portals.get(&name).ok_or_else(|| {
                    client_error(QueryError::new(
                        code::INVALID_CURSOR_NAME,
                        format!("portal \"{name}\" does not exist"),
                    ))
                })?;
                match &portal.prepared.fields {
                    Some(fields) => conn.send(row_description(fields, &portal.formats)),
                    None => conn.send(PgWireBackendMessage::NoData(NoData::new())),
                }
            }
        }
        PgWireFrontendMessage::Execute(execute) => {
            let name = execute.name.clone().unwrap_or_default();
            let max_rows = usize::try_from(execute.max_rows.max(0)).unwrap_or(0);
            let mut portal = state.portals.remove(&name).ok_or_else(|| {
                client_error(QueryError::new(
                    code::INVALID_CURSOR_NAME,
                    format!("portal \"{name}\" does not exist"),
                ))
            })?;
            let result = execute_portal(conn, live, &mut portal, max_rows).await;
            state.portals.insert(name, portal);
            result?;
        }
        PgWireFrontendMessage::Close(close) => {
            let name = close.name.clone().unwrap_or_default();
            if close.target_type == b'S' {
                state.statements.remove(&name);
            } else if let Some(portal) = state.portals.remove(&name) {
                finish_abandoned(live, portal);
            }
            conn.send(PgWireBackendMessage::CloseComplete(CloseComplete::new()));
        }
        _ => {}
    }
    Ok(())
}

async fn execute_portal(
    conn: &mut Conn,
    live: &mut LiveSession,
    portal: &mut Portal,
    max_rows: usize,
) -> Result<(), Fatal> {
    let state = std::mem::replace(&mut portal.state, PortalState::Done);
    let sent = match state {
        PortalState::Done => {
            conn.send(complete("SELECT 0"));
            return Ok(());
        }
        PortalState::Rows(rows) => {
            let guard = Guard::start(live);
            stream_rows(conn, live, rows, max_rows, &guard).await?
        }
        PortalState::NotStarted => {
            if QuerySession::is_empty(&portal.prepared) {
                conn.send(PgWireBackendMessage::EmptyQueryResponse(
                    EmptyQueryResponse::new(),
                ));
                return Ok(());
            }
            let params = std::mem::take(&mut portal.params);
            let guard = Guard::start(live);
            let outcome = guard
                .run(live.query.execute(&mut portal.prepared, params))
                .await
                .map_err(client_error)?;
            send_outcome(conn, live, outcome, &portal.formats, max_rows, &guard).await?
        }
    };
    match sent {
        Sent::Done => Ok(()),
        Sent::Suspended(rows) => {
            portal.state = PortalState::Rows(rows);
            Ok(())
        }
        // The error is already sent: skip to Sync like any other error in the batch.
        Sent::Failed => Err(Fatal::Reported),
    }
}
