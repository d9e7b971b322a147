//! DBSCAN (linfa-clustering's algorithm, label for label), with the peer's automatic
//! parameters: `min_samples = 2 × dimensions` and `eps` at the knee of the sorted
//! `min_samples`-nearest-neighbour distances.

use super::neighbours::{
    Neighbourhoods, eps_neighbourhoods, kth_neighbour_squared_distances, lane_squared_distance,
    row_slices,
};
use super::{
    CoreReach, DensityResult, all_noise, finite_standard_matrix, relabel_by_first_appearance,
};
use ndarray::{Array2, ArrayView2};
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
    // scikit-learn counts neighbours at distance <= eps, linfa's searches (and the expansion
    // below) at < tolerance: widen by rounding noise, and keep the tolerance positive
    // (identical points have a zero knee) with a square that does not underflow.
    let tolerance = (eps * (1.0 + 1e-9)).max(1e-150);
    let memberships = expand_clusters(&matrix, tolerance * tolerance, min_samples);
    let labels = relabel_by_first_appearance(&memberships);
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

/// DBSCAN's expansion exactly as linfa-clustering's `Dbscan` runs it (so the labels are
/// linfa's, point for point; a test compares them): points in index order; an unlabelled
/// point with at least `min_points` neighbours (itself included) starts a cluster, and a
/// breadth-first queue takes in its unlabelled neighbours; a dequeued point joins the
/// cluster and, when it is a core point too, queues its unlabelled neighbours not queued yet.
///
/// The neighbourhoods are found once, all pairs in parallel ([`eps_neighbourhoods`]), instead
/// of one linear scan per point; beyond their entry budget each point is scanned, as linfa's
/// `LinearSearch` does. Both use [`lane_squared_distance`] `< squared_radius`.
fn expand_clusters(
    matrix: &Array2<f64>,
    squared_radius: f64,
    min_points: usize,
) -> Vec<Option<usize>> {
    let neighbourhoods = eps_neighbourhoods(matrix, squared_radius);
    expand_with(matrix, squared_radius, min_points, neighbourhoods.as_ref())
}

/// [`expand_clusters`] with the neighbourhoods found already, or scanning when `None`.
fn expand_with(
    matrix: &Array2<f64>,
    squared_radius: f64,
    min_points: usize,
    neighbourhoods: Option<&Neighbourhoods>,
) -> Vec<Option<usize>> {
    let count = matrix.nrows();
    let rows = row_slices(matrix);
    let neighbours_of = |point: usize| -> Vec<usize> {
        match neighbourhoods {
            Some(found) => found
                .of(point)
                .iter()
                .map(|&other| other as usize)
                .collect(),
            None => (0..count)
                .filter(|&other| lane_squared_distance(rows[point], rows[other]) < squared_radius)
                .collect(),
        }
    };
    let mut memberships: Vec<Option<usize>> = vec![None; count];
    let mut queued = vec![false; count];
    let mut queue = std::collections::VecDeque::new();
    let mut cluster = 0;
    for start in 0..count {
        if memberships[start].is_some() {
            continue;
        }
        let neighbours = neighbours_of(start);
        if neighbours.len() < min_points {
            continue;
        }
        for &other in &neighbours {
            if memberships[other].is_none() && other != start {
                queued[other] = true;
                queue.push_back(other);
            }
        }
        memberships[start] = Some(cluster);
        while let Some(candidate) = queue.pop_front() {
            queued[candidate] = false;
            let neighbours = neighbours_of(candidate);
            memberships[candidate] = Some(cluster);
            if neighbours.len() >= min_points {
                for &other in &neighbours {
                    if memberships[other].is_none() && other != candidate && !queued[other] {
                        queue.push_back(other);
                        queued[other] = true;
                    }
                }
            }
        }
        cluster += 1;
    }
    memberships
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
    fn the_expansion_gives_linfas_labels_with_and_without_the_pair_search() {
        use linfa::prelude::Transformer;
        use linfa_clustering::Dbscan;
        use linfa_nn::{LinearSearch, distance::L2Dist};
        for seed in [2, 11, 17] {
            let (points, _) = blobs_with_noise(seed);
            for (min_points, radius) in [(6, 1.2), (10, 0.8), (4, 3.0)] {
                let expected = Dbscan::params_with(min_points, L2Dist, LinearSearch)
                    .tolerance(radius)
                    .transform(&points)
                    .unwrap()
                    .to_vec();
                let squared = radius * radius;
                let found = eps_neighbourhoods(&points, squared).unwrap();
                assert_eq!(
                    expand_with(&points, squared, min_points, Some(&found)),
                    expected,
                    "seed {seed}, radius {radius}"
                );
                assert_eq!(expand_with(&points, squared, min_points, None), expected);
            }
        }
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
