//! Who changed what, when and from where.

use sea_orm::entity::prelude::*;

/// A row of `audit_log`.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The username, or `anonymous`.
    pub actor: String,
    pub role: Option<String>,
    /// What was done, e.g. the RPC `/crmbet.v1.CampaignService/LaunchCampaign`.
    pub action: String,
    pub target: Option<String>,
    pub client_ip: Option<String>,
    pub request_id: Option<String>,
    pub details: Option<Json>,
    pub occurred_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
