//! One span per request, whatever its protocol, when something consumes it: JSON logs
//! (`CRMBET_LOG_FORMAT=json`) or an OpenTelemetry exporter. Its parent is the caller's W3C
//! `traceparent` (a gRPC metadata entry and an HTTP header are the same thing on the wire),
//! read through the global propagator; the access layer records the request id into it, so
//! every log line written while serving the request carries `request_id` and `trace_id`.
//!
//! Off (the default: text logs, no exporter), no span is made at all: the hot read pays
//! one atomic load.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::extract::Request;
use axum::response::Response;
use opentelemetry::propagation::Extractor;
use opentelemetry::trace::TraceContextExt;
use tracing::Span;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The target of request spans and access lines, for log filters (`crmbet::request=off`).
pub const REQUEST_TARGET: &str = "crmbet::request";

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns request spans on or off for the process (the telemetry set-up decides).
pub fn enable(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// The span of `request` (disabled when request spans are off), with the caller's trace as
/// its parent.
pub(crate) fn request_span(request: &Request) -> Span {
    if !ENABLED.load(Ordering::Relaxed) {
        return Span::none();
    }
    let path = request.uri().path();
    let span = tracing::info_span!(
        target: "crmbet::request",
        "request",
        otel.name = path,
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = %request.method(),
        url.path = path,
        http.response.status_code = Empty,
        rpc.grpc.status_code = Empty,
        request_id = Empty,
        trace_id = Empty,
    );
    if span.is_disabled() {
        return span;
    }
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(request.headers()))
    });
    let callers_trace = parent.span().span_context().trace_id();
    let _ = span.set_parent(parent);
    // With an exporter the span has a trace of its own (the caller's, or a new one); with
    // JSON logs alone only the caller's trace is known.
    let trace_id = span.context().span().span_context().trace_id();
    let trace_id = if trace_id == opentelemetry::trace::TraceId::INVALID {
        callers_trace
    } else {
        trace_id
    };
    if trace_id != opentelemetry::trace::TraceId::INVALID {
        span.record("trace_id", tracing::field::display(trace_id));
    }
    span
}

/// Records the answer's status into the request's span and writes the access line.
pub(crate) fn record_response(span: &Span, response: &Response, started: Instant) {
    if span.is_disabled() {
        return;
    }
    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    // A trailers-only gRPC answer (refusals, errors) has its status in the headers; a
    // streamed answer's comes in the trailers, after this point.
    let grpc_status = response
        .headers()
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<i32>().ok());
    if let Some(code) = grpc_status {
        span.record("rpc.grpc.status_code", code);
    }
    let failed = status >= 500 || grpc_status.is_some_and(is_server_error_code);
    if failed {
        span.record("otel.status_code", "ERROR");
    }
    let _entered = span.enter();
    tracing::info!(
        target: "crmbet::access",
        status,
        grpc_status,
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "answered"
    );
}

/// Records the request id the access layer settled on into the current request span.
pub(crate) fn record_request_id(request_id: &str) {
    Span::current().record("request_id", request_id);
}

/// gRPC codes that mean the server failed (UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED,
/// INTERNAL, UNAVAILABLE, DATA_LOSS), as OpenTelemetry's semantic conventions count them.
fn is_server_error_code(code: i32) -> bool {
    matches!(code, 2 | 4 | 12 | 13 | 14 | 15)
}

/// Reads propagation fields from request headers.
struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_failures_are_the_codes_opentelemetry_counts_as_errors() {
        let failures: Vec<i32> = (0..17).filter(|code| is_server_error_code(*code)).collect();
        assert_eq!(failures, [2, 4, 12, 13, 14, 15]);
    }

    #[test]
    fn the_extractor_reads_traceparent_from_headers() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "traceparent",
            http::HeaderValue::from_static(
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            ),
        );
        let extractor = HeaderExtractor(&headers);
        assert_eq!(
            extractor.get("traceparent"),
            Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        );
        assert_eq!(extractor.keys(), ["traceparent"]);
        assert_eq!(extractor.get("tracestate"), None);
    }
}
