//! One unary gRPC call through an in-process router, the way a client sends it.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use crmbet_server::Gateway;
use http::{Method, Request};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// Sends `message` to `path` from `peer` with `headers`; returns the call's status (from
/// the headers of an early refusal or the trailers) and the message bytes of the answer.
pub async fn grpc_call(
    router: &Gateway,
    path: &str,
    message: &[u8],
    headers: &[(&str, String)],
    peer: SocketAddr,
) -> (tonic::Status, Bytes) {
    let mut frame = vec![0u8];
    frame.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    frame.extend_from_slice(message);
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(path)
        .version(http::Version::HTTP_2)
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (name, value) in headers {
        builder = builder.header(*name, value);
    }
    let mut request = builder.body(Body::from(frame)).unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    let response = router.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let collected = body.collect().await.unwrap();
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let data = collected.to_bytes();
    let status_headers = if parts.headers.contains_key("grpc-status") {
        &parts.headers
    } else {
        &trailers
    };
    let status = tonic::Status::from_header_map(status_headers)
        .unwrap_or_else(|| tonic::Status::unknown("the response carried no grpc-status"));
    let body = if data.len() >= 5 {
        data.slice(5..)
    } else {
        Bytes::new()
    };
    (status, body)
}
