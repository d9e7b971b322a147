//! `crmbet migrate up | down | status`.

use anyhow::Context;
use crmbet_core::Config;
use crmbet_store::Store;

use crate::cli::MigrateAction;

/// Runs one migration action against the configured database.
pub async fn run(config: Config, action: MigrateAction) -> anyhow::Result<()> {
    let store = Store::connect(&config.database_url)
        .await
        .context("opening the database")?;
    match action {
        MigrateAction::Up => {
            store.migrate_up().await.context("applying migrations")?;
            println!("migrations applied");
        }
        MigrateAction::Down { steps } => {
            store
                .migrate_down(steps)
                .await
                .context("rolling back migrations")?;
            println!("rolled back {steps} migration(s)");
        }
        MigrateAction::Status => {
            let status = store
                .migration_status()
                .await
                .context("reading migrations")?;
            for name in &status.applied {
                println!("applied  {name}");
            }
            for name in &status.pending {
                println!("pending  {name}");
            }
        }
    }
    Ok(())
}
