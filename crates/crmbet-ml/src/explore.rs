//! Temporary: measurements for choosing the selection rule (removed before hand-off).
#![allow(missing_docs, clippy::unwrap_used)]

use ndarray::ArrayView2;

use crate::{kmeans, metrics, sampling, stability};

pub struct Entry {
    pub k: usize,
    pub labels: Vec<usize>,
    pub inertia: f64,
    pub silhouette: f64,
    pub stability: f64,
    pub fit_seconds: f64,
    pub stability_seconds: f64,
}

pub fn prepare(table: &crate::FeatureTable) -> (Vec<String>, ndarray::Array2<f64>) {
    let (transform, matrix) = crate::matrix::prepare(table).unwrap();
    (transform.feature_names(), matrix)
}

pub fn sweep(
    points: ArrayView2<f64>,
    ks: &[usize],
    n_init: usize,
    seed: u64,
    runs: usize,
    subsample: usize,
    boot_init: usize,
) -> (Vec<Entry>, f64, Vec<usize>) {
    let sample = sampling::sample_indices(points.nrows(), 20_000, seed, 77);
    let mut entries = Vec::new();
    for k in ks {
        let started = std::time::Instant::now();
        let fit = kmeans::fit_kmeans(points, *k, n_init, seed).unwrap();
        let fit_seconds = started.elapsed().as_secs_f64();
        let started = std::time::Instant::now();
        let stab = if runs >= 2 {
            stability::kmeans_stability(
                points,
                *k,
                stability::BootstrapPlan {
                    runs,
                    subsample,
                    n_init: boot_init,
                    seed,
                },
                &sample,
            )
            .unwrap()
            .0
        } else {
            0.0
        };
        entries.push(Entry {
            k: *k,
            labels: fit.labels,
            inertia: fit.inertia,
            silhouette: 0.0,
            stability: stab,
            fit_seconds,
            stability_seconds: started.elapsed().as_secs_f64(),
        });
    }
    let started = std::time::Instant::now();
    let labellings: Vec<Vec<Option<usize>>> = entries
        .iter()
        .map(|e| e.labels.iter().map(|l| Some(*l)).collect())
        .collect();
    let refs: Vec<&[Option<usize>]> = labellings.iter().map(|l| l.as_slice()).collect();
    let values = metrics::silhouettes(points, &sample, &refs);
    for (entry, value) in entries.iter_mut().zip(values) {
        entry.silhouette = value;
    }
    (entries, started.elapsed().as_secs_f64(), sample)
}

pub fn silhouette_of(points: ArrayView2<f64>, sample: &[usize], labels: &[Option<usize>]) -> f64 {
    metrics::silhouettes(points, sample, &[labels])[0]
}
