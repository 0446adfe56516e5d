//! `scimgw status` and `scimgw resync`: the outbox at a glance, and re-sending a target's users.

use std::path::Path;

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use scimgw_adapter::load_tenant_file;
use scimgw_delivery::schema_registry;
use scimgw_gateway::Config;
use scimgw_store::{Kind, Query};
use serde_json::{Value, json};

use super::{open_store, print_table, tenant_target};

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON for scripts.
    #[arg(long)]
    json: bool,
}

/// `scimgw status`: per tenant and target, deliveries by state and the oldest waiting one's age.
pub fn status(config: Config, args: StatusArgs) -> anyhow::Result<()> {
    let store = open_store(&config)?;
    let tenants = store.tenants().context("reading tenants")?;
    let stats = store.outbox_stats(true).context("reading the outbox")?;
    let runs = store.reconcile_runs().context("reading the reconcile runs")?;
    // As the gateway found them at its last start or reload (its environment holds the secrets).
    let problems = store.target_problems().context("reading the targets the gateway could not load")?;
    let paused = store.paused_targets().context("reading the paused targets")?;
    let now_us = chrono::Utc::now().timestamp_micros();
    let mut out = Vec::new();
    for t in &tenants {
        let mut names: Vec<String> = load_tenant_file(&Path::new(&config.tenants_dir).join(format!("{}.toml", t.name)))
            .map(|f| f.targets.into_iter().map(|x| x.name).collect())
            .unwrap_or_default();
        names.extend(stats.iter().filter(|s| s.tenant_id == t.id).map(|s| s.target.clone()));
        names.extend(problems.iter().filter(|p| p.tenant_id == t.id).map(|p| p.target.clone()));
        names.sort();
        names.dedup();
        for target in names {
            let count = |state: &str| {
                stats
                    .iter()
                    .find(|s| s.tenant_id == t.id && s.target == target && s.state == state)
                    .map_or(0, |s| s.count)
            };
            let oldest = stats
                .iter()
                .filter(|s| s.tenant_id == t.id && s.target == target && (s.state == "pending" || s.state == "failed"))
                .map(|s| s.oldest_created_us)
                .min()
                .map(|us| (now_us - us).max(0) / 1_000_000);
            let run = runs.iter().find(|r| r.tenant_id == t.id && r.target == target && r.finished_us.is_some());
            let reconcile = run.map(|r| {
                json!({
                    "finished_seconds_ago": r.finished_us.map(|f| (now_us - f).max(0) / 1_000_000),
                    "triggered_by": r.triggered_by,
                    "mode": r.mode,
                    "in_sync": r.in_sync,
                    "drifted": r.drifted,
                    "missing": r.missing,
                    "orphans": r.orphans,
                    "unlinked": r.unlinked,
                    "repairs_queued": r.repairs,
                    "error": r.error,
                })
            });
            let not_loaded = problems.iter().find(|p| p.tenant_id == t.id && p.target == target).map(|p| {
                json!({
                    "problems": p.problems,
                    "since_seconds_ago": (now_us - p.since_us).max(0) / 1_000_000,
                    "running_previous": p.running_previous != 0,
                })
            });
            let paused = paused.iter().find(|p| p.tenant_id == t.id && p.target == target).map(|p| {
                json!({
                    "reason": p.reason,
                    "since_seconds_ago": (now_us - p.since_us).max(0) / 1_000_000,
                    "last_error": p.detail,
                    "probes": p.probes,
                    "next_probe_in_seconds": ((p.next_probe_us - now_us).max(0) + 999_999) / 1_000_000,
                })
            });
            out.push(json!({
                "tenant": t.name,
                "target": target,
                "paused": paused,
                "not_loaded": not_loaded,
                "pending": count("pending"),
                "failed": count("failed"),
                "dead": count("dead"),
                "skipped": count("skipped"),
                "superseded": count("superseded"),
                "done": count("done"),
                "oldest_waiting_seconds": oldest,
                "reconcile": reconcile,
            }));
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&Value::Array(out))?);
        return Ok(());
    }
    if out.is_empty() {
        println!("no targets: add [[targets]] to {}/<tenant>.toml", config.tenants_dir);
        return Ok(());
    }
    let cell = |v: &Value| match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let rows: Vec<Vec<String>> = out
        .iter()
        .map(|r| {
            ["tenant", "target"]
                .iter()
                .map(|k| cell(&r[*k]))
                .chain(std::iter::once(match r["paused"]["reason"].as_str() {
                    Some(reason) => format!("paused ({reason})"),
                    None => "ok".into(),
                }))
                .chain(["pending", "failed", "dead", "superseded", "skipped", "done"].iter().map(|k| cell(&r[*k])))
                .chain(std::iter::once(match r["oldest_waiting_seconds"].as_i64() {
                    Some(s) => format!("{s}s"),
                    None => "-".into(),
                }))
                .chain(reconcile_cells(&r["reconcile"]))
                .collect()
        })
        .collect();
    print_table(
        &[
            "TENANT",
            "TARGET",
            "HEALTH",
            "PENDING",
            "FAILED",
            "DEAD",
            "SUPERSEDED",
            "SKIPPED",
            "DONE",
            "OLDEST WAITING",
            "RECONCILED",
            "DRIFTED",
            "MISSING",
            "ORPHANS",
            "UNLINKED",
        ],
        &rows,
    );
    let halted: Vec<&Value> = out.iter().filter(|r| !r["paused"].is_null()).collect();
    if !halted.is_empty() {
        println!();
        for r in halted {
            let p = &r["paused"];
            println!(
                "{}/{} is paused ({}) for {}s: its deliveries are held, spending no attempt; probe {} in {}s. Last error: {}",
                cell(&r["tenant"]),
                cell(&r["target"]),
                cell(&p["reason"]),
                cell(&p["since_seconds_ago"]),
                p["probes"].as_i64().unwrap_or(0) + 1,
                cell(&p["next_probe_in_seconds"]),
                cell(&p["last_error"])
            );
        }
    }
    let broken: Vec<&Value> = out.iter().filter(|r| !r["not_loaded"].is_null()).collect();
    if !broken.is_empty() {
        println!();
        for r in broken {
            let n = &r["not_loaded"];
            let what = match cell(&r["target"]).as_str() {
                "" => format!("the targets file of tenant {} cannot be read", cell(&r["tenant"])),
                t => format!("{}/{t} is not loaded", cell(&r["tenant"])),
            };
            let meanwhile = match (n["running_previous"].as_bool(), cell(&r["target"]).is_empty()) {
                (Some(true), _) => "the gateway runs its previous configuration",
                (_, false) => {
                    "its changes wait in the outbox (PENDING, or FAILED after an earlier attempt) until a reload or restart loads it"
                }
                (_, true) => "the tenant's SCIM writes are refused until a reload or restart reads it",
            };
            println!(
                "{what} (for {}s): {}; {meanwhile}",
                cell(&n["since_seconds_ago"]),
                cell(&n["problems"]).replace('\n', "; ")
            );
        }
    }
    if out.iter().any(|r| !r["reconcile"]["error"].is_null()) {
        println!();
        for r in out.iter().filter(|r| !r["reconcile"]["error"].is_null()) {
            println!(
                "last reconcile of {}/{} failed: {}",
                cell(&r["tenant"]),
                cell(&r["target"]),
                cell(&r["reconcile"]["error"])
            );
        }
    }
    Ok(())
}

/// The reconcile columns of `status`: when (`3m ago`, `failed 3m ago`) and the counts.
fn reconcile_cells(run: &Value) -> Vec<String> {
    if run.is_null() {
        return vec!["never".into(), "-".into(), "-".into(), "-".into(), "-".into()];
    }
    let ago = run["finished_seconds_ago"].as_i64().map_or_else(|| "-".to_owned(), age);
    let when = if run["error"].is_null() { ago } else { format!("failed {ago}") };
    let mut cells = vec![when];
    cells.extend(["drifted", "missing", "orphans", "unlinked"].iter().map(|k| run[*k].to_string()));
    cells
}

/// `42s ago`, `3m ago`, `5h ago`, `2d ago`.
fn age(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s}s ago"),
        s if s < 7_200 => format!("{}m ago", s / 60),
        s if s < 172_800 => format!("{}h ago", s / 3_600),
        s => format!("{}d ago", s / 86_400),
    }
}

#[derive(Debug, Args)]
pub struct ResyncArgs {
    /// The tenant's name.
    #[arg(long)]
    tenant: String,
    /// The target to send every in-scope user to again.
    #[arg(long)]
    target: String,
}

/// `scimgw resync`: queue every user in the target's scope (and every user it holds) for
/// delivery again, even unchanged ones. A running dispatcher sends them.
pub fn resync(config: Config, args: ResyncArgs) -> anyhow::Result<()> {
    let store = open_store(&config)?;
    let (tenant, target) = tenant_target(&config, &store, &args.tenant, &args.target)?;
    let schemas = schema_registry();
    let Some(schema) = schemas.resource("User") else { bail!("the User resource type is missing") };
    let scope = target.scope_filter(&schemas).map_err(|e| anyhow::anyhow!("target {}: {e}", target.name))?;
    let total = store.query(&tenant.id, Kind::User, &Query::count_only(None, &schema)).context("counting users")?.total;
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {bar:40} {pos}/{len} users ({eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let (mut queued, mut out_of_scope) = (0usize, 0usize);
    let groups = scope.as_ref().is_some_and(scimgw_delivery::scope_reads_groups);
    store.for_each_page(&tenant.id, Kind::User, &schema, None, groups, 500, |users| -> anyhow::Result<()> {
        let ids: Vec<String> = users.iter().map(|r| r.id.clone()).collect();
        let linked: Vec<String> = store
            .links_for(&tenant.id, &target.name, Kind::User, &ids)
            .context("reading links")?
            .into_iter()
            .filter(|l| l.remote_id.is_some())
            .map(|l| l.local_id)
            .collect();
        let mut batch = Vec::new();
        for r in &users {
            let in_scope = scope.as_ref().is_none_or(|f| f.matches(&Value::Object(r.to_scim(None)), &schema));
            if in_scope || linked.contains(&r.id) {
                batch.push((r.id.clone(), r.version));
            } else {
                out_of_scope += 1;
            }
        }
        queued += store.resync(&tenant.id, &target.name, Kind::User, &batch).context("queueing deliveries")?;
        bar.inc(users.len() as u64);
        Ok(())
    })?;
    bar.finish_and_clear();
    super::record(
        &store,
        scimgw_store::OperatorAction {
            operation: "resync",
            tenant_id: Some(tenant.id.clone()),
            tenant_name: Some(tenant.name.clone()),
            target: Some(target.name.clone()),
            detail: format!("queued {queued} user(s) for {} ({out_of_scope} out of its scope)", target.name),
            ..Default::default()
        },
    );
    println!(
        "queued {queued} user(s) for target {} ({out_of_scope} out of its scope and never delivered there: left alone); \
         a running `scimgw serve` or `scimgw worker` delivers them",
        target.name
    );
    Ok(())
}
