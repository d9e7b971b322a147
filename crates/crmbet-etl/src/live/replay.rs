//! A lake's rows as live transactions, for replaying a lake through a live intake (tests,
//! `crmbet bench ingest`, backfills): read by the ETL's own readers, in the ETL's order.

use std::path::Path;

use chrono::{DateTime, SecondsFormat};
use datafusion::arrow::array::{
    Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::compute::kernels::cast::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::prelude::{SessionConfig, SessionContext};

use super::check::LiveTransaction;
use crate::contract::{
    AMOUNT, CHANNEL, COUNTRY, CURRENCY, GAME_ID, GAME_TYPE, OCCURRED_AT, SESSION_ID,
    TRANSACTION_ID, TYPE, USER_ID,
};
use crate::error::{Error, Result};
use crate::lake::LakeSource;
use crate::read::{OCCURRED_AT_SOURCE, read_object};

/// Every row of the local lake at `root`, objects in key order and rows in file order (the
/// order the ETL deduplicates in), as live transactions. A timestamp written as text is
/// passed on as written, so the live check parses it as the ETL did; a typed one as RFC 3339
/// with microseconds. Fails on the first object that cannot be read; objects of an unknown
/// extension are skipped, as the ETL reports them without reading them.
pub async fn lake_transactions(root: &Path) -> Result<Vec<LiveTransaction>> {
    let lake = LakeSource::local(root);
    // One partition per object keeps rows in file order.
    let context = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(1));
    let mut transactions = Vec::new();
    for object in lake.list().await? {
        let Some(format) = object.format else {
            continue;
        };
        let failed = |reason: String| Error::Replay {
            key: object.key().to_owned(),
            reason,
        };
        let frame = read_object(&context, &lake, &object, format)
            .await
            .map_err(|failure| failed(failure.0))?;
        let batches = frame
            .collect()
            .await
            .map_err(|error| failed(error.to_string()))?;
        for batch in &batches {
            append_rows(batch, &mut transactions).map_err(failed)?;
        }
    }
    Ok(transactions)
}

fn append_rows(
    batch: &RecordBatch,
    transactions: &mut Vec<LiveTransaction>,
) -> std::result::Result<(), String> {
    let text = |name: &str| -> std::result::Result<StringArray, String> {
        let array = column(batch, name)?;
        let array: ArrayRef = cast(array.as_ref(), &DataType::Utf8).map_err(|e| e.to_string())?;
        array
            .as_any()
            .downcast_ref::<StringArray>()
            .cloned()
            .ok_or_else(|| format!("column {name} is not text"))
    };
    let transaction_id = text(TRANSACTION_ID)?;
    let user_id = text(USER_ID)?;
    let kind = text(TYPE)?;
    let currency = text(CURRENCY)?;
    let game_type = text(GAME_TYPE)?;
    let game_id = text(GAME_ID)?;
    let session_id = text(SESSION_ID)?;
    let channel = text(CHANNEL)?;
    let country = text(COUNTRY)?;
    let occurred_text = if batch.column_by_name(OCCURRED_AT_SOURCE).is_some() {
        Some(text(OCCURRED_AT_SOURCE)?)
    } else {
        None
    };
    let occurred_micros = {
        let array = cast(column(batch, OCCURRED_AT)?.as_ref(), &DataType::Int64)
            .map_err(|error| error.to_string())?;
        array
            .as_any()
            .downcast_ref::<Int64Array>()
            .cloned()
            .ok_or_else(|| "occurred_at is not a timestamp".to_owned())?
    };
    let amount = {
        let array = cast(column(batch, AMOUNT)?.as_ref(), &DataType::Float64)
            .map_err(|error| error.to_string())?;
        array
            .as_any()
            .downcast_ref::<Float64Array>()
            .cloned()
            .ok_or_else(|| "amount is not a number".to_owned())?
    };
    for row in 0..batch.num_rows() {
        let value = |array: &StringArray| array.is_valid(row).then(|| array.value(row).to_owned());
        let occurred_at = match &occurred_text {
            Some(written) => value(written),
            None => occurred_micros
                .is_valid(row)
                .then(|| occurred_micros.value(row))
                .and_then(DateTime::from_timestamp_micros)
                .map(|moment| moment.to_rfc3339_opts(SecondsFormat::Micros, true)),
        };
        transactions.push(LiveTransaction {
            transaction_id: value(&transaction_id),
            user_id: value(&user_id),
            occurred_at,
            kind: value(&kind),
            amount: amount.is_valid(row).then(|| amount.value(row)),
            currency: value(&currency),
            game_type: value(&game_type),
            game_id: value(&game_id),
            session_id: value(&session_id),
            channel: value(&channel),
            country: value(&country),
        });
    }
    Ok(())
}

fn column(batch: &RecordBatch, name: &str) -> std::result::Result<ArrayRef, String> {
    batch
        .column_by_name(name)
        .cloned()
        .ok_or_else(|| format!("column {name} is missing"))
}
