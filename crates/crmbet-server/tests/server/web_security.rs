//! Browser-facing limits through the real router: CORS for the configured dashboard origin
//! only (a foreign origin is refused before any service runs, so nothing changes), security
//! headers on every response, and oversized bodies refused on REST and gRPC.

use crate::support::scratch_database::ScratchDatabase;
use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use crmbet_core::Config;
use crmbet_server::Gateway;
use crmbet_server::auth::Role;
use crmbet_server::{AppState, application};
use crmbet_store::Store;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

const DASHBOARD: &str = "https://dashboard.example.com";
const PASSWORD: &str = "correct horse battery staple";
const MAX_BODY_BYTES: usize = 4096;

struct TestServer {
    router: Gateway,
    store: Store,
    _database: ScratchDatabase,
}

impl TestServer {
    async fn start() -> Self {
        let database = ScratchDatabase::with_account("mia", Role::Marketer, PASSWORD).await;
        let store = database.store.clone();
        let config = Config {
            database_url: database.url.clone(),
            jwt_secret: Some("a test secret of at least thirty-two bytes".to_owned()),
            cors_origins: vec![format!("{DASHBOARD}/")],
            public_origins: vec!["http://crm.internal:3000".to_owned()],
            max_body_bytes: MAX_BODY_BYTES,
            ..Config::default()
        };
        let state = AppState::new(store.clone(), config).unwrap();
        Self {
            router: application(state).await.unwrap(),
            store,
            _database: database,
        }
    }

    async fn send(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: Body,
    ) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut builder = Request::builder()
            .method(method)
            .uri(uri)
            .header("host", "crm.internal:3000");
        for (name, value) in headers {
            if *name == "content-type" && value.starts_with("application/grpc") {
                builder = builder.version(http::Version::HTTP_2);
            }
            builder = builder.header(*name, *value);
        }
        let mut request = builder.body(body).unwrap();
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 7], 40000))));
        let response = self.router.clone().oneshot(request).await.unwrap();
        let (mut parts, body) = response.into_parts();
        let collected = body.collect().await.unwrap();
        // A gRPC answer's status may come in the trailers: read them as headers.
        if let Some(trailers) = collected.trailers() {
            parts.headers.extend(trailers.clone());
        }
        (parts.status, parts.headers, collected.to_bytes().to_vec())
    }

    async fn login(&self, headers: &[(&str, &str)], body: String) -> (StatusCode, Vec<u8>) {
        let mut all = vec![("content-type", "application/json")];
        all.extend_from_slice(headers);
        let (status, _, body) = self
            .send(Method::POST, "/api/v1/auth/login", &all, Body::from(body))
            .await;
        (status, body)
    }

    /// Rows per table.
    async fn written_rows(&self) -> std::collections::BTreeMap<&'static str, i64> {
        self.store.row_counts().await.unwrap()
    }
}

fn login_body() -> String {
    format!(r#"{{"username": "mia", "password": "{PASSWORD}"}}"#)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

#[tokio::test]
async fn a_foreign_origin_is_refused_before_anything_runs() {
    let server = TestServer::start().await;
    let before = server.written_rows().await;
    for origin in [
        "https://evil.example.net",
        "null",
        "http://crm.internal:3001",
    ] {
        let (status, body) = server.login(&[("origin", origin)], login_body()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{origin}");
        let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(error["code"], "PERMISSION_DENIED");
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains(origin) && message.contains("CRMBET_CORS_ORIGINS"),
            "{message}"
        );
    }
    // The same credentials work without a browser origin, so the refusal was the origin's.
    assert_eq!(
        server.written_rows().await,
        before,
        "a refused origin wrote rows"
    );
    let (status, _) = server.login(&[], login_body()).await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(server.written_rows().await, before);
}

#[tokio::test]
async fn the_dashboard_origin_gets_cors_answers() {
    let server = TestServer::start().await;
    let (status, headers, _) = server
        .send(
            Method::OPTIONS,
            "/api/v1/clusters",
            &[
                ("origin", DASHBOARD),
                ("access-control-request-method", "GET"),
                ("access-control-request-headers", "authorization"),
            ],
            Body::empty(),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        header(&headers, "access-control-allow-origin"),
        Some(DASHBOARD)
    );
    assert!(
        header(&headers, "access-control-allow-headers")
            .is_some_and(|allowed| allowed.contains("authorization"))
    );
    assert!(
        header(&headers, "access-control-allow-methods")
            .is_some_and(|allowed| allowed.contains("POST"))
    );

    // A grpc-web preflight for the browser client.
    let (status, headers, _) = server
        .send(
            Method::OPTIONS,
            "/crmbet.v1.ClusterService/ListClusters",
            &[
                ("origin", DASHBOARD),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "x-grpc-web, content-type"),
            ],
            Body::empty(),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(
        header(&headers, "access-control-allow-headers")
            .is_some_and(|allowed| allowed.contains("x-grpc-web"))
    );

    let (status, body) = server.login(&[("origin", DASHBOARD)], login_body()).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let (status, headers, _) = server
        .send(
            Method::GET,
            "/api/v1/clusters",
            &[("origin", DASHBOARD)],
            Body::empty(),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(&headers, "access-control-allow-origin"),
        Some(DASHBOARD)
    );
    assert!(
        header(&headers, "access-control-expose-headers")
            .is_some_and(|exposed| exposed.contains("grpc-status"))
    );
    assert!(header(&headers, "vary").is_some_and(|vary| vary.contains("origin")));
}

#[tokio::test]
async fn the_servers_own_pages_are_same_origin() {
    let server = TestServer::start().await;
    let (status, body) = server
        .login(&[("origin", "http://crm.internal:3000")], login_body())
        .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
}

#[tokio::test]
async fn same_origin_is_the_configured_public_origin_whatever_the_authority() {
    let server = TestServer::start().await;
    let login = |origin: &'static str, authority: &'static str| {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(format!("http://{authority}/api/v1/auth/login"))
            .version(http::Version::HTTP_2)
            .header("origin", origin)
            .header("content-type", "application/json")
            .body(Body::from(login_body()))
            .unwrap();
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 7], 40000))));
        server.router.clone().oneshot(request)
    };
    assert_eq!(
        login("http://crm.internal:3000", "elsewhere.example:3000")
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    // DNS rebinding: a hostile page's requests name its own host as origin and authority.
    assert_eq!(
        login("http://elsewhere.example:3000", "elsewhere.example:3000")
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let server = TestServer::start().await;
    for (method, uri) in [
        (Method::GET, "/health"),
        (Method::GET, "/api/v1/clusters"),
        (Method::GET, "/no/such/route"),
    ] {
        let (_, headers, _) = server.send(method, uri, &[], Body::empty()).await;
        assert_eq!(
            header(&headers, "x-content-type-options"),
            Some("nosniff"),
            "{uri}"
        );
        assert_eq!(header(&headers, "x-frame-options"), Some("DENY"), "{uri}");
        assert_eq!(
            header(&headers, "referrer-policy"),
            Some("no-referrer"),
            "{uri}"
        );
        assert!(
            header(&headers, "content-security-policy")
                .is_some_and(|policy| policy.contains("frame-ancestors 'none'")),
            "{uri}"
        );
    }
}

#[tokio::test]
async fn oversized_bodies_are_refused_and_change_nothing() {
    let server = TestServer::start().await;
    // Refused logins are audited on purpose (who tried what, from where); nothing else
    // may change.
    let domain_rows = || async {
        let mut rows = server.written_rows().await;
        rows.remove("audit_log");
        rows
    };
    let before = domain_rows().await;
    let padding = "x".repeat(MAX_BODY_BYTES);
    let body = format!(r#"{{"username": "mia", "password": "{PASSWORD}", "pad": "{padding}"}}"#);
    let (status, answer) = server.login(&[], body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let error: serde_json::Value = serde_json::from_slice(&answer).unwrap();
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|message| message.contains(&MAX_BODY_BYTES.to_string())),
        "{error}"
    );

    // gRPC: a Login message larger than the limit.
    let message = {
        use prost::Message;
        crmbet_proto::v1::LoginRequest {
            username: "mia".to_owned(),
            password: "p".repeat(MAX_BODY_BYTES * 2),
        }
        .encode_to_vec()
    };
    let mut frame = vec![0u8];
    frame.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    frame.extend_from_slice(&message);
    let (_, headers, _) = server
        .send(
            Method::POST,
            "/crmbet.v1.AuthService/Login",
            &[("content-type", "application/grpc"), ("te", "trailers")],
            Body::from(frame),
        )
        .await;
    let status = tonic::Status::from_header_map(&headers)
        .unwrap_or_else(|| panic!("no grpc-status in {headers:?}"));
    assert_eq!(status.code(), tonic::Code::OutOfRange, "{status:?}");
    assert!(status.message().contains("too large"), "{status:?}");
    assert_eq!(domain_rows().await, before, "an oversized call wrote rows");
}
