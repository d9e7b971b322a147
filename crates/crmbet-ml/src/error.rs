//! The one error type of `crmbet-ml`: what was wrong with the input or the options, in words
//! the caller can act on.

/// Everything that can stop training or assignment.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The table has too few players for the requested number of clusters.
    #[error("need at least {needed} players to train, got {players}")]
    NotEnoughPlayers {
        /// Players in the table.
        players: usize,
        /// Players the options need.
        needed: usize,
    },
    /// A fixed or bounding k outside the supported range.
    #[error("k must be between 2 and 50, got {k}")]
    InvalidK {
        /// The rejected k.
        k: usize,
    },
    /// `k_min` above `k_max`.
    #[error("k_min must not exceed k_max, got k_min {k_min} and k_max {k_max}")]
    InvalidKRange {
        /// The lower bound asked for.
        k_min: usize,
        /// The upper bound asked for.
        k_max: usize,
    },
    /// A column the model was trained on is absent from the input.
    #[error("feature {feature} is missing: pass the same columns the model was trained on")]
    MissingFeature {
        /// The column's name.
        feature: String,
    },
    /// The table's parts do not line up.
    #[error("feature table is inconsistent: {reason}")]
    InvalidTable {
        /// What does not line up.
        reason: String,
    },
    /// A raw row does not have one value per column name.
    #[error("a row has {values} values for {columns} column names")]
    RowLength {
        /// Column names given.
        columns: usize,
        /// Values given.
        values: usize,
    },
    /// No column is usable: every one is missing, constant or not a model feature.
    #[error("no usable feature: every column is missing, constant or not modelled")]
    NoUsableFeatures,
    /// An option outside its range.
    #[error("option {option} is invalid: {reason}")]
    InvalidOption {
        /// The option's name.
        option: &'static str,
        /// The rule it breaks.
        reason: String,
    },
    /// The clustering library failed on data that passed validation.
    #[error("clustering failed: {reason}")]
    Clustering {
        /// The library's message.
        reason: String,
    },
}
