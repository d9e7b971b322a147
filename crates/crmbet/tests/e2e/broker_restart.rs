//! RabbitMQ restarted under live intake (the machine's broker: scripts/test.sh runs this
//! alone, after the other tests): the server reconnects, every event published before and
//! after the restart is stored once, events sent again are duplicates, and every player's
//! features equal a full ETL run's.

use std::process::Command;

use crmbet_store::Store;

use crate::campaign::delete_queues;
use crate::live::{QueueReplay, assert_live_features, publish};
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
    let replay = QueueReplay::new("live-restart").await;
    let (before, after) = replay.bodies.split_at(replay.bodies.len() / 2);
    publish(&replay.queue, before).await;

    let server = RunningServer::serve_with_environment(&replay.database_url, &replay.environment);
    let store = Store::connect(&replay.database_url).await.unwrap();
    replay.wait_for_first(&store).await;
    restart_rabbitmq();
    let at_restart = store.live_transaction_count().await.unwrap();
    assert!(
        at_restart < replay.stored,
        "{at_restart} of {} stored before the restart",
        replay.stored
    );

    // The rest after the restart, and the first hundred events again.
    publish(&replay.queue, after).await;
    publish(&replay.queue, &before[..100]).await;
    replay.wait_for_all(&store).await;
    assert_live_features(&replay.database_url, &replay.lake.features).await;
    drop(server);
    delete_queues(&replay.queue).await;
}
