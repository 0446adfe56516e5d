//! Each tenant's targets: loaded from `<tenants_dir>/<tenant>.toml`, built into adapters, checked
//! at request time (each target's [`decide`]), and swapped whole on reload.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::{Arc, RwLock};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde_json::{Map, Value};
use tokio::sync::Semaphore;

use scimgw_adapter::{
    Adapter, ConfigProblem, Constructor, OnInvalid, Registry as AdapterRegistry, Secret, TargetConfig, Violation,
    generic::ScimAdapter, load_tenant_file, tenant_file_target_names,
};
use scimgw_scim::ScimError;
use scimgw_scim::filter::{AttrPath, Filter};
use scimgw_scim::schema::{Registry as SchemaRegistry, ResourceSchema};
use scimgw_store::{Enqueue, Kind, Store, Tenant};

use crate::decision::{AtTarget, Decision, decide};

/// Every adapter kind this gateway links. Adding a vendor is one line here.
pub fn adapter_registry() -> AdapterRegistry {
    let mut r = AdapterRegistry::new();
    r.register("scim", ScimAdapter::construct, scimgw_adapter::no_schemas);
    r.register(scimgw_adapter_jostle::KIND, scimgw_adapter_jostle::construct, scimgw_adapter_jostle::extension_schemas);
    r.register(
        scimgw_adapter_joyn_fsm::KIND,
        scimgw_adapter_joyn_fsm::construct,
        scimgw_adapter_joyn_fsm::extension_schemas,
    );
    r.register(scimgw_adapter_jumpcloud::KIND, scimgw_adapter_jumpcloud::construct, scimgw_adapter::no_schemas);
    r.require_url_flags(scimgw_adapter_jumpcloud::KIND, scimgw_adapter_jumpcloud::URL_FLAGS);
    r
}

/// The RFC schemas plus every linked adapter kind's extension schemas: what the SCIM endpoint
/// validates against and serves under `/Schemas`.
pub fn schema_registry() -> SchemaRegistry {
    let mut schemas = SchemaRegistry::default();
    if let Err(e) = adapter_registry().register_schemas(&mut schemas) {
        // Two linked adapters define the same extension differently: a build error in effect.
        tracing::error!("{e}");
    }
    schemas
}

/// One configured target, ready to validate and deliver.
pub struct Target {
    /// Its configuration.
    pub config: TargetConfig,
    /// Its adapter.
    pub adapter: Arc<dyn Adapter>,
    /// Its parsed scope (`None`: every user).
    pub scope: Option<Filter>,
    /// At most `max_in_flight` deliveries at once.
    pub in_flight: Semaphore,
    /// `rate_per_sec` / `burst`, when set.
    limiter: Option<DefaultDirectRateLimiter>,
    /// Deliveries in a row (in this process) that found the target down (unreachable, 5xx): at
    /// `pause_after_failures` the dispatcher pauses it (see `dispatch.rs`).
    pub(crate) failures_in_a_row: std::sync::atomic::AtomicU32,
    /// Tokens this process took from the target's bucket in the store and has not spent yet
    /// (PostgreSQL: the rate shared by every dispatcher, see [`Target::pace`]).
    pub(crate) shared_tokens: tokio::sync::Mutex<u32>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target").field("name", &self.config.name).field("kind", &self.config.kind).finish()
    }
}

impl Target {
    /// The target's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Waits until the target's rate limit allows one more request to its app: this process's
    /// own limiter, then, on PostgreSQL where several dispatchers may deliver to one target, a
    /// token of the target's bucket in the store, so that `rate_per_sec` holds across them.
    /// Every request to the app (a lookup, a create, an update, a read-back, a delete, a page of
    /// a reconcile) takes one.
    ///
    /// Store tokens are taken a share at a time (a tenth of a second's worth, at least one) and
    /// spent here. A store that fails lets the request go: this process's limiter still paces it.
    pub async fn pace(&self, store: &Store, tenant_id: &str) {
        if let Some(l) = &self.limiter {
            l.until_ready().await;
        }
        let Some(rate) = self.config.rate_per_sec.filter(|r| *r > 0) else { return };
        if store.backend() != scimgw_store::Backend::Postgres {
            return;
        }
        let burst = self.config.burst.unwrap_or(rate).max(1);
        let share = (rate / 10).clamp(1, burst);
        // Held while taking from the store: this process's requests to the target queue here.
        let mut left = self.shared_tokens.lock().await;
        loop {
            if *left > 0 {
                *left -= 1;
                return;
            }
            let (t, n) = (tenant_id.to_owned(), self.name().to_owned());
            match store.run_blocking(move |s| s.take_tokens(&t, &n, share, rate, burst)).await {
                Ok(Ok(None)) => *left = share,
                Ok(Ok(Some(wait))) => tokio::time::sleep(wait.min(std::time::Duration::from_secs(1))).await,
                Ok(Err(e)) | Err(e) => {
                    tracing::warn!(error = %e, target = %self.name(), "the shared rate limit could not be read; this process's own limit applies");
                    return;
                }
            }
        }
    }

    /// Whether `user` (its SCIM JSON) is in this target's scope. Only [`crate::decide`] asks.
    pub(crate) fn in_scope(&self, user: &Map<String, Value>, schema: &ResourceSchema<'_>) -> bool {
        self.scope.as_ref().is_none_or(|f| f.matches_object(user, schema))
    }

    /// `config` as a target that never sends (`scimgw preview`): built with a stand-in secret,
    /// since nothing is sent and the real one may not be on this machine. Its problems are those
    /// that stop it deciding (an unknown kind, a bad scope, the adapter refusing its options).
    pub fn offline(
        config: &TargetConfig,
        adapters: &AdapterRegistry,
        schemas: &SchemaRegistry,
    ) -> Result<Target, Vec<String>> {
        let (constructor, scope) = parts(config, adapters, schemas)?;
        assemble(config, constructor, scope, Secret::new("offline"))
    }

    /// Whether this target takes resources of `kind`.
    pub fn handles(&self, kind: Kind) -> bool {
        let caps = self.adapter.capabilities();
        match kind {
            Kind::User => caps.users,
            Kind::Group => caps.groups,
        }
    }

    /// Whether the scope reads a user's `groups` (any sub-attribute): a change of a group's
    /// members can move users into or out of it.
    pub fn scope_reads_groups(&self) -> bool {
        self.handles(Kind::User) && self.scope.as_ref().is_some_and(scope_reads_groups)
    }

    /// Whether the scope reads the names of a user's groups (`groups.display`, or `groups` as a
    /// whole): a rename of a group can move its members.
    pub fn scope_reads_group_names(&self) -> bool {
        self.handles(Kind::User)
            && self
                .scope
                .as_ref()
                .is_some_and(|f| reads_groups(f, &|sub| sub.is_none_or(|s| s.eq_ignore_ascii_case("display"))))
    }
}

/// Whether a scope filter reads a user's `groups` (any sub-attribute).
pub fn scope_reads_groups(filter: &Filter) -> bool {
    reads_groups(filter, &|_| true)
}

/// A group a scope names by an equality: `groups.value eq "<id>"` or `groups.display eq "Sales"`
/// (also as `groups[value eq "…"]`, `groups[display eq "…"]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedGroup {
    /// By id.
    Id(String),
    /// By displayName (compared ignoring case).
    Display(String),
}

/// The groups `filter` names by equality (see [`NamedGroup`]), for `config check` to look up.
pub fn scope_named_groups(filter: &Filter) -> Vec<NamedGroup> {
    use scimgw_scim::filter::{CompValue, CompareOp};
    fn named(sub: &str, value: &CompValue) -> Option<NamedGroup> {
        let CompValue::Str(v) = value else { return None };
        if sub.eq_ignore_ascii_case("value") {
            Some(NamedGroup::Id(v.clone()))
        } else if sub.eq_ignore_ascii_case("display") {
            Some(NamedGroup::Display(v.clone()))
        } else {
            None
        }
    }
    fn walk(f: &Filter, in_groups: bool, out: &mut Vec<NamedGroup>) {
        match f {
            Filter::Compare { path, op: CompareOp::Eq, value } => {
                let sub = match (in_groups, path.name.eq_ignore_ascii_case("groups"), path.sub_attr.as_deref()) {
                    (true, _, None) => Some(path.name.as_str()),
                    (false, true, Some(sub)) => Some(sub),
                    _ => None,
                };
                out.extend(sub.and_then(|sub| named(sub, value)));
            }
            Filter::ValuePath { path, filter } if path.name.eq_ignore_ascii_case("groups") => walk(filter, true, out),
            Filter::And(a, b) | Filter::Or(a, b) => {
                walk(a, in_groups, out);
                walk(b, in_groups, out);
            }
            Filter::Not(inner) => walk(inner, in_groups, out),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(filter, false, &mut out);
    out
}

/// Whether every test of `groups` in `filter` is an equality naming one group by `value` or
/// `display` (through `and`, `or`, `not` at the top, and `and`/`or` inside `groups[…]`), so
/// that membership in a group it does not name cannot change what it decides.
fn names_groups_only(filter: &Filter) -> bool {
    use scimgw_scim::filter::{CompValue, CompareOp};
    let named_leaf = |sub: Option<&str>, op: &CompareOp, value: &CompValue| {
        *op == CompareOp::Eq
            && matches!(value, CompValue::Str(_))
            && sub.is_some_and(|s| s.eq_ignore_ascii_case("value") || s.eq_ignore_ascii_case("display"))
    };
    fn inside(f: &Filter, leaf: &dyn Fn(Option<&str>, &CompareOp, &scimgw_scim::filter::CompValue) -> bool) -> bool {
        match f {
            Filter::Compare { path, op, value } => path.sub_attr.is_none() && leaf(Some(&path.name), op, value),
            Filter::And(a, b) | Filter::Or(a, b) => inside(a, leaf) && inside(b, leaf),
            _ => false,
        }
    }
    match filter {
        Filter::Compare { path, op, value } if path.name.eq_ignore_ascii_case("groups") => {
            named_leaf(path.sub_attr.as_deref(), op, value)
        }
        Filter::Present(path) => !path.name.eq_ignore_ascii_case("groups"),
        Filter::ValuePath { path, filter } if path.name.eq_ignore_ascii_case("groups") => {
            path.sub_attr.is_none() && inside(filter, &named_leaf)
        }
        Filter::And(a, b) | Filter::Or(a, b) => names_groups_only(a) && names_groups_only(b),
        Filter::Not(inner) => names_groups_only(inner),
        Filter::Compare { .. } | Filter::ValuePath { .. } => true,
    }
}

/// Whether `filter` tests `groups` with a sub-attribute `sub` accepts (`None`: `groups` itself,
/// as in `groups pr`). `groups[display eq "x"]` tests `display`.
fn reads_groups(filter: &Filter, sub: &dyn Fn(Option<&str>) -> bool) -> bool {
    let is_groups = |p: &AttrPath| p.name.eq_ignore_ascii_case("groups");
    match filter {
        Filter::Compare { path, .. } | Filter::Present(path) => is_groups(path) && sub(path.sub_attr.as_deref()),
        Filter::ValuePath { path, filter } => is_groups(path) && inner_paths(filter).iter().any(|p| sub(Some(p))),
        Filter::And(a, b) | Filter::Or(a, b) => reads_groups(a, sub) || reads_groups(b, sub),
        Filter::Not(inner) => reads_groups(inner, sub),
    }
}

/// The attribute names a value filter's inner tests read (`display` of `groups[display eq "x"]`).
fn inner_paths(filter: &Filter) -> Vec<&str> {
    match filter {
        Filter::Compare { path, .. } | Filter::Present(path) | Filter::ValuePath { path, .. } => vec![&path.name],
        Filter::And(a, b) | Filter::Or(a, b) => {
            let mut out = inner_paths(a);
            out.extend(inner_paths(b));
            out
        }
        Filter::Not(inner) => inner_paths(inner),
    }
}

/// The targets of every tenant, by tenant id, and those that could not be loaded.
#[derive(Debug, Default)]
pub struct TargetSet {
    tenants: HashMap<String, Vec<Arc<Target>>>,
    broken: HashMap<String, Vec<Broken>>,
}

/// One tenant's targets after a reload, compared with before ([`TargetSet::changes_from`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetChanges {
    /// Targets loaded now that were not before.
    pub added: Vec<String>,
    /// Targets loaded before that are not now.
    pub removed: Vec<String>,
    /// Targets whose configuration changed.
    pub changed: Vec<String>,
}

impl std::fmt::Display for TargetChanges {
    /// `added crm; removed old; changed hr`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = [("added", &self.added), ("removed", &self.removed), ("changed", &self.changed)]
            .iter()
            .filter(|(_, names)| !names.is_empty())
            .map(|(what, names)| format!("{what} {}", names.join(", ")))
            .collect();
        f.write_str(&parts.join("; "))
    }
}

/// What [`TargetSet::keep_running`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reloaded {
    /// Tenants (by name) with targets the reload could not load that keep running their
    /// previous configuration.
    pub refused: Vec<(String, Vec<String>)>,
    /// (tenant id, target) loaded now and not before: their held deliveries are due.
    pub woken: Vec<(String, String)>,
}

/// A target the load could not build, or a tenant file it could not read. One tenant's mistake
/// stops no one else: the other targets load. Its changes wait in the outbox — the edge queues
/// them, the dispatcher holds them without an attempt — until a start or reload loads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// The tenant's name (for messages; the set is keyed by id).
    pub tenant: String,
    /// The target's name; `None` when the tenant's file could not be read at all (not even the
    /// names of its targets): that tenant's SCIM writes are refused until it can.
    pub target: Option<String>,
    /// What is wrong, each problem on its own; never a secret.
    pub problems: Vec<String>,
    /// A reload broke it and its previous configuration keeps running (see
    /// [`TargetSet::keep_running`]); its changes are delivered as before.
    pub running_previous: bool,
}

impl Broken {
    /// One line: which target (or file), what is wrong, and what happens meanwhile.
    pub fn describe(&self) -> String {
        let what = match &self.target {
            Some(t) => format!("target \"{t}\" of tenant \"{}\"", self.tenant),
            None => format!("the targets file of tenant \"{}\"", self.tenant),
        };
        let meanwhile = match (self.running_previous, &self.target) {
            (true, _) => "its previous configuration keeps running",
            (false, Some(_)) => "its changes wait in the outbox until a reload (SIGHUP) or restart loads it",
            (false, None) => "the tenant's SCIM writes are refused (503) until a reload (SIGHUP) or restart reads it",
        };
        format!("{what} is not loaded: {}; {meanwhile}", self.problems.join("; "))
    }
}

impl TargetSet {
    /// The targets of a tenant (none for a tenant without a file).
    pub fn of(&self, tenant_id: &str) -> &[Arc<Target>] {
        self.tenants.get(tenant_id).map_or(&[], Vec::as_slice)
    }

    /// One target of a tenant.
    pub fn get(&self, tenant_id: &str, name: &str) -> Option<Arc<Target>> {
        self.of(tenant_id).iter().find(|t| t.name() == name).cloned()
    }

    /// Every tenant's targets, with the tenant's id.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Arc<Target>)> {
        self.tenants.iter().flat_map(|(tenant, targets)| targets.iter().map(move |t| (tenant.as_str(), t)))
    }

    /// What differs from `previous`, per tenant id that has a difference: the targets added,
    /// removed and changed (their configuration, secrets aside: only where a token is read from),
    /// by name, each sorted.
    pub fn changes_from(&self, previous: &TargetSet) -> Vec<(String, TargetChanges)> {
        let mut tenants: Vec<&String> = self.tenants.keys().chain(previous.tenants.keys()).collect();
        tenants.sort();
        tenants.dedup();
        let mut out = Vec::new();
        for tenant in tenants {
            let now = self.tenants.get(tenant).map_or(&[][..], Vec::as_slice);
            let before = previous.tenants.get(tenant).map_or(&[][..], Vec::as_slice);
            let mut c = TargetChanges::default();
            for t in now {
                match before.iter().find(|b| b.name() == t.name()) {
                    None => c.added.push(t.name().to_owned()),
                    Some(b) if b.config != t.config => c.changed.push(t.name().to_owned()),
                    Some(_) => {}
                }
            }
            c.removed = before
                .iter()
                .filter(|b| !now.iter().any(|t| t.name() == b.name()))
                .map(|b| b.name().to_owned())
                .collect();
            for list in [&mut c.added, &mut c.removed, &mut c.changed] {
                list.sort();
            }
            if !(c.added.is_empty() && c.removed.is_empty() && c.changed.is_empty()) {
                out.push((tenant.clone(), c));
            }
        }
        out
    }

    /// How many targets in all.
    pub fn len(&self) -> usize {
        self.tenants.values().map(Vec::len).sum()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What could not be loaded for a tenant.
    pub fn broken(&self, tenant_id: &str) -> &[Broken] {
        self.broken.get(tenant_id).map_or(&[], Vec::as_slice)
    }

    /// Everything that could not be loaded, by tenant id.
    pub fn all_broken(&self) -> impl Iterator<Item = (&str, &Broken)> {
        self.broken.iter().flat_map(|(t, b)| b.iter().map(move |b| (t.as_str(), b)))
    }

    /// Whether `name` of `tenant_id` is not loaded and has nothing running in its place: its
    /// deliveries are held. A tenant file that could not be read holds every target's.
    pub fn is_held(&self, tenant_id: &str, name: &str) -> bool {
        self.held_because(tenant_id, name).is_some()
    }

    /// Why `name`'s deliveries are held, if they are ([`TargetSet::is_held`]).
    pub fn held_because(&self, tenant_id: &str, name: &str) -> Option<&Broken> {
        self.broken(tenant_id).iter().find(|b| !b.running_previous && b.target.as_deref().is_none_or(|t| t == name))
    }

    /// The names of `tenant_id`'s targets whose deliveries are held ([`TargetSet::is_held`]): a
    /// change queues a delivery for each all the same, users and groups alike (what the target
    /// takes is not known until it loads; the dispatcher then skips what it does not take).
    pub fn held(&self, tenant_id: &str) -> Vec<&str> {
        self.broken(tenant_id).iter().filter(|b| !b.running_previous).filter_map(|b| b.target.as_deref()).collect()
    }

    /// Whether a loaded target of the tenant scopes by `groups`, so that a user's change is
    /// decided with the user's groups read.
    pub fn reads_groups(&self, tenant_id: &str) -> bool {
        self.of(tenant_id).iter().any(|t| t.scope_reads_groups())
    }

    /// What a change of one of the tenant's groups queues besides the group's own deliveries
    /// (see `Enqueue::moved_members`, `Enqueue::members_if_renamed`): for each target whose scope
    /// reads `groups`, the users it moves; for each that reads `groups.display`, on a rename,
    /// every user member. A held target (its scope unknown until it loads) gets both.
    ///
    /// `group` is the changed group as far as known: its id (none yet for a create) and its
    /// names before and after the change. A scope whose every test of `groups` is an equality
    /// naming a group (`groups.display eq "Sales"`, `groups.value eq "…"`) can only be moved by a
    /// change of a group it names, so a change of another group queues nothing there: adding
    /// 5,000 people to "All staff" costs a target scoped to "Engineering" nothing. `None` (a
    /// delete, which does not read the group first) routes to every target that reads `groups`.
    pub fn membership_routes(&self, tenant_id: &str, group: Option<(Option<&str>, &[&str])>) -> Vec<Enqueue> {
        let mut out = Vec::new();
        for t in self.of(tenant_id) {
            let named = t.scope.as_ref().filter(|f| names_groups_only(f)).map(scope_named_groups);
            let concerned = match (&named, group) {
                (Some(named), Some((id, names))) => named.iter().any(|n| match n {
                    NamedGroup::Id(v) => id.is_some_and(|id| v.to_lowercase() == id),
                    NamedGroup::Display(v) => names.iter().any(|name| v.to_lowercase() == name.to_lowercase()),
                }),
                _ => true,
            };
            if !concerned {
                continue;
            }
            if t.scope_reads_groups() {
                out.push(Enqueue::moved_members(t.name()));
            }
            if t.scope_reads_group_names() {
                out.push(Enqueue::members_if_renamed(t.name()));
            }
        }
        for name in self.held(tenant_id) {
            out.push(Enqueue::moved_members(name));
            out.push(Enqueue::members_if_renamed(name));
        }
        out
    }

    /// The broken tenant file (no target names known) that refuses this tenant's writes.
    pub fn unreadable(&self, tenant_id: &str) -> Option<&Broken> {
        self.broken(tenant_id).iter().find(|b| b.target.is_none() && !b.running_previous)
    }

    /// For a reload, target by target: one that loaded before and does not now keeps running its
    /// previous configuration (marked `running_previous`), so an edit with a mistake stops nothing
    /// that worked, while the rest of the file applies (a rotated `token_file`, a fixed target). A
    /// tenant file that cannot be read at all keeps the tenant's previous targets running and its
    /// held ones held. Returns what to log and which targets now load that did not.
    pub fn keep_running(&mut self, previous: &TargetSet) -> Reloaded {
        let mut out = Reloaded::default();
        for (tenant_id, broken) in &mut self.broken {
            let old = previous.tenants.get(tenant_id).map_or(&[][..], Vec::as_slice);
            let targets = self.tenants.entry(tenant_id.clone()).or_default();
            let mut kept = Vec::new();
            let mut carried = Vec::new();
            for b in broken.iter_mut() {
                match &b.target {
                    Some(name) => {
                        if let Some(t) = old.iter().find(|t| t.name() == name) {
                            targets.push(t.clone());
                            kept.push(name.clone());
                            b.running_previous = true;
                        }
                    }
                    None => {
                        // No name can be read: what ran keeps running, what was held stays held.
                        let missing: Vec<Arc<Target>> =
                            old.iter().filter(|t| !targets.iter().any(|n| n.name() == t.name())).cloned().collect();
                        for t in missing {
                            kept.push(t.name().to_owned());
                            targets.push(t);
                        }
                        carried.extend(
                            previous
                                .broken(tenant_id)
                                .iter()
                                .filter(|p| !p.running_previous)
                                .filter(|p| p.target.as_deref().is_some_and(|n| !old.iter().any(|t| t.name() == n))),
                        );
                        b.running_previous = !kept.is_empty() || !carried.is_empty();
                    }
                }
            }
            broken.extend(carried.into_iter().cloned());
            if !kept.is_empty() {
                let tenant = broken.first().map(|b| b.tenant.clone()).unwrap_or_default();
                out.refused.push((tenant, kept));
            }
        }
        self.tenants.retain(|_, t| !t.is_empty());
        for (tenant_id, targets) in &self.tenants {
            for t in targets {
                if previous.get(tenant_id, t.name()).is_none() {
                    out.woken.push((tenant_id.clone(), t.name().to_owned()));
                }
            }
        }
        out
    }

    /// Builds the targets of `tenants` from `<dir>/<tenant name>.toml`: every target that
    /// builds, and a [`Broken`] for each that does not (a file that cannot be read breaks the
    /// tenant's targets, by name when TOML still gives their names). Every problem, warnings
    /// too, comes back beside the set: `config check` and `serve --strict` refuse errors.
    pub fn load(
        dir: &Path,
        tenants: &[Tenant],
        adapters: &AdapterRegistry,
        schemas: &SchemaRegistry,
    ) -> (TargetSet, Vec<ConfigProblem>) {
        let mut set = TargetSet::default();
        let mut problems = Vec::new();
        for tenant in tenants {
            let path = dir.join(format!("{}.toml", tenant.name));
            let mut broken = Vec::new();
            let file = match load_tenant_file(&path) {
                Ok(f) => f,
                Err(message) => {
                    // A file whose names cannot be read (not TOML, or no `[[targets]]` with a
                    // name: `[[target]]`, say) is unreadable: nothing could be held for it.
                    let names = tenant_file_target_names(&path).filter(|n| !n.is_empty());
                    match names {
                        Some(names) => broken.extend(names.into_iter().map(|n| Broken {
                            tenant: tenant.name.clone(),
                            target: Some(n),
                            problems: vec![message.clone()],
                            running_previous: false,
                        })),
                        None => broken.push(Broken {
                            tenant: tenant.name.clone(),
                            target: None,
                            problems: vec![message.clone()],
                            running_previous: false,
                        }),
                    }
                    problems.push(ConfigProblem { target: None, message, warning: false });
                    set.broken.insert(tenant.id.clone(), broken);
                    continue;
                }
            };
            let file_problems = file.check();
            let mut built = Vec::new();
            for config in file.targets {
                let duplicate = file_problems.iter().filter(|p| p.target.as_deref() == Some(&config.name));
                let duplicate: Vec<String> = duplicate.map(|p| p.message.clone()).collect();
                if !duplicate.is_empty() {
                    if !broken.iter().any(|b: &Broken| b.target.as_deref() == Some(&config.name)) {
                        broken.push(Broken {
                            tenant: tenant.name.clone(),
                            target: Some(config.name.clone()),
                            problems: duplicate,
                            running_previous: false,
                        });
                    }
                    continue;
                }
                match build(&config, adapters, schemas) {
                    Ok(target) => {
                        if config.tls_skip_verify {
                            problems.push(ConfigProblem {
                                target: Some(format!("{}/{}", tenant.name, config.name)),
                                message: "tls_skip_verify = true: the vendor's TLS certificate is not verified; \
                                          anyone on the path can read the token and the users"
                                    .into(),
                                warning: true,
                            });
                        }
                        if config.options.get("groups") == Some(&Value::Bool(true)) && !target.handles(Kind::Group) {
                            problems.push(ConfigProblem {
                                target: Some(config.name.clone()),
                                message: format!(
                                    "groups = true, but the {} adapter does not deliver groups; only users are",
                                    config.kind
                                ),
                                warning: true,
                            });
                        }
                        built.push(Arc::new(target));
                    }
                    Err(messages) => {
                        problems.extend(messages.iter().map(|message| ConfigProblem {
                            target: Some(format!("{}/{}", tenant.name, config.name)),
                            message: message.clone(),
                            warning: false,
                        }));
                        broken.push(Broken {
                            tenant: tenant.name.clone(),
                            target: Some(config.name.clone()),
                            problems: messages,
                            running_previous: false,
                        });
                    }
                }
            }
            problems.extend(file_problems);
            if !built.is_empty() {
                set.tenants.insert(tenant.id.clone(), built);
            }
            if !broken.is_empty() {
                set.broken.insert(tenant.id.clone(), broken);
            }
        }
        (set, problems)
    }
}

/// One target of `tenant`, built from its file alone: the command that acts on it reads its
/// secret and no other target's (an admin's shell need not hold every vendor token). `Err` says
/// what is wrong with it, each problem on its own line, or that the file has no such target.
pub fn load_one(
    dir: &Path,
    tenant: &Tenant,
    name: &str,
    adapters: &AdapterRegistry,
    schemas: &SchemaRegistry,
) -> Result<Target, String> {
    let path = dir.join(format!("{}.toml", tenant.name));
    let file = load_tenant_file(&path)?;
    let mut named = file.targets.iter().filter(|t| t.name == name);
    let (Some(config), None) = (named.next(), named.next()) else {
        return Err(match file.targets.iter().any(|t| t.name == name) {
            true => format!("{} has more than one target named {name}", path.display()),
            false => format!("{} has no target named {name}", path.display()),
        });
    };
    build(config, adapters, schemas).map_err(|problems| problems.join("\n"))
}

/// What the tenants directory says beyond each tenant's targets ([`survey`]).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Survey {
    /// A file that names no tenant (its targets are not used), a missing directory.
    pub warnings: Vec<ConfigProblem>,
    /// A tenant without a file: it has no targets, which may be meant (one that only stores).
    pub notes: Vec<String>,
}

/// Compares the `.toml` files of `dir` with `tenants`. Tenant names are case-sensitive and so is
/// the file's, so `Contoso.toml` beside a tenant `contoso` is a file the gateway does not read:
/// the warning names the tenant and the rename, since `tenant add Contoso` would make a second
/// tenant. `config check` prints both lists; `serve` logs them at each load.
pub fn survey(dir: &Path, tenants: &[Tenant]) -> Survey {
    let mut out = Survey::default();
    let Ok(entries) = std::fs::read_dir(dir) else {
        if !tenants.is_empty() {
            out.warnings.push(ConfigProblem {
                target: None,
                message: format!("tenants_dir {} does not exist: no tenant has targets", dir.display()),
                warning: true,
            });
        }
        return out;
    };
    let mut stems: Vec<String> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("toml"))
        .filter_map(|p| p.file_stem().and_then(|s| s.to_str()).map(str::to_owned))
        .collect();
    stems.sort();
    for stem in &stems {
        if tenants.iter().any(|t| t.name == *stem) {
            continue;
        }
        let path = dir.join(format!("{stem}.toml"));
        let message = match tenants.iter().find(|t| t.name.to_lowercase() == stem.to_lowercase()) {
            Some(t) => format!(
                "{} names no tenant; its targets are not used: tenant names are case-sensitive and the tenant is \
                 \"{}\", so rename the file to {}.toml",
                path.display(),
                t.name,
                t.name
            ),
            None => format!("{} names no tenant; its targets are not used (scimgw tenant add {stem})", path.display()),
        };
        out.warnings.push(ConfigProblem { target: None, message, warning: true });
    }
    for t in tenants {
        // A file in another case is the warning's already.
        if stems.iter().any(|s| s.to_lowercase() == t.name.to_lowercase()) {
            continue;
        }
        out.notes.push(format!(
            "tenant \"{}\" has no targets: {} does not exist",
            t.name,
            dir.join(format!("{}.toml", t.name)).display()
        ));
    }
    out
}

/// One target from its configuration: every problem with it, or the target.
fn build(config: &TargetConfig, adapters: &AdapterRegistry, schemas: &SchemaRegistry) -> Result<Target, Vec<String>> {
    let mut problems = config.check();
    let parts = parts(config, adapters, schemas).map_err(|more| problems.extend(more)).ok();
    let secret = config.resolve_secret();
    let (Some((constructor, scope)), Ok(secret), true) = (parts, secret, problems.is_empty()) else {
        return Err(problems);
    };
    assemble(config, constructor, scope, secret)
}

/// The kind's constructor and the parsed scope, or what is wrong with them.
fn parts(
    config: &TargetConfig,
    adapters: &AdapterRegistry,
    schemas: &SchemaRegistry,
) -> Result<(Constructor, Option<Filter>), Vec<String>> {
    let mut problems = Vec::new();
    let constructor = adapters.get(&config.kind);
    if constructor.is_none() {
        problems.push(format!("unknown kind \"{}\" (known: {})", config.kind, adapters.kinds().join(", ")));
    }
    let scope = config.scope_filter(schemas).map_err(|e| problems.push(e)).ok().flatten();
    match constructor {
        Some(constructor) if problems.is_empty() => Ok((constructor, scope)),
        _ => Err(problems),
    }
}

/// The target, once its parts are known good.
fn assemble(
    config: &TargetConfig,
    constructor: Constructor,
    scope: Option<Filter>,
    secret: Secret,
) -> Result<Target, Vec<String>> {
    let adapter = constructor(config, secret).map_err(|e| vec![e])?;
    let limiter = config.rate_per_sec.and_then(NonZeroU32::new).map(|rate| {
        let burst = config.burst.and_then(NonZeroU32::new).unwrap_or(rate);
        RateLimiter::direct(Quota::per_second(rate).allow_burst(burst))
    });
    let permits = usize::try_from(config.max_in_flight).unwrap_or(1).max(1);
    Ok(Target {
        config: config.clone(),
        adapter,
        scope,
        in_flight: Semaphore::new(permits),
        limiter,
        failures_in_a_row: Default::default(),
        shared_tokens: tokio::sync::Mutex::new(0),
    })
}

/// The current target set, swapped whole by a reload.
#[derive(Debug, Default)]
pub struct Targets {
    current: RwLock<Arc<TargetSet>>,
}

impl Targets {
    /// Holds `set`.
    pub fn new(set: TargetSet) -> Self {
        Targets { current: RwLock::new(Arc::new(set)) }
    }

    /// The set as it is now.
    pub fn snapshot(&self) -> Arc<TargetSet> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the set (rows of removed targets dead-letter with a reason when they come up).
    pub fn replace(&self, set: TargetSet) {
        match self.current.write() {
            Ok(mut g) => *g = Arc::new(set),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(set),
        }
    }
}

/// The deliveries a change of `kind` asks for, after each target's [`decide`]: `Err` with a
/// SCIM 400 `invalidValue` naming the target, the attribute and the rule when a target with
/// `on_invalid = "reject"` refuses it. `resource` is the resulting resource's SCIM JSON.
pub fn plan_deliveries(
    targets: &[Arc<Target>],
    kind: Kind,
    resource: &Map<String, Value>,
    schema: &ResourceSchema<'_>,
) -> Result<Vec<Enqueue>, ScimError> {
    let mut out = Vec::new();
    let mut refusals = Vec::new();
    for t in targets.iter().filter(|t| t.handles(kind)) {
        if kind == Kind::User {
            // The link is the dispatcher's to read: every decision but a broken rule queues a
            // delivery, which then decides again on the user's state at that time. Out of scope
            // is one too, so that a user who leaves the scope is deprovisioned (the dispatcher
            // does nothing for a user the target never had).
            match decide(t, resource, schema, AtTarget::default()) {
                Decision::Invalid { violations, on_invalid: OnInvalid::Reject } => {
                    refusals.push(format!("target \"{}\" refuses this user: {}", t.name(), describe(&violations)));
                    continue;
                }
                Decision::Invalid { violations, on_invalid: OnInvalid::Skip } => {
                    out.push(Enqueue::skip(t.name(), describe(&violations)));
                    continue;
                }
                // A name the target derives may be another user's there already: the store
                // checks it in the change's own write (409 `uniqueness`, or a skip).
                Decision::Send(payload) => {
                    let delivery = match derived_account_name(t, &payload) {
                        Some(name) => {
                            Enqueue::deliver(t.name()).with_account_key(name, t.config.on_invalid == OnInvalid::Skip)
                        }
                        None => Enqueue::deliver(t.name()),
                    };
                    out.push(delivery);
                    continue;
                }
                Decision::OutOfScope | Decision::NotCreatedWhileInactive => {}
            }
        }
        out.push(Enqueue::deliver(t.name()));
    }
    if !refusals.is_empty() {
        // Every refusing target at once, so the admin fixes the mapping in one go.
        return Err(ScimError::invalid_value(refusals.join(". ")));
    }
    Ok(out)
}

/// The user's name at `target` when the target derives it (see `Adapter::derives_user_name`):
/// the payload's `userName`, which another user's account there may already have. `None` for a
/// target that takes the gateway's own (unique) `userName`.
pub fn derived_account_name<'p>(target: &Target, payload: &'p Value) -> Option<&'p str> {
    if !target.adapter.derives_user_name() {
        return None;
    }
    payload.get("userName").and_then(Value::as_str)
}

/// `attribute: rule; attribute: rule`.
pub fn describe(violations: &[Violation]) -> String {
    violations.iter().map(Violation::to_string).collect::<Vec<_>>().join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_sample_loads_and_builds_with_its_adapter() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/tenants");
        let registry = adapter_registry();
        let schemas = schema_registry();
        let mut kinds = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("sample") {
                continue;
            }
            let file = load_tenant_file(&path).unwrap();
            for t in &file.targets {
                let construct = registry.get(&t.kind).unwrap();
                construct(t, scimgw_adapter::Secret::new("x")).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                t.scope_filter(&schemas).unwrap();
                kinds.push(t.kind.clone());
            }
        }
        kinds.sort();
        assert_eq!(kinds, ["jostle", "joyn-fsm", "jumpcloud", "scim"]);
    }

    fn tenant(name: &str) -> Tenant {
        Tenant { id: format!("id-{name}"), name: name.into(), created: chrono::Utc::now() }
    }

    #[test]
    fn a_file_in_another_case_names_the_tenant_and_a_tenant_without_a_file_is_a_note() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["Contoso.toml", "acme.toml", "stray.toml", "notes.txt"] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        let found = survey(dir.path(), &[tenant("contoso"), tenant("acme"), tenant("fabrikam")]);
        let warnings: Vec<&str> = found.warnings.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("Contoso.toml names no tenant"), "{warnings:?}");
        assert!(warnings[0].contains("the tenant is \"contoso\", so rename the file to contoso.toml"), "{warnings:?}");
        assert!(!warnings[0].contains("tenant add"), "{warnings:?}");
        assert!(warnings[1].contains("stray.toml names no tenant") && warnings[1].contains("scimgw tenant add stray"));
        assert!(found.warnings.iter().all(|p| p.warning));
        assert_eq!(found.notes.len(), 1, "{:?}", found.notes);
        assert!(found.notes[0].starts_with("tenant \"fabrikam\" has no targets"), "{:?}", found.notes);

        let missing = survey(&dir.path().join("nope"), &[tenant("acme")]);
        assert!(missing.warnings[0].message.contains("does not exist") && missing.notes.is_empty());
    }

    fn target(name: &str, extra: &str) -> String {
        format!("[[targets]]\nname = \"{name}\"\nkind = \"scim\"\nbase_url = \"http://127.0.0.1:9/scim/v2\"\n{extra}\n")
    }

    const SECRET_FILE_UNSET: &str = "token_env = \"SCIMGW_UNIT_TEST_TOKEN_THAT_IS_NEVER_SET\"";

    #[test]
    fn a_group_change_is_routed_only_where_it_can_move_someone() {
        let dir = tempfile::tempdir().unwrap();
        let acme = tenant("acme");
        let token = dir.path().join("t");
        std::fs::write(&token, "x").unwrap();
        let ok = format!("token_file = \"{}\"", token.display());
        let scoped = |name: &str, scope: &str| target(name, &format!("{ok}\nscope = '{scope}'"));
        std::fs::write(
            dir.path().join("acme.toml"),
            [
                scoped("eng", r#"groups.display eq "Engineering" and active eq true"#),
                scoped("by-id", r#"groups[value eq "0A1B"]"#),
                scoped("broad", r#"groups.display sw "Eng""#),
                scoped("not-eng", r#"not (groups.display eq "Engineering")"#),
                scoped("title", r#"title eq "CEO""#),
                target("everyone", &ok),
            ]
            .concat(),
        )
        .unwrap();
        let (set, problems) =
            TargetSet::load(dir.path(), std::slice::from_ref(&acme), &adapter_registry(), &schema_registry());
        assert!(problems.is_empty(), "{problems:?}");
        let routed = |group: Option<(Option<&str>, &[&str])>| {
            let mut names: Vec<String> = set
                .membership_routes(&acme.id, group)
                .into_iter()
                .map(|e| format!("{}:{:?}", e.target, e.of))
                .collect();
            names.sort();
            names
        };
        assert_eq!(
            routed(Some((Some("g9"), &["All staff"]))),
            ["broad:MembersIfRenamed", "broad:MovedMembers"],
            "a group no named-only scope names moves no one there"
        );
        assert_eq!(
            routed(Some((Some("g9"), &["ENGINEERING"]))),
            [
                "broad:MembersIfRenamed",
                "broad:MovedMembers",
                "eng:MembersIfRenamed",
                "eng:MovedMembers",
                "not-eng:MembersIfRenamed",
                "not-eng:MovedMembers"
            ],
        );
        assert_eq!(routed(Some((Some("0a1b"), &["x"])))[..2], ["broad:MembersIfRenamed", "broad:MovedMembers"]);
        assert!(routed(Some((Some("0a1b"), &["x"]))).contains(&"by-id:MovedMembers".to_owned()));
        assert!(!routed(Some((Some("0a1b"), &["x"]))).contains(&"by-id:MembersIfRenamed".to_owned()));
        // A rename to or from a named group concerns the scope; a delete (unknown) every one.
        assert!(routed(Some((Some("g9"), &["Eng 2", "Engineering"]))).contains(&"eng:MembersIfRenamed".to_owned()));
        assert_eq!(routed(None).len(), 7);
    }

    #[test]
    fn a_broken_target_is_held_and_the_others_load() {
        let dir = tempfile::tempdir().unwrap();
        let (acme, beta, gamma) = (tenant("acme"), tenant("beta"), tenant("gamma"));
        let token = dir.path().join("t");
        std::fs::write(&token, "x").unwrap();
        let ok = format!("token_file = \"{}\"", token.display());
        std::fs::write(dir.path().join("acme.toml"), target("crm", &ok)).unwrap();
        let beta_file = format!("{}{}", target("crm", &ok), target("hr", SECRET_FILE_UNSET));
        std::fs::write(dir.path().join("beta.toml"), beta_file).unwrap();
        // Not even TOML: no target name is known.
        std::fs::write(dir.path().join("gamma.toml"), "[[targets]\nname = ").unwrap();
        let tenants = [acme.clone(), beta.clone(), gamma.clone()];
        let (set, problems) = TargetSet::load(dir.path(), &tenants, &adapter_registry(), &schema_registry());
        assert_eq!(problems.iter().filter(|p| !p.warning).count(), 2, "{problems:?}");
        assert!(set.get(&acme.id, "crm").is_some() && set.get(&beta.id, "crm").is_some());
        assert!(set.get(&beta.id, "hr").is_none());
        assert!(set.is_held(&beta.id, "hr") && !set.is_held(&beta.id, "crm") && !set.is_held(&acme.id, "crm"));
        assert_eq!(set.held(&beta.id), ["hr"]);
        let why = set.held_because(&beta.id, "hr").unwrap().describe();
        assert!(why.contains("target \"hr\" of tenant \"beta\" is not loaded"), "{why}");
        assert!(why.contains("SCIMGW_UNIT_TEST_TOKEN_THAT_IS_NEVER_SET (token_env) is not set"), "{why}");
        assert!(why.contains("wait in the outbox"), "{why}");
        assert!(set.unreadable(&beta.id).is_none());
        let unreadable = set.unreadable(&gamma.id).unwrap();
        assert!(unreadable.describe().contains("SCIM writes are refused"), "{}", unreadable.describe());
        assert!(set.is_held(&gamma.id, "anything"));

        // Names are kept when the file is TOML with a mistake the strict reading refuses.
        std::fs::write(dir.path().join("gamma.toml"), target("crm", &format!("{ok}\ndeprovison = \"delete\"")))
            .unwrap();
        let (set, _) = TargetSet::load(dir.path(), &tenants, &adapter_registry(), &schema_registry());
        assert!(set.unreadable(&gamma.id).is_none());
        assert_eq!(set.held(&gamma.id), ["crm"]);
    }

    #[test]
    fn a_reload_keeps_what_it_cannot_load_running_and_applies_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let acme = tenant("acme");
        let token = dir.path().join("t");
        std::fs::write(&token, "x").unwrap();
        let ok = format!("token_file = \"{}\"", token.display());
        let file = dir.path().join("acme.toml");
        let load =
            || TargetSet::load(dir.path(), std::slice::from_ref(&acme), &adapter_registry(), &schema_registry()).0;

        std::fs::write(&file, format!("{}{}", target("crm", &ok), target("hr", SECRET_FILE_UNSET))).unwrap();
        let first = load();
        assert_eq!(first.held(&acme.id), ["hr"]);

        // crm given a bad scope, hr fixed, erp added: crm keeps running as it was; hr and erp load.
        let bad_scope = format!("{ok}\nscope = \"active eq\"");
        std::fs::write(&file, format!("{}{}{}", target("crm", &bad_scope), target("hr", &ok), target("erp", &ok)))
            .unwrap();
        let mut second = load();
        let mut reloaded = second.keep_running(&first);
        reloaded.woken.sort();
        assert_eq!(reloaded.refused, [("acme".to_owned(), vec!["crm".to_owned()])]);
        assert_eq!(reloaded.woken, [(acme.id.clone(), "erp".to_owned()), (acme.id.clone(), "hr".to_owned())]);
        let previous = second.get(&acme.id, "crm").unwrap();
        assert!(Arc::ptr_eq(&previous, first.get(&acme.id, "crm").as_ref().unwrap()), "crm runs its previous build");
        assert!(second.held(&acme.id).is_empty());
        assert!(second.broken(&acme.id).iter().any(|b| b.target.as_deref() == Some("crm") && b.running_previous));

        // Unreadable on reload: every previous target keeps running, nothing refuses writes.
        std::fs::write(&file, "[[targets]").unwrap();
        let mut third = load();
        assert!(third.unreadable(&acme.id).is_some());
        let reloaded = third.keep_running(&second);
        assert_eq!(reloaded.refused.len(), 1);
        assert!(third.unreadable(&acme.id).is_none() && third.held(&acme.id).is_empty());
        assert_eq!(third.of(&acme.id).len(), 3);

        // Unreadable while a target was held: it stays held (its changes still queue), the
        // loaded one keeps running, and writes are not refused.
        let mut fourth = load();
        fourth.keep_running(&first);
        assert_eq!(fourth.held(&acme.id), ["hr"]);
        assert!(fourth.get(&acme.id, "crm").is_some() && fourth.unreadable(&acme.id).is_none());

        // TOML without a readable name (`[[target]]`) is unreadable, not a tenant without targets.
        std::fs::write(&file, "[[target]]\nname = \"crm\"\n").unwrap();
        let fifth = load();
        assert!(fifth.unreadable(&acme.id).is_some() && fifth.of(&acme.id).is_empty());
    }
}
