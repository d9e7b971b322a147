//! The front of the one listener: every request, whatever its protocol, passes the origin
//! check, then the rate limit, and is then dispatched — gRPC and grpc-web to the tonic
//! routes, everything else to the HTTP router (REST transcoding, `/health`).
//!
//! One service with one future per request rather than a middleware per concern: on the
//! hot read each layer of boxed futures and cloned state showed in the profile.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use crmbet_core::Error;
use futures::future::BoxFuture;
use tonic_web::GrpcWebService;
use tower::{Service, ServiceExt};
use tracing::Instrument;

use crate::ambiguity::{answer_grpc_web_text_in_kind, refuse_repeated_headers};
use crate::connections::Connections;
use crate::metrics::{MeteredRoutes, Metrics, Protocol, Refusal};
use crate::rate_limit::{self, Admission, RateLimitState};
use crate::refusal_body::discard_before_refusal;
use crate::request_span::{record_response, request_span};
use crate::status::status_from_error;
use crate::web_security::{OriginCheck, WebSecurity};

/// The whole application as one tower service; cheap to clone.
#[derive(Debug, Clone)]
pub struct Gateway {
    parts: Arc<Parts>,
}

#[derive(Debug)]
struct Parts {
    web_security: WebSecurity,
    rate_limit: RateLimitState,
    grpc: GrpcWebService<MeteredRoutes>,
    http: Router,
    connections: Arc<Connections>,
    metrics: Arc<Metrics>,
}

impl Gateway {
    /// The front over `grpc` (the tonic routes behind the grpc-web translation) and `http`,
    /// served within the limits of `connections`.
    pub(crate) fn new(
        web_security: WebSecurity,
        rate_limit: RateLimitState,
        grpc: GrpcWebService<MeteredRoutes>,
        http: Router,
        connections: Arc<Connections>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            parts: Arc::new(Parts {
                web_security,
                rate_limit,
                grpc,
                http,
                connections,
                metrics,
            }),
        }
    }

    /// The open connections and their limits, which the listener enforces.
    pub fn connections(&self) -> &Arc<Connections> {
        &self.parts.connections
    }
}

impl Service<Request> for Gateway {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _context: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Every part is a clone-per-call service that is always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let parts = Arc::clone(&self.parts);
        let span = request_span(&request);
        if span.is_disabled() {
            return Box::pin(async move { Ok(parts.handle(request).await) });
        }
        let started = Instant::now();
        Box::pin(async move {
            let response = parts.handle(request).instrument(span.clone()).await;
            record_response(&span, &response, started);
            Ok(response)
        })
    }
}

impl Parts {
    async fn handle(&self, mut request: Request) -> Response {
        // A request two readers could read differently is refused before anyone reads it.
        if let Some(mut refusal) = refuse_repeated_headers(&request) {
            self.metrics.refused(Refusal::AmbiguousRequest);
            discard_body(request, &mut refusal).await;
            self.web_security
                .finish(OriginCheck::Absent, refusal.headers_mut());
            return refusal;
        }
        // The origin check comes next: a foreign origin never reaches any protocol. The
        // rate limit comes after it, so a refusal still carries the CORS headers a dashboard
        // needs to read it.
        let origin = self.web_security.check_origin(&request);
        let mut response = match self.web_security.answer_early(&origin, &request) {
            Some(mut answer) => {
                // Preflights are answered here too; only a refusal counts as one.
                if answer.status().is_client_error() {
                    self.metrics.refused(Refusal::Origin);
                }
                discard_body(request, &mut answer).await;
                answer
            }
            None => match rate_limit::admit(&self.rate_limit, &mut request).await {
                Admission::Exempt => self.dispatch(request).await,
                Admission::Admitted(decision) => {
                    self.metrics.rate_limit_admitted();
                    let mut response = self.dispatch(request).await;
                    rate_limit::add_headers(response.headers_mut(), &decision);
                    response
                }
                Admission::Refused(mut refusal) => {
                    self.metrics.refused(Refusal::RateLimit);
                    discard_body(request, &mut refusal).await;
                    refusal
                }
            },
        };
        self.web_security.finish(origin, response.headers_mut());
        response
    }

    /// gRPC and grpc-web to tonic, the rest to the HTTP router.
    async fn dispatch(&self, mut request: Request) -> Response {
        // The RPC metrics label each call with the protocol it arrived in (gRPC unless
        // told: no extension map is made for the most common call); REST passes the
        // extensions on to its in-process call.
        let protocol = Protocol::of(request.headers());
        if protocol != Protocol::Grpc {
            request.extensions_mut().insert(protocol);
        }
        if !is_grpc(&request) {
            let Ok(response) = self.http.clone().oneshot(request).await;
            return response;
        }
        answer_grpc_web_text_in_kind(&mut request);
        match self.grpc.clone().oneshot(request).await {
            Ok(response) => response.map(Body::new),
            Err(error) => {
                status_from_error(Error::Internal(format!("grpc service failed: {error}")))
                    .into_http::<Body>()
                    .into_response()
            }
        }
    }
}

/// Reads the rest of a refused request's body first, so an HTTP/1.1 client still sending it
/// reads the refusal (see [`crate::refusal_body`]).
async fn discard_body(request: Request, refusal: &mut Response) {
    let (parts, body) = request.into_parts();
    // Boxed: refusals are rare, and their timer and body state would otherwise enlarge the
    // future of every request.
    Box::pin(discard_before_refusal(
        parts.version,
        &parts.headers,
        body,
        refusal,
    ))
    .await;
}

/// gRPC or grpc-web, by content type (`application/grpc`, `application/grpc-web+proto`, …).
pub(crate) fn is_grpc(request: &Request) -> bool {
    request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/grpc"))
}
