//! Sorting by an attribute without a column (`title`): the right order and pages on both engines,
//! over several scan batches, and memory that does not grow with the matches' bodies.
//!
//! dhat's allocator measures the heap the query itself holds at its peak (what it allocated while
//! profiled and had not freed). This file has one test, which runs both engines in turn: one
//! profiler at a time, and no other test allocating meanwhile.

// Integration tests are test code: clippy's allow-unwrap-in-tests applies to `cfg(test)` items.
#![cfg(test)]

use std::cmp::Ordering;

use serde_json::{Map, Value, json};

use scimgw_scim::filter::{AttrPath, Filter, parse_filter};
use scimgw_scim::schema::{Registry, USER_SCHEMA};
use scimgw_store::testing::TestDb;
use scimgw_store::{Kind, NewResource, Query, Resource, SqliteSynchronous, Store};

// dhat counts the heap while a profiler runs (the workspace forbids the `unsafe` a counting
// allocator of our own would need).
#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

/// Users, more than several scan batches of them (the store reads 500 rows a round trip).
const USERS: usize = 3_000;
/// Each user's body carries this much besides its sort key, as real profiles do.
const PADDING: usize = 2_000;

fn path(text: &str) -> AttrPath {
    match parse_filter(&format!("{text} pr")).unwrap() {
        Filter::Present(p) => p,
        _ => unreachable!(),
    }
}

/// The sort key the test expects: `title` ignoring case, missing last (either direction).
fn title(r: &Resource) -> Option<String> {
    r.body.get("title").and_then(Value::as_str).map(str::to_lowercase)
}

fn reference_order(a: &Resource, b: &Resource, descending: bool) -> Ordering {
    let by_key = match (title(a), title(b)) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) if descending => y.cmp(&x),
        (Some(x), Some(y)) => x.cmp(&y),
    };
    by_key.then_with(|| a.created.cmp(&b.created)).then_with(|| a.id.cmp(&b.id))
}

fn populate(store: &Store, tenant: &str) -> Vec<Resource> {
    (0..USERS)
        .map(|i| {
            let mut body = Map::new();
            body.insert("schemas".into(), json!([USER_SCHEMA]));
            body.insert("userName".into(), json!(format!("user{i}@example.com")));
            // Ties (about six users a title), both cases, and a seventh of the users without one.
            if i % 7 != 0 {
                let t = (i * 7919) % 500;
                body.insert(
                    "title".into(),
                    json!(if i % 2 == 0 { format!("Title {t:03}") } else { format!("tITLE {t:03}") }),
                );
            }
            body.insert("nickName".into(), json!("x".repeat(PADDING)));
            store.create(tenant, NewResource { kind: Kind::User, body, members: Vec::new() }).unwrap()
        })
        .collect()
}

/// Sorted pages by `title` are the reference's, at the start, across batch boundaries and at the
/// end; and a first page of 10 holds at its peak far less than the matches' bodies.
fn sorting_by_an_attribute_without_a_column(db: &TestDb) {
    let store = db.store();
    let tenant = store.create_tenant("acme").unwrap().id;
    let all = populate(store, &tenant);
    let registry = Registry::default();
    let schema = registry.resource("User").unwrap();
    let sort_by = path("title");
    let page = |descending: bool, offset: u64, count: u64| {
        let q = Query {
            filter: None,
            schema: &schema,
            sort_by: Some(&sort_by),
            descending,
            offset,
            count,
            with_members: false,
        };
        store.query(&tenant, Kind::User, &q).unwrap()
    };
    for descending in [false, true] {
        let mut expected = all.clone();
        expected.sort_by(|a, b| reference_order(a, b, descending));
        let ids: Vec<&str> = expected.iter().map(|r| r.id.as_str()).collect();
        for (offset, count) in [(0, 10), (0, 1_000), (495, 10), (1_234, 100), (2_990, 100), (3_000, 5), (10, 0)] {
            let got = page(descending, offset, count);
            assert_eq!(got.total, USERS as u64, "total, descending={descending}");
            let got: Vec<&str> = got.resources.iter().map(|r| r.id.as_str()).collect();
            let end = (offset + count).min(USERS as u64) as usize;
            let want = &ids[(offset as usize).min(USERS)..end];
            assert_eq!(got, want, "page at {offset} of {count}, descending={descending}");
        }
        // The page's bodies are whole.
        let first = page(descending, 0, 3);
        assert_eq!(first.resources, expected[..3].to_vec(), "descending={descending}");
    }

    let bodies: usize = all.iter().map(|r| serde_json::to_string(&r.body).unwrap().len()).sum();
    drop(all);
    let profiler = dhat::Profiler::builder().testing().build();
    let first = page(false, 0, 10);
    let held = dhat::HeapStats::get().max_bytes;
    drop(profiler);
    assert_eq!(first.resources.len(), 10);
    eprintln!(
        "{}: sortBy=title, first 10 of {USERS} users ({} KB of bodies): {} KB held at the peak",
        db.backend(),
        bodies / 1024,
        held / 1024
    );
    // One scan batch of rows is held at a time (500 bodies, read and parsed); holding every match
    // would be more than all of the bodies.
    assert!(held < bodies / 2, "the sorted query held {held} bytes at its peak for {bodies} bytes of bodies");
}

#[test]
fn sorting_by_an_attribute_without_a_column_pages_right_and_holds_only_keys() {
    // Durability is not what is tested here; the 3,000 creates go faster without the fsyncs.
    let sqlite = TestDb::sqlite_with(|c| c.sqlite_synchronous = SqliteSynchronous::Normal);
    sorting_by_an_attribute_without_a_column(&sqlite);
    drop(sqlite);
    if let Some(pg) = TestDb::postgres() {
        sorting_by_an_attribute_without_a_column(&pg);
    }
}
