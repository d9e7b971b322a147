//! `crmbet etl --lake s3://…` against a real S3-compatible server: `moto_server` (PyPI
//! `moto[server]`, installed by scripts/test.sh, found through `CRMBET_MOTO_SERVER`), started
//! here on a free port. A lake is uploaded with aws-sdk-s3, loaded, one object is added and
//! the second run reads only that object and ends with the features of a full recompute.
//! The fatal cases (missing bucket, no credentials, unreachable endpoint) exit 1 with a
//! message that says what to fix.

use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use crmbet_store::entity::{player_features, quarantine};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::{ColumnTrait, Database, EntityTrait, QueryFilter, QueryOrder};

const BUCKET: &str = "crmbet-lake";
const LAKE_URL: &str = "s3://crmbet-lake/operator/lake";
const LAKE_PREFIX: &str = "operator/lake";
const HEADER: &str = "transaction_id,user_id,occurred_at,type,amount,currency,game_type,game_id,session_id,channel,country";
/// How long moto_server may take to answer after it starts (it usually takes about a second).
const SERVER_START_DEADLINE: Duration = Duration::from_secs(60);

/// A `moto_server` child process on a free port of 127.0.0.1, killed when dropped.
struct MotoServer {
    child: Child,
    endpoint: String,
    log: PathBuf,
    _log_folder: tempfile::TempDir,
}

impl MotoServer {
    /// Starts the server and waits until it answers HTTP.
    async fn start() -> Self {
        let program = std::env::var("CRMBET_MOTO_SERVER").unwrap_or_else(|_| {
            panic!(
                "CRMBET_MOTO_SERVER is not set: the S3 tests need moto_server. Run \
                 ./scripts/test.sh (it installs tests/python/s3-requirements.txt into \
                 ~/.cache/crmbet/tools/s3-venv), or export \
                 CRMBET_MOTO_SERVER=~/.cache/crmbet/tools/s3-venv/bin/moto_server"
            )
        });
        let port = free_port();
        let log_folder = tempfile::tempdir().unwrap();
        let log = log_folder.path().join("moto.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {program}: {error}"));
        let mut server = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            log,
            _log_folder: log_folder,
        };
        server.wait_until_ready().await;
        server
    }

    async fn wait_until_ready(&mut self) {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + SERVER_START_DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("moto_server exited with {status}: {}", self.log_text());
            }
            if http
                .get(format!("{}/moto-api/", self.endpoint))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|response| response.status().is_success())
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer on {} within {SERVER_START_DEADLINE:?}: {}",
                self.endpoint,
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// An S3 client of the server, path-style, with moto's dummy credentials.
    fn client(&self) -> Client {
        let http_client = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(http_client)
            .region(Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .force_path_style(true)
            .build();
        Client::from_conf(config)
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// One object of the lake: its key under the lake prefix and its contents.
struct LakeFile {
    key: String,
    contents: String,
}

/// A seeded lake of `players` players spread over CSV and NDJSON objects of `rows` rows each,
/// with a few rows that break rules and a few repeated transaction ids.
fn generate_lake(seed: u64, objects: &[(&str, usize)], players: usize) -> Vec<LakeFile> {
    let mut random = StdRng::seed_from_u64(seed);
    let mut files = Vec::new();
    let mut transaction = 0_u64;
    for (key, rows) in objects {
        let day: String = key
            .split("dt=")
            .nth(1)
            .and_then(|rest| rest.get(..10))
            .unwrap()
            .to_owned();
        let ndjson = key.ends_with(".ndjson");
        let mut contents = String::new();
        if !ndjson {
            contents.push_str(HEADER);
            contents.push('\n');
        }
        for _ in 0..*rows {
            transaction += 1;
            // One row in fifty repeats an earlier id, as a re-delivered file does.
            let id = if transaction > 10 && random.random_ratio(1, 50) {
                random.random_range(1..transaction)
            } else {
                transaction
            };
            let player = random.random_range(0..players);
            let hour = random.random_range(0..24);
            let minute = random.random_range(0..60);
            let kind = ["bet", "bet", "bet", "win", "deposit", "withdrawal", "bonus"]
                [random.random_range(0..7)];
            let game_type = match kind {
                "bet" | "win" => {
                    ["crash", "slots", "live_casino", "sports", "table"][random.random_range(0..5)]
                }
                _ => "",
            };
            // One row in forty has a negative amount and goes to quarantine.
            let amount = if random.random_ratio(1, 40) {
                -1.0
            } else {
                f64::from(random.random_range(1..50_000)) / 100.0
            };
            let session = format!("s{player}-{}", random.random_range(0..3));
            let country = ["GB", "SE", "DE", "MT"][player % 4];
            let occurred_at = format!("{day}T{hour:02}:{minute:02}:00Z");
            if ndjson {
                let game = if game_type.is_empty() {
                    "null".to_owned()
                } else {
                    format!("\"{game_type}\"")
                };
                writeln!(
                    contents,
                    "{{\"transaction_id\":\"t{id}\",\"user_id\":\"p{player}\",\
                     \"occurred_at\":\"{occurred_at}\",\"type\":\"{kind}\",\"amount\":{amount},\
                     \"currency\":\"EUR\",\"game_type\":{game},\"game_id\":null,\
                     \"session_id\":\"{session}\",\"channel\":\"web\",\"country\":\"{country}\"}}"
                )
                .unwrap();
            } else {
                writeln!(
                    contents,
                    "t{id},p{player},{occurred_at},{kind},{amount},EUR,{game_type},,{session},app,{country}"
                )
                .unwrap();
            }
        }
        files.push(LakeFile {
            key: (*key).to_owned(),
            contents,
        });
    }
    files
}

async fn upload(client: &Client, file: &LakeFile) {
    client
        .put_object()
        .bucket(BUCKET)
        .key(format!("{LAKE_PREFIX}/{}", file.key))
        .body(ByteStream::from(file.contents.clone().into_bytes()))
        .send()
        .await
        .unwrap_or_else(|error| {
            panic!(
                "uploading {}: {}",
                file.key,
                aws_sdk_s3::error::DisplayErrorContext(&error)
            )
        });
}

/// `crmbet etl` with the AWS environment of `endpoint` and nothing else from the caller's
/// AWS configuration.
fn etl_command(endpoint: &str, database: &Path, warehouse: &Path, lake: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_crmbet"));
    for (name, _) in std::env::vars() {
        if name.starts_with("AWS_") || name == "CRMBET_S3_FORCE_PATH_STYLE" {
            command.env_remove(name);
        }
    }
    let no_profile = warehouse.join("no-aws-profile");
    command
        .args(["etl", "--lake", lake, "--json"])
        .env("DATABASE_URL", sqlite_url(database))
        .env("CRMBET_WAREHOUSE_DIR", warehouse)
        .env("CRMBET_LOG", "warn")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_CONFIG_FILE", &no_profile)
        .env("AWS_SHARED_CREDENTIALS_FILE", &no_profile)
        .env("AWS_EC2_METADATA_DISABLED", "true");
    command
}

fn sqlite_url(database: &Path) -> String {
    format!("sqlite://{}?mode=rwc", database.display())
}

fn summary_of(output: &Output) -> serde_json::Value {
    assert_eq!(
        output.status.code(),
        Some(0),
        "crmbet etl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "crmbet etl printed no JSON ({error}): {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// The `player_features` rows of one run, by user id, as JSON objects without the run id.
async fn features_of_run(database: &Path, run_id: i64) -> Vec<serde_json::Value> {
    let connection = Database::connect(sqlite_url(database)).await.unwrap();
    let mut rows = player_features::Entity::find()
        .filter(player_features::Column::EtlRunId.eq(run_id))
        .order_by_asc(player_features::Column::UserId)
        .into_json()
        .all(&connection)
        .await
        .unwrap();
    for row in &mut rows {
        row.as_object_mut().unwrap().remove("etl_run_id");
    }
    rows
}

/// Every column equal; numbers within 1e-12 relative (sums over differently split warehouse
/// files may differ in the last bits).
fn assert_same_features(incremental: &[serde_json::Value], full: &[serde_json::Value]) {
    assert_eq!(incremental.len(), full.len(), "players");
    for (left, right) in incremental.iter().zip(full) {
        let player = &left["user_id"];
        let left_columns = left.as_object().unwrap();
        assert_eq!(
            left_columns.len(),
            right.as_object().unwrap().len(),
            "{player}: columns"
        );
        for (column, left_value) in left_columns {
            let right_value = &right[column];
            match (left_value.as_f64(), right_value.as_f64()) {
                (Some(left_number), Some(right_number)) => assert!(
                    (left_number - right_number).abs() <= 1e-12 * left_number.abs().max(1.0),
                    "{player} {column}: incremental {left_number}, full {right_number}"
                ),
                _ => assert_eq!(left_value, right_value, "{player} {column}"),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_lake_loads_only_the_new_object_and_matches_a_full_recompute() {
    let server = MotoServer::start().await;
    let client = server.client();
    client.create_bucket().bucket(BUCKET).send().await.unwrap();
    let files = generate_lake(
        5,
        &[
            ("transactions/dt=2026-06-01/part-0.csv", 400),
            ("transactions/dt=2026-06-01/part-1.csv", 400),
            ("transactions/dt=2026-06-02/part-0.ndjson", 400),
            ("transactions/dt=2026-06-03/part-0.csv", 400),
            // Uploaded after the first run.
            ("transactions/dt=2026-06-04/part-0.csv", 300),
        ],
        80,
    );
    let (new_file, first_files) = files.split_last().unwrap();
    for file in first_files {
        upload(&client, file).await;
    }
    // Beside the lake: a Spark marker (hidden) and an object outside transactions/.
    for (key, contents) in [
        ("transactions/_SUCCESS", ""),
        ("other/ignored.csv", "not read"),
    ] {
        let marker = LakeFile {
            key: key.to_owned(),
            contents: contents.to_owned(),
        };
        upload(&client, &marker).await;
    }

    let folder = tempfile::tempdir().unwrap();
    let database = folder.path().join("incremental.db");
    let warehouse = folder.path().join("warehouse");
    let first = summary_of(
        &etl_command(&server.endpoint, &database, &warehouse, LAKE_URL)
            .output()
            .unwrap(),
    );
    assert_eq!(first["objects_read"], 4, "{first}");
    assert_eq!(first["objects_failed"], 0, "{first}");
    assert_eq!(first["rows_read"], 1600, "{first}");
    assert!(first["rows_quarantined"].as_u64().unwrap() > 0, "{first}");
    assert!(first["duplicates"].as_u64().unwrap() > 0, "{first}");

    upload(&client, new_file).await;
    let second = summary_of(
        &etl_command(&server.endpoint, &database, &warehouse, LAKE_URL)
            .output()
            .unwrap(),
    );
    assert_eq!(second["objects_read"], 1, "{second}");
    assert_eq!(second["objects_already_loaded"], 4, "{second}");
    assert_eq!(second["rows_read"], 300, "{second}");

    // The new object's broken rows are quarantined under its key (relative to the lake).
    let connection = Database::connect(sqlite_url(&database)).await.unwrap();
    let second_run_id = second["run_id"].as_i64().unwrap();
    let quarantined = quarantine::Entity::find()
        .filter(quarantine::Column::EtlRunId.eq(second_run_id))
        .all(&connection)
        .await
        .unwrap();
    assert_eq!(
        quarantined.len() as u64,
        second["rows_quarantined"].as_u64().unwrap()
    );
    assert!(!quarantined.is_empty());
    assert!(
        quarantined
            .iter()
            .all(|row| row.source_object == new_file.key),
        "{:?}",
        quarantined.first()
    );

    // A full recompute from scratch into another database and warehouse.
    let full_database = folder.path().join("full.db");
    let full_warehouse = folder.path().join("full-warehouse");
    let full = summary_of(
        &etl_command(&server.endpoint, &full_database, &full_warehouse, LAKE_URL)
            .arg("--full")
            .output()
            .unwrap(),
    );
    assert_eq!(full["objects_read"], 5, "{full}");
    assert_eq!(full["players"], second["players"], "{full} {second}");

    let incremental_features = features_of_run(&database, second_run_id).await;
    let full_features = features_of_run(&full_database, full["run_id"].as_i64().unwrap()).await;
    assert_eq!(
        incremental_features.len() as u64,
        full["players"].as_u64().unwrap()
    );
    assert_same_features(&incremental_features, &full_features);
}

fn assert_fatal(output: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(expected),
        "expected {expected:?} in: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_bucket_exits_1_and_names_the_bucket() {
    let server = MotoServer::start().await;
    let folder = tempfile::tempdir().unwrap();
    let output = etl_command(
        &server.endpoint,
        &folder.path().join("crmbet.db"),
        &folder.path().join("warehouse"),
        "s3://no-such-bucket/lake",
    )
    .output()
    .unwrap();
    assert_fatal(
        &output,
        "bucket no-such-bucket does not exist; check the --lake URL",
    );
}

#[test]
fn missing_credentials_exit_1_and_say_what_to_set() {
    let folder = tempfile::tempdir().unwrap();
    let output = etl_command(
        "http://127.0.0.1:9",
        &folder.path().join("crmbet.db"),
        &folder.path().join("warehouse"),
        LAKE_URL,
    )
    .env_remove("AWS_ACCESS_KEY_ID")
    .env_remove("AWS_SECRET_ACCESS_KEY")
    .output()
    .unwrap();
    assert_fatal(
        &output,
        "no AWS credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or a profile",
    );
}

#[test]
fn unreachable_endpoint_exits_1_and_names_the_endpoint() {
    let folder = tempfile::tempdir().unwrap();
    // A port that was free a moment ago: nothing listens there.
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let output = etl_command(
        &endpoint,
        &folder.path().join("crmbet.db"),
        &folder.path().join("warehouse"),
        LAKE_URL,
    )
    .output()
    .unwrap();
    assert_fatal(
        &output,
        &format!("cannot reach the S3 endpoint URL {endpoint}"),
    );
    assert_fatal(&output, "check AWS_ENDPOINT_URL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_lake_players_snapshot_restricts_players() {
    let server = MotoServer::start().await;
    let client = server.client();
    client.create_bucket().bucket(BUCKET).send().await.unwrap();
    let mut files = generate_lake(9, &[("transactions/dt=2026-06-01/part-0.csv", 50)], 10);
    files.extend([
        LakeFile {
            key: "players/part-0.csv".to_owned(),
            contents: "user_id,self_excluded,blocked\ns3-a,yes,no\ns3-b,0,maybe\n".to_owned(),
        },
        LakeFile {
            key: "players/part-1.ndjson".to_owned(),
            contents: "{\"user_id\":\"s3-c\",\"marketing_opt_out\":true}\n".to_owned(),
        },
        LakeFile {
            key: "players/_SUCCESS".to_owned(),
            contents: String::new(),
        },
    ]);
    for file in &files {
        upload(&client, file).await;
    }
    let folder = tempfile::tempdir().unwrap();
    let database = folder.path().join("crmbet.db");
    let warehouse = folder.path().join("warehouse");

    let output = etl_command(&server.endpoint, &database, &warehouse, LAKE_URL)
        .output()
        .unwrap();

    let summary = summary_of(&output);
    let restrictions = &summary["restrictions"];
    assert_eq!(restrictions["objects_read"], 2, "{summary}");
    assert_eq!(restrictions["rows_read"], 3, "{summary}");
    assert_eq!(
        restrictions["rejected_by_rule"]["blocked_invalid"], 1,
        "{summary}"
    );
    assert_eq!(restrictions["players_restricted"], 2, "{summary}");
    assert_eq!(restrictions["players_updated"], 2, "{summary}");
    let store = crmbet_store::Store::connect(&sqlite_url(&database))
        .await
        .unwrap();
    let mut restricted: Vec<(String, bool, bool, bool, String)> = store
        .restricted_players()
        .await
        .unwrap()
        .into_iter()
        .map(|row| {
            (
                row.user_id,
                row.self_excluded,
                row.blocked,
                row.marketing_opt_out,
                row.source,
            )
        })
        .collect();
    restricted.sort();
    assert_eq!(
        restricted,
        [
            ("s3-a".to_owned(), true, false, false, "lake".to_owned()),
            ("s3-c".to_owned(), false, false, true, "lake".to_owned()),
        ]
    );
}
