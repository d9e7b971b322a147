//! `crmbet serve`: one listener for gRPC, grpc-web and REST, plain or TLS.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use crmbet_app::Campaigns;
use crmbet_core::Config;
use crmbet_integrations::{
    Delivery, LiveIntakeSettings, WebhookDelivery, WebhookSettings, run_live_intake, stopped,
};
use crmbet_server::live_messages::ingest_live_messages;
use crmbet_server::{AppState, Transport, application, serve, shutdown_signal};
use crmbet_store::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::cli::ServeArgs;
use crate::command::open_store;

/// Opens the store and serves until SIGINT or SIGTERM.
pub async fn run(mut config: Config, arguments: ServeArgs) -> anyhow::Result<()> {
    if let Some(listen) = arguments.listen {
        config.listen = listen;
    }
    let transport = configured_transport(&config)?;
    let store = open_store(&config).await?;
    serve_store(config, transport, store).await
}

/// What the listener will speak, read before any slow startup work so that a bad
/// certificate or key file stops the command at once.
pub fn configured_transport(config: &Config) -> anyhow::Result<Transport> {
    Transport::from_config(config).context("setting up TLS")
}

/// Serves an opened store over `transport`; prints the bound address (scripts and tests
/// read it).
pub async fn serve_store(
    mut config: Config,
    transport: Transport,
    store: Store,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(&config.listen).await.with_context(|| {
        format!(
            "listening on {}; set --listen or CRMBET_LISTEN",
            config.listen
        )
    })?;
    let address = listener.local_addr().context("reading the bound address")?;
    // The address actually bound (port 0 picks one): the default public origin.
    config.listen = address.to_string();
    let grace = Duration::from_secs(config.shutdown_grace_seconds);
    let drain = Duration::from_secs(config.shutdown_drain_seconds);
    let abandoned = store
        .fail_abandoned_training_runs()
        .await
        .context("closing training runs a stopped process left open")?;
    if abandoned > 0 {
        tracing::warn!(
            abandoned,
            "marked training runs of a stopped process as failed"
        );
    }
    let (stop_workers, workers_stopped) = watch::channel(false);
    let delivery = Delivery::start(store.clone(), &config, workers_stopped.clone())
        .context("starting campaign delivery")?;
    let webhooks = WebhookDelivery::new(store.clone(), WebhookSettings::from_config(&config))
        .context("starting segment-change webhooks")?;
    let webhooks = tokio::spawn(webhooks.run(stopped(workers_stopped.clone())));
    let mut state = AppState::new(store, config).context("loading the access-token key")?;
    let live_intake = start_live_intake(&state, workers_stopped.clone());
    if let Some(breaker) = delivery.breaker() {
        state = state.with_delivery_breaker(breaker);
    }
    let scheduler = tokio::spawn(launch_scheduled(
        state.campaigns.clone(),
        workers_stopped.clone(),
    ));
    let enroller = tokio::spawn(enroll_entrants(state.campaigns.clone(), workers_stopped));
    let draining = Arc::clone(&state.draining);
    let gateway = application(state).await.context("building the server")?;
    println!(
        "crmbet listening on {}://{address} (gRPC, grpc-web, REST)",
        transport.scheme()
    );
    let shutdown = async move {
        shutdown_signal().await;
        // Health checks say "draining" while the server still answers, so a load balancer
        // takes it out of rotation before the listener closes.
        draining.begin();
        if !drain.is_zero() {
            tracing::info!(
                seconds = drain.as_secs(),
                "stop asked for: draining before the listener closes"
            );
            tokio::time::sleep(drain).await;
        }
    };
    serve(listener, transport, gateway, shutdown, grace).await;
    // The listener has drained: let delivery finish its round, then stop.
    let _ = stop_workers.send(true);
    delivery.stopped(grace).await;
    let _ = scheduler.await;
    let _ = enroller.await;
    // A batch cut short is sent again after the restart (its cursor did not move).
    let _ = tokio::time::timeout(grace, webhooks).await;
    if let Some(live_intake) = live_intake {
        // Unacknowledged messages of an unfinished batch are delivered again after a restart.
        let _ = tokio::time::timeout(grace, live_intake).await;
    }
    println!("crmbet stopped");
    Ok(())
}

/// Reads live transactions from `CRMBET_LIVE_QUEUE` when `AMQP_URL` is set.
fn start_live_intake(
    state: &AppState,
    shutdown: watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    let config = &state.config;
    let url = config.amqp_url.clone()?;
    let settings = LiveIntakeSettings::new(url, config.live_queue.clone());
    let live_play = state.live_ingest.clone();
    Some(tokio::spawn(run_live_intake(
        settings,
        move |messages| {
            let live_play = live_play.clone();
            async move { ingest_live_messages(&live_play, messages).await }
        },
        stopped(shutdown),
    )))
}

/// How often the scheduler looks for scheduled campaigns whose start has come.
const SCHEDULER_INTERVAL: Duration = Duration::from_secs(1);

/// How often on-entry campaigns look for players who entered their clusters.
const ENROLMENT_INTERVAL: Duration = Duration::from_millis(250);

/// Enrols the players who entered the clusters of launched on-entry campaigns.
async fn enroll_entrants(campaigns: Campaigns, shutdown: watch::Receiver<bool>) {
    let stop = stopped(shutdown);
    tokio::pin!(stop);
    loop {
        if let Err(error) = campaigns.enroll_entrants().await {
            tracing::warn!(%error, "enrolling players in on-entry campaigns failed; retrying");
        }
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(ENROLMENT_INTERVAL) => {}
        }
    }
}

/// Launches scheduled campaigns when their start comes, until shutdown. A launch is one
/// transaction and idempotent, so a restart neither loses nor repeats one.
async fn launch_scheduled(campaigns: Campaigns, shutdown: watch::Receiver<bool>) {
    let stop = stopped(shutdown);
    tokio::pin!(stop);
    loop {
        if let Err(error) = campaigns.launch_due().await {
            tracing::warn!(%error, "launching scheduled campaigns failed; retrying");
        }
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(SCHEDULER_INTERVAL) => {}
        }
    }
}
