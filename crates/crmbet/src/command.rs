//! One module per subcommand; `run` dispatches.

mod account;
mod bench;
mod demo;
mod etl;
mod migrate;
mod serve;
mod train;

use std::process::ExitCode;

use anyhow::Context;
use crmbet_core::Config;
use crmbet_store::Store;

use crate::cli::{Cli, Command};

/// The configuration the command line asks for: defaults, `--config`, the environment,
/// then `--database`.
pub fn configuration(cli: &Cli) -> anyhow::Result<Config> {
    let mut config = Config::load(cli.config.as_deref()).context("reading the configuration")?;
    if let Some(database) = &cli.database {
        config.database_url = database.clone();
    }
    Ok(config)
}

/// Runs the parsed command line with its configuration.
pub async fn run(cli: Cli, config: Config) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(arguments) => serve::run(config, arguments).await?,
        Command::Demo(arguments) => demo::run(config, arguments).await?,
        Command::Migrate { action } => migrate::run(config, action).await?,
        Command::Etl(arguments) => return etl::run(config, arguments).await,
        Command::Train(arguments) => return train::run(config, arguments).await,
        Command::Account { action } => return account::run(config, action).await,
        Command::Bench { target } => return bench::run(config, target).await,
    }
    Ok(ExitCode::SUCCESS)
}

/// Connects to the configured database and applies pending migrations.
async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let store = Store::connect(&config.database_url)
        .await
        .context("opening the database")?;
    store.migrate_up().await.context("applying migrations")?;
    Ok(store)
}
