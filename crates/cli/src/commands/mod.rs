//! One module per subcommand.

pub mod audit;
pub mod config;
pub mod deliveries;
pub mod demo;
pub mod key;
pub mod ops;
pub mod preview;
pub mod purge;
pub mod reconcile;
pub mod serve;
pub mod target;
pub mod tenant;
pub mod users;

use anyhow::{Context, bail};
use scimgw_gateway::Config;
use scimgw_store::{Store, redact_url};

/// Opens an existing store for an admin command (and `worker`), says on stderr which one, and
/// brings its schema up to date. A missing SQLite file is refused rather than created: an empty
/// store made by a command run from the wrong directory (or with the wrong `--config`) answers
/// "no tenants" about a gateway that has them. Only `serve`, `migrate` and `demo` create one
/// ([`create_store`]).
/// Who runs this command, for the operator trail: `--actor`, once set by `main`.
static ACTOR: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

/// Sets who runs the commands of this process (`--actor`); `None`: the OS user.
pub(crate) fn set_actor(actor: Option<String>) {
    let _ = ACTOR.set(actor.map(|a| a.trim().to_owned()).filter(|a| !a.is_empty()));
}

/// Who runs this command: `--actor` (or `SCIMGW_ACTOR`), else the OS user (`alice`, or
/// `alice via sudo` when sudo ran it as root), else the uid.
pub(crate) fn actor() -> String {
    if let Some(Some(a)) = ACTOR.get() {
        return a.clone();
    }
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    if let Some(sudoer) = var("SUDO_USER") {
        return format!("{sudoer} via sudo");
    }
    if let Some(user) = var("USER").or_else(|| var("LOGNAME")) {
        return user;
    }
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map_or_else(|_| "unknown".into(), |m| format!("uid {}", m.uid()))
}

/// Records what an operator did on the trail (`scimgw audit`). The change is already made: a
/// failure to record it is said on stderr, and the command still succeeds.
pub(crate) fn record(store: &Store, mut action: scimgw_store::OperatorAction) {
    if action.actor.is_empty() {
        action.actor = actor();
    }
    if let Err(e) = store.record_operator_event(&action) {
        crate::logging::warn(&format!("warning: the change is made, but recording it on the audit trail failed: {e}"));
    }
}

pub(crate) fn open_store(config: &Config) -> anyhow::Result<Store> {
    if let Some(path) = config.store.sqlite_path().filter(|p| !p.is_file()) {
        bail!(
            "no store at {}: `scimgw migrate` or `scimgw serve` creates it (if the gateway has one, \
             run with its --config)",
            path.display()
        );
    }
    let store = create_store(config)?;
    eprintln!("store: {}", redact_url(&config.store.url));
    Ok(store)
}

/// Opens the store, creating a missing SQLite file and its directory, and brings its schema up
/// to date: for `serve`, `migrate` and `demo`.
pub(crate) fn create_store(config: &Config) -> anyhow::Result<Store> {
    let store = Store::open(&config.store)
        .with_context(|| format!("opening the store at {}", redact_url(&config.store.url)))?;
    store.migrate().context("migrating the store")?;
    Ok(store)
}

/// A tenant by name and one of its targets from `<tenants_dir>/<tenant>.toml`.
pub(crate) fn tenant_target(
    config: &Config,
    store: &Store,
    tenant: &str,
    target: &str,
) -> anyhow::Result<(scimgw_store::Tenant, scimgw_adapter::TargetConfig)> {
    let Some(t) = store.tenant_by_name(tenant).context("reading the tenant")? else {
        anyhow::bail!("no tenant named {tenant}");
    };
    let path = std::path::Path::new(&config.tenants_dir).join(format!("{}.toml", t.name));
    let file = scimgw_adapter::load_tenant_file(&path).map_err(|e| anyhow::anyhow!(e))?;
    let Some(found) = file.targets.into_iter().find(|x| x.name == target) else {
        anyhow::bail!("{} has no target named {target}", path.display());
    };
    Ok((t, found))
}

/// `scimgw migrate`: creates the store when missing.
pub fn migrate(config: Config) -> anyhow::Result<()> {
    let store = Store::open(&config.store)
        .with_context(|| format!("opening the store at {}", redact_url(&config.store.url)))?;
    eprintln!("store: {}", redact_url(&config.store.url));
    let applied = store.migrate().context("migrating the store")?;
    if applied.is_empty() {
        println!("the store is up to date");
    } else {
        for version in applied {
            println!("applied {version}");
        }
    }
    Ok(())
}

/// `2026-11-23 18:24` for tables.
pub(crate) fn short_time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M").to_string()
}

/// Prints rows as aligned columns.
pub(crate) fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let parts: Vec<String> = cells.iter().enumerate().map(|(i, c)| format!("{c:<w$}", w = widths[i])).collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(header.iter().map(|h| (*h).to_owned()).collect());
    for row in rows {
        line(row.clone());
    }
}
