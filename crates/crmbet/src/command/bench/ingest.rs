//! `crmbet bench ingest`: live transactions stored by the whole server, over a gRPC client
//! stream and over RabbitMQ, beside the same transactions stored by the use case called in
//! process (the baseline: no protocol, no broker), on SQLite and with `--postgres` on
//! PostgreSQL, in one run.
//!
//! The transactions are a synthetic lake's rows (dirty ones included) replayed in the ETL's
//! order; every measurement starts on an empty database, so none is a duplicate of another
//! measurement's. Not measured yet: the time from intake to a new segment being readable,
//! which needs live segment assignment (issue 18).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::NaiveDate;
use crmbet_app::{IntakeSource, LivePlay, LiveTransaction, create_account, generate_password};
use crmbet_core::rate_limit_classes::RateLimitClasses;
use crmbet_core::{Config, Role};
use crmbet_etl::live::lake_transactions;
use crmbet_etl::{SyntheticLakeOptions, write_synthetic_lake};
use crmbet_integrations::{
    Backoff, LiveIntakeSettings, LiveMessage, declare_with_dead_letters, run_live_intake, stopped,
};
use crmbet_proto::v1::auth_service_client::AuthServiceClient;
use crmbet_proto::v1::event_service_client::EventServiceClient;
use crmbet_proto::v1::{IngestRequest, LoginRequest};
use crmbet_server::live_messages::{ingest_live_messages, transaction_message};
use crmbet_server::{AppState, Transport, application, serve};
use crmbet_store::Store;
use crmbet_store::throwaway_postgres::ThrowawayPostgres;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

use crate::cli::BenchIngestArgs;

/// The goal and the floor of issue 18, in events a second.
const GOAL_EVENTS_PER_SECOND: f64 = 20_000.0;
const FLOOR_EVENTS_PER_SECOND: f64 = 5_000.0;

/// One measurement.
struct Measurement {
    engine: &'static str,
    path: &'static str,
    events: usize,
    seconds: f64,
}

impl Measurement {
    fn events_per_second(&self) -> f64 {
        self.events as f64 / self.seconds.max(1e-9)
    }
}

pub(crate) async fn bench_ingest(config: Config, arguments: BenchIngestArgs) -> anyhow::Result<()> {
    let scratch = tempfile::tempdir().context("creating a scratch folder")?;
    let transactions = replayed_lake(scratch.path(), &arguments).await?;
    let amqp_url = config.amqp_url.clone();
    let mut measurements = Vec::new();
    let mut engines = vec!["sqlite"];
    if arguments.postgres {
        engines.push("postgres");
    }
    let mut paths: Vec<&'static str> = vec!["use case (baseline)", "gRPC stream"];
    if amqp_url.is_some() {
        paths.push("RabbitMQ");
    }
    for engine in engines {
        for (round, path) in paths.iter().copied().enumerate() {
            // An empty database per measurement, so no transaction is a duplicate of an
            // earlier measurement's.
            let postgres = if engine == "postgres" {
                Some(ThrowawayPostgres::create("crmbet_bench_ingest").await)
            } else {
                None
            };
            let database_url = match &postgres {
                Some(database) => database.url.clone(),
                None => format!(
                    "sqlite://{}?mode=rwc",
                    scratch.path().join(format!("ingest-{round}.db")).display()
                ),
            };
            let store = Store::connect(&database_url)
                .await
                .context("opening the database")?;
            store.migrate_up().await.context("migrating")?;
            if !arguments.json {
                eprintln!("{engine}: {path} ...");
            }
            let seconds = match path {
                "gRPC stream" => {
                    let server = ServerSetup {
                        config: &config,
                        store: &store,
                        database_url: &database_url,
                        scratch: scratch.path(),
                    };
                    over_grpc(server, &transactions, &arguments).await?
                }
                "RabbitMQ" => {
                    let url = amqp_url.clone().context("AMQP_URL")?;
                    over_rabbitmq(&url, &store, &transactions, &arguments).await?
                }
                _ => in_process(&store, &transactions, &arguments).await?,
            };
            measurements.push(Measurement {
                engine,
                path,
                events: transactions.len(),
                seconds,
            });
            drop(store);
            drop(postgres);
        }
    }
    report(&measurements, &arguments, amqp_url.is_some());
    Ok(())
}

/// A synthetic lake's rows, in the ETL's order.
async fn replayed_lake(
    scratch: &Path,
    arguments: &BenchIngestArgs,
) -> anyhow::Result<Vec<LiveTransaction>> {
    let lake = scratch.join("lake");
    let end = NaiveDate::from_ymd_opt(2026, 5, 31).context("a calendar date")?;
    let mut options = SyntheticLakeOptions::new(arguments.players, arguments.transactions, end);
    options.seed = arguments.seed;
    write_synthetic_lake(&lake, &options, &mut |_| {}).context("writing the lake")?;
    lake_transactions(&lake)
        .await
        .context("reading the lake's rows")
}

/// The baseline: the use case, batch after batch, in this process.
async fn in_process(
    store: &Store,
    transactions: &[LiveTransaction],
    arguments: &BenchIngestArgs,
) -> anyhow::Result<f64> {
    let live_play = LivePlay::new(store.clone());
    let started = Instant::now();
    for batch in transactions.chunks(arguments.batch.max(1)) {
        live_play
            .ingest(batch, IntakeSource::Grpc)
            .await
            .context("storing a batch")?;
    }
    Ok(started.elapsed().as_secs_f64())
}

/// What the in-process server is made of.
struct ServerSetup<'a> {
    config: &'a Config,
    store: &'a Store,
    database_url: &'a str,
    scratch: &'a Path,
}

/// The whole server in this process, fed over one gRPC client stream of batches.
async fn over_grpc(
    setup: ServerSetup<'_>,
    transactions: &[LiveTransaction],
    arguments: &BenchIngestArgs,
) -> anyhow::Result<f64> {
    let store = setup.store;
    let mut config = setup.config.clone();
    config.database_url = setup.database_url.to_owned();
    config.warehouse_dir = setup.scratch.join("warehouse");
    config.listen = "127.0.0.1:0".to_owned();
    config.tls_cert_file = None;
    config.tls_key_file = None;
    config.amqp_url = None;
    config.rate_limit_classes = format!("events={max}/{max}", max = u32::MAX)
        .parse::<RateLimitClasses>()
        .map_err(anyhow::Error::msg)?;
    config.jwt_secret = Some(format!("{}{}", generate_password(), generate_password()));
    config.jwt_key_file = None;
    let username = format!("bench-{}", generate_password().to_lowercase());
    let password = generate_password();
    create_account(store, &username, Role::Service, &password, "bench ingest")
        .await
        .context("creating the benchmark's service account")?;
    let state = AppState::new(store.clone(), config).context("building the server state")?;
    let router = application(state).await.context("building the server")?;
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding a local port")?;
    let address = listener.local_addr().context("reading the bound address")?;
    let (stop_server, server_stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        Transport::Plain,
        router,
        async {
            let _ = server_stopped.await;
        },
        Duration::from_secs(1),
    ));
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .context("the server's address")?
        .connect()
        .await
        .context("connecting to the server")?;
    let token = AuthServiceClient::new(channel.clone())
        .login(LoginRequest { username, password })
        .await
        .context("logging in")?
        .into_inner()
        .access_token;
    let messages: Vec<IngestRequest> = transactions
        .chunks(arguments.batch.max(1))
        .map(|batch| IngestRequest {
            transactions: batch.iter().map(transaction_message).collect(),
        })
        .collect();
    let mut request = tonic::Request::new(tokio_stream::iter(messages));
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}")
            .parse()
            .context("the access token is not a header value")?,
    );
    let started = Instant::now();
    let outcome = EventServiceClient::new(channel)
        .ingest(request)
        .await
        .context("streaming the transactions")?
        .into_inner()
        .outcome
        .unwrap_or_default();
    let seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        outcome.accepted + outcome.duplicates + outcome.quarantined == transactions.len() as u64,
        "the server answered for {} of {} transactions",
        outcome.accepted + outcome.duplicates + outcome.quarantined,
        transactions.len()
    );
    let _ = stop_server.send(());
    server.await.context("the server task failed")?;
    Ok(seconds)
}

/// The intake reading a queue that already holds every batch: from its start until every
/// transaction is stored.
async fn over_rabbitmq(
    url: &str,
    store: &Store,
    transactions: &[LiveTransaction],
    arguments: &BenchIngestArgs,
) -> anyhow::Result<f64> {
    let queue = format!("crmbet.bench.ingest.{}", generate_password().to_lowercase());
    let settings = LiveIntakeSettings {
        url: url.to_owned(),
        queue: queue.clone(),
        batch: 500,
        linger: Duration::from_millis(20),
        backoff: Backoff::default(),
    };
    // The intake declares the queue; publish once it exists, then time the reading.
    let bodies: Vec<Vec<u8>> = transactions
        .chunks(arguments.batch.max(1))
        .map(|batch| {
            let rows: Vec<&LiveTransaction> = batch.iter().collect();
            serde_json::to_vec(&json!({ "transactions": rows }))
        })
        .collect::<Result<_, _>>()
        .context("writing the messages")?;
    publish(url, &queue, &bodies).await?;
    let expected = stored_count_after(store, transactions).await?;
    let live_play = LivePlay::new(store.clone());
    let (stop, stopping) = watch::channel(false);
    let started = Instant::now();
    let intake = tokio::spawn(run_live_intake(
        settings,
        move |messages: Vec<LiveMessage>| {
            let live_play = live_play.clone();
            async move { ingest_live_messages(&live_play, messages).await }
        },
        stopped(stopping),
    ));
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let stored = store.live_transaction_count().await?;
        let quarantined = store.live_quarantine_count().await?;
        if (stored, quarantined) == expected {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the intake stored {stored} of {} transactions in 30 minutes",
            expected.0
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let _ = stop.send(true);
    intake.await.context("the intake task failed")?;
    delete_queue(url, &queue).await;
    Ok(seconds)
}

/// What the queue's transactions leave in an empty database: (stored, quarantined), from
/// the in-process check and dedupe.
async fn stored_count_after(
    store: &Store,
    transactions: &[LiveTransaction],
) -> anyhow::Result<(u64, u64)> {
    anyhow::ensure!(
        store.live_transaction_count().await? == 0,
        "the database is not empty"
    );
    let mut ids = std::collections::HashSet::new();
    let mut quarantined = 0;
    let now = chrono::Utc::now();
    for answer in crmbet_etl::live::check_all(transactions, now, "bench") {
        match answer {
            Ok(transaction) => {
                ids.insert(transaction.transaction_id);
            }
            Err(_) => quarantined += 1,
        }
    }
    Ok((ids.len() as u64, quarantined))
}

async fn publish(url: &str, queue: &str, bodies: &[Vec<u8>]) -> anyhow::Result<()> {
    let connection = lapin::Connection::connect(url, lapin::ConnectionProperties::default())
        .await
        .context("connecting to AMQP_URL")?;
    let channel = connection.create_channel().await?;
    declare_with_dead_letters(&channel, queue, None).await?;
    channel
        .confirm_select(lapin::options::ConfirmSelectOptions::default())
        .await?;
    let mut confirms = Vec::with_capacity(bodies.len());
    for body in bodies {
        confirms.push(
            channel
                .basic_publish(
                    "".into(),
                    queue.into(),
                    lapin::options::BasicPublishOptions::default(),
                    body,
                    lapin::BasicProperties::default()
                        .with_delivery_mode(2)
                        .with_content_type("application/json".into()),
                )
                .await?,
        );
    }
    for confirm in confirms {
        anyhow::ensure!(confirm.await?.is_ack(), "the broker refused a message");
    }
    Ok(())
}

async fn delete_queue(url: &str, queue: &str) {
    let Ok(connection) =
        lapin::Connection::connect(url, lapin::ConnectionProperties::default()).await
    else {
        return;
    };
    if let Ok(channel) = connection.create_channel().await {
        for name in [queue.to_owned(), format!("{queue}.dead")] {
            let _ = channel
                .queue_delete(
                    name.as_str().into(),
                    lapin::options::QueueDeleteOptions::default(),
                )
                .await;
        }
    }
}

fn report(measurements: &[Measurement], arguments: &BenchIngestArgs, with_amqp: bool) {
    let baseline = |engine: &str| {
        measurements
            .iter()
            .find(|measurement| {
                measurement.engine == engine && measurement.path.starts_with("use case")
            })
            .map_or(f64::NAN, Measurement::events_per_second)
    };
    if arguments.json {
        let rows: Vec<Value> = measurements
            .iter()
            .map(|measurement| {
                json!({
                    "engine": measurement.engine, "path": measurement.path,
                    "events": measurement.events, "seconds": measurement.seconds,
                    "events_per_second": measurement.events_per_second(),
                    "vs_use_case": measurement.events_per_second() / baseline(measurement.engine),
                })
            })
            .collect();
        println!(
            "{}",
            json!({ "batch": arguments.batch, "runs": rows,
                    "goal_events_per_second": GOAL_EVENTS_PER_SECOND,
                    "floor_events_per_second": FLOOR_EVENTS_PER_SECOND })
        );
        return;
    }
    println!(
        "{:<9} {:<20} {:>9} {:>9} {:>10} {:>12}",
        "engine", "path", "events", "seconds", "events/s", "vs use case"
    );
    for measurement in measurements {
        println!(
            "{:<9} {:<20} {:>9} {:>9.2} {:>10.0} {:>11.2}x",
            measurement.engine,
            measurement.path,
            measurement.events,
            measurement.seconds,
            measurement.events_per_second(),
            measurement.events_per_second() / baseline(measurement.engine)
        );
    }
    if !with_amqp {
        println!("(set AMQP_URL to measure the RabbitMQ intake too)");
    }
    println!(
        "batches of {}; goal {GOAL_EVENTS_PER_SECOND:.0} events/s, floor {FLOOR_EVENTS_PER_SECOND:.0}",
        arguments.batch
    );
}
