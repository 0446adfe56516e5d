//! The connection enum over both engines, the r2d2 manager that picks one by URL, and the transaction rules.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use diesel::connection::{AnsiTransactionManager, Connection, SimpleConnection, TransactionManager};
use diesel::r2d2::R2D2Connection;
use diesel::result::Error as DieselError;
use diesel::{PgConnection, SqliteConnection};

use crate::config::{SqliteSynchronous, StoreConfig};
use crate::error::StoreError;
use crate::redact::redact_url;

/// One connection to either engine. Every query of the store is written once against this type
/// (its backend is the derive's `MultiBackend`); only the transaction openers below and the
/// migrations look inside.
#[derive(diesel::MultiConnection)]
pub(crate) enum AnyConnection {
    Sqlite(SqliteConnection),
    Pg(PgConnection),
}

/// Runs the same statement text on the inner connection of either engine: for the few statements
/// the enum's backend cannot express. Today that is the multi-row `INSERT` (diesel's
/// `CanInsertInSingleQuery` for a `Vec` of rows requires the ISO `DEFAULT` keyword dialect, which the
/// derived backend does not claim). Keep the body identical for both arms: that is the point.
macro_rules! on_inner {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::connection::AnyConnection::Sqlite($c) => $body,
            $crate::connection::AnyConnection::Pg($c) => $body,
        }
    };
}
pub(crate) use on_inner;

/// The engine behind a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl Backend {
    /// `sqlite` or `postgres`, for logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a store lives, parsed from `store.url`.
#[derive(Clone)]
pub(crate) enum Target {
    /// A SQLite database file.
    Sqlite(PathBuf),
    /// A libpq connection URL.
    Postgres(String),
}

impl std::fmt::Debug for Target {
    /// Without the password: targets end up in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            Target::Postgres(url) => f.debug_tuple("Postgres").field(&redact_url(url)).finish(),
        }
    }
}

impl Target {
    /// Reads `sqlite://path`, `sqlite:path`, `postgres://…` or `postgresql://…`.
    ///
    /// `sqlite://data/x.db` is relative to the working directory and `sqlite:///var/lib/x.db` is
    /// absolute. In-memory SQLite is refused: every pooled connection would see its own empty database.
    pub(crate) fn parse(url: &str, connect_timeout_secs: u64) -> Result<Target, StoreError> {
        let url = url.trim();
        let lower = url.to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            return Ok(Target::Postgres(with_connect_timeout(url, connect_timeout_secs)));
        }
        let path = if lower.starts_with("sqlite://") {
            &url["sqlite://".len()..]
        } else if lower.starts_with("sqlite:") {
            &url["sqlite:".len()..]
        } else {
            return Err(StoreError::BadUrl(format!(
                "store.url must start with sqlite:// (e.g. sqlite://data/scimgw.db) or postgres://, found `{}`",
                redact_url(url)
            )));
        };
        if path.is_empty() || path == ":memory:" || path.contains("mode=memory") {
            return Err(StoreError::BadUrl(
                "store.url must name a SQLite file: an in-memory database is not shared between pooled connections"
                    .into(),
            ));
        }
        if path.contains('?') {
            return Err(StoreError::BadUrl(
                "store.url: SQLite takes no query parameters; set busy_timeout_ms and sqlite_synchronous instead"
                    .into(),
            ));
        }
        Ok(Target::Sqlite(PathBuf::from(path)))
    }

    /// A PostgreSQL URL with the store's TCP keepalives and `tcp_user_timeout` added, unless
    /// it sets any of them itself (see [`StoreConfig::tcp_keepalive_secs`]); SQLite as it is.
    pub(crate) fn with_keepalives(self, secs: u64) -> Target {
        match self {
            Target::Postgres(url) if secs > 0 && !url.contains("keepalives") && !url.contains("tcp_user_timeout") => {
                let interval = (secs / 3).max(1);
                let sep = if url.contains('?') { '&' } else { '?' };
                Target::Postgres(format!(
                    "{url}{sep}keepalives=1&keepalives_idle={secs}&keepalives_interval={interval}&keepalives_count=3\
                     &tcp_user_timeout={}",
                    secs.saturating_mul(2000)
                ))
            }
            other => other,
        }
    }

    pub(crate) fn backend(&self) -> Backend {
        match self {
            Target::Sqlite(_) => Backend::Sqlite,
            Target::Postgres(_) => Backend::Postgres,
        }
    }
}

/// Adds libpq's `connect_timeout` unless the URL sets it: without it a connection attempt to a
/// host that drops packets blocks a pool thread for minutes.
fn with_connect_timeout(url: &str, secs: u64) -> String {
    if url.contains("connect_timeout=") {
        return url.to_owned();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}connect_timeout={}", secs.max(1))
}

/// Why a connection could not be made: the engine's own message, kept for the operator.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct ConnectError(pub(crate) String);

impl From<diesel::ConnectionError> for ConnectError {
    fn from(e: diesel::ConnectionError) -> Self {
        ConnectError(e.to_string().trim_end().to_owned())
    }
}

impl From<DieselError> for ConnectError {
    fn from(e: DieselError) -> Self {
        ConnectError(e.to_string())
    }
}

/// The r2d2 manager: opens the engine the URL names and keeps its real error (diesel's derived
/// `establish` tries every engine and reports only the last failure).
#[derive(Clone)]
pub(crate) struct Manager {
    pub(crate) target: Target,
    busy_timeout_ms: u64,
    synchronous: SqliteSynchronous,
    cache_kib: u64,
    /// PostgreSQL: the `statement_timeout` each connection sets (0: none).
    statement_timeout_ms: u64,
    /// Whether the pool's last attempt to connect failed: the database is down (or unreachable)
    /// until an attempt succeeds again. [`crate::Store`] then waits for a connection only briefly
    /// instead of `connect_timeout_secs`, so requests fail fast with 503 during an outage.
    unreachable: Arc<AtomicBool>,
}

impl Manager {
    pub(crate) fn new(target: Target, cfg: &StoreConfig) -> Self {
        Self {
            target,
            busy_timeout_ms: cfg.busy_timeout_ms,
            synchronous: cfg.sqlite_synchronous,
            cache_kib: u64::from(cfg.sqlite_cache_mb.max(1)) * 1024,
            statement_timeout_ms: cfg.statement_timeout_ms,
            unreachable: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Whether the last attempt to open a pooled connection failed.
    pub(crate) fn unreachable(&self) -> bool {
        self.unreachable.load(Ordering::Relaxed)
    }

    /// Opens one connection without the pool: for the one-time WAL switch and for migrations.
    pub(crate) fn open(&self) -> Result<AnyConnection, ConnectError> {
        match &self.target {
            Target::Sqlite(path) => {
                let mut conn = SqliteConnection::establish(&path_str(path)?)?;
                // busy_timeout first: the pragmas below may themselves wait for a lock.
                // temp_store = MEMORY: the sub-journal of a savepoint (every write of a group-commit
                // batch has one) stays in memory instead of a temp file written page by page
                // (a quarter of the writer's time under load, bench/RESULTS.md). cache_size is
                // negative: KiB, not pages.
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {}; PRAGMA synchronous = {}; PRAGMA foreign_keys = ON; \
                     PRAGMA temp_store = MEMORY; PRAGMA cache_size = -{};",
                    self.busy_timeout_ms,
                    self.synchronous.pragma_value(),
                    self.cache_kib
                ))?;
                Ok(AnyConnection::Sqlite(conn))
            }
            Target::Postgres(url) => {
                let mut conn = PgConnection::establish(url)?;
                if self.statement_timeout_ms > 0 {
                    conn.batch_execute(&format!("SET statement_timeout = {}", self.statement_timeout_ms))?;
                }
                Ok(AnyConnection::Pg(conn))
            }
        }
    }
}

fn path_str(path: &Path) -> Result<String, ConnectError> {
    path.to_str().map(str::to_owned).ok_or_else(|| ConnectError("the SQLite path is not valid UTF-8".into()))
}

impl r2d2::ManageConnection for Manager {
    type Connection = AnyConnection;
    type Error = ConnectError;

    fn connect(&self) -> Result<AnyConnection, ConnectError> {
        let opened = self.open();
        self.unreachable.store(opened.is_err(), Ordering::Relaxed);
        opened
    }

    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), ConnectError> {
        conn.ping().map_err(ConnectError::from)
    }

    fn has_broken(&self, conn: &mut AnyConnection) -> bool {
        // Evaluate both: the flag is cleared as it is read.
        let lost = crate::error::take_connection_lost();
        conn.is_broken() || lost
    }
}

/// Prepares a SQLite file before the pool opens: creates its directory and switches it to WAL.
///
/// WAL is a property of the file, so it is set once here; setting it from every pooled
/// connection raced and gave "database is locked" (STACK.md).
///
/// A directory and a file it creates are its owner's only (0700, 0600): the store holds every
/// user's attributes and the hashes of the API keys. SQLite gives the `-wal` and `-shm` files the
/// database file's mode. What exists already keeps its mode (an admin may have chosen a group).
pub(crate) fn prepare_sqlite(manager: &Manager, path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| {
            StoreError::Unavailable(format!("cannot create the directory {} for the SQLite file: {e}", dir.display()))
        })?;
    }
    if !path.exists() {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| StoreError::Unavailable(format!("cannot create the SQLite file {}: {e}", path.display())))?;
    }
    let mut conn = manager.open().map_err(|e| StoreError::Unavailable(e.0))?;
    // auto_vacuum takes effect only on a file without tables (a new one): a purge can then give
    // the pages it frees back to the file system (see `retention.rs`).
    conn.batch_execute("PRAGMA auto_vacuum = INCREMENTAL; PRAGMA journal_mode = WAL;").map_err(StoreError::from_db)?;
    Ok(())
}

/// Runs `f` in a write transaction and commits, or rolls back if `f` fails.
///
/// On SQLite the transaction begins with `BEGIN IMMEDIATE`: it takes the write lock up front (waiting
/// at most `busy_timeout`), so a read-then-write can never fail half-way with "database is
/// locked". A deferred `BEGIN` failed 12,517 of 20,000 such transactions at 4 threads (STACK.md).
/// PostgreSQL uses a plain `BEGIN` (READ COMMITTED); `update` guards its writes with the row version.
pub(crate) fn write_tx<T, E>(
    conn: &mut AnyConnection,
    f: impl FnOnce(&mut AnyConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<DieselError>,
{
    match conn {
        AnyConnection::Sqlite(inner) => AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")?,
        AnyConnection::Pg(_) => <AnyConnection as Connection>::TransactionManager::begin_transaction(conn)?,
    }
    finish(conn, f)
}

/// Whether the connection is inside a transaction.
pub(crate) fn in_transaction(conn: &mut AnyConnection) -> bool {
    fn depth<C: Connection<TransactionManager = AnsiTransactionManager>>(c: &mut C) -> bool {
        match AnsiTransactionManager::transaction_manager_status_mut(c) {
            diesel::connection::TransactionManagerStatus::Valid(v) => v.transaction_depth().is_some(),
            diesel::connection::TransactionManagerStatus::InError => false,
        }
    }
    match conn {
        AnyConnection::Sqlite(inner) => depth(inner),
        AnyConnection::Pg(inner) => depth(inner),
    }
}

/// Runs `f` in a read-only transaction: one consistent snapshot for a count and its page, or a
/// resource and its members. SQLite's deferred `BEGIN` reads one WAL snapshot; PostgreSQL needs
/// REPEATABLE READ for the same (READ COMMITTED takes a snapshot per statement).
pub(crate) fn read_tx<T, E>(
    conn: &mut AnyConnection,
    f: impl FnOnce(&mut AnyConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<DieselError>,
{
    match conn {
        AnyConnection::Sqlite(inner) => AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN DEFERRED")?,
        AnyConnection::Pg(inner) => {
            AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")?
        }
    }
    finish(conn, f)
}

/// The second half of diesel's `TransactionManager::transaction`, through the enum's manager
/// (which delegates to the inner connection's, whose depth the openers above have raised).
fn finish<T, E>(conn: &mut AnyConnection, f: impl FnOnce(&mut AnyConnection) -> Result<T, E>) -> Result<T, E>
where
    E: From<DieselError>,
{
    type Manager = <AnyConnection as Connection>::TransactionManager;
    match f(conn) {
        Ok(value) => {
            Manager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(user_error) => match Manager::rollback_transaction(conn) {
            // A broken manager means the connection is unusable anyway (r2d2 drops it); the
            // caller's error is the one worth reporting.
            Ok(()) | Err(DieselError::BrokenTransactionManager) => Err(user_error),
            Err(rollback_error) => Err(rollback_error.into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_choose_the_engine_and_refuse_what_cannot_work() {
        assert!(matches!(Target::parse("sqlite://data/x.db", 5), Ok(Target::Sqlite(p)) if p == Path::new("data/x.db")));
        assert!(matches!(Target::parse("sqlite:///var/x.db", 5), Ok(Target::Sqlite(p)) if p == Path::new("/var/x.db")));
        assert!(matches!(Target::parse("SQLITE:x.db", 5), Ok(Target::Sqlite(p)) if p == Path::new("x.db")));
        assert!(
            matches!(Target::parse("postgres://u@h/db", 5), Ok(Target::Postgres(u)) if u == "postgres://u@h/db?connect_timeout=5")
        );
        assert!(
            matches!(Target::parse("postgresql://h/db?sslmode=disable", 3), Ok(Target::Postgres(u)) if u.ends_with("?sslmode=disable&connect_timeout=3"))
        );
        assert!(
            matches!(Target::parse("postgres://h/db?connect_timeout=9", 3), Ok(Target::Postgres(u)) if u.ends_with("?connect_timeout=9"))
        );
        for bad in ["mysql://h/db", "data/x.db", "sqlite::memory:", "sqlite://", "sqlite://x.db?mode=ro"] {
            assert!(matches!(Target::parse(bad, 5), Err(StoreError::BadUrl(_))), "{bad}");
        }
    }

    #[test]
    fn keepalives_are_added_to_postgresql_urls_unless_they_set_their_own() {
        let pg = |url: &str, secs| match Target::parse(url, 5).map(|t| t.with_keepalives(secs)) {
            Ok(Target::Postgres(u)) => u,
            _ => String::new(),
        };
        assert_eq!(
            pg("postgres://h/db", 30),
            "postgres://h/db?connect_timeout=5&keepalives=1&keepalives_idle=30&keepalives_interval=10\
             &keepalives_count=3&tcp_user_timeout=60000"
        );
        assert_eq!(pg("postgres://h/db?keepalives=0", 30), "postgres://h/db?keepalives=0&connect_timeout=5");
        assert_eq!(
            pg("postgres://h/db?tcp_user_timeout=1", 30),
            "postgres://h/db?tcp_user_timeout=1&connect_timeout=5"
        );
        assert_eq!(pg("postgres://h/db", 0), "postgres://h/db?connect_timeout=5");
        assert!(matches!(Target::parse("sqlite://x.db", 5).map(|t| t.with_keepalives(30)), Ok(Target::Sqlite(_))));
    }

    #[test]
    fn passwords_never_appear_in_redacted_urls() {
        assert_eq!(redact_url("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("postgres://h/db?password=x&a=b"), "postgres://h/db?password=***&a=b");
        let e = Target::parse("mysql://u:secret@h/db", 5).unwrap_err().to_string();
        assert!(!e.contains("secret"), "{e}");
    }

    /// A connection string is refused as `store.url`, and the refusal does not repeat its password.
    #[test]
    fn a_refused_connection_string_keeps_its_password_hidden() {
        let e = Target::parse("host=db password=s3cret", 5).unwrap_err().to_string();
        assert!(!e.contains("s3cret") && e.contains("password=***"), "{e}");
    }
}
