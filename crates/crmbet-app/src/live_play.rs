//! Live play: transactions the operator's platform sends as they happen, checked by the
//! lake contract's rules, stored once by `transaction_id`, and folded into each player's
//! aggregates, whose features equal a batch recompute over the same transactions.

use std::collections::BTreeMap;

use chrono::Utc;
use crmbet_core::{Error, Result};
use crmbet_etl::PlayerFeatures;
use crmbet_etl::Rule;
use crmbet_etl::live::{
    CheckedTransaction, LiveTransaction, Novelty, PlayerAggregates, check_all, score_rfm,
};
use crmbet_store::{LiveQuarantineRow, LiveStateUpdate, NewLiveTransaction, Store};

/// The most transactions one call takes; a larger batch is refused whole.
pub const MAX_BATCH_TRANSACTIONS: usize = 10_000;

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

/// A transaction that broke a contract rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedTransaction {
    /// Its place in the batch.
    pub index: usize,
    pub transaction_id: Option<String>,
    pub rule: Rule,
}

/// What became of a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestReport {
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: Vec<RejectedTransaction>,
    /// Players whose features changed.
    pub players: Vec<String>,
}

/// The live-play use cases.
#[derive(Debug, Clone)]
pub struct LivePlay {
    store: Store,
}

impl LivePlay {
    pub fn new(store: Store) -> Self {
        Self { store }
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
        for (index, answer) in check_all(transactions, Utc::now(), &quarantine_source)
            .into_iter()
            .enumerate()
        {
            match answer {
                Ok(transaction) => checked.push(transaction),
                Err(row) => {
                    rejected.push(RejectedTransaction {
                        index,
                        transaction_id: transactions
                            .get(index)
                            .and_then(|sent| sent.transaction_id.clone()),
                        rule: row.rule,
                    });
                    quarantined.push(LiveQuarantineRow {
                        rule: row.rule.name().to_owned(),
                        row_json: row.row_json,
                    });
                }
            }
        }
        let rows: Vec<NewLiveTransaction> = checked.iter().map(stored_row).collect();
        let summary = self
            .store
            .ingest_live(
                source.name(),
                &rows,
                &quarantined,
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
                    Ok(LiveStateUpdate {
                        state,
                        last_seen_micros: aggregates.last_seen_micros,
                    })
                },
            )
            .await?;
        Ok(IngestReport {
            accepted: summary.accepted,
            duplicates: summary.duplicates,
            rejected,
            players: summary.players,
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
        let reference = crmbet_etl::live::reference_micros(aggregates.values());
        let mut features: Vec<PlayerFeatures> = aggregates
            .values()
            .map(|player| player.features(reference))
            .collect();
        score_rfm(&mut features);
        Ok(features)
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
