//! What reconciliation keeps: the last run per tenant and target (its counts, for `scimgw status`
//! and `/metrics`), the claim that lets one of several dispatchers run a scheduled reconcile, and
//! the repairs it queues — ordinary outbox deliveries, each with an audit event, so that the
//! dispatcher converges the vendor with its rate limit, retries and attempt history.

use diesel::prelude::*;

use crate::audit::{self, Audit};
use crate::cached::{Val, fixed};
use crate::connection::on_inner;
use crate::error::StoreError;
use crate::outbox::{Enqueue, enqueue};
use crate::resource::{Kind, now_us};
use crate::schema::{links, reconcile_runs};
use crate::store::Store;

/// The local id of the placeholder that a vendor account no gateway user matches is linked to
/// when `--deactivate-orphans` queues its deactivation. The dispatcher finds no such user and
/// deprovisions the account (by deactivating it, whatever the target's `deprovision` says).
pub const ORPHAN_PREFIX: &str = "orphan:";

/// The last run of a target's reconciliation.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Insertable, AsChangeset)]
#[diesel(table_name = reconcile_runs, treat_none_as_null = true)]
pub struct ReconcileRun {
    /// The tenant.
    pub tenant_id: String,
    /// The target.
    pub target: String,
    /// When it started (microseconds since the epoch).
    pub started_us: i64,
    /// The dispatcher running a scheduled reconcile now (None when none is).
    pub running_owner: Option<String>,
    /// When the last run ended.
    pub finished_us: Option<i64>,
    /// `cli` or `schedule`.
    pub triggered_by: String,
    /// `list` or `lookup`.
    pub mode: String,
    /// Users and accounts compared.
    pub checked: i64,
    /// Users the vendor holds as the gateway would send them.
    pub in_sync: i64,
    /// Linked users whose attributes differ at the vendor.
    pub drifted: i64,
    /// In-scope users the vendor does not have.
    pub missing: i64,
    /// Accounts no gateway user matches, or deprovisioned users' accounts still active there.
    pub orphans: i64,
    /// Accounts that match a gateway user but are not linked to it yet.
    pub unlinked: i64,
    /// Deliveries queued to repair what was found.
    pub repairs: i64,
    /// Why the last run failed (the counts are then the previous run's).
    pub error: Option<String>,
}

/// One repair, queued as an outbox delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repair {
    /// Send the user again even though the link says the vendor has this version; with
    /// `relink`, forget the vendor id too, so that the dispatcher looks the account up by the
    /// matching attribute and adopts it (or creates it) rather than writing to an id it lost.
    Resend {
        /// The user.
        local_id: String,
        /// Its current version.
        version: i64,
        /// Forget the remote id first.
        relink: bool,
    },
    /// A deprovisioned user's account is still active at the vendor: deprovision it again.
    Deprovision {
        /// The user (deleted, or out of the target's scope).
        local_id: String,
        /// Its version (0 when deleted).
        version: i64,
    },
    /// An account that no gateway user matches: deactivate it.
    DeactivateOrphan {
        /// The vendor's id.
        remote_id: String,
    },
}

impl Repair {
    fn operation(&self) -> &'static str {
        match self {
            Repair::Resend { .. } => "reconcile-resend",
            Repair::Deprovision { .. } => "reconcile-deprovision",
            Repair::DeactivateOrphan { .. } => "reconcile-deactivate-orphan",
        }
    }
}

impl Store {
    /// Takes the scheduled run of (tenant, target) for `owner` if the last one started at or
    /// before `due_before_us`; whether it was ours to take. Atomic on both engines: of several
    /// dispatchers asking at once, one gets it.
    pub fn claim_reconcile(
        &self,
        tenant_id: &str,
        target: &str,
        owner: &str,
        due_before_us: i64,
    ) -> Result<bool, StoreError> {
        // To the microsecond (not `now_us`'s millisecond): a claim must move the start past any
        // `due_before_us` a caller computed before it.
        let now = chrono::Utc::now().timestamp_micros();
        let (tenant_id, target, owner) = (tenant_id.to_owned(), target.to_owned(), owner.to_owned());
        self.write_owned(move |c| {
            struct Seed;
            let seed = fixed::<Seed, 2>(
                "INSERT INTO \"reconcile_runs\" (tenant_id, target, started_us, triggered_by, mode, checked, in_sync, \
                 drifted, missing, orphans, unlinked, repairs) VALUES (?, ?, 0, 'schedule', '', 0, 0, 0, 0, 0, 0, 0) \
                 ON CONFLICT (tenant_id, target) DO NOTHING",
                [Val::Text(&tenant_id), Val::Text(&target)],
            );
            on_inner!(c, |c| seed.execute(c))?;
            let n = diesel::update(
                reconcile_runs::table
                    .filter(reconcile_runs::tenant_id.eq(&tenant_id))
                    .filter(reconcile_runs::target.eq(&target))
                    .filter(reconcile_runs::started_us.le(due_before_us)),
            )
            .set((reconcile_runs::started_us.eq(now), reconcile_runs::running_owner.eq(&owner)))
            .execute(c)?;
            Ok(n == 1)
        })
    }

    /// Records a finished run. A run with an `error` keeps the previous run's counts.
    pub fn finish_reconcile(&self, run: &ReconcileRun) -> Result<(), StoreError> {
        let run = run.clone();
        self.write_owned(move |c| {
            let key = reconcile_runs::table
                .filter(reconcile_runs::tenant_id.eq(&run.tenant_id))
                .filter(reconcile_runs::target.eq(&run.target));
            let updated = match &run.error {
                Some(error) => diesel::update(key)
                    .set((
                        reconcile_runs::started_us.eq(run.started_us),
                        reconcile_runs::running_owner.eq(None::<String>),
                        reconcile_runs::finished_us.eq(run.finished_us),
                        reconcile_runs::triggered_by.eq(&run.triggered_by),
                        reconcile_runs::error.eq(error),
                    ))
                    .execute(c)?,
                None => diesel::update(key).set(&run).execute(c)?,
            };
            if updated == 0 {
                diesel::insert_into(reconcile_runs::table).values(&run).execute(c)?;
            }
            Ok(())
        })
    }

    /// The last run of every tenant's targets.
    pub fn reconcile_runs(&self) -> Result<Vec<ReconcileRun>, StoreError> {
        let mut conn = self.conn()?;
        Ok(reconcile_runs::table
            .order((reconcile_runs::tenant_id.asc(), reconcile_runs::target.asc()))
            .load::<ReconcileRun>(&mut *conn)?)
    }

    /// Queues `repairs` at `target` as outbox deliveries, each with an audit event (key
    /// `reconcile`, request id `run_id`), in transactions of a few hundred. Returns how many.
    pub fn queue_repairs(
        &self,
        tenant_id: &str,
        target: &str,
        run_id: &str,
        repairs: &[Repair],
    ) -> Result<usize, StoreError> {
        let entry = [Enqueue::deliver(target)];
        let now = now_us();
        for chunk in repairs.chunks(crate::members::CHUNK) {
            self.write(|c| -> Result<(), StoreError> {
                for repair in chunk {
                    let (local_id, version) = match repair {
                        Repair::Resend { local_id, version, relink } => {
                            let link = links::table.find((tenant_id, target, Kind::User.resource_type(), local_id));
                            if *relink {
                                diesel::update(link)
                                    .set((
                                        links::remote_id.eq(None::<String>),
                                        links::delivered_version.eq(None::<i64>),
                                        links::delivered_payload.eq(None::<String>),
                                        links::updated_us.eq(now),
                                    ))
                                    .execute(c)?;
                            } else {
                                diesel::update(link)
                                    // The vendor's copy drifted from what it was sent: forget
                                    // the payload, so the update diffs against the copy itself
                                    // (read back), and the PATCH repairs the drift.
                                    .set((
                                        links::delivered_version.eq(None::<i64>),
                                        links::delivered_payload.eq(None::<String>),
                                        links::updated_us.eq(now),
                                    ))
                                    .execute(c)?;
                            }
                            (local_id.clone(), *version)
                        }
                        Repair::Deprovision { local_id, version } => {
                            // The link says what the vendor holds: active again, so the
                            // dispatcher's deprovisioning acts instead of finding it done.
                            diesel::update(links::table.find((
                                tenant_id,
                                target,
                                Kind::User.resource_type(),
                                local_id,
                            )))
                            .set((
                                links::state.eq("active"),
                                links::delivered_version.eq(None::<i64>),
                                links::delivered_payload.eq(None::<String>),
                                links::updated_us.eq(now),
                            ))
                            .execute(c)?;
                            (local_id.clone(), *version)
                        }
                        Repair::DeactivateOrphan { remote_id } => {
                            let local_id = format!("{ORPHAN_PREFIX}{remote_id}");
                            struct Placeholder;
                            let upsert = fixed::<Placeholder, 6>(
                                "INSERT INTO \"links\" (tenant_id, target, resource_type, local_id, remote_id, \
                                 delivered_version, state, last_error, updated_us) \
                                 VALUES (?, ?, ?, ?, ?, NULL, 'active', NULL, ?) \
                                 ON CONFLICT (tenant_id, target, resource_type, local_id) DO UPDATE SET \
                                 remote_id = excluded.remote_id, state = 'active', delivered_version = NULL, \
                                 updated_us = excluded.updated_us",
                                [
                                    Val::Text(tenant_id),
                                    Val::Text(target),
                                    Val::Text(Kind::User.resource_type()),
                                    Val::Text(&local_id),
                                    Val::Text(remote_id),
                                    Val::Int(now),
                                ],
                            );
                            on_inner!(c, |c| upsert.execute(c))?;
                            (local_id, 0)
                        }
                    };
                    enqueue(c, tenant_id, Kind::User, &local_id, version, &entry)?;
                    let audit = Audit {
                        key_id: "reconcile".into(),
                        request_id: Some(run_id.to_owned()),
                        operation: repair.operation(),
                    };
                    audit::record(c, tenant_id, &audit, Kind::User, &local_id, version)?;
                }
                Ok(())
            })?;
        }
        Ok(repairs.len())
    }
}
