//! Traces and structured logs: a server pointed at an OTLP receiver (a tiny one in the test,
//! decoding the protobuf export the way a collector does) exports a span per REST and gRPC
//! call, a child of the caller's `traceparent`; with `CRMBET_LOG_FORMAT=json` its access
//! lines are JSON objects carrying the request id and the trace id.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use crmbet_proto::v1::ListClustersRequest;
use crmbet_proto::v1::cluster_service_client::ClusterServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use serde_json::Value;

use crate::server::RunningServer;

/// A span as the receiver saw it: trace id, parent span id (hex), name and attributes.
#[derive(Debug, Clone)]
struct ReceivedSpan {
    trace_id: String,
    parent_span_id: String,
    name: String,
    attributes: Vec<(String, String)>,
}

/// An OTLP/HTTP trace receiver on a free port.
struct Receiver {
    endpoint: String,
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
    service_names: Arc<Mutex<Vec<String>>>,
}

type Received = (Arc<Mutex<Vec<ReceivedSpan>>>, Arc<Mutex<Vec<String>>>);

async fn receive(State((spans, service_names)): State<Received>, body: Bytes) -> &'static str {
    let export = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf export");
    for resource_spans in export.resource_spans {
        let resource = resource_spans.resource.unwrap_or_default();
        for attribute in resource.attributes {
            if attribute.key == "service.name" {
                service_names
                    .lock()
                    .unwrap()
                    .push(format!("{:?}", attribute.value));
            }
        }
        for scope_spans in resource_spans.scope_spans {
            for span in scope_spans.spans {
                spans.lock().unwrap().push(ReceivedSpan {
                    trace_id: hex(&span.trace_id),
                    parent_span_id: hex(&span.parent_span_id),
                    name: span.name,
                    attributes: span
                        .attributes
                        .into_iter()
                        .map(|attribute| (attribute.key, format!("{:?}", attribute.value)))
                        .collect(),
                });
            }
        }
    }
    ""
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

impl Receiver {
    async fn start() -> Self {
        let spans = Arc::new(Mutex::new(Vec::new()));
        let service_names = Arc::new(Mutex::new(Vec::new()));
        let router = axum::Router::new()
            .route("/v1/traces", post(receive))
            .with_state((Arc::clone(&spans), Arc::clone(&service_names)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self {
            endpoint: format!("http://{address}"),
            spans,
            service_names,
        }
    }

    /// Waits for a span of `trace_id`.
    async fn span_of(&self, trace_id: &str) -> ReceivedSpan {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let found = self
                .spans
                .lock()
                .unwrap()
                .iter()
                .find(|span| span.trace_id == trace_id)
                .cloned();
            if let Some(span) = found {
                return span;
            }
            assert!(
                Instant::now() < deadline,
                "no span of trace {trace_id} reached the receiver; it has {:?}",
                self.spans.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

const REST_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const REST_PARENT: &str = "00f067aa0ba902b7";
const GRPC_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const GRPC_PARENT: &str = "b7ad6b7169203331";

#[tokio::test]
async fn rest_and_grpc_calls_are_traced_as_children_of_the_callers_span() {
    let receiver = Receiver::start().await;
    let server = RunningServer::start_with_environment(
        300,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.clone()),
            ("OTEL_SERVICE_NAME", "crmbet-e2e".to_owned()),
            // The SDK's own setting: export every 100 ms rather than every 5 s.
            ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
            ("CRMBET_LOG_FORMAT", "json".to_owned()),
            ("CRMBET_LOG", "info".to_owned()),
        ],
    );
    let client = server.rest_client().await;

    let response = client
        .get(format!("{}/api/v1/clusters", server.url()))
        .header("traceparent", format!("00-{REST_TRACE}-{REST_PARENT}-01"))
        .header("x-request-id", "e2e-traced-rest-call")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let span = receiver.span_of(REST_TRACE).await;
    assert_eq!(span.parent_span_id, REST_PARENT, "{span:?}");
    assert_eq!(span.name, "/api/v1/clusters");
    assert!(
        span.attributes
            .iter()
            .any(|(key, value)| key == "request_id" && value.contains("e2e-traced-rest-call")),
        "{span:?}"
    );
    assert!(
        span.attributes
            .iter()
            .any(|(key, value)| key == "http.response.status_code" && value.contains("200")),
        "{span:?}"
    );

    let mut grpc = ClusterServiceClient::new(server.grpc_channel().await);
    let mut request = tonic::Request::new(ListClustersRequest::default());
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{GRPC_TRACE}-{GRPC_PARENT}-01").parse().unwrap(),
    );
    grpc.list_clusters(request).await.unwrap();
    let span = receiver.span_of(GRPC_TRACE).await;
    assert_eq!(span.parent_span_id, GRPC_PARENT, "{span:?}");
    assert_eq!(span.name, "/crmbet.v1.ClusterService/ListClusters");
    assert!(
        receiver
            .service_names
            .lock()
            .unwrap()
            .iter()
            .any(|name| name.contains("crmbet-e2e")),
        "service.name"
    );

    // The JSON access line of the REST call: its request id and the caller's trace id.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let access_line = server
            .stderr
            .lock()
            .unwrap()
            .iter()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .find(|line| {
                line["target"] == "crmbet::access"
                    && line["span"]["request_id"] == "e2e-traced-rest-call"
            });
        if let Some(line) = access_line {
            assert_eq!(line["span"]["trace_id"], REST_TRACE, "{line}");
            assert_eq!(line["fields"]["status"], 200, "{line}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no JSON access line with the request id; the server wrote {:?}",
            server.stderr.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
