//! Quality of a clustering: silhouette (on a sample), Davies–Bouldin and Calinski–Harabasz
//! (on every player), cluster sizes. Noise points (`None`) are left out of every metric.
//!
//! The silhouettes of many labellings are computed in one pass over the sample's point
//! pairs ([`silhouettes`]): each block of rows gets its distances to the whole sample once
//! (one matrix product, `|x|² + |y|² − 2x·y`), and one more product with a 0/1 membership
//! matrix gives, for every labelling at once, each row's distance sum to every cluster. A
//! sweep over k = 2..=12 therefore costs little more than one silhouette.

use ndarray::parallel::prelude::*;
use ndarray::{Array1, Array2, ArrayView2, Axis, Slice};
use serde::{Deserialize, Serialize};

/// Rows of the distance matrix computed at once by one thread.
const BLOCK_ROWS: usize = 256;

/// Quality of one clustering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Mean silhouette on the silhouette sample, -1..=1, higher is better.
    pub silhouette: f64,
    /// Davies–Bouldin index on all clustered players, lower is better.
    pub davies_bouldin: f64,
    /// Calinski–Harabasz index on all clustered players, higher is better.
    pub calinski_harabasz: f64,
    /// Mean adjusted Rand index between bootstrap fits (0 when not measured).
    pub stability: f64,
    /// Players per cluster label.
    pub cluster_sizes: Vec<usize>,
    /// Share of players marked as noise (outliers).
    pub noise_fraction: f64,
}

/// Mean silhouette of each labelling on the `sample` rows, in one pass over the pairs.
/// Labellings hold a label per point of `points`; NaN for a labelling with fewer than two
/// clusters among the sample's clustered points.
pub(crate) fn silhouettes(
    points: ArrayView2<'_, f64>,
    sample: &[usize],
    labellings: &[&[Option<usize>]],
) -> Vec<f64> {
    let sampled = points.select(Axis(0), sample);
    let norms: Array1<f64> = sampled
        .rows()
        .into_iter()
        .map(|row| row.dot(&row))
        .collect();
    // Column offset of each labelling in the membership matrix, and cluster sizes.
    let mut offsets = Vec::with_capacity(labellings.len());
    let mut sizes: Vec<Vec<usize>> = Vec::with_capacity(labellings.len());
    let mut width = 0;
    for labels in labellings {
        let clusters = sample
            .iter()
            .filter_map(|row| labels[*row])
            .max()
            .map_or(0, |max| max + 1);
        let mut counts = vec![0usize; clusters];
        for row in sample {
            if let Some(label) = labels[*row] {
                counts[label] += 1;
            }
        }
        offsets.push(width);
        width += clusters;
        sizes.push(counts);
    }
    let mut membership = Array2::<f64>::zeros((sample.len(), width));
    for (labelling, labels) in labellings.iter().enumerate() {
        for (position, row) in sample.iter().enumerate() {
            if let Some(label) = labels[*row] {
                membership[[position, offsets[labelling] + label]] = 1.0;
            }
        }
    }
    let starts: Vec<usize> = (0..sample.len()).step_by(BLOCK_ROWS).collect();
    let per_block: Vec<Vec<Vec<f64>>> = starts
        .par_iter()
        .map(|start| {
            let end = (start + BLOCK_ROWS).min(sample.len());
            let block = sampled.slice_axis(Axis(0), Slice::from(*start..end));
            let mut distances = block.dot(&sampled.t());
            for (offset, mut row) in distances.rows_mut().into_iter().enumerate() {
                let own = norms[start + offset];
                for (value, other) in row.iter_mut().zip(norms.iter()) {
                    *value = (own + other - 2.0 * *value).max(0.0).sqrt();
                }
                row[start + offset] = 0.0;
            }
            let sums = distances.dot(&membership);
            (0..end - start)
                .map(|offset| {
                    let row = sample[start + offset];
                    labellings
                        .iter()
                        .enumerate()
                        .map(|(labelling, labels)| {
                            let Some(own) = labels[row] else {
                                return f64::NAN;
                            };
                            let counts = &sizes[labelling];
                            let base = offsets[labelling];
                            point_silhouette(
                                own,
                                counts,
                                sums.row(offset)
                                    .to_slice()
                                    .map(|all| &all[base..base + counts.len()]),
                            )
                        })
                        .collect()
                })
                .collect()
        })
        .collect();
    let mut totals = vec![0.0; labellings.len()];
    let mut counted = vec![0usize; labellings.len()];
    for block in &per_block {
        for row in block {
            for (labelling, value) in row.iter().enumerate() {
                if !value.is_nan() {
                    totals[labelling] += value;
                    counted[labelling] += 1;
                }
            }
        }
    }
    totals
        .iter()
        .zip(&counted)
        .zip(&sizes)
        .map(|((total, count), counts)| {
            let clusters = counts.iter().filter(|size| **size > 0).count();
            if clusters < 2 || *count == 0 {
                f64::NAN
            } else {
                total / *count as f64
            }
        })
        .collect()
}

/// Silhouette of one point from its distance sums to every cluster (sums of `None` mean
/// the matrix product's row was not contiguous, which a fresh product never is).
fn point_silhouette(own: usize, counts: &[usize], sums: Option<&[f64]>) -> f64 {
    let Some(sums) = sums else {
        return f64::NAN;
    };
    if counts[own] <= 1 {
        return 0.0;
    }
    let within = sums[own] / (counts[own] - 1) as f64;
    let nearest_other = counts
        .iter()
        .zip(sums)
        .enumerate()
        .filter(|(cluster, (count, _))| *cluster != own && **count > 0)
        .map(|(_, (count, sum))| sum / *count as f64)
        .fold(f64::INFINITY, f64::min);
    if !nearest_other.is_finite() {
        return 0.0;
    }
    let scale = within.max(nearest_other);
    if scale <= 0.0 {
        return 0.0;
    }
    (nearest_other - within) / scale
}

/// Centroid of each label `0..clusters` over the clustered points.
pub(crate) fn centroids(
    points: ArrayView2<'_, f64>,
    labels: &[Option<usize>],
    clusters: usize,
) -> Array2<f64> {
    let mut sums = Array2::<f64>::zeros((clusters, points.ncols()));
    let mut counts = vec![0usize; clusters];
    for (row, label) in points.rows().into_iter().zip(labels) {
        if let Some(label) = label {
            let mut target = sums.row_mut(*label);
            target += &row;
            counts[*label] += 1;
        }
    }
    for (mut row, count) in sums.rows_mut().into_iter().zip(&counts) {
        if *count > 0 {
            row /= *count as f64;
        }
    }
    sums
}

/// Players per label `0..clusters`.
pub(crate) fn cluster_sizes(labels: &[Option<usize>], clusters: usize) -> Vec<usize> {
    let mut sizes = vec![0; clusters];
    for label in labels.iter().flatten() {
        sizes[*label] += 1;
    }
    sizes
}

/// Davies–Bouldin index: mean over clusters of the worst ratio of summed spreads to centroid
/// distance. 0 when fewer than two clusters are populated.
pub(crate) fn davies_bouldin(
    points: ArrayView2<'_, f64>,
    labels: &[Option<usize>],
    centroids: ArrayView2<'_, f64>,
) -> f64 {
    let clusters = centroids.nrows();
    let mut spread = vec![0.0; clusters];
    let mut counts = vec![0usize; clusters];
    for (row, label) in points.rows().into_iter().zip(labels) {
        if let Some(label) = label {
            spread[*label] += crate::kmeans::squared_distance(row, centroids.row(*label)).sqrt();
            counts[*label] += 1;
        }
    }
    let populated: Vec<usize> = (0..clusters)
        .filter(|cluster| counts[*cluster] > 0)
        .collect();
    if populated.len() < 2 {
        return 0.0;
    }
    for cluster in &populated {
        spread[*cluster] /= counts[*cluster] as f64;
    }
    let mut total = 0.0;
    for first in &populated {
        let worst = populated
            .iter()
            .filter(|second| *second != first)
            .map(|second| {
                let separation =
                    crate::kmeans::squared_distance(centroids.row(*first), centroids.row(*second))
                        .sqrt();
                if separation == 0.0 {
                    f64::INFINITY
                } else {
                    (spread[*first] + spread[*second]) / separation
                }
            })
            .fold(0.0, f64::max);
        total += worst;
    }
    total / populated.len() as f64
}

/// Calinski–Harabasz index: between-cluster over within-cluster dispersion, each per degree
/// of freedom. 0 when fewer than two clusters are populated.
pub(crate) fn calinski_harabasz(
    points: ArrayView2<'_, f64>,
    labels: &[Option<usize>],
    centroids: ArrayView2<'_, f64>,
) -> f64 {
    let clusters = centroids.nrows();
    let mut counts = vec![0usize; clusters];
    let mut overall = Array1::<f64>::zeros(points.ncols());
    let mut within = 0.0;
    for (row, label) in points.rows().into_iter().zip(labels) {
        if let Some(label) = label {
            counts[*label] += 1;
            overall += &row;
            within += crate::kmeans::squared_distance(row, centroids.row(*label));
        }
    }
    let clustered: usize = counts.iter().sum();
    let populated = counts.iter().filter(|count| **count > 0).count();
    if populated < 2 || clustered <= populated {
        return 0.0;
    }
    overall /= clustered as f64;
    let between: f64 = counts
        .iter()
        .enumerate()
        .map(|(cluster, count)| {
            *count as f64 * crate::kmeans::squared_distance(centroids.row(cluster), overall.view())
        })
        .sum();
    if within == 0.0 {
        return f64::INFINITY;
    }
    (between / (populated - 1) as f64) / (within / (clustered - populated) as f64)
}

/// Every metric of a labelling except stability, which the caller measures.
pub(crate) fn evaluate(
    points: ArrayView2<'_, f64>,
    labels: &[Option<usize>],
    clusters: usize,
    silhouette: f64,
) -> Metrics {
    let centres = centroids(points, labels, clusters);
    let noise = labels.iter().filter(|label| label.is_none()).count();
    Metrics {
        silhouette,
        davies_bouldin: davies_bouldin(points, labels, centres.view()),
        calinski_harabasz: calinski_harabasz(points, labels, centres.view()),
        stability: 0.0,
        cluster_sizes: cluster_sizes(labels, clusters),
        noise_fraction: if labels.is_empty() {
            0.0
        } else {
            noise as f64 / labels.len() as f64
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn some(labels: &[usize]) -> Vec<Option<usize>> {
        labels.iter().map(|label| Some(*label)).collect()
    }

    #[test]
    fn silhouette_matches_a_hand_computed_value() {
        // Points 0 and 1 together, 10 alone (a singleton scores 0):
        // s = ((10 - 1) / 10 + (9 - 1) / 9 + 0) / 3, as scikit-learn computes it.
        let points = array![[0.0], [1.0], [10.0]];
        let labels = some(&[0, 0, 1]);
        let expected = ((10.0 - 1.0) / 10.0 + (9.0 - 1.0) / 9.0 + 0.0) / 3.0;
        let value = silhouettes(points.view(), &[0, 1, 2], &[&labels])[0];
        assert!((value - expected).abs() < 1e-9, "{value} vs {expected}");
    }

    #[test]
    fn one_pass_equals_separate_passes_and_skips_noise() {
        let points = array![
            [0.0, 0.0],
            [0.5, 0.1],
            [5.0, 5.0],
            [5.2, 4.9],
            [9.0, 0.0],
            [9.1, 0.3]
        ];
        let first = some(&[0, 0, 1, 1, 2, 2]);
        let second = vec![Some(0), Some(0), Some(0), None, Some(1), Some(1)];
        let rows: Vec<usize> = (0..6).collect();
        let together = silhouettes(points.view(), &rows, &[&first, &second]);
        let alone_first = silhouettes(points.view(), &rows, &[&first])[0];
        let alone_second = silhouettes(points.view(), &rows, &[&second])[0];
        assert!((together[0] - alone_first).abs() < 1e-12);
        assert!((together[1] - alone_second).abs() < 1e-12);
        assert!(together[0] > 0.8);
    }

    #[test]
    fn davies_bouldin_and_calinski_harabasz_match_scikit_learn() {
        let points = array![[0.0, 0.0], [0.0, 2.0], [4.0, 0.0], [4.0, 2.0]];
        let labels = some(&[0, 0, 1, 1]);
        let metrics = evaluate(points.view(), &labels, 2, 0.0);
        // scikit-learn: davies_bouldin_score = 0.5, calinski_harabasz_score = 8.0
        assert!((metrics.davies_bouldin - 0.5).abs() < 1e-12);
        assert!((metrics.calinski_harabasz - 8.0).abs() < 1e-12);
        assert_eq!(metrics.cluster_sizes, vec![2, 2]);
        assert_eq!(metrics.noise_fraction, 0.0);
    }
}
