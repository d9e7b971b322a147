//! Test fixtures: the crmbet descriptor set with its `google.api.http` rules, and a fake
//! gRPC service to transcode against.
//!
//! The rules are set here from a table that mirrors `proto/crmbet/v1/*.proto`, so the
//! transcoder's tests do not depend on how `crmbet-proto` encodes extension options.

use std::sync::{Arc, Mutex, OnceLock};

use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, Value};

use crate::rest::RestRoutes;
use crate::rest::grpc_frame::{FrameDecoder, encode_frame};

/// (gRPC method, HTTP method, path template, body) of every crmbet RPC.
const CRMBET_RULES: &[(&str, &str, &str, &str)] = &[
    (
        "crmbet.v1.AuthService.Login",
        "post",
        "/api/v1/auth/login",
        "*",
    ),
    (
        "crmbet.v1.AuthService.Refresh",
        "post",
        "/api/v1/auth/refresh",
        "*",
    ),
    (
        "crmbet.v1.AuthService.Logout",
        "post",
        "/api/v1/auth/logout",
        "*",
    ),
    (
        "crmbet.v1.AuthService.WhoAmI",
        "get",
        "/api/v1/auth/whoami",
        "",
    ),
    (
        "crmbet.v1.CampaignService.CreateCampaign",
        "post",
        "/api/v1/campaigns",
        "*",
    ),
    (
        "crmbet.v1.CampaignService.GetCampaign",
        "get",
        "/api/v1/campaigns/{campaign_id}",
        "",
    ),
    (
        "crmbet.v1.CampaignService.ListCampaigns",
        "get",
        "/api/v1/campaigns",
        "",
    ),
    (
        "crmbet.v1.CampaignService.LaunchCampaign",
        "post",
        "/api/v1/campaigns/{campaign_id}/launch",
        "*",
    ),
    (
        "crmbet.v1.CampaignService.GetCampaignResults",
        "get",
        "/api/v1/campaigns/{campaign_id}/results",
        "",
    ),
    (
        "crmbet.v1.ClusterService.ListClusters",
        "get",
        "/api/v1/clusters",
        "",
    ),
    (
        "crmbet.v1.ClusterService.GetCluster",
        "get",
        "/api/v1/clusters/{cluster_id}",
        "",
    ),
    (
        "crmbet.v1.ClusterService.ListClusterUsers",
        "get",
        "/api/v1/clusters/{cluster_id}/users",
        "",
    ),
    (
        "crmbet.v1.ClusterService.GetClusterAnalytics",
        "get",
        "/api/v1/clusters/{cluster_id}/analytics",
        "",
    ),
    (
        "crmbet.v1.TrainingService.StartTraining",
        "post",
        "/api/v1/training/runs",
        "*",
    ),
    (
        "crmbet.v1.TrainingService.GetTrainingRun",
        "get",
        "/api/v1/training/runs/{run_id}",
        "",
    ),
    (
        "crmbet.v1.TrainingService.WatchTrainingRun",
        "get",
        "/api/v1/training/runs/{run_id}/events",
        "",
    ),
    (
        "crmbet.v1.TrainingService.ListModels",
        "get",
        "/api/v1/models",
        "",
    ),
    (
        "crmbet.v1.TrainingService.ActivateModel",
        "post",
        "/api/v1/models/{model_id}/activate",
        "*",
    ),
    (
        "crmbet.v1.UserService.GetUserSegment",
        "get",
        "/api/v1/user/{user_id}/segment",
        "",
    ),
    (
        "crmbet.v1.UserService.SearchUsers",
        "get",
        "/api/v1/users/search",
        "",
    ),
    (
        "crmbet.v1.UserService.GetUserBehavior",
        "get",
        "/api/v1/users/{user_id}/behavior",
        "",
    ),
    (
        "crmbet.v1.SmarticoWebhookService.ReceiveEvent",
        "post",
        "/api/v1/webhooks/smartico",
        "*",
    ),
];

/// The encoded crmbet descriptor set with every rule of [`CRMBET_RULES`] set.
pub(crate) fn descriptor_set() -> &'static [u8] {
    static ENCODED: OnceLock<Vec<u8>> = OnceLock::new();
    ENCODED.get_or_init(|| with_rules(crmbet_proto::FILE_DESCRIPTOR_SET, CRMBET_RULES))
}

/// The pool of [`descriptor_set`].
pub(crate) fn descriptor_pool() -> DescriptorPool {
    DescriptorPool::decode(descriptor_set()).expect("the fixture descriptor set decodes")
}

/// The route table of [`descriptor_set`].
pub(crate) fn crmbet_routes() -> RestRoutes {
    RestRoutes::from_descriptor_set(descriptor_set()).expect("the crmbet rules are valid")
}

/// Re-encodes `encoded` with a `google.api.http` option on each listed method.
fn with_rules(encoded: &[u8], rules: &[(&str, &str, &str, &str)]) -> Vec<u8> {
    let pool = DescriptorPool::decode(encoded).expect("descriptor set decodes");
    let set_descriptor = pool
        .get_message_by_name("google.protobuf.FileDescriptorSet")
        .expect("descriptor.proto is imported");
    let rule_descriptor = pool
        .get_message_by_name("google.api.HttpRule")
        .expect("http.proto is imported");
    let extension = pool
        .get_extension_by_name("google.api.http")
        .expect("annotations.proto is imported");
    let mut set = DynamicMessage::decode(set_descriptor, encoded).expect("set decodes");
    let files = list_mut(&mut set, "file");
    for file in files.iter_mut().filter_map(Value::as_message_mut) {
        let package = file
            .get_field_by_name("package")
            .and_then(|value| value.as_str().map(str::to_owned))
            .unwrap_or_default();
        for service in list_mut(file, "service")
            .iter_mut()
            .filter_map(Value::as_message_mut)
        {
            let service_name = string_field(service, "name");
            for method in list_mut(service, "method")
                .iter_mut()
                .filter_map(Value::as_message_mut)
            {
                let full_name =
                    format!("{package}.{service_name}.{}", string_field(method, "name"));
                let Some((_, verb, path, body)) =
                    rules.iter().find(|(name, ..)| *name == full_name)
                else {
                    continue;
                };
                let mut rule = DynamicMessage::new(rule_descriptor.clone());
                rule.set_field_by_name(verb, Value::String((*path).to_owned()));
                rule.set_field_by_name("body", Value::String((*body).to_owned()));
                let options = method
                    .get_field_by_name_mut("options")
                    .and_then(Value::as_message_mut)
                    .expect("methods have options");
                options.set_extension(&extension, Value::Message(rule));
            }
        }
    }
    set.encode_to_vec()
}

fn list_mut<'a>(message: &'a mut DynamicMessage, name: &str) -> &'a mut Vec<Value> {
    message
        .get_field_by_name_mut(name)
        .and_then(Value::as_list_mut)
        .expect("repeated field")
}

fn string_field(message: &DynamicMessage, name: &str) -> String {
    message
        .get_field_by_name(name)
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
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
            let mut decoder = FrameDecoder::default();
            decoder.push(&body);
            let frame = decoder
                .next_message()
                .expect("valid frame")
                .expect("one message");
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
        .map(|message| Ok(Frame::data(encode_frame(message).expect("small message"))))
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
