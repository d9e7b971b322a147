//! `crmbet bench campaign`: a launch to a large audience and its delivery to Smartico.
//!
//! A seeded sample model over `--players` players is loaded (SQLite, and PostgreSQL with
//! `--postgres`); a campaign targets every cluster; the launch use case runs as
//! LaunchCampaign runs it (audience, exclusions, holdout, targets and outbox in one
//! transaction); the in-process relay and dispatcher deliver to a Smartico stand-in on a
//! loopback port at the default limits (12 requests in flight, 6,000 a minute, 500 events a
//! request). Reported: the launch call's time, the time until the stand-in holds every
//! treatment player, and the floor Smartico's request rate puts under that time.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Json;
use axum::extract::State;
use axum::routing::post;
use crmbet_app::{CampaignDraft, CampaignSettings, Campaigns, TargetFilter};
use crmbet_core::{CampaignId, Config};
use crmbet_integrations::Delivery;
use crmbet_store::Store;
use crmbet_store::throwaway_postgres::ThrowawayPostgres;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::cli::BenchCampaignArgs;

/// The launch call's goal.
const TARGET_LAUNCH_SECONDS: f64 = 2.0;

/// One engine's numbers.
struct Run {
    engine: &'static str,
    players: usize,
    treatment: i64,
    control: i64,
    outbox_messages: usize,
    launch_seconds: f64,
    delivery_seconds: f64,
    rate_floor_seconds: f64,
}

pub(crate) async fn bench_campaign(
    config: Config,
    arguments: BenchCampaignArgs,
) -> anyhow::Result<()> {
    let scratch = tempfile::tempdir().context("creating a scratch folder")?;
    let sqlite_url = format!(
        "sqlite://{}?mode=rwc",
        scratch.path().join("bench-campaign.db").display()
    );
    let mut runs = vec![measure("sqlite", &sqlite_url, &config, &arguments).await?];
    if arguments.postgres {
        let database = ThrowawayPostgres::create("crmbet_bench_campaign").await;
        runs.push(measure("postgres", &database.url, &config, &arguments).await?);
    }
    if arguments.json {
        let rows: Vec<Value> = runs
            .iter()
            .map(|run| {
                json!({
                    "engine": run.engine, "players": run.players, "treatment": run.treatment,
                    "control": run.control, "outbox_messages": run.outbox_messages,
                    "launch_seconds": run.launch_seconds,
                    "delivery_seconds": run.delivery_seconds,
                    "rate_floor_seconds": run.rate_floor_seconds,
                })
            })
            .collect();
        println!(
            "{}",
            json!({ "runs": rows, "target_launch_seconds": TARGET_LAUNCH_SECONDS })
        );
        return Ok(());
    }
    println!(
        "{:<9} {:>8} {:>9} {:>8} {:>8} {:>10} {:>12} {:>12}",
        "engine",
        "players",
        "treatment",
        "control",
        "messages",
        "launch s",
        "delivered s",
        "rate floor s"
    );
    for run in &runs {
        println!(
            "{:<9} {:>8} {:>9} {:>8} {:>8} {:>10.2} {:>12.2} {:>12.2}",
            run.engine,
            run.players,
            run.treatment,
            run.control,
            run.outbox_messages,
            run.launch_seconds,
            run.delivery_seconds,
            run.rate_floor_seconds
        );
    }
    println!(
        "goal: launch under {TARGET_LAUNCH_SECONDS} s; delivery near the rate floor \
         (messages / (requests per minute / 60))"
    );
    Ok(())
}

async fn measure(
    engine: &'static str,
    database_url: &str,
    config: &Config,
    arguments: &BenchCampaignArgs,
) -> anyhow::Result<Run> {
    let store = Store::connect(database_url)
        .await
        .context("opening the database")?;
    store.migrate_up().await.context("migrating")?;
    let loading = Instant::now();
    let sample = store
        .load_sample(arguments.players, arguments.seed)
        .await
        .context("loading the sample model")?;
    eprintln!(
        "{engine}: loaded {} players in {} clusters in {:.1} s",
        sample.players,
        sample.clusters,
        loading.elapsed().as_secs_f64()
    );
    let stand_in = StandIn::start().await?;
    let mut config = config.clone();
    config.database_url = database_url.to_owned();
    config.amqp_url = None;
    config.smartico_url = Some(stand_in.url.clone());
    config.smartico_api_key = Some("bench".to_owned());
    config.smartico_brand = Some("bench".to_owned());
    let (stop, stopped) = watch::channel(false);
    let delivery = Delivery::start(store.clone(), &config, stopped).context("starting delivery")?;
    let campaigns = Campaigns::new(store.clone(), CampaignSettings::from_config(&config));
    let clusters = store
        .list_clusters(crmbet_core::ModelId(sample.model_id), None, 1000)
        .await
        .context("reading the clusters")?;
    let campaign = campaigns
        .create(CampaignDraft {
            name: "bench".to_owned(),
            description: String::new(),
            campaign_type: "reload_bonus".to_owned(),
            channel: "email".to_owned(),
            cluster_ids: clusters.iter().map(|cluster| cluster.id).collect(),
            filter: TargetFilter::default(),
            holdout_share: arguments.holdout_share,
            message_template: "bench".to_owned(),
            request_id: None,
            start_at: None,
            created_by: None,
            on_entry: false,
        })
        .await
        .context("creating the campaign")?;
    let launching = Instant::now();
    let launched = campaigns
        .launch(CampaignId(campaign.id), "bench")
        .await
        .context("launching")?;
    let launch_seconds = launching.elapsed().as_secs_f64();
    let treatment = usize::try_from(launched.treatment_count).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(1800);
    while stand_in.delivered() < treatment {
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {} of {treatment} players reached the stand-in in 30 min",
            stand_in.delivered()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delivery_seconds = launching.elapsed().as_secs_f64();
    let _ = stop.send(true);
    delivery.stopped(Duration::from_secs(10)).await;
    let outbox_messages = treatment.div_ceil(config.smartico_batch_events.max(1));
    let requests_per_second = f64::from(config.smartico_requests_per_minute) / 60.0;
    Ok(Run {
        engine,
        players: arguments.players,
        treatment: launched.treatment_count,
        control: launched.control_count,
        outbox_messages,
        launch_seconds,
        delivery_seconds,
        rate_floor_seconds: outbox_messages as f64 / requests_per_second,
    })
}

/// A loopback Smartico that accepts every event and counts distinct event ids.
struct StandIn {
    url: String,
    seen: Arc<Mutex<HashSet<String>>>,
}

impl StandIn {
    async fn start() -> anyhow::Result<Self> {
        let seen = Arc::new(Mutex::new(HashSet::new()));
        let router = axum::Router::new()
            .route("/api/external/events/v2", post(accept))
            .with_state(Arc::clone(&seen));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the stand-in")?;
        let address = listener
            .local_addr()
            .context("reading the stand-in's address")?;
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                eprintln!("the Smartico stand-in stopped: {error}");
            }
        });
        Ok(Self {
            url: format!("http://{address}"),
            seen,
        })
    }

    fn delivered(&self) -> usize {
        self.seen.lock().map(|seen| seen.len()).unwrap_or_default()
    }
}

async fn accept(
    State(seen): State<Arc<Mutex<HashSet<String>>>>,
    Json(events): Json<Vec<Value>>,
) -> Json<Value> {
    if let Ok(mut seen) = seen.lock() {
        for event in events {
            if let Some(eid) = event["eid"].as_str() {
                seen.insert(eid.to_owned());
            }
        }
    }
    Json(json!({ "err_code": 0, "event_errors": {} }))
}
