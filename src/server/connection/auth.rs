//! Authentication: SCRAM-SHA-256 or a cleartext password over TLS, the login decision, its
//! audit record and the throttle.

use super::*;
use crate::auth::{ScramExchange, ScramVerifier};
use crate::config::TlsMode;
use crate::policy::LoginRefusal;
use crate::server::Server;
use crate::sql::error::code;
use crate::sql::{QueryError, QuerySession, SessionInfo};
use pgwire::messages::startup::{Authentication, PasswordMessageFamily};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Authenticates the user and builds the session.
pub(super) async fn login(
    server: &Server,
    conn: &mut Conn,
    parameters: &BTreeMap<String, String>,
    tls: bool,
    peer: SocketAddr,
) -> Result<LiveSession, Stop> {
    if server.settings.tls_mode == TlsMode::Require && !tls {
        return Err(Stop::Client(
            QueryError::new(
                code::INVALID_AUTHORIZATION,
                "this server requires TLS (use sslmode=require)",
            )
            .fatal(),
        ));
    }
    let Some(user) = parameters.get("user").filter(|u| !u.is_empty()) else {
        return Err(Stop::Client(
            QueryError::new(
                code::INVALID_AUTHORIZATION,
                "no PostgreSQL user name specified in startup packet",
            )
            .fatal(),
        ));
    };
    let failed = || {
        Stop::Client(
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
        return Err(Stop::Client(err));
    }
    if !admission.delay.is_zero() {
        tokio::time::sleep(admission.delay).await;
    }
    let authenticated = if use_cleartext {
        if !tls && !crate::server::is_loopback(&peer) {
            return Err(Stop::Client(
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
                    crate::server::frame::check_password(raw).map_err(protocol_violation)?;
                }
                p.into_password().map_err(|_| failed())?.password
            }
            _ => return Err(Stop::Closed),
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
        return Err(Stop::Client(
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
            return Err(Stop::Client(err));
        }
    };
    if let Err(err) = query.apply_startup(parameters) {
        server.cancels.remove(pid);
        return Err(Stop::Client(err.fatal()));
    }
    Ok(LiveSession { query, pid, cancel })
}

/// Counts a failed login against its name and address, and puts it in the audit trail (with
/// how long it was held back: guessing shows there).
pub(super) fn login_failed(
    server: &Server,
    user: &str,
    peer: SocketAddr,
    admission: crate::server::throttle::Admission,
) {
    server.throttle.failed(user, peer.ip());
    audit_login(server, user, peer, admission);
}

/// Puts a failed or refused login in the audit trail.
pub(super) fn audit_login(
    server: &Server,
    user: &str,
    peer: SocketAddr,
    admission: crate::server::throttle::Admission,
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
pub(super) fn server_secret() -> [u8; 32] {
    static SECRET: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    *SECRET.get_or_init(crate::auth::random_secret)
}

pub(super) async fn scram(
    conn: &mut Conn,
    verifier: ScramVerifier,
    failed: &(dyn Fn() -> Stop + Sync),
) -> Result<bool, Stop> {
    conn.send(PgWireBackendMessage::Authentication(Authentication::SASL(
        vec!["SCRAM-SHA-256".to_string()],
    )));
    conn.flush().await?;
    let initial = match conn.next().await? {
        Some(PgWireFrontendMessage::PasswordMessageFamily(p)) => {
            if let PasswordMessageFamily::Raw(raw) = &p {
                crate::server::frame::check_sasl_initial_response(raw)
                    .map_err(protocol_violation)?;
            }
            p.into_sasl_initial_response().map_err(|_| failed())?
        }
        _ => return Err(Stop::Closed),
    };
    if initial.auth_method != "SCRAM-SHA-256" {
        return Err(Stop::Client(
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
        _ => return Err(Stop::Closed),
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
