//! `GET /health`: the state of each dependency as JSON; 503 when the database is down or
//! the server is draining before a shutdown (`"status": "draining"`),
//! `"degraded"` (still 200: the server keeps serving) when Redis or RabbitMQ is configured
//! but failing, or the server is saturated (heavy reads queued or refused, the database
//! pool exhausted).
//!
//! The database is pinged on a connection of its own, never through the shared pool, so the
//! check answers in milliseconds while the pool is busy, and says so.

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use crmbet_core::Error;
use crmbet_store::Store;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use crate::app::AppState;
use crate::rate_limit::LimiterHealth;
use crmbet_integrations::BreakerState;

/// How long the database may take to answer the health check's ping.
const PING_TIMEOUT: Duration = Duration::from_secs(1);

/// Pings the database on a reserved connection, opened at the first check and kept.
#[derive(Debug)]
pub(crate) struct DatabaseProbe {
    store: Store,
    reserved: OnceCell<Store>,
}

impl DatabaseProbe {
    pub(crate) fn new(store: Store) -> Self {
        Self {
            store,
            reserved: OnceCell::new(),
        }
    }

    pub(crate) async fn ping(&self) -> crmbet_core::Result<()> {
        let reserved = self
            .reserved
            .get_or_try_init(|| self.store.open_reserved_connection())
            .await?;
        tokio::time::timeout(PING_TIMEOUT, reserved.ping())
            .await
            .map_err(|_| Error::Unavailable("the database did not answer within 1 s".to_owned()))?
    }
}

/// Answers the health check; open to everyone, like the gRPC health service.
pub async fn health(State(state): State<AppState>) -> Response {
    let started = Instant::now();
    let pool = state.store.pool_usage();
    let pool_json = pool.map_or(
        Value::Null,
        |pool| json!({ "open": pool.open, "idle": pool.idle, "max": pool.max }),
    );
    let database = match state.database_probe.ping().await {
        Ok(()) => json!({
            "status": "up",
            "backend": format!("{:?}", state.store.backend()).to_lowercase(),
            "latency_ms": started.elapsed().as_secs_f64() * 1000.0,
            "pool": pool_json,
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
    let heavy_reads = state.heavy_reads.load();
    let connections = state.connections.counts();
    let pool_saturated = pool.is_some_and(|pool| pool.saturated());
    let saturated = heavy_reads.saturated || pool_saturated;
    let load = json!({
        "status": if saturated { "saturated" } else { "ok" },
        "heavy_reads": {
            "running": heavy_reads.running,
            "concurrency": heavy_reads.concurrency,
            "waiting": heavy_reads.waiting,
            "refused": heavy_reads.refused,
        },
        "database_pool_saturated": pool_saturated,
        "connections": {
            "open": connections.open,
            "max": connections.max,
            "refused": connections.refused,
            "evicted": connections.evicted,
        },
    });
    let broker = match &state.broker_probe {
        None => in_process("no AMQP_URL: dispatch stays in the database outbox"),
        Some(probe) => match probe.state().await {
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
    let draining = state.draining.has_begun();
    let overall = match (database_up, &limiter_health) {
        _ if draining => "draining",
        (false, _) => "unavailable",
        (true, LimiterHealth::Degraded { .. }) => "degraded",
        (true, _) if saturated || broker_degraded || smartico_degraded => "degraded",
        (true, _) => "ok",
    };
    let body = json!({
        "status": overall,
        "version": env!("CARGO_PKG_VERSION"),
        "database": database,
        "cache": cache,
        "broker": broker,
        "load": load,
        "smartico": smartico,
    });
    let status = if database_up && !draining {
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
