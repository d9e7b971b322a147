//! A player's features as computed by one ETL run (see DESIGN.md, "Features").

use sea_orm::entity::prelude::*;

/// A row of `player_features`; money columns are in the reporting currency.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "player_features")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub etl_run_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    pub favourite_game: String,
    pub share_crash: f64,
    pub share_slots: f64,
    pub share_live_casino: f64,
    pub share_sports: f64,
    pub share_table: f64,
    pub bet_count: i64,
    pub bet_std: f64,
    pub bet_cv: f64,
    pub sessions: i64,
    pub bets_per_session: f64,
    pub avg_ticket: f64,
    pub total_staked: f64,
    pub ngr: f64,
    pub deposit_count: i64,
    pub deposit_sum: f64,
    pub avg_deposit: f64,
    pub withdrawal_count: i64,
    pub withdrawal_sum: f64,
    pub withdrawal_ratio: f64,
    pub bonus_share: f64,
    pub clv_estimate: f64,
    pub night_share: f64,
    pub weekend_share: f64,
    pub preferred_hour: i32,
    pub preferred_weekday: i32,
    pub active_days: i64,
    pub tenure_days: f64,
    pub recency_days: f64,
    pub frequency: i64,
    pub monetary: f64,
    pub r_score: i32,
    pub f_score: i32,
    pub m_score: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
