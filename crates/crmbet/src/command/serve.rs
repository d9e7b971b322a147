//! `crmbet serve`: one listener for gRPC, grpc-web and REST.

use std::time::Duration;

use anyhow::Context;
use crmbet_core::Config;
use crmbet_server::{AppState, application, serve, shutdown_signal};
use crmbet_store::Store;
use tokio::net::TcpListener;

use crate::cli::ServeArgs;
use crate::command::open_store;

/// Opens the store and serves until SIGINT or SIGTERM.
pub async fn run(mut config: Config, arguments: ServeArgs) -> anyhow::Result<()> {
    if let Some(listen) = arguments.listen {
        config.listen = listen;
    }
    let store = open_store(&config).await?;
    serve_store(config, store).await
}

/// Serves an opened store; prints the bound address (scripts and tests read it).
pub async fn serve_store(config: Config, store: Store) -> anyhow::Result<()> {
    let listener = TcpListener::bind(&config.listen).await.with_context(|| {
        format!(
            "listening on {}; set --listen or CRMBET_LISTEN",
            config.listen
        )
    })?;
    let address = listener.local_addr().context("reading the bound address")?;
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
    let router = application(state).await.context("building the server")?;
    println!("crmbet listening on http://{address} (gRPC, grpc-web, REST)");
    serve(listener, router, shutdown_signal(), grace)
        .await
        .context("serving")?;
    println!("crmbet stopped");
    Ok(())
}
