//! The container packaging, checked without a Docker engine: the compose file's wiring (services,
//! ports, secrets only from the environment, a health-gated start, volumes), `.env.example`, the
//! compose tenant file against the gateway's own loader and `config check`, the Dockerfile's
//! shape, and that the docs name only commands the binary has.
#![cfg(test)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_norway::Value;

/// The compose services and, for each simulator, the vendor profile it runs.
const SIMULATORS: &[(&str, &str)] = &[("jostle", "jostle"), ("joyn-fsm", "joyn-fsm"), ("jumpcloud", "jumpcloud")];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn read(relative: &str) -> String {
    let path = root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn compose() -> Value {
    serde_norway::from_str(&read("docker-compose.yml")).unwrap()
}

fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    compose["services"].get(name).unwrap_or_else(|| panic!("docker-compose.yml has no service `{name}`"))
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        other => panic!("expected a scalar, found {other:?}"),
    }
}

/// A service's `environment`, in either of compose's forms (mapping, or a list of `K=V`).
fn env_of(service: &Value) -> BTreeMap<String, String> {
    match &service["environment"] {
        Value::Mapping(m) => m.iter().map(|(k, v)| (scalar(k), scalar(v))).collect(),
        Value::Sequence(items) => items
            .iter()
            .map(|i| {
                let s = scalar(i);
                let (k, v) = s.split_once('=').unwrap_or((s.as_str(), ""));
                (k.to_owned(), v.to_owned())
            })
            .collect(),
        Value::Null => BTreeMap::new(),
        other => panic!("environment must be a mapping or a list, found {other:?}"),
    }
}

/// A list-valued key (`command`, `entrypoint`, `volumes`, `ports`) as strings; a string is split
/// on whitespace, as compose does.
fn list_of(v: &Value) -> Vec<String> {
    match v {
        Value::Sequence(items) => items.iter().map(scalar).collect(),
        Value::String(s) => s.split_whitespace().map(str::to_owned).collect(),
        Value::Null => Vec::new(),
        other => panic!("expected a list, found {other:?}"),
    }
}

/// One `${NAME…}` or `$NAME` interpolation in a compose value.
#[derive(Debug, Clone, PartialEq, Eq)]
struct VarRef {
    name: String,
    /// What follows the name inside the braces: `""`, `":?message"`, `":-default"`, …
    modifier: String,
    /// Where it starts and ends in the value.
    span: (usize, usize),
}

/// Every interpolation in `s`, as compose reads it (`$$` is a literal `$`).
fn var_refs(s: &str) -> Vec<VarRef> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some(b'$') => i += 2,
            Some(b'{') => {
                let start = i;
                let mut depth = 0;
                let mut j = i + 1;
                while j < b.len() {
                    match b[j] {
                        b'{' => depth += 1,
                        b'}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                assert!(j < b.len(), "unclosed ${{ in `{s}`");
                let inner = &s[i + 2..j];
                let name_len = inner.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(inner.len());
                out.push(VarRef {
                    name: inner[..name_len].to_owned(),
                    modifier: inner[name_len..].to_owned(),
                    span: (start, j + 1),
                });
                i = j + 1;
            }
            Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {
                let start = i;
                let mut j = i + 1;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                    j += 1;
                }
                out.push(VarRef { name: s[i + 1..j].to_owned(), modifier: String::new(), span: (start, j) });
                i = j;
            }
            _ => i += 1,
        }
    }
    out
}

/// The variable a secret value comes from: the value must be exactly one `${NAME}` (or
/// `${NAME:?message}`) and nothing else — a `:-default` would be a secret written in the file.
fn secret_source(what: &str, value: &str) -> String {
    let refs = var_refs(value);
    assert_eq!(refs.len(), 1, "{what} must be one ${{VAR}} reference, found `{value}`");
    let r = &refs[0];
    assert_eq!(r.span, (0, value.len()), "{what} must be only a ${{VAR}} reference, found `{value}`");
    assert!(
        r.modifier.is_empty() || r.modifier.starts_with(":?") || r.modifier.starts_with('?'),
        "{what} must not have a default (`{value}`): a default is a secret in the file"
    );
    r.name.clone()
}

fn looks_secret(key: &str) -> bool {
    let k = key.to_ascii_uppercase();
    ["TOKEN", "PASSWORD", "SECRET", "_KEY", "PASSWD"].iter().any(|w| k.contains(w))
}

/// Every string value in the document (keys are never interpolated by compose).
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Sequence(items) => items.iter().for_each(|i| strings(i, out)),
        Value::Mapping(m) => m.values().for_each(|i| strings(i, out)),
        Value::Tagged(t) => strings(&t.value, out),
        _ => {}
    }
}

/// `.env.example` as name → placeholder.
fn env_example() -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    for (n, line) in read(".env.example").lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line.split_once('=').unwrap_or_else(|| panic!(".env.example line {}: not NAME=value", n + 1));
        assert!(vars.insert(k.trim().to_owned(), v.trim().to_owned()).is_none(), ".env.example lists {k} twice");
    }
    vars
}

/// `postgres://user:password@host:port/db` in its parts.
fn postgres_url(url: &str) -> (String, String, String, String, String) {
    let rest = url.strip_prefix("postgres://").or_else(|| url.strip_prefix("postgresql://"));
    let rest = rest.unwrap_or_else(|| panic!("SCIMGW_STORE__URL must be a postgres:// URL, found `{url}`"));
    // The password may itself hold `:` and `@`-free text such as `${VAR:?msg}`: split on the last `@`.
    let (userinfo, hostpart) = rest.rsplit_once('@').unwrap_or_else(|| panic!("no user in `{url}`"));
    let (user, password) = userinfo.split_once(':').unwrap_or_else(|| panic!("no password in `{url}`"));
    let (hostport, db) = hostpart.split_once('/').unwrap_or_else(|| panic!("no database in `{url}`"));
    let (host, port) = hostport.split_once(':').unwrap_or((hostport, "5432"));
    (user.into(), password.into(), host.into(), port.into(), db.into())
}

/// `[IP:]HOST_PORT:CONTAINER_PORT[/proto]` → (ip, host port, container port).
fn published(port: &str) -> (Option<String>, String, String) {
    let port = port.split('/').next().unwrap_or(port);
    let parts: Vec<&str> = port.rsplitn(3, ':').collect();
    match parts.as_slice() {
        [container] => (None, String::new(), (*container).into()),
        [container, host] => (None, (*host).into(), (*container).into()),
        [container, host, ip] => (Some((*ip).into()), (*host).into(), (*container).into()),
        _ => unreachable!(),
    }
}

/// The value following `flag` in an argument list.
fn arg_after<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).map(String::as_str)
}

#[test]
fn compose_runs_the_gateway_postgres_and_three_vendor_simulators_from_one_image() {
    let c = compose();
    let names: BTreeSet<String> = c["services"].as_mapping().unwrap().keys().map(scalar).collect();
    let expected: BTreeSet<String> =
        ["gateway", "postgres"].into_iter().chain(SIMULATORS.iter().map(|(s, _)| *s)).map(str::to_owned).collect();
    assert_eq!(names, expected);

    let gateway = service(&c, "gateway");
    assert_eq!(scalar(&gateway["build"]), ".", "the gateway is built from the repository's Dockerfile");
    let image = scalar(&gateway["image"]);
    assert!(!image.is_empty(), "the gateway's image has a name the simulators reuse");
    assert!(list_of(&gateway["entrypoint"]).is_empty(), "the gateway keeps the image's scimgw entrypoint");
    assert!(scalar(&service(&c, "postgres")["image"]).starts_with("postgres:"));

    for (name, profile) in SIMULATORS {
        let sim = service(&c, name);
        assert_eq!(scalar(&sim["image"]), image, "{name} runs the gateway's image");
        assert_eq!(list_of(&sim["entrypoint"]), ["vendor-sim"], "{name}'s entrypoint");
        let args = list_of(&sim["command"]);
        assert_eq!(arg_after(&args, "--profile"), Some(*profile), "{name}: {args:?}");
        let listen = arg_after(&args, "--listen").unwrap_or_else(|| panic!("{name} gives no --listen"));
        assert!(listen.starts_with("0.0.0.0:"), "{name} must listen beyond its loopback to be reachable: {listen}");
        assert_eq!(arg_after(&args, "--base-path").unwrap_or("/scim/v2"), "/scim/v2");
        assert!(!args.iter().any(|a| a == "--token"), "{name}: the token comes from VENDOR_SIM_TOKEN, not argv");
        // vendor-sim waits for Ctrl-C only; as PID 1 it ignores SIGTERM, so `docker stop` would hang.
        assert_eq!(scalar(&sim["stop_signal"]), "SIGINT", "{name}'s stop_signal");
    }
}

#[test]
fn only_the_gateway_and_simulators_publish_ports_and_only_on_the_host_loopback() {
    let c = compose();
    let gateway: Vec<_> = list_of(&service(&c, "gateway")["ports"]).iter().map(|p| published(p)).collect();
    assert_eq!(gateway.len(), 1, "{gateway:?}");
    let expose =
        read("Dockerfile").lines().find_map(|l| l.trim().strip_prefix("EXPOSE ").map(str::trim).map(str::to_owned));
    assert_eq!(Some(gateway[0].2.clone()), expose, "the gateway publishes the port the image exposes");
    assert_eq!(gateway[0].2, "8080");
    assert!(
        list_of(&service(&c, "postgres")["ports"]).is_empty(),
        "PostgreSQL is reached over the compose network only"
    );

    let mut host_ports = BTreeSet::new();
    for name in std::iter::once("gateway").chain(SIMULATORS.iter().map(|(s, _)| *s)) {
        for p in list_of(&service(&c, name)["ports"]) {
            let (ip, host, _) = published(&p);
            // The simulators' admin API takes no token; the gateway speaks plain HTTP (TLS is the proxy's).
            assert_eq!(ip.as_deref(), Some("127.0.0.1"), "{name} publishes `{p}` beyond the host's loopback");
            assert!(host_ports.insert(host.clone()), "host port {host} published twice");
        }
    }
}

#[test]
fn the_gateway_reaches_postgres_by_service_name_with_the_password_from_the_environment() {
    let c = compose();
    let env = env_of(service(&c, "gateway"));
    let url = env.get("SCIMGW_STORE__URL").expect("the gateway's environment sets SCIMGW_STORE__URL");
    let (user, password, host, port, db) = postgres_url(url);
    assert_eq!(host, "postgres", "the store URL names the postgres service");
    assert_eq!(port, "5432");
    let var = secret_source("the password in SCIMGW_STORE__URL", &password);

    let pg = env_of(service(&c, "postgres"));
    assert_eq!(pg.get("POSTGRES_USER"), Some(&user), "the URL's user is the one PostgreSQL creates");
    assert_eq!(pg.get("POSTGRES_DB"), Some(&db), "the URL's database is the one PostgreSQL creates");
    let pg_password = pg.get("POSTGRES_PASSWORD").expect("postgres sets POSTGRES_PASSWORD");
    assert_eq!(secret_source("POSTGRES_PASSWORD", pg_password), var, "both sides take the same password variable");
}

#[test]
fn no_secret_is_written_in_the_compose_file() {
    let c = compose();
    let mut checked = 0;
    for (name, svc) in c["services"].as_mapping().unwrap() {
        let name = scalar(name);
        for (key, value) in env_of(svc) {
            if looks_secret(&key) {
                secret_source(&format!("{name}: {key}"), &value);
                checked += 1;
            }
            if key.ends_with("_URL") && value.contains('@') {
                let (_, password, ..) = postgres_url(&value);
                secret_source(&format!("{name}: the password in {key}"), &password);
            }
        }
        assert!(
            svc.get("env_file").is_none(),
            "{name}: variables come through .env interpolation, listed in .env.example"
        );
    }
    // POSTGRES_PASSWORD, three tokens at the gateway and the same three at the simulators.
    assert_eq!(checked, 7, "the secrets checked");
}

#[test]
fn the_gateway_starts_only_after_postgres_is_healthy() {
    let c = compose();
    let depends = &service(&c, "gateway")["depends_on"];
    assert_eq!(scalar(&depends["postgres"]["condition"]), "service_healthy", "{depends:?}");
    for (name, _) in SIMULATORS {
        assert!(depends.get(*name).is_some(), "the gateway depends on the {name} simulator: {depends:?}");
    }
    let check = &service(&c, "postgres")["healthcheck"];
    let test = list_of(&check["test"]).join(" ");
    assert!(test.contains("pg_isready"), "the postgres health check runs pg_isready: {test}");
    let user = env_of(service(&c, "postgres"))["POSTGRES_USER"].clone();
    assert!(test.contains(&format!("-U {user}")), "pg_isready asks as the configured user: {test}");
    for key in ["interval", "timeout", "retries"] {
        assert!(check.get(key).is_some(), "the health check sets {key}");
    }
    let grace = scalar(&service(&c, "gateway")["stop_grace_period"]);
    let secs: u64 = grace.trim_end_matches('s').parse().unwrap_or_else(|_| panic!("stop_grace_period `{grace}`"));
    assert!(secs > 10, "docker stop waits longer than dispatcher.shutdown_grace_secs (10 s): {grace}");
}

#[test]
fn postgres_keeps_its_data_in_a_named_volume_and_the_tenants_folder_is_mounted_read_only() {
    let c = compose();
    let named: BTreeSet<String> = c["volumes"].as_mapping().expect("top-level volumes").keys().map(scalar).collect();
    let pg = list_of(&service(&c, "postgres")["volumes"]);
    let data =
        pg.iter().find(|v| v.contains(":/var/lib/postgresql/data")).expect("PostgreSQL's data folder is mounted");
    let source = data.split(':').next().unwrap_or_default();
    assert!(named.contains(source), "PostgreSQL's data lives in a named volume, not `{source}`");

    let gateway = service(&c, "gateway");
    let tenants_dir = env_of(gateway).get("SCIMGW_TENANTS_DIR").cloned().expect("the gateway sets SCIMGW_TENANTS_DIR");
    let mounts = list_of(&gateway["volumes"]);
    let mount = mounts
        .iter()
        .find(|m| m.split(':').nth(1) == Some(tenants_dir.as_str()))
        .unwrap_or_else(|| panic!("nothing is mounted at SCIMGW_TENANTS_DIR {tenants_dir}: {mounts:?}"));
    assert!(mount.ends_with(":ro"), "the tenants folder is mounted read-only: {mount}");
    let host = mount.split(':').next().unwrap_or_default();
    assert!(host.starts_with("./"), "a folder of the repository: {host}");
    assert!(root().join(host).join("demo.toml").is_file(), "{host}/demo.toml exists");
    assert!(read("Dockerfile").contains(&format!("SCIMGW_TENANTS_DIR={tenants_dir}")), "the image agrees");
}

#[test]
fn every_variable_of_the_compose_file_is_listed_in_env_example_and_nothing_more() {
    let mut values = Vec::new();
    strings(&compose(), &mut values);
    let used: BTreeSet<String> = values.iter().flat_map(|v| var_refs(v)).map(|r| r.name).collect();
    assert!(used.contains("POSTGRES_PASSWORD") && used.len() >= 4, "{used:?}");
    let listed = env_example();
    let listed_names: BTreeSet<String> = listed.keys().cloned().collect();
    assert_eq!(used, listed_names, "the compose file's ${{VAR}}s and .env.example's names");
    for (name, placeholder) in &listed {
        assert!(!placeholder.is_empty(), ".env.example gives {name} a placeholder");
        if looks_secret(name) {
            assert!(placeholder.starts_with("replace-with"), ".env.example's {name} is an obvious placeholder");
        }
    }
}

#[test]
fn each_compose_target_points_at_its_simulator_with_a_token_the_gateway_and_the_simulator_share() {
    let c = compose();
    let gateway_env = env_of(service(&c, "gateway"));
    let file = scimgw_adapter::load_tenant_file(&root().join("deploy/compose/tenants/demo.toml")).unwrap();
    assert_eq!(file.targets.len(), SIMULATORS.len());
    for target in &file.targets {
        assert!(target.token_file.is_none(), "{}: token_env, set from .env", target.name);
        let var = target.token_env.as_deref().unwrap_or_else(|| panic!("{} has no token_env", target.name));
        let value = gateway_env.get(var).unwrap_or_else(|| panic!("the gateway's environment lacks {var}"));
        let source = secret_source(&format!("gateway: {var}"), value);

        let url = reqwest::Url::parse(&target.base_url).unwrap();
        assert_eq!(url.scheme(), "http");
        let host = url.host_str().unwrap();
        let (_, profile) = SIMULATORS
            .iter()
            .find(|(s, _)| *s == host)
            .unwrap_or_else(|| panic!("{}: {host} is not a simulator service", target.name));
        assert_eq!(target.kind, *profile, "{}: the simulator's profile is the target's kind", target.name);
        let sim = service(&c, host);
        let args = list_of(&sim["command"]);
        let listen = arg_after(&args, "--listen").unwrap();
        assert_eq!(Some(listen.rsplit(':').next().unwrap()), url.port().map(|p| p.to_string()).as_deref());
        assert!(url.path().starts_with("/scim/v2"), "{}", target.base_url);
        let sim_token = env_of(sim).get("VENDOR_SIM_TOKEN").cloned().unwrap_or_default();
        assert_eq!(
            secret_source(&format!("{host}: VENDOR_SIM_TOKEN"), &sim_token),
            source,
            "{host} expects the token the gateway sends"
        );
        if target.kind == "jumpcloud" {
            assert_eq!(url.query(), Some("aadOptscim062020"), "JumpCloud needs the flag for updates");
        }
    }
}

fn scimgw(dir: &Path, args: &[&str], tokens: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scimgw"));
    cmd.args(args)
        .current_dir(dir)
        .env_remove("SCIMGW_CONFIG")
        .env("SCIMGW_STORE__URL", format!("sqlite://{}", dir.join("store.db").display()))
        .env("SCIMGW_STORE__SQLITE_SYNCHRONOUS", "normal")
        .env("SCIMGW_TENANTS_DIR", root().join("deploy/compose/tenants"));
    // Only the tokens given here: none leaks in from the environment the tests run in.
    for var in env_of(service(&compose(), "gateway")).keys().filter(|k| looks_secret(k)) {
        cmd.env_remove(var);
    }
    for (k, v) in tokens {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn the_compose_tenant_file_passes_config_check_with_the_tokens_compose_provides() {
    let dir = tempfile::tempdir().unwrap();
    assert!(scimgw(dir.path(), &["migrate"], &[]).status.success());
    let add = scimgw(dir.path(), &["tenant", "add", "demo"], &[]);
    assert!(add.status.success(), "{}", String::from_utf8_lossy(&add.stderr));

    // The tokens are exactly the variables the gateway service gets.
    let env = env_of(service(&compose(), "gateway"));
    let tokens: Vec<(&str, &str)> = env.keys().filter(|k| looks_secret(k)).map(|k| (k.as_str(), "sim-token")).collect();
    let ok = scimgw(dir.path(), &["config", "check", "--offline"], &tokens);
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{out}{}", String::from_utf8_lossy(&ok.stderr));
    assert!(out.contains("ok: 3 target(s) for 1 tenant(s), 0 warning(s)"), "{out}");

    // One token missing: the check names its variable.
    let fewer: Vec<_> = tokens.iter().copied().filter(|(k, _)| *k != "DEMO_JOYN_TOKEN").collect();
    assert_eq!(fewer.len(), tokens.len() - 1);
    let bad = scimgw(dir.path(), &["config", "check", "--offline"], &fewer);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stdout).contains("DEMO_JOYN_TOKEN (token_env) is not set"), "{bad:?}");
}

/// The Dockerfile's instructions, continuation lines joined, comments dropped.
fn dockerfile() -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in read("Dockerfile").lines() {
        let t = line.trim();
        if t.starts_with('#') || (t.is_empty() && current.is_empty()) {
            continue;
        }
        match t.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(t);
                out.push(std::mem::take(&mut current));
            }
        }
    }
    out
}

#[test]
fn the_dockerfile_builds_in_stages_and_runs_scimgw_serve_as_a_non_root_user() {
    let lines = dockerfile();
    let from: Vec<&String> = lines.iter().filter(|l| l.starts_with("FROM ")).collect();
    assert!(from.len() >= 2, "a multi-stage build: {from:?}");
    assert!(from[0].contains(" AS builder"), "the first stage is the builder: {}", from[0]);
    assert!(from[0].contains("rust:"), "{}", from[0]);
    let runtime_at = lines.iter().rposition(|l| l.starts_with("FROM ")).unwrap();
    let runtime = &lines[runtime_at..];
    assert!(!runtime[0].contains("rust:"), "the runtime image has no toolchain: {}", runtime[0]);

    let build = lines.iter().find(|l| l.contains("cargo build")).expect("the builder runs cargo build");
    for part in ["--release", "--locked", "-p scimgw", "-p vendor-sim"] {
        assert!(build.contains(part), "cargo build {part}: {build}");
    }
    let copy = runtime.iter().find(|l| l.starts_with("COPY --from=builder")).expect("binaries from the builder");
    assert!(copy.contains("/scimgw") && copy.contains("/vendor-sim"), "{copy}");
    assert!(runtime.iter().any(|l| l.contains("apt-get install") && l.contains("ca-certificates")), "CA certificates");
    assert!(runtime.iter().any(|l| l.starts_with("COPY config/ /etc/scimgw")), "the configuration in /etc/scimgw");

    let user = runtime.iter().rev().find_map(|l| l.strip_prefix("USER ")).expect("a USER in the runtime stage");
    let name = user.split(':').next().unwrap().trim();
    assert!(name != "root" && name != "0", "runs as a non-root user, not {user}");
    let entry_at = runtime.iter().position(|l| l.starts_with("ENTRYPOINT")).unwrap();
    let user_at = runtime.iter().position(|l| l.starts_with("USER ")).unwrap();
    assert!(user_at < entry_at, "USER comes before the entry point");

    assert!(runtime.contains(&r#"ENTRYPOINT ["scimgw"]"#.to_owned()), "{runtime:?}");
    assert!(runtime.contains(&r#"CMD ["serve"]"#.to_owned()), "{runtime:?}");
    assert!(runtime.contains(&"EXPOSE 8080".to_owned()), "{runtime:?}");
    let env = runtime.iter().filter(|l| l.starts_with("ENV ")).cloned().collect::<Vec<_>>().join(" ");
    for setting in [
        "SCIMGW_LISTEN=0.0.0.0:8080",
        "SCIMGW_CONFIG=/etc/scimgw/gateway.toml",
        "SCIMGW_STORE__URL=sqlite:///var/lib/scimgw/",
    ] {
        assert!(env.contains(setting), "ENV {setting}: {env}");
    }
    assert!(runtime.iter().any(|l| l.starts_with("VOLUME") && l.contains("/var/lib/scimgw")), "a data volume");
    assert!(root().join("config/gateway.toml").is_file());
}

#[test]
fn the_docker_build_context_leaves_out_build_output_local_data_and_secrets() {
    let ignore = read(".dockerignore");
    let entries: BTreeSet<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_end_matches('/'))
        .collect();
    for needed in ["target", "fuzz/target", "data", ".git", ".env"] {
        assert!(entries.contains(needed), ".dockerignore leaves out {needed}: {entries:?}");
    }
    for kept in ["Cargo.lock", "config", "crates", "adapters", "tests", "*"] {
        assert!(!entries.contains(kept), ".dockerignore must not leave out {kept}: the build needs it");
    }
}

/// The pages under docs/.
const DOCS: &[&str] = &[
    "docs/entra.md",
    "docs/operations.md",
    "docs/targets/jostle.md",
    "docs/targets/joyn-fsm.md",
    "docs/targets/jumpcloud.md",
    "docs/targets/scim.md",
];

/// `scimgw <words>` inside the code of a Markdown file (fenced blocks and inline spans).
fn commands_in(markdown: &str) -> Vec<Vec<String>> {
    let mut code = Vec::new();
    let mut prose = String::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            code.push(line.to_owned());
        } else {
            // Inline spans may wrap onto the next line.
            prose.push_str(line);
            prose.push('\n');
        }
    }
    code.extend(prose.split('`').skip(1).step_by(2).map(str::to_owned));
    let mut found = Vec::new();
    for snippet in code {
        let words: Vec<&str> = snippet.split_whitespace().collect();
        for (i, w) in words.iter().enumerate() {
            // `docker exec scimgw scimgw …`: a container named scimgw, then the command.
            if *w != "scimgw" || words.get(i + 1) == Some(&"scimgw") {
                continue;
            }
            // The subcommand words: up to the first flag, placeholder, value or shell syntax.
            let mut cmd = Vec::new();
            let mut rest = words[i + 1..].iter().peekable();
            if rest.peek() == Some(&&"--config") {
                rest.next();
                rest.next();
            }
            for w in rest.take(2) {
                if w.chars().all(|c| c.is_ascii_lowercase()) && !w.is_empty() {
                    cmd.push(w.to_string());
                } else {
                    break;
                }
            }
            if !cmd.is_empty() {
                found.push(cmd);
            }
        }
    }
    found
}

#[test]
fn the_docs_name_only_commands_the_binary_has() {
    let mut seen = BTreeSet::new();
    for doc in DOCS {
        for cmd in commands_in(&read(doc)) {
            seen.insert(cmd);
        }
    }
    assert!(seen.len() >= 8, "the docs show the commands they describe: {seen:?}");
    let tmp = tempfile::tempdir().unwrap();
    for cmd in &seen {
        // The first word is a subcommand; a second is a nested subcommand (`key issue`) or, for a
        // command without subcommands, an argument: either way `--help` after them succeeds.
        let mut args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        args.push("--help");
        let out = Command::new(env!("CARGO_BIN_EXE_scimgw")).args(&args).current_dir(tmp.path()).output().unwrap();
        let ok = out.status.success() || {
            let first = [cmd[0].as_str(), "--help"];
            let out = Command::new(env!("CARGO_BIN_EXE_scimgw")).args(first).current_dir(tmp.path()).output().unwrap();
            out.status.success() && cmd.len() == 2 && !String::from_utf8_lossy(&out.stdout).contains("Commands:")
        };
        assert!(ok, "the docs show `scimgw {}`, which the binary does not have", cmd.join(" "));
    }
}

#[test]
fn the_readme_links_every_doc() {
    let readme = read("README.md");
    for doc in DOCS {
        assert!(root().join(doc).is_file(), "{doc} exists");
        assert!(readme.contains(&format!("]({doc})")), "README links {doc}");
    }
}
