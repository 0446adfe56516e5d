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

    // Only loopback.
    let out = Command::new(env!("CARGO_BIN_EXE_scimgw-load"))
        .args(["--base-url", "http://example.com/scim/v2", "--scenario", "get", "--token", "t"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
}
