//! `scimgw config check`: everything `serve` would refuse or warn about, one line per problem,
//! never a secret; with `--probe`, `target test` on every target of every tenant.

use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Subcommand;
use scimgw_adapter::{ConfigProblem, load_tenant_file};
use scimgw_delivery::{TargetSet, adapter_registry};
use scimgw_gateway::Config;

use super::open_store;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration and every tenant's targets (exit 1 on any error).
    Check {
        /// Skip the reachability probe of each target's base_url.
        #[arg(long, conflicts_with = "probe")]
        offline: bool,
        /// Instead of the reachability probe, run `target test` on every target of every tenant
        /// (DNS, connect, TLS, an authenticated query, URL flags); a failed step is an error.
        #[arg(long)]
        probe: bool,
    },
}

pub fn run(config: Config, cmd: ConfigCommand) -> anyhow::Result<()> {
    let ConfigCommand::Check { offline, probe } = cmd;
    // The gateway's own keys were validated while loading; the store must open.
    let store = open_store(&config)?;
    let tenants = store.tenants().context("reading tenants")?;
    let dir = Path::new(&config.tenants_dir);
    let schemas = scimgw_delivery::schema_registry();
    let mut problems: Vec<ConfigProblem> = Vec::new();
    let (set, found) = TargetSet::load(dir, &tenants, &adapter_registry(), &schemas);
    let count = set.len();
    problems.extend(found);
    let survey = scimgw_delivery::targets::survey(dir, &tenants);
    problems.extend(survey.warnings);
    problems.extend(missing_scope_groups(&store, &set, &tenants)?);
    let mut probed = Vec::new();
    if probe {
        for t in &tenants {
            // A file that does not load is already reported above.
            let Ok(file) = load_tenant_file(&dir.join(format!("{}.toml", t.name))) else { continue };
            probed.extend(file.targets.into_iter().map(|target| (t.name.clone(), target)));
        }
    } else if !offline {
        for t in &tenants {
            let Ok(file) = load_tenant_file(&dir.join(format!("{}.toml", t.name))) else { continue };
            for target in file.targets {
                if let Some(message) = unreachable(&target.base_url) {
                    problems.push(ConfigProblem {
                        target: Some(format!("{}/{}", t.name, target.name)),
                        message,
                        warning: true,
                    });
                }
            }
        }
    }
    let errors = problems.iter().filter(|p| !p.warning).count();
    for p in &problems {
        println!("{p}");
    }
    for note in &survey.notes {
        println!("note: {note}");
    }
    let tested = super::target::test_targets(probed)?;
    super::target::print_text(&tested);
    let failed = tested.iter().filter(|t| !t.report.ok()).count();
    match (errors, failed) {
        (0, 0) => {}
        (errors, 0) => bail!("{errors} error(s) in the configuration"),
        (0, failed) => bail!("{failed} of {} target(s) failed the connection test", tested.len()),
        (errors, failed) => bail!(
            "{errors} error(s) in the configuration; {failed} of {} target(s) failed the connection test",
            tested.len()
        ),
    }
    println!("ok: {count} target(s) for {} tenant(s), {} warning(s)", tenants.len(), problems.len());
    Ok(())
}

/// A warning for each group a target's scope names (`groups.display eq "Sales"`,
/// `groups.value eq "<id>"`) that its tenant does not have: until the IdP provisions it, no user
/// is in that part of the scope. Often a typo, or a group not assigned to the gateway's app.
fn missing_scope_groups(
    store: &scimgw_store::Store,
    set: &TargetSet,
    tenants: &[scimgw_store::Tenant],
) -> anyhow::Result<Vec<ConfigProblem>> {
    use scimgw_delivery::targets::{NamedGroup, scope_named_groups};
    use scimgw_store::{Kind, Query};
    let schemas = scimgw_delivery::schema_registry();
    let Some(schema) = schemas.resource("Group") else { bail!("the Group resource type is missing") };
    let mut out = Vec::new();
    for t in tenants {
        for target in set.of(&t.id) {
            let Some(scope) = &target.scope else { continue };
            for group in scope_named_groups(scope) {
                let (found, what) = match &group {
                    // Compared ignoring case, as the scope compares it (ids are stored lowercase).
                    NamedGroup::Id(id) => (
                        store.get(&t.id, Kind::Group, &id.to_lowercase(), false).context("reading groups")?.is_some(),
                        "no group with id",
                    ),
                    NamedGroup::Display(name) => {
                        let filter = scimgw_scim::filter::Filter::Compare {
                            path: scimgw_scim::filter::AttrPath::new("displayName"),
                            op: scimgw_scim::filter::CompareOp::Eq,
                            value: scimgw_scim::filter::CompValue::Str(name.clone()),
                        };
                        let q = Query::count_only(Some(&filter), &schema);
                        (store.query(&t.id, Kind::Group, &q).context("reading groups")?.total > 0, "no group named")
                    }
                };
                if !found {
                    let (NamedGroup::Id(v) | NamedGroup::Display(v)) = &group;
                    out.push(ConfigProblem {
                        target: Some(format!("{}/{}", t.name, target.name())),
                        message: format!(
                            "the scope names a group the tenant does not have ({what} \"{v}\"; names compare \
                             ignoring case): no user is in that part of the scope until the IdP provisions it. \
                             Check the spelling, and that the group is assigned to the gateway's app"
                        ),
                        warning: true,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// `Some(reason)` when nothing answers a TCP connect to the URL's host and port within 3 s.
fn unreachable(base_url: &str) -> Option<String> {
    let url = reqwest::Url::parse(base_url).ok()?;
    let host = url.host_str()?;
    let port = url.port_or_known_default()?;
    let addrs = match (host, port).to_socket_addrs() {
        Ok(a) => a.collect::<Vec<_>>(),
        Err(e) => return Some(format!("base_url host {host} does not resolve: {e}")),
    };
    for addr in &addrs {
        if TcpStream::connect_timeout(addr, Duration::from_secs(3)).is_ok() {
            return None;
        }
    }
    Some(format!("base_url {host}:{port} does not accept connections now (deliveries will be retried)"))
}
