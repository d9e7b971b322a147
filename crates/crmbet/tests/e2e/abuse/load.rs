//! Back-pressure instead of collapse: 2,000 concurrent heavy reads (searches of 1,000
//! players, cluster analytics) with one admin token. At most a few run at once; the excess
//! waits at most the configured queue time and is then answered UNAVAILABLE with
//! `retry-after`, instead of every request queueing for the pool's 5 s timeout. `/health`
//! answers within 100 ms throughout and reports the saturation; cached segment reads keep
//! succeeding.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crmbet_proto::v1::cluster_service_client::ClusterServiceClient;
use crmbet_proto::v1::user_service_client::UserServiceClient;
use crmbet_proto::v1::{
    GetClusterAnalyticsRequest, GetUserSegmentRequest, ListClusterUsersRequest,
    ListClustersRequest, SearchUsersRequest,
};
use tonic::Code;

use super::health_probe::HealthProbe;
use crate::server::{AuthorizedChannel, RunningServer};

const HEAVY_READ_CONCURRENCY: usize = 2;
const QUEUE_TIME: Duration = Duration::from_millis(300);
const REQUESTS: usize = 2000;
/// HTTP/2 connections the load is spread over (200 streams each at most).
const CHANNELS: usize = 20;
/// Slack for getting through the burst itself: the debug server and the 2,000 debug
/// clients share two cores (and, in the full suite, other tests' servers), so the last
/// request of the burst reaches the server up to two seconds after the first. Still well
/// under the pool's 5 s timeout that every request used to wait out.
const SLACK: Duration = Duration::from_millis(2500);
/// The database pool's own acquire timeout, which requests used to wait out.
const POOL_TIMEOUT: Duration = Duration::from_secs(5);

/// One heavy read's outcome.
struct Answer {
    code: Code,
    latency: Duration,
    retry_after: bool,
}

async fn heavy_read(channel: AuthorizedChannel, index: usize, cluster_id: i64) -> Answer {
    let started = Instant::now();
    let result = if index.is_multiple_of(2) {
        UserServiceClient::new(channel)
            .search_users(SearchUsersRequest {
                page_size: 1000,
                ..Default::default()
            })
            .await
            .map(|_| ())
    } else {
        ClusterServiceClient::new(channel)
            .get_cluster_analytics(GetClusterAnalyticsRequest { cluster_id })
            .await
            .map(|_| ())
    };
    let latency = started.elapsed();
    match result {
        Ok(()) => Answer {
            code: Code::Ok,
            latency,
            retry_after: false,
        },
        Err(status) => Answer {
            code: status.code(),
            latency,
            retry_after: status.metadata().get("retry-after").is_some(),
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_reads_are_shed_quickly_while_health_and_cached_reads_answer() {
    let server = RunningServer::start_with_environment(
        2000,
        &[
            (
                "CRMBET_HEAVY_READ_CONCURRENCY",
                HEAVY_READ_CONCURRENCY.to_string(),
            ),
            (
                "CRMBET_HEAVY_READ_QUEUE_MS",
                QUEUE_TIME.as_millis().to_string(),
            ),
            ("CRMBET_RATE_LIMIT_PER_HOUR", "10000000".to_owned()),
            (
                "CRMBET_RATE_LIMIT_PER_PRINCIPAL_PER_HOUR",
                "10000000".to_owned(),
            ),
        ],
    );
    let control = server.grpc_channel().await;
    let clusters = ClusterServiceClient::new(control.clone())
        .list_clusters(ListClustersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .clusters;
    let largest = clusters.iter().max_by_key(|cluster| cluster.size).unwrap();
    let member = ClusterServiceClient::new(control.clone())
        .list_cluster_users(ListClusterUsersRequest {
            cluster_id: largest.cluster_id,
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .users
        .remove(0)
        .user_id;
    let segment_request = || GetUserSegmentRequest {
        user_id: member.clone(),
    };
    // Warm the cache: the reads below must be served from it.
    UserServiceClient::new(control.clone())
        .get_user_segment(segment_request())
        .await
        .unwrap();
    let mut channels = Vec::new();
    for _ in 0..CHANNELS {
        channels.push(server.grpc_channel().await);
    }

    let health = HealthProbe::start(&server.url());
    let stop = Arc::new(AtomicBool::new(false));
    let cached_reads = {
        let stop = Arc::clone(&stop);
        let mut users = UserServiceClient::new(control.clone());
        let request = segment_request();
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                users
                    .get_user_segment(request.clone())
                    .await
                    .expect("a cached read succeeds under load");
                latencies.push(started.elapsed());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            latencies
        })
    };

    let started = Instant::now();
    let mut tasks = Vec::with_capacity(REQUESTS);
    for index in 0..REQUESTS {
        let channel = channels[index % CHANNELS].clone();
        tasks.push(tokio::spawn(heavy_read(channel, index, largest.cluster_id)));
    }
    let mut answers = Vec::with_capacity(REQUESTS);
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    let load_seconds = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let cached_latencies = cached_reads.await.unwrap();

    let succeeded: Vec<&Answer> = answers
        .iter()
        .filter(|answer| answer.code == Code::Ok)
        .collect();
    let refused: Vec<&Answer> = answers
        .iter()
        .filter(|answer| answer.code == Code::Unavailable)
        .collect();
    let other: Vec<Code> = answers
        .iter()
        .map(|answer| answer.code)
        .filter(|code| !matches!(code, Code::Ok | Code::Unavailable))
        .collect();
    let slowest = |answers: &[&Answer]| {
        answers
            .iter()
            .map(|answer| answer.latency)
            .max()
            .unwrap_or_default()
    };
    eprintln!(
        "{REQUESTS} heavy reads in {load_seconds:?}: {} ok (slowest {:?}), {} refused (slowest {:?}); \
         {} cached reads (slowest {:?})",
        succeeded.len(),
        slowest(&succeeded),
        refused.len(),
        slowest(&refused),
        cached_latencies.len(),
        cached_latencies.iter().max()
    );
    let (health_bodies, _) = health.finish(3).await;
    assert!(other.is_empty(), "unexpected codes: {other:?}");
    assert!(!succeeded.is_empty(), "no heavy read ran");
    assert!(!refused.is_empty(), "no heavy read was refused");
    assert!(
        refused.iter().all(|answer| answer.retry_after),
        "a refusal without retry-after"
    );
    assert!(
        slowest(&refused) <= QUEUE_TIME + SLACK,
        "a refusal took {:?}, the queue time is {QUEUE_TIME:?}",
        slowest(&refused)
    );
    assert!(
        slowest(&succeeded) < POOL_TIMEOUT,
        "a heavy read took {:?}",
        slowest(&succeeded)
    );
    assert!(
        !cached_latencies.is_empty(),
        "no cached read ran during the load"
    );
    let saturated = health_bodies
        .iter()
        .any(|body| body["status"] == "degraded" && body["load"]["status"] == "saturated");
    assert!(
        saturated,
        "health never reported the saturation: {:?}",
        health_bodies.last()
    );
}
