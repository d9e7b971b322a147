//! `GET /health`: the state of each dependency as JSON; 503 when the database is down,
//! `"degraded"` (still 200: the server keeps serving) when Redis is configured but failing.

use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::AppState;
use crate::rate_limit::LimiterHealth;

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
    let overall = match (database_up, &limiter_health) {
        (false, _) => "unavailable",
        (true, LimiterHealth::Degraded { .. }) => "degraded",
        (true, _) => "ok",
    };
    let body = json!({
        "status": overall,
        "version": env!("CARGO_PKG_VERSION"),
        "database": database,
        "cache": cache,
        "broker": in_process("no AMQP_URL: dispatch stays in the database outbox"),
    });
    let status = if database_up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}
