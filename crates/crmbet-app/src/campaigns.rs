//! Campaign use cases: create (idempotent on the caller's request id), read, list, cancel,
//! launch (by hand or when a scheduled start comes), players' restrictions, the events
//! Smartico sends back, and the results against the control group.
//!
//! A launch freezes its audience and writes its outbox messages in one transaction and
//! returns; `crmbet-integrations` delivers the messages.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use crmbet_core::delivery::{CAMPAIGN_DELIVERY_TOPIC, CampaignDelivery, OutboxMessage};
use crmbet_core::{CampaignId, Config, Error, ModelId, PlayerId, Result};
use crmbet_store::entity::{campaigns, player_restrictions};
use crmbet_store::{
    AudienceCandidate, AudienceDetail, EntryEnrollment, LaunchOutcome, LaunchRecord, LaunchTarget,
    NewCampaign, NewOutboxMessage, NewRestrictions, NewWebhookEvent, Store,
};
use serde_json::json;

use crate::audience::{
    AudienceRules, ExclusionCounts, FrequencyCap, TargetFilter, eligible_players, in_control_group,
};
use crate::uplift::{Estimate, conversion_uplift, mean_difference};

/// Holdout share when the request leaves it 0.
pub const DEFAULT_HOLDOUT_SHARE: f64 = 0.1;
/// Largest holdout share: at least half the audience is contacted.
pub const MAX_HOLDOUT_SHARE: f64 = 0.5;
/// Longest campaign name.
pub const MAX_NAME_CHARS: usize = 200;
/// Most clusters one campaign may target.
pub const MAX_CLUSTERS: usize = 100;
/// Event types the Smartico webhook accepts.
pub const EVENT_TYPES: &[&str] = &[
    "sent",
    "delivered",
    "opened",
    "clicked",
    "converted",
    "bounced",
    "unsubscribed",
];

/// The settings the campaign use cases read, from [`Config`].
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignSettings {
    pub holdout_seed: String,
    pub frequency_cap: FrequencyCap,
    pub frequency_cap_window: Duration,
    /// Treatment players per outbox message.
    pub batch_players: usize,
}

impl CampaignSettings {
    /// The settings of `config`.
    pub fn from_config(config: &Config) -> Self {
        Self {
            holdout_seed: config.holdout_seed.clone(),
            frequency_cap: FrequencyCap {
                max_campaigns: config.frequency_cap,
            },
            frequency_cap_window: Duration::hours(i64::from(config.frequency_cap_window_hours)),
            batch_players: config.smartico_batch_events.max(1),
        }
    }
}

/// A campaign as a marketer describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignDraft {
    pub name: String,
    pub description: String,
    /// A stored campaign type such as `reload_bonus`.
    pub campaign_type: String,
    /// `email`, `sms`, `push` or `popup`.
    pub channel: String,
    pub cluster_ids: Vec<i64>,
    pub filter: TargetFilter,
    /// 0 means [`DEFAULT_HOLDOUT_SHARE`].
    pub holdout_share: f64,
    pub message_template: String,
    pub request_id: Option<String>,
    pub start_at: Option<DateTime<Utc>>,
    pub created_by: Option<String>,
    /// Enrol each player as they enter one of the clusters after the launch, instead of
    /// the clusters' members at launch.
    pub on_entry: bool,
}

/// `campaigns.trigger` of a campaign that enrols players as they enter its clusters.
pub const TRIGGER_ON_ENTRY: &str = "on_entry";
/// `campaigns.trigger` of a campaign whose audience is chosen at launch.
pub const TRIGGER_LAUNCH: &str = "launch";
/// Segment changes an on-entry campaign reads per enrolment.
const ENTRY_CHANGES_PER_ROUND: u64 = 5000;

/// The funnel of one group.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Funnel {
    pub players: u64,
    pub sent: u64,
    pub delivered: u64,
    pub opened: u64,
    pub clicked: u64,
    pub converted: u64,
    /// Sum of the group's conversion amounts.
    pub deposits: f64,
}

impl Funnel {
    /// converted / players, 0 for an empty group.
    pub fn conversion_rate(&self) -> f64 {
        if self.players == 0 {
            return 0.0;
        }
        self.converted as f64 / self.players as f64
    }
}

/// Treatment against control over some players of a campaign.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Comparison {
    pub treatment: Funnel,
    pub control: Funnel,
    /// `None` while a group is empty.
    pub conversion_uplift: Option<Estimate>,
    /// `None` while a group has fewer than two players.
    pub revenue_per_player: Option<Estimate>,
}

/// The results of a campaign: overall and per target cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignResults {
    pub campaign_id: CampaignId,
    pub overall: Comparison,
    pub clusters: Vec<(i64, Comparison)>,
    pub computed_at: DateTime<Utc>,
}

/// An event Smartico sent about a campaign message.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignEvent {
    pub event_id: String,
    pub event_type: String,
    pub campaign_id: i64,
    pub user_id: String,
    pub occurred_at: Option<DateTime<Utc>>,
    /// Everything else Smartico sent, kept as is.
    pub attributes: serde_json::Value,
}

/// The campaign use cases over one store.
#[derive(Debug, Clone)]
pub struct Campaigns {
    store: Store,
    settings: CampaignSettings,
}

impl Campaigns {
    /// The use cases over `store` with `settings`.
    pub fn new(store: Store, settings: CampaignSettings) -> Self {
        Self { store, settings }
    }

    /// Creates a campaign on clusters of the active model (a draft, or scheduled when it
    /// has a start time); the same request id twice returns the first campaign.
    pub async fn create(&self, draft: CampaignDraft) -> Result<campaigns::Model> {
        let holdout_share = validate_draft(&draft)?;
        let Some(model_id) = self.store.active_model_id().await? else {
            return Err(Error::FailedPrecondition(
                "no segmentation model is active yet; train and activate one first".to_owned(),
            ));
        };
        let clusters = self
            .store
            .list_clusters(model_id, None, MAX_CLUSTERS as u64 * 100)
            .await?;
        if let Some(unknown) = draft
            .cluster_ids
            .iter()
            .find(|cluster_id| !clusters.iter().any(|cluster| cluster.id == **cluster_id))
        {
            return Err(Error::invalid_argument(
                "cluster_ids",
                format!("cluster {unknown} is not a cluster of the active model {model_id}"),
            ));
        }
        let filter = serde_json::to_value(&draft.filter)
            .map_err(|error| Error::Internal(format!("encoding a target filter: {error}")))?;
        let (campaign, _created) = self
            .store
            .create_campaign(NewCampaign {
                name: draft.name,
                description: draft.description,
                campaign_type: draft.campaign_type,
                channel: draft.channel,
                cluster_ids: draft.cluster_ids,
                filter,
                holdout_share,
                message_template: draft.message_template,
                request_id: draft.request_id,
                model_id,
                created_by: draft.created_by,
                start_at: draft.start_at,
                trigger: if draft.on_entry {
                    TRIGGER_ON_ENTRY
                } else {
                    TRIGGER_LAUNCH
                }
                .to_owned(),
            })
            .await?;
        Ok(campaign)
    }

    /// A campaign by id.
    pub async fn get(&self, campaign_id: CampaignId) -> Result<campaigns::Model> {
        self.store.campaign(campaign_id).await
    }

    /// Campaigns newest first; see [`Store::list_campaigns`].
    pub async fn list(
        &self,
        status: Option<&str>,
        before: Option<i64>,
        limit: u64,
    ) -> Result<Vec<campaigns::Model>> {
        self.store.list_campaigns(status, before, limit).await
    }

    /// Cancels a campaign; see [`Store::cancel_campaign`].
    pub async fn cancel(&self, campaign_id: CampaignId) -> Result<campaigns::Model> {
        self.store.cancel_campaign(campaign_id).await
    }

    /// Launches a campaign: selects its audience (the restricted and capped players left
    /// out and counted), draws the control group, and commits targets, outbox messages and
    /// an audit row with the exclusion counts in one transaction. A launched campaign is
    /// returned unchanged.
    pub async fn launch(&self, campaign_id: CampaignId, actor: &str) -> Result<campaigns::Model> {
        let campaign = self.store.campaign(campaign_id).await?;
        match campaign.status.as_str() {
            "draft" | "scheduled" => {}
            "cancelled" => {
                return Err(Error::FailedPrecondition(format!(
                    "campaign {campaign_id} was cancelled; create a new campaign instead"
                )));
            }
            _ => return Ok(campaign),
        }
        let now = Utc::now();
        let started = std::time::Instant::now();
        let model_id = ModelId(
            campaign
                .model_id
                .ok_or_else(|| Error::Internal(format!("campaign {campaign_id} has no model")))?,
        );
        let on_entry = campaign.trigger == TRIGGER_ON_ENTRY;
        // An on-entry campaign starts empty and enrols from the changes after this one.
        let entry_cursor = if on_entry {
            Some(self.store.last_segment_change().await?)
        } else {
            None
        };
        let (targets, exclusions) = if on_entry {
            (Vec::new(), ExclusionCounts::default())
        } else {
            let (cluster_ids, filter) = audience_of(&campaign)?;
            let detail = if filter == TargetFilter::default() {
                AudienceDetail::Membership
            } else {
                AudienceDetail::FilterAttributes
            };
            let candidates = self
                .store
                .audience_candidates(model_id, &cluster_ids, detail, None)
                .await?;
            self.select_targets(&campaign, &filter, candidates, None, now)
                .await?
        };
        let read_ms = started.elapsed().as_millis() as u64;
        let messages = delivery_messages(&campaign, &targets, self.settings.batch_players)?;
        let selected_ms = started.elapsed().as_millis() as u64;
        let treatment = targets
            .iter()
            .filter(|target| target.group_name == "treatment")
            .count();
        let exclusions_json = serde_json::to_value(exclusions)
            .map_err(|error| Error::Internal(format!("encoding exclusions: {error}")))?;
        let record = LaunchRecord {
            campaign_id,
            launched_at: now,
            audit_actor: actor.to_owned(),
            audit_details: json!({
                "treatment": treatment,
                "control": targets.len() - treatment,
                "excluded": exclusions_json.clone(),
                "outbox_messages": messages.len(),
            }),
            targets,
            messages,
            exclusions: exclusions_json,
            entry_cursor,
        };
        match self.store.launch_campaign(record).await? {
            LaunchOutcome::Launched(campaign) => {
                tracing::info!(
                    campaign_id = campaign.id,
                    treatment = campaign.treatment_count,
                    control = campaign.control_count,
                    ?exclusions,
                    read_ms,
                    selected_ms,
                    committed_ms = started.elapsed().as_millis() as u64,
                    "campaign launched"
                );
                Ok(campaign)
            }
            LaunchOutcome::AlreadyLaunched(campaign) => Ok(campaign),
        }
    }

    /// Applies the rules of a launch to `candidates` (restrictions, frequency cap, target
    /// filter) and draws the control group. With `among`, the candidates' user ids, only
    /// their restrictions and contacts are read (a few entrants, not the whole base).
    async fn select_targets(
        &self,
        campaign: &campaigns::Model,
        filter: &TargetFilter,
        candidates: Vec<AudienceCandidate>,
        among: Option<&[String]>,
        now: DateTime<Utc>,
    ) -> Result<(Vec<LaunchTarget>, ExclusionCounts)> {
        let restrictions: HashMap<String, player_restrictions::Model> = self
            .store
            .restricted_players_among(among)
            .await?
            .into_iter()
            .map(|row| (row.user_id.clone(), row))
            .collect();
        let recent_contacts = if self.settings.frequency_cap.max_campaigns > 0 {
            self.store
                .recent_contacts(now - self.settings.frequency_cap_window, among)
                .await?
        } else {
            HashMap::new()
        };
        let rules = AudienceRules {
            filter,
            restrictions: &restrictions,
            recent_contacts: &recent_contacts,
            cap: self.settings.frequency_cap,
            now,
        };
        let (eligible, exclusions) = eligible_players(candidates, &rules);
        let campaign_id = CampaignId(campaign.id);
        let targets = eligible
            .into_iter()
            .map(|player| {
                let control = in_control_group(
                    &self.settings.holdout_seed,
                    campaign_id,
                    &player.user_id,
                    campaign.holdout_share,
                );
                LaunchTarget {
                    user_id: player.user_id,
                    cluster_id: player.cluster_id,
                    group_name: if control { "control" } else { "treatment" },
                }
            })
            .collect();
        Ok((targets, exclusions))
    }

    /// Enrols, for every launched on-entry campaign, the players who entered one of its
    /// clusters since its cursor (the same rules and holdout as a launch; a player already
    /// enrolled stays as they are) and queues their messages. Returns how many players were
    /// enrolled. Safe to run on several instances at once: each enrolment commits only from
    /// the cursor it read.
    pub async fn enroll_entrants(&self) -> Result<usize> {
        let mut enrolled = 0;
        for campaign in self.store.on_entry_campaigns().await? {
            // One campaign failing must not hold back the others.
            match self.enroll_campaign_entrants(&campaign).await {
                Ok(count) => enrolled += count,
                Err(error) => tracing::warn!(
                    campaign_id = campaign.id,
                    %error,
                    "enrolling an on-entry campaign failed; retrying"
                ),
            }
        }
        Ok(enrolled)
    }

    async fn enroll_campaign_entrants(&self, campaign: &campaigns::Model) -> Result<usize> {
        let from_cursor = campaign.entry_cursor;
        let changes = self
            .store
            .segment_changes_after(from_cursor.unwrap_or(0), ENTRY_CHANGES_PER_ROUND)
            .await?;
        let Some(through_cursor) = changes.last().map(|change| change.id) else {
            return Ok(0);
        };
        let (cluster_ids, filter) = audience_of(campaign)?;
        let mut entrants: Vec<String> = Vec::new();
        for change in &changes {
            let entered = Some(change.model_id) == campaign.model_id
                && cluster_ids.contains(&change.cluster_id)
                && !change
                    .previous_cluster_id
                    .is_some_and(|previous| cluster_ids.contains(&previous));
            if entered && !entrants.contains(&change.user_id) {
                entrants.push(change.user_id.clone());
            }
        }
        let campaign_id = CampaignId(campaign.id);
        let already = self.store.existing_targets(campaign_id, &entrants).await?;
        entrants.retain(|user| !already.contains(user));
        let now = Utc::now();
        let (targets, exclusions) = if entrants.is_empty() {
            (Vec::new(), ExclusionCounts::default())
        } else {
            let model_id = ModelId(campaign.model_id.unwrap_or_default());
            let detail = if filter == TargetFilter::default() {
                AudienceDetail::Membership
            } else {
                AudienceDetail::FilterAttributes
            };
            // Their segment now: a player who entered and left again in these changes is
            // no longer a member and is not enrolled.
            let candidates = self
                .store
                .audience_candidates(model_id, &cluster_ids, detail, Some(&entrants))
                .await?;
            self.select_targets(campaign, &filter, candidates, Some(&entrants), now)
                .await?
        };
        let mut messages = delivery_messages(campaign, &targets, self.settings.batch_players)?;
        for message in &mut messages {
            // Unique per enrolment: the launch's keys are `campaign-<id>-batch-<n>`.
            message.message_key = format!("{}-entry-{through_cursor}", message.message_key);
        }
        let committed = self
            .store
            .enroll_entrants(EntryEnrollment {
                campaign_id,
                from_cursor,
                through_cursor,
                enrolled_at: now,
                targets: targets.clone(),
                messages,
            })
            .await?;
        if !committed {
            return Ok(0);
        }
        if !targets.is_empty() || exclusions != ExclusionCounts::default() {
            tracing::info!(
                campaign_id = campaign.id,
                enrolled = targets.len(),
                ?exclusions,
                through_cursor,
                "on-entry campaign enrolled players"
            );
        }
        Ok(targets.len())
    }

    /// Launches every scheduled campaign whose start time has come; returns how many.
    /// Safe to run again after a crash: a launch happens once whatever the retries.
    pub async fn launch_due(&self) -> Result<usize> {
        let due = self.store.due_campaigns(Utc::now()).await?;
        let mut launched = 0;
        for campaign in due {
            self.launch(CampaignId(campaign.id), "scheduler").await?;
            launched += 1;
        }
        Ok(launched)
    }

    /// Sets a player's restrictions; see [`Store::set_restrictions`].
    pub async fn set_restrictions(
        &self,
        player_id: &PlayerId,
        flags: RestrictionFlags,
        updated_by: Option<String>,
    ) -> Result<player_restrictions::Model> {
        self.store
            .set_restrictions(NewRestrictions {
                user_id: player_id.as_str().to_owned(),
                self_excluded: flags.self_excluded,
                blocked: flags.blocked,
                marketing_opt_out: flags.marketing_opt_out,
                source: "api".to_owned(),
                updated_by,
            })
            .await
    }

    /// Stores an event from Smartico once; returns `true` for a repeat of a stored event.
    /// The campaign must exist and the player be one of its targets. An unsubscribe opts
    /// the player out of marketing before the event is stored, so a retried event finds
    /// the opt-out done.
    pub async fn record_event(&self, event: CampaignEvent) -> Result<bool> {
        let amount = validate_event(&event)?;
        let campaign_id = CampaignId::parse("campaign_id", event.campaign_id)?;
        let player_id = PlayerId::parse("user_id", &event.user_id)?;
        if self.store.webhook_event_stored(&event.event_id).await? {
            return Ok(true);
        }
        self.store.campaign(campaign_id).await?;
        if self
            .store
            .campaign_target(campaign_id, player_id.as_str())
            .await?
            .is_none()
        {
            return Err(Error::NotFound {
                kind: "target",
                id: format!("player {player_id} of campaign {campaign_id}"),
            });
        }
        if event.event_type == "unsubscribed" {
            self.store
                .opt_out_of_marketing(player_id.as_str(), "webhook")
                .await?;
        }
        self.store
            .record_webhook_event(NewWebhookEvent {
                event_id: event.event_id,
                source: "smartico".to_owned(),
                event_type: event.event_type,
                campaign_id,
                user_id: player_id.as_str().to_owned(),
                occurred_at: event.occurred_at,
                payload: event.attributes,
                amount,
            })
            .await
    }

    /// The funnel of each group, overall and per cluster, with the uplift statistics.
    pub async fn results(&self, campaign_id: CampaignId) -> Result<CampaignResults> {
        self.store.campaign(campaign_id).await?;
        let targets = self.store.campaign_targets(campaign_id).await?;
        let outcomes = self.store.campaign_outcomes(campaign_id).await?;
        let mut overall = Tally::default();
        let mut clusters: std::collections::BTreeMap<i64, Tally> = Default::default();
        for target in &targets {
            let outcome = outcomes.get(&target.user_id).cloned().unwrap_or_default();
            let treatment = target.group_name == "treatment";
            let sent = target.status == "sent";
            overall.add(treatment, sent, &outcome);
            clusters
                .entry(target.cluster_id.unwrap_or_default())
                .or_default()
                .add(treatment, sent, &outcome);
        }
        Ok(CampaignResults {
            campaign_id,
            overall: overall.comparison(),
            clusters: clusters
                .into_iter()
                .map(|(cluster_id, tally)| (cluster_id, tally.comparison()))
                .collect(),
            computed_at: Utc::now(),
        })
    }
}

/// The restrictions of a player, as set through the API.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestrictionFlags {
    pub self_excluded: bool,
    pub blocked: bool,
    pub marketing_opt_out: bool,
}

/// Funnels and per-player deposits of the two groups, being counted.
#[derive(Debug, Default)]
struct Tally {
    treatment: Funnel,
    control: Funnel,
    treatment_deposits: Vec<f64>,
    control_deposits: Vec<f64>,
}

impl Tally {
    fn add(&mut self, treatment: bool, sent: bool, outcome: &crmbet_store::PlayerOutcome) {
        let (funnel, deposits) = if treatment {
            (&mut self.treatment, &mut self.treatment_deposits)
        } else {
            (&mut self.control, &mut self.control_deposits)
        };
        funnel.players += 1;
        funnel.sent += u64::from(sent);
        funnel.delivered += u64::from(outcome.delivered);
        funnel.opened += u64::from(outcome.opened);
        funnel.clicked += u64::from(outcome.clicked);
        funnel.converted += u64::from(outcome.converted);
        funnel.deposits += outcome.amount;
        deposits.push(outcome.amount);
    }

    fn comparison(self) -> Comparison {
        Comparison {
            conversion_uplift: conversion_uplift(
                self.treatment.converted,
                self.treatment.players,
                self.control.converted,
                self.control.players,
            ),
            revenue_per_player: mean_difference(&self.treatment_deposits, &self.control_deposits),
            treatment: self.treatment,
            control: self.control,
        }
    }
}

/// A campaign's clusters and target filter, as stored.
fn audience_of(campaign: &campaigns::Model) -> Result<(Vec<i64>, TargetFilter)> {
    let cluster_ids: Vec<i64> = serde_json::from_value(campaign.cluster_ids.clone())
        .map_err(|error| Error::Internal(format!("stored cluster ids: {error}")))?;
    let filter: TargetFilter = serde_json::from_value(campaign.filter.clone())
        .map_err(|error| Error::Internal(format!("stored target filter: {error}")))?;
    Ok((cluster_ids, filter))
}

/// The outbox messages of a launch: the treatment players in batches of `batch_players`.
fn delivery_messages(
    campaign: &campaigns::Model,
    targets: &[LaunchTarget],
    batch_players: usize,
) -> Result<Vec<NewOutboxMessage>> {
    let treatment: Vec<&str> = targets
        .iter()
        .filter(|target| target.group_name == "treatment")
        .map(|target| target.user_id.as_str())
        .collect();
    treatment
        .chunks(batch_players.max(1))
        .enumerate()
        .map(|(index, players)| {
            let delivery = CampaignDelivery {
                campaign_id: campaign.id,
                campaign_type: campaign.campaign_type.clone(),
                channel: campaign.channel.clone(),
                message_template: campaign.message_template.clone(),
                players: players.iter().map(|player| (*player).to_owned()).collect(),
            };
            let payload = serde_json::to_value(OutboxMessage::Campaign(delivery))
                .map_err(|error| Error::Internal(format!("encoding a delivery: {error}")))?;
            Ok(NewOutboxMessage {
                topic: CAMPAIGN_DELIVERY_TOPIC.to_owned(),
                message_key: format!("campaign-{}-batch-{index}", campaign.id),
                payload,
            })
        })
        .collect()
}

/// Checks a draft and returns its holdout share (the default for 0).
fn validate_draft(draft: &CampaignDraft) -> Result<f64> {
    let name = draft.name.trim();
    if name.is_empty() {
        return Err(Error::invalid_argument("name", "must not be empty"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(Error::invalid_argument(
            "name",
            format!("must be at most {MAX_NAME_CHARS} characters"),
        ));
    }
    if draft.cluster_ids.is_empty() {
        return Err(Error::invalid_argument(
            "cluster_ids",
            "name at least one cluster of the active model (GET /api/v1/clusters)",
        ));
    }
    if draft.cluster_ids.len() > MAX_CLUSTERS {
        return Err(Error::invalid_argument(
            "cluster_ids",
            format!("at most {MAX_CLUSTERS} clusters"),
        ));
    }
    let holdout_share = if draft.holdout_share == 0.0 {
        DEFAULT_HOLDOUT_SHARE
    } else {
        draft.holdout_share
    };
    if !(holdout_share > 0.0 && holdout_share <= MAX_HOLDOUT_SHARE) {
        return Err(Error::invalid_argument(
            "holdout_share",
            format!(
                "must be in (0, {MAX_HOLDOUT_SHARE}] (0 means {DEFAULT_HOLDOUT_SHARE}), got {}",
                draft.holdout_share
            ),
        ));
    }
    let filter = &draft.filter;
    for (field, value) in [
        ("filter.min_monetary", filter.min_monetary),
        ("filter.max_monetary", filter.max_monetary),
    ] {
        if value.is_some_and(|amount| !amount.is_finite() || amount < 0.0) {
            return Err(Error::invalid_argument(
                field,
                "must be a non-negative amount",
            ));
        }
    }
    if let (Some(minimum), Some(maximum)) = (filter.min_monetary, filter.max_monetary)
        && minimum > maximum
    {
        return Err(Error::invalid_argument(
            "filter.min_monetary",
            "must not exceed filter.max_monetary",
        ));
    }
    if let Some(country) = filter.countries.iter().find(|country| {
        country.len() != 2
            || !country
                .chars()
                .all(|character| character.is_ascii_alphabetic())
    }) {
        return Err(Error::invalid_argument(
            "filter.countries",
            format!("{country:?} is not an ISO 3166-1 alpha-2 code"),
        ));
    }
    if let Some(request_id) = &draft.request_id
        && request_id.len() > 200
    {
        return Err(Error::invalid_argument(
            "request_id",
            "must be at most 200 characters",
        ));
    }
    Ok(holdout_share)
}

/// Checks an event and returns the amount of a conversion.
fn validate_event(event: &CampaignEvent) -> Result<Option<f64>> {
    if event.event_id.is_empty() || event.event_id.len() > 200 {
        return Err(Error::invalid_argument(
            "event_id",
            "must be 1..200 characters (Smartico's id of the event)",
        ));
    }
    if !EVENT_TYPES.contains(&event.event_type.as_str()) {
        return Err(Error::invalid_argument(
            "event_type",
            format!(
                "must be one of {}, got {:?}",
                EVENT_TYPES.join(", "),
                event.event_type
            ),
        ));
    }
    if event.event_type != "converted" {
        return Ok(None);
    }
    let amount = match event.attributes.get("amount") {
        Some(serde_json::Value::Number(number)) => number.as_f64(),
        Some(serde_json::Value::String(text)) => text.trim().parse::<f64>().ok(),
        _ => None,
    };
    match amount {
        Some(amount) if amount.is_finite() && amount >= 0.0 => Ok(Some(amount)),
        _ => Err(Error::invalid_argument(
            "attributes.amount",
            "a converted event needs a non-negative amount",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> CampaignDraft {
        CampaignDraft {
            name: "Reload".to_owned(),
            description: String::new(),
            campaign_type: "reload_bonus".to_owned(),
            channel: "email".to_owned(),
            cluster_ids: vec![1],
            filter: TargetFilter::default(),
            holdout_share: 0.0,
            message_template: "tpl".to_owned(),
            request_id: None,
            start_at: None,
            created_by: None,
            on_entry: false,
        }
    }

    #[test]
    fn drafts_are_checked() {
        assert_eq!(validate_draft(&draft()).ok(), Some(DEFAULT_HOLDOUT_SHARE));
        type Change = Box<dyn Fn(&mut CampaignDraft)>;
        let cases: Vec<(&str, Change)> = vec![
            ("name", Box::new(|draft| draft.name = " ".to_owned())),
            ("cluster_ids", Box::new(|draft| draft.cluster_ids.clear())),
            ("holdout_share", Box::new(|draft| draft.holdout_share = 0.7)),
            (
                "holdout_share",
                Box::new(|draft| draft.holdout_share = -0.1),
            ),
            (
                "filter.min_monetary",
                Box::new(|draft| draft.filter.min_monetary = Some(-1.0)),
            ),
            (
                "filter.countries",
                Box::new(|draft| draft.filter.countries = vec!["GBR".to_owned()]),
            ),
        ];
        for (field, change) in cases {
            let mut bad = draft();
            change(&mut bad);
            let error = validate_draft(&bad).expect_err(field).to_string();
            assert!(error.starts_with(field), "{field}: {error}");
        }
    }

    #[test]
    fn events_are_checked_and_conversions_need_an_amount() {
        let event = |event_type: &str, attributes: serde_json::Value| CampaignEvent {
            event_id: "e-1".to_owned(),
            event_type: event_type.to_owned(),
            campaign_id: 1,
            user_id: "p-1".to_owned(),
            occurred_at: None,
            attributes,
        };
        assert_eq!(validate_event(&event("opened", json!({}))).ok(), Some(None));
        assert_eq!(
            validate_event(&event("converted", json!({"amount": 25.5}))).ok(),
            Some(Some(25.5))
        );
        assert_eq!(
            validate_event(&event("converted", json!({"amount": "10"}))).ok(),
            Some(Some(10.0))
        );
        assert!(validate_event(&event("converted", json!({}))).is_err());
        assert!(validate_event(&event("converted", json!({"amount": -1}))).is_err());
        assert!(validate_event(&event("exploded", json!({}))).is_err());
    }
}
