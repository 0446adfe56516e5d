//! The outbox on both engines: deliveries written with their change, coalescing, leases, attempts,
//! retries and links.

#![cfg(test)]

use std::time::Duration;

use serde_json::{Map, Value, json};

use scimgw_store::{
    Change, DeliveryFilter, DeliveryState, Enqueue, Finish, Kind, Link, NewResource, Store, StoreError, both_engines,
};

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn user(name: &str) -> NewResource {
    NewResource {
        kind: Kind::User,
        body: obj(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name})),
        members: Vec::new(),
    }
}

fn rename(store: &Store, t: &str, id: &str, name: &str, outbox: Vec<Enqueue>) -> i64 {
    let body = obj(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name}));
    let updated = store
        .update_with(t, Kind::User, id, None, false, None, move |_| {
            Ok((Change::Update { body: body.clone(), members: Vec::new() }, outbox.clone()))
        })
        .unwrap()
        .unwrap();
    updated.resource.version
}

fn all(store: &Store) -> Vec<scimgw_store::Delivery> {
    store.deliveries(&DeliveryFilter { limit: 1000, ..DeliveryFilter::default() }).unwrap()
}

fn done(detail: &str) -> Finish {
    Finish {
        state: DeliveryState::Done,
        retry_in: Duration::ZERO,
        detail: Some(detail.into()),
        duration: Duration::ZERO,
    }
}

fn deliveries_commit_with_the_change_and_coalesce_while_waiting(store: &Store) {
    let t = store.create_tenant("acme").unwrap().id;
    let targets = vec![Enqueue::deliver("crm"), Enqueue::deliver("hr")];
    let u = store.create_with(&t, user("alice"), &targets, None).unwrap();
    assert_eq!(all(store).len(), 2);
    for i in 0..9 {
        rename(store, &t, &u.id, &format!("alice{i}"), targets.clone());
    }
    let rows = all(store);
    assert_eq!(rows.len(), 2, "ten changes before any delivery are two rows, one per target");
    assert!(rows.iter().all(|d| d.version == 10 && d.state == DeliveryState::Pending && d.kind == Kind::User));

    // A refused change writes no delivery.
    let refused = store
        .update_with(&t, Kind::User, &u.id, None, false, None, |_| Err(scimgw_scim::ScimError::invalid_value("no")));
    assert!(refused.is_err());
    // An unchanged one neither.
    let unchanged = targets.clone();
    store
        .update_with(&t, Kind::User, &u.id, None, false, None, move |_| Ok((Change::Unchanged, unchanged.clone())))
        .unwrap();
    assert_eq!(all(store).len(), 2);

    // A skipped delivery is recorded, never claimed.
    rename(store, &t, &u.id, "alice-x", vec![Enqueue::skip("hr", "emails: a work email is required")]);
    let skipped =
        store.deliveries(&DeliveryFilter { state: Some(DeliveryState::Skipped), ..DeliveryFilter::default() }).unwrap();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].last_error.as_deref(), Some("emails: a work email is required"));

    // A deletion writes its row too (here absorbed into the waiting ones).
    assert!(store.delete_with(&t, Kind::User, &u.id, None, &targets, &[], None).unwrap());
    let pending =
        store.deliveries(&DeliveryFilter { state: Some(DeliveryState::Pending), ..DeliveryFilter::default() }).unwrap();
    assert_eq!(pending.len(), 2);
    assert!(pending.iter().all(|d| d.version == 0));
}

fn leases_keep_rows_from_two_dispatchers_and_expire(store: &Store) {
    let t = store.create_tenant("acme").unwrap().id;
    for i in 0..5 {
        store.create_with(&t, user(&format!("u{i}")), &[Enqueue::deliver("crm")], None).unwrap();
    }
    let a = store.claim_deliveries("a", 3, Duration::from_secs(60)).unwrap();
    let b = store.claim_deliveries("b", 10, Duration::from_secs(60)).unwrap();
    assert_eq!((a.len(), b.len()), (3, 2));
    assert!(a.iter().all(|d| !b.iter().any(|e| e.id == d.id)));
    assert!(store.claim_deliveries("c", 10, Duration::from_secs(60)).unwrap().is_empty());

    // b gives its rows back (shutdown); c takes them at once.
    let ids: Vec<String> = b.iter().map(|d| d.id.clone()).collect();
    assert_eq!(store.release_deliveries("b", &ids).unwrap(), 2);
    assert_eq!(store.claim_deliveries("c", 10, Duration::from_millis(1)).unwrap().len(), 2);
    // c's lease of 1 ms expires: d reclaims, and c's late finish is refused.
    std::thread::sleep(Duration::from_millis(5));
    let d = store.claim_deliveries("d", 10, Duration::from_secs(60)).unwrap();
    assert_eq!(d.len(), 2);
    assert!(!store.finish_delivery(&d[0], "c", &done("late")).unwrap());
    assert!(store.finish_delivery(&d[0], "d", &done("POST /Users → 201")).unwrap());
    let (row, attempts) = store.delivery(&d[0].id).unwrap().unwrap();
    assert_eq!(row.state, DeliveryState::Done);
    assert_eq!(row.attempts, 1);
    assert_eq!(attempts.len(), 2, "the refused late finish is still history");
    assert_eq!(attempts[1].outcome, "done");
}

fn failures_back_off_then_die_and_retry_requeues(store: &Store) {
    let t = store.create_tenant("acme").unwrap().id;
    let u = store.create_with(&t, user("bob"), &[Enqueue::deliver("crm")], None).unwrap();
    let d = store.claim_deliveries("w", 10, Duration::from_secs(60)).unwrap().remove(0);
    let fail = Finish {
        state: DeliveryState::Failed,
        retry_in: Duration::from_secs(3600),
        detail: Some("POST /Users → 503: down".into()),
        duration: Duration::from_millis(12),
    };
    assert!(store.finish_delivery(&d, "w", &fail).unwrap());
    assert!(store.claim_deliveries("w", 10, Duration::from_secs(60)).unwrap().is_empty(), "not due for an hour");
    // A change meanwhile is absorbed by the waiting failed row (no second row).
    rename(store, &t, &u.id, "bob2", vec![Enqueue::deliver("crm")]);
    let rows = all(store);
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].state, rows[0].version, rows[0].attempts), (DeliveryState::Failed, 2, 1));
    assert_eq!(rows[0].last_error.as_deref(), Some("POST /Users → 503: down"));

    // Dead, then retried by id and by target.
    assert_eq!(store.retry_deliveries(std::slice::from_ref(&d.id), None).unwrap(), 1);
    let d = store.claim_deliveries("w", 10, Duration::from_secs(60)).unwrap().remove(0);
    let dead = Finish { state: DeliveryState::Dead, detail: Some("400: bad email".into()), ..fail };
    assert!(store.finish_delivery(&d, "w", &dead).unwrap());
    assert!(store.claim_deliveries("w", 10, Duration::from_secs(60)).unwrap().is_empty());
    assert_eq!(store.retry_deliveries(&[], Some((t.as_str(), "other"))).unwrap(), 0);
    let other_tenant = store.create_tenant("globex").unwrap().id;
    assert_eq!(store.retry_deliveries(&[], Some((other_tenant.as_str(), "crm"))).unwrap(), 0, "another tenant's crm");
    assert_eq!(store.retry_deliveries(&[], Some((t.as_str(), "crm"))).unwrap(), 1);
    let again = store.claim_deliveries("w", 10, Duration::from_secs(60)).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 0);
    let (_, attempts) = store.delivery(&d.id).unwrap().unwrap();
    assert_eq!(attempts.iter().map(|a| a.outcome.as_str()).collect::<Vec<_>>(), ["retry", "dead"]);
    assert!(store.delivery("nope").unwrap().is_none());
}

fn a_change_during_a_delivery_is_delivered_after_it(store: &Store) {
    let t = store.create_tenant("acme").unwrap().id;
    let u = store.create_with(&t, user("carol"), &[Enqueue::deliver("crm")], None).unwrap();
    let held = store.claim_deliveries("w", 10, Duration::from_secs(60)).unwrap().remove(0);
    rename(store, &t, &u.id, "carol2", vec![Enqueue::deliver("crm")]);
    assert_eq!(all(store).len(), 1, "the held row absorbs the change: one live row per target and resource");
    assert!(store.claim_deliveries("x", 10, Duration::from_secs(60)).unwrap().is_empty(), "still held");
    assert!(store.finish_delivery(&held, "w", &done("delivered v1")).unwrap());
    let again = store.claim_deliveries("w", 10, Duration::from_secs(60)).unwrap();
    assert_eq!(again.len(), 1, "the attempt may have read v1, so the row is pending again");
    assert_eq!((again[0].id.as_str(), again[0].version, again[0].state), (held.id.as_str(), 2, DeliveryState::Pending));
    assert!(store.finish_delivery(&again[0], "w", &done("delivered v2")).unwrap());
    assert_eq!(all(store)[0].state, DeliveryState::Done);
    // A change after it is done starts a new row.
    rename(store, &t, &u.id, "carol3", vec![Enqueue::deliver("crm")]);
    assert_eq!(all(store).len(), 2);
}

fn links_are_written_and_replaced(store: &Store) {
    let t = store.create_tenant("acme").unwrap().id;
    let mut link = Link {
        tenant_id: t.clone(),
        target: "crm".into(),
        kind: Kind::User,
        local_id: "u1".into(),
        remote_id: Some("r-9".into()),
        delivered_version: Some(1),
        state: "active".into(),
        last_error: None,
        updated_us: 0,
        delivered_payload: None,
        account_name: None,
    };
    store.put_link(&link).unwrap();
    link.delivered_version = Some(4);
    link.state = "deactivated".into();
    store.put_link(&link).unwrap();
    let got = store.link(&t, "crm", Kind::User, "u1").unwrap().unwrap();
    assert_eq!(
        (got.remote_id.as_deref(), got.delivered_version, got.state.as_str()),
        (Some("r-9"), Some(4), "deactivated")
    );
    assert_eq!(got.delivered_payload, None, "nothing recorded yet");
    // The payload last delivered is written with the link, replaced by the next, and cleared by
    // a resync (the target may differ from it: the next update reads the copy back).
    link.delivered_payload = Some(r#"{"userName":"a@example.com","active":false}"#.into());
    store.put_link(&link).unwrap();
    let got = store.link(&t, "crm", Kind::User, "u1").unwrap().unwrap();
    assert_eq!(got.delivered_payload, link.delivered_payload);
    store.resync(&t, "crm", Kind::User, &[("u1".into(), 4)]).unwrap();
    let got = store.link(&t, "crm", Kind::User, "u1").unwrap().unwrap();
    assert_eq!((got.delivered_version, got.delivered_payload), (None, None));
    link.delivered_payload = Some(r#"{"userName":"b@example.com"}"#.into());
    store.put_link(&link).unwrap();
    let got = store.link(&t, "crm", Kind::User, "u1").unwrap().unwrap();
    assert_eq!(got.delivered_payload.as_deref(), Some(r#"{"userName":"b@example.com"}"#));
    assert!(store.link(&t, "hr", Kind::User, "u1").unwrap().is_none());
    link.target = "hr".into();
    link.remote_id = None;
    store.put_link(&link).unwrap();
    let both = store.links_of(&t, Kind::User, "u1").unwrap();
    assert_eq!(both.iter().map(|l| l.target.as_str()).collect::<Vec<_>>(), ["crm", "hr"]);

    // An account is linked to at most one user of a target: a second link to r-9 at crm is
    // refused and names what is taken; the holder is found by the account's id.
    assert_eq!(store.link_holder(&t, "crm", Kind::User, "r-9").unwrap().as_deref(), Some("u1"));
    let mut other = Link { local_id: "u2".into(), target: "crm".into(), remote_id: Some("r-9".into()), ..link.clone() };
    match store.put_link(&other) {
        Err(StoreError::Conflict { attribute }) => assert_eq!(attribute, "remote_id"),
        r => panic!("a second link to one account: {r:?}"),
    }
    assert!(store.link(&t, "crm", Kind::User, "u2").unwrap().is_none(), "nothing written");
    // The same id at another target, or for a group, is another account.
    other.target = "hr".into();
    store.put_link(&other).unwrap();
    let group = Link {
        kind: Kind::Group,
        local_id: "g1".into(),
        target: "crm".into(),
        remote_id: Some("r-9".into()),
        ..link.clone()
    };
    store.put_link(&group).unwrap();
    // A deleted link holds nothing: the account can be linked again.
    let mut first = store.link(&t, "crm", Kind::User, "u1").unwrap().unwrap();
    first.state = "deleted".into();
    store.put_link(&first).unwrap();
    assert_eq!(store.link_holder(&t, "crm", Kind::User, "r-9").unwrap(), None);
    other.target = "crm".into();
    store.put_link(&other).unwrap();
    assert_eq!(store.link_holder(&t, "crm", Kind::User, "r-9").unwrap().as_deref(), Some("u2"));
}

fn a_finish_writes_its_link_with_it_even_after_losing_the_lease(store: &Store) {
    let t = store.create_tenant("acme").unwrap().id;
    let u = store.create_with(&t, user("erin"), &[Enqueue::deliver("crm")], None).unwrap();
    let link = |remote: &str| Link {
        tenant_id: t.clone(),
        target: "crm".into(),
        kind: Kind::User,
        local_id: u.id.clone(),
        remote_id: Some(remote.into()),
        delivered_version: Some(1),
        state: "active".into(),
        last_error: None,
        updated_us: 0,
        delivered_payload: None,
        account_name: None,
    };
    let held = store.claim_deliveries("w", 10, Duration::from_millis(1)).unwrap().remove(0);
    std::thread::sleep(Duration::from_millis(5));
    let taken = store.claim_deliveries("x", 10, Duration::from_secs(60)).unwrap().remove(0);
    // w's lease expired: its finish is refused, but what it did at the target is recorded.
    assert!(!store.finish_delivery_linked(&held, "w", &done("created r-1"), Some(link("r-1"))).unwrap());
    let got = store.link(&t, "crm", Kind::User, &u.id).unwrap().unwrap();
    assert_eq!((got.remote_id.as_deref(), got.delivered_version), (Some("r-1"), Some(1)));
    assert_eq!(all(store)[0].state, DeliveryState::Pending, "x still holds the row");
    // x adopts r-1 and finishes: done and linked in one commit.
    assert!(store.finish_delivery_linked(&taken, "x", &done("adopted r-1"), Some(link("r-1"))).unwrap());
    assert_eq!(all(store)[0].state, DeliveryState::Done);
    assert_eq!(store.links_of(&t, Kind::User, &u.id).unwrap().len(), 1);
}

fn reconcile_runs_are_claimed_once_and_keep_their_counts_when_a_run_fails(store: &Store) {
    use scimgw_store::ReconcileRun;
    let t = store.create_tenant("acme").unwrap().id;
    let now = chrono::Utc::now().timestamp_micros();
    // Several dispatchers at once: one gets the run.
    let wins = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let t = t.clone();
                s.spawn(move || store.claim_reconcile(&t, "crm", &format!("d{i}"), now - 1).unwrap())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).filter(|won| *won).count()
    });
    assert_eq!(wins, 1);
    assert!(!store.claim_reconcile(&t, "crm", "late", now - 1).unwrap(), "not due again yet");
    let claimed = store.reconcile_runs().unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(claimed[0].running_owner.is_some() && claimed[0].finished_us.is_none());

    let done = ReconcileRun {
        tenant_id: t.clone(),
        target: "crm".into(),
        started_us: claimed[0].started_us,
        running_owner: None,
        finished_us: Some(now + 5),
        triggered_by: "schedule".into(),
        mode: "list".into(),
        checked: 10,
        in_sync: 7,
        drifted: 1,
        missing: 1,
        orphans: 1,
        unlinked: 0,
        repairs: 0,
        error: None,
    };
    store.finish_reconcile(&done).unwrap();
    assert_eq!(store.reconcile_runs().unwrap(), vec![done.clone()]);
    // A failed run records its error and keeps the counts of the last good one.
    let failed = ReconcileRun {
        error: Some("could not connect".into()),
        drifted: 0,
        triggered_by: "cli".into(),
        ..done.clone()
    };
    store.finish_reconcile(&failed).unwrap();
    let after = store.reconcile_runs().unwrap().remove(0);
    assert_eq!(
        (after.drifted, after.error.as_deref(), after.triggered_by.as_str()),
        (1, Some("could not connect"), "cli")
    );
    // A run of another target with no row yet is inserted.
    store.finish_reconcile(&ReconcileRun { target: "hr".into(), ..done }).unwrap();
    assert_eq!(store.reconcile_runs().unwrap().len(), 2);
    assert!(store.claim_reconcile(&t, "crm", "next", i64::MAX).unwrap(), "due once its interval is over");
}

fn repairs_are_deliveries_with_audit_events(store: &Store) {
    use scimgw_store::{ORPHAN_PREFIX, Repair};
    let t = store.create_tenant("acme").unwrap().id;
    let a = store.create(&t, user("a")).unwrap();
    let b = store.create(&t, user("b")).unwrap();
    for (id, remote, state) in [(&a.id, "r-a", "active"), (&b.id, "r-b", "deactivated")] {
        store
            .put_link(&Link {
                tenant_id: t.clone(),
                target: "crm".into(),
                kind: Kind::User,
                local_id: id.clone(),
                remote_id: Some(remote.into()),
                delivered_version: Some(1),
                state: state.into(),
                last_error: None,
                updated_us: 0,
                delivered_payload: None,
                account_name: None,
            })
            .unwrap();
    }
    let repairs = [
        Repair::Resend { local_id: a.id.clone(), version: 1, relink: true },
        Repair::Deprovision { local_id: b.id.clone(), version: 1 },
        Repair::DeactivateOrphan { remote_id: "r-x".into() },
    ];
    assert_eq!(store.queue_repairs(&t, "crm", "run-1", &repairs).unwrap(), 3);
    let la = store.link(&t, "crm", Kind::User, &a.id).unwrap().unwrap();
    assert_eq!((la.remote_id, la.delivered_version), (None, None), "relinked: looked up again");
    let lb = store.link(&t, "crm", Kind::User, &b.id).unwrap().unwrap();
    assert_eq!((lb.state.as_str(), lb.remote_id.as_deref()), ("active", Some("r-b")), "deprovisioned again");
    let orphan = format!("{ORPHAN_PREFIX}r-x");
    let lx = store.link(&t, "crm", Kind::User, &orphan).unwrap().unwrap();
    assert_eq!((lx.state.as_str(), lx.remote_id.as_deref()), ("active", Some("r-x")));
    let queued: Vec<String> = all(store).into_iter().map(|d| d.resource_id).collect();
    for id in [&a.id, &b.id, &orphan] {
        assert!(queued.contains(id), "{id} queued: {queued:?}");
    }
    let events = store.audit_events(&t, None, 100).unwrap();
    assert_eq!(events.len(), 3);
    assert!(events.iter().all(|e| e.key_id == "reconcile" && e.request_id.as_deref() == Some("run-1")));
}

fn audit(operation: &'static str) -> Option<scimgw_store::Audit> {
    Some(scimgw_store::Audit { key_id: "k1".into(), request_id: Some("r".into()), operation })
}

/// A refused write records nothing with it: no delivery, no audit event (on PostgreSQL the
/// change, its deliveries and its event are one statement; on SQLite one transaction).
fn a_write_refused_for_a_taken_user_name_records_no_delivery_or_event(store: &Store) {
    let t = store.create_tenant("acme").unwrap().id;
    let targets = vec![Enqueue::deliver("crm"), Enqueue::skip("hr", "no work email")];
    store.create_with(&t, user("alice"), &targets, audit("create")).unwrap();
    let bob = store.create_with(&t, user("bob"), &targets, audit("create")).unwrap();
    let (rows, events) = (all(store).len(), store.audit_events(&t, None, 100).unwrap().len());
    assert_eq!((rows, events), (4, 2));

    let taken = store.create_with(&t, user("ALICE"), &targets, audit("create"));
    assert!(matches!(taken, Err(scimgw_store::StoreError::Conflict { attribute: "userName" })), "{taken:?}");
    let body = obj(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "Alice"}));
    let renamed = store.update_with(&t, Kind::User, &bob.id, None, false, audit("patch"), move |_| {
        Ok((Change::Update { body: body.clone(), members: Vec::new() }, vec![Enqueue::deliver("erp")]))
    });
    assert!(matches!(renamed, Err(scimgw_store::StoreError::Conflict { attribute: "userName" })), "{renamed:?}");
    assert_eq!(all(store).len(), rows, "no delivery of a refused write");
    assert_eq!(store.audit_events(&t, None, 100).unwrap().len(), events, "no event of a refused write");
    assert_eq!(store.get(&t, Kind::User, &bob.id, false).unwrap().unwrap().version, 1);
}

/// An account name a target derives (JumpCloud's username) held by another user's account there:
/// the change is refused with 409 naming the target, the name and the holder — or that delivery
/// alone is skipped, saying the same — on the sync and the async (batched) paths alike.
fn an_account_name_another_user_holds_at_a_target_refuses_or_skips_the_change(store: &Store) {
    let t = store.create_tenant("acme").unwrap().id;
    let anna = store.create_with(&t, user("anna@contoso.example"), &[Enqueue::deliver("jc")], None).unwrap();
    store
        .put_link(&Link {
            tenant_id: t.clone(),
            target: "jc".into(),
            kind: Kind::User,
            local_id: anna.id.clone(),
            remote_id: Some("jc-1".into()),
            delivered_version: Some(1),
            state: "active".into(),
            last_error: None,
            updated_us: 0,
            delivered_payload: Some(r#"{"userName":"anna","active":true}"#.into()),
            account_name: Some("Anna".into()),
        })
        .unwrap();
    let rows = all(store).len();
    let refused = |r: Result<scimgw_store::Resource, StoreError>| match r {
        Err(StoreError::Rejected(e)) => {
            assert_eq!((e.status, e.scim_type.map(|t| t.as_str())), (409, Some("uniqueness")), "{e:?}");
            assert!(
                e.detail.contains("jc:") && e.detail.contains("\"anna\"") && e.detail.contains(&anna.id),
                "{}",
                e.detail
            );
        }
        r => panic!("expected a 409, got {r:?}"),
    };
    // Another person whose name derives to "Anna" at jc: refused, nothing written.
    let keyed =
        |key: &str, skip: bool| vec![Enqueue::deliver("crm"), Enqueue::deliver("jc").with_account_key(key, skip)];
    refused(store.create_with(&t, user("anna@fabrikam.example"), &keyed("Anna", false), None));
    let rt = runtime();
    refused(rt.block_on(store.create_with_async(&t, user("anna@fabrikam.example"), &keyed("anna", false), None)));
    assert_eq!(all(store).len(), rows, "nothing recorded for a refused change");
    assert!(store.get(&t, Kind::User, &anna.id, false).unwrap().is_some());
    // Skipping instead: the user is created, crm gets its delivery, jc a skip saying why.
    let fab = store.create_with(&t, user("anna@fabrikam.example"), &keyed("anna", true), None).unwrap();
    let of_fab: Vec<_> = all(store).into_iter().filter(|d| d.resource_id == fab.id).collect();
    let jc = of_fab.iter().find(|d| d.target == "jc").unwrap();
    assert_eq!(jc.state, DeliveryState::Skipped);
    assert!(jc.last_error.as_deref().unwrap_or("").contains(&anna.id), "{jc:?}");
    assert_eq!(of_fab.iter().find(|d| d.target == "crm").unwrap().state, DeliveryState::Pending);
    // An update to a name someone holds is refused too (sync and async); Anna keeps her own.
    let update = |key: &'static str| {
        move |c: &scimgw_store::Resource| {
            let mut body = c.body.clone();
            body.insert("title".into(), json!(key));
            Ok((
                Change::Update { body, members: Vec::new() },
                vec![Enqueue::deliver("jc").with_account_key(key, false)],
            ))
        }
    };
    let as_resource = |r: Result<Option<scimgw_store::Updated>, StoreError>| r.map(|u| u.unwrap().resource);
    refused(as_resource(store.update_with(&t, Kind::User, &fab.id, None, false, None, update("anna"))));
    refused(as_resource(rt.block_on(store.update_with_async(
        &t,
        Kind::User,
        &fab.id,
        None,
        false,
        None,
        update("anna"),
    ))));
    store.update_with(&t, Kind::User, &anna.id, None, false, None, update("anna")).unwrap().unwrap();
    rt.block_on(store.update_with_async(&t, Kind::User, &fab.id, None, false, None, update("anna.f")))
        .unwrap()
        .unwrap();
    // Once Anna's account is deleted at jc, the name is free.
    let mut gone = store.link(&t, "jc", Kind::User, &anna.id).unwrap().unwrap();
    gone.state = "deleted".into();
    store.put_link(&gone).unwrap();
    store.update_with(&t, Kind::User, &fab.id, None, false, None, update("anna")).unwrap().unwrap();
}

/// Concurrent changes of one user: every one is kept, each has its event, and each target still
/// has one live delivery, at the last version (on PostgreSQL the races are lost and read again).
fn concurrent_changes_of_one_user_keep_one_live_delivery_per_target(store: &Store) {
    let t = store.create_tenant("acme").unwrap().id;
    let targets = vec![Enqueue::deliver("crm"), Enqueue::deliver("hr")];
    let u = store.create_with(&t, user("busy"), &targets, audit("create")).unwrap();
    std::thread::scope(|s| {
        for i in 0..20 {
            let (store, t, id, targets) = (store.clone(), t.clone(), u.id.clone(), targets.clone());
            s.spawn(move || {
                store
                    .update_with(&t, Kind::User, &id, None, false, audit("patch"), move |current| {
                        let mut body = current.body.clone();
                        body.insert(format!("x{i}"), json!(i));
                        Ok((Change::Update { body, members: Vec::new() }, targets.clone()))
                    })
                    .unwrap()
                    .unwrap();
            });
        }
    });
    let after = store.get(&t, Kind::User, &u.id, false).unwrap().unwrap();
    assert_eq!(after.version, 21);
    assert_eq!(after.body.keys().filter(|k| k.starts_with('x')).count(), 20, "every change kept");
    let rows = all(store);
    assert_eq!(rows.len(), 2, "one live row per target: {rows:?}");
    assert!(rows.iter().all(|d| d.version == 21 && d.state == DeliveryState::Pending));
    let events = store.audit_events(&t, None, 100).unwrap();
    let mut versions: Vec<i64> = events.iter().map(|e| e.version).collect();
    versions.sort_unstable();
    assert_eq!(versions, (1..=21).collect::<Vec<i64>>(), "one event per version");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap()
}

fn named(name: &str) -> Map<String, Value> {
    obj(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name}))
}

/// The async paths the gateway takes (on PostgreSQL, the batch thread of `pg_batch.rs`; on SQLite
/// the group-commit writer), many at once: creates whose userNames collide within a batch, an
/// update to a taken userName among good ones, and updates racing on one user. Every write gets
/// its own answer and records its deliveries and event with it, or nothing.
fn concurrent_async_writes_are_each_all_or_nothing(store: &Store) {
    let t = store.create_tenant("acme").unwrap().id;
    let targets = vec![Enqueue::deliver("crm"), Enqueue::skip("hr", "no work email")];
    let rt = runtime();
    let before = store.write_batches();

    // 10 creates at once, two of them the same userName but for case.
    let names = ["dup", "DUP", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8"];
    let results = rt.block_on(async {
        let tasks: Vec<_> = names
            .iter()
            .map(|name| {
                let (store, t, targets, new) = (store.clone(), t.clone(), targets.clone(), user(name));
                tokio::spawn(async move { store.create_with_async(&t, new, &targets, audit("create")).await })
            })
            .collect();
        let mut out = Vec::new();
        for task in tasks {
            out.push(task.await.unwrap());
        }
        out
    });
    let created: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    let conflicts = results
        .iter()
        .filter(|r| matches!(r, Err(scimgw_store::StoreError::Conflict { attribute: "userName" })))
        .count();
    assert_eq!((created.len(), conflicts), (9, 1), "{results:?}");
    for u in &created {
        assert_eq!(store.get(&t, Kind::User, &u.id, false).unwrap().as_ref(), Some(*u));
    }
    assert_eq!(all(store).len(), 18, "two deliveries per user created, none for the refused one");
    assert_eq!(store.audit_events(&t, None, 100).unwrap().len(), 9);

    // 8 updates at once: one renames to a taken userName (refused), the others succeed.
    let ids: Vec<String> = created.iter().map(|u| u.id.clone()).collect();
    let results = rt.block_on(async {
        let tasks: Vec<_> = ids[1..]
            .iter()
            .enumerate()
            .map(|(i, id)| {
                // ids[0] (dup or DUP) is not among these: its name stays taken.
                let name = if i == 3 { "Dup".to_owned() } else { format!("renamed{i}") };
                let (store, t, id, targets, body) =
                    (store.clone(), t.clone(), id.clone(), targets.clone(), named(&name));
                tokio::spawn(async move {
                    store
                        .update_with_async(&t, Kind::User, &id, None, false, audit("patch"), move |_| {
                            Ok((Change::Update { body: body.clone(), members: Vec::new() }, targets.clone()))
                        })
                        .await
                })
            })
            .collect();
        let mut out = Vec::new();
        for task in tasks {
            out.push(task.await.unwrap());
        }
        out
    });
    for (i, r) in results.iter().enumerate() {
        match i {
            3 => assert!(matches!(r, Err(scimgw_store::StoreError::Conflict { attribute: "userName" })), "{r:?}"),
            _ => assert_eq!(r.as_ref().unwrap().as_ref().unwrap().resource.version, 2, "{r:?}"),
        }
    }
    assert_eq!(store.get(&t, Kind::User, &ids[4], false).unwrap().unwrap().version, 1, "the refused one is unchanged");
    assert_eq!(store.audit_events(&t, None, 100).unwrap().len(), 9 + 7);
    let live: Vec<_> = all(store).into_iter().filter(|d| d.state == DeliveryState::Pending).collect();
    assert_eq!(live.len(), 9, "one live row per user at crm, the updates absorbed into it");
    assert_eq!(live.iter().filter(|d| d.version == 2).count(), 7);

    // 20 updates of one user at once: every one kept, one event each, one live delivery.
    let busy = ids[0].clone();
    rt.block_on(async {
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let (store, t, id, targets) = (store.clone(), t.clone(), busy.clone(), targets.clone());
                tokio::spawn(async move {
                    store
                        .update_with_async(&t, Kind::User, &id, None, false, audit("patch"), move |current| {
                            let mut body = current.body.clone();
                            body.insert(format!("x{i}"), json!(i));
                            Ok((Change::Update { body, members: Vec::new() }, targets.clone()))
                        })
                        .await
                        .unwrap()
                        .unwrap()
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    let after = store.get(&t, Kind::User, &busy, false).unwrap().unwrap();
    assert_eq!(after.version, 21);
    assert_eq!(after.body.keys().filter(|k| k.starts_with('x')).count(), 20, "every change kept");
    let busy_live: Vec<_> =
        all(store).into_iter().filter(|d| d.resource_id == busy && d.state == DeliveryState::Pending).collect();
    assert_eq!(busy_live.len(), 1);
    assert_eq!(busy_live[0].version, 21);
    let events = store.audit_events(&t, None, 100).unwrap();
    let mut versions: Vec<i64> = events.iter().filter(|e| e.resource_id == busy).map(|e| e.version).collect();
    versions.sort_unstable();
    assert_eq!(versions, (1..=21).collect::<Vec<i64>>(), "one event per version");

    // The writes were batched: fewer batches than writes.
    let (b0, w0) = before.unwrap_or((0, 0));
    let (b1, w1) = store.write_batches().expect("group commit is on by default on both engines");
    assert!(w1 - w0 > b1 - b0, "{} writes in {} batches", w1 - w0, b1 - b0);
}

/// A group's change at a target whose scope reads `groups`: a delivery of each user it moves in
/// or out, and only those; each of them gets a new version (its `groups` changed). A rename
/// queues one fan-out row instead of a delivery per member; a delete moves every member out.
fn a_membership_change_queues_the_users_it_moves_and_only_them(store: &Store) {
    use scimgw_store::{Member, MembersChange};
    let t = store.create_tenant("acme").unwrap().id;
    let ids: Vec<String> = (0..120).map(|i| store.create(&t, user(&format!("u{i}"))).unwrap().id).collect();
    let member = |id: &String| Member { value: id.clone(), r#type: None, display: None };
    let routes =
        vec![Enqueue::deliver("groups-app"), Enqueue::moved_members("sales"), Enqueue::members_if_renamed("sales")];
    let of_sales = |store: &Store| -> Vec<scimgw_store::Delivery> {
        all(store).into_iter().filter(|d| d.target == "sales").collect()
    };
    let body =
        |name: &str| obj(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name}));
    let g = store
        .create_with(
            &t,
            NewResource { kind: Kind::Group, body: body("Sales"), members: ids[..100].iter().map(member).collect() },
            &routes,
            None,
        )
        .unwrap();
    assert_eq!(of_sales(store).len(), 100, "each member moved in");
    assert!(of_sales(store).iter().all(|d| d.kind == Kind::User && d.version == 2 && !d.fan_out));
    assert_eq!(all(store).iter().filter(|d| d.target == "groups-app").count(), 1, "the group's own delivery");
    // Deliver them all, so that what follows counts new rows.
    for d in store.claim_deliveries("me", 1000, Duration::from_secs(30)).unwrap() {
        assert!(store.finish_delivery(&d, "me", &done("ok")).unwrap());
    }

    let change = |changes: Vec<MembersChange>, name: &str| {
        let (routes, body) = (routes.clone(), body(name));
        store
            .update_with(&t, Kind::Group, &g.id, None, false, None, move |_| {
                Ok((Change::Update { body: body.clone(), members: changes.clone() }, routes.clone()))
            })
            .unwrap()
            .unwrap()
    };
    // Adding 20 (5 of them members already) and removing 3: 18 users moved.
    let mut add: Vec<Member> = ids[95..115].iter().map(member).collect();
    add.push(member(&"not-a-user".to_owned()));
    change(vec![MembersChange::Add(add), MembersChange::Remove(ids[..3].to_vec())], "Sales");
    let live: Vec<_> = of_sales(store).into_iter().filter(|d| d.state == DeliveryState::Pending).collect();
    let mut moved: Vec<&str> = live.iter().map(|d| d.resource_id.as_str()).collect();
    moved.sort_unstable();
    let mut want: Vec<&str> = ids[..3].iter().chain(&ids[100..115]).map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(moved, want, "exactly the users moved in or out");
    let bob = store.get(&t, Kind::User, &ids[100], false).unwrap().unwrap();
    assert_eq!(bob.version, 2, "a user's version moves with its groups");
    assert_eq!(store.get(&t, Kind::User, &ids[50], false).unwrap().unwrap().version, 2, "an unmoved member's does not");
    assert_eq!(store.groups_of(&t, &ids[100]).unwrap()[0].display.as_deref(), Some("Sales"));

    // A rename: one fan-out row, no delivery per member.
    let before = of_sales(store).len();
    change(Vec::new(), "Sales EMEA");
    let rows = of_sales(store);
    assert_eq!(rows.len(), before + 1);
    assert!(rows.iter().any(|d| d.fan_out && d.resource_id == g.id && d.state == DeliveryState::Pending));

    // The fan-out's pages: a delivery of each user member at its current version, the version
    // left alone — unless that user's delivery is running, which must run again.
    for d in store.claim_deliveries("me", 1000, Duration::from_secs(30)).unwrap() {
        assert!(store.finish_delivery(&d, "me", &done("ok")).unwrap());
    }
    let rt = runtime();
    let page = rt.block_on(store.queue_members(&t, &g.id, "sales", "", 50)).unwrap().unwrap();
    assert_eq!(page.0, 50);
    let pending: Vec<_> = of_sales(store).into_iter().filter(|d| d.state == DeliveryState::Pending).collect();
    assert_eq!(pending.len(), 50);
    assert_eq!(store.get(&t, Kind::User, &ids[3], false).unwrap().unwrap().version, 2, "not bumped");
    let running = store.claim_deliveries("me", 1, Duration::from_secs(30)).unwrap().remove(0);
    let again = rt.block_on(store.queue_members(&t, &g.id, "sales", "", 50)).unwrap().unwrap();
    assert_eq!(again, page, "a page run again is the same page");
    let bumped = store.get(&t, Kind::User, &running.resource_id, false).unwrap().unwrap();
    assert_eq!(bumped.version, running.version + 1, "a running delivery's user is bumped");
    assert!(store.finish_delivery(&running, "me", &done("read the old name")).unwrap());
    let row = all(store).into_iter().find(|d| d.id == running.id).unwrap();
    assert_eq!(row.state, DeliveryState::Pending, "and its row runs again");
    let rest = rt.block_on(store.queue_members(&t, &g.id, "sales", &page.1, 500)).unwrap().unwrap();
    assert_eq!(page.0 + rest.0, 112, "every user member, not the id that names no user");
    assert!(rt.block_on(store.queue_members(&t, &g.id, "sales", &rest.1, 500)).unwrap().is_none());

    // Delete: every member moves out (the live rows absorb it).
    assert!(store.delete_with(&t, Kind::Group, &g.id, None, &routes, &[], None).unwrap());
    let live = of_sales(store).into_iter().filter(|d| d.state == DeliveryState::Pending && !d.fan_out).count();
    assert_eq!(live, 112, "the 112 members left: one live row each");
    assert!(store.groups_of(&t, &ids[100]).unwrap().is_empty());
    assert!(rt.block_on(store.queue_members(&t, &g.id, "sales", "", 500)).unwrap().is_none(), "a deleted group");
}

/// A large group's delete moves its members out a page at a time (each page a short write of its
/// own) and ends with the group gone: every member once, with a new version and one delivery.
fn a_large_groups_delete_moves_every_member_out_in_pages(store: &Store) {
    use scimgw_store::Member;
    let t = store.create_tenant("acme").unwrap().id;
    let ids: Vec<String> = (0..1_234).map(|i| store.create(&t, user(&format!("u{i}"))).unwrap().id).collect();
    let members = ids.iter().map(|id| Member { value: id.clone(), r#type: None, display: None }).collect();
    let body = obj(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Big"}));
    let g = store.create(&t, NewResource { kind: Kind::Group, body, members }).unwrap();
    let routes = vec![Enqueue::deliver("groups-app"), Enqueue::moved_members("sales")];
    // A stale If-Match is still refused, before any page.
    let stale = store.delete_with(&t, Kind::Group, &g.id, Some(g.version + 7), &routes, &[], None);
    assert!(matches!(stale, Err(StoreError::VersionMismatch { .. })), "{stale:?}");
    assert!(all(store).is_empty());
    assert!(store.delete_with(&t, Kind::Group, &g.id, Some(g.version), &routes, &[], None).unwrap());
    assert!(store.get(&t, Kind::Group, &g.id, false).unwrap().is_none());
    let rows = store.deliveries(&DeliveryFilter { limit: 10_000, ..DeliveryFilter::default() }).unwrap();
    let users: Vec<_> = rows.iter().filter(|d| d.target == "sales").collect();
    assert_eq!(users.len(), 1_234, "each member once");
    assert!(users.iter().all(|d| d.version == 3 && d.kind == Kind::User), "joined (2), then left (3)");
    assert_eq!(rows.iter().filter(|d| d.target == "groups-app").count(), 1, "the group's delete");
    assert!(store.groups_of(&t, &ids[1_000]).unwrap().is_empty());
    assert!(!store.delete_with(&t, Kind::Group, &g.id, None, &routes, &[], None).unwrap(), "gone");
}

both_engines!(
    a_large_groups_delete_moves_every_member_out_in_pages,
    a_membership_change_queues_the_users_it_moves_and_only_them,
    concurrent_async_writes_are_each_all_or_nothing,
    a_write_refused_for_a_taken_user_name_records_no_delivery_or_event,
    concurrent_changes_of_one_user_keep_one_live_delivery_per_target,
    reconcile_runs_are_claimed_once_and_keep_their_counts_when_a_run_fails,
    repairs_are_deliveries_with_audit_events,
    a_finish_writes_its_link_with_it_even_after_losing_the_lease,
    deliveries_commit_with_the_change_and_coalesce_while_waiting,
    leases_keep_rows_from_two_dispatchers_and_expire,
    failures_back_off_then_die_and_retry_requeues,
    a_change_during_a_delivery_is_delivered_after_it,
    links_are_written_and_replaced,
    an_account_name_another_user_holds_at_a_target_refuses_or_skips_the_change,
);
