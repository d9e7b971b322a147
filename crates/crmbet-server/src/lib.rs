//! The crmbet server, the protocol edge: tonic services that translate messages and call
//! the store and the use cases of `crmbet-app`, grpc-web, REST transcoded from the
//! `google.api.http` annotations, gRPC health and reflection, `/health`, and the access
//! layer (JWT, roles, audit log) in front of every RPC, all on one listener that speaks
//! plain HTTP or, when configured, TLS.
//!
//! Invariant: every RPC has exactly one implementation, the tonic service; REST and
//! grpc-web reach it through layers, never through a hand-written twin.

mod ambiguity;
pub mod app;
pub mod auth;
mod bounded_map;
mod broker_probe;
pub mod connections;
mod convert;
mod dashboard;
pub mod draining;
pub mod gateway;
mod health;
mod health_lane;
pub mod heavy_reads;
pub mod listener;
pub mod live_ingest;
pub mod live_messages;
pub mod metrics;
pub mod openapi;
pub mod rate_limit;
pub mod read_cache;
mod refusal_body;
mod request_body;
pub mod request_span;
pub mod rest;
pub mod segment_feed;
mod service;
pub mod status;
pub mod tls;
pub mod web_security;
pub mod webhook_auth;

pub use app::{AppState, application};
pub use gateway::Gateway;
pub use listener::{serve, shutdown_signal};
pub use tls::Transport;
