//! The PATCH engine (RFC 7644 §3.5.2): applies a [`PatchRequest`] to a stored resource.
//!
//! Semantics, beyond the RFC's letter where Entra ID or Okta need it:
//! - Operations apply in order to a copy; any error leaves the stored resource untouched, and the
//!   result is validated as a whole (types, required attributes, one `primary`) before it is
//!   returned, so a PATCH can never store what a POST would refuse.
//! - `add`/`replace` without `path`: each key of the value object is a path of its own, so Entra's
//!   dotted keys (`"name.givenName"`) and URN-qualified keys
//!   (`"urn:…:enterprise:2.0:User:employeeNumber"`) work, as does a whole extension object under
//!   its URN. readOnly keys (`id`, `meta`, Okta's group `id`) are ignored there, as in a POST body.
//! - An explicit `path` to a readOnly attribute is a 400 `mutability`; removing a required
//!   attribute (`userName`) is a 400 `mutability` (RFC 7644 §3.5.2); an `immutable` attribute may be
//!   set once. So may an immutable sub-attribute of a value (`members[…].value`, RFC 7643 §8.7.1):
//!   set when the value is added, never changed or removed after, whatever the path's form; a whole
//!   value replaced through a filter is another value. `password` (writeOnly) is accepted and
//!   discarded: the gateway keeps no passwords.
//! - Multi-valued `add` appends values that are not already there (a value with the same `value`
//!   and `type` is merged, not duplicated), finding them by hash: linear in the values, which one
//!   request controls. Setting `primary: true` on one value sets it to false on the others (RFC
//!   7644 §3.5.2). No operation may leave an attribute more values than its `max_values`.
//! - `replace` on a singular complex attribute merges the given sub-attributes and leaves the
//!   others unchanged (RFC 7644 §3.5.2.3); on a multi-valued attribute without a filter it replaces
//!   every value.
//! - A value-path `add`/`replace` (`emails[type eq "work"].value`) whose filter matches nothing:
//!   when the filter is a conjunction of `eq` comparisons, a new value is created from them (Entra
//!   sends `replace emails[type eq "work"].value` to users that have no work email yet; refusing
//!   would fail its sync). Any other filter gives 400 `noTarget`, as the RFC says.
//! - `remove` of something absent, or with a filter that matches nothing, changes nothing and is
//!   not an error: Entra retries removals, and a removal is satisfied when the value is gone.
//! - `remove` with a `value` on a multi-valued attribute (Entra's legacy
//!   `{"op":"Remove","path":"members","value":[{"value":"<id>"}]}`) removes the listed values,
//!   matched on their `value` sub-attribute.
//! - `remove` without `path` is a 400 `noTarget` (RFC 7644 §3.5.2.2).

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use crate::error::ScimError;
use crate::filter::{AttrPath, CompValue, CompareOp, Filter, PatchPath, matches_element, parse_patch_path};
use crate::messages::{PatchOpKind, PatchOperation, PatchRequest};
use crate::resource::{AttrLoc, check_immutable, normalize_attribute, normalize_single, revalidate};
use crate::resource::{opaque_set, unknown};
use crate::schema::DropHook;
use crate::schema::{
    AttrType, Attribute, ENTERPRISE_USER_SCHEMA, IGNORED_SCHEMAS, Location, Mutability, ResourceSchema, Schema,
};
use crate::value::{get_ci, get_ci_mut, insert_ci, remove_ci};

/// The result of a PATCH.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOutcome {
    /// The resource after every operation, in canonical stored form.
    pub resource: Map<String, Value>,
    /// Whether anything changed (a no-op PATCH need not bump the version or notify targets).
    pub changed: bool,
}

/// Applies `request` to `resource` (canonical stored form, as [`validate_resource`] returns it).
pub fn apply_patch(
    schema: &ResourceSchema<'_>,
    resource: &Map<String, Value>,
    request: &PatchRequest,
) -> Result<PatchOutcome, ScimError> {
    let mut doc = resource.clone();
    for (i, op) in request.operations.iter().enumerate() {
        apply_operation(schema, &mut doc, op)
            .map_err(|e| ScimError { detail: format!("Operations[{i}]: {}", e.detail), ..e })?;
    }
    // Only what the operations changed needs normalising again: the rest is already canonical.
    let touched: Vec<String> = doc
        .iter()
        .filter(|(k, v)| resource.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .chain(resource.keys().filter(|k| !doc.contains_key(*k)).cloned())
        .collect();
    if touched.is_empty() {
        return Ok(PatchOutcome { resource: doc, changed: false });
    }
    let patched = revalidate(schema, doc, &touched)?;
    check_immutable(schema, resource, &patched)?;
    let changed = patched != *resource;
    Ok(PatchOutcome { resource: patched, changed })
}

/// Where an operation points, resolved against the schema.
enum Target<'s> {
    /// A whole extension object (`urn:…:enterprise:2.0:User`).
    Extension(&'s Schema),
    /// An extension kept as sent (not registered; unknown attributes accepted): the whole
    /// extension, or one attribute of it and optionally one sub-attribute.
    Opaque { urn: String, attr: Option<String>, sub: Option<String> },
    /// An unknown attribute, dropped (unknown attributes accepted; already reported).
    Dropped,
    /// An attribute, optionally one of its sub-attributes, optionally through a value filter.
    Attr { container: Option<&'s Schema>, attr: &'s Attribute, sub: Option<&'s Attribute>, filter: Option<Filter> },
}

fn apply_operation(
    schema: &ResourceSchema<'_>,
    doc: &mut Map<String, Value>,
    op: &PatchOperation,
) -> Result<(), ScimError> {
    match (&op.path, op.op) {
        (None, PatchOpKind::Remove) => {
            Err(ScimError::no_target("\"remove\" needs a \"path\" naming what to remove (RFC 7644 §3.5.2.2)"))
        }
        (None, kind) => {
            let Some(Value::Object(values)) = &op.value else {
                return Err(ScimError::invalid_value(
                    "without a \"path\", the \"value\" must be an object of attributes to set",
                ));
            };
            for (key, value) in values {
                apply_pathless(schema, doc, kind, key, value.clone())?;
            }
            Ok(())
        }
        (Some(path), kind) => {
            let target = resolve(schema, path)?;
            if kind != PatchOpKind::Remove && op.value.is_none() {
                return Err(ScimError::invalid_value(format!("\"{}\" needs a \"value\"", op_name(kind))));
            }
            apply_target(schema, doc, kind, target, op.value.clone(), true)
        }
    }
}

/// One key of a path-less `add`/`replace` value object.
fn apply_pathless(
    schema: &ResourceSchema<'_>,
    doc: &mut Map<String, Value>,
    kind: PatchOpKind,
    key: &str,
    value: Value,
) -> Result<(), ScimError> {
    if key.eq_ignore_ascii_case("schemas") || IGNORED_SCHEMAS.iter().any(|s| s.eq_ignore_ascii_case(key)) {
        return Ok(());
    }
    if let Some(ext) = schema.extension(key) {
        return apply_extension(schema, doc, kind, ext, Some(value));
    }
    let target = resolve(schema, key)?;
    if let Target::Attr { attr, sub, .. } = &target {
        if is_ignored_input(attr) || sub.is_some_and(is_ignored_input) {
            return Ok(());
        }
    }
    apply_target(schema, doc, kind, target, Some(value), false)
}

/// readOnly and writeOnly input is ignored in bodies (RFC 7643 §7).
fn is_ignored_input(attr: &Attribute) -> bool {
    matches!(attr.mutability, Mutability::ReadOnly | Mutability::WriteOnly)
}

/// Resolves an operation's path (or a path-less value's key); an extension kept as sent splits
/// as [`ResourceSchema::opaque_split`] says.
fn resolve<'s>(schema: &ResourceSchema<'s>, path: &str) -> Result<Target<'s>, ScimError> {
    let parsed = parse_patch_path(path).map_err(|e| e.into_path_error())?;
    let (attr_path, filter, filter_sub) = match parsed {
        PatchPath::Attr(p) => (p, None, None),
        PatchPath::ValuePath { path, filter, sub_attr } => (path, Some(filter), sub_attr),
    };
    let AttrPath { mut urn, name, sub_attr } = attr_path;
    // `costCenter` / `organization` without the Enterprise URN (`schema::BARE_ENTERPRISE_ATTRIBUTES`).
    if urn.is_none() && schema.bare_enterprise_attribute(&name).is_some() {
        urn = Some(ENTERPRISE_USER_SCHEMA.to_owned());
    }
    if let Some(urn) = urn.as_ref().filter(|urn| !schema.knows_schema(urn)) {
        let full = format!("{urn}:{name}");
        if sub_attr.is_none() && filter.is_none() {
            if let Some(ext) = schema.extension(&full) {
                return Ok(Target::Extension(ext));
            }
        }
        if let Some((urn, attr)) = schema.opaque_split(&full) {
            if filter.is_some() {
                return Err(ScimError::invalid_path(format!(
                    "\"{}\" belongs to {}, an extension this gateway keeps as sent without its schema: \
                     value filters on it are not supported",
                    clip(&name),
                    clip(urn)
                )));
            }
            let sub = sub_attr.or(filter_sub);
            return Ok(Target::Opaque { urn: urn.to_owned(), attr: attr.map(str::to_owned), sub });
        }
    }
    if filter.is_some() && sub_attr.is_some() {
        return Err(ScimError::invalid_path("a value filter applies to an attribute, not to a sub-attribute"));
    }
    let sub_name = sub_attr.or(filter_sub);
    let Some(resolved) = schema.resolve(urn.as_deref(), &name, None) else {
        let shown = match &urn {
            Some(urn) => format!("{urn}:{name}"),
            None => name.clone(),
        };
        unknown(schema.lenient(), &shown, || {
            ScimError::invalid_path(format!(
                "\"{}\" is not an attribute of {}{}",
                clip(&name),
                schema.resource_type.name,
                if urn.is_none() && schema.extensions.iter().any(|(e, _)| e.attribute(&name).is_some()) {
                    " (extension attributes need their schema URN, e.g. urn:…:User:department)"
                } else {
                    ""
                }
            ))
        })?;
        return Ok(Target::Dropped);
    };
    let attr = resolved.attribute;
    let container = match resolved.location {
        Location::Extension(s) => Some(s),
        Location::Core | Location::Common => None,
    };
    if sub_name.is_some() && attr.ty != AttrType::Complex {
        return Err(ScimError::invalid_path(format!("\"{}\" is not complex: it has no sub-attributes", attr.name)));
    }
    let sub = match &sub_name {
        Some(s) => match attr.sub_attribute(s) {
            Some(sub) => Some(sub),
            None => {
                unknown(schema.lenient(), &format!("{}.{s}", attr.name), || {
                    ScimError::invalid_path(format!("\"{}\" has no sub-attribute \"{}\"", attr.name, clip(s)))
                })?;
                return Ok(Target::Dropped);
            }
        },
        None => None,
    };
    if let Some(f) = &filter {
        if !(attr.multi_valued && attr.ty == AttrType::Complex) {
            return Err(ScimError::invalid_path(format!(
                "\"{}\" is not a multi-valued complex attribute: a value filter cannot select from it",
                attr.name
            )));
        }
        check_filter_paths(f, attr)?;
    }
    Ok(Target::Attr { container, attr, sub, filter })
}

/// Every attribute a value filter names must be a sub-attribute of the filtered attribute.
fn check_filter_paths(filter: &Filter, attr: &Attribute) -> Result<(), ScimError> {
    match filter {
        Filter::Compare { path, .. } | Filter::Present(path) => {
            if path.urn.is_some() || path.sub_attr.is_some() || attr.sub_attribute(&path.name).is_none() {
                return Err(ScimError::invalid_path(format!(
                    "the value filter names \"{}\", which is not a sub-attribute of \"{}\"",
                    clip(&path.to_string()),
                    attr.name
                )));
            }
            Ok(())
        }
        Filter::And(a, b) | Filter::Or(a, b) => {
            check_filter_paths(a, attr)?;
            check_filter_paths(b, attr)
        }
        Filter::Not(f) => check_filter_paths(f, attr),
        Filter::ValuePath { .. } => Err(ScimError::invalid_path("value filters cannot be nested")),
    }
}

fn apply_target(
    schema: &ResourceSchema<'_>,
    doc: &mut Map<String, Value>,
    kind: PatchOpKind,
    target: Target<'_>,
    value: Option<Value>,
    explicit_path: bool,
) -> Result<(), ScimError> {
    let lenient = schema.lenient();
    let (container, attr, sub, filter) = match target {
        Target::Extension(ext) => return apply_extension(schema, doc, kind, ext, value),
        Target::Opaque { urn, attr, sub } => {
            return apply_opaque(schema, doc, kind, &urn, attr.as_deref(), sub.as_deref(), value);
        }
        Target::Dropped => return Ok(()),
        Target::Attr { container, attr, sub, filter } => (container, attr, sub, filter),
    };
    if explicit_path {
        check_mutability(kind, attr, sub)?;
        if attr.mutability == Mutability::WriteOnly || sub.is_some_and(|s| s.mutability == Mutability::WriteOnly) {
            return Ok(());
        }
    }
    let holder: &mut Map<String, Value> = match container {
        None => doc,
        Some(ext) => {
            if kind == PatchOpKind::Remove && get_ci(doc, &ext.id).is_none() {
                return Ok(());
            }
            complex_slot(doc, &ext.id)
        }
    };
    match (filter, sub) {
        (None, None) => apply_whole(holder, kind, attr, value, lenient),
        (None, Some(sub)) => apply_sub(holder, kind, attr, sub, value, lenient),
        (Some(filter), sub) => apply_filtered(holder, kind, attr, &filter, sub, value, lenient),
    }
}

fn check_mutability(kind: PatchOpKind, attr: &Attribute, sub: Option<&Attribute>) -> Result<(), ScimError> {
    let leaf = sub.unwrap_or(attr);
    if attr.mutability == Mutability::ReadOnly || leaf.mutability == Mutability::ReadOnly {
        let name = sub.map_or_else(|| attr.name.clone(), |s| format!("{}.{}", attr.name, s.name));
        return Err(ScimError::mutability(format!("\"{name}\" is readOnly: the service provider sets it")));
    }
    if kind == PatchOpKind::Remove && sub.is_none() && attr.required {
        return Err(ScimError::mutability(format!(
            "\"{}\" is required and cannot be removed (RFC 7644 §3.5.2)",
            attr.name
        )));
    }
    if kind == PatchOpKind::Remove && sub.is_none() && attr.mutability == Mutability::Immutable {
        return Err(ScimError::mutability(format!("\"{}\" is immutable and cannot be removed", attr.name)));
    }
    Ok(())
}

/// A whole extension object as the target.
fn apply_extension(
    schema: &ResourceSchema<'_>,
    doc: &mut Map<String, Value>,
    kind: PatchOpKind,
    ext: &Schema,
    value: Option<Value>,
) -> Result<(), ScimError> {
    let lenient = schema.lenient();
    if kind == PatchOpKind::Remove {
        remove_ci(doc, &ext.id);
        return Ok(());
    }
    let Some(Value::Object(values)) = value else {
        return Err(ScimError::invalid_value(format!(
            "\"{}\" must be an object of the extension's attributes",
            ext.id
        )));
    };
    for (k, v) in values {
        // A `schemas` key in the extension's object repeats its URN (clients copy it from the
        // resource): nothing to apply.
        if k.eq_ignore_ascii_case("schemas") {
            continue;
        }
        let Some(attr) = ext.attribute(&k) else {
            unknown(lenient, &format!("{}:{k}", ext.id), || {
                ScimError::invalid_path(format!("unknown attribute \"{}\" in extension {}", clip(&k), ext.id))
            })?;
            continue;
        };
        if is_ignored_input(attr) {
            continue;
        }
        let target = Target::Attr { container: Some(ext), attr, sub: None, filter: None };
        apply_target(schema, doc, kind, target, Some(v), false)?;
    }
    Ok(())
}

/// An operation on an extension kept as sent: values are stored as given, `add` and `replace`
/// set, `remove` deletes; `null` is a removal.
fn apply_opaque(
    schema: &ResourceSchema<'_>,
    doc: &mut Map<String, Value>,
    kind: PatchOpKind,
    urn: &str,
    attr: Option<&str>,
    sub: Option<&str>,
    value: Option<Value>,
) -> Result<(), ScimError> {
    let value = value.filter(|v| !v.is_null() && kind != PatchOpKind::Remove);
    match (attr, value) {
        (None, None) => {
            remove_ci(doc, urn);
            Ok(())
        }
        (None, Some(Value::Object(values))) => {
            for (k, v) in values {
                if !k.eq_ignore_ascii_case("schemas") {
                    opaque_set(schema, doc, urn, &k, None, Some(v).filter(|v| !v.is_null()))?;
                }
            }
            Ok(())
        }
        (None, Some(other)) => Err(ScimError::invalid_value(format!(
            "\"{}\" is an extension: its value must be an object of its attributes, found {}",
            clip(urn),
            crate::resource::json_type(&other)
        ))),
        (Some(attr), value) => opaque_set(schema, doc, urn, attr, sub, value),
    }
}

/// `add`/`replace`/`remove` of a whole attribute.
fn apply_whole(
    holder: &mut Map<String, Value>,
    kind: PatchOpKind,
    attr: &Attribute,
    value: Option<Value>,
    lenient: Option<DropHook>,
) -> Result<(), ScimError> {
    if kind == PatchOpKind::Remove {
        match (value, attr.multi_valued) {
            (Some(value), true) => remove_listed_values(holder, attr, value),
            _ => {
                remove_ci(holder, &attr.name);
                Ok(())
            }
        }
    } else {
        let value = value.unwrap_or(Value::Null);
        let normalized = normalize_attribute(attr, value, &AttrLoc::Name(&attr.name), lenient)?;
        if attr.multi_valued {
            let new_items = match normalized {
                Some(Value::Array(items)) => items,
                Some(other) => vec![other],
                None => Vec::new(),
            };
            if kind == PatchOpKind::Replace {
                if new_items.is_empty() {
                    remove_ci(holder, &attr.name);
                } else {
                    insert_ci(holder, &attr.name, Value::Array(new_items));
                }
                return Ok(());
            }
            add_values(holder, attr, new_items)
        } else if attr.ty == AttrType::Complex {
            let Some(Value::Object(subs)) = normalized else {
                // Unassigned: an add or replace of nothing changes nothing.
                return Ok(());
            };
            let obj = complex_slot(holder, &attr.name);
            for (k, v) in subs {
                obj.insert(k, v);
            }
            Ok(())
        } else {
            match normalized {
                Some(v) => insert_ci(holder, &attr.name, v),
                None if kind == PatchOpKind::Replace => {
                    remove_ci(holder, &attr.name);
                }
                None => {}
            }
            Ok(())
        }
    }
}

/// Appends values to a multi-valued attribute, merging those already there; refuses a list
/// longer than the attribute may hold, so that the operations after this one stay cheap.
///
/// Linear: each value is looked up by its [`value_key`] in a hash map of the list rather than
/// compared with every value of it (20,000 emails in one `add` took 8 s on SQLite's writer
/// thread). A few values, as IdPs add them, are still compared directly: cheaper than keying
/// the whole list.
fn add_values(holder: &mut Map<String, Value>, attr: &Attribute, new_items: Vec<Value>) -> Result<(), ScimError> {
    if new_items.is_empty() {
        return Ok(());
    }
    let arr = array_slot(holder, &attr.name);
    let mut touched = Vec::with_capacity(new_items.len());
    if new_items.len() <= DIRECT_COMPARISONS {
        for item in new_items {
            match arr.iter().position(|existing| same_value(attr, existing, &item)) {
                Some(i) => {
                    merge_into(&mut arr[i], item);
                    touched.push(i);
                }
                None => {
                    arr.push(item);
                    touched.push(arr.len() - 1);
                }
            }
        }
    } else {
        let mut index: HashMap<String, usize> = HashMap::with_capacity(arr.len() + new_items.len());
        for (i, existing) in arr.iter().enumerate() {
            index.entry(value_key(attr, existing)).or_insert(i);
        }
        for item in new_items {
            match index.entry(value_key(attr, &item)) {
                Entry::Occupied(at) => {
                    let i = *at.get();
                    merge_into(&mut arr[i], item);
                    touched.push(i);
                }
                Entry::Vacant(slot) => {
                    slot.insert(arr.len());
                    arr.push(item);
                    touched.push(arr.len() - 1);
                }
            }
        }
    }
    if let Some(max) = attr.max_values.filter(|max| arr.len() > *max) {
        return Err(ScimError::invalid_value(format!(
            "\"{}\" may hold at most {max} values; this operation would give it {}",
            attr.name,
            arr.len()
        )));
    }
    enforce_single_primary(arr, &touched);
    Ok(())
}

/// Up to this many new values, [`add_values`] compares each with the list instead of keying it.
const DIRECT_COMPARISONS: usize = 8;

/// A new value merged into the equal one already there: its sub-attributes win.
fn merge_into(existing: &mut Value, new: Value) {
    if let (Some(existing), Value::Object(new)) = (existing.as_object_mut(), new) {
        for (k, v) in new {
            existing.insert(k, v);
        }
    }
}

/// Whether two values of a multi-valued attribute are "the same value": equal, or for complex
/// values, equal `value` (by the sub-attribute's case rule) and equal `type`.
fn same_value(attr: &Attribute, a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return false;
    };
    let case_exact = attr.sub_attribute("value").is_some_and(|s| s.case_exact);
    let eq = |x: Option<&Value>, y: Option<&Value>| match (x, y) {
        (Some(Value::String(x)), Some(Value::String(y))) if !case_exact => x.eq_ignore_ascii_case(y),
        (x, y) => x == y,
    };
    a.get("value").is_some() && eq(a.get("value"), b.get("value")) && eq(a.get("type"), b.get("type"))
}

/// A key equal for two values exactly when [`same_value`] holds: the `value` and `type` (folded
/// as [`same_value`] compares them) of a complex value that has a `value`, else the whole value's
/// canonical JSON (without serde_json's `preserve_order`, maps serialise with sorted keys, so
/// equal texts are equal values).
fn value_key(attr: &Attribute, v: &Value) -> String {
    let Some(obj) = v.as_object().filter(|o| o.contains_key("value")) else {
        return format!("={v}");
    };
    let case_exact = attr.sub_attribute("value").is_some_and(|s| s.case_exact);
    let part = |x: Option<&Value>| match x {
        Some(Value::String(s)) if !case_exact => Value::String(s.to_ascii_lowercase()).to_string(),
        Some(x) => x.to_string(),
        None => "-".to_owned(),
    };
    // JSON texts never contain a raw newline: the separator cannot be forged by a value.
    format!("v{}\n{}", part(obj.get("value")), part(obj.get("type")))
}

/// `remove` of the listed values of a multi-valued attribute (Entra's legacy member removal).
fn remove_listed_values(holder: &mut Map<String, Value>, attr: &Attribute, value: Value) -> Result<(), ScimError> {
    let listed = match value {
        Value::Array(items) => items,
        single => vec![single],
    };
    let Some(Value::Array(arr)) = get_ci_mut(holder, &attr.name) else {
        return Ok(());
    };
    let case_exact = attr.sub_attribute("value").map_or(attr.case_exact, |s| s.case_exact);
    let key_of = |v: &Value| -> Option<String> {
        let raw = match v {
            Value::Object(o) => get_ci(o, "value")?.as_str()?.to_owned(),
            Value::String(s) => s.clone(),
            _ => return None,
        };
        Some(if case_exact { raw } else { raw.to_lowercase() })
    };
    let mut keys = HashSet::with_capacity(listed.len());
    for item in &listed {
        match key_of(item) {
            Some(k) => {
                keys.insert(k);
            }
            None => {
                return Err(ScimError::invalid_value(format!(
                    "\"remove\" on \"{}\" with a value: each value must be an object with a \"value\" or a string",
                    attr.name
                )));
            }
        }
    }
    arr.retain(|v| key_of(v).is_none_or(|k| !keys.contains(&k)));
    if arr.is_empty() {
        remove_ci(holder, &attr.name);
    }
    Ok(())
}

/// `add`/`replace`/`remove` of a sub-attribute without a filter (`name.givenName`).
fn apply_sub(
    holder: &mut Map<String, Value>,
    kind: PatchOpKind,
    attr: &Attribute,
    sub: &Attribute,
    value: Option<Value>,
    lenient: Option<DropHook>,
) -> Result<(), ScimError> {
    if kind == PatchOpKind::Remove {
        match get_ci_mut(holder, &attr.name) {
            Some(Value::Object(obj)) => {
                remove_ci(obj, &sub.name);
            }
            Some(Value::Array(items)) => {
                for item in items.iter_mut().filter_map(Value::as_object_mut) {
                    keep_immutable(attr, sub, item, None)?;
                    remove_ci(item, &sub.name);
                }
            }
            _ => {}
        }
        return Ok(());
    }
    let normalized = normalize_attribute(
        sub,
        value.unwrap_or(Value::Null),
        &AttrLoc::Sub(&AttrLoc::Name(&attr.name), &sub.name),
        lenient,
    )?;
    if attr.multi_valued {
        // `emails.type` without a filter addresses every value; with none yet, it creates one.
        let arr = array_slot(holder, &attr.name);
        if arr.is_empty() {
            if let Some(v) = normalized {
                let mut obj = Map::new();
                obj.insert(sub.name.clone(), v);
                arr.push(Value::Object(obj));
            }
        } else {
            for item in arr.iter_mut().filter_map(Value::as_object_mut) {
                keep_immutable(attr, sub, item, normalized.as_ref())?;
                set_or_remove(item, &sub.name, normalized.clone());
            }
        }
        if sub.name == "primary" {
            let touched: Vec<usize> = (0..arr.len()).collect();
            enforce_single_primary(arr, &touched);
        }
        return Ok(());
    }
    let obj = complex_slot(holder, &attr.name);
    set_or_remove(obj, &sub.name, normalized);
    Ok(())
}

/// Operations through a value filter (`emails[type eq "work"]`, `members[value eq "…"]`).
fn apply_filtered(
    holder: &mut Map<String, Value>,
    kind: PatchOpKind,
    attr: &Attribute,
    filter: &Filter,
    sub: Option<&Attribute>,
    value: Option<Value>,
    lenient: Option<DropHook>,
) -> Result<(), ScimError> {
    let matched: Vec<usize> = match get_ci(holder, &attr.name) {
        Some(Value::Array(items)) => {
            items.iter().enumerate().filter(|(_, v)| matches_element(filter, v, attr)).map(|(i, _)| i).collect()
        }
        _ => Vec::new(),
    };
    if kind == PatchOpKind::Remove {
        if matched.is_empty() {
            return Ok(());
        }
        let Some(Value::Array(items)) = get_ci_mut(holder, &attr.name) else {
            return Ok(());
        };
        match sub {
            None => {
                // `matched` is ascending: one pass, not a search of it per value.
                let mut next = matched.iter().copied().peekable();
                let mut i = 0;
                items.retain(|_| {
                    let keep = next.next_if_eq(&i).is_none();
                    i += 1;
                    keep
                });
                if items.is_empty() {
                    remove_ci(holder, &attr.name);
                }
            }
            Some(sub) => {
                for &i in &matched {
                    if let Some(obj) = items[i].as_object_mut() {
                        keep_immutable(attr, sub, obj, None)?;
                        remove_ci(obj, &sub.name);
                    }
                }
            }
        }
        return Ok(());
    }

    let value = value.unwrap_or(Value::Null);
    let normalized = match sub {
        Some(sub) => normalize_attribute(
            sub,
            value,
            &AttrLoc::Sub(&AttrLoc::Selected(&AttrLoc::Name(&attr.name)), &sub.name),
            lenient,
        )?,
        None => normalize_element(attr, value, lenient)?,
    };
    if matched.is_empty() {
        let Some(mut created) = element_from_filter(filter, attr) else {
            return Err(ScimError::no_target(format!(
                "no value of \"{}\" matches the filter, and the filter does not describe a value to create",
                attr.name
            )));
        };
        match (sub, normalized) {
            (Some(sub), Some(v)) => {
                created.insert(sub.name.clone(), v);
            }
            (None, Some(Value::Object(obj))) => created.extend(obj),
            _ => return Ok(()),
        }
        return add_values(holder, attr, vec![Value::Object(created)]);
    }

    let arr = array_slot(holder, &attr.name);
    for &i in &matched {
        let Some(item) = arr[i].as_object_mut() else { continue };
        match (sub, &normalized) {
            (Some(sub), v) => {
                keep_immutable(attr, sub, item, v.as_ref())?;
                set_or_remove(item, &sub.name, v.clone());
            }
            // A whole value replaced is another value, not a change of this one's sub-attributes.
            (None, Some(Value::Object(obj))) if kind == PatchOpKind::Replace => *item = obj.clone(),
            (None, Some(Value::Object(obj))) => {
                for (k, v) in obj {
                    if let Some(sub) = attr.sub_attribute(k) {
                        keep_immutable(attr, sub, item, Some(v))?;
                    }
                }
                item.extend(obj.clone());
            }
            (None, _) => {}
        }
    }
    enforce_single_primary(arr, &matched);
    Ok(())
}

/// An immutable sub-attribute of a value (`members[…].value`, RFC 7643 §8.7.1) may be set once,
/// when the value is added, and never changed or removed after (RFC 7643 §7): `new` is what the
/// operation would leave in `item` (`None`: removed).
fn keep_immutable(
    attr: &Attribute,
    sub: &Attribute,
    item: &Map<String, Value>,
    new: Option<&Value>,
) -> Result<(), ScimError> {
    if sub.mutability != Mutability::Immutable {
        return Ok(());
    }
    match get_ci(item, &sub.name) {
        Some(old) if Some(old) != new => Err(ScimError::mutability(format!(
            "\"{}.{}\" is immutable: it is set when a value is added and cannot be changed or removed after \
             (RFC 7643 §7); remove the value and add another instead",
            attr.name, sub.name
        ))),
        _ => Ok(()),
    }
}

/// One value of a multi-valued complex attribute, normalised.
fn normalize_element(attr: &Attribute, value: Value, lenient: Option<DropHook>) -> Result<Option<Value>, ScimError> {
    if let Value::Array(_) = value {
        return Err(ScimError::invalid_value(format!(
            "a value selected by a filter on \"{}\" is one object, not an array",
            attr.name
        )));
    }
    normalize_single(attr, value, &AttrLoc::Selected(&AttrLoc::Name(&attr.name)), lenient)
}

/// The value a filter describes, when it is `a eq x` or a conjunction of such comparisons.
fn element_from_filter(filter: &Filter, attr: &Attribute) -> Option<Map<String, Value>> {
    fn collect(filter: &Filter, attr: &Attribute, out: &mut Map<String, Value>) -> bool {
        match filter {
            Filter::And(a, b) => collect(a, attr, out) && collect(b, attr, out),
            Filter::Compare { path, op: CompareOp::Eq, value } if path.sub_attr.is_none() => {
                let Some(sub) = attr.sub_attribute(&path.name) else { return false };
                let v = match value {
                    CompValue::Str(s) => Value::String(s.clone()),
                    CompValue::Bool(b) => Value::Bool(*b),
                    CompValue::Number(n) => Value::Number(n.clone()),
                    CompValue::Null => return false,
                };
                out.insert(sub.name.clone(), v);
                true
            }
            _ => false,
        }
    }
    let mut out = Map::new();
    collect(filter, attr, &mut out).then_some(out)
}

/// When one of the `touched` values is now primary, every other value stops being primary.
fn enforce_single_primary(arr: &mut [Value], touched: &[usize]) {
    let Some(&winner) = touched.iter().rev().find(|&&i| arr[i].get("primary") == Some(&Value::Bool(true))) else {
        return;
    };
    for (i, item) in arr.iter_mut().enumerate() {
        if i != winner {
            if let Some(obj) = item.as_object_mut() {
                if obj.get("primary") == Some(&Value::Bool(true)) {
                    obj.insert("primary".into(), Value::Bool(false));
                }
            }
        }
    }
}

fn set_or_remove(obj: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    match value {
        Some(v) => insert_ci(obj, key, v),
        None => {
            remove_ci(obj, key);
        }
    }
}

/// The object under `name`, created (or reset from a non-object) as needed.
fn complex_slot<'m>(holder: &'m mut Map<String, Value>, name: &str) -> &'m mut Map<String, Value> {
    if !matches!(get_ci(holder, name), Some(Value::Object(_))) {
        insert_ci(holder, name, Value::Object(Map::new()));
    }
    match get_ci_mut(holder, name) {
        Some(Value::Object(obj)) => obj,
        _ => unreachable!("the slot was made an object just above"),
    }
}

/// The array under `name`, created (or reset from a non-array) as needed.
fn array_slot<'m>(holder: &'m mut Map<String, Value>, name: &str) -> &'m mut Vec<Value> {
    if !matches!(get_ci(holder, name), Some(Value::Array(_))) {
        insert_ci(holder, name, Value::Array(Vec::new()));
    }
    match get_ci_mut(holder, name) {
        Some(Value::Array(arr)) => arr,
        _ => unreachable!("the slot was made an array just above"),
    }
}

fn op_name(kind: PatchOpKind) -> &'static str {
    match kind {
        PatchOpKind::Add => "add",
        PatchOpKind::Replace => "replace",
        PatchOpKind::Remove => "remove",
    }
}

fn clip(s: &str) -> String {
    crate::resource::truncate(s)
}

#[cfg(test)]
mod tests;
