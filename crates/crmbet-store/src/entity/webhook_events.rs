//! An event received from Smartico, stored once per event id.

use sea_orm::entity::prelude::*;

/// A row of `webhook_events`.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The sender's event id; a redelivered event is stored once.
    #[sea_orm(unique)]
    pub event_id: String,
    /// The sender, e.g. `smartico`.
    pub source: String,
    pub event_type: String,
    pub campaign_id: Option<i64>,
    pub user_id: Option<String>,
    pub occurred_at: Option<DateTimeUtc>,
    pub payload: Json,
    pub received_at: DateTimeUtc,
    /// The amount of a `converted` event, in the reporting currency.
    pub amount: Option<f64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
