//! Reconciliation: compares what a target's vendor holds with what the gateway would send, and
//! queues the deliveries that repair the difference.
//!
//! The gateway holds the canonical users and a link to each one's account at every target, so it
//! can tell, per target:
//!
//! - **drift**: a linked account whose attributes differ from the adapter's translation of the
//!   user (only what the payload carries is compared: see `scimgw_adapter::compare`);
//! - **missing**: an in-scope user the vendor has no account for;
//! - **orphans**: an account no gateway user matches (found only when the vendor can be listed),
//!   or the account of a deprovisioned user (deleted, or out of scope) that is still active —
//!   or still there at all when the target deprovisions by deleting;
//! - **unlinked**: an account that matches an in-scope user by the matching attribute but is not
//!   linked to it (the next delivery adopts it).
//!
//! Users with a delivery still waiting in the outbox are counted as *awaiting*, not reported:
//! the dispatcher is about to change what the vendor holds. Users that break the target's rules
//! and the inactive users an adapter does not create are counted as *not sent*.
//!
//! The vendor is read the way its [`ReadBack`] says (or the target's `reconcile_by`): by paging
//! through `GET /Users`, or by one lookup per user the gateway knows (by the account's id, and by
//! the matching attribute for users without a live link). Every read goes through the target's
//! rate limit, at most `max_in_flight` at once, and is retried on 429, 5xx and timeouts.
//!
//! A repair is never a write to the vendor from here: it is an outbox delivery
//! ([`Store::queue_repairs`]), which the dispatcher runs with the target's rate limit, retries,
//! attempt history and an audit event. Orphans are only deactivated when asked. A repair forgets
//! the payload the link recorded, so the dispatcher's update takes the path of a link with nothing
//! recorded: it reads the vendor's copy back and PATCHes the difference, which is the drift.
//!
//! Values (what the vendor holds, what was expected) are in the [`Report`]'s findings only: the
//! caller decides where they go (`--json` to a file); the log gets counts.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::Serialize;
use serde_json::{Map, Value};

use scimgw_adapter::{DeliveryError, Deprovision, Difference, ReadBack};
use scimgw_scim::schema::Registry as SchemaRegistry;
use scimgw_scim::value::{boolean, get_ci};
use scimgw_store::{Kind, Link, ORPHAN_PREFIX, ReconcileRun, Repair, Store, StoreError};

use crate::decision::{AtTarget, Decision, decide};
use crate::targets::Target;

/// How one run behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// Queue the deliveries that repair drift, missing users and unlinked matches.
    pub repair: bool,
    /// Also queue the deprovisioning of active orphans.
    pub deactivate_orphans: bool,
    /// `cli` or `schedule`, recorded with the run.
    pub triggered_by: &'static str,
    /// Users per page when listing the vendor (the vendor may send fewer).
    pub page_size: u64,
    /// The most pages one listing reads ([`MAX_LIST_PAGES`] by default); a vendor whose listing
    /// has not ended by then fails the run.
    pub max_pages: u64,
}

/// The most pages a listing reads by default: 1,000,000 accounts at the default page size of
/// 100, about 1 GB held in memory. A listing ends before that at `totalResults`, at an empty
/// page, or — as an error — at a page that brings no account not listed already; this bounds a
/// vendor that keeps inventing accounts.
pub const MAX_LIST_PAGES: u64 = 10_000;

impl Default for Options {
    fn default() -> Self {
        Options {
            repair: false,
            deactivate_orphans: false,
            triggered_by: "cli",
            page_size: 100,
            max_pages: MAX_LIST_PAGES,
        }
    }
}

/// What kind of difference a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FindingKind {
    /// A linked account whose attributes differ.
    Drift,
    /// An in-scope user the vendor has no account for.
    Missing,
    /// An account no gateway user should have there.
    Orphan,
    /// An account matching a user, not linked to it.
    Unlinked,
}

impl FindingKind {
    /// The word in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Drift => "drift",
            FindingKind::Missing => "missing",
            FindingKind::Orphan => "orphan",
            FindingKind::Unlinked => "unlinked",
        }
    }
}

/// One thing that is not as it should be at the vendor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// What kind.
    pub kind: FindingKind,
    /// The gateway user's id (none for an account no user matches).
    pub user_id: Option<String>,
    /// The user's `userName` (the account's, for an orphan).
    pub user_name: Option<String>,
    /// The vendor's id of the account, when it has one.
    pub remote_id: Option<String>,
    /// The attributes that differ (drift).
    pub attributes: Vec<String>,
    /// The attributes with both values (drift). In the JSON report only.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub differences: Vec<Difference>,
    /// Why, in words.
    pub note: String,
    /// Whether a repair was queued for it.
    pub repair_queued: bool,
}

/// The outcome of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// This run's id (the audit events of its repairs carry it as their request id).
    pub run_id: String,
    /// The tenant's id.
    pub tenant_id: String,
    /// The target.
    pub target: String,
    /// How the vendor was read.
    pub mode: ReadBack,
    /// `cli` or `schedule`.
    pub triggered_by: String,
    /// When it started (RFC 3339).
    pub started: String,
    /// How long it took.
    pub seconds: f64,
    /// Gateway users looked at.
    pub users: u64,
    /// Accounts the vendor listed (list mode).
    pub vendor_accounts: Option<u64>,
    /// Requests made to the vendor.
    pub requests: u64,
    /// Users the vendor holds as the gateway would send them (and deprovisioned ones it holds
    /// as it should).
    pub in_sync: u64,
    /// Users with a delivery waiting in the outbox: not judged.
    pub awaiting_delivery: u64,
    /// In-scope users never sent here (they break the target's rules, or are inactive and the
    /// adapter does not create inactive users).
    pub not_sent: u64,
    /// Findings by kind.
    pub drifted: u64,
    /// See [`FindingKind::Missing`].
    pub missing: u64,
    /// See [`FindingKind::Orphan`].
    pub orphans: u64,
    /// See [`FindingKind::Unlinked`].
    pub unlinked: u64,
    /// Whether accounts no gateway user matches could be looked for (list mode only).
    pub orphan_search: bool,
    /// Deliveries queued to repair.
    pub repairs_queued: u64,
    /// Each finding.
    pub findings: Vec<Finding>,
}

impl Report {
    /// Whether nothing was found.
    pub fn in_sync(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Why a run could not finish.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The store failed.
    #[error("the store: {0}")]
    Store(#[from] StoreError),
    /// The vendor failed (after retries).
    #[error("reading the target: {0}")]
    Vendor(DeliveryError),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// Where a run reports its progress (a progress bar; nothing in the dispatcher).
pub trait Progress: Send + Sync {
    /// A new phase with `total` steps, when known.
    fn phase(&self, what: &str, total: Option<u64>) {
        let _ = (what, total);
    }
    /// `n` more steps done.
    fn advance(&self, n: u64) {
        let _ = n;
    }
}

/// No progress shown.
pub struct Quiet;

impl Progress for Quiet {}

/// What the gateway expects of one of its users at the target.
enum Expect {
    /// This payload.
    Payload(Value),
    /// Nothing here: deprovisioned (deleted, or out of scope) while linked.
    Deprovisioned,
}

struct Local {
    id: String,
    version: i64,
    user_name: Option<String>,
    key: Option<String>,
    user: Option<Map<String, Value>>,
    expect: Expect,
    link: Option<Link>,
}

/// Attempts of one vendor read before the run fails: 5xx, timeouts and refused connections wait
/// 0.5, 1 and 2 s between them.
const READ_ATTEMPTS: u32 = 4;

/// Attempts while the vendor answers 429 (or 503 with `Retry-After`): it says when to come back
/// (at most a minute is waited each time; 1 s when it does not say).
const THROTTLED_ATTEMPTS: u32 = 10;

/// Vendor reads with retries, counted.
struct Reader<'a> {
    target: &'a Target,
    store: &'a Store,
    tenant_id: &'a str,
    requests: AtomicU64,
}

impl Reader<'_> {
    async fn call<T, F, Fut>(&self, f: F) -> Result<T, DeliveryError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, DeliveryError>>,
    {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            self.target.pace(self.store, self.tenant_id).await;
            self.requests.fetch_add(1, Ordering::Relaxed);
            let wait = match f().await {
                Ok(v) => return Ok(v),
                Err(DeliveryError::RateLimited { retry_after, .. }) if attempt < THROTTLED_ATTEMPTS => {
                    retry_after.unwrap_or(Duration::from_secs(1)).min(Duration::from_secs(60))
                }
                Err(e) if attempt >= READ_ATTEMPTS || !e.is_retryable() => return Err(e),
                Err(_) => Duration::from_millis(250u64 << attempt.min(READ_ATTEMPTS)),
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// Runs one reconciliation of `target` (a target of `tenant_id`).
pub async fn reconcile(
    store: &Store,
    target: &Target,
    schemas: &Arc<SchemaRegistry>,
    tenant_id: &str,
    options: &Options,
    progress: &dyn Progress,
) -> Result<Report, ReconcileError> {
    let started_at = chrono::Utc::now();
    let started = Instant::now();
    let run_id = uuid::Uuid::now_v7().to_string();
    let mode = target.config.reconcile_by.unwrap_or(target.adapter.capabilities().read_back);
    let name = target.name().to_owned();

    // The gateway's side.
    progress.phase("reading the gateway's users", None);
    let (resources, links) = {
        let (store, schemas, tenant, name) = (store.clone(), schemas.clone(), tenant_id.to_owned(), name.clone());
        // A scope that reads `groups` decides on each user's groups, as the dispatcher does.
        let groups = target.scope_reads_groups();
        blocking(move || {
            let schema = schemas
                .resource("User")
                .ok_or_else(|| StoreError::Internal("the User resource type is not registered".into()))?;
            let mut users = Vec::new();
            store.for_each_page(&tenant, Kind::User, &schema, None, groups, 1000, |page| {
                users.extend(page);
                Ok::<(), StoreError>(())
            })?;
            Ok((users, store.links_at(&tenant, &name, Kind::User)?))
        })
        .await?
    };
    let schema = schemas.resource("User").ok_or_else(|| ReconcileError::Other("no User schema".into()))?;
    let mut links: HashMap<String, Link> = links.into_iter().map(|l| (l.local_id.clone(), l)).collect();
    let mut locals = Vec::new();
    let mut not_sent = 0u64;
    let mut all_keys: HashSet<String> = HashSet::new();
    for r in resources {
        let mut user = r.to_scim(None);
        user.remove("meta");
        // Read by the scope only, as the dispatcher does: the adapter's look-ups get the user
        // without it.
        let groups = user.remove("groups");
        let link = links.remove(&r.id).filter(|l| l.remote_id.is_some());
        let key = target.adapter.match_key(&user);
        if let Some(k) = &key {
            all_keys.insert(k.clone());
        }
        let user_name = get_ci(&user, "userName").and_then(Value::as_str).map(str::to_owned);
        let at = AtTarget { has_account: link.is_some() };
        let decision = match groups {
            Some(groups) => {
                let mut scoped = user.clone();
                scoped.insert("groups".into(), groups);
                decide(target, &scoped, &schema, at)
            }
            None => decide(target, &user, &schema, at),
        };
        let expect = match decision {
            Decision::Send(payload) => Expect::Payload(payload),
            Decision::OutOfScope => match link {
                Some(_) => Expect::Deprovisioned,
                None => continue,
            },
            // Breaks the target's rules (stored under on_invalid = "skip", or before a rule
            // came), or inactive where the vendor creates no inactive users: never sent here.
            Decision::Invalid { .. } | Decision::NotCreatedWhileInactive => {
                not_sent += 1;
                continue;
            }
        };
        locals.push(Local { id: r.id, version: r.version, user_name, key, user: Some(user), expect, link });
    }
    // Links of users that are gone (and placeholders of orphans being deactivated).
    for (_, link) in links.into_iter().filter(|(_, l)| l.remote_id.is_some()) {
        locals.push(Local {
            id: link.local_id.clone(),
            version: 0,
            user_name: None,
            key: None,
            user: None,
            expect: Expect::Deprovisioned,
            link: Some(link),
        });
    }
    let users = locals.iter().filter(|l| l.user.is_some()).count() as u64;

    // The vendor's side.
    let reader = Reader { target, store, tenant_id, requests: AtomicU64::new(0) };
    let concurrency = usize::try_from(target.config.max_in_flight).unwrap_or(1).max(1);
    let mut by_id: HashMap<String, Value> = HashMap::new();
    let mut by_key: HashMap<String, Vec<String>> = HashMap::new();
    // Keys that more than one account answered to (a lookup that refused to pick one).
    let mut ambiguous: HashSet<String> = HashSet::new();
    let mut vendor_accounts = None;
    match mode {
        ReadBack::List => {
            progress.phase(&format!("listing {name}'s users"), None);
            let mut start = 1u64;
            let mut pages = 0u64;
            loop {
                if pages >= options.max_pages {
                    return Err(ReconcileError::Other(format!(
                        "{name}'s listing had not ended after {pages} pages ({} accounts; the most a run reads is \
                         {} pages): stopped. Set reconcile_by = \"lookup\" for this target if it does not page",
                        by_id.len(),
                        options.max_pages
                    )));
                }
                pages += 1;
                let page = reader
                    .call(|| target.adapter.list_users(start, options.page_size.max(1)))
                    .await
                    .map_err(ReconcileError::Vendor)?;
                let n = page.resources.len() as u64;
                let listed_before = by_id.len();
                for account in page.resources {
                    if let Some(id) = remote_id(&account) {
                        // An account a shifted page lists again is one account, not two matches.
                        if by_id.contains_key(&id) {
                            continue;
                        }
                        if let Some(k) = account.as_object().and_then(|a| target.adapter.remote_match_key(a)) {
                            by_key.entry(k).or_default().push(id.clone());
                        }
                        by_id.insert(id, account);
                    }
                }
                // A page that brings no account not listed already (the same page again, pages
                // taking turns, accounts without ids) would never end the listing.
                if n > 0 && by_id.len() == listed_before {
                    return Err(ReconcileError::Other(format!(
                        "{name} answered startIndex {start} with no account it had not listed already: it does \
                         not page; set reconcile_by = \"lookup\" for this target"
                    )));
                }
                progress.advance(n);
                start += n;
                if n == 0 || page.total.is_some_and(|t| start > t) {
                    break;
                }
            }
            vendor_accounts = Some(by_id.len() as u64);
        }
        ReadBack::Lookup => {
            // By id: every linked user and deprovisioned account.
            let ids: Vec<String> = locals.iter().filter_map(|l| l.link.as_ref()?.remote_id.clone()).collect();
            progress.phase(&format!("reading {name}'s accounts"), Some(ids.len() as u64));
            let reader = &reader;
            let mut reads = futures_util::stream::iter(ids.into_iter().map(|id| async move {
                let found = reader.call(|| target.adapter.read_user(&id)).await;
                (id, found)
            }))
            .buffer_unordered(concurrency);
            while let Some((id, found)) = reads.next().await {
                progress.advance(1);
                if let Some(account) = found.map_err(ReconcileError::Vendor)? {
                    by_id.insert(id, account);
                }
            }
            drop(reads);
            // By the matching attribute: users expected here whose account was not found by id.
            let wanted: Vec<(usize, Map<String, Value>)> = locals
                .iter()
                .enumerate()
                .filter(|(_, l)| matches!(l.expect, Expect::Payload(_)))
                .filter(|(_, l)| {
                    l.link.as_ref().and_then(|k| k.remote_id.as_ref()).is_none_or(|r| !by_id.contains_key(r))
                })
                .filter_map(|(i, l)| Some((i, l.user.clone()?)))
                .collect();
            progress.phase(&format!("looking users up at {name}"), Some(wanted.len() as u64));
            let mut lookups = futures_util::stream::iter(
                wanted
                    .into_iter()
                    .map(|(i, user)| async move { (i, reader.call(|| target.adapter.lookup_user(&user)).await) }),
            )
            .buffer_unordered(concurrency);
            let mut found_by_lookup = Vec::new();
            while let Some((i, found)) = lookups.next().await {
                progress.advance(1);
                match found {
                    Ok(Some(account)) => found_by_lookup.push((i, account)),
                    Ok(None) => {}
                    // More than one account matches (`ScimClient::find_one` refuses to guess).
                    Err(DeliveryError::Permanent { status: None, message })
                        if message.contains("refusing to guess") =>
                    {
                        found_by_lookup.push((i, Value::Null))
                    }
                    Err(e) => return Err(ReconcileError::Vendor(e)),
                }
            }
            drop(lookups);
            for (i, account) in found_by_lookup {
                let Some(key) = locals.get(i).and_then(|l| l.key.clone()) else { continue };
                match remote_id(&account) {
                    Some(id) => {
                        by_key.entry(key).or_default().push(id.clone());
                        by_id.entry(id).or_insert(account);
                    }
                    None => {
                        ambiguous.insert(key);
                    }
                }
            }
        }
    }

    // Compare.
    progress.phase("comparing", Some(locals.len() as u64));
    let mut findings: Vec<(Finding, Option<Repair>)> = Vec::new();
    let mut in_sync = 0u64;
    let mut claimed: HashSet<String> = HashSet::new();
    let deletes = target.config.deprovision == Deprovision::Delete;
    for l in &locals {
        progress.advance(1);
        let linked = l.link.as_ref().and_then(|k| k.remote_id.clone());
        if let Some(r) = &linked {
            claimed.insert(r.clone());
        }
        let account = linked.as_ref().and_then(|r| by_id.get(r));
        let finding = |kind, remote_id: Option<String>, note: String| Finding {
            kind,
            user_id: Some(l.id.clone()),
            user_name: l.user_name.clone(),
            remote_id,
            attributes: Vec::new(),
            differences: Vec::new(),
            note,
            repair_queued: false,
        };
        match &l.expect {
            Expect::Payload(payload) => {
                if let Some(account) = account {
                    let diffs = target.adapter.differences(payload, account);
                    if diffs.is_empty() {
                        in_sync += 1;
                    } else {
                        let mut f = finding(
                            FindingKind::Drift,
                            linked.clone(),
                            format!("{} attribute(s) differ at {name}", diffs.len()),
                        );
                        f.attributes = diffs.iter().map(|d| d.attribute.clone()).collect();
                        f.differences = diffs;
                        findings.push((
                            f,
                            Some(Repair::Resend { local_id: l.id.clone(), version: l.version, relink: false }),
                        ));
                    }
                    continue;
                }
                let matches = l.key.as_ref().and_then(|k| by_key.get(k)).cloned().unwrap_or_default();
                let lost = if linked.is_some() { " (the account it was linked to is gone)" } else { "" };
                let several = l.key.as_ref().is_some_and(|k| ambiguous.contains(k));
                match matches.as_slice() {
                    [] if !several => findings.push((
                        finding(FindingKind::Missing, None, format!("{name} has no account for this user{lost}")),
                        Some(Repair::Resend { local_id: l.id.clone(), version: l.version, relink: true }),
                    )),
                    [one] if !several => {
                        claimed.insert(one.clone());
                        findings.push((
                            finding(
                                FindingKind::Unlinked,
                                Some(one.clone()),
                                format!(
                                    "an account matches this user but is not linked to it{lost}; a delivery adopts it"
                                ),
                            ),
                            Some(Repair::Resend { local_id: l.id.clone(), version: l.version, relink: true }),
                        ));
                    }
                    more => {
                        claimed.extend(more.iter().cloned());
                        findings.push((
                            finding(
                                FindingKind::Unlinked,
                                None,
                                format!(
                                    "{} accounts match this user; deliveries refuse to guess which one is its: \
                                     remove the duplicates at {name}",
                                    more.len().max(2)
                                ),
                            ),
                            None,
                        ));
                    }
                }
            }
            Expect::Deprovisioned => {
                let Some(account) = account else {
                    in_sync += 1;
                    continue;
                };
                let placeholder = l.id.starts_with(ORPHAN_PREFIX);
                let active = account_active(account);
                let why = if placeholder {
                    "an account no gateway user matches, queued for deactivation"
                } else if l.user.is_some() {
                    "the user is out of this target's scope"
                } else {
                    "the user was deleted"
                };
                let (kind_of_problem, problem) = if deletes && !placeholder {
                    (true, format!("{why}, but the account is still at {name} (deprovision = \"delete\")"))
                } else if active {
                    (true, format!("{why}, but the account is still active at {name}"))
                } else {
                    (false, String::new())
                };
                if !kind_of_problem {
                    in_sync += 1;
                    continue;
                }
                let mut f = finding(FindingKind::Orphan, linked.clone(), problem);
                if l.user.is_none() {
                    f.user_name = account.get("userName").and_then(Value::as_str).map(str::to_owned);
                    if placeholder {
                        f.user_id = None;
                    }
                }
                let repair = match (placeholder, &linked) {
                    (true, Some(r)) => Repair::DeactivateOrphan { remote_id: r.clone() },
                    _ => Repair::Deprovision { local_id: l.id.clone(), version: l.version },
                };
                findings.push((f, Some(repair)));
            }
        }
    }
    // Accounts nobody claims and no gateway user matches (only a listing shows them).
    if mode == ReadBack::List {
        let mut unknown: Vec<(&String, &Value)> = by_id
            .iter()
            .filter(|(id, _)| !claimed.contains(*id))
            .filter(|(_, a)| {
                a.as_object().and_then(|a| target.adapter.remote_match_key(a)).is_none_or(|k| !all_keys.contains(&k))
            })
            .collect();
        unknown.sort_by(|a, b| a.0.cmp(b.0));
        for (id, account) in unknown {
            let active = account_active(account);
            findings.push((
                Finding {
                    kind: FindingKind::Orphan,
                    user_id: None,
                    user_name: account.get("userName").and_then(Value::as_str).map(str::to_owned),
                    remote_id: Some(id.clone()),
                    attributes: Vec::new(),
                    differences: Vec::new(),
                    note: format!(
                        "no gateway user matches this account ({})",
                        if active { "active" } else { "inactive" }
                    ),
                    repair_queued: false,
                },
                active.then(|| Repair::DeactivateOrphan { remote_id: id.clone() }),
            ));
        }
    }

    // What the dispatcher is about to change is not judged.
    let judged: Vec<String> = findings.iter().filter_map(|(f, _)| f.user_id.clone()).collect();
    let placeholders: Vec<String> = findings
        .iter()
        .filter(|(f, _)| f.user_id.is_none())
        .filter_map(|(f, _)| Some(format!("{ORPHAN_PREFIX}{}", f.remote_id.as_ref()?)))
        .collect();
    let awaiting: HashSet<String> = {
        let (store, tenant, name) = (store.clone(), tenant_id.to_owned(), name.clone());
        let ids: Vec<String> = judged.into_iter().chain(placeholders).collect();
        blocking(move || store.awaiting_delivery(&tenant, &name, Kind::User, &ids)).await?.into_iter().collect()
    };
    let before = findings.len();
    findings.retain(|(f, _)| {
        let id = f.user_id.clone().or_else(|| Some(format!("{ORPHAN_PREFIX}{}", f.remote_id.as_ref()?)));
        !id.is_some_and(|i| awaiting.contains(&i))
    });
    let awaiting_delivery = (before - findings.len()) as u64;

    // Repairs.
    let mut repairs = Vec::new();
    if options.repair || options.deactivate_orphans {
        for (f, repair) in &mut findings {
            let wanted = match f.kind {
                FindingKind::Orphan => options.deactivate_orphans,
                _ => options.repair,
            };
            if let (true, Some(r)) = (wanted, repair.take()) {
                f.repair_queued = true;
                repairs.push(r);
            }
        }
    }
    let repairs_queued = repairs.len() as u64;
    if !repairs.is_empty() {
        let (store, tenant, name, run) = (store.clone(), tenant_id.to_owned(), name.clone(), run_id.clone());
        blocking(move || store.queue_repairs(&tenant, &name, &run, &repairs)).await?;
    }

    let count = |k: FindingKind| findings.iter().filter(|(f, _)| f.kind == k).count() as u64;
    let report = Report {
        run_id,
        tenant_id: tenant_id.to_owned(),
        target: name,
        mode,
        triggered_by: options.triggered_by.to_owned(),
        started: started_at.to_rfc3339(),
        seconds: started.elapsed().as_secs_f64(),
        users,
        vendor_accounts,
        requests: reader.requests.load(Ordering::Relaxed),
        in_sync,
        awaiting_delivery,
        not_sent,
        drifted: count(FindingKind::Drift),
        missing: count(FindingKind::Missing),
        orphans: count(FindingKind::Orphan),
        unlinked: count(FindingKind::Unlinked),
        orphan_search: mode == ReadBack::List,
        repairs_queued,
        findings: findings.into_iter().map(|(f, _)| f).collect(),
    };
    Ok(report)
}

/// The run as the store keeps it.
pub fn run_record(report: &Report, started_us: i64) -> ReconcileRun {
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    ReconcileRun {
        tenant_id: report.tenant_id.clone(),
        target: report.target.clone(),
        started_us,
        running_owner: None,
        finished_us: Some(chrono::Utc::now().timestamp_micros()),
        triggered_by: report.triggered_by.clone(),
        mode: report.mode.as_str().into(),
        checked: n(report.users + report.vendor_accounts.unwrap_or(0)),
        in_sync: n(report.in_sync),
        drifted: n(report.drifted),
        missing: n(report.missing),
        orphans: n(report.orphans),
        unlinked: n(report.unlinked),
        repairs: n(report.repairs_queued),
        error: None,
    }
}

/// A run that failed, as the store keeps it (the previous counts stay).
pub fn failed_record(tenant_id: &str, target: &str, triggered_by: &str, started_us: i64, error: &str) -> ReconcileRun {
    ReconcileRun {
        tenant_id: tenant_id.to_owned(),
        target: target.to_owned(),
        started_us,
        running_owner: None,
        finished_us: Some(chrono::Utc::now().timestamp_micros()),
        triggered_by: triggered_by.to_owned(),
        mode: String::new(),
        checked: 0,
        in_sync: 0,
        drifted: 0,
        missing: 0,
        orphans: 0,
        unlinked: 0,
        repairs: 0,
        error: Some(error.to_owned()),
    }
}

/// The vendor's id in an account.
fn remote_id(account: &Value) -> Option<String> {
    match account.get("id")? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An account is active unless it says `active: false` (RFC 7643 leaves an absent `active` to
/// the provider; the vendors here default to active).
fn account_active(account: &Value) -> bool {
    account.as_object().and_then(|a| get_ci(a, "active")).and_then(boolean) != Some(false)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ReconcileError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(ReconcileError::Store),
        Err(e) => Err(ReconcileError::Other(format!("the store task failed: {e}"))),
    }
}
