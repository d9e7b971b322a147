//! A training run of the segmentation model, with its progress.

use sea_orm::entity::prelude::*;

/// A row of `training_runs`.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "training_runs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub status: String,
    pub algorithm: String,
    pub k: i32,
    /// The u64 seed stored bit for bit in a signed column.
    pub seed: i64,
    pub activate: bool,
    pub stage: String,
    pub percent: f64,
    pub started_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
    pub model_id: Option<i64>,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    pub created_by: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
