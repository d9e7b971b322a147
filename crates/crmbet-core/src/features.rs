//! The per-player features: the one list of their names, which the ETL's output, the
//! `player_features` table, the training matrix and the API all follow (a test in
//! `crmbet-app` fails when one of them disagrees). What each means is documented on
//! `crmbet_etl::PlayerFeatures`.

/// The categorical feature: the game type with the most bets.
pub const FAVOURITE_GAME: &str = "favourite_game";

/// The numeric features, in profile order: the columns of `player_features` besides the
/// keys and [`FAVOURITE_GAME`], and the columns of the training matrix.
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
