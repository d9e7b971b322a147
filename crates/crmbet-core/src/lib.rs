//! Domain types, errors and configuration of crmbet.
//!
//! Invariant: this crate does no I/O beyond reading its configuration file and knows no
//! framework (no tonic, no sea-orm, no DataFusion); every other crate builds on it.

pub mod config;
pub mod error;
pub mod fingerprint;
pub mod ids;
pub mod money;
pub mod paging;
pub mod rate_limit_classes;

pub use config::{Config, TlsFiles};
pub use error::{Error, ErrorCode, Result};
pub use ids::{CampaignId, ClusterId, EtlRunId, ModelId, PlayerId, TrainingRunId};
pub use paging::{PageSize, PageToken};
