//! `crmbet bench`: our pipeline against its baseline, in one run, as ratios (the machine is
//! noisy, so only same-run ratios mean anything).

mod ballista;
mod campaign;
mod etl;
mod ingest;
mod serve;
mod train;

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};
use crmbet_core::Config;
use serde_json::Value;

use crate::cli::BenchTarget;

/// Runs one benchmark.
pub async fn run(config: Config, target: BenchTarget) -> anyhow::Result<ExitCode> {
    match target {
        BenchTarget::Etl(arguments) => etl::bench_etl(arguments).await?,
        BenchTarget::Train(arguments) => train::bench_train(arguments).await?,
        BenchTarget::Serve(arguments) => serve::bench_serve(config, arguments).await?,
        BenchTarget::Campaign(arguments) => campaign::bench_campaign(config, arguments).await?,
        BenchTarget::Ingest(arguments) => ingest::bench_ingest(config, arguments).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// One measured pipeline.
struct Measurement {
    name: &'static str,
    seconds: f64,
    peak_rss_bytes: Option<u64>,
}

/// Runs this binary's `etl --full --json` on a scratch database and warehouse in `scratch`;
/// returns its JSON summary.
fn run_crmbet_etl(lake: &Path, scratch: &Path) -> anyhow::Result<Value> {
    run_crmbet_etl_on(&scratch_database_url(scratch), lake, scratch)
}

/// [`run_crmbet_etl`] into the database at `database_url`.
fn run_crmbet_etl_on(database_url: &str, lake: &Path, scratch: &Path) -> anyhow::Result<Value> {
    run_crmbet_json_on(
        database_url,
        scratch,
        &[
            OsStr::new("etl"),
            OsStr::new("--full"),
            OsStr::new("--json"),
            OsStr::new("--lake"),
            lake.as_os_str(),
        ],
    )
}

/// Runs this binary with `arguments` (which must ask for `--json`) on the database at
/// `database_url` and the warehouse in `scratch`; returns the JSON it printed.
fn run_crmbet_json_on(
    database_url: &str,
    scratch: &Path,
    arguments: &[&OsStr],
) -> anyhow::Result<Value> {
    let executable = std::env::current_exe().context("finding the crmbet executable")?;
    let output = Command::new(executable)
        .args(arguments)
        .env("DATABASE_URL", database_url)
        .env("CRMBET_WAREHOUSE_DIR", scratch.join("warehouse"))
        .env("CRMBET_LOG", "warn")
        .output()
        .with_context(|| format!("running crmbet {}", arguments[0].display()))?;
    serde_json::from_slice(&output.stdout).with_context(|| {
        format!(
            "crmbet {} failed: {}",
            arguments[0].display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )
    })
}

/// The SQLite database of a scratch folder.
fn scratch_database_url(scratch: &Path) -> String {
    format!("sqlite://{}?mode=rwc", scratch.join("bench.db").display())
}

/// Runs the Python peer with `arguments` and returns the JSON line it prints last.
fn run_peer(python: &str, script: &Path, arguments: &[String]) -> anyhow::Result<Value> {
    if !script.exists() {
        bail!(
            "the peer pipeline {} does not exist; pass --peer PATH/peer.py",
            script.display()
        );
    }
    let output = Command::new(python)
        .arg(script)
        .args(arguments)
        .output()
        .with_context(|| format!("running {python} (set --peer-python)"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(text.trim().lines().last().unwrap_or_default()).with_context(|| {
        format!(
            "the peer ({}) failed: {}",
            arguments.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )
    })
}

/// The peer's `peak_rss_mib` in bytes.
fn peer_peak_rss(report: &Value) -> Option<u64> {
    report["peak_rss_mib"]
        .as_f64()
        .map(|mebibytes| (mebibytes * 1024.0 * 1024.0) as u64)
}

/// `ours / theirs`, guarded against a zero baseline.
fn ratio(ours: f64, theirs: f64) -> f64 {
    ours / theirs.max(1e-9)
}

/// Prints the measurements as a table, with rows/s when `rows` is given.
fn print_table(measurements: &[&Measurement], rows: Option<u64>) {
    match rows {
        Some(_) => println!(
            "{:<44} {:>9} {:>12} {:>10}",
            "pipeline", "seconds", "rows/s", "peak RSS"
        ),
        None => println!("{:<44} {:>9} {:>10}", "pipeline", "seconds", "peak RSS"),
    }
    for measurement in measurements {
        let peak = measurement.peak_rss_bytes.map_or("-".to_owned(), |bytes| {
            format!("{:.2} GiB", bytes as f64 / 1024f64.powi(3))
        });
        match rows {
            Some(rows) => println!(
                "{:<44} {:>9.2} {:>12.0} {:>10}",
                measurement.name,
                measurement.seconds,
                rows as f64 / measurement.seconds.max(1e-9),
                peak
            ),
            None => println!(
                "{:<44} {:>9.2} {:>10}",
                measurement.name, measurement.seconds, peak
            ),
        }
    }
}
