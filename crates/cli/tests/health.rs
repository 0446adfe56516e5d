//! Target health: a target that stops serving us is paused (its deliveries held, spending no
//! attempt), probed with backoff, and resumed when it answers; `status`, `users show` and
//! `/metrics` say so. The `scimgw serve` process against vendor-sim apps, on both engines.
#![cfg(test)]

mod common;

use std::time::{Duration, Instant};

use common::{Gw, until};
use scimgw_store::Backend;
use scimgw_store::testing::TestDb;
use serde_json::Value;
use vendor_sim::{Faults, InjectedError, Outage, OutageMode, Scope, Sim, SimConfig};

fn status(gw: &Gw) -> Vec<Value> {
    let out = gw.run(&["status", "--json"]);
    serde_json::from_slice::<Value>(&out.stdout).ok().and_then(|v| v.as_array().cloned()).unwrap_or_default()
}

fn row<'a>(rows: &'a [Value], target: &str) -> Option<&'a Value> {
    rows.iter().find(|r| r["target"] == target)
}

async fn metrics(gw: &Gw) -> String {
    reqwest::get(format!("http://127.0.0.1:{}/metrics", gw.port)).await.unwrap().text().await.unwrap()
}

/// The most requests the app received within any one second (from its own arrival log).
fn busiest_second(sim: &Sim) -> usize {
    let at: Vec<Instant> = sim.requests().iter().map(|r| r.at).collect();
    at.iter()
        .map(|start| at.iter().filter(|t| **t >= *start && **t < *start + Duration::from_secs(1)).count())
        .max()
        .unwrap_or(0)
}

/// The app is down (its port closed) for far longer than the target's attempts would last
/// (3 attempts, backoff 50–300 ms: under a second); the target is paused after 5 failures in a
/// row, its deliveries are held, nothing is dead-lettered; the tenant's other target keeps
/// delivering; when the app is back the backlog drains within the rate limit.
async fn a_long_outage_dead_letters_nothing(backend: Backend) {
    let Some(db) = TestDb::on(backend) else { return };
    let sim = Sim::start(SimConfig::default()).unwrap();
    let other = Sim::start(SimConfig::default()).unwrap();
    let dir_token = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(dir_token.path(), other.token()).unwrap();
    let extra = format!(
        "max_attempts = 3\nrate_per_sec = 10\nburst = 2\n\n[[targets]]\nname = \"other\"\nkind = \"scim\"\n\
         base_url = \"{}\"\ntoken_file = \"{}\"\nbackoff_base_ms = 50\nbackoff_max_ms = 300\nmax_attempts = 3\n",
        other.base_url(),
        dir_token.path().display()
    );
    let gw = Gw::new(&db.config().url, &sim, &extra);
    let token = gw.token();
    let mut serve = gw.serve().await;
    let first = gw.create(&token, "before@example.com").await;
    assert!(until(Duration::from_secs(20), || sim.users().len() == 1).await, "{}", gw.log_text());

    sim.set_faults(Faults { outage: Some(Outage::indefinite(OutageMode::Refuse)), ..Faults::default() }).unwrap();
    let down_at = Instant::now();
    let mut ids = Vec::new();
    for i in 0..30 {
        ids.push(gw.create(&token, &format!("during{i}@example.com")).await);
    }
    gw.disable(&token, &first).await;
    let paused = until(Duration::from_secs(20), || {
        row(&status(&gw), "crm").is_some_and(|r| r["paused"]["reason"] == "unreachable")
    })
    .await;
    assert!(paused, "the target was not paused: {:?}\n{}", status(&gw), gw.log_text());
    let m = metrics(&gw).await;
    assert!(m.contains(r#"scimgw_target_paused{tenant="acme",target="crm",reason="unreachable"} 1"#), "{m}");
    assert!(m.contains(r#"scimgw_target_paused_since_seconds{tenant="acme",target="crm"}"#), "{m}");
    assert!(!m.contains(r#"scimgw_target_paused{tenant="acme",target="other""#), "the other target is not paused: {m}");
    // The other target of the same tenant delivers meanwhile.
    assert!(until(Duration::from_secs(20), || other.users().len() == 31).await, "{}", gw.log_text());
    let shown = gw.ok(&["users", "show", &ids[0]]);
    assert!(shown.contains("crm is paused (unreachable) since"), "{shown}");
    let text = gw.ok(&["status"]);
    assert!(text.contains("paused (unreachable)") && text.contains("acme/crm is paused"), "{text}");

    // Down many times longer than 3 attempts last; nothing dies.
    while down_at.elapsed() < Duration::from_secs(10) {
        let s = status(&gw);
        let crm = row(&s, "crm").cloned().unwrap_or_default();
        assert_eq!(crm["dead"], 0, "dead-lettered during the outage: {crm}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let probes = row(&status(&gw), "crm").map(|r| r["paused"]["probes"].as_i64().unwrap_or(0)).unwrap_or(0);
    assert!(probes >= 3, "probed with backoff: {probes}");

    sim.clear_requests();
    sim.clear_faults().unwrap();
    let outage = down_at.elapsed();
    let came_back = Instant::now();
    let back = until(Duration::from_secs(30), || {
        sim.users().len() == 31 && sim.user_by_username("before@example.com").is_some_and(|u| u["active"] == false)
    })
    .await;
    assert!(back, "{} of 31 users at the app after it came back: {}", sim.users().len(), gw.log_text());
    let s = status(&gw);
    let crm = row(&s, "crm").cloned().unwrap_or_default();
    assert!(crm["paused"].is_null(), "resumed: {crm}");
    assert_eq!(crm["dead"], 0, "{crm}");
    // The backlog drained within the target's rate limit (10/s, burst 2: at most 12 sent in a
    // second; one more may land in a second of the app's arrivals, which jitter by milliseconds).
    let busiest = busiest_second(&sim);
    assert!(busiest <= 13, "{busiest} requests in one second");
    let m = metrics(&gw).await;
    assert!(m.contains(r#"scimgw_target_paused{tenant="acme",target="crm",reason="unreachable"} 0"#), "{m}");
    eprintln!(
        "{backend}: down {outage:?} (3 attempts would last < 1 s): {probes} probes, 0 dead; 31 users at the app \
         {:?} after it came back ({} requests, busiest second {busiest}, limit 10 + 2)",
        came_back.elapsed(),
        sim.requests().len()
    );
    serve.kill();
}

#[tokio::test]
async fn a_long_outage_dead_letters_nothing_sqlite() {
    a_long_outage_dead_letters_nothing(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_long_outage_dead_letters_nothing_postgres() {
    a_long_outage_dead_letters_nothing(Backend::Postgres).await;
}

/// A refused token pauses the target at the first 401, so the other deliveries spend nothing;
/// once the token file is fixed (and the gateway reloaded) a probe answers and they are delivered.
/// A vendor's 400 about one user still dead-letters that user alone, and pauses nothing.
async fn a_refused_token_pauses_at_once(backend: Backend) {
    let Some(db) = TestDb::on(backend) else { return };
    let sim = Sim::start(SimConfig::default()).unwrap();
    let gw = Gw::new(&db.config().url, &sim, "max_in_flight = 1\n");
    let token_file = gw.dir.path().join("crm.token");
    std::fs::write(&token_file, "not-the-token").unwrap();
    let token = gw.token();
    let serve = gw.serve().await;
    for i in 0..5 {
        gw.create(&token, &format!("u{i}@example.com")).await;
    }
    let paused = until(Duration::from_secs(20), || {
        row(&status(&gw), "crm").is_some_and(|r| r["paused"]["reason"] == "unauthorized")
    })
    .await;
    assert!(paused, "{:?}\n{}", status(&gw), gw.log_text());
    // Give the dispatcher time to go on, were it not paused.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let deliveries = sim.requests().iter().filter(|r| r.path.ends_with("/Users") && r.method == "GET").count();
    let probes = row(&status(&gw), "crm").map_or(0, |r| r["paused"]["probes"].as_i64().unwrap_or(0));
    assert!(
        deliveries as i64 <= 1 + probes,
        "only the first delivery and the probes reached the app: {deliveries} lookups, {probes} probes"
    );
    assert!(sim.requests().iter().all(|r| !r.authenticated));

    std::fs::write(&token_file, sim.token()).unwrap();
    let status_ok = std::process::Command::new("kill").args(["-HUP", &serve.0.id().to_string()]).status().unwrap();
    assert!(status_ok.success());
    assert!(until(Duration::from_secs(30), || sim.users().len() == 5).await, "{}", gw.log_text());
    assert!(row(&status(&gw), "crm").is_some_and(|r| r["paused"].is_null() && r["dead"] == 0));

    // A 400 about one user's data: that user alone is dead-lettered; the target stays up.
    sim.set_faults(Faults {
        scope: Scope { methods: vec!["POST".into()], path_prefix: None },
        fail_next: 1,
        error: InjectedError {
            status: 400,
            scim_type: Some("invalidValue".into()),
            detail: "bad title".into(),
            retry_after_secs: None,
        },
        ..Faults::default()
    })
    .unwrap();
    gw.create(&token, "refused@example.com").await;
    gw.create(&token, "fine@example.com").await;
    let settled = until(Duration::from_secs(20), || {
        sim.user_by_username("fine@example.com").is_some() && row(&status(&gw), "crm").is_some_and(|r| r["dead"] == 1)
    })
    .await;
    let s = status(&gw);
    assert!(settled, "{s:?}\n{}", gw.log_text());
    assert!(row(&s, "crm").is_some_and(|r| r["paused"].is_null()), "a 400 pauses nothing: {s:?}");
    assert!(sim.user_by_username("refused@example.com").is_none());
    drop(serve);
}

#[tokio::test]
async fn a_refused_token_pauses_at_once_sqlite() {
    a_refused_token_pauses_at_once(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_refused_token_pauses_at_once_postgres() {
    a_refused_token_pauses_at_once(Backend::Postgres).await;
}
