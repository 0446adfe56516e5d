//! `scimgw users list | show`.

use anyhow::{Context, bail};
use clap::Subcommand;
use scimgw_gateway::Config;
use scimgw_scim::filter::parse_filter;
use scimgw_store::Kind;

use super::{open_store, print_table};

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// List a tenant's users.
    List {
        /// The tenant's name.
        #[arg(long)]
        tenant: String,
        /// A SCIM filter, e.g. 'active eq false'.
        #[arg(long)]
        filter: Option<String>,
        /// Print the SCIM resources as JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Show one user as the gateway stores it.
    Show {
        /// The user's id.
        id: String,
        /// The tenant's name (default: search every tenant).
        #[arg(long)]
        tenant: Option<String>,
    },
}

pub fn run(config: Config, cmd: UsersCommand) -> anyhow::Result<()> {
    let store = open_store(&config)?;
    let registry = scimgw_delivery::schema_registry();
    let Some(schema) = registry.resource("User") else { bail!("the User resource type is missing") };
    match cmd {
        UsersCommand::List { tenant, filter, json } => {
            let Some(t) = store.tenant_by_name(&tenant).context("reading the tenant")? else {
                bail!("no tenant named {tenant}");
            };
            let filter = match filter {
                Some(f) => {
                    let parsed = parse_filter(&f).map_err(|e| anyhow::anyhow!("filter: {}", e.message))?;
                    parsed.validate(&schema).map_err(|e| anyhow::anyhow!("filter: {}", e.detail))?;
                    Some(parsed)
                }
                None => None,
            };
            let mut rows = Vec::new();
            store.for_each_page(
                &t.id,
                Kind::User,
                &schema,
                filter.as_ref(),
                true,
                500,
                |users| -> anyhow::Result<()> {
                    for user in users {
                        if json {
                            println!("{}", serde_json::to_string(&user.to_scim(None))?);
                        } else {
                            let s = |k: &str| user.body.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned();
                            let active = match user.body.get("active").and_then(|v| v.as_bool()) {
                                Some(true) => "yes",
                                Some(false) => "no",
                                None => "-",
                            };
                            rows.push(vec![
                                user.id.clone(),
                                s("userName"),
                                active.to_owned(),
                                s("externalId"),
                                user.last_modified.format("%Y-%m-%d %H:%M:%S").to_string(),
                            ]);
                        }
                    }
                    Ok(())
                },
            )?;
            if !json {
                print_table(&["ID", "USERNAME", "ACTIVE", "EXTERNAL ID", "LAST MODIFIED"], &rows);
            }
        }
        UsersCommand::Show { id, tenant } => {
            let tenants = store.tenants().context("reading tenants")?;
            let candidates: Vec<_> = match &tenant {
                Some(name) => {
                    let found: Vec<_> = tenants.into_iter().filter(|t| &t.name == name).collect();
                    if found.is_empty() {
                        bail!("no tenant named {name}");
                    }
                    found
                }
                None => tenants,
            };
            for t in candidates {
                if let Some(user) = store.get(&t.id, Kind::User, &id, true).context("reading the user")? {
                    println!("tenant: {}", t.name);
                    println!("{}", serde_json::to_string_pretty(&user.to_scim(None))?);
                    print_targets(&store, &t.id, &id)?;
                    return Ok(());
                }
            }
            bail!("no user with id {id}");
        }
    }
    Ok(())
}

/// What the account at the target is: the link's state (`active`, `deactivated`, `deleted`),
/// except that an account the target was last sent `active: false` (a user disabled by the IdP,
/// still in scope) is `disabled`, not `active`.
fn account_state(link: &scimgw_store::Link) -> String {
    let disabled = link.state == "active"
        && link
            .delivered_payload
            .as_deref()
            .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
            .is_some_and(|p| p.get("active") == Some(&serde_json::Value::Bool(false)));
    if disabled { "disabled".into() } else { link.state.clone() }
}

/// Each target's state of the user: its link (remote id, last delivered version) and the
/// newest delivery's state and error.
fn print_targets(store: &scimgw_store::Store, tenant_id: &str, id: &str) -> anyhow::Result<()> {
    let links = store.links_of(tenant_id, Kind::User, id).context("reading links")?;
    let deliveries = store
        .deliveries(&scimgw_store::DeliveryFilter {
            tenant_id: Some(tenant_id),
            resource_id: Some(id),
            limit: 1000,
            ..Default::default()
        })
        .context("reading deliveries")?;
    let mut names: Vec<String> = links.iter().map(|l| l.target.clone()).collect();
    names.extend(deliveries.iter().map(|d| d.target.clone()));
    names.sort();
    names.dedup();
    println!();
    if names.is_empty() {
        println!("targets: none has been asked to deliver this user");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = names
        .iter()
        .map(|name| {
            let link = links.iter().find(|l| &l.target == name);
            // Newest first: the first one of this target is its latest.
            let last = deliveries.iter().find(|d| &d.target == name);
            vec![
                name.clone(),
                link.and_then(|l| l.remote_id.clone()).unwrap_or_else(|| "-".into()),
                link.map_or_else(|| "-".into(), account_state),
                link.and_then(|l| l.delivered_version).map_or_else(|| "-".into(), |v| v.to_string()),
                last.map_or_else(|| "-".into(), |d| format!("{} ({})", d.state, d.id)),
                last.and_then(|d| d.last_error.clone()).unwrap_or_default(),
            ]
        })
        .collect();
    print_table(&["TARGET", "REMOTE ID", "STATE", "DELIVERED VERSION", "LAST DELIVERY", "LAST ERROR"], &rows);
    let paused = store.paused_targets().context("reading the paused targets")?;
    for p in paused.iter().filter(|p| p.tenant_id == tenant_id && names.contains(&p.target)) {
        let since = chrono::DateTime::from_timestamp_micros(p.since_us)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_default();
        println!(
            "{} is paused ({}) since {since}: changes wait, spending no attempt, until it answers again ({})",
            p.target, p.reason, p.detail
        );
    }
    Ok(())
}
