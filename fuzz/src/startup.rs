//! The `startup` target: the input is the first bytes of a TCP connection to a fresh server
//! (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest, then password and SASL
//! messages).
//!
//! Each input gets its own `Server` over the shared engine, so the login throttle, the cancel
//! registry and the startup places start empty every time: an input's outcome depends on that
//! input alone, and a crash reproduces from its file.
//!
//! SSLRequest and GSSENCRequest at the start are sent one at a time and their one-byte answer
//! read; after `S` the rest of the input goes through a real TLS session, so the startup
//! packet, SCRAM and the password messages are fuzzed over TLS too.
//!
//! Oracles, besides "no panic in any thread": the server's answer is well-formed backend
//! messages, every ErrorResponse has a severity, a SQLSTATE and a message, AuthenticationOk
//! is never sent to an input that does not hold the password, and every 50 inputs (and for
//! every input when replaying files) a real SCRAM login still works after the input.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::server::{Answer, Running, exchange, real_login, tls_connect};
use crate::wire::{GSSENC_REQUEST, SSL_REQUEST, backend_messages, checked_error_fields};
use crate::{PASSWORD, Stats, world};

static STATS: Stats = Stats::new();
/// A real login is checked after this many inputs.
const LOGIN_EVERY: u64 = 50;

/// Builds the world.
pub fn init() {
    let w = world();
    w.rt.block_on(async {
        let server = Running::start(w).await;
        if let Err(err) = real_login(server.addr, "bob").await {
            panic!("self-check: a real login fails before any input: {err}");
        }
        server.stop().await;
    });
    eprintln!("lakehouse-fuzz startup: server ready");
}

/// One input.
pub fn run(data: &[u8]) {
    let w = world();
    let n = STATS.runs.load(Ordering::Relaxed);
    let check_login = n % LOGIN_EVERY == 0;
    w.rt.block_on(async {
        let server = Running::start(w).await;
        let limit = Duration::from_secs(5);
        match tokio::time::timeout(
            limit + Duration::from_secs(2),
            talk(server.addr, data, limit),
        )
        .await
        {
            Ok(Some(answer)) => check_answer(data, &answer),
            Ok(None) => {}
            Err(_) => {
                STATS.timeouts.fetch_add(1, Ordering::Relaxed);
            }
        }
        if check_login {
            if let Err(err) = real_login(server.addr, "bob").await {
                panic!("the server refuses a real login after this input: {err}");
            }
            STATS.logins.fetch_add(1, Ordering::Relaxed);
        }
        if !server.stop().await {
            STATS.timeouts.fetch_add(1, Ordering::Relaxed);
        }
    });
    STATS.tick("startup", 5000);
}

/// Sends the input; the answer when its framing can be checked (plaintext or inside our TLS).
async fn talk(addr: std::net::SocketAddr, data: &[u8], limit: Duration) -> Option<Answer> {
    let mut socket = TcpStream::connect(addr).await.ok()?;
    let mut rest = data;
    // As the server reads them: a length word (8 to 10,000) and a code; whatever the length,
    // the code decides (the rest of the packet is ignored), and the answer is one byte.
    loop {
        let Some((len, code)) = negotiation_packet(rest) else {
            break;
        };
        let ssl = code == SSL_REQUEST[4..8];
        socket.write_all(&rest[..len]).await.ok()?;
        rest = &rest[len..];
        let mut answer = [0u8; 1];
        tokio::time::timeout(limit, socket.read_exact(&mut answer))
            .await
            .ok()?
            .ok()?;
        match answer[0] {
            b'S' if ssl => {
                let tls = tls_connect(socket).await.ok()?;
                return Some(exchange(tls, rest, limit).await);
            }
            b'N' => {}
            other => panic!("answer {other:#04x} to an SSL/GSSENC request"),
        }
    }
    let direct_tls = rest.first() == Some(&0x16);
    let answer = exchange(socket, rest, limit).await;
    // A TLS ClientHello gets a TLS alert, not PostgreSQL messages.
    (!direct_tls).then_some(answer)
}

/// The length and code of an SSLRequest or GSSENCRequest at the start of `bytes`.
fn negotiation_packet(bytes: &[u8]) -> Option<(usize, [u8; 4])> {
    let len = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let code: [u8; 4] = bytes.get(4..8)?.try_into().ok()?;
    let negotiation = code == SSL_REQUEST[4..8] || code == GSSENC_REQUEST[4..8];
    (negotiation && (8..=10_000).contains(&len) && bytes.len() >= len).then_some((len, code))
}

fn check_answer(data: &[u8], answer: &Answer) {
    let messages = match backend_messages(&answer.bytes) {
        Ok(m) => m,
        Err(err) if answer.complete => {
            panic!("malformed answer to a startup ({err}): {:?}", answer.bytes)
        }
        Err(_) => return,
    };
    for (tag, body) in messages {
        match tag {
            b'E' => {
                STATS.errors.fetch_add(1, Ordering::Relaxed);
                checked_error_fields(body);
            }
            b'R' if body == [0, 0, 0, 0] => {
                STATS.ok.fetch_add(1, Ordering::Relaxed);
                assert!(
                    data.windows(PASSWORD.len())
                        .any(|w| w == PASSWORD.as_bytes()),
                    "AuthenticationOk sent to an input that does not hold the password"
                );
            }
            _ => {}
        }
    }
}
