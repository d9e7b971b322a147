//! `crmbet bench serve` on a small model: it loads, warms the cache, measures both servers
//! and reports every measured read served from the cache. `crmbet bench ingest` on a small
//! lake: every intake on both engines.

use std::process::Command;

fn redis_url() -> String {
    std::env::var("CRMBET_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

#[test]
fn bench_serve_measures_cached_reads_against_the_empty_handler() {
    let data = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_crmbet"))
        .args([
            "bench",
            "serve",
            "--players",
            "400",
            "--transactions",
            "8000",
            "--hot-players",
            "50",
            "--concurrency",
            "4",
            "--connections",
            "2",
            "--seconds",
            "1",
            "--warmup-seconds",
            "0",
            "--rounds",
            "1",
            "--json",
            "--data",
        ])
        .arg(data.path())
        .env("REDIS_URL", redis_url())
        .env("CRMBET_LOG", "warn")
        .output()
        .expect("running crmbet bench serve");
    assert!(
        output.status.success(),
        "bench serve failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
            panic!(
                "bench serve printed no JSON ({error}): {}",
                String::from_utf8_lossy(&output.stdout)
            )
        });
    assert!(report["players"].as_i64().unwrap() >= 350, "{report}");
    assert_eq!(report["hot_players"], 50, "{report}");
    assert_eq!(report["cache"], "Redis (REDIS_URL)", "{report}");
    for server in ["empty_handler", "crmbet"] {
        let rate = report[server]["requests_per_second"].as_f64().unwrap();
        assert!(rate > 0.0, "{server} answered nothing: {report}");
        let p50 = report[server]["p50_ms"].as_f64().unwrap();
        let p99 = report[server]["p99_ms"].as_f64().unwrap();
        assert!(p50 > 0.0 && p50 <= p99, "{server}: {report}");
    }
    assert_eq!(
        report["database_loads_during_measurement"], 0,
        "every measured read should come from the cache: {report}"
    );
    assert!(report["crmbet_vs_empty_handler"].as_f64().unwrap() > 0.0);
}

/// `crmbet bench ingest` on a small lake and model: every path on both engines stores every
/// event, and the server paths measure how soon a transaction's segment is readable.
#[test]
fn bench_ingest_measures_every_intake_on_both_engines() {
    let amqp_url = std::env::var("CRMBET_TEST_AMQP_URL").unwrap_or_else(|_| {
        panic!("CRMBET_TEST_AMQP_URL is not set: scripts/test.sh starts RabbitMQ and sets it; this test does not skip")
    });
    let output = Command::new(env!("CARGO_BIN_EXE_crmbet"))
        .args([
            "bench",
            "ingest",
            "--players",
            "200",
            "--transactions",
            "4000",
            "--batch",
            "100",
            "--model-players",
            "300",
            "--model-transactions",
            "12000",
            "--postgres",
            "--json",
        ])
        .env("AMQP_URL", amqp_url)
        .env("CRMBET_LOG", "warn")
        .output()
        .expect("running crmbet bench ingest");
    assert!(
        output.status.success(),
        "bench ingest failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
            panic!(
                "bench ingest printed no JSON ({error}): {}",
                String::from_utf8_lossy(&output.stdout)
            )
        });
    let runs = report["runs"].as_array().unwrap();
    let paths: Vec<(&str, &str)> = runs
        .iter()
        .map(|run| {
            (
                run["engine"].as_str().unwrap(),
                run["path"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        paths,
        [
            ("sqlite", "use case (baseline)"),
            ("sqlite", "gRPC stream"),
            ("sqlite", "RabbitMQ"),
            ("postgres", "use case (baseline)"),
            ("postgres", "gRPC stream"),
            ("postgres", "RabbitMQ"),
        ]
    );
    for run in runs {
        assert_eq!(run["events"], 4000, "{run}");
        assert!(run["events_per_second"].as_f64().unwrap() > 0.0, "{run}");
        if run["path"] == "use case (baseline)" {
            assert!(run["latency_p50_ms"].is_null(), "{run}");
            continue;
        }
        // Every server path was probed: a transaction's new segment became readable.
        assert!(run["probes"].as_u64().unwrap() >= 1, "{run}");
        assert_eq!(run["probes_timed_out"], 0, "{run}");
        let p50 = run["latency_p50_ms"].as_f64().unwrap();
        let p99 = run["latency_p99_ms"].as_f64().unwrap();
        assert!(p50 > 0.0 && p50 <= p99, "{run}");
    }
}
