//! One ETL run: list the lake, ingest the new objects, append their accepted rows to the
//! warehouse, recompute every player's features and score the run's data quality.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Instant;

use chrono::{DateTime, Utc};
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;
use serde::Serialize;

use crate::error::Result;
use crate::features::PlayerFeatures;
use crate::ingest::{IngestTask, IngestedObject};
use crate::lake::{LakeObject, LakeSource, ObjectFingerprint, ObjectFormat, Watermark};
use crate::live::{WarehouseHistory, features_of, history_of};
use crate::quality::{QuarantinedRow, Rule};
use crate::read::ReadFailure;
use crate::restrictions::{RestrictionsSnapshot, read_restrictions_snapshot};
use crate::scores::{QualityCounts, QualityScores};
use crate::warehouse::{Binding, StagedTransaction, TRANSACTIONS_TABLE, Warehouse};

/// Which objects a run reads.
#[derive(Debug, Clone)]
pub enum EtlMode {
    /// Only objects not in the watermark (new keys, or changed size or ETag), appended to
    /// what the warehouse already holds.
    Incremental(Watermark),
    /// Every object, into an emptied warehouse: a recompute from scratch.
    Full,
}

/// What a run reads, where it keeps accepted rows, and how.
#[derive(Debug, Clone)]
pub struct EtlOptions {
    /// The lake to read.
    pub lake: LakeSource,
    /// The folder of accepted transactions kept between runs (see [`Warehouse`]).
    pub warehouse: PathBuf,
    /// The id of the database the outcome will be stored in: the warehouse holds only rows
    /// loaded into that database, and is rebuilt when it finds another id.
    pub database_id: String,
    /// Incremental from a watermark, or full.
    pub mode: EtlMode,
    /// The run's start: rows after it break `occurred_at_future`, and freshness is
    /// measured to it.
    pub now: DateTime<Utc>,
    /// Objects read at the same time (default: the number of CPUs).
    pub concurrency: NonZeroUsize,
    /// Live transactions to accept before the lake's objects (those not in the warehouse
    /// yet): a lake row with the same id is then known to have arrived live, and counted
    /// once.
    pub live: Vec<StagedTransaction>,
    /// When set, the outcome lists the rows this run appended that occurred within this
    /// many microseconds of the warehouse's newest transaction
    /// ([`EtlOutcome::recent_ids`]): the ids a live event may still repeat.
    pub recent_window_micros: Option<i64>,
}

impl EtlOptions {
    /// An incremental run with an empty watermark (every object is new), starting now, for
    /// the database `database_id`.
    pub fn new(
        lake: LakeSource,
        warehouse: impl Into<PathBuf>,
        database_id: impl Into<String>,
    ) -> Self {
        Self {
            lake,
            warehouse: warehouse.into(),
            database_id: database_id.into(),
            mode: EtlMode::Incremental(Watermark::new()),
            now: Utc::now(),
            concurrency: std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN),
            live: Vec::new(),
            recent_window_micros: None,
        }
    }

    /// The same options, listing the appended rows within `window_micros` of the newest.
    pub fn with_recent_window(self, window_micros: i64) -> Self {
        Self {
            recent_window_micros: Some(window_micros),
            ..self
        }
    }

    /// The same options with live transactions to accept first.
    pub fn with_live(self, live: Vec<StagedTransaction>) -> Self {
        Self { live, ..self }
    }

    /// The same options with `mode`.
    pub fn with_mode(self, mode: EtlMode) -> Self {
        Self { mode, ..self }
    }

    /// The same options with the run's start at `now`.
    pub fn with_now(self, now: DateTime<Utc>) -> Self {
        Self { now, ..self }
    }
}

/// Progress reports during a run, in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EtlProgress {
    /// The warehouse held rows of another database (or of an unknown one): it was emptied
    /// and the run reads the whole lake.
    WarehouseRebuilt {
        /// The database id the warehouse recorded, if any.
        previous_database_id: Option<String>,
    },
    /// The lake was listed.
    Listed {
        /// Objects this run will try to read.
        objects_to_read: usize,
        /// Objects skipped because the watermark has them.
        objects_already_loaded: usize,
    },
    /// An object was read to the end.
    ObjectRead {
        /// Its key.
        key: String,
        /// Its rows.
        rows: u64,
        /// Objects finished so far, this one included.
        objects_done: usize,
        /// Objects this run tries to read.
        objects_total: usize,
    },
    /// An object could not be read.
    ObjectFailed {
        /// Its key.
        key: String,
        /// Why.
        reason: String,
        /// Objects finished so far, this one included.
        objects_done: usize,
        /// Objects this run tries to read.
        objects_total: usize,
    },
    /// Staged rows are being deduplicated and appended to the warehouse.
    Committing {
        /// Valid rows staged by this run.
        rows_staged: u64,
    },
    /// Features are being computed over the warehouse.
    ComputingFeatures,
    /// The players' restrictions snapshot under `players/` is being read.
    ReadingRestrictions,
}

/// An object the run could not read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedObject {
    /// Key, size and ETag of the object.
    pub fingerprint: ObjectFingerprint,
    /// Why it could not be read, e.g. `missing required column amount`.
    pub reason: String,
}

/// What a run did and produced.
#[derive(Debug, Clone, Serialize)]
pub struct EtlOutcome {
    /// Whether the run read every object into an emptied warehouse: asked for
    /// ([`EtlMode::Full`]) or because the warehouse belonged to another database. The
    /// caller's watermark must then be replaced by [`EtlOutcome::loaded_objects`].
    pub full_refresh: bool,
    /// Objects under `transactions/`.
    pub objects_listed: u64,
    /// Objects skipped because the watermark has them.
    pub objects_already_loaded: u64,
    /// Objects read to the end this run.
    pub objects_read: u64,
    /// Objects that could not be read, with the reason: those of `transactions/`, then
    /// those of `players/`.
    pub failed_objects: Vec<FailedObject>,
    /// Rows of the objects read.
    pub rows_read: u64,
    /// Rows appended to the warehouse.
    pub rows_loaded: u64,
    /// Rows that broke a contract rule.
    pub rows_quarantined: u64,
    /// Valid rows dropped as repeats of a `transaction_id` (in this run or an earlier one),
    /// besides those that had arrived live.
    pub duplicates: u64,
    /// Live transactions this run was given.
    pub live_rows_staged: u64,
    /// Of those, the ones appended (the others were in the warehouse already).
    pub live_rows_loaded: u64,
    /// Lake rows not appended because the transaction had arrived live: counted once.
    pub rows_already_live: u64,
    /// The newest transaction in the warehouse (microseconds since the epoch).
    pub newest_micros: Option<i64>,
    /// With [`EtlOptions::recent_window_micros`]: the id and time of each row this run
    /// appended from the lake within that window of [`EtlOutcome::newest_micros`].
    #[serde(skip)]
    pub recent_ids: Vec<(String, i64)>,
    /// Quarantined rows per rule (rules with none are left out).
    pub quarantine_by_rule: BTreeMap<Rule, u64>,
    /// Players with features (all players of the warehouse).
    pub players: u64,
    /// Data quality of this run.
    pub quality: QualityScores,
    /// Wall time of the run.
    pub seconds: f64,
    /// The rows that broke a rule.
    pub quarantined: Vec<QuarantinedRow>,
    /// Objects read to the end: add them to the watermark once the outcome is stored.
    pub loaded_objects: Vec<ObjectFingerprint>,
    /// Every player's features, by user id.
    pub features: Vec<PlayerFeatures>,
    /// Every player's aggregates and distinct sessions and days over the warehouse, which
    /// the features were computed from: what seeds the live state.
    #[serde(skip)]
    pub history: WarehouseHistory,
    /// The players' restrictions snapshot, read whole from `players/` (its failed objects
    /// are also in [`EtlOutcome::failed_objects`]).
    pub restrictions: RestrictionsSnapshot,
}

impl EtlOutcome {
    /// How many objects could not be read.
    pub fn objects_failed(&self) -> u64 {
        self.failed_objects.len() as u64
    }
}

/// Runs the ETL once, reporting progress to `progress` as it goes.
///
/// Unreadable objects and broken rows never stop the run; they are reported in the outcome.
/// The caller stores the outcome and then adds [`EtlOutcome::loaded_objects`] to its
/// watermark; if it crashes before, the next run re-reads those objects and the warehouse's
/// dedupe makes that harmless.
pub async fn run_etl(
    options: EtlOptions,
    progress: &(dyn Fn(EtlProgress) + Send + Sync),
) -> Result<EtlOutcome> {
    let started = Instant::now();
    let warehouse = Warehouse::new(&options.warehouse);
    let mode = match warehouse.bind(&options.database_id)? {
        Binding::Kept => options.mode,
        Binding::Foreign { previous } => {
            progress(EtlProgress::WarehouseRebuilt {
                previous_database_id: previous,
            });
            EtlMode::Full
        }
    };
    let full_refresh = matches!(mode, EtlMode::Full);
    warehouse.prepare(full_refresh)?;
    let query_context = SessionContext::new_with_config(
        SessionConfig::new().with_target_partitions(options.concurrency.get()),
    );
    // Live transactions first, in a commit of their own: lake rows are then checked
    // against them.
    let live_rows_staged = warehouse.stage_live(&options.live)?;
    let live_commit = warehouse.commit(&query_context, live_rows_staged).await?;
    if live_commit.rows_loaded > 0 {
        warehouse.mark_live_rows()?;
    }

    let objects = options.lake.list().await?;
    let objects_listed = objects.len() as u64;
    let (to_read, objects_already_loaded) = match &mode {
        EtlMode::Full => (objects, 0),
        EtlMode::Incremental(watermark) => {
            let (loaded, new): (Vec<LakeObject>, Vec<LakeObject>) = objects
                .into_iter()
                .partition(|object| watermark.contains(&object.fingerprint));
            (new, loaded.len() as u64)
        }
    };
    progress(EtlProgress::Listed {
        objects_to_read: to_read.len(),
        objects_already_loaded: objects_already_loaded as usize,
    });

    let mut totals = Totals::default();
    let objects_total = to_read.len();
    let ingest_context = SessionContext::new_with_config(
        // One partition per object keeps rows in file order; objects run side by side.
        SessionConfig::new().with_target_partitions(1),
    );
    let mut jobs = Vec::with_capacity(to_read.len());
    for (ordinal, object) in to_read.into_iter().enumerate() {
        let Some(format) = object.format else {
            jobs.push(Job::Unknown(object));
            continue;
        };
        let task = IngestTask {
            context: ingest_context.clone(),
            lake: options.lake.clone(),
            staging_path: warehouse.staging_path(ordinal as u64),
            object: object.clone(),
            format,
            ordinal: ordinal as u64,
            now: options.now,
        };
        jobs.push(Job::Read(object, Box::new(task)));
    }
    let mut results = futures::stream::iter(jobs)
        .map(|job| async move {
            match job {
                Job::Unknown(object) => (object, Err(unknown_extension())),
                Job::Read(object, task) => {
                    let format = task.format;
                    // A reader that panics on a malformed file fails that object only.
                    let outcome = tokio::spawn(task.run()).await.unwrap_or_else(|error| {
                        Err(ReadFailure(format!(
                            "{}: the reader crashed: {error}",
                            unreadable(format)
                        )))
                    });
                    (object, outcome)
                }
            }
        })
        .buffered(options.concurrency.get());
    while let Some((object, result)) = results.next().await {
        let objects_done = totals.objects_read as usize + totals.failed_objects.len() + 1;
        match result {
            Ok(ingested) => {
                progress(EtlProgress::ObjectRead {
                    key: object.key().to_owned(),
                    rows: ingested.rows_read,
                    objects_done,
                    objects_total,
                });
                totals.add(object.fingerprint, ingested);
            }
            Err(ReadFailure(reason)) => {
                progress(EtlProgress::ObjectFailed {
                    key: object.key().to_owned(),
                    reason: reason.clone(),
                    objects_done,
                    objects_total,
                });
                totals.failed_objects.push(FailedObject {
                    fingerprint: object.fingerprint,
                    reason,
                });
            }
        }
    }

    progress(EtlProgress::Committing {
        rows_staged: totals.rows_valid,
    });
    let commit = warehouse.commit(&query_context, totals.rows_valid).await?;

    progress(EtlProgress::ComputingFeatures);
    let registered = warehouse
        .register(&query_context, TRANSACTIONS_TABLE)
        .await?;
    let history = if registered {
        history_of(&query_context).await?
    } else {
        WarehouseHistory::default()
    };
    // Equal to the feature SQL over the same rows (`tests/etl/live.rs`).
    let features = features_of(&history.players);
    let newest_micros = history
        .players
        .iter()
        .map(|player| player.last_seen_micros)
        .max();
    let recent_ids = match (options.recent_window_micros, newest_micros, &commit.part) {
        (Some(window), Some(newest), Some(part)) => {
            warehouse
                .recent_ids(&query_context, part, newest.saturating_sub(window))
                .await?
        }
        _ => Vec::new(),
    };

    progress(EtlProgress::ReadingRestrictions);
    let restrictions =
        read_restrictions_snapshot(&options.lake, &warehouse.staging_folder()).await?;

    let rows_quarantined = totals.quarantined.len() as u64;
    let duplicates = commit.rows_staged - commit.rows_loaded - commit.rows_already_live;
    let quality = QualityScores::from_counts(&QualityCounts {
        objects_read: totals.objects_read,
        objects_failed: totals.failed_objects.len() as u64,
        rows_read: totals.rows_read,
        missing_required_values: totals.missing_required_values,
        rows_quarantined,
        duplicates,
        newest_event: features.iter().map(|player| player.last_active_at).max(),
        now: options.now,
    });
    let mut quarantine_by_rule = BTreeMap::new();
    for row in &totals.quarantined {
        *quarantine_by_rule.entry(row.rule).or_insert(0) += 1;
    }
    // After the quality scores, which measure the transactions only.
    let mut failed_objects = totals.failed_objects;
    failed_objects.extend(restrictions.failed_objects.iter().cloned());
    Ok(EtlOutcome {
        full_refresh,
        objects_listed,
        objects_already_loaded,
        objects_read: totals.objects_read,
        failed_objects,
        rows_read: totals.rows_read,
        rows_loaded: commit.rows_loaded,
        rows_quarantined,
        duplicates,
        live_rows_staged,
        live_rows_loaded: live_commit.rows_loaded,
        rows_already_live: commit.rows_already_live,
        newest_micros,
        recent_ids,
        quarantine_by_rule,
        players: features.len() as u64,
        quality,
        seconds: started.elapsed().as_secs_f64(),
        quarantined: totals.quarantined,
        loaded_objects: totals.loaded_objects,
        features,
        history,
        restrictions,
    })
}

enum Job {
    Unknown(LakeObject),
    Read(LakeObject, Box<IngestTask>),
}

fn unreadable(format: ObjectFormat) -> &'static str {
    match format {
        ObjectFormat::Parquet => "not a readable parquet file",
        ObjectFormat::Csv(_) => "not a readable csv file",
        ObjectFormat::NdJson(_) => "not a readable ndjson file",
    }
}

fn unknown_extension() -> ReadFailure {
    ReadFailure(format!(
        "unknown extension; the lake holds {}",
        ObjectFormat::KNOWN_EXTENSIONS
    ))
}

/// The sums over the objects of a run.
#[derive(Debug, Default)]
struct Totals {
    objects_read: u64,
    rows_read: u64,
    rows_valid: u64,
    missing_required_values: u64,
    quarantined: Vec<QuarantinedRow>,
    loaded_objects: Vec<ObjectFingerprint>,
    failed_objects: Vec<FailedObject>,
}

impl Totals {
    fn add(&mut self, fingerprint: ObjectFingerprint, ingested: IngestedObject) {
        self.objects_read += 1;
        self.rows_read += ingested.rows_read;
        self.rows_valid += ingested.rows_valid;
        self.missing_required_values += ingested.missing_required_values;
        self.quarantined.extend(ingested.quarantined);
        self.loaded_objects.push(fingerprint);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_future_can_be_spawned() {
        fn is_send<T: Send>(_: &T) {}
        let progress = |_: EtlProgress| {};
        let run = run_etl(
            EtlOptions::new(LakeSource::local("."), ".", "test"),
            &progress,
        );
        is_send(&run);
    }
}
