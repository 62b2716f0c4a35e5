//! `lakehouse simulate`: pharmacy devices sending events over HTTP, MQTT or NATS JetStream, with
//! the original's distribution (today half the time, a day of the last month otherwise), at a
//! rate, optionally with duplicates and bad events; and the benchmark of what the stream
//! sustains: events per second, and freshness (sent to visible in gold) measured by polling the
//! lake's `medicine_distribution_daily`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::{Error, Result};

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimulateOptions {
    /// `http://host:port`, `mqtt://host:port` or `nats://host:port`.
    pub to: String,
    /// Events per second in total (0 = as fast as the target takes them).
    pub rate: f64,
    /// Stop after this many events.
    pub events: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Number of devices (`sim-001`, ...); over HTTP all post with the one token.
    pub devices: usize,
    /// Device id instead of `sim-NNN` (HTTP: the device of the token).
    pub device_id: Option<String>,
    /// Percent of events sent again (same `event_id`).
    pub duplicates_pct: f64,
    /// Percent of bad events (malformed JSON, out-of-range qty, unknown NDC, missing field).
    pub bad_pct: f64,
    /// HTTP bearer token.
    pub token: Option<String>,
    /// Events per request or message (NDJSON when more than one).
    pub batch: usize,
    /// HTTP requests in flight at once, each on its own keep-alive connection.
    pub connections: usize,
    /// MQTT topic prefix (`<prefix>/<device>/events`) or NATS subject prefix
    /// (`<prefix>.<device>.events`); default `pharmacy`.
    pub topic_prefix: Option<String>,
    /// NATS: the JetStream stream created (if missing) over `<prefix>.*.events`.
    pub nats_stream: Option<String>,
    /// The lake root to poll for freshness (benchmark).
    pub measure_lake: Option<crate::lake::StorageLocation>,
    /// No progress lines.
    pub quiet: bool,
}

/// What a simulation sent and measured.
#[derive(Debug, Clone, Default)]
pub struct SimulateReport {
    /// Distinct valid events sent.
    pub new_events: u64,
    /// Duplicates sent.
    pub duplicates: u64,
    /// Bad events sent.
    pub bad: u64,
    /// Seconds spent sending.
    pub send_seconds: f64,
    /// Distinct valid events visible in gold per second, from the first send to the last one
    /// visible (only when measuring).
    pub committed_per_second: Option<f64>,
    /// Freshness percentiles in milliseconds (p50, p95, max), sent to visible in gold.
    pub freshness_ms: Option<(f64, f64, f64)>,
    /// HTTP: acknowledgement latency percentiles in milliseconds (p50, p95), which include the
    /// gold commits.
    pub ack_ms: Option<(f64, f64)>,
    /// HTTP 503 answers (the stream pushing back).
    pub retries: u64,
    /// Distinct valid events that became visible in gold (only when measuring).
    pub visible: Option<u64>,
}

impl SimulateReport {
    /// One line per figure.
    pub fn render(&self) -> String {
        let sent = self.new_events + self.duplicates + self.bad;
        let mut out = format!(
            "sent {sent} events ({} new, {} duplicates, {} bad) in {:.1}s: {:.0} events/s",
            self.new_events,
            self.duplicates,
            self.bad,
            self.send_seconds,
            sent as f64 / self.send_seconds.max(1e-9)
        );
        if self.retries > 0 {
            out.push_str(&format!(
                "\nthe stream pushed back {} times (503)",
                self.retries
            ));
        }
        if let Some((p50, p95)) = self.ack_ms {
            out.push_str(&format!(
                "\nHTTP ack after commit: p50 {p50:.0} ms, p95 {p95:.0} ms"
            ));
        }
        if let Some(visible) = self.visible {
            out.push_str(&format!(
                "\nvisible in gold: {visible} of {} new events",
                self.new_events
            ));
        }
        if let Some(rate) = self.committed_per_second {
            out.push_str(&format!(
                "\ncommitted to gold: {rate:.0} events/s sustained"
            ));
        }
        if let Some((p50, p95, max)) = self.freshness_ms {
            out.push_str(&format!(
                "\nfreshness (sent to visible in gold): p50 {p50:.0} ms, p95 {p95:.0} ms, max {max:.0} ms"
            ));
        }
        out
    }
}

/// Kinds of generated events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    New,
    Duplicate,
    Bad,
}

/// Makes events.
struct Generator {
    rng: StdRng,
    ndcs: Vec<String>,
    devices: Vec<String>,
    /// Recent events per device: a duplicate is resent by the device that sent it.
    recent: std::collections::HashMap<String, Vec<String>>,
    duplicates: f64,
    bad: f64,
    n: u64,
}

impl Generator {
    fn new(options: &SimulateOptions) -> Generator {
        let devices = match &options.device_id {
            Some(id) => vec![id.clone()],
            None => (1..=options.devices.max(1))
                .map(|i| format!("sim-{i:03}"))
                .collect(),
        };
        Generator {
            rng: StdRng::from_os_rng(),
            ndcs: super::builtin_ndcs(),
            devices,
            recent: std::collections::HashMap::new(),
            duplicates: (options.duplicates_pct / 100.0).clamp(0.0, 1.0),
            bad: (options.bad_pct / 100.0).clamp(0.0, 1.0),
            n: 0,
        }
    }

    fn device(&mut self) -> String {
        let i = self.rng.random_range(0..self.devices.len());
        self.devices[i].clone()
    }

    /// One event of the original's distribution, for `device`.
    fn valid(&mut self, device: &str) -> serde_json::Value {
        let now = chrono::Utc::now();
        let day = if self.rng.random_bool(0.5) {
            now.date_naive()
        } else {
            now.date_naive() - chrono::Duration::days(self.rng.random_range(1..=30))
        };
        let ndc = &self.ndcs[self.rng.random_range(0..self.ndcs.len().max(1))];
        serde_json::json!({
            "event_id": uuid::Uuid::new_v4().to_string(),
            "device_id": device,
            "event_time": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "id_patient": self.rng.random_range(1..=1500),
            "ndc": ndc,
            "qty": self.rng.random_range(1..=10),
            "date_distribution": day.format("%Y-%m-%d").to_string(),
        })
    }

    fn next(&mut self, device: &str) -> (String, Kind) {
        self.n += 1;
        let roll: f64 = self.rng.random();
        if roll < self.bad {
            let mut event = self.valid(device);
            let text = match self.n % 5 {
                0 => return ("{\"event_id\": \"broken".to_string(), Kind::Bad),
                1 => {
                    event["qty"] = serde_json::json!(0);
                    event.to_string()
                }
                2 => {
                    event["ndc"] = serde_json::json!("00000-0000");
                    event.to_string()
                }
                3 => {
                    if let Some(object) = event.as_object_mut() {
                        object.remove("id_patient");
                    }
                    event.to_string()
                }
                _ => {
                    event["qty"] = serde_json::json!("three");
                    event.to_string()
                }
            };
            return (text, Kind::Bad);
        }
        let recent = self.recent.entry(device.to_string()).or_default();
        if roll < self.bad + self.duplicates && !recent.is_empty() {
            let i = self.rng.random_range(0..recent.len());
            return (recent[i].clone(), Kind::Duplicate);
        }
        let text = self.valid(device).to_string();
        let recent = self.recent.entry(device.to_string()).or_default();
        if recent.len() < 1024 {
            recent.push(text.clone());
        } else {
            let i = self.rng.random_range(0..recent.len());
            recent[i] = text.clone();
        }
        (text, Kind::New)
    }
}

/// A message to send: its payload and its device.
struct Message {
    device: String,
    payload: Bytes,
}

/// Where messages go.
enum Sink {
    Http {
        host: String,
        token: String,
        clients: Vec<HttpClient>,
    },
    Mqtt {
        client: rumqttc::AsyncClient,
        prefix: String,
        acked: Arc<std::sync::atomic::AtomicU64>,
        task: tokio::task::JoinHandle<()>,
    },
    Nats {
        context: async_nats::jetstream::Context,
        prefix: String,
    },
}

/// Runs the simulation until the events or the duration are done, or `shutdown`.
pub async fn run(options: &SimulateOptions, shutdown: CancellationToken) -> Result<SimulateReport> {
    let url = url::Url::parse(&options.to)
        .map_err(|err| Error::Config(format!("invalid --to {:?}: {err}", options.to)))?;
    let prefix = options
        .topic_prefix
        .clone()
        .unwrap_or_else(|| "pharmacy".to_string());
    let host = format!(
        "{}:{}",
        url.host_str().unwrap_or("127.0.0.1"),
        url.port_or_known_default().unwrap_or(80)
    );
    let mut sink = match url.scheme() {
        "http" => Sink::Http {
            token: options.token.clone().ok_or_else(|| {
                Error::Config("--token is required to post over HTTP".to_string())
            })?,
            clients: (0..options.connections.max(1))
                .map(|_| HttpClient::new(&host))
                .collect(),
            host,
        },
        "mqtt" | "tcp" => {
            let id = format!("lakehouse-simulate-{}", uuid::Uuid::new_v4().simple());
            let mut mqtt = super::mqtt::options(&options.to, &id, true)?;
            mqtt.set_manual_acks(false).set_inflight(200);
            let (client, mut eventloop) = rumqttc::AsyncClient::new(mqtt, 1024);
            let acked = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let counter = acked.clone();
            let task = tokio::spawn(async move {
                loop {
                    match eventloop.poll().await {
                        Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) => {
                            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        Ok(_) => {}
                        Err(err) => {
                            // Also the normal end, after the disconnect below.
                            tracing::debug!(error = %err, "simulator MQTT connection");
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    }
                }
            });
            Sink::Mqtt {
                client,
                prefix,
                acked,
                task,
            }
        }
        "nats" => {
            let name = options
                .nats_stream
                .clone()
                .unwrap_or_else(|| "PHARMACY".to_string());
            let subject = format!("{prefix}.*.events");
            let (context, _) = super::nats::stream_context(&options.to, &name, &subject).await?;
            Sink::Nats { context, prefix }
        }
        other => {
            return Err(Error::Config(format!(
                "--to must be http://, mqtt:// or nats://, not {other}://"
            )));
        }
    };

    let mut options = options.clone();
    if url.scheme() == "http" && options.device_id.is_none() {
        // Over HTTP each event must carry the device of the token, or it is dead-lettered.
        if options.token.as_deref() == Some(super::DEMO_DEVICE_TOKEN) {
            options.device_id = Some(super::DEMO_DEVICE_ID.to_string());
        } else {
            return Err(Error::Config(
                "--device-id is required over HTTP: events must carry the device of the token"
                    .to_string(),
            ));
        }
    }
    let options = &options;
    let mut generator = Generator::new(options);
    let mut report = SimulateReport::default();
    let batch = options.batch.max(1);
    let started = Instant::now();
    let probe = match &options.measure_lake {
        Some(lake) => Some(FreshnessProbe::start(lake.clone()).await?),
        None => None,
    };
    // (distinct valid events sent so far, when): freshness is when gold reaches the count.
    let mut sent_marks: Vec<(u64, Instant)> = Vec::new();
    let mut ack_latencies: Vec<f64> = Vec::new();
    let mut in_flight = futures::stream::FuturesUnordered::new();
    let mut nats_acks = futures::stream::FuturesUnordered::new();
    let mut total: u64 = 0;
    let mut last_progress = Instant::now();
    'outer: loop {
        if shutdown.is_cancelled() {
            break;
        }
        if let Some(limit) = options.events
            && total >= limit
        {
            break;
        }
        if let Some(duration) = options.duration
            && started.elapsed() >= duration
        {
            break;
        }
        if options.rate > 0.0 {
            let due = started + Duration::from_secs_f64(total as f64 / options.rate);
            tokio::select! {
                () = shutdown.cancelled() => break 'outer,
                () = tokio::time::sleep_until(due.into()) => {}
            }
        }
        let device = generator.device();
        let mut texts = Vec::new();
        let n = match options.events {
            Some(limit) => (batch as u64).min(limit - total) as usize,
            None => batch,
        };
        for _ in 0..n {
            let (text, kind) = generator.next(&device);
            match kind {
                Kind::New => report.new_events += 1,
                Kind::Duplicate => report.duplicates += 1,
                Kind::Bad => report.bad += 1,
            }
            texts.push(text);
        }
        total += n as u64;
        let payload = if texts.len() == 1 {
            texts.pop().unwrap_or_default()
        } else {
            texts.join("\n")
        };
        let message = Message {
            device,
            payload: Bytes::from(payload),
        };
        match &mut sink {
            Sink::Http {
                host,
                token,
                clients,
            } => {
                // Up to `connections` requests in flight, each on its own keep-alive connection.
                if clients.is_empty()
                    && let Some(done) = futures::StreamExt::next(&mut in_flight).await
                {
                    let (client, latency, retries): (HttpClient, Result<f64>, u64) = done;
                    report.retries += retries;
                    ack_latencies.push(latency?);
                    clients.push(client);
                }
                let Some(mut client) = clients.pop() else {
                    break;
                };
                let token = token.clone();
                let host = host.clone();
                sent_marks.push((report.new_events, Instant::now()));
                in_flight.push(async move {
                    let sent = Instant::now();
                    let mut retries = 0;
                    loop {
                        match client
                            .post(&host, "/v1/pharmacy/events", &token, &message.payload)
                            .await
                        {
                            Ok(response) if response.status == 200 => {
                                return (
                                    client,
                                    Ok(sent.elapsed().as_secs_f64() * 1000.0),
                                    retries,
                                );
                            }
                            Ok(response) if matches!(response.status, 429 | 503) => {
                                retries += 1;
                                // Capped below the server's Retry-After (1 s): the benchmark
                                // measures how much the stream takes, not how long devices idle.
                                let wait = response
                                    .retry_after
                                    .and_then(|s| s.parse::<f64>().ok())
                                    .unwrap_or(1.0)
                                    .min(0.2);
                                tokio::time::sleep(Duration::from_secs_f64(wait)).await;
                            }
                            Ok(response) => {
                                return (
                                    client,
                                    Err(Error::Source(format!(
                                        "HTTP {}: {}",
                                        response.status, response.body
                                    ))),
                                    retries,
                                );
                            }
                            Err(err) => return (client, Err(err), retries),
                        }
                    }
                });
            }
            Sink::Mqtt { client, prefix, .. } => {
                let topic = format!("{prefix}/{}/events", message.device);
                client
                    .publish(
                        topic,
                        rumqttc::QoS::AtLeastOnce,
                        false,
                        message.payload.to_vec(),
                    )
                    .await
                    .map_err(|err| Error::Source(format!("MQTT publish: {err}")))?;
                sent_marks.push((report.new_events, Instant::now()));
            }
            Sink::Nats { context, prefix } => {
                let subject = format!("{prefix}.{}.events", message.device);
                let ack = context
                    .publish(subject, message.payload.clone())
                    .await
                    .map_err(|err| Error::Source(format!("NATS publish: {err}")))?;
                sent_marks.push((report.new_events, Instant::now()));
                nats_acks.push(ack.into_future());
                while nats_acks.len() > 512 {
                    if let Some(result) = futures::StreamExt::next(&mut nats_acks).await {
                        result.map_err(|err| Error::Source(format!("NATS publish: {err}")))?;
                    }
                }
            }
        }
        if !options.quiet && last_progress.elapsed() >= Duration::from_secs(5) {
            last_progress = Instant::now();
            eprintln!(
                "sent {total} events, {:.0} events/s",
                total as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    while let Some((_, latency, retries)) = futures::StreamExt::next(&mut in_flight).await {
        report.retries += retries;
        ack_latencies.push(latency?);
    }
    while let Some(result) = futures::StreamExt::next(&mut nats_acks).await {
        result.map_err(|err| Error::Source(format!("NATS publish: {err}")))?;
    }
    if let Sink::Mqtt {
        client,
        acked,
        task,
        ..
    } = &sink
    {
        // Wait until the broker has every message (QoS 1 acknowledgements), then disconnect.
        let published = sent_marks.len() as u64;
        let wait_until = Instant::now() + Duration::from_secs(30);
        while acked.load(std::sync::atomic::Ordering::Relaxed) < published
            && Instant::now() < wait_until
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = client.disconnect().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        task.abort();
    }
    report.send_seconds = started.elapsed().as_secs_f64();
    if !ack_latencies.is_empty() {
        report.ack_ms = Some((
            percentile(&mut ack_latencies, 0.50),
            percentile(&mut ack_latencies, 0.95),
        ));
    }
    if let Some(probe) = probe {
        let visible = probe
            .wait_for(report.new_events, Duration::from_secs(120), &shutdown)
            .await;
        report.visible = visible.last().map(|(n, _)| *n);
        let mut freshness: Vec<f64> = Vec::new();
        let mut last_visible = started;
        for (count, sent) in &sent_marks {
            if let Some(seen) = visible.iter().find(|(n, _)| *n >= *count).map(|(_, t)| *t) {
                freshness.push(seen.saturating_duration_since(*sent).as_secs_f64() * 1000.0);
                last_visible = last_visible.max(seen);
            }
        }
        if !freshness.is_empty() {
            let max = freshness.iter().copied().fold(0.0, f64::max);
            report.freshness_ms = Some((
                percentile(&mut freshness, 0.50),
                percentile(&mut freshness, 0.95),
                max,
            ));
            report.committed_per_second =
                Some(report.new_events as f64 / (last_visible - started).as_secs_f64().max(1e-9));
        }
    }
    Ok(report)
}

fn percentile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    let index = ((values.len() as f64 - 1.0) * q).round() as usize;
    values.get(index).copied().unwrap_or_default()
}

/// Polls gold `medicine_distribution_daily` and records when each count became visible.
struct FreshnessProbe {
    samples: Arc<parking_lot::Mutex<Vec<(u64, Instant)>>>,
    stop: CancellationToken,
}

impl FreshnessProbe {
    async fn start(lake: crate::lake::StorageLocation) -> Result<FreshnessProbe> {
        let location = lake.join(super::DAILY_PATH)?;
        let baseline = visible_events(&location).await.unwrap_or(0);
        let samples = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let (out, token) = (samples.clone(), stop.clone());
        tokio::spawn(async move {
            while !token.is_cancelled() {
                if let Ok(n) = visible_events(&location).await {
                    out.lock()
                        .push((n.saturating_sub(baseline), Instant::now()));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        Ok(FreshnessProbe { samples, stop })
    }

    /// Waits until `count` new events are visible (or `timeout`); returns the samples.
    async fn wait_for(
        self,
        count: u64,
        timeout: Duration,
        shutdown: &CancellationToken,
    ) -> Vec<(u64, Instant)> {
        let until = Instant::now() + timeout;
        while Instant::now() < until && !shutdown.is_cancelled() {
            if self.samples.lock().last().is_some_and(|(n, _)| *n >= count) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.stop.cancel();
        self.samples.lock().clone()
    }
}

/// Events visible in the daily table (the sum of `n_events`).
async fn visible_events(location: &crate::lake::StorageLocation) -> Result<u64> {
    let batches = super::writer::query(
        location,
        "SELECT CAST(COALESCE(SUM(n_events), 0) AS BIGINT) FROM t",
    )
    .await?;
    let value = batches
        .first()
        .filter(|b| b.num_rows() > 0)
        .map(|b| super::writer::integers(b, 0))
        .transpose()?
        .and_then(|v| v.first().copied())
        .unwrap_or(0);
    Ok(value.max(0) as u64)
}

/// A minimal HTTP/1.1 client with keep-alive, enough to post events (the crate has no HTTP
/// client dependency).
pub struct HttpClient {
    host: String,
    connection: Option<BufReader<TcpStream>>,
}

impl HttpClient {
    /// A client for `host:port`.
    pub fn new(host: &str) -> HttpClient {
        HttpClient {
            host: host.to_string(),
            connection: None,
        }
    }

    /// Posts `body` to `path` with a bearer token.
    pub async fn post(
        &mut self,
        host: &str,
        path: &str,
        token: &str,
        body: &[u8],
    ) -> Result<HttpResponse> {
        let head = request_head(host, path, token, body);
        // One retry on a fresh connection: the server may have closed an idle one.
        match self.exchange(head.as_bytes(), body).await {
            Ok(result) => Ok(result),
            Err(_) => {
                self.connection = None;
                self.exchange(head.as_bytes(), body).await
            }
        }
    }

    /// Sends one request (`head`, then `body`) and reads its answer.
    async fn exchange(&mut self, head: &[u8], body: &[u8]) -> Result<HttpResponse> {
        if self.connection.is_none() {
            let stream = TcpStream::connect(&self.host).await?;
            stream.set_nodelay(true)?;
            self.connection = Some(BufReader::new(stream));
        }
        let Some(connection) = self.connection.as_mut() else {
            return Err(Error::Source("no connection".to_string()));
        };
        connection.get_mut().write_all(head).await?;
        // The server may answer (413) and close before reading the whole body: read the answer
        // whatever happened to the write.
        let wrote = connection.get_mut().write_all(body).await;
        let response = read_response(connection).await;
        match response {
            Ok((response, close)) => {
                if close || wrote.is_err() {
                    self.connection = None;
                }
                Ok(response)
            }
            Err(err) => {
                self.connection = None;
                Err(err)
            }
        }
    }
}

/// The head of a POST of `body` to `path` with a bearer token.
fn request_head(host: &str, path: &str, token: &str, body: &[u8]) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// The `Retry-After` header.
    pub retry_after: Option<String>,
    /// The body.
    pub body: String,
}

async fn read_response(connection: &mut BufReader<TcpStream>) -> Result<(HttpResponse, bool)> {
    let mut line = String::new();
    connection.read_line(&mut line).await?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::Source("the server sent no HTTP status line".to_string()))?;
    let mut length = 0usize;
    let mut close = false;
    let mut retry_after = None;
    loop {
        line.clear();
        if connection.read_line(&mut line).await? == 0 {
            return Err(Error::Source(
                "the connection closed mid-response".to_string(),
            ));
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().unwrap_or(0);
            } else if name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close")
            {
                close = true;
            } else if name.eq_ignore_ascii_case("retry-after") {
                retry_after = Some(value.to_string());
            }
        }
    }
    let mut body = vec![0u8; length];
    connection.read_exact(&mut body).await?;
    Ok((
        HttpResponse {
            status,
            retry_after,
            body: String::from_utf8_lossy(&body).into_owned(),
        },
        close,
    ))
}

/// Posts one body to `url` (`http://host:port`) with `token` on a new connection.
pub async fn post_once(url: &str, token: &str, body: &[u8]) -> Result<HttpResponse> {
    let parsed =
        url::Url::parse(url).map_err(|err| Error::Config(format!("invalid url: {err}")))?;
    let host = format!(
        "{}:{}",
        parsed.host_str().unwrap_or("127.0.0.1"),
        parsed.port_or_known_default().unwrap_or(80)
    );
    let mut client = HttpClient::new(&host);
    // No retry: a post that may have reached the server is not sent twice.
    let head = request_head(&host, "/v1/pharmacy/events", token, body);
    client.exchange(head.as_bytes(), body).await
}
