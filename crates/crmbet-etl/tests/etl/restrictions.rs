//! The players' restrictions snapshot under `<lake>/players/`: formats, bad rows, repeats,
//! unreadable objects, and that it is read whole on every run.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use crmbet_etl::{
    EtlMode, LakeRestrictions, LakeSource, RestrictionRule, Watermark, read_restrictions_snapshot,
};
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::parquet::arrow::ArrowWriter;
use flate2::Compression;
use flate2::write::GzEncoder;

use crate::support::{parquet_bytes, row, run, write_object};

fn flags(user_id: &str, self_excluded: bool, blocked: bool, opt_out: bool) -> LakeRestrictions {
    LakeRestrictions {
        user_id: user_id.to_owned(),
        self_excluded,
        blocked,
        marketing_opt_out: opt_out,
        updated_at: None,
    }
}

fn without_times(players: &[LakeRestrictions]) -> Vec<LakeRestrictions> {
    players
        .iter()
        .map(|player| LakeRestrictions {
            updated_at: None,
            ..player.clone()
        })
        .collect()
}

async fn snapshot_of(lake: &Path) -> crmbet_etl::RestrictionsSnapshot {
    let scratch = tempfile::tempdir().unwrap();
    read_restrictions_snapshot(&LakeSource::local(lake), scratch.path())
        .await
        .unwrap()
}

fn gzip(text: &str) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(text.as_bytes()).unwrap();
    encoder.finish().unwrap()
}

/// A Parquet snapshot with typed columns: booleans, an integer flag and a timestamp.
fn players_parquet() -> Vec<u8> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("user_id", DataType::Utf8, true),
        Field::new("self_excluded", DataType::Boolean, true),
        Field::new("blocked", DataType::Int64, true),
        Field::new(
            "updated_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("tier", DataType::Utf8, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![
            Some("pq1"),
            Some("pq2"),
            Some("pq3"),
        ])),
        Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
        Arc::new(Int64Array::from(vec![Some(0), Some(1), Some(7)])),
        Arc::new(
            TimestampMicrosecondArray::from(vec![Some(1_767_225_600_000_000), None, None])
                .with_timezone("UTC"),
        ),
        Arc::new(StringArray::from(vec![Some("gold"), None, None])),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    let mut bytes = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut bytes, schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_ndjson_and_parquet_snapshots_are_read_with_their_flags() {
    let folder = tempfile::tempdir().unwrap();
    let lake = folder.path();
    write_object(
        lake,
        "players/a.csv",
        b"user_id,self_excluded,blocked,marketing_opt_out,updated_at,notes\n\
          c1,TRUE,no,0,2026-01-01T00:00:00Z,x\n\
          c2,false,Yes,1,,\n\
          c3,,,,,\n",
    );
    write_object(
        lake,
        "players/b.ndjson.gz",
        &gzip(concat!(
            r#"{"user_id":"n1","self_excluded":true}"#,
            "\n",
            r#"{"user_id":"n2","blocked":"YES","marketing_opt_out":false}"#,
            "\n",
        )),
    );
    write_object(lake, "players/c.parquet", &players_parquet());
    // Hidden files are skipped, like under transactions/.
    write_object(lake, "players/_SUCCESS", b"");
    write_object(
        lake,
        "players/.draft.csv",
        b"user_id,blocked\nhidden,true\n",
    );

    let snapshot = snapshot_of(lake).await;

    assert!(
        snapshot.failed_objects.is_empty(),
        "{:?}",
        snapshot.failed_objects
    );
    assert_eq!(snapshot.objects_listed, 3);
    assert_eq!(snapshot.objects_read, 3);
    assert_eq!(snapshot.rows_read, 8);
    let rejected: Vec<(RestrictionRule, &str, u64, Option<&str>)> = snapshot
        .rejected
        .iter()
        .map(|row| {
            (
                row.rule,
                row.source_object.as_str(),
                row.row_number,
                row.value.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        rejected,
        [(
            RestrictionRule::BlockedInvalid,
            "players/c.parquet",
            3,
            Some("7")
        )]
    );
    assert_eq!(
        without_times(&snapshot.players),
        [
            flags("c1", true, false, false),
            flags("c2", false, true, true),
            flags("c3", false, false, false),
            flags("n1", true, false, false),
            flags("n2", false, true, false),
            flags("pq1", true, false, false),
            flags("pq2", false, true, false),
        ]
    );
    let expected_time: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
    let times: Vec<(&str, Option<DateTime<Utc>>)> = snapshot
        .players
        .iter()
        .filter(|player| player.updated_at.is_some())
        .map(|player| (player.user_id.as_str(), player.updated_at))
        .collect();
    assert_eq!(
        times,
        [("c1", Some(expected_time)), ("pq1", Some(expected_time))]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rows_are_rejected_by_rule_and_the_rest_is_kept() {
    let folder = tempfile::tempdir().unwrap();
    let lake = folder.path();
    write_object(
        lake,
        "players/snapshot.csv",
        b"user_id,self_excluded,blocked,marketing_opt_out,updated_at\n\
          ok1,1,0,0,\n\
          ,1,0,0,\n\
          \"  \",1,0,0,\n\
          bad_self,maybe,0,0,\n\
          bad_blocked,0,2,0,\n\
          bad_opt_out,0,0,nope,\n\
          bad_time,1,0,0,yesterday\n\
          ok2,no,no,yes,2026-02-01T10:00:00+02:00\n",
    );

    let snapshot = snapshot_of(lake).await;

    assert_eq!(snapshot.rows_read, 8);
    assert_eq!(snapshot.rows_rejected(), 6);
    let by_rule: Vec<(&str, u64)> = snapshot.rejected_by_rule().into_iter().collect();
    assert_eq!(
        by_rule,
        [
            ("blocked_invalid", 1),
            ("marketing_opt_out_invalid", 1),
            ("self_excluded_invalid", 1),
            ("updated_at_invalid", 1),
            ("user_id_missing", 2),
        ]
    );
    let bad_self = snapshot
        .rejected
        .iter()
        .find(|row| row.rule == RestrictionRule::SelfExcludedInvalid)
        .unwrap();
    assert_eq!(bad_self.row_number, 4);
    assert_eq!(bad_self.user_id.as_deref(), Some("bad_self"));
    assert_eq!(bad_self.value.as_deref(), Some("maybe"));
    assert_eq!(
        without_times(&snapshot.players),
        [
            flags("ok1", true, false, false),
            flags("ok2", false, false, true)
        ]
    );
    let ok2_time: DateTime<Utc> = "2026-02-01T08:00:00Z".parse().unwrap();
    assert_eq!(snapshot.players[1].updated_at, Some(ok2_time));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_row_of_a_player_by_key_and_row_order_wins() {
    let folder = tempfile::tempdir().unwrap();
    let lake = folder.path();
    write_object(
        lake,
        "players/dt=2026-01-01/part-0.csv",
        b"user_id,self_excluded\nsame,true\nsame,false\nother,true\n",
    );
    // A later key wins over an earlier one, whatever the format.
    write_object(
        lake,
        "players/dt=2026-01-02/part-0.ndjson",
        br#"{"user_id":"other","self_excluded":false,"blocked":true}"#,
    );

    let snapshot = snapshot_of(lake).await;

    assert_eq!(snapshot.duplicates, 2);
    assert_eq!(
        without_times(&snapshot.players),
        [
            flags("other", false, true, false),
            flags("same", false, false, false)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_players_objects_fail_alone_and_contribute_no_rows() {
    let folder = tempfile::tempdir().unwrap();
    let lake = folder.path().join("lake");
    write_object(
        &lake,
        "transactions/t.parquet",
        &parquet_bytes(&[row("t1", "p1", "2026-06-01T10:00:00Z", "deposit", 5.0)]),
    );
    write_object(&lake, "players/a_good.csv", b"user_id,blocked\np1,true\n");
    write_object(&lake, "players/b_no_user.csv", b"player,blocked\np2,true\n");
    write_object(&lake, "players/c_corrupt.parquet", b"PAR1 nonsense PAR1");
    write_object(&lake, "players/d_notes.txt", b"hello");
    let now: DateTime<Utc> = "2026-06-10T00:00:00Z".parse().unwrap();

    let (outcome, _) = run(&lake, &folder.path().join("warehouse"), EtlMode::Full, now).await;

    let failed: Vec<&str> = outcome
        .failed_objects
        .iter()
        .map(|failed| failed.fingerprint.key.as_str())
        .collect();
    assert_eq!(
        failed,
        [
            "players/b_no_user.csv",
            "players/c_corrupt.parquet",
            "players/d_notes.txt"
        ]
    );
    assert!(
        outcome.failed_objects[0]
            .reason
            .contains("missing required column user_id"),
        "{:?}",
        outcome.failed_objects[0]
    );
    // The transactions are untouched by the snapshot's failures.
    assert_eq!(outcome.objects_read, 1);
    assert_eq!(outcome.quality.completeness, 1.0);
    assert_eq!(outcome.restrictions.objects_read, 1);
    assert_eq!(
        without_times(&outcome.restrictions.players),
        [flags("p1", false, true, false)]
    );
    // Players objects never enter the transactions' watermark.
    assert_eq!(outcome.loaded_objects.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_snapshot_is_read_whole_on_every_incremental_run() {
    let folder = tempfile::tempdir().unwrap();
    let lake = folder.path().join("lake");
    let warehouse = folder.path().join("warehouse");
    write_object(
        &lake,
        "transactions/t.parquet",
        &parquet_bytes(&[row("t1", "p1", "2026-06-01T10:00:00Z", "deposit", 5.0)]),
    );
    write_object(&lake, "players/snapshot.csv", b"user_id,blocked\np1,true\n");
    let now: DateTime<Utc> = "2026-06-10T00:00:00Z".parse().unwrap();
    let (first, _) = run(&lake, &warehouse, EtlMode::Full, now).await;
    let watermark: Watermark = first.loaded_objects.iter().cloned().collect();

    let (second, _) = run(&lake, &warehouse, EtlMode::Incremental(watermark), now).await;

    assert_eq!(second.objects_read, 0, "no new transactions");
    assert_eq!(second.restrictions.objects_read, 1);
    assert_eq!(
        without_times(&second.restrictions.players),
        [flags("p1", false, true, false)]
    );
}
