use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, Timelike, Utc};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::TimestampMicrosecondType;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::*;
use crate::contract::{GAME_TYPED, GAME_TYPES, TRANSACTION_TYPES};
use crate::quality::Rule;
use crate::{EtlMode, EtlOptions, LakeSource, run_etl};

fn end_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, 30).unwrap()
}

fn options(players: usize, transactions: usize) -> SyntheticLakeOptions {
    SyntheticLakeOptions {
        seed: 7,
        ..SyntheticLakeOptions::new(players, transactions, end_date())
    }
}

fn write(root: &Path, options: &SyntheticLakeOptions) -> SyntheticLakeSummary {
    write_synthetic_lake(root, options, &mut |_| {}).unwrap()
}

/// A row as read back from a Parquet partition.
#[derive(Debug, Clone, PartialEq)]
struct WrittenRow {
    transaction_id: String,
    user_id: Option<String>,
    occurred_at: DateTime<Utc>,
    kind: String,
    amount: f64,
    currency: String,
    game_type: Option<String>,
    game_id: Option<String>,
    session_id: Option<String>,
    channel: Option<String>,
    country: Option<String>,
}

fn partition_files(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for folder in fs::read_dir(root.join("transactions")).unwrap() {
        for file in fs::read_dir(folder.unwrap().path()).unwrap() {
            files.push(file.unwrap().path());
        }
    }
    files.sort();
    files
}

fn read_rows(root: &Path) -> Vec<WrittenRow> {
    let mut rows = Vec::new();
    for path in partition_files(root) {
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let text = |name: &str, index: usize| {
                let column = batch.column_by_name(name).unwrap().as_string::<i32>();
                column
                    .is_valid(index)
                    .then(|| column.value(index).to_owned())
            };
            let occurred_at = batch
                .column_by_name("occurred_at")
                .unwrap()
                .as_primitive::<TimestampMicrosecondType>();
            let amount = batch
                .column_by_name("amount")
                .unwrap()
                .as_primitive::<datafusion::arrow::datatypes::Float64Type>();
            for index in 0..batch.num_rows() {
                rows.push(WrittenRow {
                    transaction_id: text("transaction_id", index).unwrap(),
                    user_id: text("user_id", index),
                    occurred_at: DateTime::from_timestamp_micros(occurred_at.value(index)).unwrap(),
                    kind: text("type", index).unwrap(),
                    amount: amount.value(index),
                    currency: text("currency", index).unwrap(),
                    game_type: text("game_type", index),
                    game_id: text("game_id", index),
                    session_id: text("session_id", index),
                    channel: text("channel", index),
                    country: text("country", index),
                });
            }
        }
    }
    rows
}

fn truth(root: &Path) -> BTreeMap<String, String> {
    let text = fs::read_to_string(root.join("truth/players.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("user_id,archetype"));
    lines
        .map(|line| {
            let (user_id, archetype) = line.split_once(',').unwrap();
            (user_id.to_owned(), archetype.to_owned())
        })
        .collect()
}

/// The rule a written row breaks, judged here independently of the ETL's SQL.
fn broken_rule(row: &WrittenRow, now: DateTime<Utc>) -> Option<Rule> {
    if row.transaction_id.is_empty() {
        return Some(Rule::TransactionIdMissing);
    }
    if row.user_id.as_deref().is_none_or(|id| id.trim().is_empty()) {
        return Some(Rule::UserIdMissing);
    }
    if !TRANSACTION_TYPES.contains(&row.kind.as_str()) {
        return Some(Rule::TypeUnknown);
    }
    if !(row.amount.is_finite() && row.amount >= 0.0) {
        return Some(Rule::AmountInvalid);
    }
    let three_capitals =
        row.currency.len() == 3 && row.currency.bytes().all(|byte| byte.is_ascii_uppercase());
    if !three_capitals {
        return Some(Rule::CurrencyInvalid);
    }
    if row.occurred_at > now {
        return Some(Rule::OccurredAtFuture);
    }
    if let Some(game_type) = &row.game_type
        && !GAME_TYPES.contains(&game_type.as_str())
    {
        return Some(Rule::GameTypeInvalid);
    }
    if GAME_TYPED.contains(&row.kind.as_str()) && row.game_type.is_none() {
        return Some(Rule::GameTypeMissing);
    }
    None
}

fn etl_now() -> DateTime<Utc> {
    end_date()
        .succ_opt()
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
}

#[test]
fn same_seed_writes_identical_files_and_another_seed_does_not() {
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    let third = tempfile::tempdir().unwrap();
    write(first.path(), &options(300, 12_000));
    write(second.path(), &options(300, 12_000));
    let other_seed = SyntheticLakeOptions {
        seed: 8,
        ..options(300, 12_000)
    };
    write(third.path(), &other_seed);

    let files = partition_files(first.path());
    let last_day = files.last().unwrap().strip_prefix(first.path()).unwrap();
    assert!(
        last_day.ends_with("dt=2026-06-30/part-0.parquet"),
        "{last_day:?}"
    );
    let bytes = |root: &Path, relative: &Path| fs::read(root.join(relative)).unwrap();
    for file in &files {
        let relative = file.strip_prefix(first.path()).unwrap();
        assert_eq!(
            bytes(first.path(), relative),
            bytes(second.path(), relative)
        );
    }
    let truth_file = Path::new("truth/players.csv");
    assert_eq!(
        bytes(first.path(), truth_file),
        bytes(second.path(), truth_file)
    );
    assert_ne!(bytes(first.path(), last_day), bytes(third.path(), last_day));
}

#[test]
fn rows_written_equal_the_requested_transactions() {
    let root = tempfile::tempdir().unwrap();
    let mut reported = Vec::new();
    let summary = write_synthetic_lake(root.path(), &options(400, 25_000), &mut |rows| {
        reported.push(rows)
    })
    .unwrap();
    assert_eq!(summary.rows, 25_000);
    assert_eq!(read_rows(root.path()).len(), 25_000);
    assert_eq!(summary.files, partition_files(root.path()).len());
    assert_eq!(reported.len(), summary.files);
    assert!(reported.windows(2).all(|pair| pair[0] < pair[1]));
    assert_eq!(reported.last(), Some(&25_000));
}

#[test]
fn archetype_shares_are_near_their_targets() {
    let root = tempfile::tempdir().unwrap();
    let summary = write(root.path(), &options(6_000, 12_000));
    let players: usize = summary
        .players_per_archetype
        .iter()
        .map(|(_, count)| count)
        .sum();
    assert_eq!(players, 6_000);
    for (archetype, count) in &summary.players_per_archetype {
        let share = *count as f64 / players as f64;
        assert!(
            (share - archetype.target_share()).abs() < 0.02,
            "{archetype:?}: {share}"
        );
    }
    let truth = truth(root.path());
    assert_eq!(truth.len(), 6_000);
    assert_eq!(truth.keys().next().map(String::as_str), Some("p000000"));
    let truth_counts = truth
        .values()
        .fold(BTreeMap::new(), |mut counts, archetype| {
            *counts.entry(archetype.as_str()).or_insert(0) += 1;
            counts
        });
    for (archetype, count) in &summary.players_per_archetype {
        assert_eq!(truth_counts.get(archetype.key()), Some(count));
    }
}

#[test]
fn dirty_rows_are_the_requested_fraction_spread_over_the_faults() {
    let root = tempfile::tempdir().unwrap();
    let dirty = SyntheticLakeOptions {
        dirty_fraction: 0.05,
        ..options(500, 30_000)
    };
    let summary = write(root.path(), &dirty);
    assert_eq!(summary.dirty_rows, 1_500);
    for (fault, count) in &summary.dirty_rows_by_fault {
        assert!(*count == 250, "{fault:?}: {count}");
    }

    let rows = read_rows(root.path());
    let now = etl_now();
    let mut by_rule: BTreeMap<Rule, u64> = BTreeMap::new();
    for row in &rows {
        if let Some(rule) = broken_rule(row, now) {
            *by_rule.entry(rule).or_default() += 1;
        }
    }
    let unique: BTreeSet<&str> = rows.iter().map(|row| row.transaction_id.as_str()).collect();
    let mut expected_by_rule = BTreeMap::new();
    for (fault, count) in &summary.dirty_rows_by_fault {
        match fault.rule() {
            Some(rule) => {
                expected_by_rule.insert(rule, *count);
            }
            None => assert_eq!(rows.len() - unique.len(), *count as usize),
        }
    }
    assert_eq!(by_rule, expected_by_rule);
}

#[test]
fn every_clean_row_satisfies_the_lake_contract() {
    let root = tempfile::tempdir().unwrap();
    write(root.path(), &options(600, 30_000));
    let truth = truth(root.path());
    let first_second = DateTime::parse_from_rfc3339("2025-07-01T00:00:00Z").unwrap();
    let now = etl_now();
    let mut clean = 0;
    for row in read_rows(root.path()) {
        if broken_rule(&row, now).is_some() {
            continue;
        }
        clean += 1;
        let user_id = row.user_id.as_deref().unwrap();
        assert!(truth.contains_key(user_id), "{row:?}");
        assert!(
            row.occurred_at >= first_second && row.occurred_at < now,
            "{row:?}"
        );
        assert!(
            row.amount > 0.0 && ((row.amount * 100.0).round() - row.amount * 100.0).abs() < 1e-6,
            "{row:?}"
        );
        assert_eq!(
            row.game_type.is_some(),
            GAME_TYPED.contains(&row.kind.as_str()),
            "{row:?}"
        );
        assert_eq!(row.game_id.is_some(), row.game_type.is_some(), "{row:?}");
        if let (Some(game_type), Some(game_id)) = (&row.game_type, &row.game_id) {
            assert!(game_id.starts_with(&format!("{game_type}-")), "{row:?}");
        }
        assert_eq!(row.session_id.is_none(), row.kind == "bonus", "{row:?}");
        assert!(
            ["EUR", "GBP", "SEK", "NOK", "CAD", "BRL"].contains(&row.currency.as_str()),
            "{row:?}"
        );
        if let Some(channel) = &row.channel {
            assert!(
                ["web", "mobile", "app"].contains(&channel.as_str()),
                "{row:?}"
            );
        }
        if let Some(country) = &row.country {
            assert!(
                country.len() == 2 && country.bytes().all(|byte| byte.is_ascii_uppercase()),
                "{row:?}"
            );
        }
    }
    assert!(clean >= 29_000, "{clean} clean rows");
}

#[test]
fn rows_sit_in_the_partition_of_their_day_and_in_time_order() {
    let root = tempfile::tempdir().unwrap();
    write(
        root.path(),
        &SyntheticLakeOptions {
            dirty_fraction: 0.0,
            ..options(200, 8_000)
        },
    );
    for path in partition_files(root.path()) {
        let folder = path
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy();
        let date = NaiveDate::parse_from_str(folder.trim_start_matches("dt="), "%Y-%m-%d").unwrap();
        let day_root = tempfile::tempdir().unwrap();
        fs::create_dir_all(day_root.path().join("transactions/x")).unwrap();
        fs::copy(&path, day_root.path().join("transactions/x/part.parquet")).unwrap();
        let rows = read_rows(day_root.path());
        assert!(rows.iter().all(|row| row.occurred_at.date_naive() == date));
        assert!(
            rows.windows(2)
                .all(|pair| pair[0].occurred_at <= pair[1].occurred_at)
        );
    }
}

/// Per-archetype figures of a lake: share of bets on the signature game, share of rows at
/// night and at weekends, and the median of the players' average bets.
#[test]
fn archetypes_show_their_signatures() {
    let root = tempfile::tempdir().unwrap();
    write(
        root.path(),
        &SyntheticLakeOptions {
            dirty_fraction: 0.0,
            ..options(1_500, 75_000)
        },
    );
    let truth = truth(root.path());
    #[derive(Default)]
    struct Figures {
        bets: f64,
        bets_by_game: BTreeMap<String, f64>,
        rows: f64,
        night_rows: f64,
        weekend_rows: f64,
        stakes_by_player: BTreeMap<String, (f64, f64)>,
    }
    let mut figures: BTreeMap<String, Figures> = BTreeMap::new();
    for row in read_rows(root.path()) {
        let user_id = row.user_id.clone().unwrap();
        let archetype = figures.entry(truth[&user_id].clone()).or_default();
        archetype.rows += 1.0;
        if row.occurred_at.hour() < 6 {
            archetype.night_rows += 1.0;
        }
        if row.occurred_at.weekday().number_from_monday() >= 6 {
            archetype.weekend_rows += 1.0;
        }
        if row.kind == "bet" {
            archetype.bets += 1.0;
            *archetype
                .bets_by_game
                .entry(row.game_type.unwrap())
                .or_default() += 1.0;
            let stakes = archetype.stakes_by_player.entry(user_id).or_default();
            stakes.0 += row.amount;
            stakes.1 += 1.0;
        }
    }
    // (archetype, signature game, its minimum share of bets, night share range, weekend
    // share range, median average bet range in EUR)
    type Range = (f64, f64);
    let expectations: [(&str, &str, f64, Range, Range, Range); 6] = [
        (
            "casual_slots",
            "slots",
            0.75,
            (0.0, 0.15),
            (0.15, 0.45),
            (0.3, 1.2),
        ),
        (
            "weekend_warrior",
            "sports",
            0.6,
            (0.0, 0.15),
            (0.75, 1.0),
            (5.0, 20.0),
        ),
        (
            "sports_betting_pro",
            "sports",
            0.85,
            (0.0, 0.15),
            (0.1, 0.4),
            (25.0, 90.0),
        ),
        (
            "night_owl_casino",
            "slots",
            0.4,
            (0.7, 1.0),
            (0.15, 0.45),
            (1.8, 7.0),
        ),
        (
            "high_roller_crash",
            "crash",
            0.7,
            (0.0, 0.3),
            (0.15, 0.45),
            (35.0, 200.0),
        ),
        (
            "vip_live_dealer",
            "live_casino",
            0.7,
            (0.0, 0.25),
            (0.15, 0.45),
            (90.0, 340.0),
        ),
    ];
    for (archetype, game, game_share, night, weekend, bet) in expectations {
        let figures = &figures[archetype];
        let share = figures.bets_by_game.get(game).copied().unwrap_or(0.0) / figures.bets;
        assert!(share >= game_share, "{archetype}: {game} share {share}");
        let night_share = figures.night_rows / figures.rows;
        assert!(
            (night.0..=night.1).contains(&night_share),
            "{archetype}: night {night_share}"
        );
        let weekend_share = figures.weekend_rows / figures.rows;
        assert!(
            (weekend.0..=weekend.1).contains(&weekend_share),
            "{archetype}: weekend {weekend_share}"
        );
        let mut averages: Vec<f64> = figures
            .stakes_by_player
            .values()
            .map(|(total, count)| total / count)
            .collect();
        averages.sort_by(f64::total_cmp);
        let median = averages[averages.len() / 2];
        assert!(
            (bet.0..=bet.1).contains(&median),
            "{archetype}: median average bet {median}"
        );
    }
}

#[tokio::test]
async fn etl_quarantines_exactly_the_dirty_rows_and_keeps_every_player() {
    for format in [SyntheticFormat::Parquet, SyntheticFormat::Csv] {
        let lake = tempfile::tempdir().unwrap();
        let warehouse = tempfile::tempdir().unwrap();
        let options = SyntheticLakeOptions {
            dirty_fraction: 0.03,
            format,
            ..options(400, 20_000)
        };
        let summary = write(lake.path(), &options);
        let etl = EtlOptions::new(LakeSource::local(lake.path()), warehouse.path(), "test")
            .with_mode(EtlMode::Full)
            .with_now(etl_now());
        let outcome = run_etl(etl, &|_| {}).await.unwrap();

        assert_eq!(
            outcome.failed_objects.len(),
            0,
            "{format:?}: {:?}",
            outcome.failed_objects
        );
        assert_eq!(outcome.rows_read, summary.rows, "{format:?}");
        let mut expected_quarantine = BTreeMap::new();
        let mut expected_duplicates = 0;
        for (fault, count) in &summary.dirty_rows_by_fault {
            match fault.rule() {
                Some(rule) => {
                    expected_quarantine.insert(rule, *count);
                }
                None => expected_duplicates = *count,
            }
        }
        assert_eq!(
            outcome.quarantine_by_rule, expected_quarantine,
            "{format:?}"
        );
        assert_eq!(outcome.duplicates, expected_duplicates, "{format:?}");
        assert_eq!(
            outcome.rows_loaded,
            summary.rows - summary.dirty_rows,
            "{format:?}"
        );
        assert_eq!(outcome.players, 400, "{format:?}");
    }
}

#[test]
fn invalid_options_are_rejected_by_name() {
    let cases = [
        (
            SyntheticLakeOptions {
                players: 0,
                ..options(10, 10)
            },
            "players",
        ),
        (
            SyntheticLakeOptions {
                transactions: 0,
                ..options(10, 10)
            },
            "transactions",
        ),
        (
            SyntheticLakeOptions {
                dirty_fraction: 1.0,
                ..options(10, 10)
            },
            "dirty_fraction",
        ),
        (
            SyntheticLakeOptions {
                dirty_fraction: -0.1,
                ..options(10, 10)
            },
            "dirty_fraction",
        ),
        (
            SyntheticLakeOptions {
                dirty_fraction: f64::NAN,
                ..options(10, 10)
            },
            "dirty_fraction",
        ),
        (
            SyntheticLakeOptions {
                end_date: NaiveDate::MIN,
                ..options(10, 10)
            },
            "end_date",
        ),
    ];
    for (options, expected) in cases {
        let root = tempfile::tempdir().unwrap();
        match write_synthetic_lake(root.path(), &options, &mut |_| {}) {
            Err(SyntheticLakeError::InvalidOption { option, .. }) => assert_eq!(option, expected),
            other => panic!("{expected}: {other:?}"),
        }
    }
}

#[test]
fn a_lake_that_already_holds_transactions_is_left_alone() {
    let root = tempfile::tempdir().unwrap();
    write(root.path(), &options(20, 200));
    let before = partition_files(root.path());
    let error = write_synthetic_lake(root.path(), &options(20, 200), &mut |_| {}).unwrap_err();
    assert!(
        matches!(error, SyntheticLakeError::LakeNotEmpty { .. }),
        "{error}"
    );
    assert_eq!(partition_files(root.path()), before);
}

#[test]
fn fewer_transactions_than_players_leave_some_players_out_of_the_truth() {
    let root = tempfile::tempdir().unwrap();
    let summary = write(root.path(), &options(1_000, 300));
    let players: usize = summary
        .players_per_archetype
        .iter()
        .map(|(_, count)| count)
        .sum();
    assert_eq!(summary.rows, 300);
    assert!(players <= 300 && players > 200, "{players}");
    assert_eq!(truth(root.path()).len(), players);
}
