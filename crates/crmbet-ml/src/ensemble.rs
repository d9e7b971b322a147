//! Consensus of KMeans, DBSCAN and HDBSCAN through a co-association matrix.
//!
//! On an evenly spread subset of the silhouette sample ([`ENSEMBLE_SAMPLE`] players), every
//! base partition votes: the chosen KMeans, each KMeans bootstrap fit at the same k, DBSCAN and
//! HDBSCAN (their labels after the rest of the players were assigned to core points). The
//! co-association of two players is the share of partitions that put both in the same cluster
//! (noise never co-clusters). Average linkage on `1 − co-association`, cut at 0.5, gives the
//! consensus: two players end up together when, on average, most partitions agree they
//! belong together. Consensus clusters smaller than 1% of the subset (at least 5 players) are
//! outliers.
//!
//! A subset player's confidence is its mean co-association with its consensus cluster. Every
//! other player joins the nearest consensus centroid (scaled space) unless it lies farther
//! than 99% of that cluster's subset members, in which case it is an outlier; its
//! confidence is `1 − d₁/d₂` as in [`crate::model`].

use ndarray::{ArrayView2, Axis};
use serde_json::json;

use crate::kmeans::nearest_two;
use crate::metrics;
use crate::model::Algorithm;
use crate::outliers::outlier_radii;
use crate::train::{Clustering, TrainOptions, density_clustering};

/// Players on which the co-association matrix is built.
pub(crate) const ENSEMBLE_SAMPLE: usize = 3_000;

/// Co-association distance at which the average-linkage tree is cut.
const CUT: f64 = 0.5;

/// The consensus clustering of every player, or `None` without enough players or partitions.
pub(crate) fn consensus_clustering(
    points: ArrayView2<'_, f64>,
    sample: &[usize],
    kmeans: &Clustering,
    bootstrap: &[Vec<usize>],
    density: &[Clustering],
    options: &TrainOptions,
) -> Option<Clustering> {
    let size = ENSEMBLE_SAMPLE.min(sample.len());
    if size < 10 {
        return None;
    }
    let positions: Vec<usize> = (0..size).map(|index| index * sample.len() / size).collect();
    let rows: Vec<usize> = positions.iter().map(|position| sample[*position]).collect();
    let mut partitions: Vec<Vec<Option<usize>>> = Vec::new();
    partitions.push(rows.iter().map(|row| kmeans.labels[*row]).collect());
    for labels in bootstrap {
        partitions.push(
            positions
                .iter()
                .map(|position| Some(labels[*position]))
                .collect(),
        );
    }
    for clustering in density {
        partitions.push(rows.iter().map(|row| clustering.labels[*row]).collect());
    }
    let (consensus, confidence) = consensus(&partitions, size);
    let clusters = consensus.iter().flatten().max().map_or(0, |max| max + 1);
    if clusters == 0 {
        return None;
    }
    let subset = points.select(Axis(0), &rows);
    let centroids = metrics::centroids(subset.view(), &consensus, clusters);
    let radii = outlier_radii(subset.view(), &consensus, centroids.view());
    let mut labels: Vec<Option<usize>> = points
        .rows()
        .into_iter()
        .map(|row| {
            let (cluster, nearest, _) = nearest_two(row, centroids.view());
            (nearest.sqrt() <= radii[cluster]).then_some(cluster)
        })
        .collect();
    for (row, label) in rows.iter().zip(&consensus) {
        labels[*row] = *label;
    }
    let parameters = json!({
        "seed": options.seed,
        "ensemble_sample": size,
        "partitions": partitions.len(),
        "cut": CUT,
        "linkage": "average",
    });
    let mut clustering = density_clustering(
        points,
        Algorithm::Ensemble,
        labels,
        parameters,
        sample,
        size,
    );
    clustering.metrics.stability = kmeans.metrics.stability;
    for (row, value) in rows.iter().zip(&confidence) {
        clustering.confidence[*row] = *value;
    }
    Some(clustering)
}

/// Consensus labels (numbered by size, small clusters as `None`) and each point's mean
/// co-association with its cluster.
pub(crate) fn consensus(
    partitions: &[Vec<Option<usize>>],
    size: usize,
) -> (Vec<Option<usize>>, Vec<f64>) {
    let votes = partitions.len().max(1) as f64;
    let mut association = vec![0.0f64; size * size];
    for labels in partitions {
        for first in 0..size {
            let Some(label) = labels[first] else {
                continue;
            };
            for second in first + 1..size {
                if labels[second] == Some(label) {
                    association[first * size + second] += 1.0;
                }
            }
        }
    }
    for first in 0..size {
        association[first * size + first] = votes;
        for second in first + 1..size {
            association[second * size + first] = association[first * size + second];
        }
    }
    for value in &mut association {
        *value /= votes;
    }
    let mut distance: Vec<f64> = association.iter().map(|value| 1.0 - value).collect();
    let groups = average_linkage_cut(&mut distance, size, CUT);
    // Number groups by size (largest first, ties by first member); drop small ones.
    let smallest = (size / 100).max(5);
    let mut members: Vec<Vec<usize>> = Vec::new();
    let mut group_index: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
    for (point, group) in groups.iter().enumerate() {
        let index = *group_index.entry(*group).or_insert_with(|| {
            members.push(Vec::new());
            members.len() - 1
        });
        members[index].push(point);
    }
    members.retain(|group| group.len() >= smallest);
    members.sort_by(|left, right| right.len().cmp(&left.len()).then(left[0].cmp(&right[0])));
    let mut labels = vec![None; size];
    let mut confidence = vec![0.0; size];
    for (label, group) in members.iter().enumerate() {
        for point in group {
            labels[*point] = Some(label);
            let together: f64 = group
                .iter()
                .map(|other| association[point * size + other])
                .sum();
            confidence[*point] = (together / group.len() as f64).clamp(0.0, 1.0);
        }
    }
    (labels, confidence)
}

/// Average-linkage clustering by the nearest-neighbour chain, cut at `threshold`: returns a
/// group id per point. `distance` is a dense symmetric matrix, overwritten.
fn average_linkage_cut(distance: &mut [f64], size: usize, threshold: f64) -> Vec<usize> {
    let mut active = vec![true; size];
    let mut members = vec![1usize; size];
    let mut parent: Vec<usize> = (0..size).collect();
    let mut merges: Vec<(usize, usize, f64)> = Vec::with_capacity(size.saturating_sub(1));
    let mut chain: Vec<usize> = Vec::new();
    let mut remaining = size;
    while remaining > 1 {
        if chain.is_empty() {
            let Some(first) = active.iter().position(|alive| *alive) else {
                break;
            };
            chain.push(first);
        }
        while let Some(&top) = chain.last() {
            let previous = chain.len().checked_sub(2).map(|index| chain[index]);
            let mut nearest = previous.unwrap_or(usize::MAX);
            let mut nearest_distance = previous.map_or(f64::INFINITY, |p| distance[top * size + p]);
            for other in 0..size {
                if other == top || !active[other] {
                    continue;
                }
                let value = distance[top * size + other];
                if value < nearest_distance {
                    nearest = other;
                    nearest_distance = value;
                }
            }
            if Some(nearest) == previous {
                break;
            }
            chain.push(nearest);
        }
        let (Some(second), Some(first)) = (chain.pop(), chain.pop()) else {
            break;
        };
        let (keep, gone) = (first.min(second), first.max(second));
        let height = distance[keep * size + gone];
        let (keep_size, gone_size) = (members[keep] as f64, members[gone] as f64);
        for other in 0..size {
            if !active[other] || other == keep || other == gone {
                continue;
            }
            let merged = (keep_size * distance[keep * size + other]
                + gone_size * distance[gone * size + other])
                / (keep_size + gone_size);
            distance[keep * size + other] = merged;
            distance[other * size + keep] = merged;
        }
        active[gone] = false;
        members[keep] += members[gone];
        merges.push((keep, gone, height));
        remaining -= 1;
    }
    for (keep, gone, height) in merges {
        if height <= threshold {
            let root_keep = find(&mut parent, keep);
            let root_gone = find(&mut parent, gone);
            let (low, high) = (root_keep.min(root_gone), root_keep.max(root_gone));
            parent[high] = low;
        }
    }
    (0..size).map(|point| find(&mut parent, point)).collect()
}

/// Union-find root with path halving.
fn find(parent: &mut [usize], mut point: usize) -> usize {
    while parent[point] != point {
        parent[point] = parent[parent[point]];
        point = parent[point];
    }
    point
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agreeing_partitions_give_their_clusters_with_full_confidence() {
        let first: Vec<Option<usize>> = (0..30).map(|point| Some(point / 10)).collect();
        let renamed: Vec<Option<usize>> = (0..30).map(|point| Some(2 - point / 10)).collect();
        let (labels, confidence) = consensus(&[first.clone(), renamed], 30);
        assert_eq!(crate::stability::adjusted_rand_index(&labels, &first), 1.0);
        assert!(confidence.iter().all(|value| *value == 1.0));
    }

    #[test]
    fn the_majority_wins_and_lone_points_become_outliers() {
        // Two partitions say three groups of 10, one merges the first two; point 29 is noise
        // in all of them.
        let three: Vec<Option<usize>> = (0..30)
            .map(|point| (point != 29).then_some(point / 10))
            .collect();
        let merged: Vec<Option<usize>> = (0..30)
            .map(|point| (point != 29).then_some(if point < 20 { 0 } else { 1 }))
            .collect();
        let (labels, _) = consensus(&[three.clone(), three, merged], 30);
        assert_eq!(labels[29], None);
        assert_ne!(labels[0], labels[10]);
        assert_eq!(labels[10], labels[19]);
    }
}
