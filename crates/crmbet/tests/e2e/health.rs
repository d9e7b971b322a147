//! `/health` follows the database: 200 while it answers, 503 once it is gone; the gRPC
//! health service follows too (SERVING, then NOT_SERVING).

use std::time::{Duration, Instant};

use crmbet_store::throwaway_postgres::ThrowawayPostgres;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::server::RunningServer;

#[tokio::test]
async fn health_turns_503_when_the_database_goes_away() {
    let database = ThrowawayPostgres::create("crmbet_health").await;
    let server = RunningServer::serve(&database.url);
    let client = reqwest::Client::new();
    let health_url = format!("{}/health", server.url());

    let healthy = client.get(&health_url).send().await.unwrap();
    assert_eq!(healthy.status(), 200);
    let body: serde_json::Value = healthy.json().await.unwrap();
    assert_eq!(body["database"]["backend"], "postgres");

    let channel = tonic::transport::Endpoint::from_shared(server.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc_health = HealthClient::new(channel);
    let grpc_status = |service: &str| HealthCheckRequest {
        service: service.to_owned(),
    };
    let serving = grpc_health
        .check(grpc_status("crmbet.v1.UserService"))
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(serving, ServingStatus::Serving as i32);

    // Dropping it drops the database under the running server.
    drop(database);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let response = client.get(&health_url).send().await.unwrap();
        if response.status() == 503 {
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body["database"]["status"], "down");
            assert_eq!(body["status"], "unavailable");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "health never reported the database down"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The gRPC health of the services, which readiness probes ask, follows within its check
    // interval; the server as a whole (liveness) stays SERVING: a restart would not help.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let user = grpc_health
            .check(grpc_status("crmbet.v1.UserService"))
            .await
            .unwrap()
            .into_inner();
        if user.status == ServingStatus::NotServing as i32 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "gRPC health of UserService still says {} with the database gone",
            user.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let whole = grpc_health
        .check(grpc_status(""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(whole.status, ServingStatus::Serving as i32, "liveness");
}

/// `/health` for a server with `AMQP_URL` set to `amqp_url`, on a scratch SQLite database.
async fn health_with_broker(amqp_url: &str) -> serde_json::Value {
    let directory = tempfile::tempdir().unwrap();
    let database_url = format!(
        "sqlite://{}?mode=rwc",
        directory.path().join("crmbet.db").display()
    );
    let server =
        RunningServer::serve_with_environment(&database_url, &[("AMQP_URL", amqp_url.to_owned())]);
    let response = reqwest::get(format!("{}/health", server.url()))
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        200,
        "a broker outage is not a server outage"
    );
    response.json().await.unwrap()
}

#[tokio::test]
async fn health_reports_the_configured_broker_as_it_is() {
    let broker_url = std::env::var("CRMBET_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned());
    let up = health_with_broker(&broker_url).await;
    assert_eq!(
        up["broker"]["status"], "up",
        "RabbitMQ must run at {broker_url}: {up}"
    );
    assert_eq!(up["status"], "ok", "{up}");

    // A port nobody listens on: the broker is down, the server degraded but serving.
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = health_with_broker(&format!("amqp://guest:guest@127.0.0.1:{closed_port}/%2f")).await;
    assert_eq!(down["broker"]["status"], "degraded", "{down}");
    assert_eq!(down["status"], "degraded", "{down}");
    let reason = down["broker"]["reason"].as_str().unwrap();
    assert!(reason.contains(&closed_port.to_string()), "{reason}");
    assert!(
        !reason.contains("guest"),
        "no credentials in health: {reason}"
    );
}
