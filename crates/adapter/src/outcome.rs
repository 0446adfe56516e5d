//! What a delivery operation can come back with, besides success.

use std::time::Duration;

/// Why a delivery operation did not succeed, classified for the dispatcher.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Worth trying again after a backoff: a timeout, a refused connection, a 5xx, a 408.
    #[error("{message}")]
    Retryable {
        /// What went wrong, for the attempt history.
        message: String,
    },
    /// The vendor asked us to slow down (429, or 503 with `Retry-After`): try again no sooner
    /// than `retry_after` when it is given.
    #[error("rate limited by the target: {message}")]
    RateLimited {
        /// The vendor's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
        /// What the vendor said.
        message: String,
    },
    /// The remote resource does not exist (404): an update target to re-create, a delete done.
    #[error("not found at the target: {message}")]
    NotFound {
        /// What the vendor said.
        message: String,
    },
    /// The vendor already holds a resource with this unique value (409): look it up and adopt.
    #[error("conflict at the target: {message}")]
    Conflict {
        /// What the vendor said.
        message: String,
    },
    /// The vendor refused the data (a 4xx that retrying cannot fix): dead-letter with its message.
    #[error("{message}")]
    Permanent {
        /// The HTTP status, when there was one.
        status: Option<u16>,
        /// The vendor's message (its SCIM `detail` when it sent one).
        message: String,
    },
}

impl DeliveryError {
    /// A permanent error without an HTTP status (a translation failure, an unsupported operation).
    pub fn permanent(message: impl Into<String>) -> Self {
        DeliveryError::Permanent { status: None, message: message.into() }
    }

    /// A retryable error.
    pub fn retryable(message: impl Into<String>) -> Self {
        DeliveryError::Retryable { message: message.into() }
    }

    /// Whether the dispatcher should try again (with backoff) rather than dead-letter.
    pub fn is_retryable(&self) -> bool {
        matches!(self, DeliveryError::Retryable { .. } | DeliveryError::RateLimited { .. })
    }
}
