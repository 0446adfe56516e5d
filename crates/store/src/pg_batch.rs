//! Group commit for PostgreSQL: the user creates and updates that arrive together are written by
//! one statement each, in one commit.
//!
//! With a statement per request (see `pg_writes.rs`), the server's per-statement work — executor
//! set-up, a commit, a WAL flush, a round trip and two context switches — was the bulk of a write's
//! cost: on the project's 2-core VM a create cost about 200 µs of PostgreSQL CPU and the server's
//! backends took half the machine (issue 7, bench/RESULTS.md). Here one thread with a connection of
//! its own takes every write queued (up to `store.write_batch_max`) and sends them as arrays to one
//! fixed statement per kind of write: the rows go in with `unnest`, and the deliveries and audit
//! events are inserted from the rows the statement actually wrote, so each write is still all or
//! nothing.
//!
//! - A **create** whose userName is taken (by a committed user or by an earlier create of the same
//!   batch) is skipped by `ON CONFLICT DO NOTHING`: it comes back as not written, and its caller
//!   answers 409 — exactly what the single statement would have done.
//! - An **update** is conditional on the version its caller read (the caller reads, applies the
//!   PATCH, and sends the result here). One that lost a race — to another batch, to a writer
//!   elsewhere, or to another update of the same user in this batch — comes back as not written,
//!   and its caller reads again. Only one thread writes batches, so two batches never wait on each
//!   other's rows.
//! - If a batch's statement fails (an update renaming a user to a taken userName, a tenant removed
//!   meanwhile), nothing of it was written, and its writes are run again one by one with the
//!   single statements, so each caller gets its own answer. A lost connection fails the batch with
//!   `Unavailable` (503: the IdP retries), and the next batch connects again.
//!
//! Answers are sent once the statement has returned, that is once its commit is durable.
//!
//! The plan matters more than the text: the live deliveries a change absorbs must be found through
//! `deliveries_resource` from each (user, target) pair, never by scanning the open rows. Three
//! things in the statements hold it there, all three found with `EXPLAIN` on 300,000 deliveries
//! after the first form scanned every pending row for each pair (a batch ran 18 minutes in the
//! 100,000-user end-to-end run): the pairs are joined first (`ue AS MATERIALIZED`), the user's id
//! is compared in the column's collation (`users.id` is `COLLATE "C"`, `deliveries.resource_id`
//! is not, and a mixed comparison cannot use the index), and the state test is written so that
//! no index on `state` can serve it (`IS TRUE`).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

use diesel::PgConnection;
use diesel::RunQueryDsl;
use diesel::sql_types::BigInt;
use uuid::Uuid;

use crate::audit::Audit;
use crate::cached::{Val, fixed};
use crate::connection::{AnyConnection, Manager};
use crate::error::StoreError;
use crate::models::resource::UserColumns;
use crate::outbox::Enqueue;
use crate::pg_writes::{self, UserWrite};

/// A user's row as a create or an update writes it, owned (it crosses to the batch thread).
pub(crate) struct UserRow {
    pub(crate) tenant_id: String,
    pub(crate) id: String,
    pub(crate) columns: UserColumns,
    pub(crate) body: String,
    pub(crate) now: i64,
    pub(crate) outbox: Vec<Enqueue>,
    pub(crate) audit: Option<Audit>,
}

impl UserRow {
    fn write(&self) -> UserWrite<'_> {
        UserWrite {
            tenant_id: &self.tenant_id,
            id: &self.id,
            columns: &self.columns,
            body: &self.body,
            now: self.now,
            outbox: &self.outbox,
            audit: self.audit.as_ref(),
        }
    }
}

/// A write for the batch thread.
pub(crate) enum Op {
    /// Insert the user at version 1.
    Create(UserRow),
    /// Write the user at `from + 1` if it is still at version `from`.
    Update { row: UserRow, from: i64 },
}

/// `Ok(true)`: written and committed. `Ok(false)`: not written — a create's userName was taken,
/// an update lost its race.
type Answer = Result<bool, StoreError>;

struct Job {
    op: Op,
    answer: tokio::sync::oneshot::Sender<Answer>,
}

/// The batch thread of one store.
pub(crate) struct PgBatcher {
    jobs: Sender<Job>,
    stats: Arc<Stats>,
    /// How long a caller waits for its write's answer (`StoreConfig::answer_deadline`).
    deadline: Option<Duration>,
}

#[derive(Default)]
struct Stats {
    batches: AtomicU64,
    writes: AtomicU64,
}

impl PgBatcher {
    pub(crate) fn new(manager: Manager, max_batch: usize, deadline: Option<Duration>) -> Result<Self, StoreError> {
        let (jobs, queue) = channel::<Job>();
        let stats = Arc::new(Stats::default());
        let worker = Worker { manager, max_batch: max_batch.max(1), conn: None, stats: stats.clone() };
        std::thread::Builder::new()
            .name("scimgw-pg-batch".into())
            .spawn(move || worker.run(queue))
            .map_err(|e| StoreError::Internal(format!("cannot start the PostgreSQL batch thread: {e}")))?;
        Ok(PgBatcher { jobs, stats, deadline })
    }

    /// (batches, writes) written since the store was opened.
    pub(crate) fn stats(&self) -> (u64, u64) {
        (self.stats.batches.load(Ordering::Relaxed), self.stats.writes.load(Ordering::Relaxed))
    }

    /// Writes `op` in the next batch; answers once it is committed (or not written). After the
    /// deadline, `Unavailable`: a write already in a batch may still commit (as with any timeout,
    /// the client retries and meets it); one still queued is not made.
    pub(crate) async fn submit(&self, op: Op) -> Answer {
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Job { op, answer })
            .map_err(|_| StoreError::Internal("the PostgreSQL batch thread has stopped".into()))?;
        let answered = match self.deadline {
            Some(deadline) => {
                tokio::time::timeout(deadline, answered).await.map_err(|_| crate::workers::not_answered(deadline))?
            }
            None => answered.await,
        };
        answered.unwrap_or_else(|_| {
            Err(StoreError::Unavailable("the write was not carried out: the PostgreSQL batch thread failed".into()))
        })
    }
}

/// The statement that writes a batch of one kind: for each write, whether it was written.
type Statement = fn(&mut PgConnection, &[&Op]) -> Result<Vec<bool>, StoreError>;

struct Worker {
    manager: Manager,
    max_batch: usize,
    conn: Option<PgConnection>,
    stats: Arc<Stats>,
}

impl Worker {
    fn run(mut self, queue: Receiver<Job>) {
        // Ends when the store (every sender) is dropped.
        while let Ok(first) = queue.recv() {
            let mut batch = vec![first];
            while batch.len() < self.max_batch {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            // A caller that gave up waiting (the deadline) was answered 503: its write is not made.
            let (creates, updates): (Vec<Job>, Vec<Job>) =
                batch.into_iter().filter(|j| !j.answer.is_closed()).partition(|j| matches!(j.op, Op::Create(_)));
            for (jobs, statement) in [(creates, create_batch as Statement), (updates, update_batch)] {
                if jobs.is_empty() {
                    continue;
                }
                // A panic drops the batch's jobs, whose callers then get `Unavailable`; the thread
                // carries on with a new connection.
                if catch_unwind(AssertUnwindSafe(|| self.batch(jobs, statement))).is_err() {
                    tracing::error!("the PostgreSQL batch thread panicked in a batch; its writes were not carried out");
                    self.conn = None;
                }
            }
        }
    }

    /// Runs `jobs` as one statement, or one by one if that fails, and answers each.
    fn batch(&mut self, jobs: Vec<Job>, statement: Statement) {
        let conn = match self.connection() {
            Ok(conn) => conn,
            Err(e) => return answer_all(jobs, &e),
        };
        let ops: Vec<&Op> = jobs.iter().map(|j| &j.op).collect();
        let result = match ops.len() {
            1 => single(conn, ops[0]).map(|w| vec![w]),
            _ => statement(conn, &ops),
        };
        let answers = match result {
            Ok(written) => written.into_iter().map(Ok).collect(),
            // A deadlock victim (a group write locks its members in id order, a batch in its own
            // order): the statement was rolled back and the connection is fine; one by one below.
            Err(StoreError::Unavailable(why)) if why.contains("deadlock") && ops.len() > 1 => {
                tracing::debug!(writes = ops.len(), "a batch lost a deadlock; writing its writes one by one");
                self.one_by_one(&ops)
            }
            Err(e @ StoreError::Unavailable(_)) => {
                self.conn = None;
                return answer_all(jobs, &e);
            }
            // Nothing of the batch was written: each on its own, for its own answer.
            Err(e) => {
                tracing::debug!(error = %e, writes = ops.len(), "a batch failed; writing its writes one by one");
                self.one_by_one(&ops)
            }
        };
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        self.stats.writes.fetch_add(jobs.len() as u64, Ordering::Relaxed);
        metrics::histogram!("scimgw_store_write_batch_size").record(jobs.len() as f64);
        let mut answers = answers.into_iter();
        for job in jobs {
            let answer = answers.next().unwrap_or_else(|| {
                Err(StoreError::Unavailable("the store's connection was lost during the batch".into()))
            });
            let _ = job.answer.send(answer);
        }
    }

    /// Each write on its own, for its own answer; stops at a lost connection (the rest are then
    /// answered `Unavailable` by the caller).
    fn one_by_one(&mut self, ops: &[&Op]) -> Vec<Result<bool, StoreError>> {
        let mut answers = Vec::with_capacity(ops.len());
        for op in ops {
            let answer = match self.connection() {
                Ok(conn) => single(conn, op),
                Err(e) => Err(e),
            };
            if let Err(StoreError::Unavailable(why)) = &answer {
                if !why.contains("deadlock") {
                    self.conn = None;
                    answers.push(answer);
                    break;
                }
            }
            answers.push(answer);
        }
        answers
    }

    fn connection(&mut self) -> Result<&mut PgConnection, StoreError> {
        if self.conn.is_none() {
            match self.manager.open().map_err(|e| StoreError::Unavailable(e.0))? {
                AnyConnection::Pg(pg) => self.conn = Some(pg),
                AnyConnection::Sqlite(_) => {
                    return Err(StoreError::Internal("the PostgreSQL batch thread opened a SQLite store".into()));
                }
            }
        }
        self.conn.as_mut().ok_or_else(|| StoreError::Internal("no connection".into()))
    }
}

/// Answers every job of a batch that could not be run with `e`.
fn answer_all(jobs: Vec<Job>, e: &StoreError) {
    for job in jobs {
        let copy = match e {
            StoreError::Unavailable(why) => StoreError::Unavailable(why.clone()),
            other => StoreError::Internal(other.to_string()),
        };
        let _ = job.answer.send(Err(copy));
    }
}

/// One write with its single statement (`pg_writes`): `false` for a taken userName or a lost race.
fn single(conn: &mut PgConnection, op: &Op) -> Answer {
    match op {
        Op::Create(row) => match pg_writes::create_user(conn, &row.write()) {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict { .. }) => Ok(false),
            Err(e) => Err(e),
        },
        Op::Update { row, from } => pg_writes::update_user(conn, &row.write(), *from),
    }
}

/// The rows of a batch as parallel arrays.
#[derive(Default)]
struct Rows<'a> {
    n: Vec<i64>,
    tenant_id: Vec<&'a str>,
    id: Vec<&'a str>,
    from: Vec<i64>,
    user_name: Vec<&'a str>,
    user_name_ci: Vec<&'a str>,
    external_id: Vec<Option<&'a str>>,
    display_name: Vec<Option<&'a str>>,
    display_name_ci: Vec<Option<&'a str>>,
    active: Vec<Option<bool>>,
    body: Vec<&'a str>,
    now: Vec<i64>,
    /// Deliveries: the row's `n`, the new delivery's id, its target, the skip reason.
    d_n: Vec<i64>,
    d_id: Vec<String>,
    d_target: Vec<&'a str>,
    d_skipped: Vec<Option<&'a str>>,
    /// Audit events: the row's `n`, key, request id, operation.
    a_n: Vec<i64>,
    a_key: Vec<&'a str>,
    a_request: Vec<Option<&'a str>>,
    a_operation: Vec<&'a str>,
}

impl<'a> Rows<'a> {
    fn of(ops: &[&'a Op]) -> Rows<'a> {
        let mut r = Rows::default();
        for (n, op) in ops.iter().enumerate() {
            let n = n as i64;
            let (row, from) = match op {
                Op::Create(row) => (row, 0),
                Op::Update { row, from } => (row, *from),
            };
            let c = &row.columns;
            r.n.push(n);
            r.tenant_id.push(&row.tenant_id);
            r.id.push(&row.id);
            r.from.push(from);
            r.user_name.push(&c.user_name);
            r.user_name_ci.push(&c.user_name_ci);
            r.external_id.push(c.external_id.as_deref());
            r.display_name.push(c.display_name.as_deref());
            r.display_name_ci.push(c.display_name_ci.as_deref());
            r.active.push(c.active);
            r.body.push(&row.body);
            r.now.push(row.now);
            for e in &row.outbox {
                r.d_n.push(n);
                r.d_id.push(Uuid::now_v7().to_string());
                r.d_target.push(&e.target);
                r.d_skipped.push(e.skipped.as_deref());
            }
            if let Some(a) = &row.audit {
                r.a_n.push(n);
                r.a_key.push(&a.key_id);
                r.a_request.push(a.request_id.as_deref());
                r.a_operation.push(a.operation);
            }
        }
        r
    }

    /// The binds of the rows' columns, in the order of both statements' `v`: `user_name`,
    /// `user_name_ci`, `external_id`, `display_name`, `display_name_ci`, `active`, `body`, `now`.
    fn columns(&self) -> [Val<'_>; 8] {
        [
            Val::TextArray(&self.user_name),
            Val::TextArray(&self.user_name_ci),
            Val::OptTextArray(&self.external_id),
            Val::OptTextArray(&self.display_name),
            Val::OptTextArray(&self.display_name_ci),
            Val::OptBoolArray(&self.active),
            Val::TextArray(&self.body),
            Val::IntArray(&self.now),
        ]
    }

    /// The binds of the deliveries (`n`, id, target, skip reason) then of the audit events (`n`,
    /// key, request id, operation), in the order of both statements.
    fn entries<'b>(&'b self, d_id: &'b [&'b str]) -> [Val<'b>; 8] {
        [
            Val::IntArray(&self.d_n),
            Val::TextArray(d_id),
            Val::TextArray(&self.d_target),
            Val::OptTextArray(&self.d_skipped),
            Val::IntArray(&self.a_n),
            Val::TextArray(&self.a_key),
            Val::OptTextArray(&self.a_request),
            Val::TextArray(&self.a_operation),
        ]
    }

    /// For each row, whether its `n` is among `written`.
    fn answers(&self, written: &[i64]) -> Vec<bool> {
        let mut out = vec![false; self.n.len()];
        for &n in written {
            if let Some(slot) = usize::try_from(n).ok().and_then(|n| out.get_mut(n)) {
                *slot = true;
            }
        }
        out
    }
}

/// The creates of a batch: one `INSERT … SELECT FROM unnest(…)`, skipping taken userNames.
fn create_batch(conn: &mut PgConnection, ops: &[&Op]) -> Result<Vec<bool>, StoreError> {
    struct CreateUsers;
    let r = Rows::of(ops);
    let d_id: Vec<&str> = r.d_id.iter().map(String::as_str).collect();
    let [c1, c2, c3, c4, c5, c6, c7, c8] = r.columns();
    let [e1, e2, e3, e4, e5, e6, e7, e8] = r.entries(&d_id);
    let written = fixed::<CreateUsers, 19>(
        CREATE_USERS,
        [
            Val::IntArray(&r.n),
            Val::TextArray(&r.tenant_id),
            Val::TextArray(&r.id),
            c1,
            c2,
            c3,
            c4,
            c5,
            c6,
            c7,
            c8,
            e1,
            e2,
            e3,
            e4,
            e5,
            e6,
            e7,
            e8,
        ],
    )
    .returning::<BigInt>()
    .load::<i64>(conn)?;
    Ok(r.answers(&written))
}

/// The updates of a batch: one `UPDATE … FROM unnest(…)`, each conditional on its version.
fn update_batch(conn: &mut PgConnection, ops: &[&Op]) -> Result<Vec<bool>, StoreError> {
    struct UpdateUsers;
    let r = Rows::of(ops);
    let d_id: Vec<&str> = r.d_id.iter().map(String::as_str).collect();
    let [c1, c2, c3, c4, c5, c6, c7, c8] = r.columns();
    let [e1, e2, e3, e4, e5, e6, e7, e8] = r.entries(&d_id);
    let written = fixed::<UpdateUsers, 20>(
        UPDATE_USERS,
        [
            Val::IntArray(&r.n),
            Val::TextArray(&r.tenant_id),
            Val::TextArray(&r.id),
            Val::IntArray(&r.from),
            c1,
            c2,
            c3,
            c4,
            c5,
            c6,
            c7,
            c8,
            e1,
            e2,
            e3,
            e4,
            e5,
            e6,
            e7,
            e8,
        ],
    )
    .returning::<BigInt>()
    .load::<i64>(conn)?;
    Ok(r.answers(&written))
}

/// The statement of [`create_batch`].
pub(crate) const CREATE_USERS: &str = "WITH v AS (SELECT * FROM unnest(?::bigint[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], \
               ?::text[], ?::text[], ?::boolean[], ?::text[], ?::bigint[]) \
               AS v (n, tenant_id, id, user_name, user_name_ci, external_id, display_name, display_name_ci, \
               active, body, now)), \
         u AS (INSERT INTO users (tenant_id, id, user_name, user_name_ci, external_id, display_name, \
               display_name_ci, active, body, version, created_us, modified_us) \
               SELECT tenant_id, id, user_name, user_name_ci, external_id, display_name, display_name_ci, \
               active, body, 1, now, now FROM v ORDER BY n \
               ON CONFLICT DO NOTHING RETURNING tenant_id, id, modified_us), \
         w AS (SELECT v.n, u.tenant_id, u.id, u.modified_us FROM u JOIN v ON v.tenant_id = u.tenant_id \
               AND v.id = u.id), \
         e AS (SELECT * FROM unnest(?::bigint[], ?::text[], ?::text[], ?::text[]) AS e (n, id, target, skipped)), \
         q AS (INSERT INTO deliveries (id, tenant_id, target, resource_type, resource_id, state, version, \
               attempts, due_us, last_error, created_us, updated_us) \
               SELECT e.id, w.tenant_id, e.target, 'User', w.id, \
                      CASE WHEN e.skipped IS NULL THEN 'pending' ELSE 'skipped' END, 1, 0, w.modified_us, \
                      e.skipped, w.modified_us, w.modified_us \
               FROM w JOIN e ON e.n = w.n), \
         a AS (INSERT INTO audit_events (tenant_id, at_us, key_id, request_id, operation, resource_type, \
               resource_id, version) \
               SELECT w.tenant_id, w.modified_us, a.key_id, a.request_id, a.operation, 'User', w.id, 1 \
               FROM w JOIN unnest(?::bigint[], ?::text[], ?::text[], ?::text[]) \
               AS a (n, key_id, request_id, operation) ON a.n = w.n) \
         SELECT n FROM w";

/// The statement of [`update_batch`].
pub(crate) const UPDATE_USERS: &str = "WITH v AS (SELECT * FROM unnest(?::bigint[], ?::text[], ?::text[], ?::bigint[], ?::text[], ?::text[], \
               ?::text[], ?::text[], ?::text[], ?::boolean[], ?::text[], ?::bigint[]) \
               AS v (n, tenant_id, id, from_version, user_name, user_name_ci, external_id, display_name, \
               display_name_ci, active, body, now)), \
         u AS (UPDATE users SET user_name = v.user_name, user_name_ci = v.user_name_ci, \
               external_id = v.external_id, display_name = v.display_name, \
               display_name_ci = v.display_name_ci, active = v.active, body = v.body, \
               version = users.version + 1, modified_us = v.now \
               FROM v WHERE users.tenant_id = v.tenant_id AND users.id = v.id AND users.version = v.from_version \
               RETURNING v.n, users.tenant_id, users.id, users.version, users.modified_us), \
         e AS (SELECT * FROM unnest(?::bigint[], ?::text[], ?::text[], ?::text[]) AS e (n, id, target, skipped)), \
         ue AS MATERIALIZED (SELECT u.n, u.tenant_id, u.id, u.version, u.modified_us, e.target \
               FROM u JOIN e ON e.n = u.n WHERE e.skipped IS NULL), \
         absorbed AS (UPDATE deliveries d SET version = ue.version, updated_us = ue.modified_us FROM ue \
               WHERE d.tenant_id = ue.tenant_id AND d.target = ue.target AND d.resource_type = 'User' \
                 AND d.resource_id = ue.id COLLATE \"default\" AND (d.state IN ('pending', 'failed')) IS TRUE \
               RETURNING ue.n, ue.target), \
         q AS (INSERT INTO deliveries (id, tenant_id, target, resource_type, resource_id, state, version, \
               attempts, due_us, last_error, created_us, updated_us) \
               SELECT e.id, u.tenant_id, e.target, 'User', u.id, \
                      CASE WHEN e.skipped IS NULL THEN 'pending' ELSE 'skipped' END, u.version, 0, \
                      u.modified_us, e.skipped, u.modified_us, u.modified_us \
               FROM u JOIN e ON e.n = u.n \
               WHERE e.skipped IS NOT NULL \
                  OR NOT EXISTS (SELECT 1 FROM absorbed x WHERE x.n = e.n AND x.target = e.target)), \
         a AS (INSERT INTO audit_events (tenant_id, at_us, key_id, request_id, operation, resource_type, \
               resource_id, version) \
               SELECT u.tenant_id, u.modified_us, a.key_id, a.request_id, a.operation, 'User', u.id, u.version \
               FROM u JOIN unnest(?::bigint[], ?::text[], ?::text[], ?::text[]) \
               AS a (n, key_id, request_id, operation) ON a.n = u.n) \
         SELECT n FROM u";
