//! A player's cluster in one model.

use sea_orm::entity::prelude::*;

/// A row of `player_segments`.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "player_segments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub model_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    pub cluster_id: i64,
    pub confidence: f64,
    pub outlier: bool,
    pub assigned_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
