//! The PATCH an update sends: the difference between what a target was last sent and what it
//! should now hold, as SCIM PATCH operations, and their rendering in the dialect a target expects.
//!
//! [`diff`] is pure and works on two translated payloads (what `Adapter::translate` returns), so
//! it only ever names attributes the adapter sends: what only the vendor holds is never touched.
//! Each attribute is one *leaf path*: `userName`, `name.givenName`, `urn:…:User:department`,
//! and, for a multi-valued attribute whose values each carry a distinct `type`,
//! `emails[type eq "work"].value` (one path per sub-attribute of the value of that type, as Entra
//! ID addresses them). A leaf that appeared is an `add`, one that changed a `replace`, one that
//! is gone a `remove`; a typed value that is gone altogether is removed whole
//! (`emails[type eq "personal"]`) so that no empty `{"type": …}` is left behind. Removals come
//! before the rest, so that none takes away what an `add` of the same request wrote. A multi-valued
//! attribute whose values are not one-per-type is compared whole and replaced whole.

use serde_json::{Map, Value};

use crate::adapter::Adapter;
use crate::client::ScimClient;
use crate::generic::filter_literal;
use crate::outcome::DeliveryError;

/// What one operation does (RFC 7644 §3.5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// A value that was not there.
    Add,
    /// A value that changed.
    Replace,
    /// A value that is gone.
    Remove,
}

/// One PATCH operation: `path` is always set (the dialect may regroup them).
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOp {
    /// add, replace or remove.
    pub op: OpKind,
    /// The attribute path.
    pub path: String,
    /// The new value (`None` for a remove).
    pub value: Option<Value>,
}

/// How a target wants its PATCH requests shaped. The diff is the same for every dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// RFC 7644 as written: lowercase `op`, one operation per path, JSON values. This is also
    /// Entra ID's `aadOptscim062020` dialect (JumpCloud, the generic `scim` kind) as far as that
    /// dialect is RFC-shaped: Entra's flagged requests may also gather replaces into one
    /// path-less `replace` keyed by dotted paths (`{"name.givenName": "Ann"}`), which RFC 7644
    /// does not define (a path-less value's keys are attribute names, §3.5.2.3) and which
    /// VENDORS.md says the JumpCloud directory does not take ("speaks only the RFC-shaped PATCH").
    Rfc,
    /// Entra ID without `aadOptscim062020` (Jostle, Joyn FSM): capitalised `Add`/`Replace`/
    /// `Remove`, one operation per attribute path.
    EntraLegacy,
}

/// The operations that take a target holding `previous` to `wanted` (both translated payloads).
/// Empty when nothing changed. `schemas`, `id` and `meta` are not attributes and are ignored.
pub fn diff(previous: &Value, wanted: &Value) -> Vec<PatchOp> {
    let old = leaves(previous);
    let new = leaves(wanted);
    // Removals go first: a path removed can hold what an add writes (the typed value
    // `emails[type eq "work"]` removed, `emails` with two work values added whole; or the whole
    // `emails` removed, `emails[type eq "work"].value` added), and operations apply in order
    // (RFC 7644 §3.5.2), so a removal after the add would take the new values with it.
    let mut ops = Vec::new();
    // Typed values gone altogether are removed whole; their sub-attributes are not named.
    let gone_elements: Vec<String> = element_paths(previous)
        .into_iter()
        .filter(|e| !element_paths(wanted).iter().any(|w| w.eq_ignore_ascii_case(e)))
        .collect();
    for element in &gone_elements {
        ops.push(PatchOp { op: OpKind::Remove, path: element.clone(), value: None });
    }
    for (path, _) in &old {
        let kept = new.iter().any(|(p, _)| p.eq_ignore_ascii_case(path));
        let in_gone_element =
            gone_elements.iter().any(|e| path.len() > e.len() && path[..e.len()].eq_ignore_ascii_case(e));
        if !kept && !in_gone_element {
            ops.push(PatchOp { op: OpKind::Remove, path: path.clone(), value: None });
        }
    }
    for (path, value) in &new {
        match old.iter().find(|(p, _)| p.eq_ignore_ascii_case(path)) {
            None => ops.push(PatchOp { op: OpKind::Add, path: path.clone(), value: Some(value.clone()) }),
            Some((_, was)) if was != value => {
                ops.push(PatchOp { op: OpKind::Replace, path: path.clone(), value: Some(value.clone()) });
            }
            Some(_) => {}
        }
    }
    ops
}

/// The `Operations` array of a PATCH request carrying `ops`, in `dialect`.
pub fn render(ops: &[PatchOp], dialect: Dialect) -> Value {
    let name = |op: OpKind| match (dialect, op) {
        (Dialect::EntraLegacy, OpKind::Add) => "Add",
        (Dialect::EntraLegacy, OpKind::Replace) => "Replace",
        (Dialect::EntraLegacy, OpKind::Remove) => "Remove",
        (Dialect::Rfc, OpKind::Add) => "add",
        (Dialect::Rfc, OpKind::Replace) => "replace",
        (Dialect::Rfc, OpKind::Remove) => "remove",
    };
    let one = |o: &PatchOp| {
        let mut out = Map::new();
        out.insert("op".into(), Value::from(name(o.op)));
        out.insert("path".into(), Value::from(o.path.as_str()));
        if let Some(v) = &o.value {
            out.insert("value".into(), v.clone());
        }
        Value::Object(out)
    };
    Value::Array(ops.iter().map(one).collect())
}

/// Brings the user `remote_id` at `client` to `payload` with one PATCH in `dialect` of the
/// difference from `previous` (what it was last sent), or from its copy read back and seen
/// through `adapter` when nothing was recorded. No request when nothing differs; a copy the app
/// no longer has is [`DeliveryError::NotFound`].
pub(crate) async fn patch_user<A: Adapter + ?Sized>(
    adapter: &A,
    client: &ScimClient,
    remote_id: &str,
    previous: Option<&Value>,
    payload: &Value,
    dialect: Dialect,
) -> Result<(), DeliveryError> {
    let read_back;
    let previous = match previous {
        Some(p) => p,
        None => {
            let copy = client
                .get("Users", remote_id)
                .await?
                .ok_or_else(|| DeliveryError::NotFound { message: format!("the target has no user {remote_id}") })?;
            read_back = adapter.payload_of_copy(&copy.as_object().cloned().unwrap_or_default());
            &read_back
        }
    };
    let ops = diff(previous, payload);
    if ops.is_empty() {
        return Ok(());
    }
    client.patch("Users", remote_id, render(&ops, dialect)).await.map(drop)
}

/// The operations of a deactivation: `replace active` with `false`.
pub fn deactivation() -> Vec<PatchOp> {
    vec![PatchOp { op: OpKind::Replace, path: "active".into(), value: Some(Value::Bool(false)) }]
}

/// Keys of a payload that are not attributes.
fn not_an_attribute(key: &str) -> bool {
    ["schemas", "id", "meta"].iter().any(|k| k.eq_ignore_ascii_case(key))
}

fn is_urn(key: &str) -> bool {
    key.len() > 4 && key[..4].eq_ignore_ascii_case("urn:")
}

/// Every leaf path of a payload with its value, in the payload's order.
fn leaves(payload: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let Some(top) = payload.as_object() else { return out };
    for (key, value) in top {
        if not_an_attribute(key) {
            continue;
        }
        match value {
            Value::Object(ext) if is_urn(key) => {
                for (attr, v) in ext {
                    attribute_leaves(&format!("{key}:{attr}"), v, &mut out);
                }
            }
            v => attribute_leaves(key, v, &mut out),
        }
    }
    out
}

/// The leaves of one attribute at `path`.
fn attribute_leaves(path: &str, value: &Value, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Null => {}
        Value::Object(subs) => {
            for (sub, v) in subs {
                if !v.is_null() {
                    out.push((format!("{path}.{sub}"), v.clone()));
                }
            }
        }
        Value::Array(items) => match typed(items) {
            Some(typed) => {
                for (ty, element) in typed {
                    let at = element_path(path, ty);
                    for (sub, v) in element {
                        if !sub.eq_ignore_ascii_case("type") && !v.is_null() {
                            out.push((format!("{at}.{sub}"), v.clone()));
                        }
                    }
                }
            }
            None if items.is_empty() => {}
            None => out.push((path.to_owned(), value.clone())),
        },
        v => out.push((path.to_owned(), v.clone())),
    }
}

/// `emails[type eq "work"]`.
fn element_path(attr: &str, ty: &str) -> String {
    format!("{attr}[type eq {}]", filter_literal(ty))
}

/// The values of a multi-valued attribute by their `type`, when each is an object with a
/// `type` of its own (no two the same, ignoring case); `None` otherwise.
fn typed(items: &[Value]) -> Option<Vec<(&str, &Map<String, Value>)>> {
    let mut out: Vec<(&str, &Map<String, Value>)> = Vec::new();
    for item in items {
        let o = item.as_object()?;
        let ty = o.iter().find(|(k, _)| k.eq_ignore_ascii_case("type")).and_then(|(_, v)| v.as_str())?;
        if out.iter().any(|(t, _)| t.eq_ignore_ascii_case(ty)) {
            return None;
        }
        out.push((ty, o));
    }
    Some(out)
}

/// The typed values of a payload as element paths (`emails[type eq "work"]`).
fn element_paths(payload: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let Some(top) = payload.as_object() else { return out };
    let mut visit = |path: String, value: &Value| {
        if let Some(typed) = value.as_array().and_then(|items| typed(items)) {
            out.extend(typed.into_iter().map(|(ty, _)| element_path(&path, ty)));
        }
    };
    for (key, value) in top {
        match value {
            Value::Object(ext) if is_urn(key) => {
                for (attr, v) in ext {
                    visit(format!("{key}:{attr}"), v);
                }
            }
            v if !not_an_attribute(key) => visit(key.clone(), v),
            _ => {}
        }
    }
    out
}

/// What a target holds after a deactivation of a copy that was sent `previous`: the same with
/// `active: false` (recorded for the next diff; after an update it is the payload itself).
pub fn deactivated(previous: &Value) -> Value {
    let mut out = previous.clone();
    if let Some(o) = out.as_object_mut() {
        o.insert("active".into(), Value::Bool(false));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    fn base() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT],
            "userName": "ann@example.com",
            "active": true,
            "name": {"givenName": "Ann", "familyName": "Lee"},
            "emails": [{"type": "work", "value": "ann@example.com"}, {"type": "personal", "value": "ann@home.example"}],
            ENT: {"department": "Sales"}
        })
    }

    fn with(change: impl FnOnce(&mut Map<String, Value>)) -> Value {
        let mut v = base();
        if let Some(o) = v.as_object_mut() {
            change(o);
        }
        v
    }

    fn op(op: OpKind, path: &str, value: Option<Value>) -> PatchOp {
        PatchOp { op, path: path.into(), value }
    }

    #[test]
    fn the_diff_names_exactly_what_changed() {
        use OpKind::*;
        let cases: Vec<(&str, Value, Vec<PatchOp>)> = vec![
            ("nothing changed", base(), vec![]),
            (
                "a changed sub-attribute",
                with(|o| o["name"]["familyName"] = json!("Smith")),
                vec![op(Replace, "name.familyName", Some(json!("Smith")))],
            ),
            (
                "an added attribute",
                with(|o| {
                    o.insert("displayName".into(), json!("Ann Lee"));
                }),
                vec![op(Add, "displayName", Some(json!("Ann Lee")))],
            ),
            (
                "a cleared sub-attribute",
                with(|o| {
                    o["name"].as_object_mut().unwrap().remove("givenName");
                }),
                vec![op(Remove, "name.givenName", None)],
            ),
            (
                "a changed typed value",
                with(|o| o["emails"][0]["value"] = json!("ann@new.example")),
                vec![op(Replace, r#"emails[type eq "work"].value"#, Some(json!("ann@new.example")))],
            ),
            (
                "a typed value that is gone is removed whole",
                with(|o| {
                    o["emails"].as_array_mut().unwrap().pop();
                }),
                vec![op(Remove, r#"emails[type eq "personal"]"#, None)],
            ),
            (
                "a new typed value is added by its filter",
                with(|o| {
                    o["emails"].as_array_mut().unwrap().push(json!({"type": "alternate1", "value": "a@x.example"}));
                }),
                vec![op(Add, r#"emails[type eq "alternate1"].value"#, Some(json!("a@x.example")))],
            ),
            (
                "an extension attribute changed, and one added",
                with(|o| {
                    o[ENT]["department"] = json!("Ops");
                    o[ENT]["employeeNumber"] = json!("42");
                }),
                vec![
                    op(Replace, &format!("{ENT}:department"), Some(json!("Ops"))),
                    op(Add, &format!("{ENT}:employeeNumber"), Some(json!("42"))),
                ],
            ),
            (
                "an extension that is gone",
                with(|o| {
                    o.remove(ENT);
                }),
                vec![op(Remove, &format!("{ENT}:department"), None)],
            ),
            ("active", with(|o| o["active"] = json!(false)), vec![op(Replace, "active", Some(json!(false)))]),
            (
                "values that are not one per type are replaced whole",
                with(|o| o["emails"] = json!([{"value": "a@x.example"}, {"value": "b@x.example"}])),
                vec![
                    op(Remove, r#"emails[type eq "work"]"#, None),
                    op(Remove, r#"emails[type eq "personal"]"#, None),
                    op(Add, "emails", Some(json!([{"value": "a@x.example"}, {"value": "b@x.example"}]))),
                ],
            ),
            (
                "schemas, id and meta are not attributes",
                with(|o| {
                    o.insert("id".into(), json!("r-1"));
                    o.insert("meta".into(), json!({"version": "W/\"2\""}));
                    o["schemas"] = json!([]);
                }),
                vec![],
            ),
        ];
        for (case, wanted, expected) in cases {
            assert_eq!(diff(&base(), &wanted), expected, "{case}");
        }
    }

    #[test]
    fn the_diff_applied_by_the_scim_engine_gives_what_was_wanted() {
        // Several changes at once, in every dialect: the PATCH built from the diff, applied to the
        // old state by an RFC 7644 engine, gives exactly the new state.
        use scimgw_scim::messages::PatchRequest;
        use scimgw_scim::patch::apply_patch;
        let wanted = with(|o| {
            o["name"]["familyName"] = json!("Smith");
            o["emails"].as_array_mut().unwrap().remove(1);
            o["emails"].as_array_mut().unwrap().push(json!({"type": "other", "value": "a@x.example"}));
            o["active"] = json!(false);
            o.insert("displayName".into(), json!("Ann Smith"));
            o[ENT].as_object_mut().unwrap().remove("department");
        });
        let ops = diff(&base(), &wanted);
        assert_eq!(ops.len(), 6, "{ops:?}");
        let registry = scimgw_scim::schema::Registry::default();
        let schema = registry.resource("User").unwrap();
        for dialect in [Dialect::Rfc, Dialect::EntraLegacy] {
            let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": render(&ops, dialect)});
            let request = PatchRequest::from_json(&body).unwrap();
            let out = apply_patch(&schema, base().as_object().unwrap(), &request).unwrap();
            assert!(diff(&Value::Object(out.resource.clone()), &wanted).is_empty(), "{dialect:?}: {:?}", out.resource);
        }
        assert!(diff(&wanted, &wanted).is_empty());
    }

    #[test]
    fn values_that_change_between_typed_and_untyped_end_as_wanted() {
        // Two work emails are not one per type: the attribute is sent whole, and the typed value
        // it replaces must not take the new values of its type with it (nor the reverse).
        use scimgw_scim::messages::PatchRequest;
        use scimgw_scim::patch::apply_patch;
        let two_work = with(|o| {
            o["emails"] =
                json!([{"type": "work", "value": "ann@example.com"}, {"type": "work", "value": "ann@new.example"}]);
        });
        let untyped = with(|o| o["emails"] = json!([{"value": "a@x.example"}, {"value": "b@x.example"}]));
        let registry = scimgw_scim::schema::Registry::default();
        let schema = registry.resource("User").unwrap();
        for (from, to) in
            [(base(), two_work.clone()), (two_work.clone(), base()), (untyped.clone(), base()), (base(), untyped)]
        {
            let ops = diff(&from, &to);
            let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": render(&ops, Dialect::Rfc)});
            let request = PatchRequest::from_json(&body).unwrap();
            let out = apply_patch(&schema, from.as_object().unwrap(), &request).unwrap();
            assert!(diff(&Value::Object(out.resource.clone()), &to).is_empty(), "{ops:?} gave {:?}", out.resource);
        }
    }

    #[test]
    fn each_dialect_shapes_the_same_operations() {
        let ops = vec![
            op(OpKind::Replace, "active", Some(json!(false))),
            op(OpKind::Replace, "name.givenName", Some(json!("Ann"))),
            op(OpKind::Replace, r#"emails[type eq "work"].value"#, Some(json!("a@x.example"))),
            op(OpKind::Remove, "name.familyName", None),
        ];
        assert_eq!(
            render(&ops, Dialect::EntraLegacy),
            json!([
                {"op": "Replace", "path": "active", "value": false},
                {"op": "Replace", "path": "name.givenName", "value": "Ann"},
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "a@x.example"},
                {"op": "Remove", "path": "name.familyName"}
            ])
        );
        assert_eq!(
            render(&ops, Dialect::Rfc),
            json!([
                {"op": "replace", "path": "active", "value": false},
                {"op": "replace", "path": "name.givenName", "value": "Ann"},
                {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "a@x.example"},
                {"op": "remove", "path": "name.familyName"}
            ])
        );
        assert_eq!(render(&[], Dialect::Rfc), json!([]));
    }
}
