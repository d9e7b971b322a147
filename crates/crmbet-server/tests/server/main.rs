//! The server's tests, one binary (one link instead of five): the access layer, the read
//! cache, rate limits, TLS on the listener, the embedded dashboard and the browser-facing
//! limits, each through the real application router or listener.

// Test helpers unwrap on purpose: the panic with the error is the failure report.
#![allow(clippy::unwrap_used)]

mod access;
mod cache;
mod dashboard;
mod rate_limit;
mod support;
mod tls;
mod web_security;
