//! Domain types, errors and configuration of crmbet.
//!
//! Invariant: this crate does no I/O beyond reading its configuration file and knows no
//! framework (no tonic, no sea-orm, no DataFusion). Every crate that talks about players,
//! accounts or the API builds on it; `crmbet-ml` stands alone (plain matrices).

pub mod config;
pub mod delivery;
pub mod error;
pub mod features;
pub mod fingerprint;
pub mod ids;
pub mod money;
pub mod paging;
pub mod rate_limit_classes;
pub mod role;
pub mod signature;

pub use config::{Config, LogFormat, TlsFiles};
pub use error::{Error, ErrorCode, Result};
pub use features::{FAVOURITE_GAME, NUMERIC_FEATURES};
pub use ids::{CampaignId, ClusterId, EtlRunId, ModelId, PlayerId, TrainingRunId};
pub use paging::{PageSize, PageToken};
pub use role::Role;
