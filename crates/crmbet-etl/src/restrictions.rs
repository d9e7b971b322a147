//! The operator's snapshot of players' restrictions: the objects under `<lake>/players/`.
//!
//! The folder is the operator's current view of who is self-excluded, blocked or opted out
//! of marketing. It is small next to the transactions, so every run reads it whole, with no
//! watermark: a snapshot that changed is simply read again. Objects are read one at a time
//! in key order, each in one partition, so "the last row of a player wins" means the last
//! by (object key, row in the object). A row that breaks a rule is rejected with the rule's
//! name and counted; an object that cannot be read is reported like a failed transactions
//! object and contributes no row, so a half-read file never lifts a restriction.
//!
//! Applying the snapshot to the database is the store's job (`crmbet-store`); this module
//! only reads and validates.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::compute::kernels::cast::cast as cast_array;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::{Expr, cast, ident, lit};
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;
use serde::Serialize;

use crate::contract::timestamp_type;
use crate::error::Result;
use crate::lake::{LakeObject, LakeSource, ObjectFormat, PLAYERS_FOLDER};
use crate::read::{ReadFailure, is_text, open_object};
use crate::run::FailedObject;

/// The player's id at the operator; required.
pub const RESTRICTION_USER_ID: &str = "user_id";
/// The flag columns, in the order a row's rules are checked; a missing one means false.
pub const RESTRICTION_FLAGS: [&str; 3] = ["self_excluded", "blocked", "marketing_opt_out"];
/// When the operator's system last changed the player's flags; optional.
pub const RESTRICTION_UPDATED_AT: &str = "updated_at";

/// A rule a row of the players snapshot must pass; a row that breaks one is rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RestrictionRule {
    /// `user_id` is null or blank.
    UserIdMissing,
    /// `self_excluded` is not true/false, 1/0 or yes/no.
    SelfExcludedInvalid,
    /// `blocked` is not true/false, 1/0 or yes/no.
    BlockedInvalid,
    /// `marketing_opt_out` is not true/false, 1/0 or yes/no.
    MarketingOptOutInvalid,
    /// `updated_at` is set but not a timestamp (RFC 3339 in text formats).
    UpdatedAtInvalid,
}

impl RestrictionRule {
    /// The rule's name in reports (`blocked_invalid`).
    pub fn name(self) -> &'static str {
        match self {
            Self::UserIdMissing => "user_id_missing",
            Self::SelfExcludedInvalid => "self_excluded_invalid",
            Self::BlockedInvalid => "blocked_invalid",
            Self::MarketingOptOutInvalid => "marketing_opt_out_invalid",
            Self::UpdatedAtInvalid => "updated_at_invalid",
        }
    }

    /// The rule a flag column's value breaks when it does not parse.
    fn invalid_flag(column: &str) -> Self {
        match column {
            "self_excluded" => Self::SelfExcludedInvalid,
            "blocked" => Self::BlockedInvalid,
            _ => Self::MarketingOptOutInvalid,
        }
    }
}

/// One player's flags as the snapshot states them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LakeRestrictions {
    pub user_id: String,
    pub self_excluded: bool,
    pub blocked: bool,
    pub marketing_opt_out: bool,
    /// When the operator's system changed them, if the snapshot says.
    pub updated_at: Option<DateTime<Utc>>,
}

/// A row of the snapshot that broke a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectedRestrictionRow {
    pub rule: RestrictionRule,
    /// The key of the object the row came from.
    pub source_object: String,
    /// The row's number in its object, from 1 (the header of a CSV file is not counted).
    pub row_number: u64,
    /// The row's user id as written, if any.
    pub user_id: Option<String>,
    /// The value that broke the rule, as text.
    pub value: Option<String>,
}

/// What reading `<lake>/players/` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RestrictionsSnapshot {
    /// Objects under `players/`.
    pub objects_listed: u64,
    /// Objects read to the end.
    pub objects_read: u64,
    /// Objects that could not be read, with the reason; none of their rows is used.
    pub failed_objects: Vec<FailedObject>,
    /// Rows of the objects read.
    pub rows_read: u64,
    /// Rows that broke a rule.
    pub rejected: Vec<RejectedRestrictionRow>,
    /// Valid rows replaced by a later row of the same player.
    pub duplicates: u64,
    /// The flags per player, the last valid row of each, sorted by user id.
    #[serde(skip)]
    pub players: Vec<LakeRestrictions>,
}

impl RestrictionsSnapshot {
    /// How many rows were rejected.
    pub fn rows_rejected(&self) -> u64 {
        self.rejected.len() as u64
    }

    /// Rejected rows per rule name (rules with none are left out).
    pub fn rejected_by_rule(&self) -> BTreeMap<&'static str, u64> {
        let mut counts = BTreeMap::new();
        for row in &self.rejected {
            *counts.entry(row.rule.name()).or_insert(0) += 1;
        }
        counts
    }
}

/// Reads the whole `players/` folder of `lake`; S3 objects are downloaded under `scratch`.
///
/// Fails only when the folder cannot be listed; bad objects and rows are reported in the
/// snapshot.
pub async fn read_restrictions_snapshot(
    lake: &LakeSource,
    scratch: &Path,
) -> Result<RestrictionsSnapshot> {
    let objects = lake.list_folder(PLAYERS_FOLDER).await?;
    let context = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(1));
    let mut snapshot = RestrictionsSnapshot {
        objects_listed: objects.len() as u64,
        ..RestrictionsSnapshot::default()
    };
    let mut latest: BTreeMap<String, LakeRestrictions> = BTreeMap::new();
    for (ordinal, object) in objects.into_iter().enumerate() {
        let result = match object.format {
            None => Err(ReadFailure(format!(
                "unknown extension; the lake holds {}",
                ObjectFormat::KNOWN_EXTENSIONS
            ))),
            Some(format) => {
                let task = read_object_restrictions(
                    context.clone(),
                    lake.clone(),
                    object.clone(),
                    format,
                    scratch.join(format!("players-{ordinal:08}.download")),
                );
                // A reader that panics on a malformed file fails that object only.
                tokio::spawn(task).await.unwrap_or_else(|error| {
                    Err(ReadFailure(format!("the reader crashed: {error}")))
                })
            }
        };
        match result {
            Ok(read) => {
                snapshot.objects_read += 1;
                snapshot.rows_read += read.rows_read;
                snapshot.rejected.extend(read.rejected);
                for row in read.rows {
                    if latest.insert(row.user_id.clone(), row).is_some() {
                        snapshot.duplicates += 1;
                    }
                }
            }
            Err(ReadFailure(reason)) => snapshot.failed_objects.push(FailedObject {
                fingerprint: object.fingerprint,
                reason,
            }),
        }
    }
    snapshot.players = latest.into_values().collect();
    Ok(snapshot)
}

/// The rows of one object, in file order.
#[derive(Debug, Default)]
struct ObjectRestrictions {
    rows_read: u64,
    rows: Vec<LakeRestrictions>,
    rejected: Vec<RejectedRestrictionRow>,
}

async fn read_object_restrictions(
    context: SessionContext,
    lake: LakeSource,
    object: LakeObject,
    format: ObjectFormat,
    download_folder: PathBuf,
) -> Result<ObjectRestrictions, ReadFailure> {
    // An S3 object is downloaded first and removed when `copy` drops, after the scan.
    let copy = lake
        .local_copy(&object, &download_folder)
        .await
        .map_err(ReadFailure)?;
    let frame = open_object(&context, &copy.lake, &copy.object, format).await?;
    let frame = project_restriction_columns(frame)?;
    let mut stream = frame
        .execute_stream()
        .await
        .map_err(|error| ReadFailure::from_datafusion("cannot read", &error))?;
    let mut read = ObjectRestrictions::default();
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|error| ReadFailure::from_datafusion("cannot read", &error))?;
        parse_batch(&batch, object.key(), &mut read)?;
    }
    Ok(read)
}

/// Projects `frame` onto user_id, the flags (as text) and updated_at; fails when user_id
/// is missing or a column has a type that can never hold its values.
fn project_restriction_columns(frame: DataFrame) -> Result<DataFrame, ReadFailure> {
    let schema = frame.schema().clone();
    let source_type = |column: &str| {
        schema
            .field_with_unqualified_name(column)
            .ok()
            .map(|field| field.data_type().clone())
    };
    let Some(user_id_type) = source_type(RESTRICTION_USER_ID) else {
        return Err(ReadFailure(format!(
            "missing required column {RESTRICTION_USER_ID}"
        )));
    };
    let as_text = |column: &str, source: &DataType, what: &str| {
        if is_text(source) || source.is_integer() || *source == DataType::Boolean {
            return Ok(cast(ident(column), DataType::Utf8));
        }
        if *source == DataType::Null {
            return Ok(lit(ScalarValue::Utf8(None)));
        }
        Err(ReadFailure(format!(
            "column {column} has type {source}, which cannot be read as {what}"
        )))
    };
    let mut projection =
        vec![as_text(RESTRICTION_USER_ID, &user_id_type, "text")?.alias(RESTRICTION_USER_ID)];
    for flag in RESTRICTION_FLAGS {
        let expression = match source_type(flag) {
            Some(source) => as_text(flag, &source, "a flag (true/false, 1/0, yes/no)")?,
            None => lit(ScalarValue::Utf8(None)),
        };
        projection.push(expression.alias(flag));
    }
    projection.push(updated_at_expression(source_type(RESTRICTION_UPDATED_AT))?);
    frame
        .select(projection)
        .map_err(|error| ReadFailure::from_datafusion("cannot select columns", &error))
}

/// `updated_at` as a UTC timestamp when the source has one, else as text parsed per row.
fn updated_at_expression(source: Option<DataType>) -> Result<Expr, ReadFailure> {
    let expression = match source {
        None | Some(DataType::Null) => lit(ScalarValue::Utf8(None)),
        Some(text) if is_text(&text) => cast(ident(RESTRICTION_UPDATED_AT), DataType::Utf8),
        Some(DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64) => {
            cast(ident(RESTRICTION_UPDATED_AT), timestamp_type())
        }
        Some(other) => {
            return Err(ReadFailure(format!(
                "column {RESTRICTION_UPDATED_AT} has type {other}, which cannot be read as a \
                 timestamp (RFC 3339 in text formats)"
            )));
        }
    };
    Ok(expression.alias(RESTRICTION_UPDATED_AT))
}

fn parse_batch(
    batch: &RecordBatch,
    key: &str,
    read: &mut ObjectRestrictions,
) -> Result<(), ReadFailure> {
    let user_ids = text_column(batch, RESTRICTION_USER_ID)?;
    let flags = RESTRICTION_FLAGS
        .iter()
        .map(|flag| text_column(batch, flag))
        .collect::<Result<Vec<_>, _>>()?;
    let updated_at = UpdatedAtColumn::of(batch)?;
    for row in 0..batch.num_rows() {
        read.rows_read += 1;
        let row_number = read.rows_read;
        let user_id = value(&user_ids, row);
        let reject = |rule, value: Option<&str>| RejectedRestrictionRow {
            rule,
            source_object: key.to_owned(),
            row_number,
            user_id: user_id.map(str::to_owned),
            value: value.map(str::to_owned),
        };
        let Some(user_id) = user_id.filter(|id| !id.trim().is_empty()) else {
            read.rejected
                .push(reject(RestrictionRule::UserIdMissing, user_id));
            continue;
        };
        let mut parsed = [false; 3];
        let mut broken = None;
        for ((flag, column), slot) in RESTRICTION_FLAGS.iter().zip(&flags).zip(&mut parsed) {
            let written = value(column, row);
            match parse_flag(written) {
                Some(flag_value) => *slot = flag_value,
                None => {
                    broken = Some(reject(RestrictionRule::invalid_flag(flag), written));
                    break;
                }
            }
        }
        if let Some(rejected) = broken {
            read.rejected.push(rejected);
            continue;
        }
        let updated_at = match updated_at.at(row) {
            Ok(updated_at) => updated_at,
            Err(written) => {
                read.rejected
                    .push(reject(RestrictionRule::UpdatedAtInvalid, Some(&written)));
                continue;
            }
        };
        let [self_excluded, blocked, marketing_opt_out] = parsed;
        read.rows.push(LakeRestrictions {
            user_id: user_id.to_owned(),
            self_excluded,
            blocked,
            marketing_opt_out,
            updated_at,
        });
    }
    Ok(())
}

/// A flag as written: true/false, 1/0, yes/no in any case; a missing value is false.
/// `None` when the value does not parse.
fn parse_flag(written: Option<&str>) -> Option<bool> {
    let Some(written) = written else {
        return Some(false);
    };
    match written.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

/// The `updated_at` column of a batch: typed by the source, or text to parse.
enum UpdatedAtColumn {
    Timestamps(TimestampMicrosecondArray),
    Text(StringArray),
}

impl UpdatedAtColumn {
    fn of(batch: &RecordBatch) -> Result<Self, ReadFailure> {
        let array = batch
            .column_by_name(RESTRICTION_UPDATED_AT)
            .ok_or_else(|| ReadFailure(format!("no column {RESTRICTION_UPDATED_AT}")))?;
        if let Some(timestamps) = array.as_any().downcast_ref::<TimestampMicrosecondArray>() {
            return Ok(Self::Timestamps(timestamps.clone()));
        }
        Ok(Self::Text(text_column(batch, RESTRICTION_UPDATED_AT)?))
    }

    /// The row's timestamp, `None` when not given, or the text that does not parse.
    fn at(&self, row: usize) -> Result<Option<DateTime<Utc>>, String> {
        match self {
            Self::Timestamps(timestamps) => {
                if timestamps.is_null(row) {
                    return Ok(None);
                }
                let micros = timestamps.value(row);
                DateTime::from_timestamp_micros(micros)
                    .map(Some)
                    .ok_or_else(|| micros.to_string())
            }
            Self::Text(text) => match value(text, row).map(str::trim) {
                None | Some("") => Ok(None),
                Some(written) => DateTime::parse_from_rfc3339(written)
                    .map(|time| Some(time.with_timezone(&Utc)))
                    .map_err(|_| written.to_owned()),
            },
        }
    }
}

fn text_column(batch: &RecordBatch, name: &str) -> Result<StringArray, ReadFailure> {
    let array = batch
        .column_by_name(name)
        .ok_or_else(|| ReadFailure(format!("no column {name}")))?;
    let text = cast_array(array, &DataType::Utf8)
        .map_err(|error| ReadFailure(format!("cannot read column {name} as text: {error}")))?;
    text.as_any()
        .downcast_ref::<StringArray>()
        .cloned()
        .ok_or_else(|| ReadFailure(format!("column {name} is not text after casting")))
}

fn value(column: &StringArray, row: usize) -> Option<&str> {
    (!column.is_null(row)).then(|| column.value(row))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_case_insensitively_and_missing_means_false() {
        let cases = [
            (Some("true"), Some(true)),
            (Some("TRUE"), Some(true)),
            (Some(" Yes "), Some(true)),
            (Some("1"), Some(true)),
            (Some("false"), Some(false)),
            (Some("No"), Some(false)),
            (Some("0"), Some(false)),
            (None, Some(false)),
            (Some(""), None),
            (Some("2"), None),
            (Some("maybe"), None),
            (Some("t"), None),
        ];
        for (written, expected) in cases {
            assert_eq!(parse_flag(written), expected, "{written:?}");
        }
    }
}
