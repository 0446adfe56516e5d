//! `scimgw purge`: what `[retention]` lets go — done deliveries with their attempts, old audit
//! and operator events — as the dispatcher purges it every `retention.every`, now; `--dry-run`
//! says what would go.

use anyhow::{Context, anyhow};
use clap::Args;
use scimgw_gateway::Config;

use super::{open_store, record};

#[derive(Debug, Args)]
pub struct PurgeArgs {
    /// Count what would go, and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Then rewrite the store to its smallest size. SQLite: VACUUM, which holds every write of
    /// every tenant while it runs (minutes on a large store), and switches an older file to
    /// incremental vacuum so later purges give their space back by themselves. PostgreSQL:
    /// VACUUM (ANALYZE) of the purged tables (their space is reused; the files do not shrink).
    #[arg(long, conflicts_with = "dry_run")]
    vacuum: bool,
}

pub fn run(config: Config, args: PurgeArgs) -> anyhow::Result<()> {
    let store = open_store(&config)?;
    let now = chrono::Utc::now().timestamp_micros();
    let cutoffs = config.retention.cutoffs(now).map_err(|p| anyhow!("{}", p.join("\n")))?;
    let ages = format!(
        "retention.deliveries = {:?}, retention.audit = {:?}",
        config.retention.deliveries, config.retention.audit
    );
    let size = |store: &scimgw_store::Store| store.size_bytes().map(|b| format!("{:.1} MB", b as f64 / 1e6));
    let before = size(&store).context("measuring the store")?;
    let counts = if args.dry_run {
        store.purge_candidates(cutoffs).context("counting what would go")?
    } else {
        store.purge(cutoffs, config.retention.batch, &|| false).context("purging")?
    };
    let what = format!(
        "{} done deliveries with {} attempts, {} audit events, {} operator events ({ages})",
        counts.deliveries, counts.attempts, counts.audit_events, counts.operator_events
    );
    if args.dry_run {
        println!("would purge {what}; the store is {before}");
        return Ok(());
    }
    if args.vacuum {
        store.vacuum().context("vacuuming the store")?;
    }
    let after = size(&store).context("measuring the store")?;
    record(
        &store,
        scimgw_store::OperatorAction {
            operation: "purge",
            detail: format!("purged {what}{}; {before} → {after}", if args.vacuum { ", then vacuumed" } else { "" }),
            ..Default::default()
        },
    );
    println!("purged {what}; the store was {before}, is {after}");
    Ok(())
}
