//! Live play: transactions the operator's platform sends as they happen, checked by the
//! lake contract's rules, stored once by `transaction_id`, and folded into each player's
//! aggregates, whose features equal a batch recompute over the same transactions.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use crmbet_core::{Error, Result};
use crmbet_etl::PlayerFeatures;
use crmbet_etl::Rule;
use crmbet_etl::live::{CheckedTransaction, LiveTransaction, Novelty, PlayerAggregates, check_all};
use crmbet_store::{LiveQuarantineRow, LiveStateUpdate, NewLiveTransaction, Store};

use crate::live_scoring::ActiveScoring;

/// The most transactions one call takes; a larger batch is refused whole.
pub const MAX_BATCH_TRANSACTIONS: usize = 10_000;

/// How long before the newest transaction a batch run loaded a live event may have
/// occurred. Within it, the ids the lake delivered are known and a repeat is a duplicate;
/// an event older than that may be in the lake unbeknown to crmbet, so it is refused
/// (`late_for_live`) and belongs in the lake.
pub const LIVE_WINDOW_DAYS: i64 = 7;
/// [`LIVE_WINDOW_DAYS`] in microseconds.
pub const LIVE_WINDOW_MICROS: i64 = LIVE_WINDOW_DAYS * 86_400_000_000;

/// Players' states read per query when all are needed.
const STATE_PAGE: u64 = 5_000;

/// Where live transactions came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntakeSource {
    /// `POST /api/v1/events`.
    Rest,
    /// `EventService.Ingest` or `IngestBatch` over gRPC or grpc-web.
    Grpc,
    /// The RabbitMQ queue of live events.
    Amqp,
}

impl IntakeSource {
    /// The name stored with each transaction.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rest => "rest",
            Self::Grpc => "grpc",
            Self::Amqp => "amqp",
        }
    }
}

/// Why a live transaction was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// It broke a rule of the lake contract.
    Rule(Rule),
    /// It occurred more than [`LIVE_WINDOW_DAYS`] before the newest transaction of a batch
    /// run: it may be in the lake already, so it must come through the lake.
    LateForLive,
}

impl Refusal {
    /// The name stored in the quarantine and reported to the sender.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rule(rule) => rule.name(),
            Self::LateForLive => "late_for_live",
        }
    }
}

/// A transaction that was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedTransaction {
    /// Its place in the batch.
    pub index: usize,
    pub transaction_id: Option<String>,
    pub rule: Refusal,
}

/// What became of a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestReport {
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: Vec<RejectedTransaction>,
    /// Players whose features changed (and so their segment's confidence, at least).
    pub players: Vec<String>,
    /// Players who moved to another segment (or got their first).
    pub segment_changes: u64,
    /// The model that scored them, when one is active.
    pub model_id: Option<crmbet_core::ModelId>,
}

/// The live-play use cases.
#[derive(Debug, Clone)]
pub struct LivePlay {
    store: Store,
    scoring: Arc<ActiveScoring>,
    /// Whether segment changes go to Smartico (a configured Smartico): without it, they
    /// would wait in the outbox for a delivery that never comes.
    profile_updates: bool,
}

impl LivePlay {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            scoring: Arc::new(ActiveScoring::default()),
            profile_updates: false,
        }
    }

    /// The same use case, queuing a Smartico profile update for every segment change.
    pub fn with_profile_updates(self, profile_updates: bool) -> Self {
        Self {
            profile_updates,
            ..self
        }
    }

    /// The population's reference time with `checked`: the newest event of anyone.
    async fn reference_with(&self, checked: &[CheckedTransaction]) -> Result<i64> {
        let known = self.store.live_reference_micros().await?.unwrap_or(0);
        Ok(checked
            .iter()
            .map(|transaction| transaction.occurred_micros)
            .fold(known, i64::max))
    }

    /// Checks, stores and folds in one batch; returns once it is committed (so an
    /// acknowledged transaction is never lost).
    pub async fn ingest(
        &self,
        transactions: &[LiveTransaction],
        source: IntakeSource,
    ) -> Result<IngestReport> {
        if transactions.len() > MAX_BATCH_TRANSACTIONS {
            return Err(Error::invalid_argument(
                "transactions",
                format!(
                    "{} transactions in one batch; send at most {MAX_BATCH_TRANSACTIONS}",
                    transactions.len()
                ),
            ));
        }
        let quarantine_source = format!("live:{}", source.name());
        let mut checked = Vec::with_capacity(transactions.len());
        let mut rejected = Vec::new();
        let mut quarantined = Vec::new();
        let horizon = self.store.live_late_horizon(LIVE_WINDOW_MICROS).await?;
        for (index, answer) in check_all(transactions, Utc::now(), &quarantine_source)
            .into_iter()
            .enumerate()
        {
            let refusal = match answer {
                Ok(transaction)
                    if horizon.is_some_and(|horizon| transaction.occurred_micros < horizon) =>
                {
                    let row_json = transactions
                        .get(index)
                        .and_then(|sent| serde_json::to_string(sent).ok())
                        .unwrap_or_default();
                    (Refusal::LateForLive, row_json)
                }
                Ok(transaction) => {
                    checked.push(transaction);
                    continue;
                }
                Err(row) => (Refusal::Rule(row.rule), row.row_json),
            };
            rejected.push(RejectedTransaction {
                index,
                transaction_id: transactions
                    .get(index)
                    .and_then(|sent| sent.transaction_id.clone()),
                rule: refusal.0,
            });
            quarantined.push(LiveQuarantineRow {
                rule: refusal.0.name().to_owned(),
                row_json: refusal.1,
            });
        }
        let rows: Vec<NewLiveTransaction> = checked.iter().map(stored_row).collect();
        let scoring = self.scoring.current(&self.store).await?;
        let reference = self.reference_with(&checked).await?;
        let summary = self
            .store
            .ingest_live(
                source.name(),
                &rows,
                &quarantined,
                self.profile_updates,
                |user_id, state, novelties| {
                    let mut aggregates = match state {
                        Some(text) => serde_json::from_str(text).map_err(|error| {
                            Error::Internal(format!(
                                "the live state of {user_id} does not read: {error}"
                            ))
                        })?,
                        None => PlayerAggregates::new(user_id),
                    };
                    for novelty in novelties {
                        let transaction: &CheckedTransaction =
                            checked.get(novelty.index).ok_or_else(|| {
                                Error::Internal(
                                    "a stored transaction is not in its batch".to_owned(),
                                )
                            })?;
                        aggregates.apply(
                            transaction,
                            Novelty {
                                new_session: novelty.new_session,
                                new_day: novelty.new_day,
                            },
                        );
                    }
                    let state = serde_json::to_string(&aggregates).map_err(|error| {
                        Error::Internal(format!("writing a live state: {error}"))
                    })?;
                    let segment = match &scoring {
                        Some(scoring) => {
                            Some(scoring.segment(&mut aggregates.features(reference))?)
                        }
                        None => None,
                    };
                    Ok(LiveStateUpdate {
                        state,
                        last_seen_micros: aggregates.last_seen_micros,
                        segment,
                    })
                },
            )
            .await?;
        Ok(IngestReport {
            accepted: summary.accepted,
            duplicates: summary.duplicates,
            rejected,
            players: summary.players,
            segment_changes: summary.segment_changes,
            model_id: scoring.as_ref().map(|scoring| scoring.model_id()),
        })
    }

    /// Every player's live features, measured to the last live event, with quintile scores
    /// over the players seen live; in user order.
    pub async fn features(&self) -> Result<Vec<PlayerFeatures>> {
        let mut aggregates = BTreeMap::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .store
                .live_states_page(after.as_deref(), STATE_PAGE)
                .await?;
            let Some((last, _)) = page.last() else {
                break;
            };
            after = Some(last.clone());
            for (user_id, state) in page {
                let player: PlayerAggregates = serde_json::from_str(&state).map_err(|error| {
                    Error::Internal(format!(
                        "the live state of {user_id} does not read: {error}"
                    ))
                })?;
                aggregates.insert(user_id, player);
            }
        }
        Ok(crmbet_etl::live::features_of(aggregates.values()))
    }
}

fn stored_row(transaction: &CheckedTransaction) -> NewLiveTransaction {
    NewLiveTransaction {
        transaction_id: transaction.transaction_id.clone(),
        user_id: transaction.user_id.clone(),
        occurred_micros: transaction.occurred_micros,
        kind: transaction.kind.name().to_owned(),
        amount: transaction.amount,
        currency: transaction.currency.clone(),
        game_type: transaction.game_type().map(str::to_owned),
        game_id: transaction.game_id.clone(),
        session_id: transaction.session_id.clone(),
        channel: transaction.channel.clone(),
        country: transaction.country.clone(),
        epoch_day: PlayerAggregates::epoch_day(transaction),
    }
}
