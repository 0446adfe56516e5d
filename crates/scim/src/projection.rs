//! Attribute projection (RFC 7644 §3.4.2.5, §3.9): `attributes` and `excludedAttributes`, with
//! each attribute's `returned` characteristic (RFC 7643 §7).
//!
//! - `returned: always` (`id`) is in every response; `never` (`password`) in none; `request` only
//!   when named in `attributes`; `default` unless `attributes` leaves it out or
//!   `excludedAttributes` names it. `schemas` is always returned.
//! - Names are case-insensitive and may be sub-attributes (`name.givenName`), URN-qualified
//!   (`urn:…:enterprise:2.0:User:department`) or a whole extension (`urn:…:enterprise:2.0:User`).
//! - A name that is not an attribute of the resource type is ignored (RFC 7644 does not make it an
//!   error, and IdPs send lists written for other servers); a name that does not parse is a 400
//!   `invalidPath`.
//! - When both lists are given, `attributes` selects and `excludedAttributes` then removes.

use serde_json::{Map, Value};

use crate::error::ScimError;
use crate::filter::{AttrPath, PatchPath, parse_patch_path};
use crate::schema::{AttrType, Attribute, Location, ResourceSchema, Returned};

/// Which parts of an attribute a list names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sel {
    /// The whole attribute (or extension).
    All,
    /// Only these sub-attributes (or, for an extension, these attributes).
    Some(Vec<(String, Sel)>),
}

impl Sel {
    fn add(&mut self, path: &[&str]) {
        match (self, path.split_first()) {
            (Sel::All, _) => {}
            (me, None) => *me = Sel::All,
            (Sel::Some(children), Some((head, rest))) => {
                match children.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(head)) {
                    Some((_, child)) => child.add(rest),
                    None => {
                        let mut child = Sel::Some(Vec::new());
                        child.add(rest);
                        children.push(((*head).to_owned(), child));
                    }
                }
            }
        }
    }

    fn child(&self, name: &str) -> Option<&Sel> {
        match self {
            Sel::All => Some(&Sel::All),
            Sel::Some(children) => children.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, s)| s),
        }
    }
}

/// A parsed `attributes` / `excludedAttributes` pair, ready to apply to resources.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Projection {
    include: Option<Sel>,
    exclude: Option<Sel>,
}

impl Projection {
    /// Parses the two lists (each entry one attribute name, as split from the comma-separated
    /// query parameter). Empty lists mean "not given".
    pub fn parse(
        schema: &ResourceSchema<'_>,
        attributes: &[String],
        excluded_attributes: &[String],
    ) -> Result<Self, ScimError> {
        Ok(Self {
            include: build(schema, attributes, "attributes")?,
            exclude: build(schema, excluded_attributes, "excludedAttributes")?,
        })
    }

    /// Whether this projection returns every default attribute (no lists given).
    pub fn is_default(&self) -> bool {
        self.include.is_none() && self.exclude.is_none()
    }

    /// Whether the response will carry the top-level core attribute `name` (e.g. a group's
    /// `members`, which the gateway then need not load).
    pub fn returns(&self, schema: &ResourceSchema<'_>, name: &str) -> bool {
        let Some(resolved) = schema.resolve(None, name, None) else { return false };
        let attr = resolved.attribute;
        match attr.returned {
            Returned::Always => return true,
            Returned::Never => return false,
            Returned::Default | Returned::Request => {}
        }
        let included = match &self.include {
            Some(sel) => sel.child(&attr.name).is_some(),
            None => attr.returned == Returned::Default,
        };
        let excluded = matches!(self.exclude.as_ref().and_then(|s| s.child(&attr.name)), Some(Sel::All));
        included && !excluded
    }

    /// [`Projection::apply`] on a resource the caller gives up: every core attribute returned
    /// whole is moved, not copied. A group's 100,000 members are then neither cloned nor
    /// dropped twice (the copy was a sixth of the gateway's time to answer with them).
    pub fn apply_owned(&self, schema: &ResourceSchema<'_>, resource: Map<String, Value>) -> Map<String, Value> {
        let mut out = Map::new();
        for (key, value) in resource {
            let core = (!key.eq_ignore_ascii_case("schemas") && !key.contains(':'))
                .then(|| schema.resolve(None, &key, None))
                .flatten()
                .filter(|_| schema.extension(&key).is_none());
            let Some(resolved) = core else {
                // `schemas`, extensions and what no schema names: small, and as `apply` does.
                let one = Map::from_iter([(key, value)]);
                out.extend(self.apply(schema, &one));
                continue;
            };
            let attr = resolved.attribute;
            let inc = self.include.as_ref().map(|s| s.child(&attr.name));
            let exc = self.exclude.as_ref().and_then(|s| s.child(&attr.name));
            let kept = match keep(attr, inc, exc) {
                Keep::Nothing => None,
                Keep::Whole => Some(value),
                Keep::Parts => project_attribute(attr, &value, inc, exc),
            };
            if let Some(v) = kept {
                out.insert(key, v);
            }
        }
        out
    }

    /// Applies the projection to a full resource (with `id`, `meta`, `schemas`).
    pub fn apply(&self, schema: &ResourceSchema<'_>, resource: &Map<String, Value>) -> Map<String, Value> {
        let mut out = Map::with_capacity(resource.len());
        for (key, value) in resource {
            if key.eq_ignore_ascii_case("schemas") {
                out.insert(key.clone(), value.clone());
                continue;
            }
            if let Some(ext) = schema.extension(key) {
                let Value::Object(obj) = value else { continue };
                let inc = self.include.as_ref().map(|s| s.child(&ext.id));
                let exc = self.exclude.as_ref().and_then(|s| s.child(&ext.id));
                let mut kept = Map::new();
                for (k, v) in obj {
                    let Some(attr) = ext.attribute(k) else { continue };
                    let inc = inc.map(|i| i.and_then(|s| s.child(&attr.name)));
                    let exc = exc.and_then(|s| s.child(&attr.name));
                    if let Some(v) = project_attribute(attr, v, inc, exc) {
                        kept.insert(k.clone(), v);
                    }
                }
                if !kept.is_empty() {
                    out.insert(key.clone(), Value::Object(kept));
                }
                continue;
            }
            if key.contains(':') {
                // An extension kept as sent (no schema): selected by its URN and attribute names.
                if let Some(v) = project_opaque(
                    value,
                    self.include.as_ref().map(|s| s.child(key)),
                    self.exclude.as_ref().and_then(|s| s.child(key)),
                ) {
                    out.insert(key.clone(), v);
                }
                continue;
            }
            let Some(resolved) = schema.resolve(None, key, None) else {
                // Not in any schema: only a default projection passes it through.
                if self.include.is_none() {
                    out.insert(key.clone(), value.clone());
                }
                continue;
            };
            let attr = resolved.attribute;
            let inc = self.include.as_ref().map(|s| s.child(&attr.name));
            let exc = self.exclude.as_ref().and_then(|s| s.child(&attr.name));
            if let Some(v) = project_attribute(attr, value, inc, exc) {
                out.insert(key.clone(), v);
            }
        }
        out
    }
}

/// An extension kept as sent, with the same `inc`/`exc` conventions as [`project_attribute`]: its
/// attributes are all `returned: default`.
fn project_opaque(value: &Value, inc: Option<Option<&Sel>>, exc: Option<&Sel>) -> Option<Value> {
    if matches!(inc, Some(None)) || matches!(exc, Some(Sel::All)) {
        return None;
    }
    let Value::Object(obj) = value else { return Some(value.clone()) };
    let kept: Map<String, Value> = obj
        .iter()
        .filter(|(k, _)| match inc.flatten() {
            None => true,
            Some(sel) => sel.child(k).is_some(),
        })
        .filter(|(k, _)| !matches!(exc.and_then(|e| e.child(k)), Some(Sel::All)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    (!kept.is_empty()).then_some(Value::Object(kept))
}

/// How much of an attribute a projection returns.
enum Keep {
    Nothing,
    Whole,
    /// Some of its sub-attributes: [`project_attribute`] picks them.
    Parts,
}

/// `inc`: `None` when no `attributes` list was given, `Some(None)` when it was given and does not
/// name this attribute, `Some(Some(sel))` when it does.
fn keep(attr: &Attribute, inc: Option<Option<&Sel>>, exc: Option<&Sel>) -> Keep {
    match attr.returned {
        Returned::Never => return Keep::Nothing,
        Returned::Always => return Keep::Whole,
        Returned::Request if !matches!(inc, Some(Some(_))) => return Keep::Nothing,
        Returned::Default if matches!(inc, Some(None)) => return Keep::Nothing,
        Returned::Default | Returned::Request => {}
    }
    if matches!(exc, Some(Sel::All)) {
        return Keep::Nothing;
    }
    let whole = matches!(inc.flatten(), None | Some(Sel::All)) && exc.is_none();
    if attr.ty != AttrType::Complex || (whole && attr.sub_attributes.iter().all(|s| s.returned == Returned::Default)) {
        return Keep::Whole;
    }
    Keep::Parts
}

/// The part of `value` the projection returns (see [`keep`] for `inc` and `exc`).
fn project_attribute(attr: &Attribute, value: &Value, inc: Option<Option<&Sel>>, exc: Option<&Sel>) -> Option<Value> {
    match keep(attr, inc, exc) {
        Keep::Nothing => return None,
        Keep::Whole => return Some(value.clone()),
        Keep::Parts => {}
    }
    let inc_sel = inc.flatten();
    let whole = matches!(inc_sel, None | Some(Sel::All)) && exc.is_none();
    let project_obj = |obj: &Map<String, Value>| -> Map<String, Value> {
        let mut kept = Map::new();
        for (k, v) in obj {
            let Some(sub) = attr.sub_attribute(k) else {
                if whole {
                    kept.insert(k.clone(), v.clone());
                }
                continue;
            };
            let sub_inc = inc_sel.map(|s| s.child(&sub.name));
            let sub_inc = match sub_inc {
                // `attributes=emails` selects every sub-attribute of emails.
                Some(None) if matches!(inc_sel, Some(Sel::All)) => None,
                other => other,
            };
            let sub_exc = exc.and_then(|s| s.child(&sub.name));
            if let Some(v) = project_attribute(sub, v, sub_inc, sub_exc) {
                kept.insert(k.clone(), v);
            }
        }
        kept
    };
    match value {
        Value::Object(obj) => {
            let kept = project_obj(obj);
            (!kept.is_empty()).then_some(Value::Object(kept))
        }
        Value::Array(items) => {
            let kept: Vec<Value> = items
                .iter()
                .map(|item| match item {
                    Value::Object(obj) => Value::Object(project_obj(obj)),
                    other => other.clone(),
                })
                .filter(|v| !matches!(v, Value::Object(o) if o.is_empty()))
                .collect();
            (!kept.is_empty()).then_some(Value::Array(kept))
        }
        other => Some(other.clone()),
    }
}

fn build(schema: &ResourceSchema<'_>, names: &[String], param: &str) -> Result<Option<Sel>, ScimError> {
    if names.is_empty() {
        return Ok(None);
    }
    let mut root = Sel::Some(Vec::new());
    for name in names {
        let parsed = parse_patch_path(name).map_err(|e| {
            ScimError::invalid_path(format!("{param}: \"{}\" is not an attribute name: {}", clip(name), e.message))
        })?;
        let path = match parsed {
            PatchPath::Attr(path) => path,
            // `emails[type eq "work"]` names the attribute: a projection selects attributes,
            // not values, so the filter has nothing to select here and is read past.
            PatchPath::ValuePath { path, sub_attr, .. } => AttrPath { sub_attr: sub_attr.or(path.sub_attr), ..path },
        };
        if let (Some(urn), None) = (&path.urn, &path.sub_attr) {
            let full = format!("{urn}:{}", path.name);
            if let Some(ext) = schema.extension(&full) {
                root.add(&[&ext.id]);
                continue;
            }
        }
        if let Some(urn) = path.urn.as_deref().filter(|urn| !schema.knows_schema(urn)) {
            // An extension kept as sent: selected by its URN and attribute names.
            let full = format!("{urn}:{}", path.name);
            if let Some((ext, attr)) = schema.opaque_split(&full) {
                let mut segments = vec![ext];
                segments.extend(attr);
                segments.extend(path.sub_attr.as_deref());
                root.add(&segments);
            }
            continue;
        }
        let Some(resolved) = schema.resolve(path.urn.as_deref(), &path.name, path.sub_attr.as_deref()) else {
            continue;
        };
        let mut segments: Vec<&str> = Vec::with_capacity(3);
        if let Location::Extension(ext) = resolved.location {
            segments.push(&ext.id);
        }
        segments.push(&resolved.attribute.name);
        if let Some(sub) = resolved.sub_attribute {
            segments.push(&sub.name);
        }
        root.add(&segments);
    }
    // An `attributes` list of only unknown names still selects: it selects nothing but `always`.
    Ok(Some(root))
}

fn clip(s: &str) -> String {
    crate::resource::truncate(s)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::error::ScimType;
    use crate::schema::{ENTERPRISE_USER_SCHEMA, Registry, USER_SCHEMA};

    fn user() -> Map<String, Value> {
        json!({
            "schemas":[USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
            "id":"2819c223","externalId":"ext-1","userName":"bjensen","displayName":"Babs",
            "name":{"givenName":"Barbara","familyName":"Jensen"},
            "emails":[{"value":"b@x.com","type":"work","primary":true},{"value":"b@home.org","type":"home"}],
            "meta":{"resourceType":"User","version":"W/\"1\""},
            ENTERPRISE_USER_SCHEMA:{"department":"Tour","manager":{"value":"m1","displayName":"Boss"}}
        })
        .as_object()
        .unwrap()
        .clone()
    }

    fn project(attrs: &[&str], excluded: &[&str]) -> Value {
        let reg = Registry::default();
        let schema = reg.resource("User").unwrap();
        let a: Vec<String> = attrs.iter().map(|s| (*s).to_owned()).collect();
        let e: Vec<String> = excluded.iter().map(|s| (*s).to_owned()).collect();
        let p = Projection::parse(&schema, &a, &e).unwrap();
        let copied = p.apply(&schema, &user());
        assert_eq!(p.apply_owned(&schema, user()), copied, "moving gives what copying gives");
        Value::Object(copied)
    }

    #[test]
    fn default_projection_returns_everything_but_never_attributes() {
        let mut u = user();
        u.insert("password".into(), json!("secret"));
        let reg = Registry::default();
        let schema = reg.resource("User").unwrap();
        let out = Projection::default().apply(&schema, &u);
        assert!(!out.contains_key("password"));
        assert_eq!(Projection::default().apply_owned(&schema, u.clone()), out);
        assert_eq!(Value::Object(out), Value::Object(user()));
    }

    #[test]
    fn attributes_selects_plus_always_returned_id_and_schemas() {
        assert_eq!(
            project(&["userName"], &[]),
            json!({"schemas":[USER_SCHEMA, ENTERPRISE_USER_SCHEMA],"id":"2819c223","userName":"bjensen"})
        );
        assert_eq!(
            project(&["NAME.givenName", "emails.value"], &[]),
            json!({"schemas":[USER_SCHEMA, ENTERPRISE_USER_SCHEMA],"id":"2819c223","name":{"givenName":"Barbara"},
                   "emails":[{"value":"b@x.com"},{"value":"b@home.org"}]})
        );
    }

    #[test]
    fn extension_attributes_by_urn_or_whole_extension() {
        let out = project(&["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"], &[]);
        assert_eq!(out[ENTERPRISE_USER_SCHEMA], json!({"department":"Tour"}));
        let out = project(&[ENTERPRISE_USER_SCHEMA], &[]);
        assert_eq!(
            out[ENTERPRISE_USER_SCHEMA],
            json!({"department":"Tour","manager":{"value":"m1","displayName":"Boss"}})
        );
        let out = project(&[], &[ENTERPRISE_USER_SCHEMA]);
        assert!(out.get(ENTERPRISE_USER_SCHEMA).is_none());
        assert_eq!(out["userName"], "bjensen");
    }

    #[test]
    fn excluded_attributes_removes_but_never_always() {
        let out = project(&[], &["emails", "name.familyName", "id", "meta"]);
        assert!(out.get("emails").is_none() && out.get("meta").is_none());
        assert_eq!(out["name"], json!({"givenName":"Barbara"}));
        assert_eq!(out["id"], "2819c223");
    }

    #[test]
    fn unknown_names_are_ignored_and_malformed_ones_rejected() {
        assert_eq!(
            project(&["noSuchThing"], &[]),
            json!({"schemas":[USER_SCHEMA, ENTERPRISE_USER_SCHEMA],"id":"2819c223"})
        );
        let reg = Registry::default();
        let schema = reg.resource("User").unwrap();
        let e = Projection::parse(&schema, &["name..x".to_owned()], &[]).unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidPath));
    }

    #[test]
    fn a_value_filter_in_a_projection_names_its_attribute() {
        assert_eq!(project(&["emails[type eq \"work\"]"], &[]), project(&["emails"], &[]));
        assert_eq!(project(&["emails[type eq \"work\"].value"], &[]), project(&["emails.value"], &[]));
        assert_eq!(project(&[], &["emails[type eq \"work\"]"]), project(&[], &["emails"]));
        assert!(project(&[], &["emails[type eq \"work\"]"]).get("emails").is_none());
    }

    #[test]
    fn an_unregistered_extension_is_projected_by_its_names() {
        let custom = "urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User";
        let mut reg = Registry::default();
        reg.set_unknown_attributes(crate::schema::UnknownAttributes::Accept(crate::schema::DropHook::NONE));
        let schema = reg.resource("User").unwrap();
        let mut resource = user();
        resource.insert(custom.into(), json!({"costCode":"C-1","badge":"7"}));
        let run = |inc: &[&str], exc: &[&str]| {
            let p = Projection::parse(
                &schema,
                &inc.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
                &exc.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
            )
            .unwrap();
            let copied = p.apply(&schema, &resource);
            assert_eq!(p.apply_owned(&schema, resource.clone()), copied, "moving gives what copying gives");
            Value::Object(copied)
        };
        assert_eq!(run(&[], &[])[custom], json!({"costCode":"C-1","badge":"7"}));
        assert_eq!(run(&[&format!("{custom}:costCode")], &[])[custom], json!({"costCode":"C-1"}));
        assert_eq!(run(&[custom], &[])[custom], json!({"costCode":"C-1","badge":"7"}));
        assert!(run(&["userName"], &[]).get(custom).is_none());
        assert!(run(&[], &[custom]).get(custom).is_none());
        assert_eq!(run(&[], &[&format!("{custom}:badge")])[custom], json!({"costCode":"C-1"}));
    }

    #[test]
    fn returns_tells_whether_members_will_be_sent() {
        let reg = Registry::default();
        let schema = reg.resource("Group").unwrap();
        assert!(Projection::default().returns(&schema, "members"));
        let p = Projection::parse(&schema, &[], &["members".to_owned()]).unwrap();
        assert!(!p.returns(&schema, "members"));
        let p = Projection::parse(&schema, &["displayName".to_owned()], &[]).unwrap();
        assert!(!p.returns(&schema, "members"));
        assert!(p.returns(&schema, "id"));
    }
}
