//! Structural validation of PostgreSQL frontend (client to server) messages,
//! run before a frame is handed to `pgwire` 0.42.1.
//!
//! `pgwire`'s frontend decoders read the shared connection buffer with the
//! panicking `bytes::Buf` getters (`get_u8`, `get_u16`, `get_i32`, `split_to`)
//! and do not stop at the end of the frame, so a short or inconsistent frame
//! either panics or silently consumes the next message. These checks parse the
//! body of one frame exactly like PostgreSQL does (`pq_getmsg*` then
//! `pq_getmsgend`) and refuse every frame that is not consumed exactly, so a
//! frame that passes is decoded by `pgwire` without a panic and without
//! touching the bytes after it.
//!
//! Use, on a buffer holding `tag`, a big-endian `u32` length `len` and the body:
//!
//! 1. as soon as the 5-byte header is buffered: [`check_frame_header`];
//! 2. once the whole frame is buffered: [`check_frontend_frame`] on
//!    `&buf[5..1 + len]`, then `PgWireFrontendMessage::decode`;
//! 3. for a `PasswordMessageFamily::Raw(body)`, before the conversion:
//!    [`check_sasl_initial_response`], [`check_sasl_response`] or
//!    [`check_password`] according to the authentication stage.
//!
//! Errors are PostgreSQL's own messages (SQLSTATE 08P01, protocol violation).

use std::str;

/// Largest length (including the length word) pgwire accepts for Query,
/// Parse, Bind and CopyData (`LARGE_PACKET_SIZE_LIMIT`).
pub const LARGE_MESSAGE_LIMIT: u32 = 0x3fff_fffe;
/// Largest length (including the length word) pgwire accepts for the other
/// frontend messages (`SMALL_PACKET_SIZE_LIMIT`).
pub const SMALL_MESSAGE_LIMIT: u32 = 10_000;

const NO_DATA: &str = "no data left in message";
const INSUFFICIENT: &str = "insufficient data left in message";
const INVALID_STRING: &str = "invalid string in message";
const INVALID_FORMAT: &str = "invalid message format";
const INVALID_LENGTH: &str = "invalid message length";

/// Checks a frame header: the message type and the length word (which counts
/// itself but not the type byte). Call it before waiting for the body.
///
/// A length below 4 makes pgwire read the bytes after the header as the body
/// and makes `PasswordMessageFamily`/`CopyData` compute `len - 4` (overflow
/// panic in debug builds, `split_to` out of bounds in release builds).
///
/// # Errors
///
/// `invalid frontend message type N` for a type pgwire does not decode after
/// startup, `invalid message length` for a length below 4 or above pgwire's
/// limit for that type.
pub fn check_frame_header(tag: u8, len: u32) -> Result<(), String> {
    let limit = match tag {
        b'Q' | b'P' | b'B' | b'd' => LARGE_MESSAGE_LIMIT,
        b'p' | b'C' | b'D' | b'E' | b'H' | b'S' | b'X' | b'c' | b'f' => SMALL_MESSAGE_LIMIT,
        other => return Err(format!("invalid frontend message type {other}")),
    };
    if len < 4 || len > limit {
        return Err(INVALID_LENGTH.to_string());
    }
    Ok(())
}

/// Checks the body of one frontend message (the bytes after the type byte
/// and the 4-byte length) as pgwire decodes it once startup is over.
///
/// For `'p'` (password, SASL, GSS responses) only the frame is checked here:
/// pgwire keeps the body raw until one of the conversions, see
/// [`check_sasl_initial_response`], [`check_sasl_response`], [`check_password`].
///
/// # Errors
///
/// PostgreSQL's message for the first structural problem: missing NUL
/// (`invalid string in message`), short field (`insufficient data left in
/// message`, `no data left in message`), bytes after the last field
/// (`invalid message format`), bad UTF-8, bad subtype or format code, or a
/// Bind format count that is neither 0, 1 nor the parameter count.
pub fn check_frontend_frame(tag: u8, body: &[u8]) -> Result<(), String> {
    let len = u32::try_from(body.len())
        .ok()
        .and_then(|n| n.checked_add(4))
        .ok_or_else(|| INVALID_LENGTH.to_string())?;
    check_frame_header(tag, len)?;
    let mut r = Reader::new(body);
    match tag {
        // Query: query string. CopyFail: error message.
        b'Q' | b'f' => {
            r.text()?;
        }
        // Parse: statement name, query string, Int16 count, count x Int32 oid.
        b'P' => {
            r.text()?;
            r.text()?;
            let count = r.u16()?;
            for _ in 0..count {
                r.array::<4>()?;
            }
        }
        b'B' => check_bind(&mut r)?,
        // Describe / Close: Byte1 'S' or 'P', name.
        b'D' | b'C' => {
            let kind = r.byte()?;
            if kind != b'S' && kind != b'P' {
                let what = if tag == b'D' { "DESCRIBE" } else { "CLOSE" };
                return Err(format!("invalid {what} message subtype {kind}"));
            }
            r.text()?;
        }
        // Execute: portal name, Int32 row limit.
        b'E' => {
            r.text()?;
            r.array::<4>()?;
        }
        // Sync, Flush, Terminate, CopyDone: empty body.
        b'S' | b'H' | b'X' | b'c' => {}
        // CopyData, and the password family before its conversion: raw bytes.
        b'd' | b'p' => r.skip_rest(),
        other => return Err(format!("invalid frontend message type {other}")),
    }
    r.end()
}

/// Checks a `'p'` body before `PasswordMessageFamily::into_sasl_initial_response`:
/// mechanism name, Int32 length (-1 for none), that many bytes.
///
/// pgwire panics on fewer than 4 bytes after the name and on a length that is
/// below -1 or larger than what follows.
///
/// # Errors
///
/// `invalid string in message`, `insufficient data left in message` or
/// `invalid message format` (bytes after the data).
pub fn check_sasl_initial_response(body: &[u8]) -> Result<(), String> {
    let mut r = Reader::new(body);
    r.text()?;
    let len = r.i32()?;
    if len != -1 {
        let n = usize::try_from(len).map_err(|_| INSUFFICIENT.to_string())?;
        r.take(n)?;
    }
    r.end()
}

/// Checks a `'p'` body before `PasswordMessageFamily::into_sasl_response`.
/// The whole body is the SASL data, so every body is accepted (pgwire cannot
/// panic here once [`check_frame_header`] has accepted the length).
///
/// # Errors
///
/// None; kept for symmetry with the other stages.
pub fn check_sasl_response(body: &[u8]) -> Result<(), String> {
    let _ = body;
    Ok(())
}

/// Checks a `'p'` body before `PasswordMessageFamily::into_password`: exactly
/// one string, its NUL being the last byte. pgwire does not panic here, but
/// silently turns a missing NUL into an empty password and ignores the rest.
///
/// # Errors
///
/// `invalid password packet size` unless the body is one NUL-terminated string.
pub fn check_password(body: &[u8]) -> Result<(), String> {
    match body.iter().position(|&b| b == 0) {
        Some(nul) if nul + 1 == body.len() => Ok(()),
        _ => Err("invalid password packet size".to_string()),
    }
}

/// Bind: portal, statement, Int16 format count + codes, Int16 parameter count
/// + (Int32 length, bytes) per parameter, Int16 result format count + codes.
fn check_bind(r: &mut Reader<'_>) -> Result<(), String> {
    r.text()?;
    r.text()?;
    let formats = r.u16()?;
    for _ in 0..formats {
        format_code(r.i16()?)?;
    }
    let params = r.u16()?;
    if formats > 1 && formats != params {
        return Err(format!(
            "bind message has {formats} parameter formats but {params} parameters"
        ));
    }
    for _ in 0..params {
        let len = r.i32()?;
        if len == -1 {
            continue;
        }
        let n = usize::try_from(len).map_err(|_| INSUFFICIENT.to_string())?;
        r.take(n)?;
    }
    let results = r.u16()?;
    for _ in 0..results {
        format_code(r.i16()?)?;
    }
    Ok(())
}

fn format_code(code: i16) -> Result<(), String> {
    if code == 0 || code == 1 {
        Ok(())
    } else {
        Err(format!("unsupported format code: {code}"))
    }
}

/// A cursor over one message body; every read is bounds-checked.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(body: &'a [u8]) -> Self {
        Reader { rest: body }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let (head, tail) = self
            .rest
            .split_at_checked(n)
            .ok_or_else(|| INSUFFICIENT.to_string())?;
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let bytes = self.take(N)?;
        <[u8; N]>::try_from(bytes).map_err(|_| INSUFFICIENT.to_string())
    }

    fn byte(&mut self) -> Result<u8, String> {
        let (&first, tail) = self.rest.split_first().ok_or_else(|| NO_DATA.to_string())?;
        self.rest = tail;
        Ok(first)
    }

    fn u16(&mut self) -> Result<u16, String> {
        self.array::<2>().map(u16::from_be_bytes)
    }

    fn i16(&mut self) -> Result<i16, String> {
        self.array::<2>().map(i16::from_be_bytes)
    }

    fn i32(&mut self) -> Result<i32, String> {
        self.array::<4>().map(i32::from_be_bytes)
    }

    /// A NUL-terminated string that must be valid UTF-8 (the only client
    /// encoding we accept); returns it without the NUL.
    fn text(&mut self) -> Result<&'a str, String> {
        let nul = self
            .rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| INVALID_STRING.to_string())?;
        let (raw, tail) = self
            .rest
            .split_at_checked(nul)
            .ok_or_else(|| INVALID_STRING.to_string())?;
        self.rest = tail.get(1..).unwrap_or_default();
        str::from_utf8(raw).map_err(|err| {
            let start = err.valid_up_to();
            let len = err.error_len().unwrap_or(raw.len() - start);
            let bad = raw.get(start..start + len).unwrap_or_default();
            let hex: Vec<String> = bad.iter().map(|b| format!("0x{b:02x}")).collect();
            format!(
                "invalid byte sequence for encoding \"UTF8\": {}",
                hex.join(" ")
            )
        })
    }

    fn skip_rest(&mut self) {
        self.rest = &[];
    }

    fn end(&self) -> Result<(), String> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(INVALID_FORMAT.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    //! Every crafted frame goes through the checkers above and through
    //! pgwire 0.42.1 (`PgWireFrontendMessage::decode` with the context the
    //! server uses, then the password-family conversions) under
    //! `catch_unwind`.

    use super::*;
    use bytes::{BufMut, BytesMut};
    use pgwire::messages::{DecodeContext, PgWireFrontendMessage, ProtocolVersion};
    use std::panic::{self, AssertUnwindSafe};
    use std::sync::Once;

    /// What the bytes are fed to.
    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Stage {
        /// `PgWireFrontendMessage::decode` only.
        Frame,
        /// decode, then `into_sasl_initial_response`.
        SaslInitial,
        /// decode, then `into_sasl_response`.
        SaslResponse,
        /// decode, then `into_password`.
        Password,
    }

    #[derive(Debug)]
    #[allow(dead_code)] // fields are read through Debug
    enum Outcome {
        Panic(String),
        Err(String),
        Incomplete,
        /// Decoded; `left` is what stayed in the buffer.
        Ok {
            left: Vec<u8>,
        },
    }

    struct Case {
        name: &'static str,
        stage: Stage,
        tag: u8,
        /// Length word to send instead of `body.len() + 4`.
        len: Option<i32>,
        body: Vec<u8>,
        /// Measured behaviour of pgwire 0.42.1 (debug build) on this frame alone.
        pgwire_panics: bool,
        /// Whether a well-behaved client may send this.
        valid: bool,
    }

    /// A second message after the frame, to detect over- and under-reads.
    const SENTINEL: &[u8] = b"S\0\0\0\x04";

    fn quiet_pgwire_panics() {
        static ONCE: Once = Once::new();
        ONCE.call_once(|| {
            let previous = panic::take_hook();
            panic::set_hook(Box::new(move |info| {
                let file = info.location().map(|l| l.file()).unwrap_or_default();
                if !(file.contains("pgwire") || file.contains("bytes-")) {
                    previous(info);
                }
            }));
        });
    }

    fn ctx() -> DecodeContext {
        let mut ctx = DecodeContext::new(ProtocolVersion::PROTOCOL3_0);
        ctx.awaiting_frontend_ssl = false;
        ctx.awaiting_frontend_startup = false;
        ctx
    }

    fn frame(tag: u8, len: Option<i32>, body: &[u8]) -> Vec<u8> {
        let len = len.unwrap_or(body.len() as i32 + 4);
        let mut out = vec![tag];
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    fn message(payload: Box<dyn std::any::Any + Send>) -> String {
        if let Some(s) = payload.downcast_ref::<&str>() {
            (*s).to_string()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "<non-string panic>".to_string()
        }
    }

    /// Runs pgwire on `bytes` (one frame, maybe followed by more bytes).
    fn pgwire(stage: Stage, bytes: &[u8]) -> Outcome {
        quiet_pgwire_panics();
        let bytes = bytes.to_vec();
        let run = panic::catch_unwind(AssertUnwindSafe(move || {
            let mut buf = BytesMut::from(&bytes[..]);
            let decoded = PgWireFrontendMessage::decode(&mut buf, &ctx());
            let left = buf.to_vec();
            let message = match decoded {
                Err(err) => return Outcome::Err(err.to_string()),
                Ok(None) => return Outcome::Incomplete,
                Ok(Some(message)) => message,
            };
            let converted = match (stage, message) {
                (Stage::Frame, _) => Ok(()),
                (Stage::SaslInitial, PgWireFrontendMessage::PasswordMessageFamily(p)) => {
                    p.into_sasl_initial_response().map(drop)
                }
                (Stage::SaslResponse, PgWireFrontendMessage::PasswordMessageFamily(p)) => {
                    p.into_sasl_response().map(drop)
                }
                (Stage::Password, PgWireFrontendMessage::PasswordMessageFamily(p)) => {
                    p.into_password().map(drop)
                }
                (_, other) => return Outcome::Err(format!("not a password message: {other:?}")),
            };
            match converted {
                Ok(()) => Outcome::Ok { left },
                Err(err) => Outcome::Err(err.to_string()),
            }
        }));
        run.unwrap_or_else(|payload| Outcome::Panic(message(payload)))
    }

    /// Runs our checkers the way the server is meant to.
    fn checker(stage: Stage, tag: u8, len: Option<i32>, body: &[u8]) -> Result<(), String> {
        if let Some(len) = len {
            // The server reads the length word as u32.
            check_frame_header(tag, len as u32)?;
        }
        check_frontend_frame(tag, body)?;
        match stage {
            Stage::Frame => Ok(()),
            Stage::SaslInitial => check_sasl_initial_response(body),
            Stage::SaslResponse => check_sasl_response(body),
            Stage::Password => check_password(body),
        }
    }

    fn cstr(s: &str) -> Vec<u8> {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        v
    }

    struct B(BytesMut);
    impl B {
        fn new() -> Self {
            B(BytesMut::new())
        }
        fn s(mut self, s: &str) -> Self {
            self.0.put_slice(&cstr(s));
            self
        }
        fn raw(mut self, b: &[u8]) -> Self {
            self.0.put_slice(b);
            self
        }
        fn u8(mut self, v: u8) -> Self {
            self.0.put_u8(v);
            self
        }
        fn i16(mut self, v: i16) -> Self {
            self.0.put_i16(v);
            self
        }
        fn u16(mut self, v: u16) -> Self {
            self.0.put_u16(v);
            self
        }
        fn i32(mut self, v: i32) -> Self {
            self.0.put_i32(v);
            self
        }
        fn v(self) -> Vec<u8> {
            self.0.to_vec()
        }
    }

    fn case(
        name: &'static str,
        stage: Stage,
        tag: u8,
        body: Vec<u8>,
        pgwire_panics: bool,
        valid: bool,
    ) -> Case {
        Case {
            name,
            stage,
            tag,
            len: None,
            body,
            pgwire_panics,
            valid,
        }
    }

    fn ok(name: &'static str, tag: u8, body: Vec<u8>) -> Case {
        case(name, Stage::Frame, tag, body, false, true)
    }
    fn boom(name: &'static str, tag: u8, body: Vec<u8>) -> Case {
        case(name, Stage::Frame, tag, body, true, false)
    }
    fn bad(name: &'static str, tag: u8, body: Vec<u8>) -> Case {
        case(name, Stage::Frame, tag, body, false, false)
    }
    fn short_len(name: &'static str, tag: u8, len: i32, pgwire_panics: bool) -> Case {
        Case {
            name,
            stage: Stage::Frame,
            tag,
            len: Some(len),
            body: Vec::new(),
            pgwire_panics,
            valid: false,
        }
    }

    fn cases() -> Vec<Case> {
        use Stage::*;
        let scram_first = b"n,,n=,r=rOprNGfwEbeRWgbNEkqO";
        let scram_final = b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        vec![
            // ---- valid messages, as libpq / JDBC / Npgsql / psycopg / asyncpg send them
            ok("Query", b'Q', cstr("SELECT 1")),
            ok("Query empty", b'Q', cstr("")),
            ok("Query utf8", b'Q', cstr("SELECT 'héllo ✓'")),
            ok(
                "Parse unnamed 1 oid",
                b'P',
                B::new().s("").s("SELECT $1").u16(1).i32(23).v(),
            ),
            ok(
                "Parse named 0 oids",
                b'P',
                B::new().s("s1").s("SELECT 1").u16(0).v(),
            ),
            ok(
                "Parse unspecified oids",
                b'P',
                B::new().s("").s("SELECT $1,$2").u16(2).i32(0).i32(0).v(),
            ),
            ok(
                "Parse big oid",
                b'P',
                B::new().s("").s("SELECT $1").u16(1).i32(-1).v(),
            ),
            ok(
                "Bind empty",
                b'B',
                B::new().s("").s("").u16(0).u16(0).u16(0).v(),
            ),
            ok(
                "Bind 1 format for 2 params + NULL",
                b'B',
                B::new()
                    .s("")
                    .s("s1")
                    .u16(1)
                    .i16(1)
                    .u16(2)
                    .i32(4)
                    .i32(42)
                    .i32(-1)
                    .u16(1)
                    .i16(1)
                    .v(),
            ),
            ok(
                "Bind per-param formats",
                b'B',
                B::new()
                    .s("p1")
                    .s("s1")
                    .u16(2)
                    .i16(0)
                    .i16(1)
                    .u16(2)
                    .i32(2)
                    .raw(b"42")
                    .i32(0)
                    .u16(2)
                    .i16(0)
                    .i16(1)
                    .v(),
            ),
            ok(
                "Bind zero-length value",
                b'B',
                B::new().s("").s("").u16(0).u16(1).i32(0).u16(0).v(),
            ),
            ok("Describe S", b'D', B::new().u8(b'S').s("s1").v()),
            ok("Describe P unnamed", b'D', B::new().u8(b'P').s("").v()),
            ok("Close S", b'C', B::new().u8(b'S').s("s1").v()),
            ok("Close P", b'C', B::new().u8(b'P').s("").v()),
            ok("Execute", b'E', B::new().s("").i32(0).v()),
            ok("Execute named limit", b'E', B::new().s("p1").i32(100).v()),
            ok("Sync", b'S', vec![]),
            ok("Flush", b'H', vec![]),
            ok("Terminate", b'X', vec![]),
            ok("CopyDone", b'c', vec![]),
            ok("CopyData", b'd', b"1\tfoo\n".to_vec()),
            ok("CopyData empty", b'd', vec![]),
            ok("CopyFail", b'f', cstr("aborted by user")),
            ok("Password frame", b'p', cstr("secret")),
            ok("Password frame empty", b'p', vec![]),
            case(
                "SASLInitialResponse",
                SaslInitial,
                b'p',
                B::new()
                    .s("SCRAM-SHA-256")
                    .i32(scram_first.len() as i32)
                    .raw(scram_first)
                    .v(),
                false,
                true,
            ),
            case(
                "SASLInitialResponse no data",
                SaslInitial,
                b'p',
                B::new().s("SCRAM-SHA-256").i32(-1).v(),
                false,
                true,
            ),
            case(
                "SASLResponse",
                SaslResponse,
                b'p',
                scram_final.to_vec(),
                false,
                true,
            ),
            case("Password", Password, b'p', cstr("secret"), false, true),
            case(
                "Password md5",
                Password,
                b'p',
                cstr("md5d41d8cd98f00b204e9800998ecf8427e"),
                false,
                true,
            ),
            // ---- Parse
            boom("Parse empty body", b'P', vec![]),
            boom(
                "Parse no type count",
                b'P',
                B::new().s("").s("SELECT 1").v(),
            ),
            boom(
                "Parse half type count",
                b'P',
                B::new().s("").s("SELECT 1").u8(0).v(),
            ),
            boom(
                "Parse count 1 no oid",
                b'P',
                B::new().s("").s("SELECT $1").u16(1).v(),
            ),
            boom(
                "Parse count 3 one oid",
                b'P',
                B::new().s("").s("SELECT $1").u16(3).i32(23).v(),
            ),
            boom(
                "Parse count 65535 no oids",
                b'P',
                B::new().s("").s("").u16(65535).v(),
            ),
            boom("Parse name no NUL", b'P', b"SELECT".to_vec()),
            bad(
                "Parse count 1 two oids",
                b'P',
                B::new().s("").s("SELECT $1").u16(1).i32(23).i32(23).v(),
            ),
            boom(
                "Parse query no NUL",
                b'P',
                B::new().s("").raw(b"SELECT 1").v(),
            ),
            bad(
                "Parse invalid utf8",
                b'P',
                B::new().s("").raw(b"SELECT '\xff'\0").u16(0).v(),
            ),
            // ---- Bind
            boom("Bind empty body", b'B', vec![]),
            boom("Bind names only", b'B', B::new().s("").s("").v()),
            boom(
                "Bind 3 formats 2 present",
                b'B',
                B::new().s("").s("").u16(3).i16(0).i16(0).v(),
            ),
            boom("Bind no param count", b'B', B::new().s("").s("").u16(0).v()),
            boom(
                "Bind 2 params 1 present",
                b'B',
                B::new().s("").s("").u16(0).u16(2).i32(-1).v(),
            ),
            boom(
                "Bind half param length",
                b'B',
                B::new().s("").s("").u16(0).u16(1).i16(0).v(),
            ),
            boom(
                "Bind value length 100, 4 bytes",
                b'B',
                B::new().s("").s("").u16(0).u16(1).i32(100).i32(1).v(),
            ),
            boom(
                "Bind value length i32::MAX",
                b'B',
                B::new().s("").s("").u16(0).u16(1).i32(i32::MAX).v(),
            ),
            boom(
                "Bind no result count",
                b'B',
                B::new().s("").s("").u16(0).u16(1).i32(-1).v(),
            ),
            boom(
                "Bind 65535 params no data",
                b'B',
                B::new().s("").s("").u16(0).u16(65535).v(),
            ),
            boom(
                "Bind 65535 formats no data",
                b'B',
                B::new().s("").s("").u16(65535).v(),
            ),
            bad(
                "Bind value length -5",
                b'B',
                B::new().s("").s("").u16(0).u16(1).i32(-5).u16(0).v(),
            ),
            bad(
                "Bind 3 formats 2 params",
                b'B',
                B::new()
                    .s("")
                    .s("")
                    .u16(3)
                    .i16(0)
                    .i16(0)
                    .i16(0)
                    .u16(2)
                    .i32(-1)
                    .i32(-1)
                    .u16(0)
                    .v(),
            ),
            bad(
                "Bind 2 formats 0 params",
                b'B',
                B::new().s("").s("").u16(2).i16(0).i16(0).u16(0).u16(0).v(),
            ),
            bad(
                "Bind format code 7",
                b'B',
                B::new().s("").s("").u16(1).i16(7).u16(0).u16(0).v(),
            ),
            bad(
                "Bind result format -1",
                b'B',
                B::new().s("").s("").u16(0).u16(0).u16(1).i16(-1).v(),
            ),
            bad(
                "Bind 5 result formats 1 present",
                b'B',
                B::new().s("").s("").u16(0).u16(0).u16(5).i16(0).v(),
            ),
            bad(
                "Bind trailing bytes",
                b'B',
                B::new()
                    .s("")
                    .s("")
                    .u16(0)
                    .u16(0)
                    .u16(0)
                    .raw(b"Q\0\0\0\x05\0")
                    .v(),
            ),
            // ---- Describe / Close / Execute
            boom("Describe empty", b'D', vec![]),
            bad("Describe bad subtype", b'D', B::new().u8(b'X').s("").v()),
            bad("Describe no name", b'D', vec![b'S']),
            boom("Close empty", b'C', vec![]),
            bad("Close bad subtype", b'C', B::new().u8(0).s("").v()),
            boom("Execute empty", b'E', vec![]),
            boom("Execute no row limit", b'E', cstr("")),
            boom("Execute 2-byte row limit", b'E', B::new().s("p").u16(0).v()),
            boom("Execute name no NUL", b'E', b"abc".to_vec()),
            bad("Execute trailing", b'E', B::new().s("").i32(0).u8(1).v()),
            // ---- Query / CopyFail / empty messages (no panics, but the rest of
            // the frame is left in the buffer and parsed as more messages)
            bad("Query no NUL", b'Q', b"SELECT 1".to_vec()),
            bad(
                "Query trailing after NUL",
                b'Q',
                b"SELECT 1\0X\0\0\0\x04".to_vec(),
            ),
            bad("Query invalid utf8", b'Q', b"SELECT '\xc3\x28'\0".to_vec()),
            bad(
                "Sync with smuggled Query",
                b'S',
                frame(b'Q', None, &cstr("DROP TABLE t")),
            ),
            bad("Flush with body", b'H', vec![0]),
            bad("Terminate with body", b'X', vec![0]),
            bad("CopyDone with body", b'c', vec![0]),
            bad("CopyFail no NUL", b'f', b"oops".to_vec()),
            bad(
                "FunctionCall",
                b'F',
                B::new().i32(0).u16(0).u16(0).u16(0).v(),
            ),
            bad("unknown type", b'z', vec![]),
            // ---- length word below 4 (header check)
            short_len("Password len 0", b'p', 0, true),
            short_len("Password len 3", b'p', 3, true),
            short_len("CopyData len 0", b'd', 0, true),
            short_len("CopyData len 2", b'd', 2, true),
            short_len("Parse len 0", b'P', 0, true),
            short_len("Bind len 0", b'B', 0, true),
            short_len("Describe len 0", b'D', 0, true),
            short_len("Close len 0", b'C', 0, true),
            short_len("Execute len 0", b'E', 0, true),
            short_len("Query len 0", b'Q', 0, false),
            short_len("Sync len 0", b'S', 0, false),
            short_len("Sync len -1", b'S', -1, false),
            short_len("Sync len 10001", b'S', 10_001, false),
            // ---- password family conversions
            case(
                "SASLInitialResponse name only",
                SaslInitial,
                b'p',
                cstr("SCRAM-SHA-256"),
                true,
                false,
            ),
            case(
                "SASLInitialResponse empty",
                SaslInitial,
                b'p',
                vec![],
                true,
                false,
            ),
            case(
                "SASLInitialResponse 2-byte length",
                SaslInitial,
                b'p',
                B::new().s("SCRAM-SHA-256").u16(5).v(),
                true,
                false,
            ),
            case(
                "SASLInitialResponse length 100, 5 bytes",
                SaslInitial,
                b'p',
                B::new().s("SCRAM-SHA-256").i32(100).raw(b"n,,n=").v(),
                true,
                false,
            ),
            case(
                "SASLInitialResponse length -2",
                SaslInitial,
                b'p',
                B::new().s("SCRAM-SHA-256").i32(-2).v(),
                true,
                false,
            ),
            case(
                "SASLInitialResponse name no NUL",
                SaslInitial,
                b'p',
                b"SCRAM".to_vec(),
                true,
                false,
            ),
            case(
                "SASLInitialResponse trailing",
                SaslInitial,
                b'p',
                B::new().s("SCRAM-SHA-256").i32(1).raw(b"nX").v(),
                false,
                false,
            ),
            case(
                "SASLResponse empty",
                SaslResponse,
                b'p',
                vec![],
                false,
                true,
            ),
            case("Password empty", Password, b'p', vec![], false, false),
            case(
                "Password no NUL",
                Password,
                b'p',
                b"secret".to_vec(),
                false,
                false,
            ),
            case(
                "Password trailing",
                Password,
                b'p',
                b"a\0b\0".to_vec(),
                false,
                false,
            ),
        ]
    }

    #[test]
    fn crafted_frames() {
        let mut failures = Vec::new();
        for c in cases() {
            let bytes = frame(c.tag, c.len, &c.body);
            let alone = pgwire(c.stage, &bytes);
            let verdict = checker(c.stage, c.tag, c.len, &c.body);
            println!(
                "{:<40} pgwire: {:<70} checker: {:?}",
                c.name,
                format!("{alone:?}"),
                verdict
            );
            let panicked = matches!(alone, Outcome::Panic(_));
            if panicked != c.pgwire_panics {
                failures.push(format!(
                    "{}: expected pgwire panic = {}, got {alone:?}",
                    c.name, c.pgwire_panics
                ));
            }
            if panicked && verdict.is_ok() {
                failures.push(format!("{}: pgwire panics but checker accepts", c.name));
            }
            if c.valid != verdict.is_ok() {
                failures.push(format!(
                    "{}: valid = {} but checker says {verdict:?}",
                    c.name, c.valid
                ));
            }
            if c.valid && !matches!(alone, Outcome::Ok { ref left } if left.is_empty()) {
                failures.push(format!(
                    "{}: valid message not decoded cleanly: {alone:?}",
                    c.name
                ));
            }
            // A frame we accept must be decoded without touching the next message.
            if verdict.is_ok() {
                let mut followed = bytes.clone();
                followed.extend_from_slice(SENTINEL);
                match pgwire(c.stage, &followed) {
                    Outcome::Ok { left } if left == SENTINEL => {}
                    other => {
                        failures.push(format!("{}: accepted frame decodes as {other:?}", c.name))
                    }
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    /// Deterministic mutation fuzzing around the valid messages: whatever pgwire
    /// panics on must be refused, and whatever is accepted must decode exactly.
    #[test]
    fn mutated_frames() {
        let seeds: Vec<Case> = cases().into_iter().filter(|c| c.len.is_none()).collect();
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let interesting: [&[u8]; 8] = [
            &[0],
            &[0xff],
            &[0, 0],
            &[0xff, 0xff],
            &[0, 1],
            &[0xff, 0xff, 0xff, 0xfe],
            &[0x7f, 0xff, 0xff, 0xff],
            &[0, 0, 0, 0],
        ];
        let (mut panics, mut accepted) = (0usize, 0usize);
        let mut failures = Vec::new();
        for _ in 0..40_000 {
            let seed = &seeds[(next() % seeds.len() as u64) as usize];
            let mut body = seed.body.clone();
            for _ in 0..1 + next() % 3 {
                let pos = if body.is_empty() {
                    0
                } else {
                    (next() % (body.len() as u64 + 1)) as usize
                };
                match next() % 4 {
                    0 => body.truncate(pos),
                    1 if pos < body.len() => body[pos] = next() as u8,
                    2 => {
                        let ins = interesting[(next() % interesting.len() as u64) as usize];
                        let end = (pos + ins.len()).min(body.len());
                        body.splice(pos..end, ins.iter().copied());
                    }
                    _ => {
                        let ins = interesting[(next() % interesting.len() as u64) as usize];
                        body.splice(pos..pos, ins.iter().copied());
                    }
                }
            }
            let bytes = frame(seed.tag, None, &body);
            let outcome = pgwire(seed.stage, &bytes);
            let verdict = checker(seed.stage, seed.tag, None, &body);
            if let Outcome::Panic(msg) = &outcome {
                panics += 1;
                if verdict.is_ok() {
                    failures.push(format!(
                        "{:?} {:?}: panics ({msg}) but accepted",
                        seed.stage, bytes
                    ));
                }
            }
            if verdict.is_ok() {
                accepted += 1;
                let mut followed = bytes.clone();
                followed.extend_from_slice(SENTINEL);
                match pgwire(seed.stage, &followed) {
                    Outcome::Ok { left } if left == SENTINEL => {}
                    other => failures.push(format!(
                        "{:?} {:?}: accepted but {other:?}",
                        seed.stage, bytes
                    )),
                }
            }
        }
        println!("mutations: {panics} pgwire panics, {accepted} accepted by the checker");
        assert!(panics > 0);
        failures.truncate(20);
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn messages_are_postgres_style() {
        let bind = B::new()
            .s("")
            .s("")
            .u16(3)
            .i16(0)
            .i16(0)
            .i16(0)
            .u16(2)
            .i32(-1)
            .i32(-1)
            .u16(0)
            .v();
        assert_eq!(
            check_frontend_frame(b'B', &bind),
            Err("bind message has 3 parameter formats but 2 parameters".to_string())
        );
        assert_eq!(
            check_frontend_frame(b'S', b"x"),
            Err("invalid message format".to_string())
        );
        assert_eq!(
            check_frontend_frame(b'Q', b"x"),
            Err("invalid string in message".to_string())
        );
        assert_eq!(
            check_frontend_frame(b'E', b"\0"),
            Err("insufficient data left in message".to_string())
        );
        assert_eq!(
            check_frontend_frame(b'D', b""),
            Err("no data left in message".to_string())
        );
        assert_eq!(
            check_frontend_frame(b'D', b"Q\0"),
            Err("invalid DESCRIBE message subtype 81".to_string())
        );
        assert_eq!(
            check_frontend_frame(b'F', b""),
            Err("invalid frontend message type 70".to_string())
        );
        assert_eq!(
            check_frontend_frame(b'Q', b"\xc3\x28\0"),
            Err("invalid byte sequence for encoding \"UTF8\": 0xc3".to_string())
        );
        assert_eq!(
            check_frame_header(b'p', 3),
            Err("invalid message length".to_string())
        );
        assert_eq!(check_frame_header(b'p', 4), Ok(()));
        assert_eq!(
            check_sasl_initial_response(b"SCRAM-SHA-256\0"),
            Err("insufficient data left in message".to_string())
        );
        assert_eq!(
            check_password(b"pw"),
            Err("invalid password packet size".to_string())
        );
    }
}
