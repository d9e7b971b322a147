//! The in-process queue: without `AMQP_URL`, the outbox table itself is the queue. Due
//! messages are claimed with a lease and delivered concurrently (up to Smartico's requests
//! in flight); each is marked published once delivered or put back with a backoff. A
//! message claimed by a process that died is claimed again when its lease runs out.

use std::future::Future;
use std::time::Duration;

use chrono::Utc;
use crmbet_core::delivery::CAMPAIGN_DELIVERY_TOPIC;
use crmbet_store::Store;
use crmbet_store::entity::outbox;

use crate::backoff::Backoff;
use crate::dispatcher::Dispatcher;

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

    /// Delivers until `shutdown` resolves. Up to `batch` messages are in delivery at
    /// once; as one finishes, the next due message is claimed. On shutdown no new message
    /// is claimed and the deliveries in progress finish, so none is left between
    /// Smartico's answer and its mark.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut in_delivery = tokio::task::JoinSet::new();
        let mut stopping = false;
        while !stopping {
            let free = self.settings.batch.saturating_sub(in_delivery.len() as u64);
            let claimed = if free > 0 {
                self.claim(free).await
            } else {
                Vec::new()
            };
            let idle = claimed.is_empty();
            for message in claimed {
                let queue = self.clone();
                in_delivery.spawn(async move { queue.deliver(message).await });
            }
            if in_delivery.is_empty() {
                tokio::select! {
                    () = &mut shutdown => stopping = true,
                    () = tokio::time::sleep(self.settings.idle_poll) => {}
                }
                continue;
            }
            let pause = if idle && free > 0 {
                self.settings.idle_poll
            } else {
                Duration::from_secs(3600)
            };
            // Wait for a delivery to finish (a free slot), new due messages, or shutdown.
            tokio::select! {
                () = &mut shutdown => stopping = true,
                finished = in_delivery.join_next() => {
                    if let Some(Err(error)) = finished {
                        tracing::error!(%error, "an outbox delivery task failed");
                    }
                }
                () = tokio::time::sleep(pause) => {}
            }
        }
        while let Some(finished) = in_delivery.join_next().await {
            if let Err(error) = finished {
                tracing::error!(%error, "an outbox delivery task failed");
            }
        }
    }

    /// Claims up to `limit` due messages; a database failure claims none (and is logged).
    async fn claim(&self, limit: u64) -> Vec<outbox::Model> {
        let lease = chrono::Duration::from_std(self.settings.lease)
            .unwrap_or_else(|_| chrono::Duration::seconds(30));
        match self
            .store
            .claim_outbox(CAMPAIGN_DELIVERY_TOPIC, Utc::now(), lease, limit)
            .await
        {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::warn!(%error, "cannot claim outbox messages");
                Vec::new()
            }
        }
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
