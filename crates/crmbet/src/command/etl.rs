//! `crmbet etl`: load a lake into per-player features, with progress and a summary.
//!
//! Exit codes: 0 when every object was read, 2 when some objects could not be read (they
//! are reported and the rest is loaded), 1 when the run could not go on at all.

use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::Context;
use crmbet_app::{LakeLoad, LoadedLake, quarantine_by_rule, restrictions_summary};
use crmbet_core::Config;
use crmbet_etl::{EtlOutcome, EtlProgress, LakeSource, S3_SCHEME, S3Settings};
use crmbet_store::{LakeRestrictionsApplied, Store};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::cli::EtlArgs;
use crate::command::open_store;

/// Exit code of a run that loaded what it could but found unreadable objects.
pub const EXIT_SOME_OBJECTS_FAILED: u8 = 2;

/// Runs the ETL on `--lake` and stores the outcome.
pub async fn run(config: Config, arguments: EtlArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(&config).await?;
    let outcome = load_lake(&config, &store, &arguments).await?;
    if outcome.objects_failed() > 0 {
        return Ok(ExitCode::from(EXIT_SOME_OBJECTS_FAILED));
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs the ETL on `--lake` into an opened store, showing progress and a summary.
pub async fn load_lake(
    config: &Config,
    store: &Store,
    arguments: &EtlArgs,
) -> anyhow::Result<EtlOutcome> {
    let source = arguments.lake.clone();
    let load = LakeLoad {
        source: source.clone(),
        lake: lake_source(&source, config).await?,
        warehouse_root: config.warehouse_dir.clone(),
        full: arguments.full,
    };
    let progress = EtlProgressBar::new(arguments.json);
    let loaded = crmbet_app::load_lake(store, load, &|event| progress.report(event))
        .await
        .with_context(|| format!("loading the lake {source}"))?;
    progress.finish();
    let LoadedLake {
        run_id,
        outcome,
        restrictions,
        live_states_seeded,
        store_seconds,
    } = loaded;

    if arguments.json {
        let summary = json!({
            "run_id": run_id.0,
            "full_refresh": outcome.full_refresh,
            "objects_read": outcome.objects_read,
            "objects_failed": outcome.objects_failed(),
            "failed_objects": outcome.failed_objects,
            "objects_already_loaded": outcome.objects_already_loaded,
            "rows_read": outcome.rows_read,
            "rows_loaded": outcome.rows_loaded,
            "rows_quarantined": outcome.rows_quarantined,
            "quarantine_by_rule": quarantine_by_rule(&outcome),
            "duplicates": outcome.duplicates,
            "rows_already_live": outcome.rows_already_live,
            "live_rows_staged": outcome.live_rows_staged,
            "live_rows_loaded": outcome.live_rows_loaded,
            "live_states_seeded": live_states_seeded,
            "players": outcome.players,
            "quality_score": outcome.quality.overall,
            "completeness": outcome.quality.completeness,
            "validity": outcome.quality.validity,
            "uniqueness": outcome.quality.uniqueness,
            "freshness": outcome.quality.freshness,
            "grade": outcome.quality.grade.as_str(),
            "etl_seconds": outcome.seconds,
            "store_seconds": store_seconds,
            "seconds": outcome.seconds + store_seconds,
            "peak_rss_bytes": peak_rss_bytes(),
            "restrictions": restrictions_summary(&outcome.restrictions, &restrictions),
        });
        println!("{summary}");
    } else {
        print_summary(&outcome, &restrictions, run_id.0, store_seconds);
    }
    Ok(outcome)
}

/// A local folder, or an S3 lake reached with the AWS configuration chain (credentials,
/// region, `AWS_ENDPOINT_URL`) and `CRMBET_S3_FORCE_PATH_STYLE`.
async fn lake_source(lake: &str, config: &Config) -> anyhow::Result<LakeSource> {
    if !lake.starts_with(S3_SCHEME) {
        return Ok(LakeSource::local(lake));
    }
    let settings = S3Settings {
        force_path_style: config.s3_force_path_style,
        ..S3Settings::default()
    };
    LakeSource::s3(lake, &settings)
        .await
        .with_context(|| format!("opening the lake {lake}"))
}

fn print_summary(
    outcome: &EtlOutcome,
    restrictions: &LakeRestrictionsApplied,
    run_id: i64,
    store_seconds: f64,
) {
    println!(
        "etl run {run_id}: {} objects read, {} failed, {} already loaded",
        outcome.objects_read,
        outcome.objects_failed(),
        outcome.objects_already_loaded
    );
    for failed in &outcome.failed_objects {
        println!("  failed  {}: {}", failed.fingerprint.key, failed.reason);
    }
    println!(
        "rows: {} read, {} loaded, {} quarantined, {} duplicates",
        outcome.rows_read, outcome.rows_loaded, outcome.rows_quarantined, outcome.duplicates
    );
    for (rule, count) in &outcome.quarantine_by_rule {
        println!("  quarantined  {:<24} {count}", rule.name());
    }
    if outcome.live_rows_staged > 0 || outcome.rows_already_live > 0 {
        println!(
            "live transactions: {} accepted into the warehouse ({} new); {} lake rows had arrived live (counted once)",
            outcome.live_rows_staged, outcome.live_rows_loaded, outcome.rows_already_live
        );
    }
    println!(
        "players: {}; quality {:.3} (grade {}): completeness {:.3}, validity {:.3}, uniqueness {:.3}, freshness {:.3}",
        outcome.players,
        outcome.quality.overall,
        outcome.quality.grade.as_str(),
        outcome.quality.completeness,
        outcome.quality.validity,
        outcome.quality.uniqueness,
        outcome.quality.freshness
    );
    let snapshot = &outcome.restrictions;
    println!(
        "restrictions (players/): {} rows read, {} rejected, {} repeated; {} players restricted, {} updated",
        snapshot.rows_read,
        snapshot.rows_rejected(),
        snapshot.duplicates,
        restrictions.players_restricted,
        restrictions.players_updated
    );
    for (rule, count) in snapshot.rejected_by_rule() {
        println!("  rejected  {rule:<26} {count}");
    }
    println!(
        "took {:.1} s ({:.1} s ETL, {store_seconds:.1} s storing)",
        outcome.seconds + store_seconds,
        outcome.seconds
    );
}

/// Objects done and rows per second on standard error; silent with `--json`.
struct EtlProgressBar {
    bar: Option<ProgressBar>,
    started: Instant,
    rows: Mutex<u64>,
}

impl EtlProgressBar {
    fn new(quiet: bool) -> Self {
        let bar = (!quiet).then(|| {
            let bar = ProgressBar::new(0);
            let style = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} objects {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        });
        Self {
            bar,
            started: Instant::now(),
            rows: Mutex::new(0),
        }
    }

    fn report(&self, event: EtlProgress) {
        if let EtlProgress::WarehouseRebuilt {
            previous_database_id,
        } = &event
        {
            // Said even with --json (on standard error): a whole-lake reload is worth knowing.
            let owner = previous_database_id
                .as_deref()
                .map_or("an unknown database".to_owned(), |id| {
                    format!("database {id}")
                });
            eprintln!(
                "note: the warehouse held the rows of {owner}, not this one; it is rebuilt from \
                 the whole lake"
            );
        }
        let Some(bar) = &self.bar else {
            return;
        };
        match event {
            EtlProgress::WarehouseRebuilt { .. } => {}
            EtlProgress::Listed {
                objects_to_read, ..
            } => bar.set_length(objects_to_read as u64),
            EtlProgress::ObjectRead {
                rows, objects_done, ..
            } => {
                let total_rows = {
                    let mut counted = self
                        .rows
                        .lock()
                        .unwrap_or_else(|poison| poison.into_inner());
                    *counted += rows;
                    *counted
                };
                let rate = total_rows as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
                bar.set_position(objects_done as u64);
                bar.set_message(format!("{total_rows} rows, {rate:.0} rows/s"));
            }
            EtlProgress::ObjectFailed {
                key,
                reason,
                objects_done,
                ..
            } => {
                bar.set_position(objects_done as u64);
                bar.println(format!("failed {key}: {reason}"));
            }
            EtlProgress::Committing { .. } => bar.set_message("appending to the warehouse"),
            EtlProgress::ComputingFeatures => bar.set_message("computing features"),
            EtlProgress::ReadingRestrictions => bar.set_message("reading players' restrictions"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The process's peak resident set so far (Linux `VmHWM`), for benchmarks.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kilobytes: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kilobytes * 1024)
}
