//! Comparing what a vendor holds with what the gateway would send (`scimgw reconcile`).
//!
//! Only what the payload carries is compared: the vendor's own additions (`id`, `meta`,
//! `schemas`, a multi-valued element's `display`, `primary` and `$ref`, elements of a type the
//! payload has none of, attributes the gateway never sends) are not drift. Strings compare
//! exactly, except `userName` and email addresses, which RFC 7643 makes case-insensitive
//! (`caseExact: false`) and vendors often lowercase. A boolean the vendor returns as a string
//! (`"True"`) equals the boolean. Multi-valued elements are paired by `type`, or by `value`
//! when they have no type; multi-valued strings compare as sets.

use serde::Serialize;
use serde_json::{Map, Value};

use scimgw_scim::value::get_ci;

/// Top-level attributes that are the vendor's, never ours to compare.
const VENDOR_OWNED: &[&str] = &["schemas", "id", "meta"];

/// Sub-attributes of multi-valued elements that vendors add or normalise.
const VENDOR_OWNED_SUB: &[&str] = &["display", "primary", "$ref"];

/// One attribute whose value at the vendor is not the one the gateway would send.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Difference {
    /// The attribute as an admin would write it (`name.givenName`, `emails[type eq "work"].value`).
    pub attribute: String,
    /// What the gateway would send.
    pub expected: Value,
    /// What the vendor holds (`null`: nothing).
    pub found: Value,
}

/// The attributes of `expected` (a payload of `translate`) whose value differs in `remote` (the
/// vendor's copy as it returns it).
pub fn differences(expected: &Value, remote: &Value) -> Vec<Difference> {
    let mut out = Vec::new();
    if let Some(e) = expected.as_object() {
        for (key, value) in e {
            if VENDOR_OWNED.iter().any(|v| key.eq_ignore_ascii_case(v)) {
                continue;
            }
            let found = remote.as_object().and_then(|r| get_ci(r, key));
            if key.to_ascii_lowercase().starts_with("urn:") {
                // An extension's attributes: `urn:…:User:department`.
                if let Some(ext) = value.as_object() {
                    let found = found.and_then(Value::as_object);
                    for (name, v) in ext {
                        compare(&format!("{key}:{name}"), name, v, found.and_then(|f| get_ci(f, name)), &mut out);
                    }
                    continue;
                }
            }
            compare(key, key, value, found, &mut out);
        }
    }
    out.sort_by(|a, b| a.attribute.cmp(&b.attribute));
    out
}

fn compare(path: &str, name: &str, expected: &Value, found: Option<&Value>, out: &mut Vec<Difference>) {
    match expected {
        Value::Null => {}
        Value::Object(sub) => {
            let found = found.and_then(Value::as_object);
            for (k, v) in sub {
                compare(&format!("{path}.{k}"), k, v, found.and_then(|f| get_ci(f, k)), out);
            }
        }
        Value::Array(items) if items.iter().all(Value::is_object) => {
            let found: &[Value] = found.and_then(Value::as_array).map_or(&[], Vec::as_slice);
            for item in items.iter().filter_map(Value::as_object) {
                compare_element(path, name, item, found, out);
            }
        }
        Value::Array(items) => {
            let found: &[Value] = found.and_then(Value::as_array).map_or(&[], Vec::as_slice);
            let same = items.len() == found.len()
                && items.iter().all(|i| found.iter().any(|f| scalar_eq(name, i, Some(f))))
                && found.iter().all(|f| items.iter().any(|i| scalar_eq(name, i, Some(f))));
            if !same {
                push(out, path, expected, found_value(found));
            }
        }
        scalar => {
            if !scalar_eq(name, scalar, found) {
                push(out, path, expected, found.cloned().unwrap_or(Value::Null));
            }
        }
    }
}

/// One element of a multi-valued attribute, paired with the vendor's element of its `type`.
fn compare_element(path: &str, name: &str, item: &Map<String, Value>, found: &[Value], out: &mut Vec<Difference>) {
    let (selector, partner) = match get_ci(item, "type").and_then(Value::as_str) {
        Some(t) => (
            format!("{path}[type eq {}]", Value::from(t)),
            found
                .iter()
                .filter_map(Value::as_object)
                .find(|f| get_ci(f, "type").and_then(Value::as_str).is_some_and(|ft| ft.eq_ignore_ascii_case(t))),
        ),
        None => {
            let value = get_ci(item, "value");
            (
                format!("{path}[value eq {}]", value.cloned().unwrap_or(Value::Null)),
                found
                    .iter()
                    .filter_map(Value::as_object)
                    .find(|f| value.is_some_and(|v| scalar_eq(name, v, get_ci(f, "value")))),
            )
        }
    };
    let Some(partner) = partner else {
        push(out, &selector, &Value::Object(item.clone()), Value::Null);
        return;
    };
    for (k, v) in item {
        if k.eq_ignore_ascii_case("type") || VENDOR_OWNED_SUB.iter().any(|o| k.eq_ignore_ascii_case(o)) {
            continue;
        }
        // An email's `value` is an address: compared without case, as `userName` is.
        let sub_name =
            if k.eq_ignore_ascii_case("value") && name.eq_ignore_ascii_case("emails") { "emails" } else { k };
        compare(&format!("{selector}.{k}"), sub_name, v, get_ci(partner, k), out);
    }
}

fn found_value(found: &[Value]) -> Value {
    if found.is_empty() { Value::Null } else { Value::Array(found.to_vec()) }
}

fn push(out: &mut Vec<Difference>, path: &str, expected: &Value, found: Value) {
    out.push(Difference { attribute: path.to_owned(), expected: expected.clone(), found });
}

/// Whether the vendor's `found` is the scalar `expected`, for attribute `name`.
fn scalar_eq(name: &str, expected: &Value, found: Option<&Value>) -> bool {
    let Some(found) = found else { return false };
    match (expected, found) {
        (Value::String(e), Value::String(f)) => {
            let without_case = name.eq_ignore_ascii_case("userName") || name.eq_ignore_ascii_case("emails");
            if without_case { e.to_lowercase() == f.to_lowercase() } else { e == f }
        }
        (Value::Bool(e), Value::String(f)) => f.eq_ignore_ascii_case(if *e { "true" } else { "false" }),
        (Value::Number(e), Value::Number(f)) => e.as_f64() == f.as_f64(),
        (e, f) => e == f,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs(expected: Value, remote: Value) -> Vec<String> {
        differences(&expected, &remote).into_iter().map(|d| d.attribute).collect()
    }

    #[test]
    fn the_vendors_own_additions_are_not_drift() {
        let expected = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "Alice@Example.com",
            "active": true,
            "name": {"givenName": "Alice", "familyName": "Smith"},
            "emails": [{"value": "Alice@Example.com", "type": "work", "primary": true}],
        });
        let remote = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:vendor:x"],
            "id": "r-1",
            "meta": {"resourceType": "User", "created": "2026-01-01T00:00:00Z"},
            "userName": "alice@example.com",
            "active": "True",
            "name": {"givenName": "Alice", "familyName": "Smith", "formatted": "Alice Smith"},
            "emails": [
                {"value": "alice@example.com", "type": "work", "display": "Alice"},
                {"value": "a@home.example", "type": "personal"}
            ],
            "title": "set by the vendor",
        });
        assert!(differences(&expected, &remote).is_empty(), "{:?}", differences(&expected, &remote));
    }

    #[test]
    fn each_changed_attribute_is_named_with_both_values() {
        let expected = json!({
            "userName": "alice",
            "active": true,
            "name": {"givenName": "Alice", "familyName": "Smith"},
            "emails": [{"value": "alice@example.com", "type": "work"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D"},
            "phoneNumbers": [{"value": "+1 555", "type": "mobile"}],
        });
        let remote = json!({
            "userName": "alice",
            "active": false,
            "name": {"givenName": "Alicia", "familyName": "Smith"},
            "emails": [{"value": "alice@other.example", "type": "work"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "r&d"},
        });
        let found = differences(&expected, &remote);
        let names: Vec<&str> = found.iter().map(|d| d.attribute.as_str()).collect();
        assert_eq!(
            names,
            [
                "active",
                "emails[type eq \"work\"].value",
                "name.givenName",
                "phoneNumbers[type eq \"mobile\"]",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
            ]
        );
        assert_eq!(found[0].expected, json!(true));
        assert_eq!(found[0].found, json!(false));
        assert_eq!(found[2].found, json!("Alicia"));
        assert_eq!(found[3].found, Value::Null);
    }

    #[test]
    fn case_matters_except_for_user_names_and_addresses() {
        assert!(attrs(json!({"userName": "A"}), json!({"userName": "a"})).is_empty());
        assert_eq!(attrs(json!({"displayName": "A"}), json!({"displayName": "a"})), ["displayName"]);
        assert_eq!(attrs(json!({"displayName": "A"}), json!({})), ["displayName"]);
        assert!(attrs(json!({"x": null}), json!({})).is_empty());
        assert!(attrs(json!({"tags": ["a", "b"]}), json!({"tags": ["b", "a"]})).is_empty());
        assert_eq!(attrs(json!({"tags": ["a", "b"]}), json!({"tags": ["a"]})), ["tags"]);
        // Untyped elements are paired by value.
        assert!(
            attrs(json!({"roles": [{"value": "x"}]}), json!({"roles": [{"value": "x", "primary": false}]})).is_empty()
        );
        assert_eq!(attrs(json!({"roles": [{"value": "x"}]}), json!({"roles": []})), ["roles[value eq \"x\"]"]);
    }
}
