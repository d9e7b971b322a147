//! The lake contract in code: column names, their normalised types and the allowed values
//! (DESIGN.md, "The lake contract").

use datafusion::arrow::datatypes::{DataType, TimeUnit};

/// The dedupe key.
pub const TRANSACTION_ID: &str = "transaction_id";
/// The player's id at the operator.
pub const USER_ID: &str = "user_id";
/// When the money moved, UTC.
pub const OCCURRED_AT: &str = "occurred_at";
/// One of [`TRANSACTION_TYPES`].
pub const TYPE: &str = "type";
/// Non-negative and finite, in the reporting currency.
pub const AMOUNT: &str = "amount";
/// ISO 4217, three capital letters.
pub const CURRENCY: &str = "currency";
/// One of [`GAME_TYPES`]; set for [`GAME_TYPED`] rows.
pub const GAME_TYPE: &str = "game_type";
/// The game's id, free text.
pub const GAME_ID: &str = "game_id";
/// The session the row belongs to; deposits open one, withdrawals close it.
pub const SESSION_ID: &str = "session_id";
/// web, mobile or app.
pub const CHANNEL: &str = "channel";
/// ISO 3166-1 alpha-2.
pub const COUNTRY: &str = "country";

/// Every contract column, in contract order.
pub const CONTRACT_COLUMNS: [&str; 11] = [
    TRANSACTION_ID,
    USER_ID,
    OCCURRED_AT,
    TYPE,
    AMOUNT,
    CURRENCY,
    GAME_TYPE,
    GAME_ID,
    SESSION_ID,
    CHANNEL,
    COUNTRY,
];

/// Columns an object must have to be read at all; the others may be absent (all null).
pub const REQUIRED_COLUMNS: [&str; 6] =
    [TRANSACTION_ID, USER_ID, OCCURRED_AT, TYPE, AMOUNT, CURRENCY];

/// The allowed values of `type`.
pub const TRANSACTION_TYPES: [&str; 6] = ["bet", "win", "deposit", "withdrawal", "bonus", "refund"];

/// The allowed values of `game_type`, in the order ties of the favourite game are broken.
pub const GAME_TYPES: [&str; 6] = ["crash", "slots", "live_casino", "sports", "table", "other"];

/// Transaction types that must name a game type.
pub const GAME_TYPED: [&str; 3] = ["bet", "win", "refund"];

/// The type text columns are normalised to (DataFusion reads Parquet strings as views).
pub fn text_type() -> DataType {
    DataType::Utf8View
}

/// The type `occurred_at` is normalised to: microseconds since the epoch, UTC.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// The type of a contract column after normalisation.
pub fn column_type(column: &str) -> DataType {
    match column {
        OCCURRED_AT => timestamp_type(),
        AMOUNT => DataType::Float64,
        _ => text_type(),
    }
}
