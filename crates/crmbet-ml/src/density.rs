//! Density-based clustering: DBSCAN (linfa-clustering's algorithm, label for label, on
//! neighbourhoods found in parallel) and HDBSCAN (our own, agreeing with scikit-learn), and
//! the assignment of points outside the fitted sample.
//!
//! Both methods cost O(n²) in the points given, so training fits them on a sample (20 000
//! players by default) and [`assign_to_nearest_core`] labels everyone else: a player takes
//! the cluster of the nearest core point of the sample when it lies within that point's
//! reach, and is noise otherwise.
//!
//! Labels are deterministic: the same points give the same labels, clusters numbered
//! `0..n_clusters` in order of first appearance (the cluster of the first clustered point is
//! 0, the next new cluster met is 1, ...); `None` is noise.

mod assign;
mod dbscan;
mod hdbscan;
mod neighbours;

pub(crate) use assign::{assign_to_nearest_core, assign_to_nearest_core_exhaustively};

pub(crate) use dbscan::dbscan;
pub(crate) use hdbscan::hdbscan;
pub use hdbscan::hdbscan_labels;

use ndarray::{Array2, ArrayView2};

/// Labels of a density clustering of a sample, the parameters that produced them, and what
/// is needed to label points outside the sample.
#[derive(Clone, Debug)]
pub(crate) struct DensityResult {
    /// One label per point in the order given: `Some(0..n_clusters)`, `None` = noise.
    pub labels: Vec<Option<usize>>,
    /// The method and its parameters (`eps`, `min_samples`, `min_cluster_size`, ...), for
    /// the model record.
    pub parameters: serde_json::Value,
    /// The core points of the sample with their reach, for [`assign_to_nearest_core`].
    pub reach: CoreReach,
}

impl DensityResult {
    /// Number of clusters found (noise not counted).
    #[cfg(test)]
    pub(crate) fn cluster_count(&self) -> usize {
        self.labels
            .iter()
            .flatten()
            .max()
            .map_or(0, |largest| largest + 1)
    }
}

/// Core points of a fitted sample, each with its cluster and the distance it reaches: `eps`
/// for DBSCAN, the core distance for HDBSCAN.
#[derive(Clone, Debug, Default)]
pub(crate) struct CoreReach {
    /// Coordinates, one core point per row (standard layout).
    pub points: Array2<f64>,
    /// Cluster of each core point.
    pub labels: Vec<usize>,
    /// Reach of each core point, in the units of the coordinates.
    pub radius: Vec<f64>,
}

impl CoreReach {
    /// The clustered points among `matrix`'s rows, each reaching `radius_of(row)`.
    fn from_labelled_points(
        matrix: &Array2<f64>,
        labels: &[Option<usize>],
        radius_of: impl Fn(usize) -> f64,
    ) -> Self {
        Self::from_points_where(matrix, labels, |_| true, radius_of)
    }

    /// The clustered rows of `matrix` for which `is_core` holds.
    fn from_points_where(
        matrix: &Array2<f64>,
        labels: &[Option<usize>],
        is_core: impl Fn(usize) -> bool,
        radius_of: impl Fn(usize) -> f64,
    ) -> Self {
        let chosen: Vec<(usize, usize)> = labels
            .iter()
            .enumerate()
            .filter_map(|(row, label)| label.map(|cluster| (row, cluster)))
            .filter(|&(row, _)| is_core(row))
            .collect();
        let rows: Vec<usize> = chosen.iter().map(|&(row, _)| row).collect();
        Self {
            points: matrix.select(ndarray::Axis(0), &rows),
            labels: chosen.iter().map(|&(_, cluster)| cluster).collect(),
            radius: rows.iter().map(|&row| radius_of(row)).collect(),
        }
    }
}

/// All points noise, with no core points to assign from.
fn all_noise(count: usize, parameters: serde_json::Value, columns: usize) -> DensityResult {
    DensityResult {
        labels: vec![None; count],
        parameters,
        reach: CoreReach {
            points: Array2::zeros((0, columns)),
            labels: Vec::new(),
            radius: Vec::new(),
        },
    }
}

/// The points as an owned standard-layout matrix, or `None` if a coordinate is NaN or
/// infinite.
fn finite_standard_matrix(points: ArrayView2<f64>) -> Option<Array2<f64>> {
    if points.iter().any(|value| !value.is_finite()) {
        return None;
    }
    Some(points.as_standard_layout().into_owned())
}

/// Renumbers cluster ids (any `usize`) to `0..n_clusters` in order of first appearance.
fn relabel_by_first_appearance(labels: &[Option<usize>]) -> Vec<Option<usize>> {
    let mut renumbered = std::collections::HashMap::new();
    labels
        .iter()
        .map(|label| {
            label.map(|cluster| {
                let next = renumbered.len();
                *renumbered.entry(cluster).or_insert(next)
            })
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod test_points {
    //! Seeded Gaussian points for the density tests.

    use ndarray::Array2;
    use rand_xoshiro::Xoshiro256PlusPlus;
    use rand_xoshiro::rand_core::{RngCore, SeedableRng};

    /// A seeded source of uniform and standard normal numbers.
    pub(crate) struct Random(Xoshiro256PlusPlus);

    impl Random {
        pub(crate) fn new(seed: u64) -> Self {
            Self(Xoshiro256PlusPlus::seed_from_u64(seed))
        }

        /// Uniform in [0, 1).
        pub(crate) fn uniform(&mut self) -> f64 {
            (self.0.next_u64() >> 11) as f64 / (1_u64 << 53) as f64
        }

        /// Standard normal (Box-Muller).
        pub(crate) fn normal(&mut self) -> f64 {
            let radius = (-2.0 * (1.0 - self.uniform()).ln()).sqrt();
            radius * (2.0 * std::f64::consts::PI * self.uniform()).cos()
        }
    }

    /// Three Gaussian blobs of different spreads (300, 200 and 150 points) followed by 40
    /// uniform background points; the second value is each point's blob (`None` for the
    /// background).
    pub(crate) fn blobs_with_noise(seed: u64) -> (Array2<f64>, Vec<Option<usize>>) {
        let mut random = Random::new(seed);
        let centres = [[0.0, 0.0, 0.0], [8.0, 8.0, 0.0], [-8.0, 6.0, 4.0]];
        let spreads = [0.5, 1.0, 0.8];
        let sizes = [300, 200, 150];
        let background = 40;
        let total = sizes.iter().sum::<usize>() + background;
        let mut points = Array2::zeros((total, 3));
        let mut truth = Vec::with_capacity(total);
        let mut row = 0;
        for (blob, &size) in sizes.iter().enumerate() {
            for _ in 0..size {
                for column in 0..3 {
                    points[[row, column]] = centres[blob][column] + spreads[blob] * random.normal();
                }
                truth.push(Some(blob));
                row += 1;
            }
        }
        for _ in 0..background {
            for column in 0..3 {
                points[[row, column]] = 40.0 * random.uniform() - 20.0;
            }
            truth.push(None);
            row += 1;
        }
        (points, truth)
    }

    /// Share of the points of each true blob that carry that blob's most common label, the
    /// smallest over the blobs.
    pub(crate) fn worst_blob_purity(truth: &[Option<usize>], labels: &[Option<usize>]) -> f64 {
        let blobs = truth
            .iter()
            .flatten()
            .max()
            .map_or(0, |largest| largest + 1);
        (0..blobs)
            .map(|blob| {
                let members: Vec<Option<usize>> = truth
                    .iter()
                    .zip(labels)
                    .filter(|(expected, _)| **expected == Some(blob))
                    .map(|(_, label)| *label)
                    .collect();
                let mut counts = std::collections::HashMap::new();
                for label in members.iter().flatten() {
                    *counts.entry(*label).or_insert(0_usize) += 1;
                }
                let most = counts.values().copied().max().unwrap_or(0);
                most as f64 / members.len().max(1) as f64
            })
            .fold(1.0, f64::min)
    }
}

#[cfg(test)]
mod tests {
    use super::test_points::{Random, blobs_with_noise};
    use super::*;

    #[test]
    fn relabelling_follows_first_appearance() {
        let labels = [Some(7), None, Some(3), Some(7), Some(0), None, Some(3)];
        assert_eq!(
            relabel_by_first_appearance(&labels),
            vec![Some(0), None, Some(1), Some(0), Some(2), None, Some(1)]
        );
    }

    #[test]
    fn out_of_sample_points_take_the_cluster_of_the_sample_around_them() {
        let (sample, _) = blobs_with_noise(7);
        let fitted = hdbscan(sample.view(), 25);
        assert_eq!(fitted.cluster_count(), 3);
        let (fresh, truth) = blobs_with_noise(8);
        let assigned = assign_to_nearest_core(&fitted, fresh.view());
        let purity = test_points::worst_blob_purity(&truth, &assigned);
        assert!(purity >= 0.9, "purity {purity}");
        // The same blob in the fitted sample and in the fresh points gets the same label.
        let fitted_first = fitted.labels[0];
        assert_eq!(assigned[0], fitted_first);
        let far_away = ndarray::Array2::from_elem((1, 3), 1_000.0);
        assert_eq!(assign_to_nearest_core(&fitted, far_away.view()), vec![None]);
    }

    #[test]
    fn assigning_the_sample_itself_keeps_its_clusters() {
        let (sample, _) = blobs_with_noise(9);
        let fitted = dbscan(sample.view(), 1);
        let assigned = assign_to_nearest_core(&fitted, sample.view());
        for (fitted_label, assigned_label) in fitted.labels.iter().zip(&assigned) {
            if let Some(cluster) = fitted_label {
                assert_eq!(assigned_label, &Some(*cluster));
            }
        }
    }

    #[test]
    fn assignment_rejects_points_it_cannot_compare() {
        let (sample, _) = blobs_with_noise(4);
        let fitted = hdbscan(sample.view(), 25);
        let wrong_width = ndarray::Array2::<f64>::zeros((2, 5));
        assert_eq!(
            assign_to_nearest_core(&fitted, wrong_width.view()),
            vec![None, None]
        );
        let mut not_finite = ndarray::Array2::<f64>::zeros((1, 3));
        not_finite[[0, 2]] = f64::NAN;
        assert_eq!(
            assign_to_nearest_core(&fitted, not_finite.view()),
            vec![None]
        );
        let empty = all_noise(3, serde_json::json!({}), 3);
        let mut random = Random::new(1);
        let point = ndarray::Array2::from_shape_simple_fn((1, 3), || random.normal());
        assert_eq!(assign_to_nearest_core(&empty, point.view()), vec![None]);
    }
}
