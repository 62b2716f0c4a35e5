//! The built-in HTTP source: `POST /v1/pharmacy/events` with one event, a JSON array or NDJSON.
//!
//! Each device authenticates with its bearer token. The answer comes only after the batch holding
//! the events is committed (a durable acknowledgement), with how many were accepted, dropped as
//! duplicates and dead-lettered. When the writer's queue is full the answer is 503 with
//! `Retry-After`: resending is always safe, since duplicates are dropped by `event_id`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;

use super::event::{Record, split_payloads};
use super::writer::{Ingress, SubmitError};
use super::{Error, Result};
use crate::config::stream::HttpSourceSpec;

/// Default largest request body.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Seconds a refused device should wait before retrying.
const RETRY_AFTER_SECONDS: &str = "1";

struct HttpState {
    /// (device id, token bytes).
    devices: Vec<(String, Vec<u8>)>,
    ingress: Ingress,
    requests: AtomicU64,
}

/// The devices that may post: id and bearer token.
pub type Devices = Vec<(String, Vec<u8>)>;

/// The listen address and the devices with their tokens, or why `spec` cannot serve (also
/// what `lakehouse check` reports).
pub fn validate(spec: &HttpSourceSpec) -> Result<(SocketAddr, Devices)> {
    let listen: SocketAddr = spec.listen.parse().map_err(|_| {
        Error::Config(format!(
            "stream.http.listen {:?} is not host:port",
            spec.listen
        ))
    })?;
    if spec.devices.is_empty() {
        return Err(Error::Config(
            "stream.http.devices is empty: no device could post".to_string(),
        ));
    }
    let mut devices = Vec::new();
    for device in &spec.devices {
        let token = device.token.as_str().as_bytes().to_vec();
        if token.len() < 8 {
            return Err(Error::Config(format!(
                "the token of device {:?} is shorter than 8 characters",
                device.id
            )));
        }
        devices.push((device.id.clone(), token));
    }
    Ok((listen, devices))
}

/// Binds `spec.listen` and serves until `shutdown`; returns the bound address and the task.
pub async fn start(
    spec: &HttpSourceSpec,
    ingress: Ingress,
    shutdown: CancellationToken,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let (listen, devices) = validate(spec)?;
    let state = Arc::new(HttpState {
        devices,
        ingress,
        requests: AtomicU64::new(0),
    });
    let max_body = spec.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
    let router = axum::Router::new()
        .route("/v1/pharmacy/events", post(post_events))
        .route("/healthz", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|err| Error::Source(format!("cannot listen on {listen}: {err}")))?;
    let addr = listener.local_addr()?;
    tracing::info!(listen = %addr, "pharmacy device endpoint ready");
    if !addr.ip().is_loopback() {
        // Bearer tokens cross the network in this endpoint's plain HTTP.
        tracing::warn!(
            listen = %addr,
            "the pharmacy device endpoint speaks plain HTTP: put a TLS proxy in front of it"
        );
    }
    let task = tokio::spawn(async move {
        let result = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(err) = result {
            tracing::error!(error = %err, "pharmacy device endpoint failed");
        }
    });
    Ok((addr, task))
}

/// The device whose token the request carries; every token is compared in constant time.
fn authenticate(state: &HttpState, headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))?
        .trim()
        .as_bytes();
    let mut found = None;
    for (id, expected) in &state.devices {
        if bool::from(expected.as_slice().ct_eq(token)) {
            found = Some(id.clone());
        }
    }
    found
}

fn json_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

fn retry_later(message: &str) -> Response {
    let mut response = json_error(StatusCode::SERVICE_UNAVAILABLE, message);
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(RETRY_AFTER_SECONDS),
    );
    response
}

async fn post_events(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(device) = authenticate(&state, &headers) else {
        let mut response = json_error(
            StatusCode::UNAUTHORIZED,
            "a valid device bearer token is required",
        );
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    };
    let payloads = split_payloads(&body);
    if payloads.is_empty() {
        return json_error(StatusCode::BAD_REQUEST, "the body holds no event");
    }
    let request = state.requests.fetch_add(1, Ordering::Relaxed);
    let received_at = std::time::Instant::now();
    let records = payloads
        .into_iter()
        .enumerate()
        .map(|(i, payload)| Record {
            payload,
            source: "http",
            offset: format!("{device}/{request}/{i}"),
            device: Some(device.clone()),
            received_at,
        })
        .collect();
    let reply = match state.ingress.try_submit(records) {
        Ok(reply) => reply,
        Err(SubmitError::Busy) => return retry_later("the lake is behind; retry later"),
        Err(SubmitError::Closed) => return retry_later("the stream is shutting down"),
    };
    match reply.await {
        Ok(Ok(outcome)) => (StatusCode::OK, axum::Json(outcome)).into_response(),
        Ok(Err(message)) => retry_later(&message),
        Err(_) => retry_later("the stream stopped before committing"),
    }
}
