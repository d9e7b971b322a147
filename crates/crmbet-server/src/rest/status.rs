//! The one place where a gRPC status becomes an HTTP status and a JSON error body.
//!
//! The mapping is Google's (the comments of `google/rpc/code.proto`); the body is
//! `{"code": "INVALID_ARGUMENT", "message": "...", "details": [...]}` with the canonical
//! upper-snake name of the code.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use prost_reflect::{DescriptorPool, DynamicMessage};
use serde_json::{Map, Value, json};
use tonic::{Code, Status};

use crate::rest::metadata::response_headers;
use crate::rest::response::message_to_json;
use base64::Engine as _;

/// gRPC sends `-bin` metadata as standard base64, padded or not.
const DETAILS_BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// The HTTP status for a gRPC code, per `google/rpc/code.proto`.
///
/// ```
/// use crmbet_server::rest::http_status_for;
/// assert_eq!(http_status_for(tonic::Code::NotFound), http::StatusCode::NOT_FOUND);
/// ```
pub fn http_status_for(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => client_closed_request(),
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
    }
}

/// The canonical name of a gRPC code, such as `INVALID_ARGUMENT`.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// The JSON error body for `status`: `{"code", "message", "details"}`.
pub fn error_body(status: &Status) -> Value {
    error_body_with_pool(status, None)
}

/// The REST response for `status`: the mapped HTTP status, the JSON error body, and the
/// status metadata that is safe to show (such as `retry-after`) as headers.
pub fn error_response(status: &Status) -> Response {
    error_response_with(http_status_for(status.code()), status, None)
}

/// Like [`error_body`]; details whose type is in `pool` are rendered as JSON.
pub(crate) fn error_body_with_pool(status: &Status, pool: Option<&DescriptorPool>) -> Value {
    json!({
        "code": code_name(status.code()),
        "message": status.message(),
        "details": render_details(status.details(), pool),
    })
}

/// Like [`error_response`], with an explicit HTTP status (413, 415, 405 carry codes whose
/// usual status differs).
pub(crate) fn error_response_with(
    http_status: StatusCode,
    status: &Status,
    pool: Option<&DescriptorPool>,
) -> Response {
    let headers = response_headers(&status.metadata().clone().into_headers());
    let body = error_body_with_pool(status, pool);
    (http_status, headers, Json(body)).into_response()
}

/// 499, the de-facto status for a request the client cancelled.
fn client_closed_request() -> StatusCode {
    StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST)
}

/// The `details` of an encoded `google.rpc.Status`.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatusDetails {
    #[prost(message, repeated, tag = "3")]
    details: Vec<prost_types::Any>,
}

/// Renders each detail as its proto3 JSON with `@type`, or as `@type` plus base64 `value`
/// when `pool` does not know the type.
fn render_details(encoded: &[u8], pool: Option<&DescriptorPool>) -> Vec<Value> {
    if encoded.is_empty() {
        return Vec::new();
    }
    let Ok(status) = <RpcStatusDetails as prost::Message>::decode(encoded) else {
        return Vec::new();
    };
    status
        .details
        .iter()
        .map(|any| render_any(any, pool))
        .collect()
}

fn render_any(any: &prost_types::Any, pool: Option<&DescriptorPool>) -> Value {
    let type_name = any.type_url.rsplit('/').next().unwrap_or_default();
    let rendered = pool
        .and_then(|pool| pool.get_message_by_name(type_name))
        .and_then(|descriptor| DynamicMessage::decode(descriptor, any.value.as_slice()).ok())
        .and_then(|message| message_to_json(&message).ok());
    let mut object = Map::new();
    object.insert("@type".to_owned(), Value::String(any.type_url.clone()));
    match rendered {
        Some(Value::Object(fields)) => object.extend(fields),
        Some(other) => {
            object.insert("value".to_owned(), other);
        }
        None => {
            object.insert(
                "value".to_owned(),
                Value::String(DETAILS_BASE64.encode(&any.value)),
            );
        }
    }
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use http::{HeaderMap, HeaderValue};
    use http_body_util::BodyExt;
    use tonic::metadata::MetadataMap;

    use super::*;

    #[test]
    fn maps_every_code_to_googles_http_status() {
        let cases = [
            (Code::Ok, 200, "OK"),
            (Code::Cancelled, 499, "CANCELLED"),
            (Code::Unknown, 500, "UNKNOWN"),
            (Code::InvalidArgument, 400, "INVALID_ARGUMENT"),
            (Code::DeadlineExceeded, 504, "DEADLINE_EXCEEDED"),
            (Code::NotFound, 404, "NOT_FOUND"),
            (Code::AlreadyExists, 409, "ALREADY_EXISTS"),
            (Code::PermissionDenied, 403, "PERMISSION_DENIED"),
            (Code::ResourceExhausted, 429, "RESOURCE_EXHAUSTED"),
            (Code::FailedPrecondition, 400, "FAILED_PRECONDITION"),
            (Code::Aborted, 409, "ABORTED"),
            (Code::OutOfRange, 400, "OUT_OF_RANGE"),
            (Code::Unimplemented, 501, "UNIMPLEMENTED"),
            (Code::Internal, 500, "INTERNAL"),
            (Code::Unavailable, 503, "UNAVAILABLE"),
            (Code::DataLoss, 500, "DATA_LOSS"),
            (Code::Unauthenticated, 401, "UNAUTHENTICATED"),
        ];
        for (code, http_status, name) in cases {
            assert_eq!(http_status_for(code).as_u16(), http_status, "{code:?}");
            assert_eq!(code_name(code), name);
        }
    }

    #[tokio::test]
    async fn error_response_carries_body_and_safe_metadata() {
        let mut metadata = MetadataMap::new();
        metadata.insert("retry-after", "30".parse().expect("ascii"));
        metadata.insert("grpc-internal", "x".parse().expect("ascii"));
        let status = Status::with_metadata(
            Code::ResourceExhausted,
            "rate limit of 1000 requests per hour reached",
            metadata,
        );
        let response = error_response(&status);
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            response.headers().get("retry-after"),
            Some(&HeaderValue::from_static("30"))
        );
        assert_eq!(response.headers().get("grpc-internal"), None);
        assert_eq!(
            response.headers().get("content-type"),
            Some(&HeaderValue::from_static("application/json"))
        );
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let body: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(
            body,
            json!({
                "code": "RESOURCE_EXHAUSTED",
                "message": "rate limit of 1000 requests per hour reached",
                "details": []
            })
        );
    }

    #[test]
    fn reads_status_from_trailers() {
        let encoded_details = prost::Message::encode_to_vec(&RpcStatusDetails {
            details: vec![prost_types::Any {
                type_url: "type.googleapis.com/google.protobuf.Timestamp".to_owned(),
                value: prost::Message::encode_to_vec(&prost_types::Timestamp {
                    seconds: 3,
                    nanos: 0,
                }),
            }],
        });
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("5"));
        trailers.insert(
            "grpc-message",
            HeaderValue::from_static("cluster 7 not found%3B try%20another"),
        );
        trailers.insert(
            "grpc-status-details-bin",
            HeaderValue::from_str(&DETAILS_BASE64.encode(&encoded_details)).expect("ascii"),
        );
        trailers.insert("x-request-id", HeaderValue::from_static("abc"));
        // tonic's reading of trailers, as the transcoder's client gets them.
        let status = Status::from_header_map(&trailers).expect("has grpc-status");
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(status.message(), "cluster 7 not found; try another");
        assert_eq!(
            status
                .metadata()
                .get("x-request-id")
                .map(|value| value.to_str().ok()),
            Some(Some("abc"))
        );
        let pool = crate::rest::fixtures::descriptor_pool();
        assert_eq!(
            error_body_with_pool(&status, Some(&pool))["details"],
            json!([{"@type": "type.googleapis.com/google.protobuf.Timestamp", "value": "1970-01-01T00:00:03Z"}])
        );
        assert_eq!(
            error_body(&status)["details"],
            json!([{"@type": "type.googleapis.com/google.protobuf.Timestamp", "value": "CAM="}])
        );
    }
}
