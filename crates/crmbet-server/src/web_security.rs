//! What browsers get on the one listener: CORS for the configured dashboard origins only,
//! and security headers on every response (HSTS among them when the listener speaks TLS).
//!
//! A request that carries an `Origin` which is neither a configured dashboard origin nor
//! the server's own is refused with 403 before it reaches any service, so it changes
//! nothing. Plain CORS would only hide the answer from the page after the call had run.
//! The server's own origins are configured (`CRMBET_PUBLIC_ORIGINS`, by default the listen
//! address), never read from the request's `Host`: under DNS rebinding a hostile page's
//! requests carry its own host name in both `Origin` and `Host`.
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

/// The origins allowed besides the server's own, the server's own, and whether responses
/// carry HSTS.
#[derive(Debug, Clone)]
pub struct WebSecurity {
    allowed_origins: Arc<Vec<String>>,
    public_origins: Arc<Vec<String>>,
    strict_transport_security: Option<HeaderValue>,
}

impl WebSecurity {
    /// A policy allowing `origins` (`scheme://host[:port]`, as browsers send them; a
    /// trailing slash is ignored) across origins; the server's own origins are none until
    /// [`WebSecurity::with_public_origins`] names them.
    pub fn new(origins: &[String]) -> Self {
        Self {
            allowed_origins: Arc::new(normalised(origins)),
            public_origins: Arc::new(Vec::new()),
            strict_transport_security: None,
        }
    }

    /// The origins this server is reached at: a request from one of them is same-origin.
    pub fn with_public_origins(mut self, origins: &[String]) -> Self {
        self.public_origins = Arc::new(normalised(origins));
        self
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

    fn is_public(&self, origin: &str) -> bool {
        self.public_origins
            .iter()
            .any(|public| public.eq_ignore_ascii_case(origin))
    }
}

fn normalised(origins: &[String]) -> Vec<String> {
    origins
        .iter()
        .map(|origin| origin.trim().trim_end_matches('/').to_owned())
        .filter(|origin| !origin.is_empty())
        .collect()
}

/// The origins a server listening on `listen` is reached at when `CRMBET_PUBLIC_ORIGINS`
/// names none: the address itself, and `localhost` too for a loopback or unspecified
/// address (which also answer on loopback). Behind a domain name, configure it.
pub fn default_public_origins(listen: &str, tls: bool) -> Vec<String> {
    let Ok(address) = listen.parse::<std::net::SocketAddr>() else {
        return Vec::new();
    };
    let (scheme, default_port) = if tls { ("https", 443) } else { ("http", 80) };
    let port = if address.port() == default_port {
        String::new()
    } else {
        format!(":{}", address.port())
    };
    let ip = address.ip();
    let host = match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
    };
    let mut hosts = Vec::new();
    if !ip.is_unspecified() {
        hosts.push(host);
    }
    if ip.is_loopback() || ip.is_unspecified() {
        hosts.extend(["localhost", "127.0.0.1", "[::1]"].map(str::to_owned));
    }
    let mut origins: Vec<String> = Vec::new();
    for host in hosts {
        let origin = format!("{scheme}://{host}{port}");
        if !origins.contains(&origin) {
            origins.push(origin);
        }
    }
    origins
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
        if self.is_public(text) {
            return OriginCheck::SameOrigin;
        }
        OriginCheck::Refused(text.to_owned())
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
            const EXPOSED: HeaderValue = HeaderValue::from_static(EXPOSED_HEADERS);
            headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSED);
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
             to serve a dashboard from there, or to CRMBET_PUBLIC_ORIGINS if this server is \
             reached at it"
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

/// Headers every response carries unless the handler set its own. Constants: a
/// `HeaderValue::from_static` outside a constant checks every byte of the value (the
/// policy's hundreds) on every response.
const SECURITY_HEADERS: [(HeaderName, HeaderValue); 4] = [
    (
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    ),
    (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
    (
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    ),
    (
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    ),
];

fn add_security_headers(headers: &mut HeaderMap, policy: &WebSecurity) {
    headers.reserve(SECURITY_HEADERS.len() + 1);
    for (name, value) in SECURITY_HEADERS {
        headers.entry(name).or_insert(value);
    }
    if let Some(value) = &policy.strict_transport_security {
        headers
            .entry(header::STRICT_TRANSPORT_SECURITY)
            .or_insert_with(|| value.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(policy: &WebSecurity, origin: &'static str, host: &'static str) -> &'static str {
        let request = http::Request::builder()
            .header(header::ORIGIN, origin)
            .header(header::HOST, host)
            .body(Body::empty())
            .unwrap_or_default();
        match policy.check_origin(&request) {
            OriginCheck::Absent => "absent",
            OriginCheck::SameOrigin => "same-origin",
            OriginCheck::Allowed(_) => "allowed",
            OriginCheck::Refused(_) => "refused",
        }
    }

    #[test]
    fn same_origin_comes_from_the_configuration_never_from_host() {
        let policy = WebSecurity::new(&["http://localhost:3001".to_owned()])
            .with_public_origins(&["https://crm.example.com/".to_owned()]);
        let cases = [
            ("https://crm.example.com", "crm.example.com", "same-origin"),
            ("https://CRM.example.com", "anything", "same-origin"),
            ("http://localhost:3001", "crm.example.com", "allowed"),
            // DNS rebinding: the hostile name in both Origin and Host.
            ("http://evil.example", "evil.example", "refused"),
            ("http://crm.example.com", "crm.example.com", "refused"),
            ("null", "crm.example.com", "refused"),
        ];
        for (origin, host, expected) in cases {
            assert_eq!(
                check(&policy, origin, host),
                expected,
                "{origin} via {host}"
            );
        }
    }

    #[test]
    fn default_public_origins_follow_the_listen_address() {
        assert_eq!(
            default_public_origins("127.0.0.1:3000", false),
            [
                "http://127.0.0.1:3000",
                "http://localhost:3000",
                "http://[::1]:3000"
            ]
        );
        assert_eq!(
            default_public_origins("10.0.0.5:443", true),
            ["https://10.0.0.5"]
        );
        assert_eq!(
            default_public_origins("0.0.0.0:80", false),
            ["http://localhost", "http://127.0.0.1", "http://[::1]"]
        );
        assert!(default_public_origins("not an address", false).is_empty());
    }
}
