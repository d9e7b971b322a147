//! A batch of segment changes an operator's webhook refused too many times, kept as signed.

use sea_orm::entity::prelude::*;

/// A row of `webhook_dead_letters`.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_dead_letters")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub endpoint_id: i64,
    pub first_change_id: i64,
    pub last_change_id: i64,
    /// The JSON body as it was sent.
    #[sea_orm(column_type = "Text")]
    pub body: String,
    pub attempts: i32,
    #[sea_orm(column_type = "Text")]
    pub last_error: String,
    pub failed_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
