//! `GET /health`: the state of each dependency as JSON; 503 when the database is down,
//! `"degraded"` (still 200: the server keeps serving) when Redis or RabbitMQ is configured
//! but failing.

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::app::AppState;
use crate::rate_limit::LimiterHealth;
use crmbet_integrations::BreakerState;

/// Answers the health check; open to everyone, like the gRPC health service.
pub async fn health(State(state): State<AppState>) -> Response {
    let started = Instant::now();
    let database = match state.store.ping().await {
        Ok(()) => json!({
            "status": "up",
            "backend": format!("{:?}", state.store.backend()).to_lowercase(),
            "latency_ms": started.elapsed().as_secs_f64() * 1000.0,
        }),
        Err(error) => {
            tracing::warn!(%error, "health check: database is down");
            json!({ "status": "down", "error": "database is unreachable" })
        }
    };
    let database_up = database["status"] == "up";
    let in_process = |what: &str| json!({ "status": "in-process", "detail": what });
    let limiter_health = state.rate_limiter.health().await;
    let cache = match &limiter_health {
        LimiterHealth::InProcess => {
            in_process("no REDIS_URL: reads are cached and rate limits counted per instance")
        }
        LimiterHealth::Shared => json!({
            "status": "up",
            "detail": "reads are cached and rate limits shared through redis",
        }),
        LimiterHealth::Degraded { reason } => json!({
            "status": "degraded",
            "reason": reason,
            "detail": "redis is failing: reads go to the database and rate limits are counted per instance until it answers",
        }),
    };
    let broker = match &state.config.amqp_url {
        None => in_process("no AMQP_URL: dispatch stays in the database outbox"),
        Some(url) => match probe_broker(url).await {
            Ok(()) => json!({ "status": "up", "detail": "rabbitmq answers the AMQP handshake" }),
            Err(reason) => json!({
                "status": "degraded",
                "reason": reason,
                "detail": "campaign messages wait in the database outbox until the broker answers",
            }),
        },
    };
    let broker_degraded = broker["status"] == "degraded";
    let smartico = smartico_health(&state);
    let smartico_degraded = smartico["status"] == "degraded";
    let overall = match (database_up, &limiter_health) {
        (false, _) => "unavailable",
        (true, LimiterHealth::Degraded { .. }) => "degraded",
        (true, _) if broker_degraded || smartico_degraded => "degraded",
        (true, _) => "ok",
    };
    let body = json!({
        "status": overall,
        "version": env!("CARGO_PKG_VERSION"),
        "database": database,
        "cache": cache,
        "broker": broker,
        "smartico": smartico,
    });
    let status = if database_up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// The circuit breaker in front of Smartico: open means Smartico kept failing and campaign
/// messages wait in the outbox (or the queue) until it answers again.
fn smartico_health(state: &AppState) -> serde_json::Value {
    let Some(breaker) = &state.delivery_breaker else {
        return json!({ "status": "off", "detail": "no CRMBET_SMARTICO_URL: campaign messages wait in the outbox" });
    };
    match breaker.state() {
        BreakerState::Closed { failures } => json!({
            "status": "up", "circuit": "closed", "recent_failures": failures,
        }),
        BreakerState::HalfOpen => json!({
            "status": "degraded", "circuit": "half-open",
            "detail": "smartico kept failing; a trial request decides whether delivery resumes",
        }),
        BreakerState::Open { reason, retry_in } => json!({
            "status": "degraded", "circuit": "open", "reason": reason,
            "retry_in_ms": retry_in.as_millis() as u64,
            "detail": "smartico keeps failing: campaign messages wait until it answers",
        }),
    }
}

/// How long the broker has to answer the handshake before it counts as down.
const BROKER_PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// Whether the broker of `amqp_url` answers: a TCP connection and, for plain `amqp://`, the
/// AMQP 0-9-1 protocol header answered by a method frame (a port that merely accepts TCP,
/// as while RabbitMQ boots, does not count). `amqps://` is checked up to the connection.
async fn probe_broker(amqp_url: &str) -> Result<(), String> {
    let (tls, rest) = match amqp_url.split_once("://") {
        Some(("amqp", rest)) => (false, rest),
        Some(("amqps", rest)) => (true, rest),
        _ => return Err("AMQP_URL is not an amqp:// or amqps:// URL".to_owned()),
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let host_and_port = authority.rsplit('@').next().unwrap_or_default();
    let address = if host_and_port
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.is_empty() && port.bytes().all(|byte| byte.is_ascii_digit()))
    {
        host_and_port.to_owned()
    } else {
        format!("{host_and_port}:{}", if tls { 5671 } else { 5672 })
    };
    let probe = async {
        let mut connection = TcpStream::connect(&address)
            .await
            .map_err(|error| format!("cannot connect to {address}: {error}"))?;
        if tls {
            return Ok(());
        }
        connection
            .write_all(b"AMQP\x00\x00\x09\x01")
            .await
            .map_err(|error| format!("{address} closed the connection: {error}"))?;
        let mut frame_type = [0u8; 1];
        connection
            .read_exact(&mut frame_type)
            .await
            .map_err(|error| format!("{address} did not answer the AMQP handshake: {error}"))?;
        if frame_type[0] == 1 {
            Ok(())
        } else {
            Err(format!("{address} does not speak AMQP 0-9-1"))
        }
    };
    tokio::time::timeout(BROKER_PROBE_TIMEOUT, probe)
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "{address} did not answer within {} ms",
                BROKER_PROBE_TIMEOUT.as_millis()
            ))
        })
}
