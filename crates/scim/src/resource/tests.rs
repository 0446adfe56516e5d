//! Tests of resource validation and normalisation.

use serde_json::{Value, json};

use super::*;
use crate::error::ScimType;
use crate::schema::{ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, Registry, USER_SCHEMA};

fn user(v: Value) -> Result<Map<String, Value>, ScimError> {
    let reg = Registry::default();
    let schema = reg.resource("User").unwrap();
    validate_resource(&schema, v)
}

fn group(v: Value) -> Result<Map<String, Value>, ScimError> {
    let reg = Registry::default();
    let schema = reg.resource("Group").unwrap();
    validate_resource(&schema, v)
}

fn err(r: Result<Map<String, Value>, ScimError>) -> ScimError {
    r.expect_err("validation should fail")
}

#[test]
fn entra_create_body_is_accepted_and_normalised() {
    let out = user(json!({
        "schemas":["urn:ietf:params:scim:schemas:core:2.0:User",
                   "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "externalId":"0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef","userName":"Test_User_ab6490ee@contoso.com",
        "active":true,"displayName":"Test User",
        "emails":[{"primary":true,"type":"work","value":"Test_User_ab6490ee@contoso.com"}],
        "meta":{"resourceType":"User"},
        "name":{"formatted":"givenName familyName","familyName":"familyName","givenName":"givenName"},
        "roles":[],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Sales","employeeNumber":"701984"}
    }))
    .unwrap();
    assert_eq!(
        Value::Object(out),
        json!({
            "schemas":[USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
            "externalId":"0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef","userName":"Test_User_ab6490ee@contoso.com",
            "active":true,"displayName":"Test User",
            "emails":[{"primary":true,"type":"work","value":"Test_User_ab6490ee@contoso.com"}],
            "name":{"formatted":"givenName familyName","familyName":"familyName","givenName":"givenName"},
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Sales","employeeNumber":"701984"}
        })
    );
}

#[test]
fn attribute_names_take_their_schema_spelling() {
    let out = user(json!({
        "SCHEMAS": [USER_SCHEMA.to_uppercase()],
        "USERNAME": "bjensen",
        "Name": {"GIVENNAME": "Barbara"},
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user": {"DEPARTMENT": "Tour"}
    }))
    .unwrap();
    assert_eq!(out["userName"], "bjensen");
    assert_eq!(out["name"], json!({"givenName": "Barbara"}));
    assert_eq!(out[ENTERPRISE_USER_SCHEMA], json!({"department": "Tour"}));
    assert_eq!(out["schemas"], json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA]));
}

#[test]
fn boolean_strings_from_entra_become_booleans() {
    let out = user(json!({"schemas":[USER_SCHEMA], "userName":"a", "active":"False",
        "emails":[{"value":"a@x", "primary":"True"}]}))
    .unwrap();
    assert_eq!(out["active"], json!(false));
    assert_eq!(out["emails"][0]["primary"], json!(true));
}

#[test]
fn manager_as_array_string_or_object_becomes_an_object() {
    for manager in [
        json!([{"$ref": null, "value": "26118915-6090-4610-87a4-b2a8f2f9c52d"}]),
        json!("26118915-6090-4610-87a4-b2a8f2f9c52d"),
        json!({"value": "26118915-6090-4610-87a4-b2a8f2f9c52d"}),
    ] {
        let out = user(json!({"schemas":[USER_SCHEMA], "userName":"a", ENTERPRISE_USER_SCHEMA: {"manager": manager}}))
            .unwrap();
        assert_eq!(out[ENTERPRISE_USER_SCHEMA]["manager"], json!({"value": "26118915-6090-4610-87a4-b2a8f2f9c52d"}));
    }
}

#[test]
fn read_only_and_write_only_input_is_ignored() {
    let out = user(json!({"schemas":[USER_SCHEMA], "id":"client-chosen", "userName":"a", "password":"hunter2",
        "groups":[{"value":"g1"}], "meta":{"created":"2020-01-01T00:00:00Z"},
        ENTERPRISE_USER_SCHEMA: {"manager": {"value": "m", "displayName": "Boss"}}}))
    .unwrap();
    for gone in ["id", "password", "groups", "meta"] {
        assert!(!out.contains_key(gone), "{gone} should have been dropped");
    }
    assert_eq!(out[ENTERPRISE_USER_SCHEMA]["manager"], json!({"value": "m"}));
}

#[test]
fn nulls_and_empty_collections_are_unassigned() {
    let out = user(json!({"schemas":[USER_SCHEMA], "userName":"a", "title":null, "roles":[],
        "name":{}, "emails":[null], ENTERPRISE_USER_SCHEMA: {}}))
    .unwrap();
    assert_eq!(Value::Object(out), json!({"schemas":[USER_SCHEMA], "userName":"a"}));
}

#[test]
fn microsoft_adscim_group_schema_is_accepted_and_not_kept() {
    let out = group(json!({"schemas":[GROUP_SCHEMA,
            "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
        "displayName":"Sales", "externalId":"8aa1a0c0", "members":[]}))
    .unwrap();
    assert_eq!(Value::Object(out), json!({"schemas":[GROUP_SCHEMA], "displayName":"Sales", "externalId":"8aa1a0c0"}));
}

#[test]
fn group_members_keep_value_and_type_and_drop_display() {
    let out = group(json!({"schemas":[GROUP_SCHEMA], "displayName":"Sales",
        "members":[{"value":"u1","display":"Ann","type":"User"},{"value":"u1","display":"Ann","type":"User"}]}))
    .unwrap();
    assert_eq!(out["members"], json!([{"value":"u1","type":"User"}]));
}

#[test]
fn errors_name_the_attribute_and_carry_the_right_scim_type() {
    let cases: Vec<(Value, ScimType, &str)> = vec![
        (json!("not an object"), ScimType::InvalidSyntax, "must be a JSON object"),
        (json!({"userName":"a"}), ScimType::InvalidSyntax, "\"schemas\" is missing"),
        (json!({"schemas":USER_SCHEMA, "userName":"a"}), ScimType::InvalidSyntax, "must be an array"),
        (json!({"schemas":[], "userName":"a"}), ScimType::InvalidSyntax, "must include"),
        (
            json!({"schemas":[GROUP_SCHEMA], "userName":"a"}),
            ScimType::InvalidSyntax,
            "unknown schema \"urn:ietf:params:scim:schemas:core:2.0:Group\"",
        ),
        (
            json!({"schemas":[USER_SCHEMA, "urn:example:unknown"], "userName":"a"}),
            ScimType::InvalidSyntax,
            "unknown schema \"urn:example:unknown\"",
        ),
        (json!({"schemas":[USER_SCHEMA]}), ScimType::InvalidValue, "required attribute \"userName\""),
        (json!({"schemas":[USER_SCHEMA], "userName":"  "}), ScimType::InvalidValue, "required attribute \"userName\""),
        (
            json!({"schemas":[USER_SCHEMA], "userName":42}),
            ScimType::InvalidValue,
            "\"userName\": expected a string, found a number",
        ),
        (
            json!({"schemas":[USER_SCHEMA], "userName":"a", "active":"yes"}),
            ScimType::InvalidValue,
            "\"active\": expected a boolean",
        ),
        (
            json!({"schemas":[USER_SCHEMA], "userName":"a", "favouriteColour":"red"}),
            ScimType::InvalidSyntax,
            "unknown attribute \"favouriteColour\"",
        ),
        (
            json!({"schemas":[USER_SCHEMA], "userName":"a", "name":{"nickname":"x"}}),
            ScimType::InvalidSyntax,
            "unknown sub-attribute \"nickname\" of \"name\"",
        ),
        (
            json!({"schemas":[USER_SCHEMA], "userName":"a", "name":"Ann"}),
            ScimType::InvalidValue,
            "\"name\": expected an object",
        ),
        (
            json!({"schemas":[USER_SCHEMA], "userName":"a", "emails":[{"value":1}]}),
            ScimType::InvalidValue,
            "\"emails[0].value\": expected a string",
        ),
        (
            json!({"schemas":[USER_SCHEMA], "userName":"a", "emails":[{"value":"a@x","primary":true},{"value":"b@x","primary":true}]}),
            ScimType::InvalidValue,
            "2 values marked primary",
        ),
        (
            json!({"schemas":[USER_SCHEMA], "userName":"a", "displayName":["a","b"]}),
            ScimType::InvalidValue,
            "\"displayName\" is single-valued",
        ),
        (
            json!({"schemas":[USER_SCHEMA], "userName":"a", "urn:example:ext:User":{"x":1}}),
            ScimType::InvalidSyntax,
            "is not a schema extension of User",
        ),
        (
            json!({"schemas":[USER_SCHEMA], "userName":"a", ENTERPRISE_USER_SCHEMA: "Sales"}),
            ScimType::InvalidSyntax,
            "expected an object holding the extension's attributes",
        ),
        (
            json!({"schemas":[USER_SCHEMA], "userName":"a", ENTERPRISE_USER_SCHEMA: {"dept":"Sales"}}),
            ScimType::InvalidSyntax,
            "unknown attribute \"dept\" in extension",
        ),
    ];
    for (body, scim_type, detail) in cases {
        let e = err(user(body.clone()));
        assert_eq!(e.status, 400, "{body}");
        assert_eq!(e.scim_type, Some(scim_type), "{body}: {}", e.detail);
        assert!(e.detail.contains(detail), "{body}: detail {:?} should contain {:?}", e.detail, detail);
    }
}

#[test]
fn a_group_needs_a_display_name() {
    let e = err(group(json!({"schemas":[GROUP_SCHEMA], "members":[]})));
    assert_eq!((e.status, e.scim_type), (400, Some(ScimType::InvalidValue)));
    assert!(e.detail.contains("required attribute \"displayName\""), "{}", e.detail);
}

#[test]
fn error_details_do_not_echo_attribute_values() {
    let e = err(user(json!({"schemas":[USER_SCHEMA], "userName":"a", "active":"secret-looking-value"})));
    assert!(!e.detail.contains("secret-looking-value"));
}

#[test]
fn immutable_attributes_cannot_change_once_set() {
    let mut reg = Registry::default();
    reg.register_extension(
        crate::schema::Schema {
            id: "urn:example:ext:2.0:User".into(),
            name: "Ext".into(),
            description: String::new(),
            attributes: vec![crate::schema::Attribute::string("badge").mutability(Mutability::Immutable)],
        },
        "User",
    )
    .unwrap();
    let schema = reg.resource("User").unwrap();
    let before = validate_resource(
        &schema,
        json!({"schemas":[USER_SCHEMA], "userName":"a", "urn:example:ext:2.0:User": {"badge": "1"}}),
    )
    .unwrap();
    let same = before.clone();
    let changed = validate_resource(
        &schema,
        json!({"schemas":[USER_SCHEMA], "userName":"a", "urn:example:ext:2.0:User": {"badge": "2"}}),
    )
    .unwrap();
    let unset = validate_resource(&schema, json!({"schemas":[USER_SCHEMA], "userName":"a"})).unwrap();
    assert!(check_immutable(&schema, &before, &same).is_ok());
    assert!(check_immutable(&schema, &unset, &before).is_ok(), "setting it the first time is allowed");
    assert_eq!(check_immutable(&schema, &before, &changed).unwrap_err().scim_type, Some(ScimType::Mutability));
}

fn lenient_user(v: Value) -> Result<Map<String, Value>, ScimError> {
    let mut reg = Registry::default();
    reg.set_unknown_attributes(crate::schema::UnknownAttributes::Accept(crate::schema::DropHook::NONE));
    let schema = reg.resource("User").unwrap();
    validate_resource(&schema, v)
}

#[test]
fn several_values_of_one_type_are_kept() {
    let out = user(json!({"schemas":[USER_SCHEMA], "userName":"a",
        "emails":[{"value":"a@x.example","type":"work"},{"value":"b@x.example","type":"Work","primary":true}],
        "phoneNumbers":[{"value":"1","type":"mobile"},{"value":"2","type":"mobile"}],
        "addresses":[{"locality":"A","type":"work"},{"locality":"B","type":"work"}]}))
    .unwrap();
    assert_eq!(out["emails"].as_array().unwrap().len(), 2);
    assert_eq!(out["phoneNumbers"].as_array().unwrap().len(), 2);
    assert_eq!(out["addresses"].as_array().unwrap().len(), 2);
}

#[test]
fn unknown_attributes_are_dropped_and_reported_when_accepted() {
    use std::sync::Mutex;
    static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());
    fn record(name: &str) {
        SEEN.lock().unwrap().push(name.to_owned());
    }
    let mut reg = Registry::default();
    reg.set_unknown_attributes(crate::schema::UnknownAttributes::Accept(crate::schema::DropHook(record)));
    let schema = reg.resource("User").unwrap();
    let out = validate_resource(
        &schema,
        json!({"schemas":[USER_SCHEMA], "userName":"a", "adreses":[{"locality":"x"}],
            "name":{"givenName":"A","nickname":"secret-value"},
            ENTERPRISE_USER_SCHEMA:{"department":"D","costCentre":"1"}}),
    )
    .unwrap();
    assert!(out.get("adreses").is_none());
    assert_eq!(out["name"], json!({"givenName":"A"}));
    assert_eq!(out[ENTERPRISE_USER_SCHEMA], json!({"department":"D"}));
    let seen = SEEN.lock().unwrap().clone();
    assert!(seen.contains(&"adreses".to_owned()), "{seen:?}");
    assert!(seen.contains(&"name.nickname".to_owned()), "{seen:?}");
    assert!(seen.contains(&format!("{ENTERPRISE_USER_SCHEMA}:costCentre")), "{seen:?}");
    assert!(!seen.iter().any(|n| n.contains("secret-value")), "names only, never values");
}

#[test]
fn an_unregistered_extension_is_kept_as_sent_and_named_in_schemas() {
    let custom = "urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User";
    let out = lenient_user(json!({"schemas":[USER_SCHEMA, custom], "userName":"a",
        custom: {"costCode":"C-1","badge":{"id":7},"gone":null},
        "urn:ietf:params:scim:schemas:extension:Other:2.0:User:flat": "F"}))
    .unwrap();
    assert_eq!(out[custom], json!({"costCode":"C-1","badge":{"id":7}}));
    assert_eq!(out["urn:ietf:params:scim:schemas:extension:Other:2.0:User"], json!({"flat":"F"}));
    let schemas: Vec<&str> = out["schemas"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(schemas.contains(&custom) && schemas.contains(&"urn:ietf:params:scim:schemas:extension:Other:2.0:User"));
    // Strict (the registry's default) still refuses it.
    assert_eq!(
        err(user(json!({"schemas":[USER_SCHEMA], "userName":"a", custom: {"x":1}}))).scim_type,
        Some(ScimType::InvalidSyntax)
    );
}

#[test]
fn a_known_extension_attribute_written_flat_is_placed_under_its_urn() {
    let out = user(json!({"schemas":[USER_SCHEMA], "userName":"a",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Sales",
        "urn:ietf:params:scim:schemas:core:2.0:User:displayName": "Ann"}))
    .unwrap();
    assert_eq!(out[ENTERPRISE_USER_SCHEMA], json!({"department":"Sales"}));
    assert_eq!(out["displayName"], "Ann");
}

#[test]
fn booleans_as_strings_become_booleans_everywhere() {
    let out = user(json!({"schemas":[USER_SCHEMA], "userName":"a", "active":"False",
        "emails":[{"value":"a@x.example","type":"work","primary":"True"}]}))
    .unwrap();
    assert_eq!(out["active"], json!(false));
    assert_eq!(out["emails"][0]["primary"], json!(true));
}

#[test]
fn keys_inside_or_around_a_registered_schema_never_become_unknown_extensions() {
    // `urn:…:core:2.0:User:name:givenName` would shadow `name` on the next PUT; the core URN
    // itself holding attributes is read as top-level attributes.
    let out = lenient_user(json!({"schemas":[USER_SCHEMA], "userName":"a",
        "name":{"givenName":"Real","familyName":"Person"},
        "urn:ietf:params:scim:schemas:core:2.0:User:name:givenName":"Evil",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber:x":"1",
        "urn:ietf:params:scim:schemas:core:2.0":{"User":{"displayName":"x"}},
        "URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER":{"displayName":"Nested"}}))
    .unwrap();
    assert_eq!(out["name"], json!({"givenName":"Real","familyName":"Person"}));
    assert_eq!(out["displayName"], "Nested");
    assert_eq!(out["schemas"], json!([USER_SCHEMA]), "{out:?}");
    assert_eq!(out.keys().filter(|k| k.contains(':')).count(), 0, "{out:?}");
}

#[test]
fn an_unknown_extension_splits_by_its_key_alone_so_a_stored_user_validates_unchanged() {
    for body in [
        json!({"schemas":[USER_SCHEMA], "userName":"a", "urn:acme:ext:User":{"p":1}, "urn:acme:ext:User:p:q":2}),
        json!({"schemas":[USER_SCHEMA], "userName":"a", "urn:acme:ext:User:badge.id":"7", "urn:acme:tags":{"t":1}}),
        json!({"schemas":[USER_SCHEMA], "userName":"a", "urn:acme:ext:User:http://x":1, "urn:User:p:acme":"s"}),
        json!({"schemas":[USER_SCHEMA], "userName":"a", "urn:acme:ext:User":"not an object", "urn::":{"a":1}}),
    ] {
        let once = lenient_user(body.clone()).unwrap();
        let twice = lenient_user(Value::Object(once.clone())).unwrap();
        assert_eq!(once, twice, "{body}");
    }
    let out = lenient_user(json!({"schemas":[USER_SCHEMA], "userName":"a", "urn:acme:ext:User":{"p":1},
        "urn:acme:ext:User:p:q":2, "urn:acme:ext:User:badge.id":"7"}))
    .unwrap();
    assert_eq!(out["urn:acme:ext:User"], json!({"p":1,"p:q":2,"badge":{"id":"7"}}));
}

#[test]
fn unknown_extensions_are_bounded_per_resource_and_per_extension() {
    let mut body = json!({"schemas":[USER_SCHEMA], "userName":"a"});
    for i in 0..=MAX_UNKNOWN_EXTENSIONS {
        body[format!("urn:acme:ext{i}:User")] = json!({"a": i});
    }
    let e = err(lenient_user(body));
    assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
    assert!(e.detail.contains("at most 16"), "{}", e.detail);
    let attrs: Map<String, Value> =
        (0..=MAX_UNKNOWN_EXTENSION_ATTRIBUTES).map(|i| (format!("a{i}"), json!(i))).collect();
    let e = err(lenient_user(json!({"schemas":[USER_SCHEMA], "userName":"a", "urn:acme:ext:User": attrs})));
    assert!(e.detail.contains("at most 256"), "{}", e.detail);
}

#[test]
fn cost_center_and_organization_are_read_with_or_without_the_enterprise_urn() {
    let bare =
        user(json!({"schemas":[USER_SCHEMA], "userName":"a", "costCenter":"CC-1", "ORGANIZATION":"Contoso"})).unwrap();
    let qualified = user(json!({"schemas":[USER_SCHEMA, ENTERPRISE_USER_SCHEMA], "userName":"a",
        ENTERPRISE_USER_SCHEMA: {"costCenter":"CC-1", "organization":"Contoso"}}))
    .unwrap();
    assert_eq!(bare, qualified);
    assert_eq!(bare["schemas"], json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA]));
    let both = user(json!({"schemas":[USER_SCHEMA], "userName":"a", "costCenter":"CC-1",
        ENTERPRISE_USER_SCHEMA: {"costCenter":"CC-1", "department":"Ops"}}))
    .unwrap();
    assert_eq!(both[ENTERPRISE_USER_SCHEMA], json!({"costCenter":"CC-1", "department":"Ops"}));
    let e = err(user(json!({"schemas":[USER_SCHEMA], "userName":"a", "costCenter":"CC-1",
        ENTERPRISE_USER_SCHEMA: {"costCenter":"CC-2"}})));
    assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
    assert!(e.detail.contains("costCenter") && !e.detail.contains("CC-"), "{}", e.detail);
    // Only these two: other Enterprise attributes still need their URN.
    assert!(user(json!({"schemas":[USER_SCHEMA], "userName":"a", "department":"Ops"})).is_err());
}
