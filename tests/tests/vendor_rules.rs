//! Every rule of VENDORS.md, broken once: with `on_invalid = "reject"` the IdP gets a 400
//! `invalidValue` naming the target, the attribute and the rule, and nothing is stored; with
//! `"skip"` the user is stored, the other targets get it, and the target's skipped delivery says why.

#![cfg(test)]

use std::time::Duration;

use scimgw_e2e::both_backends_delivery;
use scimgw_e2e::delivery::{DeliveryApp, FAST_RETRY, TargetSpec};
use scimgw_store::{DeliveryState, Kind};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);
const TARGETS: [&str; 3] = ["jostle", "joyn", "jumpcloud"];

/// A user every vendor accepts.
fn valid(local: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "userName": format!("{local}@corp.example"),
        "active": true,
        "name": {"givenName": "Given", "familyName": "Family"},
        "emails": [{"type": "work", "value": format!("{local}@corp.example"), "primary": true}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": format!("n-{local}")}
    })
}

/// (case, target whose rule it breaks, attribute named, rule words, how to break it)
type Case = (&'static str, &'static str, &'static str, &'static str, fn(&mut Value));

fn cases() -> Vec<Case> {
    vec![
        ("jostle-given", "jostle", "name.givenName", "is required", |u: &mut Value| {
            u["name"].as_object_mut().unwrap().remove("givenName");
        }),
        ("jostle-family", "jostle", "name.familyName", "is required", |u: &mut Value| {
            u["name"].as_object_mut().unwrap().remove("familyName");
        }),
        ("joyn-no-work-email", "joyn", "emails[type eq \"work\"].value", "is required", |u: &mut Value| {
            u["emails"] = json!([{"type": "home", "value": "someone@home.example", "primary": true}]);
        }),
        // No "joyn-bad-work-email": Joyn FSM's guide types the work email only as a String, so a
        // malformed one is a warning (`preview`), not a refusal.
        ("jc-special-chars", "jumpcloud", "userName", "may hold only ASCII letters, digits", |u: &mut Value| {
            u["userName"] = json!("first+last@corp.example");
        }),
        // A letter outside ASCII: the guide promises nothing for it; adapter and simulator agree.
        ("jc-non-ascii", "jumpcloud", "userName", "may hold only ASCII letters, digits", |u: &mut Value| {
            u["userName"] = json!("zoë.lindqvist@corp.example");
        }),
        ("jc-still-an-email", "jumpcloud", "userName", "must not be an email address", |u: &mut Value| {
            u["userName"] = json!("a@b@corp.example");
        }),
        ("jc-no-company-email", "jumpcloud", "emails[type eq \"work\"].value", "is required", |u: &mut Value| {
            // No primary and no work email: no company email (Joyn FSM refuses it too).
            u["emails"] = json!([{"type": "home", "value": "someone@home.example"}]);
        }),
        (
            "jc-company-email-shape",
            "jumpcloud",
            "emails[type eq \"work\"].value",
            "must be an email address",
            |u: &mut Value| {
                u["emails"] = json!([{"type": "work", "value": "w@corp.example"}, {"type": "home", "value": "nope", "primary": true}]);
            },
        ),
        (
            "jc-company-email-length",
            "jumpcloud",
            "emails[type eq \"work\"].value",
            "at most 1024 characters",
            |u: &mut Value| {
                let long = format!("{}@corp.example", "e".repeat(1020));
                u["emails"] = json!([{"type": "work", "value": "w@corp.example"}, {"type": "home", "value": long, "primary": true}]);
            },
        ),
        ("jc-given-length", "jumpcloud", "name.givenName", "at most 1024 characters", |u: &mut Value| {
            u["name"]["givenName"] = json!("g".repeat(1025));
        }),
        ("jc-family-length", "jumpcloud", "name.familyName", "at most 1024 characters", |u: &mut Value| {
            u["name"]["familyName"] = json!("f".repeat(1025));
        }),
    ]
}

fn targets(on_invalid: &str) -> Vec<TargetSpec> {
    let common = format!("on_invalid = \"{on_invalid}\"\n{FAST_RETRY}");
    vec![
        TargetSpec::vendor("jostle", "jostle", &common),
        TargetSpec::vendor("joyn", "joyn-fsm", &common),
        TargetSpec::vendor("jumpcloud", "jumpcloud", &format!("username_from = \"userName_local_part\"\n{common}")),
    ]
}

async fn reject_names_target_attribute_and_rule(app: DeliveryApp) {
    for (case, target, attribute, rule, breaks) in cases() {
        let mut user = valid(case);
        breaks(&mut user);
        let r = app.app.post(&app.token, "/Users", &user).await;
        assert_eq!(r.status, 400, "{case}: {}", r.text);
        assert_eq!(r.scim_type(), Some("invalidValue"), "{case}");
        let detail = r.body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(&format!("target \"{target}\"")), "{case}: {detail}");
        assert!(detail.contains(&format!("{attribute}: ")), "{case}: {detail}");
        assert!(detail.contains(rule), "{case}: {detail}");
        let name = user["userName"].as_str().unwrap().replace('"', "\\\"");
        let found = app.app.get(&app.token, &format!("/Users?filter=userName%20eq%20%22{}%22", urlencode(&name))).await;
        assert_eq!(found.body["totalResults"], 0, "{case}: nothing stored");
    }
    assert!(app.deliveries().is_empty());
    for sim in &app.sims {
        assert!(sim.requests().is_empty(), "a refused user reached a vendor");
    }
}
both_backends_delivery!(reject_names_target_attribute_and_rule, super::targets("reject"));

async fn skip_stores_delivers_elsewhere_and_says_why(app: DeliveryApp) {
    for (case, target, attribute, rule, breaks) in cases() {
        let mut user = valid(case);
        breaks(&mut user);
        let r = app.app.post(&app.token, "/Users", &user).await;
        assert_eq!(r.status, 201, "{case}: {}", r.text);
        let id = r.body["id"].as_str().unwrap().to_owned();
        assert!(app.settled(WAIT).await, "{case}: {:?}", app.deliveries());
        let rows = app
            .app
            .store()
            .deliveries(&scimgw_store::DeliveryFilter { resource_id: Some(&id), ..Default::default() })
            .unwrap();
        let skipped = rows
            .iter()
            .find(|d| d.state == DeliveryState::Skipped && d.target == target)
            .unwrap_or_else(|| panic!("{case}: {target} did not skip: {rows:?}"));
        let why = skipped.last_error.clone().unwrap_or_default();
        assert!(why.contains(attribute) && why.contains(rule), "{case}: {why}");
        // The targets whose rules hold got the user.
        for (i, other) in TARGETS.iter().enumerate() {
            let link = app.app.store().link(&app.tenant_id, other, Kind::User, &id).unwrap();
            if *other == target {
                assert!(link.is_none(), "{case}: the skipping target has no copy");
            } else if rows.iter().any(|d| d.target == *other && d.state == DeliveryState::Skipped) {
                // This user breaks that target's rules too (only possible by design of the case).
            } else {
                let link = link.unwrap_or_else(|| panic!("{case}: {other} never got the user"));
                assert!(app.sims[i].users().iter().any(|u| u["id"] == link.remote_id.clone().unwrap().as_str()));
            }
        }
    }
}
both_backends_delivery!(skip_stores_delivers_elsewhere_and_says_why, super::targets("skip"));

/// The one rule the gateway cannot check: JumpCloud's employeeIdentifier must be unique among the
/// directory's users. The directory's 409 dead-letters the delivery with its message.
async fn a_duplicate_employee_number_is_reported_with_the_directorys_message(app: DeliveryApp) {
    let first = valid("one");
    let mut second = valid("two");
    second["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["employeeNumber"] = json!("n-one");
    assert_eq!(app.app.post(&app.token, "/Users", &first).await.status, 201);
    assert!(app.settled(WAIT).await);
    let r = app.app.post(&app.token, "/Users", &second).await;
    assert_eq!(r.status, 201);
    assert!(app.settled(WAIT).await);
    let dead: Vec<_> = app.deliveries().into_iter().filter(|d| d.state == DeliveryState::Dead).collect();
    assert_eq!(dead.len(), 1, "{:?}", app.deliveries());
    assert_eq!(dead[0].target, "jumpcloud");
    let message = dead[0].last_error.clone().unwrap_or_default();
    assert!(message.contains("409") || message.to_lowercase().contains("employee"), "{message}");
    assert_eq!(app.sims[2].users().len(), 1);
    assert_eq!(app.sims[0].users().len(), 2, "the other targets are not held up");
}
both_backends_delivery!(a_duplicate_employee_number_is_reported_with_the_directorys_message, super::targets("reject"));

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
