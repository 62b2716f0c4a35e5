//! The `extended` target: a session logged in as `dave`, then the input as frontend messages
//! (Parse, Bind, Describe, Execute, Close, Sync, Flush, Query, and anything else).
//!
//! Input format, so that lengths are right by construction while contents are hostile:
//! records of `tag: u8, n: u16 (big-endian), body: n bytes` (cut short at the end of the
//! input). A record with tag `0` is sent as is (its body may hold broken lengths, partial
//! messages, anything); any other tag is framed as `tag, n + 4 (u32), body`.
//!
//! Oracles, besides "no panic in any thread": a whole answer is well-formed backend messages,
//! every ErrorResponse has a severity, a SQLSTATE and a message, the login before each input
//! succeeds, and every 100 inputs a real SCRAM login as `bob` does too.

use std::sync::OnceLock;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::server::{Running, exchange, login_dave, real_login};
use crate::wire::{backend_messages, checked_error_fields, frame};
use crate::{Stats, world};

static STATS: Stats = Stats::new();
static SERVER: OnceLock<Running> = OnceLock::new();
/// A real login is checked after this many inputs.
const LOGIN_EVERY: u64 = 100;

/// The wire bytes of an input.
pub fn decode(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 2);
    let mut rest = data;
    while !rest.is_empty() {
        let tag = rest[0];
        let n = match rest.get(1..3) {
            Some(len) => u16::from_be_bytes([len[0], len[1]]) as usize,
            None => rest.len(),
        };
        let body_start = 3.min(rest.len());
        let body = &rest[body_start..(body_start + n).min(rest.len())];
        if tag == 0 {
            out.extend_from_slice(body);
        } else {
            out.extend_from_slice(&frame(tag, body));
        }
        rest = &rest[(body_start + n).min(rest.len())..];
    }
    out
}

/// The inverse of [`decode`] for well-formed wire bytes (to turn captured sessions into seeds).
pub fn encode(messages: &[(u8, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (tag, body) in messages {
        out.push(*tag);
        out.extend_from_slice(&(body.len() as u16).to_be_bytes());
        out.extend_from_slice(body);
    }
    out
}

/// Builds the world and starts the server every input talks to.
pub fn init() {
    let w = world();
    let server = w.rt.block_on(async {
        let server = Running::start(w).await;
        if let Err(err) = real_login(server.addr, "bob").await {
            panic!("self-check: a real login fails before any input: {err}");
        }
        if let Err(err) = login_dave(server.addr).await {
            panic!("self-check: dave cannot log in: {err}");
        }
        server
    });
    let _ = SERVER.set(server);
    eprintln!("lakehouse-fuzz extended: server ready");
}

/// One input.
pub fn run(data: &[u8]) {
    let w = world();
    let addr = SERVER.get().expect("init ran").addr;
    let bytes = decode(data);
    let n = STATS.runs.load(Ordering::Relaxed);
    w.rt.block_on(async {
        let socket = match login_dave(addr).await {
            Ok(s) => s,
            Err(err) => panic!("dave cannot log in (after {n} inputs): {err}"),
        };
        let answer = exchange(socket, &bytes, Duration::from_secs(6)).await;
        if !answer.complete {
            STATS.timeouts.fetch_add(1, Ordering::Relaxed);
        }
        match backend_messages(&answer.bytes) {
            Ok(messages) => {
                for (tag, body) in messages {
                    match tag {
                        b'E' => {
                            STATS.errors.fetch_add(1, Ordering::Relaxed);
                            let fields = checked_error_fields(body);
                            if fields.iter().any(|(k, v)| *k == b'C' && v == "XX000") {
                                STATS.internal.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        b'C' => {
                            STATS.ok.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {}
                    }
                }
            }
            Err(err) if answer.complete => {
                panic!("malformed answer ({err}) to {bytes:?}")
            }
            Err(_) => {}
        }
        if n % LOGIN_EVERY == LOGIN_EVERY - 1 {
            if let Err(err) = real_login(addr, "bob").await {
                panic!("the server refuses a real login after this input: {err}");
            }
            STATS.logins.fetch_add(1, Ordering::Relaxed);
        }
    });
    STATS.tick("extended", 2000);
}
