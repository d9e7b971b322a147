//! `crmbet bench serve`: GetUserSegment over gRPC through the whole server (origin check,
//! rate limit, access token, read cache, store) against an empty tonic handler, in one run.
//!
//! The server holds a real model over `--players` players: a synthetic lake is written,
//! loaded by the ETL and segmented by KMeans, as `crmbet demo` does. A service account logs
//! in over gRPC and every request carries its access token. The rate limits are raised out
//! of the way (they would refuse a benchmark from one address); every request still takes
//! its token from the budget, which with REDIS_URL means a Redis call per lease of up to
//! 1000 tokens. The hot players' segments are read before each measurement of crmbet, so
//! what is measured is the cached read at bet time.
//!
//! Limits of the method: the clients run in this process on the same cores, so their cost
//! is in both numbers (it pulls the ratio towards 1), and the load is closed loop, so each
//! server's latencies are taken at its own saturation throughput.
//!
//! Both servers get the same closed-loop load, alternately, `--rounds` times; the report
//! takes the medians.

mod empty;
mod load;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{Days, Utc};
use crmbet_app::{create_account, generate_password};
use crmbet_core::Config;
use crmbet_core::Role;
use crmbet_core::fingerprint::fingerprint;
use crmbet_core::rate_limit_classes::RateLimitClasses;
use crmbet_etl::SyntheticLakeOptions;
use crmbet_proto::v1::LoginRequest;
use crmbet_proto::v1::auth_service_client::AuthServiceClient;
use crmbet_server::{AppState, Transport, application, serve};
use crmbet_store::Store;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::metadata::MetadataValue;

use self::empty::EmptyServer;
use self::load::{LoadPlan, LoadReport, connect, drive};
use super::{run_crmbet_etl_on, run_crmbet_json_on, scratch_database_url};
use crate::cli::BenchServeArgs;
use crate::command::demo::ensure_lake;
use crate::command::open_store;

/// The acceptance targets: throughput against the empty handler, and p99 at that load.
const TARGET_RATIO: f64 = 0.6;
const TARGET_P99_MS: f64 = 5.0;

pub(crate) async fn bench_serve(config: Config, arguments: BenchServeArgs) -> anyhow::Result<()> {
    let scratch;
    let data = match &arguments.data {
        Some(folder) => {
            std::fs::create_dir_all(folder)
                .with_context(|| format!("creating {}", folder.display()))?;
            folder.clone()
        }
        None => {
            scratch = tempfile::tempdir().context("creating a scratch folder")?;
            scratch.path().to_owned()
        }
    };
    let database_url = arguments
        .database_url
        .clone()
        .unwrap_or_else(|| scratch_database_url(&data));
    ensure_loaded(&data, &database_url, &arguments).await?;
    let config = bench_config(config, &data, &database_url)?;
    let store = open_store(&config).await?;
    let model_id = store
        .active_model_id()
        .await
        .context("reading the active model")?
        .context("no active model after loading")?;
    let hot_players = Arc::new(
        store
            .sample_segment_user_ids(model_id, arguments.hot_players)
            .await
            .context("drawing the hot players")?,
    );
    let username = format!("bench-{}", generate_password().to_lowercase());
    let password = generate_password();
    create_account(&store, &username, Role::Service, &password, "bench serve")
        .await
        .context("creating the benchmark's service account")?;

    let cache_backend = if config.redis_url.is_some() {
        "Redis (REDIS_URL)"
    } else {
        "in process (no REDIS_URL)"
    };
    let state = AppState::new(store.clone(), config).context("building the server state")?;
    let read_cache = state.read_cache.clone();
    let router = application(state).await.context("building the server")?;
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding a local port")?;
    let address = listener.local_addr().context("reading the bound address")?;
    let (stop_server, server_stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        Transport::Plain,
        router,
        async {
            let _ = server_stopped.await;
        },
        Duration::from_secs(1),
    ));

    let authorization = log_in(address, &username, &password).await?;
    let plan = LoadPlan {
        concurrency: arguments.concurrency,
        connections: arguments.connections,
        warmup: Duration::from_secs(arguments.warmup_seconds),
        measured: Duration::from_secs(arguments.seconds.max(1)),
        authorization,
        seed: arguments.seed,
    };
    let warm_seconds = if arguments.uncached {
        0.0
    } else {
        warm_cache(address, &hot_players, &plan).await?
    };
    let mut database_loads = 0;

    let empty = EmptyServer::start().await?;
    let mut rounds = Vec::with_capacity(arguments.rounds.max(1));
    for round in 0..arguments.rounds.max(1) {
        if !arguments.json {
            eprintln!("round {}: empty handler ...", round + 1);
        }
        let baseline = drive(empty.address, Arc::clone(&hot_players), &plan).await?;
        if !arguments.json {
            eprintln!("round {}: crmbet ...", round + 1);
        }
        // Entries older than the cache's TTL would send measured reads to the database.
        if !arguments.uncached {
            warm_cache(address, &hot_players, &plan).await?;
        }
        let loads_before = read_cache.loads();
        let crmbet = drive(address, Arc::clone(&hot_players), &plan).await?;
        database_loads += read_cache.loads() - loads_before;
        for (name, report) in [("empty handler", &baseline), ("crmbet", &crmbet)] {
            anyhow::ensure!(
                report.errors == 0,
                "{name} answered {} requests with errors, first: {}",
                report.errors,
                report.first_error.as_deref().unwrap_or("-")
            );
        }
        rounds.push((baseline, crmbet));
    }
    empty.stop().await?;
    let _ = stop_server.send(());
    server.await.context("the server task failed")?;

    let report = Report {
        players: players_loaded(&store).await?,
        hot_players: hot_players.len(),
        cache_backend,
        warm_seconds,
        database_loads,
        plan: &plan,
        rounds: &rounds,
    };
    if arguments.json {
        println!("{}", report.json());
    } else {
        report.print();
    }
    Ok(())
}

/// The configuration of the benchmark's server: the lake and SQLite database in `data`,
/// plain HTTP, a stable signing key, rate limits out of the way, its own Redis key prefix.
fn bench_config(mut config: Config, data: &Path, database_url: &str) -> anyhow::Result<Config> {
    config.database_url = database_url.to_owned();
    config.warehouse_dir = data.join("warehouse");
    config.listen = "127.0.0.1:0".to_owned();
    // The load clients speak plain HTTP/2 to the in-process server.
    config.tls_cert_file = None;
    config.tls_key_file = None;
    config.rate_limit_per_hour = u32::MAX;
    config.rate_limit_per_principal_per_hour = u32::MAX;
    // Unbounded, segment included (it has a budget of its own by default): the benchmark
    // measures serving, not refusals.
    config.rate_limit_classes = format!("segment={max}/{max}", max = u32::MAX)
        .parse::<RateLimitClasses>()
        .map_err(anyhow::Error::msg)?;
    config.redis_key_prefix = format!(
        "{}bench-serve-{}:",
        config.redis_key_prefix,
        std::process::id()
    );
    // Two generated passwords: the secret must have at least 32 bytes.
    config.jwt_secret = Some(format!("{}{}", generate_password(), generate_password()));
    config.jwt_key_file = None;
    Ok(config)
}

/// Writes the lake, loads it and trains KMeans once per `data` folder and size, in child
/// processes (their output stays out of this one's); later runs reuse the database.
async fn ensure_loaded(
    data: &Path,
    database_url: &str,
    arguments: &BenchServeArgs,
) -> anyhow::Result<()> {
    let marker = data.join(format!(
        "loaded-players{}-transactions{}-seed{}-database{}",
        arguments.players,
        arguments.transactions,
        arguments.seed,
        fingerprint(database_url)
    ));
    if marker.exists() {
        eprintln!("reusing the model loaded in {}", data.display());
        return Ok(());
    }
    // A database without the marker is from an unfinished or different load: start over,
    // so the model trained below is the first and therefore the active one.
    for leftover in ["bench.db", "bench.db-wal", "bench.db-shm"] {
        let path = data.join(leftover);
        if path.exists() {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    let warehouse = data.join("warehouse");
    if warehouse.exists() {
        std::fs::remove_dir_all(&warehouse)
            .with_context(|| format!("removing {}", warehouse.display()))?;
    }
    let end_date = Utc::now()
        .date_naive()
        .checked_sub_days(Days::new(1))
        .context("computing yesterday's date")?;
    let lake = lake_folder(data, arguments);
    let options = SyntheticLakeOptions {
        seed: arguments.seed,
        ..SyntheticLakeOptions::new(arguments.players, arguments.transactions, end_date)
    };
    ensure_lake(&lake, options).await?;
    eprintln!("loading {} with crmbet etl ...", lake.display());
    run_crmbet_etl_on(database_url, &lake, data)?;
    eprintln!("training KMeans (automatic k) ...");
    let seed = arguments.seed.to_string();
    let trained = run_crmbet_json_on(
        database_url,
        data,
        &[
            OsStr::new("train"),
            OsStr::new("--algorithm"),
            OsStr::new("kmeans"),
            OsStr::new("--seed"),
            OsStr::new(&seed),
            OsStr::new("--json"),
        ],
    )?;
    eprintln!(
        "model {} trained: k = {}",
        trained["model_id"], trained["k"]
    );
    std::fs::write(&marker, b"").with_context(|| format!("writing {}", marker.display()))?;
    Ok(())
}

fn lake_folder(data: &Path, arguments: &BenchServeArgs) -> PathBuf {
    data.join(format!(
        "lake-players{}-transactions{}-seed{}",
        arguments.players, arguments.transactions, arguments.seed
    ))
}

async fn players_loaded(store: &Store) -> anyhow::Result<i64> {
    let counts = store.row_counts().await.context("counting rows")?;
    Ok(counts.get("players").copied().unwrap_or_default())
}

/// Logs the service account in over gRPC; returns the `authorization` value to send.
async fn log_in(
    address: std::net::SocketAddr,
    username: &str,
    password: &str,
) -> anyhow::Result<MetadataValue<tonic::metadata::Ascii>> {
    let channel = connect(address, 1)
        .await?
        .pop()
        .context("no connection to log in over")?;
    let answer = AuthServiceClient::new(channel)
        .login(LoginRequest {
            username: username.to_owned(),
            password: password.to_owned(),
        })
        .await
        .context("logging the benchmark's service account in")?
        .into_inner();
    MetadataValue::try_from(format!("Bearer {}", answer.access_token))
        .context("the access token is not a valid header value")
}

/// Reads every hot player's segment once, so the measured reads are cache hits.
async fn warm_cache(
    address: std::net::SocketAddr,
    hot_players: &Arc<Vec<String>>,
    plan: &LoadPlan,
) -> anyhow::Result<f64> {
    use crmbet_proto::v1::GetUserSegmentRequest;
    use crmbet_proto::v1::user_service_client::UserServiceClient;

    let started = Instant::now();
    let channels = connect(address, plan.connections).await?;
    let mut readers = tokio::task::JoinSet::new();
    let readers_count = plan.concurrency.max(1);
    for reader in 0..readers_count {
        let mut client = UserServiceClient::new(channels[reader % channels.len()].clone());
        let hot_players = Arc::clone(hot_players);
        let authorization = plan.authorization.clone();
        readers.spawn(async move {
            for user_id in hot_players.iter().skip(reader).step_by(readers_count) {
                let mut request = tonic::Request::new(GetUserSegmentRequest {
                    user_id: user_id.clone(),
                });
                request
                    .metadata_mut()
                    .insert("authorization", authorization.clone());
                client
                    .get_user_segment(request)
                    .await
                    .with_context(|| format!("reading the segment of {user_id}"))?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(reader) = readers.join_next().await {
        reader.context("a cache-warming reader stopped")??;
    }
    Ok(started.elapsed().as_secs_f64())
}

struct Report<'a> {
    players: i64,
    hot_players: usize,
    cache_backend: &'static str,
    warm_seconds: f64,
    database_loads: u64,
    plan: &'a LoadPlan,
    rounds: &'a [(LoadReport, LoadReport)],
}

/// The medians over the rounds of one server's measurements.
struct Summary {
    throughput: f64,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
}

impl Report<'_> {
    fn summary(&self, pick: impl Fn(&(LoadReport, LoadReport)) -> &LoadReport) -> Summary {
        let median_of = |value: &dyn Fn(&LoadReport) -> f64| {
            median(self.rounds.iter().map(|round| value(pick(round))).collect())
        };
        Summary {
            throughput: median_of(&|report| report.throughput()),
            p50_ms: median_of(&|report| report.latency_ms(0.50)),
            p95_ms: median_of(&|report| report.latency_ms(0.95)),
            p99_ms: median_of(&|report| report.latency_ms(0.99)),
        }
    }

    fn ratio(&self) -> f64 {
        median(
            self.rounds
                .iter()
                .map(|(baseline, crmbet)| super::ratio(crmbet.throughput(), baseline.throughput()))
                .collect(),
        )
    }

    fn json(&self) -> Value {
        let summary = |summary: Summary| {
            json!({
                "requests_per_second": summary.throughput,
                "p50_ms": summary.p50_ms,
                "p95_ms": summary.p95_ms,
                "p99_ms": summary.p99_ms,
            })
        };
        let crmbet = self.summary(|round| &round.1);
        json!({
            "players": self.players,
            "hot_players": self.hot_players,
            "cache": self.cache_backend,
            "cache_warm_seconds": self.warm_seconds,
            "database_loads_during_measurement": self.database_loads,
            "concurrency": self.plan.concurrency,
            "connections": self.plan.connections,
            "seconds_per_phase": self.plan.measured.as_secs_f64(),
            "rounds": self.rounds.len(),
            "empty_handler": summary(self.summary(|round| &round.0)),
            "crmbet_p99_under_target": crmbet.p99_ms < TARGET_P99_MS,
            "crmbet": summary(crmbet),
            "crmbet_vs_empty_handler": self.ratio(),
            "per_round_ratios": self.round_ratios(),
        })
    }

    /// crmbet's throughput over the empty handler's, round by round.
    fn round_ratios(&self) -> Vec<f64> {
        self.rounds
            .iter()
            .map(|(baseline, crmbet)| super::ratio(crmbet.throughput(), baseline.throughput()))
            .collect()
    }

    fn print(&self) {
        println!(
            "GetUserSegment over gRPC: {} players loaded, {} hot players (cache {}, warmed in {:.1} s)",
            self.players, self.hot_players, self.cache_backend, self.warm_seconds
        );
        println!(
            "{} clients over {} HTTP/2 connections, {} s measured after {} s warm-up, {} rounds (medians)",
            self.plan.concurrency,
            self.plan.connections,
            self.plan.measured.as_secs(),
            self.plan.warmup.as_secs(),
            self.rounds.len()
        );
        println!(
            "{:<16} {:>12} {:>9} {:>9} {:>9}",
            "server", "requests/s", "p50 ms", "p95 ms", "p99 ms"
        );
        let baseline = self.summary(|round| &round.0);
        let crmbet = self.summary(|round| &round.1);
        for (name, summary) in [("empty handler", &baseline), ("crmbet", &crmbet)] {
            println!(
                "{:<16} {:>12.0} {:>9.2} {:>9.2} {:>9.2}",
                name, summary.throughput, summary.p50_ms, summary.p95_ms, summary.p99_ms
            );
        }
        let ratio = self.ratio();
        let verdict = |holds: bool| if holds { "holds" } else { "MISSED" };
        println!(
            "crmbet / empty handler throughput: {ratio:.2} (target >= {TARGET_RATIO}: {})",
            verdict(ratio >= TARGET_RATIO)
        );
        let rounds: Vec<String> = self
            .round_ratios()
            .iter()
            .map(|ratio| format!("{ratio:.2}"))
            .collect();
        println!("  per round: {}", rounds.join(", "));
        println!(
            "crmbet p99 at that load: {:.2} ms (target < {TARGET_P99_MS} ms: {})",
            crmbet.p99_ms,
            verdict(crmbet.p99_ms < TARGET_P99_MS)
        );
        println!(
            "segment loads from the database while measuring: {}",
            self.database_loads
        );
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}
