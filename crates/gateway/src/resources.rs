//! The `/Users` and `/Groups` endpoints (RFC 7644 §3.2–§3.6): create, read, query, replace,
//! patch, delete, and the search at the root over both (`POST {base}/.search`). One set of
//! handlers serves both resource types.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use scimgw_delivery::targets::{TargetSet, plan_deliveries};
use scimgw_scim::filter::{AttrPath, Filter, PatchPath, parse_filter, parse_patch_path};
use scimgw_scim::messages::{
    ListResponse, Page, PatchRequest, SearchRequest, SortOrder, parse_integer_param, split_attribute_list,
};
use scimgw_scim::projection::Projection;
use scimgw_scim::resource::{check_immutable, validate_resource};
use scimgw_scim::schema::ResourceSchema;
use scimgw_scim::{ScimError, ScimType};
use scimgw_store::{Audit, Change, Enqueue, Kind, Member, MembersChange, NewResource, Query, QueryPage, Resource};
use serde_json::{Map, Value};

use crate::AppState;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::{Params, base_url, if_match, json_response, parse_etag, read_json};
use crate::{limits, members};

type Data = web::Data<AppState>;

fn schema(state: &AppState, kind: Kind) -> Result<ResourceSchema<'_>, ApiError> {
    state.registry.resource(kind.resource_type()).ok_or_else(|| {
        ApiError::Store(scimgw_store::StoreError::Internal(format!(
            "no {} resource type registered",
            kind.resource_type()
        )))
    })
}

/// The furthest a sorted search at the root may page (`startIndex + count - 1`). It reads that
/// many matches of each resource type, held in memory together, to merge them
/// (`Store::query_across`); beyond is a 400 `tooMany` (RFC 7644 §3.4.2.2). A search at the root
/// without `sortBy` pages without reading ahead and has no such limit, nor has a sorted search
/// of one type.
pub(crate) const MAX_SORTED_ROOT_WINDOW: u64 = 2_000;

/// What a query asks for, from the query string or a SearchRequest body.
struct QuerySpec {
    filter: Option<String>,
    attributes: Vec<String>,
    excluded: Vec<String>,
    sort_by: Option<String>,
    sort_order: Option<SortOrder>,
    start_index: Option<i64>,
    count: Option<i64>,
}

impl QuerySpec {
    /// From the query string of a `GET`.
    fn from_query(req: &HttpRequest) -> Result<Self, ApiError> {
        let params = Params::parse(req)?;
        let parse_int = |name: &str| params.get(name).map(|s| parse_integer_param(name, s)).transpose();
        Ok(Self {
            filter: params.get("filter").map(str::to_owned),
            attributes: params.get("attributes").map(split_attribute_list).unwrap_or_default(),
            excluded: params.get("excludedAttributes").map(split_attribute_list).unwrap_or_default(),
            sort_by: params.get("sortBy").map(str::to_owned),
            sort_order: params.get("sortOrder").map(SortOrder::parse).transpose()?,
            start_index: parse_int("startIndex")?,
            count: parse_int("count")?,
        })
    }

    /// From the SearchRequest body of a `POST …/.search`.
    async fn from_search(req: &HttpRequest, body: web::Payload, state: &AppState) -> Result<Self, ApiError> {
        let value = read_json(req, body, &state.config).await?;
        let sr = SearchRequest::from_json(&value)?;
        Ok(Self {
            filter: sr.filter,
            attributes: sr.attributes,
            excluded: sr.excluded_attributes,
            sort_by: sr.sort_by,
            sort_order: sr.sort_order,
            start_index: sr.start_index,
            count: sr.count,
        })
    }
}

pub(crate) async fn list(
    req: HttpRequest,
    principal: Principal,
    state: Data,
    kind: Kind,
) -> Result<HttpResponse, ApiError> {
    let spec = QuerySpec::from_query(&req)?;
    run_query(&req, &principal, &state, &[kind], spec).await
}

pub(crate) async fn search(
    req: HttpRequest,
    principal: Principal,
    state: Data,
    body: web::Payload,
    kind: Kind,
) -> Result<HttpResponse, ApiError> {
    let spec = QuerySpec::from_search(&req, body, &state).await?;
    run_query(&req, &principal, &state, &[kind], spec).await
}

/// `POST {base}/.search`: "a search request at the root of the service provider searches all
/// resource types" (RFC 7644 §3.4.3) — users, then groups, as one list.
///
/// The filter must fit at least one of the two types; a type it does not fit has no matches
/// (`userName eq "x"` finds no group). This is stricter than RFC 7644 §3.4.2.2's "treat the
/// attribute as if there is no attribute value" for a filter that mixes both types' attributes
/// (`userName eq "x" or displayName eq "G"` finds no group here). `sortBy` must name an attribute
/// of one of the types; resources of a type without it sort as missing it (last). Paging: see
/// `Store::query_across`, and [`MAX_SORTED_ROOT_WINDOW`].
pub(crate) async fn search_root(
    req: HttpRequest,
    principal: Principal,
    state: Data,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let spec = QuerySpec::from_search(&req, body, &state).await?;
    run_query(&req, &principal, &state, &[Kind::User, Kind::Group], spec).await
}

/// A list or search request checked against the resource types it is asked of: what
/// `GET /Users`, `POST /Groups/.search` and the search at the root share.
struct Plan {
    /// The types asked of, in list order, each with its part of the request.
    parts: Vec<KindPlan>,
    page: Page,
    descending: bool,
}

/// One resource type's part of a request.
struct KindPlan {
    kind: Kind,
    filter: Option<Filter>,
    /// `None` also when `sortBy` names no attribute of this type (its resources then sort as
    /// missing it).
    sort_by: Option<AttrPath>,
    projection: Projection,
    /// Groups carry their members, users their groups, only when the projection returns them.
    with_members: bool,
}

impl Plan {
    /// Checks `spec` against each of `kinds`, in the order a single type has always checked it:
    /// the filter (each of its tests must fit one of the types, see [`fits_some`]; it runs on
    /// each, an attribute a type lacks being absent there), the filter's size limits, `sortBy` (an attribute of at least one type), the
    /// projection.
    fn new(state: &AppState, spec: &QuerySpec, kinds: &[Kind]) -> Result<Self, ApiError> {
        let filter: Option<Filter> = match spec.filter.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(parse_filter(text).map_err(|e| e.into_filter_error())?),
        };
        let mut fitting = Vec::with_capacity(kinds.len());
        for &kind in kinds {
            fitting.push((kind, schema(state, kind)?));
        }
        // Each test of the filter must fit one of the types asked of, and the filter runs on
        // every type: an attribute a type lacks is absent there (RFC 7644 §3.4.2.2), so
        // `userName eq "x" or displayName eq "G"` at the root finds the user and the group (the
        // store lowers a test on an attribute a kind lacks to FALSE). For one type this is the
        // 400 it always was.
        if let Some(f) = &filter {
            let schemas: Vec<&ResourceSchema<'_>> = fitting.iter().map(|(_, s)| s).collect();
            fits_some(f, &schemas)?;
        }
        if let Some(f) = &filter {
            limits::check_filter(f)?;
        }
        let sort_by = sort_by_of(state, spec.sort_by.as_deref(), kinds)?;
        let mut parts = Vec::with_capacity(fitting.len());
        for (kind, schema) in fitting {
            let projection = Projection::parse(&schema, &spec.attributes, &spec.excluded)?;
            let own_sort_by = sort_by.as_ref().filter(|p| resolves(&schema, p)).cloned();
            let with_members = projection.returns(&schema, membership_attribute(kind));
            parts.push(KindPlan { kind, filter: filter.clone(), sort_by: own_sort_by, projection, with_members });
        }
        let page = Page::new(spec.start_index, spec.count, state.config.default_page_size, state.config.max_page_size);
        Ok(Self { parts, page, descending: spec.sort_order == Some(SortOrder::Descending) })
    }

    /// The store's query for one part.
    fn query<'a>(&'a self, part: &'a KindPlan, schema: &'a ResourceSchema<'a>) -> Query<'a> {
        Query {
            filter: part.filter.as_ref(),
            schema,
            sort_by: part.sort_by.as_ref(),
            descending: self.descending,
            offset: self.page.offset(),
            count: self.page.count,
            with_members: part.with_members,
        }
    }

    /// The ListResponse of a page: each resource projected as its own type asks.
    fn respond(&self, req: &HttpRequest, state: &AppState, found: QueryPage) -> Result<HttpResponse, ApiError> {
        let base = base_url(req, state);
        let mut views = Vec::with_capacity(self.parts.len());
        for part in &self.parts {
            views.push((part, schema(state, part.kind)?));
        }
        let mut resources = Vec::with_capacity(found.resources.len());
        for r in found.resources {
            let (part, schema) = views.iter().find(|(part, _)| part.kind == r.kind).ok_or_else(|| {
                ApiError::Store(scimgw_store::StoreError::Internal(format!(
                    "the store answered a {} to a query of other types",
                    r.kind.resource_type()
                )))
            })?;
            resources.push(Value::Object(part.projection.apply_owned(schema, r.into_scim(Some(&base)))));
        }
        json_response(req, StatusCode::OK, &ListResponse::new(resources, found.total, self.page.start_index))
    }
}

/// Whether every comparison, presence test and value filter of `filter` fits one of `schemas`:
/// the first one's error otherwise.
fn fits_some(filter: &Filter, schemas: &[&ResourceSchema<'_>]) -> Result<(), ScimError> {
    match filter {
        Filter::And(a, b) | Filter::Or(a, b) => {
            fits_some(a, schemas)?;
            fits_some(b, schemas)
        }
        Filter::Not(inner) => fits_some(inner, schemas),
        leaf => {
            let mut first = None;
            for schema in schemas {
                match leaf.validate(schema) {
                    Ok(()) => return Ok(()),
                    Err(e) => {
                        first.get_or_insert(e);
                    }
                }
            }
            first.map_or(Ok(()), Err)
        }
    }
}

/// `sortBy` as a path, when given: a 400 unless it names an attribute of one of `kinds`.
fn sort_by_of(state: &AppState, text: Option<&str>, kinds: &[Kind]) -> Result<Option<AttrPath>, ApiError> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else { return Ok(None) };
    if let Ok(PatchPath::Attr(path)) = parse_patch_path(text) {
        for &kind in kinds {
            if resolves(&schema(state, kind)?, &path) {
                return Ok(Some(path));
            }
        }
    }
    let types: Vec<&str> = kinds.iter().map(|k| k.resource_type()).collect();
    Err(ScimError::invalid_value(format!("sortBy \"{}\" is not an attribute of {}", clip(text), types.join(" or ")))
        .into())
}

fn resolves(schema: &ResourceSchema<'_>, path: &AttrPath) -> bool {
    schema.resolve(path.urn.as_deref(), &path.name, path.sub_attr.as_deref()).is_some()
}

async fn run_query(
    req: &HttpRequest,
    principal: &Principal,
    state: &Data,
    kinds: &[Kind],
    spec: QuerySpec,
) -> Result<HttpResponse, ApiError> {
    let plan = Plan::new(state, &spec, kinds)?;
    // The store merges sorted lists (and so reads ahead) when a page of several types is sorted.
    let window = plan.page.offset().saturating_add(plan.page.count);
    let merged = plan.parts.len() > 1 && plan.page.count > 0 && plan.parts.iter().any(|p| p.sort_by.is_some());
    if merged && window > MAX_SORTED_ROOT_WINDOW {
        return Err(ScimError::bad_request(
            ScimType::TooMany,
            format!(
                "a sorted search at the root reads the first startIndex+count-1 matches of each resource \
                 type to merge them, at most {MAX_SORTED_ROOT_WINDOW}; page further through /Users/.search \
                 and /Groups/.search, or without sortBy"
            ),
        )
        .into());
    }
    if merged
        && plan.parts.iter().any(|p| p.sort_by.as_ref().is_some_and(|path| path.name.eq_ignore_ascii_case("members")))
    {
        // The sort key of a group by `members` needs every member of every group read ahead.
        return Err(ScimError::invalid_value(
            "a search at the root cannot sort by members (it would read every member of every group); \
             sort /Groups/.search by members instead",
        )
        .into());
    }
    // Entra's and Okta's `userName eq "…"` before every create: one index probe.
    // A user's groups are one more index probe; a group's members may be many.
    let point = matches!(plan.parts.as_slice(), [p] if p.sort_by.is_none()
        && !(p.with_members && p.kind == Kind::Group)
        && p.filter.as_ref().is_some_and(|f| is_point_lookup(f, p.kind)));
    let plan = std::sync::Arc::new(plan);
    let (p, tenant) = (plan.clone(), principal.tenant_id.clone());
    let query = move |st: &AppState| -> Result<QueryPage, scimgw_store::StoreError> {
        let schemas = p.parts.iter().map(|part| schema_of(st, part.kind)).collect::<Result<Vec<_>, _>>()?;
        let queries: Vec<(Kind, Query<'_>)> =
            p.parts.iter().zip(&schemas).map(|(part, schema)| (part.kind, p.query(part, schema))).collect();
        st.store.query_across(&tenant, &queries)
    };
    let result = if point {
        let st = state.clone();
        crate::quick_read(state, move |_| query(&st)).await?
    } else {
        let st = state.clone();
        state.store.run_blocking(move |_| query(&st)).await??
    };
    plan.respond(req, state, result)
}

/// Whether a filter is an equality on an indexed identifier (`userName`, `externalId`, `id`, a
/// group's `displayName`): the identity providers' lookups before a create, answered by one
/// index probe, so cheap enough for [`crate::quick_read`].
fn is_point_lookup(filter: &Filter, kind: Kind) -> bool {
    use scimgw_scim::filter::{CompValue, CompareOp};
    let Filter::Compare { path, op: CompareOp::Eq, value: CompValue::Str(_) } = filter else { return false };
    if path.sub_attr.is_some()
        || path.urn.as_deref().is_some_and(|u| {
            !u.to_ascii_lowercase().ends_with(":core:2.0:user") && !u.to_ascii_lowercase().ends_with(":core:2.0:group")
        })
    {
        return false;
    }
    let name = path.name.as_str();
    name.eq_ignore_ascii_case("id")
        || name.eq_ignore_ascii_case("externalId")
        || (kind == Kind::User && name.eq_ignore_ascii_case("userName"))
        || (kind == Kind::Group && name.eq_ignore_ascii_case("displayName"))
}

/// The schema lookup inside a store job (which runs on the store's writer thread, so it cannot
/// borrow the handler's).
fn schema_in_store_job(state: &AppState, kind: Kind) -> Result<ResourceSchema<'_>, ScimError> {
    schema_of(state, kind).map_err(|e| ScimError::new(500, None, e.to_string()))
}

/// The schema lookup inside blocking closures, where an `ApiError` cannot be returned.
fn schema_of(state: &AppState, kind: Kind) -> Result<ResourceSchema<'_>, scimgw_store::StoreError> {
    state
        .registry
        .resource(kind.resource_type())
        .ok_or_else(|| scimgw_store::StoreError::Internal(format!("no {} resource type", kind.resource_type())))
}

pub(crate) async fn get(
    req: HttpRequest,
    principal: Principal,
    state: Data,
    id: web::Path<String>,
    kind: Kind,
) -> Result<HttpResponse, ApiError> {
    let id = resource_id(id, kind)?;
    let params = Params::parse(&req)?;
    let schema = schema(&state, kind)?;
    let projection = projection_from(&params, &schema)?;
    let with_members = projection.returns(&schema, membership_attribute(kind));
    let tenant = principal.tenant_id.clone();
    let found = {
        let id = id.clone();
        if with_members && kind == Kind::Group {
            // A group's members: as many rows as it has members, so off the worker thread.
            state.store.run_blocking(move |s| s.get(&tenant, kind, &id, true)).await??
        } else {
            // A user's groups: one more index probe.
            crate::quick_read(&state, move |store| store.get(&tenant, kind, &id, with_members)).await?
        }
    };
    let resource = found.ok_or_else(|| not_found(kind, &id))?;
    if let Some(inm) = req.headers().get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        // Weak comparison (RFC 7232 §3.2): `"3"` and `W/"3"` both name version 3.
        if inm.split(',').map(str::trim).any(|t| t == "*" || parse_etag(t) == Some(resource.version)) {
            return Ok(HttpResponse::NotModified().insert_header((header::ETAG, resource.etag())).finish());
        }
    }
    respond_with(&req, &state, &schema, &projection, resource, StatusCode::OK)
}

/// The attribute that holds a resource's membership rows: a group's `members`, a user's `groups`
/// (RFC 7643 §4.1.2, readOnly, computed from the groups' member rows).
fn membership_attribute(kind: Kind) -> &'static str {
    match kind {
        Kind::Group => "members",
        Kind::User => "groups",
    }
}

/// The audit event's "who": the request's key and id.
fn audit(req: &HttpRequest, principal: &Principal, operation: &'static str) -> Audit {
    use actix_web::HttpMessage;
    let request_id = req.extensions().get::<crate::telemetry::RequestId>().map(|r| r.0.clone());
    Audit { key_id: principal.key_id.clone(), request_id, operation }
}

pub(crate) async fn create(
    req: HttpRequest,
    principal: Principal,
    state: Data,
    body: web::Payload,
    kind: Kind,
) -> Result<HttpResponse, ApiError> {
    let params = Params::parse(&req)?;
    let value = read_json(&req, body, &state.config).await?;
    let schema = schema(&state, kind)?;
    let projection = projection_from(&params, &schema)?;
    let mut body = validate_resource(&schema, value)?;
    limits::check_indexed(kind, &body)?;
    let members = take_members(&mut body, kind)?;
    let members = members::check_exist(&state, &principal.tenant_id, members).await?;
    let outbox = deliveries_for(&state.targets.snapshot(), &principal.tenant_id, kind, &schema, &body, None)?;
    let queued = !outbox.is_empty();
    // Async: on SQLite the task waits for the group commit without holding a thread.
    let created = state
        .store
        .create_with_async(
            &principal.tenant_id,
            NewResource { kind, body, members },
            &outbox,
            Some(audit(&req, &principal, "create")),
        )
        .await?;
    if queued {
        // Only queued deliveries give the dispatcher work: a wake-up costs it a claim.
        state.wake.notify_one();
    }
    tracing::info!(resource.kind = kind.resource_type(), resource.id = %created.id, "created");
    // The store answers a create with the members as given; what each is called is read back.
    // A new user is in no group yet.
    let created = match (&created.members, kind) {
        (Some(members), Kind::Group) if !members.is_empty() => {
            let unread = Resource { members: None, ..created };
            reload_members_if_needed(&state, &principal, kind, &projection, &schema, unread).await?
        }
        (_, Kind::User) => Resource { members: Some(Vec::new()), ..created },
        _ => created,
    };
    let location = kind.location(&base_url(&req, &state), &created.id);
    let mut resp = respond_with(&req, &state, &schema, &projection, created, StatusCode::CREATED)?;
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

pub(crate) async fn replace(
    req: HttpRequest,
    principal: Principal,
    state: Data,
    id: web::Path<String>,
    body: web::Payload,
    kind: Kind,
) -> Result<HttpResponse, ApiError> {
    let id = resource_id(id, kind)?;
    let params = Params::parse(&req)?;
    let expected = if_match(&req)?;
    let value = read_json(&req, body, &state.config).await?;
    let schema = schema(&state, kind)?;
    let projection = projection_from(&params, &schema)?;
    let mut body = validate_resource(&schema, value)?;
    limits::check_indexed(kind, &body)?;
    let new_members = take_members(&mut body, kind)?;
    let new_members = members::check_exist(&state, &principal.tenant_id, new_members).await?;
    let targets = state.targets.snapshot();
    let load_members = kind == Kind::Group || needs_groups(&targets, &principal.tenant_id, kind);
    let (st2, tenant2) = (state.clone(), principal.tenant_id.clone());
    let updated = state
        .store
        .update_with_async(
            &principal.tenant_id,
            kind,
            &id,
            expected,
            load_members,
            Some(audit(&req, &principal, "replace")),
            move |current: &Resource| {
                let (schema, tenant) = (schema_in_store_job(&st2, kind)?, &tenant2);
                check_immutable(&schema, &current.body, &body)?;
                let same_members = match (&current.members, kind) {
                    (Some(old), Kind::Group) => members::same_set(old, &new_members),
                    _ => true,
                };
                if current.body == body && same_members {
                    return Ok((Change::Unchanged, Vec::new()));
                }
                let outbox = deliveries_for(&targets, tenant, kind, &schema, &body, Some(current))?;
                let members =
                    if kind == Kind::Group { vec![MembersChange::Set(new_members.clone())] } else { Vec::new() };
                Ok((Change::Update { body: body.clone(), members }, outbox))
            },
        )
        .await?;
    let updated = updated.ok_or_else(|| missing(&req, kind, &id))?;
    if updated.changed && has_targets(&state, &principal) {
        // Only a change writes outbox rows, and only for a tenant with targets: nothing to wake
        // the dispatcher for otherwise (a wake-up costs it a claim).
        state.wake.notify_one();
    }
    tracing::info!(resource.kind = kind.resource_type(), resource.id = %id, changed = updated.changed, "replaced");
    let resource = reload_members_if_needed(&state, &principal, kind, &projection, &schema, updated.resource).await?;
    respond_with(&req, &state, &schema, &projection, resource, StatusCode::OK)
}

pub(crate) async fn patch(
    req: HttpRequest,
    principal: Principal,
    state: Data,
    id: web::Path<String>,
    body: web::Payload,
    kind: Kind,
) -> Result<HttpResponse, ApiError> {
    let id = resource_id(id, kind)?;
    let params = Params::parse(&req)?;
    let expected = if_match(&req)?;
    let value = read_json(&req, body, &state.config).await?;
    let request = PatchRequest::from_json(&value)?;
    limits::check_patch_paths(&request)?;
    let schema = schema(&state, kind)?;
    let projection = projection_from(&params, &schema)?;
    let mut plan = match kind {
        Kind::User => members::Plan::body_only(request),
        Kind::Group => members::Plan::split(request),
    };
    let checked = members::check_exist(&state, &principal.tenant_id, plan.added_members()).await?;
    plan.set_member_types(&checked);

    let targets = state.targets.snapshot();
    let mut tries = 0;
    let updated = loop {
        // A heavy PATCH is computed before the write, off the writer thread; the write then takes
        // it only if the resource is still at the version it was computed on.
        let pre = if plan.computed_first() {
            match members::precompute(&state, &principal.tenant_id, kind, &id, &plan).await? {
                Some(pre) => Some(pre),
                None => return Err(missing(&req, kind, &id)),
            }
        } else {
            None
        };
        let lost = Arc::new(AtomicBool::new(false));
        let (st2, tenant2, plan2, targets2, lost2) =
            (state.clone(), principal.tenant_id.clone(), plan.clone(), targets.clone(), lost.clone());
        let updated = state
            .store
            .update_with_async(
                &principal.tenant_id,
                kind,
                &id,
                expected,
                needs_groups(&targets, &principal.tenant_id, kind),
                Some(audit(&req, &principal, "patch")),
                move |current: &Resource| {
                    let schema = schema_in_store_job(&st2, kind)?;
                    let change = match &pre {
                        Some(pre) if pre.version != current.version => {
                            lost2.store(true, Ordering::Relaxed);
                            return Ok((Change::Unchanged, Vec::new()));
                        }
                        Some(pre) => pre.change.clone(),
                        None => plan2.apply(&schema, current)?,
                    };
                    let outbox = match &change {
                        Change::Update { body, .. } => {
                            limits::check_indexed(kind, body)?;
                            deliveries_for(&targets2, &tenant2, kind, &schema, body, Some(current))?
                        }
                        Change::Unchanged => Vec::new(),
                    };
                    Ok((change, outbox))
                },
            )
            .await?;
        if !lost.load(Ordering::Relaxed) {
            break updated;
        }
        tries += 1;
        if tries == GENERAL_PATH_TRIES {
            return Err(ApiError::Scim(ScimError::new(
                503,
                None,
                format!("the resource changed {tries} times while this PATCH was being applied to it; retry later"),
            )));
        }
        tracing::debug!(tries, "the resource changed under its PATCH; computing again");
    };
    let updated = updated.ok_or_else(|| missing(&req, kind, &id))?;
    if updated.changed && has_targets(&state, &principal) {
        // Only a change writes outbox rows, and only for a tenant with targets: nothing to wake
        // the dispatcher for otherwise (a wake-up costs it a claim).
        state.wake.notify_one();
    }
    tracing::info!(resource.kind = kind.resource_type(), resource.id = %id, changed = updated.changed, "patched");
    if kind == Kind::Group && params.get("attributes").is_none() && params.get("excludedAttributes").is_none() {
        // Entra prefers 204 for group PATCHes, and a large group's member list should not be
        // sent back for every batch of members.
        return Ok(HttpResponse::NoContent().insert_header((header::ETAG, updated.resource.etag())).finish());
    }
    let resource = reload_members_if_needed(&state, &principal, kind, &projection, &schema, updated.resource).await?;
    respond_with(&req, &state, &schema, &projection, resource, StatusCode::OK)
}

/// How often a PATCH computed before its write (`Plan::computed_first`) is computed again when
/// the resource changed meanwhile, before the client is told to retry (503). Entra's user PATCHes
/// of more than 8 operations take that path; a user's version moves with the user's own changes
/// and when a group write adds it or removes it, so they rarely lose. Each try of the general member path is bounded by
/// `members::MAX_MEMBER_COMPARISONS`.
const GENERAL_PATH_TRIES: usize = 5;

pub(crate) async fn delete(
    req: HttpRequest,
    principal: Principal,
    state: Data,
    id: web::Path<String>,
    kind: Kind,
) -> Result<HttpResponse, ApiError> {
    let id = resource_id(id, kind)?;
    let expected = if_match(&req)?;
    let tenant = principal.tenant_id.clone();
    let rid = id.clone();
    let set = state.targets.snapshot();
    let held = routable(&set, &tenant)?;
    let of_kind = |k: Kind| -> Vec<Enqueue> {
        let loaded = set.of(&tenant).iter().filter(|t| t.handles(k)).map(|t| t.name());
        loaded.chain(held.iter().copied()).map(Enqueue::deliver).collect()
    };
    let mut outbox = of_kind(kind);
    if kind == Kind::Group {
        // Its members leave it: targets scoped by groups decide on each again.
        // Not read first: every target whose scope reads `groups` hears of it.
        outbox.extend(set.membership_routes(&tenant, None));
    }
    // A deleted user or group leaves the groups it was in: group targets must hear of it.
    let groups_outbox = of_kind(Kind::Group);
    let audit = audit(&req, &principal, "delete");
    let deleted = state
        .store
        .run_blocking(move |s| s.delete_with(&tenant, kind, &rid, expected, &outbox, &groups_outbox, Some(audit)))
        .await??;
    if !deleted {
        return Err(missing(&req, kind, &id));
    }
    if has_targets(&state, &principal) {
        state.wake.notify_one();
    }
    tracing::info!(resource.kind = kind.resource_type(), resource.id = %id, "deleted");
    Ok(HttpResponse::NoContent().finish())
}

/// Whether the tenant has any target, i.e. whether a change can have queued deliveries.
fn has_targets(state: &AppState, principal: &Principal) -> bool {
    let set = state.targets.snapshot();
    !set.of(&principal.tenant_id).is_empty() || !set.held(&principal.tenant_id).is_empty()
}

/// Groups returned after a write carry their members, users their groups, only when the
/// projection wants them; the store's update does not load them (nor names a create's), so read
/// them here.
async fn reload_members_if_needed(
    state: &Data,
    principal: &Principal,
    kind: Kind,
    projection: &Projection,
    schema: &ResourceSchema<'_>,
    resource: Resource,
) -> Result<Resource, ApiError> {
    if resource.members.is_some() || !projection.returns(schema, membership_attribute(kind)) {
        return Ok(resource);
    }
    if kind == Kind::User {
        // One index probe: inline on SQLite.
        let (tenant, id) = (principal.tenant_id.clone(), resource.id.clone());
        let groups = crate::quick_read(state, move |s| s.groups_of(&tenant, &id)).await?;
        return Ok(Resource { members: Some(groups), ..resource });
    }
    let tenant = principal.tenant_id.clone();
    let id = resource.id.clone();
    let fresh = state.store.run_blocking(move |s| s.get(&tenant, kind, &id, true)).await??;
    Ok(fresh.unwrap_or(resource))
}

fn respond_with(
    req: &HttpRequest,
    state: &AppState,
    schema: &ResourceSchema<'_>,
    projection: &Projection,
    resource: Resource,
    status: StatusCode,
) -> Result<HttpResponse, ApiError> {
    let base = base_url(req, state);
    let etag = resource.etag();
    // Moved, not copied, into the body: a group's members may be 100,000.
    let body = projection.apply_owned(schema, resource.into_scim(Some(&base)));
    let mut resp = json_response(req, status, &body)?;
    if let Ok(v) = HeaderValue::from_str(&etag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    Ok(resp)
}

fn projection_from(params: &Params, schema: &ResourceSchema<'_>) -> Result<Projection, ApiError> {
    let attributes = params.get("attributes").map(split_attribute_list).unwrap_or_default();
    let excluded = params.get("excludedAttributes").map(split_attribute_list).unwrap_or_default();
    Ok(Projection::parse(schema, &attributes, &excluded)?)
}

/// Moves a group's canonical `members` out of the body: they are stored as rows.
fn take_members(body: &mut Map<String, Value>, kind: Kind) -> Result<Vec<Member>, ApiError> {
    if kind != Kind::Group {
        return Ok(Vec::new());
    }
    match body.remove("members") {
        None => Ok(Vec::new()),
        Some(v) => members::parse_members(&v).map_err(ApiError::Scim),
    }
}

/// The deliveries a change to `body` asks for, after each in-scope target's rules (a refusal is
/// the request's 400). `current` is the resource before the change, when it exists: its id, and
/// a user's groups when they were loaded (for targets whose scope reads them). A group's change
/// also asks for the deliveries of the users it moves across scopes
/// (`TargetSet::membership_routes`).
fn deliveries_for(
    targets: &TargetSet,
    tenant_id: &str,
    kind: Kind,
    schema: &ResourceSchema<'_>,
    body: &Map<String, Value>,
    current: Option<&Resource>,
) -> Result<Vec<Enqueue>, ScimError> {
    let held = routable(targets, tenant_id)?;
    let loaded = targets.of(tenant_id);
    let mut out = match loaded.is_empty() {
        true => Vec::new(),
        false => {
            let mut resource = body.clone();
            if let Some(current) = current {
                resource.insert("id".into(), Value::String(current.id.clone()));
                if let Some(groups) = current.groups_json(None) {
                    resource.insert("groups".into(), groups);
                }
            }
            plan_deliveries(loaded, kind, &resource, schema)?
        }
    };
    out.extend(held.into_iter().map(Enqueue::deliver));
    if kind == Kind::Group {
        // The group as the routes need it: its id, its names before and after the change.
        let name = |b: &Map<String, Value>| b.get("displayName").and_then(Value::as_str).map(str::to_owned);
        let names: Vec<String> = name(body).into_iter().chain(current.and_then(|c| name(&c.body))).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        out.extend(targets.membership_routes(tenant_id, Some((current.map(|c| c.id.as_str()), &names))));
    }
    Ok(out)
}

/// Whether a user's change must read the user's groups: a target of the tenant scopes by them.
fn needs_groups(targets: &TargetSet, tenant_id: &str, kind: Kind) -> bool {
    kind == Kind::User && targets.reads_groups(tenant_id)
}

/// The tenant's held targets (not loaded: their deliveries wait, see `TargetSet::held`), or 503
/// when its targets file could not be read at all: with no target names known, a change could
/// not be queued for them and would be lost to them. The detail names no path or problem (the
/// client is the IdP, not the gateway's admin); the log and `scimgw status` do.
fn routable<'s>(targets: &'s TargetSet, tenant_id: &str) -> Result<Vec<&'s str>, ScimError> {
    if targets.unreadable(tenant_id).is_some() {
        return Err(ScimError::new(
            503,
            None,
            "the gateway cannot read this tenant's targets file, so a change could not be routed to its \
             targets; its administrator sees why in the gateway's log and `scimgw status`. Retry later",
        ));
    }
    Ok(targets.held(tenant_id))
}

/// The id from the URL. One with a NUL names no resource (ids are UUIDs), and PostgreSQL could
/// not even compare it: 404 without asking the store.
fn resource_id(id: web::Path<String>, kind: Kind) -> Result<String, ApiError> {
    let id = id.into_inner();
    if id.contains('\0') {
        return Err(not_found(kind, &id.replace('\0', "\\0")));
    }
    Ok(id)
}

/// The answer to a write of a resource that does not exist: 404, or 412 when the request was
/// conditional — an `If-Match` cannot match a resource that is not there (RFC 9110 §13.1.1), and
/// the client learns that it lost a race (a concurrent DELETE) rather than that it used a wrong id.
fn missing(req: &HttpRequest, kind: Kind, id: &str) -> ApiError {
    if req.headers().contains_key(actix_web::http::header::IF_MATCH) {
        return ApiError::Scim(ScimError::new(
            412,
            None,
            format!("{} {} does not exist (any more), so If-Match cannot match", kind.resource_type(), clip(id)),
        ));
    }
    not_found(kind, id)
}

fn not_found(kind: Kind, id: &str) -> ApiError {
    ApiError::Scim(ScimError::not_found(format!("{} {} not found", kind.resource_type(), clip(id))))
}

fn clip(s: &str) -> String {
    if s.chars().count() <= 64 { s.to_owned() } else { format!("{}…", s.chars().take(64).collect::<String>()) }
}
