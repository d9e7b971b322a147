//! The request body as every service reads it: the connection's body with a deadline, so a
//! client that trickles its body (a byte a second under a large `Content-Length`, or chunks
//! without an end) is refused instead of holding its connection and a task for ever.
//!
//! The deadline starts the first time the body is not ready when read: a body that arrived
//! with its headers (the usual small request) costs no timer. A native gRPC body is a
//! stream of messages (EventService.Ingest streams live events for as long as the platform
//! plays): its deadline bounds the wait for the next frame, and starts again with each one.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::Sleep;
use tonic::Status;

/// Errors of a request body, boxed as axum and tonic expect them.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request body that fails with `DEADLINE_EXCEEDED` when it has not ended within its
/// timeout of the first wait. The error is a [`Status`], so tonic answers it as such and the
/// REST layer finds it in the error's source chain ([`timed_out`]).
#[derive(Debug)]
pub(crate) struct TimedBody {
    inner: Incoming,
    timeout: Duration,
    deadline: Option<Pin<Box<Sleep>>>,
    /// The timeout bounds each wait for a frame, not the whole body.
    per_frame: bool,
}

impl TimedBody {
    /// A body that must end within `timeout` of its first wait.
    pub(crate) fn new(inner: Incoming, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            deadline: None,
            per_frame: false,
        }
    }

    /// A stream of frames, each of which must come within `timeout` of the last.
    pub(crate) fn per_frame(inner: Incoming, timeout: Duration) -> Self {
        Self {
            per_frame: true,
            ..Self::new(inner, timeout)
        }
    }
}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(context) {
            if this.per_frame {
                this.deadline = None;
            }
            return Poll::Ready(frame.map(|result| result.map_err(BoxError::from)));
        }
        let timeout = this.timeout;
        let deadline = this
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match deadline.as_mut().poll(context) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(body_timed_out(timeout))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn body_timed_out(timeout: Duration) -> Status {
    Status::deadline_exceeded(format!(
        "the request body did not arrive within {} s (CRMBET_REQUEST_BODY_TIMEOUT_SECONDS)",
        timeout.as_secs()
    ))
}

/// The deadline status when `error` (or one of its sources) is a body that timed out.
pub(crate) fn timed_out<'error>(
    error: &'error (dyn std::error::Error + 'static),
) -> Option<&'error Status> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(status) = error.downcast_ref::<Status>()
            && status.code() == tonic::Code::DeadlineExceeded
        {
            return Some(status);
        }
        current = error.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_timeout_behind_wrapping_errors() {
        let boxed: BoxError = Box::new(body_timed_out(Duration::from_secs(3)));
        let wrapped = axum::Error::new(boxed);
        let status = timed_out(&wrapped).expect("the timeout is found");
        assert!(
            status.message().contains("within 3 s"),
            "{}",
            status.message()
        );
        let other = std::io::Error::other("reset");
        assert!(timed_out(&other).is_none());
    }
}
