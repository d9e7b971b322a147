//! On-entry campaigns through the real server: launched, an on-entry campaign enrols no one
//! of its clusters' current members; each player who then enters one of its clusters by
//! live play is enrolled once (moving on inside its clusters changes nothing), split by
//! the same holdout hash as a launch, restricted players left out, and only the treatment
//! players reach the Smartico stand-in, once each.

use std::collections::BTreeSet;
use std::time::Duration;

use crmbet_app::audience::in_control_group;
use crmbet_core::CampaignId;
use crmbet_proto::v1::IngestBatchRequest;
use crmbet_proto::v1::event_service_client::EventServiceClient;
use serde_json::json;

use crate::campaign::{
    assert_delivered_exactly, clusters, create_campaign, environment, groups, launch, number,
    wait_for_delivery,
};
use crate::live_segments::round_of;
use crate::server::RunningServer;
use crate::smartico_stand_in::{Faults, SmarticoStandIn};

const NEWCOMERS: usize = 30;
const HOLDOUT: f64 = 0.5;

#[tokio::test]
async fn an_on_entry_campaign_enrols_players_as_they_enter_its_clusters() {
    let stand_in = SmarticoStandIn::start(Faults::default()).await;
    // No frequency cap: every entrant is eligible but the self-excluded one.
    let environment = environment(&stand_in, &[("CRMBET_FREQUENCY_CAP", "0".to_owned())]);
    let server = RunningServer::start_with_environment(400, &environment);
    let (client, url) = (server.rest_client().await, server.url());
    let every_cluster: Vec<i64> = clusters(&client, &url)
        .await
        .iter()
        .map(|(id, _)| *id)
        .collect();
    let campaign = create_campaign(
        &client,
        &url,
        json!({
            "name": "Welcome on entry", "campaign_type": "CAMPAIGN_TYPE_RELOAD_BONUS",
            "channel": "CHANNEL_PUSH", "cluster_ids": every_cluster,
            "holdout_share": HOLDOUT, "message_template": "welcome",
            "trigger": "CAMPAIGN_TRIGGER_ON_ENTRY",
        }),
    )
    .await;
    assert_eq!(
        campaign["trigger"], "CAMPAIGN_TRIGGER_ON_ENTRY",
        "{campaign}"
    );
    let campaign_id = number(&campaign["campaign_id"]);
    let launched = launch(&client, &url, campaign_id).await;
    assert_eq!(
        number(&launched["treatment_count"]) + number(&launched["control_count"]),
        0,
        "the clusters' members at launch are not enrolled: {launched}"
    );

    let newcomers: Vec<String> = (0..NEWCOMERS).map(|n| format!("entrant-{n}")).collect();
    let excluded = &newcomers[0];
    let response = client
        .put(format!("{url}/api/v1/users/{excluded}/restrictions"))
        .json(&json!({"self_excluded": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());

    // Each newcomer's first events give them a segment: an entry into the campaign's
    // clusters. Later rounds move some to another of its clusters: no second enrolment.
    let mut events = EventServiceClient::new(server.grpc_channel().await);
    for round in 0..3 {
        for newcomer in &newcomers {
            let outcome = events
                .ingest_batch(IngestBatchRequest {
                    transactions: round_of(newcomer, round, 10),
                })
                .await
                .unwrap()
                .into_inner()
                .outcome
                .unwrap();
            assert_eq!(outcome.accepted, 11, "{outcome:?}");
        }
    }

    let eligible: BTreeSet<String> = newcomers[1..].iter().cloned().collect();
    let expected_control: BTreeSet<String> = eligible
        .iter()
        .filter(|player| {
            in_control_group("crmbet-holdout", CampaignId(campaign_id), player, HOLDOUT)
        })
        .cloned()
        .collect();
    let expected_treatment: BTreeSet<String> =
        eligible.difference(&expected_control).cloned().collect();
    assert!(
        !expected_control.is_empty() && !expected_treatment.is_empty(),
        "both groups are drawn"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let (treatment, control) = loop {
        let (treatment, control) = groups(&server.database_url, campaign_id).await;
        if treatment.len() + control.len() >= eligible.len() {
            break (treatment, control);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {} entrants enrolled within 30 s",
            treatment.len() + control.len(),
            eligible.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(treatment, expected_treatment);
    assert_eq!(control, expected_control);

    wait_for_delivery(
        &stand_in,
        campaign_id,
        treatment.len(),
        Duration::from_secs(60),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_delivered_exactly(&stand_in, campaign_id, &treatment);

    let answer: serde_json::Value = client
        .get(format!("{url}/api/v1/campaigns/{campaign_id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let counted = &answer["campaign"];
    assert_eq!(number(&counted["treatment_count"]), treatment.len() as i64);
    assert_eq!(number(&counted["control_count"]), control.len() as i64);
}
