//! Per-player features over the warehouse, in one DataFusion SQL plan.
//!
//! The definitions are the Python peer's (`../shared/bench/peer/peer.py`, names and
//! formulas alike), plus the columns the store keeps besides them: `clv_estimate`,
//! `preferred_weekday`, `first_seen_at`, `last_active_at` and `country`. Time features come
//! from epoch microseconds, which are UTC by definition: the hour is
//! `micros / 3_600_000_000 % 24`, the day `micros / 86_400_000_000`, and since 1970-01-01
//! was a Thursday, `(day + 3) % 7` is 0 on Mondays. Recency and tenure are measured to the
//! last event of the whole warehouse, so they do not drift with the wall clock.

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{
    Array, ArrayRef, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::compute::kernels::cast::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::prelude::SessionContext;
use serde::Serialize;

use crate::contract::GAME_TYPES;
use crate::error::{Error, Result};
use crate::warehouse::{TRANSACTIONS_TABLE, Warehouse};

/// Game types that get a share feature (`other` counts for the favourite only).
const SHARE_GAMES: [&str; 5] = ["crash", "slots", "live_casino", "sports", "table"];

/// Months of net revenue the CLV estimate projects.
pub(crate) const CLV_HORIZON_MONTHS: f64 = 12.0;
/// Days over which the chance that a player is still active falls by a factor e.
pub(crate) const CLV_RETENTION_DAYS: f64 = 90.0;
/// Shortest tenure the monthly revenue is averaged over, so a new player's first days are
/// not extrapolated.
pub(crate) const CLV_MINIMUM_TENURE_DAYS: f64 = 30.0;

/// One player's features, the columns of `player_features` plus the player's own facts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlayerFeatures {
    /// The player's id at the operator.
    pub user_id: String,
    /// The game type with the most bets (ties to the first of crash, slots, live_casino,
    /// sports, table, other); `None` for a player without bets.
    pub favourite_game: Option<String>,
    /// Share of bets on crash games.
    pub share_crash: f64,
    /// Share of bets on slots.
    pub share_slots: f64,
    /// Share of bets on live casino.
    pub share_live_casino: f64,
    /// Share of bets on sports.
    pub share_sports: f64,
    /// Share of bets on table games.
    pub share_table: f64,
    /// Number of bets.
    pub bet_count: i64,
    /// Sample standard deviation of bet amounts (0 with fewer than two bets).
    pub bet_std: f64,
    /// `bet_std / avg_ticket` (0 without bets): bet size volatility.
    pub bet_cv: f64,
    /// Distinct sessions.
    pub sessions: i64,
    /// `bet_count / max(sessions, 1)`.
    pub bets_per_session: f64,
    /// Mean bet amount (0 without bets).
    pub avg_ticket: f64,
    /// Sum of bets.
    pub total_staked: f64,
    /// Net gaming revenue: bets minus wins.
    pub ngr: f64,
    /// Number of deposits.
    pub deposit_count: i64,
    /// Sum of deposits.
    pub deposit_sum: f64,
    /// `deposit_sum / deposit_count` (0 without deposits).
    pub avg_deposit: f64,
    /// Number of withdrawals.
    pub withdrawal_count: i64,
    /// Sum of withdrawals.
    pub withdrawal_sum: f64,
    /// `withdrawal_sum / deposit_sum` (0 without deposits).
    pub withdrawal_ratio: f64,
    /// `bonus / (deposits + bonus)` in money (0 when both are 0).
    pub bonus_share: f64,
    /// Expected net revenue of the next 12 months, net of bonuses: the monthly
    /// `(ngr - bonus_sum)` over the tenure (at least 30 days), times 12, times
    /// `exp(-recency_days / 90)`, the chance the player is still active. Negative for a
    /// player who wins more than they lose.
    pub clv_estimate: f64,
    /// Share of rows between 00:00 and 06:00 UTC.
    pub night_share: f64,
    /// Share of rows on Saturdays and Sundays (UTC).
    pub weekend_share: f64,
    /// The UTC hour with the most rows (ties to the earliest).
    pub preferred_hour: i32,
    /// The ISO weekday (1 = Monday .. 7 = Sunday, UTC) with the most rows (ties to the earliest).
    pub preferred_weekday: i32,
    /// Distinct UTC days with a row.
    pub active_days: i64,
    /// Days from the player's first row to the warehouse's last event.
    pub tenure_days: f64,
    /// Days from the player's last row to the warehouse's last event.
    pub recency_days: f64,
    /// Number of rows of any type.
    pub frequency: i64,
    /// Equal to `deposit_sum`.
    pub monetary: f64,
    /// Recency quintile, 5 = most recent: `ntile(5)` over recency descending, then user id.
    pub r_score: i32,
    /// Frequency quintile, 5 = most rows: `ntile(5)` over frequency, then user id.
    pub f_score: i32,
    /// Monetary quintile, 5 = most deposited: `ntile(5)` over deposit sum, then user id.
    pub m_score: i32,
    /// The player's first row.
    pub first_seen_at: DateTime<Utc>,
    /// The player's last row.
    pub last_active_at: DateTime<Utc>,
    /// The most frequent non-null country of the player's rows (ties to the first
    /// alphabetically); `None` when every row lacks it.
    pub country: Option<String>,
}

/// The common tables of the feature and the aggregate queries over [`TRANSACTIONS_TABLE`]:
/// `tx` (each transaction with its hour, day, weekday and amounts by type), `per_player`
/// (counts, sums, histograms), `sessions` and `days` (distinct counts).
fn player_ctes() -> String {
    format!("{},\n{DISTINCT_CTES}", transaction_ctes())
}

/// Distinct counts as a group-by of the pairs, then a count: DataFusion's count(DISTINCT)
/// on text keeps a hash map per player (about 34 KB each, 7 GB for 200k players).
const DISTINCT_CTES: &str = r#"sessions AS (
  SELECT user_id, count(*) AS sessions
  FROM (SELECT user_id, session_id FROM tx WHERE session_id IS NOT NULL GROUP BY user_id, session_id)
  GROUP BY user_id
),
days AS (
  SELECT user_id, count(*) AS active_days
  FROM (SELECT user_id, epoch_day FROM tx GROUP BY user_id, epoch_day)
  GROUP BY user_id
)"#;

/// `tx` and `per_player` of [`player_ctes`].
fn transaction_ctes() -> String {
    let game_counts = GAME_TYPES
        .iter()
        .map(|game| format!("count(*) FILTER (WHERE bet_game = '{game}') AS bets_{game}"))
        .collect::<Vec<_>>()
        .join(",\n        ");
    let hour_counts = (0..24)
        .map(|hour| format!("count(*) FILTER (WHERE hour_of_day = {hour}) AS hour_{hour}"))
        .collect::<Vec<_>>()
        .join(",\n        ");
    let weekday_counts = (0..7)
        .map(|weekday| format!("count(*) FILTER (WHERE weekday = {weekday}) AS weekday_{weekday}"))
        .collect::<Vec<_>>()
        .join(",\n        ");
    format!(
        r#"tx AS (
  SELECT user_id, session_id, micros,
      micros / 3600000000 % 24 AS hour_of_day,
      micros / 86400000000 AS epoch_day,
      (micros / 86400000000 + 3) % 7 AS weekday,
      CASE WHEN "type" = 'bet' THEN amount END AS bet,
      CASE WHEN "type" = 'win' THEN amount END AS win,
      CASE WHEN "type" = 'deposit' THEN amount END AS deposit,
      CASE WHEN "type" = 'withdrawal' THEN amount END AS withdrawal,
      CASE WHEN "type" = 'bonus' THEN amount END AS bonus,
      CASE WHEN "type" = 'bet' THEN game_type END AS bet_game
  FROM (SELECT *, CAST(occurred_at AS BIGINT) AS micros FROM {TRANSACTIONS_TABLE})
),
per_player AS (
  SELECT user_id,
      count(*) AS frequency,
      count(bet) AS bet_count,
      coalesce(sum(bet), 0.0) AS total_staked,
      avg(bet) AS bet_mean,
      stddev_samp(bet) AS bet_stddev,
      coalesce(sum(win), 0.0) AS total_won,
      count(deposit) AS deposit_count,
      coalesce(sum(deposit), 0.0) AS deposit_sum,
      count(withdrawal) AS withdrawal_count,
      coalesce(sum(withdrawal), 0.0) AS withdrawal_sum,
      coalesce(sum(bonus), 0.0) AS bonus_sum,
      avg(CASE WHEN hour_of_day < 6 THEN 1.0 ELSE 0.0 END) AS night_share,
      avg(CASE WHEN weekday >= 5 THEN 1.0 ELSE 0.0 END) AS weekend_share,
      min(micros) AS first_seen,
      max(micros) AS last_seen,
      {game_counts},
      {hour_counts},
      {weekday_counts}
  FROM tx GROUP BY user_id
)"#
    )
}

/// Every player's mergeable aggregates (see [`crate::live::PlayerAggregates`]) over
/// [`TRANSACTIONS_TABLE`], by user id, without the distinct counts: those are the lengths
/// of [`session_pairs_sql`] and [`day_pairs_sql`] per player, which the live state keeps
/// anyway; countries come from [`countries_sql`].
pub(crate) fn aggregates_sql() -> String {
    let ctes = transaction_ctes();
    let list = |names: Vec<String>| names.join(", ");
    let games = list(
        GAME_TYPES
            .iter()
            .map(|game| format!("bets_{game}"))
            .collect(),
    );
    let hours = list((0..24).map(|hour| format!("hour_{hour}")).collect());
    let weekdays = list((0..7).map(|weekday| format!("weekday_{weekday}")).collect());
    format!(
        r#"
WITH {ctes}
SELECT p.user_id, frequency, bet_count, total_staked, coalesce(bet_mean, 0.0) AS bet_mean,
    coalesce(bet_stddev * bet_stddev * CAST(bet_count - 1 AS DOUBLE), 0.0) AS bet_m2,
    total_won, deposit_count, deposit_sum, withdrawal_count, withdrawal_sum, bonus_sum,
    night_share, weekend_share, first_seen, last_seen, {games}, {hours}, {weekdays}
FROM per_player p
ORDER BY p.user_id
"#
    )
}

/// Every player's distinct sessions over [`TRANSACTIONS_TABLE`], in no order.
pub(crate) fn session_pairs_sql() -> String {
    format!(
        "SELECT user_id, session_id FROM {TRANSACTIONS_TABLE} \
         WHERE session_id IS NOT NULL GROUP BY user_id, session_id"
    )
}

/// Every player's distinct UTC days (`micros / 86400000000`, as in `tx`) over
/// [`TRANSACTIONS_TABLE`], in no order.
pub(crate) fn day_pairs_sql() -> String {
    format!(
        "SELECT user_id, epoch_day FROM (
            SELECT user_id, CAST(occurred_at AS BIGINT) / 86400000000 AS epoch_day
            FROM {TRANSACTIONS_TABLE}
         ) GROUP BY user_id, epoch_day"
    )
}

/// Rows per player and country over [`TRANSACTIONS_TABLE`].
pub(crate) fn countries_sql() -> String {
    format!(
        "SELECT user_id, country, count(*) AS country_rows FROM {TRANSACTIONS_TABLE} \
         WHERE country IS NOT NULL GROUP BY user_id, country"
    )
}

/// The feature query over the table [`TRANSACTIONS_TABLE`], one row per player by user id.
pub(crate) fn features_sql() -> String {
    let all_games = GAME_TYPES
        .iter()
        .map(|game| format!("bets_{game}"))
        .collect::<Vec<_>>()
        .join(", ");
    let favourite = GAME_TYPES
        .iter()
        .map(|game| format!("WHEN bets_{game} = greatest({all_games}) THEN '{game}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let shares = SHARE_GAMES
        .iter()
        .map(|game| {
            format!(
                "CASE WHEN bet_count > 0 THEN CAST(bets_{game} AS DOUBLE) / CAST(bet_count AS DOUBLE) \
                 ELSE 0.0 END AS share_{game}"
            )
        })
        .collect::<Vec<_>>()
        .join(",\n    ");
    let all_hours = (0..24)
        .map(|hour| format!("hour_{hour}"))
        .collect::<Vec<_>>()
        .join(", ");
    let preferred_hour = (0..24)
        .map(|hour| format!("WHEN hour_{hour} = greatest({all_hours}) THEN {hour}"))
        .collect::<Vec<_>>()
        .join(" ");
    let all_weekdays = (0..7)
        .map(|weekday| format!("weekday_{weekday}"))
        .collect::<Vec<_>>()
        .join(", ");
    let preferred_weekday = (0..7)
        .map(|weekday| {
            format!(
                "WHEN weekday_{weekday} = greatest({all_weekdays}) THEN {}",
                weekday + 1
            )
        })
        .collect::<Vec<_>>()
        .join(" ");
    let ctes = player_ctes();
    format!(
        r#"
WITH {ctes},
countries AS (
  SELECT user_id, country,
      row_number() OVER (PARTITION BY user_id ORDER BY count(*) DESC, country) AS country_rank
  FROM {TRANSACTIONS_TABLE} WHERE country IS NOT NULL
  GROUP BY user_id, country
),
reference AS (SELECT max(last_seen) AS reference_time FROM per_player),
measured AS (
  SELECT p.*,
      coalesce(s.sessions, 0) AS sessions,
      d.active_days,
      CAST(reference_time - first_seen AS DOUBLE) / 86400000000.0 AS tenure_days,
      CAST(reference_time - last_seen AS DOUBLE) / 86400000000.0 AS recency_days
  FROM per_player p CROSS JOIN reference
  LEFT JOIN sessions s ON s.user_id = p.user_id
  JOIN days d ON d.user_id = p.user_id
)
SELECT m.user_id,
    CASE WHEN bet_count = 0 THEN NULL {favourite} END AS favourite_game,
    {shares},
    CAST(bet_count AS BIGINT) AS bet_count,
    coalesce(bet_stddev, 0.0) AS bet_std,
    CASE WHEN bet_count > 0 THEN coalesce(bet_stddev, 0.0) / bet_mean ELSE 0.0 END AS bet_cv,
    CAST(sessions AS BIGINT) AS sessions,
    CAST(bet_count AS DOUBLE) / CAST(greatest(sessions, 1) AS DOUBLE) AS bets_per_session,
    coalesce(bet_mean, 0.0) AS avg_ticket,
    total_staked,
    total_staked - total_won AS ngr,
    CAST(deposit_count AS BIGINT) AS deposit_count,
    deposit_sum,
    CASE WHEN deposit_count > 0 THEN deposit_sum / CAST(deposit_count AS DOUBLE) ELSE 0.0 END
      AS avg_deposit,
    CAST(withdrawal_count AS BIGINT) AS withdrawal_count,
    withdrawal_sum,
    CASE WHEN deposit_sum > 0 THEN withdrawal_sum / deposit_sum ELSE 0.0 END AS withdrawal_ratio,
    CASE WHEN deposit_sum + bonus_sum > 0 THEN bonus_sum / (deposit_sum + bonus_sum) ELSE 0.0 END
      AS bonus_share,
    (total_staked - total_won - bonus_sum) / greatest(tenure_days, {CLV_MINIMUM_TENURE_DAYS:.1})
      * 30.0 * {CLV_HORIZON_MONTHS:.1} * exp(-recency_days / {CLV_RETENTION_DAYS:.1}) AS clv_estimate,
    night_share,
    weekend_share,
    CAST(CASE {preferred_hour} END AS INT) AS preferred_hour,
    CAST(CASE {preferred_weekday} END AS INT) AS preferred_weekday,
    CAST(active_days AS BIGINT) AS active_days,
    tenure_days,
    recency_days,
    CAST(frequency AS BIGINT) AS frequency,
    deposit_sum AS monetary,
    CAST(ntile(5) OVER (ORDER BY recency_days DESC, m.user_id) AS INT) AS r_score,
    CAST(ntile(5) OVER (ORDER BY frequency, m.user_id) AS INT) AS f_score,
    CAST(ntile(5) OVER (ORDER BY deposit_sum, m.user_id) AS INT) AS m_score,
    first_seen AS first_seen_micros,
    last_seen AS last_active_micros,
    c.country AS country
FROM measured m LEFT JOIN countries c ON c.user_id = m.user_id AND c.country_rank = 1
ORDER BY m.user_id
"#
    )
}

/// Computes the features of every player in the warehouse registered as
/// [`TRANSACTIONS_TABLE`] in `context`.
/// Every player's features over the accepted transactions of `warehouse`, computed again
/// from its Parquet parts in a fresh single-process context (what a run returns, without
/// reading the lake). Empty when the warehouse holds nothing.
pub async fn warehouse_features(warehouse: &Warehouse) -> Result<Vec<PlayerFeatures>> {
    let context = SessionContext::new();
    if !warehouse.register(&context, TRANSACTIONS_TABLE).await? {
        return Ok(Vec::new());
    }
    compute_features(&context).await
}

/// [`warehouse_features`] planned and run by Ballista (a scheduler and an executor in this
/// process, talking over Ballista's own protocol), the same SQL: the distributed engine
/// gives the same answers, so scaling out is a deployment choice, not a rewrite.
#[cfg(feature = "ballista")]
pub async fn warehouse_features_on_ballista(warehouse: &Warehouse) -> Result<Vec<PlayerFeatures>> {
    use ballista::prelude::{SessionConfigExt, SessionContextExt};
    use datafusion::execution::SessionStateBuilder;
    use datafusion::prelude::SessionConfig;

    let state = SessionStateBuilder::new()
        .with_default_features()
        .with_config(SessionConfig::new_with_ballista())
        .build();
    let context = SessionContext::standalone_with_state(state)
        .await
        .map_err(|error| Error::query("starting a standalone Ballista cluster", error))?;
    if !warehouse.register(&context, TRANSACTIONS_TABLE).await? {
        return Ok(Vec::new());
    }
    compute_features(&context).await
}

pub(crate) async fn compute_features(context: &SessionContext) -> Result<Vec<PlayerFeatures>> {
    let frame = context
        .sql(&features_sql())
        .await
        .map_err(|error| Error::query("planning the features", error))?;
    let batches = frame
        .collect()
        .await
        .map_err(|error| Error::query("computing the features", error))?;
    let mut features = Vec::new();
    for batch in &batches {
        features.extend(players_of(batch)?);
    }
    Ok(features)
}

/// The players of one batch of the feature query's output.
fn players_of(batch: &RecordBatch) -> Result<Vec<PlayerFeatures>> {
    let user_id = text_column(batch, "user_id")?;
    let favourite_game = text_column(batch, "favourite_game")?;
    let share_crash = float_column(batch, "share_crash")?;
    let share_slots = float_column(batch, "share_slots")?;
    let share_live_casino = float_column(batch, "share_live_casino")?;
    let share_sports = float_column(batch, "share_sports")?;
    let share_table = float_column(batch, "share_table")?;
    let bet_count = integer_column(batch, "bet_count")?;
    let bet_std = float_column(batch, "bet_std")?;
    let bet_cv = float_column(batch, "bet_cv")?;
    let sessions = integer_column(batch, "sessions")?;
    let bets_per_session = float_column(batch, "bets_per_session")?;
    let avg_ticket = float_column(batch, "avg_ticket")?;
    let total_staked = float_column(batch, "total_staked")?;
    let ngr = float_column(batch, "ngr")?;
    let deposit_count = integer_column(batch, "deposit_count")?;
    let deposit_sum = float_column(batch, "deposit_sum")?;
    let avg_deposit = float_column(batch, "avg_deposit")?;
    let withdrawal_count = integer_column(batch, "withdrawal_count")?;
    let withdrawal_sum = float_column(batch, "withdrawal_sum")?;
    let withdrawal_ratio = float_column(batch, "withdrawal_ratio")?;
    let bonus_share = float_column(batch, "bonus_share")?;
    let clv_estimate = float_column(batch, "clv_estimate")?;
    let night_share = float_column(batch, "night_share")?;
    let weekend_share = float_column(batch, "weekend_share")?;
    let preferred_hour = small_column(batch, "preferred_hour")?;
    let preferred_weekday = small_column(batch, "preferred_weekday")?;
    let active_days = integer_column(batch, "active_days")?;
    let tenure_days = float_column(batch, "tenure_days")?;
    let recency_days = float_column(batch, "recency_days")?;
    let frequency = integer_column(batch, "frequency")?;
    let monetary = float_column(batch, "monetary")?;
    let r_score = small_column(batch, "r_score")?;
    let f_score = small_column(batch, "f_score")?;
    let m_score = small_column(batch, "m_score")?;
    let first_seen = integer_column(batch, "first_seen_micros")?;
    let last_active = integer_column(batch, "last_active_micros")?;
    let country = text_column(batch, "country")?;
    let players = (0..batch.num_rows())
        .map(|row| PlayerFeatures {
            user_id: text(&user_id, row).unwrap_or_default(),
            favourite_game: text(&favourite_game, row),
            share_crash: float(&share_crash, row),
            share_slots: float(&share_slots, row),
            share_live_casino: float(&share_live_casino, row),
            share_sports: float(&share_sports, row),
            share_table: float(&share_table, row),
            bet_count: integer(&bet_count, row),
            bet_std: float(&bet_std, row),
            bet_cv: float(&bet_cv, row),
            sessions: integer(&sessions, row),
            bets_per_session: float(&bets_per_session, row),
            avg_ticket: float(&avg_ticket, row),
            total_staked: float(&total_staked, row),
            ngr: float(&ngr, row),
            deposit_count: integer(&deposit_count, row),
            deposit_sum: float(&deposit_sum, row),
            avg_deposit: float(&avg_deposit, row),
            withdrawal_count: integer(&withdrawal_count, row),
            withdrawal_sum: float(&withdrawal_sum, row),
            withdrawal_ratio: float(&withdrawal_ratio, row),
            bonus_share: float(&bonus_share, row),
            clv_estimate: float(&clv_estimate, row),
            night_share: float(&night_share, row),
            weekend_share: float(&weekend_share, row),
            preferred_hour: small(&preferred_hour, row),
            preferred_weekday: small(&preferred_weekday, row),
            active_days: integer(&active_days, row),
            tenure_days: float(&tenure_days, row),
            recency_days: float(&recency_days, row),
            frequency: integer(&frequency, row),
            monetary: float(&monetary, row),
            r_score: small(&r_score, row),
            f_score: small(&f_score, row),
            m_score: small(&m_score, row),
            first_seen_at: moment(&first_seen, row),
            last_active_at: moment(&last_active, row),
            country: text(&country, row),
        })
        .collect();
    Ok(players)
}

/// The column `name` of `batch` cast to `data_type` and downcast to `T`.
fn typed_column<T: Clone + 'static>(
    batch: &RecordBatch,
    name: &str,
    data_type: &DataType,
) -> Result<T> {
    let schema_error = |reason: String| Error::FeatureSchema {
        column: name.to_owned(),
        reason,
    };
    let array = batch
        .column_by_name(name)
        .ok_or_else(|| schema_error("missing".to_owned()))?;
    let array: ArrayRef =
        cast(array.as_ref(), data_type).map_err(|error| schema_error(error.to_string()))?;
    array
        .as_any()
        .downcast_ref::<T>()
        .cloned()
        .ok_or_else(|| schema_error(format!("unexpected type {}", array.data_type())))
}

pub(crate) fn text_column(batch: &RecordBatch, name: &str) -> Result<StringArray> {
    typed_column(batch, name, &DataType::Utf8)
}

pub(crate) fn float_column(batch: &RecordBatch, name: &str) -> Result<Float64Array> {
    typed_column(batch, name, &DataType::Float64)
}

pub(crate) fn integer_column(batch: &RecordBatch, name: &str) -> Result<Int64Array> {
    typed_column(batch, name, &DataType::Int64)
}

fn small_column(batch: &RecordBatch, name: &str) -> Result<Int32Array> {
    typed_column(batch, name, &DataType::Int32)
}

pub(crate) fn text(array: &StringArray, row: usize) -> Option<String> {
    array.is_valid(row).then(|| array.value(row).to_owned())
}

/// A null ratio (a division the SQL left undefined) reads as NaN, never as a made-up 0.
pub(crate) fn float(array: &Float64Array, row: usize) -> f64 {
    if array.is_valid(row) {
        array.value(row)
    } else {
        f64::NAN
    }
}

pub(crate) fn integer(array: &Int64Array, row: usize) -> i64 {
    if array.is_valid(row) {
        array.value(row)
    } else {
        0
    }
}

fn small(array: &Int32Array, row: usize) -> i32 {
    if array.is_valid(row) {
        array.value(row)
    } else {
        0
    }
}

fn moment(array: &Int64Array, row: usize) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(integer(array, row)).unwrap_or_default()
}
