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
//! - `costCenter` and `organization` may come without the Enterprise URN
//!   ([`crate::schema::BARE_ENTERPRISE_ATTRIBUTES`]): they are stored in the Enterprise extension;
//!   the same attribute sent both ways with different values is refused;
//! - an attribute may also be written flat with its schema URN (`"urn:…:enterprise:2.0:User:department":
//!   "Sales"`), as RFC 7644 §3.10 writes paths;
//! - several values of one `type` (two `work` emails) are kept: RFC 7643 sets no such rule, and a
//!   gateway that refused them would block the person's provisioning. Vendor tables that read
//!   `emails[type eq "work"]` take the primary value of that type, else the first.
//!
//! Unknown attributes follow [`crate::schema::UnknownAttributes`]: by default of the registry they
//! are refused; the gateway accepts them unless `strict_attributes` is set — unknown attributes of a
//! registered schema (and unknown sub-attributes) are dropped and reported by name to the drop hook,
//! and attributes under an extension URN that is not registered are kept as sent under that URN
//! (and named in `schemas`).
//!
//! It rejects, with a `detail` that names the attribute and what was expected: wrong JSON types,
//! unparsable dateTimes, missing required attributes, and more than one `primary: true` in a
//! multi-valued attribute.
//!
//! Error details name attributes, never echo values: values may be personal data.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::error::ScimError;
use crate::schema::{
    AttrType, Attribute, DropHook, ENTERPRISE_USER_SCHEMA, IGNORED_SCHEMAS, Location, Mutability, ResourceSchema,
    Schema,
};
use crate::value::{get_ci, insert_ci, remove_ci};

/// Validates a client-sent resource and returns its canonical stored form (see the module doc).
pub fn validate_resource(schema: &ResourceSchema<'_>, input: Value) -> Result<Map<String, Value>, ScimError> {
    let Value::Object(input) = input else {
        return Err(ScimError::invalid_syntax(format!(
            "the request body must be a JSON object describing a {}",
            schema.resource_type.name
        )));
    };
    check_declared_schemas(schema, &input)?;
    let lenient = schema.lenient();

    let mut core = Map::new();
    let mut extensions: Vec<(String, Map<String, Value>)> = Vec::new();
    let mut opaque = Map::new();
    // `costCenter` and `organization` sent without the Enterprise URN: merged after the loop, so
    // that the outcome does not depend on the order of the body's keys.
    let mut bare: Vec<(&Attribute, Value)> = Vec::new();
    // Core attributes nested under the core schema's URN (as some clients write them) are read
    // as top-level attributes.
    let mut entries: Vec<(String, Value)> = Vec::with_capacity(input.len());
    for (key, value) in input {
        match value {
            Value::Object(nested) if key.eq_ignore_ascii_case(&schema.core.id) => entries.extend(nested),
            value => entries.push((key, value)),
        }
    }
    for (key, value) in entries {
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        if let Some(ext) = schema.extension(&key) {
            let out = normalize_extension(ext, value, lenient)?;
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
            // `urn:…:User:attribute` written flat, for a schema this type has.
            if let Some((urn, name)) = key.rsplit_once(':').filter(|(urn, _)| schema.knows_schema(urn)) {
                match schema.resolve(Some(urn), name, None) {
                    Some(resolved) => {
                        let attr = resolved.attribute;
                        let loc = match resolved.location {
                            Location::Extension(ext) => AttrLoc::Urn(&ext.id, &attr.name),
                            Location::Core | Location::Common => AttrLoc::Name(&attr.name),
                        };
                        if let Some(v) = normalize_attribute(attr, value, &loc, lenient)? {
                            match resolved.location {
                                Location::Extension(ext) => match extensions.iter_mut().find(|(id, _)| *id == ext.id) {
                                    Some((_, existing)) => {
                                        existing.insert(attr.name.clone(), v);
                                    }
                                    None => {
                                        let mut obj = Map::new();
                                        obj.insert(attr.name.clone(), v);
                                        extensions.push((ext.id.clone(), obj));
                                    }
                                },
                                Location::Core | Location::Common => {
                                    core.insert(attr.name.clone(), v);
                                }
                            }
                        }
                    }
                    None => unknown(lenient, &key, || {
                        ScimError::invalid_syntax(format!(
                            "unknown attribute \"{}\" in schema {}",
                            truncate(name),
                            truncate(urn)
                        ))
                    })?,
                }
                continue;
            }
            if keep_opaque(schema, &mut opaque, &key, value)? {
                continue;
            }
            unknown(lenient, &key, || {
                ScimError::invalid_syntax(format!(
                    "\"{}\" is not a schema extension of {} (known: {})",
                    truncate(&key),
                    schema.resource_type.name,
                    known_extensions(schema)
                ))
            })?;
            continue;
        }
        if let Some(attr) = schema.bare_enterprise_attribute(&key) {
            if let Some(v) =
                normalize_attribute(attr, value, &AttrLoc::Urn(ENTERPRISE_USER_SCHEMA, &attr.name), lenient)?
            {
                bare.push((attr, v));
            }
            continue;
        }
        let Some(resolved) = schema.resolve(None, &key, None) else {
            unknown(lenient, &key, || {
                ScimError::invalid_syntax(format!(
                    "unknown attribute \"{}\" for resource type {}",
                    truncate(&key),
                    schema.resource_type.name
                ))
            })?;
            continue;
        };
        let attr = resolved.attribute;
        if let Some(v) = normalize_attribute(attr, value, &AttrLoc::Name(&attr.name), lenient)? {
            core.insert(attr.name.clone(), v);
        }
    }

    for (attr, v) in bare {
        let ext = match extensions.iter_mut().find(|(id, _)| id.eq_ignore_ascii_case(ENTERPRISE_USER_SCHEMA)) {
            Some((_, ext)) => ext,
            None => {
                extensions.push((ENTERPRISE_USER_SCHEMA.to_owned(), Map::new()));
                match extensions.last_mut() {
                    Some((_, ext)) => ext,
                    None => continue,
                }
            }
        };
        match ext.get(&attr.name) {
            Some(existing) if *existing != v => {
                return Err(ScimError::invalid_value(format!(
                    "\"{}\" was sent both without and with the Enterprise URN, with different values",
                    attr.name
                )));
            }
            _ => {
                ext.insert(attr.name.clone(), v);
            }
        }
    }

    let mut doc = core;
    for (id, obj) in extensions {
        doc.insert(id, Value::Object(obj));
    }
    doc.extend(opaque);
    finish(schema, doc)
}

/// An unknown attribute: reported to the drop hook and dropped when unknown attributes are
/// accepted, else the error `refuse` makes.
pub(crate) fn unknown(
    lenient: Option<DropHook>,
    name: &str,
    refuse: impl FnOnce() -> ScimError,
) -> Result<(), ScimError> {
    match lenient {
        Some(hook) => {
            // Names are client-chosen: bounded, so that a log line stays a line.
            const MAX: usize = 256;
            match name.char_indices().nth(MAX) {
                Some((cut, _)) => hook.dropped(&format!("{}…", &name[..cut])),
                None => hook.dropped(name),
            }
            Ok(())
        }
        None => Err(refuse()),
    }
}

/// Extensions kept as sent (not registered) per resource, and attributes per such extension:
/// enough for any admin's custom mappings, and a bound on what one request can make the gateway
/// store, list in `schemas` and compare (a hostile body of thousands of invented URNs is a 400).
pub const MAX_UNKNOWN_EXTENSIONS: usize = 16;
/// See [`MAX_UNKNOWN_EXTENSIONS`].
pub const MAX_UNKNOWN_EXTENSION_ATTRIBUTES: usize = 256;

/// Keeps `value` under an extension URN that is not registered, when unknown attributes are
/// accepted (see [`ResourceSchema::opaque_split`] for how a key splits into the extension and
/// an attribute; `urn:…:User:badge.id` is the sub-attribute `id` of `badge`). Values are kept
/// as sent; `null` is unassigned; a whole extension given as anything but an object is dropped
/// and reported. `Ok(false)`: the key is not such an extension.
pub(crate) fn keep_opaque(
    schema: &ResourceSchema<'_>,
    doc: &mut Map<String, Value>,
    key: &str,
    value: Value,
) -> Result<bool, ScimError> {
    let Some((urn, attr)) = schema.opaque_split(key) else {
        return Ok(false);
    };
    if value.is_null() {
        return Ok(true);
    }
    match (attr, value) {
        (None, Value::Object(obj)) => {
            for (k, v) in obj {
                if !v.is_null() && !k.eq_ignore_ascii_case("schemas") {
                    opaque_set(schema, doc, urn, &k, None, Some(v))?;
                }
            }
        }
        (Some(attr), v) => {
            let (attr, sub) = match attr.split_once('.') {
                Some((a, s)) if !a.is_empty() && !s.is_empty() => (a, Some(s)),
                _ => (attr, None),
            };
            opaque_set(schema, doc, urn, attr, sub, Some(v))?;
        }
        (None, _) => {
            unknown(schema.lenient(), key, || ScimError::invalid_syntax("unreachable: lenient only"))?;
        }
    }
    Ok(true)
}

/// Sets (`Some`) or removes (`None`) `attr` (or its sub-attribute `sub`) of the extension kept
/// as sent `urn` in `doc`, within [`MAX_UNKNOWN_EXTENSIONS`] and
/// [`MAX_UNKNOWN_EXTENSION_ATTRIBUTES`]; an extension left empty is removed.
pub(crate) fn opaque_set(
    schema: &ResourceSchema<'_>,
    doc: &mut Map<String, Value>,
    urn: &str,
    attr: &str,
    sub: Option<&str>,
    value: Option<Value>,
) -> Result<(), ScimError> {
    let existing = crate::value::key_ci(doc, urn);
    if existing.is_none() {
        if value.is_none() {
            return Ok(());
        }
        let kept = doc.keys().filter(|k| k.contains(':') && !schema.knows_schema(k)).count();
        if kept >= MAX_UNKNOWN_EXTENSIONS {
            return Err(ScimError::invalid_value(format!(
                "at most {MAX_UNKNOWN_EXTENSIONS} schema extensions the gateway does not know are kept per resource; \
                 \"{}\" would be one more",
                truncate(urn)
            )));
        }
    }
    let key = existing.unwrap_or_else(|| urn.to_owned());
    let slot = doc.entry(key.clone()).or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    let Value::Object(obj) = slot else { return Ok(()) };
    if value.is_some() && obj.len() >= MAX_UNKNOWN_EXTENSION_ATTRIBUTES && get_ci(obj, attr).is_none() {
        return Err(ScimError::invalid_value(format!(
            "at most {MAX_UNKNOWN_EXTENSION_ATTRIBUTES} attributes are kept per schema extension the gateway does not \
             know; {} has more",
            truncate(urn)
        )));
    }
    match (sub, value) {
        (None, Some(v)) => insert_ci(obj, attr, v),
        (None, None) => {
            remove_ci(obj, attr);
        }
        (Some(sub), v) => {
            if !matches!(get_ci(obj, attr), Some(Value::Object(_))) {
                if v.is_none() {
                    return Ok(());
                }
                insert_ci(obj, attr, Value::Object(Map::new()));
            }
            if let Some(Value::Object(inner)) = crate::value::get_ci_mut(obj, attr) {
                match v {
                    Some(v) => insert_ci(inner, sub, v),
                    None => {
                        remove_ci(inner, sub);
                    }
                }
                if inner.is_empty() {
                    remove_ci(obj, attr);
                }
            }
        }
    }
    if obj.is_empty() {
        doc.remove(&key);
    }
    Ok(())
}

/// The attributes of a registered extension object, normalised.
fn normalize_extension(ext: &Schema, value: Value, lenient: Option<DropHook>) -> Result<Map<String, Value>, ScimError> {
    let Value::Object(obj) = value else {
        if value.is_null() {
            return Ok(Map::new());
        }
        return Err(ScimError::invalid_syntax(format!(
            "{}: expected an object holding the extension's attributes, found {}",
            ext.id,
            json_type(&value)
        )));
    };
    let mut out = Map::new();
    for (k, v) in obj {
        // A `schemas` key inside an extension object repeats what the URN says (clients copy it
        // from the resource): nothing to keep.
        if k.eq_ignore_ascii_case("schemas") {
            continue;
        }
        let Some(attr) = ext.attribute(&k) else {
            unknown(lenient, &format!("{}:{k}", ext.id), || {
                ScimError::invalid_syntax(format!("unknown attribute \"{}\" in extension {}", truncate(&k), ext.id))
            })?;
            continue;
        };
        if let Some(v) = normalize_attribute(attr, v, &AttrLoc::Urn(&ext.id, &attr.name), lenient)? {
            out.insert(attr.name.clone(), v);
        }
    }
    Ok(out)
}

/// Re-normalises only the top-level attributes (or extension objects) named in `touched`, for a
/// resource whose other attributes are already canonical: what a PATCH changed. Then the
/// whole-resource rules (required attributes, `schemas`) run as in [`validate_resource`].
pub(crate) fn revalidate(
    schema: &ResourceSchema<'_>,
    mut doc: Map<String, Value>,
    touched: &[String],
) -> Result<Map<String, Value>, ScimError> {
    let lenient = schema.lenient();
    for key in touched {
        if key == "schemas" {
            continue;
        }
        let Some(value) = doc.remove(key) else { continue };
        if let Some(ext) = schema.extension(key) {
            let out = normalize_extension(ext, value, lenient)?;
            if !out.is_empty() {
                doc.insert(ext.id.clone(), Value::Object(out));
            }
        } else if let Some(resolved) = schema.resolve(None, key, None) {
            let attr = resolved.attribute;
            if let Some(v) = normalize_attribute(attr, value, &AttrLoc::Name(&attr.name), lenient)? {
                doc.insert(attr.name.clone(), v);
            }
        } else if !keep_opaque(schema, &mut doc, key, value)? {
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
    // Extensions kept as sent (see [`keep_opaque`]) are named too: the resource holds them.
    for key in doc.keys() {
        if key.contains(':') && !schema.knows_schema(key) {
            schemas.push(Value::String(key.clone()));
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
        } else if schema.extension(urn).is_none()
            && !IGNORED_SCHEMAS.iter().any(|s| s.eq_ignore_ascii_case(urn))
            && schema.lenient().is_none()
        {
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
    lenient: Option<DropHook>,
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
        check_value_count(attr, items.len(), path)?;
        let mut out: Vec<Value> = Vec::with_capacity(items.len());
        // Duplicates are dropped by their canonical JSON text, so that a group PUT with 100,000
        // members stays linear (`Vec::contains` here was quadratic: minutes for 30,000 members).
        // Without serde_json's `preserve_order`, maps serialise with sorted keys, so equal texts
        // are exactly equal values.
        let mut seen: HashSet<String> = HashSet::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let item_path = AttrLoc::Index(path, i);
            if let Some(v) = normalize_single(attr, item, &item_path, lenient)? {
                if seen.insert(v.to_string()) {
                    out.push(v);
                }
            }
        }
        if out.is_empty() {
            return Ok(None);
        }
        if attr.ty == AttrType::Complex {
            check_multi_valued(&out, path)?;
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
    normalize_single(attr, value, path, lenient)
}

/// Refuses more values than the attribute may hold ([`Attribute::max_values`]), before any of
/// them is looked at: a 1 MiB body can carry 40,000 emails, and each would be normalised,
/// hashed and (in a PATCH) compared.
pub(crate) fn check_value_count(attr: &Attribute, count: usize, path: &AttrLoc<'_>) -> Result<(), ScimError> {
    match attr.max_values {
        Some(max) if count > max => Err(ScimError::invalid_value(format!(
            "\"{path}\" may hold at most {max} values; this request would give it {count}"
        ))),
        _ => Ok(()),
    }
}

/// At most one `primary: true`. Several values may share a `type` (two `work` emails are legal:
/// RFC 7643 sets no such rule).
fn check_multi_valued(values: &[Value], path: &AttrLoc<'_>) -> Result<(), ScimError> {
    let primaries = values.iter().filter(|v| v.get("primary") == Some(&Value::Bool(true))).count();
    if primaries > 1 {
        return Err(ScimError::invalid_value(format!(
            "\"{path}\" has {primaries} values marked primary; at most one may be (RFC 7643 §2.4)"
        )));
    }
    Ok(())
}

/// Normalises one value (an element of a multi-valued attribute, or a singular attribute).
pub(crate) fn normalize_single(
    attr: &Attribute,
    value: Value,
    path: &AttrLoc<'_>,
    lenient: Option<DropHook>,
) -> Result<Option<Value>, ScimError> {
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
                    unknown(lenient, &format!("{path}.{k}"), || {
                        ScimError::invalid_syntax(format!("unknown sub-attribute \"{}\" of \"{path}\"", truncate(&k)))
                    })?;
                    continue;
                };
                if let Some(v) = normalize_attribute(sub, v, &AttrLoc::Sub(path, &sub.name), lenient)? {
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
