//! The one feature list, `crmbet_core::NUMERIC_FEATURES`, against everything that names the
//! features: the `player_features` table the migrations make (SQLite and PostgreSQL), its
//! sea-orm entity, the ETL's output, the mapping from one to the other, and the transforms
//! of the training matrix. A column renamed in one place only fails here.

// Test helpers unwrap on purpose: the panic with the error is the failure report.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::str::FromStr;

use crmbet_app::{LakeLoad, load_lake, numeric_features};
use crmbet_core::{FAVOURITE_GAME, NUMERIC_FEATURES};
use crmbet_etl::LakeSource;
use crmbet_store::Store;
use crmbet_store::entity::player_features;
use crmbet_store::throwaway_postgres::ThrowawayPostgres;
use sea_orm::{
    ConnectionTrait, Database, DbBackend, EntityTrait, IdenStatic, Iterable, ModelTrait, Statement,
    Value,
};

/// The columns of `player_features` that are keys, not features.
const KEYS: [&str; 2] = ["etl_run_id", "user_id"];
/// What the ETL reports per player besides the features: the player's own facts.
const PLAYER_FACTS: [&str; 4] = ["user_id", "first_seen_at", "last_active_at", "country"];

fn expected_table_columns() -> BTreeSet<String> {
    KEYS.iter()
        .chain([FAVOURITE_GAME].iter())
        .chain(NUMERIC_FEATURES)
        .map(|name| (*name).to_owned())
        .collect()
}

fn sorted(names: impl IntoIterator<Item = impl Into<String>>) -> BTreeSet<String> {
    names.into_iter().map(Into::into).collect()
}

const HEADER: &str = "transaction_id,user_id,occurred_at,type,amount,currency,game_type,game_id,session_id,channel,country\n";

/// A lake of two players that gives every feature a value.
fn write_lake(lake: &std::path::Path) {
    let day = lake.join("transactions/dt=2026-06-27");
    std::fs::create_dir_all(&day).unwrap();
    let rows = [
        "t1,alice,2026-06-20T01:00:00Z,deposit,100,EUR,,,s1,web,GB",
        "t2,alice,2026-06-20T01:05:00Z,bet,10,EUR,crash,g1,s1,web,GB",
        "t3,alice,2026-06-21T01:06:00Z,bet,30,EUR,slots,g2,s2,web,GB",
        "t4,alice,2026-06-21T01:07:00Z,win,4,EUR,slots,g2,s2,web,GB",
        "t5,alice,2026-06-22T02:00:00Z,bonus,5,EUR,,,,web,GB",
        "t6,alice,2026-06-27T02:00:00Z,withdrawal,20,EUR,,,s3,web,GB",
        "t7,bob,2026-06-27T14:00:00Z,deposit,50,EUR,,,s4,app,SE",
        "t8,bob,2026-06-27T14:10:00Z,bet,5,EUR,sports,g3,s4,app,SE",
    ];
    std::fs::write(
        day.join("part-0.csv"),
        format!("{HEADER}{}\n", rows.join("\n")),
    )
    .unwrap();
}

/// The column names of `player_features` as the database has them.
async fn table_columns(database_url: &str) -> BTreeSet<String> {
    let connection = Database::connect(database_url).await.unwrap();
    let backend = connection.get_database_backend();
    let sql = match backend {
        DbBackend::Sqlite => "SELECT name AS column_name FROM pragma_table_info('player_features')",
        _ => {
            "SELECT column_name::text AS column_name FROM information_schema.columns \
             WHERE table_name = 'player_features' AND table_schema = current_schema()"
        }
    };
    let rows = connection
        .query_all_raw(Statement::from_string(backend, sql))
        .await
        .unwrap();
    rows.iter()
        .map(|row| row.try_get::<String>("", "column_name").unwrap())
        .collect()
}

fn as_number(value: &Value) -> f64 {
    match value {
        Value::Double(Some(number)) => *number,
        Value::BigInt(Some(number)) => *number as f64,
        Value::Int(Some(number)) => f64::from(*number),
        other => panic!("not a stored number: {other:?}"),
    }
}

/// Loads the lake through the app into `database_url`, then checks every place that names
/// the features against the list.
async fn check_feature_list_on(database_url: &str) {
    assert_eq!(
        table_columns(database_url).await,
        BTreeSet::new(),
        "a new database has no table yet"
    );
    let store = Store::connect(database_url).await.unwrap();
    store.migrate_up().await.unwrap();

    // The migrations' table.
    assert_eq!(
        table_columns(database_url).await,
        expected_table_columns(),
        "the migrated player_features table and the feature list disagree"
    );
    // The entity.
    assert_eq!(
        sorted(player_features::Column::iter().map(|column| column.as_str())),
        expected_table_columns(),
        "the player_features entity and the feature list disagree"
    );

    // The ETL's output.
    let folder = tempfile::tempdir().unwrap();
    write_lake(&folder.path().join("lake"));
    let loaded = load_lake(
        &store,
        LakeLoad {
            source: "lake".to_owned(),
            lake: LakeSource::local(folder.path().join("lake")),
            warehouse_root: folder.path().join("warehouse"),
            full: false,
        },
        &|_| {},
    )
    .await
    .unwrap();
    assert_eq!(loaded.outcome.features.len(), 2);
    let reported = serde_json::to_value(&loaded.outcome.features[0]).unwrap();
    let reported_names = sorted(reported.as_object().unwrap().keys().cloned());
    let expected_names = sorted(
        NUMERIC_FEATURES
            .iter()
            .chain([FAVOURITE_GAME].iter())
            .chain(PLAYER_FACTS.iter())
            .copied(),
    );
    assert_eq!(
        reported_names, expected_names,
        "the ETL's player features and the feature list disagree"
    );

    // The mapping: each stored column holds the ETL's value of the feature of that name.
    let stored = player_features::Entity::find()
        .all(&Database::connect(database_url).await.unwrap())
        .await
        .unwrap();
    assert_eq!(stored.len(), 2);
    for row in &stored {
        let features = loaded
            .outcome
            .features
            .iter()
            .find(|player| player.user_id == row.user_id)
            .unwrap();
        let reported = serde_json::to_value(features).unwrap();
        for name in NUMERIC_FEATURES {
            let column = player_features::Column::from_str(name)
                .unwrap_or_else(|_| panic!("the entity has no column {name}"));
            let stored_value = as_number(&row.get(column));
            let reported_value = reported[name].as_f64().unwrap();
            assert!(
                (stored_value - reported_value).abs() <= 1e-9 * reported_value.abs().max(1.0),
                "{}: column {name} holds {stored_value}, the ETL said {reported_value}",
                row.user_id
            );
        }
    }

    // The raw row a live assignment scores holds each feature at the list's position.
    for features in &loaded.outcome.features {
        let reported = serde_json::to_value(features).unwrap();
        let row = numeric_features(features);
        assert_eq!(row.len(), NUMERIC_FEATURES.len());
        for (name, value) in NUMERIC_FEATURES.iter().zip(&row) {
            let expected = reported[name].as_f64().unwrap();
            assert!(
                (value - expected).abs() <= 1e-12 * expected.abs().max(1.0),
                "{}: numeric_features puts {value} where {name} is {expected}",
                features.user_id
            );
        }
    }

    // The training matrix reads the list's columns, in its order.
    let rows = store.feature_rows(loaded.run_id).await.unwrap();
    assert_eq!(rows.columns, NUMERIC_FEATURES);

    // Every feature the training transforms name is on the list.
    let listed = sorted(NUMERIC_FEATURES.iter().copied());
    for name in crmbet_ml::LOG_FEATURES
        .iter()
        .chain(crmbet_ml::SIGNED_LOG_FEATURES)
    {
        assert!(
            listed.contains(*name),
            "crmbet-ml transforms {name}, which is not on the feature list"
        );
    }
}

#[tokio::test]
async fn every_place_that_names_the_features_follows_the_one_list_on_sqlite() {
    let folder = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        folder.path().join("crmbet.db").display()
    );
    check_feature_list_on(&url).await;
}

#[tokio::test]
async fn every_place_that_names_the_features_follows_the_one_list_on_postgres() {
    let database = ThrowawayPostgres::create("crmbet_features").await;
    check_feature_list_on(&database.url).await;
}

#[test]
fn the_list_names_each_feature_once() {
    let listed = sorted(NUMERIC_FEATURES.iter().copied());
    assert_eq!(listed.len(), NUMERIC_FEATURES.len());
    assert!(!listed.contains(FAVOURITE_GAME));
}
