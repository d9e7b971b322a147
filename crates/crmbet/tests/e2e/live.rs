//! Live transactions through the server: a generated lake replayed as REST batches into
//! SQLite, as a gRPC client stream into PostgreSQL, and as RabbitMQ messages, leaves every
//! player with the features a full ETL run computes on that lake; a second replay changes
//! nothing.

use std::path::Path;

use chrono::{NaiveDate, Utc};
use crmbet_app::LivePlay;
use crmbet_etl::live::{LiveTransaction, lake_transactions};
use crmbet_etl::{
    EtlMode, EtlOptions, LakeSource, PlayerFeatures, SyntheticFormat, SyntheticLakeOptions,
    largest_feature_difference, run_etl, write_synthetic_lake,
};
use crmbet_proto::v1::event_service_client::EventServiceClient;
use crmbet_proto::v1::{IngestOutcome, IngestRequest};
use crmbet_server::live_messages::transaction_message;
use crmbet_store::Store;
use crmbet_store::throwaway_postgres::ThrowawayPostgres;
use serde_json::{Value, json};

use crate::campaign::delete_queues;
use crate::server::RunningServer;

/// Transactions per REST request or stream message.
const BATCH: usize = 500;

/// A generated lake with broken and repeated rows, its rows in the ETL's order, and the
/// features of a full ETL run over it.
pub(crate) struct ReplayedLake {
    pub rows: Vec<LiveTransaction>,
    pub features: Vec<PlayerFeatures>,
    pub quarantined: u64,
    pub duplicates: u64,
}

async fn lake_with_batch_features(folder: &Path) -> ReplayedLake {
    let lake = folder.join("lake");
    let mut options =
        SyntheticLakeOptions::new(300, 12_000, NaiveDate::from_ymd_opt(2026, 5, 31).unwrap());
    options.seed = 4_242;
    options.dirty_fraction = 0.02;
    options.format = SyntheticFormat::Csv;
    write_synthetic_lake(&lake, &options, &mut |_| {}).unwrap();
    let etl = EtlOptions::new(
        LakeSource::local(&lake),
        folder.join("warehouse"),
        "live-e2e",
    )
    .with_mode(EtlMode::Full)
    .with_now(Utc::now());
    let outcome = run_etl(etl, &|_: crmbet_etl::EtlProgress| {})
        .await
        .unwrap();
    let rows = lake_transactions(&lake).await.unwrap();
    assert_eq!(rows.len() as u64, outcome.rows_read);
    ReplayedLake {
        rows,
        features: outcome.features,
        quarantined: outcome.rows_quarantined,
        duplicates: outcome.duplicates,
    }
}

/// A transaction as the platform would post it: the lake contract's columns, absent ones
/// left out.
fn posted(transaction: &LiveTransaction) -> Value {
    let Value::Object(columns) = serde_json::to_value(transaction).unwrap() else {
        panic!("a transaction is a JSON object");
    };
    Value::Object(
        columns
            .into_iter()
            .filter(|(_, value)| !value.is_null())
            .collect(),
    )
}

fn add(total: &mut IngestOutcome, outcome: &Value) {
    let count = |name: &str| {
        outcome[name].as_str().map_or_else(
            || outcome[name].as_u64().unwrap_or_default(),
            |text| text.parse().unwrap(),
        )
    };
    total.accepted += count("accepted");
    total.duplicates += count("duplicates");
    total.quarantined += count("quarantined");
    let rejected = outcome["rejected"].as_array().map_or(0, Vec::len) as u64;
    assert_eq!(
        rejected,
        count("quarantined"),
        "each rejected row is listed: {outcome}"
    );
}

/// Posts every row to `POST /api/v1/events` in batches; returns the summed outcome.
async fn post_all(server: &RunningServer, rows: &[LiveTransaction]) -> IngestOutcome {
    let client = server.rest_client().await;
    let mut total = IngestOutcome::default();
    for batch in rows.chunks(BATCH) {
        let body = json!({ "transactions": batch.iter().map(posted).collect::<Vec<_>>() });
        let response = client
            .post(format!("{}/api/v1/events", server.url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let answer: Value = response.json().await.unwrap();
        assert_eq!(status, 200, "{answer}");
        add(&mut total, &answer["outcome"]);
    }
    total
}

/// Streams every row over `EventService.Ingest`; returns the stream's outcome.
async fn stream_all(server: &RunningServer, rows: &[LiveTransaction]) -> IngestOutcome {
    let mut client = EventServiceClient::new(server.grpc_channel().await);
    let messages: Vec<IngestRequest> = rows
        .chunks(BATCH)
        .map(|batch| IngestRequest {
            transactions: batch.iter().map(transaction_message).collect(),
        })
        .collect();
    let response = client
        .ingest(tokio_stream::iter(messages))
        .await
        .unwrap()
        .into_inner();
    response.outcome.unwrap()
}

/// Every player's live features in `database_url` equal the batch ones.
pub(crate) async fn assert_live_features(database_url: &str, batch: &[PlayerFeatures]) {
    let store = Store::connect(database_url).await.unwrap();
    let live = LivePlay::new(store).features().await.unwrap();
    assert_eq!(live.len(), batch.len(), "players");
    let difference = largest_feature_difference(batch, &live).unwrap();
    assert!(
        difference <= 1e-9,
        "largest relative difference {difference}"
    );
}

#[tokio::test]
async fn a_lake_replayed_over_rest_into_sqlite_gives_the_batch_features() {
    let folder = tempfile::tempdir().unwrap();
    let ReplayedLake {
        rows,
        features: batch,
        quarantined,
        duplicates,
    } = lake_with_batch_features(folder.path()).await;
    let database_url = format!(
        "sqlite://{}?mode=rwc",
        folder.path().join("live.db").display()
    );
    let server = RunningServer::serve(&database_url);

    let outcome = post_all(&server, &rows).await;
    assert_eq!(outcome.quarantined, quarantined);
    assert!(
        outcome.duplicates > 0,
        "the lake repeats some rows: {outcome:?}"
    );
    assert_eq!(
        outcome.accepted + outcome.duplicates + outcome.quarantined,
        rows.len() as u64
    );
    assert_live_features(&database_url, &batch).await;

    // Sent again, every valid transaction is a duplicate and nothing changes.
    let again = post_all(&server, &rows).await;
    assert_eq!(again.accepted, 0, "{again:?}");
    assert_eq!(again.quarantined, quarantined);
    assert_live_features(&database_url, &batch).await;

    // The platform writes the same transactions to its lake: the batch run counts each
    // once, knows which arrived live, and its features are the same.
    let (_, summary) = crate::etl::run_etl(
        &database_url,
        &folder.path().join("lake"),
        &folder.path().join("crmbet-warehouse"),
    );
    assert_eq!(summary["live_rows_staged"], outcome.accepted, "{summary}");
    assert_eq!(summary["live_rows_loaded"], outcome.accepted, "{summary}");
    assert_eq!(summary["rows_already_live"], outcome.accepted, "{summary}");
    assert_eq!(summary["rows_loaded"], 0, "{summary}");
    assert_eq!(summary["rows_quarantined"], quarantined, "{summary}");
    assert_eq!(
        summary["duplicates"], duplicates,
        "the lake's own repeats: {summary}"
    );
    assert_eq!(summary["players"], batch.len(), "{summary}");
    assert_stored_features(&database_url, &batch).await;
    assert_live_features(&database_url, &batch).await;

    // Live events already in the warehouse stay duplicates after the run.
    let after_run = post_all(&server, &rows).await;
    assert_eq!(after_run.accepted, 0, "{after_run:?}");
    assert_live_features(&database_url, &batch).await;
}

/// The features the latest batch run stored equal `batch`.
async fn assert_stored_features(database_url: &str, batch: &[PlayerFeatures]) {
    let store = Store::connect(database_url).await.unwrap();
    let run = store.latest_etl_run_with_features().await.unwrap().unwrap();
    let rows = store.feature_rows(run).await.unwrap();
    assert_eq!(rows.player_ids.len(), batch.len());
    let width = rows.columns.len();
    for (index, player) in batch.iter().enumerate() {
        assert_eq!(rows.player_ids[index], player.user_id);
        let expected = crmbet_app::numeric_features(player);
        let stored = &rows.values[index * width..(index + 1) * width];
        for ((name, stored), expected) in rows.columns.iter().zip(stored).zip(&expected) {
            assert!(
                (stored - expected).abs() <= 1e-9 * expected.abs().max(1.0),
                "{}: {name} stored {stored}, batch {expected}",
                player.user_id
            );
        }
    }
}

/// Moves the newer half of the lake's transaction objects (by key) to `newer`.
fn split_lake(lake: &Path, newer: &Path) {
    let mut objects = Vec::new();
    let mut folders = vec![lake.join("transactions")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else {
                objects.push(path);
            }
        }
    }
    objects.sort();
    assert!(objects.len() >= 2, "a lake of several objects");
    for object in &objects[objects.len() / 2..] {
        let moved = newer.join(object.strip_prefix(lake).unwrap());
        std::fs::create_dir_all(moved.parent().unwrap()).unwrap();
        std::fs::rename(object, moved).unwrap();
    }
}

#[tokio::test]
async fn live_events_after_a_batch_run_continue_every_players_history() {
    let folder = tempfile::tempdir().unwrap();
    let ReplayedLake {
        features: batch, ..
    } = lake_with_batch_features(folder.path()).await;
    // The older half is loaded by a batch run, the newer half arrives live.
    let lake = folder.path().join("lake");
    let newer = folder.path().join("newer");
    split_lake(&lake, &newer);
    let database = ThrowawayPostgres::create("crmbet_live_after_batch").await;
    let (_, summary) = crate::etl::run_etl(&database.url, &lake, &folder.path().join("warehouse"));
    assert!(
        summary["live_states_seeded"].as_u64().unwrap() > 0,
        "{summary}"
    );
    let server = RunningServer::serve(&database.url);
    let rows = lake_transactions(&newer).await.unwrap();
    let outcome = stream_all(&server, &rows).await;
    assert!(outcome.accepted > 0, "{outcome:?}");
    assert_live_features(&database.url, &batch).await;

    // The next batch run over the whole lake counts the live half once and agrees.
    split_lake_back(&newer, &lake);
    let (_, summary) = crate::etl::run_etl(&database.url, &lake, &folder.path().join("warehouse"));
    assert_eq!(summary["rows_already_live"], outcome.accepted, "{summary}");
    assert_stored_features(&database.url, &batch).await;
    assert_live_features(&database.url, &batch).await;
}

/// Puts the objects moved by [`split_lake`] back.
fn split_lake_back(newer: &Path, lake: &Path) {
    let mut folders = vec![newer.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else {
                let back = lake.join(path.strip_prefix(newer).unwrap());
                std::fs::create_dir_all(back.parent().unwrap()).unwrap();
                std::fs::rename(&path, back).unwrap();
            }
        }
    }
}

#[tokio::test]
async fn a_lake_streamed_over_grpc_into_postgres_gives_the_batch_features() {
    let folder = tempfile::tempdir().unwrap();
    let ReplayedLake {
        rows,
        features: batch,
        quarantined,
        ..
    } = lake_with_batch_features(folder.path()).await;
    let database = ThrowawayPostgres::create("crmbet_live").await;
    let server = RunningServer::serve(&database.url);

    let outcome = stream_all(&server, &rows).await;
    assert_eq!(outcome.quarantined, quarantined);
    assert_eq!(outcome.rejected.len() as u64, quarantined);
    assert_eq!(
        outcome.accepted + outcome.duplicates + outcome.quarantined,
        rows.len() as u64
    );
    assert_live_features(&database.url, &batch).await;

    let again = stream_all(&server, &rows).await;
    assert_eq!(again.accepted, 0, "{again:?}");
    assert_live_features(&database.url, &batch).await;
}

fn amqp_url() -> String {
    std::env::var("CRMBET_TEST_AMQP_URL").unwrap_or_else(|_| {
        panic!("CRMBET_TEST_AMQP_URL is not set: scripts/test.sh starts RabbitMQ and sets it; this test does not skip")
    })
}

/// Publishes `bodies` as persistent messages to `queue` (declared as the server declares it).
pub(crate) async fn publish(queue: &str, bodies: &[(Vec<u8>, &str)]) {
    let connection =
        lapin::Connection::connect(&amqp_url(), lapin::ConnectionProperties::default())
            .await
            .unwrap();
    let channel = connection.create_channel().await.unwrap();
    // Declared as the server declares them, so nothing published before it starts is lost.
    crmbet_integrations::declare_with_dead_letters(&channel, queue, None)
        .await
        .unwrap();
    channel
        .confirm_select(lapin::options::ConfirmSelectOptions::default())
        .await
        .unwrap();
    let mut confirms = Vec::with_capacity(bodies.len());
    for (body, content_type) in bodies {
        let confirm = channel
            .basic_publish(
                "".into(),
                queue.into(),
                lapin::options::BasicPublishOptions::default(),
                body,
                lapin::BasicProperties::default()
                    .with_delivery_mode(2)
                    .with_content_type((*content_type).into()),
            )
            .await
            .unwrap();
        confirms.push(confirm);
    }
    for confirm in confirms {
        assert!(
            confirm.await.unwrap().is_ack(),
            "the broker refused a message"
        );
    }
}

/// Messages waiting in `queue` (0 when it does not exist yet).
async fn queued(queue: &str) -> u32 {
    let connection =
        lapin::Connection::connect(&amqp_url(), lapin::ConnectionProperties::default())
            .await
            .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .queue_declare(
            queue.into(),
            lapin::options::QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            lapin::types::FieldTable::default(),
        )
        .await
        .map_or(0, |declared| declared.message_count())
}

async fn wait_for_counts(database_url: &str, transactions: u64, quarantined: u64) {
    let store = Store::connect(database_url).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let stored = store.live_transaction_count().await.unwrap();
        let refused = store.live_quarantine_count().await.unwrap();
        if stored == transactions && refused == quarantined {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{stored} of {transactions} transactions stored, {refused} of {quarantined} quarantined"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_lake_published_to_rabbitmq_gives_the_batch_features_and_bad_messages_dead_letter() {
    let folder = tempfile::tempdir().unwrap();
    let lake = lake_with_batch_features(folder.path()).await;
    let stored = lake.rows.len() as u64 - lake.quarantined - lake.duplicates;
    let queue = format!("crmbet.test.live.{}", Utc::now().timestamp_micros());
    let database_url = format!(
        "sqlite://{}?mode=rwc",
        folder.path().join("live.db").display()
    );
    let environment = [
        ("AMQP_URL", amqp_url()),
        ("CRMBET_LIVE_QUEUE", queue.clone()),
        ("CRMBET_AMQP_QUEUE", format!("{queue}.campaigns")),
    ];
    let server = RunningServer::serve_with_environment(&database_url, &environment);

    // JSON batches, a protobuf batch, single objects, and one message nobody can read.
    let (protobuf_rows, json_rows) = lake.rows.split_at(BATCH);
    let mut bodies: Vec<(Vec<u8>, &str)> = vec![(
        prost::Message::encode_to_vec(&crmbet_proto::v1::IngestBatchRequest {
            transactions: protobuf_rows.iter().map(transaction_message).collect(),
        }),
        "application/x-protobuf",
    )];
    let (single_rows, batched_rows) = json_rows.split_at(20);
    for row in single_rows {
        bodies.push((
            serde_json::to_vec(&posted(row)).unwrap(),
            "application/json",
        ));
    }
    for batch in batched_rows.chunks(BATCH) {
        let body = json!({ "transactions": batch.iter().map(posted).collect::<Vec<_>>() });
        bodies.push((serde_json::to_vec(&body).unwrap(), "application/json"));
    }
    bodies.push((b"this is not a transaction".to_vec(), "text/plain"));
    publish(&queue, &bodies).await;
    wait_for_counts(&database_url, stored, lake.quarantined).await;
    assert_live_features(&database_url, &lake.features).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while queued(&format!("{queue}.dead")).await != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the unreadable message was not dead-lettered"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // Everything again: duplicates and the same quarantine, once the queue is drained.
    publish(&queue, &bodies[..bodies.len() - 1]).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while queued(&queue).await != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the replay was not consumed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    wait_for_counts(&database_url, stored, 2 * lake.quarantined).await;
    assert_live_features(&database_url, &lake.features).await;
    drop(server);
    delete_queues(&queue).await;
}

/// A generated lake to replay through a queue of its own into a fresh SQLite database, one
/// transaction a message: many batches, so a fault lands between two of them.
pub(crate) struct QueueReplay {
    _folder: tempfile::TempDir,
    pub lake: ReplayedLake,
    /// The distinct transactions the lake holds: what must end up stored.
    pub stored: u64,
    pub queue: String,
    pub database_url: String,
    pub environment: Vec<(&'static str, String)>,
    pub bodies: Vec<(Vec<u8>, &'static str)>,
}

impl QueueReplay {
    pub(crate) async fn new(name: &str) -> Self {
        let folder = tempfile::tempdir().unwrap();
        let lake = lake_with_batch_features(folder.path()).await;
        let stored = lake.rows.len() as u64 - lake.quarantined - lake.duplicates;
        let queue = format!("crmbet.test.{name}.{}", Utc::now().timestamp_micros());
        let database_url = format!(
            "sqlite://{}?mode=rwc",
            folder.path().join("live.db").display()
        );
        let environment = vec![
            ("AMQP_URL", amqp_url()),
            ("CRMBET_LIVE_QUEUE", queue.clone()),
            ("CRMBET_AMQP_QUEUE", format!("{queue}.campaigns")),
        ];
        let bodies = lake
            .rows
            .iter()
            .map(|row| {
                (
                    serde_json::to_vec(&posted(row)).unwrap(),
                    "application/json",
                )
            })
            .collect();
        Self {
            _folder: folder,
            lake,
            stored,
            queue,
            database_url,
            environment,
            bodies,
        }
    }

    /// Waits until the server has stored its first transaction.
    pub(crate) async fn wait_for_first(&self, store: &Store) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while store.live_transaction_count().await.unwrap() == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "nothing was read from the queue"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Waits until every distinct transaction is stored (never more) and the queue is empty.
    pub(crate) async fn wait_for_all(&self, store: &Store) {
        let stored = self.stored;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
        loop {
            let transactions = store.live_transaction_count().await.unwrap();
            if transactions == stored && queued(&self.queue).await == 0 {
                return;
            }
            assert!(
                transactions <= stored,
                "{transactions} transactions stored: more than the {stored} distinct ones"
            );
            assert!(
                std::time::Instant::now() < deadline,
                "{transactions} of {stored} transactions stored after the fault"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test]
async fn a_server_killed_while_reading_the_queue_loses_and_doubles_nothing() {
    let replay = QueueReplay::new("live-kill").await;
    publish(&replay.queue, &replay.bodies).await;

    let server = RunningServer::serve_with_environment(&replay.database_url, &replay.environment);
    let store = Store::connect(&replay.database_url).await.unwrap();
    replay.wait_for_first(&store).await;
    let (database_url, admin, directory) = server.kill();
    let at_kill = store.live_transaction_count().await.unwrap();
    assert!(
        at_kill < replay.stored,
        "the kill came too late: {at_kill} of {} stored",
        replay.stored
    );

    let _restarted =
        RunningServer::restart(database_url.clone(), admin, directory, &replay.environment);
    replay.wait_for_all(&store).await;
    // Unacknowledged messages came back: their transactions are duplicates now; the
    // quarantine keeps every refusal, repeats included.
    assert!(store.live_quarantine_count().await.unwrap() >= replay.lake.quarantined);
    assert_live_features(&database_url, &replay.lake.features).await;
    delete_queues(&replay.queue).await;
}
