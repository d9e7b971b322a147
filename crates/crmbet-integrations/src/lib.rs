//! Delivery of campaign messages to Smartico: its server-to-server event API client (rate
//! limited, retried with backoff, behind a circuit breaker), and the relay and dispatcher
//! that move outbox messages to it: in process over the outbox table, or over RabbitMQ
//! (publisher confirms, persistent messages, a quorum queue with a dead-letter queue).
//!
//! Invariant: an outbox message is marked published only after Smartico accepted every
//! event in it (a duplicate event id counts as accepted); until then it stays in the
//! outbox and is claimed again, so a crash, a broker or a Smartico outage delays delivery
//! and never loses it. Event ids derive from the campaign and the player, so a repeated
//! delivery is recognised downstream.
//!
//! Also the RabbitMQ intake of live transactions ([`run_live_intake`]), which hands
//! batches of messages to the caller and acknowledges them once the caller stored them,
//! and the delivery of segment changes to operators' signed webhooks ([`WebhookDelivery`]).

mod backoff;
mod breaker;
mod dispatcher;
mod error;
mod live_intake;
mod outbox_queue;
mod rabbitmq;
mod reconnect;
mod segment_webhooks;
mod smartico;
mod throttle;
mod workers;

pub use backoff::Backoff;
pub use breaker::{BreakerState, CircuitBreaker};
pub use dispatcher::Dispatcher;
pub use error::{DeliveryError, Result};
pub use live_intake::{LiveIntakeSettings, LiveMessage, MessageVerdicts, run_live_intake};
pub use outbox_queue::{OutboxQueue, QueueSettings};
pub use rabbitmq::{BrokerSettings, declare_with_dead_letters, run_consumer, run_relay};
pub use segment_webhooks::{
    DELIVERY_HEADER, SIGNATURE_HEADER, WEBHOOK_ID_HEADER, WebhookDelivery, WebhookSettings,
};
pub use smartico::{DUPLICATE_EVENT, Sent, SmarticoClient, SmarticoEvent, SmarticoSettings};
pub use throttle::Throttle;
pub use workers::{Delivery, stopped};
