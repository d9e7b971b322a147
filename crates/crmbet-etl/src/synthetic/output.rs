//! Writing a synthetic lake: one partition file per day under `transactions/`, in the
//! contract's columns, and the planted archetypes under `truth/`.
//!
//! A file is written under a hidden name (which the ETL skips) and renamed when complete,
//! so a reader never sees half a file.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::DateTime;
use datafusion::arrow::array::{
    ArrayRef, Float64Array, RecordBatch, StringBuilder, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;

use crate::contract::{
    AMOUNT, CHANNEL, COUNTRY, CURRENCY, GAME_ID, GAME_TYPE, OCCURRED_AT, SESSION_ID,
    TRANSACTION_ID, TYPE, USER_ID,
};

use super::SyntheticFormat;
use super::error::SyntheticLakeError;
use super::game::game_type_name;
use super::market::{CHANNELS, COUNTRIES};
use super::player::Player;
use super::transaction::TransactionRow;

/// Digits of a transaction id after its `t`.
const TRANSACTION_DIGITS: usize = 12;
/// Digits of a session id after its `s`.
const SESSION_DIGITS: usize = 9;
/// Fewest digits of a player id after its `p`.
const PLAYER_DIGITS: usize = 6;

/// Writes day partitions of one lake.
pub(super) struct LakeWriter {
    transactions_folder: PathBuf,
    format: SyntheticFormat,
    player_digits: usize,
    schema: SchemaRef,
}

impl LakeWriter {
    /// A writer into `<root>/transactions` for a lake of `players` players.
    pub(super) fn new(root: &Path, format: SyntheticFormat, players: usize) -> Self {
        let largest_player = players.saturating_sub(1).to_string();
        Self {
            transactions_folder: root.join(crate::lake::TRANSACTIONS_FOLDER),
            format,
            player_digits: largest_player.len().max(PLAYER_DIGITS),
            schema: contract_schema(),
        }
    }

    /// Writes `rows` as `dt=<date>/part-0.<extension>`.
    pub(super) fn write_day(
        &self,
        date: chrono::NaiveDate,
        rows: &[TransactionRow],
    ) -> Result<(), SyntheticLakeError> {
        let folder = self.transactions_folder.join(format!("dt={date}"));
        fs::create_dir_all(&folder).map_err(|error| SyntheticLakeError::write(&folder, error))?;
        let extension = match self.format {
            SyntheticFormat::Parquet => "parquet",
            SyntheticFormat::Csv => "csv",
        };
        let path = folder.join(format!("part-0.{extension}"));
        let temporary = folder.join(format!(".part-0.{extension}.tmp"));
        match self.format {
            SyntheticFormat::Parquet => self.write_parquet(&temporary, rows)?,
            SyntheticFormat::Csv => self.write_csv(&temporary, rows)?,
        }
        fs::rename(&temporary, &path).map_err(|error| SyntheticLakeError::write(&path, error))
    }

    fn write_parquet(
        &self,
        path: &Path,
        rows: &[TransactionRow],
    ) -> Result<(), SyntheticLakeError> {
        let batch = self
            .record_batch(rows)
            .map_err(|error| SyntheticLakeError::write(path, error))?;
        let file = File::create(path).map_err(|error| SyntheticLakeError::write(path, error))?;
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build();
        let mut writer = ArrowWriter::try_new(file, self.schema.clone(), Some(properties))
            .map_err(|error| SyntheticLakeError::write(path, error))?;
        writer
            .write(&batch)
            .map_err(|error| SyntheticLakeError::write(path, error))?;
        writer
            .close()
            .map_err(|error| SyntheticLakeError::write(path, error))?;
        Ok(())
    }

    fn record_batch(
        &self,
        rows: &[TransactionRow],
    ) -> Result<RecordBatch, datafusion::arrow::error::ArrowError> {
        let count = rows.len();
        let mut transaction_ids = StringBuilder::with_capacity(count, count * 13);
        let mut user_ids = StringBuilder::with_capacity(count, count * 8);
        let mut types = StringBuilder::with_capacity(count, count * 4);
        let mut currencies = StringBuilder::with_capacity(count, count * 3);
        let mut game_types = StringBuilder::with_capacity(count, count * 6);
        let mut game_ids = StringBuilder::with_capacity(count, count * 11);
        let mut session_ids = StringBuilder::with_capacity(count, count * 10);
        let mut channels = StringBuilder::with_capacity(count, count * 4);
        let mut countries = StringBuilder::with_capacity(count, count * 2);
        let mut text = String::new();
        for row in rows {
            self.transaction_id(row, &mut text);
            transaction_ids.append_value(&text);
            user_ids.append_option(self.user_id(row, &mut text).then_some(&text));
            types.append_value(row.kind);
            currencies.append_value(row.currency);
            game_types.append_option(row.game.map(game_type_name));
            game_ids.append_option(game_id(row, &mut text).then_some(&text));
            session_ids.append_option(session_id(row, &mut text).then_some(&text));
            channels.append_option(row.channel.map(|channel| CHANNELS[usize::from(channel)]));
            countries.append_option(row.country.map(|country| COUNTRIES[usize::from(country)].0));
        }
        let occurred_at = TimestampMicrosecondArray::from_iter_values(
            rows.iter().map(|row| row.occurred_at_seconds * 1_000_000),
        )
        .with_timezone("UTC");
        let amounts = Float64Array::from_iter_values(rows.iter().map(|row| row.amount_eur));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(transaction_ids.finish()),
            Arc::new(user_ids.finish()),
            Arc::new(occurred_at),
            Arc::new(types.finish()),
            Arc::new(amounts),
            Arc::new(currencies.finish()),
            Arc::new(game_types.finish()),
            Arc::new(game_ids.finish()),
            Arc::new(session_ids.finish()),
            Arc::new(channels.finish()),
            Arc::new(countries.finish()),
        ];
        RecordBatch::try_new(self.schema.clone(), columns)
    }

    fn write_csv(&self, path: &Path, rows: &[TransactionRow]) -> Result<(), SyntheticLakeError> {
        let file = File::create(path).map_err(|error| SyntheticLakeError::write(path, error))?;
        let mut output = BufWriter::new(file);
        let mut line = self
            .schema
            .fields()
            .iter()
            .map(|field| field.name().as_str())
            .collect::<Vec<_>>()
            .join(",");
        line.push('\n');
        let mut text = String::new();
        for row in rows {
            // None of the values holds a comma, a quote or a line break: no quoting needed.
            self.transaction_id(row, &mut text);
            line.push_str(&text);
            line.push(',');
            if self.user_id(row, &mut text) {
                line.push_str(&text);
            }
            line.push(',');
            if let Some(moment) = DateTime::from_timestamp(row.occurred_at_seconds, 0) {
                let _ = write!(line, "{}", moment.format("%Y-%m-%dT%H:%M:%SZ"));
            }
            let _ = write!(
                line,
                ",{},{:.2},{},",
                row.kind, row.amount_eur, row.currency
            );
            line.push_str(row.game.map_or("", game_type_name));
            line.push(',');
            if game_id(row, &mut text) {
                line.push_str(&text);
            }
            line.push(',');
            if session_id(row, &mut text) {
                line.push_str(&text);
            }
            line.push(',');
            line.push_str(
                row.channel
                    .map_or("", |channel| CHANNELS[usize::from(channel)]),
            );
            line.push(',');
            line.push_str(
                row.country
                    .map_or("", |country| COUNTRIES[usize::from(country)].0),
            );
            line.push('\n');
            if line.len() >= 1 << 16 {
                output
                    .write_all(line.as_bytes())
                    .map_err(|error| SyntheticLakeError::write(path, error))?;
                line.clear();
            }
        }
        output
            .write_all(line.as_bytes())
            .and_then(|()| output.flush())
            .map_err(|error| SyntheticLakeError::write(path, error))
    }

    /// Writes the `transaction_id` of `row` into `text`.
    fn transaction_id(&self, row: &TransactionRow, text: &mut String) {
        text.clear();
        let _ = write!(
            text,
            "t{:0width$}",
            row.transaction,
            width = TRANSACTION_DIGITS
        );
    }

    /// Writes the `user_id` of `row` into `text`; false if it has none.
    fn user_id(&self, row: &TransactionRow, text: &mut String) -> bool {
        text.clear();
        let Some(player) = row.player else {
            return false;
        };
        self.player_id(player, text);
        true
    }

    /// Writes the id of player `index` (`p000123`) into `text`.
    pub(super) fn player_id(&self, index: u32, text: &mut String) {
        let _ = write!(text, "p{:0width$}", index, width = self.player_digits);
    }
}

/// Writes the `game_id` of `row` into `text`; false if it has none.
fn game_id(row: &TransactionRow, text: &mut String) -> bool {
    text.clear();
    let (Some(game), Some(number)) = (row.game, row.game_number) else {
        return false;
    };
    let _ = write!(text, "{}-{number:04}", game_type_name(game));
    true
}

/// Writes the `session_id` of `row` into `text`; false if it has none.
fn session_id(row: &TransactionRow, text: &mut String) -> bool {
    text.clear();
    let Some(session) = row.session else {
        return false;
    };
    let _ = write!(text, "s{:0width$}", session, width = SESSION_DIGITS);
    true
}

/// The contract columns as written: text, a UTC timestamp and a float amount.
fn contract_schema() -> SchemaRef {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        text(TRANSACTION_ID, false),
        text(USER_ID, true),
        Field::new(
            OCCURRED_AT,
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        text(TYPE, false),
        Field::new(AMOUNT, DataType::Float64, false),
        text(CURRENCY, false),
        text(GAME_TYPE, true),
        text(GAME_ID, true),
        text(SESSION_ID, true),
        text(CHANNEL, true),
        text(COUNTRY, true),
    ]))
}

/// Writes `<root>/truth/players.csv`: every player with at least one row and its archetype.
pub(super) fn write_truth(
    root: &Path,
    writer: &LakeWriter,
    players: &[Player],
) -> Result<(), SyntheticLakeError> {
    let folder = root.join("truth");
    fs::create_dir_all(&folder).map_err(|error| SyntheticLakeError::write(&folder, error))?;
    let path = folder.join("players.csv");
    let file = File::create(&path).map_err(|error| SyntheticLakeError::write(&path, error))?;
    let mut output = BufWriter::new(file);
    let mut text = String::from("user_id,archetype\n");
    for (index, player) in players.iter().enumerate() {
        if player.rows == 0 {
            continue;
        }
        writer.player_id(index as u32, &mut text);
        text.push(',');
        text.push_str(player.archetype.key());
        text.push('\n');
    }
    output
        .write_all(text.as_bytes())
        .and_then(|()| output.flush())
        .map_err(|error| SyntheticLakeError::write(&path, error))?;
    if players.iter().any(|player| player.whale) {
        write_whales(&folder, writer, players)?;
    }
    Ok(())
}

/// `truth/whales.csv`: the whales with at least one row, one `user_id` a line.
fn write_whales(
    folder: &Path,
    writer: &LakeWriter,
    players: &[Player],
) -> Result<(), SyntheticLakeError> {
    let path = folder.join("whales.csv");
    let mut text = String::from("user_id\n");
    for (index, player) in players.iter().enumerate() {
        if player.whale && player.rows > 0 {
            writer.player_id(index as u32, &mut text);
            text.push('\n');
        }
    }
    fs::write(&path, text).map_err(|error| SyntheticLakeError::write(&path, error))
}
