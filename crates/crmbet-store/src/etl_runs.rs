//! Storing what an ETL run produced, in one transaction, and reading the watermark.

use chrono::{DateTime, Utc};
use crmbet_core::{Error, EtlRunId, Result};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect,
};

use crate::database::Store;
use crate::entity::{etl_runs, lake_objects, player_features, players, quarantine};
use crate::failure::database_error;

/// Rows per INSERT: well under the bind-parameter limits of SQLite and PostgreSQL for the
/// widest table (player_features, 37 columns).
const INSERT_BATCH_ROWS: usize = 500;

/// One version of a lake object.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LoadedObject {
    pub key: String,
    pub size_bytes: i64,
    pub etag: String,
}

/// A row that broke a contract rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineRecord {
    pub rule: String,
    pub source_object: String,
    pub row_json: String,
}

/// A player's own facts as the run saw them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayerRecord {
    pub user_id: String,
    pub country: Option<String>,
    pub first_seen_at: Option<DateTime<Utc>>,
    pub last_active_at: Option<DateTime<Utc>>,
}

/// Counts and quality of a run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EtlRunSummary {
    pub objects_read: i64,
    pub objects_failed: i64,
    pub rows_read: i64,
    pub rows_loaded: i64,
    pub rows_quarantined: i64,
    pub duplicates: i64,
    pub players: i64,
    pub completeness: f64,
    pub validity: f64,
    pub uniqueness: f64,
    pub freshness: f64,
    pub quality_score: f64,
    pub grade: String,
}

/// Everything a finished run writes.
#[derive(Debug, Clone, PartialEq)]
pub struct EtlRunRecord {
    pub source: String,
    pub full_refresh: bool,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// `succeeded`, or `partial` when some objects could not be read.
    pub status: String,
    pub summary: EtlRunSummary,
    /// Failed objects and per-rule counts, as shown to operators.
    pub report: serde_json::Value,
    pub quarantine: Vec<QuarantineRecord>,
    pub players: Vec<PlayerRecord>,
    /// Every player's features; `etl_run_id` is set by [`Store::record_etl_run`].
    pub features: Vec<player_features::Model>,
    pub loaded_objects: Vec<LoadedObject>,
    /// The last live transaction (by id) the warehouse holds after the run: the source's
    /// new live watermark (`None` keeps the old one).
    pub live_through_id: Option<i64>,
    /// The newest transaction the warehouse holds.
    pub newest_micros: Option<i64>,
    /// Ids and times of the lake rows this run appended within the live window of the
    /// newest transaction: a live event repeating one is a duplicate.
    pub recent_ids: Vec<(String, i64)>,
    /// The live window: ids older than `newest_micros` minus this are forgotten.
    pub live_window_micros: i64,
}

impl Store {
    /// The objects `source` has loaded so far: the watermark.
    pub async fn loaded_objects(&self, source: &str) -> Result<Vec<LoadedObject>> {
        let rows = lake_objects::Entity::find()
            .filter(lake_objects::Column::Source.eq(source))
            .all(self.connection())
            .await
            .map_err(database_error)?;
        Ok(rows
            .into_iter()
            .map(|row| LoadedObject {
                key: row.object_key,
                size_bytes: row.size_bytes,
                etag: row.etag,
            })
            .collect())
    }

    /// Stores a finished run: the run, its quarantine, the players, their features and the
    /// objects it loaded, all or nothing. A full refresh replaces the source's watermark in
    /// the same transaction.
    pub async fn record_etl_run(&self, record: EtlRunRecord) -> Result<EtlRunId> {
        let transaction = self.begin_bulk_write().await?;
        if record.full_refresh {
            lake_objects::Entity::delete_many()
                .filter(lake_objects::Column::Source.eq(record.source.as_str()))
                .exec(&transaction)
                .await
                .map_err(database_error)?;
        }
        let summary = &record.summary;
        let inserted = etl_runs::Entity::insert(etl_runs::ActiveModel {
            source: Set(record.source.clone()),
            status: Set(record.status.clone()),
            full_refresh: Set(record.full_refresh),
            started_at: Set(record.started_at),
            finished_at: Set(Some(record.finished_at)),
            objects_read: Set(summary.objects_read),
            objects_failed: Set(summary.objects_failed),
            rows_read: Set(summary.rows_read),
            rows_loaded: Set(summary.rows_loaded),
            rows_quarantined: Set(summary.rows_quarantined),
            duplicates: Set(summary.duplicates),
            players: Set(summary.players),
            completeness: Set(Some(summary.completeness)),
            validity: Set(Some(summary.validity)),
            uniqueness: Set(Some(summary.uniqueness)),
            freshness: Set(Some(summary.freshness)),
            quality_score: Set(Some(summary.quality_score)),
            grade: Set(Some(summary.grade.clone())),
            report: Set(Some(record.report.clone())),
            ..Default::default()
        })
        .exec(&transaction)
        .await
        .map_err(database_error)?;
        let etl_run_id = inserted.last_insert_id;
        let now = record.finished_at;

        for chunk in record.quarantine.chunks(INSERT_BATCH_ROWS) {
            quarantine::Entity::insert_many(chunk.iter().map(|row| quarantine::ActiveModel {
                etl_run_id: Set(etl_run_id),
                rule: Set(row.rule.clone()),
                source_object: Set(row.source_object.clone()),
                row_json: Set(row.row_json.clone()),
                created_at: Set(now),
                ..Default::default()
            }))
            .exec(&transaction)
            .await
            .map_err(database_error)?;
        }

        for chunk in record.players.chunks(INSERT_BATCH_ROWS) {
            players::Entity::insert_many(chunk.iter().map(|player| players::ActiveModel {
                user_id: Set(player.user_id.clone()),
                country: Set(player.country.clone()),
                first_seen_at: Set(player.first_seen_at),
                last_active_at: Set(player.last_active_at),
                latest_etl_run_id: Set(Some(etl_run_id)),
                created_at: Set(now),
                updated_at: Set(now),
            }))
            .on_conflict(
                OnConflict::column(players::Column::UserId)
                    .update_columns([
                        players::Column::Country,
                        players::Column::FirstSeenAt,
                        players::Column::LastActiveAt,
                        players::Column::LatestEtlRunId,
                        players::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec(&transaction)
            .await
            .map_err(database_error)?;
        }

        for chunk in record.features.chunks(INSERT_BATCH_ROWS) {
            player_features::Entity::insert_many(chunk.iter().map(|features| {
                let mut row = features.clone();
                row.etl_run_id = etl_run_id;
                player_features::ActiveModel::from(row)
            }))
            .exec(&transaction)
            .await
            .map_err(database_error)?;
        }

        for chunk in record.loaded_objects.chunks(INSERT_BATCH_ROWS) {
            let inserted = lake_objects::Entity::insert_many(chunk.iter().map(|object| {
                lake_objects::ActiveModel {
                    source: Set(record.source.clone()),
                    object_key: Set(object.key.clone()),
                    size_bytes: Set(object.size_bytes),
                    etag: Set(object.etag.clone()),
                    etl_run_id: Set(etl_run_id),
                    loaded_at: Set(now),
                }
            }))
            .on_conflict(
                OnConflict::columns([
                    lake_objects::Column::Source,
                    lake_objects::Column::ObjectKey,
                    lake_objects::Column::SizeBytes,
                    lake_objects::Column::Etag,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec(&transaction)
            .await;
            // Every object of the chunk already in the watermark is not an error.
            match inserted {
                Ok(_) | Err(DbErr::RecordNotInserted) => {}
                Err(error) => return Err(database_error(error)),
            }
        }
        let backend = transaction.get_database_backend();
        for chunk in record.recent_ids.chunks(INSERT_BATCH_ROWS) {
            let mut insert = Query::insert();
            insert
                .into_table(Alias::new("lake_transaction_ids"))
                .columns([Alias::new("transaction_id"), Alias::new("occurred_micros")])
                .on_conflict(
                    OnConflict::column(Alias::new("transaction_id"))
                        .do_nothing()
                        .to_owned(),
                );
            for (id, micros) in chunk {
                insert
                    .values([id.as_str().into(), (*micros).into()])
                    .map_err(|error| Error::Internal(format!("building an id insert: {error}")))?;
            }
            transaction
                .execute_raw(backend.build(&insert))
                .await
                .map_err(database_error)?;
        }
        if let Some(newest) = record.newest_micros {
            let forget = Query::delete()
                .from_table(Alias::new("lake_transaction_ids"))
                .and_where(
                    Expr::col(Alias::new("occurred_micros"))
                        .lt(newest.saturating_sub(record.live_window_micros)),
                )
                .to_owned();
            transaction
                .execute_raw(backend.build(&forget))
                .await
                .map_err(database_error)?;
        }
        let through_id = match record.live_through_id {
            Some(through_id) => through_id,
            None => live_watermark_in(&transaction, &record.source).await?,
        };
        let mut upsert = Query::insert();
        upsert
            .into_table(Alias::new("etl_live_watermarks"))
            .columns([
                Alias::new("source"),
                Alias::new("through_id"),
                Alias::new("newest_micros"),
                Alias::new("updated_at"),
            ])
            .values([
                record.source.as_str().into(),
                through_id.into(),
                record.newest_micros.into(),
                now.into(),
            ])
            .map_err(|error| Error::Internal(format!("building a watermark upsert: {error}")))?
            .on_conflict(
                OnConflict::column(Alias::new("source"))
                    .update_columns([
                        Alias::new("through_id"),
                        Alias::new("newest_micros"),
                        Alias::new("updated_at"),
                    ])
                    .to_owned(),
            );
        transaction
            .execute_raw(backend.build(&upsert))
            .await
            .map_err(database_error)?;
        transaction.commit().await.map_err(database_error)?;
        Ok(EtlRunId(etl_run_id))
    }

    /// The last live transaction (by id) the ETL runs of `source` accepted; 0 before any.
    pub async fn live_watermark(&self, source: &str) -> Result<i64> {
        live_watermark_in(self.connection(), source).await
    }

    /// The time before which a live event may already be in a lake without crmbet knowing
    /// its id: the newest transaction any warehouse holds, minus `window_micros`. `None`
    /// before the first batch run.
    pub async fn live_late_horizon(&self, window_micros: i64) -> Result<Option<i64>> {
        let query = Query::select()
            .expr_as(
                Expr::col(Alias::new("newest_micros")).max(),
                Alias::new("newest"),
            )
            .from(Alias::new("etl_live_watermarks"))
            .to_owned();
        let newest: Option<i64> = match self
            .connection()
            .query_one(&query)
            .await
            .map_err(database_error)?
        {
            Some(row) => row.try_get("", "newest").map_err(database_error)?,
            None => None,
        };
        Ok(newest.map(|newest| newest.saturating_sub(window_micros)))
    }

    /// The latest ETL run, if any.
    pub async fn latest_etl_run(&self) -> Result<Option<etl_runs::Model>> {
        use sea_orm::QueryOrder;
        etl_runs::Entity::find()
            .order_by_desc(etl_runs::Column::Id)
            .limit(1)
            .one(self.connection())
            .await
            .map_err(database_error)
    }
}

async fn live_watermark_in<C: ConnectionTrait>(connection: &C, source: &str) -> Result<i64> {
    let query = Query::select()
        .column(Alias::new("through_id"))
        .from(Alias::new("etl_live_watermarks"))
        .and_where(Expr::col(Alias::new("source")).eq(source))
        .to_owned();
    match connection
        .query_one_raw(connection.get_database_backend().build(&query))
        .await
        .map_err(database_error)?
    {
        Some(row) => row.try_get("", "through_id").map_err(database_error),
        None => Ok(0),
    }
}
