//! Campaigns end to end on the real binary with a local stand-in for Smartico: create on a
//! trained segment, restrict players (through the API and from the lake's `players/`),
//! launch, delivery to the stand-in (exactly once per treatment player, never to control or
//! excluded players), Smartico's webhooks back, and results whose uplift follows from them. Then the faults: Smartico failing for a while,
//! the process killed mid-delivery, the same webhook three times, bad webhooks.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crmbet_core::CampaignId;
use crmbet_server::webhook_auth::sign;
use crmbet_store::Store;
use serde_json::{Value, json};

use crate::server::RunningServer;
use crate::smartico_stand_in::{Faults, SmarticoStandIn};

pub(crate) const WEBHOOK_SECRET: &str = "the e2e webhook secret, long enough";
const PLAYERS: usize = 1500;

/// The environment of a server that delivers to `stand_in` with `extra` settings.
pub(crate) fn environment(
    stand_in: &SmarticoStandIn,
    extra: &[(&'static str, String)],
) -> Vec<(&'static str, String)> {
    let mut environment = stand_in.environment();
    environment.extend([
        ("CRMBET_WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned()),
        ("CRMBET_RATE_LIMIT_PER_HOUR", "1000000".to_owned()),
        (
            "CRMBET_RATE_LIMIT_PER_PRINCIPAL_PER_HOUR",
            "1000000".to_owned(),
        ),
        ("CRMBET_FREQUENCY_CAP", "1".to_owned()),
        ("CRMBET_SMARTICO_BATCH_EVENTS", "50".to_owned()),
    ]);
    environment.extend(extra.iter().cloned());
    environment
}

/// The clusters of the active model, largest first: (id, size).
pub(crate) async fn clusters(client: &reqwest::Client, url: &str) -> Vec<(i64, i64)> {
    let body: Value = client
        .get(format!("{url}/api/v1/clusters"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut clusters: Vec<(i64, i64)> = body["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|cluster| {
            let id = cluster["cluster_id"].as_str().map_or_else(
                || cluster["cluster_id"].as_i64().unwrap(),
                |text| text.parse().unwrap(),
            );
            let size = cluster["size"].as_str().map_or_else(
                || cluster["size"].as_i64().unwrap_or_default(),
                |text| text.parse().unwrap_or_default(),
            );
            (id, size)
        })
        .collect();
    clusters.sort_by_key(|(_, size)| -size);
    clusters
}

/// Some members of a cluster.
pub(crate) async fn members(
    client: &reqwest::Client,
    url: &str,
    cluster_id: i64,
    count: usize,
) -> Vec<String> {
    let body: Value = client
        .get(format!(
            "{url}/api/v1/clusters/{cluster_id}/users?page_size={count}"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|user| user["user_id"].as_str().unwrap().to_owned())
        .collect()
}

/// POSTs JSON and returns the status and the JSON answer.
pub(crate) async fn post(client: &reqwest::Client, url: &str, body: Value) -> (u16, Value) {
    let response = client.post(url).json(&body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

pub(crate) async fn create_campaign(client: &reqwest::Client, url: &str, body: Value) -> Value {
    let (status, answer) = post(client, &format!("{url}/api/v1/campaigns"), body).await;
    assert_eq!(status, 200, "{answer}");
    answer["campaign"].clone()
}

pub(crate) async fn launch(client: &reqwest::Client, url: &str, campaign_id: i64) -> Value {
    let started = Instant::now();
    let (status, answer) = post(
        client,
        &format!("{url}/api/v1/campaigns/{campaign_id}/launch"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    println!(
        "launch of campaign {campaign_id} answered in {:?}",
        started.elapsed()
    );
    answer["campaign"].clone()
}

pub(crate) fn number(value: &Value) -> i64 {
    value
        .as_i64()
        .or_else(|| value.as_str().and_then(|text| text.parse().ok()))
        .unwrap_or_default()
}

/// The treatment and control players of a campaign, from the database.
pub(crate) async fn groups(
    database_url: &str,
    campaign_id: i64,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let store = Store::connect(database_url).await.unwrap();
    let targets = store
        .campaign_targets(CampaignId(campaign_id))
        .await
        .unwrap();
    let mut treatment = BTreeSet::new();
    let mut control = BTreeSet::new();
    for target in targets {
        if target.group_name == "treatment" {
            treatment.insert(target.user_id);
        } else {
            control.insert(target.user_id);
        }
    }
    (treatment, control)
}

/// Waits until the stand-in has accepted `expected` events of the campaign.
pub(crate) async fn wait_for_delivery(
    stand_in: &SmarticoStandIn,
    campaign_id: i64,
    expected: usize,
    within: Duration,
) {
    let prefix = format!("crmbet-c{campaign_id}-");
    let deadline = Instant::now() + within;
    loop {
        let delivered = stand_in.accepted_with_prefix(&prefix).len();
        if delivered >= expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {delivered} of {expected} events of campaign {campaign_id} reached the stand-in \
             within {within:?} (requests, refused, duplicates, bad keys: {:?})",
            stand_in.counters()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every treatment player exactly once, nobody else, for the campaign.
pub(crate) fn assert_delivered_exactly(
    stand_in: &SmarticoStandIn,
    campaign_id: i64,
    treatment: &BTreeSet<String>,
) {
    let prefix = format!("crmbet-c{campaign_id}-");
    let accepted = stand_in.accepted_with_prefix(&prefix);
    let players: BTreeSet<String> = accepted
        .keys()
        .map(|eid| eid.trim_start_matches(&prefix).to_owned())
        .collect();
    assert_eq!(
        &players, treatment,
        "the stand-in's players are exactly the treatment group"
    );
    assert!(accepted.values().all(|count| *count == 1));
}

/// Sends a webhook with the shared secret, or signed when `signed`.
pub(crate) async fn webhook(url: &str, body: &Value, signed: bool) -> (u16, Value) {
    let raw = serde_json::to_vec(body).unwrap();
    let request = reqwest::Client::new()
        .post(format!("{url}/api/v1/webhooks/smartico"))
        .header("content-type", "application/json");
    let request = if signed {
        let now = chrono::Utc::now().timestamp();
        request.header(
            "x-webhook-signature",
            format!("t={now},v1={}", sign(WEBHOOK_SECRET, now, &raw)),
        )
    } else {
        request.header("x-webhook-secret", WEBHOOK_SECRET)
    };
    let response = request.body(raw).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

pub(crate) fn event(
    event_id: &str,
    event_type: &str,
    campaign_id: i64,
    user_id: &str,
    amount: Option<f64>,
) -> Value {
    let mut body = json!({
        "event_id": event_id,
        "event_type": event_type,
        "campaign_id": campaign_id,
        "user_id": user_id,
        "occurred_at": "2026-12-06T10:00:00Z",
    });
    if let Some(amount) = amount {
        body["attributes"] = json!({ "amount": amount });
    }
    body
}

/// The whole marketer's flow on one server configuration (in-process queue or RabbitMQ).
async fn campaign_end_to_end(extra: &[(&'static str, String)]) {
    let stand_in = SmarticoStandIn::start(Faults::default()).await;
    let server = RunningServer::start_with_environment(PLAYERS, &environment(&stand_in, extra));
    let url = server.url();
    let client = server.rest_client().await;

    let clusters = clusters(&client, &url).await;
    assert!(clusters.len() >= 2, "{clusters:?}");
    let (target, _) = clusters[0];

    // Restricted players inside the target cluster.
    let inside = members(&client, &url, target, 40).await;
    let restricted = [
        (&inside[0], json!({"self_excluded": true})),
        (&inside[1], json!({"blocked": true})),
        (&inside[2], json!({"marketing_opt_out": true})),
    ];
    for (player, flags) in &restricted {
        let response = client
            .put(format!("{url}/api/v1/users/{player}/restrictions"))
            .json(flags)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }

    // An earlier campaign's treatment half of the cluster is at the frequency cap (1
    // campaign per window in this test).
    let earlier = create_campaign(
        &client,
        &url,
        json!({
            "name": "Earlier", "campaign_type": "CAMPAIGN_TYPE_CASHBACK",
            "channel": "CHANNEL_EMAIL", "cluster_ids": [target], "holdout_share": 0.5,
            "message_template": "cashback-1",
        }),
    )
    .await;
    let earlier_id = number(&earlier["campaign_id"]);
    let earlier = launch(&client, &url, earlier_id).await;
    let capped_expected = number(&earlier["treatment_count"]);
    let (earlier_treatment, _) = groups(&server.database_url, earlier_id).await;
    wait_for_delivery(
        &stand_in,
        earlier_id,
        earlier_treatment.len(),
        Duration::from_secs(60),
    )
    .await;

    let body = json!({
        "name": "Reload for the biggest segment", "campaign_type": "CAMPAIGN_TYPE_RELOAD_BONUS",
        "channel": "CHANNEL_PUSH", "cluster_ids": [target], "holdout_share": 0.2,
        "message_template": "reload-50", "request_id": "e2e-reload-1",
    });
    let campaign = create_campaign(&client, &url, body.clone()).await;
    let again = create_campaign(&client, &url, body).await;
    assert_eq!(
        again["campaign_id"], campaign["campaign_id"],
        "idempotent on request_id"
    );
    assert_eq!(campaign["status"], "CAMPAIGN_STATUS_DRAFT");
    let campaign_id = number(&campaign["campaign_id"]);

    let launched = launch(&client, &url, campaign_id).await;
    assert_eq!(launched["status"], "CAMPAIGN_STATUS_LAUNCHED");
    let exclusions = &launched["exclusions"];
    assert_eq!(number(&exclusions["self_excluded"]), 1, "{launched}");
    assert_eq!(number(&exclusions["blocked"]), 1, "{launched}");
    assert_eq!(number(&exclusions["opted_out"]), 1, "{launched}");
    // Restricted players of the earlier campaign's treatment are counted as restricted.
    let restricted_in_earlier = restricted
        .iter()
        .filter(|(player, _)| earlier_treatment.contains(*player))
        .count() as i64;
    assert_eq!(
        number(&exclusions["frequency_capped"]),
        capped_expected - restricted_in_earlier,
        "{launched}"
    );
    let relaunched = launch(&client, &url, campaign_id).await;
    assert_eq!(
        relaunched["treatment_count"], launched["treatment_count"],
        "launch is idempotent"
    );

    let (treatment, control) = groups(&server.database_url, campaign_id).await;
    assert_eq!(treatment.len() as i64, number(&launched["treatment_count"]));
    assert_eq!(control.len() as i64, number(&launched["control_count"]));
    assert!(!control.is_empty() && treatment.len() > control.len());
    for (player, _) in &restricted {
        assert!(!treatment.contains(*player) && !control.contains(*player));
    }
    for player in &earlier_treatment {
        assert!(
            !treatment.contains(player) && !control.contains(player),
            "capped {player}"
        );
    }

    wait_for_delivery(
        &stand_in,
        campaign_id,
        treatment.len(),
        Duration::from_secs(120),
    )
    .await;
    assert_delivered_exactly(&stand_in, campaign_id, &treatment);
    let sample = stand_in
        .event(&format!(
            "crmbet-c{campaign_id}-{}",
            treatment.iter().next().unwrap()
        ))
        .unwrap();
    assert_eq!(sample["ext_brand_id"], "stand-in-brand");
    assert_eq!(sample["event_type"], "crmbet_campaign");
    assert_eq!(sample["payload"]["message_template"], "reload-50");
    assert!(sample["event_date"].as_i64().unwrap() > 1_700_000_000_000);

    // The audit log counts each reason of the launch.
    let store = Store::connect(&server.database_url).await.unwrap();
    let audit = store.recent_audit_entries(50).await.unwrap();
    let launch_row = audit
        .iter()
        .find(|row| {
            row.action == "campaign.launch"
                && row.target.as_deref() == Some(&format!("campaign {campaign_id}"))
        })
        .expect("an audit row of the launch");
    let details = launch_row.details.clone().unwrap();
    assert_eq!(details["excluded"]["self_excluded"], 1, "{details}");
    assert_eq!(details["excluded"]["blocked"], 1, "{details}");
    assert_eq!(details["excluded"]["opted_out"], 1, "{details}");

    // Smartico's events come back: every treatment player delivered, a third opened, and
    // conversions at 30% in treatment against 10% in control.
    let mut treatment_converted = 0u64;
    let mut control_converted = 0u64;
    let mut deposits = 0.0;
    for (index, player) in treatment.iter().enumerate() {
        let (status, answer) = webhook(
            &url,
            &event(
                &format!("d-{player}"),
                "delivered",
                campaign_id,
                player,
                None,
            ),
            index.is_multiple_of(2),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        if index.is_multiple_of(3) {
            let (status, _) = webhook(
                &url,
                &event(&format!("o-{player}"), "opened", campaign_id, player, None),
                false,
            )
            .await;
            assert_eq!(status, 200);
        }
        if index % 10 < 3 {
            let amount = 20.0 + index as f64 % 7.0;
            let (status, _) = webhook(
                &url,
                &event(
                    &format!("c-{player}"),
                    "converted",
                    campaign_id,
                    player,
                    Some(amount),
                ),
                true,
            )
            .await;
            assert_eq!(status, 200);
            treatment_converted += 1;
            deposits += amount;
        }
    }
    for (index, player) in control.iter().enumerate() {
        if index.is_multiple_of(10) {
            let (status, _) = webhook(
                &url,
                &event(
                    &format!("c-{player}"),
                    "converted",
                    campaign_id,
                    player,
                    Some(20.0),
                ),
                false,
            )
            .await;
            assert_eq!(status, 200);
            control_converted += 1;
        }
    }

    let results: Value = client
        .get(format!("{url}/api/v1/campaigns/{campaign_id}/results"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        number(&results["treatment"]["players"]),
        treatment.len() as i64,
        "{results}"
    );
    assert_eq!(
        number(&results["treatment"]["sent"]),
        treatment.len() as i64,
        "{results}"
    );
    assert_eq!(
        number(&results["treatment"]["delivered"]),
        treatment.len() as i64,
        "{results}"
    );
    assert_eq!(
        number(&results["treatment"]["converted"]) as u64,
        treatment_converted
    );
    assert_eq!(
        number(&results["control"]["converted"]) as u64,
        control_converted
    );
    assert_eq!(
        number(&results["control"]["sent"]),
        0,
        "control players are never sent"
    );
    let expected = crmbet_app::uplift::conversion_uplift(
        treatment_converted,
        treatment.len() as u64,
        control_converted,
        control.len() as u64,
    )
    .unwrap();
    let estimate = &results["conversion_uplift_estimate"];
    for (field, value) in [
        ("difference", expected.difference),
        ("ci_low", expected.ci_low),
        ("ci_high", expected.ci_high),
        ("p_value", expected.p_value),
    ] {
        let got = estimate[field].as_f64().unwrap();
        assert!((got - value).abs() < 1e-9, "{field}: {got} != {value}");
    }
    assert!(expected.difference > 0.1, "{expected:?}");
    let deposits_reported: f64 = results["treatment"]["deposits"]["amount"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (deposits_reported - deposits).abs() < 0.01,
        "{deposits_reported} != {deposits}"
    );
    assert!(
        results["revenue_per_player"]["difference"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert_eq!(results["clusters"].as_array().unwrap().len(), 1);

    // The demo's model activation pushed every player's segment as a profile update.
    let listed: Value = client
        .get(format!("{url}/api/v1/clusters"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let model_id = number(&listed["clusters"][0]["model_id"]);
    let segmented: i64 = clusters.iter().map(|(_, size)| size).sum();
    let profile_prefix = format!("crmbet-m{model_id}-");
    let deadline = Instant::now() + Duration::from_secs(60);
    while (stand_in.accepted_with_prefix(&profile_prefix).len() as i64) < segmented {
        assert!(Instant::now() < deadline, "profile updates missing");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let profile_eid = stand_in
        .accepted_with_prefix(&profile_prefix)
        .into_keys()
        .next()
        .unwrap();
    let profile = stand_in.event(&profile_eid).unwrap();
    assert_eq!(profile["event_type"], "update_profile");
    assert_eq!(
        profile["payload"]["core_external_segment"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "{profile}"
    );

    // An unsubscribe is honoured by later launches.
    let unsubscriber = treatment.iter().next().unwrap().clone();
    let (status, _) = webhook(
        &url,
        &event("u-1", "unsubscribed", campaign_id, &unsubscriber, None),
        true,
    )
    .await;
    assert_eq!(status, 200);
    let later = create_campaign(
        &client,
        &url,
        json!({
            "name": "Later", "campaign_type": "CAMPAIGN_TYPE_FREE_BETS", "channel": "CHANNEL_SMS",
            "cluster_ids": [target], "message_template": "fb",
        }),
    )
    .await;
    let later_id = number(&later["campaign_id"]);
    let later = launch(&client, &url, later_id).await;
    assert!(number(&later["exclusions"]["opted_out"]) >= 2, "{later}");
    let (later_treatment, later_control) = groups(&server.database_url, later_id).await;
    assert!(!later_treatment.contains(&unsubscriber) && !later_control.contains(&unsubscriber));
}

#[tokio::test]
async fn campaign_reaches_every_treatment_player_once_over_the_in_process_queue() {
    campaign_end_to_end(&[]).await;
}

#[tokio::test]
async fn campaign_delivery_survives_smartico_errors_and_a_killed_process() {
    // Slow answers and small batches, so the kill lands mid-delivery; a short lease so the
    // restarted process claims the killed one's messages soon.
    let stand_in = SmarticoStandIn::start(Faults {
        server_errors: 3,
        rate_limited: 3,
        delay: Duration::from_millis(150),
    })
    .await;
    let extra = [
        ("CRMBET_SMARTICO_BATCH_EVENTS", "10".to_owned()),
        ("CRMBET_OUTBOX_LEASE_SECONDS", "2".to_owned()),
        ("CRMBET_CIRCUIT_BREAKER_OPEN_SECONDS", "1".to_owned()),
    ];
    let environment = environment(&stand_in, &extra);
    let server = RunningServer::start_with_environment(PLAYERS, &environment);
    let url = server.url();
    let client = server.rest_client().await;
    let clusters = clusters(&client, &url).await;
    let cluster_ids: Vec<i64> = clusters.iter().map(|(id, _)| *id).collect();
    let campaign = create_campaign(
        &client,
        &url,
        json!({
            "name": "Everyone", "campaign_type": "CAMPAIGN_TYPE_REACTIVATION",
            "channel": "CHANNEL_EMAIL", "cluster_ids": cluster_ids, "message_template": "hi",
        }),
    )
    .await;
    let campaign_id = number(&campaign["campaign_id"]);
    launch(&client, &url, campaign_id).await;
    let (treatment, _) = groups(&server.database_url, campaign_id).await;

    // Kill it once some events are in and many are not.
    let prefix = format!("crmbet-c{campaign_id}-");
    let deadline = Instant::now() + Duration::from_secs(60);
    while stand_in.accepted_with_prefix(&prefix).len() < 30 {
        assert!(
            Instant::now() < deadline,
            "no delivery started: {:?}",
            stand_in.counters()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (database_url, admin, directory) = server.kill();
    let before_restart = stand_in.accepted_with_prefix(&prefix).len();
    assert!(
        before_restart < treatment.len(),
        "the kill came too late to test anything"
    );
    let (_, refused, _, _) = stand_in.counters();
    assert_eq!(
        refused, 6,
        "the 500s and 429s were answered before the kill"
    );

    let restarted = RunningServer::restart(database_url, admin, directory, &environment);
    wait_for_delivery(
        &stand_in,
        campaign_id,
        treatment.len(),
        Duration::from_secs(180),
    )
    .await;
    assert_delivered_exactly(&stand_in, campaign_id, &treatment);

    // The same webhook three times is stored once; each acknowledged event is stored.
    let player = treatment.iter().next().unwrap();
    let body = event("repeated-1", "clicked", campaign_id, player, None);
    let mut duplicates = Vec::new();
    for _ in 0..3 {
        let (status, answer) = webhook(&restarted.url(), &body, true).await;
        assert_eq!(status, 200, "{answer}");
        duplicates.push(answer["duplicate"].as_bool().unwrap_or(false));
    }
    assert_eq!(duplicates, [false, true, true]);
    let store = Store::connect(&restarted.database_url).await.unwrap();
    let counts = store.row_counts().await.unwrap();
    assert_eq!(counts["webhook_events"], 1);
    let health: Value = reqwest::get(format!("{}/health", restarted.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["smartico"]["circuit"], "closed", "{health}");
}

#[tokio::test]
async fn bad_webhooks_are_refused_and_store_nothing() {
    let stand_in = SmarticoStandIn::start(Faults::default()).await;
    let server = RunningServer::start_with_environment(200, &environment(&stand_in, &[]));
    let url = server.url();
    let client = server.rest_client().await;
    let clusters = clusters(&client, &url).await;
    let campaign = create_campaign(
        &client,
        &url,
        json!({
            "name": "Small", "campaign_type": "CAMPAIGN_TYPE_CASHBACK", "channel": "CHANNEL_EMAIL",
            "cluster_ids": [clusters[0].0], "message_template": "t",
        }),
    )
    .await;
    let campaign_id = number(&campaign["campaign_id"]);
    launch(&client, &url, campaign_id).await;
    let (treatment, _) = groups(&server.database_url, campaign_id).await;
    let player = treatment.iter().next().unwrap().clone();
    let good = event("bad-1", "opened", campaign_id, &player, None);
    let raw = serde_json::to_vec(&good).unwrap();
    let now = chrono::Utc::now().timestamp();
    let signature = |timestamp: i64, body: &[u8]| {
        format!("t={timestamp},v1={}", sign(WEBHOOK_SECRET, timestamp, body))
    };

    // (name, headers, body, (HTTP status, code, message mentions))
    type Headers = Vec<(&'static str, String)>;
    type Expected = (u16, &'static str, &'static str);
    let cases: Vec<(&str, Headers, Vec<u8>, Expected)> = vec![
        (
            "no credentials",
            vec![],
            raw.clone(),
            (401, "UNAUTHENTICATED", "x-webhook-signature"),
        ),
        (
            "wrong secret",
            vec![("x-webhook-secret", "guess".to_owned())],
            raw.clone(),
            (401, "UNAUTHENTICATED", "does not match"),
        ),
        (
            "signature of another body",
            vec![("x-webhook-signature", signature(now, b"{}"))],
            raw.clone(),
            (401, "UNAUTHENTICATED", "does not match"),
        ),
        (
            "old timestamp",
            vec![("x-webhook-signature", signature(now - 301, &raw))],
            raw.clone(),
            (401, "UNAUTHENTICATED", "clock"),
        ),
        (
            "malformed signature",
            vec![("x-webhook-signature", "v1=abc".to_owned())],
            raw.clone(),
            (401, "UNAUTHENTICATED", "t=<unix seconds>"),
        ),
        (
            "malformed body",
            vec![("x-webhook-secret", WEBHOOK_SECRET.to_owned())],
            b"{not json".to_vec(),
            (400, "INVALID_ARGUMENT", "JSON"),
        ),
        (
            "unknown event type",
            vec![("x-webhook-secret", WEBHOOK_SECRET.to_owned())],
            serde_json::to_vec(&event("bad-2", "exploded", campaign_id, &player, None)).unwrap(),
            (400, "INVALID_ARGUMENT", "event_type"),
        ),
        (
            "conversion without amount",
            vec![("x-webhook-secret", WEBHOOK_SECRET.to_owned())],
            serde_json::to_vec(&event("bad-3", "converted", campaign_id, &player, None)).unwrap(),
            (400, "INVALID_ARGUMENT", "amount"),
        ),
        (
            "unknown campaign",
            vec![("x-webhook-secret", WEBHOOK_SECRET.to_owned())],
            serde_json::to_vec(&event("bad-4", "opened", 999_999, &player, None)).unwrap(),
            (404, "NOT_FOUND", "campaign 999999"),
        ),
        (
            "unknown player",
            vec![("x-webhook-secret", WEBHOOK_SECRET.to_owned())],
            serde_json::to_vec(&event("bad-5", "opened", campaign_id, "nobody-here", None))
                .unwrap(),
            (404, "NOT_FOUND", "nobody-here"),
        ),
    ];
    let store = Store::connect(&server.database_url).await.unwrap();
    let plain = reqwest::Client::new();
    let mut failures = Vec::new();
    for (name, headers, body, (http_status, code, mentions)) in cases {
        let mut request = plain
            .post(format!("{url}/api/v1/webhooks/smartico"))
            .header("content-type", "application/json")
            .body(body);
        for (header, value) in headers {
            request = request.header(header, value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        let message = answer["message"].as_str().unwrap_or_default();
        if status != http_status || answer["code"] != code || !message.contains(mentions) {
            failures.push(format!("{name}: {status} {answer}"));
        }
    }
    assert!(
        failures.is_empty(),
        "unexpected answers:\n{}",
        failures.join("\n")
    );
    assert_eq!(store.row_counts().await.unwrap()["webhook_events"], 0);
    let (status, answer) = webhook(&url, &good, true).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(store.row_counts().await.unwrap()["webhook_events"], 1);
}

#[tokio::test]
async fn a_scheduled_campaign_launches_itself_once() {
    let stand_in = SmarticoStandIn::start(Faults::default()).await;
    let server = RunningServer::start_with_environment(200, &environment(&stand_in, &[]));
    let url = server.url();
    let client = server.rest_client().await;
    let clusters = clusters(&client, &url).await;
    let start_at = chrono::Utc::now() + chrono::Duration::seconds(2);
    let campaign = create_campaign(
        &client,
        &url,
        json!({
            "name": "Scheduled", "campaign_type": "CAMPAIGN_TYPE_CASHBACK",
            "channel": "CHANNEL_EMAIL", "cluster_ids": [clusters[0].0], "message_template": "t",
            "start_at": start_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }),
    )
    .await;
    assert_eq!(
        campaign["status"], "CAMPAIGN_STATUS_SCHEDULED",
        "{campaign}"
    );
    let campaign_id = number(&campaign["campaign_id"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let launched = loop {
        let answer: Value = client
            .get(format!("{url}/api/v1/campaigns/{campaign_id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if answer["campaign"]["status"] == "CAMPAIGN_STATUS_LAUNCHED" {
            break answer["campaign"].clone();
        }
        assert!(Instant::now() < deadline, "never launched: {answer}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (treatment, _) = groups(&server.database_url, campaign_id).await;
    assert_eq!(treatment.len() as i64, number(&launched["treatment_count"]));
    wait_for_delivery(
        &stand_in,
        campaign_id,
        treatment.len(),
        Duration::from_secs(60),
    )
    .await;
    // A restart does not launch it again.
    let (database_url, admin, directory) = server.kill();
    let restarted =
        RunningServer::restart(database_url, admin, directory, &environment(&stand_in, &[]));
    let store = Store::connect(&restarted.database_url).await.unwrap();
    let audit = store.recent_audit_entries(100).await.unwrap();
    let launches = audit
        .iter()
        .filter(|row| row.action == "campaign.launch")
        .count();
    assert_eq!(launches, 1);
    assert_delivered_exactly(&stand_in, campaign_id, &treatment);
}

/// The settings of a server on the machine's RabbitMQ, with queues of its own.
fn broker_environment(queue: &str) -> Vec<(&'static str, String)> {
    let url = std::env::var("CRMBET_TEST_AMQP_URL").unwrap_or_else(|_| {
        panic!("CRMBET_TEST_AMQP_URL is not set: scripts/test.sh starts RabbitMQ and sets it; this test does not skip")
    });
    vec![("AMQP_URL", url), ("CRMBET_AMQP_QUEUE", queue.to_owned())]
}

/// A queue name no other test run uses.
fn unique_queue(name: &str) -> String {
    format!(
        "crmbet.e2e.{name}.{}.{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros()
    )
}

/// Deletes a test's queues (best effort: they are the test's own).
pub(crate) async fn delete_queues(queue: &str) {
    let Ok(url) = std::env::var("CRMBET_TEST_AMQP_URL") else {
        return;
    };
    let Ok(connection) =
        lapin::Connection::connect(&url, lapin::ConnectionProperties::default()).await
    else {
        return;
    };
    if let Ok(channel) = connection.create_channel().await {
        for name in [queue.to_owned(), format!("{queue}.dead")] {
            let _ = channel
                .queue_delete(
                    name.as_str().into(),
                    lapin::options::QueueDeleteOptions::default(),
                )
                .await;
        }
    }
}

#[tokio::test]
async fn campaign_reaches_every_treatment_player_once_over_rabbitmq() {
    let queue = unique_queue("flow");
    campaign_end_to_end(&broker_environment(&queue)).await;
    delete_queues(&queue).await;
}

#[tokio::test]
async fn launch_survives_an_unreachable_broker_smartico_errors_and_a_kill_over_rabbitmq() {
    let queue = unique_queue("faults");
    let stand_in = SmarticoStandIn::start(Faults {
        server_errors: 3,
        rate_limited: 3,
        delay: Duration::from_millis(150),
    })
    .await;
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let extra = [
        ("CRMBET_SMARTICO_BATCH_EVENTS", "10".to_owned()),
        ("CRMBET_OUTBOX_LEASE_SECONDS", "2".to_owned()),
        ("CRMBET_CIRCUIT_BREAKER_OPEN_SECONDS", "1".to_owned()),
        ("CRMBET_AMQP_QUEUE", queue.clone()),
    ];
    let mut unreachable = environment(&stand_in, &extra);
    unreachable.push((
        "AMQP_URL",
        format!("amqp://guest:guest@127.0.0.1:{closed_port}/%2f"),
    ));
    let server = RunningServer::start_with_environment(PLAYERS, &unreachable);
    let url = server.url();
    let client = server.rest_client().await;
    let cluster_ids: Vec<i64> = clusters(&client, &url)
        .await
        .iter()
        .map(|(id, _)| *id)
        .collect();
    let campaign = create_campaign(
        &client,
        &url,
        json!({
            "name": "Broker down", "campaign_type": "CAMPAIGN_TYPE_REACTIVATION",
            "channel": "CHANNEL_EMAIL", "cluster_ids": cluster_ids, "message_template": "hi",
        }),
    )
    .await;
    let campaign_id = number(&campaign["campaign_id"]);
    let launched = launch(&client, &url, campaign_id).await;
    assert_eq!(
        launched["status"], "CAMPAIGN_STATUS_LAUNCHED",
        "the launch does not wait for the broker"
    );
    let (treatment, _) = groups(&server.database_url, campaign_id).await;
    let health: Value = reqwest::get(format!("{url}/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["broker"]["status"], "degraded", "{health}");
    let store = Store::connect(&server.database_url).await.unwrap();
    let pending = store
        .pending_outbox(crmbet_core::delivery::CAMPAIGN_DELIVERY_TOPIC)
        .await
        .unwrap();
    // The campaign's messages, and the profile updates of the demo's activation.
    assert!(
        pending as usize >= treatment.len().div_ceil(10),
        "every message waits in the outbox: {pending}"
    );
    assert_eq!(
        stand_in.counters().0,
        0,
        "nothing reached Smartico without the broker"
    );

    // The broker is back (the relay now points at it), and Smartico fails for a while.
    let (database_url, admin, directory) = server.kill();
    let mut reachable = environment(&stand_in, &extra);
    reachable.extend(broker_environment(&queue));
    let server = RunningServer::restart(database_url, admin, directory, &reachable);
    let prefix = format!("crmbet-c{campaign_id}-");
    let deadline = Instant::now() + Duration::from_secs(90);
    while stand_in.accepted_with_prefix(&prefix).len() < 30 {
        assert!(
            Instant::now() < deadline,
            "no delivery started: {:?}",
            stand_in.counters()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Killed mid-delivery: unacknowledged messages go back to the queue.
    let (database_url, admin, directory) = server.kill();
    assert!(
        stand_in.accepted_with_prefix(&prefix).len() < treatment.len(),
        "the kill came too late"
    );
    let _restarted = RunningServer::restart(database_url, admin, directory, &reachable);
    wait_for_delivery(
        &stand_in,
        campaign_id,
        treatment.len(),
        Duration::from_secs(180),
    )
    .await;
    assert_delivered_exactly(&stand_in, campaign_id, &treatment);
    assert_eq!(stand_in.counters().1, 6, "the 500s and 429s were answered");
    // Messages the broker confirmed to the killed process were delivered but never marked
    // published: once their lease runs out the relay publishes them again and the
    // consumer's delivery record drops the copies.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pending = store
            .pending_outbox(crmbet_core::delivery::CAMPAIGN_DELIVERY_TOPIC)
            .await
            .unwrap();
        if pending == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{pending} outbox messages still unpublished"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_delivered_exactly(&stand_in, campaign_id, &treatment);
    delete_queues(&queue).await;
}

#[tokio::test]
async fn campaign_excludes_players_the_lake_restricts() {
    let stand_in = SmarticoStandIn::start(Faults::default()).await;
    let server = RunningServer::start_with_environment(300, &environment(&stand_in, &[]));
    let url = server.url();
    let client = server.rest_client().await;
    let clusters = clusters(&client, &url).await;
    let (target, _) = clusters[0];
    let inside = members(&client, &url, target, 10).await;
    assert!(inside.len() >= 5, "{inside:?}");

    // Excluded by hand: the lake may add to this row but never lift it.
    let response = client
        .put(format!("{url}/api/v1/users/{}/restrictions", inside[3]))
        .json(&json!({"self_excluded": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());

    let directory = tempfile::tempdir().unwrap();
    let lake = directory.path().join("lake");
    let warehouse = directory.path().join("warehouse");
    std::fs::create_dir_all(lake.join("players")).unwrap();
    let snapshot = |lifted: &str| {
        format!(
            "user_id,self_excluded,blocked,marketing_opt_out\n\
             {},TRUE,no,0\n{},false,yes,0\n{},0,0,1\n{},false,false,false\n{},{lifted},0,0\n\
             ,true,0,0\n",
            inside[0], inside[1], inside[2], inside[3], inside[4]
        )
    };
    std::fs::write(lake.join("players/snapshot.csv"), snapshot("true")).unwrap();

    let (code, summary) = crate::etl::run_etl(&server.database_url, &lake, &warehouse);
    assert_eq!(code, 0, "{summary}");
    let restrictions = &summary["restrictions"];
    assert_eq!(restrictions["rows_read"], 6, "{summary}");
    assert_eq!(restrictions["rows_rejected"], 1, "{summary}");
    assert_eq!(
        restrictions["rejected_by_rule"]["user_id_missing"], 1,
        "{summary}"
    );
    assert_eq!(restrictions["players_restricted"], 5, "{summary}");
    assert_eq!(restrictions["players_updated"], 4, "{summary}");

    // The next snapshot lifts the lake's own exclusion of inside[4].
    std::fs::write(lake.join("players/snapshot.csv"), snapshot("false")).unwrap();
    let (code, summary) = crate::etl::run_etl(&server.database_url, &lake, &warehouse);
    assert_eq!(code, 0, "{summary}");
    assert_eq!(
        summary["restrictions"]["players_restricted"], 4,
        "{summary}"
    );
    assert_eq!(summary["restrictions"]["players_updated"], 1, "{summary}");

    let campaign = create_campaign(
        &client,
        &url,
        json!({
            "name": "Lake restrictions", "campaign_type": "CAMPAIGN_TYPE_CASHBACK",
            "channel": "CHANNEL_EMAIL", "cluster_ids": [target], "holdout_share": 0.2,
            "message_template": "cashback-lake",
        }),
    )
    .await;
    let campaign_id = number(&campaign["campaign_id"]);
    let launched = launch(&client, &url, campaign_id).await;
    let exclusions = &launched["exclusions"];
    assert_eq!(
        number(&exclusions["self_excluded"]),
        2,
        "the lake's and the API's: {launched}"
    );
    assert_eq!(number(&exclusions["blocked"]), 1, "{launched}");
    assert_eq!(number(&exclusions["opted_out"]), 1, "{launched}");

    let (treatment, control) = groups(&server.database_url, campaign_id).await;
    for player in &inside[..4] {
        assert!(
            !treatment.contains(player) && !control.contains(player),
            "restricted {player} is in the audience"
        );
    }
    assert!(
        treatment.contains(&inside[4]) || control.contains(&inside[4]),
        "the lake lifted its own exclusion of {}",
        inside[4]
    );
    wait_for_delivery(
        &stand_in,
        campaign_id,
        treatment.len(),
        Duration::from_secs(60),
    )
    .await;
    assert_delivered_exactly(&stand_in, campaign_id, &treatment);

    let store = Store::connect(&server.database_url).await.unwrap();
    let audit = store.recent_audit_entries(50).await.unwrap();
    let lake_rows: Vec<&Value> = audit
        .iter()
        .filter(|row| row.action == "lake.restrictions")
        .filter_map(|row| row.details.as_ref())
        .collect();
    assert_eq!(lake_rows.len(), 2, "{audit:?}");
    assert_eq!(lake_rows[0]["restrictions"]["players_updated"], 1);
}
