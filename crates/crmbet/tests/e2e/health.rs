//! `/health` follows the database: 200 while it answers, 503 once it is gone.

use std::time::{Duration, Instant};

use rand::Rng;
use sea_orm::{ConnectionTrait, Database};

use crate::server::RunningServer;

#[tokio::test]
async fn health_turns_503_when_the_database_goes_away() {
    let admin_url = std::env::var("CRMBET_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let admin = Database::connect(&admin_url)
        .await
        .unwrap_or_else(|error| panic!("PostgreSQL is required at {admin_url}: {error}"));
    let name = format!("crmbet_health_{:016x}", rand::rng().random::<u64>());
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let base = admin_url
        .rsplit_once('/')
        .map_or(admin_url.as_str(), |(base, _)| base);
    let server = RunningServer::serve(&format!("{base}/{name}"));
    let client = reqwest::Client::new();
    let health_url = format!("{}/health", server.url());

    let healthy = client.get(&health_url).send().await.unwrap();
    assert_eq!(healthy.status(), 200);
    let body: serde_json::Value = healthy.json().await.unwrap();
    assert_eq!(body["database"]["backend"], "postgres");

    admin
        .execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .await
        .unwrap();
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
}
