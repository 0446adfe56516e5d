//! `scimgw key issue | list | revoke`.

use anyhow::{Context, bail};
use clap::Subcommand;
use scimgw_gateway::{Config, issue_key};

use scimgw_store::OperatorAction;

use super::{open_store, print_table, record, short_time};

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Issue a key for a tenant and print its token. The token is shown once and never stored.
    Issue {
        /// The tenant's name.
        #[arg(long)]
        tenant: String,
        /// A note for `key list`, e.g. "Entra production".
        #[arg(long)]
        label: Option<String>,
        /// Print {"token", "key_id", "tenant"} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List keys (never their secrets).
    List {
        /// Only this tenant's keys.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Revoke a key; requests with it get 401 within auth.key_cache_ms (1 s by default; at once with 0).
    Revoke {
        /// The key id (the part after `scimgw_` in the token, as `key list` shows it).
        key_id: String,
    },
}

pub fn run(config: Config, cmd: KeyCommand) -> anyhow::Result<()> {
    let store = open_store(&config)?;
    match cmd {
        KeyCommand::Issue { tenant, label, json } => {
            let Some(t) = store.tenant_by_name(&tenant).context("reading the tenant")? else {
                bail!("no tenant named {tenant}; create it with: scimgw tenant add {tenant}");
            };
            let issued = issue_key(&store, &t, label.as_deref()).context("issuing the key")?;
            record(
                &store,
                OperatorAction {
                    operation: "key-issue",
                    tenant_id: Some(t.id.clone()),
                    tenant_name: Some(t.name.clone()),
                    detail: match &label {
                        Some(l) => format!("issued key {} (label {l:?})", issued.key_id),
                        None => format!("issued key {}", issued.key_id),
                    },
                    ..OperatorAction::default()
                },
            );
            if json {
                println!("{}", serde_json::to_string(&issued)?);
            } else {
                println!("{}", issued.token);
                eprintln!(
                    "\nKey {} issued for tenant {}. The token above is shown once: paste it into your\n\
                     identity provider's Secret Token field now. Revoke with: scimgw key revoke {}",
                    issued.key_id, issued.tenant, issued.key_id
                );
            }
        }
        KeyCommand::List { tenant } => {
            let tenants = store.tenants().context("reading tenants")?;
            let tenant_id = match &tenant {
                Some(name) => match tenants.iter().find(|t| &t.name == name) {
                    Some(t) => Some(t.id.clone()),
                    None => bail!("no tenant named {name}"),
                },
                None => None,
            };
            let keys = store.api_keys(tenant_id.as_deref()).context("reading keys")?;
            let rows: Vec<Vec<String>> = keys
                .iter()
                .map(|k| {
                    let tenant = tenants.iter().find(|t| t.id == k.tenant_id).map_or("?", |t| t.name.as_str());
                    vec![
                        k.id.clone(),
                        tenant.to_owned(),
                        k.label.clone().unwrap_or_default(),
                        short_time(&k.created),
                        k.last_used.as_ref().map(short_time).unwrap_or_else(|| "never".into()),
                        if k.revoked.is_some() { "revoked".into() } else { "active".into() },
                    ]
                })
                .collect();
            print_table(&["KEY ID", "TENANT", "LABEL", "CREATED", "LAST USED", "STATUS"], &rows);
        }
        KeyCommand::Revoke { key_id } => {
            let key = store.api_keys(None).context("reading keys")?.into_iter().find(|k| k.id == key_id);
            if !store.revoke_api_key(&key_id).context("revoking the key")? {
                bail!("no key with id {key_id}");
            }
            let tenant = match &key {
                Some(k) => store.tenants().context("reading tenants")?.into_iter().find(|t| t.id == k.tenant_id),
                None => None,
            };
            record(
                &store,
                OperatorAction {
                    operation: "key-revoke",
                    tenant_id: tenant.as_ref().map(|t| t.id.clone()),
                    tenant_name: tenant.as_ref().map(|t| t.name.clone()),
                    detail: match key.as_ref().and_then(|k| k.label.as_ref()) {
                        Some(l) => format!("revoked key {key_id} (label {l:?})"),
                        None => format!("revoked key {key_id}"),
                    },
                    ..OperatorAction::default()
                },
            );
            println!("revoked key {key_id}");
        }
    }
    Ok(())
}
