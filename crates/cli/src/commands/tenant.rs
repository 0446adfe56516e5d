//! `scimgw tenant add | list | remove`.

use anyhow::{Context, bail};
use clap::Subcommand;
use scimgw_gateway::Config;

use scimgw_store::OperatorAction;

use super::{open_store, print_table, record, short_time};

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant.
    Add {
        /// Its name: letters, digits, '-', '_' and '.', at most 64 characters.
        name: String,
    },
    /// List tenants.
    List,
    /// Remove a tenant with all its users, groups and keys.
    Remove {
        /// The tenant's name.
        name: String,
    },
}

pub fn run(config: Config, cmd: TenantCommand) -> anyhow::Result<()> {
    let store = open_store(&config)?;
    match cmd {
        TenantCommand::Add { name } => {
            check_name(&name)?;
            let tenant = match store.create_tenant(&name) {
                Ok(t) => t,
                Err(scimgw_store::StoreError::Conflict { .. }) => bail!("tenant {name} already exists"),
                Err(e) => return Err(e).context("creating the tenant"),
            };
            record(
                &store,
                OperatorAction {
                    operation: "tenant-add",
                    tenant_id: Some(tenant.id.clone()),
                    tenant_name: Some(tenant.name.clone()),
                    detail: format!("created tenant {} ({})", tenant.name, tenant.id),
                    ..OperatorAction::default()
                },
            );
            println!("created tenant {} ({})", tenant.name, tenant.id);
            println!("next: scimgw key issue --tenant {}", tenant.name);
        }
        TenantCommand::List => {
            let tenants = store.tenants().context("reading tenants")?;
            let rows: Vec<Vec<String>> =
                tenants.iter().map(|t| vec![t.name.clone(), t.id.clone(), short_time(&t.created)]).collect();
            print_table(&["NAME", "ID", "CREATED"], &rows);
        }
        TenantCommand::Remove { name } => {
            let id = store.tenant_by_name(&name).context("reading the tenant")?.map(|t| t.id);
            if !store.remove_tenant(&name).context("removing the tenant")? {
                bail!("no tenant named {name}");
            }
            record(
                &store,
                OperatorAction {
                    operation: "tenant-remove",
                    tenant_id: id.clone(),
                    tenant_name: Some(name.clone()),
                    detail: format!(
                        "removed tenant {name} ({}) with its users, groups and keys",
                        id.as_deref().unwrap_or("?")
                    ),
                    ..OperatorAction::default()
                },
            );
            println!("removed tenant {name} with its users, groups and keys");
        }
    }
    Ok(())
}

fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        bail!("tenant name {name:?} is not valid: use letters, digits, '-', '_' and '.', at most 64 characters");
    }
    Ok(())
}
