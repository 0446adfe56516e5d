//! List queries on both engines: every result checked against the core's `Filter::matches`, pages and sorts included.
//!
//! The reference for a filter is the evaluator run on every stored resource's SCIM form. Each
//! filter also runs a second time wrapped as `(F) and not (schemas eq "urn:none")`, which means
//! the same but cannot be lowered exactly (`schemas` has no column), so the store takes its Rust
//! path: the SQL path and the Rust path must agree on totals, order and pages.

// Integration tests are test code: clippy's allow-unwrap-in-tests applies to `cfg(test)` items.
#![cfg(test)]

use std::cmp::Ordering;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Map, Value, json};

use scimgw_scim::filter::{AttrPath, CompValue, CompareOp, Filter, parse_filter};
use scimgw_scim::schema::{ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, Registry, ResourceSchema, USER_SCHEMA};
use scimgw_store::testing::TestDb;
use scimgw_store::{Kind, Member, NewResource, Query, Resource, Store, both_engines};

const USER_NAMES: &[&str] =
    &["alice", "Bob", "CAROL", "dave.smith", "eve_1", "frank%", "Émile", "ÖSTEN", "straße", "zoë", "ΟΔΟΣ", "İpek"];
const DISPLAY_NAMES: &[&str] = &["Team A", "team a", "Zed", "émile Z", "ÉMILE z", "a_b", "a%b"];

/// ~50 users with every shape the indexed columns can take: missing, empty, differently cased,
/// non-ASCII, LIKE metacharacters, equal creation times (created within the same millisecond).
fn users(store: &Store, tenant: &str) -> Vec<Resource> {
    let mut out = Vec::new();
    for i in 0..50usize {
        let name = USER_NAMES[i % USER_NAMES.len()];
        let domain = ["@example.com", "@Example.ORG", ""][i % 3];
        let mut body = Map::new();
        let mut schemas = vec![json!(USER_SCHEMA)];
        body.insert("userName".into(), json!(format!("{name}{}{domain}", i / USER_NAMES.len())));
        match i % 7 {
            0 => {}
            1 => {
                body.insert("displayName".into(), json!(""));
            }
            _ => {
                body.insert("displayName".into(), json!(DISPLAY_NAMES[i % DISPLAY_NAMES.len()]));
            }
        }
        if i % 3 != 0 {
            let ext = if i % 2 == 0 { format!("EXT-{}", i % 10) } else { format!("ext-{}", i % 10) };
            body.insert("externalId".into(), json!(ext));
        }
        match i % 4 {
            0 => {
                body.insert("active".into(), json!(true));
            }
            1 => {
                body.insert("active".into(), json!(false));
            }
            _ => {}
        }
        if i % 5 != 0 {
            body.insert("title".into(), json!(["Engineer", "engineer", "Manager", "CEO"][i % 4]));
            body.insert("name".into(), json!({"familyName": (["Smith", "jones", "Ng", "Émery"][i % 4])}));
        }
        if i % 6 != 1 {
            body.insert(
                "emails".into(),
                json!([
                    {"value": format!("u{i}@{}", ["example.com", "corp.example"][i % 2]), "type": "work", "primary": i % 4 == 0},
                    {"value": format!("home{i}@mail.test"), "type": "home"}
                ]),
            );
        }
        if i % 3 == 1 {
            schemas.push(json!(ENTERPRISE_USER_SCHEMA));
            body.insert(ENTERPRISE_USER_SCHEMA.into(), json!({"department": (["Sales", "sales", "R&D"][i % 3])}));
        }
        body.insert("schemas".into(), Value::Array(schemas));
        out.push(store.create(tenant, NewResource { kind: Kind::User, body, members: Vec::new() }).unwrap());
        if i % 4 == 3 {
            // Distinct creation times for the date filters, equal ones in between for the tie-breaks.
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    // A few updates, so lastModified differs from created.
    for r in out.iter_mut().step_by(9) {
        std::thread::sleep(Duration::from_millis(2));
        let updated = store
            .update(tenant, Kind::User, &r.id, None, false, |c| {
                let mut body = c.body.clone();
                body.insert("nickName".into(), json!("touched"));
                Ok(scimgw_store::Change::Update { body, members: Vec::new() })
            })
            .unwrap()
            .unwrap();
        *r = updated.resource;
    }
    out
}

struct Fixture<'a> {
    store: &'a Store,
    tenant: String,
    all: Vec<Resource>,
    schema: ResourceSchema<'a>,
    /// The id of the group "Sales".
    sales: String,
    /// The tenant's groups (Sales, Sales Team, Ops).
    groups: Vec<Resource>,
}

impl<'a> Fixture<'a> {
    fn new(store: &'a Store, registry: &'a Registry) -> Self {
        let tenant = store.create_tenant("acme").unwrap().id;
        let other = store.create_tenant("other").unwrap().id;
        let all = users(store, &tenant);
        // Another tenant's users must never show up.
        let mut others = Vec::new();
        for name in ["alice0@example.com", "Bob0", "zz"] {
            let body = json!({"schemas": [USER_SCHEMA], "userName": name, "active": true, "displayName": "Team A"});
            let r = store.create(&other, NewResource { kind: Kind::User, body: as_map(body), members: Vec::new() });
            others.push(r.unwrap().id);
        }
        // Groups, so that a user's `groups` filters: some users in one, some in two, most in none;
        // another tenant's group with the same name must not count.
        let member = |r: &Resource| Member { value: r.id.clone(), r#type: None, display: None };
        let group = |tenant: &str, name: &str, members: Vec<Member>| {
            let body = as_map(json!({"schemas": [GROUP_SCHEMA], "displayName": name}));
            store.create(tenant, NewResource { kind: Kind::Group, body, members }).unwrap()
        };
        let groups = vec![
            group(&tenant, "Sales", all.iter().step_by(4).map(member).collect()),
            group(&tenant, "Sales Team", all.iter().step_by(6).map(member).collect()),
            group(&tenant, "Ops", Vec::new()),
        ];
        let sales = groups[0].id.clone();
        let others = others.into_iter().map(|value| Member { value, r#type: None, display: None }).collect();
        group(&other, "Sales", others);
        // As a read returns them: with their groups, and the versions the memberships moved.
        let all = all.iter().map(|r| store.get(&tenant, Kind::User, &r.id, true).unwrap().unwrap()).collect();
        Fixture { store, tenant, all, schema: registry.resource("User").unwrap(), sales, groups }
    }

    fn query(
        &self,
        filter: Option<&Filter>,
        sort_by: Option<&AttrPath>,
        descending: bool,
        offset: u64,
        count: u64,
    ) -> (u64, Vec<String>) {
        let q = Query { filter, schema: &self.schema, sort_by, descending, offset, count, with_members: false };
        let page = self.store.query(&self.tenant, Kind::User, &q).unwrap();
        (page.total, page.resources.into_iter().map(|r| r.id).collect())
    }

    /// The evaluator's answer, sorted by the reference order, then paged.
    fn expected(
        &self,
        filter: Option<&Filter>,
        sort_by: Option<&AttrPath>,
        descending: bool,
        offset: u64,
        count: u64,
    ) -> (u64, Vec<String>) {
        let mut hits: Vec<(&Resource, Value)> = self
            .all
            .iter()
            .map(|r| (r, Value::Object(r.to_scim(None))))
            .filter(|(_, scim)| filter.is_none_or(|f| f.matches(scim, &self.schema)))
            .collect();
        hits.sort_by(|(a, sa), (b, sb)| {
            let by_key = match sort_by {
                Some(path) => reference_order(reference_key(path, sa), reference_key(path, sb), descending),
                None => Ordering::Equal,
            };
            by_key.then(a.created.cmp(&b.created)).then(a.id.cmp(&b.id))
        });
        let total = hits.len() as u64;
        let page = hits.into_iter().skip(offset as usize).take(count as usize).map(|(r, _)| r.id.clone()).collect();
        (total, page)
    }

    /// Checks `filter` on both paths, with the default order and a few pages.
    fn check(&self, filter: &Filter) {
        let slow = force_rust_path(filter);
        for (offset, count) in [(0, 1000), (0, 0), (2, 5), (45, 10), (100, 3)] {
            let want = self.expected(Some(filter), None, false, offset, count);
            assert_eq!(self.query(Some(filter), None, false, offset, count), want, "{filter} [{offset}+{count}]");
            assert_eq!(self.query(Some(&slow), None, false, offset, count), want, "{slow} [{offset}+{count}]");
        }
    }

    fn check_sorted(&self, filter: Option<&Filter>, sort_by: &AttrPath) {
        let slow = filter.map(force_rust_path).unwrap_or_else(|| force_rust_path(&parse_filter("id pr").unwrap()));
        for descending in [false, true] {
            for (offset, count) in [(0, 1000), (3, 7)] {
                let want = self.expected(filter, Some(sort_by), descending, offset, count);
                let what = format!("{filter:?} sortBy={sort_by} desc={descending} [{offset}+{count}]");
                assert_eq!(self.query(filter, Some(sort_by), descending, offset, count), want, "SQL path: {what}");
                assert_eq!(
                    self.query(Some(&slow), Some(sort_by), descending, offset, count),
                    want,
                    "Rust path: {what}"
                );
            }
        }
    }
}

fn as_map(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

/// The same filter, made impossible to lower exactly.
fn force_rust_path(f: &Filter) -> Filter {
    f.clone().and(Filter::compare(AttrPath::new("schemas"), CompareOp::Eq, CompValue::Str("urn:none".into())).negate())
}

#[derive(Debug, PartialEq, PartialOrd)]
enum RefKey {
    Bool(bool),
    Text(String),
}

/// The sort value, written from RFC 7644 §3.4.2.3 for the attributes the tests sort on.
fn reference_key(path: &AttrPath, scim: &Value) -> Option<RefKey> {
    let name = path.to_string().to_ascii_lowercase();
    let name = name.trim_start_matches(&(USER_SCHEMA.to_ascii_lowercase() + ":"));
    let text = |v: &Value, case_exact: bool| {
        v.as_str().map(|s| RefKey::Text(if case_exact { s.to_owned() } else { s.to_lowercase() }))
    };
    match name {
        "id" | "externalid" => text(scim.get(if name == "id" { "id" } else { "externalId" })?, true),
        "username" => text(scim.get("userName")?, false),
        "displayname" => text(scim.get("displayName")?, false),
        "title" => text(scim.get("title")?, false),
        "name.familyname" => text(scim.get("name")?.get("familyName")?, false),
        "active" => scim.get("active")?.as_bool().map(RefKey::Bool),
        // RFC 3339 with milliseconds and Z: text order is time order.
        "meta.created" => text(&scim["meta"]["created"], true),
        "meta.lastmodified" => text(&scim["meta"]["lastModified"], true),
        "emails" => {
            let emails = scim.get("emails")?.as_array()?;
            let chosen = emails.iter().find(|e| e["primary"] == json!(true)).or(emails.first())?;
            text(chosen.get("value")?, false)
        }
        other => panic!("no reference order for {other}"),
    }
}

fn reference_order(a: Option<RefKey>, b: Option<RefKey>, descending: bool) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(a), Some(b)) => {
            let o = a.partial_cmp(&b).unwrap();
            if descending { o.reverse() } else { o }
        }
    }
}

fn time_of(fx: &Fixture<'_>, index: usize, attr: &str) -> String {
    fx.all[index].to_scim(None)["meta"][attr].as_str().unwrap().to_owned()
}

fn filters_agree_with_the_evaluator(store: &Store) {
    let registry = Registry::default();
    let fx = Fixture::new(store, &registry);
    let id3 = fx.all[3].id.clone();
    let created25 = time_of(&fx, 25, "created");
    let modified9 = time_of(&fx, 9, "lastModified");
    let table = [
        r#"userName eq "ALICE0@example.com""#.to_owned(),
        r#"userName eq "émile0@example.org""#.into(),
        r#"userName sw "a""#.into(),
        r#"userName co "@EXAMPLE""#.into(),
        r#"userName ew ".org""#.into(),
        r#"userName co "%""#.into(),
        r#"userName co "_""#.into(),
        r#"userName co "σ""#.into(),
        r#"userName sw "i̇""#.into(),
        r#"userName gt "m""#.into(),
        r#"userName le "dave""#.into(),
        r#"userName ne "bob0@example.org""#.into(),
        "userName pr".into(),
        r#"not (userName sw "a")"#.into(),
        r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "B""#.into(),
        "displayName eq null".into(),
        "displayName ne null".into(),
        "displayName pr".into(),
        r#"displayName eq "TEAM A""#.into(),
        r#"displayName eq """#.into(),
        r#"displayName co """#.into(),
        r#"displayName ne "team a""#.into(),
        r#"displayName gt "t""#.into(),
        r#"displayName co "_""#.into(),
        r#"displayName sw "ÉMILE""#.into(),
        r#"externalId eq "EXT-1""#.into(),
        r#"externalId eq "ext-1""#.into(),
        r#"externalId co "xt""#.into(),
        r#"externalId sw "EXT""#.into(),
        r#"externalId gt "EXT-5""#.into(),
        r#"externalId ne "ext-5""#.into(),
        "externalId eq null".into(),
        format!(r#"id eq "{id3}""#),
        format!(r#"id eq "{}""#, id3.to_uppercase()),
        format!(r#"id sw "{}""#, &id3[..2]),
        "id pr".into(),
        "active eq true".into(),
        "active eq false".into(),
        "active ne true".into(),
        r#"active eq "TRUE""#.into(),
        "active pr".into(),
        "not (active pr)".into(),
        "active gt false".into(),
        format!(r#"meta.created gt "{created25}""#),
        format!(r#"meta.created le "{created25}""#),
        format!(r#"meta.created eq "{created25}""#),
        format!(r#"meta.created ne "{created25}""#),
        format!(r#"meta.lastModified ge "{modified9}""#),
        r#"meta.lastModified lt "2000-01-01T00:00:00Z""#.into(),
        r#"meta.created gt "2000-01-01T00:00:00""#.into(),
        r#"meta.created gt "not a date""#.into(),
        r#"title eq "engineer""#.into(),
        r#"emails co "corp""#.into(),
        r#"emails[type eq "work" and value ew ".com"]"#.into(),
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "Sales""#.into(),
        r#"(userName sw "a" or displayName sw "team") and not (active eq false)"#.into(),
        r#"userName sw "a" and title pr"#.into(),
        r#"title pr or userName eq "bob0""#.into(),
        r#"not (title pr) and externalId pr"#.into(),
        "userName eq 5".into(),
        "userName ne 5".into(),
        r#"userName eq null or displayName eq null"#.into(),
        r#"not (not (active eq true) or userName co "e")"#.into(),
        r#"groups.display eq "SALES""#.into(),
        r#"groups.display eq "Ops""#.into(),
        r#"groups[display eq "sales team"]"#.into(),
        r#"not (groups.display eq "Sales")"#.into(),
        r#"groups.display eq "Sales" and active eq true"#.into(),
        r#"groups.display eq "Sales" or groups.display eq "Sales Team""#.into(),
        r#"groups.display sw "sales""#.into(),
        r#"groups.display ne "Sales""#.into(),
        r#"groups.value eq 5"#.into(),
        format!(r#"groups.value eq "{}""#, fx.sales),
        format!(r#"groups.value eq "{}""#, fx.sales.to_uppercase()),
        format!(r#"groups[value eq "{}"] and not (groups.display eq "Sales Team")"#, fx.sales),
        r#"groups.type eq "direct""#.into(),
        "groups pr".into(),
        "not (groups pr)".into(),
        r#"meta.resourceType eq "User""#.into(),
        r#"meta.resourceType eq "Group""#.into(),
        r#"meta.resourceType eq "user""#.into(),
        r#"meta.resourceType ne "Group" and userName sw "a""#.into(),
        r#"not (meta.resourceType pr) or displayName pr"#.into(),
    ];
    for text in &table {
        let filter = parse_filter(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        fx.check(&filter);
    }
    let sorts = [
        "userName",
        "displayName",
        "externalId",
        "id",
        "meta.created",
        "meta.lastModified",
        "urn:ietf:params:scim:schemas:core:2.0:User:userName",
        "title",
        "name.familyName",
        "emails",
        "active",
    ];
    let sort_filters =
        [None, Some(parse_filter(r#"userName co "e""#).unwrap()), Some(parse_filter("displayName pr").unwrap())];
    for sort in sorts {
        let path = match parse_filter(&format!("{sort} pr")).unwrap() {
            Filter::Present(path) => path,
            _ => unreachable!(),
        };
        for f in &sort_filters {
            fx.check_sorted(f.as_ref(), &path);
        }
    }
}

fn count_zero_returns_only_the_total(store: &Store) {
    let registry = Registry::default();
    let fx = Fixture::new(store, &registry);
    let q = Query {
        filter: None,
        schema: &fx.schema,
        sort_by: None,
        descending: false,
        offset: 0,
        count: 0,
        with_members: false,
    };
    let page = store.query(&fx.tenant, Kind::User, &q).unwrap();
    assert_eq!(page.total, 50);
    assert!(page.resources.is_empty());
    let slow = force_rust_path(&parse_filter("id pr").unwrap());
    let page = store.query(&fx.tenant, Kind::User, &Query { filter: Some(&slow), ..q }).unwrap();
    assert_eq!((page.total, page.resources.len()), (50, 0));
}

fn default_order_is_creation_and_pages_do_not_overlap(store: &Store) {
    let registry = Registry::default();
    let fx = Fixture::new(store, &registry);
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let (total, page) = fx.query(None, None, false, offset, 7);
        assert_eq!(total, 50);
        if page.is_empty() {
            break;
        }
        offset += page.len() as u64;
        seen.extend(page);
    }
    let mut expected: Vec<&Resource> = fx.all.iter().collect();
    expected.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
    assert_eq!(seen, expected.iter().map(|r| r.id.clone()).collect::<Vec<_>>());
}

fn group_queries_filter_on_display_name_and_members(store: &Store) {
    let registry = Registry::default();
    let schema = registry.resource("Group").unwrap();
    let t = store.create_tenant("acme").unwrap().id;
    let group = |name: &str, members: &[&str]| {
        let body = as_map(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name}));
        let members = members.iter().map(|m| Member::typed(*m, "User")).collect();
        // Distinct creation times, so the expected order below is the order of creation.
        std::thread::sleep(Duration::from_millis(2));
        store.create(&t, NewResource { kind: Kind::Group, body, members }).unwrap()
    };
    let ops = group("Ops", &["u1", "u2"]);
    let ops2 = group("OPS", &[]);
    let dev = group("Dev", &["u2"]);
    let run = |filter: &str, with_members: bool| {
        let f = parse_filter(filter).unwrap();
        let q = Query {
            filter: Some(&f),
            schema: &schema,
            sort_by: None,
            descending: false,
            offset: 0,
            count: 10,
            with_members,
        };
        store.query(&t, Kind::Group, &q).unwrap()
    };
    let page = run(r#"displayName eq "ops""#, false);
    assert_eq!(page.total, 2);
    assert_eq!(page.resources.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), [ops.id.as_str(), ops2.id.as_str()]);
    assert!(page.resources.iter().all(|r| r.members.is_none()), "excludedAttributes=members loads none");
    let page = run(r#"displayName eq "ops""#, true);
    assert_eq!(page.resources[0].members.as_ref().unwrap().len(), 2);
    assert_eq!(page.resources[1].members, Some(Vec::new()));
    // Filters on members are evaluated in Rust, with the member rows loaded for it.
    let page = run(r#"members[value eq "u2"]"#, false);
    assert_eq!(page.total, 2);
    assert_eq!(page.resources.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), [ops.id.as_str(), dev.id.as_str()]);
    assert!(page.resources.iter().all(|r| r.members.is_none()), "loaded to evaluate, not returned");
    assert_eq!(run(r#"members.value eq "u1" and displayName sw "O""#, true).total, 1);
    assert_eq!(run("userName pr", false).total, 0, "userName is no Group attribute");
    assert_eq!(run(r#"meta.resourceType eq "Group""#, false).total, 3);
    assert_eq!(run(r#"meta.resourceType eq "User" or displayName eq "Dev""#, false).total, 1);
}

/// Filters over the indexed attributes (and two that are not), with values that hit the data.
fn arb_filter() -> impl Strategy<Value = Filter> {
    let attr = prop::sample::select(vec![
        "userName",
        "displayName",
        "externalId",
        "id",
        "active",
        "meta.created",
        "meta.lastModified",
        "title",
        "urn:ietf:params:scim:schemas:core:2.0:User:displayName",
    ]);
    let text = prop::sample::select(vec![
        "alice0@example.com",
        "ALICE",
        "bob",
        "É",
        "é",
        "e",
        "a%",
        "_",
        "team a",
        "TEAM",
        "EXT-1",
        "ext",
        "EXT-",
        "Engineer",
        "",
        "z",
        "2024-01-01T00:00:00Z",
        "2999-01-01T00:00:00.0000005Z",
        "1999-12-31T23:59:59",
        "true",
        "False",
        "x",
    ]);
    let value = prop_oneof![
        6 => text.prop_map(|s| CompValue::Str(s.to_owned())),
        1 => Just(CompValue::Null),
        1 => any::<bool>().prop_map(CompValue::Bool),
        1 => Just(CompValue::Number(5.into())),
    ];
    let op = prop::sample::select(CompareOp::ALL.to_vec());
    let leaf = prop_oneof![
        6 => (attr.clone(), op, value).prop_map(|(a, op, v)| Filter::compare(path(a), op, v)),
        1 => attr.prop_map(|a| Filter::Present(path(a))),
    ];
    leaf.prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| a.and(b)),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| a.or(b)),
            inner.prop_map(Filter::negate),
        ]
    })
}

fn path(text: &str) -> AttrPath {
    match parse_filter(&format!("{text} pr")).unwrap() {
        Filter::Present(p) => p,
        _ => unreachable!(),
    }
}

fn generated_filters_agree_with_the_evaluator(store: &Store) {
    let registry = Registry::default();
    let fx = Fixture::new(store, &registry);
    // Dates that fall inside the data set.
    let mut runner = TestRunner::new(Config { cases: 200, failure_persistence: None, ..Config::default() });
    let created = time_of(&fx, 20, "created");
    runner
        .run(&(arb_filter(), 0u64..60, 0u64..20), |(filter, offset, count)| {
            // Swap one year literal for a time inside the data set, so ordering ops split it.
            let text = filter.to_string().replace("2024-01-01T00:00:00Z", &created);
            let filter = parse_filter(&text).unwrap();
            let want = fx.expected(Some(&filter), None, false, offset, count);
            prop_assert_eq!(fx.query(Some(&filter), None, false, offset, count), want, "{}", filter);
            Ok(())
        })
        .unwrap();
}

/// A search across kinds against a reference written from its definition: users then groups
/// without a sort, one merged sorted list with one; every page of it, on the SQL and Rust paths.
fn a_search_across_kinds_is_the_concatenation_or_the_merge_paged(store: &Store) {
    let registry = Registry::default();
    let fx = Fixture::new(store, &registry);
    let group_schema = registry.resource("Group").unwrap();
    let mut groups = fx.groups.clone();
    for (i, name) in ["Zed", "team A", "b", "Émile z", "a%b", "Team a", "ops", "Zed"].into_iter().enumerate() {
        let body = as_map(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name}));
        let members = if i % 2 == 0 { vec![Member::typed(fx.all[i].id.clone(), "User")] } else { Vec::new() };
        groups.push(store.create(&fx.tenant, NewResource { kind: Kind::Group, body, members }).unwrap());
    }
    // Another tenant's group must never show up.
    let other = store.tenant_by_name("other").unwrap().unwrap().id;
    let body = as_map(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "b"}));
    store.create(&other, NewResource { kind: Kind::Group, body, members: Vec::new() }).unwrap();

    let everything: Vec<(&Resource, Value)> =
        fx.all.iter().chain(&groups).map(|r| (r, Value::Object(r.to_scim(None)))).collect();
    let by_creation = |a: &Resource, b: &Resource| a.created.cmp(&b.created).then(a.id.cmp(&b.id));
    for (filter, sort, descending) in [
        (None, None, false),
        (Some("displayName pr"), None, false),
        (None, Some("displayName"), false),
        (None, Some("displayName"), true),
        (Some("displayName pr"), Some("displayName"), true),
        // Only users have userName: groups sort as missing it, after every user.
        (None, Some("userName"), false),
        (None, Some("userName"), true),
    ] {
        let filter = filter.map(|f| parse_filter(f).unwrap());
        let sort_by = sort.map(path);
        let mut hits: Vec<&(&Resource, Value)> = everything
            .iter()
            .filter(|(r, scim)| {
                let schema = if r.kind == Kind::User { &fx.schema } else { &group_schema };
                filter.as_ref().is_none_or(|f| f.matches(scim, schema))
            })
            .collect();
        hits.sort_by(|(a, sa), (b, sb)| match &sort_by {
            None => a.kind.cmp(&b.kind).then(by_creation(a, b)),
            Some(path) => {
                let key = |r: &Resource, scim: &Value| {
                    (r.kind == Kind::User || path.name != "userName").then(|| reference_key(path, scim)).flatten()
                };
                reference_order(key(a, sa), key(b, sb), descending).then(by_creation(a, b))
            }
        });
        let slow = filter.as_ref().map(force_rust_path);
        for filter in [filter.as_ref(), slow.as_ref()] {
            for (offset, count) in [(0, 0), (0, 100), (0, 5), (47, 5), (50, 3), (53, 10), (200, 5), (10, 1000)] {
                let want: Vec<&str> = hits.iter().skip(offset).take(count).map(|(r, _)| r.id.as_str()).collect();
                let what = format!("{filter:?} sortBy={sort:?} desc={descending} [{offset}+{count}]");
                for with_members in [false, true] {
                    let part = |kind: Kind, schema| {
                        let sort_by = sort_by.as_ref().filter(|p| kind == Kind::User || p.name != "userName");
                        let q = Query {
                            filter,
                            schema,
                            sort_by,
                            descending,
                            offset: offset as u64,
                            count: count as u64,
                            with_members: with_members && kind == Kind::Group,
                        };
                        (kind, q)
                    };
                    let parts = [part(Kind::User, &fx.schema), part(Kind::Group, &group_schema)];
                    let page = store.query_across(&fx.tenant, &parts).unwrap();
                    assert_eq!(page.total, hits.len() as u64, "total: {what}");
                    let got: Vec<&str> = page.resources.iter().map(|r| r.id.as_str()).collect();
                    assert_eq!(got, want, "page: {what}");
                    for r in &page.resources {
                        let loaded = r.members.is_some();
                        assert_eq!(loaded, with_members && r.kind == Kind::Group, "members of {}: {what}", r.id);
                    }
                }
            }
        }
    }
}

both_engines!(
    a_search_across_kinds_is_the_concatenation_or_the_merge_paged,
    filters_agree_with_the_evaluator,
    count_zero_returns_only_the_total,
    default_order_is_creation_and_pages_do_not_overlap,
    group_queries_filter_on_display_name_and_members,
    generated_filters_agree_with_the_evaluator,
);

#[test]
fn the_test_database_helper_is_reusable() {
    // Two test databases at once are independent.
    let a = TestDb::sqlite();
    let b = TestDb::sqlite();
    a.store().create_tenant("acme").unwrap();
    assert!(b.store().tenants().unwrap().is_empty());
}
