//! Refusals before the service over HTTP/1.1: a client that sends its headers, pauses, then
//! sends its body (as grpc-web clients on Node do) reads the real answer — UNAUTHENTICATED,
//! 401, 403, 404, 429 — never a broken pipe, and its connection stays usable after.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::raw_http::{RawResponse, read_response};
use crate::server::RunningServer;

/// How long the client waits between its headers and its body.
const PAUSE: Duration = Duration::from_millis(300);

struct Case {
    name: &'static str,
    head: &'static str,
    body: &'static [u8],
    http_status: u16,
    /// For grpc-web: the `grpc-status` of the answer.
    grpc_status: Option<&'static str>,
    /// How the answer's content type begins.
    content_type: Option<&'static str>,
}

/// An empty protobuf message in one uncompressed grpc-web frame.
const EMPTY_FRAME: &[u8] = &[0, 0, 0, 0, 0];
/// The same frame, base64 for grpc-web-text.
const EMPTY_FRAME_TEXT: &[u8] = b"AAAAAAA=";

const CASES: &[Case] = &[
    Case {
        name: "grpc-web with a bad token",
        head: "POST /crmbet.v1.ClusterService/ListClusters HTTP/1.1\r\nhost: crmbet\r\n\
               content-type: application/grpc-web+proto\r\nx-grpc-web: 1\r\n\
               authorization: Bearer not.a.token",
        body: EMPTY_FRAME,
        http_status: 200,
        grpc_status: Some("16"),
        content_type: Some("application/grpc-web+proto"),
    },
    Case {
        name: "grpc-web-text without a token",
        head: "POST /crmbet.v1.ClusterService/ListClusters HTTP/1.1\r\nhost: crmbet\r\n\
               content-type: application/grpc-web-text\r\nx-grpc-web: 1",
        body: EMPTY_FRAME_TEXT,
        http_status: 200,
        grpc_status: Some("16"),
        content_type: Some("application/grpc-web-text"),
    },
    Case {
        name: "REST write with a bad token",
        head: "POST /api/v1/campaigns HTTP/1.1\r\nhost: crmbet\r\n\
               content-type: application/json\r\nauthorization: Bearer not.a.token",
        body: br#"{"name": "spring", "cluster_ids": [1]}"#,
        http_status: 401,
        grpc_status: None,
        content_type: Some("application/json"),
    },
    Case {
        name: "REST path with no route",
        head: "POST /api/v1/nothing/here HTTP/1.1\r\nhost: crmbet\r\ncontent-type: application/json",
        body: br#"{"a": 1}"#,
        http_status: 404,
        grpc_status: None,
        content_type: Some("application/json"),
    },
    Case {
        name: "a foreign origin",
        head: "POST /api/v1/auth/login HTTP/1.1\r\nhost: crmbet\r\n\
               content-type: application/json\r\norigin: http://evil.example",
        body: br#"{"username": "a", "password": "b"}"#,
        http_status: 403,
        grpc_status: None,
        content_type: Some("application/json"),
    },
    Case {
        // The webhook budget is one request an hour: the first case of it spends it.
        name: "the webhook over its rate limit",
        head: "POST /api/v1/webhooks/smartico HTTP/1.1\r\nhost: crmbet\r\ncontent-type: application/json",
        body: br#"{"event_id": "e1"}"#,
        http_status: 429,
        grpc_status: None,
        content_type: Some("application/json"),
    },
];

/// Sends `head`, pauses, sends `body`, and reads the answer; the write of the body must
/// succeed and an answer must come.
async fn headers_then_body(stream: &mut TcpStream, head: &str, body: &[u8]) -> RawResponse {
    let head = format!("{head}\r\ncontent-length: {}\r\n\r\n", body.len());
    stream.write_all(head.as_bytes()).await.unwrap();
    // The pause is the client's behaviour under test, not a wait for the server.
    let mut byte = [0_u8; 1];
    let early = tokio::time::timeout(PAUSE, stream.peek(&mut byte)).await;
    if let Ok(Ok(0)) = early {
        panic!("the server closed the connection before the body was sent");
    }
    stream
        .write_all(body)
        .await
        .expect("the body could be sent (no broken pipe)");
    read_response(stream)
        .await
        .expect("an answer, not a reset or a close")
}

/// `grpc-status` from the headers of a trailers-only answer, or from the trailer frame of
/// a grpc-web body (binary or base64).
fn grpc_status(response: &RawResponse) -> Option<String> {
    if let Some(status) = response.header("grpc-status") {
        return Some(status.to_owned());
    }
    let text = String::from_utf8_lossy(&response.body);
    text.split("grpc-status:")
        .nth(1)
        .map(|rest| rest.chars().take_while(char::is_ascii_digit).collect())
}

#[tokio::test]
async fn refusals_over_http1_wait_for_the_body_and_keep_the_connection() {
    let directory = tempfile::tempdir().unwrap();
    let database_url = format!(
        "sqlite://{}?mode=rwc",
        directory.path().join("crmbet.db").display()
    );
    let server = RunningServer::serve_with_environment(
        &database_url,
        &[("CRMBET_RATE_LIMIT_CLASSES", "webhook=1".to_owned())],
    );
    // Spend the webhook budget, so the case that expects 429 gets it.
    let spent = super::raw_http::exchange(
        &server.address,
        "POST /api/v1/webhooks/smartico HTTP/1.1\r\nhost: crmbet\r\ncontent-type: application/json",
        b"{}",
    )
    .await;
    assert_ne!(
        spent.status, 429,
        "the first webhook call is within its budget"
    );

    for case in CASES {
        let mut stream = TcpStream::connect(&server.address).await.unwrap();
        let response = headers_then_body(&mut stream, case.head, case.body).await;
        assert_eq!(
            response.status,
            case.http_status,
            "{}: {}",
            case.name,
            String::from_utf8_lossy(&response.body)
        );
        assert_eq!(
            grpc_status(&response).as_deref(),
            case.grpc_status,
            "{}",
            case.name
        );
        if let Some(content_type) = case.content_type {
            // `application/grpc-web-text+proto` is the same type as `…-text`.
            let answered = response.header("content-type").unwrap_or_default();
            assert!(
                answered.starts_with(content_type),
                "{}: answered as {answered}, expected {content_type}",
                case.name
            );
        }
        if case.grpc_status.is_none() {
            let code = response.json()["code"].clone();
            assert!(code.is_string(), "{}: {code}", case.name);
        }
        assert_ne!(
            response.header("connection"),
            Some("close"),
            "{}",
            case.name
        );
        // The same connection serves the next request.
        stream
            .write_all(b"GET /health HTTP/1.1\r\nhost: crmbet\r\n\r\n")
            .await
            .unwrap();
        let next = read_response(&mut stream).await.unwrap_or_else(|| {
            panic!("{}: the connection was closed after the refusal", case.name)
        });
        assert_eq!(next.status, 200, "{}", case.name);
    }
}
