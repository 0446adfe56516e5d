//! Retention in the running gateway: the dispatcher purges done deliveries and audit events older
//! than `[retention]` by itself, and `scimgw purge --dry-run` / `scimgw purge` say and do the
//! same on demand. Both engines.
#![cfg(test)]

mod common;

use std::time::Duration;

use common::{Gw, until};
use scimgw_store::Backend;
use scimgw_store::testing::TestDb;
use serde_json::Value;
use vendor_sim::{Sim, SimConfig};

fn done_rows(gw: &Gw) -> usize {
    gw.ok(&["deliveries", "list", "--state", "done"]).lines().count().saturating_sub(1)
}

fn api_events(gw: &Gw) -> usize {
    let out = gw.ok(&["audit", "--tenant", "acme", "--json"]);
    serde_json::from_str::<Value>(&out).unwrap().as_array().unwrap().iter().filter(|e| e["kind"] == "api").count()
}

async fn the_dispatcher_purges_what_retention_lets_go(backend: Backend) {
    let Some(db) = TestDb::on(backend) else { return };
    let sim = Sim::start(SimConfig::default()).unwrap();
    let gw = Gw::new(&db.config().url, &sim, "");
    let token = gw.token();

    // First without a purge in the process: the CLI's dry run and purge.
    let serve = gw
        .serve_at(gw.port, &gw.log(), &[("SCIMGW_RETENTION__DELIVERIES", "0"), ("SCIMGW_RETENTION__AUDIT", "0")])
        .await;
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(gw.create(&token, &format!("u{i}@example.com")).await);
    }
    assert!(until(Duration::from_secs(20), || done_rows(&gw) == 4).await, "{}", gw.log_text());
    drop(serve);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let aged = |args: &[&str]| {
        let out = gw
            .cmd(args)
            .env("SCIMGW_RETENTION__DELIVERIES", "1s")
            .env("SCIMGW_RETENTION__AUDIT", "1s")
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let dry = aged(&["purge", "--dry-run"]);
    assert!(dry.starts_with("would purge 4 done deliveries with 4 attempts, 4 audit events"), "{dry}");
    assert_eq!(done_rows(&gw), 4, "a dry run changes nothing");
    let purged = aged(&["purge"]);
    assert!(purged.starts_with("purged 4 done deliveries with 4 attempts, 4 audit events"), "{purged}");
    assert_eq!((done_rows(&gw), api_events(&gw)), (0, 0));
    // The users and their links stay: the purge takes history, not state.
    let shown = gw.ok(&["users", "show", &ids[0]]);
    assert!(
        shown.contains("u0@example.com") && shown.lines().any(|l| l.starts_with("crm") && l.contains("active")),
        "{shown}"
    );

    // Then the dispatcher, every second, keeping a second's worth.
    let env =
        [("SCIMGW_RETENTION__DELIVERIES", "1s"), ("SCIMGW_RETENTION__AUDIT", "1s"), ("SCIMGW_RETENTION__EVERY", "1s")];
    let serve = gw.serve_at(gw.port, &gw.log(), &env).await;
    gw.disable(&token, &ids[1]).await;
    assert!(
        until(Duration::from_secs(20), || sim.user_by_username("u1@example.com").is_some_and(|u| u["active"] == false))
            .await
    );
    let gone = until(Duration::from_secs(20), || done_rows(&gw) == 0 && api_events(&gw) == 0).await;
    assert!(gone, "done rows {}, API events {}: {}", done_rows(&gw), api_events(&gw), gw.log_text());
    assert!(gw.log_text().contains("retention: purged"), "{}", gw.log_text());
    let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", gw.port)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"scimgw_purged_rows_total{table="deliveries"} 1"#), "{metrics}");
    drop(serve);
}

#[tokio::test]
async fn the_dispatcher_purges_what_retention_lets_go_sqlite() {
    the_dispatcher_purges_what_retention_lets_go(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_dispatcher_purges_what_retention_lets_go_postgres() {
    the_dispatcher_purges_what_retention_lets_go(Backend::Postgres).await;
}
