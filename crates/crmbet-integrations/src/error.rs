//! What can go wrong delivering a message.

use std::time::Duration;

/// A result whose error is a [`DeliveryError`].
pub type Result<T, E = DeliveryError> = std::result::Result<T, E>;

/// Why a delivery did not complete; every kind is retried later, none drops the message.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// Smartico refused or failed the request; `retry_after` is its `Retry-After`.
    #[error("smartico answered {status}: {message}")]
    Rejected {
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    /// Smartico could not be reached or did not answer in time.
    #[error("smartico is unreachable: {0}")]
    Unreachable(String),
    /// Some events of a request were refused; their ids and reasons.
    #[error("smartico refused {} events, e.g. {:?}", .0.len(), .0.first())]
    EventsRefused(Vec<(String, String)>),
    /// The circuit breaker is open: Smartico kept failing, so no request is sent for now.
    #[error("the circuit breaker in front of smartico is open")]
    CircuitOpen,
    /// The outbox message cannot be read; it stays in the outbox for an operator.
    #[error("outbox message {message_id} is malformed: {reason}")]
    Malformed { message_id: i64, reason: String },
    /// The broker failed.
    #[error("broker: {0}")]
    Broker(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] crmbet_core::Error),
}

impl DeliveryError {
    /// How long the server asked to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Rejected { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}
