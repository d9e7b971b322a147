//! Players of a synthetic lake: each draws its own habits around its archetype, so the
//! archetypes overlap the way real segments do.

use super::archetype::Archetype;
use super::calendar::HISTORY_DAYS;
use super::game::{GAME_COUNT, GAME_RULES};
use super::market::{COUNTRIES, LOCAL_CURRENCY_SHARE, REPORTING_CURRENCY, local_currency};
use super::sampler::{Sampler, cumulative};

/// Added to every share of an archetype's game mix so that no game is impossible.
const MIX_FLOOR: f64 = 0.005;

/// The smallest mean bet of a whale, in EUR: about 200× the median player's, 9× the
/// archetype with the largest stakes.
const WHALE_MIN_BET_EUR: f64 = 1_500.0;
/// Tail index of whales' stakes over [`WHALE_MIN_BET_EUR`] (Pareto): the median whale bets
/// 1.6× the smallest, one in a hundred 20×.
const WHALE_STAKE_ALPHA: f64 = 1.5;
/// No whale bets more than this many times [`WHALE_MIN_BET_EUR`].
const WHALE_STAKE_CAP: f64 = 40.0;
/// Whales play this many times as much as others of their archetype.
const WHALE_ACTIVITY: f64 = 2.0;

/// One player's habits, fixed for the whole history.
pub(super) struct Player {
    /// The archetype the player was drawn around.
    pub(super) archetype: Archetype,
    /// Whether the player is one of the whale tail: the archetype's habits at stakes far
    /// above everyone else's.
    pub(super) whale: bool,
    /// Rows the player makes over the history.
    pub(super) rows: u64,
    /// Sessions the player's rows are spread over.
    pub(super) sessions: u64,
    /// Cumulative share of play per game type.
    pub(super) game_cumulative: [f64; GAME_COUNT],
    /// The game the player returns to most, per game type (a catalogue number).
    pub(super) favourite_games: [u16; GAME_COUNT],
    /// Median bet, in EUR.
    pub(super) bet_median_eur: f64,
    /// Log-scale standard deviation of bets.
    pub(super) bet_sigma: f64,
    /// Median deposit, in EUR.
    pub(super) deposit_median_eur: f64,
    /// Probability that a session starts between 00:00 and 06:00 UTC.
    pub(super) night_propensity: f64,
    /// Probability that a session falls on a Saturday or Sunday.
    pub(super) weekend_propensity: f64,
    /// Hour of the day (UTC) daytime sessions centre on.
    pub(super) peak_hour: f64,
    /// Day of the history of the first session.
    pub(super) first_day: usize,
    /// Day of the history of the last session.
    pub(super) last_day: usize,
    /// Index into `CHANNELS` of the preferred channel.
    pub(super) channel: u8,
    /// Index into `COUNTRIES`.
    pub(super) country: u8,
    /// ISO 4217 code the player pays in.
    pub(super) currency: &'static str,
    /// Return to player added to the game's own.
    pub(super) return_edge: f64,
    /// Probability that a session opens with a deposit.
    pub(super) deposit_opens_session: f64,
    /// Probability that a session closes with a withdrawal.
    pub(super) withdrawal_closes_session: f64,
    /// Bonus rows per session row.
    pub(super) bonus_rate: f64,
    /// Probability that a settled bet is refunded.
    pub(super) refund_rate: f64,
}

/// Draws `count` players whose rows add up to exactly `transactions`, `whales` of them (at
/// random) turned into whales.
///
/// Every player gets at least one row when there are enough transactions; the rest are
/// shared in proportion to each player's activity, a lognormal draw around its archetype.
/// Without whales no draw is spent on them, so such lakes stay as they always were.
pub(super) fn plan_players(
    sampler: &mut Sampler,
    count: usize,
    transactions: u64,
    whales: usize,
) -> Vec<Player> {
    let archetype_bounds = cumulative(&Archetype::ALL.map(Archetype::target_share));
    let country_bounds = cumulative(&COUNTRIES.map(|(_, weight)| weight));
    let mut players = Vec::with_capacity(count);
    let mut activities = Vec::with_capacity(count);
    let mut rows_per_session = Vec::with_capacity(count);
    for _ in 0..count {
        let archetype = Archetype::ALL[sampler.pick(&archetype_bounds)];
        activities.push(archetype.profile().activity * sampler.lognormal(1.0, 0.45));
        rows_per_session.push(archetype.profile().rows_per_session * sampler.lognormal(1.0, 0.3));
        players.push(draw_player(sampler, archetype, &country_bounds));
    }
    for index in pick_distinct(sampler, count, whales) {
        make_whale(sampler, &mut players[index]);
        activities[index] *= WHALE_ACTIVITY;
    }
    let rows = allocate_rows(sampler, &activities, transactions);
    for ((player, rows), per_session) in players.iter_mut().zip(rows).zip(rows_per_session) {
        player.rows = rows;
        player.sessions = ((rows as f64 / per_session).round() as u64).clamp(1, rows.max(1));
        if rows == 0 {
            player.sessions = 0;
        }
    }
    players
}

fn draw_player(sampler: &mut Sampler, archetype: Archetype, country_bounds: &[f64]) -> Player {
    let profile = archetype.profile();
    let mix_mean = profile.game_mix.map(|share| share + MIX_FLOOR);
    let game_mix = sampler.dirichlet(&mix_mean, profile.mix_concentration);
    let mut favourite_games = [0; GAME_COUNT];
    for (favourite, rules) in favourite_games.iter_mut().zip(&GAME_RULES) {
        *favourite = sampler.below(u64::from(rules.catalogue_size)) as u16;
    }

    // The player's stake level relative to its archetype; deposits follow it loosely.
    let stake_level = sampler.lognormal(1.0, 0.35);
    let bet_sigma = profile.bet_sigma * sampler.lognormal(1.0, 0.15);
    // The archetype's figure is a mean; a lognormal's median is its mean / exp(sigma²/2).
    let bet_median_eur =
        profile.average_bet_eur * stake_level / (bet_sigma * bet_sigma / 2.0).exp();
    let deposit_median_eur =
        profile.deposit_median_eur * stake_level.powf(0.6) * sampler.lognormal(1.0, 0.3);

    let night_propensity = sampler.beta(
        profile.night_share * 20.0,
        (1.0 - profile.night_share) * 20.0,
    );
    let weekend_propensity = sampler.beta(
        profile.weekend_share * 20.0,
        (1.0 - profile.weekend_share) * 20.0,
    );
    let peak_hour = profile.peak_hour + 1.5 * sampler.normal();

    let last_day_index = HISTORY_DAYS - 1;
    let tenure_days = sampler
        .lognormal(profile.tenure_median_days, 0.5)
        .clamp(1.0, HISTORY_DAYS as f64);
    let recency_days = sampler
        .lognormal(profile.recency_median_days, 0.9)
        .clamp(0.0, last_day_index as f64);
    let last_day = last_day_index - recency_days as usize;
    let first_day = (HISTORY_DAYS - tenure_days.ceil() as usize).min(last_day);

    let channel = sampler.pick(&cumulative(&profile.channel_weights)) as u8;
    let country = sampler.pick(country_bounds);
    let currency = match local_currency(COUNTRIES[country].0) {
        Some(local) if sampler.chance(LOCAL_CURRENCY_SHARE) => local,
        _ => REPORTING_CURRENCY,
    };

    Player {
        archetype,
        whale: false,
        rows: 0,
        sessions: 0,
        game_cumulative: cumulative(&game_mix),
        favourite_games,
        bet_median_eur,
        bet_sigma,
        deposit_median_eur,
        night_propensity,
        weekend_propensity,
        peak_hour,
        first_day,
        last_day,
        channel,
        country: country as u8,
        currency,
        return_edge: profile.return_edge,
        deposit_opens_session: (profile.deposit_opens_session * sampler.lognormal(1.0, 0.2))
            .min(0.95),
        withdrawal_closes_session: (profile.withdrawal_closes_session
            * sampler.lognormal(1.0, 0.3))
        .min(0.9),
        bonus_rate: (profile.bonus_rate * sampler.lognormal(1.0, 0.3)).min(0.5),
        refund_rate: (profile.refund_rate * sampler.lognormal(1.0, 0.3)).min(0.5),
    }
}

/// `wanted` distinct indices below `count` (all of them if `wanted >= count`), in the order
/// drawn.
fn pick_distinct(sampler: &mut Sampler, count: usize, wanted: usize) -> Vec<usize> {
    let wanted = wanted.min(count);
    let mut chosen = vec![false; count];
    let mut picked = Vec::with_capacity(wanted);
    while picked.len() < wanted {
        let index = sampler.below(count as u64) as usize;
        if !chosen[index] {
            chosen[index] = true;
            picked.push(index);
        }
    }
    picked
}

/// Raises a player's stakes into the whale tail (Pareto over [`WHALE_MIN_BET_EUR`]), with
/// deposits to match; game mix, hours and habits stay the archetype's.
fn make_whale(sampler: &mut Sampler, player: &mut Player) {
    let mean_bet = WHALE_MIN_BET_EUR * sampler.pareto(WHALE_STAKE_ALPHA).min(WHALE_STAKE_CAP);
    let new_median = mean_bet / (player.bet_sigma * player.bet_sigma / 2.0).exp();
    let raised = new_median / player.bet_median_eur.max(f64::MIN_POSITIVE);
    player.bet_median_eur = new_median;
    player.deposit_median_eur *= raised.powf(0.8);
    player.whale = true;
}

/// Shares `transactions` rows among players in proportion to `activities`, exactly.
///
/// Each player gets one row first (if there are enough), then the floor or the ceiling of
/// its proportional share of the rest, by systematic rounding with one random offset.
fn allocate_rows(sampler: &mut Sampler, activities: &[f64], transactions: u64) -> Vec<u64> {
    let count = activities.len() as u64;
    let base = u64::from(transactions >= count);
    let extra = transactions - base * count;
    let total_activity: f64 = activities.iter().sum();
    let offset = sampler.uniform();
    let mut running = 0.0;
    let mut allocated = 0;
    let mut rows = Vec::with_capacity(activities.len());
    for (index, activity) in activities.iter().enumerate() {
        running += extra as f64 * activity / total_activity;
        if index + 1 == activities.len() {
            running = extra as f64;
        }
        let reached = ((running + offset).floor() as u64).min(extra);
        rows.push(base + reached.saturating_sub(allocated));
        allocated = allocated.max(reached);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_add_up_to_the_requested_transactions() {
        let mut sampler = Sampler::new(11);
        for (count, transactions) in [(1_000, 50_000), (1_000, 1_000), (1_000, 300), (7, 10)] {
            let players = plan_players(&mut sampler, count, transactions, 0);
            let total: u64 = players.iter().map(|player| player.rows).sum();
            assert_eq!(total, transactions, "{count} players");
        }
    }

    #[test]
    fn every_player_has_a_row_when_there_are_enough() {
        let mut sampler = Sampler::new(12);
        let players = plan_players(&mut sampler, 2_000, 2_000, 0);
        assert!(players.iter().all(|player| player.rows == 1));
    }

    #[test]
    fn sessions_hold_at_least_one_row() {
        let mut sampler = Sampler::new(13);
        for player in plan_players(&mut sampler, 2_000, 80_000, 0) {
            assert!(player.sessions >= 1 && player.sessions <= player.rows);
            assert!(player.first_day <= player.last_day && player.last_day < HISTORY_DAYS);
        }
    }

    #[test]
    fn whales_stake_far_above_everyone_else() {
        let mut sampler = Sampler::new(14);
        let players = plan_players(&mut sampler, 5_000, 250_000, 20);
        let whales: Vec<&Player> = players.iter().filter(|player| player.whale).collect();
        assert_eq!(whales.len(), 20);
        let mean_bet = |player: &Player| {
            player.bet_median_eur * (player.bet_sigma * player.bet_sigma / 2.0).exp()
        };
        let smallest_whale = whales
            .iter()
            .map(|player| mean_bet(player))
            .fold(f64::MAX, f64::min);
        let largest_other = players
            .iter()
            .filter(|player| !player.whale)
            .map(mean_bet)
            .fold(0.0, f64::max);
        assert!(
            smallest_whale >= WHALE_MIN_BET_EUR * 0.999,
            "{smallest_whale}"
        );
        assert!(
            smallest_whale > 2.0 * largest_other,
            "{smallest_whale} vs {largest_other}"
        );
        let total: u64 = players.iter().map(|player| player.rows).sum();
        assert_eq!(total, 250_000);
    }
}
