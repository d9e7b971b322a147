//! Training runs, trained models with their clusters and segments, and the active model.
//!
//! The store knows nothing of clustering: the caller hands it plain rows ([`NewModel`],
//! [`NewCluster`], [`NewSegment`]) and gets back ids. A model, its clusters and every
//! player's segment are written in one transaction, so a reader sees all of a model or none.

use chrono::Utc;
use crmbet_core::delivery::{
    CAMPAIGN_DELIVERY_TOPIC, OutboxMessage, PROFILE_BATCH_PLAYERS, ProfileUpdates,
};
use crmbet_core::{Error, EtlRunId, ModelId, Result, TrainingRunId};
use sea_orm::ExprTrait;
use sea_orm::sea_query::{Alias, Expr, OnConflict, Order, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde_json::Value as Json;

use crate::database::Store;
use crate::entity::{
    active_model, clusters, etl_runs, models, outbox, player_features, player_segments,
    training_runs,
};
use crate::failure::database_error;
use crate::segment_changes::record_activation_changes;
use crmbet_core::NUMERIC_FEATURES;

/// Rows per INSERT of segments: well under the bind-parameter limits of both engines.
const SEGMENT_BATCH_ROWS: usize = 1_000;
/// Players read per query when loading a feature matrix.
const FEATURE_PAGE_ROWS: u64 = 20_000;

/// The state of a training run, as stored in `training_runs.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainingStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl TrainingStatus {
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    /// The status a stored word names; unknown words read as failed.
    pub fn parse(stored: &str) -> Self {
        match stored {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "succeeded" => Self::Succeeded,
            _ => Self::Failed,
        }
    }

    /// Whether the run can still change.
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed)
    }
}

/// What a new training run was asked to do.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTrainingRun {
    pub algorithm: String,
    /// 0 when k is chosen automatically.
    pub k: i32,
    pub seed: u64,
    pub activate: bool,
    pub created_by: Option<String>,
}

/// The features of every player of one ETL run, as a dense row-major matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureRows {
    pub etl_run_id: EtlRunId,
    /// Sorted ascending; row `i` of `values` belongs to `player_ids[i]`.
    pub player_ids: Vec<String>,
    /// [`NUMERIC_FEATURES`], the columns of `values`.
    pub columns: Vec<String>,
    /// `player_ids.len() × columns.len()` values, row by row.
    pub values: Vec<f64>,
}

/// Three features of every player of an ETL run, column by column.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RfmPopulation {
    pub recency_days: Vec<f64>,
    pub frequency: Vec<i64>,
    pub deposit_sum: Vec<f64>,
}

/// A trained model to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewModel {
    pub algorithm: String,
    pub k: i32,
    pub parameters: Json,
    pub transform: Json,
    pub centroids: Json,
    pub metrics: Json,
    pub feature_names: Json,
    pub etl_run_id: EtlRunId,
    pub selection_reason: String,
}

/// One cluster of a model to store; `label` is its index in the model.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCluster {
    pub label: i32,
    pub name: String,
    pub description: String,
    pub suggested_campaign: String,
    pub size: i64,
    pub share: f64,
    pub profile: Json,
    pub centroid: Json,
}

/// A stored model's id and the id each of its cluster labels got.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedModel {
    pub model_id: ModelId,
    /// Label in the model → cluster id of the API.
    pub cluster_ids: std::collections::BTreeMap<i32, i64>,
}

/// A player's cluster (by label) in a model to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSegment {
    pub user_id: String,
    pub label: i32,
    pub confidence: f64,
    /// Noise for the algorithm: `label` is then the nearest cluster.
    pub outlier: bool,
}

/// A stored model with whether it is the active one.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredModel {
    pub model: models::Model,
    pub active: bool,
}

impl Store {
    /// The newest successful ETL run that stored features, the one training uses.
    pub async fn latest_etl_run_with_features(&self) -> Result<Option<EtlRunId>> {
        let run = etl_runs::Entity::find()
            .filter(etl_runs::Column::Status.ne("failed"))
            .filter(etl_runs::Column::Players.gt(0))
            .order_by_desc(etl_runs::Column::Id)
            .one(self.connection())
            .await
            .map_err(database_error)?;
        Ok(run.map(|run| EtlRunId(run.id)))
    }

    /// Every player's numeric features of `etl_run_id`, read page by page.
    pub async fn feature_rows(&self, etl_run_id: EtlRunId) -> Result<FeatureRows> {
        let mut player_ids = Vec::new();
        let mut values = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut query = Query::select();
            query
                .column(player_features::Column::UserId)
                .from(player_features::Entity)
                .and_where(Expr::col(player_features::Column::EtlRunId).eq(etl_run_id.0))
                .order_by(player_features::Column::UserId, Order::Asc)
                .limit(FEATURE_PAGE_ROWS);
            for (index, feature) in NUMERIC_FEATURES.iter().enumerate() {
                query.expr_as(
                    Expr::cust(format!("CAST({feature} AS DOUBLE PRECISION)")),
                    Alias::new(format!("f{index}")),
                );
            }
            if let Some(last) = &after {
                query.and_where(Expr::col(player_features::Column::UserId).gt(last.clone()));
            }
            let rows = self
                .connection()
                .query_all(&query)
                .await
                .map_err(database_error)?;
            let Some(last_row) = rows.last() else {
                break;
            };
            after = Some(last_row.try_get("", "user_id").map_err(database_error)?);
            let page_rows = rows.len();
            for row in rows {
                player_ids.push(
                    row.try_get::<String>("", "user_id")
                        .map_err(database_error)?,
                );
                for index in 0..NUMERIC_FEATURES.len() {
                    let value: Option<f64> = row
                        .try_get("", &format!("f{index}"))
                        .map_err(database_error)?;
                    values.push(value.unwrap_or(f64::NAN));
                }
            }
            if (page_rows as u64) < FEATURE_PAGE_ROWS {
                break;
            }
        }
        Ok(FeatureRows {
            etl_run_id,
            player_ids,
            columns: NUMERIC_FEATURES
                .iter()
                .map(|name| (*name).to_owned())
                .collect(),
            values,
        })
    }

    /// The recency, frequency and deposit sum of every player of `etl_run_id`: the
    /// population a live player's RFM scores rank against.
    pub async fn rfm_population(&self, etl_run_id: EtlRunId) -> Result<RfmPopulation> {
        let query = Query::select()
            .columns([
                player_features::Column::RecencyDays,
                player_features::Column::Frequency,
                player_features::Column::DepositSum,
            ])
            .from(player_features::Entity)
            .and_where(Expr::col(player_features::Column::EtlRunId).eq(etl_run_id.0))
            .to_owned();
        let rows = self
            .connection()
            .query_all(&query)
            .await
            .map_err(database_error)?;
        let mut population = RfmPopulation::default();
        for row in rows {
            population
                .recency_days
                .push(row.try_get("", "recency_days").map_err(database_error)?);
            population
                .frequency
                .push(row.try_get("", "frequency").map_err(database_error)?);
            population
                .deposit_sum
                .push(row.try_get("", "deposit_sum").map_err(database_error)?);
        }
        Ok(population)
    }

    /// Records a new run as running, unless another run is queued or running: then
    /// `FailedPrecondition` naming it. Callers that may race also hold a lock in-process.
    pub async fn start_training_run(&self, run: NewTrainingRun) -> Result<TrainingRunId> {
        let transaction = self.begin_write().await?;
        let busy = training_runs::Entity::find()
            .filter(training_runs::Column::Status.is_in([
                TrainingStatus::Queued.as_str(),
                TrainingStatus::Running.as_str(),
            ]))
            .one(&transaction)
            .await
            .map_err(database_error)?;
        if let Some(busy) = busy {
            return Err(Error::FailedPrecondition(format!(
                "training run {} is still {}; wait for it to finish (WatchTrainingRun) before \
                 starting another",
                busy.id, busy.status
            )));
        }
        let inserted = training_runs::Entity::insert(training_runs::ActiveModel {
            status: Set(TrainingStatus::Running.as_str().to_owned()),
            algorithm: Set(run.algorithm),
            k: Set(run.k),
            // Stored bit for bit: the column is signed.
            seed: Set(i64::from_ne_bytes(run.seed.to_ne_bytes())),
            activate: Set(run.activate),
            stage: Set("loading_features".to_owned()),
            percent: Set(0.0),
            started_at: Set(Utc::now()),
            created_by: Set(run.created_by),
            ..Default::default()
        })
        .exec(&transaction)
        .await
        .map_err(database_error)?;
        transaction.commit().await.map_err(database_error)?;
        Ok(TrainingRunId(inserted.last_insert_id))
    }

    /// Saves how far a running run has come.
    pub async fn record_training_progress(
        &self,
        run_id: TrainingRunId,
        stage: &str,
        percent: f64,
    ) -> Result<()> {
        training_runs::Entity::update_many()
            .col_expr(training_runs::Column::Stage, Expr::value(stage))
            .col_expr(training_runs::Column::Percent, Expr::value(percent))
            .filter(training_runs::Column::Id.eq(run_id.0))
            .exec(self.connection())
            .await
            .map_err(database_error)?;
        Ok(())
    }

    /// Ends a run: succeeded with its model, or failed with the reason.
    pub async fn finish_training_run(
        &self,
        run_id: TrainingRunId,
        outcome: std::result::Result<ModelId, String>,
    ) -> Result<()> {
        let (status, stage, model_id, error) = match outcome {
            Ok(model_id) => (TrainingStatus::Succeeded, "done", Some(model_id.0), None),
            Err(reason) => (TrainingStatus::Failed, "failed", None, Some(reason)),
        };
        let mut update = training_runs::Entity::update_many()
            .col_expr(training_runs::Column::Status, Expr::value(status.as_str()))
            .col_expr(training_runs::Column::Stage, Expr::value(stage))
            .col_expr(training_runs::Column::FinishedAt, Expr::value(Utc::now()))
            .col_expr(training_runs::Column::ModelId, Expr::value(model_id))
            .col_expr(training_runs::Column::Error, Expr::value(error));
        if status == TrainingStatus::Succeeded {
            update = update.col_expr(training_runs::Column::Percent, Expr::value(100.0));
        }
        update
            .filter(training_runs::Column::Id.eq(run_id.0))
            .exec(self.connection())
            .await
            .map_err(database_error)?;
        Ok(())
    }

    /// Marks runs left queued or running by a process that stopped as failed, so a new run
    /// can start. Called once when a server or the CLI opens the store for training.
    pub async fn fail_abandoned_training_runs(&self) -> Result<u64> {
        let result = training_runs::Entity::update_many()
            .col_expr(
                training_runs::Column::Status,
                Expr::value(TrainingStatus::Failed.as_str()),
            )
            .col_expr(training_runs::Column::Stage, Expr::value("failed"))
            .col_expr(training_runs::Column::FinishedAt, Expr::value(Utc::now()))
            .col_expr(
                training_runs::Column::Error,
                Expr::value("the process running it stopped before it finished; start it again"),
            )
            .filter(training_runs::Column::Status.is_in([
                TrainingStatus::Queued.as_str(),
                TrainingStatus::Running.as_str(),
            ]))
            .exec(self.connection())
            .await
            .map_err(database_error)?;
        Ok(result.rows_affected)
    }

    /// A training run by id.
    pub async fn training_run(&self, run_id: TrainingRunId) -> Result<training_runs::Model> {
        training_runs::Entity::find_by_id(run_id.0)
            .one(self.connection())
            .await
            .map_err(database_error)?
            .ok_or_else(|| Error::not_found("training run", run_id))
    }

    /// Stores a model with its clusters and segments in one transaction, and makes it the
    /// active model when `activate` is set. Every segment's label must name a cluster.
    pub async fn save_model(
        &self,
        model: NewModel,
        new_clusters: Vec<NewCluster>,
        segments: Vec<NewSegment>,
        activate: bool,
        activated_by: Option<String>,
    ) -> Result<SavedModel> {
        let now = Utc::now();
        let transaction = self.begin_write().await?;
        let version = models::Entity::find()
            .select_only()
            .column_as(models::Column::Version.max(), "version")
            .into_tuple::<Option<i32>>()
            .one(&transaction)
            .await
            .map_err(database_error)?
            .flatten()
            .unwrap_or(0)
            + 1;
        let inserted = models::Entity::insert(models::ActiveModel {
            version: Set(version),
            algorithm: Set(model.algorithm),
            k: Set(model.k),
            parameters: Set(model.parameters),
            transform: Set(model.transform),
            centroids: Set(model.centroids),
            metrics: Set(model.metrics),
            feature_names: Set(model.feature_names),
            etl_run_id: Set(Some(model.etl_run_id.0)),
            selection_reason: Set(model.selection_reason),
            created_at: Set(now),
            ..Default::default()
        })
        .exec(&transaction)
        .await
        .map_err(database_error)?;
        let model_id = inserted.last_insert_id;

        let mut cluster_ids = std::collections::BTreeMap::new();
        for cluster in new_clusters {
            let label = cluster.label;
            let inserted = clusters::Entity::insert(clusters::ActiveModel {
                model_id: Set(model_id),
                label: Set(label),
                name: Set(cluster.name),
                description: Set(cluster.description),
                suggested_campaign: Set(cluster.suggested_campaign),
                size: Set(cluster.size),
                share: Set(cluster.share),
                profile: Set(cluster.profile),
                centroid: Set(cluster.centroid),
                created_at: Set(now),
                ..Default::default()
            })
            .exec(&transaction)
            .await
            .map_err(database_error)?;
            cluster_ids.insert(label, inserted.last_insert_id);
        }

        for chunk in segments.chunks(SEGMENT_BATCH_ROWS) {
            let mut rows = Vec::with_capacity(chunk.len());
            for segment in chunk {
                let cluster_id = cluster_ids.get(&segment.label).copied().ok_or_else(|| {
                    Error::Internal(format!(
                        "player {} is assigned to label {}, which the model does not have",
                        segment.user_id, segment.label
                    ))
                })?;
                rows.push(player_segments::ActiveModel {
                    model_id: Set(model_id),
                    user_id: Set(segment.user_id.clone()),
                    cluster_id: Set(cluster_id),
                    confidence: Set(segment.confidence),
                    outlier: Set(segment.outlier),
                    assigned_at: Set(now),
                });
            }
            player_segments::Entity::insert_many(rows)
                .exec(&transaction)
                .await
                .map_err(database_error)?;
        }
        if activate {
            set_active_model(&transaction, model_id, activated_by).await?;
        }
        transaction.commit().await.map_err(database_error)?;
        if activate {
            self.count_activation();
        }
        Ok(SavedModel {
            model_id: ModelId(model_id),
            cluster_ids,
        })
    }

    /// Makes `model_id` the model that serves, in one statement.
    pub async fn activate_model(
        &self,
        model_id: ModelId,
        activated_by: Option<String>,
    ) -> Result<StoredModel> {
        let model = self.model(model_id).await?;
        let transaction = self.begin_write().await?;
        set_active_model(&transaction, model_id.0, activated_by).await?;
        transaction.commit().await.map_err(database_error)?;
        self.count_activation();
        Ok(StoredModel {
            model,
            active: true,
        })
    }

    /// Models newest first, after the model with id `before` when given.
    pub async fn list_models(&self, before: Option<i64>, limit: u64) -> Result<Vec<StoredModel>> {
        let active = self.active_model_id().await?;
        let mut query = models::Entity::find().order_by_desc(models::Column::Id);
        if let Some(before) = before {
            query = query.filter(models::Column::Id.lt(before));
        }
        let rows = query
            .limit(limit)
            .all(self.connection())
            .await
            .map_err(database_error)?;
        Ok(rows
            .into_iter()
            .map(|model| StoredModel {
                active: active.is_some_and(|active| active.0 == model.id),
                model,
            })
            .collect())
    }
}

/// Makes `model_id` active and, in the same transaction, queues the profile updates of
/// every player whose segment (cluster name) differs from the one under the model active
/// before (all players when none was), so Smartico's segments follow.
async fn set_active_model<C: ConnectionTrait>(
    connection: &C,
    model_id: i64,
    activated_by: Option<String>,
) -> Result<()> {
    let previous = active_model::Entity::find_by_id(active_model::SEGMENTATION_SLOT.to_owned())
        .one(connection)
        .await
        .map_err(database_error)?
        .map(|row| row.model_id);
    if previous != Some(model_id) {
        queue_profile_updates(connection, previous, model_id).await?;
    }
    active_model::Entity::insert(active_model::ActiveModel {
        slot: Set(active_model::SEGMENTATION_SLOT.to_owned()),
        model_id: Set(model_id),
        activated_at: Set(Utc::now()),
        activated_by: Set(activated_by),
    })
    .on_conflict(
        OnConflict::column(active_model::Column::Slot)
            .update_columns([
                active_model::Column::ModelId,
                active_model::Column::ActivatedAt,
                active_model::Column::ActivatedBy,
            ])
            .to_owned(),
    )
    .exec(connection)
    .await
    .map_err(database_error)?;
    Ok(())
}

/// Records the segment changes from `previous` to `next` and writes their Smartico profile
/// updates to the outbox.
async fn queue_profile_updates<C: ConnectionTrait>(
    connection: &C,
    previous: Option<i64>,
    next: i64,
) -> Result<()> {
    let now = Utc::now();
    let changes = record_activation_changes(connection, previous, next, now).await?;
    let mut messages = Vec::new();
    for (index, players) in changes.chunks(PROFILE_BATCH_PLAYERS).enumerate() {
        let payload = serde_json::to_value(OutboxMessage::Profiles(ProfileUpdates {
            model_id: next,
            players: players.to_vec(),
        }))
        .map_err(|error| Error::Internal(format!("encoding profile updates: {error}")))?;
        messages.push(outbox::ActiveModel {
            topic: Set(CAMPAIGN_DELIVERY_TOPIC.to_owned()),
            message_key: Set(format!("profiles-model-{next}-batch-{index}")),
            payload: Set(payload),
            created_at: Set(now),
            available_at: Set(now),
            attempts: Set(0),
            published_at: Set(None),
            last_error: Set(None),
            ..Default::default()
        });
    }
    for chunk in messages.chunks(500) {
        outbox::Entity::insert_many(chunk.to_vec())
            .exec(connection)
            .await
            .map_err(database_error)?;
    }
    if !changes.is_empty() {
        tracing::info!(
            model_id = next,
            players = changes.len(),
            "queued profile updates of changed segments"
        );
    }
    Ok(())
}
