//! The three vendor targets end to end: one tenant with Jostle, Joyn FSM and JumpCloud targets (each
//! played by its strict simulator profile) and a generic SCIM target that takes groups. An
//! Entra-style client provisions through the gateway; each simulator's stored user is compared,
//! attribute by attribute, with what that vendor's table says it should hold.
//!
//! The expected states here are written from VENDORS.md, not computed by the adapters.

#![cfg(test)]

use std::time::Duration;

use scimgw_e2e::both_backends_delivery;
use scimgw_e2e::delivery::{DeliveryApp, FAST_RETRY, TargetSpec};
use scimgw_store::DeliveryState;
use serde_json::{Map, Value, json};

const WAIT: Duration = Duration::from_secs(20);
const CORE: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const JOSTLE: &str = "urn:ietf:params:scim:schemas:extension:jostle:2.0:User";
const JOYN: &str = "urn:ietf:params:scim:schemas:extension:joynfsm:2.0:User";

/// What the IdP holds for the user, as the test changes it.
#[derive(Clone)]
struct Person {
    local: &'static str,
    given: &'static str,
    family: &'static str,
    display: &'static str,
    title: &'static str,
    department: &'static str,
    mobile: &'static str,
    city: &'static str,
    active: bool,
}

impl Person {
    fn user_name(&self) -> String {
        format!("{}@corp.example", self.local)
    }

    /// Entra's create body (ENTRA.md), with every attribute any of the three vendors takes.
    fn entra_create(&self) -> Value {
        json!({
            "schemas": [CORE, ENT, JOSTLE, JOYN],
            "externalId": format!("ext-{}", self.local),
            "userName": self.user_name(),
            "active": self.active,
            "displayName": self.display,
            "title": self.title,
            "nickName": "not sent anywhere",
            "emails": [
                {"primary": true, "type": "work", "value": self.user_name()},
                {"type": "alternate1", "value": format!("{}@alt.example", self.local)}
            ],
            "phoneNumbers": [{"type": "mobile", "value": self.mobile}, {"type": "work", "value": "+1 555 0000"}],
            "addresses": [{"type": "work", "locality": self.city, "country": "NO"}],
            "meta": {"resourceType": "User"},
            "name": {"formatted": format!("{} {}", self.given, self.family), "familyName": self.family, "givenName": self.given},
            "roles": [],
            ENT: {"department": self.department, "employeeNumber": "701984", "manager": {"value": "26118915-6090-4610-87a4-b2a8f2f9c52d"}},
            JOSTLE: {"alternateEmail1Label": "Lab"},
            JOYN: {"xid": "X-1", "joynFieldId": "F-9"}
        })
    }

    /// What Jostle should hold (VENDORS.md § Jostle: the ten attributes).
    fn jostle(&self) -> Value {
        json!({
            "userName": self.user_name(),
            "active": self.active,
            "name": {"givenName": self.given, "familyName": self.family},
            "emails": [
                {"type": "work", "value": self.user_name()},
                {"type": "alternate1", "value": format!("{}@alt.example", self.local)}
            ],
            JOSTLE: {"alternateEmail1Label": "Lab"}
        })
    }

    /// What Joyn FSM should hold (VENDORS.md § Joyn FSM).
    fn joyn(&self) -> Value {
        json!({
            "userName": self.user_name(),
            "active": self.active,
            "displayName": self.display,
            "externalId": format!("ext-{}", self.local),
            "name": {"formatted": format!("{} {}", self.given, self.family), "givenName": self.given, "familyName": self.family},
            "emails": [{"type": "work", "value": self.user_name()}],
            "addresses": [{"type": "work", "locality": self.city, "country": "NO"}],
            "phoneNumbers": [{"type": "mobile", "value": self.mobile}],
            ENT: {"department": self.department},
            JOYN: {"xid": "X-1", "joynFieldId": "F-9"}
        })
    }

    /// What the JumpCloud-style directory should hold (VENDORS.md § JumpCloud; username from the
    /// local part of userName; manager never sent).
    fn jumpcloud(&self) -> Value {
        json!({
            "userName": self.local,
            "active": self.active,
            "displayName": self.display,
            "title": self.title,
            "name": {"givenName": self.given, "familyName": self.family},
            "emails": [{"type": "work", "value": self.user_name(), "primary": true}],
            ENT: {"department": self.department, "employeeNumber": "701984"}
        })
    }
}

fn alice() -> Person {
    Person {
        local: "first.last",
        given: "First",
        family: "Last",
        display: "First Last",
        title: "Engineer",
        department: "R&D",
        mobile: "+47 400 00 000",
        city: "Oslo",
        active: true,
    }
}

/// The simulator's stored user without what the app adds (`id`, `meta`, `schemas`).
fn held(sim: &vendor_sim::Sim, user_name: &str) -> Option<Value> {
    let mut u = sim.user_by_username(user_name)?;
    let o: &mut Map<String, Value> = u.as_object_mut()?;
    for k in ["id", "meta", "schemas"] {
        o.remove(k);
    }
    Some(u)
}

fn patch(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

fn three_vendors_and_a_group_target() -> Vec<TargetSpec> {
    vec![
        TargetSpec::vendor("jostle", "jostle", FAST_RETRY),
        // Joyn FSM only gets engineers: a title change is a scope exit, deprovisioned by delete.
        TargetSpec::vendor(
            "joyn",
            "joyn-fsm",
            &format!("scope = 'title eq \"Engineer\"'\ndeprovision = \"delete\"\n{FAST_RETRY}"),
        ),
        TargetSpec::vendor("jumpcloud", "jumpcloud", &format!("username_from = \"userName_local_part\"\n{FAST_RETRY}")),
        TargetSpec::new("crm", &format!("groups = true\n{FAST_RETRY}")),
    ]
}

fn assert_states(app: &DeliveryApp, p: &Person, joyn_has_it: bool) {
    let un = p.user_name();
    assert_eq!(held(&app.sims[0], &un), Some(p.jostle()), "Jostle holds exactly its table");
    if joyn_has_it {
        assert_eq!(held(&app.sims[1], &un), Some(p.joyn()), "Joyn FSM holds exactly its table");
    }
    assert_eq!(held(&app.sims[2], p.local), Some(p.jumpcloud()), "JumpCloud holds exactly its table");
}

/// Create, update of every supported attribute, disable, re-enable, scope exit and delete.
async fn entra_provisions_three_vendors(app: DeliveryApp) {
    let mut p = alice();
    let r = app.app.post(&app.token, "/Users?aadOptscim062020", &p.entra_create()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert!(app.settled(WAIT).await, "{:?}", app.deliveries());
    assert_states(&app, &p, true);

    // Every supported attribute changes, in Entra's legacy dialect and in the flagged one.
    let legacy = patch(json!([
        {"op": "Replace", "path": "name.givenName", "value": "Firsta"},
        {"op": "Replace", "path": "name.familyName", "value": "Lasta"},
        {"op": "Replace", "path": "name.formatted", "value": "Firsta Lasta"},
        {"op": "Replace", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+47 411 11 111"},
        {"op": "Replace", "path": "addresses[type eq \"work\"].locality", "value": "Bergen"},
        {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Ops"}
    ]));
    let r = app.app.patch(&app.token, &format!("/Users/{id}"), &legacy).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let flagged = patch(json!([{"op": "replace", "value": {"displayName": "Firsta Lasta"}}]));
    let r = app.app.patch(&app.token, &format!("/Users/{id}?aadOptscim062020"), &flagged).await;
    assert_eq!(r.status, 200, "{}", r.text);
    p = Person {
        given: "Firsta",
        family: "Lasta",
        display: "Firsta Lasta",
        mobile: "+47 411 11 111",
        city: "Bergen",
        department: "Ops",
        ..p
    };
    if !app.settled(WAIT).await {
        for sim in &app.sims {
            for r in sim.requests() {
                eprintln!("SIMLOG {} {} {} {:?} {}", sim.profile().name(), r.method, r.path, r.status, r.body);
            }
        }
        panic!("not settled");
    }
    assert_states(&app, &p, true);

    // Disable, then re-enable.
    let r = app
        .app
        .patch(
            &app.token,
            &format!("/Users/{id}"),
            &patch(json!([{"op": "Replace", "path": "active", "value": "False"}])),
        )
        .await;
    assert_eq!(r.status, 200);
    p.active = false;
    assert!(app.settled(WAIT).await, "{:#?}", app.deliveries());
    assert_states(&app, &p, true);
    let r = app
        .app
        .patch(&app.token, &format!("/Users/{id}"), &patch(json!([{"op": "replace", "path": "active", "value": true}])))
        .await;
    assert_eq!(r.status, 200);
    p.active = true;
    assert!(app.settled(WAIT).await);
    assert_states(&app, &p, true);

    // Scope exit at Joyn FSM (no longer an engineer): deleted there, the others follow the title.
    let r = app
        .app
        .patch(
            &app.token,
            &format!("/Users/{id}"),
            &patch(json!([{"op": "Replace", "path": "title", "value": "Manager"}])),
        )
        .await;
    assert_eq!(r.status, 200);
    p.title = "Manager";
    assert!(app.settled(WAIT).await);
    assert!(app.sims[1].user_by_username(&p.user_name()).is_none(), "deleted at Joyn FSM on scope exit");
    assert_states(&app, &p, false);

    // Hard delete: Jostle and JumpCloud deactivate (their deprovision), nothing is deleted there.
    let r = app.app.delete(&app.token, &format!("/Users/{id}")).await;
    assert_eq!(r.status, 204);
    assert!(app.settled(WAIT).await);
    p.active = false;
    assert_states(&app, &p, false);
    assert!(app.deliveries().iter().all(|d| d.state == DeliveryState::Done), "{:?}", app.deliveries());

    // No vendor ever received a request its simulator refused.
    for sim in &app.sims {
        let refused: Vec<_> = sim.requests().into_iter().filter(|r| r.status.is_some_and(|s| s >= 400)).collect();
        assert!(refused.is_empty(), "{:?}", refused.iter().map(|r| (&r.method, &r.path, &r.body)).collect::<Vec<_>>());
    }
}
both_backends_delivery!(entra_provisions_three_vendors, super::three_vendors_and_a_group_target());

/// An inactive new user never reaches JumpCloud (not even a lookup); it arrives once active.
async fn an_inactive_new_user_never_reaches_jumpcloud(app: DeliveryApp) {
    let p = Person { local: "sleepy.user", active: false, ..alice() };
    let r = app.app.post(&app.token, "/Users", &p.entra_create()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert!(app.settled(WAIT).await);
    assert!(app.sims[2].requests().is_empty(), "JumpCloud got {:?}", app.sims[2].requests());
    assert_eq!(held(&app.sims[0], &p.user_name()).unwrap()["active"], false, "Jostle creates inactive users");
    let r = app
        .app
        .patch(
            &app.token,
            &format!("/Users/{id}"),
            &patch(json!([{"op": "Replace", "path": "active", "value": "True"}])),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(app.settled(WAIT).await);
    assert_eq!(held(&app.sims[2], "sleepy.user"), Some(Person { active: true, ..p }.jumpcloud()));
}
both_backends_delivery!(an_inactive_new_user_never_reaches_jumpcloud, super::three_vendors_and_a_group_target());

/// A group with members is stored and served, reaches the generic target that takes groups, and
/// never reaches Jostle, Joyn FSM or JumpCloud, with no error anywhere.
async fn groups_go_only_where_groups_are_taken(app: DeliveryApp) {
    let r = app.app.post(&app.token, "/Users", &alice().entra_create()).await;
    let uid = r.body["id"].as_str().unwrap().to_owned();
    let group = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Sales", "externalId": "g-1", "members": []});
    let r = app.app.post(&app.token, "/Groups", &group).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let gid = r.body["id"].as_str().unwrap().to_owned();
    let add = patch(json!([{"op": "Add", "path": "members", "value": [{"value": uid}]}]));
    assert_eq!(app.app.patch(&app.token, &format!("/Groups/{gid}"), &add).await.status, 204);
    assert!(app.settled(WAIT).await, "{:?}", app.deliveries());
    let served = app.app.get(&app.token, &format!("/Groups/{gid}")).await;
    assert_eq!(served.body["members"][0]["value"], uid.as_str());
    let crm = &app.sims[3];
    assert_eq!(crm.groups().len(), 1);
    assert_eq!(crm.groups()[0]["members"][0]["value"], crm.user_by_username("first.last@corp.example").unwrap()["id"]);
    for vendor in &app.sims[..3] {
        assert!(vendor.requests().iter().all(|r| !r.path.contains("/Groups")), "a vendor saw a group request");
    }
    assert!(app.deliveries().iter().all(|d| d.state == DeliveryState::Done), "{:?}", app.deliveries());
    assert!(app.deliveries().iter().filter(|d| d.kind == scimgw_store::Kind::Group).all(|d| d.target == "crm"));
}
both_backends_delivery!(groups_go_only_where_groups_are_taken, super::three_vendors_and_a_group_target());

/// `costCenter` and `organization`: Entra may send them bare (as JumpCloud's guide writes them)
/// or under the Enterprise URN (as RFC 7643 defines them). The gateway takes both, and the
/// directory gets them without a URN, the spelling its table lists, on create and on update.
async fn cost_center_and_organization_reach_jumpcloud_without_a_urn(app: DeliveryApp) {
    let p = Person { local: "cost.center", ..alice() };
    let mut body = p.entra_create();
    body["costCenter"] = json!("CC-1");
    body[ENT]["organization"] = json!("Contoso");
    let r = app.app.post(&app.token, "/Users", &body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body[ENT]["costCenter"], "CC-1", "stored in the Enterprise extension: {}", r.text);
    assert!(r.body.get("costCenter").is_none());
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert!(app.settled(WAIT).await, "{:?}", app.deliveries());
    let sent = |method: &str| -> Vec<Value> {
        app.sims[2].requests().into_iter().filter(|r| r.method == method).filter_map(|r| r.json()).collect()
    };
    let created = sent("POST");
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!((&created[0]["costCenter"], &created[0]["organization"]), (&json!("CC-1"), &json!("Contoso")));
    assert_eq!(created[0][ENT], json!({"department": "R&D", "employeeNumber": "701984"}));

    // Legacy dialect with the bare name, flagged dialect with the Enterprise one.
    let r = app
        .app
        .patch(
            &app.token,
            &format!("/Users/{id}"),
            &patch(json!([
                {"op": "Replace", "path": "costCenter", "value": "CC-2"},
                {"op": "Replace", "path": format!("{ENT}:organization"), "value": "Fabrikam"}
            ])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(app.settled(WAIT).await, "{:?}", app.deliveries());
    let patched = sent("PATCH");
    assert_eq!(patched.len(), 1, "{patched:?}");
    let mut ops = patched[0]["Operations"].as_array().cloned().unwrap_or_default();
    ops.sort_by_key(|o| o["path"].as_str().map(str::to_owned));
    assert_eq!(
        ops,
        [
            json!({"op": "replace", "path": "costCenter", "value": "CC-2"}),
            json!({"op": "replace", "path": "organization", "value": "Fabrikam"})
        ]
    );
    for sim in &app.sims {
        let refused: Vec<_> = sim.requests().into_iter().filter(|r| r.status.is_some_and(|s| s >= 400)).collect();
        assert!(refused.is_empty(), "{:?}", refused.iter().map(|r| (&r.method, &r.path, &r.body)).collect::<Vec<_>>());
    }
}
both_backends_delivery!(
    cost_center_and_organization_reach_jumpcloud_without_a_urn,
    super::three_vendors_and_a_group_target()
);

/// What each target receives when Entra disables a user (docs/entra.md, "When Entra disables a
/// user"): decided by the target's `scope` and `deprovision`.
fn disable_matrix() -> Vec<TargetSpec> {
    vec![
        // No scope: the disabled user is still in scope, `deprovision` does not matter.
        TargetSpec::vendor("jostle", "jostle", &format!("deprovision = \"delete\"\n{FAST_RETRY}")),
        // A scope that excludes inactive users, with delete.
        TargetSpec::vendor(
            "joyn",
            "joyn-fsm",
            &format!("scope = 'active eq true'\ndeprovision = \"delete\"\n{FAST_RETRY}"),
        ),
        // A scope that excludes inactive users, with deactivate.
        TargetSpec::vendor(
            "jumpcloud",
            "jumpcloud",
            &format!("username_from = \"userName_local_part\"\nscope = 'active eq true'\n{FAST_RETRY}"),
        ),
    ]
}

async fn a_disabled_user_reaches_each_target_as_its_scope_and_deprovision_say(app: DeliveryApp) {
    let p = Person { local: "to.disable", ..alice() };
    let r = app.app.post(&app.token, "/Users", &p.entra_create()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert!(app.settled(WAIT).await, "{:?}", app.deliveries());
    let before: Vec<usize> = app.sims.iter().map(|s| s.requests().len()).collect();
    // Entra's legacy disable, with a title change in the same request.
    let disable = patch(json!([
        {"op": "Replace", "path": "active", "value": "False"},
        {"op": "Replace", "path": "title", "value": "Retired"}
    ]));
    let r = app.app.patch(&app.token, &format!("/Users/{id}"), &disable).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(app.settled(WAIT).await, "{:?}", app.deliveries());
    let after = |i: usize| -> Vec<(String, Option<Value>)> {
        app.sims[i].requests().into_iter().skip(before[i]).map(|r| (r.method.clone(), r.json())).collect()
    };
    // Jostle (no scope): an ordinary update; title is not in Jostle's table, so only `active`.
    let jostle = after(0);
    assert_eq!(jostle.len(), 1, "{jostle:?}");
    assert_eq!(jostle[0].0, "PATCH");
    assert_eq!(
        jostle[0].1.as_ref().map(|b| b["Operations"].clone()),
        Some(json!([{"op": "Replace", "path": "active", "value": false}]))
    );
    // Joyn FSM (scope excludes inactive users, delete): DELETE.
    let joyn = after(1);
    assert_eq!(joyn.iter().map(|(m, _)| m.as_str()).collect::<Vec<_>>(), ["DELETE"], "{joyn:?}");
    assert!(app.sims[1].user_by_username(&p.user_name()).is_none());
    // JumpCloud (scope excludes inactive users, deactivate): `replace active false` alone, the
    // title change is not sent while the user is out of scope.
    let jc = after(2);
    assert_eq!(jc.len(), 1, "{jc:?}");
    assert_eq!(jc[0].0, "PATCH");
    assert_eq!(
        jc[0].1.as_ref().map(|b| b["Operations"].clone()),
        Some(json!([{"op": "replace", "path": "active", "value": false}]))
    );
    assert_eq!(held(&app.sims[2], p.local).unwrap()["title"], "Engineer");
}
both_backends_delivery!(a_disabled_user_reaches_each_target_as_its_scope_and_deprovision_say, super::disable_matrix());
