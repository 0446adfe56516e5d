//! The `scimgw` binary as an admin uses it: commands, output, exit codes, on a fresh SQLite store.
#![cfg(test)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use scimgw_store::{Audit, DeliveryState, Enqueue, Finish, Kind, NewResource, Store, StoreConfig};
use serde_json::{Value, json};

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    /// A directory with a migrated store, as `scimgw migrate` (or `serve`) leaves it.
    fn new() -> Env {
        let env = Env::fresh();
        env.ok(&["migrate"]);
        env
    }

    /// A directory without a store.
    fn fresh() -> Env {
        Env { dir: tempfile::tempdir().unwrap() }
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("nested").join("scimgw.db")
    }

    fn url(&self) -> String {
        format!("sqlite://{}", self.db().display())
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_scimgw"));
        c.args(args)
            .current_dir(self.dir.path())
            .env_remove("SCIMGW_CONFIG")
            .env("SCIMGW_STORE__URL", self.url())
            .env("SCIMGW_STORE__SQLITE_SYNCHRONOUS", "normal");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "scimgw {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    fn store(&self) -> Store {
        Store::open(&StoreConfig { url: self.url(), ..StoreConfig::default() }).unwrap()
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// stderr without the `store: …` line every admin command begins with.
fn reason(out: &Output) -> String {
    stderr(out).lines().filter(|l| !l.starts_with("store: ")).map(|l| format!("{l}\n")).collect()
}

#[test]
fn tenant_commands_create_list_and_remove() {
    let env = Env::new();
    let out = env.ok(&["tenant", "add", "acme"]);
    assert!(out.contains("created tenant acme"), "{out}");
    env.ok(&["tenant", "add", "globex"]);
    let list = env.ok(&["tenant", "list"]);
    assert!(list.contains("acme") && list.contains("globex"), "{list}");

    let dup = env.run(&["tenant", "add", "acme"]);
    assert_eq!(dup.status.code(), Some(1));
    assert_eq!(reason(&dup).trim(), "error: tenant acme already exists");

    let bad = env.run(&["tenant", "add", "no spaces"]);
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(reason(&bad).lines().count(), 1, "one line: {}", stderr(&bad));

    env.ok(&["tenant", "remove", "globex"]);
    assert!(!env.ok(&["tenant", "list"]).contains("globex"));
    assert_eq!(env.run(&["tenant", "remove", "globex"]).status.code(), Some(1));
}

#[test]
fn key_issue_prints_the_token_once_and_list_never_shows_secrets() {
    let env = Env::new();
    env.ok(&["tenant", "add", "acme"]);
    let issued: Value =
        serde_json::from_str(&env.ok(&["key", "issue", "--tenant", "acme", "--label", "entra", "--json"])).unwrap();
    let token = issued["token"].as_str().unwrap();
    let key_id = issued["key_id"].as_str().unwrap();
    assert_eq!(issued["tenant"], "acme");
    assert!(token.starts_with(&format!("scimgw_{key_id}_")), "{token}");
    let secret = token.rsplit('_').next().unwrap();
    assert_eq!(secret.len(), 64, "a 256-bit secret in hex");

    let plain = env.run(&["key", "issue", "--tenant", "acme"]);
    let printed = String::from_utf8(plain.stdout.clone()).unwrap();
    assert!(printed.trim().starts_with("scimgw_") && printed.lines().count() == 1, "stdout is the token alone");
    assert!(stderr(&plain).contains("shown once"));

    let list = env.ok(&["key", "list", "--tenant", "acme"]);
    assert!(list.contains(key_id) && list.contains("entra") && list.contains("active"), "{list}");
    assert!(!list.contains(secret), "key list must never show a secret");

    env.ok(&["key", "revoke", key_id]);
    assert!(env.ok(&["key", "list"]).contains("revoked"));
    assert_eq!(env.run(&["key", "revoke", "nosuchkey123"]).status.code(), Some(1));
    let unknown = env.run(&["key", "issue", "--tenant", "nobody"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(stderr(&unknown).contains("scimgw tenant add nobody"), "{}", stderr(&unknown));

    // Only the hash is at rest: the secret appears nowhere in the database files.
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(env.db().parent().unwrap()).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "the secret is stored in clear");
}

#[test]
fn users_list_and_show_read_the_store() {
    let env = Env::new();
    env.ok(&["tenant", "add", "acme"]);
    let store = env.store();
    let tenant = store.tenant_by_name("acme").unwrap().unwrap();
    let mut ids = Vec::new();
    for (name, active) in [("ann@contoso.com", true), ("bob@contoso.com", false)] {
        let body =
            json!({"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name, "active": active});
        let r = store
            .create(
                &tenant.id,
                NewResource { kind: Kind::User, body: body.as_object().unwrap().clone(), members: vec![] },
            )
            .unwrap();
        ids.push(r.id);
    }
    let list = env.ok(&["users", "list", "--tenant", "acme"]);
    assert!(list.contains("ann@contoso.com") && list.contains("bob@contoso.com"), "{list}");
    let inactive = env.ok(&["users", "list", "--tenant", "acme", "--filter", "active eq false", "--json"]);
    assert_eq!(inactive.lines().count(), 1);
    assert_eq!(serde_json::from_str::<Value>(inactive.trim()).unwrap()["userName"], "bob@contoso.com");
    let bad = env.run(&["users", "list", "--tenant", "acme", "--filter", "active eq"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(reason(&bad).starts_with("error: filter:"), "{}", stderr(&bad));

    let shown = env.ok(&["users", "show", &ids[0]]);
    assert!(shown.starts_with("tenant: acme"));
    assert!(shown.contains("\"userName\": \"ann@contoso.com\""), "{shown}");
    assert_eq!(env.run(&["users", "show", "00000000-0000-0000-0000-000000000000"]).status.code(), Some(1));
}

/// Messages that point the right way: a misspelt key names the key meant, an inline token says
/// where a token goes (and is never echoed), a file in another case names the tenant it misses,
/// and a tenant without a file is a note.
#[test]
fn config_check_points_at_the_key_meant_the_token_keys_and_the_tenant_a_file_misses() {
    let env = Env::new();
    for t in ["acme", "contoso", "fabrikam"] {
        env.ok(&["tenant", "add", t]);
    }
    let tenants = env.dir.path().join("config/tenants");
    std::fs::create_dir_all(&tenants).unwrap();
    std::fs::write(
        tenants.join("acme.toml"),
        "[[targets]]\nname = \"a\"\nkind = \"scim\"\nbase_url = \"http://127.0.0.1:1/scim\"\ntoken_env = \"HOME\"\n\
         deprovison = \"delete\"\n\n\
         [[targets]]\nname = \"b\"\nkind = \"scim\"\nbase_url = \"http://127.0.0.1:1/scim\"\ntoken = \"inl1ne-s3cret\"\n",
    )
    .unwrap();
    std::fs::write(
        tenants.join("Contoso.toml"),
        "[[targets]]\nname = \"c\"\nkind = \"scim\"\nbase_url = \"http://127.0.0.1:1/scim\"\ntoken_env = \"HOME\"\n",
    )
    .unwrap();
    let out = env.run(&["config", "check", "--offline"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "target \"acme/a\": unknown key \"deprovison\" for kind \"scim\"; did you mean \"deprovision\"?",
        "base_url, token_env, token_file, scope, deprovision, on_invalid",
        "attributes, match_attribute, groups, update",
        "target \"acme/b\": \"token\": a token is never written in the tenant file",
        "token_env",
        "token_file",
        "Contoso.toml names no tenant; its targets are not used: tenant names are case-sensitive and the tenant is \"contoso\", so rename the file to contoso.toml",
        "note: tenant \"fabrikam\" has no targets",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    assert!(!text.contains("tenant add Contoso"), "{text}");
    assert!(!text.contains("note: tenant \"contoso\""), "the warning covers it: {text}");
    assert!(!text.contains("inl1ne-s3cret") && !stderr(&out).contains("inl1ne-s3cret"), "{text}");
}

/// `demo --dir data` once wiped `data/scimgw.db`, the default production store: it refuses a
/// directory that holds anything but a previous demo, and leaves it as it was.
#[test]
fn demo_refuses_a_directory_that_is_not_a_previous_demo() {
    let env = Env::new();
    let data = env.dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("scimgw.db"), "the production store").unwrap();
    // Were it to start, it would serve until killed: a deadline makes that a failure, not a hang.
    let mut child = env
        .cmd(&["demo", "--dir", "data"])
        .env("SCIMGW_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("demo started in a directory that is not a demo's");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("is not a previous demo's"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(data.join("scimgw.db")).unwrap(), "the production store");
    assert_eq!(std::fs::read_dir(&data).unwrap().count(), 1, "nothing written there");
}

#[test]
fn usage_errors_exit_2_and_other_failures_exit_1_with_one_line() {
    let env = Env::new();
    assert_eq!(env.run(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(env.run(&["key", "issue"]).status.code(), Some(2), "--tenant is required");
    assert_eq!(env.run(&["--help"]).status.code(), Some(0));

    let missing = env.run(&["--config", "nope.toml", "tenant", "list"]);
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(stderr(&missing).trim(), "error: config file nope.toml does not exist");

    std::fs::write(env.dir.path().join("bad.toml"), "listen = 8080\n").unwrap();
    let bad = env.run(&["--config", "bad.toml", "tenant", "list"]);
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(stderr(&bad).trim().lines().count(), 1, "{}", stderr(&bad));
    assert!(stderr(&bad).contains("listen"), "{}", stderr(&bad));

    let unreachable =
        env.cmd(&["tenant", "list"]).env("SCIMGW_STORE__URL", "postgres://nobody@127.0.0.1:1/none").output().unwrap();
    assert_eq!(unreachable.status.code(), Some(1));
    assert!(!stderr(&unreachable).contains("panicked"), "{}", stderr(&unreachable));
}

#[test]
fn serve_on_a_fresh_directory_creates_the_store_and_says_how_to_get_a_token() {
    let env = Env::fresh();
    let mut child = env
        .cmd(&["serve"])
        .env("SCIMGW_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let reader = BufReader::new(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = String::new();
    for line in reader.lines() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("SCIM endpoint at http://127.0.0.1:") || Instant::now() > deadline {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(seen.contains("scimgw tenant add"), "the hint names the command: {seen}");
    assert!(seen.contains("scimgw key issue --tenant"), "{seen}");
    assert!(seen.contains("SCIM endpoint at http://127.0.0.1:"), "{seen}");
    assert!(Path::new(&env.db()).exists());
}

/// A user of `tenant` whose delivery to `target` died.
fn dead_delivery(store: &Store, tenant: &str, target: &str) -> String {
    let tenant_id = store.tenant_by_name(tenant).unwrap().unwrap().id;
    let body =
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("ann@{tenant}.com")});
    let new = NewResource { kind: Kind::User, body: body.as_object().unwrap().clone(), members: vec![] };
    store.create_with(&tenant_id, new, &[Enqueue::deliver(target)], None).unwrap();
    let d = store.claim_deliveries("test", 10, Duration::from_secs(60)).unwrap().remove(0);
    let dead = Finish {
        state: DeliveryState::Dead,
        retry_in: Duration::ZERO,
        detail: Some("400: bad email".into()),
        duration: Duration::from_millis(1),
    };
    assert!(store.finish_delivery(&d, "test", &dead).unwrap());
    d.id
}

#[test]
fn retrying_a_targets_dead_deliveries_names_the_tenant_and_leaves_other_tenants_alone() {
    let env = Env::new();
    env.ok(&["tenant", "add", "acme"]);
    env.ok(&["tenant", "add", "globex"]);
    let store = env.store();
    // Both tenants call their target `crm`: target names are unique within a tenant only.
    let acme = dead_delivery(&store, "acme", "crm");
    let globex = dead_delivery(&store, "globex", "crm");

    for args in
        [&["deliveries", "retry", "--dead", "--target", "crm"][..], &["deliveries", "list", "--target", "crm"][..]]
    {
        let usage = env.run(args);
        assert_eq!(usage.status.code(), Some(2), "{args:?} without --tenant is a usage error");
        assert!(stderr(&usage).contains("--tenant"), "{}", stderr(&usage));
    }

    let out = env.ok(&["deliveries", "retry", "--dead", "--tenant", "acme", "--target", "crm"]);
    assert!(out.contains("re-queued 1 delivery"), "{out}");
    let state = |id: &str| store.delivery(id).unwrap().unwrap().0.state;
    assert_eq!(state(&acme), DeliveryState::Pending);
    assert_eq!(state(&globex), DeliveryState::Dead, "globex's crm is another target");

    let listed = env.ok(&["deliveries", "list", "--tenant", "globex", "--target", "crm"]);
    assert!(listed.contains(&globex) && !listed.contains(&acme), "{listed}");
    let unknown = env.run(&["deliveries", "retry", "--dead", "--tenant", "nobody", "--target", "crm"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(stderr(&unknown).contains("no tenant named nobody"), "{}", stderr(&unknown));
}

#[test]
fn audit_with_a_limit_shows_the_newest_events_and_says_how_many_older_ones_it_left_out() {
    let env = Env::new();
    env.ok(&["tenant", "add", "acme"]);
    let store = env.store();
    let tenant = store.tenant_by_name("acme").unwrap().unwrap().id;
    let mut ids = Vec::new();
    for n in 0..5 {
        let body =
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("u{n}@acme.com")});
        let new = NewResource { kind: Kind::User, body: body.as_object().unwrap().clone(), members: vec![] };
        let audit = Audit { key_id: "key1".into(), request_id: None, operation: "create" };
        ids.push(store.create_with(&tenant, new, &[], Some(audit)).unwrap().id);
    }

    let out = env.run(&["audit", "--tenant", "acme", "--limit", "2", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let events: Value = serde_json::from_slice(&out.stdout).expect("--json stays one JSON document");
    let shown: Vec<&str> = events.as_array().unwrap().iter().map(|e| e["resource_id"].as_str().unwrap()).collect();
    assert_eq!(shown, [ids[4].as_str(), ids[3].as_str()], "the newest two, newest first");
    assert!(
        // Five creates and the operator's `tenant add`.
        stderr(&out).contains("4 older events not shown (--limit 2; use --since or a larger --limit)"),
        "{}",
        stderr(&out)
    );

    let table = env.ok(&["audit", "--tenant", "acme", "--limit", "2"]);
    assert!(table.contains(&ids[4]) && !table.contains(&ids[0]), "{table}");
    let all = env.run(&["audit", "--tenant", "acme", "--limit", "6"]);
    assert!(!stderr(&all).contains("not shown"), "nothing was left out: {}", stderr(&all));
}

/// `scimgw` run in `cwd` with no configuration from the environment: only `--config` and the
/// file it names (or the default file in `cwd`).
fn bare(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scimgw"))
        .args(args)
        .current_dir(cwd)
        .env_remove("SCIMGW_CONFIG")
        .env_remove("SCIMGW_STORE__URL")
        .env_remove("SCIMGW_TENANTS_DIR")
        .env("SCIMGW_STORE__SQLITE_SYNCHRONOUS", "normal")
        .output()
        .unwrap()
}

#[test]
fn relative_paths_in_the_config_file_are_relative_to_it_wherever_the_command_runs() {
    let root = tempfile::tempdir().unwrap();
    let etc = root.path().join("etc/scimgw");
    let elsewhere = root.path().join("home");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    let config = etc.join("gateway.toml");
    std::fs::write(&config, "[store]\nurl = \"sqlite://data/scimgw.db\"\n").unwrap();
    let config = config.display().to_string();
    let db = etc.join("data/scimgw.db");

    // Before any store exists, an admin command refuses, names the path and what creates it.
    let status = bare(&elsewhere, &["--config", &config, "status"]);
    assert_eq!(status.status.code(), Some(1), "{}", stderr(&status));
    assert!(stderr(&status).contains(&format!("no store at {}", db.display())), "{}", stderr(&status));
    assert!(stderr(&status).contains("scimgw migrate"), "{}", stderr(&status));
    assert!(!db.exists() && !elsewhere.join("data").exists(), "nothing was created");

    let migrated = bare(&elsewhere, &["--config", &config, "migrate"]);
    assert!(migrated.status.success(), "{}", stderr(&migrated));
    assert!(db.is_file(), "the store is beside the config file");
    let added = bare(&elsewhere, &["--config", &config, "tenant", "add", "acme"]);
    assert!(added.status.success(), "{}", stderr(&added));
    let opened = format!("store: sqlite://{}", db.display());
    assert_eq!(stderr(&added).matches(&opened).count(), 1, "said once: {}", stderr(&added));

    // From another directory, the same store.
    let list = bare(root.path(), &["--config", &config, "tenant", "list"]);
    assert!(String::from_utf8_lossy(&list.stdout).contains("acme"), "{}", stderr(&list));
    assert!(!elsewhere.join("data").exists() && !root.path().join("data").exists());

    // From the environment, a relative path is relative to the working directory.
    let env_relative = Command::new(env!("CARGO_BIN_EXE_scimgw"))
        .args(["--config", &config, "tenant", "list"])
        .current_dir(&elsewhere)
        .env_remove("SCIMGW_CONFIG")
        .env("SCIMGW_STORE__URL", "sqlite://mine.db")
        .output()
        .unwrap();
    assert_eq!(env_relative.status.code(), Some(1));
    assert!(
        stderr(&env_relative).contains(&format!("no store at {}", elsewhere.join("mine.db").display())),
        "{}",
        stderr(&env_relative)
    );

    // With no config file at all, the working directory, as before.
    let migrated = bare(&elsewhere, &["migrate"]);
    assert!(migrated.status.success(), "{}", stderr(&migrated));
    assert!(elsewhere.join("data/scimgw.db").is_file());
}

/// `scimgw tenant list | head -0`: the reader is gone before the command prints. It ends at once
/// with the exit code of SIGPIPE (141) and no panic message, as a Unix tool does.
#[test]
fn an_admin_command_whose_reader_is_gone_ends_quietly() {
    let env = Env::new();
    env.ok(&["tenant", "add", "acme"]);
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = env.cmd(&["tenant", "list"]).stdout(writer).stderr(Stdio::piped()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
