//! Operator actions on the audit trail: `tenant add/remove`, `key issue/revoke`, `deliveries
//! retry`, `resync`, `reconcile --repair` and a SIGHUP reload are recorded with who (`--actor`,
//! `SCIMGW_ACTOR` or the OS user), when and what changed — never a token — and `scimgw audit`
//! shows them beside the API's events, also after the tenant is removed. Both engines.
#![cfg(test)]

mod common;

use std::time::Duration;

use common::{Gw, until};
use scimgw_store::Backend;
use scimgw_store::testing::TestDb;
use serde_json::Value;
use vendor_sim::{Faults, Sim, SimConfig};

fn trail(gw: &Gw, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["audit", "--json"];
    all.extend_from_slice(args);
    serde_json::from_str::<Value>(&gw.ok(&all)).unwrap().as_array().cloned().unwrap_or_default()
}

fn operator<'a>(events: &'a [Value], operation: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["kind"] == "operator" && e["operation"] == operation).collect()
}

async fn operator_actions_are_audited(backend: Backend) {
    let Some(db) = TestDb::on(backend) else { return };
    let sim = Sim::start(SimConfig::default()).unwrap();
    let gw = Gw::new(&db.config().url, &sim, "max_attempts = 1\n");
    gw.ok(&["--actor", "alice", "tenant", "add", "acme"]);
    let issued: Value = serde_json::from_str(&gw.ok(&[
        "--actor",
        "alice",
        "key",
        "issue",
        "--tenant",
        "acme",
        "--label",
        "Entra prod",
        "--json",
    ]))
    .unwrap();
    let token = issued["token"].as_str().unwrap().to_owned();
    let key_id = issued["key_id"].as_str().unwrap().to_owned();

    // A dead delivery to retry: the app refuses the first create for good.
    sim.set_faults(Faults {
        fail_next: 1,
        error: vendor_sim::InjectedError {
            status: 400,
            scim_type: Some("invalidValue".into()),
            detail: "no".into(),
            retry_after_secs: None,
        },
        ..Faults::default()
    })
    .unwrap();
    let serve = gw.serve().await;
    gw.create(&token, "ada@example.com").await;
    let dead =
        until(Duration::from_secs(20), || gw.ok(&["deliveries", "list", "--state", "dead"]).lines().count() > 1).await;
    assert!(dead, "{}", gw.log_text());
    let by_env = |args: &[&str]| {
        let out = gw.cmd(args).env("SCIMGW_ACTOR", "bob").output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    by_env(&["deliveries", "retry", "--dead", "--tenant", "acme", "--target", "crm"]);
    assert!(until(Duration::from_secs(20), || sim.users().len() == 1).await, "{}", gw.log_text());
    by_env(&["resync", "--tenant", "acme", "--target", "crm"]);
    gw.ok(&["--actor", "carol", "reconcile", "--tenant", "acme", "--target", "crm", "--repair"]);

    // A reload that adds a target.
    let tenants = gw.dir.path().join("tenants/acme.toml");
    let mut file = std::fs::read_to_string(&tenants).unwrap();
    file.push_str(&format!(
        "\n[[targets]]\nname = \"hr\"\nkind = \"scim\"\nbase_url = \"{}\"\ntoken_file = \"{}\"\n",
        sim.base_url(),
        gw.dir.path().join("crm.token").display()
    ));
    std::fs::write(&tenants, file).unwrap();
    let hup = std::process::Command::new("kill").args(["-HUP", &serve.0.id().to_string()]).status().unwrap();
    assert!(hup.success());
    let reloaded = until(Duration::from_secs(20), || {
        operator(&trail(&gw, &["--tenant", "acme"]), "targets-reload")
            .iter()
            .any(|e| e["detail"] == "targets reloaded: added hr")
    })
    .await;
    assert!(reloaded, "{:?}\n{}", trail(&gw, &["--tenant", "acme"]), gw.log_text());
    drop(serve);
    gw.ok(&["--actor", "alice", "key", "revoke", &key_id]);

    let events = trail(&gw, &["--tenant", "acme"]);
    let one = |operation: &str| -> Value {
        let found = operator(&events, operation);
        assert_eq!(found.len(), 1, "{operation}: {events:?}");
        found[0].clone()
    };
    let added = one("tenant-add");
    assert_eq!(added["actor"], "alice");
    assert!(added["detail"].as_str().unwrap().starts_with("created tenant acme ("), "{added}");
    let issue = one("key-issue");
    assert_eq!(issue["detail"], format!("issued key {key_id} (label \"Entra prod\")"));
    let retry = one("deliveries-retry");
    assert_eq!((retry["actor"].as_str(), retry["target"].as_str()), (Some("bob"), Some("crm")));
    assert_eq!(retry["detail"], "re-queued 1 dead deliveries to crm");
    let resync = one("resync");
    assert_eq!(resync["actor"], "bob");
    assert!(resync["detail"].as_str().unwrap().starts_with("queued 1 user(s) for crm"), "{resync}");
    let repair = one("reconcile-repair");
    assert_eq!(repair["actor"], "carol");
    let reload = one("targets-reload");
    assert!(reload["actor"].as_str().unwrap().starts_with("gateway pid "), "{reload}");
    assert_eq!(one("key-revoke")["detail"], format!("revoked key {key_id} (label \"Entra prod\")"));
    // Beside the API's: the create, newest first overall.
    assert!(events.iter().any(|e| e["kind"] == "api" && e["operation"] == "create"), "{events:?}");
    let times: Vec<&str> = events.iter().map(|e| e["at"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first: {times:?}");
    let table = gw.ok(&["audit", "--tenant", "acme"]);
    assert!(table.contains("operator alice") && table.contains(&format!("key {key_id}")), "{table}");

    // The removal outlives the tenant; the trail never holds the token.
    gw.ok(&["--actor", "alice", "tenant", "remove", "acme"]);
    let after = trail(&gw, &["--tenant", "acme"]);
    assert_eq!(operator(&after, "tenant-remove").len(), 1, "{after:?}");
    assert!(after.iter().all(|e| e["kind"] == "operator"), "the API events went with the tenant: {after:?}");
    let everything = trail(&gw, &[]);
    let operations: Vec<&str> = everything.iter().rev().map(|e| e["operation"].as_str().unwrap()).collect();
    assert_eq!(
        operations,
        [
            "tenant-add",
            "key-issue",
            "deliveries-retry",
            "resync",
            "reconcile-repair",
            "targets-reload",
            "key-revoke",
            "tenant-remove"
        ],
        "without --tenant: every operator action, oldest last"
    );
    let secret = token.rsplit('_').next().unwrap();
    let text = serde_json::to_string(&everything).unwrap();
    assert!(!text.contains(secret), "a token on the trail");
    assert!(!db.everything_stored().contains(secret), "a token in the store");
}

#[tokio::test]
async fn operator_actions_are_audited_sqlite() {
    operator_actions_are_audited(Backend::Sqlite).await;
}

#[tokio::test]
async fn operator_actions_are_audited_postgres() {
    operator_actions_are_audited(Backend::Postgres).await;
}
