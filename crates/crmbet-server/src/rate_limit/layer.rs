//! The rate limit over all three protocols, run by [`crate::gateway`]: finds each request's route class (a REST path
//! through the route table to the RPC behind it), counts the request against the class's
//! budget of its client IP and, when it carries a valid access token, of its principal;
//! refuses the ones over either budget, as 429 on HTTP and RESOURCE_EXHAUSTED on gRPC.

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use serde_json::json;

use crmbet_core::rate_limit_classes::RouteClass;

use super::{Decision, RateLimiter, Subject};
use crate::auth::permissions::rule_for;
use crate::auth::{TokenKeys, VerifiedToken, bearer_token, client_address, unique_per_response};
use crate::gateway::is_grpc;
use crate::rest::RestRoutes;

/// What the rate limit needs: the budgets, the REST routes to classify REST paths, and the
/// keys to verify who a token names.
#[derive(Debug, Clone)]
pub struct RateLimitState {
    pub limiter: RateLimiter,
    pub rest_routes: Arc<RestRoutes>,
    pub token_keys: Arc<TokenKeys>,
    /// Proxies whose `X-Forwarded-For` is believed (`CRMBET_TRUSTED_PROXIES`).
    pub trusted_proxies: Vec<IpAddr>,
}

const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// Health checks and metrics stay open: an orchestrator probing a busy instance, or its
/// scraper, must not be refused (a scrape reads the database at most once a second).
fn is_exempt(path: &str) -> bool {
    path == "/health" || path == "/metrics" || path.starts_with("/grpc.health.v1.Health/")
}

/// The client's address as the access layer sees it: the peer, or behind a trusted proxy
/// the forwarded client. Without connection info (a router driven in process) every request
/// shares one unspecified address.
fn client_ip(request: &Request, trusted_proxies: &[IpAddr]) -> IpAddr {
    client_address(request, trusted_proxies).unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

/// The class of the RPC a request calls: its gRPC or grpc-web path, or for REST the RPC
/// its route transcodes to. A path that matches neither is a `read`.
fn route_class(request: &Request, rest_routes: &RestRoutes) -> RouteClass {
    let path = request.uri().path();
    // gRPC and grpc-web requests name their RPC in the path; only REST needs the table.
    if is_grpc(request) {
        return rule_for(path).class;
    }
    let grpc_path = rest_routes
        .grpc_path_of(request.method(), path)
        .unwrap_or(path);
    rule_for(grpc_path).class
}

/// The request's access token, verified (its subject is the principal). An unverified
/// `sub` is not used: anyone could spend someone else's budget with it. Invalid tokens are
/// refused by the access layer.
fn principal(request: &Request, token_keys: &TokenKeys) -> Option<VerifiedToken> {
    let token = bearer_token(request.headers()).ok()?;
    let (claims, role) = token_keys.verify(token).ok()?;
    Some(VerifiedToken {
        token: token.to_owned(),
        claims,
        role,
    })
}

/// What the rate limit decided about one request.
pub(crate) enum Admission {
    /// Not counted: health checks.
    Exempt,
    /// Within every budget; the decision goes into the response's `RateLimit-*` headers.
    Admitted(Decision),
    /// Over a budget: the answer to send, headers included.
    Refused(Response),
}

/// Counts `request` against its budgets. Run it in front of the gRPC dispatch, so every
/// protocol is counted. A valid access token is verified here once and left in the
/// request's extensions for the access layer.
pub(crate) async fn admit(state: &RateLimitState, request: &mut Request) -> Admission {
    if is_exempt(request.uri().path()) {
        return Admission::Exempt;
    }
    let class = route_class(request, &state.rest_routes);
    let client = Subject::ClientIp(client_ip(request, &state.trusted_proxies));
    let principal = principal(request, &state.token_keys);
    let subjects = match &principal {
        Some(verified) => vec![client, Subject::Principal(verified.claims.sub.clone())],
        None => vec![client],
    };
    if let Some(verified) = principal {
        request.extensions_mut().insert(verified);
    }
    let decisions = state.limiter.hit(class, &subjects).await;
    debug_assert_eq!(decisions.len(), subjects.len(), "one decision per subject");
    let Some((subject, decision)) = tightest(&subjects, &decisions) else {
        // The limiter answers one decision per subject; without one there is nothing to
        // enforce, and refusing would turn a bug into an outage.
        tracing::error!(%class, "rate limit: no decision for the request");
        return Admission::Exempt;
    };
    if decision.allowed() {
        return Admission::Admitted(decision);
    }
    tracing::info!(%subject, %class, limit = decision.limit, "rate limit: request refused");
    let mut response = refuse(request, class, &decision);
    add_headers(response.headers_mut(), &decision);
    Admission::Refused(response)
}

/// The budget to report: the first refused one, else the one with fewest requests left.
fn tightest<'a>(
    subjects: &'a [Subject],
    decisions: &[Decision],
) -> Option<(&'a Subject, Decision)> {
    let mut pairs = subjects.iter().zip(decisions.iter().copied());
    let first = pairs.next()?;
    Some(pairs.fold(first, |current, candidate| {
        if candidate.1.is_tighter_than(&current.1) {
            candidate
        } else {
            current
        }
    }))
}

fn refuse(request: &Request, class: RouteClass, decision: &Decision) -> Response {
    let message = format!(
        "rate limit of {} requests per hour for {class} calls exceeded; retry in {} seconds",
        decision.limit,
        decision.reset_seconds()
    );
    let grpc_content_type = is_grpc(request)
        .then(|| request.headers().get(header::CONTENT_TYPE).cloned())
        .flatten();
    let mut response = match grpc_content_type {
        Some(content_type) => {
            let mut response = tonic::Status::resource_exhausted(message)
                .into_http::<Body>()
                .into_response();
            // grpc-web clients expect their own content type back, with the status in the
            // headers of this trailers-only answer.
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, content_type);
            response
        }
        None => {
            let body = json!({ "code": "RESOURCE_EXHAUSTED", "message": message, "details": [] });
            let mut response = Response::new(Body::from(body.to_string()));
            *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
    };
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(decision.reset_seconds()),
    );
    response
}

/// The `RateLimit-*` headers of an admitted or refused request.
pub(crate) fn add_headers(headers: &mut HeaderMap, decision: &Decision) {
    headers.insert(RATELIMIT_LIMIT, HeaderValue::from(decision.limit));
    headers.insert(
        RATELIMIT_REMAINING,
        unique_per_response(HeaderValue::from(decision.remaining())),
    );
    headers.insert(
        RATELIMIT_RESET,
        unique_per_response(HeaderValue::from(decision.reset_seconds())),
    );
}
