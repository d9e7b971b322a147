//! DBSCAN through linfa-clustering, with the peer's automatic parameters: `min_samples = 2 ×
//! dimensions` and `eps` at the knee of the sorted `min_samples`-nearest-neighbour distances.

use super::neighbours::kth_neighbour_squared_distances;
use super::{
    CoreReach, DensityResult, all_noise, finite_standard_matrix, relabel_by_first_appearance,
};
use linfa::Float;
use linfa::prelude::{ParamGuard, Transformer};
use linfa_clustering::Dbscan;
use linfa_nn::{LinearSearch, distance::Distance};
use ndarray::{ArrayView, ArrayView2, Dimension, Zip};
use serde_json::json;

/// DBSCAN with `min_samples = 2 × dimensions` (the point itself counted, as scikit-learn
/// does) and `eps` = the knee of the ascending curve of distances to the `min_samples`-th
/// nearest neighbour (see [`knee_index`]).
///
/// DBSCAN itself is deterministic; `seed` is recorded in the parameters so the model says
/// which sample it was fitted on. Fewer points than `min_samples`, no columns, or a
/// non-finite coordinate give all noise (the parameters say why).
pub(crate) fn dbscan(points: ArrayView2<f64>, seed: u64) -> DensityResult {
    let count = points.nrows();
    let dimensions = points.ncols();
    let min_samples = (2 * dimensions).max(2);
    let mut parameters = json!({
        "method": "dbscan",
        "min_samples": min_samples,
        "seed": seed,
    });
    if dimensions == 0 || count < min_samples {
        parameters["skipped"] = json!(format!(
            "{count} points of {dimensions} dimensions, fewer than min_samples ({min_samples})"
        ));
        return all_noise(count, parameters, dimensions);
    }
    let Some(matrix) = finite_standard_matrix(points) else {
        parameters["skipped"] = json!("a coordinate is not finite");
        return all_noise(count, parameters, dimensions);
    };
    let neighbour_distances: Vec<f64> = kth_neighbour_squared_distances(&matrix, min_samples)
        .into_iter()
        .map(f64::sqrt)
        .collect();
    let mut curve = neighbour_distances.clone();
    curve.sort_by(f64::total_cmp);
    let knee = knee_index(&curve);
    let eps = curve[knee];
    parameters["eps"] = json!(eps);
    parameters["knee_index"] = json!(knee);
    // scikit-learn counts neighbours at distance <= eps, linfa's linear and ball-tree
    // searches at < tolerance: widen by rounding noise, and keep the tolerance positive
    // (identical points have a zero knee) with a square that does not underflow.
    let tolerance = (eps * (1.0 + 1e-9)).max(1e-150);
    let checked = match Dbscan::params_with(min_samples, Euclidean, LinearSearch)
        .tolerance(tolerance)
        .check()
    {
        Ok(checked) => checked,
        Err(error) => {
            parameters["skipped"] = json!(error.to_string());
            return all_noise(count, parameters, dimensions);
        }
    };
    let memberships = checked.transform(&matrix);
    let labels = relabel_by_first_appearance(memberships.as_slice().unwrap_or(&[]));
    debug_assert_eq!(labels.len(), count);
    let reach = CoreReach::from_points_where(
        &matrix,
        &labels,
        |row| neighbour_distances[row] < tolerance,
        |_| tolerance,
    );
    DensityResult {
        labels,
        parameters,
        reach,
    }
}

/// Euclidean distance for linfa's neighbour searches, summing contiguous rows in four lanes
/// (linfa's `L2Dist` goes through a generic zip, several times slower on 31 columns).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Euclidean;

impl<F: Float> Distance<F> for Euclidean {
    fn distance<D: Dimension>(&self, left: ArrayView<F, D>, right: ArrayView<F, D>) -> F {
        self.rdistance(left, right).sqrt()
    }

    fn rdistance<D: Dimension>(&self, left: ArrayView<F, D>, right: ArrayView<F, D>) -> F {
        let (Some(left), Some(right)) = (left.as_slice(), right.as_slice()) else {
            let mut total = F::zero();
            Zip::from(&left).and(&right).for_each(|&first, &second| {
                total += (first - second) * (first - second);
            });
            return total;
        };
        let mut lanes = [F::zero(); 4];
        let mut left_blocks = left.chunks_exact(4);
        let mut right_blocks = right.chunks_exact(4);
        for (left_block, right_block) in left_blocks.by_ref().zip(right_blocks.by_ref()) {
            for lane in 0..4 {
                let difference = left_block[lane] - right_block[lane];
                lanes[lane] += difference * difference;
            }
        }
        let mut total = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
        for (&first, &second) in left_blocks.remainder().iter().zip(right_blocks.remainder()) {
            total += (first - second) * (first - second);
        }
        total
    }

    fn rdist_to_dist(&self, squared: F) -> F {
        squared.sqrt()
    }

    fn dist_to_rdist(&self, distance: F) -> F {
        distance * distance
    }
}

/// Index of the point of an ascending curve farthest below the chord from its first to its
/// last point, with both axes scaled to [0, 1] (the peer's `knee_index`); the first such
/// point on ties, 0 for a flat or empty curve.
pub(crate) fn knee_index(curve: &[f64]) -> usize {
    let Some((&first, &last)) = curve.first().zip(curve.last()) else {
        return 0;
    };
    let span = last - first;
    let steps = curve.len().saturating_sub(1).max(1) as f64;
    let mut best = (0, f64::NEG_INFINITY);
    for (index, &value) in curve.iter().enumerate() {
        let along = index as f64 / steps;
        let height = if span > 0.0 {
            (value - first) / span
        } else {
            0.0
        };
        let gap = along - height;
        if gap > best.1 {
            best = (index, gap);
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::super::test_points::{Random, blobs_with_noise, worst_blob_purity};
    use super::*;
    use ndarray::Array2;

    #[test]
    fn knee_is_where_the_curve_turns_up() {
        let curve = [1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 5.0, 9.0];
        assert_eq!(knee_index(&curve), 5);
        assert_eq!(knee_index(&[]), 0);
        assert_eq!(knee_index(&[2.0]), 0);
        assert_eq!(knee_index(&[3.0, 3.0, 3.0]), 2);
    }

    #[test]
    fn finds_blobs_and_marks_background_as_noise() {
        let (points, truth) = blobs_with_noise(7);
        let result = dbscan(points.view(), 7);
        assert_eq!(
            result.cluster_count(),
            3,
            "parameters {}",
            result.parameters
        );
        let purity = worst_blob_purity(&truth, &result.labels);
        assert!(purity >= 0.9, "purity {purity}");
        let background_noise = truth
            .iter()
            .zip(&result.labels)
            .filter(|(expected, label)| expected.is_none() && label.is_none())
            .count();
        assert!(
            background_noise >= 30,
            "background noise {background_noise}"
        );
        assert_eq!(result.parameters["min_samples"], 6);
        assert!(result.parameters["eps"].as_f64().unwrap() > 0.0);
        assert!(!result.reach.labels.is_empty());
    }

    #[test]
    fn a_single_dense_blob_is_one_cluster() {
        let mut random = Random::new(3);
        let points = Array2::from_shape_simple_fn((400, 3), || random.normal());
        let result = dbscan(points.view(), 3);
        assert_eq!(
            result.cluster_count(),
            1,
            "parameters {}",
            result.parameters
        );
        let clustered = result.labels.iter().flatten().count();
        assert!(clustered >= 300, "clustered {clustered}");
    }

    #[test]
    fn identical_points_are_one_cluster() {
        let points = Array2::from_elem((30, 2), -4.0);
        let result = dbscan(points.view(), 0);
        assert_eq!(result.labels, vec![Some(0); 30]);
    }

    #[test]
    fn fewer_points_than_min_samples_are_noise() {
        let points = Array2::from_shape_fn((5, 3), |(row, column)| (row * column) as f64);
        let result = dbscan(points.view(), 0);
        assert_eq!(result.labels, vec![None; 5]);
        assert!(result.parameters["skipped"].is_string());
        assert!(
            dbscan(Array2::<f64>::zeros((0, 2)).view(), 0)
                .labels
                .is_empty()
        );
        assert_eq!(
            dbscan(Array2::<f64>::zeros((3, 0)).view(), 0).labels,
            vec![None; 3]
        );
    }

    #[test]
    fn a_non_finite_coordinate_gives_noise_not_a_panic() {
        let (mut points, _) = blobs_with_noise(5);
        points[[0, 0]] = f64::INFINITY;
        assert!(dbscan(points.view(), 0).labels.iter().all(Option::is_none));
    }

    #[test]
    fn same_points_give_identical_labels() {
        let (points, _) = blobs_with_noise(23);
        let first = dbscan(points.view(), 9);
        let second = dbscan(points.view(), 9);
        assert_eq!(first.labels, second.labels);
        assert_eq!(first.parameters, second.parameters);
    }
}
