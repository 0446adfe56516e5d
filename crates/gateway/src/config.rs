//! The gateway's settings: what `serve` needs, as loaded by the `scimgw` binary through figment.

use serde::{Deserialize, Serialize};

pub use scimgw_store::{SqliteSynchronous, StoreConfig};

/// `[tls]`: the certificate chain and private key `serve` terminates TLS with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain, PEM, leaf first.
    pub cert: std::path::PathBuf,
    /// The private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: std::path::PathBuf,
}

/// Everything `scimgw serve` is configured with. Every key has a default; see the README's
/// configuration reference for the environment variable of each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address and port the SCIM endpoint listens on.
    pub listen: String,
    /// Address and port of the operations endpoints (`/healthz`, `/readyz`, `/metrics`). Unset:
    /// they are served beside the SCIM endpoint on `listen`. Set: they are served only here
    /// (plain HTTP, even with `tls`), and `listen` answers them 404 — so a port exposed to the
    /// internet carries the SCIM API alone.
    pub admin_listen: Option<String>,
    /// Path prefix of the SCIM API, e.g. `/scim/v2`.
    pub base_path: String,
    /// The externally visible URL of `base_path` (e.g. `https://scim.example.com/scim/v2`), used
    /// in `meta.location`, group members' `$ref` and `Location`. Unset: derived from each
    /// request's scheme and Host (and a trusted proxy's forwarding headers: `trusted_proxies`).
    pub public_url: Option<String>,
    /// Largest request body accepted, in bytes; larger bodies get 413.
    pub max_body_bytes: usize,
    /// Seconds a client has to send a request's head (line and headers), and again its body; a
    /// slower client gets 408 and the connection is closed.
    pub request_timeout_secs: u64,
    /// Reverse proxies whose forwarding headers are believed, by IP address. The client of a
    /// request from one of them is the nearest address in `X-Forwarded-For` that is not one of
    /// them (failed-authentication throttling tells clients apart by it); and, with `public_url`
    /// unset, the scheme and host of the URLs the gateway writes (`meta.location`, `Location`)
    /// come from its `Forwarded` / `X-Forwarded-Host` / `X-Forwarded-Proto`. From anyone else
    /// those headers are ignored.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Failed-authentication throttling.
    pub auth: crate::throttle::AuthConfig,
    /// Page size when a query gives no `count`.
    pub default_page_size: u64,
    /// Largest page a query may ask for; advertised in `/ServiceProviderConfig`.
    pub max_page_size: u64,
    /// Refuse attributes no schema defines (400 `invalidSyntax` naming them), as the gateway did
    /// before. Off by default: unknown attributes of a known schema are dropped (counted in
    /// `scimgw_scim_dropped_attributes_total`, named in the debug log), and attributes under an
    /// extension URN the gateway does not know are kept as sent.
    pub strict_attributes: bool,
    /// HTTP worker threads; unset means one per core.
    pub workers: Option<usize>,
    /// Threads per worker for store calls that block (writes waiting for their batch, queries);
    /// requests beyond wait in a queue. Each thread costs memory (its stack and allocator cache),
    /// and actix's default of 512 split over the workers let the RSS reach 350 MB under a
    /// 256-request burst on PostgreSQL.
    pub blocking_threads: usize,
    /// HTTPS: serve TLS with this certificate chain and key (PEM). Unset: plain HTTP (behind a
    /// TLS-terminating proxy, or on loopback).
    pub tls: Option<TlsConfig>,
    /// The directory of the tenants' target files, `<tenants_dir>/<tenant>.toml`.
    pub tenants_dir: String,
    /// The dispatcher that delivers to targets.
    pub dispatcher: scimgw_delivery::dispatch::DispatcherConfig,
    /// How long finished deliveries and audit events are kept (the dispatcher purges them).
    pub retention: scimgw_delivery::dispatch::RetentionConfig,
    /// The store.
    pub store: StoreConfig,
    /// Logging.
    pub log: LogConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            admin_listen: None,
            base_path: "/scim/v2".into(),
            public_url: None,
            max_body_bytes: 1024 * 1024,
            request_timeout_secs: 10,
            trusted_proxies: Vec::new(),
            auth: crate::throttle::AuthConfig::default(),
            default_page_size: 100,
            max_page_size: 1000,
            strict_attributes: false,
            workers: None,
            blocking_threads: 32,
            tls: None,
            tenants_dir: "config/tenants".into(),
            dispatcher: scimgw_delivery::dispatch::DispatcherConfig::default(),
            retention: scimgw_delivery::dispatch::RetentionConfig::default(),
            store: StoreConfig::default(),
            log: LogConfig::default(),
        }
    }
}

impl Config {
    /// The configuration's own consistency rules, each failure one line an admin can act on.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            problems.push(format!("listen: \"{}\" is not an address:port such as 127.0.0.1:8080", self.listen));
        }
        if let Some(admin) = &self.admin_listen {
            if admin.parse::<std::net::SocketAddr>().is_err() {
                problems.push(format!("admin_listen: \"{admin}\" is not an address:port such as 127.0.0.1:9090"));
            } else if *admin == self.listen && !admin.ends_with(":0") {
                problems.push(format!("admin_listen: \"{admin}\" is also `listen`; give it a port of its own"));
            }
        }
        if !self.base_path.starts_with('/') {
            problems.push(format!("base_path: \"{}\" must start with '/'", self.base_path));
        }
        if self.max_body_bytes < 1024 {
            problems.push(format!("max_body_bytes: {} is too small; use at least 1024", self.max_body_bytes));
        }
        if !(1..=3600).contains(&self.request_timeout_secs) {
            problems
                .push(format!("request_timeout_secs: {} is out of range; use 1 to 3600", self.request_timeout_secs));
        }
        if self.auth.failures_per_minute > 0 && self.auth.failure_burst == 0 {
            problems.push("auth.failure_burst: must be at least 1 when auth.failures_per_minute is set".into());
        }
        if self.max_page_size == 0 {
            problems.push("max_page_size: must be at least 1".into());
        }
        if self.default_page_size > self.max_page_size {
            problems.push(format!(
                "default_page_size: {} exceeds max_page_size {}",
                self.default_page_size, self.max_page_size
            ));
        }
        if self.dispatcher.concurrency == 0 {
            problems.push("dispatcher.concurrency: must be at least 1".into());
        }
        if self.dispatcher.lease_secs == 0 {
            problems.push("dispatcher.lease_secs: must be at least 1".into());
        }
        if let Err(mut wrong) = self.retention.parsed() {
            problems.append(&mut wrong);
        }
        if self.store.url.trim().is_empty() {
            problems.push("store.url: empty; use sqlite://data/scimgw.db or a postgres:// URL".into());
        }
        if problems.is_empty() { Ok(()) } else { Err(problems) }
    }

    /// The dispatcher's settings with `[retention]` in them (it purges).
    pub fn dispatcher_config(&self) -> scimgw_delivery::dispatch::DispatcherConfig {
        scimgw_delivery::dispatch::DispatcherConfig { retention: self.retention.clone(), ..self.dispatcher.clone() }
    }

    /// `base_path` without a trailing slash (`/` becomes empty).
    pub fn base_path(&self) -> &str {
        self.base_path.trim_end_matches('/')
    }
}

/// Log output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A `tracing` filter, e.g. `info` or `scimgw_gateway=debug,info`. `RUST_LOG` overrides it.
    pub level: String,
    /// `human` (default) or `json`.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { level: "info".into(), format: LogFormat::Human }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One readable line per event.
    #[default]
    Human,
    /// One JSON object per event.
    Json,
}
