//! The `vendor-sim` binary: serves one simulated SCIM app until ctrl-c, for use by hand or from
//! docker-compose. Faults, the log and the store are driven through the admin API (`/_sim/…`).

use std::net::SocketAddr;

use anyhow::Context as _;
use clap::Parser;
use vendor_sim::{Faults, ProfileKind, Sim, SimConfig};

/// A strict SCIM 2.0 app simulator with fault injection.
#[derive(Debug, Parser)]
#[command(name = "vendor-sim", version, about)]
struct Args {
    /// Address to listen on. Keep it on loopback: the admin API needs no token.
    #[arg(long, default_value = "127.0.0.1:9100")]
    listen: SocketAddr,
    /// The bearer token SCIM requests must carry.
    #[arg(long, env = "VENDOR_SIM_TOKEN", hide_env_values = true)]
    token: String,
    /// The app to simulate: generic (plain SCIM 2.0), jostle, joyn-fsm or jumpcloud (the vendors'
    /// rules as shared/VENDORS.md gives them; jumpcloud needs ?aadOptscim062020 on the URL for
    /// anything but creates and reads).
    #[arg(long, default_value = "generic", value_parser = parse_profile)]
    profile: ProfileKind,
    /// The path the SCIM API is served under.
    #[arg(long, default_value = "/scim/v2")]
    base_path: String,
    /// Faults in force from the start, as the JSON that `PUT /_sim/faults` takes.
    #[arg(long, value_parser = parse_faults)]
    faults: Option<Faults>,
}

fn parse_profile(s: &str) -> Result<ProfileKind, String> {
    s.parse()
}

fn parse_faults(s: &str) -> Result<Faults, String> {
    serde_json::from_str(s).map_err(|e| e.to_string())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.faults.as_ref().is_some_and(Faults::refuses_forever) {
        anyhow::bail!("--faults: a refuse outage needs duration_ms, or the port would never open");
    }
    let config = SimConfig {
        listen: args.listen,
        token: args.token,
        base_path: args.base_path,
        profile: args.profile.build(),
        faults: args.faults.unwrap_or_default(),
        ..SimConfig::default()
    };
    let sim = Sim::start(config).context("starting the simulator")?;
    println!("vendor-sim ({} profile) serving {}", sim.profile().name(), sim.base_url());
    println!("admin API: {}/_sim/requests, /_sim/faults, /_sim/reset, /_sim/users, /_sim/groups", sim.origin());
    tokio::signal::ctrl_c().await.context("waiting for ctrl-c")?;
    sim.stop();
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn cli_takes_listen_token_profile_and_faults() {
        let args = Args::try_parse_from([
            "vendor-sim",
            "--listen",
            "127.0.0.1:9200",
            "--token",
            "XYZ",
            "--profile",
            "generic",
            "--faults",
            r#"{"latency_ms": 5}"#,
        ])
        .unwrap();
        assert_eq!(args.listen.port(), 9200);
        assert_eq!(args.profile, ProfileKind::Generic);
        assert_eq!(args.faults.unwrap().latency_ms, 5);
        assert!(Args::try_parse_from(["vendor-sim", "--token", "x", "--profile", "nope"]).is_err());
    }

    #[test]
    fn cli_help_names_every_profile() {
        let help = Args::command().render_long_help().to_string();
        for kind in ProfileKind::ALL {
            assert!(help.contains(kind.name()), "{} missing from --help", kind.name());
            let args = Args::try_parse_from(["vendor-sim", "--token", "x", "--profile", kind.name()]).unwrap();
            assert_eq!(args.profile, *kind);
        }
    }
}
