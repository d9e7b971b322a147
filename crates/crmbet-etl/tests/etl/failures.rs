//! Objects that cannot be read are reported with their reason; the rest of the lake loads.

use std::io::Write;

use chrono::{DateTime, Utc};
use crmbet_etl::{EtlMode, EtlProgress};
use flate2::Compression;
use flate2::write::GzEncoder;

use crate::support::{Row, csv_text, parquet_bytes, row, run, write_object};

fn gzip(text: &str) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(text.as_bytes()).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_objects_are_reported_and_the_rest_loads() {
    let folder = tempfile::tempdir().unwrap();
    let lake = folder.path().join("lake");
    // Readable: Parquet, gzip CSV and NDJSON (with an extra column and a number-typed amount).
    let parquet_rows = [row("a1", "p1", "2026-06-01T10:00:00Z", "deposit", 50.0)];
    write_object(
        &lake,
        "transactions/dt=2026-06-01/good.parquet",
        &parquet_bytes(&parquet_rows),
    );
    let csv_rows = [
        Row {
            session_id: Some("s2"),
            ..row("b1", "p2", "2026-06-02T10:00:00Z", "deposit", 20.0)
        },
        Row {
            session_id: Some("s2"),
            ..row("b2", "p2", "2026-06-02T10:05:00Z", "bet", 5.0)
        },
    ];
    write_object(
        &lake,
        "transactions/dt=2026-06-02/good.csv.gz",
        &gzip(&csv_text(&csv_rows)),
    );
    let ndjson = concat!(
        r#"{"transaction_id":"c1","user_id":"p3","occurred_at":"2026-06-03T10:00:00+02:00","type":"bonus","amount":7.5,"currency":"EUR","extra":1}"#,
        "\n",
        r#"{"transaction_id":"c2","user_id":"p3","occurred_at":"not a time","type":"deposit","amount":10,"currency":"EUR"}"#,
        "\n",
    );
    write_object(
        &lake,
        "transactions/dt=2026-06-03/good.ndjson",
        ndjson.as_bytes(),
    );
    // Unreadable, each for its own reason.
    write_object(
        &lake,
        "transactions/dt=2026-06-04/corrupt.parquet",
        b"PAR1 this is not parquet at all PAR1",
    );
    write_object(&lake, "transactions/dt=2026-06-04/empty.csv", b"");
    write_object(
        &lake,
        "transactions/dt=2026-06-04/no_amount.csv",
        b"transaction_id,user_id,occurred_at,type,currency\nd1,p4,2026-06-04T10:00:00Z,deposit,EUR\n",
    );
    write_object(&lake, "transactions/dt=2026-06-04/notes.txt", b"hello");
    write_object(
        &lake,
        "transactions/dt=2026-06-04/csv_named.parquet",
        csv_text(&csv_rows).as_bytes(),
    );
    let now: DateTime<Utc> = "2026-06-10T00:00:00Z".parse().unwrap();

    let (outcome, progress) =
        run(&lake, &folder.path().join("warehouse"), EtlMode::Full, now).await;

    let failures: Vec<(&str, &str)> = outcome
        .failed_objects
        .iter()
        .map(|failed| (failed.fingerprint.key.as_str(), failed.reason.as_str()))
        .collect();
    let expected = [
        (
            "transactions/dt=2026-06-04/corrupt.parquet",
            "not a readable parquet file",
        ),
        (
            "transactions/dt=2026-06-04/csv_named.parquet",
            "not a readable parquet file",
        ),
        ("transactions/dt=2026-06-04/empty.csv", "empty file"),
        (
            "transactions/dt=2026-06-04/no_amount.csv",
            "missing required column amount",
        ),
        ("transactions/dt=2026-06-04/notes.txt", "unknown extension"),
    ];
    assert_eq!(failures.len(), expected.len(), "{failures:?}");
    for ((key, reason), (expected_key, expected_reason)) in failures.iter().zip(expected) {
        assert_eq!(*key, expected_key);
        assert!(reason.starts_with(expected_reason), "{key}: {reason}");
    }
    assert_eq!(outcome.objects_read, 3);
    assert_eq!(outcome.rows_read, 5);
    assert_eq!(outcome.rows_quarantined, 1, "c2 has no valid time");
    assert_eq!(
        outcome.quarantined[0].rule,
        crmbet_etl::Rule::OccurredAtInvalid
    );
    assert!(
        outcome.quarantined[0]
            .row_json
            .contains(r#""occurred_at":"not a time""#)
    );
    assert_eq!(outcome.rows_loaded, 4);
    let players: Vec<&str> = outcome
        .features
        .iter()
        .map(|player| player.user_id.as_str())
        .collect();
    assert_eq!(players, ["p1", "p2", "p3"]);
    let p3 = &outcome.features[2];
    assert_eq!(
        p3.first_seen_at,
        "2026-06-03T08:00:00Z".parse::<DateTime<Utc>>().unwrap(),
        "offset converted to UTC"
    );
    assert_eq!(outcome.loaded_objects.len(), 3);
    assert!(
        outcome.quality.completeness < 1.0,
        "failed objects lower completeness"
    );
    let failed_reports = progress
        .iter()
        .filter(|report| matches!(report, EtlProgress::ObjectFailed { .. }))
        .count();
    assert_eq!(failed_reports, expected.len());
}
