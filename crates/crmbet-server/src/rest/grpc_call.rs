//! Calling the in-process gRPC service: the framed HTTP/2 request, and reading the
//! response's messages and final status as they arrive.

use axum::body::Body;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, TE};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Version};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use tonic::Status;

use crate::rest::grpc_frame::{FrameDecoder, encode_frame};
use crate::rest::metadata::request_metadata;
use crate::rest::status::{status_for_http_status, status_from_metadata};

/// Errors of any body or service, boxed.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Builds the gRPC request for `grpc_path` carrying `message` (encoded protobuf), with the
/// forwarded headers and the extensions of the REST request (client address, ...).
pub(crate) fn grpc_request(
    grpc_path: &str,
    message: &[u8],
    incoming_headers: &HeaderMap,
    extensions: http::Extensions,
) -> Result<Request<Body>, Status> {
    let frame =
        encode_frame(message).map_err(|error| Status::invalid_argument(error.to_string()))?;
    let mut request = Request::new(Body::from(frame));
    *request.method_mut() = Method::POST;
    *request.version_mut() = Version::HTTP_2;
    *request.uri_mut() = grpc_path
        .parse()
        .map_err(|_| Status::internal(format!("{grpc_path:?} is not a valid grpc path")))?;
    *request.extensions_mut() = extensions;
    let headers = request.headers_mut();
    headers.extend(request_metadata(incoming_headers));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert(TE, HeaderValue::from_static("trailers"));
    Ok(request)
}

/// One step of a gRPC response.
#[derive(Debug)]
pub(crate) enum GrpcEvent {
    /// One encoded response message.
    Message(Bytes),
    /// The call ended with this status (`OK` included); no event follows.
    End(Status),
}

/// A gRPC response being read: its initial metadata, then messages, then the status.
pub(crate) struct GrpcReply {
    headers: HeaderMap,
    body: UnsyncBoxBody<Bytes, BoxError>,
    decoder: FrameDecoder,
    early_status: Option<Status>,
    trailer_status: Option<Status>,
}

impl GrpcReply {
    /// Starts reading `response`. A trailers-only response (`grpc-status` among the
    /// headers) or a non-200 HTTP status ends the call at once.
    pub(crate) fn new<ResponseBody>(response: http::Response<ResponseBody>) -> Self
    where
        ResponseBody: http_body::Body<Data = Bytes> + Send + 'static,
        ResponseBody::Error: Into<BoxError>,
    {
        let (parts, body) = response.into_parts();
        let early_status = status_from_metadata(&parts.headers).or_else(|| {
            (parts.status != StatusCode::OK).then(|| status_for_http_status(parts.status))
        });
        Self {
            headers: parts.headers,
            body: body.map_err(Into::into).boxed_unsync(),
            decoder: FrameDecoder::default(),
            early_status,
            trailer_status: None,
        }
    }

    /// The response headers (gRPC initial metadata).
    pub(crate) fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// Waits for the next message or the end of the call.
    pub(crate) async fn next_event(&mut self) -> GrpcEvent {
        if let Some(status) = self.early_status.take() {
            return GrpcEvent::End(status);
        }
        loop {
            match self.decoder.next_message() {
                Ok(Some(message)) => return GrpcEvent::Message(message),
                Ok(None) => {}
                Err(error) => return GrpcEvent::End(Status::internal(error.to_string())),
            }
            let Some(frame) = self.body.frame().await else {
                return GrpcEvent::End(self.final_status());
            };
            let frame = match frame {
                Ok(frame) => frame,
                Err(error) => {
                    tracing::warn!(%error, "reading the grpc response failed");
                    return GrpcEvent::End(Status::unavailable(format!(
                        "the response of the grpc service broke off: {error}"
                    )));
                }
            };
            match frame.into_data() {
                Ok(data) => self.decoder.push(&data),
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        self.trailer_status = status_from_metadata(&trailers);
                    }
                }
            }
        }
    }

    fn final_status(&mut self) -> Status {
        if let Err(error) = self.decoder.finish() {
            return Status::internal(error.to_string());
        }
        self.trailer_status
            .take()
            .unwrap_or_else(|| Status::internal("the grpc response ended without a grpc-status"))
    }
}
