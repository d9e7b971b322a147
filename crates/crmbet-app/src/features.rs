//! From the ETL's features of a player to the row stored for them: the one place the two
//! shapes meet, checked column by column against [`crmbet_core::NUMERIC_FEATURES`] by the
//! feature-list test.

use crmbet_etl::PlayerFeatures;
use crmbet_store::entity::player_features;

/// The `player_features` row of a player's features (the run id is set when stored).
pub fn feature_row(features: &PlayerFeatures) -> player_features::Model {
    player_features::Model {
        etl_run_id: 0,
        user_id: features.user_id.clone(),
        favourite_game: features.favourite_game.clone().unwrap_or_default(),
        share_crash: features.share_crash,
        share_slots: features.share_slots,
        share_live_casino: features.share_live_casino,
        share_sports: features.share_sports,
        share_table: features.share_table,
        bet_count: features.bet_count,
        bet_std: features.bet_std,
        bet_cv: features.bet_cv,
        sessions: features.sessions,
        bets_per_session: features.bets_per_session,
        avg_ticket: features.avg_ticket,
        total_staked: features.total_staked,
        ngr: features.ngr,
        deposit_count: features.deposit_count,
        deposit_sum: features.deposit_sum,
        avg_deposit: features.avg_deposit,
        withdrawal_count: features.withdrawal_count,
        withdrawal_sum: features.withdrawal_sum,
        withdrawal_ratio: features.withdrawal_ratio,
        bonus_share: features.bonus_share,
        clv_estimate: features.clv_estimate,
        night_share: features.night_share,
        weekend_share: features.weekend_share,
        preferred_hour: features.preferred_hour,
        preferred_weekday: features.preferred_weekday,
        active_days: features.active_days,
        tenure_days: features.tenure_days,
        recency_days: features.recency_days,
        frequency: features.frequency,
        monetary: features.monetary,
        r_score: features.r_score,
        f_score: features.f_score,
        m_score: features.m_score,
    }
}

/// The player's numeric features in [`crmbet_core::NUMERIC_FEATURES`] order: the raw row a
/// model assigns (checked name by name by the feature-list test).
pub fn numeric_features(features: &PlayerFeatures) -> Vec<f64> {
    vec![
        features.share_crash,
        features.share_slots,
        features.share_live_casino,
        features.share_sports,
        features.share_table,
        features.bet_count as f64,
        features.bet_std,
        features.bet_cv,
        features.sessions as f64,
        features.bets_per_session,
        features.avg_ticket,
        features.total_staked,
        features.ngr,
        features.deposit_count as f64,
        features.deposit_sum,
        features.avg_deposit,
        features.withdrawal_count as f64,
        features.withdrawal_sum,
        features.withdrawal_ratio,
        features.bonus_share,
        features.clv_estimate,
        features.night_share,
        features.weekend_share,
        f64::from(features.preferred_hour),
        f64::from(features.preferred_weekday),
        features.active_days as f64,
        features.tenure_days,
        features.recency_days,
        features.frequency as f64,
        features.monetary,
        f64::from(features.r_score),
        f64::from(features.f_score),
        f64::from(features.m_score),
    ]
}
