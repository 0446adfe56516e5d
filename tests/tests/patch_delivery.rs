//! Updates reach each vendor as Entra ID sends them: one PATCH of what changed, never a PUT.
//!
//! Jostle, Joyn FSM and JumpCloud are documented only as targets of Entra's provisioning, and
//! their simulators refuse `PUT /Users/{id}` (405). For each vendor, on both engines: create,
//! change two attributes, clear one, a change the vendor does not take (no request at all),
//! disable, enable, then deprovision as the target says. After every step the simulator's user
//! equals the adapter's translation of the gateway's user, and its request log shows the change
//! landing as PATCH (or DELETE) only.

#![cfg(test)]

use std::time::Duration;

use scimgw_e2e::both_backends_delivery;
use scimgw_e2e::delivery::{DeliveryApp, FAST_RETRY, TargetSpec};
use scimgw_store::DeliveryState;
use serde_json::{Map, Value, json};
use vendor_sim::{Faults, RecordedRequest, Scope};

const WAIT: Duration = Duration::from_secs(20);
const CORE: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const JOSTLE: &str = "urn:ietf:params:scim:schemas:extension:jostle:2.0:User";
const JOYN: &str = "urn:ietf:params:scim:schemas:extension:joynfsm:2.0:User";

/// Entra's create body (ENTRA.md), with something of every vendor's table in it.
fn entra_create() -> Value {
    json!({
        "schemas": [CORE, ENT, JOSTLE, JOYN],
        "externalId": "ext-ann",
        "userName": "ann.lee@corp.example",
        "active": true,
        "displayName": "Ann Lee",
        "title": "Engineer",
        "emails": [
            {"primary": true, "type": "work", "value": "ann.lee@corp.example"},
            {"type": "alternate1", "value": "ann@alt.example"}
        ],
        "phoneNumbers": [{"type": "mobile", "value": "+47 400 00 000"}],
        "name": {"formatted": "Ann Lee", "familyName": "Lee", "givenName": "Ann"},
        ENT: {"department": "R&D", "employeeNumber": "701984"},
        JOSTLE: {"alternateEmail1Label": "Lab"},
        JOYN: {"xid": "X-1"}
    })
}

fn patch(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

/// One vendor's case: its target, and the attribute path of its table that the test clears.
struct Case {
    target: &'static str,
    user_name: &'static str,
    clear: &'static str,
    deletes: bool,
}

/// The simulator's user without what the app adds.
fn held(app: &DeliveryApp, user_name: &str) -> Option<Value> {
    let mut u = app.sim().user_by_username(user_name)?;
    let o: &mut Map<String, Value> = u.as_object_mut()?;
    for k in ["id", "meta", "schemas"] {
        o.remove(k);
    }
    Some(u)
}

/// The adapter's translation of the gateway's user, as the vendor should hold it.
async fn translated(app: &DeliveryApp, case: &Case, id: &str) -> Value {
    let r = app.app.get(&app.token, &format!("/Users/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut user = r.body.as_object().cloned().unwrap();
    user.remove("meta");
    let target = app.targets.snapshot().get(&app.tenant_id, case.target).expect("the target is configured");
    let mut payload = target.adapter.translate(&user).expect("the user translates");
    payload.as_object_mut().unwrap().remove("schemas");
    payload
}

/// The writes the simulator got since `from` (a sequence number).
fn writes_since(app: &DeliveryApp, from: u64) -> Vec<RecordedRequest> {
    app.sim().requests().into_iter().filter(|r| r.seq > from && r.method != "GET").collect()
}

fn last_seq(app: &DeliveryApp) -> u64 {
    app.sim().requests().last().map_or(0, |r| r.seq)
}

async fn change(app: &DeliveryApp, id: &str, query: &str, ops: Value) {
    let r = app.app.patch(&app.token, &format!("/Users/{id}{query}"), &patch(ops)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(app.settled(WAIT).await, "{:#?}", app.deliveries());
}

/// Exactly one PATCH, whose operations are returned.
fn one_patch(writes: &[RecordedRequest], step: &str) -> Value {
    let methods: Vec<&str> = writes.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(methods, ["PATCH"], "{step}: one PATCH, nothing else");
    writes[0].json().expect("a JSON body")["Operations"].clone()
}

async fn updates_are_patches(app: DeliveryApp, case: Case) {
    let r = app.app.post(&app.token, "/Users", &entra_create()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert!(app.settled(WAIT).await, "{:#?}", app.deliveries());
    assert_eq!(held(&app, case.user_name), Some(translated(&app, &case, &id).await), "created as translated");

    // Two attributes change: one PATCH with the two, addressed as Entra addresses them.
    let from = last_seq(&app);
    change(
        &app,
        &id,
        "",
        json!([
            {"op": "Replace", "path": "name.givenName", "value": "Anna"},
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "anna.lee@corp.example"}
        ]),
    )
    .await;
    let ops = one_patch(&writes_since(&app, from), "two changes");
    let text = ops.to_string();
    assert!(text.contains("name.givenName") && text.contains(r#"emails[type eq \"work\"].value"#), "{text}");
    assert_eq!(ops.as_array().map(Vec::len), Some(2), "only what changed, in two operations: {text}");
    assert_eq!(held(&app, case.user_name), Some(translated(&app, &case, &id).await));

    // One attribute is cleared: a remove.
    let from = last_seq(&app);
    change(&app, &id, "", json!([{"op": "Remove", "path": case.clear}])).await;
    let ops = one_patch(&writes_since(&app, from), "a clear");
    assert!(ops.as_array().unwrap().iter().any(|o| o["op"].as_str().unwrap().eq_ignore_ascii_case("remove")), "{ops}");
    assert_eq!(held(&app, case.user_name), Some(translated(&app, &case, &id).await));

    // A change of nothing the vendor takes: delivered, and no request at all.
    let from = last_seq(&app);
    change(&app, &id, "", json!([{"op": "Replace", "path": "nickName", "value": "Nan"}])).await;
    assert!(writes_since(&app, from).is_empty(), "{:?}", writes_since(&app, from));

    // Disable, then enable: `replace active`, a JSON boolean.
    for (value, active) in [(json!("False"), false), (json!(true), true)] {
        let from = last_seq(&app);
        change(&app, &id, "?aadOptscim062020", json!([{"op": "replace", "path": "active", "value": value}])).await;
        let ops = one_patch(&writes_since(&app, from), "active");
        assert!(ops.to_string().contains(&format!(":{active}")), "{ops}");
        assert_eq!(held(&app, case.user_name).unwrap()["active"], json!(active));
        assert_eq!(held(&app, case.user_name), Some(translated(&app, &case, &id).await));
    }

    // Deprovision, as the target says.
    let from = last_seq(&app);
    let r = app.app.delete(&app.token, &format!("/Users/{id}")).await;
    assert_eq!(r.status, 204);
    assert!(app.settled(WAIT).await, "{:#?}", app.deliveries());
    let writes = writes_since(&app, from);
    if case.deletes {
        assert_eq!(writes.iter().map(|r| r.method.as_str()).collect::<Vec<_>>(), ["DELETE"]);
        assert!(app.sim().user_by_username(case.user_name).is_none());
    } else {
        let ops = one_patch(&writes, "deactivation");
        assert!(ops.to_string().contains("active"), "{ops}");
        assert_eq!(held(&app, case.user_name).unwrap()["active"], json!(false));
    }

    // The whole log: never a PUT, never a refusal; every delivery done.
    let log = app.sim().requests();
    assert!(log.iter().all(|r| matches!(r.method.as_str(), "GET" | "POST" | "PATCH" | "DELETE")), "{log:?}");
    let refused: Vec<_> = log.iter().filter(|r| r.status.is_some_and(|s| s >= 400)).collect();
    assert!(refused.is_empty(), "{refused:?}");
    assert!(app.deliveries().iter().all(|d| d.state == DeliveryState::Done), "{:#?}", app.deliveries());
}

async fn jostle_gets_legacy_patches(app: DeliveryApp) {
    let case = Case {
        target: "jostle",
        user_name: "ann.lee@corp.example",
        clear: "emails[type eq \"alternate1\"]",
        deletes: false,
    };
    updates_are_patches(app, case).await;
}
fn jostle() -> Vec<TargetSpec> {
    vec![TargetSpec::vendor("jostle", "jostle", FAST_RETRY)]
}
both_backends_delivery!(jostle_gets_legacy_patches, super::jostle());

async fn joyn_fsm_gets_legacy_patches(app: DeliveryApp) {
    let case = Case {
        target: "joyn",
        user_name: "ann.lee@corp.example",
        clear: "phoneNumbers[type eq \"mobile\"]",
        deletes: true,
    };
    updates_are_patches(app, case).await;
}
fn joyn_fsm() -> Vec<TargetSpec> {
    vec![TargetSpec::vendor("joyn", "joyn-fsm", &format!("deprovision = \"delete\"\n{FAST_RETRY}"))]
}
both_backends_delivery!(joyn_fsm_gets_legacy_patches, super::joyn_fsm());

async fn jumpcloud_gets_flagged_patches(app: DeliveryApp) {
    let case = Case {
        target: "jumpcloud",
        user_name: "ann.lee",
        clear: "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
        deletes: false,
    };
    updates_are_patches(app, case).await;
}
fn jumpcloud() -> Vec<TargetSpec> {
    vec![TargetSpec::vendor(
        "jumpcloud",
        "jumpcloud",
        &format!("username_from = \"userName_local_part\"\n{FAST_RETRY}"),
    )]
}
both_backends_delivery!(jumpcloud_gets_flagged_patches, super::jumpcloud());

/// A simulator of a vendor profile refuses PUT on a user with a SCIM error.
async fn vendor_simulators_refuse_put(app: DeliveryApp) {
    let r = app.app.post(&app.token, "/Users", &entra_create()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(app.settled(WAIT).await);
    let remote = app.sim().user_by_username("ann.lee@corp.example").unwrap();
    let url = format!("{}/Users/{}", app.sim().base_url(), remote["id"].as_str().unwrap());
    let r = reqwest::Client::new()
        .put(url)
        .bearer_auth(app.sim().token())
        .header("content-type", "application/scim+json")
        .body(remote.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], json!("405"), "{body}");
}
both_backends_delivery!(vendor_simulators_refuse_put, super::jostle());

/// The generic `scim` kind PATCHes by default and PUTs the whole state with `update = "put"`.
async fn a_scim_target_can_ask_for_put(app: DeliveryApp) {
    let r = app.app.post(&app.token, "/Users", &entra_create()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert!(app.settled(WAIT).await);
    change(&app, &id, "", json!([{"op": "Replace", "path": "name.givenName", "value": "Anna"}])).await;
    for (sim, method) in app.sims.iter().zip(["PATCH", "PUT"]) {
        let last = sim.requests().into_iter().rev().find(|r| r.method != "GET").unwrap();
        assert_eq!(last.method, method);
        assert_eq!(sim.user_by_username("ann.lee@corp.example").unwrap()["name"]["givenName"], "Anna");
    }
}
fn patch_and_put() -> Vec<TargetSpec> {
    vec![TargetSpec::new("crm", FAST_RETRY), TargetSpec::new("legacy", &format!("update = \"put\"\n{FAST_RETRY}"))]
}
both_backends_delivery!(a_scim_target_can_ask_for_put, super::patch_and_put());

/// A link with nothing recorded (made before payloads were recorded) is read back once and diffed
/// against; a failed read retries the delivery like any failure.
async fn a_link_with_nothing_recorded_reads_the_copy_back(app: DeliveryApp) {
    let r = app.app.post(&app.token, "/Users", &entra_create()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert!(app.settled(WAIT).await);
    let store = app.app.store();
    let mut link = store.link(&app.tenant_id, "jostle", scimgw_store::Kind::User, &id).unwrap().unwrap();
    assert!(link.delivered_payload.is_some(), "a create records what it sent");
    link.delivered_payload = None;
    store.put_link(&link).unwrap();
    let remote_id = link.remote_id.clone().unwrap();

    // The first read back fails with a 500: retried, then read, then one PATCH of the change.
    app.sim()
        .set_faults(Faults {
            fail_next: 1,
            scope: Scope { methods: vec!["GET".into()], path_prefix: None },
            ..Faults::default()
        })
        .unwrap();
    let from = last_seq(&app);
    change(&app, &id, "", json!([{"op": "Replace", "path": "name.familyName", "value": "Smith"}])).await;
    let log: Vec<_> = app.sim().requests().into_iter().filter(|r| r.seq > from).collect();
    let by_id = format!("/Users/{remote_id}");
    let reads = log.iter().filter(|r| r.method == "GET" && r.path.ends_with(&by_id)).count();
    assert_eq!(reads, 2, "one failed read, one that worked: {log:?}");
    let ops = one_patch(&writes_since(&app, from), "after a read back");
    assert_eq!(ops, json!([{"op": "Replace", "path": "name.familyName", "value": "Smith"}]));
    let delivery = app.deliveries().into_iter().find(|d| d.resource_id == id).unwrap();
    assert_eq!(delivery.state, DeliveryState::Done);
    assert!(delivery.attempts >= 2, "the failed read was an attempt of its own: {delivery:?}");
    let link = store.link(&app.tenant_id, "jostle", scimgw_store::Kind::User, &id).unwrap().unwrap();
    assert!(link.delivered_payload.is_some_and(|p| p.contains("Smith")), "the update recorded what it sent");
}
both_backends_delivery!(a_link_with_nothing_recorded_reads_the_copy_back, super::jostle());

/// A user disabled, then deleted, at a target that deactivates: the disable was the only request
/// (the deprovisioning finds nothing that differs).
async fn a_disabled_user_who_leaves_costs_no_second_request(app: DeliveryApp) {
    let r = app.app.post(&app.token, "/Users", &entra_create()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert!(app.settled(WAIT).await);
    let from = last_seq(&app);
    change(&app, &id, "", json!([{"op": "Replace", "path": "active", "value": "False"}])).await;
    one_patch(&writes_since(&app, from), "disable");
    let from = last_seq(&app);
    assert_eq!(app.app.delete(&app.token, &format!("/Users/{id}")).await.status, 204);
    assert!(app.settled(WAIT).await);
    assert!(app.sim().requests().iter().all(|r| r.seq <= from), "{:?}", app.sim().requests());
    assert_eq!(app.sim().user_by_username("ann.lee@corp.example").unwrap()["active"], json!(false));
    let link = app.app.store().link(&app.tenant_id, "jostle", scimgw_store::Kind::User, &id).unwrap().unwrap();
    assert_eq!(link.state, "deactivated");
}
both_backends_delivery!(a_disabled_user_who_leaves_costs_no_second_request, super::jostle());
