//! Power BI Desktop as its Npgsql 4.0.17 drives the wire, byte for byte: SSLRequest and TLS 1.2,
//! SCRAM-SHA-256 without channel binding (`n,,n=*`), the three-statement type-loading batch
//! pipelined with one Sync and text results, `DISCARD ALL` written in the same packet as the
//! next command, every command as Parse/Bind(one binary result format)/Describe(portal)/Execute
//! + Sync, and CancelRequest on a new TLS connection (clients.md §1.2, §2).
//!
//! No driver in between: a small frontend speaks the protocol, so the tests see exactly which
//! messages come back in which order.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::{Buf, BytesMut};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::support::{PASSWORD, Setup, TestServer, fixture};

/// The type-loading batch, verbatim from clients.md §2.3.
const TYPE_BATCH: &str = include_str!("../clients/npgsql_type_batch.sql");

// ---------------------------------------------------------------------------------------------
// A minimal frontend.

/// One backend message: its type byte and body.
#[derive(Debug, Clone)]
struct Msg {
    tag: u8,
    body: Vec<u8>,
}

/// A column of a RowDescription.
#[derive(Debug, Clone)]
struct Column {
    name: String,
    // Parsed to walk the message; the server sends 0 for both (clients.md allows it).
    #[allow(dead_code)]
    table_oid: u32,
    #[allow(dead_code)]
    attnum: i16,
    type_oid: u32,
    type_len: i16,
    typmod: i32,
    format: i16,
}

impl Msg {
    fn columns(&self) -> Vec<Column> {
        assert_eq!(self.tag, b'T', "not a RowDescription: {self:?}");
        let mut b = &self.body[..];
        let n = b.get_i16();
        (0..n)
            .map(|_| {
                let name = cstr(&mut b);
                Column {
                    name,
                    table_oid: b.get_u32(),
                    attnum: b.get_i16(),
                    type_oid: b.get_u32(),
                    type_len: b.get_i16(),
                    typmod: b.get_i32(),
                    format: b.get_i16(),
                }
            })
            .collect()
    }

    fn values(&self) -> Vec<Option<Vec<u8>>> {
        assert_eq!(self.tag, b'D', "not a DataRow: {self:?}");
        let mut b = &self.body[..];
        let n = b.get_i16();
        (0..n)
            .map(|_| {
                let len = b.get_i32();
                (len >= 0).then(|| {
                    let v = b[..len as usize].to_vec();
                    b.advance(len as usize);
                    v
                })
            })
            .collect()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(self.body.strip_suffix(&[0]).unwrap_or(&self.body)).to_string()
    }

    /// Fields of an ErrorResponse (code → value).
    fn error_fields(&self) -> HashMap<char, String> {
        let mut out = HashMap::new();
        let mut b = &self.body[..];
        while !b.is_empty() && b[0] != 0 {
            let code = b.get_u8() as char;
            out.insert(code, cstr(&mut b));
        }
        out
    }
}

fn cstr(b: &mut &[u8]) -> String {
    let end = b.iter().position(|c| *c == 0).unwrap();
    let s = String::from_utf8(b[..end].to_vec()).unwrap();
    b.advance(end + 1);
    s
}

fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn z(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// Parse(unnamed, no parameter types).
fn parse(sql: &str) -> Vec<u8> {
    let mut body = z("");
    body.extend(z(sql));
    body.extend(0i16.to_be_bytes());
    message(b'P', &body)
}

/// Bind(unnamed portal and statement, no parameters, one result format code).
fn bind(result_format: i16) -> Vec<u8> {
    let mut body = z("");
    body.extend(z(""));
    body.extend(0i16.to_be_bytes());
    body.extend(0i16.to_be_bytes());
    body.extend(1i16.to_be_bytes());
    body.extend(result_format.to_be_bytes());
    message(b'B', &body)
}

fn describe_portal() -> Vec<u8> {
    let mut body = vec![b'P'];
    body.extend(z(""));
    message(b'D', &body)
}

fn execute() -> Vec<u8> {
    let mut body = z("");
    body.extend(0i32.to_be_bytes());
    message(b'E', &body)
}

fn sync() -> Vec<u8> {
    message(b'S', &[])
}

fn query(sql: &str) -> Vec<u8> {
    message(b'Q', &z(sql))
}

/// What Npgsql writes for one statement of a command.
fn npgsql_statement(sql: &str, result_format: i16) -> Vec<u8> {
    [
        parse(sql),
        bind(result_format),
        describe_portal(),
        execute(),
    ]
    .concat()
}

/// NpgsqlCommand's split at top-level `;` (the batch has none inside literals or comments).
fn npgsql_split(text: &str) -> Vec<String> {
    text.split(';')
        .map(|s| s.trim_start().to_string())
        .filter(|s| !s.trim().is_empty())
        .collect()
}

/// One statement's result.
#[derive(Debug, Default)]
struct StatementResult {
    columns: Vec<Column>,
    rows: Vec<Vec<Option<Vec<u8>>>>,
    tag: String,
}

/// SSLRequest, then TLS 1.2 only (.NET SslStream in Npgsql 4 offers TLS 1.0–1.2, never 1.3).
async fn tls12(port: u16) -> TlsStream<TcpStream> {
    let mut socket = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut request = 8i32.to_be_bytes().to_vec();
    request.extend(80_877_103i32.to_be_bytes());
    socket.write_all(&request).await.unwrap();
    let mut answer = [0u8; 1];
    socket.read_exact(&mut answer).await.unwrap();
    assert_eq!(answer[0], b'S', "the server must accept SSLRequest");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(crate::support::any_cert::AnyCertificate(
            provider,
        )))
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let stream = connector.connect(name, socket).await.unwrap();
    assert_eq!(
        stream.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    stream
}

/// A Power BI connection: TLS 1.2, SCRAM, Npgsql's startup parameters.
struct Npgsql {
    stream: TlsStream<TcpStream>,
    buffer: BytesMut,
    parameters: BTreeMap<String, String>,
    pid: i32,
    secret: i32,
    /// Every type OID a RowDescription named, for the type-batch check.
    seen_types: BTreeSet<u32>,
}

impl Npgsql {
    async fn connect(port: u16, user: &str) -> Npgsql {
        let mut stream = tls12(port).await;
        let mut body = 196_608i32.to_be_bytes().to_vec();
        for (k, v) in [
            ("user", user),
            ("client_encoding", "UTF8"),
            ("database", "IKHOSPITAL_DW"),
            ("ssl_renegotiation_limit", "0"),
        ] {
            body.extend(z(k));
            body.extend(z(v));
        }
        body.push(0);
        let mut startup = ((body.len() + 4) as i32).to_be_bytes().to_vec();
        startup.extend(body);
        stream.write_all(&startup).await.unwrap();
        let mut conn = Npgsql {
            stream,
            buffer: BytesMut::new(),
            parameters: BTreeMap::new(),
            pid: 0,
            secret: 0,
            seen_types: BTreeSet::new(),
        };
        conn.scram(PASSWORD).await;
        loop {
            let m = conn.next().await;
            match m.tag {
                b'S' => {
                    let mut b = &m.body[..];
                    let k = cstr(&mut b);
                    let v = cstr(&mut b);
                    conn.parameters.insert(k, v);
                }
                b'K' => {
                    let mut b = &m.body[..];
                    conn.pid = b.get_i32();
                    conn.secret = b.get_i32();
                }
                b'Z' => break,
                other => panic!("unexpected message {} during startup: {m:?}", other as char),
            }
        }
        conn
    }

    /// SCRAM-SHA-256 as Npgsql 4.0 does it: no channel binding, user name `*`.
    async fn scram(&mut self, password: &str) {
        let m = self.next().await;
        assert_eq!(
            (m.tag, &m.body[..4]),
            (b'R', &10i32.to_be_bytes()[..]),
            "expected SASL: {m:?}"
        );
        assert!(String::from_utf8_lossy(&m.body).contains("SCRAM-SHA-256"));
        let nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF";
        let client_first_bare = format!("n=*,r={nonce}");
        let client_first = format!("n,,{client_first_bare}");
        let mut body = z("SCRAM-SHA-256");
        body.extend((client_first.len() as i32).to_be_bytes());
        body.extend(client_first.as_bytes());
        self.write(&message(b'p', &body)).await;
        let m = self.next().await;
        assert_eq!(
            &m.body[..4],
            &11i32.to_be_bytes()[..],
            "expected SASLContinue: {m:?}"
        );
        let server_first = String::from_utf8(m.body[4..].to_vec()).unwrap();
        let attr = |key: &str| {
            server_first
                .split(',')
                .find_map(|p| p.strip_prefix(&format!("{key}=")))
                .unwrap()
                .to_string()
        };
        let (server_nonce, salt, iterations) = (attr("r"), attr("s"), attr("i"));
        assert!(server_nonce.starts_with(nonce));
        let salt = base64::engine::general_purpose::STANDARD
            .decode(salt)
            .unwrap();
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(
            password.as_bytes(),
            &salt,
            iterations.parse().unwrap(),
            &mut salted,
        );
        let hmac = |key: &[u8], data: &[u8]| {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        };
        let client_key = hmac(&salted, b"Client Key");
        let stored_key = Sha256::digest(&client_key);
        let without_proof = format!("c=biws,r={server_nonce}");
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let signature = hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let client_final = format!(
            "{without_proof},p={}",
            base64::engine::general_purpose::STANDARD.encode(proof)
        );
        self.write(&message(b'p', client_final.as_bytes())).await;
        let m = self.next().await;
        assert_eq!(m.tag, b'R', "authentication failed: {:?}", m.error_fields());
        assert_eq!(&m.body[..4], &12i32.to_be_bytes()[..], "expected SASLFinal");
        let server_key = hmac(&salted, b"Server Key");
        let expected = base64::engine::general_purpose::STANDARD
            .encode(hmac(&server_key, auth_message.as_bytes()));
        assert_eq!(
            String::from_utf8_lossy(&m.body[4..]),
            format!("v={expected}")
        );
        let m = self.next().await;
        assert_eq!(
            (m.tag, &m.body[..]),
            (b'R', &0i32.to_be_bytes()[..]),
            "expected AuthenticationOk"
        );
    }

    async fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
        self.stream.flush().await.unwrap();
    }

    async fn next(&mut self) -> Msg {
        loop {
            if self.buffer.len() >= 5 {
                let len = i32::from_be_bytes([
                    self.buffer[1],
                    self.buffer[2],
                    self.buffer[3],
                    self.buffer[4],
                ]) as usize;
                if self.buffer.len() > len {
                    let tag = self.buffer[0];
                    self.buffer.advance(5);
                    let body = self.buffer.split_to(len - 4).to_vec();
                    if tag == b'T' {
                        let m = Msg {
                            tag,
                            body: body.clone(),
                        };
                        self.seen_types
                            .extend(m.columns().iter().map(|c| c.type_oid));
                    }
                    return Msg { tag, body };
                }
            }
            let n = tokio::time::timeout(
                Duration::from_secs(60),
                self.stream.read_buf(&mut self.buffer),
            )
            .await
            .expect("the server did not answer within 60 s")
            .unwrap();
            assert!(n > 0, "the server closed the connection");
        }
    }

    /// Reads the replies of `n` pipelined statements and the ReadyForQuery after Sync,
    /// checking their order: ParseComplete, BindComplete, RowDescription|NoData, DataRow*,
    /// CommandComplete for each.
    async fn results(&mut self, n: usize) -> Vec<StatementResult> {
        let mut out = Vec::new();
        for _ in 0..n {
            let mut result = StatementResult::default();
            let m = self.next().await;
            assert_eq!(
                m.tag,
                b'1',
                "expected ParseComplete, got {:?} {:?}",
                m.tag as char,
                m.error_fields()
            );
            let m = self.next().await;
            assert_eq!(
                m.tag,
                b'2',
                "expected BindComplete, got {:?} {:?}",
                m.tag as char,
                m.error_fields()
            );
            let m = self.next().await;
            match m.tag {
                b'T' => result.columns = m.columns(),
                b'n' => {}
                other => panic!(
                    "expected RowDescription, got {:?} {:?}",
                    other as char,
                    m.error_fields()
                ),
            }
            loop {
                let m = self.next().await;
                match m.tag {
                    b'D' => result.rows.push(m.values()),
                    b'C' => {
                        result.tag = m.text();
                        break;
                    }
                    other => panic!(
                        "expected DataRow or CommandComplete, got {:?} {:?}",
                        other as char,
                        m.error_fields()
                    ),
                }
            }
            out.push(result);
        }
        let m = self.next().await;
        assert_eq!(
            m.tag, b'Z',
            "expected ReadyForQuery after the batch, got {:?}",
            m.tag as char
        );
        assert_eq!(m.body, vec![b'I']);
        out
    }

    /// One Power BI command: `[DISCARD ALL]` pipelined in the same write, then the statement
    /// with binary results.
    async fn command(&mut self, sql: &str, discard_first: bool) -> StatementResult {
        let mut bytes = Vec::new();
        if discard_first {
            bytes.extend(query("DISCARD ALL"));
        }
        bytes.extend(npgsql_statement(sql, 1));
        bytes.extend(sync());
        self.write(&bytes).await;
        if discard_first {
            let m = self.next().await;
            assert_eq!(
                (m.tag, m.text()),
                (b'C', "DISCARD ALL".to_string()),
                "{:?}",
                m.error_fields()
            );
            let m = self.next().await;
            assert_eq!(m.tag, b'Z');
        }
        let result = self.results(1).await.remove(0);
        for column in &result.columns {
            assert_eq!(column.format, 1, "Npgsql asked binary for {}", column.name);
        }
        result
    }
}

// ---------------------------------------------------------------------------------------------
// Binary decoding (PostgreSQL's *send formats, clients.md §2.4).

fn int(bytes: &[u8]) -> i64 {
    match bytes.len() {
        2 => i64::from(i16::from_be_bytes(bytes.try_into().unwrap())),
        4 => i64::from(i32::from_be_bytes(bytes.try_into().unwrap())),
        8 => i64::from_be_bytes(bytes.try_into().unwrap()),
        n => panic!("integer of {n} bytes"),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// numeric_send → decimal text.
fn numeric(bytes: &[u8]) -> String {
    let mut b = bytes;
    let ndigits = b.get_i16();
    let weight = b.get_i16();
    let sign = b.get_u16();
    let dscale = b.get_i16();
    let digits: Vec<i16> = (0..ndigits).map(|_| b.get_i16()).collect();
    let mut int_part = String::new();
    for i in 0..=weight.max(0) {
        let d = if weight >= 0 {
            digits.get(i as usize).copied().unwrap_or(0)
        } else {
            0
        };
        if int_part.is_empty() {
            if d != 0 || i == weight.max(0) {
                int_part = d.to_string();
            }
        } else {
            int_part.push_str(&format!("{d:04}"));
        }
    }
    if weight < 0 {
        int_part = "0".to_string();
    }
    let mut frac = String::new();
    let mut idx = weight + 1;
    while (frac.len() as i16) < dscale {
        let d = if idx < 0 {
            0
        } else {
            digits.get(idx as usize).copied().unwrap_or(0)
        };
        frac.push_str(&format!("{d:04}"));
        idx += 1;
    }
    frac.truncate(dscale as usize);
    let sign = if sign == 0x4000 { "-" } else { "" };
    if dscale > 0 {
        format!("{sign}{int_part}.{frac}")
    } else {
        format!("{sign}{int_part}")
    }
}

// ---------------------------------------------------------------------------------------------

/// The navigator's statements (clients.md §1.3), CRLF line endings as the Mashup engine sends.
fn navigator(sql: &str) -> String {
    sql.trim().replace('\n', "\r\n")
}

#[tokio::test]
async fn power_bi_sequence_type_batch_navigator_import_and_direct_query() {
    let server = TestServer::start_with(Setup::tls_required()).await;
    let port = server.addr.port();
    let mut pbi = Npgsql::connect(port, "alice").await;

    // Npgsql reads these with a dictionary indexer: a missing key is an exception on open.
    let version = &pbi.parameters["server_version"];
    let numeric_part: String = version
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    assert!(
        numeric_part
            .split('.')
            .next()
            .unwrap()
            .parse::<u32>()
            .unwrap()
            >= 9,
        "{version}"
    );
    assert_eq!(pbi.parameters["integer_datetimes"], "on");
    assert_eq!(pbi.parameters["client_encoding"], "UTF8");
    assert_eq!(pbi.parameters["standard_conforming_strings"], "on");
    assert!(pbi.parameters.contains_key("TimeZone"));
    assert!(pbi.pid != 0, "BackendKeyData");

    // 1. The type-loading batch: three statements, text results, one Sync.
    let statements = npgsql_split(TYPE_BATCH);
    assert_eq!(statements.len(), 3);
    let mut bytes = Vec::new();
    for statement in &statements {
        bytes.extend(npgsql_statement(statement, 0));
    }
    bytes.extend(sync());
    pbi.write(&bytes).await;
    let results = pbi.results(3).await;
    let types = &results[0];
    let names: Vec<&str> = types.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "nspname",
            "typname",
            "oid",
            "typrelid",
            "typbasetype",
            "type",
            "elemoid",
            "ord"
        ]
    );
    assert_eq!(types.columns[0].type_oid, 19, "nspname is name");
    // PostgreSQL types `type` "char" (18); a CASE of 'a' and a "char" column comes out as
    // text here. Npgsql reads every column of this batch as text, so both work.
    assert!(matches!(types.columns[5].type_oid, 18 | 25), "type");
    let mut loaded: HashMap<u32, (String, String, u32)> = HashMap::new();
    let mut last_ord = 0;
    for row in &types.rows {
        for (idx, value) in row.iter().enumerate().take(8) {
            assert!(
                value.is_some(),
                "NULL in column {} of the type batch: Npgsql says \"Column is null\"",
                names[idx]
            );
        }
        let cell = |i: usize| text(row[i].as_ref().unwrap());
        let ord: i64 = cell(7).parse().unwrap();
        assert!(ord >= last_ord, "the batch is ordered by ord");
        last_ord = ord;
        assert_eq!(cell(0), "pg_catalog");
        loaded.insert(
            cell(2).parse().unwrap(),
            (cell(1), cell(5), cell(6).parse().unwrap()),
        );
    }
    for (oid, name) in [
        (16, "bool"),
        (17, "bytea"),
        (19, "name"),
        (20, "int8"),
        (21, "int2"),
        (23, "int4"),
        (25, "text"),
        (26, "oid"),
        (700, "float4"),
        (701, "float8"),
        (1042, "bpchar"),
        (1043, "varchar"),
        (1082, "date"),
        (1114, "timestamp"),
        (1184, "timestamptz"),
        (1700, "numeric"),
        (114, "json"),
    ] {
        assert_eq!(
            loaded.get(&oid).map(|t| t.0.as_str()),
            Some(name),
            "type {oid}"
        );
        assert_eq!(loaded[&oid].1, "b");
    }
    // Arrays come through the pg_proc.oid = pg_type.typreceive join with proname array_recv.
    assert_eq!(loaded[&1007], ("_int4".to_string(), "a".to_string(), 23));
    assert_eq!(loaded[&1009], ("_text".to_string(), "a".to_string(), 25));
    assert!(
        loaded.values().any(|t| t.1 == "r"),
        "ranges (pg_range join)"
    );
    assert!(results[1].rows.is_empty() && results[2].rows.is_empty());
    assert_eq!(
        results[1]
            .columns
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["oid", "attname", "atttypid"]
    );

    // 2. Server metadata, then the navigator, each after DISCARD ALL (a reused pooled connection).
    let r = pbi
        .command(
            "select character_set_name from INFORMATION_SCHEMA.character_sets",
            false,
        )
        .await;
    assert_eq!(r.columns[0].name, "character_set_name");
    assert_eq!(text(r.rows[0][0].as_ref().unwrap()), "UTF8");
    let r = pbi
        .command(
            "select SCHEMA_NAME from INFORMATION_SCHEMA.SCHEMATA order by SCHEMA_NAME",
            true,
        )
        .await;
    assert_eq!(r.columns[0].name, "schema_name");
    let schemas: Vec<String> = r
        .rows
        .iter()
        .map(|row| text(row[0].as_ref().unwrap()))
        .collect();
    assert_eq!(schemas, ["dbo", "information_schema", "pg_catalog", "sys"]);
    let r = pbi
        .command(
            &navigator(
                "select TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE\nfrom INFORMATION_SCHEMA.tables\nwhere TABLE_SCHEMA not in ('information_schema', 'pg_catalog')\norder by TABLE_SCHEMA, TABLE_NAME",
            ),
            true,
        )
        .await;
    assert_eq!(
        r.columns
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["table_schema", "table_name", "table_type"]
    );
    let tables: Vec<(String, String, String)> = r
        .rows
        .iter()
        .map(|row| {
            (
                text(row[0].as_ref().unwrap()),
                text(row[1].as_ref().unwrap()),
                text(row[2].as_ref().unwrap()),
            )
        })
        .collect();
    let expected: Vec<(String, String, String)> = [
        ("dbo", "dim_doctors", "BASE TABLE"),
        ("dbo", "dim_patient", "BASE TABLE"),
        ("dbo", "fact_events", "BASE TABLE"),
        ("sys", "audit_log", "VIEW"),
        ("sys", "delta_features", "VIEW"),
        ("sys", "ingest_runs", "VIEW"),
        ("sys", "lake_tables", "VIEW"),
        ("sys", "stream_sources", "VIEW"),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    assert_eq!(tables, expected);

    let r = pbi
        .command(
            &navigator(
                "select COLUMN_NAME, ORDINAL_POSITION, IS_NULLABLE, case when (data_type like '%unsigned%') then DATA_TYPE || ' unsigned' else DATA_TYPE end as DATA_TYPE\nfrom INFORMATION_SCHEMA.columns\nwhere TABLE_SCHEMA = 'dbo' and TABLE_NAME = 'dim_patient'\norder by TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION",
            ),
            true,
        )
        .await;
    assert_eq!(
        r.columns
            .iter()
            .map(|c| (c.name.as_str(), c.type_oid))
            .collect::<Vec<_>>(),
        // sql_identifier is name, cardinal_number int4, yes_or_no varchar; the CASE over
        // character_data || text is text, as in PostgreSQL.
        [
            ("column_name", 19),
            ("ordinal_position", 23),
            ("is_nullable", 1043),
            ("data_type", 25)
        ]
    );
    let columns: Vec<(String, i64, String, String)> = r
        .rows
        .iter()
        .map(|row| {
            (
                text(row[0].as_ref().unwrap()),
                int(row[1].as_ref().unwrap()),
                text(row[2].as_ref().unwrap()),
                text(row[3].as_ref().unwrap()),
            )
        })
        .collect();
    let expected: Vec<(String, i64, String, String)> = [
        ("id_patient", "NO", "integer"),
        ("name", "YES", "text"),
        ("sex", "YES", "text"),
        ("age", "YES", "integer"),
        ("address", "YES", "text"),
        ("country", "YES", "text"),
        ("number", "YES", "text"),
        ("email", "YES", "text"),
    ]
    .iter()
    .enumerate()
    .map(|(i, (n, nullable, t))| {
        (
            n.to_string(),
            i as i64 + 1,
            nullable.to_string(),
            t.to_string(),
        )
    })
    .collect();
    assert_eq!(columns, expected);

    // Keys: no constraints on Delta tables, but the statements run and name their columns.
    let r = pbi
        .command(
            &navigator(
                "select i.CONSTRAINT_SCHEMA || '_' || i.CONSTRAINT_NAME as INDEX_NAME, ii.COLUMN_NAME, ii.ORDINAL_POSITION, case when i.CONSTRAINT_TYPE = 'PRIMARY KEY' then 'Y' else 'N' end as PRIMARY_KEY\nfrom INFORMATION_SCHEMA.table_constraints i inner join INFORMATION_SCHEMA.key_column_usage ii on i.CONSTRAINT_SCHEMA = ii.CONSTRAINT_SCHEMA and i.CONSTRAINT_NAME = ii.CONSTRAINT_NAME and i.TABLE_SCHEMA = ii.TABLE_SCHEMA and i.TABLE_NAME = ii.TABLE_NAME\nwhere i.TABLE_SCHEMA = 'dbo' and i.TABLE_NAME = 'dim_patient'\nand i.CONSTRAINT_TYPE in ('PRIMARY KEY', 'UNIQUE')\norder by i.CONSTRAINT_SCHEMA || '_' || i.CONSTRAINT_NAME, ii.TABLE_SCHEMA, ii.TABLE_NAME, ii.ORDINAL_POSITION",
            ),
            true,
        )
        .await;
    assert_eq!(
        r.columns
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        [
            "index_name",
            "column_name",
            "ordinal_position",
            "primary_key"
        ],
        "unqualified, lower-case names (ii.COLUMN_NAME is column_name)"
    );
    assert!(r.rows.is_empty());
    let r = pbi
        .command(
            &navigator(
                "select\n    pkcol.COLUMN_NAME as PK_COLUMN_NAME,\n    fkcol.TABLE_SCHEMA AS FK_TABLE_SCHEMA,\n    fkcol.TABLE_NAME AS FK_TABLE_NAME,\n    fkcol.COLUMN_NAME as FK_COLUMN_NAME,\n    fkcol.ORDINAL_POSITION as ORDINAL,\n    fkcon.CONSTRAINT_SCHEMA || '_' || fkcol.TABLE_NAME || '_' || 'dim_patient' || '_' || fkcon.CONSTRAINT_NAME as FK_NAME\nfrom\n    (select distinct constraint_catalog, constraint_schema, unique_constraint_schema, constraint_name, unique_constraint_name\n        from INFORMATION_SCHEMA.REFERENTIAL_CONSTRAINTS) fkcon\n        inner join\n    INFORMATION_SCHEMA.KEY_COLUMN_USAGE fkcol\n        on fkcon.CONSTRAINT_SCHEMA = fkcol.CONSTRAINT_SCHEMA\n        and fkcon.CONSTRAINT_NAME = fkcol.CONSTRAINT_NAME\n        inner join\n    INFORMATION_SCHEMA.KEY_COLUMN_USAGE pkcol\n        on fkcon.UNIQUE_CONSTRAINT_SCHEMA = pkcol.CONSTRAINT_SCHEMA\n        and fkcon.UNIQUE_CONSTRAINT_NAME = pkcol.CONSTRAINT_NAME\nwhere pkcol.TABLE_SCHEMA = 'dbo' and pkcol.TABLE_NAME = 'dim_patient'\n        and pkcol.ORDINAL_POSITION = fkcol.ORDINAL_POSITION\norder by FK_NAME, fkcol.ORDINAL_POSITION",
            ),
            true,
        )
        .await;
    assert_eq!(
        r.columns
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        [
            "pk_column_name",
            "fk_table_schema",
            "fk_table_name",
            "fk_column_name",
            "ordinal",
            "fk_name"
        ]
    );
    // The relation-size query (server major >= 8), starting with CRLF.
    let r = pbi
        .command(
            "\r\nSELECT PG_TOTAL_RELATION_SIZE(C.OID) AS TOTAL_BYTES\r\nFROM PG_CLASS C\r\nJOIN PG_NAMESPACE N ON (N.OID = C.RELNAMESPACE)\r\nWHERE N.NSPNAME = 'dbo' AND C.RELNAME = 'dim_patient'",
            true,
        )
        .await;
    assert_eq!(
        (r.columns[0].name.as_str(), r.columns[0].type_oid),
        ("total_bytes", 20)
    );
    assert!(int(r.rows[0][0].as_ref().unwrap()) > 0);

    // 3. Import: one read of dim_patient, binary.
    let r = pbi
        .command(
            "select \"id_patient\",\r\n    \"name\",\r\n    \"sex\",\r\n    \"age\",\r\n    \"address\",\r\n    \"country\",\r\n    \"number\",\r\n    \"email\"\r\nfrom \"dbo\".\"dim_patient\" \"$Table\"",
            true,
        )
        .await;
    assert_eq!(r.rows.len(), 40);
    assert_eq!(r.columns[0].type_oid, 23);
    assert_eq!(r.columns[3].type_oid, 23);
    let seventh = r
        .rows
        .iter()
        .find(|row| int(row[0].as_ref().unwrap()) == 7)
        .unwrap();
    assert_eq!(text(seventh[1].as_ref().unwrap()), "Test Patient 7");
    assert_eq!(int(seventh[3].as_ref().unwrap()), 49);
    assert_eq!(
        text(seventh[4].as_ref().unwrap()),
        "7 Fake Street\nTestville"
    );
    assert_eq!(
        text(seventh[5].as_ref().unwrap()),
        fixture::COUNTRIES[7 % 4]
    );

    // 4. DirectQuery: a visual over fact_events joined to dim_doctors, folded as Power BI folds
    // it (nested "_"/"rows" aliases, date literals, U&'' literal, count distinct, limit 1000001).
    let r = pbi
        .command(
            "select \"_\".\"area\",\r\n    \"_\".\"a0\",\r\n    \"_\".\"a1\"\r\nfrom \r\n(\r\n    select \"rows\".\"area\" as \"area\",\r\n        count(1) as \"a0\",\r\n        count(distinct(\"rows\".\"id_patient\")) + max(case when \"rows\".\"id_patient\" is null then 1 else 0 end) as \"a1\"\r\n    from \r\n    (\r\n        select \"_\".\"id_patient\" as \"id_patient\",\r\n            \"_\".\"area\" as \"area\"\r\n        from \r\n        (\r\n            select \"_\".\"id_patient\",\r\n                \"_\".\"date_of_service\",\r\n                \"_\".\"symptoms\",\r\n                \"_\".\"area\"\r\n            from \r\n            (\r\n                select \"$Outer\".\"id_patient\",\r\n                    \"$Outer\".\"date_of_service\",\r\n                    \"$Outer\".\"symptoms\",\r\n                    \"$Inner\".\"area\"\r\n                from \"dbo\".\"fact_events\" \"$Outer\"\r\n                left outer join \"dbo\".\"dim_doctors\" \"$Inner\" on (\"$Outer\".\"id_doctor\" = \"$Inner\".\"id_doctor\")\r\n            ) \"_\"\r\n            where (\"_\".\"date_of_service\" < date '2030-01-01' and \"_\".\"date_of_service\" >= date '2000-01-01') and (\"_\".\"symptoms\" in ('Cough', U&'O''Brien\\0009x'))\r\n        ) \"_\"\r\n    ) \"rows\"\r\n    group by \"area\"\r\n) \"_\"\r\nwhere not \"_\".\"a0\" is null or not \"_\".\"a1\" is null\r\nlimit 1000001",
            true,
        )
        .await;
    assert_eq!(
        r.columns
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["area", "a0", "a1"]
    );
    let got: BTreeMap<String, (i64, i64)> = r
        .rows
        .iter()
        .map(|row| {
            (
                text(row[0].as_ref().unwrap()),
                (int(row[1].as_ref().unwrap()), int(row[2].as_ref().unwrap())),
            )
        })
        .collect();
    assert_eq!(got, expected_visits_by_area());

    // Every type a RowDescription named is one the type batch loaded.
    for oid in &pbi.seen_types {
        assert!(
            loaded.contains_key(oid),
            "type {oid} was in a RowDescription but not in the type batch"
        );
    }
    server.stop().await;
}

/// Visits (rows with symptoms 'Cough') and distinct patients per doctor area, computed from
/// the fixture's definition.
fn expected_visits_by_area() -> BTreeMap<String, (i64, i64)> {
    let areas = lakehouse::ingest::generate::rules::AREAS;
    let mut visits: BTreeMap<String, (i64, BTreeSet<i64>)> = BTreeMap::new();
    for id in 1..=200i64 {
        if id % 5 == 0 {
            continue; // symptoms NULL
        }
        let doctor = id % 30 + 1;
        let area = areas[((doctor - 1) / 3) as usize].to_string();
        let entry = visits.entry(area).or_default();
        entry.0 += 1;
        entry.1.insert(id % 40 + 1);
    }
    visits
        .into_iter()
        .map(|(k, (n, p))| (k, (n, p.len() as i64)))
        .collect()
}

#[tokio::test]
async fn power_bi_navigator_lists_exactly_the_users_tables() {
    let server = TestServer::start_with(Setup::tls_required()).await;
    let mut pbi = Npgsql::connect(server.addr.port(), "carol").await;
    let r = pbi
        .command(
            &navigator("select TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE\nfrom INFORMATION_SCHEMA.tables\nwhere TABLE_SCHEMA not in ('information_schema', 'pg_catalog')\norder by TABLE_SCHEMA, TABLE_NAME"),
            false,
        )
        .await;
    let tables: Vec<String> = r
        .rows
        .iter()
        .map(|row| {
            format!(
                "{}.{}",
                text(row[0].as_ref().unwrap()),
                text(row[1].as_ref().unwrap())
            )
        })
        .collect();
    assert_eq!(tables, ["dbo.dim_patient", "dbo.fact_events"]);
    // Row filters apply to the Import read: carol sees the Portuguese patients only.
    let r = pbi
        .command(
            "select \"id_patient\", \"country\" from \"dbo\".\"dim_patient\" \"$Table\"",
            true,
        )
        .await;
    assert_eq!(r.rows.len(), 20);
    assert!(
        r.rows
            .iter()
            .all(|row| text(row[1].as_ref().unwrap()) == "Portugal")
    );
    server.stop().await;
}

#[tokio::test]
async fn pipelined_groups_answer_in_order_and_skip_to_sync_after_an_error() {
    let server = TestServer::start_with(Setup::tls_required()).await;
    let mut pbi = Npgsql::connect(server.addr.port(), "alice").await;
    let bytes = [
        npgsql_statement("select 1 as a", 1),
        npgsql_statement("select 2 as b", 1),
        npgsql_statement("select * from no_such_table", 1),
        npgsql_statement("select 3 as c", 1),
        sync(),
    ]
    .concat();
    pbi.write(&bytes).await;
    for (name, value) in [("a", 1), ("b", 2)] {
        let tags: Vec<u8> = vec![pbi.next().await.tag, pbi.next().await.tag];
        assert_eq!(tags, b"12");
        let t = pbi.next().await;
        assert_eq!(t.columns()[0].name, name);
        let d = pbi.next().await;
        assert_eq!(int(d.values()[0].as_ref().unwrap()), value);
        assert_eq!(pbi.next().await.text(), "SELECT 1");
    }
    let e = pbi.next().await;
    assert_eq!(e.tag, b'E');
    assert_eq!(e.error_fields()[&'C'], "42P01");
    // Nothing for the fourth group: straight to ReadyForQuery.
    let z = pbi.next().await;
    assert_eq!((z.tag, z.body.clone()), (b'Z', vec![b'I']));
    // The connection goes on, and the pool reset works after an error too.
    let r = pbi.command("select 4 as d", true).await;
    assert_eq!(int(r.rows[0][0].as_ref().unwrap()), 4);
    // The pool reset Npgsql sends when the connection has prepared statements.
    pbi.write(&query("SET SESSION AUTHORIZATION DEFAULT;RESET ALL;CLOSE ALL;UNLISTEN *;SELECT pg_advisory_unlock_all();DISCARD SEQUENCES;DISCARD TEMP")).await;
    let mut tags = Vec::new();
    loop {
        let m = pbi.next().await;
        match m.tag {
            b'C' => tags.push(m.text()),
            b'Z' => break,
            b'T' | b'D' => {}
            other => panic!("unexpected {:?} {:?}", other as char, m.error_fields()),
        }
    }
    assert_eq!(
        tags,
        [
            "SET",
            "RESET",
            "CLOSE CURSOR ALL",
            "UNLISTEN",
            "SELECT 1",
            "DISCARD SEQUENCES",
            "DISCARD TEMP"
        ]
    );
    server.stop().await;
}

#[tokio::test]
async fn cancel_request_arrives_on_a_new_tls_connection() {
    let server = TestServer::start_with(Setup::tls_required()).await;
    let port = server.addr.port();
    let mut pbi = Npgsql::connect(port, "alice").await;
    let bytes = [
        npgsql_statement("select count(*) from fact_events a, fact_events b, fact_events c, fact_events d where a.id + b.id + c.id + d.id < 0", 1),
        sync(),
    ]
    .concat();
    pbi.write(&bytes).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Npgsql: a new socket, SSLRequest + TLS when encrypting, CancelRequest, wait for close.
    let mut cancel = tls12(port).await;
    let mut request = 16i32.to_be_bytes().to_vec();
    request.extend(80_877_102i32.to_be_bytes());
    request.extend(pbi.pid.to_be_bytes());
    request.extend(pbi.secret.to_be_bytes());
    cancel.write_all(&request).await.unwrap();
    cancel.flush().await.unwrap();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), cancel.read_to_end(&mut rest)).await;
    let started = std::time::Instant::now();
    let mut code = None;
    loop {
        let m = pbi.next().await;
        match m.tag {
            b'E' => code = Some(m.error_fields()[&'C'].clone()),
            b'Z' => break,
            _ => {}
        }
    }
    assert_eq!(code.as_deref(), Some("57014"), "the query was canceled");
    assert!(started.elapsed() < Duration::from_secs(30));
    server.stop().await;
}

/// A table with every Delta type, to check each binary encoding against PostgreSQL's.
fn all_types() -> fixture::Table {
    use datafusion::arrow::array::*;
    use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    let schema = Arc::new(Schema::new(vec![
        Field::new("l", DataType::Int64, false),
        Field::new("i", DataType::Int32, true),
        Field::new("s", DataType::Int16, true),
        Field::new("b", DataType::Int8, true),
        Field::new("f", DataType::Float32, true),
        Field::new("d", DataType::Float64, true),
        Field::new("dec", DataType::Decimal128(10, 2), true),
        Field::new("str", DataType::Utf8, true),
        Field::new("flag", DataType::Boolean, true),
        Field::new("day", DataType::Date32, true),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new(
            "ts_ntz",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            true,
        ),
        Field::new("bin", DataType::Binary, true),
        Field::new(
            "tags",
            DataType::List(Arc::new(Field::new("element", DataType::Utf8, true))),
            true,
        ),
    ]));
    let mut tags = ListBuilder::new(StringBuilder::new()).with_field(Field::new(
        "element",
        DataType::Utf8,
        true,
    ));
    tags.values().append_value("a");
    tags.values().append_value("b c");
    tags.append(true);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(vec![-9_000_000_000])),
        Arc::new(Int32Array::from(vec![-7])),
        Arc::new(Int16Array::from(vec![300])),
        Arc::new(Int8Array::from(vec![-5])),
        Arc::new(Float32Array::from(vec![1.5])),
        Arc::new(Float64Array::from(vec![-0.25])),
        Arc::new(
            Decimal128Array::from(vec![-123_456])
                .with_precision_and_scale(10, 2)
                .unwrap(),
        ),
        Arc::new(StringArray::from(vec!["héllo"])),
        Arc::new(BooleanArray::from(vec![true])),
        Arc::new(Date32Array::from(vec![10_958])), // 2000-01-02
        Arc::new(TimestampMicrosecondArray::from(vec![946_684_800_000_001]).with_timezone("UTC")),
        Arc::new(TimestampMicrosecondArray::from(vec![946_684_799_000_000])),
        Arc::new(BinaryArray::from(vec![&[0u8, 255][..]])),
        Arc::new(tags.finish()),
    ];
    fixture::Table {
        name: "all_types".into(),
        batches: vec![
            datafusion::arrow::record_batch::RecordBatch::try_new(schema, columns).unwrap(),
        ],
    }
}

#[tokio::test]
async fn binary_results_for_every_delta_type() {
    let mut setup = Setup::tls_required();
    setup.tables.push(all_types());
    let server = TestServer::start_with(setup).await;
    let mut pbi = Npgsql::connect(server.addr.port(), "alice").await;
    let r = pbi
        .command("select * from \"dbo\".\"all_types\" \"$Table\"", true)
        .await;
    let types: Vec<(&str, u32, i16, i32)> = r
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.type_oid, c.type_len, c.typmod))
        .collect();
    assert_eq!(
        types,
        [
            ("l", 20, 8, -1),
            ("i", 23, 4, -1),
            ("s", 21, 2, -1),
            ("b", 21, 2, -1),
            ("f", 700, 4, -1),
            ("d", 701, 8, -1),
            ("dec", 1700, -1, (10 << 16 | 2) + 4),
            ("str", 25, -1, -1),
            ("flag", 16, 1, -1),
            ("day", 1082, 4, -1),
            ("ts", 1184, 8, -1),
            ("ts_ntz", 1114, 8, -1),
            ("bin", 17, -1, -1),
            ("tags", 1009, -1, -1),
        ]
    );
    let row = &r.rows[0];
    let v = |i: usize| row[i].clone().unwrap();
    assert_eq!(v(0), (-9_000_000_000i64).to_be_bytes());
    assert_eq!(v(1), (-7i32).to_be_bytes());
    assert_eq!(v(2), 300i16.to_be_bytes());
    assert_eq!(v(3), (-5i16).to_be_bytes());
    assert_eq!(v(4), 1.5f32.to_be_bytes());
    assert_eq!(v(5), (-0.25f64).to_be_bytes());
    assert_eq!(numeric(&v(6)), "-1234.56");
    assert_eq!(v(7), "héllo".as_bytes());
    assert_eq!(v(8), [1]);
    assert_eq!(v(9), 1i32.to_be_bytes(), "days since 2000-01-01");
    assert_eq!(v(10), 1i64.to_be_bytes(), "µs since 2000-01-01 UTC");
    assert_eq!(v(11), (-1_000_000i64).to_be_bytes());
    assert_eq!(v(12), [0, 255]);
    // text[]: ndim 1, no nulls, element oid 25, 2 elements from 1, then each length + bytes.
    let mut expected = Vec::new();
    for n in [1i32, 0, 25, 2, 1, 1] {
        expected.extend(n.to_be_bytes());
    }
    expected.extend(b"a");
    expected.extend(3i32.to_be_bytes());
    expected.extend(b"b c");
    assert_eq!(v(13), expected);
    // The same types in information_schema, with PostgreSQL's spellings.
    let r = pbi
        .command("select DATA_TYPE from INFORMATION_SCHEMA.columns where TABLE_NAME = 'all_types' order by ORDINAL_POSITION", true)
        .await;
    let spellings: Vec<String> = r
        .rows
        .iter()
        .map(|row| text(row[0].as_ref().unwrap()))
        .collect();
    assert_eq!(
        spellings,
        [
            "bigint",
            "integer",
            "smallint",
            "smallint",
            "real",
            "double precision",
            "numeric",
            "text",
            "boolean",
            "date",
            "timestamp with time zone",
            "timestamp without time zone",
            "bytea",
            "ARRAY"
        ]
    );
    server.stop().await;
}
