//! `train` as a caller sees it: reproducible, and robust to columns that carry nothing.

// Test helpers unwrap on purpose: the panic with the error is the failure report.
#![allow(clippy::unwrap_used)]

use crmbet_ml::{Algorithm, FeatureTable, Progress, Stage, TrainOptions, train};
use ndarray::Array2;
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{RngCore, SeedableRng};

/// Three groups of players that differ in stake, night share and sports share, plus a
/// column of NaN and a constant column.
fn players(seed: u64, count: usize) -> FeatureTable {
    let mut random = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut uniform = move || (random.next_u64() >> 11) as f64 / (1_u64 << 53) as f64;
    let columns = [
        "avg_ticket",
        "night_share",
        "share_sports",
        "bet_count",
        "all_missing",
        "always_seven",
    ];
    let centres = [
        [2.0, 0.1, 0.1, 30.0],
        [50.0, 0.2, 0.9, 80.0],
        [5.0, 0.9, 0.0, 200.0],
    ];
    let mut values = Array2::zeros((count, columns.len()));
    for row in 0..count {
        let centre = centres[row % centres.len()];
        for (column, middle) in centre.iter().enumerate() {
            values[[row, column]] = middle * (0.8 + 0.4 * uniform());
        }
        values[[row, 4]] = f64::NAN;
        values[[row, 5]] = 7.0;
    }
    FeatureTable {
        player_ids: (0..count).map(|row| format!("p{row:05}")).collect(),
        columns: columns.iter().map(|name| (*name).to_owned()).collect(),
        values,
    }
}

fn options(algorithm: Algorithm) -> TrainOptions {
    TrainOptions {
        algorithm,
        seed: 3,
        k_max: 6,
        bootstrap_runs: 3,
        ..TrainOptions::default()
    }
}

#[test]
fn the_same_seed_and_data_give_the_same_model() {
    let table = players(1, 900);
    for algorithm in [Algorithm::Auto, Algorithm::Hdbscan, Algorithm::Ensemble] {
        let first = train(&table, &options(algorithm), &mut |_| {}).unwrap();
        let second = train(&table, &options(algorithm), &mut |_| {}).unwrap();
        // Debug text, not ==: unmeasured metrics are NaN, which never equals itself.
        assert_eq!(
            format!("{first:?}"),
            format!("{second:?}"),
            "{algorithm} is not reproducible"
        );
    }
}

#[test]
fn nan_and_constant_columns_do_not_stop_training() {
    let table = players(2, 600);
    let mut stages = Vec::new();
    let model = train(
        &table,
        &options(Algorithm::Auto),
        &mut |progress: &Progress| {
            stages.push(progress.stage);
        },
    )
    .unwrap();
    assert_eq!(model.k, 3, "{}", model.selection_reason);
    assert!(!model.feature_names.iter().any(|name| name == "all_missing"));
    assert!(
        !model
            .feature_names
            .iter()
            .any(|name| name == "always_seven")
    );
    assert!(model.metrics.silhouette.is_finite());
    // KMeans flags the players beyond the distance holding 99% of their cluster, no more.
    let outliers = model
        .assignments
        .iter()
        .filter(|assignment| assignment.cluster.is_none())
        .count();
    assert!(
        outliers * 50 <= model.assignments.len(),
        "{outliers} outliers of {}",
        model.assignments.len()
    );
    assert!(
        model
            .assignments
            .iter()
            .all(|assignment| (0.0..=1.0).contains(&assignment.confidence))
    );
    for stage in [Stage::Preparing, Stage::KMeans, Stage::Naming, Stage::Done] {
        assert!(
            stages.contains(&stage),
            "no {stage:?} progress in {stages:?}"
        );
    }
}

#[test]
fn a_table_of_only_missing_values_is_an_error_not_a_crash() {
    let mut table = players(3, 50);
    table.values.fill(f64::NAN);
    let error = train(&table, &options(Algorithm::Auto), &mut |_| {}).unwrap_err();
    assert!(!error.to_string().is_empty());
}

#[test]
fn a_whale_tail_gets_its_own_cluster_and_live_whales_join_it() {
    // 1,200 players of the three groups (median stake about 5), then 8 staking 2,000-5,000.
    let mut table = players(4, 1_208);
    for row in 1_200..1_208 {
        table.values[[row, 0]] = 2_000.0 + 400.0 * (row - 1_200) as f64;
    }
    let model = train(&table, &options(Algorithm::KMeans), &mut |_| {}).unwrap();
    let tail = crmbet_ml::ValueTail::from_parameters(&model.parameters)
        .unwrap_or_else(|| panic!("no tail in {}", model.parameters));
    assert_eq!((tail.players, tail.cluster), (8, model.k - 1));
    assert_eq!(model.clusters[tail.cluster].name, "VIP · High Roller");
    assert_eq!(model.clusters[tail.cluster].size, 8);
    assert!(
        model.assignments[1_200..]
            .iter()
            .all(|assignment| assignment.cluster == Some(tail.cluster))
    );
    assert!(model.selection_reason.contains("their own cluster"));
    // A live player crossing the threshold joins the tail; one below it never does.
    let scorer = model.scorer().unwrap();
    let mut row: Vec<f64> = table.values.row(0).to_vec();
    row[0] = tail.threshold * 2.0;
    let whale = scorer.assign(&table.columns, &row).unwrap();
    assert_eq!(whale.cluster, Some(tail.cluster));
    assert!((whale.confidence - 0.5).abs() < 1e-12);
    row[0] = tail.threshold * 0.9;
    let below = scorer.nearest(&table.columns, &row).unwrap();
    assert_ne!(below.cluster, Some(tail.cluster));
    // The same groups without the tail train without one.
    let plain = train(&players(4, 1_200), &options(Algorithm::KMeans), &mut |_| {}).unwrap();
    assert!(crmbet_ml::ValueTail::from_parameters(&plain.parameters).is_none());
    assert!(
        plain
            .clusters
            .iter()
            .all(|cluster| cluster.name != "VIP · High Roller")
    );
}
