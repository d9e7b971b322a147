//! The messages a launch writes to the outbox and the dispatcher delivers: the contract
//! between `crmbet-app` (which writes them) and `crmbet-integrations` (which reads them).

use serde::{Deserialize, Serialize};

use crate::CampaignId;

/// Outbox topic of campaign messages bound for Smartico.
pub const CAMPAIGN_DELIVERY_TOPIC: &str = "smartico.campaign";

/// One outbox message: a campaign's message to a batch of its treatment players.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignDelivery {
    pub campaign_id: i64,
    pub campaign_type: String,
    pub channel: String,
    pub message_template: String,
    /// The players' ids at the operator.
    pub players: Vec<String>,
}

/// The id of the event that carries a campaign to a player: the same on every retry, so
/// Smartico recognises a repeated delivery as a duplicate.
///
/// ```
/// use crmbet_core::CampaignId;
/// assert_eq!(crmbet_core::delivery::event_id(CampaignId(4), "p-1"), "crmbet-c4-p-1");
/// ```
pub fn event_id(campaign_id: CampaignId, user_id: &str) -> String {
    format!("crmbet-c{campaign_id}-{user_id}")
}
