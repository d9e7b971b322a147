//! Authentication of Smartico webhooks, which carry no access token: either
//! `X-Webhook-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>`
//! within [`SIGNATURE_TOLERANCE`] (for a signing relay), or `X-Webhook-Secret: <secret>`
//! compared in constant time (Smartico itself cannot sign); optionally only from listed
//! addresses. Without `CRMBET_WEBHOOK_SECRET` every webhook is refused.
//!
//! REST requests are checked over their raw body by [`verify_rest_webhook`] before the
//! body is transcoded, which marks them [`VerifiedWebhook`]. Native gRPC and grpc-web
//! requests are checked by the service over the protobuf encoding of the request message
//! (fields in field-number order, as every protobuf library writes them), so a gRPC sender
//! signs `"<t>." + encoded message` the same way.

use std::net::IpAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use crmbet_core::signature;
pub use crmbet_core::signature::sign;
use http::HeaderMap;
use http_body_util::BodyExt;
use tonic::Status;

use crate::auth::client_address;
use crate::rest::error_response;

/// The REST path of the Smartico webhook.
pub const WEBHOOK_PATH: &str = "/api/v1/webhooks/smartico";
/// How far a signature's timestamp may be from now.
pub const SIGNATURE_TOLERANCE: Duration = Duration::from_secs(300);
/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-webhook-signature";
/// The shared-secret header.
pub const SECRET_HEADER: &str = "x-webhook-secret";

/// Marks a request whose webhook credentials were checked over its raw body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedWebhook;

/// The webhook secret and allowed addresses; cheap to clone.
#[derive(Debug, Clone)]
pub struct WebhookAuth {
    secret: Option<String>,
    allowed_addresses: Vec<IpAddr>,
    trusted_proxies: Vec<IpAddr>,
    max_body_bytes: usize,
}

impl WebhookAuth {
    /// The check for `secret` (none refuses every webhook) and `allowed_addresses` (empty
    /// for any address).
    pub fn new(
        secret: Option<String>,
        allowed_addresses: Vec<IpAddr>,
        trusted_proxies: Vec<IpAddr>,
        max_body_bytes: usize,
    ) -> Self {
        Self {
            secret: secret.filter(|secret| !secret.is_empty()),
            allowed_addresses,
            trusted_proxies,
            max_body_bytes,
        }
    }

    /// Checks a webhook's credentials over `body`, at `now_seconds` (Unix time).
    pub fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        client: Option<IpAddr>,
        now_seconds: i64,
    ) -> Result<(), Status> {
        let Some(secret) = &self.secret else {
            return Err(Status::unauthenticated(
                "webhooks are refused: no CRMBET_WEBHOOK_SECRET is configured",
            ));
        };
        if !self.allowed_addresses.is_empty()
            && !client.is_some_and(|address| self.allowed_addresses.contains(&address))
        {
            return Err(Status::permission_denied(
                "webhooks are accepted only from the addresses in CRMBET_WEBHOOK_ALLOWED_IPS",
            ));
        }
        let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
        if let Some(signature) = header(SIGNATURE_HEADER) {
            return verify_signature(secret, signature, body, now_seconds);
        }
        if let Some(given) = header(SECRET_HEADER) {
            if constant_time_equal(given.as_bytes(), secret.as_bytes()) {
                return Ok(());
            }
            return Err(Status::unauthenticated("x-webhook-secret does not match"));
        }
        Err(Status::unauthenticated(
            "a webhook needs x-webhook-signature (t=<unix seconds>,v1=<hex hmac-sha256>) or \
             x-webhook-secret",
        ))
    }
}

fn verify_signature(
    secret: &str,
    signature: &str,
    body: &[u8],
    now_seconds: i64,
) -> Result<(), Status> {
    let malformed = || {
        Status::unauthenticated(
            "x-webhook-signature must be t=<unix seconds>,v1=<hex hmac-sha256 of \"<t>.\" + body>",
        )
    };
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in signature.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = Some(value.parse::<i64>().map_err(|_| malformed())?),
            Some(("v1", value)) => candidates.push(decode_hex(value).ok_or_else(malformed)?),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or_else(malformed)?;
    if candidates.is_empty() {
        return Err(malformed());
    }
    let tolerance = i64::try_from(SIGNATURE_TOLERANCE.as_secs()).unwrap_or(i64::MAX);
    if (now_seconds - timestamp).abs() > tolerance {
        return Err(Status::unauthenticated(format!(
            "x-webhook-signature timestamp {timestamp} is more than {tolerance} s from the \
             server's clock ({now_seconds}); sign again with the current time"
        )));
    }
    let expected = signature::mac(secret, timestamp, body)
        .ok_or_else(|| Status::internal("the webhook secret cannot key an hmac"))?;
    if candidates
        .iter()
        .any(|candidate| constant_time_equal(candidate, &expected))
    {
        return Ok(());
    }
    Err(Status::unauthenticated(
        "x-webhook-signature does not match the body",
    ))
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|index| u8::from_str_radix(text.get(index..index + 2)?, 16).ok())
        .collect()
}

/// Equal bytes, in time that depends only on the lengths.
fn constant_time_equal(left: &[u8], right: &[u8]) -> bool {
    if left.len() != right.len() {
        return false;
    }
    left.iter()
        .zip(right)
        .fold(0u8, |difference, (a, b)| difference | (a ^ b))
        == 0
}

/// Checks the credentials of a REST webhook over its raw body before transcoding; other
/// paths pass untouched.
pub async fn verify_rest_webhook(
    State(auth): State<WebhookAuth>,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().path() != WEBHOOK_PATH {
        return next.run(request).await;
    }
    let client = client_address(&request, &auth.trusted_proxies);
    let (parts, body) = request.into_parts();
    let limited = http_body_util::Limited::new(body, auth.max_body_bytes);
    let bytes = match limited.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return error_response(&Status::out_of_range(format!(
                "the webhook body is over {} bytes",
                auth.max_body_bytes
            )));
        }
    };
    let now = chrono::Utc::now().timestamp();
    if let Err(status) = auth.verify(&parts.headers, &bytes, client, now) {
        tracing::warn!(?client, reason = status.message(), "webhook refused");
        return error_response(&status);
    }
    let mut request = Request::from_parts(parts, Body::from(bytes));
    request.extensions_mut().insert(VerifiedWebhook);
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "a webhook secret of some length";
    const NOW: i64 = 1_800_000_000;

    fn headers(pairs: &[(&str, String)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(name.as_bytes()),
                http::HeaderValue::from_str(value),
            ) {
                map.insert(name, value);
            }
        }
        map
    }

    #[test]
    fn accepts_good_credentials_and_refuses_the_rest() {
        let body = br#"{"event_id":"e-1"}"#;
        let auth = WebhookAuth::new(Some(SECRET.to_owned()), Vec::new(), Vec::new(), 1 << 20);
        let signed = |timestamp: i64, body: &[u8]| {
            format!("t={timestamp},v1={}", sign(SECRET, timestamp, body))
        };
        let cases: Vec<(&str, HeaderMap, bool)> = vec![
            (
                "signed now",
                headers(&[(SIGNATURE_HEADER, signed(NOW, body))]),
                true,
            ),
            (
                "signed 299 s ago",
                headers(&[(SIGNATURE_HEADER, signed(NOW - 299, body))]),
                true,
            ),
            (
                "signed 301 s ago",
                headers(&[(SIGNATURE_HEADER, signed(NOW - 301, body))]),
                false,
            ),
            (
                "signed in the future",
                headers(&[(SIGNATURE_HEADER, signed(NOW + 400, body))]),
                false,
            ),
            (
                "other body",
                headers(&[(SIGNATURE_HEADER, signed(NOW, b"{}"))]),
                false,
            ),
            (
                "no timestamp",
                headers(&[(SIGNATURE_HEADER, format!("v1={}", sign(SECRET, NOW, body)))]),
                false,
            ),
            (
                "not hex",
                headers(&[(SIGNATURE_HEADER, format!("t={NOW},v1=zz"))]),
                false,
            ),
            (
                "secret",
                headers(&[(SECRET_HEADER, SECRET.to_owned())]),
                true,
            ),
            (
                "wrong secret",
                headers(&[(SECRET_HEADER, "guess".to_owned())]),
                false,
            ),
            ("nothing", HeaderMap::new(), false),
        ];
        for (name, headers, expected) in cases {
            assert_eq!(
                auth.verify(&headers, body, None, NOW).is_ok(),
                expected,
                "{name}"
            );
        }
        let unconfigured = WebhookAuth::new(None, Vec::new(), Vec::new(), 1 << 20);
        let with_secret = headers(&[(SECRET_HEADER, SECRET.to_owned())]);
        assert!(unconfigured.verify(&with_secret, body, None, NOW).is_err());
    }

    #[test]
    fn the_allowlist_refuses_other_addresses() {
        let listed: IpAddr = [10, 0, 0, 1].into();
        let auth = WebhookAuth::new(Some(SECRET.to_owned()), vec![listed], Vec::new(), 1 << 20);
        let with_secret = headers(&[(SECRET_HEADER, SECRET.to_owned())]);
        assert!(auth.verify(&with_secret, b"", Some(listed), NOW).is_ok());
        let other: IpAddr = [10, 0, 0, 2].into();
        assert_eq!(
            auth.verify(&with_secret, b"", Some(other), NOW)
                .map_err(|status| status.code()),
            Err(tonic::Code::PermissionDenied)
        );
        assert!(auth.verify(&with_secret, b"", None, NOW).is_err());
    }
}
