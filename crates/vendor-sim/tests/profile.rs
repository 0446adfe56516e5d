//! Every `Profile` hook, through a test profile that uses them all the way the vendor profiles
//! do (a work email required, no email-shaped userName, users only, one filterable attribute,
//! an extension of its own, a URL flag, a body read before the core, a server-side
//! transformation).

#![expect(clippy::unwrap_used, reason = "test helpers: a failed setup must fail the test loudly")]

mod common;

use std::sync::Arc;

use common::{Client, ENTERPRISE, GROUP_SCHEMA, USER_SCHEMA, patch_op};
use reqwest::StatusCode;
use scimgw_scim::ScimError;
use scimgw_scim::filter::Filter;
use scimgw_scim::schema::{Attribute, Schema};
use serde_json::{Map, Value, json};
use vendor_sim::{Kind, Profile, RequestInfo, Sim, SimConfig, Write};

const ACME: &str = "urn:example:params:scim:schemas:extension:acme:2.0:User";

#[derive(Debug)]
struct AcmeProfile;

impl Profile for AcmeProfile {
    fn name(&self) -> &'static str {
        "acme"
    }

    fn extension_schemas(&self) -> Vec<(Schema, &'static str)> {
        let schema = Schema {
            id: ACME.into(),
            name: "AcmeUser".into(),
            description: String::new(),
            attributes: vec![Attribute::string("badge")],
        };
        vec![(schema, "User")]
    }

    fn accepted_extensions(&self, _kind: Kind) -> Vec<String> {
        vec![ACME.into()]
    }

    fn supports_groups(&self) -> bool {
        false
    }

    fn unique_attributes(&self, _kind: Kind) -> Vec<String> {
        vec!["userName".into(), format!("{ACME}:badge")]
    }

    fn max_page_size(&self) -> u64 {
        2
    }

    fn admit(&self, request: &RequestInfo<'_>) -> Result<(), ScimError> {
        if request.method != "POST" && !request.has_query_flag("aadOptscim062020") {
            return Err(ScimError::invalid_value("acme: only creates are supported without aadOptscim062020"));
        }
        Ok(())
    }

    fn check_filter(&self, _kind: Kind, filter: &Filter) -> Result<(), ScimError> {
        match filter {
            Filter::Compare { path, .. } if path.name.eq_ignore_ascii_case("userName") && path.urn.is_none() => Ok(()),
            _ => Err(ScimError::invalid_filter("acme: only userName is filterable")),
        }
    }

    fn read_body(&self, _kind: Kind, mut body: Value, write: Write<'_>) -> Result<Value, ScimError> {
        // An old spelling the app still takes: a top-level `badgeNumber` is its extension's badge.
        if let (Write::Create, Some(obj)) = (write, body.as_object_mut()) {
            if let Some(badge) = obj.remove("badgeNumber") {
                obj.insert(ACME.into(), json!({ "badge": badge }));
            }
        }
        let legacy_op = body["Operations"].as_array().into_iter().flatten().any(|op| op["op"] == "Replace");
        if matches!(write, Write::Patch { .. }) && legacy_op {
            return Err(ScimError::invalid_syntax("acme: op must be lower case"));
        }
        Ok(body)
    }

    fn validate_user(&self, user: &Map<String, Value>, write: Write<'_>) -> Result<(), ScimError> {
        let has_work_email = user
            .get("emails")
            .and_then(Value::as_array)
            .is_some_and(|emails| emails.iter().any(|e| e["type"] == "work"));
        if !has_work_email {
            return Err(ScimError::invalid_value("acme: emails[type eq \"work\"].value is required"));
        }
        if user.get("userName").and_then(Value::as_str).is_some_and(|n| n.contains('@')) {
            return Err(ScimError::invalid_value("acme: userName must not be an email address"));
        }
        if matches!(write, Write::Create) && user.get("active") == Some(&Value::Bool(false)) {
            return Err(ScimError::invalid_value("acme: an inactive user is not created"));
        }
        Ok(())
    }

    fn transform_user(&self, mut user: Map<String, Value>, write: Write<'_>) -> Map<String, Value> {
        if matches!(write, Write::Create) {
            user.insert("nickName".into(), json!("password pending"));
        }
        user
    }
}

fn acme_user(user_name: &str, badge: &str) -> Value {
    json!({
        "schemas": [USER_SCHEMA, ACME],
        "userName": user_name,
        "emails": [{"value": "x@example.com", "type": "work"}],
        ACME: {"badge": badge}
    })
}

fn start() -> (Sim, Client) {
    let sim = Sim::start(SimConfig::with_profile(Arc::new(AcmeProfile))).unwrap();
    let client = Client::new(&sim);
    (sim, client)
}

#[tokio::test]
async fn the_profiles_rules_refuse_users_with_its_message() {
    let (sim, c) = start();
    let mut no_email = acme_user("ada", "1");
    no_email.as_object_mut().unwrap().remove("emails");
    let r = c.post("/Users", &no_email).await;
    assert_eq!((r.status, r.body["scimType"].as_str()), (StatusCode::BAD_REQUEST, Some("invalidValue")));
    assert!(r.body["detail"].as_str().unwrap().contains("work"));
    let r = c.post("/Users", &acme_user("ada@example.com", "1")).await;
    assert!(r.body["detail"].as_str().unwrap().contains("must not be an email"));
    let mut inactive = acme_user("ada", "1");
    inactive["active"] = json!(false);
    assert_eq!(c.post("/Users", &inactive).await.status, StatusCode::BAD_REQUEST);
    assert!(sim.users().is_empty());
    assert!(sim.insert_user(acme_user("ada@example.com", "1")).is_err(), "seeding follows the rules too");
}

#[tokio::test]
async fn the_profile_transforms_what_it_stores_and_checks_patched_results() {
    let (sim, c) = start();
    let r = c.post("/Users", &acme_user("ada", "1")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["nickName"], "password pending");
    assert_eq!(r.body[ACME]["badge"], "1");
    let id = r.body["id"].as_str().unwrap();
    let to_email = patch_op(json!([{"op": "replace", "path": "userName", "value": "ada@example.com"}]));
    let r = c.patch(&format!("/Users/{id}?aadOptscim062020"), &to_email).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let deactivate = patch_op(json!([{"op": "replace", "path": "active", "value": false}]));
    let r = c.patch(&format!("/Users/{id}?aadOptscim062020"), &deactivate).await;
    assert_eq!(r.status, StatusCode::OK, "an existing user may be deactivated");
    assert_eq!(sim.users()[0]["active"], false);
}

#[tokio::test]
async fn the_profile_reads_bodies_as_sent_before_the_core_does() {
    let (sim, c) = start();
    let mut old_spelling = acme_user("ada", "1");
    let obj = old_spelling.as_object_mut().unwrap();
    obj.remove(ACME);
    obj.insert("badgeNumber".into(), json!("9"));
    let r = c.post("/Users", &old_spelling).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body[ACME]["badge"], "9");
    let id = r.body["id"].as_str().unwrap();
    // The core takes "Replace"; this app does not.
    let legacy = patch_op(json!([{"op": "Replace", "path": "title", "value": "x"}]));
    let r = c.patch(&format!("/Users/{id}?aadOptscim062020"), &legacy).await;
    assert_eq!((r.status, r.body["scimType"].as_str()), (StatusCode::BAD_REQUEST, Some("invalidSyntax")));
    old_spelling["userName"] = json!("grace");
    old_spelling["badgeNumber"] = json!("10");
    assert_eq!(sim.insert_user(old_spelling).unwrap()[ACME]["badge"], "10", "seeding reads bodies too");
}

#[tokio::test]
async fn only_accepted_extensions_are_taken() {
    let (_sim, c) = start();
    let mut with_enterprise = acme_user("ada", "1");
    with_enterprise["schemas"] = json!([USER_SCHEMA, ACME, ENTERPRISE]);
    with_enterprise[ENTERPRISE] = json!({"department": "R&D"});
    let r = c.post("/Users", &with_enterprise).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["detail"].as_str().unwrap().contains(ENTERPRISE));
    let r = c.get("/ResourceTypes?aadOptscim062020").await;
    assert_eq!(r.body["totalResults"], 1, "users only");
    assert_eq!(r.body["Resources"][0]["schemaExtensions"], json!([{"schema": ACME, "required": false}]));
    let r = c.get("/Schemas?aadOptscim062020").await;
    let ids: Vec<&str> = r.body["Resources"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [USER_SCHEMA, ACME]);
}

#[tokio::test]
async fn unique_attributes_include_the_profiles_own() {
    let (_sim, c) = start();
    assert_eq!(c.post("/Users", &acme_user("ada", "7")).await.status, StatusCode::CREATED);
    let r = c.post("/Users", &acme_user("grace", "7")).await;
    assert_eq!((r.status, r.body["scimType"].as_str()), (StatusCode::CONFLICT, Some("uniqueness")));
    assert!(r.body["detail"].as_str().unwrap().contains("badge"));
    assert_eq!(c.post("/Users", &acme_user("grace", "8")).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn groups_are_not_served_when_the_profile_has_none() {
    let (_sim, c) = start();
    let r = c.post("/Groups", &json!({"schemas": [GROUP_SCHEMA], "displayName": "G"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body["detail"].as_str().unwrap().contains("groups"));
}

#[tokio::test]
async fn the_profile_refuses_filters_and_requests_it_does_not_support() {
    let (sim, c) = start();
    c.post("/Users", &acme_user("ada", "1")).await;
    let r = c.get("/Users").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "no aadOptscim062020 flag");
    assert!(r.body["detail"].as_str().unwrap().contains("aadOptscim062020"));
    let r = c.get("/Users?aadOptscim062020&filter=userName%20eq%20%22ADA%22").await;
    assert_eq!(r.body["totalResults"], 1);
    let r = c.get("/Users?aadOptscim062020&filter=nickName%20pr").await;
    assert_eq!((r.status, r.body["scimType"].as_str()), (StatusCode::BAD_REQUEST, Some("invalidFilter")));
    // The refused requests are in the log with their answers.
    let statuses: Vec<Option<u16>> = sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [Some(201), Some(400), Some(200), Some(400)]);
}

#[tokio::test]
async fn the_profiles_page_size_caps_lists() {
    let (_sim, c) = start();
    for (name, badge) in [("a", "1"), ("b", "2"), ("c", "3")] {
        c.post("/Users", &acme_user(name, badge)).await;
    }
    let r = c.get("/Users?aadOptscim062020&count=50").await;
    assert_eq!((r.body["totalResults"].clone(), r.body["itemsPerPage"].clone()), (json!(3), json!(2)));
    let r = c.get("/ServiceProviderConfig?aadOptscim062020").await;
    assert_eq!(r.body["filter"]["maxResults"], 2);
}

#[test]
fn a_profile_whose_schemas_clash_with_the_registry_does_not_start() {
    #[derive(Debug)]
    struct Clash;
    impl Profile for Clash {
        fn name(&self) -> &'static str {
            "clash"
        }
        fn extension_schemas(&self) -> Vec<(Schema, &'static str)> {
            let schema = Schema {
                id: ENTERPRISE.into(),
                name: "NotTheEnterpriseSchema".into(),
                description: String::new(),
                attributes: vec![],
            };
            vec![(schema, "User")]
        }
    }
    let err = Sim::start(SimConfig::with_profile(Arc::new(Clash))).unwrap_err();
    assert!(err.to_string().contains("clash"), "{err}");
}
