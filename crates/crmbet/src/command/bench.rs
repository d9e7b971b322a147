//! `crmbet bench`: our pipeline against its baseline, in one run, as ratios (the machine is
//! noisy, so only same-run ratios mean anything).

use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context, bail};
use crmbet_core::Config;
use serde_json::{Value, json};

use crate::cli::{BenchEtlArgs, BenchTarget};

/// Runs one benchmark.
pub async fn run(_config: Config, target: BenchTarget) -> anyhow::Result<ExitCode> {
    match target {
        BenchTarget::Etl(arguments) => bench_etl(arguments)?,
        BenchTarget::Train => bail!(
            "crmbet bench train is not available yet in this release: it arrives with model training"
        ),
        BenchTarget::Serve => bail!(
            "crmbet bench serve is not available yet in this release: it arrives with the read cache"
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// One measured pipeline.
struct Measurement {
    name: &'static str,
    seconds: f64,
    peak_rss_bytes: Option<u64>,
}

fn bench_etl(arguments: BenchEtlArgs) -> anyhow::Result<()> {
    let scratch = tempfile::tempdir().context("creating a scratch folder")?;
    let crmbet = run_crmbet_etl(&arguments.lake, scratch.path())?;
    let rows_read = crmbet["rows_read"].as_u64().unwrap_or_default();
    let players = crmbet["players"].as_u64().unwrap_or_default();
    let crmbet_peak = crmbet["peak_rss_bytes"].as_u64();
    let features = Measurement {
        name: "crmbet features (lake -> features)",
        seconds: crmbet["etl_seconds"].as_f64().unwrap_or_default(),
        peak_rss_bytes: crmbet_peak,
    };
    let whole = Measurement {
        name: "crmbet etl (with database load)",
        seconds: crmbet["seconds"].as_f64().unwrap_or_default(),
        peak_rss_bytes: crmbet_peak,
    };
    let duckdb = run_peer(&arguments, "duckdb")?;
    let pandas = if arguments.skip_pandas {
        None
    } else {
        Some(run_peer(&arguments, "pandas")?)
    };

    let ratio = |ours: &Measurement, theirs: &Measurement| ours.seconds / theirs.seconds.max(1e-9);
    let report = json!({
        "lake": arguments.lake.display().to_string(),
        "rows": rows_read,
        "players": players,
        "crmbet_features_seconds": features.seconds,
        "crmbet_etl_seconds": whole.seconds,
        "crmbet_peak_rss_bytes": crmbet_peak,
        "rows_per_second": rows_read as f64 / features.seconds.max(1e-9),
        "duckdb_seconds": duckdb.seconds,
        "duckdb_peak_rss_bytes": duckdb.peak_rss_bytes,
        "pandas_seconds": pandas.as_ref().map(|pandas| pandas.seconds),
        "pandas_peak_rss_bytes": pandas.as_ref().and_then(|pandas| pandas.peak_rss_bytes),
        "features_vs_duckdb": ratio(&features, &duckdb),
        "etl_vs_duckdb": ratio(&whole, &duckdb),
        "etl_vs_pandas": pandas.as_ref().map(|pandas| ratio(&whole, pandas)),
    });
    if arguments.json {
        println!("{report}");
        return Ok(());
    }
    println!(
        "ETL benchmark on {} ({rows_read} rows, {players} players)",
        arguments.lake.display()
    );
    println!(
        "{:<38} {:>9} {:>12} {:>10}",
        "pipeline", "seconds", "rows/s", "peak RSS"
    );
    let mut rows = vec![&features, &whole, &duckdb];
    rows.extend(pandas.as_ref());
    for measurement in rows {
        println!(
            "{:<38} {:>9.2} {:>12.0} {:>10}",
            measurement.name,
            measurement.seconds,
            rows_read as f64 / measurement.seconds.max(1e-9),
            measurement
                .peak_rss_bytes
                .map_or("-".to_owned(), |bytes| format!(
                    "{:.2} GiB",
                    bytes as f64 / 1024f64.powi(3)
                ))
        );
    }
    println!(
        "crmbet features / DuckDB = {:.2}x (target <= 1.5, goal <= 1.0)",
        ratio(&features, &duckdb)
    );
    println!(
        "crmbet etl with database load / DuckDB = {:.2}x (target <= 2.5)",
        ratio(&whole, &duckdb)
    );
    if let Some(pandas) = &pandas {
        println!(
            "crmbet etl with database load / pandas = {:.2}x (target < 1.0)",
            ratio(&whole, pandas)
        );
    }
    Ok(())
}

/// Runs this binary's `etl --full --json` on a scratch database and warehouse.
fn run_crmbet_etl(lake: &Path, scratch: &Path) -> anyhow::Result<Value> {
    let executable = std::env::current_exe().context("finding the crmbet executable")?;
    let database_url = format!("sqlite://{}?mode=rwc", scratch.join("bench.db").display());
    let output = Command::new(executable)
        .args(["etl", "--full", "--json", "--lake"])
        .arg(lake)
        .env("DATABASE_URL", database_url)
        .env("CRMBET_WAREHOUSE_DIR", scratch.join("warehouse"))
        .env("CRMBET_LOG", "warn")
        .output()
        .context("running crmbet etl")?;
    serde_json::from_slice(&output.stdout).with_context(|| {
        format!(
            "crmbet etl failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )
    })
}

/// Runs the Python peer's ETL (`--etl-only`) with `engine`.
fn run_peer(arguments: &BenchEtlArgs, engine: &'static str) -> anyhow::Result<Measurement> {
    if !arguments.peer.exists() {
        bail!(
            "the peer pipeline {} does not exist; pass --peer PATH/peer.py",
            arguments.peer.display()
        );
    }
    let started = Instant::now();
    let output = Command::new(&arguments.peer_python)
        .arg(&arguments.peer)
        .args(["--engine", engine, "--etl-only", "--lake"])
        .arg(&arguments.lake)
        .output()
        .with_context(|| format!("running {} (set --peer-python)", arguments.peer_python))?;
    let wall = started.elapsed().as_secs_f64();
    let line = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(line.trim().lines().last().unwrap_or_default())
        .with_context(|| {
            format!(
                "the {engine} peer failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )
        })?;
    let name = if engine == "duckdb" {
        "DuckDB peer (--etl-only)"
    } else {
        "pandas peer (--etl-only)"
    };
    Ok(Measurement {
        name,
        seconds: report["etl_s"].as_f64().unwrap_or(wall),
        peak_rss_bytes: report["peak_rss_mib"]
            .as_f64()
            .map(|mebibytes| (mebibytes * 1024.0 * 1024.0) as u64),
    })
}
