//! KMeans with k-means++ restarts, on linfa-clustering.
//!
//! linfa does the clustering: k-means++ seeding and its Lloyd iterations, seeded with
//! `Xoshiro256Plus::seed_from_u64`. What this module adds is the schedule that keeps a
//! 200k-player sweep over k = 2..=12 fast:
//!
//! 1. with more players than [`RESTART_SAMPLE`], the `n_init` restarts run on a seeded sample
//!    of that many players, and the restart with the lowest inertia on the sample wins;
//! 2. linfa then refines the winner on every player, starting from its centroids
//!    (`KMeansInit::Precomputed`, one run), until the centroids move less than the tolerance;
//! 3. labels are the nearest centroid of each player, numbered by cluster size (largest
//!    first, ties by the lower first player), so the same data always gives the same numbers.
//!
//! The tolerance is scikit-learn's (squared centroid shift below 1e-4 of the mean feature
//! variance, i.e. a Frobenius shift of 0.01 on standard-scaled data). Nothing here depends on
//! thread scheduling: linfa's parallel loops are element-wise and every sum is sequential.

use linfa::DatasetBase;
use linfa::prelude::Fit;
use linfa_clustering::{KMeans, KMeansInit};
use ndarray::parallel::prelude::*;
use ndarray::{Array2, ArrayView1, ArrayView2, Axis};

use crate::distance::Euclidean;
use crate::error::Error;
use crate::sampling::{generator, sample_indices};

/// Players on which the restarts run; the winner is refined on all players.
pub(crate) const RESTART_SAMPLE: usize = 20_000;

/// Lloyd iterations at most, per run.
const MAX_ITERATIONS: u64 = 300;

/// Random stream of the restart sample of a k.
const SAMPLE_STREAM: u64 = 0x4B4D_0000;
/// Random stream of linfa's seeding of a k.
const SEEDING_STREAM: u64 = 0x4B4D_1000;

/// One KMeans solution.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct KMeansFit {
    /// The cluster of each point, `0..k`, numbered by size.
    pub labels: Vec<usize>,
    /// Centroids in the same numbering (k × features).
    pub centroids: Array2<f64>,
    /// Sum of squared distances of the points to their centroids.
    pub inertia: f64,
}

impl KMeansFit {
    /// Number of clusters.
    pub(crate) fn k(&self) -> usize {
        self.centroids.nrows()
    }
}

/// Fits KMeans with `k` clusters, the best of `n_init` k-means++ restarts, deterministic in
/// `seed`.
pub(crate) fn fit_kmeans(
    points: ArrayView2<'_, f64>,
    k: usize,
    n_init: usize,
    seed: u64,
) -> Result<KMeansFit, Error> {
    fit_kmeans_with_sample(points, k, n_init, seed, RESTART_SAMPLE)
}

/// [`fit_kmeans`] with an explicit restart sample size.
pub(crate) fn fit_kmeans_with_sample(
    points: ArrayView2<'_, f64>,
    k: usize,
    n_init: usize,
    seed: u64,
    restart_sample: usize,
) -> Result<KMeansFit, Error> {
    let players = points.nrows();
    if k < 1 || k > players {
        return Err(Error::NotEnoughPlayers {
            players,
            needed: k.max(1),
        });
    }
    let tolerance = tolerance(points);
    let stream = k as u64;
    let restarts = n_init.max(1);
    let centroids = if players > restart_sample {
        let rows = sample_indices(players, restart_sample, seed, SAMPLE_STREAM + stream);
        let sample = points.select(Axis(0), &rows);
        let seeded = run_linfa(
            sample.view(),
            k,
            KMeansInit::KMeansPlusPlus,
            restarts,
            tolerance,
            seed,
            SEEDING_STREAM + stream,
        )?;
        run_linfa(
            points,
            k,
            KMeansInit::Precomputed(seeded),
            1,
            tolerance,
            seed,
            SEEDING_STREAM + stream,
        )?
    } else {
        run_linfa(
            points,
            k,
            KMeansInit::KMeansPlusPlus,
            restarts,
            tolerance,
            seed,
            SEEDING_STREAM + stream,
        )?
    };
    Ok(canonical(points, centroids))
}

/// One linfa fit; returns its centroids.
fn run_linfa(
    points: ArrayView2<'_, f64>,
    k: usize,
    init: KMeansInit<f64>,
    runs: usize,
    tolerance: f64,
    seed: u64,
    stream: u64,
) -> Result<Array2<f64>, Error> {
    let dataset = DatasetBase::from(points);
    let model = KMeans::params_with(k, generator(seed, stream), Euclidean)
        .n_runs(runs)
        .init_method(init)
        .tolerance(tolerance)
        .max_n_iterations(MAX_ITERATIONS)
        .fit(&dataset)
        .map_err(|error| Error::Clustering {
            reason: error.to_string(),
        })?;
    Ok(model.centroids().clone())
}

/// scikit-learn's convergence rule in linfa's terms: linfa compares the Frobenius norm of the
/// centroid shift, scikit-learn its square against 1e-4 of the mean feature variance.
fn tolerance(points: ArrayView2<'_, f64>) -> f64 {
    let variance = points
        .var_axis(Axis(0), 0.0)
        .mean()
        .unwrap_or(1.0)
        .max(f64::MIN_POSITIVE);
    (1e-4 * variance).sqrt()
}

/// Labels by nearest centroid, empty clusters removed, clusters numbered by size.
fn canonical(points: ArrayView2<'_, f64>, centroids: Array2<f64>) -> KMeansFit {
    let (labels, _) = nearest_labels(points, centroids.view());
    let mut sizes = vec![0usize; centroids.nrows()];
    let mut first_seen = vec![usize::MAX; centroids.nrows()];
    for (row, label) in labels.iter().enumerate() {
        sizes[*label] += 1;
        first_seen[*label] = first_seen[*label].min(row);
    }
    let mut order: Vec<usize> = (0..centroids.nrows())
        .filter(|cluster| sizes[*cluster] > 0)
        .collect();
    order.sort_by(|left, right| {
        sizes[*right]
            .cmp(&sizes[*left])
            .then(first_seen[*left].cmp(&first_seen[*right]))
    });
    let mut renumber = vec![0usize; centroids.nrows()];
    for (new, old) in order.iter().enumerate() {
        renumber[*old] = new;
    }
    let centroids = centroids.select(Axis(0), &order);
    let labels: Vec<usize> = labels.iter().map(|label| renumber[*label]).collect();
    let inertia = inertia(points, centroids.view(), &labels);
    KMeansFit {
        labels,
        centroids,
        inertia,
    }
}

/// Sum of squared distances of points to their labelled centroid.
pub(crate) fn inertia(
    points: ArrayView2<'_, f64>,
    centroids: ArrayView2<'_, f64>,
    labels: &[usize],
) -> f64 {
    points
        .rows()
        .into_iter()
        .zip(labels)
        .map(|(row, label)| squared_distance(row, centroids.row(*label)))
        .sum()
}

/// The nearest centroid of every point and the squared distances to the nearest and the
/// second nearest (infinite with one centroid).
pub(crate) fn nearest_labels(
    points: ArrayView2<'_, f64>,
    centroids: ArrayView2<'_, f64>,
) -> (Vec<usize>, Vec<(f64, f64)>) {
    let nearest: Vec<(usize, f64, f64)> = points
        .axis_iter(Axis(0))
        .into_par_iter()
        .map(|row| nearest_two(row, centroids))
        .collect();
    let labels = nearest.iter().map(|(label, _, _)| *label).collect();
    let distances = nearest
        .iter()
        .map(|(_, first, second)| (*first, *second))
        .collect();
    (labels, distances)
}

/// The nearest centroid of one point, with the squared distances to the nearest and the
/// second nearest centroid.
pub(crate) fn nearest_two(
    point: ArrayView1<'_, f64>,
    centroids: ArrayView2<'_, f64>,
) -> (usize, f64, f64) {
    nearest_two_skipping(point, centroids, None)
}

/// [`nearest_two`] among the centroids other than `skip`.
pub(crate) fn nearest_two_skipping(
    point: ArrayView1<'_, f64>,
    centroids: ArrayView2<'_, f64>,
    skip: Option<usize>,
) -> (usize, f64, f64) {
    let mut best = (0, f64::INFINITY, f64::INFINITY);
    for (index, centroid) in centroids.rows().into_iter().enumerate() {
        if skip == Some(index) {
            continue;
        }
        let distance = squared_distance(point, centroid);
        if distance < best.1 {
            best = (index, distance, best.1);
        } else if distance < best.2 {
            best.2 = distance;
        }
    }
    best
}

/// Squared Euclidean distance.
pub(crate) fn squared_distance(left: ArrayView1<'_, f64>, right: ArrayView1<'_, f64>) -> f64 {
    match (left.as_slice(), right.as_slice()) {
        (Some(left), Some(right)) => left.iter().zip(right).map(|(a, b)| (a - b) * (a - b)).sum(),
        _ => left
            .iter()
            .zip(right.iter())
            .map(|(a, b)| (a - b) * (a - b))
            .sum(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sampling::below;

    /// `clusters` Gaussian-ish blobs of `per_cluster` points in `dimensions` dimensions, 10
    /// apart, and the true label of each point.
    pub(crate) fn blobs(
        clusters: usize,
        per_cluster: usize,
        dimensions: usize,
        seed: u64,
    ) -> (Array2<f64>, Vec<usize>) {
        let mut random = generator(seed, 99);
        let mut points = Array2::zeros((clusters * per_cluster, dimensions));
        let mut labels = Vec::new();
        for (row, mut point) in points.rows_mut().into_iter().enumerate() {
            let cluster = row % clusters;
            labels.push(cluster);
            for (dimension, value) in point.iter_mut().enumerate() {
                // Sum of uniforms: close enough to a Gaussian with sd 1.
                let noise: f64 = (0..12)
                    .map(|_| below(&mut random, 1_000_000) as f64 / 1_000_000.0)
                    .sum::<f64>()
                    - 6.0;
                let centre = if dimension % clusters == cluster {
                    10.0
                } else {
                    0.0
                };
                *value = centre + noise;
            }
        }
        (points, labels)
    }

    #[test]
    fn recovers_separated_blobs_exactly() {
        let (points, truth) = blobs(4, 150, 6, 3);
        let fit = fit_kmeans(points.view(), 4, 5, 1).unwrap();
        assert_eq!(
            crate::stability::adjusted_rand_index(&fit.labels, &truth),
            1.0
        );
    }

    #[test]
    fn same_seed_gives_bitwise_identical_fits() {
        let (points, _) = blobs(5, 300, 8, 4);
        let first = fit_kmeans_with_sample(points.view(), 5, 4, 9, 500).unwrap();
        let second = fit_kmeans_with_sample(points.view(), 5, 4, 9, 500).unwrap();
        assert_eq!(first, second);
        assert_eq!(first.inertia.to_bits(), second.inertia.to_bits());
    }

    #[test]
    fn clusters_are_numbered_by_size() {
        let (points, _) = blobs(3, 100, 4, 5);
        let fit = fit_kmeans(
            points.slice_axis(Axis(0), ndarray::Slice::from(0..250)),
            3,
            3,
            2,
        )
        .unwrap();
        let mut sizes = vec![0; fit.k()];
        for label in &fit.labels {
            sizes[*label] += 1;
        }
        assert!(sizes.windows(2).all(|pair| pair[0] >= pair[1]));
    }
}
