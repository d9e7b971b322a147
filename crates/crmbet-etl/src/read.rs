//! Reading one lake object with DataFusion and normalising it to the contract schema.
//!
//! Each object is opened on its own so that one unreadable file (corrupt Parquet, an empty
//! file, a CSV without `amount`, a file that is not the format its extension says) is
//! reported with its reason while the others load. Text formats are read as text and typed
//! here with `try_cast`, so a malformed value becomes null and then breaks a rule of
//! [`crate::quality`] instead of failing its whole file.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::dataframe::DataFrame;
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{Expr, cast, ident, lit, try_cast};
use datafusion::prelude::{CsvReadOptions, JsonReadOptions, ParquetReadOptions, SessionContext};

use crate::contract::{self, AMOUNT, CONTRACT_COLUMNS, OCCURRED_AT, REQUIRED_COLUMNS};
use crate::lake::{Compression, LakeObject, LakeSource, ObjectFormat};

/// The column holding `occurred_at` as written, for text sources (quarantine shows it).
pub(crate) const OCCURRED_AT_SOURCE: &str = "occurred_at_source";
/// The column holding `amount` as written, for text sources.
pub(crate) const AMOUNT_SOURCE: &str = "amount_source";

/// Why an object could not be read; becomes the reason of a failed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReadFailure(pub String);

impl ReadFailure {
    pub(crate) fn from_datafusion(what: &str, error: &DataFusionError) -> Self {
        Self(format!("{what}: {}", error.strip_backtrace().trim()))
    }
}

/// The object as a DataFrame of the normalised contract columns (in contract order),
/// followed by [`OCCURRED_AT_SOURCE`] and [`AMOUNT_SOURCE`] when the source wrote them as
/// text. Fails when the object cannot be opened or lacks a required column.
pub(crate) async fn read_object(
    context: &SessionContext,
    lake: &LakeSource,
    object: &LakeObject,
    format: ObjectFormat,
) -> Result<DataFrame, ReadFailure> {
    normalise(open_object(context, lake, object, format).await?)
}

/// The object as a DataFrame of its columns as written: every column text for CSV, the
/// file's own types for Parquet and NDJSON. Fails when the object cannot be opened.
pub(crate) async fn open_object(
    context: &SessionContext,
    lake: &LakeSource,
    object: &LakeObject,
    format: ObjectFormat,
) -> Result<DataFrame, ReadFailure> {
    if object.fingerprint.size == 0 {
        return Err(ReadFailure("empty file".to_owned()));
    }
    let location = lake.location(object.key());
    let extension = extension_of(object.key(), format);
    let frame = match format {
        ObjectFormat::Parquet => {
            check_parquet_footer(lake, object).await?;
            let options = ParquetReadOptions::default().file_extension(&extension);
            context
                .read_parquet(location, options)
                .await
                .map_err(|error| {
                    ReadFailure::from_datafusion("not a readable parquet file", &error)
                })?
        }
        ObjectFormat::Csv(compression) => {
            // Zero records of inference: every column is text, typed below row by row.
            let options = CsvReadOptions::new()
                .has_header(true)
                .schema_infer_max_records(0)
                .newlines_in_values(true)
                .file_extension(&extension)
                .file_compression_type(compression_type(compression));
            context
                .read_csv(location, options)
                .await
                .map_err(|error| ReadFailure::from_datafusion("not a readable csv file", &error))?
        }
        ObjectFormat::NdJson(compression) => {
            let options = JsonReadOptions::default()
                .file_extension(&extension)
                .file_compression_type(compression_type(compression));
            context
                .read_json(location, options)
                .await
                .map_err(|error| {
                    ReadFailure::from_datafusion("not a readable ndjson file", &error)
                })?
        }
    };
    Ok(frame)
}

/// Bytes at the end of a Parquet file: the metadata length (u32, little endian) and `PAR1`.
const PARQUET_FOOTER_BYTES: u64 = 8;

/// Rejects a file whose footer is not Parquet's before the reader sees it (the reader's
/// own checks can panic on some garbage, e.g. a metadata length larger than the file).
async fn check_parquet_footer(lake: &LakeSource, object: &LakeObject) -> Result<(), ReadFailure> {
    let failure = |reason: String| ReadFailure(format!("not a readable parquet file: {reason}"));
    let size = object.fingerprint.size;
    let tail = lake
        .read_tail(object.key(), PARQUET_FOOTER_BYTES)
        .await
        .map_err(|error| failure(error.to_string()))?;
    let Some((length, magic)) = tail.split_first_chunk::<4>() else {
        return Err(failure(format!(
            "{size} bytes is shorter than a parquet footer"
        )));
    };
    if magic != b"PAR1" || tail.len() as u64 != PARQUET_FOOTER_BYTES {
        return Err(failure(
            "the file does not end with the parquet magic bytes".to_owned(),
        ));
    }
    let metadata_length = u64::from(u32::from_le_bytes(*length));
    if metadata_length + PARQUET_FOOTER_BYTES + 4 > size {
        return Err(failure(format!(
            "the footer announces {metadata_length} bytes of metadata in a {size}-byte file"
        )));
    }
    Ok(())
}

fn compression_type(compression: Compression) -> FileCompressionType {
    match compression {
        Compression::None => FileCompressionType::UNCOMPRESSED,
        Compression::Gzip => FileCompressionType::GZIP,
    }
}

/// The key's extension as written (`.csv.gz`, `.PARQUET`); DataFusion checks it verbatim.
fn extension_of(key: &str, format: ObjectFormat) -> String {
    let dots = match format {
        ObjectFormat::Csv(Compression::Gzip) | ObjectFormat::NdJson(Compression::Gzip) => 2,
        _ => 1,
    };
    let mut start = key.len();
    for _ in 0..dots {
        match key[..start].rfind('.') {
            Some(position) => start = position,
            None => break,
        }
    }
    key[start..].to_owned()
}

/// Projects `frame` onto the contract columns with their normalised types.
pub(crate) fn normalise(frame: DataFrame) -> Result<DataFrame, ReadFailure> {
    let schema = frame.schema().clone();
    let source_type = |column: &str| {
        schema
            .field_with_unqualified_name(column)
            .ok()
            .map(|field| field.data_type().clone())
    };
    let missing: Vec<&str> = REQUIRED_COLUMNS
        .into_iter()
        .filter(|column| source_type(column).is_none())
        .collect();
    if !missing.is_empty() {
        let plural = if missing.len() == 1 { "" } else { "s" };
        return Err(ReadFailure(format!(
            "missing required column{plural} {}",
            missing.join(", ")
        )));
    }
    let mut projection = Vec::with_capacity(CONTRACT_COLUMNS.len() + 2);
    for column in CONTRACT_COLUMNS {
        let expression = normalised_column(column, source_type(column).as_ref())?;
        projection.push(expression.alias(column));
    }
    for (column, source_column) in [(OCCURRED_AT, OCCURRED_AT_SOURCE), (AMOUNT, AMOUNT_SOURCE)] {
        if source_type(column).as_ref().is_some_and(is_text) {
            projection.push(ident(column).alias(source_column));
        }
    }
    frame
        .select(projection)
        .map_err(|error| ReadFailure::from_datafusion("cannot normalise columns", &error))
}

pub(crate) fn is_text(data_type: &DataType) -> bool {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, value) => is_text(value),
        _ => false,
    }
}

/// The expression giving `column` its contract type from a source of type `source`.
fn normalised_column(column: &str, source: Option<&DataType>) -> Result<Expr, ReadFailure> {
    let target = contract::column_type(column);
    let Some(source) = source else {
        return Ok(null_of(&target));
    };
    if *source == target {
        return Ok(ident(column));
    }
    if *source == DataType::Null {
        return Ok(null_of(&target));
    }
    let unsupported = || {
        ReadFailure(format!(
            "column {column} has type {source}, which cannot be read as {}",
            describe(&target)
        ))
    };
    match column {
        OCCURRED_AT => match source {
            DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => {
                Ok(cast(ident(column), target))
            }
            text if is_text(text) => Ok(try_cast(ident(column), target)),
            _ => Err(unsupported()),
        },
        AMOUNT => match source {
            numeric if numeric.is_numeric() => Ok(cast(ident(column), target)),
            text if is_text(text) => Ok(try_cast(ident(column), target)),
            _ => Err(unsupported()),
        },
        _ => match source {
            text if is_text(text) => Ok(cast(ident(column), target)),
            DataType::Boolean => Ok(cast(cast(ident(column), DataType::Utf8), target)),
            numeric if numeric.is_numeric() => {
                Ok(cast(cast(ident(column), DataType::Utf8), target))
            }
            _ => Err(unsupported()),
        },
    }
}

fn null_of(data_type: &DataType) -> Expr {
    match ScalarValue::try_from(data_type) {
        Ok(null) => lit(null),
        Err(_) => cast(lit(ScalarValue::Null), data_type.clone()),
    }
}

fn describe(data_type: &DataType) -> &'static str {
    match data_type {
        DataType::Timestamp(_, _) => "a timestamp (RFC 3339 in text formats)",
        DataType::Float64 => "a number",
        _ => "text",
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{
        Array, ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
        TimestampNanosecondArray,
    };
    use datafusion::arrow::datatypes::{Field, Schema};

    use super::*;
    use crate::contract::{TRANSACTION_ID, USER_ID};

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        let fields: Vec<Field> = columns
            .iter()
            .map(|(name, array)| Field::new(*name, array.data_type().clone(), true))
            .collect();
        let arrays = columns.into_iter().map(|(_, array)| array).collect();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap()
    }

    fn text(values: &[Option<&str>]) -> ArrayRef {
        Arc::new(StringArray::from(values.to_vec()))
    }

    #[tokio::test]
    async fn sources_of_other_types_are_normalised_to_the_contract() {
        // Numeric ids, naive nanosecond timestamps, integer amounts, no optional columns.
        let source = batch(vec![
            ("transaction_id", Arc::new(Int64Array::from(vec![7, 8]))),
            ("user_id", text(&[Some("u1"), None])),
            (
                "occurred_at",
                Arc::new(TimestampNanosecondArray::from(vec![1_500_000_000_000, 0])),
            ),
            ("type", text(&[Some("deposit"), Some("bet")])),
            ("amount", Arc::new(Int64Array::from(vec![Some(5), None]))),
            ("currency", text(&[Some("EUR"), Some("EUR")])),
            ("ignored_extra", text(&[Some("x"), Some("y")])),
        ]);
        let frame = normalise(SessionContext::new().read_batch(source).unwrap()).unwrap();
        let names: Vec<String> = frame
            .schema()
            .fields()
            .iter()
            .map(|field| field.name().clone())
            .collect();
        assert_eq!(names, CONTRACT_COLUMNS);
        for field in frame.schema().fields() {
            assert_eq!(
                *field.data_type(),
                contract::column_type(field.name()),
                "{}",
                field.name()
            );
        }
        let rows = frame.collect().await.unwrap().remove(0);
        let ids = cast_text(rows.column_by_name(TRANSACTION_ID).unwrap());
        assert_eq!(ids.value(0), "7");
        assert!(rows.column_by_name(USER_ID).unwrap().is_null(1));
        let times = rows.column_by_name(OCCURRED_AT).unwrap();
        let times = times
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .unwrap();
        assert_eq!(times.value(0), 1_500_000_000);
        assert_eq!(rows.column_by_name(AMOUNT).unwrap().null_count(), 1);
        assert_eq!(rows.column_by_name("game_type").unwrap().null_count(), 2);
    }

    #[tokio::test]
    async fn text_values_that_do_not_parse_become_null_not_errors() {
        let source = batch(vec![
            ("transaction_id", text(&[Some("t1"), Some("t2")])),
            ("user_id", text(&[Some("u1"), Some("u1")])),
            (
                "occurred_at",
                text(&[Some("2026-01-01T00:00:01+01:00"), Some("yesterday")]),
            ),
            ("type", text(&[Some("bet"), Some("bet")])),
            ("amount", text(&[Some("1e2"), Some("ten")])),
            ("currency", text(&[Some("EUR"), Some("EUR")])),
        ]);
        let frame = normalise(SessionContext::new().read_batch(source).unwrap()).unwrap();
        let rows = frame.collect().await.unwrap().remove(0);
        let times = rows.column_by_name(OCCURRED_AT).unwrap();
        let times = times
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .unwrap();
        assert_eq!(
            times.value(0),
            1_767_222_001_000_000,
            "2025-12-31T23:00:01Z"
        );
        assert!(times.is_null(1));
        assert_eq!(rows.column_by_name(AMOUNT).unwrap().null_count(), 1);
        let written = cast_text(rows.column_by_name(OCCURRED_AT_SOURCE).unwrap());
        assert_eq!(written.value(1), "yesterday");
    }

    #[tokio::test]
    async fn a_missing_required_column_fails_the_object() {
        let source = batch(vec![("transaction_id", text(&[Some("t1")]))]);
        let failure = normalise(SessionContext::new().read_batch(source).unwrap()).unwrap_err();
        assert_eq!(
            failure.0,
            "missing required columns user_id, occurred_at, type, amount, currency"
        );
    }

    fn cast_text(array: &ArrayRef) -> StringArray {
        let text = datafusion::arrow::compute::cast(array, &DataType::Utf8).unwrap();
        text.as_any().downcast_ref::<StringArray>().unwrap().clone()
    }

    #[test]
    fn extension_is_taken_verbatim_from_the_key() {
        let cases = [
            ("t/a.parquet", ObjectFormat::Parquet, ".parquet"),
            ("t/a.b.PARQUET", ObjectFormat::Parquet, ".PARQUET"),
            (
                "t/a.csv.gz",
                ObjectFormat::Csv(Compression::Gzip),
                ".csv.gz",
            ),
            ("t/a.Csv", ObjectFormat::Csv(Compression::None), ".Csv"),
            (
                "t/x.y.jsonl.gz",
                ObjectFormat::NdJson(Compression::Gzip),
                ".jsonl.gz",
            ),
        ];
        for (key, format, expected) in cases {
            assert_eq!(extension_of(key, format), expected, "{key}");
        }
    }
}
