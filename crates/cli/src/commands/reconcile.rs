//! `scimgw reconcile`: compare a target's vendor with the gateway, report drift, missing users,
//! orphans and unlinked matches, and (with `--repair`) queue the deliveries that fix them.

use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use scimgw_delivery::reconcile::{self, Options, Progress, Report};
use scimgw_delivery::targets::load_one;
use scimgw_delivery::{adapter_registry, schema_registry};
use scimgw_gateway::Config;

use super::{open_store, print_table};

/// The exit code when something was found (0: in sync; 1: the run failed).
pub const EXIT_FINDINGS: u8 = 3;

/// Findings shown in the table; `--json` has them all.
const TABLE_ROWS: usize = 100;

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// The tenant's name.
    #[arg(long)]
    tenant: String,
    /// The target to reconcile (its name in the tenant's file).
    #[arg(long)]
    target: String,
    /// Queue the deliveries that repair drift, missing users and unlinked matches (a running
    /// `serve` or `worker` sends them, within the target's rate limit).
    #[arg(long)]
    repair: bool,
    /// Also queue the deactivation of orphans: deprovisioned users' accounts still active, and
    /// accounts no gateway user matches (deactivated, never deleted).
    #[arg(long)]
    deactivate_orphans: bool,
    /// Print the whole report as JSON, with the differing values (personal data: send it to a
    /// file, not to a log).
    #[arg(long)]
    json: bool,
    /// Users per page when listing the vendor (it may send fewer).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    page_size: u64,
}

/// A progress bar on standard error (hidden when that is not a terminal).
struct Bar(ProgressBar);

impl Progress for Bar {
    fn phase(&self, what: &str, total: Option<u64>) {
        match total {
            Some(n) => {
                self.0.set_style(
                    ProgressStyle::with_template("{spinner} {msg} {bar:30} {pos}/{len} ({eta} left)")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                self.0.set_length(n);
            }
            None => self.0.set_style(
                ProgressStyle::with_template("{spinner} {msg} {pos}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        }
        self.0.set_position(0);
        self.0.set_message(what.to_owned());
    }

    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
}

/// `scimgw reconcile`; whether the target was in sync.
pub fn run(config: Config, args: ReconcileArgs) -> anyhow::Result<bool> {
    let store = open_store(&config)?;
    let Some(tenant) = store.tenant_by_name(&args.tenant).context("reading the tenant")? else {
        bail!("no tenant named {}", args.tenant);
    };
    let schemas = Arc::new(schema_registry());
    let dir = std::path::Path::new(&config.tenants_dir);
    // This target's secret only: the others' tokens need not be in the admin's shell.
    let target = load_one(dir, &tenant, &args.target, &adapter_registry(), &schemas).map_err(|e| {
        anyhow::anyhow!("target {} of tenant {}:\n  {}", args.target, tenant.name, e.replace('\n', "\n  "))
    })?;
    let target = Arc::new(target);
    if !target.handles(scimgw_store::Kind::User) {
        bail!("target {} does not take users: nothing to reconcile", args.target);
    }
    let options = Options {
        repair: args.repair,
        deactivate_orphans: args.deactivate_orphans,
        triggered_by: "cli",
        page_size: args.page_size,
        ..Options::default()
    };
    let started_us = chrono::Utc::now().timestamp_micros();
    let bar = Bar(ProgressBar::new_spinner());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting a runtime")?;
    let result = runtime.block_on(reconcile::reconcile(&store, &target, &schemas, &tenant.id, &options, &bar));
    bar.0.finish_and_clear();
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            let record = reconcile::failed_record(&tenant.id, &args.target, "cli", started_us, &e.to_string());
            let _ = store.finish_reconcile(&record);
            return Err(anyhow::anyhow!(e)).context(format!("reconciling {}/{}", tenant.name, args.target));
        }
    };
    store.finish_reconcile(&reconcile::run_record(&report, started_us)).context("recording the run")?;
    if args.repair || args.deactivate_orphans {
        super::record(
            &store,
            scimgw_store::OperatorAction {
                operation: "reconcile-repair",
                tenant_id: Some(tenant.id.clone()),
                tenant_name: Some(tenant.name.clone()),
                target: Some(args.target.clone()),
                detail: format!(
                    "reconcile{}{}: queued {} repair(s) ({} drifted, {} missing, {} orphans, {} unlinked)",
                    if args.repair { " --repair" } else { "" },
                    if args.deactivate_orphans { " --deactivate-orphans" } else { "" },
                    report.repairs_queued,
                    report.drifted,
                    report.missing,
                    report.orphans,
                    report.unlinked
                ),
                ..Default::default()
            },
        );
    }
    if args.json {
        let mut value = serde_json::to_value(&report)?;
        if let Some(o) = value.as_object_mut() {
            o.insert("tenant".into(), serde_json::Value::from(tenant.name.clone()));
        }
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print_report(&tenant.name, &report);
    }
    Ok(report.in_sync())
}

fn print_report(tenant: &str, r: &Report) {
    let read = match r.vendor_accounts {
        Some(n) => format!("listed {n} account(s)"),
        None => "looked users up one by one".to_owned(),
    };
    println!(
        "reconciled {tenant}/{}: {} gateway user(s), {read}, {} request(s), {:.1} s",
        r.target, r.users, r.requests, r.seconds
    );
    if !r.findings.is_empty() {
        println!();
        let rows: Vec<Vec<String>> = r
            .findings
            .iter()
            .take(TABLE_ROWS)
            .map(|f| {
                let what = if f.attributes.is_empty() { f.note.clone() } else { f.attributes.join(", ") };
                vec![
                    f.kind.as_str().to_owned(),
                    f.user_id.clone().unwrap_or_else(|| "-".into()),
                    f.user_name.clone().unwrap_or_else(|| "-".into()),
                    f.remote_id.clone().unwrap_or_else(|| "-".into()),
                    if f.repair_queued { "queued".into() } else { "-".into() },
                    what,
                ]
            })
            .collect();
        print_table(&["FINDING", "USER ID", "USERNAME", "REMOTE ID", "REPAIR", "WHAT"], &rows);
        if r.findings.len() > TABLE_ROWS {
            println!("… and {} more (--json lists them all)", r.findings.len() - TABLE_ROWS);
        }
    }
    println!();
    print_table(
        &["IN SYNC", "DRIFTED", "MISSING", "ORPHANS", "UNLINKED", "AWAITING DELIVERY", "NOT SENT", "REPAIRS QUEUED"],
        &[[r.in_sync, r.drifted, r.missing, r.orphans, r.unlinked, r.awaiting_delivery, r.not_sent, r.repairs_queued]
            .iter()
            .map(u64::to_string)
            .collect()],
    );
    if !r.orphan_search {
        println!(
            "\nnote: {} is read by lookups, which cannot find accounts the gateway knows nothing of; only \
             deprovisioned users' accounts were checked for orphans (set reconcile_by = \"list\" on the target \
             if its API lists users)",
            r.target
        );
    }
    let fixable = r.drifted + r.missing + r.unlinked;
    if fixable > 0 && r.repairs_queued == 0 {
        println!("\n--repair queues the deliveries that fix the drifted, missing and unlinked users");
    }
    if r.orphans > 0 && !r.findings.iter().any(|f| f.repair_queued && f.kind == reconcile::FindingKind::Orphan) {
        println!("--deactivate-orphans queues the deactivation of the active orphans");
    }
    if r.repairs_queued > 0 {
        println!("\nqueued {} repair(s); a running `scimgw serve` or `scimgw worker` delivers them", r.repairs_queued);
    }
}
