//! CampaignService: campaigns arrive with the campaign capability; until then every call
//! answers UNIMPLEMENTED and names what is missing.

use crmbet_proto::v1::campaign_service_server::CampaignService;
use crmbet_proto::v1::{
    CreateCampaignRequest, CreateCampaignResponse, GetCampaignRequest, GetCampaignResponse,
    GetCampaignResultsRequest, GetCampaignResultsResponse, LaunchCampaignRequest,
    LaunchCampaignResponse, ListCampaignsRequest, ListCampaignsResponse,
};
use tonic::{Request, Response, Status};

use crate::auth::note_audit_target;
use crate::service::not_available;

const CAPABILITY: &str = "campaigns (create, launch through the outbox, results)";

/// Serves CampaignService.
#[derive(Debug, Clone, Default)]
pub struct CampaignApi;

#[tonic::async_trait]
impl CampaignService for CampaignApi {
    async fn create_campaign(
        &self,
        _request: Request<CreateCampaignRequest>,
    ) -> Result<Response<CreateCampaignResponse>, Status> {
        Err(not_available(CAPABILITY))
    }

    async fn get_campaign(
        &self,
        _request: Request<GetCampaignRequest>,
    ) -> Result<Response<GetCampaignResponse>, Status> {
        Err(not_available(CAPABILITY))
    }

    async fn list_campaigns(
        &self,
        _request: Request<ListCampaignsRequest>,
    ) -> Result<Response<ListCampaignsResponse>, Status> {
        Err(not_available(CAPABILITY))
    }

    async fn launch_campaign(
        &self,
        request: Request<LaunchCampaignRequest>,
    ) -> Result<Response<LaunchCampaignResponse>, Status> {
        note_audit_target(
            request.extensions(),
            format!("campaign {}", request.get_ref().campaign_id),
        );
        Err(not_available(CAPABILITY))
    }

    async fn get_campaign_results(
        &self,
        _request: Request<GetCampaignResultsRequest>,
    ) -> Result<Response<GetCampaignResultsResponse>, Status> {
        Err(not_available(CAPABILITY))
    }
}
