//! `scimgw target test`: Entra ID's "Test Connection" against a tenant's targets, one line per
//! step (`scimgw_adapter::connection_test` runs them). Reads only the tested targets' tokens and
//! never prints one.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use scimgw_adapter::{ConnectionReport, TargetConfig, connection_test, load_tenant_file};
use scimgw_delivery::adapter_registry;
use scimgw_gateway::Config;
use serde_json::{Value, json};

use super::open_store;

#[derive(Debug, Subcommand)]
pub enum TargetCommand {
    /// What Entra ID's "Test Connection" does, per target: resolve the host, connect, the TLS
    /// handshake, an authenticated `GET /Users?filter=userName eq "<random GUID>"` expecting an
    /// empty list, and the URL flags the vendor needs. Exit code 0 when every step passed.
    Test(TestArgs),
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// The tenant's name.
    #[arg(long)]
    tenant: String,
    /// Only this target (its name in the tenant's file); default: every target of the tenant.
    #[arg(long)]
    target: Option<String>,
    /// Print one JSON document: per target its name, kind, URL and steps (name, ok, detail).
    #[arg(long)]
    json: bool,
}

/// One tested target.
pub(crate) struct Tested {
    pub tenant: String,
    pub name: String,
    pub kind: String,
    pub report: ConnectionReport,
}

pub fn run(config: Config, cmd: TargetCommand) -> anyhow::Result<()> {
    let TargetCommand::Test(args) = cmd;
    let store = open_store(&config)?;
    let Some(tenant) = store.tenant_by_name(&args.tenant).context("reading the tenant")? else {
        bail!("no tenant named {}", args.tenant);
    };
    let path = std::path::Path::new(&config.tenants_dir).join(format!("{}.toml", tenant.name));
    let file = load_tenant_file(&path).map_err(anyhow::Error::msg)?;
    let targets: Vec<TargetConfig> = match &args.target {
        Some(name) => match file.targets.into_iter().find(|t| &t.name == name) {
            Some(t) => vec![t],
            None => bail!("{} has no target named {name}", path.display()),
        },
        None if file.targets.is_empty() => bail!("tenant {} has no targets ({} has none)", tenant.name, path.display()),
        None => file.targets,
    };
    let tested = test_targets(targets.into_iter().map(|t| (tenant.name.clone(), t)).collect())?;
    if args.json {
        let doc = json!({
            "tenant": tenant.name,
            "ok": tested.iter().all(|t| t.report.ok()),
            "targets": tested.iter().map(to_json).collect::<Vec<Value>>(),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print_text(&tested);
    }
    let failed = tested.iter().filter(|t| !t.report.ok()).count();
    if failed > 0 {
        bail!("{failed} of {} target(s) failed the connection test", tested.len());
    }
    if !args.json {
        println!("ok: {} target(s) passed every step", tested.len());
    }
    Ok(())
}

/// Tests each `(tenant, target)` at once, each reading only its own token; results in the
/// order given.
pub(crate) fn test_targets(targets: Vec<(String, TargetConfig)>) -> anyhow::Result<Vec<Tested>> {
    if targets.is_empty() {
        return Ok(Vec::new());
    }
    let registry = adapter_registry();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting a runtime")?;
    runtime.block_on(async {
        let handles: Vec<_> = targets
            .into_iter()
            .map(|(tenant, target)| {
                let flags = registry.url_flags(&target.kind);
                tokio::spawn(async move {
                    let report = connection_test(&target, flags).await;
                    Tested { tenant, name: target.name, kind: target.kind, report }
                })
            })
            .collect();
        let mut tested = Vec::with_capacity(handles.len());
        for handle in handles {
            tested.push(handle.await.context("a connection test stopped")?);
        }
        Ok(tested)
    })
}

/// `acme/crm (scim) https://crm.example/scim/v2`, then one aligned line per step.
pub(crate) fn print_text(tested: &[Tested]) {
    let width = tested.iter().flat_map(|t| &t.report.steps).map(|s| s.name.as_str().len()).max().unwrap_or(0);
    for t in tested {
        println!("{}/{} ({}) {}", t.tenant, t.name, t.kind, t.report.url);
        for s in &t.report.steps {
            let verdict = if s.ok { "ok" } else { "FAILED" };
            println!("  {verdict:<6}  {:<width$}  {}", s.name.as_str(), s.detail);
        }
    }
}

fn to_json(t: &Tested) -> Value {
    json!({
        "name": t.name,
        "kind": t.kind,
        "url": t.report.url,
        "ok": t.report.ok(),
        "steps": t.report.steps,
    })
}
