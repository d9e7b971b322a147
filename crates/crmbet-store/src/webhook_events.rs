//! Events Smartico sends back, stored once per event id, and the per-player outcomes of a
//! campaign that the results are computed from.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use crmbet_core::{CampaignId, Result};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, SqlErr};
use serde_json::Value as Json;

use crate::database::Store;
use crate::entity::webhook_events;
use crate::failure::database_error;

/// An event to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewWebhookEvent {
    pub event_id: String,
    pub source: String,
    pub event_type: String,
    pub campaign_id: CampaignId,
    pub user_id: String,
    pub occurred_at: Option<DateTime<Utc>>,
    pub payload: Json,
    pub amount: Option<f64>,
}

/// What one player of a campaign did, from the events received.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlayerOutcome {
    pub delivered: bool,
    pub opened: bool,
    pub clicked: bool,
    pub converted: bool,
    /// Sum of the amounts of the player's conversions.
    pub amount: f64,
}

impl Store {
    /// Stores an event; `true` when an event with its id was stored before (nothing is
    /// written then). Returns only once the row is committed.
    pub async fn record_webhook_event(&self, event: NewWebhookEvent) -> Result<bool> {
        if self.webhook_event_stored(&event.event_id).await? {
            return Ok(true);
        }
        let inserted = webhook_events::Entity::insert(webhook_events::ActiveModel {
            event_id: Set(event.event_id.clone()),
            source: Set(event.source.clone()),
            event_type: Set(event.event_type.clone()),
            campaign_id: Set(Some(event.campaign_id.0)),
            user_id: Set(Some(event.user_id.clone())),
            occurred_at: Set(event.occurred_at),
            payload: Set(event.payload.clone()),
            received_at: Set(Utc::now()),
            amount: Set(event.amount),
            ..Default::default()
        })
        .exec(self.connection())
        .await;
        match inserted {
            Ok(_) => Ok(false),
            Err(error) if matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                Ok(true)
            }
            Err(error) => Err(database_error(error)),
        }
    }

    /// Whether an event with this id is stored.
    pub async fn webhook_event_stored(&self, event_id: &str) -> Result<bool> {
        Ok(webhook_events::Entity::find()
            .filter(webhook_events::Column::EventId.eq(event_id))
            .one(self.connection())
            .await
            .map_err(database_error)?
            .is_some())
    }

    /// The outcome of each player of a campaign that any event was received for.
    pub async fn campaign_outcomes(
        &self,
        campaign_id: CampaignId,
    ) -> Result<HashMap<String, PlayerOutcome>> {
        let events = webhook_events::Entity::find()
            .filter(webhook_events::Column::CampaignId.eq(campaign_id.0))
            .all(self.connection())
            .await
            .map_err(database_error)?;
        let mut outcomes: HashMap<String, PlayerOutcome> = HashMap::new();
        for event in events {
            let Some(user_id) = event.user_id else {
                continue;
            };
            let outcome = outcomes.entry(user_id).or_default();
            match event.event_type.as_str() {
                "delivered" => outcome.delivered = true,
                "opened" => outcome.opened = true,
                "clicked" => outcome.clicked = true,
                "converted" => {
                    outcome.converted = true;
                    outcome.amount += event.amount.unwrap_or_default();
                }
                _ => {}
            }
        }
        Ok(outcomes)
    }
}
