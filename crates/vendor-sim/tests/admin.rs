//! The admin API under `/_sim/` and the `vendor-sim` binary.

#![expect(clippy::unwrap_used, reason = "test helpers: a failed setup must fail the test loudly")]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Client, user};
use reqwest::StatusCode;
use serde_json::{Value, json};
use vendor_sim::{Faults, Sim, SimConfig};

fn start() -> (Sim, Client, reqwest::Client) {
    let sim = Sim::start(SimConfig::default()).unwrap();
    let client = Client::new(&sim);
    (sim, client, reqwest::Client::new())
}

#[tokio::test]
async fn the_log_is_served_as_json_and_admin_calls_are_not_in_it() {
    let (sim, c, admin) = start();
    c.post("/Users?aadOptscim062020", &user("alice")).await;
    let log: Value = admin.get(format!("{}/_sim/requests", sim.origin())).send().await.unwrap().json().await.unwrap();
    let log = log.as_array().unwrap();
    assert_eq!(log.len(), 1);
    let entry = &log[0];
    assert_eq!(entry["method"], "POST");
    assert_eq!(entry["path"], "/scim/v2/Users");
    assert_eq!(entry["query"], "aadOptscim062020");
    assert_eq!(entry["status"], 201);
    assert_eq!(entry["body"]["userName"], "alice");
    assert!(entry["headers"].get("authorization").is_none());
    assert!(entry["time"].as_str().unwrap().ends_with('Z'));
    assert!(entry["elapsed_ms"].as_f64().is_some());
    assert_eq!(entry["fault"], Value::Null);
    let resp = admin.delete(format!("{}/_sim/requests", sim.origin())).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(sim.requests().is_empty());
}

#[tokio::test]
async fn faults_are_set_read_and_cleared_over_http() {
    let (sim, c, admin) = start();
    let url = format!("{}/_sim/faults", sim.origin());
    let resp = admin.put(&url).json(&json!({"throttle_next": 1, "retry_after_secs": 4})).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let shown: Value = resp.json().await.unwrap();
    assert_eq!(shown["throttle_next"], 1);
    assert_eq!(sim.faults().throttle_next, 1);
    let r = c.get("/Users").await;
    assert_eq!((r.status, r.header("retry-after")), (StatusCode::TOO_MANY_REQUESTS, Some("4")));
    let now: Value = admin.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(now["throttle_next"], 0, "counters show what is left");

    let resp = admin.put(&url).json(&json!({"fial_next": 1})).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = admin.put(&url).json(&json!({"error_rate": 3.0})).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    admin.put(&url).json(&json!({"fail_next": 3})).send().await.unwrap();
    assert_eq!(admin.delete(&url).send().await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(sim.faults(), Faults::default());
    assert_eq!(c.get("/Users").await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_admin_api_is_never_faulted() {
    let (sim, _c, admin) = start();
    sim.set_faults(Faults { fail_next: 10, latency_ms: 5_000, ..Faults::default() }).unwrap();
    let resp = admin.get(format!("{}/_sim/users", sim.origin())).timeout(Duration::from_secs(2)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_refuse_outage_set_over_http_answers_first_then_closes_the_port_for_its_duration() {
    let (sim, _c, admin) = start();
    let url = format!("{}/_sim/faults", sim.origin());
    let forever = admin.put(&url).json(&json!({"outage": {"mode": "refuse"}})).send().await.unwrap();
    assert_eq!(forever.status(), StatusCode::BAD_REQUEST, "nothing could reopen the port");
    let resp = admin.put(&url).json(&json!({"outage": {"mode": "refuse", "duration_ms": 1500}})).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let fresh = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_millis(1500);
    let mut refused = false;
    while std::time::Instant::now() < deadline {
        match fresh.get(format!("{}/Users", sim.base_url())).send().await {
            Err(e) if e.is_connect() => {
                refused = true;
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    assert!(refused, "the port closed");
    sim.clear_faults().unwrap();
}

#[tokio::test]
async fn reset_and_seeding_over_http() {
    let (sim, c, admin) = start();
    let o = sim.origin();
    let resp = admin
        .post(format!("{o}/_sim/users"))
        .json(&json!({"id": "u1", "schemas": [common::USER_SCHEMA], "userName": "seeded"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let resp = admin
        .post(format!("{o}/_sim/groups"))
        .json(&json!({"schemas": [common::GROUP_SCHEMA], "displayName": "G", "members": [{"value": "u1"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let users: Value = admin.get(format!("{o}/_sim/users")).send().await.unwrap().json().await.unwrap();
    assert_eq!(users[0]["id"], "u1");
    let groups: Value = admin.get(format!("{o}/_sim/groups")).send().await.unwrap().json().await.unwrap();
    assert_eq!(groups[0]["members"][0]["value"], "u1");
    let bad = admin.post(format!("{o}/_sim/users")).json(&json!({"userName": 1})).send().await.unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);

    c.get("/Users").await;
    assert_eq!(admin.post(format!("{o}/_sim/reset")).send().await.unwrap().status(), StatusCode::NO_CONTENT);
    assert!(sim.users().is_empty() && sim.groups().is_empty() && sim.requests().is_empty());
    assert_eq!(admin.get(format!("{o}/_sim/nothing")).send().await.unwrap().status(), StatusCode::NOT_FOUND);
}

/// Kills the child on drop, so a failed assertion leaves no process behind.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_binary_serves_with_the_given_token_and_profile() {
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_vendor-sim"))
            .args(["--listen", "127.0.0.1:0", "--token", "XYZ", "--profile", "generic"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base_url = line.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(base_url.starts_with("http://127.0.0.1:") && base_url.ends_with("/scim/v2"), "{line}");
    let http = reqwest::Client::new();
    let resp = http.get(format!("{base_url}/Users")).bearer_auth("XYZ").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = http.get(format!("{base_url}/Users")).bearer_auth("nope").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}
