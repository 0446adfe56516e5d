//! Targets paused because they stopped serving us, and the deliveries held for them meanwhile.
//!
//! The dispatcher pauses a target after a 401 or 403, or after several deliveries in a row found
//! it unreachable or answering 5xx. While it is paused its waiting deliveries are held: neither
//! attempted nor dead-lettered, so an outage of any length costs them no attempt. The dispatcher
//! probes the target with backoff (one dispatcher per probe, whichever moves `next_probe_us`
//! first); the probe that succeeds resumes it: the row goes and the held deliveries are due at
//! once (the target's rate limit then paces them).

use diesel::prelude::*;

use crate::error::StoreError;
use crate::outbox::{Delivery, DeliveryState};
use crate::resource::now_us;
use crate::schema::{deliveries, target_health};
use crate::store::Store;

/// What the last error of a delivery held for a paused target starts with: how a resume finds
/// it (a start or reload of the gateway does not wake it, as it does the `held: ` rows of a
/// target that could not be loaded).
pub const PAUSED_PREFIX: &str = "paused: ";

/// A paused target.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Insertable)]
#[diesel(table_name = target_health)]
pub struct PausedTarget {
    /// The tenant.
    pub tenant_id: String,
    /// The target's name.
    pub target: String,
    /// `unauthorized`, `forbidden`, `unreachable` or `server_error`.
    pub reason: String,
    /// The last error (the delivery's that paused it, then each failed probe's).
    pub detail: String,
    /// Paused since (microseconds since the epoch).
    pub since_us: i64,
    /// Probes made so far.
    pub probes: i64,
    /// When the next probe is due (microseconds since the epoch).
    pub next_probe_us: i64,
}

impl PausedTarget {
    /// The note a held delivery of this target carries as its last error.
    pub fn note(&self) -> String {
        let since = chrono::DateTime::from_timestamp_micros(self.since_us)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default();
        format!("{PAUSED_PREFIX}target paused ({}) since {since}: {}", self.reason, self.detail)
    }
}

impl Store {
    /// Pauses `paused.target` unless it is paused already (`false` then): records it and holds its
    /// waiting deliveries that no dispatcher has leased for `hold` (a safety net: the resume
    /// wakes them). One write.
    pub fn pause_target(&self, paused: &PausedTarget, hold: std::time::Duration) -> Result<bool, StoreError> {
        let row = paused.clone();
        let note = paused.note();
        let due = now_us().saturating_add(i64::try_from(hold.as_micros()).unwrap_or(i64::MAX));
        self.write_owned(move |c| {
            let exists = target_health::table
                .find((&row.tenant_id, &row.target))
                .select(target_health::since_us)
                .first::<i64>(c)
                .optional()?
                .is_some();
            if exists {
                return Ok(false);
            }
            diesel::insert_into(target_health::table).values(&row).execute(c)?;
            diesel::update(
                deliveries::table
                    .filter(deliveries::tenant_id.eq(&row.tenant_id))
                    .filter(deliveries::target.eq(&row.target))
                    .filter(deliveries::state.eq_any([DeliveryState::Pending.as_str(), DeliveryState::Failed.as_str()]))
                    .filter(deliveries::lease_owner.is_null()),
            )
            .set((
                deliveries::due_us.eq(due),
                deliveries::last_error.eq(Some(note)),
                deliveries::updated_us.eq(now_us()),
            ))
            .execute(c)?;
            Ok(true)
        })
    }

    /// The paused targets, by tenant and target.
    pub fn paused_targets(&self) -> Result<Vec<PausedTarget>, StoreError> {
        let mut conn = self.conn()?;
        Ok(target_health::table
            .order((target_health::tenant_id.asc(), target_health::target.asc()))
            .load::<PausedTarget>(&mut *conn)?)
    }

    /// Takes the probe of a paused target that was due at `due_us`, moving the next one to
    /// `next_probe_us`: `false` if another dispatcher took it first (or the target resumed).
    pub fn claim_probe(
        &self,
        tenant_id: &str,
        target: &str,
        due_us: i64,
        next_probe_us: i64,
    ) -> Result<bool, StoreError> {
        let (tenant_id, target) = (tenant_id.to_owned(), target.to_owned());
        let n = self.write_owned(move |c| {
            Ok(diesel::update(
                target_health::table
                    .filter(target_health::tenant_id.eq(&tenant_id))
                    .filter(target_health::target.eq(&target))
                    .filter(target_health::next_probe_us.eq(due_us)),
            )
            .set((target_health::next_probe_us.eq(next_probe_us), target_health::probes.eq(target_health::probes + 1)))
            .execute(c)?)
        })?;
        Ok(n > 0)
    }

    /// Records why a probe failed.
    pub fn probe_failed(&self, tenant_id: &str, target: &str, detail: &str) -> Result<(), StoreError> {
        let (tenant_id, target, detail) = (tenant_id.to_owned(), target.to_owned(), detail.to_owned());
        self.write_owned(move |c| {
            diesel::update(target_health::table.find((&tenant_id, &target)))
                .set(target_health::detail.eq(&detail))
                .execute(c)?;
            Ok(())
        })
    }

    /// Resumes a paused target: the row goes, and its held deliveries are due now. Returns how
    /// many deliveries it woke; `None` if it was not paused.
    pub fn resume_target(&self, tenant_id: &str, target: &str) -> Result<Option<usize>, StoreError> {
        let (t, n) = (tenant_id.to_owned(), target.to_owned());
        let now = now_us();
        // One write: a resume never leaves the pause gone and its rows held.
        self.write_owned(move |c| {
            if diesel::delete(target_health::table.find((&t, &n))).execute(c)? == 0 {
                return Ok(None);
            }
            Ok(Some(crate::target_problems::wake_noted(c, &t, &n, PAUSED_PREFIX, now)?))
        })
    }

    /// Makes the deliveries of `target` held for its pause due now, unless it is paused (again):
    /// a second look after a resume, since a dispatcher that read the pause just before it ended
    /// may have held one more row.
    pub fn wake_paused(&self, tenant_id: &str, target: &str) -> Result<usize, StoreError> {
        let (t, n) = (tenant_id.to_owned(), target.to_owned());
        let now = now_us();
        self.write_owned(move |c| {
            let paused =
                target_health::table.find((&t, &n)).select(target_health::since_us).first::<i64>(c).optional()?;
            if paused.is_some() {
                return Ok(0);
            }
            crate::target_problems::wake_noted(c, &t, &n, PAUSED_PREFIX, now)
        })
    }

    /// Gives back a delivery `owner` holds, for a paused target, without an attempt: due again
    /// in `hold` or when the target resumes. In one write with a look at the pause: `None` when
    /// the target is no longer paused (the caller delivers the row), `Some(false)` when the lease
    /// is no longer ours.
    pub fn hold_for_pause(
        &self,
        delivery: &Delivery,
        owner: &str,
        hold: std::time::Duration,
    ) -> Result<Option<bool>, StoreError> {
        let now = now_us();
        let due = now.saturating_add(i64::try_from(hold.as_micros()).unwrap_or(i64::MAX));
        let (id, owner) = (delivery.id.clone(), owner.to_owned());
        let (tenant_id, target) = (delivery.tenant_id.clone(), delivery.target.clone());
        self.write_owned(move |c| {
            let Some(paused) = target_health::table.find((&tenant_id, &target)).first::<PausedTarget>(c).optional()?
            else {
                return Ok(None);
            };
            let n = diesel::update(
                deliveries::table.filter(deliveries::id.eq(&id)).filter(deliveries::lease_owner.eq(&owner)),
            )
            .set((
                deliveries::lease_owner.eq(None::<String>),
                deliveries::lease_until_us.eq(None::<i64>),
                deliveries::due_us.eq(due),
                deliveries::last_error.eq(Some(paused.note())),
                deliveries::updated_us.eq(now),
            ))
            .execute(c)?;
            Ok(Some(n > 0))
        })
    }
}
