//! NotificationService: operators' webhooks for segment changes, over the use cases of
//! `crmbet-app`.

use crmbet_app::SegmentWebhooks;
use crmbet_proto::v1::notification_service_server::NotificationService;
use crmbet_proto::v1::{
    CreateWebhookRequest, CreateWebhookResponse, DeleteWebhookRequest, DeleteWebhookResponse,
    ListWebhookDeadLettersRequest, ListWebhookDeadLettersResponse, ListWebhooksRequest,
    ListWebhooksResponse, Webhook, WebhookDeadLetter,
};
use crmbet_store::entity::{webhook_dead_letters, webhook_endpoints};
use tonic::{Request, Response, Status};

use crate::auth::note_audit_target;
use crate::convert::timestamp;
use crate::service::campaign::caller_name;
use crate::status::status_from_error;

/// Serves NotificationService.
#[derive(Debug, Clone)]
pub struct NotificationApi {
    webhooks: SegmentWebhooks,
}

impl NotificationApi {
    pub fn new(webhooks: SegmentWebhooks) -> Self {
        Self { webhooks }
    }
}

#[tonic::async_trait]
impl NotificationService for NotificationApi {
    async fn create_webhook(
        &self,
        request: Request<CreateWebhookRequest>,
    ) -> Result<Response<CreateWebhookResponse>, Status> {
        let created_by = caller_name(&request);
        let CreateWebhookRequest { url, description } = request.into_inner();
        let registered = self
            .webhooks
            .register(&url, &description, created_by)
            .await
            .map_err(status_from_error)?;
        Ok(Response::new(CreateWebhookResponse {
            webhook: Some(webhook_message(&registered.endpoint, 0)),
            secret: registered.secret,
        }))
    }

    async fn list_webhooks(
        &self,
        _request: Request<ListWebhooksRequest>,
    ) -> Result<Response<ListWebhooksResponse>, Status> {
        let listed = self.webhooks.list().await.map_err(status_from_error)?;
        Ok(Response::new(ListWebhooksResponse {
            webhooks: listed
                .iter()
                .map(|(endpoint, dead_letters)| webhook_message(endpoint, *dead_letters))
                .collect(),
        }))
    }

    async fn delete_webhook(
        &self,
        request: Request<DeleteWebhookRequest>,
    ) -> Result<Response<DeleteWebhookResponse>, Status> {
        let webhook_id = request.get_ref().webhook_id;
        note_audit_target(request.extensions(), format!("webhook {webhook_id}"));
        self.webhooks
            .remove(webhook_id)
            .await
            .map_err(status_from_error)?;
        Ok(Response::new(DeleteWebhookResponse {}))
    }

    async fn list_webhook_dead_letters(
        &self,
        request: Request<ListWebhookDeadLettersRequest>,
    ) -> Result<Response<ListWebhookDeadLettersResponse>, Status> {
        let letters = self
            .webhooks
            .dead_letters(request.get_ref().webhook_id)
            .await
            .map_err(status_from_error)?;
        Ok(Response::new(ListWebhookDeadLettersResponse {
            dead_letters: letters.iter().map(dead_letter_message).collect(),
        }))
    }
}

/// The message of a webhook; never its secret.
fn webhook_message(endpoint: &webhook_endpoints::Model, dead_letters: i64) -> Webhook {
    Webhook {
        webhook_id: endpoint.id,
        url: endpoint.url.clone(),
        description: endpoint.description.clone(),
        delivered_through: endpoint.delivered_through.to_string(),
        changes_delivered: endpoint.changes_delivered,
        failures: endpoint.failures,
        last_error: endpoint.last_error.clone().unwrap_or_default(),
        next_attempt_at: Some(timestamp(endpoint.next_attempt_at)),
        dead_letters,
        created_by: endpoint.created_by.clone().unwrap_or_default(),
        created_at: Some(timestamp(endpoint.created_at)),
    }
}

fn dead_letter_message(letter: &webhook_dead_letters::Model) -> WebhookDeadLetter {
    WebhookDeadLetter {
        dead_letter_id: letter.id,
        webhook_id: letter.endpoint_id,
        first_cursor: letter.first_change_id.to_string(),
        last_cursor: letter.last_change_id.to_string(),
        body: letter.body.clone(),
        attempts: letter.attempts,
        last_error: letter.last_error.clone(),
        failed_at: Some(timestamp(letter.failed_at)),
    }
}
