//! SmarticoWebhookService: stores Smartico's events about campaign messages once each,
//! after [`crate::webhook_auth`] checked their credentials. Answers only once the event is
//! committed, so an acknowledged event is never lost.

use crmbet_app::{CampaignEvent, Campaigns};
use crmbet_proto::v1::smartico_webhook_service_server::SmarticoWebhookService;
use crmbet_proto::v1::{ReceiveEventRequest, ReceiveEventResponse};
use prost::Message;
use tonic::{Request, Response, Status};

use crate::auth::ClientAddress;
use crate::convert::instant;
use crate::status::status_from_error;
use crate::webhook_auth::{VerifiedWebhook, WebhookAuth};

/// Serves SmarticoWebhookService.
#[derive(Debug, Clone)]
pub struct SmarticoWebhookApi {
    campaigns: Campaigns,
    auth: WebhookAuth,
}

impl SmarticoWebhookApi {
    /// A service storing events through `campaigns`, checking gRPC callers with `auth`.
    pub fn new(campaigns: Campaigns, auth: WebhookAuth) -> Self {
        Self { campaigns, auth }
    }

    /// A REST call was checked over its raw body already; a gRPC or grpc-web call is
    /// checked here over its encoded message.
    fn check_credentials(&self, request: &Request<ReceiveEventRequest>) -> Result<(), Status> {
        if request.extensions().get::<VerifiedWebhook>().is_some() {
            return Ok(());
        }
        let headers = request.metadata().clone().into_headers();
        let client = request
            .extensions()
            .get::<ClientAddress>()
            .map(|address| address.0);
        let body = request.get_ref().encode_to_vec();
        self.auth
            .verify(&headers, &body, client, chrono::Utc::now().timestamp())
    }
}

#[tonic::async_trait]
impl SmarticoWebhookService for SmarticoWebhookApi {
    async fn receive_event(
        &self,
        request: Request<ReceiveEventRequest>,
    ) -> Result<Response<ReceiveEventResponse>, Status> {
        self.check_credentials(&request)?;
        let request = request.into_inner();
        let occurred_at = request
            .occurred_at
            .as_ref()
            .map(|occurred| instant("occurred_at", occurred))
            .transpose()
            .map_err(status_from_error)?;
        let attributes = request
            .attributes
            .as_ref()
            .map(struct_json)
            .unwrap_or_else(|| serde_json::json!({}));
        let event_id = request.event_id.clone();
        let duplicate = self
            .campaigns
            .record_event(CampaignEvent {
                event_id: request.event_id,
                event_type: request.event_type,
                campaign_id: request.campaign_id,
                user_id: request.user_id,
                occurred_at,
                attributes,
            })
            .await
            .map_err(status_from_error)?;
        Ok(Response::new(ReceiveEventResponse {
            event_id,
            duplicate,
        }))
    }
}

/// A protobuf Struct as JSON.
fn struct_json(value: &prost_types::Struct) -> serde_json::Value {
    serde_json::Value::Object(
        value
            .fields
            .iter()
            .map(|(name, value)| (name.clone(), value_json(value)))
            .collect(),
    )
}

fn value_json(value: &prost_types::Value) -> serde_json::Value {
    use prost_types::value::Kind;
    match &value.kind {
        None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
        Some(Kind::NumberValue(number)) => serde_json::Number::from_f64(*number)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        Some(Kind::StringValue(text)) => serde_json::Value::String(text.clone()),
        Some(Kind::BoolValue(flag)) => serde_json::Value::Bool(*flag),
        Some(Kind::StructValue(inner)) => struct_json(inner),
        Some(Kind::ListValue(list)) => {
            serde_json::Value::Array(list.values.iter().map(value_json).collect())
        }
    }
}
