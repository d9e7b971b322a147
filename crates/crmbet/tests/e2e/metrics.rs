//! `/metrics`: Prometheus text that the Prometheus project's own parser (Python
//! `prometheus_client`) reads, with the RPC counters moving for each protocol and the
//! database's state (ETL run, active model, outbox) shown.

use std::io::Write;
use std::process::{Command, Stdio};

use bytes::{BufMut, BytesMut};
use crmbet_proto::v1::ListClustersRequest;
use crmbet_proto::v1::cluster_service_client::ClusterServiceClient;
use prost::Message;

use crate::server::RunningServer;

const LIST_CLUSTERS: &str = "/crmbet.v1.ClusterService/ListClusters";

/// The value of the one sample of `name` whose labels include every pair of `labels`;
/// 0 when there is none (a counter not yet created reads as zero).
fn sample(exposition: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let matching: Vec<f64> = exposition
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, series_labels) = match series.split_once('{') {
                Some((series_name, rest)) => (series_name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let all_labels_match = labels
                .iter()
                .all(|(key, value)| series_labels.contains(&format!("{key}=\"{value}\"")));
            (series_name == name && all_labels_match).then(|| value.parse::<f64>().ok())?
        })
        .collect();
    assert!(
        matching.len() <= 1,
        "{name} {labels:?} matches {} samples",
        matching.len()
    );
    matching.first().copied().unwrap_or(0.0)
}

async fn scrape(server: &RunningServer) -> String {
    let response = reqwest::get(format!("{}/metrics", server.url()))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    response.text().await.unwrap()
}

/// Fails unless Python's `prometheus_client` parses the whole exposition.
fn parses_as_prometheus_text(exposition: &str) {
    let python = std::env::var("CRMBET_PYTHON").expect(
        "CRMBET_PYTHON must point to a Python with prometheus_client; scripts/test.sh installs \
         one and sets it",
    );
    let check = "import sys\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        families = list(text_string_to_metric_families(sys.stdin.read()))\n\
        print(len(families), sum(len(family.samples) for family in families))\n";
    let mut child = Command::new(python)
        .args(["-c", check])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "prometheus_client could not parse /metrics: {}\n{exposition}",
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn list_clusters_over_grpc_web(server: &RunningServer, token: &str) {
    let message = ListClustersRequest::default().encode_to_vec();
    let mut body = BytesMut::new();
    body.put_u8(0);
    body.put_u32(u32::try_from(message.len()).unwrap());
    body.put_slice(&message);
    let response = reqwest::Client::new()
        .post(format!("{}{LIST_CLUSTERS}", server.url()))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .bearer_auth(token)
        .body(body.freeze())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Read to the end: the call is counted when its body ends.
    response.bytes().await.unwrap();
}

#[tokio::test]
async fn metrics_parse_and_count_each_protocol() {
    let server = RunningServer::start(300);
    let token = server.access_token().await;
    let before = scrape(&server).await;
    parses_as_prometheus_text(&before);
    assert_eq!(sample(&before, "crmbet_database_up", &[]), 1.0);
    assert!(sample(&before, "crmbet_etl_last_run_rows_loaded", &[]) > 0.0);
    let silhouette = sample(&before, "crmbet_model_active_silhouette", &[]);
    assert!(
        (-1.0..=1.0).contains(&silhouette),
        "silhouette {silhouette}"
    );
    assert!(sample(&before, "crmbet_model_active_clusters", &[]) >= 2.0);

    let rest = server.rest_client().await;
    let answer = rest
        .get(format!("{}/api/v1/clusters", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    answer.bytes().await.unwrap();
    let mut grpc = ClusterServiceClient::new(server.grpc_channel().await);
    grpc.list_clusters(ListClustersRequest::default())
        .await
        .unwrap();
    list_clusters_over_grpc_web(&server, &token).await;
    // A refused call: no token.
    let unauthenticated = ClusterServiceClient::new(
        tonic::transport::Endpoint::from_shared(server.url())
            .unwrap()
            .connect()
            .await
            .unwrap(),
    )
    .list_clusters(ListClustersRequest::default())
    .await
    .unwrap_err();
    assert_eq!(unauthenticated.code(), tonic::Code::Unauthenticated);
    // A browser request from a foreign origin, refused before any RPC.
    let foreign = reqwest::Client::new()
        .get(format!("{}/api/v1/clusters", server.url()))
        .header("origin", "https://evil.example")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);

    let after = scrape(&server).await;
    parses_as_prometheus_text(&after);
    let moved = |name: &str, labels: &[(&str, &str)]| {
        sample(&after, name, labels) - sample(&before, name, labels)
    };
    for protocol in ["rest", "grpc", "grpc-web"] {
        let ok = [
            ("rpc", LIST_CLUSTERS),
            ("protocol", protocol),
            ("code", "OK"),
        ];
        assert_eq!(
            moved("crmbet_rpc_requests_total", &ok),
            1.0,
            "{protocol}\n{after}"
        );
        // The gRPC one also timed the call refused for want of a token, below.
        let calls = if protocol == "grpc" { 2.0 } else { 1.0 };
        let timed = [("rpc", LIST_CLUSTERS), ("protocol", protocol)];
        assert_eq!(
            moved("crmbet_rpc_duration_seconds_count", &timed),
            calls,
            "{protocol}"
        );
        assert!(
            moved("crmbet_rpc_duration_seconds_sum", &timed) > 0.0,
            "{protocol}"
        );
    }
    let refused = [
        ("rpc", LIST_CLUSTERS),
        ("protocol", "grpc"),
        ("code", "UNAUTHENTICATED"),
    ];
    assert_eq!(moved("crmbet_rpc_requests_total", &refused), 1.0);
    assert_eq!(
        moved("crmbet_gateway_refusals_total", &[("reason", "origin")]),
        1.0
    );
    assert!(
        moved(
            "crmbet_rate_limit_decisions_total",
            &[("decision", "admitted")]
        ) >= 4.0
    );
    // Nothing a caller sends becomes a label.
    let made_up = reqwest::Client::new()
        .post(format!(
            "{}/crmbet.v1.ClusterService/NoSuchMethod",
            server.url()
        ))
        .header("content-type", "application/grpc")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    made_up.bytes().await.unwrap();
    let last = scrape(&server).await;
    assert!(
        !last.contains("NoSuchMethod"),
        "a caller's path became a label"
    );
}
