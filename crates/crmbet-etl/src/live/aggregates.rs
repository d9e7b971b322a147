//! One player's mergeable aggregates: what the batch feature SQL sums and counts, kept so
//! that one transaction updates them in O(1).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::check::{CheckedTransaction, TransactionKind};
use super::rfm::score_rfm;
use crate::contract::GAME_TYPES;
use crate::features::{
    CLV_HORIZON_MONTHS, CLV_MINIMUM_TENURE_DAYS, CLV_RETENTION_DAYS, PlayerFeatures,
};

const MICROS_PER_HOUR: i64 = 3_600_000_000;
const MICROS_PER_DAY: i64 = 86_400_000_000;
const MICROS_PER_DAY_FLOAT: f64 = 86_400_000_000.0;

/// A player's aggregates. Distinct sessions and days are counted here but remembered by
/// the caller (a set or a table): [`PlayerAggregates::apply`] is told whether the session
/// and the day are new.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlayerAggregates {
    pub user_id: String,
    /// Rows of any type.
    pub frequency: i64,
    pub bet_count: i64,
    pub bet_sum: f64,
    /// Welford's running mean and sum of squared deviations of the bets (the sample
    /// deviation without the cancellation of a plain sum of squares).
    pub bet_mean: f64,
    pub bet_m2: f64,
    pub win_sum: f64,
    pub deposit_count: i64,
    pub deposit_sum: f64,
    pub withdrawal_count: i64,
    pub withdrawal_sum: f64,
    pub bonus_sum: f64,
    /// Rows between 00:00 and 06:00 UTC, and on Saturdays and Sundays.
    pub night_rows: i64,
    pub weekend_rows: i64,
    pub first_seen_micros: i64,
    pub last_seen_micros: i64,
    /// Bets per game type, in [`GAME_TYPES`] order.
    pub bets_by_game: [i64; 6],
    pub rows_by_hour: [i64; 24],
    /// Rows per weekday, Monday first.
    pub rows_by_weekday: [i64; 7],
    pub sessions: i64,
    pub active_days: i64,
    /// Rows per country, for the most frequent one.
    pub countries: BTreeMap<String, i64>,
}

/// Which of a transaction's distinct keys the player had not had before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Novelty {
    pub new_session: bool,
    pub new_day: bool,
}

impl PlayerAggregates {
    /// A player without rows.
    pub fn new(user_id: impl Into<String>) -> Self {
        Self {
            user_id: user_id.into(),
            frequency: 0,
            bet_count: 0,
            bet_sum: 0.0,
            bet_mean: 0.0,
            bet_m2: 0.0,
            win_sum: 0.0,
            deposit_count: 0,
            deposit_sum: 0.0,
            withdrawal_count: 0,
            withdrawal_sum: 0.0,
            bonus_sum: 0.0,
            night_rows: 0,
            weekend_rows: 0,
            first_seen_micros: i64::MAX,
            last_seen_micros: i64::MIN,
            bets_by_game: [0; 6],
            rows_by_hour: [0; 24],
            rows_by_weekday: [0; 7],
            sessions: 0,
            active_days: 0,
            countries: BTreeMap::new(),
        }
    }

    /// The UTC day a transaction counts for (as the SQL's `micros / 86400000000`).
    pub fn epoch_day(transaction: &CheckedTransaction) -> i64 {
        transaction.occurred_micros / MICROS_PER_DAY
    }

    /// Adds one transaction of this player.
    pub fn apply(&mut self, transaction: &CheckedTransaction, novelty: Novelty) {
        let micros = transaction.occurred_micros;
        self.frequency += 1;
        match transaction.kind {
            TransactionKind::Bet => {
                self.bet_count += 1;
                self.bet_sum += transaction.amount;
                let delta = transaction.amount - self.bet_mean;
                self.bet_mean += delta / self.bet_count as f64;
                self.bet_m2 += delta * (transaction.amount - self.bet_mean);
                if let Some(count) = transaction
                    .game
                    .and_then(|game| self.bets_by_game.get_mut(usize::from(game)))
                {
                    *count += 1;
                }
            }
            TransactionKind::Win => self.win_sum += transaction.amount,
            TransactionKind::Deposit => {
                self.deposit_count += 1;
                self.deposit_sum += transaction.amount;
            }
            TransactionKind::Withdrawal => {
                self.withdrawal_count += 1;
                self.withdrawal_sum += transaction.amount;
            }
            TransactionKind::Bonus => self.bonus_sum += transaction.amount,
            TransactionKind::Refund => {}
        }
        // Integer division and remainder truncate toward zero, as the SQL's do.
        let hour = micros / MICROS_PER_HOUR % 24;
        let weekday = (micros / MICROS_PER_DAY + 3) % 7;
        if hour < 6 {
            self.night_rows += 1;
        }
        if weekday >= 5 {
            self.weekend_rows += 1;
        }
        if let Some(count) = usize::try_from(hour)
            .ok()
            .and_then(|hour| self.rows_by_hour.get_mut(hour))
        {
            *count += 1;
        }
        if let Some(count) = usize::try_from(weekday)
            .ok()
            .and_then(|weekday| self.rows_by_weekday.get_mut(weekday))
        {
            *count += 1;
        }
        self.first_seen_micros = self.first_seen_micros.min(micros);
        self.last_seen_micros = self.last_seen_micros.max(micros);
        if novelty.new_session && transaction.session_id.is_some() {
            self.sessions += 1;
        }
        if novelty.new_day {
            self.active_days += 1;
        }
        if let Some(country) = &transaction.country {
            *self.countries.entry(country.clone()).or_default() += 1;
        }
    }

    /// The player's features, measured to `reference_micros` (the last event of all
    /// players, see [`reference_micros`]). The quintile scores are left at 0: they rank
    /// players against each other (`score_rfm`).
    pub fn features(&self, reference_micros: i64) -> PlayerFeatures {
        let bets = self.bet_count as f64;
        let share = |game: usize| {
            if self.bet_count > 0 {
                self.bets_by_game.get(game).copied().unwrap_or_default() as f64 / bets
            } else {
                0.0
            }
        };
        let bet_mean = if self.bet_count > 0 {
            Some(self.bet_sum / bets)
        } else {
            None
        };
        let bet_std = if self.bet_count > 1 {
            (self.bet_m2.max(0.0) / (bets - 1.0)).sqrt()
        } else {
            0.0
        };
        let tenure_days =
            reference_micros.saturating_sub(self.first_seen_micros) as f64 / MICROS_PER_DAY_FLOAT;
        let recency_days =
            reference_micros.saturating_sub(self.last_seen_micros) as f64 / MICROS_PER_DAY_FLOAT;
        let frequency = self.frequency as f64;
        PlayerFeatures {
            user_id: self.user_id.clone(),
            favourite_game: self.favourite_game(),
            share_crash: share(0),
            share_slots: share(1),
            share_live_casino: share(2),
            share_sports: share(3),
            share_table: share(4),
            bet_count: self.bet_count,
            bet_std,
            bet_cv: bet_mean.map_or(0.0, |mean| bet_std / mean),
            sessions: self.sessions,
            bets_per_session: bets / self.sessions.max(1) as f64,
            avg_ticket: bet_mean.unwrap_or(0.0),
            total_staked: self.bet_sum,
            ngr: self.bet_sum - self.win_sum,
            deposit_count: self.deposit_count,
            deposit_sum: self.deposit_sum,
            avg_deposit: if self.deposit_count > 0 {
                self.deposit_sum / self.deposit_count as f64
            } else {
                0.0
            },
            withdrawal_count: self.withdrawal_count,
            withdrawal_sum: self.withdrawal_sum,
            withdrawal_ratio: if self.deposit_sum > 0.0 {
                self.withdrawal_sum / self.deposit_sum
            } else {
                0.0
            },
            bonus_share: if self.deposit_sum + self.bonus_sum > 0.0 {
                self.bonus_sum / (self.deposit_sum + self.bonus_sum)
            } else {
                0.0
            },
            clv_estimate: (self.bet_sum - self.win_sum - self.bonus_sum)
                / tenure_days.max(CLV_MINIMUM_TENURE_DAYS)
                * 30.0
                * CLV_HORIZON_MONTHS
                * (-recency_days / CLV_RETENTION_DAYS).exp(),
            night_share: self.night_rows as f64 / frequency,
            weekend_share: self.weekend_rows as f64 / frequency,
            preferred_hour: first_largest(&self.rows_by_hour),
            preferred_weekday: first_largest(&self.rows_by_weekday) + 1,
            active_days: self.active_days,
            tenure_days,
            recency_days,
            frequency: self.frequency,
            monetary: self.deposit_sum,
            r_score: 0,
            f_score: 0,
            m_score: 0,
            first_seen_at: moment(self.first_seen_micros),
            last_active_at: moment(self.last_seen_micros),
            country: self.country(),
        }
    }

    /// The game type with the most bets, ties to the first in [`GAME_TYPES`] order.
    fn favourite_game(&self) -> Option<String> {
        if self.bet_count == 0 {
            return None;
        }
        let index = usize::try_from(first_largest(&self.bets_by_game)).ok()?;
        GAME_TYPES.get(index).map(|game| (*game).to_owned())
    }

    /// The most frequent country, ties to the first in byte order.
    fn country(&self) -> Option<String> {
        let mut best: Option<(&String, i64)> = None;
        for (country, count) in &self.countries {
            if best.is_none_or(|(_, most)| *count > most) {
                best = Some((country, *count));
            }
        }
        best.map(|(country, _)| country.clone())
    }
}

/// The last event of all players: what recency and tenure are measured to.
pub fn reference_micros<'a>(players: impl IntoIterator<Item = &'a PlayerAggregates>) -> i64 {
    players
        .into_iter()
        .map(|player| player.last_seen_micros)
        .max()
        .unwrap_or(0)
}

/// Every player's features, recency and tenure measured to the last event of them all and
/// RFM scored among them: what the batch run answers for the same rows.
pub fn features_of<'a, I>(players: I) -> Vec<PlayerFeatures>
where
    I: IntoIterator<Item = &'a PlayerAggregates> + Clone,
{
    let reference = reference_micros(players.clone());
    let mut features: Vec<PlayerFeatures> = players
        .into_iter()
        .map(|player| player.features(reference))
        .collect();
    score_rfm(&mut features);
    features
}

/// The index of the first largest count (the SQL's `CASE WHEN x = greatest(...)` chain).
fn first_largest(counts: &[i64]) -> i32 {
    let mut best = 0;
    for (index, count) in counts.iter().enumerate() {
        if *count > counts[best] {
            best = index;
        }
    }
    i32::try_from(best).unwrap_or_default()
}

fn moment(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}
