//! The Python data stack, the real packages: psycopg 3 and psycopg2, asyncpg, SQLAlchemy 2's
//! Inspector and Table autoload with both PostgreSQL dialects, pandas, polars with connectorx
//! and with ADBC. Each runs `tests/clients/python_clients.py` as `bob` (names masked) and as
//! `carol` (Portugal's patients only, two tables granted): answers are checked, masked values
//! stay masked, hidden tables stay out of metadata, and COPY's formats give a SELECT's rows.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use crate::support::{Setup, TestServer};

/// The facts a client printed: first field → the rest, tab-joined (the last one wins).
async fn client(server: &TestServer, name: &str, user: &str) -> BTreeMap<String, Vec<String>> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients/python_clients.py");
    let mut cmd = Command::new("python3");
    cmd.arg(script).arg(name);
    crate::support::client_facts(
        cmd,
        server,
        user,
        name,
        "the Python clients (.ci/run installs them)",
    )
    .await
}

fn fact<'a>(facts: &'a BTreeMap<String, Vec<String>>, key: &str) -> Vec<&'a str> {
    facts
        .get(key)
        .unwrap_or_else(|| panic!("no {key} in {facts:?}"))
        .iter()
        .map(String::as_str)
        .collect()
}

const ALL_TABLES: &str = "dbo.dim_doctors,dbo.dim_patient,dbo.fact_events";
const CAROL_TABLES: &str = "dbo.dim_patient,dbo.fact_events";

/// What every client must show: bob sees 40 patients with masked names, carol the 20
/// Portuguese ones (even ids) with their names, and only her two tables.
fn check_common(name: &str, user: &str, facts: &BTreeMap<String, Vec<String>>) {
    let (patients, first_id) = if user == "carol" {
        ("20", "2")
    } else {
        ("40", "1")
    };
    assert_eq!(fact(facts, "patients"), [patients], "{name} as {user}");
    let first = fact(facts, "first");
    assert_eq!(first[0], first_id, "{name} as {user}");
    if user == "bob" {
        assert!(
            !first[1].contains("Test Patient"),
            "{name}: bob's names are masked: {first:?}"
        );
    } else {
        assert_eq!(first[1], "Test Patient 2", "{name} as {user}");
    }
    if let Some(tables) = facts.get("tables") {
        let expected = if user == "carol" {
            CAROL_TABLES
        } else {
            ALL_TABLES
        };
        assert_eq!(tables.join(""), expected, "{name} as {user}: tables listed");
    }
    for (key, value) in facts {
        if key.starts_with("copy ") {
            assert_eq!(
                value.get(1).map(String::as_str),
                Some("same"),
                "{name} as {user}: {key}"
            );
        }
    }
}

#[tokio::test]
async fn psycopg3_queries_binary_results_and_copy_in_three_formats() {
    let server = TestServer::start_with(Setup::tls_required()).await;
    for user in ["bob", "carol"] {
        let facts = client(&server, "psycopg", user).await;
        check_common("psycopg", user, &facts);
        for format in ["text", "binary", "csv"] {
            assert!(facts.contains_key(&format!("copy {format}")), "{facts:?}");
        }
        assert_eq!(
            fact(&facts, "csv_header"),
            ["id_patient,name,age,address,country"]
        );
        let expected_rows = if user == "carol" { "20" } else { "40" };
        assert_eq!(fact(&facts, "copy_table"), [expected_rows]);
        assert_eq!(
            fact(&facts, "binary"),
            ["int", "str", "Decimal", "date", "datetime", "bool", "float"]
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn psycopg2_queries_and_copy_expert() {
    let server = TestServer::start_with(Setup::tls_required()).await;
    for user in ["bob", "carol"] {
        let facts = client(&server, "psycopg2", user).await;
        check_common("psycopg2", user, &facts);
        assert!(facts.contains_key("copy csv") && facts.contains_key("copy text"));
    }
    server.stop().await;
}

#[tokio::test]
async fn asyncpg_connects_prepares_and_copies() {
    let server = TestServer::start_with(Setup::tls_required()).await;
    for user in ["bob", "carol"] {
        let facts = client(&server, "asyncpg", user).await;
        check_common("asyncpg", user, &facts);
        assert_eq!(fact(&facts, "prepared"), ["name", "age"]);
        assert_eq!(fact(&facts, "param_types"), ["int4", "text"]);
        assert_eq!(
            fact(&facts, "binary"),
            ["int", "str", "Decimal", "date", "datetime", "bool", "float"]
        );
        assert!(facts.contains_key("copy csv") && facts.contains_key("copy text"));
    }
    server.stop().await;
}

#[tokio::test]
async fn sqlalchemy_inspector_and_autoload_with_both_dialects() {
    let server = TestServer::start_with(Setup::tls_required()).await;
    for dialect in ["sqlalchemy-psycopg", "sqlalchemy-psycopg2"] {
        for user in ["bob", "carol"] {
            let facts = client(&server, dialect, user).await;
            check_common(dialect, user, &facts);
            assert_eq!(fact(&facts, "schemas"), ["dbo"], "{dialect} as {user}");
            let doctors_visible = if user == "carol" { "False" } else { "True" };
            assert_eq!(fact(&facts, "has_table"), ["True", doctors_visible]);
            assert_eq!(
                fact(&facts, "autoload"),
                ["id_patient,name,sex,age,address,country,number,email"]
            );
            assert!(
                fact(&facts, "columns")[0].starts_with("id_patient:INTEGER:False,name:TEXT:True"),
                "{facts:?}"
            );
            for empty in [
                "views",
                "matviews",
                "sequences",
                "fks",
                "indexes",
                "unique",
                "checks",
                "enums",
            ] {
                assert_eq!(fact(&facts, empty), ["0"], "{dialect} {empty}");
            }
            let tables = if user == "carol" { "2" } else { "3" };
            assert_eq!(fact(&facts, "multi_columns"), [tables]);
            // Ages are (id * 7) % 100; carol sees the even ids.
            let older = (1..=40)
                .filter(|i| user != "carol" || i % 2 == 0)
                .filter(|i| (i * 7) % 100 > 10)
                .count()
                .to_string();
            assert_eq!(fact(&facts, "older_than_10"), [older.as_str()]);
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn pandas_read_sql_and_read_sql_table() {
    let server = TestServer::start_with(Setup::tls_required()).await;
    for user in ["bob", "carol"] {
        let facts = client(&server, "pandas", user).await;
        check_common("pandas", user, &facts);
        let rows = if user == "carol" { "20" } else { "40" };
        assert_eq!(
            fact(&facts, "read_sql_table"),
            [rows, "id_patient,name,sex,age,address,country,number,email"]
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn polars_read_database_uri_with_connectorx_and_adbc() {
    let server = TestServer::start_with(Setup::tls_required()).await;
    for engine in ["polars-connectorx", "polars-adbc"] {
        for user in ["bob", "carol"] {
            let facts = client(&server, engine, user).await;
            check_common(engine, user, &facts);
            let events = fact(&facts, "events");
            // Carol's row filter keeps the visits of her patients: half of the 200.
            let n = if user == "carol" { "100" } else { "200" };
            assert_eq!(events[0], n, "{engine} as {user}");
            assert_eq!(events[1], "Int64,Date,String", "{engine} as {user}");
        }
    }
    server.stop().await;
}
