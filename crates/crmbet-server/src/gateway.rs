//! The front of the one listener: every request, whatever its protocol, passes the origin
//! check, then the rate limit, and is then dispatched — gRPC and grpc-web to the tonic
//! routes, everything else to the HTTP router (REST transcoding, `/health`).
//!
//! One service with one future per request rather than a middleware per concern: on the
//! hot read each layer of boxed futures and cloned state showed in the profile.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use crmbet_core::Error;
use futures::future::BoxFuture;
use tonic::service::Routes;
use tonic_web::GrpcWebService;
use tower::{Service, ServiceExt};

use crate::rate_limit::{self, Admission, RateLimitState};
use crate::status::status_from_error;
use crate::web_security::WebSecurity;

/// The whole application as one tower service; cheap to clone.
#[derive(Debug, Clone)]
pub struct Gateway {
    parts: Arc<Parts>,
}

#[derive(Debug)]
struct Parts {
    web_security: WebSecurity,
    rate_limit: RateLimitState,
    grpc: GrpcWebService<Routes>,
    http: Router,
}

impl Gateway {
    /// The front over `grpc` (the tonic routes behind the grpc-web translation) and `http`.
    pub(crate) fn new(
        web_security: WebSecurity,
        rate_limit: RateLimitState,
        grpc: GrpcWebService<Routes>,
        http: Router,
    ) -> Self {
        Self {
            parts: Arc::new(Parts {
                web_security,
                rate_limit,
                grpc,
                http,
            }),
        }
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
        Box::pin(async move { Ok(parts.handle(request).await) })
    }
}

impl Parts {
    async fn handle(&self, mut request: Request) -> Response {
        // The origin check comes first: a foreign origin never reaches any protocol. The
        // rate limit comes next, so a refusal still carries the CORS headers a dashboard
        // needs to read it.
        let origin = self.web_security.check_origin(&request);
        let mut response = match self.web_security.answer_early(&origin, &request) {
            Some(answer) => answer,
            None => match rate_limit::admit(&self.rate_limit, &mut request).await {
                Admission::Exempt => self.dispatch(request).await,
                Admission::Admitted(decision) => {
                    let mut response = self.dispatch(request).await;
                    rate_limit::add_headers(response.headers_mut(), &decision);
                    response
                }
                Admission::Refused(refusal) => refusal,
            },
        };
        self.web_security.finish(origin, response.headers_mut());
        response
    }

    /// gRPC and grpc-web to tonic, the rest to the HTTP router.
    async fn dispatch(&self, request: Request) -> Response {
        if !is_grpc(&request) {
            let Ok(response) = self.http.clone().oneshot(request).await;
            return response;
        }
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

/// gRPC or grpc-web, by content type (`application/grpc`, `application/grpc-web+proto`, …).
pub(crate) fn is_grpc(request: &Request) -> bool {
    request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/grpc"))
}
