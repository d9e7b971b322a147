//! The one error type of the ETL: what stopped a run as a whole.
//!
//! A bad object or a bad row never becomes an [`Error`]: objects that cannot be read are
//! reported in [`crate::EtlOutcome::failed_objects`] and rows that break a contract rule go to
//! quarantine. An `Error` means the run itself could not go on.

use std::path::PathBuf;

/// A result whose error is the ETL's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why an ETL run stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The lake root does not exist or is not a folder.
    #[error("lake {path} is not a readable folder: {reason}")]
    LakeNotFound {
        /// The lake root as given.
        path: PathBuf,
        /// What the file system said.
        reason: String,
    },
    /// Listing the lake's objects failed part way.
    #[error("listing lake objects under {location} failed: {reason}")]
    LakeListing {
        /// The folder or prefix being listed.
        location: String,
        /// What the source said.
        reason: String,
    },
    /// The lake URL is not `s3://bucket/prefix`.
    #[error("lake URL {url} is not of the form s3://bucket/prefix: {reason}")]
    InvalidLakeUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The lake's S3 bucket does not exist.
    #[error("bucket {bucket} does not exist; check the --lake URL")]
    BucketNotFound {
        /// The bucket named by the lake URL.
        bucket: String,
    },
    /// The AWS configuration chain found no credentials for an S3 lake.
    #[error(
        "no AWS credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or a profile"
    )]
    NoCredentials,
    /// AWS credentials were found but cannot be loaded or were rejected.
    #[error(
        "the AWS credentials cannot be used: {reason}; check AWS_ACCESS_KEY_ID, \
         AWS_SECRET_ACCESS_KEY and the AWS profile"
    )]
    Credentials {
        /// What the credentials provider or S3 said.
        reason: String,
    },
    /// The S3 endpoint does not answer.
    #[error("cannot reach the S3 endpoint URL {endpoint}: {reason}; check AWS_ENDPOINT_URL")]
    S3Unreachable {
        /// The endpoint URL the client used.
        endpoint: String,
        /// The underlying connection error.
        reason: String,
    },
    /// The warehouse folder cannot be created, read or written.
    #[error("warehouse {path}: {reason}")]
    Warehouse {
        /// The file or folder involved.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A query over already accepted data failed (the warehouse or the feature plan).
    #[error("{stage} failed: {source}")]
    Query {
        /// The step of the run, e.g. `feature computation`.
        stage: &'static str,
        /// DataFusion's error.
        #[source]
        source: Box<datafusion::error::DataFusionError>,
    },
    /// The feature plan returned something other than the expected columns.
    #[error("feature output column {column}: {reason}")]
    FeatureSchema {
        /// The column name.
        column: String,
        /// What was wrong with it.
        reason: String,
    },
    /// A lake object could not be read to replay its rows as live transactions.
    #[error("replaying {key}: {reason}")]
    Replay {
        /// The object's key.
        key: String,
        /// Why it could not be read.
        reason: String,
    },
    /// A background task of the run panicked or was cancelled.
    #[error("etl task failed: {0}")]
    Task(String),
}

impl Error {
    /// Wraps a DataFusion error raised during `stage`.
    pub(crate) fn query(stage: &'static str, error: datafusion::error::DataFusionError) -> Self {
        Self::Query {
            stage,
            source: Box::new(error),
        }
    }

    /// A warehouse error about `path`.
    pub(crate) fn warehouse(path: impl Into<PathBuf>, reason: impl ToString) -> Self {
        Self::Warehouse {
            path: path.into(),
            reason: reason.to_string(),
        }
    }
}

impl From<Error> for crmbet_core::Error {
    fn from(error: Error) -> Self {
        match error {
            Error::LakeNotFound { .. }
            | Error::Replay { .. }
            | Error::BucketNotFound { .. }
            | Error::NoCredentials
            | Error::Credentials { .. } => Self::FailedPrecondition(error.to_string()),
            Error::InvalidLakeUrl { .. } => Self::invalid_argument("lake", error.to_string()),
            Error::LakeListing { .. } | Error::S3Unreachable { .. } => {
                Self::Unavailable(error.to_string())
            }
            Error::Warehouse { .. }
            | Error::Query { .. }
            | Error::FeatureSchema { .. }
            | Error::Task(_) => Self::Internal(error.to_string()),
        }
    }
}
