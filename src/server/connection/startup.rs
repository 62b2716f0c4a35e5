//! The startup phase: SSLRequest and the TLS handshake, GSSENCRequest refused, the startup
//! packet and its parameters, CancelRequest.

use super::*;
use crate::config::TlsMode;
use crate::server::Server;
use crate::sql::QueryError;
use crate::sql::error::code;
use bytes::BytesMut;
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::startup::NegotiateProtocolVersion;
use std::collections::BTreeMap;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What the startup phase produced.
pub(super) enum Startup {
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
pub(super) async fn read_startup_packet<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<(i32, Vec<u8>), Stop> {
    let mut len = [0u8; 4];
    match stream.read_exact(&mut len).await {
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => return Err(Stop::Closed),
        Err(err) => return Err(Stop::Io(err)),
    }
    let len = i32::from_be_bytes(len);
    if !(8..=10_000).contains(&len) {
        return Err(Stop::Client(QueryError::new(
            code::PROTOCOL_VIOLATION,
            "invalid length of startup packet",
        )));
    }
    let mut body = vec![0u8; len as usize - 4];
    stream.read_exact(&mut body).await?;
    let code = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
    Ok((code, body[4..].to_vec()))
}

pub(super) fn parse_parameters(body: &[u8]) -> Result<BTreeMap<String, String>, Stop> {
    let invalid = || {
        Stop::Client(QueryError::new(
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
pub(super) async fn negotiate(server: &Server, mut socket: TcpStream) -> Result<Startup, Stop> {
    let tls = server
        .settings
        .tls
        .as_ref()
        .filter(|_| server.settings.tls_mode != TlsMode::Disable);
    // PostgreSQL 17's direct TLS: a TLS ClientHello instead of SSLRequest.
    let mut first = [0u8; 1];
    if socket.peek(&mut first).await? == 1 && first[0] == 0x16 {
        let Some(tls) = tls else {
            return Err(Stop::Closed);
        };
        let mut stream = tls.acceptor.accept(socket).await?;
        let alpn_ok = stream.get_ref().1.alpn_protocol() == Some(b"postgresql".as_slice());
        if !alpn_ok {
            return Err(Stop::Closed);
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
                    return Err(Stop::Client(QueryError::new(
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

pub(super) async fn startup_or_cancel(
    mut stream: Box<dyn Stream>,
    tls: bool,
    code: i32,
    body: &[u8],
) -> Result<Startup, Stop> {
    if code == CANCEL_REQUEST {
        if body.len() < 8 {
            return Err(Stop::Closed);
        }
        let pid = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        let secret = i32::from_be_bytes([body[4], body[5], body[6], body[7]]);
        return Ok(Startup::Cancel { pid, secret });
    }
    let major = (code >> 16) as u16;
    let minor = (code & 0xffff) as u16;
    if major != 3 {
        return Err(Stop::Client(QueryError::new(
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
