//! The dispatcher: claims outbox rows, converges each target on the resource's current state,
//! and records the outcome (done, retry with backoff, dead-letter).
//!
//! A row says "target T must converge on resource R", not "send this change": the dispatcher
//! reads R as it is *now*, so several changes before a delivery become one call, a deleted R
//! becomes a deprovision, and a retried or re-claimed row can never send stale data. The link
//! (local id → remote id, last delivered version) makes it idempotent: a row whose version the
//! target already has is done without a call, and a user with no link is looked up at the vendor
//! and adopted before anything is created. The link also records the payload the target was last
//! sent (on every create, update, adoption and deactivation), which an update diffs against: an
//! adapter that patches sends only what changed, and nothing when nothing did.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use rand::RngExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use scimgw_adapter::{DeliveryError, Deprovision, OnInvalid};
use scimgw_scim::schema::Registry as SchemaRegistry;
use scimgw_store::{Delivery, DeliveryState, Finish, Kind, Link, Store, StoreError};

use crate::decision::{AtTarget, Decision, decide};
use crate::targets::{Target, Targets, derived_account_name, describe};

/// How long a delivery for a target that is not loaded waits before it is looked at again. A
/// start or reload that loads the target wakes it at once (`Store::wake_held`), so this is a
/// safety net (another replica loaded it first; the target was removed meanwhile), long enough
/// that one tenant's held backlog costs the shared writer little: each held row is one write per
/// `HOLD`.
pub const HOLD: Duration = Duration::from_secs(6 * 3600);

/// The longest wait between two probes of a paused target (they back off as its retries do, up to
/// its `backoff_max_ms`, and never further apart than this): the outage's end is noticed within it.
pub const PROBE_MAX: Duration = Duration::from_secs(60);

/// How often the dispatcher reads which targets are paused and runs the probes that are due.
const HEALTH_EVERY: Duration = Duration::from_millis(500);

/// Members a fan-out row queues per write (see `Dispatcher::fan_out`): a short write each, so a
/// rename of a 100,000-member group never holds the store's writer for long.
pub const FAN_OUT_PAGE: i64 = 500;

/// A share of `within` picked by `key`: rows held together come due over a stretch of time
/// instead of all at once (each then costs a claim and a write on the shared store).
fn spread(key: &str, within: Duration) -> Duration {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    let millis = u64::try_from(within.as_millis()).unwrap_or(u64::MAX).max(1);
    Duration::from_millis(h.finish() % millis)
}

/// `[retention]` settings: how long finished deliveries and audit events are kept. Durations as
/// `30d`, `12h`, `90m`; `0` keeps for ever.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Done (and superseded) deliveries, with their attempts, older than this are purged.
    #[serde(deserialize_with = "duration_text")]
    pub deliveries: String,
    /// Audit events (the API's and the operators') older than this are purged.
    #[serde(deserialize_with = "duration_text")]
    pub audit: String,
    /// How often a dispatcher purges (one of several on one store, each time).
    #[serde(deserialize_with = "duration_text")]
    pub every: String,
    /// Rows removed per write.
    pub batch: i64,
}

/// A duration as text (`30d`), or a number of seconds (`0`, as `SCIMGW_RETENTION__AUDIT=0` or
/// `audit = 0` give it).
fn duration_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        Words(String),
        Seconds(u64),
    }
    Ok(match Text::deserialize(d)? {
        Text::Words(w) => w,
        Text::Seconds(0) => "0".into(),
        Text::Seconds(n) => format!("{n}s"),
    })
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig { deliveries: "30d".into(), audit: "400d".into(), every: "1h".into(), batch: 500 }
    }
}

impl RetentionConfig {
    /// (deliveries, audit, every): `None` for a kind kept for ever; each problem one line.
    pub fn parsed(&self) -> Result<(Option<Duration>, Option<Duration>, Duration), Vec<String>> {
        let age = |key: &str, text: &str| -> Result<Option<Duration>, String> {
            match text.trim() {
                "0" | "" => Ok(None),
                t => humantime::parse_duration(t).map(Some).map_err(|e| {
                    format!("retention.{key}: \"{text}\" is not an age like \"30d\" or \"12h\" (0 keeps for ever): {e}")
                }),
            }
        };
        let mut problems = Vec::new();
        let deliveries = age("deliveries", &self.deliveries).map_err(|e| problems.push(e)).ok().flatten();
        let audit = age("audit", &self.audit).map_err(|e| problems.push(e)).ok().flatten();
        let every = match humantime::parse_duration(self.every.trim()) {
            Ok(d) if d >= Duration::from_secs(1) => d,
            Ok(_) => {
                problems.push(format!("retention.every: \"{}\" must be at least 1s", self.every));
                Duration::from_secs(3600)
            }
            Err(e) => {
                problems.push(format!("retention.every: \"{}\" is not a duration like \"1h\": {e}", self.every));
                Duration::from_secs(3600)
            }
        };
        if self.batch < 1 {
            problems.push("retention.batch: must be at least 1".into());
        }
        if problems.is_empty() { Ok((deliveries, audit, every)) } else { Err(problems) }
    }

    /// The purge's cutoffs as of `now_us`.
    pub fn cutoffs(&self, now_us: i64) -> Result<scimgw_store::Cutoffs, Vec<String>> {
        let (deliveries, audit, _) = self.parsed()?;
        let before = |age: Option<Duration>| age.map(|a| now_us.saturating_sub(micros(a)));
        Ok(scimgw_store::Cutoffs { deliveries_before_us: before(deliveries), audit_before_us: before(audit) })
    }
}

/// `[dispatcher]` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DispatcherConfig {
    /// Run the dispatcher inside `serve` (turn off when separate `scimgw worker`s deliver).
    pub enabled: bool,
    /// Deliveries in flight at once, over all targets.
    pub concurrency: usize,
    /// Threads of the dispatcher's own runtime (the HTTP calls to vendors, translation, the
    /// outbox bookkeeping); 0: one per CPU. With a single thread, draining a backlog could use
    /// one core while the SCIM workers sat idle.
    pub threads: usize,
    /// How long a claimed row is ours, renewed when its delivery starts after a wait and before a
    /// request once a third of it has passed (requests waiting for the rate limit); a dispatcher that dies
    /// leaves its rows to others after this. Keep it above a delivery's longest run (a lookup,
    /// a write and a retry of the write, each up to the target's `request_timeout_ms`).
    pub lease_secs: u64,
    /// How often to look for due rows when nothing wakes the dispatcher.
    pub poll_ms: u64,
    /// On shutdown, how long in-flight deliveries may take to finish.
    pub shutdown_grace_secs: u64,
    /// What the dispatcher purges, and how often (`[retention]` in the gateway's configuration).
    #[serde(skip)]
    pub retention: RetentionConfig,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        DispatcherConfig {
            enabled: true,
            concurrency: 16,
            threads: 0,
            lease_secs: 120,
            poll_ms: 250,
            shutdown_grace_secs: 10,
            retention: RetentionConfig::default(),
        }
    }
}

/// When the dispatcher last went round its loop (milliseconds since the epoch), for `/readyz`.
#[derive(Debug, Default, Clone)]
pub struct Heartbeat(Arc<AtomicI64>);

impl Heartbeat {
    /// Now.
    pub fn beat(&self) {
        self.0.store(chrono::Utc::now().timestamp_millis(), Ordering::Relaxed);
    }

    /// Milliseconds since the last beat (`None`: never).
    pub fn age_ms(&self) -> Option<i64> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            at => Some(chrono::Utc::now().timestamp_millis() - at),
        }
    }
}

/// A running dispatcher's shared parts.
pub struct Dispatcher {
    store: Store,
    targets: Arc<Targets>,
    schemas: Arc<SchemaRegistry>,
    config: DispatcherConfig,
    owner: String,
    wake: Arc<Notify>,
    heartbeat: Heartbeat,
    /// The paused targets as (tenant id, target), as last read from the store (every
    /// [`HEALTH_EVERY`]) or paused here: a claimed row of one is held, not attempted.
    paused: std::sync::Mutex<std::collections::HashSet<(String, String)>>,
    /// When this dispatcher last took or renewed the lease of each row it is delivering: a
    /// delivery whose requests wait for the rate limit renews it as it goes (see `pace`).
    leased_at: std::sync::Mutex<std::collections::HashMap<String, Instant>>,
    /// The shutdown signal `run` was given: a request waiting for the rate limit gives way to it.
    stop: std::sync::OnceLock<watch::Receiver<bool>>,
}

/// What converging did, for the attempt history.
enum Converged {
    Done(String),
    /// Done, and the target now holds this (written with the outcome, in one transaction).
    Linked(String, Box<Link>),
    Skipped(String),
}

impl Dispatcher {
    /// A dispatcher over `store`; `wake` is notified by the SCIM endpoint after each write.
    pub fn new(
        store: Store,
        targets: Arc<Targets>,
        schemas: Arc<SchemaRegistry>,
        config: DispatcherConfig,
        wake: Arc<Notify>,
    ) -> Self {
        let owner = format!("{}-{}", hostname(), uuid_like());
        Dispatcher {
            store,
            targets,
            schemas,
            config,
            owner,
            wake,
            heartbeat: Default::default(),
            paused: Default::default(),
            leased_at: Default::default(),
            stop: std::sync::OnceLock::new(),
        }
    }

    /// The heartbeat `/readyz` checks: the loop beats it on every round.
    pub fn heartbeat(&self) -> Heartbeat {
        self.heartbeat.clone()
    }

    /// Runs until `shutdown` turns true; then lets in-flight deliveries finish within the grace
    /// period and gives back the leases of the rest.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let _ = self.stop.set(shutdown.clone());
        tracing::info!(owner = %self.owner, concurrency = self.config.concurrency, "dispatcher started");
        tokio::spawn(self.clone().reconcile_schedule(shutdown.clone()));
        tokio::spawn(self.clone().health_schedule(shutdown.clone()));
        tokio::spawn(self.clone().retention_schedule(shutdown.clone()));
        // Each task answers (row id, whether it ran): rows not started by shutdown are given back.
        let mut tasks: JoinSet<(String, bool)> = JoinSet::new();
        let mut in_flight: Vec<String> = Vec::new();
        // Which row each task holds, so that a task that panicked still frees its row.
        let mut rows_of: std::collections::HashMap<tokio::task::Id, String> = std::collections::HashMap::new();
        let concurrency = self.config.concurrency.max(1);
        loop {
            if *shutdown.borrow() {
                break;
            }
            self.heartbeat.beat();
            while let Some(done) = tasks.try_join_next_with_id() {
                settle(done, &mut in_flight, &mut rows_of);
            }
            let free = concurrency.saturating_sub(tasks.len());
            let mut claimed = 0;
            if free > 0 {
                let me = self.clone();
                let limit = i64::try_from(free).unwrap_or(i64::MAX);
                let lease = Duration::from_secs(self.config.lease_secs.max(1));
                match tokio::task::spawn_blocking(move || me.store.claim_deliveries(&me.owner, limit, lease)).await {
                    Ok(Ok(rows)) => {
                        claimed = rows.len();
                        let mut again = Vec::new();
                        for row in rows {
                            // A task of ours still has this row: its lease expired while it
                            // waited, or it finished a moment ago and we have not joined it yet.
                            // Give the new lease back; the next claim takes the row again.
                            if in_flight.contains(&row.id) {
                                again.push(row.id);
                                continue;
                            }
                            in_flight.push(row.id.clone());
                            let me = self.clone();
                            let stopping = shutdown.clone();
                            let row_id = row.id.clone();
                            let handle = tasks.spawn(async move {
                                let id = row.id.clone();
                                let ran = me.deliver(row, stopping).await;
                                (id, ran)
                            });
                            rows_of.insert(handle.id(), row_id);
                        }
                        // Only new tasks count: rows given back must not make this loop spin.
                        claimed -= again.len();
                        if !again.is_empty() {
                            let me = self.clone();
                            let _ = tokio::task::spawn_blocking(move || me.store.release_deliveries(&me.owner, &again))
                                .await;
                        }
                    }
                    Ok(Err(e)) => tracing::warn!(error = %e, "claiming deliveries failed; trying again"),
                    Err(e) => tracing::error!(error = %e, "the claim task failed"),
                }
            }
            if claimed > 0 && tasks.len() < concurrency {
                continue;
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(self.config.poll_ms.max(10))) => {}
                Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                    settle(done, &mut in_flight, &mut rows_of);
                }
                _ = shutdown.changed() => {}
            }
            while let Some(done) = tasks.try_join_next_with_id() {
                settle(done, &mut in_flight, &mut rows_of);
            }
        }
        let grace = Duration::from_secs(self.config.shutdown_grace_secs);
        let deadline = tokio::time::Instant::now() + grace;
        while !tasks.is_empty() {
            match tokio::time::timeout_at(deadline, tasks.join_next_with_id()).await {
                // A row that never started keeps its place in `in_flight`: its lease is given back.
                Ok(Some(Ok((_, (id, true))))) => in_flight.retain(|x| *x != id),
                Ok(Some(Ok((_, (_, false))))) => {}
                Ok(Some(Err(e))) => tracing::error!(error = %e, "a delivery task failed during shutdown"),
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!(left = tasks.len(), "deliveries still running at the end of the grace period");
                    tasks.abort_all();
                    break;
                }
            }
        }
        if !in_flight.is_empty() {
            // Convergence is state-based, so an interrupted delivery is safe to run again at once.
            let me = self.clone();
            let ids = in_flight.clone();
            let _ = tokio::task::spawn_blocking(move || me.store.release_deliveries(&me.owner, &ids)).await;
        }
        tracing::info!(left_for_next_start = in_flight.len(), "dispatcher stopped");
    }

    /// Runs the targets' scheduled reconciliations (`reconcile_every`) until shutdown. Each is
    /// claimed in the store first, so that of several dispatchers on one store one runs it.
    async fn reconcile_schedule(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut next_due: std::collections::HashMap<(String, String), i64> = std::collections::HashMap::new();
        loop {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                return;
            }
            let set = self.targets.snapshot();
            for (tenant_id, target) in set.iter() {
                let Ok(Some(every)) = target.config.reconcile_interval() else { continue };
                let now = chrono::Utc::now().timestamp_micros();
                let every_us = i64::try_from(every.as_micros()).unwrap_or(i64::MAX);
                let key = (tenant_id.to_owned(), target.name().to_owned());
                if next_due.get(&key).is_some_and(|due| *due > now) {
                    continue;
                }
                let (me, t, n) = (self.clone(), key.0.clone(), key.1.clone());
                let due_before = now.saturating_sub(every_us);
                let claimed =
                    tokio::task::spawn_blocking(move || me.store.claim_reconcile(&t, &n, &me.owner, due_before)).await;
                match claimed {
                    Ok(Ok(true)) => {
                        next_due.insert(key.clone(), now.saturating_add(every_us));
                        if !self.scheduled_reconcile(tenant_id, target, now, &mut shutdown).await {
                            return;
                        }
                    }
                    Ok(Ok(false)) => {
                        // Another dispatcher (or `scimgw reconcile`) ran it lately: look again
                        // when that run's interval is over.
                        let me = self.clone();
                        let runs = tokio::task::spawn_blocking(move || me.store.reconcile_runs()).await;
                        let last = runs.ok().and_then(Result::ok).and_then(|runs| {
                            runs.into_iter().find(|r| r.tenant_id == key.0 && r.target == key.1).map(|r| r.started_us)
                        });
                        let due = last.map_or(now + 1_000_000, |s| s.saturating_add(every_us));
                        next_due.insert(key, due);
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, target = %key.1, "claiming a scheduled reconcile failed");
                        next_due.insert(key, now + 10_000_000);
                    }
                    Err(_) => {}
                }
            }
        }
    }

    /// One scheduled run, recorded in the store; `false` when shutdown interrupted it (the run
    /// is then due again at the next start).
    async fn scheduled_reconcile(
        &self,
        tenant_id: &str,
        target: &Arc<Target>,
        started_us: i64,
        shutdown: &mut watch::Receiver<bool>,
    ) -> bool {
        let options = crate::reconcile::Options {
            repair: target.config.reconcile_repair,
            triggered_by: "schedule",
            ..crate::reconcile::Options::default()
        };
        let quiet = crate::reconcile::Quiet;
        let run = crate::reconcile::reconcile(&self.store, target, &self.schemas, tenant_id, &options, &quiet);
        let (record, finished) = tokio::select! {
            result = run => match result {
                Ok(report) => {
                    tracing::info!(
                        target = %report.target,
                        mode = report.mode.as_str(),
                        users = report.users,
                        in_sync = report.in_sync,
                        drifted = report.drifted,
                        missing = report.missing,
                        orphans = report.orphans,
                        unlinked = report.unlinked,
                        repairs_queued = report.repairs_queued,
                        seconds = report.seconds,
                        "scheduled reconcile"
                    );
                    metrics::counter!("scimgw_reconcile_runs_total", "target" => report.target.clone(), "outcome" => "done")
                        .increment(1);
                    (crate::reconcile::run_record(&report, started_us), true)
                }
                Err(e) => {
                    tracing::warn!(target = %target.name(), error = %e, "scheduled reconcile failed");
                    metrics::counter!("scimgw_reconcile_runs_total", "target" => target.name().to_owned(), "outcome" => "failed")
                        .increment(1);
                    let error = e.to_string();
                    (crate::reconcile::failed_record(tenant_id, target.name(), "schedule", started_us, &error), true)
                }
            },
            _ = shutdown.wait_for(|stop| *stop) => (
                crate::reconcile::failed_record(tenant_id, target.name(), "schedule", 0, "interrupted by a shutdown"),
                false,
            ),
        };
        let me_store = self.store.clone();
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || me_store.finish_reconcile(&record)).await {
            tracing::warn!(error = %e, "recording a reconcile failed");
        }
        finished
    }

    /// One row: converge, then record the outcome. `false` when shutdown came before it started
    /// (it waited for the target's `max_in_flight`); nothing was sent then.
    async fn deliver(self: &Arc<Self>, row: Delivery, mut stopping: watch::Receiver<bool>) -> bool {
        let started = Instant::now();
        let set = self.targets.snapshot();
        if set.get(&row.tenant_id, &row.target).is_none()
            && set.is_held(&row.tenant_id, &row.target)
            // Looked at again: a reload may have loaded it since this row was claimed.
            && let Some(broken) = self.targets.snapshot().held_because(&row.tenant_id, &row.target)
        {
            // Not an attempt: the target is not loaded. Kept until a load wakes it.
            let why = broken.describe();
            drop(set);
            let hold = HOLD + spread(&row.id, HOLD / 4);
            let (me, row) = (self.clone(), row);
            match tokio::task::spawn_blocking(move || me.store.hold_delivery(&row, &me.owner, hold, &why)).await {
                Ok(Ok(_)) => metrics::counter!("scimgw_deliveries_held_total").increment(1),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "holding a delivery failed; its lease will expire and it runs again")
                }
                Err(_) => {}
            }
            return true;
        }
        if !row.fan_out && self.held_while_paused(&row).await {
            return true;
        }
        let (finish, link) = match set.get(&row.tenant_id, &row.target) {
            None => (
                Finish {
                    state: DeliveryState::Dead,
                    retry_in: Duration::ZERO,
                    detail: Some(format!(
                        "target \"{}\" is not configured for this tenant (any more); fix the tenant file and run \
                     `scimgw deliveries retry`",
                        row.target
                    )),
                    duration: started.elapsed(),
                },
                None,
            ),
            // Sends nothing: neither a slot of `max_in_flight` nor a token of the rate limit, which
            // the member deliveries it queues need.
            Some(target) if row.fan_out => {
                let outcome = self.converge(&target, &row).await;
                self.outcome(&target, &row, outcome, started.elapsed())
            }
            Some(target) => {
                let outcome = {
                    let permit = tokio::select! {
                        p = target.in_flight.acquire() => p,
                        _ = stopping.wait_for(|stop| *stop) => return false,
                    };
                    // Paused while this row waited for its turn.
                    if self.held_while_paused(&row).await {
                        return true;
                    }
                    let lease = Duration::from_secs(self.config.lease_secs.max(1));
                    let (me, id) = (self.clone(), row.id.clone());
                    // A lease claimed a moment ago still has (nearly) all of its time: renewing it
                    // would cost a write per delivery for nothing. Only a row that waited for its
                    // target (max_in_flight) renews before it starts.
                    let fresh = started.elapsed() < lease / 10;
                    let renewed = match fresh {
                        true => Ok(Ok(true)),
                        false => tokio::task::spawn_blocking(move || me.store.renew_lease(&id, &me.owner, lease)).await,
                    };
                    match renewed {
                        Ok(Ok(true)) => {}
                        Ok(Ok(false)) => {
                            tracing::info!(delivery.id = %row.id, "lease lost while waiting; another dispatcher has it");
                            return true;
                        }
                        Ok(Err(e)) => {
                            tracing::warn!(error = %e, "renewing a lease failed; the row runs again later");
                            return true;
                        }
                        Err(_) => return true,
                    }
                    self.note_leased(&row.id, if fresh { started } else { Instant::now() });
                    let outcome = self.converge(&target, &row).await;
                    if let Ok(mut m) = self.leased_at.lock() {
                        m.remove(&row.id);
                    }
                    // A shutdown stopped it (waiting for the rate limit): given back, not an
                    // attempt; the next dispatcher delivers it from the current state.
                    if outcome.is_err() && *stopping.borrow() {
                        return false;
                    }
                    drop(permit);
                    outcome
                };
                self.note_health(&target, &row, &outcome).await;
                // The target went down under this attempt and is paused now: the row waits with
                // the others, without spending the attempt.
                if outcome.as_ref().err().and_then(DeliveryError::down).is_some() && self.held_while_paused(&row).await
                {
                    return true;
                }
                self.outcome(&target, &row, outcome, started.elapsed())
            }
        };
        let span_state = finish.state;
        metrics::counter!("scimgw_deliveries_total", "target" => row.target.clone(), "outcome" => span_state.as_str())
            .increment(1);
        metrics::histogram!("scimgw_delivery_duration_seconds", "target" => row.target.clone())
            .record(finish.duration.as_secs_f64());
        tracing::info!(
            delivery.id = %row.id,
            target = %row.target,
            resource.id = %row.resource_id,
            attempt = row.attempts + 1,
            outcome = %span_state,
            detail = finish.detail.as_deref().unwrap_or(""),
            "delivery"
        );
        match self.store.finish_delivery_linked_async(&row, &self.owner, &finish, link).await {
            Ok(true) => {}
            Ok(false) => tracing::info!("the lease was lost meanwhile; the row will be delivered again"),
            Err(e) => {
                tracing::warn!(error = %e, "recording a delivery failed; its lease will expire and it runs again")
            }
        }
        true
    }

    /// When the row's target is paused: holds the row (not an attempt) until it resumes, and
    /// `true`. `false`: deliver it (not paused, or it resumed meanwhile).
    async fn held_while_paused(self: &Arc<Self>, row: &Delivery) -> bool {
        // A target no longer configured is not held: its rows are dead-lettered as such below.
        if !self.is_paused(&row.tenant_id, &row.target)
            || self.targets.snapshot().get(&row.tenant_id, &row.target).is_none()
        {
            return false;
        }
        let hold = HOLD + spread(&row.id, HOLD / 4);
        let (me, r) = (self.clone(), row.clone());
        match tokio::task::spawn_blocking(move || me.store.hold_for_pause(&r, &me.owner, hold)).await {
            Ok(Ok(Some(_))) => {
                metrics::counter!("scimgw_deliveries_held_total").increment(1);
                true
            }
            Ok(Ok(None)) => {
                self.set_paused(&row.tenant_id, &row.target, false);
                false
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "holding a delivery failed; its lease will expire and it runs again");
                true
            }
            Err(_) => true,
        }
    }

    /// Waits for the target's rate limit before one request of `row`'s delivery, and renews the
    /// row's lease when a third of it has passed since it was taken or last renewed: a low rate
    /// shared by several dispatchers can make each request wait long, and an expired lease would
    /// let another dispatcher deliver the row a second time. A lease lost meanwhile ends the
    /// attempt before its request.
    async fn pace(&self, target: &Target, row: &Delivery) -> Result<(), DeliveryError> {
        match self.stop.get().cloned() {
            Some(mut stop) => tokio::select! {
                // A token at hand goes first: a delivery under way finishes if the rate lets it.
                biased;
                () = target.pace(&self.store, &row.tenant_id) => {}
                // `deliver` gives the row back uncharged: nothing more is sent for it.
                _ = stop.wait_for(|stop| *stop) => {
                    return Err(DeliveryError::retryable("the gateway is shutting down; the delivery stopped before this request"));
                }
            },
            None => target.pace(&self.store, &row.tenant_id).await,
        }
        let lease = Duration::from_secs(self.config.lease_secs.max(1));
        let since = self.leased_at.lock().ok().and_then(|m| m.get(&row.id).map(Instant::elapsed));
        if since.is_some_and(|s| s < lease / 3) {
            return Ok(());
        }
        let (id, owner) = (row.id.clone(), self.owner.clone());
        match self.store.run_blocking(move |s| s.renew_lease(&id, &owner, lease)).await {
            Ok(Ok(true)) => {
                self.note_leased(&row.id, Instant::now());
                Ok(())
            }
            Ok(Ok(false)) => Err(DeliveryError::retryable(
                "the lease was lost while this delivery waited for the target's rate limit; another dispatcher has it",
            )),
            Ok(Err(e)) | Err(e) => Err(DeliveryError::retryable(format!(
                "renewing the lease after waiting for the target's rate limit failed: {e}"
            ))),
        }
    }

    /// Notes that this dispatcher took or renewed `id`'s lease `at`.
    fn note_leased(&self, id: &str, at: Instant) {
        if let Ok(mut m) = self.leased_at.lock() {
            m.insert(id.to_owned(), at);
        }
    }

    /// Whether `target` of `tenant_id` is paused, as far as this dispatcher knows.
    fn is_paused(&self, tenant_id: &str, target: &str) -> bool {
        self.paused.lock().is_ok_and(|p| p.contains(&(tenant_id.to_owned(), target.to_owned())))
    }

    fn set_paused(&self, tenant_id: &str, target: &str, paused: bool) {
        if let Ok(mut set) = self.paused.lock() {
            let key = (tenant_id.to_owned(), target.to_owned());
            if paused {
                set.insert(key);
            } else {
                set.remove(&key);
            }
        }
    }

    /// Counts what an attempt says of the target's health: an answer of a working app resets the
    /// count; a 401 pauses the target at once, `pause_after_failures` unreachable, 403 or 5xx
    /// outcomes in a row pause it. What says nothing of the target (the store's errors, a
    /// delivery done without a request: out of scope, already there) changes nothing.
    async fn note_health(&self, target: &Arc<Target>, row: &Delivery, outcome: &Result<Converged, DeliveryError>) {
        let (down, error) = match outcome {
            Err(e) => match e.down() {
                Some(down) => (down, e),
                None => {
                    if e.target_answered() {
                        target.failures_in_a_row.store(0, Ordering::Relaxed);
                    }
                    return;
                }
            },
            // A link written: the app answered a create, an update or a lookup.
            Ok(Converged::Linked(..)) => {
                target.failures_in_a_row.store(0, Ordering::Relaxed);
                return;
            }
            Ok(_) => return,
        };
        let threshold = target.config.pause_after_failures;
        if threshold == 0 {
            return;
        }
        let in_a_row = target.failures_in_a_row.fetch_add(1, Ordering::Relaxed).saturating_add(1);
        if !down.pauses_at_once() && in_a_row < threshold {
            return;
        }
        target.failures_in_a_row.store(0, Ordering::Relaxed);
        let now = chrono::Utc::now().timestamp_micros();
        let paused = scimgw_store::PausedTarget {
            tenant_id: row.tenant_id.clone(),
            target: row.target.clone(),
            reason: down.as_str().to_owned(),
            detail: error.to_string(),
            since_us: now,
            probes: 0,
            next_probe_us: now.saturating_add(micros(probe_delay(target, 1))),
        };
        let hold = HOLD + spread(&row.target, HOLD / 4);
        let store = self.store.clone();
        let p = paused.clone();
        match tokio::task::spawn_blocking(move || store.pause_target(&p, hold)).await {
            Ok(Ok(true)) => {
                tracing::warn!(
                    tenant.id = %row.tenant_id,
                    target = %row.target,
                    reason = down.as_str(),
                    in_a_row,
                    error = %error,
                    "target paused: its deliveries are held (no attempt spent) and it is probed until it answers"
                );
                metrics::counter!("scimgw_target_pauses_total", "target" => row.target.clone(), "reason" => down.as_str())
                    .increment(1);
                self.set_paused(&row.tenant_id, &row.target, true);
            }
            Ok(Ok(false)) => self.set_paused(&row.tenant_id, &row.target, true),
            Ok(Err(e)) => tracing::warn!(error = %e, target = %row.target, "pausing a target failed"),
            Err(_) => {}
        }
    }

    /// Purges what `[retention]` says, once per `retention.every` over all dispatchers on the
    /// store (the job is claimed), in paced batches (see the store's `retention.rs`), until
    /// shutdown.
    async fn retention_schedule(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let retention = self.config.retention.clone();
        let every = match retention.parsed() {
            Ok((None, None, _)) => return,
            Ok((_, _, every)) => every,
            Err(problems) => {
                tracing::error!(problems = %problems.join("; "), "retention: not purging");
                return;
            }
        };
        // Looked at more often than it runs: another dispatcher may have run it meanwhile.
        let look = every.min(Duration::from_secs(60));
        loop {
            tokio::select! {
                () = tokio::time::sleep(look) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                return;
            }
            let now = chrono::Utc::now().timestamp_micros();
            let Ok(cutoffs) = retention.cutoffs(now) else { return };
            let (me, due_before) = (self.clone(), now.saturating_sub(micros(every)));
            let claimed = tokio::task::spawn_blocking(move || me.store.claim_job("purge", &me.owner, due_before)).await;
            if !matches!(claimed, Ok(Ok(true))) {
                continue;
            }
            let (store, stopping, batch) = (self.store.clone(), shutdown.clone(), retention.batch);
            let started = Instant::now();
            let purged = tokio::task::spawn_blocking(move || store.purge(cutoffs, batch, &|| *stopping.borrow())).await;
            match purged {
                Ok(Ok(n)) => {
                    for (table, count) in [
                        ("deliveries", n.deliveries),
                        ("delivery_attempts", n.attempts),
                        ("audit_events", n.audit_events),
                        ("operator_events", n.operator_events),
                    ] {
                        metrics::counter!("scimgw_purged_rows_total", "table" => table).increment(count);
                    }
                    tracing::info!(
                        deliveries = n.deliveries,
                        attempts = n.attempts,
                        audit_events = n.audit_events,
                        operator_events = n.operator_events,
                        seconds = started.elapsed().as_secs_f64(),
                        "retention: purged"
                    );
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "retention: the purge failed; it runs again next time"),
                Err(_) => {}
            }
        }
    }

    /// Reads the paused targets every [`HEALTH_EVERY`] and probes each one this dispatcher has
    /// loaded when its probe is due (one dispatcher takes each probe), until shutdown.
    async fn health_schedule(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut probing: JoinSet<()> = JoinSet::new();
        loop {
            tokio::select! {
                () = tokio::time::sleep(HEALTH_EVERY) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                probing.abort_all();
                return;
            }
            while probing.try_join_next().is_some() {}
            let store = self.store.clone();
            let paused = match tokio::task::spawn_blocking(move || store.paused_targets()).await {
                Ok(Ok(paused)) => paused,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "reading the paused targets failed");
                    continue;
                }
                Err(_) => continue,
            };
            if let Ok(mut set) = self.paused.lock() {
                *set = paused.iter().map(|p| (p.tenant_id.clone(), p.target.clone())).collect();
            }
            let now = chrono::Utc::now().timestamp_micros();
            let set = self.targets.snapshot();
            for p in paused {
                let Some(target) = set.get(&p.tenant_id, &p.target) else {
                    // Removed or renamed while paused (and not merely failing to load): nothing
                    // will probe it; its rows wake and are dead-lettered as not configured.
                    if !set.is_held(&p.tenant_id, &p.target) {
                        let (store, t, n) = (self.store.clone(), p.tenant_id.clone(), p.target.clone());
                        if let Ok(Ok(Some(woken))) =
                            tokio::task::spawn_blocking(move || store.resume_target(&t, &n)).await
                        {
                            tracing::info!(target = %p.target, deliveries = woken, "a paused target is no longer configured: pause ended");
                            self.set_paused(&p.tenant_id, &p.target, false);
                            self.wake.notify_one();
                        }
                    }
                    continue;
                };
                if p.next_probe_us > now {
                    continue;
                }
                let me = self.clone();
                probing.spawn(async move { me.probe(target, p).await });
            }
        }
    }

    /// One probe of a paused target: the adapter's own lookup of a user nobody has, with the
    /// target's loaded secret and client (what the deliveries use). Any answer that does not say
    /// the target is down (a 200, a 404, a 400 about the query) resumes it: its held deliveries
    /// are due.
    async fn probe(&self, target: Arc<Target>, paused: scimgw_store::PausedTarget) {
        let now = chrono::Utc::now().timestamp_micros();
        let probes = u32::try_from(paused.probes).unwrap_or(u32::MAX).saturating_add(1);
        let next = now.saturating_add(micros(probe_delay(&target, probes.saturating_add(1))));
        let (store, t, n, due) =
            (self.store.clone(), paused.tenant_id.clone(), paused.target.clone(), paused.next_probe_us);
        match tokio::task::spawn_blocking(move || store.claim_probe(&t, &n, due, next)).await {
            Ok(Ok(true)) => {}
            _ => return,
        }
        let nobody = format!("scimgw-probe-{}", uuid_like());
        let mut probe_user = serde_json::Map::new();
        probe_user.insert("userName".into(), Value::from(nobody.clone()));
        probe_user.insert("externalId".into(), Value::from(nobody));
        target.pace(&self.store, &paused.tenant_id).await;
        let looked = target.adapter.find(&probe_user).await;
        let down = looked.as_ref().err().and_then(|e| e.down().map(|_| e.to_string()));
        metrics::counter!("scimgw_target_probes_total", "target" => paused.target.clone(), "outcome" => if down.is_none() { "answered" } else { "failed" })
            .increment(1);
        let store = self.store.clone();
        let (t, n) = (paused.tenant_id.clone(), paused.target.clone());
        if down.is_none() {
            match tokio::task::spawn_blocking(move || store.resume_target(&t, &n)).await {
                Ok(Ok(Some(woken))) => {
                    let paused_for = Duration::from_micros(u64::try_from(now - paused.since_us).unwrap_or(0));
                    tracing::info!(
                        tenant.id = %paused.tenant_id,
                        target = %paused.target,
                        probes,
                        paused_secs = paused_for.as_secs(),
                        deliveries_due = woken,
                        "target resumed: it answered a probe; its held deliveries are due now"
                    );
                    self.set_paused(&paused.tenant_id, &paused.target, false);
                    self.wake.notify_one();
                    // Another dispatcher that read the pause just before it ended may hold one
                    // more row meanwhile: look again once that has settled.
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    let (store, t, n) = (self.store.clone(), paused.tenant_id.clone(), paused.target.clone());
                    if let Ok(Ok(n)) = tokio::task::spawn_blocking(move || store.wake_paused(&t, &n)).await
                        && n > 0
                    {
                        self.wake.notify_one();
                    }
                }
                Ok(Ok(None)) => self.set_paused(&paused.tenant_id, &paused.target, false),
                Ok(Err(e)) => tracing::warn!(error = %e, target = %paused.target, "resuming a target failed"),
                Err(_) => {}
            }
        } else {
            let why = format!("probe: {}", down.unwrap_or_default());
            tracing::info!(target = %paused.target, probes, error = %why, "paused target still not answering");
            let _ = tokio::task::spawn_blocking(move || store.probe_failed(&t, &n, &why)).await;
        }
    }

    fn outcome(
        &self,
        target: &Target,
        row: &Delivery,
        outcome: Result<Converged, DeliveryError>,
        duration: Duration,
    ) -> (Finish, Option<Link>) {
        let attempts = u32::try_from(row.attempts).unwrap_or(0).saturating_add(1);
        let policy = target.config.retry();
        let finish = match outcome {
            Ok(Converged::Done(detail)) => {
                Finish { state: DeliveryState::Done, retry_in: Duration::ZERO, detail: Some(detail), duration }
            }
            Ok(Converged::Linked(detail, link)) => {
                let done =
                    Finish { state: DeliveryState::Done, retry_in: Duration::ZERO, detail: Some(detail), duration };
                return (done, Some(*link));
            }
            Ok(Converged::Skipped(reason)) => {
                Finish { state: DeliveryState::Skipped, retry_in: Duration::ZERO, detail: Some(reason), duration }
            }
            Err(e) if e.is_retryable() && attempts < policy.max_attempts => {
                let retry_after = match &e {
                    DeliveryError::RateLimited { retry_after, .. } => *retry_after,
                    _ => None,
                };
                let jitter = rand::rng().random_range(0.5..=1.0);
                let retry_in = policy.delay(attempts, jitter, retry_after);
                Finish { state: DeliveryState::Failed, retry_in, detail: Some(e.to_string()), duration }
            }
            Err(e) => {
                let detail =
                    if e.is_retryable() { format!("gave up after {attempts} attempts: {e}") } else { e.to_string() };
                Finish { state: DeliveryState::Dead, retry_in: Duration::ZERO, detail: Some(detail), duration }
            }
        };
        (finish, None)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, DeliveryError> {
        on_store(&self.store, f).await
    }

    /// [`Dispatcher::blocking`] for two primary-key lookups: inline on SQLite, where they cost
    /// less than the hand-off to the store's threads (as the gateway's `quick_read`).
    async fn quick_read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, DeliveryError> {
        if self.store.backend() == scimgw_store::Backend::Sqlite {
            return f(&self.store).map_err(|e| DeliveryError::retryable(format!("the store: {e}")));
        }
        self.blocking(f).await
    }

    /// Brings `target` to the current state of the row's resource.
    async fn converge(&self, target: &Target, row: &Delivery) -> Result<Converged, DeliveryError> {
        if row.fan_out {
            return self.fan_out(target, row).await;
        }
        if row.kind == Kind::Group {
            if !target.handles(Kind::Group) {
                // Queued while the target was not loaded, when what it takes was not known.
                return Ok(Converged::Skipped(format!("the {} adapter does not take groups", target.adapter.kind())));
            }
            return self.converge_group(target, row).await;
        }
        let (tenant, id, name) = (row.tenant_id.clone(), row.resource_id.clone(), row.target.clone());
        // The user's groups only for a scope that reads them: one more index probe.
        let groups = target.scope_reads_groups();
        let (current, link) = self
            .quick_read(move |s| {
                Ok((s.get(&tenant, Kind::User, &id, groups)?, s.link(&tenant, &name, Kind::User, &id)?))
            })
            .await?;
        let schema = self
            .schemas
            .resource("User")
            .ok_or_else(|| DeliveryError::permanent("the User resource type is not registered"))?;

        let Some(current) = current else {
            return self.deprovision(target, row, link).await;
        };
        let version = current.version;
        let mut user = current.to_scim(None);
        user.remove("meta");
        let has_account = link.as_ref().is_some_and(|l| l.remote_id.is_some());
        let at_version =
            link.as_ref().is_some_and(|l| l.state == "active" && l.delivered_version.is_some_and(|d| d >= version));
        let decision = decide(target, &user, &schema, AtTarget { has_account });
        // Read by the scope only; the adapter's look-ups and creates get the user as the IdP sent it.
        user.remove("groups");
        let payload = match decision {
            Decision::OutOfScope => return self.deprovision(target, row, link).await,
            // A target that already holds this version needs nothing, whatever the decision says
            // of it now (its rules may have changed since): this makes a re-run row idempotent.
            _ if at_version => return Ok(Converged::Done(format!("already at version {version}"))),
            Decision::Send(payload) => payload,
            Decision::Invalid { violations, on_invalid } => {
                let reason = describe(&violations);
                return match on_invalid {
                    OnInvalid::Skip => Ok(Converged::Skipped(reason)),
                    OnInvalid::Reject => {
                        Err(DeliveryError::permanent(format!("the user breaks the target's rules: {reason}")))
                    }
                };
            }
            // Not even looked up, so nothing reaches the app until the user is active.
            Decision::NotCreatedWhileInactive => {
                return Ok(Converged::Done(format!(
                    "not created: the user is inactive and {} does not create inactive users",
                    target.adapter.kind()
                )));
            }
        };

        let mut remote = link.as_ref().and_then(|l| l.remote_id.clone());
        // What the linked copy was last sent; unreadable text counts as nothing recorded (the
        // adapter then reads the copy back).
        let previous: Option<Value> =
            link.as_ref().and_then(|l| l.delivered_payload.as_deref()).and_then(|p| serde_json::from_str(p).ok());
        let mut how = "updated";
        let mut previous = previous.filter(|_| remote.is_some());
        const LOST: &str = "re-created (the target had lost it)";
        let mut lost = false;
        if remote.is_none() {
            self.pace(target, row).await?;
            if let Some(found) = target.adapter.find(&user).await? {
                refuse_held(&self.store, row, &found.id).await?;
                remote = Some(found.id);
                how = "adopted";
                previous = None;
            }
        }
        // Nothing recorded for a patching adapter: read the copy back once, as a request of its
        // own through the target's pace (a failed read retries the delivery like any failure).
        if let Some(rid) = remote.as_ref().filter(|_| previous.is_none() && target.adapter.updates_by_diff()) {
            match self.read_copy(target, row, rid).await? {
                Some(copy) => previous = Some(copy),
                None => {
                    lost = true;
                    remote = None;
                }
            }
        }
        let remote_id = match remote {
            Some(rid) => {
                self.pace(target, row).await?;
                match target.adapter.update(&rid, previous.as_ref(), &payload).await {
                    Ok(()) => rid,
                    Err(DeliveryError::NotFound { .. }) => {
                        how = LOST;
                        self.create(target, row, &user, &payload).await?
                    }
                    Err(e) => return Err(e),
                }
            }
            None => {
                how = if lost { LOST } else { "created" };
                self.create(target, row, &user, &payload).await?
            }
        };
        let mut link = delivered(row, Kind::User, &remote_id, version);
        link.delivered_payload = Some(payload.to_string());
        link.account_name = derived_account_name(target, &payload).map(str::to_owned);
        Ok(Converged::Linked(format!("{how} {remote_id} at version {version}"), Box::new(link)))
    }

    /// A fan-out row (a group renamed under a scope that reads `groups.display`): queues a
    /// delivery of each user member, a page of [`FAN_OUT_PAGE`] per short write, renewing the
    /// lease between pages. A target whose scope no longer reads group names has nothing to do.
    async fn fan_out(&self, target: &Target, row: &Delivery) -> Result<Converged, DeliveryError> {
        if !target.scope_reads_group_names() {
            return Ok(Converged::Done("nothing to do: the target's scope does not read group names".into()));
        }
        let lease = Duration::from_secs(self.config.lease_secs.max(1));
        let (mut after, mut queued) = (String::new(), 0usize);
        loop {
            let page = self
                .store
                .queue_members(&row.tenant_id, &row.resource_id, &row.target, &after, FAN_OUT_PAGE)
                .await
                .map_err(|e| DeliveryError::retryable(format!("the store: {e}")))?;
            let Some((n, last)) = page else { break };
            queued += n;
            after = last;
            let (id, owner) = (row.id.clone(), self.owner.clone());
            match self.blocking(move |s| s.renew_lease(&id, &owner, lease)).await {
                Ok(true) => {}
                Ok(false) => return Err(DeliveryError::retryable("lost the lease while queueing the group's members")),
                Err(e) => return Err(e),
            }
        }
        self.wake.notify_one();
        Ok(Converged::Done(format!("queued a delivery of each of the group's {queued} user members")))
    }

    /// Brings `target` to the current state of a group: its attributes and its members, given
    /// as the target's ids. Members the target does not hold (out of its scope, skipped) are
    /// left out; a member whose own delivery is still waiting makes this a retry, so that the
    /// group never goes out without a member that is about to exist.
    async fn converge_group(&self, target: &Target, row: &Delivery) -> Result<Converged, DeliveryError> {
        let (tenant, id, name) = (row.tenant_id.clone(), row.resource_id.clone(), row.target.clone());
        let (current, link) = self
            .blocking(move |s| Ok((s.get(&tenant, Kind::Group, &id, true)?, s.link(&tenant, &name, Kind::Group, &id)?)))
            .await?;
        let Some(group) = current else {
            let Some(mut link) = link.filter(|l| l.remote_id.is_some() && l.state != "deleted") else {
                return Ok(Converged::Done("nothing to do: the target never had it".into()));
            };
            let remote_id = link.remote_id.clone().unwrap_or_default();
            self.pace(target, row).await?;
            target.adapter.delete_group(&remote_id).await?;
            link.state = "deleted".into();
            link.delivered_version = None;
            return Ok(Converged::Linked(format!("deleted group {remote_id}"), Box::new(link)));
        };
        if let Some(l) = &link {
            if l.state == "active" && l.delivered_version.is_some_and(|v| v >= group.version) {
                return Ok(Converged::Done(format!("already at version {}", group.version)));
            }
        }
        let members = group.members.clone().unwrap_or_default();
        let mut remote_members = Vec::with_capacity(members.len());
        for kind in [Kind::User, Kind::Group] {
            let ids: Vec<String> = members
                .iter()
                .filter(|m| (m.r#type.as_deref() == Some("Group")) == (kind == Kind::Group))
                .map(|m| m.value.clone())
                .collect();
            if ids.is_empty() {
                continue;
            }
            // Which members are still waiting for their own delivery, read *before* the links: a
            // delivery records its link and its `done` in one transaction, so a member that is
            // unlinked below and was not waiting here never will be. (Read the other way round,
            // a member delivered between the two reads looked neither linked nor waiting, and
            // the group went out without it.)
            let (tenant, name, wanted) = (row.tenant_id.clone(), row.target.clone(), ids.clone());
            let (waiting, links) = self
                .blocking(move |s| {
                    let waiting = s.awaiting_delivery(&tenant, &name, kind, &wanted)?;
                    Ok((waiting, s.links_for(&tenant, &name, kind, &wanted)?))
                })
                .await?;
            let held: Vec<&String> =
                links.iter().filter(|l| l.state != "deleted").filter_map(|l| l.remote_id.as_ref()).collect();
            remote_members.extend(held.into_iter().cloned());
            let linked: Vec<&str> =
                links.iter().filter(|l| l.state != "deleted").map(|l| l.local_id.as_str()).collect();
            let waiting: Vec<&String> = waiting.iter().filter(|w| !linked.contains(&w.as_str())).collect();
            if let Some(first) = waiting.first() {
                return Err(DeliveryError::retryable(format!(
                    "{} of the members (e.g. {} {first}) are not at the target yet; retrying after them",
                    waiting.len(),
                    kind.resource_type()
                )));
            }
        }
        remote_members.sort();
        let mut scim = group.to_scim(None);
        scim.remove("meta");
        scim.remove("members");
        let payload = target
            .adapter
            .translate_group(&scim, &remote_members)
            .map_err(|v| DeliveryError::permanent(v.to_string()))?;
        let mut remote = link.as_ref().filter(|l| l.state != "deleted").and_then(|l| l.remote_id.clone());
        let mut how = "updated";
        if remote.is_none() {
            self.pace(target, row).await?;
            if let Some(found) = target.adapter.find_group(&scim).await? {
                refuse_held(&self.store, row, &found.id).await?;
                remote = Some(found.id);
                how = "adopted";
            }
        }
        // Every request to the app takes its own token, the conflict's lookup and update too.
        let create = || {
            let payload = payload.clone();
            let scim = scim.clone();
            async move {
                match target.adapter.create_group(&payload).await {
                    Ok(r) => Ok(r.id),
                    Err(DeliveryError::Conflict { message }) => {
                        self.pace(target, row).await?;
                        let found = target.adapter.find_group(&scim).await?.ok_or_else(|| {
                            DeliveryError::permanent(format!("the target reports a conflict but no match: {message}"))
                        })?;
                        refuse_held(&self.store, row, &found.id).await?;
                        self.pace(target, row).await?;
                        target.adapter.update_group(&found.id, &payload).await?;
                        Ok(found.id)
                    }
                    Err(e) => Err(e),
                }
            }
        };
        self.pace(target, row).await?;
        let remote_id = match remote {
            Some(rid) => match target.adapter.update_group(&rid, &payload).await {
                Ok(()) => rid,
                Err(DeliveryError::NotFound { .. }) => {
                    how = "re-created (the target had lost it)";
                    self.pace(target, row).await?;
                    create().await?
                }
                Err(e) => return Err(e),
            },
            None => {
                how = "created";
                create().await?
            }
        };
        let version = group.version;
        let link = delivered(row, Kind::Group, &remote_id, version);
        Ok(Converged::Linked(
            format!("{how} group {remote_id} with {} member(s) at version {version}", remote_members.len()),
            Box::new(link),
        ))
    }

    /// Creates the user; a conflict (the vendor has it after all) is resolved by lookup.
    async fn create(
        &self,
        target: &Target,
        row: &Delivery,
        user: &serde_json::Map<String, Value>,
        payload: &Value,
    ) -> Result<String, DeliveryError> {
        self.pace(target, row).await?;
        match target.adapter.create(payload).await {
            Ok(r) => Ok(r.id),
            Err(DeliveryError::Conflict { message }) => {
                self.pace(target, row).await?;
                let found = target.adapter.find(user).await?.ok_or_else(|| {
                    DeliveryError::permanent(format!("the target reports a conflict but no match to adopt: {message}"))
                })?;
                refuse_held(&self.store, row, &found.id).await?;
                // A patching adapter diffs against the copy: read it back as a request of its
                // own (its own token), as `converge` does.
                let previous = match target.adapter.updates_by_diff() {
                    true => self.read_copy(target, row, &found.id).await?,
                    false => None,
                };
                self.pace(target, row).await?;
                target.adapter.update(&found.id, previous.as_ref(), payload).await?;
                Ok(found.id)
            }
            Err(e) => Err(e),
        }
    }

    /// Reads the app's copy of user `remote_id` back, as a paced request of its own, as the
    /// payload a patching adapter diffs against; `None` when the app no longer has it.
    async fn read_copy(
        &self,
        target: &Target,
        row: &Delivery,
        remote_id: &str,
    ) -> Result<Option<Value>, DeliveryError> {
        self.pace(target, row).await?;
        Ok(target
            .adapter
            .read_user(remote_id)
            .await?
            .map(|copy| target.adapter.payload_of_copy(&copy.as_object().cloned().unwrap_or_default())))
    }

    /// The resource is gone or out of scope: deprovision what the target holds.
    async fn deprovision(
        &self,
        target: &Target,
        row: &Delivery,
        link: Option<Link>,
    ) -> Result<Converged, DeliveryError> {
        let Some(mut link) = link.filter(|l| l.remote_id.is_some()) else {
            return Ok(Converged::Done("nothing to do: the target never had it".into()));
        };
        let Some(remote_id) = link.remote_id.clone() else {
            return Ok(Converged::Done("nothing to do".into()));
        };
        // An account no user matched (`reconcile --deactivate-orphans`) is only ever deactivated:
        // someone made it by hand, and deleting it would lose what they put there.
        let policy = match row.resource_id.starts_with(scimgw_store::ORPHAN_PREFIX) {
            true => Deprovision::Deactivate,
            false => target.config.deprovision,
        };
        let how = match policy {
            Deprovision::Delete if link.state != "deleted" => {
                self.pace(target, row).await?;
                target.adapter.delete(&remote_id).await?;
                link.state = "deleted".into();
                link.delivered_payload = None;
                "deleted"
            }
            Deprovision::Deactivate if link.state == "active" => {
                let sent: Option<Value> = link.delivered_payload.as_deref().and_then(|p| serde_json::from_str(p).ok());
                // A user disabled before leaving was sent `active: false` already: nothing differs.
                let already_inactive = sent.as_ref().and_then(|p| p.get("active")) == Some(&Value::Bool(false));
                if !already_inactive {
                    self.pace(target, row).await?;
                    target.adapter.deactivate(&remote_id).await?;
                }
                link.state = "deactivated".into();
                // The copy holds what it was sent, now inactive: a return diffs against that.
                link.delivered_payload = sent.map(|p| scimgw_adapter::diff::deactivated(&p).to_string());
                "deactivated"
            }
            _ => return Ok(Converged::Done(format!("already {}", link.state))),
        };
        link.delivered_version = None;
        Ok(Converged::Linked(format!("{how} {remote_id}"), Box::new(link)))
    }
}

/// The link of a resource the target now holds at `version`.
fn delivered(row: &Delivery, kind: Kind, remote_id: &str, version: i64) -> Link {
    Link {
        tenant_id: row.tenant_id.clone(),
        target: row.target.clone(),
        kind,
        local_id: row.resource_id.clone(),
        remote_id: Some(remote_id.to_owned()),
        delivered_version: Some(version),
        state: "active".into(),
        last_error: None,
        updated_us: 0,
        delivered_payload: None,
        account_name: None,
    }
}

/// Forgets a finished task's row (also when the task panicked: a bug, logged, whose row is then
/// claimed again once its lease expires).
fn settle(
    done: Result<(tokio::task::Id, (String, bool)), tokio::task::JoinError>,
    in_flight: &mut Vec<String>,
    rows_of: &mut std::collections::HashMap<tokio::task::Id, String>,
) {
    let (task, row) = match done {
        Ok((task, (row, _))) => (task, Some(row)),
        Err(e) => {
            tracing::error!(error = %e, "a delivery task failed; its row is delivered again after its lease");
            (e.id(), None)
        }
    };
    if let Some(row) = rows_of.remove(&task).or(row) {
        in_flight.retain(|x| *x != row);
    }
}

/// The wait before probe number `n` of a paused target: its retry backoff, at most [`PROBE_MAX`].
fn probe_delay(target: &Target, n: u32) -> Duration {
    target.config.retry().delay(n, 1.0, None).min(PROBE_MAX)
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

fn hostname() -> String {
    std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "scimgw".into())
}

fn uuid_like() -> String {
    let n: u64 = rand::rng().random();
    format!("{n:016x}")
}

/// Runs `f` on the store's threads; a store error is a retryable delivery error.
async fn on_store<T: Send + 'static>(
    store: &Store,
    f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, DeliveryError> {
    match store.run_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(DeliveryError::retryable(format!("the store: {e}"))),
        Err(e) => Err(DeliveryError::retryable(format!("the store task: {e}"))),
    }
}

/// Adoption never takes an account already linked to another resource: two people would share
/// it, each one's changes overwriting the other's. That delivery is dead-lettered, naming the
/// account and its holder (the store refuses the link anyway: links are unique on the account).
async fn refuse_held(store: &Store, row: &Delivery, remote_id: &str) -> Result<(), DeliveryError> {
    let (t, n, kind, rid) = (row.tenant_id.clone(), row.target.clone(), row.kind, remote_id.to_owned());
    match on_store(store, move |s| s.link_holder(&t, &n, kind, &rid)).await? {
        Some(holder) if holder != row.resource_id => {
            let what = row.kind.resource_type().to_lowercase();
            Err(DeliveryError::permanent(format!(
                "{}: the account {remote_id} found for this {what} is already linked to {what} {holder}; not \
                 adopted, so that two people never share one account. Make their names at the target differ \
                 (for JumpCloud, username_from) and retry",
                row.target
            )))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_rows_come_due_spread_over_the_stretch_not_at_once() {
        let within = Duration::from_secs(5400);
        let dues: std::collections::BTreeSet<u128> =
            (0..200).map(|i| spread(&format!("row-{i}"), within).as_millis()).collect();
        assert!(dues.iter().all(|d| *d < within.as_millis()));
        assert!(dues.len() > 190, "{} distinct of 200", dues.len());
        let first_half = dues.iter().filter(|d| **d < within.as_millis() / 2).count();
        assert!((60..=140).contains(&first_half), "{first_half} of 200 in the first half");
        assert_eq!(spread("row-1", within), spread("row-1", within), "the same row, the same share");
        assert_eq!(spread("row-1", Duration::ZERO), Duration::ZERO);
    }
}
