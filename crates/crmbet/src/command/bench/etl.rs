//! `crmbet bench etl`: `crmbet etl` against the peer's DuckDB and pandas ETL on one lake.

use std::path::Path;

use anyhow::Context;
use serde_json::json;

use super::{Measurement, ballista, peer_peak_rss, print_table, ratio, run_crmbet_etl, run_peer};
use crate::cli::BenchEtlArgs;

pub(super) async fn bench_etl(arguments: BenchEtlArgs) -> anyhow::Result<()> {
    if arguments.ballista {
        ballista::ensure_built_in()?;
    }
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
    let duckdb = peer_etl(&arguments, "duckdb")?;
    let pandas = if arguments.skip_pandas {
        None
    } else {
        Some(peer_etl(&arguments, "pandas")?)
    };
    let engines = if arguments.ballista {
        Some(ballista::compare_engines(scratch.path()).await?)
    } else {
        None
    };

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
        "features_vs_duckdb": ratio(features.seconds, duckdb.seconds),
        "etl_vs_duckdb": ratio(whole.seconds, duckdb.seconds),
        "etl_vs_pandas": pandas.as_ref().map(|pandas| ratio(whole.seconds, pandas.seconds)),
        "warehouse_features_seconds": engines.as_ref().map(|engines| engines.single_process_seconds),
        "ballista_features_seconds": engines.as_ref().map(|engines| engines.ballista_seconds),
        "ballista_vs_single_process": engines
            .as_ref()
            .map(|engines| ratio(engines.ballista_seconds, engines.single_process_seconds)),
        "ballista_largest_difference": engines.as_ref().map(|engines| engines.largest_difference),
    });
    if arguments.json {
        println!("{report}");
        return Ok(());
    }
    println!(
        "ETL benchmark on {} ({rows_read} rows, {players} players)",
        arguments.lake.display()
    );
    let mut rows = vec![&features, &whole, &duckdb];
    rows.extend(pandas.as_ref());
    print_table(&rows, Some(rows_read));
    println!(
        "crmbet features / DuckDB = {:.2}x (target <= 1.5, goal <= 1.0)",
        ratio(features.seconds, duckdb.seconds)
    );
    println!(
        "crmbet etl with database load / DuckDB = {:.2}x (target <= 2.5)",
        ratio(whole.seconds, duckdb.seconds)
    );
    if let Some(pandas) = &pandas {
        println!(
            "crmbet etl with database load / pandas = {:.2}x (target < 1.0)",
            ratio(whole.seconds, pandas.seconds)
        );
    }
    if let Some(engines) = &engines {
        println!(
            "features of the warehouse ({} players): single process {:.2} s, Ballista standalone \
             {:.2} s ({:.2}x), largest relative difference {:.1e}",
            engines.players,
            engines.single_process_seconds,
            engines.ballista_seconds,
            ratio(engines.ballista_seconds, engines.single_process_seconds),
            engines.largest_difference
        );
    }
    Ok(())
}

/// The peer's ETL (`--etl-only`) with `engine`; its own `etl_s` is the time.
fn peer_etl(arguments: &BenchEtlArgs, engine: &'static str) -> anyhow::Result<Measurement> {
    let report = run_peer(
        &arguments.peer.peer_python,
        &arguments.peer.peer,
        &peer_arguments(&arguments.lake, engine),
    )?;
    let name = if engine == "duckdb" {
        "DuckDB peer (--etl-only)"
    } else {
        "pandas peer (--etl-only)"
    };
    Ok(Measurement {
        name,
        seconds: report["etl_s"]
            .as_f64()
            .context("the peer's report has no etl_s")?,
        peak_rss_bytes: peer_peak_rss(&report),
    })
}

fn peer_arguments(lake: &Path, engine: &str) -> Vec<String> {
    vec![
        "--engine".to_owned(),
        engine.to_owned(),
        "--etl-only".to_owned(),
        "--lake".to_owned(),
        lake.display().to_string(),
    ]
}
