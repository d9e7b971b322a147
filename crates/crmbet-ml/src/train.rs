//! Training: features in, named clusters out.
//!
//! [`train`] runs the stages in order and reports each through the progress callback:
//! prepare the matrix ([`crate::matrix`]), KMeans over k with silhouette and bootstrap
//! stability ([`crate::kmeans`], [`crate::metrics`], [`crate::stability`]), DBSCAN and
//! HDBSCAN on a seeded density sample with the other players assigned to the nearest core
//! point ([`crate::density`]), their consensus ([`crate::ensemble`]), the choice of algorithm
//! and k ([`crate::selection`]), then profiles and names ([`crate::naming`]). The density
//! methods never see more than `density_sample` players, so `--algorithm auto` on a million
//! players stays within a few GiB.

use ndarray::{Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::density;
use crate::ensemble;
use crate::error::Error;
use crate::kmeans::{KMeansFit, fit_kmeans, nearest_labels};
use crate::matrix::{FeatureTable, prepare};
use crate::metrics::{self, Metrics};
use crate::model::{Algorithm, Candidate, Model, confidence};
use crate::naming::summarize;
use crate::outliers::{memberships, with_outlier_radii};
use crate::progress::{Progress, Reporter, Stage};
use crate::sampling::sample_indices;
use crate::selection::{self, KScore};
use crate::stability::{BootstrapPlan, kmeans_stability};
use crate::tail::{ValueTail, find_value_tail};

/// Smallest and largest k accepted anywhere.
const K_RANGE: std::ops::RangeInclusive<usize> = 2..=50;

/// Random stream of the silhouette sample.
const SILHOUETTE_STREAM: u64 = 0x5349_4C00;
/// Random stream of the density sample.
const DENSITY_STREAM: u64 = 0x4445_4E00;

/// Players per bootstrap subsample (fewer when the table is small).
const BOOTSTRAP_SUBSAMPLE: usize = 10_000;

/// What to train and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainOptions {
    /// The algorithm, or `Auto` to try all and keep the best.
    pub algorithm: Algorithm,
    /// A fixed k for KMeans; `None` chooses k over `k_min..=k_max`.
    pub k: Option<usize>,
    /// Smallest k tried (at least 2).
    pub k_min: usize,
    /// Largest k tried (at most 50, and below the number of players).
    pub k_max: usize,
    /// Seed of every random choice; the same seed and data give the same model.
    pub seed: u64,
    /// KMeans restarts per k.
    pub n_init: usize,
    /// Players the silhouette is measured on (all of them when there are fewer).
    pub silhouette_sample: usize,
    /// Players DBSCAN and HDBSCAN are fitted on; the rest are assigned.
    pub density_sample: usize,
    /// Bootstrap fits per k for stability (fewer than 2 skips stability).
    pub bootstrap_runs: usize,
    /// HDBSCAN's smallest cluster; `None` = 0.5% of the density sample, at least 25.
    pub min_cluster_size: Option<usize>,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            algorithm: Algorithm::Auto,
            k: None,
            k_min: 2,
            k_max: 12,
            seed: 0,
            n_init: 10,
            silhouette_sample: 20_000,
            density_sample: 20_000,
            bootstrap_runs: 4,
            min_cluster_size: None,
        }
    }
}

/// A clustering of every player, before naming.
#[derive(Debug, Clone)]
pub(crate) struct Clustering {
    pub algorithm: Algorithm,
    pub labels: Vec<Option<usize>>,
    pub confidence: Vec<f64>,
    pub centroids: Array2<f64>,
    pub metrics: Metrics,
    pub parameters: serde_json::Value,
}

impl Clustering {
    fn k(&self) -> usize {
        self.centroids.nrows()
    }
}

/// Trains a segmentation of the table's players, reporting progress at every stage.
pub fn train(
    table: &FeatureTable,
    options: &TrainOptions,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Model, Error> {
    let mut reporter = Reporter::new(progress);
    let (k_min, k_max) = validate(table, options)?;
    reporter.report(Stage::Preparing, 0.0, "preparing the feature matrix", None);
    let (transform, matrix) = prepare(table)?;
    let tail = find_value_tail(table);
    let partition_matrix = partition_of(&matrix, tail.as_ref());
    let points = partition_matrix
        .as_ref()
        .map_or_else(|| matrix.view(), Array2::view);
    let players = points.nrows();
    reporter.report(
        Stage::Preparing,
        5.0,
        format!(
            "{} players × {} features ({} notes){}",
            matrix.nrows(),
            transform.columns.len(),
            transform.notes.len(),
            tail.as_ref().map_or_else(String::new, |(rule, _)| format!(
                "; {} players stake {}× the median bet or more ({} ≥ {:.2}) and form their own \
                 cluster",
                rule.players, rule.multiple, rule.feature, rule.threshold
            ))
        ),
        None,
    );
    let sample = sample_indices(
        players,
        options.silhouette_sample.max(2),
        options.seed,
        SILHOUETTE_STREAM,
    );
    let mut candidates = Vec::new();
    let wants_kmeans = matches!(
        options.algorithm,
        Algorithm::Auto | Algorithm::KMeans | Algorithm::Ensemble
    );
    let wants_density = matches!(
        options.algorithm,
        Algorithm::Auto | Algorithm::Dbscan | Algorithm::Hdbscan | Algorithm::Ensemble
    );
    let kmeans_end = if wants_density { 60.0 } else { 90.0 };
    let mut kmeans_choice = None;
    if wants_kmeans {
        let ks: Vec<usize> = match options.k {
            Some(k) => vec![k],
            None => (k_min..=k_max).collect(),
        };
        kmeans_choice = Some(kmeans_sweep(
            points,
            &ks,
            options,
            &sample,
            &mut reporter,
            (5.0, kmeans_end),
            &mut candidates,
        )?);
    }
    let mut density_results = Vec::new();
    if wants_density {
        density_results = density_runs(points, options, &sample, &mut reporter, &mut candidates);
    }
    let mut ensemble_result = None;
    if matches!(options.algorithm, Algorithm::Auto | Algorithm::Ensemble)
        && let Some(choice) = &kmeans_choice
    {
        reporter.report(Stage::Ensemble, 85.0, "building the consensus", None);
        let consensus = ensemble::consensus_clustering(
            points,
            &sample,
            &choice.chosen,
            &choice.bootstrap_labels,
            &density_results,
            options,
        );
        if let Some(consensus) = consensus {
            candidates.push(Candidate {
                algorithm: Algorithm::Ensemble,
                k: consensus.k(),
                metrics: consensus.metrics.clone(),
                note: "consensus of the KMeans bootstrap fits, DBSCAN and HDBSCAN".into(),
            });
            reporter.report(
                Stage::Ensemble,
                88.0,
                format!("consensus with {} clusters", consensus.k()),
                Some(consensus.metrics.clone()),
            );
            ensemble_result = Some(consensus);
        }
    }
    reporter.report(Stage::Selecting, 90.0, "choosing the algorithm", None);
    let (chosen, mut selection_reason) = choose(
        options.algorithm,
        kmeans_choice,
        density_results,
        ensemble_result,
    )?;
    let chosen = match tail {
        Some((rule, members)) => {
            selection_reason.push_str(&format!(
                "; the {} players staking {}× the median bet or more ({} ≥ {:.2}) are their own \
                 cluster, outside the partition",
                rule.players, rule.multiple, rule.feature, rule.threshold
            ));
            with_value_tail(chosen, matrix.view(), rule, &members, table)
        }
        None => chosen,
    };
    let chosen = with_outlier_radii(chosen, matrix.view());
    for candidate in &mut candidates {
        if candidate.algorithm == chosen.algorithm
            && candidate.k == chosen.k()
            && candidate.metrics == chosen.metrics
        {
            candidate.note = format!("chosen; {}", candidate.note);
        }
    }
    reporter.report(
        Stage::Naming,
        93.0,
        "profiling and naming the clusters",
        Some(chosen.metrics.clone()),
    );
    let clusters = summarize(table, &chosen.labels, chosen.k());
    let assignments = memberships(&chosen, matrix.view());
    let model = Model {
        algorithm: chosen.algorithm,
        k: chosen.k(),
        parameters: chosen.parameters,
        feature_names: transform.feature_names(),
        transform,
        centroids: chosen
            .centroids
            .rows()
            .into_iter()
            .map(|row| row.to_vec())
            .collect(),
        clusters,
        assignments,
        metrics: chosen.metrics,
        selection_reason,
        candidates,
    };
    reporter.report(
        Stage::Done,
        100.0,
        format!("{} with k = {}", model.algorithm, model.k),
        Some(model.metrics.clone()),
    );
    Ok(model)
}

/// The rows the partition sees: everyone but the tail, which gets its own cluster at the end
/// (`None`: every row, no copy).
fn partition_of(
    matrix: &Array2<f64>,
    tail: Option<&(ValueTail, Vec<bool>)>,
) -> Option<Array2<f64>> {
    tail.map(|(_, members)| {
        let rows: Vec<usize> = (0..members.len()).filter(|row| !members[*row]).collect();
        matrix.select(Axis(0), &rows)
    })
}

/// The density sample's rows among `players` partition rows, and HDBSCAN's smallest cluster.
fn density_sample(players: usize, options: &TrainOptions) -> (Vec<usize>, usize) {
    let rows = sample_indices(
        players,
        options.density_sample.max(2),
        options.seed,
        DENSITY_STREAM,
    );
    let min_cluster_size = options
        .min_cluster_size
        .unwrap_or_else(|| (rows.len() / 200).max(25));
    (rows, min_cluster_size)
}

/// How the indexed assignment of the players outside the density sample compares with the
/// exhaustive search, for one density method (`crmbet bench train --check-assignment`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AssignmentCheck {
    /// DBSCAN or HDBSCAN.
    pub algorithm: Algorithm,
    /// Players assigned (the whole partition, the sample included).
    pub players: usize,
    /// Core points of the fitted sample.
    pub core_points: usize,
    /// Seconds of the indexed assignment.
    pub indexed_seconds: f64,
    /// Seconds of the exhaustive search.
    pub exhaustive_seconds: f64,
    /// Players whose labels differ (0 when the two agree).
    pub differing: usize,
}

/// Fits DBSCAN and HDBSCAN exactly as [`train`] does and assigns every partition player both
/// ways, timing each.
pub fn check_density_assignment(
    table: &FeatureTable,
    options: &TrainOptions,
) -> Result<Vec<AssignmentCheck>, Error> {
    validate(table, options)?;
    let (_, matrix) = prepare(table)?;
    let tail = find_value_tail(table);
    let partition_matrix = partition_of(&matrix, tail.as_ref());
    let points = partition_matrix
        .as_ref()
        .map_or_else(|| matrix.view(), Array2::view);
    let (rows, min_cluster_size) = density_sample(points.nrows(), options);
    let fitted_points = points.select(Axis(0), &rows);
    let mut checks = Vec::new();
    for algorithm in [Algorithm::Dbscan, Algorithm::Hdbscan] {
        let fitted = match algorithm {
            Algorithm::Dbscan => density::dbscan(fitted_points.view(), options.seed),
            _ => density::hdbscan(fitted_points.view(), min_cluster_size),
        };
        let started = std::time::Instant::now();
        let indexed = density::assign_to_nearest_core(&fitted, points);
        let indexed_seconds = started.elapsed().as_secs_f64();
        let started = std::time::Instant::now();
        let exhaustive = density::assign_to_nearest_core_exhaustively(&fitted, points);
        let exhaustive_seconds = started.elapsed().as_secs_f64();
        checks.push(AssignmentCheck {
            algorithm,
            players: points.nrows(),
            core_points: fitted.reach.labels.len(),
            indexed_seconds,
            exhaustive_seconds,
            differing: indexed
                .iter()
                .zip(&exhaustive)
                .filter(|(left, right)| left != right)
                .count(),
        });
    }
    Ok(checks)
}

/// The silhouette of any labelling of the table's players (`None` = noise, left out), on the
/// same prepared matrix and seeded sample as [`train`] uses: how a known segmentation (the
/// planted archetypes of a test lake, a marketer's own) compares with a trained one.
pub fn silhouette_of(
    table: &FeatureTable,
    labels: &[Option<usize>],
    options: &TrainOptions,
) -> Result<f64, Error> {
    table.validate()?;
    if labels.len() != table.players() {
        return Err(Error::InvalidOption {
            option: "labels",
            reason: format!("{} labels for {} players", labels.len(), table.players()),
        });
    }
    let (_, matrix) = prepare(table)?;
    let sample = sample_indices(
        matrix.nrows(),
        options.silhouette_sample.max(2),
        options.seed,
        SILHOUETTE_STREAM,
    );
    Ok(metrics::silhouettes(matrix.view(), &sample, &[labels])[0])
}

/// Checks the options against the table; returns the k range to sweep.
fn validate(table: &FeatureTable, options: &TrainOptions) -> Result<(usize, usize), Error> {
    table.validate()?;
    for k in [options.k_min, options.k_max].into_iter().chain(options.k) {
        if !K_RANGE.contains(&k) {
            return Err(Error::InvalidK { k });
        }
    }
    if options.k_min > options.k_max {
        return Err(Error::InvalidKRange {
            k_min: options.k_min,
            k_max: options.k_max,
        });
    }
    if options.n_init == 0 {
        return Err(Error::InvalidOption {
            option: "n_init",
            reason: "must be at least 1".into(),
        });
    }
    let players = table.players();
    let smallest = options.k.unwrap_or(options.k_min);
    if players <= smallest {
        return Err(Error::NotEnoughPlayers {
            players,
            needed: smallest + 1,
        });
    }
    let k_max = options.k_max.min(players - 1);
    let k_min = options.k_min.min(k_max);
    Ok((k_min, k_max))
}

/// The KMeans result chosen over k, with what the ensemble reuses.
struct KMeansChoice {
    chosen: Clustering,
    reason: String,
    bootstrap_labels: Vec<Vec<usize>>,
    /// Silhouette of the KMeans fit at every k of the sweep.
    silhouette_by_k: Vec<(usize, f64)>,
}

/// Fits KMeans for every k, measures it, and picks k by the selection rule.
fn kmeans_sweep(
    points: ArrayView2<'_, f64>,
    ks: &[usize],
    options: &TrainOptions,
    sample: &[usize],
    reporter: &mut Reporter<'_>,
    (start, end): (f64, f64),
    candidates: &mut Vec<Candidate>,
) -> Result<KMeansChoice, Error> {
    let steps = (ks.len() * 2 + 1) as f64;
    let step = (end - start) / steps;
    let mut fits: Vec<KMeansFit> = Vec::with_capacity(ks.len());
    for (index, k) in ks.iter().enumerate() {
        let fit = fit_kmeans(points, *k, options.n_init, options.seed)?;
        reporter.report(
            Stage::KMeans,
            start + step * (index + 1) as f64,
            format!("kmeans k = {k}: inertia {:.1}", fit.inertia),
            None,
        );
        fits.push(fit);
    }
    let mut labellings: Vec<Vec<Option<usize>>> = fits
        .iter()
        .map(|fit| fit.labels.iter().map(|label| Some(*label)).collect())
        .collect();
    let views: Vec<&[Option<usize>]> = labellings.iter().map(Vec::as_slice).collect();
    let silhouettes = metrics::silhouettes(points, sample, &views);
    let mut scores = Vec::with_capacity(ks.len());
    let mut all_bootstrap = Vec::with_capacity(ks.len());
    let plan = BootstrapPlan {
        runs: options.bootstrap_runs,
        subsample: BOOTSTRAP_SUBSAMPLE.min(points.nrows()),
        n_init: options.n_init.div_ceil(3),
        seed: options.seed,
    };
    for (index, fit) in fits.iter().enumerate() {
        let (stability, bootstrap) = if plan.runs >= 2 {
            kmeans_stability(points, fit.k(), plan, sample)?
        } else {
            (f64::NAN, Vec::new())
        };
        let mut metrics =
            metrics::evaluate(points, &labellings[index], fit.k(), silhouettes[index]);
        metrics.stability = stability;
        reporter.report(
            Stage::KMeans,
            start + step * (ks.len() + index + 1) as f64,
            format!(
                "kmeans k = {}: silhouette {:.4}, stability {:.3}",
                fit.k(),
                metrics.silhouette,
                stability
            ),
            Some(metrics.clone()),
        );
        scores.push(KScore {
            k: fit.k(),
            silhouette: metrics.silhouette,
            stability,
            inertia: fit.inertia,
        });
        candidates.push(Candidate {
            algorithm: Algorithm::KMeans,
            k: fit.k(),
            metrics,
            note: String::new(),
        });
        all_bootstrap.push(bootstrap);
    }
    let (position, reason) = selection::choose_k(&scores);
    let first_candidate = candidates.len() - scores.len();
    for (index, score) in scores.iter().enumerate() {
        let note = selection::k_note(&scores, index, position);
        candidates[first_candidate + index].note = note;
        debug_assert_eq!(candidates[first_candidate + index].k, score.k);
    }
    let fit = fits.swap_remove(position);
    let labels = labellings.swap_remove(position);
    let metrics = candidates[first_candidate + position].metrics.clone();
    let (_, distances) = nearest_labels(points, fit.centroids.view());
    let confidences = distances
        .iter()
        .map(|(nearest, second)| confidence(*nearest, *second))
        .collect();
    Ok(KMeansChoice {
        chosen: Clustering {
            algorithm: Algorithm::KMeans,
            labels,
            confidence: confidences,
            parameters: json!({
                "seed": options.seed,
                "n_init": options.n_init,
                "k": fit.k(),
                "init": "k-means++",
                "restart_sample": crate::kmeans::RESTART_SAMPLE,
                "silhouette_sample": sample.len(),
                "bootstrap_runs": options.bootstrap_runs,
                "inertia": fit.inertia,
            }),
            centroids: fit.centroids,
            metrics,
        },
        reason,
        bootstrap_labels: all_bootstrap.swap_remove(position),
        silhouette_by_k: scores
            .iter()
            .map(|score| (score.k, score.silhouette))
            .collect(),
    })
}

/// DBSCAN and HDBSCAN on the density sample, the other players assigned to the nearest core
/// point; each result is also a candidate.
fn density_runs(
    points: ArrayView2<'_, f64>,
    options: &TrainOptions,
    sample: &[usize],
    reporter: &mut Reporter<'_>,
    candidates: &mut Vec<Candidate>,
) -> Vec<Clustering> {
    let (rows, min_cluster_size) = density_sample(points.nrows(), options);
    let fitted_points = points.select(Axis(0), &rows);
    let mut results = Vec::new();
    let runs: [(Algorithm, Stage, f64); 2] = [
        (Algorithm::Dbscan, Stage::Dbscan, 70.0),
        (Algorithm::Hdbscan, Stage::Hdbscan, 80.0),
    ];
    for (algorithm, stage, percent) in runs {
        let wanted = matches!(options.algorithm, Algorithm::Auto | Algorithm::Ensemble)
            || options.algorithm == algorithm;
        if !wanted {
            continue;
        }
        reporter.report(
            stage,
            percent - 8.0,
            format!("fitting {algorithm} on {} players", rows.len()),
            None,
        );
        let fitted = match algorithm {
            Algorithm::Dbscan => density::dbscan(fitted_points.view(), options.seed),
            _ => density::hdbscan(fitted_points.view(), min_cluster_size),
        };
        let labels = density::assign_to_nearest_core(&fitted, points);
        let clustering = density_clustering(
            points,
            algorithm,
            labels,
            fitted.parameters.clone(),
            sample,
            rows.len(),
        );
        candidates.push(Candidate {
            algorithm,
            k: clustering.k(),
            metrics: clustering.metrics.clone(),
            note: format!(
                "fitted on {} players, the rest assigned to the nearest core point",
                rows.len()
            ),
        });
        reporter.report(
            stage,
            percent,
            format!(
                "{algorithm}: {} clusters, {:.1}% noise",
                clustering.k(),
                clustering.metrics.noise_fraction * 100.0
            ),
            Some(clustering.metrics.clone()),
        );
        results.push(clustering);
    }
    results
}

/// A labelling with noise turned into a clustering: centroids, confidences, metrics and the
/// per-cluster outlier radius for new players.
pub(crate) fn density_clustering(
    points: ArrayView2<'_, f64>,
    algorithm: Algorithm,
    labels: Vec<Option<usize>>,
    mut parameters: serde_json::Value,
    sample: &[usize],
    fitted_players: usize,
) -> Clustering {
    let clusters = labels.iter().flatten().max().map_or(0, |max| max + 1);
    let centroids = metrics::centroids(points, &labels, clusters);
    let silhouette = if clusters >= 2 {
        metrics::silhouettes(points, sample, &[&labels])[0]
    } else {
        f64::NAN
    };
    let mut metrics = metrics::evaluate(points, &labels, clusters, silhouette);
    metrics.stability = f64::NAN;
    let radii = crate::outliers::outlier_radii(points, &labels, centroids.view());
    let confidences = labels
        .iter()
        .zip(points.rows())
        .map(|(label, row)| match label {
            None => 0.0,
            Some(_) => {
                let (_, nearest, second) = crate::kmeans::nearest_two(row, centroids.view());
                confidence(nearest, second)
            }
        })
        .collect();
    if let Some(object) = parameters.as_object_mut() {
        object.insert("outlier_radius".into(), json!(radii));
        object.insert("fitted_players".into(), json!(fitted_players));
    }
    Clustering {
        algorithm,
        labels,
        confidence: confidences,
        centroids,
        metrics,
        parameters,
    }
}

/// The partition's clustering extended to every player: the tail's members take a new last
/// cluster (its centroid the mean of their rows), with the rule stored in the parameters;
/// the metrics are measured again on everyone, keeping the partition's silhouette and
/// stability.
fn with_value_tail(
    partition: Clustering,
    points: ArrayView2<'_, f64>,
    mut rule: ValueTail,
    members: &[bool],
    table: &FeatureTable,
) -> Clustering {
    let tail_cluster = partition.k();
    rule.cluster = tail_cluster;
    let values = table.column(&rule.feature);
    let mut labels = Vec::with_capacity(members.len());
    let mut confidences = Vec::with_capacity(members.len());
    let mut partitioned = partition.labels.iter().zip(&partition.confidence);
    for (row, member) in members.iter().enumerate() {
        if *member {
            labels.push(Some(tail_cluster));
            let value = values.as_ref().map_or(f64::NAN, |column| column[row]);
            confidences.push(rule.confidence(value));
        } else if let Some((label, confidence)) = partitioned.next() {
            labels.push(*label);
            confidences.push(*confidence);
        }
    }
    let all = metrics::centroids(points, &labels, tail_cluster + 1);
    let mut centroids = partition.centroids;
    if let Err(error) = centroids.push_row(all.row(tail_cluster)) {
        debug_assert!(false, "tail centroid: {error}");
    }
    let mut metrics = metrics::evaluate(
        points,
        &labels,
        tail_cluster + 1,
        partition.metrics.silhouette,
    );
    metrics.stability = partition.metrics.stability;
    let mut parameters = partition.parameters;
    if let Some(object) = parameters.as_object_mut() {
        object.insert("value_tail".into(), json!(rule));
        // Outlier radii of the partition are measured again with the tail cluster.
        object.remove("outlier_radius");
    }
    Clustering {
        algorithm: partition.algorithm,
        labels,
        confidence: confidences,
        centroids,
        metrics,
        parameters,
    }
}

/// The clustering the options ask for, or under `Auto` the one the selection rule prefers.
fn choose(
    algorithm: Algorithm,
    kmeans: Option<KMeansChoice>,
    density: Vec<Clustering>,
    ensemble: Option<Clustering>,
) -> Result<(Clustering, String), Error> {
    let missing = |name: &str| Error::Clustering {
        reason: format!("{name} produced no clustering"),
    };
    match algorithm {
        Algorithm::KMeans => kmeans
            .map(|choice| (choice.chosen, choice.reason))
            .ok_or_else(|| missing("kmeans")),
        Algorithm::Dbscan | Algorithm::Hdbscan => {
            let clustering = density
                .into_iter()
                .find(|clustering| clustering.algorithm == algorithm)
                .ok_or_else(|| missing(algorithm.as_str()))?;
            let reason = format!(
                "{algorithm} was asked for: {} clusters with {:.1}% of players as noise",
                clustering.k(),
                clustering.metrics.noise_fraction * 100.0
            );
            Ok((clustering, reason))
        }
        Algorithm::Ensemble => {
            let clustering = ensemble.ok_or_else(|| missing("ensemble"))?;
            let reason = format!(
                "the ensemble was asked for: {} consensus clusters",
                clustering.k()
            );
            Ok((clustering, reason))
        }
        Algorithm::Auto => {
            let choice = kmeans.ok_or_else(|| missing("kmeans"))?;
            let mut others = density;
            others.extend(ensemble);
            Ok(selection::choose_algorithm(
                choice.chosen,
                choice.reason,
                &choice.silhouette_by_k,
                others,
            ))
        }
    }
}
