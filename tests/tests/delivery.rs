//! Delivery to targets over HTTP: gateway + store + dispatcher + vendor-sim, on SQLite and PostgreSQL.
//!
//! Assertions read the simulator's own request log and store, never the gateway's idea of what it sent.

#![cfg(test)]

use std::time::Duration;

use scimgw_e2e::delivery::{DeliveryApp, FAST_RETRY, TargetSpec};
use scimgw_e2e::{Reply, both_backends_delivery};
use scimgw_store::DeliveryState;
use serde_json::{Value, json};
use vendor_sim::{Faults, InjectedError, RecordedRequest, Scope};

const WAIT: Duration = Duration::from_secs(20);

fn user(name: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": name,
        "active": true,
        "name": {"givenName": "Alice", "familyName": "Smith"},
        "emails": [{"value": name, "type": "work", "primary": true}]
    })
}

fn patch(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

async fn create(app: &DeliveryApp, name: &str) -> String {
    let r: Reply = app.app.post(&app.token, "/Users", &user(name)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["id"].as_str().unwrap().to_owned()
}

fn writes(log: &[RecordedRequest]) -> Vec<&RecordedRequest> {
    log.iter().filter(|r| matches!(r.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE")).collect()
}

fn lifecycle_targets() -> Vec<TargetSpec> {
    vec![
        TargetSpec::new("everyone", &format!("deprovision = \"delete\"\n{FAST_RETRY}")),
        TargetSpec::new(
            "active-only",
            &format!("scope = 'active eq true'\ndeprovision = \"deactivate\"\n{FAST_RETRY}"),
        ),
    ]
}

/// Create, update, deactivate (scope exit on one target), delete: each reaches each target with
/// the right request.
async fn lifecycle_reaches_each_target(app: DeliveryApp) {
    let id = create(&app, "alice@example.com").await;
    assert!(app.settled(WAIT).await);
    for sim in &app.sims {
        let remote = sim.user_by_username("alice@example.com").expect("created at every target");
        assert_eq!(remote["name"]["givenName"], "Alice");
        let posts: Vec<_> = sim.requests().into_iter().filter(|r| r.method == "POST").collect();
        assert_eq!(posts.len(), 1, "one create per target");
        assert!(posts[0].path.ends_with("/Users"));
    }

    // An update: one PATCH of what changed goes out, never a PUT.
    let r = app
        .app
        .patch(
            &app.token,
            &format!("/Users/{id}"),
            &patch(json!([{"op": "Replace", "path": "name.givenName", "value": "Alicia"}])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(app.settled(WAIT).await);
    for sim in &app.sims {
        assert_eq!(sim.user_by_username("alice@example.com").unwrap()["name"]["givenName"], "Alicia");
        assert!(!sim.requests().iter().any(|r| r.method == "PUT"));
        let last = sim.requests().into_iter().rev().find(|r| r.method != "GET").unwrap();
        assert_eq!(last.method, "PATCH");
        assert_eq!(
            last.json().unwrap()["Operations"],
            json!([{"op": "replace", "path": "name.givenName", "value": "Alicia"}]),
            "only the change"
        );
    }

    // Deactivation: "everyone" gets active=false in its PATCH; "active-only" sees the user leave
    // its scope and deactivates it with a PATCH.
    let r = app
        .app
        .patch(
            &app.token,
            &format!("/Users/{id}"),
            &patch(json!([{"op": "replace", "path": "active", "value": "False"}])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(app.settled(WAIT).await);
    assert_eq!(app.sims[0].user_by_username("alice@example.com").unwrap()["active"], false);
    let scoped = &app.sims[1];
    assert_eq!(scoped.user_by_username("alice@example.com").unwrap()["active"], false);
    let last = scoped.requests().into_iter().rev().find(|r| r.method != "GET").unwrap();
    assert_eq!(last.method, "PATCH", "scope exit deactivates with a PATCH");
    assert_eq!(last.json().unwrap()["Operations"][0]["path"], "active");

    // Delete: "everyone" deletes; "active-only" has it deactivated already and sends nothing.
    let before = scoped.requests().len();
    let r = app.app.delete(&app.token, &format!("/Users/{id}")).await;
    assert_eq!(r.status, 204);
    assert!(app.settled(WAIT).await);
    assert!(app.sims[0].user_by_username("alice@example.com").is_none(), "deleted at the delete target");
    assert!(app.sims[0].requests().iter().any(|r| r.method == "DELETE"));
    assert_eq!(scoped.requests().len(), before, "nothing more to tell a target that has it deactivated");
    assert!(scoped.user_by_username("alice@example.com").is_some(), "deactivate keeps the account");
}
both_backends_delivery!(lifecycle_reaches_each_target, super::lifecycle_targets());

fn one_slow_target() -> Vec<TargetSpec> {
    vec![TargetSpec::new("crm", FAST_RETRY)]
}

/// Ten quick PATCHes to one user: fewer than ten deliveries, and the target ends with the last state.
async fn quick_patches_coalesce(app: DeliveryApp) {
    // A slow app, so that changes pile up while a delivery is in flight.
    app.sim().set_faults(Faults { latency_ms: 300, ..Faults::default() }).unwrap();
    let id = create(&app, "bob@example.com").await;
    for i in 0..10 {
        let ops = json!([{"op": "replace", "path": "name.givenName", "value": format!("Bob{i}")}]);
        let r = app.app.patch(&app.token, &format!("/Users/{id}"), &patch(ops)).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    assert!(app.settled(WAIT).await);
    let log = app.sim().requests();
    let n = writes(&log).len();
    assert!(n < 11, "one create and ten updates made {n} write requests: nothing coalesced");
    assert_eq!(app.sim().user_by_username("bob@example.com").unwrap()["name"]["givenName"], "Bob9");
    assert_eq!(app.sim().users().len(), 1);
}
both_backends_delivery!(quick_patches_coalesce, super::one_slow_target());

/// A target failing with 500s for a while, then recovering, ends with every change.
async fn a_target_that_recovers_gets_everything(app: DeliveryApp) {
    app.sim().set_faults(Faults { fail_next: 4, ..Faults::default() }).unwrap();
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(create(&app, &format!("user{i}@example.com")).await);
    }
    let r = app
        .app
        .patch(
            &app.token,
            &format!("/Users/{}", ids[0]),
            &patch(json!([{"op": "replace", "path": "active", "value": false}])),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(app.settled(WAIT).await, "{:?}", app.deliveries());
    let log = app.sim().requests();
    assert_eq!(log.iter().filter(|r| r.status == Some(500)).count(), 4, "the four failures happened");
    assert_eq!(app.sim().users().len(), 3);
    assert_eq!(app.sim().user_by_username("user0@example.com").unwrap()["active"], false);
    assert!(app.deliveries().iter().all(|d| d.state == DeliveryState::Done));
    assert!(app.deliveries().iter().any(|d| d.attempts > 1), "some deliveries were retried");
}
both_backends_delivery!(a_target_that_recovers_gets_everything, super::one_slow_target());

/// 429 with `Retry-After: 2` delays the next attempt by at least 2 s, as the app saw it.
async fn retry_after_is_honoured(app: DeliveryApp) {
    app.sim().set_faults(Faults { throttle_next: 1, retry_after_secs: 2, ..Faults::default() }).unwrap();
    create(&app, "carol@example.com").await;
    assert!(app.settled(WAIT).await);
    let log = app.sim().requests();
    let throttled = log.iter().position(|r| r.status == Some(429)).expect("a 429 was answered");
    let next = log.get(throttled + 1).expect("a request after the 429");
    let gap = next.at.duration_since(log[throttled].at);
    assert!(gap >= Duration::from_secs(2), "the next request came {gap:?} after the 429");
    assert!(app.sim().user_by_username("carol@example.com").is_some());
}
both_backends_delivery!(retry_after_is_honoured, super::one_slow_target());

/// A permanent 400 dead-letters with the vendor's message; a retry re-queues and delivers it.
async fn a_permanent_error_dead_letters_and_retry_requeues(app: DeliveryApp) {
    // The first request is the adoption lookup (GET); the create (POST) is what fails.
    app.sim()
        .set_faults(Faults {
            fail_next: 1,
            error: InjectedError::permanent("the email domain is not allowed here"),
            scope: Scope { methods: vec!["POST".into()], path_prefix: None },
            ..Faults::default()
        })
        .unwrap();
    create(&app, "dave@example.com").await;
    assert!(app.settled(WAIT).await);
    let dead: Vec<_> = app.deliveries().into_iter().filter(|d| d.state == DeliveryState::Dead).collect();
    assert_eq!(dead.len(), 1, "{:?}", app.deliveries());
    let message = dead[0].last_error.clone().unwrap();
    assert!(message.contains("the email domain is not allowed here"), "{message}");
    assert!(message.contains("400"), "{message}");
    assert!(app.sim().users().is_empty());

    let n = app.app.store().retry_deliveries(std::slice::from_ref(&dead[0].id), None).unwrap();
    assert_eq!(n, 1);
    assert!(app.until(WAIT, |a| a.sim().user_by_username("dave@example.com").is_some()).await);
    assert!(app.settled(WAIT).await);
    let (row, attempts) = app.app.store().delivery(&dead[0].id).unwrap().unwrap();
    assert_eq!(row.state, DeliveryState::Done);
    assert_eq!(attempts.iter().map(|a| a.outcome.as_str()).collect::<Vec<_>>(), ["dead", "done"]);
}
both_backends_delivery!(a_permanent_error_dead_letters_and_retry_requeues, super::one_slow_target());

/// A user the app already has is found by userName and adopted: one account, no POST.
async fn an_existing_account_is_adopted(app: DeliveryApp) {
    let existing = app
        .sim()
        .insert_user(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "erin@example.com",
            "active": false
        }))
        .unwrap();
    let local = create(&app, "Erin@Example.com").await;
    assert!(app.settled(WAIT).await);
    let users = app.sim().users();
    assert_eq!(users.len(), 1, "never two accounts for one user: {users:?}");
    assert_eq!(users[0]["id"], existing["id"]);
    assert_eq!(users[0]["active"], true, "the adopted account now has our state");
    let log = app.sim().requests();
    assert!(!log.iter().any(|r| r.method == "POST"), "adopted, not created");
    let lookup = log.iter().find(|r| r.method == "GET").expect("a lookup");
    assert_eq!(lookup.query_param("filter").as_deref(), Some("userName eq \"Erin@Example.com\""));
    let link = app.app.store().link(&app.tenant_id, "crm", scimgw_store::Kind::User, &local).unwrap().unwrap();
    assert_eq!(link.remote_id.as_deref(), existing["id"].as_str());
}
both_backends_delivery!(an_existing_account_is_adopted, super::one_slow_target());

fn rule_targets() -> Vec<TargetSpec> {
    vec![
        TargetSpec::new(
            "strict",
            "match_attribute = \"externalId\"\non_invalid = \"reject\"\nscope = 'title eq \"Engineer\"'",
        ),
        TargetSpec::new("lenient", "match_attribute = \"externalId\"\non_invalid = \"skip\""),
    ]
}

/// Vendor rules at the edge: a `reject` target refuses the request (400 naming target, attribute
/// and rule; nothing stored); a `skip` target records a skipped delivery; out of a target's
/// scope, its rules do not apply.
async fn vendor_rules_run_before_anything_is_stored(app: DeliveryApp) {
    // No externalId: both targets' rule is broken, but "strict" only cares about engineers.
    let mut body = user("frank@example.com");
    body["title"] = json!("Engineer");
    let r = app.app.post(&app.token, "/Users", &body).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.scim_type(), Some("invalidValue"));
    let detail = r.body["detail"].as_str().unwrap();
    assert!(detail.contains("\"strict\"") && detail.contains("externalId"), "{detail}");
    let listed = app.app.get(&app.token, "/Users?filter=userName%20eq%20%22frank@example.com%22").await;
    assert_eq!(listed.body["totalResults"], 0, "nothing stored");
    assert!(app.deliveries().is_empty(), "no delivery recorded for a refused change");

    // Not an engineer: out of "strict"'s scope; "lenient" skips with the reason.
    let r = app.app.post(&app.token, "/Users", &user("grace@example.com")).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert!(app.settled(WAIT).await);
    let skipped: Vec<_> = app.deliveries().into_iter().filter(|d| d.state == DeliveryState::Skipped).collect();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].target, "lenient");
    assert!(skipped[0].last_error.as_deref().unwrap_or("").contains("externalId"));
    assert!(app.sims[1].users().is_empty(), "a skipped delivery sends nothing");

    // A PATCH that gives the engineer title without an externalId is refused too, and the
    // stored user is unchanged.
    let ops = json!([{"op": "add", "path": "title", "value": "Engineer"}]);
    let r = app.app.patch(&app.token, &format!("/Users/{id}"), &patch(ops)).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let stored = app.app.get(&app.token, &format!("/Users/{id}")).await;
    assert!(stored.body.get("title").is_none());

    // With an externalId every rule holds: both targets get the user.
    let ops = json!([{"op": "add", "path": "externalId", "value": "E-1"}, {"op": "add", "path": "title", "value": "Engineer"}]);
    let r = app.app.patch(&app.token, &format!("/Users/{id}"), &patch(ops)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(app.settled(WAIT).await);
    for sim in &app.sims {
        assert_eq!(sim.user_by_username("grace@example.com").unwrap()["externalId"], "E-1");
    }
}
both_backends_delivery!(vendor_rules_run_before_anything_is_stored, super::rule_targets());

fn rate_limited_target() -> Vec<TargetSpec> {
    vec![TargetSpec::new("crm", "rate_per_sec = 10\nburst = 1")]
}

/// A target's rate limit paces the requests the app sees.
async fn the_rate_limit_paces_requests(app: DeliveryApp) {
    for i in 0..5 {
        create(&app, &format!("paced{i}@example.com")).await;
    }
    assert!(app.settled(WAIT).await);
    let log = app.sim().requests();
    assert_eq!(log.len(), 10, "a lookup and a create per user");
    let span = log[log.len() - 1].at.duration_since(log[0].at);
    // 10 requests at 10/s with a burst of 1: at least 9 intervals of 100 ms.
    assert!(span >= Duration::from_millis(850), "10 requests in {span:?}");
}
both_backends_delivery!(the_rate_limit_paces_requests, super::rate_limited_target());

fn group_targets() -> Vec<TargetSpec> {
    // Users are deactivated, not deleted, so the app keeps them: only our group update can drop a
    // deleted user from the group there.
    vec![TargetSpec::new("crm", &format!("groups = true\ndeprovision = \"deactivate\"\n{FAST_RETRY}"))]
}

fn remote_id_of(app: &DeliveryApp, user_name: &str) -> String {
    app.sim().user_by_username(user_name).unwrap()["id"].as_str().unwrap().to_owned()
}

fn remote_members(group: &Value) -> Vec<String> {
    let mut ids: Vec<String> = group["members"]
        .as_array()
        .map(|m| m.iter().filter_map(|x| x["value"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    ids.sort();
    ids
}

/// Groups reach a group-capable target with their members as the target's ids, follow member
/// changes, lose deleted users, and are deleted with the local group.
async fn groups_follow_with_remote_member_ids(app: DeliveryApp) {
    let alice = create(&app, "alice@example.com").await;
    let bob = create(&app, "bob@example.com").await;
    let group = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "Engineering",
        "members": [{"value": alice}, {"value": bob}]
    });
    let r = app.app.post(&app.token, "/Groups", &group).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let gid = r.body["id"].as_str().unwrap().to_owned();
    assert!(app.settled(WAIT).await, "{:?}", app.deliveries());
    let groups = app.sim().groups();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["displayName"], "Engineering");
    let mut want = vec![remote_id_of(&app, "alice@example.com"), remote_id_of(&app, "bob@example.com")];
    want.sort();
    assert_eq!(remote_members(&groups[0]), want, "members are the app's ids, not ours");

    // Entra's member removal and a rename.
    let ops = json!([
        {"op": "Remove", "path": format!("members[value eq \"{bob}\"]")},
        {"op": "Replace", "path": "displayName", "value": "Eng"}
    ]);
    let r = app.app.patch(&app.token, &format!("/Groups/{gid}"), &patch(ops)).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(app.settled(WAIT).await);
    let g = &app.sim().groups()[0];
    assert_eq!(g["displayName"], "Eng");
    assert_eq!(remote_members(g), vec![remote_id_of(&app, "alice@example.com")]);

    // Deleting a member user updates the group; deleting the group deletes it at the app.
    let r = app.app.delete(&app.token, &format!("/Users/{alice}")).await;
    assert_eq!(r.status, 204);
    assert!(app.settled(WAIT).await);
    assert_eq!(app.sim().user_by_username("alice@example.com").unwrap()["active"], false);
    assert!(remote_members(&app.sim().groups()[0]).is_empty(), "the deleted user left the group at the app");
    let r = app.app.delete(&app.token, &format!("/Groups/{gid}")).await;
    assert_eq!(r.status, 204);
    assert!(app.settled(WAIT).await);
    assert!(app.sim().groups().is_empty());
    assert!(app.sim().requests().iter().any(|r| r.method == "DELETE" && r.path.contains("/Groups/")));
}
both_backends_delivery!(groups_follow_with_remote_member_ids, super::group_targets());
