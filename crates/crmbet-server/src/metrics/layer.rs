//! Counting RPCs where every protocol meets: a layer in front of the tonic routes, which
//! gRPC reaches directly, grpc-web through its translation and REST in process. The call is
//! observed when its response body ends (or is dropped: the caller went away), with the
//! final gRPC code from the trailers, or from the headers of a trailers-only answer.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use bytes::Bytes;
use futures::future::BoxFuture;
use http::HeaderMap;
use http_body::{Frame, SizeHint};
use tonic::Code;
use tower::{Layer, Service};

use super::Metrics;
use crate::auth::permissions::rule_for;
use crate::rest::code_name;

/// The protocol a call arrived in, put in the request's extensions by the gateway (REST
/// passes its extensions on to the in-process call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Grpc,
    GrpcWeb,
    Rest,
}

impl Protocol {
    /// The protocol of a request reaching the gateway, by its content type.
    pub fn of(headers: &HeaderMap) -> Self {
        let content_type = headers
            .get(http::header::CONTENT_TYPE)
            .map(|value| value.as_bytes())
            .unwrap_or_default();
        if content_type.starts_with(b"application/grpc-web") {
            Self::GrpcWeb
        } else if content_type.starts_with(b"application/grpc") {
            Self::Grpc
        } else {
            Self::Rest
        }
    }

    pub(super) fn label(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::GrpcWeb => "grpc-web",
            Self::Rest => "rest",
        }
    }
}

/// The RPC's label: its path from the permission table, the service of the open health
/// and reflection services, else `unknown` (a path nobody serves).
fn rpc_label(path: &str) -> &'static str {
    let rule = rule_for(path);
    if !rule.path.is_empty() {
        return rule.path;
    }
    if path.starts_with("/grpc.health.v1.Health/") {
        "/grpc.health.v1.Health"
    } else if path.starts_with("/grpc.reflection.") {
        "/grpc.reflection"
    } else {
        "unknown"
    }
}

fn grpc_code(headers: &HeaderMap) -> Option<Code> {
    let value = headers.get("grpc-status")?.to_str().ok()?;
    value.parse::<i32>().ok().map(Code::from_i32)
}

/// Observes every call of the service it wraps.
#[derive(Debug, Clone)]
pub struct RpcMetricsLayer {
    metrics: Arc<Metrics>,
}

impl RpcMetricsLayer {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcMetrics {
            inner,
            metrics: Arc::clone(&self.metrics),
        }
    }
}

#[derive(Debug, Clone)]
pub struct RpcMetrics<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S> Service<Request> for RpcMetrics<S>
where
    S: Service<Request, Response = Response> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response, S::Error>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let observation = Observation {
            metrics: Arc::clone(&self.metrics),
            rpc: rpc_label(request.uri().path()),
            protocol: request
                .extensions()
                .get::<Protocol>()
                .copied()
                .unwrap_or(Protocol::Grpc),
            started: Instant::now(),
            code: None,
        };
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            let mut observation = observation;
            observation.code = grpc_code(response.headers());
            Ok(response.map(|inner| {
                Body::new(MeteredBody {
                    inner,
                    observation: Some(observation),
                })
            }))
        })
    }
}

/// One call being observed.
struct Observation {
    metrics: Arc<Metrics>,
    rpc: &'static str,
    protocol: Protocol,
    started: Instant,
    /// The final code once known.
    code: Option<Code>,
}

impl Observation {
    /// Records the call; a body that ended without a code was cut off (the caller left).
    fn record(self) {
        let code = self.code.unwrap_or(Code::Cancelled);
        self.metrics.observe_rpc(
            self.rpc,
            self.protocol,
            code_name(code),
            self.started.elapsed(),
        );
    }
}

/// The response body, observed when it ends or is dropped.
struct MeteredBody {
    inner: Body,
    observation: Option<Observation>,
}

impl MeteredBody {
    fn finish(&mut self) {
        if let Some(observation) = self.observation.take() {
            observation.record();
        }
    }
}

impl http_body::Body for MeteredBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(context);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref()
                    && let Some(observation) = this.observation.as_mut()
                {
                    observation.code = grpc_code(trailers).or(observation.code);
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(observation) = this.observation.as_mut() {
                    observation.code = Some(Code::Internal);
                }
                this.finish();
            }
            Poll::Ready(None) => this.finish(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for MeteredBody {
    fn drop(&mut self) {
        // Hyper may stop polling once `is_end_stream` says so: the trailers were read.
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_fixed_tables_never_from_the_path() {
        assert_eq!(
            rpc_label("/crmbet.v1.UserService/GetUserSegment"),
            "/crmbet.v1.UserService/GetUserSegment"
        );
        assert_eq!(
            rpc_label("/grpc.health.v1.Health/Check"),
            "/grpc.health.v1.Health"
        );
        assert_eq!(rpc_label("/crmbet.v1.UserService/Made-Up-42"), "unknown");
        assert_eq!(rpc_label("/anything/else"), "unknown");
    }

    #[test]
    fn protocols_are_told_apart_by_content_type() {
        let mut headers = HeaderMap::new();
        assert_eq!(Protocol::of(&headers), Protocol::Rest);
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/grpc-web-text"),
        );
        assert_eq!(Protocol::of(&headers), Protocol::GrpcWeb);
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/grpc+proto"),
        );
        assert_eq!(Protocol::of(&headers), Protocol::Grpc);
    }
}
