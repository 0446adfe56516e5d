//! `scimgw-hostile`: the worst requests of at most 1 MiB that one tenant can send (RELIABILITY.md,
//! "Hostile input"), each sent a few times in a row while another tenant creates users at a
//! steady pace; reports each attack's answers and time, and the other tenant's write latency
//! before and during it. Loopback only; every phase stops by itself. Not a test: the figures are
//! what `bench/hostile.sh` prints for bench/RESULTS.md.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::{Value, json};
use tokio::sync::Mutex;

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// The gateway's default `max_body_bytes`.
const MIB: usize = 1 << 20;

/// Hostile requests against a SCIM endpoint on loopback, and another tenant's latency meanwhile.
#[derive(Debug, Parser)]
#[command(name = "scimgw-hostile", version, about)]
struct Args {
    /// The SCIM base URL, e.g. http://127.0.0.1:8080/scim/v2 (loopback only).
    #[arg(long)]
    base_url: String,
    /// The attacking tenant's bearer token.
    #[arg(long, env = "SCIMGW_HOSTILE_TOKEN", hide_env_values = true)]
    token: String,
    /// The other tenant's bearer token.
    #[arg(long, env = "SCIMGW_VICTIM_TOKEN", hide_env_values = true)]
    victim_token: String,
    /// Times each attack is sent, one after the other.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Members of the group the group attacks work on (users created first, not measured).
    #[arg(long, default_value_t = 10_000)]
    members: usize,
    /// Only the attacks whose name contains this.
    #[arg(long)]
    only: Option<String>,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let host = args.base_url.split("://").nth(1).and_then(|r| r.split(['/', ':']).next()).unwrap_or("");
    if !matches!(host, "127.0.0.1" | "localhost" | "[" | "[::1]") {
        bail!("only loopback base URLs are accepted");
    }
    let client = reqwest::Client::builder().timeout(Duration::from_secs(120)).build()?;
    let api = Api { client, base: args.base_url.trim_end_matches('/').to_owned() };

    // Set-up (not measured): a user with 1,000 emails, users to be members, a group of them.
    eprintln!("setting up: {} users and a group of them", args.members);
    let target = api.create_user(&args.token, "target", emails(1000, "t")).await?;
    let mut ids = Vec::with_capacity(args.members);
    for chunk in (0..args.members).collect::<Vec<_>>().chunks(32) {
        let mut set = tokio::task::JoinSet::new();
        for &i in chunk {
            let (api, token) = (api.clone(), args.token.clone());
            set.spawn(async move { api.create_user(&token, &format!("m{i}"), Vec::new()).await });
        }
        while let Some(made) = set.join_next().await {
            ids.push(made??);
        }
    }
    let group = api.create_group(&args.token, &ids).await?;

    let attacks = attacks(&target, &group, &ids);
    let victim = Victim::start(api.clone(), args.victim_token.clone());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let baseline = victim.take().await;
    println!("other tenant's POST /Users alone:  {}", baseline.summary());
    println!();
    println!(
        "| attack | body | answers | attack time each (ms) | other tenant's POST during it: p50 / p99 / max (ms), count |"
    );
    println!("|---|---|---|---|---|");
    for attack in attacks {
        if args.only.as_deref().is_some_and(|o| !attack.name.contains(o)) {
            continue;
        }
        let body = serde_json::to_vec(&attack.body)?;
        if body.len() > MIB {
            bail!("{}: the body is {} bytes, over 1 MiB", attack.name, body.len());
        }
        victim.take().await;
        let mut times = Vec::new();
        let mut answers = Vec::new();
        for _ in 0..args.repeat {
            let t = Instant::now();
            let status = api.send(attack.method.clone(), &args.token, &attack.path, &body).await?;
            times.push(t.elapsed().as_millis());
            answers.push(status.to_string());
        }
        let during = victim.take().await;
        answers.dedup();
        println!(
            "| {} | {} KiB | {} | {} | {} |",
            attack.name,
            body.len() / 1024,
            answers.join(", "),
            times.iter().map(u128::to_string).collect::<Vec<_>>().join(", "),
            during.summary()
        );
        // Let the writer settle between attacks.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    victim.stop();
    Ok(())
}

struct Attack {
    name: &'static str,
    method: reqwest::Method,
    path: String,
    body: Value,
}

/// The worst bodies under 1 MiB for each hostile shape we know of.
fn attacks(target: &str, group: &str, members: &[String]) -> Vec<Attack> {
    let patch = |path: String, name, ops: Value| Attack {
        name,
        method: reqwest::Method::PATCH,
        path,
        body: json!({"schemas": [PATCH], "Operations": ops}),
    };
    let user = format!("/Users/{target}");
    let group_path = format!("/Groups/{group}");
    // As many short emails as fit (about 40,000): each compared with all before it, before.
    let fit = |make: &dyn Fn(usize) -> Value, overhead: usize| {
        // The longest element (five-digit indexes) and its comma.
        let one = make(99_999).to_string().len() + 1;
        let n = (MIB - overhead) / one;
        (0..n).map(make).collect::<Vec<_>>()
    };
    let short_email = |i: usize| json!({"value": format!("{i}@x")});
    let typed_email = |i: usize| json!({"type": "work", "value": format!("{i}@x")});
    // 1,000 operations (the limit), each a value filter over the user's 1,000 emails.
    let filtered_ops: Vec<Value> = (0..1000)
        .map(|i| json!({"op": "replace", "path": format!("emails[value eq \"t{i}@x\"].display"), "value": format!("d{i}")}))
        .collect();
    // 1,000 operations, each a filter over every member (the general path), matching none.
    let member_scans: Vec<Value> =
        (0..1000).map(|i| json!({"op": "remove", "path": format!("members[value sw \"zz{i}\"]")})).collect();
    // Existing ids as members, again and again: the existence check matched each with all.
    let member_ids: Vec<Value> =
        fit(&|i| json!({"value": members[i % members.len()]}), 200).into_iter().take(members.len()).collect();
    vec![
        patch(
            user.clone(),
            "PATCH add of ~40,000 emails",
            json!([{"op": "add", "path": "emails", "value": fit(&short_email, 200)}]),
        ),
        Attack {
            name: "POST of a user with ~30,000 typed emails",
            method: reqwest::Method::POST,
            path: "/Users".into(),
            body: json!({"schemas": [USER], "userName": "big", "emails": fit(&typed_email, 200)}),
        },
        patch(user, "PATCH of 1,000 value-filter operations on 1,000 emails", json!(filtered_ops)),
        patch(group_path.clone(), "group PATCH: 1,000 filters over every member (general path)", json!(member_scans)),
        patch(
            group_path,
            "group PATCH add of every existing member again",
            json!([{"op": "add", "path": "members", "value": member_ids}]),
        ),
    ]
}

fn emails(n: usize, prefix: &str) -> Vec<Value> {
    (0..n).map(|i| json!({"type": "work", "value": format!("{prefix}{i}@x")})).collect()
}

#[derive(Clone)]
struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    async fn send(&self, method: reqwest::Method, token: &str, path: &str, body: &[u8]) -> anyhow::Result<u16> {
        let res = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("content-type", "application/scim+json")
            .body(body.to_vec())
            .send()
            .await?;
        let status = res.status().as_u16();
        res.bytes().await?;
        Ok(status)
    }

    async fn create(&self, token: &str, path: &str, body: Value) -> anyhow::Result<String> {
        let res = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("content-type", "application/scim+json")
            .body(body.to_string())
            .send()
            .await?;
        let status = res.status();
        let body: Value = res.json().await?;
        if status.as_u16() != 201 {
            bail!("set-up: POST {path} answered {status}: {body}");
        }
        body["id"].as_str().map(str::to_owned).context("no id in a 201")
    }

    async fn create_user(&self, token: &str, name: &str, emails: Vec<Value>) -> anyhow::Result<String> {
        self.create(token, "/Users", json!({"schemas": [USER], "userName": name, "emails": emails})).await
    }

    async fn create_group(&self, token: &str, members: &[String]) -> anyhow::Result<String> {
        let members: Vec<Value> = members.iter().map(|id| json!({"value": id})).collect();
        self.create(token, "/Groups", json!({"schemas": [GROUP], "displayName": "hostile", "members": members})).await
    }
}

/// The other tenant: four workers, each creating a user every 40 ms (100 writes/s in all).
struct Victim {
    latencies: Arc<Mutex<Vec<Duration>>>,
    stop: Arc<AtomicBool>,
}

impl Victim {
    fn start(api: Api, token: String) -> Self {
        let latencies = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        for w in 0..4 {
            let (api, token, latencies, stop) = (api.clone(), token.clone(), latencies.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let t = Instant::now();
                    let body = json!({"schemas": [USER], "userName": format!("v{w}.{n}")});
                    if api.create(&token, "/Users", body).await.is_ok() {
                        latencies.lock().await.push(t.elapsed());
                    }
                    tokio::time::sleep(Duration::from_millis(40).saturating_sub(t.elapsed())).await;
                }
            });
        }
        Self { latencies, stop }
    }

    /// The latencies recorded since the last call.
    async fn take(&self) -> Stats {
        Stats(std::mem::take(&mut *self.latencies.lock().await))
    }

    fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

struct Stats(Vec<Duration>);

impl Stats {
    fn summary(mut self) -> String {
        if self.0.is_empty() {
            return "none completed".into();
        }
        self.0.sort();
        let at = |q: f64| self.0[((self.0.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0;
        format!("{:.1} / {:.1} / {:.1}, {}", at(0.5), at(0.99), at(1.0), self.0.len())
    }
}
