//! The NATS JetStream source: a durable pull consumer with explicit acknowledgements, sent only
//! after the batch holding the message is committed. A message whose batch failed (or whose
//! consumer died) is redelivered by the server after `ack_wait`, and dropped as a duplicate if it
//! was already committed.
//!
//! Flow control: each pull asks for at most about one batch of events, the consumer's
//! `max_ack_pending` bounds what is delivered and not yet acknowledged, and no pull is made while
//! the writer's queue is full.

use std::time::Duration;

use async_nats::jetstream;
use async_nats::jetstream::consumer::{AckPolicy, pull};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::event::{Record, split_payloads};
use super::writer::{BatchSettings, Ingress};
use super::{Error, Result};
use crate::config::stream::NatsSourceSpec;

/// How long a partial group of messages waits for more before it goes to the writer.
const GROUP_DELAY: Duration = Duration::from_millis(20);

/// How long the server waits for an acknowledgement before redelivering.
const ACK_WAIT: Duration = Duration::from_secs(10);

/// Consumes until `shutdown`, reconnecting after failures.
pub async fn run(
    spec: NatsSourceSpec,
    ingress: Ingress,
    settings: BatchSettings,
    shutdown: CancellationToken,
) {
    loop {
        match session(&spec, &ingress, &settings, &shutdown).await {
            Ok(()) => return,
            Err(err) => tracing::warn!(error = %err, "NATS source: reconnecting in 1 s"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Connects to `url` and creates the stream `name` over `subject` if it does not exist.
pub async fn stream_context(
    url: &str,
    name: &str,
    subject: &str,
) -> Result<(jetstream::Context, jetstream::stream::Stream)> {
    let client = async_nats::connect(url)
        .await
        .map_err(|err| Error::Source(format!("cannot connect to NATS: {err}")))?;
    let context = jetstream::new(client);
    let stream = context
        .get_or_create_stream(jetstream::stream::Config {
            name: name.to_string(),
            subjects: vec![subject.to_string()],
            ..Default::default()
        })
        .await
        .map_err(|err| Error::Source(format!("JetStream stream {name}: {err}")))?;
    Ok((context, stream))
}

async fn session(
    spec: &NatsSourceSpec,
    ingress: &Ingress,
    settings: &BatchSettings,
    shutdown: &CancellationToken,
) -> Result<()> {
    let (_context, stream) = stream_context(spec.url.as_str(), &spec.stream, &spec.subject).await?;
    let consumer: jetstream::consumer::PullConsumer = stream
        .get_or_create_consumer(
            &spec.durable,
            pull::Config {
                durable_name: Some(spec.durable.clone()),
                ack_policy: AckPolicy::Explicit,
                ack_wait: ACK_WAIT,
                filter_subject: spec.subject.clone(),
                max_ack_pending: (settings.max_queued_events * 2) as i64,
                ..Default::default()
            },
        )
        .await
        .map_err(|err| Error::Source(format!("JetStream consumer {}: {err}", spec.durable)))?;
    tracing::info!(stream = %spec.stream, durable = %spec.durable, "NATS source connected");
    // The consumer's stream keeps one pull request open at a time, of about one writer batch:
    // messages may carry many events each, so bytes bound it too (never below 1 MiB, or a large
    // message could never be delivered). While this task waits for room in the writer's queue
    // the stream is not polled, no new pull is made, and the server holds the rest.
    let fetch = settings.max_batch_events.clamp(1, 10_000);
    let fetch_bytes = (settings.max_batch_events * 256).max(1 << 20);
    let mut stream = consumer
        .stream()
        .max_messages_per_batch(fetch)
        .max_bytes_per_batch(fetch_bytes)
        .expires(Duration::from_secs(5))
        .messages()
        .await
        .map_err(|err| Error::Source(format!("JetStream pull: {err}")))?;
    loop {
        let mut messages = Vec::new();
        let mut deadline = tokio::time::Instant::now() + Duration::from_secs(3600);
        while messages.len() < fetch {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = tokio::time::sleep_until(deadline), if !messages.is_empty() => break,
                message = stream.next() => match message {
                    Some(Ok(message)) => {
                        if messages.is_empty() {
                            deadline = tokio::time::Instant::now() + GROUP_DELAY;
                        }
                        messages.push(message);
                    }
                    Some(Err(err)) => {
                        return Err(Error::Source(format!("JetStream pull: {err}")));
                    }
                    None => return Err(Error::Source("JetStream pull ended".to_string())),
                },
            }
        }
        let received_at = std::time::Instant::now();
        let mut records = Vec::new();
        for message in &messages {
            let offset = match message.info() {
                Ok(info) => format!("{}:{}", info.stream, info.stream_sequence),
                Err(_) => message.subject.to_string(),
            };
            for (i, payload) in split_payloads(&message.payload).into_iter().enumerate() {
                records.push(Record {
                    payload,
                    source: "nats",
                    offset: format!("{offset}/{i}"),
                    device: None,
                    received_at,
                });
            }
        }
        let reply = match ingress.submit(records).await {
            Ok(reply) => reply,
            Err(_) => return Ok(()),
        };
        tokio::spawn(async move {
            if let Ok(Ok(_)) = reply.await {
                for message in &messages {
                    if let Err(err) = message.ack().await {
                        // Not acknowledged: redelivered after ack_wait and dropped as duplicate.
                        tracing::debug!(error = %err, "JetStream ack failed");
                        return;
                    }
                }
            }
            // A failed batch is not acknowledged: the server redelivers after ack_wait.
        });
    }
}
