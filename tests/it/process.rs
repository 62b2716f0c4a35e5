//! The server as a process: memory while streaming big results, CPU after cancel, shutdown.

use std::time::{Duration, Instant};

use tokio::process::Command;

use crate::support::{ChildServer, Setup};

/// 50,000 × 200 visits = 10 million rows.
const TEN_MILLION: &str = "select g.value, e.id, e.id_patient, e.date_of_service from generate_series(1, 50000) g, dbo.fact_events e";

/// Samples the child's RSS every 50 ms until `done` resolves; returns the peak.
async fn peak_rss_while<F: std::future::Future>(server: &ChildServer, done: F) -> (u64, F::Output) {
    tokio::pin!(done);
    let mut peak = server.rss();
    loop {
        tokio::select! {
            output = &mut done => return (peak.max(server.rss()), output),
            _ = tokio::time::sleep(Duration::from_millis(50)) => peak = peak.max(server.rss()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_million_rows_stream_in_bounded_memory() {
    let server = ChildServer::spawn(Setup::default()).await;
    // Warm up (catalog, first plan) so the baseline includes the steady state.
    let warm = Command::new("psql")
        .arg(server.url("alice", "disable"))
        .args(["-At", "-c", "select count(*) from dbo.fact_events"])
        .output()
        .await
        .unwrap();
    crate::support::succeeded(&warm, "psql");
    let baseline = server.rss();

    // Simple protocol (psql), text rows, discarded by the client as they arrive.
    let started = Instant::now();
    let (peak, output) = peak_rss_while(
        &server,
        Command::new("psql")
            .arg(server.url("alice", "disable"))
            .args(["-At", "-o", "/dev/null", "-c", TEN_MILLION])
            .output(),
    )
    .await;
    let output = output.unwrap();
    crate::support::succeeded(&output, "psql");
    let growth = peak.saturating_sub(baseline);
    eprintln!(
        "psql, 10M rows: {:.1} s, RSS baseline {} MB, peak {} MB, growth {} MB",
        started.elapsed().as_secs_f64(),
        baseline >> 20,
        peak >> 20,
        growth >> 20
    );
    assert!(growth < 100 << 20, "RSS grew by {} MB", growth >> 20);

    // Extended protocol, binary results, Execute with max_rows = 0 (psycopg's default).
    let script = format!(
        "import psycopg\n\
         n = 0\n\
         with psycopg.connect({url:?}) as c:\n\
         \x20   for row in c.cursor(binary=True).stream({TEN_MILLION:?}):\n\
         \x20       n += 1\n\
         print(n)\n",
        url = server.url("alice", "disable"),
    );
    let baseline = server.rss();
    let started = Instant::now();
    let (peak, output) = peak_rss_while(
        &server,
        Command::new("python3").arg("-c").arg(&script).output(),
    )
    .await;
    let output = output.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "10000000\n",
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let growth = peak.saturating_sub(baseline);
    eprintln!(
        "psycopg binary extended, 10M rows: {:.1} s, RSS growth {} MB",
        started.elapsed().as_secs_f64(),
        growth >> 20
    );
    assert!(growth < 100 << 20, "RSS grew by {} MB", growth >> 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canceled_query_stops_using_cpu_and_sigterm_shuts_down() {
    let mut server = ChildServer::spawn(Setup::default()).await;
    let client = server.connect("alice").await;
    let heavy = "select count(*) from dbo.fact_events a, dbo.fact_events b, dbo.fact_events c, dbo.fact_events d where a.id + b.id + c.id + d.id = -1";
    let token = client.cancel_token();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        token.cancel_query(tokio_postgres::NoTls).await.unwrap();
    });
    let err = client.simple_query(heavy).await.unwrap_err();
    assert_eq!(err.code().unwrap().code(), "57014");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = server.cpu_seconds();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let used = server.cpu_seconds() - before;
    assert!(
        used < 0.3,
        "{used} s of CPU in the second after cancel: the query kept running"
    );

    // SIGTERM: the server stops accepting, ends sessions and exits 0.
    let pid = server.pid() as i32;
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(15), server.child.wait())
        .await
        .expect("no exit after SIGTERM")
        .unwrap();
    assert!(exit.success(), "{exit:?}");
}
