//! The axum router that serves REST by calling the in-process gRPC service.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use bytes::Bytes;
use http::header::{ALLOW, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use prost::Message;
use tonic::{Code, Status};
use tower::{Service, ServiceExt};

use crate::refusal_body::discard_before_refusal;
use crate::request_body::timed_out;
use crate::rest::grpc_call::{BoxError, call_grpc};
use crate::rest::request::{HttpInput, RejectedRequest, build_request_message};
use crate::rest::response::{ResponseShape, streaming_response, unary_response};
use crate::rest::routes::{RestRoutes, RouteLookup};
use crate::rest::status::{error_response, error_response_with};

/// Default for [`RestConfig::max_body_bytes`]: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// Settings of the REST layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestConfig {
    /// Largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// Where the API documentation lives, named in "no such route" errors.
    pub docs_path: String,
}

impl Default for RestConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            docs_path: "/api-docs".to_owned(),
        }
    }
}

/// Serves every route of `routes` by calling `grpc` (typically `tonic::service::Routes`)
/// in process. The router takes every path under the templates' first segments (`/api/…`),
/// so unknown paths there get a JSON 404; it sets no fallback, so it merges with others.
///
/// ```no_run
/// # use std::sync::Arc;
/// # use crmbet_server::rest::{RestConfig, RestRoutes, rest_router};
/// # fn example(grpc: tonic::service::Routes) -> Result<axum::Router, crmbet_server::rest::RestError> {
/// let routes = Arc::new(RestRoutes::from_descriptor_set(crmbet_proto::FILE_DESCRIPTOR_SET)?);
/// Ok(rest_router(routes, grpc, RestConfig::default()))
/// # }
/// ```
pub fn rest_router<GrpcService, ResponseBody>(
    routes: Arc<RestRoutes>,
    grpc: GrpcService,
    config: RestConfig,
) -> Router
where
    GrpcService: Service<Request<Body>, Response = http::Response<ResponseBody>>
        + Clone
        + Send
        + Sync
        + 'static,
    GrpcService::Future: Send,
    GrpcService::Error: Into<BoxError>,
    ResponseBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResponseBody::Error: Into<BoxError>,
{
    let prefixes: Vec<String> = routes
        .path_prefixes()
        .into_iter()
        .chain(["api"])
        .map(str::to_owned)
        .collect();
    let transcoder = Arc::new(Transcoder {
        routes,
        grpc,
        config,
    });
    let handler = any(move |request: Request| {
        let transcoder = Arc::clone(&transcoder);
        async move { transcoder.handle(request).await }
    });
    let mut router = Router::new();
    let mut registered: Vec<String> = Vec::new();
    for prefix in prefixes {
        if registered.contains(&prefix) {
            continue;
        }
        router = router.route(&format!("/{prefix}/{{*rest}}"), handler.clone());
        registered.push(prefix);
    }
    router
}

/// Routes, the gRPC service and the settings, shared by every request.
struct Transcoder<GrpcService> {
    routes: Arc<RestRoutes>,
    grpc: GrpcService,
    config: RestConfig,
}

impl<GrpcService, ResponseBody> Transcoder<GrpcService>
where
    GrpcService: Service<Request<Body>, Response = http::Response<ResponseBody>>
        + Clone
        + Send
        + Sync
        + 'static,
    GrpcService::Future: Send,
    GrpcService::Error: Into<BoxError>,
    ResponseBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResponseBody::Error: Into<BoxError>,
{
    async fn handle(&self, request: Request) -> Response {
        let (mut parts, body) = request.into_parts();
        let path = parts.uri.path().to_owned();
        let (route, path_values) = match self.routes.lookup(&parts.method, &path) {
            RouteLookup::Found { route, path_values } => (route, path_values),
            RouteLookup::NotFound => {
                let status = Status::not_found(format!(
                    "no REST route for {} {path}; see {}",
                    parts.method, self.config.docs_path
                ));
                let mut response = error_response(&status);
                discard_before_refusal(parts.version, &parts.headers, body, &mut response).await;
                return response;
            }
            RouteLookup::MethodNotAllowed { allowed } => {
                let mut response = method_not_allowed(&parts.method, &path, &allowed);
                discard_before_refusal(parts.version, &parts.headers, body, &mut response).await;
                return response;
            }
        };
        let body_bytes = match read_body(&parts.headers, body, self.config.max_body_bytes).await {
            Ok(bytes) => bytes,
            Err(rejected) => return rejected_response(&rejected),
        };
        let content_type = parts
            .headers
            .get(CONTENT_TYPE)
            .map(|value| value.to_str().unwrap_or("an unreadable value"));
        let input = HttpInput {
            path_values: &path_values,
            query: parts.uri.query(),
            content_type,
            body: &body_bytes,
        };
        let message = match build_request_message(route, input) {
            Ok(message) => message,
            Err(rejected) => return rejected_response(&rejected),
        };
        let extensions = std::mem::take(&mut parts.extensions);
        // tonic's client sends its own body type; the routes take axum's.
        let grpc = self
            .grpc
            .clone()
            .map_request(|request: Request<tonic::body::Body>| request.map(Body::new));
        let reply = call_grpc(
            grpc,
            route.grpc_path(),
            Bytes::from(message.encode_to_vec()),
            &parts.headers,
            extensions,
        )
        .await;
        let shape = ResponseShape::of(route);
        if route.is_server_streaming() {
            return streaming_response(reply, shape).await;
        }
        unary_response(reply, &shape).await
    }
}

/// Reads the whole body, refusing more than `max_body_bytes` (from `content-length` at once,
/// or while reading).
async fn read_body(
    headers: &http::HeaderMap,
    body: Body,
    max_body_bytes: usize,
) -> Result<Bytes, RejectedRequest> {
    let too_large = || RejectedRequest {
        http_status: StatusCode::PAYLOAD_TOO_LARGE,
        message: format!("request body is larger than the limit of {max_body_bytes} bytes"),
    };
    let declared_length = headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if let Some(declared_length) = declared_length
        && usize::try_from(declared_length).map_or(true, |length| length > max_body_bytes)
    {
        return Err(too_large());
    }
    match Limited::new(body, max_body_bytes).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(error) => match timed_out(error.as_ref()) {
            Some(status) => Err(RejectedRequest {
                http_status: StatusCode::REQUEST_TIMEOUT,
                message: status.message().to_owned(),
            }),
            None => Err(RejectedRequest::bad_request(format!(
                "reading the request body failed: {error}"
            ))),
        },
    }
}

/// The REST answer to a request refused before its service: the HTTP status says what
/// went wrong, the code agrees with what gRPC answers for the same (a message over the
/// size limit is `OUT_OF_RANGE` there, a body too slow `DEADLINE_EXCEEDED`).
fn rejected_response(rejected: &RejectedRequest) -> Response {
    let code = match rejected.http_status {
        StatusCode::PAYLOAD_TOO_LARGE => Code::OutOfRange,
        StatusCode::REQUEST_TIMEOUT => Code::DeadlineExceeded,
        _ => Code::InvalidArgument,
    };
    let status = Status::new(code, rejected.message.clone());
    let mut response = error_response_with(rejected.http_status, &status, None);
    // The rest of a body too large or too slow is not read: the connection cannot go on.
    if code != Code::InvalidArgument {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

fn method_not_allowed(method: &http::Method, path: &str, allowed: &[http::Method]) -> Response {
    let allowed_list = allowed
        .iter()
        .map(http::Method::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    let status = Status::unimplemented(format!(
        "method {method} is not allowed on {path}; allowed: {allowed_list}"
    ));
    let mut response = error_response_with(StatusCode::METHOD_NOT_ALLOWED, &status, None);
    if let Ok(value) = HeaderValue::from_str(&allowed_list) {
        response.headers_mut().insert(ALLOW, value);
    }
    response.into_response()
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use http::HeaderMap;
    use http_body::Frame;
    use http_body_util::StreamBody;
    use serde_json::{Value, json};

    use super::*;
    use crate::rest::fixtures::{
        Answer, FakeBody, ReceivedCall, crmbet_routes, encode_message, fake_grpc, frame,
        grpc_response, grpc_trailers_only, header_map,
    };

    /// A REST router over the fake service, and what the service received.
    fn rest_over_fake(
        answer: Answer,
        config: RestConfig,
    ) -> (Router, Arc<Mutex<Vec<ReceivedCall>>>) {
        let received = Arc::new(Mutex::new(Vec::new()));
        let grpc = fake_grpc(Arc::clone(&received), answer);
        let router = rest_router(Arc::new(crmbet_routes()), grpc, config);
        (router, received)
    }

    fn answer(
        reply: impl Fn(&ReceivedCall) -> http::Response<FakeBody> + Send + Sync + 'static,
    ) -> Answer {
        Arc::new(reply)
    }

    async fn send(router: &Router, request: http::Request<Body>) -> (StatusCode, HeaderMap, Value) {
        let response = router.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
        (status, headers, json)
    }

    fn get(uri: &str) -> http::Request<Body> {
        http::Request::get(uri)
            .body(Body::empty())
            .expect("valid request")
    }

    fn post_json(uri: &str, body: &'static str) -> http::Request<Body> {
        http::Request::post(uri)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .expect("valid request")
    }

    #[derive(Debug, Clone, PartialEq)]
    struct ClientMarker(u32);

    #[tokio::test]
    async fn transcodes_a_get_and_forwards_headers_and_extensions() {
        let (router, received) = rest_over_fake(
            answer(|_| {
                let message = encode_message(
                    "crmbet.v1.GetClusterResponse",
                    json!({"cluster": {
                        "clusterId": "12",
                        "name": "Night Owl Casino",
                        "size": "9007199254740993",
                        "suggestedCampaign": "CAMPAIGN_TYPE_CASHBACK",
                    }}),
                );
                grpc_response(
                    &[
                        ("ratelimit-remaining", "99"),
                        ("grpc-accept-encoding", "gzip"),
                    ],
                    &[message],
                    &[("grpc-status", "0"), ("x-served-by", "fake")],
                )
            }),
            RestConfig::default(),
        );
        let mut request = http::Request::get("/api/v1/clusters/12")
            .header("authorization", "Bearer token")
            .header("x-request-id", "request-1")
            .header("cookie", "session=secret")
            .body(Body::empty())
            .expect("valid request");
        request.extensions_mut().insert(ClientMarker(7));
        let (status, headers, body) = send(&router, request).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(headers["ratelimit-remaining"], "99");
        assert_eq!(headers["x-served-by"], "fake");
        assert!(headers.get("grpc-accept-encoding").is_none());
        assert_eq!(body["cluster"]["cluster_id"], json!(12));
        assert_eq!(body["cluster"]["name"], json!("Night Owl Casino"));
        assert_eq!(body["cluster"]["size"], json!(9_007_199_254_740_993_i64));
        assert_eq!(
            body["cluster"]["suggested_campaign"],
            json!("CAMPAIGN_TYPE_CASHBACK")
        );
        assert_eq!(body["cluster"]["profile"], json!([]));
        assert_eq!(body["cluster"]["share"], json!(0.0));
        assert!(body["cluster"].get("created_at").is_none());

        let calls = received.lock().expect("not poisoned");
        let [call] = calls.as_slice() else {
            panic!("expected one call, got {calls:?}");
        };
        assert_eq!(call.grpc_path, "/crmbet.v1.ClusterService/GetCluster");
        assert_eq!(call.version, http::Version::HTTP_2);
        assert_eq!(call.message, json!({"clusterId": "12"}));
        assert_eq!(call.headers["content-type"], "application/grpc");
        assert_eq!(call.headers["te"], "trailers");
        assert_eq!(call.headers["authorization"], "Bearer token");
        assert_eq!(call.headers["x-request-id"], "request-1");
        assert!(call.headers.get("cookie").is_none());
        assert_eq!(
            call.extensions.get::<ClientMarker>(),
            Some(&ClientMarker(7))
        );
    }

    #[tokio::test]
    async fn renders_every_field_with_proto_names() {
        let (router, received) = rest_over_fake(
            answer(|_| grpc_response(&[], &[Vec::new()], &[("grpc-status", "0")])),
            RestConfig::default(),
        );
        let (status, _, body) = send(&router, get("/api/v1/clusters?page_size=5&modelId=3")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            json!({"clusters": [], "next_page_token": "", "model_id": 0})
        );
        let calls = received.lock().expect("not poisoned");
        assert_eq!(calls[0].message, json!({"pageSize": 5, "modelId": "3"}));
    }

    #[tokio::test]
    async fn transcodes_a_json_body_and_hands_over_the_raw_bytes() {
        let (router, received) = rest_over_fake(
            answer(|call| {
                let username = call.message["username"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let message = encode_message(
                    "crmbet.v1.LoginResponse",
                    json!({"accessToken": format!("token-for-{username}"), "expiresIn": 3600}),
                );
                grpc_response(&[], &[message], &[("grpc-status", "0")])
            }),
            RestConfig::default(),
        );
        let raw = r#"{"username": "admin", "password": "secret"}"#;
        let (status, _, body) = send(&router, post_json("/api/v1/auth/login", raw)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["access_token"], json!("token-for-admin"));
        assert_eq!(body["expires_in"], json!(3600));
        assert_eq!(body["refresh_token"], json!(""));
        let calls = received.lock().expect("not poisoned");
        assert_eq!(calls[0].grpc_path, "/crmbet.v1.AuthService/Login");
    }

    #[tokio::test]
    async fn maps_grpc_failures_to_http_errors() {
        let (router, _) = rest_over_fake(
            answer(|call| match call.message["clusterId"].as_str() {
                Some("404") => grpc_trailers_only(&[
                    ("grpc-status", "5"),
                    (
                        "grpc-message",
                        "cluster 404 not found%3B list clusters first",
                    ),
                    ("x-request-id", "request-2"),
                ]),
                Some("403") => grpc_response(
                    &[("ratelimit-remaining", "0")],
                    &[],
                    &[
                        ("grpc-status", "7"),
                        ("grpc-message", "role analyst cannot read clusters"),
                    ],
                ),
                Some("500") => grpc_response(&[], &[], &[]),
                _ => grpc_response(&[], &[], &[("grpc-status", "0")]),
            }),
            RestConfig::default(),
        );
        let cases = [
            (
                "/api/v1/clusters/404",
                404,
                json!({"code": "NOT_FOUND", "message": "cluster 404 not found; list clusters first", "details": []}),
            ),
            (
                "/api/v1/clusters/403",
                403,
                json!({"code": "PERMISSION_DENIED", "message": "role analyst cannot read clusters", "details": []}),
            ),
            (
                "/api/v1/clusters/500",
                500,
                // tonic's reading: a stream cut before its status is UNKNOWN.
                json!({"code": "UNKNOWN", "message": "protocol error: missing grpc-status trailer, stream was terminated without a final status (possible truncation by a proxy or load balancer)", "details": []}),
            ),
            (
                "/api/v1/clusters/1",
                500,
                json!({"code": "INTERNAL", "message": "the grpc service answered without a message", "details": []}),
            ),
        ];
        for (uri, expected_status, expected_body) in cases {
            let (status, headers, body) = send(&router, get(uri)).await;
            assert_eq!(status.as_u16(), expected_status, "{uri}");
            assert_eq!(body, expected_body, "{uri}");
            assert_eq!(headers["content-type"], "application/json", "{uri}");
            if uri.ends_with("404") {
                assert_eq!(headers["x-request-id"], "request-2");
            }
            if uri.ends_with("403") {
                assert_eq!(headers["ratelimit-remaining"], "0");
            }
        }
    }

    #[tokio::test]
    async fn rejects_requests_before_calling_the_service() {
        let (router, received) = rest_over_fake(
            answer(|_| grpc_response(&[], &[], &[("grpc-status", "0")])),
            RestConfig {
                max_body_bytes: 64,
                ..RestConfig::default()
            },
        );
        let oversized_stream = Body::from_stream(futures::stream::iter(vec![
            Ok::<_, std::convert::Infallible>(Bytes::from(vec![b' '; 40])),
            Ok(Bytes::from(vec![b' '; 40])),
        ]));
        let cases: Vec<(http::Request<Body>, u16, &str, &str)> = vec![
            (
                get("/api/v1/nope"),
                404,
                "NOT_FOUND",
                "no REST route for GET /api/v1/nope; see /api-docs",
            ),
            (
                http::Request::delete("/api/v1/clusters")
                    .body(Body::empty())
                    .expect("valid"),
                405,
                "UNIMPLEMENTED",
                "method DELETE is not allowed on /api/v1/clusters; allowed: GET",
            ),
            (
                get("/api/v1/clusters/abc"),
                400,
                "INVALID_ARGUMENT",
                "cluster_id: expected an integer, got \"abc\"",
            ),
            (
                get("/api/v1/clusters?colour=red"),
                400,
                "INVALID_ARGUMENT",
                "unknown query parameter \"colour\"; expected one of page_size, page_token, model_id",
            ),
            (
                http::Request::post("/api/v1/auth/login")
                    .header("content-type", "text/plain")
                    .body(Body::from("username=admin"))
                    .expect("valid"),
                415,
                "INVALID_ARGUMENT",
                "content-type must be application/json, got text/plain",
            ),
            (
                post_json(
                    "/api/v1/auth/login",
                    r#"{"username": "admin", "password": "a password far longer than the limit"}"#,
                ),
                413,
                "OUT_OF_RANGE",
                "request body is larger than the limit of 64 bytes",
            ),
            (
                http::Request::post("/api/v1/auth/login")
                    .header("content-type", "application/json")
                    .body(oversized_stream)
                    .expect("valid"),
                413,
                "OUT_OF_RANGE",
                "request body is larger than the limit of 64 bytes",
            ),
            (
                post_json("/api/v1/auth/login", r#"{"username": 5}"#),
                400,
                "INVALID_ARGUMENT",
                "username: invalid type: integer `5`, expected a string",
            ),
        ];
        for (request, expected_status, expected_code, expected_message) in cases {
            let description = format!("{} {}", request.method(), request.uri());
            let (status, headers, body) = send(&router, request).await;
            assert_eq!(status.as_u16(), expected_status, "{description}");
            assert_eq!(
                body,
                json!({"code": expected_code, "message": expected_message, "details": []}),
                "{description}"
            );
            if expected_status == 405 {
                assert_eq!(headers["allow"], "GET");
            }
        }
        assert!(received.lock().expect("not poisoned").is_empty());
    }

    #[tokio::test]
    async fn streams_server_streaming_responses_as_ndjson_lines() {
        let (sender, receiver) = futures::channel::mpsc::unbounded::<Frame<Bytes>>();
        let receiver = Arc::new(Mutex::new(Some(receiver)));
        let (router, _) = rest_over_fake(
            answer(move |_| {
                let frames = receiver
                    .lock()
                    .expect("not poisoned")
                    .take()
                    .expect("one call");
                let body = StreamBody::new(futures::StreamExt::map(
                    frames,
                    Ok::<_, std::convert::Infallible>,
                ))
                .boxed_unsync();
                let mut response = http::Response::new(body);
                response
                    .headers_mut()
                    .insert("content-type", HeaderValue::from_static("application/grpc"));
                response
            }),
            RestConfig::default(),
        );
        let event = |percent: f64| {
            let message = encode_message(
                "crmbet.v1.WatchTrainingRunResponse",
                json!({"runId": "4", "status": "TRAINING_STATUS_RUNNING", "percent": percent}),
            );
            Frame::data(frame(&message))
        };
        sender.unbounded_send(event(10.0)).expect("receiver alive");
        let response = router
            .clone()
            .oneshot(get("/api/v1/training/runs/4/events"))
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "application/x-ndjson");
        let mut body = response.into_body();
        let first = next_data(&mut body).await;
        let first: Value = serde_json::from_slice(&first).expect("one JSON line");
        assert_eq!(first["run_id"], json!(4));
        assert_eq!(first["percent"], json!(10.0));

        sender.unbounded_send(event(55.0)).expect("receiver alive");
        let second: Value = serde_json::from_slice(&next_data(&mut body).await).expect("JSON");
        assert_eq!(second["percent"], json!(55.0));

        sender
            .unbounded_send(Frame::trailers(header_map(&[
                ("grpc-status", "10"),
                ("grpc-message", "run 4 was cancelled"),
            ])))
            .expect("receiver alive");
        drop(sender);
        let last: Value = serde_json::from_slice(&next_data(&mut body).await).expect("JSON");
        assert_eq!(
            last,
            json!({"error": {"code": "ABORTED", "message": "run 4 was cancelled", "details": []}})
        );
        assert!(body.frame().await.is_none());
    }

    #[tokio::test]
    async fn a_stream_that_fails_at_once_gets_a_plain_error() {
        let (router, _) = rest_over_fake(
            answer(|_| grpc_trailers_only(&[("grpc-status", "5"), ("grpc-message", "no run 9")])),
            RestConfig::default(),
        );
        let (status, headers, body) = send(&router, get("/api/v1/training/runs/9/events")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(
            body,
            json!({"code": "NOT_FOUND", "message": "no run 9", "details": []})
        );
    }

    /// A tonic cluster and training service, to check the transcoder against real tonic.
    mod real_tonic {
        use crmbet_proto::v1::cluster_service_server::ClusterService;
        use crmbet_proto::v1::training_service_server::TrainingService;
        use crmbet_proto::v1::*;
        use tonic::{Request, Response, Status};

        use super::ClientMarker;

        pub(super) struct Clusters;

        #[tonic::async_trait]
        impl ClusterService for Clusters {
            async fn list_clusters(
                &self,
                _request: Request<ListClustersRequest>,
            ) -> Result<Response<ListClustersResponse>, Status> {
                Err(Status::unimplemented("not in this test"))
            }

            async fn get_cluster(
                &self,
                request: Request<GetClusterRequest>,
            ) -> Result<Response<GetClusterResponse>, Status> {
                let authorization = request
                    .metadata()
                    .get("authorization")
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let marker = request
                    .extensions()
                    .get::<ClientMarker>()
                    .map(|marker| marker.0);
                let cluster_id = request.into_inner().cluster_id;
                if cluster_id != 12 {
                    return Err(Status::not_found(format!(
                        "cluster {cluster_id} does not exist; list clusters first"
                    )));
                }
                let mut response = Response::new(GetClusterResponse {
                    cluster: Some(Cluster {
                        cluster_id,
                        name: format!("{authorization} {marker:?}"),
                        ..Cluster::default()
                    }),
                });
                response
                    .metadata_mut()
                    .insert("ratelimit-remaining", "41".parse().expect("ascii"));
                Ok(response)
            }

            async fn list_cluster_users(
                &self,
                _request: Request<ListClusterUsersRequest>,
            ) -> Result<Response<ListClusterUsersResponse>, Status> {
                Err(Status::unimplemented("not in this test"))
            }

            async fn get_cluster_analytics(
                &self,
                _request: Request<GetClusterAnalyticsRequest>,
            ) -> Result<Response<GetClusterAnalyticsResponse>, Status> {
                Err(Status::unimplemented("not in this test"))
            }
        }

        pub(super) struct Training;

        #[tonic::async_trait]
        impl TrainingService for Training {
            type WatchTrainingRunStream =
                futures::stream::Iter<std::vec::IntoIter<Result<WatchTrainingRunResponse, Status>>>;

            async fn start_training(
                &self,
                _request: Request<StartTrainingRequest>,
            ) -> Result<Response<StartTrainingResponse>, Status> {
                Err(Status::unimplemented("not in this test"))
            }

            async fn get_training_run(
                &self,
                _request: Request<GetTrainingRunRequest>,
            ) -> Result<Response<GetTrainingRunResponse>, Status> {
                Err(Status::unimplemented("not in this test"))
            }

            async fn watch_training_run(
                &self,
                request: Request<WatchTrainingRunRequest>,
            ) -> Result<Response<Self::WatchTrainingRunStream>, Status> {
                let run_id = request.into_inner().run_id;
                let event = |percent: f64| WatchTrainingRunResponse {
                    run_id,
                    percent,
                    ..WatchTrainingRunResponse::default()
                };
                let events = vec![
                    Ok(event(25.0)),
                    Ok(event(50.0)),
                    Err(Status::aborted("run cancelled by an operator")),
                ];
                Ok(Response::new(futures::stream::iter(events)))
            }

            async fn list_models(
                &self,
                _request: Request<ListModelsRequest>,
            ) -> Result<Response<ListModelsResponse>, Status> {
                Err(Status::unimplemented("not in this test"))
            }

            async fn activate_model(
                &self,
                _request: Request<ActivateModelRequest>,
            ) -> Result<Response<ActivateModelResponse>, Status> {
                Err(Status::unimplemented("not in this test"))
            }
        }
    }

    #[tokio::test]
    async fn serves_real_tonic_services() {
        use crmbet_proto::v1::cluster_service_server::ClusterServiceServer;
        use crmbet_proto::v1::training_service_server::TrainingServiceServer;

        let grpc = tonic::service::Routes::new(ClusterServiceServer::new(real_tonic::Clusters))
            .add_service(TrainingServiceServer::new(real_tonic::Training));
        let router = rest_router(Arc::new(crmbet_routes()), grpc, RestConfig::default());

        let mut request = http::Request::get("/api/v1/clusters/12")
            .header("authorization", "Bearer token")
            .body(Body::empty())
            .expect("valid request");
        request.extensions_mut().insert(ClientMarker(3));
        let (status, headers, body) = send(&router, request).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(headers["ratelimit-remaining"], "41");
        assert_eq!(body["cluster"]["cluster_id"], json!(12));
        assert_eq!(body["cluster"]["name"], json!("Bearer token Some(3)"));

        let (status, _, body) = send(&router, get("/api/v1/clusters/7")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            body,
            json!({"code": "NOT_FOUND", "message": "cluster 7 does not exist; list clusters first", "details": []})
        );

        let (status, _, body) = send(&router, get("/api/v1/clusters")).await;
        assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
        assert_eq!(body["code"], json!("UNIMPLEMENTED"));

        let response = router
            .clone()
            .oneshot(get("/api/v1/training/runs/5/events"))
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::OK);
        let text = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let lines: Vec<Value> = text
            .split(|byte| *byte == b'\n')
            .filter(|line| !line.is_empty())
            .map(|line| serde_json::from_slice(line).expect("JSON line"))
            .collect();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(lines[0]["run_id"], json!(5));
        assert_eq!(lines[1]["percent"], json!(50.0));
        assert_eq!(lines[2]["error"]["code"], json!("ABORTED"));
        assert_eq!(
            lines[2]["error"]["message"],
            json!("run cancelled by an operator")
        );
    }

    async fn next_data(body: &mut Body) -> Bytes {
        loop {
            let frame = body
                .frame()
                .await
                .expect("another frame")
                .expect("no error");
            if let Ok(data) = frame.into_data() {
                assert!(data.ends_with(b"\n"), "each line ends with a newline");
                return data;
            }
        }
    }
}
