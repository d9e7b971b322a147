//! A closed-loop gRPC load of GetUserSegment: `concurrency` clients over `connections`
//! HTTP/2 connections, each sending its next request when the answer arrives.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use crmbet_proto::v1::GetUserSegmentRequest;
use crmbet_proto::v1::user_service_client::UserServiceClient;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

/// How one phase loads the server.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    pub concurrency: usize,
    pub connections: usize,
    pub warmup: Duration,
    pub measured: Duration,
    /// `Bearer …`, sent with every request.
    pub authorization: MetadataValue<tonic::metadata::Ascii>,
    pub seed: u64,
}

/// What one phase measured: answers completed inside the measured window.
#[derive(Debug, Clone)]
pub struct LoadReport {
    pub requests: u64,
    pub seconds: f64,
    /// Microseconds, sorted ascending.
    pub latencies_us: Vec<u32>,
    pub errors: u64,
    pub first_error: Option<String>,
}

impl LoadReport {
    pub fn throughput(&self) -> f64 {
        self.requests as f64 / self.seconds.max(1e-9)
    }

    /// The `quantile` latency in milliseconds (nearest rank).
    pub fn latency_ms(&self, quantile: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let rank = (quantile * self.latencies_us.len() as f64).ceil() as usize;
        let index = rank.clamp(1, self.latencies_us.len()) - 1;
        f64::from(self.latencies_us[index]) / 1000.0
    }
}

/// Opens `plan.connections` channels to `address`.
pub async fn connect(address: SocketAddr, connections: usize) -> anyhow::Result<Vec<Channel>> {
    let mut channels = Vec::with_capacity(connections);
    for _ in 0..connections.max(1) {
        let channel = Channel::from_shared(format!("http://{address}"))
            .context("building the server's address")?
            .connect()
            .await
            .with_context(|| format!("connecting to {address}"))?;
        channels.push(channel);
    }
    Ok(channels)
}

/// Drives GetUserSegment for `user_ids` (picked at random) at `address` as `plan` says.
pub async fn drive(
    address: SocketAddr,
    user_ids: Arc<Vec<String>>,
    plan: &LoadPlan,
) -> anyhow::Result<LoadReport> {
    anyhow::ensure!(!user_ids.is_empty(), "no player to ask for");
    let channels = connect(address, plan.connections).await?;
    let started = Instant::now();
    let window_start = started + plan.warmup;
    let window_end = window_start + plan.measured;
    let mut clients = tokio::task::JoinSet::new();
    for client_index in 0..plan.concurrency.max(1) {
        let channel = channels[client_index % channels.len()].clone();
        let user_ids = Arc::clone(&user_ids);
        let authorization = plan.authorization.clone();
        let seed = plan.seed.wrapping_add(client_index as u64);
        clients.spawn(async move {
            one_client(
                UserServiceClient::new(channel),
                &user_ids,
                authorization,
                seed,
                window_start,
                window_end,
            )
            .await
        });
    }
    let mut report = LoadReport {
        requests: 0,
        seconds: plan.measured.as_secs_f64(),
        latencies_us: Vec::new(),
        errors: 0,
        first_error: None,
    };
    while let Some(client) = clients.join_next().await {
        let client = client.context("a load client stopped")?;
        report.requests += client.latencies_us.len() as u64;
        report.latencies_us.extend(client.latencies_us);
        report.errors += client.errors;
        if report.first_error.is_none() {
            report.first_error = client.first_error;
        }
    }
    report.latencies_us.sort_unstable();
    Ok(report)
}

struct ClientOutcome {
    latencies_us: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
}

async fn one_client(
    mut client: UserServiceClient<Channel>,
    user_ids: &[String],
    authorization: MetadataValue<tonic::metadata::Ascii>,
    seed: u64,
    window_start: Instant,
    window_end: Instant,
) -> ClientOutcome {
    let mut random = StdRng::seed_from_u64(seed);
    let mut outcome = ClientOutcome {
        latencies_us: Vec::with_capacity(64 * 1024),
        errors: 0,
        first_error: None,
    };
    loop {
        let user_id = user_ids[random.random_range(0..user_ids.len())].clone();
        let mut request = tonic::Request::new(GetUserSegmentRequest { user_id });
        request
            .metadata_mut()
            .insert("authorization", authorization.clone());
        let sent = Instant::now();
        let answer = client.get_user_segment(request).await;
        let answered = Instant::now();
        if answered >= window_end {
            return outcome;
        }
        if sent < window_start {
            continue;
        }
        match answer {
            Ok(_) => {
                let micros = answered.duration_since(sent).as_micros();
                outcome
                    .latencies_us
                    .push(u32::try_from(micros).unwrap_or(u32::MAX));
            }
            Err(status) => {
                outcome.errors += 1;
                if outcome.first_error.is_none() {
                    outcome.first_error =
                        Some(format!("{:?}: {}", status.code(), status.message()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let report = LoadReport {
            requests: 100,
            seconds: 2.0,
            latencies_us: (1..=100).map(|value| value * 1000).collect(),
            errors: 0,
            first_error: None,
        };
        assert_eq!(report.throughput(), 50.0);
        assert_eq!(report.latency_ms(0.5), 50.0);
        assert_eq!(report.latency_ms(0.99), 99.0);
        assert_eq!(report.latency_ms(1.0), 100.0);
    }
}
