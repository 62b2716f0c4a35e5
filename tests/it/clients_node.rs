//! node-postgres (`pg`) with `pg-cursor`, the real packages from npm: TLS, parameters, a
//! cursor paged with Execute's row limit, typed values, and the policy (bob's names masked,
//! carol's rows and tables filtered).

use std::collections::BTreeMap;
use std::process::Command;

use crate::support::{Setup, TestServer};

async fn node(server: &TestServer, user: &str) -> BTreeMap<String, Vec<String>> {
    let script =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients/node_clients.js");
    let root = Command::new("npm")
        .args(["root", "-g"])
        .output()
        .expect("npm runs");
    let mut cmd = Command::new("node");
    cmd.env("NODE_PATH", String::from_utf8_lossy(&root.stdout).trim())
        .arg(script);
    crate::support::client_facts(
        cmd,
        server,
        user,
        "node-postgres",
        "node, pg and pg-cursor (.ci/run installs them)",
    )
    .await
}

#[tokio::test]
async fn node_postgres_queries_cursors_and_types() {
    let server = TestServer::start_with(Setup::tls_required()).await;
    let bob = node(&server, "bob").await;
    assert_eq!(
        bob["tables"],
        ["dbo.dim_doctors,dbo.dim_patient,dbo.fact_events"]
    );
    assert_eq!(bob["patients"], ["40"]);
    assert_eq!(bob["first"][0], "1");
    assert!(!bob["first"][1].contains("Test Patient"), "{bob:?}");
    // int4 and text; 200 visits in pages of 7.
    assert_eq!(bob["types"], ["number", "23,25"]);
    assert_eq!(bob["cursor"], ["200", "29"]);
    assert_eq!(bob["typed"], ["true", "2.50", "true", "[1,2]"]);
    let carol = node(&server, "carol").await;
    assert_eq!(carol["tables"], ["dbo.dim_patient,dbo.fact_events"]);
    assert_eq!(carol["patients"], ["20"]);
    assert_eq!(carol["first"], ["2", "Test Patient 2"]);
    assert_eq!(carol["cursor"], ["100", "15"]);
    server.stop().await;
}
