//! `crmbet bench train`: crmbet's training against the scikit-learn peer, on the features of
//! one lake (both ETLs give the same features: the ETL tests check it to 1e-6).
//!
//! Timed for crmbet: the whole `crmbet_ml::train` call (matrix, KMeans sweep with silhouette
//! and bootstrap stability, and for `auto` DBSCAN, HDBSCAN, the ensemble; then selection and
//! naming). Timed for the peer: its `scale` and `kmeans_select` stages (KMeans with
//! `n_init=10` per k, silhouette on a 20k sample), plus `dbscan` and `hdbscan` for `auto`.
//! The peer's `metrics` stage is left out, as it mostly scores the truth labels; that makes
//! the ratio stricter on crmbet, not looser.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use crmbet_ml::{FeatureTable, Model, Progress, Stage, TrainOptions};
use crmbet_store::Store;
use serde_json::{Value, json};

use super::{
    Measurement, peer_peak_rss, print_table, ratio, run_crmbet_etl, run_peer, scratch_database_url,
};
use crate::cli::{AlgorithmArg, BenchTrainArgs};
use crate::command::etl::peak_rss_bytes;

pub(super) async fn bench_train(arguments: BenchTrainArgs) -> anyhow::Result<()> {
    let scratch = tempfile::tempdir().context("creating a scratch folder")?;
    if !arguments.json {
        eprintln!("loading {} with crmbet etl ...", arguments.lake.display());
    }
    run_crmbet_etl(&arguments.lake, scratch.path())?;
    let table = load_features(scratch.path()).await?;
    let options = TrainOptions {
        algorithm: arguments.algorithm.into(),
        k_min: arguments.k_min,
        k_max: arguments.k_max,
        seed: arguments.seed,
        ..TrainOptions::default()
    };
    if !arguments.json {
        eprintln!(
            "training {} on {} players ...",
            options.algorithm,
            table.player_ids.len()
        );
    }
    let (model, stage_seconds, seconds) = timed_training(&table, &options)?;
    let crmbet = Measurement {
        name: "crmbet train",
        seconds,
        peak_rss_bytes: peak_rss_bytes(),
    };
    let assignment = if arguments.check_assignment {
        if !arguments.json {
            eprintln!("assigning the density methods' players with the index and exhaustively ...");
        }
        Some(crmbet_ml::check_density_assignment(&table, &options)?)
    } else {
        None
    };
    let truth = read_truth(&arguments.lake)?;
    let crmbet_ari = truth.as_ref().map(|truth| agreement(&table, &model, truth));

    let peer = if arguments.skip_peer {
        None
    } else {
        if !arguments.json {
            eprintln!("running the scikit-learn peer ...");
        }
        Some(peer_training(&arguments)?)
    };
    let report = json!({
        "lake": arguments.lake.display().to_string(),
        "players": table.player_ids.len(),
        "algorithm": options.algorithm.to_string(),
        "k_range": [options.k_min, options.k_max],
        "crmbet_seconds": crmbet.seconds,
        "crmbet_stage_seconds": stage_seconds,
        "crmbet_peak_rss_bytes": crmbet.peak_rss_bytes,
        "crmbet_chosen": {"algorithm": model.algorithm.to_string(), "k": model.k},
        "crmbet_silhouette": model.metrics.silhouette,
        "crmbet_ari_vs_truth": crmbet_ari,
        "crmbet_assignment_check": assignment,
        "sklearn_seconds": peer.as_ref().map(|peer| peer.measurement.seconds),
        "sklearn_chosen_k": peer.as_ref().map(|peer| peer.chosen_k.clone()),
        "sklearn_ari_vs_truth": peer.as_ref().map(|peer| peer.ari.clone()),
        "sklearn_stage_seconds": peer.as_ref().map(|peer| peer.stages.clone()),
        "crmbet_vs_sklearn": peer.as_ref().map(|peer| ratio(crmbet.seconds, peer.measurement.seconds)),
    });
    if arguments.json {
        println!("{report}");
        return Ok(());
    }
    println!(
        "training benchmark on {} ({} players, k = {}..={})",
        arguments.lake.display(),
        table.player_ids.len(),
        options.k_min,
        options.k_max
    );
    let mut rows = vec![&crmbet];
    rows.extend(peer.as_ref().map(|peer| &peer.measurement));
    print_table(&rows, None);
    println!(
        "crmbet: {} with k = {}, silhouette {:.4}, ARI vs truth {}",
        model.algorithm,
        model.k,
        model.metrics.silhouette,
        crmbet_ari.map_or("-".to_owned(), |ari| format!("{ari:.3}"))
    );
    for check in assignment.iter().flatten() {
        println!(
            "{} assignment of {} players to {} core points: index {:.2} s, exhaustive {:.2} s \
             ({:.1}x faster), {} labels differ",
            check.algorithm,
            check.players,
            check.core_points,
            check.indexed_seconds,
            check.exhaustive_seconds,
            ratio(check.exhaustive_seconds, check.indexed_seconds),
            check.differing
        );
    }
    if let Some(peer) = &peer {
        println!(
            "scikit-learn: k = {}, ARI vs truth {}",
            peer.chosen_k, peer.ari
        );
        println!(
            "crmbet / scikit-learn = {:.2}x (target <= 1.0)",
            ratio(crmbet.seconds, peer.measurement.seconds)
        );
    }
    Ok(())
}

/// The features of the scratch database's ETL run.
async fn load_features(scratch: &Path) -> anyhow::Result<FeatureTable> {
    let store = Store::connect(&scratch_database_url(scratch))
        .await
        .context("opening the scratch database")?;
    let run = store
        .latest_etl_run_with_features()
        .await?
        .context("the ETL stored no features")?;
    let rows = store.feature_rows(run).await?;
    Ok(crmbet_app::feature_table(rows)?)
}

/// Trains, returning the model, the seconds of each stage and the total.
fn timed_training(
    table: &FeatureTable,
    options: &TrainOptions,
) -> anyhow::Result<(Model, Value, f64)> {
    let started = Instant::now();
    let mut stages: Vec<(Stage, f64)> = Vec::new();
    let mut stage_started = Instant::now();
    let model = crmbet_ml::train(table, options, &mut |progress: &Progress| {
        let same = stages
            .last()
            .is_some_and(|(stage, _)| *stage == progress.stage);
        if !same {
            if let Some((_, seconds)) = stages.last_mut() {
                *seconds = stage_started.elapsed().as_secs_f64();
            }
            stage_started = Instant::now();
            stages.push((progress.stage, 0.0));
        }
    })?;
    let seconds = started.elapsed().as_secs_f64();
    if let Some((_, last)) = stages.last_mut() {
        *last = stage_started.elapsed().as_secs_f64();
    }
    let stage_seconds = stages
        .iter()
        .filter(|(stage, _)| *stage != Stage::Done)
        .map(|(stage, seconds)| (stage.as_str().to_owned(), json!(seconds)))
        .collect::<serde_json::Map<_, _>>();
    Ok((model, Value::Object(stage_seconds), seconds))
}

/// `truth/players.csv` of a generated lake (user_id,archetype), when it has one.
fn read_truth(lake: &Path) -> anyhow::Result<Option<HashMap<String, String>>> {
    let path = lake.join("truth").join("players.csv");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
    };
    Ok(Some(
        text.lines()
            .skip(1)
            .filter_map(|line| {
                let (user, archetype) = line.split_once(',')?;
                Some((user.to_owned(), archetype.trim().to_owned()))
            })
            .collect(),
    ))
}

/// The adjusted Rand index of the model's labels against the truth, over players with both.
fn agreement(table: &FeatureTable, model: &Model, truth: &HashMap<String, String>) -> f64 {
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for (player, assignment) in table.player_ids.iter().zip(&model.assignments) {
        if let (Some(label), Some(cluster)) = (truth.get(player), assignment.cluster) {
            ours.push(cluster);
            theirs.push(label.as_str());
        }
    }
    crmbet_ml::adjusted_rand_index(&ours, &theirs)
}

/// The peer's timed stages and results.
struct PeerTraining {
    measurement: Measurement,
    stages: Value,
    chosen_k: Value,
    ari: Value,
}

/// Runs the peer's whole pipeline (DuckDB ETL, then scikit-learn) on the lake; keeps the
/// time of its training stages.
fn peer_training(arguments: &BenchTrainArgs) -> anyhow::Result<PeerTraining> {
    let kmeans_only = matches!(arguments.algorithm, AlgorithmArg::Kmeans);
    let mut peer_arguments = vec![
        "--engine".to_owned(),
        "duckdb".to_owned(),
        "--lake".to_owned(),
        arguments.lake.display().to_string(),
        "--k-min".to_owned(),
        arguments.k_min.to_string(),
        "--k-max".to_owned(),
        arguments.k_max.to_string(),
        "--seed".to_owned(),
        arguments.seed.to_string(),
    ];
    if kmeans_only {
        peer_arguments.extend(["--density-sample".to_owned(), "0".to_owned()]);
    }
    let report = run_peer(
        &arguments.peer.peer_python,
        &arguments.peer.peer,
        &peer_arguments,
    )?;
    let mut timed = vec!["scale", "kmeans_select"];
    if !kmeans_only {
        timed.extend(["dbscan", "hdbscan"]);
    }
    let seconds = timed
        .iter()
        .map(|stage| {
            report["stages_s"][stage]
                .as_f64()
                .with_context(|| format!("the peer's report has no stages_s.{stage}"))
        })
        .sum::<anyhow::Result<f64>>()?;
    Ok(PeerTraining {
        measurement: Measurement {
            name: "scikit-learn peer (whole process RSS)",
            seconds,
            peak_rss_bytes: peer_peak_rss(&report),
        },
        stages: report["stages_s"].clone(),
        chosen_k: report["kmeans"]["chosen_k"].clone(),
        ari: report["kmeans"]["ari_vs_truth"].clone(),
    })
}
