//! The crmbet server: tonic services over the store, grpc-web, REST transcoded from the
//! `google.api.http` annotations, gRPC health and reflection, `/health`, and the access
//! layer (JWT, roles, audit log) in front of every RPC.
//!
//! Invariant: every RPC has exactly one implementation, the tonic service; REST and
//! grpc-web reach it through layers, never through a hand-written twin.

pub mod app;
pub mod auth;
mod convert;
mod health;
pub mod rate_limit;
pub mod read_cache;
pub mod rest;
mod service;
pub mod status;
pub mod training;
pub mod web_security;

pub use app::{AppState, application, serve, shutdown_signal};
pub use training::{Trainer, TrainingEvent, TrainingOutcome, TrainingRequest, feature_table};
