//! Training runs: load the latest ETL run's features, train with `crmbet-ml` on a blocking
//! thread, store the model with its named clusters and every player's segment, and tell
//! whoever watches how far it has come.
//!
//! One [`Trainer`] serves TrainingService and `crmbet train` alike. At most one run trains
//! at a time per process (an in-process lock) and per database (a run left `running` makes
//! the next start fail with FAILED_PRECONDITION until it ends).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use crmbet_core::{Error, ModelId, Result, TrainingRunId};
use crmbet_ml::{Algorithm, FeatureTable, Metrics, Model, Progress, Stage, TrainOptions};
use crmbet_store::{
    FeatureRows, NewCluster, NewModel, NewSegment, NewTrainingRun, SavedModel, Store,
};
use ndarray::Array2;
use serde_json::json;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

/// Smallest and largest k a caller may ask for.
pub const K_RANGE: std::ops::RangeInclusive<usize> = 2..=50;
/// Events kept per run for watchers that join late.
const HISTORY_LIMIT: usize = 512;
/// Runs whose events stay in memory after they end, for late watchers.
const FINISHED_RUNS_KEPT: usize = 16;

/// Where a run is, in the order runs go through it (the proto's TrainingStage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TrainingStage {
    LoadingFeatures,
    Transforming,
    Fitting,
    Evaluating,
    Naming,
    Saving,
    Done,
}

impl TrainingStage {
    /// The word stored in `training_runs.stage`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LoadingFeatures => "loading_features",
            Self::Transforming => "transforming",
            Self::Fitting => "fitting",
            Self::Evaluating => "evaluating",
            Self::Naming => "naming",
            Self::Saving => "saving",
            Self::Done => "done",
        }
    }

    /// The stage a stored word names.
    pub fn parse(stored: &str) -> Option<Self> {
        [
            Self::LoadingFeatures,
            Self::Transforming,
            Self::Fitting,
            Self::Evaluating,
            Self::Naming,
            Self::Saving,
            Self::Done,
        ]
        .into_iter()
        .find(|stage| stage.as_str() == stored)
    }

    fn of_ml(stage: Stage) -> Self {
        match stage {
            Stage::Preparing => Self::Transforming,
            Stage::KMeans | Stage::Dbscan | Stage::Hdbscan | Stage::Ensemble => Self::Fitting,
            Stage::Selecting => Self::Evaluating,
            Stage::Naming | Stage::Done => Self::Naming,
        }
    }
}

/// Whether a run goes on, and how it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Running,
    Succeeded,
    Failed,
}

/// One progress event of a run.
#[derive(Debug, Clone)]
pub struct TrainingEvent {
    pub run_id: TrainingRunId,
    pub state: RunState,
    pub stage: TrainingStage,
    /// Over the whole run, 0..=100.
    pub percent: f64,
    pub message: String,
    pub metrics: Option<Metrics>,
    pub emitted_at: DateTime<Utc>,
}

/// What to train.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingRequest {
    pub algorithm: Algorithm,
    /// A fixed k for KMeans; `None` chooses it.
    pub k: Option<usize>,
    pub seed: u64,
    /// Activate the model when the run succeeds.
    pub activate: bool,
    /// Who asked, for the run's record.
    pub requested_by: Option<String>,
}

impl TrainingRequest {
    /// Checks the request before anything is written.
    pub fn validate(&self) -> Result<()> {
        if let Some(k) = self.k
            && !K_RANGE.contains(&k)
        {
            return Err(Error::invalid_argument(
                "k",
                format!(
                    "must be between {} and {} (or 0 to choose automatically), got {k}",
                    K_RANGE.start(),
                    K_RANGE.end()
                ),
            ));
        }
        Ok(())
    }
}

/// What a finished run produced.
#[derive(Debug, Clone)]
pub struct TrainingOutcome {
    pub run_id: TrainingRunId,
    pub model_id: ModelId,
    /// Cluster label in the model → cluster id of the API.
    pub cluster_ids: std::collections::BTreeMap<i32, i64>,
    pub model: Arc<Model>,
}

/// Events of one run: what happened so far, and a channel for what comes.
struct RunEvents {
    history: Vec<TrainingEvent>,
    sender: broadcast::Sender<TrainingEvent>,
    finished: bool,
}

#[derive(Default)]
struct TrainerState {
    running: Option<TrainingRunId>,
    runs: HashMap<TrainingRunId, RunEvents>,
    finished_order: Vec<TrainingRunId>,
}

/// Starts training runs and lets callers watch them.
#[derive(Clone)]
pub struct Trainer {
    store: Store,
    state: Arc<Mutex<TrainerState>>,
}

impl std::fmt::Debug for Trainer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Trainer").finish_non_exhaustive()
    }
}

/// A watcher's view of a run: the events so far and, unless it ended, a live channel.
pub struct RunWatch {
    pub history: Vec<TrainingEvent>,
    pub live: Option<broadcast::Receiver<TrainingEvent>>,
}

impl Trainer {
    /// A trainer over `store`.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            state: Arc::default(),
        }
    }

    /// The store runs read from and write to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Validates the request, records a new run and trains in the background; returns the
    /// run id at once. FAILED_PRECONDITION when a run is going on or no ETL run has features.
    pub async fn start(&self, request: TrainingRequest) -> Result<TrainingRunId> {
        let (run_id, _training) = self.launch(request).await?;
        Ok(run_id)
    }

    async fn launch(
        &self,
        request: TrainingRequest,
    ) -> Result<(TrainingRunId, JoinHandle<Result<TrainingOutcome>>)> {
        request.validate()?;
        let etl_run_id = self
            .store
            .latest_etl_run_with_features()
            .await?
            .ok_or_else(|| {
                Error::FailedPrecondition(
                    "no ETL run with player features yet; run `crmbet etl --lake <path>` first"
                        .to_owned(),
                )
            })?;
        {
            let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(running) = state.running {
                return Err(Error::FailedPrecondition(format!(
                    "training run {running} is still running; wait for it to finish \
                     (WatchTrainingRun) before starting another"
                )));
            }
        }
        let run_id = self
            .store
            .start_training_run(NewTrainingRun {
                algorithm: request.algorithm.to_string(),
                k: request
                    .k
                    .and_then(|k| i32::try_from(k).ok())
                    .unwrap_or_default(),
                seed: request.seed,
                activate: request.activate,
                created_by: request.requested_by.clone(),
            })
            .await?;
        // Another request may have started a run while ours was being recorded.
        let first = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            match state.running {
                Some(running) => Some(running),
                None => {
                    state.running = Some(run_id);
                    let (sender, _) = broadcast::channel(HISTORY_LIMIT);
                    state.runs.insert(
                        run_id,
                        RunEvents {
                            history: Vec::new(),
                            sender,
                            finished: false,
                        },
                    );
                    None
                }
            }
        };
        if let Some(running) = first {
            let reason = format!("training run {running} started first");
            self.store
                .finish_training_run(run_id, Err(reason.clone()))
                .await?;
            return Err(Error::FailedPrecondition(reason));
        }
        let trainer = self.clone();
        let training =
            tokio::spawn(async move { trainer.train(run_id, etl_run_id, request).await });
        Ok((run_id, training))
    }

    /// Starts a run and waits for its end, calling `on_event` with each event: for the CLI.
    pub async fn run(
        &self,
        request: TrainingRequest,
        mut on_event: impl FnMut(&TrainingEvent),
    ) -> Result<TrainingOutcome> {
        let (run_id, training) = self.launch(request).await?;
        let Some(watch) = self.watch(run_id) else {
            return Err(Error::Internal(format!("run {run_id} vanished")));
        };
        for event in &watch.history {
            on_event(event);
        }
        if let Some(mut live) = watch.live {
            loop {
                match live.recv().await {
                    Ok(event) => {
                        let ended = event.state != RunState::Running;
                        on_event(&event);
                        if ended {
                            break;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        }
        training
            .await
            .map_err(|error| Error::Internal(format!("training task: {error}")))?
    }

    /// The events of a run this process trains or trained recently; `None` otherwise (the
    /// caller then answers from the stored run).
    pub fn watch(&self, run_id: TrainingRunId) -> Option<RunWatch> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let events = state.runs.get(&run_id)?;
        Some(RunWatch {
            history: events.history.clone(),
            live: (!events.finished).then(|| events.sender.subscribe()),
        })
    }

    async fn train(
        &self,
        run_id: TrainingRunId,
        etl_run_id: crmbet_core::EtlRunId,
        request: TrainingRequest,
    ) -> Result<TrainingOutcome> {
        let outcome = self.train_and_save(run_id, etl_run_id, &request).await;
        let stored = match &outcome {
            Ok((saved, _)) => {
                self.store
                    .finish_training_run(run_id, Ok(saved.model_id))
                    .await
            }
            Err(error) => {
                tracing::warn!(run_id = run_id.0, %error, "training run failed");
                self.store
                    .finish_training_run(run_id, Err(error.to_string()))
                    .await
            }
        };
        if let Err(error) = stored {
            tracing::error!(run_id = run_id.0, %error, "could not record the end of a training run");
        }
        let final_event = match &outcome {
            Ok((saved, model)) => TrainingEvent {
                run_id,
                state: RunState::Succeeded,
                stage: TrainingStage::Done,
                percent: 100.0,
                message: format!(
                    "model {}: {} with k={}, silhouette {:.3}",
                    saved.model_id, model.algorithm, model.k, model.metrics.silhouette
                ),
                metrics: Some(model.metrics.clone()),
                emitted_at: Utc::now(),
            },
            Err(error) => TrainingEvent {
                run_id,
                state: RunState::Failed,
                stage: self.last_stage(run_id),
                percent: self.last_percent(run_id),
                message: error.to_string(),
                metrics: None,
                emitted_at: Utc::now(),
            },
        };
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        publish(&mut state, final_event);
        if let Some(events) = state.runs.get_mut(&run_id) {
            events.finished = true;
        }
        state.running = None;
        state.finished_order.push(run_id);
        while state.finished_order.len() > FINISHED_RUNS_KEPT {
            let oldest = state.finished_order.remove(0);
            state.runs.remove(&oldest);
        }
        outcome.map(|(saved, model)| TrainingOutcome {
            run_id,
            model_id: saved.model_id,
            cluster_ids: saved.cluster_ids,
            model,
        })
    }

    async fn train_and_save(
        &self,
        run_id: TrainingRunId,
        etl_run_id: crmbet_core::EtlRunId,
        request: &TrainingRequest,
    ) -> Result<(SavedModel, Arc<Model>)> {
        self.progress(
            run_id,
            TrainingStage::LoadingFeatures,
            0.0,
            format!("loading features of ETL run {etl_run_id}"),
            None,
        )
        .await;
        let rows = self.store.feature_rows(etl_run_id).await?;
        let players = rows.player_ids.len();
        self.progress(
            run_id,
            TrainingStage::Transforming,
            5.0,
            format!("{players} players, {} features", rows.columns.len()),
            None,
        )
        .await;

        let options = TrainOptions {
            algorithm: request.algorithm,
            k: request.k,
            seed: request.seed,
            ..TrainOptions::default()
        };
        let (progress_sender, mut progress_receiver) =
            tokio::sync::mpsc::unbounded_channel::<Progress>();
        let training = tokio::task::spawn_blocking(move || {
            let table = feature_table(rows)?;
            let mut report = |progress: &Progress| {
                let _ = progress_sender.send(progress.clone());
            };
            let model = crmbet_ml::train(&table, &options, &mut report).map_err(training_error)?;
            Ok::<_, Error>((table, model))
        });
        // Every progress event is relayed: the channel closes when the training thread ends
        // and drops its sender, so the last stages are never lost to a race with the join.
        while let Some(progress) = progress_receiver.recv().await {
            // The ML percent covers transforming..naming: 5..90 of the run.
            let percent = 5.0 + progress.percent.clamp(0.0, 100.0) * 0.85;
            self.progress(
                run_id,
                TrainingStage::of_ml(progress.stage),
                percent,
                progress.message.clone(),
                progress.metrics.clone(),
            )
            .await;
        }
        let (table, model) = training
            .await
            .map_err(|error| Error::Internal(format!("training thread: {error}")))??;
        self.progress(
            run_id,
            TrainingStage::Saving,
            90.0,
            format!("saving model with {} clusters", model.k),
            Some(model.metrics.clone()),
        )
        .await;
        let (new_model, new_clusters, segments) = stored_model(&table, &model, etl_run_id)?;
        let saved = self
            .store
            .save_model(
                new_model,
                new_clusters,
                segments,
                request.activate,
                request.requested_by.clone(),
            )
            .await?;
        Ok((saved, Arc::new(model)))
    }

    async fn progress(
        &self,
        run_id: TrainingRunId,
        stage: TrainingStage,
        percent: f64,
        message: String,
        metrics: Option<Metrics>,
    ) {
        let event = TrainingEvent {
            run_id,
            state: RunState::Running,
            stage,
            percent,
            message,
            metrics,
            emitted_at: Utc::now(),
        };
        let stage_changed = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let previous = state
                .runs
                .get(&run_id)
                .and_then(|events| events.history.last())
                .map(|last| last.stage);
            publish(&mut state, event);
            previous != Some(stage)
        };
        // The row follows stage changes, not every event: watchers get those live.
        if stage_changed
            && let Err(error) = self
                .store
                .record_training_progress(run_id, stage.as_str(), percent)
                .await
        {
            tracing::warn!(run_id = run_id.0, %error, "could not record training progress");
        }
    }

    fn last_stage(&self, run_id: TrainingRunId) -> TrainingStage {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state
            .runs
            .get(&run_id)
            .and_then(|events| events.history.last())
            .map_or(TrainingStage::LoadingFeatures, |event| event.stage)
    }

    fn last_percent(&self, run_id: TrainingRunId) -> f64 {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state
            .runs
            .get(&run_id)
            .and_then(|events| events.history.last())
            .map_or(0.0, |event| event.percent)
    }
}

fn publish(state: &mut TrainerState, event: TrainingEvent) {
    let Some(events) = state.runs.get_mut(&event.run_id) else {
        return;
    };
    // A slow or absent watcher must not stop training: send errors are ignored.
    let _ = events.sender.send(event.clone());
    if events.history.len() >= HISTORY_LIMIT {
        events.history.remove(1);
    }
    events.history.push(event);
}

/// What a training failure means to the caller: a request it can fix, data that is not
/// ready for training yet, or a fault of ours.
fn training_error(error: crmbet_ml::Error) -> Error {
    use crmbet_ml::Error as Ml;
    match error {
        Ml::InvalidK { .. } => Error::invalid_argument("k", error.to_string()),
        Ml::InvalidKRange { .. } | Ml::InvalidOption { .. } => {
            Error::invalid_argument("options", error.to_string())
        }
        Ml::NotEnoughPlayers { .. } | Ml::NoUsableFeatures => {
            Error::FailedPrecondition(format!("{error}; load more data with `crmbet etl` first"))
        }
        Ml::MissingFeature { .. }
        | Ml::InvalidTable { .. }
        | Ml::RowLength { .. }
        | Ml::Clustering { .. } => Error::Internal(format!("training: {error}")),
    }
}

/// The training matrix of stored feature rows.
pub fn feature_table(rows: FeatureRows) -> Result<FeatureTable> {
    let players = rows.player_ids.len();
    let columns = rows.columns.len();
    let values = Array2::from_shape_vec((players, columns), rows.values)
        .map_err(|error| Error::Internal(format!("feature matrix shape: {error}")))?;
    Ok(FeatureTable {
        player_ids: rows.player_ids,
        columns: rows.columns,
        values,
    })
}

/// The rows to store for a trained model. Noise players and outliers keep their nearest
/// cluster's label and are marked as outliers.
fn stored_model(
    table: &FeatureTable,
    model: &Model,
    etl_run_id: crmbet_core::EtlRunId,
) -> Result<(NewModel, Vec<NewCluster>, Vec<NewSegment>)> {
    let new_model = NewModel {
        algorithm: model.algorithm.to_string(),
        k: i32::try_from(model.k).unwrap_or(i32::MAX),
        parameters: model.parameters.clone(),
        transform: to_json(&model.transform)?,
        centroids: to_json(&model.centroids)?,
        metrics: json!({
            "silhouette": model.metrics.silhouette,
            "davies_bouldin": model.metrics.davies_bouldin,
            "calinski_harabasz": model.metrics.calinski_harabasz,
            "stability": model.metrics.stability,
            "cluster_sizes": model.metrics.cluster_sizes,
            "noise_fraction": model.metrics.noise_fraction,
            "candidates": to_json(&model.candidates)?,
        }),
        feature_names: to_json(&model.feature_names)?,
        etl_run_id,
        selection_reason: model.selection_reason.clone(),
    };
    let new_clusters = model
        .clusters
        .iter()
        .map(|cluster| {
            Ok(NewCluster {
                label: i32::try_from(cluster.label).unwrap_or(i32::MAX),
                name: cluster.name.clone(),
                description: cluster.description.clone(),
                suggested_campaign: to_json(&cluster.suggested_campaign)?
                    .as_str()
                    .unwrap_or("reactivation")
                    .to_owned(),
                size: i64::try_from(cluster.size).unwrap_or(i64::MAX),
                share: cluster.share,
                profile: to_json(&cluster.profile)?,
                centroid: to_json(&model.centroids.get(cluster.label))?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let scorer = model
        .scorer()
        .map_err(|error| Error::Internal(format!("the trained model cannot score: {error}")))?;
    let mut segments = Vec::with_capacity(table.player_ids.len());
    for (index, (user_id, assignment)) in
        table.player_ids.iter().zip(&model.assignments).enumerate()
    {
        let (label, outlier) = match assignment.cluster {
            Some(label) => (label, false),
            None => {
                let row: Vec<f64> = table.values.row(index).to_vec();
                let nearest = scorer
                    .nearest(&table.columns, &row)
                    .map_err(|error| Error::Internal(format!("assigning an outlier: {error}")))?;
                (nearest.cluster.unwrap_or(0), true)
            }
        };
        segments.push(NewSegment {
            user_id: user_id.clone(),
            label: i32::try_from(label).unwrap_or(i32::MAX),
            confidence: assignment.confidence,
            outlier,
        });
    }
    Ok((new_model, new_clusters, segments))
}

fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<serde_json::Value> {
    serde_json::to_value(value).map_err(|error| Error::Internal(format!("model as JSON: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crmbet_core::ErrorCode;

    #[test]
    fn training_errors_map_to_what_the_caller_can_do() {
        use crmbet_ml::Error as Ml;
        let cases = [
            (Ml::InvalidK { k: 99 }, ErrorCode::InvalidArgument),
            (
                Ml::InvalidKRange { k_min: 9, k_max: 3 },
                ErrorCode::InvalidArgument,
            ),
            (
                Ml::InvalidOption {
                    option: "sample_size",
                    reason: "must be positive".to_owned(),
                },
                ErrorCode::InvalidArgument,
            ),
            (
                Ml::NotEnoughPlayers {
                    players: 3,
                    needed: 20,
                },
                ErrorCode::FailedPrecondition,
            ),
            (Ml::NoUsableFeatures, ErrorCode::FailedPrecondition),
            (
                Ml::MissingFeature {
                    feature: "bet_count".to_owned(),
                },
                ErrorCode::Internal,
            ),
            (
                Ml::Clustering {
                    reason: "singular matrix".to_owned(),
                },
                ErrorCode::Internal,
            ),
        ];
        for (error, code) in cases {
            let described = error.to_string();
            assert_eq!(training_error(error).code(), code, "{described}");
        }
    }
}
