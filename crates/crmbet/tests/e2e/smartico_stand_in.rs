//! A local HTTP server standing in for Smartico's event API: it records every event it
//! accepts by `eid`, answers a repeated `eid` with Smartico's duplicate error (20056), and
//! can be told to fail (500, or 429 with `Retry-After`) or to answer slowly for a while.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// The path crmbet posts events to (its default `CRMBET_SMARTICO_EVENTS_PATH`).
pub const EVENTS_PATH: &str = "/api/external/events/v2";
/// The key the stand-in expects as the whole `Authorization` value.
pub const API_KEY: &str = "stand-in-private-key";

/// What the stand-in does with the next requests.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Answer this many requests with 500.
    pub server_errors: usize,
    /// Then this many with 429 and `Retry-After: 1`.
    pub rate_limited: usize,
    /// Wait this long before answering each request.
    pub delay: Duration,
}

#[derive(Debug, Default)]
struct Recorded {
    /// Events accepted per eid (more than 1 would be a double delivery).
    accepted: HashMap<String, usize>,
    /// The event of each accepted eid.
    events: HashMap<String, Value>,
    duplicates: usize,
    requests: usize,
    refused_requests: usize,
    bad_authorization: usize,
    faults: Faults,
}

/// The running stand-in; stops when dropped.
pub struct SmarticoStandIn {
    pub url: String,
    recorded: Arc<Mutex<Recorded>>,
    server: tokio::task::JoinHandle<()>,
}

impl SmarticoStandIn {
    /// Starts on a free loopback port.
    pub async fn start(faults: Faults) -> Self {
        let recorded = Arc::new(Mutex::new(Recorded {
            faults,
            ..Recorded::default()
        }));
        let router = axum::Router::new()
            .route(EVENTS_PATH, post(receive))
            .with_state(Arc::clone(&recorded));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self {
            url: format!("http://{address}"),
            recorded,
            server,
        }
    }

    /// The environment that points crmbet at this stand-in.
    pub fn environment(&self) -> Vec<(&'static str, String)> {
        vec![
            ("CRMBET_SMARTICO_URL", self.url.clone()),
            ("CRMBET_SMARTICO_API_KEY", API_KEY.to_owned()),
            ("CRMBET_SMARTICO_BRAND", "stand-in-brand".to_owned()),
        ]
    }

    /// Accepted events per eid.
    pub fn accepted(&self) -> HashMap<String, usize> {
        self.recorded.lock().unwrap().accepted.clone()
    }

    /// The accepted event of `eid`.
    pub fn event(&self, eid: &str) -> Option<Value> {
        self.recorded.lock().unwrap().events.get(eid).cloned()
    }

    /// Accepted eids that start with `prefix`.
    pub fn accepted_with_prefix(&self, prefix: &str) -> HashMap<String, usize> {
        self.accepted()
            .into_iter()
            .filter(|(eid, _)| eid.starts_with(prefix))
            .collect()
    }

    /// Requests received, requests refused by a fault, duplicates answered, requests with a
    /// wrong `Authorization`.
    pub fn counters(&self) -> (usize, usize, usize, usize) {
        let recorded = self.recorded.lock().unwrap();
        (
            recorded.requests,
            recorded.refused_requests,
            recorded.duplicates,
            recorded.bad_authorization,
        )
    }
}

impl Drop for SmarticoStandIn {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn receive(
    State(recorded): State<Arc<Mutex<Recorded>>>,
    headers: HeaderMap,
    Json(events): Json<Vec<Value>>,
) -> Response {
    let delay = {
        let mut recorded = recorded.lock().unwrap();
        recorded.requests += 1;
        recorded.faults.delay
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut recorded = recorded.lock().unwrap();
    if headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        != Some(API_KEY)
    {
        recorded.bad_authorization += 1;
        return (StatusCode::UNAUTHORIZED, "bad key").into_response();
    }
    if recorded.faults.server_errors > 0 {
        recorded.faults.server_errors -= 1;
        recorded.refused_requests += 1;
        return (StatusCode::INTERNAL_SERVER_ERROR, "stand-in outage").into_response();
    }
    if recorded.faults.rate_limited > 0 {
        recorded.faults.rate_limited -= 1;
        recorded.refused_requests += 1;
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            "slow down",
        )
            .into_response();
    }
    let mut event_errors = serde_json::Map::new();
    for event in events {
        let eid = event["eid"].as_str().unwrap_or_default().to_owned();
        if recorded.accepted.contains_key(&eid) {
            recorded.duplicates += 1;
            event_errors.insert(eid, json!([20056]));
            continue;
        }
        recorded.accepted.insert(eid.clone(), 1);
        recorded.events.insert(eid, event);
    }
    Json(json!({ "err_code": 0, "event_errors": event_errors })).into_response()
}
