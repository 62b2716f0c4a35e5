//! PostgreSQL wire bytes, written and read back, for the protocol targets.

/// `SSLRequest` (length 8, code 80877103).
pub const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
/// `GSSENCRequest` (length 8, code 80877104).
pub const GSSENC_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30];

/// A typed message: tag, length (counting itself), body.
pub fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(tag);
    out.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// A protocol 3.0 StartupMessage with these parameters.
pub fn startup_message(parameters: &[(&str, &str)]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&196_608i32.to_be_bytes());
    for (key, value) in parameters {
        body.extend_from_slice(key.as_bytes());
        body.push(0);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut out = (body.len() as u32 + 4).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

/// Splits a buffer of backend messages; `Err` when a length does not add up (a message
/// shorter than its length word, or bytes left that are not a whole message).
pub fn backend_messages(buf: &[u8]) -> Result<Vec<(u8, &[u8])>, String> {
    let mut out = Vec::new();
    let mut rest = buf;
    while !rest.is_empty() {
        if rest.len() < 5 {
            return Err(format!("{} stray bytes at the end: {rest:?}", rest.len()));
        }
        let tag = rest[0];
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        if len < 4 {
            return Err(format!("message {:?} with length {len}", tag as char));
        }
        if rest.len() < 1 + len {
            return Err(format!(
                "message {:?} of length {len} cut at {} bytes",
                tag as char,
                rest.len() - 1
            ));
        }
        out.push((tag, &rest[5..1 + len]));
        rest = &rest[1 + len..];
    }
    Ok(out)
}

/// The fields of an ErrorResponse or NoticeResponse body.
pub fn error_fields(body: &[u8]) -> Vec<(u8, String)> {
    body.split(|b| *b == 0)
        .filter(|f| !f.is_empty())
        .map(|f| (f[0], String::from_utf8_lossy(&f[1..]).into_owned()))
        .collect()
}

/// The fields of an ErrorResponse, which must have PostgreSQL's required three: severity,
/// SQLSTATE and message (clients index them).
pub fn checked_error_fields(body: &[u8]) -> Vec<(u8, String)> {
    let fields = error_fields(body);
    for needed in [b'S', b'C', b'M'] {
        assert!(
            fields.iter().any(|(k, _)| *k == needed),
            "ErrorResponse without field {:?}: {fields:?}",
            needed as char
        );
    }
    fields
}

/// The values of the DataRow messages in `buf` (NULLs left out). Stops at the first thing
/// that is not a well-formed DataRow.
pub fn data_row_values(buf: &[u8]) -> Vec<&[u8]> {
    let mut values = Vec::new();
    let Ok(messages) = backend_messages(buf) else {
        return values;
    };
    for (tag, body) in messages {
        if tag != b'D' || body.len() < 2 {
            break;
        }
        let n = u16::from_be_bytes([body[0], body[1]]) as usize;
        let mut rest = &body[2..];
        for _ in 0..n {
            if rest.len() < 4 {
                break;
            }
            let len = i32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
            rest = &rest[4..];
            if len < 0 {
                continue;
            }
            let len = (len as usize).min(rest.len());
            values.push(&rest[..len]);
            rest = &rest[len..];
        }
    }
    values
}
