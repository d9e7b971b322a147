//! `crmbet etl` end to end on both engines: a small lake with a bad object goes in, the
//! features come out in the database, and the exit code says some objects failed.

use std::path::Path;
use std::process::Command;

use crmbet_core::PlayerId;
use crmbet_store::Store;
use crmbet_store::throwaway_postgres::ThrowawayPostgres;

const HEADER: &str = "transaction_id,user_id,occurred_at,type,amount,currency,game_type,game_id,session_id,channel,country\n";

fn write_lake(root: &Path) {
    let day = root.join("transactions/dt=2026-06-27");
    std::fs::create_dir_all(&day).unwrap();
    let rows = [
        "t1,alice,2026-06-27T01:00:00Z,deposit,100,EUR,,,s1,web,GB",
        "t2,alice,2026-06-27T01:05:00Z,bet,10,EUR,slots,g1,s1,web,GB",
        "t3,alice,2026-06-27T01:06:00Z,win,4,EUR,slots,g1,s1,web,GB",
        "t4,bob,2026-06-27T14:00:00Z,deposit,50,EUR,,,s2,app,SE",
        "t5,bob,2026-06-27T14:10:00Z,bet,5,EUR,sports,g2,s2,app,SE",
        "t6,bob,2026-06-27T14:20:00Z,withdrawal,20,EUR,,,s2,app,SE",
        "t7,bob,2026-06-27T14:30:00Z,bet,-5,EUR,sports,g2,s2,app,SE",
    ];
    std::fs::write(
        day.join("part-0.csv"),
        format!("{HEADER}{}\n", rows.join("\n")),
    )
    .unwrap();
    std::fs::write(day.join("notes.txt"), "not a lake file").unwrap();
}

/// `crmbet etl --lake <lake> --json` into `database_url`: the exit code and the summary.
pub(crate) fn run_etl(
    database_url: &str,
    lake: &Path,
    warehouse: &Path,
) -> (i32, serde_json::Value) {
    let output = Command::new(env!("CARGO_BIN_EXE_crmbet"))
        .args(["etl", "--lake"])
        .arg(lake)
        .arg("--json")
        .env("DATABASE_URL", database_url)
        .env("CRMBET_WAREHOUSE_DIR", warehouse)
        .env("CRMBET_LOG", "warn")
        .output()
        .expect("running crmbet etl");
    let summary = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "crmbet etl printed no JSON ({error}): {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code().unwrap_or(-1), summary)
}

async fn check_etl_into(database_url: &str) {
    let directory = tempfile::tempdir().unwrap();
    let lake = directory.path().join("lake");
    write_lake(&lake);
    let warehouse = directory.path().join("warehouse");

    let (code, summary) = run_etl(database_url, &lake, &warehouse);
    assert_eq!(code, 2, "an unreadable object means exit code 2: {summary}");
    assert_eq!(summary["objects_read"], 1, "{summary}");
    assert_eq!(summary["objects_failed"], 1, "{summary}");
    assert_eq!(summary["rows_read"], 7);
    assert_eq!(summary["rows_loaded"], 6);
    assert_eq!(summary["rows_quarantined"], 1);
    assert_eq!(summary["players"], 2);
    for field in ["run_id", "duplicates", "quality_score", "grade", "seconds"] {
        assert!(!summary[field].is_null(), "{field} missing from {summary}");
    }

    let store = Store::connect(database_url).await.unwrap();
    let alice = PlayerId::parse("user_id", "alice").unwrap();
    let behavior = store.player_behavior(&alice).await.unwrap();
    assert_eq!(behavior.features.deposit_sum, 100.0);
    assert_eq!(behavior.features.ngr, 6.0);
    assert_eq!(behavior.features.night_share, 1.0);
    assert_eq!(behavior.player.country.as_deref(), Some("GB"));
    let counts = store.row_counts().await.unwrap();
    assert_eq!(counts["quarantine"], 1);

    // The second run finds nothing new: the watermark holds the object it loaded.
    let (code, summary) = run_etl(database_url, &lake, &warehouse);
    assert_eq!(
        code, 2,
        "the unreadable object is still reported: {summary}"
    );
    assert_eq!(summary["objects_read"], 0, "{summary}");
    assert_eq!(summary["players"], 2);
}

#[tokio::test]
async fn etl_loads_features_into_sqlite() {
    let directory = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        directory.path().join("crmbet.db").display()
    );
    check_etl_into(&url).await;
}

#[tokio::test]
async fn etl_loads_features_into_postgres() {
    let database = ThrowawayPostgres::create("crmbet_etl").await;
    check_etl_into(&database.url).await;
}

/// Every player's stored features of the latest run, as comparable text.
async fn stored_features(database_url: &str) -> Vec<String> {
    let store = Store::connect(database_url).await.unwrap();
    let run = store.latest_etl_run_with_features().await.unwrap().unwrap();
    let rows = store.feature_rows(run).await.unwrap();
    rows.player_ids
        .iter()
        .zip(rows.values.chunks(rows.columns.len()))
        .map(|(player, values)| format!("{player}: {values:?}"))
        .collect()
}

#[tokio::test]
async fn a_new_database_gets_every_row_from_a_warehouse_another_database_filled() {
    let directory = tempfile::tempdir().unwrap();
    let lake = directory.path().join("lake");
    write_lake(&lake);
    // One working folder, hence one warehouse, for both databases.
    let warehouse = directory.path().join("warehouse");
    let database = |name: &str| {
        format!(
            "sqlite://{}?mode=rwc",
            directory.path().join(name).display()
        )
    };

    let (_, into_a) = run_etl(&database("a.db"), &lake, &warehouse);
    assert_eq!(into_a["rows_loaded"], 6, "{into_a}");
    assert_eq!(into_a["full_refresh"], false, "{into_a}");

    let (_, into_b) = run_etl(&database("b.db"), &lake, &warehouse);
    assert_eq!(
        into_b["full_refresh"], true,
        "B rebuilds A's warehouse: {into_b}"
    );
    for field in [
        "rows_read",
        "rows_loaded",
        "rows_quarantined",
        "duplicates",
        "players",
    ] {
        assert_eq!(
            into_b[field], into_a[field],
            "{field}: A {into_a}, B {into_b}"
        );
    }
    assert_eq!(into_b["grade"], into_a["grade"]);
    assert_eq!(
        stored_features(&database("b.db")).await,
        stored_features(&database("a.db")).await
    );

    // A again, with its watermark: the warehouse is B's now, so A is rebuilt rather than
    // told its one object is loaded with features over B's rows.
    let (_, again_a) = run_etl(&database("a.db"), &lake, &warehouse);
    assert_eq!(again_a["full_refresh"], true, "{again_a}");
    assert_eq!(again_a["rows_loaded"], 6, "{again_a}");
    assert_eq!(
        stored_features(&database("a.db")).await,
        stored_features(&database("b.db")).await
    );
}
