//! The one place where domain errors become gRPC statuses (the REST layer derives the HTTP
//! status from the gRPC code, in `rest::status`).

use crmbet_core::{Error, ErrorCode};
use http::{HeaderMap, HeaderValue};
use rand::Rng;

/// `grpc-status` as a constant name: a lookup by `&str` parses the name on every call.
pub(crate) const GRPC_STATUS: http::HeaderName = http::HeaderName::from_static("grpc-status");
use tonic::{Code, Status};

/// How prost's decode errors begin; tonic answers them INTERNAL.
const UNDECODABLE_MESSAGE: &str = "failed to decode Protobuf message";

/// Converts a domain error. Internal errors are logged in full and reach the caller as a
/// short message with a request id to quote.
pub fn status_from_error(error: Error) -> Status {
    let code = match error.code() {
        ErrorCode::InvalidArgument => Code::InvalidArgument,
        ErrorCode::NotFound => Code::NotFound,
        ErrorCode::AlreadyExists => Code::AlreadyExists,
        ErrorCode::FailedPrecondition => Code::FailedPrecondition,
        ErrorCode::Unimplemented => Code::Unimplemented,
        ErrorCode::Unavailable => Code::Unavailable,
        ErrorCode::Internal => Code::Internal,
    };
    match code {
        Code::Internal | Code::Unavailable => {
            let request_id = format!("{:016x}", rand::rng().random::<u64>());
            tracing::error!(%request_id, error = %error, "request failed");
            let message = if code == Code::Internal {
                format!("internal error; quote request id {request_id} to the operator")
            } else {
                format!("a dependency is unavailable, retry later; request id {request_id}")
            };
            Status::new(code, message)
        }
        _ => Status::new(code, error.to_string()),
    }
}

/// Turns tonic's INTERNAL answer to a request message that does not decode into
/// INVALID_ARGUMENT, in the headers of a trailers-only response: the caller sent bytes that
/// are not the message, which is the caller's error, not the server's. Other answers are
/// left alone.
pub fn invalid_argument_for_undecodable_message(headers: &mut HeaderMap) {
    if headers.get(GRPC_STATUS).map(HeaderValue::as_bytes) != Some(b"13") {
        return;
    }
    let Some(status) = Status::from_header_map(headers) else {
        return;
    };
    if !status.message().starts_with(UNDECODABLE_MESSAGE) {
        return;
    }
    let message = format!(
        "the request is not a valid protobuf message of this method: {}",
        status.message()
    );
    let replacement = Status::invalid_argument(message);
    // Writes grpc-status and grpc-message (percent-encoded) over the old ones.
    if let Err(error) = replacement.add_header(headers) {
        tracing::debug!(%error, "cannot rewrite the status of an undecodable message");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undecodable_messages_are_invalid_arguments_and_other_errors_stay() {
        let headers_of = |status: Status| {
            let mut headers = HeaderMap::new();
            status.add_header(&mut headers).unwrap();
            headers
        };
        let mut undecodable = headers_of(Status::internal(
            "failed to decode Protobuf message: invalid wire type value: 7",
        ));
        invalid_argument_for_undecodable_message(&mut undecodable);
        let status = Status::from_header_map(&undecodable).unwrap();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            status.message().contains("invalid wire type"),
            "{}",
            status.message()
        );

        for other in [
            Status::internal("database exploded"),
            Status::not_found("failed to decode Protobuf message"),
        ] {
            let code = other.code();
            let mut headers = headers_of(other);
            invalid_argument_for_undecodable_message(&mut headers);
            assert_eq!(Status::from_header_map(&headers).unwrap().code(), code);
        }
        let mut success = HeaderMap::new();
        invalid_argument_for_undecodable_message(&mut success);
        assert!(success.is_empty());
    }

    #[test]
    fn maps_every_code_and_hides_internals() {
        let cases = [
            (
                Error::invalid_argument("page_size", "too big"),
                Code::InvalidArgument,
            ),
            (Error::not_found("cluster", 7), Code::NotFound),
            (Error::AlreadyExists("x".to_owned()), Code::AlreadyExists),
            (
                Error::FailedPrecondition("no model".to_owned()),
                Code::FailedPrecondition,
            ),
            (
                Error::Unimplemented {
                    capability: "campaigns",
                },
                Code::Unimplemented,
            ),
            (
                Error::Unavailable("db down at 10.0.0.1".to_owned()),
                Code::Unavailable,
            ),
            (Error::Internal("secret detail".to_owned()), Code::Internal),
        ];
        for (error, expected) in cases {
            let status = status_from_error(error);
            assert_eq!(status.code(), expected);
            assert!(!status.message().contains("secret"), "{}", status.message());
            assert!(
                !status.message().contains("10.0.0.1"),
                "{}",
                status.message()
            );
        }
    }
}
