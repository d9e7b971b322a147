//! Two `crmbet serve` processes on one PostgreSQL database, one Redis and one Smartico, as
//! one service: they share rate limits, see each other's model activation within a second,
//! split campaign delivery so each message goes out once, and one of them restarts under
//! load (SIGTERM with a drain) without losing an accepted request or a campaign message.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crmbet_store::throwaway_postgres::ThrowawayPostgres;
use serde_json::{Value, json};
use tokio::sync::RwLock;

use crate::campaign::{
    WEBHOOK_SECRET, assert_delivered_exactly, clusters, create_campaign, event, groups, launch,
    number, wait_for_delivery, webhook,
};
use crate::server::RunningServer;
use crate::smartico_stand_in::{Faults, SmarticoStandIn};

const PLAYERS: usize = 800;
/// The per-IP budget of GetUserSegment calls both instances share.
const SEGMENT_BUDGET: u64 = 30;
const DRAIN: Duration = Duration::from_secs(2);

/// The settings both instances run with: the same database, Redis key space, token secret
/// and Smartico.
fn shared_environment(stand_in: &SmarticoStandIn, key_prefix: &str) -> Vec<(&'static str, String)> {
    let redis_url = std::env::var("CRMBET_TEST_REDIS_URL").unwrap_or_else(|_| {
        panic!("CRMBET_TEST_REDIS_URL is not set: scripts/test.sh starts Redis and sets it; this test does not skip")
    });
    let mut environment = stand_in.environment();
    environment.extend([
        ("REDIS_URL", redis_url),
        ("CRMBET_REDIS_KEY_PREFIX", key_prefix.to_owned()),
        (
            "CRMBET_JWT_SECRET",
            "the two instances' shared token secret, 32+ bytes".to_owned(),
        ),
        ("CRMBET_WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned()),
        // The test tells its phases apart by client address, through X-Forwarded-For.
        ("CRMBET_TRUSTED_PROXIES", "127.0.0.1".to_owned()),
        (
            "CRMBET_RATE_LIMIT_CLASSES",
            format!("segment={SEGMENT_BUDGET}/1000000"),
        ),
        ("CRMBET_RATE_LIMIT_PER_HOUR", "10000000".to_owned()),
        (
            "CRMBET_RATE_LIMIT_PER_PRINCIPAL_PER_HOUR",
            "10000000".to_owned(),
        ),
        ("CRMBET_FREQUENCY_CAP", "0".to_owned()),
        // Small batches: delivery takes long enough to be under way during the restart.
        ("CRMBET_SMARTICO_BATCH_EVENTS", "5".to_owned()),
        ("CRMBET_SHUTDOWN_DRAIN_SECONDS", DRAIN.as_secs().to_string()),
    ]);
    environment
}

/// A REST client with the admin's token that says it calls for `client_address`.
async fn client_as(server: &RunningServer, client_address: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let token = format!("Bearer {}", server.access_token().await);
    headers.insert(reqwest::header::AUTHORIZATION, token.parse().unwrap());
    headers.insert("x-forwarded-for", client_address.parse().unwrap());
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

async fn get_json(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let response = client.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The model whose clusters `url` lists.
async fn listed_model(client: &reqwest::Client, url: &str) -> i64 {
    let (status, body) = get_json(client, &format!("{url}/api/v1/clusters")).await;
    assert_eq!(status, 200, "{body}");
    number(&body["model_id"])
}

/// Trains a second model on `url` without activating it; returns its id.
async fn train_another_model(client: &reqwest::Client, url: &str) -> i64 {
    let response = client
        .post(format!("{url}/api/v1/training/runs"))
        .json(&json!({"algorithm": "ALGORITHM_KMEANS", "k": 3, "seed": 11, "activate": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let run_id = number(&response.json::<Value>().await.unwrap()["run_id"]);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, body) = get_json(client, &format!("{url}/api/v1/training/runs/{run_id}")).await;
        match body["run"]["status"].as_str() {
            Some("TRAINING_STATUS_SUCCEEDED") => return number(&body["run"]["model_id"]),
            Some("TRAINING_STATUS_FAILED") => panic!("training failed: {body}"),
            _ => {}
        }
        assert!(Instant::now() < deadline, "training did not end: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A closed-loop load of list reads spread round-robin over the instances whose `/health`
/// answers 200, as a load balancer with active health checks would.
struct Load {
    targets: Arc<RwLock<Vec<String>>>,
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
    failures: Arc<std::sync::Mutex<Vec<String>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(client: reqwest::Client, instances: Arc<RwLock<Vec<String>>>) -> Self {
        let targets = Arc::new(RwLock::new(Vec::<String>::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        // The health follower: every 100 ms, the instances in rotation.
        tasks.push(tokio::spawn({
            let (targets, stop) = (Arc::clone(&targets), Arc::clone(&stop));
            let probe = reqwest::Client::builder()
                .timeout(Duration::from_millis(500))
                .build()
                .unwrap();
            async move {
                while !stop.load(Ordering::Relaxed) {
                    let mut healthy = Vec::new();
                    for url in instances.read().await.iter() {
                        let answer = probe.get(format!("{url}/health")).send().await;
                        if answer.is_ok_and(|answer| answer.status() == 200) {
                            healthy.push(url.clone());
                        }
                    }
                    *targets.write().await = healthy;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }));
        for worker in 0..6u64 {
            let client = client.clone();
            let (targets, stop) = (Arc::clone(&targets), Arc::clone(&stop));
            let (answered, failures) = (Arc::clone(&answered), Arc::clone(&failures));
            tasks.push(tokio::spawn(async move {
                let mut turn = worker;
                while !stop.load(Ordering::Relaxed) {
                    let target = {
                        let targets = targets.read().await;
                        if targets.is_empty() {
                            None
                        } else {
                            Some(targets[(turn as usize) % targets.len()].clone())
                        }
                    };
                    turn += 1;
                    let Some(target) = target else {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    };
                    match client.get(format!("{target}/api/v1/clusters")).send().await {
                        Ok(response) if response.status() == 200 => {
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(response) => failures
                            .lock()
                            .unwrap()
                            .push(format!("{target}: HTTP {}", response.status())),
                        Err(error) => failures.lock().unwrap().push(format!("{target}: {error}")),
                    }
                }
            }));
        }
        Self {
            targets,
            stop,
            answered,
            failures,
            tasks,
        }
    }

    async fn in_rotation(&self) -> Vec<String> {
        self.targets.read().await.clone()
    }

    async fn finish(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.unwrap();
        }
        let failures = self.failures.lock().unwrap().clone();
        (self.answered.load(Ordering::Relaxed), failures)
    }
}

/// Waits until `check` holds, for at most `within`.
async fn wait_until<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "{what} within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A campaign on the largest segment, created and launched through `url`; its treatment
/// group.
async fn launch_campaign(
    client: &reqwest::Client,
    url: &str,
    database_url: &str,
    name: &str,
) -> (i64, std::collections::BTreeSet<String>) {
    let (target, _) = clusters(client, url).await[0];
    let campaign = create_campaign(
        client,
        url,
        json!({
            "name": name, "campaign_type": "CAMPAIGN_TYPE_RELOAD_BONUS",
            "channel": "CHANNEL_PUSH", "cluster_ids": [target], "holdout_share": 0.2,
            "message_template": "reload-25",
        }),
    )
    .await;
    let campaign_id = number(&campaign["campaign_id"]);
    launch(client, url, campaign_id).await;
    let (treatment, _) = groups(database_url, campaign_id).await;
    assert!(!treatment.is_empty());
    (campaign_id, treatment)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_limits_models_and_delivery_and_restart_under_load() {
    let database = ThrowawayPostgres::create("crmbet_two_instances").await;
    let stand_in = SmarticoStandIn::start(Faults {
        delay: Duration::from_millis(20),
        ..Faults::default()
    })
    .await;
    let key_prefix = format!(
        "crmbet-e2e-two:{}:{}:",
        std::process::id(),
        chrono::Utc::now().timestamp_micros()
    );
    let environment = shared_environment(&stand_in, &key_prefix);
    let a = RunningServer::start_on_database(PLAYERS, &database.url, &environment);
    let b = RunningServer::restart(
        database.url.clone(),
        a.admin.clone(),
        tempfile::tempdir().unwrap(),
        &environment,
    );
    let (a_url, b_url) = (a.url(), b.url());

    // Shared limits: 60 segment reads from one client address, alternating between the
    // instances, get exactly the budget between them.
    let limited = client_as(&a, "10.20.0.1").await;
    let player =
        crate::campaign::members(&limited, &a_url, clusters(&limited, &a_url).await[0].0, 1)
            .await
            .remove(0);
    let mut admitted = 0;
    let mut refused = 0;
    for call in 0..(2 * SEGMENT_BUDGET) {
        let url = if call % 2 == 0 { &a_url } else { &b_url };
        let (status, body) =
            get_json(&limited, &format!("{url}/api/v1/user/{player}/segment")).await;
        match status {
            200 => admitted += 1,
            429 => refused += 1,
            other => panic!("segment read {call}: HTTP {other} {body}"),
        }
    }
    assert_eq!(
        (admitted, refused),
        (SEGMENT_BUDGET, SEGMENT_BUDGET),
        "the two instances must spend one shared budget"
    );

    // A model activated on A is what B lists within a second.
    let client = client_as(&a, "10.20.0.2").await;
    let first_model = listed_model(&client, &b_url).await;
    let second_model = train_another_model(&client, &a_url).await;
    assert_ne!(first_model, second_model);
    assert_eq!(listed_model(&client, &b_url).await, first_model);
    let response = client
        .post(format!("{a_url}/api/v1/models/{second_model}/activate"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let activated = Instant::now();
    while listed_model(&client, &b_url).await != second_model {
        assert!(
            activated.elapsed() < Duration::from_millis(1200),
            "B still lists model {first_model} {:?} after the activation on A",
            activated.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "B listed the model activated on A after {:?}",
        activated.elapsed()
    );

    // A campaign launched on A goes out once, whichever instance delivers it; a webhook
    // received by B counts in the results A reports.
    let (first_campaign, first_treatment) =
        launch_campaign(&client, &a_url, &database.url, "Launched on A").await;
    wait_for_delivery(
        &stand_in,
        first_campaign,
        first_treatment.len(),
        Duration::from_secs(120),
    )
    .await;
    assert_delivered_exactly(&stand_in, first_campaign, &first_treatment);
    let converted_player = first_treatment.iter().next().unwrap();
    let (status, answer) = webhook(
        &b_url,
        &event(
            "two-instances-c1",
            "converted",
            first_campaign,
            converted_player,
            Some(40.0),
        ),
        true,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let (_, results) = get_json(
        &client,
        &format!("{a_url}/api/v1/campaigns/{first_campaign}/results"),
    )
    .await;
    assert_eq!(number(&results["treatment"]["converted"]), 1, "{results}");

    // Rolling restart of B under load: a campaign is being delivered by both, B is told to
    // stop, drains, stops, and comes back; no request and no message is lost or doubled.
    let instances = Arc::new(RwLock::new(vec![a_url.clone(), b_url.clone()]));
    let load = Load::start(client_as(&a, "10.20.0.3").await, Arc::clone(&instances));
    let rotation = &load;
    wait_until(
        Duration::from_secs(10),
        "both instances in rotation",
        || async move { rotation.in_rotation().await.len() == 2 },
    )
    .await;
    let (second_campaign, second_treatment) = launch_campaign(
        &client,
        &a_url,
        &database.url,
        "Delivered through a restart",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopping = tokio::task::spawn_blocking(move || b.terminate());
    let only_a = std::slice::from_ref(&a_url);
    wait_until(
        Duration::from_secs(2),
        "B left the rotation after SIGTERM",
        || async move { rotation.in_rotation().await == only_a },
    )
    .await;
    let exit = stopping.await.unwrap();
    assert!(exit.success(), "B exited with {exit}");
    let b = RunningServer::restart(
        database.url.clone(),
        a.admin.clone(),
        tempfile::tempdir().unwrap(),
        &environment,
    );
    let b_url = b.url();
    instances.write().await[1] = b_url.clone();
    wait_until(
        Duration::from_secs(10),
        "the new B in rotation",
        || async move { rotation.in_rotation().await.len() == 2 },
    )
    .await;
    let (third_campaign, third_treatment) =
        launch_campaign(&client, &b_url, &database.url, "Launched on the new B").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (answered, failures) = load.finish().await;
    println!("load during the restart: {answered} answers, failures {failures:?}");
    assert!(answered > 100, "the load generator barely ran: {answered}");
    assert!(failures.is_empty(), "requests lost: {failures:?}");

    for (campaign, treatment) in [
        (second_campaign, &second_treatment),
        (third_campaign, &third_treatment),
    ] {
        wait_for_delivery(
            &stand_in,
            campaign,
            treatment.len(),
            Duration::from_secs(120),
        )
        .await;
        assert_delivered_exactly(&stand_in, campaign, treatment);
    }
    let (_, _, duplicates, bad_keys) = stand_in.counters();
    assert_eq!(
        (duplicates, bad_keys),
        (0, 0),
        "no message reached Smartico twice"
    );
}
