//! Validation and normalisation of incoming resources against their schemas (RFC 7643 §2, §7).
//!
//! [`validate_resource`] turns a client's body into the canonical stored form:
//! - attribute names take their schema spelling (`USERNAME` → `userName`);
//! - `null`, empty arrays and empty objects are unassigned and dropped (RFC 7643 §2.5); Entra never
//!   sends `null` to clear, but other clients do. Strings are stored as sent, empty ones included;
//! - booleans may arrive as `"True"`/`"False"` strings (Entra) and become JSON booleans;
//! - a singular complex attribute sent as a one-element array (Entra's
//!   `"manager": [{"$ref": null, "value": "…"}]`) or as a bare string (`"manager": "<id>"`) becomes
//!   the object `{"value": …}`;
//! - a single value for a multi-valued attribute is wrapped in an array;
//! - readOnly attributes (`id`, `meta`, `groups`, `manager.displayName`, `members.display`) are
//!   ignored, not errors (RFC 7643 §7); writeOnly ones (`password`) are accepted and discarded: the
//!   gateway keeps no passwords;
//! - `schemas` must name the resource type's core schema; every other URN must be one of its
//!   extensions (or a known empty one clients send, see [`crate::schema::IGNORED_SCHEMAS`]). The
//!   stored `schemas` list is recomputed: the core URN plus each extension that holds data.
//!
//! It rejects, with a `detail` that names the attribute and what was expected: unknown attributes
//! and extension URNs, wrong JSON types, unparsable dateTimes, missing required attributes, more
//! than one `primary: true` in a multi-valued attribute, and two `emails`, `phoneNumbers` or
//! `addresses` of the same `type` (Entra treats two `work` emails as invalid; vendor adapters read
//! `emails[type eq "work"]` and must not have to guess).
//!
//! Error details name attributes, never echo values: values may be personal data.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::error::ScimError;
use crate::schema::{AttrType, Attribute, IGNORED_SCHEMAS, Mutability, ResourceSchema};
use crate::value::get_ci;

/// Attributes whose values may not share a `type` (see the module doc).
const UNIQUE_TYPE_ATTRIBUTES: &[&str] = &["emails", "phoneNumbers", "addresses"];

/// Validates a client-sent resource and returns its canonical stored form (see the module doc).
pub fn validate_resource(schema: &ResourceSchema<'_>, input: Value) -> Result<Map<String, Value>, ScimError> {
    let Value::Object(input) = input else {
        return Err(ScimError::invalid_syntax(format!(
            "the request body must be a JSON object describing a {}",
            schema.resource_type.name
        )));
    };
    check_declared_schemas(schema, &input)?;

    let mut core = Map::new();
    let mut extensions: Vec<(String, Map<String, Value>)> = Vec::new();
    for (key, value) in input {
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        if let Some(ext) = schema.extension(&key) {
            let Value::Object(obj) = value else {
                if value.is_null() {
                    continue;
                }
                return Err(ScimError::invalid_syntax(format!(
                    "{}: expected an object holding the extension's attributes, found {}",
                    ext.id,
                    json_type(&value)
                )));
            };
            let mut out = Map::new();
            for (k, v) in obj {
                let Some(attr) = ext.attribute(&k) else {
                    return Err(ScimError::invalid_syntax(format!(
                        "unknown attribute \"{}\" in extension {}",
                        truncate(&k),
                        ext.id
                    )));
                };
                if let Some(v) = normalize_attribute(attr, v, &AttrLoc::Urn(&ext.id, &attr.name))? {
                    out.insert(attr.name.clone(), v);
                }
            }
            if !out.is_empty() {
                match extensions.iter_mut().find(|(id, _)| *id == ext.id) {
                    Some((_, existing)) => existing.extend(out),
                    None => extensions.push((ext.id.clone(), out)),
                }
            }
            continue;
        }
        if key.contains(':') {
            if IGNORED_SCHEMAS.iter().any(|s| s.eq_ignore_ascii_case(&key)) {
                continue;
            }
            return Err(ScimError::invalid_syntax(format!(
                "\"{}\" is not a schema extension of {} (known: {})",
                truncate(&key),
                schema.resource_type.name,
                known_extensions(schema)
            )));
        }
        let Some(resolved) = schema.resolve(None, &key, None) else {
            return Err(ScimError::invalid_syntax(format!(
                "unknown attribute \"{}\" for resource type {}",
                truncate(&key),
                schema.resource_type.name
            )));
        };
        let attr = resolved.attribute;
        if let Some(v) = normalize_attribute(attr, value, &AttrLoc::Name(&attr.name))? {
            core.insert(attr.name.clone(), v);
        }
    }

    let mut doc = core;
    for (id, obj) in extensions {
        doc.insert(id, Value::Object(obj));
    }
    finish(schema, doc)
}

/// Re-normalises only the top-level attributes (or extension objects) named in `touched`, for a
/// resource whose other attributes are already canonical: what a PATCH changed. Then the
/// whole-resource rules (required attributes, `schemas`) run as in [`validate_resource`].
pub(crate) fn revalidate(
    schema: &ResourceSchema<'_>,
    mut doc: Map<String, Value>,
    touched: &[String],
) -> Result<Map<String, Value>, ScimError> {
    for key in touched {
        if key == "schemas" {
            continue;
        }
        let Some(value) = doc.remove(key) else { continue };
        if let Some(ext) = schema.extension(key) {
            let Value::Object(obj) = value else {
                return Err(ScimError::invalid_syntax(format!(
                    "{}: expected an object holding the extension's attributes, found {}",
                    ext.id,
                    json_type(&value)
                )));
            };
            let mut out = Map::new();
            for (k, v) in obj {
                let Some(attr) = ext.attribute(&k) else {
                    return Err(ScimError::invalid_syntax(format!(
                        "unknown attribute \"{}\" in extension {}",
                        truncate(&k),
                        ext.id
                    )));
                };
                if let Some(v) = normalize_attribute(attr, v, &AttrLoc::Urn(&ext.id, &attr.name))? {
                    out.insert(attr.name.clone(), v);
                }
            }
            if !out.is_empty() {
                doc.insert(ext.id.clone(), Value::Object(out));
            }
        } else if let Some(resolved) = schema.resolve(None, key, None) {
            let attr = resolved.attribute;
            if let Some(v) = normalize_attribute(attr, value, &AttrLoc::Name(&attr.name))? {
                doc.insert(attr.name.clone(), v);
            }
        } else {
            return Err(ScimError::invalid_syntax(format!(
                "unknown attribute \"{}\" for resource type {}",
                truncate(key),
                schema.resource_type.name
            )));
        }
    }
    finish(schema, doc)
}

/// The whole-resource rules: required attributes and extensions, and `schemas` recomputed as
/// the core URN plus each extension that holds data.
fn finish(schema: &ResourceSchema<'_>, mut doc: Map<String, Value>) -> Result<Map<String, Value>, ScimError> {
    for attr in &schema.core.attributes {
        let missing = match doc.get(&attr.name) {
            None => true,
            Some(Value::String(s)) => s.trim().is_empty(),
            Some(_) => false,
        };
        if attr.required && missing {
            return Err(ScimError::invalid_value(format!(
                "required attribute \"{}\" is missing or empty (RFC 7643 requires it for a {})",
                attr.name, schema.resource_type.name
            )));
        }
    }
    let mut schemas = vec![Value::String(schema.core.id.clone())];
    for (ext, required) in &schema.extensions {
        match doc.get(&ext.id).and_then(Value::as_object) {
            Some(obj) => {
                if let Some(attr) = ext.attributes.iter().find(|a| a.required && !obj.contains_key(&a.name)) {
                    return Err(ScimError::invalid_value(format!(
                        "required attribute \"{}:{}\" is missing",
                        ext.id, attr.name
                    )));
                }
                schemas.push(Value::String(ext.id.clone()));
            }
            None if *required => {
                return Err(ScimError::invalid_value(format!("the required extension {} is missing", ext.id)));
            }
            None => {}
        }
    }
    doc.insert("schemas".into(), Value::Array(schemas));
    Ok(doc)
}

/// Rejects a replacement that changes an `immutable` attribute that already has a value
/// (RFC 7643 §7: it may be set once). Both resources are in canonical stored form.
pub fn check_immutable(
    schema: &ResourceSchema<'_>,
    existing: &Map<String, Value>,
    replacement: &Map<String, Value>,
) -> Result<(), ScimError> {
    let scopes = std::iter::once((None, &schema.core.attributes))
        .chain(schema.extensions.iter().map(|(s, _)| (Some(s.id.as_str()), &s.attributes)));
    for (urn, attrs) in scopes {
        let (old, new) = match urn {
            None => (Some(existing), Some(replacement)),
            Some(urn) => {
                (existing.get(urn).and_then(Value::as_object), replacement.get(urn).and_then(Value::as_object))
            }
        };
        for attr in attrs.iter().filter(|a| a.mutability == Mutability::Immutable) {
            let before = old.and_then(|o| o.get(&attr.name));
            let after = new.and_then(|o| o.get(&attr.name));
            if before.is_some() && before != after {
                return Err(ScimError::mutability(format!(
                    "attribute \"{}\" is immutable: it cannot be changed once set",
                    attr.name
                )));
            }
        }
    }
    Ok(())
}

/// Checks `schemas`: an array of strings naming the core schema, and otherwise only extensions of
/// this type or ignorable URNs. Extensions named there without data are not kept.
fn check_declared_schemas(schema: &ResourceSchema<'_>, input: &Map<String, Value>) -> Result<(), ScimError> {
    let Some(value) = get_ci(input, "schemas") else {
        return Err(ScimError::invalid_syntax(format!(
            "\"schemas\" is missing: it must list \"{}\" (RFC 7643 §3)",
            schema.core.id
        )));
    };
    let Value::Array(items) = value else {
        return Err(ScimError::invalid_syntax(format!(
            "\"schemas\" must be an array of schema URNs, found {}",
            json_type(value)
        )));
    };
    let mut has_core = false;
    for item in items {
        let Value::String(urn) = item else {
            return Err(ScimError::invalid_syntax(format!(
                "\"schemas\" must contain only strings, found {}",
                json_type(item)
            )));
        };
        if urn.eq_ignore_ascii_case(&schema.core.id) {
            has_core = true;
        } else if schema.extension(urn).is_none() && !IGNORED_SCHEMAS.iter().any(|s| s.eq_ignore_ascii_case(urn)) {
            return Err(ScimError::invalid_syntax(format!(
                "unknown schema \"{}\" in \"schemas\" for a {} (known: {}, {})",
                truncate(urn),
                schema.resource_type.name,
                schema.core.id,
                known_extensions(schema)
            )));
        }
    }
    if !has_core {
        return Err(ScimError::invalid_syntax(format!(
            "\"schemas\" must include \"{}\" for a {}",
            schema.core.id, schema.resource_type.name
        )));
    }
    Ok(())
}

fn known_extensions(schema: &ResourceSchema<'_>) -> String {
    if schema.extensions.is_empty() {
        return "no extensions".into();
    }
    schema.extensions.iter().map(|(s, _)| s.id.as_str()).collect::<Vec<_>>().join(", ")
}

/// Normalises one attribute's value. `Ok(None)` means unassigned or ignored (readOnly/writeOnly).
pub(crate) fn normalize_attribute(
    attr: &Attribute,
    value: Value,
    path: &AttrLoc<'_>,
) -> Result<Option<Value>, ScimError> {
    if matches!(attr.mutability, Mutability::ReadOnly | Mutability::WriteOnly) {
        return Ok(None);
    }
    if value.is_null() {
        return Ok(None);
    }
    if attr.multi_valued {
        let items = match value {
            Value::Array(items) => items,
            single => vec![single],
        };
        let mut out: Vec<Value> = Vec::with_capacity(items.len());
        // Duplicates are dropped by their canonical JSON text, so that a group PUT with 100,000
        // members stays linear (`Vec::contains` here was quadratic: minutes for 30,000 members).
        // Without serde_json's `preserve_order`, maps serialise with sorted keys, so equal texts
        // are exactly equal values.
        let mut seen: HashSet<String> = HashSet::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let item_path = AttrLoc::Index(path, i);
            if let Some(v) = normalize_single(attr, item, &item_path)? {
                if seen.insert(v.to_string()) {
                    out.push(v);
                }
            }
        }
        if out.is_empty() {
            return Ok(None);
        }
        if attr.ty == AttrType::Complex {
            check_multi_valued(attr, &out, path)?;
        }
        return Ok(Some(Value::Array(out)));
    }
    let value = match value {
        // Entra sends singular complex attributes (manager) as a one-element array.
        Value::Array(mut items) if attr.ty == AttrType::Complex && items.len() <= 1 => match items.pop() {
            Some(v) => v,
            None => return Ok(None),
        },
        Value::Array(_) => {
            return Err(ScimError::invalid_value(format!(
                "\"{path}\" is single-valued: expected {}, found an array",
                expected(attr)
            )));
        }
        v => v,
    };
    normalize_single(attr, value, path)
}

/// At most one `primary: true`; no two values of one `type` where that matters.
fn check_multi_valued(attr: &Attribute, values: &[Value], path: &AttrLoc<'_>) -> Result<(), ScimError> {
    let primaries = values.iter().filter(|v| v.get("primary") == Some(&Value::Bool(true))).count();
    if primaries > 1 {
        return Err(ScimError::invalid_value(format!(
            "\"{path}\" has {primaries} values marked primary; at most one may be (RFC 7643 §2.4)"
        )));
    }
    if UNIQUE_TYPE_ATTRIBUTES.contains(&attr.name.as_str()) {
        let types: Vec<String> =
            values.iter().filter_map(|v| v.get("type").and_then(Value::as_str)).map(str::to_lowercase).collect();
        for (i, t) in types.iter().enumerate() {
            if types[..i].contains(t) {
                return Err(ScimError::invalid_value(format!(
                    "\"{path}\" has two values of type \"{}\"; each type may appear once",
                    truncate(t)
                )));
            }
        }
    }
    Ok(())
}

/// Normalises one value (an element of a multi-valued attribute, or a singular attribute).
pub(crate) fn normalize_single(attr: &Attribute, value: Value, path: &AttrLoc<'_>) -> Result<Option<Value>, ScimError> {
    let mismatch = |found: &Value| {
        ScimError::invalid_value(format!("\"{path}\": expected {}, found {}", expected(attr), json_type(found)))
    };
    match attr.ty {
        _ if value.is_null() => Ok(None),
        AttrType::String | AttrType::Reference | AttrType::Binary => match value {
            Value::String(_) => Ok(Some(value)),
            other => Err(mismatch(&other)),
        },
        AttrType::Boolean => match &value {
            Value::Bool(_) => Ok(Some(value)),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Some(Value::Bool(true))),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(Some(Value::Bool(false))),
            other => Err(mismatch(other)),
        },
        AttrType::Integer => match &value {
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(Some(value)),
            other => Err(mismatch(other)),
        },
        AttrType::Decimal => match &value {
            Value::Number(_) => Ok(Some(value)),
            other => Err(mismatch(other)),
        },
        AttrType::DateTime => match &value {
            Value::String(s) if chrono::DateTime::parse_from_rfc3339(s).is_ok() => Ok(Some(value)),
            Value::String(_) => Err(ScimError::invalid_value(format!(
                "\"{path}\": expected an xsd:dateTime such as \"2008-01-23T04:56:22Z\", found an unparsable string"
            ))),
            other => Err(mismatch(other)),
        },
        AttrType::Complex => {
            let obj = match value {
                Value::Object(obj) => obj,
                // `"manager": "<id>"` (Entra) means `{"value": "<id>"}`.
                Value::String(s) if attr.sub_attribute("value").is_some() => {
                    let mut obj = Map::new();
                    obj.insert("value".into(), Value::String(s));
                    obj
                }
                other => return Err(mismatch(&other)),
            };
            let mut out = Map::with_capacity(obj.len());
            for (k, v) in obj {
                let Some(sub) = attr.sub_attribute(&k) else {
                    return Err(ScimError::invalid_syntax(format!(
                        "unknown sub-attribute \"{}\" of \"{path}\"",
                        truncate(&k)
                    )));
                };
                if let Some(v) = normalize_attribute(sub, v, &AttrLoc::Sub(path, &sub.name))? {
                    out.insert(sub.name.clone(), v);
                }
            }
            if out.is_empty() { Ok(None) } else { Ok(Some(Value::Object(out))) }
        }
    }
}

/// Where a value sits, for error details. Formatted only when an error is reported, so that
/// validating a valid resource allocates no path strings.
#[derive(Debug, Clone, Copy)]
pub(crate) enum AttrLoc<'a> {
    /// A top-level core attribute: `emails`.
    Name(&'a str),
    /// An extension attribute: `urn:…:User:department`.
    Urn(&'a str, &'a str),
    /// One value of a multi-valued attribute: `emails[1]`.
    Index(&'a AttrLoc<'a>, usize),
    /// The values a filter selects: `emails[…]`.
    Selected(&'a AttrLoc<'a>),
    /// A sub-attribute: `name.givenName`.
    Sub(&'a AttrLoc<'a>, &'a str),
}

impl std::fmt::Display for AttrLoc<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttrLoc::Name(n) => f.write_str(n),
            AttrLoc::Urn(urn, n) => write!(f, "{urn}:{n}"),
            AttrLoc::Index(p, i) => write!(f, "{p}[{i}]"),
            AttrLoc::Selected(p) => write!(f, "{p}[…]"),
            AttrLoc::Sub(p, n) => write!(f, "{p}.{n}"),
        }
    }
}

fn expected(attr: &Attribute) -> &'static str {
    match attr.ty {
        AttrType::String => "a string",
        AttrType::Reference => "a URI string",
        AttrType::Binary => "a base64 string",
        AttrType::Boolean => "a boolean",
        AttrType::Integer => "an integer",
        AttrType::Decimal => "a number",
        AttrType::DateTime => "an xsd:dateTime string",
        AttrType::Complex => "an object",
    }
}

/// A JSON value's type, as error messages name it.
pub(crate) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Client-chosen names echoed in errors are cut short: a detail stays one readable line.
pub(crate) fn truncate(s: &str) -> String {
    const MAX: usize = 64;
    if s.chars().count() <= MAX { s.to_owned() } else { format!("{}…", s.chars().take(MAX).collect::<String>()) }
}

#[cfg(test)]
mod tests;
