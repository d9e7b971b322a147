//! A deterministic synthetic lake with planted player archetypes, for the demo and for
//! tests that score clustering against the truth.
//!
//! [`write_synthetic_lake`] writes `<root>/transactions/dt=YYYY-MM-DD/part-0.parquet` (or
//! `.csv`), one file per day of a 365-day history, in the lake contract's columns, and
//! `<root>/truth/players.csv` (`user_id,archetype`). Players are drawn around six
//! [`Archetype`]s; a fraction of rows is broken on purpose, one [`DirtyFault`] each; an
//! optional whale tail (`whale_share`) raises a few players' stakes far above the rest,
//! listed in `<root>/truth/whales.csv` (`user_id`).
//!
//! Invariants: the same options give byte-identical files (one seeded random source,
//! drawn in a fixed order; no hash-map order reaches the output), and memory stays
//! bounded whatever the row count: players and sessions are planned up front (a few
//! hundred bytes per player, 16 per session), rows are made and written one day at a time.

mod archetype;
mod calendar;
mod error;
mod fault;
mod game;
mod market;
mod output;
mod player;
mod sampler;
mod session;
mod transaction;

use std::path::Path;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

pub use archetype::Archetype;
pub use error::SyntheticLakeError;
pub use fault::DirtyFault;

use calendar::{Calendar, HISTORY_DAYS, SECONDS_PER_DAY};
use fault::FaultInjector;
use output::{LakeWriter, write_truth};
use player::plan_players;
use sampler::Sampler;
use session::SessionPlan;
use transaction::{TransactionRow, make_session_rows};

/// The share of rows broken on purpose unless the options say otherwise.
pub const DEFAULT_DIRTY_FRACTION: f64 = 0.02;

/// The largest share of whales a lake may have: beyond it they are a segment, not a tail.
pub const MAX_WHALE_SHARE: f64 = 0.05;

/// The seed used unless the options say otherwise.
pub const DEFAULT_SEED: u64 = 42;

/// The file format of a synthetic lake's partitions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyntheticFormat {
    /// Parquet, `occurred_at` as a UTC microsecond timestamp.
    #[default]
    Parquet,
    /// CSV with a header row, `occurred_at` as RFC 3339 (`2026-06-30T21:04:05Z`).
    Csv,
}

/// What synthetic lake to write.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticLakeOptions {
    /// Players to draw; each gets at least one row when `transactions >= players`.
    pub players: usize,
    /// Rows to write in total (dirty rows included).
    pub transactions: usize,
    /// Fixes every random draw: the same options write the same bytes.
    pub seed: u64,
    /// Share of rows broken on purpose, in `[0, 1)`.
    pub dirty_fraction: f64,
    /// The last day of the 365-day history (UTC). Keep it before today, or the ETL will
    /// quarantine the latest rows as future ones.
    pub end_date: NaiveDate,
    /// The partitions' file format.
    pub format: SyntheticFormat,
    /// Share of players made whales, in `[0, 0.05]`: their archetype's habits at stakes far
    /// above everyone else's (a mean bet of 1,500 EUR and more, Pareto-distributed) and twice
    /// the play. Listed in `truth/whales.csv`. 0 (the default) draws exactly the lake it
    /// always did.
    pub whale_share: f64,
}

impl SyntheticLakeOptions {
    /// Options for `players` players and `transactions` rows ending on `end_date`, with the
    /// default seed, dirty fraction and format (Parquet).
    pub fn new(players: usize, transactions: usize, end_date: NaiveDate) -> Self {
        Self {
            players,
            transactions,
            seed: DEFAULT_SEED,
            dirty_fraction: DEFAULT_DIRTY_FRACTION,
            end_date,
            format: SyntheticFormat::default(),
            whale_share: 0.0,
        }
    }

    /// Whales to draw: `whale_share` of the players, rounded.
    fn whales(&self) -> usize {
        (self.players as f64 * self.whale_share).round() as usize
    }

    fn validate(&self) -> Result<Calendar, SyntheticLakeError> {
        let invalid = |option, reason: String| SyntheticLakeError::InvalidOption { option, reason };
        if self.players == 0 || u32::try_from(self.players).is_err() {
            return Err(invalid(
                "players",
                format!("must be between 1 and {}, got {}", u32::MAX, self.players),
            ));
        }
        if self.transactions == 0 {
            return Err(invalid(
                "transactions",
                "must be at least 1, got 0".to_owned(),
            ));
        }
        if !(0.0..1.0).contains(&self.dirty_fraction) {
            return Err(invalid(
                "dirty_fraction",
                format!(
                    "must be at least 0 and below 1, got {}",
                    self.dirty_fraction
                ),
            ));
        }
        if !(0.0..=MAX_WHALE_SHARE).contains(&self.whale_share) {
            return Err(invalid(
                "whale_share",
                format!(
                    "must be between 0 and {MAX_WHALE_SHARE}, got {}",
                    self.whale_share
                ),
            ));
        }
        Calendar::ending(self.end_date).ok_or_else(|| {
            invalid(
                "end_date",
                format!("{} leaves no 365-day history before it", self.end_date),
            )
        })
    }
}

/// What [`write_synthetic_lake`] wrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyntheticLakeSummary {
    /// Partition files written under `transactions/`.
    pub files: usize,
    /// Rows written, dirty ones included.
    pub rows: u64,
    /// Rows broken on purpose.
    pub dirty_rows: u64,
    /// Rows broken on purpose, per fault, in [`DirtyFault::ALL`] order.
    pub dirty_rows_by_fault: Vec<(DirtyFault, u64)>,
    /// Players with at least one row, per archetype, in [`Archetype::ALL`] order.
    pub players_per_archetype: Vec<(Archetype, usize)>,
    /// Whales with at least one row (listed in `truth/whales.csv`).
    pub whales: usize,
}

/// Writes a synthetic lake under `root` (which must not hold transactions yet), calling
/// `progress` with the rows written so far after every file.
///
/// ```no_run
/// use chrono::NaiveDate;
/// use crmbet_etl::{SyntheticLakeOptions, write_synthetic_lake};
///
/// let end_date = NaiveDate::from_ymd_opt(2026, 6, 30).unwrap();
/// let options = SyntheticLakeOptions::new(20_000, 1_000_000, end_date);
/// let summary = write_synthetic_lake("demo-lake".as_ref(), &options, &mut |_rows| {})?;
/// assert_eq!(summary.rows, 1_000_000);
/// # Ok::<(), crmbet_etl::SyntheticLakeError>(())
/// ```
pub fn write_synthetic_lake(
    root: &Path,
    options: &SyntheticLakeOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<SyntheticLakeSummary, SyntheticLakeError> {
    let calendar = options.validate()?;
    ensure_no_transactions(root)?;
    let mut sampler = Sampler::new(options.seed);
    let players = plan_players(
        &mut sampler,
        options.players,
        options.transactions as u64,
        options.whales(),
    );
    let plan = SessionPlan::new(&mut sampler, &players, &calendar);
    let writer = LakeWriter::new(root, options.format, options.players);
    let mut faults = FaultInjector::new(options.dirty_fraction, &calendar);
    let mut player_seen = vec![false; players.len()];
    let mut late_rows: Vec<TransactionRow> = Vec::new();
    let mut rows_written: u64 = 0;
    let mut files = 0;
    for day in 0..HISTORY_DAYS {
        let day_start_seconds = calendar.day_start_seconds(day);
        let mut rows = std::mem::take(&mut late_rows);
        let (first_session_id, sessions) = plan.of_day(day);
        for (session_id, session) in (first_session_id..).zip(sessions) {
            make_session_rows(
                &mut sampler,
                &players[session.player as usize],
                session,
                session_id,
                day_start_seconds,
                calendar.end_seconds(),
                &mut rows,
            );
        }
        // Sessions running past midnight leave their late rows to the next day's partition.
        let next_day_seconds = day_start_seconds + SECONDS_PER_DAY;
        let (mut rows, later): (Vec<_>, Vec<_>) = rows
            .into_iter()
            .partition(|row| row.occurred_at_seconds < next_day_seconds);
        late_rows = later;
        if rows.is_empty() {
            continue;
        }
        rows.sort_by_key(|row| row.occurred_at_seconds);
        for (transaction, row) in (rows_written + 1..).zip(rows.iter_mut()) {
            row.transaction = transaction;
            if let Some(player) = row.player {
                let seen = &mut player_seen[player as usize];
                row.first_of_player = !*seen;
                *seen = true;
            }
        }
        faults.inject(&mut sampler, &mut rows, rows_written);
        writer.write_day(calendar.date(day), &rows)?;
        rows_written += rows.len() as u64;
        files += 1;
        progress(rows_written);
    }
    debug_assert!(late_rows.is_empty(), "rows after the end of the history");
    write_truth(root, &writer, &players)?;

    let players_per_archetype = Archetype::ALL
        .into_iter()
        .map(|archetype| {
            let count = players
                .iter()
                .filter(|player| player.archetype == archetype && player.rows > 0)
                .count();
            (archetype, count)
        })
        .collect();
    Ok(SyntheticLakeSummary {
        files,
        rows: rows_written,
        dirty_rows: faults.total(),
        dirty_rows_by_fault: faults.counts(),
        players_per_archetype,
        whales: players
            .iter()
            .filter(|player| player.whale && player.rows > 0)
            .count(),
    })
}

/// Fails if `<root>/transactions` exists and holds anything: old partitions would mix
/// with the new lake.
fn ensure_no_transactions(root: &Path) -> Result<(), SyntheticLakeError> {
    let folder = root.join(crate::lake::TRANSACTIONS_FOLDER);
    let mut entries = match std::fs::read_dir(&folder) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(SyntheticLakeError::write(&folder, error)),
    };
    if entries.next().is_some() {
        return Err(SyntheticLakeError::LakeNotEmpty { path: folder });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
