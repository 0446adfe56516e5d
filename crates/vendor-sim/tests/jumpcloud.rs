//! The JumpCloud profile over HTTP: each rule of VENDORS.md "JumpCloud-style directory" broken
//! once (the right status, a SCIM error naming the attribute, nothing stored) and kept once.

#![expect(clippy::unwrap_used, reason = "test helpers: a failed setup must fail the test loudly")]

mod common;

use std::sync::Arc;

use common::{
    Change, Client, ENTERPRISE, GROUP_SCHEMA, USER_SCHEMA, assert_error, assert_invalid_value, encode, patch_op,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use vendor_sim::{AAD_OPT_FLAG, JumpCloudProfile, Sim, SimConfig};

fn start() -> (Sim, Client) {
    let sim = Sim::start(SimConfig::with_profile(Arc::new(JumpCloudProfile))).unwrap();
    let client = Client::new(&sim);
    (sim, client)
}

/// `/Users/<id>` with the flag that allows updates.
fn with_flag(id: &str) -> String {
    format!("/Users/{id}?{AAD_OPT_FLAG}")
}

/// A user as the vendor advises: the mail nickname as userName, the work email as company email.
fn valid(user_name: &str) -> Value {
    json!({
        "schemas": [USER_SCHEMA],
        "userName": user_name,
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "emails": [{"type": "work", "value": format!("{user_name}@example.com"), "primary": true}],
        "active": true
    })
}

/// Every attribute of the mapping table.
fn full(user_name: &str, employee_number: &str) -> Value {
    let mut u = valid(user_name);
    u["schemas"] = json!([USER_SCHEMA, ENTERPRISE]);
    u["displayName"] = json!("Ada Lovelace");
    u["title"] = json!("Analyst");
    u["locale"] = json!("London");
    u["userType"] = json!("Employee");
    u[ENTERPRISE] = json!({
        "department": "Engines", "costCenter": "CC-1", "organization": "Analytical", "employeeNumber": employee_number
    });
    u
}

async fn create(c: &Client, body: &Value) -> String {
    let r = c.post("/Users", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn creates_and_reads_need_no_flag_but_updates_and_deletes_do() {
    let (sim, c) = start();
    let id = create(&c, &full("ada.lovelace", "1")).await;
    assert_eq!(c.get(&format!("/Users/{id}")).await.status, StatusCode::OK);
    assert_eq!(
        c.get(&format!("/Users?filter={}", encode("userName eq \"ada.lovelace\""))).await.status,
        StatusCode::OK
    );
    let search =
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "userName eq \"x\""});
    assert_eq!(c.post("/Users/.search", &search).await.status, StatusCode::OK);

    let deactivate = patch_op(json!([{"op": "replace", "path": "active", "value": false}]));
    for r in [
        c.patch(&format!("/Users/{id}"), &deactivate).await,
        c.put(&format!("/Users/{id}"), &valid("ada.lovelace")).await,
        c.delete(&format!("/Users/{id}")).await,
    ] {
        assert_error(&r, StatusCode::FORBIDDEN, None, AAD_OPT_FLAG);
    }
    assert_eq!(sim.user(&id).unwrap()["active"], true, "nothing changed without the flag");

    let r = c.patch(&with_flag(&id), &deactivate).await;
    assert_eq!((r.status, r.body["active"].clone()), (StatusCode::OK, json!(false)), "{}", r.body);
    // The flag allows updates, but as Entra sends them: PATCH, never PUT.
    assert_eq!(c.put(&with_flag(&id), &valid("ada.lovelace")).await.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(c.delete(&format!("/Users/{id}?x=1&AADOPTSCIM062020")).await.status, StatusCode::NO_CONTENT);
    assert!(sim.users().is_empty());
}

#[tokio::test]
async fn an_email_shaped_user_name_is_refused() {
    let (sim, c) = start();
    let mut body = valid("ada");
    body["userName"] = json!("ada.lovelace@example.com");
    assert_invalid_value(&c.post("/Users", &body).await, "userName must not be an email address");
    assert!(sim.users().is_empty());
    let id = create(&c, &valid("ada")).await;
    let rename = patch_op(json!([{"op": "replace", "path": "userName", "value": "ada@example.com"}]));
    assert_invalid_value(&c.patch(&with_flag(&id), &rename).await, "userName must not be an email address");
}

#[tokio::test]
async fn a_user_name_has_no_special_characters_and_at_most_1024_of_them() {
    let (sim, c) = start();
    for bad in ["ada lovelace", "ada+1", "ada/x", "ada'o"] {
        let mut body = valid("ada");
        body["userName"] = json!(bad);
        assert_invalid_value(&c.post("/Users", &body).await, "userName has special characters");
    }
    let mut long = valid("ada");
    long["userName"] = json!("a".repeat(1025));
    assert_invalid_value(&c.post("/Users", &long).await, "userName is longer than 1024");
    assert!(sim.users().is_empty());
    let mut longest = valid("ada");
    longest["userName"] = json!(format!("a.b-c_{}", "d".repeat(1018)));
    create(&c, &longest).await;
}

#[tokio::test]
async fn the_company_email_is_required_email_shaped_and_at_most_1024_characters() {
    let (sim, c) = start();
    let mut none = valid("ada");
    none.as_object_mut().unwrap().remove("emails");
    assert_invalid_value(&c.post("/Users", &none).await, "the company email is required");
    let mut not_email = valid("ada");
    not_email["emails"][0]["value"] = json!("ada.lovelace");
    assert_invalid_value(&c.post("/Users", &not_email).await, "the company email (emails.value) is not an email");
    let mut long = valid("ada");
    long["emails"][0]["value"] = json!(format!("{}@example.com", "a".repeat(1013)));
    assert_invalid_value(&c.post("/Users", &long).await, "longer than 1024");
    assert!(sim.users().is_empty());
    // The company email is the primary one, typed or not, or else the work one.
    let mut untyped_primary = valid("ada");
    untyped_primary["emails"] = json!([{"value": "ada@example.com", "primary": true}]);
    create(&c, &untyped_primary).await;
    let mut work_only = valid("grace");
    work_only["emails"] = json!([{"value": "grace@example.com", "type": "work"}]);
    create(&c, &work_only).await;
}

#[tokio::test]
async fn names_are_at_most_1024_characters() {
    let (_sim, c) = start();
    for sub in ["givenName", "familyName"] {
        let mut body = valid("ada");
        body["name"][sub] = json!("é".repeat(1025));
        assert_invalid_value(&c.post("/Users", &body).await, &format!("name.{sub} is longer than 1024"));
    }
    let mut longest = valid("ada");
    longest["name"]["givenName"] = json!("é".repeat(1024));
    create(&c, &longest).await;
}

#[tokio::test]
async fn the_manager_is_not_supported() {
    let (sim, c) = start();
    let boss = create(&c, &valid("boss")).await;
    let mut body = valid("ada");
    body["schemas"] = json!([USER_SCHEMA, ENTERPRISE]);
    body[ENTERPRISE] = json!({"manager": {"value": boss}});
    assert_invalid_value(&c.post("/Users", &body).await, &format!("{ENTERPRISE}:manager\" is not supported"));
    let id = create(&c, &valid("ada")).await;
    let set = patch_op(json!([{"op": "add", "path": format!("{ENTERPRISE}:manager"), "value": {"value": boss}}]));
    assert_invalid_value(&c.patch(&with_flag(&id), &set).await, "manager\" is not supported");
    assert_eq!(sim.users().len(), 2);
}

#[tokio::test]
async fn an_attribute_outside_the_mapping_table_is_refused_by_name() {
    let (sim, c) = start();
    let cases: Vec<(&str, Change)> = vec![
        ("externalId", Box::new(|u| u["externalId"] = json!("e-1"))),
        ("nickName", Box::new(|u| u["nickName"] = json!("Ada"))),
        ("preferredLanguage", Box::new(|u| u["preferredLanguage"] = json!("en"))),
        ("phoneNumbers", Box::new(|u| u["phoneNumbers"] = json!([{"type": "mobile", "value": "1"}]))),
        ("addresses", Box::new(|u| u["addresses"] = json!([{"type": "work", "locality": "X"}]))),
        ("name.formatted", Box::new(|u| u["name"]["formatted"] = json!("Ada Lovelace"))),
        (
            "emails[type eq \"home\"]",
            Box::new(|u| u["emails"].as_array_mut().unwrap().push(json!({"type": "home", "value": "a@h.io"}))),
        ),
        (
            "division",
            Box::new(|u| {
                u["schemas"] = json!([USER_SCHEMA, ENTERPRISE]);
                u[ENTERPRISE] = json!({"division": "X"});
            }),
        ),
    ];
    for (names, change) in cases {
        let mut body = valid("ada");
        change(&mut body);
        assert_invalid_value(&c.post("/Users", &body).await, names);
    }
    assert!(sim.users().is_empty(), "nothing refused is stored");
}

#[tokio::test]
async fn every_attribute_of_the_mapping_table_is_accepted() {
    let (_sim, c) = start();
    let r = c.post("/Users", &full("ada", "1")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["userType"], "Employee");
    assert_eq!(r.body[ENTERPRISE]["employeeNumber"], "1");
}

#[tokio::test]
async fn cost_center_and_organization_are_taken_at_the_top_level_too() {
    let (sim, c) = start();
    let mut body = valid("ada");
    body["costCenter"] = json!("CC-1");
    body["organization"] = json!("Analytical");
    let id = create(&c, &body).await;
    let stored = sim.user(&id).unwrap();
    assert_eq!(stored[ENTERPRISE], json!({"costCenter": "CC-1", "organization": "Analytical"}));
    let patch = patch_op(json!([{"op": "replace", "path": "costCenter", "value": "CC-2"}]));
    let r = c.patch(&with_flag(&id), &patch).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body[ENTERPRISE]["costCenter"], "CC-2");
    let mut clash = valid("grace");
    clash["costCenter"] = json!("CC-1");
    clash["schemas"] = json!([USER_SCHEMA, ENTERPRISE]);
    clash[ENTERPRISE] = json!({"costCenter": "CC-9"});
    assert_invalid_value(&c.post("/Users", &clash).await, "costCenter was sent twice");
}

#[tokio::test]
async fn the_guide_s_lower_case_enterprise_urn_is_the_same_extension() {
    // The guide's table writes `urn:…:enterprise:2.0:user:department` (lines 65, 72).
    let (sim, c) = start();
    let lower = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user";
    let mut body = valid("ada");
    body["schemas"] = json!([USER_SCHEMA, lower]);
    body[lower] = json!({"department": "Engines", "employeeNumber": "7"});
    let id = create(&c, &body).await;
    assert_eq!(sim.user(&id).unwrap()[ENTERPRISE], json!({"department": "Engines", "employeeNumber": "7"}));
}

#[tokio::test]
async fn employee_numbers_and_user_names_are_unique() {
    let (sim, c) = start();
    let ada = create(&c, &full("ada", "E-1")).await;
    let r = c.post("/Users", &full("grace", "E-1")).await;
    assert_error(&r, StatusCode::CONFLICT, Some("uniqueness"), "employeeNumber");
    let r = c.post("/Users", &full("ADA", "E-2")).await;
    assert_error(&r, StatusCode::CONFLICT, Some("uniqueness"), "userName");
    let grace = create(&c, &full("grace", "E-2")).await;
    let take = patch_op(json!([{"op": "replace", "path": format!("{ENTERPRISE}:employeeNumber"), "value": "E-1"}]));
    assert_error(&c.patch(&with_flag(&grace), &take).await, StatusCode::CONFLICT, Some("uniqueness"), "employeeNumber");
    // A user keeps its own number through a change that names it again.
    let same = patch_op(json!([{"op": "replace", "path": format!("{ENTERPRISE}:employeeNumber"), "value": "E-1"}]));
    assert_eq!(c.patch(&with_flag(&ada), &same).await.status, StatusCode::OK);
    assert_eq!(sim.users().len(), 2);
}

#[tokio::test]
async fn an_inactive_user_is_not_created_but_an_existing_one_is_deactivated() {
    let (sim, c) = start();
    let mut inactive = valid("ada");
    inactive["active"] = json!(false);
    assert_invalid_value(&c.post("/Users", &inactive).await, "inactive");
    assert!(sim.users().is_empty());
    assert!(sim.insert_user(inactive.clone()).is_err(), "seeding follows the rule too");
    let id = create(&c, &valid("ada")).await;
    let r = c.patch(&with_flag(&id), &patch_op(json!([{"op": "replace", "path": "active", "value": false}]))).await;
    assert_eq!((r.status, r.body["active"].clone()), (StatusCode::OK, json!(false)), "{}", r.body);
}

#[tokio::test]
async fn entras_legacy_patch_dialect_is_refused_and_rfc_patch_is_applied() {
    let (sim, c) = start();
    let id = create(&c, &full("ada", "1")).await;
    let before = sim.user(&id).unwrap();
    let legacy = [
        (json!([{"op": "Replace", "path": "active", "value": false}]), "invalidSyntax", "Operations[0].op"),
        (
            json!([{"op": "replace", "path": "active", "value": "False"}]),
            "invalidValue",
            "\"active\" must be a JSON boolean",
        ),
        (json!([{"op": "replace", "value": {"active": "False"}}]), "invalidValue", "\"active\" must be a JSON boolean"),
        (json!([{"op": "replace", "value": {"name.givenName": "Augusta"}}]), "invalidPath", "name.givenName"),
        (
            json!([{"op": "remove", "path": "emails", "value": [{"value": "ada@example.com"}]}]),
            "invalidSyntax",
            "takes no \"value\"",
        ),
    ];
    for (ops, scim_type, names) in legacy {
        let r = c.patch(&with_flag(&id), &patch_op(ops)).await;
        assert_error(&r, StatusCode::BAD_REQUEST, Some(scim_type), names);
    }
    assert_eq!(sim.user(&id).unwrap(), before, "a refused PATCH changes nothing");

    let rfc = patch_op(json!([
        {"op": "replace", "path": "name.givenName", "value": "Augusta"},
        {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "augusta@example.com"},
        {"op": "replace", "value": {"displayName": "Augusta Ada", "title": "Countess"}},
        {"op": "add", "path": format!("{ENTERPRISE}:department"), "value": "Mathematics"},
        {"op": "remove", "path": "locale"},
        {"op": "replace", "path": "active", "value": false}
    ]));
    let r = c.patch(&with_flag(&id), &rfc).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["name"]["givenName"], "Augusta");
    assert_eq!(r.body["emails"][0]["value"], "augusta@example.com");
    assert_eq!(r.body[ENTERPRISE]["department"], "Mathematics");
    assert!(r.body.get("locale").is_none());
}

#[tokio::test]
async fn a_boolean_sent_as_a_string_is_refused_in_a_create() {
    let (_sim, c) = start();
    let mut body = valid("ada");
    body["active"] = json!("True");
    assert_invalid_value(&c.post("/Users", &body).await, "\"active\" must be a JSON boolean");
}

#[tokio::test]
async fn filters_are_on_user_name_only_and_there_are_no_groups() {
    let (_sim, c) = start();
    create(&c, &full("ada", "1")).await;
    let r = c.get(&format!("/Users?filter={}", encode("userName eq \"Ada\""))).await;
    assert_eq!(r.body["totalResults"], 1);
    let by_number = format!("{ENTERPRISE}:employeeNumber eq \"1\"");
    for refused in ["emails.value eq \"ada@example.com\"", by_number.as_str(), "userName co \"a\""] {
        let r = c.get(&format!("/Users?filter={}", encode(refused))).await;
        assert_error(&r, StatusCode::BAD_REQUEST, Some("invalidFilter"), "userName");
    }
    let r = c.post("/Groups", &json!({"schemas": [GROUP_SCHEMA], "displayName": "Staff"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(c.get("/ResourceTypes").await.body["totalResults"], 1);
}
