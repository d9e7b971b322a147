//! An operator's webhook for segment changes, with its cursor and retry state.

use sea_orm::entity::prelude::*;

/// A row of `webhook_endpoints`.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_endpoints")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(column_type = "Text")]
    pub url: String,
    pub description: String,
    /// The HMAC key of the signatures; shown once, when the webhook is registered.
    pub secret: String,
    /// The last segment change the endpoint acknowledged (or that was dead-lettered).
    pub delivered_through: i64,
    pub changes_delivered: i64,
    /// Failed attempts at the batch after `delivered_through`.
    pub failures: i32,
    /// The last change of the batch being retried: a retry sends exactly that batch.
    pub pending_through: Option<i64>,
    pub next_attempt_at: DateTimeUtc,
    /// While set and in the future, one instance is delivering to the endpoint.
    pub lease_until: Option<DateTimeUtc>,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    pub created_by: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
