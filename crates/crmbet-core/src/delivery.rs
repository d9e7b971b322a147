//! The messages a launch writes to the outbox and the dispatcher delivers: the contract
//! between `crmbet-app` (which writes them) and `crmbet-integrations` (which reads them).

use serde::{Deserialize, Serialize};

use crate::CampaignId;

/// Outbox topic of every message bound for Smartico (campaign messages and profile
/// updates; [`OutboxMessage`] tells them apart).
pub const CAMPAIGN_DELIVERY_TOPIC: &str = "smartico.campaign";

/// Players per outbox message of profile updates (Smartico's events per request).
pub const PROFILE_BATCH_PLAYERS: usize = 500;

/// The payload of an outbox message bound for Smartico.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutboxMessage {
    /// A campaign's message to a batch of its treatment players.
    Campaign(CampaignDelivery),
    /// Players whose segment changed (a model activation or live play).
    Profiles(ProfileUpdates),
}

/// Segment changes of a model activation, pushed to Smartico as profile updates so its
/// own segments follow crmbet's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileUpdates {
    pub model_id: i64,
    pub players: Vec<SegmentChange>,
}

/// A player's new segment (the cluster's name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentChange {
    pub user_id: String,
    pub segment: String,
    /// The recorded change (its cursor) of a live change; activations are named by model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_id: Option<i64>,
}

/// The id of the profile-update event of a player for an activated model.
///
/// ```
/// assert_eq!(crmbet_core::delivery::profile_event_id(3, "p-1"), "crmbet-m3-p-1");
/// ```
pub fn profile_event_id(model_id: i64, user_id: &str) -> String {
    format!("crmbet-m{model_id}-{user_id}")
}

/// The id of the profile-update event of a live segment change.
///
/// ```
/// assert_eq!(crmbet_core::delivery::segment_change_event_id(17), "crmbet-s17");
/// ```
pub fn segment_change_event_id(change_id: i64) -> String {
    format!("crmbet-s{change_id}")
}

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
