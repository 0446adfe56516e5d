//! Retention: the purge of done deliveries (with their attempts) and of audit and operator events
//! older than the configured ages, in small batches that never hold the writer for long.
//!
//! Each batch reads the ids of its candidates on a pooled connection (a range of the primary key
//! from its start: delivery ids are UUIDv7, so ordered by creation; audit ids by insertion), then
//! deletes them by id in one short write that checks again that each is still eligible. A batch
//! is sized so that its write holds the writer about [`WRITE_BUDGET`] (at most `batch` rows, the
//! configured ceiling), and after each the purge rests [`REST_FACTOR`] times as long as the batch
//! took: writes of the API wait behind a purge write for a few milliseconds at most, and the
//! purge takes at most a quarter of the writer's time. Only `done` and `superseded` deliveries
//! go (`dead`, `skipped` and waiting ones are kept whatever their age: someone may still act on
//! them).
//!
//! SQLite: a store file created by this version has `auto_vacuum = INCREMENTAL`, and each purge
//! ends by giving the freed pages back to the file system (`PRAGMA incremental_vacuum`). An
//! older file keeps its free pages for new rows (the file stops growing, it does not shrink)
//! until `scimgw purge --vacuum` rewrites it (`VACUUM`, which holds the writer while it runs).
//! PostgreSQL reuses the space after its autovacuum; only `VACUUM FULL` would shrink the files.

use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::BigInt;

use crate::connection::{AnyConnection, Backend};
use crate::error::StoreError;
use crate::resource::now_us;
use crate::schema::{audit_events, deliveries, delivery_attempts, maintenance, operator_events};
use crate::store::Store;

/// How long one purge write aims to hold the writer (and the API's writes queued behind it).
pub const WRITE_BUDGET: Duration = Duration::from_millis(1);

/// After each batch the purge rests this many times as long as the batch took.
pub const REST_FACTOR: u32 = 3;

/// The fewest rows (or SQLite pages) a purge write takes, however slow the store.
const MIN_BATCH: i64 = 16;

/// The most SQLite pages (4 KiB) given back to the file system in one write after a purge.
const MAX_VACUUM_PAGES: i64 = 2048;

/// The size of a purge's writes, fitted to [`WRITE_BUDGET`] as they go, and what they cost.
struct Pacer {
    size: i64,
    max: i64,
    /// Whether sizes follow [`WRITE_BUDGET`] (SQLite, one writer); PostgreSQL has no single
    /// writer to protect and its round trips would count as held time: fixed batches there.
    fitted: bool,
    writes: u64,
    longest: Duration,
}

impl Pacer {
    fn new(start: i64, max: i64, fitted: bool) -> Pacer {
        let max = max.max(1);
        let start = if fitted { start.clamp(MIN_BATCH.min(max), max) } else { max };
        Pacer { size: start, max, fitted, writes: 0, longest: Duration::ZERO }
    }

    /// After a batch begun at `started` whose write held the writer `held` (`None`: nothing
    /// was eligible, no write): the next batch's size (at most doubled, shrunk at once to fit
    /// the budget) and the rest.
    fn after(&mut self, started: Instant, held: Option<Duration>) {
        if let Some(held) = held {
            self.writes += 1;
            self.longest = self.longest.max(held);
            if self.fitted {
                let ratio = (WRITE_BUDGET.as_secs_f64() / held.as_secs_f64().max(1e-6)).clamp(0.01, 2.0);
                // The ratio is between 0.01 and 2 and the size at most MAX_BATCH: no overflow.
                #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
                let next = (self.size as f64 * ratio) as i64;
                self.size = next.clamp(MIN_BATCH.min(self.max), self.max);
            }
        }
        std::thread::sleep((started.elapsed() * REST_FACTOR).min(Duration::from_secs(1)));
    }
}

/// Runs `f` and says how long it took: what a write held the writer.
fn timed<T>(f: impl FnOnce() -> Result<T, StoreError>) -> Result<(T, Duration), StoreError> {
    let started = Instant::now();
    f().map(|t| (t, started.elapsed()))
}

/// The largest `retention.batch`: a batch is one statement's bound values.
pub const MAX_BATCH: i64 = 10_000;

/// The states of the deliveries a purge removes.
const PURGED_STATES: [&str; 2] = ["done", "superseded"];

/// What to purge: rows older than these times (microseconds since the epoch); `None` keeps
/// that kind for ever.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cutoffs {
    /// Done and superseded deliveries last changed before this go, with their attempts.
    pub deliveries_before_us: Option<i64>,
    /// Audit and operator events recorded before this go.
    pub audit_before_us: Option<i64>,
}

/// Rows a purge removed, or would remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PurgeCounts {
    /// Deliveries.
    pub deliveries: u64,
    /// Their attempts.
    pub attempts: u64,
    /// API audit events.
    pub audit_events: u64,
    /// Operator events.
    pub operator_events: u64,
}

impl PurgeCounts {
    /// Every row.
    pub fn total(&self) -> u64 {
        self.deliveries + self.attempts + self.audit_events + self.operator_events
    }
}

/// The smallest UUIDv7 text of the millisecond `us` falls in: every delivery id created before
/// that millisecond sorts below it.
fn v7_floor(us: i64) -> String {
    let ms = u64::try_from(us.max(0) / 1000).unwrap_or(0);
    format!("{:08x}-{:04x}", (ms >> 16) & 0xffff_ffff, ms & 0xffff)
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Of the deliveries `ids`, those a purge with cutoff `before_us` may remove. The state is
/// compared as `state || ''`, which no index covers: without statistics SQLite otherwise plans
/// `state IN (…)` on `deliveries_stats (state, …)` and walks every done delivery of the store in
/// each batch instead of looking up the ids by primary key (40 ms a batch at 100,000 rows, ten
/// times that at 1,000,000; bench/RESULTS.md). The test below holds the plan.
#[diesel::dsl::auto_type(no_type_alias)]
fn still_eligible<'a>(ids: &'a [String], before_us: i64) -> _ {
    let states: [&'static str; 2] = PURGED_STATES;
    let nothing: &'static str = "";
    deliveries::table
        .filter(deliveries::id.eq_any(ids))
        .filter(deliveries::state.concat(nothing).eq_any(states))
        .filter(deliveries::updated_us.lt(before_us))
}

impl Store {
    /// What a purge with `cutoffs` would remove now (reads only).
    pub fn purge_candidates(&self, cutoffs: Cutoffs) -> Result<PurgeCounts, StoreError> {
        let mut conn = self.conn()?;
        let mut out = PurgeCounts::default();
        if let Some(before) = cutoffs.deliveries_before_us {
            let eligible = deliveries::table
                .filter(deliveries::id.lt(v7_floor(before)))
                .filter(deliveries::state.eq_any(PURGED_STATES))
                .filter(deliveries::updated_us.lt(before));
            out.deliveries = u64::try_from(eligible.clone().count().get_result::<i64>(&mut *conn)?).unwrap_or(0);
            out.attempts = u64::try_from(
                delivery_attempts::table
                    .filter(delivery_attempts::delivery_id.eq_any(eligible.select(deliveries::id)))
                    .count()
                    .get_result::<i64>(&mut *conn)?,
            )
            .unwrap_or(0);
        }
        if let Some(before) = cutoffs.audit_before_us {
            out.audit_events = u64::try_from(
                audit_events::table.filter(audit_events::at_us.lt(before)).count().get_result::<i64>(&mut *conn)?,
            )
            .unwrap_or(0);
            out.operator_events = u64::try_from(
                operator_events::table
                    .filter(operator_events::at_us.lt(before))
                    .count()
                    .get_result::<i64>(&mut *conn)?,
            )
            .unwrap_or(0);
        }
        Ok(out)
    }

    /// Purges what `cutoffs` name, in writes of at most `batch` rows sized to hold the writer
    /// about [`WRITE_BUDGET`] each, resting after each (see the module doc); `stop` is asked
    /// between batches (a shutdown). Ends by giving SQLite's freed pages back to the file system.
    pub fn purge(&self, cutoffs: Cutoffs, batch: i64, stop: &dyn Fn() -> bool) -> Result<PurgeCounts, StoreError> {
        let mut out = PurgeCounts::default();
        let max = batch.clamp(1, MAX_BATCH);
        let mut pacer = Pacer::new(max.min(100), max, self.backend() == Backend::Sqlite);
        if let Some(before) = cutoffs.deliveries_before_us {
            let mut after = String::new();
            loop {
                if stop() {
                    return Ok(out);
                }
                let started = Instant::now();
                let Some((last, d, a, held)) = self.purge_deliveries_batch(&after, before, pacer.size)? else { break };
                out.deliveries += d;
                out.attempts += a;
                after = last;
                pacer.after(started, (d + a > 0).then_some(held));
            }
        }
        if let Some(before) = cutoffs.audit_before_us {
            for operator in [false, true] {
                loop {
                    if stop() {
                        return Ok(out);
                    }
                    let started = Instant::now();
                    let (n, held) = self.purge_events_batch(operator, before, pacer.size)?;
                    if operator {
                        out.operator_events += n;
                    } else {
                        out.audit_events += n;
                    }
                    if n == 0 {
                        break;
                    }
                    pacer.after(started, Some(held));
                }
            }
        }
        if out.total() > 0 {
            self.release_free_pages(&mut pacer)?;
        }
        if pacer.writes > 0 {
            tracing::info!(
                writes = pacer.writes,
                longest_write_ms = pacer.longest.as_secs_f64() * 1000.0,
                "retention: the purge's writes (each held the writer at most this long)"
            );
        }
        Ok(out)
    }

    /// One batch of deliveries: the next `batch` ids after `after` that were created before
    /// `before_us` (a range of the primary key: no other index, whatever the states), of which
    /// the done and superseded ones last changed before `before_us` go. (last id read,
    /// deliveries removed, attempts removed); `None` when no id is left in the range.
    fn purge_deliveries_batch(
        &self,
        after: &str,
        before_us: i64,
        batch: i64,
    ) -> Result<Option<(String, u64, u64, Duration)>, StoreError> {
        let rows: Vec<(String, String, i64)> = deliveries::table
            .filter(deliveries::id.gt(after))
            .filter(deliveries::id.lt(v7_floor(before_us)))
            .order(deliveries::id.asc())
            .limit(batch)
            .select((deliveries::id, deliveries::state, deliveries::updated_us))
            .load(&mut *self.conn()?)?;
        let Some(last) = rows.last().map(|r| r.0.clone()) else { return Ok(None) };
        let ids: Vec<String> = rows
            .into_iter()
            .filter(|(_, state, updated)| PURGED_STATES.contains(&state.as_str()) && *updated < before_us)
            .map(|(id, _, _)| id)
            .collect();
        if ids.is_empty() {
            return Ok(Some((last, 0, 0, Duration::ZERO)));
        }
        let ((d, a), held) = self.write_owned(move |c| {
            timed(|| {
                // Checked again in the write: only rows still eligible go.
                let attempts = diesel::delete(delivery_attempts::table.filter(
                    delivery_attempts::delivery_id.eq_any(still_eligible(&ids, before_us).select(deliveries::id)),
                ))
                .execute(c)?;
                let removed = diesel::delete(still_eligible(&ids, before_us)).execute(c)?;
                Ok((removed as u64, attempts as u64))
            })
        })?;
        Ok(Some((last, d, a, held)))
    }

    /// One batch of audit (`operator`: operator) events recorded before `before_us`, oldest first
    /// by id: how many went. The ids are read from the start of the key; the batch stops at the
    /// first event that is not old enough.
    fn purge_events_batch(&self, operator: bool, before_us: i64, batch: i64) -> Result<(u64, Duration), StoreError> {
        let rows: Vec<(i64, i64)> = {
            let mut conn = self.conn()?;
            match operator {
                true => operator_events::table
                    .order(operator_events::id.asc())
                    .limit(batch)
                    .select((operator_events::id, operator_events::at_us))
                    .load(&mut *conn)?,
                false => audit_events::table
                    .order(audit_events::id.asc())
                    .limit(batch)
                    .select((audit_events::id, audit_events::at_us))
                    .load(&mut *conn)?,
            }
        };
        let ids: Vec<i64> = rows.iter().take_while(|(_, at)| *at < before_us).map(|(id, _)| *id).collect();
        if ids.is_empty() {
            return Ok((0, Duration::ZERO));
        }
        let (n, held) = self.write_owned(move |c| {
            timed(|| {
                Ok(match operator {
                    true => {
                        diesel::delete(operator_events::table.filter(operator_events::id.eq_any(&ids))).execute(c)?
                    }
                    false => diesel::delete(audit_events::table.filter(audit_events::id.eq_any(&ids))).execute(c)?,
                })
            })
        })?;
        Ok((n as u64, held))
    }

    /// SQLite with `auto_vacuum = INCREMENTAL`: gives the free pages back to the file system,
    /// in writes sized like a purge's (after a large purge the free list holds hundreds of MB).
    /// Otherwise nothing.
    fn release_free_pages(&self, pacer: &mut Pacer) -> Result<(), StoreError> {
        if self.backend() != Backend::Sqlite {
            return Ok(());
        }
        tracing::debug!("retention: giving free pages back");
        pacer.max = MAX_VACUUM_PAGES;
        pacer.fitted = true;
        pacer.size = pacer.size.clamp(MIN_BATCH, MAX_VACUUM_PAGES);
        let auto: Count =
            diesel::sql_query("SELECT auto_vacuum AS n FROM pragma_auto_vacuum()").get_result(&mut *self.conn()?)?;
        // 2: incremental; a file made before this version (0) keeps its free pages for new rows.
        if auto.n != 2 {
            return Ok(());
        }
        loop {
            let free: Count = diesel::sql_query("SELECT freelist_count AS n FROM pragma_freelist_count()")
                .get_result(&mut *self.conn()?)?;
            if free.n == 0 {
                return Ok(());
            }
            let started = Instant::now();
            let pages = pacer.size;
            let ((), held) = self.write(|c| {
                timed(|| {
                    if let AnyConnection::Sqlite(inner) = c {
                        diesel::connection::SimpleConnection::batch_execute(
                            inner,
                            &format!("PRAGMA incremental_vacuum({pages})"),
                        )?;
                    }
                    Ok(())
                })
            })?;
            pacer.after(started, Some(held));
        }
    }

    /// Rewrites the store to its smallest size. SQLite: switches the file to
    /// `auto_vacuum = INCREMENTAL` and runs `VACUUM`, holding the writer (and every write of
    /// every tenant) while it runs. PostgreSQL: `VACUUM (ANALYZE)` of the purged tables, which
    /// makes their free space reusable without blocking writes (it does not shrink the files).
    pub fn vacuum(&self) -> Result<(), StoreError> {
        let sql = match self.backend() {
            Backend::Sqlite => "PRAGMA auto_vacuum = INCREMENTAL; VACUUM;",
            Backend::Postgres => "VACUUM (ANALYZE) deliveries, delivery_attempts, audit_events, operator_events",
        };
        Ok(diesel::connection::SimpleConnection::batch_execute(&mut *self.conn()?, sql)?)
    }

    /// The store's size in bytes: SQLite, the database file's pages (not its WAL); PostgreSQL,
    /// the tables of this store with their indexes and TOAST.
    pub fn size_bytes(&self) -> Result<u64, StoreError> {
        let mut conn = self.conn()?;
        let sql = match self.backend() {
            Backend::Sqlite => "SELECT page_count * page_size AS n FROM pragma_page_count(), pragma_page_size()",
            Backend::Postgres => {
                "SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0)::BIGINT AS n FROM pg_class c \
                 JOIN pg_namespace s ON s.oid = c.relnamespace \
                 WHERE c.relkind = 'r' AND s.nspname = current_schema()"
            }
        };
        let c: Count = diesel::sql_query(sql).get_result(&mut *conn)?;
        Ok(u64::try_from(c.n).unwrap_or(0))
    }

    /// Takes maintenance job `job` for `owner` unless another took it at or after
    /// `due_before_us`: of several dispatchers on one store, one runs it per interval.
    pub fn claim_job(&self, job: &str, owner: &str, due_before_us: i64) -> Result<bool, StoreError> {
        let (job, owner) = (job.to_owned(), owner.to_owned());
        self.write_owned(move |c| {
            let now = now_us();
            let last: Option<i64> =
                maintenance::table.find(&job).select(maintenance::started_us).first(c).optional()?;
            match last {
                None => {
                    diesel::insert_into(maintenance::table)
                        .values((
                            maintenance::job.eq(&job),
                            maintenance::owner.eq(&owner),
                            maintenance::started_us.eq(now),
                        ))
                        .execute(c)?;
                    Ok(true)
                }
                Some(at) if at < due_before_us => {
                    let n = diesel::update(maintenance::table.find(&job).filter(maintenance::started_us.eq(at)))
                        .set((maintenance::owner.eq(&owner), maintenance::started_us.eq(now)))
                        .execute(c)?;
                    Ok(n > 0)
                }
                Some(_) => Ok(false),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::sql_types::Text;
    use diesel::sqlite::{Sqlite, SqliteConnection};
    use diesel_migrations::MigrationHarness;

    #[derive(QueryableByName)]
    struct Step {
        #[diesel(sql_type = Text)]
        detail: String,
    }

    /// SQLite's plan for `query` (unbound parameters are NULL, which the plan does not look at).
    fn plan(conn: &mut SqliteConnection, query: &impl diesel::query_builder::QueryFragment<Sqlite>) -> String {
        let sql = diesel::debug_query::<Sqlite, _>(query).to_string();
        let sql = sql.split(" -- binds:").next().unwrap_or_default();
        let steps: Vec<Step> =
            diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}")).load(conn).unwrap_or_else(|e| panic!("{e}: {sql}"));
        steps.into_iter().map(|s| s.detail).collect::<Vec<_>>().join("; ")
    }

    #[test]
    fn the_pacer_fits_writes_to_the_budget_and_ignores_batches_that_wrote_nothing() {
        let mut p = Pacer::new(100, 500, true);
        // Nothing eligible: no write, no growth.
        p.after(Instant::now(), None);
        assert_eq!((p.size, p.writes), (100, 0));
        // Ten times the budget: down to a tenth at once.
        p.after(Instant::now(), Some(WRITE_BUDGET * 10));
        assert_eq!((p.size, p.writes), (10.max(MIN_BATCH), 1));
        // Well under it: at most doubled, never above the ceiling.
        for _ in 0..10 {
            p.after(Instant::now(), Some(WRITE_BUDGET / 100));
        }
        assert_eq!(p.size, 500);
        // A configured ceiling below the floor is kept.
        assert_eq!(Pacer::new(100, 5, true).size, 5);
        // PostgreSQL: fixed batches of the ceiling, whatever a write took.
        let mut pg = Pacer::new(100, 500, false);
        pg.after(Instant::now(), Some(WRITE_BUDGET * 100));
        assert_eq!(pg.size, 500);
    }

    #[test]
    fn the_purges_deletes_look_their_ids_up_by_primary_key_on_sqlite() {
        let mut conn = SqliteConnection::establish(":memory:").unwrap_or_else(|e| panic!("{e}"));
        conn.run_pending_migrations(crate::store::SQLITE_MIGRATIONS).unwrap_or_else(|e| panic!("{e}"));
        let ids: Vec<String> = (0..500).map(|i| format!("id{i}")).collect();
        let deliveries = plan(&mut conn, &diesel::delete(still_eligible(&ids, 5)));
        let attempts = plan(
            &mut conn,
            &diesel::delete(
                delivery_attempts::table
                    .filter(delivery_attempts::delivery_id.eq_any(still_eligible(&ids, 5).select(deliveries::id))),
            ),
        );
        for plan in [&deliveries, &attempts] {
            assert!(plan.contains("sqlite_autoindex_deliveries_1 (id=?)"), "{plan}");
            assert!(!plan.contains("deliveries_stats"), "{plan}");
        }
        assert!(attempts.contains("sqlite_autoindex_delivery_attempts_1 (delivery_id=?)"), "{attempts}");
    }

    #[test]
    fn the_v7_floor_sorts_below_every_id_of_that_millisecond_and_above_earlier_ones() {
        let us = 1_765_000_000_123_456;
        let floor = v7_floor(us);
        let ms = (us / 1000) as u64;
        let at = |ms: u64| format!("{:08x}-{:04x}-7abc-8def-0123456789ab", ms >> 16, ms & 0xffff);
        assert!(at(ms - 1) < floor);
        assert!(at(ms) > floor);
        assert!(at(ms + 1) > floor);
        let id = uuid::Uuid::now_v7().to_string();
        assert!(id < v7_floor(now_us() + 1_000_000) && id > v7_floor(now_us() - 1_000_000), "{id}");
    }
}
