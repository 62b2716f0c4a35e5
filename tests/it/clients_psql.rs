//! psql 15, the real binary: backslash commands send psql's own catalog queries (simple
//! protocol, text results), and psql stops `\d` at the first query that fails.

use std::process::Command;

use crate::support::{Setup, TestServer};

/// Runs psql with `-c` commands in one session; returns stdout, failing on any error.
async fn psql(server: &TestServer, user: &str, commands: &[&str]) -> String {
    let mut cmd = Command::new("psql");
    cmd.arg("-X")
        .arg("-v")
        .arg("ON_ERROR_STOP=1")
        .arg(server.url(user, "require"));
    for c in commands {
        cmd.arg("-c").arg(c);
    }
    cmd.env("PGCONNECT_TIMEOUT", "10");
    // psql blocks: run it off the runtime that serves it.
    let output = tokio::task::spawn_blocking(move || cmd.output()).await.unwrap().unwrap_or_else(|e| {
        panic!("cannot run psql ({e}): install the PostgreSQL 15 client (Debian postgresql-client-15)")
    });
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(
        output.status.success() && !stderr.contains("ERROR"),
        "psql {commands:?} failed:\n{stderr}\n{stdout}"
    );
    stdout
}

#[tokio::test]
async fn psql_backslash_commands() {
    let server = TestServer::start_with(Setup::tls_required()).await;

    let out = psql(&server, "alice", &["\\l"]).await;
    assert!(
        out.contains("IKHOSPITAL_DW") && out.contains("UTF8"),
        "{out}"
    );

    let out = psql(&server, "alice", &["\\dn"]).await;
    assert!(out.contains(" dbo ") && out.contains(" sys "), "{out}");
    let out = psql(&server, "bob", &["\\dn"]).await;
    assert!(
        out.contains(" dbo ") && !out.contains(" sys "),
        "bob has no grant on sys:\n{out}"
    );

    let out = psql(&server, "alice", &["\\dt"]).await;
    for table in ["dim_doctors", "dim_patient", "fact_events"] {
        assert!(out.contains(&format!(" dbo    | {table} ")), "{out}");
    }
    assert!(out.contains("(3 rows)"), "{out}");
    let out = psql(&server, "carol", &["\\dt dbo.*"]).await;
    assert!(
        out.contains("dim_patient") && out.contains("fact_events") && !out.contains("dim_doctors"),
        "{out}"
    );

    // \d dbo.fact_events prints its columns with PostgreSQL's type names.
    let out = psql(&server, "alice", &["\\d dbo.fact_events"]).await;
    assert!(out.contains("Table \"dbo.fact_events\""), "{out}");
    for (column, type_name, nullable) in [
        ("id", "bigint", "not null"),
        ("id_patient", "integer", "not null"),
        ("age", "integer", ""),
        ("id_doctor", "integer", ""),
        ("symptoms", "text", ""),
        ("date_of_service", "date", ""),
    ] {
        let line = out
            .lines()
            .find(|l| l.split('|').next().map(str::trim) == Some(column))
            .unwrap_or_else(|| panic!("no line for {column}:\n{out}"));
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        assert_eq!((cells[1], cells[3]), (type_name, nullable), "{line}");
    }
    let out = psql(&server, "alice", &["\\d fact_events"]).await;
    assert!(out.contains("date_of_service"), "{out}");

    let out = psql(&server, "alice", &["\\d+ dbo.dim_patient"]).await;
    assert!(
        out.contains("Storage") && out.contains("Access method: heap"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with(" name ") && l.contains("text") && l.contains("extended")),
        "{out}"
    );

    // \x and \timing change psql's own output; the query still runs.
    let out = psql(
        &server,
        "alice",
        &[
            "\\x",
            "\\timing",
            "select id_patient, name from dim_patient where id_patient = 3",
        ],
    )
    .await;
    assert!(out.contains("Expanded display is on."), "{out}");
    assert!(out.contains("Timing is on."), "{out}");
    assert!(
        out.contains("id_patient | 3") && out.contains("name       | Test Patient 3"),
        "{out}"
    );
    assert!(out.contains("Time: "), "{out}");

    // Bob sees the masked name column through psql like through any client.
    let out = psql(&server, "bob", &["\\d dbo.dim_patient"]).await;
    assert!(out.contains(" name "), "{out}");

    // The rest of a reader's \d family answers without an error.
    for command in [
        "\\dv",
        "\\df upper",
        "\\dT",
        "\\du",
        "\\dp dbo.*",
        "\\dm",
        "\\ds",
        "\\di",
        "\\dx",
    ] {
        psql(&server, "carol", &[command]).await;
    }
    let out = psql(&server, "carol", &["\\dp dbo.*"]).await;
    assert!(
        out.contains("dim_patient") && !out.contains("dim_doctors"),
        "{out}"
    );
    let out = psql(&server, "alice", &["\\du"]).await;
    assert!(out.contains("alice"), "{out}");

    // \copy ... to stdout is COPY TO STDOUT on the wire: bob's copy is masked too.
    let out = psql(
        &server,
        "bob",
        &["\\copy (select id_patient, name from dbo.dim_patient order by 1) to stdout with csv header"],
    )
    .await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 41, "{out}");
    assert_eq!(lines[0], "id_patient,name");
    assert!(
        lines[1].starts_with("1,") && !out.contains("Test Patient"),
        "{out}"
    );
    let out = psql(
        &server,
        "carol",
        &["\\copy dbo.dim_patient (id_patient) to stdout"],
    )
    .await;
    assert_eq!(out.lines().count(), 20, "{out}");
    server.stop().await;
}
