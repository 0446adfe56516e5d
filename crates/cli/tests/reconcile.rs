//! `scimgw reconcile` as an operator runs it (exit codes, the table, `--json`, `--repair`, what
//! `status` shows) and a target's `reconcile_every` schedule in `serve`, with `/metrics`.
#![cfg(test)]

mod common;

use std::time::Duration;

use common::{Gw, until};

use scimgw_store::Backend;
use scimgw_store::testing::TestDb;
use serde_json::{Value, json};
use vendor_sim::{Sim, SimConfig};

fn status_of(gw: &Gw) -> Value {
    let all: Value = serde_json::from_str(&gw.ok(&["status", "--json"])).unwrap();
    all.as_array().unwrap().iter().find(|r| r["target"] == "crm").cloned().unwrap()
}

async fn operator_reconciles_from_the_cli(backend: Backend) {
    let Some(db) = TestDb::on(backend) else { return };
    let sim = Sim::start(SimConfig::default()).unwrap();
    let gw = Gw::new(&db.config().url, &sim, "");
    let token = gw.token();
    let mut serve = gw.serve().await;
    for i in 0..3 {
        gw.create(&token, &format!("user{i}@example.com")).await;
    }
    assert!(until(Duration::from_secs(20), || sim.users().len() == 3).await);
    let reconcile = ["reconcile", "--tenant", "acme", "--target", "crm"];

    let clean = gw.run(&reconcile);
    assert_eq!(clean.status.code(), Some(0), "{}", String::from_utf8_lossy(&clean.stderr));
    let text = String::from_utf8_lossy(&clean.stdout);
    assert!(text.contains("IN SYNC") && text.contains("listed 3 account(s)"), "{text}");

    // Someone renames an account inside the app.
    let victim = sim.user_by_username("user1@example.com").unwrap();
    let id = victim["id"].as_str().unwrap();
    sim.edit_user(id, json!([{"op": "replace", "path": "userName", "value": "renamed-secret@example.com"}])).unwrap();

    let drift = gw.run(&reconcile);
    assert_eq!(drift.status.code(), Some(3), "drift exits 3: {}", String::from_utf8_lossy(&drift.stderr));
    let text = String::from_utf8_lossy(&drift.stdout);
    assert!(text.contains("drift") && text.contains("userName") && text.contains("user1@example.com"), "{text}");
    assert!(!text.contains("renamed-secret"), "no values outside --json: {text}");
    assert!(text.contains("--repair queues"), "{text}");

    let json_out = gw.run(&["reconcile", "--tenant", "acme", "--target", "crm", "--json"]);
    assert_eq!(json_out.status.code(), Some(3));
    let report: Value = serde_json::from_slice(&json_out.stdout).unwrap();
    assert_eq!(report["tenant"], "acme");
    assert_eq!(report["drifted"], 1);
    let finding = &report["findings"][0];
    assert_eq!((finding["kind"].as_str(), finding["remote_id"].as_str()), (Some("drift"), Some(id)));
    assert_eq!(finding["differences"][0]["found"], "renamed-secret@example.com");
    assert_eq!(finding["differences"][0]["expected"], "user1@example.com");

    let status = status_of(&gw);
    assert_eq!(status["reconcile"]["drifted"], 1, "{status}");
    assert_eq!(status["reconcile"]["triggered_by"], "cli");
    let table = gw.ok(&["status"]);
    assert!(table.contains("RECONCILED") && table.contains("DRIFTED"), "{table}");

    // --repair queues the delivery; the running gateway sends it.
    let repair = gw.run(&["reconcile", "--tenant", "acme", "--target", "crm", "--repair"]);
    assert_eq!(repair.status.code(), Some(3), "it reports what it found, and repairs it");
    assert!(String::from_utf8_lossy(&repair.stdout).contains("queued 1 repair(s)"));
    assert!(
        until(Duration::from_secs(20), || sim.user(id).is_some_and(|u| u["userName"] == "user1@example.com")).await,
        "the repair was not delivered: {}",
        gw.log_text()
    );
    let again = gw.run(&reconcile);
    assert_eq!(again.status.code(), Some(0), "{}", String::from_utf8_lossy(&again.stdout));
    assert_eq!(status_of(&gw)["reconcile"]["drifted"], 0);
    serve.kill();
    assert!(!gw.log_text().contains("renamed-secret"), "values never reach the log");

    // Mistakes are named.
    let unknown = gw.run(&["reconcile", "--tenant", "acme", "--target", "nope"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no target named nope"));
    // The app being down fails the run (exit 1), recorded for `status`.
    let outage = vendor_sim::Outage::indefinite(vendor_sim::OutageMode::Refuse);
    sim.set_faults(vendor_sim::Faults { outage: Some(outage), ..vendor_sim::Faults::default() }).unwrap();
    let down = gw.run(&reconcile);
    assert_eq!(down.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&down.stderr).contains("could not connect"),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert!(status_of(&gw)["reconcile"]["error"].as_str().is_some_and(|e| e.contains("could not connect")));
}

#[tokio::test]
async fn operator_reconciles_from_the_cli_sqlite() {
    operator_reconciles_from_the_cli(Backend::Sqlite).await;
}

#[tokio::test]
async fn operator_reconciles_from_the_cli_postgres() {
    operator_reconciles_from_the_cli(Backend::Postgres).await;
}

#[tokio::test]
async fn a_scheduled_reconcile_shows_in_status_and_metrics() {
    let db = TestDb::sqlite();
    let sim = Sim::start(SimConfig::default()).unwrap();
    let gw = Gw::new(&db.config().url, &sim, "reconcile_every = \"1s\"\n");
    let token = gw.token();
    let _serve = gw.serve().await;
    for i in 0..2 {
        gw.create(&token, &format!("user{i}@example.com")).await;
    }
    assert!(until(Duration::from_secs(20), || sim.users().len() == 2).await);
    let id = sim.user_by_username("user0@example.com").unwrap()["id"].as_str().unwrap().to_owned();
    sim.edit_user(&id, json!([{"op": "replace", "path": "active", "value": false}])).unwrap();
    let seen = until(Duration::from_secs(30), || {
        let s = status_of(&gw);
        s["reconcile"]["drifted"] == 1 && s["reconcile"]["triggered_by"] == "schedule"
    })
    .await;
    assert!(seen, "no scheduled run found the drift: {} {}", status_of(&gw), gw.log_text());
    let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", gw.port)).await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("scimgw_reconcile_findings{tenant=\"acme\",target=\"crm\",finding=\"drifted\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("scimgw_reconcile_last_run_failed{tenant=\"acme\",target=\"crm\"} 0"), "{metrics}");
    // The schedule only reports (reconcile_repair is off): the app keeps its change.
    assert_eq!(sim.user(&id).unwrap()["active"], json!(false));
    assert!(gw.log_text().contains("scheduled reconcile"), "{}", gw.log_text());
}

/// An admin's shell holds the token of the target being reconciled, not every vendor's: another
/// target of the tenant whose token variable is not set does not stop it.
#[test]
fn reconcile_reads_only_the_secret_of_its_own_target() {
    let db = TestDb::sqlite();
    let sim = Sim::start(SimConfig::default()).unwrap();
    let gw = Gw::new(&db.config().url, &sim, "");
    gw.token();
    let file = gw.dir.path().join("tenants/acme.toml");
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str(
        "\n[[targets]]\nname = \"hr\"\nkind = \"scim\"\nbase_url = \"http://127.0.0.1:9/scim/v2\"\n\
         token_env = \"SCIMGW_TEST_HR_TOKEN_NOT_IN_THIS_SHELL\"\n",
    );
    std::fs::write(&file, text).unwrap();
    let crm = gw.run(&["reconcile", "--tenant", "acme", "--target", "crm"]);
    assert_eq!(crm.status.code(), Some(0), "{}", String::from_utf8_lossy(&crm.stderr));
    let hr = gw.run(&["reconcile", "--tenant", "acme", "--target", "hr"]);
    assert_eq!(hr.status.code(), Some(1));
    let said = String::from_utf8_lossy(&hr.stderr);
    assert!(said.contains("SCIMGW_TEST_HR_TOKEN_NOT_IN_THIS_SHELL (token_env) is not set"), "{said}");
    let none = gw.run(&["reconcile", "--tenant", "acme", "--target", "erp"]);
    assert!(String::from_utf8_lossy(&none.stderr).contains("has no target named erp"));
}
