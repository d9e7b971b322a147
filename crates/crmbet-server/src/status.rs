//! The one place where domain errors become gRPC statuses (the REST layer derives the HTTP
//! status from the gRPC code, in `rest::status`).

use crmbet_core::{Error, ErrorCode};
use rand::Rng;
use tonic::{Code, Status};

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

#[cfg(test)]
mod tests {
    use super::*;

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
