//! Flags and subcommands, exactly as DESIGN.md lists them ("Command line").

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// crmbet: player segmentation and campaigns for casino and betting operators.
#[derive(Debug, Parser)]
#[command(name = "crmbet", version, about)]
pub struct Cli {
    /// Database URL: sqlite://… (embedded, the default) or postgres://….
    #[arg(long, global = true, env = "DATABASE_URL")]
    pub database: Option<String>,
    /// A TOML file with settings; environment variables override it.
    #[arg(long, global = true, env = "CRMBET_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve gRPC, grpc-web and REST on one port.
    Serve(ServeArgs),
    /// Migrate, load a built-in sample so every read answers with data, and serve.
    Demo(DemoArgs),
    /// Apply, roll back or list the schema migrations.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Load a transaction lake into per-player features.
    Etl(EtlArgs),
    /// Train the player segmentation model on the latest features.
    Train(TrainArgs),
    /// Manage accounts.
    Account {
        #[command(subcommand)]
        action: AccountAction,
    },
    /// Measure the ETL, training or serving against their baselines.
    Bench {
        #[command(subcommand)]
        target: BenchTarget,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on [env: CRMBET_LISTEN, default 127.0.0.1:3000]; port 0 picks a free port.
    #[arg(long)]
    pub listen: Option<String>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Address to listen on [env: CRMBET_LISTEN, default 127.0.0.1:3000].
    #[arg(long)]
    pub listen: Option<String>,
    /// Players in the synthetic lake.
    #[arg(long, default_value_t = 5_000, value_parser = clap::builder::TypedValueParser::map(clap::value_parser!(u64).range(1..=10_000_000), |value| value as usize))]
    pub players: usize,
    /// Transactions in the synthetic lake (up to 10 million).
    #[arg(long, default_value_t = 250_000, value_parser = clap::builder::TypedValueParser::map(clap::value_parser!(u64).range(1..=10_000_000), |value| value as usize))]
    pub transactions: usize,
    /// Seed of the lake and the training; the same seed gives the same players and model.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Share of players made whales (0 to 0.05): stakes far above everyone else's, which
    /// training sets apart as a "VIP · High Roller" segment.
    #[arg(long, default_value_t = 0.0, value_parser = whale_share)]
    pub whales: f64,
    /// Load the lake and train, then exit instead of serving.
    #[arg(long)]
    pub no_serve: bool,
}

/// A whale share between 0 and the generator's largest.
fn whale_share(text: &str) -> Result<f64, String> {
    let share: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if (0.0..=crmbet_etl::MAX_WHALE_SHARE).contains(&share) {
        Ok(share)
    } else {
        Err(format!(
            "must be between 0 and {}",
            crmbet_etl::MAX_WHALE_SHARE
        ))
    }
}

#[derive(Debug, Subcommand)]
pub enum MigrateAction {
    /// Apply every pending migration.
    Up,
    /// Roll back the latest migration.
    Down {
        /// How many migrations to roll back.
        #[arg(long, default_value_t = 1)]
        steps: u32,
    },
    /// List applied and pending migrations.
    Status,
}

#[derive(Debug, Args)]
pub struct EtlArgs {
    /// A local folder or s3://bucket/prefix.
    #[arg(long)]
    pub lake: String,
    /// Reload every object, ignoring the watermark.
    #[arg(long)]
    pub full: bool,
    /// Print one JSON summary instead of progress.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AlgorithmArg {
    Auto,
    Kmeans,
    Dbscan,
    Hdbscan,
    Ensemble,
}

impl From<AlgorithmArg> for crmbet_ml::Algorithm {
    fn from(argument: AlgorithmArg) -> Self {
        match argument {
            AlgorithmArg::Auto => Self::Auto,
            AlgorithmArg::Kmeans => Self::KMeans,
            AlgorithmArg::Dbscan => Self::Dbscan,
            AlgorithmArg::Hdbscan => Self::Hdbscan,
            AlgorithmArg::Ensemble => Self::Ensemble,
        }
    }
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    #[arg(long, value_enum, default_value_t = AlgorithmArg::Auto)]
    pub algorithm: AlgorithmArg,
    /// Number of clusters for KMeans (2..=50); automatic when omitted.
    #[arg(long)]
    pub k: Option<u32>,
    /// Seed for every random choice.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Print one JSON summary instead of progress.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Admin,
    Analyst,
    Marketer,
    Service,
}

#[derive(Debug, Subcommand)]
pub enum AccountAction {
    /// Create an account.
    Create {
        #[arg(long)]
        username: String,
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchTarget {
    /// The ETL against the Python peer (DuckDB and pandas) on the same lake, in one run.
    Etl(BenchEtlArgs),
    /// Training against the scikit-learn peer on the same lake's features, in one run.
    Train(BenchTrainArgs),
    /// GetUserSegment through the whole server against an empty tonic handler, in one run.
    Serve(BenchServeArgs),
    /// A campaign launch to a large audience and its delivery to a local Smartico stand-in,
    /// against the bound Smartico's published request rate sets.
    Campaign(BenchCampaignArgs),
    /// Live transactions through the server (gRPC stream, RabbitMQ with AMQP_URL) against
    /// the use case called in process, in one run.
    Ingest(BenchIngestArgs),
}

#[derive(Debug, Args)]
pub struct BenchIngestArgs {
    /// Players of the synthetic lake whose rows are sent.
    #[arg(long, default_value_t = 20_000)]
    pub players: usize,
    /// Rows of that lake (dirty ones included): the transactions sent per measurement.
    #[arg(long, default_value_t = 200_000)]
    pub transactions: usize,
    /// Seed of the lake.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Transactions per batch (a stream message, a RabbitMQ message, a use-case call).
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    /// Players of the model the events are scored with (a lake of its own, loaded and
    /// trained first on each engine).
    #[arg(long, default_value_t = 200_000)]
    pub model_players: usize,
    /// Rows of the model's lake.
    #[arg(long, default_value_t = 1_000_000)]
    pub model_transactions: usize,
    /// Events a second offered over gRPC and RabbitMQ (batches sent on a schedule, the
    /// latency probes among them); 0 sends as fast as the server takes them.
    #[arg(long, default_value_t = 20_000)]
    pub rate: u64,
    /// Also measure on PostgreSQL: throwaway databases on the server of
    /// CRMBET_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres).
    #[arg(long)]
    pub postgres: bool,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BenchCampaignArgs {
    /// Players in the target clusters (a seeded sample model over this many players).
    #[arg(long, default_value_t = 200_000)]
    pub players: usize,
    /// Seed of the sample.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Share of the audience held back as the control group.
    #[arg(long, default_value_t = 0.1)]
    pub holdout_share: f64,
    /// Also measure on PostgreSQL: a throwaway database on the server of
    /// CRMBET_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres).
    #[arg(long)]
    pub postgres: bool,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BenchServeArgs {
    /// Players of the synthetic lake loaded (ETL, KMeans, activation) before the load test.
    #[arg(long, default_value_t = 1_000_000)]
    pub players: usize,
    /// Transactions of that lake.
    #[arg(long, default_value_t = 3_000_000)]
    pub transactions: usize,
    /// Seed of the lake and the model.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Folder for the lake and the SQLite database; a folder loaded by an earlier run with
    /// the same --players, --transactions and --seed is reused. A scratch folder by default.
    #[arg(long)]
    pub data: Option<std::path::PathBuf>,
    /// Requests in flight at once (closed loop: each client sends its next request when the
    /// answer arrives).
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// HTTP/2 connections the clients share.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Players the requests pick from at random (their segments are read once before the
    /// measurement, so the measured reads come from the cache).
    #[arg(long, default_value_t = 10_000)]
    pub hot_players: u64,
    /// Seconds measured per phase, after --warmup-seconds.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Seconds of load before each measurement starts.
    #[arg(long, default_value_t = 1)]
    pub warmup_seconds: u64,
    /// Times the pair (empty handler, crmbet) is measured; the report takes the medians.
    /// Many short rounds rather than a few long ones: on a shared machine the speed of the
    /// cores drifts within seconds, and the median of many pairs sees through it.
    #[arg(long, default_value_t = 7)]
    pub rounds: usize,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// The database the lake is loaded into and served from (an empty `postgres://`
    /// database, say); the SQLite file in --data by default. A database loaded by an earlier
    /// run with the same URL, sizes and --data folder is reused.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Measure reads that miss the cache: no warm-up before each round, so with
    /// --hot-players near --players most reads go to the database.
    #[arg(long)]
    pub uncached: bool,
}

#[derive(Debug, Args)]
pub struct BenchTrainArgs {
    /// A local lake folder (holding transactions/); both pipelines train on its features.
    #[arg(long)]
    pub lake: std::path::PathBuf,
    /// What crmbet trains: `kmeans` is the automatic-k pipeline beside scikit-learn's KMeans
    /// sweep; `auto` adds DBSCAN, HDBSCAN and the ensemble (the peer adds its DBSCAN and HDBSCAN).
    #[arg(long, value_enum, default_value_t = AlgorithmArg::Kmeans)]
    pub algorithm: AlgorithmArg,
    /// Smallest k of the sweep, for both pipelines.
    #[arg(long, default_value_t = 2)]
    pub k_min: usize,
    /// Largest k of the sweep, for both pipelines (the peer's default is 10).
    #[arg(long, default_value_t = 10)]
    pub k_max: usize,
    /// Seed of both pipelines.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub peer: PeerArgs,
    /// Only crmbet, without the peer (e.g. to measure memory on a lake the peer cannot hold).
    #[arg(long)]
    pub skip_peer: bool,
    /// After training, assign the players outside the density sample both with the index
    /// and exhaustively, and report the times and how many labels differ.
    #[arg(long)]
    pub check_assignment: bool,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Where the Python peer of `../shared/bench/peer/` is.
#[derive(Debug, Args)]
pub struct PeerArgs {
    /// Python with the peer's requirements (numpy, pandas, pyarrow, duckdb, scikit-learn).
    #[arg(long, env = "CRMBET_PEER_PYTHON", default_value = "python3")]
    pub peer_python: String,
    /// The peer pipeline script.
    #[arg(
        long,
        env = "CRMBET_PEER_SCRIPT",
        default_value = "../shared/bench/peer/peer.py"
    )]
    pub peer: std::path::PathBuf,
}

#[derive(Debug, Args)]
pub struct BenchEtlArgs {
    /// A local lake folder (holding transactions/).
    #[arg(long)]
    pub lake: std::path::PathBuf,
    #[command(flatten)]
    pub peer: PeerArgs,
    /// Skip the pandas peer (it needs about 4 GiB on a 10M-row lake).
    #[arg(long)]
    pub skip_pandas: bool,
    /// Also compute the features on a standalone Ballista cluster (scheduler and executor
    /// in this process) from the run's warehouse, and compare them with the single-process
    /// features field by field. Needs a build with `--features ballista`.
    #[arg(long)]
    pub ballista: bool,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}
