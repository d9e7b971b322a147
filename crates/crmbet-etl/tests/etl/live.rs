//! Live transactions, one at a time, give the batch ETL's answers: the same rule for every
//! broken row, the same duplicates dropped, and every player's features equal to a full run.
//! The lake is replayed by `lake_transactions`, with the ETL's readers.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use crmbet_etl::live::{
    LiveTransaction, Novelty, PlayerAggregates, check_all, features_of, lake_transactions,
    warehouse_aggregates, warehouse_history,
};
use crmbet_etl::{
    CONTRACT_COLUMNS, EtlMode, PlayerFeatures, Rule, SyntheticFormat, SyntheticLakeOptions,
    Warehouse, largest_feature_difference, largest_serialized_difference, write_synthetic_lake,
};

use crate::support::{run, write_object};

/// The live path in memory: checks, deduplicates on `transaction_id`, remembers distinct
/// sessions and days, and updates each player's aggregates one transaction at a time.
#[derive(Default)]
struct LivePlayers {
    seen: HashSet<String>,
    sessions: HashSet<(String, String)>,
    days: HashSet<(String, i64)>,
    players: BTreeMap<String, PlayerAggregates>,
    quarantined: BTreeMap<Rule, u64>,
    duplicates: u64,
}

impl LivePlayers {
    fn ingest(&mut self, transactions: &[LiveTransaction], now: DateTime<Utc>) {
        for answer in check_all(transactions, now, "live:test") {
            let transaction = match answer {
                Ok(transaction) => transaction,
                Err(row) => {
                    *self.quarantined.entry(row.rule).or_default() += 1;
                    continue;
                }
            };
            if !self.seen.insert(transaction.transaction_id.clone()) {
                self.duplicates += 1;
                continue;
            }
            let novelty = Novelty {
                new_session: transaction.session_id.as_ref().is_some_and(|session| {
                    self.sessions
                        .insert((transaction.user_id.clone(), session.clone()))
                }),
                new_day: self.days.insert((
                    transaction.user_id.clone(),
                    PlayerAggregates::epoch_day(&transaction),
                )),
            };
            self.players
                .entry(transaction.user_id.clone())
                .or_insert_with(|| PlayerAggregates::new(transaction.user_id.clone()))
                .apply(&transaction, novelty);
        }
    }

    fn features(&self) -> Vec<PlayerFeatures> {
        features_of(self.players.values())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_transactions_one_at_a_time_give_the_batch_features() {
    // Text timestamps (CSV) and typed ones (Parquet) take different paths into the check.
    for format in [SyntheticFormat::Csv, SyntheticFormat::Parquet] {
        assert_live_equals_batch(format).await;
    }
}

async fn assert_live_equals_batch(format: SyntheticFormat) {
    let folder = tempfile::tempdir().unwrap();
    let lake = folder.path().join("lake");
    let mut options =
        SyntheticLakeOptions::new(400, 30_000, NaiveDate::from_ymd_opt(2026, 5, 31).unwrap());
    options.seed = 20_261_207;
    options.dirty_fraction = 0.03;
    options.format = format;
    write_synthetic_lake(&lake, &options, &mut |_| {}).unwrap();
    let now: DateTime<Utc> = "2026-06-10T00:00:00Z".parse().unwrap();

    let (batch, _) = run(&lake, &folder.path().join("warehouse"), EtlMode::Full, now).await;
    let rows = lake_transactions(&lake).await.unwrap();
    assert_eq!(rows.len() as u64, batch.rows_read, "{format:?}");

    // Uneven batches, as events arrive, with the odd one alone.
    let mut live = LivePlayers::default();
    let mut start = 0;
    for size in [1, 7, 250, 1, 1000].into_iter().cycle() {
        if start >= rows.len() {
            break;
        }
        let end = (start + size).min(rows.len());
        live.ingest(&rows[start..end], now);
        start = end;
    }

    let mut batch_rules: BTreeMap<Rule, u64> = BTreeMap::new();
    for row in &batch.quarantined {
        *batch_rules.entry(row.rule).or_default() += 1;
    }
    assert!(
        batch_rules.len() >= 4,
        "the lake has broken rows of several rules: {batch_rules:?}"
    );
    assert_eq!(
        live.quarantined, batch_rules,
        "{format:?}: the same rules for the same rows"
    );
    assert!(batch.duplicates > 0);
    assert_eq!(live.duplicates, batch.duplicates, "{format:?}");

    let features = live.features();
    assert_eq!(features.len() as u64, batch.players, "{format:?}");
    let difference = largest_feature_difference(&batch.features, &features).unwrap();
    assert!(
        difference <= 1e-9,
        "{format:?}: largest relative difference {difference}"
    );

    // The state a batch run seeds equals the one the events built one at a time.
    let seeded = warehouse_aggregates(&Warehouse::new(folder.path().join("warehouse")))
        .await
        .unwrap();
    let streamed: Vec<PlayerAggregates> = live.players.values().cloned().collect();
    let difference = largest_serialized_difference(&seeded, &streamed).unwrap();
    assert!(
        difference <= 1e-9,
        "{format:?}: aggregates differ by {difference}"
    );

    // What the run hands to the seeding: the same aggregates, and exactly the sessions and
    // days the events remembered, sorted.
    let difference = largest_serialized_difference(&batch.history.players, &streamed).unwrap();
    assert!(
        difference <= 1e-9,
        "{format:?}: the run's history differs by {difference}"
    );
    let mut sessions: Vec<(String, String)> = live.sessions.iter().cloned().collect();
    sessions.sort_unstable();
    let mut days: Vec<(String, i64)> = live.days.iter().cloned().collect();
    days.sort_unstable();
    assert!(!sessions.is_empty() && !days.is_empty());
    assert_eq!(batch.history.sessions, sessions, "{format:?}");
    assert_eq!(batch.history.days, days, "{format:?}");
    let reread = warehouse_history(&Warehouse::new(folder.path().join("warehouse")))
        .await
        .unwrap();
    assert_eq!(reread.sessions, batch.history.sessions, "{format:?}");
    assert_eq!(reread.days, batch.history.days, "{format:?}");
}

/// Hand-written cases for every rule, written as a CSV object and run through the ETL and
/// the live check: the same rule for each (or none), and the one expected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_as_the_etl_files_it() {
    let now: DateTime<Utc> = "2026-06-10T00:00:00Z".parse().unwrap();
    let valid = LiveTransaction {
        transaction_id: Some("t1".into()),
        user_id: Some("u1".into()),
        occurred_at: Some("2026-06-09T23:59:59Z".into()),
        kind: Some("bet".into()),
        amount: Some(1.5),
        currency: Some("EUR".into()),
        game_type: Some("slots".into()),
        ..LiveTransaction::default()
    };
    let case = |change: &dyn Fn(&mut LiveTransaction)| {
        let mut transaction = valid.clone();
        change(&mut transaction);
        transaction
    };
    let text = |value: &str| Some(value.to_owned());
    let cases: Vec<(LiveTransaction, Option<Rule>)> = vec![
        (valid.clone(), None),
        (case(&|t| t.amount = Some(-0.0)), None),
        (case(&|t| t.amount = Some(0.0)), None),
        (
            case(&|t| (t.kind, t.game_type) = (text("deposit"), None)),
            None,
        ),
        (
            case(&|t| t.occurred_at = text("2026-06-10T00:00:00Z")),
            None,
        ),
        (case(&|t| t.occurred_at = text("2026-06-09 22:00:00")), None),
        (
            case(&|t| t.occurred_at = text("2026-06-09T22:00:00.123+02:00")),
            None,
        ),
        (
            case(&|t| (t.transaction_id, t.user_id) = (None, None)),
            Some(Rule::TransactionIdMissing),
        ),
        (case(&|t| t.user_id = None), Some(Rule::UserIdMissing)),
        (
            case(&|t| t.user_id = text(" \t")),
            Some(Rule::UserIdMissing),
        ),
        (case(&|t| t.kind = text("Bet")), Some(Rule::TypeUnknown)),
        (
            case(&|t| t.kind = text("chargeback")),
            Some(Rule::TypeUnknown),
        ),
        (case(&|t| t.kind = None), Some(Rule::TypeUnknown)),
        (case(&|t| t.amount = Some(-1.0)), Some(Rule::AmountInvalid)),
        (
            case(&|t| t.amount = Some(f64::NAN)),
            Some(Rule::AmountInvalid),
        ),
        (
            case(&|t| t.amount = Some(f64::INFINITY)),
            Some(Rule::AmountInvalid),
        ),
        (case(&|t| t.amount = None), Some(Rule::AmountInvalid)),
        (
            case(&|t| t.currency = text("eur")),
            Some(Rule::CurrencyInvalid),
        ),
        (
            case(&|t| t.currency = text("\u{20ac}UR")),
            Some(Rule::CurrencyInvalid),
        ),
        (
            case(&|t| t.currency = text("EURO")),
            Some(Rule::CurrencyInvalid),
        ),
        (case(&|t| t.currency = None), Some(Rule::CurrencyInvalid)),
        (
            case(&|t| t.occurred_at = text("yesterday")),
            Some(Rule::OccurredAtInvalid),
        ),
        (
            case(&|t| t.occurred_at = None),
            Some(Rule::OccurredAtInvalid),
        ),
        (
            case(&|t| t.occurred_at = text("2026-06-10T00:00:00.000001Z")),
            Some(Rule::OccurredAtFuture),
        ),
        (
            case(&|t| t.game_type = text("poker")),
            Some(Rule::GameTypeInvalid),
        ),
        (
            case(&|t| (t.kind, t.game_type) = (text("deposit"), text("Slots"))),
            Some(Rule::GameTypeInvalid),
        ),
        (case(&|t| t.game_type = None), Some(Rule::GameTypeMissing)),
        (
            case(&|t| (t.kind, t.game_type) = (text("refund"), None)),
            Some(Rule::GameTypeMissing),
        ),
    ];

    // One CSV object, each case keyed by its game_id (no rule reads it).
    let folder = tempfile::tempdir().unwrap();
    let lake = folder.path().join("lake");
    let mut csv = CONTRACT_COLUMNS.join(",") + "\n";
    for (index, (transaction, _)) in cases.iter().enumerate() {
        let amount = transaction.amount.map(|amount| {
            if amount.is_nan() {
                "NaN".to_owned()
            } else {
                amount.to_string()
            }
        });
        let fields = [
            transaction.transaction_id.clone(),
            transaction.user_id.clone(),
            transaction.occurred_at.clone(),
            transaction.kind.clone(),
            amount,
            transaction.currency.clone(),
            transaction.game_type.clone(),
            Some(format!("case-{index}")),
            None,
            None,
            None,
        ];
        csv += &fields.map(Option::unwrap_or_default).join(",");
        csv += "\n";
    }
    write_object(
        &lake,
        "transactions/dt=2026-06-09/part-0.csv",
        csv.as_bytes(),
    );
    let (batch, _) = run(&lake, &folder.path().join("warehouse"), EtlMode::Full, now).await;
    let batch_rules: HashMap<String, Rule> = batch
        .quarantined
        .iter()
        .map(|row| {
            let columns: serde_json::Value = serde_json::from_str(&row.row_json).unwrap();
            (columns["game_id"].as_str().unwrap().to_owned(), row.rule)
        })
        .collect();

    let rows = lake_transactions(&lake).await.unwrap();
    assert_eq!(rows.len(), cases.len());
    for (index, (row, answer)) in rows
        .iter()
        .zip(check_all(&rows, now, "live:test"))
        .enumerate()
    {
        let live_rule = answer.err().map(|quarantined| quarantined.rule);
        let key = format!("case-{index}");
        assert_eq!(
            live_rule,
            batch_rules.get(&key).copied(),
            "the ETL and the live check differ on {row:?}"
        );
        assert_eq!(live_rule, cases[index].1, "{row:?}");
    }
}
