//! Draining before a shutdown: once a stop is asked for, the server keeps answering for
//! `CRMBET_SHUTDOWN_DRAIN_SECONDS` while `/health` says 503 `"draining"` and the gRPC health
//! service NOT_SERVING, so load balancers and readiness probes stop sending new work before
//! the listener stops accepting it.

use tokio::sync::watch;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// Whether this server is draining; cheap to share.
#[derive(Debug)]
pub struct Draining {
    started: watch::Sender<bool>,
}

impl Default for Draining {
    fn default() -> Self {
        Self {
            started: watch::channel(false).0,
        }
    }
}

impl Draining {
    /// Starts draining: health checks say so from now on. Idempotent.
    pub fn begin(&self) {
        self.started.send_replace(true);
    }

    /// Whether draining has begun.
    pub fn has_begun(&self) -> bool {
        *self.started.borrow()
    }

    /// Makes `reporter` answer NOT_SERVING for `services` and for the server as a whole
    /// (`""`) once draining begins.
    pub(crate) fn report_through(&self, reporter: HealthReporter, services: Vec<&'static str>) {
        let mut started = self.started.subscribe();
        tokio::spawn(async move {
            // An error means the state was dropped: the server is gone, nothing to report.
            if started.wait_for(|started| *started).await.is_err() {
                return;
            }
            for service in services.into_iter().chain([""]) {
                reporter
                    .set_service_status(service, ServingStatus::NotServing)
                    .await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn beginning_turns_the_grpc_health_service_to_not_serving() {
        use tonic_health::pb::HealthCheckRequest;
        use tonic_health::pb::health_server::Health;
        use tonic_health::server::{HealthReporter, HealthService};

        let reporter = HealthReporter::new();
        reporter
            .set_service_status("crmbet.v1.UserService", ServingStatus::Serving)
            .await;
        let service = HealthService::from_health_reporter(reporter.clone());
        let status = |name: &'static str| {
            let service = &service;
            async move {
                let request = tonic::Request::new(HealthCheckRequest {
                    service: name.to_owned(),
                });
                service
                    .check(request)
                    .await
                    .map(|answer| answer.into_inner().status)
                    .ok()
            }
        };
        let serving = Some(i32::from(
            tonic_health::pb::health_check_response::ServingStatus::Serving,
        ));
        let not_serving = Some(i32::from(
            tonic_health::pb::health_check_response::ServingStatus::NotServing,
        ));
        assert_eq!(status("").await, serving);

        let draining = Draining::default();
        draining.report_through(reporter, vec!["crmbet.v1.UserService"]);
        assert!(!draining.has_begun());
        assert_eq!(status("crmbet.v1.UserService").await, serving);
        draining.begin();
        assert!(draining.has_begun());
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
        loop {
            let (whole, user) = (status("").await, status("crmbet.v1.UserService").await);
            if whole == not_serving && user == not_serving {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "still {whole:?} / {user:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}
