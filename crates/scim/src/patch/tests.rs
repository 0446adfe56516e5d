//! Tests of the PATCH engine: RFC 7644 §3.5.2's examples, every Entra ID and Okta shape of
//! ENTRA.md, and the error cases.

use serde_json::{Value, json};

use super::*;
use crate::error::ScimType;
use crate::resource::validate_resource;
use crate::schema::{ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, Registry, USER_SCHEMA};

const MANAGER_ID: &str = "26118915-6090-4610-87a4-b2a8f2f9c52d";
const BJ: &str = "2819c223-7f76-453a-919d-413861904646";
const JS: &str = "902c246b-6245-4190-8e05-00816be7344a";

fn entra_user() -> Map<String, Value> {
    let reg = Registry::default();
    validate_resource(
        &reg.resource("User").unwrap(),
        json!({
            "schemas":[USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
            "externalId":"0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef","userName":"Test_User_ab6490ee@contoso.com",
            "active":true,"displayName":"Test User",
            "emails":[{"primary":true,"type":"work","value":"Test_User_ab6490ee@contoso.com"}],
            "name":{"formatted":"givenName familyName","familyName":"familyName","givenName":"givenName"},
            ENTERPRISE_USER_SCHEMA:{"department":"Sales","employeeNumber":"701984"}
        }),
    )
    .unwrap()
}

fn group(members: Value) -> Map<String, Value> {
    let reg = Registry::default();
    validate_resource(
        &reg.resource("Group").unwrap(),
        json!({"schemas":[GROUP_SCHEMA], "displayName":"Tour Guides", "members": members}),
    )
    .unwrap()
}

fn patch(resource_type: &str, resource: &Map<String, Value>, ops: Value) -> Result<PatchOutcome, ScimError> {
    let reg = Registry::default();
    let req = PatchRequest::from_json(
        &json!({"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops}),
    )?;
    apply_patch(&reg.resource(resource_type).unwrap(), resource, &req)
}

fn user_ok(resource: &Map<String, Value>, ops: Value) -> Map<String, Value> {
    match patch("User", resource, ops.clone()) {
        Ok(o) => o.resource,
        Err(e) => panic!("PATCH {ops} failed: {e}"),
    }
}

fn group_ok(resource: &Map<String, Value>, ops: Value) -> Map<String, Value> {
    match patch("Group", resource, ops.clone()) {
        Ok(o) => o.resource,
        Err(e) => panic!("PATCH {ops} failed: {e}"),
    }
}

fn user_err(resource: &Map<String, Value>, ops: Value) -> ScimError {
    patch("User", resource, ops.clone()).expect_err(&format!("PATCH {ops} should fail"))
}

fn member_ids(g: &Map<String, Value>) -> Vec<&str> {
    g.get("members")
        .and_then(Value::as_array)
        .map_or_else(Vec::new, |m| m.iter().map(|v| v["value"].as_str().unwrap()).collect())
}

// ---- RFC 7644 §3.5.2.1 add -------------------------------------------------------------------

#[test]
fn rfc_add_member_to_group() {
    let g = group(json!([]));
    let out = group_ok(
        &g,
        json!([{"op":"add","path":"members","value":[{"display":"Babs Jensen",
        "$ref":"https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646","value":BJ}]}]),
    );
    assert_eq!(
        out["members"],
        json!([{"$ref":"https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646","value":BJ}])
    );
}

#[test]
fn rfc_add_without_path_merges_attributes() {
    let u = entra_user();
    let out = user_ok(
        &u,
        json!([{"op":"add","value":{"emails":[{"value":"babs@jensen.org","type":"home"}],"nickname":"Babs"}}]),
    );
    assert_eq!(out["nickName"], "Babs");
    assert_eq!(out["emails"].as_array().unwrap().len(), 2);
    assert_eq!(out["emails"][1], json!({"value":"babs@jensen.org","type":"home"}));
}

#[test]
fn adding_an_existing_value_does_not_duplicate_it() {
    let g = group(json!([{"value":BJ}]));
    let out = group_ok(&g, json!([{"op":"add","path":"members","value":[{"value":BJ},{"value":JS}]}]));
    assert_eq!(member_ids(&out), vec![BJ, JS]);
    let again = patch("Group", &out, json!([{"op":"add","path":"members","value":[{"value":JS}]}])).unwrap();
    assert!(!again.changed);
}

#[test]
fn add_to_single_valued_attribute_replaces_it() {
    let out = user_ok(&entra_user(), json!([{"op":"add","path":"displayName","value":"Babs"}]));
    assert_eq!(out["displayName"], "Babs");
}

// ---- RFC 7644 §3.5.2.2 remove ----------------------------------------------------------------

#[test]
fn rfc_remove_all_members() {
    let g = group(json!([{"value":BJ},{"value":JS}]));
    let out = group_ok(&g, json!([{"op":"remove","path":"members"}]));
    assert!(!out.contains_key("members"));
}

#[test]
fn rfc_remove_one_member_by_filter() {
    let g = group(json!([{"value":BJ},{"value":JS}]));
    let out = group_ok(&g, json!([{"op":"remove","path":format!("members[value eq \"{BJ}\"]")}]));
    assert_eq!(member_ids(&out), vec![JS]);
}

#[test]
fn rfc_remove_complex_value_by_compound_filter() {
    let mut u = entra_user();
    u.insert("emails".into(), json!([{"value":"a@example.com","type":"work"},{"value":"b@example.org","type":"home"}]));
    let out = user_ok(&u, json!([{"op":"remove","path":"emails[type eq \"work\" and value ew \"example.com\"]"}]));
    assert_eq!(out["emails"], json!([{"value":"b@example.org","type":"home"}]));
}

#[test]
fn rfc_remove_all_members_then_add_new_ones() {
    let g = group(json!([{"value":BJ}]));
    let out = group_ok(
        &g,
        json!([{"op":"remove","path":"members"},
        {"op":"add","path":"members","value":[{"display":"James Smith","value":JS}]}]),
    );
    assert_eq!(member_ids(&out), vec![JS]);
}

#[test]
fn rfc_remove_x509_certificate_by_value() {
    let mut u = entra_user();
    u.insert(
        "x509Certificates".into(),
        json!([{"value":"MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAwTjELMAkGA1UEBhMCVVMx"}]),
    );
    let out = user_ok(
        &u,
        json!([{"op":"remove",
        "path":"x509Certificates[value eq \"MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAwTjELMAkGA1UEBhMCVVMx\"]"}]),
    );
    assert!(!out.contains_key("x509Certificates"));
}

#[test]
fn remove_of_something_absent_is_a_no_op() {
    let u = entra_user();
    let o = patch(
        "User",
        &u,
        json!([{"op":"remove","path":"title"},{"op":"remove","path":"emails[type eq \"home\"]"},
        {"op":"remove","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter"}]),
    )
    .unwrap();
    assert!(!o.changed);
    assert_eq!(o.resource, u);
}

// ---- RFC 7644 §3.5.2.3 replace ---------------------------------------------------------------

#[test]
fn rfc_replace_all_members() {
    let g = group(json!([{"value":"x"}]));
    let out = group_ok(
        &g,
        json!([{"op":"replace","path":"members","value":[
        {"display":"Babs Jensen","value":BJ},{"display":"James Smith","value":JS}]}]),
    );
    assert_eq!(member_ids(&out), vec![BJ, JS]);
}

#[test]
fn rfc_replace_work_address_through_filter() {
    let mut u = entra_user();
    u.insert(
        "addresses".into(),
        json!([{"type":"work","streetAddress":"100 Universal City Plaza","locality":"Hollywood"},
        {"type":"home","streetAddress":"1 Home St"}]),
    );
    let out = user_ok(
        &u,
        json!([{"op":"replace","path":"addresses[type eq \"work\"]","value":{"type":"work",
        "streetAddress":"911 Universal City Plaza","locality":"Hollywood","region":"CA","postalCode":"91608",
        "country":"US","formatted":"911 Universal City Plaza\nHollywood, CA 91608 US","primary":true}}]),
    );
    assert_eq!(out["addresses"][0]["streetAddress"], "911 Universal City Plaza");
    assert_eq!(out["addresses"][0]["primary"], true);
    assert_eq!(out["addresses"][1], json!({"type":"home","streetAddress":"1 Home St"}));
}

#[test]
fn rfc_replace_sub_attribute_through_filter() {
    let mut u = entra_user();
    u.insert(
        "addresses".into(),
        json!([{"type":"work","streetAddress":"100 Universal City Plaza","locality":"Hollywood"}]),
    );
    let out = user_ok(
        &u,
        json!([{"op":"replace","path":"addresses[type eq \"work\"].streetAddress","value":"1010 Broadway Ave"}]),
    );
    assert_eq!(out["addresses"], json!([{"type":"work","streetAddress":"1010 Broadway Ave","locality":"Hollywood"}]));
}

#[test]
fn rfc_replace_multiple_attributes_without_path() {
    let out = user_ok(
        &entra_user(),
        json!([{"op":"replace","value":{"emails":[
        {"value":"bjensen@example.com","type":"work","primary":true},{"value":"babs@jensen.org","type":"home"}],
        "nickName":"Babs"}}]),
    );
    assert_eq!(out["emails"].as_array().unwrap().len(), 2);
    assert_eq!(out["emails"][0]["value"], "bjensen@example.com");
    assert_eq!(out["nickName"], "Babs");
}

#[test]
fn replace_of_singular_complex_attribute_merges_sub_attributes() {
    let out = user_ok(&entra_user(), json!([{"op":"replace","path":"name","value":{"familyName":"Jensen"}}]));
    assert_eq!(out["name"], json!({"formatted":"givenName familyName","familyName":"Jensen","givenName":"givenName"}));
}

// ---- Entra ID (ENTRA.md) ---------------------------------------------------------------------

#[test]
fn entra_legacy_dialect_patch() {
    let out = user_ok(
        &entra_user(),
        json!([
        {"op":"Replace","path":"active","value":"False"},
        {"op":"Replace","path":"emails[type eq \"work\"].value","value":"new@contoso.com"},
        {"op":"Replace","path":"name.familyName","value":"Smith"},
        {"op":"Add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department","value":"Ops"},
        {"op":"Add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
         "value":[{"$ref":null,"value":MANAGER_ID}]}]),
    );
    assert_eq!(out["active"], false);
    assert_eq!(out["emails"], json!([{"primary":true,"type":"work","value":"new@contoso.com"}]));
    assert_eq!(out["name"]["familyName"], "Smith");
    assert_eq!(out[ENTERPRISE_USER_SCHEMA]["department"], "Ops");
    assert_eq!(out[ENTERPRISE_USER_SCHEMA]["manager"], json!({"value": MANAGER_ID}));
    assert_eq!(out[ENTERPRISE_USER_SCHEMA]["employeeNumber"], "701984");
}

#[test]
fn entra_flagged_dialect_patch() {
    let out = user_ok(
        &entra_user(),
        json!([
        {"op":"replace","value":{"active":false,"name.givenName":"Ann","displayName":"Ann Smith",
          "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber":"701985"}},
        {"op":"replace","path":"emails[type eq \"work\"].value","value":"ann@contoso.com"}]),
    );
    assert_eq!(out["active"], false);
    assert_eq!(out["name"]["givenName"], "Ann");
    assert_eq!(out["name"]["familyName"], "familyName");
    assert_eq!(out["displayName"], "Ann Smith");
    assert_eq!(out[ENTERPRISE_USER_SCHEMA]["employeeNumber"], "701985");
    assert_eq!(out[ENTERPRISE_USER_SCHEMA]["department"], "Sales");
    assert_eq!(out["emails"][0]["value"], "ann@contoso.com");
}

#[test]
fn op_names_in_any_case() {
    for op in ["Add", "add", "ADD", "aDd"] {
        let out = user_ok(&entra_user(), json!([{"op":op,"path":"title","value":"Boss"}]));
        assert_eq!(out["title"], "Boss");
    }
    let out = user_ok(&entra_user(), json!([{"op":"REMOVE","path":"displayName"}]));
    assert!(!out.contains_key("displayName"));
}

#[test]
fn boolean_strings_for_any_boolean() {
    let out = user_ok(
        &entra_user(),
        json!([{"op":"Replace","path":"active","value":"True"},
        {"op":"Replace","path":"emails[type eq \"work\"].primary","value":"False"}]),
    );
    assert_eq!(out["active"], true);
    assert_eq!(out["emails"][0]["primary"], false);
    let out = user_ok(&entra_user(), json!([{"op":"replace","value":{"active":"false"}}]));
    assert_eq!(out["active"], false);
}

#[test]
fn manager_as_string_or_object() {
    for value in [json!(MANAGER_ID), json!({"value": MANAGER_ID}), json!([{"$ref":null,"value":MANAGER_ID}])] {
        let out = user_ok(
            &entra_user(),
            json!([{"op":"Add",
            "path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":value}]),
        );
        assert_eq!(out[ENTERPRISE_USER_SCHEMA]["manager"], json!({"value": MANAGER_ID}));
    }
    let out = user_ok(
        &entra_user(),
        json!([{"op":"replace","value":{
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager": MANAGER_ID}}]),
    );
    assert_eq!(out[ENTERPRISE_USER_SCHEMA]["manager"], json!({"value": MANAGER_ID}));
}

#[test]
fn remove_of_an_attribute_with_no_value() {
    let mut u = entra_user();
    u.get_mut(ENTERPRISE_USER_SCHEMA).unwrap()["manager"] = json!({"value": MANAGER_ID});
    let out = user_ok(
        &u,
        json!([{"op":"Remove","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"}]),
    );
    assert!(out[ENTERPRISE_USER_SCHEMA].get("manager").is_none());
    assert_eq!(out[ENTERPRISE_USER_SCHEMA]["department"], "Sales");
}

#[test]
fn removing_the_last_extension_attribute_drops_the_extension() {
    let out = user_ok(
        &entra_user(),
        json!([
        {"op":"remove","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"},
        {"op":"remove","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber"}]),
    );
    assert!(!out.contains_key(ENTERPRISE_USER_SCHEMA));
    assert_eq!(out["schemas"], json!([USER_SCHEMA]));
}

#[test]
fn replace_work_email_value_when_user_has_none_creates_it() {
    let mut u = entra_user();
    u.remove("emails");
    let out = user_ok(&u, json!([{"op":"Replace","path":"emails[type eq \"work\"].value","value":"w@contoso.com"}]));
    assert_eq!(out["emails"], json!([{"type":"work","value":"w@contoso.com"}]));
}

#[test]
fn entra_group_create_then_member_batches_and_removals() {
    let g = group(json!([]));
    let users: Vec<String> = (0..120).map(|i| format!("00000000-0000-0000-0000-{i:012}")).collect();
    let mut g = g;
    for batch in users.chunks(50) {
        let value: Vec<Value> = batch.iter().map(|id| json!({"value": id})).collect();
        g = group_ok(&g, json!([{"op":"Add","path":"members","value":value}]));
    }
    assert_eq!(member_ids(&g).len(), 120);
    // legacy: value array
    g = group_ok(&g, json!([{"op":"Remove","path":"members","value":[{"value":users[0]},{"value":users[1]}]}]));
    // flagged: filter
    g = group_ok(&g, json!([{"op":"remove","path":format!("members[value eq \"{}\"]", users[2])}]));
    let ids = member_ids(&g);
    assert_eq!(ids.len(), 117);
    assert!(
        !ids.contains(&users[0].as_str()) && !ids.contains(&users[1].as_str()) && !ids.contains(&users[2].as_str())
    );
    g = group_ok(&g, json!([{"op":"Replace","path":"displayName","value":"New name"}]));
    assert_eq!(g["displayName"], "New name");
}

// ---- Okta (ENTRA.md) --------------------------------------------------------------------------

#[test]
fn okta_deactivate_and_group_pushes() {
    let out = user_ok(&entra_user(), json!([{"op":"replace","value":{"active":false}}]));
    assert_eq!(out["active"], false);
    let g = group(json!([{"value":BJ}]));
    let out = group_ok(
        &g,
        json!([
        {"op":"add","path":"members","value":[{"value":JS,"display":"James"}]},
        {"op":"remove","path":format!("members[value eq \"{BJ}\"]")}]),
    );
    assert_eq!(member_ids(&out), vec![JS]);
    let out = group_ok(&g, json!([{"op":"replace","value":{"id":"abc","displayName":"Renamed"}}]));
    assert_eq!(out["displayName"], "Renamed");
    assert_eq!(member_ids(&out), vec![BJ]);
}

// ---- primary, mutability and errors ----------------------------------------------------------

#[test]
fn setting_primary_true_clears_the_other_primary() {
    let out = user_ok(
        &entra_user(),
        json!([{"op":"add","path":"emails","value":[{"value":"h@x.org","type":"home","primary":true}]}]),
    );
    assert_eq!(out["emails"][0]["primary"], false);
    assert_eq!(out["emails"][1]["primary"], true);
    let back = user_ok(&out, json!([{"op":"replace","path":"emails[type eq \"work\"].primary","value":true}]));
    assert_eq!(back["emails"][0]["primary"], true);
    assert_eq!(back["emails"][1]["primary"], false);
}

#[test]
fn password_is_accepted_and_never_kept() {
    let out = patch("User", &entra_user(), json!([{"op":"replace","path":"password","value":"hunter2"}])).unwrap();
    assert!(!out.changed);
    assert!(!out.resource.contains_key("password"));
}

#[test]
fn errors_carry_the_right_scim_type() {
    let u = entra_user();
    let cases: Vec<(Value, u16, ScimType, &str)> = vec![
        (json!([{"op":"remove"}]), 400, ScimType::NoTarget, "needs a \"path\""),
        (json!([{"op":"replace","path":"id","value":"x"}]), 400, ScimType::Mutability, "\"id\" is readOnly"),
        (
            json!([{"op":"replace","path":"meta.created","value":"2020-01-01T00:00:00Z"}]),
            400,
            ScimType::Mutability,
            "readOnly",
        ),
        (json!([{"op":"add","path":"groups","value":[{"value":"g"}]}]), 400, ScimType::Mutability, "readOnly"),
        (json!([{"op":"remove","path":"userName"}]), 400, ScimType::Mutability, "required"),
        (
            json!([{"op":"replace","path":"favouriteColour","value":"red"}]),
            400,
            ScimType::InvalidPath,
            "not an attribute",
        ),
        (
            json!([{"op":"replace","path":"department","value":"x"}]),
            400,
            ScimType::InvalidPath,
            "need their schema URN",
        ),
        (json!([{"op":"replace","path":"name.nickname","value":"x"}]), 400, ScimType::InvalidPath, "no sub-attribute"),
        (json!([{"op":"replace","path":"userName.value","value":"x"}]), 400, ScimType::InvalidPath, "not complex"),
        (json!([{"op":"replace","path":"emails[type eq ","value":"x"}]), 400, ScimType::InvalidPath, ""),
        (
            json!([{"op":"replace","path":"name[givenName eq \"x\"]","value":{}}]),
            400,
            ScimType::InvalidPath,
            "not a multi-valued",
        ),
        (
            json!([{"op":"replace","path":"emails[kind eq \"work\"].value","value":"x"}]),
            400,
            ScimType::InvalidPath,
            "not a sub-attribute",
        ),
        (
            json!([{"op":"replace","path":"emails[type ne \"work\"].value","value":"x"}]),
            400,
            ScimType::NoTarget,
            "no value of \"emails\"",
        ),
        (json!([{"op":"replace","path":"active","value":"maybe"}]), 400, ScimType::InvalidValue, "expected a boolean"),
        (json!([{"op":"replace","path":"userName","value":7}]), 400, ScimType::InvalidValue, "expected a string"),
        (json!([{"op":"add","path":"title"}]), 400, ScimType::InvalidValue, "needs a \"value\""),
        (json!([{"op":"add","value":"not an object"}]), 400, ScimType::InvalidValue, "must be an object"),
        (
            json!([{"op":"replace","path":"emails[type eq \"work\"]","value":[{"value":"a"}]}]),
            400,
            ScimType::InvalidValue,
            "one object",
        ),
        (
            json!([{"op":"add","path":"emails","value":[{"value":"a@x","primary":true},{"value":"b@x","primary":true}]}]),
            400,
            ScimType::InvalidValue,
            "primary",
        ),
        (
            json!([{"op":"remove","path":"members","value":[{"value":"x"}]}]),
            400,
            ScimType::InvalidPath,
            "not an attribute",
        ),
    ];
    for (ops, status, scim_type, detail) in cases {
        let e = user_err(&u, ops.clone());
        assert_eq!((e.status, e.scim_type), (status, Some(scim_type)), "{ops}: {}", e.detail);
        assert!(e.detail.contains(detail), "{ops}: {:?} should contain {:?}", e.detail, detail);
        assert!(e.detail.starts_with("Operations[0]") || scim_type == ScimType::InvalidValue, "{ops}: {}", e.detail);
    }
}

#[test]
fn a_failing_operation_leaves_the_resource_untouched() {
    let u = entra_user();
    let e =
        user_err(&u, json!([{"op":"replace","path":"title","value":"Boss"},{"op":"replace","path":"id","value":"x"}]));
    assert!(e.detail.starts_with("Operations[1]"), "{}", e.detail);
    assert_eq!(u, entra_user());
}

#[test]
fn no_op_patch_reports_unchanged() {
    let u = entra_user();
    let o = patch("User", &u, json!([{"op":"replace","path":"displayName","value":"Test User"}])).unwrap();
    assert!(!o.changed);
    let o = patch("User", &u, json!([{"op":"replace","path":"displayName","value":"Other"}])).unwrap();
    assert!(o.changed);
}

fn lenient_patch(resource: &Map<String, Value>, ops: Value) -> Result<PatchOutcome, ScimError> {
    let mut reg = Registry::default();
    reg.set_unknown_attributes(crate::schema::UnknownAttributes::Accept(crate::schema::DropHook::NONE));
    let req = PatchRequest::from_json(
        &json!({"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops}),
    )?;
    apply_patch(&reg.resource("User").unwrap(), resource, &req)
}

#[test]
fn a_value_path_applies_to_every_matching_value() {
    let mut u = entra_user();
    u.insert(
        "emails".into(),
        json!([{"value":"a@x.example","type":"work"},{"value":"b@x.example","type":"work"},{"value":"h@x.example","type":"home"}]),
    );
    let out = user_ok(&u, json!([{"op":"replace","path":"emails[type eq \"work\"].display","value":"Work"}]));
    let emails = out["emails"].as_array().unwrap();
    assert_eq!(emails[0]["display"], "Work");
    assert_eq!(emails[1]["display"], "Work");
    assert!(emails[2].get("display").is_none());
    let out = user_ok(&u, json!([{"op":"remove","path":"emails[type eq \"work\"]"}]));
    assert_eq!(out["emails"], json!([{"value":"h@x.example","type":"home"}]));
}

#[test]
fn a_schemas_key_in_an_extension_value_is_ignored() {
    let out = user_ok(
        &entra_user(),
        json!([{"op":"add","path":ENTERPRISE_USER_SCHEMA,
            "value":{"schemas":[ENTERPRISE_USER_SCHEMA],"department":"Ops"}}]),
    );
    assert_eq!(out[ENTERPRISE_USER_SCHEMA]["department"], "Ops");
    let out = user_ok(
        &entra_user(),
        json!([{"op":"replace","value":{ENTERPRISE_USER_SCHEMA:{"schemas":[ENTERPRISE_USER_SCHEMA],"department":"Ops"}}}]),
    );
    assert_eq!(out[ENTERPRISE_USER_SCHEMA]["department"], "Ops");
}

#[test]
fn booleans_as_strings_are_stored_as_booleans_in_every_patch_shape() {
    let u = entra_user();
    for ops in [
        json!([{"op":"Replace","path":"active","value":"False"}]),
        json!([{"op":"replace","value":{"active":"false"}}]),
        json!([{"op":"add","path":"active","value":"FALSE"}]),
    ] {
        assert_eq!(user_ok(&u, ops.clone())["active"], json!(false), "{ops}");
    }
    let out = user_ok(&u, json!([{"op":"replace","path":"emails[type eq \"work\"].primary","value":"True"}]));
    assert_eq!(out["emails"][0]["primary"], json!(true));
}

#[test]
fn unknown_paths_are_dropped_when_unknown_attributes_are_accepted() {
    let u = entra_user();
    let out = lenient_patch(
        &u,
        json!([{"op":"replace","path":"adreses","value":"x"},
               {"op":"replace","path":"name.nickname","value":"x"},
               {"op":"replace","value":{"favouriteColour":"red","displayName":"New"}},
               {"op":"add","path":ENTERPRISE_USER_SCHEMA,"value":{"costCentre":"1","department":"Ops"}}]),
    )
    .unwrap();
    assert_eq!(out.resource["displayName"], "New");
    assert_eq!(out.resource[ENTERPRISE_USER_SCHEMA]["department"], "Ops");
    assert!(out.resource.get("adreses").is_none() && out.resource.get("favouriteColour").is_none());
    // Strict: the same unknown path is a 400 naming it.
    let e = user_err(&u, json!([{"op":"replace","path":"adreses","value":"x"}]));
    assert_eq!(e.scim_type, Some(ScimType::InvalidPath));
    assert!(e.detail.contains("adreses"), "{}", e.detail);
}

#[test]
fn attributes_of_an_unregistered_extension_are_patched_as_sent() {
    let custom = "urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User";
    let u = entra_user();
    let out = lenient_patch(&u, json!([{"op":"Add","path":format!("{custom}:costCode"),"value":"C-1"}])).unwrap();
    assert_eq!(out.resource[custom], json!({"costCode":"C-1"}));
    assert!(out.resource["schemas"].as_array().unwrap().contains(&json!(custom)));
    let out2 = lenient_patch(
        &out.resource,
        json!([{"op":"replace","value":{format!("{custom}:costCode"):"C-2", custom: {"badge":"7"}}}]),
    )
    .unwrap();
    assert_eq!(out2.resource[custom], json!({"costCode":"C-2","badge":"7"}));
    let out3 = lenient_patch(
        &out2.resource,
        json!([{"op":"remove","path":format!("{custom}:costCode")},
        {"op":"remove","path":format!("{custom}:badge")}]),
    )
    .unwrap();
    assert!(out3.resource.get(custom).is_none());
    assert!(!out3.resource["schemas"].as_array().unwrap().contains(&json!(custom)));
}

#[test]
fn a_registered_extension_attribute_is_never_taken_for_an_unknown_extension() {
    let out = lenient_patch(
        &entra_user(),
        json!([{"op":"Replace","path":format!("{ENTERPRISE_USER_SCHEMA}:manager"),"value":{"value":"m-2"}},
               {"op":"replace","value":{format!("{ENTERPRISE_USER_SCHEMA}:department"):"Ops"}}]),
    )
    .unwrap();
    assert_eq!(out.resource[ENTERPRISE_USER_SCHEMA]["manager"], json!({"value":"m-2"}));
    assert_eq!(out.resource[ENTERPRISE_USER_SCHEMA]["department"], "Ops");
    assert_eq!(out.resource["schemas"], json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA]));
}

#[test]
fn cost_center_and_organization_without_the_enterprise_urn_land_in_the_extension() {
    let user = user_ok(
        &entra_user(),
        json!([
            {"op": "Replace", "path": "costCenter", "value": "CC-1"},
            {"op": "add", "value": {"Organization": "Contoso"}}
        ]),
    );
    assert_eq!(user[ENTERPRISE_USER_SCHEMA]["costCenter"], "CC-1");
    assert_eq!(user[ENTERPRISE_USER_SCHEMA]["organization"], "Contoso");
    assert!(user.get("costCenter").is_none() && user.get("Organization").is_none());
    let removed = user_ok(&user, json!([{"op": "remove", "path": "costCenter"}]));
    assert!(removed[ENTERPRISE_USER_SCHEMA].get("costCenter").is_none());
    assert_eq!(removed[ENTERPRISE_USER_SCHEMA]["organization"], "Contoso");
}

/// Many values in one `add` are matched through a hash of their keys: the outcome must be the
/// one the value-by-value comparison gives (case-insensitive `value`, equal `type`, merged).
#[test]
fn adding_many_values_merges_exactly_as_adding_them_one_by_one() {
    let user = entra_user();
    let mut values: Vec<Value> = (0..40).map(|i| json!({"type":"work","value":format!("m{i}@contoso.com")})).collect();
    values.push(json!({"type":"work","value":"TEST_USER_AB6490EE@contoso.com","display":"merged"}));
    values.push(json!({"type":"home","value":"Test_User_ab6490ee@contoso.com"}));
    values.push(json!({"type":"work","value":"M3@CONTOSO.COM"}));
    let at_once = user_ok(&user, json!([{"op":"add","path":"emails","value":values.clone()}]));
    let mut one_by_one = user.clone();
    for v in values {
        one_by_one = user_ok(&one_by_one, json!([{"op":"add","path":"emails","value":[v]}]));
    }
    assert_eq!(at_once, one_by_one);
    let emails = at_once["emails"].as_array().unwrap();
    assert_eq!(emails.len(), 1 + 40 + 1, "the work duplicate and M3 merged, the home one added");
    assert_eq!(emails[0]["display"], "merged");
    assert_eq!(emails[0]["primary"], true);
    assert_eq!(emails[4]["value"], "M3@CONTOSO.COM");
}

#[test]
fn a_multi_valued_attribute_holds_at_most_max_values() {
    let user = entra_user();
    let many: Vec<Value> =
        (0..crate::schema::MAX_VALUES).map(|i| json!({"type":"work","value":format!("m{i}@contoso.com")})).collect();
    let e = user_err(&user, json!([{"op":"add","path":"emails","value":many}]));
    assert_eq!(e.scim_type, Some(ScimType::InvalidValue), "{e}");
    assert!(e.detail.contains("\"emails\" may hold at most 1000 values"), "{e}");
    let e = user_err(&user, json!([{"op":"replace","path":"roles","value":vec![json!("r"); 1001]}]));
    assert!(e.detail.contains("\"roles\" may hold at most 1000 values"), "{e}");
    // `members` are rows in the store: not capped.
    let members: Vec<Value> = (0..1500).map(|i| json!({"value":format!("u{i}")})).collect();
    let g = group_ok(&group(json!([])), json!([{"op":"add","path":"members","value":members}]));
    assert_eq!(g["members"].as_array().unwrap().len(), 1500);
}

#[test]
fn a_members_value_may_not_change_once_set() {
    let g = group(json!([{"value":BJ}]));
    for ops in [
        json!([{"op":"replace","path":format!("members[value eq \"{BJ}\"].value"),"value":JS}]),
        json!([{"op":"add","path":format!("members[value eq \"{BJ}\"].value"),"value":JS}]),
        json!([{"op":"remove","path":format!("members[value eq \"{BJ}\"].value")}]),
        json!([{"op":"replace","path":"members.value","value":JS}]),
        json!([{"op":"add","path":format!("members[value eq \"{BJ}\"]"),"value":{"value":JS}}]),
        json!([{"op":"replace","value":{format!("members[value eq \"{BJ}\"].value"):JS}}]),
    ] {
        let e = patch("Group", &g, ops.clone()).unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::Mutability), "{ops}: {e}");
    }
    // Setting it to what it is changes nothing; a new member sets it once; a whole value replaced
    // is another member.
    group_ok(&g, json!([{"op":"replace","path":format!("members[value eq \"{BJ}\"].value"),"value":BJ}]));
    let added = group_ok(&g, json!([{"op":"add","path":format!("members[value eq \"{JS}\"].value"),"value":JS}]));
    assert_eq!(member_ids(&added), [BJ, JS]);
    let replaced =
        group_ok(&g, json!([{"op":"replace","path":format!("members[value eq \"{BJ}\"]"),"value":{"value":JS}}]));
    assert_eq!(member_ids(&replaced), [JS]);
}
