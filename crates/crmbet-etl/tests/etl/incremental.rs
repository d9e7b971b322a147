//! An incremental run reads only the new object and ends with the features of a full
//! recompute; a run with nothing new changes nothing.

use chrono::{DateTime, Utc};
use crmbet_etl::{EtlMode, EtlProgress, PlayerFeatures, Watermark};

use crate::support::{
    DATABASE_ID, Row, csv_text, parquet_bytes, row, run, run_for_database, write_object,
};

fn assert_same_features(incremental: &[PlayerFeatures], full: &[PlayerFeatures]) {
    assert_eq!(incremental.len(), full.len(), "players");
    for (left, right) in incremental.iter().zip(full) {
        let left_json = serde_json::to_value(left).unwrap();
        let right_json = serde_json::to_value(right).unwrap();
        for (column, left_value) in left_json.as_object().unwrap() {
            let right_value = &right_json[column];
            match (left_value.as_f64(), right_value.as_f64()) {
                // Sums over differently split files may differ in the last bits.
                (Some(left_number), Some(right_number)) => assert!(
                    (left_number - right_number).abs() <= 1e-12 * left_number.abs().max(1.0),
                    "{} {column}: incremental {left_number}, full {right_number}",
                    left.user_id
                ),
                _ => assert_eq!(left_value, right_value, "{} {column}", left.user_id),
            }
        }
    }
}

fn keys_read(progress: &[EtlProgress]) -> Vec<String> {
    progress
        .iter()
        .filter_map(|report| match report {
            EtlProgress::ObjectRead { key, .. } => Some(key.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_object_is_read_alone_and_matches_a_full_recompute() {
    let folder = tempfile::tempdir().unwrap();
    let lake = folder.path().join("lake");
    let warehouse = folder.path().join("warehouse");
    let now: DateTime<Utc> = "2026-06-20T00:00:00Z".parse().unwrap();
    let first = [
        Row {
            session_id: Some("s1"),
            ..row("t1", "p1", "2026-06-01T10:00:00Z", "deposit", 100.0)
        },
        Row {
            session_id: Some("s1"),
            ..row("t2", "p1", "2026-06-01T10:05:00Z", "bet", 10.0)
        },
        Row {
            session_id: Some("s2"),
            ..row("t3", "p2", "2026-06-01T23:00:00Z", "bet", 4.0)
        },
    ];
    write_object(
        &lake,
        "transactions/dt=2026-06-01/part-0.parquet",
        &parquet_bytes(&first),
    );
    let second = [
        // p2's session runs past midnight into the next day's object.
        Row {
            session_id: Some("s2"),
            ..row("t4", "p2", "2026-06-02T00:10:00Z", "win", 8.0)
        },
        Row {
            session_id: Some("s3"),
            ..row("t5", "p1", "2026-06-02T12:00:00Z", "bet", 30.0)
        },
    ];
    write_object(
        &lake,
        "transactions/dt=2026-06-02/part-0.csv",
        csv_text(&second).as_bytes(),
    );

    let (first_run, _) = run(
        &lake,
        &warehouse,
        EtlMode::Incremental(Watermark::new()),
        now,
    )
    .await;
    assert_eq!((first_run.objects_read, first_run.rows_loaded), (2, 5));
    let watermark: Watermark = first_run.loaded_objects.iter().cloned().collect();

    let third = [
        // A re-delivery of a row loaded in the first run, and new rows of old and new players.
        Row {
            session_id: Some("s1"),
            ..row("t2", "p1", "2026-06-01T10:05:00Z", "bet", 10.0)
        },
        Row {
            session_id: Some("s2"),
            ..row("t6", "p2", "2026-06-03T00:20:00Z", "bet", 6.0)
        },
        Row {
            session_id: Some("s4"),
            ..row("t7", "p3", "2026-06-03T09:00:00Z", "deposit", 40.0)
        },
        Row {
            session_id: Some("s4"),
            ..row("t8", "p3", "2026-06-03T09:10:00Z", "withdrawal", 15.0)
        },
    ];
    let new_key = "transactions/dt=2026-06-03/part-0.parquet";
    write_object(&lake, new_key, &parquet_bytes(&third));

    let (second_run, progress) = run(
        &lake,
        &warehouse,
        EtlMode::Incremental(watermark.clone()),
        now,
    )
    .await;
    assert_eq!(keys_read(&progress), [new_key]);
    assert_eq!(second_run.objects_already_loaded, 2);
    assert_eq!(second_run.objects_read, 1);
    assert_eq!(second_run.rows_read, 4);
    assert_eq!(second_run.duplicates, 1, "t2 was loaded by the first run");
    assert_eq!(second_run.rows_loaded, 3);
    assert_eq!(second_run.players, 3);

    let (full_run, _) = run(&lake, &folder.path().join("full"), EtlMode::Full, now).await;
    assert_eq!(full_run.objects_read, 3);
    assert_eq!(full_run.duplicates, 1);
    assert_same_features(&second_run.features, &full_run.features);
    let p2 = second_run
        .features
        .iter()
        .find(|player| player.user_id == "p2")
        .unwrap();
    assert_eq!(
        p2.sessions, 1,
        "one session across two objects and two runs"
    );
    assert_eq!(p2.active_days, 3);

    let mut watermark = watermark;
    watermark.extend(second_run.loaded_objects.iter().cloned());
    let (idle_run, progress) = run(&lake, &warehouse, EtlMode::Incremental(watermark), now).await;
    assert!(keys_read(&progress).is_empty());
    assert_eq!((idle_run.objects_read, idle_run.rows_loaded), (0, 0));
    assert_same_features(&idle_run.features, &full_run.features);
}

/// Two objects of three players, one of whose rows repeats an id.
fn write_two_objects(lake: &std::path::Path) {
    let first = [
        row("t1", "p1", "2026-06-01T10:00:00Z", "deposit", 100.0),
        row("t2", "p1", "2026-06-01T10:05:00Z", "bet", 10.0),
        row("t3", "p2", "2026-06-01T23:00:00Z", "bet", 4.0),
    ];
    write_object(
        lake,
        "transactions/dt=2026-06-01/part-0.parquet",
        &parquet_bytes(&first),
    );
    let second = [
        row("t4", "p3", "2026-06-02T00:10:00Z", "deposit", 8.0),
        row("t2", "p1", "2026-06-01T10:05:00Z", "bet", 10.0),
    ];
    write_object(
        lake,
        "transactions/dt=2026-06-02/part-0.csv",
        csv_text(&second).as_bytes(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warehouse_of_another_database_is_rebuilt_before_it_supplies_a_row() {
    let folder = tempfile::tempdir().unwrap();
    let lake = folder.path().join("lake");
    let warehouse = folder.path().join("warehouse");
    let now: DateTime<Utc> = "2026-06-20T00:00:00Z".parse().unwrap();
    write_two_objects(&lake);

    let incremental = || EtlMode::Incremental(Watermark::new());
    let (into_a, progress_a) =
        run_for_database("database-a", &lake, &warehouse, incremental(), now).await;
    assert_eq!((into_a.rows_loaded, into_a.duplicates), (4, 1));
    assert!(!into_a.full_refresh, "a new warehouse is simply bound");
    assert!(
        !progress_a
            .iter()
            .any(|report| matches!(report, EtlProgress::WarehouseRebuilt { .. }))
    );

    // Database B is new: its watermark is empty, and the warehouse holds A's rows.
    let (into_b, progress_b) =
        run_for_database("database-b", &lake, &warehouse, incremental(), now).await;
    assert!(
        progress_b.contains(&EtlProgress::WarehouseRebuilt {
            previous_database_id: Some("database-a".to_owned())
        }),
        "{progress_b:?}"
    );
    assert!(into_b.full_refresh);
    assert_eq!(
        (into_b.objects_read, into_b.rows_loaded, into_b.duplicates),
        (2, 4, 1),
        "B loads every row, and only the lake's own repeat is a duplicate"
    );
    assert_same_features(&into_b.features, &into_a.features);

    // Back to A with A's watermark: the warehouse is B's now, so A gets a full rebuild too
    // instead of features over rows it never loaded.
    let watermark: Watermark = into_a.loaded_objects.iter().cloned().collect();
    let (again_a, _) = run_for_database(
        "database-a",
        &lake,
        &warehouse,
        EtlMode::Incremental(watermark),
        now,
    )
    .await;
    assert!(again_a.full_refresh);
    assert_eq!((again_a.objects_read, again_a.rows_loaded), (2, 4));
    assert_same_features(&again_a.features, &into_a.features);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warehouse_that_names_no_database_is_not_trusted() {
    let folder = tempfile::tempdir().unwrap();
    let lake = folder.path().join("lake");
    let warehouse = folder.path().join("warehouse");
    let now: DateTime<Utc> = "2026-06-20T00:00:00Z".parse().unwrap();
    write_two_objects(&lake);
    let (first, _) = run(&lake, &warehouse, EtlMode::Full, now).await;
    assert_eq!(first.rows_loaded, 4);

    // A warehouse written before warehouses were bound holds rows and no id.
    std::fs::remove_file(warehouse.join("database-id")).unwrap();
    let watermark: Watermark = first.loaded_objects.iter().cloned().collect();
    let (second, progress) = run(
        &lake,
        &warehouse,
        EtlMode::Incremental(watermark.clone()),
        now,
    )
    .await;
    assert!(progress.contains(&EtlProgress::WarehouseRebuilt {
        previous_database_id: None
    }));
    assert_eq!((second.objects_read, second.rows_loaded), (2, 4));

    // Bound again: the next run with the watermark trusts it and reads nothing.
    let (third, _) = run(&lake, &warehouse, EtlMode::Incremental(watermark), now).await;
    assert!(!third.full_refresh);
    assert_eq!((third.objects_read, third.players), (0, 3));
    assert_eq!(
        std::fs::read_to_string(warehouse.join("database-id")).unwrap(),
        DATABASE_ID
    );
}
