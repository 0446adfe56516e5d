//! The audit trail: one event per change made through the SCIM API — who (the API key), what
//! (the resource, the operation, the version it produced), when, and the request id that ties it
//! to the access log. Events are written in the change's own transaction, and only for changes
//! that changed something (a PATCH that leaves the resource as it was records nothing).
//!
//! The repairs `scimgw reconcile` queues are recorded too, under the key id `reconcile` with the
//! run's id as request id (operations `reconcile-resend`, `reconcile-deprovision`,
//! `reconcile-deactivate-orphan`).
//!
//! Not recorded: the version bumps a group gets when one of its members is deleted (the delete
//! itself is recorded), and other operator commands (`tenant`, `key`, `deliveries retry`,
//! `resync`), which the operator's shell history and the gateway's log hold.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::cached::{Val, fixed};
use crate::connection::{AnyConnection, on_inner};
use crate::error::StoreError;
use crate::resource::{Kind, from_us, now_us};
use crate::schema::audit_events;
use crate::store::Store;

/// Who is making a change, and how: given to the store's write calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audit {
    /// The API key the request authenticated with.
    pub key_id: String,
    /// The request id (`X-Request-Id`), as in the access log.
    pub request_id: Option<String>,
    /// `create`, `replace`, `patch` or `delete`.
    pub operation: &'static str,
}

/// One recorded change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// When it was committed (to the microsecond).
    pub at: DateTime<Utc>,
    /// The API key that made it.
    pub key_id: String,
    /// The request id.
    pub request_id: Option<String>,
    /// `create`, `replace`, `patch` or `delete`.
    pub operation: String,
    /// `User` or `Group`.
    pub resource_type: String,
    /// The resource's id.
    pub resource_id: String,
    /// The version the change produced (for a delete, the version deleted).
    pub version: i64,
}

/// Records `audit`'s change of (`kind`, `id`) to `version`, on the change's connection (inside its
/// transaction).
pub(crate) fn record(
    c: &mut AnyConnection,
    tenant_id: &str,
    audit: &Audit,
    kind: Kind,
    id: &str,
    version: i64,
) -> Result<(), StoreError> {
    // Fixed text (see `cached`): prepared once per connection; diesel never caches an insert
    // with an `Option` field, so on PostgreSQL it was parsed and planned on every change.
    struct InsertEvent;
    let insert = fixed::<InsertEvent, 8>(
        "INSERT INTO \"audit_events\" (tenant_id, at_us, key_id, request_id, operation, resource_type, \
         resource_id, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            Val::Text(tenant_id),
            Val::Int(now_us()),
            Val::Text(&audit.key_id),
            Val::OptText(audit.request_id.as_deref()),
            Val::Text(audit.operation),
            Val::Text(kind.resource_type()),
            Val::Text(id),
            Val::Int(version),
        ],
    );
    on_inner!(c, |c| insert.execute(c))?;
    Ok(())
}

/// Which end of the trail [`Store::audit_events_in`] keeps when more events match than its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditOrder {
    /// The oldest events, oldest first.
    OldestFirst,
    /// The newest events, newest first: what an operator asking "what happened" wants.
    NewestFirst,
}

/// The events one read returned, and how many matched in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPage {
    /// At most the limit, in the order asked for.
    pub events: Vec<AuditEvent>,
    /// How many events matched (tenant and `since`), the limit aside; more than `events.len()`
    /// when some were left out.
    pub matched: u64,
}

type EventRow = (i64, String, Option<String>, String, String, String, i64);

impl Store {
    /// The tenant's events at or after `since` (all when `None`), oldest first, at most `limit`.
    pub fn audit_events(
        &self,
        tenant_id: &str,
        since: Option<DateTime<Utc>>,
        limit: i64,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        self.read_events(tenant_id, since, limit, AuditOrder::OldestFirst)
    }

    /// The tenant's events at or after `since` (all when `None`), at most `limit` of them from the
    /// end `order` names, with how many matched in all — so a caller can say what it left out.
    pub fn audit_events_in(
        &self,
        tenant_id: &str,
        since: Option<DateTime<Utc>>,
        limit: i64,
        order: AuditOrder,
    ) -> Result<AuditPage, StoreError> {
        let events = self.read_events(tenant_id, since, limit, order)?;
        let since_us = since.map_or(i64::MIN, |t| t.timestamp_micros());
        let matched: i64 = audit_events::table
            .filter(audit_events::tenant_id.eq(tenant_id))
            .filter(audit_events::at_us.ge(since_us))
            .count()
            .get_result(&mut *self.conn()?)?;
        // Counted after the read: an event committed between the two is counted, never lost, and
        // the count is never below what was returned.
        let matched = u64::try_from(matched).unwrap_or(0).max(events.len() as u64);
        Ok(AuditPage { events, matched })
    }

    fn read_events(
        &self,
        tenant_id: &str,
        since: Option<DateTime<Utc>>,
        limit: i64,
        order: AuditOrder,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let mut conn = self.conn()?;
        let since_us = since.map_or(i64::MIN, |t| t.timestamp_micros());
        let query = audit_events::table
            .filter(audit_events::tenant_id.eq(tenant_id))
            .filter(audit_events::at_us.ge(since_us))
            .limit(limit.max(0))
            .select((
                audit_events::at_us,
                audit_events::key_id,
                audit_events::request_id,
                audit_events::operation,
                audit_events::resource_type,
                audit_events::resource_id,
                audit_events::version,
            ));
        let rows: Vec<EventRow> = match order {
            AuditOrder::OldestFirst => {
                query.order((audit_events::at_us.asc(), audit_events::id.asc())).load(&mut *conn)?
            }
            AuditOrder::NewestFirst => {
                query.order((audit_events::at_us.desc(), audit_events::id.desc())).load(&mut *conn)?
            }
        };
        Ok(rows
            .into_iter()
            .map(|(at, key_id, request_id, operation, resource_type, resource_id, version)| AuditEvent {
                at: from_us(at),
                key_id,
                request_id,
                operation,
                resource_type,
                resource_id,
                version,
            })
            .collect())
    }
}
