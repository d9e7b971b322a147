//! Operators' webhooks for segment changes. Each endpoint reads `segment_changes` on from
//! its own cursor; a claim (a lease on the row) lets one instance at a time deliver to it,
//! so batches arrive in order. Every state change after a claim is conditional on the
//! lease still being the claimer's: an instance that outlived its lease changes nothing.

use std::collections::HashMap;

use chrono::{DateTime, Duration, DurationRound, Utc};
use crmbet_core::{Error, Result};
use sea_orm::ActiveValue::{NotSet, Set};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, ExprTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use crate::database::Store;
use crate::entity::{webhook_dead_letters, webhook_endpoints};
use crate::failure::database_error;

/// Longest error text kept on an endpoint or a dead letter.
const MAX_ERROR_CHARS: usize = 1000;

/// A webhook to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhookEndpoint {
    pub url: String,
    pub description: String,
    pub secret: String,
    pub created_by: Option<String>,
}

/// A claimed endpoint: the row as claimed, and the lease that proves the claim.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookClaim {
    pub endpoint: webhook_endpoints::Model,
    pub lease_until: DateTime<Utc>,
}

/// A batch given up on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDeadLetter {
    pub first_change_id: i64,
    pub last_change_id: i64,
    pub body: String,
    pub attempts: i32,
    pub error: String,
}

/// Timestamps as both engines store them (microseconds), so a lease read back compares
/// equal to the one written.
fn stored_instant(instant: DateTime<Utc>) -> DateTime<Utc> {
    instant
        .duration_trunc(Duration::microseconds(1))
        .unwrap_or(instant)
}

fn clipped(error: &str) -> String {
    error.chars().take(MAX_ERROR_CHARS).collect()
}

impl Store {
    /// Registers an endpoint that receives the changes recorded from now on.
    pub async fn create_webhook_endpoint(
        &self,
        new: NewWebhookEndpoint,
    ) -> Result<webhook_endpoints::Model> {
        let now = stored_instant(Utc::now());
        let from = self.last_segment_change().await?;
        webhook_endpoints::ActiveModel {
            id: NotSet,
            url: Set(new.url),
            description: Set(new.description),
            secret: Set(new.secret),
            delivered_through: Set(from),
            changes_delivered: Set(0),
            failures: Set(0),
            pending_through: Set(None),
            next_attempt_at: Set(now),
            lease_until: Set(None),
            last_error: Set(None),
            created_by: Set(new.created_by),
            created_at: Set(now),
        }
        .insert(self.connection())
        .await
        .map_err(database_error)
    }

    /// Every registered endpoint, oldest first.
    pub async fn webhook_endpoints(&self) -> Result<Vec<webhook_endpoints::Model>> {
        webhook_endpoints::Entity::find()
            .order_by_asc(webhook_endpoints::Column::Id)
            .all(self.connection())
            .await
            .map_err(database_error)
    }

    /// One endpoint.
    pub async fn webhook_endpoint(&self, id: i64) -> Result<webhook_endpoints::Model> {
        webhook_endpoints::Entity::find_by_id(id)
            .one(self.connection())
            .await
            .map_err(database_error)?
            .ok_or_else(|| Error::not_found("webhook", id))
    }

    /// Removes an endpoint and its dead letters; a delivery in flight is not acknowledged.
    pub async fn delete_webhook_endpoint(&self, id: i64) -> Result<()> {
        let transaction = self.begin_write().await?;
        let deleted = webhook_endpoints::Entity::delete_by_id(id)
            .exec(&transaction)
            .await
            .map_err(database_error)?;
        if deleted.rows_affected == 0 {
            return Err(Error::not_found("webhook", id));
        }
        webhook_dead_letters::Entity::delete_many()
            .filter(webhook_dead_letters::Column::EndpointId.eq(id))
            .exec(&transaction)
            .await
            .map_err(database_error)?;
        transaction.commit().await.map_err(database_error)
    }

    /// Claims up to `limit` endpoints due at `now` that no live lease holds, each until
    /// `now + lease`. An endpoint another instance claimed in between is skipped.
    pub async fn claim_webhook_endpoints(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u64,
    ) -> Result<Vec<WebhookClaim>> {
        let now = stored_instant(now);
        let free = Condition::any()
            .add(webhook_endpoints::Column::LeaseUntil.is_null())
            .add(webhook_endpoints::Column::LeaseUntil.lt(now));
        let due = webhook_endpoints::Entity::find()
            .filter(webhook_endpoints::Column::NextAttemptAt.lte(now))
            .filter(free.clone())
            .order_by_asc(webhook_endpoints::Column::NextAttemptAt)
            .limit(limit)
            .all(self.connection())
            .await
            .map_err(database_error)?;
        let lease_until = stored_instant(now + lease);
        let mut claims = Vec::with_capacity(due.len());
        for endpoint in due {
            let updated = webhook_endpoints::Entity::update_many()
                .col_expr(
                    webhook_endpoints::Column::LeaseUntil,
                    Expr::value(Some(lease_until)),
                )
                .filter(webhook_endpoints::Column::Id.eq(endpoint.id))
                .filter(webhook_endpoints::Column::NextAttemptAt.lte(now))
                .filter(free.clone())
                // Still as read: another instance may have delivered and released it in
                // between, and this claim must not start from a cursor it moved past.
                .filter(webhook_endpoints::Column::DeliveredThrough.eq(endpoint.delivered_through))
                .filter(webhook_endpoints::Column::Failures.eq(endpoint.failures))
                .exec(self.connection())
                .await
                .map_err(database_error)?;
            if updated.rows_affected == 1 {
                claims.push(WebhookClaim {
                    endpoint,
                    lease_until,
                });
            }
        }
        Ok(claims)
    }

    /// The endpoint acknowledged the changes through `through` (`count` of them): its
    /// cursor moves on and its failures clear. False when the claim had lapsed.
    pub async fn webhook_delivered(
        &self,
        claim: &WebhookClaim,
        through: i64,
        count: i64,
    ) -> Result<bool> {
        let update = moved_past(through, None).col_expr(
            webhook_endpoints::Column::ChangesDelivered,
            Expr::col(webhook_endpoints::Column::ChangesDelivered).add(count),
        );
        finish_claim(self.connection(), claim, update).await
    }

    /// The delivery of the batch through `pending_through` failed; the endpoint tries the
    /// same batch again at `retry_at`.
    pub async fn webhook_failed(
        &self,
        claim: &WebhookClaim,
        pending_through: i64,
        failures: i32,
        retry_at: DateTime<Utc>,
        error: &str,
    ) -> Result<bool> {
        let update = webhook_endpoints::Entity::update_many()
            .col_expr(webhook_endpoints::Column::Failures, Expr::value(failures))
            .col_expr(
                webhook_endpoints::Column::PendingThrough,
                Expr::value(Some(pending_through)),
            )
            .col_expr(
                webhook_endpoints::Column::NextAttemptAt,
                Expr::value(stored_instant(retry_at)),
            )
            .col_expr(
                webhook_endpoints::Column::LastError,
                Expr::value(Some(clipped(error))),
            );
        finish_claim(self.connection(), claim, update).await
    }

    /// The batch failed for the last time: it is kept as a dead letter and the endpoint's
    /// cursor moves past it, in one transaction.
    pub async fn webhook_dead_lettered(
        &self,
        claim: &WebhookClaim,
        letter: NewDeadLetter,
    ) -> Result<bool> {
        let transaction = self.begin_write().await?;
        let update = moved_past(letter.last_change_id, Some(clipped(&letter.error)));
        if !finish_claim(&transaction, claim, update).await? {
            return Ok(false);
        }
        webhook_dead_letters::ActiveModel {
            id: NotSet,
            endpoint_id: Set(claim.endpoint.id),
            first_change_id: Set(letter.first_change_id),
            last_change_id: Set(letter.last_change_id),
            body: Set(letter.body),
            attempts: Set(letter.attempts),
            last_error: Set(clipped(&letter.error)),
            failed_at: Set(stored_instant(Utc::now())),
        }
        .insert(&transaction)
        .await
        .map_err(database_error)?;
        transaction.commit().await.map_err(database_error)?;
        Ok(true)
    }

    /// Gives a claim back without a delivery (nothing new to send).
    pub async fn release_webhook(&self, claim: &WebhookClaim) -> Result<()> {
        let update = webhook_endpoints::Entity::update_many();
        finish_claim(self.connection(), claim, update).await?;
        Ok(())
    }

    /// An endpoint's dead letters, oldest first.
    pub async fn webhook_dead_letters(
        &self,
        endpoint_id: i64,
    ) -> Result<Vec<webhook_dead_letters::Model>> {
        self.webhook_endpoint(endpoint_id).await?;
        webhook_dead_letters::Entity::find()
            .filter(webhook_dead_letters::Column::EndpointId.eq(endpoint_id))
            .order_by_asc(webhook_dead_letters::Column::Id)
            .all(self.connection())
            .await
            .map_err(database_error)
    }

    /// Dead letters per endpoint (endpoints without any are absent).
    pub async fn webhook_dead_letter_counts(&self) -> Result<HashMap<i64, i64>> {
        let rows: Vec<(i64, i64)> = webhook_dead_letters::Entity::find()
            .select_only()
            .column(webhook_dead_letters::Column::EndpointId)
            .column_as(webhook_dead_letters::Column::Id.count(), "dead_letters")
            .group_by(webhook_dead_letters::Column::EndpointId)
            .into_tuple()
            .all(self.connection())
            .await
            .map_err(database_error)?;
        Ok(rows.into_iter().collect())
    }
}

/// The cursor moved past a batch (acknowledged, or given up on with `error`): the next
/// batch starts with no failures.
fn moved_past(
    through: i64,
    error: Option<String>,
) -> sea_orm::UpdateMany<webhook_endpoints::Entity> {
    webhook_endpoints::Entity::update_many()
        .col_expr(
            webhook_endpoints::Column::DeliveredThrough,
            Expr::value(through),
        )
        .col_expr(webhook_endpoints::Column::Failures, Expr::value(0))
        .col_expr(
            webhook_endpoints::Column::PendingThrough,
            Expr::value(Option::<i64>::None),
        )
        .col_expr(webhook_endpoints::Column::LastError, Expr::value(error))
}

/// Applies `update` and gives the lease back, if `claim`'s lease is still the one on the
/// endpoint; false when it had lapsed (and nothing changed).
async fn finish_claim(
    connection: &impl ConnectionTrait,
    claim: &WebhookClaim,
    update: sea_orm::UpdateMany<webhook_endpoints::Entity>,
) -> Result<bool> {
    let held = Condition::all()
        .add(webhook_endpoints::Column::Id.eq(claim.endpoint.id))
        .add(webhook_endpoints::Column::LeaseUntil.eq(claim.lease_until));
    let updated = update
        .col_expr(
            webhook_endpoints::Column::LeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(held)
        .exec(connection)
        .await
        .map_err(database_error)?;
    Ok(updated.rows_affected == 1)
}
