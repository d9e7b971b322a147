//! `crmbet train`: train the segmentation model on the latest ETL run's features, with a
//! progress bar, store it and make it the active model.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use crmbet_app::{Trainer, TrainingEvent, TrainingOutcome, TrainingRequest};
use crmbet_core::Config;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::cli::TrainArgs;
use crate::command::open_store;

/// Trains, stores and activates a model; prints a summary (or one JSON object).
pub async fn run(config: Config, arguments: TrainArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(&config).await?;
    store
        .fail_abandoned_training_runs()
        .await
        .context("closing training runs a stopped process left open")?;
    let request = TrainingRequest {
        algorithm: arguments.algorithm.into(),
        k: arguments
            .k
            .map(|k| usize::try_from(k).unwrap_or(usize::MAX)),
        seed: arguments.seed,
        activate: true,
        requested_by: Some("cli".to_owned()),
    };
    let outcome = train_with_progress(&Trainer::new(store), request, arguments.json).await?;
    print_summary(&outcome, arguments.json);
    Ok(ExitCode::SUCCESS)
}

/// Runs one training to its end, drawing a progress bar unless `quiet`.
pub async fn train_with_progress(
    trainer: &Trainer,
    request: TrainingRequest,
    quiet: bool,
) -> anyhow::Result<TrainingOutcome> {
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(100)
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed_precise} [{bar:30}] {pos:>3}% {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let started = Instant::now();
    let outcome = trainer
        .run(request, |event: &TrainingEvent| {
            bar.set_position(event.percent.clamp(0.0, 100.0) as u64);
            bar.set_message(format!("{}: {}", event.stage.as_str(), event.message));
        })
        .await;
    bar.finish_and_clear();
    let outcome = outcome.context("training")?;
    if !quiet {
        eprintln!(
            "trained in {:.1} s (training run {})",
            started.elapsed().as_secs_f64(),
            outcome.run_id
        );
    }
    Ok(outcome)
}

fn print_summary(outcome: &TrainingOutcome, as_json: bool) {
    let model = &outcome.model;
    if as_json {
        let clusters: Vec<_> = model
            .clusters
            .iter()
            .map(|cluster| {
                json!({
                    "id": cluster_id(outcome, cluster.label),
                    "label": cluster.label,
                    "name": cluster.name,
                    "size": cluster.size,
                    "description": cluster.description,
                    "suggested_campaign": cluster.suggested_campaign,
                })
            })
            .collect();
        let summary = json!({
            "model_id": outcome.model_id.0,
            "training_run_id": outcome.run_id.0,
            "algorithm": model.algorithm.to_string(),
            "k": model.k,
            "silhouette": model.metrics.silhouette,
            "davies_bouldin": model.metrics.davies_bouldin,
            "calinski_harabasz": model.metrics.calinski_harabasz,
            "stability": model.metrics.stability,
            "noise_fraction": model.metrics.noise_fraction,
            "selection_reason": model.selection_reason,
            "clusters": clusters,
        });
        println!("{summary}");
        return;
    }
    println!(
        "model {} (active): {} with k={}, silhouette {:.3}, Davies-Bouldin {:.3}, \
         Calinski-Harabasz {:.0}, stability {:.3}",
        outcome.model_id,
        model.algorithm,
        model.k,
        model.metrics.silhouette,
        model.metrics.davies_bouldin,
        model.metrics.calinski_harabasz,
        model.metrics.stability
    );
    println!("why: {}", model.selection_reason);
    for cluster in &model.clusters {
        println!(
            "  {:>4} {:<28} {:>8} players ({:>5.1}%)  {}",
            cluster_id(outcome, cluster.label).map_or_else(|| "-".to_owned(), |id| id.to_string()),
            cluster.name,
            cluster.size,
            cluster.share * 100.0,
            cluster.description
        );
    }
}

/// The API's id of a cluster label of the stored model.
fn cluster_id(outcome: &TrainingOutcome, label: usize) -> Option<i64> {
    let label = i32::try_from(label).ok()?;
    outcome.cluster_ids.get(&label).copied()
}
