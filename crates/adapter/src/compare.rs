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
    let value = get_ci(item, "value");
    let same_value = |f: &Map<String, Value>| value.is_some_and(|v| scalar_eq(name, v, get_ci(f, "value")));
    let (selector, partner) = match get_ci(item, "type").and_then(Value::as_str) {
        Some(t) => {
            let of_type: Vec<&Map<String, Value>> = found
                .iter()
                .filter_map(Value::as_object)
                .filter(|f| get_ci(f, "type").and_then(Value::as_str).is_some_and(|ft| ft.eq_ignore_ascii_case(t)))
                .collect();
            // Of several elements of one type, the one with the same value is this one's partner.
            let partner = of_type.iter().find(|f| same_value(f)).or(of_type.first()).copied();
            (format!("{path}[type eq {}]", Value::from(t)), partner)
        }
        None if value.is_some() => (
            format!("{path}[value eq {}]", value.cloned().unwrap_or(Value::Null)),
            found.iter().filter_map(Value::as_object).find(|f| same_value(f)),
        ),
        // Neither type nor value: only an equal element is its partner.
        None => (path.to_owned(), found.iter().filter_map(Value::as_object).find(|f| *f == item)),
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
        // Two elements of one type pair by value, in any order.
        let two = json!({"emails": [{"type": "work", "value": "a@x.io"}, {"type": "work", "value": "b@x.io"}]});
        let swapped = json!({"emails": [{"type": "work", "value": "b@x.io"}, {"type": "work", "value": "a@x.io"}]});
        assert!(attrs(two.clone(), swapped).is_empty());
        assert_eq!(attrs(two, json!({"emails": [{"type": "work", "value": "c@x.io"}]})).len(), 2);
    }

    use proptest::prelude::*;

    /// JSON values of the shapes SCIM resources have: scalars, objects, lists of either.
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i32>().prop_map(Value::from),
            "[a-zA-Z@. ]{0,8}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("(type|value|display|[a-z]{1,5})", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn resource() -> impl Strategy<Value = Value> {
        prop::collection::btree_map("(userName|emails|name|active|urn:x:User|[a-z]{1,6})", json_value(), 0..6)
            .prop_map(|m| Value::Object(m.into_iter().collect()))
    }

    proptest! {
        /// Whatever a vendor answers, comparing never panics; a copy of the payload is no drift.
        #[test]
        fn any_answer_compares_and_a_copy_is_in_sync(expected in resource(), remote in json_value()) {
            let _ = differences(&expected, &remote);
            let mut distinct = true;
            // Lists with two equal-looking elements of one type cannot be paired one to one.
            if let Some(o) = expected.as_object() {
                for v in o.values() {
                    if let Value::Array(items) = v {
                        let keys: Vec<String> = items.iter().map(|i| format!("{:?}", i.get("type").or(i.get("value")))).collect();
                        let mut dedup = keys.clone();
                        dedup.sort();
                        dedup.dedup();
                        distinct &= dedup.len() == keys.len();
                    }
                }
            }
            if distinct {
                prop_assert!(differences(&expected, &expected).is_empty(), "{:?}", differences(&expected, &expected));
            }
        }
    }
}
