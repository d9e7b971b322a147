//! Counting RPCs where every protocol meets: a service around the tonic routes, which
//! gRPC reaches directly, grpc-web through its translation and REST in process. The call is
//! observed when its response body ends (or is dropped: the caller went away), with the
//! final gRPC code from the trailers, or from the headers of a trailers-only answer.
//!
//! It wraps the routes as a whole rather than each route (axum's `Router::layer`): per
//! route, every call would clone a boxed service and box its future once more.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body::{Frame, SizeHint};
use tonic::Code;
use tower::{Layer, Service};

use super::Metrics;
use crate::auth::AccessService;
use crate::auth::permissions::METHOD_RULES;
use crate::status::GRPC_STATUS;

/// The tonic routes as every protocol reaches them: counted, then checked for access.
pub type MeteredRoutes = RpcMetrics<AccessService<axum::Router>>;

/// The protocol a call arrived in, put in the request's extensions by the gateway when it
/// is not gRPC (REST passes its extensions on to the in-process call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Grpc,
    GrpcWeb,
    Rest,
}

impl Protocol {
    const COUNT: usize = 3;

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

    fn index(self) -> usize {
        match self {
            Self::Grpc => 0,
            Self::GrpcWeb => 1,
            Self::Rest => 2,
        }
    }
}

/// RPC labels outside the permission table: the open health and reflection services, and
/// `unknown` for a path nobody serves.
const OPEN_RPC_LABELS: [(&str, &str); 2] = [
    ("/grpc.health.v1.Health/", "/grpc.health.v1.Health"),
    ("/grpc.reflection.", "/grpc.reflection"),
];
const UNKNOWN_RPC: usize = METHOD_RULES.len() + OPEN_RPC_LABELS.len();

/// Which series a call belongs to: its RPC label (a position in the permission table, then
/// the open services, then `unknown`) and its protocol. Labels come from fixed tables,
/// never from the path itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RpcSlot {
    rpc: usize,
    protocol: Protocol,
}

impl RpcSlot {
    /// How many slots there are.
    pub(super) const COUNT: usize = (UNKNOWN_RPC + 1) * Protocol::COUNT;

    fn of(path: &str, protocol: Protocol) -> Self {
        let rpc = METHOD_RULES
            .iter()
            .position(|rule| rule.path == path)
            .or_else(|| {
                OPEN_RPC_LABELS
                    .iter()
                    .position(|(prefix, _)| path.starts_with(prefix))
                    .map(|open| METHOD_RULES.len() + open)
            })
            .unwrap_or(UNKNOWN_RPC);
        Self { rpc, protocol }
    }

    pub(super) fn index(self) -> usize {
        self.rpc * Protocol::COUNT + self.protocol.index()
    }

    pub(super) fn protocol(self) -> Protocol {
        self.protocol
    }

    pub(super) fn rpc_label(self) -> &'static str {
        if let Some(rule) = METHOD_RULES.get(self.rpc) {
            return rule.path;
        }
        OPEN_RPC_LABELS
            .get(self.rpc - METHOD_RULES.len())
            .map_or("unknown", |(_, label)| label)
    }
}

fn grpc_code(headers: &HeaderMap) -> Option<Code> {
    let value = headers.get(GRPC_STATUS)?;
    let code: i32 = std::str::from_utf8(value.as_bytes()).ok()?.parse().ok()?;
    Some(Code::from_i32(code))
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

/// The service [`RpcMetricsLayer`] makes.
#[derive(Debug, Clone)]
pub struct RpcMetrics<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S, RequestBody, ResponseBody> Service<Request<RequestBody>> for RpcMetrics<S>
where
    S: Service<Request<RequestBody>, Response = Response<ResponseBody>>,
    ResponseBody: http_body::Body<Data = Bytes>,
{
    type Response = Response<MeteredBody<ResponseBody>>;
    type Error = S::Error;
    type Future = MeteredFuture<S::Future>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: Request<RequestBody>) -> Self::Future {
        let protocol = request
            .extensions()
            .get::<Protocol>()
            .copied()
            .unwrap_or(Protocol::Grpc);
        let observation = Observation {
            metrics: Arc::clone(&self.metrics),
            slot: RpcSlot::of(request.uri().path(), protocol),
            started: Instant::now(),
            code: None,
        };
        MeteredFuture {
            inner: self.inner.call(request),
            observation: Some(observation),
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner call's future; its response leaves with a [`MeteredBody`].
    pub struct MeteredFuture<F> {
        #[pin]
        inner: F,
        observation: Option<Observation>,
    }
}

impl<F, ResponseBody, Error> Future for MeteredFuture<F>
where
    F: Future<Output = Result<Response<ResponseBody>, Error>>,
    ResponseBody: http_body::Body<Data = Bytes>,
{
    type Output = Result<Response<MeteredBody<ResponseBody>>, Error>;

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = ready!(this.inner.poll(context))?;
        let mut observation = this.observation.take();
        if let Some(observation) = observation.as_mut() {
            observation.code = grpc_code(response.headers());
        }
        Poll::Ready(Ok(response.map(|inner| MeteredBody { inner, observation })))
    }
}

/// One call being observed.
pub struct Observation {
    metrics: Arc<Metrics>,
    slot: RpcSlot,
    started: Instant,
    /// The final code once known.
    code: Option<Code>,
}

impl Observation {
    /// Records the call; a body that ended without a code was cut off (the caller left).
    fn record(self) {
        let code = self.code.unwrap_or(Code::Cancelled);
        self.metrics
            .observe_rpc(self.slot, code, self.started.elapsed());
    }
}

pin_project_lite::pin_project! {
    /// The response body, observed when it ends or is dropped.
    pub struct MeteredBody<B> {
        #[pin]
        inner: B,
        observation: Option<Observation>,
    }

    impl<B> PinnedDrop for MeteredBody<B> {
        fn drop(this: Pin<&mut Self>) {
            // Hyper may stop polling once `is_end_stream` says so: the trailers were read.
            if let Some(observation) = this.project().observation.take() {
                observation.record();
            }
        }
    }
}

impl<B> http_body::Body for MeteredBody<B>
where
    B: http_body::Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(context);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref()
                    && let Some(observation) = this.observation.as_mut()
                {
                    observation.code = grpc_code(trailers).or(observation.code);
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(mut observation) = this.observation.take() {
                    observation.code = Some(Code::Internal);
                    observation.record();
                }
            }
            Poll::Ready(None) => {
                if let Some(observation) = this.observation.take() {
                    observation.record();
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_fixed_tables_never_from_the_path() {
        let rpc_label = |path: &str| RpcSlot::of(path, Protocol::Grpc).rpc_label();
        assert_eq!(
            rpc_label("/crmbet.v1.UserService/GetUserSegment"),
            "/crmbet.v1.UserService/GetUserSegment"
        );
        assert_eq!(
            rpc_label("/grpc.health.v1.Health/Check"),
            "/grpc.health.v1.Health"
        );
        assert_eq!(
            rpc_label("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"),
            "/grpc.reflection"
        );
        assert_eq!(rpc_label("/crmbet.v1.UserService/Made-Up-42"), "unknown");
        assert_eq!(rpc_label("/anything/else"), "unknown");
        let slots: std::collections::HashSet<usize> = METHOD_RULES
            .iter()
            .map(|rule| rule.path)
            .chain(["/grpc.health.v1.Health/Check", "/grpc.reflection.x", "/x"])
            .flat_map(|path| {
                [Protocol::Grpc, Protocol::GrpcWeb, Protocol::Rest]
                    .map(|protocol| RpcSlot::of(path, protocol).index())
            })
            .collect();
        assert_eq!(slots.len(), RpcSlot::COUNT, "every slot is distinct");
        assert!(slots.iter().all(|&index| index < RpcSlot::COUNT));
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
