//! A target's `rate_per_sec` holds across every gateway on one PostgreSQL: two `scimgw serve`
//! processes deliver to one simulator, which counts the creates it receives. On this machine's
//! debug build the two deliver slower than two unshared limits would let them (about 1.3
//! deliveries a second in all), so this test shows the bound holding end to end; the store's
//! `rate.rs` test is the one that fails without the shared bucket.
#![cfg(test)]

mod common;

use std::time::{Duration, Instant};

use common::{Gw, until};
use scimgw_store::testing::TestDb;
use vendor_sim::{Sim, SimConfig};

/// Rate 2 per second, burst 1: each process's own limiter would let 2 a second through, so two
/// processes 4 (the test's debug gateways deliver about 2 a second each when nothing holds them).
/// Shared, any 5 seconds hold at most 5 × rate + burst + a share (1 token) per process.
const RATE: usize = 2;
const USERS: usize = 30;
const WINDOW: Duration = Duration::from_secs(5);

#[tokio::test]
async fn two_gateways_on_one_postgresql_share_a_targets_rate() {
    let Some(db) = TestDb::postgres() else { return };
    let sim = Sim::start(SimConfig::default()).unwrap();
    let gw = Gw::new(&db.config().url, &sim, &format!("rate_per_sec = {RATE}\nburst = 1\n"));
    let token = gw.token();
    let other_port = Gw::free_port();
    let other_log = gw.dir.path().join("second.log");
    // The backlog first (a gateway without a dispatcher), then both dispatchers on it at once:
    // the rate, not the creation of the users, is what limits them. Leases long enough for a row
    // to wait its turn (the harness's 2 s would expire while rows wait for the rate).
    let filling = gw.serve_at(gw.port, &gw.log(), &[("SCIMGW_DISPATCHER__ENABLED", "false")]).await;
    for i in 0..USERS {
        gw.create(&token, &format!("u{i}@example.com")).await;
    }
    drop(filling);
    let lease = [("SCIMGW_DISPATCHER__LEASE_SECS", "60")];
    let started = Instant::now();
    let first_log = gw.log();
    let (first, second) =
        tokio::join!(gw.serve_at(gw.port, &first_log, &lease), gw.serve_at(other_port, &other_log, &lease));
    let all = until(Duration::from_secs(60), || sim.users().len() == USERS).await;
    let took = started.elapsed();
    assert!(all, "{} of {USERS} delivered: {}", sim.users().len(), gw.log_text());
    // Both delivered: each process's log names the deliveries it made.
    let creates: Vec<Instant> =
        sim.requests().iter().filter(|r| r.method == "POST" && r.path.ends_with("/Users")).map(|r| r.at).collect();
    assert_eq!(creates.len(), USERS);
    let busiest = creates
        .iter()
        .map(|start| creates.iter().filter(|t| **t >= *start && **t < *start + WINDOW).count())
        .max()
        .unwrap_or(0);
    let ran = |log: &std::path::Path| std::fs::read_to_string(log).unwrap_or_default().matches("outcome=done").count();
    let (by_first, by_second) = (ran(&gw.log()), ran(&other_log));
    eprintln!(
        "two gateways, rate {RATE}/s burst 1: {USERS} creates in {took:?}, busiest {WINDOW:?} {busiest}; \
         delivered by each: {by_first} and {by_second}"
    );
    assert!(by_first > 0 && by_second > 0, "both dispatchers delivered: {by_first} and {by_second}");
    let bound = RATE * WINDOW.as_secs() as usize + 1 + 2;
    assert!(busiest <= bound, "{busiest} creates in {WINDOW:?} (rate {RATE}, burst 1, two processes: at most {bound})");
    // 30 at 2 a second, less the burst and the shares: at least 13.5 s (two unshared limits: 7.5 s).
    assert!(took >= Duration::from_millis(13_500), "{USERS} creates in {took:?}");
    drop((first, second));
}
