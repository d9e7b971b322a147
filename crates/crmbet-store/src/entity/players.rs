//! A player known to crmbet, keyed by the operator's user id.

use sea_orm::entity::prelude::*;

/// A row of `players`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "players")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    pub country: Option<String>,
    pub first_seen_at: Option<DateTimeUtc>,
    pub last_active_at: Option<DateTimeUtc>,
    pub latest_etl_run_id: Option<i64>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
