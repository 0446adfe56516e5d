//! The audit trail: one event per change made through the SCIM API — who (the API key), what
//! (the resource, the operation, the version it produced), when, and the request id that ties it
//! to the access log. Events are written in the change's own transaction, and only for changes
//! that changed something (a PATCH that leaves the resource as it was records nothing).
//!
//! The repairs `scimgw reconcile` queues are recorded too, under the key id `reconcile` with the
//! run's id as request id (operations `reconcile-resend`, `reconcile-deprovision`,
//! `reconcile-deactivate-orphan`).
//!
//! Operators' actions are a trail of their own (`operator_events`, [`OperatorEvent`]): tenant
//! add/remove, key issue/revoke, deliveries retry, resync, reconcile repairs and target reloads,
//! with who did it (`--actor`, or the OS user) and what changed, never a secret. They are not
//! tied to a tenant by a foreign key, so the removal of a tenant stays on record.
//!
//! Not recorded: the version bumps a group gets when one of its members is deleted (the delete
//! itself is recorded).

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::cached::{Val, fixed};
use crate::connection::{AnyConnection, on_inner};
use crate::error::StoreError;
use crate::resource::{Kind, from_us, now_us};
use crate::schema::{audit_events, operator_events};
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

/// What an operator did, for the trail: given to [`Store::record_operator_event`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OperatorAction {
    /// Who: `--actor`, else the OS user (`alice`, `alice via sudo`), or `gateway` for what the
    /// running gateway did on a signal.
    pub actor: String,
    /// `tenant-add`, `tenant-remove`, `key-issue`, `key-revoke`, `deliveries-retry`, `resync`,
    /// `reconcile-repair`, `targets-reload`.
    pub operation: &'static str,
    /// The tenant it concerns, by id, when it concerns one that exists.
    pub tenant_id: Option<String>,
    /// The tenant it concerns, by name.
    pub tenant_name: Option<String>,
    /// The target it concerns.
    pub target: Option<String>,
    /// What changed, in words: ids, labels, counts, target names; never a token or a secret.
    pub detail: String,
}

/// One recorded operator action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorEvent {
    /// When it was recorded.
    pub at: DateTime<Utc>,
    /// Who.
    pub actor: String,
    /// What (see [`OperatorAction::operation`]).
    pub operation: String,
    /// The tenant's name, when it concerns one.
    pub tenant_name: Option<String>,
    /// The target, when it concerns one.
    pub target: Option<String>,
    /// What changed.
    pub detail: String,
}

type OperatorRow = (i64, String, String, Option<String>, Option<String>, String);

impl Store {
    /// Records an operator's action, now.
    pub fn record_operator_event(&self, action: &OperatorAction) -> Result<(), StoreError> {
        let a = action.clone();
        self.write_owned(move |c| {
            diesel::insert_into(operator_events::table)
                .values((
                    operator_events::at_us.eq(now_us()),
                    operator_events::actor.eq(&a.actor),
                    operator_events::operation.eq(a.operation),
                    operator_events::tenant_id.eq(&a.tenant_id),
                    operator_events::tenant_name.eq(&a.tenant_name),
                    operator_events::target.eq(&a.target),
                    operator_events::detail.eq(&a.detail),
                ))
                .execute(c)?;
            Ok(())
        })
    }

    /// Operator actions at or after `since` concerning a tenant (every action when `None`), at
    /// most `limit` from the end `order` names, with how many matched. The tenant is given by
    /// name and, when it exists, id: then the actions about that very tenant (and those that
    /// named it without an id), not those about an earlier tenant of the same name.
    pub fn operator_events(
        &self,
        tenant: Option<(&str, Option<&str>)>,
        since: Option<DateTime<Utc>>,
        limit: i64,
        order: AuditOrder,
    ) -> Result<(Vec<OperatorEvent>, u64), StoreError> {
        let mut conn = self.conn()?;
        let since_us = since.map_or(i64::MIN, |t| t.timestamp_micros());
        let mut query = operator_events::table.filter(operator_events::at_us.ge(since_us)).into_boxed();
        let mut count = operator_events::table.filter(operator_events::at_us.ge(since_us)).into_boxed();
        match tenant {
            Some((name, Some(id))) => {
                let this = operator_events::tenant_id
                    .eq(id.to_owned())
                    .or(operator_events::tenant_id.is_null().and(operator_events::tenant_name.eq(name.to_owned())));
                query = query.filter(this.clone());
                count = count.filter(this);
            }
            Some((name, None)) => {
                query = query.filter(operator_events::tenant_name.eq(name.to_owned()));
                count = count.filter(operator_events::tenant_name.eq(name.to_owned()));
            }
            None => {}
        }
        let query = query.limit(limit.max(0)).select((
            operator_events::at_us,
            operator_events::actor,
            operator_events::operation,
            operator_events::tenant_name,
            operator_events::target,
            operator_events::detail,
        ));
        let rows: Vec<OperatorRow> = match order {
            AuditOrder::OldestFirst => {
                query.order((operator_events::at_us.asc(), operator_events::id.asc())).load(&mut *conn)?
            }
            AuditOrder::NewestFirst => {
                query.order((operator_events::at_us.desc(), operator_events::id.desc())).load(&mut *conn)?
            }
        };
        let matched: i64 = count.count().get_result(&mut *conn)?;
        let events: Vec<OperatorEvent> = rows
            .into_iter()
            .map(|(at, actor, operation, tenant_name, target, detail)| OperatorEvent {
                at: from_us(at),
                actor,
                operation,
                tenant_name,
                target,
                detail,
            })
            .collect();
        let matched = u64::try_from(matched).unwrap_or(0).max(events.len() as u64);
        Ok((events, matched))
    }
}
