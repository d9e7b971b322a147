//! A trained segmentation model, versioned; `active_model` says which one serves.

use sea_orm::entity::prelude::*;

/// A row of `models`.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "models")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub version: i32,
    pub algorithm: String,
    pub k: i32,
    pub parameters: Json,
    pub transform: Json,
    pub centroids: Json,
    pub metrics: Json,
    pub feature_names: Json,
    pub etl_run_id: Option<i64>,
    #[sea_orm(column_type = "Text")]
    pub selection_reason: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
