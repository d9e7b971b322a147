//! Runs the ETL once on a local lake and prints the outcome's counts as one JSON line.
//!
//! ```text
//! cargo run --release -p crmbet-etl --example etl_run -- LAKE WAREHOUSE [--full] [--features-out FILE.json]
//! ```

use std::path::PathBuf;
use std::time::Instant;

use crmbet_etl::{EtlMode, EtlOptions, EtlProgress, LakeSource, run_etl};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut arguments = std::env::args().skip(1);
    let usage = "usage: etl_run LAKE WAREHOUSE [--full]";
    let lake = PathBuf::from(arguments.next().ok_or(usage)?);
    let warehouse = PathBuf::from(arguments.next().ok_or(usage)?);
    let mode = match arguments.next().as_deref() {
        Some("--full") => EtlMode::Full,
        _ => EtlMode::Incremental(Default::default()),
    };
    let started = Instant::now();
    let progress = move |report: EtlProgress| match report {
        EtlProgress::ObjectRead { .. } | EtlProgress::ObjectFailed { .. } => {}
        other => eprintln!("[{:7.2}s] {other:?}", started.elapsed().as_secs_f64()),
    };
    // The example stores nothing: its warehouse belongs to no database but its own.
    let options =
        EtlOptions::new(LakeSource::local(lake), warehouse, "etl_run example").with_mode(mode);
    let outcome = run_etl(options, &progress).await?;
    let summary = serde_json::json!({
        "objects_read": outcome.objects_read,
        "objects_failed": outcome.objects_failed(),
        "rows_read": outcome.rows_read,
        "rows_loaded": outcome.rows_loaded,
        "rows_quarantined": outcome.rows_quarantined,
        "duplicates": outcome.duplicates,
        "quarantine_by_rule": outcome.quarantine_by_rule,
        "players": outcome.players,
        "quality": outcome.quality,
        "seconds": outcome.seconds,
    });
    println!("{summary}");
    Ok(())
}
