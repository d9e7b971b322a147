//! The contract rules a row must pass, as one DataFusion CASE expression, and the
//! quarantine that keeps the rows that break them.
//!
//! The rules and their order are those of the Python peer (`../shared/bench/peer/`):
//! a row is quarantined under the first rule it breaks, and never stops the run.

use std::fmt;

use chrono::{DateTime, Utc};
use datafusion::common::ScalarValue;
use datafusion::functions::regex::expr_fn::regexp_like;
use datafusion::functions::string::expr_fn::btrim;
use datafusion::logical_expr::{Expr, ident, lit, not, when};
use serde::Serialize;

use crate::contract::{
    AMOUNT, CURRENCY, GAME_TYPE, GAME_TYPED, GAME_TYPES, OCCURRED_AT, TRANSACTION_ID,
    TRANSACTION_TYPES, TYPE, USER_ID,
};

/// The name of the column that holds the first broken rule (null for a valid row).
pub(crate) const RULE_COLUMN: &str = "rule";

/// Characters a blank user id may consist of (ASCII whitespace, as Python's `str.strip`).
pub(crate) const BLANK_CHARACTERS: &str = " \t\n\r\u{b}\u{c}";

/// A contract rule; the declaration order is the order rules are checked in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// `transaction_id` is null or empty.
    TransactionIdMissing,
    /// `user_id` is null or blank.
    UserIdMissing,
    /// `type` is null or not one of the contract's transaction types.
    TypeUnknown,
    /// `amount` is null, not a number, infinite or negative.
    AmountInvalid,
    /// `currency` is not three capital letters.
    CurrencyInvalid,
    /// `occurred_at` is missing or not a timestamp (RFC 3339 in text formats).
    OccurredAtInvalid,
    /// `occurred_at` is after the run's start.
    OccurredAtFuture,
    /// `game_type` is set but not one of the contract's game types.
    GameTypeInvalid,
    /// A bet, win or refund without a `game_type`.
    GameTypeMissing,
}

impl Rule {
    /// Every rule, in the order they are checked.
    pub const ALL: [Rule; 9] = [
        Rule::TransactionIdMissing,
        Rule::UserIdMissing,
        Rule::TypeUnknown,
        Rule::AmountInvalid,
        Rule::CurrencyInvalid,
        Rule::OccurredAtInvalid,
        Rule::OccurredAtFuture,
        Rule::GameTypeInvalid,
        Rule::GameTypeMissing,
    ];

    /// The rule's name as stored in quarantine (`amount_invalid`).
    pub fn name(self) -> &'static str {
        match self {
            Rule::TransactionIdMissing => "transaction_id_missing",
            Rule::UserIdMissing => "user_id_missing",
            Rule::TypeUnknown => "type_unknown",
            Rule::AmountInvalid => "amount_invalid",
            Rule::CurrencyInvalid => "currency_invalid",
            Rule::OccurredAtInvalid => "occurred_at_invalid",
            Rule::OccurredAtFuture => "occurred_at_future",
            Rule::GameTypeInvalid => "game_type_invalid",
            Rule::GameTypeMissing => "game_type_missing",
        }
    }

    /// The rule called `name`, if there is one.
    ///
    /// ```
    /// use crmbet_etl::Rule;
    /// assert_eq!(Rule::from_name("amount_invalid"), Some(Rule::AmountInvalid));
    /// assert_eq!(Rule::from_name("nonsense"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|rule| rule.name() == name)
    }

    /// Whether `row` (the normalised contract columns) breaks this rule, as an expression.
    fn broken(self, now: DateTime<Utc>) -> Expr {
        let column = ident;
        match self {
            Rule::TransactionIdMissing => column(TRANSACTION_ID)
                .is_null()
                .or(column(TRANSACTION_ID).eq(lit(""))),
            Rule::UserIdMissing => {
                column(USER_ID)
                    .is_null()
                    .or(btrim(vec![column(USER_ID), lit(BLANK_CHARACTERS)]).eq(lit("")))
            }
            Rule::TypeUnknown => column(TYPE)
                .is_null()
                .or(column(TYPE).in_list(literals(&TRANSACTION_TYPES), true)),
            // A range check that holds for finite non-negative numbers (-0.0 included) and
            // fails for NaN and both infinities, whether floats compare by IEEE 754 or by
            // total order (Arrow's kernels).
            Rule::AmountInvalid => column(AMOUNT).is_null().or(not(column(AMOUNT)
                .gt_eq(lit(-0.0_f64))
                .and(column(AMOUNT).lt_eq(lit(f64::MAX))))),
            Rule::CurrencyInvalid => column(CURRENCY).is_null().or(not(regexp_like(
                column(CURRENCY),
                lit("^[A-Z]{3}$"),
                None,
            ))),
            Rule::OccurredAtInvalid => column(OCCURRED_AT).is_null(),
            Rule::OccurredAtFuture => column(OCCURRED_AT).gt(lit(
                ScalarValue::TimestampMicrosecond(Some(now.timestamp_micros()), Some("UTC".into())),
            )),
            Rule::GameTypeInvalid => column(GAME_TYPE)
                .is_not_null()
                .and(column(GAME_TYPE).in_list(literals(&GAME_TYPES), true)),
            Rule::GameTypeMissing => column(TYPE)
                .in_list(literals(&GAME_TYPED), false)
                .and(column(GAME_TYPE).is_null()),
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

fn literals(values: &[&str]) -> Vec<Expr> {
    values.iter().map(|value| lit(*value)).collect()
}

/// The name of the first rule a row breaks, or null: one CASE over the normalised columns.
/// `now` is the run's start; later timestamps break [`Rule::OccurredAtFuture`].
pub(crate) fn first_broken_rule(now: DateTime<Utc>) -> datafusion::error::Result<Expr> {
    let mut rules = Rule::ALL.into_iter();
    let Some(first) = rules.next() else {
        return Ok(lit(ScalarValue::Utf8(None)));
    };
    let mut case = when(first.broken(now), lit(first.name()));
    for rule in rules {
        case = case.when(rule.broken(now), lit(rule.name()));
    }
    case.end()
}

/// A row that broke a contract rule, kept for the quarantine table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuarantinedRow {
    /// The first rule the row broke.
    pub rule: Rule,
    /// The key of the lake object the row came from.
    pub source_object: String,
    /// The row's contract columns as a JSON object, as read (text timestamps and amounts
    /// stay as written); null columns are left out.
    pub row_json: String,
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{
        Array, ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
    };
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::prelude::SessionContext;

    use super::*;
    use crate::contract::{column_type, timestamp_type};

    /// One row per case: the columns the rules read, and the rule it must break (if any).
    struct Case {
        transaction_id: Option<&'static str>,
        user_id: Option<&'static str>,
        kind: Option<&'static str>,
        amount: Option<f64>,
        currency: Option<&'static str>,
        occurred_at_micros: Option<i64>,
        game_type: Option<&'static str>,
        expected: Option<Rule>,
    }

    const NOW_MICROS: i64 = 1_800_000_000_000_000;

    fn valid() -> Case {
        Case {
            transaction_id: Some("t1"),
            user_id: Some("u1"),
            kind: Some("bet"),
            amount: Some(1.5),
            currency: Some("EUR"),
            occurred_at_micros: Some(NOW_MICROS - 1),
            game_type: Some("slots"),
            expected: None,
        }
    }

    fn cases() -> Vec<Case> {
        vec![
            valid(),
            Case {
                amount: Some(0.0),
                ..valid()
            },
            Case {
                amount: Some(-0.0),
                ..valid()
            },
            Case {
                kind: Some("deposit"),
                game_type: None,
                ..valid()
            },
            Case {
                occurred_at_micros: Some(NOW_MICROS),
                ..valid()
            },
            Case {
                transaction_id: None,
                expected: Some(Rule::TransactionIdMissing),
                ..valid()
            },
            Case {
                transaction_id: Some(""),
                expected: Some(Rule::TransactionIdMissing),
                ..valid()
            },
            Case {
                transaction_id: None,
                user_id: None,
                expected: Some(Rule::TransactionIdMissing),
                ..valid()
            },
            Case {
                user_id: None,
                expected: Some(Rule::UserIdMissing),
                ..valid()
            },
            Case {
                user_id: Some(" \t"),
                expected: Some(Rule::UserIdMissing),
                ..valid()
            },
            Case {
                kind: Some("chargeback"),
                expected: Some(Rule::TypeUnknown),
                ..valid()
            },
            Case {
                kind: Some("Bet"),
                expected: Some(Rule::TypeUnknown),
                ..valid()
            },
            Case {
                kind: None,
                expected: Some(Rule::TypeUnknown),
                ..valid()
            },
            Case {
                amount: None,
                expected: Some(Rule::AmountInvalid),
                ..valid()
            },
            Case {
                amount: Some(-0.01),
                expected: Some(Rule::AmountInvalid),
                ..valid()
            },
            Case {
                amount: Some(f64::NAN),
                expected: Some(Rule::AmountInvalid),
                ..valid()
            },
            Case {
                amount: Some(f64::INFINITY),
                expected: Some(Rule::AmountInvalid),
                ..valid()
            },
            Case {
                amount: Some(f64::NEG_INFINITY),
                expected: Some(Rule::AmountInvalid),
                ..valid()
            },
            Case {
                amount: Some(-1.0),
                currency: Some("eur"),
                expected: Some(Rule::AmountInvalid),
                ..valid()
            },
            Case {
                currency: Some("eur"),
                expected: Some(Rule::CurrencyInvalid),
                ..valid()
            },
            Case {
                currency: Some("EURO"),
                expected: Some(Rule::CurrencyInvalid),
                ..valid()
            },
            Case {
                currency: Some("E1R"),
                expected: Some(Rule::CurrencyInvalid),
                ..valid()
            },
            Case {
                currency: Some("€€€"),
                expected: Some(Rule::CurrencyInvalid),
                ..valid()
            },
            Case {
                currency: None,
                expected: Some(Rule::CurrencyInvalid),
                ..valid()
            },
            Case {
                occurred_at_micros: None,
                expected: Some(Rule::OccurredAtInvalid),
                ..valid()
            },
            Case {
                occurred_at_micros: Some(NOW_MICROS + 1),
                expected: Some(Rule::OccurredAtFuture),
                ..valid()
            },
            Case {
                game_type: Some("poker"),
                expected: Some(Rule::GameTypeInvalid),
                ..valid()
            },
            Case {
                kind: Some("deposit"),
                game_type: Some("poker"),
                expected: Some(Rule::GameTypeInvalid),
                ..valid()
            },
            Case {
                game_type: None,
                expected: Some(Rule::GameTypeMissing),
                ..valid()
            },
            Case {
                kind: Some("refund"),
                game_type: None,
                expected: Some(Rule::GameTypeMissing),
                ..valid()
            },
        ]
    }

    #[tokio::test]
    async fn first_broken_rule_follows_the_contract_in_order() {
        let cases = cases();
        let text = |values: Vec<Option<&str>>| -> ArrayRef {
            let array = StringArray::from(values);
            datafusion::arrow::compute::cast(&array, &column_type(TRANSACTION_ID)).unwrap()
        };
        let schema = Arc::new(Schema::new(vec![
            Field::new(TRANSACTION_ID, column_type(TRANSACTION_ID), true),
            Field::new(USER_ID, column_type(USER_ID), true),
            Field::new(TYPE, column_type(TYPE), true),
            Field::new(AMOUNT, DataType::Float64, true),
            Field::new(CURRENCY, column_type(CURRENCY), true),
            Field::new(OCCURRED_AT, timestamp_type(), true),
            Field::new(GAME_TYPE, column_type(GAME_TYPE), true),
        ]));
        let times: TimestampMicrosecondArray =
            cases.iter().map(|case| case.occurred_at_micros).collect();
        let batch = RecordBatch::try_new(
            schema,
            vec![
                text(cases.iter().map(|case| case.transaction_id).collect()),
                text(cases.iter().map(|case| case.user_id).collect()),
                text(cases.iter().map(|case| case.kind).collect()),
                Arc::new(
                    cases
                        .iter()
                        .map(|case| case.amount)
                        .collect::<Float64Array>(),
                ),
                text(cases.iter().map(|case| case.currency).collect()),
                Arc::new(times.with_timezone("UTC")),
                text(cases.iter().map(|case| case.game_type).collect()),
            ],
        )
        .unwrap();
        let now = DateTime::from_timestamp_micros(NOW_MICROS).unwrap();
        let frame = SessionContext::new()
            .read_batch(batch)
            .unwrap()
            .select(vec![first_broken_rule(now).unwrap().alias(RULE_COLUMN)])
            .unwrap();
        let batches = frame.collect().await.unwrap();
        let rules: Vec<Option<Rule>> = batches
            .iter()
            .flat_map(|batch| {
                let column =
                    datafusion::arrow::compute::cast(batch.column(0), &DataType::Utf8).unwrap();
                let names = column
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .unwrap()
                    .clone();
                (0..names.len())
                    .map(|row| {
                        names
                            .is_valid(row)
                            .then(|| Rule::from_name(names.value(row)).unwrap())
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        for (index, (case, rule)) in cases.iter().zip(&rules).enumerate() {
            assert_eq!(*rule, case.expected, "case {index}");
        }
        assert_eq!(rules.len(), cases.len());
    }
}
