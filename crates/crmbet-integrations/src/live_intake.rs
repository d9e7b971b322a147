//! The RabbitMQ intake of live transactions (`AMQP_URL`). The operator's platform publishes
//! persistent messages to the durable quorum queue `CRMBET_LIVE_QUEUE` (the default
//! exchange, the queue's name as routing key). Deliveries are taken in batches (up to
//! `batch` messages, or what arrived within `linger` of the first), handed to the intake
//! together, and acknowledged only once it returned, that is once their transactions are
//! committed: a process killed mid-batch leaves them unacknowledged, the broker delivers them
//! again, and the dedupe on `transaction_id` makes the second delivery change nothing.
//!
//! A message the intake cannot read at all (neither JSON nor the protobuf batch) goes to
//! `<queue>.dead` at once, where it stays for an operator; an intake that fails (the
//! database down) puts the whole batch back and waits before the next try.

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties, Consumer};

use crate::backoff::Backoff;
use crate::error::{DeliveryError, Result};
use crate::rabbitmq::declare_with_dead_letters;
use crate::reconnect::keep_running;

/// Where and how live transactions are read from the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveIntakeSettings {
    pub url: String,
    /// The queue the platform publishes to; unreadable messages go to `<queue>.dead`.
    pub queue: String,
    /// The most messages handed to the intake at once (and unacknowledged at a time).
    pub batch: u16,
    /// A batch takes no more messages once their bodies hold this many bytes, so a backlog
    /// of large messages is stored in transactions of bounded size (and latency).
    pub max_batch_bytes: usize,
    /// How long a batch waits for more messages after its first.
    pub linger: Duration,
    pub backoff: Backoff,
}

impl LiveIntakeSettings {
    /// Reading `queue` at `url` as `crmbet serve` does: up to 500 messages or 1 MiB of
    /// bodies a batch, each waiting up to 20 ms for more after its first (a busy queue gets
    /// large batches, a quiet one its events at once).
    pub fn new(url: String, queue: String) -> Self {
        Self {
            url,
            queue,
            batch: 500,
            max_batch_bytes: 1024 * 1024,
            linger: Duration::from_millis(20),
            backoff: Backoff::default(),
        }
    }
}

/// One delivered message, as published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveMessage {
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// What the intake made of each message of a batch, in order: `Err` with the reason for a
/// message it could not read (dead-lettered); `Ok` for one it stored or quarantined.
pub type MessageVerdicts = Vec<std::result::Result<(), String>>;

/// Reads the queue until `shutdown` resolves, reconnecting with backoff when the broker
/// fails.
pub async fn run_live_intake<F, Fut>(
    settings: LiveIntakeSettings,
    intake: F,
    shutdown: impl Future<Output = ()>,
) where
    F: Fn(Vec<LiveMessage>) -> Fut,
    Fut: Future<Output = std::result::Result<MessageVerdicts, String>>,
{
    keep_running(
        "live intake: the broker failed; reconnecting",
        settings.backoff,
        shutdown,
        || intake_session(&settings, &intake),
    )
    .await;
}

/// One connection's worth of reading; returns only with the error that ended it.
async fn intake_session<F, Fut>(
    settings: &LiveIntakeSettings,
    intake: &F,
) -> Result<std::convert::Infallible>
where
    F: Fn(Vec<LiveMessage>) -> Fut,
    Fut: Future<Output = std::result::Result<MessageVerdicts, String>>,
{
    let broker = |error: lapin::Error| DeliveryError::Broker(error.to_string());
    let connection = Connection::connect(&settings.url, ConnectionProperties::default())
        .await
        .map_err(broker)?;
    let channel = connection.create_channel().await.map_err(broker)?;
    declare_with_dead_letters(&channel, &settings.queue, None)
        .await
        .map_err(broker)?;
    channel
        .basic_qos(settings.batch.max(1), BasicQosOptions::default())
        .await
        .map_err(broker)?;
    let mut consumer = channel
        .basic_consume(
            settings.queue.as_str().into(),
            "crmbet-live-intake".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(broker)?;
    tracing::info!(
        queue = settings.queue,
        "live intake consuming from the broker"
    );
    let mut failures = 0u32;
    loop {
        let deliveries = next_batch(&mut consumer, settings).await?;
        let messages = deliveries
            .iter()
            .map(|delivery| LiveMessage {
                content_type: delivery
                    .properties
                    .content_type()
                    .as_ref()
                    .map(|content_type| content_type.as_str().to_owned()),
                body: delivery.data.clone(),
            })
            .collect();
        match intake(messages).await {
            Ok(verdicts) => {
                failures = 0;
                acknowledge(&deliveries, &verdicts).await.map_err(broker)?;
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                let wait = settings.backoff.delay(failures);
                tracing::warn!(%error, messages = deliveries.len(), retry_in_ms = wait.as_millis() as u64,
                    "live intake failed; the messages go back to the queue");
                for delivery in &deliveries {
                    delivery
                        .nack(BasicNackOptions {
                            requeue: true,
                            ..BasicNackOptions::default()
                        })
                        .await
                        .map_err(broker)?;
                }
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// The next deliveries: waits for one, then takes what arrives within the linger.
async fn next_batch(
    consumer: &mut Consumer,
    settings: &LiveIntakeSettings,
) -> Result<Vec<Delivery>> {
    let broker = |error: lapin::Error| DeliveryError::Broker(error.to_string());
    let cancelled = || DeliveryError::Broker("the live intake's consumer was cancelled".to_owned());
    let first = consumer
        .next()
        .await
        .ok_or_else(cancelled)?
        .map_err(broker)?;
    let mut bytes = first.data.len();
    let mut deliveries = vec![first];
    let deadline = tokio::time::Instant::now() + settings.linger;
    while deliveries.len() < usize::from(settings.batch.max(1)) && bytes < settings.max_batch_bytes
    {
        match tokio::time::timeout_at(deadline, consumer.next()).await {
            Ok(Some(delivery)) => {
                let delivery = delivery.map_err(broker)?;
                bytes += delivery.data.len();
                deliveries.push(delivery);
            }
            Ok(None) => return Err(cancelled()),
            Err(_) => break,
        }
    }
    Ok(deliveries)
}

/// Acknowledges what was read; rejects what could not be to the dead-letter queue.
async fn acknowledge(
    deliveries: &[Delivery],
    verdicts: &MessageVerdicts,
) -> std::result::Result<(), lapin::Error> {
    let all_read = verdicts.iter().all(std::result::Result::is_ok);
    if all_read && verdicts.len() == deliveries.len() {
        // One frame for the whole batch: every delivery up to the last.
        if let Some(last) = deliveries.last() {
            last.ack(BasicAckOptions { multiple: true }).await?;
        }
        return Ok(());
    }
    for (index, delivery) in deliveries.iter().enumerate() {
        match verdicts.get(index) {
            Some(Ok(())) => {
                delivery.ack(BasicAckOptions::default()).await?;
            }
            Some(Err(reason)) => {
                tracing::warn!(%reason, "live intake: an unreadable message goes to the dead-letter queue");
                delivery
                    .nack(BasicNackOptions {
                        requeue: false,
                        ..BasicNackOptions::default()
                    })
                    .await?;
            }
            // No verdict (an intake bug): back to the queue rather than lost.
            None => {
                delivery
                    .nack(BasicNackOptions {
                        requeue: true,
                        ..BasicNackOptions::default()
                    })
                    .await?;
            }
        }
    }
    Ok(())
}
