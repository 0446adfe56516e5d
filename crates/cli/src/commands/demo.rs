//! `scimgw demo`: the gateway on a fresh embedded store with the three vendor simulators, a demo
//! tenant with one target per vendor, a token and a ready-to-paste `curl`. Everything lives in
//! `data/demo/` and starts fresh each time; `scimgw serve` is the production command.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use scimgw_gateway::{Config, issue_key};
use vendor_sim::{ProfileKind, Sim, SimConfig};

use super::open_store;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the demo keeps its store, tenant file and simulator tokens (wiped at start).
    #[arg(long, default_value = "data/demo")]
    dir: PathBuf,
}

/// The demo's targets: (target name, kind, simulator profile, URL suffix, extra TOML).
const TARGETS: &[(&str, &str, ProfileKind, &str, &str)] = &[
    ("jostle", "jostle", ProfileKind::Jostle, "", ""),
    ("joyn", "joyn-fsm", ProfileKind::JoynFsm, "", ""),
    (
        "jumpcloud",
        "jumpcloud",
        ProfileKind::JumpCloud,
        "/?aadOptscim062020",
        "username_from = \"userName_local_part\"\n",
    ),
];

fn random_token() -> String {
    use rand::RngExt;
    let n: u128 = rand::rng().random();
    format!("demo-{n:032x}")
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("protecting {}", path.display()))?;
    }
    Ok(())
}

pub fn run(mut config: Config, args: DemoArgs) -> anyhow::Result<()> {
    let dir = args.dir;
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir.join("tenants")).with_context(|| format!("creating {}", dir.display()))?;
    config.store.url = format!("sqlite://{}", dir.join("scimgw.db").display());
    config.tenants_dir = dir.join("tenants").display().to_string();
    super::serve::init_logging(&config);

    let mut sims = Vec::new();
    let mut toml = String::from("# Written by `scimgw demo`: one target per vendor simulator.\n\n");
    for (name, kind, profile, suffix, extra) in TARGETS {
        let token = random_token();
        let sim = Sim::start(SimConfig { token: token.clone(), ..SimConfig::with_profile(profile.build()) })
            .with_context(|| format!("starting the {name} simulator"))?;
        let token_file = dir.join(format!("{name}.token"));
        write_private(&token_file, &token)?;
        toml.push_str(&format!(
            "[[targets]]\nname = \"{name}\"\nkind = \"{kind}\"\nbase_url = \"{}{suffix}\"\ntoken_file = \"{}\"\n\
             backoff_base_ms = 200\nbackoff_max_ms = 5000\n{extra}\n",
            sim.base_url(),
            token_file.display()
        ));
        sims.push((*name, sim));
    }
    std::fs::write(dir.join("tenants/demo.toml"), toml).context("writing the demo tenant file")?;

    let store = open_store(&config)?;
    let tenant = store.create_tenant("demo").context("creating the demo tenant")?;
    let key = issue_key(&store, &tenant, Some("demo")).context("issuing the demo token")?;

    // Show each request as it lands at a simulator.
    let stop = Arc::new(AtomicBool::new(false));
    let sims = Arc::new(sims);
    let watcher = {
        let (stop, sims) = (stop.clone(), sims.clone());
        std::thread::spawn(move || {
            let mut seen = vec![0u64; sims.len()];
            while !stop.load(Ordering::Relaxed) {
                for (i, (name, sim)) in sims.iter().enumerate() {
                    let last = seen[i];
                    for r in sim.requests().into_iter().filter(|r| r.seq > last) {
                        // In order, and only once answered.
                        let Some(status) = r.status else { break };
                        seen[i] = r.seq;
                        println!("  [{name:>9}] {} {} → {status}", r.method, r.path);
                    }
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };

    let token = key.token;
    let base_path = config.base_path().to_owned();
    let served = super::serve::serve_until_stopped(config, store, move |addrs| {
        let Some(addr) = addrs.first() else { return };
        let url = format!("http://{addr}{base_path}");
        println!(
            "\nscimgw demo is running: tenant \"demo\" delivers to three simulated apps (Jostle, Joyn FSM, JumpCloud).\n\n\
             SCIM endpoint: {url}\nToken:         {token}\n\nCreate a user (paste into another terminal):\n\n\
             curl -s -X POST '{url}/Users' \\\n  -H 'Authorization: Bearer {token}' \\\n  \
             -H 'Content-Type: application/scim+json' \\\n  -d '{{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],\
             \"userName\":\"ada.lovelace@example.com\",\"active\":true,\"name\":{{\"givenName\":\"Ada\",\"familyName\":\"Lovelace\"}},\
             \"emails\":[{{\"type\":\"work\",\"primary\":true,\"value\":\"ada.lovelace@example.com\"}}]}}'\n\n\
             Each delivery is shown below as it lands. Ctrl-C stops everything.\n"
        );
    });
    stop.store(true, Ordering::Relaxed);
    let _ = watcher.join();
    served
}
