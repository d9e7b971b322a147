//! `crmbet serve` with `CRMBET_TLS_CERT_FILE` and `CRMBET_TLS_KEY_FILE`: it announces an
//! `https://` address, answers gRPC over TLS and stops cleanly; with only one of the two set
//! it refuses to start.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::server::RunningServer;

/// Writes a self-signed certificate for `localhost` and its key under `directory`; returns
/// the certificate's PEM and the two paths.
fn write_certificate(directory: &Path) -> (String, String, String) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let certificate_pem = certified.cert.pem();
    let certificate_file = directory.join("chain.pem");
    let key_file = directory.join("key.pem");
    std::fs::write(&certificate_file, &certificate_pem).unwrap();
    std::fs::write(&key_file, certified.signing_key.serialize_pem()).unwrap();
    (
        certificate_pem,
        certificate_file.display().to_string(),
        key_file.display().to_string(),
    )
}

#[tokio::test]
async fn serve_with_tls_announces_https_and_answers_grpc_over_tls() {
    let directory = tempfile::tempdir().unwrap();
    let (certificate_pem, certificate_file, key_file) = write_certificate(directory.path());
    let database_url = format!(
        "sqlite://{}?mode=rwc",
        directory.path().join("crmbet.db").display()
    );
    let server = RunningServer::serve_with_environment(
        &database_url,
        &[
            ("CRMBET_TLS_CERT_FILE", certificate_file),
            ("CRMBET_TLS_KEY_FILE", key_file),
        ],
    );
    assert_eq!(server.scheme, "https");

    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&certificate_pem))
        .domain_name("localhost");
    let channel = Endpoint::from_shared(server.url())
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = HealthClient::new(channel);
    let response = client
        .check(HealthCheckRequest {
            service: "crmbet.v1.ClusterService".to_owned(),
        })
        .await
        .unwrap();
    assert_eq!(response.into_inner().status, ServingStatus::Serving as i32);

    // The client keeps its HTTP/2 connection open: shutdown must close it well before the
    // 30 s grace period runs out. Off the runtime, so the client can answer the GOAWAY.
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "shutdown waited for the grace period: {:?}",
        started.elapsed()
    );
    drop(client);
}

#[test]
fn serve_refuses_a_certificate_without_a_key() {
    let directory = tempfile::tempdir().unwrap();
    let (_, certificate_file, _) = write_certificate(directory.path());
    let output = Command::new(env!("CARGO_BIN_EXE_crmbet"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env(
            "DATABASE_URL",
            format!(
                "sqlite://{}?mode=rwc",
                directory.path().join("crmbet.db").display()
            ),
        )
        .env("CRMBET_TLS_CERT_FILE", certificate_file)
        .env_remove("CRMBET_TLS_KEY_FILE")
        .env("CRMBET_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "serve started: {stderr}");
    assert!(stderr.contains("CRMBET_TLS_KEY_FILE"), "{stderr}");
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("listening on"),
        "serve listened before refusing"
    );
}
