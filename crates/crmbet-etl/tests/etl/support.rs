//! Helpers shared by the ETL tests: running the ETL, writing lake files, the peer's paths.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use crmbet_etl::{EtlMode, EtlOptions, EtlOutcome, EtlProgress, LakeSource, run_etl};
use datafusion::arrow::array::{
    ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::parquet::arrow::ArrowWriter;

/// The database id the tests' runs are stored under, unless a test names another.
pub const DATABASE_ID: &str = "test-database";

/// Runs the ETL on `lake` with `warehouse`, collecting progress reports.
pub async fn run(
    lake: &Path,
    warehouse: &Path,
    mode: EtlMode,
    now: DateTime<Utc>,
) -> (EtlOutcome, Vec<EtlProgress>) {
    run_for_database(DATABASE_ID, lake, warehouse, mode, now).await
}

/// Runs the ETL for the database `database_id`, collecting progress reports.
pub async fn run_for_database(
    database_id: &str,
    lake: &Path,
    warehouse: &Path,
    mode: EtlMode,
    now: DateTime<Utc>,
) -> (EtlOutcome, Vec<EtlProgress>) {
    let reports = std::sync::Mutex::new(Vec::new());
    let progress = |report: EtlProgress| reports.lock().unwrap().push(report);
    let options = EtlOptions::new(LakeSource::local(lake), warehouse, database_id)
        .with_mode(mode)
        .with_now(now);
    let outcome = run_etl(options, &progress).await.expect("etl run");
    (outcome, reports.into_inner().unwrap())
}

/// Writes `contents` to `lake/key`, creating folders.
pub fn write_object(lake: &Path, key: &str, contents: &[u8]) -> PathBuf {
    let path = lake.join(key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, contents).unwrap();
    path
}

/// One lake row with every contract column as text or absent; amount and time typed.
#[derive(Debug, Clone)]
pub struct Row {
    pub transaction_id: Option<&'static str>,
    pub user_id: Option<&'static str>,
    pub occurred_at: &'static str,
    pub kind: Option<&'static str>,
    pub amount: Option<f64>,
    pub currency: Option<&'static str>,
    pub game_type: Option<&'static str>,
    pub session_id: Option<&'static str>,
    pub country: Option<&'static str>,
}

/// A valid row of player `user` at RFC 3339 time `at`.
pub fn row(
    id: &'static str,
    user: &'static str,
    at: &'static str,
    kind: &'static str,
    amount: f64,
) -> Row {
    let game_type = matches!(kind, "bet" | "win" | "refund").then_some("slots");
    Row {
        transaction_id: Some(id),
        user_id: Some(user),
        occurred_at: at,
        kind: Some(kind),
        amount: Some(amount),
        currency: Some("EUR"),
        game_type,
        session_id: (kind != "bonus").then_some("s1"),
        country: Some("DE"),
    }
}

/// The rows as a Parquet file in the contract's types.
pub fn parquet_bytes(rows: &[Row]) -> Vec<u8> {
    let text = |values: Vec<Option<&str>>| -> ArrayRef { Arc::new(StringArray::from(values)) };
    let micros: Vec<i64> = rows
        .iter()
        .map(|row| {
            DateTime::parse_from_rfc3339(row.occurred_at)
                .unwrap()
                .timestamp_micros()
        })
        .collect();
    let timestamp_type = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let schema = Arc::new(Schema::new(vec![
        Field::new("transaction_id", DataType::Utf8, true),
        Field::new("user_id", DataType::Utf8, true),
        Field::new("occurred_at", timestamp_type, true),
        Field::new("type", DataType::Utf8, true),
        Field::new("amount", DataType::Float64, true),
        Field::new("currency", DataType::Utf8, true),
        Field::new("game_type", DataType::Utf8, true),
        Field::new("session_id", DataType::Utf8, true),
        Field::new("country", DataType::Utf8, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        text(rows.iter().map(|row| row.transaction_id).collect()),
        text(rows.iter().map(|row| row.user_id).collect()),
        Arc::new(TimestampMicrosecondArray::from(micros).with_timezone("UTC")),
        text(rows.iter().map(|row| row.kind).collect()),
        Arc::new(Float64Array::from(
            rows.iter().map(|row| row.amount).collect::<Vec<_>>(),
        )),
        text(rows.iter().map(|row| row.currency).collect()),
        text(rows.iter().map(|row| row.game_type).collect()),
        text(rows.iter().map(|row| row.session_id).collect()),
        text(rows.iter().map(|row| row.country).collect()),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    let mut bytes = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut bytes, schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    bytes
}

/// The rows as CSV text with a header, in the contract's column names.
pub fn csv_text(rows: &[Row]) -> String {
    let mut text = String::from(
        "transaction_id,user_id,occurred_at,type,amount,currency,game_type,session_id,country\n",
    );
    for row in rows {
        let amount = row.amount.map(|amount| amount.to_string());
        let fields = [
            row.transaction_id,
            row.user_id,
            Some(row.occurred_at),
            row.kind,
            amount.as_deref(),
            row.currency,
            row.game_type,
            row.session_id,
            row.country,
        ];
        let line: Vec<&str> = fields.iter().map(|field| field.unwrap_or("")).collect();
        text.push_str(&line.join(","));
        text.push('\n');
    }
    text
}

/// The Python peer's folder: `CRMBET_PEER_DIR` (scripts/test.sh sets it), else `shared/`
/// beside the repository.
pub fn peer_folder() -> PathBuf {
    match std::env::var_os("CRMBET_PEER_DIR") {
        Some(folder) => PathBuf::from(folder),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/bench/peer"),
    }
}

/// The Python with the peer's requirements, from `CRMBET_PEER_PYTHON`.
pub fn peer_python() -> String {
    std::env::var("CRMBET_PEER_PYTHON").unwrap_or_else(|_| {
        panic!(
            "CRMBET_PEER_PYTHON is not set: point it at a python with {} installed, e.g. \
             python3 -m venv ~/.cache/crmbet/tools/peer-venv && \
             ~/.cache/crmbet/tools/peer-venv/bin/pip install -r {0} && \
             export CRMBET_PEER_PYTHON=~/.cache/crmbet/tools/peer-venv/bin/python",
            peer_folder().join("requirements.txt").display()
        )
    })
}

/// Runs a peer script with `arguments`, panicking with its output when it fails.
pub fn run_peer(script: &str, arguments: &[&str]) {
    let output = Command::new(peer_python())
        .arg(peer_folder().join(script))
        .args(arguments)
        .output()
        .unwrap_or_else(|error| panic!("cannot start the peer's python: {error}"));
    assert!(
        output.status.success(),
        "{script} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
