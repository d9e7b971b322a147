//! What browsers get on the one listener: CORS for the configured dashboard origins only,
//! and security headers on every response (HSTS among them when the listener speaks TLS).
//!
//! A request that carries an `Origin` which is neither a configured dashboard origin nor
//! the server's own is refused with 403 before it reaches any service, so it changes
//! nothing. Plain CORS would only hide the answer from the page after the call had run.
//! Callers without an `Origin` header (gRPC services, curl, Smartico) are not browsers and
//! pass. [`crate::gateway`] applies the policy in front of every protocol.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use serde_json::json;

/// Methods a dashboard may call across origins.
const ALLOWED_METHODS: &str = "GET, POST, PUT, PATCH, DELETE, OPTIONS";
/// Request headers a dashboard may send: credentials, JSON and grpc-web framing, tracing.
const ALLOWED_HEADERS: &str =
    "authorization, content-type, x-grpc-web, x-user-agent, grpc-timeout, x-request-id";
/// Response headers a dashboard may read: gRPC status, rate limits, the request id.
const EXPOSED_HEADERS: &str = "grpc-status, grpc-message, grpc-status-details-bin, retry-after, \
     ratelimit-limit, ratelimit-remaining, ratelimit-reset, x-request-id";
/// How long a browser may cache a preflight answer.
const PREFLIGHT_MAX_AGE_SECONDS: &str = "600";
/// The dashboard's policy: its own scripts, styles (Tailwind injects none at run time, but
/// Chart.js sets inline styles), data: images for charts, API calls to this origin only,
/// and never inside a frame.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     frame-ancestors 'none'; base-uri 'self'; form-action 'self'";

/// The origins allowed besides the server's own, and whether responses carry HSTS.
#[derive(Debug, Clone)]
pub struct WebSecurity {
    allowed_origins: Arc<Vec<String>>,
    strict_transport_security: Option<HeaderValue>,
}

impl WebSecurity {
    /// A policy allowing `origins` (`scheme://host[:port]`, as browsers send them; a
    /// trailing slash is ignored).
    pub fn new(origins: &[String]) -> Self {
        Self {
            allowed_origins: Arc::new(
                origins
                    .iter()
                    .map(|origin| origin.trim().trim_end_matches('/').to_owned())
                    .filter(|origin| !origin.is_empty())
                    .collect(),
            ),
            strict_transport_security: None,
        }
    }

    /// Adds `Strict-Transport-Security: max-age=<max_age_seconds>; includeSubDomains` to
    /// every response. Only for a listener that speaks TLS: over plain HTTP browsers ignore
    /// the header, and a server that may be reached that way should not claim HTTPS.
    pub fn with_strict_transport_security(mut self, max_age_seconds: u64) -> Self {
        // Digits and ASCII letters: always a valid header value.
        self.strict_transport_security =
            HeaderValue::try_from(format!("max-age={max_age_seconds}; includeSubDomains")).ok();
        debug_assert!(self.strict_transport_security.is_some());
        self
    }

    fn is_configured(&self, origin: &str) -> bool {
        self.allowed_origins
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(origin))
    }
}

/// How a request's `Origin` relates to the policy.
pub(crate) enum OriginCheck {
    /// No `Origin`: not a browser's cross-origin call.
    Absent,
    /// The page was served by this server.
    SameOrigin,
    /// A configured dashboard origin.
    Allowed(HeaderValue),
    /// Anything else, `null` included.
    Refused(String),
}

impl WebSecurity {
    /// How `request`'s origin relates to this policy.
    pub(crate) fn check_origin(&self, request: &Request) -> OriginCheck {
        let headers = request.headers();
        let Some(origin) = headers.get(header::ORIGIN) else {
            return OriginCheck::Absent;
        };
        let Ok(text) = origin.to_str() else {
            return OriginCheck::Refused(String::from_utf8_lossy(origin.as_bytes()).into_owned());
        };
        if self.is_configured(text) {
            return OriginCheck::Allowed(origin.clone());
        }
        let authority = text
            .strip_prefix("http://")
            .or_else(|| text.strip_prefix("https://"));
        // HTTP/2 carries the host as the `:authority` pseudo-header, which lands in the URI.
        let host = headers
            .get(header::HOST)
            .and_then(|host| host.to_str().ok())
            .or_else(|| {
                request
                    .uri()
                    .authority()
                    .map(|authority| authority.as_str())
            });
        match (authority, host) {
            (Some(authority), Some(host)) if authority.eq_ignore_ascii_case(host) => {
                OriginCheck::SameOrigin
            }
            _ => OriginCheck::Refused(text.to_owned()),
        }
    }

    /// The answer the policy gives by itself, before any service: 403 to a foreign origin,
    /// 204 to an allowed preflight. `None` lets the request through.
    pub(crate) fn answer_early(&self, origin: &OriginCheck, request: &Request) -> Option<Response> {
        match origin {
            OriginCheck::Refused(origin) => Some(refuse(origin)),
            OriginCheck::Allowed(_) | OriginCheck::SameOrigin if is_preflight(request) => {
                let mut response = StatusCode::NO_CONTENT.into_response();
                let headers = response.headers_mut();
                headers.insert(
                    header::ACCESS_CONTROL_ALLOW_METHODS,
                    HeaderValue::from_static(ALLOWED_METHODS),
                );
                headers.insert(
                    header::ACCESS_CONTROL_ALLOW_HEADERS,
                    HeaderValue::from_static(ALLOWED_HEADERS),
                );
                headers.insert(
                    header::ACCESS_CONTROL_MAX_AGE,
                    HeaderValue::from_static(PREFLIGHT_MAX_AGE_SECONDS),
                );
                Some(response)
            }
            _ => None,
        }
    }

    /// Adds the CORS headers an allowed origin needs and the security headers to every
    /// response.
    pub(crate) fn finish(&self, origin: OriginCheck, headers: &mut HeaderMap) {
        if let OriginCheck::Allowed(origin) = origin {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            headers.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(EXPOSED_HEADERS),
            );
            headers.append(header::VARY, HeaderValue::from_static("origin"));
        }
        add_security_headers(headers, self);
    }
}

fn is_preflight(request: &Request) -> bool {
    request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

fn refuse(origin: &str) -> Response {
    let body = json!({
        "code": "PERMISSION_DENIED",
        "message": format!(
            "requests from origin {origin} are not allowed; add it to CRMBET_CORS_ORIGINS \
             to serve a dashboard from there"
        ),
        "details": [],
    });
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = StatusCode::FORBIDDEN;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Headers every response carries unless the handler set its own.
fn add_security_headers(headers: &mut HeaderMap, policy: &WebSecurity) {
    let defaults: [(HeaderName, &'static str); 4] = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
    ];
    for (name, value) in defaults {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    if let Some(value) = &policy.strict_transport_security {
        headers
            .entry(header::STRICT_TRANSPORT_SECURITY)
            .or_insert_with(|| value.clone());
    }
}
