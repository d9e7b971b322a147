//! The domain error of crmbet and its deliberately small set of codes.

/// A result whose error is the domain [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in the domain's words. Messages are lowercase, without trailing
/// punctuation, and say what the caller can do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request field is out of its allowed range or malformed.
    #[error("{field}: {reason}")]
    InvalidArgument { field: String, reason: String },
    /// The thing asked for does not exist.
    #[error("{kind} {id} not found")]
    NotFound { kind: &'static str, id: String },
    /// The thing already exists (a duplicate key).
    #[error("{0}")]
    AlreadyExists(String),
    /// The system is not in a state that allows the call, e.g. no active model yet.
    #[error("{0}")]
    FailedPrecondition(String),
    /// A capability that a later release brings.
    #[error("{capability} is not available yet in this release")]
    Unimplemented { capability: &'static str },
    /// A dependency (database, broker) cannot be reached; retrying may help.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or a broken invariant; the details are logged, not shown to callers.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The small code set every error maps to; the server maps it to gRPC and HTTP codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidArgument,
    NotFound,
    AlreadyExists,
    FailedPrecondition,
    Unimplemented,
    Unavailable,
    Internal,
}

impl Error {
    /// An [`Error::InvalidArgument`] for `field`.
    pub fn invalid_argument(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// An [`Error::NotFound`] for the `kind` of thing with `id`.
    pub fn not_found(kind: &'static str, id: impl ToString) -> Self {
        Self::NotFound {
            kind,
            id: id.to_string(),
        }
    }

    /// The code this error maps to.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidArgument { .. } => ErrorCode::InvalidArgument,
            Self::NotFound { .. } => ErrorCode::NotFound,
            Self::AlreadyExists(_) => ErrorCode::AlreadyExists,
            Self::FailedPrecondition(_) => ErrorCode::FailedPrecondition,
            Self::Unimplemented { .. } => ErrorCode::Unimplemented,
            Self::Unavailable(_) => ErrorCode::Unavailable,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }
}
