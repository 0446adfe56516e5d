//! A target scoped by group, as an operator meets it from the CLI: `config check` warns about a
//! group the tenant does not have, `users list --filter` and `preview --user` read the users'
//! groups, and `reconcile` calls a member without an account `missing` and the account of a user
//! who left the group an `orphan` — the same decision the dispatcher makes.
#![cfg(test)]

mod common;

use std::time::Duration;

use common::{Gw, until};

use scimgw_store::Backend;
use scimgw_store::testing::TestDb;
use serde_json::{Value, json};
use vendor_sim::{Faults, Sim, SimConfig};

const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

fn text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

async fn a_group_scope_from_the_cli(backend: Backend) {
    let Some(db) = TestDb::on(backend) else { return };
    let sim = Sim::start(SimConfig::default()).unwrap();
    let gw = Gw::new(
        &db.config().url,
        &sim,
        "scope = 'groups.display eq \"Sales\"'\ndeprovision = \"deactivate\"\nmax_attempts = 2",
    );
    let token = gw.token();

    // Before Entra provisioned the group: a warning, not an error.
    let check = gw.run(&["config", "check", "--offline"]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));
    assert!(text(&check).contains("acme/crm") && text(&check).contains("no group named \"Sales\""), "{}", text(&check));

    let mut serve = gw.serve().await;
    let ann = gw.create(&token, "ann@example.com").await;
    let bob = gw.create(&token, "bob@example.com").await;
    let group = json!({"schemas": [GROUP_URN], "displayName": "sales", "members": [{"value": ann}]});
    let sales = gw.scim(reqwest::Method::POST, "/Groups", &token, group, 201).await;
    let sales = sales["id"].as_str().unwrap().to_owned();
    assert!(until(Duration::from_secs(20), || sim.user_by_username("ann@example.com").is_some()).await);
    assert!(sim.user_by_username("bob@example.com").is_none(), "bob is in no group");

    let check = gw.run(&["config", "check", "--offline"]);
    assert!(!text(&check).contains("no group named"), "names compare ignoring case: {}", text(&check));
    let listed = gw.ok(&["users", "list", "--tenant", "acme", "--json", "--filter", "groups.display eq \"Sales\""]);
    let listed: Vec<Value> = listed.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0]["id"].as_str(), listed[0]["groups"][0]["value"].as_str()),
        (Some(ann.as_str()), Some(sales.as_str()))
    );
    let preview = gw.run(&["preview", "--tenant", "acme", "--target", "crm", "--user", &ann]);
    assert!(text(&preview).contains("scope:    in scope"), "{}", text(&preview));
    let preview = gw.run(&["preview", "--tenant", "acme", "--target", "crm", "--user", &bob]);
    assert!(text(&preview).contains("OUT of scope"), "{}", text(&preview));
    let clean = gw.run(&["reconcile", "--tenant", "acme", "--target", "crm", "--json"]);
    assert_eq!(clean.status.code(), Some(0), "in sync: {}", text(&clean));

    // The app is down while the memberships change: both deliveries die. Reconcile, once it is
    // back, sees what the dispatcher would have done: bob, now in scope, has no account (missing);
    // ann, who left, still has an active one (an orphan to deprovision).
    sim.set_faults(Faults { error_rate: 1.0, ..Faults::default() }).unwrap();
    let ops = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
        {"op": "Add", "path": "members", "value": [{"value": bob}]},
        {"op": "Remove", "path": "members", "value": [{"value": ann}]},
    ]});
    gw.scim(reqwest::Method::PATCH, &format!("/Groups/{sales}"), &token, ops, 204).await;
    let dead = || gw.ok(&["deliveries", "list", "--tenant", "acme", "--state", "dead"]);
    assert!(until(Duration::from_secs(20), || dead().contains(&ann) && dead().contains(&bob)).await, "{}", dead());
    sim.clear_faults().unwrap();
    let found = gw.run(&["reconcile", "--tenant", "acme", "--target", "crm", "--json"]);
    assert_eq!(found.status.code(), Some(3), "{}", text(&found));
    let report: Value = serde_json::from_slice(&found.stdout).unwrap();
    assert_eq!((report["missing"].as_u64(), report["orphans"].as_u64()), (Some(1), Some(1)), "{report}");
    let kind_of = |name: &str| {
        report["findings"].as_array().unwrap().iter().find(|f| f["user_name"] == name).map(|f| f["kind"].clone())
    };
    assert_eq!(kind_of("bob@example.com"), Some(json!("missing")), "{report}");
    assert_eq!(kind_of("ann@example.com"), Some(json!("orphan")), "{report}");
    serve.kill();
}

#[tokio::test]
async fn a_group_scope_from_the_cli_sqlite() {
    a_group_scope_from_the_cli(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_group_scope_from_the_cli_postgres() {
    a_group_scope_from_the_cli(Backend::Postgres).await;
}
