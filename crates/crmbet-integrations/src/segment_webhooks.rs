//! Delivery of segment changes to operators' webhooks: each endpoint gets the changes after
//! its cursor in batches, oldest first, as one signed JSON POST per batch:
//!
//! ```text
//! POST <url>
//! content-type: application/json
//! x-webhook-signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>
//! x-webhook-id: <webhook id>
//! x-webhook-delivery: <webhook id>-<first cursor>-<last cursor>
//!
//! {"webhook_id":"3","changes":[{"cursor":"812","user_id":"p-1",…}]}
//! ```
//!
//! Any 2xx acknowledges the batch and the cursor moves on. Anything else (an error status,
//! a redirect, a timeout, a refused connection) is retried with exponential backoff; after
//! `CRMBET_OUTBOUND_WEBHOOK_MAX_ATTEMPTS` failures the batch is kept as a dead letter and
//! the endpoint goes on with the next one. A batch may arrive twice (a crash after the
//! receiver answered, before the cursor moved): receivers keep the cursors they saw.

use std::time::Duration;

use chrono::Utc;
use crmbet_core::Config;
use crmbet_core::signature::signature_header;
use crmbet_store::{NewDeadLetter, RecordedSegmentChange, Store, WebhookClaim};
use serde_json::{Value as Json, json};

use crate::backoff::Backoff;
use crate::error::{DeliveryError, Result};

/// The signature header (the same as on the Smartico webhook crmbet receives).
pub const SIGNATURE_HEADER: &str = "x-webhook-signature";
/// The webhook's id.
pub const WEBHOOK_ID_HEADER: &str = "x-webhook-id";
/// The batch's id: the webhook and the cursors it spans.
pub const DELIVERY_HEADER: &str = "x-webhook-delivery";
/// The longest retry delay.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(600);

/// How webhooks are delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookSettings {
    /// Failures of one batch before it is dead-lettered.
    pub max_attempts: u32,
    pub backoff: Backoff,
    /// How long one POST may take.
    pub timeout: Duration,
    /// Changes per POST.
    pub batch_changes: u64,
    /// Endpoints delivered to at once by this process.
    pub concurrency: u64,
    /// How often an idle worker looks for new changes.
    pub idle_poll: Duration,
}

impl WebhookSettings {
    /// The settings `config` gives.
    pub fn from_config(config: &Config) -> Self {
        Self {
            max_attempts: config.outbound_webhook_max_attempts,
            backoff: Backoff {
                initial: Duration::from_millis(config.outbound_webhook_retry_ms),
                maximum: MAX_RETRY_DELAY
                    .max(Duration::from_millis(config.outbound_webhook_retry_ms)),
            },
            timeout: Duration::from_millis(config.outbound_webhook_timeout_ms),
            batch_changes: 100,
            concurrency: 16,
            idle_poll: Duration::from_millis(200),
        }
    }

    /// How long a claim holds an endpoint: a delivery always ends well within it.
    fn lease(&self) -> Duration {
        self.timeout * 2 + Duration::from_secs(5)
    }
}

/// Delivers segment changes to every registered webhook; cheap to clone.
#[derive(Debug, Clone)]
pub struct WebhookDelivery {
    store: Store,
    http: reqwest::Client,
    settings: WebhookSettings,
}

impl WebhookDelivery {
    pub fn new(store: Store, settings: WebhookSettings) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
            // A redirect is a failure: the signature was made for the registered address.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("crmbet-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| DeliveryError::Unreachable(format!("http client: {error}")))?;
        Ok(Self {
            store,
            http,
            settings,
        })
    }

    /// Delivers until `stop` resolves; database errors are logged and retried.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            let busy = match self.round().await {
                Ok(sent) => sent > 0,
                Err(error) => {
                    tracing::warn!(%error, "segment-change webhooks: a round failed; retrying");
                    false
                }
            };
            if busy {
                // More may be waiting behind a full batch: go on at once, unless stopping.
                tokio::select! {
                    () = &mut stop => return,
                    () = tokio::task::yield_now() => {}
                }
                continue;
            }
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(self.settings.idle_poll) => {}
            }
        }
    }

    /// One round: claims the due endpoints and sends each its next batch. Returns how many
    /// batches were acknowledged.
    pub async fn round(&self) -> Result<usize> {
        let lease = chrono::Duration::from_std(self.settings.lease())
            .unwrap_or_else(|_| chrono::Duration::seconds(60));
        let claims = self
            .store
            .claim_webhook_endpoints(Utc::now(), lease, self.settings.concurrency)
            .await?;
        let outcomes =
            futures::future::join_all(claims.iter().map(|claim| self.deliver_next(claim))).await;
        let mut sent = 0;
        for outcome in outcomes {
            match outcome {
                Ok(true) => sent += 1,
                Ok(false) => {}
                Err(error) => tracing::warn!(%error, "segment-change webhook delivery failed"),
            }
        }
        Ok(sent)
    }

    /// Sends the batch after the claimed endpoint's cursor; true when it was acknowledged.
    async fn deliver_next(&self, claim: &WebhookClaim) -> Result<bool> {
        let endpoint = &claim.endpoint;
        // A retry sends exactly the batch that failed (receivers may key on the delivery
        // id); otherwise the next changes after the cursor.
        let through = endpoint.pending_through.unwrap_or(i64::MAX);
        let changes = self
            .store
            .segment_changes_between(
                endpoint.delivered_through,
                through,
                self.settings.batch_changes,
            )
            .await?;
        let (Some(first), Some(last)) = (changes.first(), changes.last()) else {
            self.store.release_webhook(claim).await?;
            return Ok(false);
        };
        let (first, last) = (first.id, last.id);
        let body = batch_body(endpoint.id, &changes).to_string();
        let delivery = format!("{}-{first}-{last}", endpoint.id);
        match self.post(claim, &delivery, &body).await {
            Ok(()) => {
                let count = i64::try_from(changes.len()).unwrap_or(i64::MAX);
                if !self.store.webhook_delivered(claim, last, count).await? {
                    tracing::warn!(
                        webhook_id = endpoint.id,
                        delivery,
                        "webhook delivered after its claim lapsed; it may be delivered again"
                    );
                }
                Ok(true)
            }
            Err(error) => {
                let failures = endpoint.failures.saturating_add(1);
                let error = error.to_string();
                if u32::try_from(failures).unwrap_or(u32::MAX) >= self.settings.max_attempts {
                    tracing::warn!(
                        webhook_id = endpoint.id,
                        delivery,
                        failures,
                        %error,
                        "webhook batch dead-lettered after its last attempt"
                    );
                    let letter = NewDeadLetter {
                        first_change_id: first,
                        last_change_id: last,
                        body,
                        attempts: failures,
                        error,
                    };
                    self.store.webhook_dead_lettered(claim, letter).await?;
                } else {
                    let delay = self
                        .settings
                        .backoff
                        .delay(u32::try_from(failures).unwrap_or(u32::MAX));
                    tracing::info!(
                        webhook_id = endpoint.id,
                        delivery,
                        failures,
                        retry_in_ms = delay.as_millis() as u64,
                        %error,
                        "webhook delivery failed; retrying"
                    );
                    let retry_at = Utc::now()
                        + chrono::Duration::from_std(delay)
                            .unwrap_or_else(|_| chrono::Duration::seconds(600));
                    self.store
                        .webhook_failed(claim, last, failures, retry_at, &error)
                        .await?;
                }
                Ok(false)
            }
        }
    }

    async fn post(&self, claim: &WebhookClaim, delivery: &str, body: &str) -> Result<()> {
        let endpoint = &claim.endpoint;
        let signature = signature_header(&endpoint.secret, Utc::now().timestamp(), body.as_bytes());
        let response = self
            .http
            .post(&endpoint.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .header(WEBHOOK_ID_HEADER, endpoint.id.to_string())
            .header(DELIVERY_HEADER, delivery)
            .body(body.to_owned())
            .send()
            .await
            .map_err(|error| DeliveryError::Unreachable(format!("{}: {error}", endpoint.url)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        // The start of the receiver's answer is enough to say why; never read all of it.
        let mut response = response;
        let head = response.chunk().await.ok().flatten().unwrap_or_default();
        let message: String = String::from_utf8_lossy(&head[..head.len().min(200)]).into_owned();
        Err(DeliveryError::Rejected {
            status: status.as_u16(),
            message: format!("webhook {}: {message}", endpoint.url),
            retry_after: None,
        })
    }
}

/// The JSON body of one batch. Ids are strings, like the API's cursors and 64-bit ids in
/// proto3 JSON.
fn batch_body(webhook_id: i64, changes: &[RecordedSegmentChange]) -> Json {
    let changes: Vec<Json> = changes
        .iter()
        .map(|change| {
            json!({
                "cursor": change.id.to_string(),
                "user_id": change.user_id,
                "model_id": change.model_id.to_string(),
                "previous_cluster_id": change.previous_cluster_id.map(|id| id.to_string()),
                "previous_cluster_name": change.previous_cluster_name,
                "cluster_id": change.cluster_id.to_string(),
                "cluster_name": change.cluster_name,
                "suggested_campaign": change.suggested_campaign,
                "confidence": change.confidence,
                "outlier": change.outlier,
                "reason": change.reason,
                "changed_at": change.changed_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            })
        })
        .collect();
    json!({ "webhook_id": webhook_id.to_string(), "changes": changes })
}
