//! Segment changes: one row each time a player's cluster in the active model changes,
//! written in the transaction that changes it (a live assignment or an activation), so the
//! stream that reads them on (`WatchSegmentChanges`, Smartico, webhooks) never misses one
//! and never sees one that was rolled back. The row id is the stream's cursor.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use crmbet_core::delivery::{
    CAMPAIGN_DELIVERY_TOPIC, OutboxMessage, PROFILE_BATCH_PLAYERS, ProfileUpdates, SegmentChange,
};
use crmbet_core::{Error, Result};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, JoinType, OnConflict, Order, Query};
use sea_orm::{ActiveValue::Set, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait};
use sea_orm::{FromQueryResult, Statement};

use crate::database::Store;
use crate::entity::{clusters, outbox, player_segments};
use crate::failure::database_error;

/// Rows per multi-row statement.
const ROWS_PER_STATEMENT: usize = 500;

/// Why a segment changed.
pub const REASON_LIVE: &str = "live";
/// A model activation moved the player to a segment of another name.
pub const REASON_ACTIVATION: &str = "activation";

/// A player's segment in a model, as a live assignment computed it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LiveSegment {
    pub model_id: i64,
    pub cluster_id: i64,
    pub confidence: f64,
    pub outlier: bool,
}

/// One recorded change, with the clusters' names.
#[derive(Debug, Clone, PartialEq, FromQueryResult)]
pub struct RecordedSegmentChange {
    /// The cursor: changes are read in this order.
    pub id: i64,
    pub user_id: String,
    pub model_id: i64,
    pub previous_cluster_id: Option<i64>,
    pub previous_cluster_name: Option<String>,
    pub cluster_id: i64,
    pub cluster_name: String,
    pub suggested_campaign: String,
    pub confidence: f64,
    pub outlier: bool,
    pub reason: String,
    pub changed_at: DateTime<Utc>,
}

impl Store {
    /// Up to `limit` changes after the cursor `after` (0 for the first), oldest first.
    pub async fn segment_changes_after(
        &self,
        after: i64,
        limit: u64,
    ) -> Result<Vec<RecordedSegmentChange>> {
        self.segment_changes_between(after, i64::MAX, limit).await
    }

    /// The changes after `after` through `through`, oldest first, at most `limit`.
    pub async fn segment_changes_between(
        &self,
        after: i64,
        through: i64,
        limit: u64,
    ) -> Result<Vec<RecordedSegmentChange>> {
        let query = changes_query()
            .and_where(Expr::col((Alias::new("s"), Alias::new("id"))).gt(after))
            .and_where(Expr::col((Alias::new("s"), Alias::new("id"))).lte(through))
            .order_by((Alias::new("s"), Alias::new("id")), Order::Asc)
            .limit(limit)
            .to_owned();
        RecordedSegmentChange::find_by_statement(self.backend().build(&query))
            .all(self.connection())
            .await
            .map_err(database_error)
    }

    /// The newest change's cursor (0 before the first): where a watcher that wants only
    /// what happens from now on starts.
    pub async fn last_segment_change(&self) -> Result<i64> {
        let query = Query::select()
            .expr_as(Expr::col(Alias::new("id")).max(), Alias::new("last"))
            .from(Alias::new("segment_changes"))
            .to_owned();
        let row = self
            .connection()
            .query_one(&query)
            .await
            .map_err(database_error)?;
        match row {
            Some(row) => Ok(row
                .try_get::<Option<i64>>("", "last")
                .map_err(database_error)?
                .unwrap_or(0)),
            None => Ok(0),
        }
    }
}

/// The changes joined with their clusters' names, as `s`.
fn changes_query() -> sea_orm::sea_query::SelectStatement {
    let changes = Alias::new("s");
    let current = Alias::new("c");
    let previous = Alias::new("p");
    Query::select()
        .columns(
            [
                "id",
                "user_id",
                "model_id",
                "previous_cluster_id",
                "cluster_id",
                "confidence",
                "outlier",
                "reason",
                "changed_at",
            ]
            .map(|name| (changes.clone(), Alias::new(name))),
        )
        .expr_as(
            Expr::col((previous.clone(), Alias::new("name"))),
            Alias::new("previous_cluster_name"),
        )
        .expr_as(
            Expr::col((current.clone(), Alias::new("name"))),
            Alias::new("cluster_name"),
        )
        .expr_as(
            Expr::col((current.clone(), Alias::new("suggested_campaign"))),
            Alias::new("suggested_campaign"),
        )
        .from_as(Alias::new("segment_changes"), changes.clone())
        .join_as(
            JoinType::InnerJoin,
            clusters::Entity,
            current.clone(),
            Expr::col((current, Alias::new("id")))
                .equals((changes.clone(), Alias::new("cluster_id"))),
        )
        .join_as(
            JoinType::LeftJoin,
            clusters::Entity,
            previous.clone(),
            Expr::col((previous, Alias::new("id")))
                .equals((changes, Alias::new("previous_cluster_id"))),
        )
        .to_owned()
}

/// Stores the players' live segments; for each whose cluster changed (or who had none in
/// the model) records a change and, with `profile_updates`, queues a Smartico profile
/// update. Returns how many changed.
pub(crate) async fn record_live_segments(
    transaction: &DatabaseTransaction,
    backend: DbBackend,
    segments: &[(String, LiveSegment)],
    profile_updates: bool,
    now: DateTime<Utc>,
) -> Result<u64> {
    let mut changed = 0;
    for chunk in segments.chunks(ROWS_PER_STATEMENT) {
        let Some((_, first)) = chunk.first() else {
            continue;
        };
        // One model per batch: the active one when the batch was scored.
        let model_id = first.model_id;
        let users: Vec<&str> = chunk.iter().map(|(user_id, _)| user_id.as_str()).collect();
        let previous = current_clusters(transaction, backend, model_id, &users).await?;
        let mut upsert = Query::insert()
            .into_table(player_segments::Entity)
            .columns([
                player_segments::Column::ModelId,
                player_segments::Column::UserId,
                player_segments::Column::ClusterId,
                player_segments::Column::Confidence,
                player_segments::Column::Outlier,
                player_segments::Column::AssignedAt,
            ])
            .on_conflict(
                OnConflict::columns([
                    player_segments::Column::ModelId,
                    player_segments::Column::UserId,
                ])
                .update_columns([
                    player_segments::Column::ClusterId,
                    player_segments::Column::Confidence,
                    player_segments::Column::Outlier,
                    player_segments::Column::AssignedAt,
                ])
                .to_owned(),
            )
            .to_owned();
        let mut changes = Query::insert()
            .into_table(Alias::new("segment_changes"))
            .columns(
                [
                    "user_id",
                    "model_id",
                    "previous_cluster_id",
                    "cluster_id",
                    "confidence",
                    "outlier",
                    "reason",
                    "changed_at",
                ]
                .map(Alias::new),
            )
            .returning(Query::returning().columns([Alias::new("id"), Alias::new("user_id")]))
            .to_owned();
        let mut any_change = false;
        for (user_id, segment) in chunk {
            if segment.model_id != model_id {
                return Err(Error::Internal(
                    "a batch's live segments name two models".to_owned(),
                ));
            }
            upsert
                .values([
                    model_id.into(),
                    user_id.as_str().into(),
                    segment.cluster_id.into(),
                    segment.confidence.into(),
                    segment.outlier.into(),
                    now.into(),
                ])
                .map_err(|error| Error::Internal(format!("building a segment upsert: {error}")))?;
            let before = previous.get(user_id.as_str()).copied();
            if before != Some(segment.cluster_id) {
                any_change = true;
                changes
                    .values([
                        user_id.as_str().into(),
                        model_id.into(),
                        before.into(),
                        segment.cluster_id.into(),
                        segment.confidence.into(),
                        segment.outlier.into(),
                        REASON_LIVE.into(),
                        now.into(),
                    ])
                    .map_err(|error| {
                        Error::Internal(format!("building a segment change: {error}"))
                    })?;
            }
        }
        transaction
            .execute_raw(backend.build(&upsert))
            .await
            .map_err(database_error)?;
        if any_change {
            serialize_change_writers(transaction).await?;
            let recorded = transaction
                .query_all_raw(backend.build(&changes))
                .await
                .map_err(database_error)?;
            let mut change_ids = Vec::with_capacity(recorded.len());
            for row in recorded {
                let id: i64 = row.try_get("", "id").map_err(database_error)?;
                let user_id: String = row.try_get("", "user_id").map_err(database_error)?;
                change_ids.push((id, user_id));
            }
            changed += change_ids.len() as u64;
            if profile_updates {
                queue_live_profile_updates(transaction, backend, model_id, chunk, &change_ids, now)
                    .await?;
            }
        }
    }
    Ok(changed)
}

/// Makes transactions that record changes commit in the order of their ids: held from just
/// before the insert to the commit. A watcher reads changes by id, so on PostgreSQL, where
/// ids are drawn before commit, a change committed after a higher id was read would
/// otherwise be skipped. (SQLite has one writer at a time anyway.)
async fn serialize_change_writers<C: ConnectionTrait>(connection: &C) -> Result<()> {
    if connection.get_database_backend() == DbBackend::Postgres {
        connection
            .execute_unprepared("SELECT pg_advisory_xact_lock(7261001)")
            .await
            .map_err(database_error)?;
    }
    Ok(())
}

/// Each player's cluster in `model_id` before this batch.
async fn current_clusters(
    transaction: &DatabaseTransaction,
    backend: DbBackend,
    model_id: i64,
    users: &[&str],
) -> Result<BTreeMap<String, i64>> {
    let query = Query::select()
        .columns([
            player_segments::Column::UserId,
            player_segments::Column::ClusterId,
        ])
        .from(player_segments::Entity)
        .and_where(Expr::col(player_segments::Column::ModelId).eq(model_id))
        .and_where(Expr::col(player_segments::Column::UserId).is_in(users.iter().copied()))
        .to_owned();
    let mut clusters = BTreeMap::new();
    for row in transaction
        .query_all_raw(backend.build(&query))
        .await
        .map_err(database_error)?
    {
        let user_id: String = row.try_get("", "user_id").map_err(database_error)?;
        let cluster_id: i64 = row.try_get("", "cluster_id").map_err(database_error)?;
        clusters.insert(user_id, cluster_id);
    }
    Ok(clusters)
}

/// The Smartico profile updates of live changes, in the outbox of the same transaction.
async fn queue_live_profile_updates(
    transaction: &DatabaseTransaction,
    backend: DbBackend,
    model_id: i64,
    segments: &[(String, LiveSegment)],
    change_ids: &[(i64, String)],
    now: DateTime<Utc>,
) -> Result<()> {
    let cluster_of: BTreeMap<&str, i64> = segments
        .iter()
        .map(|(user_id, segment)| (user_id.as_str(), segment.cluster_id))
        .collect();
    let cluster_ids: Vec<i64> = cluster_of.values().copied().collect();
    let names = cluster_names(transaction, backend, &cluster_ids).await?;
    let players: Vec<SegmentChange> = change_ids
        .iter()
        .filter_map(|(change_id, user_id)| {
            let cluster_id = cluster_of.get(user_id.as_str())?;
            Some(SegmentChange {
                user_id: user_id.clone(),
                segment: names.get(cluster_id)?.clone(),
                change_id: Some(*change_id),
            })
        })
        .collect();
    for batch in players.chunks(PROFILE_BATCH_PLAYERS) {
        let Some(first) = batch.first().and_then(|change| change.change_id) else {
            continue;
        };
        let payload = serde_json::to_value(OutboxMessage::Profiles(ProfileUpdates {
            model_id,
            players: batch.to_vec(),
        }))
        .map_err(|error| Error::Internal(format!("encoding profile updates: {error}")))?;
        outbox::Entity::insert(outbox::ActiveModel {
            topic: Set(CAMPAIGN_DELIVERY_TOPIC.to_owned()),
            message_key: Set(format!("profiles-live-change-{first}")),
            payload: Set(payload),
            created_at: Set(now),
            available_at: Set(now),
            attempts: Set(0),
            published_at: Set(None),
            last_error: Set(None),
            ..Default::default()
        })
        .exec(transaction)
        .await
        .map_err(database_error)?;
    }
    Ok(())
}

async fn cluster_names(
    transaction: &DatabaseTransaction,
    backend: DbBackend,
    cluster_ids: &[i64],
) -> Result<BTreeMap<i64, String>> {
    let query = Query::select()
        .columns([clusters::Column::Id, clusters::Column::Name])
        .from(clusters::Entity)
        .and_where(Expr::col(clusters::Column::Id).is_in(cluster_ids.iter().copied()))
        .to_owned();
    let mut names = BTreeMap::new();
    for row in transaction
        .query_all_raw(backend.build(&query))
        .await
        .map_err(database_error)?
    {
        let id: i64 = row.try_get("", "id").map_err(database_error)?;
        let name: String = row.try_get("", "name").map_err(database_error)?;
        names.insert(id, name);
    }
    Ok(names)
}

/// Records the changes an activation of `next` makes (players whose segment has another
/// name than in `previous`, or who had none), in the activation's transaction; returns
/// them as Smartico profile changes, in user order.
pub(crate) async fn record_activation_changes<C: ConnectionTrait>(
    connection: &C,
    previous: Option<i64>,
    next: i64,
    now: DateTime<Utc>,
) -> Result<Vec<SegmentChange>> {
    // Both ids are integers from the database, so inlining them is safe and portable.
    let previous = previous.unwrap_or(0);
    let backend = connection.get_database_backend();
    let moved = format!(
        "FROM player_segments n \
         JOIN clusters c ON c.id = n.cluster_id \
         LEFT JOIN player_segments p ON p.user_id = n.user_id AND p.model_id = {previous} \
         LEFT JOIN clusters pc ON pc.id = p.cluster_id \
         WHERE n.model_id = {next} AND (pc.name IS NULL OR pc.name <> c.name)"
    );
    let placeholder = match backend {
        DbBackend::Postgres => "$1",
        _ => "?",
    };
    serialize_change_writers(connection).await?;
    let insert = format!(
        "INSERT INTO segment_changes \
         (user_id, model_id, previous_cluster_id, cluster_id, confidence, outlier, reason, changed_at) \
         SELECT n.user_id, n.model_id, p.cluster_id, n.cluster_id, n.confidence, n.outlier, \
         '{REASON_ACTIVATION}', {placeholder} {moved} ORDER BY n.user_id"
    );
    connection
        .execute_raw(Statement::from_sql_and_values(
            backend,
            insert,
            [now.into()],
        ))
        .await
        .map_err(database_error)?;
    let select =
        format!("SELECT n.user_id AS user_id, c.name AS segment {moved} ORDER BY n.user_id");
    let rows = connection
        .query_all_raw(Statement::from_string(backend, select))
        .await
        .map_err(database_error)?;
    rows.iter()
        .map(|row| {
            Ok(SegmentChange {
                user_id: row.try_get("", "user_id").map_err(database_error)?,
                segment: row.try_get("", "segment").map_err(database_error)?,
                change_id: None,
            })
        })
        .collect()
}
