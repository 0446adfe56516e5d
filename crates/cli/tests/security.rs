//! Security of the `scimgw` process (issue 8): TLS verification towards vendors, tokens at rest,
//! and secrets kept out of every output an operator sees.
#![cfg(test)]

mod common;

use std::time::{Duration, Instant};

use common::{Gw, serve_tls, until};
use scimgw_store::Backend;
use scimgw_store::testing::TestDb;
use serde_json::Value;
use vendor_sim::{Faults, InjectedError, Sim, SimConfig};

/// A gateway on HTTPS with a self-signed certificate plays a vendor app. Another gateway delivering
/// to it refuses the certificate by default; with `tls_skip_verify = true` it delivers, and says
/// so in its log and in `config check`.
#[tokio::test]
async fn vendor_certificates_are_verified_unless_explicitly_skipped() {
    let unused = Sim::start(SimConfig::default()).unwrap();
    let (vendor_db, db) = (TestDb::sqlite(), TestDb::sqlite());
    let vendor = Gw::new(&vendor_db.config().url, &unused, "");
    let vendor_token = vendor.token();
    let _vendor = serve_tls(&vendor).await;

    let gw = Gw::new(&db.config().url, &unused, "");
    let token = gw.token();
    std::fs::write(gw.dir.path().join("vendor.token"), &vendor_token).unwrap();
    let target = |extra: &str| {
        let file = format!(
            "[[targets]]\nname = \"app\"\nkind = \"scim\"\nbase_url = \"https://127.0.0.1:{}/scim/v2\"\n\
             token_file = \"{}\"\nbackoff_base_ms = 50\nbackoff_max_ms = 200\nmax_attempts = 2\n{extra}\n",
            vendor.port,
            gw.dir.path().join("vendor.token").display()
        );
        std::fs::write(gw.dir.path().join("tenants/acme.toml"), file).unwrap();
    };
    target("");
    let mut serve = gw.serve().await;
    gw.create(&token, "strict@example.com").await;
    let dead =
        until(Duration::from_secs(20), || gw.ok(&["deliveries", "list", "--state", "dead"]).contains(" dead ")).await;
    let listing = gw.ok(&["deliveries", "list", "--state", "dead"]);
    serve.kill();
    assert!(dead, "the delivery to a self-signed vendor was not refused: {listing}");
    let id = listing.lines().find_map(|l| l.split_whitespace().find(|w| w.len() >= 32)).unwrap().to_owned();
    let shown = gw.ok(&["deliveries", "show", &id]);
    assert!(shown.to_lowercase().contains("certificate"), "the error names the certificate: {shown}");

    target("tls_skip_verify = true");
    let check = gw.run(&["config", "check"]);
    let said = format!("{}{}", String::from_utf8_lossy(&check.stdout), String::from_utf8_lossy(&check.stderr));
    assert!(said.contains("tls_skip_verify"), "config check warns: {said}");
    let mut serve = gw.serve().await;
    gw.ok(&["deliveries", "retry", &id]);
    let client = reqwest::Client::builder().danger_accept_invalid_certs(true).build().unwrap();
    let arrived = {
        let mut found = false;
        let deadline = Instant::now() + Duration::from_secs(20);
        while !found && Instant::now() < deadline {
            let r: Value = client
                .get(format!(
                    "https://127.0.0.1:{}/scim/v2/Users?filter=userName%20eq%20%22strict@example.com%22",
                    vendor.port
                ))
                .bearer_auth(&vendor_token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            found = r["totalResults"] == 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        found
    };
    serve.kill();
    assert!(arrived, "with tls_skip_verify the user was delivered: {}", gw.log_text());
    assert!(gw.log_text().contains("tls_skip_verify = true"), "the serve log warns: {}", gw.log_text());
}

/// After a full run — deliveries, a vendor that echoes its credential in an error, failed and
/// successful requests, every operator command — neither the gateway's token secret nor the
/// vendor's token is in the store (its raw files on SQLite, every row on PostgreSQL), the debug
/// log, `config check`, `status`, `deliveries`, `key list`, `/metrics` or an error body.
async fn secrets_stay_out_of_the_store_logs_and_outputs(backend: Backend) {
    let Some(db) = TestDb::on(backend) else { return };
    let sim = Sim::start(SimConfig::default()).unwrap();
    let vendor_secret = sim.token().to_owned();
    let echo = InjectedError::new(500, format!("rejected request with Authorization: Bearer {vendor_secret}"));
    sim.set_faults(Faults { fail_next: 3, error: echo, ..Faults::default() }).unwrap();
    let gw = Gw::new(&db.config().url, &sim, "");
    let token = gw.token();
    let secret = token.rsplit('_').next().unwrap().to_owned();
    assert_eq!(secret.len(), 64);
    let mut serve = gw.serve_at(gw.port, &gw.log(), &[("SCIMGW_LOG__LEVEL", "debug")]).await;
    for i in 0..3 {
        gw.create(&token, &format!("s{i}@example.com")).await;
    }
    assert!(until(Duration::from_secs(30), || sim.users().len() == 3).await, "{}", gw.log_text());
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{}/scim/v2", gw.port);
    let mut outputs = Vec::new();
    // A wrong secret for a real key id, a revoked key, a missing resource: their answers.
    let wrong = token.replace(&secret, &"0".repeat(64));
    for (auth, path) in [(&wrong, "/Users"), (&token, "/Users/nope"), (&token, "/Users?filter=bad%20filter")] {
        let r = client.get(format!("{base}{path}")).bearer_auth(auth).send().await.unwrap();
        outputs.push(format!("{} {}", r.status(), r.text().await.unwrap()));
    }
    outputs
        .push(client.get(format!("http://127.0.0.1:{}/metrics", gw.port)).send().await.unwrap().text().await.unwrap());
    let key_id = token.split('_').nth(1).unwrap().to_owned();
    for args in [
        vec!["config", "check"],
        vec!["status"],
        vec!["status", "--json"],
        vec!["deliveries", "list"],
        vec!["key", "list", "--tenant", "acme"],
        vec!["tenant", "list"],
        vec!["audit", "--tenant", "acme"],
        vec!["audit", "--tenant", "acme", "--json"],
        vec!["key", "revoke", &key_id],
    ] {
        let out = gw.run(&args);
        outputs.push(format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)));
    }
    // The audit trail names the key of each create.
    let audit: Value = serde_json::from_str(&gw.ok(&["audit", "--tenant", "acme", "--json", "--since", "1h"])).unwrap();
    let creates: Vec<&Value> = audit.as_array().unwrap().iter().filter(|e| e["operation"] == "create").collect();
    assert_eq!(creates.len(), 3, "{audit}");
    assert!(creates.iter().all(|e| e["key_id"] == key_id.as_str() && e["version"] == 1), "{audit}");
    let unknown = gw.run(&["audit", "--tenant", "nope"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no tenant named nope"));
    // The key is trusted from the gateway's cache for auth.key_cache_ms (1 s) after its last
    // store read: the revocation lands within that.
    let mut revoked = client.get(format!("{base}/Users")).bearer_auth(&token).send().await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(1500);
    while revoked.status() != 401 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        revoked = client.get(format!("{base}/Users")).bearer_auth(&token).send().await.unwrap();
    }
    assert_eq!(revoked.status(), 401, "revocation takes effect within auth.key_cache_ms");
    outputs.push(revoked.text().await.unwrap());
    let listing = gw.ok(&["deliveries", "list"]);
    for id in listing.lines().skip(1).filter_map(|l| l.split_whitespace().next()) {
        outputs.push(gw.ok(&["deliveries", "show", id]));
    }
    serve.kill();
    outputs.push(gw.log_text());
    let everything = outputs.join("\n");
    assert!(
        everything.contains("rejected request with Authorization: Bearer ***"),
        "the vendor's echo is kept, redacted"
    );
    assert!(everything.contains(&key_id), "the key id is shown where useful");
    for (what, needle) in [("the token's secret", &secret), ("the vendor token", &vendor_secret)] {
        assert!(!everything.contains(needle.as_str()), "{what} was printed or logged");
        assert!(!db.everything_stored().contains(needle.as_str()), "{what} is in the store");
    }
    // The store keeps the hash, and the scan would have seen the secret had it been stored.
    assert!(db.everything_stored().contains(&key_id), "the scan reads the api_keys rows");
}

#[tokio::test]
async fn secrets_stay_out_of_the_store_logs_and_outputs_sqlite() {
    secrets_stay_out_of_the_store_logs_and_outputs(Backend::Sqlite).await;
}

#[tokio::test]
async fn secrets_stay_out_of_the_store_logs_and_outputs_postgres() {
    secrets_stay_out_of_the_store_logs_and_outputs(Backend::Postgres).await;
}

/// Tenant isolation across every CLI command that takes a tenant: run for one tenant, none of them
/// shows, finds or touches the other tenant's users, keys, targets, deliveries or audit events.
/// (Every SCIM endpoint is covered over HTTP in `tests/tests/isolation.rs`.)
#[tokio::test]
async fn cli_commands_for_one_tenant_never_reach_another() {
    let db = TestDb::sqlite();
    let sim = Sim::start(SimConfig::default()).unwrap();
    let gw = Gw::new(&db.config().url, &sim, "");
    let acme = gw.token();
    gw.ok(&["tenant", "add", "globex"]);
    let issued: Value = serde_json::from_str(&gw.ok(&["key", "issue", "--tenant", "globex", "--json"])).unwrap();
    let globex = issued["token"].as_str().unwrap().to_owned();
    let globex_key = issued["key_id"].as_str().unwrap().to_owned();
    std::fs::write(
        gw.dir.path().join("tenants/globex.toml"),
        format!(
            "[[targets]]\nname = \"erp\"\nkind = \"scim\"\nbase_url = \"{}\"\ntoken_file = \"{}\"\n",
            sim.base_url(),
            gw.dir.path().join("crm.token").display()
        ),
    )
    .unwrap();
    let mut serve = gw.serve().await;
    let mine = gw.create(&acme, "mine@acme.example").await;
    let theirs = gw.create(&globex, "theirs@globex.example").await;
    assert!(until(Duration::from_secs(20), || sim.users().len() == 2).await);
    serve.kill();

    let secrets_of_globex = [theirs.as_str(), "theirs@globex.example", globex_key.as_str(), "erp"];
    let shows_nothing_of_globex = |args: &[&str]| {
        let out = gw.run(args);
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        for s in secrets_of_globex {
            assert!(!text.contains(s), "`scimgw {}` shows {s}: {text}", args.join(" "));
        }
        (out.status.code(), text)
    };
    let (code, text) = shows_nothing_of_globex(&["users", "list", "--tenant", "acme"]);
    assert_eq!(code, Some(0));
    assert!(text.contains("mine@acme.example"), "{text}");
    shows_nothing_of_globex(&["users", "list", "--tenant", "acme", "--json", "--filter", "userName sw \"t\""]);
    let (code, _) = shows_nothing_of_globex(&["key", "list", "--tenant", "acme"]);
    assert_eq!(code, Some(0));
    let (code, text) = shows_nothing_of_globex(&["deliveries", "list", "--tenant", "acme"]);
    assert_eq!(code, Some(0));
    assert!(text.contains(&mine), "acme's delivery is listed: {text}");
    let (code, text) = shows_nothing_of_globex(&["audit", "--tenant", "acme", "--json"]);
    assert_eq!(code, Some(0));
    assert!(text.contains(&mine), "{text}");
    // Naming the other tenant's user or target under this tenant finds nothing.
    let out = gw.run(&["users", "show", &theirs, "--tenant", "acme"]);
    assert_ne!(out.status.code(), Some(0), "users show found globex's user under acme");
    let out = gw.run(&["preview", "--tenant", "acme", "--target", "crm", "--user", &theirs]);
    assert_ne!(out.status.code(), Some(0), "preview read globex's user under acme");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("theirs@globex.example"));
    let out = gw.run(&["resync", "--tenant", "acme", "--target", "erp"]);
    assert_ne!(out.status.code(), Some(0), "resync reached globex's target from acme");
    let (code, text) = shows_nothing_of_globex(&["resync", "--tenant", "acme", "--target", "crm"]);
    assert_eq!(code, Some(0), "{text}");
    // A key issued for acme opens acme only.
    let issued: Value = serde_json::from_str(&gw.ok(&["key", "issue", "--tenant", "acme", "--json"])).unwrap();
    let fresh = issued["token"].as_str().unwrap().to_owned();
    let mut serve = gw.serve().await;
    let client = reqwest::Client::new();
    let get = |token: &str, id: &str| {
        client.get(format!("http://127.0.0.1:{}/scim/v2/Users/{id}", gw.port)).bearer_auth(token.to_owned()).send()
    };
    assert_eq!(get(&fresh, &mine).await.unwrap().status(), 200);
    assert_eq!(get(&fresh, &theirs).await.unwrap().status(), 404);
    serve.kill();
    // Removing the other tenant leaves this one whole.
    gw.ok(&["tenant", "remove", "globex"]);
    let (_, text) = shows_nothing_of_globex(&["users", "list", "--tenant", "acme"]);
    assert!(text.contains("mine@acme.example"));
    let events: Value = serde_json::from_str(&gw.ok(&["audit", "--tenant", "acme", "--json"])).unwrap();
    assert_eq!(events.as_array().unwrap().iter().filter(|e| e["kind"] == "api").count(), 1, "{events}");
    assert!(events.as_array().unwrap().iter().all(|e| e["tenant"] != "globex"), "{events}");
}

/// The store's password, in each spelling libpq takes (user info, `password=`, a percent-encoded
/// key), stays out of what `migrate` prints when the server cannot be reached and of what `serve`
/// logs at every start; both still name the host.
#[tokio::test]
async fn the_store_password_stays_out_of_migrate_and_serve_output() {
    const SECRETS: [&str; 3] = ["pw-in-userinfo", "pw-in-query", "pw-encoded-key"];
    let with_passwords = |url: &str| {
        let (scheme, rest) = url.split_once("://").unwrap();
        let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        let sep = if rest.contains('?') { '&' } else { '?' };
        format!("{scheme}://postgres:{}@{rest}{sep}password={}&%70assword={}", SECRETS[0], SECRETS[1], SECRETS[2])
    };
    let leaks = |what: &str, text: &str| {
        for s in SECRETS {
            assert!(!text.contains(s), "{what} shows {s}: {text}");
        }
    };
    let sim = Sim::start(SimConfig::default()).unwrap();
    // Nothing listens on port 1: migrate fails, naming the store it tried.
    let gw = Gw::new(&with_passwords("postgres://127.0.0.1:1/scim"), &sim, "");
    let out = gw.run(&["migrate"]);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success() && text.contains("127.0.0.1:1"), "migrate: {text}");
    leaks("migrate", &text);

    let Some(db) = TestDb::postgres() else { return };
    // The server trusts loopback, so the passwords are accepted and unused.
    let gw = Gw::new(&with_passwords(&db.config().url), &sim, "");
    let text = gw.ok(&["migrate"]);
    leaks("migrate", &text);
    let mut serve = gw.serve().await;
    serve.kill();
    let log = gw.log_text();
    assert!(log.contains("store ready") && log.contains("127.0.0.1:5432"), "serve: {log}");
    leaks("serve's log", &log);
}
