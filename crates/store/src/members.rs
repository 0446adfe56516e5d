//! Group membership rows: loading, adding, removing, replacing — each touching only the rows it changes.

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;

use crate::connection::{AnyConnection, on_inner};
use crate::models::resource::{JoinedMemberRow, NewMemberRow};
use crate::resource::{Kind, Member, MembersChange};
use crate::schema::{group_members, groups, users};

/// Values per `IN (…)` list and rows per multi-row `INSERT`: well under SQLite's 32,766 and
/// PostgreSQL's 65,535 bind parameters.
pub(crate) const CHUNK: usize = 500;

/// The member rows of a group, joined with the member's own row (a user's or a group's) for
/// what the member is and its name. LEFT JOINs on both tables' primary keys: one statement for
/// the whole group, never one per member. A macro because diesel's type for the joined query is
/// unwieldy to name; `load` and `load_many` add their own group condition and order.
macro_rules! joined_members {
    ($tenant_id:expr) => {
        group_members::table
            .left_join(
                users::table
                    .on(users::tenant_id.eq(group_members::tenant_id).and(users::id.eq(group_members::member_id))),
            )
            .left_join(
                groups::table
                    .on(groups::tenant_id.eq(group_members::tenant_id).and(groups::id.eq(group_members::member_id))),
            )
            .filter(group_members::tenant_id.eq($tenant_id))
    };
}

/// The columns of [`JoinedMemberRow`].
macro_rules! member_columns {
    () => {
        (
            group_members::member_id,
            group_members::member_type,
            users::user_name.nullable(),
            users::display_name.nullable(),
            groups::display_name.nullable(),
        )
    };
}

/// The members of one group, ordered by value, each with its type and display name.
pub(crate) fn load(c: &mut AnyConnection, tenant_id: &str, group_id: &str) -> QueryResult<Vec<Member>> {
    // On the engine's own connection: the rows come straight from its cursor, not through the
    // connection enum's row type (a seventh of the time of reading 100,000 members).
    let rows = on_inner!(c, |c| joined_members!(tenant_id)
        .filter(group_members::group_id.eq(group_id))
        .order(group_members::member_id)
        .select(member_columns!())
        .load::<JoinedMemberRow>(c))?;
    Ok(rows.into_iter().map(to_member).collect())
}

/// The members of several groups, each ordered by value; groups without members are absent.
/// One statement per [`CHUNK`] groups.
pub(crate) fn load_many(
    c: &mut AnyConnection,
    tenant_id: &str,
    group_ids: &[String],
) -> QueryResult<HashMap<String, Vec<Member>>> {
    let mut out: HashMap<String, Vec<Member>> = HashMap::new();
    for chunk in group_ids.chunks(CHUNK) {
        let rows = on_inner!(c, |c| joined_members!(tenant_id)
            .filter(group_members::group_id.eq_any(chunk))
            .order((group_members::group_id, group_members::member_id))
            .select((group_members::group_id, member_columns!()))
            .load::<(String, JoinedMemberRow)>(c))?;
        for (group_id, row) in rows {
            out.entry(group_id).or_default().push(to_member(row));
        }
    }
    Ok(out)
}

/// What the member is comes from the row its id found (a user's userName is never NULL, nor a
/// group's displayName); the stored type only names a member whose row is gone (see the
/// README's Limits: a member deleted while being added).
fn to_member(row: JoinedMemberRow) -> Member {
    let (r#type, display) = match (row.user_name, row.group_display) {
        (Some(user_name), _) => {
            (Some(Kind::User.resource_type().to_owned()), Some(row.user_display.unwrap_or(user_name)))
        }
        (None, Some(group_display)) => (Some(Kind::Group.resource_type().to_owned()), Some(group_display)),
        (None, None) => (row.member_type, None),
    };
    Member { value: row.member_id, r#type, display }
}

/// The member rows of one group as stored: each value with its stored type. For writes, which
/// need neither the members' names nor a join.
fn stored(c: &mut AnyConnection, tenant_id: &str, group_id: &str) -> QueryResult<HashMap<String, Option<String>>> {
    let rows = group_members::table
        .filter(group_members::tenant_id.eq(tenant_id))
        .filter(group_members::group_id.eq(group_id))
        .select((group_members::member_id, group_members::member_type))
        .load::<(String, Option<String>)>(c)?;
    Ok(rows.into_iter().collect())
}

/// Applies member changes to one group, in order.
pub(crate) fn apply(
    c: &mut AnyConnection,
    tenant_id: &str,
    group_id: &str,
    changes: &[MembersChange],
) -> QueryResult<()> {
    for change in changes {
        match change {
            MembersChange::Add(members) => add(c, tenant_id, group_id, members)?,
            MembersChange::Remove(values) => remove(c, tenant_id, group_id, values)?,
            MembersChange::Clear => {
                diesel::delete(
                    group_members::table
                        .filter(group_members::tenant_id.eq(tenant_id))
                        .filter(group_members::group_id.eq(group_id)),
                )
                .execute(c)?;
            }
            MembersChange::Set(members) => set(c, tenant_id, group_id, members)?,
        }
    }
    Ok(())
}

/// Inserts the members not yet in the group. The caller holds the group row's write lock (or
/// SQLite's), so "not yet in" cannot change under us; diesel offers no `ON CONFLICT` through the
/// connection enum, hence the look-up first.
pub(crate) fn add(c: &mut AnyConnection, tenant_id: &str, group_id: &str, members: &[Member]) -> QueryResult<()> {
    let members = dedup(members);
    let mut existing = HashSet::new();
    for chunk in members.chunks(CHUNK) {
        let values: Vec<&str> = chunk.iter().map(|m| m.value.as_str()).collect();
        existing.extend(
            group_members::table
                .filter(group_members::tenant_id.eq(tenant_id))
                .filter(group_members::group_id.eq(group_id))
                .filter(group_members::member_id.eq_any(values))
                .select(group_members::member_id)
                .load::<String>(c)?,
        );
    }
    let new: Vec<&Member> = members.into_iter().filter(|m| !existing.contains(&m.value)).collect();
    insert(c, tenant_id, group_id, &new)
}

/// Inserts members known to be absent.
pub(crate) fn insert(c: &mut AnyConnection, tenant_id: &str, group_id: &str, members: &[&Member]) -> QueryResult<()> {
    for chunk in members.chunks(CHUNK) {
        let rows: Vec<NewMemberRow<'_>> = chunk
            .iter()
            .map(|m| NewMemberRow { tenant_id, group_id, member_id: &m.value, member_type: m.r#type.as_deref() })
            .collect();
        on_inner!(c, |inner| diesel::insert_into(group_members::table).values(&rows).execute(inner))?;
    }
    Ok(())
}

fn remove(c: &mut AnyConnection, tenant_id: &str, group_id: &str, values: &[String]) -> QueryResult<()> {
    for chunk in values.chunks(CHUNK) {
        diesel::delete(
            group_members::table
                .filter(group_members::tenant_id.eq(tenant_id))
                .filter(group_members::group_id.eq(group_id))
                .filter(group_members::member_id.eq_any(chunk)),
        )
        .execute(c)?;
    }
    Ok(())
}

/// Makes the members exactly `members`, writing only the difference.
fn set(c: &mut AnyConnection, tenant_id: &str, group_id: &str, members: &[Member]) -> QueryResult<()> {
    let wanted = dedup(members);
    let current = stored(c, tenant_id, group_id)?;
    let wanted_values: HashSet<&str> = wanted.iter().map(|m| m.value.as_str()).collect();
    let gone: Vec<String> = current.keys().filter(|v| !wanted_values.contains(v.as_str())).cloned().collect();
    remove(c, tenant_id, group_id, &gone)?;
    let mut new = Vec::new();
    for m in wanted {
        match current.get(&m.value) {
            None => new.push(m),
            Some(ty) if *ty != m.r#type => {
                diesel::update(
                    group_members::table
                        .filter(group_members::tenant_id.eq(tenant_id))
                        .filter(group_members::group_id.eq(group_id))
                        .filter(group_members::member_id.eq(&m.value)),
                )
                .set(group_members::member_type.eq(m.r#type.as_deref()))
                .execute(c)?;
            }
            Some(_) => {}
        }
    }
    insert(c, tenant_id, group_id, &new)
}

/// The members with duplicate values dropped, first occurrence kept.
pub(crate) fn dedup(members: &[Member]) -> Vec<&Member> {
    let mut seen = HashSet::with_capacity(members.len());
    members.iter().filter(|m| seen.insert(m.value.as_str())).collect()
}
