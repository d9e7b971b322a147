//! Requests that two readers could read differently are refused before anything reads them:
//! a header that may appear once, sent twice (two `Authorization` headers: this server would
//! read one, a proxy or WAF in front of it perhaps the other). Duplicate keys in a JSON body
//! are refused by the REST layer for the same reason.

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::header::{self, HeaderValue};
use tonic::Status;

use crate::gateway::is_grpc;
use crate::rest::error_response;

/// Headers with one value per request. Lists (`Accept`, `X-Forwarded-For`, `Cookie` over
/// HTTP/2) may repeat.
const SINGLE_VALUED: &[&str] = &[
    "authorization",
    "content-type",
    "content-length",
    "host",
    "origin",
    "x-request-id",
    "grpc-timeout",
    "x-webhook-signature",
    "x-webhook-secret",
];

/// The refusal of a request that repeats a single-valued header: INVALID_ARGUMENT, REST 400.
/// `None` for the usual request, which repeats no header at all (checked in constant time).
pub(crate) fn refuse_repeated_headers(request: &Request) -> Option<Response> {
    let headers = request.headers();
    if headers.len() == headers.keys_len() {
        return None;
    }
    let repeated = SINGLE_VALUED
        .iter()
        .find(|name| headers.get_all(**name).iter().nth(1).is_some())?;
    let status = Status::invalid_argument(format!(
        "the {repeated} header appears more than once; send it once"
    ));
    Some(answer_in_protocol(request, &status))
}

/// `status` as the request's protocol expects it: a trailers-only gRPC answer with the
/// request's own content type (grpc-web clients expect theirs back), or a REST error.
fn answer_in_protocol(request: &Request, status: &Status) -> Response {
    if !is_grpc(request) {
        return error_response(status);
    }
    let mut response = status.clone().into_http::<Body>().into_response();
    if let Some(content_type) = request.headers().get(header::CONTENT_TYPE) {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type.clone());
    }
    response
}

/// Makes a grpc-web-text request's answer grpc-web-text too when its `Accept` names no
/// grpc-web encoding: tonic-web picks the answer's encoding from `Accept` alone, and would
/// answer such a caller in binary (`application/grpc-web+proto`).
pub(crate) fn answer_grpc_web_text_in_kind(request: &mut Request) {
    let headers = request.headers();
    let is_text = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/grpc-web-text"));
    if !is_text {
        return;
    }
    let accepts_grpc_web = headers
        .get(header::ACCEPT)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/grpc-web"));
    if accepts_grpc_web {
        return;
    }
    request.headers_mut().insert(
        header::ACCEPT,
        HeaderValue::from_static("application/grpc-web-text"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Request headers, as name and value pairs.
    type Headers = &'static [(&'static str, &'static str)];

    fn request(headers: &[(&'static str, &'static str)]) -> Request {
        let mut builder = http::Request::builder().uri("/api/v1/clusters");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(Body::empty()).unwrap_or_default()
    }

    #[test]
    fn repeated_single_valued_headers_are_refused_and_lists_pass() {
        let cases: &[(Headers, Option<u16>)] = &[
            (&[("authorization", "Bearer a")], None),
            (
                &[("authorization", "Bearer a"), ("authorization", "Bearer b")],
                Some(400),
            ),
            (&[("host", "a.example"), ("host", "b.example")], Some(400)),
            (
                &[
                    ("content-type", "application/json"),
                    ("content-type", "text/plain"),
                ],
                Some(400),
            ),
            (
                &[("accept", "text/html"), ("accept", "application/json")],
                None,
            ),
            (
                &[
                    ("x-forwarded-for", "10.0.0.1"),
                    ("x-forwarded-for", "10.0.0.2"),
                ],
                None,
            ),
        ];
        for (headers, expected) in cases {
            let answer = refuse_repeated_headers(&request(headers));
            assert_eq!(
                answer.as_ref().map(|response| response.status().as_u16()),
                *expected,
                "{headers:?}"
            );
        }
        let grpc = request(&[
            ("content-type", "application/grpc-web-text"),
            ("authorization", "Bearer a"),
            ("authorization", "Bearer b"),
        ]);
        let answer = refuse_repeated_headers(&grpc).expect("refused");
        assert_eq!(answer.headers()["grpc-status"], "3");
        assert_eq!(
            answer.headers()["content-type"],
            "application/grpc-web-text"
        );
    }

    #[test]
    fn grpc_web_text_is_answered_as_text_unless_the_caller_asks_otherwise() {
        let cases: &[(Headers, Option<&str>)] = &[
            (
                &[("content-type", "application/grpc-web-text")],
                Some("application/grpc-web-text"),
            ),
            (
                &[
                    ("content-type", "application/grpc-web-text"),
                    ("accept", "*/*"),
                ],
                Some("application/grpc-web-text"),
            ),
            (
                &[
                    ("content-type", "application/grpc-web-text"),
                    ("accept", "application/grpc-web+proto"),
                ],
                Some("application/grpc-web+proto"),
            ),
            (&[("content-type", "application/grpc-web+proto")], None),
        ];
        for (headers, expected) in cases {
            let mut request = request(headers);
            answer_grpc_web_text_in_kind(&mut request);
            let accept = request
                .headers()
                .get(header::ACCEPT)
                .map(|value| value.to_str().unwrap_or_default());
            assert_eq!(accept, *expected, "{headers:?}");
        }
    }
}
