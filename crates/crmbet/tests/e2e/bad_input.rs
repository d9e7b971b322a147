//! Bad input, table-driven: each case gets its precise code, the matching HTTP status and
//! an actionable message, and the database is unchanged afterwards.

use crate::server::RunningServer;
use crmbet_proto::v1::campaign_service_client::CampaignServiceClient;
use crmbet_proto::v1::cluster_service_client::ClusterServiceClient;
use crmbet_proto::v1::user_service_client::UserServiceClient;
use crmbet_proto::v1::{
    CreateCampaignRequest, GetClusterRequest, GetUserSegmentRequest, ListClusterUsersRequest,
    ListClustersRequest, SearchUsersRequest,
};
use crmbet_store::Store;
use tonic::Code;

struct RestCase {
    method: &'static str,
    path: &'static str,
    content_type: Option<&'static str>,
    body: &'static str,
    http_status: u16,
    code: &'static str,
    message_mentions: &'static str,
}

const fn get(
    path: &'static str,
    http_status: u16,
    code: &'static str,
    mentions: &'static str,
) -> RestCase {
    RestCase {
        method: "GET",
        path,
        content_type: None,
        body: "",
        http_status,
        code,
        message_mentions: mentions,
    }
}

const REST_CASES: &[RestCase] = &[
    get(
        "/api/v1/clusters?page_size=-1",
        400,
        "INVALID_ARGUMENT",
        "page_size",
    ),
    get(
        "/api/v1/clusters?page_size=5000",
        400,
        "INVALID_ARGUMENT",
        "between 1 and 1000",
    ),
    get(
        "/api/v1/clusters?page_token=bm90LWEtdG9rZW4",
        400,
        "INVALID_ARGUMENT",
        "page_token",
    ),
    get(
        "/api/v1/clusters?page_token=%21%21",
        400,
        "INVALID_ARGUMENT",
        "page_token",
    ),
    get(
        "/api/v1/clusters/abc",
        400,
        "INVALID_ARGUMENT",
        "cluster_id",
    ),
    get("/api/v1/clusters/0", 400, "INVALID_ARGUMENT", "cluster_id"),
    get(
        "/api/v1/clusters/-3/users",
        400,
        "INVALID_ARGUMENT",
        "cluster_id",
    ),
    get(
        "/api/v1/clusters/987654",
        404,
        "NOT_FOUND",
        "cluster 987654",
    ),
    get(
        "/api/v1/clusters/987654/users",
        404,
        "NOT_FOUND",
        "cluster 987654",
    ),
    get(
        "/api/v1/clusters/987654/analytics",
        404,
        "NOT_FOUND",
        "cluster 987654",
    ),
    get(
        "/api/v1/user/bad%20id/segment",
        400,
        "INVALID_ARGUMENT",
        "user_id",
    ),
    get(
        "/api/v1/user/nobody-here/segment",
        404,
        "NOT_FOUND",
        "nobody-here",
    ),
    get(
        "/api/v1/users/nobody-here/behavior",
        404,
        "NOT_FOUND",
        "nobody-here",
    ),
    get(
        "/api/v1/users/search?country=gb",
        400,
        "INVALID_ARGUMENT",
        "country",
    ),
    get(
        "/api/v1/users/search?min_monetary=lots",
        400,
        "INVALID_ARGUMENT",
        "min_monetary",
    ),
    get(
        "/api/v1/users/search?last_active_after=yesterday",
        400,
        "INVALID_ARGUMENT",
        "last_active_after",
    ),
    get(
        "/api/v1/users/search?colour=blue",
        400,
        "INVALID_ARGUMENT",
        "colour",
    ),
    get(
        "/api/v1/no-such-thing",
        404,
        "NOT_FOUND",
        "/api/v1/no-such-thing",
    ),
    RestCase {
        method: "POST",
        path: "/api/v1/campaigns",
        content_type: Some("application/json"),
        body: "{not json",
        http_status: 400,
        code: "INVALID_ARGUMENT",
        message_mentions: "JSON",
    },
    RestCase {
        method: "POST",
        path: "/api/v1/campaigns",
        content_type: Some("application/json"),
        body: "{\"name\": 42, \"holdout_share\": \"lots\"}",
        http_status: 400,
        code: "INVALID_ARGUMENT",
        message_mentions: "",
    },
    RestCase {
        method: "POST",
        path: "/api/v1/campaigns",
        content_type: Some("text/plain"),
        body: "name=x",
        http_status: 415,
        code: "INVALID_ARGUMENT",
        message_mentions: "application/json",
    },
    RestCase {
        method: "POST",
        path: "/api/v1/campaigns",
        content_type: Some("application/json"),
        body: "{\"name\": \"Welcome back\", \"cluster_ids\": [1]}",
        http_status: 400,
        code: "INVALID_ARGUMENT",
        message_mentions: "campaign_type",
    },
    RestCase {
        method: "DELETE",
        path: "/api/v1/clusters",
        content_type: None,
        body: "",
        http_status: 405,
        code: "UNIMPLEMENTED",
        message_mentions: "GET",
    },
];

/// Rows per table, except the audit log: a refused write is still audited, on purpose.
async fn domain_row_counts(store: &Store) -> std::collections::BTreeMap<&'static str, i64> {
    let mut counts = store.row_counts().await.unwrap();
    counts.remove("audit_log");
    counts
}

#[tokio::test]
async fn rest_refuses_bad_input_precisely_and_changes_nothing() {
    let server = RunningServer::start(100);
    let store = Store::connect(&server.database_url).await.unwrap();
    let client = server.rest_client().await;
    let before = domain_row_counts(&store).await;
    let mut failures = Vec::new();
    for case in REST_CASES {
        let method = reqwest::Method::from_bytes(case.method.as_bytes()).unwrap();
        let mut request = client
            .request(method, format!("{}{}", server.url(), case.path))
            .body(case.body);
        if let Some(content_type) = case.content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        let code = body["code"].as_str().unwrap_or_default();
        let message = body["message"].as_str().unwrap_or_default();
        if status != case.http_status
            || code != case.code
            || message.is_empty()
            || !message.contains(case.message_mentions)
            || !body["details"].is_array()
        {
            failures.push(format!("{} {} -> {status} {body}", case.method, case.path));
        }
    }
    assert!(
        failures.is_empty(),
        "unexpected answers:\n{}",
        failures.join("\n")
    );
    // page_size 0 means the default, so it is accepted.
    let zero = client
        .get(format!("{}/api/v1/clusters?page_size=0", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(zero.status(), 200);
    assert_eq!(domain_row_counts(&store).await, before);
}

#[tokio::test]
async fn grpc_refuses_bad_input_with_precise_codes() {
    let server = RunningServer::start(100);
    let store = Store::connect(&server.database_url).await.unwrap();
    let channel = server.grpc_channel().await;
    let before = domain_row_counts(&store).await;
    let mut clusters = ClusterServiceClient::new(channel.clone());
    let mut users = UserServiceClient::new(channel.clone());
    let mut campaigns = CampaignServiceClient::new(channel);

    let mut answers: Vec<(&str, Result<(), tonic::Status>, Code, &str)> = Vec::new();
    for page_size in [-1, 5000] {
        let answer = clusters
            .list_clusters(ListClustersRequest {
                page_size,
                ..Default::default()
            })
            .await
            .map(drop);
        answers.push((
            "list_clusters page_size",
            answer,
            Code::InvalidArgument,
            "page_size",
        ));
    }
    let answer = clusters
        .list_clusters(ListClustersRequest {
            page_token: "garbage".into(),
            ..Default::default()
        })
        .await
        .map(drop);
    answers.push((
        "list_clusters page_token",
        answer,
        Code::InvalidArgument,
        "page_token",
    ));
    let answer = clusters
        .list_clusters(ListClustersRequest {
            model_id: 424242,
            ..Default::default()
        })
        .await
        .map(drop);
    answers.push((
        "list_clusters unknown model",
        answer,
        Code::NotFound,
        "model 424242",
    ));
    let answer = clusters
        .get_cluster(GetClusterRequest { cluster_id: 0 })
        .await
        .map(drop);
    answers.push(("get_cluster 0", answer, Code::InvalidArgument, "cluster_id"));
    let answer = clusters
        .get_cluster(GetClusterRequest { cluster_id: 987654 })
        .await
        .map(drop);
    answers.push(("get_cluster unknown", answer, Code::NotFound, "987654"));
    let answer = clusters
        .list_cluster_users(ListClusterUsersRequest {
            cluster_id: 987654,
            ..Default::default()
        })
        .await
        .map(drop);
    answers.push((
        "list_cluster_users unknown",
        answer,
        Code::NotFound,
        "987654",
    ));
    let answer = users
        .get_user_segment(GetUserSegmentRequest {
            user_id: String::new(),
        })
        .await
        .map(drop);
    answers.push(("segment empty id", answer, Code::InvalidArgument, "user_id"));
    let answer = users
        .get_user_segment(GetUserSegmentRequest {
            user_id: "x".repeat(500),
        })
        .await
        .map(drop);
    answers.push((
        "segment long id",
        answer,
        Code::InvalidArgument,
        "at most 128",
    ));
    let answer = users
        .search_users(SearchUsersRequest {
            max_monetary: "1e9".into(),
            ..Default::default()
        })
        .await
        .map(drop);
    answers.push((
        "search bad amount",
        answer,
        Code::InvalidArgument,
        "max_monetary",
    ));
    let answer = campaigns
        .create_campaign(CreateCampaignRequest::default())
        .await
        .map(drop);
    answers.push((
        "create_campaign",
        answer,
        Code::InvalidArgument,
        "campaign_type",
    ));

    let failures: Vec<String> = answers
        .into_iter()
        .filter_map(|(name, answer, code, mentions)| match answer {
            Err(status) if status.code() == code && status.message().contains(mentions) => None,
            other => Some(format!("{name}: {other:?}")),
        })
        .collect();
    assert!(
        failures.is_empty(),
        "unexpected answers:\n{}",
        failures.join("\n")
    );
    assert_eq!(domain_row_counts(&store).await, before);
}
