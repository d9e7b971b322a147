//! The dispatcher: turns one outbox message (a campaign's message to a batch of players)
//! into Smartico events and delivers them, marking each accepted player sent.

use std::collections::HashMap;

use chrono::Utc;
use crmbet_core::CampaignId;
use crmbet_core::delivery::{
    CampaignDelivery, OutboxMessage, ProfileUpdates, event_id, profile_event_id,
    segment_change_event_id,
};
use crmbet_store::Store;
use serde_json::{Value as Json, json};

use crate::error::{DeliveryError, Result};
use crate::smartico::{SmarticoClient, SmarticoEvent};

/// Delivers campaign messages to Smartico; cheap to clone.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    store: Store,
    smartico: SmarticoClient,
}

impl Dispatcher {
    /// A dispatcher recording into `store` and sending through `smartico`.
    pub fn new(store: Store, smartico: SmarticoClient) -> Self {
        Self { store, smartico }
    }

    /// The Smartico client, for `/health`.
    pub fn smartico(&self) -> &SmarticoClient {
        &self.smartico
    }

    /// Delivers one message. `Ok` means every event is at Smartico (or the campaign was
    /// cancelled, and the message is dropped); an error leaves the message to be retried.
    pub async fn deliver(&self, message_id: i64, payload: &Json) -> Result<()> {
        let message: OutboxMessage =
            serde_json::from_value(payload.clone()).map_err(|error| DeliveryError::Malformed {
                message_id,
                reason: error.to_string(),
            })?;
        match message {
            OutboxMessage::Campaign(delivery) => self.deliver_campaign(message_id, delivery).await,
            OutboxMessage::Profiles(updates) => self.deliver_profiles(updates).await,
        }
    }

    /// Profile updates (`update_profile` by default) setting each player's
    /// `core_external_segment` to their new segment, so Smartico's segments follow.
    async fn deliver_profiles(&self, updates: ProfileUpdates) -> Result<()> {
        let settings = self.smartico.settings();
        let event_date = Utc::now().timestamp_millis();
        let events: Vec<SmarticoEvent> = updates
            .players
            .iter()
            .map(|change| SmarticoEvent {
                eid: change.change_id.map_or_else(
                    || profile_event_id(updates.model_id, &change.user_id),
                    segment_change_event_id,
                ),
                event_date,
                ext_brand_id: settings.brand.clone(),
                user_ext_id: change.user_id.clone(),
                event_type: settings.profile_event.clone(),
                payload: json!({ "core_external_segment": [change.segment] }),
            })
            .collect();
        let sent = self.smartico.send(&events).await?;
        if !sent.refused.is_empty() {
            return Err(DeliveryError::EventsRefused(sent.refused));
        }
        Ok(())
    }

    async fn deliver_campaign(&self, message_id: i64, delivery: CampaignDelivery) -> Result<()> {
        let campaign_id = CampaignId(delivery.campaign_id);
        let campaign = self.store.campaign(campaign_id).await?;
        if campaign.status == "cancelled" {
            tracing::info!(
                campaign_id = campaign.id,
                message_id,
                "campaign cancelled: its undelivered message is dropped"
            );
            return Ok(());
        }
        let settings = self.smartico.settings();
        let event_date = Utc::now().timestamp_millis();
        let mut players_by_event = HashMap::with_capacity(delivery.players.len());
        let events: Vec<SmarticoEvent> = delivery
            .players
            .iter()
            .map(|player| {
                let eid = event_id(campaign_id, player);
                players_by_event.insert(eid.clone(), player.clone());
                SmarticoEvent {
                    eid,
                    event_date,
                    ext_brand_id: settings.brand.clone(),
                    user_ext_id: player.clone(),
                    event_type: settings.campaign_event.clone(),
                    payload: json!({
                        "campaign_id": delivery.campaign_id,
                        "campaign_type": delivery.campaign_type,
                        "channel": delivery.channel,
                        "message_template": delivery.message_template,
                    }),
                }
            })
            .collect();
        let sent = self.smartico.send(&events).await?;
        let accepted: Vec<String> = sent
            .accepted
            .iter()
            .filter_map(|eid| players_by_event.get(eid).cloned())
            .collect();
        self.store.mark_targets_sent(campaign_id, &accepted).await?;
        if !sent.refused.is_empty() {
            return Err(DeliveryError::EventsRefused(sent.refused));
        }
        Ok(())
    }
}
