//! What training reports while it runs: the stage, the overall percent and the metrics of
//! the latest candidate.

use serde::{Deserialize, Serialize};

use crate::metrics::Metrics;

/// A step of training, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Transforming and scaling the features.
    Preparing,
    /// Fitting KMeans over k and measuring silhouette and stability.
    #[serde(rename = "kmeans")]
    KMeans,
    /// Fitting DBSCAN on the density sample.
    Dbscan,
    /// Fitting HDBSCAN on the density sample.
    Hdbscan,
    /// Building the consensus of the algorithms.
    Ensemble,
    /// Choosing the algorithm and k.
    Selecting,
    /// Profiling and naming the clusters.
    Naming,
    /// Finished.
    Done,
}

impl Stage {
    /// The stage's name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Preparing => "preparing",
            Stage::KMeans => "kmeans",
            Stage::Dbscan => "dbscan",
            Stage::Hdbscan => "hdbscan",
            Stage::Ensemble => "ensemble",
            Stage::Selecting => "selecting",
            Stage::Naming => "naming",
            Stage::Done => "done",
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// One progress report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// The stage running.
    pub stage: Stage,
    /// Overall completion, 0..=100.
    pub percent: f64,
    /// What just happened, for a log line.
    pub message: String,
    /// Metrics of the candidate just measured, if any.
    pub metrics: Option<Metrics>,
}

/// Calls the caller's progress callback with percentages that never go backwards.
pub(crate) struct Reporter<'callback> {
    callback: &'callback mut dyn FnMut(&Progress),
    percent: f64,
}

impl<'callback> Reporter<'callback> {
    /// Wraps the caller's callback.
    pub(crate) fn new(callback: &'callback mut dyn FnMut(&Progress)) -> Self {
        Self {
            callback,
            percent: 0.0,
        }
    }

    /// Reports `message` at `percent` (clamped to 0..=100 and to at least the last value).
    pub(crate) fn report(
        &mut self,
        stage: Stage,
        percent: f64,
        message: impl Into<String>,
        metrics: Option<Metrics>,
    ) {
        self.percent = percent.clamp(self.percent, 100.0);
        (self.callback)(&Progress {
            stage,
            percent: self.percent,
            message: message.into(),
            metrics,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_never_goes_backwards() {
        let mut seen = Vec::new();
        let mut callback = |progress: &Progress| seen.push(progress.percent);
        let mut reporter = Reporter::new(&mut callback);
        reporter.report(Stage::Preparing, 10.0, "a", None);
        reporter.report(Stage::KMeans, 5.0, "b", None);
        reporter.report(Stage::Done, 150.0, "c", None);
        assert_eq!(seen, vec![10.0, 10.0, 100.0]);
    }

    #[test]
    fn stages_serialize_in_snake_case() {
        assert_eq!(serde_json::to_string(&Stage::KMeans).unwrap(), "\"kmeans\"");
        assert_eq!(Stage::KMeans.to_string(), "kmeans");
    }
}
