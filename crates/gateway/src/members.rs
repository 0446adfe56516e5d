//! Group membership in PATCH and PUT: members are rows in the store, so a PATCH that adds 50
//! members to a group of 100,000 becomes 50 inserts, not a rewrite of the member list.
//!
//! [`Plan::split`] sorts a group PATCH's operations into body operations (for the PATCH engine)
//! and membership changes. The shapes Entra ID and Okta send — `add`/`replace` of `members` with a
//! value array (also inside a path-less value object), `remove` of `members` with or without a
//! value array, and `remove` with `members[value eq "…"]` (or an `or` of those) — become row
//! changes directly. Any other operation on `members` (another filter, a sub-attribute path, a
//! path-less key other than `members`) makes the whole PATCH run through the engine on the full
//! member list, and the difference is written back: correct for every RFC shape, and only slow
//! for shapes no IdP sends.
//!
//! Invariant: every member a PATCH, PUT or POST leaves in a group that was not there before is
//! checked to be a user or group of the tenant ([`check_exist`]), whatever the shape that put it
//! there: the fast path checks the values it adds; the general path checks the difference between
//! the member list before and after (see [`precompute`]). That general path, and any PATCH of
//! many operations, runs on the store's blocking threads, never on SQLite's writer thread: its
//! cost grows with the group's size and the number of operations, which one request controls,
//! and the writer serves every tenant.

use std::collections::{HashMap, HashSet};

use actix_web::web;
use scimgw_scim::filter::{CompValue, CompareOp, Filter, PatchPath, parse_patch_path};
use scimgw_scim::messages::{PatchOpKind, PatchOperation, PatchRequest};
use scimgw_scim::patch::apply_patch;
use scimgw_scim::resource::validate_resource;
use scimgw_scim::schema::{GROUP_SCHEMA, ResourceSchema};
use scimgw_scim::{ScimError, ScimType};
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
    // A map, not a search of the answer per member: 100,000 members were 100,000² comparisons.
    let found: HashMap<String, scimgw_store::Kind> = found.into_iter().collect();
    let mut out = Vec::with_capacity(members.len());
    let mut missing = Vec::new();
    for mut m in members {
        match found.get(&m.value) {
            Some(kind) => {
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
}

impl Plan {
    /// A user PATCH: everything goes to the engine.
    pub(crate) fn body_only(request: PatchRequest) -> Self {
        Self { body: Some(request), members: Vec::new(), whole: None }
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
                    return Self { body: None, members: Vec::new(), whole: Some(request) };
                }
            }
        }
        let body = (!body_ops.is_empty()).then_some(PatchRequest { operations: body_ops });
        Self { body, members, whole: None }
    }

    /// Records what each added member is, from [`check_exist`]'s answer: the stored `type` is
    /// the member's real kind, not what the client sent (or left out).
    pub(crate) fn set_member_types(&mut self, checked: &[Member]) {
        let types: HashMap<&str, &str> =
            checked.iter().filter_map(|m| Some((m.value.as_str(), m.r#type.as_deref()?))).collect();
        for change in &mut self.members {
            if let MembersChange::Add(list) | MembersChange::Set(list) = change {
                for m in list {
                    if let Some(t) = types.get(m.value.as_str()) {
                        m.r#type = Some((*t).to_owned());
                    }
                }
            }
        }
    }

    /// Members the fast path may add, to be checked against the store before the write (the
    /// general path checks what it computed instead: [`precompute`]).
    pub(crate) fn added_members(&self) -> Vec<Member> {
        let mut out = Vec::new();
        for change in &self.members {
            if let MembersChange::Add(m) | MembersChange::Set(m) = change {
                out.extend(m.iter().cloned());
            }
        }
        out
    }

    /// The change on the current resource: inside the store's write transaction, or before it
    /// ([`precompute`]). The general member path is [`precompute`]'s alone.
    pub(crate) fn apply(&self, schema: &ResourceSchema<'_>, current: &Resource) -> Result<Change, ScimError> {
        if self.whole.is_some() {
            return Err(ScimError::new(500, None, "the general member path is computed before the write"));
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
        // A key that names members in another spelling (`members[value eq "x"]`, `members.value`,
        // the Group URN's `…:Group:members`) is an operation on members too: the general path.
        if obj.keys().any(|k| !k.eq_ignore_ascii_case("members") && names_members(k)) {
            return Err(Generic);
        }
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

/// Whether a path names the Group's `members` (with or without the Group URN).
fn is_members(p: &scimgw_scim::filter::AttrPath) -> bool {
    p.name.eq_ignore_ascii_case("members") && p.urn.as_deref().is_none_or(|u| u.eq_ignore_ascii_case(GROUP_SCHEMA))
}

/// Whether a PATCH path (or a path-less value's key) names `members` in any form.
fn names_members(path: &str) -> bool {
    match parse_patch_path(path) {
        Ok(PatchPath::Attr(p) | PatchPath::ValuePath { path: p, .. }) => is_members(&p),
        Err(_) => false,
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

/// A PATCH's change computed before the write on the resource as it was at `version`: the
/// write must find the resource still at that version, or the change is computed again.
#[derive(Debug, Clone)]
pub(crate) struct Precomputed {
    pub(crate) version: i64,
    pub(crate) change: Change,
}

/// Operations above which a PATCH is computed before its write (see [`Plan::computed_first`]).
const INLINE_OPERATIONS: usize = 8;

impl Plan {
    /// Whether this PATCH is computed before its write, off the writer thread, rather than inside
    /// it: the general member path (its cost grows with the group's size), and any PATCH of more
    /// than [`INLINE_OPERATIONS`] operations (each may filter a list of up to
    /// `schema::MAX_VALUES` values, 1,000 operations at most). What IdPs send — a few operations,
    /// member changes as rows — stays inside the write, which costs no extra read.
    pub(crate) fn computed_first(&self) -> bool {
        self.whole.is_some() || self.body.as_ref().is_some_and(|b| b.operations.len() > INLINE_OPERATIONS)
    }
}

/// `plan` applied to the resource as it is now, on the store's blocking threads (never on
/// SQLite's writer thread, which serves every tenant); `Ok(None)` when the resource does not
/// exist. On the general member path, every member the result holds that the group did not hold
/// before is checked with [`check_exist`] and gets its stored `type`: whatever the operations'
/// shape (`add members[value eq "x"]` with a value, `replace members[…]`, a path-less key), no
/// member that names nothing, or another tenant's resource, is written.
pub(crate) async fn precompute(
    state: &web::Data<AppState>,
    tenant_id: &str,
    kind: scimgw_store::Kind,
    id: &str,
    plan: &Plan,
) -> Result<Option<Precomputed>, ApiError> {
    let general = plan.whole.is_some();
    let (st, tenant, rid, plan) = (state.clone(), tenant_id.to_owned(), id.to_owned(), plan.clone());
    // One job: the read (a group's members are as many rows as it has) and the engine's run.
    let computed = state
        .store
        .run_blocking(move |store| -> Result<Option<(i64, Change)>, ApiError> {
            let Some(current) = store.get(&tenant, kind, &rid, general)? else {
                return Ok(None);
            };
            let schema = st
                .registry
                .resource(kind.resource_type())
                .ok_or_else(|| ScimError::new(500, None, "a resource type is missing"))?;
            let change = match &plan.whole {
                Some(whole) => {
                    within_budget(whole, current.members.as_ref().map_or(0, Vec::len))?;
                    apply_whole(&schema, &current, whole)?
                }
                None => plan.apply(&schema, &current)?,
            };
            Ok(Some((current.version, change)))
        })
        .await??;
    let Some((version, mut change)) = computed else { return Ok(None) };
    if general {
        if let Change::Update { members, .. } = &mut change {
            for m in members.iter_mut() {
                if let MembersChange::Add(added) = m {
                    *added = check_exist(state, tenant_id, std::mem::take(added)).await?;
                }
            }
        }
    }
    Ok(Some(Precomputed { version, change }))
}

/// The most member comparisons one PATCH on the general path may cost: operations (each weighed
/// by the comparisons in its path's filter) times the group's members. 1,000 `sw` removals on
/// 10,000 members (10 million) took 0.8 s in a debug build; a filter of 256 comparisons on every
/// one of them would take minutes of a store thread that every tenant's reads share.
pub const MAX_MEMBER_COMPARISONS: usize = 20_000_000;

/// [`MAX_MEMBER_COMPARISONS`], checked before the engine runs: 400 `tooMany` naming the figures
/// and what to send instead.
fn within_budget(request: &PatchRequest, members: usize) -> Result<(), ScimError> {
    let weight: usize = request.operations.iter().map(|op| 1 + op.path.as_deref().map_or(0, comparisons)).sum();
    let cost = weight.saturating_mul(members.max(1));
    if cost > MAX_MEMBER_COMPARISONS {
        return Err(ScimError::new(
            400,
            Some(ScimType::TooMany),
            format!(
                "this PATCH would compare {cost} member values ({} operations with their filters, on a group of \
                 {members} members; at most {MAX_MEMBER_COMPARISONS}): send member changes as `add`/`remove` of \
                 `members` with the ids, or `remove` with `members[value eq \"id\"]`, which cost one row each",
                request.operations.len()
            ),
        ));
    }
    Ok(())
}

/// The comparisons in a path's filter, counted by their operators (an over-count is harmless).
fn comparisons(path: &str) -> usize {
    let lower = path.to_ascii_lowercase();
    [" eq ", " ne ", " co ", " sw ", " ew ", " gt ", " ge ", " lt ", " le ", " pr"]
        .iter()
        .map(|op| lower.matches(op).count())
        .sum()
}

/// The general path: the whole PATCH on the group with its full member list, then the
/// difference written back as row changes.
fn apply_whole(schema: &ResourceSchema<'_>, current: &Resource, request: &PatchRequest) -> Result<Change, ScimError> {
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
        // The type is the store's, filled in by `check_exist`.
        .map(|m| Member { value: m.value.clone(), r#type: None, display: None })
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
