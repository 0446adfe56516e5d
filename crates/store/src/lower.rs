//! Lowers a SCIM filter to a SQL condition on the indexed columns, exact where it can be and a superset where not.
//!
//! [`lower`] turns a [`Filter`] into a [`Lowered`]: an engine-neutral condition ([`Cond`]) and
//! whether it is *exact*. The invariant, which the property test checks on both engines:
//!
//! - the rows the condition selects are always a superset of the rows `Filter::matches` accepts;
//! - when `exact`, they are the same set.
//!
//! Leaves on the indexed attributes — `id`, `userName`, `externalId`, `displayName`, `active`,
//! `meta.created`, `meta.lastModified` (unqualified or core-URN-qualified) — lower exactly, with
//! the evaluator's semantics (`crate::filter` of the core): strings compare on the Unicode-lowercased
//! `_ci` twin column unless the attribute is caseExact, in code-point order (SQLite's BINARY
//! collation; `COLLATE "C"` on PostgreSQL); `ne` is `not eq`, so a missing value matches it; `pr`
//! means not NULL and not empty; `eq null` is `not pr`; a literal of the wrong type matches nothing;
//! dateTimes compare as microseconds, with sub-microsecond literals rounded the way that keeps the
//! comparison exact. Every leaf is NULL-safe (`col IS NOT NULL AND …`), so `NOT`, `AND` and `OR`
//! never meet SQL's third truth value.
//!
//! `co`/`sw`/`ew` become `LIKE` with a `\`-escaped pattern: exact on the lowercase `_ci` columns
//! (SQLite's LIKE folds ASCII case, which changes nothing there), a superset on caseExact columns
//! (there SQLite's folding may match more; the evaluator then decides).
//!
//! `meta.resourceType` is the same in every row of a kind: its leaves are TRUE or FALSE, exactly, as
//! the evaluator decides them for that kind.
//!
//! Anything else (other attributes, value filters, unparsable dateTimes) becomes TRUE, inexact.
//! `and` is exact iff both sides are; `or` keeps both sides' conditions (the union of supersets is
//! a superset) and is exact iff both are; `not` is lowered only when its operand is exact.

use diesel::dsl::sql;
use diesel::expression::BoxableExpression;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};

use scimgw_scim::filter::{AttrPath, CompValue, CompareOp, Filter, names_nothing};
use scimgw_scim::schema::{AttrType, Attribute, Location, ResourceSchema};

use crate::connection::MultiBackend;
use crate::models::resource::fold;
use crate::resource::Kind;
use crate::schema::{groups, users};

/// A text column that filters and sorts use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextCol {
    Id,
    UserName,
    UserNameCi,
    ExternalId,
    DisplayName,
    DisplayNameCi,
}

/// A timestamp column (microseconds since the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeCol {
    Created,
    Modified,
}

/// A comparison SQL can do directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SqlOp {
    Eq,
    Gt,
    Ge,
    Lt,
    Le,
}

/// An engine-neutral SQL condition. Every leaf is false, never NULL, on a NULL column.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cond {
    True,
    False,
    /// `col IS NOT NULL AND col <op> value`.
    Text {
        col: TextCol,
        op: SqlOp,
        value: String,
    },
    /// `col IS NOT NULL AND col LIKE pattern ESCAPE '\'`.
    Like {
        col: TextCol,
        pattern: String,
    },
    /// `col IS NOT NULL AND col <> ''`.
    NonEmpty(TextCol),
    /// `col <op> value` on a NOT NULL timestamp column.
    Time {
        col: TimeCol,
        op: SqlOp,
        value: i64,
    },
    /// `active IS NOT NULL AND active = value`.
    Active(bool),
    /// `active IS NOT NULL`.
    ActiveSet,
    /// The user is a direct member of a group with this id (users only).
    InGroup(String),
    /// The user is a direct member of a group whose folded displayName is this (users only).
    InGroupNamed(String),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
}

/// A lowered filter: a condition selecting a superset of the matches, the same set when `exact`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Lowered {
    pub cond: Cond,
    pub exact: bool,
}

impl Lowered {
    /// Every row, exactly: no filter.
    pub(crate) fn all() -> Self {
        Self { cond: Cond::True, exact: true }
    }

    fn exact(cond: Cond) -> Self {
        Self { cond, exact: true }
    }

    fn unknown() -> Self {
        Self { cond: Cond::True, exact: false }
    }
}

/// An indexed attribute, as a filter path resolves to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    /// A string attribute held in a text column.
    Text(TextCol),
    /// `active`.
    Active,
    /// `meta.created` or `meta.lastModified`.
    Time(TimeCol),
}

/// The column holding `path`'s value for `kind`, if there is one whose semantics match the
/// attribute's definition (type, caseExact) in `schema`.
pub(crate) fn field(path: &AttrPath, schema: &ResourceSchema<'_>, kind: Kind) -> Option<Field> {
    let r = schema.resolve(path.urn.as_deref(), &path.name, path.sub_attr.as_deref())?;
    let name = r.attribute.name.as_str();
    let leaf: &Attribute = r.leaf();
    let text = |exact: Option<TextCol>, folded: Option<TextCol>| -> Option<Field> {
        if leaf.ty != AttrType::String {
            return None;
        }
        if leaf.case_exact { exact.map(Field::Text) } else { folded.map(Field::Text) }
    };
    match (r.location, name, r.sub_attribute.map(|s| s.name.as_str()), kind) {
        (Location::Common, "id", None, _) => text(Some(TextCol::Id), None),
        (Location::Common, "externalId", None, _) => text(Some(TextCol::ExternalId), None),
        (Location::Common, "meta", Some("created"), _) if leaf.ty == AttrType::DateTime => {
            Some(Field::Time(TimeCol::Created))
        }
        (Location::Common, "meta", Some("lastModified"), _) if leaf.ty == AttrType::DateTime => {
            Some(Field::Time(TimeCol::Modified))
        }
        (Location::Core, "userName", None, Kind::User) => text(Some(TextCol::UserName), Some(TextCol::UserNameCi)),
        (Location::Core, "displayName", None, _) => text(Some(TextCol::DisplayName), Some(TextCol::DisplayNameCi)),
        (Location::Core, "active", None, Kind::User) if leaf.ty == AttrType::Boolean => Some(Field::Active),
        _ => None,
    }
}

/// Whether a text column holds lowercased values (so literals must be lowercased too).
fn folded(col: TextCol) -> bool {
    matches!(col, TextCol::UserNameCi | TextCol::DisplayNameCi)
}

/// Lowers `filter` for a query on `kind` (see the module doc).
pub(crate) fn lower(filter: &Filter, schema: &ResourceSchema<'_>, kind: Kind) -> Lowered {
    match filter {
        Filter::Compare { path, .. } | Filter::Present(path) if is_resource_type(path, schema) => {
            // Every row of a kind has the same `meta.resourceType`, so the leaf is a constant:
            // the evaluator decides it once, on a resource holding only that attribute. A search
            // at the root narrowed by it (RFC 7644 §3.4.2.1) then reads nothing of the other kind.
            let only_type = serde_json::json!({"meta": {"resourceType": kind.resource_type()}});
            Lowered::exact(if filter.matches(&only_type, schema) { Cond::True } else { Cond::False })
        }
        Filter::Compare { path, .. } | Filter::Present(path) | Filter::ValuePath { path, .. }
            if names_nothing(path, schema) =>
        {
            // An attribute this kind does not have is absent: the test never matches.
            Lowered::exact(Cond::False)
        }
        Filter::Compare { path, op, value } => match (field(path, schema, kind), membership(path, schema, kind)) {
            (Some(f), _) => compare(f, *op, value),
            (None, Some(by)) => in_group(by, *op, value),
            (None, None) => Lowered::unknown(),
        },
        Filter::Present(path) => match field(path, schema, kind) {
            Some(f) => Lowered::exact(present(f)),
            None => Lowered::unknown(),
        },
        Filter::And(a, b) => {
            let (a, b) = (lower(a, schema, kind), lower(b, schema, kind));
            Lowered { cond: and(a.cond, b.cond), exact: a.exact && b.exact }
        }
        Filter::Or(a, b) => {
            let (a, b) = (lower(a, schema, kind), lower(b, schema, kind));
            Lowered { cond: or(a.cond, b.cond), exact: a.exact && b.exact }
        }
        Filter::Not(inner) => {
            let inner = lower(inner, schema, kind);
            if inner.exact { Lowered::exact(not(inner.cond)) } else { Lowered::unknown() }
        }
        // `groups[display eq "Sales"]`: the same as `groups.display eq "Sales"` when the inner
        // filter is one comparison (each element is tested alone, and one test is one element).
        Filter::ValuePath { path, filter } => match (&**filter, path.sub_attr.is_none()) {
            (Filter::Compare { path: inner, op, value }, true) if inner.urn.is_none() && inner.sub_attr.is_none() => {
                let whole =
                    AttrPath { urn: path.urn.clone(), name: path.name.clone(), sub_attr: Some(inner.name.clone()) };
                match membership(&whole, schema, kind) {
                    Some(by) => in_group(by, *op, value),
                    None => Lowered::unknown(),
                }
            }
            _ => Lowered::unknown(),
        },
    }
}

/// Which of a user's group memberships a filter path tests: `groups.value` or `groups.display`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GroupBy {
    Id,
    Display,
}

fn membership(path: &AttrPath, schema: &ResourceSchema<'_>, kind: Kind) -> Option<GroupBy> {
    let r = schema.resolve(path.urn.as_deref(), &path.name, path.sub_attr.as_deref())?;
    match (kind, r.location, r.attribute.name.as_str(), r.sub_attribute.map(|s| s.name.as_str())) {
        (Kind::User, Location::Core, "groups", Some("value")) => Some(GroupBy::Id),
        (Kind::User, Location::Core, "groups", Some("display")) => Some(GroupBy::Display),
        _ => None,
    }
}

/// `groups.value eq "…"` and `groups.display eq "…"`: a membership probe, exact (both
/// sub-attributes are case-insensitive strings; ids are stored lowercase, displayNames also
/// folded). Other operators are evaluated in Rust on the users' loaded groups.
fn in_group(by: GroupBy, op: CompareOp, value: &CompValue) -> Lowered {
    match (op, value) {
        (CompareOp::Eq, CompValue::Str(s)) => Lowered::exact(match by {
            GroupBy::Id => Cond::InGroup(fold(s)),
            GroupBy::Display => Cond::InGroupNamed(fold(s)),
        }),
        // A literal of another type never equals a string.
        (CompareOp::Eq, CompValue::Bool(_) | CompValue::Number(_)) => Lowered::exact(Cond::False),
        _ => Lowered::unknown(),
    }
}

/// Whether `path` names `meta.resourceType`.
fn is_resource_type(path: &AttrPath, schema: &ResourceSchema<'_>) -> bool {
    schema.resolve(path.urn.as_deref(), &path.name, path.sub_attr.as_deref()).is_some_and(|r| {
        matches!(r.location, Location::Common)
            && r.attribute.name == "meta"
            && r.sub_attribute.is_some_and(|s| s.name == "resourceType")
    })
}

fn present(f: Field) -> Cond {
    match f {
        Field::Text(col) => Cond::NonEmpty(col),
        Field::Active => Cond::ActiveSet,
        // Always rendered, never empty.
        Field::Time(_) => Cond::True,
    }
}

fn compare(f: Field, op: CompareOp, value: &CompValue) -> Lowered {
    match (op, value) {
        (CompareOp::Eq, CompValue::Null) => return Lowered::exact(not(present(f))),
        (CompareOp::Ne, CompValue::Null) => return Lowered::exact(present(f)),
        (_, CompValue::Null) => return Lowered::exact(Cond::False),
        // `ne` is exactly `not eq`, whatever the type.
        (CompareOp::Ne, _) => {
            let eq = compare(f, CompareOp::Eq, value);
            return if eq.exact { Lowered::exact(not(eq.cond)) } else { Lowered::unknown() };
        }
        _ => {}
    }
    match f {
        Field::Text(col) => {
            let CompValue::Str(s) = value else {
                return Lowered::exact(Cond::False);
            };
            let s = if folded(col) { fold(s) } else { s.clone() };
            let sql_op = match op {
                CompareOp::Co => return like(col, format!("%{}%", escape_like(&s))),
                CompareOp::Sw => return like(col, format!("{}%", escape_like(&s))),
                CompareOp::Ew => return like(col, format!("%{}", escape_like(&s))),
                other => sql_op(other),
            };
            Lowered::exact(Cond::Text { col, op: sql_op, value: s })
        }
        Field::Active => {
            let b = match value {
                CompValue::Bool(b) => Some(*b),
                CompValue::Str(s) if s.eq_ignore_ascii_case("true") => Some(true),
                CompValue::Str(s) if s.eq_ignore_ascii_case("false") => Some(false),
                _ => None,
            };
            match (op, b) {
                (CompareOp::Eq, Some(b)) => Lowered::exact(Cond::Active(b)),
                // Ordering and substring operators never match a boolean.
                _ => Lowered::exact(Cond::False),
            }
        }
        Field::Time(col) => {
            let CompValue::Str(s) = value else {
                return Lowered::exact(Cond::False);
            };
            if op.is_substring() {
                return Lowered::exact(Cond::False);
            }
            // The evaluator falls back to comparing text when the literal is no dateTime.
            let Some(t) = parse_datetime(s) else {
                return Lowered::unknown();
            };
            let nanos = t.timestamp_subsec_nanos();
            if nanos >= 1_000_000_000 {
                // A leap second: chrono orders it in a way microseconds cannot express.
                return Lowered::unknown();
            }
            // Stored values are whole microseconds S; the literal is L nanoseconds.
            // S·1000 > L ⇔ S > ⌊L/1000⌋, S·1000 ≥ L ⇔ S ≥ ⌈L/1000⌉, and so on.
            let floor = t.timestamp_micros();
            let ceil = floor + i64::from(nanos % 1000 != 0);
            let cond = match op {
                CompareOp::Eq if floor != ceil => Cond::False,
                CompareOp::Eq => Cond::Time { col, op: SqlOp::Eq, value: floor },
                CompareOp::Gt => Cond::Time { col, op: SqlOp::Gt, value: floor },
                CompareOp::Ge => Cond::Time { col, op: SqlOp::Ge, value: ceil },
                CompareOp::Lt => Cond::Time { col, op: SqlOp::Lt, value: ceil },
                CompareOp::Le => Cond::Time { col, op: SqlOp::Le, value: floor },
                _ => Cond::False,
            };
            Lowered::exact(cond)
        }
    }
}

fn like(col: TextCol, pattern: String) -> Lowered {
    Lowered { cond: Cond::Like { col, pattern }, exact: folded(col) }
}

fn sql_op(op: CompareOp) -> SqlOp {
    match op {
        CompareOp::Gt => SqlOp::Gt,
        CompareOp::Ge => SqlOp::Ge,
        CompareOp::Lt => SqlOp::Lt,
        CompareOp::Le => SqlOp::Le,
        _ => SqlOp::Eq,
    }
}

/// Escapes `\`, `%` and `_` for `LIKE … ESCAPE '\'`.
pub(crate) fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// An RFC 3339 date-time, or one without offset read as UTC: the evaluator's reading, exactly.
pub(crate) fn parse_datetime(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(dt.with_timezone(&chrono::Utc));
    }
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").ok().map(|naive| naive.and_utc())
}

fn and(a: Cond, b: Cond) -> Cond {
    match (a, b) {
        (Cond::False, _) | (_, Cond::False) => Cond::False,
        (Cond::True, x) | (x, Cond::True) => x,
        (a, b) => Cond::And(Box::new(a), Box::new(b)),
    }
}

fn or(a: Cond, b: Cond) -> Cond {
    match (a, b) {
        (Cond::True, _) | (_, Cond::True) => Cond::True,
        (Cond::False, x) | (x, Cond::False) => x,
        (a, b) => Cond::Or(Box::new(a), Box::new(b)),
    }
}

fn not(c: Cond) -> Cond {
    match c {
        Cond::True => Cond::False,
        Cond::False => Cond::True,
        Cond::Not(inner) => *inner,
        c => Cond::Not(Box::new(c)),
    }
}

/// A boolean SQL expression on table `T`, boxed so that any filter shape has one type.
pub(crate) type SqlCond<T> = Box<dyn BoxableExpression<T, MultiBackend, SqlType = Bool>>;
/// A text column of `T`, boxed (nullable columns as if NOT NULL: every use is guarded).
pub(crate) type TextExpr<T> = Box<dyn BoxableExpression<T, MultiBackend, SqlType = Text>>;
/// A timestamp column of `T`, boxed.
pub(crate) type TimeExpr<T> = Box<dyn BoxableExpression<T, MultiBackend, SqlType = BigInt>>;

/// The filterable columns of a resource table.
pub(crate) trait Columns: Sized + 'static {
    /// The column, or `None` if this table has no such column.
    fn text(col: TextCol) -> Option<TextExpr<Self>>;
    fn time(col: TimeCol) -> TimeExpr<Self>;
    fn active() -> Option<Box<dyn BoxableExpression<Self, MultiBackend, SqlType = Bool>>>;
    /// The resource is a direct member of a group of `tenant_id` with this id (`by_name`: with
    /// this folded displayName); `None` for a table whose rows have no groups.
    fn in_group(_tenant_id: &str, _group: &str, _by_name: bool) -> Option<SqlCond<Self>> {
        None
    }
}

impl Columns for users::table {
    fn text(col: TextCol) -> Option<TextExpr<Self>> {
        Some(match col {
            TextCol::Id => Box::new(users::id),
            TextCol::UserName => Box::new(users::user_name),
            TextCol::UserNameCi => Box::new(users::user_name_ci),
            TextCol::ExternalId => Box::new(users::external_id.assume_not_null()),
            TextCol::DisplayName => Box::new(users::display_name.assume_not_null()),
            TextCol::DisplayNameCi => Box::new(users::display_name_ci.assume_not_null()),
        })
    }

    fn time(col: TimeCol) -> TimeExpr<Self> {
        match col {
            TimeCol::Created => Box::new(users::created_us),
            TimeCol::Modified => Box::new(users::modified_us),
        }
    }

    fn active() -> Option<Box<dyn BoxableExpression<Self, MultiBackend, SqlType = Bool>>> {
        Some(Box::new(users::active.assume_not_null()))
    }

    // Uncorrelated, so that both engines read the group's member rows once (by the primary key
    // `(tenant_id, group_id, …)`) and probe users by theirs, instead of a probe per user.
    fn in_group(tenant_id: &str, group: &str, by_name: bool) -> Option<SqlCond<Self>> {
        let members = match by_name {
            false => "\"users\".\"id\" IN (SELECT gm.member_id FROM group_members gm WHERE gm.tenant_id = ",
            true => {
                "\"users\".\"id\" IN (SELECT gm.member_id FROM group_members gm JOIN \"groups\" g \
                 ON g.tenant_id = gm.tenant_id AND g.id = gm.group_id WHERE gm.tenant_id = "
            }
        };
        let which = if by_name { " AND g.display_name_ci = " } else { " AND gm.group_id = " };
        Some(Box::new(
            sql::<Bool>(members)
                .bind::<Text, _>(tenant_id.to_owned())
                .sql(which)
                .bind::<Text, _>(group.to_owned())
                .sql(")"),
        ))
    }
}

impl Columns for groups::table {
    fn text(col: TextCol) -> Option<TextExpr<Self>> {
        Some(match col {
            TextCol::Id => Box::new(groups::id),
            TextCol::ExternalId => Box::new(groups::external_id.assume_not_null()),
            TextCol::DisplayName => Box::new(groups::display_name),
            TextCol::DisplayNameCi => Box::new(groups::display_name_ci),
            TextCol::UserName | TextCol::UserNameCi => return None,
        })
    }

    fn time(col: TimeCol) -> TimeExpr<Self> {
        match col {
            TimeCol::Created => Box::new(groups::created_us),
            TimeCol::Modified => Box::new(groups::modified_us),
        }
    }

    fn active() -> Option<Box<dyn BoxableExpression<Self, MultiBackend, SqlType = Bool>>> {
        None
    }
}

fn literal<T: Columns>(value: bool) -> SqlCond<T> {
    Box::new(sql::<Bool>(if value { "1 = 1" } else { "1 = 0" }))
}

/// The condition as a diesel expression on table `T`, in `tenant_id` (which membership tests need).
pub(crate) fn to_sql<T: Columns>(cond: &Cond, tenant_id: &str) -> SqlCond<T> {
    match cond {
        Cond::InGroup(group) => T::in_group(tenant_id, group, false).unwrap_or_else(|| literal::<T>(false)),
        Cond::InGroupNamed(name) => T::in_group(tenant_id, name, true).unwrap_or_else(|| literal::<T>(false)),
        Cond::True => literal::<T>(true),
        Cond::False => literal::<T>(false),
        Cond::Text { col, op, value } => {
            let (Some(guard), Some(c)) = (T::text(*col), T::text(*col)) else {
                return literal::<T>(false);
            };
            let v = value.clone();
            let cmp: SqlCond<T> = match op {
                SqlOp::Eq => Box::new(c.eq(v)),
                SqlOp::Gt => Box::new(c.gt(v)),
                SqlOp::Ge => Box::new(c.ge(v)),
                SqlOp::Lt => Box::new(c.lt(v)),
                SqlOp::Le => Box::new(c.le(v)),
            };
            Box::new(guard.is_not_null().and(cmp))
        }
        Cond::Like { col, pattern } => {
            let (Some(guard), Some(c)) = (T::text(*col), T::text(*col)) else {
                return literal::<T>(false);
            };
            Box::new(guard.is_not_null().and(c.like(pattern.clone()).escape('\\')))
        }
        Cond::NonEmpty(col) => {
            let (Some(guard), Some(c)) = (T::text(*col), T::text(*col)) else {
                return literal::<T>(false);
            };
            Box::new(guard.is_not_null().and(c.ne(String::new())))
        }
        Cond::Time { col, op, value } => {
            let c = T::time(*col);
            let v = *value;
            match op {
                SqlOp::Eq => Box::new(c.eq(v)),
                SqlOp::Gt => Box::new(c.gt(v)),
                SqlOp::Ge => Box::new(c.ge(v)),
                SqlOp::Lt => Box::new(c.lt(v)),
                SqlOp::Le => Box::new(c.le(v)),
            }
        }
        Cond::Active(b) => {
            let (Some(guard), Some(c)) = (T::active(), T::active()) else {
                return literal::<T>(false);
            };
            Box::new(guard.is_not_null().and(c.eq(*b)))
        }
        Cond::ActiveSet => match T::active() {
            Some(c) => Box::new(c.is_not_null()),
            None => literal::<T>(false),
        },
        Cond::And(a, b) => Box::new(to_sql::<T>(a, tenant_id).and(to_sql::<T>(b, tenant_id))),
        Cond::Or(a, b) => Box::new(to_sql::<T>(a, tenant_id).or(to_sql::<T>(b, tenant_id))),
        Cond::Not(inner) => Box::new(diesel::dsl::not(to_sql::<T>(inner, tenant_id))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scimgw_scim::filter::parse_filter;
    use scimgw_scim::schema::Registry;

    fn lowered(kind: Kind, text: &str) -> Lowered {
        let reg = Registry::default();
        let schema = reg.resource(kind.resource_type()).unwrap();
        lower(&parse_filter(text).unwrap(), &schema, kind)
    }

    #[test]
    fn entra_lookups_lower_exactly_to_the_indexed_columns() {
        let l = lowered(Kind::User, r#"userName eq "Alice@Example.com""#);
        assert!(l.exact);
        assert_eq!(l.cond, Cond::Text { col: TextCol::UserNameCi, op: SqlOp::Eq, value: "alice@example.com".into() });
        let l = lowered(Kind::User, r#"externalId eq "AbC""#);
        assert_eq!(l.cond, Cond::Text { col: TextCol::ExternalId, op: SqlOp::Eq, value: "AbC".into() });
        let l = lowered(Kind::Group, r#"urn:ietf:params:scim:schemas:core:2.0:Group:displayName eq "Ops""#);
        assert!(l.exact);
        assert_eq!(l.cond, Cond::Text { col: TextCol::DisplayNameCi, op: SqlOp::Eq, value: "ops".into() });
    }

    #[test]
    fn unknown_attributes_make_the_condition_a_superset() {
        let l = lowered(Kind::User, r#"title eq "x" and userName sw "a""#);
        assert!(!l.exact);
        assert_eq!(l.cond, Cond::Like { col: TextCol::UserNameCi, pattern: "a%".into() });
        let l = lowered(Kind::User, r#"not (title eq "x")"#);
        assert_eq!(l, Lowered::unknown());
        let l = lowered(Kind::User, r#"title eq "x" or userName eq "a""#);
        assert!(!l.exact);
        assert_eq!(l.cond, Cond::True);
        // userName means nothing on a group: absent, so the test is exactly FALSE (RFC 7644
        // §3.4.2.2), and its negation TRUE.
        assert_eq!(lowered(Kind::Group, r#"userName eq "a""#), Lowered::exact(Cond::False));
        assert_eq!(lowered(Kind::Group, r#"not (userName pr)"#), Lowered::exact(Cond::True));
        assert_eq!(lowered(Kind::Group, r#"members[value eq "x"]"#), Lowered::unknown());
        assert_eq!(lowered(Kind::User, r#"members[value eq "x"]"#), Lowered::exact(Cond::False));
    }

    #[test]
    fn the_resource_type_is_a_constant_of_each_kind() {
        for (kind, text, cond) in [
            (Kind::User, r#"meta.resourceType eq "User""#, Cond::True),
            (Kind::Group, r#"meta.resourceType eq "User""#, Cond::False),
            (Kind::User, r#"meta.resourceType eq "user""#, Cond::False),
            (Kind::Group, r#"meta.resourceType ne "User""#, Cond::True),
            (Kind::Group, "meta.resourceType pr", Cond::True),
            (Kind::User, r#"urn:ietf:params:scim:schemas:core:2.0:User:meta.resourceType sw "Us""#, Cond::True),
        ] {
            assert_eq!(lowered(kind, text), Lowered::exact(cond), "{kind:?}: {text}");
        }
        let l = lowered(Kind::User, r#"meta.resourceType eq "Group" or userName eq "a""#);
        assert!(l.exact);
    }

    #[test]
    fn like_patterns_are_escaped_and_inexact_on_case_exact_columns() {
        assert_eq!(escape_like(r"50%_a\b"), r"50\%\_a\\b");
        let l = lowered(Kind::User, r#"externalId co "x_""#);
        assert!(!l.exact);
        assert_eq!(l.cond, Cond::Like { col: TextCol::ExternalId, pattern: r"%x\_%".into() });
    }

    #[test]
    fn null_literals_and_mistyped_literals_follow_the_evaluator() {
        assert_eq!(
            lowered(Kind::User, "displayName eq null").cond,
            Cond::Not(Box::new(Cond::NonEmpty(TextCol::DisplayNameCi)))
        );
        assert_eq!(lowered(Kind::User, "displayName ne null").cond, Cond::NonEmpty(TextCol::DisplayNameCi));
        assert_eq!(lowered(Kind::User, "userName eq 5").cond, Cond::False);
        assert_eq!(lowered(Kind::User, "userName ne 5").cond, Cond::True);
        assert_eq!(lowered(Kind::User, "active gt true").cond, Cond::False);
        assert_eq!(lowered(Kind::User, r#"active eq "True""#).cond, Cond::Active(true));
        assert_eq!(lowered(Kind::User, "meta.created pr").cond, Cond::True);
    }

    #[test]
    fn sub_microsecond_datetimes_round_so_the_comparison_stays_exact() {
        let at =
            |op: &str| lowered(Kind::User, &format!(r#"meta.lastModified {op} "1970-01-01T00:00:00.0000015Z""#)).cond;
        let t = |op, value| Cond::Time { col: TimeCol::Modified, op, value };
        assert_eq!(at("gt"), t(SqlOp::Gt, 1));
        assert_eq!(at("ge"), t(SqlOp::Ge, 2));
        assert_eq!(at("lt"), t(SqlOp::Lt, 2));
        assert_eq!(at("le"), t(SqlOp::Le, 1));
        assert_eq!(at("eq"), Cond::False);
        assert_eq!(lowered(Kind::User, r#"meta.created gt "yesterday""#), Lowered::unknown());
    }
}
