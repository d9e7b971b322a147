//! An operator's webhook receiver: checks each request's signature with the secret crmbet
//! returned at registration (as a real receiver would), records every acknowledged change by
//! cursor, and can be told to fail (500) the next requests or all of them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use crmbet_core::signature::sign;
use serde_json::Value;

#[derive(Debug, Default)]
struct Received {
    secret: String,
    /// Acknowledged changes by cursor, and how often each arrived in an acknowledged batch.
    changes: BTreeMap<i64, (Value, usize)>,
    /// Requests answered 500 on purpose.
    failed: usize,
    /// Answer the next requests with 500.
    fail_next: usize,
    /// Answer every request with 500.
    fail_all: bool,
    /// Requests whose signature did not match (answered 401).
    bad_signatures: usize,
    deliveries: Vec<String>,
}

/// The running receiver; stops when dropped.
pub struct WebhookReceiver {
    pub url: String,
    received: Arc<Mutex<Received>>,
    server: tokio::task::JoinHandle<()>,
}

impl WebhookReceiver {
    pub async fn start() -> Self {
        let received = Arc::new(Mutex::new(Received::default()));
        let router = axum::Router::new()
            .route("/hooks/crmbet", post(receive))
            .with_state(Arc::clone(&received));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self {
            url: format!("http://{address}/hooks/crmbet"),
            received,
            server,
        }
    }

    /// The secret to check signatures with.
    pub fn set_secret(&self, secret: &str) {
        self.received.lock().unwrap().secret = secret.to_owned();
    }

    pub fn fail_next(&self, requests: usize) {
        self.received.lock().unwrap().fail_next = requests;
    }

    pub fn fail_all(&self, on: bool) {
        self.received.lock().unwrap().fail_all = on;
    }

    /// Acknowledged changes by cursor, with how many times each arrived.
    pub fn changes(&self) -> BTreeMap<i64, (Value, usize)> {
        self.received.lock().unwrap().changes.clone()
    }

    /// Requests failed on purpose, requests with a bad signature.
    pub fn counters(&self) -> (usize, usize) {
        let received = self.received.lock().unwrap();
        (received.failed, received.bad_signatures)
    }

    /// The `x-webhook-delivery` of every acknowledged batch.
    pub fn deliveries(&self) -> Vec<String> {
        self.received.lock().unwrap().deliveries.clone()
    }

    /// Waits up to `seconds` until `count` changes were acknowledged.
    pub async fn wait_for(&self, count: usize, seconds: u64) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
        while self.changes().len() < count {
            assert!(
                std::time::Instant::now() < deadline,
                "{} of {count} changes reached the webhook within {seconds} s",
                self.changes().len()
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn receive(
    State(received): State<Arc<Mutex<Received>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut received = received.lock().unwrap();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let signature = header("x-webhook-signature");
    let signed = signature
        .split_once(',')
        .and_then(|(t, v1)| Some((t.strip_prefix("t=")?, v1.strip_prefix("v1=")?)))
        .and_then(|(t, v1)| Some((t.parse::<i64>().ok()?, v1.to_owned())));
    let valid = signed.is_some_and(|(timestamp, v1)| {
        v1 == sign(&received.secret, timestamp, &body)
            && (chrono::Utc::now().timestamp() - timestamp).abs() < 300
    });
    if !valid {
        received.bad_signatures += 1;
        return StatusCode::UNAUTHORIZED;
    }
    if received.fail_all || received.fail_next > 0 {
        received.fail_next = received.fail_next.saturating_sub(1);
        received.failed += 1;
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let batch: Value = serde_json::from_slice(&body).expect("a JSON batch");
    assert_eq!(
        batch["webhook_id"].as_str(),
        Some(header("x-webhook-id").as_str())
    );
    for change in batch["changes"].as_array().expect("changes") {
        let cursor: i64 = change["cursor"].as_str().unwrap().parse().unwrap();
        received
            .changes
            .entry(cursor)
            .or_insert_with(|| (change.clone(), 0))
            .1 += 1;
    }
    received.deliveries.push(header("x-webhook-delivery"));
    StatusCode::OK
}
