//! `scimgw serve`: the SCIM endpoint.

use std::io::IsTerminal;

use actix_web::web;
use anyhow::Context;
use scimgw_gateway::config::LogFormat;
use scimgw_gateway::{AppState, Config};
use scimgw_scim::schema::Registry;
use tracing_subscriber::EnvFilter;

use super::{open_store, redact_url};

/// Runs until SIGINT or SIGTERM; in-flight requests finish first (actix's graceful shutdown).
pub fn run(config: Config) -> anyhow::Result<()> {
    init_logging(&config);
    let store = open_store(&config)?;
    tracing::info!(store = %redact_url(&config.store.url), "store ready");
    if store.tenants().context("reading tenants")?.is_empty() {
        eprintln!(
            "\nNo tenant exists yet. Create one and issue its first token (shown once):\n\n    \
             scimgw tenant add acme\n    scimgw key issue --tenant acme\n\n\
             (from a checkout: cargo run -- tenant add acme, then cargo run -- key issue --tenant acme)\n"
        );
    }
    let state = web::Data::new(AppState::new(config.clone(), store, Registry::default()));
    actix_web::rt::System::new().block_on(async move {
        let (server, addrs) = scimgw_gateway::bind(state).with_context(|| format!("listening on {}", config.listen))?;
        for addr in addrs {
            tracing::info!("SCIM endpoint at http://{addr}{}", config.base_path());
        }
        server.await.context("serving")
    })
}

fn init_logging(config: &Config) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match config.log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Human => builder.try_init(),
    };
}
