//! Checks a parsed filter against a resource type's schemas; every error names the attribute and the rule.
//!
//! Messages name attributes and operators, never the compared values (they may be personal data).

use super::ast::{AttrPath, CompValue, CompareOp, Filter};
use super::eval::{SCHEMAS_ATTRIBUTE, bool_word, is_schemas, opaque_path, parse_datetime};
use super::lexer::quote;
use crate::error::ScimError;
use crate::schema::{AttrType, Attribute, ResourceSchema};

pub(crate) fn validate(filter: &Filter, schema: &ResourceSchema<'_>) -> Result<(), ScimError> {
    check(filter, Scope::Resource(schema))
}

/// What the paths of a filter are relative to.
#[derive(Clone, Copy)]
enum Scope<'r, 's> {
    Resource(&'r ResourceSchema<'s>),
    /// Inside `path[…]`, where `attr` is the attribute `path` names.
    Element(&'r Attribute, &'r AttrPath),
}

fn check(filter: &Filter, scope: Scope<'_, '_>) -> Result<(), ScimError> {
    // An attribute of an extension kept as sent has no schema to check against: any comparison
    // goes, and the evaluator types it by the stored value.
    if let (Filter::Compare { path, .. } | Filter::Present(path), Scope::Resource(schema)) = (filter, scope) {
        if opaque_path(path, schema).is_some() {
            return Ok(());
        }
    }
    match filter {
        Filter::Compare { path, op, value } => {
            let (attr, sub) = resolve(path, scope)?;
            check_comparison(sub.unwrap_or(attr), path, *op, value)
        }
        Filter::Present(path) => resolve(path, scope).map(|_| ()),
        Filter::And(left, right) | Filter::Or(left, right) => {
            check(left, scope)?;
            check(right, scope)
        }
        Filter::Not(inner) => check(inner, scope),
        Filter::ValuePath { path, filter } => {
            if let Scope::Element(_, outer) = scope {
                return Err(invalid(format!(
                    "value filters cannot be nested: {} is inside {}[…]",
                    quote(&path.to_string()),
                    outer
                )));
            }
            let (attr, _) = resolve(path, scope)?;
            if path.sub_attr.is_some() {
                return Err(invalid(format!(
                    "a value filter applies to a complex attribute, not to the sub-attribute {}",
                    quote(&path.to_string())
                )));
            }
            if attr.ty != AttrType::Complex {
                return Err(invalid(format!(
                    "{} is {} attribute, so it cannot take a value filter in brackets (only complex attributes such as emails can)",
                    quote(&path.to_string()),
                    type_name(attr.ty)
                )));
            }
            check(filter, Scope::Element(attr, path))
        }
    }
}

/// The attribute and sub-attribute `path` names, or why it names none.
fn resolve<'r>(path: &AttrPath, scope: Scope<'r, '_>) -> Result<(&'r Attribute, Option<&'r Attribute>), ScimError> {
    match scope {
        Scope::Element(attr, outer) => {
            if path.urn.is_some() || path.sub_attr.is_some() {
                return Err(invalid(format!(
                    "inside {outer}[…], name a sub-attribute of {outer} (such as {}), found {}",
                    example_sub(attr),
                    quote(&path.to_string())
                )));
            }
            match attr.sub_attribute(&path.name) {
                Some(sub) => Ok((sub, None)),
                None => Err(invalid(format!("unknown sub-attribute {} of {outer} in the filter", quote(&path.name)))),
            }
        }
        Scope::Resource(schema) => {
            if is_schemas(path, schema) {
                return Ok((&SCHEMAS_ATTRIBUTE, None));
            }
            if let Some(r) = schema.resolve(path.urn.as_deref(), &path.name, path.sub_attr.as_deref()) {
                return Ok((r.attribute, r.sub_attribute));
            }
            Err(invalid(unresolved(path, schema)))
        }
    }
}

/// Why `path` does not resolve, with a hint where one helps.
fn unresolved(path: &AttrPath, schema: &ResourceSchema<'_>) -> String {
    let resource = &schema.resource_type.name;
    if let Some(urn) = path.urn.as_deref().filter(|urn| !schema.knows_schema(urn)) {
        return format!("the filter names the schema {}, which {resource} resources do not have", quote(urn));
    }
    let Some(top) = schema.resolve(path.urn.as_deref(), &path.name, None) else {
        let owner = schema.extensions.iter().find(|(ext, _)| ext.attribute(&path.name).is_some());
        if let (None, Some((ext, _))) = (&path.urn, owner) {
            return format!(
                "unknown attribute {} in the filter; the extension attribute is written {}:{}",
                quote(&path.name),
                ext.id,
                path.name
            );
        }
        return format!("unknown attribute {} in the filter", quote(&path.name));
    };
    let name = &top.attribute.name;
    let sub = path.sub_attr.as_deref().unwrap_or_default();
    if top.attribute.sub_attributes.is_empty() {
        format!("{name} has no sub-attributes, so {} is not a valid path", quote(&path.to_string()))
    } else {
        format!("unknown sub-attribute {} of {name} in the filter", quote(sub))
    }
}

/// `op value` against the attribute `attr` (the sub-attribute when the path names one).
fn check_comparison(attr: &Attribute, path: &AttrPath, op: CompareOp, value: &CompValue) -> Result<(), ScimError> {
    let shown = path.to_string();
    let shown = shown.as_str();
    if *value == CompValue::Null {
        // `eq null` / `ne null` test presence, which every attribute has.
        if matches!(op, CompareOp::Eq | CompareOp::Ne) {
            return Ok(());
        }
        return Err(invalid(format!("\"{op} null\" is not a comparison (only eq null and ne null are), on {shown}")));
    }
    let leaf = if attr.ty == AttrType::Complex {
        match attr.sub_attribute("value") {
            Some(value_sub) => value_sub,
            None => {
                return Err(invalid(format!(
                    "{shown} is a complex attribute; compare one of its sub-attributes, such as {shown}.{}",
                    example_sub(attr)
                )));
            }
        }
    } else {
        attr
    };
    let ty = type_name(leaf.ty);
    let ops_allowed = match leaf.ty {
        AttrType::Boolean | AttrType::Binary => !op.is_ordering() && !op.is_substring(),
        AttrType::Integer | AttrType::Decimal | AttrType::DateTime => !op.is_substring(),
        AttrType::String | AttrType::Reference | AttrType::Complex => true,
    };
    if !ops_allowed {
        let usable = if matches!(leaf.ty, AttrType::Boolean | AttrType::Binary) {
            "eq or ne"
        } else {
            "eq, ne, gt, ge, lt or le"
        };
        return Err(invalid(format!("\"{op}\" does not apply to {shown}, {ty} attribute (use {usable})")));
    }
    let value_fits = match (leaf.ty, value) {
        (AttrType::String | AttrType::Reference | AttrType::Binary, CompValue::Str(_)) => true,
        (AttrType::Boolean, CompValue::Bool(_)) => true,
        (AttrType::Boolean, CompValue::Str(s)) => bool_word(s).is_some(),
        (AttrType::Integer | AttrType::Decimal, CompValue::Number(_)) => true,
        (AttrType::DateTime, CompValue::Str(s)) => parse_datetime(s).is_some(),
        _ => false,
    };
    if value_fits {
        return Ok(());
    }
    let hint = match leaf.ty {
        AttrType::String | AttrType::Reference | AttrType::Binary => "put the value in double quotes",
        AttrType::Boolean => "compare it with true or false",
        AttrType::Integer | AttrType::Decimal => "compare it with a number, without quotes",
        AttrType::DateTime => "compare it with a quoted date-time such as \"2011-05-13T04:42:34Z\"",
        AttrType::Complex => "compare one of its sub-attributes",
    };
    Err(invalid(format!("{shown} is {ty} attribute: {hint}")))
}

fn example_sub(attr: &Attribute) -> &str {
    attr.sub_attribute("value").or(attr.sub_attributes.first()).map_or("value", |a| a.name.as_str())
}

/// The type's name with its article, e.g. "an integer".
fn type_name(ty: AttrType) -> &'static str {
    match ty {
        AttrType::String => "a string",
        AttrType::Boolean => "a boolean",
        AttrType::Decimal => "a decimal",
        AttrType::Integer => "an integer",
        AttrType::DateTime => "a dateTime",
        AttrType::Binary => "a binary",
        AttrType::Reference => "a reference",
        AttrType::Complex => "a complex",
    }
}

fn invalid(detail: String) -> ScimError {
    ScimError::invalid_filter(detail)
}
