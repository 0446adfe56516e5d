//! `StoreError` and the one place where diesel's, r2d2's and the engines' errors are classified.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use scimgw_scim::ScimError;

/// Everything a store call can fail with. The gateway maps `Conflict` to 409 `uniqueness`,
/// `VersionMismatch` to 412, `Rejected` to its own SCIM error, `Unavailable` to 503,
/// `TenantGone` to 401 (the key went with its tenant), and
/// `Internal` and `BadUrl` to an opaque 500 — their text is for logs, never for clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique value is taken: `"userName"` for users (ignoring case), `"name"` for tenants,
    /// `"id"` for an API key id.
    #[error("{attribute} is already taken")]
    Conflict {
        /// The attribute whose value is taken.
        attribute: &'static str,
    },
    /// `If-Match` named a version that is no longer current.
    #[error("the resource is at version {current}, not the version given in If-Match")]
    VersionMismatch {
        /// The current version.
        current: i64,
    },
    /// The change was refused: the update closure's error, or a resource the store cannot hold
    /// (a user without `userName`, a group without `displayName`).
    #[error("the change was refused: {0}")]
    Rejected(ScimError),
    /// The database cannot be reached or is too busy: pool timeout, connection refused or lost,
    /// SQLite still locked after `busy_timeout_ms`. Worth retrying later.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// A write referred to a row that is gone: its tenant was removed (a foreign key failed)
    /// while a request of one of its keys was under way, or while the gateway still trusted the
    /// key (`auth.key_cache_ms`).
    #[error("the tenant (or the row this write belongs to) no longer exists: {0}")]
    TenantGone(String),
    /// Anything else. The message is for logs only.
    #[error("store error: {0}")]
    Internal(String),
    /// `store.url` cannot be used.
    #[error("unusable store.url: {0}")]
    BadUrl(String),
}

impl StoreError {
    /// Classifies a diesel error that no caller expected (uniqueness is mapped by the callers, who
    /// know which attribute a constraint guards).
    pub(crate) fn from_db(e: DieselError) -> StoreError {
        if connection_lost(&e) {
            CONNECTION_LOST.set(true);
        }
        if is_unavailable(&e) {
            return StoreError::Unavailable(e.to_string());
        }
        if let DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) = &e {
            return StoreError::TenantGone(e.to_string());
        }
        StoreError::Internal(e.to_string())
    }

    /// As [`StoreError::from_db`], but a unique violation becomes `Conflict { attribute }`.
    pub(crate) fn unique(attribute: &'static str) -> impl Fn(DieselError) -> StoreError {
        move |e| match e {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => StoreError::Conflict { attribute },
            e => StoreError::from_db(e),
        }
    }
}

impl From<DieselError> for StoreError {
    fn from(e: DieselError) -> Self {
        StoreError::from_db(e)
    }
}

impl From<r2d2::Error> for StoreError {
    /// r2d2 fails only by timing out; its message carries the engine's last connection error.
    fn from(e: r2d2::Error) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

thread_local! {
    /// Set when a query on this thread failed because its connection is gone (the server
    /// restarted, or ended the session). The pool does not test connections as it hands them
    /// out (a round trip per request on PostgreSQL, a third of a read's cost), so a dead one is
    /// found by using it: this flag makes the pool drop it when it comes back
    /// ([`take_connection_lost`] in `Manager::has_broken`), and the next request gets a fresh
    /// one. A connection is used and returned on one thread; a stale flag costs one reconnect.
    static CONNECTION_LOST: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether a query on this thread lost its connection since the last call (and clears that).
pub(crate) fn take_connection_lost() -> bool {
    CONNECTION_LOST.take()
}

/// The connection itself is gone (not just this statement or transaction).
fn connection_lost(e: &DieselError) -> bool {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand, _) => {
            true
        }
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            let m = info.message().to_ascii_lowercase();
            CONNECTION_LOST_MESSAGES.iter().any(|needle| m.contains(needle))
        }
        _ => false,
    }
}

/// What the engines say when the session is gone: PostgreSQL shutting down or restarting (57P01,
/// 57P02, 57P03), a closed socket, a refused reconnect.
const CONNECTION_LOST_MESSAGES: [&str; 5] = [
    "terminating connection",
    "server closed the connection",
    "no connection to the server",
    "the database system is",
    "connection refused",
];

/// Whether the error means "the database is not there or too busy now" rather than a bug.
fn is_unavailable(e: &DieselError) -> bool {
    if connection_lost(e) {
        return true;
    }
    match e {
        DieselError::DatabaseError(kind, info) => match kind {
            // PostgreSQL gave up on this transaction to let another proceed; the same request
            // succeeds when retried (SCIM clients retry on 503).
            DatabaseErrorKind::SerializationFailure => true,
            DatabaseErrorKind::Unknown => {
                let m = info.message().to_ascii_lowercase();
                // SQLITE_BUSY / SQLITE_LOCKED after busy_timeout; a PostgreSQL deadlock victim
                // (40P01); PostgreSQL refusing more connections (53300) or not reachable.
                [
                    "database is locked",
                    "database table is locked",
                    "deadlock detected",
                    "too many connections",
                    "could not connect",
                ]
                .iter()
                .any(|needle| m.contains(needle))
            }
            _ => false,
        },
        _ => false,
    }
}
