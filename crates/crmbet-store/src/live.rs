//! Live transactions and players' live aggregate state.
//!
//! A batch is stored in one write transaction: each transaction once by `transaction_id`
//! (a repeat, in the batch or from before, is a duplicate), the distinct sessions and days
//! it adds, the state of every player it touches, and the events that broke a rule. The
//! state itself is opaque here (JSON text): `crmbet-app` computes it, so this crate knows
//! nothing of features.
//!
//! Concurrency: the players' state rows are locked first, in user order (`FOR UPDATE` on
//! PostgreSQL; SQLite's write transaction holds the whole database), so two instances
//! ingesting the same player's events take turns and neither overwrites the other.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{DateTime, Utc};
use crmbet_core::{Error, Result};
use sea_orm::sea_query::{
    Alias, Expr, ExprTrait, Func, InsertStatement, OnConflict, Order, Query, SimpleExpr,
};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, FromQueryResult};

use crate::database::Store;
use crate::failure::database_error;
use crate::segment_changes::{LiveSegment, record_live_segments};

/// Rows per multi-row statement (SQLite allows 32,766 bound values).
const ROWS_PER_STATEMENT: usize = 500;

fn table(name: &str) -> Alias {
    Alias::new(name)
}

fn column(name: &str) -> Alias {
    Alias::new(name)
}

/// A checked live transaction to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewLiveTransaction {
    pub transaction_id: String,
    pub user_id: String,
    pub occurred_micros: i64,
    /// The contract's type (`bet`).
    pub kind: String,
    pub amount: f64,
    pub currency: String,
    pub game_type: Option<String>,
    pub game_id: Option<String>,
    pub session_id: Option<String>,
    pub channel: Option<String>,
    pub country: Option<String>,
    /// The UTC day it counts for, as the feature SQL's `micros / 86400000000`.
    pub epoch_day: i64,
}

/// A stored live transaction, with the columns the warehouse keeps.
#[derive(Debug, Clone, PartialEq, sea_orm::FromQueryResult)]
pub struct StoredLiveTransaction {
    /// The order it was accepted in.
    pub id: i64,
    pub transaction_id: String,
    pub user_id: String,
    pub occurred_micros: i64,
    pub kind: String,
    pub amount: f64,
    pub currency: String,
    pub game_type: Option<String>,
    pub game_id: Option<String>,
    pub session_id: Option<String>,
    pub channel: Option<String>,
    pub country: Option<String>,
}

/// The columns of [`StoredLiveTransaction`].
const STORED_COLUMNS: [&str; 12] = [
    "id",
    "transaction_id",
    "user_id",
    "occurred_micros",
    "kind",
    "amount",
    "currency",
    "game_type",
    "game_id",
    "session_id",
    "channel",
    "country",
];

/// A live event that broke a contract rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveQuarantineRow {
    pub rule: String,
    pub row_json: String,
}

/// A new transaction of a player, and whether its session and its day were new to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveNovelty {
    /// The transaction's place in the batch.
    pub index: usize,
    pub new_session: bool,
    pub new_day: bool,
}

/// A player's state after a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveStateUpdate {
    pub state: String,
    /// The player's last event, for the population's reference time.
    pub last_seen_micros: i64,
    /// Their segment in the active model, when one serves.
    pub segment: Option<LiveSegment>,
}

/// What a batch stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveBatchSummary {
    /// Transactions stored for the first time.
    pub accepted: u64,
    /// Transactions whose id was stored before (or earlier in the batch).
    pub duplicates: u64,
    pub quarantined: u64,
    /// The players whose state changed, in user order.
    pub players: Vec<String>,
    /// Players whose cluster changed (each recorded in `segment_changes`).
    pub segment_changes: u64,
}

impl Store {
    /// Stores a batch of live transactions with `source` (`rest`, `grpc`, `amqp`). For each
    /// player with new transactions, `update` gets their stored state (`None` before their
    /// first) and their new transactions in batch order, and returns the new state (and
    /// segment). Segment changes are recorded, and queued as Smartico profile updates when
    /// `profile_updates` is set. Returns once everything is committed; on an error nothing
    /// is stored.
    pub async fn ingest_live<F>(
        &self,
        source: &str,
        transactions: &[NewLiveTransaction],
        quarantined: &[LiveQuarantineRow],
        profile_updates: bool,
        mut update: F,
    ) -> Result<LiveBatchSummary>
    where
        F: FnMut(&str, Option<&str>, &[LiveNovelty]) -> Result<LiveStateUpdate>,
    {
        let now = Utc::now();
        let backend = self.backend();
        let transaction = self.begin_write().await?;
        let users: BTreeSet<&str> = transactions
            .iter()
            .map(|live| live.user_id.as_str())
            .collect();
        let states = lock_states(&transaction, backend, &users, now).await?;

        // Repeats inside the batch never reach the database: the first one counts.
        let mut ids_in_batch = HashSet::new();
        let candidates: Vec<usize> = (0..transactions.len())
            .filter(|index| ids_in_batch.insert(transactions[*index].transaction_id.as_str()))
            .collect();
        // A transaction a lake run already loaded is a duplicate too.
        let in_lake = known_lake_ids(&transaction, backend, transactions, &candidates).await?;
        let candidates: Vec<usize> = candidates
            .into_iter()
            .filter(|index| !in_lake.contains(&transactions[*index].transaction_id))
            .collect();
        let stored = insert_transactions(
            &transaction,
            backend,
            source,
            transactions,
            &candidates,
            now,
        )
        .await?;
        let accepted: Vec<usize> = candidates
            .into_iter()
            .filter(|index| stored.contains(&transactions[*index].transaction_id))
            .collect();
        let new_sessions = insert_pairs(
            &transaction,
            backend,
            "live_player_sessions",
            "session_id",
            accepted.iter().filter_map(|index| {
                let live = &transactions[*index];
                live.session_id
                    .as_ref()
                    .map(|session| (live.user_id.clone(), PairValue::Text(session.clone())))
            }),
        )
        .await?;
        let new_days = insert_pairs(
            &transaction,
            backend,
            "live_player_days",
            "epoch_day",
            accepted.iter().map(|index| {
                let live = &transactions[*index];
                (live.user_id.clone(), PairValue::Number(live.epoch_day))
            }),
        )
        .await?;

        // Each new pair is new for the first transaction of the batch that has it.
        let mut sessions_claimed = HashSet::new();
        let mut days_claimed = HashSet::new();
        let mut per_player: BTreeMap<&str, Vec<LiveNovelty>> = BTreeMap::new();
        for index in &accepted {
            let live = &transactions[*index];
            let session_pair = live
                .session_id
                .as_ref()
                .map(|session| (live.user_id.clone(), PairValue::Text(session.clone())));
            let new_session = session_pair
                .is_some_and(|pair| new_sessions.contains(&pair) && sessions_claimed.insert(pair));
            let day_pair = (live.user_id.clone(), PairValue::Number(live.epoch_day));
            let new_day = new_days.contains(&day_pair) && days_claimed.insert(day_pair);
            per_player
                .entry(live.user_id.as_str())
                .or_default()
                .push(LiveNovelty {
                    index: *index,
                    new_session,
                    new_day,
                });
        }
        let mut updates = Vec::with_capacity(per_player.len());
        for (user_id, novelties) in &per_player {
            let stored_state = states.get(*user_id).and_then(Option::as_deref);
            updates.push((
                (*user_id).to_owned(),
                update(user_id, stored_state, novelties)?,
            ));
        }
        save_states(&transaction, backend, &updates, now).await?;
        let segments: Vec<(String, LiveSegment)> = updates
            .iter()
            .filter_map(|(user_id, update)| Some((user_id.clone(), update.segment?)))
            .collect();
        let segment_changes =
            record_live_segments(&transaction, backend, &segments, profile_updates, now).await?;
        insert_quarantine(&transaction, backend, source, quarantined, now).await?;
        transaction.commit().await.map_err(database_error)?;

        Ok(LiveBatchSummary {
            accepted: accepted.len() as u64,
            duplicates: (transactions.len() - accepted.len()) as u64,
            quarantined: quarantined.len() as u64,
            players: updates.into_iter().map(|(user_id, _)| user_id).collect(),
            segment_changes,
        })
    }

    /// The live state of `user_ids` that have one.
    pub async fn live_states(&self, user_ids: &[String]) -> Result<BTreeMap<String, String>> {
        let mut states = BTreeMap::new();
        for chunk in user_ids.chunks(ROWS_PER_STATEMENT) {
            let query = Query::select()
                .columns([column("user_id"), column("state")])
                .from(table("live_player_state"))
                .and_where(Expr::col(column("user_id")).is_in(chunk.iter().cloned()))
                .and_where(Expr::col(column("state")).is_not_null())
                .to_owned();
            for row in self
                .connection()
                .query_all(&query)
                .await
                .map_err(database_error)?
            {
                let user_id: String = row.try_get("", "user_id").map_err(database_error)?;
                let state: String = row.try_get("", "state").map_err(database_error)?;
                states.insert(user_id, state);
            }
        }
        Ok(states)
    }

    /// Every player's live state, in user order, `page` at a time after `after`.
    pub async fn live_states_page(
        &self,
        after: Option<&str>,
        page: u64,
    ) -> Result<Vec<(String, String)>> {
        let mut query = Query::select()
            .columns([column("user_id"), column("state")])
            .from(table("live_player_state"))
            .and_where(Expr::col(column("state")).is_not_null())
            .order_by(column("user_id"), Order::Asc)
            .limit(page)
            .to_owned();
        if let Some(after) = after {
            query.and_where(Expr::col(column("user_id")).gt(after));
        }
        self.connection()
            .query_all(&query)
            .await
            .map_err(database_error)?
            .into_iter()
            .map(|row| {
                Ok((
                    row.try_get("", "user_id").map_err(database_error)?,
                    row.try_get("", "state").map_err(database_error)?,
                ))
            })
            .collect()
    }

    /// The last live event of any player: what live recency and tenure are measured to.
    pub async fn live_reference_micros(&self) -> Result<Option<i64>> {
        let query = Query::select()
            .expr_as(
                Func::max(Expr::col(column("last_seen_micros"))),
                column("reference"),
            )
            // No filter: a plain MAX reads the end of the index (a row without state has
            // 0 and exists only inside the transaction that writes it).
            .from(table("live_player_state"))
            .to_owned();
        let row = self
            .connection()
            .query_one(&query)
            .await
            .map_err(database_error)?;
        match row {
            Some(row) => row.try_get("", "reference").map_err(database_error),
            None => Ok(None),
        }
    }

    /// The id below which every live transaction is committed (or never will be): on
    /// PostgreSQL ids are drawn before commit, so the newest id alone could hide an older
    /// one still in flight. Waits for the batches being stored to commit.
    pub async fn live_horizon(&self) -> Result<i64> {
        let transaction = self.begin_write().await?;
        if self.backend() == DbBackend::Postgres {
            // Conflicts with every insert: granted once the batches in flight are done.
            transaction
                .execute_unprepared("LOCK TABLE live_transactions IN SHARE MODE")
                .await
                .map_err(database_error)?;
        }
        let query = Query::select()
            .expr_as(Func::max(Expr::col(column("id"))), column("horizon"))
            .from(table("live_transactions"))
            .to_owned();
        let horizon = match transaction
            .query_one_raw(self.backend().build(&query))
            .await
            .map_err(database_error)?
        {
            Some(row) => row
                .try_get::<Option<i64>>("", "horizon")
                .map_err(database_error)?
                .unwrap_or(0),
            None => 0,
        };
        transaction.commit().await.map_err(database_error)?;
        Ok(horizon)
    }

    /// Up to `limit` live transactions with `after < id <= through`, in order.
    pub async fn live_transactions_between(
        &self,
        after: i64,
        through: i64,
        limit: u64,
    ) -> Result<Vec<StoredLiveTransaction>> {
        let query = Query::select()
            .columns(STORED_COLUMNS.map(column))
            .from(table("live_transactions"))
            .and_where(Expr::col(column("id")).gt(after))
            .and_where(Expr::col(column("id")).lte(through))
            .order_by(column("id"), Order::Asc)
            .limit(limit)
            .to_owned();
        StoredLiveTransaction::find_by_statement(self.backend().build(&query))
            .all(self.connection())
            .await
            .map_err(database_error)
    }

    /// Replaces players' live state with a batch recompute, blocking live intake meanwhile:
    /// stores the warehouse's distinct sessions and days, then hands `rebuild` the live
    /// transactions accepted after `after_id` (those the recompute did not see) and writes
    /// the states it returns. Returns how many states were written.
    pub async fn seed_live<F>(
        &self,
        sessions: &[(String, String)],
        days: &[(String, i64)],
        after_id: i64,
        rebuild: F,
    ) -> Result<u64>
    where
        F: FnOnce(&[StoredLiveTransaction]) -> Result<Vec<(String, LiveStateUpdate)>>,
    {
        let now = Utc::now();
        let backend = self.backend();
        let transaction = self.begin_bulk_write().await?;
        if backend == DbBackend::Postgres {
            // Every ingest writes this table first: none runs until the seed is committed.
            transaction
                .execute_unprepared("LOCK TABLE live_player_state IN EXCLUSIVE MODE")
                .await
                .map_err(database_error)?;
        }
        seed_pairs(
            &transaction,
            "live_player_sessions",
            "session_id",
            sessions,
            |session| session.as_str().into(),
        )
        .await?;
        seed_pairs(&transaction, "live_player_days", "epoch_day", days, |day| {
            (*day).into()
        })
        .await?;
        let query = Query::select()
            .columns(STORED_COLUMNS.map(column))
            .from(table("live_transactions"))
            .and_where(Expr::col(column("id")).gt(after_id))
            .order_by(column("id"), Order::Asc)
            .to_owned();
        let later = StoredLiveTransaction::find_by_statement(backend.build(&query))
            .all(&transaction)
            .await
            .map_err(database_error)?;
        let updates = rebuild(&later)?;
        save_states(&transaction, backend, &updates, now).await?;
        transaction.commit().await.map_err(database_error)?;
        Ok(updates.len() as u64)
    }

    /// Live transactions stored so far.
    pub async fn live_transaction_count(&self) -> Result<u64> {
        count(self, "live_transactions").await
    }

    /// Live events quarantined so far.
    pub async fn live_quarantine_count(&self) -> Result<u64> {
        count(self, "live_quarantine").await
    }
}

async fn count(store: &Store, name: &str) -> Result<u64> {
    let query = Query::select()
        .expr_as(Func::count(Expr::cust("*")), column("rows"))
        .from(table(name))
        .to_owned();
    let row = store
        .connection()
        .query_one(&query)
        .await
        .map_err(database_error)?
        .ok_or_else(|| Error::Internal(format!("counting {name} returned no row")))?;
    let rows: i64 = row.try_get("", "rows").map_err(database_error)?;
    Ok(u64::try_from(rows).unwrap_or_default())
}

/// Makes sure every player of the batch has a state row, locks those rows in user order
/// and returns their states.
async fn lock_states(
    transaction: &DatabaseTransaction,
    backend: DbBackend,
    users: &BTreeSet<&str>,
    now: DateTime<Utc>,
) -> Result<BTreeMap<String, Option<String>>> {
    let users: Vec<&str> = users.iter().copied().collect();
    let mut states = BTreeMap::new();
    for chunk in users.chunks(ROWS_PER_STATEMENT) {
        let mut insert = Query::insert()
            .into_table(table("live_player_state"))
            .columns([column("user_id"), column("updated_at")])
            .on_conflict(
                OnConflict::column(column("user_id"))
                    .do_nothing()
                    .to_owned(),
            )
            .to_owned();
        for user_id in chunk {
            insert
                .values([(*user_id).into(), now.into()])
                .map_err(|error| Error::Internal(format!("building a state insert: {error}")))?;
        }
        transaction
            .execute_raw(backend.build(&insert))
            .await
            .map_err(database_error)?;
        let mut select = Query::select()
            .columns([column("user_id"), column("state")])
            .from(table("live_player_state"))
            .and_where(Expr::col(column("user_id")).is_in(chunk.iter().copied()))
            .order_by(column("user_id"), Order::Asc)
            .to_owned();
        if backend == DbBackend::Postgres {
            select.lock_exclusive();
        }
        for row in transaction
            .query_all_raw(backend.build(&select))
            .await
            .map_err(database_error)?
        {
            let user_id: String = row.try_get("", "user_id").map_err(database_error)?;
            let state: Option<String> = row.try_get("", "state").map_err(database_error)?;
            states.insert(user_id, state);
        }
    }
    Ok(states)
}

/// The ids among the transactions at `indexes` that a lake run recorded.
async fn known_lake_ids(
    transaction: &DatabaseTransaction,
    backend: DbBackend,
    transactions: &[NewLiveTransaction],
    indexes: &[usize],
) -> Result<HashSet<String>> {
    let mut known = HashSet::new();
    for chunk in indexes.chunks(ROWS_PER_STATEMENT) {
        let query = Query::select()
            .column(column("transaction_id"))
            .from(table("lake_transaction_ids"))
            .and_where(
                Expr::col(column("transaction_id")).is_in(
                    chunk
                        .iter()
                        .map(|index| transactions[*index].transaction_id.clone()),
                ),
            )
            .to_owned();
        for row in transaction
            .query_all_raw(backend.build(&query))
            .await
            .map_err(database_error)?
        {
            known.insert(row.try_get("", "transaction_id").map_err(database_error)?);
        }
    }
    Ok(known)
}

/// Inserts the transactions at `indexes` that are not stored yet; returns the ids stored.
async fn insert_transactions(
    transaction: &DatabaseTransaction,
    backend: DbBackend,
    source: &str,
    transactions: &[NewLiveTransaction],
    indexes: &[usize],
    now: DateTime<Utc>,
) -> Result<HashSet<String>> {
    let mut stored = HashSet::new();
    for chunk in indexes.chunks(ROWS_PER_STATEMENT) {
        let mut insert = Query::insert()
            .into_table(table("live_transactions"))
            .columns(
                [
                    "transaction_id",
                    "user_id",
                    "occurred_micros",
                    "kind",
                    "amount",
                    "currency",
                    "game_type",
                    "game_id",
                    "session_id",
                    "channel",
                    "country",
                    "source",
                    "received_at",
                ]
                .map(column),
            )
            .on_conflict(
                OnConflict::column(column("transaction_id"))
                    .do_nothing()
                    .to_owned(),
            )
            .returning_col(column("transaction_id"))
            .to_owned();
        for index in chunk {
            let live = &transactions[*index];
            let values: [SimpleExpr; 13] = [
                live.transaction_id.as_str().into(),
                live.user_id.as_str().into(),
                live.occurred_micros.into(),
                live.kind.as_str().into(),
                live.amount.into(),
                live.currency.as_str().into(),
                live.game_type.clone().into(),
                live.game_id.clone().into(),
                live.session_id.clone().into(),
                live.channel.clone().into(),
                live.country.clone().into(),
                source.into(),
                now.into(),
            ];
            insert.values(values).map_err(|error| {
                Error::Internal(format!("building a transaction insert: {error}"))
            })?;
        }
        for row in transaction
            .query_all_raw(backend.build(&insert))
            .await
            .map_err(database_error)?
        {
            stored.insert(row.try_get("", "transaction_id").map_err(database_error)?);
        }
    }
    Ok(stored)
}

/// The second key of a player's distinct pair: a session id or a day.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum PairValue {
    Text(String),
    Number(i64),
}

impl PairValue {
    fn expression(&self) -> SimpleExpr {
        match self {
            PairValue::Text(text) => text.as_str().into(),
            PairValue::Number(number) => (*number).into(),
        }
    }
}

/// Rows per statement when seeding pairs: two parameters each, under SQLite's limit of
/// 32766 parameters per statement.
const SEED_ROWS_PER_STATEMENT: usize = 4_000;

/// An insert of (user_id, `key`) pairs into `table_name` that keeps pairs already there.
fn pair_insert(table_name: &str, key: &str) -> InsertStatement {
    Query::insert()
        .into_table(table(table_name))
        .columns([column("user_id"), column(key)])
        .on_conflict(
            OnConflict::columns([column("user_id"), column(key)])
                .do_nothing()
                .to_owned(),
        )
        .to_owned()
}

/// Inserts distinct (user_id, `key`) pairs into `table_name`, keeping those already there.
async fn seed_pairs<V>(
    transaction: &DatabaseTransaction,
    table_name: &str,
    key: &str,
    pairs: &[(String, V)],
    expression: impl Fn(&V) -> SimpleExpr,
) -> Result<()> {
    let backend = transaction.get_database_backend();
    for chunk in pairs.chunks(SEED_ROWS_PER_STATEMENT) {
        let mut insert = pair_insert(table_name, key);
        for (user_id, value) in chunk {
            insert
                .values([user_id.as_str().into(), expression(value)])
                .map_err(|error| Error::Internal(format!("building a pair insert: {error}")))?;
        }
        transaction
            .execute_raw(backend.build(&insert))
            .await
            .map_err(database_error)?;
    }
    Ok(())
}

/// Inserts (user_id, `key`) pairs into `table_name`; returns the pairs that were new.
async fn insert_pairs(
    transaction: &DatabaseTransaction,
    backend: DbBackend,
    table_name: &str,
    key: &str,
    pairs: impl Iterator<Item = (String, PairValue)>,
) -> Result<HashSet<(String, PairValue)>> {
    let mut distinct = BTreeSet::new();
    distinct.extend(pairs);
    let distinct: Vec<(String, PairValue)> = distinct.into_iter().collect();
    let mut inserted = HashSet::new();
    for chunk in distinct.chunks(ROWS_PER_STATEMENT) {
        let mut insert = pair_insert(table_name, key)
            .returning(Query::returning().columns([column("user_id"), column(key)]))
            .to_owned();
        for (user_id, value) in chunk {
            insert
                .values([user_id.as_str().into(), value.expression()])
                .map_err(|error| Error::Internal(format!("building a pair insert: {error}")))?;
        }
        for row in transaction
            .query_all_raw(backend.build(&insert))
            .await
            .map_err(database_error)?
        {
            let user_id: String = row.try_get("", "user_id").map_err(database_error)?;
            let value = match chunk.first() {
                Some((_, PairValue::Number(_))) => {
                    PairValue::Number(row.try_get("", key).map_err(database_error)?)
                }
                _ => PairValue::Text(row.try_get("", key).map_err(database_error)?),
            };
            inserted.insert((user_id, value));
        }
    }
    Ok(inserted)
}

async fn save_states(
    transaction: &DatabaseTransaction,
    backend: DbBackend,
    updates: &[(String, LiveStateUpdate)],
    now: DateTime<Utc>,
) -> Result<()> {
    for chunk in updates.chunks(ROWS_PER_STATEMENT) {
        let mut upsert = Query::insert()
            .into_table(table("live_player_state"))
            .columns([
                column("user_id"),
                column("state"),
                column("last_seen_micros"),
                column("updated_at"),
            ])
            .on_conflict(
                OnConflict::column(column("user_id"))
                    .update_columns([
                        column("state"),
                        column("last_seen_micros"),
                        column("updated_at"),
                    ])
                    .to_owned(),
            )
            .to_owned();
        for (user_id, update) in chunk {
            upsert
                .values([
                    user_id.as_str().into(),
                    update.state.as_str().into(),
                    update.last_seen_micros.into(),
                    now.into(),
                ])
                .map_err(|error| Error::Internal(format!("building a state upsert: {error}")))?;
        }
        transaction
            .execute_raw(backend.build(&upsert))
            .await
            .map_err(database_error)?;
    }
    Ok(())
}

async fn insert_quarantine(
    transaction: &DatabaseTransaction,
    backend: DbBackend,
    source: &str,
    rows: &[LiveQuarantineRow],
    now: DateTime<Utc>,
) -> Result<()> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut insert = Query::insert()
            .into_table(table("live_quarantine"))
            .columns([
                column("rule"),
                column("source"),
                column("row_json"),
                column("received_at"),
            ])
            .to_owned();
        for row in chunk {
            insert
                .values([
                    row.rule.as_str().into(),
                    source.into(),
                    row.row_json.as_str().into(),
                    now.into(),
                ])
                .map_err(|error| {
                    Error::Internal(format!("building a quarantine insert: {error}"))
                })?;
        }
        transaction
            .execute_raw(backend.build(&insert))
            .await
            .map_err(database_error)?;
    }
    Ok(())
}
