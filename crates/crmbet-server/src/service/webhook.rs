//! SmarticoWebhookService: the event store arrives with the Smartico capability; until then
//! the webhook answers UNIMPLEMENTED (so Smartico retries later and nothing is lost).

use crmbet_proto::v1::smartico_webhook_service_server::SmarticoWebhookService;
use crmbet_proto::v1::{ReceiveEventRequest, ReceiveEventResponse};
use tonic::{Request, Response, Status};

use crate::service::not_available;

const CAPABILITY: &str = "the Smartico webhook (signed, idempotent event store)";

/// Serves SmarticoWebhookService.
#[derive(Debug, Clone, Default)]
pub struct SmarticoWebhookApi;

#[tonic::async_trait]
impl SmarticoWebhookService for SmarticoWebhookApi {
    async fn receive_event(
        &self,
        _request: Request<ReceiveEventRequest>,
    ) -> Result<Response<ReceiveEventResponse>, Status> {
        Err(not_available(CAPABILITY))
    }
}
