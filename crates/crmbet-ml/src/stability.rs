//! How reproducible a clustering is: the adjusted Rand index and bootstrap stability.
//!
//! Bootstrap stability of KMeans at a given k: fit KMeans (best of the usual restarts) on
//! `runs` seeded subsamples of the players, let every fit label the same reference players
//! (the silhouette sample) by nearest centroid, and average the adjusted Rand index over all
//! pairs of fits. Labelling one shared reference set is the "points common to both fits" of
//! the classic procedure, without losing most pairs to a small overlap of two subsamples.
//! A k that matches real structure is found again from any subsample (stability near 1);
//! a k that cuts a blob in two cuts it in a different place each time.

use std::collections::HashMap;
use std::hash::Hash;

use ndarray::{ArrayView2, Axis};

use crate::error::Error;
use crate::kmeans::{fit_kmeans_with_sample, nearest_labels};
use crate::sampling::sample_indices;

/// Random stream of the bootstrap subsamples.
const BOOTSTRAP_STREAM: u64 = 0x5354_0000;

/// Adjusted Rand index between two labellings of the same points: 1 for identical partitions
/// (up to renaming), about 0 for independent ones. Any label type works; a noise marker such
/// as `None` counts as one more label. Two partitions that are both a single cluster give 1.
///
/// ```
/// use crmbet_ml::adjusted_rand_index;
/// assert_eq!(adjusted_rand_index(&[0, 0, 1, 1], &["a", "a", "b", "b"]), 1.0);
/// ```
pub fn adjusted_rand_index<Left: Eq + Hash, Right: Eq + Hash>(
    left: &[Left],
    right: &[Right],
) -> f64 {
    debug_assert_eq!(left.len(), right.len());
    let points = left.len().min(right.len());
    if points < 2 {
        return 1.0;
    }
    let left_codes = dense_codes(&left[..points]);
    let right_codes = dense_codes(&right[..points]);
    let left_count = left_codes.iter().max().map_or(0, |max| max + 1);
    let right_count = right_codes.iter().max().map_or(0, |max| max + 1);
    let mut table = vec![0u64; left_count * right_count];
    let mut left_sizes = vec![0u64; left_count];
    let mut right_sizes = vec![0u64; right_count];
    for (a, b) in left_codes.iter().zip(&right_codes) {
        table[a * right_count + b] += 1;
        left_sizes[*a] += 1;
        right_sizes[*b] += 1;
    }
    let pairs = |count: u64| (count * count.saturating_sub(1) / 2) as f64;
    let index: f64 = table.iter().map(|count| pairs(*count)).sum();
    let left_pairs: f64 = left_sizes.iter().map(|count| pairs(*count)).sum();
    let right_pairs: f64 = right_sizes.iter().map(|count| pairs(*count)).sum();
    let expected = left_pairs * right_pairs / pairs(points as u64);
    let maximum = (left_pairs + right_pairs) / 2.0;
    if maximum == expected {
        return 1.0;
    }
    (index - expected) / (maximum - expected)
}

/// Labels renamed to `0..distinct` in order of first appearance.
fn dense_codes<Label: Eq + Hash>(labels: &[Label]) -> Vec<usize> {
    let mut codes: HashMap<&Label, usize> = HashMap::new();
    labels
        .iter()
        .map(|label| {
            let next = codes.len();
            *codes.entry(label).or_insert(next)
        })
        .collect()
}

/// How the bootstrap runs are drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct BootstrapPlan {
    /// Number of subsamples (fits); at least 2 for a pair.
    pub runs: usize,
    /// Players per subsample.
    pub subsample: usize,
    /// KMeans restarts per fit.
    pub n_init: usize,
    /// Seed of the training run.
    pub seed: u64,
}

/// Mean pairwise adjusted Rand index of KMeans fits with `k` clusters on bootstrap
/// subsamples, compared on the `reference` rows; also returns each fit's labels of the
/// reference rows (the ensemble reuses them).
pub(crate) fn kmeans_stability(
    points: ArrayView2<'_, f64>,
    k: usize,
    plan: BootstrapPlan,
    reference: &[usize],
) -> Result<(f64, Vec<Vec<usize>>), Error> {
    let reference_points = points.select(Axis(0), reference);
    let players = points.nrows();
    let subsample = plan.subsample.min(players);
    let mut labellings = Vec::with_capacity(plan.runs);
    for run in 0..plan.runs {
        let stream = BOOTSTRAP_STREAM + (k as u64) * 1000 + run as u64;
        let rows = sample_indices(players, subsample, plan.seed, stream);
        let sample = points.select(Axis(0), &rows);
        let fit = fit_kmeans_with_sample(
            sample.view(),
            k,
            plan.n_init,
            plan.seed ^ stream,
            usize::MAX,
        )?;
        let (labels, _) = nearest_labels(reference_points.view(), fit.centroids.view());
        labellings.push(labels);
    }
    Ok((mean_pairwise_agreement(&labellings), labellings))
}

/// Mean adjusted Rand index over all pairs of labellings (1 with fewer than two).
pub(crate) fn mean_pairwise_agreement(labellings: &[Vec<usize>]) -> f64 {
    let mut total = 0.0;
    let mut pairs = 0usize;
    for (position, first) in labellings.iter().enumerate() {
        for second in &labellings[position + 1..] {
            total += adjusted_rand_index(first, second);
            pairs += 1;
        }
    }
    if pairs == 0 {
        return 1.0;
    }
    total / pairs as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kmeans::tests::blobs;

    #[test]
    fn adjusted_rand_index_matches_known_values() {
        assert_eq!(adjusted_rand_index(&[0, 0, 1, 1], &[1, 1, 0, 0]), 1.0);
        // scikit-learn: adjusted_rand_score([0, 0, 1, 2], [0, 0, 1, 1]) = 0.5714285714285715
        let value = adjusted_rand_index(&[0, 0, 1, 2], &[0, 0, 1, 1]);
        assert!((value - 0.571_428_571_428_571_5).abs() < 1e-12);
        // scikit-learn: adjusted_rand_score([0, 0, 1, 1], [0, 1, 0, 1]) = -0.5
        assert!((adjusted_rand_index(&[0, 0, 1, 1], &[0, 1, 0, 1]) + 0.5).abs() < 1e-12);
        assert_eq!(adjusted_rand_index(&[3, 3, 3], &["x", "x", "x"]), 1.0);
    }

    #[test]
    fn real_clusters_are_stable() {
        let (points, _) = blobs(3, 200, 5, 8);
        let plan = BootstrapPlan {
            runs: 3,
            subsample: 300,
            n_init: 3,
            seed: 1,
        };
        let reference: Vec<usize> = (0..600).collect();
        let (stability, labellings) = kmeans_stability(points.view(), 3, plan, &reference).unwrap();
        assert_eq!(labellings.len(), 3);
        assert!(stability > 0.99, "stability {stability}");
    }
}
