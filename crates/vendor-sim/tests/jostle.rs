//! The Jostle profile over HTTP: each rule of VENDORS.md "Jostle" broken once (the right status,
//! a SCIM error naming the attribute, nothing stored) and kept once.

#![expect(clippy::unwrap_used, reason = "test helpers: a failed setup must fail the test loudly")]

mod common;

use std::sync::Arc;

use common::{
    Change, Client, ENTERPRISE, GROUP_SCHEMA, USER_SCHEMA, assert_error, assert_invalid_value, encode, patch_op,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use vendor_sim::{JOSTLE_USER_SCHEMA, JostleProfile, Sim, SimConfig};

fn start() -> (Sim, Client) {
    let sim = Sim::start(SimConfig::with_profile(Arc::new(JostleProfile))).unwrap();
    let client = Client::new(&sim);
    (sim, client)
}

/// Jostle's smallest valid create.
fn smallest(user_name: &str) -> Value {
    json!({
        "schemas": [USER_SCHEMA],
        "userName": user_name,
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "active": true
    })
}

/// Every one of the ten attributes of the table.
fn full(user_name: &str) -> Value {
    json!({
        "schemas": [USER_SCHEMA, JOSTLE_USER_SCHEMA],
        "userName": user_name,
        "active": true,
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "emails": [
            {"type": "work", "value": "ada@example.com", "primary": true},
            {"type": "personal", "value": "ada@home.example"},
            {"type": "alternate1", "value": "ada@one.example"},
            {"type": "alternate2", "value": "ada@two.example"}
        ],
        JOSTLE_USER_SCHEMA: {"alternateEmail1Label": "Board", "alternateEmail2Label": "Club"}
    })
}

#[tokio::test]
async fn the_smallest_create_and_every_attribute_of_the_table_are_accepted() {
    let (sim, c) = start();
    let r = c.post("/Users", &smallest("ada")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = c.post("/Users", &full("grace")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body[JOSTLE_USER_SCHEMA]["alternateEmail2Label"], "Club");
    assert_eq!(r.body["emails"].as_array().unwrap().len(), 4);
    assert_eq!(sim.users().len(), 2);
}

#[tokio::test]
async fn an_attribute_outside_the_table_is_refused_by_name() {
    let (sim, c) = start();
    let cases: Vec<(&str, Change)> = vec![
        ("externalId", Box::new(|u| u["externalId"] = json!("e-1"))),
        ("displayName", Box::new(|u| u["displayName"] = json!("Ada"))),
        ("title", Box::new(|u| u["title"] = json!("Countess"))),
        ("nickName", Box::new(|u| u["nickName"] = json!("Ada"))),
        ("phoneNumbers", Box::new(|u| u["phoneNumbers"] = json!([{"type": "work", "value": "+1 555"}]))),
        ("name.middleName", Box::new(|u| u["name"]["middleName"] = json!("Augusta"))),
        ("name.formatted", Box::new(|u| u["name"]["formatted"] = json!("Ada Lovelace"))),
        ("emails[type eq \"home\"]", Box::new(|u| u["emails"] = json!([{"type": "home", "value": "a@b.io"}]))),
        ("emails[0] has no type", Box::new(|u| u["emails"] = json!([{"value": "a@b.io"}]))),
        ("emails[0].display", Box::new(|u| u["emails"] = json!([{"type": "work", "value": "a@b.io", "display": "A"}]))),
    ];
    for (names, change) in cases {
        let mut body = smallest("ada");
        change(&mut body);
        assert_invalid_value(&c.post("/Users", &body).await, names);
    }
    // The Enterprise extension is not Jostle's: refused by its URN.
    let mut body = smallest("ada");
    body["schemas"] = json!([USER_SCHEMA, ENTERPRISE]);
    body[ENTERPRISE] = json!({"department": "R&D"});
    assert_invalid_value(&c.post("/Users", &body).await, ENTERPRISE);
    assert!(sim.users().is_empty(), "nothing refused is stored");
}

#[tokio::test]
async fn a_first_and_a_last_name_are_required_on_every_write() {
    let (sim, c) = start();
    let mut no_given = smallest("ada");
    no_given["name"] = json!({"familyName": "Lovelace"});
    assert_invalid_value(&c.post("/Users", &no_given).await, "name.givenName");
    let mut blank_family = smallest("ada");
    blank_family["name"]["familyName"] = json!("  ");
    assert_invalid_value(&c.post("/Users", &blank_family).await, "name.familyName");

    let id = c.post("/Users", &smallest("ada")).await.body["id"].as_str().unwrap().to_owned();
    let mut replacement = smallest("ada");
    replacement.as_object_mut().unwrap().remove("name");
    // Entra never PUTs a user, and neither may the gateway: refused whatever it carries.
    assert_error(&c.put(&format!("/Users/{id}"), &replacement).await, StatusCode::METHOD_NOT_ALLOWED, None, "PATCH");
    let remove = patch_op(json!([{"op": "remove", "path": "name.familyName"}]));
    assert_invalid_value(&c.patch(&format!("/Users/{id}"), &remove).await, "name.familyName");
    assert_eq!(sim.user(&id).unwrap()["name"]["familyName"], "Lovelace", "a refused write changes nothing");
}

#[tokio::test]
async fn a_work_email_is_not_required() {
    let (_sim, c) = start();
    assert_eq!(c.post("/Users", &smallest("ada")).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn user_names_are_unique_ignoring_case() {
    let (_sim, c) = start();
    let id = c.post("/Users", &smallest("ada")).await.body["id"].as_str().unwrap().to_owned();
    assert_error(&c.post("/Users", &smallest("ADA")).await, StatusCode::CONFLICT, Some("uniqueness"), "userName");
    c.post("/Users", &smallest("grace")).await;
    let rename = patch_op(json!([{"op": "replace", "path": "userName", "value": "Grace"}]));
    let r = c.patch(&format!("/Users/{id}"), &rename).await;
    assert_error(&r, StatusCode::CONFLICT, Some("uniqueness"), "userName");
}

#[tokio::test]
async fn users_are_updated_deactivated_and_deleted_without_any_url_flag() {
    let (sim, c) = start();
    let id = c.post("/Users", &full("ada")).await.body["id"].as_str().unwrap().to_owned();
    let relabel = patch_op(json!([
        {"op": "replace", "path": format!("{JOSTLE_USER_SCHEMA}:alternateEmail1Label"), "value": "Board 2"},
        {"op": "replace", "path": "emails[type eq \"alternate1\"].value", "value": "ada@new.example"},
        {"op": "replace", "path": "active", "value": false}
    ]));
    let r = c.patch(&format!("/Users/{id}"), &relabel).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body[JOSTLE_USER_SCHEMA]["alternateEmail1Label"], "Board 2");
    assert_eq!(r.body["active"], false);
    assert_eq!(c.put(&format!("/Users/{id}"), &smallest("ada")).await.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(sim.user(&id).unwrap()["active"], false, "a refused PUT changes nothing");
    assert_eq!(c.delete(&format!("/Users/{id}")).await.status, StatusCode::NO_CONTENT);
    assert!(sim.users().is_empty());
}

#[tokio::test]
async fn filters_are_on_user_name_only() {
    let (_sim, c) = start();
    c.post("/Users", &full("ada")).await;
    let r = c.get(&format!("/Users?filter={}", encode("userName eq \"ADA\""))).await;
    assert_eq!((r.status, r.body["totalResults"].clone()), (StatusCode::OK, json!(1)));
    for refused in ["active eq true", "emails[type eq \"work\"].value eq \"ada@example.com\"", "userName sw \"a\""] {
        let r = c.get(&format!("/Users?filter={}", encode(refused))).await;
        assert_error(&r, StatusCode::BAD_REQUEST, Some("invalidFilter"), "userName");
    }
}

#[tokio::test]
async fn there_are_no_groups() {
    let (_sim, c) = start();
    let r = c.post("/Groups", &json!({"schemas": [GROUP_SCHEMA], "displayName": "Staff"})).await;
    assert_error(&r, StatusCode::NOT_FOUND, None, "groups");
    assert_eq!(c.get("/Groups").await.status, StatusCode::NOT_FOUND);
    let r = c.get("/ResourceTypes").await;
    assert_eq!(r.body["totalResults"], 1);
    assert_eq!(r.body["Resources"][0]["name"], "User");
    assert_eq!(r.body["Resources"][0]["schemaExtensions"], json!([{"schema": JOSTLE_USER_SCHEMA, "required": false}]));
    let r = c.get("/Schemas").await;
    let ids: Vec<&str> = r.body["Resources"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [USER_SCHEMA, JOSTLE_USER_SCHEMA]);
}

#[test]
fn seeded_users_follow_the_same_rules() {
    let sim = Sim::start(SimConfig::with_profile(Arc::new(JostleProfile))).unwrap();
    let mut with_external_id = smallest("ada");
    with_external_id["externalId"] = json!("e-1");
    assert!(sim.insert_user(with_external_id).is_err());
    assert!(sim.insert_user(smallest("ada")).is_ok());
}

#[tokio::test]
async fn a_patch_path_outside_the_table_is_refused_even_when_it_would_change_nothing() {
    let (sim, c) = start();
    let id = c.post("/Users", &full("ada")).await.body["id"].as_str().unwrap().to_owned();
    let before = sim.user(&id).unwrap();
    for (ops, names) in [
        (json!([{"op": "Remove", "path": "title"}]), "\"title\""),
        (json!([{"op": "Replace", "path": "externalId", "value": "e-1"}]), "\"externalId\""),
        (
            json!([{"op": "Replace", "path": "emails[type eq \"home\"].value", "value": "a@h.io"}]),
            "emails[type eq \"home\"]",
        ),
        (json!([{"op": "Replace", "path": "name.formatted", "value": "Ada L."}]), "\"name.formatted\""),
        (json!([{"op": "Replace", "value": {"displayName": "Ada"}}]), "\"displayName\""),
    ] {
        let r = c.patch(&format!("/Users/{id}"), &patch_op(ops.clone())).await;
        assert_error(&r, StatusCode::BAD_REQUEST, Some("invalidPath"), names);
    }
    assert_eq!(sim.user(&id).unwrap(), before, "nothing refused is stored");
}
