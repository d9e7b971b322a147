//! The trained model: everything needed to store, explain and reuse a segmentation.
//!
//! A player the model has not seen is assigned by [`Model::assign`]: its raw features go
//! through the stored [`Transform`], and it joins the nearest centroid in the scaled space.
//! Confidence is `1 − d₁ / d₂`, with `d₁` and `d₂` the Euclidean distances to the nearest and
//! the second-nearest centroid: 1 on a centroid, 0 half-way between two clusters, always in
//! 0..=1 and free of any softmax temperature. A model with a single cluster gives confidence 1.
//! Every model also stores, per cluster, the distance within which 99% of its training
//! members lie (`parameters.outlier_radius`); a new player farther than that from its nearest
//! centroid is an outlier (`cluster: None`, confidence falling with the distance), as in
//! training ([`crate::outliers`]). A model with a whale tail (`parameters.value_tail`) puts a
//! player whose raw stake reaches the tail's threshold in the tail cluster, and everyone else
//! in the nearest of the other clusters ([`crate::tail`]).

use std::str::FromStr;

use ndarray::{Array1, Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::kmeans::nearest_two_skipping;
use crate::matrix::Transform;
use crate::metrics::Metrics;
use crate::naming::ClusterSummary;
use crate::tail::ValueTail;

/// A clustering algorithm, or `Auto` to let training choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// Try KMeans over k, DBSCAN, HDBSCAN and the ensemble; keep the best by the selection
    /// rule.
    Auto,
    /// KMeans, with a fixed k or k chosen automatically.
    #[serde(rename = "kmeans")]
    KMeans,
    /// DBSCAN on the density sample.
    Dbscan,
    /// HDBSCAN on the density sample.
    Hdbscan,
    /// Consensus of KMeans, DBSCAN and HDBSCAN.
    Ensemble,
}

impl Algorithm {
    /// The algorithm's name as the command line and JSON spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Auto => "auto",
            Algorithm::KMeans => "kmeans",
            Algorithm::Dbscan => "dbscan",
            Algorithm::Hdbscan => "hdbscan",
            Algorithm::Ensemble => "ensemble",
        }
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// The name is not one of `auto`, `kmeans`, `dbscan`, `hdbscan`, `ensemble`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown algorithm {0}: expected auto, kmeans, dbscan, hdbscan or ensemble")]
pub struct UnknownAlgorithm(pub String);

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Algorithm::Auto),
            "kmeans" | "k-means" | "k_means" => Ok(Algorithm::KMeans),
            "dbscan" => Ok(Algorithm::Dbscan),
            "hdbscan" => Ok(Algorithm::Hdbscan),
            "ensemble" => Ok(Algorithm::Ensemble),
            _ => Err(UnknownAlgorithm(name.to_string())),
        }
    }
}

/// The cluster of one player.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    /// Cluster label `0..k`; `None` for an outlier (noise).
    pub cluster: Option<usize>,
    /// How clearly the player belongs to it, 0..=1.
    pub confidence: f64,
}

/// One algorithm and k that training tried, with its metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// Its number of clusters.
    pub k: usize,
    /// Its metrics.
    pub metrics: Metrics,
    /// Why it was or was not chosen, or what went wrong.
    pub note: String,
}

/// A trained segmentation (Serialize + Deserialize, to be stored as is).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// The algorithm chosen (never `Auto`).
    pub algorithm: Algorithm,
    /// Number of clusters (outliers not counted).
    pub k: usize,
    /// Seed, restarts, eps, min_samples, min_cluster_size, outlier radii, ...
    pub parameters: serde_json::Value,
    /// The fitted feature transform.
    pub transform: Transform,
    /// Model-matrix columns after the transform.
    pub feature_names: Vec<String>,
    /// Per cluster label `0..k`, in the transformed and scaled space.
    pub centroids: Vec<Vec<f64>>,
    /// Per cluster label `0..k`: name, description, campaign, size, profile.
    pub clusters: Vec<ClusterSummary>,
    /// One per training player, aligned with `FeatureTable::player_ids`.
    pub assignments: Vec<Assignment>,
    /// Metrics of the chosen clustering.
    pub metrics: Metrics,
    /// Why this algorithm and this k, in one or two sentences.
    pub selection_reason: String,
    /// Every algorithm and k tried, with its metrics.
    pub candidates: Vec<Candidate>,
}

impl Model {
    /// The cluster of a player the model has not seen, from raw features named as in
    /// training (extra columns are ignored, a missing one is an error, NaN is imputed).
    pub fn assign(&self, columns: &[String], raw: &[f64]) -> Result<Assignment, Error> {
        self.scorer()?.assign(columns, raw)
    }

    /// What assigning new players needs of the model, ready to use many times.
    pub fn scorer(&self) -> Result<Scorer, Error> {
        Scorer::new(
            self.transform.clone(),
            self.centroids.clone(),
            &self.parameters,
        )
    }
}

/// The part of a model that assigns new players: its transform, its centroids and, for
/// density models, the outlier radii. Built once from a stored model and used for every
/// live assignment.
#[derive(Debug, Clone, PartialEq)]
pub struct Scorer {
    transform: Transform,
    centroids: Array2<f64>,
    radii: Option<Vec<f64>>,
    tail: Option<ValueTail>,
}

impl Scorer {
    /// A scorer from a model's stored parts (`parameters` may hold `outlier_radius`).
    pub fn new(
        transform: Transform,
        centroids: Vec<Vec<f64>>,
        parameters: &serde_json::Value,
    ) -> Result<Self, Error> {
        let width = transform.feature_names().len();
        if centroids.is_empty() || centroids.iter().any(|row| row.len() != width) {
            return Err(Error::InvalidTable {
                reason: format!(
                    "the model's centroids do not have {width} coordinates each; retrain it"
                ),
            });
        }
        let flat: Vec<f64> = centroids.iter().flatten().copied().collect();
        let centroids =
            Array2::from_shape_vec((centroids.len(), width), flat).map_err(|error| {
                Error::InvalidTable {
                    reason: error.to_string(),
                }
            })?;
        let tail =
            ValueTail::from_parameters(parameters).filter(|tail| tail.cluster < centroids.nrows());
        Ok(Self {
            transform,
            centroids,
            radii: outlier_radii(parameters),
            tail,
        })
    }

    /// Number of clusters.
    pub fn clusters(&self) -> usize {
        self.centroids.nrows()
    }

    /// The cluster of a player from raw features named as in training (extra columns are
    /// ignored, a missing one is an error, NaN is imputed).
    pub fn assign(&self, columns: &[String], raw: &[f64]) -> Result<Assignment, Error> {
        let row = self.transform.apply_row(columns, raw)?;
        if let Some(assignment) = self.tail_assignment(columns, raw) {
            return Ok(assignment);
        }
        Ok(assign_row(
            Array1::from(row).view(),
            self.centroids.view(),
            self.radii.as_deref(),
            self.tail_cluster(),
        ))
    }

    /// The nearest cluster, ignoring outlier radii (where a noise player is stored); the
    /// tail cluster only by its rule.
    pub fn nearest(&self, columns: &[String], raw: &[f64]) -> Result<Assignment, Error> {
        let row = self.transform.apply_row(columns, raw)?;
        if let Some(assignment) = self.tail_assignment(columns, raw) {
            return Ok(assignment);
        }
        Ok(assign_row(
            Array1::from(row).view(),
            self.centroids.view(),
            None,
            self.tail_cluster(),
        ))
    }

    /// The label of the whale-tail cluster, if the model has one.
    pub fn tail_cluster(&self) -> Option<usize> {
        self.tail.as_ref().map(|tail| tail.cluster)
    }

    /// The tail cluster, when the player's raw stake reaches its threshold.
    fn tail_assignment(&self, columns: &[String], raw: &[f64]) -> Option<Assignment> {
        let tail = self.tail.as_ref()?;
        let position = columns.iter().position(|column| *column == tail.feature)?;
        let value = *raw.get(position)?;
        tail.holds(value).then(|| Assignment {
            cluster: Some(tail.cluster),
            confidence: tail.confidence(value),
        })
    }
}

/// Per-cluster outlier radii stored in a model's parameters, if any.
fn outlier_radii(parameters: &serde_json::Value) -> Option<Vec<f64>> {
    let radii = parameters.get("outlier_radius")?.as_array()?;
    radii.iter().map(serde_json::Value::as_f64).collect()
}

/// Nearest-centroid assignment of one scaled row (never to the `skip` cluster), with the
/// `1 − d₁/d₂` confidence and the optional outlier radii: an outlier's confidence is scaled
/// by `radius / d₁`.
pub(crate) fn assign_row(
    row: ndarray::ArrayView1<'_, f64>,
    centroids: ArrayView2<'_, f64>,
    radii: Option<&[f64]>,
    skip: Option<usize>,
) -> Assignment {
    let (cluster, nearest, second) = nearest_two_skipping(row, centroids, skip);
    if let Some(radius) = radii.and_then(|radii| radii.get(cluster))
        && nearest.sqrt() > *radius
    {
        return Assignment {
            cluster: None,
            confidence: confidence(nearest, second) * radius / nearest.sqrt(),
        };
    }
    Assignment {
        cluster: Some(cluster),
        confidence: confidence(nearest, second),
    }
}

/// `1 − d₁/d₂` from squared distances; 1 without a second centroid.
pub(crate) fn confidence(nearest_squared: f64, second_squared: f64) -> f64 {
    if !second_squared.is_finite() || second_squared <= 0.0 {
        return 1.0;
    }
    (1.0 - (nearest_squared / second_squared).sqrt()).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn algorithm_names_round_trip() {
        for algorithm in [
            Algorithm::Auto,
            Algorithm::KMeans,
            Algorithm::Dbscan,
            Algorithm::Hdbscan,
            Algorithm::Ensemble,
        ] {
            assert_eq!(algorithm.to_string().parse::<Algorithm>(), Ok(algorithm));
            let json = serde_json::to_string(&algorithm).unwrap();
            assert_eq!(json, format!("\"{algorithm}\""));
        }
        assert!("spectral".parse::<Algorithm>().is_err());
    }

    #[test]
    fn confidence_is_one_on_a_centroid_and_zero_half_way() {
        let centroids = array![[0.0, 0.0], [2.0, 0.0]];
        let on = assign_row(array![0.0, 0.0].view(), centroids.view(), None, None);
        assert_eq!(on.cluster, Some(0));
        assert_eq!(on.confidence, 1.0);
        let between = assign_row(array![1.0, 0.0].view(), centroids.view(), None, None);
        assert_eq!(between.confidence, 0.0);
        let far = assign_row(
            array![10.0, 0.0].view(),
            centroids.view(),
            Some(&[1.0, 1.0]),
            None,
        );
        assert_eq!(far.cluster, None);
        // 1 − 8/10 = 0.2, scaled by radius / distance = 1/8.
        assert!((far.confidence - 0.2 / 8.0).abs() < 1e-12);
        let skipping = assign_row(array![0.0, 0.0].view(), centroids.view(), None, Some(0));
        assert_eq!(skipping.cluster, Some(1));
    }
}
