//! Draining before a shutdown: once a stop is asked for, the server keeps answering for
//! `CRMBET_SHUTDOWN_DRAIN_SECONDS` while `/health` says 503 `"draining"` and the gRPC health
//! service NOT_SERVING, so load balancers and readiness probes stop sending new work before
//! the listener stops accepting it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::health::DatabaseProbe;

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

    /// Resolves once draining has begun.
    async fn begun(&self) {
        let mut started = self.started.subscribe();
        // An error means the sender is gone: nothing will begin any more.
        if started.wait_for(|started| *started).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Makes `reporter` answer for `services` what `/health` says: SERVING while the
    /// database answers `probe`, NOT_SERVING while it does not (checked every
    /// [`DATABASE_CHECK_INTERVAL`]), so a readiness probe on a service takes the instance out
    /// when it cannot serve. The server as a whole (`""`, what liveness probes ask) stays
    /// SERVING through a database outage, since restarting would not help; once draining
    /// begins, everything says NOT_SERVING for good.
    pub(crate) fn report_through(
        self: &Arc<Self>,
        reporter: HealthReporter,
        services: Vec<&'static str>,
        probe: Arc<DatabaseProbe>,
    ) {
        let draining = Arc::clone(self);
        tokio::spawn(async move {
            let mut database_up = true;
            loop {
                if draining.has_begun() {
                    for service in services.iter().copied().chain([""]) {
                        reporter
                            .set_service_status(service, ServingStatus::NotServing)
                            .await;
                    }
                    return;
                }
                let up = probe.ping().await.is_ok();
                if up != database_up {
                    let status = if up {
                        ServingStatus::Serving
                    } else {
                        ServingStatus::NotServing
                    };
                    for service in &services {
                        reporter.set_service_status(*service, status).await;
                    }
                    database_up = up;
                }
                tokio::select! {
                    () = draining.begun() => {}
                    () = tokio::time::sleep(DATABASE_CHECK_INTERVAL) => {}
                }
            }
        });
    }
}

/// How often the gRPC health service re-checks the database.
pub(crate) const DATABASE_CHECK_INTERVAL: Duration = Duration::from_secs(2);

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

        let directory = tempfile::tempdir().expect("a scratch folder");
        let url = format!(
            "sqlite://{}?mode=rwc",
            directory.path().join("probe.db").display()
        );
        let store = crmbet_store::Store::connect(&url)
            .await
            .expect("a scratch SQLite database");
        let draining = Arc::new(Draining::default());
        draining.report_through(
            reporter,
            vec!["crmbet.v1.UserService"],
            Arc::new(DatabaseProbe::new(store)),
        );
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
