//! `crmbet serve`: one listener for gRPC, grpc-web and REST, plain or TLS.

use std::time::Duration;

use anyhow::Context;
use crmbet_core::Config;
use crmbet_server::{AppState, Transport, application, serve, shutdown_signal};
use crmbet_store::Store;
use tokio::net::TcpListener;

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
    let state = AppState::new(store, config).context("loading the access-token key")?;
    let gateway = application(state).await.context("building the server")?;
    println!(
        "crmbet listening on {}://{address} (gRPC, grpc-web, REST)",
        transport.scheme()
    );
    serve(listener, transport, gateway, shutdown_signal(), grace).await;
    println!("crmbet stopped");
    Ok(())
}
