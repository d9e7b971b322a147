//! Calling the in-process gRPC service with tonic's own client: the request message goes
//! out already encoded, and the reply's messages come back encoded, with its initial
//! metadata and final status as tonic reads them (trailers-only answers, trailers, HTTP
//! statuses without `grpc-status`).

use bytes::{Buf, BufMut, Bytes};
use http::HeaderMap;
use http::uri::PathAndQuery;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder, Streaming};
use tonic::metadata::MetadataMap;
use tonic::{Code, Status};

use crate::rest::metadata::request_metadata;

/// Errors of any body or service, boxed.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Calls `grpc_path` on `grpc` with `message` (encoded protobuf), the forwarded headers of
/// the REST request as metadata and its extensions (client address, ...).
pub(crate) async fn call_grpc<GrpcService>(
    grpc: GrpcService,
    grpc_path: &str,
    message: Bytes,
    incoming_headers: &HeaderMap,
    extensions: http::Extensions,
) -> GrpcReply
where
    GrpcService: tonic::client::GrpcService<tonic::body::Body>,
    GrpcService::ResponseBody: http_body::Body<Data = Bytes> + Send + 'static,
    <GrpcService::ResponseBody as http_body::Body>::Error: Into<BoxError>,
    GrpcService::Error: Into<BoxError>,
{
    let path = match PathAndQuery::try_from(grpc_path) {
        Ok(path) => path,
        Err(_) => {
            return GrpcReply::ended(Status::internal(format!(
                "{grpc_path:?} is not a valid grpc path"
            )));
        }
    };
    let mut client = tonic::client::Grpc::new(grpc);
    if let Err(error) = client.ready().await {
        let error: BoxError = error.into();
        tracing::error!(%error, grpc_path, "the grpc service is not ready");
        return GrpcReply::ended(Status::internal(
            "the grpc service failed; see the server log",
        ));
    }
    let request = tonic::Request::from_parts(
        MetadataMap::from_headers(request_metadata(incoming_headers)),
        extensions,
        message,
    );
    match client
        .server_streaming(request, path, EncodedMessages)
        .await
    {
        Ok(response) => GrpcReply {
            headers: response.metadata().clone().into_headers(),
            messages: Some(response.into_inner()),
            early_status: None,
        },
        Err(status) => GrpcReply::ended(status),
    }
}

/// One step of a gRPC response.
#[derive(Debug)]
pub(crate) enum GrpcEvent {
    /// One encoded response message.
    Message(Bytes),
    /// The call ended with this status (`OK` included, with the trailers as metadata); no
    /// event follows.
    End(Status),
}

/// A gRPC response being read: its initial metadata, then messages, then the status.
pub(crate) struct GrpcReply {
    headers: HeaderMap,
    messages: Option<Streaming<Bytes>>,
    early_status: Option<Status>,
}

impl GrpcReply {
    /// A call that ended before any message: a trailers-only answer or a failed call.
    fn ended(status: Status) -> Self {
        Self {
            headers: HeaderMap::new(),
            messages: None,
            early_status: Some(status),
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
        let Some(messages) = self.messages.as_mut() else {
            return GrpcEvent::End(Status::internal("the grpc call already ended"));
        };
        match messages.message().await {
            Ok(Some(message)) => GrpcEvent::Message(message),
            Ok(None) => {
                let trailers = messages.trailers().await;
                self.messages = None;
                GrpcEvent::End(match trailers {
                    Ok(trailers) => {
                        let trailers = trailers.map(MetadataMap::into_headers).unwrap_or_default();
                        Status::from_header_map(&trailers).unwrap_or_else(|| {
                            Status::with_metadata(Code::Ok, "", MetadataMap::from_headers(trailers))
                        })
                    }
                    Err(status) => status,
                })
            }
            Err(status) => {
                self.messages = None;
                GrpcEvent::End(status)
            }
        }
    }
}

/// Messages that stay encoded both ways: the transcoder builds and renders them itself
/// from the descriptors, so tonic only frames them.
#[derive(Debug, Clone, Copy, Default)]
struct EncodedMessages;

impl Codec for EncodedMessages {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = Self;
    type Decoder = Self;

    fn encoder(&mut self) -> Self::Encoder {
        *self
    }

    fn decoder(&mut self) -> Self::Decoder {
        *self
    }
}

impl Encoder for EncodedMessages {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, message: Bytes, buffer: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buffer.put(message);
        Ok(())
    }
}

impl Decoder for EncodedMessages {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, buffer: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(buffer.copy_to_bytes(buffer.remaining())))
    }
}
