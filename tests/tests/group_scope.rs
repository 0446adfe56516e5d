//! Routing users to targets by group membership (`scope = 'groups.display eq "Sales"'`), end to
//! end on both engines: Entra's group shapes move users into and out of a target's scope, a
//! rename re-evaluates the members, a delete is every member leaving. Assertions read the
//! simulators' own stores and request logs.

#![cfg(test)]

use std::time::Duration;

use scimgw_e2e::delivery::{DeliveryApp, FAST_RETRY, TargetSpec};
use scimgw_e2e::{Reply, both_backends_delivery, enc};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);
const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

fn targets() -> Vec<TargetSpec> {
    vec![
        TargetSpec::new(
            "sales",
            &format!("scope = 'groups.display eq \"Sales\"'\ndeprovision = \"delete\"\n{FAST_RETRY}"),
        ),
        TargetSpec::new(
            "eng",
            &format!(
                "scope = 'groups[display eq \"Engineering\"] and active eq true'\ndeprovision = \"deactivate\"\n{FAST_RETRY}"
            ),
        ),
        TargetSpec::new("everyone", FAST_RETRY),
    ]
}

fn patch(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

async fn user(app: &DeliveryApp, name: &str) -> String {
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": name, "active": true,
        "name": {"givenName": "A", "familyName": "B"},
        "emails": [{"value": name, "type": "work", "primary": true}],
    });
    let r: Reply = app.app.post(&app.token, "/Users", &body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.id()
}

async fn group_patch(app: &DeliveryApp, id: &str, ops: Value) {
    let r = app.app.patch(&app.token, &format!("/Groups/{id}"), &patch(ops)).await;
    assert!(r.status == 204 || r.status == 200, "{}", r.text);
}

/// Entra's PATCH of `active` (as the string it sends), then the deliveries it queued.
async fn set_active(app: &DeliveryApp, id: &str, value: &str) {
    let ops = patch(json!([{"op": "Replace", "path": "active", "value": value}]));
    let r = app.app.patch(&app.token, &format!("/Users/{id}"), &ops).await;
    assert_eq!(r.status, 200, "{}", r.text);
    settle(app).await;
}

/// Whether the simulator holds an active account for `name`.
fn active_at(app: &DeliveryApp, sim: usize, name: &str) -> bool {
    app.sims[sim].user_by_username(name).is_some_and(|u| u["active"] != json!(false))
}

async fn settle(app: &DeliveryApp) {
    assert!(app.settled(WAIT).await, "deliveries settle: {:?}", app.deliveries());
}

async fn entering_and_leaving_group_scoped_targets(app: DeliveryApp) {
    let (sales, eng, everyone) = (0, 1, 2);
    let alice = user(&app, "alice@example.com").await;
    let bob = user(&app, "bob@example.com").await;
    settle(&app).await;
    assert!(app.sims[sales].users().is_empty(), "no one is in Sales yet");
    assert!(app.sims[eng].users().is_empty());
    assert_eq!(app.sims[everyone].users().len(), 2);

    // Entra creates the group with a member, then adds another with its PATCH shape.
    let r = app
        .app
        .post(
            &app.token,
            "/Groups",
            &json!({"schemas": [GROUP_URN], "displayName": "Sales", "members": [{"value": alice}]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let sales_id = r.id();
    settle(&app).await;
    assert!(active_at(&app, sales, "alice@example.com"), "alice entered Sales");
    assert!(app.sims[sales].user_by_username("bob@example.com").is_none());

    // The user carries its groups (RFC 7643 §4.1.2), and they filter.
    let r = app.app.get(&app.token, &format!("/Users/{alice}?attributes=groups")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["groups"][0]["value"], sales_id.as_str());
    assert_eq!(r.body["groups"][0]["display"], "Sales");
    assert_eq!(r.body["groups"][0]["type"], "direct");
    let r = app.app.get(&app.token, &format!("/Users?filter={}", enc("groups.display eq \"sales\""))).await;
    assert_eq!(r.total(), 1, "{}", r.text);
    assert_eq!(r.resources()[0]["id"], alice.as_str());

    group_patch(&app, &sales_id, json!([{"op": "Add", "path": "members", "value": [{"value": bob}]}])).await;
    settle(&app).await;
    assert!(active_at(&app, sales, "bob@example.com"), "bob entered Sales through Entra's member add");

    // Entra's removal shapes: a value list, and a value filter in the path.
    group_patch(&app, &sales_id, json!([{"op": "Remove", "path": "members", "value": [{"value": alice}]}])).await;
    settle(&app).await;
    assert!(app.sims[sales].user_by_username("alice@example.com").is_none(), "alice left Sales: deleted there");
    assert!(active_at(&app, sales, "bob@example.com"));
    group_patch(&app, &sales_id, json!([{"op": "Remove", "path": format!("members[value eq \"{bob}\"]")}])).await;
    settle(&app).await;
    assert!(app.sims[sales].users().is_empty(), "bob left too");

    // Both back, then a rename takes them out of a scope that names the group, and back in.
    group_patch(
        &app,
        &sales_id,
        json!([{"op": "Add", "path": "members", "value": [{"value": alice}, {"value": bob}]}]),
    )
    .await;
    settle(&app).await;
    assert!(active_at(&app, sales, "alice@example.com") && active_at(&app, sales, "bob@example.com"));
    group_patch(&app, &sales_id, json!([{"op": "Replace", "path": "displayName", "value": "Sales EMEA"}])).await;
    settle(&app).await;
    assert!(app.sims[sales].users().is_empty(), "renamed away from the scope's name: both deprovisioned");
    let r = app.app.get(&app.token, &format!("/Users/{bob}")).await;
    assert_eq!(r.body["groups"][0]["display"], "Sales EMEA", "the user shows the new name");
    group_patch(&app, &sales_id, json!([{"op": "Replace", "path": "displayName", "value": "Sales"}])).await;
    settle(&app).await;
    assert!(active_at(&app, sales, "alice@example.com") && active_at(&app, sales, "bob@example.com"));

    // A combined scope: in Engineering *and* active. The user's own change is decided with its
    // groups, at the edge and by the dispatcher.
    let r = app
        .app
        .post(
            &app.token,
            "/Groups",
            &json!({"schemas": [GROUP_URN], "displayName": "Engineering", "members": [{"value": alice}]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    settle(&app).await;
    assert!(active_at(&app, eng, "alice@example.com"));
    assert!(app.sims[eng].user_by_username("bob@example.com").is_none());
    // Entra's string booleans.
    set_active(&app, &alice, "False").await;
    assert!(!active_at(&app, eng, "alice@example.com"), "inactive: out of eng's scope, deactivated");
    set_active(&app, &alice, "True").await;
    assert!(active_at(&app, eng, "alice@example.com"), "active again and still in Engineering");

    // Deleting the group is every member leaving it.
    let r = app.app.delete(&app.token, &format!("/Groups/{sales_id}")).await;
    assert_eq!(r.status, 204, "{}", r.text);
    settle(&app).await;
    assert!(app.sims[sales].users().is_empty(), "the group's delete deprovisioned its members");
    assert!(active_at(&app, eng, "alice@example.com"), "other groups' targets are untouched");

    // A target without a group scope never saw a deprovisioning.
    let log = app.sims[everyone].requests();
    assert!(!log.iter().any(|r| r.method == "DELETE"), "everyone: no delete");
    assert!(active_at(&app, everyone, "alice@example.com") && active_at(&app, everyone, "bob@example.com"));
    assert!(
        !app.deliveries().iter().any(|d| d.state == scimgw_store::DeliveryState::Dead),
        "nothing dead-lettered: {:?}",
        app.deliveries()
    );
}
both_backends_delivery!(entering_and_leaving_group_scoped_targets, super::targets());

/// Membership is the group's to change: a user's `groups` is readOnly. A POST or PUT that sends
/// it is accepted with `groups` ignored (RFC 7644 §3.5.1); a PATCH that targets it is refused
/// with `mutability` (§3.5.2). A user's version moves when its groups change (its ETag is of
/// what a GET returns).
async fn groups_are_read_only_and_move_the_users_version(app: DeliveryApp) {
    let alice = user(&app, "carol@example.com").await;
    let r = app
        .app
        .put(
            &app.token,
            &format!("/Users/{alice}"),
            &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "carol@example.com",
                    "groups": [{"value": "11111111-1111-1111-1111-111111111111", "display": "Sales"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body.get("groups").is_none(), "ignored: {}", r.text);
    let r = app
        .app
        .patch(
            &app.token,
            &format!("/Users/{alice}"),
            &patch(json!([{"op": "add", "path": "groups", "value": [{"value": "x"}]}])),
        )
        .await;
    r.assert_error(400, Some("mutability"), "readOnly");

    let before = app.app.get(&app.token, &format!("/Users/{alice}")).await;
    let etag = before.header("etag").map(str::to_owned);
    let g = app
        .app
        .post(
            &app.token,
            "/Groups",
            &json!({"schemas": [GROUP_URN], "displayName": "Sales", "members": [{"value": alice}]}),
        )
        .await;
    assert_eq!(g.status, 201, "{}", g.text);
    let after = app.app.get(&app.token, &format!("/Users/{alice}")).await;
    assert_ne!(after.header("etag").map(str::to_owned), etag, "joining a group changes what a GET returns");
    assert_eq!(after.body["groups"][0]["display"], "Sales");
    assert!(after.body["groups"][0]["$ref"].as_str().is_some_and(|r| r.ends_with(&format!("/Groups/{}", g.id()))));
    let listed =
        app.app.get(&app.token, &format!("/Users?filter={}", enc(&format!("groups.value eq \"{}\"", g.id())))).await;
    assert_eq!(listed.total(), 1, "{}", listed.text);
    assert_eq!(listed.resources()[0]["groups"][0]["value"], g.id().as_str(), "listed users carry their groups");
    let excluded = app.app.get(&app.token, &format!("/Users/{alice}?excludedAttributes=groups")).await;
    assert!(excluded.body.get("groups").is_none());
    settle(&app).await;
}
both_backends_delivery!(groups_are_read_only_and_move_the_users_version, super::targets());
