//! `scimgw demo`: the gateway on a fresh embedded store with the three vendor simulators, a demo
//! tenant with one target per vendor, a token and a ready-to-paste `curl`. Everything lives in
//! `data/demo/` and starts fresh each time; `scimgw serve` is the production command.
//!
//! Starting fresh wipes the directory, so the demo wipes only a directory it made: one with its
//! marker file ([`MARKER`]) or the tenant file an older demo wrote, an empty one, or none. It
//! refuses anything else (`--dir data` held the production store). It writes a `gateway.toml`
//! there, so that `scimgw --config DIR/gateway.toml status` reads the demo's store.
//!
//! The terminal shows the story: each request as it lands at a simulator (method, path, a
//! lookup's filter, the status) and a PATCH's operations, one per line. The gateway's own log
//! (startup, access log, deliveries) goes to `gateway.log` in the demo's directory. The request
//! and its values are the demo's own made-up users, so printing them is the point; `serve` never
//! logs attribute values.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use scimgw_gateway::{Config, issue_key};
use serde_json::Value;
use vendor_sim::{ProfileKind, RecordedRequest, Sim, SimConfig};

use super::create_store;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the demo keeps its store, tenant file and simulator tokens: wiped at start, so it
    /// must be missing, empty, or a previous demo's.
    #[arg(long, default_value = "data/demo")]
    dir: PathBuf,
    /// The Jostle simulator's port on 127.0.0.1 (0: any free port).
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    jostle_port: u16,
    /// The Joyn FSM simulator's port on 127.0.0.1 (0: any free port).
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    joyn_port: u16,
    /// The JumpCloud simulator's port on 127.0.0.1 (0: any free port).
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    jumpcloud_port: u16,
}

/// The file that marks a directory as the demo's own, free to wipe.
pub const MARKER: &str = ".scimgw-demo";

/// The first line of the tenant file the demo writes (older demos, before [`MARKER`], are
/// recognised by it).
const TENANT_FILE_HEADER: &str = "# Written by `scimgw demo`";

/// Whether the demo may wipe `dir`: it does not exist, is empty, or is a previous demo's.
fn check_dir(dir: &Path) -> anyhow::Result<()> {
    let mut entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    if entries.next().is_none() || dir.join(MARKER).is_file() {
        return Ok(());
    }
    let older = std::fs::read_to_string(dir.join("tenants/demo.toml")).is_ok_and(|t| t.starts_with(TENANT_FILE_HEADER));
    if older {
        return Ok(());
    }
    anyhow::bail!(
        "{} is not empty and is not a previous demo's (it has no {MARKER}); the demo wipes its directory \
         at start, so it leaves this one alone. Pass an empty or new directory with --dir (default data/demo)",
        dir.display()
    )
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
    check_dir(&args.dir)?;
    if args.dir.exists() {
        std::fs::remove_dir_all(&args.dir).with_context(|| format!("clearing {}", args.dir.display()))?;
    }
    std::fs::create_dir_all(args.dir.join("tenants")).with_context(|| format!("creating {}", args.dir.display()))?;
    std::fs::write(args.dir.join(MARKER), "scimgw demo: this directory is wiped by the next `scimgw demo`\n")
        .with_context(|| format!("marking {}", args.dir.display()))?;
    // Absolute, so that the printed commands and `gateway.toml` work from any directory.
    let dir = std::fs::canonicalize(&args.dir).with_context(|| format!("reading {}", args.dir.display()))?;
    config.store.url = format!("sqlite://{}", dir.join("scimgw.db").display());
    config.tenants_dir = dir.join("tenants").display().to_string();
    let demo_config = dir.join("gateway.toml");
    std::fs::write(
        &demo_config,
        format!(
            "# Written by `scimgw demo`: the demo's store, for other commands:\n\
             #   scimgw --config {} status\n\
             tenants_dir = {}\n\n[store]\nurl = {}\n",
            demo_config.display(),
            toml_string(&config.tenants_dir),
            toml_string(&config.store.url),
        ),
    )
    .with_context(|| format!("writing {}", demo_config.display()))?;
    let log_file = dir.join("gateway.log");
    crate::logging::init_to_file(&config, &log_file)?;

    let mut sims = Vec::new();
    let mut toml = format!("{TENANT_FILE_HEADER}: one target per vendor simulator.\n\n");
    let ports = [args.jostle_port, args.joyn_port, args.jumpcloud_port];
    for ((name, kind, profile, suffix, extra), port) in TARGETS.iter().zip(ports) {
        let token = random_token();
        let listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let sim = Sim::start(SimConfig { token: token.clone(), listen, ..SimConfig::with_profile(profile.build()) })
            .with_context(|| format!("starting the {name} simulator on {listen} (--{name}-port)"))?;
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

    let store = create_store(&config)?;
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
                        if r.status.is_none() {
                            break;
                        }
                        seen[i] = r.seq;
                        for line in story(name, &r) {
                            crate::logging::say(&line);
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };

    let token = key.token;
    let base_path = config.base_path().to_owned();
    let simulators: Vec<String> = sims.iter().map(|(name, sim)| format!("{name} {}", sim.base_url())).collect();
    let store_url = config.store.url.clone();
    let served = super::serve::serve_until_stopped(config, store, true, move |addrs| {
        let Some(addr) = addrs.first() else { return };
        let url = format!("http://{addr}{base_path}");
        // On a thread of its own: a terminal that stopped reading must not hold the gateway.
        let banner = format!(
            "\nscimgw demo is running: tenant \"demo\" delivers to three simulated apps (Jostle, Joyn FSM, JumpCloud).\n\n\
             SCIM endpoint: {url}\nToken:         {token}\n\nCreate a user (paste into another terminal):\n\n\
             curl -s -X POST '{url}/Users' \\\n  -H 'Authorization: Bearer {token}' \\\n  \
             -H 'Content-Type: application/scim+json' \\\n  -d '{{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],\
             \"userName\":\"ada.lovelace@example.com\",\"active\":true,\"name\":{{\"givenName\":\"Ada\",\"familyName\":\"Lovelace\"}},\
             \"emails\":[{{\"type\":\"work\",\"primary\":true,\"value\":\"ada.lovelace@example.com\"}}]}}'\n\n\
             The endpoint listens on `listen` ({addr}); another address: SCIMGW_LISTEN=127.0.0.1:9090 scimgw demo.\n\
             Simulators: {}\n(fixed ports: --jostle-port, --joyn-port, --jumpcloud-port)\n\n\
             The demo's store, from another terminal: scimgw --config {} status\n\
             (or deliveries list, users list --tenant demo; or set SCIMGW_STORE__URL={})\n\n\
             Each request to a vendor is shown below as it lands; the gateway's log is in {}.\n\
             Ctrl-C stops everything.\n",
            simulators.join(", "),
            demo_config.display(),
            store_url,
            log_file.display()
        );
        let _ =
            std::thread::Builder::new().name("scimgw-demo-banner".into()).spawn(move || crate::logging::say(&banner));
    });
    stop.store(true, Ordering::Relaxed);
    let _ = watcher.join();
    served
}

/// `text` as a TOML basic string (JSON's escapes are TOML's).
fn toml_string(text: &str) -> String {
    Value::from(text).to_string()
}

/// How one request that reached a simulator reads in the demo: `[jumpcloud] PATCH /scim/v2/Users/…
/// → 200`, the filter of a lookup, then each operation of a PATCH on its own line.
fn story(vendor: &str, r: &RecordedRequest) -> Vec<String> {
    let status = r.status.map_or_else(|| "…".to_owned(), |s| s.to_string());
    let filter = r.query_param("filter").map(|f| format!("?filter={f}")).unwrap_or_default();
    let mut out = vec![format!("  [{vendor:>9}] {} {}{filter} → {status}", r.method, r.path)];
    if r.method == "PATCH" {
        let ops = r.json().and_then(|b| b.get("Operations").and_then(Value::as_array).cloned()).unwrap_or_default();
        for op in ops {
            let name = op.get("op").and_then(Value::as_str).unwrap_or("?");
            let line = match (op.get("path").and_then(Value::as_str), op.get("value")) {
                (Some(path), Some(value)) => format!("{name} {path} = {}", clip(value)),
                (Some(path), None) => format!("{name} {path}"),
                (None, Some(value)) => format!("{name} {}", clip(value)),
                (None, None) => name.to_owned(),
            };
            out.push(format!("  {:>11}   {line}", ""));
        }
    }
    out
}

/// A value as compact JSON, cut to one readable line.
fn clip(value: &Value) -> String {
    const MAX: usize = 100;
    let text = value.to_string();
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(method: &str, query: &str, body: Value) -> RecordedRequest {
        RecordedRequest {
            seq: 1,
            method: method.into(),
            path: "/scim/v2/Users/u1".into(),
            query: query.into(),
            headers: Vec::new(),
            body: body.to_string(),
            authenticated: true,
            at: std::time::Instant::now(),
            time: std::time::SystemTime::now(),
            status: Some(200),
            fault: None,
        }
    }

    #[test]
    fn a_patch_reads_as_its_operations_one_per_line() {
        let body = json!({"Operations": [
            {"op": "replace", "path": "active", "value": false},
            {"op": "Remove", "path": "emails[type eq \"personal\"]"},
            {"op": "add", "value": {"title": "x".repeat(200)}}
        ]});
        let lines = story("jumpcloud", &request("PATCH", "aadOptscim062020", body));
        assert_eq!(lines[0], "  [jumpcloud] PATCH /scim/v2/Users/u1 → 200");
        assert_eq!(lines[1].trim(), "replace active = false");
        assert_eq!(lines[2].trim(), "Remove emails[type eq \"personal\"]");
        assert!(lines[3].trim().starts_with("add {\"title\":\"xxx") && lines[3].ends_with('…'), "{}", lines[3]);
    }

    #[test]
    fn only_a_missing_empty_or_previous_demo_directory_is_wiped() {
        let root = tempfile::tempdir().unwrap();
        assert!(check_dir(&root.path().join("new")).is_ok());
        let dir = root.path().join("data");
        std::fs::create_dir_all(dir.join("tenants")).unwrap();
        assert!(check_dir(&dir).is_err(), "anything in it, even an empty folder, is not the demo's");
        std::fs::write(dir.join("scimgw.db"), "production").unwrap();
        let err = check_dir(&dir).unwrap_err().to_string();
        assert!(err.contains("is not a previous demo's") && err.contains(MARKER), "{err}");
        std::fs::write(dir.join("tenants/demo.toml"), "[[targets]]\n").unwrap();
        assert!(check_dir(&dir).is_err(), "a tenant file of the operator's own");
        std::fs::write(dir.join("tenants/demo.toml"), format!("{TENANT_FILE_HEADER}: one target…\n")).unwrap();
        assert!(check_dir(&dir).is_ok(), "an older demo's");
        std::fs::remove_file(dir.join("tenants/demo.toml")).unwrap();
        std::fs::write(dir.join(MARKER), "").unwrap();
        assert!(check_dir(&dir).is_ok());
        let empty = root.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        assert!(check_dir(&empty).is_ok());
    }

    #[test]
    fn a_lookup_shows_its_filter() {
        let lines = story("jostle", &request("GET", "filter=userName+eq+%22ada%22", Value::Null));
        assert_eq!(lines, ["  [   jostle] GET /scim/v2/Users/u1?filter=userName eq \"ada\" → 200"]);
    }
}
