//! TrainingService: training arrives with the segmentation capability; until then every
//! call answers UNIMPLEMENTED and names what is missing.

use std::pin::Pin;

use crmbet_proto::v1::training_service_server::TrainingService;
use crmbet_proto::v1::{
    ActivateModelRequest, ActivateModelResponse, GetTrainingRunRequest, GetTrainingRunResponse,
    ListModelsRequest, ListModelsResponse, StartTrainingRequest, StartTrainingResponse,
    WatchTrainingRunRequest, WatchTrainingRunResponse,
};
use futures::Stream;
use tonic::{Request, Response, Status};

use crate::service::not_available;

const CAPABILITY: &str = "model training (linfa segmentation, model versions)";

/// Serves TrainingService.
#[derive(Debug, Clone, Default)]
pub struct TrainingApi;

type TrainingEvents = Pin<Box<dyn Stream<Item = Result<WatchTrainingRunResponse, Status>> + Send>>;

#[tonic::async_trait]
impl TrainingService for TrainingApi {
    type WatchTrainingRunStream = TrainingEvents;

    async fn start_training(
        &self,
        _request: Request<StartTrainingRequest>,
    ) -> Result<Response<StartTrainingResponse>, Status> {
        Err(not_available(CAPABILITY))
    }

    async fn get_training_run(
        &self,
        _request: Request<GetTrainingRunRequest>,
    ) -> Result<Response<GetTrainingRunResponse>, Status> {
        Err(not_available(CAPABILITY))
    }

    async fn watch_training_run(
        &self,
        _request: Request<WatchTrainingRunRequest>,
    ) -> Result<Response<Self::WatchTrainingRunStream>, Status> {
        Err(not_available(CAPABILITY))
    }

    async fn list_models(
        &self,
        _request: Request<ListModelsRequest>,
    ) -> Result<Response<ListModelsResponse>, Status> {
        Err(not_available(CAPABILITY))
    }

    async fn activate_model(
        &self,
        _request: Request<ActivateModelRequest>,
    ) -> Result<Response<ActivateModelResponse>, Status> {
        Err(not_available(CAPABILITY))
    }
}
