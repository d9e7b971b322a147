//! The rows of one session: a deposit opens it, bets settle as wins or refunds at the
//! game's hit rate and return to player, a withdrawal sometimes closes it; bonuses are
//! granted as the player arrives and belong to no session.

use crate::contract::TRANSACTION_TYPES;

use super::game::{GAME_RULES, GameRules};
use super::market::{MISSING_CHANNEL_SHARE, MISSING_COUNTRY_SHARE};
use super::player::Player;
use super::sampler::Sampler;
use super::session::PlannedSession;

/// `type` of a stake.
pub(super) const BET: &str = TRANSACTION_TYPES[0];
/// `type` of a payout.
pub(super) const WIN: &str = TRANSACTION_TYPES[1];
/// `type` of money in.
pub(super) const DEPOSIT: &str = TRANSACTION_TYPES[2];
/// `type` of money out.
pub(super) const WITHDRAWAL: &str = TRANSACTION_TYPES[3];
/// `type` of a promotional credit.
pub(super) const BONUS: &str = TRANSACTION_TYPES[4];
/// `type` of a stake returned (a void bet).
pub(super) const REFUND: &str = TRANSACTION_TYPES[5];

/// Share of plays on a game type other than the session's primary one.
const GAME_SWITCH_SHARE: f64 = 0.15;
/// Share of plays that are instead a deposit topping the balance up.
const RELOAD_SHARE: f64 = 0.02;
/// Share of plays on the player's favourite game of that type.
const FAVOURITE_GAME_SHARE: f64 = 0.6;
/// Smallest bet, in EUR.
const MINIMUM_BET_EUR: f64 = 0.1;
/// Smallest deposit, in EUR.
const MINIMUM_DEPOSIT_EUR: f64 = 10.0;
/// Mean seconds between two bonus rows or a bonus and the session.
const SECONDS_BETWEEN_BONUSES: f64 = 30.0;

/// One row of the lake before it is written: numbers and indexes, strings come later.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct TransactionRow {
    /// Sequence number, the source of `transaction_id` (set when the day is written).
    pub(super) transaction: u64,
    /// Index of the player; `None` only for a row broken on purpose.
    pub(super) player: Option<u32>,
    /// Seconds since the Unix epoch, UTC.
    pub(super) occurred_at_seconds: i64,
    /// The `type` value.
    pub(super) kind: &'static str,
    /// The amount, rounded to cents.
    pub(super) amount_eur: f64,
    /// The `currency` value.
    pub(super) currency: &'static str,
    /// Index into `GAME_TYPES`, for bets, wins and refunds.
    pub(super) game: Option<u8>,
    /// Catalogue number of the game within its type.
    pub(super) game_number: Option<u16>,
    /// The session id (a position in the session plan); bonuses have none.
    pub(super) session: Option<u64>,
    /// Index into `CHANNELS`.
    pub(super) channel: Option<u8>,
    /// Index into `COUNTRIES`.
    pub(super) country: Option<u8>,
    /// The player's first row in the lake: never broken, so every player stays visible.
    pub(super) first_of_player: bool,
}

/// Appends the rows of `session` (id `session_id`) to `rows`. Rows later than
/// `end_seconds` move the whole session earlier, so the history ends where it should.
pub(super) fn make_session_rows(
    sampler: &mut Sampler,
    player: &Player,
    session: &PlannedSession,
    session_id: u64,
    day_start_seconds: i64,
    end_seconds: i64,
    rows: &mut Vec<TransactionRow>,
) {
    let first_row = rows.len();
    let mut maker = SessionMaker {
        sampler,
        player,
        session,
        session_id,
        clock: day_start_seconds + i64::from(session.start_second),
        rows,
    };
    maker.make();
    let Some(last) = rows.last() else {
        return;
    };
    let overflow = last.occurred_at_seconds - (end_seconds - 1);
    if overflow > 0 {
        for row in &mut rows[first_row..] {
            row.occurred_at_seconds -= overflow;
        }
    }
}

struct SessionMaker<'a> {
    sampler: &'a mut Sampler,
    player: &'a Player,
    session: &'a PlannedSession,
    session_id: u64,
    clock: i64,
    rows: &'a mut Vec<TransactionRow>,
}

impl SessionMaker<'_> {
    fn make(&mut self) {
        let mut budget = u64::from(self.session.rows);
        let bonuses = (0..budget)
            .filter(|_| self.sampler.chance(self.player.bonus_rate))
            .count() as u64;
        for _ in 0..bonuses {
            let amount = self.deposit_draw() * self.sampler.between(0.1, 0.5);
            self.push(BONUS, amount.round().max(1.0), None);
            self.clock += self.sampler.exponential(SECONDS_BETWEEN_BONUSES) as i64;
        }
        budget -= bonuses;
        if budget == 0 {
            return;
        }
        let closes = budget >= 3 && self.sampler.chance(self.player.withdrawal_closes_session);
        if closes {
            budget -= 1;
        }
        if self.sampler.chance(self.player.deposit_opens_session) {
            self.push_deposit();
            budget -= 1;
        }
        while budget > 0 {
            self.advance();
            budget -= 1;
            if self.sampler.chance(RELOAD_SHARE) {
                self.push_deposit();
                continue;
            }
            let game = self.game();
            let stake = self.stake();
            self.push(BET, stake, Some(game));
            if budget == 0 {
                break;
            }
            let rules = &GAME_RULES[usize::from(game)];
            let settlement = self.sampler.uniform();
            if settlement < self.player.refund_rate {
                self.advance();
                budget -= 1;
                self.push(REFUND, stake, Some(game));
            } else if settlement < self.player.refund_rate + rules.hit_rate {
                self.advance();
                budget -= 1;
                let payout = self.payout(rules);
                self.push(WIN, stake * payout, Some(game));
            }
        }
        if closes {
            self.advance();
            let amount = self.player.deposit_median_eur * self.sampler.lognormal(0.9, 0.5);
            self.push(WITHDRAWAL, amount.max(1.0), None);
        }
    }

    /// Moves the clock on by the pace of the session's primary game.
    fn advance(&mut self) {
        let pace = GAME_RULES[usize::from(self.session.primary_game)].seconds_between_rows;
        self.clock += self.sampler.exponential(pace).round() as i64;
    }

    fn game(&mut self) -> u8 {
        if self.sampler.chance(GAME_SWITCH_SHARE) {
            return self.sampler.pick(&self.player.game_cumulative) as u8;
        }
        self.session.primary_game
    }

    fn stake(&mut self) -> f64 {
        let stake = self
            .sampler
            .lognormal(self.player.bet_median_eur, self.player.bet_sigma);
        stake.max(MINIMUM_BET_EUR)
    }

    /// The win multiplier of a stake: lognormal around the mean that makes the long-run
    /// payout the game's return to player (plus the player's edge).
    fn payout(&mut self, rules: &GameRules) -> f64 {
        let mean = (rules.return_to_player + self.player.return_edge) / rules.hit_rate;
        let sigma = rules.payout_sigma;
        mean * (sigma * self.sampler.normal() - sigma * sigma / 2.0).exp()
    }

    fn deposit_draw(&mut self) -> f64 {
        self.sampler.lognormal(self.player.deposit_median_eur, 0.6)
    }

    fn push_deposit(&mut self) {
        let rounded_to_fives = (self.deposit_draw() / 5.0).round() * 5.0;
        self.push(DEPOSIT, rounded_to_fives.max(MINIMUM_DEPOSIT_EUR), None);
    }

    fn push(&mut self, kind: &'static str, amount_eur: f64, game: Option<u8>) {
        let game_number = game.map(|game| {
            let game_index = usize::from(game);
            if self.sampler.chance(FAVOURITE_GAME_SHARE) {
                self.player.favourite_games[game_index]
            } else {
                self.sampler
                    .below(u64::from(GAME_RULES[game_index].catalogue_size)) as u16
            }
        });
        let channel = if self.sampler.chance(MISSING_CHANNEL_SHARE) {
            None
        } else {
            Some(self.session.channel)
        };
        let country = if self.sampler.chance(MISSING_COUNTRY_SHARE) {
            None
        } else {
            Some(self.player.country)
        };
        self.rows.push(TransactionRow {
            transaction: 0,
            player: Some(self.session.player),
            occurred_at_seconds: self.clock,
            kind,
            amount_eur: cents(amount_eur),
            currency: self.player.currency,
            game,
            game_number,
            session: (kind != BONUS).then_some(self.session_id),
            channel,
            country,
            first_of_player: false,
        });
    }
}

/// `amount` rounded to cents, at least one cent.
fn cents(amount: f64) -> f64 {
    ((amount * 100.0).round() / 100.0).max(0.01)
}
