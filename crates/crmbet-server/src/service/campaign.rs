//! CampaignService: translates messages and calls the campaign use cases of `crmbet-app`.

use crmbet_app::campaigns::TRIGGER_ON_ENTRY;
use crmbet_app::{CampaignDraft, Campaigns, Comparison, ExclusionCounts, Funnel, TargetFilter};
use crmbet_core::money::{format_amount, parse_amount};
use crmbet_core::{CampaignId, Error, PageSize, PageToken, Result};
use crmbet_proto::v1::campaign_service_server::CampaignService;
use crmbet_proto::v1::{Campaign, CampaignTrigger, CampaignType};
use crmbet_proto::v1::{
    CampaignFunnel, CampaignStatus, CancelCampaignRequest, CancelCampaignResponse, Channel,
    ClusterResults, CreateCampaignRequest, CreateCampaignResponse, Estimate, GetCampaignRequest,
    GetCampaignResponse, GetCampaignResultsRequest, GetCampaignResultsResponse,
    LaunchCampaignRequest, LaunchCampaignResponse, ListCampaignsRequest, ListCampaignsResponse,
};
use crmbet_store::entity::campaigns;
use tonic::{Request, Response, Status};

use crate::auth::{Principal, note_audit_target};
use crate::convert::{campaign_type, instant, money, timestamp};
use crate::service::cluster::split_page;
use crate::status::status_from_error;

/// Serves CampaignService.
#[derive(Debug, Clone)]
pub struct CampaignApi {
    campaigns: Campaigns,
}

impl CampaignApi {
    /// A service over the campaign use cases.
    pub fn new(campaigns: Campaigns) -> Self {
        Self { campaigns }
    }

    async fn create(
        &self,
        request: CreateCampaignRequest,
        created_by: Option<String>,
    ) -> Result<Campaign> {
        let stored_type = enum_word(
            "campaign_type",
            CampaignType::try_from(request.campaign_type)
                .map(|value| value.as_str_name())
                .ok(),
            "CAMPAIGN_TYPE_",
        )?;
        let channel = enum_word(
            "channel",
            Channel::try_from(request.channel)
                .map(|value| value.as_str_name())
                .ok(),
            "CHANNEL_",
        )?;
        let filter = request.filter.unwrap_or_default();
        let non_negative = |field: &str, days: i32| {
            u32::try_from(days)
                .map(|days| (days > 0).then_some(days))
                .map_err(|_| Error::invalid_argument(field, "must be 0 or more days"))
        };
        let draft = CampaignDraft {
            name: request.name,
            description: request.description,
            campaign_type: stored_type,
            channel,
            cluster_ids: request.cluster_ids,
            filter: TargetFilter {
                min_monetary: parse_amount("filter.min_monetary", &filter.min_monetary)?,
                max_monetary: parse_amount("filter.max_monetary", &filter.max_monetary)?,
                min_recency_days: non_negative("filter.min_recency_days", filter.min_recency_days)?,
                max_recency_days: non_negative("filter.max_recency_days", filter.max_recency_days)?,
                countries: filter
                    .countries
                    .iter()
                    .map(|country| country.to_ascii_uppercase())
                    .collect(),
            },
            holdout_share: request.holdout_share,
            message_template: request.message_template,
            request_id: Some(request.request_id).filter(|id| !id.is_empty()),
            start_at: request
                .start_at
                .as_ref()
                .map(|start| instant("start_at", start))
                .transpose()?,
            created_by,
            on_entry: match CampaignTrigger::try_from(request.trigger) {
                Ok(CampaignTrigger::OnEntry) => true,
                Ok(CampaignTrigger::Launch | CampaignTrigger::Unspecified) => false,
                Err(_) => {
                    return Err(Error::invalid_argument(
                        "trigger",
                        format!(
                            "{} is not a campaign trigger (CAMPAIGN_TRIGGER_LAUNCH or \
                             CAMPAIGN_TRIGGER_ON_ENTRY)",
                            request.trigger
                        ),
                    ));
                }
            },
        };
        let campaign = self.campaigns.create(draft).await?;
        campaign_message(&campaign)
    }

    async fn list(&self, request: ListCampaignsRequest) -> Result<ListCampaignsResponse> {
        let page_size = PageSize::parse(request.page_size)?;
        let status = match CampaignStatus::try_from(request.status) {
            Ok(CampaignStatus::Unspecified) => None,
            Ok(status) => Some(status_word(status)),
            Err(_) => {
                return Err(Error::invalid_argument(
                    "status",
                    format!("{} is not a campaign status", request.status),
                ));
            }
        };
        let scope = format!("campaigns:{}", status.unwrap_or("any"));
        let before = PageToken::decode(&request.page_token, &scope)?
            .map(|key| {
                key.parse::<i64>()
                    .map_err(|_| Error::invalid_argument("page_token", "is not a campaign cursor"))
            })
            .transpose()?;
        let limit = u64::from(page_size.get());
        let rows = self.campaigns.list(status, before, limit + 1).await?;
        let (rows, next_page_token) = split_page(rows, limit, |row| {
            PageToken::new(scope.clone(), row.id.to_string()).encode()
        });
        Ok(ListCampaignsResponse {
            campaigns: rows
                .iter()
                .map(campaign_message)
                .collect::<Result<Vec<_>>>()?,
            next_page_token,
        })
    }

    async fn results(&self, campaign_id: i64) -> Result<GetCampaignResultsResponse> {
        let campaign_id = CampaignId::parse("campaign_id", campaign_id)?;
        let results = self.campaigns.results(campaign_id).await?;
        let overall = &results.overall;
        Ok(GetCampaignResultsResponse {
            campaign_id: campaign_id.0,
            treatment: Some(funnel_message(&overall.treatment)),
            control: Some(funnel_message(&overall.control)),
            conversion_uplift: overall
                .conversion_uplift
                .map(|estimate| estimate.difference)
                .unwrap_or_default(),
            updated_at: Some(timestamp(results.computed_at)),
            conversion_uplift_estimate: overall.conversion_uplift.map(estimate_message),
            revenue_per_player: overall.revenue_per_player.map(estimate_message),
            clusters: results
                .clusters
                .iter()
                .map(|(cluster_id, comparison)| cluster_results(*cluster_id, comparison))
                .collect(),
        })
    }
}

pub(crate) fn caller_name<Message>(request: &Request<Message>) -> Option<String> {
    request
        .extensions()
        .get::<Principal>()
        .map(|principal| principal.username.clone())
}

#[tonic::async_trait]
impl CampaignService for CampaignApi {
    async fn create_campaign(
        &self,
        request: Request<CreateCampaignRequest>,
    ) -> Result<Response<CreateCampaignResponse>, Status> {
        let created_by = caller_name(&request);
        let campaign = self
            .create(request.into_inner(), created_by)
            .await
            .map_err(status_from_error)?;
        Ok(Response::new(CreateCampaignResponse {
            campaign: Some(campaign),
        }))
    }

    async fn get_campaign(
        &self,
        request: Request<GetCampaignRequest>,
    ) -> Result<Response<GetCampaignResponse>, Status> {
        let found = async {
            let campaign_id = CampaignId::parse("campaign_id", request.get_ref().campaign_id)?;
            campaign_message(&self.campaigns.get(campaign_id).await?)
        };
        let campaign = found.await.map_err(status_from_error)?;
        Ok(Response::new(GetCampaignResponse {
            campaign: Some(campaign),
        }))
    }

    async fn list_campaigns(
        &self,
        request: Request<ListCampaignsRequest>,
    ) -> Result<Response<ListCampaignsResponse>, Status> {
        self.list(request.into_inner())
            .await
            .map(Response::new)
            .map_err(status_from_error)
    }

    async fn launch_campaign(
        &self,
        request: Request<LaunchCampaignRequest>,
    ) -> Result<Response<LaunchCampaignResponse>, Status> {
        note_audit_target(
            request.extensions(),
            format!("campaign {}", request.get_ref().campaign_id),
        );
        let actor = caller_name(&request).unwrap_or_else(|| "anonymous".to_owned());
        let launched = async {
            let campaign_id = CampaignId::parse("campaign_id", request.get_ref().campaign_id)?;
            campaign_message(&self.campaigns.launch(campaign_id, &actor).await?)
        };
        let campaign = launched.await.map_err(status_from_error)?;
        Ok(Response::new(LaunchCampaignResponse {
            campaign: Some(campaign),
        }))
    }

    async fn get_campaign_results(
        &self,
        request: Request<GetCampaignResultsRequest>,
    ) -> Result<Response<GetCampaignResultsResponse>, Status> {
        self.results(request.get_ref().campaign_id)
            .await
            .map(Response::new)
            .map_err(status_from_error)
    }

    async fn cancel_campaign(
        &self,
        request: Request<CancelCampaignRequest>,
    ) -> Result<Response<CancelCampaignResponse>, Status> {
        note_audit_target(
            request.extensions(),
            format!("campaign {}", request.get_ref().campaign_id),
        );
        let cancelled = async {
            let campaign_id = CampaignId::parse("campaign_id", request.get_ref().campaign_id)?;
            campaign_message(&self.campaigns.cancel(campaign_id).await?)
        };
        let campaign = cancelled.await.map_err(status_from_error)?;
        Ok(Response::new(CancelCampaignResponse {
            campaign: Some(campaign),
        }))
    }
}

/// The stored word of a proto enum value (`CHANNEL_EMAIL` -> `email`); unspecified is
/// refused.
fn enum_word(field: &str, name: Option<&str>, prefix: &str) -> Result<String> {
    match name.and_then(|name| name.strip_prefix(prefix)) {
        Some(word) if word != "UNSPECIFIED" => Ok(word.to_ascii_lowercase()),
        _ => Err(Error::invalid_argument(
            field,
            format!("must be set to one of the {prefix}* values"),
        )),
    }
}

fn status_word(status: CampaignStatus) -> &'static str {
    match status {
        CampaignStatus::Unspecified => "",
        CampaignStatus::Draft => "draft",
        CampaignStatus::Scheduled => "scheduled",
        CampaignStatus::Launched => "launched",
        CampaignStatus::Completed => "completed",
        CampaignStatus::Cancelled => "cancelled",
    }
}

fn status_enum(stored: &str) -> CampaignStatus {
    match stored {
        "draft" => CampaignStatus::Draft,
        "scheduled" => CampaignStatus::Scheduled,
        "launched" => CampaignStatus::Launched,
        "completed" => CampaignStatus::Completed,
        "cancelled" => CampaignStatus::Cancelled,
        _ => CampaignStatus::Unspecified,
    }
}

fn channel_enum(stored: &str) -> Channel {
    let name = format!("CHANNEL_{}", stored.to_ascii_uppercase());
    Channel::from_str_name(&name).unwrap_or(Channel::Unspecified)
}

/// The message for a stored campaign.
fn campaign_message(row: &campaigns::Model) -> Result<Campaign> {
    let cluster_ids: Vec<i64> = serde_json::from_value(row.cluster_ids.clone())
        .map_err(|error| Error::Internal(format!("stored cluster ids: {error}")))?;
    let filter: TargetFilter = serde_json::from_value(row.filter.clone())
        .map_err(|error| Error::Internal(format!("stored target filter: {error}")))?;
    let exclusions: Option<ExclusionCounts> = row
        .exclusions
        .clone()
        .map(serde_json::from_value)
        .transpose()
        .map_err(|error| Error::Internal(format!("stored exclusions: {error}")))?;
    let amount = |value: Option<f64>| value.map(format_amount).unwrap_or_default();
    let days = |value: Option<u32>| value.and_then(|days| i32::try_from(days).ok()).unwrap_or(0);
    let count = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
    Ok(Campaign {
        campaign_id: row.id,
        name: row.name.clone(),
        description: row.description.clone(),
        status: status_enum(&row.status).into(),
        campaign_type: campaign_type(&row.campaign_type).into(),
        channel: channel_enum(&row.channel).into(),
        cluster_ids,
        filter: Some(crmbet_proto::v1::TargetFilter {
            min_monetary: amount(filter.min_monetary),
            max_monetary: amount(filter.max_monetary),
            min_recency_days: days(filter.min_recency_days),
            max_recency_days: days(filter.max_recency_days),
            countries: filter.countries,
        }),
        holdout_share: row.holdout_share,
        message_template: row.message_template.clone(),
        created_at: Some(timestamp(row.created_at)),
        launched_at: row.launched_at.map(timestamp),
        created_by: row.created_by.clone().unwrap_or_default(),
        treatment_count: row.treatment_count,
        control_count: row.control_count,
        start_at: row.start_at.map(timestamp),
        trigger: if row.trigger == TRIGGER_ON_ENTRY {
            CampaignTrigger::OnEntry
        } else {
            CampaignTrigger::Launch
        }
        .into(),
        exclusions: exclusions.map(|counts| crmbet_proto::v1::ExclusionCounts {
            self_excluded: count(counts.self_excluded),
            blocked: count(counts.blocked),
            opted_out: count(counts.opted_out),
            frequency_capped: count(counts.frequency_capped),
            filtered_out: count(counts.filtered_out),
        }),
        cancelled_at: row.cancelled_at.map(timestamp),
    })
}

fn funnel_message(funnel: &Funnel) -> CampaignFunnel {
    let count = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
    CampaignFunnel {
        players: count(funnel.players),
        sent: count(funnel.sent),
        delivered: count(funnel.delivered),
        opened: count(funnel.opened),
        clicked: count(funnel.clicked),
        converted: count(funnel.converted),
        conversion_rate: funnel.conversion_rate(),
        deposits: money(funnel.deposits),
    }
}

fn estimate_message(estimate: crmbet_app::uplift::Estimate) -> Estimate {
    Estimate {
        difference: estimate.difference,
        ci_low: estimate.ci_low,
        ci_high: estimate.ci_high,
        p_value: estimate.p_value,
    }
}

fn cluster_results(cluster_id: i64, comparison: &Comparison) -> ClusterResults {
    ClusterResults {
        cluster_id,
        treatment: Some(funnel_message(&comparison.treatment)),
        control: Some(funnel_message(&comparison.control)),
        conversion_uplift: comparison.conversion_uplift.map(estimate_message),
        revenue_per_player: comparison.revenue_per_player.map(estimate_message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_values_become_stored_words() {
        assert_eq!(
            enum_word("channel", Some("CHANNEL_EMAIL"), "CHANNEL_").ok(),
            Some("email".to_owned())
        );
        assert_eq!(
            enum_word(
                "campaign_type",
                Some("CAMPAIGN_TYPE_RELOAD_BONUS"),
                "CAMPAIGN_TYPE_"
            )
            .ok(),
            Some("reload_bonus".to_owned())
        );
        assert!(enum_word("channel", Some("CHANNEL_UNSPECIFIED"), "CHANNEL_").is_err());
        assert!(enum_word("channel", None, "CHANNEL_").is_err());
        assert_eq!(channel_enum("push"), Channel::Push);
        assert_eq!(
            status_enum(status_word(CampaignStatus::Scheduled)),
            CampaignStatus::Scheduled
        );
    }
}
