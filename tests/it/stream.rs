//! The pharmacy device stream against the real HTTP endpoint, Mosquitto and NATS JetStream:
//! exactly the distinct valid events in bronze and gold, daily totals equal to a recount, dead
//! letters counted, refusals (401, 413, 503), freshness through pgwire, and a `kill -9` of the
//! consumer mid-stream.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use lakehouse::config::stream::{DeviceSpec, HttpSourceSpec, MqttSourceSpec, StreamSpec};
use lakehouse::config::{DurationSpec, EnvString};
use lakehouse::lake::StorageLocation;
use lakehouse::stream::simulate::{SimulateOptions, post_once};
use lakehouse::stream::{BRONZE_PATH, DAILY_PATH, DEAD_LETTER_PATH, FACT_PATH};
use tokio_util::sync::CancellationToken;

use crate::ingest_support::lake_query;
use crate::support::{Setup, TestServer, rows};

const NATS: &str = "nats://127.0.0.1:4222";
const MQTT: &str = "mqtt://127.0.0.1:1883";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

/// (ndc, day) -> (total_qty, n_events).
type DailyTotals = BTreeMap<(String, String), (i64, i64)>;

/// Test events: `distinct` valid ones, `duplicates` copies of earlier ones, `bad` invalid ones,
/// shuffled in a fixed way; and what gold must hold: (ndc, day) -> (total_qty, n_events).
struct Events {
    lines: Vec<String>,
    daily: DailyTotals,
    distinct: usize,
    duplicates: usize,
    bad: usize,
}

fn events(device: &str, distinct: usize, duplicates: usize, bad: usize) -> Events {
    let ndcs = lakehouse::stream::builtin_ndcs();
    let today = chrono::Utc::now().date_naive();
    let mut lines = Vec::new();
    let mut daily = BTreeMap::new();
    for i in 0..distinct {
        let day = today - chrono::Duration::days((i % 3) as i64 * 7);
        let ndc = ndcs[i * 7 % ndcs.len()].clone();
        let qty = (i % 10 + 1) as i64;
        let entry = daily
            .entry((ndc.clone(), day.to_string()))
            .or_insert((0, 0));
        entry.0 += qty;
        entry.1 += 1;
        lines.push(
            serde_json::json!({
                "event_id": uuid::Uuid::new_v4().to_string(),
                "device_id": device,
                "event_time": chrono::Utc::now().to_rfc3339(),
                "id_patient": 1 + i % 1500,
                "ndc": ndc,
                "qty": qty,
                "date_distribution": day.to_string(),
            })
            .to_string(),
        );
    }
    for i in 0..duplicates {
        let copy = lines[i * 13 % distinct].clone();
        lines.insert((i * 31) % lines.len(), copy);
    }
    for i in 0..bad {
        let text = match i % 4 {
            0 => "{\"event_id\": \"broken".to_string(),
            1 => lines[0].replace("\"qty\":", "\"qty\":100,\"x\":"),
            2 => serde_json::json!({"event_id": uuid::Uuid::new_v4().to_string(), "device_id": device}).to_string(),
            _ => serde_json::json!({
                "event_id": uuid::Uuid::new_v4().to_string(),
                "device_id": device,
                "event_time": chrono::Utc::now().to_rfc3339(),
                "id_patient": 1,
                "ndc": "00000-0000",
                "qty": 1,
                "date_distribution": today.to_string(),
            })
            .to_string(),
        };
        lines.insert((i * 97) % lines.len(), text);
    }
    Events {
        lines,
        daily,
        distinct,
        duplicates,
        bad,
    }
}

/// The daily table, and the fact table recounted per (ndc, day), as text rows.
async fn daily_and_recount(lake: &Path) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
    let daily = lake_query(
        lake,
        DAILY_PATH,
        "SELECT ndc, CAST(day AS VARCHAR), total_qty, n_events FROM t ORDER BY 1, 2",
    )
    .await;
    let recount = lake_query(
        lake,
        FACT_PATH,
        "SELECT ndc, CAST(date_distribution AS VARCHAR), SUM(CAST(qty AS BIGINT)), COUNT(*) \
         FROM t GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .await;
    (daily, recount)
}

async fn count(lake: &Path, path: &str, sql: &str) -> i64 {
    if !lake.join(path).join("_delta_log").is_dir() {
        return 0;
    }
    lake_query(lake, path, sql).await[0][0].parse().unwrap()
}

/// Bronze and fact hold exactly `distinct` distinct events, and the daily table equals both
/// `expected` (when given) and a recount of the fact table.
async fn assert_exactly_once(lake: &Path, distinct: usize, expected: Option<&DailyTotals>) {
    let all = "SELECT COUNT(*) FROM t";
    let unique = "SELECT COUNT(DISTINCT event_id) FROM t";
    assert_eq!(
        count(lake, BRONZE_PATH, all).await,
        distinct as i64,
        "bronze rows"
    );
    assert_eq!(
        count(lake, BRONZE_PATH, unique).await,
        distinct as i64,
        "bronze ids"
    );
    assert_eq!(
        count(lake, FACT_PATH, all).await,
        distinct as i64,
        "fact rows"
    );
    assert_eq!(
        count(lake, FACT_PATH, unique).await,
        distinct as i64,
        "fact ids"
    );
    let (daily, recount) = daily_and_recount(lake).await;
    assert_eq!(
        daily, recount,
        "daily totals equal a recount of the fact table"
    );
    if let Some(expected) = expected {
        let expected: Vec<Vec<String>> = expected
            .iter()
            .map(|((ndc, day), (qty, n))| {
                vec![ndc.clone(), day.clone(), qty.to_string(), n.to_string()]
            })
            .collect();
        assert_eq!(daily, expected, "daily totals equal what was sent");
    }
}

fn lake_location(dir: &Path) -> StorageLocation {
    StorageLocation::parse(&dir.display().to_string(), Default::default()).unwrap()
}

async fn wait_for_port(port: u16) {
    let until = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < until, "the stream endpoint did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The stream inside `serve`: HTTP posts with 5% duplicates and 1% malformed land exactly once;
/// resending everything changes nothing; a new event is visible through pgwire within 2 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_http_in_serve_is_exactly_once_and_fresh() {
    let port = free_port();
    let token = "token-of-device-1";
    let setup = Setup {
        server_yaml: format!(
            "  tls:\n    mode: prefer\nstream:\n  max_batch_delay: 100ms\n  http:\n    listen: 127.0.0.1:{port}\n    devices:\n      - id: dev-1\n        token: {token}\n      - id: dev-2\n        token: token-of-device-2\n"
        ),
        ..Setup::default()
    };
    let server = TestServer::start_with(setup).await;
    wait_for_port(port).await;
    let url = format!("http://127.0.0.1:{port}");
    let sent = events("dev-1", 1880, 100, 20);
    assert_eq!(sent.lines.len(), 2000);
    assert_eq!(sent.duplicates, 100);

    let mut totals = (0, 0, 0);
    for chunk in sent.lines.chunks(100) {
        let response = post_once(&url, token, chunk.join("\n").as_bytes())
            .await
            .unwrap();
        assert_eq!(response.status, 200, "{}", response.body);
        let outcome: serde_json::Value = serde_json::from_str(&response.body).unwrap();
        totals.0 += outcome["accepted"].as_u64().unwrap();
        totals.1 += outcome["duplicates"].as_u64().unwrap();
        totals.2 += outcome["dead_lettered"].as_u64().unwrap();
    }
    assert_eq!(totals, (1880, 100, 20));
    // The metrics count them by source and outcome (process-wide: at least this test's).
    let metrics = lakehouse::metrics::global().encode();
    for (outcome, n) in [
        ("accepted", 1880.0),
        ("duplicate", 100.0),
        ("dead_lettered", 20.0),
    ] {
        let value: f64 = metrics
            .lines()
            .find(|l| {
                l.starts_with("lakehouse_stream_events_total{")
                    && l.contains("source=\"http\"")
                    && l.contains(&format!("outcome=\"{outcome}\""))
            })
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {outcome} events in\n{metrics}"));
        assert!(value >= n, "{outcome}: {value}");
    }
    // ...and so does sys.stream_sources.
    let alice = server.connect("alice").await;
    let http = rows(
        &alice,
        "select accepted >= 1880, duplicates >= 100, dead_lettered >= 20, \
         events_per_second > 0, last_commit > now() - interval '1 minute', queued >= 0 \
         from sys.stream_sources where source = 'http'",
    )
    .await;
    assert_eq!(http, vec![vec![Some("t".to_string()); 6]]);
    let lake = server.lake();
    assert_exactly_once(&lake, sent.distinct, Some(&sent.daily)).await;
    assert_eq!(
        count(&lake, DEAD_LETTER_PATH, "SELECT COUNT(*) FROM t").await,
        sent.bad as i64
    );
    let reasons = lake_query(
        &lake,
        DEAD_LETTER_PATH,
        "SELECT reason, COUNT(*) FROM t GROUP BY reason ORDER BY reason",
    )
    .await;
    assert!(
        reasons.iter().any(|r| r[0].starts_with("malformed JSON")),
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|r| r[0] == "unknown ndc"), "{reasons:?}");

    // A device resending everything (say after a lost answer) changes nothing but dead letters.
    let body = sent.lines.join("\n");
    let response = post_once(&url, token, body.as_bytes()).await.unwrap();
    assert_eq!(response.status, 200, "{}", response.body);
    let outcome: serde_json::Value = serde_json::from_str(&response.body).unwrap();
    assert_eq!(outcome["accepted"], 0);
    assert_eq!(outcome["duplicates"], 1980);
    assert_eq!(outcome["dead_lettered"], 20);
    assert_exactly_once(&lake, sent.distinct, Some(&sent.daily)).await;

    // An event of another device with this device's token is refused (dead letter).
    let other = events("dev-2", 1, 0, 0);
    let response = post_once(&url, token, other.lines[0].as_bytes())
        .await
        .unwrap();
    let outcome: serde_json::Value = serde_json::from_str(&response.body).unwrap();
    assert_eq!(outcome["dead_lettered"], 1);

    // Through pgwire: the gold tables are served, joined to nothing but themselves here.
    let client = server.connect("alice").await;
    let totals = rows(
        &client,
        "SELECT SUM(n_events), SUM(total_qty) FROM medicine_distribution_daily",
    )
    .await;
    let expected_qty: i64 = sent.daily.values().map(|(q, _)| q).sum();
    assert_eq!(
        totals,
        vec![vec![
            Some("1880".to_string()),
            Some(expected_qty.to_string())
        ]]
    );

    // Freshness: received to visible through pgwire, with the registry handed each commit.
    let fresh = events("dev-1", 1, 0, 0);
    let started = Instant::now();
    let response = post_once(&url, token, fresh.lines[0].as_bytes())
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    loop {
        let n = rows(
            &client,
            "SELECT SUM(n_events) FROM medicine_distribution_daily",
        )
        .await;
        if n[0][0].as_deref() == Some("1881") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "not visible within 2 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(2),
        "visible after {elapsed:?}"
    );
    // "Medicines distributed today" is a plain query (the fixture has no dim_medicine to join).
    // A DATE literal, not CURRENT_DATE: serving fails on `day = CURRENT_DATE` over a Delta table
    // ("invoke should not be called on a simplified current_date() function"), a serving bug.
    let today = rows(
        &client,
        &format!(
            "SELECT ndc, total_qty FROM medicine_distribution_daily WHERE day = DATE '{}'",
            chrono::Utc::now().date_naive()
        ),
    )
    .await;
    assert!(today.len() > 1, "{}", today.len());
    server.stop().await;
}

fn http_spec(port: u16, token: &str, max_queued: usize, delay: Duration) -> StreamSpec {
    StreamSpec {
        max_batch_events: Some(10_000),
        max_batch_delay: Some(DurationSpec(delay)),
        max_queued_events: Some(max_queued),
        http: Some(HttpSourceSpec {
            listen: format!("127.0.0.1:{port}"),
            devices: vec![DeviceSpec {
                id: "dev-1".to_string(),
                token: EnvString::new(token),
            }],
            max_body_bytes: Some(4096),
        }),
        mqtt: None,
        nats: None,
    }
}

/// Refusals: no or wrong token (401), a body over the limit (413), and a full queue (503 with
/// Retry-After), after which the retry is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_http_refuses_unauthenticated_oversized_and_when_behind() {
    let dir = tempfile::tempdir().unwrap();
    let token = "token-of-device-1";
    let shutdown = CancellationToken::new();
    let running = lakehouse::stream::start(
        lake_location(dir.path()),
        &http_spec(0, token, 10, Duration::from_secs(3)),
        None,
        shutdown.clone(),
    )
    .await
    .unwrap();
    let url = format!("http://{}", running.http_addr.unwrap());
    let sent = events("dev-1", 12, 0, 0);
    let one = sent.lines[0].as_bytes();

    for wrong in ["", "token-of-device-2", "token-of-device-1x"] {
        let response = post_once(&url, wrong, one).await.unwrap();
        assert_eq!(response.status, 401, "token {wrong:?}");
    }
    let big = vec![b' '; 8192];
    let response = post_once(&url, token, &big).await.unwrap();
    assert_eq!(response.status, 413);

    // Ten events fill the queue; the batch waits its 3 s delay, so the next post is refused.
    let first = sent.lines[1..11].join("\n");
    let url2 = url.clone();
    let pending =
        tokio::spawn(async move { post_once(&url2, token, first.as_bytes()).await.unwrap() });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let response = post_once(&url, token, one).await.unwrap();
    assert_eq!(response.status, 503, "{}", response.body);
    assert_eq!(response.retry_after.as_deref(), Some("1"));
    let response = pending.await.unwrap();
    assert_eq!(response.status, 200, "{}", response.body);
    let response = post_once(&url, token, one).await.unwrap();
    assert_eq!(response.status, 200, "{}", response.body);
    assert_exactly_once(dir.path(), 11, None).await;
    shutdown.cancel();
    running.wait().await;
}

/// MQTT (real Mosquitto, QoS 1, persistent session, acks after commit): simulated devices with
/// 5% duplicates and 1% bad events land exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_mqtt_is_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let id = unique();
    let prefix = format!("test-{id}/pharmacy");
    let spec = StreamSpec {
        max_batch_delay: Some(DurationSpec(Duration::from_millis(200))),
        mqtt: Some(MqttSourceSpec {
            url: EnvString::new(MQTT),
            topic: format!("{prefix}/+/events"),
            client_id: Some(format!("lakehouse-test-{id}")),
        }),
        ..StreamSpec::default()
    };
    let shutdown = CancellationToken::new();
    let running =
        lakehouse::stream::start(lake_location(dir.path()), &spec, None, shutdown.clone())
            .await
            .unwrap();
    // MQTT keeps nothing for a subscription that does not exist yet.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let report = lakehouse::stream::simulate::run(
        &SimulateOptions {
            to: MQTT.to_string(),
            rate: 0.0,
            events: Some(3000),
            duration: None,
            devices: 5,
            device_id: None,
            duplicates_pct: 5.0,
            bad_pct: 1.0,
            token: None,
            batch: 20,
            connections: 1,
            topic_prefix: Some(prefix),
            nats_stream: None,
            measure_lake: None,
            quiet: true,
        },
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(report.new_events + report.duplicates + report.bad, 3000);
    assert!(report.duplicates > 0 && report.bad > 0, "{report:?}");
    let until = Instant::now() + Duration::from_secs(120);
    use std::sync::atomic::Ordering::Relaxed;
    while running.stats.accepted.load(Relaxed) < report.new_events
        || running.stats.dead_lettered.load(Relaxed) < report.bad
    {
        assert!(
            Instant::now() < until,
            "not all events arrived: {:?}",
            running.stats
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(running.stats.accepted.load(Relaxed), report.new_events);
    assert!(
        running.stats.duplicates.load(Relaxed) >= report.duplicates,
        "{report:?} {:?}",
        running.stats
    );
    assert_exactly_once(dir.path(), report.new_events as usize, None).await;
    assert_eq!(
        count(dir.path(), DEAD_LETTER_PATH, "SELECT COUNT(*) FROM t").await,
        report.bad as i64
    );
    shutdown.cancel();
    running.wait().await;
}

/// Waits until bronze holds `events` rows and the dead letters (counted by `dead_sql`) `bad`,
/// failing after `timeout`.
async fn wait_for_lake(lake: &Path, events: i64, bad: i64, dead_sql: &str, timeout: Duration) {
    let until = Instant::now() + timeout;
    loop {
        let bronze = count(lake, BRONZE_PATH, "SELECT COUNT(*) FROM t").await;
        let dead = count(lake, DEAD_LETTER_PATH, dead_sql).await;
        if bronze >= events && dead >= bad {
            return;
        }
        assert!(
            Instant::now() < until,
            "after restart: {bronze} events, {dead} dead letters"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `lakehouse stream` as a child process.
struct StreamChild {
    child: tokio::process::Child,
}

impl StreamChild {
    async fn spawn(config: &Path, ready: &str) -> StreamChild {
        let (child, ()) = crate::support::spawn_until("stream", config, |line| {
            line.contains(ready).then_some(())
        })
        .await;
        StreamChild { child }
    }

    async fn kill9(mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }
}

/// The number of commits in a table's log.
fn commits(table: &Path) -> usize {
    std::fs::read_dir(table.join("_delta_log"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                .count()
        })
        .unwrap_or(0)
}

/// MQTT (real Mosquitto, persistent session): `kill -9` of `lakehouse stream` while devices
/// publish, and a restart, give exactly the distinct valid events: unacknowledged messages come
/// again, and those committed before the kill are dropped as duplicates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_mqtt_survives_kill_9_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    std::fs::create_dir_all(&lake).unwrap();
    let id = unique();
    let prefix = format!("test-{id}/pharmacy");
    let config = dir.path().join("lakehouse.yaml");
    std::fs::write(
        &config,
        format!(
            "lake:\n  root: {}\nstream:\n  max_batch_events: 200\n  max_batch_delay: 100ms\n  mqtt:\n    url: {MQTT}\n    topic: {prefix}/+/events\n    client_id: lakehouse-test-{id}\n",
            lake.display()
        ),
    )
    .unwrap();
    let child = StreamChild::spawn(&config, "MQTT source connected").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let devices = tokio::spawn(async move {
        lakehouse::stream::simulate::run(
            &SimulateOptions {
                to: MQTT.to_string(),
                rate: 1500.0,
                events: Some(4000),
                duration: None,
                devices: 5,
                device_id: None,
                duplicates_pct: 5.0,
                bad_pct: 1.0,
                token: None,
                batch: 10,
                connections: 1,
                topic_prefix: Some(prefix),
                nats_stream: None,
                measure_lake: None,
                quiet: true,
            },
            CancellationToken::new(),
        )
        .await
        .unwrap()
    });
    let until = Instant::now() + Duration::from_secs(60);
    while commits(&lake.join(BRONZE_PATH)) < 3 {
        assert!(Instant::now() < until, "no bronze commits");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill9().await;
    let report = devices.await.unwrap();
    let before = count(&lake, BRONZE_PATH, "SELECT COUNT(*) FROM t").await;
    assert!(
        before > 0 && before < report.new_events as i64,
        "killed mid-stream: {before} of {}",
        report.new_events
    );
    let child = StreamChild::spawn(&config, "MQTT source connected").await;
    wait_for_lake(
        &lake,
        report.new_events as i64,
        report.bad as i64,
        "SELECT COUNT(*) FROM t",
        Duration::from_secs(120),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    child.kill9().await;
    assert_exactly_once(&lake, report.new_events as usize, None).await;
}

/// NATS JetStream (real server, durable pull consumer, acks after commit): `kill -9` of
/// `lakehouse stream` mid-stream and a restart give exactly the distinct valid events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_nats_survives_kill_9_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    std::fs::create_dir_all(&lake).unwrap();
    let id = unique();
    let stream_name = format!("LH_TEST_{id}");
    let prefix = format!("t{id}.pharmacy");
    let report = lakehouse::stream::simulate::run(
        &SimulateOptions {
            to: NATS.to_string(),
            rate: 0.0,
            events: Some(10_000),
            duration: None,
            devices: 5,
            device_id: None,
            duplicates_pct: 5.0,
            bad_pct: 1.0,
            token: None,
            batch: 1,
            connections: 1,
            topic_prefix: Some(prefix.clone()),
            nats_stream: Some(stream_name.clone()),
            measure_lake: None,
            quiet: true,
        },
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(report.new_events + report.duplicates + report.bad, 10_000);

    let config = dir.path().join("lakehouse.yaml");
    std::fs::write(
        &config,
        format!(
            "lake:\n  root: {}\nstream:\n  max_batch_events: 500\n  max_batch_delay: 100ms\n  nats:\n    url: {NATS}\n    stream: {stream_name}\n    subject: {prefix}.*.events\n    durable: lakehouse-{id}\n",
            lake.display()
        ),
    )
    .unwrap();
    let child = StreamChild::spawn(&config, "NATS source connected").await;
    // Kill once a few batches are in, well before the end.
    let until = Instant::now() + Duration::from_secs(60);
    while commits(&lake.join(BRONZE_PATH)) < 3 {
        assert!(Instant::now() < until, "no bronze commits");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill9().await;
    let before = count(&lake, BRONZE_PATH, "SELECT COUNT(*) FROM t").await;
    assert!(
        before > 0 && before < report.new_events as i64,
        "killed mid-stream: {before} of {}",
        report.new_events
    );

    let child = StreamChild::spawn(&config, "NATS source connected").await;
    let dead_offsets = "SELECT COUNT(DISTINCT source_offset) FROM t";
    wait_for_lake(
        &lake,
        report.new_events as i64,
        report.bad as i64,
        dead_offsets,
        Duration::from_secs(180),
    )
    .await;
    // Let redeliveries of the killed batch come and go.
    tokio::time::sleep(Duration::from_secs(1)).await;
    child.kill9().await;
    assert_exactly_once(&lake, report.new_events as usize, None).await;
    // A dead letter may be written again after the kill (it has no event_id to deduplicate),
    // but each bad message is there, once per stream sequence.
    assert_eq!(
        count(&lake, DEAD_LETTER_PATH, dead_offsets).await,
        report.bad as i64
    );

    let (context, _) =
        lakehouse::stream::nats::stream_context(NATS, &stream_name, &format!("{prefix}.*.events"))
            .await
            .unwrap();
    let _ = context.delete_stream(&stream_name).await;
}

/// A crash after the bronze commit and before the gold ones: gold is rebuilt from the bronze
/// batches it has not applied (here, gold lost entirely), with the same exact totals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_replays_bronze_into_gold_on_start() {
    let dir = tempfile::tempdir().unwrap();
    let token = "token-of-device-1";
    let sent = events("dev-1", 500, 25, 5);
    for round in 0..2 {
        let shutdown = CancellationToken::new();
        let running = lakehouse::stream::start(
            lake_location(dir.path()),
            &http_spec(0, token, 10_000, Duration::from_millis(50)),
            None,
            shutdown.clone(),
        )
        .await
        .unwrap();
        let url = format!("http://{}", running.http_addr.unwrap());
        if round == 0 {
            for chunk in sent.lines.chunks(10) {
                let response = post_once(&url, token, chunk.join("\n").as_bytes())
                    .await
                    .unwrap();
                assert_eq!(response.status, 200, "{}", response.body);
            }
            shutdown.cancel();
            running.wait().await;
            assert_exactly_once(dir.path(), sent.distinct, Some(&sent.daily)).await;
            std::fs::remove_dir_all(dir.path().join(FACT_PATH)).unwrap();
            std::fs::remove_dir_all(dir.path().join(DAILY_PATH)).unwrap();
        } else {
            let until = Instant::now() + Duration::from_secs(30);
            while count(dir.path(), DAILY_PATH, "SELECT COUNT(*) FROM t").await == 0 {
                assert!(Instant::now() < until, "gold was not replayed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert_exactly_once(dir.path(), sent.distinct, Some(&sent.daily)).await;
            // And the stream goes on from there, still deduplicating against bronze.
            for chunk in sent.lines.chunks(10) {
                let response = post_once(&url, token, chunk.join("\n").as_bytes())
                    .await
                    .unwrap();
                let outcome: serde_json::Value = serde_json::from_str(&response.body).unwrap();
                assert_eq!(outcome["accepted"], 0, "{outcome}");
            }
            assert_exactly_once(dir.path(), sent.distinct, Some(&sent.daily)).await;
            shutdown.cancel();
            running.wait().await;
        }
    }
}

/// The demo's stream: the HTTP source with the demo device, and its simulated device trickling
/// events through real HTTP into the lake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_demo_device_trickles_events() {
    let dir = tempfile::tempdir().unwrap();
    let shutdown = CancellationToken::new();
    let running = lakehouse::stream::start_demo(
        lake_location(dir.path()),
        "127.0.0.1:0".parse().unwrap(),
        lakehouse::stream::DEMO_DEVICE_TOKEN,
        50.0,
        None,
        shutdown.clone(),
    )
    .await
    .unwrap();
    let url = format!("http://{}", running.http_addr.unwrap());
    let until = Instant::now() + Duration::from_secs(30);
    use std::sync::atomic::Ordering::Relaxed;
    while running.stats.accepted.load(Relaxed) < 20 {
        assert!(Instant::now() < until, "{:?}", running.stats);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A real device may post with the demo token too (as the printed curl line shows).
    let event = events(lakehouse::stream::DEMO_DEVICE_ID, 1, 0, 0);
    let response = post_once(
        &url,
        lakehouse::stream::DEMO_DEVICE_TOKEN,
        event.lines[0].as_bytes(),
    )
    .await
    .unwrap();
    assert_eq!(response.status, 200, "{}", response.body);
    shutdown.cancel();
    running.wait().await;
    let accepted = count(dir.path(), FACT_PATH, "SELECT COUNT(*) FROM t").await;
    assert!(accepted >= 21, "{accepted}");
    assert_eq!(
        count(dir.path(), DEAD_LETTER_PATH, "SELECT COUNT(*) FROM t").await,
        0
    );
}
