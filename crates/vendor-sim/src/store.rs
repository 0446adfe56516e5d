//! The in-memory store and the SCIM operations on it: create, read, query, replace, patch,
//! delete. Validation and filters come from `scimgw-scim`, so the simulator is as strict as the
//! protocol core there; PATCH is applied by the simulator's own [`crate::patch`], never by the
//! core's engine, so that the gateway's PATCH bugs are not shared by the app it is tested against.
//! The profile adds the app's own rules on top.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::SystemTime;

use scimgw_scim::ScimError;
use scimgw_scim::filter::{CompValue, CompareOp, Filter, PatchPath, parse_filter, parse_patch_path};
use scimgw_scim::messages::{ListResponse, Page, split_attribute_list};
use scimgw_scim::projection::Projection;
use scimgw_scim::resource::{check_immutable, validate_resource};
use scimgw_scim::schema::{Registry, ResourceSchema};
use scimgw_scim::value::get_ci;
use serde_json::{Map, Value, json};

use crate::log::rfc3339;
use crate::patch;
use crate::profile::{Kind, Profile, Write};

/// What the operations need besides the data: the schemas, the app's rules, the URL prefix of
/// `meta.location`.
pub(crate) struct Ctx<'a> {
    pub registry: &'a Registry,
    pub profile: &'a dyn Profile,
    /// `http://127.0.0.1:<port>/scim/v2`
    pub base_url: &'a str,
}

impl<'a> Ctx<'a> {
    fn schema(&self, kind: Kind) -> Result<ResourceSchema<'a>, ScimError> {
        self.registry
            .resource(kind.resource_type())
            .ok_or_else(|| ScimError::new(500, None, format!("vendor-sim: no {} schema", kind.resource_type())))
    }
}

/// The query parameters of a list or a read, as sent.
#[derive(Debug, Default, Clone)]
pub(crate) struct QuerySpec {
    pub filter: Option<String>,
    pub attributes: Option<String>,
    pub excluded_attributes: Option<String>,
    pub start_index: Option<String>,
    pub count: Option<String>,
}

/// One stored resource: its canonical attributes and its rendered form (with `id` and `meta`),
/// kept together so filters run on the rendered form without re-rendering.
#[derive(Debug, Clone)]
struct Stored {
    id: String,
    attrs: Map<String, Value>,
    rendered: Value,
    created: String,
    version: u64,
}

/// The resources of one type, in creation order.
#[derive(Debug, Default)]
struct Collection {
    items: BTreeMap<u64, Stored>,
    by_id: HashMap<String, u64>,
    /// (top-level attribute, string value), both lowercased → the resources holding it: the
    /// candidates of an `attr eq "value"` filter and of a uniqueness check, which the filter then
    /// decides exactly. Without it every lookup scanned the app, and a 100k-user run was quadratic.
    by_value: HashMap<(String, String), BTreeSet<u64>>,
    next: u64,
}

/// The (attribute, value) keys of a rendered resource's string attributes at the top level and
/// in its extensions (`urn:…:employeeNumber`).
fn value_keys(rendered: &Value) -> Vec<(String, String)> {
    let Some(o) = rendered.as_object() else { return Vec::new() };
    let mut keys = Vec::new();
    for (k, v) in o {
        match v {
            Value::String(s) => keys.push((k.to_ascii_lowercase(), s.to_lowercase())),
            Value::Object(ext) if k.to_ascii_lowercase().starts_with("urn:") => {
                for (sub, v) in ext {
                    if let Some(s) = v.as_str() {
                        keys.push((format!("{k}:{sub}").to_ascii_lowercase(), s.to_lowercase()));
                    }
                }
            }
            _ => {}
        }
    }
    keys
}

impl Collection {
    fn index(&mut self, seq: u64, rendered: &Value) {
        for key in value_keys(rendered) {
            self.by_value.entry(key).or_default().insert(seq);
        }
    }

    fn unindex(&mut self, seq: u64, rendered: &Value) {
        for key in value_keys(rendered) {
            if let Some(set) = self.by_value.get_mut(&key) {
                set.remove(&seq);
                if set.is_empty() {
                    self.by_value.remove(&key);
                }
            }
        }
    }

    /// The resources a filter can match, in creation order: for `attr eq "value"` on a top-level
    /// attribute, those the index holds; otherwise all of them.
    fn candidates<'a>(&'a self, filter: Option<&Filter>) -> Box<dyn Iterator<Item = &'a Stored> + 'a> {
        if let Some(Filter::Compare { path, op: CompareOp::Eq, value: CompValue::Str(v) }) = filter {
            if path.sub_attr.is_none() {
                let name = match &path.urn {
                    // A core attribute named with its schema's URN is still a top-level one.
                    Some(urn) if !urn.to_ascii_lowercase().contains(":core:2.0:") => {
                        format!("{urn}:{}", path.name).to_ascii_lowercase()
                    }
                    _ => path.name.to_ascii_lowercase(),
                };
                let key = (name, v.to_lowercase());
                let seqs: Vec<u64> = self.by_value.get(&key).map(|s| s.iter().copied().collect()).unwrap_or_default();
                return Box::new(seqs.into_iter().filter_map(move |seq| self.items.get(&seq)));
            }
        }
        Box::new(self.items.values())
    }

    /// Replaces a resource's rendering, keeping the index true.
    fn set_rendered(&mut self, id: &str, rendered: Value) {
        let Some(&seq) = self.by_id.get(id) else { return };
        let old = self.items.get(&seq).map(|s| s.rendered.clone());
        if let Some(old) = old {
            self.unindex(seq, &old);
        }
        self.index(seq, &rendered);
        if let Some(stored) = self.items.get_mut(&seq) {
            stored.rendered = rendered;
        }
    }

    fn get(&self, id: &str) -> Option<&Stored> {
        self.by_id.get(id).and_then(|seq| self.items.get(seq))
    }

    fn get_mut(&mut self, id: &str) -> Option<&mut Stored> {
        self.by_id.get(id).and_then(|seq| self.items.get_mut(seq))
    }

    fn insert(&mut self, stored: Stored) {
        self.next += 1;
        self.by_id.insert(stored.id.clone(), self.next);
        self.index(self.next, &stored.rendered);
        self.items.insert(self.next, stored);
    }

    fn remove(&mut self, id: &str) -> Option<Stored> {
        let seq = self.by_id.remove(id)?;
        let stored = self.items.remove(&seq)?;
        self.unindex(seq, &stored.rendered);
        Some(stored)
    }
}

/// Every user and group of the simulated app.
#[derive(Debug, Default)]
pub(crate) struct Store {
    users: Collection,
    groups: Collection,
}

fn not_found(kind: Kind) -> ScimError {
    ScimError::not_found(format!("{} not found", kind.resource_type()))
}

impl Store {
    fn coll(&self, kind: Kind) -> &Collection {
        match kind {
            Kind::User => &self.users,
            Kind::Group => &self.groups,
        }
    }

    fn coll_mut(&mut self, kind: Kind) -> &mut Collection {
        match kind {
            Kind::User => &mut self.users,
            Kind::Group => &mut self.groups,
        }
    }

    /// Every resource of `kind`, rendered, in creation order.
    pub(crate) fn snapshot(&self, kind: Kind) -> Vec<Value> {
        self.coll(kind).items.values().map(|s| s.rendered.clone()).collect()
    }

    /// One resource, rendered.
    pub(crate) fn find(&self, kind: Kind, id: &str) -> Option<Value> {
        self.coll(kind).get(id).map(|s| s.rendered.clone())
    }

    /// `POST`: validates, applies the app's rules, stores. `wanted_id` lets a pre-seeded resource
    /// keep a known id.
    pub(crate) fn create(
        &mut self,
        ctx: &Ctx<'_>,
        kind: Kind,
        body: Value,
        wanted_id: Option<String>,
    ) -> Result<Value, ScimError> {
        let schema = ctx.schema(kind)?;
        let body = ctx.profile.read_body(kind, body, Write::Create)?;
        let attrs = validate_resource(&schema, body)?;
        let attrs = self.prepare(ctx, &schema, kind, attrs, Write::Create, None)?;
        let id = wanted_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        if self.coll(kind).get(&id).is_some() {
            return Err(ScimError::uniqueness(format!("id is already in use by another {}", kind.resource_type())));
        }
        let now = rfc3339(SystemTime::now());
        let mut stored = Stored { id: id.clone(), attrs, rendered: Value::Null, created: now.clone(), version: 1 };
        stored.rendered = render(ctx, kind, &stored, &now);
        let out = stored.rendered.clone();
        self.coll_mut(kind).insert(stored);
        Ok(out)
    }

    /// `GET /<type>/<id>` with `attributes` / `excludedAttributes`.
    pub(crate) fn get(&self, ctx: &Ctx<'_>, kind: Kind, id: &str, q: &QuerySpec) -> Result<Value, ScimError> {
        let schema = ctx.schema(kind)?;
        let projection = projection(&schema, q)?;
        let stored = self.coll(kind).get(id).ok_or_else(|| not_found(kind))?;
        Ok(project(&schema, &projection, &stored.rendered))
    }

    /// `GET /<type>?filter=…&startIndex=…&count=…`.
    pub(crate) fn query(&self, ctx: &Ctx<'_>, kind: Kind, q: &QuerySpec) -> Result<Value, ScimError> {
        let schema = ctx.schema(kind)?;
        let filter: Option<Filter> = match q.filter.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => {
                let f = parse_filter(text).map_err(|e| e.into_filter_error())?;
                f.validate(&schema)?;
                ctx.profile.check_filter(kind, &f)?;
                Some(f)
            }
        };
        let max = ctx.profile.max_page_size();
        let page = Page::from_query(q.start_index.as_deref(), q.count.as_deref(), max, max)?;
        let projection = projection(&schema, q)?;
        let matched: Vec<&Value> = self
            .coll(kind)
            .candidates(filter.as_ref())
            .map(|s| &s.rendered)
            .filter(|r| filter.as_ref().is_none_or(|f| f.matches(r, &schema)))
            .collect();
        let total = matched.len() as u64;
        let page_items: Vec<Value> = matched
            .into_iter()
            .skip(usize::try_from(page.offset()).unwrap_or(usize::MAX))
            .take(usize::try_from(page.count).unwrap_or(usize::MAX))
            .map(|r| project(&schema, &projection, r))
            .collect();
        serde_json::to_value(ListResponse::new(page_items, total, page.start_index))
            .map_err(|e| ScimError::new(500, None, format!("vendor-sim: rendering a list: {e}")))
    }

    /// `PUT`: the body replaces every attribute; `id`, `meta.created` stay.
    pub(crate) fn replace(&mut self, ctx: &Ctx<'_>, kind: Kind, id: &str, body: Value) -> Result<Value, ScimError> {
        let schema = ctx.schema(kind)?;
        let previous = self.coll(kind).get(id).ok_or_else(|| not_found(kind))?.attrs.clone();
        let body = ctx.profile.read_body(kind, body, Write::Replace { previous: &previous })?;
        let attrs = validate_resource(&schema, body)?;
        check_immutable(&schema, &previous, &attrs)?;
        let attrs = self.prepare(ctx, &schema, kind, attrs, Write::Replace { previous: &previous }, Some(id))?;
        Ok(self.update(ctx, kind, id, attrs))
    }

    /// `PATCH`, applied by the simulator's own applier ([`crate::patch`]) after the profile has
    /// read the body, with the profile's say on every path. A PATCH that changes nothing leaves
    /// the version alone.
    pub(crate) fn patch(&mut self, ctx: &Ctx<'_>, kind: Kind, id: &str, body: &Value) -> Result<Value, ScimError> {
        let schema = ctx.schema(kind)?;
        let stored = self.coll(kind).get(id).ok_or_else(|| not_found(kind))?;
        let body = ctx.profile.read_body(kind, body.clone(), Write::Patch { previous: &stored.attrs })?;
        let check = |target: &patch::PatchTarget<'_>| ctx.profile.check_patch_target(kind, target);
        let outcome = patch::apply(&schema, &stored.attrs, &body, &check)?;
        if !outcome.changed {
            return Ok(stored.rendered.clone());
        }
        let previous = stored.attrs.clone();
        let attrs =
            self.prepare(ctx, &schema, kind, outcome.resource, Write::Patch { previous: &previous }, Some(id))?;
        Ok(self.update(ctx, kind, id, attrs))
    }

    /// `DELETE`. A deleted user leaves every group it was a member of.
    pub(crate) fn delete(&mut self, ctx: &Ctx<'_>, kind: Kind, id: &str) -> Result<(), ScimError> {
        self.coll_mut(kind).remove(id).ok_or_else(|| not_found(kind))?;
        let holding: Vec<String> = self
            .groups
            .items
            .values()
            .filter(|g| member_values(&g.attrs).any(|v| v == id))
            .map(|g| g.id.clone())
            .collect();
        for gid in holding {
            let Some(group) = self.groups.get(&gid) else { continue };
            let mut attrs = group.attrs.clone();
            if let Some(Value::Array(members)) = attrs.get_mut("members") {
                members.retain(|m| m.get("value").and_then(Value::as_str) != Some(id));
                if members.is_empty() {
                    attrs.remove("members");
                }
            }
            self.update(ctx, Kind::Group, &gid, attrs);
        }
        Ok(())
    }

    /// Stores new attributes for an existing resource: bumps the version and `lastModified`.
    fn update(&mut self, ctx: &Ctx<'_>, kind: Kind, id: &str, attrs: Map<String, Value>) -> Value {
        let Some(stored) = self.coll_mut(kind).get_mut(id) else { return Value::Null };
        stored.attrs = attrs;
        stored.version += 1;
        let now = rfc3339(SystemTime::now());
        let rendered = render(ctx, kind, stored, &now);
        self.coll_mut(kind).set_rendered(id, rendered.clone());
        rendered
    }

    /// The checks every write shares, after schema validation: accepted extensions, the app's
    /// rules, uniqueness, group members that exist; then the app's transformation.
    fn prepare(
        &self,
        ctx: &Ctx<'_>,
        schema: &ResourceSchema<'_>,
        kind: Kind,
        attrs: Map<String, Value>,
        write: Write<'_>,
        own_id: Option<&str>,
    ) -> Result<Map<String, Value>, ScimError> {
        check_extensions(ctx, schema, kind, &attrs)?;
        match kind {
            Kind::User => ctx.profile.validate_user(&attrs, write)?,
            Kind::Group => {
                ctx.profile.validate_group(&attrs, write)?;
                self.check_members(&attrs, own_id)?;
            }
        }
        self.check_unique(ctx, schema, kind, &attrs, own_id)?;
        Ok(match kind {
            Kind::User => ctx.profile.transform_user(attrs, write),
            Kind::Group => attrs,
        })
    }

    fn check_unique(
        &self,
        ctx: &Ctx<'_>,
        schema: &ResourceSchema<'_>,
        kind: Kind,
        attrs: &Map<String, Value>,
        own_id: Option<&str>,
    ) -> Result<(), ScimError> {
        for path_text in ctx.profile.unique_attributes(kind) {
            // A profile names plain attribute paths; anything else is a profile bug, caught by its tests.
            let Ok(PatchPath::Attr(path)) = parse_patch_path(&path_text) else { continue };
            let Some(value) = value_at(schema, attrs, &path) else { continue };
            let filter = Filter::compare(path, CompareOp::Eq, value);
            let clash = self
                .coll(kind)
                .candidates(Some(&filter))
                .filter(|s| Some(s.id.as_str()) != own_id)
                .any(|s| filter.matches(&s.rendered, schema));
            if clash {
                return Err(ScimError::uniqueness(format!(
                    "{path_text} is already in use by another {}",
                    kind.resource_type()
                )));
            }
        }
        Ok(())
    }

    /// A strict app refuses members it does not know: a gateway that sends its own ids instead of
    /// the app's is caught here.
    fn check_members(&self, attrs: &Map<String, Value>, own_id: Option<&str>) -> Result<(), ScimError> {
        for (i, value) in member_values(attrs).enumerate() {
            let known = self.users.get(value).is_some() || (self.groups.get(value).is_some() && Some(value) != own_id);
            if !known {
                return Err(ScimError::invalid_value(format!(
                    "members[{i}].value does not name a user or group of this app"
                )));
            }
        }
        Ok(())
    }

    /// Empties the store.
    pub(crate) fn clear(&mut self) {
        *self = Store::default();
    }
}

fn member_values(attrs: &Map<String, Value>) -> impl Iterator<Item = &str> {
    attrs
        .get("members")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("value").and_then(Value::as_str))
}

/// Refuses data under an extension the app does not accept. The canonical `schemas` lists exactly
/// the extensions that hold data.
fn check_extensions(
    ctx: &Ctx<'_>,
    schema: &ResourceSchema<'_>,
    kind: Kind,
    attrs: &Map<String, Value>,
) -> Result<(), ScimError> {
    let accepted = ctx.profile.accepted_extensions(kind);
    let declared = attrs.get("schemas").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str);
    for urn in declared {
        if !schema.core.id.eq_ignore_ascii_case(urn) && !accepted.iter().any(|a| a.eq_ignore_ascii_case(urn)) {
            return Err(ScimError::invalid_value(format!(
                "schema extension {urn} is not supported by this app ({} profile)",
                ctx.profile.name()
            )));
        }
    }
    Ok(())
}

/// The scalar at a plain attribute path of a canonical resource, as a filter literal.
fn value_at(
    schema: &ResourceSchema<'_>,
    attrs: &Map<String, Value>,
    path: &scimgw_scim::filter::AttrPath,
) -> Option<CompValue> {
    let container = match path.urn.as_deref() {
        Some(urn) if !schema.core.id.eq_ignore_ascii_case(urn) => get_ci(attrs, urn)?.as_object()?,
        _ => attrs,
    };
    let mut v = get_ci(container, &path.name)?;
    if let Some(sub) = &path.sub_attr {
        v = get_ci(v.as_object()?, sub)?;
    }
    match v {
        Value::String(s) => Some(CompValue::Str(s.clone())),
        Value::Bool(b) => Some(CompValue::Bool(*b)),
        Value::Number(n) => Some(CompValue::Number(n.clone())),
        _ => None,
    }
}

fn projection(schema: &ResourceSchema<'_>, q: &QuerySpec) -> Result<Projection, ScimError> {
    let list = |s: &Option<String>| s.as_deref().map(split_attribute_list).unwrap_or_default();
    Projection::parse(schema, &list(&q.attributes), &list(&q.excluded_attributes))
}

fn project(schema: &ResourceSchema<'_>, projection: &Projection, rendered: &Value) -> Value {
    match rendered {
        Value::Object(obj) if !projection.is_default() => Value::Object(projection.apply(schema, obj)),
        other => other.clone(),
    }
}

/// The resource as the app returns it: canonical attributes plus `id` and `meta`.
fn render(ctx: &Ctx<'_>, kind: Kind, stored: &Stored, last_modified: &str) -> Value {
    let mut out = Map::with_capacity(stored.attrs.len() + 2);
    out.insert("id".into(), Value::String(stored.id.clone()));
    out.extend(stored.attrs.iter().map(|(k, v)| (k.clone(), v.clone())));
    out.insert(
        "meta".into(),
        json!({
            "resourceType": kind.resource_type(),
            "created": stored.created,
            "lastModified": last_modified,
            "version": format!("W/\"{}\"", stored.version),
            "location": format!("{}/{}/{}", ctx.base_url, kind.endpoint(), stored.id),
        }),
    );
    Value::Object(out)
}
