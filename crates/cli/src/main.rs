//! `scimgw`: the gateway's one binary. `serve` runs the SCIM endpoint; the other commands
//! administer tenants, keys and users directly in the store.

mod commands;
mod logging;
mod settings;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A self-hosted SCIM 2.0 provisioning gateway.
#[derive(Debug, Parser)]
#[command(name = "scimgw", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file (TOML). Default: config/gateway.toml when it exists.
    #[arg(long, global = true, value_name = "FILE", env = "SCIMGW_CONFIG")]
    config: Option<PathBuf>,

    /// Who runs this command, for the audit trail of operator actions (default: the OS user).
    #[arg(long, global = true, value_name = "NAME", env = "SCIMGW_ACTOR")]
    actor: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the SCIM endpoint and the dispatcher (creates and migrates the store first).
    Serve(commands::serve::ServeArgs),
    /// Try it: the gateway on a fresh store with three simulated vendor apps, a token and a curl.
    Demo(commands::demo::DemoArgs),
    /// Apply pending store migrations and exit.
    Migrate,
    /// Manage tenants: one per identity provider connection.
    #[command(subcommand)]
    Tenant(commands::tenant::TenantCommand),
    /// Manage API keys (bearer tokens), each belonging to one tenant.
    #[command(subcommand)]
    Key(commands::key::KeyCommand),
    /// Read users as the gateway stores them, with their state at each target.
    #[command(subcommand)]
    Users(commands::users::UsersCommand),
    /// Run the dispatcher alone (deliveries to targets), without the SCIM endpoint.
    Worker(commands::serve::ServeArgs),
    /// Inspect and re-queue deliveries to targets.
    #[command(subcommand)]
    Deliveries(commands::deliveries::DeliveriesCommand),
    /// Dry-run a target's adapter on a user: the payload, what is dropped and why, every rule
    /// broken. Exit code 0 when delivered, skipped or out of scope, 3 when the target refuses it.
    Preview(commands::preview::PreviewArgs),
    /// Per tenant and target: deliveries by state and the oldest waiting one's age.
    Status(commands::ops::StatusArgs),
    /// Send every in-scope user to a target again (after fixing a mapping, or adding a target).
    Resync(commands::ops::ResyncArgs),
    /// Test a tenant's targets as Entra ID's "Test Connection" does (exit code 1 on any failed step).
    #[command(subcommand)]
    Target(commands::target::TargetCommand),
    /// Check the configuration and every tenant's targets.
    #[command(subcommand)]
    Config(commands::config::ConfigCommand),
    /// The tenant's audit trail: which key changed which resource, how, and when.
    Audit(commands::audit::AuditArgs),
    /// Purge done deliveries and old audit events now, as `[retention]` says (the dispatcher does
    /// it every `retention.every`); `--dry-run` counts what would go.
    Purge(commands::purge::PurgeArgs),
    /// Compare a target's app with the gateway: drift, missing users, orphans, unlinked
    /// matches. Exit code 0 when in sync, 3 when something was found.
    Reconcile(commands::reconcile::ReconcileArgs),
}

/// mimalloc instead of glibc's malloc: the gateway allocates per request (JSON values, strings)
/// on several threads at once, where glibc's arenas cost a tenth of the CPU (bench/RESULTS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            logging::warn(&format!("error: {e:#}"));
            ExitCode::FAILURE
        }
    };
    logging::flush();
    code
}

/// What `SIGPIPE` gives on Unix: 128 + 13.
const EXIT_CLOSED_PIPE: i32 = 141;

/// An admin command piped into a reader that stops early (`scimgw audit | head`): Rust ignores
/// `SIGPIPE`, so the next `println!` panics on the closed pipe. End quietly instead, with the exit
/// code a Unix tool has there. `serve`, `worker` and `demo` keep their own handling: a closed log
/// sink never stops them (their lost lines are counted).
fn quiet_on_a_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            logging::flush();
            std::process::exit(EXIT_CLOSED_PIPE);
        }
        default(info);
    }));
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    commands::set_actor(cli.actor.clone());
    if !matches!(cli.command, Command::Serve(_) | Command::Worker(_) | Command::Demo(_)) {
        quiet_on_a_closed_stdout();
    }
    let mut config = settings::load(cli.config.as_deref())?;
    // The statement timeout bounds what a request waits for; an operator's command (a tenant's
    // removal, a vacuum) may take longer, and Ctrl-C stops it.
    if !matches!(cli.command, Command::Serve(_) | Command::Worker(_) | Command::Demo(_)) {
        config.store.statement_timeout_ms = 0;
    }
    if let Command::Reconcile(args) = cli.command {
        let in_sync = commands::reconcile::run(config, args)?;
        return Ok(if in_sync { ExitCode::SUCCESS } else { ExitCode::from(commands::reconcile::EXIT_FINDINGS) });
    }
    if let Command::Preview(args) = cli.command {
        let refused = commands::preview::run(config, args)?;
        return Ok(if refused { ExitCode::from(commands::preview::EXIT_REFUSED) } else { ExitCode::SUCCESS });
    }
    match cli.command {
        Command::Serve(args) => commands::serve::run(config, &args),
        Command::Demo(args) => commands::demo::run(config, args),
        Command::Migrate => commands::migrate(config),
        Command::Tenant(cmd) => commands::tenant::run(config, cmd),
        Command::Key(cmd) => commands::key::run(config, cmd),
        Command::Users(cmd) => commands::users::run(config, cmd),
        Command::Worker(args) => commands::serve::worker(config, &args),
        Command::Deliveries(cmd) => commands::deliveries::run(config, cmd),
        Command::Target(cmd) => commands::target::run(config, cmd),
        Command::Config(cmd) => commands::config::run(config, cmd),
        Command::Preview(_) => Ok(()),
        Command::Status(args) => commands::ops::status(config, args),
        Command::Resync(args) => commands::ops::resync(config, args),
        Command::Audit(args) => commands::audit::run(config, args),
        Command::Purge(args) => commands::purge::run(config, args),
        Command::Reconcile(_) => Ok(()),
    }
    .map(|()| ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
