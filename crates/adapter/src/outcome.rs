//! What a delivery operation can come back with, besides success.

use std::time::Duration;

/// Why a delivery operation did not succeed, classified for the dispatcher.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Worth trying again after a backoff, and not the target's own health: an answer that could
    /// not be read, a redirect, the store failing.
    #[error("{message}")]
    Retryable {
        /// What went wrong, for the attempt history.
        message: String,
    },
    /// The target as a whole is not serving us: no connection, a timeout, a 5xx, a 408, or a
    /// refused credential (401/403). Retried like [`DeliveryError::Retryable`]; the dispatcher also
    /// counts these per target and pauses the target (see `Down`).
    #[error("{message}")]
    TargetDown {
        /// Which way.
        reason: Down,
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
        matches!(
            self,
            DeliveryError::Retryable { .. } | DeliveryError::RateLimited { .. } | DeliveryError::TargetDown { .. }
        )
    }

    /// Why the target as a whole is not serving, when this says so.
    pub fn down(&self) -> Option<Down> {
        match self {
            DeliveryError::TargetDown { reason, .. } => Some(*reason),
            _ => None,
        }
    }

    /// Whether the target answered this request as a working app does (a 404, 409, 429, a 4xx
    /// about the data): it is up, whatever the answer meant for this resource.
    pub fn target_answered(&self) -> bool {
        matches!(
            self,
            DeliveryError::NotFound { .. } | DeliveryError::Conflict { .. } | DeliveryError::RateLimited { .. }
        ) || matches!(self, DeliveryError::Permanent { status: Some(_), .. })
    }
}

/// How a target is not serving us (`DeliveryError::TargetDown`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Down {
    /// 401: the credential is refused. One is enough to pause the target.
    Unauthorized,
    /// 403: the credential lacks a permission (or the app refuses this one resource: counted
    /// with the others in a row, not at once).
    Forbidden,
    /// No connection, or no answer in time.
    Unreachable,
    /// A 5xx (other than a 503 with `Retry-After`) or a 408.
    ServerError,
}

impl Down {
    /// The name used in the store, `status` and the `reason` label of metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Down::Unauthorized => "unauthorized",
            Down::Forbidden => "forbidden",
            Down::Unreachable => "unreachable",
            Down::ServerError => "server_error",
        }
    }

    /// Whether one such answer pauses the target (a refused credential is not transient: every
    /// delivery would spend an attempt on it), rather than several in a row. A 403 may be about
    /// one resource (an app that refuses to deactivate its owner), so it is not.
    pub fn pauses_at_once(self) -> bool {
        matches!(self, Down::Unauthorized)
    }
}
