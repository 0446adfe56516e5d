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
    generic::ScimAdapter, load_tenant_file,
};
use scimgw_scim::ScimError;
use scimgw_scim::filter::Filter;
use scimgw_scim::schema::{Registry as SchemaRegistry, ResourceSchema};
use scimgw_store::{Enqueue, Kind, Tenant};

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

    /// Waits until the rate limit allows one more request to the vendor.
    pub async fn pace(&self) {
        if let Some(l) = &self.limiter {
            l.until_ready().await;
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
}

/// The targets of every tenant, by tenant id.
#[derive(Debug, Default)]
pub struct TargetSet {
    tenants: HashMap<String, Vec<Arc<Target>>>,
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

    /// How many targets in all.
    pub fn len(&self) -> usize {
        self.tenants.values().map(Vec::len).sum()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Builds the targets of `tenants` from `<dir>/<tenant name>.toml`. Any error fails the
    /// whole load (so a reload keeps the old set); warnings come back with the set.
    pub fn load(
        dir: &Path,
        tenants: &[Tenant],
        adapters: &AdapterRegistry,
        schemas: &SchemaRegistry,
    ) -> Result<(TargetSet, Vec<ConfigProblem>), Vec<ConfigProblem>> {
        let mut set = TargetSet::default();
        let mut problems = Vec::new();
        for tenant in tenants {
            let path = dir.join(format!("{}.toml", tenant.name));
            let file = match load_tenant_file(&path) {
                Ok(f) => f,
                Err(message) => {
                    problems.push(ConfigProblem { target: None, message, warning: false });
                    continue;
                }
            };
            problems.extend(file.check());
            let mut built = Vec::new();
            for config in file.targets {
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
                    Err(messages) => problems.extend(messages.into_iter().map(|message| ConfigProblem {
                        target: Some(format!("{}/{}", tenant.name, config.name)),
                        message,
                        warning: false,
                    })),
                }
            }
            if !built.is_empty() {
                set.tenants.insert(tenant.id.clone(), built);
            }
        }
        if problems.iter().any(|p| !p.warning) { Err(problems) } else { Ok((set, problems)) }
    }
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
    Ok(Target { config: config.clone(), adapter, scope, in_flight: Semaphore::new(permits), limiter })
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
}
