//! A marketing campaign on one or more clusters.

use sea_orm::entity::prelude::*;

/// A row of `campaigns`.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "campaigns")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    #[sea_orm(column_type = "Text")]
    pub description: String,
    /// `draft`, `scheduled`, `launched`, `completed` or `cancelled`.
    pub status: String,
    pub campaign_type: String,
    pub channel: String,
    /// The targeted clusters, a JSON array of cluster ids.
    pub cluster_ids: Json,
    pub filter: Json,
    pub holdout_share: f64,
    #[sea_orm(column_type = "Text")]
    pub message_template: String,
    /// The caller's idempotency key: a repeated create returns the same campaign.
    #[sea_orm(unique)]
    pub request_id: Option<String>,
    /// The model active when the campaign was created.
    pub model_id: Option<i64>,
    pub created_by: Option<String>,
    pub created_at: DateTimeUtc,
    pub launched_at: Option<DateTimeUtc>,
    pub treatment_count: i64,
    pub control_count: i64,
    /// When a scheduled campaign launches itself; `None` for a launch by hand.
    pub start_at: Option<DateTimeUtc>,
    pub cancelled_at: Option<DateTimeUtc>,
    /// Players the launch left out, by reason (a JSON object of counts).
    pub exclusions: Option<Json>,
    /// `launch` (the clusters' members at launch) or `on_entry` (each player as they enter
    /// one of the clusters after the launch).
    pub trigger: String,
    /// The last segment change a launched on-entry campaign has enrolled from.
    pub entry_cursor: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::campaign_targets::Entity")]
    CampaignTargets,
}

impl Related<super::campaign_targets::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::CampaignTargets.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
