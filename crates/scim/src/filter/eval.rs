//! Evaluates a parsed filter against a resource, or against one element of a multi-valued attribute.
//!
//! The rules are in the module doc of [`crate::filter`]. Nothing here panics or reports errors:
//! whatever does not fit (unknown attribute, mistyped value, unsupported operator) does not match.

use std::cmp::Ordering;
use std::sync::LazyLock;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Number, Value};

use super::ast::{AttrPath, CompValue, CompareOp, Filter};
use crate::schema::{AttrType, Attribute, Location, ResourceSchema};
use crate::value::get_ci;

/// `schemas`, which every resource carries but no schema defines (RFC 7643 §3): a multi-valued
/// string, compared ignoring case.
pub(crate) static SCHEMAS_ATTRIBUTE: LazyLock<Attribute> = LazyLock::new(|| Attribute::string("schemas").multi());

/// Whether `path` is the top-level `schemas` attribute (unqualified or core-qualified).
pub(crate) fn is_schemas(path: &AttrPath, schema: &ResourceSchema<'_>) -> bool {
    path.sub_attr.is_none()
        && path.name.eq_ignore_ascii_case("schemas")
        && path.urn.as_deref().is_none_or(|urn| schema.core.id.eq_ignore_ascii_case(urn))
}

/// The attributes an extension kept as sent is typed by, by the JSON type of the stored value
/// (it has no schema): strings compare ignoring case, as RFC 7643 §2.3.1 makes the default.
static OPAQUE_STRING: LazyLock<Attribute> = LazyLock::new(|| Attribute::string("opaque"));
static OPAQUE_BOOLEAN: LazyLock<Attribute> = LazyLock::new(|| Attribute::boolean("opaque"));
static OPAQUE_NUMBER: LazyLock<Attribute> = LazyLock::new(|| Attribute::decimal("opaque"));
static OPAQUE_OTHER: LazyLock<Attribute> = LazyLock::new(|| Attribute::complex("opaque", Vec::new()));

/// `urn:…:attribute[.sub]` under an extension kept as sent (see
/// [`ResourceSchema::opaque_split`]): the extension's URN and the attribute's name.
pub(crate) fn opaque_path(path: &AttrPath, schema: &ResourceSchema<'_>) -> Option<(String, String)> {
    let urn = path.urn.as_deref()?;
    if schema.knows_schema(urn) {
        return None;
    }
    let full = format!("{urn}:{}", path.name);
    match schema.opaque_split(&full)? {
        (urn, Some(attr)) => Some((urn.to_owned(), attr.to_owned())),
        (_, None) => None,
    }
}

/// Whether `path`, at the top of a filter, names nothing a resource of this type can hold: the
/// evaluator then finds no value, so a comparison or presence test on it never matches (RFC 7644
/// §3.4.2.2: a search at the root treats an attribute a type lacks as absent). The store lowers
/// such a test to FALSE.
pub fn names_nothing(path: &AttrPath, schema: &ResourceSchema<'_>) -> bool {
    !is_schemas(path, schema)
        && schema.resolve(path.urn.as_deref(), &path.name, path.sub_attr.as_deref()).is_none()
        && opaque_path(path, schema).is_none()
}

fn opaque_attribute(value: Option<&Value>) -> &'static Attribute {
    let first = match value {
        Some(Value::Array(items)) => items.first(),
        other => other,
    };
    match first {
        Some(Value::String(_)) | None => &OPAQUE_STRING,
        Some(Value::Bool(_)) => &OPAQUE_BOOLEAN,
        Some(Value::Number(_)) => &OPAQUE_NUMBER,
        Some(_) => &OPAQUE_OTHER,
    }
}

pub(crate) fn matches(filter: &Filter, resource: &Value, schema: &ResourceSchema<'_>) -> bool {
    resource.as_object().is_some_and(|obj| matches_object(filter, obj, schema))
}

pub(crate) fn matches_object(filter: &Filter, obj: &Map<String, Value>, schema: &ResourceSchema<'_>) -> bool {
    eval(filter, Scope::Resource { obj, schema })
}

pub(crate) fn matches_element(filter: &Filter, element: &Value, attr: &Attribute) -> bool {
    element.as_object().is_some_and(|obj| eval(filter, Scope::Element { obj, attr }))
}

/// What the paths of a filter are relative to.
#[derive(Clone, Copy)]
enum Scope<'r, 's> {
    /// A whole resource: paths are `[urn:]name[.sub]`.
    Resource { obj: &'r Map<String, Value>, schema: &'r ResourceSchema<'s> },
    /// One element of the complex attribute `attr`: paths name its sub-attributes.
    Element { obj: &'r Map<String, Value>, attr: &'r Attribute },
}

/// A path resolved against the schema, with the value found at its top-level attribute.
struct Target<'r> {
    /// The top-level attribute (in element scope: the sub-attribute named).
    attr: &'r Attribute,
    /// The sub-attribute the path names, if any.
    sub: Option<&'r Attribute>,
    /// The stored value of `attr`, if any.
    value: Option<&'r Value>,
}

fn eval(filter: &Filter, scope: Scope<'_, '_>) -> bool {
    match filter {
        Filter::Compare { path, op, value } => resolve(path, scope).is_some_and(|t| compare(&t, *op, value)),
        Filter::Present(path) => resolve(path, scope).is_some_and(|t| present(&t)),
        Filter::And(left, right) => eval(left, scope) && eval(right, scope),
        Filter::Or(left, right) => eval(left, scope) || eval(right, scope),
        Filter::Not(inner) => !eval(inner, scope),
        Filter::ValuePath { path, filter } => match scope {
            Scope::Element { .. } => false,
            Scope::Resource { .. } => resolve(path, scope).is_some_and(|t| {
                t.sub.is_none()
                    && t.attr.ty == AttrType::Complex
                    && elements(t.value).any(|element| {
                        element.as_object().is_some_and(|obj| eval(filter, Scope::Element { obj, attr: t.attr }))
                    })
            }),
        },
    }
}

fn resolve<'r>(path: &AttrPath, scope: Scope<'r, '_>) -> Option<Target<'r>> {
    match scope {
        Scope::Resource { obj, schema } => {
            if is_schemas(path, schema) {
                return Some(Target { attr: &SCHEMAS_ATTRIBUTE, sub: None, value: get_ci(obj, "schemas") });
            }
            let Some(r) = schema.resolve(path.urn.as_deref(), &path.name, path.sub_attr.as_deref()) else {
                let (urn, attr) = opaque_path(path, schema)?;
                let mut value = get_ci(obj, &urn).and_then(Value::as_object).and_then(|ext| get_ci(ext, &attr));
                if let Some(sub) = &path.sub_attr {
                    value = value.and_then(Value::as_object).and_then(|o| get_ci(o, sub));
                }
                return Some(Target { attr: opaque_attribute(value), sub: None, value });
            };
            let container = match r.location {
                Location::Extension(ext) => get_ci(obj, &ext.id).and_then(Value::as_object),
                Location::Common | Location::Core => Some(obj),
            };
            let value = container.and_then(|c| get_ci(c, &r.attribute.name));
            Some(Target { attr: r.attribute, sub: r.sub_attribute, value })
        }
        Scope::Element { obj, attr } => {
            if path.urn.is_some() || path.sub_attr.is_some() {
                return None;
            }
            let sub = attr.sub_attribute(&path.name)?;
            Some(Target { attr: sub, sub: None, value: get_ci(obj, &sub.name) })
        }
    }
}

/// The elements of a stored value: an array's items, or the value itself.
fn elements(value: Option<&Value>) -> impl Iterator<Item = &Value> {
    let (items, single) = match value {
        Some(Value::Array(items)) => (items.as_slice(), None),
        other => (&[][..], other),
    };
    items.iter().chain(single)
}

/// The values a comparison looks at, with the attribute that types them: the sub-attribute
/// named, else a complex attribute's `value`, else the attribute. `None` for a complex
/// attribute without `value`.
fn comparands<'r>(t: &Target<'r>) -> Option<(&'r Attribute, Vec<&'r Value>)> {
    let leaf = match t.sub {
        Some(sub) => Some(sub),
        None if t.attr.ty == AttrType::Complex => Some(t.attr.sub_attribute("value")?),
        None => None,
    };
    let mut out = Vec::new();
    for element in elements(t.value) {
        match leaf {
            Some(sub) => {
                if let Some(v) = element.as_object().and_then(|o| get_ci(o, &sub.name)) {
                    out.extend(elements(Some(v)));
                }
            }
            None => out.push(element),
        }
    }
    Some((leaf.unwrap_or(t.attr), out))
}

fn present(t: &Target<'_>) -> bool {
    match t.sub {
        None => t.value.is_some_and(is_present),
        Some(_) => comparands(t).is_some_and(|(_, values)| values.into_iter().any(is_present)),
    }
}

/// Has a value: not null, not an empty string, not an array or object without a present member.
fn is_present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => items.iter().any(is_present),
        Value::Object(members) => members.values().any(is_present),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

fn compare(t: &Target<'_>, op: CompareOp, expected: &CompValue) -> bool {
    match (op, expected) {
        (CompareOp::Eq, CompValue::Null) => return !present(t),
        (CompareOp::Ne, CompValue::Null) => return present(t),
        (_, CompValue::Null) => return false,
        _ => {}
    }
    let Some((leaf, values)) = comparands(t) else {
        return false;
    };
    match op {
        CompareOp::Ne => !values.into_iter().any(|v| compare_one(leaf, v, CompareOp::Eq, expected)),
        op => values.into_iter().any(|v| compare_one(leaf, v, op, expected)),
    }
}

/// One stored value against the literal, by the attribute's type.
fn compare_one(leaf: &Attribute, actual: &Value, op: CompareOp, expected: &CompValue) -> bool {
    match leaf.ty {
        AttrType::String | AttrType::Reference | AttrType::Binary => match (actual, expected) {
            (Value::String(a), CompValue::Str(b)) => {
                compare_strings(a, b, op, leaf.case_exact || leaf.ty == AttrType::Binary)
            }
            _ => false,
        },
        AttrType::Boolean => match (stored_bool(actual), literal_bool(expected)) {
            (Some(a), Some(b)) => match op {
                CompareOp::Eq => a == b,
                CompareOp::Ne => a != b,
                _ => false,
            },
            _ => false,
        },
        AttrType::Integer | AttrType::Decimal => match (actual, expected) {
            (Value::Number(a), CompValue::Number(b)) => ordering_matches(op, compare_numbers(a, b)),
            _ => false,
        },
        AttrType::DateTime => match (actual, expected) {
            (Value::String(a), CompValue::Str(b)) if !op.is_substring() => {
                match (parse_datetime(a), parse_datetime(b)) {
                    (Some(a), Some(b)) => ordering_matches(op, Some(a.cmp(&b))),
                    _ => ordering_matches(op, Some(a.as_str().cmp(b.as_str()))),
                }
            }
            _ => false,
        },
        AttrType::Complex => false,
    }
}

fn stored_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => bool_word(s),
        _ => None,
    }
}

fn literal_bool(v: &CompValue) -> Option<bool> {
    match v {
        CompValue::Bool(b) => Some(*b),
        CompValue::Str(s) => bool_word(s),
        _ => None,
    }
}

/// `"true"` / `"false"` in any case, as Entra sends booleans.
pub(crate) fn bool_word(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

fn ordering_matches(op: CompareOp, ordering: Option<Ordering>) -> bool {
    let Some(ordering) = ordering else {
        return false;
    };
    match op {
        CompareOp::Eq => ordering.is_eq(),
        CompareOp::Ne => ordering.is_ne(),
        CompareOp::Gt => ordering.is_gt(),
        CompareOp::Ge => ordering.is_ge(),
        CompareOp::Lt => ordering.is_lt(),
        CompareOp::Le => ordering.is_le(),
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

/// Integers exactly (as `i128`), anything else as `f64`, so that `1 eq 1.0`.
fn compare_numbers(a: &Number, b: &Number) -> Option<Ordering> {
    let exact = |n: &Number| n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from));
    if let (Some(a), Some(b)) = (exact(a), exact(b)) {
        return Some(a.cmp(&b));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

/// An RFC 3339 date-time, or an `xsd:dateTime` without offset (read as UTC).
pub(crate) fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").ok().map(|naive| naive.and_utc())
}

fn compare_strings(a: &str, b: &str, op: CompareOp, case_exact: bool) -> bool {
    if case_exact {
        return string_op(a, b, op);
    }
    // The ASCII paths avoid allocating for the comparisons Entra sends on every request; they
    // agree with `to_lowercase` on ASCII input.
    if a.is_ascii() && b.is_ascii() {
        let (a_bytes, b_bytes) = (a.as_bytes(), b.as_bytes());
        return match op {
            CompareOp::Eq => a.eq_ignore_ascii_case(b),
            CompareOp::Sw => a_bytes.get(..b.len()).is_some_and(|p| p.eq_ignore_ascii_case(b_bytes)),
            CompareOp::Ew => a
                .len()
                .checked_sub(b.len())
                .and_then(|start| a_bytes.get(start..))
                .is_some_and(|s| s.eq_ignore_ascii_case(b_bytes)),
            _ => string_op(&a.to_ascii_lowercase(), &b.to_ascii_lowercase(), op),
        };
    }
    string_op(&a.to_lowercase(), &b.to_lowercase(), op)
}

fn string_op(a: &str, b: &str, op: CompareOp) -> bool {
    match op {
        CompareOp::Eq => a == b,
        CompareOp::Ne => a != b,
        CompareOp::Co => a.contains(b),
        CompareOp::Sw => a.starts_with(b),
        CompareOp::Ew => a.ends_with(b),
        CompareOp::Gt => a > b,
        CompareOp::Ge => a >= b,
        CompareOp::Lt => a < b,
        CompareOp::Le => a <= b,
    }
}
