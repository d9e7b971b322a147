//! Lake sources, data quality and per-player features on DataFusion.
//!
//! A run ([`run_etl`]) lists the lake's objects (a local folder or an S3 prefix), reads the
//! new ones with DataFusion, quarantines rows that break the lake contract, appends the
//! valid, deduplicated rows to a local Parquet [`Warehouse`], and computes every player's
//! features over it in one SQL plan. The same run reads the operator's snapshot of players'
//! restrictions under `players/` whole ([`RestrictionsSnapshot`]). [`live`] applies the same
//! rules and features to transactions that arrive one at a time.
//!
//! Invariant: `crmbet-etl` never knows about gRPC nor the database; it reads a lake and
//! hands back plain Rust values for the caller to store.

mod compare;
mod contract;
mod error;
mod features;
mod ingest;
mod lake;
pub mod live;
mod quality;
mod read;
mod restrictions;
mod run;
mod scores;
mod synthetic;
mod warehouse;

pub use compare::{largest_feature_difference, largest_serialized_difference};
pub use contract::{CONTRACT_COLUMNS, GAME_TYPES, REQUIRED_COLUMNS, TRANSACTION_TYPES};
pub use error::{Error, Result};
#[cfg(feature = "ballista")]
pub use features::warehouse_features_on_ballista;
pub use features::{PlayerFeatures, warehouse_features};
pub use lake::{
    Compression, LakeObject, LakeSource, LocalLake, ObjectFingerprint, ObjectFormat,
    PLAYERS_FOLDER, S3_SCHEME, S3Lake, S3Settings, TRANSACTIONS_FOLDER, Watermark,
};
pub use quality::{QuarantinedRow, Rule};
pub use restrictions::{
    LakeRestrictions, RESTRICTION_FLAGS, RESTRICTION_UPDATED_AT, RESTRICTION_USER_ID,
    RejectedRestrictionRow, RestrictionRule, RestrictionsSnapshot, read_restrictions_snapshot,
};
pub use run::{EtlMode, EtlOptions, EtlOutcome, EtlProgress, FailedObject, run_etl};
pub use scores::{Grade, QualityCounts, QualityScores};
pub use synthetic::{
    Archetype, DEFAULT_DIRTY_FRACTION, DEFAULT_SEED, DirtyFault, MAX_WHALE_SHARE, SyntheticFormat,
    SyntheticLakeError, SyntheticLakeOptions, SyntheticLakeSummary, write_synthetic_lake,
};
pub use warehouse::{StagedTransaction, Warehouse};
