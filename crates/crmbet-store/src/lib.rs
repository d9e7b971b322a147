//! Storage of crmbet on sea-orm: entities, migrations and the queries the services need.
//!
//! One code path serves SQLite (the embedded default) and PostgreSQL (production); queries
//! are built with sea-query so placeholders and quoting follow the connected engine.

mod accounts;
mod campaigns;
mod clusters;
mod database;
pub mod entity;
mod etl_runs;
mod failure;
mod lake_restrictions;
mod live;
mod operations;
mod outbox;
mod players;
mod restrictions;
#[cfg(feature = "test-support")]
pub mod sample;
mod segment_changes;
mod segment_webhooks;
#[cfg(feature = "test-support")]
pub mod throwaway_postgres;
mod training;
mod webhook_events;

pub use accounts::{AuditEntry, NewAccount, NewRefreshToken, Rotation};
pub use campaigns::{
    AudienceCandidate, AudienceDetail, EntryEnrollment, LaunchOutcome, LaunchRecord, LaunchTarget,
    NewCampaign, NewOutboxMessage,
};
pub use clusters::{ClusterAnalytics, ClusterMember, FeatureStatistics, GroupCount};
pub use database::{MigrationStatus, POOL_MAX_CONNECTIONS, PoolUsage, Store, TABLES};
pub use etl_runs::{EtlRunRecord, EtlRunSummary, LoadedObject, PlayerRecord, QuarantineRecord};
pub use lake_restrictions::{
    LAKE_SOURCE, LakeRestrictionRow, LakeRestrictionsApplied, RestrictionFlags, merged_flags,
};
pub use live::{
    LiveBatchSummary, LiveNovelty, LiveQuarantineRow, LiveStateUpdate, NewLiveTransaction,
    StoredLiveTransaction,
};
pub use operations::OperationalSnapshot;
pub use players::{PlayerBehavior, PlayerSearch, PlayerSegment, PlayerSummary};
pub use restrictions::NewRestrictions;
pub use segment_changes::{LiveSegment, REASON_ACTIVATION, REASON_LIVE, RecordedSegmentChange};
pub use segment_webhooks::{NewDeadLetter, NewWebhookEndpoint, WebhookClaim};
pub use training::{
    FeatureRows, NewCluster, NewModel, NewSegment, NewTrainingRun, RfmPopulation, SavedModel,
    StoredModel, TrainingStatus,
};
pub use webhook_events::{NewWebhookEvent, PlayerOutcome};
