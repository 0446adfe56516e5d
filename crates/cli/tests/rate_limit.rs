//! A target's `rate_per_sec` holds across every gateway on one PostgreSQL: two `scimgw serve`
//! processes deliver a backlog to one simulator, which records every request it receives. The
//! limit counts requests to the app (a new user's delivery is a lookup and a create), shared
//! through a bucket in the store; without the bucket each process would send the whole rate and
//! the busiest window would hold about twice the bound (this test then fails). Leases are short,
//! so rows waiting for the rate must renew theirs or be delivered twice.
#![cfg(test)]

mod common;

use std::time::{Duration, Instant};

use common::{Gw, until};
use scimgw_store::testing::TestDb;
use vendor_sim::{Sim, SimConfig};

/// Rate 4 per second, burst 1: 30 new users are 60 requests, 15 s at the shared rate (7.5 s if
/// each process had the rate to itself). Shared, any 5 seconds hold at most 5 × rate + burst +
/// a share (a tenth of a second's worth, at least 1 token) per process.
const RATE: usize = 4;
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
    // the rate, not the creation of the users, is what limits them. Leases of 2 s, shorter than
    // a row's wait for its tokens: a dispatcher that waited renews its lease before the request
    // (without that, another dispatcher took the row over and the app got a user twice: 31
    // creates).
    let filling = gw.serve_at(gw.port, &gw.log(), &[("SCIMGW_DISPATCHER__ENABLED", "false")]).await;
    for i in 0..USERS {
        gw.create(&token, &format!("u{i}@example.com")).await;
    }
    drop(filling);
    // Four rows at a time per process: neither can take the whole backlog at its first claim.
    let lease = [("SCIMGW_DISPATCHER__LEASE_SECS", "2"), ("SCIMGW_DISPATCHER__CONCURRENCY", "4")];
    let started = Instant::now();
    let first_log = gw.log();
    let (first, second) =
        tokio::join!(gw.serve_at(gw.port, &first_log, &lease), gw.serve_at(other_port, &other_log, &lease));
    let all = until(Duration::from_secs(90), || sim.users().len() == USERS).await;
    let took = started.elapsed();
    assert!(all, "{} of {USERS} delivered: {}", sim.users().len(), gw.log_text());
    let requests: Vec<Instant> = sim.requests().iter().filter(|r| r.path.contains("/Users")).map(|r| r.at).collect();
    let creates = sim.requests().iter().filter(|r| r.method == "POST" && r.path.ends_with("/Users")).count();
    assert_eq!(creates, USERS, "one create per user: a row delivered twice (a lease lost while it waited)");
    assert!(requests.len() >= 2 * USERS, "a lookup and a create per user: {} requests", requests.len());
    let busiest = requests
        .iter()
        .map(|start| requests.iter().filter(|t| **t >= *start && **t < *start + WINDOW).count())
        .max()
        .unwrap_or(0);
    let ran = |log: &std::path::Path| std::fs::read_to_string(log).unwrap_or_default().matches("outcome=done").count();
    let (by_first, by_second) = (ran(&gw.log()), ran(&other_log));
    eprintln!(
        "two gateways, rate {RATE}/s burst 1: {} requests ({USERS} creates) in {took:?}, busiest {WINDOW:?} {busiest}; \
         deliveries by each: {by_first} and {by_second}",
        requests.len()
    );
    assert!(by_first > 0 && by_second > 0, "both dispatchers delivered: {by_first} and {by_second}");
    let bound = RATE * WINDOW.as_secs() as usize + 1 + 2;
    assert!(
        busiest <= bound,
        "{busiest} requests in {WINDOW:?} (rate {RATE}, burst 1, two processes: at most {bound})"
    );
    // 60 requests at 4 a second, less the burst and the shares: at least 13 s (unshared: 7.5 s).
    let least = Duration::from_secs_f64((requests.len() - 3) as f64 / RATE as f64);
    assert!(took >= least, "{} requests in {took:?} (at least {least:?} at the shared rate)", requests.len());
    drop((first, second));
}
