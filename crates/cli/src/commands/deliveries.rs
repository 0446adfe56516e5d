//! `scimgw deliveries list | show | retry`: the outbox, for operators.

use anyhow::{Context, bail};
use clap::Subcommand;
use scimgw_gateway::Config;
use scimgw_store::{DeliveryFilter, DeliveryState, OperatorAction};

use super::{open_store, print_table, record, short_time};

#[derive(Debug, Subcommand)]
pub enum DeliveriesCommand {
    /// List deliveries, newest first.
    List {
        /// Only this tenant's (by name).
        #[arg(long)]
        tenant: Option<String>,
        /// Only this target's (of --tenant: target names are unique within a tenant only).
        #[arg(long, requires = "tenant")]
        target: Option<String>,
        /// Only in this state.
        #[arg(long, value_parser = ["pending", "failed", "dead", "done", "skipped", "superseded"])]
        state: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Show one delivery with its attempt history and last error.
    Show {
        /// The delivery's id.
        id: String,
    },
    /// Re-queue a dead (or failed, or skipped) delivery, or every dead one of a tenant's target.
    Retry {
        /// The delivery's id.
        #[arg(required_unless_present = "dead", conflicts_with = "dead")]
        id: Option<String>,
        /// Re-queue every dead delivery of --tenant's --target.
        #[arg(long, requires_all = ["tenant", "target"])]
        dead: bool,
        /// The tenant (by name) whose target is meant: target names are unique within a tenant only.
        #[arg(long, requires = "dead")]
        tenant: Option<String>,
        /// The target whose dead deliveries to re-queue.
        #[arg(long, requires_all = ["dead", "tenant"])]
        target: Option<String>,
    },
}

pub fn run(config: Config, cmd: DeliveriesCommand) -> anyhow::Result<()> {
    let store = open_store(&config)?;
    let tenants = store.tenants().context("reading tenants")?;
    let tenant_name = |id: &str| tenants.iter().find(|t| t.id == id).map_or_else(|| id.to_owned(), |t| t.name.clone());
    match cmd {
        DeliveriesCommand::List { tenant, target, state, limit } => {
            let tenant_id = match &tenant {
                Some(name) => match tenants.iter().find(|t| &t.name == name) {
                    Some(t) => Some(t.id.clone()),
                    None => bail!("no tenant named {name}"),
                },
                None => None,
            };
            let filter = DeliveryFilter {
                tenant_id: tenant_id.as_deref(),
                target: target.as_deref(),
                state: state.as_deref().and_then(DeliveryState::parse),
                resource_id: None,
                limit,
            };
            let rows: Vec<Vec<String>> = store
                .deliveries(&filter)
                .context("reading deliveries")?
                .into_iter()
                .map(|d| {
                    let what = format!("{} {}", resource_type(&d), d.resource_id);
                    vec![
                        d.id,
                        tenant_name(&d.tenant_id),
                        d.target,
                        what,
                        d.state.to_string(),
                        d.attempts.to_string(),
                        short_time(&d.updated),
                        d.last_error.map(|e| clip(&e, 80)).unwrap_or_default(),
                    ]
                })
                .collect();
            print_table(&["ID", "TENANT", "TARGET", "RESOURCE", "STATE", "ATTEMPTS", "UPDATED", "LAST ERROR"], &rows);
        }
        DeliveriesCommand::Show { id } => {
            let Some((d, attempts)) = store.delivery(&id).context("reading the delivery")? else {
                bail!("no delivery with id {id}");
            };
            println!("delivery:   {}", d.id);
            println!("tenant:     {}", tenant_name(&d.tenant_id));
            println!("target:     {}", d.target);
            println!("resource:   {} {} (version {})", resource_type(&d), d.resource_id, d.version);
            println!("state:      {}", d.state);
            println!("attempts:   {}", d.attempts);
            if matches!(d.state, DeliveryState::Pending | DeliveryState::Failed) {
                println!("next due:   {}", d.due.format("%Y-%m-%d %H:%M:%S UTC"));
            }
            println!("created:    {}", d.created.format("%Y-%m-%d %H:%M:%S UTC"));
            println!("last error: {}", d.last_error.as_deref().unwrap_or("-"));
            if !attempts.is_empty() {
                println!();
                let rows: Vec<Vec<String>> = attempts
                    .into_iter()
                    .map(|a| {
                        vec![
                            a.attempt.to_string(),
                            a.at().format("%Y-%m-%d %H:%M:%S").to_string(),
                            a.outcome,
                            format!("{} ms", a.duration_ms),
                            a.detail.unwrap_or_default(),
                        ]
                    })
                    .collect();
                print_table(&["#", "AT", "OUTCOME", "TOOK", "DETAIL"], &rows);
            }
        }
        DeliveriesCommand::Retry { id, dead, tenant, target } => {
            let n = if let (true, Some(tenant), Some(target)) = (dead, &tenant, &target) {
                let Some(t) = tenants.iter().find(|t| &t.name == tenant) else { bail!("no tenant named {tenant}") };
                let n = store.retry_deliveries(&[], Some((t.id.as_str(), target.as_str()))).context("re-queueing")?;
                record(
                    &store,
                    OperatorAction {
                        operation: "deliveries-retry",
                        tenant_id: Some(t.id.clone()),
                        tenant_name: Some(t.name.clone()),
                        target: Some(target.clone()),
                        detail: format!("re-queued {n} dead deliveries to {target}"),
                        ..OperatorAction::default()
                    },
                );
                n
            } else {
                let Some(id) = id else { bail!("give a delivery id, or --dead --tenant NAME --target NAME") };
                let n = store.retry_deliveries(std::slice::from_ref(&id), None).context("re-queueing")?;
                if n > 0
                    && let Ok(Some((d, _))) = store.delivery(&id)
                {
                    let tenant = tenants.iter().find(|t| t.id == d.tenant_id);
                    record(
                        &store,
                        OperatorAction {
                            operation: "deliveries-retry",
                            tenant_id: Some(d.tenant_id.clone()),
                            tenant_name: tenant.map(|t| t.name.clone()),
                            target: Some(d.target.clone()),
                            detail: format!("re-queued delivery {id} ({} {})", resource_type(&d), d.resource_id),
                            ..OperatorAction::default()
                        },
                    );
                }
                if n == 0 {
                    match store.delivery(&id).context("reading the delivery")? {
                        None => bail!("no delivery with id {id}"),
                        Some((d, _)) => {
                            bail!("delivery {id} is {}; only dead, failed or skipped ones are retried", d.state)
                        }
                    }
                }
                n
            };
            println!("re-queued {n} deliver{}", if n == 1 { "y" } else { "ies" });
        }
    }
    Ok(())
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n { s.to_owned() } else { format!("{}…", s.chars().take(n).collect::<String>()) }
}

/// What a row delivers, as the store names it: `User`, `Group`, or `GroupMembers` for a group's
/// fan-out row (a rename that re-evaluates its members at a target scoped by group names).
fn resource_type(d: &scimgw_store::Delivery) -> &'static str {
    if d.fan_out { "GroupMembers" } else { d.kind.resource_type() }
}
