//! Serving basics over the wire: queries, protocols, TLS, auth, refusals, limits, refresh.

use std::time::{Duration, Instant};
use tokio::process::Command;

use crate::support::{PASSWORD, Setup, TestServer, fixture, rows, sqlstate};

fn one(value: &str) -> Vec<Vec<Option<String>>> {
    vec![vec![Some(value.to_string())]]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_and_extended_queries_read_delta() {
    let server = TestServer::start().await;
    let client = server.connect("alice").await;
    assert_eq!(
        rows(&client, "select count(*) from dbo.fact_events").await,
        one("200")
    );
    assert_eq!(
        rows(&client, "select count(*) from fact_events").await,
        one("200")
    );
    assert_eq!(
        rows(
            &client,
            "select count(*) from \"IKHOSPITAL_DW\".dbo.fact_events"
        )
        .await,
        one("200")
    );
    assert_eq!(
        rows(
            &client,
            "SELECT COUNT(*) FROM ikhospital_dw.DBO.Fact_Events"
        )
        .await,
        one("200")
    );
    // Extended protocol with a typed parameter, binary results.
    let row = client
        .query_one(
            "select id_patient, name, age from dim_patient where id_patient = $1",
            &[&7i32],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 7);
    assert_eq!(row.get::<_, String>(1), "Test Patient 7");
    let since = chrono::NaiveDate::from_ymd_opt(2020, 6, 1).unwrap();
    let n: i64 = client
        .query_one(
            "select count(*) from fact_events where date_of_service >= $1",
            &[&since],
        )
        .await
        .unwrap()
        .get(0);
    assert!(n > 0 && n < 200, "{n}");
    // A named prepared statement reused, and an untyped parameter inferred from the plan.
    let statement = client
        .prepare("select count(*) from fact_events where id_patient = $1")
        .await
        .unwrap();
    assert_eq!(statement.params()[0], tokio_postgres::types::Type::INT4);
    for patient in [1i32, 2, 3] {
        let n: i64 = client
            .query_one(&statement, &[&patient])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 5);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_have_postgres_names_types_and_text() {
    let server = TestServer::start().await;
    let client = server.connect("alice").await;
    let messages = client
        .simple_query(
            "select count(*), 1, 1.5::double precision, 'x' as y, true, date '2024-02-29', null",
        )
        .await
        .unwrap();
    let tokio_postgres::SimpleQueryMessage::Row(row) = &messages[1] else {
        panic!("{messages:?}")
    };
    let names: Vec<&str> = row.columns().iter().map(|c| c.name()).collect();
    assert_eq!(
        names,
        [
            "count", "?column?", "float8", "y", "bool", "date", "?column?"
        ]
    );
    let values: Vec<Option<&str>> = (0..row.len()).map(|i| row.get(i)).collect();
    assert_eq!(
        values,
        [
            Some("1"),
            Some("1"),
            Some("1.5"),
            Some("x"),
            Some("t"),
            Some("2024-02-29"),
            None
        ]
    );
    // Multi-statement simple query: one result per statement, in order.
    let messages = client.simple_query("select 1; select 2").await.unwrap();
    let completes = messages
        .iter()
        .filter(|m| matches!(m, tokio_postgres::SimpleQueryMessage::CommandComplete(1)))
        .count();
    assert_eq!(completes, 2);
    // Empty query.
    let empty = client.simple_query("").await.unwrap();
    assert!(
        !empty
            .iter()
            .any(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_)))
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_files_and_datafusion_statements_are_refused() {
    let server = TestServer::start().await;
    let client = server.connect("alice").await;
    let target = server.dir.path().join("copied.csv");
    let cases = [
        (
            format!("COPY (select 1) TO '{}'", target.display()),
            "42501",
        ),
        (
            "CREATE EXTERNAL TABLE pwn (id BIGINT) STORED AS PARQUET LOCATION '/etc/'".to_string(),
            "25006",
        ),
        ("select * from '/etc/passwd'".to_string(), "42P01"),
        ("insert into dim_patient values (1)".to_string(), "25006"),
        ("drop table dim_patient".to_string(), "25006"),
        ("create table t as select 1".to_string(), "25006"),
        (
            "set datafusion.execution.target_partitions = 1".to_string(),
            "42501",
        ),
        ("grant select on dim_patient to bob".to_string(), "42501"),
    ];
    for (sql, code) in &cases {
        assert_eq!(&sqlstate(&client, sql).await, code, "{sql}");
    }
    // COPY writes to the client only: files, programs and COPY FROM stay refused.
    for sql in [
        format!("COPY dim_patient TO '{}'", target.display()),
        "COPY (select 1) TO PROGRAM 'touch /tmp/pwned'".to_string(),
        "COPY dim_patient FROM STDIN".to_string(),
        format!("COPY dim_patient FROM '{}'", target.display()),
    ] {
        assert_eq!(sqlstate(&client, &sql).await, "42501", "{sql}");
    }
    assert!(!target.exists(), "COPY wrote a file");
    // Over the extended protocol too.
    let err = client
        .prepare(&format!("COPY (select 1) TO '{}'", target.display()))
        .await
        .unwrap_err();
    assert_eq!(err.as_db_error().unwrap().code().code(), "42501");
    assert!(!target.exists());
    // The session is still usable, and read-only transaction control works.
    client
        .batch_execute("BEGIN; SELECT 1; COMMIT")
        .await
        .unwrap();
    assert_eq!(rows(&client, "show transaction_read_only").await, one("on"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_failures_look_the_same() {
    let server = TestServer::start().await;
    let wrong = server.try_connect("alice", "wrong").await.unwrap_err();
    let unknown = server.try_connect("mallory", "wrong").await.unwrap_err();
    let wrong = wrong.as_db_error().unwrap();
    let unknown = unknown.as_db_error().unwrap();
    assert_eq!(wrong.code().code(), "28P01");
    assert_eq!(unknown.code().code(), "28P01");
    assert_eq!(
        wrong.message(),
        "password authentication failed for user \"alice\""
    );
    assert_eq!(
        unknown.message(),
        "password authentication failed for user \"mallory\""
    );
    // Unknown database.
    let mut config = lakehouse::bench::client_config(server.addr, "alice", PASSWORD);
    config.dbname("postgres");
    let Err(err) = config.connect(tokio_postgres::NoTls).await else {
        panic!("connected to an unknown database")
    };
    assert_eq!(err.as_db_error().unwrap().code().code(), "3D000");
    // Any case of the database name works.
    config.dbname("ikhospital_dw");
    let _connected = config.connect(tokio_postgres::NoTls).await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_over_tls_with_scram() {
    let server = TestServer::start_with(Setup::server(
        "  tls:\n    mode: require\n    self_signed_dir: tls\n",
    ))
    .await;
    let output = Command::new("psql")
        .arg(server.url("alice", "require"))
        .args(["-At", "-c", "select count(*) from dbo.fact_events"])
        .output()
        .await
        .expect("psql must be installed");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.starts_with("200\n"),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // verify-full with the self-signed certificate as root.
    let cert = server.app_tls_cert.clone().expect("self-signed cert kept");
    let output = Command::new("psql")
        .arg(format!(
            "{} sslrootcert={} sslmode=verify-full host=localhost",
            server.url("alice", "verify-full"),
            cert.display()
        ))
        .args(["-At", "-c", "select 1"])
        .output()
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "1\n",
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Plaintext is refused when TLS is required: never a silent fallback.
    let output = Command::new("psql")
        .arg(server.url("alice", "disable"))
        .args(["-At", "-c", "select 1"])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("requires TLS"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libpq_demanding_scram_logs_in_and_cleartext_needs_tls() {
    let server = TestServer::start_with(Setup::server("  tls:\n    mode: prefer\n")).await;
    // psycopg's libpq (>= 16) understands require_auth.
    let script = format!(
        "import psycopg\n\
         c = psycopg.connect({url:?} + ' require_auth=scram-sha-256')\n\
         print(c.execute('select count(*) from dbo.dim_patient').fetchone()[0])\n\
         try:\n    psycopg.connect({dave:?} + ' require_auth=scram-sha-256')\n    print('dave-scram-ok')\n\
         except psycopg.OperationalError as e:\n    print('dave-refused')\n\
         c = psycopg.connect({dave:?} + ' require_auth=password')\n\
         print(c.execute('select current_user').fetchone()[0])\n",
        url = server.url("alice", "require"),
        dave = server.url("dave", "require"),
    );
    let output = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .output()
        .await
        .expect("python3 with psycopg");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout,
        "40\ndave-refused\ndave\n",
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_versions_appear_within_the_refresh_interval() {
    let server = TestServer::start().await;
    let client = server.connect("alice").await;
    assert_eq!(
        rows(&client, "select count(*) from fact_events").await,
        one("200")
    );
    // Another writer appends a version (here: the same process through the lake module).
    let location = fixture::location(&server.lake(), "fact_events");
    lakehouse::lake::write::append(
        &location,
        vec![fixture::events(201, 50, 40)],
        &Default::default(),
    )
    .await
    .unwrap();
    let started = Instant::now();
    loop {
        if rows(&client, "select count(*) from fact_events").await == one("250") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "new version not visible after 3 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A table that appears under the discovered prefix is served without a restart.
    fixture::Table {
        name: "dim_extra".into(),
        batches: vec![fixture::doctors()],
    }
    .write(&server.lake())
    .await;
    let started = Instant::now();
    while sqlstate_or_ok(&client, "select count(*) from dim_extra")
        .await
        .is_some()
    {
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "new table not visible after 3 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop().await;
}

async fn sqlstate_or_ok(client: &tokio_postgres::Client, sql: &str) -> Option<String> {
    client
        .simple_query(sql)
        .await
        .err()
        .map(|e| e.code().map(|c| c.code().to_string()).unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_table_fails_only_its_queries() {
    let server = TestServer::start().await;
    // A folder that looks like a Delta table but whose log is garbage.
    let broken = server
        .lake()
        .join("gold/ikhospital/broken_table/_delta_log");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("00000000000000000000.json"), "not json").unwrap();
    let client = server.connect("alice").await;
    let started = Instant::now();
    loop {
        let code = sqlstate_or_ok(&client, "select * from broken_table").await;
        if code.as_deref() == Some("55000") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "broken table not reported: {code:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        rows(&client, "select count(*) from fact_events").await,
        one("200")
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_timeout_and_cancel_stop_execution() {
    let server = TestServer::start().await;
    let client = server.connect("alice").await;
    // A query that runs for minutes if not stopped.
    let heavy = "select count(*) from fact_events a, fact_events b, fact_events c, fact_events d where a.id + b.id + c.id + d.id = -1";
    client
        .batch_execute("set statement_timeout = '300ms'")
        .await
        .unwrap();
    let started = Instant::now();
    assert_eq!(sqlstate(&client, heavy).await, "57014");
    assert!(started.elapsed() < Duration::from_secs(5));
    client
        .batch_execute("reset statement_timeout")
        .await
        .unwrap();
    // CancelRequest from another connection.
    let token = client.cancel_token();
    let canceler = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        token.cancel_query(tokio_postgres::NoTls).await.unwrap();
    });
    let started = Instant::now();
    let err = client.simple_query(heavy).await.unwrap_err();
    assert_eq!(err.code().unwrap().code(), "57014");
    assert!(started.elapsed() < Duration::from_secs(5));
    canceler.await.unwrap();
    // The connection keeps working, and the server is not busy with the dead query.
    // The connection keeps working (process::canceled_query_stops_using_cpu_and_sigterm_shuts_down
    // checks that the canceled query stops using CPU).
    assert_eq!(rows(&client, "select 1").await, one("1"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_connections_and_memory() {
    let server = TestServer::start_with(Setup::server(
        "  max_connections: 2\n  query_memory_limit: 1MiB\n  tls:\n    mode: prefer\n",
    ))
    .await;
    let first = server.connect("alice").await;
    let _second = server.connect("alice").await;
    let err = server.try_connect("alice", PASSWORD).await.unwrap_err();
    assert_eq!(err.as_db_error().unwrap().code().code(), "53300");
    // A sort bigger than the memory limit: spills or fails with 53200, never kills the server.
    let result = first
        .simple_query(
            "select a.id, b.id from fact_events a, fact_events b order by a.id + b.id, b.id desc",
        )
        .await;
    if let Err(err) = result {
        assert_eq!(err.code().unwrap().code(), "53200", "{err}");
    }
    assert_eq!(rows(&first, "select 1").await, one("1"));
    server.stop().await;
}

/// `current_date` and `now()` are folded per statement: in the select list and in a filter
/// that prunes Delta files by their statistics (the hospital overview's "distributed today").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn current_date_and_now_work_in_filters_over_delta() {
    let server = TestServer::start().await;
    let client = server.connect("alice").await;
    let today = chrono::Utc::now().date_naive().to_string();
    let row = &rows(&client, "select current_date::text, now() is not null").await[0];
    assert_eq!(row[0].as_deref(), Some(today.as_str()));
    assert_eq!(row[1].as_deref(), Some("t"));
    let expected = rows(
        &client,
        &format!("select count(*) from fact_events where date_of_service <= date '{today}'"),
    )
    .await;
    assert_eq!(
        rows(
            &client,
            "select count(*) from fact_events where date_of_service <= current_date"
        )
        .await,
        expected
    );
    assert_eq!(
        rows(
            &client,
            "select count(*) from fact_events where date_of_service > current_date - 36500"
        )
        .await
        .len(),
        1
    );
}

/// `lakehouse check` refuses what `serve` would refuse only when starting a part (the stream's
/// sources, the ingest's URLs, the TLS files), each at its place in the file; a good file
/// passes with a line per table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_what_serve_would_refuse() {
    let (dir, config_path) = crate::support::prepare(&mut Setup::default()).await;
    let check = |path: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_lakehouse"))
            .arg("check")
            .arg("--config")
            .arg(path)
            .output()
            .unwrap()
    };
    let good = check(&config_path);
    let stdout = String::from_utf8_lossy(&good.stdout);
    assert!(
        good.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert!(
        stdout.contains("dbo.dim_patient: served (Delta version 0"),
        "{stdout}"
    );

    let base = std::fs::read_to_string(&config_path).unwrap();
    let cases = [
        (
            "stream:\n  http:\n    listen: 127.0.0.1:0\n    devices:\n      - id: d1\n        token: short\n",
            "shorter than 8 characters",
        ),
        (
            "ingest:\n  sources:\n    - name: mysql\n      kind: mysql\n      url: notaurl\n",
            "invalid MySQL URL",
        ),
        (
            "stream:\n  mqtt:\n    url: http://broker\n    topic: pharmacy/+/events\n",
            "mqtt://",
        ),
    ];
    for (extra, expected) in cases {
        let path = dir.path().join("bad.yaml");
        std::fs::write(&path, format!("{base}{extra}")).unwrap();
        let out = check(&path);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra}: {stderr}");
        assert!(stderr.contains(expected), "{extra}: {stderr}");
        // file:line:col of the section.
        assert!(stderr.contains("bad.yaml:"), "{stderr}");
    }
    // TLS files that do not exist.
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        base.replace(
            "  tls:\n    mode: prefer\n",
            "  tls:\n    mode: require\n    cert: /nonexistent/server.crt\n    key: /nonexistent/server.key\n",
        ),
    )
    .unwrap();
    let out = check(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("/nonexistent/server.crt"), "{stderr}");
}

/// `SHOW` reads dotted (custom) settings without quotes, as PostgreSQL does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_reads_dotted_settings_unquoted() {
    let server = TestServer::start().await;
    let client = server.connect("alice").await;
    let value = |v: &str| vec![vec![Some(v.to_string())]];
    assert_eq!(
        rows(&client, "show lakehouse.result_cache").await,
        value("on")
    );
    rows(&client, "set lakehouse.result_cache = off").await;
    assert_eq!(
        rows(&client, "SHOW lakehouse.result_cache").await,
        value("off")
    );
    assert_eq!(rows(&client, "show time zone").await, value("UTC"));
    server.stop().await;
}

/// The rows of a binary COPY: signature, then per row a field count and length-prefixed
/// values, then -1.
fn binary_copy_rows(data: &[u8]) -> Vec<Vec<Option<Vec<u8>>>> {
    assert_eq!(&data[..11], b"PGCOPY\n\xff\r\n\0", "signature");
    let mut at = 19;
    let mut rows = Vec::new();
    loop {
        let n = i16::from_be_bytes([data[at], data[at + 1]]);
        at += 2;
        if n == -1 {
            assert_eq!(at, data.len(), "nothing after the trailer");
            return rows;
        }
        let mut row = Vec::new();
        for _ in 0..n {
            let len = i32::from_be_bytes(data[at..at + 4].try_into().unwrap());
            at += 4;
            if len < 0 {
                row.push(None);
            } else {
                row.push(Some(data[at..at + len as usize].to_vec()));
                at += len as usize;
            }
        }
        rows.push(row);
    }
}

async fn copy_out(client: &tokio_postgres::Client, sql: &str) -> Vec<u8> {
    use futures::TryStreamExt;
    let stream = client
        .copy_out(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    let chunks: Vec<bytes::Bytes> = stream.try_collect().await.unwrap();
    chunks.concat()
}

/// The SQLSTATE a COPY ends with, whether it fails before its data or in the middle of it.
async fn copy_error(client: &tokio_postgres::Client, sql: &str) -> String {
    use futures::TryStreamExt;
    let err = match client.copy_out(sql).await {
        Err(err) => err,
        Ok(stream) => match stream.try_collect::<Vec<bytes::Bytes>>().await {
            Err(err) => err,
            Ok(_) => panic!("{sql} should have failed"),
        },
    };
    err.as_db_error()
        .map(|e| e.code().code().to_string())
        .unwrap_or_else(|| panic!("{sql}: not a database error: {err}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_to_stdout_in_three_formats_under_the_policy() {
    let server = TestServer::start().await;
    let alice = server.connect("alice").await;
    let query = "SELECT id_patient, name, age, address FROM dbo.dim_patient ORDER BY id_patient";
    let selected = rows(&alice, query).await;
    // Text: tab-separated, the address's newline escaped, one line per row.
    let text =
        String::from_utf8(copy_out(&alice, &format!("COPY ({query}) TO STDOUT")).await).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), selected.len());
    assert_eq!(lines[0], "1\tTest Patient 1\t7\t1 Fake Street\\nTestville");
    // CSV with a header: the newline is inside quotes.
    let csv = String::from_utf8(
        copy_out(
            &alice,
            &format!("COPY ({query}) TO STDOUT (FORMAT csv, HEADER)"),
        )
        .await,
    )
    .unwrap();
    assert!(
        csv.starts_with(
            "id_patient,name,age,address\n1,Test Patient 1,7,\"1 Fake Street\nTestville\"\n"
        ),
        "{csv}"
    );
    // Binary: the values of a binary SELECT.
    let binary = binary_copy_rows(
        &copy_out(&alice, &format!("COPY ({query}) TO STDOUT (FORMAT binary)")).await,
    );
    assert_eq!(binary.len(), selected.len());
    assert_eq!(binary[0][0].as_deref(), Some(&1i32.to_be_bytes()[..]));
    assert_eq!(binary[0][1].as_deref(), Some(&b"Test Patient 1"[..]));
    // A table with columns named, and the legacy syntax.
    let table = copy_out(
        &alice,
        "COPY dim_doctors (id_doctor, shift) TO STDOUT WITH CSV",
    )
    .await;
    assert_eq!(String::from_utf8(table).unwrap().lines().count(), 30);
    // The policy applies: bob's names are masked, carol sees Portugal's patients only.
    let bob = server.connect("bob").await;
    let masked =
        String::from_utf8(copy_out(&bob, &format!("COPY ({query}) TO STDOUT")).await).unwrap();
    assert_eq!(masked.lines().count(), 40);
    assert!(!masked.contains("Test Patient"), "{masked}");
    let carol = server.connect("carol").await;
    let filtered = String::from_utf8(copy_out(&carol, "COPY dim_patient TO STDOUT").await).unwrap();
    assert_eq!(filtered.lines().count(), 20);
    // A table she may not read does not exist for her, in COPY as in SELECT.
    assert_eq!(
        sqlstate(&carol, "COPY dim_doctors TO STDOUT").await,
        "42P01"
    );
    // Invalid options are PostgreSQL's errors, and the session goes on.
    assert_eq!(
        sqlstate(&alice, "COPY dim_doctors TO STDOUT (FORMAT xml)").await,
        "22023"
    );
    assert_eq!(
        sqlstate(&alice, "COPY dim_doctors TO STDOUT (FORMAT binary, HEADER)").await,
        "42601"
    );
    // statement_timeout covers a COPY as it covers a SELECT.
    alice
        .batch_execute("SET statement_timeout = '200ms'")
        .await
        .unwrap();
    let slow = "COPY (SELECT count(*) FROM generate_series(1, 4000000000) a) TO STDOUT";
    assert_eq!(copy_error(&alice, slow).await, "57014");
    alice
        .batch_execute("RESET statement_timeout")
        .await
        .unwrap();
    // Audited as a copy, with its row count.
    assert_eq!(
        rows(
            &alice,
            "select count(*) from sys.audit_log where kind = 'copy' and \"user\" = 'carol' and rows = 20 and outcome = 'ok'"
        )
        .await,
        one("1")
    );
    server.stop().await;
}
