//! Smartico's server-to-server event API: `POST {url}{events_path}` with a JSON array of
//! events and the private key as the whole `Authorization` value.
//!
//! An answer is `{"err_code": 0, "event_errors": {"<eid>": [...]}}`; an event whose errors
//! include 20056 (its `eid` was seen before) counts as delivered, so retrying a request is
//! safe. Path, event type and limits are settings, since only the path and the profile
//! update event are in Smartico's public help; the rest comes from third-party clients.

use std::collections::HashMap;
use std::time::Duration;

use crmbet_core::Config;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::breaker::CircuitBreaker;
use crate::error::{DeliveryError, Result};
use crate::throttle::Throttle;

/// Smartico's error code for an event id it has seen before.
pub const DUPLICATE_EVENT: i64 = 20056;

/// One event of Smartico's event API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmarticoEvent {
    /// The event id, unique per event: the idempotency key.
    pub eid: String,
    /// Milliseconds since the epoch.
    pub event_date: i64,
    pub ext_brand_id: String,
    pub user_ext_id: String,
    pub event_type: String,
    pub payload: Json,
}

/// Where Smartico is and how hard it may be pushed.
#[derive(Debug, Clone, PartialEq)]
pub struct SmarticoSettings {
    /// The API's base URL (`CRMBET_SMARTICO_URL`).
    pub url: String,
    pub api_key: String,
    pub brand: String,
    pub events_path: String,
    pub campaign_event: String,
    /// The `event_type` of a profile update (Smartico's `update_profile`).
    pub profile_event: String,
    pub max_in_flight: usize,
    pub requests_per_minute: u32,
    pub max_request_bytes: usize,
    pub timeout: Duration,
    pub breaker_failures: u32,
    pub breaker_open_for: Duration,
}

impl SmarticoSettings {
    /// The settings of `config`; `None` when `CRMBET_SMARTICO_URL` is not set.
    pub fn from_config(config: &Config) -> Option<Self> {
        let url = config.smartico_url.clone()?;
        Some(Self {
            url: url.trim_end_matches('/').to_owned(),
            api_key: config.smartico_api_key.clone().unwrap_or_default(),
            brand: config.smartico_brand.clone().unwrap_or_default(),
            events_path: config.smartico_events_path.clone(),
            campaign_event: config.smartico_campaign_event.clone(),
            profile_event: config.smartico_profile_event.clone(),
            max_in_flight: config.smartico_max_in_flight,
            requests_per_minute: config.smartico_requests_per_minute,
            max_request_bytes: config.smartico_max_request_bytes,
            timeout: Duration::from_millis(config.smartico_timeout_ms),
            breaker_failures: config.circuit_breaker_failures,
            breaker_open_for: Duration::from_secs(config.circuit_breaker_open_seconds),
        })
    }
}

/// Smartico's answer to a request.
#[derive(Debug, Default, Deserialize)]
struct Answer {
    #[serde(default)]
    err_code: i64,
    #[serde(default)]
    err_message: Option<String>,
    #[serde(default)]
    event_errors: HashMap<String, Json>,
}

/// The event API client, with the throttle and the circuit breaker; cheap to clone.
#[derive(Debug, Clone)]
pub struct SmarticoClient {
    http: reqwest::Client,
    endpoint: String,
    settings: SmarticoSettings,
    throttle: Throttle,
    breaker: CircuitBreaker,
}

impl SmarticoClient {
    /// A client for `settings`.
    pub fn new(settings: SmarticoSettings) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
            .build()
            .map_err(|error| DeliveryError::Unreachable(format!("http client: {error}")))?;
        Ok(Self {
            endpoint: format!("{}{}", settings.url, settings.events_path),
            throttle: Throttle::new(settings.max_in_flight, settings.requests_per_minute),
            breaker: CircuitBreaker::new(settings.breaker_failures, settings.breaker_open_for),
            http,
            settings,
        })
    }

    /// The settings this client was made with.
    pub fn settings(&self) -> &SmarticoSettings {
        &self.settings
    }

    /// The circuit breaker, for `/health`.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// Splits `events` into requests under the byte limit and sends them; returns the ids
    /// Smartico accepted (duplicates included) and the refused ones with their reasons.
    pub async fn send(&self, events: &[SmarticoEvent]) -> Result<Sent> {
        let mut sent = Sent::default();
        for request in self.requests(events)? {
            let answer = self.post(&request.body).await?;
            for eid in request.eids {
                match answer.event_errors.get(&eid) {
                    None => sent.accepted.push(eid),
                    Some(errors) if is_duplicate(errors) => sent.accepted.push(eid),
                    Some(errors) => sent.refused.push((eid, errors.to_string())),
                }
            }
        }
        Ok(sent)
    }

    /// The events as JSON arrays of at most `max_request_bytes` each.
    fn requests(&self, events: &[SmarticoEvent]) -> Result<Vec<Request>> {
        let mut requests = Vec::new();
        let mut current = Request::default();
        for event in events {
            let encoded = serde_json::to_vec(event).map_err(|error| {
                DeliveryError::Unreachable(format!("encoding an event: {error}"))
            })?;
            // `[`, `]` and a comma per event.
            let grown = current.body.len() + encoded.len() + 2;
            if !current.eids.is_empty() && grown > self.settings.max_request_bytes {
                requests.push(current.finish());
                current = Request::default();
            }
            current.push(&event.eid, &encoded);
        }
        if !current.eids.is_empty() {
            requests.push(current.finish());
        }
        Ok(requests)
    }

    /// One request, throttled and behind the breaker.
    async fn post(&self, body: &[u8]) -> Result<Answer> {
        if !self.breaker.allow() {
            return Err(DeliveryError::CircuitOpen);
        }
        let _permit = self.throttle.acquire().await;
        let outcome = self.post_once(body).await;
        match &outcome {
            Ok(_) => self.breaker.record_success(),
            Err(error) => self.breaker.record_failure(&error.to_string()),
        }
        outcome
    }

    async fn post_once(&self, body: &[u8]) -> Result<Answer> {
        let response = self
            .http
            .post(&self.endpoint)
            .header(reqwest::header::AUTHORIZATION, &self.settings.api_key)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec())
            .send()
            .await
            .map_err(|error| DeliveryError::Unreachable(error.to_string()))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = response
            .text()
            .await
            .map_err(|error| DeliveryError::Unreachable(error.to_string()))?;
        if !status.is_success() {
            return Err(DeliveryError::Rejected {
                status: status.as_u16(),
                message: text.chars().take(200).collect(),
                retry_after,
            });
        }
        let answer: Answer = if text.trim().is_empty() {
            Answer::default()
        } else {
            serde_json::from_str(&text).map_err(|error| DeliveryError::Rejected {
                status: status.as_u16(),
                message: format!("unreadable answer ({error}): {}", truncate(&text)),
                retry_after: None,
            })?
        };
        if answer.err_code != 0 && answer.event_errors.is_empty() {
            return Err(DeliveryError::Rejected {
                status: status.as_u16(),
                message: format!(
                    "err_code {}: {}",
                    answer.err_code,
                    answer.err_message.clone().unwrap_or_default()
                ),
                retry_after: None,
            });
        }
        Ok(answer)
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(200).collect()
}

/// Whether an event's errors say Smartico has the event already.
fn is_duplicate(errors: &Json) -> bool {
    let code_of = |error: &Json| {
        error
            .as_i64()
            .or_else(|| error.get("err_code").and_then(Json::as_i64))
            .or_else(|| error.get("code").and_then(Json::as_i64))
    };
    match errors {
        Json::Array(list) => {
            !list.is_empty()
                && list
                    .iter()
                    .all(|error| code_of(error) == Some(DUPLICATE_EVENT))
        }
        other => code_of(other) == Some(DUPLICATE_EVENT),
    }
}

/// What a send achieved.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Sent {
    /// Event ids Smartico has (now or from before).
    pub accepted: Vec<String>,
    /// Event ids it refused, with its errors.
    pub refused: Vec<(String, String)>,
}

/// One request being assembled.
#[derive(Debug, Default)]
struct Request {
    body: Vec<u8>,
    eids: Vec<String>,
}

impl Request {
    fn push(&mut self, eid: &str, encoded: &[u8]) {
        self.body
            .push(if self.eids.is_empty() { b'[' } else { b',' });
        self.body.extend_from_slice(encoded);
        self.eids.push(eid.to_owned());
    }

    fn finish(mut self) -> Self {
        self.body.push(b']');
        self
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn settings(max_request_bytes: usize) -> SmarticoSettings {
        SmarticoSettings {
            url: "http://127.0.0.1:9".to_owned(),
            api_key: "key".to_owned(),
            brand: "brand".to_owned(),
            events_path: "/api/external/events/v2".to_owned(),
            campaign_event: "crmbet_campaign".to_owned(),
            profile_event: "update_profile".to_owned(),
            max_in_flight: 12,
            requests_per_minute: 6000,
            max_request_bytes,
            timeout: Duration::from_secs(1),
            breaker_failures: 5,
            breaker_open_for: Duration::from_secs(1),
        }
    }

    fn event(eid: &str) -> SmarticoEvent {
        SmarticoEvent {
            eid: eid.to_owned(),
            event_date: 1,
            ext_brand_id: "brand".to_owned(),
            user_ext_id: "p".to_owned(),
            event_type: "crmbet_campaign".to_owned(),
            payload: json!({}),
        }
    }

    #[test]
    fn requests_stay_under_the_byte_limit_and_are_json_arrays() {
        let events: Vec<SmarticoEvent> = (0..10).map(|index| event(&format!("e{index}"))).collect();
        let one = serde_json::to_vec(&events[0]).unwrap_or_default().len();
        let client = SmarticoClient::new(settings(3 * one + 4)).expect("a client");
        let requests = client.requests(&events).expect("encodable");
        assert_eq!(requests.len(), 4);
        let mut eids = Vec::new();
        for request in requests {
            assert!(request.body.len() <= 3 * one + 4);
            let parsed: Vec<SmarticoEvent> =
                serde_json::from_slice(&request.body).expect("a JSON array of events");
            eids.extend(parsed.into_iter().map(|event| event.eid));
        }
        assert_eq!(eids.len(), 10);
    }

    #[test]
    fn only_the_duplicate_code_counts_as_delivered() {
        let cases = [
            (json!([20056]), true),
            (json!([{"err_code": 20056}]), true),
            (json!({"code": 20056}), true),
            (json!([20056, 40001]), false),
            (json!([]), false),
            (json!("bad user"), false),
        ];
        for (errors, expected) in cases {
            assert_eq!(is_duplicate(&errors), expected, "{errors}");
        }
    }
}
