//! `scimgw-load`: replays identity-provider provisioning traffic against a SCIM 2.0 endpoint on
//! loopback (ours or anyone's) and reports throughput, latency percentiles and errors per request
//! kind, as a table or as JSON.
//!
//! Scenarios: `create`, `filter`, `get`, `patch` (single-request workloads on users the tool creates
//! first, outside the measurement); `entra-initial` (per user: a `userName eq` lookup, then a POST;
//! then a PATCH pass); `entra-incremental` (on a populated store: PATCHes, disables and re-enables,
//! deletes); `okta` (lookup then POST per user; then GET + PUT); `group-get` (GET of one group
//! whose members are the users created first). Several comma-separated tokens
//! spread the users over that many tenants. Runs are bounded by `--requests` and `--seconds`. Only
//! loopback base URLs are accepted: this is a benchmark, not a stress test of someone's server.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::Method;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// POST /Users.
    Create,
    /// GET /Users?filter=userName eq "…" on existing users.
    Filter,
    /// GET /Users/{id}.
    Get,
    /// PATCH /Users/{id} (Entra's shape: replace of a name part).
    Patch,
    /// Entra's initial cycle: a lookup then a create per user, then a PATCH pass.
    EntraInitial,
    /// Entra's incremental cycles on a populated store: PATCHes (80 %), disables and re-enables
    /// (15 %), deletes (5 %, each user once).
    EntraIncremental,
    /// Okta: a lookup then a create per user, then a GET + PUT (full replace) pass.
    Okta,
    /// Entra-like mixed traffic on users created first: 40 % filter, 30 % GET, 20 % PATCH, 10 %
    /// POST. With `--rate`, the way to measure latency at a given load.
    Mixed,
    /// GET /healthz on the same server: no store, no authentication. The ceiling of this tool and
    /// the HTTP stack together, to read the other figures against.
    Ceiling,
    /// GET /Groups/{id} of one group whose members are the `--users` users created first (added
    /// by PATCHes of 1,000 members, as Entra batches them; not measured). Each answer is read
    /// whole: every member's `value`, `$ref`, `type` and `display`.
    GroupGet,
}

/// Load for a SCIM 2.0 endpoint on loopback.
#[derive(Debug, Parser)]
#[command(name = "scimgw-load", version, about)]
struct Args {
    /// The SCIM base URL, e.g. http://127.0.0.1:8080/scim/v2 (loopback only).
    #[arg(long)]
    base_url: String,
    /// The bearer token; several, comma-separated, spread the users over that many tenants.
    #[arg(long, env = "SCIMGW_LOAD_TOKEN", hide_env_values = true, value_delimiter = ',', required = true)]
    token: Vec<String>,
    /// What to send.
    #[arg(long, value_enum)]
    scenario: Scenario,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Requests in flight at once while creating the users of a `filter`/`get`/`patch`/`mixed`/
    /// `group-get` run (not measured); `--concurrency` when not given.
    #[arg(long)]
    setup_concurrency: Option<usize>,
    /// Users to create before a `filter`/`get`/`patch` run, or to provision in `entra-initial`.
    #[arg(long, default_value_t = 1000)]
    users: u64,
    /// Stop after this many measured requests.
    #[arg(long, default_value_t = 100_000)]
    requests: u64,
    /// Stop after this many seconds.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Open-loop pacing: start requests at this many per second in all (each at its scheduled
    /// time; latency counts from that time, so a slow server cannot hide its queueing). Meant for
    /// the single-request scenarios and `mixed`. Without it, each of `--concurrency` workers sends
    /// its next request as soon as the last one is answered.
    #[arg(long)]
    rate: Option<f64>,
    /// Threads of the tool's own runtime. One leaves the most CPU to a server on the same
    /// machine; raise it when the tool, not the server, is the limit (see `--scenario ceiling`).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// A vendor simulator the gateway delivers to, by its origin (e.g. http://127.0.0.1:9001);
    /// repeatable. After the load the tool waits for the outbox to drain, reads each simulator's
    /// request log (`/_sim/requests`) and reports the end-to-end lag from the gateway's 2xx to the
    /// simulator's first request carrying that state (a created user's email, a PATCH's new
    /// givenName). Clear the simulators' logs before a run (`DELETE /_sim/requests`).
    #[arg(long = "sim")]
    sims: Vec<String>,
    /// After the load, wait until the gateway's outbox holds no pending or failed row (read from its
    /// unauthenticated `/metrics`) and report how long that took. Implied by `--sim`.
    #[arg(long)]
    drain: bool,
    /// Give up waiting for the drain after this many seconds.
    #[arg(long, default_value_t = 300)]
    drain_timeout: u64,
    /// Append each acknowledged write to this file, one JSON object per line, when the run ends:
    /// `{"op":"create","tenant":T,"id":…,"userName":…}` for a 2xx POST and
    /// `{"op":"patch","tenant":T,"id":…,"givenName":…}` for a 2xx PATCH of the given name. The
    /// crash tests check every one of them against the store after the gateway was killed.
    #[arg(long)]
    ack_log: Option<std::path::PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Latency and outcome of one kind of request.
struct Kind {
    latency: Histogram<u64>,
    statuses: BTreeMap<u16, u64>,
    failures: u64,
}

impl Kind {
    fn new() -> anyhow::Result<Kind> {
        Ok(Kind { latency: Histogram::new_with_bounds(1, 60_000_000, 3)?, statuses: BTreeMap::new(), failures: 0 })
    }
}

/// A minimal HTTP/1.1 client: idle keep-alive connections on a stack, a new one when none is
/// idle. Each request in flight holds its own connection, so the server sees `--concurrency`
/// connections, as with wrk.
struct Http {
    addr: String,
    host: hyper::header::HeaderValue,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
}

impl Http {
    fn new(url: &reqwest::Url) -> anyhow::Result<Http> {
        let host = url.host_str().context("--base-url has no host")?;
        let port = url.port_or_known_default().context("--base-url has no port")?;
        let addr = format!("{host}:{port}");
        Ok(Http { host: hyper::header::HeaderValue::from_str(&addr)?, addr, idle: Mutex::new(Vec::new()) })
    }

    async fn connection(&self) -> anyhow::Result<SendRequest<Full<Bytes>>> {
        loop {
            let idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
            match idle {
                Some(c) if !c.is_closed() => return Ok(c),
                Some(_) => continue,
                None => break,
            }
        }
        let stream = tokio::net::TcpStream::connect(&self.addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    /// Sends one request; the status and the whole body.
    async fn send(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<String>,
    ) -> anyhow::Result<(u16, Bytes)> {
        let mut sender = self.connection().await?;
        sender.ready().await?;
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, self.host.clone())
            .header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
        if body.is_some() {
            req = req.header(hyper::header::CONTENT_TYPE, "application/scim+json");
        }
        let req = req.body(Full::new(body.map(Bytes::from).unwrap_or_default()))?;
        let resp = sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await?.to_bytes();
        self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(sender);
        Ok((status, bytes))
    }
}

/// What to send: method, path (with query) and body.
struct Req {
    method: Method,
    path: String,
    body: Option<String>,
}

struct Load {
    http: Http,
    /// With `--sim`: each acknowledged state, by a value the vendor receives with it, and when the
    /// gateway acknowledged it (µs since the epoch).
    acks: Option<Mutex<Vec<(String, u64)>>>,
    /// With `--ack-log`: each acknowledged write, as the line the log gets.
    acked: Option<Mutex<Vec<Value>>>,
    /// The base URL's path, e.g. `/scim/v2`.
    prefix: String,
    tokens: Vec<String>,
    kinds: Mutex<BTreeMap<&'static str, Kind>>,
    run: String,
}

impl Load {
    /// Sends one request and records it under `kind`; the JSON answer when it was 2xx.
    /// The tenant (token index) of user `i`.
    fn tenant_of(&self, i: u64) -> usize {
        usize::try_from(i % self.tokens.len().max(1) as u64).unwrap_or(0)
    }

    /// Sends one request and records it under `kind`. With `parse`, the 2xx answer's JSON is
    /// returned (`Value::Null` for an empty body); without, only whether it was a 2xx, so that
    /// the tool spends no CPU on bodies it does not read.
    async fn send(&self, kind: &'static str, req: Req, tenant: usize) -> Option<Value> {
        self.send_as(kind, req, tenant, true).await
    }

    async fn send_as(&self, kind: &'static str, req: Req, tenant: usize, parse: bool) -> Option<Value> {
        let started = SCHEDULED.try_with(|at| *at).unwrap_or_else(|_| Instant::now());
        let token = self.tokens.get(tenant).map_or("", String::as_str);
        let sent =
            tokio::time::timeout(Duration::from_secs(30), self.http.send(req.method, &req.path, token, req.body));
        let (status, body) = match sent.await {
            Ok(Ok((status, body))) => (Some(status), Some(body)),
            Ok(Err(_)) | Err(_) => (None, None),
        };
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX).max(1);
        let mut kinds = self.kinds.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = match kinds.entry(kind) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(v) => match Kind::new() {
                Ok(k) => v.insert(k),
                Err(_) => return None,
            },
        };
        let _ = entry.latency.record(micros.min(60_000_000));
        match status {
            Some(s) => *entry.statuses.entry(s).or_insert(0) += 1,
            None => entry.failures += 1,
        }
        drop(kinds);
        match (status, body) {
            (Some(s), Some(b)) if (200..300).contains(&s) && parse => {
                serde_json::from_slice(&b).ok().or(Some(Value::Null))
            }
            (Some(s), Some(_)) if (200..300).contains(&s) => Some(Value::Null),
            _ => None,
        }
    }

    fn user(&self, i: u64) -> Value {
        let name = self.email(i);
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            "externalId": format!("ext-{}-{i}", self.run),
            "userName": name,
            "active": true,
            "displayName": format!("Load User {i}"),
            "emails": [{"primary": true, "type": "work", "value": name}],
            "name": {"formatted": format!("Load User {i}"), "familyName": "User", "givenName": "Load"},
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Bench", "employeeNumber": format!("{i}")}
        })
    }

    fn ack(&self, marker: String) {
        if let Some(acks) = &self.acks {
            acks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((marker, now_us()));
        }
    }

    /// Records an acknowledged write for `--ack-log`.
    fn log_ack(&self, line: impl FnOnce() -> Value) {
        if let Some(acked) = &self.acked {
            acked.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(line());
        }
    }

    fn email(&self, i: u64) -> String {
        format!("load-{}-{i}@example.com", self.run)
    }

    async fn create(&self, kind: &'static str, i: u64) -> Option<(String, usize)> {
        let req =
            Req { method: Method::POST, path: format!("{}/Users", self.prefix), body: Some(self.user(i).to_string()) };
        let tenant = self.tenant_of(i);
        let created =
            self.send(kind, req, tenant).await.and_then(|v| v["id"].as_str().map(|id| (id.to_owned(), tenant)));
        if let Some((id, tenant)) = &created {
            if kind != "setup" {
                self.ack(self.email(i));
            }
            self.log_ack(|| json!({"op": "create", "tenant": tenant, "id": id, "userName": self.email(i)}));
        }
        created
    }

    async fn replace(&self, kind: &'static str, id: &str, tenant: usize, i: u64, n: u64) -> Option<Value> {
        let mut body = self.user(i);
        body["name"]["givenName"] = json!(format!("Load{n}"));
        let req =
            Req { method: Method::PUT, path: format!("{}/Users/{id}", self.prefix), body: Some(body.to_string()) };
        self.send_as(kind, req, tenant, false).await
    }

    async fn delete(&self, kind: &'static str, id: &str, tenant: usize) -> Option<Value> {
        let req = Req { method: Method::DELETE, path: format!("{}/Users/{id}", self.prefix), body: None };
        self.send_as(kind, req, tenant, false).await
    }

    async fn filter(&self, kind: &'static str, i: u64, parse: bool) -> Option<Value> {
        let filter = format!("userName eq \"load-{}-{i}@example.com\"", self.run);
        let mut url = reqwest::Url::parse("http://127.0.0.1/").ok()?;
        url.query_pairs_mut().append_pair("filter", &filter);
        let path = format!("{}/Users?{}", self.prefix, url.query().unwrap_or(""));
        self.send_as(kind, Req { method: Method::GET, path, body: None }, self.tenant_of(i), parse).await
    }

    async fn get(&self, kind: &'static str, id: &str, tenant: usize) -> Option<Value> {
        let req = Req { method: Method::GET, path: format!("{}/Users/{id}", self.prefix), body: None };
        self.send_as(kind, req, tenant, false).await
    }

    async fn patch(&self, kind: &'static str, id: &str, tenant: usize, n: u64) -> Option<Value> {
        let given = format!("Load{n}");
        let ops = json!([{"op": "Replace", "path": "name.givenName", "value": given}]);
        let done = self.patch_ops(kind, id, tenant, ops).await;
        if done.is_some() {
            self.log_ack(|| json!({"op": "patch", "tenant": tenant, "id": id, "givenName": given}));
            self.ack(given);
        }
        done
    }

    async fn patch_ops(&self, kind: &'static str, id: &str, tenant: usize, ops: Value) -> Option<Value> {
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
        let req =
            Req { method: Method::PATCH, path: format!("{}/Users/{id}", self.prefix), body: Some(body.to_string()) };
        self.send_as(kind, req, tenant, false).await
    }

    /// POST /Groups of an empty group; its id.
    async fn create_group(&self, kind: &'static str, name: &str) -> Option<String> {
        let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name});
        let req = Req { method: Method::POST, path: format!("{}/Groups", self.prefix), body: Some(body.to_string()) };
        self.send(kind, req, 0).await.and_then(|v| v["id"].as_str().map(str::to_owned))
    }

    /// PATCH /Groups/{id} adding `ids` as members, in Entra's shape.
    async fn add_members(&self, kind: &'static str, group: &str, ids: &[&str]) -> Option<Value> {
        let members: Vec<Value> = ids.iter().map(|id| json!({"value": id})).collect();
        let body = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "Add", "path": "members", "value": members}]
        });
        let req = Req {
            method: Method::PATCH,
            path: format!("{}/Groups/{group}", self.prefix),
            body: Some(body.to_string()),
        };
        self.send_as(kind, req, 0, false).await
    }

    async fn get_group(&self, kind: &'static str, group: &str) -> Option<Value> {
        let req = Req { method: Method::GET, path: format!("{}/Groups/{group}", self.prefix), body: None };
        self.send_as(kind, req, 0, false).await
    }

    /// GET /healthz at the base URL's origin.
    async fn healthz(&self, kind: &'static str) -> Option<Value> {
        self.send_as(kind, Req { method: Method::GET, path: "/healthz".into(), body: None }, 0, false).await
    }
}

/// A group of the first tenant whose members are that tenant's users among `ids`, added 1,000
/// per PATCH; its id.
async fn group_of(load: &Load, ids: &[(String, usize)]) -> anyhow::Result<String> {
    let members: Vec<&str> = ids.iter().filter(|(_, t)| *t == 0).map(|(id, _)| id.as_str()).collect();
    eprintln!("creating a group of {} members (not measured)…", members.len());
    let group = load.create_group("setup", &format!("load-{}", load.run)).await.context("creating the group")?;
    for chunk in members.chunks(1000) {
        load.add_members("setup", &group, chunk).await.context("adding members to the group")?;
    }
    Ok(group)
}

/// Runs `work(n)` for n = 0, 1, … on `concurrency` tasks until `requests` or `deadline`.
/// The first pass of Entra's and Okta's cycles: per user a `userName eq` lookup, then a POST when
/// it found nothing. The users created, each with the number it was made from.
async fn lookup_then_create(
    load: &Arc<Load>,
    concurrency: usize,
    users: u64,
    deadline: Instant,
) -> (Vec<((String, usize), u64)>, u64, Duration) {
    let created = Arc::new(Mutex::new(Vec::new()));
    let (l, c) = (load.clone(), created.clone());
    let (done, took) = drive(concurrency, users, deadline, move |n| {
        let (l, c) = (l.clone(), c.clone());
        async move {
            if let Some(found) = l.filter("GET /Users?filter", n, true).await {
                if found["totalResults"] == 0 {
                    if let Some(id) = l.create("POST /Users", n).await {
                        c.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((id, n));
                    }
                }
            }
        }
    })
    .await;
    let created = std::mem::take(&mut *created.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    (created, done, took)
}

/// `--rate`, set once at start.
static RATE: std::sync::OnceLock<Option<f64>> = std::sync::OnceLock::new();

tokio::task_local! {
    /// When the current request was scheduled to start (`--rate`); latency counts from then.
    static SCHEDULED: Instant;
}

async fn drive<F, Fut>(concurrency: usize, requests: u64, deadline: Instant, work: F) -> (u64, Duration)
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let next = Arc::new(AtomicU64::new(0));
    let work = Arc::new(work);
    let started = Instant::now();
    let rate = RATE.get().copied().flatten().filter(|r| *r > 0.0);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (next, work) = (next.clone(), work.clone());
        tasks.spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= requests || Instant::now() >= deadline {
                    break;
                }
                match rate {
                    Some(rate) => {
                        let at = started + Duration::from_secs_f64(n as f64 / rate);
                        if at >= deadline {
                            break;
                        }
                        tokio::time::sleep_until(at.into()).await;
                        SCHEDULED.scope(at, work(n)).await;
                    }
                    None => work(n).await,
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let done = next.load(Ordering::Relaxed).min(requests);
    (done, started.elapsed())
}

fn check_loopback(url: &str) -> anyhow::Result<()> {
    let parsed = reqwest::Url::parse(url).context("--base-url is not a URL")?;
    match parsed.host_str() {
        Some("127.0.0.1" | "localhost" | "[::1]" | "::1") => Ok(()),
        other => bail!("--base-url must be on loopback (127.0.0.1, localhost, ::1), not {other:?}"),
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(args.threads).enable_all().build()
    }
    .context("starting the runtime")?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    check_loopback(&args.base_url)?;
    let base = reqwest::Url::parse(&args.base_url).context("--base-url is not a URL")?;
    if base.scheme() != "http" {
        bail!("--base-url must be http:// (the tool speaks plain HTTP/1.1 on loopback)");
    }
    let http = Http::new(&base)?;
    let run = format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis());
    let load = Arc::new(Load {
        http,
        acks: (!args.sims.is_empty()).then(|| Mutex::new(Vec::new())),
        acked: args.ack_log.is_some().then(|| Mutex::new(Vec::new())),
        prefix: base.path().trim_end_matches('/').to_owned(),
        tokens: args.token.clone(),
        kinds: Mutex::new(BTreeMap::new()),
        run,
    });
    let mut ids: Vec<(String, usize)> = Vec::new();
    let mut group: Option<String> = None;
    let _ = RATE.set(args.rate);
    if matches!(
        args.scenario,
        Scenario::Filter
            | Scenario::Get
            | Scenario::Patch
            | Scenario::EntraIncremental
            | Scenario::Mixed
            | Scenario::GroupGet
    ) {
        eprintln!("creating {} users (not measured)…", args.users);
        let created = Arc::new(Mutex::new(Vec::new()));
        let (l, c) = (load.clone(), created.clone());
        let setup = args.setup_concurrency.unwrap_or(args.concurrency);
        drive(setup, args.users, Instant::now() + Duration::from_secs(3600), move |n| {
            let (l, c) = (l.clone(), c.clone());
            async move {
                if let Some(id) = l.create("setup", n).await {
                    c.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(id);
                }
            }
        })
        .await;
        ids = std::mem::take(&mut *created.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        if ids.is_empty() {
            bail!("no user could be created: check the URL and the token(s)");
        }
        if args.scenario == Scenario::GroupGet {
            group = Some(group_of(&load, &ids).await?);
        }
        load.kinds.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }
    let ids = Arc::new(ids);
    let users = args.users.max(1);
    // The measured part starts now: set-up is not counted against --seconds.
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let (done, elapsed) = match args.scenario {
        Scenario::GroupGet => {
            let (l, group) = (load.clone(), Arc::new(group.unwrap_or_default()));
            drive(args.concurrency, args.requests, deadline, move |_| {
                let (l, group) = (l.clone(), group.clone());
                async move {
                    l.get_group("GET /Groups/{id}", &group).await;
                }
            })
            .await
        }
        Scenario::Ceiling => {
            let l = load.clone();
            drive(args.concurrency, args.requests, deadline, move |_| {
                let l = l.clone();
                async move {
                    l.healthz("GET /healthz").await;
                }
            })
            .await
        }
        Scenario::Create => {
            let l = load.clone();
            drive(args.concurrency, args.requests, deadline, move |n| {
                let l = l.clone();
                async move {
                    l.create("POST /Users", 1_000_000 + n).await;
                }
            })
            .await
        }
        Scenario::Filter => {
            let l = load.clone();
            drive(args.concurrency, args.requests, deadline, move |n| {
                let l = l.clone();
                async move {
                    l.filter("GET /Users?filter", n % users, false).await;
                }
            })
            .await
        }
        Scenario::Mixed => {
            let (l, ids2) = (load.clone(), ids.clone());
            drive(args.concurrency, args.requests, deadline, move |n| {
                let (l, ids) = (l.clone(), ids2.clone());
                async move {
                    let (id, tenant) = &ids[usize::try_from(n % ids.len() as u64).unwrap_or(0)];
                    match n % 10 {
                        0 => {
                            l.create("POST /Users", 2_000_000 + n).await;
                        }
                        1 | 2 => {
                            l.patch("PATCH /Users/{id}", id, *tenant, n).await;
                        }
                        3..=6 => {
                            l.filter("GET /Users?filter", n % users, false).await;
                        }
                        _ => {
                            l.get("GET /Users/{id}", id, *tenant).await;
                        }
                    }
                }
            })
            .await
        }
        Scenario::Get | Scenario::Patch => {
            let (l, ids2) = (load.clone(), ids.clone());
            let patch = args.scenario == Scenario::Patch;
            drive(args.concurrency, args.requests, deadline, move |n| {
                let (l, ids) = (l.clone(), ids2.clone());
                async move {
                    let idx = usize::try_from(n % ids.len() as u64).unwrap_or(0);
                    let (id, tenant) = &ids[idx];
                    if patch {
                        l.patch("PATCH /Users/{id}", id, *tenant, n).await;
                    } else {
                        l.get("GET /Users/{id}", id, *tenant).await;
                    }
                }
            })
            .await
        }
        Scenario::EntraInitial => {
            let (created, a, t1) = lookup_then_create(&load, args.concurrency, users, deadline).await;
            let ids: Arc<Vec<(String, usize)>> = Arc::new(created.into_iter().map(|(id, _)| id).collect());
            let (l, ids2) = (load.clone(), ids.clone());
            let count = ids.len() as u64;
            let (b, t2) = drive(args.concurrency, count, deadline, move |n| {
                let (l, ids) = (l.clone(), ids2.clone());
                async move {
                    let idx = usize::try_from(n).unwrap_or(0);
                    if let Some(id) = ids.get(idx) {
                        l.patch("PATCH /Users/{id}", &id.0, id.1, n).await;
                    }
                }
            })
            .await;
            (a + b, t1 + t2)
        }
        Scenario::EntraIncremental => {
            // The last twentieth of the users are deleted, each once; the rest are patched and
            // toggled.
            let deletable = (ids.len() / 20).max(1).min(ids.len());
            let keep = ids.len() - deletable;
            let deleted = Arc::new(AtomicU64::new(0));
            let (l, ids2) = (load.clone(), ids.clone());
            drive(args.concurrency, args.requests, deadline, move |n| {
                let (l, ids, deleted) = (l.clone(), ids2.clone(), deleted.clone());
                async move {
                    let pick = |m: u64| usize::try_from(m % keep.max(1) as u64).unwrap_or(0);
                    match n % 20 {
                        0 => {
                            let d = usize::try_from(deleted.fetch_add(1, Ordering::Relaxed)).unwrap_or(usize::MAX);
                            if let Some((id, tenant)) = ids.get(keep + d).filter(|_| d < deletable) {
                                l.delete("DELETE /Users/{id}", id, *tenant).await;
                            } else if let Some((id, tenant)) = ids.get(pick(n)) {
                                l.patch("PATCH /Users/{id}", id, *tenant, n).await;
                            }
                        }
                        1..=3 => {
                            if let Some((id, tenant)) = ids.get(pick(n)) {
                                let active = n % 2 == 0;
                                let ops = json!([{"op": "Replace", "path": "active", "value": if active { "True" } else { "False" }}]);
                                l.patch_ops("PATCH active", id, *tenant, ops).await;
                            }
                        }
                        _ => {
                            if let Some((id, tenant)) = ids.get(pick(n)) {
                                l.patch("PATCH /Users/{id}", id, *tenant, n).await;
                            }
                        }
                    }
                }
            })
            .await
        }
        Scenario::Okta => {
            let (created, a, t1) = lookup_then_create(&load, args.concurrency, users, deadline).await;
            let ids = Arc::new(created);
            let (l, ids2) = (load.clone(), ids.clone());
            let count = ids.len() as u64;
            let (b, t2) = drive(args.concurrency, count, deadline, move |n| {
                let (l, ids) = (l.clone(), ids2.clone());
                async move {
                    if let Some(((id, tenant), i)) = ids.get(usize::try_from(n).unwrap_or(usize::MAX)) {
                        l.get("GET /Users/{id}", id, *tenant).await;
                        l.replace("PUT /Users/{id}", id, *tenant, *i, n).await;
                    }
                }
            })
            .await;
            (a + b, t1 + t2)
        }
    };
    if let (Some(path), Some(acked)) = (&args.ack_log, &load.acked) {
        write_ack_log(path, &acked.lock().unwrap_or_else(std::sync::PoisonError::into_inner))?;
    }
    let delivery = if args.drain || !args.sims.is_empty() { Some(delivery_report(&load, &args).await?) } else { None };
    report(&load, &args, done, elapsed, delivery).await
}

/// Appends `lines` to the `--ack-log` file, one JSON object per line.
fn write_ack_log(path: &std::path::Path, lines: &[Value]) -> anyhow::Result<()> {
    use std::io::Write;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open --ack-log {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    for line in lines {
        writeln!(out, "{line}")?;
    }
    out.flush().with_context(|| format!("cannot write --ack-log {}", path.display()))?;
    Ok(())
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Waits for the outbox to drain, then measures the end-to-end lag at each simulator.
async fn delivery_report(load: &Load, args: &Args) -> anyhow::Result<Value> {
    let stopped = Instant::now();
    let deadline = stopped + Duration::from_secs(args.drain_timeout);
    let mut last_seen = None;
    let drained = loop {
        if let Ok((200, body)) = load.http.send(Method::GET, "/metrics", "", None).await {
            let open = outbox_open_rows(&String::from_utf8_lossy(&body));
            last_seen = Some(open);
            if open == 0 {
                break true;
            }
        }
        if Instant::now() >= deadline {
            break false;
        }
        // Every scrape counts the open outbox rows, a scan of an index over the whole backlog
        // (~80 ms at 240,000 rows): polled every 50 ms, the tool itself slowed the drain it timed.
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let drain_seconds = stopped.elapsed().as_secs_f64();
    let acks = match &load.acks {
        Some(a) => std::mem::take(&mut *a.lock().unwrap_or_else(std::sync::PoisonError::into_inner)),
        None => Vec::new(),
    };
    let mut sims = Vec::new();
    for sim in &args.sims {
        check_loopback(sim)?;
        let http = Http::new(&reqwest::Url::parse(sim).context("--sim is not a URL")?)?;
        let (status, body) = http.send(Method::GET, "/_sim/requests", "", None).await?;
        if status != 200 {
            bail!("{sim}/_sim/requests answered {status}");
        }
        let log: Value = serde_json::from_slice(&body).context("the simulator's request log is not JSON")?;
        // Every string value a successful write carried, with when the simulator first saw it.
        let mut first_seen: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
        let mut requests = 0u64;
        for entry in log.as_array().map(Vec::as_slice).unwrap_or_default() {
            requests += 1;
            let ok = entry["status"].as_u64().is_some_and(|s| (200..300).contains(&s));
            let at = entry["time_us"].as_u64().unwrap_or(0);
            if ok && entry["method"] != "GET" {
                strings_of(&entry["body"], &mut |s| {
                    first_seen.entry(s.to_owned()).and_modify(|t| *t = (*t).min(at)).or_insert(at);
                });
            }
        }
        let mut lag = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
        let mut missing = 0u64;
        for (marker, acked) in &acks {
            match first_seen.get(marker) {
                Some(seen) => {
                    let _ = lag.record(seen.saturating_sub(*acked).clamp(1, 600_000_000));
                }
                None => missing += 1,
            }
        }
        sims.push(json!({
            "sim": sim,
            "requests": requests,
            "matched": lag.len(),
            "missing": missing,
            "lag_p50_ms": lag.value_at_quantile(0.50) as f64 / 1000.0,
            "lag_p99_ms": lag.value_at_quantile(0.99) as f64 / 1000.0,
            "lag_max_ms": lag.max() as f64 / 1000.0,
        }));
    }
    Ok(json!({
        "drained": drained,
        "drain_seconds": drain_seconds,
        "open_rows_at_end": last_seen,
        "acknowledged_states": acks.len(),
        "sims": sims,
    }))
}

/// The outbox rows still to deliver, from the gateway's Prometheus text: the `pending` and
/// `failed` series of `scimgw_outbox_rows`.
fn outbox_open_rows(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("scimgw_outbox_rows{"))
        .filter(|l| l.contains("state=\"pending\"") || l.contains("state=\"failed\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v.max(0.0) as u64)
        .sum()
}

fn strings_of(v: &Value, f: &mut impl FnMut(&str)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(a) => a.iter().for_each(|x| strings_of(x, f)),
        Value::Object(o) => o.values().for_each(|x| strings_of(x, f)),
        _ => {}
    }
}

async fn report(load: &Load, args: &Args, done: u64, elapsed: Duration, delivery: Option<Value>) -> anyhow::Result<()> {
    let kinds = load.kinds.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let secs = elapsed.as_secs_f64().max(1e-9);
    let mut rows = Vec::new();
    for (name, k) in kinds.iter() {
        let count = k.latency.len();
        let ok: u64 = k.statuses.iter().filter(|(s, _)| (200..300).contains(*s)).map(|(_, n)| n).sum();
        let errors: BTreeMap<String, u64> = k
            .statuses
            .iter()
            .filter(|(s, _)| !(200..300).contains(*s))
            .map(|(s, n)| (s.to_string(), *n))
            .chain((k.failures > 0).then(|| ("transport".to_owned(), k.failures)))
            .collect();
        rows.push(json!({
            "kind": name,
            "requests": count,
            "ok": ok,
            "per_second": (count as f64 / secs).round(),
            "p50_ms": k.latency.value_at_quantile(0.50) as f64 / 1000.0,
            "p99_ms": k.latency.value_at_quantile(0.99) as f64 / 1000.0,
            "p999_ms": k.latency.value_at_quantile(0.999) as f64 / 1000.0,
            "max_ms": k.latency.max() as f64 / 1000.0,
            "errors": errors,
        }));
    }
    let summary = json!({
        "scenario": format!("{:?}", args.scenario),
        "concurrency": args.concurrency,
        "rate": args.rate,
        "seconds": secs,
        "work_items": done,
        "kinds": rows,
        "delivery": delivery,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }
    match args.rate {
        Some(rate) => println!(
            "scenario {:?}, concurrency {}, paced at {rate} req/s, {:.1} s",
            args.scenario, args.concurrency, secs
        ),
        None => println!("scenario {:?}, concurrency {}, {:.1} s", args.scenario, args.concurrency, secs),
    }
    println!(
        "{:<22} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}  errors",
        "kind", "requests", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms"
    );
    for r in &rows {
        println!(
            "{:<22} {:>9} {:>9.0} {:>9.2} {:>9.2} {:>9.2} {:>9.2}  {}",
            r["kind"].as_str().unwrap_or(""),
            r["requests"].as_u64().unwrap_or(0),
            r["per_second"].as_f64().unwrap_or(0.0),
            r["p50_ms"].as_f64().unwrap_or(0.0),
            r["p99_ms"].as_f64().unwrap_or(0.0),
            r["p999_ms"].as_f64().unwrap_or(0.0),
            r["max_ms"].as_f64().unwrap_or(0.0),
            r["errors"]
        );
    }
    if let Some(d) = summary["delivery"].as_object() {
        println!(
            "outbox {} {:.1} s after the load stopped; {} acknowledged states",
            if d["drained"] == true { "drained" } else { "NOT drained" },
            d["drain_seconds"].as_f64().unwrap_or(0.0),
            d["acknowledged_states"]
        );
        for s in d["sims"].as_array().map(Vec::as_slice).unwrap_or_default() {
            println!(
                "  {}: end-to-end lag p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {} matched, {} missing",
                s["sim"].as_str().unwrap_or(""),
                s["lag_p50_ms"].as_f64().unwrap_or(0.0),
                s["lag_p99_ms"].as_f64().unwrap_or(0.0),
                s["lag_max_ms"].as_f64().unwrap_or(0.0),
                s["matched"],
                s["missing"]
            );
        }
    }
    Ok(())
}
