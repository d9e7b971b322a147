//! After a batch run: every player's live state becomes the warehouse's aggregates (lake
//! history and the live transactions the run accepted, each once), with the live
//! transactions that arrived during the run folded in on top. Live events then extend a
//! player's whole history, so live features and live segments answer like a batch
//! recompute would.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use crmbet_core::{Error, Result};
use crmbet_etl::live::{LiveTransaction, Novelty, PlayerAggregates, WarehouseHistory, check};
use crmbet_store::{LiveStateUpdate, Store, StoredLiveTransaction};

/// Rewrites the live state of every player the warehouse holds from the history the run
/// computed over it ([`crmbet_etl::EtlOutcome::history`]); `after_id` is the last live
/// transaction the run accepted into the warehouse. Returns how many states were written.
pub async fn seed_live_state(
    store: &Store,
    history: WarehouseHistory,
    after_id: i64,
) -> Result<u64> {
    let WarehouseHistory {
        players: aggregates,
        sessions,
        days,
    } = history;
    if aggregates.is_empty() {
        return Ok(0);
    }
    // The pairs come sorted: the database fills its indexes page after page.
    store
        .seed_live(&sessions, &days, after_id, |later| {
            let mut players: BTreeMap<String, PlayerAggregates> = aggregates
                .into_iter()
                .map(|player| (player.user_id.clone(), player))
                .collect();
            if !later.is_empty() {
                // Only then: a set per player of every session and day is not free.
                let known = KnownPairs::of(&sessions, &days);
                fold_later(&mut players, later, known, Utc::now());
            }
            players
                .into_iter()
                .map(|(user_id, player)| {
                    let state = serde_json::to_string(&player).map_err(|error| {
                        Error::Internal(format!("writing a live state: {error}"))
                    })?;
                    Ok((
                        user_id,
                        LiveStateUpdate {
                            state,
                            last_seen_micros: player.last_seen_micros,
                            segment: None,
                        },
                    ))
                })
                .collect()
        })
        .await
}

/// Each player's sessions and days in the warehouse.
struct KnownPairs<'a> {
    sessions: HashMap<&'a str, HashSet<&'a str>>,
    days: HashMap<&'a str, HashSet<i64>>,
}

impl<'a> KnownPairs<'a> {
    fn of(sessions: &'a [(String, String)], days: &'a [(String, i64)]) -> Self {
        let mut known = Self {
            sessions: HashMap::new(),
            days: HashMap::new(),
        };
        for (user_id, session) in sessions {
            known
                .sessions
                .entry(user_id.as_str())
                .or_default()
                .insert(session.as_str());
        }
        for (user_id, day) in days {
            known.days.entry(user_id.as_str()).or_default().insert(*day);
        }
        known
    }
}

/// Folds the live transactions the run did not see into the players the warehouse holds
/// (a player it does not hold has only such transactions: their state is already right).
fn fold_later(
    players: &mut BTreeMap<String, PlayerAggregates>,
    later: &[StoredLiveTransaction],
    known: KnownPairs<'_>,
    now: DateTime<Utc>,
) {
    let mut sessions_seen: HashSet<(String, String)> = HashSet::new();
    let mut days_seen: HashSet<(String, i64)> = HashSet::new();
    for row in later {
        let Some(player) = players.get_mut(&row.user_id) else {
            continue;
        };
        // Accepted once, so the rules pass again; the check gives the folded form.
        let Ok(transaction) = check(&as_sent(row), now, "live:seed") else {
            continue;
        };
        let day = PlayerAggregates::epoch_day(&transaction);
        let new_session = transaction.session_id.as_ref().is_some_and(|session| {
            !known
                .sessions
                .get(row.user_id.as_str())
                .is_some_and(|sessions| sessions.contains(session.as_str()))
                && sessions_seen.insert((row.user_id.clone(), session.clone()))
        });
        let new_day = !known
            .days
            .get(row.user_id.as_str())
            .is_some_and(|days| days.contains(&day))
            && days_seen.insert((row.user_id.clone(), day));
        player.apply(
            &transaction,
            Novelty {
                new_session,
                new_day,
            },
        );
    }
}

/// A stored live transaction as it was sent.
fn as_sent(row: &StoredLiveTransaction) -> LiveTransaction {
    LiveTransaction {
        transaction_id: Some(row.transaction_id.clone()),
        user_id: Some(row.user_id.clone()),
        occurred_at: DateTime::from_timestamp_micros(row.occurred_micros)
            .map(|moment| moment.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
        kind: Some(row.kind.clone()),
        amount: Some(row.amount),
        currency: Some(row.currency.clone()),
        game_type: row.game_type.clone(),
        game_id: row.game_id.clone(),
        session_id: row.session_id.clone(),
        channel: row.channel.clone(),
        country: row.country.clone(),
    }
}
