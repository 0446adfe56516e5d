//! Faults under load (issue 8): the `scimgw` process killed with SIGKILL at random moments while
//! the load tool (`scimgw-load`) provisions users, on SQLite and on PostgreSQL. Afterwards every
//! write the load tool got a 2xx for must be in the store, and the vendor simulator must hold the
//! store's final state with no duplicate accounts.
//!
//! The short form runs in `cargo test` (5 kills per engine). The long form is the same test with
//! more rounds and users: `SCIMGW_FAULT_ROUNDS=50 SCIMGW_FAULT_USERS=20000 cargo test -p scimgw
//! --test faults -- --nocapture`. Each run prints its seed; `SCIMGW_FAULT_SEED` replays the same
//! kill moments (the gateway's own timing still varies).
#![cfg(test)]

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Gw, until};
use scimgw_store::Backend;
use scimgw_store::testing::TestDb;
use serde_json::Value;
use vendor_sim::{Sim, SimConfig};

/// The load tool, built next to `scimgw` by `cargo test --workspace`.
fn load_tool() -> PathBuf {
    let path =
        Path::new(env!("CARGO_BIN_EXE_scimgw")).with_file_name(format!("scimgw-load{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: these tests drive the load tool; `cargo test --workspace` builds it, or run \
         `cargo build -p scimgw-load` first",
        path.display()
    );
    path
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A small deterministic PRNG (xorshift64*): the kill moments are reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn seeded() -> (Rng, u64) {
        let seed = std::env::var("SCIMGW_FAULT_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
        });
        (Rng(seed.max(1)), seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

/// Every user of the tenant, read through the gateway in pages: id → (userName, givenName).
async fn stored_users(gw: &Gw, token: &str) -> HashMap<String, (String, Option<String>)> {
    let client = reqwest::Client::new();
    let mut users = HashMap::new();
    let mut start = 1;
    loop {
        let page: Value = client
            .get(format!("http://127.0.0.1:{}/scim/v2/Users?startIndex={start}&count=1000", gw.port))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let resources = page["Resources"].as_array().cloned().unwrap_or_default();
        for u in &resources {
            users.insert(
                u["id"].as_str().unwrap().to_owned(),
                (u["userName"].as_str().unwrap().to_owned(), u["name"]["givenName"].as_str().map(str::to_owned)),
            );
        }
        if resources.is_empty() || users.len() as u64 >= page["totalResults"].as_u64().unwrap() {
            return users;
        }
        start += resources.len();
    }
}

/// The acknowledged writes the load tool logged.
fn read_acks(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("ack log line {l:?}: {e}")))
        .collect()
}

/// Starts the load tool's `entra-initial` cycle of `users` against the gateway on `port`, logging
/// every acknowledged write to `acks`.
fn start_load(port: u16, token: &str, users: u64, concurrency: u32, acks: &Path) -> std::process::Child {
    Command::new(load_tool())
        .args(["--base-url", &format!("http://127.0.0.1:{port}/scim/v2")])
        .args(["--scenario", "entra-initial", "--concurrency", &concurrency.to_string(), "--seconds", "60"])
        .args(["--users", &users.to_string(), "--json", "--ack-log"])
        .arg(acks)
        .env("SCIMGW_LOAD_TOKEN", token)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits (up to two minutes) until the app holds exactly the stored users, each with its given
/// name; whether it got there.
async fn app_converges(sim: &Sim, stored: &HashMap<String, (String, Option<String>)>) -> bool {
    let by_name: BTreeMap<&str, Option<&str>> = stored.values().map(|(n, g)| (n.as_str(), g.as_deref())).collect();
    until(Duration::from_secs(120), || {
        let remote = sim.users();
        remote.len() == by_name.len()
            && remote.iter().all(|u| {
                let name = u["userName"].as_str().unwrap_or("");
                by_name.get(name).is_some_and(|g| u["name"]["givenName"].as_str() == *g)
            })
    })
    .await
}

/// How many times the app answered 201 to a create of each `userName` (from its request log).
fn creates_at_the_app(sim: &Sim) -> HashMap<String, u32> {
    let mut creates: HashMap<String, u32> = HashMap::new();
    for r in sim.requests().iter().filter(|r| r.method == "POST" && r.status == Some(201)) {
        let body: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
        *creates.entry(body["userName"].as_str().unwrap_or("").to_owned()).or_default() += 1;
    }
    creates
}

/// Panics unless `scimgw status --json` shows no dead and no pending delivery.
fn assert_nothing_dead_or_pending(status: &Value) {
    for row in status.as_array().unwrap() {
        assert_eq!((row["dead"].as_u64(), row["pending"].as_u64()), (Some(0), Some(0)), "{status}");
    }
}

async fn sigkill_under_load_loses_nothing(backend: Backend) {
    let Some(db) = TestDb::on(backend) else { return };
    let rounds = env_or("SCIMGW_FAULT_ROUNDS", 5);
    let users = env_or("SCIMGW_FAULT_USERS", 800);
    let (mut rng, seed) = Rng::seeded();
    eprintln!("{backend:?}: {rounds} kills, up to {users} users each round, SCIMGW_FAULT_SEED={seed}");
    let sim = Sim::start(SimConfig::default()).unwrap();
    let gw = Gw::new(&db.config().url, &sim, "");
    let token = gw.token();
    let acks = gw.dir.path().join("acks.jsonl");
    let run_load = |acks: &Path| start_load(gw.port, &token, users, 16, acks);
    let finish = |load: std::process::Child, round: u64| async move {
        let out = tokio::task::spawn_blocking(move || load.wait_with_output()).await.unwrap().unwrap();
        assert!(out.status.success(), "round {round}: the load tool failed: {}", String::from_utf8_lossy(&out.stderr));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        report["kinds"].as_array().unwrap().iter().map(|k| k["ok"].as_u64().unwrap_or(0)).sum::<u64>()
    };

    // A first cycle without a kill measures how long one takes on this machine and engine, so that
    // the kills below fall anywhere in it: lookups, creates and the PATCH pass.
    let serve = gw.serve().await;
    let started = std::time::Instant::now();
    finish(run_load(&acks), 0).await;
    let cycle = started.elapsed();
    drop(serve);
    eprintln!("an uninterrupted cycle of {users} users takes {cycle:?}");

    for round in 1..=rounds {
        let mut serve = gw.serve().await;
        let load = run_load(&acks);
        let after = cycle.mul_f64(0.05 + 0.95 * rng.below(1000) as f64 / 1000.0);
        tokio::time::sleep(after).await;
        serve.kill();
        let ok = finish(load, round).await;
        eprintln!("round {round}: killed after {after:?}, {ok} requests answered 2xx before");
    }

    // The last start: the gateway finishes what the killed ones left.
    let mut serve = gw.serve().await;
    let acked = read_acks(&acks);
    let stored = stored_users(&gw, &token).await;
    let mut created = 0;
    let mut patched = 0;
    for ack in &acked {
        let id = ack["id"].as_str().unwrap();
        let Some((user_name, given)) = stored.get(id) else {
            panic!("an acknowledged {} of {id} is not in the store (seed {seed})", ack["op"]);
        };
        match ack["op"].as_str().unwrap() {
            "create" => {
                assert_eq!(Some(user_name.as_str()), ack["userName"].as_str(), "seed {seed}");
                created += 1;
            }
            "patch" => {
                // entra-initial patches each user once, so nothing later can have replaced it.
                assert_eq!(
                    given.as_deref(),
                    ack["givenName"].as_str(),
                    "acknowledged PATCH of {id} lost (seed {seed})"
                );
                patched += 1;
            }
            other => panic!("unknown op {other}"),
        }
    }
    assert!(created > 0, "no create was acknowledged: the kills came too early to prove anything");

    // The app converges on the store's final state: each stored user once, with its given name.
    let converged = app_converges(&sim, &stored).await;
    let status: Value = serde_json::from_str(&gw.ok(&["status", "--json"])).unwrap();
    serve.kill();
    assert!(
        converged,
        "the app holds {} users, the store {} (seed {seed}); status: {status}; log: {}",
        sim.users().len(),
        stored.len(),
        gw.log_text().lines().rev().take(20).collect::<Vec<_>>().join("\n")
    );
    let names: HashSet<String> = sim.users().iter().filter_map(|u| u["userName"].as_str().map(str::to_owned)).collect();
    assert_eq!(names.len(), sim.users().len(), "duplicate accounts at the app");
    // Created once in effect: no userName was created (201) twice at the app.
    assert!(creates_at_the_app(&sim).values().all(|&n| n == 1), "a user was created twice at the app");
    assert_nothing_dead_or_pending(&status);
    eprintln!(
        "{backend:?}: {rounds} restarts survived, {created} creates and {patched} PATCHes acknowledged, all in \
         the store; {} users stored, {} at the app, lost 0, duplicates 0",
        stored.len(),
        names.len()
    );
}

#[tokio::test]
async fn sigkill_under_load_loses_nothing_sqlite() {
    sigkill_under_load_loses_nothing(Backend::Sqlite).await;
}

#[tokio::test]
async fn sigkill_under_load_loses_nothing_postgres() {
    sigkill_under_load_loses_nothing(Backend::Postgres).await;
}

/// The dispatcher owner a `serve` log names (`dispatcher started owner=…`).
fn owner_in(log: &str) -> Option<String> {
    let line = log.lines().find(|l| l.contains("dispatcher started"))?;
    let at = line.find("owner=")? + "owner=".len();
    let owner: String = line[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
    (!owner.is_empty()).then_some(owner)
}

/// Scale-out on PostgreSQL: two gateway processes share one store and take load together; one is
/// killed mid-run. The survivor reclaims the dead one's leases when they expire, every user reaches
/// the app once, and nothing is lost.
#[tokio::test]
async fn two_gateways_share_postgresql_and_the_survivor_takes_over() {
    let Some(db) = TestDb::on(Backend::Postgres) else { return };
    let users = env_or("SCIMGW_FAULT_USERS", 800);
    let (mut rng, seed) = Rng::seeded();
    let sim = Sim::start(SimConfig::default()).unwrap();
    // Each delivery takes a while at the app, so the killed process holds leases when it dies.
    sim.set_faults(vendor_sim::Faults { latency_ms: 50, ..Default::default() }).unwrap();
    let gw = Gw::new(&db.config().url, &sim, "max_in_flight = 16");
    let token = gw.token();
    let acks = gw.dir.path().join("acks.jsonl");
    let second_port = Gw::free_port();
    let second_log = gw.dir.path().join("second.log");
    let mut first = gw.serve().await;
    let mut second = gw.serve_at(second_port, &second_log, &[]).await;
    let load = |port: u16| start_load(port, &token, users, 8, &acks);
    let on_first = load(gw.port);
    // The tool names its users after the millisecond it started: keep the two runs apart.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let on_second = load(second_port);
    let after = Duration::from_millis(1000 + rng.below(1500));
    tokio::time::sleep(after).await;
    second.kill();
    let owner = owner_in(&std::fs::read_to_string(&second_log).unwrap()).expect("the second process names its owner");
    let store = scimgw_store::Store::open(db.config()).unwrap();
    let held = |store: &scimgw_store::Store| -> Vec<String> {
        let all = store.deliveries(&scimgw_store::DeliveryFilter { limit: 1_000_000, ..Default::default() }).unwrap();
        all.into_iter()
            .filter(|d| {
                d.lease_owner.as_deref() == Some(owner.as_str()) && d.state != scimgw_store::DeliveryState::Done
            })
            .map(|d| d.id)
            .collect()
    };
    let orphaned = held(&store);
    assert!(!orphaned.is_empty(), "the killed process held no lease: nothing to prove (seed {seed})");
    for child in [on_first, on_second] {
        let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await.unwrap().unwrap();
        assert!(out.status.success(), "the load tool failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    let stored = stored_users(&gw, &token).await;
    for ack in read_acks(&acks) {
        let id = ack["id"].as_str().unwrap();
        assert!(stored.contains_key(id), "an acknowledged {} of {id} is not in the store (seed {seed})", ack["op"]);
    }
    let converged = app_converges(&sim, &stored).await;
    let status: Value = serde_json::from_str(&gw.ok(&["status", "--json"])).unwrap();
    first.kill();
    assert!(converged, "the app holds {} users, the store {} (seed {seed}); {status}", sim.users().len(), stored.len());
    let done = scimgw_store::DeliveryState::Done;
    let all = store.deliveries(&scimgw_store::DeliveryFilter { limit: 1_000_000, ..Default::default() }).unwrap();
    let reclaimed = orphaned.iter().filter(|id| all.iter().any(|d| &d.id == *id && d.state == done)).count();
    assert_eq!(reclaimed, orphaned.len(), "deliveries the dead process held were not finished");
    let creates = creates_at_the_app(&sim);
    assert!(creates.values().all(|&n| n == 1), "a user was created twice at the app");
    assert_eq!(creates.len(), stored.len());
    assert_nothing_dead_or_pending(&status);
    eprintln!(
        "two processes, the second killed after {after:?} holding {} leases: all reclaimed and done; {} users \
         stored, {} at the app, each created once (seed {seed})",
        orphaned.len(),
        stored.len(),
        sim.users().len()
    );
}
