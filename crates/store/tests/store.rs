//! The store's behaviour on both engines: migrations, tenants, keys, resources, members, versions, concurrency.

// Integration tests are test code: clippy's allow-unwrap-in-tests applies to `cfg(test)` items.
#![cfg(test)]

use std::collections::BTreeSet;
use std::time::Instant;

use chrono::{TimeZone, Utc};
use serde_json::{Map, Value, json};

use scimgw_scim::ScimError;
use scimgw_store::testing::TestDb;
use scimgw_store::{
    Backend, Change, Kind, Member, MembersChange, NewApiKey, NewResource, Query, Resource, Store, StoreConfig,
    StoreError, both_engines,
};

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn user(name: &str) -> NewResource {
    NewResource {
        kind: Kind::User,
        body: obj(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name, "active": true})),
        members: Vec::new(),
    }
}

fn group(name: &str, members: Vec<Member>) -> NewResource {
    NewResource {
        kind: Kind::Group,
        body: obj(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name})),
        members,
    }
}

fn tenant(store: &Store, name: &str) -> String {
    store.create_tenant(name).unwrap().id
}

fn migrations_go_down_and_up_again(store: &Store) {
    assert!(store.pending_migrations().unwrap().is_empty());
    assert!(store.migrate().unwrap().is_empty(), "a second migrate applies nothing");
    let t = tenant(store, "before");
    store.create(&t, user("a")).unwrap();
    let mut reverted = Vec::new();
    while let Some(name) = store.revert_last_migration().unwrap() {
        reverted.push(name);
    }
    assert!(reverted.len() >= 2, "{reverted:?}");
    assert_eq!(store.pending_migrations().unwrap().len(), reverted.len());
    assert!(store.tenants().is_err(), "the tables are gone");
    reverted.reverse();
    assert_eq!(store.migrate().unwrap(), reverted);
    assert!(store.tenants().unwrap().is_empty(), "down.sql dropped the data with the tables");
    let t = tenant(store, "after");
    store.create(&t, user("a")).unwrap();
}

fn every_column_reads_back_on_both_engines(store: &Store) {
    // Each table through its schema.rs declaration, every column non-NULL where it can be.
    let t = tenant(store, "cols");
    let key = store
        .insert_api_key(&NewApiKey {
            id: "k1".into(),
            tenant_id: t.clone(),
            secret_sha256: [7; 32],
            label: Some("l".into()),
        })
        .unwrap();
    store.touch_api_key("k1", Utc::now()).unwrap();
    store.revoke_api_key("k1").unwrap();
    let (k, _) = store.api_key_with_tenant("k1").unwrap().unwrap();
    assert_eq!(k.secret_sha256, vec![7; 32]);
    assert!(k.last_used.is_some() && k.revoked.is_some() && k.created == key.created);
    let mut u = user("Cols");
    u.body.insert("displayName".into(), json!("D"));
    u.body.insert("externalId".into(), json!("e"));
    let u = store.create(&t, u).unwrap();
    assert_eq!(store.get(&t, Kind::User, &u.id, false).unwrap().unwrap(), u);
    let mut g = group("G", vec![Member::typed(u.id.clone(), "User")]);
    g.body.insert("externalId".into(), json!("ge"));
    let g = store.create(&t, g).unwrap();
    // Read back, the member carries its name from the users row (display_name, through the join).
    let read = Resource { members: Some(vec![Member::typed(u.id.clone(), "User").with_display("D")]), ..g };
    assert_eq!(store.get(&t, Kind::Group, &read.id, true).unwrap().unwrap(), read);
    let audit = scimgw_store::Audit { key_id: "k1".into(), request_id: Some("r1".into()), operation: "create" };
    let a = store.create_with(&t, user("Audited"), &[], Some(audit)).unwrap();
    let events = store.audit_events(&t, None, 10).unwrap();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(
        (e.key_id.as_str(), e.request_id.as_deref(), e.operation.as_str(), e.resource_type.as_str(), e.version),
        ("k1", Some("r1"), "create", "User", 1)
    );
    assert_eq!(e.resource_id, a.id);
    assert!(e.at >= a.created - chrono::Duration::seconds(1));
}

fn tenants_are_created_listed_found_and_removed(store: &Store) {
    let a = store.create_tenant("acme").unwrap();
    store.create_tenant("globex").unwrap();
    assert!(matches!(store.create_tenant("acme"), Err(StoreError::Conflict { attribute: "name" })));
    let names: Vec<String> = store.tenants().unwrap().into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["acme", "globex"]);
    assert_eq!(store.tenant_by_name("acme").unwrap(), Some(a.clone()));
    assert_eq!(store.tenant_by_name("nope").unwrap(), None);
    assert!(store.remove_tenant("acme").unwrap());
    assert!(!store.remove_tenant("acme").unwrap());
    assert_eq!(store.tenant_by_name("acme").unwrap(), None);
}

fn api_keys_are_revoked_touched_and_removed_with_their_tenant(store: &Store) {
    let t = tenant(store, "acme");
    let other = tenant(store, "globex");
    let new =
        NewApiKey { id: "key1".into(), tenant_id: t.clone(), secret_sha256: [1; 32], label: Some("entra".into()) };
    let k = store.insert_api_key(&new).unwrap();
    assert!(matches!(store.insert_api_key(&new), Err(StoreError::Conflict { attribute: "id" })));
    store
        .insert_api_key(&NewApiKey { id: "key2".into(), tenant_id: other.clone(), secret_sha256: [2; 32], label: None })
        .unwrap();
    let (found, found_tenant) = store.api_key_with_tenant("key1").unwrap().unwrap();
    assert_eq!(found, k);
    assert_eq!(found_tenant.name, "acme");
    assert!(store.api_key_with_tenant("nope").unwrap().is_none());
    assert_eq!(store.api_keys(None).unwrap().len(), 2);
    assert_eq!(store.api_keys(Some(&other)).unwrap().len(), 1);

    let at = Utc.with_ymd_and_hms(2024, 5, 1, 10, 0, 0).unwrap();
    store.touch_api_key("key1", at).unwrap();
    assert_eq!(store.api_key_with_tenant("key1").unwrap().unwrap().0.last_used, Some(at));

    assert!(store.revoke_api_key("key1").unwrap());
    let revoked = store.api_key_with_tenant("key1").unwrap().unwrap().0.revoked.unwrap();
    assert!(store.revoke_api_key("key1").unwrap(), "revoking twice still finds the key");
    assert_eq!(store.api_key_with_tenant("key1").unwrap().unwrap().0.revoked, Some(revoked), "first time kept");
    assert!(!store.revoke_api_key("nope").unwrap());

    store.create(&t, user("alice")).unwrap();
    store.create(&t, group("g", Vec::new())).unwrap();
    assert!(store.remove_tenant("acme").unwrap());
    assert!(store.api_key_with_tenant("key1").unwrap().is_none(), "keys cascade with their tenant");
    assert_eq!(store.api_keys(None).unwrap().len(), 1);
}

fn users_are_created_read_updated_and_deleted(store: &Store) {
    let t = tenant(store, "acme");
    let u = store.create(&t, user("alice@example.com")).unwrap();
    assert_eq!(u.version, 1);
    assert_eq!(u.created, u.last_modified);
    assert_eq!(uuid_version(&u.id), Some(7), "ids are time-ordered UUIDv7: new rows append to the key index");
    assert!(u.members.is_none());
    let got = store.get(&t, Kind::User, &u.id, false).unwrap().unwrap();
    assert_eq!(got, u);
    assert_eq!(got.to_scim(None)["userName"], "alice@example.com");
    assert!(store.get(&t, Kind::Group, &u.id, false).unwrap().is_none(), "kinds are separate");

    std::thread::sleep(std::time::Duration::from_millis(2));
    let updated = store
        .update(&t, Kind::User, &u.id, Some(1), false, |current| {
            let mut body = current.body.clone();
            body.insert("displayName".into(), json!("Alice"));
            Ok(Change::Update { body, members: Vec::new() })
        })
        .unwrap()
        .unwrap();
    assert!(updated.changed);
    assert_eq!(updated.resource.version, 2);
    assert!(updated.resource.last_modified > u.last_modified);
    assert_eq!(updated.resource.created, u.created);
    assert_eq!(store.get(&t, Kind::User, &u.id, false).unwrap().unwrap(), updated.resource);

    assert!(store.update(&t, Kind::User, "nope", None, false, |_| Ok(Change::Unchanged)).unwrap().is_none());
    let refused = store.update(&t, Kind::User, &u.id, None, false, |_| Err(ScimError::mutability("no")));
    assert!(matches!(refused, Err(StoreError::Rejected(e)) if e.status == 400));

    assert!(store.delete(&t, Kind::User, &u.id, None).unwrap());
    assert!(!store.delete(&t, Kind::User, &u.id, None).unwrap());
    assert!(store.get(&t, Kind::User, &u.id, false).unwrap().is_none());
}

fn uuid_version(id: &str) -> Option<u32> {
    let parts: Vec<&str> = id.split('-').collect();
    (parts.len() == 5 && id.len() == 36).then(|| parts[2].chars().next().and_then(|c| c.to_digit(16)))?
}

fn a_body_without_its_required_name_is_rejected(store: &Store) {
    let t = tenant(store, "acme");
    let mut u = user("x");
    u.body.remove("userName");
    assert!(matches!(store.create(&t, u), Err(StoreError::Rejected(e)) if e.detail.contains("userName")));
    let mut g = group("x", Vec::new());
    g.body.remove("displayName");
    assert!(matches!(store.create(&t, g), Err(StoreError::Rejected(e)) if e.detail.contains("displayName")));
}

fn user_names_are_unique_ignoring_case(store: &Store) {
    let t = tenant(store, "acme");
    let other = tenant(store, "globex");
    store.create(&t, user("Alice")).unwrap();
    assert!(matches!(store.create(&t, user("alice")), Err(StoreError::Conflict { attribute: "userName" })));
    assert!(matches!(store.create(&t, user("ALICE")), Err(StoreError::Conflict { attribute: "userName" })));
    store.create(&other, user("alice")).expect("another tenant may have the same userName");
    let bob = store.create(&t, user("bob")).unwrap();
    let renamed = store.update(&t, Kind::User, &bob.id, None, false, |c| {
        let mut body = c.body.clone();
        body.insert("userName".into(), json!("ALICE"));
        Ok(Change::Update { body, members: Vec::new() })
    });
    assert!(matches!(renamed, Err(StoreError::Conflict { attribute: "userName" })));
    assert_eq!(store.get(&t, Kind::User, &bob.id, false).unwrap().unwrap().version, 1, "rolled back");
    // Groups' displayName is not unique (RFC 7643).
    store.create(&t, group("Ops", Vec::new())).unwrap();
    store.create(&t, group("Ops", Vec::new())).unwrap();
}

fn a_tenant_never_sees_another_tenants_rows(store: &Store) {
    let a = tenant(store, "a");
    let b = tenant(store, "b");
    let ua = store.create(&a, user("same")).unwrap();
    let ga = store.create(&a, group("g", vec![Member::new(ua.id.clone())])).unwrap();
    assert!(store.get(&b, Kind::User, &ua.id, false).unwrap().is_none());
    assert!(store.get(&b, Kind::Group, &ga.id, true).unwrap().is_none());
    assert!(store.update(&b, Kind::User, &ua.id, None, false, |_| panic!("must not be called")).unwrap().is_none());
    assert!(!store.delete(&b, Kind::User, &ua.id, None).unwrap());
    assert!(!store.delete(&b, Kind::Group, &ga.id, None).unwrap());
    assert!(store.existing_ids(&b, &[ua.id.clone(), ga.id.clone()]).unwrap().is_empty());
    let registry = scimgw_scim::schema::Registry::default();
    let schema = registry.resource("User").unwrap();
    let q = scimgw_store::Query {
        filter: None,
        schema: &schema,
        sort_by: None,
        descending: false,
        offset: 0,
        count: 10,
        with_members: false,
    };
    assert_eq!(store.query(&b, Kind::User, &q).unwrap().total, 0);
    assert_eq!(store.query(&a, Kind::User, &q).unwrap().total, 1);
    assert!(store.get(&a, Kind::User, &ua.id, false).unwrap().is_some());
}

fn existing_ids_names_users_and_groups(store: &Store) {
    let t = tenant(store, "acme");
    let u = store.create(&t, user("u")).unwrap();
    let g = store.create(&t, group("g", Vec::new())).unwrap();
    let mut found = store.existing_ids(&t, &[u.id.clone(), "missing".into(), g.id.clone()]).unwrap();
    found.sort();
    let mut expected = vec![(u.id, Kind::User), (g.id, Kind::Group)];
    expected.sort();
    assert_eq!(found, expected);
    let many: Vec<String> = (0..1200).map(|i| format!("x{i}")).collect();
    assert!(store.existing_ids(&t, &many).unwrap().is_empty(), "more ids than one IN list holds");
}

fn if_match_guards_updates_and_deletes(store: &Store) {
    let t = tenant(store, "acme");
    let u = store.create(&t, user("u")).unwrap();
    let stale = store.update(&t, Kind::User, &u.id, Some(7), false, |_| panic!("must not be called"));
    assert!(matches!(stale, Err(StoreError::VersionMismatch { current: 1 })));
    assert!(matches!(store.delete(&t, Kind::User, &u.id, Some(2)), Err(StoreError::VersionMismatch { current: 1 })));
    assert!(store.delete(&t, Kind::User, &u.id, Some(1)).unwrap());
}

fn unchanged_keeps_the_version(store: &Store) {
    let t = tenant(store, "acme");
    let u = store.create(&t, user("u")).unwrap();
    let same = store.update(&t, Kind::User, &u.id, Some(1), false, |_| Ok(Change::Unchanged)).unwrap().unwrap();
    assert!(!same.changed);
    assert_eq!(same.resource, u);
    assert_eq!(store.get(&t, Kind::User, &u.id, false).unwrap().unwrap().version, 1);
}

fn indexed_columns_follow_the_body(store: &Store) {
    // Removing an attribute from the body must clear its column, or filters would still find it.
    let t = tenant(store, "acme");
    let mut new = user("u");
    new.body.insert("externalId".into(), json!("ext-1"));
    let u = store.create(&t, new).unwrap();
    let registry = scimgw_scim::schema::Registry::default();
    let schema = registry.resource("User").unwrap();
    let filter = scimgw_scim::filter::parse_filter(r#"externalId eq "ext-1""#).unwrap();
    let q = scimgw_store::Query {
        filter: Some(&filter),
        schema: &schema,
        sort_by: None,
        descending: false,
        offset: 0,
        count: 10,
        with_members: false,
    };
    assert_eq!(store.query(&t, Kind::User, &q).unwrap().total, 1);
    store
        .update(&t, Kind::User, &u.id, None, false, |c| {
            let mut body = c.body.clone();
            body.remove("externalId");
            Ok(Change::Update { body, members: Vec::new() })
        })
        .unwrap();
    assert_eq!(store.query(&t, Kind::User, &q).unwrap().total, 0);
}

fn groups_keep_members_as_rows(store: &Store) {
    let t = tenant(store, "acme");
    let a = store.create(&t, user("a")).unwrap();
    let b = store.create(&t, user("b")).unwrap();
    let g = store
        .create(
            &t,
            group(
                "Ops",
                vec![Member::typed(b.id.clone(), "User"), Member::new(a.id.clone()), Member::new(a.id.clone())],
            ),
        )
        .unwrap();
    let mut expected = [Member::new(a.id.clone()), Member::typed(b.id.clone(), "User")];
    expected.sort_by(|x, y| x.value.cmp(&y.value));
    assert_eq!(g.members.as_deref(), Some(&expected[..]), "duplicates stored once, ordered by value");
    let mut read = vec![
        Member::typed(a.id.clone(), "User").with_display("a"),
        Member::typed(b.id.clone(), "User").with_display("b"),
    ];
    read.sort_by(|x, y| x.value.cmp(&y.value));
    assert_eq!(
        store.get(&t, Kind::Group, &g.id, true).unwrap().unwrap().members,
        Some(read),
        "read back, each member says what it is and its name, from its own row"
    );
    assert_eq!(store.get(&t, Kind::Group, &g.id, false).unwrap().unwrap().members, None);
    assert!(!g.body.contains_key("members"));

    let members_of = |store: &Store| -> BTreeSet<String> {
        store
            .get(&t, Kind::Group, &g.id, true)
            .unwrap()
            .unwrap()
            .members
            .unwrap()
            .into_iter()
            .map(|m| m.value)
            .collect()
    };
    let change = |store: &Store, changes: Vec<MembersChange>| {
        store
            .update(&t, Kind::Group, &g.id, None, false, move |c| {
                Ok(Change::Update { body: c.body.clone(), members: changes.clone() })
            })
            .unwrap()
            .unwrap()
    };
    let r = change(store, vec![MembersChange::Remove(vec![a.id.clone(), "absent".into()])]);
    assert_eq!(r.resource.version, 2);
    assert_eq!(members_of(store), BTreeSet::from([b.id.clone()]));
    change(store, vec![MembersChange::Add(vec![Member::new(a.id.clone()), Member::new(b.id.clone())])]);
    assert_eq!(members_of(store), BTreeSet::from([a.id.clone(), b.id.clone()]));
    change(store, vec![MembersChange::Set(vec![Member::typed(a.id.clone(), "User"), Member::new("c")])]);
    let now = store.get(&t, Kind::Group, &g.id, true).unwrap().unwrap().members.unwrap();
    let mut expected = vec![Member::typed(a.id.clone(), "User").with_display("a"), Member::new("c")];
    expected.sort_by(|x, y| x.value.cmp(&y.value));
    assert_eq!(now, expected, "an id that names nothing reads with its stored type and no display");
    change(store, vec![MembersChange::Set(vec![Member::typed(a.id.clone(), "User"), Member::typed("c", "Group")])]);
    let now = store.get(&t, Kind::Group, &g.id, true).unwrap().unwrap().members.unwrap();
    assert!(now.contains(&Member::typed("c", "Group")), "Set updates the stored type too: {now:?}");
    change(store, vec![MembersChange::Clear, MembersChange::Add(vec![Member::new(b.id.clone())])]);
    assert_eq!(members_of(store), BTreeSet::from([b.id.clone()]), "changes apply in order");
    let a_id = a.id.clone();
    let loaded = store
        .update(&t, Kind::Group, &g.id, None, true, move |c| {
            assert!(c.members.is_some(), "load_members hands the members to the closure");
            Ok(Change::Update {
                body: c.body.clone(),
                members: vec![MembersChange::Add(vec![Member::new(a_id.clone())])],
            })
        })
        .unwrap()
        .unwrap();
    assert_eq!(loaded.resource.members.unwrap().len(), 2, "and returns them after the change");

    // Deleting a user removes its memberships and bumps the group's version.
    let before = store.get(&t, Kind::Group, &g.id, false).unwrap().unwrap().version;
    assert!(store.delete(&t, Kind::User, &b.id, None).unwrap());
    assert_eq!(members_of(store), BTreeSet::from([a.id.clone()]));
    assert_eq!(store.get(&t, Kind::Group, &g.id, false).unwrap().unwrap().version, before + 1);
    // Deleting the group removes its member rows.
    assert!(store.delete(&t, Kind::Group, &g.id, None).unwrap());
    let again = store.create(&t, group("Ops", Vec::new())).unwrap();
    assert_eq!(store.get(&t, Kind::Group, &again.id, true).unwrap().unwrap().members, Some(Vec::new()));
}

fn members_are_read_with_what_they_are_and_their_names(store: &Store) {
    let t = tenant(store, "acme");
    let other = tenant(store, "globex");
    let mut named = user("ann@example.com");
    named.body.insert("displayName".into(), json!("Ann"));
    let ann = store.create(&t, named).unwrap();
    let bob = store.create(&t, user("bob@example.com")).unwrap();
    let inner = store.create(&t, group("Inner", Vec::new())).unwrap();
    // The same id in another tenant must not lend its name.
    let mut stranger = user("stranger@example.com");
    stranger.body.insert("displayName".into(), json!("Stranger"));
    let stranger = store.create(&other, stranger).unwrap();
    let members = vec![
        Member::new(ann.id.clone()),
        Member::typed(bob.id.clone(), "User"),
        Member::new(inner.id.clone()),
        Member::typed("gone", "User"),
        Member::new(stranger.id.clone()),
    ];
    let g = store.create(&t, group("Outer", members)).unwrap();
    let mut expected = vec![
        Member::typed(ann.id.clone(), "User").with_display("Ann"),
        Member::typed(bob.id.clone(), "User").with_display("bob@example.com"),
        Member::typed(inner.id.clone(), "Group").with_display("Inner"),
        Member::typed("gone", "User"),
        Member::new(stranger.id.clone()),
    ];
    expected.sort_by(|x, y| x.value.cmp(&y.value));
    let read = |store: &Store| store.get(&t, Kind::Group, &g.id, true).unwrap().unwrap().members.unwrap();
    assert_eq!(read(store), expected, "displayName, else userName; a group's displayName; by kind, not as sent");

    // Lists read the same through the chunked path, a few statements per chunk of groups; a
    // group that is a member of two listed groups is named in both.
    let also = store.create(&t, group("Also", vec![Member::new(inner.id.clone())])).unwrap();
    let schema_registry = scimgw_scim::schema::Registry::default();
    let schema = schema_registry.resource("Group").unwrap();
    let q = Query {
        filter: None,
        schema: &schema,
        sort_by: None,
        descending: false,
        offset: 0,
        count: 10,
        with_members: true,
    };
    let page = store.query(&t, Kind::Group, &q).unwrap();
    let outer = page.resources.iter().find(|r| r.id == g.id).unwrap();
    assert_eq!(outer.members.as_ref(), Some(&expected));
    let of_inner = page.resources.iter().find(|r| r.id == inner.id).unwrap();
    assert_eq!(of_inner.members, Some(Vec::new()));
    let of_also = page.resources.iter().find(|r| r.id == also.id).unwrap();
    assert_eq!(of_also.members, Some(vec![Member::typed(inner.id.clone(), "Group").with_display("Inner")]));

    // The name is kept on the membership row and rewritten when the member is renamed: a user
    // (in both groups it is a member of) and a group.
    let rename = |kind: Kind, id: &str, name: &str| {
        let name = name.to_owned();
        store
            .update(&t, kind, id, None, false, move |c| {
                let mut body = c.body.clone();
                body.insert("displayName".into(), json!(name));
                Ok(Change::Update { body, members: Vec::new() })
            })
            .unwrap()
            .unwrap()
    };
    rename(Kind::User, &bob.id, "Bob");
    rename(Kind::Group, &inner.id, "Inner circle");
    let now = read(store);
    assert!(now.contains(&Member::typed(bob.id.clone(), "User").with_display("Bob")), "{now:?}");
    assert!(now.contains(&Member::typed(inner.id.clone(), "Group").with_display("Inner circle")), "{now:?}");
    let members_of = |id: &str| store.get(&t, Kind::Group, id, true).unwrap().unwrap().members.unwrap();
    assert_eq!(members_of(&also.id), vec![Member::typed(inner.id.clone(), "Group").with_display("Inner circle")]);
    assert_eq!(members_of(&inner.id), Vec::new());
    // Dropping the displayName falls back to the userName; a change that keeps the name
    // rewrites nothing (the row still reads the same).
    store
        .update(&t, Kind::User, &bob.id, None, false, |c| {
            let mut body = c.body.clone();
            body.remove("displayName");
            body.insert("title".into(), json!("Engineer"));
            Ok(Change::Update { body, members: Vec::new() })
        })
        .unwrap();
    assert!(read(store).contains(&Member::typed(bob.id.clone(), "User").with_display("bob@example.com")));
    // The other tenant's rows keep their own names.
    let theirs = store.get(&other, Kind::User, &stranger.id, false).unwrap().unwrap();
    assert_eq!(theirs.body["displayName"], "Stranger");
}

/// A rename racing with the member's addition to groups: whichever commits first, every
/// membership row ends with the last name (on PostgreSQL the add reads the member `FOR SHARE`,
/// so a rename cannot slip between its read of the name and its commit).
fn renames_racing_member_adds_leave_the_last_name(store: &Store) {
    let t = tenant(store, "acme");
    let ann = store.create(&t, user("ann@example.com")).unwrap();
    let groups: Vec<String> =
        (0..8).map(|i| store.create(&t, group(&format!("g{i}"), Vec::new())).unwrap().id).collect();
    std::thread::scope(|s| {
        let (st, tt, id) = (store.clone(), t.clone(), ann.id.clone());
        s.spawn(move || {
            for n in 0..40 {
                st.update(&tt, Kind::User, &id, None, false, move |c| {
                    let mut body = c.body.clone();
                    body.insert("displayName".into(), json!(format!("Ann {n}")));
                    Ok(Change::Update { body, members: Vec::new() })
                })
                .unwrap();
            }
        });
        for g in &groups {
            let (st, tt, gid, member) = (store.clone(), t.clone(), g.clone(), ann.id.clone());
            s.spawn(move || {
                for _ in 0..5 {
                    for change in [
                        MembersChange::Add(vec![Member::new(member.clone())]),
                        MembersChange::Remove(vec![member.clone()]),
                    ] {
                        st.update(&tt, Kind::Group, &gid, None, false, move |c| {
                            Ok(Change::Update { body: c.body.clone(), members: vec![change.clone()] })
                        })
                        .unwrap();
                    }
                }
                let add = vec![MembersChange::Add(vec![Member::new(member.clone())])];
                st.update(&tt, Kind::Group, &gid, None, false, move |c| {
                    Ok(Change::Update { body: c.body.clone(), members: add.clone() })
                })
                .unwrap();
            });
        }
    });
    let last = store.get(&t, Kind::User, &ann.id, false).unwrap().unwrap().body["displayName"].clone();
    assert_eq!(last, "Ann 39");
    for g in &groups {
        let members = store.get(&t, Kind::Group, g, true).unwrap().unwrap().members.unwrap();
        assert_eq!(members, vec![Member::typed(ann.id.clone(), "User").with_display("Ann 39")], "group {g}");
    }
}

fn adding_a_thousand_members_to_a_group_of_ten_thousand_is_quick(store: &Store) {
    let t = tenant(store, "acme");
    let initial: Vec<Member> = (0..10_000).map(|i| Member::typed(format!("u{i:05}"), "User")).collect();
    let started = Instant::now();
    let g = store.create(&t, group("Everyone", initial)).unwrap();
    let created_in = started.elapsed();
    let add: Vec<Member> = (9_500..10_500).map(|i| Member::new(format!("u{i:05}"))).collect();
    let started = Instant::now();
    let r = store
        .update(&t, Kind::Group, &g.id, None, false, move |c| {
            assert!(c.members.is_none(), "members are not loaded unless asked");
            Ok(Change::Update { body: c.body.clone(), members: vec![MembersChange::Add(add.clone())] })
        })
        .unwrap()
        .unwrap();
    let added_in = started.elapsed();
    assert_eq!(r.resource.version, 2);
    let members = store.get(&t, Kind::Group, &g.id, true).unwrap().unwrap().members.unwrap();
    assert_eq!(members.len(), 10_500);
    assert_eq!(members.iter().find(|m| m.value == "u09600").unwrap().r#type.as_deref(), Some("User"), "existing kept");
    let started = Instant::now();
    store
        .update(&t, Kind::Group, &g.id, None, false, |c| {
            let gone = (0..1000).map(|i| format!("u{i:05}")).collect();
            Ok(Change::Update { body: c.body.clone(), members: vec![MembersChange::Remove(gone)] })
        })
        .unwrap();
    let removed_in = started.elapsed();
    eprintln!(
        "{:?}: create 10,000 members {created_in:?}, add 1,000 {added_in:?}, remove 1,000 {removed_in:?}",
        store.backend()
    );
    assert!(added_in.as_secs_f64() < 2.0, "adding 1,000 members took {added_in:?}");
    assert_eq!(store.get(&t, Kind::Group, &g.id, true).unwrap().unwrap().members.unwrap().len(), 9_500);
}

fn fifty_concurrent_updates_all_survive(store: &Store) {
    let t = tenant(store, "acme");
    let u = store.create(&t, user("busy")).unwrap();
    std::thread::scope(|s| {
        for i in 0..50 {
            let (store, t, id) = (store.clone(), t.clone(), u.id.clone());
            s.spawn(move || {
                store
                    .update(&t, Kind::User, &id, None, false, move |current| {
                        let mut body = current.body.clone();
                        let emails = body.entry("emails").or_insert_with(|| json!([]));
                        emails.as_array_mut().unwrap().push(json!({"value": format!("e{i}@example.com")}));
                        Ok(Change::Update { body, members: Vec::new() })
                    })
                    .unwrap()
                    .unwrap();
            });
        }
    });
    let after = store.get(&t, Kind::User, &u.id, false).unwrap().unwrap();
    let emails: BTreeSet<String> =
        after.body["emails"].as_array().unwrap().iter().map(|e| e["value"].as_str().unwrap().to_owned()).collect();
    assert_eq!(emails.len(), 50, "every update survived");
    assert_eq!(after.version, 51);
}

fn concurrent_member_adds_to_one_group_all_survive(store: &Store) {
    let t = tenant(store, "acme");
    let g = store.create(&t, group("g", Vec::new())).unwrap();
    std::thread::scope(|s| {
        for i in 0..20 {
            let (store, t, id) = (store.clone(), t.clone(), g.id.clone());
            s.spawn(move || {
                let add = vec![Member::new(format!("m{i}")), Member::new("shared")];
                store
                    .update(&t, Kind::Group, &id, None, false, move |c| {
                        Ok(Change::Update { body: c.body.clone(), members: vec![MembersChange::Add(add.clone())] })
                    })
                    .unwrap();
            });
        }
    });
    let members = store.get(&t, Kind::Group, &g.id, true).unwrap().unwrap().members.unwrap();
    assert_eq!(members.len(), 21);
}

both_engines!(
    migrations_go_down_and_up_again,
    every_column_reads_back_on_both_engines,
    tenants_are_created_listed_found_and_removed,
    api_keys_are_revoked_touched_and_removed_with_their_tenant,
    users_are_created_read_updated_and_deleted,
    a_body_without_its_required_name_is_rejected,
    user_names_are_unique_ignoring_case,
    a_tenant_never_sees_another_tenants_rows,
    existing_ids_names_users_and_groups,
    if_match_guards_updates_and_deletes,
    unchanged_keeps_the_version,
    indexed_columns_follow_the_body,
    groups_keep_members_as_rows,
    members_are_read_with_what_they_are_and_their_names,
    adding_a_thousand_members_to_a_group_of_ten_thousand_is_quick,
    fifty_concurrent_updates_all_survive,
    concurrent_member_adds_to_one_group_all_survive,
    renames_racing_member_adds_leave_the_last_name,
);

/// PostgreSQL: another writer has renamed a user (the row, then its membership rows, as the store
/// does) and not committed yet; an add of that user to a group meanwhile must wait for it and
/// take the new name. Read without `FOR SHARE`, the add would take the old name and commit it
/// on a row the rename's statement never saw.
#[test]
fn postgres_an_add_waits_for_a_rename_in_flight_and_takes_the_new_name() {
    use diesel::connection::SimpleConnection;
    use diesel::{Connection, RunQueryDsl};
    let Some(db) = TestDb::postgres() else { return };
    let store = db.store();
    let t = tenant(store, "acme");
    let ann = store.create(&t, user("ann@example.com")).unwrap();
    let g = store.create(&t, group("g", Vec::new())).unwrap();
    let mut other = diesel::PgConnection::establish(&db.config().url).unwrap();
    other
        .batch_execute(&format!(
            "BEGIN; \
             UPDATE users SET display_name = 'Ann Renamed' WHERE tenant_id = '{t}' AND id = '{id}'; \
             UPDATE group_members SET member_display = 'Ann Renamed' WHERE tenant_id = '{t}' AND member_id = '{id}';",
            id = ann.id
        ))
        .unwrap();
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    std::thread::scope(|s| {
        let add = s.spawn(|| {
            let member = vec![MembersChange::Add(vec![Member::new(ann.id.clone())])];
            store
                .update(&t, Kind::Group, &g.id, None, false, move |c| {
                    Ok(Change::Update { body: c.body.clone(), members: member.clone() })
                })
                .unwrap();
        });
        // Until the add is seen waiting on the rename (or has finished, which is the bug).
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        let mut probe = diesel::PgConnection::establish(&db.config().url).unwrap();
        let blocker = diesel::sql_query("SELECT pg_backend_pid()::bigint AS n").get_result::<N>(&mut other).unwrap().n;
        while !add.is_finished() && Instant::now() < deadline {
            let waiting = diesel::sql_query(format!(
                "SELECT count(*) AS n FROM pg_stat_activity WHERE {blocker} = ANY(pg_blocking_pids(pid))"
            ))
            .get_result::<N>(&mut probe)
            .unwrap()
            .n;
            if waiting > 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        other.batch_execute("COMMIT").unwrap();
        add.join().unwrap();
    });
    let members = store.get(&t, Kind::Group, &g.id, true).unwrap().unwrap().members.unwrap();
    assert_eq!(members, vec![Member::typed(ann.id.clone(), "User").with_display("Ann Renamed")]);
}

#[test]
fn opening_reports_bad_urls_and_unreachable_servers() {
    let bad = Store::open(&StoreConfig { url: "mysql://x/y".into(), ..StoreConfig::default() });
    assert!(matches!(bad, Err(StoreError::BadUrl(_))));
    let started = Instant::now();
    let down = Store::open(&StoreConfig {
        url: "postgres://postgres@127.0.0.1:1/none".into(),
        connect_timeout_secs: 1,
        ..StoreConfig::default()
    });
    match down {
        Err(StoreError::Unavailable(msg)) => assert!(msg.contains("127.0.0.1") || msg.contains("onnect"), "{msg}"),
        Err(e) => panic!("expected Unavailable, got {e:?}"),
        Ok(_) => panic!("expected Unavailable, got a store"),
    }
    assert!(started.elapsed().as_secs() < 10, "gave up within the timeout");
}

#[test]
fn postgres_errors_reach_the_operator_as_the_server_said_them() {
    let Some(base) = scimgw_store::testing::postgres_url() else {
        eprintln!(
            "SKIPPED (set SCIMGW_TEST_DATABASE_URL to run against PostgreSQL): postgres_errors_reach_the_operator"
        );
        return;
    };
    let url = match base.rfind('/') {
        Some(slash) => format!("{}/scimgw_no_such_database", &base[..slash]),
        None => panic!("unexpected test URL {base}"),
    };
    match Store::open(&StoreConfig { url, connect_timeout_secs: 2, ..StoreConfig::default() }) {
        Err(StoreError::Unavailable(msg)) => {
            eprintln!("{msg}");
            assert!(msg.contains("scimgw_no_such_database") && msg.contains("does not exist"), "{msg}");
        }
        Err(e) => panic!("expected Unavailable, got {e:?}"),
        Ok(_) => panic!("expected Unavailable, got a store"),
    }
}

#[test]
fn the_sqlite_file_and_its_directory_are_created_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/deeper/store.db");
    let store =
        Store::open(&StoreConfig { url: format!("sqlite://{}", path.display()), ..StoreConfig::default() }).unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    assert!(path.exists());
    store.migrate().unwrap();
    store.ping().unwrap();
    drop(store);
    let wal = std::fs::read(&path).unwrap();
    // The file header's read/write version bytes are 2 in WAL mode (https://sqlite.org/fileformat.html).
    assert_eq!((wal[18], wal[19]), (2, 2));
}

/// The store holds every user's attributes and the key hashes: what the store creates (its
/// directories, the file, and with it SQLite's `-wal`) is its owner's only, whatever the umask.
#[test]
fn the_sqlite_file_and_its_directories_are_created_for_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/deeper/store.db");
    let store =
        Store::open(&StoreConfig { url: format!("sqlite://{}", path.display()), ..StoreConfig::default() }).unwrap();
    store.migrate().unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600, "the store file");
    assert_eq!(mode(&dir.path().join("nested/deeper")), 0o700);
    assert_eq!(mode(&dir.path().join("nested")), 0o700);
    let wal = path.with_file_name("store.db-wal");
    if wal.exists() {
        assert_eq!(mode(&wal), 0o600, "the WAL file");
    }
}

#[test]
fn postgres_test_databases_live_in_their_own_schema() {
    let Some(db) = TestDb::postgres() else { return };
    assert_eq!(db.backend(), Backend::Postgres);
    let url = db.config().url.clone();
    let schema = url.rsplit("%3D").next().unwrap().to_owned();
    let second = Store::open(db.config()).unwrap();
    second.ping().unwrap();
    // libpq honours `options=-csearch_path=…`: the migrations table is in the test's schema.
    let base = scimgw_store::testing::postgres_url().unwrap();
    use diesel::{Connection, RunQueryDsl};
    let mut c = diesel::PgConnection::establish(&base).unwrap();
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let tables = diesel::sql_query(format!(
        "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = '{schema}'"
    ))
    .get_result::<N>(&mut c)
    .unwrap();
    assert!(tables.n >= 6, "tables and __diesel_schema_migrations in {schema}: {}", tables.n);
    // Filters compare and sort in code-point order only because these columns are COLLATE "C"
    // (checked against an ICU en-US database, where the default collation puts 'a' before 'B').
    let not_c = diesel::sql_query(format!(
        "SELECT count(*) AS n FROM information_schema.columns WHERE table_schema = '{schema}' \
         AND table_name IN ('users', 'groups') \
         AND column_name IN ('id', 'user_name', 'user_name_ci', 'external_id', 'display_name', 'display_name_ci') \
         AND collation_name IS DISTINCT FROM 'C'"
    ))
    .get_result::<N>(&mut c)
    .unwrap();
    assert_eq!(not_c.n, 0, "every compared text column is COLLATE \"C\"");
    drop(second);
    drop(db);
    let left = diesel::sql_query(format!(
        "SELECT count(*) AS n FROM information_schema.schemata WHERE schema_name = '{schema}'"
    ))
    .get_result::<N>(&mut c)
    .unwrap();
    assert_eq!(left.n, 0, "the schema is dropped with the TestDb");
}

#[test]
fn sqlite_busy_beyond_the_timeout_is_unavailable() {
    let db = TestDb::sqlite_with(|c| c.busy_timeout_ms = 100);
    let t = db.store().create_tenant("acme").unwrap().id;
    // Hold the write lock from a second connection to the same file.
    use diesel::Connection;
    use diesel::connection::SimpleConnection;
    let path = db.config().url.trim_start_matches("sqlite://").to_owned();
    let mut locker = diesel::SqliteConnection::establish(&path).unwrap();
    locker.batch_execute("BEGIN IMMEDIATE").unwrap();
    let r = db.store().create(&t, user("x"));
    assert!(matches!(r, Err(StoreError::Unavailable(ref m)) if m.contains("locked")), "{r:?}");
    locker.batch_execute("ROLLBACK").unwrap();
    db.store().create(&t, user("x")).unwrap();
}

/// Group commit: concurrent writes share batches, each write that returned `Ok` is in the file
/// (read back through a second store opened on it), and a refused write in a batch takes none of
/// its neighbours with it.
#[test]
fn sqlite_group_commit_batches_concurrent_writes_and_isolates_refusals() {
    let db = TestDb::sqlite();
    let store = db.store();
    let t = tenant(store, "acme");
    store.create(&t, user("taken")).unwrap();
    let (batches_before, writes_before) = store.write_batches().expect("SQLite writes go through group commit");
    let start = std::sync::Barrier::new(64);
    let results: Vec<Result<String, StoreError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..64)
            .map(|i| {
                let (store, t, start) = (store.clone(), t.clone(), &start);
                // Every eighth write asks for a taken userName and must be refused on its own.
                let name = if i % 8 == 0 { "TAKEN".to_owned() } else { format!("u{i}") };
                s.spawn(move || {
                    start.wait();
                    store.create(&t, user(&name)).map(|r| r.id)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let refused = results.iter().filter(|r| matches!(r, Err(StoreError::Conflict { attribute: "userName" }))).count();
    let created: Vec<&String> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!((refused, created.len()), (8, 56), "{results:?}");
    let (batches, writes) = store.write_batches().unwrap();
    assert_eq!(writes - writes_before, 56, "refused writes are not counted as committed");
    assert!(
        batches - batches_before < 56,
        "64 concurrent writes shared no batch ({} batches)",
        batches - batches_before
    );

    let reopened = Store::open(db.config()).unwrap();
    for id in created {
        assert!(reopened.get(&t, Kind::User, id, false).unwrap().is_some(), "{id} was acknowledged but is not stored");
    }
}

/// `write_batch_max = 1` turns group commit off: one transaction per write, as before.
#[test]
fn sqlite_group_commit_can_be_turned_off() {
    let db = TestDb::sqlite_with(|c| c.write_batch_max = 1);
    assert!(db.store().write_batches().is_none());
    let t = tenant(db.store(), "acme");
    db.store().create(&t, user("a")).unwrap();
    assert!(matches!(db.store().create(&t, user("A")), Err(StoreError::Conflict { .. })));
}

/// The pool does not test connections as it hands them out: when PostgreSQL ends every session
/// (a restart, a failover, an administrator), each pooled connection fails the one call that
/// finds it dead — with `Unavailable`, a 503 — and is replaced; nothing stays broken.
#[test]
fn postgres_pool_replaces_connections_the_server_ended() {
    use diesel::{Connection, PgConnection, RunQueryDsl};
    let app = format!("scimgw_ended_{}", std::process::id());
    let Some(db) = TestDb::postgres_with(|c| {
        c.url = format!("{}&application_name={app}", c.url);
        c.pool_size = 3;
    }) else {
        return;
    };
    let store = db.store();
    tenant(store, "acme");
    // Hold all three at once, so that the pool has opened each of them.
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..3).map(|_| s.spawn(|| store.tenants().unwrap())).collect();
        hs.into_iter().for_each(|h| drop(h.join().unwrap()));
    });
    let mut admin = PgConnection::establish(&scimgw_store::testing::postgres_url().unwrap()).unwrap();
    let ended = diesel::sql_query(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{app}'"
    ))
    .execute(&mut admin)
    .unwrap();
    assert!(ended >= 1, "no session of the pool was found to end");
    let mut outcomes = Vec::new();
    for _ in 0..10 {
        match store.tenants() {
            Ok(t) => outcomes.push(Ok(t.len())),
            Err(StoreError::Unavailable(m)) => outcomes.push(Err(m)),
            Err(other) => panic!("a dead connection must read as unavailable, not {other:?}"),
        }
    }
    let failed = outcomes.iter().filter(|o| o.is_err()).count();
    assert!(failed >= 1, "the dead connections were handed out and found dead: {outcomes:?}");
    assert!(failed <= 3, "each dead connection fails once at most: {outcomes:?}");
    assert!(outcomes[3..].iter().all(|o| *o == Ok(1)), "recovered by itself: {outcomes:?}");
}
