//! Reconciliation (issue 9) against vendor simulators, on both engines: users are changed,
//! deactivated, removed and invented inside the app (as its admins would, outside its API), and
//! each finding must be reported precisely; `--repair` must converge the app through the outbox
//! (the request log shows ordinary deliveries, within the target's rate limit), after which a
//! second run finds nothing.
//!
//! `reconcile_of_many_users` measures a large run: `SCIMGW_RECONCILE_USERS` users (default 2,000;
//! the figure in bench/RESULTS.md is 10,000, release build).

#![cfg(test)]

use std::time::{Duration, Instant};

use scimgw_delivery::reconcile::{FindingKind, Options, Quiet, Report, reconcile};
use scimgw_e2e::both_backends_delivery;
use scimgw_e2e::delivery::{DeliveryApp, FAST_RETRY, TargetSpec, busiest_second};
use scimgw_store::{DeliveryState, Kind, Link, NewResource};
use serde_json::{Value, json};
use vendor_sim::{Faults, InjectedError, Scope, Sim};

const RATE: u32 = 5;

fn limited() -> String {
    format!("{FAST_RETRY}rate_per_sec = {RATE}\nburst = 1\n")
}

fn user(name: &str, given: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": name,
        "active": true,
        "name": {"givenName": given, "familyName": "Smith"},
        "emails": [{"value": name, "type": "work", "primary": true}]
    })
}

async fn run(app: &DeliveryApp, target: &str, options: Options) -> Report {
    let set = app.targets.snapshot();
    let t = set.get(&app.tenant_id, target).expect("the target is configured");
    reconcile(app.app.store(), &t, &app.schemas, &app.tenant_id, &options, &Quiet).await.expect("the run finishes")
}

fn repair_all() -> Options {
    Options { repair: true, deactivate_orphans: true, ..Options::default() }
}

/// The remote id of a user at the (only) target.
fn remote(app: &DeliveryApp, id: &str) -> String {
    let target = app.targets.snapshot().iter().next().map(|(_, t)| t.name().to_owned()).unwrap_or_default();
    let link = app.app.store().link(&app.tenant_id, &target, Kind::User, id).unwrap().expect("linked");
    link.remote_id.expect("a remote id")
}

fn kinds(report: &Report) -> Vec<(FindingKind, Option<String>)> {
    let mut out: Vec<_> = report.findings.iter().map(|f| (f.kind, f.user_name.clone())).collect();
    out.sort_by(|a, b| (a.0.as_str(), &a.1).cmp(&(b.0.as_str(), &b.1)));
    out
}

/// Creates `names` through the SCIM API and waits until the app has them all.
async fn provision(app: &DeliveryApp, names: &[&str]) -> Vec<String> {
    let mut ids = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let r = app.app.post(&app.token, "/Users", &user(name, &format!("Given{i}"))).await;
        assert_eq!(r.status, 201, "{}", r.text);
        ids.push(r.id());
    }
    assert!(app.settled(Duration::from_secs(30)).await, "the first deliveries did not settle");
    ids
}

/// Everything drifts at once in a listable app; one repair run fixes all of it.
async fn every_kind_of_finding_is_reported_and_repaired(app: DeliveryApp) {
    let sim = app.sim();
    let names = ["u0@example.com", "u1@example.com", "u2@example.com", "u3@example.com", "u4@example.com"];
    let ids = provision(&app, &names).await;
    assert_eq!(sim.users().len(), 5);
    let clean = run(&app, "crm", Options::default()).await;
    assert!(clean.in_sync(), "a fresh app is in sync: {:?}", clean.findings);
    assert_eq!((clean.in_sync, clean.users, clean.vendor_accounts), (5, 5, Some(5)));

    // A user whose first delivery died (its lookup was refused), and whose account an admin then
    // made by hand: an unlinked match.
    sim.set_faults(Faults {
        fail_next: 1,
        error: InjectedError::permanent("lookups are off today"),
        scope: Scope { methods: vec!["GET".into()], path_prefix: None },
        ..Faults::default()
    })
    .unwrap();
    let late = app.app.post(&app.token, "/Users", &user("u5@example.com", "Given5")).await;
    assert_eq!(late.status, 201);
    assert!(app.settled(Duration::from_secs(30)).await);
    sim.clear_faults().unwrap();
    let by_hand = sim.insert_user(user("u5@example.com", "Given5")).unwrap();
    // A deleted user (deactivated at the app by default) whom someone re-activated there.
    assert_eq!(app.app.delete(&app.token, &format!("/Users/{}", ids[3])).await.status, 204);
    assert!(app.settled(Duration::from_secs(30)).await);
    let u3 = remote(&app, &ids[3]);
    assert_eq!(sim.user(&u3).unwrap()["active"], json!(false));

    // Changes made inside the app.
    sim.edit_user(&remote(&app, &ids[0]), json!([{"op": "replace", "path": "name.givenName", "value": "Changed"}]))
        .unwrap();
    sim.edit_user(&remote(&app, &ids[1]), json!([{"op": "replace", "path": "active", "value": false}])).unwrap();
    sim.remove_user(&remote(&app, &ids[2])).unwrap();
    sim.edit_user(&u3, json!([{"op": "replace", "path": "active", "value": true}])).unwrap();
    let stranger = sim.insert_user(user("stranger@example.com", "Nobody")).unwrap();
    sim.clear_requests();

    let found = run(&app, "crm", Options::default()).await;
    assert_eq!(
        kinds(&found),
        [
            (FindingKind::Drift, Some("u0@example.com".into())),
            (FindingKind::Drift, Some("u1@example.com".into())),
            (FindingKind::Missing, Some("u2@example.com".into())),
            (FindingKind::Orphan, Some("stranger@example.com".into())),
            (FindingKind::Orphan, Some("u3@example.com".into())),
            (FindingKind::Unlinked, Some("u5@example.com".into())),
        ],
        "{:#?}",
        found.findings
    );
    assert_eq!((found.drifted, found.missing, found.orphans, found.unlinked, found.in_sync), (2, 1, 2, 1, 1));
    let by_name = |n: &str| found.findings.iter().find(|f| f.user_name.as_deref() == Some(n)).unwrap();
    let u0 = by_name("u0@example.com");
    assert_eq!(u0.attributes, ["name.givenName"]);
    assert_eq!((&u0.differences[0].expected, &u0.differences[0].found), (&json!("Given0"), &json!("Changed")));
    assert_eq!(by_name("u1@example.com").attributes, ["active"]);
    assert_eq!(by_name("u5@example.com").remote_id.as_deref(), by_hand["id"].as_str());
    assert_eq!(by_name("u5@example.com").user_id.as_deref(), Some(late.id().as_str()));
    assert_eq!(by_name("stranger@example.com").user_id, None);
    assert_eq!(by_name("u3@example.com").user_id.as_deref(), Some(ids[3].as_str()));
    assert!(found.findings.iter().all(|f| !f.repair_queued));
    // Reporting reads and never writes.
    assert!(sim.requests().iter().all(|r| r.method == "GET"), "{:?}", sim.requests());
    let report_json = serde_json::to_string(&found).unwrap();
    assert!(report_json.contains("Changed"), "the JSON report carries the values");

    // Repair: queued deliveries, sent by the dispatcher.
    sim.clear_requests();
    let repaired = run(&app, "crm", repair_all()).await;
    assert_eq!(repaired.repairs_queued, 6);
    assert!(repaired.findings.iter().all(|f| f.repair_queued), "{:#?}", repaired.findings);
    assert!(app.settled(Duration::from_secs(30)).await, "the repairs did not settle");
    let after = run(&app, "crm", Options::default()).await;
    assert!(after.in_sync(), "{:#?}", after.findings);
    assert_eq!(after.in_sync, 7, "five users, the deleted one's inactive account, the stranger's inactive one");

    // The app, as it now stands.
    let u = |n: &str| sim.user_by_username(n).unwrap_or_else(|| panic!("{n} is at the app"));
    assert_eq!(u("u0@example.com")["name"]["givenName"], json!("Given0"));
    assert_eq!(u("u1@example.com")["active"], json!(true));
    assert_eq!(u("u2@example.com")["active"], json!(true));
    assert_eq!(u("u3@example.com")["active"], json!(false));
    assert_eq!(u("stranger@example.com")["active"], json!(false), "deactivated, not deleted");
    assert_eq!(u("stranger@example.com")["id"], stranger["id"]);
    assert_eq!(sim.users().len(), 7, "u5 was adopted, not created twice: {:#?}", sim.users());
    assert_eq!(remote(&app, &late.id()), by_hand["id"].as_str().unwrap());

    // Through the delivery path: the writes are the dispatcher's, paced by the target's limit,
    // with deliveries and audit events to show for them.
    let log = sim.requests();
    let writes: Vec<String> =
        log.iter().filter(|r| r.method != "GET").map(|r| format!("{} {}", r.method, r.path)).collect();
    // Drift is repaired by a PATCH of the difference from the copy read back (u0, u1); u5's
    // hand-made account already holds what it should, so adopting it sends nothing.
    assert_eq!(writes.len(), 5, "{writes:#?}");
    assert_eq!(writes.iter().filter(|w| w.starts_with("PUT")).count(), 0, "{writes:#?}");
    assert_eq!(writes.iter().filter(|w| w.starts_with("POST")).count(), 1, "u2: {writes:#?}");
    assert_eq!(writes.iter().filter(|w| w.starts_with("PATCH")).count(), 4, "u0, u1, u3, stranger: {writes:#?}");
    let u0_path = format!("/Users/{}", remote(&app, &ids[0]));
    let u0_patch = log.iter().find(|r| r.method == "PATCH" && r.path.ends_with(&u0_path)).unwrap();
    assert_eq!(
        u0_patch.json().unwrap()["Operations"],
        json!([{"op": "replace", "path": "name.givenName", "value": "Given0"}]),
        "only the drifted attribute"
    );
    let busiest = busiest_second(&log);
    assert!(busiest <= RATE as usize + 1, "{busiest} requests in one second at rate_per_sec = {RATE}");
    let audit = app.app.store().audit_events(&app.tenant_id, None, 1000).unwrap();
    let by_reconcile: Vec<_> = audit.iter().filter(|e| e.key_id == "reconcile").collect();
    assert_eq!(by_reconcile.len(), 6);
    assert!(by_reconcile.iter().all(|e| e.request_id.as_deref() == Some(repaired.run_id.as_str())));
    assert!(by_reconcile.iter().any(|e| e.operation == "reconcile-deactivate-orphan"));
}

fn crm_limited() -> Vec<TargetSpec> {
    vec![TargetSpec::new("crm", &limited())]
}

both_backends_delivery!(every_kind_of_finding_is_reported_and_repaired, super::crm_limited());

/// A vendor read by lookups (Jostle documents `userName eq` and reads by id, not listing):
/// drift, missing and deprovisioned-but-active are found; accounts nobody knows cannot be.
async fn a_vendor_that_cannot_list_is_reconciled_by_lookups(app: DeliveryApp) {
    let sim = app.sim();
    let ids = provision(&app, &["a@example.com", "b@example.com", "c@example.com", "d@example.com"]).await;
    assert_eq!(app.app.delete(&app.token, &format!("/Users/{}", ids[3])).await.status, 204);
    assert!(app.settled(Duration::from_secs(30)).await);
    sim.edit_user(&remote(&app, &ids[0]), json!([{"op": "replace", "path": "name.familyName", "value": "Jones"}]))
        .unwrap();
    sim.remove_user(&remote(&app, &ids[1])).unwrap();
    sim.edit_user(&remote(&app, &ids[3]), json!([{"op": "replace", "path": "active", "value": true}])).unwrap();
    sim.insert_user(user("nobody@example.com", "Nobody")).unwrap();
    sim.clear_requests();

    let found = run(&app, "jostle", Options::default()).await;
    assert!(!found.orphan_search);
    assert_eq!(found.vendor_accounts, None);
    assert_eq!(
        kinds(&found),
        [
            (FindingKind::Drift, Some("a@example.com".into())),
            (FindingKind::Missing, Some("b@example.com".into())),
            (FindingKind::Orphan, Some("d@example.com".into())),
        ],
        "{:#?}",
        found.findings
    );
    assert_eq!(found.findings[0].attributes, ["name.familyName"]);
    // One read by id per linked account, one lookup by userName for the one not found.
    let log = sim.requests();
    assert!(log.iter().all(|r| r.method == "GET" && r.status == Some(200) || r.status == Some(404)), "{log:?}");
    assert!(!log.iter().any(|r| r.query.is_empty() && r.path.ends_with("/Users")), "never a listing: {log:?}");
    assert_eq!(log.iter().filter(|r| r.query.contains("filter")).count(), 1, "{log:?}");

    let repaired = run(&app, "jostle", repair_all()).await;
    assert_eq!(repaired.repairs_queued, 3);
    assert!(app.settled(Duration::from_secs(30)).await);
    let after = run(&app, "jostle", Options::default()).await;
    assert!(after.in_sync(), "{:#?}", after.findings);
    assert_eq!(sim.user_by_username("a@example.com").unwrap()["name"]["familyName"], json!("Smith"));
    assert_eq!(sim.user_by_username("d@example.com").unwrap()["active"], json!(false));
    assert_eq!(sim.user_by_username("nobody@example.com").unwrap()["active"], json!(true), "never seen, never touched");
}

fn jostle() -> Vec<TargetSpec> {
    vec![TargetSpec::vendor("jostle", "jostle", FAST_RETRY)]
}

both_backends_delivery!(a_vendor_that_cannot_list_is_reconciled_by_lookups, super::jostle());

/// Entra's full create body: every attribute any of the vendors takes, and some none does.
fn entra_user(local: &str, active: bool) -> Value {
    let ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    let jostle = "urn:ietf:params:scim:schemas:extension:jostle:2.0:User";
    let joyn = "urn:ietf:params:scim:schemas:extension:joynfsm:2.0:User";
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ent, jostle, joyn],
        "externalId": format!("ext-{local}"),
        "userName": format!("{local}@corp.example"),
        "active": active,
        "displayName": format!("{local} Display"),
        "title": "Engineer",
        "emails": [
            {"primary": true, "type": "work", "value": format!("{local}@corp.example")},
            {"type": "alternate1", "value": format!("{local}@alt.example")}
        ],
        "phoneNumbers": [{"type": "mobile", "value": "+47 900 00 000"}, {"type": "work", "value": "+1 555 0000"}],
        "addresses": [{"type": "work", "locality": "Oslo", "country": "NO"}],
        "name": {"formatted": format!("{local} Smith"), "familyName": "Smith", "givenName": local},
        ent: {"department": "R&D", "employeeNumber": format!("7019{}", local.len()), "manager": {"value": "26118915-6090-4610-87a4-b2a8f2f9c52d"}},
        jostle: {"alternateEmail1Label": "Lab"},
        joyn: {"xid": "X-1", "joynFieldId": "F-9"}
    })
}

fn every_vendor_both_ways() -> Vec<TargetSpec> {
    let jumpcloud = format!("username_from = \"userName_local_part\"\n{FAST_RETRY}");
    let mut out = Vec::new();
    for how in ["", "reconcile_by = \"list\"\n"] {
        let list = !how.is_empty();
        out.push(TargetSpec::vendor(if list { "jostle-l" } else { "jostle" }, "jostle", &format!("{how}{FAST_RETRY}")));
        out.push(TargetSpec::vendor(if list { "joyn-l" } else { "joyn" }, "joyn-fsm", &format!("{how}{FAST_RETRY}")));
        out.push(TargetSpec::vendor(
            if list { "jumpcloud-l" } else { "jumpcloud" },
            "jumpcloud",
            &format!("{how}{jumpcloud}"),
        ));
        out.push(TargetSpec::new(
            if list { "crm-lookup" } else { "crm" },
            &format!("{}{FAST_RETRY}", if list { "reconcile_by = \"lookup\"\n" } else { "" }),
        ));
    }
    out
}

/// What each vendor's app holds after an ordinary provisioning cycle — its own additions,
/// normalisations and defaults included — is no drift, read either way.
async fn a_freshly_provisioned_app_is_in_sync_at_every_vendor(app: DeliveryApp) {
    for (local, active) in [("ada", true), ("grace", true), ("idle", false)] {
        let r = app.app.post(&app.token, "/Users", &entra_user(local, active)).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    assert!(app.settled(Duration::from_secs(30)).await);
    let names: Vec<String> = app.targets.snapshot().iter().map(|(_, t)| t.name().to_owned()).collect();
    assert_eq!(names.len(), 8);
    for name in names {
        let report = run(&app, &name, Options::default()).await;
        assert!(report.in_sync(), "{name}: {:#?}", report.findings);
        let expected_in_sync = if name.starts_with("jumpcloud") { 2 } else { 3 };
        assert_eq!(report.in_sync, expected_in_sync, "{name}");
        assert_eq!(report.not_sent, 3 - expected_in_sync, "{name}: JumpCloud does not create the inactive user");
    }
}

both_backends_delivery!(a_freshly_provisioned_app_is_in_sync_at_every_vendor, super::every_vendor_both_ways());

/// A change the dispatcher has not delivered yet is not drift.
async fn waiting_deliveries_are_not_judged(app: DeliveryApp) {
    let sim = app.sim();
    let ids = provision(&app, &["w@example.com"]).await;
    // The app refuses everything for now: the PATCH below stays in the outbox.
    sim.set_faults(Faults { fail_next: u32::MAX, ..Faults::default() }).unwrap();
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "name.givenName", "value": "Later"}]});
    assert_eq!(app.app.patch(&app.token, &format!("/Users/{}", ids[0]), &patch).await.status, 200);
    let failed = |a: &DeliveryApp| a.deliveries().iter().any(|d| d.state == DeliveryState::Failed);
    assert!(app.until(Duration::from_secs(10), failed).await, "the PATCH's delivery failed once");
    sim.clear_faults().unwrap();
    // The listing itself can get a 500 now and then: the run retries it.
    sim.set_faults(Faults { fail_next: 1, ..Faults::default() }).unwrap();
    let found = run(&app, "crm", Options::default()).await;
    assert!(found.in_sync(), "{:#?}", found.findings);
    assert_eq!(found.awaiting_delivery, 1);
}

fn crm_slow_retries() -> Vec<TargetSpec> {
    vec![TargetSpec::new("crm", "backoff_base_ms = 60000\nbackoff_max_ms = 60000\n")]
}

both_backends_delivery!(waiting_deliveries_are_not_judged, super::crm_slow_retries());

/// A large run: users seeded straight into the store, the links and the app (no deliveries),
/// then one reconcile in each mode. Prints the figures; asserts only the outcome.
async fn reconcile_of_many_users(app: DeliveryApp) {
    let n: usize = std::env::var("SCIMGW_RECONCILE_USERS").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000);
    let store = app.app.store();
    let schema = app.schemas.resource("User").unwrap();
    let seeded = Instant::now();
    for i in 0..n {
        let name = format!("user{i:05}@example.com");
        let body = scimgw_scim::resource::validate_resource(&schema, user(&name, &format!("G{i}"))).unwrap();
        let created =
            store.create(&app.tenant_id, NewResource { kind: Kind::User, body, members: Vec::new() }).unwrap();
        let mut scim = created.to_scim(None);
        scim.remove("meta");
        scim.remove("id");
        for (target, sim) in ["crm", "lookups"].iter().zip(&app.sims) {
            let at = seed(sim, &scim);
            store
                .put_link(&Link {
                    tenant_id: app.tenant_id.clone(),
                    target: (*target).to_owned(),
                    kind: Kind::User,
                    local_id: created.id.clone(),
                    remote_id: Some(at),
                    delivered_version: Some(created.version),
                    state: "active".into(),
                    last_error: None,
                    updated_us: 0,
                    delivered_payload: None,
                    account_name: None,
                })
                .unwrap();
        }
    }
    println!("seeded {n} users in {:.1} s", seeded.elapsed().as_secs_f64());
    for target in ["crm", "lookups"] {
        let report = run(&app, target, Options::default()).await;
        println!(
            "reconcile of {n} users, {} mode: {:.2} s, {} requests",
            report.mode.as_str(),
            report.seconds,
            report.requests
        );
        assert!(report.in_sync(), "{:?}", report.findings.first());
        assert_eq!(report.in_sync, n as u64);
    }
}

/// Puts `user` into the app as the adapter would have sent it.
fn seed(sim: &Sim, user: &serde_json::Map<String, Value>) -> String {
    let created = sim.insert_user(Value::Object(user.clone())).unwrap();
    created["id"].as_str().unwrap().to_owned()
}

fn list_and_lookup() -> Vec<TargetSpec> {
    let attributes = "max_in_flight = 16\nattributes = [\"userName\", \"active\", \"name\", \"emails\"]\n";
    vec![
        TargetSpec::new("crm", attributes),
        TargetSpec::new("lookups", &format!("{attributes}reconcile_by = \"lookup\"\n")),
    ]
}

both_backends_delivery!(reconcile_of_many_users, super::list_and_lookup());
