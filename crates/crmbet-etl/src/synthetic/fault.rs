//! Rows broken on purpose, so the demo's quality report has something to show: a fixed
//! fraction of rows, one fault each, spread evenly over the days and the fault kinds.

use serde::{Deserialize, Serialize};

use crate::quality::Rule;

use super::calendar::Calendar;
use super::sampler::Sampler;
use super::transaction::TransactionRow;

/// Transaction types outside the contract.
const UNKNOWN_TYPES: [&str; 4] = ["chargeback", "adjustment", "jackpot_payout", "transfer"];

/// Currency codes that are not three capital letters.
const BAD_CURRENCIES: [&str; 6] = ["EURO", "eur", "E", "Eur", "EU", "€UR"];

/// A way a synthetic row breaks the lake contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DirtyFault {
    /// `amount` below zero.
    NegativeAmount,
    /// `type` outside the contract, e.g. `chargeback`.
    UnknownType,
    /// An exact copy of another row of the same day, transaction id included (a
    /// re-delivery); the ETL drops it as a duplicate rather than quarantining it.
    DuplicateTransaction,
    /// `occurred_at` ten to fourteen years after the history.
    FutureTimestamp,
    /// `currency` not three capital letters, e.g. `EURO`, `eur`, `E`.
    BadCurrency,
    /// `user_id` missing.
    NullUserId,
}

impl DirtyFault {
    /// Every fault, in the order they are dealt out.
    pub const ALL: [DirtyFault; 6] = [
        DirtyFault::NegativeAmount,
        DirtyFault::UnknownType,
        DirtyFault::DuplicateTransaction,
        DirtyFault::FutureTimestamp,
        DirtyFault::BadCurrency,
        DirtyFault::NullUserId,
    ];

    /// The snake_case key, as serde writes it.
    pub fn key(self) -> &'static str {
        match self {
            DirtyFault::NegativeAmount => "negative_amount",
            DirtyFault::UnknownType => "unknown_type",
            DirtyFault::DuplicateTransaction => "duplicate_transaction",
            DirtyFault::FutureTimestamp => "future_timestamp",
            DirtyFault::BadCurrency => "bad_currency",
            DirtyFault::NullUserId => "null_user_id",
        }
    }

    /// The quarantine rule the ETL files such a row under; `None` for a duplicate, which
    /// is deduplicated instead.
    ///
    /// ```
    /// use crmbet_etl::{DirtyFault, Rule};
    /// assert_eq!(DirtyFault::BadCurrency.rule(), Some(Rule::CurrencyInvalid));
    /// assert_eq!(DirtyFault::DuplicateTransaction.rule(), None);
    /// ```
    pub fn rule(self) -> Option<Rule> {
        match self {
            DirtyFault::NegativeAmount => Some(Rule::AmountInvalid),
            DirtyFault::UnknownType => Some(Rule::TypeUnknown),
            DirtyFault::DuplicateTransaction => None,
            DirtyFault::FutureTimestamp => Some(Rule::OccurredAtFuture),
            DirtyFault::BadCurrency => Some(Rule::CurrencyInvalid),
            DirtyFault::NullUserId => Some(Rule::UserIdMissing),
        }
    }
}

/// Breaks rows day by day so that, after every day, the broken rows are
/// `floor(fraction × rows so far)`, dealt over the fault kinds in turn.
pub(super) struct FaultInjector {
    fraction: f64,
    future_start_seconds: i64,
    future_span_seconds: i64,
    next_fault: usize,
    counts: [u64; DirtyFault::ALL.len()],
}

impl FaultInjector {
    /// An injector breaking `fraction` of the rows of a lake over `calendar`.
    pub(super) fn new(fraction: f64, calendar: &Calendar) -> Self {
        Self {
            fraction,
            future_start_seconds: calendar.far_future_seconds(),
            future_span_seconds: calendar.far_future_span_seconds(),
            next_fault: 0,
            counts: [0; DirtyFault::ALL.len()],
        }
    }

    /// Rows broken so far, per fault.
    pub(super) fn counts(&self) -> Vec<(DirtyFault, u64)> {
        DirtyFault::ALL.into_iter().zip(self.counts).collect()
    }

    /// Rows broken so far.
    pub(super) fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Breaks rows of one day, `rows_before` being the rows of the days before. A player's
    /// first row is never broken, and one row of the day is always left intact to be
    /// copied by a duplicate.
    pub(super) fn inject(
        &mut self,
        sampler: &mut Sampler,
        rows: &mut [TransactionRow],
        rows_before: u64,
    ) {
        let rows_after = rows_before + rows.len() as u64;
        let target = (rows_after as f64 * self.fraction).floor() as u64;
        let mut candidates: Vec<usize> = (0..rows.len())
            .filter(|&index| !rows[index].first_of_player)
            .collect();
        let wanted = usize::try_from(target.saturating_sub(self.total()))
            .unwrap_or(usize::MAX)
            .min(candidates.len())
            .min(rows.len().saturating_sub(1));
        if wanted == 0 {
            return;
        }
        // The first `wanted` places of a partial Fisher–Yates shuffle.
        for place in 0..wanted {
            let remaining = (candidates.len() - place) as u64;
            let chosen = place + sampler.below(remaining) as usize;
            candidates.swap(place, chosen);
        }
        let broken = &candidates[..wanted];
        let mut is_broken = vec![false; rows.len()];
        for &index in broken {
            is_broken[index] = true;
        }
        let intact: Vec<usize> = (0..rows.len()).filter(|&index| !is_broken[index]).collect();
        for &index in broken {
            let fault = DirtyFault::ALL[self.next_fault % DirtyFault::ALL.len()];
            self.next_fault += 1;
            self.counts[fault as usize] += 1;
            self.apply(sampler, fault, rows, index, &intact);
        }
    }

    fn apply(
        &self,
        sampler: &mut Sampler,
        fault: DirtyFault,
        rows: &mut [TransactionRow],
        index: usize,
        intact: &[usize],
    ) {
        match fault {
            DirtyFault::NegativeAmount => rows[index].amount_eur = -rows[index].amount_eur,
            DirtyFault::UnknownType => {
                rows[index].kind =
                    UNKNOWN_TYPES[sampler.below(UNKNOWN_TYPES.len() as u64) as usize];
            }
            DirtyFault::DuplicateTransaction => {
                let source = intact[sampler.below(intact.len() as u64) as usize];
                rows[index] = rows[source].clone();
            }
            DirtyFault::FutureTimestamp => {
                let offset = sampler.below(self.future_span_seconds as u64) as i64;
                rows[index].occurred_at_seconds = self.future_start_seconds + offset;
            }
            DirtyFault::BadCurrency => {
                rows[index].currency =
                    BAD_CURRENCIES[sampler.below(BAD_CURRENCIES.len() as u64) as usize];
            }
            DirtyFault::NullUserId => rows[index].player = None,
        }
    }
}
