//! On the machine's RabbitMQ: a message the dispatcher cannot deliver (here: unreadable) is
//! redelivered until the queue's delivery limit, then moved to `<queue>.dead`, where it
//! stays. `CRMBET_TEST_AMQP_URL` names the broker; this test does not skip without it.

// Test helpers unwrap on purpose: the panic with the error is the failure report.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use crmbet_integrations::{
    Backoff, BrokerSettings, Dispatcher, SmarticoClient, SmarticoSettings, run_consumer,
};
use crmbet_store::Store;
use lapin::options::{BasicPublishOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};

fn broker_url() -> String {
    std::env::var("CRMBET_TEST_AMQP_URL").unwrap_or_else(|_| {
        panic!("CRMBET_TEST_AMQP_URL is not set: scripts/test.sh starts RabbitMQ and sets it")
    })
}

#[tokio::test]
async fn an_undeliverable_message_is_dead_lettered_after_the_delivery_limit() {
    let directory = tempfile::tempdir().unwrap();
    let database_url = format!(
        "sqlite://{}?mode=rwc",
        directory.path().join("crmbet.db").display()
    );
    let store = Store::connect(&database_url).await.unwrap();
    store.migrate_up().await.unwrap();
    let smartico = SmarticoClient::new(SmarticoSettings {
        url: "http://127.0.0.1:9".to_owned(),
        api_key: "key".to_owned(),
        brand: "brand".to_owned(),
        events_path: "/events".to_owned(),
        campaign_event: "crmbet_campaign".to_owned(),
        profile_event: "update_profile".to_owned(),
        max_in_flight: 2,
        requests_per_minute: 6000,
        max_request_bytes: 1 << 20,
        timeout: Duration::from_secs(1),
        breaker_failures: 5,
        breaker_open_for: Duration::from_secs(1),
    })
    .unwrap();
    let queue = format!(
        "crmbet.test.dead-letters.{}.{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros()
    );
    let settings = BrokerSettings {
        url: broker_url(),
        queue: queue.clone(),
        delivery_max_attempts: 2,
        prefetch: 2,
        lease: Duration::from_secs(5),
        backoff: Backoff {
            initial: Duration::from_millis(50),
            maximum: Duration::from_millis(200),
        },
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let consumer = tokio::spawn(run_consumer(
        Dispatcher::new(store, smartico),
        settings,
        async move {
            let _ = stopped.await;
        },
    ));

    let connection = Connection::connect(&broker_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let dead = format!("{queue}.dead");
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    // The consumer declares both queues when it connects. A failed passive declare closes
    // its channel, so each look uses a fresh one.
    let deadline = Instant::now() + Duration::from_secs(30);
    while connection
        .create_channel()
        .await
        .unwrap()
        .queue_declare(queue.as_str().into(), passive, FieldTable::default())
        .await
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "the consumer never declared {queue}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let channel = connection.create_channel().await.unwrap();
    channel
        .basic_publish(
            "".into(),
            queue.as_str().into(),
            BasicPublishOptions::default(),
            b"not a campaign delivery",
            BasicProperties::default()
                .with_delivery_mode(2)
                .with_message_id("41".into()),
        )
        .await
        .unwrap()
        .await
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let declared = channel
            .queue_declare(dead.as_str().into(), passive, FieldTable::default())
            .await
            .unwrap();
        if declared.message_count() == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the message never reached {dead}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop.send(());
    consumer.await.unwrap();
    for name in [queue.as_str(), dead.as_str()] {
        let _ = channel
            .queue_delete(name.into(), QueueDeleteOptions::default())
            .await;
    }
}
