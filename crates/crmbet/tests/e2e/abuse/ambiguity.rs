//! Ambiguous or malformed input, table-driven: duplicate JSON keys, a field under two
//! names, two `Authorization` headers, a spoofed `Host`, malformed protobuf, an oversized
//! body. Each is refused with its precise code, and none of them logs anyone in.

use crmbet_proto::v1::ListClustersRequest;
use crmbet_proto::v1::cluster_service_client::ClusterServiceClient;
use sea_orm::{ConnectionTrait, Database, Statement};
use tonic::Code;

use super::raw_http::exchange;
use crate::server::RunningServer;

const PUBLIC_ORIGIN: &str = "http://crm.example.test";
const MAX_BODY_BYTES: usize = 4096;

struct Case {
    name: &'static str,
    head: String,
    body: Vec<u8>,
    http_status: u16,
    /// The `code` of a REST error body, or the `grpc-status` of a grpc-web answer.
    code: &'static str,
    message_mentions: &'static str,
}

fn rest(
    name: &'static str,
    head: String,
    body: &str,
    http_status: u16,
    code: &'static str,
    mentions: &'static str,
) -> Case {
    Case {
        name,
        head,
        body: body.as_bytes().to_vec(),
        http_status,
        code,
        message_mentions: mentions,
    }
}

fn cases(token: &str, admin: &(String, String)) -> Vec<Case> {
    let (username, password) = admin;
    let login =
        "POST /api/v1/auth/login HTTP/1.1\r\nhost: crmbet\r\ncontent-type: application/json";
    let clusters = |extra: &str| {
        format!(
            "GET /api/v1/clusters HTTP/1.1\r\nhost: crmbet\r\nauthorization: Bearer {token}{extra}"
        )
    };
    // A grpc-web frame whose message is not a LoginRequest (field 1 with wire type 7).
    let mut malformed = vec![0, 0, 0, 0, 3];
    malformed.extend_from_slice(&[0x0f, 0xff, 0xff]);
    vec![
        rest(
            "duplicate JSON keys",
            login.to_owned(),
            &format!(
                r#"{{"username": "nobody", "username": "{username}", "password": "{password}"}}"#
            ),
            400,
            "INVALID_ARGUMENT",
            "duplicate key \"username\"",
        ),
        rest(
            "one field under its proto and its JSON name",
            "POST /api/v1/auth/refresh HTTP/1.1\r\nhost: crmbet\r\ncontent-type: application/json"
                .to_owned(),
            r#"{"refresh_token": "a", "refreshToken": "b"}"#,
            400,
            "INVALID_ARGUMENT",
            "refresh_token is given twice",
        ),
        rest(
            "two authorization headers",
            clusters("\r\nauthorization: Bearer not.a.token"),
            "",
            400,
            "INVALID_ARGUMENT",
            "authorization header appears more than once",
        ),
        rest(
            "a spoofed Host (DNS rebinding)",
            format!(
                "GET /api/v1/clusters HTTP/1.1\r\nhost: evil.example\r\norigin: http://evil.example\r\n\
                 authorization: Bearer {token}"
            ),
            "",
            403,
            "PERMISSION_DENIED",
            "origin http://evil.example",
        ),
        rest(
            "a body over CRMBET_MAX_BODY_BYTES",
            login.to_owned(),
            &format!(
                r#"{{"username": "{}", "password": "x"}}"#,
                "u".repeat(MAX_BODY_BYTES)
            ),
            413,
            "OUT_OF_RANGE",
            "larger than the limit",
        ),
        Case {
            name: "malformed protobuf",
            head: "POST /crmbet.v1.AuthService/Login HTTP/1.1\r\nhost: crmbet\r\n\
                   content-type: application/grpc-web+proto\r\nx-grpc-web: 1"
                .to_owned(),
            body: malformed,
            http_status: 200,
            code: "3",
            message_mentions: "not a valid protobuf message",
        },
    ]
}

#[tokio::test]
async fn ambiguous_and_malformed_requests_are_refused_with_precise_codes() {
    let directory = tempfile::tempdir().unwrap();
    let database_url = format!(
        "sqlite://{}?mode=rwc",
        directory.path().join("crmbet.db").display()
    );
    let server = RunningServer::serve_with_environment(
        &database_url,
        &[
            ("CRMBET_PUBLIC_ORIGINS", PUBLIC_ORIGIN.to_owned()),
            ("CRMBET_MAX_BODY_BYTES", MAX_BODY_BYTES.to_string()),
        ],
    );
    let token = server.access_token().await;
    let database = Database::connect(&database_url).await.unwrap();
    let logins_before = successful_logins(&database).await;

    for case in cases(&token, &server.admin) {
        let response = exchange(&server.address, &case.head, &case.body).await;
        assert_eq!(
            response.status,
            case.http_status,
            "{}: {}",
            case.name,
            String::from_utf8_lossy(&response.body)
        );
        let (code, message) = if response.header("content-type") == Some("application/json") {
            let body = response.json();
            (
                body["code"].as_str().unwrap_or_default().to_owned(),
                body["message"].as_str().unwrap_or_default().to_owned(),
            )
        } else {
            (
                response
                    .header("grpc-status")
                    .unwrap_or_default()
                    .to_owned(),
                percent_decoded(response.header("grpc-message").unwrap_or_default()),
            )
        };
        assert_eq!(code, case.code, "{}: {message}", case.name);
        assert!(
            message.contains(case.message_mentions),
            "{}: {message}",
            case.name
        );
    }
    assert_eq!(
        successful_logins(&database).await,
        logins_before,
        "no refused request logged anyone in"
    );
    let outcome = last_login_outcome(&database).await;
    assert_eq!(
        outcome, "INVALID_ARGUMENT",
        "the malformed login is audited as the caller's error"
    );

    // The configured public origin is same-origin; the Host header plays no part.
    let same_origin = exchange(
        &server.address,
        &format!(
            "GET /api/v1/clusters HTTP/1.1\r\nhost: elsewhere.example\r\norigin: {PUBLIC_ORIGIN}\r\n\
             authorization: Bearer {token}"
        ),
        b"",
    )
    .await;
    assert_ne!(
        same_origin.status,
        403,
        "{}",
        String::from_utf8_lossy(&same_origin.body)
    );

    // gRPC metadata is headers too: two authorization entries are refused the same way.
    let channel = tonic::transport::Endpoint::from_shared(server.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut request = tonic::Request::new(ListClustersRequest::default());
    let metadata = request.metadata_mut();
    metadata.append("authorization", format!("Bearer {token}").parse().unwrap());
    metadata.append("authorization", "Bearer not.a.token".parse().unwrap());
    let refused = ClusterServiceClient::new(channel)
        .list_clusters(request)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
}

async fn successful_logins(database: &sea_orm::DatabaseConnection) -> i64 {
    let statement = Statement::from_string(
        database.get_database_backend(),
        "SELECT COUNT(*) AS logins FROM audit_log \
         WHERE action = '/crmbet.v1.AuthService/Login' AND details LIKE '%\"OK\"%'",
    );
    let row = database.query_one_raw(statement).await.unwrap().unwrap();
    row.try_get("", "logins").unwrap()
}

async fn last_login_outcome(database: &sea_orm::DatabaseConnection) -> String {
    let statement = Statement::from_string(
        database.get_database_backend(),
        "SELECT details FROM audit_log WHERE action = '/crmbet.v1.AuthService/Login' \
         ORDER BY id DESC LIMIT 1",
    );
    let row = database.query_one_raw(statement).await.unwrap().unwrap();
    let details: String = row.try_get("", "details").unwrap();
    let details: serde_json::Value = serde_json::from_str(&details).unwrap();
    details["outcome"].as_str().unwrap_or_default().to_owned()
}

fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%'
            && let Some(hex) = text.get(index + 1..index + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            decoded.push(byte);
            index += 3;
            continue;
        }
        decoded.push(bytes[index]);
        index += 1;
    }
    String::from_utf8_lossy(&decoded).into_owned()
}
