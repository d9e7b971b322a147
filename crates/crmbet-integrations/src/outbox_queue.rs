//! The in-process queue: without `AMQP_URL`, the outbox table itself is the queue. Each
//! round claims due messages with a lease, delivers them concurrently, and marks each
//! published once delivered or puts it back with a backoff. A message claimed by a process
//! that died is claimed again when its lease runs out.

use std::future::Future;
use std::time::Duration;

use chrono::Utc;
use crmbet_core::delivery::CAMPAIGN_DELIVERY_TOPIC;
use crmbet_store::Store;
use crmbet_store::entity::outbox;

use crate::backoff::Backoff;
use crate::dispatcher::Dispatcher;
use crate::error::DeliveryError;

/// How the queue polls and retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSettings {
    /// How long a claimed message stays hidden from other claims.
    pub lease: Duration,
    /// Pause between rounds when nothing was due.
    pub idle_poll: Duration,
    /// Messages claimed per round (Smartico's requests in flight).
    pub batch: u64,
    pub backoff: Backoff,
}

/// The relay and dispatcher over the outbox table.
#[derive(Debug, Clone)]
pub struct OutboxQueue {
    store: Store,
    dispatcher: Dispatcher,
    settings: QueueSettings,
}

impl OutboxQueue {
    /// A queue over `store`, delivering with `dispatcher`.
    pub fn new(store: Store, dispatcher: Dispatcher, settings: QueueSettings) -> Self {
        Self {
            store,
            dispatcher,
            settings,
        }
    }

    /// Delivers until `shutdown` resolves; the round in progress finishes first, so no
    /// message is left between Smartico's answer and its mark.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let delivered = tokio::select! {
                () = &mut shutdown => break,
                round = self.round() => round,
            };
            let pause = match delivered {
                Ok(0) => self.settings.idle_poll,
                Ok(_) => Duration::ZERO,
                Err(error) => {
                    tracing::warn!(%error, "outbox round failed");
                    self.settings.idle_poll
                }
            };
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// One round: claims due messages and delivers them; returns how many were claimed.
    pub async fn round(&self) -> Result<usize, DeliveryError> {
        let lease = chrono::Duration::from_std(self.settings.lease)
            .unwrap_or_else(|_| chrono::Duration::seconds(30));
        let claimed = self
            .store
            .claim_outbox(
                CAMPAIGN_DELIVERY_TOPIC,
                Utc::now(),
                lease,
                self.settings.batch,
            )
            .await?;
        let count = claimed.len();
        // Each delivery in a task of its own: a shutdown never cuts one in half.
        let tasks: Vec<_> = claimed
            .into_iter()
            .map(|message| {
                let queue = self.clone();
                tokio::spawn(async move { queue.deliver(message).await })
            })
            .collect();
        for task in tasks {
            if let Err(error) = task.await {
                tracing::error!(%error, "an outbox delivery task failed");
            }
        }
        Ok(count)
    }

    async fn deliver(&self, message: outbox::Model) {
        let outcome = self.dispatcher.deliver(message.id, &message.payload).await;
        let recorded = match outcome {
            Ok(()) => self.store.mark_outbox_published(message.id).await,
            Err(error) => {
                let attempts = u32::try_from(message.attempts).unwrap_or(u32::MAX);
                let wait = error
                    .retry_after()
                    .unwrap_or_default()
                    .max(self.settings.backoff.delay(attempts));
                tracing::warn!(message_id = message.id, attempts, %error,
                    retry_in_ms = wait.as_millis() as u64, "delivery failed; will retry");
                let due = Utc::now()
                    + chrono::Duration::from_std(wait)
                        .unwrap_or_else(|_| chrono::Duration::seconds(60));
                self.store
                    .retry_outbox(message.id, due, &error.to_string())
                    .await
            }
        };
        if let Err(error) = recorded {
            // The lease runs out and the message is claimed again: nothing is lost.
            tracing::error!(message_id = message.id, %error, "cannot record a delivery outcome");
        }
    }
}
