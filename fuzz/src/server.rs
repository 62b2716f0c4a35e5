//! In-process wire servers over the world's engine, and the clients the protocol targets use:
//! a raw cleartext login, a TLS client that trusts the self-signed certificate, a concurrent
//! write-then-read exchange, and a real login with tokio-postgres.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use lakehouse::config::TlsMode;
use lakehouse::server::{Server, ServerSettings};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::wire::{frame, startup_message};
use crate::{DATABASE, PASSWORD, World};

/// Settings of the servers the targets start: the shipped defaults, except a short
/// authentication timeout and shutdown grace so that a run never waits long.
pub fn settings(w: &World) -> ServerSettings {
    ServerSettings {
        tls_mode: TlsMode::Prefer,
        tls: w.tls.clone(),
        max_connections: 32,
        max_startup_connections: 8,
        authentication_timeout: Duration::from_secs(3),
        loopback_only: true,
        shutdown_grace: Duration::from_secs(1),
    }
}

/// A server accepting on a loopback port.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    handle: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Binds 127.0.0.1:0 and serves the world's engine (call within the world's runtime).
    pub async fn start(w: &World) -> Running {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local_addr");
        let server = Server::new(Arc::clone(&w.engine), settings(w));
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(server.run(listener, shutdown.clone()));
        Running {
            addr,
            shutdown,
            handle,
        }
    }

    /// Stops it; false when it did not stop within 10 s.
    pub async fn stop(self) -> bool {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.handle)
            .await
            .is_ok()
    }
}

/// Logs in over a raw socket as `dave` (cleartext password, allowed over loopback) and reads
/// up to the first ReadyForQuery. `statement_timeout` comes with the startup packet.
pub async fn login_dave(addr: SocketAddr) -> Result<TcpStream, String> {
    let mut socket = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let startup = startup_message(&[
        ("user", "dave"),
        ("database", DATABASE),
        ("application_name", "lakehouse-fuzz"),
        ("statement_timeout", "2s"),
    ]);
    socket
        .write_all(&startup)
        .await
        .map_err(|e| format!("write startup: {e}"))?;
    let mut request = [0u8; 9];
    socket
        .read_exact(&mut request)
        .await
        .map_err(|e| format!("read password request: {e}"))?;
    if request != [b'R', 0, 0, 0, 8, 0, 0, 0, 3] {
        return Err(format!(
            "expected AuthenticationCleartextPassword, got {request:?}"
        ));
    }
    let mut password = PASSWORD.as_bytes().to_vec();
    password.push(0);
    socket
        .write_all(&frame(b'p', &password))
        .await
        .map_err(|e| format!("write password: {e}"))?;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = socket
            .read(&mut buf)
            .await
            .map_err(|e| format!("read welcome: {e}"))?;
        if n == 0 {
            return Err(format!("closed during login: {seen:?}"));
        }
        seen.extend_from_slice(&buf[..n]);
        if seen.ends_with(&[b'Z', 0, 0, 0, 5, b'I']) {
            return Ok(socket);
        }
        if seen.len() > 1 << 16 {
            return Err("no ReadyForQuery after login".to_string());
        }
    }
}

/// What an exchange read back.
pub struct Answer {
    /// Bytes the server sent.
    pub bytes: Vec<u8>,
    /// Whether the server closed the connection cleanly (EOF) within the time limit: only then
    /// is the answer known to be whole.
    pub complete: bool,
}

/// Writes `bytes` (then half-closes) while reading everything the server answers, until it
/// closes or `limit` passes. Writing and reading at once, so that a server held back by a
/// full socket (backpressure) never deadlocks the exchange.
pub async fn exchange<S>(stream: S, bytes: &[u8], limit: Duration) -> Answer
where
    S: AsyncRead + AsyncWrite + Send + Unpin,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let write = async {
        if writer.write_all(bytes).await.is_ok() {
            let _ = writer.flush().await;
            let _ = writer.shutdown().await;
        }
        writer
    };
    let read = async {
        let mut answer = Vec::new();
        let result = tokio::time::timeout(limit, reader.read_to_end(&mut answer)).await;
        let complete = matches!(result, Ok(Ok(_)));
        (answer, complete)
    };
    let (_writer, (answer, complete)) = tokio::join!(write, read);
    Answer {
        bytes: answer,
        complete,
    }
}

#[path = "../../tests/it/support/any_cert.rs"]
mod any_cert;
use any_cert::AnyCertificate;

/// A TLS client over `socket` (after the server's `S`), trusting any certificate: the server's
/// is self-signed, and what is tested is the server, not the client's checks.
pub async fn tls_connect(
    socket: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = rustls::pki_types::ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    connector
        .connect(name, socket)
        .await
        .map_err(|e| format!("TLS handshake: {e}"))
}

/// A real login (tokio-postgres, SCRAM-SHA-256 for `bob`) and a query over the lake: the
/// server still serves after what the fuzz input did to it.
pub async fn real_login(addr: SocketAddr, user: &str) -> Result<(), String> {
    let work = async {
        let config = lakehouse::bench::client_config(addr, user, PASSWORD);
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| format!("login as {user}: {e}"))?;
        let connection = tokio::spawn(connection);
        let rows = client
            .simple_query("SELECT count(*) FROM dbo.dim_patient")
            .await
            .map_err(|e| format!("query as {user}: {e}"))?;
        let count = rows.iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
            _ => None,
        });
        drop(client);
        let _ = connection.await;
        if count.as_deref() != Some("40") {
            return Err(format!("count(*) of dim_patient as {user}: {count:?}"));
        }
        Ok(())
    };
    match tokio::time::timeout(Duration::from_secs(30), work).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer to a real login as {user} within 30 s")),
    }
}
