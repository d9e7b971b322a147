//! What happens to the body of a request refused before its service read it.
//!
//! An HTTP/1.1 client may send its headers first and its body after (grpc-web clients on
//! Node do). If the server answers at once and closes, that client's body write fails with
//! a broken pipe and it never reads the answer. So a refusal first reads and discards the
//! rest of a small body (within the request body timeout), after which the connection
//! stays usable; a body too large or too slow to read gets `connection: close`, so the
//! client knows the connection ends. HTTP/2 needs neither: the stream ends by itself.

use axum::body::Body;
use axum::response::Response;
use http::header::{CONNECTION, CONTENT_LENGTH, HeaderValue};
use http::{HeaderMap, Version};
use http_body_util::{BodyExt, Limited};

/// The most a refusal reads of a body before it gives up and closes the connection.
pub(crate) const DRAIN_LIMIT_BYTES: usize = 64 * 1024;

/// Reads and discards `body` of a refused HTTP/1 request before `response` is sent; marks
/// the response `connection: close` when the body could not be read whole. For HTTP/2 it
/// does nothing.
pub(crate) async fn discard_before_refusal(
    version: Version,
    request_headers: &HeaderMap,
    body: Body,
    response: &mut Response,
) {
    if version >= Version::HTTP_2 {
        return;
    }
    let declared_length = request_headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    let small_enough = declared_length.is_none_or(|length| length <= DRAIN_LIMIT_BYTES as u64);
    // The body's own deadline bounds the wait (see `request_body`).
    if small_enough
        && Limited::new(body, DRAIN_LIMIT_BYTES)
            .collect()
            .await
            .is_ok()
    {
        return;
    }
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::convert::Infallible;

    use bytes::Bytes;

    fn refusal() -> Response {
        Response::new(Body::empty())
    }

    #[tokio::test]
    async fn small_http1_bodies_are_read_and_the_connection_kept() {
        let cases: Vec<(Version, HeaderMap, Body, Option<&str>)> = vec![
            (Version::HTTP_11, HeaderMap::new(), Body::from("abc"), None),
            (
                Version::HTTP_11,
                HeaderMap::from_iter([(CONTENT_LENGTH, HeaderValue::from_static("999999999"))]),
                Body::from("abc"),
                Some("close"),
            ),
            (
                Version::HTTP_11,
                HeaderMap::new(),
                Body::from_stream(futures::stream::iter(
                    (0..20).map(|_| Ok::<_, Infallible>(Bytes::from(vec![0_u8; 8 * 1024]))),
                )),
                Some("close"),
            ),
            (
                Version::HTTP_11,
                HeaderMap::new(),
                Body::from_stream(futures::stream::iter([Err::<Bytes, _>(
                    std::io::Error::other("reset"),
                )])),
                Some("close"),
            ),
            (
                Version::HTTP_2,
                HeaderMap::new(),
                Body::from_stream(futures::stream::pending::<Result<Bytes, Infallible>>()),
                None,
            ),
        ];
        for (index, (version, headers, body, expected)) in cases.into_iter().enumerate() {
            let mut response = refusal();
            discard_before_refusal(version, &headers, body, &mut response).await;
            let connection = response
                .headers()
                .get(CONNECTION)
                .map(|value| value.to_str().unwrap_or_default());
            assert_eq!(connection, expected, "case {index}");
        }
    }
}
