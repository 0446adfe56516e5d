//! What the store cannot hold, refused up front as 400s instead of failing in the database as 500s.
//!
//! - NUL characters: PostgreSQL's `text` cannot contain U+0000, so a NUL in an indexed column or
//!   in a query parameter fails the statement. SQLite would store it, but the two engines must
//!   answer alike, and no identity data legitimately contains NUL. So a NUL anywhere in a request
//!   body (values and member names) is `invalidValue`, in a filter value `invalidFilter`, in a
//!   PATCH path's filter `invalidPath`, and an id with a NUL names no resource (404).
//! - Long indexed values: see [`MAX_INDEXED_VALUE_BYTES`].

use scimgw_scim::ScimError;
use scimgw_scim::filter::{CompValue, Filter, PatchPath, parse_patch_path};
use scimgw_scim::messages::PatchRequest;
use scimgw_scim::value::get_ci;
use scimgw_store::Kind;
use serde_json::{Map, Value};

/// Longest `userName`, `externalId` or `displayName` accepted, in bytes of UTF-8; longer is a
/// 400 `invalidValue`.
///
/// These attributes are indexed columns (with a case-folded twin for `userName` and
/// `displayName`). A PostgreSQL btree index entry must fit in about a third of a page (2,704
/// bytes with the default 8 kB pages), or the insert fails; case folding can make a value up to
/// half as long again (`İ`, 2 bytes, folds to 3). 1,024 bytes keeps every entry well inside the
/// limit, on both engines alike, and is far beyond any real user name, id or display name.
pub const MAX_INDEXED_VALUE_BYTES: usize = 1024;

/// The indexed attributes of each resource type.
fn indexed(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::User => &["userName", "externalId", "displayName"],
        Kind::Group => &["displayName", "externalId"],
    }
}

/// Refuses a resource body (as it would be stored) whose indexed values are too long.
pub(crate) fn check_indexed(kind: Kind, body: &Map<String, Value>) -> Result<(), ScimError> {
    for name in indexed(kind) {
        if let Some(Value::String(s)) = get_ci(body, name) {
            if s.len() > MAX_INDEXED_VALUE_BYTES {
                return Err(ScimError::invalid_value(format!(
                    "{name} is {} bytes long; at most {MAX_INDEXED_VALUE_BYTES} bytes are accepted",
                    s.len()
                )));
            }
        }
    }
    Ok(())
}

/// Refuses a request body with a NUL character in any string or member name.
pub(crate) fn reject_nul_in_body(value: &Value) -> Result<(), ScimError> {
    if has_nul(value) {
        return Err(ScimError::invalid_value(
            "the request body contains a NUL character (U+0000), which is not accepted",
        ));
    }
    Ok(())
}

fn has_nul(value: &Value) -> bool {
    // Iterative, so that a deeply nested body cannot exhaust the stack (serde_json already limits
    // nesting to 128, but this costs nothing).
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) if s.contains('\0') => return true,
            Value::Array(items) => stack.extend(items),
            Value::Object(obj) => {
                if obj.keys().any(|k| k.contains('\0')) {
                    return true;
                }
                stack.extend(obj.values());
            }
            _ => {}
        }
    }
    false
}

/// Whether a string literal of the filter contains NUL (a `\u0000` escape).
pub(crate) fn filter_has_nul(filter: &Filter) -> bool {
    match filter {
        Filter::Compare { value: CompValue::Str(s), .. } => s.contains('\0'),
        Filter::Compare { .. } | Filter::Present(_) => false,
        Filter::And(a, b) | Filter::Or(a, b) => filter_has_nul(a) || filter_has_nul(b),
        Filter::Not(inner) => filter_has_nul(inner),
        Filter::ValuePath { filter, .. } => filter_has_nul(filter),
    }
}

/// Refuses a query filter with a NUL in a string literal: 400 `invalidFilter`.
pub(crate) fn check_filter(filter: &Filter) -> Result<(), ScimError> {
    if filter_has_nul(filter) {
        return Err(ScimError::invalid_filter("a string in the filter contains a NUL character (U+0000)"));
    }
    Ok(())
}

/// Refuses a PATCH whose paths' value filters hold a NUL: 400 `invalidPath`. (Paths that do not
/// parse are left for the PATCH engine to report.)
pub(crate) fn check_patch_paths(request: &PatchRequest) -> Result<(), ScimError> {
    for (i, op) in request.operations.iter().enumerate() {
        let Some(path) = &op.path else { continue };
        if let Ok(PatchPath::ValuePath { filter, .. }) = parse_patch_path(path) {
            if filter_has_nul(&filter) {
                return Err(ScimError::invalid_path(format!(
                    "Operations[{i}].path: a string in the filter contains a NUL character (U+0000)"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use scimgw_scim::filter::parse_filter;
    use serde_json::json;

    use super::*;

    #[test]
    fn nul_is_found_in_values_keys_and_nested_members() {
        assert!(has_nul(&json!({"a": [{"b": "x\u{0}"}]})));
        assert!(has_nul(&json!({"a\u{0}": 1})));
        assert!(!has_nul(&json!({"a": ["\\u0000", 1, null, {"b": true}]})));
    }

    #[test]
    fn nul_is_found_in_filter_literals() {
        assert!(filter_has_nul(&parse_filter(r#"a eq "x" or not (emails[value sw "\u0000"])"#).unwrap()));
        assert!(!filter_has_nul(&parse_filter(r#"a eq "\\u0000" and b pr"#).unwrap()));
    }

    #[test]
    fn indexed_values_are_limited_in_bytes() {
        let ok = "é".repeat(MAX_INDEXED_VALUE_BYTES / 2);
        let body = json!({"userName": ok, "title": "x".repeat(5000)});
        assert!(check_indexed(Kind::User, body.as_object().unwrap()).is_ok());
        let too_long = json!({"userName": "a", "externalId": "x".repeat(MAX_INDEXED_VALUE_BYTES + 1)});
        let e = check_indexed(Kind::Group, too_long.as_object().unwrap()).unwrap_err();
        assert_eq!((e.status, e.detail.contains("externalId")), (400, true));
    }
}
