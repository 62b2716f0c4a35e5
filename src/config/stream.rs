//! `stream:` of `lakehouse.yaml`: where pharmacy device events come from.

use serde::Deserialize;

use super::{DurationSpec, EnvString};

/// `stream:` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamSpec {
    /// Largest micro-batch, in events.
    pub max_batch_events: Option<usize>,
    /// Longest wait before a partial micro-batch is committed.
    pub max_batch_delay: Option<DurationSpec>,
    /// Events queued for the writer at most (default 4 x `max_batch_events`); beyond it HTTP
    /// answers 503 and the brokers' consumers stop fetching until the lake catches up.
    pub max_queued_events: Option<usize>,
    /// The built-in HTTP endpoint.
    pub http: Option<HttpSourceSpec>,
    /// An MQTT broker.
    pub mqtt: Option<MqttSourceSpec>,
    /// A NATS JetStream stream.
    pub nats: Option<NatsSourceSpec>,
}

/// `stream.http:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSourceSpec {
    /// Address of `POST /v1/pharmacy/events`.
    pub listen: String,
    /// Devices allowed to post, each with its bearer token.
    pub devices: Vec<DeviceSpec>,
    /// Largest request body in bytes (default 16 MiB); larger requests get 413.
    #[serde(default)]
    pub max_body_bytes: Option<usize>,
}

/// One device and its bearer token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceSpec {
    /// Device id.
    pub id: String,
    /// Bearer token (use `${ENV}`).
    pub token: EnvString,
}

/// `stream.mqtt:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttSourceSpec {
    /// `mqtt://host:port`.
    pub url: EnvString,
    /// Topic filter, one topic per device (`pharmacy/+/events`).
    pub topic: String,
    /// Client id of the persistent session.
    #[serde(default)]
    pub client_id: Option<String>,
}

/// `stream.nats:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsSourceSpec {
    /// `nats://host:port`.
    pub url: EnvString,
    /// JetStream stream name.
    pub stream: String,
    /// Subject filter.
    pub subject: String,
    /// Durable consumer name.
    pub durable: String,
}
