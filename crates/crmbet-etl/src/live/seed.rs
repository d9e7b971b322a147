//! Players' aggregates computed from the warehouse: the state live transactions extend once
//! a batch run has loaded a player's history. Built on the feature query's own tables, so a
//! player's state after a batch run equals the one their transactions would have built one
//! at a time (checked by `tests/etl/live.rs`). A run computes it once, over the warehouse
//! it has just appended to: its features come from these aggregates, and the live state is
//! seeded from the same history without reading the warehouse again.

use std::collections::BTreeMap;

use datafusion::arrow::array::RecordBatch;
use datafusion::prelude::SessionContext;

use super::aggregates::PlayerAggregates;
use crate::contract::GAME_TYPES;
use crate::error::{Error, Result};
use crate::features::{
    aggregates_sql, countries_sql, day_pairs_sql, float, float_column, integer, integer_column,
    session_pairs_sql, text, text_column,
};
use crate::warehouse::{TRANSACTIONS_TABLE, Warehouse};

/// What a batch run knows of every player over the warehouse: the aggregates live events
/// extend, and the distinct sessions and days their distinct counts continue from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WarehouseHistory {
    /// By user id.
    pub players: Vec<PlayerAggregates>,
    /// (user id, session id), sorted.
    pub sessions: Vec<(String, String)>,
    /// (user id, day), sorted; days as the feature query counts them: `micros / 86400000000`.
    pub days: Vec<(String, i64)>,
}

/// Every player's history over the warehouse's accepted transactions; empty when it holds
/// none. A run computes the same as [`crate::EtlOutcome::history`] without reading it again.
pub async fn warehouse_history(warehouse: &Warehouse) -> Result<WarehouseHistory> {
    let context = SessionContext::new();
    if !warehouse.register(&context, TRANSACTIONS_TABLE).await? {
        return Ok(WarehouseHistory::default());
    }
    history_of(&context).await
}

/// Every player's aggregates over the warehouse's accepted transactions, by user id; empty
/// when it holds none.
pub async fn warehouse_aggregates(warehouse: &Warehouse) -> Result<Vec<PlayerAggregates>> {
    Ok(warehouse_history(warehouse).await?.players)
}

/// The history over [`TRANSACTIONS_TABLE`] registered in `context`: four group-bys (the
/// players' sums, their countries, their sessions, their days); each distinct count is the
/// number of the player's pairs.
pub(crate) async fn history_of(context: &SessionContext) -> Result<WarehouseHistory> {
    let mut countries: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for batch in collect(context, &countries_sql(), "counting countries").await? {
        let user_id = text_column(&batch, "user_id")?;
        let country = text_column(&batch, "country")?;
        let rows = integer_column(&batch, "country_rows")?;
        for row in 0..batch.num_rows() {
            if let (Some(user_id), Some(country)) = (text(&user_id, row), text(&country, row)) {
                countries
                    .entry(user_id)
                    .or_default()
                    .insert(country, integer(&rows, row));
            }
        }
    }
    let mut players = Vec::new();
    for batch in collect(context, &aggregates_sql(), "computing the aggregates").await? {
        players.extend(players_of(&batch, &mut countries)?);
    }
    players.sort_unstable_by(|left, right| left.user_id.cmp(&right.user_id));

    let mut sessions = Vec::new();
    for batch in collect(context, &session_pairs_sql(), "listing sessions").await? {
        let user_id = text_column(&batch, "user_id")?;
        let session = text_column(&batch, "session_id")?;
        for row in 0..batch.num_rows() {
            if let (Some(user_id), Some(session)) = (text(&user_id, row), text(&session, row)) {
                sessions.push((user_id, session));
            }
        }
    }
    let mut days = Vec::new();
    for batch in collect(context, &day_pairs_sql(), "listing days").await? {
        let user_id = text_column(&batch, "user_id")?;
        let day = integer_column(&batch, "epoch_day")?;
        for row in 0..batch.num_rows() {
            if let Some(user_id) = text(&user_id, row) {
                days.push((user_id, integer(&day, row)));
            }
        }
    }
    // In key order: the counts below walk them beside the players, and the database fills
    // its indexes page after page when they are seeded.
    sessions.sort_unstable();
    days.sort_unstable();
    count_pairs(&mut players, &sessions, |player, count| {
        player.sessions = count
    });
    count_pairs(&mut players, &days, |player, count| {
        player.active_days = count
    });
    Ok(WarehouseHistory {
        players,
        sessions,
        days,
    })
}

/// Sets each player's number of pairs; both lists sorted by user id.
fn count_pairs<T>(
    players: &mut [PlayerAggregates],
    pairs: &[(String, T)],
    set: impl Fn(&mut PlayerAggregates, i64),
) {
    let mut rest = pairs;
    for player in players {
        let user = player.user_id.as_str();
        rest = &rest[rest.partition_point(|(pair_user, _)| pair_user.as_str() < user)..];
        let count = rest.partition_point(|(pair_user, _)| pair_user.as_str() == user);
        set(player, count as i64);
        rest = &rest[count..];
    }
}

async fn collect(
    context: &SessionContext,
    sql: &str,
    stage: &'static str,
) -> Result<Vec<RecordBatch>> {
    context
        .sql(sql)
        .await
        .map_err(|error| Error::query(stage, error))?
        .collect()
        .await
        .map_err(|error| Error::query(stage, error))
}

fn players_of(
    batch: &RecordBatch,
    countries: &mut BTreeMap<String, BTreeMap<String, i64>>,
) -> Result<Vec<PlayerAggregates>> {
    let user_id = text_column(batch, "user_id")?;
    let counts = |name: &str| integer_column(batch, name);
    let sums = |name: &str| float_column(batch, name);
    let frequency = counts("frequency")?;
    let bet_count = counts("bet_count")?;
    let bet_sum = sums("total_staked")?;
    let bet_mean = sums("bet_mean")?;
    let bet_m2 = sums("bet_m2")?;
    let win_sum = sums("total_won")?;
    let deposit_count = counts("deposit_count")?;
    let deposit_sum = sums("deposit_sum")?;
    let withdrawal_count = counts("withdrawal_count")?;
    let withdrawal_sum = sums("withdrawal_sum")?;
    let bonus_sum = sums("bonus_sum")?;
    let night_share = sums("night_share")?;
    let weekend_share = sums("weekend_share")?;
    let first_seen = counts("first_seen")?;
    let last_seen = counts("last_seen")?;
    let games = GAME_TYPES
        .iter()
        .map(|game| counts(&format!("bets_{game}")))
        .collect::<Result<Vec<_>>>()?;
    let hours = (0..24)
        .map(|hour| counts(&format!("hour_{hour}")))
        .collect::<Result<Vec<_>>>()?;
    let weekdays = (0..7)
        .map(|weekday| counts(&format!("weekday_{weekday}")))
        .collect::<Result<Vec<_>>>()?;
    let mut players = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        let user = text(&user_id, row).unwrap_or_default();
        let rows = integer(&frequency, row);
        // The shares are exact ratios of counts, so the counts come back by rounding.
        let count_of = |share: f64| (share * rows as f64).round() as i64;
        let mut player = PlayerAggregates::new(user.clone());
        player.frequency = rows;
        player.bet_count = integer(&bet_count, row);
        player.bet_sum = float(&bet_sum, row);
        player.bet_mean = float(&bet_mean, row);
        player.bet_m2 = float(&bet_m2, row);
        player.win_sum = float(&win_sum, row);
        player.deposit_count = integer(&deposit_count, row);
        player.deposit_sum = float(&deposit_sum, row);
        player.withdrawal_count = integer(&withdrawal_count, row);
        player.withdrawal_sum = float(&withdrawal_sum, row);
        player.bonus_sum = float(&bonus_sum, row);
        player.night_rows = count_of(float(&night_share, row));
        player.weekend_rows = count_of(float(&weekend_share, row));
        player.first_seen_micros = integer(&first_seen, row);
        player.last_seen_micros = integer(&last_seen, row);
        for (slot, column) in player.bets_by_game.iter_mut().zip(&games) {
            *slot = integer(column, row);
        }
        for (slot, column) in player.rows_by_hour.iter_mut().zip(&hours) {
            *slot = integer(column, row);
        }
        for (slot, column) in player.rows_by_weekday.iter_mut().zip(&weekdays) {
            *slot = integer(column, row);
        }
        player.countries = countries.remove(&user).unwrap_or_default();
        players.push(player);
    }
    Ok(players)
}
