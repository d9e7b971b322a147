//! A lake from the peer's generator with 2% planted faults: every fault lands under the
//! right rule, no clean row is lost, and every feature agrees with the peer's pandas run.

use std::collections::{BTreeMap, HashMap};

use chrono::Utc;
use crmbet_core::{FAVOURITE_GAME, NUMERIC_FEATURES};
use crmbet_etl::{EtlMode, Rule};
use datafusion::arrow::array::{Array, Float64Array, StringArray};
use datafusion::arrow::compute::kernels::cast::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use serde_json::Value;

use crate::support::{run, run_peer};

/// Features of ours the peer does not compute.
const CRMBET_ONLY_FEATURES: [&str; 2] = ["clv_estimate", "preferred_weekday"];

/// The features both implementations compute: the one feature list, less ours alone.
fn shared_features() -> Vec<&'static str> {
    std::iter::once(FAVOURITE_GAME)
        .chain(NUMERIC_FEATURES.iter().copied())
        .filter(|feature| !CRMBET_ONLY_FEATURES.contains(feature))
        .collect()
}

/// The generator's fault kinds and the rule that must catch each.
const FAULT_RULES: [(&str, Rule); 5] = [
    ("negative_amount", Rule::AmountInvalid),
    ("unknown_type", Rule::TypeUnknown),
    ("future_timestamp", Rule::OccurredAtFuture),
    ("bad_currency", Rule::CurrencyInvalid),
    ("null_user_id", Rule::UserIdMissing),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_lake_matches_planted_faults_and_peer_features() {
    let folder = tempfile::tempdir().unwrap();
    let lake = folder.path().join("lake");
    let lake_text = lake.to_str().unwrap();
    run_peer(
        "gen_lake.py",
        &[
            "--out",
            lake_text,
            "--players",
            "500",
            "--transactions",
            "20000",
            "--seed",
            "3",
            "--dirty",
            "0.02",
        ],
    );
    let peer_features = folder.path().join("peer.parquet");
    run_peer(
        "peer.py",
        &[
            "--lake",
            lake_text,
            "--etl-only",
            "--features-out",
            peer_features.to_str().unwrap(),
        ],
    );
    let truth: Value =
        serde_json::from_slice(&std::fs::read(lake.join("truth/faults.json")).unwrap()).unwrap();

    let (outcome, _) = run(
        &lake,
        &folder.path().join("warehouse"),
        EtlMode::Full,
        Utc::now(),
    )
    .await;

    assert!(
        outcome.failed_objects.is_empty(),
        "{:?}",
        outcome.failed_objects
    );
    assert_eq!(outcome.objects_read, truth["files"].as_u64().unwrap());
    assert_eq!(outcome.rows_read, truth["rows"].as_u64().unwrap());
    let expected_by_rule: BTreeMap<Rule, u64> = FAULT_RULES
        .iter()
        .map(|(fault, rule)| (*rule, truth["faults"][fault].as_u64().unwrap()))
        .filter(|(_, count)| *count > 0)
        .collect();
    assert_eq!(outcome.quarantine_by_rule, expected_by_rule);
    assert_eq!(
        outcome.duplicates,
        truth["faults"]["duplicate_transaction_id"]
            .as_u64()
            .unwrap()
    );
    assert_eq!(
        outcome.rows_loaded,
        truth["expected_clean_rows"].as_u64().unwrap()
    );
    assert_eq!(outcome.players, truth["players"].as_u64().unwrap());
    assert!(
        outcome
            .quarantined
            .iter()
            .all(|row| row.source_object.starts_with("transactions/dt="))
    );

    let shared_features = shared_features();
    assert_eq!(
        shared_features.len(),
        32,
        "the peer computes 32 of our features"
    );
    let peer = read_peer_features(&peer_features, &shared_features).await;
    assert_eq!(peer.len(), outcome.features.len(), "players");
    let mut compared = 0;
    for player in &outcome.features {
        let ours = serde_json::to_value(player).unwrap();
        let theirs = peer
            .get(&player.user_id)
            .unwrap_or_else(|| panic!("player {} missing from the peer", player.user_id));
        for &feature in &shared_features {
            let context = format!("player {} feature {feature}", player.user_id);
            let peer_value = theirs
                .get(feature)
                .unwrap_or_else(|| panic!("{context}: not in the peer"));
            match (&ours[feature], peer_value) {
                (Value::Number(left), PeerValue::Number(right)) => {
                    let left = left.as_f64().unwrap();
                    let scale = left.abs().max(right.abs()).max(1.0);
                    assert!(
                        (left - right).abs() <= 1e-6 * scale,
                        "{context}: ours {left}, peer {right}"
                    );
                }
                (Value::String(left), PeerValue::Text(right)) => {
                    assert_eq!(left, right, "{context}")
                }
                (Value::Null, PeerValue::Null) => {}
                (left, right) => panic!("{context}: ours {left:?}, peer {right:?}"),
            }
            compared += 1;
        }
    }
    assert_eq!(compared, shared_features.len() * outcome.features.len());
}

#[derive(Debug)]
enum PeerValue {
    Number(f64),
    Text(String),
    Null,
}

/// The peer's feature table by user id, read through DataFusion.
async fn read_peer_features(
    path: &std::path::Path,
    features: &[&str],
) -> HashMap<String, HashMap<String, PeerValue>> {
    let context = SessionContext::new();
    let batches = context
        .read_parquet(path.to_str().unwrap(), ParquetReadOptions::default())
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let mut players = HashMap::new();
    for batch in batches {
        let user_ids = cast(batch.column_by_name("user_id").unwrap(), &DataType::Utf8).unwrap();
        let user_ids = user_ids.as_any().downcast_ref::<StringArray>().unwrap();
        for row in 0..batch.num_rows() {
            let mut values = HashMap::new();
            for &feature in features {
                let column = batch
                    .column_by_name(feature)
                    .unwrap_or_else(|| panic!("peer column {feature}"));
                let value = if column.is_null(row) {
                    PeerValue::Null
                } else if feature == "favourite_game" {
                    let text = cast(column, &DataType::Utf8).unwrap();
                    let text = text.as_any().downcast_ref::<StringArray>().unwrap();
                    PeerValue::Text(text.value(row).to_owned())
                } else {
                    let number = cast(column, &DataType::Float64).unwrap();
                    let number = number.as_any().downcast_ref::<Float64Array>().unwrap();
                    PeerValue::Number(number.value(row))
                };
                values.insert(feature.to_owned(), value);
            }
            players.insert(user_ids.value(row).to_owned(), values);
        }
    }
    players
}
