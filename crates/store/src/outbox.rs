//! The outbox: deliveries (one row = "target T must converge on resource R"), their attempt
//! history, and the links between local resources and their copies at each target.
//!
//! Rows are written in the same transaction as the resource change that asks for them
//! ([`Store::create_with`], [`Store::update_with`], [`Store::delete_with`]), so an acknowledged
//! change always has its deliveries. Dispatchers claim due rows with a lease
//! ([`Store::claim_deliveries`]; PostgreSQL skips rows another dispatcher holds with
//! `FOR UPDATE SKIP LOCKED`), and a dispatcher that dies leaves rows whose lease expires and that
//! another claim picks up.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;
use scimgw_scim::ScimError;
use uuid::Uuid;

use crate::cached::{Val, fixed};
use crate::connection::{AnyConnection, on_inner};
use crate::error::StoreError;
use crate::resource::{Kind, from_us, now_us};
use crate::schema::{deliveries, delivery_attempts, links};
use crate::store::Store;

/// A delivery to record with a resource change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueue {
    /// The target's name.
    pub target: String,
    /// `Some(reason)`: the change breaks this target's rules and its policy is to skip; the row
    /// is recorded as `skipped` with the reason and never delivered.
    pub skipped: Option<String>,
    /// A user's account name at this target, when the target derives it rather than taking the
    /// gateway's (unique) userName — JumpCloud's username from the mail nickname or an email's
    /// local part, which can give two people one name. The store refuses the change with 409
    /// `uniqueness` when another user's account there already has that name (or, with
    /// `skip_if_taken`, records this delivery as skipped), in the change's own write.
    pub account_key: Option<String>,
    /// With `account_key`: skip this delivery rather than refuse the change (`on_invalid = "skip"`).
    pub skip_if_taken: bool,
    /// Of what: the changed resource itself, or — for a group's change, at a target whose scope
    /// reads `groups` — the users whose membership it changes.
    pub of: Of,
}

/// What an [`Enqueue`] of a group's change delivers (a user's change delivers the user).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Of {
    /// The changed resource.
    #[default]
    Resource,
    /// Each user the change adds to or removes from the group (a delete: every user member):
    /// a delivery of that user, so the target decides its scope again. For a target whose
    /// scope reads `groups`.
    MovedMembers,
    /// When the change renames the group: one fan-out row ([`Delivery::fan_out`]) that the
    /// dispatcher works off in pages, queueing a delivery of every user member. For a target
    /// whose scope reads `groups.display`.
    MembersIfRenamed,
}

impl Enqueue {
    /// A delivery to make.
    pub fn deliver(target: impl Into<String>) -> Self {
        Enqueue { target: target.into(), skipped: None, account_key: None, skip_if_taken: false, of: Of::Resource }
    }

    /// A delivery skipped for `reason`.
    pub fn skip(target: impl Into<String>, reason: impl Into<String>) -> Self {
        Enqueue { skipped: Some(reason.into()), ..Enqueue::deliver(target) }
    }

    /// For a group's change: deliveries of the users it moves in or out (see [`Of::MovedMembers`]).
    pub fn moved_members(target: impl Into<String>) -> Self {
        Enqueue { of: Of::MovedMembers, ..Enqueue::deliver(target) }
    }

    /// For a group's change: its members re-evaluated if it renames the group (see
    /// [`Of::MembersIfRenamed`]).
    pub fn members_if_renamed(target: impl Into<String>) -> Self {
        Enqueue { of: Of::MembersIfRenamed, ..Enqueue::deliver(target) }
    }

    /// The same delivery, guarded by the account name `key` (folded to lower case) it gives the
    /// user at the target (see [`Enqueue::account_key`]).
    pub fn with_account_key(mut self, key: &str, skip_if_taken: bool) -> Self {
        self.account_key = Some(key.to_lowercase());
        self.skip_if_taken = skip_if_taken;
        self
    }
}

/// The user holding `key` as its account name at `target`, other than `user_id` (a deleted link
/// holds nothing).
pub(crate) fn account_key_holder(
    c: &mut AnyConnection,
    tenant_id: &str,
    target: &str,
    key: &str,
    user_id: &str,
) -> Result<Option<String>, StoreError> {
    Ok(links::table
        .filter(links::tenant_id.eq(tenant_id))
        .filter(links::target.eq(target))
        .filter(links::resource_type.eq(Kind::User.resource_type()))
        .filter(links::remote_key.eq(key))
        .filter(links::state.ne("deleted"))
        .filter(links::local_id.ne(user_id))
        .select(links::local_id)
        .first::<String>(c)
        .optional()?)
}

/// Checks each delivery's account name (see [`Enqueue::account_key`]) before a user's change is
/// written: another user holding it refuses the change with 409 `uniqueness` naming the target,
/// the name and the holder — or, with `skip_if_taken`, turns that delivery into a skip saying
/// the same. Deliveries without a name cost nothing.
pub(crate) fn check_account_keys(
    c: &mut AnyConnection,
    tenant_id: &str,
    user_id: &str,
    outbox: &mut [Enqueue],
) -> Result<(), StoreError> {
    for e in outbox.iter_mut().filter(|e| e.skipped.is_none()) {
        let Some(key) = e.account_key.as_deref() else { continue };
        let Some(holder) = account_key_holder(c, tenant_id, &e.target, key, user_id)? else { continue };
        let why = format!(
            "{}: the account name \"{key}\" this user would have there is already the account of user {holder}; \
             two people would share one account. Change what the name is derived from (the target's username_from) \
             for one of them",
            e.target
        );
        if e.skip_if_taken {
            e.skipped = Some(why);
        } else {
            return Err(StoreError::Rejected(ScimError::uniqueness(why)));
        }
    }
    Ok(())
}

/// Where a delivery is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    /// Waiting for its first attempt.
    Pending,
    /// An attempt failed; the next is due at `due`.
    Failed,
    /// Given up (a permanent error, or too many attempts); `retry` re-queues it.
    Dead,
    /// The target holds the state it was asked to converge on (or a later one).
    Done,
    /// Not delivered: the change broke the target's rules and its policy is to skip.
    Skipped,
    /// Was dead, until a later delivery of the same resource to the same target succeeded: the
    /// target holds the resource's current state, so nothing is left to retry. Its `last_error`
    /// says so, before what killed it.
    Superseded,
}

impl DeliveryState {
    /// Every state, in the order `deliveries list` shows them.
    pub const ALL: [DeliveryState; 6] = [
        DeliveryState::Pending,
        DeliveryState::Failed,
        DeliveryState::Dead,
        DeliveryState::Done,
        DeliveryState::Skipped,
        DeliveryState::Superseded,
    ];

    /// The stored and printed name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Failed => "failed",
            DeliveryState::Dead => "dead",
            DeliveryState::Done => "done",
            DeliveryState::Skipped => "skipped",
            DeliveryState::Superseded => "superseded",
        }
    }

    /// The state named `s`.
    pub fn parse(s: &str) -> Option<DeliveryState> {
        DeliveryState::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

impl std::fmt::Display for DeliveryState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn kind_of(s: &str) -> Kind {
    if s == "Group" || s == FAN_OUT { Kind::Group } else { Kind::User }
}

/// One outbox row.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// Its id (a UUID).
    pub id: String,
    /// The tenant.
    pub tenant_id: String,
    /// The target's name.
    pub target: String,
    /// User or group.
    pub kind: Kind,
    /// A group's fan-out row rather than a delivery of the group: the group was renamed and the
    /// target's scope reads `groups.display`, so each of its user members is queued for a
    /// delivery of its own ([`Store::queue_members`], page by page). Its resource type reads
    /// `GroupMembers`.
    pub fan_out: bool,
    /// The local resource id.
    pub resource_id: String,
    /// Where it is.
    pub state: DeliveryState,
    /// The resource version of the latest change it stands for (0 after a deletion).
    pub version: i64,
    /// Attempts made so far.
    pub attempts: i32,
    /// When the next attempt is due.
    pub due: DateTime<Utc>,
    /// The dispatcher holding it, while one does.
    pub lease_owner: Option<String>,
    /// The last failure, or why it was skipped.
    pub last_error: Option<String>,
    /// When it was first written.
    pub created: DateTime<Utc>,
    /// When it last changed.
    pub updated: DateTime<Utc>,
}

#[derive(Queryable)]
struct DeliveryRow {
    id: String,
    tenant_id: String,
    target: String,
    resource_type: String,
    resource_id: String,
    state: String,
    version: i64,
    attempts: i32,
    due_us: i64,
    lease_owner: Option<String>,
    _lease_until_us: Option<i64>,
    last_error: Option<String>,
    created_us: i64,
    updated_us: i64,
}

impl From<DeliveryRow> for Delivery {
    fn from(r: DeliveryRow) -> Self {
        Delivery {
            id: r.id,
            tenant_id: r.tenant_id,
            target: r.target,
            kind: kind_of(&r.resource_type),
            fan_out: r.resource_type == FAN_OUT,
            resource_id: r.resource_id,
            state: DeliveryState::parse(&r.state).unwrap_or(DeliveryState::Pending),
            version: r.version,
            attempts: r.attempts,
            due: from_us(r.due_us),
            lease_owner: r.lease_owner,
            last_error: r.last_error,
            created: from_us(r.created_us),
            updated: from_us(r.updated_us),
        }
    }
}

/// One attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Queryable)]
pub struct Attempt {
    /// 1, 2, …
    pub attempt: i32,
    /// When it ended (microseconds since the epoch).
    pub at_us: i64,
    /// `done`, `retry`, `dead`, `skipped`.
    pub outcome: String,
    /// What was done, or what the target said.
    pub detail: Option<String>,
    /// How long it took.
    pub duration_ms: i64,
}

impl Attempt {
    /// When it ended.
    pub fn at(&self) -> DateTime<Utc> {
        from_us(self.at_us)
    }
}

/// How an attempt ended, for [`Store::finish_delivery`].
#[derive(Debug, Clone, PartialEq)]
pub struct Finish {
    /// `Done`, `Failed` (retry after `retry_in`), `Dead` or `Skipped`.
    pub state: DeliveryState,
    /// For `Failed`: when to try again.
    pub retry_in: Duration,
    /// What was done, or the error.
    pub detail: Option<String>,
    /// How long the attempt took.
    pub duration: Duration,
}

/// A local resource's copy at one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The tenant.
    pub tenant_id: String,
    /// The target's name.
    pub target: String,
    /// User or group.
    pub kind: Kind,
    /// The local id.
    pub local_id: String,
    /// The target's id for it, once known.
    pub remote_id: Option<String>,
    /// The last local version the target was brought to.
    pub delivered_version: Option<i64>,
    /// `active`, `deactivated`, `deleted`.
    pub state: String,
    /// The last error of a delivery for it, cleared by a success.
    pub last_error: Option<String>,
    /// When it last changed (microseconds since the epoch).
    pub updated_us: i64,
    /// What the target was last sent (the adapter's translated payload, JSON text): the base an
    /// update is diffed against. `None` when unknown (a link older than this column, or one a
    /// reconcile repair or a resync cleared): the target's copy is read back instead.
    pub delivered_payload: Option<String>,
    /// The account's name at a target that derives names (JumpCloud's username from the
    /// email's local part): what another user's change is checked against. Given by the
    /// dispatcher, which has the payload parsed; `None` keeps the name recorded before.
    pub account_name: Option<String>,
}

#[derive(Queryable, Insertable, AsChangeset)]
#[diesel(table_name = links, treat_none_as_null = true)]
struct LinkRow {
    tenant_id: String,
    target: String,
    resource_type: String,
    local_id: String,
    remote_id: Option<String>,
    delivered_version: Option<i64>,
    state: String,
    last_error: Option<String>,
    updated_us: i64,
    delivered_payload: Option<String>,
    /// The user's account name at the target, from `delivered_payload` (see `link_row`).
    remote_key: Option<String>,
}

/// One line of [`Store::outbox_stats`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxStat {
    /// The tenant.
    pub tenant_id: String,
    /// The target.
    pub target: String,
    /// The state (`pending`, `failed`, `dead`, `skipped`).
    pub state: String,
    /// How many rows.
    pub count: i64,
    /// When the oldest of them was written (microseconds since the epoch).
    pub oldest_created_us: i64,
}

/// Which deliveries `Store::deliveries` lists.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter<'a> {
    /// Only this tenant's.
    pub tenant_id: Option<&'a str>,
    /// Only this target's.
    pub target: Option<&'a str>,
    /// Only in this state.
    pub state: Option<DeliveryState>,
    /// Only this resource's.
    pub resource_id: Option<&'a str>,
    /// At most this many, newest first (0: 100).
    pub limit: i64,
}

/// Records `entries` for a change of (kind, resource_id) at `version`, inside the caller's write
/// transaction. There is at most one live (pending or failed) row per target and resource: a
/// live row absorbs the change (coalescing) by taking the new version. If a dispatcher holds it
/// and may have read the state before this change, [`Store::finish_delivery`] sees the version
/// moved and puts the row back to pending instead of done, so the change is delivered too.
/// Two deliveries of one resource to one target therefore never run at once (which could let
/// an older state land after a newer one).
///
/// The invariant holds on PostgreSQL too: the caller has already written the resource row in
/// this transaction, which serialises concurrent changes of one resource, so the second
/// transaction's statement here sees the first one's row.
pub(crate) fn enqueue(
    c: &mut AnyConnection,
    tenant_id: &str,
    kind: Kind,
    resource_id: &str,
    version: i64,
    entries: &[Enqueue],
) -> Result<(), StoreError> {
    let now = now_us();
    for e in entries.iter().filter(|e| e.of == Of::Resource) {
        if e.skipped.is_none() {
            struct Absorb;
            let absorbed = fixed::<Absorb, 6>(
                "UPDATE \"deliveries\" SET version = ?, updated_us = ? WHERE tenant_id = ? AND target = ? \
                 AND resource_type = ? AND resource_id = ? AND state IN ('pending', 'failed')",
                [
                    Val::Int(version),
                    Val::Int(now),
                    Val::Text(tenant_id),
                    Val::Text(&e.target),
                    Val::Text(kind.resource_type()),
                    Val::Text(resource_id),
                ],
            );
            let absorbed = on_inner!(c, |c| absorbed.execute(c))?;
            if absorbed > 0 {
                continue;
            }
        }
        let (state, error) = match &e.skipped {
            Some(reason) => (DeliveryState::Skipped, Some(reason.as_str())),
            None => (DeliveryState::Pending, None),
        };
        // On the engine's own connection (as all hot statements here): diesel caches it by type.
        let id = Uuid::now_v7().to_string();
        on_inner!(c, |c| diesel::insert_into(deliveries::table)
            .values((
                deliveries::id.eq(&id),
                deliveries::tenant_id.eq(tenant_id),
                deliveries::target.eq(&e.target),
                deliveries::resource_type.eq(kind.resource_type()),
                deliveries::resource_id.eq(resource_id),
                deliveries::state.eq(state.as_str()),
                deliveries::version.eq(version),
                deliveries::attempts.eq(0),
                deliveries::due_us.eq(now),
                deliveries::last_error.eq(error),
                deliveries::created_us.eq(now),
                deliveries::updated_us.eq(now),
            ))
            .execute(c))?;
    }
    Ok(())
}

/// The resource type of a fan-out row (see [`Delivery::fan_out`]).
pub(crate) const FAN_OUT: &str = "GroupMembers";

/// A group's membership changed for the users `moved` (any order; ids that are no user, such as
/// nested groups, are passed over): their `groups` attribute changed, so each gets a new version
/// (its ETag and `meta.lastModified` move, and a delivery of the user that a dispatcher holds
/// right now goes back to pending when it finishes: it may have read the old membership), and a
/// delivery to each target of `entries` that asks for [`Of::MovedMembers`].
///
/// In the group change's transaction, *before* its member rows are written: the users' rows are
/// locked in id order ahead of the membership rows, the order a user's rename takes them in
/// (its row, then its membership rows), so the two cannot deadlock on PostgreSQL.
pub(crate) fn members_moved(
    c: &mut AnyConnection,
    tenant_id: &str,
    moved: &mut [String],
    entries: &[Enqueue],
) -> Result<(), StoreError> {
    use crate::schema::users;
    if moved.is_empty() {
        return Ok(());
    }
    moved.sort_unstable();
    let deliver: Vec<Enqueue> = entries
        .iter()
        .filter(|e| e.of == Of::MovedMembers)
        .map(|e| Enqueue { of: Of::Resource, ..e.clone() })
        .collect();
    let now = now_us();
    for chunk in moved.chunks(crate::members::CHUNK) {
        if let AnyConnection::Pg(pg) = c {
            // In id order, whatever order the UPDATE's plan visits them in: two group writes
            // moving the same users take their locks in one order.
            users::table
                .filter(users::tenant_id.eq(tenant_id))
                .filter(users::id.eq_any(chunk))
                .order(users::id)
                .select(users::id)
                .for_update()
                .load::<String>(pg)?;
        }
        diesel::update(users::table.filter(users::tenant_id.eq(tenant_id)).filter(users::id.eq_any(chunk)))
            .set((users::version.eq(users::version + 1), users::modified_us.eq(now)))
            .execute(c)?;
        if deliver.is_empty() {
            continue;
        }
        let versions = users::table
            .filter(users::tenant_id.eq(tenant_id))
            .filter(users::id.eq_any(chunk))
            .select((users::id, users::version))
            .load::<(String, i64)>(c)?;
        enqueue_users(c, tenant_id, &versions, &deliver)?;
    }
    Ok(())
}

/// A delivery row as a multi-row `INSERT` writes it (NULL, not DEFAULT, for `None`: SQLite's
/// multi-row form has no DEFAULT).
#[derive(Insertable)]
#[diesel(table_name = deliveries, treat_none_as_default_value = false)]
struct NewDelivery<'a> {
    id: String,
    tenant_id: &'a str,
    target: &'a str,
    resource_type: &'a str,
    resource_id: &'a str,
    state: &'a str,
    version: i64,
    attempts: i32,
    due_us: i64,
    last_error: Option<&'a str>,
    created_us: i64,
    updated_us: i64,
}

/// [`enqueue`] for many users at once (at most [`crate::members::CHUNK`], each with its current
/// version), set-based: per target, one read of which of them have a live row (each of those
/// absorbs the change by itself, as `enqueue` does), and one multi-row `INSERT` for the rest —
/// three statements for 500 users rather than a thousand, so a group of 100,000 that is deleted
/// costs its writer hundreds of statements, not hundreds of thousands.
pub(crate) fn enqueue_users(
    c: &mut AnyConnection,
    tenant_id: &str,
    users: &[(String, i64)],
    entries: &[Enqueue],
) -> Result<(), StoreError> {
    if users.is_empty() {
        return Ok(());
    }
    let now = now_us();
    let ids: Vec<&str> = users.iter().map(|(id, _)| id.as_str()).collect();
    for e in entries.iter().filter(|e| e.of == Of::Resource && e.skipped.is_none() && e.account_key.is_none()) {
        let live: std::collections::HashSet<String> = deliveries::table
            .filter(deliveries::tenant_id.eq(tenant_id))
            .filter(deliveries::target.eq(&e.target))
            .filter(deliveries::resource_type.eq(Kind::User.resource_type()))
            .filter(deliveries::resource_id.eq_any(&ids))
            .filter(deliveries::state.eq_any([DeliveryState::Pending.as_str(), DeliveryState::Failed.as_str()]))
            .select(deliveries::resource_id)
            .load::<String>(c)?
            .into_iter()
            .collect();
        type Users<'u> = Vec<&'u (String, i64)>;
        let (absorbing, fresh): (Users<'_>, Users<'_>) = users.iter().partition(|(id, _)| live.contains(id));
        for (id, version) in absorbing {
            enqueue(c, tenant_id, Kind::User, id, *version, std::slice::from_ref(e))?;
        }
        let rows: Vec<NewDelivery<'_>> = fresh
            .into_iter()
            .map(|(id, version)| NewDelivery {
                id: Uuid::now_v7().to_string(),
                tenant_id,
                target: &e.target,
                resource_type: Kind::User.resource_type(),
                resource_id: id,
                state: DeliveryState::Pending.as_str(),
                version: *version,
                attempts: 0,
                due_us: now,
                last_error: None,
                created_us: now,
                updated_us: now,
            })
            .collect();
        if !rows.is_empty() {
            on_inner!(c, |inner| diesel::insert_into(deliveries::table).values(&rows).execute(inner))?;
        }
    }
    // What the set-based path does not take (never built for members today) goes one by one.
    for e in entries.iter().filter(|e| e.of == Of::Resource && (e.skipped.is_some() || e.account_key.is_some())) {
        for (id, version) in users {
            enqueue(c, tenant_id, Kind::User, id, *version, std::slice::from_ref(e))?;
        }
    }
    Ok(())
}

/// A fan-out page (see `Store::queue_members`): a delivery of each of `members` (user ids) to
/// `target` at its current version. The version is not bumped — a rename leaves the user as a
/// GET shows it apart from one group's name — except for users whose delivery to `target` is
/// running right now: that one may have read the old name, and only a moved version sends its
/// row back to pending when it finishes.
fn requeue_members(
    c: &mut AnyConnection,
    tenant_id: &str,
    members: &mut [String],
    target: &str,
) -> Result<(), StoreError> {
    use crate::schema::users;
    let mut running: Vec<String> = deliveries::table
        .filter(deliveries::tenant_id.eq(tenant_id))
        .filter(deliveries::target.eq(target))
        .filter(deliveries::resource_type.eq(Kind::User.resource_type()))
        .filter(deliveries::resource_id.eq_any(&*members))
        .filter(deliveries::state.eq_any([DeliveryState::Pending.as_str(), DeliveryState::Failed.as_str()]))
        .filter(deliveries::lease_owner.is_not_null())
        .select(deliveries::resource_id)
        .load::<String>(c)?;
    members_moved(c, tenant_id, &mut running, &[])?;
    let versions = users::table
        .filter(users::tenant_id.eq(tenant_id))
        .filter(users::id.eq_any(&*members))
        .select((users::id, users::version))
        .load::<(String, i64)>(c)?;
    enqueue_users(c, tenant_id, &versions, &[Enqueue::deliver(target)])
}

/// A rename of group `group_id`: a fan-out row per target of `entries` that asks for
/// [`Of::MembersIfRenamed`] (one live row per target and group, as for any delivery).
pub(crate) fn enqueue_fan_out(
    c: &mut AnyConnection,
    tenant_id: &str,
    group_id: &str,
    version: i64,
    entries: &[Enqueue],
) -> Result<(), StoreError> {
    let now = now_us();
    for e in entries.iter().filter(|e| e.of == Of::MembersIfRenamed) {
        let live = diesel::update(
            deliveries::table
                .filter(deliveries::tenant_id.eq(tenant_id))
                .filter(deliveries::target.eq(&e.target))
                .filter(deliveries::resource_type.eq(FAN_OUT))
                .filter(deliveries::resource_id.eq(group_id))
                .filter(deliveries::state.eq_any([DeliveryState::Pending.as_str(), DeliveryState::Failed.as_str()])),
        )
        .set((deliveries::version.eq(version), deliveries::updated_us.eq(now)))
        .execute(c)?;
        if live > 0 {
            continue;
        }
        diesel::insert_into(deliveries::table)
            .values((
                deliveries::id.eq(Uuid::now_v7().to_string()),
                deliveries::tenant_id.eq(tenant_id),
                deliveries::target.eq(&e.target),
                deliveries::resource_type.eq(FAN_OUT),
                deliveries::resource_id.eq(group_id),
                deliveries::state.eq(DeliveryState::Pending.as_str()),
                deliveries::version.eq(version),
                deliveries::attempts.eq(0),
                deliveries::due_us.eq(now),
                deliveries::created_us.eq(now),
                deliveries::updated_us.eq(now),
            ))
            .execute(c)?;
    }
    Ok(())
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// The due rows a claim takes, oldest due first. The states are written out, not bound: only then
/// can either engine use the partial index `deliveries_open_due` (its condition must follow from
/// the query's), which holds the open rows in due order — a claim then reads about `limit` index
/// entries however many rows wait, instead of every open row and a sort (`plans.rs` checks it).
macro_rules! claim_sql {
    ($indexed_by:literal) => {
        concat!(
            "SELECT id FROM deliveries ",
            $indexed_by,
            "WHERE state IN ('pending', 'failed') AND due_us <= ? \
             AND (lease_until_us IS NULL OR lease_until_us < ?) ORDER BY due_us LIMIT ?"
        )
    };
}
/// The claim on SQLite, where the batch holds the write lock and no row lock exists. The index is
/// named: without statistics (SQLite gathers none by itself) the planner preferred
/// `deliveries_stats` for `state IN (…)` and sorted every open row on the writer thread, which
/// stalled the 100,000-user end-to-end run. With `INDEXED BY` a statement the index cannot serve
/// fails to prepare instead of scanning.
pub(crate) const CLAIM: &str = claim_sql!("INDEXED BY deliveries_open_due ");
/// The claim on PostgreSQL: rows another dispatcher is claiming at this moment are passed over.
pub(crate) const CLAIM_SKIP_LOCKED: &str = concat!(claim_sql!(""), " FOR UPDATE SKIP LOCKED");

impl Store {
    /// Leases up to `limit` due deliveries (pending, or failed and due) to `owner` for `lease`,
    /// oldest due first. Rows another owner holds under an unexpired lease are not taken.
    pub fn claim_deliveries(&self, owner: &str, limit: i64, lease: Duration) -> Result<Vec<Delivery>, StoreError> {
        let now = now_us();
        let until = now.saturating_add(micros(lease));
        let owner = owner.to_owned();
        self.write_owned(move |c| -> Result<Vec<Delivery>, StoreError> {
            struct ClaimSqlite;
            struct ClaimPg;
            let binds = [Val::Int(now), Val::Int(now), Val::Int(limit)];
            let ids: Vec<String> = match c {
                AnyConnection::Sqlite(inner) => {
                    fixed::<ClaimSqlite, 3>(CLAIM, binds).returning::<Text>().load(inner)?
                }
                AnyConnection::Pg(inner) => {
                    fixed::<ClaimPg, 3>(CLAIM_SKIP_LOCKED, binds).returning::<Text>().load(inner)?
                }
            };
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            diesel::update(deliveries::table.filter(deliveries::id.eq_any(&ids)))
                .set((deliveries::lease_owner.eq(&owner), deliveries::lease_until_us.eq(until)))
                .execute(c)?;
            let rows = deliveries::table
                .filter(deliveries::id.eq_any(&ids))
                .order(deliveries::due_us.asc())
                .load::<DeliveryRow>(c)?;
            Ok(rows.into_iter().map(Delivery::from).collect())
        })
    }

    /// Records the end of an attempt on a delivery `owner` holds (as claimed: `delivery.version`
    /// is the version it was claimed at), and releases it. If a change was absorbed meanwhile
    /// (the row's version moved), a done, dead or skipped outcome puts the row back to pending,
    /// due now: the attempt may have read the state before that change. `false` (and nothing
    /// written but the attempt's history) if the lease was lost: it expired and another
    /// dispatcher took the row.
    pub fn finish_delivery(&self, delivery: &Delivery, owner: &str, finish: &Finish) -> Result<bool, StoreError> {
        self.finish_delivery_linked(delivery, owner, finish, None)
    }

    /// [`Store::finish_delivery`] that also writes the link the attempt established (what the
    /// target now holds), in the same transaction: one commit per delivery instead of two, and
    /// never a done row without its link. The link is written even when the lease was lost — it
    /// records what the target holds, whoever delivers next.
    pub fn finish_delivery_linked(
        &self,
        delivery: &Delivery,
        owner: &str,
        finish: &Finish,
        link: Option<Link>,
    ) -> Result<bool, StoreError> {
        self.write_owned(finish_job(delivery, owner, finish, link))
    }

    /// [`Store::finish_delivery_linked`] for async callers (see [`Store::write_owned_async`]).
    pub async fn finish_delivery_linked_async(
        &self,
        delivery: &Delivery,
        owner: &str,
        finish: &Finish,
        link: Option<Link>,
    ) -> Result<bool, StoreError> {
        self.write_owned_async(finish_job(delivery, owner, finish, link)).await
    }

    /// One page of a fan-out row's work (see [`Delivery::fan_out`]): the next `limit` user members
    /// of the group after `after` (in id order), each given a delivery to `target` at its current
    /// version, in one short write (see `requeue_members`). Returns how many, and the last id (the
    /// next page's `after`); `None` when no member is left (or the group is gone: its delete
    /// queued its members itself). A fan-out that runs again from the start (its dispatcher died
    /// mid-way) costs the store its writes again, and each target nothing: a member's delivery
    /// finds it at that version already.
    pub async fn queue_members(
        &self,
        tenant_id: &str,
        group_id: &str,
        target: &str,
        after: &str,
        limit: i64,
    ) -> Result<Option<(usize, String)>, StoreError> {
        use crate::schema::group_members;
        let (tenant_id, group_id, target, after) =
            (tenant_id.to_owned(), group_id.to_owned(), target.to_owned(), after.to_owned());
        self.write_owned_async(move |c: &mut AnyConnection| -> Result<Option<(usize, String)>, StoreError> {
            let mut page = group_members::table
                .filter(group_members::tenant_id.eq(&tenant_id))
                .filter(group_members::group_id.eq(&group_id))
                .filter(group_members::member_id.gt(&after))
                .filter(group_members::member_type.eq(Kind::User.resource_type()))
                .order(group_members::member_id)
                .select(group_members::member_id)
                .limit(limit)
                .load::<String>(c)?;
            let Some(last) = page.last().cloned() else {
                return Ok(None);
            };
            let n = page.len();
            requeue_members(c, &tenant_id, &mut page, &target)?;
            Ok(Some((n, last)))
        })
        .await
    }

    /// Extends a lease `owner` still holds to `lease` from now (a delivery that waited for its
    /// target's capacity renews before it starts). `false` if the lease is no longer ours.
    pub fn renew_lease(&self, id: &str, owner: &str, lease: Duration) -> Result<bool, StoreError> {
        let until = now_us().saturating_add(micros(lease));
        let (id, owner) = (id.to_owned(), owner.to_owned());
        let n = self.write_owned(move |c| {
            struct Renew;
            let renew = fixed::<Renew, 3>(
                "UPDATE \"deliveries\" SET lease_until_us = ? WHERE id = ? AND lease_owner = ?",
                [Val::Int(until), Val::Text(&id), Val::Text(&owner)],
            );
            Ok(on_inner!(c, |c| renew.execute(c))?)
        })?;
        Ok(n > 0)
    }

    /// Gives back leases `owner` holds without an attempt (a shutdown before they started), so
    /// the next dispatcher takes them at once instead of after the lease.
    pub fn release_deliveries(&self, owner: &str, ids: &[String]) -> Result<usize, StoreError> {
        let (owner, ids) = (owner.to_owned(), ids.to_vec());
        self.write_owned(move |c| {
            Ok(diesel::update(
                deliveries::table.filter(deliveries::id.eq_any(&ids)).filter(deliveries::lease_owner.eq(&owner)),
            )
            .set((deliveries::lease_owner.eq(None::<String>), deliveries::lease_until_us.eq(None::<i64>)))
            .execute(c)?)
        })
    }

    /// Deliveries matching `filter`, newest first.
    pub fn deliveries(&self, filter: &DeliveryFilter<'_>) -> Result<Vec<Delivery>, StoreError> {
        let mut conn = self.conn()?;
        let mut q = deliveries::table.into_boxed();
        if let Some(t) = filter.tenant_id {
            q = q.filter(deliveries::tenant_id.eq(t));
        }
        if let Some(t) = filter.target {
            q = q.filter(deliveries::target.eq(t));
        }
        if let Some(s) = filter.state {
            q = q.filter(deliveries::state.eq(s.as_str()));
        }
        if let Some(r) = filter.resource_id {
            q = q.filter(deliveries::resource_id.eq(r));
        }
        let limit = if filter.limit > 0 { filter.limit } else { 100 };
        let rows = q
            .order((deliveries::updated_us.desc(), deliveries::id.asc()))
            .limit(limit)
            .load::<DeliveryRow>(&mut conn)?;
        Ok(rows.into_iter().map(Delivery::from).collect())
    }

    /// One delivery and its attempts, oldest first.
    pub fn delivery(&self, id: &str) -> Result<Option<(Delivery, Vec<Attempt>)>, StoreError> {
        let mut conn = self.conn()?;
        let Some(row) = deliveries::table.filter(deliveries::id.eq(id)).first::<DeliveryRow>(&mut conn).optional()?
        else {
            return Ok(None);
        };
        let attempts = delivery_attempts::table
            .filter(delivery_attempts::delivery_id.eq(id))
            .order(delivery_attempts::attempt.asc())
            .select((
                delivery_attempts::attempt,
                delivery_attempts::at_us,
                delivery_attempts::outcome,
                delivery_attempts::detail,
                delivery_attempts::duration_ms,
            ))
            .load::<Attempt>(&mut conn)?;
        Ok(Some((row.into(), attempts)))
    }

    /// Re-queues dead (or failed, or skipped) deliveries: due now, attempts counted from zero again.
    /// By id, or every dead one of one tenant's target (`ids` empty, `dead_of_target` set to
    /// `(tenant id, target name)`): target names are unique within a tenant only, so a name alone
    /// would re-queue every tenant's target of that name. Returns how many.
    pub fn retry_deliveries(&self, ids: &[String], dead_of_target: Option<(&str, &str)>) -> Result<usize, StoreError> {
        let mut conn = self.conn()?;
        let now = now_us();
        let set = (
            deliveries::state.eq(DeliveryState::Pending.as_str()),
            deliveries::attempts.eq(0),
            deliveries::due_us.eq(now),
            deliveries::lease_owner.eq(None::<String>),
            deliveries::lease_until_us.eq(None::<i64>),
            deliveries::updated_us.eq(now),
        );
        let retryable = [DeliveryState::Dead.as_str(), DeliveryState::Failed.as_str(), DeliveryState::Skipped.as_str()];
        let n = match dead_of_target {
            Some((tenant_id, target)) => diesel::update(
                deliveries::table
                    .filter(deliveries::tenant_id.eq(tenant_id))
                    .filter(deliveries::target.eq(target))
                    .filter(deliveries::state.eq(DeliveryState::Dead.as_str())),
            )
            .set(set)
            .execute(&mut conn)?,
            None => diesel::update(
                deliveries::table.filter(deliveries::id.eq_any(ids)).filter(deliveries::state.eq_any(retryable)),
            )
            .set(set)
            .execute(&mut conn)?,
        };
        Ok(n)
    }

    /// The link of a local resource at one target.
    pub fn link(&self, tenant_id: &str, target: &str, kind: Kind, local_id: &str) -> Result<Option<Link>, StoreError> {
        let mut conn = self.conn()?;
        let row = links::table
            .filter(links::tenant_id.eq(tenant_id))
            .filter(links::target.eq(target))
            .filter(links::resource_type.eq(kind.resource_type()))
            .filter(links::local_id.eq(local_id))
            .first::<LinkRow>(&mut conn)
            .optional()?;
        Ok(row.map(Link::from))
    }

    /// The user, other than `user_id`, whose account at `target` has the name `name` (compared
    /// in lower case), if any — what a change whose delivery carries that name would be refused
    /// for (see [`Enqueue::account_key`]); `scimgw preview` asks it.
    pub fn account_name_holder(
        &self,
        tenant_id: &str,
        target: &str,
        name: &str,
        user_id: &str,
    ) -> Result<Option<String>, StoreError> {
        account_key_holder(&mut *self.conn()?, tenant_id, target, &name.to_lowercase(), user_id)
    }

    /// The local id of the resource linked to the account `remote_id` at `target`, if any (a
    /// deleted link holds nothing). An account is linked to at most one resource: the store
    /// refuses a second link to it with `Conflict { attribute: "remote_id" }`, so two people are
    /// never merged into one account; adoption asks this first to say who holds it.
    pub fn link_holder(
        &self,
        tenant_id: &str,
        target: &str,
        kind: Kind,
        remote_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn()?;
        let holder = links::table
            .filter(links::tenant_id.eq(tenant_id))
            .filter(links::target.eq(target))
            .filter(links::resource_type.eq(kind.resource_type()))
            .filter(links::remote_id.eq(remote_id))
            .filter(links::state.ne("deleted"))
            .select(links::local_id)
            .first::<String>(&mut conn)
            .optional()?;
        Ok(holder)
    }

    /// Every target's link of a local resource.
    pub fn links_of(&self, tenant_id: &str, kind: Kind, local_id: &str) -> Result<Vec<Link>, StoreError> {
        let mut conn = self.conn()?;
        let rows = links::table
            .filter(links::tenant_id.eq(tenant_id))
            .filter(links::resource_type.eq(kind.resource_type()))
            .filter(links::local_id.eq(local_id))
            .order(links::target.asc())
            .load::<LinkRow>(&mut conn)?;
        Ok(rows.into_iter().map(Link::from).collect())
    }

    /// Every link of a tenant's resources of `kind` at one target (`reconcile`).
    pub fn links_at(&self, tenant_id: &str, target: &str, kind: Kind) -> Result<Vec<Link>, StoreError> {
        let mut conn = self.conn()?;
        let rows = links::table
            .filter(links::tenant_id.eq(tenant_id))
            .filter(links::target.eq(target))
            .filter(links::resource_type.eq(kind.resource_type()))
            .load::<LinkRow>(&mut conn)?;
        Ok(rows.into_iter().map(Link::from).collect())
    }

    /// The links at one target of some local resources (the members of a group, say).
    pub fn links_for(
        &self,
        tenant_id: &str,
        target: &str,
        kind: Kind,
        local_ids: &[String],
    ) -> Result<Vec<Link>, StoreError> {
        let mut conn = self.conn()?;
        let mut out = Vec::new();
        for chunk in local_ids.chunks(crate::members::CHUNK) {
            let rows = links::table
                .filter(links::tenant_id.eq(tenant_id))
                .filter(links::target.eq(target))
                .filter(links::resource_type.eq(kind.resource_type()))
                .filter(links::local_id.eq_any(chunk))
                .load::<LinkRow>(&mut conn)?;
            out.extend(rows.into_iter().map(Link::from));
        }
        Ok(out)
    }

    /// Which of `local_ids` have a live (pending or failed) delivery to `target`: resources the
    /// target is still waiting for.
    pub fn awaiting_delivery(
        &self,
        tenant_id: &str,
        target: &str,
        kind: Kind,
        local_ids: &[String],
    ) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn()?;
        let mut out = Vec::new();
        for chunk in local_ids.chunks(crate::members::CHUNK) {
            let ids = deliveries::table
                .filter(deliveries::tenant_id.eq(tenant_id))
                .filter(deliveries::target.eq(target))
                .filter(deliveries::resource_type.eq(kind.resource_type()))
                .filter(deliveries::resource_id.eq_any(chunk))
                .filter(deliveries::state.eq_any([DeliveryState::Pending.as_str(), DeliveryState::Failed.as_str()]))
                .select(deliveries::resource_id)
                .load::<String>(&mut conn)?;
            out.extend(ids);
        }
        Ok(out)
    }

    /// Outbox rows counted by tenant, target and state, with the oldest row's creation time:
    /// the gauges of `/metrics` and `scimgw status`. `done` rows only when `include_done`.
    pub fn outbox_stats(&self, include_done: bool) -> Result<Vec<OutboxStat>, StoreError> {
        let mut conn = self.conn()?;
        let states: Vec<&str> = DeliveryState::ALL
            .iter()
            .filter(|s| include_done || **s != DeliveryState::Done)
            .map(|s| s.as_str())
            .collect();
        // Grouped in the order of the `deliveries_stats` index, which holds every column read: a
        // scan of the index, no row of the table (the backlog can be hundreds of thousands).
        let mut rows = deliveries::table
            .filter(deliveries::state.eq_any(states))
            .group_by((deliveries::state, deliveries::tenant_id, deliveries::target))
            .select((
                deliveries::tenant_id,
                deliveries::target,
                deliveries::state,
                diesel::dsl::count_star(),
                diesel::dsl::min(deliveries::created_us),
            ))
            .load::<(String, String, String, i64, Option<i64>)>(&mut conn)?;
        rows.sort_by(|a, b| (&a.0, &a.1, &a.2).cmp(&(&b.0, &b.1, &b.2)));
        Ok(rows
            .into_iter()
            .map(|(tenant_id, target, state, count, oldest)| OutboxStat {
                tenant_id,
                target,
                state,
                count,
                oldest_created_us: oldest.unwrap_or(0),
            })
            .collect())
    }

    /// Queues a delivery of each of `resources` (id, current version) to `target`, and forgets
    /// the version the target last got, so that it is sent again even if unchanged (after a
    /// mapping was fixed, or a target added). Returns how many were queued.
    pub fn resync(
        &self,
        tenant_id: &str,
        target: &str,
        kind: Kind,
        resources: &[(String, i64)],
    ) -> Result<usize, StoreError> {
        let entry = [Enqueue::deliver(target)];
        let mut n = 0;
        for chunk in resources.chunks(crate::members::CHUNK) {
            self.write(|c| -> Result<(), StoreError> {
                let ids: Vec<&String> = chunk.iter().map(|(id, _)| id).collect();
                diesel::update(
                    links::table
                        .filter(links::tenant_id.eq(tenant_id))
                        .filter(links::target.eq(target))
                        .filter(links::resource_type.eq(kind.resource_type()))
                        .filter(links::local_id.eq_any(&ids)),
                )
                // The payload goes too: a resync is asked for when the target may differ from
                // what it was sent, so the next update diffs against its copy, read back.
                .set((links::delivered_version.eq(None::<i64>), links::delivered_payload.eq(None::<String>)))
                .execute(c)?;
                for (id, version) in chunk {
                    enqueue(c, tenant_id, kind, id, *version, &entry)?;
                }
                Ok(())
            })?;
            n += chunk.len();
        }
        Ok(n)
    }

    /// Writes a link (insert or replace).
    pub fn put_link(&self, link: &Link) -> Result<(), StoreError> {
        let row = link_row(link, now_us());
        self.write_owned(move |c| upsert_link(c, &row))
    }
}

/// On PostgreSQL an attempt's outcome (the row's new state, its history, the link) is committed
/// without waiting for the WAL flush (`synchronous_commit = off` for that transaction alone). A
/// server crash may then forget the last fraction of a second of outcomes — at most three
/// `wal_writer_delay`s, 600 ms by default — and those rows are claimed and delivered again,
/// exactly as after a dispatcher that died between the vendor's answer and its commit: a
/// delivery converges on the current state, a version the target already has is done without a
/// call, and a user without a link is looked up and adopted before anything is created. No write
/// an identity provider was answered for is ever committed this way. With 64 deliveries in flight
/// the outcomes' flushes were most of what PostgreSQL waited on in the 100,000-user end-to-end run
/// (issue 7, bench/RESULTS.md).
const ASYNC_OUTCOME: &str = "SET LOCAL synchronous_commit = off";

/// What [`Store::finish_delivery_linked`] writes, as a job for the writer.
fn finish_job(
    delivery: &Delivery,
    owner: &str,
    finish: &Finish,
    link: Option<Link>,
) -> impl FnOnce(&mut AnyConnection) -> Result<bool, StoreError> + Send + 'static {
    let now = now_us();
    let (id, version, owner, finish) = (delivery.id.clone(), delivery.version, owner.to_owned(), finish.clone());
    let resource_type = if delivery.fan_out { FAN_OUT } else { delivery.kind.resource_type() };
    let resource = (delivery.tenant_id.clone(), delivery.target.clone(), resource_type, delivery.resource_id.clone());
    let link = link.map(|l| link_row(&l, now));
    move |c: &mut AnyConnection| -> Result<bool, StoreError> {
        if let AnyConnection::Pg(inner) = c {
            // An outcome need not wait for its WAL flush (see `ASYNC_OUTCOME`).
            inner.batch_execute(ASYNC_OUTCOME)?;
        }
        if let Some(row) = &link {
            upsert_link(c, row)?;
        }
        let (delivery_id, owner) = (&id, &owner);
        // The attempt is numbered by the statement that inserts it: one round trip, not two.
        struct InsertAttempt;
        let duration_ms = i64::try_from(finish.duration.as_millis()).unwrap_or(i64::MAX);
        let insert = fixed::<InsertAttempt, 6>(
            "INSERT INTO delivery_attempts (delivery_id, attempt, at_us, outcome, detail, duration_ms) \
             SELECT ?, COALESCE(MAX(attempt), 0) + 1, ?, ?, ?, ? FROM delivery_attempts WHERE delivery_id = ?",
            [
                Val::Text(delivery_id),
                Val::Int(now),
                Val::Text(outcome_word(finish.state)),
                Val::OptText(finish.detail.as_deref()),
                Val::Int(duration_ms),
                Val::Text(delivery_id),
            ],
        );
        on_inner!(c, |c| insert.execute(c))?;
        let due = match finish.state {
            DeliveryState::Failed => now.saturating_add(micros(finish.retry_in)),
            _ => now,
        };
        let error = match finish.state {
            DeliveryState::Done => None,
            _ => finish.detail.as_deref(),
        };
        if record_outcome(c, delivery_id, owner, Some(version), finish.state, due, error, now)? {
            if finish.state == DeliveryState::Done {
                supersede_dead(c, delivery_id, &resource, now)?;
            }
            return Ok(true);
        }
        // The version moved: a newer change waits in this row.
        let (state, due) = match finish.state {
            DeliveryState::Failed => (DeliveryState::Failed, due),
            _ => (DeliveryState::Pending, now),
        };
        record_outcome(c, delivery_id, owner, None, state, due, error, now)
    }
}

/// Marks the dead rows of the resource a delivery just brought up to date at its target as
/// superseded, saying by which delivery. One probe of `deliveries_resource`.
fn supersede_dead(
    c: &mut AnyConnection,
    by: &str,
    (tenant_id, target, resource_type, resource_id): &(String, String, &'static str, String),
    now: i64,
) -> Result<(), StoreError> {
    struct Supersede;
    let note = format!("superseded: delivery {by} of the same resource succeeded later; ");
    let q = fixed::<Supersede, 6>(
        "UPDATE deliveries SET state = 'superseded', last_error = ? || COALESCE(last_error, ''), updated_us = ? \
         WHERE state = 'dead' AND tenant_id = ? AND target = ? AND resource_type = ? AND resource_id = ?",
        [
            Val::Text(&note),
            Val::Int(now),
            Val::Text(tenant_id),
            Val::Text(target),
            Val::Text(resource_type),
            Val::Text(resource_id),
        ],
    );
    on_inner!(c, |c| q.execute(c))?;
    Ok(())
}

/// Sets a leased row's outcome and releases it; only while it is still at `version` when one is
/// given. `false` when no row matched (the lease was lost, or the version moved).
#[allow(clippy::too_many_arguments)]
fn record_outcome(
    c: &mut AnyConnection,
    id: &str,
    owner: &str,
    version: Option<i64>,
    state: DeliveryState,
    due: i64,
    error: Option<&str>,
    now: i64,
) -> Result<bool, StoreError> {
    // One text, with and without the version condition (`fixed` needs a `&'static str`).
    macro_rules! outcome_sql {
        () => {
            "UPDATE \"deliveries\" SET state = ?, attempts = attempts + 1, due_us = ?, last_error = ?, \
             lease_owner = NULL, lease_until_us = NULL, updated_us = ? WHERE id = ? AND lease_owner = ?"
        };
    }
    struct AtVersion;
    struct AnyVersion;
    let [s, d, e, n, i, o] =
        [Val::Text(state.as_str()), Val::Int(due), Val::OptText(error), Val::Int(now), Val::Text(id), Val::Text(owner)];
    let written = match version {
        Some(v) => {
            let q = fixed::<AtVersion, 7>(concat!(outcome_sql!(), " AND version = ?"), [s, d, e, n, i, o, Val::Int(v)]);
            on_inner!(c, |c| q.execute(c))?
        }
        None => {
            let q = fixed::<AnyVersion, 6>(outcome_sql!(), [s, d, e, n, i, o]);
            on_inner!(c, |c| q.execute(c))?
        }
    };
    Ok(written > 0)
}

fn link_row(link: &Link, now: i64) -> LinkRow {
    LinkRow {
        tenant_id: link.tenant_id.clone(),
        target: link.target.clone(),
        resource_type: link.kind.resource_type().into(),
        local_id: link.local_id.clone(),
        remote_id: link.remote_id.clone(),
        delivered_version: link.delivered_version,
        state: link.state.clone(),
        last_error: link.last_error.clone(),
        updated_us: now,
        delivered_payload: link.delivered_payload.clone(),
        remote_key: link.account_name.as_deref().map(str::to_lowercase),
    }
}

/// Inserts or replaces a link. ON CONFLICT cannot go through the enum's backend; the same text
/// runs on each engine.
fn upsert_link(conn: &mut AnyConnection, row: &LinkRow) -> Result<(), StoreError> {
    struct Upsert;
    let upsert = fixed::<Upsert, 11>(
        "INSERT INTO \"links\" (tenant_id, target, resource_type, local_id, remote_id, delivered_version, state, \
         last_error, updated_us, delivered_payload, remote_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (tenant_id, target, resource_type, local_id) DO UPDATE SET remote_id = excluded.remote_id, \
         delivered_version = excluded.delivered_version, state = excluded.state, last_error = excluded.last_error, \
         updated_us = excluded.updated_us, delivered_payload = excluded.delivered_payload, \
         remote_key = COALESCE(excluded.remote_key, \"links\".remote_key)",
        [
            Val::Text(&row.tenant_id),
            Val::Text(&row.target),
            Val::Text(&row.resource_type),
            Val::Text(&row.local_id),
            Val::OptText(row.remote_id.as_deref()),
            Val::OptInt(row.delivered_version),
            Val::Text(&row.state),
            Val::OptText(row.last_error.as_deref()),
            Val::Int(row.updated_us),
            Val::OptText(row.delivered_payload.as_deref()),
            Val::OptText(row.remote_key.as_deref()),
        ],
    );
    // The only unique index an upsert can hit is `links_remote`: the account is linked to another
    // resource.
    on_inner!(conn, |c| upsert.execute(c)).map_err(StoreError::unique("remote_id"))?;
    Ok(())
}

impl From<LinkRow> for Link {
    fn from(r: LinkRow) -> Self {
        Link {
            tenant_id: r.tenant_id,
            target: r.target,
            kind: kind_of(&r.resource_type),
            local_id: r.local_id,
            remote_id: r.remote_id,
            delivered_version: r.delivered_version,
            state: r.state,
            last_error: r.last_error,
            updated_us: r.updated_us,
            delivered_payload: r.delivered_payload,
            account_name: r.remote_key,
        }
    }
}

fn outcome_word(state: DeliveryState) -> &'static str {
    match state {
        DeliveryState::Done => "done",
        DeliveryState::Failed | DeliveryState::Pending => "retry",
        DeliveryState::Dead => "dead",
        DeliveryState::Skipped => "skipped",
        DeliveryState::Superseded => "superseded",
    }
}
