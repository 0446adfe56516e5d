//! The Joyn FSM profile over HTTP: each rule of VENDORS.md "Joyn FSM" broken once (the right
//! status, a SCIM error naming the attribute, nothing stored) and kept once.

#![expect(clippy::unwrap_used, reason = "test helpers: a failed setup must fail the test loudly")]

mod common;

use std::sync::Arc;

use common::{
    Change, Client, ENTERPRISE, GROUP_SCHEMA, USER_SCHEMA, assert_error, assert_invalid_value, encode, patch_op,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use vendor_sim::{JOYN_FSM_USER_SCHEMA, JoynFsmProfile, Sim, SimConfig};

fn start() -> (Sim, Client) {
    let sim = Sim::start(SimConfig::with_profile(Arc::new(JoynFsmProfile))).unwrap();
    let client = Client::new(&sim);
    (sim, client)
}

/// The two required attributes and nothing else.
fn smallest(user_name: &str) -> Value {
    json!({
        "schemas": [USER_SCHEMA],
        "userName": user_name,
        "emails": [{"type": "work", "value": format!("{user_name}@example.com")}]
    })
}

/// Every attribute of the table.
fn full(user_name: &str) -> Value {
    json!({
        "schemas": [USER_SCHEMA, ENTERPRISE, JOYN_FSM_USER_SCHEMA],
        "userName": user_name,
        "externalId": "e-1",
        "active": true,
        "displayName": "Ada Lovelace",
        "name": {"formatted": "Ada Lovelace", "givenName": "Ada", "familyName": "Lovelace"},
        "emails": [{"type": "work", "value": "ada@example.com", "primary": true}],
        "addresses": [{
            "type": "work", "formatted": "1 Main St, London", "streetAddress": "1 Main St", "locality": "London",
            "region": "Greater London", "postalCode": "N1", "country": "GB", "primary": true
        }],
        "phoneNumbers": [{"type": "mobile", "value": "+44 7700 900000"}],
        ENTERPRISE: {"department": "Engines"},
        JOYN_FSM_USER_SCHEMA: {"xid": "X-17", "joynFieldId": "F/9 opaque"}
    })
}

#[tokio::test]
async fn the_required_pair_and_every_attribute_of_the_table_are_accepted() {
    let (_sim, c) = start();
    assert_eq!(c.post("/Users", &smallest("ada")).await.status, StatusCode::CREATED);
    let r = c.post("/Users", &full("grace")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body[JOYN_FSM_USER_SCHEMA], json!({"xid": "X-17", "joynFieldId": "F/9 opaque"}), "opaque, as sent");
    assert_eq!(r.body[ENTERPRISE]["department"], "Engines");
    assert_eq!(r.body["addresses"][0]["postalCode"], "N1");
}

#[tokio::test]
async fn a_user_without_a_work_email_is_refused() {
    let (sim, c) = start();
    let mut no_email = smallest("ada");
    no_email.as_object_mut().unwrap().remove("emails");
    assert_invalid_value(&c.post("/Users", &no_email).await, "a work email is required");
    let mut blank = smallest("ada");
    blank["emails"][0]["value"] = json!("");
    assert_invalid_value(&c.post("/Users", &blank).await, "a work email is required");
    assert!(sim.users().is_empty());

    let id = c.post("/Users", &smallest("ada")).await.body["id"].as_str().unwrap().to_owned();
    let mut replacement = smallest("ada");
    replacement.as_object_mut().unwrap().remove("emails");
    // Entra never PUTs a user, and neither may the gateway: refused whatever it carries.
    assert_error(&c.put(&format!("/Users/{id}"), &replacement).await, StatusCode::METHOD_NOT_ALLOWED, None, "PATCH");
    let remove = patch_op(json!([{"op": "remove", "path": "emails[type eq \"work\"]"}]));
    assert_invalid_value(&c.patch(&format!("/Users/{id}"), &remove).await, "a work email is required");
    assert_eq!(sim.user(&id).unwrap()["emails"][0]["value"], "ada@example.com", "a refused write changes nothing");
}

#[tokio::test]
async fn an_attribute_outside_the_table_is_refused_by_name() {
    let (sim, c) = start();
    let cases: Vec<(&str, Change)> = vec![
        ("title", Box::new(|u| u["title"] = json!("Engineer"))),
        ("nickName", Box::new(|u| u["nickName"] = json!("Ada"))),
        ("name.middleName", Box::new(|u| u["name"] = json!({"givenName": "Ada", "middleName": "A."}))),
        (
            "emails[type eq \"home\"]",
            Box::new(|u| u["emails"].as_array_mut().unwrap().push(json!({"type": "home", "value": "a@h.io"}))),
        ),
        ("phoneNumbers[type eq \"work\"]", Box::new(|u| u["phoneNumbers"] = json!([{"type": "work", "value": "1"}]))),
        ("phoneNumbers[0] has no type", Box::new(|u| u["phoneNumbers"] = json!([{"value": "1"}]))),
        ("addresses[type eq \"home\"]", Box::new(|u| u["addresses"] = json!([{"type": "home", "locality": "X"}]))),
        ("emails[0].display", Box::new(|u| u["emails"][0]["display"] = json!("Ada"))),
    ];
    for (names, change) in cases {
        let mut body = smallest("ada");
        change(&mut body);
        assert_invalid_value(&c.post("/Users", &body).await, names);
    }
    let mut body = smallest("ada");
    body["schemas"] = json!([USER_SCHEMA, ENTERPRISE]);
    body[ENTERPRISE] = json!({"department": "Engines", "employeeNumber": "7"});
    assert_invalid_value(&c.post("/Users", &body).await, &format!("{ENTERPRISE}:employeeNumber"));
    assert!(sim.users().is_empty(), "nothing refused is stored");
}

#[tokio::test]
async fn a_patch_that_adds_an_attribute_outside_the_table_is_refused() {
    let (sim, c) = start();
    let id = c.post("/Users", &full("ada")).await.body["id"].as_str().unwrap().to_owned();
    let add = patch_op(json!([{"op": "add", "path": "phoneNumbers", "value": [{"type": "fax", "value": "1"}]}]));
    assert_invalid_value(&c.patch(&format!("/Users/{id}"), &add).await, "phoneNumbers[type eq \"fax\"]");
    let ok = patch_op(json!([
        {"op": "replace", "path": "addresses[type eq \"work\"].locality", "value": "Leeds"},
        {"op": "replace", "path": format!("{JOYN_FSM_USER_SCHEMA}:xid"), "value": "X-18"}
    ]));
    let r = c.patch(&format!("/Users/{id}"), &ok).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(sim.user(&id).unwrap()["addresses"][0]["locality"], "Leeds");
}

#[tokio::test]
async fn user_names_are_unique_ignoring_case() {
    let (sim, c) = start();
    c.post("/Users", &smallest("ada")).await;
    assert_error(&c.post("/Users", &smallest("Ada")).await, StatusCode::CONFLICT, Some("uniqueness"), "userName");
    assert_eq!(sim.users().len(), 1);
}

#[tokio::test]
async fn filters_are_on_user_name_only() {
    let (_sim, c) = start();
    c.post("/Users", &full("ada")).await;
    let r = c.get(&format!("/Users?filter={}", encode("userName eq \"ada\""))).await;
    assert_eq!(r.body["totalResults"], 1);
    for refused in ["externalId eq \"e-1\"", "emails[type eq \"work\"].value eq \"ada@example.com\"", "userName pr"] {
        let r = c.get(&format!("/Users?filter={}", encode(refused))).await;
        assert_error(&r, StatusCode::BAD_REQUEST, Some("invalidFilter"), "userName");
    }
}

#[tokio::test]
async fn there_are_no_groups() {
    let (_sim, c) = start();
    let r = c.post("/Groups", &json!({"schemas": [GROUP_SCHEMA], "displayName": "Crew"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = c.get("/ResourceTypes").await;
    assert_eq!(r.body["totalResults"], 1);
    let extensions: Vec<&str> = r.body["Resources"][0]["schemaExtensions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["schema"].as_str().unwrap())
        .collect();
    assert_eq!(extensions, [ENTERPRISE, JOYN_FSM_USER_SCHEMA]);
}

#[tokio::test]
async fn a_patch_path_outside_the_table_is_refused_by_path() {
    let (sim, c) = start();
    let id = c.post("/Users", &full("ada")).await.body["id"].as_str().unwrap().to_owned();
    let before = sim.user(&id).unwrap();
    for (ops, names) in [
        (
            json!([{"op": "Add", "path": "emails[type eq \"personal\"].value", "value": "a@h.io"}]),
            "emails[type eq \"personal\"]",
        ),
        (json!([{"op": "Remove", "path": "title"}]), "\"title\""),
        (json!([{"op": "Replace", "path": format!("{ENTERPRISE}:employeeNumber"), "value": "7"}]), "employeeNumber"),
        (
            json!([{"op": "Replace", "path": "phoneNumbers[value eq \"1\"].type", "value": "work"}]),
            "phoneNumbers[value eq",
        ),
    ] {
        let r = c.patch(&format!("/Users/{id}"), &patch_op(ops.clone())).await;
        assert_error(&r, StatusCode::BAD_REQUEST, Some("invalidPath"), names);
    }
    let mobile =
        patch_op(json!([{"op": "Replace", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555"}]));
    assert_eq!(c.patch(&format!("/Users/{id}"), &mobile).await.status, StatusCode::OK);
    assert_ne!(sim.user(&id).unwrap(), before);
}
