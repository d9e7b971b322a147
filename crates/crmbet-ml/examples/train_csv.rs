//! Trains a segmentation from a features CSV and prints one JSON line: the algorithm, k,
//! metrics, seconds per stage, the clusters and, with `--truth`, the agreement with known
//! labels.
//!
//! ```text
//! cargo run --release -p crmbet-ml --example train_csv -- features.csv \
//!     [--algorithm auto|kmeans|dbscan|hdbscan|ensemble] [--k N] [--k-min N] [--k-max N]
//!     [--seed S] [--n-init N] [--bootstrap-runs N] [--silhouette-sample N]
//!     [--density-sample N] [--truth players.csv]
//! ```
//! The features CSV has a header row with a `user_id` column; every column whose values
//! parse as numbers (empty = missing) is a feature. The truth CSV has `user_id` and a label
//! (the peer's `truth/players.csv`: `user_id,archetype`).

use std::collections::HashMap;
use std::error::Error;
use std::time::Instant;

use crmbet_ml::{FeatureTable, Progress, TrainOptions, adjusted_rand_index, train};
use ndarray::Array2;
use serde_json::json;

fn main() -> Result<(), Box<dyn Error>> {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let Some(features_path) = arguments.first() else {
        return Err(
            "usage: train_csv FEATURES.csv [--algorithm A] [--k N] [--seed S] [--truth T.csv] ..."
                .into(),
        );
    };
    let mut options = TrainOptions::default();
    let mut truth_path = None;
    let mut position = 1;
    while position < arguments.len() {
        let flag = arguments[position].as_str();
        let value = arguments
            .get(position + 1)
            .ok_or_else(|| format!("{flag} needs a value"))?;
        match flag {
            "--algorithm" => options.algorithm = value.parse()?,
            "--k" => options.k = Some(value.parse()?),
            "--k-min" => options.k_min = value.parse()?,
            "--k-max" => options.k_max = value.parse()?,
            "--seed" => options.seed = value.parse()?,
            "--n-init" => options.n_init = value.parse()?,
            "--bootstrap-runs" => options.bootstrap_runs = value.parse()?,
            "--silhouette-sample" => options.silhouette_sample = value.parse()?,
            "--density-sample" => options.density_sample = value.parse()?,
            "--min-cluster-size" => options.min_cluster_size = Some(value.parse()?),
            "--truth" => truth_path = Some(value.clone()),
            other => return Err(format!("unknown option {other}").into()),
        }
        position += 2;
    }
    let started = Instant::now();
    let table = read_features(features_path)?;
    let read_seconds = started.elapsed().as_secs_f64();

    let mut stage_seconds: Vec<(String, f64)> = Vec::new();
    let mut stage_started = Instant::now();
    let mut current: Option<String> = None;
    let mut on_progress = |progress: &Progress| {
        let stage = progress.stage.to_string();
        if current.as_deref() != Some(stage.as_str()) {
            if let Some(previous) = current.take() {
                stage_seconds.push((previous, stage_started.elapsed().as_secs_f64()));
            }
            stage_started = Instant::now();
            current = Some(stage);
        }
        eprintln!(
            "[{:5.1}%] {}: {}",
            progress.percent, progress.stage, progress.message
        );
    };
    let training_started = Instant::now();
    let model = train(&table, &options, &mut on_progress)?;
    let training_seconds = training_started.elapsed().as_secs_f64();

    let mut output = json!({
        "players": table.players(),
        "algorithm": model.algorithm,
        "k": model.k,
        "metrics": model.metrics,
        "selection_reason": model.selection_reason,
        "read_s": round(read_seconds),
        "train_s": round(training_seconds),
        "stages_s": stage_seconds
            .iter()
            .map(|(stage, seconds)| (stage.clone(), json!(round(*seconds))))
            .collect::<serde_json::Map<_, _>>(),
        "clusters": model.clusters.iter().map(|cluster| json!({
            "id": cluster.label,
            "name": cluster.name,
            "size": cluster.size,
            "campaign": cluster.suggested_campaign,
            "description": cluster.description,
        })).collect::<Vec<_>>(),
        "candidates": model.candidates.iter().map(|candidate| json!({
            "algorithm": candidate.algorithm,
            "k": candidate.k,
            "silhouette": candidate.metrics.silhouette,
            "stability": candidate.metrics.stability,
            "noise_fraction": candidate.metrics.noise_fraction,
            "note": candidate.note,
        })).collect::<Vec<_>>(),
    });
    if let Some(path) = truth_path {
        let truth = read_truth(&path)?;
        let known: Vec<usize> = (0..table.players())
            .filter(|row| truth.contains_key(&table.player_ids[*row]))
            .collect();
        let truth_labels: Vec<&str> = known
            .iter()
            .map(|row| truth[&table.player_ids[*row]].as_str())
            .collect();
        let model_labels: Vec<Option<usize>> = known
            .iter()
            .map(|row| model.assignments[*row].cluster)
            .collect();
        let ari = adjusted_rand_index(&model_labels, &truth_labels);
        // Majority cluster name of each truth label.
        let mut votes: HashMap<&str, HashMap<Option<usize>, usize>> = HashMap::new();
        for (label, cluster) in truth_labels.iter().zip(&model_labels) {
            *votes.entry(label).or_default().entry(*cluster).or_default() += 1;
        }
        let mut names = serde_json::Map::new();
        for (label, counts) in votes {
            let majority = counts
                .into_iter()
                .max_by_key(|(cluster, count)| (*count, std::cmp::Reverse(*cluster)))
                .and_then(|(cluster, _)| cluster);
            let name = majority.map_or("(outliers)".to_string(), |cluster| {
                model.clusters[cluster].name.clone()
            });
            names.insert(label.to_string(), json!(name));
        }
        let matrix = model.transform.apply(&table)?;
        let (model_silhouette, truth_silhouette) =
            paired_silhouettes(&matrix, &known, &model_labels, &truth_labels);
        output["ari"] = json!(round(ari));
        output["names_by_truth"] = json!(names);
        output["check_silhouette_model"] = json!(round(model_silhouette));
        output["check_silhouette_truth"] = json!(round(truth_silhouette));
    }
    println!("{output}");
    Ok(())
}

/// Four decimals, for readable JSON.
fn round(value: f64) -> f64 {
    (value * 10_000.0).round() / 10_000.0
}

/// Reads a features CSV: `user_id` plus every numeric column.
fn read_features(path: &str) -> Result<FeatureTable, Box<dyn Error>> {
    let text = std::fs::read_to_string(path).map_err(|error| format!("reading {path}: {error}"))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .ok_or("empty features file")?
        .split(',')
        .collect();
    let id_column = header
        .iter()
        .position(|name| *name == "user_id")
        .ok_or("the features file has no user_id column")?;
    let rows: Vec<Vec<&str>> = lines
        .filter(|line| !line.is_empty())
        .map(|line| line.split(',').collect())
        .collect();
    let numeric: Vec<usize> = (0..header.len())
        .filter(|column| *column != id_column)
        .filter(|column| {
            rows.iter().all(|row| {
                row.get(*column)
                    .is_some_and(|value| value.is_empty() || value.parse::<f64>().is_ok())
            })
        })
        .collect();
    let mut values = Vec::with_capacity(rows.len() * numeric.len());
    let mut player_ids = Vec::with_capacity(rows.len());
    for row in &rows {
        player_ids.push(row[id_column].to_string());
        for column in &numeric {
            values.push(row[*column].parse::<f64>().unwrap_or(f64::NAN));
        }
    }
    Ok(FeatureTable {
        player_ids,
        columns: numeric
            .iter()
            .map(|column| header[*column].to_string())
            .collect(),
        values: Array2::from_shape_vec((rows.len(), numeric.len()), values)?,
    })
}

/// Reads `user_id,label` rows after a header.
fn read_truth(path: &str) -> Result<HashMap<String, String>, Box<dyn Error>> {
    let text = std::fs::read_to_string(path).map_err(|error| format!("reading {path}: {error}"))?;
    Ok(text
        .lines()
        .skip(1)
        .filter_map(|line| {
            let (id, label) = line.split_once(',')?;
            Some((id.to_string(), label.to_string()))
        })
        .collect())
}

/// Silhouettes of the model's and the truth labels on the same 5,000 evenly spread players
/// of `rows` (noise left out of the model's), exact and by brute force.
fn paired_silhouettes(
    matrix: &Array2<f64>,
    rows: &[usize],
    model: &[Option<usize>],
    truth: &[&str],
) -> (f64, f64) {
    let size = rows.len().min(5_000);
    let picks: Vec<usize> = (0..size).map(|index| index * rows.len() / size).collect();
    let mut codes: HashMap<&str, usize> = HashMap::new();
    let truth_codes: Vec<Option<usize>> = picks
        .iter()
        .map(|pick| {
            let next = codes.len();
            Some(*codes.entry(truth[*pick]).or_insert(next))
        })
        .collect();
    let model_codes: Vec<Option<usize>> = picks.iter().map(|pick| model[*pick]).collect();
    let points: Vec<Vec<f64>> = picks
        .iter()
        .map(|pick| matrix.row(rows[*pick]).to_vec())
        .collect();
    (
        silhouette(&points, &model_codes),
        silhouette(&points, &truth_codes),
    )
}

/// Mean silhouette of labelled points, by brute force.
fn silhouette(points: &[Vec<f64>], labels: &[Option<usize>]) -> f64 {
    let clusters = labels.iter().flatten().max().map_or(0, |max| max + 1);
    let mut sizes = vec![0usize; clusters];
    for label in labels.iter().flatten() {
        sizes[*label] += 1;
    }
    let mut total = 0.0;
    let mut counted = 0usize;
    for (first, label) in labels.iter().enumerate() {
        let Some(own) = label else { continue };
        let mut sums = vec![0.0; clusters];
        for (second, other) in labels.iter().enumerate() {
            let Some(other) = other else { continue };
            let distance: f64 = points[first]
                .iter()
                .zip(&points[second])
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f64>()
                .sqrt();
            sums[*other] += distance;
        }
        counted += 1;
        if sizes[*own] <= 1 {
            continue;
        }
        let within = sums[*own] / (sizes[*own] - 1) as f64;
        let nearest = (0..clusters)
            .filter(|cluster| *cluster != *own && sizes[*cluster] > 0)
            .map(|cluster| sums[cluster] / sizes[cluster] as f64)
            .fold(f64::INFINITY, f64::min);
        if nearest.is_finite() && within.max(nearest) > 0.0 {
            total += (nearest - within) / within.max(nearest);
        }
    }
    if counted == 0 {
        f64::NAN
    } else {
        total / counted as f64
    }
}
