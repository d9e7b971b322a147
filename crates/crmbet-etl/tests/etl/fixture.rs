//! A six-player lake written by hand (one Parquet and one CSV object), with every expected
//! feature computed by hand in the comments.

use chrono::{DateTime, Utc};
use crmbet_etl::{
    EtlMode, PlayerFeatures, Rule, Warehouse, largest_feature_difference, warehouse_features,
};

use crate::support::{Row, csv_text, parquet_bytes, row, run, write_object};

/// 2026-06-06 is a Saturday, 2026-06-08 a Monday, 2026-06-10 a Wednesday.
fn parquet_rows() -> Vec<Row> {
    vec![
        // p1 on Saturday night, session s1.
        Row {
            session_id: Some("s1"),
            ..row("t01", "p1", "2026-06-06T01:00:00Z", "deposit", 100.0)
        },
        Row {
            session_id: Some("s1"),
            ..row("t02", "p1", "2026-06-06T01:10:00Z", "bet", 10.0)
        },
        Row {
            session_id: Some("s1"),
            ..row("t03", "p1", "2026-06-06T01:20:00Z", "win", 30.0)
        },
        Row {
            session_id: Some("s1"),
            ..row("t04", "p1", "2026-06-06T01:30:00Z", "bet", 20.0)
        },
        Row {
            session_id: Some("s1"),
            ..row("t05", "p1", "2026-06-06T01:40:00Z", "withdrawal", 25.0)
        },
        // p2 on Saturday afternoon, p3 on Saturday evening.
        Row {
            session_id: Some("s2"),
            ..row("t06", "p2", "2026-06-06T14:00:00Z", "deposit", 50.0)
        },
        Row {
            session_id: Some("s2"),
            ..row("t07", "p2", "2026-06-06T14:05:00Z", "bet", 5.0)
        },
        Row {
            session_id: Some("s3"),
            ..row("t08", "p3", "2026-06-06T20:00:00Z", "deposit", 10.0)
        },
    ]
}

fn csv_rows() -> Vec<Row> {
    vec![
        Row {
            session_id: Some("s4"),
            ..row("t09", "p1", "2026-06-08T10:00:00Z", "bet", 30.0)
        },
        // An exact re-delivery of a Parquet row: the earlier object wins.
        Row {
            session_id: Some("s1"),
            ..row("t02", "p1", "2026-06-06T01:10:00Z", "bet", 10.0)
        },
        // p4 on Monday night, mostly from Finland.
        Row {
            session_id: Some("s5"),
            country: Some("FI"),
            ..row("t10", "p4", "2026-06-08T03:00:00Z", "deposit", 200.0)
        },
        Row {
            session_id: Some("s5"),
            country: Some("SE"),
            ..row("t11", "p4", "2026-06-08T03:30:00Z", "bet", 50.0)
        },
        Row {
            session_id: Some("s5"),
            country: Some("FI"),
            ..row("t12", "p4", "2026-06-08T04:00:00Z", "withdrawal", 100.0)
        },
        // p5: a bonus (no session) and a deposit.
        row("t13", "p5", "2026-06-08T12:00:00Z", "bonus", 10.0),
        Row {
            session_id: Some("s6"),
            ..row("t14", "p5", "2026-06-08T12:10:00Z", "deposit", 30.0)
        },
        // p6: the lake's last event, then two broken rows.
        Row {
            session_id: Some("s7"),
            ..row("t15", "p6", "2026-06-10T09:00:00Z", "bet", 1.0)
        },
        row("t16", "p6", "2026-06-10T09:30:00Z", "deposit", -5.0),
        Row {
            game_type: None,
            ..row("t17", "p6", "2026-06-10T09:40:00Z", "bet", 2.0)
        },
    ]
}

fn player<'a>(features: &'a [PlayerFeatures], user_id: &str) -> &'a PlayerFeatures {
    features
        .iter()
        .find(|player| player.user_id == user_id)
        .unwrap_or_else(|| panic!("no features for {user_id}"))
}

fn assert_close(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() < 1e-9,
        "{what}: got {actual}, expected {expected}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_computed_features_of_a_tiny_lake() {
    let folder = tempfile::tempdir().unwrap();
    let lake = folder.path().join("lake");
    write_object(
        &lake,
        "transactions/dt=2026-06-06/part-0.parquet",
        &parquet_bytes(&parquet_rows()),
    );
    write_object(
        &lake,
        "transactions/dt=2026-06-08/part-0.csv",
        csv_text(&csv_rows()).as_bytes(),
    );
    let now: DateTime<Utc> = "2026-06-10T10:00:00Z".parse().unwrap();

    let (outcome, _) = run(&lake, &folder.path().join("warehouse"), EtlMode::Full, now).await;

    assert!(
        outcome.failed_objects.is_empty(),
        "{:?}",
        outcome.failed_objects
    );
    assert_eq!(outcome.objects_read, 2);
    assert_eq!(outcome.rows_read, 18);
    assert_eq!(outcome.rows_quarantined, 2);
    assert_eq!(outcome.duplicates, 1);
    assert_eq!(outcome.rows_loaded, 15);
    assert_eq!(outcome.players, 6);
    let rules: Vec<(Rule, &str)> = outcome
        .quarantined
        .iter()
        .map(|row| (row.rule, row.source_object.as_str()))
        .collect();
    let csv_key = "transactions/dt=2026-06-08/part-0.csv";
    assert_eq!(
        rules,
        [
            (Rule::AmountInvalid, csv_key),
            (Rule::GameTypeMissing, csv_key)
        ]
    );
    let negative: serde_json::Value =
        serde_json::from_str(&outcome.quarantined[0].row_json).unwrap();
    assert_eq!(negative["transaction_id"], "t16");
    assert_eq!(negative["amount"], "-5", "text amounts stay as written");
    assert_eq!(negative["occurred_at"], "2026-06-10T09:30:00Z");

    let features = &outcome.features;
    let ids: Vec<&str> = features
        .iter()
        .map(|player| player.user_id.as_str())
        .collect();
    assert_eq!(ids, ["p1", "p2", "p3", "p4", "p5", "p6"]);

    // p1: 6 rows (t01-t05 Saturday 01:xx, t09 Monday 10:00).
    let p1 = player(features, "p1");
    assert_close(p1.night_share, 5.0 / 6.0, "p1 night share");
    assert_close(p1.weekend_share, 5.0 / 6.0, "p1 weekend share");
    assert_eq!(
        (p1.bet_count, p1.frequency, p1.sessions, p1.active_days),
        (3, 6, 2, 2)
    );
    assert_close(p1.total_staked, 60.0, "p1 staked");
    assert_close(p1.ngr, 30.0, "p1 ngr: bets 60 - wins 30");
    assert_close(p1.deposit_sum, 100.0, "p1 deposits");
    assert_close(
        p1.withdrawal_ratio,
        0.25,
        "p1 withdrawals 25 / deposits 100",
    );
    assert_close(p1.avg_ticket, 20.0, "p1 avg ticket");
    assert_close(p1.bet_std, 10.0, "p1 sample std of 10, 20, 30");
    assert_close(p1.bet_cv, 0.5, "p1 cv");
    assert_close(p1.bets_per_session, 1.5, "p1 bets per session");
    assert_eq!((p1.preferred_hour, p1.preferred_weekday), (1, 6));
    assert_eq!(p1.favourite_game.as_deref(), Some("slots"));
    assert_close(p1.share_slots, 1.0, "p1 slots share");
    // Reference: the lake's last event, p6's t15 at 2026-06-10T09:00.
    assert_close(
        p1.tenure_days,
        4.0 + 8.0 / 24.0,
        "p1 tenure from 06-06 01:00",
    );
    assert_close(
        p1.recency_days,
        1.0 + 23.0 / 24.0,
        "p1 recency from 06-08 10:00",
    );
    let p1_clv = 30.0 / 30.0 * 30.0 * 12.0 * (-(1.0 + 23.0 / 24.0) / 90.0_f64).exp();
    assert_close(
        p1.clv_estimate,
        p1_clv,
        "p1 clv: tenure below 30 days counts as 30",
    );
    assert_eq!(
        p1.first_seen_at,
        "2026-06-06T01:00:00Z".parse::<DateTime<Utc>>().unwrap()
    );
    assert_eq!(
        p1.last_active_at,
        "2026-06-08T10:00:00Z".parse::<DateTime<Utc>>().unwrap()
    );

    // p4: three rows on Monday between 03:00 and 04:00, two of three from FI.
    let p4 = player(features, "p4");
    assert_close(p4.night_share, 1.0, "p4 night share");
    assert_close(p4.weekend_share, 0.0, "p4 weekend share");
    assert_close(
        p4.withdrawal_ratio,
        0.5,
        "p4 withdrawals 100 / deposits 200",
    );
    assert_close(p4.ngr, 50.0, "p4 ngr");
    assert_eq!((p4.preferred_hour, p4.preferred_weekday), (3, 1));
    assert_eq!(p4.country.as_deref(), Some("FI"));

    let p2 = player(features, "p2");
    assert_close(p2.weekend_share, 1.0, "p2 weekend share");
    assert_close(p2.withdrawal_ratio, 0.0, "p2 without withdrawals");
    assert_close(p2.ngr, 5.0, "p2 ngr");
    let p5 = player(features, "p5");
    assert_close(
        p5.bonus_share,
        0.25,
        "p5 bonus 10 / (deposits 30 + bonus 10)",
    );
    assert_eq!(p5.sessions, 1, "the bonus has no session");
    assert_eq!(p5.favourite_game, None);
    let p6 = player(features, "p6");
    assert_eq!(p6.frequency, 1, "p6's broken rows are not counted");
    assert_close(p6.recency_days, 0.0, "p6 holds the last event");

    // ntile(5) over six players: tiles of 2, 1, 1, 1, 1.
    // Recency descending: p2 (3.79 d), p3 (3.54), p4 (2.21), p1 (1.96), p5 (1.87), p6 (0).
    // Frequency ascending: p3 (1), p6 (1), p2 (2), p5 (2), p4 (3), p1 (6).
    // Deposits ascending: p6 (0), p3 (10), p5 (30), p2 (50), p1 (100), p4 (200).
    let scores: Vec<(&str, i32, i32, i32)> = features
        .iter()
        .map(|player| {
            (
                player.user_id.as_str(),
                player.r_score,
                player.f_score,
                player.m_score,
            )
        })
        .collect();
    assert_eq!(
        scores,
        [
            ("p1", 3, 5, 4),
            ("p2", 1, 2, 3),
            ("p3", 1, 1, 1),
            ("p4", 2, 4, 5),
            ("p5", 4, 3, 2),
            ("p6", 5, 1, 1),
        ]
    );

    // The warehouse alone gives the run's features again (what `bench etl --ballista`
    // compares the distributed engine with).
    let again = warehouse_features(&Warehouse::new(folder.path().join("warehouse")))
        .await
        .unwrap();
    let difference = largest_feature_difference(features, &again).unwrap();
    assert!(difference <= 1e-9, "{difference}");
}
