//! The health lane: a plain-HTTP `GET /health` is answered on the listener's own thread
//! (the front door), not on the runtime that serves every other request, so an
//! orchestrator's probe gets its answer in milliseconds while a flood of requests keeps
//! that runtime busy. The check itself pings the database on its reserved connection (see
//! [`crate::health`]), so neither the runtime nor the pool stands in its way.
//!
//! A health-lane connection serves that one request and closes: a client cannot keep it
//! open to send other work down the lane. Over TLS the request line is encrypted until the
//! handshake, which the main runtime does, so there health checks share that runtime.

use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;

/// The start of a health check's request line; also how many bytes the front door reads
/// ahead to recognise one.
pub(crate) const REQUEST_LINE_PREFIX: &[u8] = b"GET /health ";

/// Whether the first bytes of a connection are a `GET /health` request line
/// (`GET /health HTTP/1.1`; a query or a longer path is not the check).
pub(crate) fn is_health_check(first_bytes: &[u8]) -> bool {
    first_bytes == REQUEST_LINE_PREFIX
}

/// The connection settings of the lane: those of every connection, without keep-alive.
pub(crate) fn builder(
    every_connection: &auto::Builder<TokioExecutor>,
) -> auto::Builder<TokioExecutor> {
    let mut lane = every_connection.clone();
    lane.http1().keep_alive(false);
    lane
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_plain_health_check_takes_the_lane() {
        let cases: [(&[u8], bool); 6] = [
            (b"GET /health ", true),
            (b"GET /health?x", false),
            (b"GET /healthz", false),
            (b"POST /health", false),
            (b"GET /he", false),
            (b"PRI * HTTP/2", false),
        ];
        for (first_bytes, expected) in cases {
            assert_eq!(
                is_health_check(first_bytes),
                expected,
                "{}",
                String::from_utf8_lossy(first_bytes)
            );
        }
    }
}
