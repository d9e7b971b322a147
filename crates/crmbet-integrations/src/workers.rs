//! Starting and stopping this process's delivery: the relay and dispatcher over the outbox
//! table (no `AMQP_URL`) or over RabbitMQ, sending to Smartico.

use std::time::Duration;

use crmbet_core::Config;
use crmbet_store::Store;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::backoff::Backoff;
use crate::breaker::CircuitBreaker;
use crate::dispatcher::Dispatcher;
use crate::error::Result;
use crate::outbox_queue::{OutboxQueue, QueueSettings};
use crate::rabbitmq::{BrokerSettings, run_consumer, run_relay};
use crate::smartico::{SmarticoClient, SmarticoSettings};

/// The running delivery tasks of this process.
#[derive(Debug)]
pub struct Delivery {
    breaker: Option<CircuitBreaker>,
    tasks: Vec<JoinHandle<()>>,
}

impl Delivery {
    /// Starts delivery as `config` says; the tasks stop when `shutdown` turns true. Without
    /// `CRMBET_SMARTICO_URL` nothing starts and messages wait in the outbox.
    pub fn start(store: Store, config: &Config, shutdown: watch::Receiver<bool>) -> Result<Self> {
        let Some(settings) = SmarticoSettings::from_config(config) else {
            tracing::warn!("CRMBET_SMARTICO_URL is not set: campaign messages wait in the outbox");
            return Ok(Self {
                breaker: None,
                tasks: Vec::new(),
            });
        };
        let smartico = SmarticoClient::new(settings)?;
        let breaker = smartico.breaker().clone();
        let dispatcher = Dispatcher::new(store.clone(), smartico);
        let queue_settings = QueueSettings {
            lease: Duration::from_secs(config.outbox_lease_seconds),
            idle_poll: Duration::from_millis(250),
            batch: config.smartico_max_in_flight as u64,
            backoff: Backoff::default(),
        };
        let tasks = match &config.amqp_url {
            None => {
                let queue = OutboxQueue::new(store, dispatcher, queue_settings);
                vec![tokio::spawn(queue.run(stopped(shutdown)))]
            }
            Some(url) => {
                let settings = BrokerSettings {
                    url: url.clone(),
                    queue: config.amqp_queue.clone(),
                    delivery_max_attempts: config.delivery_max_attempts,
                    prefetch: u16::try_from(config.smartico_max_in_flight).unwrap_or(u16::MAX),
                    lease: queue_settings.lease,
                    backoff: Backoff::default(),
                };
                vec![
                    tokio::spawn(run_relay(
                        store,
                        settings.clone(),
                        stopped(shutdown.clone()),
                    )),
                    tokio::spawn(run_consumer(dispatcher, settings, stopped(shutdown))),
                ]
            }
        };
        Ok(Self {
            breaker: Some(breaker),
            tasks,
        })
    }

    /// The circuit breaker in front of Smartico, when delivery runs.
    pub fn breaker(&self) -> Option<CircuitBreaker> {
        self.breaker.clone()
    }

    /// Waits up to `grace` for the tasks to finish their round after shutdown.
    pub async fn stopped(self, grace: Duration) {
        let joined = futures::future::join_all(self.tasks);
        if tokio::time::timeout(grace, joined).await.is_err() {
            tracing::warn!(
                "delivery did not stop within the grace period; unfinished messages are delivered after the restart"
            );
        }
    }
}

/// Resolves once `shutdown` turns true (or its sender is gone).
pub async fn stopped(mut shutdown: watch::Receiver<bool>) {
    while !*shutdown.borrow_and_update() {
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}
