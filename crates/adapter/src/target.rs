//! Targets: one `[[targets]]` entry of `<tenants_dir>/<tenant>.toml`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Format, Toml};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use scimgw_scim::filter::{Filter, parse_filter};
use scimgw_scim::schema::Registry as SchemaRegistry;

use crate::adapter::Deprovision;
use crate::secret::Secret;

/// What happens to a change that breaks a target's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnInvalid {
    /// Refuse the whole request with SCIM 400 `invalidValue` naming target, attribute and rule;
    /// nothing is stored.
    #[default]
    Reject,
    /// Store the change; this target records a skipped delivery with the reason.
    Skip,
}

/// One target of a tenant. Every key but `name`, `kind` and `base_url` has a default; keys this
/// struct does not know are the adapter's own ([`TargetConfig::options`]) and the adapter refuses
/// those it does not know either.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TargetConfig {
    /// Unique within the tenant: `[A-Za-z0-9._-]`, at most 64 characters.
    pub name: String,
    /// The adapter kind (`scim`, …).
    pub kind: String,
    /// The vendor's SCIM base URL; a query string (`?aadOptscim062020`) is kept on every request.
    pub base_url: String,
    /// The environment variable holding the vendor token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// A file holding the vendor token (surrounding whitespace is ignored).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// A SCIM filter on users: only users matching it are delivered; a user who stops matching
    /// is deprovisioned. Default: every user.
    #[serde(default)]
    pub scope: Option<String>,
    /// How users are deprovisioned here.
    #[serde(default)]
    pub deprovision: Deprovision,
    /// What a change that breaks this target's rules does.
    #[serde(default)]
    pub on_invalid: OnInvalid,
    /// At most this many deliveries to this target at once.
    #[serde(default = "defaults::max_in_flight")]
    pub max_in_flight: u32,
    /// At most this many requests per second to this target (none: no limit).
    #[serde(default)]
    pub rate_per_sec: Option<u32>,
    /// Requests allowed in a burst above the rate (default: the rate).
    #[serde(default)]
    pub burst: Option<u32>,
    /// Attempts before a retryable failure is dead-lettered.
    #[serde(default = "defaults::max_attempts")]
    pub max_attempts: u32,
    /// The first retry waits about this long; each further one twice as long (with jitter).
    #[serde(default = "defaults::backoff_base_ms")]
    pub backoff_base_ms: u64,
    /// No retry waits longer than this.
    #[serde(default = "defaults::backoff_max_ms")]
    pub backoff_max_ms: u64,
    /// Deliveries in a row that find the target unreachable or answering 5xx before it is paused
    /// (a 401 or 403 pauses it at once): its waiting deliveries are then held, spending no
    /// attempt, and the dispatcher probes it with backoff until it answers. `0`: never paused.
    #[serde(default = "defaults::pause_after_failures")]
    pub pause_after_failures: u32,
    /// Time allowed for one request to the vendor.
    #[serde(default = "defaults::request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Skip the verification of the vendor's TLS certificate (a test instance with a self-signed
    /// certificate). Anyone between the gateway and the vendor could then read the token and the
    /// users: the gateway warns at every load. Off by default.
    #[serde(default)]
    pub tls_skip_verify: bool,
    /// Reconcile this target on a schedule (`"24h"`, `"30m"`): the dispatcher compares the
    /// vendor's users with the gateway's and records the counts (`scimgw status`, `/metrics`).
    /// None: only `scimgw reconcile` does, when run.
    #[serde(default)]
    pub reconcile_every: Option<String>,
    /// How `reconcile` reads the vendor's users: `list` (page through all of them) or `lookup`
    /// (one request per user the gateway knows). Default: what the adapter's vendor documents.
    #[serde(default)]
    pub reconcile_by: Option<crate::ReadBack>,
    /// Whether a scheduled reconcile also queues the deliveries that repair what it found (drift,
    /// missing users, unlinked matches; never orphans). Default: it only reports.
    #[serde(default)]
    pub reconcile_repair: bool,
    /// The adapter's own keys.
    #[serde(flatten)]
    pub options: BTreeMap<String, Value>,
}

/// The keys every target takes whatever its kind: the fields of [`TargetConfig`] (a test keeps
/// the two in step). An unknown key is named against these and the adapter's own.
pub const COMMON_KEYS: &[&str] = &[
    "name",
    "kind",
    "base_url",
    "token_env",
    "token_file",
    "scope",
    "deprovision",
    "on_invalid",
    "max_in_flight",
    "rate_per_sec",
    "burst",
    "max_attempts",
    "backoff_base_ms",
    "backoff_max_ms",
    "pause_after_failures",
    "request_timeout_ms",
    "tls_skip_verify",
    "reconcile_every",
    "reconcile_by",
    "reconcile_repair",
];

/// Why `key` is refused in a target of `kind` whose adapter takes `adapter_keys`: the nearest
/// known key when one is close (a misspelling: `deprovison`), then every key such a target takes.
/// A key that looks like an inline secret (`token = "…"`) says where a token goes instead. The
/// key's value is never quoted: it may be that secret.
pub fn unknown_key(kind: &str, key: &str, adapter_keys: &[&str]) -> String {
    let known: Vec<&str> = COMMON_KEYS.iter().chain(adapter_keys).copied().collect();
    let hint = match nearest(key, &known) {
        Some(k) => format!("; did you mean \"{k}\"?"),
        None => match inline_secret(key) {
            Some(message) => return message,
            None => String::new(),
        },
    };
    format!("unknown key \"{key}\" for kind \"{kind}\"{hint} (known: {})", known.join(", "))
}

/// The known key `key` is a slip of the keyboard away from: at most a third of its length in
/// edits (at least one), ignoring case; the closest when several are.
fn nearest<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    let lower = key.to_ascii_lowercase();
    let most = (key.chars().count() / 3).max(1);
    known
        .iter()
        .map(|k| (strsim::levenshtein(&lower, &k.to_ascii_lowercase()), *k))
        .filter(|(d, _)| *d <= most)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// The message for a key that holds a secret inline (`token`, `api_key`, `password`, …), which
/// the gateway refuses to read from a tenant file (it is shown, copied and committed).
fn inline_secret(key: &str) -> Option<String> {
    let lower = key.to_ascii_lowercase();
    let secret = ["token", "secret", "password", "api_key", "apikey", "bearer"].iter().any(|s| lower.contains(s));
    // `token_fille` is a misspelt key, not a secret.
    (secret && nearest(key, COMMON_KEYS).is_none()).then(|| {
        format!(
            "\"{key}\": a token is never written in the tenant file; put it in an environment variable \
             and name it with token_env, or in a file readable only by the gateway and name it with token_file"
        )
    })
}

mod defaults {
    pub fn max_in_flight() -> u32 {
        4
    }
    pub fn max_attempts() -> u32 {
        12
    }
    pub fn backoff_base_ms() -> u64 {
        1_000
    }
    pub fn backoff_max_ms() -> u64 {
        600_000
    }
    pub fn pause_after_failures() -> u32 {
        5
    }
    pub fn request_timeout_ms() -> u64 {
        30_000
    }
}

/// When to try again after a retryable failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts before dead-lettering.
    pub max_attempts: u32,
    /// The base delay.
    pub base: Duration,
    /// The largest delay.
    pub max: Duration,
}

impl RetryPolicy {
    /// The delay before attempt `attempts + 1`, after `attempts` failed ones (≥ 1):
    /// `min(max, base · 2^(attempts-1))`, scaled by `jitter` in `[0.5, 1.0]` so that many rows
    /// failing together do not retry together. A vendor's `Retry-After` is a floor on top.
    pub fn delay(&self, attempts: u32, jitter: f64, retry_after: Option<Duration>) -> Duration {
        let exp = attempts.saturating_sub(1).min(32);
        let raw = self.base.saturating_mul(1u32 << exp.min(31)).min(self.max);
        let jittered = raw.mul_f64(jitter.clamp(0.5, 1.0));
        match retry_after {
            Some(floor) => jittered.max(floor),
            None => jittered,
        }
    }
}

/// A problem found in a tenant's target configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The target it is about, when it is about one.
    pub target: Option<String>,
    /// What is wrong, in one line, never quoting a secret.
    pub message: String,
    /// A warning (the configuration still loads) rather than an error.
    pub warning: bool,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let level = if self.warning { "warning" } else { "error" };
        match &self.target {
            Some(t) => write!(f, "{level}: target \"{t}\": {}", self.message),
            None => write!(f, "{level}: {}", self.message),
        }
    }
}

/// The whole of one `<tenant>.toml`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantTargets {
    /// The targets, in file order.
    #[serde(default)]
    pub targets: Vec<TargetConfig>,
}

/// Reads `<tenant>.toml`. A file that does not exist is a tenant with no targets.
pub fn load_tenant_file(path: &Path) -> Result<TenantTargets, String> {
    if !path.exists() {
        return Ok(TenantTargets::default());
    }
    Figment::from(Toml::file_exact(path)).extract::<TenantTargets>().map_err(|e| {
        // figment's messages name the key and the file; they never echo values of other keys.
        format!("{}: {e}", path.display())
    })
}

/// The target names a tenant file declares, read as leniently as TOML allows: for a file that
/// [`load_tenant_file`] refuses (an unknown key, a value of the wrong type), so that each named
/// target's changes can still wait in the outbox. `None` when not even that can be read (a
/// syntax error); names are never guessed.
pub fn tenant_file_target_names(path: &Path) -> Option<Vec<String>> {
    #[derive(Deserialize)]
    struct Named {
        name: String,
    }
    #[derive(Deserialize)]
    struct Names {
        #[serde(default)]
        targets: Vec<Named>,
    }
    let names = Figment::from(Toml::file_exact(path)).extract::<Names>().ok()?;
    let mut out: Vec<String> = Vec::new();
    for name in names.targets.into_iter().map(|t| t.name).filter(|n| !n.is_empty()) {
        if !out.contains(&name) {
            out.push(name);
        }
    }
    Some(out)
}

impl TargetConfig {
    /// The HTTP client settings of this target.
    pub fn client_options(&self) -> crate::client::ClientOptions {
        crate::client::ClientOptions {
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            accept_invalid_certs: self.tls_skip_verify,
            ..crate::client::ClientOptions::default()
        }
    }

    /// The retry policy of this target.
    pub fn retry(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.max_attempts,
            base: Duration::from_millis(self.backoff_base_ms),
            max: Duration::from_millis(self.backoff_max_ms),
        }
    }

    /// The vendor token, from `token_env` or `token_file`. The error names where it looked,
    /// never what it found.
    pub fn resolve_secret(&self) -> Result<Secret, String> {
        match (&self.token_env, &self.token_file) {
            (Some(_), Some(_)) => Err("set token_env or token_file, not both".into()),
            (None, None) => Err("no secret: set token_env (an environment variable) or token_file".into()),
            (Some(var), None) => match std::env::var(var) {
                Ok(v) if !v.trim().is_empty() => Ok(Secret::new(v.trim())),
                Ok(_) => Err(format!("the environment variable {var} (token_env) is empty")),
                Err(_) => Err(format!("the environment variable {var} (token_env) is not set")),
            },
            (None, Some(file)) => match std::fs::read_to_string(file) {
                Ok(v) if !v.trim().is_empty() => Ok(Secret::new(v.trim())),
                Ok(_) => Err(format!("the token_file {} is empty", file.display())),
                Err(e) => Err(format!("cannot read the token_file {}: {e}", file.display())),
            },
        }
    }

    /// The parsed and schema-checked scope filter (`None`: every user).
    pub fn scope_filter(&self, schemas: &SchemaRegistry) -> Result<Option<Filter>, String> {
        let Some(text) = self.scope.as_deref().filter(|s| !s.trim().is_empty()) else {
            return Ok(None);
        };
        let filter = parse_filter(text).map_err(|e| format!("scope \"{text}\" is not a valid SCIM filter: {e}"))?;
        let user = schemas.resource("User").ok_or("the User resource type is not registered")?;
        filter.validate(&user).map_err(|e| format!("scope \"{text}\": {}", e.detail))?;
        Ok(Some(filter))
    }

    /// `reconcile_every` as a duration (`None`: not scheduled).
    pub fn reconcile_interval(&self) -> Result<Option<Duration>, String> {
        let Some(text) = self.reconcile_every.as_deref() else { return Ok(None) };
        let every = humantime::parse_duration(text.trim())
            .map_err(|e| format!("reconcile_every \"{text}\" is not a duration like \"24h\" or \"30m\": {e}"))?;
        if every < Duration::from_secs(1) {
            return Err(format!("reconcile_every \"{text}\" must be at least 1s"));
        }
        Ok(Some(every))
    }

    /// The checks that need nothing but this entry: name, numbers, secret.
    pub fn check(&self) -> Vec<String> {
        let mut out = Vec::new();
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self.name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !name_ok {
            out.push("name must be 1–64 characters of A–Z a–z 0–9 . _ -".into());
        }
        if self.max_in_flight == 0 {
            out.push("max_in_flight must be at least 1".into());
        }
        if self.rate_per_sec == Some(0) {
            out.push("rate_per_sec must be at least 1 (leave it out for no limit)".into());
        }
        if self.burst == Some(0) {
            out.push("burst must be at least 1".into());
        }
        if self.max_attempts == 0 {
            out.push("max_attempts must be at least 1".into());
        }
        if self.backoff_base_ms == 0 || self.backoff_base_ms > self.backoff_max_ms {
            out.push("backoff_base_ms must be at least 1 and at most backoff_max_ms".into());
        }
        if self.request_timeout_ms == 0 {
            out.push("request_timeout_ms must be at least 1".into());
        }
        if let Err(e) = self.reconcile_interval() {
            out.push(e);
        }
        // An inline token is said first, whatever the adapter: its "no secret" follows.
        out.extend(self.options.keys().filter_map(|k| inline_secret(k)));
        if let Err(e) = self.resolve_secret() {
            out.push(e);
        }
        out
    }
}

/// Names used more than once in one tenant's file.
pub(crate) fn duplicate_names(targets: &[TargetConfig]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut dup = BTreeSet::new();
    for t in targets {
        if !seen.insert(t.name.as_str()) {
            dup.insert(t.name.clone());
        }
    }
    dup.into_iter().collect()
}

impl TenantTargets {
    /// Problems of the file as a whole (duplicate names).
    pub fn check(&self) -> Vec<ConfigProblem> {
        duplicate_names(&self.targets)
            .into_iter()
            .map(|n| ConfigProblem {
                target: Some(n),
                message: "the name is used by more than one target".into(),
                warning: false,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("acme.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn a_tenant_file_loads_with_defaults_and_adapter_keys() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            r#"
[[targets]]
name = "jumpcloud-prod"
kind = "jumpcloud"
base_url = "https://directory.example/scim/v2/?aadOptscim062020"
token_env = "ACME_JUMPCLOUD_TOKEN"
scope = 'active eq true'
on_invalid = "skip"
username_from = "userName_local_part"

[[targets]]
name = "crm"
kind = "scim"
base_url = "https://crm.example/scim/v2"
token_file = "/run/secrets/crm"
attributes = ["userName", "active"]
deprovision = "delete"
max_in_flight = 2
rate_per_sec = 5
"#,
        );
        let file = load_tenant_file(&p).unwrap();
        assert_eq!(file.targets.len(), 2);
        let jc = &file.targets[0];
        assert_eq!(jc.on_invalid, OnInvalid::Skip);
        assert_eq!(jc.deprovision, Deprovision::Deactivate);
        assert_eq!(jc.max_in_flight, 4);
        assert_eq!(jc.options.get("username_from"), Some(&Value::from("userName_local_part")));
        assert!(!jc.options.contains_key("name"));
        let crm = &file.targets[1];
        assert_eq!(crm.deprovision, Deprovision::Delete);
        assert_eq!(crm.rate_per_sec, Some(5));
        assert_eq!(crm.options.get("attributes"), Some(&serde_json::json!(["userName", "active"])));
        assert!(file.check().is_empty());
    }

    #[test]
    fn reconcile_schedules_are_durations_of_a_second_or_more() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "[[targets]]\nname = \"a\"\nkind = \"scim\"\nbase_url = \"http://x\"\ntoken_env = \"HOME\"\n\
             reconcile_every = \"1h 30m\"\nreconcile_by = \"lookup\"\nreconcile_repair = true\n",
        );
        let t = load_tenant_file(&p).unwrap().targets.remove(0);
        assert_eq!(t.reconcile_interval(), Ok(Some(Duration::from_secs(5400))));
        assert_eq!(t.reconcile_by, Some(crate::ReadBack::Lookup));
        assert!(t.reconcile_repair && !t.options.contains_key("reconcile_repair"));
        for (bad, needle) in [("soon", "not a duration"), ("500ms", "at least 1s")] {
            let t = TargetConfig { reconcile_every: Some(bad.into()), ..t.clone() };
            assert!(t.check().iter().any(|p| p.contains(needle)), "{bad}: {:?}", t.check());
        }
    }

    #[test]
    fn the_shipped_example_loads_and_builds() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/tenants/example.toml.sample");
        let file = load_tenant_file(&path).unwrap();
        assert_eq!(file.targets.len(), 1);
        let t = &file.targets[0];
        assert!(t.scope_filter(&SchemaRegistry::default()).unwrap().is_some());
        crate::generic::ScimAdapter::from_config(t, Secret::new("x")).unwrap();
        // The vendor samples are built by the gateway's test (it links the vendor adapters).
    }

    #[test]
    fn a_missing_file_is_no_targets_and_a_broken_one_says_where() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load_tenant_file(&dir.path().join("nobody.toml")).unwrap().targets.is_empty());
        let p = write(dir.path(), "[[targets]]\nname = \"x\"\n");
        let err = load_tenant_file(&p).unwrap_err();
        assert!(err.contains("acme.toml") && err.contains("kind"), "{err}");
        let p = write(dir.path(), "target = 1\n");
        assert!(load_tenant_file(&p).unwrap_err().contains("target"));
    }

    #[test]
    fn secrets_come_from_env_or_file_and_errors_never_show_them() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tok");
        std::fs::write(&file, "  s3cret-from-file\n").unwrap();
        let mut t: TargetConfig = serde_json::from_value(serde_json::json!({
            "name": "crm", "kind": "scim", "base_url": "http://x", "token_file": file,
        }))
        .unwrap();
        assert_eq!(t.resolve_secret().unwrap().expose(), "s3cret-from-file");
        t.token_env = Some("SCIMGW_TEST_SURELY_UNSET_VAR".into());
        assert_eq!(t.resolve_secret().unwrap_err(), "set token_env or token_file, not both");
        t.token_file = None;
        let err = t.resolve_secret().unwrap_err();
        assert!(err.contains("SCIMGW_TEST_SURELY_UNSET_VAR") && err.contains("not set"), "{err}");
        std::fs::write(&file, "\n").unwrap();
        t.token_env = None;
        t.token_file = Some(file);
        assert!(t.resolve_secret().unwrap_err().contains("is empty"));
    }

    #[test]
    fn checks_name_each_bad_value() {
        let t: TargetConfig = serde_json::from_value(serde_json::json!({
            "name": "bad name", "kind": "scim", "base_url": "http://x", "max_in_flight": 0,
            "rate_per_sec": 0, "backoff_base_ms": 10, "backoff_max_ms": 5,
        }))
        .unwrap();
        let problems = t.check();
        assert_eq!(problems.len(), 5, "{problems:?}");
        let dup = TenantTargets { targets: vec![t.clone(), t] };
        assert_eq!(dup.check().len(), 1);
    }

    #[test]
    fn a_misspelt_key_names_the_nearest_known_key_and_lists_every_key() {
        let err = unknown_key("scim", "deprovison", &["attributes", "match_attribute"]);
        assert!(err.contains("unknown key \"deprovison\" for kind \"scim\"; did you mean \"deprovision\"?"), "{err}");
        for key in COMMON_KEYS.iter().chain(&["attributes", "match_attribute"]) {
            assert!(err.contains(key), "{key} is listed: {err}");
        }
        assert!(
            unknown_key("scim", "Match_Atribute", &["match_attribute"]).contains("did you mean \"match_attribute\"")
        );
        // Nothing close: no guess.
        assert!(!unknown_key("scim", "colour", &["attributes"]).contains("did you mean"));
    }

    #[test]
    fn an_inline_token_points_to_token_env_and_token_file_without_echoing_it() {
        let t: TargetConfig = serde_json::from_value(serde_json::json!({
            "name": "crm", "kind": "scim", "base_url": "http://x", "token": "s3cret-inline",
        }))
        .unwrap();
        let problems = t.check();
        let first = problems.first().map(String::as_str).unwrap_or_default();
        assert!(first.contains("\"token\"") && first.contains("token_env") && first.contains("token_file"), "{first}");
        assert!(!problems.iter().any(|p| p.contains("s3cret")), "{problems:?}");
        let err = unknown_key("scim", "api_token", &["attributes"]);
        assert!(err.contains("token_env") && err.contains("token_file"), "{err}");
        assert!(unknown_key("scim", "token_fille", &[]).contains("did you mean \"token_file\""));
    }

    #[test]
    fn the_common_keys_are_the_fields_of_a_target() {
        // A key the struct does not know lands in `options` with its null; a field refuses the
        // null or takes it as unset.
        for key in COMMON_KEYS {
            let mut v = serde_json::json!({"name": "a", "kind": "scim", "base_url": "http://x"});
            v[*key] = Value::Null;
            if let Ok(t) = serde_json::from_value::<TargetConfig>(v) {
                assert!(!t.options.contains_key(*key), "{key} is not a field of TargetConfig");
            }
        }
    }

    #[test]
    fn scope_is_parsed_and_checked_against_the_user_schema() {
        let schemas = SchemaRegistry::default();
        let mut t: TargetConfig =
            serde_json::from_value(serde_json::json!({"name": "a", "kind": "scim", "base_url": "http://x"})).unwrap();
        assert!(t.scope_filter(&schemas).unwrap().is_none());
        t.scope = Some("active eq true and emails[type eq \"work\"]".into());
        assert!(t.scope_filter(&schemas).unwrap().is_some());
        t.scope = Some("active eq".into());
        assert!(t.scope_filter(&schemas).unwrap_err().contains("not a valid SCIM filter"));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_honours_retry_after() {
        let p = RetryPolicy { max_attempts: 5, base: Duration::from_millis(100), max: Duration::from_secs(1) };
        assert_eq!(p.delay(1, 1.0, None), Duration::from_millis(100));
        assert_eq!(p.delay(3, 1.0, None), Duration::from_millis(400));
        assert_eq!(p.delay(30, 1.0, None), Duration::from_secs(1));
        assert_eq!(p.delay(3, 0.5, None), Duration::from_millis(200));
        assert_eq!(p.delay(1, 1.0, Some(Duration::from_secs(2))), Duration::from_secs(2));
        assert_eq!(p.delay(u32::MAX, 0.0, None), Duration::from_millis(500));
    }
}
