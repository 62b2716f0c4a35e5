//! Prometheus metrics on `metrics.listen`: the exposition passes `promtool check metrics`, a
//! real Prometheus server scrapes it, and the series say what happened (statements by kind,
//! outcome and SQLSTATE, failed logins, served versions, the process).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{Setup, TestServer, rows, sqlstate};

/// `GET path` over plain HTTP/1.1; the body.
async fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut response = Vec::new();
    socket.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8(response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    if head.to_lowercase().contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_string()
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
    out
}

/// The value of the first sample whose line starts with `series` (name and labels as written).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_what_happened() {
    let server = TestServer::start_with(Setup::server(
        "  tls:\n    mode: prefer\nmetrics:\n  listen: 127.0.0.1:0\n",
    ))
    .await;
    let metrics = server.metrics_addr.expect("metrics.listen is set");
    let before = http_get(metrics, "/metrics").await;
    let selects_ok =
        "lakehouse_statements_total{kind=\"select\",outcome=\"ok\",sqlstate=\"00000\"}";
    let missing =
        "lakehouse_statements_total{kind=\"refused\",outcome=\"error\",sqlstate=\"42P01\"}";
    let failed_logins = "lakehouse_connections_total{outcome=\"authentication_failed\"}";
    let base = |series: &str| sample(&before, series).unwrap_or(0.0);
    let (ok0, missing0, failed0) = (base(selects_ok), base(missing), base(failed_logins));

    let alice = server.connect("alice").await;
    for _ in 0..3 {
        rows(&alice, "select count(*) from dim_patient").await;
    }
    assert_eq!(
        sqlstate(&alice, "select * from no_such_table").await,
        "42P01"
    );
    assert!(server.try_connect("alice", "wrong password").await.is_err());

    let text = http_get(metrics, "/metrics").await;
    assert!(sample(&text, selects_ok).unwrap() >= ok0 + 3.0, "{text}");
    assert!(sample(&text, missing).unwrap() >= missing0 + 1.0, "{text}");
    assert!(sample(&text, failed_logins).unwrap() >= failed0 + 1.0);
    assert_eq!(
        sample(&text, "lakehouse_table_version{table=\"dbo.fact_events\"}"),
        Some(1.0),
        "fact_events was written in two commits"
    );
    let age = sample(
        &text,
        "lakehouse_table_snapshot_age_seconds{table=\"dbo.dim_patient\"}",
    )
    .expect("snapshot age");
    assert!((0.0..600.0).contains(&age), "{age}");
    assert!(sample(&text, "process_resident_memory_bytes").unwrap() > 1e6);
    assert!(sample(&text, "lakehouse_connections_open").unwrap() >= 1.0);
    assert!(
        text.contains("lakehouse_statement_duration_seconds_bucket{le=\"0.001\",kind=\"select\"}")
            || text.contains(
                "lakehouse_statement_duration_seconds_bucket{kind=\"select\",le=\"0.001\"}"
            ),
        "{text}"
    );
    // No user names, statement text or values in the labels.
    assert!(!text.contains("alice") && !text.contains("no_such_table"));

    // promtool, Prometheus's own checker, accepts the exposition.
    let dir = tempfile::tempdir().unwrap();
    let exposition = dir.path().join("metrics.txt");
    std::fs::write(&exposition, &text).unwrap();
    let check = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&exposition).unwrap())
        .output()
        .expect("promtool (Debian package prometheus; .ci/run installs it)");
    assert!(
        check.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    // A real Prometheus server scrapes it.
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: lakehouse\n    static_configs:\n      - targets: ['{metrics}']\n"
        ),
    )
    .unwrap();
    let mut prometheus = tokio::process::Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.path().join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("prometheus (Debian package prometheus; .ci/run installs it)");
    let api: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut answer = String::new();
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if tokio::net::TcpStream::connect(api).await.is_err() {
            continue;
        }
        answer = http_get(
            api,
            "/api/v1/query?query=lakehouse_statements_total%7Bkind%3D%22select%22%2Coutcome%3D%22ok%22%7D",
        )
        .await;
        if answer.contains("\"result\":[{") {
            break;
        }
    }
    let _ = prometheus.kill().await;
    assert!(
        answer.contains("\"result\":[{") && answer.contains("\"sqlstate\":\"00000\""),
        "Prometheus never scraped the statements: {answer}"
    );
    server.stop().await;
}
