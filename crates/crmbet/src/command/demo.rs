//! `crmbet demo`: the embedded quick start.

use anyhow::Context;
use crmbet_core::Config;

use crate::cli::DemoArgs;
use crate::command::open_store;
use crate::command::serve::serve_store;

/// Migrates, loads the built-in sample and serves (unless `--no-serve`).
pub async fn run(mut config: Config, arguments: DemoArgs) -> anyhow::Result<()> {
    if let Some(listen) = arguments.listen {
        config.listen = listen;
    }
    let store = open_store(&config).await?;
    let summary = store
        .load_sample(arguments.players, arguments.seed)
        .await
        .context("loading the built-in sample")?;
    println!(
        "loaded the built-in sample: {} players in {} clusters (model {}, etl run {})",
        summary.players, summary.clusters, summary.model_id, summary.etl_run_id
    );
    if arguments.no_serve {
        return Ok(());
    }
    serve_store(config, store).await
}
