//! `scimgw target test` and `config check --probe` against real servers: vendor-sim apps of each
//! profile, a port nothing listens on, and a gateway serving HTTPS as the vendor.
#![cfg(test)]

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::{Gw, serve_tls};
use scimgw_store::testing::TestDb;
use serde_json::Value;
use vendor_sim::{Faults, InjectedError, ProfileKind, Sim, SimConfig};

/// A working directory with a store and a tenants dir.
struct Setup {
    dir: tempfile::TempDir,
}

/// What one run printed.
struct Run {
    code: Option<i32>,
    out: String,
    err: String,
}

impl Run {
    fn all(&self) -> String {
        format!("{}{}", self.out, self.err)
    }

    /// The step lines of `target`'s block (`acme/jc`): (verdict, step, detail).
    fn steps(&self, target: &str) -> Vec<(String, String, String)> {
        let header = format!("{target} (");
        let mut lines = self.out.lines().skip_while(|l| !l.starts_with(&header));
        assert!(lines.next().is_some(), "no block for {target} in:\n{}", self.out);
        lines
            .take_while(|l| l.starts_with("  "))
            .map(|l| {
                let mut parts = l.split_whitespace();
                let verdict = parts.next().unwrap_or_default().to_owned();
                let name = parts.next().unwrap_or_default().to_owned();
                (verdict, name, parts.collect::<Vec<_>>().join(" "))
            })
            .collect()
    }

    /// The verdict and detail of one step of `target`.
    #[track_caller]
    fn step(&self, target: &str, name: &str) -> (String, String) {
        match self.steps(target).into_iter().find(|(_, n, _)| n == name) {
            Some((verdict, _, detail)) => (verdict, detail),
            None => panic!("{target} has no {name} step:\n{}", self.out),
        }
    }
}

impl Setup {
    /// Tenants with these target files (`[[targets]]` text), created in the store.
    fn new(tenants: &[(&str, String)]) -> Setup {
        let setup = Setup { dir: tempfile::tempdir().unwrap() };
        std::fs::create_dir_all(setup.dir.path().join("tenants")).unwrap();
        let migrated = setup.run(&["migrate"], &[]);
        assert_eq!(migrated.code, Some(0), "{}", migrated.err);
        for (name, file) in tenants {
            std::fs::write(setup.dir.path().join(format!("tenants/{name}.toml")), file).unwrap();
            let added = setup.run(&["tenant", "add", name], &[]);
            assert_eq!(added.code, Some(0), "{}", added.err);
        }
        setup
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let out = Command::new(env!("CARGO_BIN_EXE_scimgw"))
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("SCIMGW_CONFIG")
            .env("SCIMGW_STORE__URL", format!("sqlite://{}", self.path("store.db").display()))
            .env("SCIMGW_TENANTS_DIR", self.path("tenants"))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        Run {
            code: out.status.code(),
            out: String::from_utf8_lossy(&out.stdout).into_owned(),
            err: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// A `[[targets]]` entry whose token is in the environment variable `token_env`.
fn target(name: &str, kind: &str, base_url: &str, token_env: &str, extra: &str) -> String {
    format!(
        "[[targets]]\nname = \"{name}\"\nkind = \"{kind}\"\nbase_url = \"{base_url}\"\ntoken_env = \"{token_env}\"\n{extra}\n"
    )
}

fn sim(profile: ProfileKind, token: &str) -> Sim {
    Sim::start(SimConfig { profile: profile.build(), token: token.to_owned(), ..SimConfig::default() }).unwrap()
}

/// A loopback port nothing listens on (bound, then let go).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn a_healthy_app_of_each_vendor_passes_every_step_as_entra_would_query_it() {
    let tokens =
        [("jostle", "jostle-tok-5d1c0e7a9b"), ("joyn-fsm", "joyn-tok-8e2f4a6c0d"), ("jumpcloud", "jc-tok-3b7d9f1e5a")];
    let sims = [
        sim(ProfileKind::Jostle, tokens[0].1),
        sim(ProfileKind::JoynFsm, tokens[1].1),
        sim(ProfileKind::JumpCloud, tokens[2].1),
    ];
    let file = [
        target("people", "jostle", &sims[0].base_url(), "TT_JOSTLE", ""),
        target("field", "joyn-fsm", &sims[1].base_url(), "TT_JOYN", ""),
        target("dir", "jumpcloud", &format!("{}/?aadOptscim062020", sims[2].base_url()), "TT_JC", ""),
    ]
    .concat();
    let setup = Setup::new(&[("acme", file)]);
    let env = [("TT_JOSTLE", tokens[0].1), ("TT_JOYN", tokens[1].1), ("TT_JC", tokens[2].1)];
    let run = setup.run(&["target", "test", "--tenant", "acme"], &env);
    assert_eq!(run.code, Some(0), "{}", run.all());
    for (name, expected) in [
        ("acme/people", &["dns", "connect", "auth"][..]),
        ("acme/field", &["dns", "connect", "auth"][..]),
        ("acme/dir", &["dns", "connect", "auth", "url_flag"][..]),
    ] {
        let steps = run.steps(name);
        let names: Vec<&str> = steps.iter().map(|(_, n, _)| n.as_str()).collect();
        assert_eq!(names, expected, "{}", run.out);
        assert!(steps.iter().all(|(verdict, _, _)| verdict == "ok"), "{}", run.out);
    }
    assert!(run.out.contains("ok: 3 target(s) passed every step"), "{}", run.out);
    for (_, token) in tokens {
        assert!(!run.all().contains(token), "a token was printed");
    }
    // Entra's query, with the base URL's flag kept: one GET per app, for a GUID nobody has.
    for (sim, flag) in sims.iter().zip(["", "", "aadOptscim062020&"]) {
        let log = sim.requests();
        assert_eq!(log.len(), 1, "{log:?}");
        assert_eq!((log[0].method.as_str(), log[0].path.as_str()), ("GET", "/scim/v2/Users"));
        assert!(log[0].query.starts_with(&format!("{flag}filter=userName+eq+%22")), "{}", log[0].query);
        let filter = log[0].query_param("filter").unwrap();
        let guid = filter.strip_prefix("userName eq \"").and_then(|f| f.strip_suffix('"')).unwrap();
        assert!(uuid_shaped(guid), "{filter}");
        assert!(log[0].authenticated);
    }
}

fn uuid_shaped(s: &str) -> bool {
    s.len() == 36
        && s.chars().filter(|c| *c == '-').count() == 4
        && s.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
}

#[test]
fn a_refused_token_fails_the_auth_step_with_what_to_check_and_is_never_printed() {
    let app = sim(ProfileKind::Jostle, "the-right-token-6a5b4c");
    let setup = Setup::new(&[("acme", target("people", "jostle", &app.base_url(), "TT_WRONG", ""))]);
    for args in [&["target", "test", "--tenant", "acme"][..], &["target", "test", "--tenant", "acme", "--json"][..]] {
        let run = setup.run(args, &[("TT_WRONG", "a-wrong-token-1f2e3d")]);
        assert_eq!(run.code, Some(1), "{}", run.all());
        assert!(run.err.contains("1 of 1 target(s) failed the connection test"), "{}", run.err);
        for secret in ["the-right-token-6a5b4c", "a-wrong-token-1f2e3d"] {
            assert!(!run.all().contains(secret), "a token was printed: {}", run.all());
        }
    }
    let run = setup.run(&["target", "test", "--tenant", "acme"], &[("TT_WRONG", "a-wrong-token-1f2e3d")]);
    let (verdict, detail) = run.step("acme/people", "auth");
    assert_eq!(verdict, "FAILED");
    assert!(detail.contains("→ 401"), "{detail}");
    assert!(
        detail.contains("the token was refused: check token_env/token_file and that the vendor's key is current"),
        "{detail}"
    );
    assert_eq!(run.step("acme/people", "connect").0, "ok");
}

#[test]
fn a_vendor_echoing_the_token_in_its_error_has_it_redacted() {
    let token = "echoed-token-9c8b7a6d";
    let app = sim(ProfileKind::JoynFsm, token);
    let echo = InjectedError::new(500, format!("cannot serve Authorization: Bearer {token}"));
    app.set_faults(Faults { fail_next: 2, error: echo, ..Faults::default() }).unwrap();
    let setup = Setup::new(&[("acme", target("field", "joyn-fsm", &app.base_url(), "TT_ECHO", ""))]);
    for args in [&["target", "test", "--tenant", "acme"][..], &["target", "test", "--tenant", "acme", "--json"][..]] {
        let run = setup.run(args, &[("TT_ECHO", token)]);
        assert_eq!(run.code, Some(1), "{}", run.all());
        assert!(run.out.contains("Bearer ***"), "the vendor's words are kept, redacted: {}", run.out);
        assert!(run.out.contains("the app failed"), "{}", run.out);
        assert!(!run.all().contains(token), "the token was printed: {}", run.all());
    }
}

#[test]
fn a_url_without_the_scim_path_gets_the_404_advice() {
    let app = sim(ProfileKind::Jostle, "tok-404-abcdef");
    // The app's origin, without /scim/v2.
    let setup = Setup::new(&[("acme", target("people", "jostle", &app.origin(), "TT_404", ""))]);
    let run = setup.run(&["target", "test", "--tenant", "acme"], &[("TT_404", "tok-404-abcdef")]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    let (verdict, detail) = run.step("acme/people", "auth");
    assert_eq!(verdict, "FAILED");
    assert!(detail.contains("→ 404") && detail.contains("no SCIM endpoint at that URL"), "{detail}");
    assert!(detail.contains("check base_url (a missing /scim/v2"), "{detail}");
}

#[test]
fn forbidden_slow_and_unreachable_apps_are_each_named() {
    let forbidden = sim(ProfileKind::Jostle, "tok-403-abcdef");
    let role = InjectedError::new(403, "the API key's user is not an automation user");
    forbidden.set_faults(Faults { fail_next: 1, error: role, ..Faults::default() }).unwrap();
    let slow = sim(ProfileKind::Jostle, "tok-slow-abcdef");
    slow.set_faults(Faults { latency_ms: 3_000, ..Faults::default() }).unwrap();
    let nobody = format!("http://127.0.0.1:{}/scim/v2", free_port());
    let file = [
        target("forbidden", "jostle", &forbidden.base_url(), "TT_403", ""),
        target("slow", "jostle", &slow.base_url(), "TT_SLOW", "request_timeout_ms = 300"),
        target("down", "jostle", &nobody, "TT_DOWN", ""),
    ]
    .concat();
    let setup = Setup::new(&[("acme", file)]);
    let env = [("TT_403", "tok-403-abcdef"), ("TT_SLOW", "tok-slow-abcdef"), ("TT_DOWN", "tok-down-abcdef")];
    let run = setup.run(&["target", "test", "--tenant", "acme"], &env);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(run.err.contains("3 of 3 target(s) failed"), "{}", run.err);

    let (verdict, detail) = run.step("acme/forbidden", "auth");
    assert_eq!(verdict, "FAILED");
    assert!(detail.contains("→ 403") && detail.contains("lacks the role or permission"), "{detail}");
    assert!(detail.contains("not an automation user"), "the vendor's words: {detail}");

    let (verdict, detail) = run.step("acme/slow", "auth");
    assert_eq!(verdict, "FAILED");
    assert!(detail.contains("no answer within 0.3 s (request_timeout_ms = 300)"), "{detail}");

    let steps = run.steps("acme/down");
    let names: Vec<(&str, &str)> = steps.iter().map(|(v, n, _)| (v.as_str(), n.as_str())).collect();
    assert_eq!(names, [("ok", "dns"), ("FAILED", "connect")], "the query is not tried: {}", run.out);
    assert!(steps[1].2.contains("refused the connection: nothing listens there"), "{}", steps[1].2);
}

#[test]
fn a_jumpcloud_url_without_the_flag_fails_that_step() {
    let app = sim(ProfileKind::JumpCloud, "tok-jc-abcdef");
    let setup = Setup::new(&[("acme", target("dir", "jumpcloud", &app.base_url(), "TT_JC_NOFLAG", ""))]);
    let run = setup.run(&["target", "test", "--tenant", "acme"], &[("TT_JC_NOFLAG", "tok-jc-abcdef")]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert_eq!(run.step("acme/dir", "auth").0, "ok", "reads work without the flag: {}", run.out);
    let (verdict, detail) = run.step("acme/dir", "url_flag");
    assert_eq!(verdict, "FAILED");
    assert!(detail.contains("base_url lacks ?aadOptscim062020"), "{detail}");
    assert!(detail.contains("creates only: no updates, no deprovisioning"), "{detail}");
}

#[test]
fn json_output_has_every_target_with_its_steps_and_target_limits_it_to_one() {
    let app = sim(ProfileKind::JumpCloud, "tok-json-abcdef");
    let file = [
        target("dir", "jumpcloud", &format!("{}/?aadOptscim062020", app.base_url()), "TT_JSON", ""),
        target("nokey", "jumpcloud", &format!("{}/?aadOptscim062020", app.base_url()), "TT_JSON_UNSET_VAR", ""),
    ]
    .concat();
    let setup = Setup::new(&[("acme", file)]);
    let env = [("TT_JSON", "tok-json-abcdef")];
    let run = setup.run(&["target", "test", "--tenant", "acme", "--json"], &env);
    assert_eq!(run.code, Some(1), "{}", run.all());
    let doc: Value = serde_json::from_str(&run.out).unwrap();
    assert_eq!((doc["tenant"].as_str(), doc["ok"].as_bool()), (Some("acme"), Some(false)));
    let targets = doc["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 2);
    let dir = &targets[0];
    assert_eq!(
        (dir["name"].as_str(), dir["kind"].as_str(), dir["ok"].as_bool()),
        (Some("dir"), Some("jumpcloud"), Some(true))
    );
    let names: Vec<&str> = dir["steps"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["dns", "connect", "auth", "url_flag"]);
    for step in dir["steps"].as_array().unwrap() {
        assert_eq!(step["ok"], true, "{step}");
        assert!(step["detail"].as_str().is_some_and(|d| !d.is_empty()), "{step}");
    }
    // A missing token variable fails that target's own auth step, and only that.
    let nokey = &targets[1];
    assert_eq!(nokey["ok"], false);
    let auth = nokey["steps"].as_array().unwrap().iter().find(|s| s["name"] == "auth").unwrap();
    assert_eq!(auth["ok"], false);
    assert!(auth["detail"].as_str().unwrap().contains("TT_JSON_UNSET_VAR (token_env) is not set"), "{auth}");
    assert!(!run.all().contains("tok-json-abcdef"));

    // --target: one block only, and it passes.
    let one = setup.run(&["target", "test", "--tenant", "acme", "--target", "dir"], &env);
    assert_eq!(one.code, Some(0), "{}", one.all());
    assert!(one.out.contains("acme/dir (jumpcloud)") && !one.out.contains("acme/nokey"), "{}", one.out);
    let none = setup.run(&["target", "test", "--tenant", "acme", "--target", "nope"], &env);
    assert_eq!(none.code, Some(1));
    assert!(none.err.contains("has no target named nope"), "{}", none.err);
    let unknown = setup.run(&["target", "test", "--tenant", "nobody"], &env);
    assert_eq!(unknown.code, Some(1));
    assert!(unknown.err.contains("no tenant named nobody"), "{}", unknown.err);
}

#[test]
fn config_check_probe_tests_every_target_of_every_tenant() {
    let good = sim(ProfileKind::Jostle, "tok-probe-good-abcdef");
    let other = sim(ProfileKind::JoynFsm, "tok-probe-other-abcdef");
    let setup = Setup::new(&[
        ("acme", target("people", "jostle", &good.base_url(), "TT_PROBE_GOOD", "")),
        ("beta", target("field", "joyn-fsm", &other.base_url(), "TT_PROBE_OTHER", "")),
    ]);
    let env = [("TT_PROBE_GOOD", "tok-probe-good-abcdef"), ("TT_PROBE_OTHER", "tok-probe-other-abcdef")];
    let plain = setup.run(&["config", "check"], &env);
    assert_eq!(plain.code, Some(0), "{}", plain.all());
    assert!(!plain.out.contains("acme/people ("), "no probe without --probe: {}", plain.out);
    assert!(good.requests().is_empty(), "the TCP probe sends no request");

    let probed = setup.run(&["config", "check", "--probe"], &env);
    assert_eq!(probed.code, Some(0), "{}", probed.all());
    assert_eq!(probed.step("acme/people", "auth").0, "ok", "{}", probed.out);
    assert_eq!(probed.step("beta/field", "auth").0, "ok", "{}", probed.out);
    assert!(probed.out.contains("ok: 2 target(s) for 2 tenant(s)"), "{}", probed.out);

    let wrong = [("TT_PROBE_GOOD", "tok-probe-good-abcdef"), ("TT_PROBE_OTHER", "a-stale-key-abcdef")];
    let failed = setup.run(&["config", "check", "--probe"], &wrong);
    assert_eq!(failed.code, Some(1), "{}", failed.all());
    assert_eq!(failed.step("acme/people", "auth").0, "ok");
    let (verdict, detail) = failed.step("beta/field", "auth");
    assert_eq!(verdict, "FAILED");
    assert!(detail.contains("token was refused"), "{detail}");
    assert!(failed.err.contains("1 of 2 target(s) failed the connection test"), "{}", failed.err);
    for secret in ["tok-probe-good-abcdef", "tok-probe-other-abcdef", "a-stale-key-abcdef"] {
        assert!(!failed.all().contains(secret) && !probed.all().contains(secret), "a token was printed");
    }
    let both = setup.run(&["config", "check", "--probe", "--offline"], &env);
    assert_eq!(both.code, Some(2), "--probe and --offline exclude each other: {}", both.all());
}

/// A gateway on HTTPS with a self-signed certificate plays the vendor (it is a SCIM service
/// provider too): its certificate fails the TLS step unless the target says `tls_skip_verify`,
/// and then every step passes, with the skipped verification said.
#[tokio::test]
async fn an_https_app_is_checked_with_the_targets_own_tls_setting() {
    let unused = Sim::start(SimConfig::default()).unwrap();
    let vendor_db = TestDb::sqlite();
    let vendor = Gw::new(&vendor_db.config().url, &unused, "");
    let vendor_token = vendor.token();
    let _vendor = serve_tls(&vendor).await;
    let base_url = format!("https://127.0.0.1:{}/scim/v2", vendor.port);
    let file = [
        target("strict", "scim", &base_url, "TT_TLS", ""),
        target("lenient", "scim", &base_url, "TT_TLS", "tls_skip_verify = true"),
    ]
    .concat();
    let setup = Setup::new(&[("acme", file)]);
    let run = setup.run(&["target", "test", "--tenant", "acme"], &[("TT_TLS", &vendor_token)]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    let strict = run.steps("acme/strict");
    let names: Vec<(&str, &str)> = strict.iter().map(|(v, n, _)| (v.as_str(), n.as_str())).collect();
    assert_eq!(names, [("ok", "dns"), ("ok", "connect"), ("FAILED", "tls")], "{}", run.out);
    assert!(strict[2].2.contains("certificate") && strict[2].2.contains("tls_skip_verify = true"), "{}", strict[2].2);

    let lenient = run.steps("acme/lenient");
    assert!(lenient.iter().all(|(v, _, _)| v == "ok"), "{}", run.out);
    let (_, tls) = run.step("acme/lenient", "tls");
    assert!(tls.contains("NOT verified (tls_skip_verify = true)"), "{tls}");
    assert!(run.step("acme/lenient", "auth").1.contains("an empty ListResponse"), "{}", run.out);
    assert!(!run.all().contains(&vendor_token), "the token was printed");
}
