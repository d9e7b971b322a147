//! A segment of players found by a model, with its name and profile.

use sea_orm::entity::prelude::*;

/// A row of `clusters`.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "clusters")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub model_id: i64,
    pub label: i32,
    pub name: String,
    #[sea_orm(column_type = "Text")]
    pub description: String,
    pub suggested_campaign: String,
    pub size: i64,
    pub share: f64,
    /// `[{feature, group_mean, population_mean, z_score}]`, strongest first.
    pub profile: Json,
    /// The cluster's centre in the model's scaled feature space.
    pub centroid: Json,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
