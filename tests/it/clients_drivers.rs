//! pgJDBC and psqlODBC, the real drivers, listing schemas, tables and columns the way a JDBC or
//! ODBC tool's database browser does, then running a parameterised query.

use std::path::PathBuf;
use std::process::Command;

use crate::support::{PASSWORD, Setup, TestServer};

fn clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// Runs a client program off the runtime; returns its stdout lines split at tabs.
async fn run(cmd: Command, what: &str, install: &str) -> Vec<Vec<String>> {
    crate::support::client_output(cmd, what, install)
        .await
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

fn facts<'a>(lines: &'a [Vec<String>], kind: &str) -> Vec<Vec<&'a str>> {
    lines
        .iter()
        .filter(|l| l[0] == kind)
        .map(|l| l[1..].iter().map(String::as_str).collect())
        .collect()
}

const JDBC_JAR: &str = "/usr/share/java/postgresql.jar";

#[tokio::test]
async fn pgjdbc_lists_tables_and_columns() {
    assert!(
        std::path::Path::new(JDBC_JAR).exists(),
        "pgJDBC is missing: apt-get install libpostgresql-jdbc-java (and a JDK for javac)"
    );
    let server = TestServer::start_with(Setup::tls_required()).await;
    let classes = tempfile::tempdir().unwrap();
    let mut javac = Command::new("javac");
    javac
        .arg("-d")
        .arg(classes.path())
        .arg(clients_dir().join("JdbcCatalog.java"));
    run(javac, "javac", "a JDK (Debian default-jdk-headless)").await;
    let mut java = Command::new("java");
    java.arg("-cp")
        .arg(format!("{}:{JDBC_JAR}", classes.path().display()))
        .arg("JdbcCatalog")
        .arg(format!(
            "jdbc:postgresql://127.0.0.1:{}/IKHOSPITAL_DW?sslmode=require",
            server.addr.port()
        ))
        .arg("carol")
        .arg(PASSWORD);
    let lines = run(java, "java", "a JDK and libpostgresql-jdbc-java").await;
    assert_eq!(facts(&lines, "product"), [["PostgreSQL", "15"]]);
    assert_eq!(
        facts(&lines, "schema"),
        [["dbo"], ["information_schema"], ["pg_catalog"]]
    );
    assert_eq!(
        facts(&lines, "table"),
        [
            ["dbo", "dim_patient", "TABLE"],
            ["dbo", "fact_events", "TABLE"]
        ],
        "carol's tables only"
    );
    let columns = facts(&lines, "column");
    assert_eq!(columns.len(), 8);
    assert_eq!(columns[0], ["id_patient", "int4", "4", "NO", "1"]);
    assert_eq!(columns[1], ["name", "text", "12", "YES", "2"]);
    assert_eq!(columns[3], ["age", "int4", "4", "YES", "4"]);
    // Patient 4 is Portuguese (carol's row filter); int8 parameter, text results.
    assert_eq!(
        facts(&lines, "row"),
        [["name", "Test Patient 4", "int4", "28"]]
    );
    // The whole DatabaseMetaData sweep answers, and answers only about carol's tables.
    let meta = facts(&lines, "meta");
    // (getSuperTables and getPseudoColumns are not implemented by pgJDBC itself.)
    assert_eq!(meta.len(), 21, "{meta:?}");
    for call in &meta {
        assert!(!call[1].starts_with("FAILED"), "DatabaseMetaData {call:?}");
    }
    let privileges = facts(&lines, "privilege");
    assert!(!privileges.is_empty());
    for privilege in &privileges {
        assert!(
            ["dim_patient", "fact_events"].contains(&privilege[0]) && privilege[2] == "SELECT",
            "{privilege:?}"
        );
    }
    assert!(facts(&lines, "pk").is_empty(), "Delta tables have no keys");
    // (isReadOnly is pgJDBC's own connection flag, not the server's.)
    assert_eq!(facts(&lines, "info")[0][0], "carol");
    let rsmd = facts(&lines, "rsmd");
    assert_eq!(rsmd.len(), 8);
    assert_eq!(rsmd[0][..2], ["id_patient", "int4"]);
    server.stop().await;
}

#[tokio::test]
async fn psqlodbc_lists_tables_and_columns() {
    let server = TestServer::start_with(Setup::tls_required()).await;
    let mut python = Command::new("python3");
    python
        .arg(clients_dir().join("odbc_catalog.py"))
        .arg("127.0.0.1")
        .arg(server.addr.port().to_string())
        .arg("alice")
        .arg(PASSWORD);
    let lines = run(
        python,
        "python3 with pyodbc",
        "odbc-postgresql, unixodbc and `pip install pyodbc`",
    )
    .await;
    assert_eq!(facts(&lines, "dbms")[0][0], "PostgreSQL");
    assert_eq!(facts(&lines, "schema"), [["dbo"], ["sys"]]);
    assert_eq!(
        facts(&lines, "table"),
        [
            ["dbo", "dim_doctors", "TABLE"],
            ["dbo", "dim_patient", "TABLE"],
            ["dbo", "fact_events", "TABLE"]
        ]
    );
    let columns = facts(&lines, "column");
    assert_eq!(columns.len(), 8);
    // SQL_INTEGER 4, SQL_WLONGVARCHAR -10 (text); nullable 0/1.
    assert_eq!(columns[0], ["id_patient", "int4", "4", "0", "1"]);
    assert_eq!(columns[1], ["name", "text", "-10", "1", "2"]);
    assert_eq!(facts(&lines, "row"), [["Test Patient 4", "28"]]);
    // Every catalog function an ODBC tool calls answers.
    let meta = facts(&lines, "meta");
    assert_eq!(meta.len(), 10, "{meta:?}");
    for call in &meta {
        assert!(!call[1].starts_with("FAILED"), "ODBC {call:?}");
    }
    server.stop().await;
}
