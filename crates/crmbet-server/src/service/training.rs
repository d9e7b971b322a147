//! TrainingService: start a training run, watch its progress as a stream, read runs, list
//! model versions and activate one.

use std::pin::Pin;

use crmbet_core::{Error, ModelId, PageSize, PageToken, Result, TrainingRunId};
use crmbet_ml::Metrics;
use crmbet_proto::v1::training_service_server::TrainingService;
use crmbet_proto::v1::{
    ActivateModelRequest, ActivateModelResponse, Algorithm, GetTrainingRunRequest,
    GetTrainingRunResponse, ListModelsRequest, ListModelsResponse, Model, ModelMetrics,
    StartTrainingRequest, StartTrainingResponse, TrainingRun, TrainingStage, TrainingStatus,
    WatchTrainingRunRequest, WatchTrainingRunResponse,
};
use crmbet_store::entity::training_runs;
use crmbet_store::{StoredModel, TrainingStatus as StoredStatus};
use futures::{Stream, StreamExt};
use tokio_stream::wrappers::BroadcastStream;
use tonic::{Request, Response, Status};

use crate::auth::{Principal, note_audit_target};
use crate::convert::timestamp;
use crate::status::status_from_error;
use crmbet_app::training::{
    RunState, Trainer, TrainingEvent, TrainingRequest, TrainingStage as Stage,
};

/// Serves TrainingService with a [`Trainer`].
#[derive(Debug, Clone)]
pub struct TrainingApi {
    trainer: Trainer,
}

impl TrainingApi {
    /// A service starting runs on `trainer`.
    pub fn new(trainer: Trainer) -> Self {
        Self { trainer }
    }

    async fn start_training(
        &self,
        request: StartTrainingRequest,
        requested_by: Option<String>,
    ) -> Result<StartTrainingResponse> {
        let algorithm = match Algorithm::try_from(request.algorithm) {
            Ok(Algorithm::Unspecified | Algorithm::Auto) => crmbet_ml::Algorithm::Auto,
            Ok(Algorithm::Kmeans) => crmbet_ml::Algorithm::KMeans,
            Ok(Algorithm::Dbscan) => crmbet_ml::Algorithm::Dbscan,
            Ok(Algorithm::Hdbscan) => crmbet_ml::Algorithm::Hdbscan,
            Ok(Algorithm::Ensemble) => crmbet_ml::Algorithm::Ensemble,
            Err(_) => {
                return Err(Error::invalid_argument(
                    "algorithm",
                    format!("unknown algorithm {}", request.algorithm),
                ));
            }
        };
        let k = match request.k {
            0 => None,
            k => Some(usize::try_from(k).map_err(|_| {
                Error::invalid_argument(
                    "k",
                    format!("must be between 2 and 50 (or 0 to choose automatically), got {k}"),
                )
            })?),
        };
        let run_id = self
            .trainer
            .start(TrainingRequest {
                algorithm,
                k,
                seed: request.seed,
                activate: request.activate,
                requested_by,
            })
            .await?;
        Ok(StartTrainingResponse { run_id: run_id.0 })
    }

    async fn training_run(&self, run_id: i64) -> Result<TrainingRun> {
        let run_id = TrainingRunId::parse("run_id", run_id)?;
        let run = self.trainer.store().training_run(run_id).await?;
        Ok(run_message(&run))
    }

    async fn list_models(&self, request: ListModelsRequest) -> Result<ListModelsResponse> {
        let page_size = PageSize::parse(request.page_size)?;
        let scope = "models";
        let before = PageToken::decode(&request.page_token, scope)?
            .map(|key| {
                key.parse::<i64>()
                    .map_err(|_| Error::invalid_argument("page_token", "is not valid"))
            })
            .transpose()?;
        let limit = u64::from(page_size.get());
        let mut rows = self.trainer.store().list_models(before, limit + 1).await?;
        let next_page_token = if rows.len() as u64 > limit {
            rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            rows.last()
                .map(|last| PageToken::new(scope, last.model.id.to_string()).encode())
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(ListModelsResponse {
            models: rows.iter().map(model_message).collect(),
            next_page_token,
        })
    }

    async fn activate_model(
        &self,
        request: ActivateModelRequest,
        activated_by: Option<String>,
    ) -> Result<ActivateModelResponse> {
        let model_id = ModelId::parse("model_id", request.model_id)?;
        let stored = self
            .trainer
            .store()
            .activate_model(model_id, activated_by)
            .await?;
        Ok(ActivateModelResponse {
            model: Some(model_message(&stored)),
        })
    }

    async fn watch(&self, run_id: i64) -> Result<TrainingEvents> {
        let run_id = TrainingRunId::parse("run_id", run_id)?;
        let stored = self.trainer.store().training_run(run_id).await?;
        let Some(watch) = self.trainer.watch(run_id) else {
            // Trained by another process or long ago: its stored state is all there is.
            return Ok(Box::pin(futures::stream::once(async move {
                Ok(stored_event(&stored))
            })));
        };
        let history = futures::stream::iter(
            watch
                .history
                .into_iter()
                .map(|event| Ok(event_message(&event)))
                .collect::<Vec<_>>(),
        );
        let Some(live) = watch.live else {
            return Ok(Box::pin(history));
        };
        // Live events until the one that ends the run; a lagging watcher skips what it
        // missed rather than stalling training.
        // The stream ends right after the ending event, without waiting for another.
        let events = BroadcastStream::new(live).filter_map(|item| async move { item.ok() });
        let live = futures::stream::unfold(
            (Box::pin(events), false),
            |(mut events, ended)| async move {
                if ended {
                    return None;
                }
                let event = events.next().await?;
                let ends = event.state != RunState::Running;
                Some((Ok(event_message(&event)), (events, ends)))
            },
        );
        Ok(Box::pin(history.chain(live)))
    }
}

type TrainingEvents = Pin<Box<dyn Stream<Item = Result<WatchTrainingRunResponse, Status>> + Send>>;

#[tonic::async_trait]
impl TrainingService for TrainingApi {
    type WatchTrainingRunStream = TrainingEvents;

    async fn start_training(
        &self,
        request: Request<StartTrainingRequest>,
    ) -> Result<Response<StartTrainingResponse>, Status> {
        let requested_by = caller_name(&request);
        let started = self
            .start_training(*request.get_ref(), requested_by)
            .await
            .map_err(status_from_error)?;
        note_audit_target(
            request.extensions(),
            format!("training run {}", started.run_id),
        );
        Ok(Response::new(started))
    }

    async fn get_training_run(
        &self,
        request: Request<GetTrainingRunRequest>,
    ) -> Result<Response<GetTrainingRunResponse>, Status> {
        self.training_run(request.into_inner().run_id)
            .await
            .map(|run| Response::new(GetTrainingRunResponse { run: Some(run) }))
            .map_err(status_from_error)
    }

    async fn watch_training_run(
        &self,
        request: Request<WatchTrainingRunRequest>,
    ) -> Result<Response<Self::WatchTrainingRunStream>, Status> {
        self.watch(request.into_inner().run_id)
            .await
            .map(Response::new)
            .map_err(status_from_error)
    }

    async fn list_models(
        &self,
        request: Request<ListModelsRequest>,
    ) -> Result<Response<ListModelsResponse>, Status> {
        self.list_models(request.into_inner())
            .await
            .map(Response::new)
            .map_err(status_from_error)
    }

    async fn activate_model(
        &self,
        request: Request<ActivateModelRequest>,
    ) -> Result<Response<ActivateModelResponse>, Status> {
        note_audit_target(
            request.extensions(),
            format!("model {}", request.get_ref().model_id),
        );
        let activated_by = caller_name(&request);
        self.activate_model(request.into_inner(), activated_by)
            .await
            .map(Response::new)
            .map_err(status_from_error)
    }
}

/// The username of the caller's access token, if the access layer verified one.
fn caller_name<Message>(request: &Request<Message>) -> Option<String> {
    request
        .extensions()
        .get::<Principal>()
        .map(|principal| principal.username.clone())
}

fn algorithm_enum(stored: &str) -> Algorithm {
    match stored {
        "auto" => Algorithm::Auto,
        "kmeans" => Algorithm::Kmeans,
        "dbscan" => Algorithm::Dbscan,
        "hdbscan" => Algorithm::Hdbscan,
        "ensemble" => Algorithm::Ensemble,
        _ => Algorithm::Unspecified,
    }
}

fn stage_enum(stage: Stage) -> TrainingStage {
    match stage {
        Stage::LoadingFeatures => TrainingStage::LoadingFeatures,
        Stage::Transforming => TrainingStage::Transforming,
        Stage::Fitting => TrainingStage::Fitting,
        Stage::Evaluating => TrainingStage::Evaluating,
        Stage::Naming => TrainingStage::Naming,
        Stage::Saving => TrainingStage::Saving,
        Stage::Done => TrainingStage::Done,
    }
}

fn status_enum(status: StoredStatus) -> TrainingStatus {
    match status {
        StoredStatus::Queued => TrainingStatus::Queued,
        StoredStatus::Running => TrainingStatus::Running,
        StoredStatus::Succeeded => TrainingStatus::Succeeded,
        StoredStatus::Failed => TrainingStatus::Failed,
    }
}

fn metrics_message(metrics: &Metrics) -> ModelMetrics {
    ModelMetrics {
        silhouette: metrics.silhouette,
        davies_bouldin: metrics.davies_bouldin,
        calinski_harabasz: metrics.calinski_harabasz,
        stability: metrics.stability,
        cluster_sizes: metrics
            .cluster_sizes
            .iter()
            .map(|size| i64::try_from(*size).unwrap_or(i64::MAX))
            .collect(),
        noise_share: metrics.noise_fraction,
    }
}

fn event_message(event: &TrainingEvent) -> WatchTrainingRunResponse {
    let status = match event.state {
        RunState::Running => TrainingStatus::Running,
        RunState::Succeeded => TrainingStatus::Succeeded,
        RunState::Failed => TrainingStatus::Failed,
    };
    WatchTrainingRunResponse {
        run_id: event.run_id.0,
        status: status.into(),
        stage: stage_enum(event.stage).into(),
        percent: event.percent,
        message: event.message.clone(),
        metrics: event.metrics.as_ref().map(metrics_message),
        emitted_at: Some(timestamp(event.emitted_at)),
    }
}

fn stored_event(run: &training_runs::Model) -> WatchTrainingRunResponse {
    let message = run.error.clone().unwrap_or_else(|| match run.model_id {
        Some(model_id) => format!("model {model_id}"),
        None => format!("run is {}", run.status),
    });
    WatchTrainingRunResponse {
        run_id: run.id,
        status: status_enum(StoredStatus::parse(&run.status)).into(),
        stage: Stage::parse(&run.stage)
            .map_or(TrainingStage::Unspecified, stage_enum)
            .into(),
        percent: run.percent,
        message,
        metrics: None,
        emitted_at: Some(timestamp(run.finished_at.unwrap_or(run.started_at))),
    }
}

fn run_message(run: &training_runs::Model) -> TrainingRun {
    TrainingRun {
        run_id: run.id,
        status: status_enum(StoredStatus::parse(&run.status)).into(),
        algorithm: algorithm_enum(&run.algorithm).into(),
        k: run.k,
        seed: u64::from_ne_bytes(run.seed.to_ne_bytes()),
        stage: Stage::parse(&run.stage)
            .map_or(TrainingStage::Unspecified, stage_enum)
            .into(),
        percent: run.percent,
        started_at: Some(timestamp(run.started_at)),
        finished_at: run.finished_at.map(timestamp),
        model_id: run.model_id.unwrap_or_default(),
        error: run.error.clone().unwrap_or_default(),
    }
}

fn model_message(stored: &StoredModel) -> Model {
    let model = &stored.model;
    let metric = |name: &str| {
        model
            .metrics
            .get(name)
            .and_then(serde_json::Value::as_f64)
            .unwrap_or_default()
    };
    let cluster_sizes = model
        .metrics
        .get("cluster_sizes")
        .and_then(serde_json::Value::as_array)
        .map(|sizes| sizes.iter().filter_map(serde_json::Value::as_i64).collect())
        .unwrap_or_default();
    Model {
        model_id: model.id,
        version: model.version,
        algorithm: algorithm_enum(&model.algorithm).into(),
        active: stored.active,
        k: model.k,
        metrics: Some(ModelMetrics {
            silhouette: metric("silhouette"),
            davies_bouldin: metric("davies_bouldin"),
            calinski_harabasz: metric("calinski_harabasz"),
            stability: metric("stability"),
            cluster_sizes,
            noise_share: metric("noise_fraction"),
        }),
        etl_run_id: model.etl_run_id.unwrap_or_default(),
        features: model
            .feature_names
            .as_array()
            .map(|names| {
                names
                    .iter()
                    .filter_map(|name| name.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        selection_reason: model.selection_reason.clone(),
        created_at: Some(timestamp(model.created_at)),
    }
}
