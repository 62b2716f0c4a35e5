//! The MQTT source: QoS 1 on a persistent session (`clean_session = false`), one topic per device
//! (`pharmacy/<device>/events`), and manual acknowledgements sent only after the batch holding
//! the message is committed. A message whose batch failed is never acknowledged: the session is
//! dropped and resumed, and the broker delivers it again.
//!
//! Flow control: the broker keeps at most its in-flight window of unacknowledged messages per
//! client (Mosquitto: `max_inflight_messages`), and while the writer's queue is full this task
//! stops reading the socket.

use std::time::Duration;

use bytes::Bytes;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, Publish, QoS};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::event::{Record, split_payloads};
use super::writer::Ingress;
use super::{Error, Result};
use crate::config::stream::MqttSourceSpec;

/// Messages handed to the writer together, at most.
const GROUP_MESSAGES: usize = 1_000;
/// How long a partial group waits for more messages.
const GROUP_DELAY: Duration = Duration::from_millis(20);

/// Consumes until `shutdown`, reconnecting after failures.
pub async fn run(spec: MqttSourceSpec, ingress: Ingress, shutdown: CancellationToken) {
    loop {
        match session(&spec, &ingress, &shutdown).await {
            Ok(()) => return,
            Err(err) => tracing::warn!(error = %err, "MQTT source: reconnecting in 1 s"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// The MQTT connection options of `spec`.
pub fn options(url: &str, client_id: &str, clean_session: bool) -> Result<MqttOptions> {
    let parsed =
        url::Url::parse(url).map_err(|err| Error::Config(format!("invalid MQTT url: {err}")))?;
    if !matches!(parsed.scheme(), "mqtt" | "tcp") {
        return Err(Error::Config(
            "the MQTT url must start with mqtt:// or tcp://".to_string(),
        ));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| Error::Config("the MQTT url has no host".to_string()))?;
    let mut options = MqttOptions::new(client_id, host, parsed.port().unwrap_or(1883));
    options
        .set_clean_session(clean_session)
        .set_manual_acks(true)
        .set_keep_alive(Duration::from_secs(30))
        .set_max_packet_size(16 * 1024 * 1024, 16 * 1024 * 1024);
    if !parsed.username().is_empty() {
        options.set_credentials(parsed.username(), parsed.password().unwrap_or_default());
    }
    Ok(options)
}

/// The device a topic names (`pharmacy/<device>/events`, or any prefix before `<device>/events`).
fn topic_device(topic: &str) -> Option<String> {
    let parts: Vec<&str> = topic.split('/').collect();
    match parts.as_slice() {
        [.., device, "events"] if !device.is_empty() => Some((*device).to_string()),
        _ => None,
    }
}

async fn session(
    spec: &MqttSourceSpec,
    ingress: &Ingress,
    shutdown: &CancellationToken,
) -> Result<()> {
    let client_id = spec
        .client_id
        .clone()
        .unwrap_or_else(|| "lakehouse-stream".to_string());
    let options = options(spec.url.as_str(), &client_id, false)?;
    let (client, mut eventloop) = AsyncClient::new(options, 4096);
    client
        .subscribe(spec.topic.clone(), QoS::AtLeastOnce)
        .await
        .map_err(|err| Error::Source(format!("MQTT subscribe: {err}")))?;
    let (failed_tx, mut failed_rx) = mpsc::channel::<()>(1);
    let mut pending: Vec<Publish> = Vec::new();
    let mut group_deadline = tokio::time::Instant::now() + GROUP_DELAY;
    loop {
        let flush = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            _ = failed_rx.recv() => {
                return Err(Error::Source(
                    "a batch failed; resuming the session so the broker redelivers".to_string(),
                ));
            }
            () = tokio::time::sleep_until(group_deadline), if !pending.is_empty() => true,
            event = eventloop.poll() => match event {
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    if pending.is_empty() {
                        group_deadline = tokio::time::Instant::now() + GROUP_DELAY;
                    }
                    pending.push(publish);
                    pending.len() >= GROUP_MESSAGES
                }
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    tracing::info!(session_present = ack.session_present, topic = %spec.topic, "MQTT source connected");
                    false
                }
                Ok(_) => false,
                Err(err) => return Err(Error::Source(format!("MQTT connection: {err}"))),
            },
        };
        if !flush {
            continue;
        }
        let publishes = std::mem::take(&mut pending);
        let received_at = std::time::Instant::now();
        let mut records = Vec::new();
        for publish in &publishes {
            let device = topic_device(&publish.topic);
            let offset = format!("{}#{}", publish.topic, publish.pkid);
            let payload = Bytes::copy_from_slice(&publish.payload);
            for (i, payload) in split_payloads(&payload).into_iter().enumerate() {
                records.push(Record {
                    payload,
                    source: "mqtt",
                    offset: format!("{offset}/{i}"),
                    device: device.clone(),
                    received_at,
                });
            }
        }
        // Waiting here for room in the writer's queue is the flow control: the socket is not
        // read, and the broker's in-flight window fills up.
        let reply = match ingress.submit(records).await {
            Ok(reply) => reply,
            Err(_) => return Ok(()),
        };
        let client = client.clone();
        let failed = failed_tx.clone();
        tokio::spawn(async move {
            match reply.await {
                Ok(Ok(_)) => {
                    for publish in &publishes {
                        if client.ack(publish).await.is_err() {
                            // The connection is gone; the broker redelivers on the next session.
                            return;
                        }
                    }
                }
                _ => {
                    let _ = failed.try_send(());
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn device_from_topic() {
        assert_eq!(
            super::topic_device("pharmacy/p-01/events").as_deref(),
            Some("p-01")
        );
        assert_eq!(super::topic_device("pharmacy/p-01"), None);
    }
}
