//! The same server called four ways: a tonic client, raw grpc-web over HTTP/1.1, REST with
//! JSON, and a Python grpcio client that finds the services through reflection.

use crate::server::RunningServer;
use bytes::{Buf, BufMut, BytesMut};
use crmbet_proto::v1::cluster_service_client::ClusterServiceClient;
use crmbet_proto::v1::user_service_client::UserServiceClient;
use crmbet_proto::v1::{
    GetUserSegmentRequest, ListClusterUsersRequest, ListClustersRequest, ListClustersResponse,
};
use prost::Message;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

#[tokio::test]
async fn tonic_client_reads_clusters_members_and_segments() {
    let server = RunningServer::start(300);
    let channel = server.grpc_channel().await;
    let mut clusters = ClusterServiceClient::new(channel.clone());
    let listed = clusters
        .list_clusters(ListClustersRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!((2..=12).contains(&listed.clusters.len()), "{listed:?}");
    let names: std::collections::HashSet<_> = listed
        .clusters
        .iter()
        .map(|cluster| &cluster.name)
        .collect();
    assert_eq!(names.len(), listed.clusters.len(), "names are unique");
    assert!(names.iter().all(|name| !name.is_empty()));
    let first = listed
        .clusters
        .iter()
        .max_by_key(|cluster| cluster.size)
        .unwrap();
    let members = clusters
        .list_cluster_users(ListClusterUsersRequest {
            cluster_id: first.cluster_id,
            page_size: 5,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(members.users.len(), 5);
    assert!(!members.next_page_token.is_empty());

    let mut users = UserServiceClient::new(channel.clone());
    let segment = users
        .get_user_segment(GetUserSegmentRequest {
            user_id: members.users[0].user_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(segment.cluster_id, first.cluster_id);
    assert_eq!(segment.cluster_name, first.name);

    let mut health = HealthClient::new(channel);
    for service in ["", "crmbet.v1.ClusterService", "crmbet.v1.UserService"] {
        let answer = health
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.status, ServingStatus::Serving as i32, "{service}");
    }
}

#[tokio::test]
async fn grpc_web_over_http1_lists_clusters() {
    let server = RunningServer::start(200);
    let mut body = BytesMut::new();
    let message = ListClustersRequest::default().encode_to_vec();
    body.put_u8(0);
    body.put_u32(u32::try_from(message.len()).unwrap());
    body.put_slice(&message);
    let client = reqwest::Client::builder().http1_only().build().unwrap();
    let response = client
        .post(format!(
            "{}/crmbet.v1.ClusterService/ListClusters",
            server.url()
        ))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .bearer_auth(server.access_token().await)
        .body(body.freeze())
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/grpc-web+proto"
    );
    let mut payload = response.bytes().await.unwrap();
    let mut decoded = None;
    let mut trailers = String::new();
    while payload.has_remaining() {
        let flags = payload.get_u8();
        let length = usize::try_from(payload.get_u32()).unwrap();
        let frame = payload.split_to(length);
        if flags & 0x80 == 0 {
            decoded = Some(ListClustersResponse::decode(frame).unwrap());
        } else {
            trailers = String::from_utf8(frame.to_vec()).unwrap();
        }
    }
    assert!(trailers.contains("grpc-status:0"), "{trailers}");
    let clusters = decoded.expect("a message frame").clusters;
    assert!((2..=12).contains(&clusters.len()), "{clusters:?}");
}

#[tokio::test]
async fn rest_json_reads_clusters_and_segments() {
    let server = RunningServer::start(200);
    let client = server.rest_client().await;
    let clusters: serde_json::Value = client
        .get(format!("{}/api/v1/clusters", server.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let list = clusters["clusters"].as_array().expect("clusters array");
    assert!((2..=12).contains(&list.len()), "{list:?}");
    let cluster_id = list[0]["cluster_id"].as_i64().expect("numeric cluster_id");
    let profile = list[0]["profile"].as_array().expect("profile array");
    assert!(
        !profile.is_empty() && profile[0]["z_score"].is_number(),
        "a trained cluster has a feature profile: {}",
        list[0]
    );
    assert!(
        list[0]["name"]
            .as_str()
            .is_some_and(|name| !name.is_empty())
    );

    let members: serde_json::Value = client
        .get(format!(
            "{}/api/v1/clusters/{cluster_id}/users?page_size=2",
            server.url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let user_id = members["users"][0]["user_id"].as_str().unwrap().to_owned();
    assert!(
        members["next_page_token"]
            .as_str()
            .is_some_and(|token| !token.is_empty())
    );

    let segment: serde_json::Value = client
        .get(format!("{}/api/v1/user/{user_id}/segment", server.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(segment["cluster_id"].as_i64(), Some(cluster_id));

    let behavior = client
        .get(format!("{}/api/v1/users/{user_id}/behavior", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(behavior.status(), 200);
    let behavior: serde_json::Value = behavior.json().await.unwrap();
    assert!(behavior["rfm"]["monetary"]["amount"].as_str().is_some());

    let analytics = client
        .get(format!(
            "{}/api/v1/clusters/{cluster_id}/analytics",
            server.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(analytics.status(), 200);
    let analytics: serde_json::Value = analytics.json().await.unwrap();
    assert_eq!(
        analytics["recency_scores"]["players"]
            .as_array()
            .map(Vec::len),
        Some(5)
    );

    let search = client
        .get(format!(
            "{}/api/v1/users/search?cluster_id={cluster_id}&page_size=3&last_active_after=2020-01-01T00:00:00Z",
            server.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(search.status(), 200);
    let search: serde_json::Value = search.json().await.unwrap();
    assert_eq!(search["users"].as_array().map(Vec::len), Some(3));

    let health = client
        .get(format!("{}/health", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let health: serde_json::Value = health.json().await.unwrap();
    assert_eq!(health["database"]["status"], "up");
}

#[tokio::test]
async fn python_grpcio_client_finds_services_through_reflection() {
    let python = std::env::var("CRMBET_PYTHON").expect(
        "CRMBET_PYTHON must point to a Python with grpcio and grpcio-reflection; \
         scripts/test.sh installs one and sets it",
    );
    let server = RunningServer::start(200);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/python/reflection_client.py"
    );
    let address = server.address.clone();
    let access_token = server.access_token().await;
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .arg(script)
            .arg(address)
            .arg(access_token)
            .output()
            .expect("running the Python client")
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "python client failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let services = report["services"].as_array().unwrap();
    assert!(
        services
            .iter()
            .any(|service| service == "crmbet.v1.ClusterService")
    );
    assert!(
        (2..=12).contains(&report["clusters"].as_u64().unwrap()),
        "{report}"
    );
    assert!(
        report["first_cluster_name"]
            .as_str()
            .is_some_and(|name| !name.is_empty())
    );
    assert_eq!(
        report["without_token"], "UNAUTHENTICATED",
        "reflection is open, the API is not: {report}"
    );
}

#[tokio::test]
async fn sigterm_stops_the_server_cleanly() {
    let server = RunningServer::start(50);
    let client = reqwest::Client::new();
    let health = client
        .get(format!("{}/health", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let status = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
}
