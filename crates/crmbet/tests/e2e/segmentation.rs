//! The segmentation acceptance tests: on lakes from the Python peer's generator (seeds the
//! model was never tuned on), `crmbet etl` then `crmbet train` must recover the planted
//! archetypes (adjusted Rand index ≥ 0.9 against `truth/players.csv`), with a silhouette at
//! least that of the true labelling minus 0.02, name at least 4 archetypes as a marketer
//! knows them, and show no whale segment (those lakes have no tail). On our own generator's
//! lakes with a whale tail of 0.3-0.5%, at least 90% of the whales must share one segment
//! holding under 2% of the other players, named "VIP · High Roller", while the archetypes
//! keep ARI ≥ 0.9.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::NaiveDate;
use crmbet_etl::{SyntheticLakeOptions, write_synthetic_lake};
use crmbet_ml::{TrainOptions, adjusted_rand_index, silhouette_of};
use crmbet_store::Store;
use sea_orm::{ConnectionTrait, Database, Statement};

/// Lake seeds: none of them is the seed 7 the transform and the selection rule were
/// measured on.
const SEEDS: [u64; 3] = [11, 29, 53];
const PLAYERS: usize = 6_000;
const TRANSACTIONS: usize = 300_000;
/// Seeds and whale shares of the lakes with a tail (our generator; never tuned on).
const WHALE_LAKES: [(u64, f64); 3] = [(61, 0.003), (67, 0.004), (71, 0.005)];
/// The name of the whale segment.
const WHALE_NAME: &str = "VIP · High Roller";

/// The name a marketer expects for each planted archetype (the peer's key, then ours).
const EXPECTED_NAMES: [(&str, &str); 7] = [
    ("casual_slots", "Casual Slots"),
    ("weekend_warrior", "Weekend Warrior"),
    ("sports_bettor_pro", "Sports Betting Pro"),
    ("night_owl_casino", "Night Owl Casino"),
    ("high_roller_crash", "High Roller Crash"),
    ("vip_live_dealer", "VIP Live Dealer"),
    ("sports_betting_pro", "Sports Betting Pro"),
];

fn peer_folder() -> PathBuf {
    match std::env::var_os("CRMBET_PEER_DIR") {
        Some(folder) => PathBuf::from(folder),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/bench/peer"),
    }
}

fn peer_python() -> String {
    std::env::var("CRMBET_PEER_PYTHON").unwrap_or_else(|_| {
        panic!(
            "CRMBET_PEER_PYTHON is not set: scripts/test.sh installs the peer's Python \
             (tests/python/peer-requirements.txt) and sets it; this test does not skip"
        )
    })
}

fn generate_lake(lake: &Path, seed: u64) {
    let status = Command::new(peer_python())
        .arg(peer_folder().join("gen_lake.py"))
        .arg("--out")
        .arg(lake)
        .args([
            "--players",
            &PLAYERS.to_string(),
            "--transactions",
            &TRANSACTIONS.to_string(),
            "--seed",
            &seed.to_string(),
            "--dirty",
            "0.01",
        ])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("running gen_lake.py");
    assert!(status.success(), "gen_lake.py failed: {status}");
}

fn crmbet(database_url: &str, warehouse: &Path, arguments: &[&str]) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_crmbet"))
        .args(arguments)
        .env("DATABASE_URL", database_url)
        .env("CRMBET_WAREHOUSE_DIR", warehouse)
        .env("CRMBET_LOG", "warn")
        .output()
        .expect("running crmbet");
    assert!(
        output.status.success(),
        "crmbet {arguments:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "crmbet {arguments:?} printed no JSON ({error}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

fn truth(lake: &Path) -> HashMap<String, String> {
    let text = std::fs::read_to_string(lake.join("truth/players.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("user_id,archetype"));
    lines
        .map(|line| {
            let (user, archetype) = line.split_once(',').unwrap();
            (user.to_owned(), archetype.to_owned())
        })
        .collect()
}

/// Each stored player's cluster id under the model (outliers keep their nearest cluster).
async fn segments(database_url: &str, model_id: i64) -> HashMap<String, i64> {
    let connection = Database::connect(database_url).await.unwrap();
    let rows = connection
        .query_all_raw(Statement::from_string(
            connection.get_database_backend(),
            format!("SELECT user_id, cluster_id FROM player_segments WHERE model_id = {model_id}"),
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|row| {
            (
                row.try_get::<String>("", "user_id").unwrap(),
                row.try_get::<i64>("", "cluster_id").unwrap(),
            )
        })
        .collect()
}

/// A lake of our own generator with `whale_share` of whales.
fn generate_whale_lake(lake: &Path, seed: u64, whale_share: f64) -> HashSet<String> {
    let end_date = NaiveDate::from_ymd_opt(2026, 6, 30).unwrap();
    let options = SyntheticLakeOptions {
        seed,
        dirty_fraction: 0.01,
        whale_share,
        ..SyntheticLakeOptions::new(PLAYERS, TRANSACTIONS, end_date)
    };
    let summary = write_synthetic_lake(lake, &options, &mut |_| {}).unwrap();
    let text = std::fs::read_to_string(lake.join("truth/whales.csv")).unwrap();
    let whales: HashSet<String> = text.lines().skip(1).map(str::to_owned).collect();
    assert_eq!(whales.len(), summary.whales);
    whales
}

/// What a lake's ETL and training gave, against its truth.
struct Trained {
    line: String,
    /// Cluster id to name.
    names: HashMap<i64, String>,
    /// Player to cluster id.
    assigned: HashMap<String, i64>,
}

async fn check_lake(seed: u64) -> String {
    let directory = tempfile::tempdir().unwrap();
    let lake = directory.path().join("lake");
    generate_lake(&lake, seed);
    let trained = train_lake(directory.path(), &lake, &format!("peer seed {seed}")).await;
    assert!(
        !trained.names.values().any(|name| name == WHALE_NAME),
        "{}: a whale segment on a lake without a tail",
        trained.line
    );
    trained.line
}

async fn check_whale_lake(seed: u64, whale_share: f64) -> String {
    let directory = tempfile::tempdir().unwrap();
    let lake = directory.path().join("lake");
    let whales = generate_whale_lake(&lake, seed, whale_share);
    let label = format!("whale lake seed {seed}, {} whales", whales.len());
    let trained = train_lake(directory.path(), &lake, &label).await;
    let mut whales_per_cluster: HashMap<i64, usize> = HashMap::new();
    for whale in &whales {
        *whales_per_cluster
            .entry(trained.assigned[whale])
            .or_default() += 1;
    }
    let (whale_cluster, held) = whales_per_cluster
        .iter()
        .max_by_key(|(cluster, count)| (**count, -**cluster))
        .map(|(cluster, count)| (*cluster, *count))
        .unwrap();
    let others = trained.assigned.len() - whales.len();
    let others_inside = trained
        .assigned
        .iter()
        .filter(|(user, cluster)| **cluster == whale_cluster && !whales.contains(*user))
        .count();
    let line = format!(
        "{}; {held} of {} whales in \"{}\" with {others_inside} of {others} others",
        trained.line,
        whales.len(),
        trained.names[&whale_cluster]
    );
    eprintln!("{line}");
    assert!(
        held as f64 >= 0.9 * whales.len() as f64,
        "{line}: whales scattered"
    );
    assert!(
        (others_inside as f64) < 0.02 * others as f64,
        "{line}: the whale segment holds too many others"
    );
    assert_eq!(trained.names[&whale_cluster], WHALE_NAME, "{line}");
    line
}

/// Loads `lake` into a fresh SQLite database under `directory`, trains with seed 0, and
/// checks the archetypes' ARI, the silhouette and the names.
async fn train_lake(directory: &Path, lake: &Path, label: &str) -> Trained {
    let database_url = format!(
        "sqlite://{}?mode=rwc",
        directory.join("crmbet.db").display()
    );
    let warehouse = directory.join("warehouse");
    let lake_argument = lake.to_string_lossy().into_owned();
    let etl = crmbet(
        &database_url,
        &warehouse,
        &["etl", "--lake", &lake_argument, "--json"],
    );
    let planted = truth(lake);
    assert_eq!(etl["players"], planted.len(), "{etl}");

    let trained = crmbet(
        &database_url,
        &warehouse,
        &["train", "--seed", "0", "--json"],
    );
    let model_id = trained["model_id"].as_i64().unwrap();
    let names: HashMap<i64, String> = trained["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|cluster| {
            (
                cluster["id"].as_i64().unwrap(),
                cluster["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let assigned = segments(&database_url, model_id).await;
    assert_eq!(assigned.len(), planted.len(), "every player gets a segment");

    // The same players in the same order on both sides.
    let mut users: Vec<&String> = planted.keys().collect();
    users.sort();
    let ours: Vec<i64> = users.iter().map(|user| assigned[*user]).collect();
    let theirs: Vec<&str> = users.iter().map(|user| planted[*user].as_str()).collect();
    let agreement = adjusted_rand_index(&ours, &theirs);

    // Silhouette of the truth on the same matrix and sample the trainer measured.
    let store = Store::connect(&database_url).await.unwrap();
    let run = store.latest_etl_run_with_features().await.unwrap().unwrap();
    let table = crmbet_app::feature_table(store.feature_rows(run).await.unwrap()).unwrap();
    let archetype_index: BTreeMap<&str, usize> = EXPECTED_NAMES
        .iter()
        .enumerate()
        .map(|(index, (archetype, _))| (*archetype, index))
        .collect();
    let truth_labels: Vec<Option<usize>> = table
        .player_ids
        .iter()
        .map(|user| Some(archetype_index[planted[user].as_str()]))
        .collect();
    let options = TrainOptions {
        seed: 0,
        ..TrainOptions::default()
    };
    let truth_silhouette = silhouette_of(&table, &truth_labels, &options).unwrap();
    let silhouette = trained["silhouette"].as_f64().unwrap();

    // A cluster is named right when its name is the one expected for its majority archetype.
    let mut majority: HashMap<i64, HashMap<&str, usize>> = HashMap::new();
    for (cluster, archetype) in ours.iter().zip(&theirs) {
        *majority
            .entry(*cluster)
            .or_default()
            .entry(archetype)
            .or_default() += 1;
    }
    let expected: HashMap<&str, &str> = EXPECTED_NAMES.into_iter().collect();
    let mut named_right = Vec::new();
    for (cluster, counts) in &majority {
        let (archetype, _) = counts.iter().max_by_key(|(_, count)| **count).unwrap();
        if names[cluster] == expected[archetype] && !named_right.contains(archetype) {
            named_right.push(*archetype);
        }
    }

    let line = format!(
        "{label}: {} k = {}, ARI {agreement:.3}, silhouette {silhouette:.4} (truth \
         {truth_silhouette:.4}), named right: {named_right:?}, names {:?}",
        trained["algorithm"],
        trained["k"],
        names.values().collect::<Vec<_>>()
    );
    eprintln!("{line}");
    assert!(agreement >= 0.9, "{line}: ARI below 0.9");
    assert!(
        silhouette >= truth_silhouette - 0.02,
        "{line}: silhouette below the truth's minus 0.02"
    );
    assert!(
        named_right.len() >= 4,
        "{line}: fewer than 4 archetypes named right"
    );
    Trained {
        line,
        names,
        assigned,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn trained_segments_recover_the_planted_archetypes_on_unseen_seeds() {
    for seed in SEEDS {
        check_lake(seed).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn whales_get_their_own_segment_and_the_archetypes_hold() {
    for (seed, whale_share) in WHALE_LAKES {
        check_whale_lake(seed, whale_share).await;
    }
}
