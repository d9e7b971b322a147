//! Ingesting one lake object: read it, check every row against the contract rules, keep the
//! valid rows in a staging file of the warehouse and the broken ones for quarantine.
//!
//! The object is scanned once, in one partition, so rows keep their order in the file:
//! each valid row is staged with its position (object ordinal, row in file), the order the
//! warehouse deduplicates in. If the scan fails part way the staging file is removed and the
//! object is reported as failed: an object loads entirely or not at all.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{
    Array, ArrayRef, Int64Array, RecordBatch, StringArray, new_null_array,
};
use datafusion::arrow::compute::kernels::cast::cast;
use datafusion::arrow::compute::{filter_record_batch, is_not_null, is_null};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::ipc::writer::FileWriter;
use datafusion::arrow::json::LineDelimitedWriter;
use datafusion::prelude::SessionContext;
use futures::StreamExt;

use crate::contract::{AMOUNT, CONTRACT_COLUMNS, OCCURRED_AT, REQUIRED_COLUMNS};
use crate::lake::{LakeObject, LakeSource, ObjectFormat};
use crate::quality::{QuarantinedRow, RULE_COLUMN, Rule, first_broken_rule};
use crate::read::{AMOUNT_SOURCE, OCCURRED_AT_SOURCE, ReadFailure, read_object};
use crate::warehouse::{ORIGIN, POSITION, staging_schema};

/// Bits of a row position that hold the row's index in its object; the object's ordinal in
/// the run sits above them.
const ROW_BITS: u32 = 40;

/// One object to ingest, with everything the task needs to own.
#[derive(Clone)]
pub(crate) struct IngestTask {
    pub context: SessionContext,
    pub lake: LakeSource,
    pub object: LakeObject,
    pub format: ObjectFormat,
    /// The object's place among this run's objects in key order.
    pub ordinal: u64,
    pub now: DateTime<Utc>,
    /// Where the object's valid rows are staged (Arrow IPC).
    pub staging_path: PathBuf,
}

/// What ingesting one object found.
#[derive(Debug, Default)]
pub(crate) struct IngestedObject {
    pub rows_read: u64,
    pub rows_valid: u64,
    /// Null values in required columns, over all rows read (for completeness).
    pub missing_required_values: u64,
    pub quarantined: Vec<QuarantinedRow>,
    /// The staging file, when the object had valid rows.
    pub staged: Option<PathBuf>,
}

impl IngestTask {
    /// Reads, checks and stages the object.
    pub(crate) async fn run(self) -> Result<IngestedObject, ReadFailure> {
        let staging_path = self.staging_path.clone();
        let result = self.scan().await;
        if result.is_err() {
            // Nothing of a failed object may reach the warehouse; a missing file is fine.
            let _ = std::fs::remove_file(&staging_path);
        }
        result
    }

    async fn scan(&self) -> Result<IngestedObject, ReadFailure> {
        // An S3 object is downloaded beside its staging file and removed when `copy` drops,
        // after the scan below has streamed it to the end.
        let copy = self
            .lake
            .local_copy(&self.object, &self.staging_path.with_extension("download"))
            .await
            .map_err(ReadFailure)?;
        let frame = read_object(&self.context, &copy.lake, &copy.object, self.format).await?;
        let rule = first_broken_rule(self.now)
            .map_err(|error| ReadFailure::from_datafusion("cannot plan the rules", &error))?;
        let frame = frame
            .with_column(RULE_COLUMN, rule)
            .map_err(|error| ReadFailure::from_datafusion("cannot plan the rules", &error))?;
        let mut stream = frame
            .execute_stream()
            .await
            .map_err(|error| ReadFailure::from_datafusion("cannot read", &error))?;
        let mut staging = Staging::new(self.staging_path.clone());
        let mut ingested = IngestedObject::default();
        while let Some(batch) = stream.next().await {
            let batch =
                batch.map_err(|error| ReadFailure::from_datafusion("cannot read", &error))?;
            self.split(&batch, &mut ingested, &mut staging)?;
        }
        ingested.staged = staging.finish()?;
        Ok(ingested)
    }

    /// Sends the valid rows of `batch` to staging and the broken ones to quarantine.
    fn split(
        &self,
        batch: &RecordBatch,
        ingested: &mut IngestedObject,
        staging: &mut Staging,
    ) -> Result<(), ReadFailure> {
        let rows = batch.num_rows() as u64;
        let first_row = ingested.rows_read;
        ingested.rows_read += rows;
        ingested.missing_required_values += missing_required_values(batch);
        let rule = column(batch, RULE_COLUMN)?;
        let valid = is_null(rule.as_ref()).map_err(arrow_failure)?;
        let valid_rows = valid.true_count() as u64;
        ingested.rows_valid += valid_rows;
        if valid_rows > 0 {
            let base = (self.ordinal << ROW_BITS) + first_row;
            let positions: ArrayRef = Arc::new(Int64Array::from_iter_values(
                (0..rows).map(|offset| (base + offset) as i64),
            ));
            let schema = staging_schema();
            let mut columns = Vec::with_capacity(schema.fields().len());
            for field in schema.fields() {
                if field.name() == POSITION {
                    columns.push(positions.clone());
                } else if field.name() == ORIGIN {
                    // Lake rows have no origin mark.
                    columns.push(new_null_array(field.data_type(), rows as usize));
                } else {
                    columns.push(column(batch, field.name())?);
                }
            }
            let staged = RecordBatch::try_new(schema, columns).map_err(arrow_failure)?;
            staging.write(&filter_record_batch(&staged, &valid).map_err(arrow_failure)?)?;
        }
        if valid_rows < rows {
            let broken = is_not_null(rule.as_ref()).map_err(arrow_failure)?;
            let broken_batch = filter_record_batch(batch, &broken).map_err(arrow_failure)?;
            ingested
                .quarantined
                .extend(quarantined_rows(&broken_batch, self.object.key())?);
        }
        Ok(())
    }
}

fn column(batch: &RecordBatch, name: &str) -> Result<ArrayRef, ReadFailure> {
    batch
        .column_by_name(name)
        .cloned()
        .ok_or_else(|| ReadFailure(format!("internal: column {name} missing from the scan")))
}

fn arrow_failure(error: datafusion::arrow::error::ArrowError) -> ReadFailure {
    ReadFailure(format!("cannot process rows: {error}"))
}

/// Nulls in the required columns as written (a malformed timestamp is invalid, not missing).
fn missing_required_values(batch: &RecordBatch) -> u64 {
    REQUIRED_COLUMNS
        .iter()
        .map(|name| {
            let written = match *name {
                OCCURRED_AT => batch.column_by_name(OCCURRED_AT_SOURCE),
                AMOUNT => batch.column_by_name(AMOUNT_SOURCE),
                _ => None,
            };
            written
                .or_else(|| batch.column_by_name(name))
                .map_or(0, |array| array.null_count() as u64)
        })
        .sum()
}

/// The rows of `batch` (all broken) as quarantine entries, with the contract columns as
/// written in JSON.
fn quarantined_rows(
    batch: &RecordBatch,
    source_object: &str,
) -> Result<Vec<QuarantinedRow>, ReadFailure> {
    let rules =
        cast(column(batch, RULE_COLUMN)?.as_ref(), &DataType::Utf8).map_err(arrow_failure)?;
    let rules = rules
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| ReadFailure("internal: rule column is not text".to_owned()))?;
    let mut fields = Vec::with_capacity(CONTRACT_COLUMNS.len());
    let mut columns = Vec::with_capacity(CONTRACT_COLUMNS.len());
    for name in CONTRACT_COLUMNS {
        let written = match name {
            OCCURRED_AT => batch.column_by_name(OCCURRED_AT_SOURCE),
            AMOUNT => batch.column_by_name(AMOUNT_SOURCE),
            _ => None,
        };
        let array = written.map_or_else(|| column(batch, name), |array| Ok(array.clone()))?;
        let array = match array.data_type() {
            DataType::Utf8View | DataType::LargeUtf8 | DataType::Dictionary(_, _) => {
                cast(array.as_ref(), &DataType::Utf8).map_err(arrow_failure)?
            }
            _ => array,
        };
        fields.push(Field::new(name, array.data_type().clone(), true));
        columns.push(array);
    }
    let rows =
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(arrow_failure)?;
    let mut writer = LineDelimitedWriter::new(Vec::new());
    writer.write(&rows).map_err(arrow_failure)?;
    writer.finish().map_err(arrow_failure)?;
    let text = String::from_utf8(writer.into_inner())
        .map_err(|error| ReadFailure(format!("internal: quarantine json: {error}")))?;
    let mut quarantined = Vec::with_capacity(batch.num_rows());
    for (index, line) in text.lines().enumerate() {
        let rule = rules
            .is_valid(index)
            .then(|| Rule::from_name(rules.value(index)))
            .flatten()
            .ok_or_else(|| ReadFailure("internal: unknown rule name".to_owned()))?;
        quarantined.push(QuarantinedRow {
            rule,
            source_object: source_object.to_owned(),
            row_json: line.to_owned(),
        });
    }
    Ok(quarantined)
}

/// The staging file of one object, created at its first valid row.
struct Staging {
    path: PathBuf,
    writer: Option<FileWriter<BufWriter<File>>>,
}

impl Staging {
    fn new(path: PathBuf) -> Self {
        Self { path, writer: None }
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<(), ReadFailure> {
        let writer = match &mut self.writer {
            Some(writer) => writer,
            None => self.writer.insert(self.open(&batch.schema())?),
        };
        writer.write(batch).map_err(|error| self.failure(error))
    }

    fn open(&self, schema: &SchemaRef) -> Result<FileWriter<BufWriter<File>>, ReadFailure> {
        let file = File::create(&self.path).map_err(|error| self.failure(error))?;
        FileWriter::try_new(BufWriter::new(file), schema).map_err(|error| self.failure(error))
    }

    fn finish(mut self) -> Result<Option<PathBuf>, ReadFailure> {
        let Some(mut writer) = self.writer.take() else {
            return Ok(None);
        };
        writer.finish().map_err(|error| self.failure(error))?;
        Ok(Some(self.path))
    }

    fn failure(&self, error: impl std::fmt::Display) -> ReadFailure {
        ReadFailure(format!(
            "cannot write staging file {}: {error}",
            self.path.display()
        ))
    }
}
