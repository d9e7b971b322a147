//! `crmbet demo`: the embedded quick start. Writes a seeded synthetic lake with planted
//! player archetypes, runs the ETL on it, trains and activates a segmentation model, creates
//! an `admin` account with a random password it prints once, and serves — with nothing
//! installed but the binary.

use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{Days, NaiveDate, Utc};
use crmbet_app::{Trainer, TrainingRequest};
use crmbet_app::{create_account, generate_password};
use crmbet_core::Config;
use crmbet_core::Role;
use crmbet_etl::{SyntheticLakeOptions, write_synthetic_lake};
use crmbet_store::Store;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{DemoArgs, EtlArgs};
use crate::command::etl::load_lake;
use crate::command::open_store;
use crate::command::serve::{configured_transport, serve_store};
use crate::command::train::train_with_progress;

/// A file written last in a finished lake folder: a folder without it is rewritten.
const COMPLETE_MARKER: &str = ".complete";

/// Generates (or reuses) the demo lake, loads it, trains, and serves unless `--no-serve`.
pub async fn run(mut config: Config, arguments: DemoArgs) -> anyhow::Result<()> {
    if let Some(listen) = arguments.listen.clone() {
        config.listen = listen;
    }
    // Yesterday: the lake looks live, and no row is in the future for the quality rules.
    let end_date = Utc::now()
        .date_naive()
        .checked_sub_days(Days::new(1))
        .context("computing yesterday's date")?;
    // Checked before the minutes of ETL and training, not after.
    let transport = (!arguments.no_serve)
        .then(|| configured_transport(&config))
        .transpose()?;
    let lake = demo_lake_folder(&config, &arguments, end_date);
    let options = SyntheticLakeOptions {
        seed: arguments.seed,
        whale_share: arguments.whales,
        ..SyntheticLakeOptions::new(arguments.players, arguments.transactions, end_date)
    };
    ensure_lake(&lake, options).await?;

    let store = open_store(&config).await?;
    store
        .fail_abandoned_training_runs()
        .await
        .context("closing training runs a stopped process left open")?;
    let etl_arguments = EtlArgs {
        lake: lake.to_string_lossy().into_owned(),
        full: false,
        json: false,
    };
    load_lake(&config, &store, &etl_arguments).await?;

    let trainer = Trainer::new(store.clone());
    let outcome = train_with_progress(
        &trainer,
        TrainingRequest {
            algorithm: crmbet_ml::Algorithm::Auto,
            k: None,
            seed: arguments.seed,
            activate: true,
            requested_by: Some("demo".to_owned()),
        },
        false,
    )
    .await?;
    println!(
        "model {} is active: {} clusters ({})",
        outcome.model_id,
        outcome.model.k,
        outcome
            .model
            .clusters
            .iter()
            .map(|cluster| cluster.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    ensure_demo_admin(&store).await?;
    let Some(transport) = transport else {
        return Ok(());
    };
    serve_store(config, transport, store).await
}

/// The username of the account the demo creates.
const DEMO_ADMIN: &str = "admin";

/// Creates the `admin` account with a random password and prints it once; on a data
/// folder that has it already, says so and leaves it alone.
async fn ensure_demo_admin(store: &Store) -> anyhow::Result<()> {
    let existing = store
        .account_by_username(DEMO_ADMIN)
        .await
        .context("looking up the demo admin account")?;
    if existing.is_some() {
        println!(
            "account {DEMO_ADMIN} exists already; its password was printed when it was \
             created (or create another admin with `crmbet account create`)"
        );
        return Ok(());
    }
    let password = generate_password();
    create_account(store, DEMO_ADMIN, Role::Admin, &password, "demo")
        .await
        .context("creating the demo admin account")?;
    println!("{DEMO_ADMIN} password: {password}");
    Ok(())
}

/// One folder per seed, size and end date under the warehouse's parent (`data/` by default).
fn demo_lake_folder(config: &Config, arguments: &DemoArgs, end_date: NaiveDate) -> PathBuf {
    let data = config
        .warehouse_dir
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    let whales = if arguments.whales > 0.0 {
        format!("-whales{}", arguments.whales)
    } else {
        String::new()
    };
    data.join("demo-lakes").join(format!(
        "seed{}-players{}-transactions{}{whales}-{end_date}",
        arguments.seed, arguments.players, arguments.transactions
    ))
}

/// Writes a synthetic lake with `options` into `lake` unless a finished one is there
/// already (the folder name must say which options it was written with).
pub(crate) async fn ensure_lake(lake: &Path, options: SyntheticLakeOptions) -> anyhow::Result<()> {
    if lake.join(COMPLETE_MARKER).exists() {
        eprintln!("reusing the lake {}", lake.display());
        return Ok(());
    }
    if lake.exists() {
        std::fs::remove_dir_all(lake)
            .with_context(|| format!("removing the unfinished lake {}", lake.display()))?;
    }
    std::fs::create_dir_all(lake)
        .with_context(|| format!("creating the lake folder {}", lake.display()))?;
    let bar = ProgressBar::new(options.transactions as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} writing the lake [{bar:30}] {human_pos}/{human_len} rows ({per_sec})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let root = lake.to_owned();
    let progress_bar = bar.clone();
    let summary = tokio::task::spawn_blocking(move || {
        write_synthetic_lake(&root, &options, &mut |rows| progress_bar.set_position(rows))
    })
    .await
    .context("the lake writer stopped")?
    .context("writing the synthetic lake")?;
    bar.finish_and_clear();
    std::fs::write(lake.join(COMPLETE_MARKER), b"")
        .with_context(|| format!("marking the lake {} complete", lake.display()))?;
    eprintln!(
        "wrote the synthetic lake {}: {} rows in {} files ({} dirty on purpose), {} players",
        lake.display(),
        summary.rows,
        summary.files,
        summary.dirty_rows,
        summary
            .players_per_archetype
            .iter()
            .map(|(_, players)| players)
            .sum::<usize>()
    );
    Ok(())
}
