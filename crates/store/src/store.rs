//! `Store`: the pool, opening, health and migrations.

use std::sync::Arc;
use std::time::Duration;

use diesel::RunQueryDsl;
use diesel::connection::SimpleConnection;
use diesel::migration::MigrationVersion;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::config::StoreConfig;
use crate::connection::{AnyConnection, Backend, Manager, Target, prepare_sqlite, write_tx};
use crate::error::StoreError;
use crate::pg_analyze::{self, Growth};
use crate::pg_batch::PgBatcher;
use crate::workers::Workers;
use crate::writer::GroupWriter;

pub(crate) const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Serialises `migrate` between gateway replicas sharing one PostgreSQL database
/// (`pg_advisory_lock` key: "scimgw" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x73_63_69_6d_67_77;

/// The store: a pool of connections to one SQLite file or one PostgreSQL database. Cheap to clone
/// (the pool is shared). Every method blocks; call them from `spawn_blocking` in async code.
#[derive(Clone)]
pub struct Store {
    pool: r2d2::Pool<Manager>,
    /// A copy of the pool's manager, for connections outside the pool (migrations).
    manager: Manager,
    backend: Backend,
    /// SQLite's group-commit writer, through which every write of the hot paths goes; `None` on
    /// PostgreSQL (whose user writes have `pg_batch` instead) or when `write_batch_max` is 1.
    writer: Option<Arc<GroupWriter>>,
    /// PostgreSQL's group commit of user creates and updates (see `pg_batch.rs`); `None` on
    /// SQLite or when `write_batch_max` is 1.
    pub(crate) pg_batch: Option<Arc<PgBatcher>>,
    /// PostgreSQL: the creates counted towards the next `ANALYZE` (see `pg_analyze.rs`).
    growth: Option<Arc<Growth>>,
    /// The threads that run [`Store::run_blocking`]'s work: one per pooled connection.
    workers: Arc<Workers>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.pool.state();
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .field("connections", &state.connections)
            .field("idle_connections", &state.idle_connections)
            .finish()
    }
}

pub(crate) type Conn = r2d2::PooledConnection<Manager>;

type MigrationError = Box<dyn std::error::Error + Send + Sync>;

/// Runs the same harness call on the inner connection with that engine's migrations: the
/// migration harness is per backend, so this is the one place that names both.
macro_rules! harness {
    ($conn:expr, |$c:ident, $m:ident| $body:expr) => {
        match $conn {
            AnyConnection::Sqlite($c) => {
                let $m = SQLITE_MIGRATIONS;
                $body
            }
            AnyConnection::Pg($c) => {
                let $m = POSTGRES_MIGRATIONS;
                $body
            }
        }
    };
}

/// How long a request waits for a connection while the database is known to be down.
const FAIL_FAST: Duration = Duration::from_millis(250);

impl Store {
    /// Opens the pool. Creates a missing SQLite file and its directory and switches the file to WAL,
    /// but applies no migration (see [`Store::migrate`]).
    ///
    /// Fails with `BadUrl` for an unusable URL and with `Unavailable` (carrying the engine's own
    /// message) when no connection can be made within `connect_timeout_secs`.
    pub fn open(cfg: &StoreConfig) -> Result<Store, StoreError> {
        let target = Target::parse(&cfg.url, cfg.connect_timeout_secs)?.with_keepalives(cfg.tcp_keepalive_secs);
        let backend = target.backend();
        let deadline = cfg.answer_deadline().filter(|_| backend == Backend::Postgres);
        let manager = Manager::new(target.clone(), cfg);
        match &target {
            Target::Sqlite(path) => prepare_sqlite(&manager, path)?,
            // One connection up front: a wrong database name or password fails now with the
            // server's words, instead of after r2d2 has retried for the whole timeout.
            Target::Postgres(_) => drop(manager.open().map_err(|e| StoreError::Unavailable(e.0))?),
        }
        let pool = r2d2::Pool::builder()
            .max_size(cfg.pool_size.max(1))
            // No test query on every checkout (a round trip per request on PostgreSQL, a third of
            // a read by id): a connection found dead by its use is dropped when it comes back
            // (`Manager::has_broken`), so after a server restart each pooled connection fails one
            // request with a 503 and is replaced.
            .test_on_check_out(false)
            // r2d2's default of 30 s would hold start-up (and every request) that long when the
            // database is down.
            .connection_timeout(Duration::from_secs(cfg.connect_timeout_secs.max(1)))
            .build(manager.clone())?;
        let writer = match backend == Backend::Sqlite && cfg.write_batch_max > 1 {
            true => Some(Arc::new(GroupWriter::new(manager.clone(), cfg.write_batch_max)?)),
            false => None,
        };
        let pg_batch = match backend == Backend::Postgres && cfg.write_batch_max > 1 {
            true => Some(Arc::new(PgBatcher::new(manager.clone(), cfg.write_batch_max, deadline)?)),
            false => None,
        };
        let growth = (backend == Backend::Postgres).then(|| Arc::new(Growth::new()));
        let workers = Arc::new(Workers::start(cfg.pool_size.max(1) as usize, deadline)?);
        Ok(Store { pool, manager, backend, writer, pg_batch, growth, workers })
    }

    /// Counts a created resource; on PostgreSQL, each time the count doubles, analyzes the tables
    /// on a thread of its own so that prepared statements are planned again on what the tables
    /// now hold (see `pg_analyze.rs`).
    pub(crate) fn after_create(&self) {
        let Some(growth) = &self.growth else { return };
        if !growth.created() {
            return;
        }
        let (store, ran) = (self.clone(), growth.clone());
        let run = move || {
            let started = std::time::Instant::now();
            match store.conn().and_then(|mut c| c.batch_execute(pg_analyze::TABLES).map_err(StoreError::from)) {
                Ok(()) => tracing::info!(
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "analyzed the tables as they grew (plans made on smaller tables are replaced)"
                ),
                Err(e) => tracing::warn!(error = %e, "could not analyze the tables"),
            }
            ran.done();
        };
        if let Err(e) = std::thread::Builder::new().name("scimgw-analyze".into()).spawn(run) {
            tracing::warn!(error = %e, "could not start the analyze thread");
            growth.done();
        }
    }

    /// Runs `f` for async code on one of the store's threads, one per pooled connection, in the
    /// order the calls came (see `workers.rs`): the work waits in a queue, not on a thread of its
    /// own. `Internal` if `f` panicked.
    pub async fn run_blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> T + Send + 'static,
    {
        let store = self.clone();
        self.workers.run(move || f(&store)).await
    }

    /// PostgreSQL: how many `ANALYZE` runs [`Store::after_create`] has completed; `None` on SQLite.
    pub fn analyze_runs(&self) -> Option<u64> {
        self.growth.as_ref().map(|g| g.runs())
    }

    /// Which engine this store runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A pooled connection, or `Unavailable` after `connect_timeout_secs` — or after
    /// [`FAIL_FAST`] while the last attempt to connect failed (the database is down): requests then
    /// get their 503 at once instead of each waiting out the timeout. Waiting still asks the pool
    /// for a connection, so the pool keeps trying and the store recovers by itself.
    pub(crate) fn conn(&self) -> Result<Conn, StoreError> {
        if self.manager.unreachable() {
            return Ok(self.pool.get_timeout(FAIL_FAST)?);
        }
        Ok(self.pool.get()?)
    }

    /// Runs `f` as one write transaction: committed (durably) before this returns `Ok`, rolled back
    /// entirely if `f` fails. On SQLite it joins the group-commit batch (see `writer.rs`); otherwise
    /// it runs on a pooled connection.
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&mut AnyConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match &self.writer {
            Some(writer) => writer.write(f),
            None => write_tx(&mut *self.conn()?, f),
        }
    }

    /// [`Store::write`] for a `'static` closure: on SQLite it goes to the writer thread, which runs
    /// the whole queued batch back to back (see `writer.rs`) — the hot paths use this.
    pub(crate) fn write_owned<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
    {
        match &self.writer {
            Some(writer) => writer.submit(f),
            None => write_tx(&mut *self.conn()?, f),
        }
    }

    /// [`Store::write_owned`] for async callers. With group commit (SQLite) the task waits for the
    /// writer thread's answer without holding a thread; otherwise the transaction runs on the
    /// store's threads (`Store::run_blocking`).
    pub(crate) async fn write_owned_async<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
    {
        match &self.writer {
            Some(writer) => writer.submit_async(f).await,
            None => self.run_blocking(move |store| write_tx(&mut *store.conn()?, f)).await?,
        }
    }

    /// [`Store::write_owned`] for a job that is atomic by itself on PostgreSQL — one statement
    /// per write, and any transaction it needs opened by itself (see `pg_writes.rs`): there it
    /// runs on a pooled connection outside a transaction, saving the `BEGIN` and `COMMIT` round
    /// trips. On SQLite it joins the group-commit batch as any write.
    pub(crate) fn write_single<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
    {
        match (&self.writer, self.backend) {
            (None, Backend::Postgres) => f(&mut *self.conn()?),
            _ => self.write_owned(f),
        }
    }

    /// [`Store::write_single`] for async callers.
    pub(crate) async fn write_single_async<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
    {
        match (&self.writer, self.backend) {
            (None, Backend::Postgres) => self.run_blocking(move |store| f(&mut *store.conn()?)).await?,
            _ => self.write_owned_async(f).await,
        }
    }

    /// With group commit: how many batches and writes have been committed since the store was
    /// opened (on PostgreSQL, of user creates and updates only); their ratio is the mean batch
    /// size. `None` without group commit.
    pub fn write_batches(&self) -> Option<(u64, u64)> {
        match (&self.writer, &self.pg_batch) {
            (Some(w), _) => Some(w.stats()),
            (None, Some(b)) => Some(b.stats()),
            (None, None) => None,
        }
    }

    /// Checks that a connection can be had and answers (for `/readyz`).
    pub fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        conn.batch_execute("SELECT 1").map_err(StoreError::from_db)
    }

    /// Applies every pending migration of this engine, in order; returns the versions applied.
    /// Replicas sharing a PostgreSQL database may call it concurrently: an advisory lock makes the
    /// second wait and then find nothing to do.
    pub fn migrate(&self) -> Result<Vec<String>, StoreError> {
        self.migrations(|conn| {
            harness!(conn, |c, m| c
                .run_pending_migrations(m)
                .map(|applied| applied.iter().map(MigrationVersion::to_string).collect()))
        })
    }

    /// The versions of the migrations not yet applied, in order.
    pub fn pending_migrations(&self) -> Result<Vec<String>, StoreError> {
        self.migrations(|conn| {
            harness!(conn, |c, m| c
                .pending_migrations(m)
                .map(|pending| pending.iter().map(|p| p.name().version().to_string()).collect()))
        })
    }

    /// Reverts the most recent migration with its `down.sql`; returns its version, or `None` when
    /// none is applied. For operators rolling back an upgrade, and for the migration tests.
    pub fn revert_last_migration(&self) -> Result<Option<String>, StoreError> {
        self.migrations(|conn| {
            harness!(conn, |c, m| {
                if c.applied_migrations()?.is_empty() {
                    return Ok(None);
                }
                c.revert_last_migration(m).map(|v| Some(v.to_string()))
            })
        })
    }

    /// Runs `f` on a connection of its own, outside the pool, holding PostgreSQL's migration lock.
    /// The lock belongs to the session, so closing the connection releases it even when `f` or the
    /// unlock fails.
    fn migrations<T>(&self, f: impl FnOnce(&mut AnyConnection) -> Result<T, MigrationError>) -> Result<T, StoreError> {
        let mut conn = self.manager.open().map_err(|e| StoreError::Unavailable(e.0))?;
        if let AnyConnection::Pg(_) = conn {
            // No statement timeout here: another replica may hold the lock while it migrates, and
            // a migration may take longer than a request's statement.
            diesel::sql_query("SET statement_timeout = 0").execute(&mut conn)?;
            diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})")).execute(&mut conn)?;
        }
        f(&mut conn).map_err(migration_error)
    }
}

/// A migration failure: `Unavailable` when the database went away, `Internal` otherwise.
fn migration_error(e: MigrationError) -> StoreError {
    match e.downcast::<diesel::result::Error>() {
        Ok(db) => StoreError::from_db(*db),
        Err(other) => StoreError::Internal(format!("migration failed: {other}")),
    }
}
