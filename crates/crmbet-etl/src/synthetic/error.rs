//! Why a synthetic lake could not be written.

use std::path::PathBuf;

/// Why [`write_synthetic_lake`](super::write_synthetic_lake) stopped.
#[derive(Debug, thiserror::Error)]
pub enum SyntheticLakeError {
    /// An option is out of range.
    #[error("{option}: {reason}")]
    InvalidOption {
        /// The option's field name.
        option: &'static str,
        /// What is wrong and what is allowed.
        reason: String,
    },
    /// The lake root already holds transactions, which would mix with the new ones.
    #[error("{path} already holds files; remove it or choose another folder for the lake")]
    LakeNotEmpty {
        /// The `transactions` folder found.
        path: PathBuf,
    },
    /// A file or folder of the lake could not be written.
    #[error("writing {path}: {reason}")]
    Write {
        /// The file or folder involved.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

impl SyntheticLakeError {
    /// A write error about `path`.
    pub(super) fn write(path: impl Into<PathBuf>, reason: impl ToString) -> Self {
        Self::Write {
            path: path.into(),
            reason: reason.to_string(),
        }
    }
}
