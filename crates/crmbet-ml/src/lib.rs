//! Player segmentation: per-player features -> a transformed, scaled matrix -> KMeans with
//! automatic k, DBSCAN, HDBSCAN and their ensemble -> clusters with names a marketer
//! understands.
//!
//! Invariant: `crmbet-ml` is pure computation on `ndarray`. It never touches the database,
//! the network or the file system; callers hand it a [`FeatureTable`] and store the
//! [`Model`] it returns.

mod density;
mod distance;
mod ensemble;
mod error;
mod kmeans;
mod matrix;
mod metrics;
mod model;
mod naming;
mod outliers;
mod progress;
mod sampling;
mod selection;
mod stability;
mod tail;
mod train;

pub use density::hdbscan_labels;
pub use error::Error;
pub use matrix::{
    ColumnTransform, Encoding, FeatureTable, LOG_FEATURES, SIGNED_LOG_FEATURES, Transform,
};
pub use metrics::Metrics;
pub use model::{Algorithm, Assignment, Candidate, Model, Scorer, UnknownAlgorithm};
pub use naming::{CampaignType, ClusterSummary, FeatureProfile};
pub use progress::{Progress, Stage};
pub use stability::adjusted_rand_index;
pub use tail::{
    MAX_TAIL_SHARE, MIN_TAIL_PLAYERS, MIN_TAIL_SHARE, TAIL_FEATURE, TAIL_MULTIPLE, ValueTail,
};
pub use train::{AssignmentCheck, TrainOptions, check_density_assignment, silhouette_of, train};
