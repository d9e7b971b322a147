//! Latency probes: while a load is being ingested, one transaction at a time for a player
//! the model knows, sent over the path being measured, then GetUserSegment polled until it
//! answers a segment assigned after the send. The time between is what a bet-time lookup
//! waits for the bet before it to count.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use crmbet_etl::live::LiveTransaction;
use crmbet_proto::v1::event_service_client::EventServiceClient;
use crmbet_proto::v1::user_service_client::UserServiceClient;
use crmbet_proto::v1::{GetUserSegmentRequest, IngestBatchRequest};
use crmbet_server::live_messages::transaction_message;
use tokio::sync::watch;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;

/// Pause between two probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);
/// GetUserSegment is asked again after this.
const POLL_INTERVAL: Duration = Duration::from_millis(2);
/// A probe not readable after this counts with this latency (and is reported).
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// How a probe's transaction reaches crmbet.
pub(super) enum ProbeSender {
    /// `EventService.IngestBatch` over gRPC.
    Grpc(EventServiceClient<Channel>),
    /// A persistent message on the live queue.
    Amqp {
        channel: lapin::Channel,
        queue: String,
    },
}

/// What the probes measured.
#[derive(Debug, Clone, Default)]
pub(super) struct ProbeReport {
    /// Milliseconds from sending to a readable segment, sorted.
    pub latencies_ms: Vec<f64>,
    /// Probes that were not readable within [`PROBE_TIMEOUT`].
    pub timed_out: usize,
}

impl ProbeReport {
    pub(super) fn percentile(&self, share: f64) -> Option<f64> {
        if self.latencies_ms.is_empty() {
            return None;
        }
        let last = self.latencies_ms.len() - 1;
        let index = ((last as f64) * share).round() as usize;
        self.latencies_ms.get(index.min(last)).copied()
    }
}

/// Probes every [`PROBE_INTERVAL`] until `stop` turns true.
pub(super) async fn probe_until_stopped(
    mut sender: ProbeSender,
    channel: Channel,
    authorization: MetadataValue<Ascii>,
    players: Arc<Vec<String>>,
    tag: &'static str,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<ProbeReport> {
    let mut users = UserServiceClient::new(channel);
    let mut report = ProbeReport::default();
    let mut probe = 0_usize;
    while !*stop.borrow() {
        probe += 1;
        let player = players
            .get(probe.wrapping_mul(7_919) % players.len().max(1))
            .context("no player to probe")?
            .clone();
        let sent_at = Utc::now();
        let started = Instant::now();
        let transaction = LiveTransaction {
            transaction_id: Some(format!(
                "probe-{tag}-{probe}-{}",
                sent_at.timestamp_micros()
            )),
            user_id: Some(player.clone()),
            occurred_at: Some((sent_at - chrono::Duration::minutes(1)).to_rfc3339()),
            kind: Some("bet".to_owned()),
            amount: Some(1.0),
            currency: Some("EUR".to_owned()),
            game_type: Some("slots".to_owned()),
            session_id: Some(format!("probe-{tag}-{player}")),
            channel: Some("web".to_owned()),
            country: Some("MT".to_owned()),
            ..LiveTransaction::default()
        };
        send(&mut sender, &authorization, &transaction).await?;
        let latency = loop {
            let mut request = tonic::Request::new(GetUserSegmentRequest {
                user_id: player.clone(),
            });
            request
                .metadata_mut()
                .insert("authorization", authorization.clone());
            if let Ok(answer) = users.get_user_segment(request).await
                && answer.into_inner().assigned_at.is_some_and(|assigned| {
                    (assigned.seconds, assigned.nanos)
                        >= (sent_at.timestamp(), sent_at.timestamp_subsec_nanos() as i32)
                })
            {
                break started.elapsed();
            }
            if started.elapsed() >= PROBE_TIMEOUT {
                report.timed_out += 1;
                break PROBE_TIMEOUT;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        };
        report.latencies_ms.push(latency.as_secs_f64() * 1e3);
        tokio::select! {
            _ = stop.changed() => {}
            () = tokio::time::sleep(PROBE_INTERVAL) => {}
        }
    }
    report.latencies_ms.sort_by(f64::total_cmp);
    Ok(report)
}

async fn send(
    sender: &mut ProbeSender,
    authorization: &MetadataValue<Ascii>,
    transaction: &LiveTransaction,
) -> anyhow::Result<()> {
    match sender {
        ProbeSender::Grpc(client) => {
            let mut request = tonic::Request::new(IngestBatchRequest {
                transactions: vec![transaction_message(transaction)],
            });
            request
                .metadata_mut()
                .insert("authorization", authorization.clone());
            let outcome = client
                .ingest_batch(request)
                .await
                .context("sending a probe")?
                .into_inner()
                .outcome
                .unwrap_or_default();
            anyhow::ensure!(
                outcome.accepted == 1,
                "a probe was not accepted: {outcome:?}"
            );
        }
        ProbeSender::Amqp { channel, queue } => {
            let body = serde_json::to_vec(transaction).context("writing a probe")?;
            let confirm = channel
                .basic_publish(
                    "".into(),
                    queue.as_str().into(),
                    lapin::options::BasicPublishOptions::default(),
                    &body,
                    lapin::BasicProperties::default()
                        .with_delivery_mode(2)
                        .with_content_type("application/json".into()),
                )
                .await
                .context("publishing a probe")?;
            anyhow::ensure!(
                confirm.await.context("confirming a probe")?.is_ack(),
                "the broker refused a probe"
            );
        }
    }
    Ok(())
}
