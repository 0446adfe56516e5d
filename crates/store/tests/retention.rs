//! Retention: a purge removes done and superseded deliveries (with their attempts) and audit and
//! operator events older than the cutoffs, across several batches, and nothing else; the purge
//! job is claimed by one dispatcher per interval. Both engines. Old rows are written with SQL
//! on a connection of the test's own (their ids as UUIDv7 of their time, as the store makes them).

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use scimgw_store::testing::TestDb;
use scimgw_store::{Backend, Cutoffs, OperatorAction, PurgeCounts};

const DAY_US: i64 = 86_400_000_000;

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// A UUIDv7 of the time `us`.
fn v7_at(us: i64) -> String {
    let secs = u64::try_from(us / 1_000_000).unwrap_or_else(|e| panic!("{e}"));
    let nanos = u32::try_from((us % 1_000_000) * 1000).unwrap_or_else(|e| panic!("{e}"));
    uuid::Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, secs, nanos)).to_string()
}

/// Runs `sql` on a connection of the test's own to the store's database.
fn exec(db: &TestDb, sql: &str) {
    let url = &db.config().url;
    match db.backend() {
        Backend::Sqlite => SqliteConnection::establish(url.trim_start_matches("sqlite://"))
            .unwrap_or_else(|e| panic!("{e}"))
            .batch_execute(sql)
            .unwrap_or_else(|e| panic!("{e}")),
        Backend::Postgres => PgConnection::establish(url)
            .unwrap_or_else(|e| panic!("{e}"))
            .batch_execute(sql)
            .unwrap_or_else(|e| panic!("{e}")),
    }
}

/// `n` deliveries in `state`, created at `created_us` and last changed at `updated_us`, each with
/// two attempts.
fn deliveries(db: &TestDb, tenant: &str, n: usize, state: &str, created_us: i64, updated_us: i64) {
    let mut sql = String::from("BEGIN;");
    for i in 0..n {
        let id = v7_at(created_us + i as i64);
        sql.push_str(&format!(
            "INSERT INTO deliveries (id, tenant_id, target, resource_type, resource_id, state, version, attempts, \
             due_us, created_us, updated_us) VALUES ('{id}', '{tenant}', 'crm', 'User', 'u{i}', '{state}', 1, 2, \
             {created_us}, {created_us}, {updated_us});\
             INSERT INTO delivery_attempts (delivery_id, attempt, at_us, outcome, duration_ms) VALUES \
             ('{id}', 1, {created_us}, 'failed', 5), ('{id}', 2, {updated_us}, '{state}', 5);"
        ));
    }
    sql.push_str("COMMIT;");
    exec(db, &sql);
}

fn audit_events(db: &TestDb, tenant: &str, n: usize, at_us: i64) {
    let mut sql = String::from("BEGIN;");
    for i in 0..n {
        sql.push_str(&format!(
            "INSERT INTO audit_events (tenant_id, at_us, key_id, operation, resource_type, resource_id, version) \
             VALUES ('{tenant}', {}, 'k', 'create', 'User', 'u{i}', 1);",
            at_us + i as i64
        ));
    }
    sql.push_str("COMMIT;");
    exec(db, &sql);
}

fn purges_old_finished_rows_and_nothing_else(db: TestDb) {
    let store = db.store();
    let tenant = store.create_tenant("acme").unwrap_or_else(|e| panic!("{e}")).id;
    let (now, old) = (now_us(), now_us() - 40 * DAY_US);
    // Older than 30 days: 1,200 done and 3 superseded go; dead, pending, skipped stay.
    deliveries(&db, &tenant, 1200, "done", old, old);
    deliveries(&db, &tenant, 3, "superseded", old, old + 1);
    deliveries(&db, &tenant, 4, "dead", old, old);
    deliveries(&db, &tenant, 2, "pending", old, old);
    deliveries(&db, &tenant, 2, "skipped", old, old);
    // Recent, or created long ago and finished lately: stay.
    deliveries(&db, &tenant, 5, "done", now - DAY_US, now - DAY_US);
    deliveries(&db, &tenant, 1, "done", old - 1000, now - DAY_US);
    // Audit: older than 400 days go.
    audit_events(&db, &tenant, 700, now - 500 * DAY_US);
    audit_events(&db, &tenant, 3, now - DAY_US);
    for (operation, at) in [("tenant-add", now - 450 * DAY_US), ("key-issue", now - 420 * DAY_US), ("key-revoke", now)]
    {
        store
            .record_operator_event(&OperatorAction { actor: "t".into(), operation, ..Default::default() })
            .unwrap_or_else(|e| panic!("{e}"));
        exec(&db, &format!("UPDATE operator_events SET at_us = {at} WHERE operation = '{operation}'"));
    }
    let cutoffs = Cutoffs { deliveries_before_us: Some(now - 30 * DAY_US), audit_before_us: Some(now - 400 * DAY_US) };
    let expected = PurgeCounts { deliveries: 1203, attempts: 2406, audit_events: 700, operator_events: 2 };
    assert_eq!(store.purge_candidates(cutoffs).unwrap_or_else(|e| panic!("{e}")), expected);
    let before = store.size_bytes().unwrap_or_else(|e| panic!("{e}"));
    let batches = std::cell::Cell::new(0);
    let purged = store
        .purge(cutoffs, 500, &|| {
            batches.set(batches.get() + 1);
            false
        })
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(purged, expected);
    let batches = batches.get();
    assert!(batches > 3 + 2, "1,203 deliveries in batches of 500, then the events: {batches} batches");
    assert_eq!(store.purge_candidates(cutoffs).unwrap_or_else(|e| panic!("{e}")), PurgeCounts::default());
    let left = store.outbox_stats(true).unwrap_or_else(|e| panic!("{e}"));
    let count = |state: &str| left.iter().filter(|s| s.state == state).map(|s| s.count).sum::<i64>();
    assert_eq!(
        (count("done"), count("superseded"), count("dead"), count("pending"), count("skipped")),
        (6, 0, 4, 2, 2)
    );
    let page = store
        .audit_events_in(&tenant, None, 1000, scimgw_store::AuditOrder::OldestFirst)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(page.matched, 3);
    let (ops, _) =
        store.operator_events(None, None, 10, scimgw_store::AuditOrder::OldestFirst).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ops.iter().map(|e| e.operation.as_str()).collect::<Vec<_>>(), ["key-revoke"]);
    // A purge that finds nothing changes nothing.
    assert_eq!(store.purge(cutoffs, 500, &|| false).unwrap_or_else(|e| panic!("{e}")), PurgeCounts::default());
    // SQLite: the freed pages went back to the file system (a new file vacuums incrementally).
    if db.backend() == Backend::Sqlite {
        let after = store.size_bytes().unwrap_or_else(|e| panic!("{e}"));
        assert!(after < before, "the file shrank: {before} → {after} bytes");
    }
    // A stop between batches stops it.
    deliveries(&db, &tenant, 50, "done", old, old);
    assert_eq!(store.purge(cutoffs, 10, &|| true).unwrap_or_else(|e| panic!("{e}")), PurgeCounts::default());
}

fn the_purge_job_is_taken_once_per_interval(db: TestDb) {
    let store = db.store();
    let now = now_us();
    assert!(store.claim_job("purge", "a", now - 3_600_000_000).unwrap_or_else(|e| panic!("{e}")), "first");
    assert!(
        !store.claim_job("purge", "b", now - 3_600_000_000).unwrap_or_else(|e| panic!("{e}")),
        "taken within the hour"
    );
    assert!(store.claim_job("purge", "b", now_us() + 1).unwrap_or_else(|e| panic!("{e}")), "due again");
    assert!(store.claim_job("other", "b", now).unwrap_or_else(|e| panic!("{e}")), "jobs are apart");
}

#[test]
fn purges_old_finished_rows_and_nothing_else_sqlite() {
    purges_old_finished_rows_and_nothing_else(TestDb::sqlite());
}

#[test]
fn purges_old_finished_rows_and_nothing_else_postgres() {
    if let Some(db) = TestDb::postgres() {
        purges_old_finished_rows_and_nothing_else(db);
    }
}

#[test]
fn the_purge_job_is_taken_once_per_interval_sqlite() {
    the_purge_job_is_taken_once_per_interval(TestDb::sqlite());
}

#[test]
fn the_purge_job_is_taken_once_per_interval_postgres() {
    if let Some(db) = TestDb::postgres() {
        the_purge_job_is_taken_once_per_interval(db);
    }
}
