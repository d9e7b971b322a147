//! End-to-end tests: each starts the real `crmbet` binary on a free port and talks to it
//! the way its clients do.

// Test helpers unwrap on purpose: the panic with the error is the failure report.
#![allow(clippy::unwrap_used)]

mod abuse;
mod accounts;
mod bad_input;
mod bench;
mod broker_restart;
mod campaign;
mod etl;
mod health;
mod live;
mod live_segments;
mod metrics;
mod on_entry;
mod protocols;
mod s3;
mod segmentation;
mod server;
mod smartico_stand_in;
mod telemetry;
mod tls;
mod training;
mod two_instances;
mod webhook_receiver;
mod webhooks;
