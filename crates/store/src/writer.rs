//! Group commit for SQLite: the writes that arrive together share one transaction and one fsync.
//!
//! SQLite has one writer at a time, and with `synchronous = FULL` every commit waits for an fsync
//! of the WAL. One transaction per request therefore caps durable writes at the disk's fsync rate
//! (about 1,100–1,500/s on the project VM), whatever the CPU could do. Here every write of the store
//! runs on one dedicated connection, each inside its own savepoint of a shared `BEGIN IMMEDIATE`
//! transaction, and one commit answers them all. A write's result is never released before the
//! commit of its batch.
//!
//! Two ways in, one connection (behind `state`):
//! - **owned jobs** (`submit`, the hot paths: creates, updates, deletes, the dispatcher's claims):
//!   a `'static` closure goes to the writer thread by channel; that thread takes everything queued
//!   (up to `write_batch_max`), runs each in its savepoint back to back, commits, and answers each
//!   caller. One thread doing the whole batch matters on a small machine: handing a lock from thread
//!   to thread costs a wake-up per write (about 250 µs on the project VM under load, which capped
//!   the first design at 3,400 writes/s with a core idle).
//! - **borrowed closures** (`write`, everything else: tenants, keys, tests): the caller takes the
//!   lock itself, runs its closure in a savepoint of the open batch, and commits unless another
//!   caller is queued on the lock (who then commits for both); it returns once its batch is done.
//!
//! A failing closure rolls back its own savepoint only. A commit that fails fails every write of
//! its batch (none is acknowledged), and a broken connection is replaced. Reads never come here:
//! WAL lets them run on the pool and see only committed data.
//!
//! **Checkpoints** run on a thread of their own (`scimgw-checkpoint`, its own connection): after a
//! commit the writer only nudges it, and it copies the WAL back into the database file with a
//! `PASSIVE` checkpoint at most every [`CHECKPOINT_EVERY`]. SQLite's automatic checkpoint would run
//! inside the writer's commit, page writes and an fsync of the database file included, holding
//! every write queued behind it (a seventh of the writer's time in Entra's initial cycle,
//! bench/RESULTS.md). The writer keeps an automatic checkpoint of [`BACKSTOP_PAGES`] in case the
//! thread falls behind; a passive checkpoint never waits for the writer nor holds it.
//!
//! Limits: writes within one batch see each other's uncommitted rows (a uniqueness check may refuse
//! a userName whose creator's batch then fails to commit — only on a commit failure: disk full, I/O
//! error). The batch holds SQLite's write lock while it runs, so another process writing the same
//! file (the CLI) waits for at most one batch. A job that panics fails its batch and answers its
//! caller with an internal error.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Condvar, Mutex};

use diesel::QueryResult;
use diesel::RunQueryDsl;
use diesel::backend::Backend;
use diesel::connection::{
    AnsiTransactionManager, Connection, SimpleConnection, TransactionManager, TransactionManagerStatus,
};
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::r2d2::R2D2Connection;

use crate::connection::{AnyConnection, Manager};
use crate::error::StoreError;

/// How many failed batches are remembered for their late waiters.
const FAILURES_KEPT: usize = 64;

/// A write for the writer thread: runs in the batch (or, given `Err`, learns that no transaction
/// could be opened), and gives back what answers its caller once the batch is committed (`Ok`) or
/// lost (`Err` with why).
type Job = Box<dyn FnOnce(Result<&mut AnyConnection, String>) -> Ran + Send>;

/// What running a job did.
struct Ran {
    /// The job broke the batch (its savepoint could not be undone).
    broken: bool,
    /// The job's own work succeeded (it counts as a committed write).
    ok: bool,
    reply: Reply,
}
type Reply = Box<dyn FnOnce(Result<(), String>) + Send>;

/// The group-commit writer of one store: the channel to its thread and the shared connection.
pub(crate) struct GroupWriter {
    jobs: Sender<Job>,
    shared: Arc<Shared>,
}

/// What the writer thread and the callers of [`GroupWriter::write`] share.
struct Shared {
    manager: Manager,
    max_batch: usize,
    state: Mutex<State>,
    /// Which batches are finished. Apart from `state`, so that the writes waiting for their batch
    /// and their wake-up never queue on the lock the next batch's writers need.
    done: Mutex<Done>,
    committed: Condvar,
    /// Callers queued on `state`: while any is, the holder leaves the batch open for them.
    waiting: AtomicUsize,
    /// Batches and writes committed so far.
    batches: AtomicU64,
    writes: AtomicU64,
    /// Nudges the checkpoint thread after a commit (full: a nudge is pending already).
    checkpoint: SyncSender<()>,
}

struct State {
    conn: Option<AnyConnection>,
    /// Whether the batch's transaction is open.
    in_tx: bool,
    /// Successful writes in the open batch.
    open: usize,
    /// The number of the open (or next) batch.
    batch: u64,
}

#[derive(Default)]
struct Done {
    /// Every batch below this number is finished (committed or failed).
    below: u64,
    /// The recent batches whose commit failed, with why.
    failed: VecDeque<(u64, String)>,
}

/// The least time between two background checkpoints: under load one checkpoint copies what
/// many commits wrote (a page written by several of them is copied once).
pub(crate) const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// The writer's own automatic checkpoint, in WAL pages (SQLite's default is 1,000): reached only
/// when the checkpoint thread falls behind (32 MiB of WAL at 4 KiB pages).
pub(crate) const BACKSTOP_PAGES: u32 = 8_000;

/// The checkpoint thread: on each nudge, one `PASSIVE` checkpoint on its own connection, then a
/// pause of [`CHECKPOINT_EVERY`]. Ends when the writer is gone. A failure is logged and the
/// connection opened again at the next nudge; meanwhile the writer's backstop checkpoints.
fn checkpoints(manager: &Manager, nudges: &Receiver<()>, mut conn: Option<AnyConnection>) {
    while nudges.recv().is_ok() {
        let ran = match conn.as_mut() {
            Some(c) => Ok(c),
            None => manager.open().map_err(|e| e.0).map(|c| conn.insert(c)),
        }
        .and_then(|c| c.batch_execute("PRAGMA wal_checkpoint(PASSIVE);").map_err(|e| e.to_string()));
        if let Err(e) = ran {
            tracing::warn!(error = %e, "a background checkpoint of the SQLite WAL failed; the writer checkpoints meanwhile");
            conn = None;
        }
        std::thread::sleep(CHECKPOINT_EVERY);
    }
}

/// A job dropped without an answer (the writer thread failed while holding it).
fn not_carried_out() -> StoreError {
    StoreError::Unavailable("the write was not carried out: the store's writer could not run it (see the log)".into())
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Internal("the store's writer panicked earlier".into())
}

impl GroupWriter {
    pub(crate) fn new(manager: Manager, max_batch: usize) -> Result<Self, StoreError> {
        let (checkpoint, nudges) = sync_channel::<()>(1);
        let checkpointer = manager.clone();
        // Opened now, while the file certainly exists: opening later, after the store was
        // dropped and its file removed, would create an empty one.
        let conn = manager.open().ok();
        std::thread::Builder::new()
            .name("scimgw-checkpoint".into())
            .spawn(move || checkpoints(&checkpointer, &nudges, conn))
            .map_err(|e| StoreError::Internal(format!("cannot start the checkpoint thread: {e}")))?;
        let shared = Arc::new(Shared::new(manager, max_batch, checkpoint));
        let (jobs, queue) = channel::<Job>();
        let worker = shared.clone();
        std::thread::Builder::new()
            .name("scimgw-writer".into())
            .spawn(move || worker.run(queue))
            .map_err(|e| StoreError::Internal(format!("cannot start the writer thread: {e}")))?;
        Ok(Self { jobs, shared })
    }

    /// (batches, writes) committed since the store was opened.
    pub(crate) fn stats(&self) -> (u64, u64) {
        (self.shared.batches.load(Ordering::Relaxed), self.shared.writes.load(Ordering::Relaxed))
    }

    /// Runs `f` as one write of the writer thread's next batch; returns its value once that batch
    /// is committed.
    pub(crate) fn submit<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
    {
        let (answer, answered) = sync_channel::<Result<T, StoreError>>(1);
        self.submit_with(f, move |r| {
            let _ = answer.send(r);
        })?;
        answered.recv().unwrap_or_else(|_| Err(not_carried_out()))
    }

    /// [`GroupWriter::submit`] for async callers: the caller's task waits, not its thread, so a
    /// write costs no hand-off to a blocking pool and back.
    pub(crate) async fn submit_async<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel::<Result<T, StoreError>>();
        self.submit_with(f, move |r| {
            let _ = answer.send(r);
        })?;
        answered.await.unwrap_or_else(|_| Err(not_carried_out()))
    }

    /// Queues `f` for the writer thread; `answer` gets its outcome once its batch is committed
    /// (or lost).
    fn submit_with<T, F>(
        &self,
        f: F,
        answer: impl FnOnce(Result<T, StoreError>) + Send + 'static,
    ) -> Result<(), StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection) -> Result<T, StoreError> + Send + 'static,
    {
        let job: Job = Box::new(move |conn| {
            let conn = match conn {
                Ok(conn) => conn,
                Err(why) => {
                    let reply: Reply = Box::new(move |_| answer(Err(StoreError::Unavailable(why))));
                    return Ran { broken: false, ok: false, reply };
                }
            };
            match in_savepoint(conn, f) {
                Ok(result) => {
                    let broken = !in_transaction(conn);
                    let ok = result.is_ok();
                    let reply: Reply = Box::new(move |commit| {
                        answer(match (result, commit) {
                            (Err(e), _) => Err(e),
                            (Ok(v), Ok(())) => Ok(v),
                            (Ok(_), Err(why)) => {
                                Err(StoreError::Unavailable(format!("the write batch was not committed: {why}")))
                            }
                        })
                    });
                    Ran { broken, ok, reply }
                }
                Err(e) => {
                    let why = format!("the write batch was rolled back: {e}");
                    let reply: Reply = Box::new(move |_| answer(Err(StoreError::Unavailable(why))));
                    Ran { broken: true, ok: false, reply }
                }
            }
        });
        self.jobs.send(job).map_err(|_| StoreError::Internal("the store's writer thread has stopped".into()))
    }

    /// Runs `f` as one write of the current batch, on the calling thread; returns its value once
    /// the batch is committed.
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&mut AnyConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.shared.write(f)
    }
}

impl Shared {
    fn new(manager: Manager, max_batch: usize, checkpoint: SyncSender<()>) -> Self {
        Self {
            checkpoint,
            manager,
            max_batch: max_batch.max(1),
            state: Mutex::new(State { conn: None, in_tx: false, open: 0, batch: 0 }),
            done: Mutex::new(Done::default()),
            committed: Condvar::new(),
            waiting: AtomicUsize::new(0),
            batches: AtomicU64::new(0),
            writes: AtomicU64::new(0),
        }
    }

    /// The writer thread: takes the queued jobs, runs them as one batch, commits, answers.
    fn run(&self, queue: Receiver<Job>) {
        while let Ok(first) = queue.recv() {
            let mut st = match self.state.lock() {
                Ok(st) => st,
                Err(p) => p.into_inner(),
            };
            let started = std::time::Instant::now();
            let mut replies: Vec<Reply> = Vec::new();
            let mut next = Some(first);
            let mut lost: Option<String> = None;
            while let Some(job) = next.take() {
                if !st.in_tx {
                    if let Err(e) = self.begin(&mut st) {
                        // This job is answered with why; the queued ones try again.
                        tracing::error!(error = %e, "the store's writer cannot open a transaction");
                        (job(Err(e.to_string())).reply)(Ok(()));
                        break;
                    }
                }
                let Some(conn) = st.conn.as_mut() else { break };
                match catch_unwind(AssertUnwindSafe(|| job(Ok(conn)))) {
                    Ok(ran) => {
                        replies.push(ran.reply);
                        if ran.broken {
                            lost = Some("a write could not be rolled back on its own".into());
                            break;
                        }
                        if ran.ok {
                            st.open += 1;
                        }
                    }
                    Err(_) => {
                        tracing::error!("a write panicked in the store's writer; its batch is rolled back");
                        lost = Some("a write panicked".into());
                        break;
                    }
                }
                if replies.len() < self.max_batch {
                    next = queue.try_recv().ok();
                }
            }
            metrics::histogram!("scimgw_store_batch_run_seconds").record(started.elapsed().as_secs_f64());
            let outcome = match lost {
                Some(why) => {
                    if st.in_tx {
                        self.fail_batch(&mut st, why.clone());
                    }
                    Err(why)
                }
                // No transaction was opened (the first job could not begin one): nothing to commit.
                None if !st.in_tx => Ok(()),
                None => self.commit(&mut st),
            };
            drop(st);
            for reply in replies {
                reply(outcome.clone());
            }
        }
    }

    /// Runs `f` as one write of the current batch; returns its value once the batch is committed.
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&mut AnyConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let guard = self.state.lock();
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let mut st = guard.map_err(poisoned)?;
        if !st.in_tx {
            self.begin(&mut st)?;
        }
        let my_batch = st.batch;
        let Some(conn) = st.conn.as_mut() else {
            return Err(StoreError::Internal("the writer has no connection".into()));
        };
        let value = match catch_unwind(AssertUnwindSafe(|| in_savepoint(conn, f))) {
            Ok(Ok(value)) if in_transaction(conn) => value,
            Ok(Ok(_)) => {
                self.fail_batch(&mut st, "the transaction ended inside a write".into());
                return Err(StoreError::Unavailable("the write batch was rolled back".into()));
            }
            Ok(Err(e)) => {
                // The savepoint could not be rolled back, or SQLite aborted the whole transaction
                // (it does on a full disk or an I/O error): the batch is lost.
                let why = e.to_string();
                self.fail_batch(&mut st, why.clone());
                return Err(StoreError::Unavailable(format!("the write batch was rolled back: {why}")));
            }
            Err(panic) => {
                self.fail_batch(&mut st, "a write panicked".into());
                drop(st);
                resume_unwind(panic);
            }
        };
        // A failed write wrote nothing (its savepoint is rolled back): it answers at once.
        let value = match value {
            Ok(v) => v,
            Err(e) => {
                if self.waiting.load(Ordering::SeqCst) == 0 {
                    let _ = self.commit(&mut st);
                }
                return Err(e);
            }
        };
        st.open += 1;
        if self.waiting.load(Ordering::SeqCst) == 0 || st.open >= self.max_batch {
            let _ = self.commit(&mut st);
        }
        drop(st);
        let mut done = self.done.lock().map_err(poisoned)?;
        while done.below <= my_batch {
            done = self.committed.wait(done).map_err(poisoned)?;
        }
        match done.failed.iter().find(|(b, _)| *b == my_batch) {
            Some((_, why)) => Err(StoreError::Unavailable(format!("the write batch was not committed: {why}"))),
            None => Ok(value),
        }
    }

    /// Opens the batch's transaction, reconnecting first if the last connection broke.
    fn begin(&self, st: &mut State) -> Result<(), StoreError> {
        if st.conn.is_none() {
            let mut conn = self.manager.open().map_err(|e| StoreError::Unavailable(e.0))?;
            conn.batch_execute(&format!("PRAGMA wal_autocheckpoint = {BACKSTOP_PAGES};"))
                .map_err(StoreError::from_db)?;
            st.conn = Some(conn);
        }
        let Some(AnyConnection::Sqlite(inner)) = st.conn.as_mut() else {
            return Err(StoreError::Internal("group commit runs on SQLite only".into()));
        };
        if let Err(e) = AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE") {
            st.conn = None;
            return Err(StoreError::from_db(e));
        }
        st.in_tx = true;
        Ok(())
    }

    /// Commits the open batch (an empty one too: it only releases the lock) and wakes its waiters.
    fn commit(&self, st: &mut State) -> Result<(), String> {
        let started = std::time::Instant::now();
        let result = match st.conn.as_mut() {
            Some(conn) => <AnyConnection as Connection>::TransactionManager::commit_transaction(conn),
            None => Err(diesel::result::Error::BrokenTransactionManager),
        };
        metrics::histogram!("scimgw_store_commit_seconds").record(started.elapsed().as_secs_f64());
        let size = st.open;
        match result {
            Ok(()) => {
                if size > 0 {
                    self.batches.fetch_add(1, Ordering::Relaxed);
                    self.writes.fetch_add(size as u64, Ordering::Relaxed);
                    metrics::histogram!("scimgw_store_write_batch_size").record(size as f64);
                    // Full or gone (the thread ended): a checkpoint is coming, or the store is
                    // closing; the backstop checkpoints either way.
                    let _ = self.checkpoint.try_send(());
                }
                self.finish(st, None);
                Ok(())
            }
            Err(e) => {
                let why = e.to_string();
                self.fail_batch(st, why.clone());
                Err(why)
            }
        }
    }

    /// Ends the open batch as failed: rolls back, drops a connection that is no longer sound, and
    /// tells the batch's waiters why.
    fn fail_batch(&self, st: &mut State, why: String) {
        tracing::error!(error = %why, writes = st.open, "a write batch failed; none of its writes is acknowledged");
        if let Some(conn) = st.conn.as_mut() {
            if in_transaction(conn) {
                let _ = <AnyConnection as Connection>::TransactionManager::rollback_transaction(conn);
            }
            if in_transaction(conn) || conn.is_broken() {
                st.conn = None;
            }
        }
        self.finish(st, Some(why));
    }

    fn finish(&self, st: &mut State, failure: Option<String>) {
        let batch = st.batch;
        st.in_tx = false;
        st.open = 0;
        st.batch += 1;
        let mut done = match self.done.lock() {
            Ok(d) => d,
            Err(p) => p.into_inner(),
        };
        if let Some(why) = failure {
            done.failed.push_back((batch, why));
            while done.failed.len() > FAILURES_KEPT {
                done.failed.pop_front();
            }
        }
        done.below = st.batch;
        drop(done);
        self.committed.notify_all();
    }
}

/// A statement of fixed text with a static query id, so that diesel prepares it once per
/// connection and reuses it. Savepoints through diesel's nested transactions are sent with
/// `sqlite3_exec`, which parses them every time: a quarter of the writer's time under load.
macro_rules! fixed_statement {
    ($name:ident, $sql:literal) => {
        #[derive(Debug, Clone, Copy, QueryId)]
        struct $name;

        impl<DB: Backend> QueryFragment<DB> for $name {
            fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
                out.push_sql($sql);
                Ok(())
            }
        }

        impl<C> RunQueryDsl<C> for $name {}
    };
}

fixed_statement!(Savepoint, "SAVEPOINT scimgw_write");
fixed_statement!(Release, "RELEASE SAVEPOINT scimgw_write");
fixed_statement!(RollbackTo, "ROLLBACK TO SAVEPOINT scimgw_write");

/// Runs `f` in its own savepoint: released when it succeeds, rolled back (and released) when it
/// fails. The outer `Result` is the savepoint's own failure, which loses the whole batch.
fn in_savepoint<T>(
    conn: &mut AnyConnection,
    f: impl FnOnce(&mut AnyConnection) -> Result<T, StoreError>,
) -> QueryResult<Result<T, StoreError>> {
    Savepoint.execute(conn)?;
    match f(conn) {
        Ok(v) => {
            Release.execute(conn)?;
            Ok(Ok(v))
        }
        Err(e) => {
            RollbackTo.execute(conn)?;
            Release.execute(conn)?;
            Ok(Err(e))
        }
    }
}

/// Whether the connection is still inside the batch's transaction (depth 1, not broken).
fn in_transaction(conn: &mut AnyConnection) -> bool {
    let AnyConnection::Sqlite(inner) = conn else { return false };
    match AnsiTransactionManager::transaction_manager_status_mut(inner) {
        TransactionManagerStatus::Valid(v) => v.transaction_depth().is_some(),
        TransactionManagerStatus::InError => false,
    }
}
