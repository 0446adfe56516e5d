//! List queries: filter, sort and paginate in SQL when the filter lowers exactly, else in Rust; totals exact either way.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::{Map, Value};
use tracing::instrument;

use scimgw_scim::filter::{AttrPath, Filter};
use scimgw_scim::schema::{AttrType, Location, ResourceSchema};
use scimgw_scim::value::get_ci;

use crate::connection::{AnyConnection, on_inner, read_tx};
use crate::error::StoreError;
use crate::lower::{Columns, Field, Lowered, TextCol, TimeCol, field, lower, parse_datetime, to_sql};
use crate::members;
use crate::models::resource::ResourceRow;
use crate::resource::{Kind, Resource};
use crate::resources::{to_resource, with_table};
use crate::store::Store;

/// Rows fetched per round trip when the filter is evaluated in Rust.
const SCAN_BATCH: i64 = 500;

/// A list request, as the gateway parsed it.
#[derive(Debug, Clone)]
pub struct Query<'a> {
    /// The filter, already validated against `schema`.
    pub filter: Option<&'a Filter>,
    /// The resource type's schemas (for the evaluator and for attribute characteristics).
    pub schema: &'a ResourceSchema<'a>,
    /// The attribute to sort by; `None` sorts by creation (stable across pages).
    pub sort_by: Option<&'a AttrPath>,
    /// Sort descending (missing values still come last).
    pub descending: bool,
    /// How many matches to skip (0-based; SCIM's `startIndex - 1`).
    pub offset: u64,
    /// How many to return at most; 0 returns only the total.
    pub count: u64,
    /// Load the membership rows of the resources returned: groups' members, users' groups.
    pub with_members: bool,
}

impl<'a> Query<'a> {
    /// Only how many resources match `filter` (`count` 0: no page is read).
    pub fn count_only(filter: Option<&'a Filter>, schema: &'a ResourceSchema<'a>) -> Self {
        Query { filter, schema, sort_by: None, descending: false, offset: 0, count: 0, with_members: false }
    }
}

/// One page of a list: the exact number of matches, and the resources of the page.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryPage {
    /// How many resources match, in all.
    pub total: u64,
    /// The page, in order.
    pub resources: Vec<Resource>,
}

/// A sort SQL can do on an indexed column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SqlSort {
    /// `(created_us, id)`.
    Created,
    /// A text column; `nullable` puts missing values last.
    Text { col: TextCol, nullable: bool },
    /// A timestamp column.
    Time(TimeCol),
}

fn sql_sort(path: Option<&AttrPath>, schema: &ResourceSchema<'_>, kind: Kind) -> Option<SqlSort> {
    let Some(path) = path else {
        return Some(SqlSort::Created);
    };
    match field(path, schema, kind)? {
        Field::Text(col) => {
            let nullable = match col {
                TextCol::Id | TextCol::UserName | TextCol::UserNameCi => false,
                TextCol::DisplayName | TextCol::DisplayNameCi => kind == Kind::User,
                TextCol::ExternalId => true,
            };
            Some(SqlSort::Text { col, nullable })
        }
        Field::Time(col) => Some(SqlSort::Time(col)),
        // Booleans sort in Rust: there is no index worth it.
        Field::Active => None,
    }
}

impl Store {
    /// Lists the resources of `kind` in this tenant that match `q.filter`, sorted and paged.
    ///
    /// When the filter lowers to SQL exactly and the sort is by creation or an indexed attribute,
    /// SQL counts, sorts and pages. Otherwise the lowered condition (a superset) selects candidate
    /// rows, the full filter is evaluated on each with `Filter::matches`, and sorting and paging
    /// happen in Rust. Both paths give the same answer (the property tests check it); the order is
    /// always total: the sort key with missing values last, then creation time, then id.
    #[instrument(skip_all, fields(tenant.id = %tenant_id, resource.kind = kind.resource_type()))]
    pub fn query(&self, tenant_id: &str, kind: Kind, q: &Query<'_>) -> Result<QueryPage, StoreError> {
        let lowered = q.filter.map_or_else(Lowered::all, |f| lower(f, q.schema, kind));
        let sort = sql_sort(q.sort_by, q.schema, kind);
        let mut conn = self.conn()?;
        // A user's groups are one more probe for a short page; a group's members may be many.
        let short_page_likely = lowered.exact
            && q.filter.is_some()
            && q.offset == 0
            && q.count > 0
            && !(q.with_members && kind == Kind::Group);
        if let (Some(sort), true) = (sort, short_page_likely) {
            // A filtered first page is usually short (the IdPs' `userName eq` before a create
            // finds 0 or 1): one statement, and a page that is not full is the whole answer, so
            // no count and no transaction (on PostgreSQL 2 round trips instead of 4). A full page
            // is read again below with the count, in one snapshot.
            let rows = page_rows(&mut conn, tenant_id, kind, q, &lowered, sort)?;
            if (rows.len() as u64) < q.count {
                let mut resources = rows.into_iter().map(|r| to_resource(kind, r)).collect::<Result<Vec<_>, _>>()?;
                if q.with_members && !resources.is_empty() {
                    attach_members(&mut conn, tenant_id, &mut resources, &[kind])?;
                }
                return Ok(QueryPage { total: resources.len() as u64, resources });
            }
        }
        read_tx(&mut conn, |c| match sort {
            Some(sort) if lowered.exact => in_sql(c, tenant_id, kind, q, &lowered, sort),
            _ => {
                tracing::debug!(exact = lowered.exact, "evaluating the filter in Rust");
                in_rust(c, tenant_id, kind, q, &lowered)
            }
        })
    }
}

impl Store {
    /// Calls `each` with every page (of `page`, at least 1) of a tenant's resources of `kind`
    /// matching `filter`, in creation order, with their membership rows when `with_members`;
    /// returns how many there were. Each page is its own read: a resource created or deleted
    /// during the walk may shift the pages by one.
    #[allow(clippy::too_many_arguments)]
    pub fn for_each_page<E: From<StoreError>>(
        &self,
        tenant_id: &str,
        kind: Kind,
        schema: &ResourceSchema<'_>,
        filter: Option<&Filter>,
        with_members: bool,
        page: u64,
        mut each: impl FnMut(Vec<Resource>) -> Result<(), E>,
    ) -> Result<u64, E> {
        let page = page.max(1);
        let mut offset = 0;
        loop {
            let q = Query { filter, schema, sort_by: None, descending: false, offset, count: page, with_members };
            let found = self.query(tenant_id, kind, &q)?;
            let n = found.resources.len() as u64;
            each(found.resources)?;
            offset += n;
            if n < page {
                return Ok(offset);
            }
        }
    }
}

impl Store {
    /// Lists the matches of several kinds as one list: the search at the root of the service
    /// provider (RFC 7644 §3.4.3), over users and groups.
    ///
    /// Each part is the query [`Store::query`] would be given for its kind alone (one part is
    /// exactly that query). `offset`, `count` and `descending` are the same in every part (the
    /// gateway builds them all from one request) and page and order the list as a whole. No more
    /// is read than the page needs:
    ///
    /// - Without a sort (no part has `sort_by`), the kinds follow one another in the order given,
    ///   each in its own order (creation). The totals of the kinds before one say which slice of
    ///   it the page needs, and only that slice is read (`count = 0` for a kind the page does not
    ///   reach: its total only).
    /// - With a sort, the first `offset + count` matches of each kind are read in the kind's own
    ///   sorted order and merged in that same order — the sort key with missing values last (a
    ///   kind whose part has no `sort_by`, the attribute not being one of its own, misses it
    ///   everywhere), then creation time, then id — so the page is what one sorted list of all
    ///   of them would give. The caller bounds `offset + count`. Groups' members are loaded for
    ///   the page only.
    ///
    /// Each kind is read in a snapshot of its own, so the total is not one snapshot's: a write
    /// between the reads can be counted by one and missed by the other, as between two pages.
    #[instrument(skip_all, fields(tenant.id = %tenant_id))]
    pub fn query_across(&self, tenant_id: &str, parts: &[(Kind, Query<'_>)]) -> Result<QueryPage, StoreError> {
        let first = match parts {
            [] => return Ok(QueryPage { total: 0, resources: Vec::new() }),
            [(kind, q)] => return self.query(tenant_id, *kind, q),
            [(_, first), ..] => first,
        };
        let (offset, count, descending) = (first.offset, first.count, first.descending);
        debug_assert!(
            parts.iter().all(|(_, q)| (q.offset, q.count, q.descending) == (offset, count, descending)),
            "the parts of one search page and order it alike"
        );
        let mut total: u64 = 0;
        let mut resources = Vec::new();
        if count == 0 || parts.iter().all(|(_, q)| q.sort_by.is_none()) {
            for (kind, q) in parts {
                let skip = offset.saturating_sub(total);
                let want = count.saturating_sub(resources.len() as u64);
                let page = self.query(tenant_id, *kind, &Query { offset: skip, count: want, ..q.clone() })?;
                total = total.saturating_add(page.total);
                resources.extend(page.resources);
            }
            return Ok(QueryPage { total, resources });
        }
        let window = offset.saturating_add(count);
        let mut keyed: Vec<(Resource, Option<SortKey>)> = Vec::new();
        for (kind, q) in parts {
            // Members are loaded for the page only, unless the sort itself reads them.
            let members_for_key = reads_members(*kind, None, q.sort_by);
            let read = Query { offset: 0, count: window, with_members: members_for_key, ..q.clone() };
            let page = self.query(tenant_id, *kind, &read)?;
            total = total.saturating_add(page.total);
            keyed.extend(page.resources.into_iter().map(|mut r| {
                let key = q.sort_by.map(|path| sort_key(path, q.schema, &Value::Object(r.to_scim(None))));
                if !q.with_members {
                    r.members = None;
                }
                (r, key)
            }));
        }
        keyed.sort_by(|a, b| sorted_order(a, b, descending));
        let mut resources: Vec<Resource> = keyed
            .into_iter()
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .take(usize::try_from(count).unwrap_or(usize::MAX))
            .map(|(r, _)| r)
            .collect();
        let wanted: Vec<Kind> = parts.iter().filter(|(_, q)| q.with_members).map(|(kind, _)| *kind).collect();
        if resources.iter().any(|r| wanted.contains(&r.kind)) {
            let mut conn = self.conn()?;
            attach_members(&mut conn, tenant_id, &mut resources, &wanted)?;
        }
        Ok(QueryPage { total, resources })
    }
}

fn limit(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn in_sql(
    c: &mut AnyConnection,
    tenant_id: &str,
    kind: Kind,
    q: &Query<'_>,
    lowered: &Lowered,
    sort: SqlSort,
) -> Result<QueryPage, StoreError> {
    let total = with_table!(kind, t => t::table
        .filter(t::tenant_id.eq(tenant_id))
        .filter(to_sql::<t::table>(&lowered.cond, tenant_id))
        .count()
        .get_result::<i64>(c)?);
    let total = u64::try_from(total).unwrap_or(0);
    if q.count == 0 || q.offset >= total {
        return Ok(QueryPage { total, resources: Vec::new() });
    }
    let rows = page_rows(c, tenant_id, kind, q, lowered, sort)?;
    let mut resources = rows.into_iter().map(|r| to_resource(kind, r)).collect::<Result<Vec<_>, _>>()?;
    if q.with_members {
        attach_members(c, tenant_id, &mut resources, &[kind])?;
    }
    Ok(QueryPage { total, resources })
}

/// The page's rows, sorted and paged in SQL.
pub(crate) fn page_rows(
    c: &mut AnyConnection,
    tenant_id: &str,
    kind: Kind,
    q: &Query<'_>,
    lowered: &Lowered,
    sort: SqlSort,
) -> Result<Vec<ResourceRow>, StoreError> {
    Ok(with_table!(kind, t => {
        let mut sql = t::table
            .filter(t::tenant_id.eq(tenant_id))
            .filter(to_sql::<t::table>(&lowered.cond, tenant_id))
            .select((t::id, t::body, t::version, t::created_us, t::modified_us))
            .into_boxed();
        sql = match sort {
            SqlSort::Created => sql,
            SqlSort::Time(col) => {
                let key = <t::table as Columns>::time(col);
                if q.descending { sql.then_order_by(key.desc()) } else { sql.then_order_by(key.asc()) }
            }
            SqlSort::Text { col, nullable } => {
                match (<t::table as Columns>::text(col), <t::table as Columns>::text(col)) {
                    (Some(missing), Some(key)) => {
                        let sql = if nullable { sql.then_order_by(missing.is_null()) } else { sql };
                        if q.descending { sql.then_order_by(key.desc()) } else { sql.then_order_by(key.asc()) }
                    }
                    _ => sql,
                }
            }
        };
        sql.then_order_by(t::created_us.asc())
            .then_order_by(t::id.asc())
            .limit(limit(q.count))
            .offset(limit(q.offset))
            .load::<ResourceRow>(c)?
    }))
}

/// Loads the membership rows of the resources of `kinds` that do not carry them yet: the members
/// of the groups, the groups of the users (one statement per 500 of either).
fn attach_members(
    c: &mut AnyConnection,
    tenant_id: &str,
    resources: &mut [Resource],
    kinds: &[Kind],
) -> Result<(), StoreError> {
    let lacking = |r: &Resource, kind: Kind| r.kind == kind && kinds.contains(&kind) && r.members.is_none();
    let ids: Vec<String> = resources.iter().filter(|r| lacking(r, Kind::Group)).map(|r| r.id.clone()).collect();
    let mut by_group = if ids.is_empty() { Default::default() } else { members::load_many(c, tenant_id, &ids)? };
    for r in resources.iter_mut().filter(|r| lacking(r, Kind::Group)) {
        r.members = Some(by_group.remove(&r.id).unwrap_or_default());
    }
    let ids: Vec<&str> = resources.iter().filter(|r| lacking(r, Kind::User)).map(|r| r.id.as_str()).collect();
    let mut by_user = if ids.is_empty() { Default::default() } else { members::groups_of(c, tenant_id, &ids)? };
    for r in resources.iter_mut().filter(|r| lacking(r, Kind::User)) {
        r.members = Some(by_user.remove(&r.id).unwrap_or_default());
    }
    Ok(())
}

/// Whether the filter or the sort reads the membership rows of `kind` (a group's `members`, a
/// user's `groups`), so candidates need them loaded.
fn reads_members(kind: Kind, filter: Option<&Filter>, sort_by: Option<&AttrPath>) -> bool {
    let name = match kind {
        Kind::Group => "members",
        Kind::User => "groups",
    };
    let is_members = |p: &AttrPath| p.name.eq_ignore_ascii_case(name);
    fn walk(f: &Filter, is_members: &dyn Fn(&AttrPath) -> bool) -> bool {
        match f {
            Filter::Compare { path, .. } | Filter::Present(path) => is_members(path),
            Filter::ValuePath { path, .. } => is_members(path),
            Filter::And(a, b) | Filter::Or(a, b) => walk(a, is_members) || walk(b, is_members),
            Filter::Not(inner) => walk(inner, is_members),
        }
    }
    filter.is_some_and(|f| walk(f, &is_members)) || sort_by.is_some_and(is_members)
}

/// The filter evaluated in Rust on the candidate rows, scanned in batches of [`SCAN_BATCH`].
///
/// Without a sort the matches arrive in page order and only the page is kept. With one, a match
/// is kept as its sort key, creation time and id only — never its body — and only the best
/// `offset + count` of them (trimmed whenever twice that many are held); the page's bodies are
/// read again by id at the end, in the same snapshot. So a sorted request holds one batch of
/// rows and the keys, not every match (at 100,000 users, whole bodies were hundreds of MB a
/// request; bench/RESULTS.md).
fn in_rust(
    c: &mut AnyConnection,
    tenant_id: &str,
    kind: Kind,
    q: &Query<'_>,
    lowered: &Lowered,
) -> Result<QueryPage, StoreError> {
    // Loaded for every candidate only when the filter or sort reads them; for the page otherwise.
    let need_members = reads_members(kind, q.filter, q.sort_by);
    // Scanning in (created_us, id) order means that without a sort the matches arrive in page
    // order, and only the page itself needs keeping.
    let window = q.offset..q.offset.saturating_add(q.count);
    let keep = usize::try_from(window.end).unwrap_or(usize::MAX);
    let mut total: u64 = 0;
    let mut page: Vec<Resource> = Vec::new();
    let mut keyed: Vec<Keyed> = Vec::new();
    let mut after: Option<(i64, String)> = None;
    loop {
        let rows = with_table!(kind, t => {
            let mut sql = t::table
                .filter(t::tenant_id.eq(tenant_id))
                .filter(to_sql::<t::table>(&lowered.cond, tenant_id))
                .select((t::id, t::body, t::version, t::created_us, t::modified_us))
                .into_boxed();
            if let Some((created, id)) = &after {
                sql = sql.filter(t::created_us.gt(*created).or(t::created_us.eq(*created).and(t::id.gt(id.clone()))));
            }
            sql.order_by(t::created_us.asc()).then_order_by(t::id.asc()).limit(SCAN_BATCH).load::<ResourceRow>(c)?
        });
        let Some(last) = rows.last() else {
            break;
        };
        after = Some((last.created_us, last.id.clone()));
        let full = rows.len() as i64 == SCAN_BATCH;
        let mut batch = rows.into_iter().map(|r| to_resource(kind, r)).collect::<Result<Vec<_>, _>>()?;
        if need_members {
            attach_members(c, tenant_id, &mut batch, &[kind])?;
        }
        for mut r in batch {
            let scim = Value::Object(r.to_scim(None));
            if let Some(f) = q.filter {
                if !f.matches(&scim, q.schema) {
                    continue;
                }
            }
            match q.sort_by {
                _ if q.count == 0 => {}
                Some(path) => {
                    keyed.push(Keyed { key: sort_key(path, q.schema, &scim), created: r.created, id: r.id });
                    if keyed.len() >= keep.saturating_mul(2).max(SCAN_BATCH as usize) {
                        keep_best(&mut keyed, keep, q.descending);
                    }
                }
                None if window.contains(&total) => {
                    if !q.with_members {
                        // Loaded to evaluate the filter; not kept, a group may have 100,000.
                        r.members = None;
                    }
                    page.push(r);
                }
                None => {}
            }
            total += 1;
        }
        if !full {
            break;
        }
    }
    if q.sort_by.is_some() && q.count > 0 {
        keep_best(&mut keyed, keep, q.descending);
        let ids: Vec<String> = keyed
            .into_iter()
            .skip(usize::try_from(q.offset).unwrap_or(usize::MAX))
            .take(usize::try_from(q.count).unwrap_or(usize::MAX))
            .map(|k| k.id)
            .collect();
        page = load_in_order(c, tenant_id, kind, &ids)?;
    }
    if q.with_members {
        attach_members(c, tenant_id, &mut page, &[kind])?;
    }
    Ok(QueryPage { total, resources: page })
}

/// A match of a sorted scan, without its body: what ordering needs.
struct Keyed {
    key: SortKey,
    created: DateTime<Utc>,
    id: String,
}

/// Sorts `keyed` and keeps its first `keep` (in the list's order).
fn keep_best(keyed: &mut Vec<Keyed>, keep: usize, descending: bool) {
    let order = |a: &Keyed, b: &Keyed| {
        compare_keys(Some(&a.key), Some(&b.key), descending)
            .then_with(|| a.created.cmp(&b.created))
            .then_with(|| a.id.cmp(&b.id))
    };
    if keyed.len() > keep {
        keyed.select_nth_unstable_by(keep, order);
        keyed.truncate(keep);
    }
    keyed.sort_unstable_by(order);
}

/// The resources with these ids, in this order (read in chunks: SQLite bounds a statement's
/// parameters). Called in the snapshot that found them, so none is missing.
fn load_in_order(
    c: &mut AnyConnection,
    tenant_id: &str,
    kind: Kind,
    ids: &[String],
) -> Result<Vec<Resource>, StoreError> {
    let mut by_id = std::collections::HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(members::CHUNK) {
        let rows = with_table!(kind, t => on_inner!(c, |c| t::table
            .filter(t::tenant_id.eq(tenant_id))
            .filter(t::id.eq_any(chunk))
            .select((t::id, t::body, t::version, t::created_us, t::modified_us))
            .load::<ResourceRow>(c))?);
        for row in rows {
            by_id.insert(row.id.clone(), row);
        }
    }
    ids.iter().filter_map(|id| by_id.remove(id)).map(|row| to_resource(kind, row)).collect()
}

/// The order of a sorted list, total: the sort key (see [`compare_keys`]), then creation time,
/// then id. One kind's sort in Rust and the merge of several kinds both use it, and SQL's
/// `ORDER BY` in `page_rows` is the same order (the property tests check it).
fn sorted_order(a: &(Resource, Option<SortKey>), b: &(Resource, Option<SortKey>), descending: bool) -> Ordering {
    compare_keys(a.1.as_ref(), b.1.as_ref(), descending)
        .then_with(|| a.0.created.cmp(&b.0.created))
        .then_with(|| a.0.id.cmp(&b.0.id))
}

/// A resource's value of the sort attribute, typed for comparison.
#[derive(Debug, Clone, PartialEq)]
enum SortKey {
    Missing,
    Bool(bool),
    Number(f64),
    Time(DateTime<Utc>),
    Text(String),
}

impl SortKey {
    fn rank(&self) -> u8 {
        match self {
            SortKey::Bool(_) => 0,
            SortKey::Number(_) => 1,
            SortKey::Time(_) => 2,
            SortKey::Text(_) => 3,
            SortKey::Missing => 4,
        }
    }
}

/// Missing values last in either direction; otherwise by value, reversed when descending.
fn compare_keys(a: Option<&SortKey>, b: Option<&SortKey>, descending: bool) -> Ordering {
    let (a, b) = (a.unwrap_or(&SortKey::Missing), b.unwrap_or(&SortKey::Missing));
    let by_value = match (a, b) {
        (SortKey::Missing, SortKey::Missing) => return Ordering::Equal,
        (SortKey::Missing, _) => return Ordering::Greater,
        (_, SortKey::Missing) => return Ordering::Less,
        (SortKey::Bool(x), SortKey::Bool(y)) => x.cmp(y),
        (SortKey::Number(x), SortKey::Number(y)) => x.total_cmp(y),
        (SortKey::Time(x), SortKey::Time(y)) => x.cmp(y),
        (SortKey::Text(x), SortKey::Text(y)) => x.cmp(y),
        (x, y) => x.rank().cmp(&y.rank()),
    };
    if descending { by_value.reverse() } else { by_value }
}

/// The sort value of a rendered resource (RFC 7644 §3.4.2.3): for a multi-valued attribute the
/// primary value, else the first; for a complex one its `value` sub-attribute unless the path
/// names another; strings ignore case unless caseExact.
fn sort_key(path: &AttrPath, schema: &ResourceSchema<'_>, scim: &Value) -> SortKey {
    let Some(obj) = scim.as_object() else {
        return SortKey::Missing;
    };
    let Some(r) = schema.resolve(path.urn.as_deref(), &path.name, path.sub_attr.as_deref()) else {
        return SortKey::Missing;
    };
    let container = match r.location {
        Location::Extension(ext) => get_ci(obj, &ext.id).and_then(Value::as_object),
        Location::Common | Location::Core => Some(obj),
    };
    let Some(mut value) = container.and_then(|c| get_ci(c, &r.attribute.name)) else {
        return SortKey::Missing;
    };
    if let Value::Array(items) = value {
        let primary = items.iter().find(|v| v.get("primary").and_then(Value::as_bool) == Some(true));
        match primary.or_else(|| items.first()) {
            Some(v) => value = v,
            None => return SortKey::Missing,
        }
    }
    let leaf = match (r.sub_attribute, r.attribute.ty) {
        (Some(sub), _) => Some(sub),
        (None, AttrType::Complex) => r.attribute.sub_attribute("value"),
        (None, _) => None,
    };
    if let Some(sub) = leaf {
        match value.as_object().and_then(|o: &Map<String, Value>| get_ci(o, &sub.name)) {
            Some(v) => value = v,
            None => return SortKey::Missing,
        }
    }
    let attr = leaf.unwrap_or(r.attribute);
    match (attr.ty, value) {
        (AttrType::String | AttrType::Reference, Value::String(s)) => {
            SortKey::Text(if attr.case_exact { s.clone() } else { s.to_lowercase() })
        }
        (AttrType::Binary, Value::String(s)) => SortKey::Text(s.clone()),
        (AttrType::Boolean, Value::Bool(b)) => SortKey::Bool(*b),
        (AttrType::Integer | AttrType::Decimal, Value::Number(n)) => {
            n.as_f64().map_or(SortKey::Missing, SortKey::Number)
        }
        (AttrType::DateTime, Value::String(s)) => {
            parse_datetime(s).map_or_else(|| SortKey::Text(s.clone()), SortKey::Time)
        }
        _ => SortKey::Missing,
    }
}
