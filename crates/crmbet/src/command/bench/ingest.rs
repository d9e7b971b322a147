//! `crmbet bench ingest`: live transactions stored by the whole server, over a gRPC client
//! stream and over RabbitMQ, beside the same transactions stored by the use case called in
//! process (the baseline: no protocol, no broker), on SQLite and with `--postgres` on
//! PostgreSQL, in one run; and the latency from a transaction's intake to its player's new
//! segment being readable by GetUserSegment.
//!
//! Each engine's database first gets a real model: a synthetic lake of `--model-players`
//! players (ending 400 days ago) loaded by `crmbet etl` and segmented by `crmbet train`, in
//! child processes. The transactions sent are another synthetic lake's rows (dirty ones
//! included, in the ETL's order, the last year up to yesterday) for players of that model,
//! so every accepted event is scored and may move its player; each path sends them under
//! its own transaction ids, so none is a duplicate of another path's. The server paths are
//! offered `--rate` events a second (batches on a schedule; the use case takes them as
//! fast as it can), and meanwhile a probe sends one transaction every 100 ms over the same
//! path and polls GetUserSegment until it answers the segment that transaction gave (see
//! `probe`).

mod probe;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{Days, NaiveDate, Utc};
use crmbet_app::{IntakeSource, LivePlay, LiveTransaction, create_account, generate_password};
use crmbet_core::rate_limit_classes::RateLimitClasses;
use crmbet_core::{Config, Role};
use crmbet_etl::live::lake_transactions;
use crmbet_etl::{SyntheticLakeOptions, write_synthetic_lake};
use crmbet_integrations::{
    LiveIntakeSettings, LiveMessage, declare_with_dead_letters, run_live_intake, stopped,
};
use crmbet_proto::v1::auth_service_client::AuthServiceClient;
use crmbet_proto::v1::event_service_client::EventServiceClient;
use crmbet_proto::v1::{IngestRequest, LoginRequest};
use crmbet_server::live_ingest::LiveIngest;
use crmbet_server::live_messages::{ingest_live_messages, transaction_message};
use crmbet_server::{AppState, Transport, application, serve};
use crmbet_store::Store;
use crmbet_store::throwaway_postgres::ThrowawayPostgres;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;

use self::probe::{ProbeReport, ProbeSender, probe_until_stopped};
use super::{run_crmbet_etl_on, run_crmbet_json_on};
use crate::cli::BenchIngestArgs;

/// The goal and the floor of issue 18, in events a second and p99 milliseconds.
const GOAL_EVENTS_PER_SECOND: f64 = 20_000.0;
const FLOOR_EVENTS_PER_SECOND: f64 = 5_000.0;
const GOAL_P99_MS: f64 = 250.0;
const FLOOR_P99_MS: f64 = 1_000.0;

const BASELINE: &str = "use case (baseline)";
const GRPC: &str = "gRPC stream";
const RABBITMQ: &str = "RabbitMQ";

/// One measurement.
struct Measurement {
    engine: &'static str,
    path: &'static str,
    events: usize,
    seconds: f64,
    latency: Option<ProbeReport>,
}

impl Measurement {
    fn events_per_second(&self) -> f64 {
        self.events as f64 / self.seconds.max(1e-9)
    }

    fn latency_ms(&self, share: f64) -> Option<f64> {
        self.latency
            .as_ref()
            .and_then(|report| report.percentile(share))
    }
}

pub(crate) async fn bench_ingest(config: Config, arguments: BenchIngestArgs) -> anyhow::Result<()> {
    let scratch = tempfile::tempdir().context("creating a scratch folder")?;
    let events = replayed_lake(scratch.path(), &arguments).await?;
    let amqp_url = config.amqp_url.clone();
    let mut measurements = Vec::new();
    let mut engines = vec!["sqlite"];
    if arguments.postgres {
        engines.push("postgres");
    }
    let mut paths: Vec<&'static str> = vec![BASELINE, GRPC];
    if amqp_url.is_some() {
        paths.push(RABBITMQ);
    }
    for engine in engines {
        let postgres = if engine == "postgres" {
            Some(ThrowawayPostgres::create("crmbet_bench_ingest").await)
        } else {
            None
        };
        let engine_folder = scratch.path().join(engine);
        std::fs::create_dir_all(&engine_folder).context("creating a scratch folder")?;
        let database_url = match &postgres {
            Some(database) => database.url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                engine_folder.join("ingest.db").display()
            ),
        };
        if !arguments.json {
            eprintln!("{engine}: loading and training the model ...");
        }
        prepare_model(&database_url, &engine_folder, &arguments)?;
        let store = Store::connect(&database_url)
            .await
            .context("opening the database")?;
        let width = player_id_width(&store).await?;
        let players: Arc<Vec<String>> = Arc::new(
            events
                .iter()
                .filter_map(|event| event.user_id.as_deref().map(|id| renumbered(id, width)))
                .collect::<std::collections::BTreeSet<String>>()
                .into_iter()
                .collect(),
        );
        for path in paths.iter().copied() {
            let transactions = retagged(&events, path_tag(path), width);
            if !arguments.json {
                eprintln!("{engine}: {path} ...");
            }
            let setup = ServerSetup {
                config: &config,
                store: &store,
                database_url: &database_url,
                scratch: &engine_folder,
            };
            let (seconds, latency) = match path {
                GRPC => over_grpc(setup, &transactions, &arguments, &players).await?,
                RABBITMQ => {
                    let url = amqp_url.clone().context("AMQP_URL")?;
                    over_rabbitmq(setup, &url, &transactions, &arguments, &players).await?
                }
                _ => (in_process(&store, &transactions, &arguments).await?, None),
            };
            measurements.push(Measurement {
                engine,
                path,
                events: transactions.len(),
                seconds,
                latency,
            });
        }
        drop(store);
        drop(postgres);
    }
    report(&measurements, &arguments, amqp_url.is_some());
    Ok(())
}

/// The rows of a synthetic lake of the last year (up to yesterday), in the ETL's order.
async fn replayed_lake(
    scratch: &Path,
    arguments: &BenchIngestArgs,
) -> anyhow::Result<Vec<LiveTransaction>> {
    let lake = scratch.join("events-lake");
    let mut options =
        SyntheticLakeOptions::new(arguments.players, arguments.transactions, yesterday()?);
    options.seed = arguments.seed;
    write_synthetic_lake(&lake, &options, &mut |_| {}).context("writing the lake")?;
    lake_transactions(&lake)
        .await
        .context("reading the lake's rows")
}

fn yesterday() -> anyhow::Result<NaiveDate> {
    Utc::now()
        .date_naive()
        .checked_sub_days(Days::new(1))
        .context("computing yesterday's date")
}

/// Loads a lake of `--model-players` players that ends before the events begin, and trains
/// KMeans on it: the model live events are scored with.
fn prepare_model(
    database_url: &str,
    folder: &Path,
    arguments: &BenchIngestArgs,
) -> anyhow::Result<()> {
    let end = yesterday()?
        .checked_sub_days(Days::new(400))
        .context("computing the model lake's end")?;
    let lake = folder.join("model-lake");
    let mut options =
        SyntheticLakeOptions::new(arguments.model_players, arguments.model_transactions, end);
    options.seed = arguments.seed + 1;
    write_synthetic_lake(&lake, &options, &mut |_| {}).context("writing the model's lake")?;
    run_crmbet_etl_on(database_url, &lake, folder)?;
    let seed = arguments.seed.to_string();
    run_crmbet_json_on(
        database_url,
        folder,
        &[
            "train".as_ref(),
            "--algorithm".as_ref(),
            "kmeans".as_ref(),
            "--seed".as_ref(),
            seed.as_ref(),
            "--json".as_ref(),
        ],
    )?;
    Ok(())
}

/// The number of digits of the model's player ids (`p000123`): the event lake has fewer
/// players, so its ids are written again at this width to name the same players.
async fn player_id_width(store: &Store) -> anyhow::Result<usize> {
    let model = store
        .active_model_id()
        .await?
        .context("no active model after training")?;
    let sample = store
        .sample_segment_user_ids(model, 1)
        .await?
        .pop()
        .context("the model has no player")?;
    Ok(sample.len().saturating_sub(1))
}

fn renumbered(user_id: &str, width: usize) -> String {
    match user_id
        .strip_prefix('p')
        .and_then(|digits| digits.parse::<u64>().ok())
    {
        Some(number) => format!("p{number:0width$}"),
        None => user_id.to_owned(),
    }
}

fn path_tag(path: &str) -> &'static str {
    match path {
        GRPC => "grpc",
        RABBITMQ => "amqp",
        _ => "case",
    }
}

/// The events under ids of `tag`'s own, for the model's players.
fn retagged(events: &[LiveTransaction], tag: &str, width: usize) -> Vec<LiveTransaction> {
    events
        .iter()
        .map(|event| LiveTransaction {
            transaction_id: event
                .transaction_id
                .as_ref()
                .map(|id| format!("{tag}-{id}")),
            user_id: event.user_id.as_deref().map(|id| renumbered(id, width)),
            ..event.clone()
        })
        .collect()
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

/// The whole server in this process, logged in to with a service account.
struct BenchServer {
    channel: Channel,
    authorization: MetadataValue<Ascii>,
    live_ingest: LiveIngest,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl BenchServer {
    async fn start(setup: ServerSetup<'_>) -> anyhow::Result<Self> {
        let store = setup.store;
        let mut config = setup.config.clone();
        config.database_url = setup.database_url.to_owned();
        config.warehouse_dir = setup.scratch.join("warehouse");
        config.listen = "127.0.0.1:0".to_owned();
        config.tls_cert_file = None;
        config.tls_key_file = None;
        config.amqp_url = None;
        config.rate_limit_classes =
            format!("events={max}/{max},segment={max}/{max}", max = u32::MAX)
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
        let live_ingest = state.live_ingest.clone();
        let router = application(state).await.context("building the server")?;
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding a local port")?;
        let address = listener.local_addr().context("reading the bound address")?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(
            listener,
            Transport::Plain,
            router,
            async {
                let _ = stopped.await;
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
        let authorization = MetadataValue::try_from(format!("Bearer {token}"))
            .context("the access token is not a header value")?;
        Ok(Self {
            channel,
            authorization,
            live_ingest,
            stop,
            task,
        })
    }

    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await.context("the server task failed")
    }
}

/// The whole server in this process, fed over one gRPC client stream of batches, probed
/// over unary calls meanwhile.
async fn over_grpc(
    setup: ServerSetup<'_>,
    transactions: &[LiveTransaction],
    arguments: &BenchIngestArgs,
    players: &Arc<Vec<String>>,
) -> anyhow::Result<(f64, Option<ProbeReport>)> {
    let server = BenchServer::start(setup).await?;
    let messages: Vec<IngestRequest> = transactions
        .chunks(arguments.batch.max(1))
        .map(|batch| IngestRequest {
            transactions: batch.iter().map(transaction_message).collect(),
        })
        .collect();
    // Batches on the offered schedule, through a small channel: the stream never runs
    // ahead of it, and falls behind it only when the server does.
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    let every = batch_interval(arguments);
    let producer = tokio::spawn(async move {
        let start = tokio::time::Instant::now();
        for (index, message) in messages.into_iter().enumerate() {
            if let Some(every) = every {
                tokio::time::sleep_until(start + every.mul_f64(index as f64)).await;
            }
            if sender.send(message).await.is_err() {
                break;
            }
        }
    });
    let mut request = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(receiver));
    request
        .metadata_mut()
        .insert("authorization", server.authorization.clone());
    let (stop_probes, probes_stopped) = watch::channel(false);
    let probes = tokio::spawn(probe_until_stopped(
        ProbeSender::Grpc(EventServiceClient::new(server.channel.clone())),
        server.channel.clone(),
        server.authorization.clone(),
        Arc::clone(players),
        "grpc",
        probes_stopped,
    ));
    let started = Instant::now();
    let outcome = EventServiceClient::new(server.channel.clone())
        .ingest(request)
        .await
        .context("streaming the transactions")?
        .into_inner()
        .outcome
        .unwrap_or_default();
    let seconds = started.elapsed().as_secs_f64();
    producer.await.context("the producer task failed")?;
    let _ = stop_probes.send(true);
    let latency = probes.await.context("the probe task failed")??;
    anyhow::ensure!(
        outcome.accepted + outcome.duplicates + outcome.quarantined == transactions.len() as u64,
        "the server answered for {} of {} transactions",
        outcome.accepted + outcome.duplicates + outcome.quarantined,
        transactions.len()
    );
    server.stop().await?;
    Ok((seconds, Some(latency)))
}

/// The intake reading a queue that already holds every batch, from its start until every
/// transaction is stored, probed over the same queue meanwhile.
async fn over_rabbitmq(
    setup: ServerSetup<'_>,
    url: &str,
    transactions: &[LiveTransaction],
    arguments: &BenchIngestArgs,
    players: &Arc<Vec<String>>,
) -> anyhow::Result<(f64, Option<ProbeReport>)> {
    let store = setup.store.clone();
    let batch = arguments.batch.max(1);
    let queue = format!("crmbet.bench.ingest.{}", generate_password().to_lowercase());
    let settings = LiveIntakeSettings::new(url.to_owned(), queue.clone());
    let bodies: Vec<Vec<u8>> = transactions
        .chunks(batch)
        .map(|batch| {
            let rows: Vec<&LiveTransaction> = batch.iter().collect();
            serde_json::to_vec(&json!({ "transactions": rows }))
        })
        .collect::<Result<_, _>>()
        .context("writing the messages")?;
    let connection = lapin::Connection::connect(url, lapin::ConnectionProperties::default())
        .await
        .context("connecting to AMQP_URL")?;
    let channel = connection.create_channel().await?;
    declare_with_dead_letters(&channel, &queue, None).await?;
    channel
        .confirm_select(lapin::options::ConfirmSelectOptions::default())
        .await?;
    let expected = stored_counts_after(&store, transactions).await?;
    let server = BenchServer::start(setup).await?;
    let live_ingest = server.live_ingest.clone();
    let (stop, stopping) = watch::channel(false);
    let (stop_probes, probes_stopped) = watch::channel(false);
    let started = Instant::now();
    let intake = tokio::spawn(run_live_intake(
        settings,
        move |messages: Vec<LiveMessage>| {
            let live_ingest = live_ingest.clone();
            async move { ingest_live_messages(&live_ingest, messages).await }
        },
        stopped(stopping),
    ));
    let probes = tokio::spawn(probe_until_stopped(
        ProbeSender::Amqp {
            channel: channel.clone(),
            queue: queue.clone(),
        },
        server.channel.clone(),
        server.authorization.clone(),
        Arc::clone(players),
        "amqp",
        probes_stopped,
    ));
    let publisher = tokio::spawn(publish(
        channel.clone(),
        queue.clone(),
        bodies,
        batch_interval(arguments),
    ));
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let stored = store.live_transaction_count().await?;
        let quarantined = store.live_quarantine_count().await?;
        // Probes add to the count: at least the load's rows, and the queue empty.
        if stored >= expected.0 && quarantined >= expected.1 {
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
    publisher.await.context("the publisher task failed")??;
    let _ = stop_probes.send(true);
    let latency = probes.await.context("the probe task failed")??;
    let _ = stop.send(true);
    intake.await.context("the intake task failed")?;
    server.stop().await?;
    delete_queue(&channel, &queue).await;
    Ok((seconds, Some(latency)))
}

/// What the database holds once the queue's transactions are stored: (stored,
/// quarantined), from the counts now and the in-process check and dedupe.
async fn stored_counts_after(
    store: &Store,
    transactions: &[LiveTransaction],
) -> anyhow::Result<(u64, u64)> {
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
    Ok((
        store.live_transaction_count().await? + ids.len() as u64,
        store.live_quarantine_count().await? + quarantined,
    ))
}

/// The pause between two batches for the offered rate, if any.
fn batch_interval(arguments: &BenchIngestArgs) -> Option<Duration> {
    (arguments.rate > 0)
        .then(|| Duration::from_secs_f64(arguments.batch.max(1) as f64 / arguments.rate as f64))
}

/// Publishes the bodies on the offered schedule (all at once without one), then waits for
/// the broker's confirms.
async fn publish(
    channel: lapin::Channel,
    queue: String,
    bodies: Vec<Vec<u8>>,
    every: Option<Duration>,
) -> anyhow::Result<()> {
    let start = tokio::time::Instant::now();
    let mut confirms = Vec::with_capacity(bodies.len());
    for (index, body) in bodies.iter().enumerate() {
        if let Some(every) = every {
            tokio::time::sleep_until(start + every.mul_f64(index as f64)).await;
        }
        confirms.push(
            channel
                .basic_publish(
                    "".into(),
                    queue.as_str().into(),
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

async fn delete_queue(channel: &lapin::Channel, queue: &str) {
    for name in [queue.to_owned(), format!("{queue}.dead")] {
        let _ = channel
            .queue_delete(
                name.as_str().into(),
                lapin::options::QueueDeleteOptions::default(),
            )
            .await;
    }
}

fn report(measurements: &[Measurement], arguments: &BenchIngestArgs, with_amqp: bool) {
    let baseline = |engine: &str| {
        measurements
            .iter()
            .find(|measurement| measurement.engine == engine && measurement.path == BASELINE)
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
                    "latency_p50_ms": measurement.latency_ms(0.5),
                    "latency_p99_ms": measurement.latency_ms(0.99),
                    "probes": measurement.latency.as_ref().map(|report| report.latencies_ms.len()),
                    "probes_timed_out": measurement.latency.as_ref().map(|report| report.timed_out),
                })
            })
            .collect();
        println!(
            "{}",
            json!({ "batch": arguments.batch, "model_players": arguments.model_players,
                    "offered_events_per_second": arguments.rate,
                    "runs": rows,
                    "goal_events_per_second": GOAL_EVENTS_PER_SECOND,
                    "floor_events_per_second": FLOOR_EVENTS_PER_SECOND,
                    "goal_p99_ms": GOAL_P99_MS, "floor_p99_ms": FLOOR_P99_MS })
        );
        return;
    }
    println!(
        "{:<9} {:<20} {:>9} {:>9} {:>10} {:>12} {:>9} {:>9} {:>7}",
        "engine",
        "path",
        "events",
        "seconds",
        "events/s",
        "vs use case",
        "p50 ms",
        "p99 ms",
        "probes"
    );
    let shown = |value: Option<f64>| value.map_or_else(|| "-".to_owned(), |ms| format!("{ms:.1}"));
    for measurement in measurements {
        println!(
            "{:<9} {:<20} {:>9} {:>9.2} {:>10.0} {:>11.2}x {:>9} {:>9} {:>7}",
            measurement.engine,
            measurement.path,
            measurement.events,
            measurement.seconds,
            measurement.events_per_second(),
            measurement.events_per_second() / baseline(measurement.engine),
            shown(measurement.latency_ms(0.5)),
            shown(measurement.latency_ms(0.99)),
            measurement.latency.as_ref().map_or_else(
                || "-".to_owned(),
                |report| report.latencies_ms.len().to_string()
            ),
        );
    }
    if !with_amqp {
        println!("(set AMQP_URL to measure the RabbitMQ intake too)");
    }
    println!(
        "batches of {}, model of {} players, {} events/s offered to the server paths (0: as fast as taken); goal {GOAL_EVENTS_PER_SECOND:.0} events/s with p99 under {GOAL_P99_MS:.0} ms, floor {FLOOR_EVENTS_PER_SECOND:.0} events/s with p99 under {FLOOR_P99_MS:.0} ms",
        arguments.batch, arguments.model_players, arguments.rate
    );
}
