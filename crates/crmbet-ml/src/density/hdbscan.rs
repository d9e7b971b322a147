//! HDBSCAN (Campello, Moulavi and Sander 2013), following scikit-learn's `HDBSCAN` with its
//! defaults: Euclidean metric, `alpha = 1`, excess-of-mass cluster selection,
//! `cluster_selection_epsilon = 0`, `allow_single_cluster = false`.
//!
//! The steps:
//! 1. core distance of a point: distance to its `min_samples`-th nearest neighbour, the
//!    point itself counted first;
//! 2. mutual reachability of two points: the largest of their distance and both core
//!    distances;
//! 3. a minimum spanning tree of the dense mutual-reachability graph (Prim, O(n²) time and
//!    O(n) memory);
//! 4. the single-linkage hierarchy: tree edges merged in increasing weight;
//! 5. the condensed tree: walking down from the root, a split where both sides hold at least
//!    `min_cluster_size` points makes two child clusters; otherwise the smaller side's points
//!    fall out of the current cluster at `lambda = 1 / distance`;
//! 6. stability of a cluster: sum over its points of `lambda_leave - lambda_birth`;
//!    excess of mass keeps a cluster when its stability is at least the summed stability of
//!    the clusters selected below it;
//! 7. a point takes the selected cluster above where it fell out, else it is noise.

use super::neighbours::{kth_neighbour_squared_distances, squared_distance_within};
use super::{
    CoreReach, DensityResult, all_noise, finite_standard_matrix, relabel_by_first_appearance,
};
use ndarray::{Array2, ArrayView2};
use serde_json::json;

/// The parameters of one HDBSCAN fit.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct HdbscanParams {
    /// Smallest group of points that counts as a cluster (scikit-learn's
    /// `min_cluster_size`); values below 2 are raised to 2.
    pub min_cluster_size: usize,
    /// Neighbours, the point itself included, that define a point's core distance; `None`
    /// takes `min_cluster_size`, as scikit-learn does.
    pub min_samples: Option<usize>,
}

/// HDBSCAN with `min_samples = min_cluster_size`, scikit-learn's default.
pub(crate) fn hdbscan(points: ArrayView2<f64>, min_cluster_size: usize) -> DensityResult {
    hdbscan_with(
        points,
        &HdbscanParams {
            min_cluster_size,
            min_samples: None,
        },
    )
}

/// Cluster labels from HDBSCAN (`None` = noise), numbered by order of first appearance in
/// `points`; the entry point the agreement test against scikit-learn uses.
pub fn hdbscan_labels(points: ArrayView2<f64>, min_cluster_size: usize) -> Vec<Option<usize>> {
    hdbscan(points, min_cluster_size).labels
}

/// HDBSCAN with explicit parameters. Too few points for `min_samples` or
/// `min_cluster_size`, or a non-finite coordinate, give all noise (the parameters say why).
pub(crate) fn hdbscan_with(points: ArrayView2<f64>, params: &HdbscanParams) -> DensityResult {
    let count = points.nrows();
    let min_cluster_size = params.min_cluster_size.max(2);
    let min_samples = params.min_samples.unwrap_or(min_cluster_size).max(1);
    let mut parameters = json!({
        "method": "hdbscan",
        "min_cluster_size": min_cluster_size,
        "min_samples": min_samples,
        "cluster_selection": "excess_of_mass",
        "allow_single_cluster": false,
    });
    if count < 2 || count < min_samples || count < min_cluster_size {
        parameters["skipped"] = json!(format!(
            "{count} points, fewer than min_samples ({min_samples}) or min_cluster_size ({min_cluster_size})"
        ));
        return all_noise(count, parameters, points.ncols());
    }
    let Some(matrix) = finite_standard_matrix(points) else {
        parameters["skipped"] = json!("a coordinate is not finite");
        return all_noise(count, parameters, points.ncols());
    };
    let core_squared = kth_neighbour_squared_distances(&matrix, min_samples);
    let tree = minimum_spanning_tree(&matrix, &core_squared);
    let hierarchy = single_linkage(count, tree);
    let condensed = condense(&hierarchy, count, min_cluster_size);
    let selected = select_excess_of_mass(&condensed);
    let owners: Vec<Option<usize>> = condensed
        .point_cluster
        .iter()
        .map(|&cluster| selected[cluster])
        .collect();
    let labels = relabel_by_first_appearance(&owners);
    let reach =
        CoreReach::from_labelled_points(&matrix, &labels, |point| core_squared[point].sqrt());
    DensityResult {
        labels,
        parameters,
        reach,
    }
}

/// An edge of the minimum spanning tree; `squared` is the squared mutual reachability.
#[derive(Clone, Copy, Debug)]
struct TreeEdge {
    from: usize,
    to: usize,
    squared: f64,
}

/// Prim's algorithm on the implicit complete graph of mutual reachability, starting at
/// point 0 and scanning candidates in index order (scikit-learn's order, so ties resolve
/// alike). A candidate whose core distance, or the current point's, is already no better
/// than its best link skips the distance computation; others stop summing at that bound.
fn minimum_spanning_tree(matrix: &Array2<f64>, core_squared: &[f64]) -> Vec<TreeEdge> {
    let count = matrix.nrows();
    let rows: Vec<&[f64]> = matrix
        .rows()
        .into_iter()
        .map(|row| row.to_slice().unwrap_or(&[]))
        .collect();
    // Points not yet in the tree, in increasing index order, with their best link so far.
    let mut outside: Vec<usize> = (1..count).collect();
    let mut best_squared = vec![f64::INFINITY; count];
    let mut best_source = vec![0_usize; count];
    let mut edges = Vec::with_capacity(count.saturating_sub(1));
    let mut current = 0_usize;
    while !outside.is_empty() {
        let current_core = core_squared[current];
        let current_row = rows[current];
        let mut chosen: Option<(usize, f64)> = None;
        let mut kept = 0;
        for position in 0..outside.len() {
            let candidate = outside[position];
            if candidate == current {
                continue;
            }
            outside[kept] = candidate;
            kept += 1;
            let floor = current_core.max(core_squared[candidate]);
            let known = best_squared[candidate];
            if floor < known {
                let squared = squared_distance_within(current_row, rows[candidate], known);
                let reachability = floor.max(squared);
                if reachability < known {
                    best_squared[candidate] = reachability;
                    best_source[candidate] = current;
                }
            }
            let reach = best_squared[candidate];
            if chosen.is_none_or(|(_, smallest)| reach < smallest) {
                chosen = Some((candidate, reach));
            }
        }
        outside.truncate(kept);
        let Some((next, squared)) = chosen else {
            break;
        };
        edges.push(TreeEdge {
            from: best_source[next],
            to: next,
            squared,
        });
        current = next;
    }
    edges
}

/// One merge of the single-linkage hierarchy: nodes below `count` are points, node
/// `count + i` is the i-th merge.
#[derive(Clone, Copy, Debug)]
struct Merge {
    left: usize,
    right: usize,
    distance: f64,
    size: usize,
}

/// Merges the tree edges in increasing weight (a stable sort, so equal weights keep Prim's
/// order) into a binary hierarchy of `count - 1` merges.
fn single_linkage(count: usize, mut edges: Vec<TreeEdge>) -> Vec<Merge> {
    edges.sort_by(|left, right| left.squared.total_cmp(&right.squared));
    let mut parent: Vec<usize> = (0..count).collect();
    let mut node_of_root: Vec<usize> = (0..count).collect();
    let mut size = vec![1_usize; count];
    let mut merges = Vec::with_capacity(edges.len());
    for (index, edge) in edges.iter().enumerate() {
        let from_root = find_root(&mut parent, edge.from);
        let to_root = find_root(&mut parent, edge.to);
        debug_assert_ne!(from_root, to_root, "a spanning tree has no cycle");
        let merged_size = size[from_root] + size[to_root];
        merges.push(Merge {
            left: node_of_root[from_root],
            right: node_of_root[to_root],
            distance: edge.squared.sqrt(),
            size: merged_size,
        });
        let (big, small) = if size[from_root] >= size[to_root] {
            (from_root, to_root)
        } else {
            (to_root, from_root)
        };
        parent[small] = big;
        size[big] = merged_size;
        node_of_root[big] = count + index;
    }
    merges
}

/// Union-find root with path halving.
fn find_root(parent: &mut [usize], mut node: usize) -> usize {
    while parent[node] != node {
        parent[node] = parent[parent[node]];
        node = parent[node];
    }
    node
}

/// The condensed tree: clusters indexed so that a parent comes before its children
/// (cluster 0 is the root), and for each point the cluster it fell out of and when.
#[derive(Debug)]
struct CondensedTree {
    parent: Vec<Option<usize>>,
    /// `lambda = 1 / distance` at which the cluster split from its parent; 0 for the root.
    birth: Vec<f64>,
    size: Vec<usize>,
    point_cluster: Vec<usize>,
    point_lambda: Vec<f64>,
}

impl CondensedTree {
    fn add_cluster(&mut self, parent: usize, birth: f64, size: usize) -> usize {
        self.parent.push(Some(parent));
        self.birth.push(birth);
        self.size.push(size);
        self.parent.len() - 1
    }
}

fn lambda_of(distance: f64) -> f64 {
    if distance > 0.0 {
        1.0 / distance
    } else {
        f64::INFINITY
    }
}

/// Walks the hierarchy from the root, keeping a split only where both sides hold at least
/// `min_cluster_size` points.
fn condense(hierarchy: &[Merge], count: usize, min_cluster_size: usize) -> CondensedTree {
    let mut tree = CondensedTree {
        parent: vec![None],
        birth: vec![0.0],
        size: vec![count],
        point_cluster: vec![0; count],
        point_lambda: vec![0.0; count],
    };
    let node_size = |node: usize| {
        if node < count {
            1
        } else {
            hierarchy[node - count].size
        }
    };
    let root = count + hierarchy.len() - 1;
    // (hierarchy node, cluster it belongs to, lambda at which it was reached)
    let mut pending = vec![(root, 0_usize, 0.0_f64)];
    let mut leaves = Vec::new();
    while let Some((node, cluster, reached)) = pending.pop() {
        if node < count {
            tree.point_cluster[node] = cluster;
            tree.point_lambda[node] = reached;
            continue;
        }
        let merge = hierarchy[node - count];
        let lambda = lambda_of(merge.distance);
        let left_big = node_size(merge.left) >= min_cluster_size;
        let right_big = node_size(merge.right) >= min_cluster_size;
        if left_big && right_big {
            for child in [merge.left, merge.right] {
                let child_cluster = tree.add_cluster(cluster, lambda, node_size(child));
                pending.push((child, child_cluster, lambda));
            }
            continue;
        }
        for (child, big) in [(merge.left, left_big), (merge.right, right_big)] {
            if big {
                pending.push((child, cluster, lambda));
                continue;
            }
            leaves.clear();
            collect_points(hierarchy, count, child, &mut leaves);
            for &point in &leaves {
                tree.point_cluster[point] = cluster;
                tree.point_lambda[point] = lambda;
            }
        }
    }
    tree
}

/// The points under a hierarchy node.
fn collect_points(hierarchy: &[Merge], count: usize, node: usize, points: &mut Vec<usize>) {
    let mut pending = vec![node];
    while let Some(node) = pending.pop() {
        if node < count {
            points.push(node);
        } else {
            let merge = hierarchy[node - count];
            pending.push(merge.left);
            pending.push(merge.right);
        }
    }
}

/// Excess-of-mass selection without the root; returns, per condensed cluster, the selected
/// cluster at or above it (`None` where no selected cluster covers it).
fn select_excess_of_mass(tree: &CondensedTree) -> Vec<Option<usize>> {
    let clusters = tree.parent.len();
    let mut stability = vec![0.0_f64; clusters];
    for (&cluster, &lambda) in tree.point_cluster.iter().zip(&tree.point_lambda) {
        stability[cluster] += lambda - tree.birth[cluster];
    }
    for child in 1..clusters {
        if let Some(parent) = tree.parent[child] {
            stability[parent] += (tree.birth[child] - tree.birth[parent]) * tree.size[child] as f64;
        }
    }
    let mut below = vec![0.0_f64; clusters];
    let mut chosen = vec![false; clusters];
    // Children have larger indices than their parent, so this visits children first.
    for cluster in (1..clusters).rev() {
        // A leaf has nothing below (0), so it is chosen; NaN stabilities (points at zero
        // distance) compare false and choose the cluster, as in scikit-learn.
        let children_stability = below[cluster];
        let best = if children_stability > stability[cluster] {
            children_stability
        } else {
            chosen[cluster] = true;
            stability[cluster]
        };
        if let Some(parent) = tree.parent[cluster] {
            below[parent] += best;
        }
    }
    let mut owner: Vec<Option<usize>> = vec![None; clusters];
    for cluster in 1..clusters {
        owner[cluster] = match tree.parent[cluster].and_then(|parent| owner[parent]) {
            Some(above) => Some(above),
            None if chosen[cluster] => Some(cluster),
            None => None,
        };
    }
    owner
}

#[cfg(test)]
mod tests {
    use super::super::test_points::{Random, blobs_with_noise, worst_blob_purity};
    use super::*;
    use ndarray::Array2;

    #[test]
    fn finds_blobs_and_marks_background_as_noise() {
        let (points, truth) = blobs_with_noise(7);
        let result = hdbscan(points.view(), 25);
        assert_eq!(result.cluster_count(), 3, "labels {:?}", result.labels);
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
        assert_eq!(result.parameters["min_samples"], 25);
    }

    #[test]
    fn labels_are_numbered_by_first_appearance() {
        let (points, _) = blobs_with_noise(11);
        let labels = hdbscan(points.view(), 25).labels;
        let mut next = 0;
        for label in labels.iter().flatten() {
            assert!(*label <= next);
            if *label == next {
                next += 1;
            }
        }
    }

    #[test]
    fn a_single_dense_blob_is_noise_without_single_cluster_selection() {
        let mut random = Random::new(3);
        let points = Array2::from_shape_simple_fn((400, 3), || random.normal());
        let labels = hdbscan(points.view(), 25).labels;
        let clusters: std::collections::BTreeSet<usize> =
            labels.iter().flatten().copied().collect();
        // scikit-learn (allow_single_cluster=False) gives all noise here or, by chance, a
        // couple of sub-clusters; never one cluster of everything.
        assert!(clusters.len() != 1 || labels.iter().any(Option::is_none));
    }

    #[test]
    fn identical_points_are_all_noise_like_scikit_learn() {
        let points = Array2::from_elem((50, 3), 1.5);
        let result = hdbscan(points.view(), 5);
        assert_eq!(result.labels, vec![None; 50]);
    }

    #[test]
    fn fewer_points_than_min_samples_are_noise() {
        let points = Array2::from_shape_fn((4, 2), |(row, column)| (row + column) as f64);
        let result = hdbscan_with(
            points.view(),
            &HdbscanParams {
                min_cluster_size: 2,
                min_samples: Some(10),
            },
        );
        assert_eq!(result.labels, vec![None; 4]);
        assert!(result.parameters["skipped"].is_string());
        assert!(
            hdbscan(Array2::<f64>::zeros((0, 3)).view(), 5)
                .labels
                .is_empty()
        );
        assert_eq!(
            hdbscan(Array2::<f64>::zeros((1, 3)).view(), 5).labels,
            vec![None]
        );
    }

    #[test]
    fn a_non_finite_coordinate_gives_noise_not_a_panic() {
        let (mut points, _) = blobs_with_noise(5);
        points[[3, 1]] = f64::NAN;
        let result = hdbscan(points.view(), 25);
        assert!(result.labels.iter().all(Option::is_none));
    }

    #[test]
    fn same_points_give_identical_labels() {
        let (points, _) = blobs_with_noise(23);
        let first = hdbscan(points.view(), 20);
        let second = hdbscan(points.view(), 20);
        assert_eq!(first.labels, second.labels);
        assert_eq!(first.parameters, second.parameters);
    }

    #[test]
    fn column_major_input_gives_the_same_labels() {
        let (points, _) = blobs_with_noise(13);
        let transposed = points.t().to_owned();
        let labels = hdbscan(transposed.t(), 25).labels;
        assert_eq!(labels, hdbscan(points.view(), 25).labels);
    }

    #[test]
    fn spanning_tree_weights_match_a_brute_force_prim() {
        let (points, _) = blobs_with_noise(17);
        let matrix = points.as_standard_layout().into_owned();
        let core = kth_neighbour_squared_distances(&matrix, 5);
        let mut fast: Vec<f64> = minimum_spanning_tree(&matrix, &core)
            .iter()
            .map(|edge| edge.squared)
            .collect();
        let count = matrix.nrows();
        let reach = |a: usize, b: usize| {
            let squared = super::super::neighbours::squared_distance(
                matrix.row(a).to_slice().unwrap(),
                matrix.row(b).to_slice().unwrap(),
            );
            squared.max(core[a]).max(core[b])
        };
        let mut inside = vec![false; count];
        let mut best: Vec<f64> = (0..count).map(|point| reach(0, point)).collect();
        inside[0] = true;
        let mut slow = Vec::new();
        for _ in 1..count {
            let next = (0..count)
                .filter(|&point| !inside[point])
                .min_by(|&a, &b| best[a].total_cmp(&best[b]))
                .unwrap();
            slow.push(best[next]);
            inside[next] = true;
            for point in 0..count {
                if !inside[point] {
                    best[point] = best[point].min(reach(next, point));
                }
            }
        }
        fast.sort_by(f64::total_cmp);
        slow.sort_by(f64::total_cmp);
        assert_eq!(fast, slow);
    }
}
