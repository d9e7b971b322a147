//! Every player's outlier flag and confidence, whatever the algorithm.
//!
//! Each cluster keeps the distance to its centroid within which 99% of its training members
//! lie (`parameters.outlier_radius`). A member farther out is an outlier (`cluster: None` in
//! the model's assignments; stored in its nearest cluster, marked), under KMeans as under the
//! density methods. Its confidence is the usual `1 − d₁/d₂` times `radius / d`, so it falls
//! the farther out the player lies. Density noise keeps confidence 0; the whale tail's
//! members are placed by their stakes, not by distance, and are never outliers.

use ndarray::ArrayView2;
use serde_json::json;

use crate::kmeans::squared_distance;
use crate::model::Assignment;
use crate::tail::ValueTail;
use crate::train::Clustering;

/// The clustering with `outlier_radius` in its parameters, measured on `points` unless it
/// is there already.
pub(crate) fn with_outlier_radii(
    mut clustering: Clustering,
    points: ArrayView2<'_, f64>,
) -> Clustering {
    if clustering.parameters.get("outlier_radius").is_some() {
        return clustering;
    }
    let radii = outlier_radii(points, &clustering.labels, clustering.centroids.view());
    if let Some(object) = clustering.parameters.as_object_mut() {
        object.insert("outlier_radius".into(), json!(radii));
    }
    clustering
}

/// One assignment per player of `points`, by the rule in the module documentation.
pub(crate) fn memberships(clustering: &Clustering, points: ArrayView2<'_, f64>) -> Vec<Assignment> {
    let radii: Vec<f64> = clustering
        .parameters
        .get("outlier_radius")
        .and_then(serde_json::Value::as_array)
        .map(|radii| radii.iter().filter_map(serde_json::Value::as_f64).collect())
        .unwrap_or_default();
    let tail_cluster = ValueTail::from_parameters(&clustering.parameters).map(|tail| tail.cluster);
    points
        .rows()
        .into_iter()
        .zip(&clustering.labels)
        .zip(&clustering.confidence)
        .map(|((row, label), confidence)| {
            let member = Assignment {
                cluster: *label,
                confidence: *confidence,
            };
            let Some(cluster) = *label else {
                return member;
            };
            let Some(radius) = radii.get(cluster).copied() else {
                return member;
            };
            if tail_cluster == Some(cluster) {
                return member;
            }
            let distance = squared_distance(row, clustering.centroids.row(cluster)).sqrt();
            if distance <= radius {
                return member;
            }
            Assignment {
                cluster: None,
                confidence: confidence * radius / distance,
            }
        })
        .collect()
}

/// Per cluster, the distance to its centroid within which 99% of its members lie.
pub(crate) fn outlier_radii(
    points: ArrayView2<'_, f64>,
    labels: &[Option<usize>],
    centroids: ArrayView2<'_, f64>,
) -> Vec<f64> {
    let mut distances: Vec<Vec<f64>> = vec![Vec::new(); centroids.nrows()];
    for (row, label) in points.rows().into_iter().zip(labels) {
        if let Some(label) = label {
            distances[*label]
                .push(crate::kmeans::squared_distance(row, centroids.row(*label)).sqrt());
        }
    }
    distances
        .into_iter()
        .map(|mut values| {
            if values.is_empty() {
                return 0.0;
            }
            let index = ((values.len() - 1) as f64 * 0.99).round() as usize;
            let (_, value, _) = values.select_nth_unstable_by(index, f64::total_cmp);
            *value
        })
        .collect()
}
