//! Hostile and extreme input: statements far wider and deeper than the limits, values larger
//! than memory, EXPLAIN as governed users, connections that never authenticate, password
//! guessing, malformed protocol messages. Nothing crashes, freezes, leaks or lies, and every
//! refusal has its SQLSTATE.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{ChildServer, PASSWORD, Setup, TestServer, connect_to, rows, sqlstate};

fn count(value: usize) -> Vec<Vec<Option<String>>> {
    vec![vec![Some(value.to_string())]]
}

/// The error of a statement run through the extended protocol.
async fn extended_sqlstate(client: &tokio_postgres::Client, sql: &str) -> String {
    match client.query(sql, &[]).await {
        Ok(_) => panic!("{}... should have failed", &sql[..sql.len().min(80)]),
        Err(err) => err.code().unwrap().code().to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_bi_sized_in_lists_and_or_chains_are_answered() {
    let server = TestServer::start().await;
    let client = server.connect("bob").await;
    // 100,000 constants on a lake column (fact_events has patients 1..=40, 5 visits each).
    let list: Vec<String> = (0..100_000).map(|i| i.to_string()).collect();
    let sql = format!(
        "select count(*) from dbo.fact_events where id_patient in ({})",
        list.join(", ")
    );
    assert_eq!(rows(&client, &sql).await, count(200));
    // The extended protocol plans the same statement.
    let got: i64 = client.query_one(&sql, &[]).await.unwrap().get(0);
    assert_eq!(got, 200);
    // A slicer as an OR chain of 20,000 equalities, on a masked table too.
    let terms: Vec<String> = (0..20_000).map(|i| format!("id_patient = {i}")).collect();
    let sql = format!(
        "select count(*) from dbo.dim_patient where {}",
        terms.join(" or ")
    );
    assert_eq!(rows(&client, &sql).await, count(40));
    // An exclusion as an AND chain of 20,000 inequalities (a NOT IN list).
    let terms: Vec<String> = (1..=20_000).map(|i| format!("e.id <> {i}")).collect();
    let sql = format!(
        "select count(*) from dbo.fact_events e where {} or e.id = 7",
        terms.join(" and ")
    );
    assert_eq!(rows(&client, &sql).await, count(1));
    // Multi-column selections: an OR chain of 2,000 pairs, which no list can hold.
    // (Event k is a visit of patient k % 40 + 1.)
    let terms: Vec<String> = (1..=2_000)
        .map(|k| format!("(id_patient = {} and id = {k})", k % 40 + 1))
        .collect();
    let sql = format!(
        "select count(*) from dbo.fact_events where {}",
        terms.join(" or ")
    );
    assert_eq!(rows(&client, &sql).await, count(200));
    // A thousand UNION ALL branches.
    let branches: Vec<String> = (0..1_000).map(|i| format!("select {i} as n")).collect();
    let sql = format!(
        "select count(*), sum(n) from ({}) t",
        branches.join(" union all ")
    );
    assert_eq!(
        rows(&client, &sql).await,
        vec![vec![Some("1000".to_string()), Some("499500".to_string())]]
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_beyond_the_limits_are_refused_and_the_session_goes_on() {
    let server = TestServer::start().await;
    let client = server.connect("bob").await;
    let plus = |n: usize| format!("select {}", vec!["1"; n].join(" + "));
    let parens = |n: usize| format!("select {}1{}", "(".repeat(n), ")".repeat(n));
    let subqueries = |n: usize| {
        let mut sql = "select 1".to_string();
        for _ in 0..n {
            sql = format!("select ({sql})");
        }
        sql
    };
    let functions = |n: usize| format!("select {}1{}", "abs(".repeat(n), ")".repeat(n));
    let conjunction = |n: usize| {
        let terms: Vec<String> = (0..n).map(|i| format!("id + {i} <> 0")).collect();
        format!(
            "select count(*) from dbo.fact_events where {}",
            terms.join(" and ")
        )
    };
    let unions = |n: usize| {
        let branches: Vec<String> = (0..n).map(|i| format!("select {i}")).collect();
        branches.join(" union all ")
    };
    let columns = |n: usize| format!("select {}", vec!["1"; n].join(", "));
    let casts = |n: usize| format!("select 1{}", "::int8".repeat(n));
    // Within the limits: answered.
    assert_eq!(rows(&client, &plus(900)).await, count(900));
    assert_eq!(rows(&client, &parens(150)).await, count(1));
    assert_eq!(rows(&client, &subqueries(12)).await, count(1));
    assert_eq!(rows(&client, &functions(16)).await, count(1));
    assert_eq!(rows(&client, &casts(500)).await, count(1));
    assert_eq!(rows(&client, &conjunction(1_000)).await, count(200));
    assert_eq!(rows(&client, &columns(1_664)).await[0].len(), 1_664);
    // Far beyond: refused with PostgreSQL's codes, in both protocols.
    let refused = [
        (plus(5_000), "54001"),
        (plus(200_000), "54001"),
        (parens(300), "54001"),
        (parens(100_000), "54001"),
        (subqueries(13), "54001"),
        (subqueries(2_000), "54001"),
        (functions(17), "54001"),
        (functions(5_000), "54001"),
        (casts(50_000), "54001"),
        (conjunction(1_001), "54001"),
        (unions(2_002), "54001"),
        (columns(1_665), "54011"),
        (columns(20_000), "54011"),
        (format!("select {}", vec!["1"; 600_000].join(",")), "54001"),
        // A syntax error at the end of a 200,000-term chain drops the chain it parsed.
        (format!("{} +", plus(200_000)), "42601"),
    ];
    for (sql, code) in &refused {
        assert_eq!(&sqlstate(&client, sql).await, code, "{}", &sql[..60]);
        assert_eq!(&extended_sqlstate(&client, sql).await, code);
        assert_eq!(rows(&client, "select 1").await, count(1));
    }
    // The refusals are in the audit trail.
    let admin = server.connect("alice").await;
    let refusals = rows(
        &admin,
        "select count(*) from sys.audit_log where \"user\" = 'bob' and sqlstate in ('54001', '54011')",
    )
    .await;
    assert!(
        refusals[0][0].as_deref().unwrap().parse::<usize>().unwrap() >= refused.len(),
        "{refusals:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_output_names_are_kept_as_postgres_does() {
    let server = TestServer::start().await;
    let client = server.connect("alice").await;
    let rows = client
        .query(
            "select id, id, e.id, count(*) over (), count(*) over () from dbo.fact_events e where id = 3",
            &[],
        )
        .await
        .unwrap();
    let names: Vec<&str> = rows[0].columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, ["id", "id", "id", "count", "count"]);
    let values: Vec<i64> = (0..5).map(|i| rows[0].get::<_, i64>(i)).collect();
    assert_eq!(values, [3, 3, 3, 1, 1]);
    server.stop().await;
}

/// Found by fuzz/ (statements, `fuzz/regressions/statements/found-topk-aggregation-limit-overflow`):
/// DataFusion's grouped top-k aggregation allocated its hash table for the whole limit, and
/// `LIMIT 9223372036854775807` (what tools write for "no limit") panicked the query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_limit_on_an_ordered_aggregation_is_answered() {
    let server = TestServer::start().await;
    let client = server.connect("bob").await;
    let all = i64::MAX;
    for (sql, expected) in [
        (format!("select count(*) from (select distinct id_patient from dbo.fact_events order by id_patient desc limit {all}) t"), 40),
        (format!("select count(*) from (select id_patient, max(id) m from dbo.fact_events group by id_patient order by m desc limit {all}) t"), 40),
        (format!("select count(*) from ((select id_patient from dbo.fact_events) union (select id_patient from dbo.dim_patient) order by 1 desc limit {all} offset 0) t"), 40),
        // A large limit that could be allocated, but only at a cost out of any budget.
        ("select count(*) from (select distinct id_patient from dbo.fact_events order by id_patient limit 500000000) t".to_string(), 40),
    ] {
        assert_eq!(rows(&client, &sql).await, count(expected), "{sql}");
        let got: i64 = client.query_one(&sql, &[]).await.unwrap().get(0);
        assert_eq!(got, expected as i64, "{sql}");
    }
    // Small limits keep DataFusion's top-k aggregation, with the same answers.
    let top = rows(
        &client,
        "select id_patient, max(id) m from dbo.fact_events group by id_patient order by m desc limit 2",
    )
    .await;
    assert_eq!(top.len(), 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planning_counts_toward_statement_timeout_and_cancel() {
    let server = TestServer::start().await;
    let client = server.connect("alice").await;
    // Slow to plan and to run: a conjunction DataFusion links into a deep chain.
    let terms: Vec<String> = (0..1_000)
        .map(|i| format!("a.id + b.id + {i} <> 0"))
        .collect();
    let slow = format!(
        "select count(*) from dbo.fact_events a, dbo.fact_events b, dbo.fact_events c where {}",
        terms.join(" and ")
    );
    // The timeout on a session of its own: the abandoned planning keeps both cores busy for a
    // while, and any later statement of a 50 ms session (a RESET too) could time out behind it.
    let timed = server.connect("alice").await;
    timed
        .batch_execute("set statement_timeout = '50ms'")
        .await
        .unwrap();
    // Other sessions log in and query meanwhile.
    let bystander = {
        let addr = server.addr;
        tokio::spawn(async move {
            let started = Instant::now();
            let other = connect_to(addr, "bob", PASSWORD).await.unwrap();
            other.simple_query("select 1").await.unwrap();
            started.elapsed()
        })
    };
    assert_eq!(sqlstate(&timed, &slow).await, "57014");
    assert_eq!(extended_sqlstate(&timed, &slow).await, "57014");
    assert!(bystander.await.unwrap() < Duration::from_secs(20));
    // A CancelRequest stops it too.
    let token = client.cancel_token();
    let canceler = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        token.cancel_query(tokio_postgres::NoTls).await.unwrap();
    });
    assert_eq!(extended_sqlstate(&client, &slow).await, "57014");
    canceler.await.unwrap();
    assert_eq!(rows(&client, "select 1").await, count(1));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_cannot_make_values_larger_than_the_cap() {
    let server = TestServer::start().await;
    let client = server.connect("bob").await;
    for sql in [
        "select repeat('x', 1000000000)",
        "select length(repeat('ab', 100000000))",
        "select lpad('x', 2147483647)",
        "select rpad('x', 100000000, 'yz')",
        "select replace(repeat('a', 1000000), 'a', repeat('b', 1000))",
        "select regexp_replace(repeat('a', 100000), '', repeat('b', 1000), 'g')",
        "select array_repeat(1, 100000000)",
        "select cardinality(range(1, 1000000000))",
        // PostgreSQL's generate_series in a select list is a set of rows, built as a list
        // under the same cap.
        "select generate_series(1, 1000000000)",
        "select array_resize(make_array(1), 100000000)",
        "select array_to_string(range(1, 10000), repeat('-', 100000))",
        // Under the cap each, but not a whole batch of them.
        "select max(length(repeat('x', 1000000 + value::int))) from generate_series(1, 1000)",
        // From a column of the lake, not only constants.
        "select max(length(repeat(name, 10000000))) from dbo.dim_patient",
    ] {
        assert_eq!(sqlstate(&client, sql).await, "54000", "{sql}");
    }
    // Ordinary sizes, and the masks built on repeat(), still work.
    assert_eq!(
        rows(
            &client,
            "select repeat('ab', 3), lpad('7', 3, '0'), cardinality(range(1, 11))"
        )
        .await,
        vec![vec![
            Some("ababab".to_string()),
            Some("007".to_string()),
            Some("10".to_string())
        ]]
    );
    assert_eq!(
        rows(
            &client,
            "select count(*) from dbo.dim_patient where name = '****'"
        )
        .await,
        count(40)
    );
    server.stop().await;
}

/// Everything an EXPLAIN of a governed user returns, as one text.
async fn explained(client: &tokio_postgres::Client, sql: &str) -> String {
    rows(client, sql)
        .await
        .into_iter()
        .map(|row| {
            row.into_iter()
                .map(Option::unwrap_or_default)
                .collect::<Vec<_>>()
                .join("\t")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn assert_shows_nothing_hidden(text: &str, lake: &str, what: &str) {
    for forbidden in [
        "Rows=",
        "Min=",
        "Max=",
        "Null=",
        "statistics=[",
        "file_groups",
        ".parquet",
        "filename=",
        lake,
        "Test Patient",
    ] {
        assert!(
            !text.contains(forbidden),
            "{what} shows {forbidden:?}:\n{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_shows_governed_users_only_what_they_may_see() {
    let server = TestServer::start().await;
    let lake = server.lake().display().to_string();
    let lake = lake.trim_start_matches('/');
    // bob: names masked.
    let bob = server.connect("bob").await;
    for sql in [
        "explain select name, count(*) from dbo.dim_patient group by name",
        "explain verbose select name, count(*) from dbo.dim_patient group by name",
        "explain verbose select max(name), min(name), count(*) from dbo.dim_patient",
        "explain (analyze) select max(name) from dbo.dim_patient where id_patient > 3",
        "explain analyze verbose select max(name), count(*) from dbo.dim_patient",
        "explain analyze verbose select e.id, p.name from dbo.fact_events e join dbo.dim_patient p using (id_patient) where e.id < 20",
    ] {
        let text = explained(&bob, sql).await;
        assert!(
            text.contains("DataSourceExec: file_type=parquet"),
            "{sql}:\n{text}"
        );
        assert_shows_nothing_hidden(&text, lake, sql);
        if sql.contains("analyze") {
            assert!(text.contains("output_rows="), "{sql}:\n{text}");
        }
    }
    // carol: Portuguese patients only (odd ids); the highest id, 40, is hidden.
    let carol = server.connect("carol").await;
    for sql in [
        "explain select * from dbo.dim_patient",
        "explain verbose select max(id_patient), count(*) from dbo.dim_patient",
        "explain verbose select * from dbo.fact_events where id > 3",
    ] {
        let text = explained(&carol, sql).await;
        assert_shows_nothing_hidden(&text, lake, sql);
        assert!(!text.contains("Int32(40)"), "{sql}:\n{text}");
    }
    for sql in [
        "explain analyze select * from dbo.dim_patient",
        "explain (analyze, verbose) select count(*) from dbo.fact_events",
    ] {
        assert_eq!(sqlstate(&carol, sql).await, "42501", "{sql}");
    }
    // The admin sees DataFusion's EXPLAIN, statistics and files included.
    let alice = server.connect("alice").await;
    let text = explained(
        &alice,
        "explain verbose select max(name) from dbo.dim_patient",
    )
    .await;
    assert!(text.contains("Rows="), "{text}");
    assert!(text.contains(".parquet"), "{text}");
    server.stop().await;
}

/// Connects a socket that never says anything.
async fn idle_connection(addr: std::net::SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_that_never_authenticate_cannot_starve_sessions() {
    let server = TestServer::start_with(Setup::server("  max_connections: 20\n  max_startup_connections: 8\n  authentication_timeout: 2s\n  tls:\n    mode: prefer\n"))
    .await;
    // 200 connections that idle before their startup message, and some that stop halfway
    // through a SCRAM exchange.
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(idle_connection(server.addr).await);
    }
    // Real users still log in, one after the other.
    for _ in 0..10 {
        let client = server.connect("alice").await;
        assert_eq!(rows(&client, "select 1").await, count(1));
    }
    // All but the newest idle connections were closed to make room; the rest close at the
    // authentication timeout. Either way, nothing stays open.
    let started = Instant::now();
    let mut closed = 0;
    for mut socket in idle {
        let mut byte = [0u8; 1];
        match tokio::time::timeout(Duration::from_secs(10), socket.read(&mut byte)).await {
            Ok(Ok(0)) | Ok(Err(_)) => closed += 1,
            Ok(Ok(_)) => closed += 1,
            Err(_) => {}
        }
    }
    assert_eq!(closed, 200);
    assert!(started.elapsed() < Duration::from_secs(15));
    // A client that authenticates too slowly gets an error, not a silent close.
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(&startup_message("alice")).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut answer)).await;
    let errors = error_fields(&answer);
    assert_eq!(
        errors.first().map(|f| f.0.as_str()),
        Some("28000"),
        "{answer:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_beyond_max_connections_get_an_error_response() {
    let server = TestServer::start_with(Setup::server(
        "  max_connections: 2\n  tls:\n    mode: prefer\n",
    ))
    .await;
    let _first = server.connect("alice").await;
    let _second = server.connect("bob").await;
    for user in ["alice", "bob"] {
        let err = server.try_connect(user, PASSWORD).await.unwrap_err();
        let db = err.as_db_error().unwrap();
        assert_eq!(db.code().code(), "53300");
        assert_eq!(db.message(), "sorry, too many clients already");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_guessing_is_slowed_down_and_audited() {
    let server = TestServer::start().await;
    let failure = |err: tokio_postgres::Error, user: &str| {
        let db = err.as_db_error().unwrap().clone();
        assert_eq!(db.code().code(), "28P01");
        assert_eq!(
            db.message(),
            format!("password authentication failed for user \"{user}\"")
        );
    };
    // Three free failures from an address, then each attempt waits, known name or not.
    for _ in 0..3 {
        failure(server.try_connect("bob", "guess").await.unwrap_err(), "bob");
    }
    for user in ["bob", "nobody"] {
        let started = Instant::now();
        failure(server.try_connect(user, "guess").await.unwrap_err(), user);
        assert!(
            started.elapsed() >= Duration::from_millis(200),
            "an attempt for {user} was not held back"
        );
    }
    // Guessing over parallel connections does not go faster: the attempts queue, and those
    // queued too far ahead are refused unchecked, with the same answer.
    let started = Instant::now();
    let attempts: Vec<_> = (0..8)
        .map(|_| {
            let addr = server.addr;
            tokio::spawn(async move { connect_to(addr, "bob", "guess").await.map(|_| ()) })
        })
        .collect();
    for attempt in attempts {
        failure(attempt.await.unwrap().unwrap_err(), "bob");
    }
    assert!(started.elapsed() >= Duration::from_secs(1));
    // The audit trail shows the guessing.
    // (The address is throttled now: the admin waits for the queue to drain.)
    tokio::time::sleep(Duration::from_secs(6)).await;
    let admin = server.connect("alice").await;
    let audited = rows(
        &admin,
        "select \"user\", sqlstate, statement from sys.audit_log where kind = 'login' order by time",
    )
    .await;
    assert!(audited.len() >= 13, "{audited:?}");
    assert!(audited.iter().all(|r| r[1].as_deref() == Some("28P01")));
    let statements: Vec<&str> = audited.iter().map(|r| r[2].as_deref().unwrap()).collect();
    assert!(
        statements.iter().any(|s| s.contains("held back")),
        "{statements:?}"
    );
    assert!(
        statements.iter().any(|s| s.contains("refused unchecked")),
        "{statements:?}"
    );
    // Elsewhere, a user's right password works after a few failures.
    let other = TestServer::start().await;
    for _ in 0..4 {
        failure(
            other.try_connect("carol", "guess").await.unwrap_err(),
            "carol",
        );
    }
    let carol = other.connect("carol").await;
    assert_eq!(rows(&carol, "select 1").await, count(1));
    other.stop().await;
    server.stop().await;
}

/// A protocol 3.0 startup message.
fn startup_message(user: &str) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&196_608i32.to_be_bytes());
    for (k, v) in [("user", user), ("database", "IKHOSPITAL_DW")] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut message = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    message.extend_from_slice(&body);
    message
}

/// A frontend message: tag, length, body.
fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut message = vec![tag];
    message.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    message.extend_from_slice(body);
    message
}

/// The (SQLSTATE, message) of every ErrorResponse in a stream of backend messages.
fn error_fields(mut bytes: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    while bytes.len() >= 5 {
        let tag = bytes[0];
        let len = i32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
        if bytes.len() < 1 + len {
            break;
        }
        if tag == b'E' {
            let mut code = String::new();
            let mut message = String::new();
            for field in bytes[5..1 + len].split(|b| *b == 0) {
                if let Some((&kind, value)) = field.split_first() {
                    let value = String::from_utf8_lossy(value).to_string();
                    match kind {
                        b'C' => code = value,
                        b'M' => message = value,
                        _ => {}
                    }
                }
            }
            out.push((code, message));
        }
        bytes = &bytes[1 + len..];
    }
    out
}

/// Logs in as `dave` (cleartext password, allowed on loopback) over a raw socket.
async fn raw_session(addr: std::net::SocketAddr) -> TcpStream {
    let mut socket = TcpStream::connect(addr).await.unwrap();
    socket.write_all(&startup_message("dave")).await.unwrap();
    let mut request = [0u8; 9];
    socket.read_exact(&mut request).await.unwrap();
    assert_eq!(request[0], b'R', "{request:?}");
    let mut password = PASSWORD.as_bytes().to_vec();
    password.push(0);
    socket.write_all(&frame(b'p', &password)).await.unwrap();
    // Read up to ReadyForQuery.
    let mut seen = Vec::new();
    loop {
        let mut byte = [0u8; 1];
        socket.read_exact(&mut byte).await.unwrap();
        seen.push(byte[0]);
        if seen.ends_with(&[b'Z', 0, 0, 0, 5, b'I']) {
            return socket;
        }
    }
}

/// Sends bytes and reads what the server answers until it closes the connection.
async fn answer_to(mut socket: TcpStream, bytes: &[u8]) -> Vec<(String, String)> {
    socket.write_all(bytes).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut answer)).await;
    error_fields(&answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_protocol_messages_get_08p01_before_and_after_authentication() {
    let server = TestServer::start().await;
    // Before authentication: a SASLInitialResponse with its length word cut off, a password
    // message with a length field below 4, a message of an unknown type.
    let mut initial = b"SCRAM-SHA-256\0".to_vec();
    initial.extend_from_slice(&[0, 0]);
    for (user, bytes) in [
        ("alice", frame(b'p', &initial)),
        ("alice", {
            let mut b = frame(b'p', b"");
            b[1..5].copy_from_slice(&2i32.to_be_bytes());
            b.extend_from_slice(&[0; 16]);
            b
        }),
        ("dave", frame(b'p', b"no terminator")),
    ] {
        let mut socket = TcpStream::connect(server.addr).await.unwrap();
        socket.write_all(&startup_message(user)).await.unwrap();
        let errors = answer_to(socket, &bytes).await;
        assert_eq!(
            errors.last().map(|e| e.0.as_str()),
            Some("08P01"),
            "{errors:?}"
        );
    }
    // After authentication: counts and lengths that do not add up.
    let parse_short_types = {
        let mut body = b"\0select $1\0".to_vec();
        body.extend_from_slice(&3u16.to_be_bytes());
        body.extend_from_slice(&23u32.to_be_bytes());
        frame(b'P', &body)
    };
    let bind_counts = {
        let mut body = b"\0\0".to_vec();
        body.extend_from_slice(&3u16.to_be_bytes());
        body.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        body.extend_from_slice(&2u16.to_be_bytes());
        body.extend_from_slice(&(-1i32).to_be_bytes());
        body.extend_from_slice(&(-1i32).to_be_bytes());
        body.extend_from_slice(&0u16.to_be_bytes());
        frame(b'B', &body)
    };
    let bind_long_value = {
        let mut body = b"\0\0".to_vec();
        body.extend_from_slice(&0u16.to_be_bytes());
        body.extend_from_slice(&1u16.to_be_bytes());
        body.extend_from_slice(&1000i32.to_be_bytes());
        body.extend_from_slice(b"abc");
        frame(b'B', &body)
    };
    let smuggled = {
        // A Sync whose body is a whole Query message.
        let inner = frame(b'Q', b"select 1\0");
        frame(b'S', &inner)
    };
    for bytes in [
        parse_short_types,
        bind_counts,
        bind_long_value,
        frame(b'E', b"\0"),
        frame(b'D', b""),
        frame(b'C', b"X\0"),
        frame(b'Q', b"select 1"),
        frame(b'Q', b"select '\xc3\x28'\0"),
        smuggled,
        frame(b'F', b""),
    ] {
        let socket = raw_session(server.addr).await;
        let errors = answer_to(socket, &bytes).await;
        assert_eq!(
            errors.last().map(|e| e.0.as_str()),
            Some("08P01"),
            "{bytes:?}: {errors:?}"
        );
    }
    // The server is fine.
    let client = server.connect("alice").await;
    assert_eq!(rows(&client, "select 1").await, count(1));
    server.stop().await;
}

/// The server as a process with a small memory budget: memory-hungry queries at once are
/// cancelled with 53200, the process stays under the budget and keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_hungry_queries_are_cancelled_before_the_process_is_at_risk() {
    let server = ChildServer::spawn(Setup::server(
        "  max_memory: 1GiB\n  tls:\n    mode: prefer\n",
    ))
    .await;
    let client = server.connect("alice").await;
    assert_eq!(rows(&client, "select 1").await, count(1));
    // One query holding more than the whole budget: refused as it grows.
    let hungry = "select cardinality(array_agg(value)) from generate_series(1, 100000000)";
    assert_eq!(sqlstate(&client, hungry).await, "53200");
    // Four at once, each of which would fit alone.
    let each = "select cardinality(array_agg(value)) from generate_series(1, 25000000)";
    let mut running = Vec::new();
    for _ in 0..4 {
        let client = server.connect("alice").await;
        running.push(tokio::spawn(async move {
            match client.simple_query(each).await {
                Ok(_) => "ok".to_string(),
                Err(err) => err.code().map(|c| c.code().to_string()).unwrap_or_default(),
            }
        }));
    }
    let pid = server.pid();
    let sampler = tokio::spawn(async move {
        let mut peak = 0u64;
        loop {
            let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
                return peak;
            };
            let kb: u64 = status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            peak = peak.max(kb * 1024);
            tokio::time::sleep(Duration::from_millis(5)).await;
            if STOP.load(std::sync::atomic::Ordering::Relaxed) {
                return peak;
            }
        }
    });
    static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let mut outcomes = Vec::new();
    for task in running {
        outcomes.push(task.await.unwrap());
    }
    STOP.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.await.unwrap();
    eprintln!(
        "4 memory-hungry queries: {outcomes:?}, peak RSS {} MB",
        peak >> 20
    );
    assert!(
        outcomes.iter().all(|o| o == "ok" || o == "53200"),
        "{outcomes:?}"
    );
    assert!(peak < 1 << 30, "peak RSS {} MB", peak >> 20);
    let client = server.connect("alice").await;
    assert_eq!(rows(&client, "select 1").await, count(1));
}
