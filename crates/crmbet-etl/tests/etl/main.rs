//! End-to-end tests of the ETL: lakes written by the test or by the Python peer's
//! generator, run through `run_etl`, checked against hand-computed values and the peer.

// Helpers outside `#[test]` functions unwrap too: a failed step is a failed test.
#![allow(clippy::unwrap_used)]

mod failures;
mod fixture;
mod incremental;
mod live;
mod peer;
mod restrictions;
mod support;
