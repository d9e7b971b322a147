//! Test fixtures: the crmbet descriptor set, and a fake gRPC service to transcode against.

use std::sync::{Arc, Mutex, OnceLock};

use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage};

use crate::rest::RestRoutes;

/// The crmbet descriptor set, with its `google.api.http` options.
pub(crate) fn descriptor_set() -> &'static [u8] {
    crmbet_proto::FILE_DESCRIPTOR_SET
}

/// The pool of [`descriptor_set`].
pub(crate) fn descriptor_pool() -> DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(descriptor_set()).expect("the descriptor set decodes")
    })
    .clone()
}

/// The route table of [`descriptor_set`].
pub(crate) fn crmbet_routes() -> RestRoutes {
    RestRoutes::from_descriptor_set(descriptor_set()).expect("the crmbet rules are valid")
}

/// What the fake gRPC service received.
#[derive(Debug, Clone)]
pub(crate) struct ReceivedCall {
    /// The request path, such as `/crmbet.v1.ClusterService/GetCluster`.
    pub(crate) grpc_path: String,
    /// The HTTP version of the request.
    pub(crate) version: http::Version,
    /// The request headers (metadata).
    pub(crate) headers: http::HeaderMap,
    /// The request extensions.
    pub(crate) extensions: http::Extensions,
    /// The decoded request message, as default proto3 JSON.
    pub(crate) message: serde_json::Value,
}

/// The body type the fake service answers with.
pub(crate) type FakeBody =
    http_body_util::combinators::UnsyncBoxBody<bytes::Bytes, std::convert::Infallible>;

/// Builds the answer of the fake service to one call.
pub(crate) type Answer = Arc<dyn Fn(&ReceivedCall) -> http::Response<FakeBody> + Send + Sync>;

/// A tower service that plays a gRPC server: it decodes the framed request with the
/// fixture pool, records it, and replies with `answer`.
pub(crate) fn fake_grpc(
    received: Arc<Mutex<Vec<ReceivedCall>>>,
    answer: Answer,
) -> impl tower::Service<
    http::Request<axum::body::Body>,
    Response = http::Response<FakeBody>,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone
+ Send
+ Sync
+ 'static {
    tower::service_fn(move |request: http::Request<axum::body::Body>| {
        let received = Arc::clone(&received);
        let answer = Arc::clone(&answer);
        async move {
            let (parts, body) = request.into_parts();
            let body = body.collect().await.expect("request body").to_bytes();
            let frame = unframe(&body);
            let grpc_path = parts.uri.path().to_owned();
            let method_name = grpc_path.trim_start_matches('/').replace('/', ".");
            let input = descriptor_pool()
                .services()
                .flat_map(|service| service.methods().collect::<Vec<_>>())
                .find(|method| method.full_name() == method_name)
                .expect("known grpc method")
                .input();
            let message = DynamicMessage::decode(input, frame).expect("request decodes");
            let call = ReceivedCall {
                grpc_path,
                version: parts.version,
                headers: parts.headers,
                extensions: parts.extensions,
                message: serde_json::to_value(&message).expect("serializes"),
            };
            let response = answer(&call);
            received.lock().expect("not poisoned").push(call);
            Ok::<_, std::convert::Infallible>(response)
        }
    })
}

/// One uncompressed gRPC frame: a zero flag byte, the 4-byte big-endian length, the message.
pub(crate) fn frame(message: &[u8]) -> bytes::Bytes {
    let length = u32::try_from(message.len()).expect("a small message");
    let mut framed = vec![0u8];
    framed.extend_from_slice(&length.to_be_bytes());
    framed.extend_from_slice(message);
    framed.into()
}

/// The message of a body holding exactly one uncompressed frame.
fn unframe(body: &[u8]) -> &[u8] {
    assert_eq!(body.first(), Some(&0), "an uncompressed frame");
    let length_bytes: [u8; 4] = body[1..5].try_into().expect("a frame header");
    let length = u32::from_be_bytes(length_bytes) as usize;
    assert_eq!(body.len(), 5 + length, "exactly one frame");
    &body[5..]
}

/// Encodes `json` as the message `message_name` of the fixture pool.
pub(crate) fn encode_message(message_name: &str, json: serde_json::Value) -> Vec<u8> {
    let descriptor = descriptor_pool()
        .get_message_by_name(message_name)
        .expect("known message");
    DynamicMessage::deserialize(descriptor, json)
        .expect("valid message JSON")
        .encode_to_vec()
}

/// A gRPC response: `headers`, then one frame per message, then trailers with `trailers`
/// (which must hold `grpc-status`).
pub(crate) fn grpc_response(
    headers: &[(&'static str, &'static str)],
    messages: &[Vec<u8>],
    trailers: &[(&'static str, &'static str)],
) -> http::Response<FakeBody> {
    let mut frames: Vec<Result<Frame<bytes::Bytes>, std::convert::Infallible>> = messages
        .iter()
        .map(|message| Ok(Frame::data(frame(message))))
        .collect();
    frames.push(Ok(Frame::trailers(header_map(trailers))));
    let body = StreamBody::new(futures::stream::iter(frames)).boxed_unsync();
    let mut response = http::Response::new(body);
    *response.headers_mut() = header_map(headers);
    response.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("application/grpc"),
    );
    response
}

/// A trailers-only gRPC response: the status among the headers and an empty body.
pub(crate) fn grpc_trailers_only(
    headers: &[(&'static str, &'static str)],
) -> http::Response<FakeBody> {
    let body = http_body_util::Empty::new().boxed_unsync();
    let mut response = http::Response::new(body);
    *response.headers_mut() = header_map(headers);
    response.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("application/grpc"),
    );
    response
}

/// A header map from static pairs.
pub(crate) fn header_map(pairs: &[(&'static str, &'static str)]) -> http::HeaderMap {
    pairs
        .iter()
        .map(|(name, value)| {
            (
                http::header::HeaderName::from_static(name),
                http::HeaderValue::from_static(value),
            )
        })
        .collect()
}
