//! The load tool against a real gateway: it creates, reads and patches, and reports every
//! request with its status.
#![cfg(test)]

use std::process::Command;

use scimgw_e2e::{Backend, TestApp};
use serde_json::Value;

fn run(app: &TestApp, token: &str, args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_scimgw-load"))
        .args(["--base-url", &app.base_url, "--json"])
        .args(args)
        .env("SCIMGW_LOAD_TOKEN", token)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[actix_web::test]
async fn each_scenario_reports_its_requests() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let token = app.token("bench");
    let app = std::sync::Arc::new(app);
    let a = app.clone();
    let t = token.clone();
    let reports = tokio::task::spawn_blocking(move || {
        let create = run(&a, &t, &["--scenario", "create", "--requests", "40", "--concurrency", "4"]);
        let patch = run(&a, &t, &["--scenario", "patch", "--users", "10", "--requests", "30", "--concurrency", "4"]);
        let entra = run(&a, &t, &["--scenario", "entra-initial", "--users", "20", "--concurrency", "4"]);
        (create, patch, entra)
    })
    .await
    .unwrap();
    let (create, patch, entra) = reports;
    assert_eq!(create["kinds"][0]["kind"], "POST /Users");
    assert_eq!(create["kinds"][0]["ok"], 40, "{create}");
    assert_eq!(patch["kinds"][0]["kind"], "PATCH /Users/{id}");
    assert_eq!(patch["kinds"][0]["ok"], 30, "{patch}");
    let kinds: Vec<&str> = entra["kinds"].as_array().unwrap().iter().map(|k| k["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["GET /Users?filter", "PATCH /Users/{id}", "POST /Users"]);
    assert!(entra["kinds"].as_array().unwrap().iter().all(|k| k["ok"] == 20), "{entra}");
    let stored = app.get(&token, "/Users?count=0").await;
    assert_eq!(stored.body["totalResults"], 40 + 10 + 20);

    // Okta's cycle spread over two tenants, then Entra's incremental mix: every request 2xx.
    let other = app.token("bench-2");
    let (a, both) = (app.clone(), format!("{token},{other}"));
    let (okta, incremental) = tokio::task::spawn_blocking(move || {
        let okta = run(&a, &both, &["--scenario", "okta", "--users", "10", "--concurrency", "4"]);
        let inc = run(
            &a,
            &both,
            &["--scenario", "entra-incremental", "--users", "40", "--requests", "100", "--concurrency", "4"],
        );
        (okta, inc)
    })
    .await
    .unwrap();
    let kinds: Vec<(&str, u64)> = okta["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["kind"].as_str().unwrap(), k["ok"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [("GET /Users/{id}", 10), ("GET /Users?filter", 10), ("POST /Users", 10), ("PUT /Users/{id}", 10)]
    );
    let inc_kinds = incremental["kinds"].as_array().unwrap();
    assert!(inc_kinds.iter().all(|k| k["errors"] == serde_json::json!({})), "{incremental}");
    assert!(inc_kinds.iter().any(|k| k["kind"] == "DELETE /Users/{id}"), "{incremental}");
    let total: u64 = inc_kinds.iter().filter(|k| k["kind"] != "setup").map(|k| k["requests"].as_u64().unwrap()).sum();
    assert_eq!(total, 100);
    // Users of the second token live in the second tenant: 5 of okta's 10, 20 of the 40 set up,
    // minus deletes there.
    let second = app.get(&other, "/Users?count=0").await;
    assert!(second.body["totalResults"].as_u64().unwrap() >= 5 + 20 - 2, "{}", second.text);

    // Only loopback.
    let out = Command::new(env!("CARGO_BIN_EXE_scimgw-load"))
        .args(["--base-url", "http://example.com/scim/v2", "--scenario", "get", "--token", "t"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
}

/// Paced mixed traffic and the tool's ceiling scenario: every kind of the mix is sent, all 2xx,
/// and the pacing holds the run to its schedule (50 requests at 100/s take at least ~0.5 s).
#[actix_web::test]
async fn paced_mixed_traffic_and_the_ceiling() {
    let app = std::sync::Arc::new(TestApp::spawn(Backend::Sqlite).await.unwrap());
    let token = app.token("bench");
    let a = app.clone();
    let (mixed, ceiling) = tokio::task::spawn_blocking(move || {
        let mixed = run(
            &a,
            &token,
            &["--scenario", "mixed", "--users", "10", "--requests", "50", "--rate", "100", "--concurrency", "8"],
        );
        let ceiling = run(&a, &token, &["--scenario", "ceiling", "--requests", "30", "--concurrency", "4"]);
        (mixed, ceiling)
    })
    .await
    .unwrap();
    let kinds: Vec<&str> = mixed["kinds"].as_array().unwrap().iter().map(|k| k["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["GET /Users/{id}", "GET /Users?filter", "PATCH /Users/{id}", "POST /Users"], "{mixed}");
    assert!(mixed["kinds"].as_array().unwrap().iter().all(|k| k["errors"] == serde_json::json!({})), "{mixed}");
    let sent: u64 = mixed["kinds"].as_array().unwrap().iter().map(|k| k["ok"].as_u64().unwrap()).sum();
    assert_eq!(sent, 50);
    assert!(mixed["seconds"].as_f64().unwrap() >= 0.45, "pacing at 100/s: {mixed}");
    assert_eq!(ceiling["kinds"][0]["kind"], "GET /healthz");
    assert_eq!(ceiling["kinds"][0]["ok"], 30, "{ceiling}");
}

/// The group workload: one group with every user created first as a member (more than one
/// PATCH's worth), read whole and each read counted.
#[actix_web::test]
async fn the_group_workload_reads_one_group_of_every_user() {
    let app = std::sync::Arc::new(TestApp::spawn(Backend::Sqlite).await.unwrap());
    let token = app.token("bench");
    let (a, t) = (app.clone(), token.clone());
    let report = tokio::task::spawn_blocking(move || {
        run(&a, &t, &["--scenario", "group-get", "--users", "1005", "--requests", "5", "--concurrency", "2"])
    })
    .await
    .unwrap();
    assert_eq!(report["kinds"][0]["kind"], "GET /Groups/{id}", "{report}");
    assert_eq!(report["kinds"][0]["ok"], 5, "{report}");
    let groups = app.get(&token, "/Groups").await;
    assert_eq!(groups.body["Resources"][0]["members"].as_array().map(Vec::len), Some(1005));
}

/// With `--sim`, the tool waits for the outbox to drain and finds every acknowledged state in the
/// simulator's log: creates by email, PATCHes by their new givenName.
#[actix_web::test]
async fn end_to_end_lag_is_measured_at_the_simulator() {
    use scimgw_e2e::delivery::{DeliveryApp, TargetSpec};
    let d = DeliveryApp::spawn(Backend::Sqlite, vec![TargetSpec::vendor("jostle", "jostle", "")]).await.unwrap();
    let sim = d.sim().origin();
    let (base, token) = (d.app.base_url.clone(), d.token.clone());
    let report = tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_scimgw-load"))
            .args(["--base-url", &base, "--json", "--scenario", "entra-initial", "--users", "12"])
            .args(["--concurrency", "4", "--drain-timeout", "60", "--sim", &sim])
            .env("SCIMGW_LOAD_TOKEN", token)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    })
    .await
    .unwrap();
    let delivery = &report["delivery"];
    assert_eq!(delivery["drained"], true, "{report}");
    assert_eq!(delivery["acknowledged_states"], 24, "12 creates and 12 PATCHes: {report}");
    let at_sim = &delivery["sims"][0];
    assert_eq!((at_sim["matched"].as_u64(), at_sim["missing"].as_u64()), (Some(24), Some(0)), "{report}");
    assert!(at_sim["lag_p50_ms"].as_f64().unwrap() > 0.0, "{report}");
}
