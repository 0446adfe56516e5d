//! Group commit for SQLite: the writes that arrive together share one transaction and one fsync.
//!
//! SQLite has one writer at a time, and with `synchronous = FULL` every commit waits for an fsync
//! of the WAL. One transaction per request therefore caps durable writes at the disk's fsync rate
//! (about 1,500/s on the project VM), whatever the CPU could do. Here every write of the store runs
//! on one dedicated connection, each inside its own savepoint of a shared `BEGIN IMMEDIATE`
//! transaction; the last writer of a burst (no other is waiting) commits for all of them, and each
//! caller returns only after that commit. A write's result is never released before it is durable.
//!
//! The protocol, on one mutex and one condition variable:
//! - a caller takes the mutex (counting itself in `waiting` while it queues), opens the batch's
//!   transaction if none is open, and runs its closure inside a savepoint: a failing closure rolls
//!   back its own savepoint only and returns its error at once (it wrote nothing);
//! - if nobody else is queued, or the batch is full, it commits the batch and wakes the others;
//!   otherwise it waits until a later caller has committed its batch;
//! - a commit that fails fails every write of the batch (none of them is acknowledged), and the
//!   connection is replaced when it is broken.
//!
//! Reads never go through here: WAL lets them run on the pool beside the batch and see only
//! committed data, so nothing a caller is told is written can be missing from a later read.
//!
//! Limits: writes within one batch see each other's uncommitted rows (a uniqueness check may refuse
//! a userName whose creator's batch then fails to commit — only on a commit failure, disk full or
//! I/O error). The batch holds SQLite's write lock while it forms, so another process writing the
//! same file (the CLI) waits for at most one batch.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

use diesel::connection::{AnsiTransactionManager, Connection, TransactionManager, TransactionManagerStatus};
use diesel::r2d2::R2D2Connection;

use crate::connection::{AnyConnection, Manager};
use crate::error::StoreError;

/// How many failed batches are remembered for their late waiters.
const FAILURES_KEPT: usize = 64;

/// The shared writer connection and its batch.
pub(crate) struct GroupWriter {
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

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Internal("the store's writer panicked earlier".into())
}

impl GroupWriter {
    pub(crate) fn new(manager: Manager, max_batch: usize) -> Self {
        Self {
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

    /// (batches, writes) committed since the store was opened.
    pub(crate) fn stats(&self) -> (u64, u64) {
        (self.batches.load(Ordering::Relaxed), self.writes.load(Ordering::Relaxed))
    }

    /// Runs `f` as one write of the current batch; returns its value once the batch is committed.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&mut AnyConnection) -> Result<T, StoreError>) -> Result<T, StoreError> {
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
        // diesel's nested transaction: a SAVEPOINT, released on Ok and rolled back on Err.
        let value = match catch_unwind(AssertUnwindSafe(|| conn.transaction(f))) {
            Ok(value) => value,
            Err(panic) => {
                self.fail_batch(&mut st, "a write panicked".into());
                drop(st);
                resume_unwind(panic);
            }
        };
        if !in_transaction(conn) {
            // The savepoint could not be rolled back, or SQLite aborted the whole transaction
            // (it does on a full disk or an I/O error): the batch is lost.
            let why = match &value {
                Err(e) => e.to_string(),
                Ok(_) => "the transaction ended inside a write".into(),
            };
            self.fail_batch(&mut st, why.clone());
            return Err(value.err().unwrap_or(StoreError::Unavailable(why)));
        }
        // A failed write wrote nothing (its savepoint is rolled back): it answers at once.
        let value = match value {
            Ok(v) => v,
            Err(e) => {
                if self.waiting.load(Ordering::SeqCst) == 0 {
                    self.commit(&mut st);
                }
                return Err(e);
            }
        };
        st.open += 1;
        if self.waiting.load(Ordering::SeqCst) == 0 || st.open >= self.max_batch {
            self.commit(&mut st);
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
            st.conn = Some(self.manager.open().map_err(|e| StoreError::Unavailable(e.0))?);
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
    fn commit(&self, st: &mut State) {
        let result = match st.conn.as_mut() {
            Some(conn) => <AnyConnection as Connection>::TransactionManager::commit_transaction(conn),
            None => Err(diesel::result::Error::BrokenTransactionManager),
        };
        let size = st.open;
        match result {
            Ok(()) => {
                if size > 0 {
                    self.batches.fetch_add(1, Ordering::Relaxed);
                    self.writes.fetch_add(size as u64, Ordering::Relaxed);
                    metrics::histogram!("scimgw_store_write_batch_size").record(size as f64);
                }
                self.finish(st, None);
            }
            Err(e) => self.fail_batch(st, e.to_string()),
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

/// Whether the connection is still inside the batch's transaction (depth 1, not broken).
fn in_transaction(conn: &mut AnyConnection) -> bool {
    let AnyConnection::Sqlite(inner) = conn else { return false };
    match AnsiTransactionManager::transaction_manager_status_mut(inner) {
        TransactionManagerStatus::Valid(v) => v.transaction_depth().is_some(),
        TransactionManagerStatus::InError => false,
    }
}
