//! PostgreSQL: a user's create or update, with its outbox deliveries and its audit event, as one
//! statement.
//!
//! The same change as three to five statements in a transaction (`BEGIN`, the row, one or two per
//! delivery, the event, `COMMIT`) costs as many round trips to the server, and on a 2-core host
//! with the server beside the gateway half of a write's CPU was the kernel carrying them (issue 7).
//! Here the row is written by a data-modifying CTE and the deliveries and the event are inserted
//! from what it returned, so when the row is not written (a lost race, a userName taken) nothing is.
//! A single statement commits atomically by itself, so the caller runs it outside a transaction
//! (see [`crate::store::Store::write_single`]): a create is one round trip, an update two (the
//! read, then this).
//!
//! SQLite cannot modify data in a `WITH`; there the statements of `resources.rs` and `outbox.rs`
//! run inside the group-commit batch, where a round trip is a function call. The two paths write
//! the same rows, and the store's tests run every create and update on both engines.
//!
//! How the live deliveries are found (through `deliveries_resource`, never by a scan of the open
//! rows) is explained in `pg_batch.rs`; the update here is written the same way.
//!
//! The outbox's coalescing rule (see [`crate::outbox::enqueue`]) holds here too: a live row of the
//! target absorbs the change (`absorbed`), and only targets without one get a new row. The update
//! of the user row comes first in the plan (every other part reads its result), and its row lock
//! serialises concurrent changes of one user exactly as in the transaction.

use diesel::PgConnection;
use diesel::RunQueryDsl;
use uuid::Uuid;

use crate::audit::Audit;
use crate::cached::{Val, fixed};
use crate::error::StoreError;
use crate::models::resource::UserColumns;
use crate::outbox::Enqueue;
use crate::resources::user_column_vals;

/// The deliveries of one change as three parallel arrays (new row id, target, skip reason).
struct Entries {
    ids: Vec<String>,
    targets: Vec<String>,
    skipped: Vec<Option<String>>,
}

impl Entries {
    fn of(entries: &[Enqueue]) -> Entries {
        Entries {
            ids: entries.iter().map(|_| Uuid::now_v7().to_string()).collect(),
            targets: entries.iter().map(|e| e.target.clone()).collect(),
            skipped: entries.iter().map(|e| e.skipped.clone()).collect(),
        }
    }
}

/// The audit event's binds: whether there is one, then its key, request id and operation.
fn audit_vals(audit: Option<&Audit>) -> [Val<'_>; 4] {
    [
        Val::OptBool(Some(audit.is_some())),
        Val::OptText(audit.map(|a| a.key_id.as_str())),
        Val::OptText(audit.and_then(|a| a.request_id.as_deref())),
        Val::OptText(audit.map(|a| a.operation)),
    ]
}

/// What both statements bind, borrowed.
pub(crate) struct UserWrite<'a> {
    pub(crate) tenant_id: &'a str,
    pub(crate) id: &'a str,
    pub(crate) columns: &'a UserColumns,
    pub(crate) body: &'a str,
    pub(crate) now: i64,
    pub(crate) outbox: &'a [Enqueue],
    pub(crate) audit: Option<&'a Audit>,
}

/// Inserts the user at version 1 with its deliveries and event. A userName taken is `Conflict`.
pub(crate) fn create_user(c: &mut PgConnection, w: &UserWrite<'_>) -> Result<(), StoreError> {
    struct CreateUser;
    let e = Entries::of(w.outbox);
    let (ids, targets, skipped) = (strs(&e.ids), strs(&e.targets), opt_strs(&e.skipped));
    let [has_audit, key_id, request_id, operation] = audit_vals(w.audit);
    let [name, name_ci, external_id, display, display_ci, active] = user_column_vals(w.columns);
    let statement = fixed::<CreateUser, 18>(
        CREATE_USER,
        [
            Val::TextArray(&ids),
            Val::TextArray(&targets),
            Val::OptTextArray(&skipped),
            Val::Text(w.tenant_id),
            Val::Text(w.id),
            name,
            name_ci,
            external_id,
            display,
            display_ci,
            active,
            Val::Text(w.body),
            Val::Int(w.now),
            Val::Int(w.now),
            key_id,
            request_id,
            operation,
            has_audit,
        ],
    );
    statement.execute(c).map_err(StoreError::unique("userName"))?;
    Ok(())
}

/// Writes the user at `from + 1` if it is still at version `from`, with its deliveries and event.
/// `false` (and nothing written) if a concurrent writer got there first.
pub(crate) fn update_user(c: &mut PgConnection, w: &UserWrite<'_>, from: i64) -> Result<bool, StoreError> {
    struct UpdateUser;
    let e = Entries::of(w.outbox);
    let (ids, targets, skipped) = (strs(&e.ids), strs(&e.targets), opt_strs(&e.skipped));
    let [has_audit, key_id, request_id, operation] = audit_vals(w.audit);
    let [name, name_ci, external_id, display, display_ci, active] = user_column_vals(w.columns);
    let statement = fixed::<UpdateUser, 18>(
        UPDATE_USER,
        [
            Val::TextArray(&ids),
            Val::TextArray(&targets),
            Val::OptTextArray(&skipped),
            name,
            name_ci,
            external_id,
            display,
            display_ci,
            active,
            Val::Text(w.body),
            Val::Int(w.now),
            Val::Text(w.tenant_id),
            Val::Text(w.id),
            Val::Int(from),
            key_id,
            request_id,
            operation,
            has_audit,
        ],
    );
    let written = statement.execute(c).map_err(StoreError::unique("userName"))?;
    Ok(written > 0)
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn opt_strs(v: &[Option<String>]) -> Vec<Option<&str>> {
    v.iter().map(Option::as_deref).collect()
}

/// The statement of [`create_user`].
pub(crate) const CREATE_USER: &str = "WITH e (id, target, skipped) AS (SELECT * FROM unnest(?::text[], ?::text[], ?::text[])), \
         u AS (INSERT INTO users (tenant_id, id, user_name, user_name_ci, external_id, display_name, \
               display_name_ci, active, body, version, created_us, modified_us) \
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?) RETURNING tenant_id, id, modified_us), \
         q AS (INSERT INTO deliveries (id, tenant_id, target, resource_type, resource_id, state, version, \
               attempts, due_us, last_error, created_us, updated_us) \
               SELECT e.id, u.tenant_id, e.target, 'User', u.id, \
                      CASE WHEN e.skipped IS NULL THEN 'pending' ELSE 'skipped' END, 1, 0, u.modified_us, \
                      e.skipped, u.modified_us, u.modified_us \
               FROM u CROSS JOIN e), \
         a AS (INSERT INTO audit_events (tenant_id, at_us, key_id, request_id, operation, resource_type, \
               resource_id, version) \
               SELECT u.tenant_id, u.modified_us, ?, ?, ?, 'User', u.id, 1 FROM u WHERE ?) \
         SELECT 1 FROM u";

/// The statement of [`update_user`].
pub(crate) const UPDATE_USER: &str = "WITH e (id, target, skipped) AS (SELECT * FROM unnest(?::text[], ?::text[], ?::text[])), \
         u AS (UPDATE users SET user_name = ?, user_name_ci = ?, external_id = ?, display_name = ?, \
               display_name_ci = ?, active = ?, body = ?, version = version + 1, modified_us = ? \
               WHERE tenant_id = ? AND id = ? AND version = ? \
               RETURNING tenant_id, id, version, modified_us), \
         ue AS MATERIALIZED (SELECT u.tenant_id, u.id, u.version, u.modified_us, e.target \
               FROM u, e WHERE e.skipped IS NULL), \
         absorbed AS (UPDATE deliveries d SET version = ue.version, updated_us = ue.modified_us FROM ue \
               WHERE d.tenant_id = ue.tenant_id AND d.target = ue.target AND d.resource_type = 'User' \
                 AND d.resource_id = ue.id COLLATE \"default\" AND (d.state IN ('pending', 'failed')) IS TRUE \
               RETURNING ue.target), \
         q AS (INSERT INTO deliveries (id, tenant_id, target, resource_type, resource_id, state, version, \
               attempts, due_us, last_error, created_us, updated_us) \
               SELECT e.id, u.tenant_id, e.target, 'User', u.id, \
                      CASE WHEN e.skipped IS NULL THEN 'pending' ELSE 'skipped' END, u.version, 0, \
                      u.modified_us, e.skipped, u.modified_us, u.modified_us \
               FROM u CROSS JOIN e \
               WHERE e.skipped IS NOT NULL OR e.target NOT IN (SELECT target FROM absorbed)), \
         a AS (INSERT INTO audit_events (tenant_id, at_us, key_id, request_id, operation, resource_type, \
               resource_id, version) \
               SELECT u.tenant_id, u.modified_us, ?, ?, ?, 'User', u.id, u.version FROM u WHERE ?) \
         SELECT 1 FROM u";
