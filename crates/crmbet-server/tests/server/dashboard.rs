//! The embedded dashboard through the real application: pages and files at `/`, under the
//! security headers, and never in the way of `/health`, REST or grpc-web.

use crate::support::scratch_database::ScratchDatabase;
use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use crmbet_core::Config;
use crmbet_server::auth::Role;
use crmbet_server::{AppState, Gateway, application};
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn start() -> (Gateway, ScratchDatabase) {
    let database =
        ScratchDatabase::with_account("ana", Role::Analyst, "correct horse battery staple").await;
    let config = Config {
        database_url: database.url.clone(),
        jwt_secret: Some("a test secret of at least thirty-two bytes".to_owned()),
        ..Config::default()
    };
    let state = AppState::new(database.store.clone(), config).unwrap();
    (application(state).await.unwrap(), database)
}

struct Answer {
    status: StatusCode,
    content_type: String,
    grpc_status: Option<String>,
    content_security_policy: Option<String>,
    body: String,
}

async fn send(gateway: &Gateway, method: Method, uri: &str, content_type: Option<&str>) -> Answer {
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "crm.internal:3000");
    if let Some(content_type) = content_type {
        builder = builder.header("content-type", content_type);
    }
    let mut request = builder.body(Body::empty()).unwrap();
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 8], 40000))));
    let response = gateway.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let collected = body.collect().await.unwrap();
    let text = |name: &str| {
        parts
            .headers
            .get(name)
            .or_else(|| collected.trailers().and_then(|trailers| trailers.get(name)))
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    Answer {
        status: parts.status,
        content_type: text("content-type").unwrap_or_default(),
        grpc_status: text("grpc-status"),
        content_security_policy: text("content-security-policy"),
        body: String::from_utf8_lossy(&collected.to_bytes()).into_owned(),
    }
}

#[tokio::test]
async fn dashboard_pages_are_served_under_the_security_headers() {
    let (gateway, _database) = start().await;
    for path in ["/", "/segments/3?q=p00", "/models"] {
        let answer = send(&gateway, Method::GET, path, None).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
        assert!(answer.content_type.starts_with("text/html"), "{path}");
        assert!(answer.body.contains("<div id=\"root\">"), "{path}");
        assert!(
            answer
                .content_security_policy
                .is_some_and(|policy| policy.contains("script-src 'self'")),
            "{path}"
        );
    }
}

#[tokio::test]
async fn dashboard_never_shadows_the_api() {
    let (gateway, _database) = start().await;
    let health = send(&gateway, Method::GET, "/health", None).await;
    assert_eq!(health.status, StatusCode::OK);
    assert!(health.content_type.starts_with("application/json"));

    let unknown_rest = send(&gateway, Method::GET, "/api/v1/no-such-route", None).await;
    assert_eq!(unknown_rest.status, StatusCode::NOT_FOUND);
    assert!(unknown_rest.content_type.starts_with("application/json"));

    let rest_without_token = send(&gateway, Method::GET, "/api/v1/clusters", None).await;
    assert_eq!(rest_without_token.status, StatusCode::UNAUTHORIZED);

    let grpc_web = send(
        &gateway,
        Method::POST,
        "/crmbet.v1.ClusterService/ListClusters",
        Some("application/grpc-web+proto"),
    )
    .await;
    // UNAUTHENTICATED from the access layer, not a page.
    assert_eq!(grpc_web.grpc_status.as_deref(), Some("16"));

    let method_path = send(
        &gateway,
        Method::GET,
        "/crmbet.v1.ClusterService/ListClusters",
        None,
    )
    .await;
    assert_eq!(method_path.status, StatusCode::NOT_FOUND);

    let post_to_page = send(&gateway, Method::POST, "/", None).await;
    assert_eq!(post_to_page.status, StatusCode::NOT_FOUND);
}
