//! The warehouse: every accepted transaction (valid, deduplicated) in local Parquet files,
//! so that a run reads only the lake's new objects and still computes features over all
//! the data.
//!
//! Layout under the folder the caller gives:
//! ```text
//! database-id                        the id of the database the accepted rows went to
//! transactions/part-000001.parquet   accepted rows, one part per run that loaded any
//! staging/<ordinal>.arrow            valid rows of this run's objects, before dedupe
//! ```
//! The warehouse is bound to one database ([`Warehouse::bind`]): its rows are only what
//! that database's watermark says was loaded. Read into another database (a reset, a move
//! from SQLite to PostgreSQL), they would count every row of the lake as a duplicate and
//! supply features the new database never loaded, so a run that finds another id (or none,
//! beside accepted rows) empties the warehouse and reads the whole lake again.
//! Why this is identical to a full recompute: a full run stages every object of the lake
//! and keeps, per `transaction_id`, the first valid row by (object key, row in object).
//! An incremental run keeps the first valid row of its new objects by the same order and
//! drops any whose `transaction_id` is already in the warehouse. Both leave exactly one row
//! per `transaction_id` that any valid row carried, so the features, computed over the
//! whole warehouse by the same plan, agree. The one difference: when a later object
//! re-delivers an id with *different* content, the earlier-loaded row wins, not the
//! earlier key. The append is also idempotent: re-reading a loaded object (a lost
//! watermark) adds nothing, as all its ids are already present.
//!
//! Only the columns the features read are kept; the lake stays the record of the rest,
//! plus [`ORIGIN`]: `live` for the live transactions a run staged ahead of the lake's
//! objects (so a lake row that already arrived live is known as such, and counted once),
//! null for the lake's rows. Parts written before the column existed read it as null.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::file_format::options::ArrowReadOptions;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::parquet::schema::types::ColumnPath;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use futures::StreamExt;

mod id_hash;

use self::id_hash::{ID_HASH, id_hash_function};
use crate::contract::{
    self, AMOUNT, COUNTRY, GAME_TYPE, OCCURRED_AT, SESSION_ID, TRANSACTION_ID, TYPE, USER_ID,
};
use crate::error::{Error, Result};

/// The columns of an accepted transaction in the warehouse.
pub(crate) const WAREHOUSE_COLUMNS: [&str; 8] = [
    TRANSACTION_ID,
    USER_ID,
    OCCURRED_AT,
    TYPE,
    AMOUNT,
    GAME_TYPE,
    SESSION_ID,
    COUNTRY,
];

/// Where an accepted row came from: [`LIVE_ORIGIN`], or null for the lake.
pub(crate) const ORIGIN: &str = "origin";
/// The [`ORIGIN`] of live transactions.
pub(crate) const LIVE_ORIGIN: &str = "live";

/// A staged row's order key: object ordinal in the high bits, row in the object below.
pub(crate) const POSITION: &str = "position";

/// The table name the warehouse's accepted transactions are registered under.
pub(crate) const TRANSACTIONS_TABLE: &str = "transactions";
const STAGED_TABLE: &str = "staged";
const COMMITTED_TABLE: &str = "committed";
const PART_PREFIX: &str = "part-";
const PART_EXTENSION: &str = ".parquet";
const STAGING_EXTENSION: &str = ".arrow";
/// The file holding the id of the database the warehouse belongs to.
const DATABASE_ID_FILE: &str = "database-id";
/// Present once live transactions were accepted: lake rows are then checked against them.
const LIVE_MARKER_FILE: &str = "has-live-rows";

/// The schema of the accepted transactions.
pub(crate) fn warehouse_schema() -> SchemaRef {
    let mut fields: Vec<Field> = WAREHOUSE_COLUMNS
        .iter()
        .map(|column| Field::new(*column, contract::column_type(column), true))
        .collect();
    fields.push(Field::new(ORIGIN, contract::text_type(), true));
    Arc::new(Schema::new(fields))
}

/// The schema of a staging file: the warehouse columns and the row's [`POSITION`].
pub(crate) fn staging_schema() -> SchemaRef {
    let mut fields: Vec<Field> = warehouse_schema()
        .fields()
        .iter()
        .map(|field| field.as_ref().clone())
        .collect();
    fields.push(Field::new(POSITION, DataType::Int64, false));
    Arc::new(Schema::new(fields))
}

/// The rows one run added to the warehouse.
/// Columns of few distinct values, worth a dictionary in a part.
const DICTIONARY_COLUMNS: [&str; 4] = [TYPE, GAME_TYPE, COUNTRY, ORIGIN];

/// How a part is written: snappy, and dictionaries only where values repeat. Ids, times
/// and amounts are (nearly) unique: the writer would intern every value until the
/// dictionary page overflowed, then write them plain anyway.
fn part_properties() -> WriterProperties {
    DICTIONARY_COLUMNS
        .iter()
        .fold(
            WriterProperties::builder()
                .set_compression(Compression::SNAPPY)
                .set_dictionary_enabled(false),
            |builder, column| {
                builder.set_column_dictionary_enabled(ColumnPath::from(*column), true)
            },
        )
        .build()
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Commit {
    /// Valid rows staged by the run.
    pub rows_staged: u64,
    /// Rows appended: the staged ones whose `transaction_id` was new.
    pub rows_loaded: u64,
    /// Staged rows not appended because the transaction had arrived live.
    pub rows_already_live: u64,
    /// The part the appended rows went to.
    pub part: Option<PathBuf>,
}

/// Whose rows a warehouse held when a run bound it to its database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Binding {
    /// The warehouse already belonged to this database, or held nothing.
    Kept,
    /// It held rows of another database (`previous`), or of an unknown one when the
    /// warehouse predates binding (`None`): they must not be used.
    Foreign {
        /// The id it recorded.
        previous: Option<String>,
    },
}

/// A warehouse folder.
#[derive(Debug, Clone)]
pub struct Warehouse {
    root: PathBuf,
}

impl Warehouse {
    /// The warehouse in folder `root` (created on first use).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The warehouse folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn transactions_folder(&self) -> PathBuf {
        self.root.join("transactions")
    }

    /// The folder emptied at the start of every run, for a run's temporary files.
    pub(crate) fn staging_folder(&self) -> PathBuf {
        self.root.join("staging")
    }

    /// Whether a run for `database_id` would keep the warehouse's rows (it holds that
    /// database's rows, or none): when not, the run rebuilds it from the whole lake.
    pub fn is_bound_to(&self, database_id: &str) -> Result<bool> {
        let path = self.root.join(DATABASE_ID_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(text.trim() == database_id),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                Ok(self.parts()?.is_empty())
            }
            Err(error) => Err(Error::warehouse(&path, error)),
        }
    }

    /// Whose rows the warehouse holds, compared with `database_id`; binds it to that id
    /// (the caller must empty a [`Binding::Foreign`] warehouse before it reads from it).
    pub(crate) fn bind(&self, database_id: &str) -> Result<Binding> {
        let path = self.root.join(DATABASE_ID_FILE);
        let recorded = match std::fs::read_to_string(&path) {
            Ok(text) => Some(text.trim().to_owned()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
            Err(error) => return Err(Error::warehouse(&path, error)),
        };
        let binding = match recorded {
            Some(recorded) if recorded == database_id => return Ok(Binding::Kept),
            None if self.parts()?.is_empty() => Binding::Kept,
            previous => Binding::Foreign { previous },
        };
        std::fs::create_dir_all(&self.root).map_err(|error| Error::warehouse(&self.root, error))?;
        // Written before any row is: a crash in between leaves an empty warehouse bound to
        // this database, never foreign rows under its id.
        if binding != Binding::Kept {
            self.prepare(true)?;
        }
        let temporary = path.with_extension("tmp");
        std::fs::write(&temporary, database_id)
            .map_err(|error| Error::warehouse(&temporary, error))?;
        std::fs::rename(&temporary, &path).map_err(|error| Error::warehouse(&path, error))?;
        Ok(binding)
    }

    /// Creates the folders and removes what an interrupted run left in staging; with
    /// `clear`, also every accepted transaction (a full recompute).
    pub(crate) fn prepare(&self, clear: bool) -> Result<()> {
        let staging = self.staging_folder();
        remove_folder(&staging)?;
        if clear {
            remove_folder(&self.transactions_folder())?;
        }
        for folder in [staging, self.transactions_folder()] {
            std::fs::create_dir_all(&folder).map_err(|error| Error::warehouse(&folder, error))?;
        }
        Ok(())
    }

    /// Where the object with this run's `ordinal` stages its valid rows.
    pub(crate) fn staging_path(&self, ordinal: u64) -> PathBuf {
        self.staging_folder()
            .join(format!("{ordinal:08}{STAGING_EXTENSION}"))
    }

    /// The accepted transaction files, sorted.
    fn parts(&self) -> Result<Vec<PathBuf>> {
        let folder = self.transactions_folder();
        let entries = match std::fs::read_dir(&folder) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(Error::warehouse(&folder, error)),
        };
        let mut parts = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|error| Error::warehouse(&folder, error))?
                .path();
            let name = path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned());
            if name
                .is_some_and(|name| name.starts_with(PART_PREFIX) && name.ends_with(PART_EXTENSION))
            {
                parts.push(path);
            }
        }
        parts.sort();
        Ok(parts)
    }

    /// Appends the staged rows whose `transaction_id` is new — first by position among the
    /// staged rows, never one already accepted — as a new part, then empties staging.
    ///
    /// Dedupe without a window function: see the comments on the two steps below.
    pub(crate) async fn commit(
        &self,
        context: &SessionContext,
        rows_staged: u64,
    ) -> Result<Commit> {
        if rows_staged == 0 {
            self.prepare(false)?;
            return Ok(Commit::default());
        }
        let staging = self.staging_folder();
        let staging_url = format!("{}/", staging.display());
        let staging_extension = ArrowReadOptions {
            file_extension: STAGING_EXTENSION,
            ..Default::default()
        };
        context
            .register_arrow(STAGED_TABLE, &staging_url, staging_extension)
            .await
            .map_err(|error| Error::query("reading staged rows", error))?;
        let stored_columns: Vec<&str> = WAREHOUSE_COLUMNS.iter().copied().chain([ORIGIN]).collect();
        let columns = stored_columns
            .iter()
            .map(|column| format!("\"{column}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let staged_columns = stored_columns
            .iter()
            .map(|column| format!("s.\"{column}\""))
            .collect::<Vec<_>>()
            .join(", ");
        context.register_udf(id_hash_function());
        // The first staged row of each id: grouping the ids' hashes finds the few that
        // repeat (far less memory than grouping the ids' text), the exact group-by runs on
        // their rows only, and the join (built on that small set) drops the later copies.
        let first_staged = format!(
            "WITH repeated_hashes AS (
                SELECT {ID_HASH}({TRANSACTION_ID}) AS id_hash FROM {STAGED_TABLE}
                GROUP BY {ID_HASH}({TRANSACTION_ID}) HAVING count(*) > 1
             ),
             repeated AS (
                SELECT c.{TRANSACTION_ID}, min(c.{POSITION}) AS first_position
                FROM repeated_hashes h JOIN {STAGED_TABLE} c
                  ON h.id_hash = {ID_HASH}(c.{TRANSACTION_ID})
                GROUP BY c.{TRANSACTION_ID} HAVING count(*) > 1
             )
             SELECT {staged_columns}
             FROM repeated r RIGHT JOIN {STAGED_TABLE} s ON r.{TRANSACTION_ID} = s.{TRANSACTION_ID}
             WHERE r.first_position IS NULL OR s.{POSITION} = r.first_position"
        );
        // Ids accepted by earlier runs win: an anti join built on this run's rows, so its
        // memory follows the new data, not the warehouse.
        let has_committed = self.register(context, COMMITTED_TABLE).await?;
        let rows_already_live = if has_committed && self.root.join(LIVE_MARKER_FILE).exists() {
            self.count_already_live(context, &first_staged).await?
        } else {
            0
        };
        let sql = if has_committed {
            format!(
                "SELECT {columns} FROM ({first_staged}) f
                 WHERE NOT EXISTS (
                    SELECT 1 FROM {COMMITTED_TABLE} c WHERE c.{TRANSACTION_ID} = f.{TRANSACTION_ID}
                 )"
            )
        } else {
            first_staged
        };
        let frame = context
            .sql(&sql)
            .await
            .map_err(|error| Error::query("planning the dedupe", error))?;
        let mut stream = frame
            .execute_stream()
            .await
            .map_err(|error| Error::query("deduplicating staged rows", error))?;

        let part = self.next_part_path()?;
        let temporary = part.with_extension("parquet.tmp");
        let file = File::create(&temporary).map_err(|error| Error::warehouse(&temporary, error))?;
        let mut writer = ArrowWriter::try_new(file, warehouse_schema(), Some(part_properties()))
            .map_err(|error| Error::warehouse(&temporary, error))?;
        let mut rows_loaded = 0;
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(|error| Error::query("deduplicating staged rows", error))?;
            rows_loaded += batch.num_rows() as u64;
            let batch = batch
                .with_schema(warehouse_schema())
                .map_err(|error| Error::warehouse(&temporary, error))?;
            writer
                .write(&batch)
                .map_err(|error| Error::warehouse(&temporary, error))?;
        }
        writer
            .close()
            .map_err(|error| Error::warehouse(&temporary, error))?;
        for table in [STAGED_TABLE, COMMITTED_TABLE] {
            let _ = context.deregister_table(table);
        }
        let written = if rows_loaded > 0 {
            std::fs::rename(&temporary, &part).map_err(|error| Error::warehouse(&part, error))?;
            Some(part)
        } else {
            std::fs::remove_file(&temporary)
                .map_err(|error| Error::warehouse(&temporary, error))?;
            None
        };
        self.prepare(false)?;
        Ok(Commit {
            rows_staged,
            rows_loaded,
            rows_already_live,
            part: written,
        })
    }

    /// How many of the staged rows (first per id) repeat a transaction accepted live.
    async fn count_already_live(
        &self,
        context: &SessionContext,
        first_staged: &str,
    ) -> Result<u64> {
        let sql = format!(
            "SELECT count(*) AS repeats FROM ({first_staged}) f
             WHERE EXISTS (
                SELECT 1 FROM {COMMITTED_TABLE} c
                WHERE c.{TRANSACTION_ID} = f.{TRANSACTION_ID} AND c.{ORIGIN} = '{LIVE_ORIGIN}'
             )"
        );
        let batches = context
            .sql(&sql)
            .await
            .map_err(|error| Error::query("planning the live repeats count", error))?
            .collect()
            .await
            .map_err(|error| Error::query("counting lake rows that arrived live", error))?;
        let mut repeats = 0;
        for batch in batches {
            if let Some(counts) = batch
                .column(0)
                .as_any()
                .downcast_ref::<datafusion::arrow::array::Int64Array>()
            {
                repeats += counts.iter().flatten().sum::<i64>();
            }
        }
        Ok(u64::try_from(repeats).unwrap_or_default())
    }

    /// Stages live transactions as the run's first rows (they win over a lake row with the
    /// same id), marked [`LIVE_ORIGIN`]; returns how many.
    pub(crate) fn stage_live(&self, rows: &[StagedTransaction]) -> Result<u64> {
        if rows.is_empty() {
            return Ok(0);
        }
        let path = self.staging_path(0);
        let batch = staged_batch(rows).map_err(|error| Error::warehouse(&path, error))?;
        let file = File::create(&path).map_err(|error| Error::warehouse(&path, error))?;
        let mut writer =
            datafusion::arrow::ipc::writer::FileWriter::try_new(file, &staging_schema())
                .map_err(|error| Error::warehouse(&path, error))?;
        writer
            .write(&batch)
            .map_err(|error| Error::warehouse(&path, error))?;
        writer
            .finish()
            .map_err(|error| Error::warehouse(&path, error))?;
        Ok(rows.len() as u64)
    }

    /// The ids and times of the rows in `part` that occurred at or after `since_micros`.
    pub(crate) async fn recent_ids(
        &self,
        context: &SessionContext,
        part: &Path,
        since_micros: i64,
    ) -> Result<Vec<(String, i64)>> {
        const PART_TABLE: &str = "this_part";
        let schema = warehouse_schema();
        let options = ParquetReadOptions::default()
            .file_extension(PART_EXTENSION)
            .schema(&schema);
        context
            .register_parquet(PART_TABLE, &part.display().to_string(), options)
            .await
            .map_err(|error| Error::query("reading the new part", error))?;
        let sql = format!(
            "SELECT {TRANSACTION_ID} AS id, CAST({OCCURRED_AT} AS BIGINT) AS micros FROM {PART_TABLE} \
             WHERE CAST({OCCURRED_AT} AS BIGINT) >= {since_micros}"
        );
        let batches = context
            .sql(&sql)
            .await
            .map_err(|error| Error::query("planning the recent ids", error))?
            .collect()
            .await
            .map_err(|error| Error::query("listing the recent ids", error))?;
        let _ = context.deregister_table(PART_TABLE);
        let mut ids = Vec::new();
        for batch in batches {
            let id = crate::features::text_column(&batch, "id")?;
            let micros = crate::features::integer_column(&batch, "micros")?;
            for row in 0..batch.num_rows() {
                if let Some(id) = crate::features::text(&id, row) {
                    ids.push((id, crate::features::integer(&micros, row)));
                }
            }
        }
        Ok(ids)
    }

    /// Remembers that live rows were accepted, so later lake rows are checked against them.
    pub(crate) fn mark_live_rows(&self) -> Result<()> {
        let path = self.root.join(LIVE_MARKER_FILE);
        std::fs::write(&path, "").map_err(|error| Error::warehouse(&path, error))
    }

    fn next_part_path(&self) -> Result<PathBuf> {
        let last = self
            .parts()?
            .iter()
            .filter_map(|path| {
                let name = path.file_name()?.to_string_lossy().into_owned();
                name.strip_prefix(PART_PREFIX)?
                    .strip_suffix(PART_EXTENSION)?
                    .parse::<u64>()
                    .ok()
            })
            .max()
            .unwrap_or(0);
        Ok(self
            .transactions_folder()
            .join(format!("{PART_PREFIX}{:06}{PART_EXTENSION}", last + 1)))
    }

    /// Registers the accepted transactions as `table`; false when there are none yet.
    pub(crate) async fn register(&self, context: &SessionContext, table: &str) -> Result<bool> {
        if self.parts()?.is_empty() {
            return Ok(false);
        }
        let folder = format!("{}/", self.transactions_folder().display());
        let schema = warehouse_schema();
        let options = ParquetReadOptions::default()
            .file_extension(PART_EXTENSION)
            .schema(&schema);
        context
            .register_parquet(table, &folder, options)
            .await
            .map_err(|error| Error::query("reading the warehouse", error))?;
        Ok(true)
    }
}

fn remove_folder(folder: &Path) -> Result<()> {
    match std::fs::remove_dir_all(folder) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(Error::warehouse(folder, error)),
    }
}

/// A live transaction to stage: the warehouse's columns of one accepted event.
#[derive(Debug, Clone, PartialEq)]
pub struct StagedTransaction {
    pub transaction_id: String,
    pub user_id: String,
    pub occurred_micros: i64,
    /// The contract's `type`.
    pub kind: String,
    pub amount: f64,
    pub game_type: Option<String>,
    pub session_id: Option<String>,
    pub country: Option<String>,
}

/// The rows as one staging batch, in order.
fn staged_batch(
    rows: &[StagedTransaction],
) -> std::result::Result<datafusion::arrow::array::RecordBatch, datafusion::arrow::error::ArrowError>
{
    use datafusion::arrow::array::{
        ArrayRef, Float64Array, Int64Array, StringViewArray, TimestampMicrosecondArray,
    };
    let text = |values: Vec<Option<&str>>| -> ArrayRef { Arc::new(StringViewArray::from(values)) };
    let columns: Vec<ArrayRef> = vec![
        text(
            rows.iter()
                .map(|row| Some(row.transaction_id.as_str()))
                .collect(),
        ),
        text(rows.iter().map(|row| Some(row.user_id.as_str())).collect()),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(rows.iter().map(|row| row.occurred_micros))
                .with_timezone("UTC"),
        ),
        text(rows.iter().map(|row| Some(row.kind.as_str())).collect()),
        Arc::new(Float64Array::from_iter_values(
            rows.iter().map(|row| row.amount),
        )),
        text(rows.iter().map(|row| row.game_type.as_deref()).collect()),
        text(rows.iter().map(|row| row.session_id.as_deref()).collect()),
        text(rows.iter().map(|row| row.country.as_deref()).collect()),
        text(rows.iter().map(|_| Some(LIVE_ORIGIN)).collect()),
        Arc::new(Int64Array::from_iter_values(0..rows.len() as i64)),
    ];
    datafusion::arrow::array::RecordBatch::try_new(staging_schema(), columns)
}
