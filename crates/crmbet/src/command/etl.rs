//! `crmbet etl`: load a lake into per-player features, with progress and a summary.
//!
//! Exit codes: 0 when every object was read, 2 when some objects could not be read (they
//! are reported and the rest is loaded), 1 when the run could not go on at all.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::Context;
use chrono::Utc;
use crmbet_core::Config;
use crmbet_core::fingerprint::fingerprint;
use crmbet_etl::{
    EtlMode, EtlOptions, EtlOutcome, EtlProgress, LakeSource, ObjectFingerprint, PlayerFeatures,
    S3_SCHEME, S3Settings, Watermark, run_etl,
};
use crmbet_store::entity::player_features;
use crmbet_store::{
    EtlRunRecord, EtlRunSummary, LoadedObject, PlayerRecord, QuarantineRecord, Store,
};
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
    let lake = lake_source(&arguments.lake, config).await?;
    let source = arguments.lake.clone();
    let warehouse = warehouse_folder(&config.warehouse_dir, &source);
    let mode = if arguments.full {
        EtlMode::Full
    } else {
        EtlMode::Incremental(watermark(store, &source).await?)
    };
    let started_at = Utc::now();
    let options = EtlOptions::new(lake, &warehouse)
        .with_mode(mode)
        .with_now(started_at);

    let progress = EtlProgressBar::new(arguments.json);
    let outcome = run_etl(options, &|event| progress.report(event))
        .await
        .with_context(|| format!("loading the lake {source}"))?;
    progress.finish();

    let finished_at = Utc::now();
    let record = run_record(&source, arguments.full, started_at, finished_at, &outcome);
    let stored = Instant::now();
    if arguments.full {
        store
            .forget_loaded_objects(&source)
            .await
            .context("resetting the watermark")?;
    }
    let run_id = store
        .record_etl_run(record)
        .await
        .context("storing the run's features")?;
    let store_seconds = stored.elapsed().as_secs_f64();

    let summary = json!({
        "run_id": run_id.0,
        "objects_read": outcome.objects_read,
        "objects_failed": outcome.objects_failed(),
        "failed_objects": outcome.failed_objects,
        "objects_already_loaded": outcome.objects_already_loaded,
        "rows_read": outcome.rows_read,
        "rows_loaded": outcome.rows_loaded,
        "rows_quarantined": outcome.rows_quarantined,
        "quarantine_by_rule": outcome
            .quarantine_by_rule
            .iter()
            .map(|(rule, count)| (rule.name().to_owned(), *count))
            .collect::<std::collections::BTreeMap<_, _>>(),
        "duplicates": outcome.duplicates,
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
    });
    if arguments.json {
        println!("{summary}");
    } else {
        print_summary(&outcome, run_id.0, store_seconds);
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

/// One warehouse per lake, so two lakes never mix their transactions.
fn warehouse_folder(root: &std::path::Path, source: &str) -> PathBuf {
    let readable: String = source
        .chars()
        .map(|character| {
            if character.is_ascii_alphanumeric() {
                character
            } else {
                '_'
            }
        })
        .collect();
    let tail: String = readable
        .chars()
        .rev()
        .take(40)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    // The fingerprint keeps distinct sources apart even when their readable tails collide.
    root.join(format!("{tail}-{}", fingerprint(source)))
}

async fn watermark(store: &Store, source: &str) -> anyhow::Result<Watermark> {
    let mut watermark = Watermark::new();
    for object in store
        .loaded_objects(source)
        .await
        .context("reading the watermark")?
    {
        watermark.insert(ObjectFingerprint {
            key: object.key,
            size: u64::try_from(object.size_bytes).unwrap_or_default(),
            etag: object.etag,
        });
    }
    Ok(watermark)
}

fn run_record(
    source: &str,
    full_refresh: bool,
    started_at: chrono::DateTime<Utc>,
    finished_at: chrono::DateTime<Utc>,
    outcome: &EtlOutcome,
) -> EtlRunRecord {
    let count = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
    EtlRunRecord {
        source: source.to_owned(),
        full_refresh,
        started_at,
        finished_at,
        status: if outcome.objects_failed() > 0 {
            "partial"
        } else {
            "succeeded"
        }
        .to_owned(),
        summary: EtlRunSummary {
            objects_read: count(outcome.objects_read),
            objects_failed: count(outcome.objects_failed()),
            rows_read: count(outcome.rows_read),
            rows_loaded: count(outcome.rows_loaded),
            rows_quarantined: count(outcome.rows_quarantined),
            duplicates: count(outcome.duplicates),
            players: count(outcome.players),
            completeness: outcome.quality.completeness,
            validity: outcome.quality.validity,
            uniqueness: outcome.quality.uniqueness,
            freshness: outcome.quality.freshness,
            quality_score: outcome.quality.overall,
            grade: outcome.quality.grade.as_str().to_owned(),
        },
        report: json!({
            "failed_objects": outcome.failed_objects,
            "quarantine_by_rule": outcome
                .quarantine_by_rule
                .iter()
                .map(|(rule, count)| (rule.name().to_owned(), *count))
                .collect::<std::collections::BTreeMap<_, _>>(),
            "objects_already_loaded": outcome.objects_already_loaded,
        }),
        quarantine: outcome
            .quarantined
            .iter()
            .map(|row| QuarantineRecord {
                rule: row.rule.name().to_owned(),
                source_object: row.source_object.clone(),
                row_json: row.row_json.clone(),
            })
            .collect(),
        players: outcome
            .features
            .iter()
            .map(|features| PlayerRecord {
                user_id: features.user_id.clone(),
                country: features.country.clone(),
                first_seen_at: Some(features.first_seen_at),
                last_active_at: Some(features.last_active_at),
            })
            .collect(),
        features: outcome.features.iter().map(feature_row).collect(),
        loaded_objects: outcome
            .loaded_objects
            .iter()
            .map(|object| LoadedObject {
                key: object.key.clone(),
                size_bytes: i64::try_from(object.size).unwrap_or(i64::MAX),
                etag: object.etag.clone(),
            })
            .collect(),
    }
}

fn feature_row(features: &PlayerFeatures) -> player_features::Model {
    player_features::Model {
        etl_run_id: 0,
        user_id: features.user_id.clone(),
        favourite_game: features.favourite_game.clone().unwrap_or_default(),
        share_crash: features.share_crash,
        share_slots: features.share_slots,
        share_live_casino: features.share_live_casino,
        share_sports: features.share_sports,
        share_table: features.share_table,
        bet_count: features.bet_count,
        bet_std: features.bet_std,
        bet_cv: features.bet_cv,
        sessions: features.sessions,
        bets_per_session: features.bets_per_session,
        avg_ticket: features.avg_ticket,
        total_staked: features.total_staked,
        ngr: features.ngr,
        deposit_count: features.deposit_count,
        deposit_sum: features.deposit_sum,
        avg_deposit: features.avg_deposit,
        withdrawal_count: features.withdrawal_count,
        withdrawal_sum: features.withdrawal_sum,
        withdrawal_ratio: features.withdrawal_ratio,
        bonus_share: features.bonus_share,
        clv_estimate: features.clv_estimate,
        night_share: features.night_share,
        weekend_share: features.weekend_share,
        preferred_hour: features.preferred_hour,
        preferred_weekday: features.preferred_weekday,
        active_days: features.active_days,
        tenure_days: features.tenure_days,
        recency_days: features.recency_days,
        frequency: features.frequency,
        monetary: features.monetary,
        r_score: features.r_score,
        f_score: features.f_score,
        m_score: features.m_score,
    }
}

fn print_summary(outcome: &EtlOutcome, run_id: i64, store_seconds: f64) {
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
        let Some(bar) = &self.bar else {
            return;
        };
        match event {
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
