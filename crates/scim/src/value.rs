//! Case-insensitive access to SCIM resources held as JSON (RFC 7643 §2.1: attribute names are
//! case-insensitive). Stored resources are normalised to canonical names, so the exact-match fast
//! path almost always hits; the scan keeps client-sent spellings working everywhere else.

use serde_json::{Map, Value};

/// The value under `key`, compared case-insensitively.
pub fn get_ci<'v>(map: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    if let Some(v) = map.get(key) {
        return Some(v);
    }
    map.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v)
}

/// The actual key under which `key` is stored, compared case-insensitively.
pub fn key_ci(map: &Map<String, Value>, key: &str) -> Option<String> {
    if map.contains_key(key) {
        return Some(key.to_owned());
    }
    map.keys().find(|k| k.eq_ignore_ascii_case(key)).cloned()
}

/// A mutable reference to the value under `key`, compared case-insensitively.
pub fn get_ci_mut<'v>(map: &'v mut Map<String, Value>, key: &str) -> Option<&'v mut Value> {
    let actual = key_ci(map, key)?;
    map.get_mut(&actual)
}

/// Removes and returns the value under `key`, compared case-insensitively.
pub fn remove_ci(map: &mut Map<String, Value>, key: &str) -> Option<Value> {
    let actual = key_ci(map, key)?;
    map.remove(&actual)
}

/// Sets `key` to `value`, replacing a differently-cased existing key so that one attribute never
/// appears twice under two spellings.
pub fn insert_ci(map: &mut Map<String, Value>, key: &str, value: Value) {
    match key_ci(map, key) {
        Some(actual) if actual == key => {
            map.insert(actual, value);
        }
        Some(actual) => {
            map.remove(&actual);
            map.insert(key.to_owned(), value);
        }
        None => {
            map.insert(key.to_owned(), value);
        }
    }
}

/// A boolean as SCIM clients send it: a JSON boolean, or the strings `"true"` / `"false"` in
/// any case (Entra sends `"True"` and `"False"`). Anything else is no boolean.
pub fn boolean(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// Whether a value counts as unassigned (RFC 7643 §2.5): `null`, an empty array, or an empty object.
pub fn is_unassigned(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn booleans_are_json_booleans_or_the_words_in_any_case() {
        use serde_json::json;
        for (v, want) in [
            (json!(true), Some(true)),
            (json!("True"), Some(true)),
            (json!("FALSE"), Some(false)),
            (json!(false), Some(false)),
            (json!("no"), None),
            (json!(0), None),
            (Value::Null, None),
        ] {
            assert_eq!(boolean(&v), want, "{v}");
        }
    }

    use super::*;
    use serde_json::json;

    #[test]
    fn lookups_ignore_case_and_insert_keeps_one_spelling() {
        let mut m = json!({"userName": "a", "Name": {"givenName": "x"}}).as_object().unwrap().clone();
        assert_eq!(get_ci(&m, "USERNAME"), Some(&json!("a")));
        assert_eq!(key_ci(&m, "name").as_deref(), Some("Name"));
        insert_ci(&mut m, "name", json!({"familyName": "y"}));
        assert_eq!(m.len(), 2);
        assert!(m.contains_key("name"));
        assert_eq!(remove_ci(&mut m, "username"), Some(json!("a")));
        assert!(is_unassigned(&json!([])) && is_unassigned(&json!(null)) && !is_unassigned(&json!(false)));
    }
}
