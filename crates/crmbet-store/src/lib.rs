//! Storage of crmbet on sea-orm: entities, migrations and the queries the services need.
//!
//! One code path serves SQLite (the embedded default) and PostgreSQL (production); queries
//! are built with sea-query so placeholders and quoting follow the connected engine.

mod accounts;
mod clusters;
mod database;
pub mod entity;
mod etl_runs;
mod failure;
mod players;
pub mod sample;
mod training;

pub use accounts::{AuditEntry, NewAccount, NewRefreshToken, Rotation};
pub use clusters::{ClusterAnalytics, ClusterMember, FeatureStatistics, GroupCount};
pub use database::{MigrationStatus, POOL_MAX_CONNECTIONS, PoolUsage, Store, TABLES};
pub use etl_runs::{EtlRunRecord, EtlRunSummary, LoadedObject, PlayerRecord, QuarantineRecord};
pub use players::{PlayerBehavior, PlayerSearch, PlayerSegment, PlayerSummary};
pub use training::{
    FeatureRows, NewCluster, NewModel, NewSegment, NewTrainingRun, SavedModel, StoredModel,
    TrainingStatus,
};

/// Numeric per-player feature columns of `player_features`, in profile order.
pub const NUMERIC_FEATURES: &[&str] = &[
    "share_crash",
    "share_slots",
    "share_live_casino",
    "share_sports",
    "share_table",
    "bet_count",
    "bet_std",
    "bet_cv",
    "sessions",
    "bets_per_session",
    "avg_ticket",
    "total_staked",
    "ngr",
    "deposit_count",
    "deposit_sum",
    "avg_deposit",
    "withdrawal_count",
    "withdrawal_sum",
    "withdrawal_ratio",
    "bonus_share",
    "clv_estimate",
    "night_share",
    "weekend_share",
    "preferred_hour",
    "preferred_weekday",
    "active_days",
    "tenure_days",
    "recency_days",
    "frequency",
    "monetary",
    "r_score",
    "f_score",
    "m_score",
];
