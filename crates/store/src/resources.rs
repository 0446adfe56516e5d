//! Users and groups: create, get, update (read-modify-write in one transaction), delete, existence checks.

use diesel::prelude::*;
use serde_json::{Map, Value};
use tracing::instrument;
use uuid::Uuid;

use scimgw_scim::ScimError;
use scimgw_scim::value::remove_ci;

use crate::audit::{self, Audit};
use crate::cached::{Val, fixed};
use crate::connection::{AnyConnection, in_transaction, on_inner, read_tx, write_tx};
use crate::error::StoreError;
use crate::members;
use crate::models::resource::{GroupColumns, NewGroupRow, ResourceRow, UserColumns, member_name};
use crate::outbox::{self, Enqueue};
use crate::pg_batch::{Op, UserRow};
use crate::pg_writes::{self, UserWrite};
use crate::resource::{Change, Kind, Member, MembersChange, NewResource, Resource, Updated, from_us, missing, now_us};
use crate::schema::{group_members, groups};
use crate::store::Store;

/// Runs `$body` with `$t` naming the table module of `$kind` (`users` or `groups`). The body uses
/// only the columns both tables have, so each statement is written once for both kinds.
macro_rules! with_table {
    ($kind:expr, $t:ident => $body:expr) => {
        match $kind {
            Kind::User => {
                use crate::schema::users as $t;
                $body
            }
            Kind::Group => {
                use crate::schema::groups as $t;
                $body
            }
        }
    };
}
pub(crate) use with_table;

/// How often `update` re-reads optimistically after losing a race on PostgreSQL before it locks
/// the row first (which cannot lose). SQLite's `BEGIN IMMEDIATE` never loses.
const OPTIMISTIC_TRIES: usize = 3;

/// The indexed columns of a body, or the refusal of a body the tables cannot hold.
enum Columns {
    User(UserColumns),
    Group(GroupColumns),
}

impl Columns {
    fn of(kind: Kind, body: &Map<String, Value>) -> Result<Columns, StoreError> {
        match kind {
            Kind::User => UserColumns::from_body(body)
                .map(Columns::User)
                .ok_or_else(|| StoreError::Rejected(missing("userName", kind))),
            Kind::Group => GroupColumns::from_body(body)
                .map(Columns::Group)
                .ok_or_else(|| StoreError::Rejected(missing("displayName", kind))),
        }
    }
}

/// The body as stored: without what lives elsewhere (`id`, `meta`, a group's `members`).
fn stored_body(mut body: Map<String, Value>) -> Map<String, Value> {
    for key in ["id", "meta", "members"] {
        remove_ci(&mut body, key);
    }
    body
}

pub(crate) fn to_resource(kind: Kind, row: ResourceRow) -> Result<Resource, StoreError> {
    let body = match serde_json::from_str::<Value>(&row.body) {
        Ok(Value::Object(m)) => m,
        Ok(_) | Err(_) => {
            return Err(StoreError::Internal(format!("the stored body of {} is not a JSON object", row.id)));
        }
    };
    Ok(Resource {
        id: row.id,
        kind,
        body,
        version: row.version,
        created: from_us(row.created_us),
        last_modified: from_us(row.modified_us),
        members: None,
    })
}

/// One resource row, with its members when asked (groups only).
fn load(
    c: &mut AnyConnection,
    tenant_id: &str,
    kind: Kind,
    id: &str,
    with_members: bool,
) -> Result<Option<Resource>, StoreError> {
    // On the engine's own connection, so that diesel caches the statement by type (see create).
    let row = on_inner!(c, |c| with_table!(kind, t => t::table
        .filter(t::tenant_id.eq(tenant_id))
        .filter(t::id.eq(id))
        .select((t::id, t::body, t::version, t::created_us, t::modified_us))
        .first::<ResourceRow>(c)
        .optional()))?;
    let Some(row) = row else {
        return Ok(None);
    };
    let mut r = to_resource(kind, row)?;
    if with_members {
        r.members = Some(match kind {
            Kind::Group => members::load(c, tenant_id, id)?,
            Kind::User => members::groups_of(c, tenant_id, &[id])?.remove(id).unwrap_or_default(),
        });
    }
    Ok(Some(r))
}

/// One try of a read-modify-write: done, or lost to a concurrent writer (PostgreSQL only).
enum Attempt<T> {
    Done(T),
    Lost,
    /// Not written: this change must be made with the row locked, in a transaction (a rename,
    /// which also rewrites the member's name on its membership rows).
    Lock,
}

impl Store {
    /// Creates a user or group with a fresh UUID v4 id at version 1, and a group's members as rows.
    /// `Conflict { attribute: "userName" }` if another user of the tenant has the same userName,
    /// ignoring case.
    pub fn create(&self, tenant_id: &str, new: NewResource) -> Result<Resource, StoreError> {
        self.create_with(tenant_id, new, &[], None)
    }

    /// [`Store::create`], recording `outbox` deliveries of the new resource and `audit`'s event in
    /// the same transaction.
    #[instrument(skip_all, fields(tenant.id = %tenant_id, resource.kind = new.kind.resource_type()))]
    pub fn create_with(
        &self,
        tenant_id: &str,
        new: NewResource,
        outbox: &[Enqueue],
        audit: Option<Audit>,
    ) -> Result<Resource, StoreError> {
        let kind = new.kind;
        let (job, created) = create_job(tenant_id, new, outbox, audit)?;
        match kind {
            Kind::User => self.write_single(job)?,
            Kind::Group => self.write_owned(job)?,
        }
        self.after_create();
        Ok(created)
    }

    /// [`Store::create_with`] for async callers (see [`Store::write_owned_async`]).
    pub async fn create_with_async(
        &self,
        tenant_id: &str,
        new: NewResource,
        outbox: &[Enqueue],
        audit: Option<Audit>,
    ) -> Result<Resource, StoreError> {
        let created = if let (Some(batch), Kind::User) = (&self.pg_batch, new.kind) {
            // Account names at targets are checked before the batched write (see `keys_checked`).
            let outbox = self.keys_checked(tenant_id, "", outbox).await?;
            let (op, created) = create_op(tenant_id, new, &outbox, audit)?;
            if !batch.submit(op).await? {
                return Err(StoreError::Conflict { attribute: "userName" });
            }
            created
        } else {
            let kind = new.kind;
            let (job, created) = create_job(tenant_id, new, outbox, audit)?;
            match kind {
                Kind::User => self.write_single_async(job).await?,
                Kind::Group => self.write_owned_async(job).await?,
            }
            created
        };
        self.after_create();
        Ok(created)
    }

    /// PostgreSQL's batched user writes: the deliveries with their account names checked (see
    /// `outbox::check_account_keys`) on a connection of their own, before the batch writes the
    /// change. Not in the write's transaction: two changes racing for one name can both pass here,
    /// and then the dispatcher's adoption refuses the second account (links are unique on the
    /// account), dead-lettering that delivery with the holder named.
    async fn keys_checked(
        &self,
        tenant_id: &str,
        user_id: &str,
        outbox: &[Enqueue],
    ) -> Result<Vec<Enqueue>, StoreError> {
        let mut outbox = outbox.to_vec();
        if outbox.iter().all(|e| e.account_key.is_none()) {
            return Ok(outbox);
        }
        let (t, u) = (tenant_id.to_owned(), user_id.to_owned());
        self.run_blocking(move |store| {
            outbox::check_account_keys(&mut *store.conn()?, &t, &u, &mut outbox)?;
            Ok::<_, StoreError>(outbox)
        })
        .await?
    }

    /// The resource, with its membership rows when `with_members` (a group's members, a user's
    /// groups: see `Resource::members`); `None` if this tenant has no such resource.
    pub fn get(
        &self,
        tenant_id: &str,
        kind: Kind,
        id: &str,
        with_members: bool,
    ) -> Result<Option<Resource>, StoreError> {
        let mut conn = self.conn()?;
        match (with_members, kind) {
            // A group and its members in one snapshot: a member list is many rows.
            (true, Kind::Group) => read_tx(&mut conn, |c| load(c, tenant_id, kind, id, true)),
            // A user's groups: one more statement, not a transaction's four round trips on
            // PostgreSQL (a membership committed between the two reads shows, or does not).
            _ => load(&mut conn, tenant_id, kind, id, with_members),
        }
    }

    /// The groups a user is a direct member of, as its `groups` carry them (see
    /// `Resource::members`): empty for a user of no group, or no such user.
    pub fn groups_of(&self, tenant_id: &str, user_id: &str) -> Result<Vec<Member>, StoreError> {
        let mut conn = self.conn()?;
        Ok(members::groups_of(&mut conn, tenant_id, &[user_id])?.remove(user_id).unwrap_or_default())
    }

    /// Read-modify-write in one write transaction.
    ///
    /// `f` gets the current resource (a group's members or a user's groups loaded iff
    /// `load_members`) and decides a [`Change`].
    /// With `if_match: Some(v)`, a current version other than `v` is `VersionMismatch`. `Ok(None)`
    /// if the resource does not exist. A refusal from `f` is `Rejected`; a userName taken by
    /// another user is `Conflict`.
    ///
    /// No update is ever lost. On SQLite the transaction holds the write lock from its start. On
    /// PostgreSQL the write is conditional on the version read; if a concurrent writer got there
    /// first, `f` runs again on the new state, and after a few lost races the row is locked before
    /// reading, so the call always completes. `f` may therefore run more than once: keep it free of
    /// side effects.
    pub fn update<F>(
        &self,
        tenant_id: &str,
        kind: Kind,
        id: &str,
        if_match: Option<i64>,
        load_members: bool,
        mut f: F,
    ) -> Result<Option<Updated>, StoreError>
    where
        F: FnMut(&Resource) -> Result<Change, ScimError> + Send + 'static,
    {
        self.update_with(tenant_id, kind, id, if_match, load_members, None, move |r| f(r).map(|c| (c, Vec::new())))
    }

    /// [`Store::update`] whose closure also names the deliveries a change asks for; they and
    /// `audit`'s event are recorded in the same transaction as the change (none for `Unchanged`).
    #[instrument(skip_all, fields(tenant.id = %tenant_id, resource.kind = kind.resource_type(), resource.id = %id))]
    #[expect(
        clippy::too_many_arguments,
        reason = "the resource's address, its guard, and what the change records with it"
    )]
    pub fn update_with<F>(
        &self,
        tenant_id: &str,
        kind: Kind,
        id: &str,
        if_match: Option<i64>,
        load_members: bool,
        audit: Option<Audit>,
        f: F,
    ) -> Result<Option<Updated>, StoreError>
    where
        F: FnMut(&Resource) -> Result<(Change, Vec<Enqueue>), ScimError> + Send + 'static,
    {
        let job = update_job(tenant_id, kind, id, if_match, load_members, audit, 0, f);
        match kind {
            Kind::User => self.write_single(job),
            Kind::Group => self.write_owned(job),
        }
    }

    /// [`Store::update_with`] for async callers (see [`Store::write_owned_async`]).
    #[expect(
        clippy::too_many_arguments,
        reason = "the resource's address, its guard, and what the change records with it"
    )]
    pub async fn update_with_async<F>(
        &self,
        tenant_id: &str,
        kind: Kind,
        id: &str,
        if_match: Option<i64>,
        load_members: bool,
        audit: Option<Audit>,
        f: F,
    ) -> Result<Option<Updated>, StoreError>
    where
        F: FnMut(&Resource) -> Result<(Change, Vec<Enqueue>), ScimError> + Send + 'static,
    {
        let mut f = f;
        let mut start = 0;
        if let (Some(batch), Kind::User) = (&self.pg_batch, kind) {
            // Read here, apply `f` here, write in the batch; read again after a lost race.
            for _ in 0..OPTIMISTIC_TRIES {
                let (t, i) = (tenant_id.to_owned(), id.to_owned());
                let current =
                    self.run_blocking(move |store| load(&mut *store.conn()?, &t, kind, &i, load_members)).await??;
                let Some(current) = current else {
                    return Ok(None);
                };
                let (current, body, columns, text, mut outbox) = match decide(kind, current, if_match, &mut f)? {
                    Decided::Unchanged(current) => return Ok(Some(Updated { resource: current, changed: false })),
                    // A rename rewrites the membership rows too: one transaction, row locked.
                    Decided::Write { renamed: Some(_), .. } => break,
                    Decided::Write { current, body, columns: Columns::User(columns), text, outbox, .. } => {
                        (current, body, columns, text, outbox)
                    }
                    Decided::Write { .. } => {
                        return Err(StoreError::Internal("a user's columns were not a user's".into()));
                    }
                };
                outbox = self.keys_checked(tenant_id, id, &outbox).await?;
                let now = now_us();
                let row = UserRow {
                    tenant_id: tenant_id.to_owned(),
                    id: id.to_owned(),
                    columns,
                    body: text,
                    now,
                    outbox,
                    audit: audit.clone(),
                };
                if batch.submit(Op::Update { row, from: current.version }).await? {
                    let version = current.version + 1;
                    // Its groups, when read, are as they were: a user's write does not change them.
                    let resource = Resource { body, version, last_modified: from_us(now), ..current };
                    return Ok(Some(Updated { resource, changed: true }));
                }
                tracing::debug!("update lost a race; reading again");
            }
            // Lost every optimistic try, or the change renames the user: lock the row first, in a
            // transaction.
            start = OPTIMISTIC_TRIES;
        }
        let job = update_job(tenant_id, kind, id, if_match, load_members, audit, start, f);
        match kind {
            Kind::User => self.write_single_async(job).await,
            Kind::Group => self.write_owned_async(job).await,
        }
    }

    /// Deletes a user or group; `false` if this tenant has none with that id. Its rows in
    /// `group_members` go too — a group's members, and its memberships in other groups (a user's,
    /// or a nested group's) — and each group that lost a member gets a new version.
    pub fn delete(&self, tenant_id: &str, kind: Kind, id: &str, if_match: Option<i64>) -> Result<bool, StoreError> {
        self.delete_with(tenant_id, kind, id, if_match, &[], &[], None)
    }

    /// [`Store::delete`], recording `outbox` deliveries of the deletion in the same transaction
    /// (the dispatcher finds the resource gone and deprovisions it), `groups_outbox` deliveries of
    /// each group that lost it as a member, and `audit`'s event.
    #[instrument(skip_all, fields(tenant.id = %tenant_id, resource.kind = kind.resource_type(), resource.id = %id))]
    #[expect(
        clippy::too_many_arguments,
        reason = "the resource's address, its guard, and what the change records with it"
    )]
    pub fn delete_with(
        &self,
        tenant_id: &str,
        kind: Kind,
        id: &str,
        if_match: Option<i64>,
        outbox: &[Enqueue],
        groups_outbox: &[Enqueue],
        audit: Option<Audit>,
    ) -> Result<bool, StoreError> {
        let mut if_match = if_match;
        if kind == Kind::Group {
            // A large group's members leave it a page at a time, each page its own short write
            // (as a PATCH removing them would), so that its delete never holds the writer for
            // every member's version and delivery at once (5 s at 100,000 on SQLite); the delete
            // below then moves out the last page with it. `If-Match` is the first page's
            // condition: the delete was asked of that version, and its own pages move it.
            match self.leave_in_pages(tenant_id, id, if_match, outbox)? {
                None => return Ok(false),
                Some(true) => if_match = None,
                Some(false) => {}
            }
        }
        for attempt in 0..=OPTIMISTIC_TRIES {
            let lock_first = attempt == OPTIMISTIC_TRIES;
            let outcome = self.write(|c| -> Result<Attempt<bool>, StoreError> {
                // Locks in the order every group write takes them — a group's row, then its
                // members' user rows — so that a delete and a write cannot deadlock on PostgreSQL:
                // a group's delete locks its row first (its members move out below, before the
                // delete); a user's, the rows of its groups (they get a new version below).
                match kind {
                    Kind::Group => {
                        lock_row(c, tenant_id, kind, id)?;
                    }
                    Kind::User => {
                        lock_groups_of(c, tenant_id, id)?;
                        if lock_first {
                            lock_row(c, tenant_id, kind, id)?;
                        }
                    }
                }
                let version = with_table!(kind, t => t::table
                    .filter(t::tenant_id.eq(tenant_id))
                    .filter(t::id.eq(id))
                    .select(t::version)
                    .first::<i64>(c)
                    .optional()?);
                let Some(version) = version else {
                    return Ok(Attempt::Done(false));
                };
                if let Some(expected) = if_match {
                    if expected != version {
                        return Err(StoreError::VersionMismatch { current: version });
                    }
                }
                if kind == Kind::Group {
                    // Every member leaves the group (its member rows go with its row, by the
                    // foreign key): read, and their users locked, before that delete.
                    let mut moved = members::ids(c, tenant_id, id)?;
                    outbox::members_moved(c, tenant_id, &mut moved, outbox)?;
                }
                let deleted = with_table!(kind, t => diesel::delete(
                    t::table.filter(t::tenant_id.eq(tenant_id)).filter(t::id.eq(id)).filter(t::version.eq(version)),
                )
                .execute(c)?);
                if deleted == 0 {
                    return Ok(Attempt::Lost);
                }
                let memberships = group_members::table
                    .filter(group_members::tenant_id.eq(tenant_id))
                    .filter(group_members::member_id.eq(id));
                diesel::update(
                    groups::table
                        .filter(groups::tenant_id.eq(tenant_id))
                        .filter(groups::id.eq_any(memberships.select(group_members::group_id))),
                )
                .set((groups::version.eq(groups::version + 1), groups::modified_us.eq(now_us())))
                .execute(c)?;
                if !groups_outbox.is_empty() {
                    let touched = groups::table
                        .filter(groups::tenant_id.eq(tenant_id))
                        .filter(groups::id.eq_any(memberships.select(group_members::group_id)))
                        .select((groups::id, groups::version))
                        .load::<(String, i64)>(c)?;
                    for (group_id, version) in touched {
                        outbox::enqueue(c, tenant_id, Kind::Group, &group_id, version, groups_outbox)?;
                    }
                }
                diesel::delete(memberships).execute(c)?;
                outbox::enqueue(c, tenant_id, kind, id, 0, outbox)?;
                if let Some(audit) = &audit {
                    audit::record(c, tenant_id, audit, kind, id, version)?;
                }
                Ok(Attempt::Done(true))
            })?;
            if let Attempt::Done(deleted) = outcome {
                return Ok(deleted);
            }
        }
        Err(StoreError::Internal("delete kept losing races even with the row locked".into()))
    }

    /// Before a group's delete: while it has more than [`members::CHUNK`] members, moves a page
    /// of them out of it in a write of its own — each user's new version and deliveries
    /// (`outbox::members_moved`), their membership rows, the group's new version. `None` if the
    /// group does not exist; `Some(paged)`, whether any page was written.
    fn leave_in_pages(
        &self,
        tenant_id: &str,
        id: &str,
        if_match: Option<i64>,
        outbox: &[Enqueue],
    ) -> Result<Option<bool>, StoreError> {
        let mut paged = false;
        loop {
            let started = std::time::Instant::now();
            let page = self.write(|c| -> Result<Option<bool>, StoreError> {
                lock_row(c, tenant_id, Kind::Group, id)?;
                let version = groups::table
                    .filter(groups::tenant_id.eq(tenant_id))
                    .filter(groups::id.eq(id))
                    .select(groups::version)
                    .first::<i64>(c)
                    .optional()?;
                let Some(version) = version else {
                    return Ok(None);
                };
                if let (Some(expected), false) = (if_match, paged) {
                    if expected != version {
                        return Err(StoreError::VersionMismatch { current: version });
                    }
                }
                let limit = i64::try_from(members::CHUNK).unwrap_or(500);
                let mut ids = group_members::table
                    .filter(group_members::tenant_id.eq(tenant_id))
                    .filter(group_members::group_id.eq(id))
                    .order(group_members::member_id)
                    .select(group_members::member_id)
                    .limit(limit + 1)
                    .load::<String>(c)?;
                if ids.len() <= members::CHUNK {
                    return Ok(Some(false));
                }
                ids.truncate(members::CHUNK);
                outbox::members_moved(c, tenant_id, &mut ids, outbox)?;
                diesel::delete(
                    group_members::table
                        .filter(group_members::tenant_id.eq(tenant_id))
                        .filter(group_members::group_id.eq(id))
                        .filter(group_members::member_id.eq_any(&ids)),
                )
                .execute(c)?;
                diesel::update(groups::table.filter(groups::tenant_id.eq(tenant_id)).filter(groups::id.eq(id)))
                    .set((groups::version.eq(groups::version + 1), groups::modified_us.eq(now_us())))
                    .execute(c)?;
                Ok(Some(true))
            })?;
            match page {
                None => return Ok(None),
                Some(true) => paged = true,
                Some(false) => return Ok(Some(paged)),
            }
            // As long again for everyone else: with the dispatcher draining what the pages queue,
            // back-to-back pages left other writes waiting up to 1.3 s at 100,000 members.
            std::thread::sleep(started.elapsed());
        }
    }

    /// Which of `ids` exist in this tenant, as users or as groups (to validate group members).
    pub fn existing_ids(&self, tenant_id: &str, ids: &[String]) -> Result<Vec<(String, Kind)>, StoreError> {
        let mut conn = self.conn()?;
        let mut found = Vec::new();
        for chunk in ids.chunks(members::CHUNK) {
            for kind in [Kind::User, Kind::Group] {
                let hits = with_table!(kind, t => t::table
                    .filter(t::tenant_id.eq(tenant_id))
                    .filter(t::id.eq_any(chunk))
                    .select(t::id)
                    .load::<String>(&mut conn)?);
                found.extend(hits.into_iter().map(|id| (id, kind)));
            }
        }
        Ok(found)
    }
}

/// What an update's closure decided about the current resource.
#[expect(clippy::large_enum_variant, reason = "lives on the stack for one step of one update")]
enum Decided {
    /// Nothing to write: the resource as it is.
    Unchanged(Resource),
    /// The new body as stored, with its indexed columns, its JSON text, the member changes and the
    /// deliveries to record.
    Write {
        current: Resource,
        body: Map<String, Value>,
        changes: Vec<MembersChange>,
        columns: Columns,
        text: String,
        outbox: Vec<Enqueue>,
        /// The resource's new name as a group member, when the change renames it.
        renamed: Option<String>,
    },
}

/// The steps every update path takes between reading the resource and writing it: the
/// `If-Match` check, the closure, and turning its body into what the tables hold.
fn decide<F>(kind: Kind, current: Resource, if_match: Option<i64>, f: &mut F) -> Result<Decided, StoreError>
where
    F: FnMut(&Resource) -> Result<(Change, Vec<Enqueue>), ScimError>,
{
    if let Some(expected) = if_match {
        if expected != current.version {
            return Err(StoreError::VersionMismatch { current: current.version });
        }
    }
    let (change, outbox) = f(&current).map_err(StoreError::Rejected)?;
    let (body, changes) = match change {
        Change::Unchanged => return Ok(Decided::Unchanged(current)),
        Change::Update { body, members } => (stored_body(body), members),
    };
    if kind == Kind::User && !changes.is_empty() {
        return Err(StoreError::Internal("member changes were given for a user".into()));
    }
    let columns = Columns::of(kind, &body)?;
    let text = serde_json::to_string(&body).map_err(|e| StoreError::Internal(e.to_string()))?;
    let renamed = match member_name(kind, &body) {
        Some(name) if member_name(kind, &current.body).as_deref() != Some(name.as_str()) => Some(name),
        _ => None,
    };
    Ok(Decided::Write { current, body, changes, columns, text, outbox, renamed })
}

/// Takes the row's write lock before reading it (a no-op update), so that the read-modify-write
/// that follows cannot lose a race. Only used after optimistic tries lost, because on PostgreSQL
/// even a no-op update writes a new row version.
fn lock_row(c: &mut AnyConnection, tenant_id: &str, kind: Kind, id: &str) -> QueryResult<usize> {
    with_table!(kind, t => diesel::update(t::table.filter(t::tenant_id.eq(tenant_id)).filter(t::id.eq(id)))
        .set(t::version.eq(t::version))
        .execute(c))
}

/// Locks the rows of the groups `member_id` is in, in id order (PostgreSQL; SQLite's one writer
/// needs none), before a write of the member that will change them.
fn lock_groups_of(c: &mut AnyConnection, tenant_id: &str, member_id: &str) -> QueryResult<()> {
    if let AnyConnection::Pg(pg) = c {
        let memberships = group_members::table
            .filter(group_members::tenant_id.eq(tenant_id))
            .filter(group_members::member_id.eq(member_id))
            .select(group_members::group_id);
        groups::table
            .filter(groups::tenant_id.eq(tenant_id))
            .filter(groups::id.eq_any(memberships))
            .order(groups::id)
            .select(groups::id)
            .for_update()
            .load::<String>(pg)?;
    }
    Ok(())
}

/// Markers of the resource updates' [`fixed`] statements.
struct UserUpdate;
struct GroupUpdate;

/// A user's indexed columns as binds, in the order of the `users` table: `user_name`,
/// `user_name_ci`, `external_id`, `display_name`, `display_name_ci`, `active`.
pub(crate) fn user_column_vals(columns: &UserColumns) -> [Val<'_>; 6] {
    [
        Val::Text(&columns.user_name),
        Val::Text(&columns.user_name_ci),
        Val::OptText(columns.external_id.as_deref()),
        Val::OptText(columns.display_name.as_deref()),
        Val::OptText(columns.display_name_ci.as_deref()),
        Val::OptBool(columns.active),
    ]
}

/// What [`Store::create_with`] writes, as a job for the writer, and the resource it answers once
/// the job is committed.
#[allow(clippy::type_complexity)]
fn create_job(
    tenant_id: &str,
    new: NewResource,
    outbox: &[Enqueue],
    audit: Option<Audit>,
) -> Result<(impl FnOnce(&mut AnyConnection) -> Result<(), StoreError> + Send + 'static, Resource), StoreError> {
    let kind = new.kind;
    if kind == Kind::User && !new.members.is_empty() {
        return Err(StoreError::Internal("members were given for a user".into()));
    }
    let body = stored_body(new.body);
    let columns = Columns::of(kind, &body)?;
    let text = serde_json::to_string(&body).map_err(|e| StoreError::Internal(e.to_string()))?;
    let id = Uuid::now_v7().to_string();
    let now = now_us();
    let members: Vec<Member> = members::dedup(&new.members).into_iter().cloned().collect();
    let job = {
        let (tenant_id, id, mut outbox, members) = (tenant_id.to_owned(), id.clone(), outbox.to_vec(), members.clone());
        move |c: &mut AnyConnection| -> Result<(), StoreError> {
            let tenant_id = tenant_id.as_str();
            match columns {
                Columns::User(columns) => {
                    outbox::check_account_keys(c, tenant_id, &id, &mut outbox)?;
                    if let AnyConnection::Pg(pg) = c {
                        let write = UserWrite {
                            tenant_id,
                            id: &id,
                            columns: &columns,
                            body: &text,
                            now,
                            outbox: &outbox,
                            audit: audit.as_ref(),
                        };
                        return pg_writes::create_user(pg, &write);
                    }
                    // Fixed text (see `cached`): prepared once per connection on both engines.
                    // diesel's insert of a row with `Option` fields is never cached, and on
                    // PostgreSQL was parsed and planned again on every create.
                    struct InsertUser;
                    let insert = fixed::<InsertUser, 12>(
                        "INSERT INTO \"users\" (tenant_id, id, user_name, user_name_ci, external_id, display_name, \
                         display_name_ci, active, body, version, created_us, modified_us) \
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        {
                            let [name, name_ci, external_id, display, display_ci, active] = user_column_vals(&columns);
                            [
                                Val::Text(tenant_id),
                                Val::Text(&id),
                                name,
                                name_ci,
                                external_id,
                                display,
                                display_ci,
                                active,
                                Val::Text(&text),
                                Val::Int(1),
                                Val::Int(now),
                                Val::Int(now),
                            ]
                        },
                    );
                    on_inner!(c, |c| insert.execute(c)).map_err(StoreError::unique("userName"))?;
                }
                Columns::Group(columns) => {
                    let row = NewGroupRow {
                        tenant_id,
                        id: &id,
                        columns,
                        body: &text,
                        version: 1,
                        created_us: now,
                        modified_us: now,
                    };
                    diesel::insert_into(groups::table).values(&row).execute(c)?;
                    let mut moved: Vec<String> = members.iter().map(|m| m.value.clone()).collect();
                    outbox::members_moved(c, tenant_id, &mut moved, &outbox)?;
                    let refs: Vec<&Member> = members.iter().collect();
                    members::insert(c, tenant_id, &id, &refs)?;
                }
            }
            outbox::enqueue(c, tenant_id, kind, &id, 1, &outbox)?;
            if let Some(audit) = &audit {
                audit::record(c, tenant_id, audit, kind, &id, 1)?;
            }
            Ok(())
        }
    };
    let members = (kind == Kind::Group).then(|| {
        let mut m = members;
        m.sort_by(|a, b| a.value.cmp(&b.value));
        m
    });
    let created = Resource { id, kind, body, version: 1, created: from_us(now), last_modified: from_us(now), members };
    Ok((job, created))
}

/// A user's create as a write for PostgreSQL's batch thread, and the user it answers once written.
fn create_op(
    tenant_id: &str,
    new: NewResource,
    outbox: &[Enqueue],
    audit: Option<Audit>,
) -> Result<(Op, Resource), StoreError> {
    let kind = new.kind;
    if !new.members.is_empty() {
        return Err(StoreError::Internal("members were given for a user".into()));
    }
    let body = stored_body(new.body);
    let Columns::User(columns) = Columns::of(kind, &body)? else {
        return Err(StoreError::Internal("a batched create that is not a user's".into()));
    };
    let text = serde_json::to_string(&body).map_err(|e| StoreError::Internal(e.to_string()))?;
    let (id, now) = (Uuid::now_v7().to_string(), now_us());
    let row = UserRow {
        tenant_id: tenant_id.to_owned(),
        id: id.clone(),
        columns,
        body: text,
        now,
        outbox: outbox.to_vec(),
        audit,
    };
    let created =
        Resource { id, kind, body, version: 1, created: from_us(now), last_modified: from_us(now), members: None };
    Ok((Op::Create(row), created))
}

/// What [`Store::update_with`] runs, as a job for the writer (from try `start`: the last try
/// locks the row first).
#[expect(
    clippy::too_many_arguments,
    reason = "the resource's address, its guard, what the change records with it, and the first try"
)]
fn update_job<F>(
    tenant_id: &str,
    kind: Kind,
    id: &str,
    if_match: Option<i64>,
    load_members: bool,
    audit: Option<Audit>,
    start: usize,
    mut f: F,
) -> impl FnOnce(&mut AnyConnection) -> Result<Option<Updated>, StoreError> + Send + 'static
where
    F: FnMut(&Resource) -> Result<(Change, Vec<Enqueue>), ScimError> + Send + 'static,
{
    let (tenant_id, id) = (tenant_id.to_owned(), id.to_owned());
    // On SQLite one transaction (the batch's). On PostgreSQL a user's update runs outside one: a
    // read, then one statement conditional on the version read (see `pg_writes`); a lost race
    // is read again, and the last try locks the row in a transaction of its own.
    move |c: &mut AnyConnection| {
        let (tenant_id, id) = (tenant_id.as_str(), id.as_str());
        let mut once = |c: &mut AnyConnection, lock_first: bool| -> Result<Attempt<Option<Updated>>, StoreError> {
            if lock_first {
                lock_row(c, tenant_id, kind, id)?;
            }
            let Some(current) = load(c, tenant_id, kind, id, load_members)? else {
                return Ok(Attempt::Done(None));
            };
            let (current, body, changes, columns, text, mut outbox, renamed) =
                match decide(kind, current, if_match, &mut f)? {
                    Decided::Unchanged(current) => {
                        return Ok(Attempt::Done(Some(Updated { resource: current, changed: false })));
                    }
                    Decided::Write { current, body, changes, columns, text, outbox, renamed } => {
                        (current, body, changes, columns, text, outbox, renamed)
                    }
                };
            if kind == Kind::User {
                outbox::check_account_keys(c, tenant_id, id, &mut outbox)?;
            }
            let (version, now) = (current.version + 1, now_us());
            if let (Columns::User(columns), AnyConnection::Pg(pg)) = (&columns, &mut *c) {
                if renamed.is_some() && !lock_first {
                    return Ok(Attempt::Lock);
                }
                let write =
                    UserWrite { tenant_id, id, columns, body: &text, now, outbox: &outbox, audit: audit.as_ref() };
                if !pg_writes::update_user(pg, &write, current.version)? {
                    return Ok(Attempt::Lost);
                }
                if let Some(name) = &renamed {
                    // A statement after the row's update, so after every add that held the row
                    // `FOR SHARE` has committed: its membership rows are seen (`members::names`).
                    members::renamed(c, tenant_id, id, name)?;
                }
                let resource = Resource { body, version, last_modified: from_us(now), ..current };
                return Ok(Attempt::Done(Some(Updated { resource, changed: true })));
            }
            let written = match columns {
                Columns::User(columns) => {
                    let [name, name_ci, external_id, display, display_ci, active] = user_column_vals(&columns);
                    let update = fixed::<UserUpdate, 12>(
                        "UPDATE \"users\" SET user_name = ?, user_name_ci = ?, external_id = ?, display_name = ?, \
                             display_name_ci = ?, active = ?, body = ?, version = ?, modified_us = ? \
                             WHERE tenant_id = ? AND id = ? AND version = ?",
                        [
                            name,
                            name_ci,
                            external_id,
                            display,
                            display_ci,
                            active,
                            Val::Text(&text),
                            Val::Int(version),
                            Val::Int(now),
                            Val::Text(tenant_id),
                            Val::Text(id),
                            Val::Int(current.version),
                        ],
                    );
                    on_inner!(c, |c| update.execute(c)).map_err(StoreError::unique("userName"))?
                }
                Columns::Group(columns) => {
                    let update = fixed::<GroupUpdate, 9>(
                        "UPDATE \"groups\" SET display_name = ?, display_name_ci = ?, external_id = ?, body = ?, \
                             version = ?, modified_us = ? WHERE tenant_id = ? AND id = ? AND version = ?",
                        [
                            Val::Text(&columns.display_name),
                            Val::Text(&columns.display_name_ci),
                            Val::OptText(columns.external_id.as_deref()),
                            Val::Text(&text),
                            Val::Int(version),
                            Val::Int(now),
                            Val::Text(tenant_id),
                            Val::Text(id),
                            Val::Int(current.version),
                        ],
                    );
                    on_inner!(c, |c| update.execute(c))?
                }
            };
            if written == 0 {
                return Ok(Attempt::Lost);
            }
            // The version write above holds the group row's lock: member rows change under it.
            if kind == Kind::Group {
                let mut moved = members::moved_by(c, tenant_id, id, &changes)?;
                outbox::members_moved(c, tenant_id, &mut moved, &outbox)?;
                if renamed.is_some() {
                    outbox::enqueue_fan_out(c, tenant_id, id, version, &outbox)?;
                }
            }
            members::apply(c, tenant_id, id, &changes)?;
            if let Some(name) = &renamed {
                members::renamed(c, tenant_id, id, name)?;
            }
            outbox::enqueue(c, tenant_id, kind, id, version, &outbox)?;
            if let Some(audit) = &audit {
                audit::record(c, tenant_id, audit, kind, id, version)?;
            }
            // A user's groups do not change with its own write: the ones read are still true.
            let members = match kind {
                Kind::Group if load_members => Some(members::load(c, tenant_id, id)?),
                Kind::Group => None,
                Kind::User => current.members.clone(),
            };
            let resource = Resource { body, version, last_modified: from_us(now), members, ..current };
            Ok(Attempt::Done(Some(Updated { resource, changed: true })))
        };
        let mut attempt = start.min(OPTIMISTIC_TRIES);
        loop {
            let lock_first = attempt == OPTIMISTIC_TRIES;
            let outcome = match lock_first && !in_transaction(c) {
                // The lock must be held until the write: in a transaction of its own.
                true => write_tx(c, |c| once(c, true))?,
                false => once(c, lock_first)?,
            };
            match outcome {
                Attempt::Done(result) => return Ok(result),
                Attempt::Lost if !lock_first => tracing::debug!(attempt, "update lost a race; reading again"),
                Attempt::Lock if !lock_first => {
                    attempt = OPTIMISTIC_TRIES;
                    continue;
                }
                Attempt::Lost | Attempt::Lock => {
                    return Err(StoreError::Internal("update kept losing races even with the row locked".into()));
                }
            }
            attempt += 1;
        }
    }
}
