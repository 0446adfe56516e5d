//! Fuzzes the filter and PATCH path parsers, the printer's round trip, validation and evaluation.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use scimgw_scim::filter::{MAX_FILTER_LEN, PatchPath, matches_element, parse_filter, parse_patch_path};
use scimgw_scim::schema::Registry;
use serde_json::{Value, json};

static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::default);

/// The user Entra creates (ENTRA.md), as stored, plus a few values of unusual types.
static USER: LazyLock<Value> = LazyLock::new(|| {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Test_User_ab6490ee@contoso.com",
        "active": "True",
        "displayName": "Test User",
        "title": "",
        "emails": [{"primary": true, "type": "work", "value": "Test_User_ab6490ee@contoso.com"},
                   {"type": "home", "value": "tüser@example.org", "primary": "false"}, "stray", null],
        "meta": {"resourceType": "User", "created": "2024-03-01T09:00:00Z", "lastModified": "2024-03-02T10:30:00+01:00"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
        "roles": [],
        "addresses": [{}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "department": "Sales", "employeeNumber": 701984, "manager": {"value": "26118915", "$ref": null}
        }
    })
});

fuzz_target!(|data: &[u8]| {
    check(&String::from_utf8_lossy(data));
});

fn check(text: &str) {
    let user_schema = REGISTRY.resource("User").expect("User resource type");
    let group_schema = REGISTRY.resource("Group").expect("Group resource type");
    if let Ok(filter) = parse_filter(text) {
        let printed = filter.to_string();
        if printed.len() <= MAX_FILTER_LEN {
            match parse_filter(&printed) {
                Ok(again) => assert_eq!(again, filter, "{printed:?} reparsed differently"),
                Err(e) => panic!("{printed:?}, printed from {text:?}, does not parse: {e}"),
            }
        }
        let _ = filter.validate(&user_schema);
        let _ = filter.validate(&group_schema);
        let _ = filter.matches(&USER, &user_schema);
        let _ = filter.matches(&USER, &group_schema);
    }
    if let Ok(path) = parse_patch_path(text) {
        let printed = path.to_string();
        if printed.len() <= MAX_FILTER_LEN {
            match parse_patch_path(&printed) {
                Ok(again) => assert_eq!(again, path, "{printed:?} reparsed differently"),
                Err(e) => panic!("{printed:?}, printed from {text:?}, does not parse: {e}"),
            }
        }
        if let PatchPath::ValuePath { filter, .. } = &path {
            let emails = user_schema.resolve(None, "emails", None).expect("emails").attribute;
            for element in USER["emails"].as_array().into_iter().flatten() {
                let _ = matches_element(filter, element, emails);
            }
        }
    }
}
