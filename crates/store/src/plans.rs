//! The plans PostgreSQL chooses for the user updates' statements, checked on a table large enough
//! for the planner to care.
//!
//! An update absorbs the live deliveries of the user into its own change (the outbox's coalescing
//! rule); those rows must be found through `deliveries_resource` from each (user, target) pair. A
//! first form of the statements compared `users.id` (`COLLATE "C"`) with
//! `deliveries.resource_id` (the default collation), which no index serves: with a backlog of
//! pending deliveries every pair scanned the open rows, and one batch of the 100,000-user
//! end-to-end run took 18 minutes (issue 7). The store's other tests hold a handful of rows, where
//! a scan is the right plan, so they cannot see this; here 60,000 deliveries are seeded, the
//! statements are prepared with the very parameter types the store binds, and `EXPLAIN` must show
//! `deliveries_resource` and no other way into `deliveries` — under both the custom plans a
//! prepared statement starts with and the generic plan it may settle on.
//!
//! The dispatchers' claim is checked the same way on both engines: it must walk
//! `deliveries_open_due` in due order and stop after its `LIMIT`, never sort the open rows (with
//! the index on `(state, due_us)` each claim read and sorted all 180,000 waiting rows of the
//! 100,000-user end-to-end run on PostgreSQL, 50–120 ms a claim).

use diesel::connection::SimpleConnection;
use diesel::sql_types::{Integer, Text};
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl, SqliteConnection};

use crate::testing::TestDb;

#[derive(QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    line: String,
}

/// A row of SQLite's `EXPLAIN QUERY PLAN`.
#[derive(QueryableByName)]
struct SqlitePlanLine {
    #[diesel(sql_type = Integer)]
    #[expect(dead_code, reason = "read to match the row's shape; the test reads `detail`")]
    id: i32,
    #[diesel(sql_type = Integer)]
    #[expect(dead_code, reason = "read to match the row's shape; the test reads `detail`")]
    parent: i32,
    #[diesel(sql_type = Integer)]
    #[expect(dead_code, reason = "read to match the row's shape; the test reads `detail`")]
    notused: i32,
    #[diesel(sql_type = Text)]
    detail: String,
}

/// The deliveries of the seed, as `INSERT … SELECT` (the tenant's id in `{tenant}`).
const SEED_DELIVERIES: &str = "INSERT INTO deliveries (id, tenant_id, target, resource_type, resource_id, state, \
     version, attempts, due_us, created_us, updated_us) \
     SELECT 'd' || g || t, '{tenant}', t, 'User', 'u' || g, \
       CASE WHEN g % 4 = 0 THEN 'done' ELSE 'pending' END, 1, 0, g, 0, 0 \
     FROM generate_series(1, 20000) g, unnest(ARRAY['jostle', 'joyn', 'jumpcloud']) t;";

/// A fresh schema with one tenant, 20,000 users and three deliveries each (three in four pending),
/// analysed when `analyze`; the connection and the tenant's id. `None` when PostgreSQL is not
/// configured.
fn seeded(analyze: bool) -> Option<(TestDb, PgConnection, String)> {
    let db = TestDb::postgres()?;
    let tenant = db.store().create_tenant("acme").unwrap_or_else(|e| panic!("tenant: {e}")).id;
    let mut conn =
        PgConnection::establish(&db.config().url).unwrap_or_else(|e| panic!("connect to the test schema: {e}"));
    conn.batch_execute(&format!(
        "INSERT INTO users (tenant_id, id, user_name, user_name_ci, body, version, created_us, modified_us) \
           SELECT '{tenant}', 'u' || g, 'user' || g, 'user' || g, '{{}}', 1, 0, 0 \
           FROM generate_series(1, 20000) g; \
         {} {}",
        SEED_DELIVERIES.replace("{tenant}", &tenant),
        if analyze { "ANALYZE users; ANALYZE deliveries;" } else { "" }
    ))
    .unwrap_or_else(|e| panic!("seed: {e}"));
    Some((db, conn, tenant))
}

/// `sql` with its `?` placeholders numbered as PostgreSQL's `$1`, `$2`, ….
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 32);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}

/// The plan of `sql` prepared with `types` and executed with `args`, under each plan-cache mode.
fn plans(conn: &mut PgConnection, name: &str, sql: &str, types: &[&str], args: &str) -> Vec<(String, String)> {
    conn.batch_execute(&format!("PREPARE {name} ({}) AS {}", types.join(", "), numbered(sql)))
        .unwrap_or_else(|e| panic!("prepare {name}: {e}"));
    ["force_custom_plan", "force_generic_plan"]
        .into_iter()
        .map(|mode| {
            conn.batch_execute(&format!("SET plan_cache_mode = {mode}")).unwrap_or_else(|e| panic!("{mode}: {e}"));
            let lines = diesel::sql_query(format!("EXPLAIN EXECUTE {name} ({args})"))
                .load::<PlanLine>(conn)
                .unwrap_or_else(|e| panic!("explain {name} under {mode}: {e}"));
            (mode.to_owned(), lines.into_iter().map(|l| l.line).collect::<Vec<_>>().join("\n"))
        })
        .collect()
}

/// Every way the plan goes into `deliveries` or `users` is through an index, and into `deliveries`
/// only through `deliveries_resource`.
fn assert_indexed(what: &str, mode: &str, plan: &str) {
    let into_deliveries: Vec<&str> =
        plan.lines().filter(|l| l.contains("Scan") && l.contains("deliveries")).map(str::trim).collect();
    assert!(
        into_deliveries.iter().any(|l| l.contains("deliveries_resource")),
        "{what} ({mode}) does not use deliveries_resource:\n{plan}"
    );
    for line in &into_deliveries {
        assert!(
            line.contains("deliveries_resource") || line.starts_with("->  Bitmap Heap Scan on deliveries"),
            "{what} ({mode}) goes into deliveries another way: `{line}`\n{plan}"
        );
    }
    assert!(!plan.contains("Seq Scan on users"), "{what} ({mode}) scans users:\n{plan}");
}

#[test]
fn a_single_update_finds_the_deliveries_it_absorbs_by_index() {
    let Some((_db, mut conn, tenant)) = seeded(true) else { return };
    // The binds' types, in the statement's order (as `pg_writes::update_user` binds them).
    let types: Vec<&str> = "text[] text[] text[] text text text text text boolean text bigint text \
                            text bigint text text text boolean"
        .split_whitespace()
        .collect();
    let args = format!(
        "ARRAY['x1', 'x2'], ARRAY['jostle', 'joyn'], ARRAY[NULL, NULL]::text[], 'user7', 'user7', NULL, NULL, NULL, \
         true, '{{}}', 1, '{tenant}', 'u7', 1, 'key', 'request', 'update', true"
    );
    let found = plans(&mut conn, "update_user", crate::pg_writes::UPDATE_USER, &types, &args);
    for (mode, plan) in &found {
        assert_indexed("pg_writes::UPDATE_USER", mode, plan);
    }
}

#[test]
fn a_batch_of_updates_finds_the_deliveries_it_absorbs_by_index() {
    let Some((_db, mut conn, tenant)) = seeded(true) else { return };
    // The binds' types, in the statement's order (as `pg_batch::update_batch` binds them).
    let types: Vec<&str> = "bigint[] text[] text[] bigint[] text[] text[] text[] text[] text[] boolean[] text[] \
                            bigint[] bigint[] text[] text[] text[] bigint[] text[] text[] text[]"
        .split_whitespace()
        .collect();
    let args = format!(
        "ARRAY[0, 1], ARRAY['{tenant}', '{tenant}'], ARRAY['u7', 'u8'], ARRAY[1, 1], ARRAY['user7', 'user8'], \
         ARRAY['user7', 'user8'], ARRAY[NULL, NULL]::text[], ARRAY[NULL, NULL]::text[], ARRAY[NULL, NULL]::text[], \
         ARRAY[true, true], ARRAY['{{}}', '{{}}'], ARRAY[1, 1], \
         ARRAY[0, 0, 1, 1], ARRAY['x1', 'x2', 'x3', 'x4'], ARRAY['jostle', 'joyn', 'jostle', 'joyn'], \
         ARRAY[NULL, NULL, NULL, NULL]::text[], \
         ARRAY[0, 1], ARRAY['key', 'key'], ARRAY['r1', 'r2'], ARRAY['update', 'update']"
    );
    let found = plans(&mut conn, "update_users", crate::pg_batch::UPDATE_USERS, &types, &args);
    for (mode, plan) in &found {
        assert_indexed("pg_batch::UPDATE_USERS", mode, plan);
    }
}

#[test]
fn placeholders_are_numbered_in_order() {
    assert_eq!(numbered("a = ? AND b IN (?, ?)"), "a = $1 AND b IN ($2, $3)");
}

/// On statistics: with none, PostgreSQL estimates a few dozen open rows and reads them all through
/// the index's bitmap, then sorts — the store's `ANALYZE` as it grows (`pg_analyze.rs`, which
/// includes `deliveries`) is what keeps the claim on the ordered scan checked here.
#[test]
fn a_claim_on_postgres_walks_the_open_rows_in_due_order() {
    let Some((_db, mut conn, _tenant)) = seeded(true) else { return };
    let found = plans(
        &mut conn,
        "claim",
        crate::outbox::CLAIM_SKIP_LOCKED,
        &["bigint", "bigint", "bigint"],
        "1000000, 1000000, 64",
    );
    for (mode, plan) in &found {
        assert!(plan.contains("Index Scan using deliveries_open_due on deliveries"), "claim ({mode}):\n{plan}");
        assert!(!plan.contains("Sort"), "claim ({mode}) sorts the open rows:\n{plan}");
    }
}

#[test]
fn a_claim_on_sqlite_walks_the_open_rows_in_due_order() {
    let db = TestDb::sqlite();
    let tenant = db.store().create_tenant("acme").unwrap_or_else(|e| panic!("tenant: {e}")).id;
    let path = db.config().url.trim_start_matches("sqlite://").to_owned();
    let mut conn = SqliteConnection::establish(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
    // SQLite has no generate_series without its extension; a recursive CTE counts instead.
    let seed = SEED_DELIVERIES
        .replace("{tenant}", &tenant)
        .replace("FROM generate_series(1, 20000) g, unnest(ARRAY['jostle', 'joyn', 'jumpcloud']) t", "FROM n, t")
        .replace(
            "INSERT INTO deliveries",
            "WITH RECURSIVE n (g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM n WHERE g < 20000), \
             t (t) AS (VALUES ('jostle'), ('joyn'), ('jumpcloud')) INSERT INTO deliveries",
        );
    // No ANALYZE: SQLite gathers no statistics by itself, and the store never runs it.
    conn.batch_execute(&seed).unwrap_or_else(|e| panic!("seed: {e}"));
    let sql = crate::outbox::CLAIM.replacen('?', "1000000", 2).replacen('?', "64", 1);
    let plan: Vec<String> = diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}"))
        .load::<SqlitePlanLine>(&mut conn)
        .unwrap_or_else(|e| panic!("explain the claim: {e}"))
        .into_iter()
        .map(|l| l.detail)
        .collect();
    let plan = plan.join("\n");
    assert!(plan.contains("USING INDEX deliveries_open_due"), "claim:\n{plan}");
    assert!(!plan.contains("TEMP B-TREE"), "claim sorts the open rows:\n{plan}");
}

/// The identity providers' lookup before every create (`userName eq "…"`, usually for a name not
/// there yet) must probe the unique index once the table has grown. A prepared statement's
/// generic plan is kept until an `ANALYZE` invalidates it, which on a server without autovacuum
/// (this machine's, for one) never comes; planned while the table was empty, the lookup walked
/// `users_created` and read every user of the tenant for a name not there (3–25 ms a lookup at
/// 20,000 users in the end-to-end run, issue 7). The store analyzes as it grows
/// (`pg_analyze.rs`). Here the statement the store's query code sends is captured, planned on
/// the empty table, the table grows by 20,000 rows and then by the store's first [`FIRST`]
/// creates, and the plan must then be the unique index's.
///
/// [`FIRST`]: crate::pg_analyze::FIRST
#[test]
fn a_username_lookup_probes_the_unique_index_once_the_store_has_grown() {
    use std::sync::{Arc, Mutex};

    use diesel::connection::InstrumentationEvent;
    use scimgw_scim::filter::parse_filter;
    use scimgw_scim::schema::Registry;

    use crate::connection::AnyConnection;
    use crate::lower::lower;
    use crate::query::{Query, SqlSort, page_rows};
    use crate::resource::Kind;

    let Some(db) = TestDb::postgres() else { return };
    let tenant = db.store().create_tenant("acme").unwrap_or_else(|e| panic!("tenant: {e}")).id;
    let mut conn =
        PgConnection::establish(&db.config().url).unwrap_or_else(|e| panic!("connect to the test schema: {e}"));
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = seen.clone();
    conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
        if let InstrumentationEvent::StartQuery { query, .. } = event {
            log.lock().unwrap_or_else(|e| e.into_inner()).push(query.to_string());
        }
    });
    let mut conn = AnyConnection::Pg(conn);
    let registry = Registry::default();
    let schema = registry.resource("User").unwrap_or_else(|| panic!("the User schema"));
    let filter = parse_filter("userName eq \"Nobody@example.com\"").unwrap_or_else(|e| panic!("filter: {e}"));
    let lowered = lower(&filter, &schema, Kind::User);
    let q = Query {
        filter: Some(&filter),
        schema: &schema,
        sort_by: None,
        descending: false,
        offset: 0,
        count: 100,
        with_members: false,
    };
    let rows = page_rows(&mut conn, &tenant, Kind::User, &q, &lowered, SqlSort::Created)
        .unwrap_or_else(|e| panic!("lookup: {e}"));
    assert!(rows.is_empty());
    let AnyConnection::Pg(mut conn) = conn else { unreachable!("built as PostgreSQL above") };
    let statement = seen
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .find(|s| s.contains("user_name_ci"))
        .map(|s| s.split(" -- binds:").next().unwrap_or(s).to_owned())
        .unwrap_or_else(|| panic!("the lookup's statement was not seen"));

    // Its binds, in order: the tenant, the folded name, the limit, the offset.
    let args = format!("'{tenant}', 'nobody@example.com', 100, 0");
    conn.batch_execute(&format!("PREPARE lookup (text, text, bigint, bigint) AS {statement}"))
        .unwrap_or_else(|e| panic!("prepare: {e}"));
    let explain = |conn: &mut PgConnection, mode: &str| -> String {
        conn.batch_execute(&format!("SET plan_cache_mode = {mode}")).unwrap_or_else(|e| panic!("{mode}: {e}"));
        diesel::sql_query(format!("EXPLAIN EXECUTE lookup ({args})"))
            .load::<PlanLine>(conn)
            .unwrap_or_else(|e| panic!("explain under {mode}: {e}"))
            .into_iter()
            .map(|l| l.line)
            .collect::<Vec<_>>()
            .join("\n")
    };
    // The generic plan, made and kept while the table is empty.
    let before = explain(&mut conn, "force_generic_plan");
    conn.batch_execute(&format!(
        "INSERT INTO users (tenant_id, id, user_name, user_name_ci, body, version, created_us, modified_us) \
           SELECT '{tenant}', 'u' || g, 'user' || g, 'user' || g, '{{}}', 1, g, g \
           FROM generate_series(1, 20000) g;"
    ))
    .unwrap_or_else(|e| panic!("seed: {e}"));
    let store = db.store();
    for n in 0..crate::pg_analyze::FIRST {
        let body = serde_json::json!({"schemas": [scimgw_scim::schema::USER_SCHEMA], "userName": format!("new{n}")});
        let Some(body) = body.as_object().cloned() else { unreachable!("an object literal") };
        store
            .create(&tenant, crate::NewResource { kind: Kind::User, body, members: Vec::new() })
            .unwrap_or_else(|e| panic!("create: {e}"));
    }
    let waited = std::time::Instant::now();
    while store.analyze_runs() < Some(1) {
        assert!(waited.elapsed() < std::time::Duration::from_secs(60), "the store never analyzed the tables");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    for mode in ["force_generic_plan", "force_custom_plan"] {
        let plan = explain(&mut conn, mode);
        assert!(
            plan.contains("users_user_name_ci"),
            "lookup ({mode}) does not probe users_user_name_ci:\n{plan}\n(planned on the empty table:\n{before})"
        );
        assert!(!plan.contains("users_created") && !plan.contains("users_modified"), "lookup ({mode}):\n{plan}");
    }
}

/// A user's groups (read for every user a GET or a list returns, and by the dispatcher for each
/// delivery to a target scoped by group) must be found through `group_members_member` from the
/// user's id, for one user and for a page. With that index on (tenant_id, member_id) only,
/// SQLite preferred the primary key (tenant_id, group_id, member_id), which covers the read, and
/// scanned every membership row of the tenant per user: at 100,000 members the dispatcher fell
/// to tens of deliveries a second. The statement the store sends is captured and explained.
#[test]
fn a_users_groups_are_read_through_the_member_index_on_sqlite() {
    use std::sync::{Arc, Mutex};

    use diesel::connection::InstrumentationEvent;

    use crate::connection::AnyConnection;

    let db = TestDb::sqlite();
    let tenant = db.store().create_tenant("acme").unwrap_or_else(|e| panic!("tenant: {e}")).id;
    let path = db.config().url.trim_start_matches("sqlite://").to_owned();
    let mut conn = SqliteConnection::establish(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
    // 20 groups of 5,000 members each; no ANALYZE (SQLite gathers no statistics by itself).
    let seed = format!(
        "INSERT INTO groups (tenant_id, id, display_name, display_name_ci, body, version, created_us, modified_us) \
         WITH RECURSIVE n (g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM n WHERE g < 20) \
         SELECT '{tenant}', 'g' || g, 'G' || g, 'g' || g, '{{}}', 1, 0, 0 FROM n; \
         INSERT INTO group_members (tenant_id, group_id, member_id, member_type) \
         WITH RECURSIVE n (g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM n WHERE g < 100000) \
         SELECT '{tenant}', 'g' || (g % 20 + 1), 'u' || g, 'User' FROM n;"
    );
    conn.batch_execute(&seed).unwrap_or_else(|e| panic!("seed: {e}"));
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = seen.clone();
    conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
        if let InstrumentationEvent::StartQuery { query, .. } = event {
            log.lock().unwrap_or_else(|e| e.into_inner()).push(query.to_string());
        }
    });
    let mut conn = AnyConnection::Sqlite(conn);
    for users in [&["u7"][..], &["u7", "u8", "u9"][..]] {
        let found = crate::members::groups_of(&mut conn, &tenant, users).unwrap_or_else(|e| panic!("groups_of: {e}"));
        assert_eq!(found.len(), users.len());
        let sql = seen.lock().unwrap_or_else(|e| e.into_inner()).pop().unwrap_or_else(|| panic!("no statement"));
        let AnyConnection::Sqlite(inner) = &mut conn else { unreachable!("opened as SQLite") };
        let plan: Vec<String> = diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}"))
            .load::<SqlitePlanLine>(inner)
            .unwrap_or_else(|e| panic!("explain {sql}: {e}"))
            .into_iter()
            .map(|l| l.detail)
            .collect();
        let plan = plan.join("\n");
        assert!(
            plan.contains("USING COVERING INDEX group_members_member (tenant_id=? AND member_id=?)"),
            "{sql}:\n{plan}"
        );
    }
}
