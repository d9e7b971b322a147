//! gRPC response → REST response: one JSON object for a unary method, newline-delimited
//! JSON for a server-streaming one, the JSON error body for a failed call.

use std::convert::Infallible;

use axum::Json;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, StatusCode};
use prost_reflect::{DynamicMessage, FieldDescriptor, MessageDescriptor, SerializeOptions};
use serde_json::{Value, json};
use tonic::{Code, Status};

use crate::rest::grpc_call::{GrpcEvent, GrpcReply};
use crate::rest::metadata::response_headers;
use crate::rest::routes::RestRoute;
use crate::rest::status::{error_body_with_pool, error_response_with, http_status_for};

/// Proto3 JSON as the REST API speaks it: proto field names (`next_page_token`), 64-bit
/// integers as plain numbers, and every field present, defaults included.
pub(crate) const RESPONSE_JSON: SerializeOptions = SerializeOptions::new()
    .use_proto_field_name(true)
    .stringify_64_bit_integers(false)
    .skip_default_fields(false);

/// Content type of a streamed response.
const NDJSON: &str = "application/x-ndjson";

/// Renders a message as [`RESPONSE_JSON`].
pub(crate) fn message_to_json(message: &DynamicMessage) -> Result<Value, serde_json::Error> {
    message.serialize_with_options(serde_json::value::Serializer, &RESPONSE_JSON)
}

/// How a route's response messages become JSON.
#[derive(Debug, Clone)]
pub(crate) struct ResponseShape {
    output: MessageDescriptor,
    response_body: Option<FieldDescriptor>,
}

impl ResponseShape {
    /// The shape of `route`'s responses.
    pub(crate) fn of(route: &RestRoute) -> Self {
        Self {
            output: route.grpc_method().output(),
            response_body: route.response_body().cloned(),
        }
    }

    /// Decodes one response message and renders it, or only its `response_body` field.
    fn render(&self, encoded: &[u8]) -> Result<Value, Status> {
        let rendered = DynamicMessage::decode(self.output.clone(), encoded)
            .map_err(|error| error.to_string())
            .and_then(|message| message_to_json(&message).map_err(|error| error.to_string()));
        let mut json = rendered.map_err(|error| {
            tracing::error!(
                %error,
                message = self.output.full_name(),
                "cannot render a grpc response as JSON"
            );
            Status::internal("the response could not be rendered as JSON; see the server log")
        })?;
        let Some(field) = &self.response_body else {
            return Ok(json);
        };
        Ok(json
            .get_mut(field.name())
            .map(Value::take)
            .unwrap_or(Value::Null))
    }

    fn error_response(&self, status: &Status, initial_headers: &HeaderMap) -> Response {
        let mut response = error_response_with(
            http_status_for(status.code()),
            status,
            Some(self.output.parent_pool()),
        );
        add_missing_headers(response.headers_mut(), initial_headers);
        response
    }

    fn error_line(&self, status: &Status) -> Bytes {
        let body = error_body_with_pool(status, Some(self.output.parent_pool()));
        json_line(&json!({ "error": body }))
    }
}

/// Answers a unary call: 200 with the message as JSON, or the error of the status.
pub(crate) async fn unary_response(mut reply: GrpcReply, shape: &ResponseShape) -> Response {
    let initial_headers = response_headers(reply.headers());
    let message = match reply.next_event().await {
        GrpcEvent::Message(message) => message,
        GrpcEvent::End(status) if status.code() == Code::Ok => {
            let status = Status::internal("the grpc service answered without a message");
            return shape.error_response(&status, &initial_headers);
        }
        GrpcEvent::End(status) => return shape.error_response(&status, &initial_headers),
    };
    let status = match reply.next_event().await {
        GrpcEvent::End(status) => status,
        GrpcEvent::Message(_) => {
            Status::internal("the grpc service answered a unary call with several messages")
        }
    };
    if status.code() != Code::Ok {
        return shape.error_response(&status, &initial_headers);
    }
    let json = match shape.render(&message) {
        Ok(json) => json,
        Err(status) => return shape.error_response(&status, &initial_headers),
    };
    let mut response = (StatusCode::OK, Json(json)).into_response();
    add_missing_headers(response.headers_mut(), &initial_headers);
    let trailing_headers = response_headers(&status.metadata().clone().into_headers());
    add_missing_headers(response.headers_mut(), &trailing_headers);
    response
}

/// Answers a server-streaming call with one JSON line per message, sent as each arrives.
/// A call that fails before its first message gets the plain error response; one that
/// fails later ends with a line `{"error": {...}}`.
pub(crate) async fn streaming_response(mut reply: GrpcReply, shape: ResponseShape) -> Response {
    let initial_headers = response_headers(reply.headers());
    let first_message = match reply.next_event().await {
        GrpcEvent::Message(message) => Some(message),
        GrpcEvent::End(status) if status.code() == Code::Ok => None,
        GrpcEvent::End(status) => return shape.error_response(&status, &initial_headers),
    };
    let state = LineStream {
        finished: first_message.is_none(),
        pending: first_message,
        reply,
        shape,
    };
    let lines = futures::stream::unfold(state, next_line);
    let mut response = Response::new(Body::from_stream(lines));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(NDJSON));
    add_missing_headers(response.headers_mut(), &initial_headers);
    response
}

/// The state of a streamed response between lines.
struct LineStream {
    reply: GrpcReply,
    shape: ResponseShape,
    pending: Option<Bytes>,
    finished: bool,
}

async fn next_line(mut state: LineStream) -> Option<(Result<Bytes, Infallible>, LineStream)> {
    if state.finished {
        return None;
    }
    let message = match state.pending.take() {
        Some(message) => message,
        None => match state.reply.next_event().await {
            GrpcEvent::Message(message) => message,
            GrpcEvent::End(status) => {
                state.finished = true;
                if status.code() == Code::Ok {
                    return None;
                }
                let line = state.shape.error_line(&status);
                return Some((Ok(line), state));
            }
        },
    };
    let line = match state.shape.render(&message) {
        Ok(json) => json_line(&json),
        Err(status) => {
            state.finished = true;
            state.shape.error_line(&status)
        }
    };
    Some((Ok(line), state))
}

fn json_line(value: &Value) -> Bytes {
    let mut line = value.to_string().into_bytes();
    line.push(b'\n');
    Bytes::from(line)
}

/// Copies `extra` into `headers` where `headers` has no value of that name yet.
fn add_missing_headers(headers: &mut HeaderMap, extra: &HeaderMap) {
    for name in extra.keys() {
        if headers.contains_key(name) {
            continue;
        }
        for value in extra.get_all(name) {
            headers.append(name.clone(), value.clone());
        }
    }
}
