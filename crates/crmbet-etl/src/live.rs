//! Live transactions: the lake contract's rules applied one event at a time, and per-player
//! aggregates that one event updates in O(1) and that give the same features as the batch
//! feature SQL over the same rows.
//!
//! The batch path stays the reference: [`check`] files an event under the rule the ETL's
//! CASE expression would (the same timestamp parser, the same order of rules), and
//! [`PlayerAggregates::features`] with [`score_rfm`] reproduces every column of
//! [`crate::features`]'s query, including its tie-breaking.

mod aggregates;
mod check;
mod replay;
mod rfm;
mod seed;

pub use aggregates::{Novelty, PlayerAggregates, features_of, reference_micros};
pub use check::{CheckedTransaction, LiveTransaction, TransactionKind, check, check_all};
pub use replay::lake_transactions;
pub use rfm::{RfmCuts, score_rfm};
pub(crate) use seed::history_of;
pub use seed::{WarehouseHistory, warehouse_aggregates, warehouse_history};
