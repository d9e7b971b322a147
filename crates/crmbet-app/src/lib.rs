//! The use cases of crmbet that the server and the command line both call: loading a lake,
//! training runs, accounts and their passwords, campaigns (audiences, launches through the
//! outbox, results), players' restrictions, live play (transactions as they happen) and
//! operators' webhooks for segment changes.
//!
//! Invariant: this crate knows no protocol (no tonic, no HTTP types): it takes and returns
//! domain values and [`crmbet_core::Error`], which the server maps to status codes and the
//! command line prints.

mod accounts;
pub mod audience;
pub mod campaigns;
mod features;
mod lake_loading;
pub mod live_play;
mod live_scoring;
mod live_seeding;
mod passwords;
pub mod segment_webhooks;
pub mod training;
pub mod uplift;

pub use accounts::{MAX_USERNAME_CHARS, check_username, create_account};
pub use audience::{ExclusionCounts, TargetFilter};
pub use campaigns::{
    CampaignDraft, CampaignEvent, CampaignResults, CampaignSettings, Campaigns, Comparison, Funnel,
    RestrictionFlags,
};
pub use crmbet_etl::live::LiveTransaction;
pub use features::{feature_row, numeric_features};
pub use lake_loading::{LakeLoad, LoadedLake, load_lake, quarantine_by_rule, restrictions_summary};
pub use live_play::{IngestReport, IntakeSource, LivePlay, Refusal, RejectedTransaction};
pub use passwords::{
    MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS, check_new_password, generate_password, hash_password,
    verify_password,
};
pub use segment_webhooks::{RegisteredWebhook, SegmentWebhooks};
pub use training::{Trainer, TrainingEvent, TrainingOutcome, TrainingRequest, feature_table};
