//! The pgwire server: the only module that speaks the PostgreSQL protocol.
//!
//! - [`Server::run`]: accept loop on an already bound listener (tests bind `127.0.0.1:0`),
//!   connection limit, graceful shutdown.
//! - `connection`: one client from the first byte to Terminate: TLS negotiation, authentication,
//!   simple and extended query protocol.
//! - Value codecs (DataRow, Bind parameters, COPY data) are `pg::codec`'s.
//! - [`frame`]: every client message is checked before pgwire decodes it.
//! - [`tls`]: rustls setup, self-signed certificates.
//!
//! pgwire is used for its message codecs only; the connection state machine is ours, so that
//! results stream with backpressure in both protocols, CancelRequest and statement_timeout stop
//! execution, and pipelined batches are answered strictly in order.

mod connection;
pub mod frame;
mod throttle;
pub mod tls;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use rand::Rng;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::TlsMode;
use crate::sql::Engine;

/// Settings of the wire server.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// TLS mode.
    pub tls_mode: TlsMode,
    /// TLS material (required unless the mode is `disable`).
    pub tls: Option<tls::Tls>,
    /// Authenticated sessions at once.
    pub max_connections: usize,
    /// Connections that have not authenticated yet, at once; when a new one comes, the one
    /// that has waited longest gives way.
    pub max_startup_connections: usize,
    /// Time a client has from its first byte to the end of authentication.
    pub authentication_timeout: Duration,
    /// Whether the server listens on loopback only (demo passwords are refused otherwise).
    pub loopback_only: bool,
    /// How long shutdown waits for running statements.
    pub shutdown_grace: Duration,
}

/// A connection's cancellation handle, found by BackendKeyData.
#[derive(Debug)]
struct CancelHandle {
    secret: i32,
    /// Incremented by each CancelRequest; a statement is canceled when it changes.
    requests: AtomicU64,
    notify: Notify,
}

/// Connections by process id, for CancelRequest.
#[derive(Debug, Default)]
struct CancelRegistry {
    handles: Mutex<HashMap<i32, Arc<CancelHandle>>>,
}

impl CancelRegistry {
    /// Registers a new connection under a fresh random (pid, secret).
    fn register(&self) -> (i32, Arc<CancelHandle>) {
        let mut rng = rand::rng();
        let mut handles = self.handles.lock();
        loop {
            let pid = rng.random_range(1..i32::MAX);
            if handles.contains_key(&pid) {
                continue;
            }
            let handle = Arc::new(CancelHandle {
                secret: rng.random(),
                requests: AtomicU64::new(0),
                notify: Notify::new(),
            });
            handles.insert(pid, handle.clone());
            return (pid, handle);
        }
    }

    fn remove(&self, pid: i32) {
        self.handles.lock().remove(&pid);
    }

    /// Handles a CancelRequest. As in PostgreSQL, nothing tells the sender whether it matched.
    fn cancel(&self, pid: i32, secret: i32) {
        let handle = self.handles.lock().get(&pid).cloned();
        if let Some(handle) = handle {
            use subtle::ConstantTimeEq;
            if bool::from(handle.secret.to_be_bytes().ct_eq(&secret.to_be_bytes())) {
                handle.requests.fetch_add(1, Ordering::SeqCst);
                handle.notify.notify_waiters();
                tracing::info!(session_id = pid, "cancel request");
            }
        }
    }
}

/// Connections that have not authenticated yet. They cost the server little (a socket and a
/// task), but they must neither take the places of sessions nor, by idling, keep real users
/// from starting: when all places are taken, the connection that has waited longest is closed
/// to make room for the new one, so idle connections age out as fast as new ones come.
#[derive(Debug)]
struct StartupSlots {
    capacity: usize,
    waiting: Mutex<(u64, std::collections::BTreeMap<u64, CancellationToken>)>,
}

/// One connection's place among those authenticating; released when dropped.
struct StartupSlot {
    slots: Arc<StartupSlots>,
    id: u64,
    /// Cancelled when a newer connection needs the place.
    evicted: CancellationToken,
}

impl StartupSlots {
    fn enter(self: &Arc<Self>) -> StartupSlot {
        let mut guard = self.waiting.lock();
        let (next, waiting) = &mut *guard;
        while waiting.len() >= self.capacity.max(1) {
            match waiting.pop_first() {
                Some((_, oldest)) => oldest.cancel(),
                None => break,
            }
        }
        let id = *next;
        *next += 1;
        let evicted = CancellationToken::new();
        waiting.insert(id, evicted.clone());
        StartupSlot {
            slots: self.clone(),
            id,
            evicted,
        }
    }
}

impl Drop for StartupSlot {
    fn drop(&mut self) {
        self.slots.waiting.lock().1.remove(&self.id);
    }
}

/// The server.
pub struct Server {
    engine: Arc<Engine>,
    settings: ServerSettings,
    cancels: CancelRegistry,
    /// Authenticated sessions (`max_connections`).
    sessions: Arc<Semaphore>,
    /// Connections still authenticating (`max_startup_connections`).
    startup: Arc<StartupSlots>,
    /// Password guessing.
    throttle: throttle::LoginThrottle,
    /// argon2 verifications at once (each takes tens of milliseconds and megabytes).
    password_hashing: Arc<Semaphore>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Server")
    }
}

impl Server {
    /// A server over an engine.
    pub fn new(engine: Arc<Engine>, settings: ServerSettings) -> Arc<Server> {
        Arc::new(Server {
            sessions: Arc::new(Semaphore::new(settings.max_connections.max(1))),
            startup: Arc::new(StartupSlots {
                capacity: settings.max_startup_connections.max(1),
                waiting: Mutex::new((0, std::collections::BTreeMap::new())),
            }),
            throttle: throttle::LoginThrottle::default(),
            password_hashing: Arc::new(Semaphore::new(2)),
            engine,
            settings,
            cancels: CancelRegistry::default(),
        })
    }

    /// Serves `listener` until `shutdown` is cancelled, then lets running statements finish
    /// (up to the grace period) and closes idle connections.
    pub async fn run(self: Arc<Self>, listener: TcpListener, shutdown: CancellationToken) {
        let tracker = TaskTracker::new();
        let mut backoff = Duration::from_millis(10);
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((socket, peer)) => {
                    backoff = Duration::from_millis(10);
                    let _ = socket.set_nodelay(true);
                    let server = self.clone();
                    let shutdown = shutdown.clone();
                    let slot = self.startup.enter();
                    tracker.spawn(async move {
                        connection::serve(server, socket, peer, shutdown, slot).await;
                    });
                }
                Err(err) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
        tracker.close();
        if tokio::time::timeout(self.settings.shutdown_grace, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("shutdown grace period over; closing remaining connections");
        }
    }

    /// Number of authenticated sessions.
    pub fn n_connections(&self) -> usize {
        self.settings.max_connections - self.sessions.available_permits()
    }
}

/// Whether an address is loopback (cleartext passwords are accepted without TLS only there).
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

/// Error of [`probe`].
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// No connection, or the connection broke.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// No answer within the timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// Something answered, but not a PostgreSQL server.
    #[error("unexpected answer {0:#04x} to SSLRequest: not a PostgreSQL server")]
    NotPostgres(u8),
}

/// Health probe: connects to `addr` and sends an SSLRequest, the first message of every
/// PostgreSQL client. A serving accept loop answers `S` or `N` at once, without a password
/// and without touching the lake, so container health checks need no credentials.
pub async fn probe(addr: SocketAddr, timeout: Duration) -> Result<(), ProbeError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        // Length 8, then the SSLRequest code 1234.5679.
        stream
            .write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
            .await?;
        let answer = stream.read_u8().await?;
        match answer {
            b'S' | b'N' => Ok(()),
            other => Err(ProbeError::NotPostgres(other)),
        }
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(ProbeError::Timeout(timeout)),
    }
}
