//! RabbitMQ restarted under live intake (the machine's broker: scripts/test.sh runs this
//! alone, after the other tests): the server reconnects, every event published before and
//! after the restart is stored once, events sent again are duplicates, and every player's
//! features equal a full ETL run's.

use std::process::Command;

use chrono::Utc;
use crmbet_store::Store;

use crate::campaign::delete_queues;
use crate::live::{
    amqp_url, assert_live_features, lake_with_batch_features, posted, publish, queued,
};
use crate::server::RunningServer;

/// Stops and starts the RabbitMQ application (every connection drops; durable queues and
/// persistent messages stay) and waits until it serves again.
fn restart_rabbitmq() {
    for step in ["stop_app", "start_app", "await_startup"] {
        let status = Command::new("rabbitmqctl")
            .arg(step)
            .status()
            .expect("running rabbitmqctl (installed with rabbitmq-server)");
        assert!(status.success(), "rabbitmqctl {step} failed: {status}");
    }
}

#[tokio::test]
async fn a_rabbitmq_restart_mid_stream_loses_and_doubles_nothing() {
    let folder = tempfile::tempdir().unwrap();
    let lake = lake_with_batch_features(folder.path()).await;
    let stored = lake.rows.len() as u64 - lake.quarantined - lake.duplicates;
    let queue = format!("crmbet.test.live-restart.{}", Utc::now().timestamp_micros());
    let database_url = format!(
        "sqlite://{}?mode=rwc",
        folder.path().join("live.db").display()
    );
    let environment = [
        ("AMQP_URL", amqp_url()),
        ("CRMBET_LIVE_QUEUE", queue.clone()),
        ("CRMBET_AMQP_QUEUE", format!("{queue}.campaigns")),
    ];
    // One transaction a message: the restart lands between batches.
    let bodies: Vec<(Vec<u8>, &str)> = lake
        .rows
        .iter()
        .map(|row| {
            (
                serde_json::to_vec(&posted(row)).unwrap(),
                "application/json",
            )
        })
        .collect();
    let (before, after) = bodies.split_at(bodies.len() / 2);
    publish(&queue, before).await;

    let server = RunningServer::serve_with_environment(&database_url, &environment);
    let store = Store::connect(&database_url).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while store.live_transaction_count().await.unwrap() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing was read from the queue"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    restart_rabbitmq();
    let at_restart = store.live_transaction_count().await.unwrap();
    assert!(
        at_restart < stored,
        "{at_restart} of {stored} stored before the restart"
    );

    // The rest after the restart, and the first hundred events again.
    publish(&queue, after).await;
    publish(&queue, &before[..100]).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    loop {
        let transactions = store.live_transaction_count().await.unwrap();
        if transactions == stored && queued(&queue).await == 0 {
            break;
        }
        assert!(
            transactions <= stored,
            "{transactions} transactions stored: more than the {stored} distinct ones"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "{transactions} of {stored} transactions stored after the restart"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_live_features(&database_url, &lake.features).await;
    drop(server);
    delete_queues(&queue).await;
}
