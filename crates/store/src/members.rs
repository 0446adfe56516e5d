//! Group membership rows: loading, adding, removing, replacing — each touching only the rows it changes.

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;

use crate::connection::{AnyConnection, on_inner};
use crate::models::resource::{MemberRow, NewMemberRow};
use crate::resource::{Kind, Member, MembersChange};
use crate::schema::{group_members, groups, users};

/// Values per `IN (…)` list and rows per multi-row `INSERT`: well under SQLite's 32,766 and
/// PostgreSQL's 65,535 bind parameters.
pub(crate) const CHUNK: usize = 500;

/// The columns of [`MemberRow`].
macro_rules! member_columns {
    () => {
        (group_members::member_id, group_members::member_type, group_members::member_display)
    };
}

/// The members of one group, ordered by value, each with its type and display name — all three
/// kept on the membership row (see [`names`] and [`renamed`]), so this is one scan of the group's
/// rows in its primary key's order, never a probe of `users` or `groups` per member.
pub(crate) fn load(c: &mut AnyConnection, tenant_id: &str, group_id: &str) -> QueryResult<Vec<Member>> {
    // On the engine's own connection: the rows come straight from its cursor, not through the
    // connection enum's row type (a seventh of the time of reading 100,000 members).
    let rows = on_inner!(c, |c| group_members::table
        .filter(group_members::tenant_id.eq(tenant_id))
        .filter(group_members::group_id.eq(group_id))
        .order(group_members::member_id)
        .select(member_columns!())
        .load::<MemberRow>(c))?;
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
        let rows = on_inner!(c, |c| group_members::table
            .filter(group_members::tenant_id.eq(tenant_id))
            .filter(group_members::group_id.eq_any(chunk))
            .order((group_members::group_id, group_members::member_id))
            .select((group_members::group_id, member_columns!()))
            .load::<(String, MemberRow)>(c))?;
        for (group_id, row) in rows {
            out.entry(group_id).or_default().push(to_member(row));
        }
    }
    Ok(out)
}

/// The groups each of `user_ids` is a direct member of, as a user's `groups` carry them (see
/// `Resource::members`): the group's id and displayName, ordered by id. Users of no group are
/// absent. One probe of `group_members_member` per user, joined to `groups` by primary key; one
/// statement per [`CHUNK`] users.
pub(crate) fn groups_of(
    c: &mut AnyConnection,
    tenant_id: &str,
    user_ids: &[&str],
) -> QueryResult<HashMap<String, Vec<Member>>> {
    let mut out: HashMap<String, Vec<Member>> = HashMap::new();
    for chunk in user_ids.chunks(CHUNK) {
        let rows = on_inner!(c, |c| group_members::table
            .inner_join(
                groups::table
                    .on(groups::tenant_id.eq(group_members::tenant_id).and(groups::id.eq(group_members::group_id))),
            )
            .filter(group_members::tenant_id.eq(tenant_id))
            .filter(group_members::member_id.eq_any(chunk))
            .order((group_members::member_id, group_members::group_id))
            .select((group_members::member_id, group_members::group_id, groups::display_name))
            .load::<(String, String, String)>(c))?;
        for (user_id, group_id, display) in rows {
            out.entry(user_id).or_default().push(Member {
                value: group_id,
                r#type: Some(Kind::Group.resource_type().to_owned()),
                display: Some(display),
            });
        }
    }
    Ok(out)
}

fn to_member(row: MemberRow) -> Member {
    Member { value: row.member_id, r#type: row.member_type, display: row.member_display }
}

/// What each of `ids` is and is called: a user's displayName (else its userName), a group's
/// displayName. Ids that name nothing are absent.
///
/// On PostgreSQL the rows are read `FOR SHARE`: a rename of one of them waits until the
/// transaction that adds it as a member commits, and the rename's own rewrite of the membership
/// rows ([`renamed`], a later statement with a later snapshot) then sees the new row. Without the
/// lock, a rename committed between this read and the add's commit would leave the old name on
/// the new row. SQLite has one writer at a time, so the two cannot interleave.
fn names(c: &mut AnyConnection, tenant_id: &str, ids: &[&str]) -> QueryResult<HashMap<String, (Kind, String)>> {
    let mut out = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let users = users::table.filter(users::tenant_id.eq(tenant_id)).filter(users::id.eq_any(chunk)).select((
            users::id,
            users::user_name,
            users::display_name,
        ));
        let groups = groups::table
            .filter(groups::tenant_id.eq(tenant_id))
            .filter(groups::id.eq_any(chunk))
            .select((groups::id, groups::display_name));
        let (found_users, found_groups) = match c {
            AnyConnection::Sqlite(c) => {
                (users.load::<(String, String, Option<String>)>(c)?, groups.load::<(String, String)>(c)?)
            }
            AnyConnection::Pg(c) => (
                users.for_share().load::<(String, String, Option<String>)>(c)?,
                groups.for_share().load::<(String, String)>(c)?,
            ),
        };
        for (id, user_name, display) in found_users {
            out.insert(id, (Kind::User, display.unwrap_or(user_name)));
        }
        for (id, display) in found_groups {
            out.insert(id, (Kind::Group, display));
        }
    }
    Ok(out)
}

/// A user or group was renamed (its display name, as a member, is now `display`): rewrites the
/// name on its membership rows. Runs in the rename's transaction, after the statement that
/// renamed it (see [`names`] for why after).
pub(crate) fn renamed(c: &mut AnyConnection, tenant_id: &str, member_id: &str, display: &str) -> QueryResult<usize> {
    diesel::update(
        group_members::table
            .filter(group_members::tenant_id.eq(tenant_id))
            .filter(group_members::member_id.eq(member_id)),
    )
    .set(group_members::member_display.eq(display))
    .execute(c)
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

/// Which members `changes` will add to or remove from the group, read before any of them is
/// written (see `outbox::members_moved` for why before): the values whose presence differs
/// after the changes, in order, from before. Reads only the rows of the values named, unless a
/// change replaces or clears the whole list (then every member row's id).
pub(crate) fn moved_by(
    c: &mut AnyConnection,
    tenant_id: &str,
    group_id: &str,
    changes: &[MembersChange],
) -> QueryResult<Vec<String>> {
    let whole = changes.iter().any(|ch| matches!(ch, MembersChange::Set(_) | MembersChange::Clear));
    let before: HashSet<String> = if whole {
        stored(c, tenant_id, group_id)?.into_keys().collect()
    } else {
        let named: Vec<&str> = changes
            .iter()
            .flat_map(|ch| -> Vec<&str> {
                match ch {
                    MembersChange::Add(ms) => ms.iter().map(|m| m.value.as_str()).collect(),
                    MembersChange::Remove(vs) => vs.iter().map(String::as_str).collect(),
                    MembersChange::Set(_) | MembersChange::Clear => Vec::new(),
                }
            })
            .collect();
        present(c, tenant_id, group_id, &named)?
    };
    let mut after = before.clone();
    for ch in changes {
        match ch {
            MembersChange::Add(ms) => after.extend(ms.iter().map(|m| m.value.clone())),
            MembersChange::Remove(vs) => vs.iter().for_each(|v| {
                after.remove(v);
            }),
            MembersChange::Clear => after.clear(),
            MembersChange::Set(ms) => after = ms.iter().map(|m| m.value.clone()).collect(),
        }
    }
    Ok(before.symmetric_difference(&after).cloned().collect())
}

/// The ids of the group's members (for its delete: every member moves out).
pub(crate) fn ids(c: &mut AnyConnection, tenant_id: &str, group_id: &str) -> QueryResult<Vec<String>> {
    group_members::table
        .filter(group_members::tenant_id.eq(tenant_id))
        .filter(group_members::group_id.eq(group_id))
        .select(group_members::member_id)
        .load::<String>(c)
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
    let values: Vec<&str> = members.iter().map(|m| m.value.as_str()).collect();
    let existing = present(c, tenant_id, group_id, &values)?;
    let new: Vec<&Member> = members.into_iter().filter(|m| !existing.contains(&m.value)).collect();
    insert(c, tenant_id, group_id, &new)
}

/// Which of `values` are members of the group now: one probe of the primary key per [`CHUNK`].
fn present(c: &mut AnyConnection, tenant_id: &str, group_id: &str, values: &[&str]) -> QueryResult<HashSet<String>> {
    let mut found = HashSet::new();
    for chunk in values.chunks(CHUNK) {
        found.extend(
            group_members::table
                .filter(group_members::tenant_id.eq(tenant_id))
                .filter(group_members::group_id.eq(group_id))
                .filter(group_members::member_id.eq_any(chunk))
                .select(group_members::member_id)
                .load::<String>(c)?,
        );
    }
    Ok(found)
}

/// Inserts members known to be absent, each with what it is and its name as read now (see
/// [`names`]); a member whose row is gone keeps the type it was given and no name.
pub(crate) fn insert(c: &mut AnyConnection, tenant_id: &str, group_id: &str, members: &[&Member]) -> QueryResult<()> {
    for chunk in members.chunks(CHUNK) {
        let ids: Vec<&str> = chunk.iter().map(|m| m.value.as_str()).collect();
        let named = names(c, tenant_id, &ids)?;
        let rows: Vec<NewMemberRow<'_>> = chunk
            .iter()
            .map(|m| {
                let (member_type, member_display) = match named.get(&m.value) {
                    Some((kind, display)) => (Some(kind.resource_type()), Some(display.as_str())),
                    None => (m.r#type.as_deref(), None),
                };
                NewMemberRow { tenant_id, group_id, member_id: &m.value, member_type, member_display }
            })
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
