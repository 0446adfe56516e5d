//! `/healthz` and `/readyz` over HTTP, including "not ready" when PostgreSQL goes away: the
//! gateway reaches PostgreSQL through a loopback TCP proxy that the test cuts.

#![cfg(test)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use scimgw_delivery::Targets;
use scimgw_e2e::TestApp;
use scimgw_store::testing::{TestDb, postgres_url};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

async fn healthz_and_readyz_answer_without_a_token(app: TestApp) {
    let health = app.client.get(format!("{}/healthz", app.origin)).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = app.client.get(format!("{}/readyz", app.origin)).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["store"], "ok");
    assert_eq!(body["checks"]["migrations"], "current");
    assert!(body["checks"].get("dispatcher").is_none(), "no dispatcher in this process, so none checked");
}
scimgw_e2e::both_backends!(healthz_and_readyz_answer_without_a_token);

/// A TCP proxy to `upstream` on a free loopback port, on its own thread and runtime (the test's
/// runtime blocks while the store opens). [`Proxy::set_down`] plays the database stopping: every
/// proxied connection is cut and the port is closed, so new connections are refused as a stopped
/// server's are, until it is set up again and the port opens anew. Dropping the proxy stops it.
struct Proxy {
    port: u16,
    up: watch::Sender<bool>,
    stalled: watch::Sender<bool>,
    _stop: std::sync::mpsc::Sender<()>,
}

impl Proxy {
    fn start(upstream: String) -> Proxy {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let port = std_listener.local_addr().unwrap().port();
        let (up, _) = watch::channel(true);
        let (stalled, _) = watch::channel(false);
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let state = up.clone();
        let stall = stalled.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
            rt.spawn(async move {
                let mut first = Some(TcpListener::from_std(std_listener).unwrap());
                let mut is_up = state.subscribe();
                let mut conns = JoinSet::new();
                loop {
                    let listener = match first.take() {
                        Some(l) => l,
                        None => loop {
                            // The port was just closed: bind it again (SO_REUSEADDR is set).
                            match TcpListener::bind(("127.0.0.1", port)).await {
                                Ok(l) => break l,
                                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                            }
                        },
                    };
                    loop {
                        tokio::select! {
                            accepted = listener.accept() => {
                                let Ok((mut inbound, _)) = accepted else { continue };
                                let upstream = upstream.clone();
                                let mut cut = state.subscribe();
                                let mut stalled = stall.subscribe();
                                conns.spawn(async move {
                                    if *stalled.borrow() {
                                        // Accepted, never answered; closed when the stall ends.
                                        let _ = stalled.wait_for(|s| !*s).await;
                                        return;
                                    }
                                    if let Ok(mut out) = TcpStream::connect(upstream).await {
                                        let hold = tokio::select! {
                                            _ = tokio::io::copy_bidirectional(&mut inbound, &mut out) => false,
                                            _ = async { let _ = cut.wait_for(|up| !*up).await; } => false,
                                            _ = async { let _ = stalled.wait_for(|s| *s).await; } => true,
                                        };
                                        if hold {
                                            // Both sockets stay open and nothing is passed on.
                                            let _ = stalled.wait_for(|s| !*s).await;
                                        }
                                    }
                                });
                            }
                            _ = is_up.wait_for(|up| !*up) => break,
                        }
                    }
                    drop(listener);
                    let _ = is_up.wait_for(|up| *up).await;
                }
            });
            let _ = stopped.recv();
            rt.shutdown_background();
        });
        Proxy { port, up, stalled, _stop: stop }
    }

    fn set_down(&self, down: bool) {
        self.up.send_replace(!down);
    }

    /// Plays a server that still accepts connections and stops answering (a hung host, a
    /// stopped process behind a live kernel): the port stays open, new connections are accepted
    /// and never answered, open ones stay open and nothing passes. Ending the stall closes them all,
    /// as a server restarted would.
    fn set_stalled(&self, stalled: bool) {
        self.stalled.send_replace(stalled);
    }
}

/// A store on PostgreSQL reached through `proxy`, with a connection timeout of `timeout_secs`.
fn db_via(proxy: &Proxy, timeout_secs: u64) -> TestDb {
    db_via_with(proxy, timeout_secs, |_| {})
}

fn db_via_with(proxy: &Proxy, timeout_secs: u64, adjust: impl FnOnce(&mut scimgw_store::StoreConfig)) -> TestDb {
    TestDb::postgres_with(|c| {
        c.url = c.url.replacen("127.0.0.1:5432", &format!("127.0.0.1:{}", proxy.port), 1);
        c.connect_timeout_secs = timeout_secs;
        adjust(c);
    })
    .unwrap()
}

/// A PostgreSQL server that accepts connections and then never answers: every request, and
/// `/readyz`, is answered 503 within `statement_timeout_ms` + `connect_timeout_secs` (here 1 s + 1 s),
/// also when more requests wait than the pool has connections; the gateway serves again by itself
/// once the server answers. Without the store's deadline the requests never ended.
#[actix_web::test]
async fn a_postgresql_server_that_stops_answering_costs_a_503_within_the_deadline() {
    let Some(base) = postgres_url() else {
        eprintln!("SKIPPED (set SCIMGW_TEST_DATABASE_URL): a_postgresql_server_that_stops_answering_costs_a_503");
        return;
    };
    assert!(base.contains("127.0.0.1:5432"), "the test expects PostgreSQL at 127.0.0.1:5432");
    let proxy = Proxy::start("127.0.0.1:5432".into());
    let db = db_via_with(&proxy, 1, |c| c.statement_timeout_ms = 1000);
    let app = TestApp::spawn_on(db, |_| {}, Arc::new(Targets::default()), Arc::new(tokio::sync::Notify::new())).await;
    let token = app.token("acme");
    let user =
        |name: &str| serde_json::json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name});
    let id = app.post(&token, "/Users", &user("before@example.com")).await.id();

    proxy.set_stalled(true);
    let bound = Duration::from_millis(2000 + 1500);
    let app = Arc::new(app);
    // Twelve at once (the pool has four connections), then one more of each kind.
    let mut asked = JoinSet::new();
    for i in 0..12 {
        let (app, token, body) = (app.clone(), token.clone(), user(&format!("during{i}@example.com")));
        asked.spawn_local(async move {
            let started = Instant::now();
            let r = tokio::time::timeout(Duration::from_secs(30), app.post(&token, "/Users", &body)).await;
            (
                started.elapsed(),
                r.map(|r| (r.status.as_u16(), r.body.clone(), r.header("retry-after").map(str::to_owned))),
            )
        });
    }
    let mut slowest = Duration::ZERO;
    while let Some(done) = asked.join_next().await {
        let (took, answer) = done.unwrap();
        slowest = slowest.max(took);
        let Ok((status, body, retry_after)) = answer else { panic!("a POST got no answer within 30 s") };
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["status"], "503", "{body}");
        assert!(retry_after.is_some(), "a 503 says when to retry");
        assert!(took < bound, "a POST was answered after {took:?}");
    }
    let started = Instant::now();
    let got = tokio::time::timeout(Duration::from_secs(30), app.get(&token, &format!("/Users/{id}"))).await;
    assert_eq!(got.map(|r| r.status.as_u16()).ok(), Some(503));
    assert!(started.elapsed() < bound, "a GET was answered after {:?}", started.elapsed());
    let started = Instant::now();
    let ready =
        tokio::time::timeout(Duration::from_secs(30), app.client.get(format!("{}/readyz", app.origin)).send()).await;
    assert_eq!(ready.ok().and_then(Result::ok).map(|r| r.status().as_u16()), Some(503));
    assert!(started.elapsed() < bound, "/readyz was answered after {:?}", started.elapsed());

    proxy.set_stalled(false);
    let back = Instant::now();
    let mut served = false;
    while back.elapsed() < Duration::from_secs(20) {
        let r = app.post(&token, "/Users", &user(&format!("after-{}@example.com", back.elapsed().as_millis()))).await;
        if r.status == 201 {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served, "the gateway did not serve again within 20 s of the server answering");
    eprintln!(
        "stalled PostgreSQL: 12 concurrent POSTs all 503, slowest {slowest:?} (deadline 2 s); serving again {:?} \
         after the stall ended",
        back.elapsed()
    );
    assert_eq!(app.get(&token, &format!("/Users/{id}")).await.status, 200);
}

#[actix_web::test]
async fn readyz_is_503_when_postgresql_is_unreachable() {
    let Some(base) = postgres_url() else {
        eprintln!("SKIPPED (set SCIMGW_TEST_DATABASE_URL): readyz_is_503_when_postgresql_is_unreachable");
        return;
    };
    assert!(base.contains("127.0.0.1:5432"), "the test expects PostgreSQL at 127.0.0.1:5432");
    let proxy = Proxy::start("127.0.0.1:5432".into());
    let db = db_via(&proxy, 1);
    let app = TestApp::spawn_on(db, |_| {}, Arc::new(Targets::default()), Arc::new(tokio::sync::Notify::new())).await;
    let ready = app.client.get(format!("{}/readyz", app.origin)).send().await.unwrap();
    assert_eq!(ready.status(), 200, "ready while PostgreSQL answers");

    proxy.set_down(true);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let ready = app.client.get(format!("{}/readyz", app.origin)).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "not ready");
    assert_ne!(body["checks"]["store"], "ok", "{body}");
    // `/readyz` needs no token: it names the failing check, not the store's error, which names
    // the database's host, port and user (that goes to the log).
    let text = body.to_string();
    for secret_ish in ["127.0.0.1", &proxy.port.to_string(), "postgres", "connect"] {
        assert!(!text.contains(secret_ish), "/readyz shows {secret_ish:?}: {text}");
    }
    assert_eq!(body["checks"]["store"], "unavailable (see the log)");
    // The process is still alive: liveness and readiness differ.
    assert_eq!(app.client.get(format!("{}/healthz", app.origin)).send().await.unwrap().status(), 200);
}

/// PostgreSQL gone for 10 s in the middle of a run (`SCIMGW_FAULT_OUTAGE_SECS` to change it): every
/// request is answered at once — a 2xx, or a 503 with a SCIM error body and `Retry-After` — never a
/// hang or a 500, with the default 5 s connection timeout; and the gateway serves again by
/// itself once the database is back, with nothing acknowledged lost.
#[actix_web::test]
async fn requests_fail_fast_while_postgresql_is_down_and_recover() {
    let Some(base) = postgres_url() else {
        eprintln!("SKIPPED (set SCIMGW_TEST_DATABASE_URL): requests_fail_fast_while_postgresql_is_down_and_recover");
        return;
    };
    assert!(base.contains("127.0.0.1:5432"), "the test expects PostgreSQL at 127.0.0.1:5432");
    let outage =
        Duration::from_secs(std::env::var("SCIMGW_FAULT_OUTAGE_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(10));
    let proxy = Proxy::start("127.0.0.1:5432".into());
    let db = db_via(&proxy, 5);
    let app = TestApp::spawn_on(db, |_| {}, Arc::new(Targets::default()), Arc::new(tokio::sync::Notify::new())).await;
    let token = app.token("acme");
    let app = Arc::new(app);

    // Four clients create users and read them back until told to stop, recording every answer.
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = JoinSet::new();
    for c in 0..4 {
        let (app, token, stop) = (app.clone(), token.clone(), stop.clone());
        clients.spawn_local(async move {
            let mut answers = Vec::new();
            let mut acked = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let started = Instant::now();
                let name = format!("c{c}-{i}@example.com");
                let r = app.post(&token, "/Users", &serde_json::json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name})).await;
                answers.push((Instant::now(), started.elapsed(), r.status.as_u16(), r.body.clone(), r.header("retry-after").map(str::to_owned)));
                if r.status == 201 {
                    acked.push(r.id());
                }
                i += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (answers, acked)
        });
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    proxy.set_down(true);
    let went_down = Instant::now();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(std::net::TcpStream::connect(("127.0.0.1", proxy.port)).is_err(), "the port is closed while down");
    tokio::time::sleep(outage.saturating_sub(Duration::from_millis(200))).await;
    let ready_while_down = app.client.get(format!("{}/readyz", app.origin)).send().await.unwrap().status();
    proxy.set_down(false);
    let came_back = Instant::now();
    // Recovered: a create succeeds again within 15 s, without a restart.
    let mut recovered = None;
    while came_back.elapsed() < Duration::from_secs(15) {
        let r = app.post(&token, "/Users", &serde_json::json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("probe-{}@example.com", came_back.elapsed().as_millis())})).await;
        if r.status == 201 {
            recovered = Some(came_back.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);
    let mut answers = Vec::new();
    let mut acked = Vec::new();
    while let Some(done) = clients.join_next().await {
        let (a, k) = done.unwrap();
        answers.extend(a);
        acked.extend(k);
    }
    assert_eq!(ready_while_down, 503, "readyz while PostgreSQL is down");
    let recovered = recovered.expect("the gateway did not serve again within 15 s of PostgreSQL coming back");

    let during: Vec<_> =
        answers.iter().filter(|a| a.0 > went_down + Duration::from_millis(500) && a.0 < came_back).collect();
    assert!(during.len() >= 10, "only {} answers while down", during.len());
    for (_, took, status, body, retry_after) in &answers {
        assert!(matches!(status, 201 | 503), "status {status}: {body}");
        if *status == 503 {
            assert_eq!(body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error", "{body}");
            assert_eq!(body["status"], "503");
            assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()), "{body}");
            assert!(retry_after.is_some(), "a 503 says when to retry");
        }
        // Fail fast: well inside the 5 s connection timeout.
        assert!(*took < Duration::from_secs(2), "a request took {took:?} (status {status})");
    }
    assert!(during.iter().all(|a| a.2 == 503), "while down, every answer is a 503");
    let slowest = answers.iter().map(|a| a.1).max().unwrap_or_default();
    // Every acknowledged create is there.
    for id in &acked {
        assert_eq!(app.get(&token, &format!("/Users/{id}")).await.status, 200, "acknowledged {id} lost");
    }
    eprintln!(
        "PostgreSQL down {outage:?}: {} answers, {} while down (all 503), slowest {slowest:?}, serving again {recovered:?} \
         after it came back, {} acknowledged creates all present",
        answers.len(),
        during.len(),
        acked.len()
    );
}
