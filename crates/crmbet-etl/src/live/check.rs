//! The contract rules for one live transaction, in the order the ETL checks them.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{Array, ArrayRef, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::compute::kernels::cast::{CastOptions, cast_with_options};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::contract::{GAME_TYPED, GAME_TYPES, timestamp_type};
use crate::quality::{BLANK_CHARACTERS, QuarantinedRow, Rule};

/// A live transaction as it arrives: the lake contract's columns, any of them missing.
/// `occurred_at` is text (RFC 3339), read by the parser the ETL uses for text timestamps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LiveTransaction {
    pub transaction_id: Option<String>,
    pub user_id: Option<String>,
    pub occurred_at: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub amount: Option<f64>,
    pub currency: Option<String>,
    pub game_type: Option<String>,
    pub game_id: Option<String>,
    pub session_id: Option<String>,
    pub channel: Option<String>,
    pub country: Option<String>,
}

/// The contract's transaction types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransactionKind {
    Bet,
    Win,
    Deposit,
    Withdrawal,
    Bonus,
    Refund,
}

impl TransactionKind {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "bet" => Self::Bet,
            "win" => Self::Win,
            "deposit" => Self::Deposit,
            "withdrawal" => Self::Withdrawal,
            "bonus" => Self::Bonus,
            "refund" => Self::Refund,
            _ => return None,
        })
    }

    /// The contract's name (`bet`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Bet => "bet",
            Self::Win => "win",
            Self::Deposit => "deposit",
            Self::Withdrawal => "withdrawal",
            Self::Bonus => "bonus",
            Self::Refund => "refund",
        }
    }
}

/// A live transaction that passed every rule, typed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckedTransaction {
    pub transaction_id: String,
    pub user_id: String,
    /// Microseconds since the epoch, UTC.
    pub occurred_micros: i64,
    pub kind: TransactionKind,
    pub amount: f64,
    pub currency: String,
    /// An index into [`GAME_TYPES`].
    pub game: Option<u8>,
    pub game_id: Option<String>,
    pub session_id: Option<String>,
    pub channel: Option<String>,
    pub country: Option<String>,
}

impl CheckedTransaction {
    /// The game type's name.
    pub fn game_type(&self) -> Option<&'static str> {
        self.game
            .and_then(|index| GAME_TYPES.get(usize::from(index)).copied())
    }

    /// The transaction as it would arrive, with its time in RFC 3339.
    pub fn to_live(&self) -> LiveTransaction {
        LiveTransaction {
            transaction_id: Some(self.transaction_id.clone()),
            user_id: Some(self.user_id.clone()),
            occurred_at: DateTime::from_timestamp_micros(self.occurred_micros)
                .map(|moment| moment.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
            kind: Some(self.kind.name().to_owned()),
            amount: Some(self.amount),
            currency: Some(self.currency.clone()),
            game_type: self.game_type().map(str::to_owned),
            game_id: self.game_id.clone(),
            session_id: self.session_id.clone(),
            channel: self.channel.clone(),
            country: self.country.clone(),
        }
    }
}

/// Checks one transaction; `source` names where it came from in quarantine (`live:rest`).
pub fn check(
    transaction: &LiveTransaction,
    now: DateTime<Utc>,
    source: &str,
) -> Result<CheckedTransaction, QuarantinedRow> {
    let moment = parse_timestamps(std::slice::from_ref(transaction))
        .into_iter()
        .next()
        .flatten();
    checked(transaction, moment, now.timestamp_micros())
        .map_err(|rule| quarantined(transaction, rule, source))
}

/// Checks a batch of transactions, one answer each in order: the timestamps are parsed
/// in one pass.
pub fn check_all(
    transactions: &[LiveTransaction],
    now: DateTime<Utc>,
    source: &str,
) -> Vec<Result<CheckedTransaction, QuarantinedRow>> {
    let moments = parse_timestamps(transactions);
    let now_micros = now.timestamp_micros();
    transactions
        .iter()
        .zip(moments)
        .map(|(transaction, moment)| {
            checked(transaction, moment, now_micros)
                .map_err(|rule| quarantined(transaction, rule, source))
        })
        .collect()
}

/// Text timestamps through Arrow's cast, as the ETL's `try_cast` reads them; `None` where
/// a value is missing or does not parse.
fn parse_timestamps(transactions: &[LiveTransaction]) -> Vec<Option<i64>> {
    let text: ArrayRef = Arc::new(StringArray::from_iter(
        transactions
            .iter()
            .map(|transaction| transaction.occurred_at.as_deref()),
    ));
    let options = CastOptions {
        safe: true,
        ..CastOptions::default()
    };
    let parsed = cast_with_options(&text, &timestamp_type(), &options);
    let Some(parsed) = parsed.ok().and_then(|array| {
        array
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .cloned()
    }) else {
        return vec![None; transactions.len()];
    };
    (0..parsed.len())
        .map(|row| parsed.is_valid(row).then(|| parsed.value(row)))
        .collect()
}

/// The first rule `transaction` breaks, or the typed transaction.
fn checked(
    transaction: &LiveTransaction,
    moment: Option<i64>,
    now_micros: i64,
) -> Result<CheckedTransaction, Rule> {
    let transaction_id = match transaction.transaction_id.as_deref() {
        Some(id) if !id.is_empty() => id,
        _ => return Err(Rule::TransactionIdMissing),
    };
    let user_id = match transaction.user_id.as_deref() {
        Some(id) if !id.trim_matches(|c| BLANK_CHARACTERS.contains(c)).is_empty() => id,
        _ => return Err(Rule::UserIdMissing),
    };
    let kind = transaction
        .kind
        .as_deref()
        .and_then(TransactionKind::parse)
        .ok_or(Rule::TypeUnknown)?;
    let amount = match transaction.amount {
        // Finite and not negative; -0.0 passes, as in the ETL's range check.
        Some(amount) if (-0.0..=f64::MAX).contains(&amount) => amount,
        _ => return Err(Rule::AmountInvalid),
    };
    let currency = match transaction.currency.as_deref() {
        Some(code) if code.len() == 3 && code.bytes().all(|byte| byte.is_ascii_uppercase()) => code,
        _ => return Err(Rule::CurrencyInvalid),
    };
    let occurred_micros = moment.ok_or(Rule::OccurredAtInvalid)?;
    if occurred_micros > now_micros {
        return Err(Rule::OccurredAtFuture);
    }
    let game = match transaction.game_type.as_deref() {
        Some(game) => Some(
            GAME_TYPES
                .iter()
                .position(|known| *known == game)
                .ok_or(Rule::GameTypeInvalid)?,
        ),
        None => None,
    };
    if game.is_none() && GAME_TYPED.contains(&kind.name()) {
        return Err(Rule::GameTypeMissing);
    }
    Ok(CheckedTransaction {
        transaction_id: transaction_id.to_owned(),
        user_id: user_id.to_owned(),
        occurred_micros,
        kind,
        amount,
        currency: currency.to_owned(),
        game: game.and_then(|index| u8::try_from(index).ok()),
        game_id: transaction.game_id.clone(),
        session_id: transaction.session_id.clone(),
        channel: transaction.channel.clone(),
        country: transaction.country.clone(),
    })
}

/// The quarantine entry of a transaction that broke `rule`: its columns as sent, absent
/// ones left out.
fn quarantined(transaction: &LiveTransaction, rule: Rule, source: &str) -> QuarantinedRow {
    let row_json = match serde_json::to_value(transaction) {
        Ok(Value::Object(columns)) => {
            let present: Map<String, Value> = columns
                .into_iter()
                .filter(|(_, value)| !value.is_null())
                .collect();
            Value::Object(present).to_string()
        }
        _ => "{}".to_owned(),
    };
    QuarantinedRow {
        rule,
        source_object: source.to_owned(),
        row_json,
    }
}
