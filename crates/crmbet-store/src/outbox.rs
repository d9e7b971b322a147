//! The transactional outbox: messages committed with the change that caused them, claimed
//! by a relay with a lease (so a process killed mid-delivery leaves them to be claimed
//! again) and marked published once their receiver confirmed them.

use chrono::{DateTime, Duration, Utc};
use crmbet_core::Result;
use sea_orm::ExprTrait;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::database::Store;
use crate::entity::outbox;
use crate::failure::database_error;

/// Longest error text kept on a message.
const MAX_ERROR_CHARS: usize = 1000;

impl Store {
    /// Claims up to `limit` unpublished messages of `topic` that are due at `now`, oldest
    /// first: each is hidden from other claims until `now + lease` and its attempt counted.
    /// A message another claimer took in between is skipped.
    pub async fn claim_outbox(
        &self,
        topic: &str,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u64,
    ) -> Result<Vec<outbox::Model>> {
        let due = outbox::Entity::find()
            .filter(outbox::Column::Topic.eq(topic))
            .filter(outbox::Column::PublishedAt.is_null())
            .filter(outbox::Column::AvailableAt.lte(now))
            .order_by_asc(outbox::Column::Id)
            .limit(limit)
            .all(self.connection())
            .await
            .map_err(database_error)?;
        let mut claimed = Vec::with_capacity(due.len());
        for message in due {
            let until = now + lease;
            let updated = outbox::Entity::update_many()
                .col_expr(outbox::Column::AvailableAt, Expr::value(until))
                .col_expr(
                    outbox::Column::Attempts,
                    Expr::col(outbox::Column::Attempts).add(1),
                )
                .filter(outbox::Column::Id.eq(message.id))
                .filter(outbox::Column::AvailableAt.eq(message.available_at))
                .filter(outbox::Column::PublishedAt.is_null())
                .exec(self.connection())
                .await
                .map_err(database_error)?;
            if updated.rows_affected == 1 {
                claimed.push(outbox::Model {
                    available_at: until,
                    attempts: message.attempts + 1,
                    ..message
                });
            }
        }
        Ok(claimed)
    }

    /// Marks a message published: its receiver confirmed it.
    pub async fn mark_outbox_published(&self, message_id: i64) -> Result<()> {
        outbox::Entity::update_many()
            .col_expr(outbox::Column::PublishedAt, Expr::value(Utc::now()))
            .col_expr(
                outbox::Column::LastError,
                Expr::value(Option::<String>::None),
            )
            .filter(outbox::Column::Id.eq(message_id))
            .exec(self.connection())
            .await
            .map_err(database_error)?;
        Ok(())
    }

    /// Puts a claimed message back, due again at `available_at`, with the error that
    /// stopped it.
    pub async fn retry_outbox(
        &self,
        message_id: i64,
        available_at: DateTime<Utc>,
        error: &str,
    ) -> Result<()> {
        let error: String = error.chars().take(MAX_ERROR_CHARS).collect();
        outbox::Entity::update_many()
            .col_expr(outbox::Column::AvailableAt, Expr::value(available_at))
            .col_expr(outbox::Column::LastError, Expr::value(Some(error)))
            .filter(outbox::Column::Id.eq(message_id))
            .filter(outbox::Column::PublishedAt.is_null())
            .exec(self.connection())
            .await
            .map_err(database_error)?;
        Ok(())
    }

    /// Unpublished messages of `topic`, due or not.
    pub async fn pending_outbox(&self, topic: &str) -> Result<u64> {
        outbox::Entity::find()
            .filter(outbox::Column::Topic.eq(topic))
            .filter(outbox::Column::PublishedAt.is_null())
            .count(self.connection())
            .await
            .map_err(database_error)
    }
}
