//! Every fault, over real HTTP. Deterministic: counters and seeds, never chance; waits are short
//! and bounded.

#![expect(clippy::unwrap_used, reason = "test helpers: a failed setup must fail the test loudly")]

mod common;

use std::time::{Duration, Instant};

use common::{Client, user};
use reqwest::StatusCode;
use vendor_sim::{Faults, InjectedError, InjectedFault, Outage, OutageMode, RateLimit, Scope, Sim, SimConfig};

fn start() -> (Sim, Client) {
    let sim = Sim::start(SimConfig::default()).unwrap();
    let client = Client::new(&sim);
    (sim, client)
}

/// A client that opens a new connection for every request, so a closed port shows as refused.
fn fresh_client(sim: &Sim) -> Client {
    Client::with_http(sim, reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap())
}

#[tokio::test]
async fn fail_next_fails_exactly_n_requests_then_serves() {
    let (sim, c) = start();
    sim.set_faults(Faults { fail_next: 2, ..Faults::default() }).unwrap();
    let first = c.post("/Users", &user("alice")).await;
    assert_eq!(first.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(first.body["status"], "500");
    assert_eq!(c.post("/Users", &user("alice")).await.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(c.post("/Users", &user("alice")).await.status, StatusCode::CREATED);
    assert_eq!(sim.users().len(), 1, "failed requests change nothing");
    assert_eq!(sim.faults().fail_next, 0);
    let faults: Vec<_> = sim.requests().iter().map(|r| r.fault).collect();
    assert_eq!(faults, [Some(InjectedFault::Error), Some(InjectedFault::Error), None]);
}

#[tokio::test]
async fn a_permanent_error_carries_the_vendors_message() {
    let (_sim, c) = start();
    let error = InjectedError::permanent("Jostle: the email domain is not allowed for this organisation");
    _sim.set_faults(Faults { fail_next: 1, error, ..Faults::default() }).unwrap();
    let r = c.post("/Users", &user("alice")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["scimType"], "invalidValue");
    assert_eq!(r.body["detail"], "Jostle: the email domain is not allowed for this organisation");
    assert!(r.header("retry-after").is_none());
}

#[tokio::test]
async fn an_injected_503_says_when_to_retry() {
    let (sim, c) = start();
    sim.set_faults(Faults { fail_next: 1, error: InjectedError::unavailable(7), ..Faults::default() }).unwrap();
    let r = c.get("/Users").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.header("retry-after"), Some("7"));
}

#[tokio::test]
async fn error_rate_fails_the_same_requests_for_the_same_seed() {
    let (sim, c) = start();
    let faults = Faults { error_rate: 0.5, seed: 7, ..Faults::default() };
    let mut runs = Vec::new();
    for _ in 0..2 {
        sim.set_faults(faults.clone()).unwrap();
        let mut statuses = Vec::new();
        for _ in 0..24 {
            statuses.push(c.get("/Users").await.status.as_u16());
        }
        runs.push(statuses);
    }
    assert_eq!(runs[0], runs[1]);
    let failed = runs[0].iter().filter(|s| **s == 500).count();
    assert!((1..24).contains(&failed), "{:?}", runs[0]);
    sim.set_faults(Faults { error_rate: 1.0, ..Faults::default() }).unwrap();
    assert_eq!(c.get("/Users").await.status, StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn latency_delays_every_request() {
    let (sim, c) = start();
    sim.set_faults(Faults { latency_ms: 150, ..Faults::default() }).unwrap();
    let t = Instant::now();
    assert_eq!(c.get("/Users").await.status, StatusCode::OK);
    assert!(t.elapsed() >= Duration::from_millis(150), "{:?}", t.elapsed());
}

#[tokio::test]
async fn throttle_next_answers_429_with_retry_after() {
    let (sim, c) = start();
    sim.set_faults(Faults { throttle_next: 2, retry_after_secs: 3, ..Faults::default() }).unwrap();
    for _ in 0..2 {
        let r = c.post("/Users", &user("alice")).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.header("retry-after"), Some("3"));
    }
    assert_eq!(c.post("/Users", &user("alice")).await.status, StatusCode::CREATED);
    assert_eq!(sim.requests()[0].fault, Some(InjectedFault::Throttled));
}

#[tokio::test]
async fn rate_limit_refuses_requests_beyond_the_limit_until_the_window_moves() {
    let (sim, c) = start();
    let rl = RateLimit { max_requests: 3, window_ms: 60_000, retry_after_secs: None };
    sim.set_faults(Faults { rate_limit: Some(rl), ..Faults::default() }).unwrap();
    for _ in 0..3 {
        assert_eq!(c.get("/Users").await.status, StatusCode::OK);
    }
    let r = c.get("/Users").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((59..=60).contains(&retry), "{retry}");
    assert_eq!(sim.requests()[3].fault, Some(InjectedFault::RateLimited));

    // A short window frees up on its own.
    let rl = RateLimit { max_requests: 1, window_ms: 300, retry_after_secs: None };
    sim.set_faults(Faults { rate_limit: Some(rl), ..Faults::default() }).unwrap();
    let t0 = Instant::now();
    assert_eq!(c.get("/Users").await.status, StatusCode::OK);
    let r = c.get("/Users").await;
    if t0.elapsed() < Duration::from_millis(300) {
        assert_eq!((r.status, r.header("retry-after")), (StatusCode::TOO_MANY_REQUESTS, Some("1")));
    }
    assert!(poll_until(&c, StatusCode::OK).await);
    assert_eq!(RateLimit::per_second(5).window_ms, 1_000);
}

#[tokio::test]
async fn a_hung_request_outlasts_the_client_timeout_and_is_never_applied() {
    let (sim, _) = start();
    sim.set_faults(Faults { hang_next: 1, hang_ms: 5_000, ..Faults::default() }).unwrap();
    let impatient =
        Client::with_http(&sim, reqwest::Client::builder().timeout(Duration::from_millis(200)).build().unwrap());
    let t = Instant::now();
    let err = impatient.try_send(reqwest::Method::POST, "/Users", Some(&user("alice"))).await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(t.elapsed() < Duration::from_secs(2));
    assert!(sim.users().is_empty());
    let log = sim.requests();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].status, None, "no answer was sent");
    // The next request is served.
    assert_eq!(impatient.post("/Users", &user("alice")).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_held_request_that_was_never_applied_answers_504() {
    let (sim, c) = start();
    sim.set_faults(Faults { hang_next: 1, hang_ms: 50, ..Faults::default() }).unwrap();
    let r = c.post("/Users", &user("alice")).await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT);
    assert!(sim.users().is_empty());
    assert_eq!(sim.requests()[0].fault, Some(InjectedFault::Hang));
}

#[tokio::test]
async fn hang_after_apply_stores_the_change_but_the_answer_is_lost() {
    let (sim, _) = start();
    sim.set_faults(Faults { hang_next: 1, hang_ms: 5_000, hang_after_apply: true, ..Faults::default() }).unwrap();
    let impatient =
        Client::with_http(&sim, reqwest::Client::builder().timeout(Duration::from_millis(200)).build().unwrap());
    let err = impatient.try_send(reqwest::Method::POST, "/Users", Some(&user("alice"))).await.unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(sim.users().len(), 1, "the app did create the user");
    // The retry an honest client makes then finds the user already there.
    assert_eq!(impatient.post("/Users", &user("alice")).await.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn an_unavailable_outage_answers_503_until_it_ends() {
    let (sim, c) = start();
    sim.set_faults(Faults {
        outage: Some(Outage::lasting(OutageMode::Unavailable, Duration::from_millis(2_500))),
        ..Faults::default()
    })
    .unwrap();
    let r = c.post("/Users", &user("alice")).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.header("retry-after"), Some("3"));
    assert_eq!(sim.requests()[0].fault, Some(InjectedFault::Outage));
    sim.clear_faults().unwrap();
    assert_eq!(c.post("/Users", &user("alice")).await.status, StatusCode::CREATED);

    // A window that starts later and ends by itself. Polled rather than slept through, so a
    // stalled machine makes the test slower, never wrong.
    let set_at = Instant::now();
    sim.set_faults(Faults {
        outage: Some(Outage { starts_after_ms: 300, duration_ms: Some(300), ..Outage::default() }),
        ..Faults::default()
    })
    .unwrap();
    let first = c.get("/Users").await.status;
    if set_at.elapsed() < Duration::from_millis(300) {
        assert_eq!(first, StatusCode::OK);
    }
    assert!(poll_until(&c, StatusCode::SERVICE_UNAVAILABLE).await);
    assert!(set_at.elapsed() >= Duration::from_millis(300));
    assert!(poll_until(&c, StatusCode::OK).await);
    assert!(set_at.elapsed() >= Duration::from_millis(600));
}

/// GETs `/Users` every 20 ms until the status is `want`, for at most 3 s.
async fn poll_until(c: &Client, want: StatusCode) -> bool {
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if c.get("/Users").await.status == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn an_outage_is_answered_before_authentication() {
    let (sim, c) = start();
    sim.set_faults(Faults { outage: Some(Outage::indefinite(OutageMode::Unavailable)), ..Faults::default() }).unwrap();
    let resp = c.http.get(format!("{}/Users", sim.base_url())).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(resp.headers().get("retry-after").is_none(), "an outage without an end promises no time");
}

#[tokio::test]
async fn a_refuse_outage_closes_the_port_and_reopens_it_on_the_same_port() {
    let (sim, _) = start();
    let c = fresh_client(&sim);
    assert_eq!(c.get("/Users").await.status, StatusCode::OK);
    sim.set_faults(Faults { outage: Some(Outage::indefinite(OutageMode::Refuse)), ..Faults::default() }).unwrap();
    let err = c.try_send(reqwest::Method::GET, "/Users", None).await.unwrap_err();
    assert!(err.is_connect(), "{err}");
    sim.clear_faults().unwrap();
    assert_eq!(c.get("/Users").await.status, StatusCode::OK);

    // A timed window reopens by itself.
    let until = Instant::now() + Duration::from_millis(150);
    sim.set_faults(Faults { outage: Some(Outage::until(OutageMode::Refuse, until)), ..Faults::default() }).unwrap();
    assert!(c.try_send(reqwest::Method::GET, "/Users", None).await.unwrap_err().is_connect());
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        match c.try_send(reqwest::Method::GET, "/Users", None).await {
            Ok(r) => {
                assert_eq!(r.status, StatusCode::OK);
                break;
            }
            Err(e) if e.is_connect() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("the port did not reopen: {e}"),
        }
    }
    assert!(Instant::now() >= until);
}

#[tokio::test]
async fn a_pooled_connection_is_dropped_when_the_port_closes() {
    let (sim, c) = start();
    assert_eq!(c.get("/Users").await.status, StatusCode::OK);
    sim.set_faults(Faults { outage: Some(Outage::indefinite(OutageMode::Refuse)), ..Faults::default() }).unwrap();
    assert!(c.try_send(reqwest::Method::GET, "/Users", None).await.is_err());
}

#[test]
fn faults_given_at_start_are_in_force_from_the_first_request() {
    let sim = Sim::start(SimConfig {
        faults: Faults { outage: Some(Outage::indefinite(OutageMode::Refuse)), ..Faults::default() },
        ..SimConfig::default()
    })
    .unwrap();
    assert!(std::net::TcpStream::connect(sim.addr()).is_err());
    sim.clear_faults().unwrap();
    assert!(std::net::TcpStream::connect(sim.addr()).is_ok());
}

#[tokio::test]
async fn scope_limits_faults_to_some_requests() {
    let (sim, c) = start();
    let scope = Scope { methods: vec!["POST".into()], path_prefix: Some("/Users".into()) };
    sim.set_faults(Faults { scope, fail_next: 1, error: InjectedError::permanent("no"), ..Faults::default() }).unwrap();
    // The gateway's adoption lookup goes through; the create fails.
    assert_eq!(c.get("/Users?filter=userName%20eq%20%22alice%22").await.status, StatusCode::OK);
    assert_eq!(c.post("/Users", &user("alice")).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(c.post("/Users", &user("alice")).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn unauthenticated_requests_consume_no_fault_counter() {
    let (sim, c) = start();
    sim.set_faults(Faults { fail_next: 1, ..Faults::default() }).unwrap();
    let resp = c.http.get(format!("{}/Users", sim.base_url())).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(c.get("/Users").await.status, StatusCode::INTERNAL_SERVER_ERROR);
}

#[test]
fn out_of_range_faults_are_refused() {
    let sim = Sim::start(SimConfig::default()).unwrap();
    assert!(sim.set_faults(Faults { error_rate: 2.0, ..Faults::default() }).is_err());
    let bad_status = Faults { error: InjectedError::new(200, "fine"), ..Faults::default() };
    assert!(sim.set_faults(bad_status.clone()).is_err());
    assert!(Sim::start(SimConfig { faults: bad_status, ..SimConfig::default() }).is_err());
}
