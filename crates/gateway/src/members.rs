//! Group membership in PATCH and PUT: members are rows in the store, so a PATCH that adds 50
//! members to a group of 100,000 becomes 50 inserts, not a rewrite of the member list.
//!
//! [`Plan::split`] sorts a group PATCH's operations into body operations (for the PATCH engine)
//! and membership changes. The shapes Entra ID and Okta send — `add`/`replace` of `members` with a
//! value array (also inside a path-less value object), `remove` of `members` with or without a
//! value array, and `remove` with `members[value eq "…"]` (or an `or` of those) — become row
//! changes directly. Any other operation on `members` (another filter, a sub-attribute path) makes
//! the whole PATCH run through the engine on the full member list, and the difference is
//! written back: correct for every RFC shape, and only slow for shapes no IdP sends.

use std::collections::{HashMap, HashSet};

use actix_web::web;
use scimgw_scim::ScimError;
use scimgw_scim::filter::{CompValue, CompareOp, Filter, PatchPath, parse_patch_path};
use scimgw_scim::messages::{PatchOpKind, PatchOperation, PatchRequest};
use scimgw_scim::patch::apply_patch;
use scimgw_scim::resource::validate_resource;
use scimgw_scim::schema::{GROUP_SCHEMA, ResourceSchema};
use scimgw_store::{Change, Member, MembersChange, Resource};
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::error::ApiError;

/// Reads canonical `members` (as [`validate_resource`] leaves them) into rows.
pub(crate) fn parse_members(value: &Value) -> Result<Vec<Member>, ScimError> {
    let Value::Array(items) = value else {
        return Err(ScimError::invalid_value("\"members\" must be an array of {\"value\": \"<id>\"} objects"));
    };
    let mut seen = HashSet::with_capacity(items.len());
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Some(id) = item.get("value").and_then(Value::as_str) else {
            return Err(ScimError::invalid_value(format!("members[{i}] has no \"value\" (the member's id)")));
        };
        if seen.insert(id.to_owned()) {
            let r#type = item.get("type").and_then(Value::as_str).map(str::to_owned);
            out.push(Member { value: id.to_owned(), r#type, display: None });
        }
    }
    Ok(out)
}

/// Whether two member lists hold the same ids.
pub(crate) fn same_set(a: &[Member], b: &[Member]) -> bool {
    let a: HashSet<&str> = a.iter().map(|m| m.value.as_str()).collect();
    let b: HashSet<&str> = b.iter().map(|m| m.value.as_str()).collect();
    a == b
}

/// Every member must be a user or group of the tenant; its `type` is filled in from what it is.
pub(crate) async fn check_exist(
    state: &web::Data<AppState>,
    tenant_id: &str,
    members: Vec<Member>,
) -> Result<Vec<Member>, ApiError> {
    if members.is_empty() {
        return Ok(members);
    }
    let ids: Vec<String> = members.iter().map(|m| m.value.clone()).collect();
    let tenant = tenant_id.to_owned();
    let found = state.store.run_blocking(move |s| s.existing_ids(&tenant, &ids)).await??;
    let mut out = Vec::with_capacity(members.len());
    let mut missing = Vec::new();
    for mut m in members {
        match found.iter().find(|(id, _)| *id == m.value) {
            Some((_, kind)) => {
                m.r#type = Some(kind.resource_type().to_owned());
                out.push(m);
            }
            None => missing.push(m.value),
        }
    }
    if let Some(first) = missing.first() {
        return Err(ScimError::invalid_value(format!(
            "members: {} value(s) name no user or group of this tenant (first: \"{}\"); create them before adding them",
            missing.len(),
            first.chars().take(64).collect::<String>()
        ))
        .into());
    }
    Ok(out)
}

/// How a PATCH is carried out (see the module doc).
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    body: Option<PatchRequest>,
    members: Vec<MembersChange>,
    /// Set when some operation on `members` needs the full member list: the whole request.
    whole: Option<PatchRequest>,
    /// Each added member's `type` (`User` or `Group`) as the store knows it, by id.
    types: HashMap<String, String>,
}

impl Plan {
    /// A user PATCH: everything goes to the engine.
    pub(crate) fn body_only(request: PatchRequest) -> Self {
        Self { body: Some(request), members: Vec::new(), whole: None, types: HashMap::new() }
    }

    /// A group PATCH, sorted into body operations and membership changes.
    pub(crate) fn split(request: PatchRequest) -> Self {
        let mut body_ops = Vec::new();
        let mut members = Vec::new();
        for op in &request.operations {
            match classify(op) {
                Ok(Some((rest, change))) => {
                    if let Some(rest) = rest {
                        body_ops.push(rest);
                    }
                    members.push(change);
                }
                Ok(None) => body_ops.push(op.clone()),
                Err(Generic) => {
                    return Self { body: None, members: Vec::new(), whole: Some(request), types: HashMap::new() };
                }
            }
        }
        let body = (!body_ops.is_empty()).then_some(PatchRequest { operations: body_ops });
        Self { body, members, whole: None, types: HashMap::new() }
    }

    /// Records what each added member is, from [`check_exist`]'s answer: the stored `type` is
    /// the member's real kind, not what the client sent (or left out).
    pub(crate) fn set_member_types(&mut self, checked: &[Member]) {
        self.types = checked.iter().filter_map(|m| Some((m.value.clone(), m.r#type.clone()?))).collect();
        for change in &mut self.members {
            if let MembersChange::Add(list) | MembersChange::Set(list) = change {
                for m in list {
                    if let Some(t) = self.types.get(&m.value) {
                        m.r#type = Some(t.clone());
                    }
                }
            }
        }
    }

    /// Whether the current member list must be loaded.
    pub(crate) fn needs_current_members(&self) -> bool {
        self.whole.is_some()
    }

    /// Members this plan may add, to be checked against the store before the write.
    pub(crate) fn added_members(&self) -> Vec<Member> {
        let mut out = Vec::new();
        for change in &self.members {
            if let MembersChange::Add(m) | MembersChange::Set(m) = change {
                out.extend(m.iter().cloned());
            }
        }
        if let Some(whole) = &self.whole {
            for op in &whole.operations {
                collect_member_values(op.value.as_ref(), &mut out);
            }
        }
        out
    }

    /// Runs inside the store's write transaction on the current resource.
    pub(crate) fn apply(&self, schema: &ResourceSchema<'_>, current: &Resource) -> Result<Change, ScimError> {
        if let Some(whole) = &self.whole {
            return apply_whole(schema, current, whole, &self.types);
        }
        let (body, changed) = match &self.body {
            None => (current.body.clone(), false),
            Some(req) => {
                let out = apply_patch(schema, &current.body, req)?;
                (out.resource, out.changed)
            }
        };
        if !changed && self.members.is_empty() {
            return Ok(Change::Unchanged);
        }
        Ok(Change::Update { body, members: self.members.clone() })
    }
}

/// Marker: this operation on `members` needs the full member list.
struct Generic;

/// `Ok(Some((rest, change)))` for a membership operation (with what is left for the body, for
/// path-less values that also set other attributes), `Ok(None)` for a body operation.
fn classify(op: &PatchOperation) -> Result<Option<(Option<PatchOperation>, MembersChange)>, Generic> {
    let Some(path) = &op.path else {
        let Some(Value::Object(obj)) = &op.value else { return Ok(None) };
        let Some(key) = obj.keys().find(|k| k.eq_ignore_ascii_case("members")).cloned() else { return Ok(None) };
        let members = canonical_members(obj.get(&key)).map_err(|_| Generic)?;
        let change = match op.op {
            PatchOpKind::Add => MembersChange::Add(members),
            PatchOpKind::Replace => MembersChange::Set(members),
            PatchOpKind::Remove => return Ok(None),
        };
        let mut rest = obj.clone();
        rest.remove(&key);
        let rest =
            (!rest.is_empty()).then_some(PatchOperation { op: op.op, path: None, value: Some(Value::Object(rest)) });
        return Ok(Some((rest, change)));
    };
    let Ok(parsed) = parse_patch_path(path) else { return Ok(None) };
    let is_members = |p: &scimgw_scim::filter::AttrPath| {
        p.name.eq_ignore_ascii_case("members") && p.urn.as_deref().is_none_or(|u| u.eq_ignore_ascii_case(GROUP_SCHEMA))
    };
    match parsed {
        PatchPath::Attr(p) if is_members(&p) && p.sub_attr.is_none() => {
            let change = match (op.op, &op.value) {
                (PatchOpKind::Add, v) => MembersChange::Add(canonical_members(v.as_ref()).map_err(|_| Generic)?),
                (PatchOpKind::Replace, v) => MembersChange::Set(canonical_members(v.as_ref()).map_err(|_| Generic)?),
                (PatchOpKind::Remove, None) => MembersChange::Clear,
                (PatchOpKind::Remove, Some(v)) => MembersChange::Remove(listed_ids(v).ok_or(Generic)?),
            };
            Ok(Some((None, change)))
        }
        PatchPath::ValuePath { path: p, filter, sub_attr: None } if is_members(&p) && op.op == PatchOpKind::Remove => {
            let mut ids = Vec::new();
            if value_eq_ids(&filter, &mut ids) { Ok(Some((None, MembersChange::Remove(ids)))) } else { Err(Generic) }
        }
        PatchPath::Attr(p) | PatchPath::ValuePath { path: p, .. } if is_members(&p) => Err(Generic),
        _ => Ok(None),
    }
}

/// Members as the PATCH engine would store them: validated through the Group schema, so the
/// errors are the same as for a POST.
fn canonical_members(value: Option<&Value>) -> Result<Vec<Member>, ScimError> {
    let Some(value) = value else {
        return Err(ScimError::invalid_value("\"members\" needs a value"));
    };
    // Built once: the RFC Group schema never changes at run time.
    static REGISTRY: std::sync::OnceLock<scimgw_scim::schema::Registry> = std::sync::OnceLock::new();
    let registry = REGISTRY.get_or_init(scimgw_scim::schema::Registry::default);
    let schema =
        registry.resource("Group").ok_or_else(|| ScimError::new(500, None, "the Group resource type is missing"))?;
    let body = validate_resource(&schema, json!({"schemas": [GROUP_SCHEMA], "displayName": "-", "members": value}))?;
    match body.get("members") {
        Some(v) => parse_members(v),
        None => Ok(Vec::new()),
    }
}

/// `[{"value": "a"}, "b"]` → `["a", "b"]`.
fn listed_ids(value: &Value) -> Option<Vec<String>> {
    let items = match value {
        Value::Array(items) => items.as_slice(),
        single => std::slice::from_ref(single),
    };
    items
        .iter()
        .map(|item| match item {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => {
                o.iter().find(|(k, _)| k.eq_ignore_ascii_case("value")).and_then(|(_, v)| v.as_str()).map(str::to_owned)
            }
            _ => None,
        })
        .collect()
}

/// `value eq "a"` or `value eq "a" or value eq "b"` → the ids.
fn value_eq_ids(filter: &Filter, out: &mut Vec<String>) -> bool {
    match filter {
        Filter::Compare { path, op: CompareOp::Eq, value: CompValue::Str(id) }
            if path.urn.is_none() && path.sub_attr.is_none() && path.name.eq_ignore_ascii_case("value") =>
        {
            out.push(id.clone());
            true
        }
        Filter::Or(a, b) => value_eq_ids(a, out) && value_eq_ids(b, out),
        _ => false,
    }
}

fn collect_member_values(value: Option<&Value>, out: &mut Vec<Member>) {
    let Some(value) = value else { return };
    let candidates: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        Value::Object(obj) => match obj.iter().find(|(k, _)| k.eq_ignore_ascii_case("members")) {
            Some((_, Value::Array(items))) => items.iter().collect(),
            _ => vec![value],
        },
        _ => Vec::new(),
    };
    for c in candidates {
        if let Some(id) = c.get("value").and_then(Value::as_str) {
            out.push(Member::new(id));
        }
    }
}

/// The general path: the whole PATCH on the group with its full member list, then the
/// difference written back as row changes.
fn apply_whole(
    schema: &ResourceSchema<'_>,
    current: &Resource,
    request: &PatchRequest,
    types: &HashMap<String, String>,
) -> Result<Change, ScimError> {
    let old: Vec<Member> = current.members.clone().unwrap_or_default();
    let mut doc: Map<String, Value> = current.body.clone();
    if !old.is_empty() {
        // As a GET shows them (without `$ref`), so that a filter on `display` finds them too; the
        // engine drops `display` from what it returns (readOnly).
        let list: Vec<Value> = old.iter().map(|m| m.to_json(None)).collect();
        doc.insert("members".into(), Value::Array(list));
    }
    let out = apply_patch(schema, &doc, request)?;
    if !out.changed {
        return Ok(Change::Unchanged);
    }
    let mut body = out.resource;
    let new = match body.remove("members") {
        Some(v) => parse_members(&v)?,
        None => Vec::new(),
    };
    let old_ids: HashSet<&str> = old.iter().map(|m| m.value.as_str()).collect();
    let new_ids: HashSet<&str> = new.iter().map(|m| m.value.as_str()).collect();
    let removed: Vec<String> = old_ids.difference(&new_ids).map(|s| (*s).to_owned()).collect();
    let added: Vec<Member> = new
        .iter()
        .filter(|m| !old_ids.contains(m.value.as_str()))
        .map(|m| Member {
            value: m.value.clone(),
            r#type: types.get(&m.value).cloned().or_else(|| m.r#type.clone()),
            display: None,
        })
        .collect();
    if removed.is_empty() && added.is_empty() && body == current.body {
        // The engine saw a change only because it dropped the members' readOnly `display`.
        return Ok(Change::Unchanged);
    }
    let mut members = Vec::new();
    if !removed.is_empty() {
        members.push(MembersChange::Remove(removed));
    }
    if !added.is_empty() {
        members.push(MembersChange::Add(added));
    }
    Ok(Change::Update { body, members })
}
