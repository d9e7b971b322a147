//! Loading a lake into the database: one ETL run over the lake's new objects, into the
//! warehouse bound to this database, and its outcome (features, quarantine, watermark)
//! stored in one write. The lake's snapshot of players' restrictions (`players/`, read whole
//! by every run) is applied first, in a transaction of its own, and audited.

use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{DateTime, Utc};
use crmbet_core::fingerprint::fingerprint;
use crmbet_core::{EtlRunId, Result};
use crmbet_etl::{
    EtlMode, EtlOptions, EtlOutcome, EtlProgress, LakeSource, ObjectFingerprint,
    RestrictionsSnapshot, StagedTransaction, Warehouse, Watermark, run_etl,
};
use crmbet_store::{
    AuditEntry, EtlRunRecord, EtlRunSummary, LakeRestrictionRow, LakeRestrictionsApplied,
    LoadedObject, PlayerRecord, QuarantineRecord, RestrictionFlags, Store,
};
use serde_json::json;

use crate::features::feature_row;
use crate::live_play::LIVE_WINDOW_MICROS;
use crate::live_seeding::seed_live_state;

/// What to load and how.
#[derive(Debug, Clone)]
pub struct LakeLoad {
    /// The lake as the operator named it (`./lake`, `s3://bucket/prefix`): the watermark's
    /// and the warehouse's key.
    pub source: String,
    /// The opened lake.
    pub lake: LakeSource,
    /// The folder under which each lake gets its warehouse (`CRMBET_WAREHOUSE_DIR`).
    pub warehouse_root: PathBuf,
    /// Re-read every object into an emptied warehouse instead of only the new ones.
    pub full: bool,
}

/// A stored run.
#[derive(Debug)]
pub struct LoadedLake {
    pub run_id: EtlRunId,
    pub outcome: EtlOutcome,
    /// What applying the `players/` snapshot changed in the database.
    pub restrictions: LakeRestrictionsApplied,
    /// Players whose live state now continues from the warehouse (0 without live play).
    pub live_states_seeded: u64,
    /// Wall time of storing the outcome.
    pub store_seconds: f64,
}

/// Runs the ETL on the lake and stores the outcome, reporting progress as it goes.
///
/// The warehouse is bound to the store's database: when it holds another database's rows
/// the run rebuilds it from the whole lake and the watermark is replaced, exactly as with
/// `full`.
pub async fn load_lake(
    store: &Store,
    load: LakeLoad,
    progress: &(dyn Fn(EtlProgress) + Send + Sync),
) -> Result<LoadedLake> {
    let database_id = store.database_id().await?;
    let warehouse = warehouse_folder(&load.warehouse_root, &load.source);
    let mode = if load.full {
        EtlMode::Full
    } else {
        EtlMode::Incremental(watermark(store, &load.source).await?)
    };
    // A run that keeps the warehouse takes the live transactions since its last; one that
    // rebuilds it takes them all.
    let keeps_warehouse = !load.full && Warehouse::new(&warehouse).is_bound_to(&database_id)?;
    let live_after = if keeps_warehouse {
        store.live_watermark(&load.source).await?
    } else {
        0
    };
    let live_through = store.live_horizon().await?;
    let live = live_transactions(store, live_after, live_through).await?;
    let started_at = Utc::now();
    let options = EtlOptions::new(load.lake, &warehouse, database_id)
        .with_mode(mode)
        .with_now(started_at)
        .with_live(live)
        .with_recent_window(LIVE_WINDOW_MICROS);
    let mut outcome = run_etl(options, progress).await?;

    let stored = Instant::now();
    // Restrictions first: a failure to store the run must not delay an exclusion.
    let restrictions = store
        .apply_lake_restrictions(
            &restriction_rows(&outcome.restrictions),
            &format!("lake {}", load.source),
        )
        .await?;
    let mut record = run_record(
        &load.source,
        started_at,
        Utc::now(),
        &outcome,
        &restrictions,
    );
    record.live_through_id = Some(live_through.max(live_after));
    record.newest_micros = outcome.newest_micros;
    record.recent_ids = std::mem::take(&mut outcome.recent_ids);
    let run_id = store.record_etl_run(record).await?;
    // Live events from now on continue each player's whole history.
    let history = std::mem::take(&mut outcome.history);
    let live_states_seeded = seed_live_state(store, history, live_through).await?;
    if outcome.restrictions.objects_listed > 0 {
        store
            .record_audit(AuditEntry {
                actor: "etl".to_owned(),
                role: None,
                action: "lake.restrictions".to_owned(),
                target: Some(format!("lake {}", load.source)),
                client_ip: None,
                request_id: None,
                details: Some(json!({
                    "etl_run_id": run_id.0,
                    "restrictions": restrictions_summary(&outcome.restrictions, &restrictions),
                })),
                occurred_at: Utc::now(),
            })
            .await?;
    }
    Ok(LoadedLake {
        run_id,
        outcome,
        restrictions,
        live_states_seeded,
        store_seconds: stored.elapsed().as_secs_f64(),
    })
}

fn restriction_rows(snapshot: &RestrictionsSnapshot) -> Vec<LakeRestrictionRow> {
    snapshot
        .players
        .iter()
        .map(|player| LakeRestrictionRow {
            user_id: player.user_id.clone(),
            flags: RestrictionFlags {
                self_excluded: player.self_excluded,
                blocked: player.blocked,
                marketing_opt_out: player.marketing_opt_out,
            },
            updated_at: player.updated_at,
        })
        .collect()
}

/// The `restrictions` object of `crmbet etl --json`, the stored run report and the audit
/// log: what was read from `players/` and what it changed.
pub fn restrictions_summary(
    snapshot: &RestrictionsSnapshot,
    applied: &LakeRestrictionsApplied,
) -> serde_json::Value {
    json!({
        "objects_read": snapshot.objects_read,
        "objects_failed": snapshot.failed_objects.len(),
        "rows_read": snapshot.rows_read,
        "rows_rejected": snapshot.rows_rejected(),
        "rejected_by_rule": snapshot.rejected_by_rule(),
        "duplicates": snapshot.duplicates,
        "players_restricted": applied.players_restricted,
        "players_updated": applied.players_updated,
    })
}

/// One warehouse per lake, so two lakes never mix their transactions.
fn warehouse_folder(root: &Path, source: &str) -> PathBuf {
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

async fn watermark(store: &Store, source: &str) -> Result<Watermark> {
    let mut watermark = Watermark::new();
    for object in store.loaded_objects(source).await? {
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
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
    outcome: &EtlOutcome,
    restrictions: &LakeRestrictionsApplied,
) -> EtlRunRecord {
    let count = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
    EtlRunRecord {
        source: source.to_owned(),
        full_refresh: outcome.full_refresh,
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
            "quarantine_by_rule": quarantine_by_rule(outcome),
            "objects_already_loaded": outcome.objects_already_loaded,
            "live_rows_staged": outcome.live_rows_staged,
            "live_rows_loaded": outcome.live_rows_loaded,
            "rows_already_live": outcome.rows_already_live,
            "restrictions": restrictions_summary(&outcome.restrictions, restrictions),
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
        live_through_id: None,
        newest_micros: None,
        recent_ids: Vec::new(),
        live_window_micros: LIVE_WINDOW_MICROS,
    }
}

/// Live transactions read per query.
const LIVE_PAGE: u64 = 50_000;

/// The live transactions with `after < id <= through`, as the warehouse stages them.
async fn live_transactions(
    store: &Store,
    after: i64,
    through: i64,
) -> Result<Vec<StagedTransaction>> {
    let mut staged = Vec::new();
    let mut cursor = after;
    while cursor < through {
        let page = store
            .live_transactions_between(cursor, through, LIVE_PAGE)
            .await?;
        let Some(last) = page.last() else { break };
        cursor = last.id;
        staged.extend(page.into_iter().map(|row| StagedTransaction {
            transaction_id: row.transaction_id,
            user_id: row.user_id,
            occurred_micros: row.occurred_micros,
            kind: row.kind,
            amount: row.amount,
            game_type: row.game_type,
            session_id: row.session_id,
            country: row.country,
        }));
    }
    Ok(staged)
}

/// Quarantined rows per rule name, for summaries and the stored report.
pub fn quarantine_by_rule(outcome: &EtlOutcome) -> std::collections::BTreeMap<String, u64> {
    outcome
        .quarantine_by_rule
        .iter()
        .map(|(rule, count)| (rule.name().to_owned(), *count))
        .collect()
}
