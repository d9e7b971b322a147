//! Campaigns: creating them (idempotent on the caller's request id), reading, cancelling,
//! the audience a launch starts from, and the launch itself, which freezes the targets and
//! writes the outbox messages in one transaction.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use crmbet_core::{CampaignId, Error, ModelId, Result};
use sea_orm::sea_query::{Expr, ExprTrait, Func, JoinType, Order, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait,
    FromQueryResult, QueryFilter, QueryOrder, QuerySelect, SqlErr,
};
use serde_json::Value as Json;

use crate::database::Store;
use crate::entity::{
    audit_log, campaign_targets, campaigns, outbox, player_features, player_segments, players,
};
use crate::failure::database_error;

/// Rows per multi-row INSERT: far below SQLite's 32,766 bound variables.
const INSERT_BATCH_ROWS: usize = 1000;

/// A campaign to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCampaign {
    pub name: String,
    pub description: String,
    pub campaign_type: String,
    pub channel: String,
    pub cluster_ids: Vec<i64>,
    pub filter: Json,
    pub holdout_share: f64,
    pub message_template: String,
    pub request_id: Option<String>,
    pub model_id: ModelId,
    pub created_by: Option<String>,
    pub start_at: Option<DateTime<Utc>>,
    /// `launch` or `on_entry`.
    pub trigger: String,
}

/// A member of a campaign's clusters, with what the target filter looks at.
#[derive(Debug, Clone, PartialEq, FromQueryResult)]
pub struct AudienceCandidate {
    pub user_id: String,
    pub cluster_id: i64,
    pub country: Option<String>,
    pub last_active_at: Option<DateTime<Utc>>,
    pub monetary: Option<f64>,
}

/// How much of each audience candidate to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudienceDetail {
    /// Only the player and their cluster: nothing to filter on.
    Membership,
    /// Also country, last activity and monetary value, for a target filter.
    FilterAttributes,
}

/// A player frozen into a launch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchTarget {
    pub user_id: String,
    pub cluster_id: i64,
    /// `treatment` or `control`.
    pub group_name: &'static str,
}

/// One outbox message to write with a launch.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOutboxMessage {
    pub topic: String,
    /// Unique per message, so a message is recognisable downstream.
    pub message_key: String,
    pub payload: Json,
}

/// Everything a launch commits at once.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchRecord {
    pub campaign_id: CampaignId,
    pub launched_at: DateTime<Utc>,
    pub targets: Vec<LaunchTarget>,
    pub messages: Vec<NewOutboxMessage>,
    /// Counts of excluded players by reason.
    pub exclusions: Json,
    /// The audit row of the launch, with the exclusions in its details.
    pub audit_actor: String,
    pub audit_details: Json,
    /// For an on-entry campaign: the segment change it enrols from (the newest at launch).
    pub entry_cursor: Option<i64>,
}

/// Players an on-entry campaign enrols from the segment changes after `from_cursor`
/// through `through_cursor`.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryEnrollment {
    pub campaign_id: CampaignId,
    /// The campaign's cursor as read (`None` for one launched without one).
    pub from_cursor: Option<i64>,
    pub through_cursor: i64,
    pub enrolled_at: DateTime<Utc>,
    pub targets: Vec<LaunchTarget>,
    pub messages: Vec<NewOutboxMessage>,
}

/// What a launch did.
#[derive(Debug, Clone, PartialEq)]
pub enum LaunchOutcome {
    /// This call launched the campaign.
    Launched(campaigns::Model),
    /// The campaign had been launched before; nothing was written.
    AlreadyLaunched(campaigns::Model),
}

impl Store {
    /// Creates a campaign; with a request id that was used before, returns the campaign
    /// that id created (and `false`) instead of a second one.
    pub async fn create_campaign(&self, campaign: NewCampaign) -> Result<(campaigns::Model, bool)> {
        if let Some(request_id) = &campaign.request_id
            && let Some(existing) = self.campaign_by_request_id(request_id).await?
        {
            return Ok((existing, false));
        }
        let status = if campaign.start_at.is_some() {
            "scheduled"
        } else {
            "draft"
        };
        let cluster_ids = Json::from(campaign.cluster_ids.clone());
        let inserted = campaigns::Entity::insert(campaigns::ActiveModel {
            name: Set(campaign.name),
            description: Set(campaign.description),
            status: Set(status.to_owned()),
            campaign_type: Set(campaign.campaign_type),
            channel: Set(campaign.channel),
            cluster_ids: Set(cluster_ids),
            filter: Set(campaign.filter),
            holdout_share: Set(campaign.holdout_share),
            message_template: Set(campaign.message_template),
            request_id: Set(campaign.request_id.clone()),
            model_id: Set(Some(campaign.model_id.0)),
            created_by: Set(campaign.created_by),
            created_at: Set(Utc::now()),
            launched_at: Set(None),
            treatment_count: Set(0),
            control_count: Set(0),
            start_at: Set(campaign.start_at),
            cancelled_at: Set(None),
            exclusions: Set(None),
            trigger: Set(campaign.trigger),
            entry_cursor: Set(None),
            ..Default::default()
        })
        .exec(self.connection())
        .await;
        match inserted {
            Ok(inserted) => Ok((
                self.campaign(CampaignId(inserted.last_insert_id)).await?,
                true,
            )),
            Err(error) => {
                // Two creates with one request id at once: the loser returns the winner's.
                if let (Some(SqlErr::UniqueConstraintViolation(_)), Some(request_id)) =
                    (error.sql_err(), &campaign.request_id)
                    && let Some(existing) = self.campaign_by_request_id(request_id).await?
                {
                    return Ok((existing, false));
                }
                Err(database_error(error))
            }
        }
    }

    async fn campaign_by_request_id(&self, request_id: &str) -> Result<Option<campaigns::Model>> {
        campaigns::Entity::find()
            .filter(campaigns::Column::RequestId.eq(request_id))
            .one(self.connection())
            .await
            .map_err(database_error)
    }

    /// A campaign by id.
    pub async fn campaign(&self, campaign_id: CampaignId) -> Result<campaigns::Model> {
        campaigns::Entity::find_by_id(campaign_id.0)
            .one(self.connection())
            .await
            .map_err(database_error)?
            .ok_or_else(|| Error::not_found("campaign", campaign_id))
    }

    /// Campaigns newest first, in `status` when given, with ids below `before` when given.
    pub async fn list_campaigns(
        &self,
        status: Option<&str>,
        before: Option<i64>,
        limit: u64,
    ) -> Result<Vec<campaigns::Model>> {
        let mut query = campaigns::Entity::find().order_by_desc(campaigns::Column::Id);
        if let Some(status) = status {
            query = query.filter(campaigns::Column::Status.eq(status));
        }
        if let Some(before) = before {
            query = query.filter(campaigns::Column::Id.lt(before));
        }
        query
            .limit(limit)
            .all(self.connection())
            .await
            .map_err(database_error)
    }

    /// Scheduled campaigns whose start time has come, oldest first.
    pub async fn due_campaigns(&self, now: DateTime<Utc>) -> Result<Vec<campaigns::Model>> {
        campaigns::Entity::find()
            .filter(campaigns::Column::Status.eq("scheduled"))
            .filter(campaigns::Column::StartAt.lte(now))
            .order_by_asc(campaigns::Column::Id)
            .all(self.connection())
            .await
            .map_err(database_error)
    }

    /// Cancels a campaign that is not cancelled yet; messages of a launched campaign that
    /// were not delivered yet are then dropped by the dispatcher. Returns the campaign.
    pub async fn cancel_campaign(&self, campaign_id: CampaignId) -> Result<campaigns::Model> {
        let campaign = self.campaign(campaign_id).await?;
        if campaign.status == "cancelled" {
            return Ok(campaign);
        }
        campaigns::Entity::update_many()
            .col_expr(campaigns::Column::Status, Expr::value("cancelled"))
            .col_expr(campaigns::Column::CancelledAt, Expr::value(Utc::now()))
            .filter(campaigns::Column::Id.eq(campaign_id.0))
            .filter(campaigns::Column::Status.ne("cancelled"))
            .exec(self.connection())
            .await
            .map_err(database_error)?;
        self.campaign(campaign_id).await
    }

    /// The members of `cluster_ids` in `model_id`, by user id. With
    /// [`AudienceDetail::FilterAttributes`] each comes with their country, last activity
    /// and monetary value (from their latest ETL run); with [`AudienceDetail::Membership`]
    /// (no target filter to apply) those are left empty and the joins are skipped.
    pub async fn audience_candidates(
        &self,
        model_id: ModelId,
        cluster_ids: &[i64],
        detail: AudienceDetail,
        only_users: Option<&[String]>,
    ) -> Result<Vec<AudienceCandidate>> {
        let mut query = Query::select();
        if let Some(users) = only_users {
            query.and_where(
                Expr::col((player_segments::Entity, player_segments::Column::UserId))
                    .is_in(users.iter().map(String::as_str)),
            );
        }
        query
            .column((player_segments::Entity, player_segments::Column::UserId))
            .column((player_segments::Entity, player_segments::Column::ClusterId))
            .from(player_segments::Entity)
            .and_where(
                Expr::col((player_segments::Entity, player_segments::Column::ModelId))
                    .eq(model_id.0),
            )
            .and_where(
                Expr::col((player_segments::Entity, player_segments::Column::ClusterId))
                    .is_in(cluster_ids.iter().copied()),
            )
            .order_by(
                (player_segments::Entity, player_segments::Column::UserId),
                Order::Asc,
            );
        if detail == AudienceDetail::Membership {
            let statement = self.backend().build(&query);
            let rows = self
                .connection()
                .query_all_raw(statement)
                .await
                .map_err(database_error)?;
            return rows
                .iter()
                .map(|row| {
                    Ok(AudienceCandidate {
                        user_id: row.try_get("", "user_id").map_err(database_error)?,
                        cluster_id: row.try_get("", "cluster_id").map_err(database_error)?,
                        country: None,
                        last_active_at: None,
                        monetary: None,
                    })
                })
                .collect();
        }
        query
            .column((players::Entity, players::Column::Country))
            .column((players::Entity, players::Column::LastActiveAt))
            .column((player_features::Entity, player_features::Column::Monetary))
            .join(
                JoinType::LeftJoin,
                players::Entity,
                Expr::col((players::Entity, players::Column::UserId))
                    .equals((player_segments::Entity, player_segments::Column::UserId)),
            )
            .join(
                JoinType::LeftJoin,
                player_features::Entity,
                crate::players::latest_features_of_player(),
            );
        let statement = self.backend().build(&query);
        AudienceCandidate::find_by_statement(statement)
            .all(self.connection())
            .await
            .map_err(database_error)
    }

    /// How many campaigns targeted each player in their treatment group since `since` (at
    /// a launch, or enrolling them on entry; players with none are absent), for the
    /// frequency cap.
    /// Only `users` are counted when given.
    pub async fn recent_contacts(
        &self,
        since: DateTime<Utc>,
        only_users: Option<&[String]>,
    ) -> Result<HashMap<String, i64>> {
        let mut query = Query::select();
        if let Some(users) = only_users {
            query.and_where(
                Expr::col((campaign_targets::Entity, campaign_targets::Column::UserId))
                    .is_in(users.iter().map(String::as_str)),
            );
        }
        query
            .column((campaign_targets::Entity, campaign_targets::Column::UserId))
            .expr_as(
                Func::count(Expr::col((
                    campaign_targets::Entity,
                    campaign_targets::Column::CampaignId,
                ))),
                "contacts",
            )
            .from(campaign_targets::Entity)
            .and_where(
                Expr::col((
                    campaign_targets::Entity,
                    campaign_targets::Column::GroupName,
                ))
                .eq("treatment"),
            )
            // When the player was targeted: a launch's time, or an on-entry enrolment's.
            .and_where(
                Expr::col((
                    campaign_targets::Entity,
                    campaign_targets::Column::CreatedAt,
                ))
                .gte(since),
            )
            .group_by_col((campaign_targets::Entity, campaign_targets::Column::UserId));
        let statement = self.backend().build(&query);
        let rows = self
            .connection()
            .query_all_raw(statement)
            .await
            .map_err(database_error)?;
        rows.iter()
            .map(|row| {
                let user_id: String = row.try_get("", "user_id").map_err(database_error)?;
                let contacts: i64 = row.try_get("", "contacts").map_err(database_error)?;
                Ok((user_id, contacts))
            })
            .collect()
    }

    /// Launches a campaign in one transaction: marks it launched with its counts, freezes
    /// its targets, writes its outbox messages and the audit row. A campaign launched
    /// before is returned as it is (nothing written); a cancelled one is refused.
    pub async fn launch_campaign(&self, record: LaunchRecord) -> Result<LaunchOutcome> {
        let transaction = self.begin_write().await?;
        let campaign = campaigns::Entity::find_by_id(record.campaign_id.0)
            .one(&transaction)
            .await
            .map_err(database_error)?
            .ok_or_else(|| Error::not_found("campaign", record.campaign_id))?;
        match campaign.status.as_str() {
            "draft" | "scheduled" => {}
            "cancelled" => {
                return Err(Error::FailedPrecondition(format!(
                    "campaign {} was cancelled; create a new campaign instead",
                    record.campaign_id
                )));
            }
            _ => return Ok(LaunchOutcome::AlreadyLaunched(campaign)),
        }
        let count = |group: &str| {
            record
                .targets
                .iter()
                .filter(|target| target.group_name == group)
                .count() as i64
        };
        campaigns::Entity::update_many()
            .col_expr(campaigns::Column::Status, Expr::value("launched"))
            .col_expr(
                campaigns::Column::LaunchedAt,
                Expr::value(record.launched_at),
            )
            .col_expr(
                campaigns::Column::TreatmentCount,
                Expr::value(count("treatment")),
            )
            .col_expr(
                campaigns::Column::ControlCount,
                Expr::value(count("control")),
            )
            .col_expr(
                campaigns::Column::Exclusions,
                Expr::value(record.exclusions.clone()),
            )
            .col_expr(
                campaigns::Column::EntryCursor,
                Expr::value(record.entry_cursor),
            )
            .filter(campaigns::Column::Id.eq(record.campaign_id.0))
            .exec(&transaction)
            .await
            .map_err(database_error)?;
        insert_targets(
            &transaction,
            self.backend(),
            record.campaign_id,
            record.launched_at,
            &record.targets,
        )
        .await?;
        insert_outbox(&transaction, record.launched_at, &record.messages).await?;
        audit_log::Entity::insert(audit_log::ActiveModel {
            actor: Set(record.audit_actor.clone()),
            role: Set(None),
            action: Set("campaign.launch".to_owned()),
            target: Set(Some(format!("campaign {}", record.campaign_id))),
            client_ip: Set(None),
            request_id: Set(None),
            details: Set(Some(record.audit_details.clone())),
            occurred_at: Set(record.launched_at),
            ..Default::default()
        })
        .exec(&transaction)
        .await
        .map_err(database_error)?;
        transaction.commit().await.map_err(database_error)?;
        Ok(LaunchOutcome::Launched(
            self.campaign(record.campaign_id).await?,
        ))
    }

    /// Launched campaigns that enrol players on entry, oldest first.
    pub async fn on_entry_campaigns(&self) -> Result<Vec<campaigns::Model>> {
        campaigns::Entity::find()
            .filter(campaigns::Column::Status.eq("launched"))
            .filter(campaigns::Column::Trigger.eq("on_entry"))
            .order_by_asc(campaigns::Column::Id)
            .all(self.connection())
            .await
            .map_err(database_error)
    }

    /// Which of `users` are targets of the campaign already.
    pub async fn existing_targets(
        &self,
        campaign_id: CampaignId,
        users: &[String],
    ) -> Result<Vec<String>> {
        let mut existing = Vec::new();
        for chunk in users.chunks(INSERT_BATCH_ROWS) {
            let rows: Vec<String> = campaign_targets::Entity::find()
                .select_only()
                .column(campaign_targets::Column::UserId)
                .filter(campaign_targets::Column::CampaignId.eq(campaign_id.0))
                .filter(campaign_targets::Column::UserId.is_in(chunk.iter().map(String::as_str)))
                .into_tuple()
                .all(self.connection())
                .await
                .map_err(database_error)?;
            existing.extend(rows);
        }
        Ok(existing)
    }

    /// Commits one enrolment of an on-entry campaign: its targets, their outbox messages,
    /// the counts and the moved cursor, in one transaction, only if the campaign is still
    /// launched and its cursor still at `from_cursor` (another instance enrolling the same
    /// changes makes this one a no-op). True when it committed.
    pub async fn enroll_entrants(&self, enrollment: EntryEnrollment) -> Result<bool> {
        let transaction = self.begin_write().await?;
        let count = |group: &str| {
            enrollment
                .targets
                .iter()
                .filter(|target| target.group_name == group)
                .count() as i64
        };
        let updated = campaigns::Entity::update_many()
            .col_expr(
                campaigns::Column::EntryCursor,
                Expr::value(Some(enrollment.through_cursor)),
            )
            .col_expr(
                campaigns::Column::TreatmentCount,
                Expr::col(campaigns::Column::TreatmentCount).add(count("treatment")),
            )
            .col_expr(
                campaigns::Column::ControlCount,
                Expr::col(campaigns::Column::ControlCount).add(count("control")),
            )
            .filter(campaigns::Column::Id.eq(enrollment.campaign_id.0))
            .filter(campaigns::Column::Status.eq("launched"))
            .filter(match enrollment.from_cursor {
                Some(cursor) => campaigns::Column::EntryCursor.eq(cursor),
                None => campaigns::Column::EntryCursor.is_null(),
            })
            .exec(&transaction)
            .await
            .map_err(database_error)?;
        if updated.rows_affected != 1 {
            return Ok(false);
        }
        insert_targets(
            &transaction,
            self.backend(),
            enrollment.campaign_id,
            enrollment.enrolled_at,
            &enrollment.targets,
        )
        .await?;
        insert_outbox(&transaction, enrollment.enrolled_at, &enrollment.messages).await?;
        transaction.commit().await.map_err(database_error)?;
        Ok(true)
    }

    /// Every target of a campaign, by user id.
    pub async fn campaign_targets(
        &self,
        campaign_id: CampaignId,
    ) -> Result<Vec<campaign_targets::Model>> {
        campaign_targets::Entity::find()
            .filter(campaign_targets::Column::CampaignId.eq(campaign_id.0))
            .order_by_asc(campaign_targets::Column::UserId)
            .all(self.connection())
            .await
            .map_err(database_error)
    }

    /// One target of a campaign, if the player is one.
    pub async fn campaign_target(
        &self,
        campaign_id: CampaignId,
        user_id: &str,
    ) -> Result<Option<campaign_targets::Model>> {
        campaign_targets::Entity::find_by_id((campaign_id.0, user_id.to_owned()))
            .one(self.connection())
            .await
            .map_err(database_error)
    }

    /// Marks targets of a campaign sent (Smartico accepted their events).
    pub async fn mark_targets_sent(
        &self,
        campaign_id: CampaignId,
        user_ids: &[String],
    ) -> Result<()> {
        for chunk in user_ids.chunks(INSERT_BATCH_ROWS) {
            campaign_targets::Entity::update_many()
                .col_expr(campaign_targets::Column::Status, Expr::value("sent"))
                .col_expr(campaign_targets::Column::SentAt, Expr::value(Utc::now()))
                .filter(campaign_targets::Column::CampaignId.eq(campaign_id.0))
                .filter(campaign_targets::Column::UserId.is_in(chunk.iter().cloned()))
                .filter(campaign_targets::Column::Status.eq("pending"))
                .exec(self.connection())
                .await
                .map_err(database_error)?;
        }
        Ok(())
    }
}

/// Freezes `targets` into a campaign: treatment players wait for delivery, control players
/// are held back. Plain multi-row INSERTs: at 200k targets, building an ActiveModel per row
/// costs more than the database's work.
async fn insert_targets(
    transaction: &DatabaseTransaction,
    backend: DbBackend,
    campaign_id: CampaignId,
    at: DateTime<Utc>,
    targets: &[LaunchTarget],
) -> Result<()> {
    for chunk in targets.chunks(INSERT_BATCH_ROWS) {
        let mut insert = Query::insert();
        insert.into_table(campaign_targets::Entity).columns([
            campaign_targets::Column::CampaignId,
            campaign_targets::Column::UserId,
            campaign_targets::Column::GroupName,
            campaign_targets::Column::ClusterId,
            campaign_targets::Column::Status,
            campaign_targets::Column::CreatedAt,
        ]);
        for target in chunk {
            let status = if target.group_name == "treatment" {
                "pending"
            } else {
                "held_back"
            };
            insert
                .values([
                    campaign_id.0.into(),
                    target.user_id.as_str().into(),
                    target.group_name.into(),
                    target.cluster_id.into(),
                    status.into(),
                    at.into(),
                ])
                .map_err(|error| Error::Internal(format!("building a target insert: {error}")))?;
        }
        transaction
            .execute_raw(backend.build(&insert))
            .await
            .map_err(database_error)?;
    }
    Ok(())
}

/// Queues `messages` in the outbox, due at once.
async fn insert_outbox(
    transaction: &DatabaseTransaction,
    at: DateTime<Utc>,
    messages: &[NewOutboxMessage],
) -> Result<()> {
    for chunk in messages.chunks(INSERT_BATCH_ROWS) {
        outbox::Entity::insert_many(chunk.iter().map(|message| outbox::ActiveModel {
            topic: Set(message.topic.clone()),
            message_key: Set(message.message_key.clone()),
            payload: Set(message.payload.clone()),
            created_at: Set(at),
            available_at: Set(at),
            attempts: Set(0),
            published_at: Set(None),
            last_error: Set(None),
            ..Default::default()
        }))
        .exec(transaction)
        .await
        .map_err(database_error)?;
    }
    Ok(())
}
