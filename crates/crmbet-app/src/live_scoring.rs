//! Live assignment: the active model's scorer (transform, centroids, outlier radii), its
//! clusters' ids and the population its RFM scores rank against, loaded once per active
//! model and reused for every live batch.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crmbet_core::{Error, ModelId, NUMERIC_FEATURES, Result};
use crmbet_etl::PlayerFeatures;
use crmbet_etl::live::RfmCuts;
use crmbet_ml::{Scorer, Transform};
use crmbet_store::{LiveSegment, Store};

use crate::features::numeric_features;

/// How long the id of the active model is trusted before the store is asked again (an
/// activation through this process is seen at once).
const ACTIVE_MODEL_MAX_AGE: Duration = Duration::from_secs(1);

/// Clusters read per query when loading a model's cluster ids.
const CLUSTER_PAGE: u64 = 1_000;

/// What scoring a player with one model needs.
#[derive(Debug)]
pub(crate) struct LiveScoring {
    model_id: ModelId,
    scorer: Scorer,
    /// Cluster id of each label.
    cluster_ids: Vec<i64>,
    rfm: RfmCuts,
    columns: Vec<String>,
}

impl LiveScoring {
    async fn load(store: &Store, model_id: ModelId) -> Result<Self> {
        let model = store.model(model_id).await?;
        let broken = |what: &str, error: String| {
            Error::FailedPrecondition(format!(
                "model {model_id} cannot score live players: its {what} does not read ({error}); \
                 retrain and activate a model"
            ))
        };
        let transform: Transform = serde_json::from_value(model.transform.clone())
            .map_err(|error| broken("transform", error.to_string()))?;
        let centroids: Vec<Vec<f64>> = serde_json::from_value(model.centroids.clone())
            .map_err(|error| broken("centroids", error.to_string()))?;
        let scorer = Scorer::new(transform, centroids, &model.parameters)
            .map_err(|error| broken("centroids", error.to_string()))?;
        let mut cluster_ids = vec![None; scorer.clusters()];
        let mut after = None;
        loop {
            let page = store.list_clusters(model_id, after, CLUSTER_PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            for cluster in &page {
                if let Some(slot) = usize::try_from(cluster.label)
                    .ok()
                    .and_then(|label| cluster_ids.get_mut(label))
                {
                    *slot = Some(cluster.id);
                }
            }
        }
        let cluster_ids = cluster_ids
            .into_iter()
            .collect::<Option<Vec<i64>>>()
            .ok_or_else(|| broken("clusters", "a label has no cluster".to_owned()))?;
        let rfm = match model.etl_run_id {
            Some(run) => {
                let population = store.rfm_population(crmbet_core::EtlRunId(run)).await?;
                RfmCuts::new(
                    population.recency_days,
                    population.frequency,
                    population.deposit_sum,
                )
            }
            None => RfmCuts::default(),
        };
        let columns: Vec<String> = NUMERIC_FEATURES
            .iter()
            .map(|name| (*name).to_owned())
            .collect();
        // A model trained on other feature names cannot score these: found once, here.
        scorer
            .assign(&columns, &vec![0.0; columns.len()])
            .map_err(|error| broken("feature list", error.to_string()))?;
        Ok(Self {
            model_id,
            scorer,
            cluster_ids,
            rfm,
            columns,
        })
    }

    /// The model this scores with.
    pub(crate) fn model_id(&self) -> ModelId {
        self.model_id
    }

    /// The player's segment: their RFM scores against the training population, then the
    /// nearest cluster (an outlier keeps the nearest cluster, marked, as in training).
    pub(crate) fn segment(&self, features: &mut PlayerFeatures) -> Result<LiveSegment> {
        self.rfm.score(features);
        let raw = numeric_features(features);
        let scoring_failed = |error: crmbet_ml::Error| {
            Error::Internal(format!("scoring {}: {error}", features.user_id))
        };
        let assignment = self
            .scorer
            .assign(&self.columns, &raw)
            .map_err(scoring_failed)?;
        let (label, outlier) = match assignment.cluster {
            Some(label) => (label, false),
            None => (
                self.scorer
                    .nearest(&self.columns, &raw)
                    .map_err(scoring_failed)?
                    .cluster
                    .unwrap_or(0),
                true,
            ),
        };
        let cluster_id = self.cluster_ids.get(label).copied().ok_or_else(|| {
            Error::Internal(format!("model {} has no cluster {label}", self.model_id))
        })?;
        Ok(LiveSegment {
            model_id: self.model_id.0,
            cluster_id,
            confidence: assignment.confidence,
            outlier,
        })
    }
}

/// The scoring of the active model, reloaded when another model becomes active.
#[derive(Debug, Default)]
pub(crate) struct ActiveScoring {
    state: Mutex<ScoringMemo>,
    /// One load at a time; the others wait for it.
    loading: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct ScoringMemo {
    checked_at: Option<Instant>,
    /// The store's activation count at that check.
    activations: u64,
    scoring: Option<Arc<LiveScoring>>,
    /// The active model when it cannot score (a sample's, or a broken one): not read again.
    unscorable: Option<ModelId>,
}

impl ActiveScoring {
    /// The scoring of the model that serves now, or `None` when no model is active.
    pub(crate) async fn current(&self, store: &Store) -> Result<Option<Arc<LiveScoring>>> {
        if let Some(scoring) = self.remembered(store.activations()) {
            return Ok(scoring);
        }
        let _loading = self.loading.lock().await;
        let activations = store.activations();
        if let Some(scoring) = self.remembered(activations) {
            return Ok(scoring);
        }
        let checked_at = Instant::now();
        let active = store.active_model_id().await?;
        let (known, unscorable) = {
            let memo = self.lock();
            (memo.scoring.clone(), memo.unscorable)
        };
        let mut unscorable_now = None;
        let scoring = match (active, known) {
            (None, _) => None,
            (Some(active), Some(known)) if known.model_id == active => Some(known),
            (Some(active), _) if unscorable == Some(active) => {
                unscorable_now = Some(active);
                None
            }
            (Some(active), _) => match LiveScoring::load(store, active).await {
                Ok(scoring) => Some(Arc::new(scoring)),
                // Transactions are still stored: only their players' segments wait for a
                // model that can score.
                Err(Error::FailedPrecondition(reason)) => {
                    tracing::warn!(model_id = %active, %reason, "live play stores transactions without segments");
                    unscorable_now = Some(active);
                    None
                }
                Err(error) => return Err(error),
            },
        };
        *self.lock() = ScoringMemo {
            checked_at: Some(checked_at),
            activations,
            scoring: scoring.clone(),
            unscorable: unscorable_now,
        };
        Ok(scoring)
    }

    fn remembered(&self, activations: u64) -> Option<Option<Arc<LiveScoring>>> {
        let memo = self.lock();
        let fresh = memo.activations == activations
            && memo
                .checked_at
                .is_some_and(|at| at.elapsed() < ACTIVE_MODEL_MAX_AGE);
        fresh.then(|| memo.scoring.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ScoringMemo> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
