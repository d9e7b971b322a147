//! The model that serves, one row per slot, so exactly one is active by construction.

use sea_orm::entity::prelude::*;

/// The slot of the player segmentation model.
pub const SEGMENTATION_SLOT: &str = "segmentation";

/// A row of `active_model`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "active_model")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub slot: String,
    pub model_id: i64,
    pub activated_at: DateTimeUtc,
    pub activated_by: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
