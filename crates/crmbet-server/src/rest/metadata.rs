//! Which headers cross between REST and gRPC: request headers that become gRPC metadata,
//! and gRPC metadata that becomes REST response headers.

use http::HeaderMap;
use http::header::HeaderName;

/// Request headers always forwarded to the service, besides every `x-*` header.
const FORWARDED_REQUEST_HEADERS: &[&str] = &[
    "authorization",
    "user-agent",
    "forwarded",
    "traceparent",
    "tracestate",
    "accept-language",
];

/// Response headers that belong to the gRPC or HTTP transport, never to the REST answer.
const TRANSPORT_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "content-encoding",
    "te",
    "trailer",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "vary",
];

/// The headers of a REST request that the gRPC service sees as metadata: credentials,
/// client identity (`x-forwarded-for`, `x-request-id`, signatures) and tracing.
pub(crate) fn request_metadata(headers: &HeaderMap) -> HeaderMap {
    headers
        .iter()
        .filter(|(name, _)| is_forwarded_request_header(name))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

/// The gRPC response metadata (initial or trailing) that the REST client sees as headers,
/// such as `retry-after`, `ratelimit-*` or `x-request-id`.
pub(crate) fn response_headers(metadata: &HeaderMap) -> HeaderMap {
    metadata
        .iter()
        .filter(|(name, _)| is_forwarded_response_header(name))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

fn is_forwarded_request_header(name: &HeaderName) -> bool {
    let name = name.as_str();
    if name.starts_with("grpc-") || name.ends_with("-bin") {
        return false;
    }
    name.starts_with("x-") || FORWARDED_REQUEST_HEADERS.contains(&name)
}

fn is_forwarded_response_header(name: &HeaderName) -> bool {
    let name = name.as_str();
    if name.starts_with("grpc-")
        || name.ends_with("-bin")
        || name.starts_with("access-control-")
        || name.starts_with("proxy-")
    {
        return false;
    }
    !TRANSPORT_HEADERS.contains(&name)
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn header_map(names: &[&'static str]) -> HeaderMap {
        names
            .iter()
            .map(|name| (HeaderName::from_static(name), HeaderValue::from_static("v")))
            .collect()
    }

    fn names(headers: &HeaderMap) -> Vec<&str> {
        headers.keys().map(HeaderName::as_str).collect()
    }

    #[test]
    fn forwards_credentials_and_client_identity_to_the_service() {
        let incoming = header_map(&[
            "authorization",
            "x-request-id",
            "x-forwarded-for",
            "x-smartico-signature",
            "traceparent",
            "cookie",
            "content-type",
            "content-length",
            "accept",
            "grpc-timeout",
            "x-trace-bin",
        ]);
        assert_eq!(
            names(&request_metadata(&incoming)),
            [
                "authorization",
                "x-request-id",
                "x-forwarded-for",
                "x-smartico-signature",
                "traceparent"
            ]
        );
    }

    #[test]
    fn forwards_application_metadata_to_the_client() {
        let metadata = header_map(&[
            "content-type",
            "grpc-status",
            "grpc-accept-encoding",
            "retry-after",
            "ratelimit-remaining",
            "x-request-id",
            "details-bin",
            "access-control-allow-origin",
            "te",
        ]);
        assert_eq!(
            names(&response_headers(&metadata)),
            ["retry-after", "ratelimit-remaining", "x-request-id"]
        );
    }
}
