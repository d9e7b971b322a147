//! How each game type plays: hit rate, return to player, pace and catalogue, indexed like
//! the contract's `GAME_TYPES` (crash, slots, live_casino, sports, table, other).

use crate::contract::GAME_TYPES;

/// Number of game types.
pub(super) const GAME_COUNT: usize = GAME_TYPES.len();

/// The rules of play of one game type.
pub(super) struct GameRules {
    /// Share of bets that pay out.
    pub(super) hit_rate: f64,
    /// Paid out over staked, in the long run.
    pub(super) return_to_player: f64,
    /// Log-scale spread of a winning payout around its mean.
    pub(super) payout_sigma: f64,
    /// Mean seconds between two rows of a session.
    pub(super) seconds_between_rows: f64,
    /// Number of distinct games of this type.
    pub(super) catalogue_size: u16,
}

/// The rules of every game type, in `GAME_TYPES` order.
pub(super) const GAME_RULES: [GameRules; GAME_COUNT] = [
    // crash
    GameRules {
        hit_rate: 0.45,
        return_to_player: 0.97,
        payout_sigma: 1.0,
        seconds_between_rows: 25.0,
        catalogue_size: 12,
    },
    // slots
    GameRules {
        hit_rate: 0.28,
        return_to_player: 0.96,
        payout_sigma: 1.3,
        seconds_between_rows: 8.0,
        catalogue_size: 600,
    },
    // live_casino
    GameRules {
        hit_rate: 0.47,
        return_to_player: 0.985,
        payout_sigma: 0.25,
        seconds_between_rows: 45.0,
        catalogue_size: 80,
    },
    // sports
    GameRules {
        hit_rate: 0.42,
        return_to_player: 0.94,
        payout_sigma: 0.5,
        seconds_between_rows: 150.0,
        catalogue_size: 20,
    },
    // table
    GameRules {
        hit_rate: 0.46,
        return_to_player: 0.98,
        payout_sigma: 0.3,
        seconds_between_rows: 40.0,
        catalogue_size: 40,
    },
    // other
    GameRules {
        hit_rate: 0.35,
        return_to_player: 0.95,
        payout_sigma: 0.8,
        seconds_between_rows: 20.0,
        catalogue_size: 30,
    },
];

/// The contract name of game type `game`.
pub(super) fn game_type_name(game: u8) -> &'static str {
    GAME_TYPES[usize::from(game) % GAME_COUNT]
}
