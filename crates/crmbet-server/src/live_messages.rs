//! Live transactions in RabbitMQ messages (see `crmbet_integrations::run_live_intake`):
//! JSON (one transaction object, an array of them, or `{"transactions": [...]}`, with the
//! lake contract's column names) or the protobuf `crmbet.v1.IngestBatchRequest` (content type
//! `application/x-protobuf`). JSON is read like a lake's NDJSON: unknown fields are ignored,
//! numbers and booleans in text columns become their text, and an amount that is not a
//! number (or numeric text) is missing, so the row is quarantined under `amount_invalid`
//! rather than the whole message refused.

use crmbet_app::live_play::MAX_BATCH_TRANSACTIONS;
use crmbet_app::{IntakeSource, LiveTransaction};
use crmbet_integrations::{LiveMessage, MessageVerdicts};
use crmbet_proto::v1::{IngestBatchRequest, LiveTransaction as LiveTransactionMessage};
use prost::Message;
use serde_json::Value;

use crate::live_ingest::LiveIngest;

/// Reads every message of a batch and stores their transactions together; a message that
/// cannot be read gets its reason (and is dead-lettered), the others are stored. An error
/// means nothing of the batch may be acknowledged.
pub async fn ingest_live_messages(
    live_play: &LiveIngest,
    messages: Vec<LiveMessage>,
) -> Result<MessageVerdicts, String> {
    let mut transactions = Vec::new();
    let mut verdicts = Vec::with_capacity(messages.len());
    for message in &messages {
        match read_live_message(message) {
            Ok(read) => {
                transactions.extend(read);
                verdicts.push(Ok(()));
            }
            Err(reason) => verdicts.push(Err(reason)),
        }
    }
    for chunk in transactions.chunks(MAX_BATCH_TRANSACTIONS) {
        live_play
            .ingest(chunk, IntakeSource::Amqp)
            .await
            .map_err(|error| error.to_string())?;
    }
    Ok(verdicts)
}

/// The transactions of one message.
pub fn read_live_message(message: &LiveMessage) -> Result<Vec<LiveTransaction>, String> {
    let protobuf = message.content_type.as_deref().is_some_and(|content_type| {
        matches!(
            content_type,
            "application/x-protobuf" | "application/protobuf" | "application/vnd.google.protobuf"
        )
    });
    if protobuf {
        let batch = IngestBatchRequest::decode(message.body.as_slice())
            .map_err(|error| format!("not a crmbet.v1.IngestBatchRequest: {error}"))?;
        return Ok(batch
            .transactions
            .into_iter()
            .map(live_transaction)
            .collect());
    }
    let json: Value = serde_json::from_slice(&message.body)
        .map_err(|error| format!("neither JSON nor a protobuf content type: {error}"))?;
    let rows = match &json {
        Value::Object(object) => match object.get("transactions") {
            Some(Value::Array(rows)) => rows.iter().collect(),
            Some(_) => return Err("\"transactions\" is not an array".to_owned()),
            None => vec![&json],
        },
        Value::Array(rows) => rows.iter().collect(),
        _ => return Err("a JSON message is an object or an array of objects".to_owned()),
    };
    Ok(rows.into_iter().map(transaction_from_json).collect())
}

/// A transaction message as the use case takes it (gRPC, grpc-web, REST and the queue's
/// protobuf batches).
pub fn live_transaction(message: LiveTransactionMessage) -> LiveTransaction {
    LiveTransaction {
        transaction_id: message.transaction_id,
        user_id: message.user_id,
        occurred_at: message.occurred_at,
        kind: message.r#type,
        amount: message.amount,
        currency: message.currency,
        game_type: message.game_type,
        game_id: message.game_id,
        session_id: message.session_id,
        channel: message.channel,
        country: message.country,
    }
}

/// The message of a transaction, for clients that send them (benchmarks, tests, replays).
pub fn transaction_message(transaction: &LiveTransaction) -> LiveTransactionMessage {
    LiveTransactionMessage {
        transaction_id: transaction.transaction_id.clone(),
        user_id: transaction.user_id.clone(),
        occurred_at: transaction.occurred_at.clone(),
        r#type: transaction.kind.clone(),
        amount: transaction.amount,
        currency: transaction.currency.clone(),
        game_type: transaction.game_type.clone(),
        game_id: transaction.game_id.clone(),
        session_id: transaction.session_id.clone(),
        channel: transaction.channel.clone(),
        country: transaction.country.clone(),
    }
}

fn transaction_from_json(row: &Value) -> LiveTransaction {
    let text = |name: &str| match row.get(name) {
        Some(Value::String(text)) => Some(text.clone()),
        Some(Value::Number(number)) => Some(number.to_string()),
        Some(Value::Bool(flag)) => Some(flag.to_string()),
        _ => None,
    };
    let amount = match row.get("amount") {
        Some(Value::Number(number)) => number.as_f64(),
        Some(Value::String(text)) => text.trim().parse::<f64>().ok(),
        _ => None,
    };
    LiveTransaction {
        transaction_id: text("transaction_id"),
        user_id: text("user_id"),
        occurred_at: text("occurred_at"),
        kind: text("type"),
        amount,
        currency: text("currency"),
        game_type: text("game_type"),
        game_id: text("game_id"),
        session_id: text("session_id"),
        channel: text("channel"),
        country: text("country"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(body: &str) -> LiveMessage {
        LiveMessage {
            content_type: Some("application/json".to_owned()),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn one_object_an_array_or_a_batch_object() {
        let row = r#"{"transaction_id": "t1", "user_id": 42, "type": "bet", "amount": "2.5", "extra": 1}"#;
        for body in [
            row.to_owned(),
            format!("[{row}, {row}]"),
            format!(r#"{{"transactions": [{row}]}}"#),
        ] {
            let read = read_live_message(&json(&body)).expect("readable");
            assert!(!read.is_empty());
            assert_eq!(
                read[0].user_id.as_deref(),
                Some("42"),
                "numbers become text"
            );
            assert_eq!(read[0].amount, Some(2.5), "numeric text is a number");
        }
        let bad_amount = read_live_message(&json(r#"{"transaction_id": "t1", "amount": "lots"}"#))
            .expect("readable");
        assert_eq!(
            bad_amount[0].amount, None,
            "quarantined as amount_invalid later"
        );
    }

    #[test]
    fn unreadable_messages_say_why() {
        for body in ["not json", "42", r#"{"transactions": 3}"#] {
            assert!(read_live_message(&json(body)).is_err(), "{body}");
        }
        let garbage = LiveMessage {
            content_type: Some("application/x-protobuf".to_owned()),
            body: vec![0xff, 0xff, 0xff],
        };
        assert!(read_live_message(&garbage).is_err());
    }

    #[test]
    fn protobuf_batches_are_read() {
        let batch = IngestBatchRequest {
            transactions: vec![crmbet_proto::v1::LiveTransaction {
                transaction_id: Some("t9".to_owned()),
                r#type: Some("deposit".to_owned()),
                amount: Some(10.0),
                ..Default::default()
            }],
        };
        let message = LiveMessage {
            content_type: Some("application/x-protobuf".to_owned()),
            body: batch.encode_to_vec(),
        };
        let read = read_live_message(&message).expect("readable");
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].kind.as_deref(), Some("deposit"));
    }
}
