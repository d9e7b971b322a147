//! Delivery over RabbitMQ (`AMQP_URL`): a relay publishes outbox messages to a durable
//! quorum queue with persistent messages and publisher confirms, marking each published
//! only after the broker confirmed it; a consumer hands each message to the dispatcher and
//! acknowledges it only after Smartico accepted it. A message that keeps failing for a
//! reason other than a Smartico outage is dead-lettered after `delivery_max_attempts`
//! deliveries (`x-delivery-limit`) to `<queue>.dead`, where it stays for an operator.
//!
//! While the broker is unreachable the relay retries with backoff and the messages wait in
//! the outbox; a consumer that dies leaves its unacknowledged messages to be redelivered.

use std::future::Future;
use std::time::Duration;

use chrono::Utc;
use crmbet_core::delivery::CAMPAIGN_DELIVERY_TOPIC;
use crmbet_store::Store;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use serde_json::Value as Json;

use crate::backoff::Backoff;
use crate::dispatcher::Dispatcher;
use crate::error::{DeliveryError, Result};
use crate::reconnect::keep_running;

/// Persistent delivery mode of AMQP 0-9-1.
const PERSISTENT: u8 = 2;
/// How long a transient Smartico failure is retried inside the consumer before the message
/// goes back to the queue.
const IN_PLACE_RETRY_LIMIT: Duration = Duration::from_secs(600);

/// Where and how the broker is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerSettings {
    pub url: String,
    /// The work queue; its dead letters go to `<queue>.dead`.
    pub queue: String,
    /// Deliveries of one message before it is dead-lettered.
    pub delivery_max_attempts: u32,
    /// Unacknowledged messages per consumer (Smartico's requests in flight).
    pub prefetch: u16,
    /// How long a claimed outbox message stays hidden while it is being published.
    pub lease: Duration,
    pub backoff: Backoff,
}

/// Connects and declares the work queue and its dead-letter queue.
async fn open_channel(settings: &BrokerSettings) -> Result<(Connection, Channel)> {
    let broker = |error: lapin::Error| DeliveryError::Broker(error.to_string());
    let connection = Connection::connect(&settings.url, ConnectionProperties::default())
        .await
        .map_err(broker)?;
    let channel = connection.create_channel().await.map_err(broker)?;
    declare_with_dead_letters(
        &channel,
        &settings.queue,
        Some(settings.delivery_max_attempts),
    )
    .await
    .map_err(broker)?;
    Ok((connection, channel))
}

/// Declares the durable quorum queue `queue` and its dead-letter queue `<queue>.dead`, where
/// rejected messages go (and, with `delivery_limit`, those delivered that many times). Every
/// declarer of a queue (servers, publishers, tests) must use the same arguments.
pub async fn declare_with_dead_letters(
    channel: &Channel,
    queue: &str,
    delivery_limit: Option<u32>,
) -> std::result::Result<(), lapin::Error> {
    let dead_letter_queue = format!("{queue}.dead");
    channel
        .queue_declare(
            dead_letter_queue.as_str().into(),
            QueueDeclareOptions::durable(),
            quorum_arguments(),
        )
        .await?;
    let mut arguments = quorum_arguments();
    if let Some(limit) = delivery_limit {
        arguments.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongLongInt(i64::from(limit)),
        );
    }
    arguments.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString("".into()),
    );
    arguments.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString(dead_letter_queue.as_str().into()),
    );
    channel
        .queue_declare(queue.into(), QueueDeclareOptions::durable(), arguments)
        .await?;
    Ok(())
}

fn quorum_arguments() -> FieldTable {
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    arguments
}

/// Publishes outbox messages to the broker until `shutdown` resolves.
pub async fn run_relay(store: Store, settings: BrokerSettings, shutdown: impl Future<Output = ()>) {
    keep_running(
        "relay: the broker failed; messages wait in the outbox",
        settings.backoff,
        shutdown,
        || relay_session(&store, &settings),
    )
    .await;
}

/// One connection's worth of publishing; returns only with the error that ended it.
async fn relay_session(
    store: &Store,
    settings: &BrokerSettings,
) -> Result<std::convert::Infallible> {
    let (_connection, channel) = open_channel(settings).await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(|error| DeliveryError::Broker(error.to_string()))?;
    tracing::info!(queue = settings.queue, "relay connected to the broker");
    let lease = chrono::Duration::from_std(settings.lease)
        .unwrap_or_else(|_| chrono::Duration::seconds(30));
    loop {
        let claimed = store
            .claim_outbox(CAMPAIGN_DELIVERY_TOPIC, Utc::now(), lease, 100)
            .await?;
        if claimed.is_empty() {
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        }
        // Publish all, then wait for their confirms: the broker confirms in batches.
        let mut pending = Vec::with_capacity(claimed.len());
        for message in &claimed {
            let body =
                serde_json::to_vec(&message.payload).map_err(|error| DeliveryError::Malformed {
                    message_id: message.id,
                    reason: error.to_string(),
                })?;
            let properties = BasicProperties::default()
                .with_delivery_mode(PERSISTENT)
                .with_message_id(message.id.to_string().as_str().into())
                .with_content_type("application/json".into());
            let confirm = channel
                .basic_publish(
                    "".into(),
                    settings.queue.as_str().into(),
                    BasicPublishOptions::default(),
                    &body,
                    properties,
                )
                .await
                .map_err(|error| DeliveryError::Broker(error.to_string()))?;
            pending.push((message.id, confirm));
        }
        for (message_id, confirm) in pending {
            let confirmation = confirm
                .await
                .map_err(|error| DeliveryError::Broker(error.to_string()))?;
            if confirmation.is_ack() {
                store.mark_outbox_published(message_id).await?;
            } else {
                // Refused by the broker: due again after a pause.
                let due = Utc::now() + chrono::Duration::seconds(1);
                store
                    .retry_outbox(message_id, due, "the broker refused the message (nack)")
                    .await?;
            }
        }
    }
}

/// Consumes the work queue and delivers to Smartico until `shutdown` resolves.
pub async fn run_consumer(
    dispatcher: Dispatcher,
    settings: BrokerSettings,
    shutdown: impl Future<Output = ()>,
) {
    keep_running(
        "consumer: the broker failed; reconnecting",
        settings.backoff,
        shutdown,
        || consumer_session(&dispatcher, &settings),
    )
    .await;
}

async fn consumer_session(dispatcher: &Dispatcher, settings: &BrokerSettings) -> Result<()> {
    let broker = |error: lapin::Error| DeliveryError::Broker(error.to_string());
    let (_connection, channel) = open_channel(settings).await?;
    channel
        .basic_qos(settings.prefetch, BasicQosOptions::default())
        .await
        .map_err(broker)?;
    let mut consumer = channel
        .basic_consume(
            settings.queue.as_str().into(),
            "crmbet-dispatcher".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(broker)?;
    tracing::info!(
        queue = settings.queue,
        "dispatcher consuming from the broker"
    );
    while let Some(delivery) = consumer.next().await {
        let delivery = delivery.map_err(broker)?;
        let dispatcher = dispatcher.clone();
        let backoff = settings.backoff;
        // Up to `prefetch` deliveries run at once; the broker holds back the rest.
        tokio::spawn(async move {
            let message_id = delivery
                .properties
                .message_id()
                .as_ref()
                .and_then(|id| id.as_str().parse::<i64>().ok())
                .unwrap_or_default();
            let outcome = match serde_json::from_slice::<Json>(&delivery.data) {
                Ok(payload) => {
                    deliver_with_retries(&dispatcher, message_id, &payload, backoff).await
                }
                Err(error) => Err(DeliveryError::Malformed {
                    message_id,
                    reason: error.to_string(),
                }),
            };
            let acknowledged = match outcome {
                Ok(()) => delivery.ack(BasicAckOptions::default()).await,
                Err(error) => {
                    tracing::warn!(message_id, %error,
                        "delivery failed; the message goes back to the queue (dead-lettered after the delivery limit)");
                    delivery
                        .nack(BasicNackOptions {
                            requeue: true,
                            ..BasicNackOptions::default()
                        })
                        .await
                }
            };
            if let Err(error) = acknowledged {
                // The channel is gone: the broker redelivers the message.
                tracing::warn!(message_id, %error, "cannot acknowledge a delivery");
            }
        });
    }
    Err(DeliveryError::Broker(
        "the consumer was cancelled".to_owned(),
    ))
}

/// Delivers, retrying a Smartico outage in place (so an outage does not burn the
/// message's delivery limit); other errors return at once.
async fn deliver_with_retries(
    dispatcher: &Dispatcher,
    message_id: i64,
    payload: &Json,
    backoff: Backoff,
) -> Result<()> {
    let started = tokio::time::Instant::now();
    let mut attempt = 0u32;
    loop {
        attempt = attempt.saturating_add(1);
        let error = match dispatcher.deliver(message_id, payload).await {
            Ok(()) => return Ok(()),
            Err(error) => error,
        };
        let transient = matches!(
            error,
            DeliveryError::Rejected { .. }
                | DeliveryError::Unreachable(_)
                | DeliveryError::CircuitOpen
        );
        if !transient || started.elapsed() > IN_PLACE_RETRY_LIMIT {
            return Err(error);
        }
        let wait = error
            .retry_after()
            .unwrap_or_default()
            .max(backoff.delay(attempt));
        tracing::debug!(message_id, attempt, %error, "smartico failed; retrying in place");
        tokio::time::sleep(wait).await;
    }
}
