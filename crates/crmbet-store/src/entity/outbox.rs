//! A message committed with the change that caused it, waiting for the relay to publish it.

use sea_orm::entity::prelude::*;

/// A row of `outbox`.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub topic: String,
    pub message_key: String,
    pub payload: Json,
    pub created_at: DateTimeUtc,
    /// When the relay may next try to publish the message.
    pub available_at: DateTimeUtc,
    pub attempts: i32,
    pub published_at: Option<DateTimeUtc>,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
