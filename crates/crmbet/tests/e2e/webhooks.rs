//! Operators' webhooks through the real server: a failing receiver gets the batch again
//! with backoff until it acknowledges it; one that keeps failing has the batch
//! dead-lettered after the last attempt while later changes still reach it; registration
//! refuses bad URLs; removal ends delivery.

use std::time::Duration;

use crmbet_proto::v1::IngestBatchRequest;
use crmbet_proto::v1::event_service_client::EventServiceClient;
use serde_json::Value;

use crate::live_segments::{register_webhook, round_of, webhook_list};
use crate::server::{AuthorizedChannel, RunningServer};
use crate::webhook_receiver::WebhookReceiver;

/// A newcomer's first events: one segment change (no segment → their first).
async fn newcomer_plays(events: &mut EventServiceClient<AuthorizedChannel>, player: &str) {
    let outcome = events
        .ingest_batch(IngestBatchRequest {
            transactions: round_of(player, 0, 5),
        })
        .await
        .unwrap()
        .into_inner()
        .outcome
        .unwrap();
    assert_eq!(outcome.accepted, 6, "{outcome:?}");
}

async fn dead_letters(server: &RunningServer, webhook_id: &str) -> (u16, Value) {
    let response = server
        .rest_client()
        .await
        .get(format!(
            "{}/api/v1/notifications/webhooks/{webhook_id}/dead-letters",
            server.url()
        ))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn failed_webhook_batches_are_retried_then_dead_lettered_and_delivery_goes_on() {
    let environment = [
        ("CRMBET_OUTBOUND_WEBHOOK_MAX_ATTEMPTS", "3".to_owned()),
        ("CRMBET_OUTBOUND_WEBHOOK_RETRY_MS", "50".to_owned()),
        ("CRMBET_RATE_LIMIT_PER_HOUR", "1000000".to_owned()),
    ];
    let server = RunningServer::start_with_environment(300, &environment);
    let client = server.rest_client().await;
    for (url, fragment) in [
        ("hooks.example.com/crmbet", "https://"),
        ("ftp://hooks.example.com/", "https://"),
        ("https://user:pw@hooks.example.com/", "credentials"),
    ] {
        let response = client
            .post(format!("{}/api/v1/notifications/webhooks", server.url()))
            .json(&serde_json::json!({ "url": url }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{url}");
        let body = response.text().await.unwrap();
        assert!(body.contains(fragment), "{url}: {body}");
    }
    assert!(webhook_list(&server).await.is_empty(), "nothing registered");

    let receiver = WebhookReceiver::start().await;
    let registered = register_webhook(&server, &receiver).await;
    let webhook_id = registered["webhook"]["webhook_id"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| {
            registered["webhook"]["webhook_id"]
                .as_i64()
                .map(|id| id.to_string())
        })
        .expect("a webhook id");
    let mut events = EventServiceClient::new(server.grpc_channel().await);

    // Two failures, then the same batch is acknowledged: delivered once.
    receiver.fail_next(2);
    newcomer_plays(&mut events, "hook-player-1").await;
    receiver.wait_for(1, 30).await;
    assert_eq!(receiver.counters(), (2, 0));
    let listed = webhook_list(&server).await;
    assert_eq!(listed[0]["failures"], 0, "{listed:?}");
    assert_eq!(
        listed[0]["changes_delivered"].to_string().trim_matches('"'),
        "1"
    );

    // A receiver that keeps failing: after 3 attempts the batch is a dead letter.
    receiver.fail_all(true);
    newcomer_plays(&mut events, "hook-player-2").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let letters = loop {
        let (status, body) = dead_letters(&server, &webhook_id).await;
        assert_eq!(status, 200, "{body}");
        let letters = body["dead_letters"].as_array().cloned().unwrap_or_default();
        if !letters.is_empty() {
            break letters;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no dead letter in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["attempts"], 3);
    assert!(
        letters[0]["last_error"].as_str().unwrap().contains("500"),
        "{letters:?}"
    );
    let body: Value = serde_json::from_str(letters[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["changes"][0]["user_id"], "hook-player-2");
    assert_eq!(receiver.counters(), (5, 0));
    let listed = webhook_list(&server).await;
    assert_eq!(listed[0]["dead_letters"].to_string().trim_matches('"'), "1");
    assert_eq!(listed[0]["delivered_through"], letters[0]["last_cursor"]);

    // The receiver recovers: the next change arrives; the dead one is not sent again.
    receiver.fail_all(false);
    newcomer_plays(&mut events, "hook-player-3").await;
    receiver.wait_for(2, 30).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let players: Vec<String> = receiver
        .changes()
        .values()
        .map(|(change, times)| {
            assert_eq!(*times, 1);
            change["user_id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(players, ["hook-player-1", "hook-player-3"]);
    let deliveries = receiver.deliveries();
    assert_eq!(deliveries.len(), 2, "{deliveries:?}");
    for (delivery, cursor) in deliveries.iter().zip(receiver.changes().keys()) {
        assert_eq!(delivery, &format!("{webhook_id}-{cursor}-{cursor}"));
    }

    // Removed: its dead letters go with it, and nothing more is sent.
    let url = format!(
        "{}/api/v1/notifications/webhooks/{webhook_id}",
        server.url()
    );
    assert_eq!(client.delete(&url).send().await.unwrap().status(), 200);
    assert_eq!(client.delete(&url).send().await.unwrap().status(), 404);
    assert_eq!(dead_letters(&server, &webhook_id).await.0, 404);
    newcomer_plays(&mut events, "hook-player-4").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(receiver.changes().len(), 2);
}
