//! Targets the gateway could not load, as the gateway saw them (its environment holds the vendor
//! secrets; an admin's shell may not), and the deliveries held for them meanwhile: kept in the
//! outbox, neither attempted nor dead-lettered, until a start or reload that loads the target
//! wakes them.

use diesel::prelude::*;

use crate::error::StoreError;
use crate::outbox::{Delivery, DeliveryState};
use crate::resource::now_us;
use crate::schema::{deliveries, target_problems};
use crate::store::Store;

/// What a held delivery's `last_error` starts with: how a start or reload that loads its target
/// finds it again.
pub const HELD_PREFIX: &str = "held: ";

/// A target (or a whole tenant file) the gateway could not load.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Insertable)]
#[diesel(table_name = target_problems)]
pub struct TargetProblem {
    /// The tenant.
    pub tenant_id: String,
    /// The target's name; empty when the tenant's file could not be read at all.
    pub target: String,
    /// What is wrong, one problem per line. Never a secret: the messages name where a token was
    /// looked for, not what was found.
    pub problems: String,
    /// 1 when a reload broke a target that keeps running its previous configuration.
    pub running_previous: i64,
    /// Since when (microseconds since the epoch): the first load that found it broken.
    pub since_us: i64,
}

impl Store {
    /// Replaces the recorded problems with `problems` (every row: what the last load found; the
    /// first of a tenant and target counts). A problem already recorded with the same text keeps
    /// its `since_us`.
    pub fn set_target_problems(&self, problems: &[TargetProblem]) -> Result<(), StoreError> {
        self.write(|c| {
            let before: Vec<TargetProblem> = target_problems::table.load(c)?;
            diesel::delete(target_problems::table).execute(c)?;
            for (i, p) in problems.iter().enumerate() {
                // One row per tenant and target (the key): a later duplicate adds nothing.
                if problems[..i].iter().any(|o| o.tenant_id == p.tenant_id && o.target == p.target) {
                    continue;
                }
                let mut row = p.clone();
                if let Some(old) = before
                    .iter()
                    .find(|o| o.tenant_id == p.tenant_id && o.target == p.target && o.problems == p.problems)
                {
                    row.since_us = old.since_us;
                }
                diesel::insert_into(target_problems::table).values(&row).execute(c)?;
            }
            Ok(())
        })
    }

    /// The recorded problems, by tenant and target.
    pub fn target_problems(&self) -> Result<Vec<TargetProblem>, StoreError> {
        let mut conn = self.conn()?;
        Ok(target_problems::table
            .order((target_problems::tenant_id.asc(), target_problems::target.asc()))
            .load::<TargetProblem>(&mut *conn)?)
    }

    /// Gives back a delivery `owner` holds without an attempt, due again in `hold` (or when a
    /// load wakes it, [`Store::wake_held`]), with `why` as its last error. `false` if the lease
    /// is no longer ours.
    pub fn hold_delivery(
        &self,
        delivery: &Delivery,
        owner: &str,
        hold: std::time::Duration,
        why: &str,
    ) -> Result<bool, StoreError> {
        let now = now_us();
        let due = now.saturating_add(i64::try_from(hold.as_micros()).unwrap_or(i64::MAX));
        let (id, owner, note) = (delivery.id.clone(), owner.to_owned(), format!("{HELD_PREFIX}{why}"));
        let n = self.write_owned(move |c| {
            Ok(diesel::update(
                deliveries::table.filter(deliveries::id.eq(&id)).filter(deliveries::lease_owner.eq(&owner)),
            )
            .set((
                deliveries::lease_owner.eq(None::<String>),
                deliveries::lease_until_us.eq(None::<i64>),
                deliveries::due_us.eq(due),
                deliveries::last_error.eq(Some(note)),
                deliveries::updated_us.eq(now),
            ))
            .execute(c)?)
        })?;
        Ok(n > 0)
    }

    /// Makes the held deliveries of `target` due now (its configuration loads again). Returns how
    /// many.
    pub fn wake_held(&self, tenant_id: &str, target: &str) -> Result<usize, StoreError> {
        let now = now_us();
        let (tenant_id, target) = (tenant_id.to_owned(), target.to_owned());
        self.write_owned(move |c| wake_noted(c, &tenant_id, &target, HELD_PREFIX, now))
    }
}

/// Makes the waiting, unleased deliveries of `target` whose last error starts with `prefix` (held
/// for a target not loaded, `held: `, or paused, `paused: `) due at `now`. How many.
pub(crate) fn wake_noted(
    c: &mut crate::connection::AnyConnection,
    tenant_id: &str,
    target: &str,
    prefix: &str,
    now: i64,
) -> Result<usize, StoreError> {
    Ok(diesel::update(
        deliveries::table
            .filter(deliveries::tenant_id.eq(tenant_id))
            .filter(deliveries::target.eq(target))
            .filter(deliveries::state.eq_any([DeliveryState::Pending.as_str(), DeliveryState::Failed.as_str()]))
            .filter(deliveries::lease_owner.is_null())
            .filter(deliveries::last_error.like(format!("{prefix}%"))),
    )
    .set(deliveries::due_us.eq(now))
    .execute(c)?)
}
