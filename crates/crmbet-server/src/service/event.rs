//! EventService: live transactions from the operator's platform, as a client stream of
//! batches or one batch (also `POST /api/v1/events`). Each batch is answered, or counted in
//! the stream's answer, only once it is committed.

use crmbet_app::{IngestReport, IntakeSource, LiveTransaction};
use crmbet_proto::v1::event_service_server::EventService;
use crmbet_proto::v1::{
    IngestBatchRequest, IngestBatchResponse, IngestOutcome, IngestRequest, IngestResponse,
    RejectedTransaction,
};
use tonic::{Request, Response, Status, Streaming};

use crate::live_ingest::LiveIngest;
use crate::live_messages::live_transaction;
use crate::metrics::Protocol;
use crate::status::status_from_error;

/// Serves EventService.
#[derive(Debug, Clone)]
pub struct EventApi {
    live_play: LiveIngest,
}

impl EventApi {
    pub fn new(live_play: LiveIngest) -> Self {
        Self { live_play }
    }
}

#[tonic::async_trait]
impl EventService for EventApi {
    async fn ingest(
        &self,
        request: Request<Streaming<IngestRequest>>,
    ) -> Result<Response<IngestResponse>, Status> {
        let mut stream = request.into_inner();
        let mut outcome = IngestOutcome::default();
        let mut offset = 0_u64;
        while let Some(batch) = stream.message().await? {
            let transactions: Vec<LiveTransaction> = batch
                .transactions
                .into_iter()
                .map(live_transaction)
                .collect();
            let report = self
                .live_play
                .ingest(&transactions, IntakeSource::Grpc)
                .await
                .map_err(|error| {
                    let status = status_from_error(error);
                    Status::new(
                        status.code(),
                        format!(
                            "{} (the stream's batches before transaction {offset} are stored)",
                            status.message()
                        ),
                    )
                })?;
            add_report(&mut outcome, &report, offset);
            offset += transactions.len() as u64;
        }
        Ok(Response::new(IngestResponse {
            outcome: Some(outcome),
        }))
    }

    async fn ingest_batch(
        &self,
        request: Request<IngestBatchRequest>,
    ) -> Result<Response<IngestBatchResponse>, Status> {
        // REST calls reach this method in process, marked with their protocol.
        let source = match request.extensions().get::<Protocol>() {
            Some(Protocol::Rest) => IntakeSource::Rest,
            _ => IntakeSource::Grpc,
        };
        let transactions: Vec<LiveTransaction> = request
            .into_inner()
            .transactions
            .into_iter()
            .map(live_transaction)
            .collect();
        let report = self
            .live_play
            .ingest(&transactions, source)
            .await
            .map_err(status_from_error)?;
        let mut outcome = IngestOutcome::default();
        add_report(&mut outcome, &report, 0);
        Ok(Response::new(IngestBatchResponse {
            outcome: Some(outcome),
        }))
    }
}

/// Adds a batch's report to the outcome; `offset` is the batch's first index in a stream.
fn add_report(outcome: &mut IngestOutcome, report: &IngestReport, offset: u64) {
    outcome.accepted += report.accepted;
    outcome.duplicates += report.duplicates;
    outcome.quarantined += report.rejected.len() as u64;
    outcome
        .rejected
        .extend(report.rejected.iter().map(|rejected| RejectedTransaction {
            index: offset + rejected.index as u64,
            transaction_id: rejected.transaction_id.clone().unwrap_or_default(),
            rule: rejected.rule.name().to_owned(),
        }));
}
