//! Rules the vendor profiles share: an app's table of accepted attributes checked against a user,
//! "`userName` is the only filterable attribute", and small value checks.
//!
//! Users reach these checks in canonical form (schema spelling, extension data under its URN,
//! `schemas` recomputed, no `id`/`meta`), so a table lists attributes in schema spelling and
//! compares them ignoring case all the same. Error details name attributes and rules, never values:
//! values may be personal data.

use scimgw_scim::ScimError;
use scimgw_scim::filter::{CompValue, CompareOp, Filter};
use scimgw_scim::schema::USER_SCHEMA;
use serde_json::{Map, Value};

use crate::patch::PatchTarget;

/// A multi-valued complex attribute the app takes only some values of, e.g. Jostle's emails of
/// four types.
#[derive(Debug)]
pub(crate) struct MultiValued {
    /// `emails`.
    pub name: &'static str,
    /// The `type` values accepted, compared ignoring case.
    pub types: &'static [&'static str],
    /// Whether a value marked `primary: true` is accepted whatever its type (JumpCloud's company
    /// email is "the primary email").
    pub primary_is_enough: bool,
    /// The sub-attributes accepted besides `type` and `primary`, e.g. `value`.
    pub subs: &'static [&'static str],
}

/// What an app accepts on a user, as its vendor's attribute table says (see `shared/VENDORS.md`).
#[derive(Debug)]
pub(crate) struct AttributeTable {
    /// The app's name, as its error messages start.
    pub vendor: &'static str,
    /// Top-level simple attributes (core or common), e.g. `userName`, `externalId`.
    pub simple: &'static [&'static str],
    /// Singular complex attributes with the sub-attributes accepted, e.g. `name` → `givenName`.
    pub complex: &'static [(&'static str, &'static [&'static str])],
    /// Multi-valued attributes and the values accepted.
    pub multi: &'static [MultiValued],
    /// Extension URNs and the attributes accepted under each.
    pub extensions: &'static [(&'static str, &'static [&'static str])],
}

fn contains_ci(list: &[&str], name: &str) -> bool {
    list.iter().any(|n| n.eq_ignore_ascii_case(name))
}

impl AttributeTable {
    /// Refuses the first attribute outside the table with `400 invalidValue` naming it.
    pub(crate) fn check(&self, user: &Map<String, Value>) -> Result<(), ScimError> {
        for (key, value) in user {
            if key.eq_ignore_ascii_case("schemas") || contains_ci(self.simple, key) {
                continue;
            }
            if let Some((_, subs)) = self.complex.iter().find(|(n, _)| n.eq_ignore_ascii_case(key)) {
                for sub in value.as_object().into_iter().flat_map(Map::keys) {
                    if !contains_ci(subs, sub) {
                        return Err(self.refuse(&format!("{key}.{sub}")));
                    }
                }
                continue;
            }
            if let Some(multi) = self.multi.iter().find(|m| m.name.eq_ignore_ascii_case(key)) {
                self.check_multi(multi, value)?;
                continue;
            }
            if let Some((urn, attrs)) = self.extensions.iter().find(|(u, _)| u.eq_ignore_ascii_case(key)) {
                for attr in value.as_object().into_iter().flat_map(Map::keys) {
                    if !contains_ci(attrs, attr) {
                        return Err(self.refuse(&format!("{urn}:{attr}")));
                    }
                }
                continue;
            }
            return Err(self.refuse(key));
        }
        Ok(())
    }

    fn check_multi(&self, multi: &MultiValued, value: &Value) -> Result<(), ScimError> {
        let name = multi.name;
        let types = multi.types.join(", ");
        for (i, item) in value.as_array().into_iter().flatten().enumerate() {
            let Some(obj) = item.as_object() else { continue };
            let primary = obj.get("primary") == Some(&Value::Bool(true));
            match obj.get("type").and_then(Value::as_str) {
                Some(t) if contains_ci(multi.types, t) => {}
                _ if primary && multi.primary_is_enough => {}
                Some(t) => {
                    return Err(ScimError::invalid_value(format!(
                        "{}: {name}[type eq \"{}\"] is not accepted; {} takes {name} of type {types} only",
                        self.vendor,
                        clip(t),
                        self.vendor
                    )));
                }
                None => {
                    return Err(ScimError::invalid_value(format!(
                        "{}: {name}[{i}] has no type; {} takes {name} of type {types} only",
                        self.vendor, self.vendor
                    )));
                }
            }
            for sub in obj.keys() {
                let known = sub.eq_ignore_ascii_case("type") || sub.eq_ignore_ascii_case("primary");
                if !known && !contains_ci(multi.subs, sub) {
                    return Err(self.refuse(&format!("{name}[{i}].{sub}")));
                }
            }
        }
        Ok(())
    }

    /// Refuses, with `400 invalidPath` naming it, a PATCH path outside the table: an attribute or
    /// sub-attribute it does not list, a value filter other than `type eq` one of its types. The
    /// values a path-less or whole-attribute operation writes are checked after it is applied,
    /// by [`AttributeTable::check`].
    pub(crate) fn check_target(&self, target: &PatchTarget<'_>) -> Result<(), ScimError> {
        let PatchTarget { extension, attribute, filter, sub_attribute } = *target;
        let path = describe(target);
        let listed = match extension {
            Some(urn) => {
                self.extensions.iter().any(|(u, attrs)| u.eq_ignore_ascii_case(urn) && contains_ci(attrs, attribute))
                    && filter.is_none()
                    && sub_attribute.is_none()
            }
            None if contains_ci(self.simple, attribute) => filter.is_none() && sub_attribute.is_none(),
            None => {
                if let Some((_, subs)) = self.complex.iter().find(|(n, _)| n.eq_ignore_ascii_case(attribute)) {
                    filter.is_none() && sub_attribute.is_none_or(|s| contains_ci(subs, s))
                } else if let Some(multi) = self.multi.iter().find(|m| m.name.eq_ignore_ascii_case(attribute)) {
                    let typed =
                        filter.is_none_or(|(on, ty)| on.eq_ignore_ascii_case("type") && contains_ci(multi.types, ty));
                    let sub_ok =
                        sub_attribute.is_none_or(|s| contains_ci(multi.subs, s) || s.eq_ignore_ascii_case("primary"));
                    typed && sub_ok
                } else {
                    false
                }
            }
        };
        if listed {
            return Ok(());
        }
        Err(ScimError::invalid_path(format!(
            "{}: PATCH path \"{path}\" is not accepted; {} takes only {}",
            self.vendor,
            self.vendor,
            self.listing()
        )))
    }

    fn refuse(&self, attribute: &str) -> ScimError {
        ScimError::invalid_value(format!(
            "{}: attribute \"{attribute}\" is not accepted; {} takes only {}",
            self.vendor,
            self.vendor,
            self.listing()
        ))
    }

    /// The table in one line, for error details: `userName, active, name.givenName, …`.
    fn listing(&self) -> String {
        let mut names: Vec<String> = self.simple.iter().map(|s| (*s).to_owned()).collect();
        for (name, subs) in self.complex {
            names.extend(subs.iter().map(|s| format!("{name}.{s}")));
        }
        for m in self.multi {
            let types: Vec<String> = m.types.iter().map(|t| format!("{}[type eq \"{t}\"]", m.name)).collect();
            names.push(types.join(" / "));
        }
        for (urn, attrs) in self.extensions {
            names.extend(attrs.iter().map(|a| format!("{urn}:{a}")));
        }
        names.join(", ")
    }
}

/// A PATCH target as a path, for error details: `emails[type eq "home"].value`.
fn describe(target: &PatchTarget<'_>) -> String {
    let mut out = match target.extension {
        Some(urn) => format!("{urn}:{}", target.attribute),
        None => target.attribute.to_owned(),
    };
    if let Some((on, literal)) = target.filter {
        // A type is a word of the vendor's table, not personal data; other literals are not echoed.
        let shown = if on.eq_ignore_ascii_case("type") { clip(literal) } else { "…".to_owned() };
        out.push_str(&format!("[{on} eq \"{shown}\"]"));
    }
    if let Some(sub) = target.sub_attribute {
        out.push('.');
        out.push_str(sub);
    }
    out
}

/// Allows only `userName eq "…"`: the one attribute, and the one operator, the vendor documents for
/// matching users. Anything else is `400 invalidFilter`.
pub(crate) fn only_username_eq(vendor: &str, filter: &Filter) -> Result<(), ScimError> {
    if let Filter::Compare { path, op: CompareOp::Eq, value: CompValue::Str(_) } = filter {
        let core = path.urn.as_deref().is_none_or(|u| u.eq_ignore_ascii_case(USER_SCHEMA));
        if core && path.name.eq_ignore_ascii_case("userName") && path.sub_attr.is_none() {
            return Ok(());
        }
    }
    Err(ScimError::invalid_filter(format!(
        "{vendor}: only userName eq \"…\" filters are supported; userName is the only filterable attribute"
    )))
}

/// A string attribute's value, when set.
pub(crate) fn string<'u>(user: &'u Map<String, Value>, name: &str) -> Option<&'u str> {
    user.get(name).and_then(Value::as_str)
}

/// A sub-attribute of a singular complex attribute, when set: `name.givenName`.
pub(crate) fn sub_string<'u>(user: &'u Map<String, Value>, name: &str, sub: &str) -> Option<&'u str> {
    user.get(name).and_then(|v| v.get(sub)).and_then(Value::as_str)
}

/// The values of a multi-valued attribute.
pub(crate) fn values<'u>(user: &'u Map<String, Value>, name: &str) -> impl Iterator<Item = &'u Map<String, Value>> {
    user.get(name).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_object)
}

/// The `value` of the element of type `ty` (ignoring case), when set and not blank.
pub(crate) fn typed_value<'u>(user: &'u Map<String, Value>, name: &str, ty: &str) -> Option<&'u str> {
    values(user, name)
        .find(|v| v.get("type").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case(ty)))
        .and_then(|v| v.get("value"))
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

/// Whether `s` looks like an email address: one `@`, something before it, and a dotted domain
/// after it, no spaces. Deliberately loose: it tells `first.last` from `first.last@example.com`,
/// not a deliverable address from an undeliverable one.
pub(crate) fn is_email_shaped(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else { return false };
    let labels_ok = domain.split('.').count() >= 2 && domain.split('.').all(|l| !l.is_empty());
    !local.is_empty() && !domain.contains('@') && labels_ok && !s.chars().any(char::is_whitespace)
}

/// A length in characters, as the vendors count "max length".
pub(crate) fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// Client-sent words (an email `type`) echoed in errors are cut short.
fn clip(s: &str) -> String {
    s.chars().take(32).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const TABLE: AttributeTable = AttributeTable {
        vendor: "Acme",
        simple: &["userName", "active"],
        complex: &[("name", &["givenName"])],
        multi: &[MultiValued { name: "emails", types: &["work"], primary_is_enough: false, subs: &["value"] }],
        extensions: &[("urn:x:ext", &["badge"])],
    };

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(o) => o,
            _ => Map::new(),
        }
    }

    fn refused(v: Value) -> String {
        TABLE.check(&obj(v)).err().map(|e| e.detail).unwrap_or_default()
    }

    #[test]
    fn a_table_accepts_what_it_lists_ignoring_case() {
        let user = json!({"schemas": [], "USERNAME": "a", "active": true, "name": {"givenName": "A"},
                          "emails": [{"value": "a@x.io", "type": "Work", "primary": true}],
                          "urn:x:ext": {"badge": "1"}});
        assert_eq!(refused(user), "");
    }

    #[test]
    fn a_table_names_the_first_attribute_it_does_not_list() {
        assert!(refused(json!({"title": "x"})).contains("attribute \"title\" is not accepted"));
        assert!(refused(json!({"name": {"familyName": "x"}})).contains("\"name.familyName\""));
        assert!(refused(json!({"urn:x:ext": {"other": "x"}})).contains("\"urn:x:ext:other\""));
        assert!(refused(json!({"emails": [{"type": "home", "value": "x"}]})).contains("emails[type eq \"home\"]"));
        assert!(refused(json!({"emails": [{"value": "x"}]})).contains("emails[0] has no type"));
        assert!(refused(json!({"emails": [{"type": "work", "display": "x"}]})).contains("\"emails[0].display\""));
        let listing = refused(json!({"title": "x"}));
        assert!(listing.contains("userName, active, name.givenName, emails[type eq \"work\"], urn:x:ext:badge"));
    }

    #[test]
    fn a_primary_value_can_stand_for_its_type() {
        let table = AttributeTable {
            multi: &[MultiValued { name: "emails", types: &["work"], primary_is_enough: true, subs: &["value"] }],
            ..TABLE
        };
        assert!(table.check(&obj(json!({"emails": [{"value": "x", "primary": true}]}))).is_ok());
        assert!(table.check(&obj(json!({"emails": [{"value": "x", "type": "home"}]}))).is_err());
    }

    #[test]
    fn a_table_takes_patch_paths_it_lists_and_names_the_others() {
        let target =
            |extension, attribute, filter, sub_attribute| PatchTarget { extension, attribute, filter, sub_attribute };
        for ok in [
            target(None, "userName", None, None),
            target(None, "name", None, Some("givenName")),
            target(None, "name", None, None),
            target(None, "emails", None, None),
            target(None, "emails", Some(("type", "Work")), Some("value")),
            target(None, "emails", Some(("type", "work")), Some("primary")),
            target(None, "emails", Some(("type", "work")), None),
            target(Some("urn:x:ext"), "badge", None, None),
        ] {
            assert!(TABLE.check_target(&ok).is_ok(), "{ok:?}");
        }
        for (bad, names) in [
            (target(None, "title", None, None), "\"title\""),
            (target(None, "name", None, Some("familyName")), "\"name.familyName\""),
            (target(None, "emails", Some(("type", "home")), Some("value")), "emails[type eq \"home\"].value"),
            (target(None, "emails", Some(("value", "a@b.io")), None), "emails[value eq \"…\"]"),
            (target(None, "emails", Some(("type", "work")), Some("display")), ".display"),
            (target(None, "userName", None, Some("x")), "userName.x"),
            (target(Some("urn:x:ext"), "other", None, None), "urn:x:ext:other"),
        ] {
            let e = TABLE.check_target(&bad).unwrap_err();
            assert_eq!(e.scim_type.map(|t| t.as_str()), Some("invalidPath"), "{bad:?}");
            assert!(e.detail.contains(names), "{:?} does not name {names:?}", e.detail);
            assert!(!e.detail.contains("a@b.io"));
        }
    }

    #[test]
    fn only_username_eq_filters_pass() {
        for ok in
            ["userName eq \"a\"", "USERNAME eq \"a\"", "urn:ietf:params:scim:schemas:core:2.0:User:userName eq \"a\""]
        {
            assert!(only_username_eq("Acme", &ok.parse().unwrap()).is_ok(), "{ok}");
        }
        for bad in ["userName sw \"a\"", "userName pr", "title eq \"a\"", "userName eq \"a\" or userName eq \"b\""] {
            let e = only_username_eq("Acme", &bad.parse().unwrap()).unwrap_err();
            assert_eq!(e.scim_type.map(|t| t.as_str()), Some("invalidFilter"), "{bad}");
        }
    }

    #[test]
    fn email_shape_tells_a_nickname_from_an_address() {
        assert!(is_email_shaped("ada.lovelace@example.com"));
        for not in ["ada.lovelace", "ada@", "@example.com", "ada@example", "a b@example.com", "a@b@c.io", "a@x..io"] {
            assert!(!is_email_shaped(not), "{not}");
        }
        assert_eq!(char_len("é"), 1);
    }
}
