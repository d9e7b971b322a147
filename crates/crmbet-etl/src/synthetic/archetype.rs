//! The planted kinds of player and the habits each one draws its players around.

use serde::{Deserialize, Serialize};

use super::game::GAME_COUNT;

/// A kind of player planted in a synthetic lake; clustering should find them again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Archetype {
    /// Small slot bets, bonus-driven, lapsing.
    CasualSlots,
    /// Sports and some slots, on Saturdays and Sundays.
    WeekendWarrior,
    /// Large sports bets in short sessions, frequent withdrawals, no bonuses.
    SportsBettingPro,
    /// Slots and table games between midnight and 06:00 UTC.
    NightOwlCasino,
    /// Crash games with large, very uneven stakes.
    HighRollerCrash,
    /// Live dealer tables with the largest stakes, long tenure, recently active.
    VipLiveDealer,
}

impl Archetype {
    /// Every archetype, in the order summaries list them.
    pub const ALL: [Archetype; 6] = [
        Archetype::CasualSlots,
        Archetype::WeekendWarrior,
        Archetype::SportsBettingPro,
        Archetype::NightOwlCasino,
        Archetype::HighRollerCrash,
        Archetype::VipLiveDealer,
    ];

    /// The name marketers read, e.g. `Casual Slots`.
    pub fn name(self) -> &'static str {
        match self {
            Archetype::CasualSlots => "Casual Slots",
            Archetype::WeekendWarrior => "Weekend Warrior",
            Archetype::SportsBettingPro => "Sports Betting Pro",
            Archetype::NightOwlCasino => "Night Owl Casino",
            Archetype::HighRollerCrash => "High Roller Crash",
            Archetype::VipLiveDealer => "VIP Live Dealer",
        }
    }

    /// The snake_case key, as serde writes it and `truth/players.csv` holds it.
    ///
    /// ```
    /// use crmbet_etl::Archetype;
    /// assert_eq!(Archetype::VipLiveDealer.key(), "vip_live_dealer");
    /// ```
    pub fn key(self) -> &'static str {
        match self {
            Archetype::CasualSlots => "casual_slots",
            Archetype::WeekendWarrior => "weekend_warrior",
            Archetype::SportsBettingPro => "sports_betting_pro",
            Archetype::NightOwlCasino => "night_owl_casino",
            Archetype::HighRollerCrash => "high_roller_crash",
            Archetype::VipLiveDealer => "vip_live_dealer",
        }
    }

    /// The expected share of players of this archetype (the shares sum to 1).
    pub fn target_share(self) -> f64 {
        self.profile().share
    }

    /// The habits players of this archetype are drawn around.
    pub(super) fn profile(self) -> &'static Profile {
        match self {
            Archetype::CasualSlots => &CASUAL_SLOTS,
            Archetype::WeekendWarrior => &WEEKEND_WARRIOR,
            Archetype::SportsBettingPro => &SPORTS_BETTING_PRO,
            Archetype::NightOwlCasino => &NIGHT_OWL_CASINO,
            Archetype::HighRollerCrash => &HIGH_ROLLER_CRASH,
            Archetype::VipLiveDealer => &VIP_LIVE_DEALER,
        }
    }
}

/// The centre of an archetype: each player draws its own values around these.
pub(super) struct Profile {
    /// Share of all players.
    pub(super) share: f64,
    /// Rows a player makes, relative to the other archetypes.
    pub(super) activity: f64,
    /// Typical rows in one session.
    pub(super) rows_per_session: f64,
    /// Expected share of play per game type, in `GAME_TYPES` order.
    pub(super) game_mix: [f64; GAME_COUNT],
    /// How closely a player's own mix follows `game_mix` (Dirichlet concentration).
    pub(super) mix_concentration: f64,
    /// The archetype's mean bet, in EUR.
    pub(super) average_bet_eur: f64,
    /// Log-scale standard deviation of one player's bets around its own level.
    pub(super) bet_sigma: f64,
    /// Typical deposit, in EUR.
    pub(super) deposit_median_eur: f64,
    /// Mean share of sessions started between 00:00 and 06:00 UTC.
    pub(super) night_share: f64,
    /// Mean share of sessions on Saturday or Sunday.
    pub(super) weekend_share: f64,
    /// Hour of the day (UTC) daytime sessions centre on.
    pub(super) peak_hour: f64,
    /// Median days from the first activity to the end of the history.
    pub(super) tenure_median_days: f64,
    /// Median days from the last activity to the end of the history.
    pub(super) recency_median_days: f64,
    /// Preferred channel weights: web, mobile, app.
    pub(super) channel_weights: [f64; 3],
    /// Return to player added to the game's own (skill or value betting).
    pub(super) return_edge: f64,
    /// Probability that a session opens with a deposit.
    pub(super) deposit_opens_session: f64,
    /// Probability that a session closes with a withdrawal.
    pub(super) withdrawal_closes_session: f64,
    /// Bonus rows per session row.
    pub(super) bonus_rate: f64,
    /// Probability that a settled bet is refunded instead of won or lost.
    pub(super) refund_rate: f64,
}

const CASUAL_SLOTS: Profile = Profile {
    share: 0.30,
    activity: 0.55,
    rows_per_session: 6.0,
    game_mix: [0.02, 0.86, 0.01, 0.03, 0.04, 0.04],
    mix_concentration: 16.0,
    average_bet_eur: 0.6,
    bet_sigma: 0.5,
    deposit_median_eur: 10.0,
    night_share: 0.05,
    weekend_share: 0.30,
    peak_hour: 20.0,
    tenure_median_days: 140.0,
    recency_median_days: 60.0,
    channel_weights: [0.2, 0.75, 0.05],
    return_edge: 0.0,
    deposit_opens_session: 0.6,
    withdrawal_closes_session: 0.03,
    bonus_rate: 0.09,
    refund_rate: 0.002,
};

const WEEKEND_WARRIOR: Profile = Profile {
    share: 0.25,
    activity: 0.8,
    rows_per_session: 10.0,
    game_mix: [0.02, 0.18, 0.02, 0.72, 0.03, 0.03],
    mix_concentration: 16.0,
    average_bet_eur: 10.0,
    bet_sigma: 0.7,
    deposit_median_eur: 25.0,
    night_share: 0.04,
    weekend_share: 0.92,
    peak_hour: 16.0,
    tenure_median_days: 200.0,
    recency_median_days: 7.0,
    channel_weights: [0.1, 0.7, 0.2],
    return_edge: 0.0,
    deposit_opens_session: 0.65,
    withdrawal_closes_session: 0.06,
    bonus_rate: 0.04,
    refund_rate: 0.02,
};

const SPORTS_BETTING_PRO: Profile = Profile {
    share: 0.20,
    activity: 1.5,
    rows_per_session: 4.0,
    game_mix: [0.01, 0.02, 0.01, 0.93, 0.02, 0.01],
    mix_concentration: 20.0,
    average_bet_eur: 46.0,
    bet_sigma: 0.5,
    deposit_median_eur: 150.0,
    night_share: 0.05,
    weekend_share: 0.22,
    peak_hour: 13.0,
    tenure_median_days: 220.0,
    recency_median_days: 3.0,
    channel_weights: [0.4, 0.3, 0.3],
    return_edge: 0.05,
    deposit_opens_session: 0.35,
    withdrawal_closes_session: 0.3,
    bonus_rate: 0.0,
    refund_rate: 0.03,
};

const NIGHT_OWL_CASINO: Profile = Profile {
    share: 0.15,
    activity: 1.2,
    rows_per_session: 12.0,
    game_mix: [0.02, 0.52, 0.06, 0.01, 0.36, 0.03],
    mix_concentration: 16.0,
    average_bet_eur: 3.6,
    bet_sigma: 0.6,
    deposit_median_eur: 25.0,
    night_share: 0.88,
    weekend_share: 0.29,
    peak_hour: 23.0,
    tenure_median_days: 180.0,
    recency_median_days: 12.0,
    channel_weights: [0.3, 0.6, 0.1],
    return_edge: 0.0,
    deposit_opens_session: 0.5,
    withdrawal_closes_session: 0.08,
    bonus_rate: 0.02,
    refund_rate: 0.001,
};

const HIGH_ROLLER_CRASH: Profile = Profile {
    share: 0.05,
    activity: 3.0,
    rows_per_session: 25.0,
    game_mix: [0.80, 0.10, 0.02, 0.02, 0.02, 0.04],
    mix_concentration: 16.0,
    average_bet_eur: 80.0,
    bet_sigma: 1.2,
    deposit_median_eur: 250.0,
    night_share: 0.15,
    weekend_share: 0.30,
    peak_hour: 22.0,
    tenure_median_days: 150.0,
    recency_median_days: 6.0,
    channel_weights: [0.1, 0.3, 0.6],
    return_edge: 0.0,
    deposit_opens_session: 0.6,
    withdrawal_closes_session: 0.25,
    bonus_rate: 0.003,
    refund_rate: 0.001,
};

const VIP_LIVE_DEALER: Profile = Profile {
    share: 0.05,
    activity: 4.0,
    rows_per_session: 20.0,
    game_mix: [0.01, 0.03, 0.82, 0.01, 0.12, 0.01],
    mix_concentration: 16.0,
    average_bet_eur: 170.0,
    bet_sigma: 0.5,
    deposit_median_eur: 1000.0,
    night_share: 0.10,
    weekend_share: 0.28,
    peak_hour: 21.0,
    tenure_median_days: 340.0,
    recency_median_days: 2.0,
    channel_weights: [0.6, 0.05, 0.35],
    return_edge: 0.0,
    deposit_opens_session: 0.5,
    withdrawal_closes_session: 0.3,
    bonus_rate: 0.015,
    refund_rate: 0.001,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archetype_shares_sum_to_one() {
        let total: f64 = Archetype::ALL
            .iter()
            .map(|archetype| archetype.target_share())
            .sum();
        assert!((total - 1.0).abs() < 1e-12);
    }

    #[test]
    fn key_is_the_serde_name() {
        for archetype in Archetype::ALL {
            let json = serde_json::to_string(&archetype).unwrap();
            assert_eq!(json, format!("\"{}\"", archetype.key()));
        }
    }
}
