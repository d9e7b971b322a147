//! Live segments through the real server: live events give a new player a segment and move
//! them across segment boundaries; each change is read once on `WatchSegmentChanges`
//! (resumable from any cursor, without gaps or repeats, also as a REST stream), reaches
//! the Smartico stand-in once as a profile update, and GetUserSegment answers the new
//! segment at once.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use crmbet_proto::v1::event_service_client::EventServiceClient;
use crmbet_proto::v1::user_service_client::UserServiceClient;
use crmbet_proto::v1::{
    GetUserSegmentRequest, IngestBatchRequest, LiveTransaction, SegmentChange, SegmentChangeReason,
    WatchSegmentChangesRequest,
};
use tonic::Streaming;

use crate::server::RunningServer;
use crate::smartico_stand_in::{Faults, SmarticoStandIn};
use crate::webhook_receiver::WebhookReceiver;

const NEWCOMER: &str = "live-newcomer-1";

/// One round of play: `count` transactions of the newcomer, all in one batch. Rounds
/// alternate two very different players' habits, so the segment has to follow.
fn round(index: usize, count: usize) -> Vec<LiveTransaction> {
    round_of(NEWCOMER, index, count)
}

/// [`round`] for any player.
pub fn round_of(player: &str, index: usize, count: usize) -> Vec<LiveTransaction> {
    let whale = index % 2 == 1;
    // Within the last days (the demo's lake ends yesterday: older events would be late
    // for live play), at night for the whale, in the afternoon otherwise.
    let day = Utc::now().date_naive() - chrono::Days::new(5 - (index % 4) as u64);
    let start = Utc.from_utc_datetime(
        &day.and_hms_opt(if whale { 3 } else { 14 }, index as u32, 0)
            .unwrap(),
    );
    let mut transactions = Vec::with_capacity(count + 1);
    transactions.push(LiveTransaction {
        transaction_id: Some(format!("{player}-{index}-deposit")),
        user_id: Some(player.to_owned()),
        occurred_at: Some(start.to_rfc3339()),
        r#type: Some("deposit".to_owned()),
        amount: Some(if whale { 25_000.0 } else { 10.0 }),
        currency: Some("EUR".to_owned()),
        session_id: Some(format!("{player}-session-{index}")),
        channel: Some("mobile".to_owned()),
        country: Some("MT".to_owned()),
        ..LiveTransaction::default()
    });
    for bet in 0..count {
        transactions.push(LiveTransaction {
            transaction_id: Some(format!("{player}-{index}-{bet}")),
            user_id: Some(player.to_owned()),
            occurred_at: Some((start + chrono::Duration::seconds(bet as i64 * 20)).to_rfc3339()),
            r#type: Some("bet".to_owned()),
            amount: Some(if whale { 2_000.0 } else { 0.5 }),
            currency: Some("EUR".to_owned()),
            game_type: Some(if whale { "crash" } else { "slots" }.to_owned()),
            session_id: Some(format!("{player}-session-{index}")),
            channel: Some("mobile".to_owned()),
            country: Some("MT".to_owned()),
            ..LiveTransaction::default()
        });
    }
    transactions
}

async fn next_change(
    stream: &mut Streaming<crmbet_proto::v1::WatchSegmentChangesResponse>,
) -> SegmentChange {
    tokio::time::timeout(Duration::from_secs(20), stream.message())
        .await
        .expect("a segment change within 20 s")
        .expect("the stream stays open")
        .expect("a message")
        .change
        .expect("a change")
}

#[tokio::test]
async fn live_play_moves_a_player_and_each_change_is_streamed_and_delivered_once() {
    let stand_in = SmarticoStandIn::start(Faults::default()).await;
    let mut environment = stand_in.environment();
    environment.push(("CRMBET_RATE_LIMIT_PER_HOUR", "1000000".to_owned()));
    let server = RunningServer::start_with_environment(400, &environment);
    let receiver = WebhookReceiver::start().await;
    let registered = register_webhook(&server, &receiver).await;
    let channel = server.grpc_channel().await;
    let mut users = UserServiceClient::new(channel.clone());
    let mut events = EventServiceClient::new(channel);

    // From now on: the demo's activation changes are before this cursor.
    let mut watch = users
        .watch_segment_changes(WatchSegmentChangesRequest::default())
        .await
        .unwrap()
        .into_inner();
    let unknown = users
        .get_user_segment(GetUserSegmentRequest {
            user_id: NEWCOMER.to_owned(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound, "{unknown:?}");

    // Round by round, the segment GetUserSegment answers right after each batch.
    let mut segments: Vec<i64> = Vec::new();
    for index in 0..24 {
        let outcome = events
            .ingest_batch(IngestBatchRequest {
                transactions: round(index, 30),
            })
            .await
            .unwrap()
            .into_inner()
            .outcome
            .unwrap();
        assert_eq!(outcome.accepted, 31, "{outcome:?}");
        let segment = users
            .get_user_segment(GetUserSegmentRequest {
                user_id: NEWCOMER.to_owned(),
            })
            .await
            .unwrap()
            .into_inner();
        if segments.last() != Some(&segment.cluster_id) {
            segments.push(segment.cluster_id);
        }
        if segments.len() >= 4 {
            break;
        }
    }
    assert!(
        segments.len() >= 2,
        "live play never moved the player out of their first segment: {segments:?}"
    );

    // The stream has each change once, in order, chained previous → next.
    let mut changes = Vec::new();
    for _ in 0..segments.len() {
        changes.push(next_change(&mut watch).await);
    }
    let streamed: Vec<i64> = changes.iter().map(|change| change.cluster_id).collect();
    assert_eq!(streamed, segments, "{changes:?}");
    assert_eq!(
        changes[0].previous_cluster_id, 0,
        "a newcomer had no segment"
    );
    for pair in changes.windows(2) {
        assert_eq!(pair[1].previous_cluster_id, pair[0].cluster_id);
        assert!(pair[1].cursor.parse::<i64>().unwrap() > pair[0].cursor.parse::<i64>().unwrap());
    }
    for change in &changes {
        assert_eq!(change.user_id, NEWCOMER);
        assert_eq!(change.reason, i32::from(SegmentChangeReason::Live));
        assert!(!change.cluster_name.is_empty());
    }
    let quiet = tokio::time::timeout(Duration::from_millis(500), watch.message()).await;
    assert!(quiet.is_err(), "no change beyond the moves: {quiet:?}");

    // Resumed from any change's cursor: exactly the changes after it.
    for (position, change) in changes.iter().enumerate() {
        let mut resumed = users
            .watch_segment_changes(WatchSegmentChangesRequest {
                cursor: change.cursor.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        for expected in &changes[position + 1..] {
            assert_eq!(&next_change(&mut resumed).await, expected);
        }
        let quiet = tokio::time::timeout(Duration::from_millis(300), resumed.message()).await;
        assert!(quiet.is_err(), "nothing after the last change");
    }
    let bad = users
        .watch_segment_changes(WatchSegmentChangesRequest {
            cursor: "yesterday".to_owned(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument, "{bad:?}");

    // The same stream over REST: NDJSON lines, from the first live change's cursor.
    let first_cursor = changes[0].cursor.parse::<i64>().unwrap() - 1;
    let mut response = server
        .rest_client()
        .await
        .get(format!(
            "{}/api/v1/segment-changes?cursor={first_cursor}",
            server.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut text = String::new();
    while text.lines().count() < changes.len() {
        let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
            .await
            .expect("a REST line within 10 s")
            .unwrap()
            .expect("the REST stream stays open");
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    for (line, change) in text.lines().zip(&changes) {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        let cursor = value["result"]["change"]["cursor"]
            .as_str()
            .or_else(|| value["change"]["cursor"].as_str())
            .unwrap_or_else(|| panic!("a change with a cursor: {line}"));
        assert_eq!(cursor, change.cursor);
    }

    // Smartico got one profile update per change, each once, with the new segment.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let delivered = stand_in.accepted_with_prefix("crmbet-s");
        if delivered.len() >= changes.len() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {} profile updates delivered",
            delivered.len(),
            changes.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let delivered = stand_in.accepted_with_prefix("crmbet-s");
    assert_eq!(delivered.len(), changes.len(), "{delivered:?}");
    for change in &changes {
        let eid = format!("crmbet-s{}", change.cursor);
        assert_eq!(delivered.get(&eid), Some(&1), "{eid} delivered once");
        let event = stand_in.event(&eid).unwrap();
        assert_eq!(event["user_ext_id"], NEWCOMER);
        assert_eq!(
            event["payload"]["core_external_segment"][0],
            change.cluster_name.as_str()
        );
    }

    // The registered webhook got each change once, signed, in cursor order.
    receiver.wait_for(changes.len(), 60).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received = receiver.changes();
    assert_eq!(received.len(), changes.len(), "{received:?}");
    for change in &changes {
        let cursor: i64 = change.cursor.parse().unwrap();
        let (body, times) = &received[&cursor];
        assert_eq!(*times, 1, "change {cursor} arrived {times} times");
        assert_eq!(body["user_id"], NEWCOMER);
        assert_eq!(body["cluster_id"], change.cluster_id.to_string());
        assert_eq!(body["cluster_name"], change.cluster_name.as_str());
        assert_eq!(body["reason"], "live");
    }
    assert_eq!(
        receiver.counters(),
        (0, 0),
        "no failure, every signature good"
    );
    let listed = webhook_list(&server).await;
    assert_eq!(listed[0]["webhook_id"], registered["webhook"]["webhook_id"]);
    assert_eq!(
        listed[0]["delivered_through"],
        changes.last().unwrap().cursor.as_str()
    );
    assert!(listed[0].get("secret").is_none(), "{listed:?}");
}

/// Registers `receiver` as a webhook over REST and gives it the secret.
pub async fn register_webhook(
    server: &RunningServer,
    receiver: &WebhookReceiver,
) -> serde_json::Value {
    let response = server
        .rest_client()
        .await
        .post(format!("{}/api/v1/notifications/webhooks", server.url()))
        .json(&serde_json::json!({ "url": receiver.url, "description": "e2e receiver" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let registered: serde_json::Value = response.json().await.unwrap();
    let secret = registered["secret"].as_str().expect("a secret");
    assert!(secret.len() >= 32, "{registered}");
    receiver.set_secret(secret);
    registered
}

/// The webhooks ListWebhooks answers over REST.
pub async fn webhook_list(server: &RunningServer) -> Vec<serde_json::Value> {
    let response = server
        .rest_client()
        .await
        .get(format!("{}/api/v1/notifications/webhooks", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    body["webhooks"].as_array().cloned().unwrap_or_default()
}

/// A client stream of `rounds` batches of `player`, `gap` apart.
fn paced_stream(
    player: &'static str,
    rounds: usize,
    gap: Duration,
) -> impl tokio_stream::Stream<Item = crmbet_proto::v1::IngestRequest> {
    use tokio_stream::StreamExt;
    tokio_stream::iter(0..rounds).then(move |index| async move {
        if index > 0 {
            tokio::time::sleep(gap).await;
        }
        crmbet_proto::v1::IngestRequest {
            transactions: round_of(player, index, 2),
        }
    })
}

#[tokio::test]
async fn an_event_stream_lives_as_long_as_its_messages_keep_coming() {
    let environment = [
        ("CRMBET_REQUEST_BODY_TIMEOUT_SECONDS", "1".to_owned()),
        ("CRMBET_RATE_LIMIT_PER_HOUR", "1000000".to_owned()),
    ];
    let server = RunningServer::start_with_environment(200, &environment);
    let mut events = EventServiceClient::new(server.grpc_channel().await);
    // Three seconds of play, a message every 400 ms: longer than the body timeout, each
    // wait well within it.
    let outcome = events
        .ingest(paced_stream("paced-player", 8, Duration::from_millis(400)))
        .await
        .expect("a stream that keeps sending stays open")
        .into_inner()
        .outcome
        .unwrap();
    assert_eq!(outcome.accepted, 8 * 3, "{outcome:?}");
    // A stream that falls silent for longer than the timeout is cut.
    let silent = events
        .ingest(paced_stream(
            "silent-player",
            2,
            Duration::from_millis(2500),
        ))
        .await
        .unwrap_err();
    assert_eq!(silent.code(), tonic::Code::DeadlineExceeded, "{silent:?}");
}
