//! The simulator's own PATCH applier: RFC 7644 §3.5.2 as Entra ID uses it on these apps, written
//! apart from the gateway's engine (`scimgw_scim::patch`) so that a bug there fails a test here
//! instead of being shared by both ends.
//!
//! Sources: RFC 7644 §3.5.2 (the PatchOp message, `add` §3.5.2.1, `remove` §3.5.2.2, `replace`
//! §3.5.2.3), §3.10 (attribute paths with a schema URN), §3.12 (error types); RFC 7643 §2.1
//! (attribute names are case-insensitive), §7 (mutability); `shared/ENTRA.md` ("The two PATCH
//! dialects") and the vendors' Entra tutorials (`shared/seeds/jostle-entra-provisioning.txt`,
//! `joyn-fsm-entra-provisioning.md`, `jumpcloud-entra-scim-import.txt`), whose attribute tables
//! address values as `emails[type eq "work"].value`.
//!
//! What it takes:
//! - a body `{"schemas": ["…:PatchOp"], "Operations": [...]}` with at least one operation, each
//!   `{"op", "path"?, "value"?}`; `op` is `add`, `replace` or `remove` in any case (Entra's legacy
//!   dialect writes `Add`/`Replace`/`Remove`);
//! - paths `attr`, `attr.sub`, `urn:…:attr` (core or a known extension), and a value filter
//!   `attr[sub eq "literal"]` with an optional `.sub` after it: the one filter form the vendors'
//!   tables and Entra's group removals use. Names compare ignoring case;
//! - `add`/`replace` without a path: each key of the object value is an attribute, a dotted
//!   `attr.sub` or `urn:…:attr` (Entra's flagged dialect), or an extension URN holding an object;
//! - Entra's value shapes: a boolean as `"True"`/`"False"`, `manager` as an id, as `{"value": …}` or
//!   as a one-element array; `remove` with a `value` on a multi-valued attribute (the legacy
//!   `Remove members [{"value": id}]`), which removes the listed values.
//!
//! Semantics: operations apply in order to a copy, and any error leaves the stored resource as it
//! was. `add` appends to a multi-valued attribute (a value already there is not added twice),
//! merges into a complex one and sets a simple one; `replace` replaces a multi-valued attribute
//! whole, merges into a complex one (§3.5.2.3: sub-attributes not given stay) and replaces the
//! values a filter selects. An `add` or `replace` whose `type eq` filter selects nothing creates
//! the value of that type (Entra sends `replace emails[type eq "work"].value` to a user without a
//! work email; §3.5.2.1 lets `add` create); any other filter that selects nothing is `noTarget`, as
//! §3.5.2.3 says. `remove` of something absent changes nothing. Setting `primary` to true on a value
//! sets it to false on the others (§3.5.2). The result is validated as a whole, as a `POST` body
//! is, and an `immutable` value may not change.
//!
//! What it refuses, with `400` and a detail that names what was refused (never a value: values
//! may be personal data): an unknown `op` or message member (`invalidSyntax`); a malformed path, a
//! filter other than one `eq` on a string, an unknown schema or attribute, a sub-attribute of a
//! multi-valued attribute without a filter, a path the profile's vendor table does not list
//! (`invalidPath`); `add`/`replace` without a value, a value of the wrong shape (`invalidValue`);
//! `remove` with a value anywhere else (`invalidSyntax`, §3.5.2.2) or without a path (`noTarget`);
//! a path to a readOnly attribute, or the removal of a required one (`mutability`, §3.5.2.2 and
//! §3.12).

use scimgw_scim::ScimError;
use scimgw_scim::messages::PATCH_OP_SCHEMA;
use scimgw_scim::resource::{check_immutable, validate_resource};
use scimgw_scim::schema::{AttrType, Attribute, Location, Mutability, ResourceSchema};
use scimgw_scim::value::get_ci;
use serde_json::{Map, Value};

/// What one operation names, resolved against the schema: what a profile checks against its
/// vendor's attribute table (see `Profile::check_patch_target`). Names are in schema spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatchTarget<'a> {
    /// The extension's URN when the attribute is an extension's; `None` for core and common ones.
    pub extension: Option<&'a str>,
    /// The attribute.
    pub attribute: &'a str,
    /// The value filter `[sub eq "literal"]`: the sub-attribute and the literal.
    pub filter: Option<(&'a str, &'a str)>,
    /// The sub-attribute named after the attribute or the filter.
    pub sub_attribute: Option<&'a str>,
}

/// The resource after a PATCH.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Patched {
    /// The resource after every operation, in canonical stored form.
    pub resource: Map<String, Value>,
    /// Whether it differs from the stored one.
    pub changed: bool,
}

/// Applies the PatchOp message `body` to `resource` (canonical stored form). `check` is the
/// profile's say on each path an operation names.
pub(crate) fn apply(
    schema: &ResourceSchema<'_>,
    resource: &Map<String, Value>,
    body: &Value,
    check: &dyn Fn(&PatchTarget<'_>) -> Result<(), ScimError>,
) -> Result<Patched, ScimError> {
    let ops = read_message(body)?;
    let mut doc = resource.clone();
    for (i, op) in ops.into_iter().enumerate() {
        apply_op(schema, &mut doc, op, check)
            .map_err(|e| ScimError { detail: format!("Operations[{i}]: {}", e.detail), ..e })?;
    }
    let patched = validate_resource(schema, Value::Object(doc))?;
    check_immutable(schema, resource, &patched)?;
    let changed = patched != *resource;
    Ok(Patched { resource: patched, changed })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpKind {
    Add,
    Replace,
    Remove,
}

/// One operation as sent: `value` is `None` when absent or `null`.
#[derive(Debug)]
struct Op {
    kind: OpKind,
    path: Option<String>,
    value: Option<Value>,
}

/// Reads the PatchOp message (RFC 7644 §3.5.2): its two members, its `schemas`, its operations.
fn read_message(body: &Value) -> Result<Vec<Op>, ScimError> {
    let Value::Object(message) = body else {
        return Err(ScimError::invalid_syntax("a PATCH body must be a PatchOp message, a JSON object"));
    };
    if let Some(other) = message.keys().find(|k| !is_one_of(k, &["schemas", "Operations"])) {
        return Err(ScimError::invalid_syntax(format!(
            "\"{}\" is not a member of a PatchOp message; it has \"schemas\" and \"Operations\" (RFC 7644 §3.5.2)",
            clip(other)
        )));
    }
    let declared = match get_ci(message, "schemas") {
        Some(Value::Array(urns)) => urns.iter().map(Value::as_str).collect::<Option<Vec<&str>>>(),
        _ => None,
    };
    if !declared.is_some_and(|urns| urns.len() == 1 && urns[0].eq_ignore_ascii_case(PATCH_OP_SCHEMA)) {
        return Err(ScimError::invalid_syntax(format!(
            "\"schemas\" of a PATCH body must be [\"{PATCH_OP_SCHEMA}\"] (RFC 7644 §3.5.2)"
        )));
    }
    let operations = match get_ci(message, "Operations") {
        Some(Value::Array(ops)) if !ops.is_empty() => ops,
        _ => {
            return Err(ScimError::invalid_syntax(
                "\"Operations\" must be an array of at least one operation (RFC 7644 §3.5.2)",
            ));
        }
    };
    operations
        .iter()
        .enumerate()
        .map(|(i, op)| read_op(op).map_err(|e| ScimError { detail: format!("Operations[{i}]: {}", e.detail), ..e }))
        .collect()
}

fn read_op(op: &Value) -> Result<Op, ScimError> {
    let Value::Object(op) = op else {
        return Err(ScimError::invalid_syntax("an operation must be a JSON object with \"op\", \"path\", \"value\""));
    };
    if let Some(other) = op.keys().find(|k| !is_one_of(k, &["op", "path", "value"])) {
        return Err(ScimError::invalid_syntax(format!(
            "\"{}\" is not a member of an operation; it has \"op\", \"path\" and \"value\"",
            clip(other)
        )));
    }
    let kind = match get_ci(op, "op") {
        Some(Value::String(name)) if name.eq_ignore_ascii_case("add") => OpKind::Add,
        Some(Value::String(name)) if name.eq_ignore_ascii_case("replace") => OpKind::Replace,
        Some(Value::String(name)) if name.eq_ignore_ascii_case("remove") => OpKind::Remove,
        Some(Value::String(name)) => {
            return Err(ScimError::invalid_syntax(format!(
                "op \"{}\" is not an operation: add, replace or remove (RFC 7644 §3.5.2)",
                clip(name)
            )));
        }
        _ => return Err(ScimError::invalid_syntax("\"op\" must be a string: add, replace or remove")),
    };
    let path = match get_ci(op, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) => Some(p.clone()),
        Some(_) => return Err(ScimError::invalid_path("\"path\" must be a string")),
    };
    let value = get_ci(op, "value").filter(|v| !v.is_null()).cloned();
    Ok(Op { kind, path, value })
}

fn is_one_of(key: &str, names: &[&str]) -> bool {
    names.iter().any(|n| n.eq_ignore_ascii_case(key))
}

fn apply_op(
    schema: &ResourceSchema<'_>,
    doc: &mut Map<String, Value>,
    op: Op,
    check: &dyn Fn(&PatchTarget<'_>) -> Result<(), ScimError>,
) -> Result<(), ScimError> {
    if let Some(text) = &op.path {
        let path = parse_path(text)?;
        let target = resolve(schema, &path)?;
        check(&target.as_patch_target())?;
        return apply_at(doc, &target, op.kind, op.value);
    }
    if op.kind == OpKind::Remove {
        return Err(ScimError::no_target("\"remove\" needs a \"path\" naming what to remove (RFC 7644 §3.5.2.2)"));
    }
    // No path: the target is the resource, and the value holds the attributes (§3.5.2.1, §3.5.2.3).
    let Some(Value::Object(values)) = op.value else {
        return Err(ScimError::invalid_value(
            "without a \"path\", \"value\" must be an object of the attributes to add or replace",
        ));
    };
    if values.is_empty() {
        return Err(ScimError::invalid_value("without a \"path\", \"value\" must name at least one attribute"));
    }
    for (key, value) in values {
        if let Some(ext) = schema.extension(&key) {
            let Value::Object(attrs) = value else {
                return Err(ScimError::invalid_value(format!(
                    "{}: expected an object of the extension's attributes",
                    ext.id
                )));
            };
            for (name, value) in attrs {
                let path = Path { urn: Some(ext.id.clone()), attr: name, filter: None, sub: None };
                let target = resolve(schema, &path)?;
                check(&target.as_patch_target())?;
                apply_at(doc, &target, op.kind, Some(value))?;
            }
            continue;
        }
        let path = parse_path(&key)?;
        if path.filter.is_some() {
            return Err(ScimError::invalid_path(
                "a key of a value without \"path\" names an attribute; a value filter belongs in \"path\"",
            ));
        }
        let target = resolve(schema, &path)?;
        check(&target.as_patch_target())?;
        apply_at(doc, &target, op.kind, Some(value))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Paths.

/// A path as written: `[urn:…:]attr[.sub]` or `[urn:…:]attr[sub eq "literal"][.sub]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Path {
    /// The schema URN before the attribute, as written.
    pub urn: Option<String>,
    /// The attribute, as written.
    pub attr: String,
    /// The value filter.
    pub filter: Option<EqFilter>,
    /// The sub-attribute after the attribute or the filter, as written.
    pub sub: Option<String>,
}

/// `[attr eq "literal"]`: the only value filter the vendors' documents and Entra use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EqFilter {
    /// The sub-attribute compared, as written.
    pub attr: String,
    /// The string it must equal.
    pub literal: String,
}

/// "invalid path: expected X, found Y at column N" — every syntax error of a path. The path
/// itself is not echoed: a filter literal may be an email.
fn expected(what: &str, found: Option<char>, at: usize) -> ScimError {
    let found = match found {
        Some(c) => format!("'{c}'"),
        None => "the end".to_owned(),
    };
    ScimError::invalid_path(format!("malformed path: expected {what}, found {found} at column {}", at + 1))
}

/// A character cursor over a path; positions count characters of the whole path.
struct Cursor {
    chars: Vec<char>,
    pos: usize,
}

impl Cursor {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn spaces(&mut self) -> usize {
        let start = self.pos;
        while self.peek() == Some(' ') {
            self.pos += 1;
        }
        self.pos - start
    }

    /// An attribute name (RFC 7643 §2.1: `ALPHA *(ALPHA / DIGIT / "-" / "_")`); `$ref` too where
    /// a sub-attribute may be one.
    fn name(&mut self, what: &str, allow_ref: bool) -> Result<String, ScimError> {
        let start = self.pos;
        if allow_ref && self.peek() == Some('$') {
            self.pos += 1;
        }
        match self.peek() {
            Some(c) if c.is_ascii_alphabetic() => self.pos += 1,
            other => return Err(expected(what, other, self.pos)),
        }
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            self.pos += 1;
        }
        let name: String = self.chars[start..self.pos].iter().collect();
        if name.starts_with('$') && !name.eq_ignore_ascii_case("$ref") {
            return Err(expected(what, Some('$'), start));
        }
        Ok(name)
    }

    /// A JSON string literal, escapes included.
    fn string_literal(&mut self) -> Result<String, ScimError> {
        let start = self.pos;
        if !self.eat('"') {
            return Err(ScimError::invalid_path(format!(
                "a value filter compares with a string in double quotes (column {})",
                start + 1
            )));
        }
        loop {
            match self.peek() {
                None => return Err(expected("'\"' closing the string", None, self.pos)),
                Some('\\') => self.pos += 2,
                Some('"') => {
                    self.pos += 1;
                    break;
                }
                Some(_) => self.pos += 1,
            }
        }
        let raw: String = self.chars[start..self.pos.min(self.chars.len())].iter().collect();
        serde_json::from_str::<String>(&raw).map_err(|_| {
            ScimError::invalid_path(format!("malformed string in the value filter at column {}", start + 1))
        })
    }
}

/// Parses a PATCH path (RFC 7644 §3.5.2, §3.10), restricted to the forms in the module doc.
pub(crate) fn parse_path(text: &str) -> Result<Path, ScimError> {
    if text.is_empty() {
        return Err(ScimError::invalid_path("\"path\" is empty; leave it out to target the resource"));
    }
    // A schema URN ends at the last ':' before the attribute name; attribute names have no ':'
    // and a filter literal may, so only the part before any '[' is searched.
    let head_end = text.find('[').unwrap_or(text.len());
    let (urn, rest) = match text[..head_end].rfind(':') {
        Some(colon) if text.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:")) => {
            (Some(text[..colon].to_owned()), &text[colon + 1..])
        }
        Some(colon) => return Err(expected("an attribute name", Some(':'), text[..colon].chars().count())),
        None => (None, text),
    };
    let offset = text.chars().count() - rest.chars().count();
    let mut cur = Cursor { chars: text.chars().collect(), pos: offset };
    let attr = cur.name("an attribute name", false)?;
    let mut filter = None;
    if cur.eat('[') {
        cur.spaces();
        let on = cur.name("a sub-attribute name in the filter", false)?;
        if cur.spaces() == 0 {
            return Err(expected("a space before the operator", cur.peek(), cur.pos));
        }
        let op_start = cur.pos;
        while cur.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
            cur.pos += 1;
        }
        let operator: String = cur.chars[op_start..cur.pos].iter().collect();
        if operator.is_empty() {
            return Err(expected("a comparison operator", cur.peek(), cur.pos));
        }
        if !operator.eq_ignore_ascii_case("eq") {
            return Err(ScimError::invalid_path(format!(
                "filter operator \"{}\" is not supported in a PATCH path; values are selected with eq, as Entra ID \
                 and the vendors' attribute tables do",
                clip(&operator)
            )));
        }
        if cur.spaces() == 0 {
            return Err(expected("a space after the operator", cur.peek(), cur.pos));
        }
        let literal = cur.string_literal()?;
        cur.spaces();
        if !cur.eat(']') {
            if cur.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
                return Err(ScimError::invalid_path(
                    "a value filter in a PATCH path is one comparison; and, or and not are not supported",
                ));
            }
            return Err(expected("']' closing the value filter", cur.peek(), cur.pos));
        }
        filter = Some(EqFilter { attr: on, literal });
    }
    let mut sub = None;
    if cur.eat('.') {
        sub = Some(cur.name("a sub-attribute name", true)?);
    }
    if cur.peek().is_some() {
        let what =
            if sub.is_some() || filter.is_some() { "the end of the path" } else { "'.', '[' or the end of the path" };
        return Err(expected(what, cur.peek(), cur.pos));
    }
    Ok(Path { urn, attr, filter, sub })
}

// ---------------------------------------------------------------------------------------------
// Resolution against the schema.

/// A path resolved: where the attribute lives and its definitions.
struct Target<'s> {
    location: Location<'s>,
    attr: &'s Attribute,
    filter: Option<(&'s Attribute, String)>,
    sub: Option<&'s Attribute>,
}

impl Target<'_> {
    fn as_patch_target(&self) -> PatchTarget<'_> {
        PatchTarget {
            extension: match self.location {
                Location::Extension(ext) => Some(ext.id.as_str()),
                Location::Core | Location::Common => None,
            },
            attribute: &self.attr.name,
            filter: self.filter.as_ref().map(|(a, lit)| (a.name.as_str(), lit.as_str())),
            sub_attribute: self.sub.map(|s| s.name.as_str()),
        }
    }

    /// `attr`, `attr.sub` or `urn:…:attr` for details.
    fn name(&self) -> String {
        let base = match self.location {
            Location::Extension(ext) => format!("{}:{}", ext.id, self.attr.name),
            Location::Core | Location::Common => self.attr.name.clone(),
        };
        match (&self.filter, self.sub) {
            (Some((f, _)), Some(s)) => format!("{base}[{} eq …].{}", f.name, s.name),
            (Some((f, _)), None) => format!("{base}[{} eq …]", f.name),
            (None, Some(s)) => format!("{base}.{}", s.name),
            (None, None) => base,
        }
    }
}

fn resolve<'s>(schema: &ResourceSchema<'s>, path: &Path) -> Result<Target<'s>, ScimError> {
    if let Some(urn) = &path.urn {
        if !schema.knows_schema(urn) {
            return Err(ScimError::invalid_path(format!(
                "\"{}\" is not a schema of a {}",
                clip(urn),
                schema.resource_type.name
            )));
        }
    }
    let Some(found) = schema.resolve(path.urn.as_deref(), &path.attr, None) else {
        return Err(ScimError::invalid_path(format!(
            "a {} has no attribute \"{}\"{}",
            schema.resource_type.name,
            clip(&path.attr),
            path.urn.as_deref().map(|u| format!(" in {}", clip(u))).unwrap_or_default()
        )));
    };
    let attr = found.attribute;
    if attr.mutability == Mutability::ReadOnly {
        return Err(ScimError::mutability(format!(
            "\"{}\" is readOnly: it is set by the app, never by a PATCH",
            attr.name
        )));
    }
    let filter = match &path.filter {
        None => None,
        Some(f) => {
            if !(attr.multi_valued && attr.ty == AttrType::Complex) {
                return Err(ScimError::invalid_path(format!(
                    "\"{}\" is not a multi-valued complex attribute: a value filter selects values of one",
                    attr.name
                )));
            }
            let Some(on) = attr.sub_attribute(&f.attr) else {
                return Err(ScimError::invalid_path(format!(
                    "\"{}\" has no sub-attribute \"{}\"",
                    attr.name,
                    clip(&f.attr)
                )));
            };
            if on.ty != AttrType::String && on.ty != AttrType::Reference {
                return Err(ScimError::invalid_path(format!(
                    "\"{}.{}\" is not a string: a value filter compares strings",
                    attr.name, on.name
                )));
            }
            Some((on, f.literal.clone()))
        }
    };
    let sub = match &path.sub {
        None => None,
        Some(name) => {
            let Some(sub) = attr.sub_attribute(name).filter(|_| attr.ty == AttrType::Complex) else {
                return Err(ScimError::invalid_path(format!(
                    "\"{}\" has no sub-attribute \"{}\"",
                    attr.name,
                    clip(name)
                )));
            };
            if attr.multi_valued && filter.is_none() {
                return Err(ScimError::invalid_path(format!(
                    "\"{}\" is multi-valued: select its values with a filter, as in {}[type eq \"work\"].{}",
                    attr.name, attr.name, sub.name
                )));
            }
            if sub.mutability == Mutability::ReadOnly {
                return Err(ScimError::mutability(format!(
                    "\"{}.{}\" is readOnly: it is set by the app, never by a PATCH",
                    attr.name, sub.name
                )));
            }
            Some(sub)
        }
    };
    Ok(Target { location: found.location, attr, filter, sub })
}

// ---------------------------------------------------------------------------------------------
// Applying one operation.

/// The object an attribute at `location` lives in: the resource, or its extension's object
/// (made one when absent).
fn container<'d>(doc: &'d mut Map<String, Value>, location: Location<'_>) -> &'d mut Map<String, Value> {
    match location {
        Location::Core | Location::Common => doc,
        Location::Extension(ext) => as_object(slot(doc, &ext.id)),
    }
}

/// The object an attribute at `location` lives in, when there is one.
fn existing_container<'d>(
    doc: &'d mut Map<String, Value>,
    location: Location<'_>,
) -> Option<&'d mut Map<String, Value>> {
    match location {
        Location::Core | Location::Common => Some(doc),
        Location::Extension(ext) => key_of(doc, &ext.id).and_then(|k| doc.get_mut(&k)).and_then(Value::as_object_mut),
    }
}

/// The key `name` is stored under in `map`, ignoring case.
fn key_of(map: &Map<String, Value>, name: &str) -> Option<String> {
    map.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

/// The slot of attribute `name` (schema spelling) in `map`, `null` when it was unassigned. Empty
/// or `null` slots left behind are unassigned, and validation drops them (RFC 7643 §2.5).
fn slot<'m>(map: &'m mut Map<String, Value>, name: &str) -> &'m mut Value {
    let key = key_of(map, name).unwrap_or_else(|| name.to_owned());
    map.entry(key).or_insert(Value::Null)
}

/// The object in `slot`, made one if it held anything else.
fn as_object(slot: &mut Value) -> &mut Map<String, Value> {
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    match slot {
        Value::Object(o) => o,
        _ => unreachable!("made an object above"),
    }
}

/// The array in `slot`, made one if it held anything else.
fn as_array(slot: &mut Value) -> &mut Vec<Value> {
    if !slot.is_array() {
        *slot = Value::Array(Vec::new());
    }
    match slot {
        Value::Array(a) => a,
        _ => unreachable!("made an array above"),
    }
}

/// Sets `name` in `map`, under the spelling already there if any.
fn put(map: &mut Map<String, Value>, name: &str, value: Value) {
    *slot(map, name) = value;
}

fn take(map: &mut Map<String, Value>, name: &str) -> Option<Value> {
    key_of(map, name).and_then(|k| map.remove(&k))
}

/// Merges the sub-attributes of `subs` into `into`, each under its schema spelling.
fn merge(into: &mut Map<String, Value>, attr: &Attribute, subs: Map<String, Value>) {
    for (k, v) in subs {
        let k = attr.sub_attribute(&k).map_or(k, |s| s.name.clone());
        put(into, &k, v);
    }
}

fn apply_at(
    doc: &mut Map<String, Value>,
    target: &Target<'_>,
    kind: OpKind,
    value: Option<Value>,
) -> Result<(), ScimError> {
    let name = target.name();
    if kind == OpKind::Remove {
        let multi_whole = target.attr.multi_valued && target.filter.is_none() && target.sub.is_none();
        return match value {
            Some(listed) if multi_whole => remove_listed(doc, target, listed),
            Some(_) => Err(ScimError::invalid_syntax(format!(
                "\"remove\" of {name} takes no \"value\" (RFC 7644 §3.5.2.2); only the values of a multi-valued \
                 attribute may be listed"
            ))),
            None => remove(doc, target),
        };
    }
    let Some(value) = value else {
        return Err(ScimError::invalid_value(format!("\"{}\" of {name} needs a \"value\"", kind_name(kind))));
    };
    let attr = target.attr;
    let obj = container(doc, target.location);
    let slot = slot(obj, &attr.name);
    match (&target.filter, target.sub) {
        (None, None) if attr.multi_valued => {
            let Value::Array(items) = value else {
                return Err(ScimError::invalid_value(format!("{name} is multi-valued: \"value\" must be an array")));
            };
            let items: Vec<Value> = items.into_iter().map(|v| entra_value(attr, v)).collect();
            if kind == OpKind::Replace {
                *slot = Value::Array(items);
                return Ok(());
            }
            let current = as_array(slot);
            let mut written = Vec::new();
            for item in items {
                if !current.iter().any(|have| same_value(have, &item)) {
                    current.push(item);
                    written.push(current.len() - 1);
                }
            }
            one_primary(current, &written);
        }
        (None, None) if attr.ty == AttrType::Complex => {
            let Value::Object(subs) = entra_value(attr, value) else {
                return Err(ScimError::invalid_value(format!("{name} is complex: \"value\" must be an object")));
            };
            merge(as_object(slot), attr, subs);
        }
        (None, None) => *slot = entra_value(attr, value),
        (None, Some(sub)) => put(as_object(slot), &sub.name, entra_value(sub, value)),
        (Some((on, literal)), sub) => {
            let items = as_array(slot);
            write_selected(items, target, on, literal, sub, kind, value)?;
        }
    }
    Ok(())
}

fn kind_name(kind: OpKind) -> &'static str {
    match kind {
        OpKind::Add => "add",
        OpKind::Replace => "replace",
        OpKind::Remove => "remove",
    }
}

/// `add`/`replace` at `attr[on eq "literal"]` or `attr[on eq "literal"].sub`.
fn write_selected(
    items: &mut Vec<Value>,
    target: &Target<'_>,
    on: &Attribute,
    literal: &str,
    sub: Option<&Attribute>,
    kind: OpKind,
    value: Value,
) -> Result<(), ScimError> {
    let attr = target.attr;
    let value = match sub {
        Some(sub) => entra_value(sub, value),
        None => match entra_value(attr, value) {
            Value::Object(o) => Value::Object(o),
            _ => {
                return Err(ScimError::invalid_value(format!(
                    "{}: \"value\" must be an object, the value the filter selects",
                    target.name()
                )));
            }
        },
    };
    let mut selected: Vec<usize> = (0..items.len()).filter(|&i| selects(&items[i], on, literal)).collect();
    let mut created = false;
    if selected.is_empty() {
        if !on.name.eq_ignore_ascii_case("type") {
            return Err(ScimError::no_target(format!(
                "{}: the filter selects no value (RFC 7644 §3.5.2.3); only a type filter creates the value it names",
                target.name()
            )));
        }
        // Entra's `replace emails[type eq "work"].value` to a user without a work email.
        let mut fresh = Map::new();
        fresh.insert(on.name.clone(), Value::String(literal.to_owned()));
        items.push(Value::Object(fresh));
        selected.push(items.len() - 1);
        created = true;
    }
    for &i in &selected {
        let Some(item) = items.get_mut(i) else { continue };
        match (sub, &value) {
            (Some(sub), v) => put(as_object(item), &sub.name, v.clone()),
            // §3.5.2.3: a selected value is replaced; a new one, and an `add`, take the given
            // sub-attributes beside the type the filter names.
            (None, v) if kind == OpKind::Replace && !created => *item = v.clone(),
            (None, Value::Object(subs)) => merge(as_object(item), attr, subs.clone()),
            (None, _) => {}
        }
    }
    one_primary(items, &selected);
    Ok(())
}

/// Whether an element of a multi-valued attribute is one `[on eq "literal"]` selects: a string
/// equal to the literal, ignoring case unless the sub-attribute is caseExact.
fn selects(element: &Value, on: &Attribute, literal: &str) -> bool {
    let Some(Value::String(s)) = element.as_object().and_then(|o| get_ci(o, &on.name)) else { return false };
    if on.case_exact { s == literal } else { s.to_lowercase() == literal.to_lowercase() }
}

/// `remove` without a value.
fn remove(doc: &mut Map<String, Value>, target: &Target<'_>) -> Result<(), ScimError> {
    let attr = target.attr;
    let whole = target.filter.is_none() && target.sub.is_none();
    if whole && attr.required {
        return Err(ScimError::mutability(format!(
            "\"{}\" is required: it cannot be removed (RFC 7644 §3.5.2.2)",
            attr.name
        )));
    }
    if let Some(sub) = target.sub.filter(|s| s.required) {
        return Err(ScimError::mutability(format!(
            "\"{}.{}\" is required: it cannot be removed (RFC 7644 §3.5.2.2)",
            attr.name, sub.name
        )));
    }
    let Some(obj) = existing_container(doc, target.location) else { return Ok(()) };
    match (&target.filter, target.sub) {
        (None, None) => {
            take(obj, &attr.name);
        }
        (None, Some(sub)) => {
            if let Some(Value::Object(current)) = key_of(obj, &attr.name).and_then(|k| obj.get_mut(&k)) {
                take(current, &sub.name);
                if current.is_empty() {
                    take(obj, &attr.name);
                }
            }
        }
        (Some((on, literal)), sub) => {
            let Some(Value::Array(items)) = key_of(obj, &attr.name).and_then(|k| obj.get_mut(&k)) else {
                return Ok(());
            };
            match sub {
                None => items.retain(|item| !selects(item, on, literal)),
                Some(sub) => {
                    for item in items.iter_mut().filter(|item| selects(item, on, literal)) {
                        if let Value::Object(element) = item {
                            take(element, &sub.name);
                        }
                    }
                    items.retain(|item| item.as_object().is_none_or(|o| !o.is_empty()));
                }
            }
            if items.is_empty() {
                take(obj, &attr.name);
            }
        }
    }
    Ok(())
}

/// Entra's legacy `{"op": "Remove", "path": "members", "value": [{"value": "<id>"}]}`: removes the
/// listed values, matched on their `value` sub-attribute.
fn remove_listed(doc: &mut Map<String, Value>, target: &Target<'_>, listed: Value) -> Result<(), ScimError> {
    let attr = target.attr;
    let Some(value_sub) = attr.sub_attribute("value") else {
        return Err(ScimError::invalid_syntax(format!(
            "\"remove\" of {} takes no \"value\": its values have no \"value\" to match on",
            attr.name
        )));
    };
    let Value::Array(listed) = listed else {
        return Err(ScimError::invalid_value(format!("{}: the values to remove must be an array", attr.name)));
    };
    let mut wanted = Vec::with_capacity(listed.len());
    for (i, item) in listed.iter().enumerate() {
        match item.as_object().and_then(|o| get_ci(o, "value")) {
            Some(Value::String(s)) => wanted.push(s.clone()),
            _ => {
                return Err(ScimError::invalid_value(format!(
                    "{}: value[{i}] to remove must be an object with a string \"value\"",
                    attr.name
                )));
            }
        }
    }
    let Some(obj) = existing_container(doc, target.location) else { return Ok(()) };
    let Some(Value::Array(items)) = key_of(obj, &attr.name).and_then(|k| obj.get_mut(&k)) else { return Ok(()) };
    items.retain(|item| !wanted.iter().any(|w| selects(item, value_sub, w)));
    if items.is_empty() {
        take(obj, &attr.name);
    }
    Ok(())
}

/// A value as Entra sends it, in the shape the attribute takes: a boolean written `"True"` /
/// `"False"` becomes one; a singular complex attribute with a `value` (`manager`) sent as a bare
/// id or as a one-element array becomes the object; `null` members of an object are unassigned
/// and dropped. Anything else is left for validation to judge.
fn entra_value(attr: &Attribute, value: Value) -> Value {
    match (attr.ty, value) {
        (AttrType::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("true") => Value::Bool(true),
        (AttrType::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("false") => Value::Bool(false),
        (AttrType::Complex, Value::String(id)) if !attr.multi_valued && attr.sub_attribute("value").is_some() => {
            let mut o = Map::new();
            o.insert("value".into(), Value::String(id));
            Value::Object(o)
        }
        (AttrType::Complex, Value::Array(mut items))
            if !attr.multi_valued && items.len() == 1 && items[0].is_object() =>
        {
            entra_value(attr, items.remove(0))
        }
        (AttrType::Complex, Value::Object(subs)) => Value::Object(
            subs.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| match attr.sub_attribute(&k) {
                    Some(sub) => (sub.name.clone(), entra_value(sub, v)),
                    None => (k, v),
                })
                .collect(),
        ),
        (_, v) => v,
    }
}

/// Whether two values of a multi-valued attribute are the same value: equal, or objects with the
/// same `value` and the same `type` (RFC 7644 §3.5.2.1: a value already there is not added again).
fn same_value(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else { return false };
    let field = |o: &Map<String, Value>, k: &str| get_ci(o, k).and_then(Value::as_str).map(str::to_owned);
    let value = field(a, "value");
    value.is_some()
        && value == field(b, "value")
        && field(a, "type").map(|t| t.to_lowercase()) == field(b, "type").map(|t| t.to_lowercase())
}

/// RFC 7644 §3.5.2: a value just written with `primary: true` takes `primary` from the others.
fn one_primary(items: &mut [Value], written: &[usize]) {
    let is_primary = |v: &Value| v.as_object().and_then(|o| get_ci(o, "primary")) == Some(&Value::Bool(true));
    if !written.iter().any(|&i| items.get(i).is_some_and(is_primary)) {
        return;
    }
    for (i, item) in items.iter_mut().enumerate() {
        if !written.contains(&i) && is_primary(item) {
            if let Value::Object(o) = item {
                put(o, "primary", Value::Bool(false));
            }
        }
    }
}

/// Client-sent names echoed in errors are cut short.
fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use scimgw_scim::schema::{ENTERPRISE_USER_SCHEMA as ENT, GROUP_SCHEMA, Registry, USER_SCHEMA};
    use serde_json::json;

    use super::*;

    fn registry() -> Registry {
        Registry::default()
    }

    fn stored(registry: &Registry, kind: &str, body: Value) -> Map<String, Value> {
        validate_resource(&registry.resource(kind).unwrap(), body).unwrap()
    }

    fn ada(registry: &Registry) -> Map<String, Value> {
        stored(
            registry,
            "User",
            json!({
                "schemas": [USER_SCHEMA, ENT],
                "userName": "ada",
                "active": true,
                "name": {"givenName": "Ada", "familyName": "Lovelace"},
                "emails": [{"type": "work", "value": "ada@work.example", "primary": true},
                           {"type": "personal", "value": "ada@home.example"}],
                ENT: {"department": "Engines"}
            }),
        )
    }

    fn message(ops: Value) -> Value {
        json!({"schemas": [PATCH_OP_SCHEMA], "Operations": ops})
    }

    fn anything(_: &PatchTarget<'_>) -> Result<(), ScimError> {
        Ok(())
    }

    /// Applies `ops` to Ada, every path allowed.
    fn patch(ops: Value) -> Result<Patched, ScimError> {
        let registry = registry();
        apply(&registry.resource("User").unwrap(), &ada(&registry), &message(ops), &anything)
    }

    fn patched(ops: Value) -> Map<String, Value> {
        match patch(ops) {
            Ok(p) => p.resource,
            Err(e) => panic!("refused: {}", e.detail),
        }
    }

    fn refused(ops: Value) -> (String, String) {
        match patch(ops) {
            Ok(p) => panic!("applied: {:?}", p.resource),
            Err(e) => (e.scim_type.map(|t| t.as_str().to_owned()).unwrap_or_default(), e.detail),
        }
    }

    fn typed<'a>(user: &'a Map<String, Value>, attr: &str, ty: &str) -> Option<&'a Value> {
        user.get(attr)?.as_array()?.iter().find(|v| v["type"] == ty)
    }

    #[test]
    fn op_names_are_read_ignoring_case() {
        for (op, title) in
            [("add", "a"), ("Add", "b"), ("ADD", "c"), ("replace", "d"), ("Replace", "e"), ("rEpLaCe", "f")]
        {
            let user = patched(json!([{"op": op, "path": "title", "value": title}]));
            assert_eq!(user["title"], title, "{op}");
        }
        for op in ["remove", "Remove", "REMOVE"] {
            let user = patched(json!([{"op": op, "path": "name.familyName"}]));
            assert!(user["name"].get("familyName").is_none(), "{op}");
        }
    }

    #[test]
    fn entra_legacy_dialect_applies() {
        // ENTRA.md, "The two PATCH dialects", without the flag.
        let user = patched(json!([
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "new@contoso.com"},
            {"op": "Replace", "path": "name.familyName", "value": "Smith"},
            {"op": "Add", "path": format!("{ENT}:department"), "value": "Ops"},
            {"op": "Add", "path": format!("{ENT}:manager"),
             "value": [{"$ref": null, "value": "26118915-6090-4610-87a4-b2a8f2f9c52d"}]}
        ]));
        assert_eq!(user["active"], false);
        assert_eq!(typed(&user, "emails", "work").unwrap()["value"], "new@contoso.com");
        assert_eq!(typed(&user, "emails", "personal").unwrap()["value"], "ada@home.example");
        assert_eq!(user["name"], json!({"givenName": "Ada", "familyName": "Smith"}));
        assert_eq!(
            user[ENT],
            json!({"department": "Ops", "manager": {"value": "26118915-6090-4610-87a4-b2a8f2f9c52d"}})
        );
        assert_eq!(user["schemas"], json!([USER_SCHEMA, ENT]));
    }

    #[test]
    fn entra_flagged_dialect_applies() {
        // ENTRA.md, "The two PATCH dialects", with `aadOptscim062020`.
        let user = patched(json!([
            {"op": "replace", "value": {"active": false, "name.givenName": "Ann", "displayName": "Ann Smith",
              format!("{ENT}:employeeNumber"): "701985"}},
            {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "ann@contoso.com"}
        ]));
        assert_eq!(user["active"], false);
        assert_eq!(user["name"], json!({"givenName": "Ann", "familyName": "Lovelace"}));
        assert_eq!(user["displayName"], "Ann Smith");
        assert_eq!(user[ENT], json!({"department": "Engines", "employeeNumber": "701985"}));
        assert_eq!(typed(&user, "emails", "work").unwrap()["value"], "ann@contoso.com");
    }

    #[test]
    fn a_pathless_value_may_hold_an_extension_object_and_core_attributes() {
        let user = patched(json!([{"op": "add", "value": {"title": "Countess", ENT: {"costCenter": "42"}}}]));
        assert_eq!(user["title"], "Countess");
        assert_eq!(user[ENT], json!({"department": "Engines", "costCenter": "42"}));
    }

    #[test]
    fn attribute_names_and_urns_are_read_ignoring_case() {
        let user = patched(json!([
            {"op": "replace", "path": "NAME.GIVENNAME", "value": "Augusta"},
            {"op": "replace", "path": "Emails[Type eq \"work\"].VALUE", "value": "a@w.example"},
            {"op": "replace", "path": format!("{}:Department", ENT.to_uppercase()), "value": "Maths"},
            {"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:displayName", "value": "A"}
        ]));
        assert_eq!(user["name"]["givenName"], "Augusta");
        assert!(user["name"].get("GIVENNAME").is_none(), "stored under the schema's spelling");
        assert_eq!(typed(&user, "emails", "work").unwrap()["value"], "a@w.example");
        assert_eq!(user[ENT]["department"], "Maths");
        assert_eq!(user["displayName"], "A");
    }

    #[test]
    fn a_type_filter_that_selects_nothing_creates_the_value_of_that_type() {
        let user = patched(json!([
            {"op": "replace", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+47 400 00 000"},
            {"op": "add", "path": "addresses[type eq \"work\"].streetAddress", "value": "1 Main St"},
            {"op": "Replace", "path": "addresses[type eq \"work\"].locality", "value": "Leeds"},
            {"op": "add", "path": "emails[type eq \"other\"]", "value": {"value": "a@o.example"}}
        ]));
        assert_eq!(user["phoneNumbers"], json!([{"type": "mobile", "value": "+47 400 00 000"}]));
        assert_eq!(user["addresses"], json!([{"type": "work", "streetAddress": "1 Main St", "locality": "Leeds"}]));
        assert_eq!(typed(&user, "emails", "other").unwrap()["value"], "a@o.example");
        assert_eq!(user["emails"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn a_filter_selects_values_ignoring_case_unless_case_exact() {
        let user =
            patched(json!([{"op": "replace", "path": "emails[type eq \"WORK\"].value", "value": "x@w.example"}]));
        assert_eq!(user["emails"].as_array().unwrap().len(), 2, "WORK selected the work email");
        assert_eq!(typed(&user, "emails", "work").unwrap()["value"], "x@w.example");
    }

    #[test]
    fn replace_of_a_selected_value_replaces_it_and_add_merges_into_it() {
        let user = patched(json!([{"op": "replace", "path": "emails[type eq \"personal\"]",
                                   "value": {"type": "personal", "value": "p@new.example"}}]));
        assert_eq!(typed(&user, "emails", "personal").unwrap(), &json!({"type": "personal", "value": "p@new.example"}));
        let user =
            patched(json!([{"op": "add", "path": "emails[type eq \"personal\"]", "value": {"display": "Home"}}]));
        assert_eq!(
            typed(&user, "emails", "personal").unwrap(),
            &json!({"type": "personal", "value": "ada@home.example", "display": "Home"})
        );
    }

    #[test]
    fn removals_take_a_selected_value_a_sub_attribute_or_a_whole_attribute() {
        let user = patched(json!([{"op": "Remove", "path": "emails[type eq \"personal\"]"}]));
        assert_eq!(user["emails"].as_array().unwrap().len(), 1);
        assert!(typed(&user, "emails", "personal").is_none());
        let user = patched(json!([{"op": "remove", "path": "emails[type eq \"personal\"].value"}]));
        assert_eq!(typed(&user, "emails", "personal").unwrap(), &json!({"type": "personal"}));
        let user = patched(json!([{"op": "remove", "path": "emails"}]));
        assert!(user.get("emails").is_none());
        let user =
            patched(json!([{"op": "remove", "path": "name"}, {"op": "remove", "path": format!("{ENT}:department")}]));
        assert!(user.get("name").is_none());
        assert!(user.get(ENT).is_none(), "an extension left empty is gone");
        assert_eq!(user["schemas"], json!([USER_SCHEMA]));
    }

    #[test]
    fn removing_what_is_not_there_changes_nothing() {
        for path in ["title", "emails[type eq \"other\"]", "phoneNumbers[type eq \"mobile\"].value", "name.middleName"]
        {
            let outcome = patch(json!([{"op": "remove", "path": path}])).unwrap();
            assert!(!outcome.changed, "{path}");
        }
        let same = patch(json!([{"op": "replace", "path": "active", "value": true}])).unwrap();
        assert!(!same.changed, "a replace with the stored value changes nothing");
    }

    #[test]
    fn add_to_a_multi_valued_attribute_appends_new_values_and_moves_primary() {
        let user = patched(json!([{"op": "add", "path": "emails", "value": [
            {"type": "work", "value": "ada@work.example", "primary": true},
            {"type": "other", "value": "ada@other.example", "primary": "True"}
        ]}]));
        let emails = user["emails"].as_array().unwrap();
        assert_eq!(emails.len(), 3, "the work email was there already: {emails:?}");
        assert_eq!(typed(&user, "emails", "other").unwrap()["primary"], true);
        assert_eq!(typed(&user, "emails", "work").unwrap()["primary"], false, "RFC 7644 §3.5.2: one primary");
    }

    #[test]
    fn replace_of_a_multi_valued_attribute_replaces_every_value() {
        let user =
            patched(json!([{"op": "replace", "path": "emails", "value": [{"type": "work", "value": "n@w.example"}]}]));
        assert_eq!(user["emails"], json!([{"type": "work", "value": "n@w.example"}]));
    }

    #[test]
    fn replace_of_a_complex_attribute_merges_its_sub_attributes() {
        let user = patched(
            json!([{"op": "replace", "path": "name", "value": {"givenName": "Augusta", "formatted": "A. L."}}]),
        );
        assert_eq!(user["name"], json!({"givenName": "Augusta", "familyName": "Lovelace", "formatted": "A. L."}));
    }

    #[test]
    fn a_manager_comes_as_an_id_an_object_or_a_one_element_array() {
        let path = format!("{ENT}:manager");
        for value in [json!("m-1"), json!({"value": "m-1"}), json!([{"$ref": null, "value": "m-1"}])] {
            let user = patched(json!([{"op": "add", "path": path, "value": value}]));
            assert_eq!(user[ENT]["manager"], json!({"value": "m-1"}), "{value}");
        }
        let user = patched(json!([{"op": "replace", "value": {path.as_str(): "m-2"}}]));
        assert_eq!(user[ENT]["manager"], json!({"value": "m-2"}));
    }

    #[test]
    fn booleans_come_as_json_booleans_or_as_entra_strings() {
        for (value, want) in
            [(json!(false), false), (json!("False"), false), (json!("TRUE"), true), (json!("false"), false)]
        {
            let user = patched(json!([{"op": "replace", "path": "active", "value": value}]));
            assert_eq!(user["active"], want, "{value}");
        }
        let (kind, detail) = refused(json!([{"op": "replace", "path": "active", "value": "maybe"}]));
        assert_eq!(kind, "invalidValue", "{detail}");
    }

    #[test]
    fn group_members_are_added_and_removed_as_entra_and_okta_send_them() {
        let registry = registry();
        let schema = registry.resource("Group").unwrap();
        let group = stored(
            &registry,
            "Group",
            json!({"schemas": [GROUP_SCHEMA], "displayName": "Ops", "members": [{"value": "u1"}]}),
        );
        let run =
            |group: &Map<String, Value>, ops: Value| apply(&schema, group, &message(ops), &anything).unwrap().resource;
        let group = run(
            &group,
            json!([{"op": "Add", "path": "members", "value": [{"value": "u2"}, {"value": "u3"}, {"value": "u1"}]}]),
        );
        assert_eq!(group["members"], json!([{"value": "u1"}, {"value": "u2"}, {"value": "u3"}]));
        let group = run(&group, json!([{"op": "remove", "path": "members[value eq \"u2\"]"}]));
        assert_eq!(group["members"], json!([{"value": "u1"}, {"value": "u3"}]));
        let group = run(&group, json!([{"op": "Remove", "path": "members", "value": [{"value": "u1"}]}]));
        assert_eq!(group["members"], json!([{"value": "u3"}]));
        let group = run(&group, json!([{"op": "Replace", "path": "displayName", "value": "Ops 2"}]));
        assert_eq!(group["displayName"], "Ops 2");
        let group = run(&group, json!([{"op": "remove", "path": "members"}]));
        assert!(group.get("members").is_none());
    }

    #[test]
    fn malformed_and_unsupported_paths_are_invalid_path() {
        for (path, names) in [
            ("", "empty"),
            ("emails[type eq \"work\"", "']' closing the value filter, found the end at column 22"),
            ("emails[type co \"w\"].value", "operator \"co\""),
            ("emails[type eq \"w\" and value eq \"x\"]", "one comparison"),
            ("emails[type eq \"w\" or type eq \"x\"]", "one comparison"),
            ("emails[type eq work]", "string in double quotes"),
            ("emails[type eq true]", "string in double quotes"),
            ("emails[type pr]", "operator \"pr\""),
            ("emails[type eq\"w\"]", "a space after the operator"),
            ("emails[type eq \"w\"][value eq \"x\"]", "the end of the path"),
            ("na me", "found ' ' at column 3"),
            ("name..givenName", "a sub-attribute name, found '.' at column 6"),
            ("name.givenName.x", "the end of the path"),
            ("1title", "an attribute name, found '1' at column 1"),
            ("a:b", "found ':'"),
            ("emails.value", "select its values with a filter"),
            ("name[givenName eq \"A\"]", "not a multi-valued complex attribute"),
            ("emails[nope eq \"x\"]", "no sub-attribute \"nope\""),
            ("emails[primary eq \"x\"]", "compares strings"),
            ("nickname2", "no attribute \"nickname2\""),
            ("name.middle", "no sub-attribute \"middle\""),
            ("urn:example:params:scim:schemas:Custom:badge", "is not a schema of a User"),
            ("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:nope", "no attribute \"nope\""),
            ("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "is not a schema"),
            ("department", "no attribute \"department\""),
        ] {
            let (kind, detail) = refused(json!([{"op": "replace", "path": path, "value": "x"}]));
            assert_eq!(kind, "invalidPath", "{path}: {detail}");
            assert!(detail.starts_with("Operations[0]: "), "{path}: {detail}");
            assert!(detail.contains(names), "{path}: {detail:?} does not say {names:?}");
        }
        let (kind, _) = refused(json!([{"op": "replace", "path": 7, "value": "x"}]));
        assert_eq!(kind, "invalidPath");
        let (kind, detail) = refused(json!([{"op": "replace", "value": {"emails[type eq \"work\"].value": "x"}}]));
        assert_eq!((kind.as_str(), detail.contains("belongs in \"path\"")), ("invalidPath", true), "{detail}");
    }

    #[test]
    fn filter_literals_are_not_echoed() {
        let (_, detail) =
            refused(json!([{"op": "replace", "path": "emails[value eq \"secret@x.io\"].type", "value": "work"}]));
        assert!(!detail.contains("secret"), "{detail}");
        let (_, detail) = refused(json!([{"op": "replace", "path": "emails[value co \"secret@x.io\"]", "value": {}}]));
        assert!(!detail.contains("secret"), "{detail}");
    }

    #[test]
    fn malformed_messages_and_unknown_ops_are_invalid_syntax() {
        let registry = registry();
        let schema = registry.resource("User").unwrap();
        let user = ada(&registry);
        let ops = json!([{"op": "replace", "path": "title", "value": "x"}]);
        for (body, names) in [
            (json!("nope"), "JSON object"),
            (json!({"Operations": ops}), "\"schemas\""),
            (json!({"schemas": ["urn:example:patch"], "Operations": ops}), "\"schemas\""),
            (json!({"schemas": [PATCH_OP_SCHEMA], "Operations": []}), "at least one"),
            (json!({"schemas": [PATCH_OP_SCHEMA], "Operations": {"op": "add"}}), "at least one"),
            (json!({"schemas": [PATCH_OP_SCHEMA], "Operations": ops, "extra": 1}), "\"extra\""),
            (message(json!([{"op": "move", "path": "title", "value": "x"}])), "op \"move\""),
            (message(json!([{"op": 1, "path": "title", "value": "x"}])), "\"op\" must be a string"),
            (message(json!([{"path": "title", "value": "x"}])), "\"op\" must be a string"),
            (message(json!([{"op": "add", "path": "title", "value": "x", "from": "y"}])), "\"from\""),
            (message(json!(["add"])), "JSON object"),
            (message(json!([{"op": "remove", "path": "title", "value": "x"}])), "takes no \"value\""),
            (
                message(json!([{"op": "remove", "path": "emails[type eq \"work\"]", "value": {"value": "x"}}])),
                "takes no",
            ),
        ] {
            let e = apply(&schema, &user, &body, &anything).unwrap_err();
            assert_eq!(e.scim_type.map(|t| t.as_str()), Some("invalidSyntax"), "{body}: {}", e.detail);
            assert!(e.detail.contains(names), "{body}: {:?} does not say {names:?}", e.detail);
        }
    }

    #[test]
    fn values_of_the_wrong_shape_are_invalid_value() {
        for (ops, names) in [
            (json!([{"op": "add", "path": "title"}]), "needs a \"value\""),
            (json!([{"op": "replace", "path": "title", "value": null}]), "needs a \"value\""),
            (json!([{"op": "add", "value": "x"}]), "must be an object"),
            (json!([{"op": "replace", "value": {}}]), "at least one attribute"),
            (json!([{"op": "add", "path": "emails", "value": {"type": "work", "value": "x"}}]), "must be an array"),
            (json!([{"op": "replace", "path": "name", "value": "Ada"}]), "must be an object"),
            (json!([{"op": "add", "path": "emails[type eq \"work\"]", "value": "x"}]), "must be an object"),
            (json!([{"op": "replace", "value": {ENT: "Engines"}}]), "expected an object"),
            (json!([{"op": "replace", "path": "userName", "value": 7}]), "userName"),
        ] {
            let (kind, detail) = refused(ops.clone());
            assert_eq!(kind, "invalidValue", "{ops}: {detail}");
            assert!(detail.contains(names), "{ops}: {detail:?} does not say {names:?}");
        }
    }

    #[test]
    fn read_only_paths_and_removing_required_attributes_are_mutability_errors() {
        for ops in [
            json!([{"op": "replace", "path": "id", "value": "x"}]),
            json!([{"op": "replace", "path": "meta.created", "value": "2020-01-01T00:00:00Z"}]),
            json!([{"op": "add", "path": "groups", "value": [{"value": "g"}]}]),
            json!([{"op": "replace", "value": {"meta": {"version": "1"}}}]),
            json!([{"op": "add", "path": format!("{ENT}:manager.displayName"), "value": "Boss"}]),
            json!([{"op": "remove", "path": "userName"}]),
        ] {
            let (kind, detail) = refused(ops.clone());
            assert_eq!(kind, "mutability", "{ops}: {detail}");
        }
    }

    #[test]
    fn remove_without_a_path_and_an_empty_selection_of_another_filter_are_no_target() {
        let (kind, _) = refused(json!([{"op": "remove"}]));
        assert_eq!(kind, "noTarget");
        let (kind, detail) =
            refused(json!([{"op": "replace", "path": "emails[value eq \"x@y.io\"].type", "value": "work"}]));
        assert_eq!(kind, "noTarget", "{detail}");
    }

    #[test]
    fn the_profile_is_asked_about_every_path() {
        let registry = registry();
        let schema = registry.resource("User").unwrap();
        let user = ada(&registry);
        let seen = std::cell::RefCell::new(Vec::new());
        let check = |t: &PatchTarget<'_>| {
            seen.borrow_mut().push((
                t.extension.map(str::to_owned),
                t.attribute.to_owned(),
                t.filter.map(|(a, l)| format!("{a}={l}")),
                t.sub_attribute.map(str::to_owned),
            ));
            if t.attribute == "title" { Err(ScimError::invalid_path("no title here")) } else { Ok(()) }
        };
        let ops = json!([
            {"op": "replace", "path": "EMAILS[TYPE eq \"work\"].VALUE", "value": "x@y.io"},
            {"op": "replace", "value": {"name.givenName": "A", ENT: {"department": "D"}}},
            {"op": "add", "path": "title", "value": "x"}
        ]);
        let e = apply(&schema, &user, &message(ops), &check).unwrap_err();
        assert_eq!(e.detail, "Operations[2]: no title here");
        assert_eq!(
            *seen.borrow(),
            vec![
                (None, "emails".to_owned(), Some("type=work".to_owned()), Some("value".to_owned())),
                (None, "name".to_owned(), None, Some("givenName".to_owned())),
                (Some(ENT.to_owned()), "department".to_owned(), None, None),
                (None, "title".to_owned(), None, None),
            ]
        );
    }

    #[test]
    fn paths_parse_into_their_parts() {
        let p =
            parse_path("urn:ietf:params:scim:schemas:core:2.0:User:emails[type eq \"a]b:c \\\"q\\\"\"].value").unwrap();
        assert_eq!(p.urn.as_deref(), Some("urn:ietf:params:scim:schemas:core:2.0:User"));
        assert_eq!(p.attr, "emails");
        assert_eq!(p.filter, Some(EqFilter { attr: "type".into(), literal: "a]b:c \"q\"".into() }));
        assert_eq!(p.sub.as_deref(), Some("value"));
        let p = parse_path("members[ value EQ \"u1\" ]").unwrap();
        assert_eq!(p.filter, Some(EqFilter { attr: "value".into(), literal: "u1".into() }));
        assert_eq!(parse_path("manager.$ref").unwrap().sub.as_deref(), Some("$ref"));
        assert!(parse_path("manager.$nope").is_err());
        assert!(parse_path("$ref").is_err());
    }
}
